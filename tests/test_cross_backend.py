"""A .keras model with kimbalance layers and loss, saved here, loads on another backend.

One subprocess per run: torch -> jax, jax -> tensorflow, tensorflow -> torch.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kimbalance
from kimbalance.layers import CosineDense, LogitAdjustment, ThresholdDecision

pytestmark = pytest.mark.slow

NEXT_BACKEND = {"torch": "jax", "jax": "tensorflow", "tensorflow": "torch"}
HELPER = os.path.join(os.path.dirname(__file__), "_helpers", "cross_backend_load.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THRESHOLDS = [0.3, 0.45, 0.2]


def _installed(module):
    """Whether `module` is importable (False where KIMBALANCE_TEST_BLOCK blocks it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the root conftest's block of an optional package
        return False


def focal_loss():
    """kimbalance's FocalCrossentropy, or None while it is not written yet."""
    cls = getattr(kimbalance.losses, "FocalCrossentropy", None)
    return None if cls is None else cls(gamma=2.0, alpha=[0.25, 0.5, 0.25])


@pytest.fixture(scope="module")
def saved_and_loaded(tmp_path_factory):
    """Trains and saves here; the other backend loads and predicts once."""
    backend = NEXT_BACKEND[keras.backend.backend()]
    if not _installed(backend):
        pytest.skip(f"the {backend} backend is not installed (an optional extra)")
    directory = str(tmp_path_factory.mktemp("cross_backend"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")
    y = rng.choice(3, size=40, p=[0.6, 0.3, 0.1]).astype("int32")
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    logits = CosineDense(3, scale=8.0)(hidden)
    adjusted = LogitAdjustment(np.bincount(y, minlength=3), tau=1.0)(logits)
    probs = keras.layers.Softmax()(adjusted)
    model = keras.Model(inputs, probs)
    loss = focal_loss()
    model.compile(optimizer="adam",
                  loss=loss if loss is not None else "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    deployed = keras.Model(inputs, ThresholdDecision(THRESHOLDS)(probs))
    model.save(os.path.join(directory, "model.keras"))
    deployed.save(os.path.join(directory, "deployed.keras"))
    np.savez(os.path.join(directory, "data.npz"), x=x, y=y)

    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
               TF_ENABLE_ONEDNN_OPTS="0", JAX_PLATFORMS="cpu",
               KERAS_HOME=os.path.join(directory, "keras_home"))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, env.get("PYTHONPATH")) if p)
    completed = subprocess.run([sys.executable, HELPER, directory], env=env,
                               cwd=ROOT, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    loaded = np.load(os.path.join(directory, "loaded.npz"))
    here = {
        "probs": model.predict(x, batch_size=len(x), verbose=0),
        "loss": model.evaluate(x, y, batch_size=len(x), verbose=0),
        "decisions": deployed.predict(x, batch_size=len(x), verbose=0),
        "loss_class": type(model.loss).__name__,
    }
    return backend, here, loaded


def test_layers_load_and_predict_on_another_backend(saved_and_loaded):
    backend, here, loaded = saved_and_loaded
    assert str(loaded["backend"]) == backend
    assert {"CosineDense", "LogitAdjustment", "ThresholdDecision"} <= set(
        loaded["layer_classes"].tolist())
    np.testing.assert_allclose(loaded["probs"], here["probs"], rtol=1e-5, atol=1e-6)
    # Decisions agree wherever float rounding across backends cannot flip them.
    clear = np.abs(here["probs"] - np.float32(THRESHOLDS)) > 1e-5
    np.testing.assert_array_equal(loaded["decisions"][clear], here["decisions"][clear])
    np.testing.assert_array_equal(here["decisions"], here["probs"] >= np.float32(
        THRESHOLDS))


def test_loss_loads_and_evaluates_on_another_backend(saved_and_loaded):
    if focal_loss() is None:
        pytest.skip("kimbalance.losses.FocalCrossentropy is not available yet")
    _, here, loaded = saved_and_loaded
    assert here["loss_class"] == "FocalCrossentropy"
    assert str(loaded["loss_class"]) == "FocalCrossentropy"
    np.testing.assert_allclose(float(loaded["loss"]), here["loss"], rtol=1e-5)
