"""retrain_classifier(update_batchnorm_statistics=True): MiSLAS' BatchNorm shift.

In stage 2 the backbone's BatchNormalization layers update their moving mean
and variance on the (class-balanced) batches, while gamma / beta and every
other backbone weight stay frozen; the classifier trains. Without the option
nothing but the classifier changes (tests/test_training.py).
"""

import _training_helpers as helpers
import keras
import numpy as np
import pytest
from _training_helpers import NUM_CLASSES, NUM_FEATURES, Batches
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance import training

BN_STATISTICS = ("bn/moving_mean", "bn/moving_variance")


def _layers(layer):
    """`layer` and every layer under it, in pre-order."""
    subs = layer.layers if isinstance(layer, keras.Model) else []
    return [layer, *(item for sub in subs for item in _layers(sub))]


def _flags(model):
    """Every trainable flag of the model's layers and weights, in order."""
    return ([(layer.name, layer.trainable) for layer in _layers(model)],
            [(w.path, w.trainable) for w in model.weights])


def _hidden(model, x):
    """The BatchNorm layer's input, in float64."""
    layer = model.get_layer("hidden")
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    return np.asarray(x, np.float64) @ kernel + bias


def test_the_shift_moves_only_the_batchnorm_statistics_and_the_classifier():
    model = helpers.model(momentum=0.0)  # moving statistics = last batch's
    x, y = helpers.data(seed=1)
    x = x * 2.0 + 1.5  # a shifted distribution: the statistics must follow it
    flags = _flags(model)
    before = helpers.weights(model)
    history = training.retrain_classifier(
        model, Batches(x, y, batch_size=len(x)), epochs=2, verbose=0,
        update_batchnorm_statistics=True)
    after = helpers.weights(model)
    assert len(history.history["loss"]) == 2
    # The float64 oracle: mean and (biased) variance of the whole batch.
    hidden = _hidden(model, x)
    np.testing.assert_allclose(after["bn/moving_mean"], hidden.mean(axis=0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(after["bn/moving_variance"], hidden.var(axis=0),
                               rtol=1e-4, atol=1e-5)
    for path, value in before.items():
        if path.startswith("head/") or path in BN_STATISTICS:
            assert not np.array_equal(value, after[path]), path
        else:  # gamma, beta and the rest of the backbone: bit-identical
            np.testing.assert_array_equal(value, after[path], err_msg=path)
    assert _flags(model) == flags


def test_without_the_shift_the_statistics_stay():
    model = helpers.model(momentum=0.0)
    x, y = helpers.data(seed=1)
    before = helpers.weights(model)
    training.retrain_classifier(model, Batches(x, y), epochs=1, verbose=0,
                                update_batchnorm_statistics=False)
    after = helpers.weights(model)
    changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
    assert changed == ["head/bias", "head/kernel"]


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), shift=st.floats(-3.0, 3.0),
       momentum=st.sampled_from([0.5, 0.9, 0.99]))
def test_the_statistics_move_towards_the_balanced_data(seed, shift, momentum):
    # One step: moving = momentum * moving + (1 - momentum) * batch statistic,
    # so every moving statistic gets closer to the batch's (or stays on it).
    model = helpers.model(momentum=momentum)
    x, y = helpers.data(n=12, seed=seed)
    x = x + np.float32(shift)
    before = helpers.weights(model)
    training.retrain_classifier(model, Batches(x, y, batch_size=12), epochs=1,
                                verbose=0, update_batchnorm_statistics=True)
    after = helpers.weights(model)
    hidden = _hidden(model, x)
    for path, target in zip(BN_STATISTICS, (hidden.mean(0), hidden.var(0)),
                            strict=True):
        old, new = before[path], after[path]
        np.testing.assert_allclose(new, momentum * old + (1 - momentum) * target,
                                   rtol=1e-4, atol=1e-5)
        assert np.all(np.abs(new - target) <= np.abs(old - target) + 1e-5)
    for path in ("bn/gamma", "bn/beta", "hidden/kernel", "hidden/bias"):
        np.testing.assert_array_equal(before[path], after[path], err_msg=path)


def test_the_shift_reaches_batchnorm_in_nested_models_and_keeps_user_flags():
    inner = helpers.model(compiled=False, momentum=0.0)
    inner.get_layer("hidden").trainable = False  # a user's own flags survive
    inner.get_layer("bn").trainable = False  # shifted all the same (documented)
    inputs = keras.Input((NUM_FEATURES,))
    model = keras.Model(inputs, inner(inputs))
    model.compile(optimizer="adam", loss=helpers.loss())
    flags = _flags(model)
    x, y = helpers.data()
    before = helpers.weights(model)
    training.retrain_classifier(model, Batches(x, y, batch_size=24), epochs=1,
                                verbose=0, update_batchnorm_statistics=True)
    after = helpers.weights(model)
    changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
    assert changed == ["bn/moving_mean", "bn/moving_variance", "head/bias",
                       "head/kernel"]
    assert _flags(model) == flags


def test_flags_are_restored_when_the_fit_fails():
    model = helpers.model()
    flags = _flags(model)
    x, y = helpers.data()

    def batches():
        yield x[:8], y[:8]
        raise RuntimeError("broken input pipeline")

    with pytest.raises(RuntimeError, match="broken input pipeline"):
        training.retrain_classifier(model, batches(), epochs=1, verbose=0,
                                    update_batchnorm_statistics=True)
    assert _flags(model) == flags
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    gamma = helpers.weights(model)["bn/gamma"]
    model.fit(x, y, epochs=1, verbose=0)  # trains as a whole again
    assert not np.array_equal(gamma, helpers.weights(model)["bn/gamma"])


def test_a_model_without_batchnorm_trains_as_without_the_shift():
    # No warning either (pytest turns warnings into errors).
    models = []
    for _ in range(2):
        inputs = keras.Input((NUM_FEATURES,))
        hidden = keras.layers.Dense(5, name="hidden", kernel_initializer=(
            keras.initializers.GlorotUniform(1)))(inputs)
        outputs = keras.layers.Dense(NUM_CLASSES, name="head", kernel_initializer=(
            keras.initializers.GlorotUniform(2)))(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="sgd", loss=helpers.loss())
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    x, y = helpers.data()
    before = helpers.weights(models[0])
    for model, shift in zip(models, (True, False), strict=True):
        training.retrain_classifier(model, Batches(x, y), epochs=1, verbose=0,
                                    reinitialize=False, shuffle=False,
                                    update_batchnorm_statistics=shift)
    shifted, plain = helpers.weights(models[0]), helpers.weights(models[1])
    for path, value in before.items():
        np.testing.assert_array_equal(shifted[path], plain[path], err_msg=path)
        assert np.array_equal(value, shifted[path]) != path.startswith("head/")


@pytest.mark.parametrize("value, text", [("yes", "'yes'"), (1, "1"), (None, "None")])
def test_a_non_bool_flag_is_an_error_naming_the_argument(value, text):
    model = helpers.model()
    before = helpers.weights(model)
    with pytest.raises(ValueError, match=helpers.error(
            "update_batchnorm_statistics", text)):
        training.retrain_classifier(model, Batches(*helpers.data()), epochs=1,
                                    update_batchnorm_statistics=value)
    after = helpers.weights(model)
    assert all(np.array_equal(before[p], after[p]) for p in before)
