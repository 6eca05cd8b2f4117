"""Datasets, imbalance statistics, samplers, the batch generator, DataLoader collate.

NumPy only (plus `keras.utils.PyDataset` for the generator): never `keras.ops`.
"""

from kimbalance.data import (
    augment,
    collate,
    datasets,
    generator,
    grain,
    imbalance,
    mixing,
    mosaics,
    samplers,
    sharding,
)
from kimbalance.data.augment import *  # noqa: F403
from kimbalance.data.collate import *  # noqa: F403
from kimbalance.data.datasets import *  # noqa: F403
from kimbalance.data.generator import *  # noqa: F403
from kimbalance.data.grain import *  # noqa: F403
from kimbalance.data.imbalance import *  # noqa: F403
from kimbalance.data.mixing import *  # noqa: F403
from kimbalance.data.mosaics import *  # noqa: F403
from kimbalance.data.samplers import *  # noqa: F403
from kimbalance.data.sharding import *  # noqa: F403

__all__ = [
    *datasets.__all__,
    *imbalance.__all__,
    *samplers.__all__,
    *sharding.__all__,
    *generator.__all__,
    *augment.__all__,
    *mixing.__all__,
    *collate.__all__,
    *grain.__all__,
    *mosaics.__all__,
]
