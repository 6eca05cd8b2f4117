"""Focal losses: softmax (multi-class) and sigmoid (binary / multi-label).

Both work in log space from logits and compute the focusing factor
`(1 - p_t) ** gamma` so that value and gradient stay finite for float32
logits of any magnitude. (Keras' `CategoricalFocalCrossentropy` clips
softmax probabilities to [1e-7, 1 - 1e-7] also from logits, which caps the
loss of a confidently wrong prediction near `alpha * 16` and zeroes its
gradient; `BinaryFocalCrossentropy` is capped the same way on the torch and
jax backends.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kimbalance._api import export
from kimbalance._validation import check_bool
from kimbalance.losses._common import (
    PROB_EPSILON,
    IgnoreClassLoss,
    KimbalanceLoss,
    binary_nll,
    binary_targets,
    categorical_parts,
    categorical_targets,
    check_exponent,
    check_ignore_class,
    check_label_smoothing,
    check_labels,
    check_scalar_or_vector,
    is_sparse_labels,
    masked,
    mean_over_labels,
    num_outputs,
    take_class,
    to_float32,
    vector_tensor,
)
from kimbalance.losses._fused import TINY, sigmoid_focal, softmax_focal

__all__ = [
    "FocalCrossentropy",
    "SigmoidFocalCrossentropy",
    "focal_crossentropy",
    "sigmoid_focal_crossentropy",
]

_MAX_INTEGER_GAMMA = 4


def _check_gamma(gamma):
    return check_exponent("gamma", gamma)


def _check_alpha(alpha):
    # alpha scales the whole softmax focal loss: 0 everywhere is an error.
    return check_scalar_or_vector("alpha", alpha, nonzero=True)


def _focal_factor(one_minus_pt, gamma):
    """`(1 - p_t) ** gamma`, or None for gamma = 0 (factor 1, exactly CE).

    Small integer gammas are products (exact, cheap, smooth at 0); other
    gammas use `power` at `max(1 - p_t, TINY)` so the gradient of
    `x ** gamma` (infinite at 0 for gamma < 1) is never evaluated at 0.
    """
    if gamma == 0.0:
        return None
    if float(gamma).is_integer() and gamma <= _MAX_INTEGER_GAMMA:
        factor = one_minus_pt
        for _ in range(int(gamma) - 1):
            factor = factor * one_minus_pt
        return factor
    return ops.power(ops.maximum(one_minus_pt, TINY), gamma)


def _alpha_value(alpha, num, dtype, what):
    return vector_tensor("alpha", alpha, num, dtype, what)


@export
def focal_crossentropy(y_true: Any, y_pred: Any, *, gamma: float = 2.0,
                       alpha: float | Sequence[float] | np.ndarray | None = None,
                       from_logits: bool = False, label_smoothing: float = 0.0,
                       ignore_class: int | None = None) -> Any:
    """Softmax focal cross-entropy, one value per sample.

    `-sum_c alpha[c] * y[c] * (1 - p[c]) ** gamma * log p[c]`; for class ids
    `-alpha[y] * (1 - p[y]) ** gamma * log p[y]` (Lin et al.). With `gamma=0`
    and `alpha=None` it is exactly categorical cross-entropy.

    Agrees with `keras.losses.CategoricalFocalCrossentropy(alpha=a, gamma=g)`
    (whose alpha defaults to 0.25, ours to None) for one-hot and soft labels
    from probabilities, and from logits whenever every softmax probability lies
    in [1e-7, 1 - 1e-7] (Keras clips there; we do not clip logits).

    From logits with one-hot, soft or smoothed labels, value and gradient come
    from one fused pass (closed-form gradient, `keras.ops.custom_gradient`);
    class ids without smoothing and probabilities use plain autodiff.
    Gradients of gradients are not supported on the fused path.

    Args:
        y_true: class ids (N,) / (N, 1), or one-hot / soft labels (N, C).
        y_pred: logits or probabilities, shape (N, C).
        gamma: the focusing parameter, in [0, 1e4].
        alpha: None (1), a float in (0, 1e12] for every class, or C floats
            in [0, 1e12], not all 0.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1], as in Keras.
        ignore_class: a class id whose samples get loss 0 (class ids only).

    Returns:
        A float32 tensor of shape y_pred.shape[:-1].

    Raises:
        ValueError: for `gamma < 0`, negative or wrong-length `alpha`,
            `label_smoothing` outside [0, 1] or labels of the wrong shape.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0]])
    >>> loss = focal_crossentropy(y_true, logits, gamma=2.0, from_logits=True)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.0018, 1.6501]

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    gamma = _check_gamma(gamma)
    alpha = _check_alpha(alpha)
    from_logits = check_bool("from_logits", from_logits)
    label_smoothing = check_label_smoothing(label_smoothing)
    ignore_class = check_ignore_class(ignore_class)
    y_pred = to_float32(y_pred)
    check_labels(y_true, y_pred, "distribution", ignore_class=ignore_class,
                 ignore_supported=True)
    alpha_t = _alpha_value(alpha, num_outputs(y_pred), y_pred.dtype, "class")
    y_true = ops.convert_to_tensor(y_true)
    if from_logits and (label_smoothing or not is_sparse_labels(y_true, y_pred)):
        # Dense labels from logits: one fused pass (see `_fused.softmax_focal`).
        targets, _ = categorical_targets(y_true, y_pred,
                                         label_smoothing=label_smoothing,
                                         ignore_class=ignore_class)
        scale = 1.0
        if isinstance(alpha_t, float):
            scale = alpha_t
        elif alpha_t is not None:
            targets = targets * alpha_t
        return softmax_focal(targets, y_pred, gamma=gamma, scale=scale)
    y_pred, logp, ids, targets = categorical_parts(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing,
        ignore_class=ignore_class)
    if ids is not None:
        labels, valid = ids
        logp_y = take_class(logp, labels)
        loss = -logp_y
        factor = _focal_factor(-ops.expm1(logp_y), gamma)
        if factor is not None:
            loss = loss * factor
        if alpha_t is not None:
            loss = loss * (alpha_t if isinstance(alpha_t, float)
                           else ops.take(alpha_t, labels))
        return masked(loss, valid)
    scale = -1.0
    if isinstance(alpha_t, float):
        scale = -alpha_t  # A scalar scales the (N,) result, not the (N, C) terms.
    elif alpha_t is not None:
        targets = targets * alpha_t  # Label-only: no gradient pass.
    per_class = targets * logp
    if gamma:
        # From logits, 1 - softmax(z): softmax's backward needs no exp, unlike
        # that of expm1(log p).
        probs = ops.softmax(y_pred, axis=-1) if from_logits else ops.exp(logp)
        per_class = per_class * _focal_factor(1.0 - probs, gamma)
    return ops.sum(per_class, axis=-1) * scale


@export
class FocalCrossentropy(IgnoreClassLoss):
    """Softmax focal cross-entropy (`keras.losses.Loss`).

    Per sample `-sum_c alpha[c] * y[c] * (1 - p[c]) ** gamma * log p[c]`
    (see `focal_crossentropy`), reduced as in Keras
    (`"sum_over_batch_size"`); samples of `ignore_class` are left out of the
    mean, as in Keras' `SparseCategoricalCrossentropy(ignore_class=...)`.

    Reduction: `call()` returns the per-sample values under every reduction;
    the default `"sum_over_batch_size"` averages them over the batch. For
    PyTorch's weighted mean `sum(w * l) / sum(w)`, pass per-sample weights `w`
    as `sample_weight` and use `reduction="mean_with_sample_weight"`.

    Args:
        gamma: the focusing parameter, in [0, 1e4] (0 with `alpha=None` is CE).
        alpha: None, a float in (0, 1e12], or one float in [0, 1e12] per
            class, not all 0.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1].
        ignore_class: a class id to leave out (class-id labels only).
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0]])
    >>> loss = FocalCrossentropy(gamma=2.0, alpha=[0.25, 0.75], from_logits=True)
    >>> round(float(loss(y_true, logits)), 4)
    0.619

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """

    fn = focal_crossentropy

    def __init__(self, gamma: float = 2.0,
                 alpha: float | Sequence[float] | np.ndarray | None = None,
                 from_logits: bool = False, label_smoothing: float = 0.0,
                 ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "focal_crossentropy",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype, gamma=_check_gamma(gamma),
            alpha=_check_alpha(alpha),
            from_logits=check_bool("from_logits", from_logits),
            label_smoothing=check_label_smoothing(label_smoothing),
            ignore_class=check_ignore_class(ignore_class))


def _check_binary_alpha(alpha):
    return check_scalar_or_vector("alpha", alpha, high=1.0)


@export
def sigmoid_focal_crossentropy(
        y_true: Any, y_pred: Any, *, gamma: float = 2.0,
        alpha: float | Sequence[float] | np.ndarray | None = 0.25,
        from_logits: bool = False,
) -> Any:
    """Sigmoid (binary / multi-label) focal loss, one value per sample.

    Per label, as `torchvision.ops.sigmoid_focal_loss`:
    `alpha_t * (1 - p_t) ** gamma * BCE(y, p)` with
    `p_t = p * y + (1 - p) * (1 - y)` and
    `alpha_t = alpha * y + (1 - alpha) * (1 - y)` (no alpha term for
    `alpha=None`). A sample's value is the mean over its labels (the last
    axis; rank-1 `y_pred` is one label per sample).

    Agrees with `keras.losses.BinaryFocalCrossentropy(gamma=g, alpha=a,
    apply_class_balancing=True)` (or `alpha=None` with
    `apply_class_balancing=False`) on probabilities, and from logits while
    every sigmoid probability lies in [1e-7, 1 - 1e-7] (Keras clips there).

    From logits, value and gradient come from one fused pass (closed-form
    gradient, `keras.ops.custom_gradient`); gradients of gradients are not
    supported there. Probabilities use plain autodiff.

    Args:
        y_true: 0/1 (or soft) labels shaped like `y_pred`; (N,) labels are
            accepted for (N, 1) outputs.
        y_pred: logits or probabilities, shape (N, L) or (N,).
        gamma: the focusing parameter, in [0, 1e4].
        alpha: None, a float in [0, 1], or L floats in [0, 1] (per label).
        from_logits: whether `y_pred` holds logits.

    Returns:
        A float32 tensor of shape y_pred.shape[:-1] (or (N,) for rank-1).

    Raises:
        ValueError: for `gamma < 0`, `alpha` outside [0, 1] or of the wrong
            length, or labels of the wrong shape.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> logits = np.array([[0.0, -2.0], [2.0, -2.0]])
    >>> loss = sigmoid_focal_crossentropy(y_true, logits, from_logits=True)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.0223, 0.825]

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    gamma = _check_gamma(gamma)
    alpha = _check_binary_alpha(alpha)
    from_logits = check_bool("from_logits", from_logits)
    y_pred = to_float32(y_pred)
    check_labels(y_true, y_pred, "probabilities")
    y_true = binary_targets(y_true, y_pred)
    num_labels = num_outputs(y_pred) if len(y_pred.shape) >= 2 else 1
    alpha_t = _alpha_value(alpha, num_labels, y_pred.dtype, "label")
    if from_logits:
        # One fused pass (see `_fused.sigmoid_focal`).
        return sigmoid_focal(y_true, y_pred, gamma=gamma, alpha=alpha_t)
    loss = binary_nll(y_true, y_pred, from_logits)
    if gamma:
        p = (ops.sigmoid(y_pred) if from_logits
             else ops.clip(y_pred, PROB_EPSILON, 1.0 - PROB_EPSILON))
        # 1 - p_t = y (1 - p) + (1 - y) p, exact 0 for a saturated hard label.
        loss = loss * _focal_factor(y_true + p * (1.0 - 2.0 * y_true), gamma)
    if alpha_t is not None:
        # alpha_t scales the whole term (not only the BCE's two halves), as in
        # torchvision; the two coincide for hard labels only.
        loss = loss * ((1.0 - alpha_t) + y_true * (2.0 * alpha_t - 1.0))
    return mean_over_labels(loss)


@export
class SigmoidFocalCrossentropy(KimbalanceLoss):
    """Sigmoid (binary / multi-label) focal loss (`keras.losses.Loss`).

    Per sample the mean over labels of torchvision's sigmoid focal loss (see
    `sigmoid_focal_crossentropy`); reduced as in Keras
    (`"sum_over_batch_size"`), which for (N, L) inputs equals torchvision's
    `reduction="mean"`. `call()` returns the per-sample values under every
    reduction; for a weighted mean `sum(w * l) / sum(w)` over samples, pass
    `w` as `sample_weight` with `reduction="mean_with_sample_weight"`.

    Args:
        gamma: the focusing parameter, in [0, 1e4].
        alpha: None, a float in [0, 1], or one float in [0, 1] per label.
        from_logits: whether `y_pred` holds logits.
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

    Examples:

    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> logits = np.array([[0.0, -2.0], [2.0, -2.0]])
    >>> loss = SigmoidFocalCrossentropy(from_logits=True)
    >>> round(float(loss(y_true, logits)), 4)
    0.4237

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """

    fn = sigmoid_focal_crossentropy
    label_rule = "probabilities"

    def __init__(self, gamma: float = 2.0,
                 alpha: float | Sequence[float] | np.ndarray | None = 0.25,
                 from_logits: bool = False,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "sigmoid_focal_crossentropy",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype, gamma=_check_gamma(gamma),
            alpha=_check_binary_alpha(alpha),
            from_logits=check_bool("from_logits", from_logits))
