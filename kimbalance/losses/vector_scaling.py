"""Vector-scaling (VS) loss (Kini et al. 2021)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import check_counts, check_float, invalid
from kimbalance.losses._common import (
    MAX_SCALE,
    KimbalanceLoss,
    check_exponent,
    check_labels,
    labels_checked,
    num_outputs,
    to_float32,
)
from kimbalance.losses.crossentropy import weighted_categorical_crossentropy

__all__ = ["VSLoss", "vs_loss"]


def _class_counts(value):
    return check_counts("class_counts", value, positive=True).astype(np.float64)


def _check_gamma(value):
    return check_exponent("gamma", value)


def _check_tau(value):
    # |tau * log(prior)| <= 1e4 * 745: finite in float32, as for logit adjustment.
    return check_float("tau", value, low=0.0, high=MAX_SCALE)


def _scales_and_shifts(counts, gamma, tau):
    """(Delta, iota) in float64: (n_c / n_max)**gamma and tau * log(prior_c)."""
    scales = (counts / counts.max()) ** gamma
    logs = np.log(counts)
    shifts = tau * (logs - np.logaddexp.reduce(logs))
    return scales, shifts


@export
def vs_loss(y_true: Any, y_pred: Any, *, class_counts: ArrayLike, gamma: float = 0.2,
            tau: float = 1.0) -> Any:
    """Vector-scaling loss: cross-entropy of `Delta * z + iota`, per sample.

    Each logit is scaled by `Delta_c = (n_c / n_max)**gamma` (multiplicative,
    below 1 for the rarer classes, the official code's `z / ((n_max / n_c)**
    gamma)`) and shifted by `iota_c = tau * log(prior_c)` (additive, as the
    logit-adjusted loss), with `prior_c = n_c / sum(n)`. Train with it,
    predict with the raw logits. `gamma=0` is
    `logit_adjusted_crossentropy(class_priors=class_counts, tau=tau)`;
    `gamma=0, tau=0` is plain cross-entropy. The constants are computed in
    float64 once, then applied in float32 before `log_softmax`.

    Args:
        y_true: class ids (N,) / (N, 1), or one-hot / soft labels (N, C).
        y_pred: logits, shape (N, C).
        class_counts: the training-set count of each class (all > 0).
        gamma: the exponent of the multiplicative scaling, in [0, 1e4]
            (0.2 by default; 0.05-0.3 in the paper).
        tau: the strength of the additive adjustment, in [0, 1e4].

    Returns:
        A float32 tensor of shape y_pred.shape[:-1].

    Raises:
        ValueError: for invalid arguments, counts that are not one per class
            of `y_pred`, or label values that break the rules of
            `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[1.0, 1.0], [1.0, 1.0]])
    >>> loss = vs_loss(y_true, logits, class_counts=[90, 10], gamma=0.0, tau=1.0)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.1054, 2.3026]

    References:
        Kini et al., "Label-Imbalanced and Group-Sensitive Classification
        under Overparameterization", NeurIPS 2021.
    """
    counts = _class_counts(class_counts)
    gamma = _check_gamma(gamma)
    tau = _check_tau(tau)
    y_pred = to_float32(y_pred)
    num_classes = num_outputs(y_pred)
    if num_classes is not None and counts.shape[0] != num_classes:
        raise invalid("class_counts", f"{num_classes} values (one per class: the "
                      f"last dimension of y_pred is {num_classes})", class_counts)
    check_labels(y_true, y_pred, "distribution")
    scales, shifts = _scales_and_shifts(counts, gamma, tau)
    logits = y_pred
    if gamma:
        logits = logits * ops.convert_to_tensor(scales, dtype=y_pred.dtype)
    if tau:
        logits = logits + ops.convert_to_tensor(shifts, dtype=y_pred.dtype)
    with labels_checked():
        return weighted_categorical_crossentropy(y_true, logits, from_logits=True)


@export
class VSLoss(KimbalanceLoss):
    """Vector-scaling loss (`keras.losses.Loss`), from logits.

    Per sample `CE(y, softmax(Delta * z + iota))` with `Delta_c = (n_c /
    n_max)**gamma` and `iota_c = tau * log(prior_c)` (see `vs_loss`).

    Reduction: `call()` returns the per-sample values under every reduction;
    the default `"sum_over_batch_size"` averages them over the batch. For
    PyTorch's weighted mean `sum(w * l) / sum(w)`, pass per-sample weights `w`
    as `sample_weight` and use `reduction="mean_with_sample_weight"`.

    Args:
        class_counts: the training-set count of each class (all > 0).
        gamma: the exponent of the multiplicative scaling, in [0, 1e4].
        tau: the strength of the additive adjustment, in [0, 1e4].
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

    Examples:

    >>> loss = VSLoss(class_counts=[90, 10], gamma=0.0, tau=1.0)
    >>> round(float(loss(np.array([0, 1]), np.array([[1.0, 1.0], [1.0, 1.0]]))), 4)
    1.204

    References:
        Kini et al., "Label-Imbalanced and Group-Sensitive Classification
        under Overparameterization", NeurIPS 2021.
    """

    fn = vs_loss

    def __init__(self, class_counts: ArrayLike, gamma: float = 0.2, tau: float = 1.0,
                 reduction: str | None = "sum_over_batch_size", name: str = "vs_loss",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        super().__init__(
            name=name, reduction=reduction, dtype=dtype,
            class_counts=check_counts("class_counts", class_counts, positive=True),
            gamma=_check_gamma(gamma), tau=_check_tau(tau))
