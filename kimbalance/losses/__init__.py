"""Losses for class-imbalanced training: `keras.losses.Loss` classes + functions.

Every loss works on torch, jax and tensorflow, takes class ids (N,) / (N, 1)
or one-hot / soft labels (N, C), and computes in float32 (also under mixed
precision policies).
"""

from kimbalance.losses import crossentropy, focal, logit_adjusted, long_tail, multilabel
from kimbalance.losses.crossentropy import *  # noqa: F403
from kimbalance.losses.focal import *  # noqa: F403
from kimbalance.losses.logit_adjusted import *  # noqa: F403
from kimbalance.losses.long_tail import *  # noqa: F403
from kimbalance.losses.multilabel import *  # noqa: F403

__all__ = [
    *crossentropy.__all__,
    *focal.__all__,
    *logit_adjusted.__all__,
    *long_tail.__all__,
    *multilabel.__all__,
]
