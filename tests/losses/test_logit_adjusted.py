"""LogitAdjustedCrossentropy: float64 oracle, tau=0 / tau=1 properties, errors."""

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.losses import (
    LogitAdjustedCrossentropy,
    logit_adjusted_crossentropy,
    weighted_categorical_crossentropy,
)

N, C = 8, 4
RTOL, ATOL = 1e-5, 1e-6
COUNTS = [500, 120, 30, 6]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _logits(seed=0):
    return (np.random.default_rng(seed).normal(size=(N, C)) * 2.0).astype("float32")


def _ids(seed=1):
    return np.random.default_rng(seed).permutation(np.arange(N) % C).astype("int64")


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def oracle_logit_adjusted(targets, logits, counts, tau):
    """Menon et al. eq. (10): -log softmax(z + tau log pi)_y, pi = n / sum(n)."""
    priors = np.asarray(counts, np.float64) / np.sum(counts)
    logp = np_log_softmax(np.asarray(logits, np.float64) + tau * np.log(priors))
    return -(np.asarray(targets, np.float64) * logp).sum(-1)


def test_logit_adjusted_matches_float64_oracle():
    ids, logits = _ids(), _logits()
    probs = np.exp(np_log_softmax(logits)).astype("float32")
    cases = [(y, tau, from_logits)
             for y in (ids, ids[:, None], np.eye(C, dtype="float32")[ids])
             for tau in (0.5, 1.0, 2.0) for from_logits in (True, False)]
    for y, tau, from_logits in cases:
        y_pred = logits if from_logits else probs
        got = logit_adjusted_crossentropy(y, y_pred, class_priors=COUNTS, tau=tau,
                                          from_logits=from_logits)
        # log of softmax probabilities = logits up to a per-row constant,
        # which the softmax ignores: the same oracle serves both paths.
        want = oracle_logit_adjusted(np.eye(C)[ids], logits, COUNTS, tau)
        np.testing.assert_allclose(_np(got), want, rtol=RTOL, atol=ATOL)


def test_tau_0_is_cross_entropy():
    ids, logits = _ids(), _logits()
    adjusted = LogitAdjustedCrossentropy(class_priors=COUNTS, tau=0.0, reduction=None)
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                          reduction=None)
    np.testing.assert_allclose(_np(adjusted(ids, logits)), _np(keras_ce(ids, logits)),
                               rtol=RTOL, atol=ATOL)


def test_tau_1_is_cross_entropy_on_logits_plus_log_counts():
    # Balanced Softmax (Ren et al.): softmax of z + log n_c; counts need no
    # normalisation since a constant shift leaves the softmax unchanged.
    ids, logits = _ids(), _logits()
    shifted = (logits.astype(np.float64) + np.log(COUNTS)).astype("float32")
    balanced = logit_adjusted_crossentropy(ids, logits, class_priors=COUNTS, tau=1.0)
    plain = weighted_categorical_crossentropy(ids, shifted, from_logits=True)
    np.testing.assert_allclose(_np(balanced), _np(plain), rtol=RTOL, atol=ATOL)


def test_counts_and_priors_give_the_same_loss():
    ids, logits = _ids(), _logits()
    priors = np.asarray(COUNTS) / np.sum(COUNTS)
    from_counts = LogitAdjustedCrossentropy(class_priors=COUNTS, tau=1.5)
    from_priors = LogitAdjustedCrossentropy(class_priors=priors.tolist(), tau=1.5)
    np.testing.assert_allclose(float(_np(from_counts(ids, logits))),
                               float(_np(from_priors(ids, logits))), rtol=RTOL)
    assert from_counts.get_config()["class_priors"] == [float(n) for n in COUNTS]


@pytest.mark.parametrize(("priors", "expected"), [
    ([10, 0, 5, 1], "values > 0"),
    ([10, -2, 5, 1], "values > 0"),
    ([10, float("nan"), 5, 1], "finite values"),
])
def test_bad_class_priors(priors, expected):
    with pytest.raises(ValueError, match=rf"argument `class_priors`. Expected "
                       rf"{expected}.*Received: class_priors="):
        LogitAdjustedCrossentropy(class_priors=priors)


def test_class_priors_length_checked_against_y_pred():
    loss = LogitAdjustedCrossentropy(class_priors=[3, 2, 1])
    with pytest.raises(ValueError, match=r"argument `class_priors`.*4 values \(one "
                       r"per class.*Received: class_priors=\[3.0, 2.0, 1.0\]"):
        loss(_ids(), _logits())


def test_negative_tau():
    with pytest.raises(ValueError, match=r"argument `tau`. Expected a finite float "
                       r">= 0.0 and <= 10000.0. Received: tau=-1.0"):
        LogitAdjustedCrossentropy(class_priors=COUNTS, tau=-1.0)
