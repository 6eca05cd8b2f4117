"""kimbalance.training.weight_balance: weight balancing's second stage."""

import _training_helpers as helpers
import keras
import numpy as np
import pytest
from _training_helpers import NUM_CLASSES, NUM_FEATURES
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance import training
from kimbalance.data import BalancedBatchGenerator

# Shared with the other test_training*.py files.
_data, _error, _weights = (
    helpers.data, helpers.error, helpers.weights)


def _model(seed=2, scale=3.0):
    """Dense -> BatchNorm -> Dense head with unequal class norms, compiled."""
    inputs = keras.Input((NUM_FEATURES,))
    hidden = keras.layers.Dense(6, name="hidden", kernel_initializer=(
        keras.initializers.GlorotUniform(1)))(inputs)
    hidden = keras.layers.BatchNormalization(name="bn")(hidden)
    head = keras.layers.Dense(NUM_CLASSES, name="head", kernel_initializer=(
        keras.initializers.GlorotUniform(seed)))
    model = keras.Model(inputs, head(hidden))
    kernel = keras.ops.convert_to_numpy(head.kernel)
    head.kernel.assign(kernel * np.linspace(0.5, scale, NUM_CLASSES))
    model.compile(optimizer="sgd", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _norms(layer):
    return np.linalg.norm(np.asarray(layer.get_weights()[0], np.float64), axis=0)


def test_weight_balance_bounds_every_class_norm_and_keeps_the_backbone():
    model = _model()
    before = _weights(model)
    head = model.get_layer("head")
    norms = _norms(head)
    generator = BalancedBatchGenerator(*_data(), sampler="instance", batch_size=8,
                                       seed=0)
    history, bound = training.weight_balance(model, generator, epochs=2, verbose=0)
    # The official code's threshold: min + 0.1 (max - min) of the stage-1 norms.
    assert bound == pytest.approx(norms.min() + 0.1 * (norms.max() - norms.min()),
                                  rel=1e-6)
    assert np.all(_norms(head) <= bound * (1 + 1e-5))
    assert np.any(norms > bound)  # the bound was active
    after = _weights(model)
    for path, value in before.items():
        if path.startswith("head/"):
            assert not np.array_equal(after[path], value), path
        else:  # backbone weights and BatchNorm statistics
            np.testing.assert_array_equal(after[path], value, err_msg=path)
    assert len(history.history["loss"]) == 2
    # Restored: the kernel constraint, trainable flags, loss and optimizer.
    assert head.kernel.constraint is None
    assert all(layer.trainable for layer in model.layers)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    model.fit(*_data(), epochs=1, verbose=0)  # still trains as a whole


def test_weight_balance_default_optimizer_decays_the_classifier():
    """With a zero loss, AdamW's decay is the only change: w (1 - lr wd)^steps."""
    model = _model()
    head = model.get_layer("head")
    kernel = np.asarray(head.get_weights()[0], np.float64)

    def zero(y_true, y_pred):
        return 0.0 * keras.ops.sum(y_pred)

    x, y = _data(8)
    generator = BalancedBatchGenerator(x, y, sampler="instance", batch_size=8,
                                       seed=0)
    _, bound = training.weight_balance(model, generator, epochs=3, loss=zero,
                                       max_norm=100.0, weight_decay=0.5, verbose=0)
    assert bound == 100.0
    np.testing.assert_allclose(head.get_weights()[0], kernel * (1 - 1e-3 * 0.5) ** 3,
                               rtol=1e-5)
    assert model.loss.__class__ is keras.losses.SparseCategoricalCrossentropy


@settings(max_examples=4, deadline=None)
@given(st.floats(0.05, 3.0), st.integers(0, 1000))
def test_weight_balance_projects_onto_the_norm_ball(max_norm, seed):
    """Float64 oracle: with a zero learning rate the fit only projects,
    `w_c * min(1, max_norm / ||w_c||)` per class column."""
    model = _model(seed=seed)
    head = model.get_layer("head")
    kernel = np.asarray(head.get_weights()[0], np.float64)
    norms = np.linalg.norm(kernel, axis=0)
    expected = kernel * np.minimum(1.0, max_norm / norms)
    generator = BalancedBatchGenerator(*_data(8), sampler="instance", batch_size=8,
                                       seed=0)
    training.weight_balance(model, generator, epochs=1, max_norm=max_norm,
                            optimizer=keras.optimizers.SGD(0.0), verbose=0)
    np.testing.assert_allclose(head.get_weights()[0], expected, rtol=1e-5, atol=1e-7)


def test_weight_balance_threshold_one_is_the_largest_norm():
    model = _model()
    norms = _norms(model.get_layer("head"))
    generator = BalancedBatchGenerator(*_data(8), sampler="instance", batch_size=8)
    _, bound = training.weight_balance(model, generator, epochs=1, threshold=1.0,
                                       optimizer=keras.optimizers.SGD(0.0),
                                       verbose=0)
    assert bound == pytest.approx(norms.max(), rel=1e-6)
    np.testing.assert_allclose(_norms(model.get_layer("head")), norms, rtol=1e-5)


def test_weight_balance_errors():
    model = _model()
    batches = BalancedBatchGenerator(*_data(), sampler="instance", batch_size=8)
    call = training.weight_balance
    with pytest.raises(ValueError, match=_error("max_norm", "0.0")):
        call(model, batches, epochs=1, max_norm=0.0)
    with pytest.raises(ValueError, match=_error("threshold", "1.5")):
        call(model, batches, epochs=1, threshold=1.5)
    with pytest.raises(ValueError, match=_error("weight_decay", "-1.0")):
        call(model, batches, epochs=1, weight_decay=-1.0)
    with pytest.raises(ValueError, match=_error("weight_decay", "0.1")):
        call(model, batches, epochs=1, weight_decay=0.1, optimizer="sgd")
    with pytest.raises(ValueError, match=_error("loss", "3")):
        call(model, batches, epochs=1, loss=3)
    with pytest.raises(ValueError, match=_error("epochs", "0")):
        call(model, batches, epochs=0)
    with pytest.raises(ValueError, match="argument `generator`"):
        call(model, _data(), epochs=1)
    with pytest.raises(ValueError, match="argument `classifier`"):
        call(model, batches, epochs=1, classifier="hidden_nope")
    zero = _model()
    zero.get_layer("head").kernel.assign(np.zeros((6, NUM_CLASSES), "float32"))
    with pytest.raises(ValueError, match="a classifier with a non-zero kernel"):
        call(zero, batches, epochs=1)
    uncompiled = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="a compiled model"):
        call(uncompiled, batches, epochs=1)
    assert model.get_layer("head").kernel.constraint is None
