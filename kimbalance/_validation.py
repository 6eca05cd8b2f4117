"""Argument checks shared by every layer of the package (NumPy only).

Every message has the Keras form:
``Invalid value for argument `tau`. Expected a float >= 0. Received: tau=-1.0``
"""

import math
import numbers

import numpy as np


def invalid(name, expected, value):
    """Returns the ValueError for argument `name` (not raised, so callers `raise`)."""
    return ValueError(
        f"Invalid value for argument `{name}`. Expected {expected}. "
        f"Received: {name}={_short_repr(value)}"
    )


def _short_repr(value):
    if isinstance(value, np.ndarray):
        if value.size > 12:
            return f"array(shape={value.shape}, dtype={value.dtype})"
        return repr(value.tolist())
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def check_float(name, value, *, low=None, high=None, low_inclusive=True,
                high_inclusive=True):
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


def _float_expectation(low, high, low_inclusive, high_inclusive):
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {high}")
    return "a finite float" + (" " + " and ".join(parts) if parts else "")


def check_int(name, value, *, low=None, high=None):
    """Returns `value` as an int within [low, high], else raises."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f">= {low}")
        if high is not None:
            bounds.append(f"<= {high}")
        raise invalid(name, "an int" + (" " + " and ".join(bounds) if bounds else ""),
                      value)
    return int(value)


def check_choice(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises."""
    if not isinstance(value, str) or value not in choices:
        raise invalid(name, f"one of {sorted(choices)}", value)
    return value


def check_bool(name, value):
    if not isinstance(value, bool | np.bool_):
        raise invalid(name, "a bool", value)
    return bool(value)


def check_vector(name, value, *, length=None, nonnegative=True, positive=False,
                 allow_none=False):
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


def check_priors(name, value):
    """Returns class priors normalised to sum to 1 from priors or counts.

    Zero, negative or non-finite entries raise: log(prior) must be finite.
    """
    arr = check_vector(name, value, positive=True)
    return arr / arr.sum()
