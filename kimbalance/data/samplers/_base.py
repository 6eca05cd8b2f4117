"""The sampler base class and what every sampler shares (NumPy only).

`Sampler` turns per-class target counts and within-class members into
epochs, slices and iteration; the helpers here (storage markers, the
label digest, read-only arrays) are used by the policy modules beside it.
The mutable limits (`EPOCH_CACHE_LIMIT`) are read at call time, so tests
may lower them on this module.
"""

from __future__ import annotations

import hashlib
import numbers
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

import kimbalance.data._random as _random
from kimbalance._validation import (
    MAX_COUNT,
    Targets,
    check_counts,
    check_int,
    invalid,
    parse_targets,
)

__all__ = [
    "EPOCH_CACHE_LIMIT",
    "ITER_CHUNK",
    "MAX_EPOCH_SIZE",
    "ClassPartitioned",
    "Sampler",
    "compact_ids",
    "fingerprint",
    "largest_remainder",
    "read_only",
]

# Epochs up to this many samples are computed whole and cached.
EPOCH_CACHE_LIMIT = 1 << 24
ITER_CHUNK = 1 << 16
# Epoch sizes are int64 position arithmetic and float64 expected counts: both
# exact up to 2**53.
MAX_EPOCH_SIZE = MAX_COUNT


def largest_remainder(total: int, probabilities: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, closest to `total * probabilities`."""
    exact = total * probabilities
    counts = np.floor(exact).astype(np.int64)
    short = int(total - counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def fingerprint(targets: Any) -> str:
    """A digest of parsed labels: class ids, or the multi-hot matrix.

    One pass over the labels (cheaper than the argsort a sampler does
    anyway), so the generator can tell a sampler built on other labels of
    the same length.
    """
    digest = hashlib.blake2b(digest_size=16)
    if targets.ids is not None:
        digest.update(b"ids")
        digest.update(np.ascontiguousarray(targets.ids, dtype=np.int64).data)
    else:
        matrix = np.asarray(targets.array) != 0
        digest.update(b"multi_hot")
        digest.update(np.asarray(matrix.shape, dtype=np.int64).data)
        digest.update(np.packbits(matrix, axis=None).data)
    return digest.hexdigest()


class ClassPartitioned:
    """Marker for class-partitioned storage: only per-class counts are known."""

    def __init__(self, counts):
        self.counts = check_counts("counts", counts)


def read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def compact_ids(ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Class ids in the smallest unsigned dtype that holds them."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if num_classes <= np.iinfo(dtype).max + 1:
            return ids.astype(dtype)
    return ids.astype(np.int64)


class Sampler:
    """Base class of the index samplers.

    A sampler decides which dataset indices form epoch `e` and in which order.
    Subclasses define per-class counts per epoch and which members of each
    class fill them; this class turns that into epochs, slices and iteration.

    **The protocol** that `BalancedBatchGenerator` and `ShardedSampler` use
    (and nothing else): `len(sampler)`, `indices(epoch, start, stop)` (the
    positions `[start, stop)` of an epoch), `indices_at(epoch, positions)`
    (any positions), `classes_of(indices)` (the class id of dataset indices,
    for single-label samplers), `same_labels(targets)`, `block_size`,
    `counts`, `num_classes`, `dataset_size`, `seed`, `set_epoch` and the
    class attributes `keyword_arguments` / `multi_label` read by
    `get_sampler`. A new sampler implements `_targets` and `_members` (or
    `_full_epoch`) and declares its keyword arguments.

    Args:
        y: labels (1-D class ids, (N, 1) class ids or 2-D one-hot). Use
            `from_counts` for class-partitioned storage instead.
        seed: int >= 0; with the epoch number, it fixes every random draw.
        num_classes: number of classes for 1-D labels (defaults to
            `max(y) + 1`), so that absent classes keep their ids.

    Attributes:
        counts: int64 per-class counts of the dataset (read-only).
        num_classes: the number of classes.
        dataset_size: the number of samples the indices point into.
        epoch: the current epoch (`set_epoch`), used by `iter()` and by
            `indices()` without an epoch.
        block_size: the unit a data-parallel split must respect (1, or the
            batch size of a `ClassBalancedSampler`).
        keyword_arguments: (class attribute) the keyword arguments of the
            constructor besides `y` and `seed`; `get_sampler` passes the
            generator's `batch_size` / `num_classes` only to samplers that
            list them.
        multi_label: (class attribute) whether the sampler accepts multi-hot
            targets.
    """

    block_size = 1
    keyword_arguments: tuple[str, ...] = ("num_classes",)
    multi_label = False
    fingerprint: str | None
    _order: np.ndarray | None
    _labels: np.ndarray | None

    def __init__(self, y: Any, *, seed: int = 0,
                 num_classes: int | None = None) -> None:
        self._init_state(seed)
        if isinstance(y, ClassPartitioned):
            counts = y.counts
            self._order = None
            self._labels = None
            self.fingerprint = None
            if num_classes is not None and num_classes != counts.shape[0]:
                raise invalid("num_classes", f"{counts.shape[0]} (len(counts))",
                              num_classes)
        else:
            targets = (y if isinstance(y, Targets)
                       else parse_targets(y, num_classes))
            if num_classes is not None and num_classes != targets.num_classes:
                raise invalid("num_classes", f"{targets.num_classes} (the number "
                              "of classes of the parsed targets)", num_classes)
            self.fingerprint = fingerprint(targets)
            if targets.ids is None:
                if not self.multi_label:
                    raise invalid("y", f"single-label targets for "
                                  f"{type(self).__name__} (1-D class ids, (N, 1) or "
                                  "one-hot rows); multi-hot rows need "
                                  "MultiLabelOverSampler", targets.array)
                # Per-label positives; rows have no single class.
                self._order = None
                self._labels = None
                self._set_counts(targets.counts())
                self.dataset_size = len(targets)
                return
            labels = targets.ids
            counts = np.bincount(labels, minlength=targets.num_classes
                                 ).astype(np.int64)
            self._order = read_only(np.argsort(labels, kind="stable")
                                     .astype(np.int64))
            self._labels = read_only(compact_ids(labels, counts.shape[0]))
        self._set_counts(counts)

    def _set_counts(self, counts):
        self.counts = read_only(counts)
        self.num_classes = int(counts.shape[0])
        self.dataset_size = int(counts.sum())
        self._offsets = read_only(np.concatenate([[0], np.cumsum(counts)[:-1]])
                                   .astype(np.int64))
        self._present = np.flatnonzero(counts > 0)

    def _init_state(self, seed):
        self.seed = check_int("seed", seed, low=0)
        self.epoch = 0
        self._size = 0
        self._lock = threading.Lock()
        self._cache = OrderedDict()

    def _set_size(self, size, name, value):
        """Sets the epoch size; `name=value` is the argument that set it."""
        if not 1 <= size <= MAX_EPOCH_SIZE:
            raise invalid(name, f"an epoch of 1 to 2**53 samples (this one would "
                          f"hold {size})", value)
        self._size = int(size)

    def _set_num_samples(self, num_samples):
        """Sets the epoch size from a `num_samples` argument (None: dataset size)."""
        if num_samples is None:
            num_samples = self.dataset_size
        num_samples = check_int("num_samples", num_samples, low=1,
                                high=MAX_EPOCH_SIZE)
        self._set_size(num_samples, "num_samples", num_samples)

    @classmethod
    def from_counts(cls, counts: ArrayLike, *, seed: int = 0, **kwargs: Any) -> Any:
        """Builds the sampler for class-partitioned storage from per-class counts.

        Class c occupies dataset positions `[offset_c, offset_c + n_c)` with
        `offset_c = sum(counts[:c])`; no per-sample array is kept, and all
        index arithmetic is int64, so totals beyond 2**31 work.

        Args:
            counts: per-class sample counts (ints >= 0, at least one > 0).
            seed: int >= 0.
            **kwargs: the sampler's other keyword arguments.

        Returns:
            A sampler of class `cls`.

        Examples:

        >>> from kimbalance.data import RandomUnderSampler
        >>> s = RandomUnderSampler.from_counts([3_000_000_000, 5], seed=0)
        >>> len(s), s.epoch_class_counts(0).tolist()
        (10, [5, 5])
        """
        return cls(ClassPartitioned(counts), seed=seed, **kwargs)

    # The interface ---------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    @property
    def class_partitioned(self) -> bool:
        """Whether built by `from_counts` (class c at `[offset_c, offset_c + n_c)`)."""
        return self._order is None and self.fingerprint is None

    @property
    def single_label(self) -> bool:
        """Whether every dataset index has one class (`classes_of` works)."""
        return self._order is not None or self.class_partitioned

    @property
    def materializes_epoch(self) -> bool:
        """Whether whole epochs are computed and cached (else slice by slice)."""
        return self._size <= EPOCH_CACHE_LIMIT

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch that `iter()` and `indices()` (without epoch) use."""
        self.epoch = check_int("epoch", epoch, low=0)

    def indices(self, epoch: int | None = None, start: int = 0,
                stop: int | None = None) -> np.ndarray:
        """The dataset indices of an epoch, or of the slice `[start, stop)` of it.

        Args:
            epoch: int >= 0; defaults to the current epoch (`set_epoch`).
            start: first position of the slice.
            stop: end of the slice (exclusive); defaults to `len(self)`.

        Returns:
            An int64 array of dataset indices (a read-only view when the
            epoch is materialised).
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        start = check_int("start", start, low=0, high=self._size)
        if stop is None:
            stop = self._size
        elif not (isinstance(stop, numbers.Integral) and not isinstance(stop, bool)
                  and start <= stop <= self._size):
            raise invalid("stop", f"an int in [start={start}, len(sampler)="
                          f"{self._size}]", stop)
        stop = int(stop)
        if self.materializes_epoch:
            return self._epoch_array(epoch)[start:stop]
        return self._positions(epoch, np.arange(start, stop, dtype=np.int64))

    def indices_at(self, epoch: int, positions: ArrayLike) -> np.ndarray:
        """The dataset indices at arbitrary positions of an epoch.

        Args:
            epoch: int >= 0, or None for the current epoch.
            positions: integer array of epoch positions in `[0, len(self))`
                (any order, repeats allowed).

        Returns:
            An int64 array of the shape of `positions`.

        Examples:

        >>> from kimbalance.data import InstanceSampler
        >>> s = InstanceSampler([0, 1, 1, 0], seed=0)
        >>> bool(np.all(s.indices_at(0, [3, 0]) == s.indices(0)[[3, 0]]))
        True
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        try:
            positions = np.asarray(positions)
        except (TypeError, ValueError):
            raise invalid("positions", "an integer array of epoch positions",
                          positions) from None
        if positions.dtype.kind not in "iu":
            raise invalid("positions", "an integer array of epoch positions",
                          positions)
        positions = positions.astype(np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self._size):
            raise invalid("positions", f"positions in [0, len(sampler)={self._size})",
                          positions)
        if self.materializes_epoch:
            return self._epoch_array(epoch)[positions]
        flat = self._positions(epoch, positions.reshape(-1))
        return flat.reshape(positions.shape)

    def classes_of(self, indices: ArrayLike) -> np.ndarray:
        """The class ids of dataset indices (single-label samplers).

        For a class-partitioned sampler (`from_counts`) the class follows from
        the position; otherwise from the labels the sampler was built on.

        Args:
            indices: integer array of dataset indices in `[0, dataset_size)`.

        Returns:
            An int64 array of class ids, of the shape of `indices`.

        Raises:
            ValueError: for a sampler over multi-hot rows (no single class).

        Examples:

        >>> from kimbalance.data import RandomOverSampler
        >>> s = RandomOverSampler.from_counts([3, 2])
        >>> s.classes_of([0, 2, 3, 4]).tolist()
        [0, 0, 1, 1]
        """
        if not self.single_label:
            raise invalid("indices", f"indices of a single-label sampler "
                          f"({type(self).__name__} over multi-hot rows has no class "
                          "per sample)", indices)
        indices = np.asarray(indices)
        if self._labels is not None:
            return self._labels[indices].astype(np.int64)
        return np.searchsorted(self._offsets, indices, side="right") - 1

    def same_labels(self, targets: Any) -> bool:
        """Whether `targets` are the labels this sampler was built on.

        Compared through a digest of the labels (class ids, or the multi-hot
        matrix) kept when the sampler was built; a class-partitioned sampler
        compares per-class counts and checks that the ids are sorted.

        Args:
            targets: a `kimbalance._validation.Targets` (from
                `parse_targets`), or labels in any supported form.

        Returns:
            bool.
        """
        if not hasattr(targets, "kind"):
            targets = parse_targets(targets)
        if len(targets) != self.dataset_size:
            return False
        if self.class_partitioned:
            ids = targets.ids
            return bool(ids is not None
                        and np.array_equal(np.bincount(ids, minlength=self.num_classes),
                                           self.counts)
                        and np.all(ids[1:] >= ids[:-1]))
        return fingerprint(targets) == self.fingerprint

    def epoch_class_counts(self, epoch: int | None = None) -> np.ndarray:
        """Per-class number of samples in an epoch (no epoch is materialised).

        Args:
            epoch: int >= 0; defaults to the current epoch.

        Returns:
            An int64 array of shape (num_classes,) summing to `len(self)`
            (for `MultiLabelOverSampler`: positives per label in the epoch).
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        return self._targets(epoch).copy()

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        for start in range(0, self._size, ITER_CHUNK):
            stop = min(start + ITER_CHUNK, self._size)
            yield from self.indices(epoch, start, stop).tolist()

    def as_torch_sampler(self) -> Any:
        """Wraps this sampler in a `torch.utils.data.Sampler` (imports torch).

        The wrapper iterates the current epoch and forwards `set_epoch`, like
        `torch.utils.data.DistributedSampler`. (`DataLoader(sampler=self)`
        also works directly: a sampler is an iterable with a length.)
        """
        return _torch_sampler_class()(self)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_classes={self.num_classes}, "
                f"dataset_size={self.dataset_size}, epoch_size={self._size}, "
                f"seed={self.seed})")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # Internals -------------------------------------------------------------

    def _epoch_array(self, epoch):
        cached = self._cache.get(epoch)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(epoch)
            if cached is None:
                cached = read_only(self._full_epoch(epoch))
                self._cache[epoch] = cached
                while len(self._cache) > 2:
                    self._cache.popitem(last=False)
        return cached

    def _to_dataset(self, sorted_positions):
        if self._order is None:
            return sorted_positions
        return self._order[sorted_positions]

    # Epoch construction: slots are class-major (all of class 0, then 1, ...);
    # an arrangement maps epoch positions to slots, members map slots to data.

    def _targets(self, epoch):
        raise NotImplementedError

    def _members(self, epoch, cls, k, targets):
        """Within-class indices (0..n_c-1) for the k-th slots of class `cls`."""
        raise NotImplementedError

    def _arrange(self, epoch, positions, targets):
        return _random.permutation_at(self._size, (self.seed, epoch), positions)

    def _arrange_items(self, epoch, items, targets):
        """Puts the class-major `items` in epoch order (default: a shuffle)."""
        return _random.shuffle_in_place(items, (self.seed, epoch))

    def _class_items(self, epoch, cls, count, targets):
        """Dataset indices of the slots k = 0..count-1 of class `cls`."""
        k = np.arange(count, dtype=np.int64)
        return self._to_dataset(self._offsets[cls]
                                + self._members(epoch, cls, k, targets))

    def _class_range(self, cls):
        start = int(self._offsets[cls])
        stop = start + int(self.counts[cls])
        if self._order is None:
            return np.arange(start, stop, dtype=np.int64)
        return self._order[start:stop]

    def _full_epoch(self, epoch):
        targets = self._targets(epoch)
        items = np.concatenate([self._class_items(epoch, cls, int(targets[cls]),
                                                  targets)
                                for cls in np.flatnonzero(targets)])
        return self._arrange_items(epoch, items, targets)

    def _positions(self, epoch, positions):
        targets = self._targets(epoch)
        ends = np.cumsum(targets)
        slots = self._arrange(epoch, positions, targets)
        classes = np.searchsorted(ends, slots, side="right")
        k = slots - (ends - targets)[classes]
        out = np.empty(positions.shape[0], dtype=np.int64)
        for cls in np.unique(classes):
            mask = classes == cls
            out[mask] = self._offsets[cls] + self._members(epoch, cls, k[mask],
                                                           targets)
        return self._to_dataset(out)

    def _quota_members(self, epoch, cls, k):
        """Cycles through one shuffle of the class per epoch (k mod n_c)."""
        n = int(self.counts[cls])
        return _random.permutation_at(n, (self.seed, epoch, _random.QUOTA, cls),
                                      k % n)


_TORCH_SAMPLER = None


def _torch_sampler_class():
    global _TORCH_SAMPLER
    if _TORCH_SAMPLER is None:
        import torch.utils.data

        class TorchSampler(torch.utils.data.Sampler):
            """A `torch.utils.data.Sampler` over a kimbalance sampler."""

            def __init__(self, sampler):
                super().__init__()
                self.sampler = sampler

            def __iter__(self):
                return iter(self.sampler)

            def __len__(self):
                return len(self.sampler)

            def set_epoch(self, epoch):
                self.sampler.set_epoch(epoch)

        _TORCH_SAMPLER = TorchSampler
    return _TORCH_SAMPLER


