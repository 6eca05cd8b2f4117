"""kimbalance._env (one environment description) and `python -m kimbalance`.

Also: importing kimbalance and its experiments, asking a recipe for `--help`
or seeding a run on the torch backend never loads TensorFlow (defect 8: its
start-up printed oneDNN log lines in torch runs).
"""

import os
import pathlib
import subprocess
import sys

import keras
import pytest

from kimbalance import _env
from kimbalance import experiments as ex
from kimbalance.__main__ import main

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _python(code, backend, *args, timeout=240):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_backend_info_names_the_backend():
    info = ex.backend_info()
    assert info is not None and info["backend"] == keras.backend.backend()
    assert info["device"] and info["backend_version"] != "?"
    assert ex.backend_info is _env.backend_info


def test_devices_and_versions():
    assert _env.devices() == _env.devices(keras.backend.backend())
    assert _env.package_versions(["keras"]) == {"keras": keras.__version__}
    assert _env.package_versions(["no-such-package"]) == {"no-such-package": None}
    assert keras.__version__ in _env.machine_description()
    with pytest.raises(ValueError, match="argument `backend`"):
        _env.devices("numpy")


def test_main_prints_the_environment(capsys):
    """What `python -m kimbalance` prints (its `main`, in process)."""
    main()
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("kimbalance ")
    assert f"backend {keras.backend.backend()} " in text
    assert any(line.startswith("devices ") for line in lines)
    assert "digits" in text


NO_TENSORFLOW = """
import sys
{body}
assert 'tensorflow' not in sys.modules, sorted(
    m for m in sys.modules if m.startswith('tensorflow'))[:5]
print('no tensorflow')
"""


@pytest.mark.usefixtures("torch")  # the subprocess runs on torch
def test_import_recipe_help_and_seeding_do_not_load_tensorflow():
    """Neither `import kimbalance`, a recipe's `--help` nor seeding a run.

    `keras.utils.set_random_seed` imports TensorFlow whenever it is
    installed; the runner seeds without it on the other backends.
    """
    body = "\n".join([
        "import contextlib, io, runpy",
        "import kimbalance, kimbalance.experiments",
        "sys.argv = ['recipes/long_tail.py', '--help']",
        "with contextlib.redirect_stdout(io.StringIO()), "
        "contextlib.suppress(SystemExit):",
        "    runpy.run_path(sys.argv[0], run_name='__main__')",
        "from kimbalance.experiments import runner",
        "runner.set_random_seed(0)",
        "runner.build_model('mlp', (4,), 3)",
    ])
    out = _python(NO_TENSORFLOW.format(body=body), "torch")
    assert out.returncode == 0 and "no tensorflow" in out.stdout, out.stderr[-3000:]
