"""`python -m kimbalance`: version, Keras, backend, devices and local datasets.

`python -m kimbalance --version` prints only the version.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import kimbalance  # noqa: E402
from kimbalance._env import backend_info  # noqa: E402
from kimbalance.data import available_datasets  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kimbalance",
        description="Describe the environment kimbalance runs in: its version, "
                    "Keras, the backend and its devices, the host and the "
                    "datasets available locally.")
    parser.add_argument("--version", action="version",
                        version=f"kimbalance {kimbalance.__version__}")
    return parser


def main(argv: Sequence[str] = ()) -> None:
    """Prints the environment report (or the version with `--version`).

    Args:
        argv: the command-line arguments after the program name; `main()`
            prints the report (`python -m kimbalance` passes `sys.argv[1:]`).
    """
    _parser().parse_args(list(argv))
    info = backend_info()
    lines = [
        f"kimbalance {kimbalance.__version__}",
        f"keras {info['keras']}",
        f"backend {info['backend']} {info['backend_version']}",
        f"devices {info['device']}",
        f"python {info['python']}",
        f"machine {info['machine']}, {info['cpus']} CPUs",
        "datasets:",
    ]
    for name, where in available_datasets().items():
        lines.append(f"  {name:<14} {where or 'not available locally'}")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
