"""Losses for class-imbalanced training: `keras.losses.Loss` classes + functions.

Every loss works on torch, jax and tensorflow, takes class ids (N,) / (N, 1)
or one-hot / soft labels (N, C), and computes in float32 (also under mixed
precision policies).

Each loss is a function `f(y_true, y_pred, **hyperparameters)` returning one
value per sample, and a class that stores the same hyperparameters as
attributes. The class's `call(y_true, y_pred)` is that per-sample value under
every `reduction`; `loss(y_true, y_pred, sample_weight)` then reduces as
Keras does: `"sum_over_batch_size"` (default) is `sum(s * l) / N`,
`"mean_with_sample_weight"` is `sum(s * l) / sum(s)` (PyTorch's weighted mean
`sum(w * l) / sum(w)`: pass the weights as `sample_weight`), `"sum"` and
`None` as in Keras. `WeightedCategoricalCrossentropy(class_weight=w,
reduction="mean_with_sample_weight")` divides by the class weights of the
labels as well, as `torch.nn.CrossEntropyLoss(weight=w)` does.

Label values are checked whenever they are concrete (NumPy arrays, lists,
eager tensors): ids outside `[0, C)` (negative ids too: use `ignore_class`
where a loss takes it), fractional, NaN or infinite labels, and dense labels
that break the loss's rule raise a `ValueError` naming `y_true`:

- single-label losses (weighted CE, focal, logit adjusted, LDAM, CDT) take
  one-hot or soft rows with values in [0, 1] that sum to 1 (so an all-zero
  row is an error);
- binary / multi-label losses (weighted BCE, sigmoid focal, asymmetric) take
  0/1 or soft labels in [0, 1];
- the distribution-balanced loss needs hard 0/1 multi-hot labels.

Under a jit trace (a compiled `model.fit` on jax or tensorflow, `jax.jit`,
`tf.function`, `torch.compile`) values are unknown and not checked, as in
Keras' own sparse losses: an id outside `[0, C)` then gives an undefined
result (e.g. NaN on jax, an `InvalidArgumentError` from TensorFlow's CPU
gather, an arbitrary value under `torch.compile`), not the `ValueError`.
Check labels where data enters (`kimbalance.data.BalancedBatchGenerator`
does). Hyperparameters are bounded so that every derived float32 quantity
stays finite (e.g. `tau`, `scale` <= 1e4; exponents <= 1e4; weights <= 1e12).
"""

from kimbalance.losses import (
    crossentropy,
    focal,
    label_smoothing,
    logit_adjusted,
    long_tail,
    multilabel,
    segmentation,
    vector_scaling,
)
from kimbalance.losses.crossentropy import *  # noqa: F403
from kimbalance.losses.focal import *  # noqa: F403
from kimbalance.losses.label_smoothing import *  # noqa: F403
from kimbalance.losses.logit_adjusted import *  # noqa: F403
from kimbalance.losses.long_tail import *  # noqa: F403
from kimbalance.losses.multilabel import *  # noqa: F403
from kimbalance.losses.segmentation import *  # noqa: F403
from kimbalance.losses.vector_scaling import *  # noqa: F403

__all__ = [
    *crossentropy.__all__,
    *focal.__all__,
    *logit_adjusted.__all__,
    *long_tail.__all__,
    *multilabel.__all__,
    *label_smoothing.__all__,
    *vector_scaling.__all__,
    *segmentation.__all__,
]
