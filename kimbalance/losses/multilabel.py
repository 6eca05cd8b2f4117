"""Multi-label losses for imbalanced labels: asymmetric loss and DB loss.

Both take multi-hot targets (N, L) of 0/1 values with scores (N, L) and return
one value per sample; reduction and `sample_weight` are left to
`keras.losses.Loss`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import (
    MAX_COUNT,
    check_bool,
    check_counts,
    check_float,
    check_int,
    invalid,
)
from kimbalance.losses._common import (
    MAX_SCALE,
    MAX_WEIGHT,
    KimbalanceLoss,
    check_exponent,
    check_labels,
    to_float32,
)
from kimbalance.losses._fused import asymmetric, distribution_balanced

__all__ = [
    "AsymmetricLoss",
    "DistributionBalancedLoss",
    "asymmetric_loss",
    "distribution_balanced_loss",
]


# Integer exponents up to this are evaluated as products of the base.
_MAX_PRODUCT_EXPONENT = 4


def _multi_hot_targets(y_true, y_pred):
    """Returns `y_true` as a float tensor like `y_pred`; checks static shapes."""
    y_true = ops.convert_to_tensor(y_true)
    pred_shape = tuple(y_pred.shape)
    if len(pred_shape) < 2:
        raise invalid("y_pred", "multi-label scores of shape (N, L)",
                      f"<tensor of shape {pred_shape}>")
    true_shape = tuple(y_true.shape)
    same_rank = len(true_shape) == len(pred_shape)
    if not same_rank or (true_shape[-1] is not None and pred_shape[-1] is not None
                         and true_shape[-1] != pred_shape[-1]):
        raise invalid("y_true", f"multi-hot labels of the shape of y_pred "
                      f"{pred_shape}", f"<tensor of shape {true_shape}>")
    return ops.cast(y_true, y_pred.dtype)


def _label_counts(value):
    """Positive training samples per label, all > 0, as float64."""
    return check_counts("label_counts", value, positive=True).astype(np.float64)


def _check_width(name, counts, y_pred):
    width = y_pred.shape[-1]
    if width is not None and width != counts.shape[0]:
        raise invalid(name, f"one count per label of y_pred ({width} labels); "
                      f"got {counts.shape[0]}", counts)


def _power(base, exponent):
    """`base ** exponent` for base >= 0 and a Python exponent >= 0.

    Small integer exponents are products (exact, and smooth at 0). Otherwise
    the gradient stays finite everywhere: at base 0 the value is 0 (1 for
    exponent 0) and the gradient 0, instead of `0 * inf` for exponents below 1.
    """
    if exponent == 0:
        return ops.ones_like(base)
    if float(exponent).is_integer() and exponent <= _MAX_PRODUCT_EXPONENT:
        result = base
        for _ in range(int(exponent) - 1):
            result = result * base
        return result
    positive = ops.greater(base, 0.0)
    safe = ops.where(positive, base, ops.ones_like(base))
    return ops.where(positive, ops.power(safe, exponent), ops.zeros_like(base))


def _check_asl_args(gamma_neg, gamma_pos, clip, eps, from_logits,
                    stop_gradient_focusing):
    return (
        check_exponent("gamma_neg", gamma_neg),
        check_exponent("gamma_pos", gamma_pos),
        check_float("clip", clip, low=0.0, high=1.0, high_inclusive=False),
        check_float("eps", eps, low=0.0, high=1.0, low_inclusive=False,
                    high_inclusive=False),
        check_bool("from_logits", from_logits),
        check_bool("stop_gradient_focusing", stop_gradient_focusing),
    )


@export
def asymmetric_loss(y_true: Any, y_pred: Any, *, gamma_neg: float = 4.0,
                    gamma_pos: float = 1.0, clip: float = 0.05, eps: float = 1e-8,
                    from_logits: bool = True,
                    stop_gradient_focusing: bool = True) -> Any:
    """Asymmetric loss (ASL) for multi-label classification, per sample.

    With `p = sigmoid(z)` per label, ASL shifts the negative probability,
    `p_m = max(p - clip, 0)` (the official `xs_neg = min(1 - p + clip, 1)`),
    and focuses positives and negatives with different exponents:

    `L = -sum_labels [ y (1 - p)^gamma_pos log(max(p, eps))
                       + (1 - y) p_m^gamma_neg log(max(1 - p_m, eps)) ]`

    This is the official `AsymmetricLoss` (Alibaba-MIIL/ASL,
    `src/loss_functions/losses.py`), including the `eps` clamp inside the
    logs; its value is `-loss.sum()` over the batch and labels, so the
    per-sample value here is the sum over labels and Keras' default
    reduction gives the official value divided by the batch size (use
    `reduction="sum"` for the official scalar). From logits the logs are taken
    in log space (`log_sigmoid`), which is exact where the official float32
    `log(sigmoid(z))` rounds. Targets are multi-hot 0/1; a soft target `y`
    interpolates the positive and negative terms linearly.

    From logits with `stop_gradient_focusing=True` (the default), value and
    gradient come from one fused pass (closed-form gradient,
    `keras.ops.custom_gradient`; gradients of gradients are not supported
    there); the other settings use plain autodiff.

    Args:
        y_true: multi-hot targets (N, L).
        y_pred: logits (N, L), or probabilities when `from_logits=False`.
        gamma_neg: the focusing exponent of negatives, in [0, 1e4].
        gamma_pos: the focusing exponent of positives, in [0, 1e4].
        clip: the probability margin of negatives, in [0, 1); 0 turns the
            shift off.
        eps: the lower clamp of the probabilities inside the logs, in (0, 1).
        from_logits: whether `y_pred` holds logits (default True).
        stop_gradient_focusing: whether the focusing weights are constants for
            the gradient (the official `disable_torch_grad_focal_loss`). True
            by default, the default of the official `AsymmetricLoss`
            (`disable_torch_grad_focal_loss=True`: the weights are computed
            with autograd off). False lets the gradient flow through the
            weights, as the official `AsymmetricLossOptimized` does by default
            (`False`), and as the official `AsymmetricLoss` does in the
            repository's latest `losses.py`, where the two lines that turn
            autograd off are commented out (so its flag has no effect there).

    Returns:
        A float tensor of shape (N,).

    Raises:
        ValueError: for `gamma_neg < 0`, `gamma_pos < 0`, `clip` outside
            [0, 1), `eps` outside (0, 1), non-bool flags, or `y_true` /
            `y_pred` of the wrong shape.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> loss = asymmetric_loss([[1.0, 0.0, 0.0]], [[2.0, -1.0, 3.0]])
    >>> np.round(np.asarray(loss, dtype="float64"), 4).tolist()
    [1.5611]

    References:
        Ridnik et al., "Asymmetric Loss For Multi-Label Classification",
        ICCV 2021. Official code: github.com/Alibaba-MIIL/ASL.
    """
    gamma_neg, gamma_pos, clip, eps, from_logits, stop_gradient_focusing = (
        _check_asl_args(gamma_neg, gamma_pos, clip, eps, from_logits,
                        stop_gradient_focusing))
    y_pred = to_float32(y_pred)
    y = _multi_hot_targets(y_true, y_pred)
    check_labels(y_true, y_pred, "probabilities")
    log_eps = math.log(eps)
    if from_logits and stop_gradient_focusing:
        # One fused pass (see `_fused.asymmetric`): the focusing weights are
        # constants of the gradient, built from the forward's own q.
        def focusing(q, logits):
            if not (gamma_neg > 0 or gamma_pos > 0):
                return None
            w_neg = (_power(ops.relu(1.0 - clip - q), gamma_neg) if clip > 0
                     else _power(ops.sigmoid(logits), gamma_neg))
            return _power(q, gamma_pos), w_neg

        return asymmetric(y, y_pred, clip=clip, log_eps=log_eps,
                          floor_log_q=clip < eps, focusing=focusing)
    # q = 1 - p without cancellation; the shifted negative probability
    # max(p - clip, 0) = relu(1 - clip - q) (the official 1 - min(q + clip, 1)).
    if from_logits:
        log_p = ops.log_sigmoid(y_pred)
        q = ops.sigmoid(-y_pred)
        if clip > 0:
            log_q = ops.log(ops.minimum(q + clip, 1.0))
        else:
            log_q = log_p - y_pred  # log(1 - p) = log sigmoid(z) - z
    else:
        p = ops.clip(y_pred, 0.0, 1.0)
        q = 1.0 - p
        log_p = ops.log(ops.maximum(p, eps))
        log_q = ops.log(ops.minimum(q + clip, 1.0))
    log_p = ops.maximum(log_p, log_eps)
    if clip < eps:
        log_q = ops.maximum(log_q, log_eps)
    pos_coef, neg_coef = y, 1.0 - y
    if gamma_neg > 0 or gamma_pos > 0:
        # The weights are label coefficients: under stop_gradient_focusing
        # they are built from constants, so only log_p and log_q carry a
        # gradient (few differentiated passes over the (N, L) scores).
        q_w = ops.stop_gradient(q) if stop_gradient_focusing else q
        w_pos = _power(q_w, gamma_pos)
        if clip > 0 or not from_logits:
            w_neg = _power(ops.relu(1.0 - clip - q_w), gamma_neg)
        else:
            p_w = ops.sigmoid(y_pred)
            w_neg = _power(ops.stop_gradient(p_w) if stop_gradient_focusing
                           else p_w, gamma_neg)
        pos_coef = pos_coef * w_pos
        neg_coef = neg_coef * w_neg
    return -ops.sum(pos_coef * log_p + neg_coef * log_q, axis=-1)


def _check_db_args(label_counts, num_samples, rebalance, map_alpha, map_beta,
                   map_gamma, neg_scale, init_bias, focal_gamma, balance_param):
    counts = _label_counts(label_counts)
    num_samples = check_int("num_samples", num_samples, low=1, high=MAX_COUNT)
    if np.any(counts > num_samples):
        raise invalid("label_counts", f"counts <= num_samples={num_samples} (a "
                      "label cannot have more positives than there are training "
                      "samples)", label_counts)
    args = dict(
        rebalance=check_bool("rebalance", rebalance),
        # Bounds keep every derived float32 finite: logits are scaled by
        # neg_scale and weights divided by it, the bias is at most
        # 37 * init_bias / neg_scale (num_samples <= 2**53), and map_beta
        # multiplies rates in [0, 1] shifted by map_gamma.
        map_alpha=check_float("map_alpha", map_alpha, low=0.0, high=MAX_WEIGHT),
        map_beta=check_float("map_beta", map_beta, low=0.0, high=MAX_SCALE),
        map_gamma=check_float("map_gamma", map_gamma, low=-MAX_SCALE,
                              high=MAX_SCALE),
        neg_scale=check_float("neg_scale", neg_scale, low=1.0 / MAX_SCALE,
                              high=MAX_SCALE),
        init_bias=check_float("init_bias", init_bias, low=0.0, high=MAX_SCALE),
        focal_gamma=check_exponent("focal_gamma", focal_gamma),
        balance_param=check_float("balance_param", balance_param, low=0.0,
                                  low_inclusive=False, high=MAX_WEIGHT),
    )
    if args["init_bias"] > 0 and np.any(counts >= num_samples):
        raise invalid("label_counts", f"counts < num_samples={num_samples} when "
                      "init_bias > 0 (the initial bias is -log(num_samples / n - 1))",
                      label_counts)
    return counts, num_samples, args


def _db_bias(counts, num_samples, init_bias, neg_scale):
    if init_bias == 0:
        return np.zeros_like(counts)
    return -np.log(num_samples / counts - 1.0) * init_bias / neg_scale


@export
def distribution_balanced_loss(y_true: Any, y_pred: Any, *, label_counts: ArrayLike,
                               num_samples: int, rebalance: bool = True,
                               map_alpha: float = 0.1, map_beta: float = 10.0,
                               map_gamma: float = 0.2, neg_scale: float = 2.0,
                               init_bias: float = 0.05, focal_gamma: float = 2.0,
                               balance_param: float = 2.0) -> Any:
    """Distribution-balanced (DB) loss for multi-label classification, per sample.

    The official `ResampleLoss` with `reweight_func='rebalance'`
    (wutong16/DistributionBalancedLoss, `mllt/models/losses/resample_loss.py`),
    in three parts, for logits `z`, multi-hot `y`, label counts `n_c` and
    `N = num_samples` training samples:

    1. Rebalanced weighting (`rebalance`): for sample i,
       `r_ic = (1 / n_c) / sum_k y_ik / n_k` and the weight
       `w_ic = sigmoid(map_beta * (r_ic - map_gamma)) + map_alpha`, for
       positive and negative labels alike (a sample without positives gets
       `1 + map_alpha`, the official `sigmoid(inf)`).
    2. Negative-tolerant regularisation: every logit gets the initial bias
       `b_c = -log(N / n_c - 1) * init_bias / neg_scale`, negative labels'
       logits are multiplied by `neg_scale` and their weight divided by it:
       `z' = (z + b) * (y + (1 - y) * neg_scale)`,
       `w' = w * (y + (1 - y) / neg_scale)`.
    3. Focal: `l = balance_param * (1 - p_t)^focal_gamma * w' * BCE(z', y)` with
       `p_t = exp(-BCE(z', y))`.

    The official loss is the mean of `l` over the batch and the labels; the
    per-sample value here is the mean over labels, so Keras' default
    reduction gives the official value. The defaults are those of the
    official COCO-MLT config (`configs/coco/LT_resnet50_pfc_DB.py`:
    `focal=dict(focal=True, balance_param=2.0, gamma=2)`,
    `logit_reg=dict(neg_scale=2.0, init_bias=0.05)`,
    `map_param=dict(alpha=0.1, beta=10.0, gamma=0.2)`).
    With `rebalance=False`, `neg_scale=1`, `init_bias=0`, `focal_gamma=0` and
    `balance_param=1` it is the binary cross-entropy averaged over labels.

    Value and gradient come from one fused pass (closed-form gradient,
    `keras.ops.custom_gradient`); gradients of gradients are not supported.

    Args:
        y_true: multi-hot targets (N, L).
        y_pred: logits (N, L) (the loss works on logits only).
        label_counts: positive training samples per label, L values > 0, e.g.
            `kimbalance.weights.class_counts(y_train)`.
        num_samples: the number of training samples (`len(y_train)`), which
            the initial bias needs (the official `train_num`); every count must
            be below it when `init_bias > 0`.
        rebalance: whether to apply the rebalanced weighting.
        map_alpha: the weight floor `alpha` of the mapping, in [0, 1e12].
        map_beta: the slope `beta` of the mapping, in [0, 1e4].
        map_gamma: the shift `gamma` of the mapping, in [-1e4, 1e4].
        neg_scale: the negative-logit scale `lambda`, in [1e-4, 1e4] (1
            turns it off).
        init_bias: the bias factor `kappa`, in [0, 1e4] (0 turns it off).
        focal_gamma: the focal exponent, in [0, 1e4] (0 turns focusing off).
        balance_param: the constant factor of the focal term, in (0, 1e12].

    Returns:
        A float tensor of shape (N,).

    Raises:
        ValueError: for counts <= 0, non-finite or above `num_samples`,
            `num_samples < 1`, invalid hyperparameters, `y_true` / `y_pred` of
            the wrong shape, or `label_counts` whose length is not the number
            of labels of `y_pred`.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> loss = distribution_balanced_loss(
    ...     [[1.0, 0.0, 1.0]], [[1.0, -2.0, 0.5]],
    ...     label_counts=[500, 40, 8], num_samples=1000)
    >>> np.round(np.asarray(loss, dtype="float64"), 4).tolist()
    [0.0666]

    References:
        Wu et al., "Distribution-Balanced Loss for Multi-Label Classification
        in Long-Tailed Datasets", ECCV 2020. Official code:
        github.com/wutong16/DistributionBalancedLoss.
    """
    counts, num_samples, args = _check_db_args(
        label_counts, num_samples, rebalance, map_alpha, map_beta, map_gamma,
        neg_scale, init_bias, focal_gamma, balance_param)
    y_pred = to_float32(y_pred)
    _check_width("label_counts", counts, y_pred)
    y = _multi_hot_targets(y_true, y_pred)
    check_labels(y_true, y_pred, "binary")
    dtype = y_pred.dtype
    neg_scale = args["neg_scale"]

    if args["rebalance"]:
        inv_freq = ops.convert_to_tensor(1.0 / counts, dtype)
        repeat_rate = ops.sum(y * inv_freq, axis=-1, keepdims=True)
        has_positive = ops.greater(repeat_rate, 0.0)
        safe_rate = ops.where(has_positive, repeat_rate, ops.ones_like(repeat_rate))
        mapped = ops.sigmoid(args["map_beta"] * (inv_freq / safe_rate
                                                 - args["map_gamma"]))
        weight = ops.where(has_positive, mapped, ops.ones_like(mapped))
        weight = weight + args["map_alpha"]
    else:
        weight = ops.ones_like(y)
    bias = _db_bias(counts, num_samples, args["init_bias"], neg_scale)
    # Label-only coefficients first (no gradient), then one fused pass over z
    # (see `_fused.distribution_balanced` for the gradient).
    weight = args["balance_param"] * weight * (y + (1.0 - y) / neg_scale)
    return distribution_balanced(y, y_pred, weight,
                                 bias=ops.convert_to_tensor(bias, dtype),
                                 neg_scale=neg_scale,
                                 focal_gamma=args["focal_gamma"])


@export
class AsymmetricLoss(KimbalanceLoss):
    """Asymmetric loss for multi-label classification (Ridnik et al., 2021).

    Per-sample sum over labels of the official ASL terms; see
    `asymmetric_loss` for the formula and `stop_gradient_focusing`. The
    default reduction averages the per-sample sums over the batch; the
    official `AsymmetricLoss` returns the sum over the batch as well
    (`reduction="sum"`). `call()` returns the per-sample sums under every
    reduction; for a weighted mean `sum(w * l) / sum(w)` over samples, pass
    `w` as `sample_weight` with `reduction="mean_with_sample_weight"`.

    Args:
        gamma_neg: the focusing exponent of negatives, in [0, 1e4].
        gamma_pos: the focusing exponent of positives, in [0, 1e4].
        clip: the probability margin of negatives, in [0, 1).
        eps: the lower clamp of the probabilities inside the logs, in (0, 1).
        from_logits: whether predictions are logits (default True).
        stop_gradient_focusing: whether the focusing weights are constants for
            the gradient (default True, as the official `AsymmetricLoss`
            default `disable_torch_grad_focal_loss=True`).
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the dtype of the loss computation (float32 by default, also
            under mixed precision policies).

    Raises:
        ValueError: for invalid arguments or label values (see `asymmetric_loss`).

    Examples:

    >>> loss = AsymmetricLoss()
    >>> round(float(loss([[1.0, 0.0, 0.0]], [[2.0, -1.0, 3.0]])), 4)
    1.5611

    References:
        Ridnik et al., "Asymmetric Loss For Multi-Label Classification",
        ICCV 2021. Official code: github.com/Alibaba-MIIL/ASL.
    """

    fn = asymmetric_loss
    label_rule = "probabilities"

    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 1.0,
                 clip: float = 0.05, eps: float = 1e-8, from_logits: bool = True,
                 stop_gradient_focusing: bool = True, *,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "asymmetric_loss",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        gamma_neg, gamma_pos, clip, eps, from_logits, stop_gradient_focusing = (
            _check_asl_args(gamma_neg, gamma_pos, clip, eps, from_logits,
                            stop_gradient_focusing))
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip,
                         eps=eps, from_logits=from_logits,
                         stop_gradient_focusing=stop_gradient_focusing)


@export
class DistributionBalancedLoss(KimbalanceLoss):
    """Distribution-balanced loss for multi-label classification (Wu et al., 2020).

    Rebalanced weighting, negative-tolerant regularisation and focal
    focusing on logits, with the official COCO-MLT hyperparameters by
    default; see `distribution_balanced_loss`. The per-sample value is the
    mean over labels, so the default reduction gives the official value (the
    mean over batch and labels).

    Reduction: `call()` returns the per-sample values under every reduction;
    the default `"sum_over_batch_size"` averages them over the batch. For
    PyTorch's weighted mean `sum(w * l) / sum(w)`, pass per-sample weights `w`
    as `sample_weight` and use `reduction="mean_with_sample_weight"`.

    Args:
        label_counts: positive training samples per label, L values > 0.
        num_samples: the number of training samples (for the initial bias).
        rebalance: whether to apply the rebalanced weighting.
        map_alpha: the weight floor of the mapping, in [0, 1e12].
        map_beta: the slope of the mapping, in [0, 1e4].
        map_gamma: the shift of the mapping.
        neg_scale: the negative-logit scale, in [1e-4, 1e4].
        init_bias: the bias factor, in [0, 1e4].
        focal_gamma: the focal exponent, in [0, 1e4].
        balance_param: the constant factor of the focal term, in (0, 1e12].
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the dtype of the loss computation (float32 by default, also
            under mixed precision policies).

    Raises:
        ValueError: for invalid arguments or label values (see
            `distribution_balanced_loss`).

    Examples:

    >>> y_train = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    >>> loss = DistributionBalancedLoss(
    ...     label_counts=y_train.sum(axis=0), num_samples=len(y_train))
    >>> round(float(loss(y_train, np.zeros((4, 3)))), 4)
    0.2414

    References:
        Wu et al., "Distribution-Balanced Loss for Multi-Label Classification
        in Long-Tailed Datasets", ECCV 2020. Official code:
        github.com/wutong16/DistributionBalancedLoss.
    """

    fn = distribution_balanced_loss
    label_rule = "binary"

    def __init__(self, label_counts: ArrayLike, num_samples: int, *,
                 rebalance: bool = True, map_alpha: float = 0.1, map_beta: float = 10.0,
                 map_gamma: float = 0.2, neg_scale: float = 2.0,
                 init_bias: float = 0.05, focal_gamma: float = 2.0,
                 balance_param: float = 2.0,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "distribution_balanced_loss",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        counts, num_samples, args = _check_db_args(
            label_counts, num_samples, rebalance, map_alpha, map_beta, map_gamma,
            neg_scale, init_bias, focal_gamma, balance_param)
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         label_counts=counts.astype(np.int64).tolist(),
                         num_samples=num_samples, **args)
