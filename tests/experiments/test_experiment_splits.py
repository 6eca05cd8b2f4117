"""kimbalance.experiments.splits: long-tail, binary-pair and mosaic splits."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kimbalance.experiments import splits as ex


def _tiles(num_classes=4, per_class=3, side=4):
    """Tiles whose every pixel equals (class + 1) / num_classes: readable mosaics."""
    y = np.repeat(np.arange(num_classes), per_class)
    x = np.ones((len(y), side, side)) * ((y + 1) / num_classes)[:, None, None]
    return x.astype(np.float32), y


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
    ({"class_probs": [1, np.nan, 1, 1]}, "class_probs"),
    ({"class_probs": ["a", "b", "c", "d"]}, "class_probs"),
    ({"empty_prob": float("nan")}, "empty_prob"),
    ({"num_classes": 0}, "num_classes"),
    ({"seed": 1.5}, "seed"),
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


# --- subsample keeps every class (defect 5) -----------------------------------


@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=8),
       extra=st.integers(0, 200), seed=st.integers(0, 2**16))
def test_subsample_keeps_every_class_and_the_promised_size(sizes, extra, seed):
    """Every class of `y` stays, exactly min(max_count, len(y)) sorted indices.

    The old final trim drew `max_count` of the per-class picks at random and
    could drop a class (and returned fewer samples than promised).
    """
    rng = np.random.default_rng(seed)
    classes = rng.permutation(40)[:len(sizes)]  # arbitrary, non-contiguous ids
    y = rng.permutation(np.repeat(classes, sizes))
    max_count = len(sizes) + extra
    idx = ex.subsample(y, max_count, seed=seed)
    assert len(idx) == min(max_count, len(y))
    assert set(y[idx].tolist()) == set(y.tolist())
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < len(y)
    np.testing.assert_array_equal(idx, ex.subsample(y, max_count, seed=seed))


def test_subsample_old_failure_case():
    y = np.array([2, 3, 1, 1, 3, 4, 0, 0, 3, 1, 2, 0, 4, 2, 4, 3])
    idx = ex.subsample(y, 13, seed=4)
    assert len(idx) == 13 and set(y[idx]) == set(y)


def test_subsample_proportions():
    y = np.repeat([0, 1, 2], [600, 300, 100])
    counts = np.bincount(y[ex.subsample(y, 100, seed=0)])
    np.testing.assert_array_equal(counts, [60, 30, 10])


@pytest.mark.parametrize("args, kwargs, message", [
    ((np.array([0, 1, 2, 2]), 2), {}, "argument `max_count`. Expected an int >= 3"),
    ((np.array([0, 1]), 0), {}, "argument `max_count`"),
    ((np.array([0, 1]), 1.5), {}, "argument `max_count`"),
    ((np.array([0, 1]), 1), {"seed": "a"}, "argument `seed`"),
    ((np.array([0.5, 1]), 1), {}, "argument `y`"),
    (("labels", 1), {}, "argument `y`"),
])
def test_subsample_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ex.subsample(*args, **kwargs)


# --- Split.ratio and argument checks -------------------------------------------


def test_splits_record_the_ratio_they_used():
    split = ex.long_tail_split("digits", ratio=100, log=None, max_train=400)
    assert split.ratio == 5.0  # 40 samples per class leave >= 5 at ratio 5
    assert split.description.endswith("ratio=5")
    counts = split.counts
    assert counts.max() / counts.min() == pytest.approx(5, rel=0.2)
    binary = ex.binary_pair_split("digits", ratio=3, seed=0)
    assert binary.ratio == 3.0
    assert ex.binary_pair_split("digits", balanced=True).ratio == 1.0
    mosaic = ex.mosaic_split("digits", num_train=20, num_val=10, num_test=10,
                             label_ratio=7)
    assert mosaic.ratio == 7.0


@pytest.mark.parametrize("function, kwargs, message", [
    (ex.long_tail_split, {"ratio": float("inf")}, "argument `ratio`"),
    (ex.long_tail_split, {"ratio": 0.5}, "argument `ratio`. Expected a finite float"),
    (ex.long_tail_split, {"profile": "zipf"}, "argument `profile`"),
    (ex.long_tail_split, {"max_train": 0}, "argument `max_train`"),
    (ex.long_tail_split, {"log": "print"}, "argument `log`"),
    (ex.long_tail_split, {"name": 3}, "argument `name`"),
    (ex.binary_pair_split, {"ratio": float("nan")}, "argument `ratio`"),
    (ex.binary_pair_split, {"val_fraction": 1.0}, "argument `val_fraction`"),
    (ex.binary_pair_split, {"pair": (3, 3)}, "argument `pair`"),
    (ex.binary_pair_split, {"pair": "35"}, "argument `pair`"),
    (ex.binary_pair_split, {"balanced": "no"}, "argument `balanced`"),
    (ex.mosaic_split, {"label_ratio": float("inf")}, "argument `label_ratio`"),
    (ex.mosaic_split, {"num_train": 0}, "argument `num_train`"),
    (ex.supported_ratio, {"n_max": 0, "ratio": 10}, "argument `n_max`"),
    (ex.supported_ratio, {"n_max": 10, "ratio": float("inf")}, "argument `ratio`"),
    (ex.supported_ratio, {"n_max": 10, "ratio": 10, "min_tail": 0},
     "argument `min_tail`"),
])
def test_split_functions_reject_bad_arguments(function, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(**kwargs)


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 3)), "argument `x`. Expected numeric images"),
    (np.array([["a"]]), "argument `x`"),
    (np.full((1, 2, 2), np.nan), "argument `x`. Expected finite"),
])
def test_prepare_images_rejects_bad_images(x, message):
    with pytest.raises(ValueError, match=message):
        ex.prepare_images(x)


def test_split_checks_lengths_and_ratio():
    x, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="argument `y_train`. Expected one label"):
        ex.Split(x, y[:3], x, y, ["a", "b"])
    with pytest.raises(ValueError, match="argument `ratio`"):
        ex.Split(x, y, x, y, ["a", "b"], ratio=float("inf"))
    with pytest.raises(ValueError, match="argument `x_val`"):
        ex.Split(x, y, x, y, ["a", "b"], y_val=y)


def test_make_mosaics_rejects_negative_labels():
    x, y = _tiles()
    with pytest.raises(ValueError, match="argument `y`"):
        ex.make_mosaics(x, -y, 4)
