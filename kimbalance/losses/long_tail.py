"""Long-tail losses for single-label classification: LDAM and CDT.

Both take the per-class training counts, work on logits (LDAM on the cosine
logits of `kimbalance.layers.CosineDense`), accept class ids of shape (N,) /
(N, 1) or one-hot / soft labels (N, C), and return one value per sample;
reduction and `sample_weight` are left to `keras.losses.Loss`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import check_counts, check_float, invalid
from kimbalance.losses._common import (
    MAX_EXPONENT,
    MAX_SCALE,
    MAX_WEIGHT,
    KimbalanceLoss,
    categorical_targets,
    check_labels,
    class_nll,
    is_label_column,
    is_sparse_labels,
    sparse_ids,
    to_float32,
)
from kimbalance.losses._fused import softmax_crossentropy
from kimbalance.weights import resolve_class_weight

__all__ = ["CDTLoss", "LDAMLoss", "cdt_loss", "ldam_loss"]

# CDT temperatures are capped here: logits divided by them stay finite and
# the temperature itself is a finite float32.
_MAX_TEMPERATURE = 1e30


def _class_counts(value):
    """Per-class training counts, all > 0, as float64 (for powers and logs)."""
    return check_counts("class_counts", value, positive=True).astype(np.float64)


def _check_max_margin(value):
    # scale * (z - m) with |z| <= 1 (cosine logits) and m <= 1e4: finite.
    return check_float("max_margin", value, low=0.0, high=MAX_SCALE)


def _check_scale(value):
    return check_float("scale", value, low=0.0, low_inclusive=False, high=MAX_SCALE)


def _check_cdt_gamma(value, counts):
    gamma = check_float("gamma", value, low=0.0, high=MAX_EXPONENT)
    log_ratio = np.log(counts.max() / counts.min())
    if gamma * log_ratio > np.log(_MAX_TEMPERATURE):
        bound = np.log(_MAX_TEMPERATURE) / log_ratio
        raise invalid("gamma", f"a float >= 0 that keeps the temperatures "
                      f"(n_max / n_min) ** gamma <= {_MAX_TEMPERATURE:g} (here "
                      f"n_max / n_min = {counts.max() / counts.min():g}, so gamma <= "
                      f"{bound:.4g})", value)
    return gamma


def _check_width(name, counts, y_pred):
    """Static check that there is one count per class of `y_pred`."""
    width = y_pred.shape[-1] if len(y_pred.shape) else None
    if width is not None and width != counts.shape[0]:
        raise invalid(name, f"one count per class of y_pred ({width} classes); "
                      f"got {counts.shape[0]}", counts)


def _check_class_weight(class_weight, counts):
    if class_weight is None:
        return None
    weights = resolve_class_weight(class_weight, counts.shape[0], counts)
    if np.any(weights > MAX_WEIGHT):
        raise invalid("class_weight", f"weights <= {MAX_WEIGHT:g}", class_weight)
    if not np.any(weights > 0):
        raise invalid("class_weight", "weights with at least one > 0 (all-zero "
                      "weights make the loss 0 for every sample)", class_weight)
    return weights


def _ldam_margins(counts, max_margin):
    raw = counts ** -0.25
    return raw * (max_margin / raw.max())


@export
def ldam_loss(
        y_true: Any, y_pred: Any, *, class_counts: ArrayLike, max_margin: float = 0.5,
        scale: float = 30.0,
        class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray | str
                       | None) = None,
) -> Any:
    """Label-distribution-aware margin (LDAM) loss, per sample.

    The margin of class c is proportional to `n_c ** (-1/4)` and scaled so the
    largest margin (the rarest class) is `max_margin`. The margin of the true
    class is subtracted from its logit, all logits are multiplied by `scale`
    and softmax cross-entropy is taken:

    `loss_i = w_{y_i} * CE(scale * (z_i - m_{y_i} e_{y_i}), y_i)`

    This is the formula of the official `LDAMLoss` (kaidic/LDAM-DRW,
    `losses.py`). One-hot / soft labels `t` use `z - m * t` and the weight
    `sum_c t_c w_c`, which is the same for one-hot rows.

    Class ids take the label's log-probability by a gather (plain autodiff,
    no one-hot floats) on every backend. One-hot / soft labels: on jax and
    tensorflow, value and gradient come from one fused pass (closed-form
    gradient, `keras.ops.custom_gradient`; gradients of gradients are not
    supported); on torch, whose eager autodiff has a one-kernel log-softmax
    backward, plain autodiff.

    Args:
        y_true: class ids (N,) or (N, 1), or one-hot / soft labels (N, C).
        y_pred: cosine logits (N, C) in [-1, 1], e.g. the output of
            `kimbalance.layers.CosineDense`.
        class_counts: training samples per class, C values > 0.
        max_margin: the largest margin (`max_m` in the official code), in
            [0, 1e4].
            `max_margin=0` gives `CE(scale * z)`.
        scale: the logit scale `s`, in (0, 1e4], applied after the margin.
        class_weight: None, C per-class weights, a dict `{class: weight}` or a
            scheme name of `kimbalance.weights.class_weights` (computed from
            `class_counts`). Multiplies each sample's loss by `w_{y_i}`.

    Returns:
        A float tensor of shape (N,).

    Raises:
        ValueError: for counts <= 0 or non-finite, `max_margin < 0`,
            `scale <= 0`, a `class_weight` of the wrong length, labels of the
            wrong rank, or `class_counts` whose length is not the number of
            classes of `y_pred`.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> loss = ldam_loss([0, 1], [[0.9, 0.1], [0.2, 0.3]],
    ...                  class_counts=[100, 10], max_margin=0.5, scale=30.0)
    >>> np.round(np.asarray(loss, dtype="float64"), 4).tolist()
    [0.0, 12.0]

    References:
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
        Margin Loss", NeurIPS 2019. Official code: github.com/kaidic/LDAM-DRW.
    """
    counts = _class_counts(class_counts)
    max_margin = _check_max_margin(max_margin)
    scale = _check_scale(scale)
    weights = _check_class_weight(class_weight, counts)
    y_pred = to_float32(y_pred)
    _check_width("class_counts", counts, y_pred)
    check_labels(y_true, y_pred, "distribution")
    y_true = ops.convert_to_tensor(y_true)
    margins = ops.convert_to_tensor(_ldam_margins(counts, max_margin), y_pred.dtype)
    if is_sparse_labels(y_true, y_pred) and y_pred.shape[-1] is not None:
        # Class ids: s * z - s * m_y at the label column, then a log-softmax
        # gather (`class_nll`): no one-hot floats, autodiff of few passes.
        labels, _ = sparse_ids(y_true, y_pred, None)
        # Rounded as the dense form: s * z - (s * m)_y at the label column.
        label_shift = ops.expand_dims(ops.take(margins * scale, labels), -1)
        # The shift is label-only (a `where` on constants): autodiff sees one
        # subtraction, not a `where` (whose backward takes two passes).
        shift = ops.where(is_label_column(labels, y_pred.shape[-1]), label_shift,
                          0.0)
        moved = y_pred * scale - shift
        loss = class_nll(moved, labels)
        if weights is not None:
            loss = loss * ops.take(ops.convert_to_tensor(weights, y_pred.dtype),
                                   labels)
        return loss
    targets, _ = categorical_targets(y_true, y_pred)
    # CE(s * (z - m * t)), one fused pass (see `_fused.softmax_crossentropy`).
    factor = None
    if weights is not None:
        weights = ops.convert_to_tensor(weights, y_pred.dtype)
        factor = ops.sum(targets * weights, axis=-1)
    return softmax_crossentropy(targets, y_pred, scale=scale,
                                target_shift=margins * scale, factor=factor)


@export
def cdt_loss(y_true: Any, y_pred: Any, *, class_counts: ArrayLike,
             gamma: float = 0.2) -> Any:
    """Class-dependent temperature (CDT) cross-entropy, per sample.

    Each class logit is divided by its temperature
    `a_c = (n_max / n_c) ** gamma` before softmax cross-entropy, so rare
    classes get larger temperatures during training: `CE(z / a, y)`. At test
    time use the plain logits `z`. Works on logits only.

    Class ids take the label's log-probability by a gather (plain autodiff,
    no one-hot floats) on every backend. One-hot / soft labels: on jax and
    tensorflow, value and gradient come from one fused pass (closed-form
    gradient, `keras.ops.custom_gradient`; gradients of gradients are not
    supported); on torch, whose eager autodiff has a one-kernel log-softmax
    backward, plain autodiff.

    Args:
        y_true: class ids (N,) or (N, 1), or one-hot / soft labels (N, C).
        y_pred: logits (N, C).
        class_counts: training samples per class, C values > 0.
        gamma: the temperature exponent, >= 0 with temperatures <= 1e30;
            `gamma=0` is plain
            cross-entropy.

    Returns:
        A float tensor of shape (N,).

    Raises:
        ValueError: for counts <= 0 or non-finite, `gamma < 0`, labels of the
            wrong rank, or `class_counts` whose length is not the number of
            classes of `y_pred`.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> loss = cdt_loss([1], [[2.0, 1.0]], class_counts=[160, 10], gamma=0.25)
    >>> round(float(loss[0]), 4)
    1.7014

    References:
        Ye et al., "Identifying and Compensating for Feature Deviation in
        Imbalanced Deep Learning", arXiv:2001.01385, 2020.
    """
    counts = _class_counts(class_counts)
    gamma = _check_cdt_gamma(gamma, counts)
    y_pred = to_float32(y_pred)
    _check_width("class_counts", counts, y_pred)
    check_labels(y_true, y_pred, "distribution")
    y_true = ops.convert_to_tensor(y_true)
    inverse_temperatures = ops.convert_to_tensor(
        (counts.max() / counts) ** -gamma, y_pred.dtype)
    if is_sparse_labels(y_true, y_pred):
        # Class ids: a log-softmax gather of z / a (`class_nll`).
        labels, _ = sparse_ids(y_true, y_pred, None)
        return class_nll(y_pred * inverse_temperatures, labels)
    targets, _ = categorical_targets(y_true, y_pred)
    # CE(z / a), one fused pass (see `_fused.softmax_crossentropy`).
    return softmax_crossentropy(targets, y_pred, scale=inverse_temperatures)


@export
class LDAMLoss(KimbalanceLoss):
    """Label-distribution-aware margin loss (Cao et al., 2019).

    Per-sample `w_y * CE(scale * (z - m_y e_y), y)` with margins
    `m_c ∝ n_c ** (-1/4)`, the largest equal to `max_margin`; `z` are the
    cosine logits of a `kimbalance.layers.CosineDense` head. See `ldam_loss`.

    Reduction: the default `"sum_over_batch_size"` averages the per-sample
    values over the batch, so with `class_weight` it is `sum(w_y l) / N`. The
    official code calls `F.cross_entropy(..., weight=w)`, torch's weighted mean
    `sum(w_y l) / sum(w_y)`. To reproduce it, leave `class_weight=None`, pass
    the weights as per-sample weights `w[y]` (`kimbalance.weights
    .sample_weights(y, w)`, or a `BalancedBatchGenerator(class_weight=w)`) and
    construct the loss with `reduction="mean_with_sample_weight"`. `call()`
    returns the per-sample values `w_y * CE` under every reduction.

    Deferred re-weighting (LDAM-DRW) switches the weights on at a later epoch.
    Do that through the data, not by mutating the loss (a compiled loss is
    fixed): give the generator's sample weights a schedule with
    `kimbalance.callbacks.DeferredReweighting(generator, class_weight,
    start_epoch)` (the official schedule is `"effective_number"` weights with
    beta 0.9999 from epoch 160 of 200).

    Args:
        class_counts: training samples per class, C values > 0.
        max_margin: the largest margin, in [0, 1e4] (0.5 in the paper).
        scale: the logit scale, in (0, 1e4] (30 in the official code).
        class_weight: None, C per-class weights, a dict `{class: weight}` or a
            scheme name of `kimbalance.weights.class_weights`.
        reduction: a Keras reduction; see above.
        name: the loss name.
        dtype: the dtype of the loss computation (float32 by default, also
            under mixed precision policies).

    Raises:
        ValueError: for invalid arguments or label values (see `ldam_loss`).

    Examples:

    >>> loss = LDAMLoss(class_counts=[100, 10])
    >>> round(float(loss([0, 1], [[0.9, 0.1], [0.2, 0.3]])), 4)
    6.0

    References:
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
        Margin Loss", NeurIPS 2019. Official code: github.com/kaidic/LDAM-DRW.
    """

    fn = ldam_loss

    def __init__(
            self, class_counts: ArrayLike, max_margin: float = 0.5, scale: float = 30.0,
            class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray | str
                           | None) = None,
            *, reduction: str | None = "sum_over_batch_size", name: str = "ldam_loss",
            dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        counts = _class_counts(class_counts)
        max_margin = _check_max_margin(max_margin)
        scale = _check_scale(scale)
        weights = _check_class_weight(class_weight, counts)
        if weights is not None and not isinstance(class_weight, str):
            class_weight = weights.tolist()
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         class_counts=counts.astype(np.int64).tolist(),
                         max_margin=max_margin,
                         scale=scale, class_weight=class_weight)


@export
class CDTLoss(KimbalanceLoss):
    """Class-dependent temperature cross-entropy (Ye et al., 2020).

    Per-sample `CE(z / a, y)` with `a_c = (n_max / n_c) ** gamma`, on logits.
    See `cdt_loss`. The default reduction averages over the batch.

    Reduction: `call()` returns the per-sample values under every reduction;
    the default `"sum_over_batch_size"` averages them over the batch. For
    PyTorch's weighted mean `sum(w * l) / sum(w)`, pass per-sample weights `w`
    as `sample_weight` and use `reduction="mean_with_sample_weight"`.

    Args:
        class_counts: training samples per class, C values > 0.
        gamma: the temperature exponent, >= 0 (temperatures <= 1e30).
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the dtype of the loss computation (float32 by default, also
            under mixed precision policies).

    Raises:
        ValueError: for invalid arguments or label values (see `cdt_loss`).

    Examples:

    >>> loss = CDTLoss(class_counts=[160, 10], gamma=0.25)
    >>> round(float(loss([1], [[2.0, 1.0]])), 4)
    1.7014

    References:
        Ye et al., "Identifying and Compensating for Feature Deviation in
        Imbalanced Deep Learning", arXiv:2001.01385, 2020.
    """

    fn = cdt_loss

    def __init__(self, class_counts: ArrayLike, gamma: float = 0.2, *,
                 reduction: str | None = "sum_over_batch_size", name: str = "cdt_loss",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        counts = _class_counts(class_counts)
        gamma = _check_cdt_gamma(gamma, counts)
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         class_counts=counts.astype(np.int64).tolist(), gamma=gamma)
