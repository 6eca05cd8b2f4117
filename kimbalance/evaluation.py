"""Evaluation of a classifier on imbalanced data: one call, one report (NumPy).

`evaluate` takes a Keras model and inputs, or predictions already made, and
returns an `EvaluationReport` with the scores that imbalance needs: accuracy,
balanced accuracy, G-mean, macro-F1, per-class precision / recall / F1 /
support, the confusion matrix and, given the training counts, the many / medium
/ few-shot accuracy of the long-tail literature.

Every score is computed here with NumPy from the confusion matrix and follows
the reference libraries exactly:

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

import json
import numbers
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from kimbalance._validation import check_bool, check_float, check_int, invalid

__all__ = ["evaluate", "EvaluationReport", "multilabel_report"]


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
            predicted class.
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
    confusion_matrix: np.ndarray
    many_shot_accuracy: float | None = None
    medium_shot_accuracy: float | None = None
    few_shot_accuracy: float | None = None
    shot_classes: dict | None = None
    class_names: list = field(default_factory=list)
    class_counts: np.ndarray | None = None
    many_threshold: int = 100
    few_threshold: int = 20

    @property
    def num_classes(self):
        """The number of classes C."""
        return int(self.confusion_matrix.shape[0])

    @property
    def num_samples(self):
        """The number of evaluated samples."""
        return int(self.confusion_matrix.sum())

    def summary(self):
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

    def to_dict(self):
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
            "confusion_matrix": self.confusion_matrix.tolist(),
            "shot_classes": (None if self.shot_classes is None
                             else {k: list(v) for k, v in self.shot_classes.items()}),
            "class_names": list(self.class_names),
            "class_counts": (None if self.class_counts is None
                             else self.class_counts.tolist()),
            "many_threshold": self.many_threshold,
            "few_threshold": self.few_threshold,
        }

    def to_json(self, indent=2):
        """`to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self):
        lines = [f"EvaluationReport: {self.num_samples} samples, "
                 f"{self.num_classes} classes"]
        rows = [("accuracy", self.accuracy),
                ("balanced accuracy", self.balanced_accuracy),
                ("G-mean", self.g_mean),
                ("macro-F1", self.macro_f1)]
        for label, value in rows:
            lines.append(f"  {label:<22}{value:.4f}")
        if self.shot_classes is not None:
            groups = (
                ("many", self.many_shot_accuracy, f"> {self.many_threshold}"),
                ("medium", self.medium_shot_accuracy,
                 f"{self.few_threshold}..{self.many_threshold}"),
                ("few", self.few_shot_accuracy, f"< {self.few_threshold}"),
            )
            for group, value, bound in groups:
                shown = "-" if value is None else f"{value:.4f}"
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


def evaluate(model_or_predictions, x=None, y=None, *, class_counts=None,
             class_names=None, num_classes=None, batch_size=256, from_logits=False,
             threshold=0.5, many_threshold=100, few_threshold=20):
    """Evaluates a classifier with the scores that class imbalance needs.

    Two ways in:
    - a Keras model and its inputs: `evaluate(model, x, y)` runs
      `model.predict(x, batch_size=batch_size)`; `x` may also be a
      `keras.utils.PyDataset` yielding `(x, y)` or `(x, y, sample_weight)`
      batches, with `y=None` (the labels come from the batches; sample
      weights are ignored);
    - predictions already made: `evaluate(predictions, y)` or
      `evaluate(predictions, y=y)`.

    Predictions may be:
    - (N, C) probabilities or logits, C >= 2: the predicted class is the
      argmax (the same for both);
    - (N, 1) or (N,) binary scores (a sigmoid output, float): the positive
      class 1 is predicted when `score >= threshold` (0.5 by default); with
      `from_logits=True` the scores are logits and the rule is
      `sigmoid(score) >= threshold`. Probabilities outside [0, 1] without
      `from_logits=True` are an error, not a silent misreading;
    - (N,) class ids (an integer dtype, or floats that are all whole numbers).

    Labels `y` may be class ids (N,) / (N, 1) or one-hot (N, C) (argmax).

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
            many / medium / few-shot accuracy.
        class_names: a name per class, for the table.
        num_classes: the number of classes C; inferred by default from the
            prediction width, `class_counts`, `class_names` or the largest
            label.
        batch_size: the prediction batch size for array inputs.
        from_logits: binary scores only: the scores are logits.
        threshold: binary scores only: the decision threshold on the
            probability, in (0, 1).
        many_threshold: int, a class with more training samples is many-shot.
        few_threshold: int, a class with fewer training samples is few-shot;
            at most `many_threshold`.

    Returns:
        An `EvaluationReport`; `print(report)` shows a table,
        `report.to_dict()` / `report.to_json()` give every field.

    Raises:
        ValueError: for a missing `x` / `y`, mismatched lengths, labels out of
            range, non-finite predictions, probabilities outside [0, 1]
            (binary scores without `from_logits=True`), inconsistent
            `num_classes` / `class_counts` / `class_names`, or bad thresholds.

    Examples:

    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    >>> report = evaluate(probs, [0, 0, 1, 1], class_counts=[500, 10])
    >>> report.accuracy, report.balanced_accuracy, round(report.g_mean, 4)
    (0.75, 0.75, 0.7071)
    >>> report.recall.tolist(), report.many_shot_accuracy, report.few_shot_accuracy
    ([1.0, 0.5], 1.0, 0.5)
    >>> evaluate(np.array([0.2, 0.7, 0.4]), [0, 1, 1]).confusion_matrix.tolist()
    [[1, 0], [1, 1]]

    References:
        Liu et al., "Large-Scale Long-Tailed Recognition in an Open World",
        CVPR 2019 (many / medium / few-shot split).
        Kang et al., "Decoupling Representation and Classifier for Long-Tailed
        Recognition", ICLR 2020.
        Kubat and Matwin, "Addressing the Curse of Imbalanced Training Sets:
        One-Sided Selection", ICML 1997 (G-mean).
    """
    many_threshold, few_threshold, from_logits, threshold = _check_score_args(
        many_threshold, few_threshold, from_logits, threshold)
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, low=2)

    if _is_model(model_or_predictions):
        predictions, y = _predict(model_or_predictions, x, y, batch_size)
    else:
        if x is not None and y is not None:
            raise invalid("x", "None when predictions are given (x is only used "
                          "with a model; pass the labels as y)",
                          _describe(x))
        predictions = model_or_predictions
        y = y if y is not None else x
        if predictions is None:
            raise invalid("model_or_predictions", "a Keras model or an array of "
                          "predictions", None)
        if y is None:
            raise invalid("y", "the true labels", None)
    y_pred, width = _predicted_labels(predictions, from_logits, threshold)
    y_true = _true_labels(y)
    if y_true.shape[0] != y_pred.shape[0]:
        raise invalid("y", f"{y_pred.shape[0]} labels (one per prediction)",
                      f"<{y_true.shape[0]} labels>")
    counts = _optional_counts(class_counts)
    num_classes = _infer_num_classes(num_classes, width, counts, class_names,
                                     y_true, y_pred)
    names = _class_names(class_names, num_classes)
    return report_from_labels(y_true, y_pred, num_classes, class_counts=counts,
                              class_names=names, many_threshold=many_threshold,
                              few_threshold=few_threshold)


def _check_score_args(many_threshold, few_threshold, from_logits, threshold):
    many_threshold = check_int("many_threshold", many_threshold, low=0)
    few_threshold = check_int("few_threshold", few_threshold, low=0)
    if few_threshold > many_threshold + 1:
        raise invalid("few_threshold",
                      f"an int <= many_threshold + 1 = {many_threshold + 1}",
                      few_threshold)
    from_logits = check_bool("from_logits", from_logits)
    threshold = check_float("threshold", threshold, low=0.0, high=1.0,
                            low_inclusive=False, high_inclusive=False)
    return many_threshold, few_threshold, from_logits, threshold


def report_from_labels(y_true, y_pred, num_classes, *, class_counts=None,
                       class_names=None, many_threshold=100, few_threshold=20):
    """Builds the report from validated int label arrays (internal fast path)."""
    cm = np.bincount(y_true * num_classes + y_pred,
                     minlength=num_classes * num_classes)
    cm = cm.reshape(num_classes, num_classes).astype(np.int64)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present_true = support > 0
    present_any = present_true | (predicted > 0)
    recall = _divide(tp, support)
    precision = _divide(tp, predicted)
    f1 = _divide(2.0 * tp, support + predicted)
    accuracy = float(tp.sum() / max(cm.sum(), 1))
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


def _is_batch_source(x):
    import keras

    return isinstance(x, keras.utils.PyDataset)


def _describe(value):
    shape = getattr(value, "shape", None)
    return f"<{type(value).__name__} of shape {tuple(shape)}>" if shape else value


def _predict(model, x, y, batch_size):
    if x is None:
        raise invalid("x", "the model inputs (an array, a dict of arrays or a "
                      "PyDataset)", None)
    if _is_batch_source(x):
        if y is not None:
            raise invalid("y", "None when x is a PyDataset (labels come from its "
                          "batches)", _describe(y))
        return predict_batches(model, x)
    if y is None:
        raise invalid("y", "the true labels (or a PyDataset as x)", None)
    batch_size = check_int("batch_size", batch_size, low=1)
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    return predictions, y


def predict_batches(model, dataset):
    """Predicts every batch of a PyDataset once; returns (predictions, labels)."""
    import keras

    try:
        num_batches = len(dataset)
    except TypeError:
        num_batches = dataset.num_batches
    if not num_batches:
        raise invalid("x", "a PyDataset with at least one batch (a finite "
                      "`num_batches`)", dataset)
    predictions, labels = [], []
    for i in range(num_batches):
        batch = dataset[i]
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise invalid("x", "a PyDataset whose batches are (x, y) or "
                          "(x, y, sample_weight) tuples",
                          f"<batch {i} of type {type(batch).__name__}>")
        output = model.predict_on_batch(batch[0])
        predictions.append(np.asarray(keras.ops.convert_to_numpy(output)))
        labels.append(np.asarray(batch[1]))
    return np.concatenate(predictions), np.concatenate(labels)


def _as_array(name, value):
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise invalid(name, "an array", value) from None
    if arr.dtype.kind not in "biuf":
        raise invalid(name, f"a numeric array; got dtype {arr.dtype}", value)
    if arr.size == 0:
        raise invalid(name, "a non-empty array", value)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise invalid(name, "finite values (no NaN or inf)", _describe(arr))
    return arr


def _predicted_labels(predictions, from_logits, threshold):
    """Returns (int labels, width C of a probability matrix or 2 or None)."""
    pred = _as_array("model_or_predictions", predictions)
    if pred.ndim == 2 and pred.shape[1] >= 2:
        return np.argmax(pred, axis=1).astype(np.int64), int(pred.shape[1])
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    elif pred.ndim != 1:
        raise invalid("model_or_predictions", "predictions of shape (N, C), (N, 1) "
                      f"or (N,); got shape {pred.shape}", _describe(pred))
    whole = pred.dtype.kind in "biu" or np.all(pred == np.round(pred))
    if whole and not (_is_float_column(predictions) or from_logits):
        labels = pred.astype(np.int64)
        if labels.min() < 0:
            raise invalid("model_or_predictions", "class ids >= 0",
                          int(labels.min()))
        return labels, None
    if from_logits:
        cut = np.log(threshold) - np.log1p(-threshold)
        return (pred >= cut).astype(np.int64), 2
    if pred.min() < 0 or pred.max() > 1:
        raise invalid("model_or_predictions",
                      "binary probabilities in [0, 1] (pass from_logits=True for "
                      "logits)", _describe(pred))
    return (pred >= threshold).astype(np.int64), 2


def _is_float_column(predictions):
    """A float (N, 1) output is a sigmoid score, never a column of class ids."""
    shape = getattr(predictions, "shape", None)
    dtype = getattr(predictions, "dtype", None)
    return (shape is not None and len(shape) == 2 and shape[1] == 1
            and np.dtype(dtype).kind == "f")


def _true_labels(y):
    y = _as_array("y", y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim != 1:
        raise invalid("y", f"labels of shape (N,), (N, 1) or one-hot (N, C); got "
                      f"shape {y.shape}", _describe(y))
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise invalid("y", "integer class ids", _describe(y))
    labels = y.astype(np.int64)
    if labels.min() < 0:
        raise invalid("y", "class ids >= 0", int(labels.min()))
    return labels


def _optional_counts(class_counts):
    if class_counts is None:
        return None
    try:
        counts = np.asarray(class_counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("class_counts", "a 1-D sequence of training counts per class",
                      class_counts) from None
    if (counts.ndim != 1 or counts.size < 2 or not np.all(np.isfinite(counts))
            or np.any(counts < 0) or np.any(counts != np.round(counts))):
        raise invalid("class_counts", "a 1-D sequence of whole training counts >= 0, "
                      "one per class", class_counts)
    return counts.astype(np.int64)


def _infer_num_classes(num_classes, width, counts, class_names, y_true, y_pred):
    sources = []
    if num_classes is not None:
        sources.append(("num_classes", num_classes))
    if width is not None:
        sources.append(("model_or_predictions", width))
    if counts is not None:
        sources.append(("class_counts", len(counts)))
    if class_names is not None and not isinstance(class_names, str):
        try:
            sources.append(("class_names", len(class_names)))
        except TypeError:
            pass
    if sources:
        first_name, first = sources[0]
        for name, value in sources[1:]:
            if value != first:
                raise invalid(name, f"{first} classes (as {first_name} says)",
                              f"<{value} classes>")
        num = first
    else:
        num = max(int(y_true.max()), int(y_pred.max()), 1) + 1
    if y_true.max() >= num:
        raise invalid("y", f"class ids < {num} (the number of classes)",
                      int(y_true.max()))
    if y_pred.max() >= num:
        raise invalid("model_or_predictions",
                      f"class ids < {num} (the number of classes)", int(y_pred.max()))
    return num


def _class_names(class_names, num_classes):
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    if isinstance(class_names, str) or not all(
            isinstance(n, str | numbers.Integral) for n in class_names):
        raise invalid("class_names", "a sequence of strings, one per class",
                      class_names)
    return [str(n) for n in class_names]


def multilabel_report(y_true, scores, *, thresholds=0.0, label_names=None):
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

    Examples:

    >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    >>> s = np.array([[2.0, -1.0], [-1.0, 3.0], [1.0, 0.5], [-2.0, -3.0]])
    >>> r = multilabel_report(y, s)
    >>> r["macro_f1"], r["micro_f1"], r["map"]
    (1.0, 1.0, 1.0)
    """
    y_true = np.asarray(y_true).astype(np.int64)
    scores = np.asarray(scores, np.float64)
    if y_true.ndim != 2 or scores.shape != y_true.shape:
        raise invalid("scores", f"an array of shape {y_true.shape} (like y_true)",
                      scores)
    decisions = (scores >= np.asarray(thresholds, np.float64)).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, decisions, average=None, zero_division=0)
    _, _, micro_f1, _ = precision_recall_fscore_support(
        y_true, decisions, average="micro", zero_division=0)
    present = y_true.sum(axis=0) > 0
    ap = np.full(y_true.shape[1], np.nan)
    for j in np.flatnonzero(present):
        ap[j] = average_precision_score(y_true[:, j], scores[:, j])
    names = label_names or [str(j) for j in range(y_true.shape[1])]
    per_label = [
        {"label": str(names[j]), "positives": int(support[j]),
         "ap": None if np.isnan(ap[j]) else float(ap[j]), "f1": float(f1[j]),
         "precision": float(precision[j]), "recall": float(recall[j])}
        for j in range(y_true.shape[1])
    ]
    return {
        "macro_f1": float(np.mean(f1[present])) if present.any() else 0.0,
        "micro_f1": float(micro_f1),
        "map": float(np.nanmean(ap)) if present.any() else 0.0,
        "per_label": per_label,
    }
