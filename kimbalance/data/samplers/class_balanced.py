"""Class-balanced batches: every block of `batch_size` holds each class equally.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import kimbalance.data._random as _random
from kimbalance._validation import (
    check_int,
)
from kimbalance.data.samplers._base import MAX_EPOCH_SIZE, Sampler

__all__ = ["ClassBalancedSampler"]


class ClassBalancedSampler(Sampler):
    """Blocks of `batch_size` samples, each holding every class equally.

    The epoch is cut in blocks of `batch_size` (a batch of a generator with
    the same batch size, or one data-parallel shard of it). With C classes
    (classes with at least one sample) and `batch_size = k C + r`, every
    block holds k samples of each class plus, when r > 0, one more sample of
    r distinct classes: the extra slots go round the classes in an order
    shuffled each epoch (block b gives them to the classes at positions
    `b r, ..., b r + r - 1` modulo C of that order), so over any C
    consecutive blocks every class gets exactly r extras. With
    `batch_size < C`, each block holds `batch_size` distinct classes the same
    way. Positions inside a block are shuffled. Members of a class are drawn
    by cycling through one shuffle of the class per epoch: every sample of a
    class appears floor or ceil(t_c / n_c) times.

    Args:
        y: single-label targets (1-D ids, (N, 1) ids or one-hot rows).
        batch_size: the block size (int >= 1).
        num_samples: samples per epoch, rounded up to whole blocks; defaults
            to the dataset size.
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Examples:

    >>> y = [0] * 90 + [1] * 6 + [2] * 4
    >>> s = ClassBalancedSampler(y, batch_size=6, seed=0)
    >>> len(s)
    102
    >>> block = np.asarray(y)[s.indices(0, start=0, stop=6)]
    >>> np.bincount(block, minlength=3).tolist()
    [2, 2, 2]

    References:
        Kang et al., "Decoupling Representation and Classifier for
        Long-Tailed Recognition", ICLR 2020 (class-balanced sampling).
    """

    keyword_arguments = ("batch_size", "num_samples", "num_classes")

    def __init__(self, y: Any, *, batch_size: int,
                 num_samples: int | None = None, seed: int = 0,
                 num_classes: int | None = None) -> None:
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.batch_size = check_int("batch_size", batch_size, low=1,
                                    high=MAX_EPOCH_SIZE)
        self.block_size = self.batch_size
        if num_samples is None:
            num_samples = self.dataset_size
        num_samples = check_int("num_samples", num_samples, low=1,
                                high=MAX_EPOCH_SIZE)
        self.num_blocks = -(-num_samples // self.batch_size)
        self._set_size(self.num_blocks * self.batch_size, "num_samples", num_samples)
        self._base, self._extra = divmod(self.batch_size, self._present.shape[0])

    def _class_order(self, epoch):
        classes = self._present
        order = classes[_random.generator(self.seed, epoch, _random.CLASS_ORDER, 0)
                        .permutation(classes.shape[0])]
        rank = np.zeros(self.num_classes, dtype=np.int64)
        rank[order] = np.arange(order.shape[0])
        return order, rank

    def _extras_before(self, num_extra_slots, rank):
        num_present = self._present.shape[0]
        return np.maximum(0, (num_extra_slots - rank + num_present - 1)
                          // num_present)

    def _targets(self, epoch):
        _, rank = self._class_order(epoch)
        targets = np.zeros(self.num_classes, dtype=np.int64)
        present = self._present
        targets[present] = (self.num_blocks * self._base
                            + self._extras_before(self.num_blocks * self._extra,
                                                  rank[present]))
        return targets

    def _arrange(self, epoch, positions, targets, whole_epoch=False):
        order, rank = self._class_order(epoch)
        size, base, extra = self.batch_size, self._base, self._extra
        num_present = self._present.shape[0]
        block, offset = np.divmod(positions, size)
        if whole_epoch:
            unique_blocks, row = np.arange(self.num_blocks), block
        else:
            unique_blocks, row = np.unique(block, return_inverse=True)
        counters = unique_blocks[:, None] * size + np.arange(size)
        # Within a block, slots are dealt in the order of keyed random sort keys.
        key = _random.raw_key(self.seed, epoch, _random.BLOCK, 0)
        shuffles = np.argsort(_random.hash64(key, counters), axis=1, kind="stable")
        slot = shuffles[row.reshape(-1), offset]
        in_base = slot < base * num_present
        extra_index = block * extra + (slot - base * num_present)
        classes = np.where(in_base, self._present[slot // max(base, 1)
                                                  % num_present],
                           order[extra_index % num_present])
        within = np.where(in_base, slot % max(base, 1), base)
        k = (block * base + self._extras_before(block * extra, rank[classes])
             + within)
        return (np.cumsum(targets) - targets)[classes] + k

    def _arrange_items(self, epoch, items, targets):
        return items[self._arrange(epoch, np.arange(self._size, dtype=np.int64),
                                   targets, whole_epoch=True)]

    def _members(self, epoch, cls, k, targets):
        return self._quota_members(epoch, cls, k)


