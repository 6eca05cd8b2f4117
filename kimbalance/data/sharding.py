"""The shard layout of a rebalanced epoch, and `ShardedSampler` (NumPy only).

One arithmetic serves `BalancedBatchGenerator` and `ShardedSampler`:
`ShardLayout` says how many batches a shard runs and which epoch positions
make up each step, and `shard_batch_indices` turns that into the dataset
indices of one shard's batch. So a torch `DataLoader` over a
`ShardedSampler` and the sharded generator yield the same batches.

**Steps.** With per-shard batch b and S shards, the global batch is
G = b S and step i covers the epoch positions `[i G, (i + 1) G)`. An epoch
tail r = `epoch_size mod G` (when not dropped) is padded, like torch's
`DistributedSampler`, with positions from the start of the same epoch
(wrapping around as often as needed) up to a multiple of
`S * block_size`, so every shard runs the same number of steps with equal
batch shapes.

**Which positions of a step a shard takes.** For a single-label sampler
(`sampler.single_label`) with `block_size` 1 and S > 1, the step's samples
are sorted by class (stably, so ties keep their epoch order) and dealt round
robin over the shards from a shard chosen by `(seed, epoch, step)`; each
shard keeps its share in epoch order. So every shard's batch is stratified:
a class with g samples in the global batch has `floor(g / S)` or
`ceil(g / S)` of them in each shard's batch. Otherwise (one shard,
multi-hot rows, or a block sampler such as `ClassBalancedSampler`, whose
blocks are balanced by construction) shard s takes the contiguous positions
`[i G + s b, i G + (s + 1) b)`. Either way the shards of a step are
disjoint and together are exactly the step's global batch, so the shards of
an epoch together are exactly the epoch (plus the padding).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator

import numpy as np

import kimbalance.data._random as _random
from kimbalance._validation import check_bool, check_int, invalid
from kimbalance.data.samplers import Sampler

__all__ = ["ShardLayout", "ShardedSampler", "shard_batch_indices"]


def check_shard_index(shard_index: int, num_shards: int) -> int:
    """Returns `shard_index` as an int in `[0, num_shards)`, else raises."""
    if (not isinstance(shard_index, numbers.Integral)
            or isinstance(shard_index, bool)
            or not 0 <= shard_index < num_shards):
        raise invalid("shard_index", f"an int in [0, num_shards={num_shards})",
                      shard_index)
    return int(shard_index)


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """Per-shard batch, tail and padding arithmetic of one epoch.

    Args:
        epoch_size: samples in the epoch (`len(sampler)`), int >= 1.
        batch_size: the per-shard batch size, a multiple of `block_size`.
        num_shards: the number of data-parallel shards, int >= 1.
        shard_index: this shard, in `[0, num_shards)`.
        block_size: the unit of the sampler (`sampler.block_size`).
        drop_remainder: drop the epoch's last incomplete global batch.

    Attributes:
        global_batch_size: `batch_size * num_shards`.
        num_full_batches: steps whose global batch lies inside the epoch.
        tail_batch_size: the per-shard batch of the padded last step (0 when
            there is none).
        num_batches: steps per epoch, the same for every shard.
        shard_size: samples this shard reads per epoch.

    Raises:
        ValueError: for a bad argument, or when `drop_remainder=True` leaves
            no batch.

    Examples:

    >>> layout = ShardLayout(epoch_size=2, batch_size=1, num_shards=8,
    ...                      shard_index=5)
    >>> layout.num_batches, layout.tail_batch_size
    (1, 1)
    >>> layout.step_positions(0).tolist()  # 2 samples padded to 8
    [0, 1, 0, 1, 0, 1, 0, 1]
    >>> layout.contiguous_positions(0).tolist()
    [1]
    """

    epoch_size: int
    batch_size: int
    num_shards: int = 1
    shard_index: int = 0
    block_size: int = 1
    drop_remainder: bool = False

    def __post_init__(self):
        check_int("epoch_size", self.epoch_size, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_int("num_shards", self.num_shards, low=1)
        check_shard_index(self.shard_index, self.num_shards)
        check_int("block_size", self.block_size, low=1)
        check_bool("drop_remainder", self.drop_remainder)
        if self.batch_size % self.block_size:
            raise invalid("batch_size", f"a multiple of the sampler's block size "
                          f"{self.block_size}", self.batch_size)
        if self.num_batches == 0:
            raise invalid("batch_size", f"a per-shard batch size with at least one "
                          f"full batch per shard (the epoch has {self.epoch_size} "
                          f"samples, num_shards={self.num_shards}, "
                          "drop_remainder=True)", self.batch_size)

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.num_shards

    @property
    def num_full_batches(self) -> int:
        return self.epoch_size // self.global_batch_size

    @property
    def tail_batch_size(self) -> int:
        tail = self.epoch_size - self.num_full_batches * self.global_batch_size
        if not tail or self.drop_remainder:
            return 0
        unit = self.num_shards * self.block_size
        return -(-tail // unit) * unit // self.num_shards

    @property
    def num_batches(self) -> int:
        return self.num_full_batches + int(self.tail_batch_size > 0)

    @property
    def shard_size(self) -> int:
        return self.num_full_batches * self.batch_size + self.tail_batch_size

    def check_index(self, index: int) -> int:
        """Returns `index` as a step in `[0, num_batches)` (negative from the end).

        Raises:
            TypeError: for an index that is not an integer (a float, a string).
            IndexError: for an index out of range.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(str(invalid("index", "an int batch index (like a "
                                        "sequence index)", index)))
        index = int(index)
        if index < 0:
            index += self.num_batches
        if not 0 <= index < self.num_batches:
            raise IndexError(str(invalid(
                "index", f"a batch index in [0, {self.num_batches}) (or negative "
                f"from the end)", index)))
        return index

    def batch_size_at(self, index: int) -> int:
        """The per-shard batch size of step `index`."""
        return self.batch_size if index < self.num_full_batches else (
            self.tail_batch_size)

    def step_start(self, index: int) -> int:
        """The epoch position where step `index`'s global batch starts."""
        return index * self.global_batch_size

    def step_positions(self, index: int) -> np.ndarray:
        """The epoch positions of step `index`'s global batch (int64; padded
        tail positions wrap to the epoch start)."""
        size = self.batch_size_at(index) * self.num_shards
        start = self.step_start(index)
        return np.arange(start, start + size, dtype=np.int64) % self.epoch_size

    def contiguous_positions(self, index: int) -> np.ndarray:
        """This shard's contiguous part of step `index` (int64 positions)."""
        size = self.batch_size_at(index)
        start = self.step_start(index) + self.shard_index * size
        return np.arange(start, start + size, dtype=np.int64) % self.epoch_size

    def contiguous_range(self, index: int) -> tuple[int, int] | None:
        """`(start, stop)` of this shard's contiguous part of step `index` when it
        needs no wrap-around, else None."""
        size = self.batch_size_at(index)
        start = self.step_start(index) + self.shard_index * size
        if start + size <= self.epoch_size:
            return start, start + size
        return None


def stratifies(sampler: Sampler, layout: ShardLayout) -> bool:
    """Whether shards deal each step's batch by class (see the module doc)."""
    return (layout.num_shards > 1 and layout.block_size == 1
            and sampler.single_label)


def shard_batch_indices(sampler: Sampler, layout: ShardLayout, index: int,
                        epoch: int) -> np.ndarray:
    """The dataset indices of this shard's batch `index` of an epoch.

    Args:
        sampler: the `Sampler` every shard shares.
        layout: the `ShardLayout` of this shard (`layout.epoch_size ==
            len(sampler)`).
        index: the step, in `[0, layout.num_batches)`.
        epoch: int >= 0.

    Returns:
        An int64 array of `layout.batch_size_at(index)` dataset indices.
    """
    if not stratifies(sampler, layout):
        bounds = layout.contiguous_range(index)
        if bounds is not None:
            return sampler.indices(epoch, *bounds)
        return sampler.indices_at(epoch, layout.contiguous_positions(index))
    size = layout.batch_size_at(index) * layout.num_shards
    start = layout.step_start(index)
    if start + size <= layout.epoch_size:
        step = sampler.indices(epoch, start, start + size)
    else:
        step = sampler.indices_at(epoch, layout.step_positions(index))
    classes = sampler.classes_of(step)
    # Deal the class-sorted step round robin, from a first shard drawn per
    # (seed, epoch, step) so no shard is favoured for the first class.
    key = _random.raw_key(sampler.seed, epoch, _random.SHARD_DEAL, 0)
    first = int(_random.hash64(key, np.array([index]))[0]
                % np.uint64(layout.num_shards))
    by_class = np.argsort(classes, kind="stable")
    offset = (layout.shard_index - first) % layout.num_shards
    mine = np.sort(by_class[offset::layout.num_shards])
    return step[mine]


class ShardedSampler:
    """One shard of a rebalanced epoch: the `DistributedSampler` replacement.

    Iterates the dataset indices of shard `shard_index` of the sampler's
    epoch, in the order of the shard's batches, so that
    `DataLoader(dataset, sampler=ShardedSampler(...), batch_size=batch_size)`
    yields exactly the batches of
    `BalancedBatchGenerator(..., batch_size=batch_size, num_shards=...,
    shard_index=...)` on the same sampler: both follow one `ShardLayout`
    (see `kimbalance.data.sharding`). Step i's global batch is the epoch
    positions `[i G, (i + 1) G)` (G = `batch_size * num_shards`); the shards
    of a step are disjoint and together are that global batch, and for a
    single-label sampler each shard's batch is stratified (a class with g
    samples in the global batch has floor or ceil(g / num_shards) in every
    shard's batch). An epoch tail that does not split evenly is padded from
    the start of the epoch, as torch's `DistributedSampler` pads it, so
    every rank runs the same number of steps (or dropped with
    `drop_remainder=True`).

    It needs no labels: a sampler built with `Sampler.from_counts` over
    billions of class-partitioned samples works (all arithmetic is int64).
    Call `set_epoch(epoch)` at the start of every epoch on every rank, as
    with `DistributedSampler`. It is a plain iterable with a length, which
    is what `torch.utils.data.DataLoader(sampler=...)` takes.

    Args:
        sampler: a `kimbalance.data.samplers.Sampler`.
        batch_size: the per-shard batch size (a multiple of the sampler's
            `block_size`).
        num_shards: int >= 1, the number of ranks.
        shard_index: this rank, in `[0, num_shards)`.
        drop_remainder: drop the epoch's last incomplete global batch.

    Raises:
        ValueError: for a bad sampler, batch size or shard.

    Examples:

    >>> from kimbalance.data import RandomOverSampler
    >>> sampler = RandomOverSampler(np.array([0] * 6 + [1] * 2), seed=0)
    >>> shards = [ShardedSampler(sampler, batch_size=2, num_shards=2,
    ...                          shard_index=i) for i in range(2)]
    >>> [len(s) for s in shards]
    [6, 6]
    >>> sorted(list(shards[0]) + list(shards[1])) == sorted(sampler.indices(0))
    True
    """

    def __init__(self, sampler: Sampler, *, batch_size: int, num_shards: int = 1,
                 shard_index: int = 0,
                 drop_remainder: bool = False) -> None:
        if not isinstance(sampler, Sampler):
            raise invalid("sampler", "a kimbalance.data.samplers.Sampler", sampler)
        self.sampler = sampler
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.num_shards = check_int("num_shards", num_shards, low=1)
        self.shard_index = check_shard_index(shard_index, self.num_shards)
        self.drop_remainder = check_bool("drop_remainder", drop_remainder)
        self.layout = ShardLayout(len(sampler), self.batch_size, self.num_shards,
                                  self.shard_index, sampler.block_size,
                                  self.drop_remainder)
        self.global_batch_size = self.layout.global_batch_size
        self.epoch_size = self.layout.epoch_size
        self.num_batches = self.layout.num_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch to iterate (call it every epoch, on every rank)."""
        self.epoch = check_int("epoch", epoch, low=0)

    def __len__(self) -> int:
        return self.layout.shard_size

    def batch_indices(self, index: int, epoch: int | None = None) -> np.ndarray:
        """The dataset indices of this shard's batch `index` (int64 array).

        Raises:
            TypeError: for a non-integer `index`.
            IndexError: for an `index` out of range.
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        index = self.layout.check_index(index)
        return shard_batch_indices(self.sampler, self.layout, index, epoch)

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        for index in range(self.num_batches):
            yield from self.batch_indices(index, epoch).tolist()

    def __repr__(self) -> str:
        return (f"ShardedSampler({self.sampler!r}, batch_size={self.batch_size}, "
                f"num_shards={self.num_shards}, shard_index={self.shard_index})")
