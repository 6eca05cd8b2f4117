"""`python -m kimbalance`: version, Keras, backend, devices and local datasets."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import kimbalance  # noqa: E402
from kimbalance._env import backend_info  # noqa: E402
from kimbalance.data import available_datasets  # noqa: E402


def main():
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
    main()
