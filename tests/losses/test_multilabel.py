"""AsymmetricLoss and DistributionBalancedLoss: oracles, properties, errors, fit."""

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.losses import (
    AsymmetricLoss,
    DistributionBalancedLoss,
    asymmetric_loss,
    distribution_balanced_loss,
)

BACKEND = keras.backend.backend()
LABEL_COUNTS = [300, 120, 40, 9, 2]
NUM_SAMPLES = 400


def _data(n=10, num_labels=5, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=(n, num_labels)) < 0.35).astype(np.float32)
    y[0] = 0.0  # a sample without positive labels
    y[1] = 1.0  # a sample with all labels
    z = (scale * rng.normal(size=(n, num_labels))).astype(np.float32)
    return y, z


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


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

def asl_reference(y, z, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8,
                  from_logits=True):
    """float64 port of Alibaba-MIIL/ASL `src/loss_functions/losses.py`
    AsymmetricLoss.forward, summed per sample instead of over the batch."""
    xs_pos = _sigmoid(np.asarray(z, np.float64)) if from_logits else np.asarray(z)
    xs_neg = 1.0 - xs_pos
    if clip is not None and clip > 0:
        xs_neg = np.minimum(xs_neg + clip, 1.0)
    loss = y * np.log(np.maximum(xs_pos, eps)) + (1 - y) * np.log(
        np.maximum(xs_neg, eps))
    if gamma_neg > 0 or gamma_pos > 0:
        pt = xs_pos * y + xs_neg * (1 - y)
        loss = loss * np.power(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -loss.sum(axis=-1)


def asl_torch(y, z, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8,
              detach=True):
    """The official torch formula (same file) on CPU float64, with autograd;
    `detach` is `disable_torch_grad_focal_loss`. Returns (values, d sum / dz)."""
    import torch

    x = torch.tensor(np.asarray(z, np.float64), requires_grad=True)
    t = torch.tensor(np.asarray(y, np.float64))
    xs_pos = torch.sigmoid(x)
    xs_neg = 1 - xs_pos
    if clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    loss = t * torch.log(xs_pos.clamp(min=eps)) + (1 - t) * torch.log(
        xs_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        with torch.set_grad_enabled(not detach):
            pt = xs_pos * t + xs_neg * (1 - t)
            w = torch.pow(1 - pt, gamma_pos * t + gamma_neg * (1 - t))
        loss = loss * w
    per_sample = -loss.sum(dim=-1)
    per_sample.sum().backward()
    return per_sample.detach().numpy(), x.grad.numpy()


def db_reference(y, z, counts, num_samples, map_alpha=0.1, map_beta=10.0,
                 map_gamma=0.2, neg_scale=2.0, init_bias=0.05, focal_gamma=2.0,
                 balance_param=2.0):
    """float64 port of wutong16/DistributionBalancedLoss
    `mllt/models/losses/resample_loss.py` ResampleLoss.forward with
    use_sigmoid=True, reweight_func='rebalance', focal=True and logit_reg
    (neg_scale, init_bias); elementwise loss averaged over labels (the
    official training loop takes `.mean()` of the (N, L) loss)."""
    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    class_freq = np.asarray(counts, np.float64)
    freq_inv = 1.0 / class_freq
    with np.errstate(divide="ignore"):
        repeat_rate = np.sum(y * freq_inv, axis=1, keepdims=True)
        pos_weight = freq_inv[None, :] / repeat_rate  # inf for a no-label row
    weight = _sigmoid(map_beta * (pos_weight - map_gamma)) + map_alpha
    bias = -np.log(num_samples / class_freq - 1) * init_bias / neg_scale
    z = z + bias
    z = z * (1 - y) * neg_scale + z * y
    weight = weight / neg_scale * (1 - y) + weight * y
    bce = np.logaddexp(0.0, z) - z * y  # binary_cross_entropy_with_logits
    pt = np.exp(-bce)
    loss = balance_param * (1 - pt) ** focal_gamma * weight * bce
    return loss.mean(axis=1)


def db_torch(y, z, counts, num_samples):
    """The official torch formula (same file, COCO config values) on CPU
    float64 with autograd. Returns (per-sample values, d sum / dz)."""
    import torch

    F = torch.nn.functional
    x = torch.tensor(np.asarray(z, np.float64), requires_grad=True)
    label = torch.tensor(np.asarray(y, np.float64))
    class_freq = torch.tensor(np.asarray(counts, np.float64))
    freq_inv = 1.0 / class_freq
    repeat_rate = torch.sum(label * freq_inv, dim=1, keepdim=True)
    weight = torch.sigmoid(10.0 * (freq_inv[None] / repeat_rate - 0.2)) + 0.1
    init_bias = -torch.log(num_samples / class_freq - 1) * 0.05 / 2.0
    logits = x + init_bias
    logits = logits * (1 - label) * 2.0 + logits * label
    weight = weight / 2.0 * (1 - label) + weight * label
    pt = torch.exp(-F.binary_cross_entropy_with_logits(logits, label,
                                                       reduction="none"))
    loss = F.binary_cross_entropy_with_logits(logits, label, weight=weight,
                                              reduction="none")
    loss = 2.0 * (1 - pt) ** 2 * loss
    per_sample = loss.mean(dim=1)
    per_sample.sum().backward()
    return per_sample.detach().numpy(), x.grad.numpy()


# ASL values -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {},
    {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.0},
    {"gamma_neg": 0.5, "gamma_pos": 0.25, "clip": 0.2, "eps": 1e-3},
], ids=["official_defaults", "no_clip", "fractional_gammas"])
def test_asl_matches_numpy_port_of_official(kwargs):
    y, z = _data()
    got = asymmetric_loss(y, z, **kwargs)
    np.testing.assert_allclose(_np(got), asl_reference(y, z, **kwargs),
                               rtol=1e-5, atol=1e-5)


def test_asl_from_probabilities_matches_official():
    y, z = _data(seed=1)
    p = _sigmoid(z.astype(np.float64)).astype(np.float32)
    got = asymmetric_loss(y, p, from_logits=False)
    np.testing.assert_allclose(_np(got), asl_reference(y, p, from_logits=False),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("detach", [True, False], ids=["stop_gradient", "flow"])
def test_asl_value_and_gradient_match_torch_autograd(detach):
    y, z = _data(seed=2, scale=3.0)
    value, grad = value_and_grad(
        lambda x: asymmetric_loss(y, x, stop_gradient_focusing=detach), z)
    want_value, want_grad = asl_torch(y, z, detach=detach)
    np.testing.assert_allclose(value, want_value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


def test_asl_without_focusing_and_clip_is_bce_summed_over_labels():
    y, z = _data(seed=3)
    got = asymmetric_loss(y, z, gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    bce = keras.losses.binary_crossentropy(y, z, from_logits=True)
    np.testing.assert_allclose(_np(got), 5 * _np(bce), rtol=1e-5, atol=1e-5)


def test_asl_class_reduces_by_batch_mean_and_sum_is_official_scalar():
    y, z = _data(seed=4)
    per_sample = asl_reference(y, z)
    np.testing.assert_allclose(float(AsymmetricLoss()(y, z)), per_sample.mean(),
                               rtol=1e-5)
    official = float(AsymmetricLoss(reduction="sum")(y, z))
    np.testing.assert_allclose(official, per_sample.sum(), rtol=1e-5)


# DB values --------------------------------------------------------------------

def test_db_matches_numpy_port_of_official():
    y, z = _data(seed=5)
    got = distribution_balanced_loss(y, z, label_counts=LABEL_COUNTS,
                                     num_samples=NUM_SAMPLES)
    np.testing.assert_allclose(_np(got), db_reference(y, z, LABEL_COUNTS,
                                                      NUM_SAMPLES),
                               rtol=1e-5, atol=1e-6)


def test_db_nondefault_hyperparameters_match_numpy_port():
    y, z = _data(seed=6)
    kwargs = dict(map_alpha=0.5, map_beta=3.0, map_gamma=0.05, neg_scale=5.0,
                  init_bias=0.1, focal_gamma=1.5, balance_param=1.0)
    got = distribution_balanced_loss(y, z, label_counts=LABEL_COUNTS,
                                     num_samples=NUM_SAMPLES, **kwargs)
    want = db_reference(y, z, LABEL_COUNTS, NUM_SAMPLES, **kwargs)
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("torch")
def test_db_value_and_gradient_match_torch_autograd():
    y, z = _data(seed=7, scale=3.0)
    value, grad = value_and_grad(
        lambda x: distribution_balanced_loss(y, x, label_counts=LABEL_COUNTS,
                                             num_samples=NUM_SAMPLES), z)
    want_value, want_grad = db_torch(y, z, LABEL_COUNTS, NUM_SAMPLES)
    np.testing.assert_allclose(value, want_value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


def test_db_with_its_parts_switched_off_is_bce():
    y, z = _data(seed=8)
    got = distribution_balanced_loss(
        y, z, label_counts=LABEL_COUNTS, num_samples=NUM_SAMPLES, rebalance=False,
        neg_scale=1.0, init_bias=0.0, focal_gamma=0.0, balance_param=1.0)
    bce = keras.losses.binary_crossentropy(y, z, from_logits=True)
    np.testing.assert_allclose(_np(got), _np(bce), rtol=1e-5, atol=1e-6)


def test_db_class_mean_reduction_is_official_scalar():
    y, z = _data(seed=9)
    loss = DistributionBalancedLoss(LABEL_COUNTS, NUM_SAMPLES)
    want = db_reference(y, z, LABEL_COUNTS, NUM_SAMPLES).mean()
    np.testing.assert_allclose(float(loss(y, z)), want, rtol=1e-5)


# Numerical robustness ---------------------------------------------------------

HUGE = np.array([[1e4, -1e4, 0.0, 1e4, -1e4], [-1e4, 1e4, -1e4, 1e4, 30.0],
                 [1e4, 1e4, 1e4, 1e4, 1e4], [-1e4, -1e4, -1e4, -1e4, -1e4]],
                np.float32)
HUGE_Y = np.array([[1, 1, 0, 0, 0], [1, 0, 0, 1, 1], [0, 0, 0, 0, 0],
                   [1, 1, 1, 1, 1]], np.float32)


@pytest.mark.parametrize("kwargs", [
    {},
    {"stop_gradient_focusing": False},
    {"stop_gradient_focusing": False, "gamma_neg": 0.5, "gamma_pos": 0.3,
     "clip": 0.0},
    {"stop_gradient_focusing": False, "gamma_neg": 0.5, "gamma_pos": 0.3},
], ids=["defaults", "flow", "flow_fractional_no_clip", "flow_fractional"])
def test_asl_finite_value_and_gradient_for_huge_logits(kwargs):
    value, grad = value_and_grad(lambda x: asymmetric_loss(HUGE_Y, x, **kwargs),
                                 HUGE)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value[3] > 10.0  # every label positive with a -1e4 logit


@pytest.mark.parametrize("kwargs", [{}, {"focal_gamma": 0.5}],
                         ids=["defaults", "fractional_focal_gamma"])
def test_db_finite_value_and_gradient_for_huge_logits(kwargs):
    value, grad = value_and_grad(
        lambda x: distribution_balanced_loss(HUGE_Y, x, label_counts=LABEL_COUNTS,
                                             num_samples=NUM_SAMPLES, **kwargs),
        HUGE)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value[3] > 1e3


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_logits_compute_in_float32(dtype):
    y, z = _data(seed=10)
    z_half = ops.cast(z, dtype)
    for got in (asymmetric_loss(y, z_half),
                distribution_balanced_loss(y, z_half, label_counts=LABEL_COUNTS,
                                           num_samples=NUM_SAMPLES)):
        assert keras.backend.standardize_dtype(got.dtype) == "float32"
        assert np.all(np.isfinite(_np(got)))


# Errors -----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"gamma_neg": -1.0}, r"`gamma_neg`.*>= 0.*Received: gamma_neg=-1.0"),
    ({"gamma_pos": -0.5}, r"`gamma_pos`.*>= 0.*Received: gamma_pos=-0.5"),
    ({"clip": 1.0}, r"`clip`.*< 1.*Received: clip=1.0"),
    ({"clip": -0.1}, r"`clip`.*>= 0.*Received: clip=-0.1"),
    ({"eps": 0.0}, r"`eps`.*> 0.*Received: eps=0.0"),
    ({"from_logits": "yes"}, r"`from_logits`.*bool.*Received: from_logits='yes'"),
], ids=["gamma_neg", "gamma_pos", "clip_one", "clip_negative", "eps", "flag"])
def test_asl_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AsymmetricLoss(**kwargs)


@pytest.mark.parametrize("fn", [
    asymmetric_loss,
    lambda y, z: distribution_balanced_loss(y, z, label_counts=LABEL_COUNTS,
                                            num_samples=NUM_SAMPLES),
], ids=["asl", "db"])
def test_labels_of_wrong_rank(fn):
    y, z = _data()
    with pytest.raises(ValueError, match=r"`y_true`.*multi-hot.*Received: y_true="):
        fn(np.argmax(y, axis=1), z)


def test_asl_labels_of_wrong_width():
    y, z = _data()
    with pytest.raises(ValueError, match=r"`y_true`.*shape of y_pred"):
        asymmetric_loss(y[:, :3], z)


def test_asl_rank_one_predictions():
    with pytest.raises(ValueError, match=r"`y_pred`.*\(N, L\)"):
        asymmetric_loss(np.ones(4), np.zeros(4))


@pytest.mark.parametrize("counts,message", [
    ([30, 0, 2], r"`label_counts`.*counts > 0.*Received: label_counts=\[30, 0, 2\]"),
    ([30, -1, 2], r"`label_counts`.*counts >.*Received: label_counts=\[30, -1, 2\]"),
    ([30, float("nan")], r"`label_counts`.*finite.*Received: label_counts="
                         r"\[30, nan\]"),
    ([30, 500], r"`label_counts`.*<= num_samples=400.*Received: label_counts="
                r"\[30, 500\]"),
    ([30, 400], r"`label_counts`.*< num_samples=400 when init_bias > 0"),
], ids=["zero", "negative", "nan", "above_num_samples", "equal_num_samples"])
def test_db_bad_label_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        DistributionBalancedLoss(counts, NUM_SAMPLES)


def test_db_label_in_every_sample_allowed_without_init_bias():
    loss = DistributionBalancedLoss([30, 400], NUM_SAMPLES, init_bias=0.0)
    value = loss([[1.0, 1.0]], [[0.3, -0.2]])
    assert np.isfinite(float(value))


@pytest.mark.parametrize("kwargs,message", [
    ({"num_samples": 0}, r"`num_samples`.*(>= 1|\[1, ).*Received: num_samples=0"),
    ({"neg_scale": 0.0}, r"`neg_scale`.*>= 0.0001.*Received: neg_scale=0.0"),
    ({"focal_gamma": -2.0}, r"`focal_gamma`.*>= 0.*Received: focal_gamma=-2.0"),
    ({"init_bias": -0.1}, r"`init_bias`.*>= 0.*Received: init_bias=-0.1"),
    ({"map_alpha": float("inf")}, r"`map_alpha`.*finite.*Received: map_alpha=inf"),
], ids=["num_samples", "neg_scale", "focal_gamma", "init_bias", "map_alpha"])
def test_db_bad_hyperparameters(kwargs, message):
    kwargs = {"label_counts": LABEL_COUNTS, "num_samples": NUM_SAMPLES, **kwargs}
    with pytest.raises(ValueError, match=message):
        DistributionBalancedLoss(**kwargs)


def test_db_counts_length_differs_from_number_of_labels():
    y, z = _data()
    loss = DistributionBalancedLoss(LABEL_COUNTS[:4], NUM_SAMPLES)
    with pytest.raises(ValueError, match=r"`label_counts`.*one count per label of "
                       r"y_pred \(5 labels\); got 4"):
        loss(y, z)


# Serialization, compile/fit, mixed precision ----------------------------------

@pytest.mark.parametrize("loss", [
    AsymmetricLoss(gamma_neg=2.0, gamma_pos=0.0, clip=0.1, eps=1e-6,
                   stop_gradient_focusing=False, reduction="sum", name="asl"),
    DistributionBalancedLoss(np.array(LABEL_COUNTS), NUM_SAMPLES, rebalance=False,
                             map_alpha=0.2, neg_scale=3.0, focal_gamma=1.0),
], ids=["asl", "db"])
def test_config_round_trip(loss):
    y, z = _data(seed=11)
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(float(restored(y, z)), float(loss(y, z)), rtol=1e-6)


def test_functions_are_serializable():
    for fn in (asymmetric_loss, distribution_balanced_loss):
        config = keras.saving.serialize_keras_object(fn)
        assert keras.saving.deserialize_keras_object(config) is fn


def _fit_data(n=48, seed=12):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    scores = x[:, :5] + rng.normal(scale=0.5, size=(n, 5)) - [0.0, 0.5, 1.0, 1.5, 2.0]
    y = (scores > 0.5).astype(np.float32)
    return x, y


def _two_head_model():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, {"asl": keras.layers.Dense(5, name="asl")(hidden),
                                "db": keras.layers.Dense(5, name="db")(hidden)})


def _compile_and_fit(model, x, y):
    counts = y.sum(axis=0) + 1  # +1 keeps every label > 0 on a tiny draw
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={"asl": AsymmetricLoss(),
              "db": DistributionBalancedLoss(counts, len(y) + 1)},
        jit_compile="auto",
    )
    return model.fit(x, {"asl": y, "db": y}, batch_size=16, epochs=1, verbose=0)


def test_fit_then_save_and_load(tmp_path):
    x, y = _fit_data()
    model = _two_head_model()
    before = [w.copy() for w in model.get_weights()]
    history = _compile_and_fit(model, x, y)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(),
                                                      strict=True))

    path = tmp_path / "multilabel.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(loaded(x[:8])["db"]), _np(model(x[:8])["db"]),
                               rtol=1e-6)
    for key, cls in (("asl", AsymmetricLoss), ("db", DistributionBalancedLoss)):
        restored = loaded.loss[key]
        assert isinstance(restored, cls)
        assert restored.get_config() == model.loss[key].get_config()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_fit_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    x, y = _fit_data(n=32)
    model = _two_head_model()
    out = model(x[:4])
    assert keras.backend.standardize_dtype(out["asl"].dtype) == policy[6:]
    loss = AsymmetricLoss()(y[:4], out["asl"])
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    history = _compile_and_fit(model, x, y)
    assert np.isfinite(history.history["loss"]).all()
