"""Shared helpers of the kimbalance.training tests (test_training*.py).

Small seeded models (Dense -> BatchNorm [-> Dropout] -> classifier) and fixed
batches, so that fits compare exactly across models and backends.
"""

import re

import keras
import numpy as np

NUM_FEATURES = 4
NUM_CLASSES = 3


def error(name, value_text):
    """The house message for argument `name` with received value `value_text`."""
    return re.escape(f"Invalid value for argument `{name}`.") + ".*" + re.escape(
        f"Received: {name}={value_text}")


def data(n=24, seed=0):
    """`(x, y)`: float32 normal features, classes 0, 1, 2, 0, ... in turn."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, NUM_FEATURES)).astype("float32")
    return x, np.arange(n) % NUM_CLASSES


class Batches(keras.utils.PyDataset):
    """Fixed batches in a fixed order (no shuffling), for exact comparisons."""

    def __init__(self, x, y, batch_size=8, sample_weight=None):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.sample_weight = sample_weight

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.sample_weight is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.sample_weight[part]


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def model(*, head=None, dropout=False, compiled=True, optimizer="sgd",
          regularizer=None, momentum=0.99):
    """Dense -> BatchNorm [-> Dropout] -> head, seeded."""
    inputs = keras.Input((NUM_FEATURES,))
    hidden = keras.layers.Dense(
        6, name="hidden", kernel_regularizer=regularizer,
        kernel_initializer=keras.initializers.GlorotUniform(1))(inputs)
    hidden = keras.layers.BatchNormalization(name="bn", momentum=momentum)(hidden)
    if dropout:
        hidden = keras.layers.Dropout(0.3, seed=3, name="drop")(hidden)
    head = head or keras.layers.Dense(
        NUM_CLASSES, name="head",
        kernel_initializer=keras.initializers.GlorotUniform(2),
        bias_initializer=keras.initializers.RandomNormal(seed=4))
    result = keras.Model(inputs, head(hidden))
    if compiled:
        result.compile(optimizer=optimizer, loss=loss(), metrics=["accuracy"])
    return result


def twins(count=2, dropout=True, regularizer=None):
    """`count` uncompiled models with equal weights (and equal seeded dropout)."""
    models = [model(dropout=dropout, compiled=False, regularizer=regularizer)
              for _ in range(count)]
    for other in models[1:]:
        other.set_weights(models[0].get_weights())
    return models


def weights(of):
    """`{variable path: NumPy copy}` of every weight of a model."""
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in of.weights}
