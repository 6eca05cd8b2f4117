"""The release: sdist and wheel build cleanly, and the wheel installs and trains.

`python -m build` (no build isolation: the installed setuptools, offline)
makes the sdist and the wheel from a copy of the source tree, with no warning
in its output; the sdist is the whole source release (MANIFEST.in: the package,
tests, docs, recipes, benchmarks, Makefile, pins), the wheel only the package;
`twine check --strict` passes; the wheel is installed (no `-e`)
into a fresh virtual environment that borrows the dependencies of the running
one through a `.pth` file, imported from outside the repository (so the
wheel's files, not the source tree, are imported) and trained for one `fit`
step, with its metadata and data files checked.

Runs on the torch backend only: the wheel is pure Python and the same for
every backend, and the build and the fresh interpreter take ~40 s, so one
backend (torch, the first one CI runs) shows that the installed package
imports and trains; the other backends' `fit` is covered by the rest of the
suite.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

import kimbalance

pytestmark = [
    pytest.mark.slow,
    pytest.mark.torch_only(reason="the wheel is pure Python and backend-neutral; "
                                  "one backend shows it installs and trains"),
]

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = kimbalance.__version__
# What the wheel must carry besides the modules.
DATA_FILES = ["kimbalance/py.typed"]
# What a source user needs in the sdist, besides every module (MANIFEST.in).
SDIST_FILES = [
    "PKG-INFO", "LICENSE", "README.md", "pyproject.toml", "MANIFEST.in", "Makefile",
    "requirements/constraints.txt", "kimbalance/py.typed", "conftest.py",
    "tests/test_packaging.py", "tests/losses/autodiff_helper.py", "mkdocs.yml",
    "docs/index.md", "recipes/long_tail.py", "benchmarks/run_all.py", "BENCHMARKS.md",
]
# Copied neither into the build's source tree nor (so) into the sdist.
NOT_SOURCE = {".git", ".venv", "build", "dist", "runs", "out", ".ci"}
CACHES = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}

INSTALLED_CHECK = r"""
import importlib.metadata
import importlib.resources
import pathlib
import sys

import numpy as np
import keras

import kimbalance
from kimbalance.data import BalancedBatchGenerator, load_dataset
from kimbalance.losses import FocalCrossentropy
from kimbalance.models import mlp

site = pathlib.Path(sys.argv[1]).resolve()
where = pathlib.Path(kimbalance.__file__).resolve()
assert where.is_relative_to(site), (where, site)
assert kimbalance.__version__ == sys.argv[2]
assert importlib.resources.files("kimbalance").joinpath("py.typed").is_file()
meta = importlib.metadata.metadata("kimbalance")
assert meta["License-Expression"] == "Apache-2.0", meta["License-Expression"]
files = [str(f) for f in importlib.metadata.files("kimbalance")]
assert any(f.endswith("licenses/LICENSE") for f in files), files

digits = load_dataset("digits")
x = digits.x_train.reshape(len(digits.x_train), -1).astype("float32") / 16.0
gen = BalancedBatchGenerator(x, digits.y_train, sampler="over", batch_size=64,
                             class_weight="balanced")
model = mlp((64,), 10, hidden=(16,))
model.compile("adam", FocalCrossentropy(gamma=2.0, from_logits=True))
history = model.fit(gen, epochs=1, steps_per_epoch=1, verbose=0)
loss = history.history["loss"][0]
assert np.isfinite(loss), loss
print("installed", keras.backend.backend(), where, f"loss={loss:.4f}")

# `python -m kimbalance --version`, in this interpreter (one start is enough).
import contextlib
import runpy

sys.argv = ["kimbalance", "--version"]
with contextlib.suppress(SystemExit):
    runpy.run_module("kimbalance", run_name="__main__", alter_sys=True)
"""


def _run(args, cwd, env=None, timeout=300):
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, (args, out.stdout[-3000:], out.stderr[-3000:])
    return out.stdout + out.stderr


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist + wheel built from a copy of the source tree; returns (folder, log).

    The copy leaves out what a clone does not have (the virtual environment,
    build outputs, caches), so the build sees what MANIFEST.in sees in CI.
    """
    tmp = tmp_path_factory.mktemp("release")
    source = tmp / "src"

    def ignore(directory, names):
        top = pathlib.Path(directory) == ROOT
        return {n for n in names if (top and n in NOT_SOURCE) or n in CACHES
                or n.endswith((".egg-info", ".pyc"))}

    shutil.copytree(ROOT, source, ignore=ignore)
    out = tmp / "dist"
    log = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                str(out), str(source)], cwd=tmp, env=_clean_env())
    return out, log


def test_build_makes_sdist_and_wheel_without_warnings(dist):
    out, log = dist
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"kimbalance-{VERSION}-py3-none-any.whl",
                     f"kimbalance-{VERSION}.tar.gz"]
    noise = [line for line in log.splitlines()
             if "warn" in line.lower() or "deprecat" in line.lower()]
    assert not noise, "\n".join(noise)


def test_twine_check_passes(dist):
    out, _ = dist
    log = _run([sys.executable, "-m", "twine", "check", "--strict",
                *sorted(str(p) for p in out.iterdir())], cwd=out)
    assert log.count("PASSED") == 2, log


def test_wheel_holds_every_module_and_data_file(dist):
    out, _ = dist
    wheel = out / f"kimbalance-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"kimbalance-{VERSION}.dist-info/METADATA").decode()
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "kimbalance").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set()
    assert set(DATA_FILES) <= names
    assert f"kimbalance-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not any(name.startswith(("tests/", "recipes/", "benchmarks/"))
                   for name in names)
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: keras<4,>=3.15.1" in metadata


def test_sdist_holds_the_source_release(dist):
    out, _ = dist
    with tarfile.open(out / f"kimbalance-{VERSION}.tar.gz") as archive:
        prefix = f"kimbalance-{VERSION}/"
        names = {m.name.removeprefix(prefix) for m in archive.getmembers()
                 if m.isfile()}
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "kimbalance").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set()
    assert set(SDIST_FILES) - names == set()
    tests = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
             if "__pycache__" not in p.parts}
    assert tests - names == set()
    assert not any(n.startswith((".ci/", "runs/", "build/")) or "__pycache__" in n
                   or n.endswith(".pyc") for n in names), sorted(names)
    # In a git checkout: every tracked file but the CI driver is in the sdist
    # (a new kind of file under docs/ needs a MANIFEST.in line).
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.splitlines()
        tracked = {n for n in listed if (ROOT / n).is_file()
                   and not n.startswith(".ci/") and n != ".gitignore"}
        assert tracked - names == set()


def test_wheel_installs_into_a_fresh_venv_and_trains(dist, tmp_path):
    out, _ = dist
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; "
                 "print(sysconfig.get_path('purelib'))"], cwd=tmp_path).strip()
    # The dependencies (keras, numpy, a backend) come from the running
    # environment; kimbalance itself only from the wheel.
    (pathlib.Path(site) / "_kimbalance_test_deps.pth").write_text(
        sysconfig.get_path("purelib") + "\n")
    wheel = out / f"kimbalance-{VERSION}-py3-none-any.whl"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
          "--no-deps", "--no-index", str(wheel)], cwd=tmp_path, env=_clean_env())
    script = tmp_path / "check_installed.py"
    script.write_text(INSTALLED_CHECK)
    env = _clean_env(KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="2",
                     KERAS_HOME=str(tmp_path / "keras"))
    log = _run([str(python), str(script), site, VERSION], cwd=tmp_path, env=env)
    assert "installed torch" in log, log
    assert f"\nkimbalance {VERSION}\n" in log, log
