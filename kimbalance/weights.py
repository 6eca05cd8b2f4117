"""Per-class counts and class-weight schemes (NumPy only).

All schemes take per-class counts (use `class_counts(y)` for labels) and return
float64 weights. The reference normalisations are fixed by DESIGN.md:

| scheme | weight of class c |
|---|---|
| `"balanced"` | N / (C * n_c) (= sklearn `compute_class_weight("balanced")`) |
| `"inverse"` | 1 / n_c, scaled so the weights sum to C |
| `"sqrt_inverse"` | n_c ** -0.5, scaled so the weights sum to C |
| `"power"` | n_c ** -power, scaled so the weights sum to C |
| `"effective_number"` | (1 - beta) / (1 - beta ** n_c), scaled to sum to C |
| `"none"` | 1 |

With `allow_missing=True`, a class with n_c = 0 gets weight 0 and the scaled
schemes sum to the number of *present* classes instead (so the mean weight of a
present class stays 1); `"balanced"` keeps N / (C * n_c) with C all classes,
as sklearn would if it allowed absent classes.

Counts are whole numbers in [0, 2**53] (the package's one count validator)
and every returned weight is finite for any valid `counts`, `power` and
`beta`: the scaled schemes divide each raw weight by that of the rarest class
before summing (`n**-power` as `exp(-power * (log n - log n_min))`), so
`power=1000` or counts near 2**53 cannot underflow to 0 / 0. Labels are read
by the package's one label parser, with the same rules and messages as the
samplers, the generator, `kimbalance.data.describe` and `evaluate`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from kimbalance._validation import (
    Targets,
    as_label_array,
    check_bool,
    check_choice,
    check_counts,
    check_float,
    invalid,
    parse_targets,
)

__all__ = [
    "SCHEMES",
    "class_counts",
    "class_weights",
    "dense_targets",
    "pos_weights",
    "sample_weights",
    "resolve_class_weight",
]

SCHEMES = ("balanced", "inverse", "sqrt_inverse", "power", "effective_number", "none")


def class_counts(y: ArrayLike, num_classes: int | None = None, *,
                 one_hot: bool | None = None,
                 ignore_class: int | None = None) -> npt.NDArray[np.int64]:
    """Counts the samples of each class (or the positives of each label).

    Dense targets (segmentation masks, sequences) count every element (pixel,
    voxel, step) as a sample; see `dense_targets` for how an id map is told
    from a one-hot map.

    Args:
        y: 1-D integer labels, (N, 1) labels, a 2-D one-hot / multi-hot
            array of 0/1 values (N, C), an id map (N, ...) of 3 or more axes
            (a trailing axis of size 1 is a channel axis) or a one-hot map
            (N, ..., C).
        num_classes: number of classes for class ids and id maps; defaults
            to `max(y) + 1` (at most `max(65536, number of elements)`: a
            larger id needs an explicit `num_classes`). For one-hot targets
            it must equal the width of the last axis.
        one_hot: None (infer, see `dense_targets`), True (the last axis is
            one-hot) or False (class ids: a 2-D array is an (N, T) id map).
        ignore_class: None, or a class id (e.g. 255 or -1 for void pixels)
            whose elements are not counted (it need not be in `[0, C)`).

    Returns:
        An int64 array of shape (C,).

    Raises:
        ValueError: for negative, non-integer or out-of-range labels, or a 2-D
            target with values other than 0 and 1.

    Examples:

    >>> class_counts([0, 0, 1, 2, 2, 2]).tolist()
    [2, 1, 3]
    >>> class_counts([[1, 0], [1, 1], [0, 0]]).tolist()
    [2, 1]
    >>> masks = np.array([[[0, 0], [0, 2]], [[0, 1], [1, 255]]])   # (N, H, W)
    >>> class_counts(masks, ignore_class=255).tolist()
    [4, 2, 1]
    """
    return dense_targets(y, num_classes, one_hot=one_hot,
                         ignore_class=ignore_class)[0].counts()


def dense_targets(
        y: ArrayLike, num_classes: int | None = None, *, one_hot: bool | None = None,
        ignore_class: int | None = None, name: str = "y",
) -> tuple[Targets, tuple[int, ...], npt.NDArray[np.bool_] | None]:
    """Validates class ids, one-hot / multi-hot rows, id maps or one-hot maps.

    The reader behind `class_counts` and `sample_weights` (and the
    generator's masks): dense targets are flattened to one element per
    pixel / voxel / step and read by the package's one label parser, so the
    rules and messages are those of 1-D labels.

    **Telling an id map from a one-hot map.** Arrays of 1 or 2 axes keep
    their classification meaning (1-D ids, an (N, 1) column of ids, 2-D
    one-hot or multi-hot rows), unless `one_hot=False` makes a 2-D array an
    (N, T) id map. An array of 3 or more axes is a *one-hot map* (N, ..., C)
    when every vector along its last axis holds 0/1 values with exactly one
    1 (and `num_classes`, if given, equals the last axis' width); else it
    is an *id map* (N, ...) of class ids, whose trailing axis of size 1, if
    any, is a channel axis (Keras' (N, H, W, 1) masks). An id map whose
    every last-axis vector happens to be one-hot (tiny binary masks) is
    read as one-hot: pass `one_hot=False` to say otherwise (or
    `one_hot=True` to require a one-hot map). Multi-hot maps (several
    classes per element) are not dense targets.

    Args:
        y: the targets.
        num_classes: the number of classes (see `class_counts`).
        one_hot: None (infer as above), True or False.
        ignore_class: None, or a class id whose elements are dropped before
            the ids are checked (so 255 or -1 are fine with C = 21).
        name: the argument name used in error messages.

    Returns:
        `(targets, shape, keep)`: a `Targets` over the kept elements (kind
        "ids", "one_hot" or, for 2-D multi-hot rows, "multi_hot"); `shape`,
        the shape of the per-sample / per-element weight map (`(N,)` for
        classification targets, the id map's shape without a channel axis,
        or the one-hot map's shape without its last axis); `keep`, None or
        the flat bool mask of the elements not equal to `ignore_class`.

    Raises:
        ValueError: naming `name` for malformed targets, `one_hot` for a
            non-bool, `ignore_class` for a non-int, and `num_classes` for a
            width mismatch.

    Examples:

    >>> targets, shape, keep = dense_targets(np.zeros((2, 3, 4), "int32"))
    >>> targets.kind, shape, keep
    ('ids', (2, 3, 4), None)
    >>> targets, shape, _ = dense_targets(np.eye(3)[np.zeros((2, 5), int)])
    >>> targets.kind, targets.num_classes, shape
    ('one_hot', 3, (2, 5))
    """
    if one_hot is not None and not isinstance(one_hot, bool | np.bool_):
        raise invalid("one_hot", "None, True or False", one_hot)
    if ignore_class is not None and (
            not isinstance(ignore_class, numbers.Integral)
            or isinstance(ignore_class, bool | np.bool_)):
        raise invalid("ignore_class", "None or an int class id", ignore_class)
    arr = as_label_array(y, name)
    if arr.ndim == 1 or (arr.ndim == 2 and one_hot is not False):
        if arr.ndim == 1 and one_hot:
            raise invalid(name, "one-hot rows (a 2-D array) when one_hot=True; got "
                          f"shape {arr.shape}", y)
        if ignore_class is None or (arr.ndim == 2 and arr.shape[1] > 1):
            targets = parse_targets(arr, num_classes, name=name,
                                    multi_label=False if one_hot else None)
            return _drop_ignored(targets, (arr.shape[0],), ignore_class, name, y)
        flat = arr.reshape(-1)
        return _ids_without(flat, (arr.shape[0],), num_classes, ignore_class, name, y)
    if one_hot is None:
        one_hot = arr.shape[-1] > 1 and (num_classes is None
                                         or num_classes == arr.shape[-1]) and bool(
            np.all((arr == 0) | (arr == 1)) and np.all(arr.sum(axis=-1) == 1))
    if one_hot:
        targets = parse_targets(arr.reshape(-1, arr.shape[-1]), num_classes,
                                name=name, multi_label=False)
        return _drop_ignored(targets, arr.shape[:-1], ignore_class, name, y)
    shape = arr.shape[:-1] if arr.shape[-1] == 1 else arr.shape
    if ignore_class is None:
        return parse_targets(arr.reshape(-1), num_classes, name=name), shape, None
    return _ids_without(arr.reshape(-1), shape, num_classes, ignore_class, name, y)


def _ids_without(
        flat: np.ndarray, shape: tuple[int, ...], num_classes: int | None,
        ignore_class: int, name: str, y: Any,
) -> tuple[Targets, tuple[int, ...], npt.NDArray[np.bool_] | None]:
    keep = flat != ignore_class
    if not np.any(keep):
        raise invalid(name, f"at least one element not equal to ignore_class="
                      f"{ignore_class}", y)
    targets = parse_targets(flat[keep], num_classes, name=name)
    return targets, tuple(shape), (None if np.all(keep) else keep)


def _drop_ignored(
        targets: Targets, shape: tuple[int, ...], ignore_class: int | None, name: str,
        y: Any) -> tuple[Targets, tuple[int, ...], npt.NDArray[np.bool_] | None]:
    if ignore_class is None or targets.ids is None:
        return targets, tuple(shape), None
    keep = targets.ids != ignore_class
    if np.all(keep):
        return targets, tuple(shape), None
    if not np.any(keep):
        raise invalid(name, f"at least one element not equal to ignore_class="
                      f"{ignore_class}", y)
    kept = Targets("ids", targets.ids[keep], targets.num_classes,
                   targets.ids[keep])
    return kept, tuple(shape), keep


def class_weights(counts: ArrayLike, scheme: str = "balanced", *, beta: float = 0.9999,
                  power: float = 0.5,
                  allow_missing: bool = False) -> npt.NDArray[np.float64]:
    """Per-class weights from per-class counts.

    Args:
        counts: per-class sample counts, shape (C,).
        scheme: one of `"balanced"`, `"inverse"`, `"sqrt_inverse"`, `"power"`,
            `"effective_number"`, `"none"` (see the module docstring).
        beta: the effective-number hyperparameter, in [0, 1).
        power: the exponent of the `"power"` scheme, >= 0.
        allow_missing: give classes with zero count weight 0 instead of raising.

    Returns:
        A float64 array of shape (C,).

    Raises:
        ValueError: for an unknown scheme, bad hyperparameters, counts that are
            negative, fractional, non-finite or above 2**53, a non-bool
            `allow_missing`, or a class with zero count (unless
            `allow_missing`).

    Examples:

    >>> np.round(class_weights([90, 10]), 4).tolist()
    [0.5556, 5.0]
    >>> np.round(class_weights([90, 10], "inverse"), 4).tolist()
    [0.2, 1.8]

    References:
        Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
        CVPR 2019.
    """
    check_choice("scheme", scheme, SCHEMES)
    counts_arr = check_counts("counts", counts)
    beta = check_float("beta", beta, low=0.0, high=1.0, high_inclusive=False)
    power = check_float("power", power, low=0.0)
    allow_missing = check_bool("allow_missing", allow_missing)
    num_classes = counts_arr.shape[0]
    if scheme == "none":
        return np.ones(num_classes)
    present = counts_arr > 0
    if not np.all(present) and not allow_missing:
        missing = np.flatnonzero(~present).tolist()
        raise invalid("counts", "every class to have at least one sample (or "
                      f"allow_missing=True); classes {missing} have none", counts)
    weights = np.zeros(num_classes)
    n = counts_arr[present].astype(np.float64)
    if scheme == "balanced":
        weights[present] = float(counts_arr.sum()) / (num_classes * n)
        return weights
    # Each raw weight is divided by the largest one before the sum is taken,
    # so the scaled weights are finite for any count (<= 2**53), power or beta:
    # n**-power = exp(-power * (log n - log n_min)) * n_min**-power.
    if scheme in ("inverse", "sqrt_inverse", "power"):
        exponent = {"inverse": 1.0, "sqrt_inverse": 0.5}.get(scheme, power)
        log_ratio = np.log(n) - np.log(n.min())
        with np.errstate(over="ignore"):
            relative = np.exp(-exponent * log_ratio)
    elif beta == 0.0:  # effective_number with beta = 0: every class weighs 1.
        relative = np.ones_like(n)
    else:  # effective_number; 1 - beta**n computed as -expm1(n log beta).
        # (1 - beta) cancels in the scaling; the rarest class weighs the most.
        effective = -np.expm1(n * np.log(beta))
        relative = effective.min() / effective
    weights[present] = relative * (n.shape[0] / relative.sum())
    return weights


def pos_weights(y_multi_hot: ArrayLike, *,
                allow_missing: bool = False) -> npt.NDArray[np.float64]:
    """Per-label `num_negative / num_positive` (torch `BCEWithLogitsLoss` convention).

    Args:
        y_multi_hot: (N, L) array of 0/1 values (a 1-D 0/1 array is one label).
        allow_missing: give a label with no positive weight 1 instead of raising.

    Returns:
        A float64 array of shape (L,).

    Examples:

    >>> pos_weights([[1, 0], [0, 0], [0, 1], [0, 1]]).tolist()
    [3.0, 1.0]
    """
    allow_missing = check_bool("allow_missing", allow_missing)
    y = as_label_array(y_multi_hot, "y_multi_hot")
    targets = parse_targets(y[:, None] if y.ndim == 1 else y, name="y_multi_hot",
                            multi_label=True)
    pos = targets.counts().astype(np.float64)
    neg = len(targets) - pos
    if np.any(pos == 0) and not allow_missing:
        empty = np.flatnonzero(pos == 0).tolist()
        raise invalid("y_multi_hot", "every label to have at least one positive (or "
                      f"allow_missing=True); labels {empty} have none", y_multi_hot)
    return np.where(pos > 0, neg / np.maximum(pos, 1.0), 1.0)


def resolve_class_weight(
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | str,
        num_classes: int, counts: ArrayLike | None = None,
        name: str = "class_weight") -> npt.NDArray[np.float64]:
    """Turns a scheme name, dict or sequence into a float64 array of shape (C,).

    A scheme name needs `counts`. A dict must give a weight for every class
    0..C-1 (like `model.fit(class_weight=...)`, but a missing key is an error
    rather than a silent weight). Weights are finite, >= 0 and not all 0.
    """
    if isinstance(class_weight, str):
        check_choice(name, class_weight, SCHEMES)
        if counts is None:
            raise invalid(name, "an explicit weight array when no counts are known",
                          class_weight)
        return class_weights(counts, class_weight, allow_missing=True)
    if isinstance(class_weight, Mapping):
        keys = set(class_weight)
        if keys != set(range(num_classes)):
            expected = f"a dict with one weight for each class 0..{num_classes - 1}"
            raise invalid(name, expected, class_weight)
        values: Sequence[float] | np.ndarray = [class_weight[c]
                                                for c in range(num_classes)]
    else:
        values = class_weight
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "a scheme name, a dict or a 1-D sequence of weights",
                      class_weight) from None
    if arr.ndim != 1 or arr.shape[0] != num_classes:
        raise invalid(name, f"{num_classes} weights (one per class)", class_weight)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise invalid(name, "finite weights >= 0", class_weight)
    if not np.any(arr > 0):
        raise invalid(name, "weights with at least one > 0 (all-zero weights make "
                      "every sample weight 0)", class_weight)
    return arr


def sample_weights(
        y: ArrayLike,
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | str, *,
        num_classes: int | None = None, one_hot: bool | None = None,
        ignore_class: int | None = None) -> npt.NDArray[np.float64]:
    """Per-sample weights (or per-element weight maps) from class weights.

    Single-label: `w[y_i]`. Multi-label (2-D multi-hot `y`): the mean of the
    weights of the active labels; a row with no active label gets 1. This is
    what `model.fit(class_weight=...)` cannot do for multi-label targets.

    Dense targets: an id map (N, ...) or a one-hot map (N, ..., C) (see
    `dense_targets`) gives a weight map of shape (N, ...) (without a channel
    or one-hot axis), `w` of each element's class. Keras' `sample_weight`
    applies such a map element-wise: a per-pixel loss of shape (N, H, W)
    is multiplied by the (N, H, W) map before the reduction. With the
    default `reduction="sum_over_batch_size"` the sum is divided by the
    number of elements, `sum(w * l) / (N H W)`; with
    `reduction="mean_with_sample_weight"` by the sum of the weights,
    `sum(w * l) / sum(w)`, which is what torch's
    `F.cross_entropy(logits, y, weight=w)` (`reduction="mean"`) computes
    on (N, C, H, W) logits. Elements of `ignore_class` get weight 0, as
    torch's `ignore_index` (the class is kept out of the counts too).

    Args:
        y: 1-D / (N, 1) labels, (N, C) one-hot / multi-hot, an id map or a
            one-hot map.
        class_weight: a scheme name (counts taken from `y`: elements of a
            map are samples), a dict `{class: weight}` or a sequence of C
            weights.
        num_classes: the number of classes for class ids (defaults to the
            number of weights, or to `max(y) + 1` with a scheme name).
        one_hot: None (infer), True or False; see `dense_targets`.
        ignore_class: None, or a class id whose elements get weight 0.

    Returns:
        A float64 array of shape (N,), or the weight map (N, ...).

    Examples:

    >>> sample_weights([0, 1, 1], [1.0, 3.0]).tolist()
    [1.0, 3.0, 3.0]
    >>> sample_weights([[1, 1], [0, 1], [0, 0]], [1.0, 3.0]).tolist()
    [2.0, 3.0, 1.0]
    >>> masks = np.array([[[0, 0], [0, 1]]])                  # (1, 2, 2)
    >>> sample_weights(masks, "balanced").tolist()
    [[[0.6666666666666666, 0.6666666666666666], [0.6666666666666666, 2.0]]]
    >>> sample_weights(np.array([[0, 255, 1]]), [1.0, 2.0], ignore_class=255,
    ...                one_hot=False).tolist()
    [[1.0, 0.0, 2.0]]
    """
    if isinstance(class_weight, str):
        targets, shape, keep = dense_targets(y, num_classes, one_hot=one_hot,
                                             ignore_class=ignore_class)
        weights = resolve_class_weight(class_weight, targets.num_classes,
                                       targets.counts())
    else:
        num_weights = _num_weights(class_weight)
        targets, shape, keep = dense_targets(y, num_classes, one_hot=one_hot,
                                             ignore_class=ignore_class)
        num_classes = targets.num_classes
        if targets.kind == "ids":
            if num_classes > num_weights and not isinstance(class_weight, Mapping):
                raise invalid("y", f"class ids in [0, {num_weights}) (one weight "
                              "per class in class_weight)", y)
            num_classes = max(num_classes, num_weights)
        weights = resolve_class_weight(class_weight, num_classes)
    if targets.ids is not None:
        if keep is None:
            return weights[targets.ids].reshape(shape)
        out = np.zeros(keep.shape[0])
        out[keep] = weights[targets.ids]
        return out.reshape(shape)
    # Multi-hot: the mean weight of the active labels; an empty row weighs 1.
    active = targets.array.sum(axis=1)
    total = targets.array.astype(np.float64) @ weights
    return np.where(active > 0, total / np.maximum(active, 1), 1.0)


def _num_weights(class_weight: Any) -> int:
    try:
        return len(class_weight)
    except TypeError:
        raise invalid("class_weight", "a scheme name, a dict or a 1-D sequence of "
                      "weights", class_weight) from None
