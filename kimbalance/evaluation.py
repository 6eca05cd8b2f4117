"""Evaluation of a classifier on imbalanced data: one call, one report (NumPy).

`evaluate` takes a Keras model and inputs, or predictions already made, and
returns an `EvaluationReport` with the scores that imbalance needs: accuracy,
balanced accuracy, G-mean, macro-F1, per-class precision / recall / F1 /
support, the confusion matrix and, given the training counts, the many / medium
/ few-shot accuracy of the long-tail literature. Multi-hot labels get a
`MultiLabelReport` instead (per-label precision / recall / F1 / average
precision, macro / micro F1 and mAP at a decision threshold): a multi-label
target is never reduced to the argmax of its row.

Labels are read by the package's one label parser (the rules of
`kimbalance.weights.class_counts`, the samplers and the generator). Every
single-label score is computed here with NumPy from per-class counts of true
positives, samples and predictions (O(C) memory; the C x C confusion matrix is
kept only up to `MAX_AUTO_CONFUSION_CLASSES` classes unless asked for) and
follows the reference libraries exactly:

- `accuracy`: the fraction of correct predictions.
- `balanced_accuracy`: mean recall over the classes present in `y`
  (`sklearn.metrics.balanced_accuracy_score`).
- `g_mean`: geometric mean of the recalls of the classes present in `y` *or*
  in the predictions, a class with no sample counting as recall 0
  (`imblearn.metrics.geometric_mean_score`, default `average="multiclass"`).
- `macro_f1`: mean F1 over the classes present in `y` or in the predictions
  (`sklearn.metrics.f1_score(average="macro")`).
- `precision`, `recall`, `f1`, `support`: per class 0..C-1, 0 where undefined
  (`sklearn.metrics.precision_recall_fscore_support(labels=range(C),
  zero_division=0)`).
- `many_shot_accuracy`, `medium_shot_accuracy`, `few_shot_accuracy`: mean
  per-class accuracy (recall) over the classes with more than `many_threshold`
  training samples, from `few_threshold` to `many_threshold`, and fewer than
  `few_threshold` (Liu et al. 2019; Kang et al. 2020: 100 and 20).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import keras
import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score

from kimbalance._validation import (
    MAX_CLASSES,
    as_label_array,
    check_bool,
    check_class_names,
    check_counts,
    check_float,
    check_int,
    check_shot_thresholds,
    invalid,
    parse_targets,
)

__all__ = ["evaluate", "EvaluationReport", "MultiLabelReport", "multilabel_report"]

#: Up to this many classes `evaluate(confusion_matrix="auto")` keeps the C x C
#: confusion matrix (8 MB of int64); above it the report holds `None` there.
MAX_AUTO_CONFUSION_CLASSES = 1024
# `confusion_matrix=True` beyond this many classes is an error: C * C int64
# entries would take more than 512 MB.
_MAX_CONFUSION_CLASSES = 8192


@dataclass(eq=False)
class EvaluationReport:
    """The scores of one evaluation; built by `kimbalance.evaluate`.

    Attributes:
        accuracy: fraction of correct predictions.
        balanced_accuracy: mean recall over the classes present in the labels
            (as `sklearn.metrics.balanced_accuracy_score`).
        g_mean: geometric mean of per-class recall over the classes present in
            the labels or predictions (as `imblearn.metrics.geometric_mean_score`;
            a predicted class with no sample counts as recall 0, so G-mean 0).
        macro_f1: mean F1 over the classes present in the labels or predictions
            (as `sklearn.metrics.f1_score(average="macro")`).
        precision: per-class precision, shape (C,), 0 where nothing was
            predicted for the class.
        recall: per-class recall, shape (C,), 0 for a class with no sample.
        f1: per-class F1, shape (C,).
        support: per-class number of evaluated samples, shape (C,).
        confusion_matrix: (C, C) int counts, rows = true class, columns =
            predicted class; `None` when not kept (more than
            `MAX_AUTO_CONFUSION_CLASSES` classes, or `confusion_matrix=False`).
        many_shot_accuracy: mean per-class accuracy of the classes with more
            than `many_threshold` training samples; `None` without
            `class_counts` or when no evaluated class is in the group.
        medium_shot_accuracy: the same for classes with `few_threshold` to
            `many_threshold` training samples (both included).
        few_shot_accuracy: the same for classes with fewer than
            `few_threshold` training samples.
        shot_classes: `{"many": [...], "medium": [...], "few": [...]}` the
            class ids of each group (all classes, evaluated or not); `None`
            without `class_counts`.
        class_names: a name per class (the class ids as strings by default).
        class_counts: the training counts given to `evaluate`, or `None`.
        many_threshold: the many-shot bound (a class is many-shot when its
            training count is greater than this).
        few_threshold: the few-shot bound (a class is few-shot when its
            training count is less than this).
    """

    accuracy: float
    balanced_accuracy: float
    g_mean: float
    macro_f1: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion_matrix: np.ndarray | None
    many_shot_accuracy: float | None = None
    medium_shot_accuracy: float | None = None
    few_shot_accuracy: float | None = None
    shot_classes: dict | None = None
    class_names: list = field(default_factory=list)
    class_counts: np.ndarray | None = None
    many_threshold: int = 100
    few_threshold: int = 20

    @property
    def num_classes(self) -> int:
        """The number of classes C."""
        return int(self.support.shape[0])

    @property
    def num_samples(self) -> int:
        """The number of evaluated samples."""
        return int(self.support.sum())

    def summary(self) -> dict[str, float | None]:
        """The headline scores as a flat dict of floats (or `None`).

        Keys: `accuracy`, `balanced_accuracy`, `g_mean`, `macro_f1`,
        `many_shot_accuracy`, `medium_shot_accuracy`, `few_shot_accuracy`.
        """
        return {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "g_mean": self.g_mean,
            "macro_f1": self.macro_f1,
            "many_shot_accuracy": self.many_shot_accuracy,
            "medium_shot_accuracy": self.medium_shot_accuracy,
            "few_shot_accuracy": self.few_shot_accuracy,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python values (lists, floats, ints, `None`).

        The keys are the attribute names plus `num_samples` and
        `num_classes`; per-class arrays become lists indexed by class id.
        """
        return {
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            **self.summary(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
            "support": self.support.tolist(),
            "confusion_matrix": (None if self.confusion_matrix is None
                                 else self.confusion_matrix.tolist()),
            "shot_classes": (None if self.shot_classes is None
                             else {k: list(v) for k, v in self.shot_classes.items()}),
            "class_names": list(self.class_names),
            "class_counts": (None if self.class_counts is None
                             else self.class_counts.tolist()),
            "many_threshold": self.many_threshold,
            "few_threshold": self.few_threshold,
        }

    def to_json(self, indent: int | str | None = 2) -> str:
        """`to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        lines = [f"EvaluationReport: {self.num_samples} samples, "
                 f"{self.num_classes} classes"]
        rows = [("accuracy", self.accuracy),
                ("balanced accuracy", self.balanced_accuracy),
                ("G-mean", self.g_mean),
                ("macro-F1", self.macro_f1)]
        for label, value in rows:
            lines.append(f"  {label:<22}{value:.4f}")
        if self.shot_classes is not None:
            groups: tuple[tuple[str, float | None, str], ...] = (
                ("many", self.many_shot_accuracy, f"> {self.many_threshold}"),
                ("medium", self.medium_shot_accuracy,
                 f"{self.few_threshold}..{self.many_threshold}"),
                ("few", self.few_shot_accuracy, f"< {self.few_threshold}"),
            )
            for group, group_accuracy, bound in groups:
                shown = ("-" if group_accuracy is None
                         else f"{group_accuracy:.4f}")
                count = len(self.shot_classes[group])
                lines.append(f"  {group + '-shot accuracy':<22}{shown:<8}"
                             f"({count} classes, {bound} train samples)")
        width = max([5] + [len(name) for name in self.class_names])
        header = f"  {'class':<{width}}"
        if self.class_counts is not None:
            header += f"{'train':>9}"
        header += f"{'support':>9}{'precision':>11}{'recall':>9}{'f1':>9}"
        lines.append(header)
        for c, name in enumerate(self.class_names):
            row = f"  {name:<{width}}"
            if self.class_counts is not None:
                row += f"{int(self.class_counts[c]):>9}"
            row += (f"{int(self.support[c]):>9}{self.precision[c]:>11.4f}"
                    f"{self.recall[c]:>9.4f}{self.f1[c]:>9.4f}")
            lines.append(row)
        return "\n".join(lines)



@dataclass(eq=False)
class MultiLabelReport:
    """The scores of a multi-label evaluation; built by `kimbalance.evaluate`.

    Decisions are `probability >= threshold` per label (`sigmoid(logit) >=
    threshold` with `from_logits=True`); the average precision uses the
    ranking of the scores alone.

    Attributes:
        macro_f1: mean F1 over the labels with at least one positive in the
            labels (0.0 when there is none).
        micro_f1: F1 of the true / false positives and false negatives pooled
            over every label.
        mean_average_precision: mean average precision over the labels with at
            least one positive (sklearn's `average_precision_score` per label);
            0.0 when there is none.
        precision: per-label precision, shape (L,), 0 where nothing was
            predicted for the label.
        recall: per-label recall, shape (L,), 0 for a label with no positive.
        f1: per-label F1, shape (L,).
        average_precision: per-label average precision, shape (L,), NaN for a
            label with no positive.
        support: per-label number of positive samples, shape (L,).
        predicted: per-label number of positive decisions, shape (L,).
        num_samples: the number of evaluated samples.
        threshold: the probability threshold of the decisions.
        class_names: a name per label (the label ids as strings by default).
    """

    macro_f1: float
    micro_f1: float
    mean_average_precision: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    average_precision: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    num_samples: int
    threshold: float = 0.5
    class_names: list = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """The number of labels L."""
        return int(self.support.shape[0])

    def summary(self) -> dict[str, float]:
        """The headline scores as a flat dict of floats.

        Keys: `macro_f1`, `micro_f1`, `mean_average_precision`.
        """
        return {
            "macro_f1": self.macro_f1,
            "micro_f1": self.micro_f1,
            "mean_average_precision": self.mean_average_precision,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python values (NaN average precision -> None)."""
        return {
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            **self.summary(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
            "average_precision": [None if np.isnan(v) else float(v)
                                  for v in self.average_precision],
            "support": self.support.tolist(),
            "predicted": self.predicted.tolist(),
            "threshold": self.threshold,
            "class_names": list(self.class_names),
        }

    def to_json(self, indent: int | str | None = 2) -> str:
        """`to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        lines = [f"MultiLabelReport: {self.num_samples} samples, {self.num_classes} "
                 f"labels, threshold {self.threshold:g}",
                 f"  {'macro-F1':<24}{self.macro_f1:.4f}",
                 f"  {'micro-F1':<24}{self.micro_f1:.4f}",
                 f"  {'mean avg. precision':<24}{self.mean_average_precision:.4f}"]
        width = max([5] + [len(name) for name in self.class_names])
        lines.append(f"  {'label':<{width}}{'support':>9}{'precision':>11}"
                     f"{'recall':>9}{'f1':>9}{'AP':>9}")
        for j, name in enumerate(self.class_names):
            ap = self.average_precision[j]
            shown = "-" if np.isnan(ap) else f"{ap:.4f}"
            lines.append(f"  {name:<{width}}{int(self.support[j]):>9}"
                         f"{self.precision[j]:>11.4f}{self.recall[j]:>9.4f}"
                         f"{self.f1[j]:>9.4f}{shown:>9}")
        return "\n".join(lines)


def evaluate(model_or_predictions: Any, x: Any = None, y: Any = None, *,
             class_counts: ArrayLike | None = None,
             class_names: Sequence[str] | None = None,
             num_classes: int | None = None, batch_size: int = 256,
             from_logits: bool = False, threshold: float = 0.5,
             many_threshold: int = 100, few_threshold: int = 20,
             multi_label: bool | None = None, confusion_matrix: bool | str = "auto",
             ) -> EvaluationReport | MultiLabelReport:
    """Evaluates a classifier with the scores that class imbalance needs.

    Two ways in:
    - a Keras model and its inputs: `evaluate(model, x, y)` runs
      `model.predict(x, batch_size=batch_size)`; `x` may also be a
      `keras.utils.PyDataset` yielding `(x, y)` or `(x, y, sample_weight)`
      batches, with `y=None` (the labels come from the batches; sample
      weights are ignored);
    - predictions already made: `evaluate(predictions, y)` or
      `evaluate(predictions, y=y)`.

    Labels `y` are read like everywhere in the package: class ids (N,) /
    (N, 1), one-hot rows (N, C), or multi-hot rows (N, L) of 0/1 values.
    Rows that do not each hold exactly one 1 are multi-hot (force either
    reading with `multi_label=True` / `False`); multi-hot labels get a
    `MultiLabelReport`, never the argmax of their rows.

    Single-label predictions may be:
    - (N, C) probabilities or logits, C >= 2: the predicted class is the
      argmax (the same for both);
    - (N, 1) or (N,) binary scores (a sigmoid output, float): the positive
      class 1 is predicted when `score >= threshold` (0.5 by default); with
      `from_logits=True` the scores are logits and the rule is
      `sigmoid(score) >= threshold`. Probabilities outside [0, 1] without
      `from_logits=True` are an error, not a silent misreading;
    - (N,) class ids (an integer dtype, or floats that are all whole numbers).

    Multi-label predictions are (N, L) probabilities (or logits with
    `from_logits=True`), one column per label; label j is predicted when its
    probability is `>= threshold`.

    The number of classes comes from `num_classes`, the prediction width,
    `class_counts` or `class_names` (which must agree), else from the largest
    class id, which is then bounded by what the data supports (at most
    `max(65536, N)` classes: a larger id needs `num_classes`).

    The many / medium / few-shot accuracy needs the *training* counts
    `class_counts`: a class is many-shot with more than `many_threshold`
    training samples, few-shot with fewer than `few_threshold`, medium-shot
    otherwise (100 and 20 as in Liu et al. 2019 and Kang et al. 2020). A
    group's accuracy is the mean per-class accuracy of its classes that occur
    in `y` (OLTR's `shot_acc`); it is `None` when no such class exists (OLTR
    reports 0 there, which reads as a real score).

    Args:
        model_or_predictions: a Keras model (anything with `predict`), or a
            prediction array.
        x: the model inputs (array, dict of arrays, or a PyDataset). With
            predictions, a second positional argument is taken as `y`.
        y: the true labels (not needed when `x` is a PyDataset).
        class_counts: training samples per class, shape (C,), for the
            many / medium / few-shot accuracy (single-label only).
        class_names: a name per class (or label), for the table.
        num_classes: the number of classes C (an int >= 2).
        batch_size: the prediction batch size for array inputs.
        from_logits: binary scores and multi-label scores: they are logits.
        threshold: binary and multi-label scores: the decision threshold on
            the probability, in (0, 1).
        many_threshold: int, a class with more training samples is many-shot.
        few_threshold: int, a class with fewer training samples is few-shot;
            at most `many_threshold + 1`.
        multi_label: None (detect from `y`), True (2-D `y` is multi-hot) or
            False (2-D `y` must be one-hot).
        confusion_matrix: `"auto"` (keep the C x C matrix up to
            `MAX_AUTO_CONFUSION_CLASSES` classes), True (always; at most 8192
            classes) or False (never). The scores never need it.

    Returns:
        An `EvaluationReport` for single-label targets, a `MultiLabelReport`
        for multi-hot targets; `print(report)` shows a table,
        `report.to_dict()` / `report.to_json()` give every field and
        `report.summary()` the headline scores.

    Raises:
        ValueError: for a missing `x` / `y`, mismatched lengths, invalid
            labels (negative, fractional, non-finite, out of range, rows of
            values other than 0/1), non-finite predictions, probabilities
            outside [0, 1] (without `from_logits=True`), inconsistent
            `num_classes` / `class_counts` / `class_names`, or bad
            arguments.

    Examples:

    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    >>> report = evaluate(probs, [0, 0, 1, 1], class_counts=[500, 10])
    >>> report.accuracy, report.balanced_accuracy, round(report.g_mean, 4)
    (0.75, 0.75, 0.7071)
    >>> report.recall.tolist(), report.many_shot_accuracy, report.few_shot_accuracy
    ([1.0, 0.5], 1.0, 0.5)
    >>> evaluate(np.array([0.2, 0.7, 0.4]), [0, 1, 1]).confusion_matrix.tolist()
    [[1, 0], [1, 1]]
    >>> multi = evaluate(np.array([[0.9, 0.8], [0.2, 0.6], [0.7, 0.1]]),
    ...                  [[1, 1], [0, 1], [0, 0]])
    >>> type(multi).__name__, multi.recall.tolist(), round(multi.micro_f1, 4)
    ('MultiLabelReport', [1.0, 1.0], 0.8571)

    References:
        Liu et al., "Large-Scale Long-Tailed Recognition in an Open World",
        CVPR 2019 (many / medium / few-shot split).
        Kang et al., "Decoupling Representation and Classifier for Long-Tailed
        Recognition", ICLR 2020.
        Kubat and Matwin, "Addressing the Curse of Imbalanced Training Sets:
        One-Sided Selection", ICML 1997 (G-mean).
    """
    many_threshold, few_threshold = check_shot_thresholds(many_threshold,
                                                          few_threshold)
    from_logits = check_bool("from_logits", from_logits)
    threshold = check_decision_threshold(threshold)
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, low=2, high=MAX_CLASSES)
    if multi_label is not None:
        multi_label = check_bool("multi_label", multi_label)
    if confusion_matrix != "auto":
        confusion_matrix = _check_confusion_flag(confusion_matrix)
    counts = None if class_counts is None else check_counts("class_counts",
                                                            class_counts)

    if _is_model(model_or_predictions):
        predictions, y = _predict(model_or_predictions, x, y, batch_size)
    else:
        if x is not None and y is not None:
            raise invalid("x", "None when predictions are given (x is only used "
                          "with a model; pass the labels as y)", x)
        predictions = model_or_predictions
        y = y if y is not None else x
        if predictions is None:
            raise invalid("model_or_predictions", "a Keras model or an array of "
                          "predictions", None)
        if y is None:
            raise invalid("y", "the true labels", None)
    scores = _score_array(predictions)
    targets = _multi_hot_targets(y, multi_label)
    if targets is not None:
        if counts is not None:
            raise invalid("class_counts", "None for multi-hot labels (the many / "
                          "medium / few-shot split is single-label)", class_counts)
        return _multilabel_report(targets, scores, predictions, y, from_logits,
                                  threshold, class_names, num_classes)

    width = _prediction_width(scores, predictions, from_logits)
    expected, source = _expected_num_classes(num_classes, width, predictions,
                                             counts, class_counts, class_names)
    label_array = as_label_array(y, "y")
    if (expected is not None and label_array.ndim == 2
            and label_array.shape[1] not in (1, expected)):
        raise invalid("y", f"one-hot rows of {expected} columns, one per class (as "
                      f"{source} says)", y)
    targets = parse_targets(y, expected, multi_label=multi_label)
    y_pred, pred_classes = _predicted_labels(scores, predictions, width, expected,
                                             from_logits, threshold)
    if y_pred.shape[0] != len(targets):
        raise invalid("y", f"{y_pred.shape[0]} labels (one per prediction); got "
                      f"{len(targets)}", y)
    num = expected if expected is not None else max(targets.num_classes,
                                                    pred_classes, 2)
    names = (None if class_names is None
             else list(check_class_names(class_names, num)))
    # Multi-hot labels were handled above: these are ids or one-hot rows.
    ids = cast(np.ndarray, targets.ids)
    return report_from_labels(ids, y_pred, num, class_counts=counts,
                              class_names=names, many_threshold=many_threshold,
                              few_threshold=few_threshold,
                              confusion_matrix=confusion_matrix)


def check_decision_threshold(threshold: float, name: str = "threshold") -> float:
    """Returns a probability threshold in (0, 1) as a float, else raises."""
    return check_float(name, threshold, low=0.0, high=1.0, low_inclusive=False,
                       high_inclusive=False)


def _check_confusion_flag(value):
    if not isinstance(value, bool | np.bool_):
        raise invalid("confusion_matrix", "'auto', True or False", value)
    return bool(value)


def report_from_labels(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                       *,
                       class_counts: ArrayLike | None = None,
                       class_names: Sequence[str] | None = None,
                       many_threshold: int = 100, few_threshold: int = 20,
                       confusion_matrix: bool | str = "auto") -> EvaluationReport:
    """Builds the report from validated int64 label arrays in [0, num_classes).

    Every score comes from O(C) per-class counts (true positives, samples,
    predictions); the C x C confusion matrix is built only when
    `confusion_matrix` is True, or `"auto"` with at most
    `MAX_AUTO_CONFUSION_CLASSES` classes.
    """
    if confusion_matrix == "auto":
        keep_matrix = num_classes <= MAX_AUTO_CONFUSION_CLASSES
    else:
        keep_matrix = bool(confusion_matrix)
        if keep_matrix and num_classes > _MAX_CONFUSION_CLASSES:
            raise invalid("confusion_matrix", f"False or 'auto' for {num_classes} "
                          f"classes (a C x C matrix is kept for at most "
                          f"{_MAX_CONFUSION_CLASSES} classes)", confusion_matrix)
    correct = y_true == y_pred
    tp = np.bincount(y_true[correct], minlength=num_classes).astype(np.float64)
    support = np.bincount(y_true, minlength=num_classes).astype(np.int64)
    predicted = np.bincount(y_pred, minlength=num_classes).astype(np.int64)
    cm = None
    if keep_matrix:
        cm = np.bincount(y_true * num_classes + y_pred,
                         minlength=num_classes * num_classes)
        cm = cm.reshape(num_classes, num_classes).astype(np.int64)
    present_true = support > 0
    present_any = present_true | (predicted > 0)
    recall = _divide(tp, support)
    precision = _divide(tp, predicted)
    f1 = _divide(2.0 * tp, support + predicted)
    accuracy = float(tp.sum() / max(int(support.sum()), 1))
    balanced = float(recall[present_true].mean())
    with np.errstate(divide="ignore"):
        g_mean = float(np.exp(np.mean(np.log(recall[present_any]))))
    macro_f1 = float(f1[present_any].mean())
    report = EvaluationReport(
        accuracy=accuracy, balanced_accuracy=balanced, g_mean=g_mean,
        macro_f1=macro_f1, precision=precision, recall=recall, f1=f1,
        support=support, confusion_matrix=cm,
        class_names=(list(class_names) if class_names is not None
                     else [str(c) for c in range(num_classes)]),
        many_threshold=many_threshold, few_threshold=few_threshold)
    if class_counts is not None:
        counts = np.asarray(class_counts, dtype=np.int64)
        groups = {"many": np.flatnonzero(counts > many_threshold),
                  "medium": np.flatnonzero((counts >= few_threshold)
                                           & (counts <= many_threshold)),
                  "few": np.flatnonzero(counts < few_threshold)}
        report.class_counts = counts
        report.shot_classes = {k: v.tolist() for k, v in groups.items()}
        for group, classes in groups.items():
            evaluated = classes[present_true[classes]]
            value = float(recall[evaluated].mean()) if evaluated.size else None
            setattr(report, f"{group}_shot_accuracy", value)
    return report


def _divide(numerator, denominator):
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)


def _is_model(obj):
    return callable(getattr(obj, "predict", None)) and not isinstance(obj, np.ndarray)


def _predict(model, x, y, batch_size):
    if x is None:
        raise invalid("x", "the model inputs (an array, a dict of arrays or a "
                      "PyDataset)", None)
    if isinstance(x, keras.utils.PyDataset):
        if y is not None:
            raise invalid("y", "None when x is a PyDataset (labels come from its "
                          "batches)", y)
        return predict_batches(model, x)
    if y is None:
        raise invalid("y", "the true labels (or a PyDataset as x)", None)
    batch_size = check_int("batch_size", batch_size, low=1)
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    return predictions, y


def predict_batches(model: keras.Model, dataset: keras.utils.PyDataset,
                    name: str = "x") -> tuple[np.ndarray, Any]:
    """Predicts every batch of a PyDataset once; returns (predictions, labels).

    Args:
        model: a Keras model.
        dataset: a `keras.utils.PyDataset` whose batches are `(x, y)` or
            `(x, y, sample_weight)` tuples (sample weights are ignored).
        name: the argument name used in error messages.

    Returns:
        `(predictions, labels)`: the NumPy concatenation over the batches.
    """
    try:
        num_batches = len(dataset)
    except TypeError:
        num_batches = dataset.num_batches
    if not num_batches:
        raise invalid(name, "a PyDataset with at least one batch (a finite "
                      "`num_batches`)", dataset)
    predictions, labels = [], []
    for i in range(num_batches):
        batch = dataset[i]
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise invalid(name, "a PyDataset whose batches are (x, y) or "
                          f"(x, y, sample_weight) tuples (batch {i} is a "
                          f"{type(batch).__name__})", dataset)
        output = model.predict_on_batch(batch[0])
        predictions.append(np.asarray(keras.ops.convert_to_numpy(output)))
        labels.append(np.asarray(batch[1]))
    return np.concatenate(predictions), np.concatenate(labels)


def _score_array(predictions):
    """Predictions as a non-empty, finite, numeric NumPy array."""
    name = "model_or_predictions"
    try:
        scores = np.asarray(predictions)
    except (TypeError, ValueError):
        raise invalid(name, "an array of predictions", predictions) from None
    if scores.dtype.kind not in "biuf":
        raise invalid(name, f"a numeric array; got dtype {scores.dtype}", predictions)
    if scores.size == 0:
        raise invalid(name, "a non-empty array", predictions)
    if scores.dtype.kind == "f" and not np.all(np.isfinite(scores)):
        raise invalid(name, "finite values (no NaN or inf)", predictions)
    if scores.ndim not in (1, 2):
        raise invalid(name, "predictions of shape (N, C), (N, 1) or (N,); got "
                      f"shape {scores.shape}", predictions)
    return scores


def _multi_hot_targets(y, multi_label):
    """The parsed targets when `y` holds multi-hot rows, else None."""
    if multi_label is False:
        return None
    arr = as_label_array(y, "y")
    if arr.ndim != 2 or (arr.shape[1] == 1 and not multi_label):
        return None
    targets = parse_targets(y, multi_label=multi_label)
    return targets if targets.kind == "multi_hot" else None


def _prediction_width(scores, predictions, from_logits):
    """C of an (N, C) score matrix, 2 for binary scores, None for class ids."""
    if scores.ndim == 2 and scores.shape[1] >= 2:
        return int(scores.shape[1])
    flat = scores.reshape(-1)
    whole = scores.dtype.kind in "biu" or np.all(flat == np.round(flat))
    if whole and not (_is_float_column(predictions) or from_logits):
        return None
    return 2


def _expected_num_classes(num_classes, width, predictions, counts, class_counts,
                          class_names):
    """(class count the arguments agree on, the first argument giving it).

    Both are None when no argument gives a class count.
    """
    sources = []
    if num_classes is not None:
        sources.append(("num_classes", num_classes, num_classes))
    if width is not None:
        sources.append(("model_or_predictions", width, predictions))
    if counts is not None:
        sources.append(("class_counts", len(counts), class_counts))
    if class_names is not None:
        names = check_class_names(class_names)
        sources.append(("class_names", len(names), class_names))
    if not sources:
        return None, None
    first_name, first, _ = sources[0]
    for name, value, received in sources[1:]:
        if value != first:
            raise invalid(name, f"{first} classes (as {first_name} says; it gives "
                          f"{value})", received)
    return first, first_name


def _predicted_labels(scores, predictions, width, expected, from_logits, threshold):
    """Returns (int64 predicted class ids, the class count they imply)."""
    if scores.ndim == 2 and scores.shape[1] >= 2:
        return np.argmax(scores, axis=1).astype(np.int64), width
    flat = scores.reshape(-1)
    if width is None:
        ids = parse_targets(predictions, expected, name="model_or_predictions")
        return ids.ids, ids.num_classes
    if from_logits:
        cut = np.log(threshold) - np.log1p(-threshold)
        return (flat >= cut).astype(np.int64), 2
    if flat.min() < 0 or flat.max() > 1:
        raise invalid("model_or_predictions",
                      "binary probabilities in [0, 1] (pass from_logits=True for "
                      "logits)", predictions)
    return (flat >= threshold).astype(np.int64), 2


def _is_float_column(predictions):
    """A float (N, 1) output is a sigmoid score, never a column of class ids."""
    shape = getattr(predictions, "shape", None)
    dtype = getattr(predictions, "dtype", None)
    return (shape is not None and len(shape) == 2 and shape[1] == 1
            and np.dtype(dtype).kind == "f")


def _multilabel_report(targets, scores, predictions, y, from_logits, threshold,
                       class_names, num_classes):
    width = targets.num_classes
    if num_classes is not None and num_classes != width:
        raise invalid("num_classes", f"{width} (the number of label columns of y)",
                      num_classes)
    if scores.shape != targets.array.shape:
        raise invalid("model_or_predictions", f"scores of shape "
                      f"{targets.array.shape}, one per label of y (got shape "
                      f"{scores.shape})", predictions)
    if not from_logits and (scores.min() < 0 or scores.max() > 1):
        raise invalid("model_or_predictions", "probabilities in [0, 1] for "
                      "multi-hot labels (pass from_logits=True for logits)",
                      predictions)
    cut = np.log(threshold) - np.log1p(-threshold) if from_logits else threshold
    names = (list(check_class_names(class_names, width)) if class_names is not None
             else [str(j) for j in range(width)])
    return _multilabel_scores(targets.array, scores.astype(np.float64), cut,
                              threshold, names)


def _multilabel_scores(y_true, scores, cut, threshold, names):
    """A MultiLabelReport from validated 0/1 labels and finite scores."""
    truth = y_true.astype(bool)
    decisions = scores >= cut
    tp = np.sum(truth & decisions, axis=0).astype(np.float64)
    support = truth.sum(axis=0).astype(np.int64)
    predicted = decisions.sum(axis=0).astype(np.int64)
    precision = _divide(tp, predicted)
    recall = _divide(tp, support)
    f1 = _divide(2.0 * tp, support + predicted)
    pooled = float(support.sum() + predicted.sum())
    micro_f1 = 2.0 * float(tp.sum()) / pooled if pooled else 0.0
    present = support > 0
    ap = np.full(support.shape[0], np.nan)
    for j in np.flatnonzero(present):
        ap[j] = average_precision_score(truth[:, j], scores[:, j])
    return MultiLabelReport(
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        micro_f1=micro_f1,
        mean_average_precision=float(ap[present].mean()) if present.any() else 0.0,
        precision=precision, recall=recall, f1=f1, average_precision=ap,
        support=support, predicted=predicted, num_samples=int(truth.shape[0]),
        threshold=float(threshold), class_names=names)


def multilabel_report(y_true: ArrayLike, scores: ArrayLike, *,
                      thresholds: float | ArrayLike = 0.0,
                      label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Macro/micro F1, mAP and a per-label table for multi-label logits.

    Args:
        y_true: (N, L) multi-hot labels.
        scores: (N, L) logits (decision `score >= thresholds`; the default 0
            is probability 0.5). Rankings give the average precision.
        thresholds: a scalar or per-label thresholds on the logit scale.
        label_names: names for the per-label table.

    Returns:
        A dict: `macro_f1`, `micro_f1`, `map` (macro average precision over
        labels with at least one positive, as sklearn), and `per_label`, a
        list of dicts (`label`, `positives`, `ap`, `f1`, `precision`, `recall`).
        `evaluate(scores, y_true, from_logits=True)` gives the same scores as
        a `MultiLabelReport`.

    Raises:
        ValueError: for labels that are not multi-hot 0/1 rows, scores of
            another shape or non-finite, or thresholds that are not finite
            and broadcastable to (L,).

    Examples:

    >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    >>> s = np.array([[2.0, -1.0], [-1.0, 3.0], [1.0, 0.5], [-2.0, -3.0]])
    >>> r = multilabel_report(y, s)
    >>> r["macro_f1"], r["micro_f1"], r["map"]
    (1.0, 1.0, 1.0)
    """
    targets = parse_targets(y_true, name="y_true", multi_label=True)
    width = targets.num_classes
    try:
        score_arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("scores", f"an array of shape {targets.array.shape} (like "
                      "y_true)", scores) from None
    if score_arr.shape != targets.array.shape:
        raise invalid("scores", f"an array of shape {targets.array.shape} (like "
                      "y_true)", scores)
    if not np.all(np.isfinite(score_arr)):
        raise invalid("scores", "finite scores (no NaN or inf)", scores)
    try:
        cut = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (width,))
    except (TypeError, ValueError):
        raise invalid("thresholds", f"a scalar or {width} per-label thresholds",
                      thresholds) from None
    if not np.all(np.isfinite(cut)):
        raise invalid("thresholds", "finite thresholds", thresholds)
    names = (list(check_class_names(label_names, width, name="label_names"))
             if label_names is not None else [str(j) for j in range(width)])
    report = _multilabel_scores(targets.array, score_arr, cut, 0.5, names)
    per_label = [
        {"label": names[j], "positives": int(report.support[j]),
         "ap": (None if np.isnan(report.average_precision[j])
                else float(report.average_precision[j])),
         "f1": float(report.f1[j]), "precision": float(report.precision[j]),
         "recall": float(report.recall[j])}
        for j in range(width)
    ]
    return {"macro_f1": report.macro_f1, "micro_f1": report.micro_f1,
            "map": report.mean_average_precision, "per_label": per_label}
