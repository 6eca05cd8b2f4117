"""Stateful Keras metrics for class-imbalanced classification and segmentation.

Each metric accumulates a weighted confusion matrix over an epoch (rows: true
class, columns: predicted class) in a public `confusion_matrix` variable and
computes its value from that matrix, so the result over several batches is
exactly the value sklearn / imblearn give on the concatenated predictions,
not an average of per-batch values. The variable has `aggregation="sum"`:
replicas of a data-parallel run add their matrices. Every metric here is a
view of that one state: `BalancedAccuracy`, `GeometricMean`, `MacroF1`, and
the segmentation views `ClassIoU`, `MeanClassIoU`, `ClassDice`,
`MeanClassDice`.

**Dense targets.** Any leading shape is flattened: segmentation id maps
`(B, H, W)` (or `(B, H, W, 1)`) or one-hot maps `(B, H, W, C)` with scores
`(B, H, W, C)`, volumes or sequences alike, count every pixel (voxel, step)
as one sample, so each metric equals its sklearn / imblearn definition on
the flattened arrays. A `sample_weight` map `(B, H, W)` weights each pixel;
a `(B,)` weight applies to every pixel of its image. `ignore_class` (an id,
e.g. `255` or `-1` for "void", as in `keras.metrics.MeanIoU`) drops every
element whose label is that id before it reaches the matrix: the metrics
equal their definitions on the remaining elements.

Inputs, on every metric:

- `y_pred`: class scores of shape `(..., num_classes)` (probabilities or
  logits: the predicted class is the argmax either way), or, for a binary
  model with a single sigmoid output, scores of shape `(...,)` or `(..., 1)`
  with `num_classes=2`: the predicted class is `1` when
  `score >= threshold` (default `0.5` for probabilities; pass
  `threshold=0.0` for logits). `>=` is the convention of
  `kimbalance.thresholds`.
- `y_true`: the label forms of `kimbalance.evaluate`: class ids of shape
  `(...)` or `(..., 1)` (ints, or floats holding whole numbers), or one-hot
  labels of shape `(..., num_classes)` (0/1 values, exactly one 1 per row).
- `sample_weight`: optional, finite and >= 0, broadcastable to the labels'
  shape (trailing axes added, so `(B,)` weights whole images); any other
  shape raises a `ValueError` naming `sample_weight`.

**Checked when values are concrete.** When the values can be read (NumPy
arrays, lists, eager backend tensors: a direct `update_state` call, or a
torch `fit` / `evaluate`, which run eagerly unless `jit_compile=True`),
`update_state` raises a `ValueError` naming the argument and the bad values,
identically on every backend, for: class ids outside `[0, num_classes)`
(negative ids and int64 ids >= 2**32 included: they are checked before any
int32 cast; ids equal to `ignore_class` are allowed), fractional, NaN or
infinite labels, one-hot rows with values other than 0/1 or without exactly
one 1, `y_pred` with NaN, and `sample_weight` with NaN, infinite or negative
values.

**Under jit** (the compiled train / test step of `fit` and `evaluate` on jax
and tensorflow, torch with `jit_compile=True`, or any `jax.jit` /
`tf.function`), values cannot be read and nothing value-dependent raises.
Instead: labels that are not class ids in `[0, num_classes)` (negative, too
large, fractional or NaN ids; all-zero one-hot rows) add nothing to the
matrix (they are masked, compared before any int32 cast, so a large int64
id never wraps into range); other one-hot rows count as their argmax; a NaN
in `y_pred`, or a NaN, infinite or negative `sample_weight`, makes the
matrix non-finite or negative and `result()` NaN until `reset_state()`, so a
broken epoch never reads as a plausible score.

A class with no samples and no predictions in the epoch (or only samples of
weight 0) is skipped, as sklearn and imblearn skip classes absent from both
`y_true` and `y_pred`. The matrix is kept in float32: a cell stays exact up
to 2**24 (about 16.7 million) unit-weight samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import metrics, ops

from kimbalance._api import export
from kimbalance._tensors import is_concrete
from kimbalance._validation import check_float, check_int, invalid, parse_targets

__all__ = [
    "BalancedAccuracy",
    "ClassDice",
    "ClassIoU",
    "GeometricMean",
    "MacroF1",
    "MeanClassDice",
    "MeanClassIoU",
]

# The confusion matrix holds num_classes**2 float32 cells: 2**15 classes are
# 4 GiB already, more would fail deep inside the backend's allocator.
_MAX_CLASSES = 2**15


def _received(value: Any) -> Any:
    """What a message shows: the values when concrete, else the shape."""
    if isinstance(value, np.ndarray):
        return value
    return f"<tensor of shape {tuple(value.shape)}>"


def _label_layout(y_true: Any, y_pred: Any,
                  num_classes: int) -> tuple[bool, bool, bool]:
    """How to read labels and scores of these shapes.

    Returns `(binary, one_hot, squeeze_true)`: a single-score (sigmoid)
    output, one-hot labels (else class ids), and labels of shape (..., 1) to
    squeeze. Raises for shapes that do not fit `num_classes`.
    """
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    pred_rank = len(pred_shape)
    binary = pred_rank <= 1 or pred_shape[-1] == 1
    if binary:
        if num_classes != 2:
            raise invalid(
                "num_classes",
                "2 for a single-score (sigmoid) output of shape (..., 1); "
                f"y_pred has shape {tuple(pred_shape)}",
                num_classes,
            )
        sample_rank = pred_rank - 1 if pred_rank >= 2 else pred_rank
    else:
        last = pred_shape[-1]
        if last is not None and last != num_classes:
            raise invalid(
                "y_pred",
                f"scores of shape (..., {num_classes}) for num_classes="
                f"{num_classes} (or (..., 1) for a single sigmoid output); got "
                f"shape {pred_shape}",
                _received(y_pred),
            )
        sample_rank = pred_rank - 1
    true_rank = len(true_shape)
    squeeze_true = true_rank == sample_rank + 1 and true_shape[-1] == 1
    if squeeze_true:
        true_rank -= 1
    one_hot = (true_rank == sample_rank + 1 and not binary
               and true_shape[-1] in (num_classes, None))
    if true_rank == sample_rank or one_hot:
        if any(t is not None and p is not None and t != p for t, p in
               zip(true_shape[:sample_rank], pred_shape[:sample_rank], strict=True)):
            raise invalid("y_true", f"labels of the same sample shape as y_pred "
                          f"{pred_shape[:sample_rank]} (a mask per prediction map); "
                          f"got shape {true_shape}", _received(y_true))
        return binary, one_hot, squeeze_true
    expected = "(..., 1)"
    if not binary:
        expected += f" or one-hot (..., {num_classes})"
    raise invalid(
        "y_true",
        f"class ids of shape (...) or {expected} matching y_pred of shape "
        f"{pred_shape}; got shape {true_shape}",
        _received(y_true),
    )


def _as_numpy(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else ops.convert_to_numpy(value)


def _check_labels(y_true, one_hot, num_classes, ignore_class):
    """Raises for labels that are not class ids / one-hot rows (NumPy)."""
    if y_true.size == 0:
        return
    if one_hot:
        parse_targets(y_true.reshape(-1, y_true.shape[-1]), num_classes,
                      name="y_true", multi_label=False)
        return
    ids = y_true.reshape(-1)
    if ignore_class is not None:
        ids = ids[ids != ignore_class]
    if ids.size:
        parse_targets(ids, num_classes, name="y_true")


def _check_scores(y_pred: np.ndarray) -> None:
    if y_pred.dtype.kind not in "biuf":
        raise invalid("y_pred", f"numeric scores; got dtype {y_pred.dtype}", y_pred)
    if y_pred.dtype.kind == "f" and np.isnan(y_pred).any():
        rows = np.flatnonzero(np.isnan(y_pred.reshape(y_pred.shape[0], -1)).any(1)
                              if y_pred.ndim else np.isnan(y_pred).reshape(1))
        raise invalid("y_pred", f"scores without NaN (NaN in sample(s) "
                      f"{rows[:5].tolist()})", y_pred)


def _check_sample_weight(sample_weight: np.ndarray) -> None:
    if sample_weight.dtype.kind not in "biuf":
        raise invalid("sample_weight", f"numeric weights; got dtype "
                      f"{sample_weight.dtype}", sample_weight)
    weights = sample_weight.astype(np.float64)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        raise invalid("sample_weight", "finite weights >= 0 (found "
                      f"{np.unique(weights[bad])[:5].tolist()})", sample_weight)


def _broadcast_weight(sample_weight, label_shape, received):
    """`sample_weight` shaped to broadcast against labels of `label_shape`."""
    rank = len(label_shape)
    if len(sample_weight.shape) == rank + 1 and sample_weight.shape[-1] == 1:
        sample_weight = ops.squeeze(sample_weight, axis=-1)
    while len(sample_weight.shape) < rank:
        sample_weight = ops.expand_dims(sample_weight, axis=-1)
    shape = tuple(sample_weight.shape)
    if len(shape) > rank or any(
            w not in (1, None) and n is not None and w != n
            for w, n in zip(shape, label_shape, strict=True)):
        raise invalid("sample_weight", "weights broadcastable to the labels' shape "
                      f"{label_shape} (e.g. a weight map of that shape, or one "
                      f"weight per image); got shape {tuple(received.shape)}",
                      _received(received))
    return sample_weight


def _check_class_ids(name, value, num_classes, *, allow_int):
    """A class id (when `allow_int`) or a non-empty list of distinct ids."""
    single = allow_int and isinstance(value, int | np.integer) and not isinstance(
        value, bool)
    ids = [value] if single else value
    if (not isinstance(ids, list | tuple | np.ndarray) or len(ids) == 0
            or not all(isinstance(i, int | np.integer) and not isinstance(i, bool)
                       and 0 <= i < num_classes for i in ids)
            or len(set(int(i) for i in ids)) != len(ids)):
        what = "None, a class id or" if allow_int else "None or"
        raise invalid(name, f"{what} a non-empty list of distinct class ids in "
                      f"[0, {num_classes})", value)
    return int(ids[0]) if single else [int(i) for i in ids]


def _is_float(x: Any) -> bool:
    return "float" in keras.backend.standardize_dtype(x.dtype)


class _ConfusionMatrixMetric(metrics.Metric):
    """Base: accumulates a (num_classes, num_classes) weighted confusion matrix."""

    def __init__(self, num_classes: int, *, threshold: float = 0.5,
                 ignore_class: int | None = None, name: str | None = None,
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.num_classes = check_int("num_classes", num_classes, low=2,
                                     high=_MAX_CLASSES)
        self.threshold = check_float("threshold", threshold)
        self.ignore_class = None if ignore_class is None else check_int(
            "ignore_class", ignore_class, low=-(2**31), high=2**31 - 1)
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

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds a batch of labels and predictions to the confusion matrix.

        Args:
            y_true: class ids `(...)` / `(..., 1)` or one-hot `(..., C)`.
            y_pred: scores `(..., C)`, or `(...)` / `(..., 1)` for a single
                sigmoid output with `num_classes=2`.
            sample_weight: optional weights >= 0 broadcastable to the labels
                (a per-pixel map, or one weight per sample).

        Raises:
            ValueError: for shapes that do not fit `num_classes`, and, when
                the values are concrete (not traced), for invalid labels,
                NaN scores or NaN / infinite / negative weights (see the
                module docstring).
        """
        num_classes = self.num_classes
        for name, value in (("y_true", y_true), ("y_pred", y_pred)):
            if value is None or isinstance(value, str | bytes | dict):
                raise invalid(name, "an array or tensor", value)
        # Concrete inputs are checked in NumPy before any conversion: a jax
        # conversion with x64 disabled would already wrap int64 ids.
        if is_concrete(y_true):
            y_true = np.asarray(_as_numpy(y_true))
        else:
            y_true = ops.convert_to_tensor(y_true)
        if is_concrete(y_pred):
            # The scores are read for the check only: a backend tensor is
            # used as it is below (no copy back to the device).
            scores = np.asarray(_as_numpy(y_pred))
            _check_scores(scores)
            if not ops.is_tensor(y_pred):
                y_pred = scores
        else:
            scores = y_pred = ops.convert_to_tensor(y_pred)
        binary, one_hot, squeeze_true = _label_layout(y_true, scores, num_classes)
        if isinstance(y_true, np.ndarray):
            _check_labels(y_true[..., 0] if squeeze_true else y_true, one_hot,
                          num_classes, self.ignore_class)
            if one_hot:  # validated 0/1 rows: a small dtype for the backend
                y_true = y_true.astype("float32")
            elif y_true.size:  # validated ids in [0, C)
                y_true = y_true.astype("int32")
        if sample_weight is not None and is_concrete(sample_weight):
            sample_weight = np.asarray(_as_numpy(sample_weight))
            _check_sample_weight(sample_weight)
            sample_weight = sample_weight.astype("float32")

        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if squeeze_true:
            y_true = ops.squeeze(y_true, axis=-1)
        predictions, nan_scores = self._predictions(y_pred, binary)
        labels, valid = self._labels(y_true, one_hot)
        weights = ops.cast(valid, "float32")
        if sample_weight is not None:
            received = sample_weight
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            weights = weights * _broadcast_weight(
                sample_weight, tuple(labels.shape), received)
        if nan_scores is not None:
            # Under jit a NaN score cannot raise: it poisons the matrix.
            weights = ops.where(nan_scores, float("nan"), weights)
        labels = ops.reshape(labels, (-1,))
        predictions = ops.reshape(predictions, (-1,))
        weights = ops.reshape(weights, (-1,))
        true_one_hot = ops.one_hot(labels, num_classes, dtype="float32")
        pred_one_hot = ops.one_hot(predictions, num_classes, dtype="float32")
        update = ops.matmul(
            ops.transpose(true_one_hot * ops.expand_dims(weights, -1)), pred_one_hot
        )
        self.confusion_matrix.assign_add(update)

    def _predictions(self, y_pred: Any, binary: bool) -> tuple[Any, Any]:
        """int32 predicted classes, and a per-sample NaN mask (None for ints)."""
        nan_scores = None
        if binary:
            if len(y_pred.shape) >= 2:
                y_pred = ops.squeeze(y_pred, axis=-1)
            scores = ops.cast(y_pred, "float32")
            predictions = ops.cast(
                ops.greater_equal(scores,
                                  ops.convert_to_tensor(self._threshold32, "float32")),
                "int32",
            )
            if _is_float(y_pred):
                nan_scores = ops.isnan(scores)
        else:
            predictions = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
            if _is_float(y_pred):
                nan_scores = ops.any(ops.isnan(y_pred), axis=-1)
        return predictions, nan_scores

    def _labels(self, y_true: Any, one_hot: bool) -> tuple[Any, Any]:
        """int32 labels in [0, C) and the mask of valid ones (see module doc)."""
        num_classes = self.num_classes
        if one_hot:
            labels = ops.cast(ops.argmax(y_true, axis=-1), "int32")
            valid = ops.greater(ops.sum(ops.abs(y_true), axis=-1), 0)
        else:
            # Compared in the labels' own dtype, before the int32 cast; an
            # ignore_class outside [0, C) is masked here too.
            valid = ops.logical_and(ops.greater_equal(y_true, 0),
                                    ops.less(y_true, num_classes))
            if _is_float(y_true):
                valid = ops.logical_and(valid, ops.equal(y_true, ops.floor(y_true)))
            safe = ops.where(valid, y_true, ops.zeros_like(y_true))
            labels = ops.cast(safe, "int32")
        if self.ignore_class is not None and 0 <= self.ignore_class < num_classes:
            valid = ops.logical_and(valid, ops.not_equal(labels, self.ignore_class))
        return labels, valid

    def reset_state(self) -> None:
        """Zeroes the confusion matrix (Keras calls this at each epoch start)."""
        self.confusion_matrix.assign(
            ops.zeros((self.num_classes, self.num_classes), dtype="float32")
        )

    def _counts(self) -> tuple[Any, Any, Any]:
        matrix = ops.convert_to_tensor(self.confusion_matrix)
        true_positives = ops.diagonal(matrix)
        true_totals = ops.sum(matrix, axis=1)
        predicted_totals = ops.sum(matrix, axis=0)
        return true_positives, true_totals, predicted_totals

    def _class_scores(self, kind: str) -> tuple[Any, Any]:
        """Per-class IoU or Dice, and which classes have a non-zero denominator.

        IoU_c = TP / (TP + FP + FN), Dice_c = 2 TP / (2 TP + FP + FN) (F1_c);
        TP = M[c, c], TP + FN = row sum, TP + FP = column sum.
        """
        true_positives, true_totals, predicted_totals = self._counts()
        if kind == "iou":
            numerator = true_positives
            denominator = true_totals + predicted_totals - true_positives
        else:
            numerator = 2.0 * true_positives
            denominator = true_totals + predicted_totals
        return (ops.divide_no_nan(numerator, denominator),
                ops.greater(denominator, 0))

    def _checked(self, value: Any) -> Any:
        """`value`, or NaN when the matrix holds NaN, inf or negative cells."""
        matrix = ops.convert_to_tensor(self.confusion_matrix)
        sound = ops.logical_and(ops.all(ops.isfinite(matrix)),
                                ops.all(ops.greater_equal(matrix, 0.0)))
        value = ops.where(sound, value, float("nan"))
        return ops.cast(value, self.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "threshold": self.threshold,
                       "ignore_class": self.ignore_class})
        return config


def _mean_over(values: Any, mask: Any) -> Any:
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

    Labels are class ids `(...)` / `(..., 1)` or one-hot `(..., C)`, the
    forms `kimbalance.evaluate` takes, or id / one-hot maps (pixels counted
    as samples). See the module docstring for the prediction forms, the
    single-sigmoid binary case, and what is checked eagerly and what happens
    under jit.

    Args:
        num_classes: int in [2, 32768], the number of classes.
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold`. Ignored for `(..., num_classes)` scores.
        ignore_class: `None` or an int id (e.g. `255`, `-1`): elements whose
            label is this id are skipped, as in `keras.metrics.MeanIoU`.
        name: name of the metric instance.
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for `num_classes` not an int in [2, 32768], a
            non-finite `threshold`, shapes that do not match `num_classes`,
            or, when values are concrete, invalid labels, NaN scores or
            NaN / infinite / negative sample weights.

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

    def __init__(self, num_classes: int, *, threshold: float = 0.5,
                 ignore_class: int | None = None, name: str = "balanced_accuracy",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(num_classes, threshold=threshold, ignore_class=ignore_class,
                         name=name, dtype=dtype)

    def result(self) -> Any:
        true_positives, true_totals, _ = self._counts()
        recall = ops.divide_no_nan(true_positives, true_totals)
        value = _mean_over(recall, ops.greater(true_totals, 0))
        return self._checked(value)


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

    Labels are class ids `(...)` / `(..., 1)` or one-hot `(..., C)`, the
    forms `kimbalance.evaluate` takes, or id / one-hot maps (pixels counted
    as samples). See the module docstring for the prediction forms, the
    single-sigmoid binary case, and what is checked eagerly and what happens
    under jit.

    Args:
        num_classes: int in [2, 32768], the number of classes.
        correction: float in [0, 1], value substituted for a recall of 0
            (imblearn's `correction`; default 0.0).
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold`. Ignored for `(..., num_classes)` scores.
        ignore_class: `None` or an int id (e.g. `255`, `-1`): elements whose
            label is this id are skipped, as in `keras.metrics.MeanIoU`.
        name: name of the metric instance.
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for `num_classes` not an int in [2, 32768], `correction`
            outside [0, 1], a non-finite `threshold`, shapes that do not
            match `num_classes`, or, when values are concrete, invalid
            labels, NaN scores or NaN / infinite / negative sample weights.

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

    def __init__(self, num_classes: int, *, correction: float = 0.0,
                 threshold: float = 0.5, ignore_class: int | None = None,
                 name: str = "geometric_mean",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(num_classes, threshold=threshold, ignore_class=ignore_class,
                         name=name, dtype=dtype)
        self.correction = check_float("correction", correction, low=0.0, high=1.0)

    def result(self) -> Any:
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
        return self._checked(value)

    def get_config(self) -> dict[str, Any]:
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

    Labels are class ids `(...)` / `(..., 1)` or one-hot `(..., C)`, the
    forms `kimbalance.evaluate` takes, or id / one-hot maps (pixels counted
    as samples). See the module docstring for the prediction forms, the
    single-sigmoid binary case, and what is checked eagerly and what happens
    under jit.

    Args:
        num_classes: int in [2, 32768], the number of classes.
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold`. Ignored for `(..., num_classes)` scores.
        ignore_class: `None` or an int id (e.g. `255`, `-1`): elements whose
            label is this id are skipped, as in `keras.metrics.MeanIoU`.
        name: name of the metric instance.
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for `num_classes` not an int in [2, 32768], a
            non-finite `threshold`, shapes that do not match `num_classes`,
            or, when values are concrete, invalid labels, NaN scores or
            NaN / infinite / negative sample weights.

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

    def __init__(self, num_classes: int, *, threshold: float = 0.5,
                 ignore_class: int | None = None, name: str = "macro_f1",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(num_classes, threshold=threshold, ignore_class=ignore_class,
                         name=name, dtype=dtype)

    def result(self) -> Any:
        true_positives, true_totals, predicted_totals = self._counts()
        totals = true_totals + predicted_totals
        f1 = ops.divide_no_nan(2.0 * true_positives, totals)
        value = _mean_over(f1, ops.greater(totals, 0))
        return self._checked(value)


class _PerClassView(_ConfusionMatrixMetric):
    """Base of `ClassIoU` / `ClassDice`: their constructor (`name=None`: `_name`)."""

    _kind = ""
    _name = ""

    def __init__(self, num_classes: int, *, class_id: int | Sequence[int] | None = None,
                 empty_value: float | None = None, threshold: float = 0.5,
                 ignore_class: int | None = None, name: str | None = None,
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(num_classes, threshold=threshold, ignore_class=ignore_class,
                         name=self._name if name is None else name, dtype=dtype)
        self.class_id = None if class_id is None else _check_class_ids(
            "class_id", class_id, self.num_classes, allow_int=True)
        self.empty_value = None if empty_value is None else check_float(
            "empty_value", empty_value)

    def result(self) -> Any:
        values, present = self._class_scores(self._kind)
        empty = float("nan") if self.empty_value is None else self.empty_value
        values = ops.where(present, values, ops.full_like(values, empty))
        if self.class_id is not None:
            values = ops.take(values, ops.convert_to_tensor(self.class_id, "int32"))
        return self._checked(values)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"class_id": self.class_id, "empty_value": self.empty_value})
        return config


class _MeanView(_ConfusionMatrixMetric):
    """Base of `MeanClassIoU` / `MeanClassDice` (mean over non-empty classes).

    Their one constructor: `name=None` gives the subclass's `_name`.
    """

    _kind = ""
    _name = ""

    def __init__(self, num_classes: int, *, classes: Sequence[int] | None = None,
                 threshold: float = 0.5, ignore_class: int | None = None,
                 name: str | None = None,
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(num_classes, threshold=threshold, ignore_class=ignore_class,
                         name=self._name if name is None else name, dtype=dtype)
        self.classes = None if classes is None else _check_class_ids(
            "classes", classes, self.num_classes, allow_int=False)

    def result(self) -> Any:
        values, present = self._class_scores(self._kind)
        if self.classes is not None:
            selected = ops.convert_to_tensor(self.classes, "int32")
            values = ops.take(values, selected)
            present = ops.take(present, selected)
        return self._checked(_mean_over(values, present))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["classes"] = self.classes
        return config


@export
class ClassIoU(_PerClassView):
    """Per-class intersection over union (Jaccard index), streaming.

    IoU_c = TP_c / (TP_c + FP_c + FN_c) from the confusion matrix of all the
    labels and predictions seen since the last `reset_state()` (sample
    weights included): equal to `sklearn.metrics.jaccard_score(y_true,
    y_pred, average=None, labels=...)` and to `keras.metrics.IoU(
    target_class_ids=[c])` on the flattened pixels.

    **Empty classes.** A class absent from both the labels and the
    predictions has no IoU: its value is `empty_value`, NaN by default (as
    MONAI's `compute_iou` and torchmetrics do), so that an absent class
    never reads as a perfect or a failed one. Pass `empty_value=1.0` or
    `0.0` for a finite number in logs. `MeanClassIoU` skips such classes.

    Labels are class ids or id maps `(B, ...)` / `(B, ..., 1)`, or one-hot
    maps `(B, ..., C)`, with scores `(B, ..., C)`: see the module docstring
    (dense targets, `sample_weight` maps, what is checked eagerly and under
    jit).

    Args:
        class_id: `None` (default: the vector of all `num_classes` IoUs),
            an int (that class's IoU, a scalar) or a list of ids (their
            IoUs, in that order).
        empty_value: `None` (NaN) or a float, the value of a class absent
            from labels and predictions.
        num_classes: int in [2, 32768], the number of classes.
        threshold: float, decision threshold for a single sigmoid output
            (`num_classes=2`, `y_pred` of shape `(..., 1)`): class 1 when
            `score >= threshold` (`0.5` for probabilities, `0.0` for
            logits). `(..., num_classes)` scores, probabilities or logits,
            are read by argmax, so they need no `from_logits`.
        ignore_class: `None` or an int id (e.g. `255`, `-1`): elements whose
            label is this id are skipped, as in `keras.metrics.MeanIoU`.
            Within `[0, num_classes)`, that class still counts the kept
            elements predicted as it (false positives), as in Keras; leave
            it out of `classes` to keep it out of a mean.
        name: name of the metric instance (`None`: `"class_iou"`, and
            `"class_dice"`, `"mean_class_iou"`, `"mean_class_dice"` for the
            others).
        dtype: dtype of the result (the state is float32).

    Raises:
        ValueError: for a bad `num_classes`, `class_id`, `empty_value`,
            `threshold` or `ignore_class`, shapes that do not match
            `num_classes`, a `sample_weight` that does not broadcast to
            the labels, or, when values are concrete, invalid labels, NaN
            scores or NaN / infinite / negative sample weights.

    Examples:

    >>> y_true = np.array([[[0, 0, 1], [1, 2, 2]]])  # one 2x3 id map
    >>> y_pred = np.eye(4)[[[[0, 1, 1], [1, 2, 0]]]]  # (1, 2, 3, 4) scores
    >>> metric = ClassIoU(num_classes=4)
    >>> metric.update_state(y_true, y_pred)
    >>> np.round(keras.ops.convert_to_numpy(metric.result()), 4)  # class 3 empty
    array([0.3333, 0.6667, 0.5   ,    nan], dtype=float32)
    >>> metric = ClassIoU(num_classes=4, class_id=2, ignore_class=0)
    >>> metric.update_state(y_true, y_pred)  # pixels labelled 0 skipped
    >>> float(metric.result())
    0.5
    """

    _kind = "iou"
    _name = "class_iou"


@export
class ClassDice(_PerClassView):
    """Per-class Dice coefficient (F1 score), streaming.

    Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c) from the confusion matrix of all
    the labels and predictions seen since the last `reset_state()` (sample
    weights included): equal to `sklearn.metrics.f1_score(y_true, y_pred,
    average=None, labels=...)` on the flattened pixels, and to the hard
    (argmax) Dice of MONAI's `compute_dice` on one image whose classes are
    all present. Dice = 2 IoU / (1 + IoU). The Dice of the whole epoch's
    pixels, not a mean of per-image Dice.

    **Empty classes** (absent from labels and predictions) take
    `empty_value`, NaN by default; `MeanClassDice` skips them (see
    `ClassIoU`).

    Labels are class ids or id maps `(B, ...)` / `(B, ..., 1)`, or one-hot
    maps `(B, ..., C)`, with scores `(B, ..., C)`: see the module docstring.

    Args:
        class_id: `None` (default: the vector of all `num_classes` Dice
            values), an int (a scalar) or a list of ids.
        empty_value: `None` (NaN) or a float, the value of a class absent
            from labels and predictions.
        num_classes, threshold, ignore_class, name, dtype: as in `ClassIoU`.

    Raises:
        ValueError: as `ClassIoU`.

    Examples:

    >>> y_true = np.array([[[0, 0, 1], [1, 2, 2]]])
    >>> y_pred = np.eye(4)[[[[0, 1, 1], [1, 2, 0]]]]
    >>> metric = ClassDice(num_classes=4, class_id=[1, 2], empty_value=0.0)
    >>> metric.update_state(y_true, y_pred)
    >>> np.round(keras.ops.convert_to_numpy(metric.result()), 4)
    array([0.8   , 0.6667], dtype=float32)

    References:
        Dice, L. R. "Measures of the amount of ecologic association between
        species." Ecology, 1945.
    """

    _kind = "dice"
    _name = "class_dice"


@export
class MeanClassIoU(_MeanView):
    """Mean IoU over the non-empty classes (or over `classes`), streaming.

    The mean of `ClassIoU` over the selected classes that appear in the
    labels or the predictions since the last `reset_state()`; classes absent
    from both are left out of the mean (never counted as 0 or 1), and with
    no such class the result is 0 (as in Keras). With `classes=None` it
    equals `keras.metrics.MeanIoU(num_classes, ignore_class=...)` (up to
    Keras' epsilon of 1e-7), with `classes=[...]` `keras.metrics.IoU(
    target_class_ids=classes)`; e.g. `classes=range(1, C)` gives the mean
    foreground IoU.

    Labels are class ids or id maps `(B, ...)` / `(B, ..., 1)`, or one-hot
    maps `(B, ..., C)`, with scores `(B, ..., C)`: see the module docstring.

    Args:
        classes: `None` (all classes) or a non-empty list of distinct class
            ids to average over.
        num_classes, threshold, ignore_class, name, dtype: as in `ClassIoU`.

    Raises:
        ValueError: for a bad `num_classes`, `classes`, `threshold` or
            `ignore_class`, and bad inputs as `ClassIoU`.

    Examples:

    >>> y_true = np.array([[[0, 0, 1], [1, 2, 2]]])
    >>> y_pred = np.eye(4)[[[[0, 1, 1], [1, 2, 0]]]]
    >>> metric = MeanClassIoU(num_classes=4)
    >>> metric.update_state(y_true, y_pred)
    >>> round(float(metric.result()), 4)  # (1/3 + 2/3 + 1/2) / 3, class 3 empty
    0.5
    >>> foreground = MeanClassIoU(num_classes=4, classes=[1, 2, 3])
    >>> foreground.update_state(y_true, y_pred)
    >>> round(float(foreground.result()), 4)
    0.5833
    >>> model = keras.Sequential([keras.Input((8, 8, 1)),
    ...                           keras.layers.Conv2D(4, 3, padding="same")])
    >>> model.compile(loss="sparse_categorical_crossentropy",
    ...               metrics=[MeanClassIoU(num_classes=4, classes=[1, 2, 3])])

    References:
        Everingham, M. et al. "The PASCAL Visual Object Classes (VOC)
        challenge." IJCV, 2010.
    """

    _kind = "iou"
    _name = "mean_class_iou"


@export
class MeanClassDice(_MeanView):
    """Mean Dice over the non-empty classes (or over `classes`), streaming.

    The mean of `ClassDice` over the selected classes that appear in the
    labels or the predictions since the last `reset_state()`; classes absent
    from both are left out, and with no such class the result is 0. With
    `classes=None` it equals `MacroF1` and `sklearn.metrics.f1_score(
    average="macro")` on the flattened pixels.

    Labels are class ids or id maps `(B, ...)` / `(B, ..., 1)`, or one-hot
    maps `(B, ..., C)`, with scores `(B, ..., C)`: see the module docstring.

    Args:
        classes: `None` (all classes) or a non-empty list of distinct class
            ids to average over.
        num_classes, threshold, ignore_class, name, dtype: as in `ClassIoU`.

    Raises:
        ValueError: as `MeanClassIoU`.

    Examples:

    >>> y_true = np.array([[[0, 0, 1], [1, 2, 2]]])
    >>> y_pred = np.eye(4)[[[[0, 1, 1], [1, 2, 0]]]]
    >>> metric = MeanClassDice(num_classes=4, classes=[1, 2])
    >>> metric.update_state(y_true, y_pred)
    >>> round(float(metric.result()), 4)  # (4/5 + 2/3) / 2
    0.7333
    """

    _kind = "dice"
    _name = "mean_class_dice"
