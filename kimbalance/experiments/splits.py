"""Data splits for the experiments: long-tail, binary-pair and mosaic tasks.

- `Split`: train / test (and optional validation) arrays, the class names,
  a description and the imbalance `ratio` the split was built with.
- `long_tail_split`: a dataset's training set made long-tailed (or step /
  linear); its test set stays balanced.
- `binary_pair_split`: two real classes, imbalanced train, balanced
  validation and test.
- `mosaic_split` / `make_mosaics`: multi-label images from real tiles, with
  long-tailed label frequencies.
- `subsample`, `prepare_images`, `supported_ratio`: the small steps they share.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from kimbalance import data as kb_data
from kimbalance._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    invalid,
    parse_targets,
)
from kimbalance.weights import class_counts

__all__ = [
    "BINARY_PAIRS",
    "PROFILES",
    "Split",
    "binary_pair_split",
    "cached_dataset",
    "long_tail_split",
    "make_mosaics",
    "mosaic_split",
    "prepare_images",
    "subsample",
    "supported_ratio",
]

PROFILES = ("long_tail", "step", "linear")


@dataclasses.dataclass
class Split:
    """A train/test split (optionally with validation data) ready for `fit`.

    `y_*` are 1-D class ids for single-label tasks or (N, L) multi-hot arrays.

    Attributes:
        x_train, y_train, x_test, y_test: the arrays (one label per sample).
        class_names: one name per class (per label for multi-label).
        x_val, y_val: optional validation arrays.
        description: a one-line description for logs and tables.
        ratio: the imbalance ratio the split was built with (the one actually
            used, e.g. after `supported_ratio` lowered it), or None.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    description: str = ""
    ratio: float | None = None

    def __post_init__(self):
        for part in ("train", "test", "val"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if part == "val" and x is None and y is None:
                continue
            for name, value in ((f"x_{part}", x), (f"y_{part}", y)):
                if not hasattr(value, "shape") or len(value.shape) == 0:
                    raise invalid(name, "an array with one row per sample", value)
            if len(x) != len(y):
                raise invalid(f"y_{part}", f"one label per sample of x_{part} "
                              f"({len(x)})", y)
        if isinstance(self.class_names, str) or not hasattr(self.class_names,
                                                             "__len__"):
            raise invalid("class_names", "a list of names, one per class",
                          self.class_names)
        if self.ratio is not None:
            self.ratio = check_float("ratio", self.ratio, low=1.0)

    @property
    def num_classes(self) -> int:
        if self.y_train.ndim == 2:
            return int(self.y_train.shape[1])
        return len(self.class_names)

    @property
    def multilabel(self) -> bool:
        return self.y_train.ndim == 2

    @property
    def counts(self) -> np.ndarray:
        """Training count per class (positives per label for multi-label)."""
        return class_counts(self.y_train, None if self.multilabel
                            else self.num_classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def prepare_images(x: ArrayLike) -> np.ndarray:
    """float32 images in [0, 1] with a channel axis: (N, H, W, C).

    Integer images are divided by their dtype's maximum (255 for uint8);
    float images with values above 1 by their maximum.

    Raises:
        ValueError: for non-numeric or non-finite images, or fewer than
            3 dimensions.

    Examples:

    >>> prepare_images(np.array([[[0, 255]]], dtype=np.uint8)).tolist()
    [[[[0.0], [1.0]]]]
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise invalid("x", "a numeric array of images", x) from None
    if arr.dtype.kind not in "buif" or arr.ndim not in (3, 4):
        raise invalid("x", "numeric images of shape (N, H, W) or (N, H, W, C); got "
                      f"dtype {arr.dtype}, shape {arr.shape}", x)
    x = arr[..., None] if arr.ndim == 3 else arr
    if x.dtype.kind == "b":
        return x.astype(np.float32)
    if x.dtype.kind in "ui":
        return (x / np.iinfo(x.dtype).max).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise invalid("x", "finite pixel values (no NaN or inf)", arr)
    x = x.astype(np.float32)
    peak = float(x.max()) if x.size else 1.0
    return x / peak if peak > 1.0 else x


def subsample(y: ArrayLike, max_count: int | None, *, seed: int = 0) -> np.ndarray:
    """Indices of `min(max_count, len(y))` samples, stratified by class, sorted.

    Every class present in `y` keeps at least one sample, so shrunken smoke
    runs still see the whole label set; the other samples are spread over the
    classes in proportion to their size (largest remainders first). 2-D
    labels are stratified by their first active label (argmax).

    Args:
        y: labels: 1-D class ids, or 2-D one-hot / multi-hot rows.
        max_count: the number of samples to keep (an int >= the number of
            classes present), or None to keep everything.
        seed: seed of the draw within each class.

    Returns:
        Sorted int64 indices into `y`.

    Raises:
        ValueError: for malformed labels, or a `max_count` below the number
            of classes present (some class could not keep a sample).

    Examples:

    >>> y = np.array([0] * 8 + [1] * 2)
    >>> idx = subsample(y, 5)
    >>> idx.size, np.bincount(y[idx]).tolist()
    (5, [4, 1])
    """
    targets = parse_targets(y, name="y")
    check_int("seed", seed)
    n = len(targets)
    if max_count is None:
        return np.arange(n)
    check_int("max_count", max_count, low=1)
    if max_count >= n:
        return np.arange(n)
    keys = (targets.ids if targets.ids is not None
            else np.argmax(targets.array, axis=1))
    classes, inverse, sizes = np.unique(keys, return_inverse=True,
                                        return_counts=True)
    if max_count < len(classes):
        raise invalid("max_count", f"an int >= {len(classes)} (the number of "
                      "classes in y, each keeping a sample) or None", max_count)
    take = _stratified_sizes(sizes, max_count)
    rng = np.random.default_rng(seed)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = [rng.choice(order[start:start + size], size=k, replace=False)
              for start, size, k in zip(starts, sizes, take, strict=True)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _stratified_sizes(sizes, total):
    """Per-class sample counts summing to `total`: >= 1 each, <= the class size.

    Proportional quotas `total * n_c / N`, floored (at least 1), then
    adjusted one sample at a time by the largest remainder; requires
    len(sizes) <= total <= sum(sizes).
    """
    quota = total * sizes / sizes.sum()
    take = np.clip(np.floor(quota).astype(np.int64), 1, sizes)
    while take.sum() > total:  # the minimum of 1 pushed small classes over
        over = np.where(take > 1, take - quota, -np.inf)
        take[np.argmax(over)] -= 1
    while take.sum() < total:
        under = np.where(take < sizes, quota - take, -np.inf)
        take[np.argmax(under)] += 1
    return take


NICE_RATIOS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def supported_ratio(n_max: int, ratio: float, *, min_tail: int = 5) -> float:
    """The largest imbalance ratio <= `ratio` that leaves `min_tail` tail samples.

    Picks from 1, 2, 5, 10, 20, 50, 100, ... (or `ratio` itself when it fits).

    Args:
        n_max: samples available in the largest class.
        ratio: the requested ratio n_max / n_min.
        min_tail: the fewest samples the rarest class may keep.

    Returns:
        A float ratio.

    Raises:
        ValueError: for `n_max` or `min_tail` below 1, or a `ratio` below 1
            or not finite.

    Examples:

    >>> supported_ratio(135, 100)   # scikit-learn digits: ~135 train/class
    20.0
    >>> supported_ratio(6000, 100)  # Fashion-MNIST
    100.0
    """
    n_max = check_int("n_max", n_max, low=1)
    ratio = check_float("ratio", ratio, low=1.0)
    min_tail = check_int("min_tail", min_tail, low=1)
    if n_max / ratio >= min_tail:
        return ratio
    limit = n_max / min_tail
    fits = [r for r in NICE_RATIOS if r <= limit]
    return float(fits[-1] if fits else 1)


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str,
                   data_dir: str | pathlib.Path | None = None) -> kb_data.Dataset:
    """`kimbalance.data.load_dataset(name, data_dir=...)`, loaded once per process."""
    _check_name(name)
    return kb_data.load_dataset(name, data_dir=data_dir)


VAL_STREAM = 7  # the validation draw's own RNG stream: np.random.default_rng([seed, 7])


def long_tail_split(
    name: str = "digits",
    *,
    profile: str = "long_tail",
    ratio: float = 100,
    seed: int = 0,
    data_dir: str | pathlib.Path | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    min_tail: int = 5,
    log: Callable[[str], Any] | None = print,
    val_per_class: int | None = None,
) -> Split:
    """Loads `name`, makes its training set imbalanced; the test set stays as is.

    When the data cannot support `ratio` (the rarest class would keep fewer
    than `min_tail` samples), a smaller ratio is used and `log` says so.

    Args:
        name: a `kimbalance.data.load_dataset` name.
        profile: `"long_tail"`, `"step"` or `"linear"`.
        ratio: the imbalance ratio n_max / n_min of the training split.
        seed: seed of the subsampling.
        data_dir: forwarded to `load_dataset`.
        max_train: cap on the training-set size *before* the imbalanced split
            (smoke runs); None keeps everything.
        max_test: cap on the test-set size (stratified); None keeps all.
        min_tail: see `supported_ratio`.
        log: where the ratio note goes (`print`, or None for silence).
        val_per_class: None (no validation set), or an int >= 1: a balanced
            validation set of that many images per class, drawn (seeded)
            from the training images the imbalanced split left out
            (ImageNet-LT's convention, so it costs the long tail no
            training data). The head class keeps `val_per_class` images
            fewer (the profile's `n_max` is the smallest class size minus
            `val_per_class`), so every class has images to spare.

    Returns:
        A `Split`; `split.ratio` is the ratio used, `split.description`
        records the profile, that ratio and the validation size;
        `split.x_val` / `split.y_val` hold the validation set (None when
        `val_per_class` is None).

    Raises:
        ValueError: for an unknown profile, a ratio below 1 or not finite,
            bad caps or seed, a `log` that is not callable, or a
            `val_per_class` that is not None or an int >= 1 smaller than
            the smallest class.
    """
    _check_name(name)
    check_choice("profile", profile, PROFILES)
    ratio = check_float("ratio", ratio, low=1.0)
    check_int("seed", seed)
    _check_cap("max_train", max_train)
    _check_cap("max_test", max_test)
    check_int("min_tail", min_tail, low=1)
    _check_log(log)
    if val_per_class is not None:
        check_int("val_per_class", val_per_class, low=1)
    dataset = cached_dataset(name, data_dir)
    x_train, y_train = dataset.x_train, np.asarray(dataset.y_train).reshape(-1)
    keep = subsample(y_train, max_train, seed=seed)
    x_train, y_train = x_train[keep], y_train[keep]
    n_max = int(np.bincount(y_train).min())
    if val_per_class is not None:
        if val_per_class >= n_max:
            raise invalid("val_per_class", f"None or an int in [1, {n_max - 1}] "
                          f"(the smallest class of {name} has {n_max} training "
                          "images here)", val_per_class)
        n_max -= val_per_class
    used = supported_ratio(n_max, ratio, min_tail=min_tail)
    if used != float(ratio) and log is not None:
        log(f"note: {name} has only {n_max} training samples in its smallest "
            f"class; using imbalance ratio {used:g} instead of {float(ratio):g} "
            f"so the rarest class keeps >= {min_tail} samples")
    chosen = kb_data.imbalanced_indices(
        y_train, profile=profile, ratio=used, seed=seed,
        n_max=None if val_per_class is None else n_max)
    x_val = y_val = None
    description = f"{name} {profile} ratio={used:g}"
    if val_per_class is not None:
        val = _left_out_per_class(y_train, chosen, val_per_class, seed)
        x_val, y_val = prepare_images(x_train[val]), y_train[val].astype(np.int64)
        description += f" val={val_per_class}/class"
    y_test = np.asarray(dataset.y_test).reshape(-1)
    keep = subsample(y_test, max_test, seed=seed)
    return Split(
        x_train=prepare_images(x_train[chosen]),
        y_train=np.asarray(y_train[chosen], np.int64),
        x_test=prepare_images(dataset.x_test[keep]),
        y_test=y_test[keep].astype(np.int64),
        class_names=list(dataset.class_names),
        x_val=x_val, y_val=y_val,
        description=description,
        ratio=used,
    )


def _left_out_per_class(y, chosen, per_class, seed):
    """`per_class` indices per class among those not in `chosen`, sorted.

    The draw has its own stream, so the training split is the same with or
    without a validation set of a given size.
    """
    left = np.ones(len(y), bool)
    left[chosen] = False
    rng = np.random.default_rng([seed, VAL_STREAM])
    picks = [rng.choice(np.flatnonzero(left & (y == c)), size=per_class,
                        replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise invalid("name", "a dataset name (a non-empty str)", name)
    return name


def _check_cap(name, value):
    if value is not None:
        check_int(name, value, low=1)
    return value


def _check_log(log):
    if log is not None and not callable(log):
        raise invalid("log", "a callable taking one str (e.g. print) or None", log)
    return log


BINARY_PAIRS = {
    # dataset: (majority / negative class, minority / positive class)
    "cifar10": (3, 5),        # cats vs dogs, as in the seed blog post
    "fashion_mnist": (6, 0),  # shirt vs T-shirt/top, the most confused pair
    "mnist": (3, 5),
    "digits": (3, 5),
}


def binary_pair_split(
    name: str = "digits",
    *,
    pair: Sequence[int] | None = None,
    ratio: float = 4.0,
    val_fraction: float = 0.2,
    balanced: bool = False,
    seed: int = 0,
    data_dir: str | pathlib.Path | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Split:
    """A binary task from two real classes: imbalanced train, balanced val/test.

    The training pool of the two classes is split (stratified) into a
    validation part and a training part; the validation part and the pair's
    test images are cut to equal class sizes, so a majority-class model
    scores 0.5 there. The training part keeps `ratio` negatives per positive
    (`kimbalance.data.binary_subset`), or every image when `balanced`.

    Args:
        name: a `load_dataset` name with an entry in `BINARY_PAIRS`, or any
            name together with `pair`.
        pair: `(negative, positive)` class ids (negative = majority, label 0).
        ratio: negatives per positive in the training set.
        val_fraction: fraction of the pool held out for validation.
        balanced: train on a balanced set instead (the reference run).
        seed: seed of the splits.
        data_dir: forwarded to `load_dataset`.
        max_train: cap on the training pool (smoke runs).
        max_test: cap on the test set.

    Returns:
        A `Split` with `x_val`/`y_val`; labels are 0 (negative) and 1;
        `split.ratio` is `ratio` (1 when `balanced`).

    Raises:
        ValueError: for an unknown pair, a `ratio` below 1, a `val_fraction`
            outside (0, 1) or other bad arguments.
    """
    _check_name(name)
    ratio = check_float("ratio", ratio, low=1.0)
    check_float("val_fraction", val_fraction, low=0.0, high=1.0,
                low_inclusive=False, high_inclusive=False)
    balanced = check_bool("balanced", balanced)
    check_int("seed", seed)
    _check_cap("max_train", max_train)
    _check_cap("max_test", max_test)
    if pair is None:
        if name not in BINARY_PAIRS:
            raise invalid("pair", f"(negative, positive) class ids for {name!r} "
                          f"(known pairs: {sorted(BINARY_PAIRS)})", pair)
        pair = BINARY_PAIRS[name]
    if (isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2
            or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool)
                       and c >= 0 for c in pair) or pair[0] == pair[1]):
        raise invalid("pair", "two different class ids (negative, positive)", pair)
    negative, positive = (int(c) for c in pair)
    dataset = cached_dataset(name, data_dir)
    y_all = np.asarray(dataset.y_train).reshape(-1)
    pool = np.flatnonzero((y_all == negative) | (y_all == positive))
    pool = pool[subsample(y_all[pool], max_train, seed=seed)]
    train_part, val_part = kb_data.stratified_split(y_all[pool], test_size=val_fraction,
                                                    seed=seed)
    val_idx = _equal_classes(pool[val_part], y_all, seed)
    train_pool = pool[train_part]
    keep, y_train = kb_data.binary_subset(
        y_all[train_pool], positive=positive, negative=negative,
        ratio=1.0 if balanced else ratio, seed=seed)
    y_test_all = np.asarray(dataset.y_test).reshape(-1)
    test_idx = np.flatnonzero((y_test_all == negative) | (y_test_all == positive))
    test_idx = _equal_classes(test_idx, y_test_all, seed)
    test_idx = test_idx[subsample(y_test_all[test_idx], max_test, seed=seed)]
    names = list(dataset.class_names)
    return Split(
        x_train=prepare_images(dataset.x_train[train_pool[keep]]), y_train=y_train,
        x_val=prepare_images(dataset.x_train[val_idx]),
        y_val=(y_all[val_idx] == positive).astype(np.int64),
        x_test=prepare_images(dataset.x_test[test_idx]),
        y_test=(y_test_all[test_idx] == positive).astype(np.int64),
        class_names=[names[negative], names[positive]],
        description=(f"{name} {_label(names, negative)} vs "
                     f"{_label(names, positive)} at "
                     + ("1:1" if balanced else f"{ratio:g}:1")),
        ratio=1.0 if balanced else ratio,
    )


def _label(names, c):
    return names[c] if names[c] == str(c) else f"{names[c]} ({c})"


def _equal_classes(indices, y, seed):
    """`indices` cut so every class keeps as many as the smallest (sorted)."""
    rng = np.random.default_rng(seed)
    labels = y[indices]
    classes = np.unique(labels)
    n = min(int(np.sum(labels == c)) for c in classes)
    kept = [rng.choice(indices[labels == c], size=n, replace=False) for c in classes]
    return np.sort(np.concatenate(kept))


def make_mosaics(
    x: ArrayLike,
    y: ArrayLike,
    num_samples: int,
    *,
    grid: int = 2,
    num_classes: int | None = None,
    class_probs: ArrayLike | None = None,
    empty_prob: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label images: `grid` x `grid` mosaics of single-label tiles.

    Each tile is empty (zeros) with probability `empty_prob`, else an image of
    class c drawn with probability `class_probs[c]`; the mosaic's labels are
    the set of classes present. Long-tailed `class_probs` give long-tailed
    label frequencies from real images.

    Args:
        x: tile images, (N, H, W) or (N, H, W, C).
        y: class ids of `x` (1-D, an (N, 1) column or one-hot rows).
        num_samples: number of mosaics.
        grid: tiles per side.
        num_classes: label-set size; defaults to `max(y) + 1`.
        class_probs: per-class tile probabilities (normalised); None = uniform.
        empty_prob: probability that a tile is blank.
        seed: seed of the draw.

    Returns:
        (images, multi_hot): (num_samples, grid*H, grid*W, C) float32 and
        (num_samples, num_classes) int64 0/1 labels.

    Raises:
        ValueError: for a bad grid, probability vector or empty class.

    Examples:

    >>> tiles = np.eye(4)[:, None, :].repeat(4, axis=1)  # 4 classes, 4x4 tiles
    >>> images, labels = make_mosaics(tiles, np.arange(4), 3, seed=0)
    >>> images.shape, labels.shape
    ((3, 8, 8, 1), (3, 4))
    >>> bool(np.all(labels.sum(axis=1) >= 1))
    True
    """
    check_int("grid", grid, low=1)
    check_int("num_samples", num_samples, low=1)
    check_int("seed", seed)
    tile_images = prepare_images(x)
    targets = parse_targets(y, num_classes, name="y", multi_label=False)
    ids = cast(np.ndarray, targets.ids)  # multi_label=False: never None
    if len(tile_images) != len(ids):
        raise invalid("y", f"one label per image ({len(tile_images)})", ids)
    num_classes = targets.num_classes
    if class_probs is None:
        class_probs = np.ones(num_classes)
    try:
        probs = np.asarray(class_probs, np.float64)
    except (TypeError, ValueError):
        probs = np.full(1, np.nan)
    if (probs.shape != (num_classes,) or not np.all(np.isfinite(probs))
            or np.any(probs < 0) or probs.sum() <= 0):
        raise invalid("class_probs", f"{num_classes} finite probabilities >= 0, "
                      "not all 0", class_probs)
    probs = probs / probs.sum()
    check_float("empty_prob", empty_prob, low=0.0, high=1.0, high_inclusive=False)
    by_class = [np.flatnonzero(ids == c) for c in range(num_classes)]
    missing = [c for c in range(num_classes) if probs[c] > 0 and not len(by_class[c])]
    if missing:
        raise invalid("y", f"images of every class with probability > 0; "
                      f"classes {missing} have none", ids)
    rng = np.random.default_rng(seed)
    tiles = grid * grid
    classes = rng.choice(num_classes, size=(num_samples, tiles), p=probs)
    empty = rng.random((num_samples, tiles)) < empty_prob
    # A mosaic with no tile at all carries no label: give it one tile back.
    all_empty = empty.all(axis=1)
    empty[all_empty, 0] = False
    height, width = tile_images.shape[1:3]
    images = np.zeros((num_samples, grid * height, grid * width,
                       tile_images.shape[3]), dtype=np.float32)
    labels = np.zeros((num_samples, num_classes), dtype=np.int64)
    for t in range(tiles):
        row, col = divmod(t, grid)
        for c in range(num_classes):
            rows = np.flatnonzero((classes[:, t] == c) & ~empty[:, t])
            if not len(rows):
                continue
            picks = rng.choice(by_class[c], size=len(rows))
            images[rows, row * height:(row + 1) * height,
                   col * width:(col + 1) * width] = tile_images[picks]
            labels[rows, c] = 1
    return images, labels


def mosaic_split(
    name: str = "digits",
    *,
    grid: int = 2,
    label_ratio: float = 50.0,
    empty_prob: float = 0.25,
    num_train: int = 4000,
    num_val: int = 1000,
    num_test: int = 2000,
    val_fraction: float = 0.2,
    seed: int = 0,
    data_dir: str | pathlib.Path | None = None,
) -> Split:
    """A multi-label task from real images: mosaics with long-tailed labels.

    The training images of `name` are split (stratified) into tile pools for
    training and validation mosaics; test mosaics use the test images. Train
    and validation tiles follow long-tailed class probabilities
    (`long_tail_counts` with `label_ratio`), so label frequencies are
    long-tailed; test tiles are uniform, so every label has positives to
    score.

    Args:
        name: a `load_dataset` name.
        grid: tiles per side (2: 2x2 mosaics).
        label_ratio: head / tail tile-probability ratio.
        empty_prob: probability that a tile is blank.
        num_train, num_val, num_test: numbers of mosaics.
        val_fraction: fraction of the training images used for validation
            tiles.
        seed: seed of the draws.
        data_dir: forwarded to `load_dataset`.

    Returns:
        A multi-label `Split` (multi-hot `y_*`) with validation data;
        `split.ratio` is `label_ratio`.

    Raises:
        ValueError: for a `label_ratio` below 1, sizes below 1, a
            `val_fraction` outside (0, 1) or other bad arguments.
    """
    _check_name(name)
    label_ratio = check_float("label_ratio", label_ratio, low=1.0)
    for key, value in (("num_train", num_train), ("num_val", num_val),
                       ("num_test", num_test)):
        check_int(key, value, low=1)
    check_float("val_fraction", val_fraction, low=0.0, high=1.0,
                low_inclusive=False, high_inclusive=False)
    check_int("seed", seed)
    dataset = cached_dataset(name, data_dir)
    y_all = np.asarray(dataset.y_train).reshape(-1)
    num_classes = len(dataset.class_names)
    train_idx, val_idx = kb_data.stratified_split(y_all, test_size=val_fraction,
                                                  seed=seed)
    probs = np.asarray(kb_data.long_tail_counts(10**6, num_classes, label_ratio),
                       np.float64)
    common: dict[str, Any] = dict(grid=grid, num_classes=num_classes,
                                  empty_prob=empty_prob)
    x_train, y_train = make_mosaics(dataset.x_train[train_idx], y_all[train_idx],
                                    num_train, class_probs=probs, seed=seed,
                                    **common)
    x_val, y_val = make_mosaics(dataset.x_train[val_idx], y_all[val_idx], num_val,
                                class_probs=probs, seed=seed + 1, **common)
    x_test, y_test = make_mosaics(dataset.x_test, dataset.y_test, num_test,
                                  seed=seed + 2, **common)
    return Split(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                 x_test=x_test, y_test=y_test,
                 class_names=[str(n) for n in dataset.class_names],
                 description=f"{name} {grid}x{grid} mosaics, label ratio "
                             f"{label_ratio:g}, empty tiles {empty_prob:g}",
                 ratio=label_ratio)


