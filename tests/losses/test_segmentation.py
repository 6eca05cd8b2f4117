"""Dice / generalized Dice / Tversky / focal Tversky / Dice + CE.

Oracles: MONAI's `DiceLoss`, `GeneralizedDiceLoss`, `TverskyLoss` and
`DiceCELoss` on the same inputs transposed to channels first, and float64
NumPy formulas (the focal Tversky loss has no MONAI counterpart).
"""

import keras
import numpy as np
import pytest
from autodiff_helper import value_and_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from kimbalance.losses import (
    DiceCrossentropy,
    DiceLoss,
    FocalTverskyLoss,
    GeneralizedDiceLoss,
    TverskyLoss,
    dice_crossentropy,
    dice_loss,
    focal_tversky_loss,
    generalized_dice_loss,
    tversky_loss,
)

C = 4
WEIGHT = [0.5, 1.0, 2.0, 3.0]
RTOL, ATOL = 2e-5, 2e-6
FUNCTIONS = {
    "dice": dice_loss,
    "generalized_dice": generalized_dice_loss,
    "tversky": tversky_loss,
    "focal_tversky": focal_tversky_loss,
    "dice_ce": dice_crossentropy,
}
CLASSES = {
    "dice": DiceLoss,
    "generalized_dice": GeneralizedDiceLoss,
    "tversky": TverskyLoss,
    "focal_tversky": FocalTverskyLoss,
    "dice_ce": DiceCrossentropy,
}


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _problem(spatial=(5, 6), n=3, c=C, seed=0, scale=2.0):
    """Logits (N, ..., C) and an id map (N, ...) where class 2 is absent
    from sample 0 (an empty class)."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, *spatial, c)) * scale).astype("float32")
    ids = rng.integers(0, c, size=(n, *spatial))
    ids[0] = np.where(ids[0] == min(2, c - 1), 0, ids[0])
    return logits, ids


def _channels_first(x):
    import torch

    return torch.tensor(np.moveaxis(np.asarray(x), -1, 1))


def _ids_first(ids):
    import torch

    return torch.tensor(np.asarray(ids)[:, None])


def _mean(values):
    return float(np.mean(_np(values)))


# --- MONAI oracles --------------------------------------------------------------------


def _monai():
    return pytest.importorskip(
        "monai.losses", reason="MONAI (needs torch) is an optional test oracle")


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_dice_equals_monai(spatial, include_background, batch, activation):
    monai = _monai()
    logits, ids = _problem(spatial)
    weight = WEIGHT if include_background else WEIGHT[1:]
    reference = monai.DiceLoss(
        softmax=activation == "softmax", sigmoid=activation == "sigmoid",
        to_onehot_y=True, include_background=include_background, batch=batch,
        weight=weight)(_channels_first(logits), _ids_first(ids))
    ours = dice_loss(ids, logits, from_logits=True, activation=activation,
                     include_background=include_background, class_weight=WEIGHT,
                     batch=batch)
    assert _np(ours).shape == (ids.shape[0],)
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_generalized_dice_equals_monai(w_type, include_background, batch):
    monai = _monai()
    logits, ids = _problem((3, 4, 5))
    reference = monai.GeneralizedDiceLoss(
        softmax=True, to_onehot_y=True, include_background=include_background,
        batch=batch, w_type=w_type)(_channels_first(logits), _ids_first(ids))
    ours = generalized_dice_loss(ids, logits, from_logits=True, w_type=w_type,
                                 include_background=include_background, batch=batch)
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (0.9, 0.1)])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("batch", [False, True])
def test_tversky_equals_monai_on_one_hot_maps(alpha, beta, activation, batch):
    monai = _monai()
    logits, ids = _problem((5, 6))
    one_hot = np.eye(C, dtype="float32")[ids]
    reference = monai.TverskyLoss(
        softmax=activation == "softmax", sigmoid=activation == "sigmoid",
        include_background=False, alpha=alpha, beta=beta, batch=batch)(
        _channels_first(logits), _channels_first(one_hot))
    ours = tversky_loss(one_hot, logits, alpha=alpha, beta=beta, from_logits=True,
                        activation=activation, include_background=False, batch=batch)
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_dice_crossentropy_equals_monai(spatial, include_background, batch):
    monai = _monai()
    logits, ids = _problem(spatial)
    reference = monai.DiceCELoss(
        softmax=True, to_onehot_y=True, include_background=include_background,
        batch=batch, lambda_dice=0.6, lambda_ce=1.5, label_smoothing=0.1)(
        _channels_first(logits), _ids_first(ids))
    ours = dice_crossentropy(ids, logits, from_logits=True, lambda_dice=0.6,
                             lambda_ce=1.5, include_background=include_background,
                             batch=batch, label_smoothing=0.1)
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)


def test_dice_crossentropy_equals_monai_on_one_sigmoid_channel(torch):
    """One channel: a binary mask, sigmoid Dice + BCE with pos_weight."""
    monai = _monai()
    logits, _ = _problem((6, 7), c=1)
    mask = (np.random.default_rng(5).random(logits.shape[:-1]) < 0.2).astype("float32")
    reference = monai.DiceCELoss(sigmoid=True, weight=torch.tensor([3.0]))(
        _channels_first(logits), _ids_first(mask))
    ours = dice_crossentropy(mask, logits, from_logits=True, activation="sigmoid",
                             class_weight=[3.0])
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)


# --- float64 NumPy formulas -----------------------------------------------------------


def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sums(ids, logits, batch=False, include_background=True):
    p = _softmax(logits)
    t = np.eye(logits.shape[-1])[ids]
    if not include_background:
        p, t = p[..., 1:], t[..., 1:]
    axes = tuple(range(0 if batch else 1, p.ndim - 1))
    return (p * t).sum(axes), p.sum(axes), t.sum(axes)


def _per_sample(per_class, n, weights=None):
    if weights is not None:
        per_class = per_class * np.asarray(weights)
    value = per_class.mean(axis=-1)
    return np.broadcast_to(value, (n,))


@pytest.mark.parametrize("batch", [False, True])
def test_per_sample_values_match_float64_formulas(batch):
    logits, ids = _problem((4, 5), n=4)
    n = ids.shape[0]
    tp, sp, s_t = _sums(ids, logits, batch)
    snr, sdr, a, b, g = 1e-5, 1e-5, 0.3, 0.7, 0.75
    dice = 1 - (2 * tp + snr) / (sp + s_t + sdr)
    ti = (tp + snr) / (tp + a * (sp - tp) + b * (s_t - tp) + sdr)
    w = np.where(s_t > 0, 1 / np.maximum(s_t, 1) ** 2, 0)
    w = np.where(s_t > 0, w, w.max(axis=-1, keepdims=True))
    gdl = 1 - ((2 * (tp * w).sum(-1) + snr) / (((sp + s_t) * w).sum(-1) + sdr))
    logp = np.log(_softmax(logits))
    ce = -(np.take_along_axis(logp, ids[..., None], -1)[..., 0]
           * np.asarray(WEIGHT)[ids])
    ce = ce.reshape(n, -1).mean(axis=1)
    expected = {
        "dice": _per_sample(dice, n, WEIGHT),
        "tversky": _per_sample(1 - ti, n, WEIGHT),
        "focal_tversky": _per_sample((1 - ti) ** g, n, WEIGHT),
        "generalized_dice": np.broadcast_to(gdl, (n,)),
        # The CE term is per sample also when batch=True.
        "dice_ce": _per_sample(dice, n, WEIGHT) + 0.5 * ce,
    }
    kwargs = {
        "dice": dict(class_weight=WEIGHT),
        "tversky": dict(class_weight=WEIGHT, alpha=a, beta=b),
        "focal_tversky": dict(class_weight=WEIGHT, alpha=a, beta=b, gamma=g),
        "generalized_dice": {},
        "dice_ce": dict(class_weight=WEIGHT, lambda_ce=0.5),
    }
    for name, fn in FUNCTIONS.items():
        value = fn(ids, logits, from_logits=True, batch=batch, **kwargs[name])
        np.testing.assert_allclose(_np(value), expected[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_sigmoid_multi_channel_crossentropy_is_binary_per_channel():
    logits, ids = _problem((4, 4))
    multi_hot = (np.random.default_rng(2).random(logits.shape) < 0.3).astype("float32")
    value = dice_crossentropy(multi_hot, logits, from_logits=True,
                              activation="sigmoid", lambda_dice=0.0,
                              class_weight=WEIGHT, label_smoothing=0.2)
    z = logits.astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    smoothed = multi_hot * 0.8 + 0.1
    bce = -(np.asarray(WEIGHT) * smoothed * np.log(p)
            + (1 - smoothed) * np.log(1 - p))
    expected = bce.reshape(bce.shape[0], -1).mean(axis=1)
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)


def test_probabilities_and_logits_agree():
    logits, ids = _problem((4, 5))
    probs = _softmax(logits).astype("float32")
    for name, fn in FUNCTIONS.items():
        np.testing.assert_allclose(
            _np(fn(ids, probs)), _np(fn(ids, logits, from_logits=True)),
            rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("form", ["ids", "column", "one_hot"])
def test_label_forms_give_the_same_value(form):
    logits, ids = _problem((4, 5))
    labels = {"ids": ids, "column": ids[..., None],
              "one_hot": np.eye(C, dtype="float32")[ids]}[form]
    for name, fn in FUNCTIONS.items():
        np.testing.assert_allclose(
            _np(fn(labels, logits, from_logits=True)),
            _np(fn(ids, logits, from_logits=True)), rtol=1e-6, err_msg=name)


def test_rows_without_map_axes():
    """(N, C) predictions: each row is a one-pixel map."""
    logits, ids = _problem(())
    value = dice_loss(ids, logits, from_logits=True, smooth_nr=0.0, smooth_dr=1e-9)
    p = _softmax(logits)
    t = np.eye(C)[ids]
    expected = (1 - 2 * p * t / (p + t + 1e-9)).mean(axis=-1)
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)


# --- properties -----------------------------------------------------------------------


@settings(max_examples=10)
@given(seed=st.integers(0, 2**16), classes=st.integers(2, 5),
       size=st.integers(1, 6), batch=st.booleans(),
       smooth=st.floats(1e-6, 1.0))
def test_tversky_half_half_is_dice_with_doubled_smoothing(seed, classes, size, batch,
                                                          smooth):
    logits, ids = _problem((size, 3), n=2, c=classes, seed=seed)
    tversky = tversky_loss(ids, logits, from_logits=True, batch=batch,
                           smooth_nr=smooth, smooth_dr=smooth)
    dice = dice_loss(ids, logits, from_logits=True, batch=batch,
                     smooth_nr=2 * smooth, smooth_dr=2 * smooth)
    np.testing.assert_allclose(_np(tversky), _np(dice), rtol=1e-5, atol=1e-6)
    focal = focal_tversky_loss(ids, logits, alpha=0.5, beta=0.5, gamma=1.0,
                               from_logits=True, batch=batch, smooth_nr=smooth,
                               smooth_dr=smooth)
    np.testing.assert_allclose(_np(focal), _np(tversky), rtol=1e-6, atol=1e-7)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**16), classes=st.integers(2, 5), batch=st.booleans())
def test_permuting_classes_with_their_weights_changes_nothing(seed, classes, batch):
    logits, ids = _problem((3, 4), n=2, c=classes, seed=seed)
    weights = np.random.default_rng(seed).uniform(0.1, 3.0, classes)
    perm = np.random.default_rng(seed + 1).permutation(classes)
    inverse = np.argsort(perm)
    for name in ("dice", "tversky", "focal_tversky", "dice_ce"):
        fn = FUNCTIONS[name]
        base = fn(ids, logits, from_logits=True, class_weight=weights, batch=batch)
        permuted = fn(inverse[ids], logits[..., perm], from_logits=True,
                      class_weight=weights[perm], batch=batch)
        np.testing.assert_allclose(_np(permuted), _np(base), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    base = generalized_dice_loss(ids, logits, from_logits=True, batch=batch)
    permuted = generalized_dice_loss(inverse[ids], logits[..., perm],
                                     from_logits=True, batch=batch)
    np.testing.assert_allclose(_np(permuted), _np(base), rtol=1e-5, atol=1e-6)


def test_perfect_prediction_gives_zero_dice():
    _, ids = _problem((4, 4))
    logits = np.where(ids[..., None] == np.arange(C), 50.0, -50.0).astype("float32")
    for name in ("dice", "generalized_dice", "tversky", "focal_tversky"):
        value = FUNCTIONS[name](ids, logits, from_logits=True)
        # (1 - TI) ~ 1e-7 in float32 is raised to 0.75 by the focal loss.
        np.testing.assert_allclose(_np(value), 0.0, atol=1e-4, err_msg=name)


# --- finite values and gradients ------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_finite_value_and_gradient_for_empty_classes_and_large_logits(scale,
                                                                      activation):
    logits, ids = _problem((4, 4), scale=1.0)
    logits = (np.sign(logits) * scale).astype("float32")
    ids[:] = 0  # every class but 0 is empty in every sample
    for name, fn in FUNCTIONS.items():
        for batch in (False, True):
            values, grad = value_and_grad(
                lambda z, fn=fn, batch=batch: fn(ids, z, from_logits=True,
                                                 activation=activation, batch=batch),
                logits)
            assert np.all(np.isfinite(values)), (name, batch)
            assert np.all(np.isfinite(grad)), (name, batch)


def test_focal_tversky_gradient_is_finite_at_a_perfect_prediction():
    _, ids = _problem((4, 4))
    probs = np.eye(C, dtype="float32")[ids]
    values, grad = value_and_grad(
        lambda p: focal_tversky_loss(ids, p, gamma=0.5), probs)
    np.testing.assert_allclose(values, 0.0, atol=1e-7)
    assert np.all(np.isfinite(grad))


# --- classes, reduction, config -------------------------------------------------------


def test_class_call_is_per_sample_and_reduces_as_keras():
    logits, ids = _problem((4, 5))
    weights = np.array([0.0, 1.0, 3.0], dtype="float32")
    for name, cls in CLASSES.items():
        loss = cls(from_logits=True)
        per_sample = _np(loss.call(ops.convert_to_tensor(ids),
                                   ops.convert_to_tensor(logits)))
        np.testing.assert_allclose(per_sample, _np(FUNCTIONS[name](
            ids, logits, from_logits=True)), rtol=1e-6)
        np.testing.assert_allclose(float(loss(ids, logits)), per_sample.mean(),
                                   rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(
            float(loss(ids, logits, sample_weight=weights)),
            (per_sample * weights).mean(), rtol=1e-6, err_msg=name)
        summed = cls(from_logits=True, reduction="sum")
        np.testing.assert_allclose(float(summed(ids, logits)), per_sample.sum(),
                                   rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_config_round_trip(name):
    kwargs = dict(from_logits=True, activation="sigmoid", include_background=False,
                  smooth_nr=0.5, smooth_dr=2.0, batch=True, ignore_class=255,
                  name="custom")
    if name != "generalized_dice":
        kwargs["class_weight"] = WEIGHT
    extra = {"tversky": dict(alpha=0.2, beta=0.8),
             "focal_tversky": dict(alpha=0.2, beta=0.8, gamma=1.5),
             "generalized_dice": dict(w_type="simple"),
             "dice_ce": dict(lambda_dice=0.3, lambda_ce=2.0, label_smoothing=0.1),
             "dice": {}}[name]
    loss = CLASSES[name](**kwargs, **extra)
    for key, value in {**kwargs, **extra}.items():
        if key != "name":
            assert getattr(loss, key) == value, key
    config = loss.get_config()
    clone = CLASSES[name].from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss))
    assert type(restored) is CLASSES[name]
    assert restored.get_config() == config
    logits, ids = _problem((3, 3))
    np.testing.assert_allclose(float(restored(ids, logits)), float(loss(ids, logits)),
                               rtol=1e-6)


def test_fit_a_tiny_segmentation_model_with_every_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 6, 1)).astype("float32")
    ids = (x[..., 0] > 0.8).astype("int32") + (x[..., 0] < -1.0).astype("int32") * 2
    for name, cls in CLASSES.items():
        inputs = keras.Input((6, 6, 1))
        hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        outputs = keras.layers.Conv2D(3, 1)(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=cls(from_logits=True, include_background=False))
        history = model.fit(x, ids, batch_size=8, epochs=2, verbose=0)
        losses = history.history["loss"]
        assert np.all(np.isfinite(losses)), name


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("kwargs,argument", [
    (dict(from_logits="no"), "from_logits"),
    (dict(activation="relu"), "activation"),
    (dict(include_background=1), "include_background"),
    (dict(smooth_nr=-1.0), "smooth_nr"),
    (dict(smooth_dr=0.0), "smooth_dr"),
    (dict(smooth_dr=float("nan")), "smooth_dr"),
    (dict(batch="yes"), "batch"),
])
def test_invalid_common_arguments(name, kwargs, argument):
    logits, ids = _problem((3, 3))
    value = next(iter(kwargs.values()))
    message = (f"Invalid value for argument `{argument}`.*Received: "
               f"{argument}={value!r}" if value == value else
               f"Invalid value for argument `{argument}`")
    with pytest.raises(ValueError, match=message):
        FUNCTIONS[name](ids, logits, **kwargs)
    with pytest.raises(ValueError, match=message):
        CLASSES[name](**kwargs)


@pytest.mark.parametrize("name,kwargs,argument", [
    ("dice", dict(class_weight=[0.0, 0.0, 0.0, 0.0]), "class_weight"),
    ("dice", dict(class_weight=[1.0, -1.0, 1.0, 1.0]), "class_weight"),
    ("tversky", dict(alpha=-0.1), "alpha"),
    ("tversky", dict(beta=float("inf")), "beta"),
    ("focal_tversky", dict(gamma=0.0), "gamma"),
    ("focal_tversky", dict(gamma=1e5), "gamma"),
    ("generalized_dice", dict(w_type="cube"), "w_type"),
    ("dice_ce", dict(lambda_dice=0.0, lambda_ce=0.0), "lambda_ce"),
    ("dice_ce", dict(lambda_dice=-1.0), "lambda_dice"),
    ("dice_ce", dict(label_smoothing=1.5), "label_smoothing"),
])
def test_invalid_specific_arguments(name, kwargs, argument):
    logits, ids = _problem((3, 3))
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        FUNCTIONS[name](ids, logits, **kwargs)
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        CLASSES[name](**kwargs)


def test_class_weight_of_the_wrong_length():
    logits, ids = _problem((3, 3))
    with pytest.raises(ValueError, match="argument `class_weight`.*4 values"):
        dice_loss(ids, logits, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="argument `class_weight`.*4 values"):
        DiceLoss(class_weight=[1.0, 2.0])(ids, logits)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_bad_label_values_are_errors_naming_y_true(name):
    logits, ids = _problem((3, 3))
    fn, loss = FUNCTIONS[name], CLASSES[name](from_logits=True)
    too_big = ids.copy()
    too_big[0, 0, 0] = C
    negative = ids.copy()
    negative[1, 1, 1] = -1
    fractional = ids.astype("float32")
    fractional[0, 0, 0] = 0.5
    not_binary = np.eye(C, dtype="float32")[ids] * 2.0
    for labels, found in [(too_big, rf"class ids < {C}.*found \[{C}\]"),
                          (negative, r"class ids >= 0.*found \[-1\]"),
                          (fractional, r"integer class ids.*values \[0.5\]"),
                          (not_binary, r"values in \[0, 1\].*found \[2\]")]:
        with pytest.raises(ValueError, match=f"argument `y_true`.*{found}"):
            fn(labels, logits, from_logits=True)
        with pytest.raises(ValueError, match=f"argument `y_true`.*{found}"):
            loss(labels, logits)
    multi_hot = (np.random.default_rng(0).random(logits.shape) < 0.5) * 3.0
    with pytest.raises(ValueError, match=r"argument `y_true`.*\[0, 1\].*found \[3\]"):
        fn(multi_hot, logits, from_logits=True, activation="sigmoid")


def test_single_channel_needs_sigmoid_and_background():
    logits, _ = _problem((3, 3), c=1)
    mask = (logits[..., 0] > 0).astype("float32")
    with pytest.raises(ValueError, match="argument `activation`.*'sigmoid'.*"
                       "Received: activation='softmax'"):
        dice_loss(mask, logits, from_logits=True)
    with pytest.raises(ValueError, match="argument `include_background`.*"
                       "Received: include_background=False"):
        dice_loss(mask, logits, activation="sigmoid", include_background=False)
    value = dice_loss(mask, logits, from_logits=True, activation="sigmoid")
    assert np.all(np.isfinite(_np(value)))


def test_mask_shape_mismatch_is_an_error():
    logits, ids = _problem((3, 3))
    with pytest.raises(ValueError, match="argument `y_true`"):
        dice_loss(np.eye(3, dtype="float32")[ids % 3], logits)
    with pytest.raises(ValueError, match="argument `y_pred`"):
        dice_loss(ids[:, 0, 0], logits[:, 0, 0, 0])


def test_pixel_weight_maps_are_an_error():
    logits, ids = _problem((3, 3))
    loss = DiceLoss(from_logits=True)
    with pytest.raises(ValueError, match=r"argument `sample_weight`.*per-sample "
                       r"weights.*Received: "
                       r"sample_weight='<array of shape \(3, 3, 3\)>'"):
        loss(ids, logits, sample_weight=np.ones(ids.shape))
    column = loss(ids, logits, sample_weight=np.ones((3, 1)))
    np.testing.assert_allclose(float(column), float(loss(ids, logits)), rtol=1e-6)


# --- ignore_class ---------------------------------------------------------------------


def _with_void(ids, void, seed=9):
    labels = ids.copy()
    labels[np.random.default_rng(seed).random(ids.shape) < 0.2] = void
    return labels


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("void", [255, -1])
@pytest.mark.parametrize("batch", [False, True])
def test_ignore_class_equals_monai_ignore_index(void, batch):
    monai = _monai()
    logits, ids = _problem((5, 6))
    labels = _with_void(ids, void)
    first = _channels_first(logits)
    reference = monai.DiceLoss(softmax=True, to_onehot_y=True, batch=batch,
                               ignore_index=void)(first, _ids_first(labels))
    ours = dice_loss(labels, logits, from_logits=True, batch=batch, ignore_class=void)
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)
    reference = monai.TverskyLoss(sigmoid=True, to_onehot_y=True, batch=batch,
                                  alpha=0.3, beta=0.7, ignore_index=void,
                                  include_background=False)(first, _ids_first(labels))
    ours = tversky_loss(labels, logits, from_logits=True, activation="sigmoid",
                        batch=batch, alpha=0.3, beta=0.7, ignore_class=void,
                        include_background=False)
    np.testing.assert_allclose(_mean(ours), float(reference), rtol=RTOL, atol=ATOL)


def test_ignored_pixels_change_nothing_and_leave_the_crossentropy_mean():
    logits, ids = _problem((4, 5))
    labels = _with_void(ids, 255)
    kept = labels != 255
    other = np.where(kept[..., None], logits, -logits * 7.0).astype("float32")
    for name, fn in FUNCTIONS.items():
        np.testing.assert_allclose(
            _np(fn(labels, other, from_logits=True, ignore_class=255)),
            _np(fn(labels, logits, from_logits=True, ignore_class=255)),
            rtol=1e-5, atol=1e-6, err_msg=name)
    value = dice_crossentropy(labels, logits, from_logits=True, lambda_dice=0.0,
                              class_weight=WEIGHT, ignore_class=255)
    logp = np.log(_softmax(logits))
    safe = np.where(kept, labels, 0)
    ce = -np.take_along_axis(logp, safe[..., None], -1)[..., 0] * np.asarray(
        WEIGHT)[safe]
    n = ids.shape[0]
    expected = (ce * kept).reshape(n, -1).sum(1) / kept.reshape(n, -1).sum(1)
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)


def test_ignore_class_errors():
    logits, ids = _problem((3, 3))
    labels = _with_void(ids, 255)
    with pytest.raises(ValueError, match=r"argument `y_true`.*class ids < 4.*"
                       r"found \[255\]"):
        dice_loss(labels, logits)
    with pytest.raises(ValueError, match=r"pass ignore_class=-1"):
        DiceLoss()(_with_void(ids, -1), logits)
    with pytest.raises(ValueError, match=r"argument `ignore_class`.*id maps.*"
                       r"Received: ignore_class=255"):
        dice_loss(np.eye(C, dtype="float32")[ids], logits, ignore_class=255)
    mask = (logits[..., :1] > 0).astype("float32")
    with pytest.raises(ValueError, match=r"argument `ignore_class`"):
        dice_loss(mask, logits[..., :1], activation="sigmoid", ignore_class=255)
    with pytest.raises(ValueError, match=r"argument `ignore_class`.*"
                       r"Received: ignore_class=0.5"):
        DiceLoss(ignore_class=0.5)
