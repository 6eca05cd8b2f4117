"""The one decorator that makes a symbol public and serializable (as keras-rs)."""

import keras


def export(obj):
    """Registers `obj` with Keras serialization under the `kimbalance>` prefix.

    Classes (losses, layers, metrics) and loss functions go through the same
    registration, so `keras.saving.deserialize_keras_object` and `.keras` model
    files find them on any backend.
    """
    return keras.saving.register_keras_serializable(package="kimbalance")(obj)
