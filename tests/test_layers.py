"""kimbalance.layers: oracles, symbolic/eager calls, fit, config and .keras files."""

import os

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.layers import CosineDense, LogitAdjustment, ThresholdDecision


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def torch_normed_linear(x, weight):
    """The forward of LDAM's NormedLinear (x: (N, in), weight: (in, out))."""
    import torch

    x = torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float64), dim=1)
    w = torch.nn.functional.normalize(torch.as_tensor(weight, dtype=torch.float64),
                                      dim=0)
    return x.mm(w).numpy()


@pytest.mark.usefixtures("torch")
def test_cosine_dense_matches_torch_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5)).astype("float32")
    x[0] = 0.0  # a zero row gives zero similarities, as F.normalize does
    layer = CosineDense(4, scale=3.0)
    out = to_numpy(layer(x))  # eager call builds the layer
    kernel = to_numpy(layer.kernel)
    np.testing.assert_allclose(out, 3.0 * torch_normed_linear(x, kernel),
                               rtol=1e-5, atol=1e-6)
    assert np.all(out[0] == 0.0)
    assert np.all(np.abs(out) <= 3.0 + 1e-5)


def test_cosine_dense_initialisation_as_ldam():
    """uniform(-1, 1) then every column (output unit) renormalised to norm 1."""
    layer = CosineDense(50)
    layer.build((None, 64))
    kernel = to_numpy(layer.kernel)
    assert kernel.shape == (64, 50)
    np.testing.assert_allclose(np.linalg.norm(kernel, axis=0), 1.0, rtol=1e-5)
    # Before the renorm the entries were uniform on (-1, 1): both signs, and
    # the directions differ between units.
    assert (kernel > 0).mean() == pytest.approx(0.5, abs=0.05)
    assert np.abs(kernel.T @ kernel - np.eye(50)).max() < 0.6
    custom = CosineDense(3, kernel_initializer="ones")
    custom.build((None, 2))
    np.testing.assert_array_equal(to_numpy(custom.kernel), np.ones((2, 3)))


def test_logit_adjustment_oracle():
    counts = [500, 120, 30, 5]
    logits = np.random.default_rng(1).normal(size=(7, 4)).astype("float32")
    priors = np.asarray(counts, dtype=np.float64) / sum(counts)
    for tau in (0.0, 0.5, 1.0):
        out = to_numpy(LogitAdjustment(counts, tau=tau)(logits))
        np.testing.assert_allclose(out, logits - tau * np.log(priors), rtol=1e-6,
                                   atol=1e-6)
    # Priors or counts give the same layer.
    np.testing.assert_allclose(to_numpy(LogitAdjustment(priors.tolist())(logits)),
                               to_numpy(LogitAdjustment(counts)(logits)), atol=1e-6)


def test_threshold_decision_oracle():
    scores = np.array([[0.2, 0.5, 0.9], [0.3, 0.49, 0.0], [0.1, 0.7, 1.0]],
                      dtype="float32")
    thresholds = [0.2, 0.5, 1.0]
    out = to_numpy(ThresholdDecision(thresholds)(scores))
    np.testing.assert_array_equal(out, scores >= np.float32(thresholds))
    assert out[0, 0] == 1.0 and out[0, 1] == 1.0  # equality decides positive
    np.testing.assert_array_equal(to_numpy(ThresholdDecision(0.5)(scores)),
                                  scores >= 0.5)
    # float32(0.7) < 0.7: that float32 score is below the float64 threshold.
    close = np.array([[np.float32(0.7), np.nextafter(np.float32(0.7), np.float32(1))]])
    expected = close.astype(np.float64) >= np.float64(0.7)
    assert expected.tolist() == [[False, True]]
    np.testing.assert_array_equal(to_numpy(ThresholdDecision([0.7, 0.7])(close)),
                                  expected)
    np.testing.assert_array_equal(to_numpy(ThresholdDecision(0.7)(close)), expected)


LAYERS = {
    "cosine": lambda: CosineDense(4, scale=10.0),
    "adjust": lambda: LogitAdjustment([40, 10, 5, 1], tau=0.7),
    "decide": lambda: ThresholdDecision([0.1, 0.3, 0.5, 0.7]),
}


def test_symbolic_call_and_float16_inputs():
    x16 = np.random.default_rng(2).uniform(size=(3, 4)).astype("float16")
    for name, make in LAYERS.items():
        layer = make()
        symbolic = layer(keras.Input((4,)))
        assert tuple(symbolic.shape) == (None, 4), name
        out16 = layer(x16)
        assert keras.backend.standardize_dtype(out16.dtype) == "float32", name
        expected = to_numpy(layer(x16.astype("float32")))
        np.testing.assert_allclose(to_numpy(out16), expected, atol=1e-6, err_msg=name)


def test_mixed_float16_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")  # conftest restores it
    x = np.random.default_rng(3).uniform(size=(5, 4)).astype("float32")
    for name, make in LAYERS.items():
        layer = make()
        out = layer(x)
        assert keras.backend.standardize_dtype(out.dtype) == "float16", name
        assert np.all(np.isfinite(to_numpy(out))), name
    x16 = x.astype("float16")
    decisions = to_numpy(ThresholdDecision([0.1, 0.3, 0.5, 0.7])(x16))
    np.testing.assert_array_equal(
        decisions, x16.astype("float32") >= np.float32([0.1, 0.3, 0.5, 0.7]))


def test_config_round_trip():
    x = np.random.default_rng(4).uniform(size=(3, 4)).astype("float32")
    layers = [make() for make in LAYERS.values()]
    layers.append(CosineDense(2, kernel_initializer=keras.initializers.Ones()))
    layers.append(ThresholdDecision(0.25))
    for layer in layers:
        config = layer.get_config()
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer))
        assert type(restored) is type(layer)
        assert restored.get_config() == config
        if not isinstance(layer, CosineDense):
            np.testing.assert_allclose(to_numpy(restored(x)), to_numpy(layer(x)))
    assert layers[0].get_config()["kernel_initializer"] is None
    assert layers[3].get_config()["kernel_initializer"]["class_name"] == "Ones"


def test_fit_and_keras_file(tmp_path):
    """One model holding all three layers: a fit step, then .keras save/load.

    ThresholdDecision has no gradient, so it is a second output without a loss
    (as when a deployed model also returns its decisions).
    """
    rng = np.random.default_rng(5)
    x = rng.normal(size=(48, 6)).astype("float32")
    x[0] = 0.0  # cosine of a zero vector must not give NaN gradients
    y = rng.choice(4, size=48, p=[0.5, 0.3, 0.15, 0.05])
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    cosine = CosineDense(4, scale=10.0)
    logits = cosine(hidden)
    adjusted = LogitAdjustment(np.bincount(y, minlength=4) + 1, tau=1.0)(logits)
    probs = keras.layers.Softmax(name="probs")(adjusted)
    decisions = ThresholdDecision([0.2, 0.3, 0.4, 0.5], name="decisions")(probs)
    model = keras.Model(inputs, {"probs": probs, "decisions": decisions})
    model.compile(optimizer="adam",
                  loss={"probs": "sparse_categorical_crossentropy"})
    before = to_numpy(cosine.kernel)
    history = model.fit(x, {"probs": y}, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = to_numpy(cosine.kernel)
    assert np.all(np.isfinite(after)) and not np.allclose(before, after)

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    kinds = {type(layer).__name__ for layer in restored.layers}
    assert {"CosineDense", "LogitAdjustment", "ThresholdDecision"} <= kinds
    expected, got = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    np.testing.assert_allclose(got["probs"], expected["probs"], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got["decisions"], expected["decisions"])
    np.testing.assert_array_equal(
        expected["decisions"], expected["probs"] >= np.float32([0.2, 0.3, 0.4, 0.5]))


def test_cosine_dense_bad_arguments():
    for units in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="argument `units`. Expected an int >= 1"):
            CosineDense(units)
    for scale in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="argument `scale`. Expected a finite "
                           "float > 0"):
            CosineDense(3, scale=scale)


def test_logit_adjustment_bad_priors():
    for priors in ([0.5, 0.0, 0.5], [1, -1], [], [[1, 2]], None, [1.0, float("nan")]):
        with pytest.raises(ValueError, match="argument `class_priors`"):
            LogitAdjustment(priors)


def test_logit_adjustment_bad_tau():
    with pytest.raises(ValueError, match=r"argument `tau`. Expected a finite float "
                       r">= 0"):
        LogitAdjustment([1, 2], tau=-1.0)


def test_logit_adjustment_wrong_length():
    with pytest.raises(ValueError, match=r"argument `class_priors`. Expected one "
                       r"entry per input column \(a sequence of length 4"):
        LogitAdjustment([1, 2, 3])(keras.Input((4,)))


def test_threshold_decision_out_of_range():
    for thresholds in (1.5, -0.1, [0.2, 1.01], [float("nan")], float("inf")):
        with pytest.raises(ValueError, match="argument `thresholds`"):
            ThresholdDecision(thresholds)
    with pytest.raises(ValueError, match=r"argument `thresholds`. Expected values in "
                       r"\[0, 1\]"):
        ThresholdDecision([0.2, -0.5])


def test_threshold_decision_bad_shape():
    for thresholds in ([], [[0.1, 0.2]], "0.5", None):
        with pytest.raises(ValueError, match="argument `thresholds`. Expected a "):
            ThresholdDecision(thresholds)


def test_threshold_decision_wrong_length():
    with pytest.raises(ValueError, match=r"argument `thresholds`. Expected one entry "
                       r"per input column \(a sequence of length 3"):
        ThresholdDecision([0.1, 0.2])(np.zeros((2, 3), dtype="float32"))


@pytest.mark.parametrize("scale", [1e308, 1e4 * (1 + 1e-9), float("nan"), True, "2"])
def test_cosine_dense_scale_bounded(scale):
    with pytest.raises(ValueError, match=r"argument `scale`. Expected a finite float "
                       r".*10000.*Received: scale="):
        CosineDense(3, scale=scale)


def test_cosine_dense_largest_scale_is_finite_in_float16():
    layer = CosineDense(2, scale=1e4, kernel_initializer="ones", dtype="float16")
    out = to_numpy(layer(np.array([[1.0, 0.0], [-3.0, 0.0]], dtype="float16")))
    assert np.all(np.isfinite(out)) and np.abs(out).max() == pytest.approx(
        1e4 / np.sqrt(2), rel=1e-3)


@pytest.mark.parametrize("initializer", ["no_such_initializer", 3, ["ones"]])
def test_cosine_dense_bad_initializer(initializer):
    with pytest.raises(ValueError, match="argument `kernel_initializer`. Expected "
                       "None, a Keras initializer"):
        CosineDense(3, kernel_initializer=initializer)


@pytest.mark.parametrize("tau", [1e308, 1e4 * (1 + 1e-9), float("inf"), True, None])
def test_logit_adjustment_tau_bounded(tau):
    with pytest.raises(ValueError, match=r"argument `tau`. Expected a finite float "
                       r".*10000.*Received: tau="):
        LogitAdjustment([1, 2], tau=tau)


@pytest.mark.parametrize("priors", [[1e308, 1e308, 1.0], [1e-308, 1e308],
                                    [5e-324, 1.0], [3, 1e300, 7]])
def test_logit_adjustment_extreme_priors_stay_finite(priors):
    """Normalised in log space: no overflow of sum(priors), no log(0)."""
    layer = LogitAdjustment(priors, tau=1e4)
    out = to_numpy(layer(np.zeros((1, len(priors)), dtype="float32")))
    assert np.all(np.isfinite(out))
    logs = np.log(np.asarray(priors, dtype=np.float64))
    expected = -1e4 * (logs - np.logaddexp.reduce(logs))
    np.testing.assert_allclose(out[0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("priors", [[0.0, 1.0], [1e309, 1.0], [10**400, 1],
                                    ["a", "b"], [[1.0, 2.0]]])
def test_logit_adjustment_priors_zero_or_overflowing(priors):
    with pytest.raises(ValueError, match="argument `class_priors`. Expected"):
        LogitAdjustment(priors)


@pytest.mark.parametrize("thresholds", [True, np.True_, [True, False], [0.5, None],
                                        {"a": 0.5}, b"0.5", {0.5}])
def test_threshold_decision_rejects_flags_and_objects(thresholds):
    with pytest.raises(ValueError, match=r"argument `thresholds`. Expected a float "
                       r"or a non-empty 1-D sequence"):
        ThresholdDecision(thresholds)


@pytest.mark.parametrize("thresholds", [float("nan"), [0.3, float("nan")],
                                        [float("-inf")], 1e308])
def test_threshold_decision_rejects_non_finite(thresholds):
    with pytest.raises(ValueError, match=r"argument `thresholds`. Expected values in "
                       r"\[0, 1\]"):
        ThresholdDecision(thresholds)
