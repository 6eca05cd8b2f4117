"""Property tests of the losses (Hypothesis; small budgets, every backend).

The guarantees issue #10 asks to hold for random sizes, class counts and
seeds: focal with gamma=0 is cross-entropy; all-ones class weights are
cross-entropy; permuting the classes together with their weights, priors or
counts changes no loss value; values and gradients stay finite at logits of
+-1e4 for every loss.
"""

import keras
import numpy as np
from autodiff_helper import value_and_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from kimbalance.losses import (
    asymmetric_loss,
    cdt_loss,
    distribution_balanced_loss,
    focal_crossentropy,
    ldam_loss,
    logit_adjusted_crossentropy,
    sigmoid_focal_crossentropy,
    weighted_binary_crossentropy,
    weighted_categorical_crossentropy,
)

# Few distinct shapes: jax compiles every eager op once per shape, so shapes
# drawn from a wide range would spend the budget compiling; the data (labels,
# logits, counts, weights, permutations) varies with the seed.
sizes = st.sampled_from([1, 6])
class_counts = st.sampled_from([2, 5])
seeds = st.integers(0, 2**16)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _problem(n, c, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, c)) * scale).astype("float32")
    ids = rng.integers(0, c, size=n)
    multi_hot = (rng.random((n, c)) < 0.4).astype("float32")
    counts = rng.integers(1, 1000, size=c)
    weights = rng.uniform(0.1, 5.0, size=c)
    return rng, logits, ids, multi_hot, counts, weights


@given(sizes, class_counts, seeds, st.booleans())
def test_focal_with_gamma_0_is_crossentropy(n, c, seed, one_hot):
    _, logits, ids, multi_hot, _, _ = _problem(n, c, seed)
    labels = np.eye(c, dtype="float32")[ids] if one_hot else ids
    focal = _np(focal_crossentropy(labels, logits, gamma=0.0, from_logits=True))
    keras_ce = _np(keras.losses.sparse_categorical_crossentropy(ids, logits,
                                                                from_logits=True))
    np.testing.assert_allclose(focal, keras_ce, rtol=1e-5, atol=1e-6)
    sigmoid = _np(sigmoid_focal_crossentropy(multi_hot, logits, gamma=0.0,
                                             alpha=None, from_logits=True))
    keras_bce = _np(keras.losses.binary_crossentropy(multi_hot, logits,
                                                     from_logits=True))
    np.testing.assert_allclose(sigmoid, keras_bce, rtol=1e-5, atol=1e-6)


@given(sizes, class_counts, seeds)
def test_all_ones_class_weights_are_crossentropy(n, c, seed):
    _, logits, ids, multi_hot, counts, _ = _problem(n, c, seed)
    ones = [1.0] * c
    keras_ce = _np(keras.losses.sparse_categorical_crossentropy(ids, logits,
                                                                from_logits=True))
    weighted = weighted_categorical_crossentropy(ids, logits, class_weight=ones,
                                                 from_logits=True)
    np.testing.assert_allclose(_np(weighted), keras_ce, rtol=1e-5, atol=1e-6)
    focal = focal_crossentropy(ids, logits, gamma=0.0, alpha=ones, from_logits=True)
    np.testing.assert_allclose(_np(focal), keras_ce, rtol=1e-5, atol=1e-6)
    cosines = np.tanh(logits)
    np.testing.assert_allclose(
        _np(ldam_loss(ids, cosines, class_counts=counts, class_weight=ones)),
        _np(ldam_loss(ids, cosines, class_counts=counts)), rtol=1e-6)
    keras_bce = _np(keras.losses.binary_crossentropy(multi_hot, logits,
                                                     from_logits=True))
    bce = weighted_binary_crossentropy(multi_hot, logits, pos_weight=ones,
                                       neg_weight=ones, from_logits=True)
    np.testing.assert_allclose(_np(bce), keras_bce, rtol=1e-5, atol=1e-6)


def _permuted_pairs(logits, ids, multi_hot, counts, weights, perm):
    """(name, value on the original classes, value on the permuted ones)."""
    inverse = np.argsort(perm)
    z, p_z = logits, logits[:, perm]
    y, p_y = ids, inverse[ids]
    m, p_m = multi_hot, multi_hot[:, perm]
    n, p_n = counts, counts[perm]
    w, p_w = weights.tolist(), weights[perm].tolist()
    cos, p_cos = np.tanh(z), np.tanh(p_z)
    yield ("wcce", weighted_categorical_crossentropy(y, z, class_weight=w,
                                                     from_logits=True),
           weighted_categorical_crossentropy(p_y, p_z, class_weight=p_w,
                                             from_logits=True))
    yield ("focal", focal_crossentropy(y, z, gamma=1.5, alpha=w, from_logits=True),
           focal_crossentropy(p_y, p_z, gamma=1.5, alpha=p_w, from_logits=True))
    yield ("logit_adjusted", logit_adjusted_crossentropy(y, z, class_priors=n),
           logit_adjusted_crossentropy(p_y, p_z, class_priors=p_n))
    yield ("ldam", ldam_loss(y, cos, class_counts=n, class_weight=w),
           ldam_loss(p_y, p_cos, class_counts=p_n, class_weight=p_w))
    yield ("cdt", cdt_loss(y, z, class_counts=n, gamma=0.3),
           cdt_loss(p_y, p_z, class_counts=p_n, gamma=0.3))
    yield ("wbce", weighted_binary_crossentropy(m, z, pos_weight=w, from_logits=True),
           weighted_binary_crossentropy(p_m, p_z, pos_weight=p_w, from_logits=True))
    yield ("sigmoid_focal", sigmoid_focal_crossentropy(
        m, z, alpha=(weights / weights.max()).tolist(), from_logits=True),
        sigmoid_focal_crossentropy(p_m, p_z, alpha=(weights[perm] / weights.max())
                                   .tolist(), from_logits=True))
    yield ("asl", asymmetric_loss(m, z), asymmetric_loss(p_m, p_z))
    total = int(counts.max()) + 1
    yield ("db", distribution_balanced_loss(m, z, label_counts=n, num_samples=total),
           distribution_balanced_loss(p_m, p_z, label_counts=p_n, num_samples=total))


@settings(max_examples=10)
@given(sizes, class_counts, seeds)
def test_permuting_classes_with_their_parameters_changes_nothing(n, c, seed):
    rng, logits, ids, multi_hot, counts, weights = _problem(n, c, seed)
    perm = rng.permutation(c)
    for name, value, permuted in _permuted_pairs(logits, ids, multi_hot, counts,
                                                 weights, perm):
        np.testing.assert_allclose(_np(permuted), _np(value), rtol=2e-5, atol=1e-5,
                                   err_msg=name)


def _every_loss(ids, multi_hot, counts):
    total = int(counts.max()) + 1
    return {
        "wcce": (ids, lambda y, z: weighted_categorical_crossentropy(
            y, z, class_weight=np.linspace(0.5, 2, len(counts)).tolist(),
            from_logits=True, label_smoothing=0.1)),
        "focal": (ids, lambda y, z: focal_crossentropy(y, z, gamma=2.0,
                                                       from_logits=True)),
        "focal_half": (ids, lambda y, z: focal_crossentropy(y, z, gamma=0.5,
                                                            from_logits=True)),
        "logit_adjusted": (ids, lambda y, z: logit_adjusted_crossentropy(
            y, z, class_priors=counts)),
        "ldam": (ids, lambda y, z: ldam_loss(y, z, class_counts=counts)),
        "cdt": (ids, lambda y, z: cdt_loss(y, z, class_counts=counts)),
        "wbce": (multi_hot, lambda y, z: weighted_binary_crossentropy(
            y, z, pos_weight=3.0, from_logits=True)),
        "sigmoid_focal": (multi_hot, lambda y, z: sigmoid_focal_crossentropy(
            y, z, gamma=0.5, from_logits=True)),
        "asl": (multi_hot, lambda y, z: asymmetric_loss(y, z)),
        "asl_no_clip": (multi_hot, lambda y, z: asymmetric_loss(
            y, z, clip=0.0, gamma_pos=0.5, stop_gradient_focusing=False)),
        "db": (multi_hot, lambda y, z: distribution_balanced_loss(
            y, z, label_counts=counts, num_samples=total)),
    }


@settings(max_examples=6)
@given(class_counts, seeds)
def test_values_and_gradients_are_finite_at_logits_of_1e4(c, seed):
    n = 6  # One batch size: each shape costs jax a compile of every gradient op.
    rng, _, ids, multi_hot, counts, _ = _problem(n, c, seed)
    logits = (rng.choice([-1e4, 0.0, 1e4], size=(n, c))
              + rng.normal(size=(n, c))).astype("float32")
    for name, (labels, loss) in _every_loss(ids, multi_hot, counts).items():
        values, grad = value_and_grad(lambda z, y=labels, f=loss: f(y, z), logits)
        assert np.all(np.isfinite(values)), name
        assert np.all(np.isfinite(grad)), name
