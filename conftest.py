"""Process-wide test setup; runs before keras (and so any backend) is imported."""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
_TMP = tempfile.mkdtemp(prefix="kimbalance-test-")
os.environ["KERAS_HOME"] = os.path.join(_TMP, "keras")
os.environ["MPLCONFIGDIR"] = os.path.join(_TMP, "mpl")
os.environ.setdefault("MPLBACKEND", "Agg")

# torch before tensorflow in one process (both bundle native libraries); tests
# on every backend may use torch as an oracle.
try:
    import torch  # noqa: F401
except ImportError:  # torch is an optional extra
    torch = None

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Property tests: a small, derandomized budget (same examples on every run and
# backend, so CI is reproducible) and no per-example deadline (the first
# example of a test pays for tracing). Tests raise or lower `max_examples`
# with their own @settings where one example is costly.
settings.register_profile(
    "kimbalance", max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("KIMBALANCE_HYPOTHESIS_PROFILE", "kimbalance"))

BACKEND = keras.backend.backend()


def pytest_collection_modifyitems(config, items):
    for item in items:
        for other in ("torch", "jax", "tensorflow"):
            if item.get_closest_marker(f"{other}_only") and other != BACKEND:
                item.add_marker(pytest.mark.skip(reason=f"needs the {other} backend"))


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    keras.utils.set_random_seed(1337)
    # free_memory=False: skip the full gc.collect() (1-2 s a test on this
    # machine); the global Keras state (names, graphs) is still reset.
    keras.backend.clear_session(free_memory=False)
    previous = keras.mixed_precision.global_policy().name
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["np"] = np
    doctest_namespace["keras"] = keras
