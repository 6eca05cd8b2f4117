"""Power-law class sampling: p_c proportional to n_c**q (square-root, progressive).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kimbalance._validation import (
    check_float,
    check_int,
)
from kimbalance.data.samplers._base import (
    Sampler,
    largest_remainder,
    read_only,
)

__all__ = ["PowerSampler", "ProgressiveSampler", "SquareRootSampler"]


def _power_probabilities(counts, power):
    """p_c = n_c**power / sum(n**power) over classes with n_c > 0, in log space.

    Any finite power >= 0 gives finite probabilities summing to 1: the largest
    classes share the mass as power grows (no overflow to inf / NaN).
    """
    probabilities = np.zeros(counts.shape[0])
    present = np.flatnonzero(counts > 0)
    log_counts = np.log(counts[present].astype(np.float64))
    with np.errstate(over="ignore"):  # overflow to -inf is exp(-inf) = 0
        scaled = (log_counts - log_counts.max()) * power
    weights = np.exp(scaled)
    probabilities[present] = weights / weights.sum()
    return probabilities


class PowerSampler(Sampler):
    """Class c drawn with probability n_c**power / sum(n**power) (stratified).

    `power=1` is instance-balanced, `power=0` class-balanced, `power=0.5`
    square-root sampling. Each epoch of `num_samples` samples holds exactly
    the expected count `num_samples * p_c` of each class, rounded by largest
    remainder (stratified sampling: the same expectation as i.i.d. draws of a
    class then a member, without their variance), in a uniform shuffle;
    members cycle through one shuffle of the class per epoch (every sample
    of a class appears floor or ceil(t_c / n_c) times).

    Args:
        y: single-label targets (1-D ids, (N, 1) ids or one-hot rows).
        power: the exponent q >= 0.
        num_samples: samples per epoch; defaults to the dataset size.
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Examples:

    >>> s = PowerSampler([0] * 81 + [1] * 9 + [2] * 10, power=0.5, seed=0)
    >>> s.epoch_class_counts().tolist()
    [59, 20, 21]

    References:
        Mahajan et al., "Exploring the Limits of Weakly Supervised
        Pretraining", ECCV 2018 (square-root sampling); Kang et al.,
        "Decoupling Representation and Classifier for Long-Tailed
        Recognition", ICLR 2020.
    """

    keyword_arguments: tuple[str, ...] = ("power", "num_samples", "num_classes")

    def __init__(self, y: Any, *, power: float = 0.5,
                 num_samples: int | None = None, seed: int = 0,
                 num_classes: int | None = None) -> None:
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.power = check_float("power", power, low=0.0)
        self._set_num_samples(num_samples)
        self.class_probabilities = read_only(_power_probabilities(self.counts,
                                                                   self.power))
        self._fixed_targets = read_only(largest_remainder(self._size,
                                                            self.class_probabilities))

    def _targets(self, epoch):
        return self._fixed_targets

    def _members(self, epoch, cls, k, targets):
        return self._quota_members(epoch, cls, k)


class SquareRootSampler(PowerSampler):
    """Square-root sampling: `PowerSampler(power=0.5)`.

    Args:
        y: single-label targets.
        num_samples: samples per epoch; defaults to the dataset size.
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Examples:

    >>> SquareRootSampler([0] * 9 + [1], seed=0).epoch_class_counts().tolist()
    [8, 2]

    References:
        Mahajan et al., "Exploring the Limits of Weakly Supervised
        Pretraining", ECCV 2018.
    """

    keyword_arguments = ("num_samples", "num_classes")

    def __init__(self, y: Any, *, num_samples: int | None = None,
                 seed: int = 0, num_classes: int | None = None) -> None:
        super().__init__(y, power=0.5, num_samples=num_samples, seed=seed,
                         num_classes=num_classes)


class ProgressiveSampler(Sampler):
    """Progressively-balanced sampling: instance-balanced to class-balanced.

    At epoch t the class probabilities are
    `p_c(t) = (1 - t/T) * n_c / N + (t/T) * 1/C` with T = `num_epochs`
    (Kang et al. 2020, eq. 4; C counts the classes with samples); epochs
    past T stay class-balanced. Each epoch holds the expected counts
    `num_samples * p_c(t)` rounded by largest remainder, shuffled, with
    members cycling through one shuffle of the class per epoch, as
    `PowerSampler`. The probabilities change every epoch: read them with
    `probabilities(epoch)` (there is no fixed `power` or
    `class_probabilities`).

    Args:
        y: single-label targets.
        num_epochs: T, the epoch at which sampling is fully class-balanced.
        num_samples: samples per epoch; defaults to the dataset size.
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Examples:

    >>> s = ProgressiveSampler([0] * 90 + [1] * 10, num_epochs=4, seed=0)
    >>> [s.epoch_class_counts(t).tolist() for t in (0, 2, 4)]
    [[90, 10], [70, 30], [50, 50]]

    References:
        Kang et al., "Decoupling Representation and Classifier for
        Long-Tailed Recognition", ICLR 2020.
    """

    keyword_arguments = ("num_epochs", "num_samples", "num_classes")

    def __init__(self, y: Any, *, num_epochs: int,
                 num_samples: int | None = None, seed: int = 0,
                 num_classes: int | None = None) -> None:
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.num_epochs = check_int("num_epochs", num_epochs, low=1)
        self._set_num_samples(num_samples)
        self._instance = read_only(self.counts / self.counts.sum())
        self._balanced = read_only(_power_probabilities(self.counts, 0.0))

    def probabilities(self, epoch: int) -> np.ndarray:
        """The class probabilities p_c(t) of epoch `epoch` (float64, sum 1)."""
        epoch = check_int("epoch", epoch, low=0)
        t = min(epoch, self.num_epochs) / self.num_epochs
        return (1.0 - t) * self._instance + t * self._balanced

    def _targets(self, epoch):
        return largest_remainder(self._size, self.probabilities(epoch))

    def _members(self, epoch, cls, k, targets):
        return self._quota_members(epoch, cls, k)


