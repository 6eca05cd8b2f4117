"""Index samplers: which samples make up an epoch, and in which order (NumPy only).

A sampler is an index policy. `sampler.indices(epoch)` returns the epoch's
int64 array of dataset indices; it is a pure function of `(seed, epoch)`
(every random draw comes from `np.random.default_rng([seed, epoch, ...])`,
never from global state), so threads, processes and data-parallel shards
rebuild exactly the same epoch. `len(sampler)` is the number of samples per
epoch and never changes between epochs. A sampler is also a plain iterable
over the current epoch (`set_epoch(e)` then `iter(sampler)`), which is what
`torch.utils.data.DataLoader(sampler=...)` expects; `as_torch_sampler()`
wraps it in a real `torch.utils.data.Sampler`.

Storage. Built from labels `y`, a sampler keeps the stable argsort of the
labels (one int64 per sample), the class ids in the smallest unsigned dtype
(for `classes_of`) and a digest of the labels (for `same_labels`, so the
generator can tell a sampler built on other labels). Built with
`Sampler.from_counts(counts)` it assumes class-partitioned storage (class c at positions
`[offset_c, offset_c + n_c)`, `offset_c = sum(counts[:c])`) and keeps no
per-sample array at all, so billions of virtual samples cost O(classes).

Materialisation. Every sampler computes any slice of an epoch without the
rest: `indices(epoch, start=s, stop=e)` costs O(e - s). Epochs of at most
2**24 samples are computed whole on first use and cached (the two most recent
epochs), so batch after batch is a slice of a cached array; longer epochs are
computed slice by slice and never materialised. Both routes return identical
indices. `MultiLabelOverSampler` always materialises (it needs the label
matrix anyway). Permutations of up to 2**22 items are exact uniform shuffles
(`Generator.permutation`); larger ones use a keyed 6-round Feistel network
with cycle walking (the per-index shuffle of google/grain), which needs no
memory; that machinery lives in `kimbalance.data._random`.

| sampler | epoch | per-class count per epoch |
|---|---|---|
| `InstanceSampler` | every sample once, shuffled | n_c |
| `RandomOverSampler` | every sample once + top-ups (with replacement) | target >= n_c |
| `RandomUnderSampler` | a rotating window of each class | target <= n_c |
| `ClassBalancedSampler` | blocks of `batch_size`, each class-balanced | ~ equal |
| `PowerSampler(power=q)` | stratified, p_c = n_c**q / sum n**q | expected count |
| `SquareRootSampler` | `PowerSampler(power=0.5)` | |
| `ProgressiveSampler` | instance -> class-balanced over `num_epochs` | expected count |
| `MultiLabelOverSampler` | every sample once + ML-ROS clones | |
| `RepeatFactorSampler` | image i floor(r_i) or floor(r_i) + 1 times (LVIS) | |
"""

import hashlib
import numbers
import threading
from collections import OrderedDict

import numpy as np

import kimbalance.data._random as _random
from kimbalance._validation import (
    MAX_CLASSES,
    MAX_COUNT,
    Targets,
    check_counts,
    check_float,
    check_int,
    invalid,
    parse_targets,
)

__all__ = [
    "SAMPLERS",
    "Sampler",
    "InstanceSampler",
    "RandomOverSampler",
    "RandomUnderSampler",
    "ClassBalancedSampler",
    "PowerSampler",
    "SquareRootSampler",
    "ProgressiveSampler",
    "MultiLabelOverSampler",
    "RepeatFactorSampler",
    "class_presence",
    "get_sampler",
]

# Epochs up to this many samples are computed whole and cached.
_EPOCH_CACHE_LIMIT = 1 << 24
_ITER_CHUNK = 1 << 16
# Epoch sizes are int64 position arithmetic and float64 expected counts: both
# exact up to 2**53.
MAX_EPOCH_SIZE = MAX_COUNT


def _largest_remainder(total, probabilities):
    """Integer counts summing to `total`, closest to `total * probabilities`."""
    exact = total * probabilities
    counts = np.floor(exact).astype(np.int64)
    short = int(total - counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


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


def _fingerprint(targets):
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


class _ClassPartitioned:
    """Marker for class-partitioned storage: only per-class counts are known."""

    def __init__(self, counts):
        self.counts = check_counts("counts", counts)


def _read_only(arr):
    arr.flags.writeable = False
    return arr


def _compact_ids(ids, num_classes):
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
    keyword_arguments = ("num_classes",)
    multi_label = False

    def __init__(self, y, *, seed=0, num_classes=None):
        self._init_state(seed)
        if isinstance(y, _ClassPartitioned):
            counts = y.counts
            self._order = None
            self._labels = None
            self._fingerprint = None
            if num_classes is not None and num_classes != counts.shape[0]:
                raise invalid("num_classes", f"{counts.shape[0]} (len(counts))",
                              num_classes)
        else:
            targets = (y if isinstance(y, Targets)
                       else parse_targets(y, num_classes))
            if num_classes is not None and num_classes != targets.num_classes:
                raise invalid("num_classes", f"{targets.num_classes} (the number "
                              "of classes of the parsed targets)", num_classes)
            self._fingerprint = _fingerprint(targets)
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
            self._order = _read_only(np.argsort(labels, kind="stable")
                                     .astype(np.int64))
            self._labels = _read_only(_compact_ids(labels, counts.shape[0]))
        self._set_counts(counts)

    def _set_counts(self, counts):
        self.counts = _read_only(counts)
        self.num_classes = int(counts.shape[0])
        self.dataset_size = int(counts.sum())
        self._offsets = _read_only(np.concatenate([[0], np.cumsum(counts)[:-1]])
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
    def from_counts(cls, counts, *, seed=0, **kwargs):
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
        return cls(_ClassPartitioned(counts), seed=seed, **kwargs)

    # The interface ---------------------------------------------------------

    def __len__(self):
        return self._size

    @property
    def class_partitioned(self):
        """Whether built by `from_counts` (class c at `[offset_c, offset_c + n_c)`)."""
        return self._order is None and self._fingerprint is None

    @property
    def single_label(self):
        """Whether every dataset index has one class (`classes_of` works)."""
        return self._order is not None or self.class_partitioned

    @property
    def materializes_epoch(self):
        """Whether whole epochs are computed and cached (else slice by slice)."""
        return self._size <= _EPOCH_CACHE_LIMIT

    def set_epoch(self, epoch):
        """Sets the epoch that `iter()` and `indices()` (without epoch) use."""
        self.epoch = check_int("epoch", epoch, low=0)

    def indices(self, epoch=None, start=0, stop=None):
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

    def indices_at(self, epoch, positions):
        """The dataset indices at arbitrary positions of an epoch.

        Args:
            epoch: int >= 0, or None for the current epoch.
            positions: integer array of epoch positions in `[0, len(self))`
                (any order, repeats allowed).

        Returns:
            An int64 array of the shape of `positions`.

        Examples:

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

    def classes_of(self, indices):
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

    def same_labels(self, targets):
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
        return _fingerprint(targets) == self._fingerprint

    def epoch_class_counts(self, epoch=None):
        """Per-class number of samples in an epoch (no epoch is materialised).

        Args:
            epoch: int >= 0; defaults to the current epoch.

        Returns:
            An int64 array of shape (num_classes,) summing to `len(self)`
            (for `MultiLabelOverSampler`: positives per label in the epoch).
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        return self._targets(epoch).copy()

    def __iter__(self):
        epoch = self.epoch
        for start in range(0, self._size, _ITER_CHUNK):
            stop = min(start + _ITER_CHUNK, self._size)
            yield from self.indices(epoch, start, stop).tolist()

    def as_torch_sampler(self):
        """Wraps this sampler in a `torch.utils.data.Sampler` (imports torch).

        The wrapper iterates the current epoch and forwards `set_epoch`, like
        `torch.utils.data.DistributedSampler`. (`DataLoader(sampler=self)`
        also works directly: a sampler is an iterable with a length.)
        """
        return _torch_sampler_class()(self)

    def __repr__(self):
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
                cached = _read_only(self._full_epoch(epoch))
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


class InstanceSampler(Sampler):
    """Every sample once per epoch, in a fresh uniform shuffle (plain shuffling).

    Args:
        y: labels of any supported form (only their number matters; multi-hot
            rows are accepted: they form one pseudo-class, so `counts` is
            `[N]`, `single_label` is False and `classes_of` raises).
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Examples:

    >>> s = InstanceSampler([0, 0, 0, 1], seed=0)
    >>> sorted(s.indices(0).tolist())
    [0, 1, 2, 3]
    """

    keyword_arguments = ("num_classes",)
    multi_label = True

    def __init__(self, y, *, seed=0, num_classes=None):
        super().__init__(y, seed=seed, num_classes=num_classes)
        if not self.single_label:
            # Multi-hot rows: one pseudo-class holds every row, in place.
            self._set_counts(np.array([self.dataset_size], dtype=np.int64))
        self._size = self.dataset_size

    def _targets(self, epoch):
        return self.counts

    def _members(self, epoch, cls, k, targets):
        return k

    def _class_items(self, epoch, cls, count, targets):
        return self._class_range(cls).copy()


def _strategy_targets(strategy, counts, kind):
    """Per-class epoch counts for imblearn's `sampling_strategy` (over/under)."""
    present = np.flatnonzero(counts > 0)
    targets = counts.copy()
    largest = present[np.argmax(counts[present])]
    smallest = present[np.argmin(counts[present])]
    if isinstance(strategy, str):
        if kind == "over":
            choices = {"auto": "not majority", "not majority": "not majority",
                       "minority": "minority", "not minority": "not minority",
                       "all": "all"}
        else:
            choices = {"auto": "not minority", "not minority": "not minority",
                       "majority": "majority", "not majority": "not majority",
                       "all": "all"}
        if strategy not in choices:
            raise invalid("sampling_strategy", f"one of {sorted(choices)}, a float "
                          "(binary targets) or a dict {class: count}", strategy)
        rule = choices[strategy]
        chosen = {
            "all": present,
            "not majority": present[present != largest],
            "not minority": present[present != smallest],
            "minority": np.array([smallest]),
            "majority": np.array([largest]),
        }[rule]
        value = counts[largest] if kind == "over" else counts[smallest]
        targets[chosen] = value
        return targets
    if isinstance(strategy, numbers.Real) and not isinstance(strategy, bool):
        ratio = check_float("sampling_strategy", strategy, low=0.0,
                            low_inclusive=False)
        if present.shape[0] != 2:
            raise invalid("sampling_strategy", "a float only for binary targets "
                          f"(two classes, {present.shape[0]} here); use a dict "
                          "{class: count}", strategy)
        if kind == "over":
            added = int(counts[largest] * ratio - counts[smallest])
            if added <= 0:
                raise invalid("sampling_strategy", "a ratio minority/majority above "
                              f"the current {counts[smallest] / counts[largest]:.4g} "
                              "(over-sampling cannot remove samples)", strategy)
            targets[smallest] = counts[smallest] + added
        else:
            kept = int(counts[smallest] / ratio)
            if kept > counts[largest]:
                raise invalid("sampling_strategy", "a ratio minority/majority above "
                              f"the current {counts[smallest] / counts[largest]:.4g} "
                              "(under-sampling cannot add samples)", strategy)
            targets[largest] = kept
        return targets
    if isinstance(strategy, dict):
        num_classes = counts.shape[0]
        for cls, value in strategy.items():
            if (not isinstance(cls, numbers.Integral) or isinstance(cls, bool)
                    or not 0 <= cls < num_classes):
                raise invalid("sampling_strategy", f"class ids in [0, {num_classes})",
                              strategy)
            if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                    or not 0 <= value <= MAX_EPOCH_SIZE):
                raise invalid("sampling_strategy", "counts that are ints in [0, 2**53]",
                              strategy)
            have = int(counts[cls])
            if kind == "over":
                if have == 0 and value > 0:
                    raise invalid("sampling_strategy", f"no over-sampling of class "
                                  f"{cls}, which has no sample (an empty class "
                                  "cannot be over-sampled)", strategy)
                if value < have:
                    raise invalid("sampling_strategy", f"a count >= {have} for class "
                                  f"{cls} (over-sampling cannot remove samples)",
                                  strategy)
            elif value > have:
                raise invalid("sampling_strategy", f"a count <= {have} for class "
                              f"{cls} (under-sampling cannot add samples)", strategy)
            targets[cls] = int(value)
        if targets.sum() == 0:
            raise invalid("sampling_strategy", "at least one sample kept", strategy)
        return targets
    raise invalid("sampling_strategy", "a string, a float (binary targets) or a dict "
                  "{class: count}", strategy)


class RandomOverSampler(Sampler):
    """Every sample once per epoch, each class topped up to its target count.

    Each epoch holds every original sample exactly once, plus
    `target_c - n_c` extra samples of each class drawn uniformly *with
    replacement* from that class (fresh each epoch), all shuffled together.
    Class counts equal those of `imblearn.over_sampling.RandomOverSampler`
    for the same `sampling_strategy`; unlike imblearn, the top-ups change
    every epoch.

    Args:
        y: single-label targets (1-D ids, (N, 1) ids or one-hot rows).
        sampling_strategy: imblearn's vocabulary. `"auto"` / `"not majority"`:
            every class but the majority up to the majority count;
            `"minority"`: only the smallest class; `"not minority"`, `"all"`;
            a float (binary targets only): the desired ratio
            minority / majority after resampling; a dict `{class: count}`
            with counts >= the class sizes (other classes untouched).
            Named strategies consider classes with at least one sample (ties:
            the lowest class id is the majority/minority); asking for samples
            of an empty class is an error.
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Raises:
        ValueError: for an unknown strategy, a float with more than two
            classes, a target below a class size, or an empty class asked to
            be over-sampled.

    Examples:

    >>> s = RandomOverSampler([0, 0, 0, 0, 1], seed=0)
    >>> len(s), s.epoch_class_counts().tolist()
    (8, [4, 4])
    >>> sorted(set(s.indices(0).tolist()))
    [0, 1, 2, 3, 4]
    """

    keyword_arguments = ("sampling_strategy", "num_classes")

    def __init__(self, y, *, sampling_strategy="auto", seed=0, num_classes=None):
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.sampling_strategy = sampling_strategy
        self.target_counts = _read_only(_strategy_targets(sampling_strategy,
                                                          self.counts, "over"))
        self._set_size(sum(int(t) for t in self.target_counts), "sampling_strategy",
                       sampling_strategy)

    def _targets(self, epoch):
        return self.target_counts

    def _top_up_keys(self, epoch):
        stream = _random.generator(self.seed, epoch, _random.TOP_UP, 0)
        return stream.bit_generator.random_raw(self.num_classes)

    def _members(self, epoch, cls, k, targets):
        n = int(self.counts[cls])
        top_up = k >= n
        if not np.any(top_up):
            return k
        out = k.copy()
        key = self._top_up_keys(epoch)[cls]
        out[top_up] = (_random.hash64(key, k[top_up]) % np.uint64(n)).astype(np.int64)
        return out

    def _full_epoch(self, epoch):
        keys = self._top_up_keys(epoch)
        pieces = []
        for cls in np.flatnonzero(self.target_counts):
            members = self._class_range(cls)
            n, t = int(self.counts[cls]), int(self.target_counts[cls])
            pieces.append(members)
            if t > n:
                k = np.arange(n, t, dtype=np.uint64)
                pieces.append(members[(_random.hash64(keys[cls], k) % np.uint64(n))
                                      .astype(np.int64)])
        return self._arrange_items(epoch, np.concatenate(pieces), self.target_counts)


class RandomUnderSampler(Sampler):
    """Each class cut to its target count, rotating through the large classes.

    A class cut from n_c to t_c samples is read in windows of t_c from a
    shuffle of the class: epochs are grouped in cycles of
    `K_c = ceil(n_c / t_c)`; cycle q (epochs qK_c .. qK_c + K_c - 1) uses one
    shuffle of the class (fixed by seed and q, reshuffled each cycle) and
    epoch qK_c + w takes its window `[w t_c, (w + 1) t_c)` (wrapping to the
    start of the same shuffle in the last window). So every sample of the
    class is used at least once in every cycle of K_c epochs, i.e. within
    `ceil(n_major / n_target)` epochs, and never left out for more than
    2 K_c - 2 epochs in a row; imblearn, by contrast, keeps one frozen subset.
    Each epoch's t_c samples of a class are distinct. Classes kept whole
    appear once each. Class counts equal those of
    `imblearn.under_sampling.RandomUnderSampler` for the same strategy.

    Args:
        y: single-label targets (1-D ids, (N, 1) ids or one-hot rows).
        sampling_strategy: `"auto"` / `"not minority"`: every class but the
            minority down to the minority count; `"majority"`,
            `"not majority"`, `"all"`; a float (binary targets only): the
            desired ratio minority / majority; a dict `{class: count}` with
            counts <= the class sizes (other classes kept whole).
        seed: int >= 0.
        num_classes: number of classes for 1-D labels.

    Raises:
        ValueError: for an unknown strategy, a float with more than two
            classes or a target above a class size.

    Examples:

    >>> s = RandomUnderSampler([0] * 6 + [1] * 2, seed=0)
    >>> s.epoch_class_counts().tolist(), s.cycle_lengths.tolist()
    ([2, 2], [3, 1])
    >>> seen = set()
    >>> for epoch in range(3):
    ...     seen.update(s.indices(epoch).tolist())
    >>> sorted(seen)
    [0, 1, 2, 3, 4, 5, 6, 7]
    """

    keyword_arguments = ("sampling_strategy", "num_classes")

    def __init__(self, y, *, sampling_strategy="auto", seed=0, num_classes=None):
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.sampling_strategy = sampling_strategy
        targets = _strategy_targets(sampling_strategy, self.counts, "under")
        self.target_counts = _read_only(targets)
        cycles = np.ones_like(targets)
        cut = targets > 0
        cycles[cut] = -(-self.counts[cut] // targets[cut])
        self.cycle_lengths = _read_only(cycles)
        self._set_size(int(targets.sum()), "sampling_strategy", sampling_strategy)

    def _targets(self, epoch):
        return self.target_counts

    def _members(self, epoch, cls, k, targets):
        n = int(self.counts[cls])
        t = int(self.target_counts[cls])
        if t == n:
            return k
        cycle_length = int(self.cycle_lengths[cls])
        cycle, window = divmod(epoch, cycle_length)
        return _random.permutation_at(n, (self.seed, cycle, _random.ROTATION, cls),
                               (window * t + k) % n)


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

    def __init__(self, y, *, batch_size, num_samples=None, seed=0, num_classes=None):
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

    keyword_arguments = ("power", "num_samples", "num_classes")

    def __init__(self, y, *, power=0.5, num_samples=None, seed=0, num_classes=None):
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.power = check_float("power", power, low=0.0)
        self._set_num_samples(num_samples)
        self.class_probabilities = _read_only(_power_probabilities(self.counts,
                                                                   self.power))
        self._fixed_targets = _read_only(_largest_remainder(self._size,
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

    def __init__(self, y, *, num_samples=None, seed=0, num_classes=None):
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

    def __init__(self, y, *, num_epochs, num_samples=None, seed=0, num_classes=None):
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.num_epochs = check_int("num_epochs", num_epochs, low=1)
        self._set_num_samples(num_samples)
        self._instance = _read_only(self.counts / self.counts.sum())
        self._balanced = _read_only(_power_probabilities(self.counts, 0.0))

    def probabilities(self, epoch):
        """The class probabilities p_c(t) of epoch `epoch` (float64, sum 1)."""
        epoch = check_int("epoch", epoch, low=0)
        t = min(epoch, self.num_epochs) / self.num_epochs
        return (1.0 - t) * self._instance + t * self._balanced

    def _targets(self, epoch):
        return _largest_remainder(self._size, self.probabilities(epoch))

    def _members(self, epoch, cls, k, targets):
        return self._quota_members(epoch, cls, k)


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

    def __init__(self, y, *, clone_fraction=0.25, seed=0):
        if isinstance(y, _ClassPartitioned):
            raise invalid("counts", "a label matrix: MultiLabelOverSampler clones "
                          "samples by their labels, so use MultiLabelOverSampler(y)",
                          y.counts)
        targets = y if isinstance(y, Targets) else parse_targets(y)
        super().__init__(targets, seed=seed)
        self._matrix = _read_only(targets.indicator().astype(bool))
        self.clone_fraction = check_float("clone_fraction", clone_fraction, low=0.0,
                                          low_inclusive=False)
        # The epoch is always materialised: bound it by what memory can hold.
        num_clones = self.clone_fraction * self.dataset_size
        if num_clones > _EPOCH_CACHE_LIMIT * 64:
            raise invalid("clone_fraction", f"a clone budget of at most "
                          f"{_EPOCH_CACHE_LIMIT * 64} samples (clone_fraction * "
                          f"{self.dataset_size} samples)", clone_fraction)
        self.num_clones = int(num_clones)
        self._set_size(self.dataset_size + self.num_clones, "clone_fraction",
                       clone_fraction)
        self.irlbl, self.mean_ir = _mean_ir(self.counts)
        self.irlbl = _read_only(self.irlbl)

    @property
    def materializes_epoch(self):
        return True

    def _clones(self, epoch):
        rng = _random.generator(self.seed, epoch, _random.MULTILABEL, 0)
        matrix = self._matrix
        counts = self.counts.astype(np.float64)
        bags = [label for label in np.flatnonzero(self.counts > 0)
                if self.irlbl[label] > self.mean_ir]
        members = {label: np.flatnonzero(matrix[:, label]) for label in bags}
        draws = rng.random(self.num_clones)
        clones = []
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

    def report(self, epoch=None):
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
    def from_counts(cls, counts, *, seed=0, **kwargs):
        """Not available: ML-ROS needs the label matrix, not class counts.

        Raises:
            ValueError: always.
        """
        raise invalid("counts", "a label matrix: MultiLabelOverSampler clones "
                      "samples by their labels, so use MultiLabelOverSampler(y)",
                      counts)


def _water_fill(fractions, total):
    """Inclusion probabilities in [0, 1] proportional to `fractions`, summing
    to `total` (those that would exceed 1 are capped and the rest rescaled)."""
    probabilities = np.zeros(fractions.shape[0])
    free = fractions > 0
    remaining = float(total)
    while remaining > 0 and np.any(free):
        probabilities[free] = fractions[free] * (remaining / fractions[free].sum())
        over = free & (probabilities >= 1.0)
        if not np.any(over):
            break
        probabilities[over] = 1.0
        free &= ~over
        remaining = total - float(probabilities[~free].sum())
    return probabilities


# Pixels per chunk when `class_presence` scans masks.
_PRESENCE_CHUNK = 1 << 22


def class_presence(masks, num_classes):
    """Which classes each segmentation mask contains: an (N, C) bool matrix.

    The image-level labels that `RepeatFactorSampler` (and any multi-label
    sampler) takes for masks. Masks are read in chunks of images, so a
    memmap or any array-like with slicing works without loading it whole.

    Args:
        masks: id maps of shape (N, ...) (e.g. (N, H, W) or (N, D, H, W)) with
            whole class ids in `[0, num_classes)`. For one-hot maps
            (N, ..., C) pass `masks.argmax(-1)`.
        num_classes: the number of classes C, int >= 1.

    Returns:
        A bool array of shape (N, C): `out[i, c]` is whether mask i holds a
        pixel of class c.

    Raises:
        ValueError: naming `masks` for a non-numeric, non-finite, fractional or
            out-of-range mask, or one without map axes; naming `num_classes`
            for an invalid count.

    Examples:

    >>> masks = np.array([[[0, 0], [0, 2]], [[0, 1], [1, 1]]])
    >>> class_presence(masks, 3).astype(int).tolist()
    [[1, 0, 1], [1, 1, 0]]
    """
    num_classes = check_int("num_classes", num_classes, low=1, high=MAX_CLASSES)
    shape = getattr(masks, "shape", None)
    if shape is None or isinstance(masks, list | tuple):
        masks = np.asarray(masks)
        shape = masks.shape
    if len(shape) < 2 or shape[0] == 0:
        raise invalid("masks", "id maps of shape (N, ...) with N >= 1 and at least "
                      f"one map axis; got shape {tuple(shape)}", masks)
    n = int(shape[0])
    pixels = max(1, int(np.prod(shape[1:])))
    step = max(1, _PRESENCE_CHUNK // pixels)
    presence = np.zeros((n, num_classes), dtype=bool)
    for start in range(0, n, step):
        chunk = np.asarray(masks[start:start + step]).reshape(-1, pixels)
        if chunk.dtype.kind not in "biuf":
            raise invalid("masks", f"numeric class ids; got dtype {chunk.dtype}",
                          masks)
        if chunk.dtype.kind == "f":
            if not np.all(np.isfinite(chunk)):
                raise invalid("masks", "finite class ids (found NaN or inf)", masks)
            fractional = chunk != np.floor(chunk)
            if np.any(fractional):
                raise invalid("masks", "whole class ids (found "
                              f"{np.unique(chunk[fractional])[:5].tolist()})", masks)
        low, high = chunk.min(), chunk.max()
        if low < 0 or high >= num_classes:
            bad = chunk[(chunk < 0) | (chunk >= num_classes)]
            raise invalid("masks", f"class ids in [0, num_classes={num_classes}) "
                          f"(found {np.unique(bad)[:5].tolist()})", masks)
        rows = np.arange(chunk.shape[0], dtype=np.int64)[:, None] * num_classes
        flat = presence[start:start + chunk.shape[0]].reshape(-1)
        flat[(rows + chunk.astype(np.int64)).reshape(-1)] = True
    return presence



class RepeatFactorSampler(Sampler):
    """LVIS repeat-factor sampling: images with rare classes repeated per epoch.

    Gupta et al.'s sampling for long-tailed detection / segmentation, for
    multi-label targets and masks (pass `class_presence(masks, C)`). With
    f_c the fraction of images that contain class c and threshold t, class c
    has the repeat factor `r_c = max(1, sqrt(t / f_c))` and image i the
    largest factor of the classes it contains, `r_i = max_c r_c` (1 for an
    image without any class). Each epoch holds image i `floor(r_i)` times,
    plus once more with probability `frac(r_i)` (stochastic rounding, drawn
    from `(seed, epoch)`), shuffled.

    The epoch length is constant (the generator and data-parallel shards need
    it): `len(sampler) = sum floor(r_i) + K` with `K = round(sum frac(r_i))`
    extra slots, filled by systematic sampling over a fresh random order of
    the images with inclusion probabilities `q_i = frac(r_i) * K / sum
    frac(r)` (capped at 1 by water-filling, rarely needed). So an image
    appears `floor(r_i)` or `floor(r_i) + 1` times, and
    `expected_repeats[i] = floor(r_i) + q_i`, which is r_i up to the rounding
    of the epoch length: the expected repeats of all images together differ
    from `sum r_i` by at most 1/2.

    Args:
        y: image-level labels: an (N, C) multi-hot presence matrix (from
            `class_presence` for masks), one-hot rows or class ids (one
            class per image). As everywhere in kimbalance, an (N, 1) array
            is a column of class ids (0/1 values: two classes).
        threshold: t in (0, 1]: classes in fewer than a fraction t of the
            images are repeated. LVIS uses 0.001 (the default) on 100k
            images; a small segmentation set needs a larger t (e.g. 0.1 to
            repeat classes present in < 10 % of the images).
        seed: int >= 0.
        num_classes: the number of classes, for class ids.

    Attributes:
        threshold: t.
        class_repeat_factors: r_c per class (1 for a class in no image).
        repeat_factors: r_i per image.
        expected_repeats: the expected appearances of each image per epoch.

    Examples:

    >>> y = np.array([[1, 0]] * 9 + [[1, 1]])      # class 1 in 1 of 10 images
    >>> s = RepeatFactorSampler(y, threshold=0.4, seed=0)
    >>> s.class_repeat_factors.tolist(), len(s)
    ([1.0, 2.0], 11)
    >>> int(np.sum(s.indices(0) == 9))
    2

    References:
        Gupta, Dollar & Girshick, "LVIS: A Dataset for Large Vocabulary
        Instance Segmentation", CVPR 2019 (section 4, repeat factor sampling).
    """

    keyword_arguments = ("threshold", "num_classes")
    multi_label = True

    def __init__(self, y, *, threshold=0.001, seed=0, num_classes=None):
        if isinstance(y, _ClassPartitioned):
            raise invalid("counts", "image-level labels: RepeatFactorSampler "
                          "repeats images by the classes they contain, so use "
                          "RepeatFactorSampler(y)", y.counts)
        threshold_given = threshold
        self.threshold = check_float("threshold", threshold, low=0.0, high=1.0,
                                     low_inclusive=False)
        targets = y if isinstance(y, Targets) else parse_targets(y, num_classes)
        super().__init__(targets, seed=seed, num_classes=num_classes)
        presence = targets.indicator().astype(bool)
        images = presence.shape[0]
        in_images = presence.sum(axis=0)
        class_factors = np.ones(presence.shape[1])
        present = in_images > 0
        class_factors[present] = np.maximum(
            1.0, np.sqrt(self.threshold * images / in_images[present]))
        factors = np.ones(images)
        for cls in np.flatnonzero(class_factors > 1.0):
            column = presence[:, cls]
            factors[column] = np.maximum(factors[column], class_factors[cls])
        whole = np.floor(factors).astype(np.int64)
        fractions = factors - whole
        extra = int(np.floor(fractions.sum() + 0.5))
        inclusion = _water_fill(fractions, extra)
        self.class_repeat_factors = _read_only(class_factors)
        self.repeat_factors = _read_only(factors)
        self.expected_repeats = _read_only(whole + inclusion)
        self._presence = _read_only(presence)
        self._whole = _read_only(whole)
        self._whole_ends = _read_only(np.cumsum(whole))
        self._num_whole = int(self._whole_ends[-1])
        self._num_extra = extra
        self._candidates = _read_only(np.flatnonzero(inclusion > 0))
        self._inclusion = _read_only(inclusion[self._candidates])
        self._extras_cache = OrderedDict()
        self._extras_lock = threading.Lock()
        self._set_size(self._num_whole + extra, "threshold", threshold_given)

    def _extras(self, epoch):
        """The images of the epoch's K extra slots (systematic sampling)."""
        cached = self._extras_cache.get(epoch)
        if cached is not None:
            return cached
        rng = _random.generator(self.seed, epoch, _random.REPEAT_FACTOR, 0)
        order = rng.permutation(self._candidates.shape[0])
        offset = rng.random()
        extras = np.zeros(0, dtype=np.int64)
        if self._num_extra:
            ends = np.cumsum(self._inclusion[order])
            ends *= self._num_extra / ends[-1]  # exactly K despite rounding
            points = offset + np.arange(self._num_extra)
            picks = np.minimum(np.searchsorted(ends, points, side="right"),
                               order.shape[0] - 1)
            extras = self._candidates[order[picks]]
        extras = _read_only(extras)
        with self._extras_lock:
            self._extras_cache[epoch] = extras
            while len(self._extras_cache) > 2:
                self._extras_cache.popitem(last=False)
        return extras

    def _repeats(self, epoch):
        """How often each image appears in the epoch (int64, (N,))."""
        return self._whole + np.bincount(self._extras(epoch),
                                         minlength=self.dataset_size)

    def _targets(self, epoch):
        # Images of class c in the epoch (positives per class for multi-hot).
        return (self._repeats(epoch) @ self._presence).astype(np.int64)

    def _full_epoch(self, epoch):
        items = np.concatenate([
            np.repeat(np.arange(self.dataset_size, dtype=np.int64), self._whole),
            self._extras(epoch)])
        return self._arrange_items(epoch, items, None)

    def _positions(self, epoch, positions):
        slots = self._arrange(epoch, positions, None)
        out = np.empty(slots.shape[0], dtype=np.int64)
        base = slots < self._num_whole
        out[base] = np.searchsorted(self._whole_ends, slots[base], side="right")
        out[~base] = self._extras(epoch)[slots[~base] - self._num_whole]
        return out

    def __getstate__(self):
        state = super().__getstate__()
        state["_extras_cache"] = OrderedDict()
        state["_extras_lock"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._extras_lock = threading.Lock()

    @classmethod
    def from_counts(cls, counts, *, seed=0, **kwargs):
        """Not available: repeat factors are per image, from image-level labels.

        Raises:
            ValueError: always.
        """
        raise invalid("counts", "image-level labels: RepeatFactorSampler repeats "
                      "images by the classes they contain, so use "
                      "RepeatFactorSampler(y)", counts)


SAMPLERS = {
    "instance": InstanceSampler,
    "over": RandomOverSampler,
    "under": RandomUnderSampler,
    "class_balanced": ClassBalancedSampler,
    "sqrt": SquareRootSampler,
    "power": PowerSampler,
    "progressive": ProgressiveSampler,
    "multilabel": MultiLabelOverSampler,
    "repeat_factor": RepeatFactorSampler,
}


def get_sampler(identifier, y, *, seed=0, batch_size=None, num_classes=None,
                **kwargs):
    """Builds a sampler from its name (the generator's `sampler=` names).

    Each sampler class lists the keyword arguments it takes in
    `keyword_arguments`; `batch_size` and `num_classes` are context (the
    generator's batch size and class count) and go only to the samplers
    that take them, so no caller needs to know which sampler takes what.

    Args:
        identifier: one of `"instance"`, `"over"`, `"under"`,
            `"class_balanced"`, `"sqrt"`, `"power"`, `"progressive"`,
            `"multilabel"`, `"repeat_factor"`, or a `Sampler` (returned as
            is).
        y: the targets.
        seed: int >= 0.
        batch_size: the block size of samplers that take one
            (`"class_balanced"`); ignored by the others.
        num_classes: the number of classes, for samplers that take it.
        **kwargs: the sampler's own keyword arguments (e.g.
            `sampling_strategy`, `power`, `num_epochs`).

    Returns:
        A `Sampler`.

    Raises:
        ValueError: for an unknown name, or keyword arguments the sampler
            does not take (named `sampler_kwargs`).

    Examples:

    >>> get_sampler("under", [0, 0, 0, 1]).epoch_class_counts().tolist()
    [1, 1]
    """
    if isinstance(identifier, Sampler):
        return identifier
    if not isinstance(identifier, str) or identifier not in SAMPLERS:
        raise invalid("sampler", f"one of {sorted(SAMPLERS)} or a Sampler object",
                      identifier)
    cls = SAMPLERS[identifier]
    unknown = sorted(set(kwargs) - set(cls.keyword_arguments))
    if unknown:
        raise invalid("sampler_kwargs", f"keyword arguments of {cls.__name__} "
                      f"(one of {list(cls.keyword_arguments)}; {unknown} are not)",
                      kwargs)
    context = {"batch_size": batch_size, "num_classes": num_classes}
    for name, value in context.items():
        if name in cls.keyword_arguments:
            kwargs.setdefault(name, value)
    return cls(y, seed=seed, **kwargs)
