"""Logit-adjusted cross-entropy (Menon et al.) / Balanced Softmax (Ren et al.)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import check_bool, check_float, check_vector, invalid
from kimbalance.losses._common import (
    MAX_SCALE,
    KimbalanceLoss,
    check_labels,
    labels_checked,
    log_probs,
    num_outputs,
    to_float32,
)
from kimbalance.losses.crossentropy import weighted_categorical_crossentropy

__all__ = ["LogitAdjustedCrossentropy", "logit_adjusted_crossentropy"]


def _check_tau(tau):
    # |tau * log(prior)| <= 1e4 * 745 (float64's smallest prior): finite in float32.
    return check_float("tau", tau, low=0.0, high=MAX_SCALE)


def _check_priors(class_priors):
    """Priors or counts (all > 0, finite) as a float64 array, as given."""
    return check_vector("class_priors", class_priors, positive=True)


def _log_priors(priors):
    """log(p / sum(p)) in log space: finite even where sum(p) overflows."""
    logs = np.log(priors)
    return logs - np.logaddexp.reduce(logs)


@export
def logit_adjusted_crossentropy(y_true: Any, y_pred: Any, *, class_priors: ArrayLike,
                                tau: float = 1.0, from_logits: bool = True) -> Any:
    """Cross-entropy of the adjusted logits `z + tau * log(prior)`, per sample.

    Training with this loss and predicting with the raw logits `z` is the
    logit-adjusted loss of Menon et al.; `tau=1` is Balanced Softmax (Ren et
    al.), `tau=0` is plain cross-entropy. The adjustment is a constant per
    class computed in float64 once, then added in float32 and passed through
    `log_softmax`, so it is finite for any float32 logits.

    With one-hot or soft labels on jax and tensorflow, value and gradient
    come from one fused pass (closed-form gradient, `keras.ops.custom_gradient`;
    gradients of gradients are not supported there); torch uses autodiff.

    Args:
        y_true: class ids (N,) / (N, 1), or one-hot / soft labels (N, C).
        y_pred: logits (default) or probabilities (`from_logits=False`: their
            log is the logit), shape (N, C).
        class_priors: C training-set class priors or counts, all > 0 (counts
            are normalised to priors).
        tau: the adjustment strength, in [0, 1e4].
        from_logits: whether `y_pred` holds logits (default True: the model's
            raw scores are what gets adjusted).

    Returns:
        A float32 tensor of shape y_pred.shape[:-1].

    Raises:
        ValueError: for priors that are zero, negative, non-finite or not one
            per class of `y_pred`, `tau` outside [0, 1e4], or invalid label
            values (see `kimbalance.losses`).
        ValueError: naming `y_true`, for label values that break the
            rules of `kimbalance.losses` (checked when they are concrete).

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[1.0, 1.0], [1.0, 1.0]])
    >>> loss = logit_adjusted_crossentropy(y_true, logits, class_priors=[90, 10])
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(loss).tolist()]
    [0.1054, 2.3026]

    References:
        Menon et al., "Long-tail learning via logit adjustment", ICLR 2021.
        Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual
        Recognition", NeurIPS 2020.
    """
    priors = _check_priors(class_priors)
    tau = _check_tau(tau)
    from_logits = check_bool("from_logits", from_logits)
    y_pred = to_float32(y_pred)
    num_classes = num_outputs(y_pred)
    if num_classes is not None and priors.shape[0] != num_classes:
        raise invalid("class_priors", f"{num_classes} values (one per class: the "
                      f"last dimension of y_pred is {num_classes})", class_priors)
    check_labels(y_true, y_pred, "distribution")
    logits = y_pred if from_logits else log_probs(y_pred, from_logits=False)
    if tau:
        shift = ops.convert_to_tensor(tau * _log_priors(priors), dtype=y_pred.dtype)
        logits = logits + shift
    with labels_checked():
        return weighted_categorical_crossentropy(y_true, logits, from_logits=True)


@export
class LogitAdjustedCrossentropy(KimbalanceLoss):
    """Logit-adjusted cross-entropy / Balanced Softmax (`keras.losses.Loss`).

    Per sample `CE(y, softmax(z + tau * log(prior)))` (see
    `logit_adjusted_crossentropy`), reduced as in Keras
    (`"sum_over_batch_size"`). Train with it, predict with the model's raw
    logits: the adjustment is only inside the loss.

    Reduction: `call()` returns the per-sample values under every reduction;
    the default `"sum_over_batch_size"` averages them over the batch. For
    PyTorch's weighted mean `sum(w * l) / sum(w)`, pass per-sample weights `w`
    as `sample_weight` and use `reduction="mean_with_sample_weight"`.

    Args:
        class_priors: per-class training priors or counts, all > 0.
        tau: the adjustment strength, in [0, 1e4] (1 = Balanced Softmax).
        from_logits: whether `y_pred` holds logits (default True).
        reduction: a Keras reduction.
        name: the loss name.
        dtype: the loss dtype (computation happens in float32 regardless of
            a mixed-precision policy).

    Raises:
        ValueError: for invalid arguments, when constructed; for label
            values that break the rules of `kimbalance.losses`, when called.

    Examples:

    >>> y_true = np.array([0, 1])
    >>> logits = np.array([[1.0, 1.0], [1.0, 1.0]])
    >>> loss = LogitAdjustedCrossentropy(class_priors=[90, 10], tau=1.0)
    >>> round(float(loss(y_true, logits)), 4)
    1.204

    References:
        Menon et al., "Long-tail learning via logit adjustment", ICLR 2021.
        Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual
        Recognition", NeurIPS 2020.
    """

    fn = logit_adjusted_crossentropy

    def __init__(self, class_priors: ArrayLike, tau: float = 1.0,
                 from_logits: bool = True,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "logit_adjusted_crossentropy",
                 dtype: str | keras.DTypePolicy | None = None) -> None:
        # Stored as given (counts stay counts in the config), as floats.
        super().__init__(name=name, reduction=reduction, dtype=dtype,
                         class_priors=_check_priors(class_priors),
                         tau=_check_tau(tau),
                         from_logits=check_bool("from_logits", from_logits))
