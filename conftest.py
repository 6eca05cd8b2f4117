"""Process-wide test setup; runs before keras (and so any backend) is imported."""

import importlib.abc
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
_TMP = tempfile.mkdtemp(prefix="kimbalance-test-")
os.environ["KERAS_HOME"] = os.path.join(_TMP, "keras")
os.environ["MPLCONFIGDIR"] = os.path.join(_TMP, "mpl")
os.environ.setdefault("MPLBACKEND", "Agg")

# Optional packages can be blocked for a run, to check that an install without
# them (torch is an extra, not a core dependency) runs its tests:
# KIMBALANCE_TEST_BLOCK=torch,monai makes `import torch` (and its submodules)
# raise ModuleNotFoundError as if it were not installed. Tests that need one
# skip with a reason (the `torch` fixture, pytest.importorskip); the others run.
# Only meaningful on the jax and tensorflow backends (the torch backend *is*
# torch). Subprocesses that run pytest inherit the block through the variable.
BLOCKED = frozenset(name.strip() for name in
                    os.environ.get("KIMBALANCE_TEST_BLOCK", "").split(",")
                    if name.strip())


class _BlockedImports(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder that refuses the packages in `BLOCKED`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (blocked by KIMBALANCE_TEST_BLOCK)",
                name=fullname)
        return None


if BLOCKED:
    _backend = os.environ["KERAS_BACKEND"]
    if _backend in BLOCKED:
        raise RuntimeError(f"KIMBALANCE_TEST_BLOCK blocks the backend itself "
                           f"(KERAS_BACKEND={_backend}): run it on another backend")
    _already = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
    if _already:  # imported before this file ran (a plugin): the block could not hold.
        raise RuntimeError(f"KIMBALANCE_TEST_BLOCK: {_already[:3]} already imported")
    sys.meta_path.insert(0, _BlockedImports())

# torch before tensorflow in one process (both bundle native libraries); tests
# on every backend may use torch as an oracle.
try:
    import torch as _torch  # noqa: F401
except ImportError:  # torch is an optional extra
    _torch = None

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


@pytest.fixture(scope="session")
def torch():
    """The torch module, for tests that need it (an oracle, a torch subprocess).

    Skips the test where torch is not installed (or is blocked, see above).
    """
    return pytest.importorskip(
        "torch", reason="torch is an optional extra; this test needs it")


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
