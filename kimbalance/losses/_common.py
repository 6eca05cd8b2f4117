"""Shared plumbing of the loss family: label forms, label checks, precision, bases.

Everything that runs on tensors is `keras.ops` only and traceable under jit on
every backend: label forms are decided from *static* shapes, never from tensor
values.

Label values are checked only when they are concrete, i.e. known in Python
at call time: NumPy arrays and lists, eager torch / TensorFlow tensors and
jax arrays outside a trace (`concrete_values`). Then every loss raises the
usual `ValueError` naming `y_true` for ids outside `[0, C)` (negative ids
included: `ignore_class` is the way to leave samples out), fractional, NaN or
infinite labels, and one-hot / multi-hot / soft labels that break the loss's
rule (`LABEL_RULES`). The check copies the labels to the host once per call
(cheap NumPy reductions over the batch's labels, not over predictions).

Under a jit trace (`jax.jit`, `tf.function`, `torch.compile`, and so inside a
compiled `model.fit` on jax and tensorflow) label values are unknown and not
checked, as in Keras' own sparse losses: an out-of-range id then gives an
undefined value (gathers clamp or fill, one-hot rows of out-of-range ids are
all zero) rather than an error. Check labels at the data boundary
(`kimbalance.data.BalancedBatchGenerator` does) when training compiled.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
from keras import ops

from kimbalance._tensors import concrete_values
from kimbalance._validation import (
    MAX_SCALE,
    check_float,
    check_int,
    check_vector,
    invalid,
)

__all__ = [
    "IgnoreClassLoss",
    "KimbalanceLoss",
    "PerSampleValues",
    "LABEL_RULES",
    "MAX_EXPONENT",
    "MAX_SCALE",
    "MAX_WEIGHT",
    "PROB_EPSILON",
    "align_weight",
    "binary_nll",
    "binary_targets",
    "categorical_parts",
    "categorical_targets",
    "check_class_vector",
    "check_exponent",
    "check_ignore_class",
    "check_label_smoothing",
    "check_labels",
    "check_scalar_or_vector",
    "class_nll",
    "concrete_values",
    "keras_reduce",
    "labels_checked",
    "is_label_column",
    "is_sparse_labels",
    "log_probs",
    "log_sigmoid_pair",
    "masked",
    "mean_over_labels",
    "num_outputs",
    "sparse_ids",
    "take_class",
    "to_float32",
    "vector_tensor",
]

_HALF = ("float16", "bfloat16")
# Probabilities are clipped to [eps, 1 - eps] as in Keras (backend.epsilon()).
PROB_EPSILON = 1e-7

# Bounds on hyperparameters, so that every derived float32 quantity (and its
# gradient) stays finite. float32 overflows at 3.4e38; losses from logits of
# magnitude up to ~1e4 are at most ~1e4 per class.
# - Exponents (focal gamma, ASL gammas): the gradient of x ** g is
#   g * x ** (g - 1) with x in [1e-30, 1], at most g: finite for g <= 1e4.
MAX_EXPONENT = 1e4
# - Logit scales (LDAM scale and margin, logit-adjustment tau, DB scales):
#   `MAX_SCALE` of kimbalance._validation (shared with the layers).
# - Per-class / per-label weights multiply losses of at most ~1e5: 1e12 leaves
#   room for sums over large batches (and covers "balanced" weights N / (C n_c)
#   of any realistic dataset).
MAX_WEIGHT = 1e12


# --- argument checks -----------------------------------------------------------


def check_label_smoothing(value: Any) -> float:
    return check_float("label_smoothing", value, low=0.0, high=1.0)


def check_ignore_class(value: Any) -> int | None:
    return None if value is None else check_int("ignore_class", value)


def check_exponent(name: str, value: Any) -> float:
    """A focusing exponent: a finite float in [0, MAX_EXPONENT]."""
    return check_float(name, value, low=0.0, high=MAX_EXPONENT)


def _check_weight_bound(name: str, arr: np.ndarray, value: Any) -> None:
    if np.any(arr > MAX_WEIGHT):
        raise invalid(name, f"weights <= {MAX_WEIGHT:g}", value)


def check_class_vector(name: str, value: Any) -> npt.NDArray[np.float64] | None:
    """None, or a 1-D float64 array of finite weights in [0, MAX_WEIGHT].

    A dict `{class: weight}` with every class 0..C-1 is accepted too. All-zero
    weights are an error: the loss would be 0 for every sample.
    """
    if value is None:
        return None
    given = value
    if isinstance(value, Mapping):
        if set(value) != set(range(len(value))):
            raise invalid(name, "a dict with one weight for each class 0..C-1, or a "
                          "1-D sequence of weights", value)
        value = [value[c] for c in range(len(value))]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise invalid(name, "a 1-D sequence of per-class weights (one per class)",
                      value)
    arr = check_vector(name, value)
    _check_weight_bound(name, arr, given)
    if not np.any(arr > 0):
        raise invalid(name, "weights with at least one > 0 (all-zero weights make "
                      "the loss 0 for every sample)", given)
    return arr


def check_scalar_or_vector(
        name: str, value: Any, *, high: float | None = None, nonzero: bool = False,
) -> float | npt.NDArray[np.float64] | None:
    """None, a float in [0, high] or a 1-D array of them.

    `high` defaults to MAX_WEIGHT. `nonzero=True` rejects a 0 scalar and an
    all-zero vector (for weights that scale the whole loss).
    """
    if value is None:
        return None
    high = MAX_WEIGHT if high is None else high
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        result = check_float(name, value, low=0.0, high=high)
        if nonzero and result == 0:
            raise invalid(name, f"a float in (0, {high:g}] (0 makes the loss 0 for "
                          "every sample)", value)
        return result
    arr = check_vector(name, value)
    if np.any(arr > high):
        raise invalid(name, f"values in [0, {high:g}]", value)
    if nonzero and not np.any(arr > 0):
        raise invalid(name, "values with at least one > 0 (all-zero weights make "
                      "the loss 0 for every sample)", value)
    return arr


# --- tensors and label forms -------------------------------------------------------


def to_float32(x: Any) -> Any:
    """Promotes half-precision tensors to float32 (losses compute in float32)."""
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in _HALF or not _is_float(x):
        return ops.cast(x, "float32")
    return x


def _is_float(x: Any) -> bool:
    return keras.backend.standardize_dtype(x.dtype).startswith(("float", "bfloat"))


def num_outputs(y_pred: Any) -> int | None:
    return y_pred.shape[-1] if len(y_pred.shape) >= 1 else None


def vector_tensor(name: str, value: Any, num: int | None, dtype: str,
                  what: str = "class") -> Any:
    """A float tensor for a per-class (or per-label) vector; checks its length.

    The length is checked statically against the last dimension of y_pred, so
    a mismatch raises at trace time with the argument's name. A Python scalar
    is returned as a float.
    """
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    arr = np.asarray(value, dtype=np.float64)
    if num is not None and arr.ndim == 1 and arr.shape[0] != num:
        raise invalid(name, f"{num} values (one per {what}: the last dimension of "
                      f"y_pred is {num})", value)
    return ops.convert_to_tensor(arr, dtype=dtype)


def is_sparse_labels(y_true: Any, y_pred: Any) -> bool:
    """True when `y_true` holds class ids: rank(y_pred) - 1, or a trailing 1 dim.

    Decided from static ranks/shapes only. Raises a ValueError for any other
    rank combination (e.g. (N, C, 1) labels for (N, C) predictions).
    """
    true_rank = len(y_true.shape)
    pred_rank = len(y_pred.shape)
    if true_rank == pred_rank - 1:
        _check_sample_shape(y_true.shape, y_pred, y_true)
        return True
    if true_rank == pred_rank:
        last_true, last_pred = y_true.shape[-1], y_pred.shape[-1]
        if last_true == 1 and last_pred != 1:
            _check_sample_shape(y_true.shape[:-1], y_pred, y_true)
            return True
        if last_true is not None and last_pred is not None and last_true != last_pred:
            raise invalid(
                "y_true",
                f"class ids of shape (N,) or (N, 1), or one-hot / soft labels of "
                f"shape {tuple(y_pred.shape)} (matching y_pred)",
                f"<tensor of shape {tuple(y_true.shape)}>",
            )
        _check_sample_shape(y_true.shape[:-1], y_pred, y_true)
        return False
    raise invalid(
        "y_true",
        f"rank {pred_rank - 1} class ids or rank {pred_rank} one-hot / soft labels "
        f"for y_pred of shape {tuple(y_pred.shape)}",
        f"<tensor of shape {tuple(y_true.shape)}>",
    )


def _check_sample_shape(sample_shape: Any, y_pred: Any, y_true: Any) -> None:
    """Labels must cover y_pred's sample dims (a mask per prediction map).

    Only statically known sizes are compared (a traced batch size is None).
    """
    for got, want in zip(sample_shape, y_pred.shape[:-1], strict=True):
        if got is not None and want is not None and got != want:
            raise invalid(
                "y_true",
                f"labels of the sample shape of y_pred {tuple(y_pred.shape[:-1])} "
                f"(a mask per prediction map)",
                f"<tensor of shape {tuple(y_true.shape)}>",
            )


def sparse_ids(y_true: Any, y_pred: Any, ignore_class: int | None) -> tuple[Any, Any]:
    """int32 class ids of shape y_pred.shape[:-1] and a bool mask (or None)."""
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    labels = ops.cast(y_true, "int32")
    valid = None
    if ignore_class is not None:
        valid = ops.not_equal(labels, ignore_class)
        labels = ops.where(valid, labels, ops.zeros_like(labels))
    return labels, valid


def take_class(values: Any, labels: Any) -> Any:
    """values[..., labels] along the last axis."""
    picked = ops.take_along_axis(values, ops.expand_dims(labels, -1), axis=-1)
    return ops.squeeze(picked, axis=-1)


def class_nll(logits: Any, labels: Any) -> Any:
    """`-log softmax(logits)[label]` per sample, for int32 class ids.

    One log-softmax and a gather: under autodiff the backward is a scatter
    into zeros plus the log-softmax backward, two (N, C) passes fewer than the
    dense `-sum(one_hot * log_softmax)` (the one-hot, the product and its
    backward), on every backend.
    """
    return -take_class(ops.log_softmax(logits, axis=-1), labels)


def is_label_column(labels: Any, num_classes: int) -> Any:
    """Bool (N, C): True at each sample's label column (no one-hot floats)."""
    return ops.equal(ops.expand_dims(labels, -1),
                     ops.arange(num_classes, dtype=labels.dtype))


def masked(values: Any, valid: Any) -> Any:
    """`values` with the entries where `valid` is False set to 0 (`valid=None`: all)."""
    if valid is None:
        return values
    return ops.where(valid, values, ops.zeros_like(values))


def categorical_targets(y_true: Any, y_pred: Any, *, label_smoothing: float = 0.0,
                        ignore_class: int | None = None) -> tuple[Any, Any]:
    """Returns (one_hot_targets, valid_mask or None) as float tensors like y_pred.

    Sparse labels are one-hot encoded (entries equal to `ignore_class` give an
    all-zero row and mask 0). Label smoothing follows Keras:
    `y * (1 - ls) + ls / C`.
    """
    num_classes = y_pred.shape[-1]
    mask = None
    if is_sparse_labels(y_true, y_pred):
        labels, valid = sparse_ids(y_true, y_pred, ignore_class)
        if valid is not None:
            mask = ops.cast(valid, y_pred.dtype)
        targets = ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
    else:
        targets = ops.cast(y_true, y_pred.dtype)
        if ignore_class is not None:
            raise invalid("ignore_class", "None when labels are one-hot / soft "
                          "(ignore_class applies to class ids)", ignore_class)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    if mask is not None:
        targets = targets * ops.expand_dims(mask, -1)
    return targets, mask


def log_probs(y_pred: Any, from_logits: bool, axis: int = -1) -> Any:
    """log softmax of logits, or log of (renormalised, clipped) probabilities."""
    if from_logits:
        return ops.log_softmax(y_pred, axis=axis)
    probs = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    eps = keras.backend.epsilon()
    return ops.log(ops.clip(probs, eps, 1.0 - eps))


def log_sigmoid_pair(y_pred: Any, from_logits: bool) -> tuple[Any, Any]:
    """Returns (log p, log (1 - p)) for sigmoid outputs, stable from logits."""
    if from_logits:
        return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
    eps = keras.backend.epsilon()
    p = ops.clip(y_pred, eps, 1.0 - eps)
    return ops.log(p), ops.log1p(-p)


def categorical_parts(
        y_true: Any, y_pred: Any, *, from_logits: bool, label_smoothing: float,
        ignore_class: int | None) -> tuple[Any, Any, tuple[Any, Any] | None, Any]:
    """Shared prologue: (y_pred as float32, log p, ids, targets).

    Class ids without label smoothing take the gather path: `ids` is
    (int32 labels, valid mask or None) and `targets` None. Every other case
    gets `ids` None and dense float `targets` (smoothed, ignored rows zeroed).
    """
    y_pred = to_float32(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    logp = log_probs(y_pred, from_logits)
    if is_sparse_labels(y_true, y_pred) and not label_smoothing:
        return y_pred, logp, sparse_ids(y_true, y_pred, ignore_class), None
    targets, _ = categorical_targets(y_true, y_pred, label_smoothing=label_smoothing,
                                     ignore_class=ignore_class)
    return y_pred, logp, None, targets


def binary_targets(y_true: Any, y_pred: Any) -> Any:
    """Float targets shaped like y_pred ((N,) labels also fit (N, 1) outputs)."""
    y_true = ops.convert_to_tensor(y_true)
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank - 1 and pred_rank >= 2 and y_pred.shape[-1] == 1:
        y_true = ops.expand_dims(y_true, -1)
    elif true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    elif true_rank != pred_rank or any(
            t is not None and p is not None and t != p
            for t, p in zip(y_true.shape, y_pred.shape, strict=True)):
        raise invalid("y_true", f"0/1 (or soft) labels of shape {tuple(y_pred.shape)} "
                      "(matching y_pred)", f"<tensor of shape {tuple(y_true.shape)}>")
    return ops.cast(y_true, y_pred.dtype)


def binary_nll(y_true: Any, y_pred: Any, from_logits: bool, pos_weight: Any = None,
               neg_weight: Any = None) -> Any:
    """Elementwise `-(pos_w * y * log p + neg_w * (1 - y) * log(1 - p))`.

    From logits through one softplus: -log(1 - p) = softplus(z) and
    -log p = softplus(z) - z, so the loss is `(a + b) * softplus(z) - a * z`
    with label-only coefficients `a = pos_w * y`, `b = neg_w * (1 - y)`:
    stable for any float32 logit, and few elementwise passes that carry a
    gradient.
    """
    if from_logits and pos_weight is None and neg_weight is None:
        return ops.softplus(y_pred) - y_true * y_pred
    pos_coef = y_true if pos_weight is None else y_true * pos_weight
    neg_coef = 1.0 - y_true if neg_weight is None else (1.0 - y_true) * neg_weight
    if from_logits:
        return (pos_coef + neg_coef) * ops.softplus(y_pred) - pos_coef * y_pred
    p = ops.clip(y_pred, PROB_EPSILON, 1.0 - PROB_EPSILON)
    return -(pos_coef * ops.log(p) + neg_coef * ops.log1p(-p))


def mean_over_labels(values: Any) -> Any:
    """Per-sample mean over the label axis; rank-1 outputs are one label each."""
    if len(values.shape) <= 1:
        return values
    return ops.mean(values, axis=-1)


# --- label values (checked when concrete) ------------------------------------------

# What each loss family accepts besides class ids:
# - "distribution": single-label losses (CE, focal, logit adjusted, LDAM, CDT):
#   one-hot or soft rows, finite, in [0, 1], summing to 1 (all-zero rows are
#   errors).
# - "probabilities": binary / multi-label BCE-style losses (weighted BCE,
#   sigmoid focal, ASL): 0/1 or soft labels in [0, 1], any row sum.
# - "binary": losses that need hard multi-hot labels (DB loss): 0 or 1 only.
LABEL_RULES = ("distribution", "probabilities", "binary")

# Tolerance on the row sums of soft labels: float32 rows of a few hundred
# classes sum to 1 within ~1e-5; half-precision labels are quantised to
# 2**-11 (float16) or 2**-8 (bfloat16) relative.
_SUM_TOLERANCE = 1e-3
_HALF_SUM_TOLERANCE = 2e-2

_LABELS_CHECKED = contextvars.ContextVar("kimbalance_labels_checked", default=False)


@contextlib.contextmanager
def labels_checked() -> Iterator[None]:
    """Marks the labels of the calls inside as already checked (by a Loss)."""
    token = _LABELS_CHECKED.set(True)
    try:
        yield
    finally:
        _LABELS_CHECKED.reset(token)


def _found(values: np.ndarray) -> list[int | float]:
    """A short list of distinct offending values for a message."""
    unique = np.unique(values.astype(np.float64))[:5]
    return [int(v) if v.is_integer() else float(f"{v:.6g}") for v in unique.tolist()]


def _check_ids(values: np.ndarray, y_true: Any, num_classes: int | None,
               ignore_class: int | None, ignore_supported: bool) -> None:
    flat = values.reshape(-1)
    if flat.size == 0:
        return
    if flat.dtype.kind == "b":
        flat = flat.astype(np.int64)
    if flat.dtype.kind not in "iuf":
        raise invalid("y_true", f"numeric class ids; got dtype {flat.dtype}", y_true)
    if flat.dtype.kind == "f":
        if not np.all(np.isfinite(flat)):
            raise invalid("y_true", "finite class ids (found NaN or inf)", y_true)
        fractional = flat != np.floor(flat)
        if np.any(fractional):
            raise invalid("y_true", "integer class ids (found non-integer values "
                          f"{_found(flat[fractional])})", y_true)
    keep = flat if ignore_class is None else flat[flat != ignore_class]
    if keep.size == 0:
        return
    ignore_note = ("" if ignore_class is None
                   else f" or ignore_class={ignore_class}")
    negative = keep < 0
    if np.any(negative):
        found = _found(keep[negative])
        hint = ""
        if ignore_supported and ignore_class is None and len(found) == 1:
            hint = f"; pass ignore_class={found[0]} to leave those samples out"
        raise invalid("y_true", f"class ids >= 0{ignore_note} (found {found}{hint})",
                      y_true)
    if num_classes is not None:
        too_big = keep >= num_classes
        if np.any(too_big):
            raise invalid("y_true", f"class ids < {num_classes} (the last dimension "
                          f"of y_pred){ignore_note} (found {_found(keep[too_big])})",
                          y_true)


def _check_dense(values: np.ndarray, y_true: Any, rule: str, dtype_name: str) -> None:
    if values.size == 0:
        return
    if values.dtype.kind == "b":
        values = values.astype(np.float32)
    if values.dtype.kind not in "iuf":
        raise invalid("y_true", f"numeric labels; got dtype {values.dtype}", y_true)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise invalid("y_true", "finite labels (found NaN or inf)", y_true)
    if rule == "binary":
        bad = (values != 0) & (values != 1)
        if np.any(bad):
            raise invalid("y_true", "multi-hot labels of 0 and 1 values (found "
                          f"{_found(values[bad])})", y_true)
        return
    bad = (values < 0) | (values > 1)
    if np.any(bad):
        kind = "one-hot / soft" if rule == "distribution" else "0/1 (or soft)"
        raise invalid("y_true", f"{kind} labels with values in [0, 1] (found "
                      f"{_found(values[bad])})", y_true)
    if rule == "distribution":
        sums = values.reshape(-1, values.shape[-1]).astype(np.float64).sum(axis=-1)
        tolerance = (_HALF_SUM_TOLERANCE if dtype_name in _HALF
                     or values.dtype.itemsize <= 2 else _SUM_TOLERANCE)
        off = np.abs(sums - 1.0) > tolerance
        if np.any(off):
            rows = np.flatnonzero(off)[:5].tolist()
            raise invalid("y_true", "one-hot / soft label rows that sum to 1 "
                          f"(rows {rows} sum to "
                          f"{[round(float(s), 6) for s in sums[off][:5]]}; an "
                          "all-zero row has no class)", y_true)


def check_labels(y_true: Any, y_pred: Any, rule: str, *,
                 ignore_class: int | None = None,
                 ignore_supported: bool = False) -> None:
    """Checks label values when they are concrete; a no-op under a jit trace.

    Class ids (as decided from static shapes by `is_sparse_labels`, for the
    "distribution" rule) must be whole numbers in `[0, C)` (or equal to
    `ignore_class`); dense labels follow `rule` (see `LABEL_RULES`).

    Args:
        y_true: the labels as given to the loss.
        y_pred: the predictions (only their static shape is read).
        rule: one of `LABEL_RULES`.
        ignore_class: the id that marks samples to leave out, or None.
        ignore_supported: whether the loss takes `ignore_class` (the message
            for negative ids then suggests it).

    Raises:
        ValueError: naming `y_true`, for labels that break the rule.
    """
    if _LABELS_CHECKED.get():
        return
    values = concrete_values(y_true)
    if values is None:
        return
    if values.dtype.kind not in "biuf":
        try:  # e.g. ml_dtypes' bfloat16 (jax, tensorflow)
            values = values.astype(np.float32)
        except (TypeError, ValueError):
            pass
    dtype_name = keras.backend.standardize_dtype(
        getattr(y_true, "dtype", values.dtype))
    shape = np.shape(values)
    pred_shape = tuple(y_pred.shape)
    if rule == "distribution" and is_sparse_labels(_Shaped(shape), _Shaped(pred_shape)):
        num_classes = pred_shape[-1] if pred_shape else None
        _check_ids(np.asarray(values), values, num_classes, ignore_class,
                   ignore_supported)
        return
    _check_dense(np.asarray(values), values, rule, dtype_name)


class _Shaped:
    """A stand-in with only a `shape`, for the static-shape rules."""

    def __init__(self, shape: Sequence[int | None]) -> None:
        self.shape = tuple(shape)


# --- loss bases --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class KimbalanceLoss(keras.losses.Loss):
    """Base class: a `keras.losses.Loss` around a per-sample loss function.

    Subclasses set `fn` (the public function) and `label_rule` (one of
    `LABEL_RULES`), and pass the function's keyword arguments, validated, to
    `__init__`: they are stored as attributes under the same names (plain
    Python values, lists for vectors), `call()` passes them to `fn` and
    `get_config()` returns them.

    `call(y_true, y_pred)` is the per-sample loss under every `reduction`;
    `__call__` checks concrete label values, then reduces as Keras does.
    """

    fn: Callable[..., Any] | None = None
    label_rule = "distribution"

    def __init__(self, *, name: str, reduction: str | None = "sum_over_batch_size",
                 dtype: str | keras.DTypePolicy | None = None,
                 **fn_kwargs: Any) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._arg_names = tuple(fn_kwargs)
        for key, value in fn_kwargs.items():
            setattr(self, key, _plain(value))

    def fn_kwargs(self) -> dict[str, Any]:
        """The keyword arguments `call()` passes to `fn`, from the attributes."""
        return {key: getattr(self, key) for key in self._arg_names}

    def check_labels(self, y_true: Any, y_pred: Any) -> None:
        """Checks concrete label values (see `check_labels`)."""
        if not hasattr(y_pred, "shape"):
            y_pred = np.asarray(y_pred)
        check_labels(y_true, y_pred, self.label_rule,
                     ignore_class=getattr(self, "ignore_class", None),
                     ignore_supported=hasattr(self, "ignore_class"))

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        self.check_labels(y_true, y_pred)
        with labels_checked():
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        fn = type(self).fn
        if fn is None:
            raise NotImplementedError(f"{type(self).__name__} sets no loss `fn`")
        return fn(y_true, y_pred, **self.fn_kwargs())

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({key: _plain(getattr(self, key)) for key in self._arg_names})
        return config


_MEAN_WITH_SAMPLE_WEIGHT = "mean_with_sample_weight"


def _valid_mask(y_true: Any, y_pred: Any, ignore_class: int | None) -> Any:
    """float mask of the samples not labelled `ignore_class` (None if no ids)."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if ignore_class is None or not is_sparse_labels(y_true, y_pred):
        return None
    _, valid = sparse_ids(y_true, y_pred, ignore_class)
    return ops.cast(valid, "float32")


def align_weight(sample_weight: Any, weight: Any) -> Any:
    """`sample_weight` broadcast against a per-sample `weight` tensor, times it."""
    sample_weight = ops.convert_to_tensor(sample_weight, dtype=weight.dtype)
    rank, target = len(sample_weight.shape), len(weight.shape)
    if rank == target + 1 and sample_weight.shape[-1] == 1:
        sample_weight = ops.squeeze(sample_weight, axis=-1)
    elif 0 < rank < target:
        sample_weight = ops.reshape(sample_weight,
                                    tuple(sample_weight.shape) + (1,) * (target - rank))
    return sample_weight * weight


class IgnoreClassLoss(KimbalanceLoss):
    """Keras reductions, with `ignore_class` samples left out of the mean.

    As Keras' `SparseCategoricalCrossentropy(ignore_class=...)`: ignored
    samples have loss 0 (in `call()` too) and `"sum_over_batch_size"` divides
    by the number of kept samples; `"mean_with_sample_weight"` by the kept
    samples' weights. Done by folding a mask into `sample_weight` before
    Keras reduces.
    """

    def _reduction_weight(self, y_true: Any, y_pred: Any) -> Any:
        valid = _valid_mask(y_true, y_pred, self.ignore_class)
        if valid is None:
            return None
        if self.reduction in ("sum_over_batch_size", "mean"):
            return ops.divide_no_nan(valid, ops.mean(valid))
        if self.reduction == _MEAN_WITH_SAMPLE_WEIGHT:
            return valid
        return None  # "sum" / None: ignored samples already count 0.

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        self.check_labels(y_true, y_pred)
        with labels_checked():
            weight = self._reduction_weight(y_true, y_pred)
            if weight is not None:
                sample_weight = (weight if sample_weight is None
                                 else align_weight(sample_weight, weight))
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)


class PerSampleValues(keras.losses.Loss):
    """Keras' own reduction of given per-sample values (passed as `y_true`).

    `y_pred` only carries the Keras mask (as in `Loss.__call__`), so masks,
    `sample_weight` broadcasting and `tf.distribute` scaling are Keras'.
    """

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return y_true


def keras_reduce(values: Any, y_pred: Any, sample_weight: Any, *, reduction: str | None,
                 dtype: str | keras.DTypePolicy | None, name: str) -> Any:
    """Reduces per-sample `values` exactly as a Keras loss would."""
    reducer = PerSampleValues(name=name, reduction=reduction, dtype=dtype)
    return reducer(values, y_pred, sample_weight=sample_weight)
