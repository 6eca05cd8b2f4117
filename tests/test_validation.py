"""kimbalance._validation: the one label parser, the count validator, the checks.

Every branch of `parse_targets` and `check_counts` is matched with its message
(the argument named, the received value of that argument shown), and property
tests check that random valid ids / one-hot / multi-hot targets come back as
the right kind with the right ids and counts.
"""

import os
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kimbalance._validation import (
    MAX_CLASSES,
    MAX_INFERRED_CLASSES,
    Targets,
    check_class_names,
    check_counts,
    check_float,
    check_int,
    check_path,
    check_shot_thresholds,
    invalid,
    parse_targets,
)

# --- parse_targets: one test per branch --------------------------------------------

PARSE_ERRORS = {
    "multi_label_not_bool": (
        dict(y=[0, 1], multi_label="no"),
        r"argument `multi_label`. Expected None, True or False. "
        r"Received: multi_label='no'"),
    "num_classes_bool": (
        dict(y=[0, 1], num_classes=True),
        r"argument `num_classes`. Expected an int in \[1, 16777216\]. "
        r"Received: num_classes=True"),
    "num_classes_too_large": (
        dict(y=[0, 1], num_classes=MAX_CLASSES + 1),
        r"argument `num_classes`. Expected an int in \[1, 16777216\]. "
        r"Received: num_classes=16777217"),
    "none": (dict(y=None), r"argument `y`. Expected an array of labels. "
             r"Received: y=None"),
    "dict": (dict(y={"a": 1}), r"argument `y`. Expected an array of labels"),
    "string": (dict(y="012"), r"argument `y`. Expected an array of labels. "
               r"Received: y='012'"),
    "ragged": (dict(y=[[0, 1], [1]]), r"argument `y`. Expected an array of labels. "
               r"Received: y=\[\[0, 1\], \[1\]\]"),
    "strings": (dict(y=["a", "b"]), r"argument `y`. Expected numeric labels; got "
                r"dtype <U1"),
    "objects": (dict(y=[None, 1]), r"argument `y`. Expected numeric labels; got "
                r"dtype object"),
    "scalar": (dict(y=3), r"argument `y`. Expected a non-empty array of labels "
               r"\(one per sample\); got shape \(\). Received: y=3"),
    "empty": (dict(y=[]), r"argument `y`. Expected a non-empty array of labels"),
    "nan": (dict(y=[0.0, np.nan]), r"argument `y`. Expected finite labels \(no NaN "
            r"or inf\). Received: y=\[0.0, nan\]"),
    "inf_one_hot": (dict(y=[[0.0, np.inf]]), r"argument `y`. Expected finite labels"),
    "ids_when_multi_label": (
        dict(y=[0, 1], multi_label=True),
        r"argument `y`. Expected a 2-D multi-hot array when multi_label=True; got "
        r"shape \(2,\). Received: y=\[0, 1\]"),
    "rank_3": (dict(y=np.zeros((2, 2, 2))),
               r"argument `y`. Expected 1-D class ids, an \(N, 1\) column of ids or "
               r"a 2-D one-hot / multi-hot array; got shape \(2, 2, 2\)"),
    "soft_labels": (dict(y=[[0.3, 0.7]]),
                    r"argument `y`. Expected one-hot / multi-hot rows of 0 and 1 "
                    r"values \(found \[0.3, 0.7\]\). Received: y=\[\[0.3, 0.7\]\]"),
    "width_vs_num_classes": (
        dict(y=[[0, 1], [1, 0]], num_classes=3),
        r"argument `num_classes`. Expected 2 \(the width of y\). "
        r"Received: num_classes=3"),
    "not_one_hot_when_single_label": (
        dict(y=[[1, 1], [0, 1], [0, 0]], multi_label=False),
        r"argument `y`. Expected one-hot rows \(exactly one 1 per row\); rows "
        r"\[0, 2\] have \[2, 0\]"),
    "fractional_ids": (
        dict(y=[0.0, 1.5, 2.25]),
        r"argument `y`. Expected integer class ids \(found non-integer values "
        r"\[1.5, 2.25\]\). Received: y=\[0.0, 1.5, 2.25\]"),
    "negative_ids": (
        dict(y=[2, -100, 1]),
        r"argument `y`. Expected class ids >= 0 \(found -100\). "
        r"Received: y=\[2, -100, 1\]"),
    "negative_column": (
        dict(y=[[1], [-3]]),
        r"argument `y`. Expected class ids >= 0 \(found -3\). "
        r"Received: y=\[\[1\], \[-3\]\]"),
    "inferred_bound": (
        dict(y=[0, MAX_INFERRED_CLASSES]),
        r"argument `y`. Expected class ids < 65536 when num_classes is not given "
        r"\(found 65536, which would mean 65537 classes for 2 samples\); pass "
        r"num_classes= if there really are that many classes"),
    "uint64_beyond_int64": (
        dict(y=np.array([1, 2**64 - 1], dtype=np.uint64), num_classes=10),
        r"argument `y`. Expected class ids < num_classes=10 \(found "
        r"18446744073709551615\)"),
    "explicit_bound": (
        dict(y=[0, 4], num_classes=4),
        r"argument `y`. Expected class ids < num_classes=4 \(found 4\). "
        r"Received: y=\[0, 4\]"),
    "big_array_is_summarised": (
        dict(y=np.arange(20) - 1),
        r"argument `y`. Expected class ids >= 0 \(found -1\). "
        r"Received: y=array\(shape=\(20,\), dtype=int64\)"),
}


@pytest.mark.parametrize("case", sorted(PARSE_ERRORS))
def test_parse_targets_errors(case):
    kwargs, message = PARSE_ERRORS[case]
    with pytest.raises(ValueError, match=message):
        parse_targets(**kwargs)


def test_parse_targets_names_the_argument():
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected class ids >= 0 "
                       r"\(found -1\). Received: y_true=\[-1\]"):
        parse_targets([-1], name="y_true")


def test_parse_targets_kinds():
    ids = parse_targets([2, 0, 2])
    assert (ids.kind, ids.num_classes, ids.column) == ("ids", 3, False)
    assert ids.ids.dtype == np.int64 and ids.single_label and len(ids) == 3
    assert ids.counts().tolist() == [1, 0, 2]
    assert ids.indicator().tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1]]
    column = parse_targets(np.array([[1.0], [0.0]]), num_classes=4)
    assert (column.kind, column.num_classes, column.column) == ("ids", 4, True)
    assert column.ids.tolist() == [1, 0] and column.counts().tolist() == [1, 1, 0, 0]
    one_hot = parse_targets(np.eye(3)[[2, 1]])
    assert (one_hot.kind, one_hot.num_classes) == ("one_hot", 3)
    assert one_hot.ids.tolist() == [2, 1]
    multi = parse_targets([[1, 1], [0, 0]])
    assert (multi.kind, multi.ids, multi.num_classes) == ("multi_hot", None, 2)
    assert not multi.single_label and multi.counts().tolist() == [1, 1]
    forced = parse_targets(np.eye(2)[[0, 1]], multi_label=True)
    assert forced.kind == "multi_hot"
    width_one = parse_targets([[1], [0]], multi_label=True)
    assert (width_one.kind, width_one.num_classes) == ("multi_hot", 1)
    booleans = parse_targets(np.array([[True, False], [True, True]]))
    assert booleans.kind == "multi_hot" and booleans.counts().tolist() == [2, 1]
    assert isinstance(booleans, Targets)


def test_parse_targets_explicit_num_classes_allows_large_ids():
    big = parse_targets([0, 100_000], num_classes=100_001)
    assert big.num_classes == 100_001 and big.counts().sum() == 2
    # With more samples than MAX_INFERRED_CLASSES, the inferred bound is N.
    many = np.arange(MAX_INFERRED_CLASSES + 10)
    assert parse_targets(many).num_classes == MAX_INFERRED_CLASSES + 10


@st.composite
def _ids(draw):
    num_samples = draw(st.integers(1, 40))
    num_classes = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_classes, size=num_samples), num_classes


@given(case=_ids(), dtype=st.sampled_from(["int64", "int32", "uint8", "float32"]),
       column=st.booleans())
def test_random_ids_round_trip(case, dtype, column):
    ids, num_classes = case
    y = ids.astype(dtype)[:, None] if column else ids.astype(dtype)
    inferred = parse_targets(y)
    assert inferred.kind == "ids" and inferred.column == column
    np.testing.assert_array_equal(inferred.ids, ids)
    assert inferred.num_classes == ids.max() + 1
    explicit = parse_targets(y, num_classes)
    assert explicit.num_classes == num_classes
    np.testing.assert_array_equal(explicit.counts(),
                                  np.bincount(ids, minlength=num_classes))
    np.testing.assert_array_equal(explicit.indicator().argmax(axis=1), ids)


@given(case=_ids(), dtype=st.sampled_from(["float32", "int8", "bool"]))
def test_random_one_hot_round_trip(case, dtype):
    ids, num_classes = case
    num_classes = max(num_classes, 2)  # an (N, 1) array is a column of ids
    y = np.eye(num_classes, dtype=dtype)[ids]
    targets = parse_targets(y)
    assert (targets.kind, targets.num_classes) == ("one_hot", num_classes)
    np.testing.assert_array_equal(targets.ids, ids)
    np.testing.assert_array_equal(targets.counts(),
                                  np.bincount(ids, minlength=num_classes))
    np.testing.assert_array_equal(targets.indicator(), y.astype(np.uint8))
    assert parse_targets(y, multi_label=True).kind == "multi_hot"


@given(num_samples=st.integers(1, 30), num_labels=st.integers(2, 10),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_random_multi_hot_round_trip(num_samples, num_labels, density, seed):
    y = (np.random.default_rng(seed).random((num_samples, num_labels))
         < density).astype(np.int64)
    targets = parse_targets(y)
    one_per_row = bool(np.all(y.sum(axis=1) == 1))
    assert targets.kind == ("one_hot" if one_per_row else "multi_hot")
    np.testing.assert_array_equal(targets.counts(), y.sum(axis=0))
    np.testing.assert_array_equal(targets.indicator(), y)
    forced = parse_targets(y, multi_label=True)
    assert forced.kind == "multi_hot" and forced.ids is None
    if not one_per_row:
        with pytest.raises(ValueError, match=r"argument `y`. Expected one-hot rows"):
            parse_targets(y, multi_label=False)


# --- check_counts ------------------------------------------------------------------

COUNT_ERRORS = {
    "none": (None, {}, r"argument `counts`. Expected a 1-D sequence of per-class "
             r"counts. Received: counts=None"),
    "dict": ({0: 3}, {}, r"argument `counts`. Expected a 1-D sequence of per-class"),
    "string": ("123", {}, r"argument `counts`. Expected a 1-D sequence of per-class"),
    "ragged": ([[1], [1, 2]], {}, r"argument `counts`. Expected a 1-D sequence of "
               r"per-class counts"),
    "two_d": ([[1, 2]], {}, r"argument `counts`. Expected a non-empty 1-D sequence "
              r"of per-class counts. Received: counts=\[\[1, 2\]\]"),
    "empty": ([], {}, r"argument `counts`. Expected a non-empty 1-D sequence"),
    "bool": ([True, False], {}, r"argument `counts`. Expected a non-empty 1-D "
             r"sequence"),
    "nan": ([1.0, np.nan], {}, r"argument `counts`. Expected finite counts \(no NaN "
            r"or inf\). Received: counts=\[1.0, nan\]"),
    "fractional": ([1.5, 2.0], {}, r"argument `counts`. Expected whole-number "
                   r"counts"),
    "negative": ([3, -1], {}, r"argument `counts`. Expected counts >= 0. "
                 r"Received: counts=\[3, -1\]"),
    "overflow": ([1e308, 1.0], {}, r"argument `counts`. Expected counts <= 2\*\*53"),
    "zero_when_positive": ([3, 0], dict(positive=True),
                           r"argument `counts`. Expected per-class counts > 0 "
                           r"\(every class needs at least one training sample\)"),
    "all_zero": ([0, 0], {}, r"argument `counts`. Expected counts with at least one "
                 r"sample. Received: counts=\[0, 0\]"),
}


@pytest.mark.parametrize("case", sorted(COUNT_ERRORS))
def test_check_counts_errors(case):
    value, kwargs, message = COUNT_ERRORS[case]
    with pytest.raises(ValueError, match=message):
        check_counts("counts", value, **kwargs)


def test_check_counts_values():
    counts = check_counts("class_counts", [3.0, 0, 2**53])
    assert counts.dtype == np.int64 and counts.tolist() == [3, 0, 2**53]
    assert check_counts("c", np.array([1, 2], np.uint8), positive=True).tolist() == [
        1, 2]


@given(counts=st.lists(st.integers(0, 2**53), min_size=1, max_size=10).filter(any))
def test_valid_counts_round_trip(counts):
    np.testing.assert_array_equal(check_counts("counts", counts), counts)
    np.testing.assert_array_equal(
        check_counts("counts", np.asarray(counts, np.float64)), counts)


# --- scalar checks -----------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "value", "message"), [
    # Before: "Expected an int >= 2 and <= 2" for a one-value range.
    (dict(low=2, high=2), 3, r"argument `n`. Expected an int equal to 2. "
     r"Received: n=3"),
    (dict(low=0, high=5), 6, r"Expected an int in \[0, 5\]. Received: n=6"),
    (dict(low=3, high=2), 2, r"Expected an int in \[3, 2\], an empty range: no "
     r"value fits"),
    (dict(low=1), 0, r"Expected an int >= 1. Received: n=0"),
    (dict(high=1), 2, r"Expected an int <= 1. Received: n=2"),
    ({}, "1", r"Expected an int. Received: n='1'"),
    ({}, True, r"Expected an int. Received: n=True"),
    ({}, 1.0, r"Expected an int. Received: n=1.0"),
])
def test_check_int_messages(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        check_int("n", value, **kwargs)


def test_check_int_and_float_accept():
    assert check_int("n", np.int64(2), low=2, high=2) == 2
    assert check_float("x", 0.5, low=0.5, high=0.5) == 0.5
    with pytest.raises(ValueError, match=r"Expected a finite float equal to 0.5. "
                       r"Received: x=0.6"):
        check_float("x", 0.6, low=0.5, high=0.5)


def test_check_path():
    assert check_path("p", "a/b") == "a/b"
    assert check_path("p", pathlib.Path("a")) == os.fspath(pathlib.Path("a"))
    assert check_path("p", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"argument `p`. Expected a path \(a str or "
                       r"os.PathLike\). Received: p=3"):
        check_path("p", 3)
    with pytest.raises(ValueError, match=r"Expected a path \(a str or os.PathLike\) "
                       r"or None. Received: p=b'x'"):
        check_path("p", b"x", allow_none=True)
    with pytest.raises(ValueError, match=r"Expected a non-empty path"):
        check_path("p", "")


def test_check_class_names():
    assert check_class_names(["a", 1]) == ("a", "1")
    assert check_class_names(("a", "b"), 2) == ("a", "b")
    for bad in ("ab", None, {"a": 1}, 3, [1.5], [True]):
        with pytest.raises(ValueError, match=r"argument `class_names`. Expected a "
                           r"sequence of names \(strings\), one per class"):
            check_class_names(bad)
    with pytest.raises(ValueError, match=r"argument `class_names`. Expected 3 names "
                       r"\(one per class\). Received: class_names=\['a'\]"):
        check_class_names(["a"], 3)


def test_check_shot_thresholds():
    assert check_shot_thresholds(100, 20) == (100, 20)
    assert check_shot_thresholds(5, 6) == (5, 6)
    with pytest.raises(ValueError, match=r"argument `few_threshold`. Expected an int "
                       r"<= many_threshold \+ 1 = 6. Received: few_threshold=7"):
        check_shot_thresholds(5, 7)
    with pytest.raises(ValueError, match=r"argument `many_threshold`. Expected an "
                       r"int >= 0. Received: many_threshold=-1"):
        check_shot_thresholds(-1, 0)


def test_invalid_is_returned_not_raised():
    error = invalid("tau", "a float >= 0", -1.0)
    assert isinstance(error, ValueError)
    assert str(error) == ("Invalid value for argument `tau`. Expected a float >= 0. "
                          "Received: tau=-1.0")
