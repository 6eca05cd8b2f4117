"""Shared plumbing of the loss family: label forms, precision, the Loss base.

Everything here is `keras.ops` only and traceable under jit on every backend:
label forms are decided from *static* shapes, never from tensor values.
"""

import keras
from keras import ops

from kimbalance._validation import invalid

_HALF = ("float16", "bfloat16")


def to_float32(x):
    """Promotes half-precision tensors to float32 (losses compute in float32)."""
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in _HALF or not _is_float(x):
        return ops.cast(x, "float32")
    return x


def _is_float(x):
    return keras.backend.standardize_dtype(x.dtype).startswith(("float", "bfloat"))


def is_sparse_labels(y_true, y_pred):
    """True when `y_true` holds class ids: rank(y_pred) - 1, or a trailing 1 dim.

    Decided from static ranks/shapes only. Raises a ValueError for any other
    rank combination (e.g. (N, C, 1) labels for (N, C) predictions).
    """
    true_rank = len(y_true.shape)
    pred_rank = len(y_pred.shape)
    if true_rank == pred_rank - 1:
        return True
    if true_rank == pred_rank:
        last_true, last_pred = y_true.shape[-1], y_pred.shape[-1]
        if last_true == 1 and last_pred != 1:
            return True
        if last_true is not None and last_pred is not None and last_true != last_pred:
            raise invalid(
                "y_true",
                f"class ids of shape (N,) or (N, 1), or one-hot / soft labels of "
                f"shape {tuple(y_pred.shape)} (matching y_pred)",
                f"<tensor of shape {tuple(y_true.shape)}>",
            )
        return False
    raise invalid(
        "y_true",
        f"rank {pred_rank - 1} class ids or rank {pred_rank} one-hot / soft labels "
        f"for y_pred of shape {tuple(y_pred.shape)}",
        f"<tensor of shape {tuple(y_true.shape)}>",
    )


def categorical_targets(y_true, y_pred, *, label_smoothing=0.0, ignore_class=None):
    """Returns (one_hot_targets, valid_mask or None) as float tensors like y_pred.

    Sparse labels are one-hot encoded (entries equal to `ignore_class` give an
    all-zero row and mask 0). Label smoothing follows Keras:
    `y * (1 - ls) + ls / C`.
    """
    num_classes = y_pred.shape[-1]
    mask = None
    if is_sparse_labels(y_true, y_pred):
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.cast(y_true, "int32")
        if ignore_class is not None:
            valid = ops.not_equal(labels, ignore_class)
            mask = ops.cast(valid, y_pred.dtype)
            labels = ops.where(valid, labels, ops.zeros_like(labels))
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


def log_probs(y_pred, from_logits, axis=-1):
    """log softmax of logits, or log of (renormalised, clipped) probabilities."""
    if from_logits:
        return ops.log_softmax(y_pred, axis=axis)
    probs = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    eps = keras.backend.epsilon()
    return ops.log(ops.clip(probs, eps, 1.0 - eps))


def log_sigmoid_pair(y_pred, from_logits):
    """Returns (log p, log (1 - p)) for sigmoid outputs, stable from logits."""
    if from_logits:
        return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
    eps = keras.backend.epsilon()
    p = ops.clip(y_pred, eps, 1.0 - eps)
    return ops.log(p), ops.log1p(-p)


class KimbalanceLoss(keras.losses.Loss):
    """Base class: a `keras.losses.Loss` around a per-sample loss function.

    Subclasses set `fn` (the public function) and pass its keyword arguments
    to `__init__`; those arguments are stored under the same names and
    returned by `get_config()` as plain JSON values.
    """

    fn = None

    def __init__(self, *, name, reduction="sum_over_batch_size", dtype=None,
                 **fn_kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._fn_kwargs = fn_kwargs

    def call(self, y_true, y_pred):
        return type(self).fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({k: _plain(v) for k, v in self._fn_kwargs.items()})
        return config


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value
