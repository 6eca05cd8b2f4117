"""torch (and MONAI, which needs it) are optional: a jax-only install runs its tests.

The root conftest blocks the packages named in KIMBALANCE_TEST_BLOCK (a
`sys.meta_path` finder: importing them raises ModuleNotFoundError as if they
were not installed). With torch and MONAI blocked on the jax backend, the whole
tests/ tree must collect without an error: no test module imports torch at
its top; the tests that use it request the `torch` fixture or call
`pytest.importorskip`, and skip with a reason.
"""

import ast
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = "torch,monai"
BLOCKED = {name.strip()
           for name in os.environ.get("KIMBALANCE_TEST_BLOCK", "").split(",")}


OPTIONAL = {"torch", "monai", "torchvision"}


def test_no_test_module_imports_torch_at_its_top():
    """Static guard (fast, every backend): an unguarded module-level import of
    an optional package would fail a whole module's collection without it."""
    offenders = []
    for path in sorted([ROOT / "conftest.py", *(ROOT / "tests").rglob("*.py")]):
        skipped = set()  # a module-level pytest.importorskip("torch") guards the rest
        for node in ast.parse(path.read_text()).body:
            call = getattr(node, "value", None)
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "importorskip" and call.args
                    and isinstance(call.args[0], ast.Constant)):
                skipped.add(str(call.args[0].value).partition(".")[0])
            if isinstance(node, ast.Import):
                roots = {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").partition(".")[0]}
            else:
                continue  # guarded imports (try/except ImportError) and functions
            if (roots & OPTIONAL) - skipped:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def _pytest(*arguments, timeout=600):
    env = dict(os.environ, KERAS_BACKEND="jax", KIMBALANCE_TEST_BLOCK=BLOCK,
               JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           *arguments], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.jax_only(reason="one run is enough: the subprocess is on jax whatever "
                             "the backend of this run")
def test_the_whole_tree_collects_on_jax_without_torch_and_monai():
    completed = _pytest("--collect-only", "-q", "tests")
    out = completed.stdout + completed.stderr
    assert completed.returncode == 0, out[-4000:]
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s", summary), out[-4000:]
    assert "error" not in summary.lower()
    # The block held (torch is installed here): the one torch-only module
    # skips at collection, saying why.
    assert re.search(r"SKIPPED \[\d+\] tests/data/test_collate.py:\d+: "
                     "collate_with_weights is a collate function for torch", out), \
        out[-4000:]


@pytest.mark.slow
@pytest.mark.jax_only(reason="one run is enough: the subprocess is on jax whatever "
                             "the backend of this run")
def test_the_block_and_the_torch_fixture_in_a_blocked_run():
    completed = _pytest("-q", "-rs", f"{pathlib.Path(__file__).relative_to(ROOT)}",
                        "-k", "inside_a_blocked_run")
    out = completed.stdout + completed.stderr
    assert completed.returncode == 0, out[-4000:]
    assert re.search(r"\b2 passed, 1 skipped\b", out), out[-4000:]
    assert "torch is an optional extra; this test needs it" in out, out[-4000:]


# -- run only by the test above (in a process where torch and MONAI are blocked) --

needs_block = pytest.mark.skipif(not {"torch", "monai"} <= BLOCKED,
                                 reason="runs under KIMBALANCE_TEST_BLOCK=torch,monai")


@needs_block
def test_imports_fail_inside_a_blocked_run():
    for name in ("torch", "torch.nn", "monai", "monai.losses"):
        with pytest.raises(ModuleNotFoundError, match="blocked by KIMBALANCE_TEST_B"):
            importlib.import_module(name)
        assert name not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.util.find_spec("torch")
    # Other packages import as usual; kimbalance itself never needed torch.
    import kimbalance.losses  # noqa: F401

    assert importlib.import_module("numpy").__name__ == "numpy"
    assert not any(name.partition(".")[0] in {"torch", "monai"} for name in sys.modules)


@needs_block
def test_the_torch_fixture_skips_inside_a_blocked_run(request):
    with pytest.raises(pytest.skip.Exception, match="optional extra"):
        request.getfixturevalue("torch")


@needs_block
def test_a_test_requesting_torch_skips_inside_a_blocked_run(torch):
    raise AssertionError("the `torch` fixture must have skipped this test")


def test_blocking_the_backend_itself_is_a_clear_error():
    env = dict(os.environ, KERAS_BACKEND="torch", KIMBALANCE_TEST_BLOCK="torch")
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
         "-q", "tests/test_optional_torch.py"], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0
    assert ("KIMBALANCE_TEST_BLOCK blocks the backend itself (KERAS_BACKEND=torch)"
            in completed.stdout + completed.stderr), completed.stderr[-2000:]
