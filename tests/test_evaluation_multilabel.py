"""kimbalance.evaluation.multilabel_report (moved there from the experiments)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from kimbalance.evaluation import multilabel_report


def test_multilabel_report_matches_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < [0.5, 0.3, 0.1, 0.05, 0.0]).astype(int)
    scores = rng.normal(size=(200, 5)) + 2 * y
    report = multilabel_report(y, scores)
    present = y.sum(axis=0) > 0
    decisions = (scores >= 0).astype(int)
    assert report["micro_f1"] == pytest.approx(
        f1_score(y, decisions, average="micro"))
    assert report["macro_f1"] == pytest.approx(
        f1_score(y[:, present], decisions[:, present], average="macro"))
    assert report["map"] == pytest.approx(
        average_precision_score(y[:, present], scores[:, present], average="macro"))
    assert report["per_label"][4]["ap"] is None and report["per_label"][4][
        "positives"] == 0


def test_multilabel_report_thresholds_shift_decisions():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    scores = np.array([[0.5, -1.0], [-1.0, 0.5], [0.2, 0.2]])
    assert multilabel_report(y, scores, thresholds=[0.3, 0.0])["per_label"][0][
        "recall"] == pytest.approx(0.5)


def test_multilabel_report_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="Invalid value for argument `scores`"):
        multilabel_report(np.zeros((3, 2)), np.zeros((3, 3)))
