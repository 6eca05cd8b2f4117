"""Repeat-factor sampling of images by the classes they contain (LVIS, Gupta et al.).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

import kimbalance.data._random as _random
from kimbalance._validation import (
    MAX_CLASSES,
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

__all__ = ["RepeatFactorSampler", "class_presence"]


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


def class_presence(masks: Any, num_classes: int) -> np.ndarray:
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

    def __init__(self, y: Any, *, threshold: float = 0.001, seed: int = 0,
                 num_classes: int | None = None) -> None:
        if isinstance(y, ClassPartitioned):
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
        self.class_repeat_factors = read_only(class_factors)
        self.repeat_factors = read_only(factors)
        self.expected_repeats = read_only(whole + inclusion)
        self._presence = read_only(presence)
        self._whole = read_only(whole)
        self._whole_ends = read_only(np.cumsum(whole))
        self._num_whole = int(self._whole_ends[-1])
        self._num_extra = extra
        self._candidates = read_only(np.flatnonzero(inclusion > 0))
        self._inclusion = read_only(inclusion[self._candidates])
        self._extras_cache: OrderedDict[Any, Any] = OrderedDict()
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
        extras = read_only(extras)
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
    def from_counts(cls, counts: ArrayLike, *, seed: int = 0, **kwargs: Any) -> Any:
        """Not available: repeat factors are per image, from image-level labels.

        Raises:
            ValueError: always.
        """
        raise invalid("counts", "image-level labels: RepeatFactorSampler repeats "
                      "images by the classes they contain, so use "
                      "RepeatFactorSampler(y)", counts)


