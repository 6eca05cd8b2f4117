"""The plain autodiff forms of the fused losses: the references of test_fused.

Each is the loss as it was written before fusing (several `keras.ops` passes,
differentiated by the backend's autodiff), for logits and dense float labels
(smoothing, per-class weights and masks already folded into the labels).
"""

import numpy as np
from keras import ops

TINY = 1e-30


def focal_factor(q, gamma):
    if gamma == 0:
        return None
    if float(gamma).is_integer() and gamma <= 4:
        factor = q
        for _ in range(int(gamma) - 1):
            factor = factor * q
        return factor
    return ops.power(ops.maximum(q, TINY), gamma)


def softmax_focal(targets, logits, gamma, scale=1.0):
    per_class = targets * ops.log_softmax(logits, axis=-1)
    factor = focal_factor(1.0 - ops.softmax(logits, axis=-1), gamma)
    if factor is not None:
        per_class = per_class * factor
    return ops.sum(per_class, axis=-1) * -scale


def _label_mean(values):
    return values if len(values.shape) <= 1 else ops.mean(values, axis=-1)


def sigmoid_focal(targets, logits, gamma, alpha=None):
    loss = ops.softplus(logits) - targets * logits
    factor = focal_factor(targets + ops.sigmoid(logits) * (1.0 - 2.0 * targets),
                          gamma)
    if factor is not None:
        loss = loss * factor
    if alpha is not None:
        loss = loss * ((1.0 - alpha) + targets * (2.0 * alpha - 1.0))
    return _label_mean(loss)


def binary_crossentropy(targets, logits, pos_weight=None, neg_weight=None):
    pos = targets if pos_weight is None else targets * pos_weight
    neg = 1.0 - targets if neg_weight is None else (1.0 - targets) * neg_weight
    return _label_mean((pos + neg) * ops.softplus(logits) - pos * logits)


def softmax_crossentropy(targets, logits):
    return -ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)


def ldam(targets, logits, counts, max_margin, scale, class_weight=None):
    raw = np.asarray(counts, dtype=np.float64) ** -0.25
    margins = ops.convert_to_tensor(raw * (max_margin / raw.max()), "float32")
    loss = softmax_crossentropy(targets, scale * (logits - targets * margins))
    if class_weight is not None:
        weights = ops.convert_to_tensor(np.asarray(class_weight), "float32")
        loss = loss * ops.sum(targets * weights, axis=-1)
    return loss


def cdt(targets, logits, counts, gamma):
    counts = np.asarray(counts, dtype=np.float64)
    temperatures = ops.convert_to_tensor((counts.max() / counts) ** gamma, "float32")
    return softmax_crossentropy(targets, logits / temperatures)


def _power(base, exponent):
    if exponent == 0:
        return ops.ones_like(base)
    if float(exponent).is_integer() and exponent <= 4:
        result = base
        for _ in range(int(exponent) - 1):
            result = result * base
        return result
    positive = ops.greater(base, 0.0)
    safe = ops.where(positive, base, ops.ones_like(base))
    return ops.where(positive, ops.power(safe, exponent), ops.zeros_like(base))


def asymmetric(targets, logits, gamma_neg, gamma_pos, clip, eps):
    """ASL from logits with stop-gradient focusing (the official default)."""
    log_eps = float(np.log(eps))
    log_p = ops.log_sigmoid(logits)
    q = ops.sigmoid(-logits)
    log_q = ops.log(ops.minimum(q + clip, 1.0)) if clip > 0 else log_p - logits
    log_p = ops.maximum(log_p, log_eps)
    if clip < eps:
        log_q = ops.maximum(log_q, log_eps)
    pos, neg = targets, 1.0 - targets
    if gamma_neg > 0 or gamma_pos > 0:
        q_w = ops.stop_gradient(q)
        w_neg = (_power(ops.relu(1.0 - clip - q_w), gamma_neg) if clip > 0
                 else _power(ops.stop_gradient(ops.sigmoid(logits)), gamma_neg))
        pos, neg = pos * _power(q_w, gamma_pos), neg * w_neg
    return -ops.sum(pos * log_p + neg * log_q, axis=-1)


def distribution_balanced(targets, logits, weight, bias, neg_scale, focal_gamma):
    """The DB loss' BCE part with its label-only `weight` already built."""
    moved = (logits + bias) * (targets + (1.0 - targets) * neg_scale)
    bce = ops.softplus(moved) - moved * targets
    loss = weight * bce
    if focal_gamma > 0:
        loss = loss * _power(-ops.expm1(-bce), focal_gamma)
    return ops.mean(loss, axis=-1)
