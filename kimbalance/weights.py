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

import numpy as np

from kimbalance._validation import (
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
    "pos_weights",
    "sample_weights",
    "resolve_class_weight",
]

SCHEMES = ("balanced", "inverse", "sqrt_inverse", "power", "effective_number", "none")


def class_counts(y, num_classes=None):
    """Counts the samples of each class (or the positives of each label).

    Args:
        y: 1-D integer labels, (N, 1) labels, or a 2-D one-hot / multi-hot
            array of 0/1 values (N, C).
        num_classes: number of classes for 1-D labels; defaults to
            `max(y) + 1` (at most `max(65536, N)`: a larger id needs an
            explicit `num_classes`). For 2-D targets it must equal the width.

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
    return parse_targets(y, num_classes).counts()


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


def resolve_class_weight(class_weight, num_classes, counts=None, name="class_weight"):
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
    if isinstance(class_weight, dict):
        keys = set(class_weight)
        if keys != set(range(num_classes)):
            expected = f"a dict with one weight for each class 0..{num_classes - 1}"
            raise invalid(name, expected, class_weight)
        values = [class_weight[c] for c in range(num_classes)]
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
    if isinstance(class_weight, str):
        targets = parse_targets(y)
        weights = resolve_class_weight(class_weight, targets.num_classes,
                                       targets.counts())
    else:
        num_weights = _num_weights(class_weight)
        targets = parse_targets(y)
        num_classes = targets.num_classes
        if targets.kind == "ids":
            if num_classes > num_weights and not isinstance(class_weight, dict):
                raise invalid("y", f"class ids in [0, {num_weights}) (one weight "
                              "per class in class_weight)", y)
            num_classes = max(num_classes, num_weights)
        weights = resolve_class_weight(class_weight, num_classes)
    if targets.ids is not None:
        return weights[targets.ids]
    # Multi-hot: the mean weight of the active labels; an empty row weighs 1.
    active = targets.array.sum(axis=1)
    total = targets.array.astype(np.float64) @ weights
    return np.where(active > 0, total / np.maximum(active, 1), 1.0)


def _num_weights(class_weight):
    try:
        return len(class_weight)
    except TypeError:
        raise invalid("class_weight", "a scheme name, a dict or a 1-D sequence of "
                      "weights", class_weight) from None
