"""kimbalance.training.SharpnessAwareModel(sharpness_classes=...): ImbSAM."""

import _training_helpers as helpers
import keras
import numpy as np
import pytest
from _training_helpers import NUM_CLASSES, Batches
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance import training

# Shared with the other test_training*.py files.
_data, _error, _loss, _twins, _weights = (
    helpers.data, helpers.error, helpers.loss, helpers.twins, helpers.weights)


def _fit(model, batches, epochs=2, loss=None):
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=loss or _loss(), metrics=["accuracy"])
    return model.fit(batches, epochs=epochs, verbose=0, shuffle=False)


def test_imbsam_with_every_class_is_sam():
    first, second = _twins()
    x, y = _data()
    sam = _fit(training.SharpnessAwareModel(first, rho=0.3), Batches(x, y))
    imbsam = _fit(training.SharpnessAwareModel(
        second, rho=0.3, sharpness_classes=list(range(NUM_CLASSES))), Batches(x, y))
    for path, value in _weights(first).items():
        np.testing.assert_allclose(_weights(second)[path], value, rtol=1e-5,
                                   atol=1e-6, err_msg=path)
    np.testing.assert_allclose(imbsam.history["loss"], sam.history["loss"],
                               rtol=1e-5)


def test_imbsam_with_rho_zero_is_the_plain_step():
    plain, wrapped = _twins()
    x, y = _data()
    weights = np.linspace(0.5, 2.0, len(y)).astype("float32")  # sample weights too
    plain_history = _fit(plain, Batches(x, y, sample_weight=weights))
    history = _fit(training.SharpnessAwareModel(wrapped, rho=0.0,
                                                sharpness_classes=[2]),
                   Batches(x, y, sample_weight=weights))
    for path, value in _weights(plain).items():  # moving statistics included
        np.testing.assert_allclose(_weights(wrapped)[path], value, rtol=1e-5,
                                   atol=1e-6, err_msg=path)
    np.testing.assert_allclose(history.history["loss"],
                               plain_history.history["loss"], rtol=1e-5)


def test_imbsam_differs_from_sam_and_reports_the_full_loss():
    first, second, third = _twins(count=3, dropout=False)
    x, y = _data(n=8)
    sam = _fit(training.SharpnessAwareModel(first, rho=0.5), Batches(x, y), 1)
    imbsam = _fit(training.SharpnessAwareModel(second, rho=0.5,
                                               sharpness_classes=[0]),
                  Batches(x, y), 1)
    plain = _fit(third, Batches(x, y), 1)
    kernels = [_weights(m)["head/kernel"] for m in (first, second, third)]
    assert not np.allclose(kernels[0], kernels[1])
    assert not np.allclose(kernels[1], kernels[2])
    # The loss of the first pass: the whole batch at the unperturbed weights.
    np.testing.assert_allclose(imbsam.history["loss"], sam.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(plain.history["loss"], sam.history["loss"], rtol=1e-6)


def test_imbsam_reads_one_hot_labels_and_counts_regularization_once():
    regularizer = keras.regularizers.L2(0.1)
    first, second = _twins(dropout=False, regularizer=regularizer)
    x, y = _data()
    one_hot = np.eye(NUM_CLASSES, dtype="float32")[y]
    sparse = _fit(training.SharpnessAwareModel(first, rho=0.2, sharpness_classes=[1]),
                  Batches(x, y))
    dense = _fit(training.SharpnessAwareModel(second, rho=0.2, sharpness_classes=[1]),
                 Batches(x, one_hot),
                 loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    for path, value in _weights(first).items():
        np.testing.assert_allclose(_weights(second)[path], value, rtol=1e-5,
                                   atol=1e-6, err_msg=path)
    np.testing.assert_allclose(dense.history["loss"], sparse.history["loss"],
                               rtol=1e-5)
    # The reported loss counts the L2 penalty once, like a plain fit's.
    plain, fresh = _twins(dropout=False, regularizer=regularizer)
    wrapped = training.SharpnessAwareModel(fresh, rho=0.0, sharpness_classes=[1])
    np.testing.assert_allclose(_fit(wrapped, Batches(x, y)).history["loss"],
                               _fit(plain, Batches(x, y)).history["loss"], rtol=1e-5)


def _imbsam_oracle(x, y, kernel, bias, tail, *, rho, learning_rate):
    """One ImbSAM step of SGD, linear softmax classifier, float64:
    grad L_head(w) + grad L_tail(w + rho g_tail / ||g_tail||)."""
    onehot = np.eye(kernel.shape[1])[y]
    is_tail = np.isin(y, tail)[:, None]

    def gradients(w, b, mask):
        z = x @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        delta = (p - onehot) * mask / len(y)
        return x.T @ delta, delta.sum(axis=0)

    h_w, h_b = gradients(kernel, bias, ~is_tail)
    t_w, t_b = gradients(kernel, bias, is_tail)
    norm = np.sqrt(np.sum(t_w**2) + np.sum(t_b**2)) + 1e-12
    t_w, t_b = gradients(kernel + rho * t_w / norm, bias + rho * t_b / norm, is_tail)
    return (kernel - learning_rate * (h_w + t_w), bias - learning_rate * (h_b + t_b))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), rho=st.floats(0.01, 2.0),
       tail=st.sets(st.integers(0, 2), min_size=1, max_size=2),
       batch=st.integers(3, 9))
def test_imbsam_step_matches_the_float64_oracle(seed, rho, tail, batch):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, 3)).astype("float32").astype("float64")
    y = rng.integers(0, 3, size=batch)
    kernel = rng.normal(size=(3, 3)).astype("float32").astype("float64")
    bias = rng.normal(size=3).astype("float32").astype("float64")
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(3)
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([kernel, bias])
    wrapped = training.SharpnessAwareModel(model, rho=rho,
                                           sharpness_classes=sorted(tail))
    wrapped.compile(optimizer=keras.optimizers.SGD(0.1), loss=_loss())
    wrapped.fit(x.astype("float32"), y, batch_size=batch, epochs=1, verbose=0)
    expected_kernel, expected_bias = _imbsam_oracle(
        x, y, kernel, bias, sorted(tail), rho=rho, learning_rate=0.1)
    got_kernel, got_bias = dense.get_weights()
    np.testing.assert_allclose(got_kernel, expected_kernel, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_bias, expected_bias, rtol=1e-4, atol=1e-5)


def test_imbsam_round_trips_through_config_and_keras_files(tmp_path):
    (model,) = _twins(count=1)
    wrapped = training.SharpnessAwareModel(model, 0.1, sharpness_classes=(2, 0),
                                           name="imbsam")
    wrapped.compile(optimizer="adam", loss=_loss())
    x, y = _data()
    wrapped.fit(x, y, epochs=1, verbose=0)
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(wrapped))
    assert again.sharpness_classes == [2, 0] and again.rho == 0.1
    path = tmp_path / "imbsam.keras"
    wrapped.save(path)
    restored = keras.saving.load_model(path)
    assert restored.sharpness_classes == [2, 0]
    np.testing.assert_allclose(restored.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    restored.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("classes, text", [
    ([], "[]"), ([-1], "[-1]"), ([1, 1], "[1, 1]"), ("tail", "'tail'"),
    ([True], "[True]"), ([1.5], "[1.5]"), (2, "2"),
])
def test_imbsam_errors(classes, text):
    (model,) = _twins(count=1)
    with pytest.raises(ValueError, match=_error("sharpness_classes", text)):
        training.SharpnessAwareModel(model, sharpness_classes=classes)
