"""Sharpness-aware training: SAM, ASAM and ImbSAM in `train_step`.

The two-step update is written per backend (torch, jax stateless,
tensorflow), as Keras documents a custom `train_step` for each.
"""

from __future__ import annotations

from typing import Any, Self

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from kimbalance._api import export
from kimbalance._validation import check_bool, check_float, invalid
from kimbalance.training._classifier import check_model

__all__ = ["SharpnessAwareModel"]


@export
class SharpnessAwareModel(keras.Model):
    """Wraps a model so that `fit` uses sharpness-aware minimisation (SAM).

    Each training step computes the gradient `g` at the weights `w`, moves to
    the worst-case neighbour `w + e` with `e = rho * g / ||g||` (the norm over
    all trainable weights), computes the gradient there and applies THAT
    gradient at `w` with the compiled optimizer. With `adaptive=True` the
    neighbourhood is scaled elementwise by `|w|` (ASAM, Kwon et al. 2021):
    `e = rho * w**2 * g / ||w * g||`, with `rho` about 10 times larger
    (e.g. 0.5 to 2.0). `rho=0` is exactly the plain training step.

    With `sharpness_classes` (ImbSAM, Zhou et al. 2023) only the loss of the
    samples of those (tail) classes is made flat: the loss splits into
    `L_head + L_tail` by each sample's class (its id, or the argmax of a
    one-hot / soft label row) through the sample weights (the parts add up
    to the loss under the default `sum_over_batch_size` reduction), `e`
    comes from the gradient of `L_tail` and the applied gradient is
    `grad L_head(w) + grad L_tail(w + e)`, as in the official code. With
    every class listed this is SAM; with `rho=0` the plain step up to
    rounding. Layer regularization losses belong to `L_tail`.

    Non-trainable state (BatchNorm moving statistics, seed generators) is
    reset before the second pass and restored after it: the moving
    statistics are those of the first pass (the unperturbed weights, as the
    SAM authors recommend), and `Dropout` draws the same masks in both
    passes. Loss and metrics are those of the first pass. The wrapper shares
    its weights with `model` (fitting it trains `model` in place); compile
    the wrapper with any loss, optimizer and metrics. The step is written
    for torch, jax (stateless) and tensorflow; a step costs two forward and
    backward passes (ImbSAM: one more backward, jax: one more of each). No
    distribution strategies. The wrapper is serializable (its config holds
    the model's) and saves to / loads from `.keras` files.

    Args:
        model: the `keras.Model` to train.
        rho: finite float >= 0, the radius of the neighbourhood.
        adaptive: bool, ASAM's scale-invariant neighbourhood.
        epsilon: finite float > 0 added to the gradient norm.
        sharpness_classes: None (SAM), or the class ids (ints >= 0, unique,
            at least one) whose loss the perturbation comes from (ImbSAM).
        **kwargs: base model arguments (`name`, ...).

    Raises:
        ValueError: for a `model` that is not a Keras model, `rho` negative
            or not finite, a non-bool `adaptive`, `epsilon` not a finite
            float > 0 or bad `sharpness_classes`.

    Examples:

    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> sam = SharpnessAwareModel(model, rho=0.05)
    >>> sam.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    >>> history = sam.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), verbose=0)
    >>> len(history.history["loss"])
    1

    References:
        Foret, P. et al. "Sharpness-Aware Minimization for Efficiently
        Improving Generalization." ICLR 2021.
        Kwon, J. et al. "ASAM: Adaptive Sharpness-Aware Minimization for
        Scale-Invariant Learning of Deep Neural Networks." ICML 2021.
        Zhou, Y. et al. "ImbSAM: A Closer Look at Sharpness-Aware
        Minimization in Class-Imbalanced Recognition." ICCV 2023.
    """

    def __init__(self, model: keras.Model, rho: float = 0.05, *,
                 adaptive: bool = False, epsilon: float = 1e-12,
                 sharpness_classes: ArrayLike | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = check_model(model, built=False)
        self.rho = check_float("rho", rho, low=0.0)
        self.adaptive = check_bool("adaptive", adaptive)
        self.epsilon = check_float("epsilon", epsilon, low=0.0,
                                   low_inclusive=False)
        classes = sharpness_classes
        if classes is not None and not (
                isinstance(classes, list | tuple | np.ndarray) and len(classes)
                and all(isinstance(c, int | np.integer) and not isinstance(c, bool)
                        and c >= 0 for c in classes)
                and len(set(map(int, classes))) == len(classes)):
            raise invalid("sharpness_classes", "None or a non-empty list of "
                          "unique class ids (ints >= 0)", classes)
        self.sharpness_classes = None if classes is None else list(map(int, classes))
        self._head_pass = False

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.model(inputs, training=training)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable,
                "model": keras.saving.serialize_keras_object(self.model),
                "rho": self.rho, "adaptive": self.adaptive,
                "epsilon": self.epsilon,
                "sharpness_classes": self.sharpness_classes}

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    custom_objects: dict[str, Any] | None = None) -> Self:
        config = dict(config)
        model = keras.saving.deserialize_keras_object(
            config.pop("model"), custom_objects=custom_objects)
        return cls(model, **config)

    def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
        loss = super().compute_loss(*args, **kwargs)
        if self._head_pass and self.losses:  # regularization belongs to L_tail
            loss = loss - sum(ops.cast(ops.sum(r), loss.dtype) for r in self.losses)
        return loss

    def _split(self, y, sample_weight):
        """`(head, tail)` sample weights; `(None, sample_weight)` for SAM."""
        if self.sharpness_classes is None:
            return None, sample_weight
        y = ops.convert_to_tensor(y)
        ids = (ops.argmax(y, axis=-1) if len(y.shape) > 1 and y.shape[-1] != 1
               else ops.reshape(y, (-1,)))
        classes = ops.convert_to_tensor(self.sharpness_classes, "int32")
        tail = ops.cast(ops.any(ops.equal(ops.expand_dims(
            ops.cast(ids, "int32"), -1), classes), axis=-1), "float32")
        weight = ops.ones_like(tail) if sample_weight is None else ops.cast(
            sample_weight, "float32")
        tail = ops.reshape(tail, (-1,) + (1,) * (len(weight.shape) - 1))
        return weight * (1.0 - tail), weight * tail

    def _head_pass_of(self, function, *args, **kwargs):
        """`function(...)` with `compute_loss` giving `L_head` (no
        regularization); the flag is read while tracing."""
        self._head_pass = True
        try:
            return function(*args, **kwargs)
        finally:
            self._head_pass = False

    @staticmethod
    def _add(gradients, head_gradients):
        if head_gradients is None:
            return gradients
        return [h if g is None else g if h is None else g + h
                for g, h in zip(gradients, head_gradients, strict=True)]

    # The perturbation, in keras.ops on whichever backend's tensors.
    def _perturbations(self, gradients, weights):
        present = [(g, w) for g, w in zip(gradients, weights, strict=True)
                   if g is not None]
        squares = [
            ops.sum(ops.square(ops.cast(g * ops.abs(w) if self.adaptive else g,
                                        "float32")))
            for g, w in present
        ]
        norm = ops.sqrt(sum(squares[1:], squares[0])) if squares else 0.0
        scale = self.rho / (norm + self.epsilon)

        def step(g, w):
            e = ops.cast(g, "float32") * scale
            return ops.cast(e * ops.square(ops.cast(w, "float32")) if self.adaptive
                            else e, w.dtype)

        return [None if g is None else step(g, w)
                for g, w in zip(gradients, weights, strict=True)]

    def _track_loss(self, loss, x):
        batch_size = ops.shape(next(i for i in keras.tree.flatten(x)
                                    if i is not None))[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=batch_size)

    def _forward(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred,
                                 sample_weight=sample_weight, training=True)
        return y_pred, loss

    def train_step(self, *args: Any) -> Any:
        backend = keras.backend.backend()
        if backend == "jax":
            return self._jax_train_step(*args)
        if backend == "torch":
            return self._torch_train_step(*args)
        if backend == "tensorflow":
            return self._tensorflow_train_step(*args)
        raise NotImplementedError(
            f"SharpnessAwareModel supports the jax, torch and tensorflow backends, "
            f"not {backend}.")

    def _torch_train_step(self, data):
        import torch

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        head_weight, weight = self._split(y, sample_weight)
        weights = self.trainable_weights[:]
        states = self.non_trainable_variables
        before = [torch.clone(v.value.detach()) for v in states]
        self.zero_grad()
        y_pred, loss = self._forward(x, y, weight)
        head_gradients = None
        if head_weight is not None:  # ImbSAM: grad L_head(w), kept
            head = self._head_pass_of(self.compute_loss, x=x, y=y, y_pred=y_pred,
                                      sample_weight=head_weight, training=True)
            self.optimizer.scale_loss(head).backward(retain_graph=True)
            head_gradients = [None if v.value.grad is None else
                              torch.clone(v.value.grad) for v in weights]
            self.zero_grad()
        self._track_loss(loss if head_weight is None else loss + head, x)
        self.optimizer.scale_loss(loss).backward()
        gradients = [v.value.grad for v in weights]
        with torch.no_grad():
            originals = [torch.clone(v.value.detach()) for v in weights]
            after = [torch.clone(v.value.detach()) for v in states]
            for v, e in zip(weights, self._perturbations(gradients, originals),
                            strict=True):
                if e is not None:
                    v.assign(v.value + e)
            for v, value in zip(states, before, strict=True):
                v.assign(value)
        self.zero_grad()
        _, perturbed_loss = self._forward(x, y, weight)
        self.optimizer.scale_loss(perturbed_loss).backward()
        gradients = self._add([v.value.grad for v in weights], head_gradients)
        with torch.no_grad():
            for v, value in zip(weights, originals, strict=True):
                v.assign(value)
            for v, value in zip(states, after, strict=True):
                v.assign(value)
            self.optimizer.apply(gradients, weights)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _tensorflow_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        head_weight, weight = self._split(y, sample_weight)
        weights = self.trainable_weights
        states = self.non_trainable_variables
        before = [tf.identity(v.value) for v in states]
        with tf.GradientTape(persistent=head_weight is not None) as tape:
            y_pred, loss = self._forward(x, y, weight)
            if head_weight is not None:  # ImbSAM: grad L_head(w), kept
                head = self._head_pass_of(
                    self.compute_loss, x=x, y=y, y_pred=y_pred,
                    sample_weight=head_weight, training=True)
                scaled_head = self.optimizer.scale_loss(head)
            self._track_loss(loss if head_weight is None else loss + head, x)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, weights)
        head_gradients = (None if head_weight is None
                          else tape.gradient(scaled_head, weights))
        del tape
        originals = [tf.identity(v.value) for v in weights]
        after = [tf.identity(v.value) for v in states]
        perturbations = self._perturbations(gradients, originals)
        for v, value, e in zip(weights, originals, perturbations, strict=True):
            if e is not None:
                v.assign(value + e)
        for v, value in zip(states, before, strict=True):
            v.assign(value)
        with tf.GradientTape() as tape:
            _, perturbed_loss = self._forward(x, y, weight)
            scaled = self.optimizer.scale_loss(perturbed_loss)
        gradients = self._add(tape.gradient(scaled, weights), head_gradients)
        for v, value in zip(weights, originals, strict=True):
            v.assign(value)
        for v, value in zip(states, after, strict=True):
            v.assign(value)
        self.optimizer.apply_gradients(zip(gradients, weights, strict=True))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_state, metrics_state = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        head_weight, weight = self._split(y, sample_weight)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (_, aux), gradients = grad_fn(
            trainable, non_trainable, metrics_state, x, y, weight,
            training=True, optimizer_variables=optimizer_state)
        loss, y_pred, updated_non_trainable, metrics_state = aux
        head_gradients = None
        if head_weight is not None:  # ImbSAM: grad L_head(w), same seeds
            (_, (head, *_)), head_gradients = self._head_pass_of(
                grad_fn, trainable, non_trainable, metrics_state, x, y,
                head_weight, training=True, optimizer_variables=optimizer_state)
            loss = loss + head
        perturbations = self._perturbations(gradients, trainable)
        perturbed = [w if e is None else w + e
                     for w, e in zip(trainable, perturbations, strict=True)]
        # From the initial non-trainable state (same seeds); updates dropped.
        _, gradients = grad_fn(
            perturbed, non_trainable, metrics_state, x, y, weight,
            training=True, optimizer_variables=optimizer_state)
        gradients = self._add(gradients, head_gradients)
        trainable, optimizer_state = self.optimizer.stateless_apply(
            optimizer_state, gradients, trainable)
        mapping = list(zip(self.metrics_variables, metrics_state, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._track_loss(loss, x)
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        metrics_state = [
            value if (value := scope.get_current_value(v)) is not None else old
            for v, old in zip(self.metrics_variables, metrics_state, strict=True)
        ]
        return logs, (trainable, updated_non_trainable, optimizer_state,
                      metrics_state)
