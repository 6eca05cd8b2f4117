"""VSLoss: float64 oracle, gamma = 0 is logit adjustment, gamma = tau = 0 is CE, fit."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.losses import LogitAdjustedCrossentropy, VSLoss, vs_loss

COUNTS = [500, 120, 40, 10]


def _oracle(labels, logits, counts, gamma, tau):
    """CE of (n / n_max)**gamma * z + tau * log(n / sum n), float64."""
    counts = np.asarray(counts, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64) * (counts / counts.max()) ** gamma
    z = z + tau * np.log(counts / counts.sum())
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    labels = np.asarray(labels)
    q = np.eye(z.shape[-1])[labels] if labels.ndim == 1 else labels
    return -(q * logp).sum(axis=-1)


def _values(loss):
    return keras.ops.convert_to_numpy(loss).astype(np.float64)


@settings(max_examples=6)
@given(n=st.sampled_from([1, 3, 8]), seed=st.integers(0, 2**16),
       gamma=st.sampled_from([0.0, 0.05, 0.2, 1.0, 3.0]),
       tau=st.sampled_from([0.0, 0.5, 1.0, 2.0]))
def test_matches_float64_oracle(n, seed, gamma, tau):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, 4)).astype(np.float32)
    ids = rng.integers(0, 4, size=n)
    soft = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    for labels, flat in ((ids, ids), (ids[:, None], ids),
                         (np.eye(4, dtype=np.float32)[ids], ids), (soft, soft)):
        got = vs_loss(labels, logits, class_counts=COUNTS, gamma=gamma, tau=tau)
        want = _oracle(flat, logits, COUNTS, gamma, tau)
        np.testing.assert_allclose(_values(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
def test_gamma_zero_is_logit_adjusted_crossentropy(tau):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 4)).astype(np.float32)
    ids = rng.integers(0, 4, size=8)
    got = VSLoss(COUNTS, gamma=0.0, tau=tau)(ids, logits)
    want = LogitAdjustedCrossentropy(COUNTS, tau=tau)(ids, logits)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_gamma_and_tau_zero_is_cross_entropy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(8, 4)).astype(np.float32)
    ids = rng.integers(0, 4, size=8)
    got = VSLoss(COUNTS, gamma=0.0, tau=0.0)(ids, logits)
    want = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_scaling_shrinks_the_tail_logits():
    # The multiplicative part alone: the rarest class's logit is scaled by
    # (10 / 500) ** 1, the head's by 1.
    logits = np.array([[0.0, 0.0, 0.0, 50.0]], dtype=np.float32)
    got = vs_loss(np.array([3]), logits, class_counts=COUNTS, gamma=1.0, tau=0.0)
    want = _oracle(np.array([3]), logits, COUNTS, 1.0, 0.0)
    np.testing.assert_allclose(_values(got), want, rtol=1e-6)
    assert _values(got)[0] > 0.5  # a plain CE of this sample is ~0


def test_attributes_and_config_round_trip():
    loss = VSLoss(COUNTS, gamma=0.3, tau=0.7, reduction="sum")
    assert loss.class_counts == COUNTS and loss.gamma == 0.3 and loss.tau == 0.7
    assert loss.name == "vs_loss"
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is VSLoss and restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"class_counts": [3, 0]}, "argument `class_counts`"),
        ({"class_counts": [-1, 2]}, "argument `class_counts`"),
        ({"class_counts": COUNTS, "gamma": -0.1}, "argument `gamma`"),
        ({"class_counts": COUNTS, "gamma": 1e5}, "argument `gamma`"),
        ({"class_counts": COUNTS, "tau": -1.0}, "argument `tau`.*Received: tau=-1.0"),
        ({"class_counts": COUNTS, "tau": float("inf")}, "argument `tau`"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VSLoss(**kwargs)
    with pytest.raises(ValueError, match=match):
        vs_loss(np.array([0]), np.zeros((1, 4)), **kwargs)


def test_invalid_widths_and_labels():
    loss = VSLoss(COUNTS)
    with pytest.raises(ValueError, match="argument `class_counts`.*Expected 3 values"):
        loss(np.array([0, 1]), np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="argument `y_true`"):
        loss(np.array([0, -1]), np.zeros((2, 4), dtype=np.float32))


def test_fit_then_save_and_load(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.choice(4, size=48, p=[0.55, 0.25, 0.15, 0.05])
    x = rng.normal(size=(48, 6)).astype(np.float32) + labels[:, None]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    counts = np.bincount(labels, minlength=4) + 1
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=VSLoss(counts))
    history = model.fit(x, np.eye(4, dtype=np.float32)[labels], batch_size=16,
                        epochs=2, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[1] < losses[0]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.loss) is VSLoss
    assert loaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
