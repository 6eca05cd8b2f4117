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
"""

import numbers

import numpy as np

from kimbalance._validation import check_choice, check_float, invalid

__all__ = [
    "SCHEMES",
    "class_counts",
    "class_weights",
    "pos_weights",
    "sample_weights",
    "resolve_class_weight",
]

SCHEMES = ("balanced", "inverse", "sqrt_inverse", "power", "effective_number", "none")


def _as_label_array(y, name="y"):
    try:
        y = np.asarray(y)
    except (TypeError, ValueError):
        raise invalid(name, "an array of labels", y) from None
    if y.size == 0:
        raise invalid(name, "a non-empty array of labels", y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise invalid(name, "1-D int labels, (N, 1) labels or a 2-D one-hot/multi-hot "
                      f"array; got shape {y.shape}", y)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise invalid(name, "finite labels (no NaN or inf)", y)
    if y.dtype.kind not in "biuf":
        raise invalid(name, f"numeric labels; got dtype {y.dtype}", y)
    return y


def class_counts(y, num_classes=None):
    """Counts the samples of each class (or the positives of each label).

    Args:
        y: 1-D integer labels, (N, 1) labels, or a 2-D one-hot / multi-hot
            array of 0/1 values (N, C).
        num_classes: number of classes for 1-D labels; defaults to
            `max(y) + 1`. Ignored for 2-D targets except as a check.

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
    """
    y = _as_label_array(y)
    if y.ndim == 2:
        if not np.all((y == 0) | (y == 1)):
            raise invalid("y", "a one-hot / multi-hot array of 0 and 1 values", y)
        if num_classes is not None and num_classes != y.shape[1]:
            raise invalid("num_classes", f"{y.shape[1]} (the width of y)", num_classes)
        return y.sum(axis=0).astype(np.int64)
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise invalid("y", "integer class ids", y)
    labels = y.astype(np.int64)
    if labels.min() < 0:
        raise invalid("y", "class ids >= 0", int(labels.min()))
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise invalid("num_classes", "an int >= 1", num_classes)
    if labels.max() >= num_classes:
        raise invalid("y", f"class ids < num_classes={num_classes}", int(labels.max()))
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def _check_counts(counts):
    try:
        arr = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("counts", "a 1-D sequence of per-class counts", counts) from None
    if arr.ndim != 1 or arr.size == 0:
        raise invalid("counts", "a non-empty 1-D sequence of per-class counts", counts)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise invalid("counts", "finite counts >= 0", counts)
    return arr


def class_weights(counts, scheme="balanced", *, beta=0.9999, power=0.5,
                  allow_missing=False):
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
        ValueError: for an unknown scheme, bad hyperparameters or a class with
            zero count (unless `allow_missing`).

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
    counts = _check_counts(counts)
    beta = check_float("beta", beta, low=0.0, high=1.0, high_inclusive=False)
    power = check_float("power", power, low=0.0)
    num_classes = counts.shape[0]
    if scheme == "none":
        return np.ones(num_classes)
    present = counts > 0
    if not np.all(present) and not allow_missing:
        missing = np.flatnonzero(~present).tolist()
        raise invalid("counts", "every class to have at least one sample (or "
                      f"allow_missing=True); classes {missing} have none", counts)
    if not np.any(present):
        raise invalid("counts", "at least one class with samples", counts)
    weights = np.zeros(num_classes)
    n = counts[present]
    if scheme == "balanced":
        weights[present] = counts.sum() / (num_classes * n)
        return weights
    if scheme == "inverse":
        raw = 1.0 / n
    elif scheme == "sqrt_inverse":
        raw = n ** -0.5
    elif scheme == "power":
        raw = n ** -power
    else:  # effective_number; 1 - beta**n computed as -expm1(n log beta).
        if beta == 0.0:
            raw = np.ones_like(n)
        else:
            raw = (1.0 - beta) / -np.expm1(n * np.log(beta))
    weights[present] = raw * (n.shape[0] / raw.sum())
    return weights


def pos_weights(y_multi_hot, *, allow_missing=False):
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
    y = _as_label_array(y_multi_hot, "y_multi_hot")
    if y.ndim == 1:
        y = y[:, None]
    if not np.all((y == 0) | (y == 1)):
        raise invalid("y_multi_hot", "an array of 0 and 1 values", y)
    pos = y.sum(axis=0).astype(np.float64)
    neg = y.shape[0] - pos
    if np.any(pos == 0) and not allow_missing:
        empty = np.flatnonzero(pos == 0).tolist()
        raise invalid("y_multi_hot", "every label to have at least one positive (or "
                      f"allow_missing=True); labels {empty} have none", y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)


def resolve_class_weight(class_weight, num_classes, counts=None, name="class_weight"):
    """Turns a scheme name, dict or sequence into a float64 array of shape (C,).

    A scheme name needs `counts`. A dict must give a weight for every class
    0..C-1 (like `model.fit(class_weight=...)`, but a missing key is an error
    rather than a silent weight).
    """
    if isinstance(class_weight, str):
        check_choice(name, class_weight, SCHEMES)
        if counts is None:
            raise invalid(name, "an explicit weight array when no counts are known",
                          class_weight)
        return class_weights(counts, class_weight, allow_missing=True)
    if isinstance(class_weight, dict):
        keys = set(class_weight)
        if keys != set(range(num_classes)):
            expected = f"a dict with one weight for each class 0..{num_classes - 1}"
            raise invalid(name, expected, class_weight)
        class_weight = [class_weight[c] for c in range(num_classes)]
    try:
        arr = np.asarray(class_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "a scheme name, a dict or a 1-D sequence of weights",
                      class_weight) from None
    if arr.ndim != 1 or arr.shape[0] != num_classes:
        raise invalid(name, f"{num_classes} weights (one per class)", class_weight)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise invalid(name, "finite weights >= 0", class_weight)
    return arr


def sample_weights(y, class_weight):
    """Per-sample weights from class weights; multi-label aware.

    Single-label: `w[y_i]`. Multi-label (2-D multi-hot `y`): the mean of the
    weights of the active labels; a row with no active label gets 1. This is
    what `model.fit(class_weight=...)` cannot do for multi-label targets.

    Args:
        y: 1-D / (N, 1) labels, or (N, C) one-hot / multi-hot.
        class_weight: a scheme name (counts taken from `y`), a dict
            `{class: weight}` or a sequence of C weights.

    Returns:
        A float64 array of shape (N,).

    Examples:

    >>> sample_weights([0, 1, 1], [1.0, 3.0]).tolist()
    [1.0, 3.0, 3.0]
    >>> sample_weights([[1, 1], [0, 1], [0, 0]], [1.0, 3.0]).tolist()
    [2.0, 3.0, 1.0]
    """
    y = _as_label_array(y)
    if y.ndim == 1:
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            # astype(int64) below would silently truncate 1.5 to class 1.
            raise invalid("y", "integer class ids", y)
        counts = class_counts(y) if isinstance(class_weight, str) else None
        num_classes = (len(counts) if counts is not None
                       else _num_classes_of(class_weight, y))
        weights = resolve_class_weight(class_weight, num_classes, counts)
        labels = y.astype(np.int64)
        if labels.min() < 0 or labels.max() >= num_classes:
            raise invalid("y", f"class ids in [0, {num_classes})", y)
        return weights[labels]
    if not np.all((y == 0) | (y == 1)):
        raise invalid("y", "a one-hot / multi-hot array of 0 and 1 values", y)
    counts = y.sum(axis=0)
    weights = resolve_class_weight(class_weight, y.shape[1], counts)
    active = y.sum(axis=1)
    total = y.astype(np.float64) @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(active > 0, total / np.maximum(active, 1), 1.0)


def _num_classes_of(class_weight, y):
    if isinstance(class_weight, dict):
        return max(len(class_weight), int(np.max(y)) + 1)
    try:
        return len(class_weight)
    except TypeError:
        raise invalid("class_weight", "a scheme name, a dict or a 1-D sequence of "
                      "weights", class_weight) from None
