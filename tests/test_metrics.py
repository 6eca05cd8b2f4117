"""kimbalance.metrics against sklearn / imblearn, over several batches."""

import os
import re
import warnings

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.metrics import geometric_mean_score
from keras import ops
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

from kimbalance import metrics as metrics_module
from kimbalance.metrics import BalancedAccuracy, GeometricMean, MacroF1

METRICS = {
    "balanced_accuracy": BalancedAccuracy,
    "geometric_mean": GeometricMean,
    "macro_f1": MacroF1,
}


def oracle(name, y_true, y_pred, sample_weight=None):
    """The sklearn / imblearn value (their zero-division warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "balanced_accuracy":
            return balanced_accuracy_score(y_true, y_pred, sample_weight=sample_weight)
        if name == "geometric_mean":
            return geometric_mean_score(y_true, y_pred, sample_weight=sample_weight)
        return f1_score(y_true, y_pred, average="macro", sample_weight=sample_weight)


def make_batches(scenario, seed=0, num_classes=5, sizes=(9, 9, 9, 5)):
    """Labels from classes 0..3 (class 4 never labelled) and logits per batch.

    "informative": logits favour the true class and never class 4, so class 4
    is absent from labels and predictions.
    "predicted_only": class 4 is sometimes predicted though never a label.
    "weighted": as "informative" with random sample weights.
    """
    rng = np.random.default_rng(seed)
    batches = []
    for size in sizes:
        labels = rng.choice(4, size=size, p=[0.55, 0.25, 0.15, 0.05])
        logits = rng.normal(size=(size, num_classes))
        logits += 2.0 * np.eye(num_classes)[labels]
        if scenario == "predicted_only":
            logits[:, 4] += 0.8
        else:
            logits[:, 4] = -10.0
        weights = rng.uniform(0.1, 2.0, size) if scenario == "weighted" else None
        batches.append((labels, logits.astype("float32"), weights))
    return batches


def accumulate(metric, batches, form="sparse", from_logits=True):
    for labels, logits, weights in batches:
        y_pred = logits if from_logits else ops.softmax(logits)
        if form == "sparse":
            y_true = labels
        elif form == "column":
            y_true = labels[:, None].astype("float32")
        else:
            y_true = np.eye(metric.num_classes, dtype="float32")[labels]
        metric.update_state(ops.convert_to_tensor(y_true), y_pred,
                            sample_weight=weights)
    return float(metric.result())


def concatenated(batches):
    labels = np.concatenate([b[0] for b in batches])
    predictions = np.concatenate([b[1].argmax(-1) for b in batches])
    weights = None
    if batches[0][2] is not None:
        weights = np.concatenate([b[2] for b in batches])
    return labels, predictions, weights


@pytest.mark.parametrize("scenario", ["informative", "predicted_only", "weighted"])
def test_equals_sklearn_over_batches(scenario):
    batches = make_batches(scenario, seed=len(scenario))
    labels, predictions, weights = concatenated(batches)
    for name, cls in METRICS.items():
        metric = cls(num_classes=5)
        value = accumulate(metric, batches)
        expected = oracle(name, labels, predictions, weights)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        if scenario == "predicted_only" and name == "geometric_mean":
            assert 4 in predictions and value == 0.0  # imblearn: recall 0 -> 0
        # The public state is sklearn's confusion matrix over all classes.
        np.testing.assert_allclose(
            ops.convert_to_numpy(metric.confusion_matrix),
            confusion_matrix(labels, predictions, labels=range(5),
                             sample_weight=weights),
            rtol=1e-5,
        )


def test_label_and_prediction_forms():
    batches = make_batches("weighted", seed=3)
    labels, predictions, weights = concatenated(batches)
    for form, from_logits in [("column", False), ("one_hot", True), ("one_hot", False)]:
        for name, cls in METRICS.items():
            value = accumulate(cls(num_classes=5), batches, form, from_logits)
            np.testing.assert_allclose(
                value, oracle(name, labels, predictions, weights), rtol=1e-5,
                atol=1e-6, err_msg=f"{name} {form} from_logits={from_logits}")


def test_geometric_mean_correction_and_zero_recall():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([0, 2, 1, 0, 0, 1])
    scores = np.eye(3, dtype="float32")[y_pred]
    for correction in (0.0, 0.001):
        metric = GeometricMean(num_classes=3, correction=correction)
        metric.update_state(y_true, scores)
        expected = geometric_mean_score(y_true, y_pred, correction=correction)
        np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
    assert float(GeometricMean(3, correction=0.001).get_config()["correction"]) == 0.001


def test_single_sigmoid_output():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=30)
    probs = rng.uniform(size=(30, 1)).astype("float32")
    probs[:3, 0] = 0.5  # exactly the threshold: class 1 (score >= threshold)
    logits = np.log(probs / (1 - probs))
    for name, cls in METRICS.items():
        metric = cls(num_classes=2)
        metric.update_state(labels[:15, None], probs[:15])
        metric.update_state(labels[15:], probs[15:, 0])  # (N,) scores too
        expected = oracle(name, labels, (probs[:, 0] >= 0.5).astype(int))
        np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
        from_logits = cls(num_classes=2, threshold=0.0)
        from_logits.update_state(labels, logits)
        np.testing.assert_allclose(float(from_logits.result()), expected, rtol=1e-5)


def test_half_precision_predictions_and_higher_rank():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=(4, 6))
    logits = rng.normal(size=(4, 6, 3)) + 2 * np.eye(3)[labels]
    weights = rng.uniform(0.5, 1.5, size=4)  # per sample, broadcast over 6 positions
    metric = MacroF1(num_classes=3)
    metric.update_state(labels, ops.convert_to_tensor(logits, dtype="float16"),
                        sample_weight=weights)
    predictions = ops.convert_to_numpy(
        ops.argmax(ops.convert_to_tensor(logits, dtype="float16"), axis=-1))
    expected = oracle("macro_f1", labels.ravel(), predictions.ravel(),
                      np.repeat(weights, 6))
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)


def test_reset_state_and_empty_result():
    batches = make_batches("informative")
    for cls in METRICS.values():
        metric = cls(num_classes=5)
        assert float(metric.result()) == 0.0
        accumulate(metric, batches)
        metric.reset_state()
        assert float(metric.result()) == 0.0
        assert not np.any(ops.convert_to_numpy(metric.confusion_matrix))
        fresh = cls(num_classes=5)
        assert accumulate(metric, batches[:2]) == accumulate(fresh, batches[:2])


# Bad labels, scores and weights -------------------------------------------------
# Eager (concrete values): a ValueError naming the argument and the bad values,
# the same for NumPy input and for the backend's tensors, on every backend.

SCORES3 = np.eye(3, dtype="float32")[[0, 1, 2]]

BAD_LABELS = [
    # (labels, regex after "argument `y_true`. Expected ")
    (np.array([0, 3, 1]), r"class ids < num_classes=3 \(found 3\)"),
    (np.array([0, -1, 1]), r"class ids >= 0 \(found -1\)"),
    (np.array([-100, 1, 2]), r"class ids >= 0 \(found -100\)"),
    (np.array([0.0, 1.5, 2.0]), r"integer class ids \(found non-integer values "
                                r"\[1.5\]\)"),
    (np.array([0.0, np.nan, 2.0]), r"finite labels \(no NaN or inf\)"),
    (np.array([[0.0], [np.inf], [2.0]]), r"finite labels \(no NaN or inf\)"),
    (np.array([0, 2**32, 1], dtype=np.int64), r"class ids < num_classes=3 \(found "
                                              r"4294967296\)"),
    (np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]]), r"one-hot rows \(exactly one 1 "
                                                  r"per row\); rows \[1\]"),
    (np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]]), r"one-hot rows \(exactly one 1 "
                                                  r"per row\); rows \[1\]"),
    (np.array([[1, 0, 0], [0, 0.5, 0.5], [0, 0, 1]]), r"one-hot / multi-hot rows "
                                                      r"of 0 and 1 values"),
    (np.array([[2, 0, 0], [0, 1, 0], [0, 0, 1]]), r"one-hot / multi-hot rows of 0 "
                                                  r"and 1 values"),
]


def message(metric, *args):
    """The ValueError message of `metric.update_state(*args)`."""
    with pytest.raises(ValueError) as info:
        metric.update_state(*args)
    return str(info.value)


@pytest.mark.parametrize("labels, expected", BAD_LABELS)
def test_bad_labels_raise_when_concrete(labels, expected):
    for cls in METRICS.values():
        text = message(cls(num_classes=3), labels, SCORES3)
        assert re.search(r"Invalid value for argument `y_true`. Expected " + expected,
                         text), text
        assert "Received: y_true=" in text
        # A list and the backend's own tensor (when it holds the same values)
        # give the very same message.
        assert message(cls(num_classes=3), labels.tolist(), SCORES3) == text
        tensor = ops.convert_to_tensor(labels)
        if np.array_equal(ops.convert_to_numpy(tensor), labels, equal_nan=True):
            assert message(cls(num_classes=3), tensor,
                           ops.convert_to_tensor(SCORES3)) == text


def test_bad_labels_leave_the_state_untouched():
    metric = BalancedAccuracy(num_classes=3)
    metric.update_state([0, 1, 2], SCORES3)
    with pytest.raises(ValueError, match="argument `y_true`"):
        metric.update_state([0, 1, 7], SCORES3)
    assert float(metric.result()) == 1.0


def test_binary_single_score_labels_checked():
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected class ids < "
                       r"num_classes=2 \(found 2\)"):
        MacroF1(num_classes=2).update_state([[0], [2]], [[0.1], [0.9]])


def test_nan_scores_raise_when_concrete():
    scores = SCORES3.copy()
    scores[1, 2] = np.nan
    for y_pred in (scores, ops.convert_to_tensor(scores)):
        with pytest.raises(ValueError, match=r"argument `y_pred`. Expected scores "
                           r"without NaN \(NaN in sample\(s\) \[1\]\)"):
            MacroF1(num_classes=3).update_state([0, 1, 2], y_pred)
    with pytest.raises(ValueError, match=r"argument `y_pred`. Expected scores "
                       r"without NaN"):
        GeometricMean(num_classes=2).update_state([0, 1], [[0.2], [np.nan]])


@pytest.mark.parametrize("weights, found", [([1.0, np.nan, 1.0], r"\[nan\]"),
                                            ([1.0, -0.5, 1.0], r"\[-0.5\]"),
                                            ([np.inf, 1.0, 1.0], r"\[inf\]")])
def test_bad_sample_weight_raises_when_concrete(weights, found):
    for sample_weight in (np.array(weights), ops.convert_to_tensor(weights)):
        for cls in METRICS.values():
            with pytest.raises(ValueError, match=r"argument `sample_weight`. "
                               r"Expected finite weights >= 0 \(found " + found):
                cls(num_classes=3).update_state([0, 1, 2], SCORES3,
                                                sample_weight=sample_weight)


def test_valid_eager_tensors_of_every_label_form():
    """ids, an (N, 1) column and one-hot rows, as tensors: no false alarms."""
    labels = np.array([0, 1, 2, 2])
    scores = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    forms = [labels, labels[:, None], np.eye(3, dtype="float32")[labels],
             labels.astype("float32")]
    for y_true in forms:
        metric = BalancedAccuracy(num_classes=3)
        metric.update_state(ops.convert_to_tensor(y_true), ops.convert_to_tensor(
            scores), sample_weight=ops.convert_to_tensor([1.0, 1.0, 0.0, 2.0]))
        assert float(metric.result()) == pytest.approx((1 + 1 + 0) / 3)


def shaped(ids, num_classes, form):
    """Class ids as ids, an (N, 1) column or one-hot rows (all-zero when out of
    range)."""
    if form == "column":
        return ids[:, None]
    if form == "one_hot":
        out = np.zeros((ids.size, num_classes), dtype="float32")
        inside = (ids >= 0) & (ids < num_classes)
        out[np.flatnonzero(inside), ids[inside]] = 1
        return out
    return ids


FORMS = st.sampled_from(["ids", "column", "one_hot"])


@given(seed=st.integers(0, 2**16), form=FORMS)
@settings(max_examples=10)
def test_property_valid_labels_are_accepted_and_match_sklearn(seed, form):
    # One shape per form: eager jax compiles every op once per shape.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=12)
    scores = rng.normal(size=(12, 4)).astype("float32")
    metric = BalancedAccuracy(num_classes=4)
    metric.update_state(shaped(labels, 4, form), scores)
    np.testing.assert_allclose(float(metric.result()), oracle(
        "balanced_accuracy", labels, scores.argmax(-1)), rtol=1e-5, atol=1e-6)


@given(num_classes=st.integers(2, 6), size=st.integers(1, 20),
       seed=st.integers(0, 2**16), form=FORMS,
       offset=st.one_of(st.integers(0, 2**40), st.integers(-2**40, -1 - 6)))
def test_property_one_bad_id_anywhere_raises(num_classes, size, seed, form, offset):
    """Checked in NumPy before any backend op: cheap on every backend."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=size)
    labels[rng.integers(size)] = num_classes + offset  # >= C, or < 0
    scores = rng.normal(size=(size, num_classes)).astype("float32")
    metric = MacroF1(num_classes=num_classes)
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected .*"
                       r"Received: y_true="):
        metric.update_state(shaped(labels, num_classes, form), scores)
    assert not np.any(ops.convert_to_numpy(metric.confusion_matrix))


# Under jit nothing value-dependent raises: invalid labels are masked, NaN
# scores / weights make the result NaN. Tested through the traced code path
# (the concreteness check patched off, so it runs the same on every backend)
# and through a real compiled step where the backend has one.


@pytest.fixture
def traced(monkeypatch):
    monkeypatch.setattr(metrics_module, "is_concrete", lambda value: False)


def test_traced_invalid_labels_are_masked(traced):
    scores = np.eye(3, dtype="float32")[[0, 1, 2, 1, 0, 2]]
    metric = BalancedAccuracy(num_classes=3)
    metric.update_state(ops.convert_to_tensor([0, 1, 7, -1, 0.5, np.nan]), scores)
    matrix = ops.convert_to_numpy(metric.confusion_matrix)
    assert matrix.sum() == 2 and matrix[0, 0] == 1 and matrix[1, 1] == 1
    # An all-zero one-hot row is "no label" as well.
    one_hot = np.array([[1, 0, 0], [0, 0, 0]], dtype="float32")
    metric.update_state(ops.convert_to_tensor(one_hot), scores[:2])
    assert ops.convert_to_numpy(metric.confusion_matrix).sum() == 3


def test_traced_large_int64_ids_do_not_wrap(traced):
    ids = ops.convert_to_tensor(np.array([2**32, 2**32 + 1, 1]), dtype="int64")
    if keras.backend.standardize_dtype(ids.dtype) != "int64":
        pytest.skip("this backend holds no int64 tensors (jax without x64)")
    metric = MacroF1(num_classes=3)
    metric.update_state(ids, np.eye(3, dtype="float32")[[0, 1, 1]])
    matrix = ops.convert_to_numpy(metric.confusion_matrix)
    assert matrix.sum() == 1 and matrix[1, 1] == 1  # 2**32 did not become 0


def test_traced_nan_scores_and_weights_make_the_result_nan(traced):
    for cls in METRICS.values():
        scores = SCORES3.copy()
        scores[0, 0] = np.nan
        metric = cls(num_classes=3)
        metric.update_state([0, 1, 2], scores)
        assert np.isnan(float(metric.result()))
        for weights in ([1.0, np.nan, 1.0], [1.0, -1.0, 1.0], [np.inf, 1.0, 1.0]):
            metric = cls(num_classes=3)
            metric.update_state(ops.convert_to_tensor([0, 1, 2]), SCORES3,
                                sample_weight=ops.convert_to_tensor(weights))
            assert np.isnan(float(metric.result())), (cls, weights)
            metric.reset_state()  # a new epoch starts clean
            metric.update_state([0, 1, 2], SCORES3)
            assert float(metric.result()) == 1.0


def compiled(function):
    """`function` compiled by the backend (jax.jit / tf.function), or None."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(function)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    return None


def test_compiled_update_masks_and_never_raises():
    metric = BalancedAccuracy(num_classes=3)
    step = compiled(lambda variables, y_true, y_pred, weights:
                    metric.stateless_update_state(variables, y_true, y_pred, weights))
    if step is None:
        pytest.skip("torch compiles through dynamo; the traced path is tested with "
                    "the concreteness check patched off")
    scores = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    labels = np.array([0, 1, 7, -1], dtype="int32")
    initial = [ops.convert_to_tensor(v) for v in metric.variables]
    variables = step(initial, labels, scores, np.ones(4, "float32"))
    matrix = ops.convert_to_numpy(variables[0])
    assert matrix.sum() == 2 and matrix[0, 0] == 1 and matrix[1, 1] == 1
    weights = np.array([1.0, np.nan, 1.0, 1.0], dtype="float32")
    variables = step(initial, np.array([0, 1, 2, 1], dtype="int32"), scores, weights)
    assert np.isnan(float(metric.stateless_result(variables)))


def test_fit_with_valid_labels_and_nan_free_data_passes_the_checks():
    """The checks see a compiled step's tensors (jax, tf) or eager ones (torch)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3)).astype("float32")
    y = rng.integers(0, 3, size=24)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    # A loss that never reads the labels, so only the metric sees them.
    model.compile(loss=lambda y_true, y_pred: ops.mean(ops.square(y_pred), axis=-1),
                  metrics=[MacroF1(3)])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    bad = np.where(y == 0, -1, y)
    if keras.backend.backend() == "torch":
        # torch runs the step eagerly: bad labels raise at the batch.
        with pytest.raises(ValueError, match="argument `y_true`"):
            model.evaluate(x, bad, batch_size=8, verbose=0)
    else:
        # Compiled: the class-0 samples (now -1) are masked, nothing raises.
        results = model.evaluate(x, bad, batch_size=8, verbose=0, return_dict=True)
        keep = y != 0
        predictions = model.predict(x, batch_size=8, verbose=0).argmax(-1)
        np.testing.assert_allclose(results["macro_f1"],
                                   oracle("macro_f1", y[keep], predictions[keep]),
                                   rtol=1e-5, atol=1e-6)



def test_bad_num_classes():
    for value in (1, 0, -2, 2.0, "3", True, None):
        for cls in METRICS.values():
            with pytest.raises(ValueError,
                               match="argument `num_classes`. Expected an int"):
                cls(num_classes=value)


def test_num_classes_bounded_before_allocating():
    for value in (2**15 + 1, 10**9):
        with pytest.raises(ValueError, match=r"argument `num_classes`. Expected an "
                           r"int.*32768.*Received: num_classes="):
            MacroF1(num_classes=value)


def test_bad_threshold():
    with pytest.raises(ValueError, match="argument `threshold`. Expected a finite"):
        BalancedAccuracy(num_classes=2, threshold=float("nan"))


def test_bad_correction():
    with pytest.raises(ValueError, match=r"argument `correction`. Expected a finite"):
        GeometricMean(num_classes=3, correction=1.5)


def test_scores_not_matching_num_classes_raise():
    with pytest.raises(ValueError, match=r"argument `y_pred`. Expected scores of "
                       r"shape \(\.\.\., 4\)"):
        MacroF1(num_classes=4).update_state([0, 1], np.zeros((2, 3)))


def test_single_score_needs_two_classes():
    with pytest.raises(ValueError, match="argument `num_classes`. Expected 2 for a "
                       "single-score"):
        MacroF1(num_classes=3).update_state([0, 1], np.zeros((2, 1)))


def test_label_shape_mismatch_raises():
    with pytest.raises(ValueError, match="argument `y_true`. Expected class ids"):
        MacroF1(num_classes=3).update_state(np.zeros((2, 2)), np.zeros((2, 3)))


def test_config_round_trip():
    for cls in METRICS.values():
        metric = cls(num_classes=4, threshold=0.3, name="m", dtype="float32")
        config = metric.get_config()
        assert config["num_classes"] == 4 and config["threshold"] == 0.3
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(metric))
        assert type(restored) is cls
        assert restored.get_config() == config


def test_inside_fit_evaluate_and_saved_model(tmp_path):
    """Compiled train/test steps on the backend; result exact over the epoch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = (x[:, 0] > 0.4).astype("int32") + (x[:, 1] > 1.0).astype("int32")  # 3 classes
    weights = rng.uniform(0.2, 2.0, size=60).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[BalancedAccuracy(3), GeometricMean(3), MacroF1(3)],
        weighted_metrics=[BalancedAccuracy(3, name="weighted_balanced_accuracy")],
    )
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["balanced_accuracy"][0])
    results = model.evaluate(x, y, sample_weight=weights, batch_size=16, verbose=0,
                             return_dict=True)
    predictions = model.predict(x, batch_size=16, verbose=0).argmax(-1)
    for name in METRICS:
        np.testing.assert_allclose(results[name], oracle(name, y, predictions),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        results["weighted_balanced_accuracy"],
        oracle("balanced_accuracy", y, predictions, weights), rtol=1e-5)

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    again = restored.evaluate(x, y, sample_weight=weights, batch_size=16, verbose=0,
                              return_dict=True)
    for name, value in results.items():
        np.testing.assert_allclose(again[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["y_true", "y_pred"])
@pytest.mark.parametrize("value", [None, "0 1 2", {"a": 1}])
def test_missing_or_non_array_inputs(name, value):
    args = {"y_true": [0, 1, 2], "y_pred": SCORES3, name: value}
    with pytest.raises(ValueError, match=rf"argument `{name}`. Expected an array or "
                       rf"tensor. Received: {name}="):
        MacroF1(num_classes=3).update_state(**args)


def test_non_numeric_scores_and_weights():
    with pytest.raises(ValueError, match=r"argument `y_pred`. Expected numeric "
                       r"scores; got dtype <U"):
        MacroF1(num_classes=3).update_state([0], [["a", "b", "c"]])
    with pytest.raises(ValueError, match=r"argument `sample_weight`. Expected numeric "
                       r"weights; got dtype <U"):
        MacroF1(num_classes=3).update_state([0, 1, 2], SCORES3, sample_weight="abc")


def test_shape_errors_show_the_received_values():
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected class ids .* "
                       r"got shape \(2, 2\). Received: y_true=\[\[0, 1\], \[1, 0\]\]"):
        MacroF1(num_classes=3).update_state(np.array([[0, 1], [1, 0]]),
                                            np.eye(3)[[1, 0]])
