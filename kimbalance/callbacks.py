"""Keras callbacks for imbalanced training: deferred re-weighting, class reports.

Both work with `model.fit` on torch, jax and tensorflow. Anything that changes
during training flows as data: `DeferredReweighting` changes the per-sample
weights the batch generator yields, never a tensor inside a compiled loss, so
compiled train steps stay valid. `ClassReport(log_dir=...)` writes its scores
and the confusion matrix as TensorBoard event files itself (the record format
and the protocol buffers are written here), so no backend needs TensorFlow or
the `tensorboard` package to log them; `tensorboard --logdir` shows them.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import os
import socket
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

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
from kimbalance.evaluation import (
    EvaluationReport,
    MultiLabelReport,
    check_decision_threshold,
    evaluate,
    predict_batches,
)
from kimbalance.plots import plot_confusion_matrix
from kimbalance.weights import SCHEMES, resolve_class_weight

__all__ = ["DeferredReweighting", "ClassReport", "EventFileWriter"]


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

    def __init__(self, generator: Any,
                 class_weight: str | Mapping[int, float] | Sequence[float] = (
                     "effective_number"),
                 start_epoch: int = 160) -> None:
        super().__init__()
        if not callable(getattr(generator, "set_class_weight", None)):
            raise invalid("generator", "a batch generator with `set_class_weight` "
                          "(kimbalance.data.BalancedBatchGenerator)", generator)
        outputs = getattr(generator, "num_classes", None)
        if isinstance(outputs, dict):
            raise invalid("generator", "a single-output generator (DeferredReweighting "
                          "switches one target's class weights; a multi-output "
                          "generator takes per-output class_weight)",
                          f"<generator with outputs {sorted(outputs)}>")
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

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
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

    **TensorBoard.** With `log_dir`, every epoch's scores are written as
    scalars and the row-normalised confusion matrix (the diagonal is the
    per-class recall) as an image, following `keras.callbacks.TensorBoard`:
    in the run folder `log_dir/validation` (`log_dir/<prefix without the
    trailing "_">` for another `prefix`), tags `epoch_<key without the
    prefix>` (`epoch_recall_3`, `epoch_g_mean`, `epoch_confusion_matrix`),
    step = the 0-based epoch. Give it the `log_dir` of a Keras `TensorBoard`
    callback and the per-class curves sit next to Keras' `epoch_loss`. The
    event files are written by this callback (no TensorFlow import on torch
    or jax; view them with `tensorboard --logdir log_dir`); each `fit`
    starts a new file. The image is drawn by
    `kimbalance.plots.plot_confusion_matrix` when matplotlib is installed,
    else as a plain blue heatmap of the same matrix (one square per cell).

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
        log_dir: a folder for TensorBoard event files (created when training
            begins), or None.
        write_confusion_matrix: with `log_dir`, also write the confusion
            matrix image each epoch (single-label validation data).

    Attributes:
        report: the `EvaluationReport` of the latest epoch.

    Raises:
        ValueError: for `validation_data` that is not `(x, y)` arrays of
            equal length or a PyDataset, invalid labels, `class_names` /
            `class_counts` of different lengths, a `csv_path` in a missing
            folder, a `log_dir` that is not a folder path, or bad numeric
            arguments; during `fit`, for a model whose
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

    def __init__(self, validation_data: Any, *,
                 class_names: Sequence[str] | None = None,
                 class_counts: Sequence[int] | np.ndarray | None = None,
                 csv_path: str | os.PathLike | None = None, append: bool = False,
                 batch_size: int = 256, prefix: str = "val_",
                 per_class: bool = True, many_threshold: int = 100,
                 few_threshold: int = 20, from_logits: bool = False,
                 threshold: float = 0.5, verbose: int = 0,
                 log_dir: str | os.PathLike | None = None,
                 write_confusion_matrix: bool = True) -> None:
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
        if log_dir is not None:
            if not isinstance(log_dir, str | os.PathLike) or (
                    os.path.exists(log_dir) and not os.path.isdir(log_dir)):
                raise invalid("log_dir", "a folder path (str or os.PathLike)",
                              log_dir)
            log_dir = os.fspath(log_dir)
        self.log_dir = log_dir
        self.write_confusion_matrix = check_bool("write_confusion_matrix",
                                                 write_confusion_matrix)
        self.report: EvaluationReport | MultiLabelReport | None = None
        self._csv_keys: list[str] | None = None
        self._writer: EventFileWriter | None = None

    @property
    def tensorboard_run_dir(self) -> str | None:
        """The folder the event files go to: `log_dir/validation` by default."""
        if self.log_dir is None:
            return None
        run = "validation" if self.prefix == "val_" else self.prefix.rstrip("_")
        return os.path.join(self.log_dir, run or "validation")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._csv_keys = None
        if self.csv_path is not None and not self.append:
            if os.path.exists(self.csv_path):
                os.remove(self.csv_path)
        if self.log_dir is not None:
            self._close_writer()
            self._writer = self._open_writer()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._close_writer()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        scores = self.evaluate_model()
        if logs is not None:
            logs.update(scores)
        if self.csv_path is not None:
            self._write_row(epoch, scores)
        if self.log_dir is not None:
            self._write_summaries(epoch, scores)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.report}")

    def _write_summaries(self, epoch, scores):
        if self._writer is None:  # on_epoch_end called outside fit
            self._writer = self._open_writer()
        start = len(self.prefix)
        for key, value in scores.items():
            self._writer.add_scalar(f"epoch_{key[start:]}", value, epoch)
        confusion = getattr(self.report, "confusion_matrix", None)
        if self.write_confusion_matrix and confusion is not None:
            self._writer.add_image("epoch_confusion_matrix",
                                   confusion_matrix_png(self.report), epoch)
        self._writer.flush()

    def _open_writer(self) -> EventFileWriter:
        run_dir = self.tensorboard_run_dir
        if run_dir is None:
            raise invalid("log_dir", "a folder path to write TensorBoard files to",
                          self.log_dir)
        return EventFileWriter(run_dir)

    def _close_writer(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def evaluate_model(self) -> dict[str, float]:
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
        path = self.csv_path
        assert path is not None  # only called when a csv_path was given
        keys = self._csv_keys
        if keys is None:
            keys = self._csv_keys = list(scores)
            new_file = not (os.path.exists(path) and os.path.getsize(path) > 0)
            if new_file:
                with open(path, "w", newline="") as f:
                    csv.writer(f).writerow(["epoch", *keys])
        with open(path, "a", newline="") as f:
            row = [epoch] + [repr(scores.get(k, float("nan"))) for k in keys]
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


# TensorBoard event files ---------------------------------------------------------
#
# An events file is a sequence of TFRecords: uint64 length, masked CRC-32C of
# the length, the serialized `tensorflow.Event` protocol buffer, masked CRC-32C
# of the data. The first event carries `file_version = "brain.Event:2"`; each
# later one a `Summary` of `Value`s with a `simple_value` (a scalar) or an
# `Image` (PNG bytes), the summary forms TensorBoard reads for every backend.


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord files.

    Examples:

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value):
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number, wire_type, payload):
    key = _varint((number << 3) | wire_type)
    if wire_type == 2:  # length-delimited
        return key + _varint(len(payload)) + payload
    return key + payload


def _event(step, summary=b"", file_version=None):
    event = _field(1, 1, struct.pack("<d", time.time()))
    event += _field(2, 0, _varint(step))
    if file_version is not None:
        event += _field(3, 2, file_version.encode())
    if summary:
        event += _field(5, 2, summary)
    return event


_FILE_COUNTER = itertools.count()


class EventFileWriter:
    """Appends TensorBoard scalar and image summaries to a new events file.

    A minimal writer of the TFRecord / `tensorflow.Event` format (no
    TensorFlow or `tensorboard` import), used by `ClassReport(log_dir=...)`.
    The file name follows TensorFlow's (`events.out.tfevents.<time>.<host>.
    <pid>...`), so TensorBoard finds it next to Keras' own event files.

    Args:
        folder: the run folder (created if missing).

    Examples:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     writer = EventFileWriter(folder)
    ...     writer.add_scalar("epoch_g_mean", 0.5, step=0)
    ...     writer.close()
    ...     os.path.basename(writer.path).startswith("events.out.tfevents.")
    True
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_FILE_COUNTER)}.kimbalance.v2")
        self.path = os.path.join(folder, name)
        self._file = open(self.path, "wb")  # closed by close()
        self._write(_event(0, file_version="brain.Event:2"))
        self.flush()

    def _write(self, data):
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", _masked_crc(header)) + data
                         + struct.pack("<I", _masked_crc(data)))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Writes `value` under `tag` at `step` (a float32 `simple_value`)."""
        entry = _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", value))
        self._write(_event(int(step), _field(1, 2, entry)))

    def add_image(self, tag: str, png: bytes, step: int) -> None:
        """Writes PNG bytes under `tag` at `step`."""
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(png[25], 3)  # by PNG colour type
        image = (_field(1, 0, _varint(height)) + _field(2, 0, _varint(width))
                 + _field(3, 0, _varint(channels)) + _field(4, 2, png))
        entry = _field(1, 2, tag.encode()) + _field(4, 2, image)
        self._write(_event(int(step), _field(1, 2, entry)))

    def flush(self) -> None:
        """Writes buffered events to disk."""
        self._file.flush()

    def close(self) -> None:
        """Flushes and closes the file."""
        if not self._file.closed:
            self._file.close()


def _png(rgb):
    """PNG bytes of a (H, W, 3) uint8 image (zlib, no row filter)."""
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8),
                           rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def confusion_matrix_png(report: Any) -> bytes:
    """The row-normalised confusion matrix of an `EvaluationReport` as PNG.

    Drawn by `kimbalance.plots.plot_confusion_matrix` (class names, values,
    colour bar) when matplotlib is installed, else a heatmap from white (0) to
    dark blue (1), one square per cell, row = true class.
    """
    if importlib.util.find_spec("matplotlib") is not None:
        figure = plot_confusion_matrix(report, normalize="true",
                                       title="Confusion matrix")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()
    counts = np.asarray(report.confusion_matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    recall = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    cell = max(4, 256 // counts.shape[0])
    white, blue = np.array([247.0, 251.0, 255.0]), np.array([8.0, 48.0, 107.0])
    rgb = white + recall[..., None] * (blue - white)
    rgb = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    return _png(np.round(rgb).astype(np.uint8))
