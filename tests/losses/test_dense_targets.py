"""Every categorical (and binary) loss on dense targets: segmentation maps.

Logits `(B, H, W, C)` with id maps `(B, H, W)` / `(B, H, W, 1)` or one-hot maps
`(B, H, W, C)`: per-pixel values equal a float64 NumPy formula on the
flattened `(B*H*W, C)` rows, Keras `sample_weight` maps apply element-wise
under every reduction, gradients equal the flattened ones (the fused paths
included), weighted CE equals torch `F.cross_entropy(weight=w)` on
`(N, C, H, W)`, and every loss trains a small U-Net with weight maps.
"""

import keras
import numpy as np
import pytest
from autodiff_helper import value_and_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from kimbalance import losses
from kimbalance.models import small_unet

COUNTS = np.array([400.0, 60.0, 12.0, 3.0])
C = len(COUNTS)
PRIORS = COUNTS / COUNTS.sum()
CLASS_WEIGHT = np.array([0.2, 1.0, 2.5, 6.0])
SHAPE = (2, 3, 5)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def ce(targets, z):
    return -(targets * log_softmax(z)).sum(-1)


def ldam_margins(max_margin=0.5):
    raw = COUNTS**-0.25
    return raw * (max_margin / raw.max())


def mislas_eps(head=0.4, tail=0.1):
    t = (COUNTS - COUNTS.min()) / (COUNTS.max() - COUNTS.min())
    return tail + (head - tail) * np.sin(np.pi / 2 * t)  # "concave"


def _smooth(t, ls):
    return t * (1 - ls) + ls / C


# name: (class, kwargs, function, float64 reference(targets, logits) per row).
# References are written from the papers' formulas, independently of the code.
LOSSES = {
    "weighted_ce": (
        losses.WeightedCategoricalCrossentropy,
        {"class_weight": CLASS_WEIGHT.tolist(), "from_logits": True},
        losses.weighted_categorical_crossentropy,
        lambda t, z: -(CLASS_WEIGHT * t * log_softmax(z)).sum(-1)),
    "weighted_ce_smoothed": (
        losses.WeightedCategoricalCrossentropy,
        {"class_weight": CLASS_WEIGHT.tolist(), "from_logits": True,
         "label_smoothing": 0.1},
        losses.weighted_categorical_crossentropy,
        lambda t, z: -(CLASS_WEIGHT * _smooth(t, 0.1) * log_softmax(z)).sum(-1)),
    "focal": (
        losses.FocalCrossentropy,
        {"gamma": 2.0, "alpha": [0.1, 0.3, 0.5, 0.9], "from_logits": True},
        losses.focal_crossentropy,
        lambda t, z: -(np.array([0.1, 0.3, 0.5, 0.9]) * t
                       * (1 - np.exp(log_softmax(z))) ** 2 * log_softmax(z)).sum(-1)),
    "logit_adjusted": (
        losses.LogitAdjustedCrossentropy, {"class_priors": COUNTS.tolist(), "tau": 1.0},
        losses.logit_adjusted_crossentropy,
        lambda t, z: ce(t, z + np.log(PRIORS))),
    "ldam": (
        losses.LDAMLoss,
        {"class_counts": COUNTS.tolist(), "class_weight": CLASS_WEIGHT.tolist()},
        losses.ldam_loss,
        lambda t, z: (t * CLASS_WEIGHT).sum(-1)
        * ce(t, 30.0 * (z - ldam_margins() * t))),
    "cdt": (
        losses.CDTLoss, {"class_counts": COUNTS.tolist(), "gamma": 0.3},
        losses.cdt_loss,
        lambda t, z: ce(t, z / (COUNTS.max() / COUNTS) ** 0.3)),
    "mislas": (
        losses.LabelAwareSmoothingCrossentropy, {"class_counts": COUNTS.tolist()},
        losses.label_aware_smoothing_crossentropy,
        lambda t, z: ce((1 - (t * mislas_eps()).sum(-1, keepdims=True)) * t
                        + (t * mislas_eps()).sum(-1, keepdims=True) / C, z)),
    "vs": (
        losses.VSLoss, {"class_counts": COUNTS.tolist(), "gamma": 0.2, "tau": 1.0},
        losses.vs_loss,
        lambda t, z: ce(t, z * (COUNTS / COUNTS.max()) ** 0.2 + np.log(PRIORS))),
}


def maps(seed=0, shape=SHAPE, num_classes=C):
    """Logits (B, H, W, C) (cosines in [-1, 1]), id map, one-hot map, weight map."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(num_classes, size=shape, p=[0.6, 0.25, 0.1, 0.05][:num_classes]
                     if num_classes == 4 else None)
    logits = np.tanh(rng.normal(size=(*shape, num_classes)) + np.eye(num_classes)[ids])
    one_hot = np.eye(num_classes)[ids]
    weights = rng.uniform(0.0, 2.0, size=shape)
    return logits.astype("float32"), ids, one_hot, weights.astype("float32")


def labels_of(form, ids, one_hot):
    return {"ids": ids, "column": ids[..., None], "one_hot": one_hot.astype("float32"),
            "float_ids": ids.astype("float32")}[form]


FORMS = ["ids", "column", "one_hot", "float_ids"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_per_pixel_values_equal_the_float64_formula(name, form):
    _, kwargs, function, reference = LOSSES[name]
    logits, ids, one_hot, _ = maps()
    values = ops.convert_to_numpy(function(labels_of(form, ids, one_hot), logits,
                                           **kwargs))
    assert values.shape == SHAPE
    expected = reference(one_hot.reshape(-1, C),
                         logits.reshape(-1, C).astype("float64")).reshape(SHAPE)
    np.testing.assert_allclose(values, expected, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("reduction",
                         ["sum_over_batch_size", "mean_with_sample_weight", "sum"])
@pytest.mark.parametrize("form", ["ids", "one_hot"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_sample_weight_maps_apply_element_wise(name, form, reduction):
    cls, kwargs, _, reference = LOSSES[name]
    logits, ids, one_hot, weights = maps(seed=1)
    loss = cls(**kwargs, reduction=reduction)
    value = float(loss(labels_of(form, ids, one_hot), logits, sample_weight=weights))
    per_pixel = reference(one_hot.reshape(-1, C), logits.reshape(-1, C).astype(float))
    weighted = (weights.reshape(-1) * per_pixel).sum()
    if reduction == "sum_over_batch_size":
        expected = weighted / per_pixel.size
    elif reduction == "mean_with_sample_weight":
        divisor = weights.reshape(-1).astype(float)
        if name.startswith("weighted_ce"):  # torch's weighted mean: w[y] too
            divisor = divisor * (one_hot.reshape(-1, C) @ CLASS_WEIGHT)
        expected = weighted / divisor.sum()
    else:
        expected = weighted
    np.testing.assert_allclose(value, expected, rtol=2e-5)
    flat = float(loss(labels_of(form, ids, one_hot).reshape(
        -1, *([C] if form == "one_hot" else [])), logits.reshape(-1, C),
        sample_weight=weights.reshape(-1)))
    np.testing.assert_allclose(value, flat, rtol=1e-5)


@pytest.mark.parametrize("form", ["ids", "one_hot"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_on_maps_equal_the_flattened_gradients(name, form):
    """The fused custom gradients (jax / tensorflow) see 4-D tensors too."""
    _, kwargs, function, _ = LOSSES[name]
    logits, ids, one_hot, weights = maps(seed=2)
    y_map = labels_of(form, ids, one_hot)
    y_flat = y_map.reshape(-1, C) if form == "one_hot" else y_map.reshape(-1)
    w = ops.convert_to_tensor(weights)

    def on_map(z):
        return function(y_map, z, **kwargs) * w

    def on_rows(z):
        return function(y_flat, z, **kwargs) * ops.reshape(w, (-1,))

    values, grad = value_and_grad(on_map, logits)
    flat_values, flat_grad = value_and_grad(on_rows, logits.reshape(-1, C))
    np.testing.assert_allclose(values.reshape(-1), flat_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad.reshape(-1, C), flat_grad, rtol=1e-5, atol=1e-6)
    assert np.isfinite(grad).all()


# -- torch parity: (N, H, W, C) here, (N, C, H, W) in torch -------------------------

def _torch_nchw(logits):
    import torch

    return torch.from_numpy(logits.astype("float64")).permute(0, 3, 1, 2)


@pytest.mark.parametrize("form", ["ids", "one_hot"])
def test_weighted_ce_equals_torch_cross_entropy_on_nchw(form, torch):
    logits, ids, one_hot, _ = maps(seed=3, shape=(3, 4, 6))
    weight = torch.tensor(CLASS_WEIGHT)
    target = torch.from_numpy(ids)
    y_true = labels_of(form, ids, one_hot)
    ours = losses.WeightedCategoricalCrossentropy(
        class_weight=CLASS_WEIGHT.tolist(), from_logits=True,
        reduction="mean_with_sample_weight")
    reference = torch.nn.functional.cross_entropy(_torch_nchw(logits), target,
                                                  weight=weight)
    np.testing.assert_allclose(float(ours(y_true, logits)), reference.item(),
                               rtol=1e-5)
    # reduction="none": the per-pixel map w[y] * -log p[y].
    per_pixel = torch.nn.functional.cross_entropy(
        _torch_nchw(logits), target, weight=weight, reduction="none")
    call = losses.WeightedCategoricalCrossentropy(
        class_weight=CLASS_WEIGHT.tolist(), from_logits=True, reduction=None)
    np.testing.assert_allclose(ops.convert_to_numpy(call(y_true, logits)),
                               per_pixel.numpy(), rtol=1e-5, atol=1e-6)
    # Keras' default reduction is torch's "sum" over the N*H*W pixels.
    default = losses.WeightedCategoricalCrossentropy(
        class_weight=CLASS_WEIGHT.tolist(), from_logits=True)
    total = torch.nn.functional.cross_entropy(_torch_nchw(logits), target,
                                              weight=weight, reduction="sum")
    np.testing.assert_allclose(float(default(y_true, logits)),
                               total.item() / ids.size, rtol=1e-5)


def test_weighted_ce_ignore_class_equals_torch_ignore_index(torch):
    logits, ids, _, weights = maps(seed=4, shape=(2, 5, 5))
    ids = np.where(np.random.default_rng(0).random(ids.shape) < 0.2, 255, ids)
    reference = torch.nn.functional.cross_entropy(
        _torch_nchw(logits), torch.from_numpy(ids), weight=torch.tensor(CLASS_WEIGHT),
        ignore_index=255)
    ours = losses.WeightedCategoricalCrossentropy(
        class_weight=CLASS_WEIGHT.tolist(), from_logits=True, ignore_class=255,
        reduction="mean_with_sample_weight")
    np.testing.assert_allclose(float(ours(ids, logits)), reference.item(), rtol=1e-5)
    # With a pixel weight map s: torch's sum(s w[y] l) / sum(s w[y]) over kept pixels.
    per_pixel = torch.nn.functional.cross_entropy(
        _torch_nchw(logits), torch.from_numpy(ids), weight=torch.tensor(CLASS_WEIGHT),
        ignore_index=255, reduction="none").numpy()
    kept = ids != 255
    divisor = (weights * CLASS_WEIGHT[np.where(kept, ids, 0)] * kept).sum()
    np.testing.assert_allclose(float(ours(ids, logits, sample_weight=weights)),
                               (weights * per_pixel).sum() / divisor, rtol=1e-5)


# -- binary / multi-label losses on maps --------------------------------------------

BINARY = {
    "weighted_bce": (losses.WeightedBinaryCrossentropy,
                     {"pos_weight": [3.0, 1.5, 0.5], "from_logits": True}),
    "sigmoid_focal": (losses.SigmoidFocalCrossentropy,
                      {"gamma": 2.0, "alpha": 0.25, "from_logits": True}),
    "asymmetric": (losses.AsymmetricLoss, {}),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_losses_on_multi_hot_maps_equal_the_flattened_rows(name):
    cls, kwargs = BINARY[name]
    rng = np.random.default_rng(5)
    targets = (rng.random((2, 4, 4, 3)) < 0.3).astype("float32")
    logits = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    weights = rng.uniform(0.0, 2.0, size=(2, 4, 4)).astype("float32")
    loss = cls(**kwargs)
    per_pixel = ops.convert_to_numpy(loss.call(targets, logits))
    assert per_pixel.shape == (2, 4, 4)
    flat = ops.convert_to_numpy(loss.call(targets.reshape(-1, 3),
                                          logits.reshape(-1, 3)))
    np.testing.assert_allclose(per_pixel.reshape(-1), flat, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        float(loss(targets, logits, sample_weight=weights)),
        (weights.reshape(-1) * flat).sum() / flat.size, rtol=1e-5)


def test_weighted_bce_on_a_binary_mask_equals_the_float64_formula():
    rng = np.random.default_rng(6)
    mask = (rng.random((2, 4, 4, 1)) < 0.2).astype("float32")
    logits = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    values = ops.convert_to_numpy(losses.weighted_binary_crossentropy(
        mask, logits, pos_weight=4.0, from_logits=True))
    z, y = logits.astype(float), mask.astype(float)
    log_p, log_q = -np.logaddexp(0, -z), -np.logaddexp(0, z)
    expected = -(4.0 * y * log_p + (1 - y) * log_q)[..., 0]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-7)


# -- properties, errors, fit ----------------------------------------------------------

@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 3), height=st.integers(1, 4),
       width=st.integers(1, 4), name=st.sampled_from(sorted(LOSSES)),
       one_hot=st.booleans())
def test_property_map_loss_equals_flattened_loss(seed, batch, height, width, name,
                                                 one_hot):
    cls, kwargs, _, _ = LOSSES[name]
    logits, ids, hot, weights = maps(seed, shape=(batch, height, width))
    y_map = hot.astype("float32") if one_hot else ids
    loss = cls(**kwargs)
    on_map = float(loss(y_map, logits, sample_weight=weights))
    on_rows = float(loss(y_map.reshape(-1, C) if one_hot else y_map.reshape(-1),
                         logits.reshape(-1, C), sample_weight=weights.reshape(-1)))
    np.testing.assert_allclose(on_map, on_rows, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["weighted_ce", "focal", "vs"])
def test_ids_outside_the_classes_in_a_mask_name_y_true(name):
    cls, kwargs, _, _ = LOSSES[name]
    logits, ids, _, _ = maps()
    with pytest.raises(ValueError, match=r"argument `y_true`"):
        cls(**kwargs)(np.where(ids == 1, C, ids), logits)  # id C outside [0, C)
    with pytest.raises(ValueError, match=r"argument `y_true`"):
        cls(**kwargs)(np.where(ids == 1, -1, ids), logits)


@pytest.mark.parametrize("form", ["ids", "one_hot"])
def test_mask_of_another_size_names_y_true(form):
    logits, ids, one_hot, _ = maps()
    y_true = labels_of(form, ids, one_hot)[:, :, :4]
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected labels of "
                       r"the sample shape of y_pred"):
        losses.WeightedCategoricalCrossentropy(from_logits=True)(y_true, logits)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_categorical_loss_fits_a_segmenter_with_weight_maps(name):
    cls, kwargs, _, _ = LOSSES[name]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    y = np.digitize(x[..., 0], [-0.5, 0.8, 1.6])
    model = keras.Sequential([keras.Input((4, 4, 1)),
                              keras.layers.Conv2D(C, 3, padding="same")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=cls(**kwargs))
    before = ops.convert_to_numpy(model.layers[0].kernel)
    history = model.fit(x, y, sample_weight=CLASS_WEIGHT[y].astype("float32"),
                        batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(before, ops.convert_to_numpy(model.layers[0].kernel))


def test_a_unet_trains_with_a_dense_loss():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 8, 8, 1)).astype("float32")
    y = np.digitize(x[..., 0], [-0.5, 0.8, 1.6])
    model = small_unet((8, 8, 1), C, base_filters=2, depth=1, seed=0)
    model.compile(optimizer="adam", loss=losses.FocalCrossentropy(from_logits=True))
    history = model.fit(x, y, sample_weight=CLASS_WEIGHT[y].astype("float32"),
                        batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
