"""Keras-free start-up shared by the recipe and benchmark scripts.

The Keras backend is read once, when keras is first imported, so a script's
`--backend` flag must reach `KERAS_BACKEND` before the script imports
kimbalance or keras. This module imports neither: scripts import it first.
"""

import os


def preparse_flag(argv, flag):
    """The value of `flag` in `argv` (`--flag VALUE` or `--flag=VALUE`), else None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def select_backend(argv, *, default=None, flag="--backend", disable_onednn=False):
    """Sets KERAS_BACKEND from `flag` in argv (else keeps it, else `default`).

    Also quiets TensorFlow's C++ logging, which must happen before TensorFlow
    loads. `disable_onednn=True` also turns TensorFlow's oneDNN graph rewrites
    off (benchmarks do, for run-to-run reproducible float results; recipes keep
    TensorFlow's faster default). Returns the backend name that will be used,
    or None when neither the flag, the environment nor `default` names one
    (Keras then picks its own default).
    """
    backend = (preparse_flag(argv, flag) or os.environ.get("KERAS_BACKEND")
               or default)
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Keras' own model serialization (get_config, clone_model, saving) imports
    # TensorFlow whenever it is installed, even on torch / jax, where it is
    # never used to compute: its oneDNN rewrites are then irrelevant and its
    # start-up line is noise, so they are turned off there.
    if disable_onednn or (backend or "").lower() in ("torch", "jax"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return backend
