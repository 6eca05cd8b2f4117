"""kimbalance.metrics against sklearn / imblearn, over several batches."""

import os
import warnings

import keras
import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score
from keras import ops
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

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


def test_out_of_range_tensor_labels_are_masked():
    scores = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    metric = BalancedAccuracy(num_classes=3)
    metric.update_state(ops.convert_to_tensor([0, 1, 7, -1]), scores)
    matrix = ops.convert_to_numpy(metric.confusion_matrix)
    assert matrix.sum() == 2 and matrix[0, 0] == 1 and matrix[1, 1] == 1
    # An all-zero one-hot row is "no label" as well.
    one_hot = np.array([[1, 0, 0], [0, 0, 0]], dtype="float32")
    metric.update_state(ops.convert_to_tensor(one_hot), scores[:2])
    assert ops.convert_to_numpy(metric.confusion_matrix).sum() == 3


def test_out_of_range_numpy_labels_raise():
    scores = np.eye(3, dtype="float32")[[0, 1]]
    for labels in ([0, 3], [-1, 0], np.array([[0], [5]])):
        with pytest.raises(ValueError, match=r"Expected class ids in \[0, 3\)"):
            MacroF1(num_classes=3).update_state(labels, scores)


def test_non_integer_numpy_labels_raise():
    with pytest.raises(ValueError, match="Expected integer class ids"):
        MacroF1(num_classes=3).update_state(np.array([0.0, 1.5]),
                                            np.eye(3)[[0, 1]])


def test_bad_num_classes():
    for value in (1, 0, -2, 2.0, "3", True, None):
        for cls in METRICS.values():
            with pytest.raises(ValueError,
                               match="argument `num_classes`. Expected an int >= 2"):
                cls(num_classes=value)


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
