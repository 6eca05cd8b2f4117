"""Imbalanced splits, imbalance statistics and stratified splits (NumPy only).

Building a long-tailed or step-imbalanced training split from a balanced one
follows the protocol of Cao et al. (LDAM-DRW) and Cui et al. (class-balanced
loss): class `i` in the order of `class_order` keeps `counts[i]` samples, drawn
without replacement with a seed. Count profiles:

| profile | samples of the class at rank i (C classes, ratio rho) |
|---|---|
| `"long_tail"` | `int(n_max * (1 / rho) ** (i / (C - 1.0)))` |
| `"step"` | `n_max` (majority ranks), then `n_min = int(n_max * (1 / rho))` |
| `"linear"` | `int(n_max * (1 - i / (C - 1)) + n_min * i / (C - 1))` |

The step profile has `round(C * minority_fraction)` minority classes (the last
ranks).

Ratios are always majority : minority, so `ratio >= 1` and `ratio = 1` is
balanced. Labels are 1-D class ids (an (N, 1) column or one-hot rows work too);
`describe` and `stratified_split` also take 2-D multi-hot targets.

References:
    Buda, Maki and Mazurowski, "A systematic study of the class imbalance
    problem in convolutional neural networks", Neural Networks 2018.
    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
    Margin Loss", NeurIPS 2019.
    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
    CVPR 2019.
    Charte et al., "Addressing imbalance in multilabel classification:
    Measures and random resampling algorithms", Neurocomputing 2015.
    Charte et al., "Dealing with difficult minority labels in imbalanced
    multilabel data sets", Neurocomputing 2019.
    Sechidis, Tsoumakas and Vlahavas, "On the Stratification of Multi-label
    Data", ECML PKDD 2011.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from kimbalance._validation import (
    MAX_CLASSES,
    check_choice,
    check_class_names,
    check_counts,
    check_float,
    check_int,
    invalid,
    parse_targets,
)

__all__ = [
    "PROFILES",
    "long_tail_counts",
    "step_counts",
    "linear_counts",
    "imbalanced_indices",
    "make_imbalanced",
    "binary_subset",
    "ImbalanceReport",
    "describe",
    "stratified_split",
]

PROFILES = ("long_tail", "step", "linear")


# ---------------------------------------------------------------------------
# Label handling
# ---------------------------------------------------------------------------


def _single_label_targets(y, num_classes=None):
    """Parses `y`; imbalance construction needs one class per sample."""
    targets = parse_targets(y, num_classes)
    if targets.kind == "multi_hot":
        raise invalid("y", "single-label targets (class ids or one-hot rows); "
                      "multi-hot rows are not supported here", y)
    return targets


def _check_seed(seed):
    return check_int("seed", seed, low=0)


# ---------------------------------------------------------------------------
# Count profiles
# ---------------------------------------------------------------------------


def _check_profile_args(n_max, num_classes, ratio):
    n_max = check_int("n_max", n_max, low=1)
    num_classes = check_int("num_classes", num_classes, low=2)
    ratio = check_float("ratio", ratio, low=1.0)
    return n_max, num_classes, ratio


def _check_min_count(counts, n_max, ratio):
    if counts.min() < 1:
        raise invalid("ratio", f"a ratio that leaves the rarest class at least one "
                      f"sample with n_max={n_max} (ratio <= n_max)", ratio)
    return counts


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> np.ndarray:
    """Per-class counts of an exponentially decaying (long-tailed) profile.

    Class `i` gets `int(n_max * (1 / ratio) ** (i / (num_classes - 1.0)))`
    samples: exactly the expression of the official LDAM-DRW and class-balanced
    loss code (`img_max * imb_factor ** (cls_idx / (cls_num - 1.0))` with
    `imb_factor = 1 / ratio`, float64, truncated by `int`). The head class gets
    `n_max` and the last class `int(n_max / ratio)`.

    Args:
        n_max: samples of the head class, an int >= 1.
        num_classes: number of classes, an int >= 2.
        ratio: imbalance ratio `n_max / n_min`, a float >= 1.

    Returns:
        An int64 array of shape (num_classes,), non-increasing.

    Raises:
        ValueError: for `n_max < 1`, `num_classes < 2`, `ratio < 1`, or a ratio
            so large that the last class would get no sample.

    Examples:

    >>> long_tail_counts(5000, 10, 100).tolist()
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]

    References:
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
        Margin Loss", NeurIPS 2019.
    """
    n_max, num_classes, ratio = _check_profile_args(n_max, num_classes, ratio)
    imb_factor = 1.0 / ratio
    counts = np.array(
        [int(n_max * (imb_factor ** (i / (num_classes - 1.0))))
         for i in range(num_classes)],
        dtype=np.int64,
    )
    return _check_min_count(counts, n_max, ratio)


def _minority_size(num_classes, minority_fraction):
    fraction = check_float("minority_fraction", minority_fraction, low=0.0,
                           high=1.0, low_inclusive=False, high_inclusive=False)
    # Round half up (not to even): 10 classes at 0.25 gives 3 minority classes.
    n_minority = int(math.floor(num_classes * fraction + 0.5))
    if not 1 <= n_minority <= num_classes - 1:
        raise invalid("minority_fraction", f"a fraction that makes between 1 and "
                      f"{num_classes - 1} of the {num_classes} classes minority "
                      f"classes (got {n_minority})", minority_fraction)
    return n_minority


def step_counts(n_max: int, num_classes: int, ratio: float,
                minority_fraction: float = 0.5) -> np.ndarray:
    """Per-class counts of a step profile (Buda et al. 2018; LDAM's "step").

    The first `num_classes - round(num_classes * minority_fraction)` classes are
    majority classes with `n_max` samples; the rest are minority classes with
    `int(n_max * (1 / ratio))` samples (the LDAM expression). The fraction is
    rounded half up, and must leave at least one class on each side.

    Args:
        n_max: samples of a majority class, an int >= 1.
        num_classes: number of classes, an int >= 2.
        ratio: majority : minority ratio, a float >= 1.
        minority_fraction: fraction of classes that are minority classes
            (Buda et al.'s mu), in (0, 1).

    Returns:
        An int64 array of shape (num_classes,).

    Raises:
        ValueError: for bad arguments, or a fraction that leaves no majority or
            no minority class.

    Examples:

    >>> step_counts(5000, 10, 10).tolist()
    [5000, 5000, 5000, 5000, 5000, 500, 500, 500, 500, 500]
    >>> step_counts(100, 4, 4, minority_fraction=0.25).tolist()
    [100, 100, 100, 25]

    References:
        Buda, Maki and Mazurowski, "A systematic study of the class imbalance
        problem in convolutional neural networks", Neural Networks 2018.
    """
    n_max, num_classes, ratio = _check_profile_args(n_max, num_classes, ratio)
    n_minority = _minority_size(num_classes, minority_fraction)
    n_min = int(n_max * (1.0 / ratio))
    counts = np.full(num_classes, n_max, dtype=np.int64)
    counts[num_classes - n_minority:] = n_min
    return _check_min_count(counts, n_max, ratio)


def linear_counts(n_max: int, num_classes: int, ratio: float) -> np.ndarray:
    """Per-class counts decreasing linearly from `n_max` to `int(n_max / ratio)`.

    Class `i` gets `int(n_max * (1 - t) + n_min * t)` with `t = i / (C - 1)`
    and `n_min = int(n_max * (1 / ratio))`, so the first and last classes hold
    exactly `n_max` and `n_min` (Buda et al.'s linear imbalance).

    Args:
        n_max: samples of the head class, an int >= 1.
        num_classes: number of classes, an int >= 2.
        ratio: imbalance ratio `n_max / n_min`, a float >= 1.

    Returns:
        An int64 array of shape (num_classes,), non-increasing.

    Raises:
        ValueError: for bad arguments, or a ratio leaving the last class empty.

    Examples:

    >>> linear_counts(1000, 5, 10).tolist()
    [1000, 775, 550, 325, 100]

    References:
        Buda, Maki and Mazurowski, "A systematic study of the class imbalance
        problem in convolutional neural networks", Neural Networks 2018.
    """
    n_max, num_classes, ratio = _check_profile_args(n_max, num_classes, ratio)
    n_min = int(n_max * (1.0 / ratio))
    t = np.arange(num_classes, dtype=np.float64) / (num_classes - 1.0)
    counts = np.floor(n_max * (1.0 - t) + n_min * t).astype(np.int64)
    return _check_min_count(counts, n_max, ratio)


# ---------------------------------------------------------------------------
# Imbalanced subsets
# ---------------------------------------------------------------------------


def _check_class_order(class_order, num_classes):
    if class_order is None:
        return np.arange(num_classes, dtype=np.int64)
    try:
        order = np.asarray(class_order)
    except (TypeError, ValueError):
        order = None
    if (order is None or order.ndim != 1 or order.dtype.kind not in "iu"
            or order.shape[0] != num_classes
            or not np.array_equal(np.sort(order), np.arange(num_classes))):
        raise invalid("class_order", f"a permutation of 0..{num_classes - 1} "
                      "(the head class first)", class_order)
    return order.astype(np.int64)


def _check_explicit_counts(profile, num_classes):
    if isinstance(profile, dict | bytes) or not hasattr(profile, "__len__"):
        raise invalid("profile", f"one of {list(PROFILES)} or a 1-D sequence of "
                      "per-class counts (ints >= 0)", profile)
    counts = check_counts("profile", profile)
    if counts.shape[0] != num_classes:
        raise invalid("profile", f"one count for each of the {num_classes} classes "
                      f"(got {counts.shape[0]})", profile)
    return counts


def _target_counts(y, *, profile, ratio, minority_fraction, class_order, n_max,
                   num_classes):
    """Returns (class ids, per-class target counts indexed by class id)."""
    explicit = not isinstance(profile, str)
    if not explicit:
        check_choice("profile", profile, PROFILES)
    given = num_classes is not None
    if given:
        num_classes = check_int("num_classes", num_classes, low=2, high=MAX_CLASSES)
    parsed = _single_label_targets(y, num_classes)
    labels = parsed.ids
    num_classes = parsed.num_classes
    if explicit and not given and parsed.kind == "ids" and hasattr(profile,
                                                                   "__len__"):
        # Counts for classes beyond the largest label are allowed (and must
        # then be 0): `profile` itself gives the number of classes.
        num_classes = max(num_classes, len(profile))
    if num_classes < 2:
        raise invalid("y", "labels of at least 2 classes (or num_classes >= 2)", y)
    available = np.bincount(labels, minlength=num_classes).astype(np.int64)
    ratio = check_float("ratio", ratio, low=1.0)
    _minority_size(num_classes, minority_fraction)  # validated for every profile
    if explicit:
        if class_order is not None:
            raise invalid("class_order", "None when `profile` lists per-class "
                          "counts (counts[c] is the count of class c)", class_order)
        targets = _check_explicit_counts(profile, num_classes)
        _check_available(targets, available, "profile", profile)
        return labels, targets
    order = _check_class_order(class_order, num_classes)
    if n_max is None:
        if available.min() == 0:
            missing = np.flatnonzero(available == 0).tolist()
            raise invalid("y", f"every class 0..{num_classes - 1} to have samples; "
                          f"classes {missing} have none", y)
        n_max = int(available.min())
    n_max = check_int("n_max", n_max, low=1)
    if profile == "long_tail":
        by_rank = long_tail_counts(n_max, num_classes, ratio)
    elif profile == "step":
        by_rank = step_counts(n_max, num_classes, ratio, minority_fraction)
    else:
        by_rank = linear_counts(n_max, num_classes, ratio)
    targets = np.empty(num_classes, dtype=np.int64)
    targets[order] = by_rank
    _check_available(targets, available, "n_max", n_max)
    return labels, targets


def _check_available(targets, available, name, value):
    short = np.flatnonzero(targets > available)
    if short.size:
        details = ", ".join(f"class {c} needs {targets[c]} but has {available[c]}"
                            for c in short[:5].tolist())
        raise invalid(name, f"a request within the samples available in y ({details})",
                      value)


def _members_by_class(labels, num_classes):
    """Yields (class, ascending indices of its samples); O(N log N) overall."""
    order = np.argsort(labels, kind="stable")
    ends = np.cumsum(np.bincount(labels, minlength=num_classes))
    starts = ends - np.bincount(labels, minlength=num_classes)
    for c in range(num_classes):
        yield c, order[starts[c]:ends[c]]


def _select(labels, targets, seed):
    chosen = []
    for c, members in _members_by_class(labels, targets.shape[0]):
        n = int(targets[c])
        if n == 0:
            continue
        # One generator per class: the samples kept for a class do not depend on
        # the other classes' counts, and a smaller count keeps a subset of a
        # larger one (imbalance sweeps nest).
        rng = np.random.default_rng([seed, c])
        chosen.append(members[rng.permutation(members.shape[0])[:n]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def imbalanced_indices(y: ArrayLike, *, profile: str = "long_tail",
                       ratio: float = 100, minority_fraction: float = 0.5,
                       class_order: Sequence[int] | str | None = None,
                       n_max: int | None = None, num_classes: int | None = None,
                       seed: int = 0) -> np.ndarray:
    """Indices of an imbalanced subset of a (roughly balanced) labelled set.

    The class at rank `i` of `class_order` keeps `counts[i]` samples of the
    chosen profile, drawn without replacement. `n_max` defaults to the smallest
    class size in `y`, so every request fits (for CIFAR-10's 5000 per class this
    is exactly the LDAM-DRW CIFAR-10-LT split size: 12406 samples at ratio 100).

    For a fixed seed the samples kept for a class depend only on (seed, class,
    count), and a smaller count keeps a subset of a larger one: splits of an
    imbalance sweep are nested.

    Args:
        y: 1-D integer class ids (or an (N, 1) column, or one-hot rows).
        profile: `"long_tail"`, `"step"`, `"linear"`, or a sequence of per-class
            counts indexed by class id (then `ratio`, `n_max` and `class_order`
            are unused, and `class_order` must be None).
        ratio: majority : minority ratio, a float >= 1.
        minority_fraction: fraction of minority classes of the `"step"` profile.
        class_order: a permutation of the class ids, head class first; default
            `0, 1, ..., C-1` (as LDAM-DRW).
        n_max: samples of the head class; default the smallest class size.
        num_classes: number of classes; default `max(y) + 1`.
        seed: an int >= 0.

    Returns:
        Sorted int64 indices into `y`.

    Raises:
        ValueError: for invalid arguments, or a request for more samples of a
            class than `y` holds (the message names the class).

    Examples:

    >>> y = np.repeat(np.arange(3), 100)
    >>> idx = imbalanced_indices(y, profile="long_tail", ratio=10)
    >>> np.bincount(y[idx]).tolist()
    [100, 31, 10]
    >>> idx = imbalanced_indices(y, profile="step", ratio=4, class_order=[2, 1, 0],
    ...                          minority_fraction=1 / 3)
    >>> np.bincount(y[idx]).tolist()
    [25, 100, 100]
    """
    seed = _check_seed(seed)
    labels, targets = _target_counts(y, profile=profile, ratio=ratio,
                                     minority_fraction=minority_fraction,
                                     class_order=class_order, n_max=n_max,
                                     num_classes=num_classes)
    return _select(labels, targets, seed)


def _take(x, indices, num_samples, name="x"):
    if isinstance(x, dict):
        if not x:
            raise invalid(name, "a non-empty dict of arrays", x)
        return {key: _take(value, indices, num_samples, f"{name}[{key!r}]")
                for key, value in x.items()}
    if not hasattr(x, "__getitem__") or not hasattr(x, "__len__"):
        raise invalid(name, "an array or a dict of arrays", x)
    if len(x) != num_samples:
        raise invalid(name, f"{num_samples} samples (as many as y); got {len(x)}", x)
    if isinstance(x, np.ndarray) or hasattr(x, "shape"):
        return x[indices]
    return np.asarray(x)[indices]


def make_imbalanced(x: Any, y: ArrayLike, **kwargs: Any) -> tuple[Any, Any]:
    """Applies `imbalanced_indices` to features and labels.

    Args:
        x: an array (or memmap) with `len(y)` rows, or a dict of such arrays.
        y: the labels (any form `imbalanced_indices` takes); returned in the same
            form, indexed.
        **kwargs: the keyword arguments of `imbalanced_indices`.

    Returns:
        `(x_sub, y_sub)`, the selected rows in their original order.

    Raises:
        ValueError: when `x` and `y` lengths differ, or from
            `imbalanced_indices`.

    Examples:

    >>> x = np.arange(600).reshape(300, 2)
    >>> y = np.repeat(np.arange(3), 100)
    >>> x_lt, y_lt = make_imbalanced(x, y, ratio=10)
    >>> x_lt.shape, np.bincount(y_lt).tolist()
    ((141, 2), [100, 31, 10])
    """
    indices = imbalanced_indices(y, **kwargs)
    y_arr = np.asarray(y)
    x_sub = _take(x, indices, y_arr.shape[0])
    return x_sub, y_arr[indices]


def binary_subset(y: ArrayLike, positive: int | Sequence[int],
                  negative: int | Sequence[int], ratio: float, *,
                  num_negative: int | None = None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A two-class subset at a given majority : minority ratio.

    The `negative` class is the majority and the `positive` class (label 1) the
    minority, the usual convention for imbalanced binary problems (the rare
    event is the positive one; a "mock" model that always predicts the majority
    gets accuracy `ratio / (ratio + 1)` and zero recall). So CIFAR-10 "cats (3)
    vs dogs (5) at 4:1" (four cats per dog) is
    `binary_subset(y, positive=5, negative=3, ratio=4)`.

    By default the subset is the largest one with the exact ratio:
    `num_negative = min(available negatives, floor(available positives * ratio))`
    and `num_positive = int(num_negative / ratio)`; from 5000 cats and 5000
    dogs at 4:1 that is 5000 / 1250. Pass `num_negative=4800` for 4800 / 1200.

    Args:
        y: 1-D integer class ids (or an (N, 1) column, or one-hot rows).
        positive: class id of the minority class, relabelled 1.
        negative: class id of the majority class, relabelled 0.
        ratio: negatives per positive, a float >= 1.
        num_negative: number of majority samples to keep; default the largest
            that the available samples allow.
        seed: an int >= 0.

    Returns:
        `(indices, labels)`: sorted int64 indices into `y` and the int64 binary
        labels of those samples (1 for `positive`, 0 for `negative`).

    Raises:
        ValueError: for equal or absent classes, `ratio < 1`, or a request for
            more samples than `y` holds.

    Examples:

    >>> y = np.repeat(np.arange(10), 50)
    >>> idx, labels = binary_subset(y, positive=5, negative=3, ratio=4)
    >>> np.bincount(y[idx]).tolist()[3:6], np.bincount(labels).tolist()
    ([50, 0, 12], [50, 12])
    >>> idx, labels = binary_subset(y, 5, 3, 4, num_negative=40)
    >>> np.bincount(labels).tolist()
    [40, 10]
    """
    labels = _single_label_targets(y).ids
    for name, value in (("positive", positive), ("negative", negative)):
        check_int(name, value, low=0)
        if value > labels.max() or not np.any(labels == value):
            raise invalid(name, "a class id present in y", value)
    if positive == negative:
        raise invalid("negative", f"a class other than positive={positive}", negative)
    ratio = check_float("ratio", ratio, low=1.0)
    seed = _check_seed(seed)
    n_pos_avail = int(np.sum(labels == positive))
    n_neg_avail = int(np.sum(labels == negative))
    if num_negative is None:
        num_negative = min(n_neg_avail, int(math.floor(n_pos_avail * ratio)))
    else:
        check_int("num_negative", num_negative, low=1)
        if num_negative > n_neg_avail:
            raise invalid("num_negative", f"an int <= the {n_neg_avail} samples of "
                          f"class {negative} in y", num_negative)
    num_positive = int(num_negative / ratio)
    if num_positive < 1:
        raise invalid("ratio", f"a ratio <= num_negative={num_negative} so at "
                      "least one positive sample is kept", ratio)
    if num_positive > n_pos_avail:
        raise invalid("num_negative", f"an int <= {int(n_pos_avail * ratio)} (class "
                      f"{positive} has {n_pos_avail} samples, {ratio:g} negatives "
                      "each)", num_negative)
    binary = np.full(labels.shape[0], -1, dtype=np.int64)
    binary[labels == negative] = 0
    binary[labels == positive] = 1
    keep = np.concatenate([
        _select_class(labels, negative, num_negative, seed),
        _select_class(labels, positive, num_positive, seed),
    ])
    keep = np.sort(keep).astype(np.int64)
    return keep, binary[keep]


def _select_class(labels, c, n, seed):
    members = np.flatnonzero(labels == c)
    rng = np.random.default_rng([seed, int(c)])
    return members[rng.permutation(members.shape[0])[:n]]


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class ImbalanceReport:
    """Class-imbalance statistics of a label array (see `describe`).

    Attributes:
        counts: int64 per-class counts (multi-label: positives per label).
        num_samples: number of samples (rows).
        multi_label: whether the targets were multi-hot.
        imbalance_ratio: max count / min count over the classes (labels) with at
            least one sample; absent classes are listed in `missing`.
        missing: class ids with no sample.
        class_names: names for the table, or None.
        irlbl: multi-label only: per-label IRLbl = max count / count (inf for
            a label with no positive); None for single-label targets.
        mean_ir: multi-label only: mean IRLbl over labels with positives.
        cvir: multi-label only: coefficient of variation of IRLbl
            (sample standard deviation / mean_ir); 0 with a single label.
        scumble: multi-label only: mean over samples of the per-sample SCUMBLE
            (0 for samples with no positive label).
    """

    counts: np.ndarray
    num_samples: int
    multi_label: bool
    imbalance_ratio: float
    missing: tuple = ()
    class_names: tuple | None = None
    irlbl: np.ndarray | None = None
    mean_ir: float | None = None
    cvir: float | None = None
    scumble: float | None = None

    @property
    def num_classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def proportions(self) -> np.ndarray:
        """Per-class share of samples (multi-label: of rows with the label)."""
        return self.counts / float(self.num_samples)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, ints, floats), ready for `json.dumps`."""
        out = {
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            "multi_label": self.multi_label,
            "counts": self.counts.tolist(),
            "proportions": self.proportions.tolist(),
            "imbalance_ratio": self.imbalance_ratio,
            "missing": list(self.missing),
            "class_names": (list(self.class_names) if self.class_names is not None
                            else None),
        }
        if self.multi_label and self.irlbl is not None:
            out.update(irlbl=self.irlbl.tolist(), mean_ir=self.mean_ir,
                       cvir=self.cvir, scumble=self.scumble)
        return out

    def __str__(self) -> str:
        unit = "label" if self.multi_label else "class"
        header = [unit, "name", "count", "share"]
        if self.multi_label:
            header.append("IRLbl")
        rows = []
        for c in range(self.num_classes):
            name = self.class_names[c] if self.class_names is not None else ""
            row = [str(c), str(name), str(int(self.counts[c])),
                   f"{self.proportions[c]:.4f}"]
            if self.multi_label:
                irlbl = cast(np.ndarray, self.irlbl)  # set for multi-label reports
                row.append(f"{irlbl[c]:.3f}")
            rows.append(row)
        if self.class_names is None:
            header.pop(1)
            rows = [row[:1] + row[2:] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in
                  enumerate(header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True))
                  for row in rows]
        kind = "multi-label" if self.multi_label else "single-label"
        units = "labels" if self.multi_label else "classes"
        lines.append(f"{self.num_samples} samples, {self.num_classes} {units} "
                     f"({kind}), imbalance ratio {self.imbalance_ratio:.3f}")
        if self.missing:
            lines.append(f"{units} with no sample: {list(self.missing)}")
        if self.multi_label:
            lines.append(f"MeanIR {self.mean_ir:.4f}, CVIR {self.cvir:.4f}, "
                         f"SCUMBLE {self.scumble:.4f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ImbalanceReport(num_samples={self.num_samples}, "
                f"num_classes={self.num_classes}, multi_label={self.multi_label}, "
                f"imbalance_ratio={self.imbalance_ratio:.4g})")


def describe(y: ArrayLike, *, num_classes: int | None = None,
             class_names: Sequence[str] | None = None,
             multi_label: bool | None = None) -> ImbalanceReport:
    """Imbalance statistics of single-label or multi-label targets.

    Single-label (1-D class ids, (N, 1) or one-hot rows): per-class counts and
    the imbalance ratio max / min count (over the classes that have samples;
    classes with none, possible with `num_classes`, are listed in `missing`).

    Multi-label (2-D multi-hot; detected when a row does not hold exactly one
    1, or forced with `multi_label=True`), the measures of Charte et al.:
    `IRLbl(l) = max_l' n_l' / n_l`, `MeanIR` = mean IRLbl, `CVIR` = sample
    standard deviation of IRLbl / MeanIR, and `SCUMBLE` = mean over samples of
    `1 - geometric_mean(IRLbl of its labels) / arithmetic_mean(IRLbl of its
    labels)` (0 for a sample with no label), as in the authors' `mldr`
    package. Labels with no positive get IRLbl inf and are left out of MeanIR
    and CVIR.

    Args:
        y: the targets.
        num_classes: number of classes of 1-D class ids (default `max(y) + 1`);
            for 2-D targets it must equal the width if given.
        class_names: optional names, one per class, shown in the table.
        multi_label: None (detect), True or False.

    Returns:
        An `ImbalanceReport`: attributes `counts`, `imbalance_ratio`, ...;
        `str(report)` is a table and `report.to_dict()` plain values.

    Raises:
        ValueError: for invalid labels (NaN, negative, non-integer, non 0/1
            multi-hot values) or arguments, or targets with no positive label.

    Examples:

    >>> report = describe([0, 0, 0, 1, 2, 2])
    >>> report.counts.tolist(), report.imbalance_ratio
    ([3, 1, 2], 3.0)
    >>> ml = describe([[1, 1, 0], [1, 0, 0], [1, 0, 1], [1, 1, 0]])
    >>> np.round(ml.irlbl, 3).tolist(), round(ml.mean_ir, 4)
    ([1.0, 2.0, 4.0], 2.3333)
    >>> print(describe([0, 0, 1], class_names=["cat", "dog"]))
    class  name  count   share
    -----  ----  -----  ------
        0   cat      2  0.6667
        1   dog      1  0.3333
    3 samples, 2 classes (single-label), imbalance ratio 2.000

    References:
        Charte et al., "Addressing imbalance in multilabel classification:
        Measures and random resampling algorithms", Neurocomputing 2015.
        Charte et al., "Dealing with difficult minority labels in imbalanced
        multilabel data sets", Neurocomputing 2019.
    """
    targets = parse_targets(y, num_classes, multi_label=multi_label)
    counts = targets.counts()
    if counts.max() == 0:
        raise invalid("y", "multi-hot targets with at least one positive label", y)
    names = (None if class_names is None
             else check_class_names(class_names, counts.shape[0]))
    present = counts > 0
    imbalance_ratio = float(counts.max() / counts[present].min())
    missing = tuple(np.flatnonzero(~present).tolist())
    multi = targets.kind == "multi_hot"
    fields: dict[str, Any] = dict(
        counts=counts, num_samples=len(targets), multi_label=multi,
        imbalance_ratio=imbalance_ratio, missing=missing, class_names=names)
    if multi:
        fields.update(_multilabel_measures(targets.array, counts))
    return ImbalanceReport(**fields)


def _multilabel_measures(target, counts):
    present = counts > 0
    irlbl = np.full(counts.shape[0], np.inf)
    irlbl[present] = counts.max() / counts[present]
    ir_present = irlbl[present]
    mean_ir = float(ir_present.mean())
    if ir_present.shape[0] > 1:
        cvir = float(ir_present.std(ddof=1) / mean_ir)
    else:
        cvir = 0.0
    # Per-sample SCUMBLE (Atkinson index of the IRLbls of the sample's labels).
    active = target.astype(bool)
    num_active = active.sum(axis=1)
    log_ir = np.where(active, np.log(np.where(present, irlbl, 1.0)), 0.0)
    ir = np.where(active, np.where(present, irlbl, 0.0), 0.0)
    has = num_active > 0
    denom = np.maximum(num_active, 1)
    geometric = np.exp(log_ir.sum(axis=1) / denom)
    arithmetic = ir.sum(axis=1) / denom
    per_sample = np.where(has, 1.0 - geometric / np.where(has, arithmetic, 1.0), 0.0)
    return dict(irlbl=irlbl, mean_ir=mean_ir, cvir=cvir,
                scumble=float(per_sample.mean()))


# ---------------------------------------------------------------------------
# Stratified splits
# ---------------------------------------------------------------------------


def _allocate(counts, total, rng):
    """Splits `total` over classes proportionally to `counts` (largest remainder).

    Exact integer arithmetic; ties in the remainders are broken at random.
    """
    num = counts.sum()
    scaled = counts * total
    base = scaled // num
    remainder = scaled % num
    left = int(total - base.sum())
    if left:
        order = np.lexsort((rng.random(counts.shape[0]), -remainder))
        base[order[:left]] += 1
    return base


def stratified_split(y: ArrayLike, *, test_size: float | int, seed: int = 0,
                     multi_label: bool | None = None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / validation indices, single-label or multi-label.

    Single-label: the validation part holds `ceil(test_size * N)` samples (as
    scikit-learn's `train_test_split`), shared among the classes in proportion
    to their counts by largest remainders, so each class's validation count is
    its exact share rounded down or up. Classes too small to split (one sample)
    land on either side.

    Multi-label (2-D multi-hot): iterative stratification (Sechidis et al.
    2011): repeatedly take the label with the fewest remaining samples and give
    each of its samples to the part that most lacks that label (ties: the part
    that most lacks samples, then at random); samples with no label fill the
    parts last. The validation size is then close to, not exactly,
    `test_size * N`.

    Args:
        y: 1-D class ids, an (N, 1) column, one-hot rows or multi-hot rows.
        test_size: fraction of samples for validation, in (0, 1).
        seed: an int >= 0; the split is a pure function of (y, test_size, seed).
        multi_label: None (detect), True or False, as in `describe`.

    Returns:
        `(train_idx, val_idx)`: disjoint sorted int64 index arrays covering
        `range(N)`.

    Raises:
        ValueError: for `test_size` outside (0, 1) or leaving a part empty, or
            invalid labels.

    Examples:

    >>> y = np.repeat([0, 1, 2], [50, 30, 20])
    >>> train_idx, val_idx = stratified_split(y, test_size=0.2)
    >>> np.bincount(y[val_idx]).tolist(), len(train_idx)
    ([10, 6, 4], 80)

    References:
        Sechidis, Tsoumakas and Vlahavas, "On the Stratification of Multi-label
        Data", ECML PKDD 2011.
    """
    test_size = check_float("test_size", test_size, low=0.0, high=1.0,
                            low_inclusive=False, high_inclusive=False)
    seed = _check_seed(seed)
    targets = parse_targets(y, multi_label=multi_label)
    num_samples = len(targets)
    rng = np.random.default_rng(seed)
    if targets.ids is not None:
        target = targets.ids
        n_val = int(math.ceil(test_size * num_samples))
        if not 1 <= n_val <= num_samples - 1:
            raise invalid("test_size", f"a fraction leaving at least one of the "
                          f"{num_samples} samples on each side", test_size)
        counts = np.bincount(target).astype(np.int64)
        per_class = _allocate(counts, n_val, rng)
        val = []
        for c, members in _members_by_class(target, counts.shape[0]):
            if members.shape[0] == 0:
                continue
            val.append(members[rng.permutation(members.shape[0])[:per_class[c]]])
        val_idx = np.sort(np.concatenate(val))
    else:
        if num_samples < 2:
            raise invalid("y", "at least 2 samples to split", y)
        fold = _iterative_stratification(targets.array, np.array([1.0 - test_size,
                                                                  test_size]), rng)
        val_idx = np.flatnonzero(fold == 1)
    is_val = np.zeros(num_samples, dtype=bool)
    is_val[val_idx] = True
    return (np.flatnonzero(~is_val).astype(np.int64),
            np.flatnonzero(is_val).astype(np.int64))


def _iterative_stratification(target, proportions, rng):
    """Fold id of each row (Sechidis et al. 2011, Algorithm 1)."""
    num_samples = target.shape[0]
    # Visit the samples in a seeded random order (the paper's order is arbitrary).
    perm = rng.permutation(num_samples)
    labels = target[perm].astype(bool)
    want_total = proportions * num_samples
    want_label = np.outer(proportions, labels.sum(axis=0)).astype(np.float64)
    fold = np.full(num_samples, -1, dtype=np.int64)
    remaining = labels.sum(axis=0).astype(np.int64)
    unassigned = np.ones(num_samples, dtype=bool)
    while np.any(remaining > 0):
        fewest = remaining[remaining > 0].min()
        candidates = np.flatnonzero(remaining == fewest)
        label = candidates[rng.integers(candidates.shape[0])]
        for i in np.flatnonzero(labels[:, label] & unassigned):
            wanted = want_label[:, label]
            options = np.flatnonzero(wanted == wanted.max())
            if options.shape[0] > 1:
                totals = want_total[options]
                options = options[totals == totals.max()]
                if options.shape[0] > 1:
                    options = options[[rng.integers(options.shape[0])]]
            f = options[0]
            fold[i] = f
            unassigned[i] = False
            row = labels[i]
            want_label[f, row] -= 1.0
            want_total[f] -= 1.0
            remaining[row] -= 1
    for i in np.flatnonzero(unassigned):  # samples with no label
        options = np.flatnonzero(want_total == want_total.max())
        f = options[rng.integers(options.shape[0])]
        fold[i] = f
        want_total[f] -= 1.0
    out = np.empty(num_samples, dtype=np.int64)
    out[perm] = fold
    return out
