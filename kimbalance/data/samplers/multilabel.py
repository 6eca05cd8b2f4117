"""Multi-label over-sampling by imbalance ratio per label (ML-ROS, Charte et al.).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

import kimbalance.data._random as _random
import kimbalance.data.samplers._base as base
from kimbalance._validation import (
    Targets,
    check_float,
    check_int,
    invalid,
    parse_targets,
)
from kimbalance.data.samplers._base import (
    ClassPartitioned,
    Sampler,
    read_only,
)

__all__ = ["MultiLabelOverSampler"]


def _mean_ir(label_counts):
    """(IRLbl per label, MeanIR) over labels with at least one positive."""
    counts = np.asarray(label_counts, dtype=np.float64)
    present = counts > 0
    irlbl = np.full(counts.shape, np.inf)
    irlbl[present] = counts[present].max() / counts[present]
    return irlbl, float(irlbl[present].mean())


class MultiLabelOverSampler(Sampler):
    """ML-ROS: clones samples of minority labels (IRLbl > MeanIR) each epoch.

    Charte et al.'s multi-label random over-sampling. With label counts n_l,
    IRLbl(l) = max_l' n_l' / n_l and MeanIR is its mean over labels; the
    labels with IRLbl > MeanIR form minority bags. Each epoch repeats, round
    robin over the bags, "clone a random sample of the bag (counting all its
    labels), drop the bag once its IRLbl <= the initial MeanIR" until
    `clone_fraction * N` clones were made. The epoch is every sample once
    plus the clones, shuffled. If every bag reaches MeanIR before the budget
    is spent (mild imbalance), the remaining slots are uniform draws of
    samples (which leave label frequencies unchanged in expectation), so
    `len()` stays `N + int(clone_fraction * N)`. The whole epoch is always
    materialised.

    Args:
        y: (N, L) multi-hot array of 0/1 (one-hot rows and 1-D class ids are
            accepted too).
        clone_fraction: the clone budget as a fraction of N (Charte et al.'s
            P / 100), > 0.
        seed: int >= 0.

    Attributes:
        irlbl: IRLbl per label before resampling (inf for a label without
            positives, which is ignored).
        mean_ir: MeanIR before resampling.

    Examples:

    >>> y = np.array([[1, 0]] * 8 + [[1, 1]] + [[0, 1]])
    >>> s = MultiLabelOverSampler(y, clone_fraction=0.5, seed=0)
    >>> r = s.report(0)
    >>> len(s), r["mean_ir_after"] < r["mean_ir_before"]
    (15, True)

    References:
        Charte et al., "Addressing imbalance in multilabel classification:
        Measures and random resampling algorithms", Neurocomputing 163, 2015.
    """

    keyword_arguments = ("clone_fraction",)
    multi_label = True

    def __init__(self, y: Any, *, clone_fraction: float = 0.25,
                 seed: int = 0) -> None:
        if isinstance(y, ClassPartitioned):
            raise invalid("counts", "a label matrix: MultiLabelOverSampler clones "
                          "samples by their labels, so use MultiLabelOverSampler(y)",
                          y.counts)
        targets = y if isinstance(y, Targets) else parse_targets(y)
        super().__init__(targets, seed=seed)
        self._matrix = read_only(targets.indicator().astype(bool))
        self.clone_fraction = check_float("clone_fraction", clone_fraction, low=0.0,
                                          low_inclusive=False)
        # The epoch is always materialised: bound it by what memory can hold.
        num_clones = self.clone_fraction * self.dataset_size
        if num_clones > base.EPOCH_CACHE_LIMIT * 64:
            raise invalid("clone_fraction", f"a clone budget of at most "
                          f"{base.EPOCH_CACHE_LIMIT * 64} samples (clone_fraction * "
                          f"{self.dataset_size} samples)", clone_fraction)
        self.num_clones = int(num_clones)
        self._set_size(self.dataset_size + self.num_clones, "clone_fraction",
                       clone_fraction)
        self.irlbl, self.mean_ir = _mean_ir(self.counts)
        self.irlbl = read_only(self.irlbl)

    @property
    def materializes_epoch(self) -> bool:
        return True

    def _clones(self, epoch: int) -> tuple[np.ndarray, int]:
        rng = _random.generator(self.seed, epoch, _random.MULTILABEL, 0)
        matrix = self._matrix
        counts = self.counts.astype(np.float64)
        bags = [label for label in np.flatnonzero(self.counts > 0)
                if self.irlbl[label] > self.mean_ir]
        members = {label: np.flatnonzero(matrix[:, label]) for label in bags}
        draws = rng.random(self.num_clones)
        clones: list[int] = []
        while len(clones) < self.num_clones and bags:
            still = []
            for label in bags:
                if len(clones) == self.num_clones:
                    break
                bag = members[label]
                sample = int(bag[int(draws[len(clones)] * bag.shape[0])])
                clones.append(sample)
                counts += matrix[sample]
                if counts.max() / counts[label] > self.mean_ir:
                    still.append(label)
            bags = still
        fill = self.num_clones - len(clones)
        cloned = np.asarray(clones, dtype=np.int64)
        if fill:
            cloned = np.concatenate([cloned, rng.integers(0, self.dataset_size, fill)])
        return cloned, fill

    def _full_epoch(self, epoch):
        cloned, _ = self._clones(epoch)
        epoch_items = np.concatenate([np.arange(self.dataset_size, dtype=np.int64),
                                      cloned])
        return epoch_items[_random.generator(self.seed, epoch).permutation(self._size)]

    def _targets(self, epoch):
        return self._matrix[self._epoch_array(epoch)].sum(axis=0).astype(np.int64)

    def report(self, epoch: int | None = None) -> dict[str, Any]:
        """IRLbl and MeanIR before and after the resampling of an epoch.

        Args:
            epoch: int >= 0; defaults to the current epoch.

        Returns:
            A dict with `mean_ir_before`, `mean_ir_after`, `irlbl_before`,
            `irlbl_after` (lists), `num_clones` and `num_filled` (the slots
            filled by uniform draws once every bag was balanced).
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        irlbl_after, mean_after = _mean_ir(self._targets(epoch))
        return {
            "mean_ir_before": self.mean_ir,
            "mean_ir_after": mean_after,
            "irlbl_before": self.irlbl.tolist(),
            "irlbl_after": irlbl_after.tolist(),
            "num_clones": self.num_clones,
            "num_filled": int(self._clones(epoch)[1]),
        }

    @classmethod
    def from_counts(cls, counts: ArrayLike, *, seed: int = 0, **kwargs: Any) -> Any:
        """Not available: ML-ROS needs the label matrix, not class counts.

        Raises:
            ValueError: always.
        """
        raise invalid("counts", "a label matrix: MultiLabelOverSampler clones "
                      "samples by their labels, so use MultiLabelOverSampler(y)",
                      counts)


