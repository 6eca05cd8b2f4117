"""Value and gradient of a loss with the current backend's own autodiff."""

import keras
import numpy as np
from keras import ops


def value_and_grad(fn, y_pred):
    """(fn(y_pred), d sum(fn) / d y_pred) with the current backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "torch":
        x = ops.convert_to_tensor(y_pred).detach().requires_grad_(True)
        values = fn(x)
        values.sum().backward()
        return values.detach().cpu().numpy(), x.grad.cpu().numpy()
    if backend == "jax":
        import jax

        x = jax.numpy.asarray(y_pred)
        values, vjp = jax.vjp(fn, x)
        return np.asarray(values), np.asarray(vjp(jax.numpy.ones_like(values))[0])
    import tensorflow as tf

    x = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        values = fn(x)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, x).numpy()
