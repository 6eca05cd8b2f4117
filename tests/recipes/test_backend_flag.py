"""recipes/_backend.py: the keras-free `--backend` pre-parse every script runs."""

import os
import subprocess
import sys

import pytest

from recipes._backend import preparse_flag, select_backend


@pytest.mark.parametrize("argv, expected", [
    (["--backend", "torch", "--quiet"], "torch"),
    (["--quiet", "--backend=jax"], "jax"),
    (["--backend"], None),
    (["--quiet"], None),
])
def test_preparse_flag(argv, expected):
    assert preparse_flag(argv, "--backend") == expected


def test_select_backend_precedence(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert select_backend(["--backend", "jax"], default="torch") == "jax"
    assert os.environ["KERAS_BACKEND"] == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert select_backend([], default="torch") == "tensorflow"
    monkeypatch.delenv("KERAS_BACKEND")
    assert select_backend([], default="torch") == "torch"
    monkeypatch.delenv("KERAS_BACKEND")
    assert select_backend([]) is None
    assert "KERAS_BACKEND" not in os.environ


@pytest.mark.usefixtures("torch")  # the subprocess runs on torch
def test_flag_reaches_keras_before_import():
    """A script's `--backend` wins over the environment's KERAS_BACKEND."""
    code = ("import sys; from recipes._backend import select_backend; "
            "select_backend(sys.argv[1:]); import keras; "
            "print(keras.backend.backend())")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", code, "--backend", "torch"],
                         capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__)))))
    assert out.stdout.strip().splitlines()[-1] == "torch"
