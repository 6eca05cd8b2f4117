"""LDAMLoss / CDTLoss: NumPy and torch oracles, properties, robustness, errors, fit."""

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.losses import CDTLoss, LDAMLoss, cdt_loss, ldam_loss
from kimbalance.weights import class_weights

BACKEND = keras.backend.backend()
COUNTS = [500, 120, 30, 6]
WEIGHTS = [0.25, 0.5, 1.0, 2.5]


def _data(n=12, num_classes=4, seed=0, low=-1.0, high=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=n)
    logits = rng.uniform(low, high, size=(n, num_classes)).astype(np.float32)
    return labels, logits


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def value_and_grad(fn, x):
    """(fn(x), d sum(fn(x)) / dx) as float64 NumPy, by the backend's autodiff."""
    x = np.asarray(x, np.float32)
    if BACKEND == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        value = fn(xt)
        value.sum().backward()
        return _np(value.detach()), xt.grad.numpy().astype(np.float64)
    if BACKEND == "jax":
        import jax

        def total(z):
            value = fn(z)
            return ops.sum(value), value

        # One jit trace instead of op-by-op dispatch (and proof it traces).
        (_, value), grad = jax.jit(jax.value_and_grad(total, has_aux=True))(x)
        return _np(value), _np(grad)
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = fn(xt)
        total = tf.reduce_sum(value)
    return _np(value), _np(tape.gradient(total, xt))


# Oracles ---------------------------------------------------------------------

def ldam_reference(labels, z, counts, max_m=0.5, s=30.0, weight=None):
    """float64 port of kaidic/LDAM-DRW `losses.py` LDAMLoss.forward, per sample.

    m = 1 / n ** (1/4) scaled to max max_m; the true-class logit loses m_y;
    cross-entropy of s * logits; `weight` as torch's per-class weight w_y.
    """
    m = 1.0 / np.sqrt(np.sqrt(np.asarray(counts, np.float64)))
    m = m * (max_m / np.max(m))
    rows = np.arange(len(labels))
    out = np.asarray(z, np.float64).copy()
    out[rows, labels] -= m[labels]
    loss = -_log_softmax(s * out)[rows, labels]
    if weight is not None:
        loss = loss * np.asarray(weight, np.float64)[labels]
    return loss


def ldam_torch(labels, z, counts, max_m=0.5, s=30.0, weight=None, reduction="none"):
    """The official torch formula (kaidic/LDAM-DRW `losses.py`) on CPU float64."""
    import torch

    x = torch.tensor(np.asarray(z, np.float64))
    target = torch.tensor(labels, dtype=torch.long)
    m_list = 1.0 / np.sqrt(np.sqrt(np.asarray(counts, np.float64)))
    m_list = torch.tensor(m_list * (max_m / np.max(m_list)))
    index = torch.zeros_like(x, dtype=torch.bool)
    index.scatter_(1, target.view(-1, 1), True)
    batch_m = torch.matmul(m_list[None, :], index.double().t()).view(-1, 1)
    output = torch.where(index, x - batch_m, x)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    return torch.nn.functional.cross_entropy(s * output, target, weight=w,
                                             reduction=reduction).numpy()


def cdt_reference(labels, z, counts, gamma=0.2):
    """float64 CDT (Ye et al. 2020): a_c = (n_max / n_c) ** gamma, CE(z / a)."""
    counts = np.asarray(counts, np.float64)
    a = (counts.max() / counts) ** gamma
    return -_log_softmax(np.asarray(z, np.float64) / a)[np.arange(len(labels)), labels]


# Values against the oracles ---------------------------------------------------

@pytest.mark.parametrize("max_margin,scale", [(0.5, 30.0), (0.3, 10.0)])
def test_ldam_matches_numpy_port_of_official(max_margin, scale):
    labels, z = _data()
    got = ldam_loss(labels, z, class_counts=COUNTS, max_margin=max_margin,
                    scale=scale)
    want = ldam_reference(labels, z, COUNTS, max_margin, scale)
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("torch")
def test_ldam_matches_torch_formula_per_sample_with_class_weight():
    labels, z = _data(seed=1)
    got = ldam_loss(labels, z, class_counts=COUNTS, class_weight=WEIGHTS)
    want = ldam_torch(labels, z, COUNTS, weight=WEIGHTS)
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        want, ldam_reference(labels, z, COUNTS, weight=WEIGHTS), rtol=1e-12)


@pytest.mark.usefixtures("torch")
def test_ldam_torch_weighted_mean_via_sample_weights():
    # The documented recipe for F.cross_entropy(weight=w)'s sum(w l) / sum(w).
    labels, z = _data(seed=2)
    loss = LDAMLoss(COUNTS, reduction="mean_with_sample_weight")
    got = loss(labels, z, sample_weight=np.asarray(WEIGHTS, np.float32)[labels])
    want = ldam_torch(labels, z, COUNTS, weight=WEIGHTS, reduction="mean")
    np.testing.assert_allclose(float(got), float(want), rtol=1e-5)


def test_ldam_class_weight_scheme_name_equals_explicit_weights():
    labels, z = _data(seed=3)
    named = ldam_loss(labels, z, class_counts=COUNTS, class_weight="effective_number")
    explicit = ldam_loss(labels, z, class_counts=COUNTS,
                         class_weight=class_weights(COUNTS, "effective_number"))
    np.testing.assert_allclose(_np(named), _np(explicit), rtol=1e-6)


def test_ldam_margin_of_rarest_class_is_max_margin():
    # One-hot z = 0 except the true class: the loss depends on its margin only.
    z = np.zeros((2, 4), np.float32)
    got = _np(ldam_loss([3, 0], z, class_counts=COUNTS, max_margin=0.4, scale=1.0))
    m0 = 0.4 * (COUNTS[0] / COUNTS[-1]) ** -0.25
    want = [np.log(3 + np.exp(-0.4)) + 0.4, np.log(3 + np.exp(-m0)) + m0]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_cdt_matches_numpy_formula():
    labels, z = _data(seed=4, low=-5.0, high=5.0)
    got = cdt_loss(labels, z, class_counts=COUNTS, gamma=0.3)
    np.testing.assert_allclose(_np(got), cdt_reference(labels, z, COUNTS, 0.3),
                               rtol=1e-5, atol=1e-5)


# Properties -------------------------------------------------------------------

def test_cdt_gamma_zero_is_cross_entropy():
    labels, z = _data(seed=5, low=-4.0, high=4.0)
    got = cdt_loss(labels, z, class_counts=COUNTS, gamma=0.0)
    ce = keras.losses.sparse_categorical_crossentropy(labels, z, from_logits=True)
    np.testing.assert_allclose(_np(got), _np(ce), rtol=1e-5, atol=1e-6)


def test_ldam_zero_margin_is_cross_entropy_of_scaled_logits():
    labels, z = _data(seed=6)
    got = ldam_loss(labels, z, class_counts=COUNTS, max_margin=0.0, scale=7.0)
    ce = keras.losses.sparse_categorical_crossentropy(labels, 7.0 * z,
                                                      from_logits=True)
    np.testing.assert_allclose(_np(got), _np(ce), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn,kwargs", [
    (ldam_loss, {"class_weight": WEIGHTS}),
    (cdt_loss, {"gamma": 0.5}),
], ids=["ldam", "cdt"])
def test_sparse_column_and_one_hot_labels_agree(fn, kwargs):
    labels, z = _data(seed=7)
    sparse = _np(fn(labels, z, class_counts=COUNTS, **kwargs))
    column = _np(fn(labels[:, None], z, class_counts=COUNTS, **kwargs))
    one_hot = _np(fn(np.eye(4, dtype=np.float32)[labels], z, class_counts=COUNTS,
                     **kwargs))
    np.testing.assert_allclose(column, sparse, rtol=1e-6)
    np.testing.assert_allclose(one_hot, sparse, rtol=1e-6)


def test_classes_wrapping_functions_agree_and_reduce_by_batch_mean():
    labels, z = _data(seed=8)
    ldam = LDAMLoss(COUNTS, max_margin=0.4, scale=20.0, class_weight=WEIGHTS)
    want = ldam_loss(labels, z, class_counts=COUNTS, max_margin=0.4, scale=20.0,
                     class_weight=WEIGHTS)
    np.testing.assert_allclose(float(ldam(labels, z)), _np(want).mean(), rtol=1e-6)
    cdt = CDTLoss(COUNTS, gamma=0.5)
    want = cdt_loss(labels, z, class_counts=COUNTS, gamma=0.5)
    np.testing.assert_allclose(float(cdt(labels, z)), _np(want).mean(), rtol=1e-6)


# Numerical robustness ---------------------------------------------------------

@pytest.mark.parametrize("fn,kwargs", [
    (ldam_loss, {"class_weight": WEIGHTS}),
    (cdt_loss, {"gamma": 0.5}),
], ids=["ldam", "cdt"])
def test_finite_value_and_gradient_for_huge_logits(fn, kwargs):
    labels = np.array([0, 1, 2, 3, 0, 3])
    z = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, 1e4, -1e4],
                  [1e4, 1e4, -1e4, 1e4], [-1e4, -1e4, -1e4, -1e4],
                  [-1e4, 1e4, 3.0, 0.0], [1e4, 0.0, 0.0, 1e4]], np.float32)
    value, grad = value_and_grad(
        lambda x: fn(labels, x, class_counts=COUNTS, **kwargs), z)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value[0] < 1e-3 and value[2] > 1e4


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_logits_compute_in_float32(dtype):
    labels, z = _data(seed=9)
    z_half = ops.cast(z, dtype)
    for fn in (ldam_loss, cdt_loss):
        got = fn(labels, z_half, class_counts=COUNTS)
        assert keras.backend.standardize_dtype(got.dtype) == "float32"
        assert np.all(np.isfinite(_np(got)))


def test_gradient_matches_torch_autograd(torch):
    labels, z = _data(seed=10)
    _, grad = value_and_grad(
        lambda x: ldam_loss(labels, x, class_counts=COUNTS, class_weight=WEIGHTS), z)
    x = torch.tensor(z.astype(np.float64), requires_grad=True)
    target = torch.tensor(labels)
    m = 1.0 / np.asarray(COUNTS, np.float64) ** 0.25
    m = torch.tensor(m * (0.5 / m.max()))
    shifted = x - torch.nn.functional.one_hot(target, 4) * m
    torch.nn.functional.cross_entropy(
        30.0 * shifted, target, weight=torch.tensor(WEIGHTS, dtype=torch.float64),
        reduction="sum").backward()
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-4, atol=1e-5)


# Errors -----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [LDAMLoss, CDTLoss])
@pytest.mark.parametrize("counts,message", [
    ([10, 0, 3], r"`class_counts`.*counts > 0.*Received: class_counts=\[10, 0, 3\]"),
    ([10, -2, 3], r"`class_counts`.*counts >.*Received: class_counts=\[10, -2, 3\]"),
    ([10, float("nan")], r"`class_counts`.*finite.*Received: class_counts=\[10, nan\]"),
    ([], r"`class_counts`.*non-empty"),
], ids=["zero", "negative", "nan", "empty"])
def test_bad_counts(cls, counts, message):
    with pytest.raises(ValueError, match=message):
        cls(counts)


def test_ldam_negative_max_margin():
    with pytest.raises(ValueError, match=r"`max_margin`.*Received: max_margin=-0.1"):
        LDAMLoss(COUNTS, max_margin=-0.1)


def test_ldam_zero_scale():
    with pytest.raises(ValueError, match=r"`scale`.*> 0.*Received: scale=0"):
        LDAMLoss(COUNTS, scale=0)


def test_ldam_class_weight_of_wrong_length():
    with pytest.raises(ValueError,
                       match=r"`class_weight`.*4 weights.*Received: class_weight="):
        LDAMLoss(COUNTS, class_weight=[1.0, 2.0])


def test_ldam_unknown_class_weight_scheme():
    with pytest.raises(ValueError, match=r"`class_weight`.*Received: class_weight="):
        LDAMLoss(COUNTS, class_weight="magic")


def test_cdt_negative_gamma():
    with pytest.raises(ValueError, match=r"`gamma`.*>= 0.*Received: gamma=-0.5"):
        CDTLoss(COUNTS, gamma=-0.5)


@pytest.mark.parametrize("fn", [ldam_loss, cdt_loss], ids=["ldam", "cdt"])
def test_labels_of_wrong_rank(fn):
    _, z = _data()
    with pytest.raises(ValueError, match=r"`y_true`.*Received: y_true="):
        fn(np.zeros((12, 4, 2)), z, class_counts=COUNTS)


@pytest.mark.parametrize("cls", [LDAMLoss, CDTLoss])
def test_counts_length_differs_from_number_of_classes(cls):
    labels, z = _data(num_classes=3)
    with pytest.raises(ValueError, match=r"`class_counts`.*one count per class of "
                       r"y_pred \(3 classes\); got 4"):
        cls(COUNTS)(labels, z[:, :3])


# Serialization, compile/fit, mixed precision ----------------------------------

@keras.saving.register_keras_serializable(package="kimbalance_tests")
class LongTailTestCosine(keras.layers.Layer):
    """Cosine classifier for the test (L2-normalised features and weights)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="glorot_uniform")

    def call(self, inputs):
        x = inputs * ops.rsqrt(ops.sum(ops.square(inputs), -1, keepdims=True) + 1e-4)
        w = ops.cast(self.kernel, x.dtype)
        w = w * ops.rsqrt(ops.sum(ops.square(w), 0, keepdims=True) + 1e-4)
        return ops.matmul(x, w)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.parametrize("loss", [
    LDAMLoss(COUNTS, max_margin=0.3, scale=16.0, class_weight="balanced",
             reduction="mean_with_sample_weight", name="my_ldam"),
    LDAMLoss(COUNTS, class_weight={0: 1.0, 1: 1.0, 2: 2.0, 3: 3.0}),
    CDTLoss(COUNTS, gamma=0.4, reduction="sum"),
], ids=["ldam_scheme", "ldam_dict", "cdt"])
def test_config_round_trip(loss):
    labels, z = _data(seed=11)
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(float(restored(labels, z)), float(loss(labels, z)),
                               rtol=1e-6)


def test_functions_are_serializable():
    for fn in (ldam_loss, cdt_loss):
        config = keras.saving.serialize_keras_object(fn)
        assert keras.saving.deserialize_keras_object(config) is fn


def _two_head_model(num_classes=4):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    cosine = LongTailTestCosine(num_classes, name="ldam")(hidden)
    logits = keras.layers.Dense(num_classes, name="cdt", dtype="float32")(hidden)
    return keras.Model(inputs, {"ldam": cosine, "cdt": logits})


def _fit_data(n=48, seed=12):
    rng = np.random.default_rng(seed)
    labels = rng.choice(4, size=n, p=[0.55, 0.25, 0.15, 0.05])
    x = rng.normal(size=(n, 6)).astype(np.float32) + labels[:, None]
    return x, labels


def _compile_and_fit(model, x, labels, sample_weight=None):
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={"ldam": LDAMLoss(COUNTS, class_weight=WEIGHTS),
              "cdt": CDTLoss(COUNTS, gamma=0.3)},
        jit_compile="auto",
    )
    # LDAM gets class ids, CDT one-hot labels.
    targets = {"ldam": labels, "cdt": np.eye(4, dtype=np.float32)[labels]}
    return model.fit(x, targets, batch_size=16, epochs=1, verbose=0,
                     sample_weight=sample_weight)


def test_fit_then_save_and_load(tmp_path):
    x, labels = _fit_data()
    model = _two_head_model()
    before = [w.copy() for w in model.get_weights()]
    history = _compile_and_fit(model, x, labels)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(),
                                                      strict=True))

    path = tmp_path / "long_tail.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(loaded(x[:8])["cdt"]), _np(model(x[:8])["cdt"]),
                               rtol=1e-6)
    for key, cls in (("ldam", LDAMLoss), ("cdt", CDTLoss)):
        restored = loaded.loss[key]
        assert isinstance(restored, cls)
        assert restored.get_config() == model.loss[key].get_config()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_fit_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    x, labels = _fit_data(n=32)
    model = _two_head_model()
    out = model(x[:4])
    assert keras.backend.standardize_dtype(out["ldam"].dtype) == policy[6:]
    loss = LDAMLoss(COUNTS)(labels[:4], out["ldam"])
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    history = _compile_and_fit(model, x, labels)
    assert np.isfinite(history.history["loss"]).all()
