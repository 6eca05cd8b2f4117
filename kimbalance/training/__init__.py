"""Methods that act on a trained model or on the training step.

- `retrain_classifier`: classifier re-training (cRT): only the classifier
  learns, on class-balanced batches (decoupled training's second stage);
  optionally the backbone's BatchNorm statistics follow the balanced data
  (MiSLAS' shift learning).
- `tau_normalize`: a new model whose class weight vectors are rescaled.
- `learn_weight_scaling`: learnable weight scaling (LWS): a new model with a
  `kimbalance.layers.ClassScale` after the classifier, only the scales learn.
- `weight_balance`: weight balancing's second stage: only the classifier
  learns, with weight decay and a per-class norm bound.
- `SharpnessAwareModel`: SAM / ASAM / ImbSAM in `train_step` (torch, jax,
  tensorflow).

The classifier is a `keras.layers.Dense` or `kimbalance.layers.CosineDense`
layer; by default the last one of the model (nested models included).
`tau_normalize` and `learn_weight_scaling` rebuild the model from its config,
so they need a Sequential or Functional model (nested ones included).
"""

from kimbalance.training._decoupling import (
    learn_weight_scaling,
    retrain_classifier,
    tau_normalize,
)
from kimbalance.training._sam import SharpnessAwareModel
from kimbalance.training._weight_balance import weight_balance

__all__ = [
    "SharpnessAwareModel",
    "learn_weight_scaling",
    "retrain_classifier",
    "tau_normalize",
    "weight_balance",
]
