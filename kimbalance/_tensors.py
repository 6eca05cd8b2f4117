"""Concrete or traced: whether a tensor's values can be read now (layer 3).

Losses and metrics check label values only when they are concrete (NumPy,
Python lists and numbers, eager tensors). Inside a jit trace (a compiled
`model.fit` step on jax or tensorflow, `jax.jit`, `tf.function`,
`torch.compile`) the values are unknown and nothing may branch on them, so
the checks are skipped there and the traced code masks instead.

The backend modules are looked up in `sys.modules`, never imported: a tensor
of a framework that is not loaded cannot be passed in.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any

import keras
import numpy as np
from keras import ops

# A tuple, not a `|` union: torch dynamo traces isinstance on tuples.
HOST_TYPES = (np.ndarray, np.generic, list, tuple, numbers.Number)


def is_concrete(value: Any) -> bool:
    """Whether `value`'s numbers can be read now (not traced / symbolic).

    NumPy arrays, lists and Python numbers are concrete. A backend tensor is
    not when it is a symbolic `KerasTensor`, a jax tracer (inside `jax.jit`),
    a graph tensor of TensorFlow (inside `tf.function`), or a torch tensor
    while torch.compile (dynamo) traces or on the `meta` device.
    """
    if isinstance(value, HOST_TYPES):
        return True
    # torch first: dynamo traces these few lines without a graph break.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return not (torch.compiler.is_compiling() or value.device.type == "meta")
    if keras.backend.is_keras_tensor(value):
        return False
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(value, jax.core.Tracer):
        return False
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.executing_eagerly() and not tf.is_symbolic_tensor(value)
    return True


def concrete_values(value: Any) -> np.ndarray | None:
    """`value` as a NumPy array when its values are known now, else None."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, HOST_TYPES):
        return np.asarray(value)
    if not is_concrete(value):
        return None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    try:
        return np.asarray(ops.convert_to_numpy(value))
    except Exception:  # noqa: BLE001 - anything not convertible is not concrete.
        return None
