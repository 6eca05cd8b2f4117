"""kimbalance.weights: counts, class-weight schemes, pos_weights, sample_weights.

Oracles: sklearn's compute_class_weight / compute_sample_weight("balanced"),
the class-balanced-loss formula of Cui et al. (2019) in float64 as in their
official code (weights = (1 - beta) / (1 - beta**n), scaled to sum to C), and
torch's BCEWithLogitsLoss pos_weight convention (num_negative / num_positive).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from kimbalance.weights import (
    SCHEMES,
    class_counts,
    class_weights,
    pos_weights,
    resolve_class_weight,
    sample_weights,
)

COUNTS = np.array([900, 250, 60, 7])


def _labels(counts, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)),
                                                             counts))


# --- class_counts -----------------------------------------------------------------


def test_class_counts_of_every_label_form():
    y = _labels(COUNTS)
    onehot = np.eye(4, dtype="float32")[y]
    assert class_counts(y).tolist() == COUNTS.tolist()
    assert class_counts(y[:, None]).tolist() == COUNTS.tolist()
    assert class_counts(onehot).tolist() == COUNTS.tolist()
    assert class_counts(y.astype("float64")).tolist() == COUNTS.tolist()
    assert class_counts(y, num_classes=6).tolist() == COUNTS.tolist() + [0, 0]
    multi_hot = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    assert class_counts(multi_hot).tolist() == [1, 2, 0]
    assert class_counts(y).dtype == np.int64


# --- class_weights ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_balanced_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 500, size=7)
    y = _labels(counts, seed)
    want = compute_class_weight("balanced", classes=np.arange(7), y=y)
    np.testing.assert_allclose(class_weights(class_counts(y), "balanced"), want,
                               rtol=1e-12)
    np.testing.assert_allclose(sample_weights(y, "balanced"),
                               compute_sample_weight("balanced", y), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999, 0.9999, 0.999999])
def test_effective_number_equals_cui_formula(beta):
    n = COUNTS.astype(np.float64)
    raw = (1.0 - beta) / (1.0 - np.power(beta, n))
    want = raw / raw.sum() * len(n)
    got = class_weights(COUNTS, "effective_number", beta=beta)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert got.dtype == np.float64


def test_scaled_schemes_sum_to_num_classes_and_follow_their_power():
    n = COUNTS.astype(np.float64)
    for scheme, exponent in [("inverse", 1.0), ("sqrt_inverse", 0.5)]:
        got = class_weights(COUNTS, scheme)
        np.testing.assert_allclose(got, n**-exponent / (n**-exponent).sum() * 4)
    for power in (0.0, 0.3, 2.0):
        got = class_weights(COUNTS, "power", power=power)
        np.testing.assert_allclose(got.sum(), 4.0)
        np.testing.assert_allclose(got, n**-power / (n**-power).sum() * 4)
    np.testing.assert_array_equal(class_weights(COUNTS, "none"), np.ones(4))
    # Effective number interpolates: beta -> 0 is uniform, beta -> 1 inverse.
    np.testing.assert_allclose(class_weights(COUNTS, "effective_number", beta=0.0),
                               np.ones(4))
    np.testing.assert_allclose(
        class_weights(COUNTS, "effective_number", beta=1 - 1e-12),
        class_weights(COUNTS, "inverse"), rtol=1e-6)
    assert set(SCHEMES) == {"balanced", "inverse", "sqrt_inverse", "power",
                            "effective_number", "none"}


def test_allow_missing_gives_zero_weight_and_keeps_present_mean_one():
    counts = [40, 0, 10]
    for scheme in ("inverse", "sqrt_inverse", "power", "effective_number"):
        got = class_weights(counts, scheme, allow_missing=True)
        assert got[1] == 0.0
        np.testing.assert_allclose(got.sum(), 2.0)
    balanced = class_weights(counts, "balanced", allow_missing=True)
    np.testing.assert_allclose(balanced, [50 / (3 * 40), 0.0, 50 / (3 * 10)])


# --- pos_weights ----------------------------------------------------------------


def test_pos_weights_is_negatives_over_positives():
    rng = np.random.default_rng(3)
    y = (rng.random((200, 5)) < [0.5, 0.2, 0.05, 0.3, 0.9]).astype("int64")
    positives = y.sum(0)
    np.testing.assert_allclose(pos_weights(y), (200 - positives) / positives)
    assert pos_weights([1, 0, 0, 0]).tolist() == [3.0]
    assert pos_weights([[1, 0], [0, 0]], allow_missing=True).tolist() == [1.0, 1.0]


# --- sample_weights ---------------------------------------------------------------


def test_single_label_sample_weights_index_the_class_weights():
    y = _labels([5, 3, 2])
    weights = [1.0, 2.0, 5.0]
    np.testing.assert_array_equal(sample_weights(y, weights), np.asarray(weights)[y])
    np.testing.assert_array_equal(sample_weights(y, dict(enumerate(weights))),
                                  np.asarray(weights)[y])
    np.testing.assert_array_equal(sample_weights(y[:, None], weights),
                                  np.asarray(weights)[y])
    np.testing.assert_array_equal(sample_weights(np.eye(3)[y], weights),
                                  np.asarray(weights)[y])
    for scheme in ("inverse", "effective_number"):
        np.testing.assert_allclose(sample_weights(y, scheme),
                                   class_weights(class_counts(y), scheme)[y])


def test_multi_label_sample_weights_mean_of_active_labels():
    y = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0], [1, 1, 1]])
    weights = np.array([1.0, 3.0, 8.0])
    got = sample_weights(y, weights)
    np.testing.assert_allclose(got, [2.0, 8.0, 1.0, 4.0])
    counts = y.sum(0)
    np.testing.assert_allclose(
        sample_weights(y, "inverse")[[0, 1, 3]],
        [(y[i] * class_weights(counts, "inverse")).sum() / y[i].sum()
         for i in (0, 1, 3)])
    assert sample_weights(y, "inverse")[2] == 1.0


def test_resolve_class_weight_forms():
    np.testing.assert_array_equal(resolve_class_weight({1: 2.0, 0: 1.0}, 2), [1, 2])
    np.testing.assert_array_equal(resolve_class_weight((3, 4), 2), [3.0, 4.0])
    np.testing.assert_allclose(resolve_class_weight("inverse", 2, counts=[1, 3]),
                               [1.5, 0.5])


# --- errors: one test per check ----------------------------------------------------


ERRORS = {
    "labels_empty": (lambda: class_counts([]),
                     r"argument `y`. Expected a non-empty array of labels"),
    # Rank-3 labels are id maps now (segmentation); fractional maps are not.
    "labels_fractional_map": (lambda: class_counts(np.full((2, 2, 2), 0.5)),
                              r"argument `y`. Expected integer class ids"),
    "labels_nan": (lambda: class_counts([0.0, np.nan]),
                   r"argument `y`. Expected finite labels.*Received: y=\[0.0, nan\]"),
    "labels_strings": (lambda: class_counts(["a", "b"]),
                       r"argument `y`. Expected numeric labels; got dtype <U1"),
    "labels_ragged": (lambda: class_counts([[0, 1], [1]]),
                      r"argument `y`. Expected an array of labels"),
    "labels_negative": (lambda: class_counts([0, -2, 1]),
                        r"argument `y`. Expected class ids >= 0 \(found -2\). "
                        r"Received: y=\[0, -2, 1\]"),
    "labels_fractional": (lambda: class_counts([0.0, 1.5]),
                          r"argument `y`. Expected integer class ids"),
    "labels_beyond_num_classes": (
        lambda: class_counts([0, 3], num_classes=3),
        r"argument `y`. Expected class ids < num_classes=3 \(found 3\). "
        r"Received: y=\[0, 3\]"),
    "num_classes_zero": (lambda: class_counts([0], num_classes=0),
                         r"argument `num_classes`. Expected an int in \[1, 16777216\]. "
                         r"Received: num_classes=0"),
    "multi_hot_not_binary": (lambda: class_counts([[0, 2]]),
                             r"argument `y`. Expected one-hot / multi-hot rows of 0 "
                             r"and 1 values \(found \[2\]\). Received: y=\[\[0, 2\]\]"),
    "multi_hot_num_classes": (
        lambda: class_counts([[0, 1]], num_classes=3),
        r"argument `num_classes`. Expected 2 \(the width of y\). Received: "
        r"num_classes=3"),
    "unknown_scheme": (lambda: class_weights(COUNTS, "sqrt"),
                       r"argument `scheme`. Expected one of \['balanced', .*"
                       r"Received: scheme='sqrt'"),
    "counts_negative": (lambda: class_weights([3, -1]),
                        r"argument `counts`. Expected counts >= 0. "
                        r"Received: counts=\[3, -1\]"),
    "counts_2d": (lambda: class_weights([[3, 1]]),
                  r"argument `counts`. Expected a non-empty 1-D sequence"),
    "counts_not_numbers": (lambda: class_weights(["x", 1]),
                           r"argument `counts`. Expected a non-empty 1-D "
                           r"sequence of per-class counts"),
    "beta_one": (lambda: class_weights(COUNTS, "effective_number", beta=1.0),
                 r"argument `beta`. Expected a finite float >= 0.0 and < 1.0. "
                 r"Received: beta=1.0"),
    "power_negative": (lambda: class_weights(COUNTS, "power", power=-1),
                       r"argument `power`. Expected a finite float >= 0.0"),
    "missing_class": (lambda: class_weights([5, 0, 2]),
                      r"argument `counts`. Expected every class to have at least "
                      r"one sample \(or allow_missing=True\); classes \[1\] have none"),
    "all_missing": (lambda: class_weights([0, 0], allow_missing=True),
                    r"argument `counts`. Expected counts with at least one "
                    r"sample. Received: counts=\[0, 0\]"),
    "pos_weights_not_binary": (lambda: pos_weights([[0, 0.5]]),
                               r"argument `y_multi_hot`. Expected one-hot / "
                               r"multi-hot rows of 0 and 1 values \(found \[0.5\]\)"),
    "pos_weights_no_positive": (
        lambda: pos_weights([[1, 0], [1, 0]]),
        r"argument `y_multi_hot`. Expected every label to have at least one "
        r"positive \(or allow_missing=True\); labels \[1\] have none"),
    "sample_weights_fractional_labels": (
        lambda: sample_weights([0.0, 1.5], [1.0, 2.0]),
        r"argument `y`. Expected integer class ids \(found non-integer values "
        r"\[1.5\]\). Received: y=\[0.0, 1.5\]"),
    "sample_weights_label_out_of_range": (
        lambda: sample_weights([0, 2], [1.0, 2.0]),
        r"argument `y`. Expected class ids in \[0, 2\)"),
    "sample_weights_negative_label": (
        lambda: sample_weights([0, -1], [1.0, 2.0]),
        r"argument `y`. Expected class ids >= 0 \(found -1\). Received: y=\[0, -1\]"),
    "sample_weights_scalar": (
        lambda: sample_weights([0, 1], 2.0),
        r"argument `class_weight`. Expected a scheme name, a dict or a 1-D sequence "
        r"of weights. Received: class_weight=2.0"),
    "sample_weights_dict_missing_class": (
        lambda: sample_weights([0, 1, 2], {0: 1.0, 2: 1.0}),
        r"argument `class_weight`. Expected a dict with one weight for each class "
        r"0..2"),
    "sample_weights_wrong_length": (
        lambda: sample_weights([[1, 0, 1]], [1.0, 2.0]),
        r"argument `class_weight`. Expected 3 weights \(one per class\)"),
    "sample_weights_negative_weight": (
        lambda: sample_weights([0, 1], [1.0, -2.0]),
        r"argument `class_weight`. Expected finite weights >= 0"),
    "sample_weights_not_binary": (
        lambda: sample_weights([[0, 3], [1, 0]], [1.0, 2.0]),
        r"argument `y`. Expected one-hot / multi-hot rows of 0 and 1 values "
        r"\(found \[3\]\). Received: y=\[\[0, 3\], \[1, 0\]\]"),
    "sample_weights_unknown_scheme": (
        lambda: sample_weights([0, 1], "balance"),
        r"argument `class_weight`. Expected one of \['balanced'"),
    "resolve_scheme_without_counts": (
        lambda: resolve_class_weight("balanced", 3),
        r"argument `class_weight`. Expected an explicit weight array when no counts "
        r"are known. Received: class_weight='balanced'"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_messages(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        call()


# --- bad input kinds (issue #10): flags, class counts, overflow -------------------


BAD_INPUT = {
    "allow_missing_string": (
        lambda: class_weights([5, 0, 2], allow_missing="no"),
        r"argument `allow_missing`. Expected a bool. Received: allow_missing='no'"),
    "pos_weights_allow_missing_int": (
        lambda: pos_weights([[1, 0]], allow_missing=1),
        r"argument `allow_missing`. Expected a bool. Received: allow_missing=1"),
    "num_classes_bool": (
        lambda: class_counts([0, 1], num_classes=True),
        r"argument `num_classes`. Expected an int in \[1, 16777216\]. "
        r"Received: num_classes=True"),
    "stray_huge_id": (
        lambda: class_counts([0, 1, 10**15]),
        r"argument `y`. Expected class ids < 65536 when num_classes is not given "
        r"\(found 1000000000000000, .*pass num_classes=.*"
        r"Received: y=\[0, 1, 1000000000000000\]"),
    "uint64_id_beyond_int64": (
        lambda: class_counts(np.array([0, 2**63 + 5], dtype=np.uint64)),
        r"argument `y`. Expected class ids < 65536 when num_classes is not given "
        r"\(found 9223372036854775813"),
    "float_id_1e300": (
        lambda: class_counts([0.0, 1e300]),
        r"argument `y`. Expected class ids < 65536"),
    "counts_1e308": (
        lambda: class_weights([1e308, 1.0]),
        r"argument `counts`. Expected counts <= 2\*\*53 .*Received: counts=\[1e\+308"),
    "counts_fractional": (
        lambda: class_weights([1.5, 2.0]),
        r"argument `counts`. Expected whole-number counts. "
        r"Received: counts=\[1.5, 2.0\]"),
    "counts_inf": (
        lambda: class_weights([np.inf, 2.0]),
        r"argument `counts`. Expected finite counts \(no NaN or inf\)"),
    "counts_bool": (
        lambda: class_weights(np.array([True, False])),
        r"argument `counts`. Expected a non-empty 1-D sequence of per-class counts"),
    "power_inf": (
        lambda: class_weights([5, 2], "power", power=float("inf")),
        r"argument `power`. Expected a finite float >= 0.0. Received: power=inf"),
    "sample_weights_class_weight_nan": (
        lambda: sample_weights([0, 1], [1.0, float("nan")]),
        r"argument `class_weight`. Expected finite weights >= 0"),
    "class_weight_all_zero": (
        lambda: sample_weights([0, 1], {0: 0.0, 1: 0.0}),
        r"argument `class_weight`. Expected weights with at least one > 0 \(all-zero "
        r"weights make every sample weight 0\). Received: class_weight=\{0: 0.0"),
    "sample_weights_id_beyond_weights": (
        lambda: sample_weights([0, 2], [1.0, 2.0]),
        r"argument `y`. Expected class ids in \[0, 2\) \(one weight per class in "
        r"class_weight\). Received: y=\[0, 2\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_messages(case):
    call, message = BAD_INPUT[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_explicit_num_classes_allows_large_ids():
    counts = class_counts([0, 70_000], num_classes=70_001)
    assert counts.shape == (70_001,) and counts.sum() == 2


@pytest.mark.parametrize("scheme", ["inverse", "sqrt_inverse", "power",
                                    "effective_number"])
@pytest.mark.parametrize("counts", [[2**53, 1], [2**53, 2**53 - 1], [1, 1, 2**40]])
def test_extreme_counts_give_finite_weights(scheme, counts):
    weights = class_weights(counts, scheme, power=1000.0, beta=1.0 - 2.0**-53)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(), len(counts))


@pytest.mark.parametrize("power", [1000.0, 1e308])
def test_huge_power_keeps_weights_finite(power):
    # Before: n**-1000 underflowed to 0 for every class, so 0 / 0 = NaN weights.
    weights = class_weights([500, 20, 3], "power", power=power)
    np.testing.assert_allclose(weights, [0.0, 0.0, 3.0])


@pytest.mark.parametrize("beta", [0.0, 1e-300, 0.5, 1.0 - 2.0**-53])
def test_effective_number_beta_edges(beta):
    counts = np.array([1000, 10, 1])
    weights = class_weights(counts, "effective_number", beta=beta)
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(), 3.0)
    with np.errstate(all="ignore"):
        reference = (1.0 - beta) / (1.0 - np.power(beta, counts.astype(float)))
    if np.all(np.isfinite(reference)) and beta > 0:
        np.testing.assert_allclose(weights, reference * 3 / reference.sum(),
                                   rtol=1e-9)


@given(counts=st.lists(st.integers(0, 2**53), min_size=1, max_size=8).filter(any),
       scheme=st.sampled_from(SCHEMES),
       power=st.floats(0.0, 1e308),
       beta=st.floats(0.0, 1.0, exclude_max=True))
def test_weights_are_finite_for_every_valid_input(counts, scheme, power, beta):
    weights = class_weights(counts, scheme, power=power, beta=beta,
                            allow_missing=True)
    assert weights.shape == (len(counts),)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    present = np.asarray(counts) > 0
    assert np.all(weights[~present] == 0) or scheme == "none"
    if scheme not in ("balanced", "none"):
        np.testing.assert_allclose(weights.sum(), present.sum(), rtol=1e-9)


def test_sample_weights_take_any_mapping():
    import types

    proxy = types.MappingProxyType({0: 1.0, 1: 3.0})
    np.testing.assert_array_equal(sample_weights([0, 1, 1], proxy), [1.0, 3.0, 3.0])
    np.testing.assert_array_equal(sample_weights([0, 1, 1], proxy),
                                  sample_weights([0, 1, 1], {0: 1.0, 1: 3.0}))
