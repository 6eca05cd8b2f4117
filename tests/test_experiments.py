"""Tests of kimbalance.experiments, the logic the recipe scripts share (in-process)."""

import argparse
import json

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from kimbalance import data as kb_data
from kimbalance import experiments as ex


def _tiles(num_classes=4, per_class=3, side=4):
    """Tiles whose every pixel equals (class + 1) / num_classes: readable mosaics."""
    y = np.repeat(np.arange(num_classes), per_class)
    x = np.ones((len(y), side, side)) * ((y + 1) / num_classes)[:, None, None]
    return x.astype(np.float32), y


# --- command line -----------------------------------------------------------


def test_common_arguments_and_seeds():
    parser = ex.make_parser("d", epochs=7, recipe="demo")
    args = parser.parse_args(["--seed", "4", "--seeds", "3", "--backend", "jax"])
    assert args.epochs == 7 and args.out == "runs/demo" and args.backend == "jax"
    assert ex.seeds_from_args(args) == [4, 5, 6]


def test_seeds_must_be_positive():
    args = argparse.Namespace(seed=0, seeds=0)
    with pytest.raises(ValueError, match="Invalid value for argument `seeds`"):
        ex.seeds_from_args(args)


def test_smoke_settings_shrink_the_run():
    parser = ex.make_parser("d", epochs=30, recipe="demo")
    args = ex.smoke_settings(parser.parse_args(["--smoke", "--seeds", "5"]),
                             ratios=[1.0])
    assert (args.epochs, args.seeds, args.ratios) == (1, 1, [1.0])
    assert args.max_train and args.max_test
    full = ex.smoke_settings(parser.parse_args([]))
    assert full.epochs == 30 and full.max_train is None


# --- data -------------------------------------------------------------------


@pytest.mark.parametrize("n_max, ratio, expected", [
    (135, 100, 20.0), (135, 10, 10.0), (6000, 100, 100.0), (4, 100, 1.0),
    (50, 7, 7.0)])
def test_supported_ratio(n_max, ratio, expected):
    assert ex.supported_ratio(n_max, ratio) == expected


def test_prepare_images_scales_and_adds_channel():
    x = ex.prepare_images(np.array([[[0.0, 8.0], [16.0, 4.0]]]))
    assert x.shape == (1, 2, 2, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, :, 0], [[0, 0.5], [1, 0.25]])


def test_subsample_is_stratified_and_keeps_every_class():
    y = np.array([0] * 90 + [1] * 9 + [2])
    idx = ex.subsample(y, 20, seed=1)
    assert len(idx) <= 20 and set(y[idx]) == {0, 1, 2}
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(ex.subsample(y, None), np.arange(100))


def test_long_tail_split_lowers_an_unsupported_ratio():
    notes = []
    split = ex.long_tail_split("digits", ratio=100, log=notes.append)
    counts = split.counts
    assert "ratio=20" in split.description and len(notes) == 1
    assert "instead of 100" in notes[0]
    assert counts.max() / counts.min() == pytest.approx(20, rel=0.1)
    assert np.all(np.diff(counts) <= 0)  # class 0 is the head
    assert split.x_train.dtype == np.float32 and split.x_train.max() <= 1.0
    # the test set stays balanced
    test_counts = np.bincount(split.y_test)
    assert test_counts.max() - test_counts.min() <= 3  # digits is nearly balanced


def test_binary_pair_split_is_imbalanced_in_train_and_balanced_elsewhere():
    split = ex.binary_pair_split("digits", ratio=4, seed=0)
    counts = split.counts
    assert counts[0] == 4 * counts[1] or counts[0] // counts[1] == 4
    assert np.bincount(split.y_val)[0] == np.bincount(split.y_val)[1]
    assert np.bincount(split.y_test)[0] == np.bincount(split.y_test)[1]
    assert split.class_names == ["3", "5"]
    balanced = ex.binary_pair_split("digits", balanced=True, seed=0)
    assert abs(int(balanced.counts[0]) - int(balanced.counts[1])) <= 1


def test_binary_pair_split_needs_a_pair_for_unknown_datasets():
    with pytest.raises(ValueError, match="Invalid value for argument `pair`"):
        ex.binary_pair_split("cifar100")


def test_make_mosaics_labels_are_the_classes_present():
    x, y = _tiles()
    images, labels = ex.make_mosaics(x, y, 50, empty_prob=0.3, seed=3)
    assert images.shape == (50, 8, 8, 1) and labels.shape == (50, 4)
    for image, label in zip(images, labels, strict=True):
        values = {float(v) for v in np.unique(image[::4, ::4, 0])} - {0.0}
        present = {round(v * 4) - 1 for v in values}
        assert present == set(np.flatnonzero(label))
    assert labels.sum(axis=1).min() >= 1  # never an empty mosaic


def test_make_mosaics_follows_class_probabilities():
    x, y = _tiles()
    _, labels = ex.make_mosaics(x, y, 2000, class_probs=[8, 4, 2, 1], seed=0)
    freq = labels.mean(axis=0)
    assert np.all(np.diff(freq) < 0)  # long-tailed label frequencies
    _, none = ex.make_mosaics(x, y, 200, class_probs=[1, 1, 0, 1], seed=0)
    assert none[:, 2].sum() == 0


@pytest.mark.parametrize("kwargs, argument", [
    ({"class_probs": [1, 1]}, "class_probs"),
    ({"class_probs": [1, -1, 1, 1]}, "class_probs"),
    ({"empty_prob": 1.0}, "empty_prob"),
    ({"grid": 0}, "grid"),
])
def test_make_mosaics_rejects_bad_arguments(kwargs, argument):
    x, y = _tiles()
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        ex.make_mosaics(x, y, 4, **kwargs)


def test_make_mosaics_rejects_a_class_without_images():
    x, y = _tiles()
    with pytest.raises(ValueError, match="classes \\[4\\] have none"):
        ex.make_mosaics(x, y, 4, num_classes=5)


def test_mosaic_split_has_long_tailed_train_and_uniform_test():
    split = ex.mosaic_split("digits", num_train=600, num_val=100, num_test=400,
                            label_ratio=20)
    assert split.multilabel and split.num_classes == 10
    assert split.x_train.shape[1:] == (16, 16, 1)
    train_freq = split.y_train.mean(axis=0)
    assert train_freq[0] > 5 * train_freq[-1]
    test_freq = split.y_test.mean(axis=0)
    assert test_freq.max() < 2 * test_freq.min()


# --- methods ----------------------------------------------------------------


def test_select_methods_pulls_in_the_base_of_a_posthoc_method():
    names = [m.name for m in ex.select_methods(ex.LONG_TAIL_METHODS,
                                               "posthoc_la,focal")]
    assert names == ["ce", "posthoc_la", "focal"]
    assert [m.name for m in ex.select_methods(ex.BINARY_METHODS)][:2] == [
        "majority", "ce"]


def test_select_methods_rejects_unknown_names():
    with pytest.raises(ValueError, match="Invalid value for argument `methods`"):
        ex.select_methods(ex.LONG_TAIL_METHODS, ["nope"])


@pytest.mark.parametrize("registry", ["LONG_TAIL_METHODS", "MULTILABEL_METHODS"])
def test_every_trained_method_builds_its_loss(registry):
    counts = np.array([50, 20, 5])
    y = (np.arange(75)[:, None] % np.array([2, 3, 5]) == 0).astype(np.int64)
    info = ex.TaskInfo(counts=counts if registry == "LONG_TAIL_METHODS"
                       else y.sum(axis=0), y_train=y, epochs=10, num_classes=3)
    for method in getattr(ex, registry).values():
        if method.posthoc:
            assert method.base in getattr(ex, registry) and method.decide
            continue
        assert isinstance(method.loss(info), keras.losses.Loss), method.name


def test_drw_start_epoch():
    assert [ex.drw_start_epoch(e) for e in (1, 10, 15, 200)] == [0, 8, 12, 160]


# --- training ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_split():
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    y_train = np.repeat([0, 1, 2], [60, 20, 6])
    y_test = np.repeat([0, 1, 2], 20)
    x_train = centers[y_train] + rng.normal(size=(len(y_train), 2))
    x_test = centers[y_test] + rng.normal(size=(len(y_test), 2))
    return ex.Split(x_train.astype(np.float32), y_train, x_test.astype(np.float32),
                    y_test, ["a", "b", "c"], x_val=x_test.astype(np.float32),
                    y_val=y_test)


def _tiny_model(input_shape, num_classes, head):
    return ex.build_model("mlp", input_shape, num_classes, head=head)


def test_run_methods_trains_and_applies_posthoc_adjustment(tiny_split):
    methods = ex.select_methods(ex.LONG_TAIL_METHODS, ["posthoc_la"])
    results = ex.run_methods(methods, tiny_split, seeds=[0], log=None, epochs=2,
                             batch_size=32, verbose=0, model_fn=_tiny_model)
    ce, posthoc = results
    assert (ce.method, posthoc.method) == ("ce", "posthoc_la")
    assert len(ce.epoch_times) == 2 and ce.metrics["train_time"] > 0
    for key in ("accuracy", "balanced_accuracy", "g_mean", "macro_f1"):
        assert 0.0 <= ce.metrics[key] <= 1.0
    assert "val_accuracy" in ce.metrics and "val_accuracy" in posthoc.metrics
    log_prior = np.log(tiny_split.counts / tiny_split.counts.sum())
    np.testing.assert_allclose(posthoc.test_scores, ce.test_scores - log_prior,
                               rtol=1e-5, atol=1e-5)
    summary = ex.timing_summary(ce)
    assert summary["samples_per_s"] > 0


def test_augmented_methods_shift_the_training_images(monkeypatch):
    """`Method.augment` reaches the generator: the model sees shifted images."""
    rng = np.random.default_rng(1)
    y_train = np.repeat([0, 1, 2], [40, 16, 8])
    x_train = rng.random((len(y_train), 6, 6, 1)).astype(np.float32)
    split = ex.Split(x_train, y_train, x_train[:12], y_train[:12], ["a", "b", "c"])
    seen = []
    original = kb_data.RandomShiftFlip.__call__

    def spy(self, x, y=None, rng=None):
        out = original(self, x, y, rng=rng)
        seen.append((self.max_shift, self.horizontal_flip,
                     not np.array_equal(out, x)))
        return out

    monkeypatch.setattr(kb_data.RandomShiftFlip, "__call__", spy)
    for name in ("ldam_drw_aug", "cb_sampling_aug"):
        seen.clear()
        result = ex.run_method(ex.LONG_TAIL_METHODS[name], split, arch="mlp",
                               epochs=1, batch_size=16, verbose=0)
        assert 0.0 <= result.metrics["balanced_accuracy"] <= 1.0
        assert seen and all(s[:2] == (ex.AUGMENT_SHIFT, False) for s in seen)
        assert any(s[2] for s in seen)


def test_majority_mock_model_scores(tiny_split):
    s = tiny_split
    binary = ex.Split(s.x_train, (s.y_train == 2).astype(int), s.x_test,
                      (s.y_test == 2).astype(int), ["neg", "pos"], x_val=s.x_val,
                      y_val=(s.y_val == 2).astype(int))
    (result,) = ex.run_methods([ex.BINARY_METHODS["majority"]], binary, log=None)
    ex.positive_class_metrics([result])
    assert result.metrics["train_accuracy"] == pytest.approx(80 / 86)
    assert result.metrics["recall"] == 0.0
    assert result.metrics["balanced_accuracy"] == pytest.approx(0.5)


def test_run_method_refuses_a_posthoc_method(tiny_split):
    with pytest.raises(ValueError, match="Invalid value for argument `method`"):
        ex.run_method(ex.LONG_TAIL_METHODS["posthoc_la"], tiny_split)


# --- tables -----------------------------------------------------------------


def _runs():
    return [ex.RunResult("ce", 0, {"accuracy": 0.5, "train_time": 2.0}),
            ex.RunResult("ce", 1, {"accuracy": 0.7, "train_time": 4.0}),
            ex.RunResult("focal", 0, {"accuracy": 0.9, "train_time": 3.0})]


def test_summarize_means_and_stds_in_method_order():
    rows = ex.summarize(_runs())
    assert [r["method"] for r in rows] == ["ce", "focal"]
    assert rows[0]["accuracy"] == pytest.approx(0.6)
    assert rows[0]["accuracy_std"] == pytest.approx(0.1)
    assert rows[0]["seeds"] == 2 and rows[1]["accuracy_std"] == 0.0


def test_markdown_table_formats_rates_and_times():
    table = ex.markdown_table(ex.summarize(_runs()),
                              ["method", "accuracy", "train_time", "missing"])
    lines = table.splitlines()
    assert lines[0] == "| method | acc | train time (s) | missing |"
    assert lines[2] == "| ce | 60.0 ± 10.0 | 3.0 ± 1.0 | - |"
    assert lines[3] == "| focal | 90.0 | 3.0 | - |"


def test_write_results_writes_markdown_and_json(tmp_path):
    runs = _runs()
    rows = ex.summarize(runs)
    md, js = ex.write_results(tmp_path / "out", "demo",
                              table=ex.markdown_table(rows, ["method", "accuracy"]),
                              rows=rows, meta={"backend": "x"}, runs=runs,
                              extra={"arr": np.arange(2), "nan": float("nan")})
    assert "| ce | 60.0 ± 10.0 |" in md.read_text()
    payload = json.loads(js.read_text())
    assert payload["meta"] == {"backend": "x"} and len(payload["runs"]) == 3
    assert payload["arr"] == [0, 1] and payload["nan"] is None


def test_multilabel_report_matches_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < [0.5, 0.3, 0.1, 0.05, 0.0]).astype(int)
    scores = rng.normal(size=(200, 5)) + 2 * y
    report = ex.multilabel_report(y, scores)
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
    assert ex.multilabel_report(y, scores, thresholds=[0.3, 0.0])["per_label"][0][
        "recall"] == pytest.approx(0.5)


def test_multilabel_report_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="Invalid value for argument `scores`"):
        ex.multilabel_report(np.zeros((3, 2)), np.zeros((3, 3)))


def test_backend_info_names_the_backend():
    info = ex.backend_info()
    assert info["backend"] == keras.backend.backend() and info["device"]
