import csv

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.callbacks import ClassReport, DeferredReweighting
from kimbalance.data import BalancedBatchGenerator
from kimbalance.evaluation import evaluate
from kimbalance.weights import class_weights

_Y = np.array([0] * 12 + [1] * 6 + [2] * 2)
_X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")


def _model(num_classes=3):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(num_classes)])
    return model


class _RecordingLoss(keras.losses.Loss):
    """Records the labels and sample weights the loss sees (eager steps)."""

    def __init__(self):
        super().__init__(name="recording")
        self.seen = []

    def __call__(self, y_true, y_pred, sample_weight=None):
        try:
            weights = (np.ones(y_true.shape[0]) if sample_weight is None
                       else ops.convert_to_numpy(sample_weight))
            self.seen.append((ops.convert_to_numpy(y_true).reshape(-1), weights))
        except TypeError:
            pass  # jax traces the loss once to build it: nothing concrete.
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=True)


class _EpochMarks(keras.callbacks.Callback):
    def __init__(self, loss):
        super().__init__()
        self.loss, self.ends = loss, []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(len(self.loss.seen))


def _weights_per_epoch(loss, ends):
    starts = [0, *ends[:-1]]
    return [loss.seen[a:b] for a, b in zip(starts, ends, strict=True)]


def test_drw_switches_the_weights_the_loss_sees_exactly_at_start_epoch():
    # Starts without class weights: the callback turns on "none" (ones).
    gen = BalancedBatchGenerator(_X, _Y, sampler="instance", batch_size=8)
    drw = DeferredReweighting(gen, "effective_number", start_epoch=2)
    loss = _RecordingLoss()
    marks = _EpochMarks(loss)
    model = _model()
    model.compile(optimizer="sgd", loss=loss, run_eagerly=True)
    model.fit(gen, epochs=4, callbacks=[drw, marks], verbose=0)
    expected = class_weights(np.bincount(_Y), "effective_number", beta=0.9999)
    per_epoch = _weights_per_epoch(loss, marks.ends)
    # Every epoch covers the 20 samples (Keras may also call the loss once on
    # the first batch to build it).
    assert all(sum(len(y) for y, _ in batches) >= 20 for batches in per_epoch)
    for epoch, batches in enumerate(per_epoch):
        for y, w in batches:
            want = expected[y] if epoch >= 2 else np.ones(len(y))
            np.testing.assert_allclose(w, want, rtol=1e-6, err_msg=f"epoch {epoch}")
    assert drw.reweighting


class _RecordingGenerator(BalancedBatchGenerator):
    """Records each fetched batch with the Keras epoch it was fetched in."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetched = []
        self.keras_epoch = None  # set by _KerasEpoch; None before training

    def __getitem__(self, index):
        batch = super().__getitem__(index)
        if self.keras_epoch is not None:
            self.fetched.append((self.keras_epoch, batch[1], batch[2]))
        return batch


class _KerasEpoch(keras.callbacks.Callback):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def on_epoch_begin(self, epoch, logs=None):
        self.generator.keras_epoch = epoch

    def on_train_end(self, logs=None):
        self.generator.keras_epoch = None


def test_drw_in_a_compiled_fit_and_restores_the_initial_weights():
    initial = np.array([1.0, 2.0, 3.0])
    deferred = np.array([0.5, 1.0, 4.0])
    gen = _RecordingGenerator(_X, _Y, sampler="instance", batch_size=10,
                              class_weight=initial)
    drw = DeferredReweighting(gen, deferred, start_epoch=1)
    model = _model()
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(gen, epochs=3, callbacks=[drw, _KerasEpoch(gen)], verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for epoch, y, w in gen.fetched:
        np.testing.assert_allclose(w, (deferred if epoch >= 1 else initial)[y])
    assert sorted({epoch for epoch, _, _ in gen.fetched}) == [0, 1, 2]
    # A new fit from epoch 0 starts with the initial weights again.
    gen.fetched.clear()
    model.fit(gen, epochs=1, callbacks=[drw, _KerasEpoch(gen)], verbose=0)
    assert not drw.reweighting
    assert gen.fetched
    for _, y, w in gen.fetched:
        np.testing.assert_allclose(w, initial[y])


def test_drw_scheme_and_dict_weights():
    gen = BalancedBatchGenerator(_X, _Y, sampler="instance", batch_size=20,
                                 class_weight="none")
    drw = DeferredReweighting(gen, {0: 1.0, 1: 2.0, 2: 5.0}, start_epoch=0)
    drw.on_epoch_begin(0)
    np.testing.assert_allclose(gen.class_weight, [1.0, 2.0, 5.0])
    drw = DeferredReweighting(gen, "balanced", start_epoch=3)
    drw.on_epoch_begin(0)
    np.testing.assert_allclose(gen.class_weight, [1.0, 2.0, 5.0])  # untouched
    drw.on_epoch_begin(3)
    np.testing.assert_allclose(gen.class_weight, class_weights(np.bincount(_Y)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"generator": np.zeros(3)}, "argument `generator`"),
        ({"class_weight": "cubic"}, "argument `class_weight`. Expected a scheme"),
        ({"class_weight": [1.0, 2.0]}, "argument `class_weight`. Expected 3 weights"),
        ({"class_weight": [1.0, -2.0, 1.0]}, "argument `class_weight`.*>= 0"),
        ({"class_weight": {0: 1.0}}, "argument `class_weight`.*dict"),
        ({"start_epoch": -1}, "argument `start_epoch`"),
        ({"start_epoch": 1.5}, "argument `start_epoch`"),
    ],
)
def test_drw_invalid_arguments(kwargs, message):
    arguments = {"class_weight": "effective_number", "start_epoch": 2, **kwargs}
    generator = arguments.pop("generator", None)
    if generator is None:
        generator = BalancedBatchGenerator(_X, _Y, batch_size=4)
    with pytest.raises(ValueError, match=message):
        DeferredReweighting(generator, **arguments)


class _Validation(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], self.y[part]


def test_class_report_logs_into_history_and_csv(tmp_path):
    counts = [150, 50, 5]
    path = tmp_path / "report.csv"
    arrays = ClassReport((_X, _Y), class_counts=counts, class_names=["a", "b", "c"],
                         csv_path=path, batch_size=7)
    batches = ClassReport(_Validation(_X, _Y, 6), class_counts=counts, prefix="pyd_")
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(_X, _Y, batch_size=10, epochs=3, verbose=0,
                        callbacks=[arrays, batches]).history
    per_class = [f"val_{m}_{c}" for m in ("precision", "recall", "f1")
                 for c in range(3)]
    summary = ["val_balanced_accuracy", "val_g_mean", "val_macro_f1",
               "val_many_shot_accuracy", "val_medium_shot_accuracy",
               "val_few_shot_accuracy"]
    for key in per_class + summary:
        assert len(history[key]) == 3, key
        assert history[key] == history["pyd_" + key[4:]], key
    # The last epoch's scores are those of the final model.
    final = evaluate(model, _X, _Y, class_counts=counts)
    assert history["val_g_mean"][-1] == final.g_mean
    assert history["val_recall_2"][-1] == final.recall[2]
    assert history["val_few_shot_accuracy"][-1] == final.few_shot_accuracy
    assert arrays.report.class_names == ["a", "b", "c"]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert set(rows[0]) == {"epoch", *per_class, *summary}
    for key in per_class + summary:
        assert [float(row[key]) for row in rows] == history[key]


def test_class_report_options_and_binary_outputs(capsys):
    y = (_Y > 0).astype("int64")
    report = ClassReport((_X, y, np.ones(20)), per_class=False, verbose=1)
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    history = model.fit(_X, y, epochs=1, verbose=0, callbacks=[report]).history
    assert not any(key.startswith("val_recall") for key in history)
    assert "val_many_shot_accuracy" not in history  # no class_counts
    expected = evaluate(model.predict(_X, verbose=0), y)
    assert history["val_g_mean"] == [expected.g_mean]
    assert "EvaluationReport" in capsys.readouterr().out


def test_class_report_skips_a_group_without_classes():
    report = ClassReport((_X, _Y), class_counts=[500, 400, 300])
    model = _model()
    report.set_model(model)
    scores = report.evaluate_model()
    assert "val_many_shot_accuracy" in scores
    assert "val_few_shot_accuracy" not in scores


def test_class_report_model_output_must_match_class_counts():
    report = ClassReport((_X, _Y), class_counts=[5, 5])
    report.set_model(_model(3))
    with pytest.raises(ValueError, match="argument `class_counts`. Expected 3"):
        report.evaluate_model()


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((_X,), {}, "argument `validation_data`. Expected a tuple"),
        (((_X,),), {}, "argument `validation_data`. Expected a tuple"),
        (((_X, _Y[:5]),), {},
         r"argument `validation_data\[0\]`. Expected inputs with 5 samples"),
        (((_X, _Y - 1),), {},
         r"argument `validation_data\[1\]`. Expected class ids >= 0 \(found -1\)"),
        (((_X, _Y),), {"class_names": ["a", "b"], "class_counts": [1, 2, 3]},
         "argument `class_names`. Expected 3 names"),
        (((_X, _Y),), {"class_counts": [1, -2, 3]}, "argument `class_counts`"),
        (((_X, _Y),), {"csv_path": "/no/such/folder/r.csv"}, "argument `csv_path`"),
        (((_X, _Y),), {"batch_size": 0}, "argument `batch_size`"),
        (((_X, _Y),), {"prefix": 3}, "argument `prefix`"),
        (((_X, _Y),), {"per_class": 1}, "argument `per_class`"),
        (((_X, _Y),), {"few_threshold": 300}, "argument `few_threshold`"),
        (((_X, _Y),), {"threshold": 2.0}, "argument `threshold`"),
    ],
)
def test_class_report_invalid_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassReport(*args, **kwargs)


def test_class_report_multi_hot_labels_log_multilabel_scores():
    # Multi-hot validation labels are scored per label, not by a row argmax.
    y = np.stack([_Y == 0, _Y >= 1, _Y == 2], axis=1).astype("float32")
    report = ClassReport((_X, y))
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(3, activation="sigmoid")])
    report.set_model(model)
    scores = report.evaluate_model()
    expected = evaluate(model.predict(_X, verbose=0), y)
    assert scores["val_micro_f1"] == expected.micro_f1
    assert scores["val_mean_average_precision"] == expected.mean_average_precision
    assert scores["val_recall_2"] == expected.recall[2]
    assert "val_g_mean" not in scores
    with pytest.raises(ValueError, match=r"argument `class_counts`. Expected None "
                       r"for multi-hot validation labels"):
        ClassReport((_X, y), class_counts=[5, 5, 5])
