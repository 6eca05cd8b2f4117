"""What ran where: the one description of the backend, devices and host.

`python -m kimbalance`, the experiment tables and every benchmark describe
their environment through this module, so they agree on what they report.
The backend frameworks (torch, jax, tensorflow) are imported only inside
`devices`, for the backend that is active: describing a torch run never
loads TensorFlow.
"""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import platform
from collections.abc import Iterable

import keras
import numpy as np

from kimbalance._validation import check_choice

__all__ = [
    "BACKENDS",
    "backend_info",
    "cpu_model",
    "devices",
    "machine_description",
    "package_versions",
]

BACKENDS = ("torch", "jax", "tensorflow")

# Distribution names that provide each package (the first installed one wins).
_DISTRIBUTIONS = {
    "keras": ("keras",),
    "torch": ("torch",),
    "jax": ("jax",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
}


def devices(backend: str | None = None) -> list[str]:
    """The accelerator / CPU devices `backend` sees, as short strings.

    Imports the backend's framework (only that one).

    Args:
        backend: `"torch"`, `"jax"` or `"tensorflow"`; default: the active
            Keras backend.

    Returns:
        A non-empty list such as `["cpu"]` or `["cuda:0 (NVIDIA H200)"]`.

    Raises:
        ValueError: for an unknown backend name.

    Examples:

    >>> len(devices()) >= 1
    True
    """
    backend = keras.backend.backend() if backend is None else backend
    check_choice("backend", backend, BACKENDS)
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                    for i in range(torch.cuda.device_count())]
        return ["cpu"]
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return [d.name for d in gpus] or ["cpu"]


def package_versions(names: Iterable[str] = ("keras", "torch", "jax", "tensorflow"),
                     ) -> dict[str, str | None]:
    """Installed versions from the package metadata (nothing is imported).

    Examples:

    >>> package_versions(["keras"])["keras"] == keras.__version__
    True
    """
    versions: dict[str, str | None] = {}
    for name in names:
        versions[name] = None
        for dist in _DISTRIBUTIONS.get(name, (name,)):
            try:
                versions[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else the platform's."""
    name = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name


def backend_info() -> dict[str, object]:
    """The active backend, its version, devices and the host (for tables).

    Examples:

    >>> sorted(backend_info())
    ['backend', 'backend_version', 'cpus', 'device', 'keras', 'machine', 'python']
    """
    backend = keras.backend.backend()
    return {
        "backend": backend,
        "backend_version": package_versions([backend])[backend] or "?",
        "device": ", ".join(devices(backend)),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
    }


def machine_description() -> str:
    """One line for a benchmark table: CPU, cores, OS and package versions.

    Examples:

    >>> "logical CPUs" in machine_description()
    True
    """
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    for name, version in package_versions().items():
        versions.append(f"{name} {version or '(not installed)'}")
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
            f"{platform.release()}; " + ", ".join(versions)
            + f" (Keras backend {keras.backend.backend()})")
