import json
import warnings

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.metrics import geometric_mean_score
from sklearn import metrics as skm

import kimbalance
from kimbalance.evaluation import EvaluationReport, evaluate


def _sklearn_oracle(y_true, y_pred, num_classes):
    with warnings.catch_warnings():
        # sklearn warns about classes predicted but absent from y_true.
        warnings.simplefilter("ignore")
        p, r, f, s = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=range(num_classes), zero_division=0)
        return {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "g_mean": geometric_mean_score(y_true, y_pred),
            "macro_f1": skm.f1_score(y_true, y_pred, average="macro"),
            "precision": p, "recall": r, "f1": f, "support": s,
            "confusion_matrix": skm.confusion_matrix(
                y_true, y_pred, labels=range(num_classes)),
        }


def _random_case(case, num_samples=300, num_classes=6):
    rng = np.random.default_rng(7)
    priors = np.geomspace(1.0, 0.05, num_classes)
    y = rng.choice(num_classes, size=num_samples, p=priors / priors.sum())
    logits = rng.normal(size=(num_samples, num_classes))
    logits[np.arange(num_samples), y] += 1.5
    if case == "class_absent_from_labels":
        y[y == 2] = 0  # class 2 is still predicted
    elif case == "class_never_predicted":
        logits[:, 3] -= 100.0
    elif case == "class_absent_from_both":
        y[y == 4] = 1
        logits[:, 4] -= 100.0
    return logits, y


@pytest.mark.parametrize("case", ["all_present", "class_absent_from_labels",
                                  "class_never_predicted", "class_absent_from_both"])
def test_scores_match_sklearn_and_imblearn(case):
    logits, y = _random_case(case)
    report = evaluate(logits, y)
    expected = _sklearn_oracle(y, logits.argmax(axis=1), logits.shape[1])
    for name in ("accuracy", "balanced_accuracy", "g_mean", "macro_f1"):
        np.testing.assert_allclose(getattr(report, name), expected[name],
                                   rtol=1e-12, atol=1e-15, err_msg=name)
    for name in ("precision", "recall", "f1", "support", "confusion_matrix"):
        np.testing.assert_allclose(getattr(report, name), expected[name],
                                   rtol=1e-12, err_msg=name)
    assert report.num_samples == len(y) and report.num_classes == logits.shape[1]


def test_g_mean_is_zero_when_a_predicted_class_has_no_sample():
    logits, y = _random_case("class_absent_from_labels")
    assert evaluate(logits, y).g_mean == 0.0


def test_probabilities_and_logits_give_the_same_report():
    logits, y = _random_case("all_present")
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert evaluate(probs, y).to_dict() == evaluate(logits, y).to_dict()


def test_label_predictions_and_label_forms():
    logits, y = _random_case("all_present")
    by_scores = evaluate(logits, y).to_dict()
    labels = logits.argmax(axis=1)
    assert evaluate(labels, y, num_classes=6).to_dict() == by_scores
    assert evaluate(labels.astype("float32"), y, num_classes=6).to_dict() == by_scores
    assert evaluate(logits, y[:, None]).to_dict() == by_scores
    assert evaluate(logits, np.eye(6)[y]).to_dict() == by_scores
    assert evaluate(logits, y=y).to_dict() == by_scores


def _oltr_shot_acc(preds, labels, train_labels, many=100, few=20):
    """OLTR's `shot_acc` (Liu et al. 2019, utils.py), transcribed."""
    train_count, test_count, correct = [], [], []
    for label in np.unique(labels):
        train_count.append(len(train_labels[train_labels == label]))
        test_count.append(len(labels[labels == label]))
        correct.append((preds[labels == label] == labels[labels == label]).sum())
    many_shot, median_shot, low_shot = [], [], []
    for i in range(len(train_count)):
        if train_count[i] > many:
            many_shot.append(correct[i] / test_count[i])
        elif train_count[i] < few:
            low_shot.append(correct[i] / test_count[i])
        else:
            median_shot.append(correct[i] / test_count[i])
    return np.mean(many_shot), np.mean(median_shot), np.mean(low_shot)


def test_shot_accuracy_matches_oltr():
    logits, y = _random_case("all_present")
    counts = np.array([500, 101, 100, 20, 19, 3])  # boundaries on both sides
    train_labels = np.repeat(np.arange(6), counts)
    report = evaluate(logits, y, class_counts=counts)
    expected = _oltr_shot_acc(logits.argmax(axis=1), y, train_labels)
    np.testing.assert_allclose(
        [report.many_shot_accuracy, report.medium_shot_accuracy,
         report.few_shot_accuracy], expected, rtol=1e-12)
    assert report.shot_classes == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    assert report.class_counts.tolist() == counts.tolist()


def test_shot_thresholds_are_configurable():
    logits, y = _random_case("all_present")
    counts = np.array([500, 101, 100, 20, 19, 3])
    train_labels = np.repeat(np.arange(6), counts)
    report = evaluate(logits, y, class_counts=counts, many_threshold=200,
                      few_threshold=5)
    expected = _oltr_shot_acc(logits.argmax(axis=1), y, train_labels, 200, 5)
    assert report.shot_classes == {"many": [0], "medium": [1, 2, 3, 4], "few": [5]}
    np.testing.assert_allclose(
        [report.many_shot_accuracy, report.medium_shot_accuracy,
         report.few_shot_accuracy], expected, rtol=1e-12)


def test_shot_accuracy_is_none_without_counts_or_for_an_empty_group():
    logits, y = _random_case("all_present")
    report = evaluate(logits, y)
    assert report.many_shot_accuracy is None and report.few_shot_accuracy is None
    assert report.shot_classes is None and report.class_counts is None
    no_few = evaluate(logits, y, class_counts=[500, 400, 300, 200, 150, 120])
    assert no_few.few_shot_accuracy is None and no_few.medium_shot_accuracy is None
    assert no_few.many_shot_accuracy == pytest.approx(no_few.balanced_accuracy)


def test_binary_sigmoid_scores():
    scores = np.array([[0.1], [0.5], [0.49], [0.9], [0.7]], dtype="float32")
    y = np.array([0, 1, 1, 1, 0])
    report = evaluate(scores, y)
    # score >= 0.5 is class 1 (the sklearn convention).
    assert report.confusion_matrix.tolist() == [[1, 1], [1, 2]]
    logits = np.log(scores) - np.log1p(-scores)
    assert (evaluate(logits, y, from_logits=True).confusion_matrix.tolist()
            == [[1, 1], [1, 2]])
    assert (evaluate(scores[:, 0], y, threshold=0.8).confusion_matrix.tolist()
            == [[2, 0], [2, 1]])
    with pytest.raises(ValueError, match="from_logits=True"):
        evaluate(logits, y)


def test_report_forms():
    logits, y = _random_case("all_present")
    names = ["a", "b", "c", "d", "e", "f"]
    counts = [500, 101, 100, 20, 19, 3]
    report = evaluate(logits, y, class_counts=counts, class_names=names)
    assert isinstance(report, EvaluationReport)
    data = report.to_dict()
    assert json.loads(report.to_json()) == data
    assert data["class_names"] == names and data["class_counts"] == counts
    assert data["recall"] == report.recall.tolist()
    assert set(report.summary()) <= set(data)
    text = str(report)
    assert "balanced accuracy" in text and "few-shot accuracy" in text
    assert f"{report.g_mean:.4f}" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["f", "3", str(report.support[5])] == rows[-1][:3]


def test_top_level_export():
    assert kimbalance.evaluate is evaluate
    assert "evaluate" in kimbalance.__all__
    assert "EvaluationReport" in kimbalance.__all__


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], self.y[part], np.ones(len(self.y[part]))


def test_model_arrays_and_pydataset_agree_with_predictions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype("float32")
    y = rng.integers(0, 3, size=50)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    expected = evaluate(model.predict(x, verbose=0), y).to_dict()
    assert evaluate(model, x, y, batch_size=16).to_dict() == expected
    assert evaluate(model, _Batches(x, y, 16)).to_dict() == expected
    with pytest.raises(ValueError, match="Invalid value for argument `x`"):
        evaluate(model, y=y)
    with pytest.raises(ValueError, match="Invalid value for argument `y`"):
        evaluate(model, x)
    with pytest.raises(ValueError, match="Invalid value for argument `y`.*PyDataset"):
        evaluate(model, _Batches(x, y, 16), y)
    with pytest.raises(ValueError, match="Invalid value for argument `batch_size`"):
        evaluate(model, x, y, batch_size=0)


_LOGITS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": [0, 1, 1]}, "argument `y`. Expected 2 labels"),
        ({"y": [0, 3]},
         r"argument `y`. Expected class ids < num_classes=3 \(found 3\). "
         r"Received: y=\[0, 3\]"),
        ({"y": [0, -1]}, r"argument `y`. Expected class ids >= 0"),
        ({"y": [0.5, 1]}, r"argument `y`. Expected integer class ids"),
        ({"y": ["a", "b"]}, r"argument `y`. Expected numeric labels"),
        ({"y": [0, 1], "class_counts": [5, 5]}, r"argument `class_counts`. Expected 3"),
        ({"y": [0, 1], "class_counts": [5, -5, 1]},
         r"argument `class_counts`. Expected counts >= 0. "
         r"Received: class_counts=\[5, -5, 1\]"),
        ({"y": [0, 1], "class_names": ["a", "b"]}, r"argument `class_names`"),
        ({"y": [0, 1], "class_names": "abc"}, r"argument `class_names`"),
        ({"y": [0, 1], "num_classes": 4},
         r"argument `model_or_predictions`. Expected 4"),
        ({"y": [0, 1], "many_threshold": -1}, r"argument `many_threshold`"),
        ({"y": [0, 1], "few_threshold": 500}, r"argument `few_threshold`"),
        ({"y": [0, 1], "threshold": 1.0}, r"argument `threshold`"),
        ({"y": [0, 1], "from_logits": "yes"}, r"argument `from_logits`"),
        ({"x": [0, 1], "y": [0, 1]}, r"argument `x`. Expected None when predictions"),
        ({}, r"argument `y`. Expected the true labels"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(_LOGITS, **kwargs)


@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), "finite values"),
        (np.zeros((2, 2, 2)), "shape"),
        (np.array([0, -2]), "class ids >= 0"),
        (np.zeros((0, 2)), "non-empty"),
        (None, "a Keras model or an array"),
    ],
)
def test_invalid_predictions(predictions, message):
    with pytest.raises(ValueError, match=f"argument `model_or_predictions`.*{message}"):
        evaluate(predictions, [0, 1])


# --- labels read by the one parser; multi-hot labels; memory (issue #10) ---------


def test_negative_label_message_shows_the_argument():
    # Before: "Received: y=-3" (the smallest label, not the argument).
    with pytest.raises(ValueError, match=r"argument `y`. Expected class ids >= 0 "
                       r"\(found -3\). Received: y=\[0, -3\]"):
        evaluate(_LOGITS[:, :2], [0, -3])
    with pytest.raises(ValueError, match=r"argument `model_or_predictions`. Expected "
                       r"class ids >= 0 \(found -2\). Received: "
                       r"model_or_predictions=\[0, -2\]"):
        evaluate(np.array([0, -2]), [0, 1])


def test_inconsistent_class_counts_show_the_argument():
    with pytest.raises(ValueError, match=r"argument `class_counts`. Expected 3 "
                       r"classes \(as model_or_predictions says; it gives 2\). "
                       r"Received: class_counts=\[5, 5\]"):
        evaluate(_LOGITS, [0, 1], class_counts=[5, 5])


def _multilabel_case(num_samples=60, num_labels=4, seed=3):
    rng = np.random.default_rng(seed)
    y = (rng.random((num_samples, num_labels)) < [0.6, 0.3, 0.1, 0.05]).astype(int)
    y[0, 3] = 1
    probs = np.clip(0.35 * y + rng.random(y.shape) * 0.7, 0.0, 1.0)
    return y, probs


def test_multi_hot_labels_get_the_multilabel_report():
    # Before: evaluate() took the argmax of each multi-hot row and reported
    # single-label numbers without a word.
    y, probs = _multilabel_case()
    report = evaluate(probs, y, threshold=0.4)
    assert isinstance(report, kimbalance.MultiLabelReport)
    decisions = (probs >= 0.4).astype(int)
    p, r, f, s = skm.precision_recall_fscore_support(y, decisions, zero_division=0)
    np.testing.assert_allclose(report.precision, p, rtol=1e-12)
    np.testing.assert_allclose(report.recall, r, rtol=1e-12)
    np.testing.assert_allclose(report.f1, f, rtol=1e-12)
    np.testing.assert_array_equal(report.support, s)
    np.testing.assert_allclose(
        report.micro_f1, skm.f1_score(y, decisions, average="micro"), rtol=1e-12)
    np.testing.assert_allclose(report.macro_f1, f.mean(), rtol=1e-12)
    ap = [skm.average_precision_score(y[:, j], probs[:, j]) for j in range(4)]
    np.testing.assert_allclose(report.average_precision, ap, rtol=1e-12)
    np.testing.assert_allclose(report.mean_average_precision, np.mean(ap))
    assert json.loads(report.to_json()) == report.to_dict()
    assert "micro-F1" in str(report) and report.num_samples == 60


def test_multilabel_logits_threshold_and_legacy_report_agree():
    y, probs = _multilabel_case()
    logits = np.log(probs + 1e-3) - np.log1p(-(probs - 1e-3))
    by_logits = evaluate(logits, y, from_logits=True)
    by_probs = evaluate(1.0 / (1.0 + np.exp(-logits)), y)
    np.testing.assert_allclose(by_logits.f1, by_probs.f1)
    legacy = kimbalance.multilabel_report(y, logits)
    assert legacy["macro_f1"] == by_logits.macro_f1
    assert legacy["micro_f1"] == by_logits.micro_f1
    assert legacy["map"] == by_logits.mean_average_precision


def test_multi_label_flag_forces_the_reading():
    y = np.eye(3, dtype=int)[[0, 1, 2, 1]]
    probs = np.eye(3)[[0, 1, 2, 2]] * 0.8 + 0.1
    assert isinstance(evaluate(probs, y), EvaluationReport)
    report = evaluate(probs, y, multi_label=True)
    assert isinstance(report, kimbalance.MultiLabelReport)
    with pytest.raises(ValueError, match=r"argument `y`. Expected one-hot rows"):
        evaluate(probs, [[1, 1, 0]] * 4, multi_label=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": np.full((60, 3), 0.5)},
         r"argument `model_or_predictions`. Expected scores of shape \(60, 4\)"),
        ({"predictions": np.full((60, 4), 2.0)},
         r"argument `model_or_predictions`. Expected probabilities in \[0, 1\] for "
         r"multi-hot labels \(pass from_logits=True"),
        ({"class_counts": [5, 5, 5, 5]},
         r"argument `class_counts`. Expected None for multi-hot labels"),
        ({"num_classes": 3}, r"argument `num_classes`. Expected 4 \(the number of "
         r"label columns of y\). Received: num_classes=3"),
        ({"class_names": ["a", "b"]},
         r"argument `class_names`. Expected 4 names \(one per class\)"),
        ({"multi_label": "yes"},
         r"argument `multi_label`. Expected a bool. Received: multi_label='yes'"),
        ({"y": np.full((60, 4), 0.5)},
         r"argument `y`. Expected one-hot / multi-hot rows of 0 and 1 values"),
    ],
)
def test_multilabel_invalid_arguments(kwargs, message):
    y, probs = _multilabel_case()
    predictions = kwargs.pop("predictions", probs)
    y = kwargs.pop("y", y)
    with pytest.raises(ValueError, match=message):
        evaluate(predictions, y, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([[1, 0], [0, 2]], np.zeros((2, 2))), {},
         r"argument `y_true`. Expected one-hot / multi-hot rows of 0 and 1"),
        (([[1, 0], [0, 1]], np.zeros((2, 3))), {},
         r"argument `scores`. Expected an array of shape \(2, 2\)"),
        (([[1, 0], [0, 1]], [[np.nan, 0.0], [0.0, 0.0]]), {},
         r"argument `scores`. Expected finite scores"),
        (([[1, 0], [0, 1]], np.zeros((2, 2))), {"thresholds": [0.0, 1.0, 2.0]},
         r"argument `thresholds`. Expected a scalar or 2 per-label thresholds"),
        (([[1, 0], [0, 1]], np.zeros((2, 2))), {"label_names": "ab"},
         r"argument `label_names`. Expected a sequence of names"),
    ],
)
def test_multilabel_report_invalid_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kimbalance.multilabel_report(*args, **kwargs)


def test_stray_huge_label_is_a_clear_error_before_allocating():
    # Before: a label of 1e15 raised MemoryError (or allocated C x C).
    predictions = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"argument `y`. Expected class ids < 65536 "
                       r"when num_classes is not given \(found 1000000000000000"):
        evaluate(predictions, [0, 1, 10**15])
    with pytest.raises(ValueError, match=r"argument `model_or_predictions`. Expected "
                       r"class ids < 65536 when num_classes is not given"):
        evaluate(np.array([0, 10**15, 1]), [0, 1, 1])
    with pytest.raises(ValueError, match=r"argument `y`. Expected class ids < "
                       r"num_classes=3 \(found 30000\)"):
        evaluate(_LOGITS[[0, 1, 1]], [0, 1, 30_000])


def test_many_classes_use_linear_memory():
    # 50,000 classes: a confusion matrix would take 20 GB; the scores need O(C).
    num_classes = 50_000
    rng = np.random.default_rng(0)
    y = rng.integers(0, num_classes, size=400)
    y_pred = np.where(rng.random(400) < 0.5, y, (y + 1) % num_classes)
    report = evaluate(y_pred, y, num_classes=num_classes)
    assert report.confusion_matrix is None and report.num_classes == num_classes
    assert report.accuracy == np.mean(y_pred == y) and report.num_samples == 400
    small = evaluate(y_pred % 7, y % 7, num_classes=7)
    reference = evaluate(y_pred % 7, y % 7, num_classes=7, confusion_matrix=False)
    assert reference.confusion_matrix is None
    assert small.summary() == reference.summary()
    assert small.confusion_matrix.sum() == 400
    with pytest.raises(ValueError, match=r"argument `confusion_matrix`. Expected "
                       r"False or 'auto' for 50000 classes"):
        evaluate(y_pred, y, num_classes=num_classes, confusion_matrix=True)
    with pytest.raises(ValueError, match=r"argument `confusion_matrix`. Expected "
                       r"'auto', True or False. Received: confusion_matrix='yes'"):
        evaluate(y_pred, y, confusion_matrix="yes")


def test_one_hot_width_must_match_the_predictions():
    with pytest.raises(ValueError, match=r"argument `y`. Expected one-hot rows of 3 "
                       r"columns, one per class \(as model_or_predictions says\)"):
        evaluate(_LOGITS, np.eye(4)[[0, 1]])


@settings(max_examples=15)
@given(num_samples=st.integers(1, 60), num_classes=st.integers(2, 9),
       seed=st.integers(0, 2**32 - 1), form=st.sampled_from(["ids", "one_hot",
                                                            "column"]))
def test_scores_match_sklearn_for_random_labels(num_samples, num_classes, seed,
                                                form):
    # The O(C) per-class counts give the confusion-matrix scores exactly.
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=num_samples)
    scores = rng.normal(size=(num_samples, num_classes))
    labels = {"ids": y, "one_hot": np.eye(num_classes)[y], "column": y[:, None]}
    report = evaluate(scores, labels[form])
    expected = _sklearn_oracle(y, scores.argmax(axis=1), num_classes)
    for name in ("accuracy", "balanced_accuracy", "g_mean", "macro_f1"):
        np.testing.assert_allclose(getattr(report, name), expected[name],
                                   rtol=1e-12, atol=1e-15, err_msg=name)
    for name in ("precision", "recall", "f1", "support", "confusion_matrix"):
        np.testing.assert_allclose(getattr(report, name), expected[name],
                                   rtol=1e-12, err_msg=name)
    lean = evaluate(scores, y, confusion_matrix=False)
    assert lean.confusion_matrix is None and lean.summary() == report.summary()
