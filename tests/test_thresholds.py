"""kimbalance.thresholds against brute force over every candidate threshold."""

import os
import warnings

import keras
import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    matthews_corrcoef,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_curve,
)

from kimbalance.layers import ThresholdDecision
from kimbalance.thresholds import prior_correction, tune_threshold, tune_thresholds


def sklearn_value(metric, y, pred):
    """(feasible, value) of `metric` for 0/1 decisions, from sklearn / imblearn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if callable(metric):
            return True, metric(y, pred)
        if isinstance(metric, tuple):
            name, target = metric
            precision, recall = precision_score(y, pred), recall_score(y, pred)
            if name == "recall_at_precision":
                return precision >= target, recall
            return recall >= target, precision
        if metric == "f1":
            return True, f1_score(y, pred)
        if metric == "fbeta":
            return True, fbeta_score(y, pred, beta=2.0)
        if metric == "gmean":
            return True, geometric_mean_score(y, pred)
        if metric == "youden":
            return True, recall_score(y, pred) + recall_score(y, pred, pos_label=0) - 1
        return True, balanced_accuracy_score(y, pred)


def brute_force(y, scores, metric):
    """Best value over all distinct scores; ties -> the largest threshold."""
    results = []
    for threshold in np.unique(scores):
        feasible, value = sklearn_value(metric, y, (scores >= threshold).astype(int))
        if feasible:
            results.append((threshold, value))
    if not results:
        return None
    best = max(value for _, value in results)
    return max(t for t, value in results if value >= best - 1e-9), best


def random_problem(seed, size=60):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=size) < 0.3).astype(int)
    y[:2] = [0, 1]
    scores = np.round(rng.uniform(size=size) + 0.35 * y, 1)  # many ties
    return y, scores


ALL_METRICS = ["f1", "fbeta", "gmean", "youden", "balanced_accuracy",
               ("recall_at_precision", 0.6), ("recall_at_precision", 0.75),
               ("precision_at_recall", 0.5), ("precision_at_recall", 0.9),
               matthews_corrcoef]


def test_every_metric_against_brute_force():
    for seed in range(3):
        y, scores = random_problem(seed)
        for metric in ALL_METRICS:
            expected = brute_force(y, scores, metric)
            beta = 2.0 if metric == "fbeta" else 1.0
            if expected is None:
                with pytest.raises(ValueError, match="reachable precision target"):
                    tune_threshold(y, scores, metric=metric)
                continue
            threshold, value = tune_threshold(y, scores, metric=metric, beta=beta)
            assert threshold == expected[0], (seed, metric)
            assert value == pytest.approx(expected[1], abs=1e-12), (seed, metric)


def test_large_input_against_sklearn_curves():
    """O(N log N) on 20k continuous scores equals sklearn's PR and ROC curves."""
    rng = np.random.default_rng(4)
    y = (rng.uniform(size=20_000) < 0.05).astype(int)
    scores = rng.normal(size=20_000) + 1.2 * y
    precision, recall, pr_thresholds = precision_recall_curve(y, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    threshold, value = tune_threshold(y, scores, metric="f1")
    assert threshold == pr_thresholds[np.argmax(f1)]
    assert value == pytest.approx(f1.max(), rel=1e-12)
    fpr, tpr, roc_thresholds = roc_curve(y, scores, drop_intermediate=False)
    threshold, value = tune_threshold(y, scores, metric="youden")
    assert threshold == roc_thresholds[np.argmax(tpr - fpr)]
    assert value == pytest.approx((tpr - fpr).max(), rel=1e-12)


def test_ties_go_to_the_largest_threshold():
    # Thresholds 0.9 and 0.4 both give F1 = 2/3: 0.9 is returned.
    y = [1, 0, 0, 1, 0]
    scores = [0.9, 0.5, 0.4, 0.4, 0.1]
    assert tune_threshold(y, scores, metric="f1") == (0.9, pytest.approx(2 / 3))
    # Decisions are score >= threshold: the positive at exactly 0.4 counts.
    assert tune_threshold([0, 1, 1], [0.2, 0.4, 0.4]) == (0.4, 1.0)


def test_tune_thresholds_multilabel_and_one_vs_rest():
    rng = np.random.default_rng(6)
    y = (rng.uniform(size=(80, 3)) < [0.1, 0.3, 0.5]).astype(int)
    scores = np.round(rng.uniform(size=(80, 3)) + 0.3 * y, 2)
    thresholds, values = tune_thresholds(y, scores, metric="gmean",
                                         return_scores=True)
    for j in range(3):
        assert (thresholds[j], values[j]) == tune_threshold(y[:, j], scores[:, j],
                                                            metric="gmean")
    labels = rng.integers(0, 4, size=80)
    probs = rng.dirichlet(np.ones(4), size=80) + 0.2 * np.eye(4)[labels]
    one_vs_rest = tune_thresholds(labels[:, None], probs, metric=("fbeta"), beta=0.5)
    for j in range(4):
        expected, _ = tune_threshold(labels == j, probs[:, j], metric="fbeta", beta=0.5)
        assert one_vs_rest[j] == expected
    assert tune_thresholds(y[:, :1], scores[:, :1]).shape == (1,)


def test_tuned_threshold_decision_survives_save_and_load(tmp_path):
    """Tuned thresholds in a ThresholdDecision layer give the tuned decisions."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(96, 5)).astype("float32")
    y = np.stack([x[:, 0] > 1.0, x[:, 1] + x[:, 2] > 0.5, x[:, 3] < -0.8], axis=1)
    inputs = keras.Input((5,))
    probs = keras.layers.Dense(3, activation="sigmoid")(inputs)
    scorer = keras.Model(inputs, probs)
    scores = scorer.predict(x, batch_size=32, verbose=0)
    thresholds, f1 = tune_thresholds(y.astype(int), scores, return_scores=True)
    deployed = keras.Model(inputs, ThresholdDecision(thresholds)(probs))
    path = os.path.join(tmp_path, "deployed.keras")
    deployed.save(path)
    decisions = keras.saving.load_model(path).predict(x, batch_size=32, verbose=0)
    np.testing.assert_array_equal(decisions, scores >= thresholds)
    for j in range(3):
        assert f1_score(y[:, j], decisions[:, j]) == pytest.approx(f1[j], abs=1e-12)


def test_prior_correction_oracle():
    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(3), size=10)
    train = np.array([700.0, 250.0, 50.0])
    corrected = prior_correction(probs, train)
    expected = probs / (train / train.sum())
    np.testing.assert_allclose(corrected, expected / expected.sum(1, keepdims=True),
                               rtol=1e-12)
    test = np.array([0.2, 0.3, 0.5])
    corrected = prior_correction(probs, train / 10, test * 4)  # counts == priors
    expected = probs * test / (train / train.sum())
    np.testing.assert_allclose(corrected, expected / expected.sum(1, keepdims=True),
                               rtol=1e-12)
    # Same train and test priors: the identity (up to renormalisation).
    np.testing.assert_allclose(prior_correction(probs, train, train), probs,
                               rtol=1e-12)
    # A zero test prior removes that class.
    assert np.all(prior_correction(probs, train, [1, 1, 0])[:, 2] == 0)
    # Binary (N,) positive probabilities equal the (N, 2) form.
    positive = rng.uniform(size=8)
    np.testing.assert_allclose(
        prior_correction(positive, [0.9, 0.1]),
        prior_correction(np.stack([1 - positive, positive], 1), [0.9, 0.1])[:, 1])


def test_non_binary_labels():
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected binary labels"):
        tune_threshold([0, 1, 2], [0.1, 0.2, 0.3])


def test_single_class_labels():
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected both classes"):
        tune_threshold([1, 1, 1], [0.1, 0.2, 0.3])


def test_mismatched_lengths():
    with pytest.raises(ValueError, match=r"argument `y_score`. Expected 3 scores"):
        tune_threshold([0, 1, 1], [0.1, 0.2])


def test_non_finite_scores():
    with pytest.raises(ValueError, match=r"argument `y_score`. Expected finite"):
        tune_threshold([0, 1, 1], [0.1, np.nan, 0.3])


def test_unknown_metric():
    for metric in ("accuracy", ("recall_at", 0.5), 3, None):
        with pytest.raises(ValueError, match=r"argument `metric`. Expected one of"):
            tune_threshold([0, 1], [0.1, 0.2], metric=metric)


def test_bad_metric_target():
    for metric in (("recall_at_precision", 1.5), ("precision_at_recall", -0.1),
                   ("precision_at_recall", "high")):
        with pytest.raises(ValueError, match=r"Expected a target in \[0, 1\]"):
            tune_threshold([0, 1], [0.1, 0.2], metric=metric)
    with pytest.raises(ValueError, match=r"Expected a pair \('recall_at_precision'"):
        tune_threshold([0, 1], [0.1, 0.2], metric="recall_at_precision")


def test_bad_beta():
    with pytest.raises(ValueError, match=r"argument `beta`. Expected a finite float "
                       r"> 0"):
        tune_threshold([0, 1], [0.1, 0.2], metric="fbeta", beta=0.0)


def test_infeasible_recall_at_precision():
    with pytest.raises(ValueError, match=r"Expected a reachable precision target: "
                       r"the highest precision at any threshold is 0.666667"):
        tune_threshold([1, 0, 1, 0], [0.9, 0.9, 0.2, 0.1],
                       metric=("recall_at_precision", 0.9))


def test_callable_returning_nan():
    with pytest.raises(ValueError, match="Expected a callable returning a finite"):
        tune_threshold([0, 1], [0.1, 0.2], metric=lambda y, p: float("nan"))


def test_tune_thresholds_label_without_positives():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    with pytest.raises(ValueError, match=r"label 1 has no positives"):
        tune_thresholds(y, np.full((3, 2), 0.5))


def test_tune_thresholds_bad_shapes():
    with pytest.raises(ValueError, match="`y_score`. Expected a non-empty 2-D"):
        tune_thresholds([0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="`y_true`. Expected multi-hot labels"):
        tune_thresholds(np.zeros((3, 2)), np.zeros((3, 4)))


def test_tune_thresholds_class_ids_out_of_range():
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected class ids < "
                       r"num_classes=3 \(found 3\). Received: y_true=\[0, 1, 3\]"):
        tune_thresholds([0, 1, 3], np.full((3, 3), 0.3))


def test_prior_correction_bad_train_priors():
    for priors in ([0.5, 0.0], [-1, 2], [0, 0]):
        with pytest.raises(ValueError, match="argument `train_priors`. Expected "
                           "values > 0"):
            prior_correction(np.full((2, 2), 0.5), priors)


def test_prior_correction_test_priors_not_positive_sum():
    with pytest.raises(ValueError, match="argument `test_priors`. Expected priors or "
                       "counts with a positive sum"):
        prior_correction(np.full((2, 2), 0.5), [1, 1], [0, 0])


def test_prior_correction_wrong_lengths():
    with pytest.raises(ValueError, match="argument `train_priors`. Expected 2 priors"):
        prior_correction(np.full((2, 2), 0.5), [1, 1, 1])
    with pytest.raises(ValueError, match="argument `test_priors`. Expected 2 priors"):
        prior_correction(np.full((2, 2), 0.5), [1, 1], [1, 2, 3])


def test_prior_correction_bad_probs():
    for probs in ([[0.5, -0.1]], [[np.inf, 0.0]], np.zeros((2, 2, 2))):
        with pytest.raises(ValueError, match="argument `probs`"):
            prior_correction(probs, [1, 1])
    with pytest.raises(ValueError, match="argument `probs`. Expected rows with a "
                       "positive sum"):
        prior_correction([[0.0, 0.0]], [1, 1])
    with pytest.raises(ValueError, match="argument `test_priors`. Expected a positive "
                       "prior"):
        prior_correction([[1.0, 0.0]], [1, 1], [0, 1])


# --- bad input kinds (issue #10): y_true / y_score shapes and values -------------


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        ([0.0, np.nan, 1.0], [0.1, 0.2, 0.3],
         r"argument `y_true`. Expected finite labels \(no NaN or inf\). "
         r"Received: y_true=\[0.0, nan, 1.0\]"),
        (["a", "b"], [0.1, 0.2], r"argument `y_true`. Expected numeric labels"),
        ([], [], r"argument `y_true`. Expected a non-empty array of labels"),
        ([[0, 1], [1, 0]], [0.1, 0.2],
         r"argument `y_true`. Expected a 1-D array of binary labels \(got shape "
         r"\(2, 2\)\)"),
        ([0, 1], [[0.1, 0.9], [0.2, 0.8]],
         r"argument `y_score`. Expected a non-empty 1-D array \(got shape \(2, 2\)\)"),
        ([0, 1], ["x", "y"], r"argument `y_score`. Expected numeric scores"),
        ([0, 1], [0.1, np.inf], r"argument `y_score`. Expected finite scores.*"
         r"Received: y_score=\[0.1, inf\]"),
        ([0, 0.5, 1], [0.1, 0.2, 0.3], r"argument `y_true`. Expected binary labels "
         r"\(0/1 or booleans\). Received: y_true=\[0, 0.5, 1\]"),
    ],
)
def test_tune_threshold_bad_inputs(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        tune_threshold(y_true, y_score)


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        ([[0, 2], [1, 0]], np.zeros((2, 2)),
         r"argument `y_true`. Expected one-hot / multi-hot rows of 0 and 1"),
        ([0.5, 1.0, 0.0], np.zeros((3, 2)),
         r"argument `y_true`. Expected integer class ids"),
        ([-1, 1, 0], np.zeros((3, 2)), r"argument `y_true`. Expected class ids >= 0"),
        ([0, 1], np.zeros((3, 2)), r"argument `y_true`. Expected multi-hot labels "
         r"of shape \(3, 2\) or 3 class ids"),
        ([[0, 1]] * 3, [[0.1, np.nan]] * 3, r"argument `y_score`. Expected finite"),
        ([[0, 1]] * 3, [["a", "b"]] * 3, r"argument `y_score`. Expected numeric"),
    ],
)
def test_tune_thresholds_bad_inputs(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        tune_thresholds(y_true, y_score)


def test_label_forms_agree():
    rng = np.random.default_rng(0)
    ids = np.r_[0, 1, 2, rng.integers(0, 3, size=27)]
    scores = rng.random((30, 3))
    by_ids = tune_thresholds(ids, scores)
    np.testing.assert_array_equal(tune_thresholds(ids[:, None], scores), by_ids)
    np.testing.assert_array_equal(tune_thresholds(np.eye(3)[ids], scores), by_ids)
    booleans = rng.random(30) < 0.4
    booleans[:2] = [True, False]
    np.testing.assert_array_equal(
        tune_threshold(booleans, scores[:, 0]),
        tune_threshold(booleans.astype(float)[:, None], scores[:, :1]))


def test_messages_show_y_true_as_given():
    # Before: the one-hot matrix built from the class ids was shown.
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected positives and "
                       r"negatives in every label column \(label 2 has no "
                       r"positives\). Received: y_true=\[0, 0, 1\]"):
        tune_thresholds([0, 0, 1], np.full((3, 3), 0.5))
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected both classes "
                       r"\(0 and 1\) present. Received: y_true=\[\[True\], \[True\]\]"):
        tune_threshold([[True], [True]], [0.1, 0.2])


def test_return_scores_is_a_bool():
    # Before: return_scores="no" was truthy and returned a tuple.
    with pytest.raises(ValueError, match=r"argument `return_scores`. Expected a bool. "
                       r"Received: return_scores='no'"):
        tune_thresholds([[0, 1], [1, 0]], np.eye(2), return_scores="no")
