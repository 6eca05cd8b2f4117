"""Stateful Keras metrics for class-imbalanced classification.

Each metric accumulates a weighted confusion matrix over an epoch (rows: true
class, columns: predicted class) in a public `confusion_matrix` variable and
computes its value from that matrix, so the result over several batches is
exactly the value sklearn / imblearn give on the concatenated predictions,
not an average of per-batch values. The variable has `aggregation="sum"`:
replicas of a data-parallel run add their matrices.

Inputs, on every metric:

- `y_pred`: class scores of shape `(..., num_classes)` (probabilities or
  logits: the predicted class is the argmax either way), or, for a binary
  model with a single sigmoid output, scores of shape `(...,)` or `(..., 1)`
  with `num_classes=2`: the predicted class is `1` when
  `score >= threshold` (default `0.5` for probabilities; pass
  `threshold=0.0` for logits). `>=` is the convention of
  `kimbalance.thresholds`.
- `y_true`: class ids of shape `(...)` or `(..., 1)` (ints or floats), or
  one-hot labels of shape `(..., num_classes)` (the class is the argmax; an
  all-zero row counts as no label and is skipped).
- `sample_weight`: optional, broadcastable to the labels' shape.

Class ids outside `[0, num_classes)` are masked out (they add nothing to the
matrix) when labels are backend tensors, which may be traced inside a
compiled train step where values cannot be checked; negative ids therefore
work as "ignore" labels. Labels given as NumPy arrays or Python lists are
checked eagerly and raise a `ValueError` instead.

A class with no samples and no predictions in the epoch (or only samples of
weight 0) is skipped, as sklearn and imblearn skip classes absent from both
`y_true` and `y_pred`. The matrix is kept in float32: a cell stays exact up
to 2**24 (about 16.7 million) unit-weight samples.
"""

import numpy as np
from keras import metrics, ops

from kimbalance._api import export
from kimbalance._validation import check_float, check_int, invalid

__all__ = ["BalancedAccuracy", "GeometricMean", "MacroF1"]


class _ConfusionMatrixMetric(metrics.Metric):
    """Base: accumulates a (num_classes, num_classes) weighted confusion matrix."""

    def __init__(self, num_classes, *, threshold=0.5, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.threshold = check_float("threshold", threshold)
        # Rounded up to float32 so that float32 scores compare as in float64.
        threshold32 = np.float32(self.threshold)
        if float(threshold32) < self.threshold:
            threshold32 = np.nextafter(threshold32, np.float32(np.inf))
        self._threshold32 = float(threshold32)
        self.confusion_matrix = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="float32",
            aggregation="sum",
            name="confusion_matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of labels and predictions to the confusion matrix.

        Args:
            y_true: class ids `(...)` / `(..., 1)` or one-hot `(..., C)`.
            y_pred: scores `(..., C)`, or `(...)` / `(..., 1)` for a single
                sigmoid output with `num_classes=2`.
            sample_weight: optional weights broadcastable to the labels.
        """
        check_eagerly = isinstance(y_true, np.ndarray | list | tuple)
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        labels, predictions, valid = self._labels_and_predictions(y_true, y_pred)
        if check_eagerly:
            self._check_label_range(y_true, labels, valid)
        num_classes = self.num_classes
        in_range = ops.logical_and(
            valid,
            ops.logical_and(ops.greater_equal(labels, 0),
                            ops.less(labels, num_classes)),
        )
        weights = ops.cast(in_range, "float32")
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            sample_rank = len(labels.shape)
            if len(sample_weight.shape) == sample_rank + 1 and (
                    sample_weight.shape[-1] == 1):
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            while len(sample_weight.shape) < sample_rank:
                sample_weight = ops.expand_dims(sample_weight, axis=-1)
            weights = weights * sample_weight
        labels = ops.where(in_range, labels, ops.zeros_like(labels))
        labels = ops.reshape(labels, (-1,))
        predictions = ops.reshape(predictions, (-1,))
        weights = ops.reshape(weights, (-1,))
        true_one_hot = ops.one_hot(labels, num_classes, dtype="float32")
        pred_one_hot = ops.one_hot(predictions, num_classes, dtype="float32")
        update = ops.matmul(
            ops.transpose(true_one_hot * ops.expand_dims(weights, -1)), pred_one_hot
        )
        self.confusion_matrix.assign_add(update)

    def _labels_and_predictions(self, y_true, y_pred):
        """Returns (int32 labels, int32 predictions, bool valid) of one shape."""
        num_classes = self.num_classes
        pred_rank = len(y_pred.shape)
        binary = pred_rank == 0 or pred_rank == 1 or y_pred.shape[-1] == 1
        if binary:
            if num_classes != 2:
                raise invalid(
                    "num_classes",
                    "2 for a single-score (sigmoid) output of shape (..., 1); "
                    f"y_pred has shape {tuple(y_pred.shape)}",
                    num_classes,
                )
            if pred_rank >= 2:
                y_pred = ops.squeeze(y_pred, axis=-1)
            predictions = ops.cast(
                ops.greater_equal(ops.cast(y_pred, "float32"),
                                  ops.convert_to_tensor(self._threshold32, "float32")),
                "int32",
            )
            sample_rank = len(y_pred.shape)
        else:
            last = y_pred.shape[-1]
            if last is not None and last != num_classes:
                raise invalid(
                    "y_pred",
                    f"scores of shape (..., {num_classes}) for num_classes="
                    f"{num_classes} (or (..., 1) for a single sigmoid output)",
                    f"<tensor of shape {tuple(y_pred.shape)}>",
                )
            predictions = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
            sample_rank = pred_rank - 1
        true_rank = len(y_true.shape)
        if true_rank == sample_rank + 1 and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
            true_rank -= 1
        if true_rank == sample_rank:
            labels = ops.cast(y_true, "int32")
            valid = ops.ones_like(labels, dtype="bool")
        elif (true_rank == sample_rank + 1 and not binary
              and y_true.shape[-1] in (num_classes, None)):
            labels = ops.cast(ops.argmax(y_true, axis=-1), "int32")
            valid = ops.greater(ops.sum(ops.abs(y_true), axis=-1), 0)
        else:
            expected = "(..., 1)"
            if not binary:
                expected += f" or one-hot (..., {num_classes})"
            raise invalid(
                "y_true",
                f"class ids of shape (...) or {expected} matching y_pred of shape "
                f"{tuple(y_pred.shape)}",
                f"<tensor of shape {tuple(y_true.shape)}>",
            )
        return labels, predictions, valid

    def _check_label_range(self, y_true, labels, valid):
        values = ops.convert_to_numpy(y_true)
        ids = ops.convert_to_numpy(labels)
        if values.size == ids.size and values.dtype.kind == "f":
            values = values.ravel()
            if not np.all(np.isfinite(values) & (values == np.round(values))):
                raise invalid("y_true", "integer class ids", values)
        ids = ids[ops.convert_to_numpy(valid)]
        bad = (ids < 0) | (ids >= self.num_classes)
        if np.any(bad):
            raise invalid(
                "y_true",
                f"class ids in [0, {self.num_classes}) for num_classes="
                f"{self.num_classes}",
                np.unique(ids[bad]),
            )

    def reset_state(self):
        """Zeroes the confusion matrix (Keras calls this at each epoch start)."""
        self.confusion_matrix.assign(
            ops.zeros((self.num_classes, self.num_classes), dtype="float32")
        )

    def _counts(self):
        matrix = ops.convert_to_tensor(self.confusion_matrix)
        true_positives = ops.diagonal(matrix)
        true_totals = ops.sum(matrix, axis=1)
        predicted_totals = ops.sum(matrix, axis=0)
        return true_positives, true_totals, predicted_totals

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "threshold": self.threshold})
        return config


def _mean_over(values, mask):
    mask = ops.cast(mask, "float32")
    count = ops.sum(mask)
    return ops.divide_no_nan(ops.sum(values * mask), count)


@export
class BalancedAccuracy(_ConfusionMatrixMetric):
    """Balanced accuracy: the mean recall over the classes present in `y_true`.

    Equal to `sklearn.metrics.balanced_accuracy_score` on all the labels and
    predictions seen since the last `reset_state()` (sample weights
    included): recall_c = M[c, c] / sum_k M[c, k] averaged over the classes
    with samples. Classes that are only predicted have no recall and are
    skipped, as sklearn skips them (sklearn also warns). With no samples
    the result is 0.

    See the module docstring for the accepted label / prediction forms, the
    single-sigmoid binary case and out-of-range labels.

    Args:
        num_classes: int >= 2, the number of classes.
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold`. Ignored for `(..., num_classes)` scores.
        name: name of the metric instance.
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for `num_classes` < 2 or not an int, a non-finite
            `threshold`, shapes that do not match `num_classes`, or
            out-of-range class ids given as NumPy arrays / lists.

    Examples:

    >>> metric = BalancedAccuracy(num_classes=3)
    >>> metric.update_state([0, 0, 0, 1], [[0.9, 0.1, 0.0], [0.8, 0.1, 0.1],
    ...                                    [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    >>> metric.update_state([2, 2], [[0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    >>> round(float(metric.result()), 4)  # (2/3 + 1 + 1/2) / 3
    0.7222
    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile(loss="sparse_categorical_crossentropy",
    ...               metrics=[BalancedAccuracy(num_classes=3)])

    References:
        Brodersen, K. H. et al. "The balanced accuracy and its posterior
        distribution." ICPR 2010.
    """

    def __init__(self, num_classes, *, threshold=0.5, name="balanced_accuracy",
                 dtype=None):
        super().__init__(num_classes, threshold=threshold, name=name, dtype=dtype)

    def result(self):
        true_positives, true_totals, _ = self._counts()
        recall = ops.divide_no_nan(true_positives, true_totals)
        value = _mean_over(recall, ops.greater(true_totals, 0))
        return ops.cast(value, self.dtype)


@export
class GeometricMean(_ConfusionMatrixMetric):
    """G-mean: the geometric mean of per-class recall (multi-class).

    Equal to `imblearn.metrics.geometric_mean_score(y_true, y_pred)` with its
    default `average="multiclass"` on all the labels and predictions seen
    since the last `reset_state()` (sample weights included): the
    geometric mean of recall_c = M[c, c] / sum_k M[c, k] over the classes that
    appear in the labels or the predictions. As in imblearn, a class that is
    only predicted (no samples) has recall 0, and any recall of 0 makes the
    G-mean 0 unless `correction` > 0 replaces zero recalls. For two classes it
    is sqrt(sensitivity * specificity). With no samples the result is 0.

    See the module docstring for the accepted label / prediction forms, the
    single-sigmoid binary case and out-of-range labels.

    Args:
        num_classes: int >= 2, the number of classes.
        correction: float in [0, 1], value substituted for a recall of 0
            (imblearn's `correction`; default 0.0).
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold`. Ignored for `(..., num_classes)` scores.
        name: name of the metric instance.
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for `num_classes` < 2 or not an int, `correction` outside
            [0, 1], a non-finite `threshold`, shapes that do not match
            `num_classes`, or out-of-range class ids given as NumPy arrays /
            lists.

    Examples:

    >>> metric = GeometricMean(num_classes=2)
    >>> metric.update_state([0, 0, 1, 1], [[0.1], [0.7], [0.8], [0.9]])
    >>> round(float(metric.result()), 4)  # sqrt(1/2 * 1)
    0.7071
    >>> metric.reset_state()
    >>> metric.update_state([0, 0], [[0.1], [0.7]])  # class 1 only predicted
    >>> float(metric.result())
    0.0

    References:
        Kubat, M. and Matwin, S. "Addressing the curse of imbalanced
        training sets: one-sided selection." ICML 1997.
    """

    def __init__(self, num_classes, *, correction=0.0, threshold=0.5,
                 name="geometric_mean", dtype=None):
        super().__init__(num_classes, threshold=threshold, name=name, dtype=dtype)
        self.correction = check_float("correction", correction, low=0.0, high=1.0)

    def result(self):
        true_positives, true_totals, predicted_totals = self._counts()
        present = ops.logical_or(ops.greater(true_totals, 0),
                                 ops.greater(predicted_totals, 0))
        recall = ops.divide_no_nan(true_positives, true_totals)
        recall = ops.where(ops.equal(recall, 0.0),
                           ops.cast(self.correction, recall.dtype), recall)
        # log(0) = -inf on a present class makes the mean -inf and G-mean 0.
        logs = ops.log(ops.where(present, recall, ops.ones_like(recall)))
        count = ops.sum(ops.cast(present, "float32"))
        value = ops.where(
            ops.greater(count, 0),
            ops.exp(ops.sum(logs) / ops.maximum(count, 1.0)),
            ops.zeros_like(count),
        )
        return ops.cast(value, self.dtype)

    def get_config(self):
        config = super().get_config()
        config["correction"] = self.correction
        return config


@export
class MacroF1(_ConfusionMatrixMetric):
    """Macro-averaged F1 score over the classes present in labels or predictions.

    Equal to `sklearn.metrics.f1_score(y_true, y_pred, average="macro")` on
    all the labels and predictions seen since the last `reset_state()`
    (sample weights included): F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c),
    averaged over the classes that appear in the labels or the predictions
    (sklearn's default `labels`); a class absent from both is skipped. With
    no samples the result is 0.

    See the module docstring for the accepted label / prediction forms, the
    single-sigmoid binary case and out-of-range labels.

    Args:
        num_classes: int >= 2, the number of classes.
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold`. Ignored for `(..., num_classes)` scores.
        name: name of the metric instance.
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for `num_classes` < 2 or not an int, a non-finite
            `threshold`, shapes that do not match `num_classes`, or
            out-of-range class ids given as NumPy arrays / lists.

    Examples:

    >>> metric = MacroF1(num_classes=3)
    >>> metric.update_state(np.array([0, 1, 1]),
    ...                     np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0],
    ...                               [0.0, 1.0, 3.0]]))  # logits work too
    >>> round(float(metric.result()), 4)  # (1 + 2/3 + 0) / 3
    0.5556

    References:
        Sokolova, M. and Lapalme, G. "A systematic analysis of performance
        measures for classification tasks." Information Processing &
        Management, 2009.
    """

    def __init__(self, num_classes, *, threshold=0.5, name="macro_f1", dtype=None):
        super().__init__(num_classes, threshold=threshold, name=name, dtype=dtype)

    def result(self):
        true_positives, true_totals, predicted_totals = self._counts()
        totals = true_totals + predicted_totals
        f1 = ops.divide_no_nan(2.0 * true_positives, totals)
        value = _mean_over(f1, ops.greater(totals, 0))
        return ops.cast(value, self.dtype)
