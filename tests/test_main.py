"""`python -m kimbalance --version` and its command-line arguments."""

import runpy
import sys

import pytest

import kimbalance
from kimbalance.__main__ import main


def test_version_flag_prints_the_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"kimbalance {kimbalance.__version__}\n"


def test_version_flag_through_python_m(monkeypatch, capsys):
    """`python -m kimbalance --version`: the module run as `__main__` (in process:
    a new interpreter would only re-import keras and the backend)."""
    monkeypatch.setattr(sys, "argv", ["kimbalance", "--version"])
    # Run it afresh, as the interpreter would (runpy warns about a module
    # already imported).
    monkeypatch.delitem(sys.modules, "kimbalance.__main__")
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("kimbalance", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"kimbalance {kimbalance.__version__}\n"


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
