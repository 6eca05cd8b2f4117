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

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kimbalance._api import export
from kimbalance._validation import check_bool, invalid
from kimbalance.losses._common import (
    IgnoreClassLoss,
    KimbalanceLoss,
    binary_nll,
    binary_targets,
    categorical_parts,
    categorical_targets,
    check_class_vector,
    check_ignore_class,
    check_label_smoothing,
    check_labels,
    check_scalar_or_vector,
    is_sparse_labels,
    keras_reduce,
    labels_checked,
    masked,
    mean_over_labels,
    num_outputs,
    sparse_ids,
    take_class,
    to_float32,
    vector_tensor,
)
from kimbalance.losses._fused import binary_crossentropy, softmax_crossentropy

__all__ = [
    "WeightedBinaryCrossentropy",
    "WeightedCategoricalCrossentropy",
    "weighted_binary_crossentropy",
    "weighted_categorical_crossentropy",
]

_MEAN_WITH_SAMPLE_WEIGHT = "mean_with_sample_weight"


@export
def weighted_categorical_crossentropy(
        y_true: Any, y_pred: Any, *,
        class_weight: Mapping[int, float] | Sequence[float] | np.ndarray | None = None,
        from_logits: bool = False, label_smoothing: float = 0.0,
        ignore_class: int | None = None,
) -> Any:
    """Class-weighted categorical cross-entropy, one value per sample.

    For class ids the value is `w[y] * -log p[y]`; for one-hot or soft labels
    it is `-sum_c w[c] * y[c] * log p[c]` (label smoothing first, as in Keras).
    From logits it works in log space (`log_softmax`), so it stays finite for
    float32 logits of any magnitude.

    From logits with one-hot, soft or smoothed labels on jax and tensorflow,
    value and gradient come from one fused pass (closed-form gradient,
    `keras.ops.custom_gradient`; gradients of gradients are not supported
    there); class ids without smoothing, probabilities, and torch (whose
    eager log-softmax backward is one kernel) use plain autodiff.

    Args:
        y_true: class ids of shape (N,) or (N, 1) (or y_pred's shape without
            its last axis), or one-hot / soft labels shaped like `y_pred`.
        y_pred: logits (`from_logits=True`) or probabilities, shape (N, C).
        class_weight: None (all 1) or C weights in [0, 1e12], not all 0
            (a list, array or a dict `{class: weight}` with every class
            0..C-1).
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1]; targets become `y * (1 - ls) + ls / C`.
        ignore_class: a class id whose samples get loss 0 (class ids only).

    Returns:
        A float32 tensor of shape y_pred.shape[:-1].

    Raises:
        ValueError: for a `class_weight` whose length is not C, negative
            weights, `label_smoothing` outside [0, 1], or labels whose shape
            fits neither form.
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0]])
    >>> loss = weighted_categorical_crossentropy(
    ...     y_true, logits, class_weight=[1.0, 3.0], from_logits=True)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.1269, 6.3808]
    """
    class_weight = check_class_vector("class_weight", class_weight)
    from_logits = check_bool("from_logits", from_logits)
    label_smoothing = check_label_smoothing(label_smoothing)
    ignore_class = check_ignore_class(ignore_class)
    y_pred = to_float32(y_pred)
    check_labels(y_true, y_pred, "distribution", ignore_class=ignore_class,
                 ignore_supported=True)
    weights = vector_tensor("class_weight", class_weight, num_outputs(y_pred),
                            y_pred.dtype)
    y_true = ops.convert_to_tensor(y_true)
    if from_logits and (label_smoothing or not is_sparse_labels(y_true, y_pred)):
        # Dense labels from logits: one fused pass (`_fused.softmax_crossentropy`).
        targets, _ = categorical_targets(y_true, y_pred,
                                         label_smoothing=label_smoothing,
                                         ignore_class=ignore_class)
        if weights is not None:
            targets = targets * weights
        return softmax_crossentropy(targets, y_pred)
    y_pred, logp, ids, targets = categorical_parts(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing,
        ignore_class=ignore_class)
    if ids is not None:
        labels, valid = ids
        nll = -take_class(logp, labels)
        if weights is not None:
            nll = nll * ops.take(weights, labels)
        return masked(nll, valid)
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
    weights = vector_tensor("class_weight", class_weight, num_outputs(y_pred),
                            y_pred.dtype)
    if is_sparse_labels(y_true, y_pred):
        labels, valid = sparse_ids(y_true, y_pred, ignore_class)
        return masked(ops.take(weights, labels), valid)
    return ops.sum(ops.cast(y_true, y_pred.dtype) * weights, axis=-1)


@export
class WeightedCategoricalCrossentropy(IgnoreClassLoss):
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
    the divisor. `call()` is the per-sample `w[y] * CE` under every reduction
    (the weighted mean happens in `__call__`, with Keras' own reductions, so
    `sample_weight`, masks and `tf.distribute` scaling apply as usual).

    Args:
        class_weight: None or C weights in [0, 1e12], not all 0 (list,
            array or `{class: weight}` dict);
            `kimbalance.weights.class_weights` computes common schemes.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1].
        ignore_class: a class id to leave out (class-id labels only).
        reduction: a Keras reduction (see above for
            `"mean_with_sample_weight"`).
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

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

    def __init__(
            self,
            class_weight: (Mapping[int, float] | Sequence[float] | np.ndarray
                           | None) = None,
            from_logits: bool = False, label_smoothing: float = 0.0,
            ignore_class: int | None = None,
            reduction: str | None = "sum_over_batch_size",
            name: str = "weighted_categorical_crossentropy",
            dtype: str | keras.DTypePolicy | None = None,
    ) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            class_weight=check_class_vector("class_weight", class_weight),
            from_logits=check_bool("from_logits", from_logits),
            label_smoothing=check_label_smoothing(label_smoothing),
            ignore_class=check_ignore_class(ignore_class))

    def _torch_mean(self):
        return (self.reduction == _MEAN_WITH_SAMPLE_WEIGHT
                and self.class_weight is not None)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if not self._torch_mean():
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        # torch's weighted mean sum(s * l) / sum(s * w[y]) (s: sample weights
        # and masks). Three Keras reductions with the same sample weights,
        # masks and tf.distribute scale k: A = k sum(s l) / sum(s),
        # B = k sum(s w[y]) / sum(s) and K = k; A / B * K is the mean. (Handing
        # Keras l / w[y] with sample weights s * w[y] would drop the smoothed
        # loss of samples whose class weight is 0.)
        self.check_labels(y_true, y_pred)
        with labels_checked():
            true_t = ops.convert_to_tensor(y_true, dtype=self.dtype)
            pred_t = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            values = self.call(true_t, pred_t)
            weight = _target_weight(true_t, pred_t, self.class_weight,
                                    self.ignore_class)
            kwargs = dict(reduction=_MEAN_WITH_SAMPLE_WEIGHT, dtype=self.dtype,
                          name=self.name)
            numerator = keras_reduce(values, y_pred, sample_weight, **kwargs)
            divisor = keras_reduce(ops.cast(weight, values.dtype), y_pred,
                                   sample_weight, **kwargs)
            scale = keras_reduce(ops.ones_like(values), y_pred, sample_weight,
                                 **kwargs)
            return ops.divide_no_nan(numerator, divisor) * scale


# --- binary / multi-label -----------------------------------------------------


def _check_binary_weights(pos_weight, neg_weight):
    """Both weights checked; both all-zero would make every label's loss 0."""
    pos = check_scalar_or_vector("pos_weight", pos_weight)
    neg = check_scalar_or_vector("neg_weight", neg_weight)
    if (pos is not None and neg is not None and not np.any(np.asarray(pos) > 0)
            and not np.any(np.asarray(neg) > 0)):
        raise invalid("neg_weight", "a weight > 0 somewhere when pos_weight is all "
                      "0 (both all 0 make the loss 0 for every label)", neg_weight)
    return pos, neg


@export
def weighted_binary_crossentropy(
        y_true: Any, y_pred: Any, *,
        pos_weight: float | Sequence[float] | np.ndarray | None = None,
        neg_weight: float | Sequence[float] | np.ndarray | None = None,
        from_logits: bool = False, label_smoothing: float = 0.0,
) -> Any:
    """Binary / multi-label cross-entropy with per-label weights, per sample.

    Each label contributes
    `-(pos_weight * y * log p + neg_weight * (1 - y) * log(1 - p))` and a
    sample's value is the mean over its labels (the last axis; rank-1
    `y_pred` is one label per sample). With `neg_weight=None` this is
    elementwise `torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)`.

    From logits, value and gradient come from one fused pass (closed-form
    gradient, `keras.ops.custom_gradient`); gradients of gradients are not
    supported there. Probabilities use plain autodiff.

    Args:
        y_true: 0/1 (or soft) labels shaped like `y_pred`; (N,) labels are
            accepted for (N, 1) outputs.
        y_pred: logits or probabilities, shape (N, L) or (N,).
        pos_weight: None (1), a float in [0, 1e12], or L of them (per label);
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
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> logits = np.array([[0.0, 0.0], [2.0, -2.0]])
    >>> loss = weighted_binary_crossentropy(
    ...     y_true, logits, pos_weight=[1.0, 4.0], from_logits=True)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.6931, 5.3173]
    """
    pos_weight, neg_weight = _check_binary_weights(pos_weight, neg_weight)
    from_logits = check_bool("from_logits", from_logits)
    label_smoothing = check_label_smoothing(label_smoothing)
    y_pred = to_float32(y_pred)
    check_labels(y_true, y_pred, "probabilities")
    y_true = binary_targets(y_true, y_pred)
    num_labels = num_outputs(y_pred) if len(y_pred.shape) >= 2 else 1
    pos_w = vector_tensor("pos_weight", pos_weight, num_labels, y_pred.dtype, "label")
    neg_w = vector_tensor("neg_weight", neg_weight, num_labels, y_pred.dtype, "label")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # One fused pass (see `_fused.binary_crossentropy`).
        return binary_crossentropy(y_true, y_pred, pos_weight=pos_w, neg_weight=neg_w)
    return mean_over_labels(binary_nll(y_true, y_pred, from_logits, pos_w, neg_w))


@export
class WeightedBinaryCrossentropy(KimbalanceLoss):
    """Binary / multi-label cross-entropy with per-label weights (`Loss`).

    See `weighted_binary_crossentropy`. Per sample: the mean over labels of
    `-(pos_weight * y * log p + neg_weight * (1 - y) * log(1 - p))`; the batch
    is then reduced as in Keras (`"sum_over_batch_size"`). Elementwise this is
    `torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")`, so
    the default reduction equals torch's `reduction="mean"` for (N, L) inputs.
    `call()` returns the per-sample values under every reduction; for a
    weighted mean `sum(w * l) / sum(w)` over samples, pass `w` as
    `sample_weight` with `reduction="mean_with_sample_weight"`.

    Args:
        pos_weight: None, a float in [0, 1e12], or one per label.
        neg_weight: None, a float in [0, 1e12], or one per label.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1].
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

    Examples:

    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> logits = np.array([[0.0, 0.0], [2.0, -2.0]])
    >>> loss = WeightedBinaryCrossentropy(pos_weight=[1.0, 4.0], from_logits=True)
    >>> round(float(loss(y_true, logits)), 4)
    3.0052
    """

    fn = weighted_binary_crossentropy
    label_rule = "probabilities"

    def __init__(self, pos_weight: float | Sequence[float] | np.ndarray | None = None,
                 neg_weight: float | Sequence[float] | np.ndarray | None = None,
                 from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "weighted_binary_crossentropy",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        pos_weight, neg_weight = _check_binary_weights(pos_weight, neg_weight)
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            pos_weight=pos_weight, neg_weight=neg_weight,
            from_logits=check_bool("from_logits", from_logits),
            label_smoothing=check_label_smoothing(label_smoothing))
