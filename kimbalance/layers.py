"""Keras layers for class-imbalanced classification.

- `CosineDense`: a cosine-similarity classifier head (LDAM's NormedLinear).
- `LogitAdjustment`: post-hoc logit adjustment by class priors.
- `ThresholdDecision`: per-label / per-class 0/1 decisions with tuned
  thresholds (`score >= threshold`, the convention of
  `kimbalance.thresholds`).
- `ClassScale`: per-class learnable logit scales (LWS), initialised to 1.

All four use `keras.ops` only, run on torch, jax and tensorflow, accept
float16 inputs (computing in float32 inside), serialise through
`get_config()` and save to `.keras` files that load on any backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import (
    MAX_SCALE,
    check_float,
    check_int,
    check_vector,
    invalid,
)

__all__ = ["ClassScale", "CosineDense", "LogitAdjustment", "ThresholdDecision"]

# As torch.nn.functional.normalize: x / max(||x||, eps).
_NORM_EPSILON = 1e-12

# `MAX_SCALE` bounds the logit scales (CosineDense `scale`, LogitAdjustment
# `tau`), as it bounds the losses': outputs stay within about 1e4 (cosine logits) or
# 1e4 * 745 (tau times float64's most negative log-prior), finite in float32,
# and |logits| <= 1e4 also in float16 (max 65504). Larger scales only saturate
# the softmax to one-hot.


def _l2_normalize(x: Any, axis: int) -> Any:
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    # rsqrt(max(.)) rather than sqrt then max: the gradient stays finite at 0.
    return x * ops.rsqrt(ops.maximum(squared_norm, _NORM_EPSILON**2))


class _UnitColumnUniform(keras.initializers.Initializer):
    """uniform(-1, 1) with every column (output unit) rescaled to unit L2 norm.

    The initialisation of LDAM's NormedLinear
    (`uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)` on an (in, out) weight).
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._uniform = keras.initializers.RandomUniform(-1.0, 1.0, seed=seed)

    def __call__(self, shape, dtype=None):
        values = self._uniform(shape, dtype="float32")
        values = _l2_normalize(values, axis=0)
        return ops.cast(values, dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}


@export
class CosineDense(keras.layers.Layer):
    """Cosine-similarity classifier: `scale * cos(x, w_j)` for each unit j.

    Inputs are L2-normalised along the last axis and the kernel along its
    input axis (one unit vector per output unit); there is no bias. The
    output lies in `[-scale, scale]`, so every class logit has the same
    range whatever the number of training samples of the class: the
    classifier of LDAM (Cao et al.'s `NormedLinear`), whose loss
    `kimbalance.losses.LDAMLoss` applies its own scale `s` (keep
    `scale=1.0` there). With a plain cross-entropy, use a scale of about
    10 to 30 so the softmax can become confident.

    The kernel, shape `(input_dim, units)`, is initialised as in the
    official code: uniform(-1, 1), each column rescaled to unit norm.
    Normalisation uses `x / max(||x||, 1e-12)` like
    `torch.nn.functional.normalize` and runs in float32 (also under a
    `mixed_float16` policy); the output has the layer's compute dtype.

    Args:
        units: int >= 1, the number of classes (output units).
        scale: float in (0, 1e4], multiplier of the cosine similarities
            (1e4 keeps the outputs finite in float16 too).
        kernel_initializer: initializer of the kernel; `None` (default) for
            the LDAM initialisation above.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., input_dim)`.

    Output shape:
        `(..., units)`.

    Raises:
        ValueError: for `units` not an int >= 1, `scale` not a finite float
            in (0, 1e4], or a `kernel_initializer` Keras cannot interpret.

    Examples:

    >>> layer = CosineDense(3)
    >>> logits = layer(np.array([[3.0, 4.0], [0.0, -2.0]]))
    >>> tuple(logits.shape)
    (2, 3)
    >>> bool(np.all(np.abs(keras.ops.convert_to_numpy(logits)) <= 1.0 + 1e-6))
    True

    References:
        Cao, K. et al. "Learning Imbalanced Datasets with Label-Distribution-
        Aware Margin Loss." NeurIPS 2019.
    """

    def __init__(self, units: int, *, scale: float = 1.0,
                 kernel_initializer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = check_int("units", units, low=1)
        self.scale = check_float("scale", scale, low=0.0, low_inclusive=False,
                                 high=MAX_SCALE)
        self._kernel_initializer_arg = kernel_initializer
        if kernel_initializer is None:
            self.kernel_initializer = _UnitColumnUniform()
        else:
            self.kernel_initializer = _get_initializer(kernel_initializer)

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise invalid("input_shape", "a known last dimension",
                          tuple(input_shape))
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
        )

    def call(self, inputs: Any) -> Any:
        inputs = ops.cast(inputs, "float32")
        kernel = ops.cast(self.kernel, "float32")
        cosine = ops.matmul(_l2_normalize(inputs, axis=-1),
                            _l2_normalize(kernel, axis=0))
        if self.scale != 1.0:
            cosine = cosine * self.scale
        return ops.cast(cosine, self.compute_dtype)

    def compute_output_shape(
            self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "units": self.units,
            "scale": self.scale,
            "kernel_initializer": (
                None if self._kernel_initializer_arg is None
                else keras.initializers.serialize(self.kernel_initializer)
            ),
        })
        return config


@export
class LogitAdjustment(keras.layers.Layer):
    """Post-hoc logit adjustment: `logits - tau * log(prior)`.

    Appended to a model trained with a plain cross-entropy on long-tailed
    data, it subtracts the (scaled) log class priors of the training set so
    that the argmax approximates the balanced-error-optimal decision
    (Menon et al. 2021, Eq. 8). `tau=1` is the Bayes-optimal adjustment for
    the balanced error when the model estimates the training posterior;
    `tau=0` is the identity. Inputs are logits, not probabilities; the output
    is adjusted logits (apply a softmax after it if you need probabilities).

    Args:
        class_priors: per-class priors or counts (1-D, every entry a finite
            float > 0); normalised to sum to 1 internally (in log space, so
            any finite positive values work, 1e308 included).
        tau: float in [0, 1e4], the strength of the adjustment.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., num_classes)` logits, `num_classes = len(class_priors)`.

    Output shape:
        Same as the input.

    Raises:
        ValueError: for priors that are not a non-empty 1-D sequence of finite
            values > 0, `tau` not a finite float in [0, 1e4], or inputs whose
            last dimension differs from `len(class_priors)`.

    Examples:

    >>> layer = LogitAdjustment(class_priors=[900, 90, 10])
    >>> adjusted = layer(np.zeros((1, 3)))
    >>> np.round(keras.ops.convert_to_numpy(adjusted).astype("float64"), 3).tolist()
    [[0.105, 2.408, 4.605]]

    References:
        Menon, A. K. et al. "Long-tail learning via logit adjustment."
        ICLR 2021.
    """

    def __init__(self, class_priors: ArrayLike, *, tau: float = 1.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            priors = check_vector("class_priors", class_priors, positive=True)
        except OverflowError:  # Python ints beyond float64 (10**400)
            raise invalid("class_priors", "finite values > 0 (float64)",
                          class_priors) from None
        self.class_priors = priors.tolist()
        self.tau = check_float("tau", tau, low=0.0, high=MAX_SCALE)
        # log(p / sum(p)) in log space: finite even where sum(p) overflows
        # (priors of 1e308) or p / sum(p) underflows (1e-308 next to 1e308).
        logs = np.log(priors)
        log_priors = logs - np.logaddexp.reduce(logs)
        self._offset = (self.tau * log_priors).astype(np.float32)

    def build(self, input_shape: Sequence[int | None]) -> None:
        _check_last_dim(input_shape, "class_priors", self.class_priors)

    def call(self, inputs: Any) -> Any:
        logits = ops.cast(inputs, "float32")
        adjusted = logits - ops.convert_to_tensor(self._offset)
        return ops.cast(adjusted, self.compute_dtype)

    def compute_output_shape(
            self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"class_priors": self.class_priors, "tau": self.tau})
        return config


@export
class ThresholdDecision(keras.layers.Layer):
    """Per-label (or per-class) 0/1 decisions: `score >= threshold`.

    Turns probabilities into decisions with thresholds tuned on validation
    data, e.g. by `kimbalance.thresholds.tune_thresholds`, so a deployed
    model outputs decisions directly. Column j of the output is 1 where
    `inputs[..., j] >= thresholds[j]` (the sklearn convention used
    throughout kimbalance), else 0, in the layer's compute dtype. The
    comparison runs in float32 against each threshold rounded up to the
    nearest float32, so for float32 (or float16) scores the decisions are
    exactly those of `scores >= thresholds` in NumPy float64, e.g. with the
    thresholds returned by `tune_thresholds` on the model's own scores.

    Args:
        thresholds: a float in [0, 1] used for every column, or a 1-D
            sequence of floats in [0, 1], one per label / class.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., num_labels)` scores (probabilities).

    Output shape:
        Same as the input, with values 0 and 1.

    Raises:
        ValueError: for thresholds outside [0, 1], non-finite, empty or not
            1-D, or inputs whose last dimension differs from
            `len(thresholds)`.

    Examples:

    >>> layer = ThresholdDecision([0.5, 0.2])
    >>> decisions = layer(np.array([[0.6, 0.1], [0.4, 0.2]]))
    >>> keras.ops.convert_to_numpy(decisions).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, thresholds: float | ArrayLike, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        values = None
        if not isinstance(thresholds, str | bytes | bool | np.bool_ | dict | set
                          ) and thresholds is not None:
            try:
                raw = np.asarray(thresholds)
                if raw.dtype.kind in "iuf":  # not bools, strings or objects
                    values = raw.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if values is None or values.ndim > 1 or values.size == 0:
            raise invalid("thresholds", "a float or a non-empty 1-D sequence of "
                          "floats in [0, 1]", thresholds)
        if not np.all(np.isfinite(values)) or np.any((values < 0.0) | (values > 1.0)):
            raise invalid("thresholds", "values in [0, 1]", thresholds)
        self.thresholds = values.tolist()  # a float for a scalar, else a list
        self._num_labels = None if values.ndim == 0 else values.size
        self._threshold_values = _float32_ceil(values)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if self._num_labels is not None:
            _check_last_dim(input_shape, "thresholds", self.thresholds)

    def call(self, inputs: Any) -> Any:
        scores = ops.cast(inputs, "float32")
        decisions = ops.greater_equal(
            scores, ops.convert_to_tensor(self._threshold_values))
        return ops.cast(decisions, self.compute_dtype)

    def compute_output_shape(
            self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["thresholds"] = self.thresholds
        return config


def _get_initializer(identifier: Any) -> Any:
    try:
        initializer = keras.initializers.get(identifier)
    except (ValueError, TypeError):
        initializer = None
    if initializer is None or not callable(initializer):
        raise invalid("kernel_initializer", "None, a Keras initializer, its name or "
                      "its config", identifier)
    return initializer


def _float32_ceil(values: np.ndarray) -> npt.NDArray[np.float32]:
    """The smallest float32 >= each value: for any float32 (or float16) score s,
    `s >= result` holds exactly when `s >= value` does in float64."""
    rounded = values.astype(np.float32)
    below = rounded.astype(np.float64) < values
    up = np.nextafter(rounded, np.float32(np.inf))
    return np.where(below, up, rounded).astype(np.float32)


def _check_last_dim(input_shape: Sequence[int | None], argument: str,
                    values: Any) -> None:
    last = input_shape[-1] if len(input_shape) else None
    if last is not None and last != len(values):
        raise invalid(
            argument,
            f"one entry per input column (a sequence of length {last} for inputs "
            f"of shape {tuple(input_shape)})",
            values,
        )


@export
class ClassScale(keras.layers.Layer):
    """Per-class learnable scale: `inputs * scale`, one scale per class.

    The layer of learnable weight scaling (LWS, Kang et al. 2020): placed
    after a classifier's linear output, scale `f_c` multiplies the logit of
    class c, i.e. class c's weight vector and bias, so training only the
    scales on class-balanced batches rebalances the classifier's weight
    norms. The scales start at 1 (the identity), have shape
    `(num_classes,)` taken from the input's last dimension at build time,
    and are multiplied in float32 (also under a `mixed_float16` policy).
    `kimbalance.training.learn_weight_scaling` inserts and trains it.

    Args:
        scale_initializer: initializer of the scales (default `"ones"`).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(..., num_classes)` logits.

    Output shape:
        Same as the input.

    Raises:
        ValueError: for a `scale_initializer` Keras cannot interpret, or
            inputs with an unknown last dimension.

    Examples:

    >>> layer = ClassScale()
    >>> keras.ops.convert_to_numpy(layer(np.array([[1.0, -2.0]]))).tolist()
    [[1.0, -2.0]]

    References:
        Kang, B. et al. "Decoupling Representation and Classifier for
        Long-Tailed Recognition." ICLR 2020.
    """

    def __init__(self, *, scale_initializer: Any = "ones", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            initializer = keras.initializers.get(scale_initializer)
        except (ValueError, TypeError):
            initializer = None
        if initializer is None or not callable(initializer):
            raise invalid("scale_initializer", "a Keras initializer, its name or "
                          "its config", scale_initializer)
        self.scale_initializer = initializer

    def build(self, input_shape: Sequence[int | None]) -> None:
        num_classes = input_shape[-1] if len(input_shape) else None
        if num_classes is None:
            raise invalid("input_shape", "a known last dimension",
                          tuple(input_shape))
        self.scale = self.add_weight(name="scale", shape=(num_classes,),
                                     initializer=self.scale_initializer)

    def call(self, inputs: Any) -> Any:
        scaled = ops.cast(inputs, "float32") * ops.cast(self.scale, "float32")
        return ops.cast(scaled, self.compute_dtype)

    def compute_output_shape(
            self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["scale_initializer"] = keras.initializers.serialize(
            self.scale_initializer)
        return config
