"""Decoupled training's second stages (Kang et al. 2020).

- `retrain_classifier`: classifier re-training (cRT), in place; optionally
  with MiSLAS' BatchNorm shift.
- `tau_normalize`: a new model whose class weight vectors are rescaled.
- `learn_weight_scaling`: a new model with learned per-class scales (LWS).

`tau_normalize` and `learn_weight_scaling` rebuild the model from its config,
so they need a Sequential or Functional model (nested ones included).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kimbalance._validation import check_bool, check_float, check_int, invalid
from kimbalance.layers import ClassScale
from kimbalance.training._classifier import (
    check_generator,
    check_model,
    compile_config,
    find_classifier,
    fit_only,
    get_optimizer,
    path_to,
    reinitialize_weights,
    sublayers,
    walk,
)

__all__ = ["learn_weight_scaling", "retrain_classifier", "tau_normalize"]


def retrain_classifier(model: keras.Model, generator: Any, *, epochs: int,
                       reinitialize: bool = True,
                       classifier: keras.layers.Layer | str | None = None,
                       optimizer: keras.optimizers.Optimizer | str | None = None,
                       update_batchnorm_statistics: bool = False,
                       **fit_kwargs: Any) -> keras.callbacks.History:
    """Classifier re-training (cRT): trains only the classifier of a model.

    The second stage of decoupled training (Kang et al. 2020): after the
    whole network learned its representation on the natural (long-tailed)
    distribution, the backbone is frozen and the classifier alone is
    re-initialised and re-trained on class-balanced batches, e.g. from
    `kimbalance.data.BalancedBatchGenerator(x, y, sampler="class_balanced")`.

    Every layer except the classifier is frozen (`trainable=False`): its
    weights and BatchNorm moving statistics (inference mode) do not change.

    With `update_batchnorm_statistics=True` (MiSLAS' "shift learning on
    BatchNorm", Zhong et al. 2021) every `BatchNormalization` layer of the
    backbone (also one frozen before) runs in training mode instead: it
    normalises with the statistics of each (class-balanced) batch and its
    moving mean and variance follow the re-sampled data at the layer's own
    `momentum` (0.99 by default: a few hundred steps to forget the stage-1
    statistics), while its gamma / beta and every other backbone weight stay
    frozen. This corrects the features' statistics for the shift from the
    long-tailed to the balanced distribution. A model without
    BatchNormalization layers trains exactly as without the option (no
    warning).

    The model is recompiled with its own `compile()` arguments and the given
    optimizer and fitted in place; afterwards the trainable flags are
    restored and the model is recompiled with its original optimizer.
    (Backbone `Dropout` layers still drop during the fit: trainable flags do
    not change the training mode of layers without weights.)

    The default optimizer is `keras.optimizers.Adam(1e-3)`, not the paper's
    SGD (momentum 0.9, learning rate 0.2 at batch size 512, cosine decay over
    10 epochs), whose learning rate is tuned to the scale of ImageNet ResNet
    features; Adam's steps do not depend on that scale.

    Args:
        model: a built, compiled `keras.Model` (its loss and metrics are
            reused).
        generator: the batches to fit on (a `keras.utils.PyDataset` such as
            `BalancedBatchGenerator`, a tf.data / grain dataset, a torch
            `DataLoader` or a Python generator of `(x, y[, sample_weight])`).
        epochs: int >= 1, the number of epochs.
        reinitialize: bool, whether to re-draw the classifier's weights from
            its own initializers first (as cRT does).
        classifier: `None` for the model's last `Dense` / `CosineDense`
            layer, else such a layer of the model or its name.
        optimizer: `None` for `Adam(1e-3)`, else a Keras optimizer or its
            name.
        update_batchnorm_statistics: bool, whether the backbone's
            BatchNormalization layers update their moving mean and variance
            on the given batches (MiSLAS' BatchNorm shift; their gamma and
            beta stay frozen). False keeps every backbone weight and
            statistic unchanged (cRT).
        **fit_kwargs: further arguments of `model.fit` (`callbacks`,
            `verbose`, `validation_data`, ...).

    Returns:
        The `History` of the fit.

    Raises:
        ValueError: for a `model` not a built, compiled Keras model with a
            Dense / CosineDense layer, a `classifier` not such a layer of it,
            compiled metrics Keras cannot deserialize, `epochs` not an int
            >= 1, a non-bool `reinitialize` or `update_batchnorm_statistics`,
            an `optimizer` Keras cannot interpret or a `generator` that is
            not a batch generator.

    Examples:

    >>> inputs = keras.Input((3,))
    >>> hidden = keras.layers.BatchNormalization(name="bn")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> model.compile(loss="sparse_categorical_crossentropy")
    >>> x, y = np.arange(24.0).reshape(8, 3), np.array([0, 1] * 4)
    >>> batches = (b for b in [(x, y)])
    >>> _ = retrain_classifier(model, batches, epochs=1, verbose=0,
    ...                        update_batchnorm_statistics=True)
    >>> bn = model.get_layer("bn")
    >>> bool(np.any(keras.ops.convert_to_numpy(bn.moving_mean) != 0))
    True
    >>> keras.ops.convert_to_numpy(bn.gamma).tolist()  # frozen
    [1.0, 1.0, 1.0]

    References:
        Kang, B. et al. "Decoupling Representation and Classifier for
        Long-Tailed Recognition." ICLR 2020.
        Zhong, Z. et al. "Improving Calibration for Long-Tailed
        Recognition." CVPR 2021 (MiSLAS; section 3.3, shift learning on
        BatchNorm).
    """
    check_model(model)
    epochs = check_int("epochs", epochs, low=1)
    reinitialize = check_bool("reinitialize", reinitialize)
    update_batchnorm_statistics = check_bool("update_batchnorm_statistics",
                                             update_batchnorm_statistics)
    generator = check_generator(generator)
    head = find_classifier(model, classifier)
    optimizer = get_optimizer(optimizer)
    compile_config(model)  # fail before touching the weights
    if reinitialize:
        reinitialize_weights(head)
    return fit_only(model, head, generator, epochs=epochs, optimizer=optimizer,
                    fit_kwargs=fit_kwargs,
                    shift_batchnorm_statistics=update_batchnorm_statistics)



# Rebuilding a model ------------------------------------------------------------

def _layer_config(config, path):
    """The config entry of the layer at `path` (layers from the top down)."""
    entry = config
    for layer in path:
        entries = [item for item in entry["config"]["layers"]
                   if item.get("config", {}).get("name") == layer.name]
        entry = entries[-1]
    return entry["config"]


def _copy_model(model, classifier, edit):
    """A new model from `model`'s config (with `edit(classifier_config)`
    applied) and a copy of its weights, except the classifier's."""
    path = path_to(model, classifier)
    try:
        config = keras.saving.serialize_keras_object(model)
        edit(_layer_config(config, path))
        copy = keras.saving.deserialize_keras_object(config)
    except (NotImplementedError, KeyError, TypeError, IndexError):
        raise invalid("model", "a Sequential or Functional model (it is rebuilt "
                      "from its config)", model) from None
    copy_path = _path_to_same(copy, path)
    old_layers, new_layers = list(walk(model)), list(walk(copy))
    for old, new in zip(old_layers, new_layers, strict=True):
        if old is not classifier and not isinstance(old, keras.Model):
            new.set_weights(old.get_weights())
    return copy, copy_path[-1]


def _path_to_same(copy, path):
    """The layers of `copy` at the positions `path` has in the original."""
    result, container = [], copy
    for layer in path:
        names = [sub.name for sub in sublayers(container)]
        container = sublayers(container)[len(names) - 1 - names[::-1].index(
            layer.name)]
        result.append(container)
    return result


def _normalized_kernel(kernel, tau):
    """`w_c / ||w_c||**tau` per column (class) of a (features, classes) kernel,
    in float64; a zero column stays zero."""
    weights = np.asarray(kernel, dtype=np.float64)
    norms = np.sqrt(np.sum(np.square(weights), axis=0))
    factors = np.ones_like(norms)
    with np.errstate(over="ignore", divide="ignore"):
        np.power(norms, -tau, out=factors, where=norms > 0)
    with np.errstate(over="ignore", invalid="ignore"):
        return weights * factors


def tau_normalize(model: keras.Model, tau: float = 1.0, *,
                  classifier: keras.layers.Layer | str | None = None) -> keras.Model:
    """Tau-normalised classifier: class weights `w_c / ||w_c||**tau`.

    Classifiers trained on long-tailed data have larger weight norms for the
    frequent classes, which biases the decision toward them. Dividing each
    class's weight vector (a column of the `(features, classes)` kernel) by
    its L2 norm to the power `tau` shrinks that bias: `tau=0` changes
    nothing, `tau=1` gives every class a unit-norm weight vector. As in the
    paper the bias is dropped (the new classifier has `use_bias=False`).
    Choose `tau` on a balanced validation set.

    The result is a NEW model (rebuilt from the model's config with a copy of
    its weights; compiled like the original if it was); the original is not
    changed. A `CosineDense` classifier normalises its kernel columns itself:
    its predictions are unchanged for every `tau` (the kernel is rescaled).

    Args:
        model: a built Sequential or Functional `keras.Model` (nested models
            allowed).
        tau: finite float >= 0, the normalisation strength.
        classifier: `None` for the model's last `Dense` / `CosineDense`
            layer, else such a layer of the model or its name.

    Returns:
        A new `keras.Model` with the normalised, bias-free classifier.

    Raises:
        ValueError: for a `model` that is not a built Sequential / Functional
            model with a Dense / CosineDense layer, a `classifier` that is not
            such a layer of it, `tau` negative or not finite, or a `tau` that
            makes the normalised kernel overflow its dtype.

    Examples:

    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    >>> balanced = tau_normalize(model, tau=1.0)
    >>> kernel = keras.ops.convert_to_numpy(balanced.layers[-1].kernel)
    >>> np.round(np.linalg.norm(kernel, axis=0), 4).tolist()
    [1.0, 1.0, 1.0]

    References:
        Kang, B. et al. "Decoupling Representation and Classifier for
        Long-Tailed Recognition." ICLR 2020.
    """
    check_model(model)
    tau = check_float("tau", tau, low=0.0)
    head = find_classifier(model, classifier)
    kernel = _normalized_kernel(ops.convert_to_numpy(head.kernel), tau)
    kernel = kernel.astype(keras.backend.standardize_dtype(head.kernel.dtype))
    if not np.all(np.isfinite(kernel)):
        raise invalid("tau", f"a value for which the normalised kernel stays "
                      f"finite in {head.kernel.dtype}", tau)

    def drop_bias(config):
        if "use_bias" in config:
            config["use_bias"] = False

    copy, new_head = _copy_model(model, head, drop_bias)
    new_head.kernel.assign(kernel)
    return copy


# LWS ---------------------------------------------------------------------------

def learn_weight_scaling(
        model: keras.Model, generator: Any, *, epochs: int,
        classifier: keras.layers.Layer | str | None = None,
        optimizer: keras.optimizers.Optimizer | str | None = None,
        **fit_kwargs: Any) -> tuple[keras.Model, keras.callbacks.History]:
    """Learnable weight scaling (LWS): learns one scale per class logit.

    Returns a new model: a copy of `model` with a
    `kimbalance.layers.ClassScale` (per-class scales, initialised to 1)
    right after the classifier's linear output (before its activation), so
    it starts with exactly the original's outputs. Only the scales are
    trained, on `generator` (typically class-balanced batches), with the
    model's loss and metrics: the scale `f_c` multiplies class c's weight
    vector (and bias), rebalancing the norms like `tau_normalize`, but
    learned. The original model is not changed. The classifier's output must
    be the model's only output.

    Args:
        model: a built, compiled Sequential or Functional `keras.Model`.
        generator: the batches to fit on (see `retrain_classifier`).
        epochs: int >= 1, the number of epochs.
        classifier: `None` for the model's last `Dense` / `CosineDense`
            layer, else such a layer of the model or its name.
        optimizer: `None` for `Adam(1e-3)` (see `retrain_classifier` for
            why), else a Keras optimizer or its name.
        **fit_kwargs: further arguments of `fit`.

    Returns:
        A tuple `(new_model, history)`; `new_model` has the trainable flags of
        the original's layers (the scales trainable) and is compiled like the
        original (its loss, metrics and a fresh optimizer of its config).

    Raises:
        ValueError: as `retrain_classifier`, and for a classifier whose
            output is not the model's only output.

    References:
        Kang, B. et al. "Decoupling Representation and Classifier for
        Long-Tailed Recognition." ICLR 2020.
    """
    check_model(model)
    epochs = check_int("epochs", epochs, low=1)
    generator = check_generator(generator)
    head = find_classifier(model, classifier)
    optimizer = get_optimizer(optimizer)
    config = compile_config(model)
    path = path_to(model, head)
    assert path is not None  # find_classifier found it in the model
    chain = [model, *path]
    for container, child in zip(chain[:-1], chain[1:], strict=True):
        outputs = getattr(container, "outputs", None) or []
        if len(outputs) != 1 or _output_of(child) is not outputs[0]:
            raise invalid("classifier", f"a Dense or CosineDense layer whose output "
                          f"is the model's only output (layer '{head.name}' is "
                          f"not)", classifier)
    activation = keras.activations.serialize(head.activation) if hasattr(
        head, "activation") else "linear"

    def linear(layer_config):
        if "activation" in layer_config:
            layer_config["activation"] = "linear"

    copy, new_head = _copy_model(model, head, linear)
    new_head.set_weights(head.get_weights())
    scale = ClassScale(name=f"{head.name}_scale")
    outputs = scale(copy.outputs[0])
    if activation not in ("linear", None) and activation != {"class_name": "linear"}:
        outputs = keras.layers.Activation(activation)(outputs)
    scaled = keras.Model(copy.inputs, outputs, name=f"{model.name}_lws")
    # Compiled like the original before and after the fit (to train on).
    scaled.compile(**config)
    history = fit_only(scaled, scale, generator, epochs=epochs,
                       optimizer=optimizer, fit_kwargs=fit_kwargs)
    return scaled, history


def _output_of(layer):
    try:
        return layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None


