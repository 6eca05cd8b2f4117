"""`python -m kimbalance --version` and its command-line arguments."""

import os
import pathlib
import subprocess
import sys

import pytest

import kimbalance
from kimbalance.__main__ import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_version_flag_prints_the_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"kimbalance {kimbalance.__version__}\n"


def test_version_flag_from_the_command_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "kimbalance", "--version"],
                         cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == f"kimbalance {kimbalance.__version__}\n"


def test_version_is_a_release_version():
    parts = kimbalance.__version__.split(".")
    assert len(parts) == 3 and all(part.isdigit() for part in parts)


def test_unknown_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-flag"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_help_names_the_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--version" in capsys.readouterr().out
