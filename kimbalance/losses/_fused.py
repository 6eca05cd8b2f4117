"""Fused losses: one forward pass that also computes the closed-form gradient.

Autodiff through a loss written as several elementwise passes (log-softmax,
exp, power, products) materialises an (N, C) intermediate per pass, forward
and backward. The fused forms here compute the per-sample value and the
gradient with respect to the logits in the forward pass, keep exactly one
(N, C) tensor (that gradient) for the backward, and the backward only scales
it by the upstream gradient (which carries `sample_weight`, masks and the
reduction, applied by `keras.losses.Loss.__call__` on the per-sample values).

Portable `keras.ops.custom_gradient` (torch, jax and tensorflow): only tensors
are passed, positionally; there is one output; the gradient function is
`grad(*args, upstream=None)` (torch passes the saved inputs positionally and
the upstream by keyword, jax and tensorflow the upstream positionally); it
returns one gradient per positional input (None for labels); constants
(weights, margins, gamma) are closed over. On torch a forward that does not
return `(value, grad_fn)` silently gives NaN gradients: the tests check it.

Gradients of gradients are not supported (the backward is not itself
differentiable in the sense of the loss' second derivative): use the plain
autodiff forms for higher-order derivatives.

Notation for the derivations below: z logits, t targets (label-only
coefficients: smoothing, per-class weights and masks folded in), p the
softmax (or sigmoid) of z, l = log p, q = 1 - p (or 1 - p_t).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

__all__ = [
    "TINY",
    "fused_call",
    "focal_factor",
    "softmax_crossentropy",
    "softmax_focal",
    "sigmoid_focal",
    "binary_crossentropy",
    "asymmetric",
    "distribution_balanced",
]

# Below this, (1 - p_t) ** gamma is evaluated at TINY: the loss term it
# multiplies is itself < TINY there, and the power's gradient stays finite
# (it is 0 below TINY, as autodiff of `maximum(q, TINY) ** gamma` gives).
TINY = 1e-30
# Integer gammas up to this are products: exact, cheap and smooth at 0.
MAX_INTEGER_GAMMA = 4


def fused_call(forward: Callable[..., tuple[Any, Callable[[Any], Any]]],
               *tensors: Any) -> Any:
    """Calls `forward(*tensors)` -> `(value, backward)` under a custom gradient.

    `backward(upstream)` returns one gradient per tensor (None for labels);
    `upstream` has the shape of `value`.
    """

    @ops.custom_gradient
    def call(*args):
        value, backward = forward(*args)

        def grad(*upstream_args, upstream=None):
            if upstream is None:
                (upstream,) = upstream_args
            return tuple(backward(upstream))

        return value, grad

    return call(*tensors)


def focal_factor(q: Any, gamma: float) -> tuple[Any, Any]:
    """`(q ** gamma, gamma * q ** (gamma - 1))`, the focal factor and its slope.

    Integer gammas up to 4 are products (exact, smooth at 0); other gammas use
    `power` at `max(q, TINY)`, and the slope is 0 where `q <= TINY`, exactly
    as autodiff of the reference `power(maximum(q, TINY), gamma)` gives.
    """
    if float(gamma).is_integer() and gamma <= MAX_INTEGER_GAMMA:
        power = int(gamma)
        if power == 0:
            return None, None
        lower = None  # q ** (gamma - 1)
        for _ in range(power - 1):
            lower = q if lower is None else lower * q
        factor = q if lower is None else lower * q
        slope = float(power) if lower is None else lower * float(power)
        return factor, slope
    clipped = ops.maximum(q, TINY)
    factor = ops.power(clipped, gamma)
    slope = ops.where(q > TINY, factor * (gamma / clipped), 0.0)
    return factor, slope


def softmax_crossentropy(targets: Any, logits: Any, *, scale: Any = None,
                         shift: Any = None, target_shift: Any = None,
                         factor: Any = None) -> Any:
    """Per-sample softmax cross-entropy of affinely moved logits, fused.

    Value `v = -factor * sum_c t_c log softmax(z')_c` with
    `z' = scale * z + shift - target_shift * t` (all optional: `scale` a float
    or per-class vector, `shift` and `target_shift` per-class vectors,
    `factor` a per-sample tensor of label-only weights).

    Gradient: with p' = softmax(z'), d(-sum_c t_c log p'_c)/dz'_j =
    p'_j * sum_c t_c - t_j; the moves are label-only, so
    dv/dz_j = factor * scale_j * (p'_j * sum_c t_c - t_j).

    Covers weighted CE (weights folded into t), logit adjustment
    (`shift = tau * log prior`), CDT (`scale = 1 / a`) and LDAM
    (`scale = s`, `target_shift = s * m`, `factor = sum_c t_c w_c`).
    A float `scale` and `factor` are applied to the per-sample upstream in the
    backward, not to the (N, C) gradient: one elementwise pass fewer each.
    On torch the plain autodiff form is used (eager torch has a one-kernel
    log-softmax backward, fewer passes than any keras.ops composition).
    """
    if keras.backend.backend() == "torch":
        # Eager torch runs op by op: its native log_softmax backward is one
        # kernel, so plain autodiff takes fewer passes than the fused form.
        return _plain_softmax_crossentropy(targets, logits, scale, shift,
                                           target_shift, factor)
    extra = () if factor is None else (factor,)
    scalar_scale = scale if isinstance(scale, float) else None

    def forward(targets, logits, *extra):
        z = logits if scale is None else logits * scale
        if shift is not None:
            z = z + shift
        if target_shift is not None:
            z = z - targets * target_shift
        logp = ops.log_softmax(z, axis=-1)
        value = -ops.sum(targets * logp, axis=-1)
        total = ops.sum(targets, axis=-1, keepdims=True)
        # softmax(z) rather than exp(logp): one fused kernel on torch eager.
        gradient = ops.softmax(z, axis=-1) * total - targets
        if scale is not None and scalar_scale is None:
            gradient = gradient * scale
        if extra:
            value = value * extra[0]

        def backward(upstream):
            if extra:
                upstream = upstream * extra[0]
            if scalar_scale is not None:
                upstream = upstream * scalar_scale
            return (None, gradient * ops.expand_dims(upstream, -1)) + (None,) * len(
                extra)

        return value, backward

    return fused_call(forward, targets, logits, *extra)


def _plain_softmax_crossentropy(targets, logits, scale, shift, target_shift,
                                factor):
    z = logits if scale is None else logits * scale
    if shift is not None:
        z = z + shift
    if target_shift is not None:
        z = z - targets * target_shift
    value = -ops.sum(targets * ops.log_softmax(z, axis=-1), axis=-1)
    return value if factor is None else value * factor


def softmax_focal(targets: Any, logits: Any, *, gamma: float, scale: Any = 1.0) -> Any:
    """Per-sample softmax focal loss from logits, fused.

    Value `v = -scale * sum_c t_c f_c l_c` with `f_c = q_c ** gamma`,
    `q = 1 - p`, `l = log_softmax(z)`.

    Gradient: dp_c/dz_j = p_c (d_cj - p_j), dl_c/dz_j = d_cj - p_j and
    df_c/dp_c = -g_c with the slope g_c = gamma * q_c ** (gamma - 1), so
    dv/dz_j = -scale * sum_c t_c [-g_c l_c p_c (d_cj - p_j) + f_c (d_cj - p_j)]
            = scale * (p_j * S - u_j),
    u_c = t_c (f_c - g_c p_c l_c), S = sum_c u_c.
    gamma = 0 gives u = t: the cross-entropy gradient p * sum(t) - t.
    For an integer gamma = k, u = t q^(k-1) (q - k p l) (fewer passes).
    `scale` multiplies the per-sample upstream in the backward.
    """

    def forward(targets, logits):
        logp = ops.log_softmax(logits, axis=-1)
        p = ops.softmax(logits, axis=-1)
        q = 1.0 - p
        if gamma == 0.0:
            weighted = u = targets
        elif float(gamma).is_integer() and gamma <= MAX_INTEGER_GAMMA:
            lower = targets  # t * q ** (k - 1)
            for _ in range(int(gamma) - 1):
                lower = lower * q
            weighted = lower * q
            u = lower * (q - (p * logp) * gamma)
        else:
            f, g = focal_factor(q, gamma)
            weighted = targets * f
            u = weighted - (targets * g) * (p * logp)
        value = ops.sum(weighted * logp, axis=-1) * (-scale)
        gradient = p * ops.sum(u, axis=-1, keepdims=True) - u

        def backward(upstream):
            return None, gradient * ops.expand_dims(upstream * scale, -1)

        return value, backward

    return fused_call(forward, targets, logits)


def _bce_from_logits(targets, logits):
    """`softplus(z) - y z`, elementwise: -y log p - (1 - y) log(1 - p).

    On torch one `binary_cross_entropy_with_logits` kernel (through
    `keras.ops.binary_crossentropy`) instead of three eager passes; jax and
    tensorflow fuse the plain formula (Keras' jax form takes two log-sigmoids).
    """
    if keras.backend.backend() == "torch":
        return ops.binary_crossentropy(targets, logits, from_logits=True)
    return ops.softplus(logits) - targets * logits


def _label_mean(values, rank):
    return values if rank <= 1 else ops.mean(values, axis=-1)


def _upstream_of(upstream, rank, num_labels):
    if rank <= 1:
        return upstream
    return ops.expand_dims(upstream, -1) * (1.0 / num_labels)


def sigmoid_focal(targets: Any, logits: Any, *, gamma: float,
                  alpha: float | None = None) -> Any:
    """Per-sample mean over labels of torchvision's sigmoid focal loss, fused.

    Per label `L = a_t f b` with `b = softplus(z) - y z` (the BCE, one
    `keras.ops.binary_crossentropy` kernel on torch),
    `q = 1 - p_t = y + p s` with `s = 1 - 2 y`, `f = q ** gamma` and
    `a_t = (1 - alpha) + y (2 alpha - 1)` (1 for alpha None).

    Gradient: db/dz = p - y, dq/dz = s p (1 - p), df/dq = g (the
    slope gamma * q ** (gamma - 1)), so
    dL/dz = a_t [f (p - y) + g s p (1 - p) b],
    divided by the number of labels for the per-sample mean.
    """
    rank = len(logits.shape)
    num_labels = logits.shape[-1] if rank >= 2 else 1

    def forward(targets, logits):
        p = ops.sigmoid(logits)
        bce = _bce_from_logits(targets, logits)
        diff = p - targets
        if gamma == 0:
            loss, slope = bce, diff
        else:
            sign = 1.0 - 2.0 * targets
            dq = sign * p  # q - y; times (1 - p): dq/dz
            f, g = focal_factor(targets + dq, gamma)
            loss = f * bce
            slope = f * diff + (g * bce) * (dq - dq * p)
        if alpha is not None:
            alpha_t = (1.0 - alpha) + targets * (2.0 * alpha - 1.0)
            loss = loss * alpha_t
            slope = slope * alpha_t
        value = _label_mean(loss, rank)

        def backward(upstream):
            return None, slope * _upstream_of(upstream, rank, num_labels)

        return value, backward

    return fused_call(forward, targets, logits)


def binary_crossentropy(targets: Any, logits: Any, *, pos_weight: Any = None,
                        neg_weight: Any = None) -> Any:
    """Per-sample mean over labels of weighted BCE from logits, fused.

    Per label `L = (a + b) softplus(z) - a z` with label-only `a = w_pos y`,
    `b = w_neg (1 - y)` (-log p = softplus(z) - z, -log(1 - p) = softplus(z)).
    Gradient: dL/dz = (a + b) sigmoid(z) - a, over the number of labels.
    """
    rank = len(logits.shape)
    num_labels = logits.shape[-1] if rank >= 2 else 1

    def forward(targets, logits):
        pos = targets if pos_weight is None else targets * pos_weight
        neg = 1.0 - targets if neg_weight is None else (1.0 - targets) * neg_weight
        both = pos + neg
        value = _label_mean(both * ops.softplus(logits) - pos * logits, rank)
        slope = both * ops.sigmoid(logits) - pos

        def backward(upstream):
            return None, slope * _upstream_of(upstream, rank, num_labels)

        return value, backward

    return fused_call(forward, targets, logits)



def asymmetric(targets: Any, logits: Any, *, clip: float, log_eps: float,
               floor_log_q: bool,
               focusing: Callable[[Any, Any], tuple[Any, Any] | None]) -> Any:
    """Per-sample ASL from logits with stop-gradient focusing, fused.

    Value `v = -sum_l [y w+ lp + (1 - y) w- lq]` with
    `lp = max(log sigmoid(z), log eps)`, `q = sigmoid(-z)` (= 1 - p), and
    `lq = log(min(q + clip, 1))` for clip > 0, else `log sigmoid(z) - z`
    (= log q), floored at log eps when `floor_log_q`. The weights
    `(w+, w-) = focusing(q, z)` are constants of the gradient (stop-gradient
    focusing, the official default), so:
    dlp/dz = q where log sigmoid(z) > log eps (else 0);
    dlq/dz = -q (1 - q) / (q + clip) where q + clip < 1 (else 0) for clip > 0,
    q - 1 for clip = 0; 0 where the floor is active;
    dv/dz = -(y w+ dlp/dz + (1 - y) w- dlq/dz).
    """

    def forward(targets, logits):
        raw_log_p = ops.log_sigmoid(logits)
        q = ops.sigmoid(-logits)
        if clip > 0:
            shifted = q + clip
            raw_log_q = ops.log(ops.minimum(shifted, 1.0))
            slope_q = ops.where(shifted < 1.0, (q * q - q) / shifted, 0.0)
        else:
            raw_log_q = raw_log_p - logits
            slope_q = q - 1.0
        log_p = ops.maximum(raw_log_p, log_eps)
        slope_p = ops.where(raw_log_p > log_eps, q, 0.0)
        log_q = raw_log_q
        if floor_log_q:
            log_q = ops.maximum(raw_log_q, log_eps)
            slope_q = ops.where(raw_log_q > log_eps, slope_q, 0.0)
        pos, neg = targets, 1.0 - targets
        weights = focusing(q, logits)
        if weights is not None:
            pos, neg = pos * weights[0], neg * weights[1]
        value = -ops.sum(pos * log_p + neg * log_q, axis=-1)
        slope = -(pos * slope_p + neg * slope_q)

        def backward(upstream):
            return None, slope * ops.expand_dims(upstream, -1)

        return value, backward

    return fused_call(forward, targets, logits)


def _power_and_slope(base, exponent):
    """`(base ** exponent, exponent * base ** (exponent - 1))` for base >= 0.

    As autodiff of the DB / ASL reference `_power`: products for integer
    exponents up to 4; otherwise value and slope are 0 where base is 0.
    """
    if float(exponent).is_integer() and exponent <= MAX_INTEGER_GAMMA:
        return focal_factor(base, exponent)
    positive = ops.greater(base, 0.0)
    safe = ops.where(positive, base, ops.ones_like(base))
    value = ops.where(positive, ops.power(safe, exponent), 0.0)
    return value, value * exponent / safe


def distribution_balanced(targets: Any, logits: Any, weight: Any, *, bias: Any,
                          neg_scale: float, focal_gamma: float) -> Any:
    """Per-sample mean over labels of the DB loss' BCE part, fused.

    Per label `L = w b F` with label-only `w` (re-balancing weight, balance
    parameter and 1 / neg_scale for negatives folded in), the moved logit
    `z' = (z + bias) s`, `s = y + (1 - y) neg_scale` (negative-tolerant
    regularisation), `b = softplus(z') - z' y` and the focal factor
    `F = (1 - exp(-b)) ** gamma` (1 for gamma = 0).

    Gradient: db/dz' = sigmoid(z') - y, dz'/dz = s and
    dF/db = F' exp(-b) with F' the slope of x ** gamma at x = 1 - exp(-b), so
    dL/dz = w s (sigmoid(z') - y) (F + b F' exp(-b)), over the number of labels.
    """
    rank = len(logits.shape)
    num_labels = logits.shape[-1] if rank >= 2 else 1

    def forward(targets, logits, weight):
        scale = targets + (1.0 - targets) * neg_scale
        moved = (logits + bias) * scale
        bce = _bce_from_logits(targets, moved)
        slope = weight * scale * (ops.sigmoid(moved) - targets)
        loss = weight * bce
        if focal_gamma > 0:
            kept = ops.exp(-bce)
            factor, factor_slope = _power_and_slope(-ops.expm1(-bce), focal_gamma)
            loss = loss * factor
            slope = slope * (factor + bce * factor_slope * kept)
        value = _label_mean(loss, rank)

        def backward(upstream):
            return None, slope * _upstream_of(upstream, rank, num_labels), None

        return value, backward

    return fused_call(forward, targets, logits, weight)
