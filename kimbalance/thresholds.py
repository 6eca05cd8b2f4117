"""Decision thresholds for imbalanced classifiers (NumPy only).

Decisions are `score >= threshold` everywhere (the sklearn convention), as in
`kimbalance.layers.ThresholdDecision`.

- `tune_threshold`: the exact best threshold of one binary score for a
  metric, searched over every distinct score value in O(N log N).
- `tune_thresholds`: one threshold per label (multi-label) or per class
  (one-vs-rest).
- `prior_correction`: re-weights probabilities from the training class
  priors to the test priors (Buda et al.'s thresholding).

How `tune_threshold` searches: the candidates are the distinct values of
`y_score`; candidate `t` predicts positive for every `score >= t`, so each
candidate predicts at least one positive and the lowest predicts all. The
confusion counts of all candidates come from one sort and cumulative sums.
Among the candidates that reach the best value (equal up to a relative
1e-12, so floating-point rounding does not break ties arbitrarily) the
LARGEST threshold is returned: the most conservative decision rule, with
the fewest positive predictions, among the equally good ones.
"""

from __future__ import annotations

import numbers
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from kimbalance._validation import (
    as_label_array,
    check_bool,
    check_float,
    check_priors,
    check_vector,
    invalid,
    parse_targets,
)

__all__ = ["METRICS", "tune_threshold", "tune_thresholds", "prior_correction"]

METRICS = ("f1", "fbeta", "gmean", "youden", "balanced_accuracy")
_CONSTRAINED = ("recall_at_precision", "precision_at_recall")
_TIE_RTOL = 1e-12


def tune_threshold(y_true: ArrayLike, y_score: ArrayLike, *, metric: str = "f1",
                   beta: float = 1.0) -> tuple[float, float]:
    """Returns the threshold on `y_score` that maximises `metric`, and its value.

    Exact search over all distinct score values (see the module docstring):
    the returned threshold is itself a value of `y_score`, the decisions are
    `y_score >= threshold`, and ties go to the largest threshold.

    Metrics (TP, FP, TN, FN counted at the threshold; P, N the numbers of
    positive and negative samples):

    | metric | value maximised |
    |---|---|
    | `"f1"` | 2 TP / (2 TP + FP + FN) |
    | `"fbeta"` | (1 + beta²) TP / ((1 + beta²) TP + beta² FN + FP) |
    | `"gmean"` | sqrt(TPR * TNR), TPR = TP / P, TNR = TN / N |
    | `"youden"` | TPR - FPR (Youden's J) |
    | `"balanced_accuracy"` | (TPR + TNR) / 2 |
    | `("recall_at_precision", p)` | recall, among thresholds with precision >= p |
    | `("precision_at_recall", r)` | precision, among thresholds with recall >= r |
    | a callable `f(y_true, y_pred) -> float` | `f` on the 0/1 decisions |

    A callable is evaluated once per distinct score (O(N) calls), e.g.
    `functools.partial(sklearn.metrics.fbeta_score, beta=2)`.
    `("precision_at_recall", r)` is always feasible (the lowest threshold
    has recall 1); `("recall_at_precision", p)` raises a `ValueError` that
    states the highest reachable precision when no threshold reaches `p`.

    Args:
        y_true: 1-D (or (N, 1)) binary labels, 0/1 or booleans, with both
            classes present.
        y_score: 1-D (or (N, 1)) finite scores of the same length (higher
            means more positive: probabilities, logits, distances...).
        metric: a name above, a `(name, target)` pair with a target in
            [0, 1], or a callable.
        beta: float > 0, the beta of `"fbeta"` (ignored by other metrics).

    Returns:
        `(threshold, score)`: two floats, the chosen threshold and the value
        of the metric there (recall, respectively precision, for the
        constrained metrics).

    Raises:
        ValueError: for non-binary `y_true` or only one class present,
            non-finite scores, mismatched lengths, an unknown metric or a
            target outside [0, 1], `beta` <= 0, an infeasible
            `recall_at_precision` target, or a callable returning a
            non-finite value.

    Examples:

    >>> y_true = [0, 0, 1, 0, 1, 1]
    >>> y_score = [0.1, 0.4, 0.35, 0.8, 0.65, 0.9]
    >>> threshold, f1 = tune_threshold(y_true, y_score, metric="f1")
    >>> threshold, round(f1, 4)
    (0.35, 0.75)
    >>> tune_threshold(y_true, y_score, metric=("recall_at_precision", 0.6))
    (0.35, 1.0)

    References:
        Lipton, Z. C., Elkan, C. and Naryanaswamy, B. "Optimal thresholding
        of classifiers to maximize F1 measure." ECML PKDD 2014.
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
    kind, target, function = _resolve_metric(metric)
    beta = check_float("beta", beta, low=0.0, low_inclusive=False)
    return _tune(y_true, y_score, kind, target, function, beta, metric)


@overload
def tune_thresholds(y_true: ArrayLike, y_score: ArrayLike, *, metric: str = ...,
                    beta: float = ...,
                    return_scores: Literal[False] = ...) -> np.ndarray: ...
@overload
def tune_thresholds(y_true: ArrayLike, y_score: ArrayLike, *, metric: str = ...,
                    beta: float = ..., return_scores: Literal[True],
                    ) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def tune_thresholds(y_true: ArrayLike, y_score: ArrayLike, *, metric: str = ...,
                    beta: float = ..., return_scores: bool,
                    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def tune_thresholds(y_true: ArrayLike, y_score: ArrayLike, *, metric: str = "f1",
                    beta: float = 1.0, return_scores: bool = False,
                    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Tunes one threshold per label (multi-label) or per class (one-vs-rest).

    Each column j of `y_score` gets `tune_threshold(y_true_j, y_score[:, j])`
    with the same metric and tie rule. Pass the result to
    `kimbalance.layers.ThresholdDecision` to deploy the decisions.

    Args:
        y_true: multi-hot labels of shape (N, L) (0/1 per label), or class
            ids of shape (N,) / (N, 1) in [0, C) for scores of shape (N, C)
            (one-vs-rest: column j is "class j against the rest"). Every
            column needs both positives and negatives.
        y_score: 2-D scores (N, L) or (N, C).
        metric: as in `tune_threshold`.
        beta: as in `tune_threshold`.
        return_scores: also return the metric value of each column.

    Returns:
        A float64 array of L thresholds, or `(thresholds, scores)` with
        `return_scores=True`.

    Raises:
        ValueError: as `tune_threshold`, naming the label column at fault,
            and for shapes that do not match or class ids outside [0, C).

    Examples:

    >>> y_true = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    >>> y_score = np.array([[0.9, 0.2], [0.3, 0.6], [0.6, 0.3], [0.4, 0.1]])
    >>> tune_thresholds(y_true, y_score).tolist()
    [0.6, 0.3]
    >>> tune_thresholds([0, 2, 1, 2], np.eye(3)[[0, 2, 1, 1]] * 0.8 + 0.1,
    ...                 return_scores=True)[1].round(3).tolist()
    [1.0, 0.667, 0.667]
    """
    kind, target, function = _resolve_metric(metric)
    beta = check_float("beta", beta, low=0.0, low_inclusive=False)
    return_scores = check_bool("return_scores", return_scores)
    columns, score_columns = _label_columns(y_true, y_score)
    thresholds = np.empty(score_columns.shape[1])
    scores = np.empty(score_columns.shape[1])
    for j in range(score_columns.shape[1]):
        column = columns[:, j]
        if column.min() == column.max():
            raise invalid(
                "y_true",
                "positives and negatives in every label column (label "
                f"{j} has {'no negatives' if column.min() else 'no positives'})",
                y_true,
            )
        thresholds[j], scores[j] = _tune(column, score_columns[:, j], kind, target,
                                         function, beta, metric, label=j)
    return (thresholds, scores) if return_scores else thresholds


def prior_correction(probs: ArrayLike, train_priors: ArrayLike,
                     test_priors: ArrayLike | None = None) -> np.ndarray:
    """Moves class probabilities from the training priors to the test priors.

    A classifier trained on a set with class priors pi_train estimates
    p_train(c | x); under test priors pi_test Bayes' rule gives
    p_test(c | x) ∝ p_train(c | x) * pi_test(c) / pi_train(c). With the
    default uniform test priors this is Buda et al.'s "thresholding":
    dividing the outputs by the training priors, which compensates the
    imbalance at prediction time without retraining. Rows are renormalised
    to sum to 1.

    Args:
        probs: probabilities, shape (N, C), or shape (N,) for the positive
            class of a binary model (then the priors have length 2:
            [negative, positive]).
        train_priors: per-class training priors or counts (every entry > 0).
        test_priors: per-class test priors or counts (entries >= 0 with a
            positive sum); `None` for uniform.

    Returns:
        The corrected probabilities, float64, same shape as `probs`.

    Raises:
        ValueError: for probabilities that are negative, non-finite, not 1-D
            or 2-D, or with a row summing to 0; priors of the wrong length,
            with a zero / negative training entry or a non-positive test sum;
            or a row whose probability lies only on classes of test prior 0.

    Examples:

    >>> probs = np.array([[0.8, 0.2], [0.6, 0.4]])
    >>> prior_correction(probs, train_priors=[800, 200]).round(3).tolist()
    [[0.5, 0.5], [0.273, 0.727]]
    >>> prior_correction(np.array([0.2, 0.4]), [0.8, 0.2]).round(3).tolist()
    [0.5, 0.727]

    References:
        Buda, M., Maki, A. and Mazurowski, M. A. "A systematic study of the
        class imbalance problem in convolutional neural networks." Neural
        Networks, 2018.
        Saerens, M. et al. "Adjusting the outputs of a classifier to new a
        priori probabilities." Neural Computation, 2002.
    """
    try:
        probs_arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("probs", "an array of probabilities", probs) from None
    binary = probs_arr.ndim == 1
    if binary:
        probs_arr = np.stack([1.0 - probs_arr, probs_arr], axis=1)
    if probs_arr.ndim != 2 or probs_arr.shape[0] == 0:
        raise invalid("probs", "a non-empty array of shape (N, C), or (N,) for the "
                      "positive class of a binary model", probs)
    if not np.all(np.isfinite(probs_arr)) or np.any(probs_arr < 0):
        raise invalid("probs", "finite probabilities >= 0", probs)
    if np.any(probs_arr.sum(axis=1) <= 0):
        raise invalid("probs", "rows with a positive sum", probs)
    num_classes = probs_arr.shape[1]
    train = check_priors("train_priors", train_priors)
    if train.size != num_classes:
        raise invalid("train_priors", f"{num_classes} priors, one per class of "
                      "probs", train_priors)
    if test_priors is None:
        test = np.full(num_classes, 1.0 / num_classes)
    else:
        test = check_vector("test_priors", test_priors)
        if test.size != num_classes:
            raise invalid("test_priors", f"{num_classes} priors, one per class of "
                          "probs", test_priors)
        if test.sum() <= 0:
            raise invalid("test_priors", "priors or counts with a positive sum",
                          test_priors)
        test = test / test.sum()
    corrected = probs_arr * (test / train)
    totals = corrected.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise invalid("test_priors", "a positive prior on at least one class each "
                      "row of probs gives probability to", test_priors)
    corrected = corrected / totals
    return corrected[:, 1] if binary else corrected


def _binary_inputs(y_true, y_score):
    labels = _binary_labels("y_true", y_true)
    scores = _score_column("y_score", y_score)
    if labels.shape[0] != scores.shape[0]:
        raise invalid("y_score", f"{labels.shape[0]} scores, one per label of y_true "
                      f"(got {scores.shape[0]})", y_score)
    if labels.min() == labels.max():
        raise invalid("y_true", "both classes (0 and 1) present", y_true)
    return labels, scores


def _binary_labels(name, values):
    """1-D 0/1 labels: a threshold separates exactly two classes, so the rule
    is stricter than the package's label parser (no class ids >= 2)."""
    arr = as_label_array(values, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise invalid(name, f"a 1-D array of binary labels (got shape {arr.shape})",
                      values)
    if not np.all((arr == 0) | (arr == 1)):
        raise invalid(name, "binary labels (0/1 or booleans)", values)
    return arr.astype(np.int64)


def _score_column(name, values):
    scores = _finite_scores(name, values)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        raise invalid(name, f"a non-empty 1-D array (got shape {scores.shape})",
                      values)
    return scores


def _finite_scores(name, values):
    """Scores as a non-empty float64 array with finite values."""
    try:
        scores = np.asarray(values)
    except (TypeError, ValueError):
        raise invalid(name, "an array of scores", values) from None
    if scores.dtype.kind not in "biuf":
        raise invalid(name, f"numeric scores; got dtype {scores.dtype}", values)
    if scores.size == 0:
        raise invalid(name, f"a non-empty array (got shape {scores.shape})", values)
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise invalid(name, "finite scores (no NaN or inf)", values)
    return scores


def _label_columns(y_true, y_score):
    """(N, L) 0/1 label columns and (N, L) scores for per-column tuning."""
    scores = _finite_scores("y_score", y_score)
    if scores.ndim != 2:
        raise invalid("y_score", f"a non-empty 2-D array (N, L) (got shape "
                      f"{scores.shape}); use tune_threshold for 1-D scores", y_score)
    num_samples, num_columns = scores.shape
    labels = as_label_array(y_true, "y_true")
    if labels.shape == scores.shape:
        targets = parse_targets(y_true, name="y_true", multi_label=True)
        return targets.array.astype(np.int64), scores
    if (num_columns > 1 and labels.shape[0] == num_samples
            and (labels.ndim == 1 or labels.shape == (num_samples, 1))):
        targets = parse_targets(y_true, num_columns, name="y_true",
                                multi_label=False)
        return targets.indicator().astype(np.int64), scores
    raise invalid("y_true", f"multi-hot labels of shape {scores.shape} or "
                  f"{num_samples} class ids, matching y_score of shape "
                  f"{scores.shape} (got shape {labels.shape})", y_true)


def _resolve_metric(metric):
    """Returns (kind, target, function) for a metric spec, else raises."""
    if callable(metric):
        return "callable", None, metric
    if isinstance(metric, str):
        if metric in METRICS:
            return metric, None, None
        if metric in _CONSTRAINED:
            raise invalid("metric", f"a pair ({metric!r}, target) with a target in "
                          "[0, 1]", metric)
    elif isinstance(metric, tuple | list) and len(metric) == 2 and (
            metric[0] in _CONSTRAINED):
        target = metric[1]
        if (not isinstance(target, numbers.Real) or isinstance(target, bool)
                or not 0.0 <= float(target) <= 1.0):
            raise invalid("metric", f"a target in [0, 1] for {metric[0]!r}", metric)
        return metric[0], float(target), None
    raise invalid("metric", f"one of {list(METRICS)}, ('recall_at_precision', p), "
                  "('precision_at_recall', r) or a callable(y_true, y_pred)", metric)


def _tune(y_true, y_score, kind, target, function, beta, metric, label=None):
    thresholds, tp, fp = _candidate_counts(y_true, y_score)
    positives = float(y_true.sum())
    negatives = float(y_true.size) - positives
    feasible = None
    if kind == "f1":
        values = 2.0 * tp / (tp + fp + positives)
    elif kind == "fbeta":
        beta2 = beta * beta
        values = (1.0 + beta2) * tp / (tp + fp + beta2 * positives)
    elif kind == "gmean":
        values = np.sqrt(tp * (negatives - fp) / (positives * negatives))
    elif kind == "youden":
        values = (tp * negatives - fp * positives) / (positives * negatives)
    elif kind == "balanced_accuracy":
        values = (tp * negatives + (negatives - fp) * positives) / (
            2.0 * positives * negatives)
    elif kind == "recall_at_precision":
        precision = tp / (tp + fp)
        values = tp / positives
        feasible = precision >= target
        if not np.any(feasible):
            where = "" if label is None else f" for label {label}"
            raise invalid("metric", f"a reachable precision target{where}: the "
                          f"highest precision at any threshold is "
                          f"{precision.max():.6g}", metric)
    elif kind == "precision_at_recall":
        values = tp / (tp + fp)
        feasible = tp / positives >= target
    else:
        values = np.empty(thresholds.size)
        for i, threshold in enumerate(thresholds):
            value = function(y_true, (y_score >= threshold).astype(np.int64))
            try:
                values[i] = float(value)
            except (TypeError, ValueError):
                values[i] = np.nan
            if not np.isfinite(values[i]):
                raise invalid("metric", "a callable returning a finite float "
                              f"(it returned {value!r} at threshold {threshold!r})",
                              metric)
    if feasible is not None:
        values = np.where(feasible, values, -np.inf)
    best = values.max()
    # Thresholds are in decreasing order: the first near-maximiser is the largest.
    index = int(np.argmax(values >= best - _TIE_RTOL * max(abs(best), 1.0)))
    return float(thresholds[index]), float(values[index])


def _candidate_counts(y_true, y_score):
    """Distinct thresholds (decreasing) with TP and FP of `score >= threshold`."""
    order = np.argsort(-y_score, kind="stable")
    sorted_scores = y_score[order]
    sorted_true = y_true[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_scores)),
                          sorted_scores.size - 1]
    tp = np.cumsum(sorted_true)[last_of_group].astype(np.float64)
    fp = (last_of_group + 1).astype(np.float64) - tp
    return sorted_scores[last_of_group], tp, fp
