"""Fused losses (closed-form gradients) against their plain autodiff forms.

Every fused loss must give the value AND the gradient of its autodiff
reference (tests/losses/autodiff_reference.py) for one-hot, soft, multi-hot
and class-id labels, label smoothing, ignore_class, sample_weight and every
reduction; stay finite at logits of +-1e4; work under mixed precision and
inside a compiled train step. A custom gradient that silently yields NaN
(torch, when a forward does not return `(value, grad_fn)`) fails these.
"""

import autodiff_reference as ref
import keras
import numpy as np
import pytest
from autodiff_helper import value_and_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from kimbalance.losses import (
    CDTLoss,
    FocalCrossentropy,
    LDAMLoss,
    SigmoidFocalCrossentropy,
    WeightedBinaryCrossentropy,
    WeightedCategoricalCrossentropy,
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
from kimbalance.losses._fused import fused_call

BACKEND = keras.backend.backend()
# One shape for every test (jax compiles each eager op once per shape).
N, C = 8, 5
RTOL, ATOL = 1e-5, 1e-6
COUNTS = [500, 200, 60, 20, 5]


def _problem(seed, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(N, C)) * scale).astype("float32")
    ids = rng.integers(0, C, size=N)
    soft = rng.dirichlet(np.ones(C), size=N).astype("float32")
    multi_hot = (rng.random((N, C)) < 0.4).astype("float32")
    return rng, logits, ids, soft, multi_hot


def _one_hot(ids, smoothing=0.0, ignore_class=None):
    targets = np.eye(C, dtype=np.float32)[np.where(ids == ignore_class, 0, ids)]
    targets = targets * (1.0 - smoothing) + smoothing / C
    if ignore_class is not None:
        targets = targets * (ids != ignore_class)[:, None]
    return targets.astype("float32")


def _tensor(x):
    return ops.convert_to_tensor(x)


def _assert_same(fused, reference, logits):
    value, grad = value_and_grad(fused, logits)
    want_value, want_grad = value_and_grad(reference, logits)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, want_value, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, want_grad, rtol=RTOL, atol=ATOL)


def test_fused_call_passes_labels_and_gives_the_closed_form_gradient():
    # The plumbing alone: int labels go in positionally (gradient None), a
    # closed-over constant scales the result; torch must not return NaN.
    labels = _tensor(np.array([0, 2, 1], dtype="int32"))
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 1.0]],
                      dtype="float32")

    def loss(z):
        def forward(labels, z):
            slope = 3.0 * ops.one_hot(labels, 3, dtype="float32")
            value = ops.sum(slope * z, axis=-1)
            return value, lambda up: (None, slope * ops.expand_dims(up, -1))

        return fused_call(forward, labels, z)

    value, grad = value_and_grad(loss, logits)
    np.testing.assert_allclose(value, [3.0, 6.0, 0.0])
    np.testing.assert_allclose(grad, 3.0 * np.eye(3)[[0, 2, 1]])


_FOCAL_CASES = {
    "one_hot": dict(labels="one_hot"),
    "soft": dict(labels="soft"),
    "ids_smoothing": dict(labels="ids", label_smoothing=0.1),
    "ids_smoothing_ignore": dict(labels="ids", label_smoothing=0.2, ignore_class=3),
    "one_hot_alpha": dict(labels="one_hot", alpha=0.25),
    "soft_class_alpha": dict(labels="soft", alpha=[0.1, 0.2, 0.3, 0.4, 0.0]),
}


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 0.5, 2.5])
@pytest.mark.parametrize("case", sorted(_FOCAL_CASES))
def test_focal_matches_autodiff(case, gamma):
    kwargs = dict(_FOCAL_CASES[case])
    form = kwargs.pop("labels")
    _, logits, ids, soft, _ = _problem(1)
    smoothing = kwargs.get("label_smoothing", 0.0)
    if form == "ids":
        labels = ids
        targets = _one_hot(ids, smoothing, kwargs.get("ignore_class"))
    else:
        labels = _one_hot(ids) if form == "one_hot" else soft
        targets = labels * (1.0 - smoothing) + smoothing / C
    alpha = kwargs.get("alpha")
    scale = alpha if isinstance(alpha, float) else 1.0
    if isinstance(alpha, list):
        targets = targets * np.asarray(alpha, dtype=np.float32)
    y, t = _tensor(labels), _tensor(targets.astype("float32"))
    _assert_same(
        lambda z: focal_crossentropy(y, z, gamma=gamma, from_logits=True, **kwargs),
        lambda z: ref.softmax_focal(t, z, gamma, scale), logits)


@settings(max_examples=8)
@given(st.integers(0, 2**16), st.sampled_from([0.25, 0.7, 2.0, 3.5]))
def test_focal_matches_autodiff_for_random_problems(seed, gamma):
    _, logits, _, soft, _ = _problem(seed, scale=10.0)
    t = _tensor(soft)
    _assert_same(
        lambda z: focal_crossentropy(t, z, gamma=gamma, from_logits=True),
        lambda z: ref.softmax_focal(t, z, gamma), logits)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 0.5])
@pytest.mark.parametrize("alpha", [None, 0.25, "per_label"])
@pytest.mark.parametrize("form", ["multi_hot", "soft", "rank1"])
def test_sigmoid_focal_matches_autodiff(form, alpha, gamma):
    rng, logits, _, _, multi_hot = _problem(2)
    labels = multi_hot if form != "soft" else rng.random((N, C)).astype("float32")
    if form == "rank1":
        labels, logits = labels[:, 0], logits[:, 0]
    if alpha == "per_label":
        alpha = None if form == "rank1" else [0.1, 0.3, 0.5, 0.7, 0.9]
    alpha_t = (None if alpha is None else alpha if isinstance(alpha, float)
               else _tensor(np.asarray(alpha, dtype="float32")))
    t = _tensor(labels)
    _assert_same(
        lambda z: sigmoid_focal_crossentropy(t, z, gamma=gamma, alpha=alpha,
                                             from_logits=True),
        lambda z: ref.sigmoid_focal(t, z, gamma, alpha_t), logits)


@pytest.mark.parametrize("weights", [
    (None, None), (3.0, None), (None, 0.5),
    ([1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 0.5, 1.0, 1.0, 2.0])])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_weighted_bce_matches_autodiff(weights, smoothing):
    rng, logits, _, _, multi_hot = _problem(3)
    pos, neg = weights
    t = _tensor(multi_hot * (1.0 - smoothing) + 0.5 * smoothing)

    def vec(w):
        return w if w is None or isinstance(w, float) else _tensor(
            np.asarray(w, dtype="float32"))

    y = _tensor(multi_hot)
    _assert_same(
        lambda z: weighted_binary_crossentropy(
            y, z, pos_weight=pos, neg_weight=neg, label_smoothing=smoothing,
            from_logits=True),
        lambda z: ref.binary_crossentropy(t, z, vec(pos), vec(neg)), logits)


@pytest.mark.parametrize("form", ["one_hot", "soft", "ids_smoothing"])
@pytest.mark.parametrize("class_weight", [None, [1.0, 2.0, 0.5, 4.0, 0.0]])
def test_weighted_crossentropy_matches_autodiff(form, class_weight):
    _, logits, ids, soft, _ = _problem(4)
    smoothing = 0.1 if form == "ids_smoothing" else 0.0
    labels = {"one_hot": _one_hot(ids), "soft": soft, "ids_smoothing": ids}[form]
    targets = _one_hot(ids, smoothing) if form != "soft" else soft
    if class_weight is not None:
        targets = targets * np.asarray(class_weight, dtype=np.float32)
    y, t = _tensor(labels), _tensor(targets)
    _assert_same(
        lambda z: weighted_categorical_crossentropy(
            y, z, class_weight=class_weight, label_smoothing=smoothing,
            from_logits=True),
        lambda z: ref.softmax_crossentropy(t, z), logits)


@pytest.mark.parametrize("form", ["one_hot", "soft"])
def test_logit_adjusted_matches_autodiff(form):
    _, logits, ids, soft, _ = _problem(5)
    t = _tensor(_one_hot(ids) if form == "one_hot" else soft)
    priors = np.asarray(COUNTS, dtype=np.float64) / np.sum(COUNTS)
    shift = _tensor((0.7 * np.log(priors)).astype("float32"))
    _assert_same(
        lambda z: logit_adjusted_crossentropy(t, z, class_priors=COUNTS, tau=0.7),
        lambda z: ref.softmax_crossentropy(t, z + shift), logits)


@pytest.mark.parametrize("form", ["ids", "one_hot", "soft"])
@pytest.mark.parametrize("class_weight", [None, [1.0, 2.0, 0.5, 4.0, 0.0]])
def test_ldam_matches_autodiff(form, class_weight):
    _, logits, ids, soft, _ = _problem(6, scale=0.3)
    labels = {"ids": ids, "one_hot": _one_hot(ids), "soft": soft}[form]
    t = _tensor(soft if form == "soft" else _one_hot(ids))
    y = _tensor(labels)
    _assert_same(
        lambda z: ldam_loss(y, z, class_counts=COUNTS, max_margin=0.4, scale=20.0,
                            class_weight=class_weight),
        lambda z: ref.ldam(t, z, COUNTS, 0.4, 20.0, class_weight), logits)


@pytest.mark.parametrize("form", ["ids", "soft"])
def test_cdt_matches_autodiff(form):
    _, logits, ids, soft, _ = _problem(7)
    y = _tensor(ids if form == "ids" else soft)
    t = _tensor(_one_hot(ids) if form == "ids" else soft)
    _assert_same(lambda z: cdt_loss(y, z, class_counts=COUNTS, gamma=0.3),
                 lambda z: ref.cdt(t, z, COUNTS, 0.3), logits)


class _Reference(keras.losses.Loss):
    """A Keras loss around a reference function (Keras reduces it)."""

    def __init__(self, fn, reduction):
        super().__init__(reduction=reduction, name="reference")
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


@pytest.mark.parametrize("reduction",
                         ["sum", "sum_over_batch_size", "mean_with_sample_weight"])
def test_reductions_and_sample_weight_flow_through_the_fused_gradient(reduction):
    rng, logits, ids, soft, multi_hot = _problem(8)
    weights = _tensor(rng.uniform(0.0, 2.0, size=N).astype("float32"))
    one_hot = _tensor(_one_hot(ids))
    pairs = [
        (FocalCrossentropy(gamma=1.5, alpha=0.5, from_logits=True,
                           reduction=reduction), one_hot,
         lambda y, z: ref.softmax_focal(y, z, 1.5, 0.5)),
        (SigmoidFocalCrossentropy(gamma=2.0, from_logits=True, reduction=reduction),
         _tensor(multi_hot), lambda y, z: ref.sigmoid_focal(y, z, 2.0, 0.25)),
        (WeightedBinaryCrossentropy(pos_weight=2.0, from_logits=True,
                                    reduction=reduction), _tensor(multi_hot),
         lambda y, z: ref.binary_crossentropy(y, z, 2.0)),
        (WeightedCategoricalCrossentropy(from_logits=True, reduction=reduction),
         _tensor(soft), ref.softmax_crossentropy),
        (CDTLoss(COUNTS, gamma=0.3, reduction=reduction), one_hot,
         lambda y, z: ref.cdt(y, z, COUNTS, 0.3)),
        (LDAMLoss(COUNTS, reduction=reduction), one_hot,
         lambda y, z: ref.ldam(y, z, COUNTS, 0.5, 30.0)),
    ]
    for loss, labels, reference in pairs:
        plain = _Reference(reference, reduction)
        _assert_same(lambda z, f=loss, y=labels: f(y, z, sample_weight=weights),
                     lambda z, f=plain, y=labels: f(y, z, sample_weight=weights),
                     logits * 0.1 if isinstance(loss, LDAMLoss) else logits)


def test_ignore_class_mean_leaves_ignored_samples_out_of_the_gradient():
    _, logits, ids, _, _ = _problem(9)
    ids[:3] = 4
    loss = FocalCrossentropy(gamma=2.0, from_logits=True, label_smoothing=0.1,
                             ignore_class=4)
    targets = _tensor(_one_hot(ids, 0.1, ignore_class=4))
    kept = float(np.sum(ids != 4))
    y = _tensor(ids)
    _, grad = value_and_grad(lambda z: loss(y, z), logits)
    _, want = value_and_grad(
        lambda z: ref.softmax_focal(targets, z, 2.0) / kept, logits)
    np.testing.assert_allclose(grad * N, want * N, rtol=RTOL, atol=ATOL)
    assert np.all(grad[:3] == 0)


@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_fused_losses_are_finite_at_logits_of_1e4(gamma):
    rng, _, ids, soft, multi_hot = _problem(10)
    logits = (rng.choice([-1e4, 0.0, 1e4], size=(N, C))
              + rng.normal(size=(N, C))).astype("float32")
    one_hot, soft_t, multi = _tensor(_one_hot(ids)), _tensor(soft), _tensor(multi_hot)
    for fn in [
        lambda z: focal_crossentropy(one_hot, z, gamma=gamma, from_logits=True),
        lambda z: focal_crossentropy(soft_t, z, gamma=gamma, from_logits=True,
                                     label_smoothing=0.1),
        lambda z: sigmoid_focal_crossentropy(multi, z, gamma=gamma, from_logits=True),
        lambda z: weighted_binary_crossentropy(multi, z, pos_weight=3.0,
                                               from_logits=True),
        lambda z: weighted_categorical_crossentropy(soft_t, z, from_logits=True),
        lambda z: cdt_loss(one_hot, z, class_counts=COUNTS),
    ]:
        values, grad = value_and_grad(fn, logits)
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_logits_get_half_precision_gradients(dtype):
    _, logits, ids, _, multi_hot = _problem(11)
    one_hot, multi = _tensor(_one_hot(ids)), _tensor(multi_hot)
    half = ops.cast(_tensor(logits), dtype)
    exact = _tensor(ops.convert_to_numpy(ops.cast(half, "float32")))
    for fused, reference in [
        (lambda z: focal_crossentropy(one_hot, z, gamma=2.0, from_logits=True),
         lambda z: ref.softmax_focal(one_hot, z, 2.0)),
        (lambda z: sigmoid_focal_crossentropy(multi, z, gamma=0.5, from_logits=True),
         lambda z: ref.sigmoid_focal(multi, z, 0.5, 0.25)),
    ]:
        value, grad = _half_value_and_grad(fused, half)
        want_value, want_grad = value_and_grad(reference, exact)
        assert value.dtype == np.float32  # Losses compute in float32.
        np.testing.assert_allclose(value, want_value, rtol=1e-5, atol=1e-6)
        tolerance = 1e-2 if dtype == "bfloat16" else 1e-3
        np.testing.assert_allclose(grad, want_grad, rtol=tolerance, atol=tolerance)


def _half_value_and_grad(fn, half):
    """value (float32) and gradient (cast to float32 for comparison) at `half`."""
    if BACKEND == "torch":
        x = half.detach().requires_grad_(True)
        value = fn(x)
        value.sum().backward()
        assert x.grad.dtype == x.dtype
        return value.detach().cpu().numpy(), x.grad.float().cpu().numpy()
    if BACKEND == "jax":
        import jax

        value, vjp = jax.vjp(fn, half)
        (grad,) = vjp(jax.numpy.ones_like(value))
        assert grad.dtype == half.dtype
        return np.asarray(value), np.asarray(grad.astype("float32"))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(half)
        value = fn(half)
        total = tf.reduce_sum(value)
    grad = tape.gradient(total, half)
    assert grad.dtype == half.dtype
    return value.numpy(), tf.cast(grad, "float32").numpy()


_JIT = [False] if BACKEND == "torch" else [False, True]


@pytest.mark.parametrize("jit_compile", _JIT)
def test_compiled_train_step_uses_the_fused_gradient(jit_compile):
    # One SGD step of a linear model: the new kernel must be the old one minus
    # lr * x^T dL/dz with dL/dz from the autodiff reference.
    rng, _, ids, _, multi_hot = _problem(12)
    x = rng.normal(size=(N, 3)).astype("float32")
    cases = [
        (FocalCrossentropy(gamma=2.0, alpha=0.25, from_logits=True,
                           label_smoothing=0.1), _one_hot(ids),
         lambda y, z: ref.softmax_focal(y * 0.9 + 0.1 / C, z, 2.0, 0.25)),
        (SigmoidFocalCrossentropy(gamma=0.5, from_logits=True), multi_hot,
         lambda y, z: ref.sigmoid_focal(y, z, 0.5, 0.25)),
    ]
    for loss, labels, reference in cases:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(C)])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss,
                      jit_compile=jit_compile)
        kernel, bias = (ops.convert_to_numpy(w) for w in model.weights)
        logits = (x @ kernel + bias).astype("float32")
        y = _tensor(labels)
        _, dz = value_and_grad(lambda z, r=reference, y=y: r(y, z) / N, logits)
        model.train_on_batch(x, labels)
        new_kernel = ops.convert_to_numpy(model.weights[0])
        np.testing.assert_allclose(new_kernel, kernel - 0.5 * x.T @ dz,
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gammas", [(4.0, 1.0), (0.0, 0.0), (2.5, 0.5)])
@pytest.mark.parametrize("clip", [0.05, 0.0])
@pytest.mark.parametrize("form", ["multi_hot", "soft"])
def test_asymmetric_matches_autodiff(form, clip, gammas):
    rng, logits, _, _, multi_hot = _problem(13, scale=6.0)
    labels = multi_hot if form == "multi_hot" else rng.random((N, C)).astype(
        "float32")
    gamma_neg, gamma_pos = gammas
    t = _tensor(labels)
    _assert_same(
        lambda z: asymmetric_loss(t, z, gamma_neg=gamma_neg, gamma_pos=gamma_pos,
                                  clip=clip),
        lambda z: ref.asymmetric(t, z, gamma_neg, gamma_pos, clip, 1e-8), logits)


def test_asymmetric_is_finite_at_logits_of_1e4():
    rng, _, _, _, multi_hot = _problem(14)
    logits = (rng.choice([-1e4, 0.0, 1e4], size=(N, C))
              + rng.normal(size=(N, C))).astype("float32")
    t = _tensor(multi_hot)
    for clip in (0.05, 0.0):
        values, grad = value_and_grad(
            lambda z, c=clip: asymmetric_loss(t, z, clip=c, gamma_neg=2.5), logits)
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("focal_gamma", [2.0, 0.0, 0.5])
@pytest.mark.parametrize("neg_scale", [2.0, 1.0])
def test_distribution_balanced_matches_autodiff(neg_scale, focal_gamma):
    # rebalance=False: the weight is balance_param * (y + (1 - y) / neg_scale)
    # and the bias -log(N / n - 1) / neg_scale, as `_db_bias` builds them.
    _, logits, _, _, multi_hot = _problem(15)
    counts = np.asarray(COUNTS, dtype=np.float64)
    total = 1000
    bias = _tensor((-np.log(total / counts - 1.0) / neg_scale).astype("float32"))
    weight = _tensor((1.5 * (multi_hot + (1.0 - multi_hot) / neg_scale)).astype(
        "float32"))
    t = _tensor(multi_hot)
    _assert_same(
        lambda z: distribution_balanced_loss(
            t, z, label_counts=COUNTS, num_samples=total, rebalance=False,
            neg_scale=neg_scale, init_bias=1.0, focal_gamma=focal_gamma,
            balance_param=1.5),
        lambda z: ref.distribution_balanced(t, z, weight, bias, neg_scale,
                                            focal_gamma), logits)
