"""kimbalance: deep learning on class-imbalanced data with Keras 3.

Runs unchanged on the PyTorch, JAX and TensorFlow backends. Set
`KERAS_BACKEND` before importing kimbalance (or keras): the backend is fixed
when keras is imported.

The serializable parts (losses, layers, metrics) are imported here so that
`import kimbalance` is enough for `keras.saving.load_model` to find them.
"""

__version__ = "0.5.1"

from kimbalance import (  # noqa: E402
    callbacks,
    data,
    distributed,
    evaluation,
    layers,
    losses,
    metrics,
    models,
    plots,
    thresholds,
    training,
    weights,
)
from kimbalance.evaluation import *  # noqa: E402,F403

__all__ = [
    "__version__",
    "callbacks",
    "data",
    "distributed",
    "layers",
    "losses",
    "metrics",
    "models",
    "plots",
    "thresholds",
    "training",
    "weights",
    *evaluation.__all__,
]
