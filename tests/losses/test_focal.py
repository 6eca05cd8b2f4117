"""FocalCrossentropy / SigmoidFocalCrossentropy.

Oracles: float64 NumPy formulas; for the sigmoid focal loss the formula of
`torchvision.ops.sigmoid_focal_loss` (torchvision/ops/focal_loss.py, itself
from fvcore), ported to NumPy since torchvision is not installed here; Keras'
`CategoricalFocalCrossentropy` / `BinaryFocalCrossentropy` where their
definitions agree with ours.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.losses import (
    FocalCrossentropy,
    SigmoidFocalCrossentropy,
    focal_crossentropy,
    sigmoid_focal_crossentropy,
    weighted_categorical_crossentropy,
)

N, C, L = 8, 4, 3
RTOL, ATOL = 1e-5, 1e-6
ALPHA = [0.1, 0.2, 0.3, 0.4]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _logits(seed=0, shape=(N, C), scale=2.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype("float32")


def _ids(seed=1):
    return np.random.default_rng(seed).permutation(np.arange(N) % C).astype("int64")


def _soft(ids):
    soft = np.random.default_rng(7).dirichlet(np.ones(C), size=len(ids))
    return (0.5 * np.eye(C)[ids] + 0.5 * soft).astype("float32")


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _softmax(z):
    return np.exp(np_log_softmax(z)).astype("float32")


def oracle_focal(targets, y_pred, gamma, alpha=None, label_smoothing=0.0,
                 from_logits=True):
    """-sum_c alpha_c t_c (1 - p_c)^gamma log p_c in float64 (Lin et al., eq. 5)."""
    targets = np.asarray(targets, np.float64)
    targets = targets * (1 - label_smoothing) + label_smoothing / targets.shape[-1]
    if from_logits:
        logp = np_log_softmax(y_pred)
    else:  # Keras' convention for probabilities: renormalise, clip at 1e-7.
        p = np.asarray(y_pred, np.float64)
        logp = np.log(np.clip(p / p.sum(-1, keepdims=True), 1e-7, 1 - 1e-7))
    weight = 1.0 if alpha is None else np.asarray(alpha, np.float64)
    return -(weight * targets * (1 - np.exp(logp)) ** gamma * logp).sum(-1)


def oracle_torchvision_sigmoid_focal(targets, logits, alpha=0.25, gamma=2.0):
    """torchvision.ops.sigmoid_focal_loss(reduction="none"), ported to NumPy.

    p = sigmoid(x); ce = BCE-with-logits; p_t = p t + (1 - p)(1 - t);
    loss = ce (1 - p_t)^gamma; if alpha >= 0: loss *= alpha t + (1 - alpha)(1 - t).
    (`alpha=None` here is torchvision's negative alpha: no alpha term.)
    """
    x = np.asarray(logits, np.float64)
    t = np.asarray(targets, np.float64)
    p = 1.0 / (1.0 + np.exp(-x))
    ce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        alpha = np.asarray(alpha, np.float64)
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


# --- FocalCrossentropy ----------------------------------------------------------


@pytest.mark.parametrize("from_logits", [True, False])
def test_focal_matches_float64_oracle(from_logits):
    ids, logits = _ids(), _logits()
    y_pred = logits if from_logits else _softmax(logits)
    labels = {"ids": ids, "ids_col": ids[:, None], "onehot": np.eye(C)[ids],
              "soft": _soft(ids)}
    for form, y in labels.items():
        dense = np.eye(C)[ids] if form.startswith("ids") else y
        for gamma, alpha, smoothing in [(2.0, None, 0.0), (0.5, 0.25, 0.0),
                                        (3.5, ALPHA, 0.1), (1.0, ALPHA, 0.0)]:
            got = focal_crossentropy(y, y_pred, gamma=gamma, alpha=alpha,
                                     from_logits=from_logits,
                                     label_smoothing=smoothing)
            want = oracle_focal(dense, y_pred, gamma, alpha, smoothing, from_logits)
            np.testing.assert_allclose(_np(got), want, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{form} {gamma} {alpha} {smoothing}")


def test_focal_gamma_0_without_alpha_is_exactly_cross_entropy():
    ids, logits = _ids(), _logits()
    for y in (ids, np.eye(C, dtype="float32")[ids], _soft(ids)):
        focal = focal_crossentropy(y, logits, gamma=0.0, from_logits=True)
        ce = weighted_categorical_crossentropy(y, logits, from_logits=True)
        np.testing.assert_array_equal(_np(focal), _np(ce))
        keras_ce = keras.losses.categorical_crossentropy(
            np.eye(C)[ids] if y.ndim == 1 else y, logits, from_logits=True)
        np.testing.assert_allclose(_np(focal), _np(keras_ce), rtol=RTOL)


def test_focal_agrees_with_keras_categorical_focal():
    # Same definition: alpha * y * (1 - p)^gamma * -log p summed over classes.
    # Keras clips softmax probabilities to [1e-7, 1 - 1e-7]: these logits keep
    # every probability inside, so the two agree there from logits too.
    ids, logits = _ids(), _logits(scale=1.5)
    cases = [(y, alpha, gamma, from_logits)
             for y in (np.eye(C, dtype="float32")[ids], _soft(ids))
             for alpha, gamma in [(0.25, 2.0), (ALPHA, 1.5)]
             for from_logits in (True, False)]
    for y, alpha, gamma, from_logits in cases:
        y_pred = logits if from_logits else _softmax(logits)
        keras_loss = keras.losses.CategoricalFocalCrossentropy(
            alpha=alpha, gamma=gamma, from_logits=from_logits,
            label_smoothing=0.1, reduction=None)
        ours = FocalCrossentropy(alpha=alpha, gamma=gamma, from_logits=from_logits,
                                 label_smoothing=0.1, reduction=None)
        np.testing.assert_allclose(_np(ours(y, y_pred)),
                                   _np(keras_loss(y, y_pred)), rtol=1e-5,
                                   atol=1e-6)


def test_focal_ignore_class_mean_over_kept_samples():
    ids, logits = _ids(), _logits()
    keep = ids != 3
    per_sample = oracle_focal(np.eye(C)[ids], logits, 2.0, ALPHA)
    loss = FocalCrossentropy(alpha=ALPHA, from_logits=True, ignore_class=3)
    np.testing.assert_allclose(float(_np(loss(ids, logits))),
                               per_sample[keep].mean(), rtol=RTOL)
    values = focal_crossentropy(ids, logits, alpha=ALPHA, from_logits=True,
                                ignore_class=3)
    np.testing.assert_allclose(_np(values), np.where(keep, per_sample, 0.0),
                               rtol=RTOL, atol=ATOL)


def test_focal_negative_gamma():
    with pytest.raises(ValueError, match=r"argument `gamma`.*>= 0.0 and <= 10000.0. "
                       r"Received: gamma=-0.5"):
        FocalCrossentropy(gamma=-0.5)


def test_focal_negative_alpha():
    with pytest.raises(ValueError, match=r"argument `alpha`.*>= 0.*"
                       r"Received: alpha=\[0.5, -0.5\]"):
        FocalCrossentropy(alpha=[0.5, -0.5])


def test_focal_alpha_length_checked_against_y_pred():
    loss = FocalCrossentropy(alpha=[0.5, 0.5], from_logits=True)
    with pytest.raises(ValueError, match=r"argument `alpha`.*4 values \(one per "
                       r"class.*Received: alpha=\[0.5, 0.5\]"):
        loss(_ids(), _logits())


def test_focal_label_smoothing_out_of_range():
    with pytest.raises(ValueError, match=r"argument `label_smoothing`.*"
                       r"Received: label_smoothing=-0.1"):
        focal_crossentropy(_ids(), _logits(), label_smoothing=-0.1)


def test_focal_labels_of_wrong_rank():
    with pytest.raises(ValueError, match=r"argument `y_true`.*rank 1 class ids or "
                       r"rank 2"):
        FocalCrossentropy(from_logits=True)(np.zeros((N, C, 2)), _logits())


# --- SigmoidFocalCrossentropy -------------------------------------------------


def _multi_hot(seed=2, shape=(N, L)):
    return (np.random.default_rng(seed).random(shape) < 0.3).astype("float32")


def _sigmoid(z):
    return (1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))).astype("float32")


def test_sigmoid_focal_matches_torchvision_elementwise():
    y, logits = _multi_hot(), _logits(shape=(N, L), scale=3.0)
    soft = np.random.default_rng(4).random((N, L)).astype("float32")
    for targets in (y, soft):
        for alpha, gamma in [(0.25, 2.0), (None, 2.0), (0.6, 0.5), (0.25, 0.0),
                             ([0.1, 0.5, 0.9], 3.0)]:
            want = oracle_torchvision_sigmoid_focal(targets, logits, alpha, gamma)
            got = sigmoid_focal_crossentropy(targets, logits, alpha=alpha,
                                             gamma=gamma, from_logits=True)
            np.testing.assert_allclose(_np(got), want.mean(-1), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{alpha} {gamma}")
            weight = alpha[0] if isinstance(alpha, list) else alpha
            column = sigmoid_focal_crossentropy(targets[:, 0], logits[:, 0],
                                                alpha=weight, gamma=gamma,
                                                from_logits=True)
            np.testing.assert_allclose(_np(column), want[:, 0], rtol=RTOL, atol=ATOL)
    loss = SigmoidFocalCrossentropy(from_logits=True)
    np.testing.assert_allclose(float(_np(loss(y, logits))),
                               oracle_torchvision_sigmoid_focal(y, logits).mean(),
                               rtol=RTOL)


def test_sigmoid_focal_agrees_with_keras_binary_focal():
    # Keras' apply_class_balancing=True is torchvision's alpha_t, False is
    # alpha=None; Keras clips probabilities at 1e-7, these logits stay inside.
    y, logits = _multi_hot(), _logits(shape=(N, L), scale=3.0)
    cases = [(alpha, balancing, from_logits)
             for alpha, balancing in [(0.25, True), (0.7, True), (None, False)]
             for from_logits in (True, False)]
    for alpha, balancing, from_logits in cases:
        y_pred = logits if from_logits else _sigmoid(logits)
        keras_loss = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=balancing, alpha=alpha or 0.25, gamma=2.0,
            from_logits=from_logits, reduction=None)
        ours = SigmoidFocalCrossentropy(alpha=alpha, gamma=2.0,
                                        from_logits=from_logits, reduction=None)
        np.testing.assert_allclose(_np(ours(y, y_pred)), _np(keras_loss(y, y_pred)),
                                   rtol=1e-5, atol=1e-6)


def test_sigmoid_focal_alpha_above_one():
    with pytest.raises(ValueError, match=r"argument `alpha`.*<= 1.0.*"
                       r"Received: alpha=1.5"):
        SigmoidFocalCrossentropy(alpha=1.5)


def test_sigmoid_focal_alpha_list_above_one():
    with pytest.raises(ValueError, match=r"argument `alpha`.*values in \[0, 1(\.0)?\].*"
                       r"Received: alpha=\[0.5, 2.0\]"):
        SigmoidFocalCrossentropy(alpha=[0.5, 2.0])


def test_sigmoid_focal_negative_gamma():
    with pytest.raises(ValueError, match=r"argument `gamma`.*Received: gamma=-1"):
        sigmoid_focal_crossentropy(_multi_hot(), _logits(shape=(N, L)), gamma=-1)


def test_sigmoid_focal_alpha_length_checked_against_y_pred():
    loss = SigmoidFocalCrossentropy(alpha=[0.5, 0.5], from_logits=True)
    with pytest.raises(ValueError, match=r"argument `alpha`.*3 values \(one per "
                       r"label"):
        loss(_multi_hot(), _logits(shape=(N, L)))


def test_sigmoid_focal_labels_of_wrong_shape():
    with pytest.raises(ValueError, match=r"argument `y_true`.*\(8, 3\).*"
                       r"Received: y_true='<tensor of shape \(8, 3, 1, 1\)>'"):
        sigmoid_focal_crossentropy(np.zeros((N, L, 1, 1)), _logits(shape=(N, L)))
