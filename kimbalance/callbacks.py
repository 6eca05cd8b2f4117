"""Keras callbacks for imbalanced training: deferred re-weighting, class reports.

Both work with `model.fit` on torch, jax and tensorflow. Anything that changes
during training flows as data: `DeferredReweighting` changes the per-sample
weights the batch generator yields, never a tensor inside a compiled loss, so
compiled train steps stay valid.
"""

import csv
import os

import keras
import numpy as np

from kimbalance._validation import (
    check_bool,
    check_class_names,
    check_counts,
    check_int,
    check_shot_thresholds,
    invalid,
    parse_targets,
)
from kimbalance.evaluation import check_decision_threshold, evaluate, predict_batches
from kimbalance.weights import SCHEMES, resolve_class_weight

__all__ = ["DeferredReweighting", "ClassReport"]


class DeferredReweighting(keras.callbacks.Callback):
    """Deferred re-weighting (DRW): class weights switched on late in training.

    Cao et al. (2019) train with plain (or margin) losses first, so the
    network learns features from the natural distribution, and re-weight the
    loss by class only for the last epochs (CIFAR: from epoch 160 of 200,
    with the effective-number weights of Cui et al., beta 0.9999). This
    callback does the switch on a batch generator that yields per-sample
    weights (`kimbalance.data.BalancedBatchGenerator`): before epoch
    `start_epoch` the generator yields its initial weights; from epoch
    `start_epoch` on, `class_weight`, set with
    `generator.set_class_weight(class_weight)` in `on_epoch_begin`, before
    the epoch's first batch is fetched. Epochs are 0-based as in every Keras
    callback: `start_epoch=160` re-weights the 161st epoch on, as LDAM-DRW's
    `epoch // 160` schedule does. A later `fit` that starts before
    `start_epoch` gets the initial weights back.

    The weights are data (the third element of each batch), so the compiled
    train step is the same before and after the switch on every backend. For
    that the batches must carry weights from the first one: a generator
    without class weights is set to `class_weight="none"` (ones) when the
    callback is created (TensorFlow fixes the batch structure from the first
    batches).

    Args:
        generator: the training batch generator, with `set_class_weight(w)`
            and a `class_weight` attribute (`BalancedBatchGenerator`).
        class_weight: the weights from `start_epoch` on: a scheme name of
            `kimbalance.weights.class_weights` computed by the generator from
            its labels (`"effective_number"`, with beta 0.9999 as in the
            paper; `"balanced"`, ...), a dict `{class: weight}` or a sequence
            of one weight per class (e.g.
            `class_weights(counts, "effective_number", beta=0.999)` for
            another beta).
        start_epoch: int >= 0, the first (0-based) re-weighted epoch.

    Raises:
        ValueError: for a generator without `set_class_weight`, an unknown
            scheme, weights of the wrong length or negative weights, or a bad
            `start_epoch`.

    Examples:

    >>> from kimbalance.data import BalancedBatchGenerator
    >>> x = np.zeros((10, 2), "float32")
    >>> y = np.array([0] * 8 + [1] * 2)
    >>> gen = BalancedBatchGenerator(x, y, sampler="instance", batch_size=10)
    >>> drw = DeferredReweighting(gen, "balanced", start_epoch=1)
    >>> drw.on_epoch_begin(0)
    >>> np.unique(gen[0][2]).tolist()
    [1.0]
    >>> drw.on_epoch_begin(1)
    >>> np.unique(gen[0][2]).tolist()
    [0.625, 2.5]

    References:
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
        Margin Loss", NeurIPS 2019.
        Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
        CVPR 2019.
    """

    def __init__(self, generator, class_weight="effective_number", start_epoch=160):
        super().__init__()
        if not callable(getattr(generator, "set_class_weight", None)):
            raise invalid("generator", "a batch generator with `set_class_weight` "
                          "(kimbalance.data.BalancedBatchGenerator)", generator)
        self.generator = generator
        self.class_weight = _check_class_weight(class_weight, generator)
        self.start_epoch = check_int("start_epoch", start_epoch, low=0)
        initial = getattr(generator, "class_weight", None)
        if initial is None:
            generator.set_class_weight("none")
            initial = getattr(generator, "class_weight", None)
        self.initial_class_weight = (None if initial is None
                                     else np.array(initial, dtype=np.float64))
        self.reweighting = False

    def on_epoch_begin(self, epoch, logs=None):
        deferred = epoch >= self.start_epoch
        if deferred == self.reweighting:
            return
        if deferred:
            self.generator.set_class_weight(self.class_weight)
        else:
            initial = self.initial_class_weight
            self.generator.set_class_weight("none" if initial is None else initial)
        self.reweighting = deferred


def _check_class_weight(class_weight, generator):
    if isinstance(class_weight, str):
        if class_weight not in SCHEMES:
            raise invalid("class_weight", f"a scheme name in {list(SCHEMES)}, a dict "
                          "or a sequence of weights", class_weight)
        return class_weight
    num_classes = getattr(generator, "num_classes", None)
    if num_classes is None:
        try:
            num_classes = len(class_weight)
        except TypeError:
            raise invalid("class_weight", "a scheme name, a dict or a sequence of "
                          "weights", class_weight) from None
    return resolve_class_weight(class_weight, int(num_classes))


class ClassReport(keras.callbacks.Callback):
    """Per-class and imbalance-aware validation scores, logged every epoch.

    At the end of each epoch the model predicts `validation_data` and
    `kimbalance.evaluate` scores the predictions. The scores go into the
    epoch's `logs`, so they land in `model.fit(...).history` and later
    callbacks see them (put `ClassReport` before an `EarlyStopping` or
    `ModelCheckpoint` that monitors `val_g_mean`). Keys, with `prefix`
    (`"val_"` by default) and class ids `c = 0..C-1`:

    - `val_precision_c`, `val_recall_c`, `val_f1_c` (when `per_class=True`);
    - `val_balanced_accuracy`, `val_g_mean`, `val_macro_f1`;
    - for multi-hot validation labels (a `MultiLabelReport`), per label
      `val_precision_j`, `val_recall_j`, `val_f1_j` and `val_macro_f1`,
      `val_micro_f1`, `val_mean_average_precision` instead;
    - with `class_counts` (the *training* counts): `val_many_shot_accuracy`,
      `val_medium_shot_accuracy`, `val_few_shot_accuracy`, each only when
      the validation labels hold a class of that group.

    Keys use class ids, not names (names may hold any character);
    `class_names` label the table printed with `verbose=1` and `report`.
    Keras' progress bar prints every key, so for many classes consider
    `per_class=False` or `fit(verbose=2)`.

    Args:
        validation_data: `(x, y)` or `(x, y, sample_weight)` arrays (sample
            weights are ignored), or a `keras.utils.PyDataset` yielding such
            batches (read once per epoch, in order).
        class_names: a name per class, for the printed table.
        class_counts: training samples per class, for the many / medium /
            few-shot accuracy.
        csv_path: if given, a CSV file with one row per epoch: `epoch` and
            the logged keys.
        append: append to an existing `csv_path` instead of overwriting it
            when training begins.
        batch_size: prediction batch size for array data.
        prefix: the prefix of the logged keys.
        per_class: log the per-class precision / recall / F1.
        many_threshold: a class with more training samples is many-shot.
        few_threshold: a class with fewer training samples is few-shot.
        from_logits: for binary (N, 1) outputs: they are logits.
        threshold: for binary (N, 1) outputs: the probability threshold.
        verbose: 1 prints the report table after each epoch.

    Attributes:
        report: the `EvaluationReport` of the latest epoch.

    Raises:
        ValueError: for `validation_data` that is not `(x, y)` arrays of
            equal length or a PyDataset, invalid labels, `class_names` /
            `class_counts` of different lengths, a `csv_path` in a missing
            folder, or bad numeric arguments; during `fit`, for a model whose
            output does not match the number of classes.

    Examples:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "float32")
    >>> y = np.array([0, 1, 1])
    >>> history = model.fit(x, y, epochs=2, verbose=0,
    ...                     callbacks=[ClassReport((x, y))])
    >>> sorted(key for key in history.history if key.startswith("val_"))
    ['val_balanced_accuracy', 'val_f1_0', 'val_f1_1', 'val_g_mean',
     'val_macro_f1', 'val_precision_0', 'val_precision_1', 'val_recall_0',
     'val_recall_1']
    >>> len(history.history["val_g_mean"])
    2
    """

    def __init__(self, validation_data, *, class_names=None, class_counts=None,
                 csv_path=None, append=False, batch_size=256, prefix="val_",
                 per_class=True, many_threshold=100, few_threshold=20,
                 from_logits=False, threshold=0.5, verbose=0):
        super().__init__()
        self._dataset, self._x, self._y = _check_validation_data(validation_data)
        self.class_counts = (None if class_counts is None
                             else check_counts("class_counts", class_counts))
        if (self.class_counts is not None and self._y is not None
                and self._y.kind == "multi_hot"):
            raise invalid("class_counts", "None for multi-hot validation labels "
                          "(the many / medium / few-shot split is single-label)",
                          class_counts)
        if class_names is not None:
            num = None if self.class_counts is None else len(self.class_counts)
            class_names = list(check_class_names(class_names, num))
        self.class_names = class_names
        if csv_path is not None:
            csv_path = os.fspath(csv_path)
            folder = os.path.dirname(os.path.abspath(csv_path))
            if not os.path.isdir(folder):
                raise invalid("csv_path", "a file path in an existing folder",
                              csv_path)
        self.csv_path = csv_path
        self.append = check_bool("append", append)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        if not isinstance(prefix, str):
            raise invalid("prefix", "a string", prefix)
        self.prefix = prefix
        self.per_class = check_bool("per_class", per_class)
        self.many_threshold, self.few_threshold = check_shot_thresholds(
            many_threshold, few_threshold)
        self.from_logits = check_bool("from_logits", from_logits)
        self.threshold = check_decision_threshold(threshold)
        self.verbose = check_int("verbose", verbose, low=0)
        self.report = None
        self._csv_keys = None

    def on_train_begin(self, logs=None):
        self._csv_keys = None
        if self.csv_path is not None and not self.append:
            if os.path.exists(self.csv_path):
                os.remove(self.csv_path)

    def on_epoch_end(self, epoch, logs=None):
        scores = self.evaluate_model()
        if logs is not None:
            logs.update(scores)
        if self.csv_path is not None:
            self._write_row(epoch, scores)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.report}")

    def evaluate_model(self):
        """Scores `self.model` on the validation data; returns the log entries."""
        if self._dataset is not None:
            predictions, labels = predict_batches(self.model, self._dataset,
                                                  name="validation_data")
        else:
            predictions = self.model.predict(self._x, batch_size=self.batch_size,
                                             verbose=0)
            labels = self._y.array
        report = evaluate(
            predictions, labels, class_counts=self.class_counts,
            class_names=self.class_names, from_logits=self.from_logits,
            threshold=self.threshold, many_threshold=self.many_threshold,
            few_threshold=self.few_threshold)
        self.report = report
        p = self.prefix
        scores = {}
        if self.per_class:
            for name in ("precision", "recall", "f1"):
                for c, value in enumerate(getattr(report, name)):
                    scores[f"{p}{name}_{c}"] = float(value)
        for name, value in report.summary().items():
            if name != "accuracy" and value is not None:
                scores[f"{p}{name}"] = float(value)
        return scores

    def _write_row(self, epoch, scores):
        if self._csv_keys is None:
            self._csv_keys = list(scores)
            new_file = not (os.path.exists(self.csv_path)
                            and os.path.getsize(self.csv_path) > 0)
            if new_file:
                with open(self.csv_path, "w", newline="") as f:
                    csv.writer(f).writerow(["epoch", *self._csv_keys])
        with open(self.csv_path, "a", newline="") as f:
            row = [epoch] + [repr(scores.get(k, float("nan")))
                             for k in self._csv_keys]
            csv.writer(f).writerow(row)


def _check_validation_data(validation_data):
    """Returns (PyDataset or None, x or None, parsed `Targets` or None)."""
    if isinstance(validation_data, keras.utils.PyDataset):
        return validation_data, None, None
    if not isinstance(validation_data, tuple | list) or len(validation_data) not in (
            2, 3):
        raise invalid("validation_data", "a tuple (x, y) or (x, y, sample_weight) "
                      "of arrays, or a keras.utils.PyDataset", validation_data)
    x, y = validation_data[0], validation_data[1]
    targets = parse_targets(y, name="validation_data[1]")
    lengths = {len(v) for v in keras.tree.flatten(x) if hasattr(v, "__len__")}
    if not lengths or lengths != {len(targets)}:
        raise invalid("validation_data[0]", f"inputs with {len(targets)} samples "
                      f"(one per label in y); got lengths {sorted(lengths)}", x)
    return None, x, targets
