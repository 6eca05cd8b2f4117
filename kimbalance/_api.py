"""The one decorator that makes a symbol public and serializable (as keras-rs)."""

from __future__ import annotations

from typing import TypeVar

import keras

_T = TypeVar("_T")


def export(obj: _T) -> _T:
    """Registers `obj` with Keras serialization under the `kimbalance>` prefix.

    Classes (losses, layers, metrics) and loss functions go through the same
    registration, so `keras.saving.deserialize_keras_object` and `.keras` model
    files find them on any backend.
    """
    return keras.saving.register_keras_serializable(package="kimbalance")(obj)
