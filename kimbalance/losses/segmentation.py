"""Overlap losses for segmentation: Dice, generalized Dice, Tversky, focal Tversky.

Dense targets, channels last (the Keras convention): predictions `y_pred` of
shape (N, ..., C) (logits or probabilities; 2-D maps (N, H, W, C), volumes
(N, D, H, W, C), sequences (N, T, C) or plain (N, C) rows), and targets as
id maps (N, ...) (or (N, ..., 1)) or one-hot / soft maps shaped like
`y_pred`. With `activation="sigmoid"` the channels are independent (multi-
label maps of 0/1 values shaped like `y_pred`); a single channel (C = 1)
is a binary mask and needs `activation="sigmoid"`.

Per class c and sample n, with probabilities p and targets t summed over the
map (and over the batch when `batch=True`): tp = sum(p t), fp = sum(p) - tp,
fn = sum(t) - tp. Each function returns **one value per sample** (shape
(N,)), so Keras' reduction, `sample_weight` and masks apply as for any loss
(`sample_weight` per sample: a per-pixel weight map is an error, since the
ratio has no per-pixel terms; `class_weight` weighs classes);
the default `"sum_over_batch_size"` then gives MONAI's `reduction="mean"`.
With `batch=True` the ratio is taken over the sums of the whole batch (one
value, as MONAI's `batch=True`), returned repeated for every sample: the
default reduction gives exactly that value, and a `sample_weight` scales it
(it does not weight the sums).

Conventions follow MONAI (`monai.losses.DiceLoss`, `GeneralizedDiceLoss`,
`TverskyLoss`, `DiceCELoss`), with these mappings and documented differences:

- MONAI `softmax=True` is `from_logits=True` (`activation="softmax"`, the
  default); `sigmoid=True` is `from_logits=True, activation="sigmoid"`; no
  activation is `from_logits=False`.
- MONAI's `to_onehot_y=True` with (N, 1, ...) ids: id maps (N, ...) are
  detected from their rank.
- MONAI's `weight` of `DiceLoss` has C' entries (without background when
  `include_background=False`); `class_weight` here always has C (class 0's
  is dropped with the background, as `DiceCELoss` does).
- MONAI allows `smooth_dr=0`; here `smooth_dr > 0`, so an empty class gives
  a finite value and gradient.

Label values are checked when they are concrete (ids in `[0, C)`, whole
numbers; dense maps with values in [0, 1], one-hot / soft rows summing to 1
for softmax outputs), as for every kimbalance loss; under a jit trace they
are not (see `kimbalance.losses`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kimbalance._api import export
from kimbalance._validation import (
    check_bool,
    check_choice,
    check_float,
    invalid,
)
from kimbalance.losses._common import (
    MAX_EXPONENT,
    MAX_WEIGHT,
    KimbalanceLoss,
    binary_targets,
    check_class_vector,
    check_ignore_class,
    check_label_smoothing,
    check_labels,
    is_sparse_labels,
    labels_checked,
    sparse_ids,
    to_float32,
    vector_tensor,
)
from kimbalance.losses.crossentropy import (
    weighted_binary_crossentropy,
    weighted_categorical_crossentropy,
)

__all__ = [
    "DiceCrossentropy",
    "DiceLoss",
    "FocalTverskyLoss",
    "GeneralizedDiceLoss",
    "TverskyLoss",
    "dice_crossentropy",
    "dice_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "tversky_loss",
]

ACTIVATIONS = ("softmax", "sigmoid")
GDL_WEIGHT_TYPES = ("square", "simple", "uniform")
# Tversky coefficients and loss mixing weights: finite multipliers of sums of
# at most ~1e9 elements.
_MAX_COEFFICIENT = 1e6


# --- argument checks -----------------------------------------------------------


def _check_common(from_logits, activation, include_background, smooth_nr, smooth_dr,
                  batch, ignore_class):
    return dict(
        from_logits=check_bool("from_logits", from_logits),
        activation=check_choice("activation", activation, ACTIVATIONS),
        include_background=check_bool("include_background", include_background),
        smooth_nr=check_float("smooth_nr", smooth_nr, low=0.0, high=MAX_WEIGHT),
        smooth_dr=check_float("smooth_dr", smooth_dr, low=0.0, high=MAX_WEIGHT,
                              low_inclusive=False),
        batch=check_bool("batch", batch),
        ignore_class=check_ignore_class(ignore_class),
    )


def _check_coefficient(name, value):
    return check_float(name, value, low=0.0, high=_MAX_COEFFICIENT)


def _check_gamma(value):
    return check_float("gamma", value, low=0.0, high=MAX_EXPONENT,
                       low_inclusive=False)


def _check_lambdas(lambda_dice, lambda_ce):
    lambda_dice = _check_coefficient("lambda_dice", lambda_dice)
    lambda_ce = _check_coefficient("lambda_ce", lambda_ce)
    if lambda_dice == 0 and lambda_ce == 0:
        raise invalid("lambda_ce", "a float > 0 when lambda_dice is 0 (both 0 make "
                      "the loss 0 for every sample)", lambda_ce)
    return lambda_dice, lambda_ce


# --- label forms -----------------------------------------------------------------


def _check_shapes(y_true, y_pred, activation, include_background):
    """Static checks of the prediction shape against the arguments."""
    _check_prediction_rank(y_pred)
    if y_pred.shape[-1] == 1:
        if activation != "sigmoid":
            raise invalid("activation", "'sigmoid' for a single output channel "
                          "(a softmax over one channel is always 1)", activation)
        if not include_background:
            raise invalid("include_background", "True for a single output channel "
                          "(there is no background channel to drop)",
                          include_background)


def _check_prediction_rank(y_pred):
    if len(y_pred.shape) < 2 or y_pred.shape[-1] is None:
        raise invalid("y_pred", "predictions of shape (N, ..., C) with a known "
                      "number of channels C",
                      f"<tensor of shape {tuple(y_pred.shape)}>")


def _label_rule(y_true, y_pred, activation):
    """The `check_labels` rule of these labels (static shapes only)."""
    if y_pred.shape[-1] == 1:
        return "probabilities"
    sparse = is_sparse_labels(y_true, y_pred)
    if activation == "sigmoid" and not sparse:
        return "probabilities"
    return "distribution"


def _check_label_values(y_true, y_pred, activation, ignore_class):
    if not hasattr(y_pred, "shape"):
        y_pred = ops.convert_to_tensor(y_pred)
    if not hasattr(y_true, "shape"):
        y_true = ops.convert_to_tensor(y_true)
    _check_prediction_rank(y_pred)
    check_labels(y_true, y_pred, _label_rule(y_true, y_pred, activation),
                 ignore_class=ignore_class, ignore_supported=True)


def _dense_targets(y_true, y_pred, ignore_class=None):
    """(float targets shaped like y_pred, float mask of kept pixels or None).

    Id maps are one-hot encoded; pixels of `ignore_class` get all-zero
    targets and mask 0.
    """
    y_true = ops.convert_to_tensor(y_true)
    sparse = y_pred.shape[-1] > 1 and is_sparse_labels(y_true, y_pred)
    if ignore_class is not None and not sparse:
        raise invalid("ignore_class", "None unless labels are id maps with C >= 2 "
                      "channels (ignore_class marks pixels of an id map)",
                      ignore_class)
    if y_pred.shape[-1] == 1:
        return binary_targets(y_true, y_pred), None
    if sparse:
        labels, valid = sparse_ids(y_true, y_pred, ignore_class)
        targets = ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        if valid is None:
            return targets, None
        mask = ops.cast(valid, y_pred.dtype)
        return targets * ops.expand_dims(mask, -1), mask
    return ops.cast(y_true, y_pred.dtype), None


def _probabilities(y_pred, from_logits, activation):
    if not from_logits:
        return y_pred
    if activation == "sigmoid":
        return ops.sigmoid(y_pred)
    return ops.softmax(y_pred, axis=-1)


def _prepare(y_true, y_pred, *, from_logits, activation, include_background,
             ignore_class):
    """(probabilities, targets) as float32 (N, ..., C'); C' drops background.

    Pixels of `ignore_class` are zero in both (as MONAI's `ignore_index`).
    """
    y_pred = to_float32(y_pred)
    _check_shapes(y_true, y_pred, activation, include_background)
    targets, mask = _dense_targets(y_true, y_pred, ignore_class)
    probs = _probabilities(y_pred, from_logits, activation)
    if mask is not None:
        probs = probs * ops.expand_dims(mask, -1)
    if not include_background:
        probs, targets = probs[..., 1:], targets[..., 1:]
    return probs, targets


def _reduce_axes(rank, batch):
    """The map axes (and the batch axis when `batch`): all but the channels."""
    spatial = tuple(range(1, rank - 1))
    return ((0,) + spatial) if batch else spatial


def _overlap(probs, targets, batch):
    """(tp, sum p, sum t) per sample and class, (N, C'), or per class (C',)."""
    axes = _reduce_axes(len(probs.shape), batch)
    if not axes:  # (N, C) rows without map axes: each row is its own map
        return probs * targets, probs, targets
    return (ops.sum(probs * targets, axis=axes), ops.sum(probs, axis=axes),
            ops.sum(targets, axis=axes))


def _class_weight_tensor(class_weight, y_pred, include_background):
    if class_weight is None:
        return None
    weights = vector_tensor("class_weight", class_weight, y_pred.shape[-1], "float32")
    return weights if include_background else weights[1:]


def _per_sample(per_class, probs, batch, weights):
    """Mean over classes of w_c * f_c, one value per sample (shape (N,))."""
    if weights is not None:
        per_class = per_class * weights
    value = ops.mean(per_class, axis=-1)
    if batch:
        first = probs[(slice(None),) + (0,) * (len(probs.shape) - 1)]
        value = ops.zeros_like(first) + value
    return value


def _tversky_index(tp, sum_p, sum_t, alpha, beta, smooth_nr, smooth_dr):
    fp = sum_p - tp
    fn = sum_t - tp
    return (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)


# --- Dice --------------------------------------------------------------------------


@export
def dice_loss(
        y_true: Any, y_pred: Any, *, from_logits: bool = False,
        activation: str = "softmax", include_background: bool = True,
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
        smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
        ignore_class: int | None = None,
) -> Any:
    """Soft Dice loss (Milletari et al. 2016), one value per sample.

    Per class: `1 - (2 tp + smooth_nr) / (sum p + sum t + smooth_dr)`, the
    sums over the map (and the batch with `batch=True`); a sample's value is
    the mean over classes of `class_weight[c] * loss_c`. Equal to
    `monai.losses.DiceLoss` on channels-first tensors (see the module doc
    for the argument mapping).

    Args:
        y_true: id maps (N, ...) or (N, ..., 1), or one-hot / soft maps shaped
            like `y_pred` (0/1 maps per channel for `activation="sigmoid"`).
        y_pred: logits (`from_logits=True`) or probabilities, (N, ..., C).
        from_logits: whether `y_pred` holds logits (the activation is then
            applied).
        activation: `"softmax"` (classes exclusive) or `"sigmoid"` (channels
            independent; required for C = 1).
        include_background: False drops channel 0 from the loss.
        class_weight: None or C weights in [0, 1e12], not all 0 (class 0's
            weight is dropped with the background).
        smooth_nr: >= 0, added to the numerator.
        smooth_dr: > 0, added to the denominator (keeps empty classes finite).
        batch: whether to sum over the batch before the ratio (one value for
            the batch, repeated per sample).
        ignore_class: None, or a class id (e.g. 255 or -1) of id-map pixels
            to leave out: zero in probabilities and targets, as MONAI's
            `ignore_index` (id maps with C >= 2 channels only).

    Returns:
        A float32 tensor of shape (N,).

    Raises:
        ValueError: for invalid arguments, a single channel with softmax or
            without background, or labels that fit neither form; naming
            `y_true`, for label values outside the rules (when concrete).

    Examples:

    >>> y_true = np.array([[0, 1, 1, 1]])            # one map of 4 pixels
    >>> probs = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    >>> value = dice_loss(y_true, probs, smooth_nr=0.0, smooth_dr=1e-9)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(value).tolist()]
    [0.2667]
    """
    args = _check_common(from_logits, activation, include_background, smooth_nr,
                         smooth_dr, batch, ignore_class)
    class_weight = check_class_vector("class_weight", class_weight)
    return _dice(y_true, y_pred, class_weight=class_weight, **args)


def _dice(y_true, y_pred, *, from_logits, activation, include_background,
          class_weight, smooth_nr, smooth_dr, batch, ignore_class):
    _check_label_values(y_true, y_pred, activation, ignore_class)
    probs, targets = _prepare(y_true, y_pred, from_logits=from_logits,
                              activation=activation,
                              include_background=include_background,
                              ignore_class=ignore_class)
    tp, sum_p, sum_t = _overlap(probs, targets, batch)
    per_class = 1.0 - (2.0 * tp + smooth_nr) / (sum_p + sum_t + smooth_dr)
    weights = _class_weight_tensor(class_weight, to_float32(y_pred),
                                   include_background)
    return _per_sample(per_class, probs, batch, weights)


@export
def generalized_dice_loss(y_true: Any, y_pred: Any, *, from_logits: bool = False,
                          activation: str = "softmax", include_background: bool = True,
                          w_type: str = "square", smooth_nr: float = 1e-5,
                          smooth_dr: float = 1e-5, batch: bool = False,
                          ignore_class: int | None = None) -> Any:
    """Generalized Dice loss (Sudre et al. 2017), one value per sample.

    `1 - (2 sum_c w_c tp_c + smooth_nr) / (sum_c w_c (sum p_c + sum t_c) +
    smooth_dr)` with `w_c = 1 / (sum t_c)**2` (`w_type="square"`), `1 / sum
    t_c` (`"simple"`) or 1 (`"uniform"`): each class counts inversely to its
    volume, so small structures weigh as much as large ones. A class absent
    from the targets gets the largest weight of the present classes (as
    MONAI). Equal to `monai.losses.GeneralizedDiceLoss`.

    Args:
        y_true, y_pred, from_logits, activation, include_background,
            smooth_nr, smooth_dr, batch, ignore_class: as in `dice_loss`.
        w_type: `"square"`, `"simple"` or `"uniform"`.

    Returns:
        A float32 tensor of shape (N,).

    Raises:
        ValueError: as `dice_loss`.

    Examples:

    >>> y_true = np.array([[0, 1, 1, 1]])
    >>> probs = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    >>> value = generalized_dice_loss(y_true, probs)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(value).tolist()]
    [0.3125]

    References:
        Sudre et al., "Generalised Dice overlap as a deep learning loss
        function for highly unbalanced segmentations", DLMIA 2017.
    """
    args = _check_common(from_logits, activation, include_background, smooth_nr,
                         smooth_dr, batch, ignore_class)
    w_type = check_choice("w_type", w_type, GDL_WEIGHT_TYPES)
    return _generalized_dice(y_true, y_pred, w_type=w_type, **args)


def _volume_weights(sum_t, w_type, batch):
    if w_type == "uniform":
        return ops.ones_like(sum_t)
    present = sum_t > 0
    safe = ops.where(present, sum_t, ops.ones_like(sum_t))
    weights = 1.0 / (safe * safe if w_type == "square" else safe)
    weights = ops.where(present, weights, ops.zeros_like(weights))
    largest = ops.max(weights, axis=-1, keepdims=not batch)
    return ops.where(present, weights, largest * ops.ones_like(weights))


def _generalized_dice(y_true, y_pred, *, from_logits, activation, include_background,
                      w_type, smooth_nr, smooth_dr, batch, ignore_class):
    _check_label_values(y_true, y_pred, activation, ignore_class)
    probs, targets = _prepare(y_true, y_pred, from_logits=from_logits,
                              activation=activation,
                              include_background=include_background,
                              ignore_class=ignore_class)
    tp, sum_p, sum_t = _overlap(probs, targets, batch)
    weights = ops.stop_gradient(_volume_weights(sum_t, w_type, batch))
    numerator = 2.0 * ops.sum(tp * weights, axis=-1, keepdims=True) + smooth_nr
    denominator = ops.sum((sum_p + sum_t) * weights, axis=-1, keepdims=True) + smooth_dr
    return _per_sample(1.0 - numerator / denominator, probs, batch, None)


# --- Tversky -------------------------------------------------------------------------


@export
def tversky_loss(
        y_true: Any, y_pred: Any, *, alpha: float = 0.5, beta: float = 0.5,
        from_logits: bool = False, activation: str = "softmax",
        include_background: bool = True,
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
        smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
        ignore_class: int | None = None,
) -> Any:
    """Tversky loss (Salehi et al. 2017), one value per sample.

    Per class: `1 - (tp + smooth_nr) / (tp + alpha fp + beta fn + smooth_dr)`;
    `alpha` weighs false positives and `beta` false negatives (beta > alpha
    favours recall of small structures). `alpha = beta = 0.5` is the Dice
    loss (with the smoothing terms halved). A sample's value is the mean over
    classes of `class_weight[c] * loss_c`. Equal to `monai.losses.TverskyLoss`
    (which has no class weights).

    Args:
        y_true, y_pred, from_logits, activation, include_background,
            class_weight, smooth_nr, smooth_dr, batch, ignore_class: as in `dice_loss`.
        alpha: weight of false positives, in [0, 1e6].
        beta: weight of false negatives, in [0, 1e6].

    Returns:
        A float32 tensor of shape (N,).

    Raises:
        ValueError: as `dice_loss`.

    Examples:

    >>> y_true = np.array([[0, 1, 1, 1]])
    >>> probs = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    >>> value = tversky_loss(y_true, probs, alpha=0.3, beta=0.7)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(value).tolist()]
    [0.245]

    References:
        Salehi et al., "Tversky loss function for image segmentation using 3D
        fully convolutional deep networks", MLMI 2017.
    """
    args = _check_common(from_logits, activation, include_background, smooth_nr,
                         smooth_dr, batch, ignore_class)
    return _tversky(y_true, y_pred, alpha=_check_coefficient("alpha", alpha),
                    beta=_check_coefficient("beta", beta), gamma=None,
                    class_weight=check_class_vector("class_weight", class_weight),
                    **args)


def _focal_power(value, gamma):
    """`max(value, 0) ** gamma` with a finite gradient at 0 (for gamma < 1)."""
    value = ops.maximum(value, 0.0)
    positive = value > 0
    safe = ops.where(positive, value, ops.ones_like(value))
    return ops.where(positive, ops.power(safe, gamma), ops.zeros_like(value))


def _tversky(y_true, y_pred, *, alpha, beta, gamma, from_logits, activation,
             include_background, class_weight, smooth_nr, smooth_dr, batch,
             ignore_class):
    _check_label_values(y_true, y_pred, activation, ignore_class)
    probs, targets = _prepare(y_true, y_pred, from_logits=from_logits,
                              activation=activation,
                              include_background=include_background,
                              ignore_class=ignore_class)
    tp, sum_p, sum_t = _overlap(probs, targets, batch)
    per_class = 1.0 - _tversky_index(tp, sum_p, sum_t, alpha, beta, smooth_nr,
                                     smooth_dr)
    if gamma is not None:
        per_class = _focal_power(per_class, gamma)
    weights = _class_weight_tensor(class_weight, to_float32(y_pred),
                                   include_background)
    return _per_sample(per_class, probs, batch, weights)


@export
def focal_tversky_loss(
        y_true: Any, y_pred: Any, *, alpha: float = 0.3, beta: float = 0.7,
        gamma: float = 0.75, from_logits: bool = False, activation: str = "softmax",
        include_background: bool = True,
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
        smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
        ignore_class: int | None = None,
) -> Any:
    """Focal Tversky loss (Abraham & Khan 2019), one value per sample.

    Per class: `(1 - TI_c) ** gamma` with the Tversky index `TI_c` of
    `tversky_loss`; a sample's value is the mean over classes of
    `class_weight[c] * loss_c`. `gamma` is the exponent itself, as in the
    authors' code (`gamma=0.75`, `alpha=0.3` on false positives, `beta=0.7`
    on false negatives, their best setting); the paper writes it `1 / gamma`
    with gamma = 4/3. An exponent < 1 raises small losses (and their
    gradients) relative to large ones, so training keeps improving classes
    whose Tversky index is already high, such as small lesions late in
    training; the gradient stays finite (0 where the Tversky loss is exactly
    0). `gamma=1` is `tversky_loss`.

    Args:
        y_true, y_pred, from_logits, activation, include_background,
            class_weight, smooth_nr, smooth_dr, batch, ignore_class: as in `dice_loss`.
        alpha: weight of false positives, in [0, 1e6].
        beta: weight of false negatives, in [0, 1e6].
        gamma: the exponent, in (0, 1e4].

    Returns:
        A float32 tensor of shape (N,).

    Raises:
        ValueError: as `dice_loss`.

    Examples:

    >>> y_true = np.array([[0, 1, 1, 1]])
    >>> probs = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    >>> value = focal_tversky_loss(y_true, probs, gamma=1.0)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(value).tolist()]
    [0.245]

    References:
        Abraham & Khan, "A Novel Focal Tversky Loss Function with Improved
        Attention U-Net for Lesion Segmentation", ISBI 2019.
    """
    args = _check_common(from_logits, activation, include_background, smooth_nr,
                         smooth_dr, batch, ignore_class)
    return _tversky(y_true, y_pred, alpha=_check_coefficient("alpha", alpha),
                    beta=_check_coefficient("beta", beta), gamma=_check_gamma(gamma),
                    class_weight=check_class_vector("class_weight", class_weight),
                    **args)


# --- Dice + cross-entropy ------------------------------------------------------------


@export
def dice_crossentropy(
        y_true: Any, y_pred: Any, *, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
        from_logits: bool = False, activation: str = "softmax",
        include_background: bool = True,
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
        smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
        ignore_class: int | None = None, label_smoothing: float = 0.0,
) -> Any:
    """Dice loss plus class-weighted cross-entropy, one value per sample.

    `lambda_dice * dice_loss + lambda_ce * CE`, where CE is the sample's mean
    over the map of `class_weight[y] * CE` (softmax; `label_smoothing` as in
    Keras) or of the binary cross-entropy with `pos_weight=class_weight`
    (sigmoid, per channel). The Dice term uses `class_weight` too (without
    class 0 when `include_background=False`; not for a single channel,
    whose weight is the BCE's `pos_weight` only), as
    `monai.losses.DiceCELoss`.

    Equal to `monai.losses.DiceCELoss` without class weights (softmax; and
    sigmoid with one channel). Two documented differences: with class
    weights, MONAI's CE term is torch's weighted mean `sum(w_y l) / sum(w_y)`
    over the batch, which makes a sample's value depend on the other
    samples; here it is `mean(w_y l)` per sample (kimbalance's and Keras'
    convention, equal in expectation for "balanced" weights); pixels of
    `ignore_class` are left out of that mean. And with
    `activation="sigmoid"` and C > 1 the CE term is the per-channel binary
    cross-entropy (MONAI applies a softmax cross-entropy there, which treats
    multi-label channels as exclusive).

    Args:
        y_true, y_pred, from_logits, activation, include_background,
            class_weight, smooth_nr, smooth_dr, batch, ignore_class: as in `dice_loss`.
        lambda_dice: weight of the Dice term, in [0, 1e6].
        lambda_ce: weight of the cross-entropy term, in [0, 1e6] (not both 0).
        label_smoothing: in [0, 1], for the cross-entropy term only: targets
            `y (1 - ls) + ls / C` (softmax) or `y (1 - ls) + ls / 2`
            (sigmoid; MONAI's binary term ignores it).

    Returns:
        A float32 tensor of shape (N,).

    Raises:
        ValueError: as `dice_loss`; both lambdas 0.

    Examples:

    >>> y_true = np.array([[0, 1, 1, 1]])
    >>> probs = np.array([[[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]])
    >>> value = dice_crossentropy(y_true, probs, lambda_ce=0.5)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(value).tolist()]
    [0.5202]
    """
    args = _check_common(from_logits, activation, include_background, smooth_nr,
                         smooth_dr, batch, ignore_class)
    lambda_dice, lambda_ce = _check_lambdas(lambda_dice, lambda_ce)
    class_weight = check_class_vector("class_weight", class_weight)
    label_smoothing = check_label_smoothing(label_smoothing)
    return _dice_crossentropy(y_true, y_pred, lambda_dice=lambda_dice,
                              lambda_ce=lambda_ce, class_weight=class_weight,
                              label_smoothing=label_smoothing, **args)


def _map_mean(values, mask=None):
    """Per-sample mean over the map axes of an (N, ...) tensor (over the
    pixels where `mask` is 1, if given; 0 for a sample without any)."""
    axes = tuple(range(1, len(values.shape)))
    if mask is None:
        return ops.mean(values, axis=axes) if axes else values
    if not axes:
        return values * mask
    return ops.divide_no_nan(ops.sum(values * mask, axis=axes),
                             ops.sum(mask, axis=axes))


def _dice_crossentropy(y_true, y_pred, *, lambda_dice, lambda_ce, class_weight,
                       label_smoothing, from_logits, activation, include_background,
                       smooth_nr, smooth_dr, batch, ignore_class):
    y_pred = to_float32(y_pred)
    _check_label_values(y_true, y_pred, activation, ignore_class)
    with labels_checked():
        # One channel: its weight is the BCE's pos_weight only (as MONAI).
        dice_weight = None if y_pred.shape[-1] == 1 else class_weight
        dice = _dice(y_true, y_pred, from_logits=from_logits, activation=activation,
                     include_background=include_background,
                     class_weight=dice_weight, smooth_nr=smooth_nr,
                     smooth_dr=smooth_dr, batch=batch, ignore_class=ignore_class)
        targets, mask = _dense_targets(y_true, y_pred, ignore_class)
        if activation == "sigmoid":
            ce = weighted_binary_crossentropy(targets, y_pred, pos_weight=class_weight,
                                              from_logits=from_logits,
                                              label_smoothing=label_smoothing)
        else:
            ce = weighted_categorical_crossentropy(
                y_true, y_pred, class_weight=class_weight, from_logits=from_logits,
                label_smoothing=label_smoothing, ignore_class=ignore_class)
    return lambda_dice * dice + lambda_ce * _map_mean(ce, mask)


# --- classes -------------------------------------------------------------------------


class _OverlapLoss(KimbalanceLoss):
    """A segmentation loss: label values checked by the activation's rule."""

    def check_labels(self, y_true: Any, y_pred: Any) -> None:
        _check_label_values(y_true, y_pred, self.activation, self.ignore_class)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if sample_weight is not None:
            shape = tuple(getattr(sample_weight, "shape", None)
                          or np.shape(sample_weight))
            if len(shape) > 1 and any(d != 1 for d in shape[1:]):
                raise invalid("sample_weight", "per-sample weights of shape (N,) or "
                              "(N, 1): an overlap loss has one value per sample, so "
                              "per-pixel weight maps do not apply (use "
                              "class_weight)", f"<array of shape {shape}>")
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)


@export
class DiceLoss(_OverlapLoss):
    """Soft Dice loss (`keras.losses.Loss`); see `dice_loss`.

    Args:
        from_logits, activation, include_background, class_weight, smooth_nr,
            smooth_dr, batch, ignore_class: as in `dice_loss`.
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32).

    Examples:

    >>> loss = DiceLoss(from_logits=True, include_background=False)
    >>> y_true = np.zeros((2, 4, 4), dtype="int32"); y_true[:, 1:3, 1:3] = 1
    >>> logits = np.where(y_true[..., None] == np.arange(2), 5.0, -5.0)
    >>> round(float(loss(y_true, logits)), 3)
    0.0
    """

    fn = dice_loss

    def __init__(
            self, from_logits: bool = False, activation: str = "softmax",
            include_background: bool = True,
            class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray
                           | None) = None,
            smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
            ignore_class: int | None = None,
            reduction: str | None = "sum_over_batch_size", name: str = "dice_loss",
            dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            **_check_common(from_logits, activation, include_background, smooth_nr,
                            smooth_dr, batch, ignore_class),
            class_weight=check_class_vector("class_weight", class_weight))


@export
class GeneralizedDiceLoss(_OverlapLoss):
    """Generalized Dice loss (`keras.losses.Loss`); see `generalized_dice_loss`.

    Args:
        from_logits, activation, include_background, w_type, smooth_nr,
            smooth_dr, batch, ignore_class: as in `generalized_dice_loss`.
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32).
    """

    fn = generalized_dice_loss

    def __init__(self, from_logits: bool = False, activation: str = "softmax",
                 include_background: bool = True, w_type: str = "square",
                 smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
                 ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "generalized_dice_loss",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            **_check_common(from_logits, activation, include_background, smooth_nr,
                            smooth_dr, batch, ignore_class),
            w_type=check_choice("w_type", w_type, GDL_WEIGHT_TYPES))


@export
class TverskyLoss(_OverlapLoss):
    """Tversky loss (`keras.losses.Loss`); see `tversky_loss`.

    Args:
        alpha, beta, from_logits, activation, include_background,
            class_weight, smooth_nr, smooth_dr, batch, ignore_class: as in
            `tversky_loss`.
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32).
    """

    fn = tversky_loss

    def __init__(
            self, alpha: float = 0.5, beta: float = 0.5, from_logits: bool = False,
            activation: str = "softmax", include_background: bool = True,
            class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray
                           | None) = None,
            smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
            ignore_class: int | None = None,
            reduction: str | None = "sum_over_batch_size", name: str = "tversky_loss",
            dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            alpha=_check_coefficient("alpha", alpha),
            beta=_check_coefficient("beta", beta),
            **_check_common(from_logits, activation, include_background, smooth_nr,
                            smooth_dr, batch, ignore_class),
            class_weight=check_class_vector("class_weight", class_weight))


@export
class FocalTverskyLoss(_OverlapLoss):
    """Focal Tversky loss (`keras.losses.Loss`); see `focal_tversky_loss`.

    Args:
        alpha, beta, gamma, from_logits, activation, include_background,
            class_weight, smooth_nr, smooth_dr, batch, ignore_class: as in
            `focal_tversky_loss`.
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32).
    """

    fn = focal_tversky_loss

    def __init__(
            self, alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
            from_logits: bool = False, activation: str = "softmax",
            include_background: bool = True,
            class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray
                           | None) = None,
            smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
            ignore_class: int | None = None,
            reduction: str | None = "sum_over_batch_size",
            name: str = "focal_tversky_loss",
            dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            alpha=_check_coefficient("alpha", alpha),
            beta=_check_coefficient("beta", beta), gamma=_check_gamma(gamma),
            **_check_common(from_logits, activation, include_background, smooth_nr,
                            smooth_dr, batch, ignore_class),
            class_weight=check_class_vector("class_weight", class_weight))


@export
class DiceCrossentropy(_OverlapLoss):
    """Dice + class-weighted cross-entropy (`keras.losses.Loss`); see
    `dice_crossentropy`.

    Args:
        lambda_dice, lambda_ce, from_logits, activation, include_background,
            class_weight, smooth_nr, smooth_dr, batch, ignore_class,
            label_smoothing: as in `dice_crossentropy`.
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32).
    """

    fn = dice_crossentropy

    def __init__(
            self, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
            from_logits: bool = False, activation: str = "softmax",
            include_background: bool = True,
            class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray
                           | None) = None,
            smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch: bool = False,
            ignore_class: int | None = None, label_smoothing: float = 0.0,
            reduction: str | None = "sum_over_batch_size",
            name: str = "dice_crossentropy",
            dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        lambda_dice, lambda_ce = _check_lambdas(lambda_dice, lambda_ce)
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            lambda_dice=lambda_dice, lambda_ce=lambda_ce,
            **_check_common(from_logits, activation, include_background, smooth_nr,
                            smooth_dr, batch, ignore_class),
            class_weight=check_class_vector("class_weight", class_weight),
            label_smoothing=check_label_smoothing(label_smoothing))
