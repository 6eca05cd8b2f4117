"""Segmentation masks from labelled images: mosaics of real tiles, long-tailed classes.

`segmentation_mosaics` turns an image classification dataset (Fashion-MNIST,
the bundled 8x8 digits, ...) into an imbalanced semantic segmentation task
that ships offline: each image is a `grid` x `grid` mosaic of tiles, a tile
is blank (background) or a real image of some class, and each pixel of a
tile whose intensity is above `threshold` is labelled with the tile's class
+ 1; everything else is background (class 0). Background is the dominant
class; tile classes follow a long-tailed profile, so the foreground classes
are long-tailed in pixels and in the images that contain them.

NumPy only (layer 2).
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike

from kimbalance._validation import (
    check_float,
    check_int,
    invalid,
    parse_targets,
)

__all__ = ["segmentation_mosaics", "tile_class_probabilities"]

# Mosaics hold at most this many pixels in all (about 2 GB of float32 images).
_MAX_PIXELS = 1 << 29


def tile_class_probabilities(num_classes: int, ratio: float) -> np.ndarray:
    """Long-tailed tile-class probabilities p_c proportional to ratio**(-c/(C-1)).

    The profile of `kimbalance.data.long_tail_counts` as probabilities: class
    0 is the head, class C-1 is `ratio` times rarer.

    Args:
        num_classes: C, an int >= 1 (one class gets probability 1).
        ratio: head / tail probability ratio, a float >= 1.

    Returns:
        A float64 array of shape (C,) summing to 1.

    Raises:
        ValueError: for a `num_classes` below 1 or a `ratio` below 1 or not
            finite.

    Examples:

    >>> p = tile_class_probabilities(3, 100.0)
    >>> np.round(p / p[-1], 6).tolist()
    [100.0, 10.0, 1.0]
    """
    num_classes = check_int("num_classes", num_classes, low=1)
    ratio = check_float("ratio", ratio, low=1.0)
    if num_classes == 1:
        return np.ones(1)
    weights = ratio ** (-np.arange(num_classes) / (num_classes - 1.0))
    return weights / weights.sum()


def _tile_images(images):
    """Tiles as float32 (N, h, w, channels) in [0, 1]."""
    try:
        arr = np.asarray(images)
    except (TypeError, ValueError):
        raise invalid("images", "a numeric array of images", images) from None
    if arr.dtype.kind not in "buif" or arr.ndim not in (3, 4) or arr.shape[0] == 0:
        raise invalid("images", "N >= 1 numeric images of shape (N, h, w) or "
                      f"(N, h, w, channels); got dtype {arr.dtype}, shape "
                      f"{arr.shape}", images)
    x = arr[..., None] if arr.ndim == 3 else arr
    if min(x.shape[1:]) == 0:
        raise invalid("images", f"non-empty tiles; got shape {arr.shape}", images)
    if x.dtype.kind in "ui":
        return (x / np.iinfo(x.dtype).max).astype(np.float32)
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise invalid("images", "integer images (scaled by their dtype's maximum) "
                      "or float images with values in [0, 1]", images)
    return x


def _slot_classes(rng, num_images, slots, num_classes, class_counts, ratio,
                  background_prob):
    """The tile class of every slot, (num_images, slots), -1 for a blank slot."""
    if class_counts is not None:
        total = int(class_counts.sum())
        if total > num_images * slots:
            raise invalid("class_counts", f"at most num_images * grid**2 = "
                          f"{num_images * slots} tiles in all (got {total})",
                          class_counts.tolist())
        classes = np.full(num_images * slots, -1, dtype=np.int64)
        where = rng.permutation(num_images * slots)[:total]
        classes[where] = np.repeat(np.arange(num_classes), class_counts)
        return classes.reshape(num_images, slots)
    probs = tile_class_probabilities(num_classes, ratio)
    classes = rng.choice(num_classes, size=(num_images, slots), p=probs)
    blank = rng.random((num_images, slots)) < background_prob
    return np.where(blank, -1, classes)


def _check_class_counts(class_counts, num_classes):
    try:
        counts = np.asarray(class_counts)
    except (TypeError, ValueError):
        counts = np.asarray([np.nan])
    ok = (counts.shape == (num_classes,) and counts.dtype.kind in "iuf"
          and np.all(np.isfinite(counts)) and np.all(counts >= 0)
          and np.all(counts == np.floor(counts)) and counts.sum() > 0)
    if not ok:
        raise invalid("class_counts", f"{num_classes} whole tile counts >= 0 (one "
                      "per class of `labels`), not all 0", class_counts)
    return counts.astype(np.int64)


def segmentation_mosaics(
    images: ArrayLike, labels: ArrayLike, *, num_images: int, grid: int = 2,
    class_counts: ArrayLike | None = None, ratio: float | None = None,
    background_prob: float | None = None, threshold: float = 0.3,
    noise: float = 0.0, num_classes: int | None = None, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Segmentation images and masks: mosaics of real tiles on a background.

    Every mosaic is `grid` x `grid` slots of `h` x `w` pixels. A slot is blank
    (background) or holds a real image, drawn (with replacement) among the
    images of its tile class c. Masks label each pixel of a tile whose
    intensity (mean over channels, in [0, 1]) is above `threshold` with
    `c + 1`; the rest of the tile and blank slots are background, class 0.
    The mask has `num_classes + 1` classes; background is the dominant one.

    Tile classes are long-tailed in one of two ways:

    - `ratio`: each slot is blank with probability `background_prob`
      (default 0.25), else of class c with probability proportional to
      `ratio ** (-c / (C - 1))` (`tile_class_probabilities`; `ratio=1`:
      uniform, the default when `class_counts` is not given either);
    - `class_counts`: exactly `class_counts[c]` tiles of class c, placed in
      distinct random slots (e.g. `long_tail_counts(n_max, C, ratio)`), every
      other slot blank (`background_prob` must then be None).

    `noise` > 0 adds Gaussian noise of that standard deviation to the images
    (clipped to [0, 1]); masks come from the clean tiles. The result depends
    only on the arguments: the same `seed` gives the same mosaics.

    Args:
        images: the tiles, (N, h, w) or (N, h, w, channels); integer images
            are divided by their dtype's maximum (255 for uint8), float
            images must lie in [0, 1].
        labels: class ids of `images` (1-D, an (N, 1) column or one-hot rows).
        num_images: the number of mosaics, an int >= 1.
        grid: tiles per side, an int >= 1.
        class_counts: None, or the number of tiles of each class (C whole
            numbers >= 0, summing to at most `num_images * grid**2`).
        ratio: None, or the head / tail tile-probability ratio (a float >= 1).
        background_prob: None, or the probability in [0, 1) that a slot is
            blank (`ratio` mode only; default 0.25).
        threshold: the intensity in [0, 1) above which a tile pixel is
            foreground.
        noise: standard deviation (a float >= 0) of the Gaussian noise added
            to the images.
        num_classes: the number of tile classes C; defaults to `max(labels)
            + 1`.
        seed: an int >= 0.

    Returns:
        `(x, masks)`: float32 images of shape `(num_images, grid * h, grid *
        w, channels)` in [0, 1] and int32 id maps of shape `(num_images, grid
        * h, grid * w)` with values in `[0, C]`.

    Raises:
        ValueError: naming the argument, for images that are not numeric or
            not in [0, 1], labels not matching the images, a class with tiles
            to place but no image, both `ratio` and `class_counts`, bad
            counts, probabilities, sizes or seeds.

    Examples:

    Digits tiles (8 x 8), 3 tile classes with a 10:1 long tail: background
    holds most pixels, the tail class (id 3) the fewest.

    >>> from kimbalance.data import load_dataset
    >>> ds = load_dataset("digits")
    >>> keep = ds.y_train < 3
    >>> x, masks = segmentation_mosaics(ds.x_train[keep], ds.y_train[keep],
    ...                                 num_images=200, ratio=10.0, seed=0)
    >>> x.shape, x.dtype.name, masks.shape, masks.dtype.name
    ((200, 16, 16, 1), 'float32', (200, 16, 16), 'int32')
    >>> np.bincount(masks.ravel(), minlength=4).tolist()
    [35792, 10902, 3249, 1257]
    >>> int((masks == 3).any(axis=(1, 2)).sum())  # images holding class 3
    49
    """
    tiles = _tile_images(images)
    targets = parse_targets(labels, num_classes, name="labels", multi_label=False)
    ids = cast(np.ndarray, targets.ids)  # multi_label=False: never None
    if len(ids) != len(tiles):
        raise invalid("labels", f"one class id per image ({len(tiles)} images); "
                      f"got {len(ids)} labels", labels)
    num_classes = targets.num_classes
    num_images = check_int("num_images", num_images, low=1)
    grid = check_int("grid", grid, low=1)
    height, width, channels = tiles.shape[1:]
    pixels = num_images * (grid * height) * (grid * width) * channels
    if pixels > _MAX_PIXELS:
        raise invalid("num_images", f"at most {_MAX_PIXELS} pixels in all "
                      f"(num_images * (grid*h) * (grid*w) * channels = {pixels})",
                      num_images)
    threshold = check_float("threshold", threshold, low=0.0, high=1.0,
                            high_inclusive=False)
    noise = check_float("noise", noise, low=0.0, high=1e3)
    seed = check_int("seed", seed, low=0)
    if class_counts is not None and ratio is not None:
        raise invalid("ratio", "None when `class_counts` is given (one long-tail "
                      "definition)", ratio)
    if class_counts is not None:
        if background_prob is not None:
            raise invalid("background_prob", "None when `class_counts` is given "
                          "(the slots left over are blank)", background_prob)
        counts = _check_class_counts(class_counts, num_classes)
        needed = counts > 0
    else:
        counts = None
        ratio = 1.0 if ratio is None else check_float("ratio", ratio, low=1.0)
        background_prob = 0.25 if background_prob is None else check_float(
            "background_prob", background_prob, low=0.0, high=1.0,
            high_inclusive=False)
        needed = np.ones(num_classes, dtype=bool)
    by_class = [np.flatnonzero(ids == c) for c in range(num_classes)]
    missing = [c for c in range(num_classes) if needed[c] and not len(by_class[c])]
    if missing:
        raise invalid("labels", f"images of every class with tiles to place; "
                      f"classes {missing} have none", labels)
    rng = np.random.default_rng([seed, 0x5E6])
    slots = grid * grid
    classes = _slot_classes(rng, num_images, slots, num_classes, counts,
                            ratio, background_prob)
    picks = np.zeros(classes.shape, dtype=np.int64)
    for c in range(num_classes):
        where = classes == c
        if np.any(where):
            picks[where] = rng.choice(by_class[c], size=int(where.sum()))
    foreground = tiles.mean(axis=-1) > threshold  # (N, h, w)
    x = np.zeros((num_images, grid * height, grid * width, channels), np.float32)
    masks = np.zeros((num_images, grid * height, grid * width), np.int32)
    for slot in range(slots):
        row, col = divmod(slot, grid)
        rows = np.flatnonzero(classes[:, slot] >= 0)
        if not len(rows):
            continue
        chosen = picks[rows, slot]
        window = (slice(row * height, (row + 1) * height),
                  slice(col * width, (col + 1) * width))
        x[(rows, *window)] = tiles[chosen]
        masks[(rows, *window)] = np.where(
            foreground[chosen], classes[rows, slot][:, None, None] + 1, 0)
    if noise > 0:
        x += np.asarray(rng.normal(0.0, noise, size=x.shape), dtype=np.float32)
        np.clip(x, 0.0, 1.0, out=x)
    return x, masks
