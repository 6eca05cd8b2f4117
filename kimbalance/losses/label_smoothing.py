"""Label-aware smoothing cross-entropy (MiSLAS, Zhong et al. 2021)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import numpy.typing as npt
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import (
    check_bool,
    check_choice,
    check_counts,
    check_float,
    invalid,
)
from kimbalance.losses._common import (
    KimbalanceLoss,
    categorical_targets,
    check_labels,
    log_probs,
    num_outputs,
    to_float32,
)

__all__ = ["LabelAwareSmoothingCrossentropy", "label_aware_smoothing_crossentropy"]

SHAPES = ("concave", "linear", "convex")


def _class_counts(value):
    return check_counts("class_counts", value, positive=True).astype(np.float64)


def _check_smoothing(name, value):
    return check_float(name, value, low=0.0, high=1.0)


def _check_shape(value):
    return check_choice("shape", value, SHAPES)


def class_smoothing(class_counts: ArrayLike, head_smoothing: float = 0.4,
                    tail_smoothing: float = 0.1,
                    shape: str = "concave") -> npt.NDArray[np.float64]:
    """Per-class smoothing factors of label-aware smoothing (MiSLAS).

    With `t_c = (n_c - n_min) / (n_max - n_min)` in [0, 1] (0 for the rarest
    class, 1 for the most frequent), the official code's shapes are

    - `"concave"`: `eps_c = tail + (head - tail) * sin(pi / 2 * t_c)`;
    - `"linear"`: `eps_c = tail + (head - tail) * t_c`;
    - `"convex"`: `eps_c = head + (head - tail) * sin(3 pi / 2 + pi / 2 * t_c)`,
      i.e. `head - (head - tail) * cos(pi / 2 * t_c)`;

    so the most frequent class gets `head_smoothing` and the rarest
    `tail_smoothing`. When every class has the same count (the official
    formula divides by zero there) every class gets `tail_smoothing`.

    Args:
        class_counts: the training-set count of each class (all > 0).
        head_smoothing: the smoothing of the most frequent class, in [0, 1].
        tail_smoothing: the smoothing of the rarest class, in [0, 1].
        shape: `"concave"`, `"linear"` or `"convex"`.

    Returns:
        A float64 NumPy array of C factors in [0, 1].

    Raises:
        ValueError: for counts that are not positive whole numbers, factors
            outside [0, 1] or an unknown shape.

    Examples:

    >>> class_smoothing([100, 55, 10], 0.4, 0.1, "linear").round(3).tolist()
    [0.4, 0.25, 0.1]
    """
    counts = _class_counts(class_counts)
    head = _check_smoothing("head_smoothing", head_smoothing)
    tail = _check_smoothing("tail_smoothing", tail_smoothing)
    shape = _check_shape(shape)
    spread = counts.max() - counts.min()
    t = (counts - counts.min()) / spread if spread else np.zeros_like(counts)
    if shape == "concave":
        eps = tail + (head - tail) * np.sin(np.pi / 2 * t)
    elif shape == "linear":
        eps = tail + (head - tail) * t
    else:
        eps = head + (head - tail) * np.sin(1.5 * np.pi + np.pi / 2 * t)
    # sin/cos round-off must not push a factor outside [0, 1].
    return np.clip(eps, 0.0, 1.0)


@export
def label_aware_smoothing_crossentropy(y_true: Any, y_pred: Any, *,
                                       class_counts: ArrayLike,
                                       head_smoothing: float = 0.4,
                                       tail_smoothing: float = 0.1,
                                       shape: str = "concave",
                                       from_logits: bool = True) -> Any:
    """Cross-entropy with a label smoothing factor that depends on the class.

    For a sample of class y, `loss = (1 - eps_y) * (-log p_y) + eps_y *
    mean_c(-log p_c)`, i.e. cross-entropy against the target `(1 - eps_y) *
    onehot(y) + eps_y / C` (Keras' label-smoothing convention), with `eps_c`
    from `class_smoothing` (frequent classes smoothed more, which MiSLAS shows
    calibrates long-tailed classifiers). Soft labels `q` use `eps = sum_c q_c
    eps_c` and the target `(1 - eps) * q + eps / C`. With both factors 0
    it is plain cross-entropy.

    Args:
        y_true: class ids (N,) / (N, 1), or one-hot / soft labels (N, C).
        y_pred: logits (default) or probabilities (`from_logits=False`), (N, C).
        class_counts: the training-set count of each class (all > 0).
        head_smoothing: the smoothing of the most frequent class, in [0, 1].
        tail_smoothing: the smoothing of the rarest class, in [0, 1].
        shape: `"concave"` (default), `"linear"` or `"convex"`: how the
            factor falls from head to tail (see `class_smoothing`).
        from_logits: whether `y_pred` holds logits (default True).

    Returns:
        A float32 tensor of shape y_pred.shape[:-1].

    Raises:
        ValueError: for invalid arguments, counts that are not one per class
            of `y_pred`, or label values that break the rules of
            `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0]])
    >>> loss = label_aware_smoothing_crossentropy(
    ...     y_true, logits, class_counts=[90, 10], head_smoothing=0.2,
    ...     tail_smoothing=0.0)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.3269, 2.1269]

    References:
        Zhong et al., "Improving Calibration for Long-Tailed Recognition",
        CVPR 2021 (official code: github.com/dvlab-research/MiSLAS).
    """
    eps = class_smoothing(class_counts, head_smoothing, tail_smoothing, shape)
    from_logits = check_bool("from_logits", from_logits)
    y_pred = to_float32(y_pred)
    num_classes = num_outputs(y_pred)
    if num_classes is not None and eps.shape[0] != num_classes:
        raise invalid("class_counts", f"{num_classes} values (one per class: the "
                      f"last dimension of y_pred is {num_classes})", class_counts)
    check_labels(y_true, y_pred, "distribution")
    logp = log_probs(y_pred, from_logits)
    targets, _ = categorical_targets(ops.convert_to_tensor(y_true), y_pred)
    eps_row = ops.sum(targets * ops.convert_to_tensor(eps, dtype=y_pred.dtype),
                      axis=-1, keepdims=True)
    smoothed = (1.0 - eps_row) * targets + eps_row / eps.shape[0]
    return -ops.sum(smoothed * logp, axis=-1)


@export
class LabelAwareSmoothingCrossentropy(KimbalanceLoss):
    """Label-aware smoothing cross-entropy of MiSLAS (`keras.losses.Loss`).

    Per sample the cross-entropy against a target smoothed by a per-class
    factor: `head_smoothing` for the most frequent class falling to
    `tail_smoothing` for the rarest along `shape` (see
    `label_aware_smoothing_crossentropy` and `class_smoothing`). MiSLAS uses
    it in the classifier re-training stage after a mixup stage 1.

    Reduction: `call()` returns the per-sample values under every reduction;
    the default `"sum_over_batch_size"` averages them over the batch. For
    PyTorch's weighted mean `sum(w * l) / sum(w)`, pass per-sample weights `w`
    as `sample_weight` and use `reduction="mean_with_sample_weight"`.

    Args:
        class_counts: the training-set count of each class (all > 0).
        head_smoothing: the smoothing of the most frequent class, in [0, 1].
        tail_smoothing: the smoothing of the rarest class, in [0, 1].
        shape: `"concave"` (default), `"linear"` or `"convex"`.
        from_logits: whether `y_pred` holds logits (default True).
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

    Examples:

    >>> loss = LabelAwareSmoothingCrossentropy([90, 10], head_smoothing=0.2,
    ...                                        tail_smoothing=0.0)
    >>> round(float(loss(np.array([0, 1]), np.array([[2.0, 0.0], [2.0, 0.0]]))), 4)
    1.2269

    References:
        Zhong et al., "Improving Calibration for Long-Tailed Recognition",
        CVPR 2021.
    """

    fn = label_aware_smoothing_crossentropy

    def __init__(self, class_counts: ArrayLike, head_smoothing: float = 0.4,
                 tail_smoothing: float = 0.1, shape: str = "concave",
                 from_logits: bool = True,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "label_aware_smoothing_crossentropy",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            class_counts=check_counts("class_counts", class_counts, positive=True),
            head_smoothing=_check_smoothing("head_smoothing", head_smoothing),
            tail_smoothing=_check_smoothing("tail_smoothing", tail_smoothing),
            shape=_check_shape(shape),
            from_logits=check_bool("from_logits", from_logits))
