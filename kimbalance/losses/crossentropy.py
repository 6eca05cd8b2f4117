"""Class-weighted categorical and binary cross-entropy.

Both losses return one value per sample; the reduction (`"sum_over_batch_size"`
by default, as in Keras) and `sample_weight` are applied by
`keras.losses.Loss.__call__`. Porting from PyTorch:

- `torch.nn.CrossEntropyLoss(weight=w)` averages with `sum(w_y * l) / sum(w_y)`.
  `WeightedCategoricalCrossentropy(class_weight=w,
  reduction="mean_with_sample_weight")` gives exactly that (the class weights
  of the batch's labels join the divisor, with any `sample_weight`).
- `torch.nn.BCEWithLogitsLoss(pos_weight=p, reduction="none")` equals
  `weighted_binary_crossentropy(y, z, pos_weight=p, from_logits=True)` before
  its mean over labels.
"""

import numbers

import numpy as np
from keras import ops

from kimbalance._api import export
from kimbalance._validation import (
    check_bool,
    check_float,
    check_int,
    check_vector,
    invalid,
)
from kimbalance.losses._common import (
    KimbalanceLoss,
    categorical_targets,
    is_sparse_labels,
    log_probs,
    to_float32,
)

__all__ = [
    "WeightedBinaryCrossentropy",
    "WeightedCategoricalCrossentropy",
    "weighted_binary_crossentropy",
    "weighted_categorical_crossentropy",
]

_MEAN_WITH_SAMPLE_WEIGHT = "mean_with_sample_weight"
# Probabilities are clipped to [eps, 1 - eps] as in Keras (backend.epsilon()).
_PROB_EPSILON = 1e-7


# --- argument checks (shared with focal.py and logit_adjusted.py) -------------


def _check_label_smoothing(value):
    return check_float("label_smoothing", value, low=0.0, high=1.0)


def _check_ignore_class(value):
    return None if value is None else check_int("ignore_class", value)


def _check_class_vector(name, value):
    """None, or a 1-D float64 array of finite weights >= 0 (a dict {c: w} too)."""
    if value is None:
        return None
    if isinstance(value, dict):
        if set(value) != set(range(len(value))):
            raise invalid(name, "a dict with one weight for each class 0..C-1, or a "
                          "1-D sequence of weights", value)
        value = [value[c] for c in range(len(value))]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise invalid(name, "a 1-D sequence of per-class weights (one per class)",
                      value)
    return check_vector(name, value)


def _check_scalar_or_vector(name, value, *, high=None):
    """None, a float >= 0 (<= high) or a 1-D array of them."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_float(name, value, low=0.0, high=high)
    arr = check_vector(name, value)
    if high is not None and np.any(arr > high):
        raise invalid(name, f"values in [0, {high}]", value)
    return arr


def _num_outputs(y_pred):
    return y_pred.shape[-1] if len(y_pred.shape) >= 1 else None


def _vector_tensor(name, value, num, dtype, what="class"):
    """A float tensor for a per-class (or per-label) vector; checks its length.

    The length is checked statically against the last dimension of y_pred, so
    a mismatch raises at trace time with the argument's name.
    """
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    arr = np.asarray(value, dtype=np.float64)
    if num is not None and arr.ndim == 1 and arr.shape[0] != num:
        raise invalid(name, f"{num} values (one per {what}: the last dimension of "
                      f"y_pred is {num})", arr)
    return ops.convert_to_tensor(arr, dtype=dtype)


# --- label plumbing -----------------------------------------------------------


def _sparse_ids(y_true, y_pred, ignore_class):
    """int32 class ids of shape y_pred.shape[:-1] and a bool mask (or None)."""
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    labels = ops.cast(y_true, "int32")
    valid = None
    if ignore_class is not None:
        valid = ops.not_equal(labels, ignore_class)
        labels = ops.where(valid, labels, ops.zeros_like(labels))
    return labels, valid


def _take_class(values, labels):
    """values[..., labels] along the last axis."""
    picked = ops.take_along_axis(values, ops.expand_dims(labels, -1), axis=-1)
    return ops.squeeze(picked, axis=-1)


def _masked(values, valid):
    if valid is None:
        return values
    return ops.where(valid, values, ops.zeros_like(values))


def _categorical_parts(y_true, y_pred, *, from_logits, label_smoothing,
                       ignore_class):
    """Shared prologue: (y_pred as float32, log p, ids, targets).

    Class ids without label smoothing take the gather path: `ids` is
    (int32 labels, valid mask or None) and `targets` None. Every other case
    gets `ids` None and dense float `targets` (smoothed, ignored rows zeroed).
    """
    y_pred = to_float32(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    logp = log_probs(y_pred, from_logits)
    if is_sparse_labels(y_true, y_pred) and not label_smoothing:
        labels, valid = _sparse_ids(y_true, y_pred, ignore_class)
        return y_pred, logp, (labels, valid), None
    targets, _ = categorical_targets(y_true, y_pred, label_smoothing=label_smoothing,
                                     ignore_class=ignore_class)
    return y_pred, logp, None, targets


@export
def weighted_categorical_crossentropy(y_true, y_pred, *, class_weight=None,
                                      from_logits=False, label_smoothing=0.0,
                                      ignore_class=None):
    """Class-weighted categorical cross-entropy, one value per sample.

    For class ids the value is `w[y] * -log p[y]`; for one-hot or soft labels
    it is `-sum_c w[c] * y[c] * log p[c]` (label smoothing first, as in Keras).
    From logits it works in log space (`log_softmax`), so it stays finite for
    float32 logits of any magnitude.

    Args:
        y_true: class ids of shape (N,) or (N, 1) (or y_pred's shape without
            its last axis), or one-hot / soft labels shaped like `y_pred`.
        y_pred: logits (`from_logits=True`) or probabilities, shape (N, C).
        class_weight: None (all 1) or C weights >= 0 (a list, array or a dict
            `{class: weight}` with every class 0..C-1).
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1]; targets become `y * (1 - ls) + ls / C`.
        ignore_class: a class id whose samples get loss 0 (class ids only).

    Returns:
        A float32 tensor of shape y_pred.shape[:-1].

    Raises:
        ValueError: for a `class_weight` whose length is not C, negative
            weights, `label_smoothing` outside [0, 1], or labels whose shape
            fits neither form.

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0]])
    >>> loss = weighted_categorical_crossentropy(
    ...     y_true, logits, class_weight=[1.0, 3.0], from_logits=True)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.1269, 6.3808]
    """
    class_weight = _check_class_vector("class_weight", class_weight)
    label_smoothing = _check_label_smoothing(label_smoothing)
    ignore_class = _check_ignore_class(ignore_class)
    y_pred, logp, ids, targets = _categorical_parts(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing,
        ignore_class=ignore_class)
    weights = _vector_tensor("class_weight", class_weight, _num_outputs(y_pred),
                             y_pred.dtype)
    if ids is not None:
        labels, valid = ids
        nll = -_take_class(logp, labels)
        if weights is not None:
            nll = nll * ops.take(weights, labels)
        return _masked(nll, valid)
    if weights is not None:
        targets = targets * weights
    return -ops.sum(targets * logp, axis=-1)


def _target_weight(y_true, y_pred, class_weight, ignore_class):
    """Per-sample `sum_c w[c] * y[c]` of the *unsmoothed* labels (w[y] for ids).

    The divisor torch's `CrossEntropyLoss(weight=w)` uses for its mean; 0 for
    samples of `ignore_class`.
    """
    y_pred = to_float32(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    weights = _vector_tensor("class_weight", class_weight, _num_outputs(y_pred),
                             y_pred.dtype)
    if is_sparse_labels(y_true, y_pred):
        labels, valid = _sparse_ids(y_true, y_pred, ignore_class)
        return _masked(ops.take(weights, labels), valid)
    return ops.sum(ops.cast(y_true, y_pred.dtype) * weights, axis=-1)


def _valid_mask(y_true, y_pred, ignore_class):
    """float mask of the samples not labelled `ignore_class` (None if no ids)."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if ignore_class is None or not is_sparse_labels(y_true, y_pred):
        return None
    _, valid = _sparse_ids(y_true, y_pred, ignore_class)
    return ops.cast(valid, "float32")


def _align_weight(sample_weight, weight):
    """`sample_weight` broadcast against a per-sample `weight` tensor."""
    sample_weight = ops.convert_to_tensor(sample_weight, dtype=weight.dtype)
    rank, target = len(sample_weight.shape), len(weight.shape)
    if rank == target + 1 and sample_weight.shape[-1] == 1:
        sample_weight = ops.squeeze(sample_weight, axis=-1)
    elif 0 < rank < target:
        sample_weight = ops.reshape(sample_weight,
                                    tuple(sample_weight.shape) + (1,) * (target - rank))
    return sample_weight * weight


class _IgnoreClassLoss(KimbalanceLoss):
    """Keras reductions, with `ignore_class` samples left out of the mean.

    As Keras' `SparseCategoricalCrossentropy(ignore_class=...)`: ignored
    samples have loss 0 and `"sum_over_batch_size"` divides by the number of
    kept samples; `"mean_with_sample_weight"` by the kept samples' weights.
    Done by folding a mask into `sample_weight` before Keras reduces.
    """

    def _reduction_weight(self, y_true, y_pred):
        valid = _valid_mask(y_true, y_pred, self._fn_kwargs.get("ignore_class"))
        if valid is None:
            return None
        if self.reduction in ("sum_over_batch_size", "mean"):
            return ops.divide_no_nan(valid, ops.mean(valid))
        if self.reduction == _MEAN_WITH_SAMPLE_WEIGHT:
            return valid
        return None  # "sum" / None: ignored samples already count 0.

    def __call__(self, y_true, y_pred, sample_weight=None):
        weight = self._reduction_weight(y_true, y_pred)
        if weight is not None:
            sample_weight = (weight if sample_weight is None
                             else _align_weight(sample_weight, weight))
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)


@export
class WeightedCategoricalCrossentropy(_IgnoreClassLoss):
    """Class-weighted categorical cross-entropy (`keras.losses.Loss`).

    Per sample: `w[y] * CE` for class ids, `-sum_c w[c] * y[c] * log p[c]`
    for one-hot / soft labels; see `weighted_categorical_crossentropy`.

    Reduction: the Keras default `"sum_over_batch_size"` divides the sum of
    the weighted losses by the batch size. With
    `reduction="mean_with_sample_weight"` the divisor is instead the sum of the
    class weights of the batch's labels (times `sample_weight`, if given):
    `sum(w[y] * l) / sum(w[y])`, which is exactly the mean of
    `torch.nn.CrossEntropyLoss(weight=w)` (also with its `ignore_index` and
    `label_smoothing`). For one-hot / soft labels the divisor is
    `sum_c w[c] * y[c]` of the unsmoothed labels (for one-hot labels the same
    number). Samples of `ignore_class` count neither in the numerator nor in
    the divisor.

    Args:
        class_weight: None or C weights >= 0 (list, array or `{class: weight}`
            dict); `kimbalance.weights.class_weights` computes common schemes.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1].
        ignore_class: a class id to leave out (class-id labels only).
        reduction: a Keras reduction (see above for
            `"mean_with_sample_weight"`).
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed.

    Examples:

    >>> y_true = np.array([0, 1, 1])
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    >>> loss = WeightedCategoricalCrossentropy(class_weight=[1.0, 3.0],
    ...                                        from_logits=True)
    >>> round(float(loss(y_true, logits)), 4)
    2.2962
    >>> torch_like = WeightedCategoricalCrossentropy(
    ...     class_weight=[1.0, 3.0], from_logits=True,
    ...     reduction="mean_with_sample_weight")
    >>> round(float(torch_like(y_true, logits)), 4)
    0.9841

    References:
        King & Zeng, "Logistic Regression in Rare Events Data", Political
        Analysis 2001 (weighting the likelihood to correct for class
        frequencies); Cui et al., "Class-Balanced Loss Based on Effective
        Number of Samples", CVPR 2019 (`kimbalance.weights` schemes).
    """

    fn = weighted_categorical_crossentropy

    def __init__(self, class_weight=None, from_logits=False, label_smoothing=0.0,
                 ignore_class=None, reduction="sum_over_batch_size",
                 name="weighted_categorical_crossentropy", dtype=None):
        self.class_weight = _check_class_vector("class_weight", class_weight)
        self.from_logits = check_bool("from_logits", from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)
        self.ignore_class = _check_ignore_class(ignore_class)
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         class_weight=self.class_weight, from_logits=self.from_logits,
                         label_smoothing=self.label_smoothing,
                         ignore_class=self.ignore_class)

    def _torch_mean(self):
        return (self.reduction == _MEAN_WITH_SAMPLE_WEIGHT
                and self.class_weight is not None)

    def _reduction_weight(self, y_true, y_pred):
        if self._torch_mean():
            return _target_weight(y_true, y_pred, self.class_weight, self.ignore_class)
        return super()._reduction_weight(y_true, y_pred)

    def call(self, y_true, y_pred):
        values = super().call(y_true, y_pred)
        if self._torch_mean():
            # Keras multiplies by the (class-weight) sample weights it divides
            # by, so hand it l / w: the reduction is sum(l) / sum(w).
            divisor = _target_weight(y_true, y_pred, self.class_weight,
                                     self.ignore_class)
            values = ops.divide_no_nan(values, divisor)
        return values


# --- binary / multi-label -----------------------------------------------------


def _binary_targets(y_true, y_pred):
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


def _binary_nll(y_true, y_pred, from_logits, pos_weight=None, neg_weight=None):
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
    p = ops.clip(y_pred, _PROB_EPSILON, 1.0 - _PROB_EPSILON)
    return -(pos_coef * ops.log(p) + neg_coef * ops.log1p(-p))


def _mean_over_labels(values):
    """Per-sample mean over the label axis; rank-1 outputs are one label each."""
    if len(values.shape) <= 1:
        return values
    return ops.mean(values, axis=-1)


@export
def weighted_binary_crossentropy(y_true, y_pred, *, pos_weight=None, neg_weight=None,
                                 from_logits=False, label_smoothing=0.0):
    """Binary / multi-label cross-entropy with per-label weights, per sample.

    Each label contributes
    `-(pos_weight * y * log p + neg_weight * (1 - y) * log(1 - p))` and a
    sample's value is the mean over its labels (the last axis; rank-1
    `y_pred` is one label per sample). With `neg_weight=None` this is
    elementwise `torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)`.

    Args:
        y_true: 0/1 (or soft) labels shaped like `y_pred`; (N,) labels are
            accepted for (N, 1) outputs.
        y_pred: logits or probabilities, shape (N, L) or (N,).
        pos_weight: None (1), a float >= 0, or L floats >= 0 (one per label);
            `kimbalance.weights.pos_weights(y)` gives torch's neg/pos ratio.
        neg_weight: the same for the negative term.
        from_logits: whether `y_pred` holds logits (then computed with
            `softplus`, finite for any float32 logit).
        label_smoothing: in [0, 1]; targets become `y * (1 - ls) + ls / 2`.

    Returns:
        A float32 tensor of shape y_pred.shape[:-1] (or (N,) for rank-1).

    Raises:
        ValueError: for negative or non-finite weights, a weight list whose
            length is not L, or `label_smoothing` outside [0, 1].

    Examples:

    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> logits = np.array([[0.0, 0.0], [2.0, -2.0]])
    >>> loss = weighted_binary_crossentropy(
    ...     y_true, logits, pos_weight=[1.0, 4.0], from_logits=True)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.6931, 5.3173]
    """
    pos_weight = _check_scalar_or_vector("pos_weight", pos_weight)
    neg_weight = _check_scalar_or_vector("neg_weight", neg_weight)
    label_smoothing = _check_label_smoothing(label_smoothing)
    y_pred = to_float32(y_pred)
    y_true = _binary_targets(y_true, y_pred)
    num_labels = _num_outputs(y_pred) if len(y_pred.shape) >= 2 else 1
    pos_w = _vector_tensor("pos_weight", pos_weight, num_labels, y_pred.dtype, "label")
    neg_w = _vector_tensor("neg_weight", neg_weight, num_labels, y_pred.dtype, "label")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return _mean_over_labels(_binary_nll(y_true, y_pred, from_logits, pos_w, neg_w))


@export
class WeightedBinaryCrossentropy(KimbalanceLoss):
    """Binary / multi-label cross-entropy with per-label weights (`Loss`).

    See `weighted_binary_crossentropy`. Per sample: the mean over labels of
    `-(pos_weight * y * log p + neg_weight * (1 - y) * log(1 - p))`; the batch
    is then reduced as in Keras (`"sum_over_batch_size"`). Elementwise this is
    `torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")`, so
    the default reduction equals torch's `reduction="mean"` for (N, L) inputs.

    Args:
        pos_weight: None, a float >= 0, or one float >= 0 per label.
        neg_weight: None, a float >= 0, or one float >= 0 per label.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1].
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed.

    Examples:

    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> logits = np.array([[0.0, 0.0], [2.0, -2.0]])
    >>> loss = WeightedBinaryCrossentropy(pos_weight=[1.0, 4.0], from_logits=True)
    >>> round(float(loss(y_true, logits)), 4)
    3.0052
    """

    fn = weighted_binary_crossentropy

    def __init__(self, pos_weight=None, neg_weight=None, from_logits=False,
                 label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="weighted_binary_crossentropy", dtype=None):
        self.pos_weight = _check_scalar_or_vector("pos_weight", pos_weight)
        self.neg_weight = _check_scalar_or_vector("neg_weight", neg_weight)
        self.from_logits = check_bool("from_logits", from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         pos_weight=self.pos_weight, neg_weight=self.neg_weight,
                         from_logits=self.from_logits,
                         label_smoothing=self.label_smoothing)
