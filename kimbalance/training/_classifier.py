"""Finding, freezing and fitting a model's classifier (shared by the stages).

The classifier is a `keras.layers.Dense` or `kimbalance.layers.CosineDense`
layer; by default the last one of the model (nested models included).
`fit_only` trains one layer of a model in place and restores every trainable
flag afterwards (also when the fit fails).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from kimbalance._validation import invalid
from kimbalance.layers import CosineDense

CLASSIFIER_TYPES = (keras.layers.Dense, CosineDense)


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return list(layer.layers) if isinstance(layer, keras.Model) else []


def walk(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """All layers under `layer` in pre-order (nested models entered)."""
    for sub in sublayers(layer):
        yield sub
        yield from walk(sub)


def path_to(layer: keras.layers.Layer, target: keras.layers.Layer,
            ) -> list[keras.layers.Layer] | None:
    """The chain of layers from `layer`'s children down to `target`, or None."""
    for sub in sublayers(layer):
        if sub is target:
            return [sub]
        below = path_to(sub, target)
        if below is not None:
            return [sub, *below]
    return None


def check_model(model: Any, *, built: bool = True) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise invalid("model", "a keras.Model", model)
    if built and not model.built:
        raise invalid("model", "a built keras.Model (call it once or give it an "
                      "Input)", model)
    return model


def find_classifier(model: keras.Model, classifier: Any) -> keras.layers.Layer:
    layers = list(walk(model))
    if classifier is None:
        heads = [layer for layer in layers if isinstance(layer, CLASSIFIER_TYPES)]
        if not heads:
            raise invalid("model", "a model with a Dense or CosineDense classifier "
                          "layer", model)
        return heads[-1]
    if isinstance(classifier, str):
        named = [layer for layer in layers if layer.name == classifier]
        if not named:
            names = [layer.name for layer in layers
                     if isinstance(layer, CLASSIFIER_TYPES)]
            raise invalid("classifier", f"None, or a Dense or CosineDense layer of "
                          f"the model or its name (one of {names})", classifier)
        found = named[-1]
    elif isinstance(classifier, keras.layers.Layer):
        if not any(layer is classifier for layer in layers):
            raise invalid("classifier", "a layer of the model (this layer is not "
                          "part of it)", classifier)
        found = classifier
    else:
        raise invalid("classifier", "None, a Dense or CosineDense layer of the "
                      "model, or its name", classifier)
    if not isinstance(found, CLASSIFIER_TYPES):
        raise invalid("classifier", "a Dense or CosineDense layer", classifier)
    return found


def check_generator(generator: Any) -> Any:
    """Batches for `fit` (a PyDataset, tf.data / grain dataset, DataLoader or
    Python generator); arrays, tuples and dicts (no labels) are refused."""
    if isinstance(generator, keras.utils.PyDataset):
        return generator
    refused = (np.ndarray, list, tuple, dict, str, bytes)
    if (generator is None or isinstance(generator, refused)
            or not hasattr(generator, "__iter__") or hasattr(generator, "__array__")):
        raise invalid("generator", "a batch generator yielding (x, y[, "
                      "sample_weight]): a keras.utils.PyDataset such as "
                      "kimbalance.data.BalancedBatchGenerator, a tf.data or grain "
                      "dataset, a torch DataLoader or a Python generator",
                      generator)
    return generator


def get_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    if optimizer is None:
        return keras.optimizers.Adam(learning_rate=1e-3)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    try:
        return keras.optimizers.get(optimizer)
    except (ValueError, TypeError):
        raise invalid("optimizer", "None, a keras.optimizers.Optimizer or its "
                      "name", optimizer) from None


def compile_config(model: keras.Model) -> dict[str, Any]:
    """The model's `compile()` arguments but the optimizer (left to the caller):
    the objects given to `compile()` where Keras keeps them, else deserialized
    afresh (a loss Keras cannot deserialize is then reused as it is)."""
    if not model.compiled:
        raise invalid("model", "a compiled model (its loss and metrics are "
                      "reused)", model)
    # As given where Keras keeps them (serializing imports TensorFlow); metric
    # objects get a fresh state when the model is compiled again.
    given = getattr(getattr(model, "_compile_config", None), "config", None)
    if isinstance(given, dict) and given:
        return {key: value for key, value in given.items() if key != "optimizer"}
    config = model.get_compile_config()
    if not config:
        raise invalid("model", "a compiled model (its loss and metrics are "
                      "reused)", model)
    arguments = {}
    for key, value in config.items():
        try:
            arguments[key] = keras.saving.deserialize_keras_object(value)
        except (TypeError, ValueError, AttributeError):
            if key != "loss":
                raise invalid("model", f"a model compiled with serializable "
                              f"{key} (register custom ones with "
                              f"keras.saving.register_keras_serializable)",
                              model) from None
            arguments[key] = model.loss
    return arguments


class TrainableState:
    """The trainable flags of a model's layers and weights, to restore later."""

    def __init__(self, model: keras.Model) -> None:
        # Pre-order: children restored after their parent undo its setter.
        self.layers = [(layer, layer.trainable) for layer in [model, *walk(model)]]
        self.weights = [(weight, weight.trainable) for weight in model.weights]

    def restore(self) -> None:
        for item, trainable in self.layers + self.weights:
            item.trainable = trainable


def train_only(model: keras.Model, target: keras.layers.Layer) -> None:
    """Freezes every layer of `model` except `target` (and its ancestors)."""
    model.trainable = True
    path = path_to(model, target)
    assert path is not None  # `target` was found in `model` by the caller

    def freeze(container, depth):
        for sub in sublayers(container):
            if sub is path[depth]:
                if sub is not target:
                    freeze(sub, depth + 1)
            else:
                sub.trainable = False

    freeze(model, 0)


def reinitialize_weights(layer: keras.layers.Layer) -> None:
    for weight_name, initializer_name in (("kernel", "kernel_initializer"),
                                          ("bias", "bias_initializer")):
        weight = getattr(layer, weight_name, None)
        initializer = getattr(layer, initializer_name, None)
        if weight is not None and initializer is not None:
            weight.assign(initializer(tuple(weight.shape), dtype=weight.dtype))


def shift_batchnorm(model: keras.Model, target: keras.layers.Layer) -> list[Any]:
    """Lets the BatchNormalization layers of `model` outside `target` update
    their moving statistics in a fit while their gamma / beta stay frozen
    (MiSLAS' shift learning); returns those layers. Call it after
    `train_only` and restore the flags with a `TrainableState` taken before.

    A BatchNormalization layer normalises with batch statistics and updates
    its moving averages when it is called with `training=True` and its own
    `trainable` flag is True; the optimizer only updates the variables whose
    `trainable` flag is True. So each layer is made trainable and its
    variables' flags are set back to False.
    """
    inside = {id(layer) for layer in [target, *walk(target)]}
    shifted = [layer for layer in walk(model)
               if isinstance(layer, keras.layers.BatchNormalization)
               and id(layer) not in inside]
    for layer in shifted:
        layer.trainable = True  # also sets gamma / beta trainable: undone below
        for variable in layer.weights:
            variable.trainable = False
    return shifted


def fit_only(model: keras.Model, target: keras.layers.Layer, generator: Any, *,
             epochs: int, optimizer: keras.optimizers.Optimizer,
             fit_kwargs: dict[str, Any], loss: Any = None,
             shift_batchnorm_statistics: bool = False) -> keras.callbacks.History:
    """Fits `model` with only `target` trainable (and `loss` if given); with
    `shift_batchnorm_statistics` the BatchNormalization layers outside
    `target` update their moving statistics too (`shift_batchnorm`)."""
    config = compile_config(model)
    original_optimizer = model.optimizer
    state = TrainableState(model)
    try:
        train_only(model, target)
        if shift_batchnorm_statistics:
            shift_batchnorm(model, target)
        model.compile(**{**config, "optimizer": optimizer,
                         **({} if loss is None else {"loss": loss})})
        history = model.fit(generator, epochs=epochs, **fit_kwargs)
    finally:
        state.restore()
        # Recompiling resets the compiled train function, which on JAX holds
        # the (frozen) set of trainable variables.
        model.compile(**{**config, "optimizer": original_optimizer})
    return history
