"""Re-sampling to per-class target counts: instance, over- and under-sampling.

Each epoch holds every class at its target count (`sampling_strategy` as in
imbalanced-learn): all samples once, topped up with replacement (over) or a
rotating window of each large class (under).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

import kimbalance.data._random as _random
from kimbalance._validation import (
    check_float,
    invalid,
)
from kimbalance.data.samplers._base import (
    MAX_EPOCH_SIZE,
    Sampler,
    read_only,
)

__all__ = ["InstanceSampler", "RandomOverSampler", "RandomUnderSampler"]


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

    def __init__(self, y: Any, *, seed: int = 0,
                 num_classes: int | None = None) -> None:
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
                    or not 0 <= int(cls) < num_classes):
                raise invalid("sampling_strategy", f"class ids in [0, {num_classes})",
                              strategy)
            if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                    or not 0 <= int(value) <= MAX_EPOCH_SIZE):
                raise invalid("sampling_strategy", "counts that are ints in [0, 2**53]",
                              strategy)
            have, value = int(counts[cls]), int(value)
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

    def __init__(self, y: Any, *, sampling_strategy: Any = "auto",
                 seed: int = 0, num_classes: int | None = None) -> None:
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.sampling_strategy = sampling_strategy
        self.target_counts = read_only(_strategy_targets(sampling_strategy,
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

    def __init__(self, y: Any, *, sampling_strategy: Any = "auto",
                 seed: int = 0, num_classes: int | None = None) -> None:
        super().__init__(y, seed=seed, num_classes=num_classes)
        self.sampling_strategy = sampling_strategy
        targets = _strategy_targets(sampling_strategy, self.counts, "under")
        self.target_counts = read_only(targets)
        cycles = np.ones_like(targets)
        cut = targets > 0
        cycles[cut] = -(-self.counts[cut] // targets[cut])
        self.cycle_lengths = read_only(cycles)
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


