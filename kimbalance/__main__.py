"""`python -m kimbalance`: version, Keras, backend, devices and local datasets."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _devices(backend):
    """Lists the accelerator/CPU devices the active backend sees."""
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                    for i in range(torch.cuda.device_count())]
        return ["cpu"]
    if backend == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return [d.name for d in gpus] or ["cpu"]
    return ["unknown"]


def main():
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "torch":
        import torch  # noqa: F401  (torch before tensorflow in one process)
    import keras

    import kimbalance
    from kimbalance.data import available_datasets

    backend = keras.backend.backend()
    lines = [
        f"kimbalance {kimbalance.__version__}",
        f"keras {keras.__version__}",
        f"backend {backend}",
        f"devices {', '.join(_devices(backend))}",
        f"python {sys.version.split()[0]}",
        "datasets:",
    ]
    for name, where in available_datasets().items():
        lines.append(f"  {name:<14} {where or 'not available locally'}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
