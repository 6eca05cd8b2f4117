"""Imbalanced splits, imbalance statistics and stratified splits (NumPy only)."""

import json
import math

import numpy as np
import pytest

from kimbalance.data import (
    ImbalanceReport,
    binary_subset,
    describe,
    imbalanced_indices,
    linear_counts,
    long_tail_counts,
    make_imbalanced,
    step_counts,
    stratified_split,
)


def _official_long_tail(img_max, cls_num, ratio):
    # LDAM-DRW `get_img_num_per_cls` (imbalance_cifar.py), imb_type "exp".
    imb_factor = 1.0 / ratio
    return [int(img_max * (imb_factor ** (cls_idx / (cls_num - 1.0))))
            for cls_idx in range(cls_num)]


def _official_step(img_max, cls_num, ratio):
    # LDAM-DRW `get_img_num_per_cls`, imb_type "step" (defined for even cls_num).
    imb_factor = 1.0 / ratio
    return ([img_max] * (cls_num // 2)
            + [int(img_max * imb_factor)] * (cls_num // 2))


@pytest.fixture(scope="module")
def balanced():
    return np.repeat(np.arange(10), 500)


# ---------------------------------------------------------------------------
# Count profiles
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_max, num_classes, ratio", [
    (5000, 10, 100), (5000, 10, 50), (5000, 10, 10), (500, 100, 100),
    (500, 100, 10), (1000, 7, 37.5), (6000, 10, 200), (13, 3, 1),
])
def test_long_tail_counts_equal_the_official_expression(n_max, num_classes, ratio):
    counts = long_tail_counts(n_max, num_classes, ratio)
    assert counts.dtype == np.int64
    assert counts.tolist() == _official_long_tail(n_max, num_classes, ratio)


def test_long_tail_counts_known_split_sizes():
    # The published CIFAR-10-LT / CIFAR-100-LT training-set sizes.
    assert long_tail_counts(5000, 10, 100).sum() == 12406
    assert long_tail_counts(5000, 10, 10).sum() == 20431
    assert long_tail_counts(500, 100, 100).sum() == 10847


def test_long_tail_counts_are_non_increasing_from_n_max():
    counts = long_tail_counts(4000, 20, 64)
    assert counts[0] == 4000 and counts[-1] == int(4000 * (1 / 64))
    assert np.all(np.diff(counts) <= 0)


@pytest.mark.parametrize("n_max, num_classes, ratio", [
    (5000, 10, 100), (5000, 10, 10), (500, 100, 100), (40, 4, 3)])
def test_step_counts_equal_the_official_expression(n_max, num_classes, ratio):
    assert (step_counts(n_max, num_classes, ratio).tolist()
            == _official_step(n_max, num_classes, ratio))


@pytest.mark.parametrize("num_classes, fraction, n_minority", [
    (10, 0.1, 1), (10, 0.9, 9), (10, 0.25, 3), (5, 0.5, 3), (4, 0.25, 1),
    (3, 1 / 3, 1)])
def test_step_counts_minority_fraction(num_classes, fraction, n_minority):
    counts = step_counts(100, num_classes, 4, minority_fraction=fraction)
    expected = [100] * (num_classes - n_minority) + [25] * n_minority
    assert counts.tolist() == expected


def test_linear_counts_endpoints_and_steps():
    counts = linear_counts(5000, 10, 100)
    assert counts[0] == 5000 and counts[-1] == 50
    steps = -np.diff(counts)
    assert np.all(steps > 0) and steps.max() - steps.min() <= 1
    assert linear_counts(100, 3, 1).tolist() == [100, 100, 100]


@pytest.mark.parametrize("fn", [long_tail_counts, step_counts, linear_counts])
@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n_max=0, num_classes=10, ratio=10), r"argument `n_max`.*Received: n_max=0"),
    (dict(n_max=1.5, num_classes=10, ratio=10), r"`n_max`.*Received: n_max=1.5"),
    (dict(n_max=100, num_classes=1, ratio=10),
     r"`num_classes`.*>= 2.*Received: num_classes=1"),
    (dict(n_max=100, num_classes=10, ratio=0.5),
     r"`ratio`.*>= 1.0.*Received: ratio=0.5"),
    (dict(n_max=100, num_classes=10, ratio=float("nan")),
     r"`ratio`.*Received: ratio=nan"),
    (dict(n_max=10, num_classes=10, ratio=100),
     r"`ratio`.*at least one sample with n_max=10.*Received: ratio=100"),
])
def test_profile_bad_arguments(fn, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(**kwargs)


@pytest.mark.parametrize("fraction, pattern", [
    (0.0, r"`minority_fraction`.*> 0.0.*Received: minority_fraction=0.0"),
    (1.0, r"`minority_fraction`.*< 1.0.*Received: minority_fraction=1.0"),
    (0.01, r"`minority_fraction`.*between 1 and 9.*got 0.*minority_fraction=0.01"),
    (0.99, r"`minority_fraction`.*between 1 and 9.*got 10"),
])
def test_step_counts_bad_minority_fraction(fraction, pattern):
    with pytest.raises(ValueError, match=pattern):
        step_counts(100, 10, 10, minority_fraction=fraction)


# ---------------------------------------------------------------------------
# imbalanced_indices / make_imbalanced
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile, expected_fn", [
    ("long_tail", lambda: long_tail_counts(500, 10, 20)),
    ("step", lambda: step_counts(500, 10, 20)),
    ("linear", lambda: linear_counts(500, 10, 20)),
])
def test_imbalanced_indices_follow_the_profile(balanced, profile, expected_fn):
    idx = imbalanced_indices(balanced, profile=profile, ratio=20)
    assert idx.dtype == np.int64
    assert np.all(np.diff(idx) > 0)  # sorted and unique
    assert np.bincount(balanced[idx], minlength=10).tolist() == expected_fn().tolist()


def test_cifar10_lt_protocol():
    y = np.repeat(np.arange(10), 5000)
    idx = imbalanced_indices(y, ratio=100)
    assert idx.shape == (12406,)
    assert np.bincount(y[idx]).tolist() == _official_long_tail(5000, 10, 100)


def test_class_order_puts_the_head_class_first(balanced):
    order = [3, 7, 0, 1, 2, 4, 5, 6, 8, 9]
    idx = imbalanced_indices(balanced, ratio=10, class_order=order)
    counts = np.bincount(balanced[idx], minlength=10)
    assert counts[order].tolist() == long_tail_counts(500, 10, 10).tolist()
    # Class 9 keeps the same rank, hence the same count and the same samples.
    plain = imbalanced_indices(balanced, ratio=10)
    assert np.array_equal(idx[balanced[idx] == 9], plain[balanced[plain] == 9])


def test_explicit_counts_profile(balanced):
    counts = [500, 0, 7, 1, 2, 3, 4, 5, 6, 8]
    idx = imbalanced_indices(balanced, profile=counts)
    assert np.bincount(balanced[idx], minlength=10).tolist() == counts


def test_n_max_defaults_to_the_smallest_class():
    y = np.repeat(np.arange(4), [120, 90, 200, 150])
    idx = imbalanced_indices(y, ratio=9)
    assert np.bincount(y[idx]).tolist() == long_tail_counts(90, 4, 9).tolist()
    idx = imbalanced_indices(y, ratio=9, n_max=120, class_order=[0, 3, 2, 1])
    assert np.bincount(y[idx])[[0, 3, 2, 1]].tolist() == long_tail_counts(
        120, 4, 9).tolist()


def test_seed_determinism_and_nesting(balanced):
    a = imbalanced_indices(balanced, ratio=10, seed=3)
    b = imbalanced_indices(balanced, ratio=10, seed=3)
    c = imbalanced_indices(balanced, ratio=10, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # Sweeps nest: the ratio-100 split is a subset of the ratio-10 split.
    sub = imbalanced_indices(balanced, ratio=100, seed=3)
    assert np.isin(sub, a).all()
    # A class's samples depend on its own count only, not on the others'.
    step = imbalanced_indices(balanced, profile="step", ratio=10, seed=3)
    assert np.array_equal(a[balanced[a] == 0], step[balanced[step] == 0])


def test_selection_is_uniform_within_a_class():
    y = np.zeros(1000, dtype=np.int64)
    y[500:] = 1
    picks = np.zeros(1000)
    for seed in range(40):
        picks[imbalanced_indices(y, profile=[250, 50], seed=seed)] += 1
    # Each class-0 sample is kept with probability 1/2: the first half of the
    # class is not favoured (as taking the first n samples would do).
    assert picks[:250].mean() / 40 == pytest.approx(0.5, abs=0.05)
    assert picks[500:750].mean() / 40 == pytest.approx(0.1, abs=0.03)


def test_one_hot_and_column_labels_are_accepted(balanced):
    ids = imbalanced_indices(balanced, ratio=10)
    one_hot = np.eye(10, dtype=np.float32)[balanced]
    assert np.array_equal(imbalanced_indices(one_hot, ratio=10), ids)
    assert np.array_equal(imbalanced_indices(balanced[:, None], ratio=10), ids)
    assert np.array_equal(imbalanced_indices(balanced.astype(float), ratio=10), ids)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n_max=501), r"argument `n_max`.*class 0 needs 501 but has 500.*n_max=501"),
    (dict(profile=[501] + [1] * 9),
     r"argument `profile`.*class 0 needs 501 but has 500"),
    (dict(profile="zipf"), r"argument `profile`.*Received: profile='zipf'"),
    (dict(profile=[1, 2]), r"`profile`.*one count for each of the 10 classes"),
    (dict(profile=[1] * 11, num_classes=10),
     r"`profile`.*one count for each of the 10 classes \(got 11\)"),
    (dict(profile=[1] * 11), r"`profile`.*class 10 needs 1 but has 0"),
    (dict(profile=[1.5] * 10), r"`profile`. Expected whole-number counts"),
    (dict(profile=[-1] + [1] * 9), r"`profile`. Expected counts >= 0"),
    (dict(profile=None), r"`profile`. Expected one of \['long_tail', 'step', "
     r"'linear'\] or a 1-D sequence of per-class counts"),
    (dict(profile=[1e300] * 10), r"`profile`. Expected counts <= 2\*\*53"),
    (dict(profile=[0] * 10), r"`profile`.*at least one sample"),
    (dict(profile=[1] * 10, class_order=list(range(10))),
     r"`class_order`.*None when `profile` lists"),
    (dict(class_order=[0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
     r"argument `class_order`.*permutation of 0..9"),
    (dict(class_order=[0, 1, 2]), r"`class_order`.*permutation of 0..9"),
    (dict(class_order=[float(i) for i in range(10)]), r"`class_order`.*permutation"),
    (dict(ratio=0.9), r"`ratio`.*>= 1.0.*Received: ratio=0.9"),
    (dict(seed=-1), r"`seed`.*>= 0.*Received: seed=-1"),
    (dict(num_classes=5),
     r"argument `y`. Expected class ids < num_classes=5 \(found 9\)"),
    (dict(num_classes=True), r"argument `num_classes`. Expected an int in "
     r"\[2, 16777216\]. Received: num_classes=True"),
    (dict(minority_fraction=2.0), r"`minority_fraction`.*Received"),
])
def test_imbalanced_indices_bad_arguments(balanced, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        imbalanced_indices(balanced, **kwargs)


@pytest.mark.parametrize("y, pattern", [
    ([0.0, 1.0, np.nan], r"argument `y`.*finite labels.*Received: y=\[0.0, 1.0, nan\]"),
    ([0, -1, 1], r"`y`.*class ids >= 0"),
    ([0.5, 1.0], r"`y`.*integer class ids"),
    ([[1, 1], [0, 1]], r"`y`.*multi-hot rows are not supported"),
    ([], r"`y`.*non-empty"),
    (["a", "b"], r"`y`.*numeric labels"),
    (np.zeros((2, 2, 2)), r"`y`.*got shape \(2, 2, 2\)"),
])
def test_imbalanced_indices_bad_labels(y, pattern):
    with pytest.raises(ValueError, match=pattern):
        imbalanced_indices(y, ratio=2)


def test_missing_class_is_an_error():
    with pytest.raises(ValueError, match=r"`y`.*classes \[1\] have none"):
        imbalanced_indices([0, 0, 2, 2], ratio=2)


def test_make_imbalanced_arrays_and_dicts(balanced):
    x = np.arange(balanced.shape[0] * 2).reshape(-1, 2)
    x_sub, y_sub = make_imbalanced(x, balanced, ratio=10, seed=1)
    idx = imbalanced_indices(balanced, ratio=10, seed=1)
    assert np.array_equal(x_sub, x[idx]) and np.array_equal(y_sub, balanced[idx])
    feats = {"image": x, "meta": np.arange(balanced.shape[0])}
    d_sub, y_col = make_imbalanced(feats, balanced[:, None], ratio=10, seed=1)
    assert np.array_equal(d_sub["meta"], idx) and np.array_equal(d_sub["image"],
                                                                  x[idx])
    assert y_col.shape == (idx.shape[0], 1)


def test_make_imbalanced_length_mismatch(balanced):
    with pytest.raises(ValueError, match=r"argument `x`.*5000 samples.*got 10"):
        make_imbalanced(np.zeros((10, 2)), balanced, ratio=10)
    with pytest.raises(ValueError, match=r"argument `x\['b'\]`.*got 3"):
        make_imbalanced({"a": np.zeros(5000), "b": np.zeros(3)}, balanced, ratio=10)


# ---------------------------------------------------------------------------
# binary_subset
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar_like():
    return np.repeat(np.arange(10), 5000)


def test_binary_subset_cats_vs_dogs(cifar_like):
    idx, labels = binary_subset(cifar_like, positive=5, negative=3, ratio=4)
    assert np.bincount(cifar_like[idx], minlength=10)[[3, 5]].tolist() == [5000, 1250]
    assert np.array_equal(labels, (cifar_like[idx] == 5).astype(np.int64))
    assert labels.dtype == np.int64 and np.all(np.diff(idx) > 0)
    idx, labels = binary_subset(cifar_like, 5, 3, 4, num_negative=4800)
    assert np.bincount(labels).tolist() == [4800, 1200]
    assert set(np.unique(cifar_like[idx]).tolist()) == {3, 5}


def test_binary_subset_limited_by_the_positives():
    y = np.repeat([0, 1], [1000, 100])
    idx, labels = binary_subset(y, positive=1, negative=0, ratio=2.5)
    assert np.bincount(labels).tolist() == [250, 100]


def test_binary_subset_is_seeded(cifar_like):
    a, _ = binary_subset(cifar_like, 5, 3, 4, num_negative=100, seed=1)
    b, _ = binary_subset(cifar_like, 5, 3, 4, num_negative=100, seed=1)
    c, _ = binary_subset(cifar_like, 5, 3, 4, num_negative=100, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("args, kwargs, pattern", [
    ((5, 5, 4), {}, r"argument `negative`.*other than positive=5.*negative=5"),
    ((10, 3, 4), {}, r"argument `positive`.*present in y.*positive=10"),
    ((5, 3, 0.5), {}, r"`ratio`.*>= 1.0.*ratio=0.5"),
    ((5, 3, 4), dict(num_negative=5001), r"`num_negative`.*<= the 5000 samples"),
    ((5, 3, 4), dict(num_negative=3), r"`ratio`.*num_negative=3.*ratio=4"),
    ((-1, 3, 4), {}, r"`positive`.*>= 0.*positive=-1"),
])
def test_binary_subset_bad_arguments(cifar_like, args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        binary_subset(cifar_like, *args, **kwargs)


def test_binary_subset_not_enough_positives():
    y = np.repeat([0, 1], [1000, 10])
    with pytest.raises(ValueError, match=r"`num_negative`.*<= 40 \(class 1 has 10"):
        binary_subset(y, positive=1, negative=0, ratio=4, num_negative=1000)


# ---------------------------------------------------------------------------
# describe
# ---------------------------------------------------------------------------


def test_describe_single_label_by_hand():
    report = describe([2, 2, 2, 2, 0, 0, 1, 2])
    assert isinstance(report, ImbalanceReport)
    assert report.counts.tolist() == [2, 1, 5]
    assert report.imbalance_ratio == 5.0
    assert report.num_samples == 8 and not report.multi_label
    assert report.irlbl is None and report.scumble is None
    assert report.proportions.tolist() == [0.25, 0.125, 0.625]


def test_describe_missing_classes_are_left_out_of_the_ratio():
    report = describe([0, 0, 0, 0, 2], num_classes=4)
    assert report.counts.tolist() == [4, 0, 1, 0]
    assert report.imbalance_ratio == 4.0
    assert report.missing == (1, 3)
    assert "classes with no sample: [1, 3]" in str(report)


def test_describe_one_hot_equals_class_ids():
    y = np.array([0, 1, 1, 2, 2, 2])
    assert describe(np.eye(3)[y]).to_dict() == describe(y).to_dict()


def test_describe_multilabel_by_hand():
    # Positives per label: [4, 2, 1, 0] -> IRLbl [1, 2, 4, inf].
    y = np.array([[1, 1, 0, 0],
                  [1, 0, 0, 0],
                  [1, 0, 1, 0],
                  [1, 1, 0, 0],
                  [0, 0, 0, 0]])
    report = describe(y)
    assert report.multi_label
    assert report.counts.tolist() == [4, 2, 1, 0]
    assert report.irlbl.tolist() == [1.0, 2.0, 4.0, math.inf]
    assert report.imbalance_ratio == 4.0 and report.missing == (3,)
    assert report.mean_ir == pytest.approx(7 / 3, rel=1e-12)
    sd = math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    assert report.cvir == pytest.approx(sd / (7 / 3), rel=1e-12)
    # Per-sample SCUMBLE: 1 - geometric / arithmetic mean of the row's IRLbls.
    rows = [1 - math.sqrt(2) / 1.5, 0.0, 1 - 2 / 2.5, 1 - math.sqrt(2) / 1.5, 0.0]
    assert report.scumble == pytest.approx(sum(rows) / 5, rel=1e-12)


def test_describe_scumble_three_labels_by_hand():
    # Positives [3, 1, 1]: IRLbl [1, 3, 3].
    y = np.array([[1, 1, 1], [1, 0, 0], [1, 0, 0]])
    report = describe(y)
    one_row = 1 - (1 * 3 * 3) ** (1 / 3) / (7 / 3)
    assert report.scumble == pytest.approx(one_row / 3, rel=1e-12)
    assert report.cvir == pytest.approx(np.std([1, 3, 3], ddof=1) / (7 / 3))


def test_describe_forced_multilabel_and_single_label_width():
    y = np.eye(3)[[0, 0, 1, 2]]
    report = describe(y, multi_label=True)
    assert report.multi_label and report.irlbl.tolist() == [1.0, 2.0, 2.0]
    assert report.scumble == pytest.approx(0.0, abs=1e-12)
    single_label = describe([[1, 0], [1, 0]], multi_label=True)
    assert single_label.cvir == 0.0  # one present label: no dispersion


def test_describe_table_and_dict():
    report = describe(np.array([[1, 0], [1, 1], [1, 0]]), class_names=["a", "b"])
    text = str(report)
    assert text.splitlines()[0].split() == ["label", "name", "count", "share", "IRLbl"]
    assert text.splitlines()[3].split() == ["1", "b", "1", "0.3333", "3.000"]
    assert "MeanIR 2.0000" in text and "SCUMBLE" in text
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["irlbl"] == [1.0, 3.0] and data["class_names"] == ["a", "b"]
    assert "imbalance_ratio=3" in repr(report)


@pytest.mark.parametrize("y, kwargs, pattern", [
    ([0.0, np.nan], {}, r"argument `y`.*finite labels.*Received: y=\[0.0, nan\]"),
    ([[0, 2], [1, 0]], {}, r"`y`.*0 and 1 values"),
    ([0, 1, 2], dict(num_classes=2),
     r"argument `y`. Expected class ids < num_classes=2 \(found 2\)"),
    ([0, 10**15], {}, r"argument `y`. Expected class ids < 65536 when num_classes "
     r"is not given"),
    ([[1, 0], [0, 1]], dict(num_classes=3), r"`num_classes`.*2 \(the width of y\)"),
    ([0, 1], dict(class_names=["a"]), r"`class_names`.*2 names"),
    ([0, 1], dict(class_names="ab"), r"`class_names`. Expected a sequence of "
     r"names \(strings\), one per class. Received: class_names='ab'"),
    ([0, 1], dict(multi_label=True), r"`y`.*2-D multi-hot array when multi_label"),
    ([[1, 1], [0, 1]], dict(multi_label=False), r"`y`.*one-hot rows"),
    ([[0, 0], [0, 0]], {}, r"`y`.*at least one positive label"),
    ([0, 1], dict(multi_label="yes"), r"`multi_label`.*Received: multi_label='yes'"),
])
def test_describe_bad_input(y, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        describe(y, **kwargs)


# ---------------------------------------------------------------------------
# stratified_split
# ---------------------------------------------------------------------------


def _check_partition(train_idx, val_idx, n):
    assert train_idx.dtype == np.int64 and val_idx.dtype == np.int64
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])),
                          np.arange(n))


@pytest.mark.parametrize("test_size", [0.1, 0.25, 0.37])
def test_stratified_split_single_label_matches_sklearn(test_size):
    from sklearn.model_selection import train_test_split

    y = np.repeat(np.arange(6), [500, 251, 90, 33, 7, 2])
    train_idx, val_idx = stratified_split(y, test_size=test_size, seed=1)
    _check_partition(train_idx, val_idx, y.shape[0])
    ref_train, ref_val = train_test_split(np.arange(y.shape[0]), test_size=test_size,
                                          stratify=y, random_state=0)
    assert val_idx.shape == ref_val.shape and train_idx.shape == ref_train.shape
    counts = np.bincount(y)
    share = counts * val_idx.shape[0] / y.shape[0]
    got = np.bincount(y[val_idx], minlength=6)
    assert np.all((got == np.floor(share)) | (got == np.ceil(share)))
    assert np.abs(got - np.bincount(y[ref_val], minlength=6)).max() <= 1


def test_stratified_split_is_a_function_of_the_seed():
    y = np.repeat(np.arange(3), [40, 30, 30])
    a = stratified_split(y, test_size=0.3, seed=5)
    b = stratified_split(y, test_size=0.3, seed=5)
    c = stratified_split(y, test_size=0.3, seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def _multilabel_data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.3, 0.15, 0.08, 0.04, 0.02, 0.01, 0.005])
    y = (rng.random((n, rates.shape[0])) < rates).astype(np.int64)
    y[:, 3] |= y[:, 0] & (rng.random(n) < 0.2)  # correlated labels
    return y


def _label_deviation(y, val_idx, test_size):
    share = y[val_idx].sum(axis=0) / np.maximum(y.sum(axis=0), 1)
    return np.abs(share - test_size)


def test_stratified_split_multilabel_balances_every_label():
    y = _multilabel_data()
    train_idx, val_idx = stratified_split(y, test_size=0.2, seed=0)
    _check_partition(train_idx, val_idx, y.shape[0])
    assert abs(val_idx.shape[0] - 600) <= 10
    counts = y.sum(axis=0)
    # Each label's validation count is its exact share, give or take one.
    assert np.all(np.abs(y[val_idx].sum(axis=0) - 0.2 * counts) <= 1.0)
    # A random split of the same size is far worse on the rare labels.
    rng = np.random.default_rng(0)
    random_val = rng.permutation(y.shape[0])[:val_idx.shape[0]]
    assert (_label_deviation(y, val_idx, 0.2).max()
            < _label_deviation(y, random_val, 0.2).max())


def test_stratified_split_multilabel_against_iterstrat():
    iterstrat = pytest.importorskip("iterstrat.ml_stratifiers")
    y = _multilabel_data(seed=1)
    _, val_idx = stratified_split(y, test_size=0.25, seed=0)
    splitter = iterstrat.MultilabelStratifiedShuffleSplit(
        n_splits=1, test_size=0.25, random_state=0)
    _, ref_val = next(splitter.split(np.zeros(y.shape[0]), y))
    ours = _label_deviation(y, val_idx, 0.25)
    ref = _label_deviation(y, ref_val, 0.25)
    # Same algorithm: per-label proportions as close to 0.25 as the reference's.
    assert ours.max() <= ref.max() + 1.0 / y.sum(axis=0).min()
    assert abs(val_idx.shape[0] - ref_val.shape[0]) <= 0.01 * y.shape[0]


def test_stratified_split_multilabel_rows_without_labels():
    y = np.zeros((100, 3), dtype=np.int64)
    y[:10, 0] = 1
    y[10:14, 1] = 1
    y[14:16, [0, 2]] = 1
    train_idx, val_idx = stratified_split(y, test_size=0.5, seed=3)
    _check_partition(train_idx, val_idx, 100)
    assert val_idx.shape[0] == 50
    assert y[val_idx].sum(axis=0).tolist() == [6, 2, 1]


@pytest.mark.parametrize("test_size, pattern", [
    (0.0, r"argument `test_size`.*> 0.0.*Received: test_size=0.0"),
    (1.0, r"`test_size`.*< 1.0.*Received: test_size=1.0"),
    (1.5, r"`test_size`.*Received: test_size=1.5"),
    (float("nan"), r"`test_size`.*Received: test_size=nan"),
    ("0.2", r"`test_size`.*Received: test_size='0.2'"),
    (0.95, r"`test_size`.*at least one of the 10 samples"),
])
def test_stratified_split_bad_test_size(test_size, pattern):
    with pytest.raises(ValueError, match=pattern):
        stratified_split(np.arange(10) % 2, test_size=test_size)


def test_stratified_split_bad_labels():
    with pytest.raises(ValueError, match=r"argument `y`.*finite labels"):
        stratified_split([0.0, np.nan, 1.0], test_size=0.5)
    with pytest.raises(ValueError, match=r"argument `seed`.*seed=-2"):
        stratified_split([0, 1, 0, 1], test_size=0.5, seed=-2)


def test_single_class_labels_name_y_not_a_derived_num_classes():
    # Before: "Invalid value for argument `num_classes` ... Received:
    # num_classes=1", an argument the caller never passed.
    with pytest.raises(ValueError, match=r"argument `y`. Expected labels of at least "
                       r"2 classes \(or num_classes >= 2\). Received: y=\[0, 0, 0\]"):
        imbalanced_indices([0, 0, 0], ratio=2)


def test_multi_hot_targets_are_refused_by_imbalance_construction():
    with pytest.raises(ValueError, match=r"argument `y`. Expected single-label "
                       r"targets \(class ids or one-hot rows\)"):
        imbalanced_indices([[1, 1], [0, 1], [1, 0]], ratio=2)
