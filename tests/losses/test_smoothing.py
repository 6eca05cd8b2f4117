"""LabelAwareSmoothingCrossentropy (MiSLAS): NumPy oracle, zero smoothing = CE, fit."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.losses import (
    LabelAwareSmoothingCrossentropy,
    label_aware_smoothing_crossentropy,
)
from kimbalance.losses.label_smoothing import class_smoothing

COUNTS = [500, 120, 40, 10]


def _oracle_eps(counts, head, tail, shape):
    """The official MiSLAS formulas, float64."""
    n = np.asarray(counts, dtype=np.float64)
    n1, nk = n.max(), n.min()
    if n1 == nk:
        return np.full_like(n, tail)
    if shape == "concave":
        return tail + (head - tail) * np.sin((n - nk) * np.pi / (2 * (n1 - nk)))
    if shape == "linear":
        return tail + (head - tail) * (n - nk) / (n1 - nk)
    angle = 1.5 * np.pi + (n - nk) * np.pi / (2 * (n1 - nk))
    return head + (head - tail) * np.sin(angle)


def _oracle(labels, logits, counts, head, tail, shape, from_logits=True):
    """-(target * log p) summed, target = (1 - e) q + e / C, e = q . eps."""
    logits = np.asarray(logits, dtype=np.float64)
    num_classes = logits.shape[-1]
    if from_logits:
        z = logits - logits.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    else:
        logp = np.log(logits / logits.sum(axis=-1, keepdims=True))
    labels = np.asarray(labels)
    q = (np.eye(num_classes)[labels] if labels.ndim == 1
         else labels.astype(np.float64))
    eps = q @ _oracle_eps(counts, head, tail, shape)
    target = (1 - eps[:, None]) * q + eps[:, None] / num_classes
    return -(target * logp).sum(axis=-1)


def _values(loss):
    return keras.ops.convert_to_numpy(loss).astype(np.float64)


@pytest.mark.parametrize("shape", ["concave", "linear", "convex"])
def test_class_smoothing_follows_the_official_shapes(shape):
    eps = class_smoothing(COUNTS, 0.4, 0.1, shape)
    np.testing.assert_allclose(eps, _oracle_eps(COUNTS, 0.4, 0.1, shape), atol=1e-12)
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.1)
    assert np.all(np.diff(eps) <= 1e-12)  # falls from head to tail


def test_class_smoothing_shapes_order_and_equal_counts():
    linear = class_smoothing(COUNTS, 0.4, 0.0, "linear")
    assert np.all(class_smoothing(COUNTS, 0.4, 0.0, "concave")[1:-1] > linear[1:-1])
    assert np.all(class_smoothing(COUNTS, 0.4, 0.0, "convex")[1:-1] < linear[1:-1])
    np.testing.assert_array_equal(class_smoothing([7, 7, 7], 0.4, 0.1), [0.1] * 3)


@settings(max_examples=6)
@given(n=st.sampled_from([1, 3, 8]), seed=st.integers(0, 2**16),
       shape=st.sampled_from(["concave", "linear", "convex"]),
       head=st.floats(0.0, 1.0), tail=st.floats(0.0, 1.0))
def test_matches_float64_oracle(n, seed, shape, head, tail):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, 4)).astype(np.float32)
    ids = rng.integers(0, 4, size=n)
    soft = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    for labels in (ids, ids[:, None], np.eye(4, dtype=np.float32)[ids], soft):
        got = label_aware_smoothing_crossentropy(
            labels, logits, class_counts=COUNTS, head_smoothing=head,
            tail_smoothing=tail, shape=shape)
        flat = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
        want = _oracle(flat, logits.astype(np.float64), COUNTS, head, tail, shape)
        np.testing.assert_allclose(_values(got), want, rtol=1e-5, atol=1e-5)


def test_probabilities_input():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    ids = rng.integers(0, 4, size=6)
    got = label_aware_smoothing_crossentropy(ids, probs, class_counts=COUNTS,
                                             from_logits=False)
    want = _oracle(ids, probs, COUNTS, 0.4, 0.1, "concave", from_logits=False)
    np.testing.assert_allclose(_values(got), want, rtol=1e-5)


def test_zero_smoothing_is_cross_entropy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 4)).astype(np.float32)
    ids = rng.integers(0, 4, size=8)
    got = LabelAwareSmoothingCrossentropy(COUNTS, head_smoothing=0.0,
                                          tail_smoothing=0.0)(ids, logits)
    want = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_uniform_smoothing_is_keras_label_smoothing():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(8, 4)).astype(np.float32)
    one_hot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=8)]
    got = LabelAwareSmoothingCrossentropy(COUNTS, head_smoothing=0.2,
                                          tail_smoothing=0.2)(one_hot, logits)
    want = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                label_smoothing=0.2)(one_hot, logits)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_attributes_and_config_round_trip():
    loss = LabelAwareSmoothingCrossentropy(COUNTS, head_smoothing=0.3,
                                           tail_smoothing=0.05, shape="convex",
                                           from_logits=False)
    assert loss.class_counts == COUNTS and loss.shape == "convex"
    assert loss.head_smoothing == 0.3 and loss.tail_smoothing == 0.05
    assert not loss.from_logits and loss.name == "label_aware_smoothing_crossentropy"
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is LabelAwareSmoothingCrossentropy
    assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"class_counts": [3, 0]}, "argument `class_counts`"),
        ({"class_counts": [3.5, 2]}, "argument `class_counts`"),
        ({"class_counts": COUNTS, "head_smoothing": 1.5}, "argument `head_smoothing`"),
        ({"class_counts": COUNTS, "tail_smoothing": -0.1}, "argument `tail_smoothing`"),
        ({"class_counts": COUNTS, "shape": "sqrt"}, "argument `shape`"),
        ({"class_counts": COUNTS, "from_logits": "yes"}, "argument `from_logits`"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LabelAwareSmoothingCrossentropy(**kwargs)
    with pytest.raises(ValueError, match=match):
        label_aware_smoothing_crossentropy(np.array([0]), np.zeros((1, 4)), **kwargs)


def test_invalid_widths_and_labels():
    loss = LabelAwareSmoothingCrossentropy(COUNTS)
    with pytest.raises(ValueError, match="argument `class_counts`.*Expected 3 values"):
        loss(np.array([0, 1]), np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="argument `y_true`"):
        loss(np.array([0, 4]), np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="argument `y_true`"):
        loss(np.full((2, 4), 0.5, dtype=np.float32), np.zeros((2, 4), dtype=np.float32))


def test_fit_then_save_and_load(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.choice(4, size=48, p=[0.55, 0.25, 0.15, 0.05])
    x = rng.normal(size=(48, 6)).astype(np.float32) + labels[:, None]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=LabelAwareSmoothingCrossentropy(np.bincount(labels, minlength=4)
                                                       + 1))
    history = model.fit(x, labels, batch_size=16, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[1] < losses[0]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is LabelAwareSmoothingCrossentropy
    assert loaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
