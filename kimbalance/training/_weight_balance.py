"""Weight balancing's second stage (Alshammari et al. 2022)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kimbalance._validation import check_float, check_int, invalid
from kimbalance.training._classifier import (
    check_generator,
    check_model,
    compile_config,
    find_classifier,
    fit_only,
    get_optimizer,
)

__all__ = ["weight_balance"]


def weight_balance(model: keras.Model, generator: Any, *, epochs: int,
                   max_norm: float | None = None, threshold: float = 0.1,
                   weight_decay: float | None = None, loss: Any = None,
                   classifier: keras.layers.Layer | str | None = None,
                   optimizer: keras.optimizers.Optimizer | str | None = None,
                   **fit_kwargs: Any) -> tuple[keras.callbacks.History, float]:
    """Weight balancing, stage 2: the classifier alone, norm-bounded and decayed.

    Weight balancing (Alshammari et al. 2022) trains the whole network with
    cross-entropy and a tuned, large weight decay (stage 1, which alone
    evens out the class weight norms), then fine-tunes the classifier only
    (not re-initialised; this function) with a class-balanced loss, weight
    decay and a max-norm bound: after every step each class's weight vector
    (a column of the `(features, classes)` kernel) is projected into the
    ball `||w_c|| <= max_norm` (the bias is not bounded). The bound defaults
    to the official code's `min_c ||w_c|| + threshold * (max_c ||w_c|| -
    min_c ||w_c||)` before stage 2. The projection is
    `keras.constraints.MaxNorm(max_norm, axis=0)` on the kernel during the
    fit (Keras optimizers apply it after every update) and once before it.
    Freezing, recompiling and restoring are as in `retrain_classifier`.
    The default optimizer is `AdamW(1e-3, weight_decay)` (decoupled:
    `w -= lr * wd * w` per step); the paper's is `SGD(0.01, momentum=0.9,
    weight_decay=0.1)` with cosine decay over 10 epochs (PyTorch couples the
    decay with the gradient: the same without momentum).

    Args:
        model: a built, compiled `keras.Model` (its metrics, and its loss
            unless `loss` is given, are used).
        generator: the batches to fit on (see `retrain_classifier`); the
            paper's are instance-sampled (the loss balances the classes).
        epochs: int >= 1, the number of epochs.
        max_norm: None for the threshold rule above, else a finite float > 0,
            the bound on every class's weight norm.
        threshold: finite float in [0, 1], the position of the default bound
            between the smallest and the largest class norm (used when
            `max_norm` is None).
        weight_decay: None for 0.1, else a finite float >= 0; only with the
            default optimizer (set your own optimizer's decay on it).
        loss: None for the model's compiled loss, else the stage-2 loss (a
            `keras.losses.Loss`, its name or a callable), e.g. the paper's
            class-balanced CE: `kimbalance.losses.
            WeightedCategoricalCrossentropy` with effective-number weights.
        classifier: `None` for the model's last `Dense` / `CosineDense`
            layer, else such a layer of the model or its name (the bound does
            not change a cosine classifier's outputs).
        optimizer: `None` for `AdamW(1e-3)` with `weight_decay`, else a Keras
            optimizer or its name.
        **fit_kwargs: further arguments of `model.fit`.

    Returns:
        A tuple `(history, max_norm)`: the fit's `History` and the bound
        used (a float).

    Raises:
        ValueError: as `retrain_classifier`, and for `max_norm` not a finite
            float > 0, `threshold` outside [0, 1], `weight_decay` negative or
            with an `optimizer`, or `loss` not None, a str or a callable.

    Examples:

    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> model.compile(loss="sparse_categorical_crossentropy")
    >>> batches = (b for b in [(np.ones((4, 3)), np.array([0, 1, 0, 1]))])
    >>> _, bound = weight_balance(model, batches, epochs=1, max_norm=0.5,
    ...                           verbose=0)
    >>> bool(np.all(np.linalg.norm(model.layers[-1].get_weights()[0], axis=0)
    ...             <= 0.5 + 1e-6))
    True

    References:
        Alshammari, S. et al. "Long-Tailed Recognition via Weight
        Balancing." CVPR 2022.
    """
    check_model(model)
    epochs = check_int("epochs", epochs, low=1)
    generator = check_generator(generator)
    head = find_classifier(model, classifier)
    threshold = check_float("threshold", threshold, low=0.0, high=1.0)
    if max_norm is not None:
        max_norm = check_float("max_norm", max_norm, low=0.0, low_inclusive=False)
    if weight_decay is not None:
        weight_decay = check_float("weight_decay", weight_decay, low=0.0)
        if optimizer is not None:
            raise invalid("weight_decay", "None when an optimizer is given (set "
                          "the weight decay on the optimizer)", weight_decay)
    if loss is not None and not (isinstance(loss, str) or callable(loss)):
        raise invalid("loss", "None, a keras.losses.Loss, its name or a callable",
                      loss)
    if optimizer is None:
        optimizer = keras.optimizers.AdamW(  # the paper's stage-2 decay: 0.1
            learning_rate=1e-3, weight_decay=0.1 if weight_decay is None
            else weight_decay)
    optimizer = get_optimizer(optimizer)
    compile_config(model)  # fail before touching the weights
    if max_norm is None:
        norms = np.linalg.norm(np.asarray(ops.convert_to_numpy(head.kernel),
                                          np.float64), axis=0)
        max_norm = float(norms.min() + threshold * (norms.max() - norms.min()))
        if max_norm <= 0:
            raise invalid("model", "a classifier with a non-zero kernel (the "
                          "default bound is derived from its class norms)", model)
    kernel = head.kernel
    original = kernel.constraint
    kernel.constraint = keras.constraints.MaxNorm(max_norm, axis=0)
    try:
        kernel.assign(kernel.constraint(kernel))
        history = fit_only(model, head, generator, epochs=epochs,
                           optimizer=optimizer, fit_kwargs=fit_kwargs, loss=loss)
    finally:
        kernel.constraint = original
    return history, max_norm


