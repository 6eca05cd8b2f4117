"""Image augmentation on NumPy batches, for `BalancedBatchGenerator(augment=...)`.

Over-sampling and class-balanced batches show the few tail images many times
per epoch; random shifts and flips make those repeats differ, which is the
usual companion of re-sampling in the long-tail literature (random crop with
padding and horizontal flip on CIFAR-LT, Cao et al. 2019; Cui et al. 2019).
NumPy only, vectorised over the batch, reproducible from the generator's
per-batch `rng`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kimbalance._validation import (
    check_bool,
    check_float,
    check_int,
    invalid,
    parse_targets,
)

__all__ = ["RandomShiftFlip"]


class RandomShiftFlip:
    """Random translation (zero padding + crop) and horizontal flip of images.

    Each image of a channels-last batch `(N, H, W, C)` (or `(N, H, W)`) is
    shifted by an offset drawn uniformly from `[-max_shift, max_shift]` on
    each axis, the uncovered border filled with `fill_value` (the CIFAR
    "pad 4, random crop" of the long-tail papers is `max_shift=4`), then
    mirrored left-right with probability 1/2 when `horizontal_flip=True`.
    The output has the input's shape and dtype.

    Pass it to the generator: `BalancedBatchGenerator(x, y, augment=
    RandomShiftFlip(2))` calls it with a NumPy `rng` seeded from
    `(seed, epoch, batch)`, so augmented epochs reproduce exactly. With
    `classes=`, only the images of those classes are augmented (e.g. the tail
    classes), through the generator's `augment(x, y)` form.

    Args:
        max_shift: the largest shift in pixels, int >= 0.
        horizontal_flip: whether to mirror half of the images left-right.
        fill_value: the value of the pixels shifted in (0 by default).
        classes: None (augment every image) or the class ids to augment;
            needs the batch's labels `y` as class ids (N,) / (N, 1) or one-hot
            rows (read by the package's label parser).

    Raises:
        ValueError: for `max_shift < 0`, a non-bool `horizontal_flip`, a
            non-numeric `fill_value`, invalid `classes`, or a
            batch that is not a (N, H, W) / (N, H, W, C) array with
            `max_shift` below H and W.

    Examples:

    >>> x = np.arange(2 * 3 * 3, dtype="float32").reshape(2, 3, 3)
    >>> augment = RandomShiftFlip(max_shift=1)
    >>> out = augment(x, rng=np.random.default_rng(0))
    >>> out.shape, out.dtype == x.dtype
    ((2, 3, 3), True)
    >>> RandomShiftFlip(max_shift=0, horizontal_flip=False)(x) is x
    True
    """

    def __init__(self, max_shift: int = 2, *, horizontal_flip: bool = True,
                 fill_value: float = 0.0, classes: Sequence[int] | None = None,
                 ) -> None:
        self.max_shift = check_int("max_shift", max_shift, low=0)
        self.horizontal_flip = check_bool("horizontal_flip", horizontal_flip)
        self.fill_value = check_float("fill_value", fill_value)
        if classes is not None:
            sequence = isinstance(classes, list | tuple | np.ndarray)
            ids = np.asarray(classes) if sequence else None
            if (ids is None or ids.ndim != 1 or ids.size == 0
                    or not np.issubdtype(ids.dtype, np.integer)):
                raise invalid("classes", "None or a non-empty list of int class ids",
                              classes)
            if ids.min() < 0:
                raise invalid("classes", "class ids >= 0", classes)
            classes = sorted({int(c) for c in ids})
        self.classes = classes

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None,
                 rng: np.random.Generator | None = None) -> np.ndarray:
        """Returns the augmented batch (a new array; `x` itself if a no-op)."""
        images = np.asarray(x)
        if images.ndim not in (3, 4) or images.dtype.kind not in "biuf":
            raise invalid("x", "a numeric image batch of shape (N, H, W) or "
                          f"(N, H, W, C) (got shape {images.shape})", x)
        x = images
        if self.max_shift and self.max_shift >= min(x.shape[1], x.shape[2]):
            raise invalid("max_shift", f"a shift below the image size "
                          f"{x.shape[1:3]}", self.max_shift)
        if not self.max_shift and not self.horizontal_flip:
            return x
        rng = rng if rng is not None else np.random.default_rng()
        selected = self._selected(x, y)
        if selected is not None:
            out = x.copy()
            if selected.any():
                out[selected] = self._transform(x[selected], rng)
            return out
        return self._transform(x, rng)

    def _selected(self, x, y):
        if self.classes is None:
            return None
        if y is None:
            raise invalid("y", "the batch's labels when `classes` is set (the "
                          "generator passes them)", None)
        targets = parse_targets(y, name="y")
        if targets.ids is None or len(targets) != x.shape[0]:
            raise invalid("y", f"{x.shape[0]} class ids or one-hot rows (one per "
                          "image) with `classes`", y)
        return np.isin(targets.ids, self.classes)

    def _transform(self, x, rng):
        n, height, width = x.shape[:3]
        s = self.max_shift
        if s:
            pad = [(0, 0), (s, s), (s, s)] + [(0, 0)] * (x.ndim - 3)
            padded = np.pad(x, pad, constant_values=self.fill_value)
            # A crop starting at s + shift: offset 0 is the image unchanged.
            dy = rng.integers(0, 2 * s + 1, size=n)
            dx = rng.integers(0, 2 * s + 1, size=n)
            rows = dy[:, None] + np.arange(height)
            cols = dx[:, None] + np.arange(width)
            x = padded[np.arange(n)[:, None, None], rows[:, :, None],
                       cols[:, None, :]]
        else:
            x = x.copy()
        if self.horizontal_flip:
            flip = rng.random(n) < 0.5
            x[flip] = x[flip, :, ::-1]
        return x

    def __repr__(self) -> str:
        return (f"RandomShiftFlip(max_shift={self.max_shift}, "
                f"horizontal_flip={self.horizontal_flip}, "
                f"fill_value={self.fill_value!r}, classes={self.classes!r})")
