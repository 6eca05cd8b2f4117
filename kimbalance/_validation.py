"""Argument checks shared by every layer of the package (NumPy only).

Every message has the Keras form:
``Invalid value for argument `tau`. Expected a float >= 0. Received: tau=-1.0``
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Collection
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike


def invalid(name: str, expected: str, value: Any) -> ValueError:
    """Returns the ValueError for argument `name` (not raised, so callers `raise`)."""
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {name}={_short_repr(value)}"
    )


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size > 12:
            return f"array(shape={value.shape}, dtype={value.dtype})"
        return repr(value.tolist())
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def check_float(name: str, value: Any, *, low: float | None = None,
                high: float | None = None, low_inclusive: bool = True,
                high_inclusive: bool = True) -> float:
    """Returns `value` as a finite float within the given bounds, else raises."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value_f = float(value)
        ok = math.isfinite(value_f)
        if ok and low is not None:
            ok = value_f >= low if low_inclusive else value_f > low
        if ok and high is not None:
            ok = value_f <= high if high_inclusive else value_f < high
    if not ok:
        raise invalid(name, _float_expectation(low, high, low_inclusive,
                                               high_inclusive), value)
    return value_f


def _float_expectation(low: float | None, high: float | None, low_inclusive: bool,
                       high_inclusive: bool) -> str:
    if low is not None and low == high and low_inclusive and high_inclusive:
        return f"a finite float equal to {low}"
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {high}")
    return "a finite float" + (" " + " and ".join(parts) if parts else "")


def check_int(name: str, value: Any, *, low: int | None = None,
              high: int | None = None) -> int:
    """Returns `value` as an int within [low, high], else raises."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise invalid(name, _int_expectation(low, high), value)
    return int(value)


def _int_expectation(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        if low == high:
            return f"an int equal to {low}"
        if low > high:
            return f"an int in [{low}, {high}], an empty range: no value fits"
        return f"an int in [{low}, {high}]"
    if low is not None:
        return f"an int >= {low}"
    if high is not None:
        return f"an int <= {high}"
    return "an int"


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """Returns `value` if it is one of `choices`, else raises."""
    if not isinstance(value, str) or value not in choices:
        raise invalid(name, f"one of {sorted(choices)}", value)
    return value


def check_bool(name: str, value: Any) -> bool:
    """Returns `value` as a bool; strings, ints and None are errors, not truthy."""
    if not isinstance(value, bool | np.bool_):
        raise invalid(name, "a bool", value)
    return bool(value)


@overload
def check_vector(name: str, value: Any, *, length: int | None = ...,
                 nonnegative: bool = ..., positive: bool = ...,
                 allow_none: Literal[False] = ...) -> npt.NDArray[np.float64]: ...
@overload
def check_vector(name: str, value: Any, *, length: int | None = ...,
                 nonnegative: bool = ..., positive: bool = ...,
                 allow_none: bool) -> npt.NDArray[np.float64] | None: ...
def check_vector(name: str, value: Any, *, length: int | None = None,
                 nonnegative: bool = True, positive: bool = False,
                 allow_none: bool = False) -> npt.NDArray[np.float64] | None:
    """Returns a 1-D float64 array from a list/array/tuple, else raises.

    Checks finiteness, sign and (when given) the expected length.
    """
    if value is None:
        if allow_none:
            return None
        raise invalid(name, "a 1-D sequence of floats", value)
    if isinstance(value, dict):
        raise invalid(name, "a 1-D sequence of floats (not a dict)", value)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError:  # a Python int beyond float64's range (10**400)
        raise invalid(name, "finite values (no NaN or inf)", value) from None
    except (TypeError, ValueError):
        raise invalid(name, "a 1-D sequence of floats", value) from None
    if arr.ndim != 1 or arr.size == 0:
        raise invalid(name, "a non-empty 1-D sequence of floats", value)
    if length is not None and arr.shape[0] != length:
        raise invalid(name, f"a sequence of length {length}", value)
    if not np.all(np.isfinite(arr)):
        raise invalid(name, "finite values (no NaN or inf)", value)
    if positive and np.any(arr <= 0):
        raise invalid(name, "values > 0", value)
    if nonnegative and np.any(arr < 0):
        raise invalid(name, "values >= 0", value)
    return arr


def check_priors(name: str, value: Any) -> npt.NDArray[np.float64]:
    """Returns class priors normalised to sum to 1 from priors or counts.

    Zero, negative or non-finite entries raise: log(prior) must be finite.
    """
    arr = check_vector(name, value, positive=True)
    # Scaled by the largest entry first: the plain sum of [1e308, 1e308]
    # overflows to inf and every prior would read 0 (log prior -inf).
    arr = arr / arr.max()
    return arr / arr.sum()


# Logit scales (LDAM scale and margin, logit-adjustment tau, cosine-classifier
# scale, DB scales): a scale of 1e4 times a logit of 1e4 (or a log-prior
# >= -745) stays far below float32's range (3.4e38), and so does its gradient.
MAX_SCALE = 1e4


# Labels ----------------------------------------------------------------------
# The one label parser of the package: weights, samplers, the generator,
# imbalance construction, evaluation and thresholds all read targets through
# `parse_targets`, so one set of rules and one set of messages applies.

# Without an explicit `num_classes`, the class count is inferred as max(id) + 1;
# a stray id (1e15) would then allocate per-class arrays of that length. The
# inferred count is bounded by what the data supports: at most this many
# classes, or one class per sample when there are more samples than that.
MAX_INFERRED_CLASSES = 1 << 16
# An explicit `num_classes` is bounded too: every consumer allocates O(C).
MAX_CLASSES = 1 << 24
# Counts beyond this overflow int64 sums (and float64 stops being exact).
MAX_COUNT = 1 << 53

TARGET_KINDS = ("ids", "one_hot", "multi_hot")


@dataclasses.dataclass(frozen=True, eq=False)
class Targets:
    """Validated targets, as returned by `parse_targets`.

    Attributes:
        kind: "ids" (1-D or (N, 1) class ids), "one_hot" (2-D 0/1, one 1 per
            row) or "multi_hot" (2-D 0/1, any number of 1s per row).
        ids: int64 class ids of shape (N,) for "ids" and "one_hot"; None for
            "multi_hot".
        num_classes: the number of classes (labels for multi-hot).
        array: the validated array (NumPy view of the input, not copied).
        column: whether class ids came as an (N, 1) column.
    """

    kind: str
    ids: np.ndarray | None
    num_classes: int
    array: np.ndarray
    column: bool = False

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def single_label(self) -> bool:
        return self.kind != "multi_hot"

    def counts(self) -> npt.NDArray[np.int64]:
        """Per-class sample counts (positives per label for multi-hot), int64."""
        if self.ids is not None:
            return np.bincount(self.ids, minlength=self.num_classes).astype(np.int64)
        return self.array.sum(axis=0).astype(np.int64)

    def indicator(self) -> npt.NDArray[np.uint8]:
        """(N, C) uint8 0/1 matrix (one-hot for single-label targets)."""
        if self.ids is None:
            return self.array.astype(np.uint8)
        out = np.zeros((self.ids.shape[0], self.num_classes), dtype=np.uint8)
        out[np.arange(self.ids.shape[0]), self.ids] = 1
        return out


@overload
def check_num_classes(value: Any, name: str = ..., *,
                      allow_none: Literal[False]) -> int: ...
@overload
def check_num_classes(value: Any, name: str = ..., *,
                      allow_none: bool = ...) -> int | None: ...
def check_num_classes(value: Any, name: str = "num_classes", *,
                      allow_none: bool = True) -> int | None:
    """Returns `value` as an int in [1, MAX_CLASSES] (or None), else raises."""
    if value is None and allow_none:
        return None
    return check_int(name, value, low=1, high=MAX_CLASSES)


def as_label_array(y: ArrayLike, name: str = "y") -> np.ndarray:
    """Returns `y` as a non-empty numeric NumPy array with finite values."""
    if y is None or isinstance(y, dict | str | bytes | set):
        raise invalid(name, "an array of labels", y)
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError):
        raise invalid(name, "an array of labels", y) from None
    if arr.dtype.kind not in "biuf":
        raise invalid(name, f"numeric labels; got dtype {arr.dtype}", y)
    if arr.ndim == 0 or arr.size == 0:
        raise invalid(name, "a non-empty array of labels (one per sample); got shape "
                      f"{arr.shape}", y)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise invalid(name, "finite labels (no NaN or inf)", y)
    return arr


def parse_targets(y: ArrayLike, num_classes: int | None = None, *, name: str = "y",
                  multi_label: bool | None = None) -> Targets:
    """Validates classification targets and returns a `Targets`.

    Args:
        y: 1-D class ids, an (N, 1) column of ids, or a 2-D one-hot /
            multi-hot array of 0/1 values.
        num_classes: the number of classes; for ids it defaults to
            `max(y) + 1` (bounded: see `MAX_INFERRED_CLASSES`), for 2-D targets
            it must equal the width.
        name: the argument name used in error messages.
        multi_label: None (one-hot if every row has exactly one 1, else
            multi-hot), True (2-D rows are multi-hot, even one-hot ones) or
            False (2-D rows must be one-hot).

    Returns:
        A `Targets`.

    Raises:
        ValueError: naming `name` (or `num_classes` / `multi_label`) and the
            received value, for every malformed target.
    """
    if multi_label is not None and not isinstance(multi_label, bool | np.bool_):
        raise invalid("multi_label", "None, True or False", multi_label)
    num_classes = check_num_classes(num_classes)
    arr = as_label_array(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1 and not multi_label:
        return _parse_ids(arr[:, 0], y, num_classes, name, column=True, arr=arr)
    if arr.ndim == 1:
        if multi_label:
            raise invalid(name, "a 2-D multi-hot array when multi_label=True; got "
                          f"shape {arr.shape}", y)
        return _parse_ids(arr, y, num_classes, name, column=False, arr=arr)
    if arr.ndim != 2:
        raise invalid(name, "1-D class ids, an (N, 1) column of ids or a 2-D one-hot / "
                      f"multi-hot array; got shape {arr.shape}", y)
    width = int(arr.shape[1])
    if not np.all((arr == 0) | (arr == 1)):
        bad = arr[(arr != 0) & (arr != 1)]
        raise invalid(name, "one-hot / multi-hot rows of 0 and 1 values (found "
                      f"{_short_repr(bad[:5])})", y)
    if num_classes is not None and num_classes != width:
        raise invalid("num_classes", f"{width} (the width of {name})", num_classes)
    one_hot = bool(np.all(arr.sum(axis=1) == 1))
    if multi_label is None:
        multi_label = not one_hot
    if multi_label:
        return Targets("multi_hot", None, width, arr)
    if not one_hot:
        rows = np.flatnonzero(arr.sum(axis=1) != 1)
        raise invalid(name, "one-hot rows (exactly one 1 per row); rows "
                      f"{rows[:5].tolist()} have {arr[rows[:5]].sum(axis=1).tolist()}",
                      y)
    return Targets("one_hot", np.argmax(arr, axis=1).astype(np.int64), width, arr)


def _parse_ids(flat: np.ndarray, y: Any, num_classes: int | None, name: str, *,
               column: bool, arr: np.ndarray) -> Targets:
    if flat.dtype.kind == "f" and not np.all(flat == np.floor(flat)):
        bad = flat[flat != np.floor(flat)]
        raise invalid(name, "integer class ids (found non-integer values "
                      f"{_short_repr(bad[:5])})", y)
    # Bounds are checked in the input's own dtype, before the int64 cast that
    # would wrap a uint64 id >= 2**63 (or truncate a float 1e300).
    low, high = flat.min(), flat.max()
    if low < 0:
        raise invalid(name, f"class ids >= 0 (found {_scalar(low)})", y)
    if num_classes is None:
        bound = max(MAX_INFERRED_CLASSES, flat.shape[0])
        if high >= bound:
            raise invalid(name, f"class ids < {bound} when num_classes is not given "
                          f"(found {_scalar(high)}, which would mean "
                          f"{_scalar(high) + 1} classes for {flat.shape[0]} "
                          "samples); pass num_classes= if there really are that "
                          "many classes", y)
        num_classes = int(high) + 1
    elif high >= num_classes:
        raise invalid(name, f"class ids < num_classes={num_classes} (found "
                      f"{_scalar(high)})", y)
    return Targets("ids", flat.astype(np.int64), int(num_classes), arr, column)


def _scalar(value: np.generic) -> int | float:
    """A NumPy scalar as a Python int when it is whole (for messages)."""
    number = value.item()
    if isinstance(number, int):  # exact, also beyond 2**53
        return int(number)
    return int(number) if float(number).is_integer() else float(number)


def check_counts(name: str, value: Any, *,
                 positive: bool = False) -> npt.NDArray[np.int64]:
    """Returns per-class counts as an int64 array, else raises.

    Counts are whole, finite numbers in [0, MAX_COUNT] with at least one > 0.
    `positive=True` is for consumers that take log / powers of every count
    (LDAM margins, CDT temperatures, logit adjustment): each class needs at
    least one sample there.
    """
    if value is None or isinstance(value, dict | str | bytes):
        raise invalid(name, "a 1-D sequence of per-class counts", value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise invalid(name, "a 1-D sequence of per-class counts", value) from None
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iuf":
        raise invalid(name, "a non-empty 1-D sequence of per-class counts", value)
    values = arr.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise invalid(name, "finite counts (no NaN or inf)", value)
    if not np.all(values == np.floor(values)):
        raise invalid(name, "whole-number counts", value)
    if np.any(values < 0):
        raise invalid(name, "per-class counts > 0 (every class needs at least one "
                      "training sample)" if positive else "counts >= 0", value)
    if np.any(values > MAX_COUNT):
        raise invalid(name, "counts <= 2**53 (larger sums lose integer precision)",
                      value)
    counts = values.astype(np.int64)
    if positive and np.any(counts <= 0):
        raise invalid(name, "per-class counts > 0 (every class needs at least one "
                      "training sample)", value)
    if counts.sum() <= 0:
        raise invalid(name, "counts with at least one sample", value)
    return counts


def check_class_names(value: Any, num_classes: int | None = None,
                      name: str = "class_names") -> tuple[str, ...]:
    """Returns `value` as a tuple of strings (one per class), else raises.

    Names may be strings or ints (shown as strings); `num_classes`, when
    given, is the required length.
    """
    if value is None or isinstance(value, str | bytes | dict) or not hasattr(
            value, "__len__"):
        raise invalid(name, "a sequence of names (strings), one per class", value)
    names = list(value)
    if not all(isinstance(n, str | numbers.Integral) and not isinstance(n, bool)
               for n in names):
        raise invalid(name, "a sequence of names (strings), one per class", value)
    if num_classes is not None and len(names) != num_classes:
        raise invalid(name, f"{num_classes} names (one per class)", value)
    return tuple(str(n) for n in names)


@overload
def check_path(name: str, value: Any, *, allow_none: Literal[False] = ...) -> str: ...
@overload
def check_path(name: str, value: Any, *, allow_none: bool) -> str | None: ...
def check_path(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    """Returns a file-system path (`str` or `os.PathLike`) as a str, else raises."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str | os.PathLike):
        raise invalid(name, "a path (a str or os.PathLike)"
                      + (" or None" if allow_none else ""), value)
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise invalid(name, "a non-empty path (a str or os.PathLike)", value)
    return path


def check_shot_thresholds(many_threshold: int, few_threshold: int) -> tuple[int, int]:
    """Returns the many / few-shot bounds of the long-tail split, else raises.

    A class is many-shot with more than `many_threshold` training samples and
    few-shot with fewer than `few_threshold`; the few bound may be at most
    `many_threshold + 1` (then no class is medium-shot).
    """
    many_threshold = check_int("many_threshold", many_threshold, low=0)
    few_threshold = check_int("few_threshold", few_threshold, low=0)
    if few_threshold > many_threshold + 1:
        raise invalid("few_threshold", "an int <= many_threshold + 1 = "
                      f"{many_threshold + 1}", few_threshold)
    return many_threshold, few_threshold
