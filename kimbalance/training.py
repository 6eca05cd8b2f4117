"""Methods that act on a trained model or on the training step.

- `retrain_classifier`: classifier re-training (cRT): only the classifier
  learns, on class-balanced batches (decoupled training's second stage).
- `tau_normalize`: a new model whose class weight vectors are rescaled.
- `learn_weight_scaling`: learnable weight scaling (LWS): a new model with a
  `kimbalance.layers.ClassScale` after the classifier, only the scales learn.
- `weight_balance`: weight balancing's second stage: only the classifier
  learns, with weight decay and a per-class norm bound.
- `SharpnessAwareModel`: SAM / ASAM / ImbSAM in `train_step` (torch, jax,
  tensorflow).

The classifier is a `keras.layers.Dense` or `kimbalance.layers.CosineDense`
layer; by default the last one of the model (nested models included).
`tau_normalize` and `learn_weight_scaling` rebuild the model from its config,
so they need a Sequential or Functional model (nested ones included).
"""

import keras
import numpy as np
from keras import ops

from kimbalance._api import export
from kimbalance._validation import check_bool, check_float, check_int, invalid
from kimbalance.layers import ClassScale, CosineDense

__all__ = [
    "SharpnessAwareModel",
    "learn_weight_scaling",
    "retrain_classifier",
    "tau_normalize",
    "weight_balance",
]

_CLASSIFIER_TYPES = (keras.layers.Dense, CosineDense)


# Layers and classifiers --------------------------------------------------------

def _sublayers(layer):
    return list(layer.layers) if isinstance(layer, keras.Model) else []


def _walk(layer):
    """All layers under `layer` in pre-order (nested models entered)."""
    for sub in _sublayers(layer):
        yield sub
        yield from _walk(sub)


def _path_to(layer, target):
    """The chain of layers from `layer`'s children down to `target`, or None."""
    for sub in _sublayers(layer):
        if sub is target:
            return [sub]
        below = _path_to(sub, target)
        if below is not None:
            return [sub, *below]
    return None


def _check_model(model, *, built=True):
    if not isinstance(model, keras.Model):
        raise invalid("model", "a keras.Model", model)
    if built and not model.built:
        raise invalid("model", "a built keras.Model (call it once or give it an "
                      "Input)", model)
    return model


def _find_classifier(model, classifier):
    layers = list(_walk(model))
    if classifier is None:
        heads = [layer for layer in layers if isinstance(layer, _CLASSIFIER_TYPES)]
        if not heads:
            raise invalid("model", "a model with a Dense or CosineDense classifier "
                          "layer", model)
        return heads[-1]
    if isinstance(classifier, str):
        named = [layer for layer in layers if layer.name == classifier]
        if not named:
            names = [layer.name for layer in layers
                     if isinstance(layer, _CLASSIFIER_TYPES)]
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
    if not isinstance(found, _CLASSIFIER_TYPES):
        raise invalid("classifier", "a Dense or CosineDense layer", classifier)
    return found


def _check_generator(generator):
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


def _get_optimizer(optimizer):
    if optimizer is None:
        return keras.optimizers.Adam(learning_rate=1e-3)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    try:
        return keras.optimizers.get(optimizer)
    except (ValueError, TypeError):
        raise invalid("optimizer", "None, a keras.optimizers.Optimizer or its "
                      "name", optimizer) from None


def _compile_config(model):
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


class _TrainableState:
    """The trainable flags of a model's layers and weights, to restore later."""

    def __init__(self, model):
        # Pre-order: children restored after their parent undo its setter.
        self.layers = [(layer, layer.trainable) for layer in [model, *_walk(model)]]
        self.weights = [(weight, weight.trainable) for weight in model.weights]

    def restore(self):
        for item, trainable in self.layers + self.weights:
            item.trainable = trainable


def _train_only(model, target):
    """Freezes every layer of `model` except `target` (and its ancestors)."""
    model.trainable = True
    path = _path_to(model, target)

    def freeze(container, depth):
        for sub in _sublayers(container):
            if sub is path[depth]:
                if sub is not target:
                    freeze(sub, depth + 1)
            else:
                sub.trainable = False

    freeze(model, 0)


def _reinitialize(layer):
    for weight_name, initializer_name in (("kernel", "kernel_initializer"),
                                          ("bias", "bias_initializer")):
        weight = getattr(layer, weight_name, None)
        initializer = getattr(layer, initializer_name, None)
        if weight is not None and initializer is not None:
            weight.assign(initializer(tuple(weight.shape), dtype=weight.dtype))


def _fit_only(model, target, generator, *, epochs, optimizer, fit_kwargs,
              loss=None):
    """Fits `model` with only `target` trainable (and `loss` if given)."""
    config = _compile_config(model)
    original_optimizer = model.optimizer
    state = _TrainableState(model)
    _train_only(model, target)
    try:
        model.compile(**{**config, "optimizer": optimizer,
                         **({} if loss is None else {"loss": loss})})
        history = model.fit(generator, epochs=epochs, **fit_kwargs)
    finally:
        state.restore()
        # Recompiling resets the compiled train function, which on JAX holds
        # the (frozen) set of trainable variables.
        model.compile(**{**config, "optimizer": original_optimizer})
    return history


# cRT ---------------------------------------------------------------------------

def retrain_classifier(model, generator, *, epochs, reinitialize=True,
                       classifier=None, optimizer=None, **fit_kwargs):
    """Classifier re-training (cRT): trains only the classifier of a model.

    The second stage of decoupled training (Kang et al. 2020): after the
    whole network learned its representation on the natural (long-tailed)
    distribution, the backbone is frozen and the classifier alone is
    re-initialised and re-trained on class-balanced batches, e.g. from
    `kimbalance.data.BalancedBatchGenerator(x, y, sampler="class_balanced")`.

    Every layer except the classifier is frozen (`trainable=False`): its
    weights and BatchNorm moving statistics (inference mode) do not change.
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
        **fit_kwargs: further arguments of `model.fit` (`callbacks`,
            `verbose`, `validation_data`, ...).

    Returns:
        The `History` of the fit.

    Raises:
        ValueError: for a `model` not a built, compiled Keras model with a
            Dense / CosineDense layer, a `classifier` not such a layer of it,
            compiled metrics Keras cannot deserialize, `epochs` not an int
            >= 1, a non-bool `reinitialize`, an `optimizer` Keras cannot
            interpret or a `generator` that is not a batch generator.

    References:
        Kang, B. et al. "Decoupling Representation and Classifier for
        Long-Tailed Recognition." ICLR 2020.
    """
    _check_model(model)
    epochs = check_int("epochs", epochs, low=1)
    reinitialize = check_bool("reinitialize", reinitialize)
    generator = _check_generator(generator)
    head = _find_classifier(model, classifier)
    optimizer = _get_optimizer(optimizer)
    _compile_config(model)  # fail before touching the weights
    if reinitialize:
        _reinitialize(head)
    return _fit_only(model, head, generator, epochs=epochs, optimizer=optimizer,
                     fit_kwargs=fit_kwargs)


# Weight balancing --------------------------------------------------------------

def weight_balance(model, generator, *, epochs, max_norm=None, threshold=0.1,
                   weight_decay=None, loss=None, classifier=None, optimizer=None,
                   **fit_kwargs):
    """Weight balancing, stage 2: the classifier alone, norm-bounded and decayed.

    Weight balancing (Alshammari et al. 2022) trains the whole network with
    cross-entropy and a tuned, large weight decay (stage 1, which alone
    evens out the class weight norms), then fine-tunes the classifier only
    (not re-initialised; this function) with a class-balanced loss, weight
    decay and a max-norm bound: after every step each class's weight vector
    (a column of the `(features, classes)` kernel) is projected into the
    ball `||w_c|| <= max_norm` (the bias is not bounded). The bound defaults
    to the official code's `min_c ||w_c|| + threshold * (max_c ||w_c|| -
    min_c ||w_c||)` before stage 2. The projection is
    `keras.constraints.MaxNorm(max_norm, axis=0)` on the kernel during the
    fit (Keras optimizers apply it after every update) and once before it.
    Freezing, recompiling and restoring are as in `retrain_classifier`.
    The default optimizer is `AdamW(1e-3, weight_decay)` (decoupled:
    `w -= lr * wd * w` per step); the paper's is `SGD(0.01, momentum=0.9,
    weight_decay=0.1)` with cosine decay over 10 epochs (PyTorch couples the
    decay with the gradient: the same without momentum).

    Args:
        model: a built, compiled `keras.Model` (its metrics, and its loss
            unless `loss` is given, are used).
        generator: the batches to fit on (see `retrain_classifier`); the
            paper's are instance-sampled (the loss balances the classes).
        epochs: int >= 1, the number of epochs.
        max_norm: None for the threshold rule above, else a finite float > 0,
            the bound on every class's weight norm.
        threshold: finite float in [0, 1], the position of the default bound
            between the smallest and the largest class norm (used when
            `max_norm` is None).
        weight_decay: None for 0.1, else a finite float >= 0; only with the
            default optimizer (set your own optimizer's decay on it).
        loss: None for the model's compiled loss, else the stage-2 loss (a
            `keras.losses.Loss`, its name or a callable), e.g. the paper's
            class-balanced CE: `kimbalance.losses.
            WeightedCategoricalCrossentropy` with effective-number weights.
        classifier: `None` for the model's last `Dense` / `CosineDense`
            layer, else such a layer of the model or its name (the bound does
            not change a cosine classifier's outputs).
        optimizer: `None` for `AdamW(1e-3)` with `weight_decay`, else a Keras
            optimizer or its name.
        **fit_kwargs: further arguments of `model.fit`.

    Returns:
        A tuple `(history, max_norm)`: the fit's `History` and the bound
        used (a float).

    Raises:
        ValueError: as `retrain_classifier`, and for `max_norm` not a finite
            float > 0, `threshold` outside [0, 1], `weight_decay` negative or
            with an `optimizer`, or `loss` not None, a str or a callable.

    Examples:

    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> model.compile(loss="sparse_categorical_crossentropy")
    >>> batches = (b for b in [(np.ones((4, 3)), np.array([0, 1, 0, 1]))])
    >>> _, bound = weight_balance(model, batches, epochs=1, max_norm=0.5,
    ...                           verbose=0)
    >>> bool(np.all(np.linalg.norm(model.layers[-1].get_weights()[0], axis=0)
    ...             <= 0.5 + 1e-6))
    True

    References:
        Alshammari, S. et al. "Long-Tailed Recognition via Weight
        Balancing." CVPR 2022.
    """
    _check_model(model)
    epochs = check_int("epochs", epochs, low=1)
    generator = _check_generator(generator)
    head = _find_classifier(model, classifier)
    threshold = check_float("threshold", threshold, low=0.0, high=1.0)
    if max_norm is not None:
        max_norm = check_float("max_norm", max_norm, low=0.0, low_inclusive=False)
    if weight_decay is not None:
        weight_decay = check_float("weight_decay", weight_decay, low=0.0)
        if optimizer is not None:
            raise invalid("weight_decay", "None when an optimizer is given (set "
                          "the weight decay on the optimizer)", weight_decay)
    if loss is not None and not (isinstance(loss, str) or callable(loss)):
        raise invalid("loss", "None, a keras.losses.Loss, its name or a callable",
                      loss)
    if optimizer is None:
        optimizer = keras.optimizers.AdamW(  # the paper's stage-2 decay: 0.1
            learning_rate=1e-3, weight_decay=0.1 if weight_decay is None
            else weight_decay)
    optimizer = _get_optimizer(optimizer)
    _compile_config(model)  # fail before touching the weights
    if max_norm is None:
        norms = np.linalg.norm(np.asarray(ops.convert_to_numpy(head.kernel),
                                          np.float64), axis=0)
        max_norm = float(norms.min() + threshold * (norms.max() - norms.min()))
        if max_norm <= 0:
            raise invalid("model", "a classifier with a non-zero kernel (the "
                          "default bound is derived from its class norms)", model)
    kernel = head.kernel
    original = kernel.constraint
    kernel.constraint = keras.constraints.MaxNorm(max_norm, axis=0)
    try:
        kernel.assign(kernel.constraint(kernel))
        history = _fit_only(model, head, generator, epochs=epochs,
                            optimizer=optimizer, fit_kwargs=fit_kwargs, loss=loss)
    finally:
        kernel.constraint = original
    return history, max_norm


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
    path = _path_to(model, classifier)
    try:
        config = keras.saving.serialize_keras_object(model)
        edit(_layer_config(config, path))
        copy = keras.saving.deserialize_keras_object(config)
    except (NotImplementedError, KeyError, TypeError, IndexError):
        raise invalid("model", "a Sequential or Functional model (it is rebuilt "
                      "from its config)", model) from None
    copy_path = _path_to_same(copy, path)
    old_layers, new_layers = list(_walk(model)), list(_walk(copy))
    for old, new in zip(old_layers, new_layers, strict=True):
        if old is not classifier and not isinstance(old, keras.Model):
            new.set_weights(old.get_weights())
    return copy, copy_path[-1]


def _path_to_same(copy, path):
    """The layers of `copy` at the positions `path` has in the original."""
    result, container = [], copy
    for layer in path:
        names = [sub.name for sub in _sublayers(container)]
        container = _sublayers(container)[len(names) - 1 - names[::-1].index(
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


def tau_normalize(model, tau=1.0, *, classifier=None):
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
    _check_model(model)
    tau = check_float("tau", tau, low=0.0)
    head = _find_classifier(model, classifier)
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

def learn_weight_scaling(model, generator, *, epochs, classifier=None,
                         optimizer=None, **fit_kwargs):
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
    _check_model(model)
    epochs = check_int("epochs", epochs, low=1)
    generator = _check_generator(generator)
    head = _find_classifier(model, classifier)
    optimizer = _get_optimizer(optimizer)
    config = _compile_config(model)
    path = _path_to(model, head)
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
    history = _fit_only(scaled, scale, generator, epochs=epochs,
                        optimizer=optimizer, fit_kwargs=fit_kwargs)
    return scaled, history


def _output_of(layer):
    try:
        return layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None


# SAM ---------------------------------------------------------------------------

@export
class SharpnessAwareModel(keras.Model):
    """Wraps a model so that `fit` uses sharpness-aware minimisation (SAM).

    Each training step computes the gradient `g` at the weights `w`, moves to
    the worst-case neighbour `w + e` with `e = rho * g / ||g||` (the norm over
    all trainable weights), computes the gradient there and applies THAT
    gradient at `w` with the compiled optimizer. With `adaptive=True` the
    neighbourhood is scaled elementwise by `|w|` (ASAM, Kwon et al. 2021):
    `e = rho * w**2 * g / ||w * g||`, with `rho` about 10 times larger
    (e.g. 0.5 to 2.0). `rho=0` is exactly the plain training step.

    With `sharpness_classes` (ImbSAM, Zhou et al. 2023) only the loss of the
    samples of those (tail) classes is made flat: the loss splits into
    `L_head + L_tail` by each sample's class (its id, or the argmax of a
    one-hot / soft label row) through the sample weights (the parts add up
    to the loss under the default `sum_over_batch_size` reduction), `e`
    comes from the gradient of `L_tail` and the applied gradient is
    `grad L_head(w) + grad L_tail(w + e)`, as in the official code. With
    every class listed this is SAM; with `rho=0` the plain step up to
    rounding. Layer regularization losses belong to `L_tail`.

    Non-trainable state (BatchNorm moving statistics, seed generators) is
    reset before the second pass and restored after it: the moving
    statistics are those of the first pass (the unperturbed weights, as the
    SAM authors recommend), and `Dropout` draws the same masks in both
    passes. Loss and metrics are those of the first pass. The wrapper shares
    its weights with `model` (fitting it trains `model` in place); compile
    the wrapper with any loss, optimizer and metrics. The step is written
    for torch, jax (stateless) and tensorflow; a step costs two forward and
    backward passes (ImbSAM: one more backward, jax: one more of each). No
    distribution strategies. The wrapper is serializable (its config holds
    the model's) and saves to / loads from `.keras` files.

    Args:
        model: the `keras.Model` to train.
        rho: finite float >= 0, the radius of the neighbourhood.
        adaptive: bool, ASAM's scale-invariant neighbourhood.
        epsilon: finite float > 0 added to the gradient norm.
        sharpness_classes: None (SAM), or the class ids (ints >= 0, unique,
            at least one) whose loss the perturbation comes from (ImbSAM).
        **kwargs: base model arguments (`name`, ...).

    Raises:
        ValueError: for a `model` that is not a Keras model, `rho` negative
            or not finite, a non-bool `adaptive`, `epsilon` not a finite
            float > 0 or bad `sharpness_classes`.

    Examples:

    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> sam = SharpnessAwareModel(model, rho=0.05)
    >>> sam.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    >>> history = sam.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), verbose=0)
    >>> len(history.history["loss"])
    1

    References:
        Foret, P. et al. "Sharpness-Aware Minimization for Efficiently
        Improving Generalization." ICLR 2021.
        Kwon, J. et al. "ASAM: Adaptive Sharpness-Aware Minimization for
        Scale-Invariant Learning of Deep Neural Networks." ICML 2021.
        Zhou, Y. et al. "ImbSAM: A Closer Look at Sharpness-Aware
        Minimization in Class-Imbalanced Recognition." ICCV 2023.
    """

    def __init__(self, model, rho=0.05, *, adaptive=False, epsilon=1e-12,
                 sharpness_classes=None, **kwargs):
        super().__init__(**kwargs)
        self.model = _check_model(model, built=False)
        self.rho = check_float("rho", rho, low=0.0)
        self.adaptive = check_bool("adaptive", adaptive)
        self.epsilon = check_float("epsilon", epsilon, low=0.0,
                                   low_inclusive=False)
        classes = sharpness_classes
        if classes is not None and not (
                isinstance(classes, list | tuple | np.ndarray) and len(classes)
                and all(isinstance(c, int | np.integer) and not isinstance(c, bool)
                        and c >= 0 for c in classes)
                and len(set(map(int, classes))) == len(classes)):
            raise invalid("sharpness_classes", "None or a non-empty list of "
                          "unique class ids (ints >= 0)", classes)
        self.sharpness_classes = None if classes is None else list(map(int, classes))
        self._head_pass = False

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "model": keras.saving.serialize_keras_object(self.model),
                "rho": self.rho, "adaptive": self.adaptive,
                "epsilon": self.epsilon,
                "sharpness_classes": self.sharpness_classes}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(
            config.pop("model"), custom_objects=custom_objects)
        return cls(model, **config)

    def compute_loss(self, *args, **kwargs):
        loss = super().compute_loss(*args, **kwargs)
        if self._head_pass and self.losses:  # regularization belongs to L_tail
            loss = loss - sum(ops.cast(ops.sum(r), loss.dtype) for r in self.losses)
        return loss

    def _split(self, y, sample_weight):
        """`(head, tail)` sample weights; `(None, sample_weight)` for SAM."""
        if self.sharpness_classes is None:
            return None, sample_weight
        y = ops.convert_to_tensor(y)
        ids = (ops.argmax(y, axis=-1) if len(y.shape) > 1 and y.shape[-1] != 1
               else ops.reshape(y, (-1,)))
        classes = ops.convert_to_tensor(self.sharpness_classes, "int32")
        tail = ops.cast(ops.any(ops.equal(ops.expand_dims(
            ops.cast(ids, "int32"), -1), classes), axis=-1), "float32")
        weight = ops.ones_like(tail) if sample_weight is None else ops.cast(
            sample_weight, "float32")
        tail = ops.reshape(tail, (-1,) + (1,) * (len(weight.shape) - 1))
        return weight * (1.0 - tail), weight * tail

    def _head_pass_of(self, function, *args, **kwargs):
        """`function(...)` with `compute_loss` giving `L_head` (no
        regularization); the flag is read while tracing."""
        self._head_pass = True
        try:
            return function(*args, **kwargs)
        finally:
            self._head_pass = False

    @staticmethod
    def _add(gradients, head_gradients):
        if head_gradients is None:
            return gradients
        return [h if g is None else g if h is None else g + h
                for g, h in zip(gradients, head_gradients, strict=True)]

    # The perturbation, in keras.ops on whichever backend's tensors.
    def _perturbations(self, gradients, weights):
        present = [(g, w) for g, w in zip(gradients, weights, strict=True)
                   if g is not None]
        squares = [
            ops.sum(ops.square(ops.cast(g * ops.abs(w) if self.adaptive else g,
                                        "float32")))
            for g, w in present
        ]
        norm = ops.sqrt(sum(squares[1:], squares[0])) if squares else 0.0
        scale = self.rho / (norm + self.epsilon)

        def step(g, w):
            e = ops.cast(g, "float32") * scale
            return ops.cast(e * ops.square(ops.cast(w, "float32")) if self.adaptive
                            else e, w.dtype)

        return [None if g is None else step(g, w)
                for g, w in zip(gradients, weights, strict=True)]

    def _track_loss(self, loss, x):
        batch_size = ops.shape(next(i for i in keras.tree.flatten(x)
                                    if i is not None))[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=batch_size)

    def _forward(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred,
                                 sample_weight=sample_weight, training=True)
        return y_pred, loss

    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "jax":
            return self._jax_train_step(*args)
        if backend == "torch":
            return self._torch_train_step(*args)
        if backend == "tensorflow":
            return self._tensorflow_train_step(*args)
        raise NotImplementedError(
            f"SharpnessAwareModel supports the jax, torch and tensorflow backends, "
            f"not {backend}.")

    def _torch_train_step(self, data):
        import torch

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        head_weight, weight = self._split(y, sample_weight)
        weights = self.trainable_weights[:]
        states = self.non_trainable_variables
        before = [torch.clone(v.value.detach()) for v in states]
        self.zero_grad()
        y_pred, loss = self._forward(x, y, weight)
        head_gradients = None
        if head_weight is not None:  # ImbSAM: grad L_head(w), kept
            head = self._head_pass_of(self.compute_loss, x=x, y=y, y_pred=y_pred,
                                      sample_weight=head_weight, training=True)
            self.optimizer.scale_loss(head).backward(retain_graph=True)
            head_gradients = [None if v.value.grad is None else
                              torch.clone(v.value.grad) for v in weights]
            self.zero_grad()
        self._track_loss(loss if head_weight is None else loss + head, x)
        self.optimizer.scale_loss(loss).backward()
        gradients = [v.value.grad for v in weights]
        with torch.no_grad():
            originals = [torch.clone(v.value.detach()) for v in weights]
            after = [torch.clone(v.value.detach()) for v in states]
            for v, e in zip(weights, self._perturbations(gradients, originals),
                            strict=True):
                if e is not None:
                    v.assign(v.value + e)
            for v, value in zip(states, before, strict=True):
                v.assign(value)
        self.zero_grad()
        _, perturbed_loss = self._forward(x, y, weight)
        self.optimizer.scale_loss(perturbed_loss).backward()
        gradients = self._add([v.value.grad for v in weights], head_gradients)
        with torch.no_grad():
            for v, value in zip(weights, originals, strict=True):
                v.assign(value)
            for v, value in zip(states, after, strict=True):
                v.assign(value)
            self.optimizer.apply(gradients, weights)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _tensorflow_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        head_weight, weight = self._split(y, sample_weight)
        weights = self.trainable_weights
        states = self.non_trainable_variables
        before = [tf.identity(v.value) for v in states]
        with tf.GradientTape(persistent=head_weight is not None) as tape:
            y_pred, loss = self._forward(x, y, weight)
            if head_weight is not None:  # ImbSAM: grad L_head(w), kept
                head = self._head_pass_of(
                    self.compute_loss, x=x, y=y, y_pred=y_pred,
                    sample_weight=head_weight, training=True)
                scaled_head = self.optimizer.scale_loss(head)
            self._track_loss(loss if head_weight is None else loss + head, x)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, weights)
        head_gradients = (None if head_weight is None
                          else tape.gradient(scaled_head, weights))
        del tape
        originals = [tf.identity(v.value) for v in weights]
        after = [tf.identity(v.value) for v in states]
        perturbations = self._perturbations(gradients, originals)
        for v, value, e in zip(weights, originals, perturbations, strict=True):
            if e is not None:
                v.assign(value + e)
        for v, value in zip(states, before, strict=True):
            v.assign(value)
        with tf.GradientTape() as tape:
            _, perturbed_loss = self._forward(x, y, weight)
            scaled = self.optimizer.scale_loss(perturbed_loss)
        gradients = self._add(tape.gradient(scaled, weights), head_gradients)
        for v, value in zip(weights, originals, strict=True):
            v.assign(value)
        for v, value in zip(states, after, strict=True):
            v.assign(value)
        self.optimizer.apply_gradients(zip(gradients, weights, strict=True))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_state, metrics_state = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        head_weight, weight = self._split(y, sample_weight)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (_, aux), gradients = grad_fn(
            trainable, non_trainable, metrics_state, x, y, weight,
            training=True, optimizer_variables=optimizer_state)
        loss, y_pred, updated_non_trainable, metrics_state = aux
        head_gradients = None
        if head_weight is not None:  # ImbSAM: grad L_head(w), same seeds
            (_, (head, *_)), head_gradients = self._head_pass_of(
                grad_fn, trainable, non_trainable, metrics_state, x, y,
                head_weight, training=True, optimizer_variables=optimizer_state)
            loss = loss + head
        perturbations = self._perturbations(gradients, trainable)
        perturbed = [w if e is None else w + e
                     for w, e in zip(trainable, perturbations, strict=True)]
        # From the initial non-trainable state (same seeds); updates dropped.
        _, gradients = grad_fn(
            perturbed, non_trainable, metrics_state, x, y, weight,
            training=True, optimizer_variables=optimizer_state)
        gradients = self._add(gradients, head_gradients)
        trainable, optimizer_state = self.optimizer.stateless_apply(
            optimizer_state, gradients, trainable)
        mapping = list(zip(self.metrics_variables, metrics_state, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._track_loss(loss, x)
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        metrics_state = [
            value if (value := scope.get_current_value(v)) is not None else old
            for v, old in zip(self.metrics_variables, metrics_state, strict=True)
        ]
        return logs, (trainable, updated_non_trainable, optimizer_state,
                      metrics_state)
