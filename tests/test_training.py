"""kimbalance.training: cRT, tau-normalisation, LWS and SAM on every backend."""

import _training_helpers as helpers
import keras
import numpy as np
import pytest
from _training_helpers import NUM_CLASSES, NUM_FEATURES, Batches
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance import training
from kimbalance.data import BalancedBatchGenerator
from kimbalance.layers import ClassScale, CosineDense

# Shared with the other test_training*.py files.
_data, _error, _loss, _model, _twins, _weights = (
    helpers.data, helpers.error, helpers.loss, helpers.model, helpers.twins,
    helpers.weights)


# retrain_classifier ------------------------------------------------------------

def test_retrain_classifier_changes_only_the_classifier():
    model = _model(compiled=False)
    model.get_layer("hidden").trainable = False  # a user's own flag survives
    model.compile(optimizer="sgd", loss=_loss(), metrics=["accuracy"])
    x, y = _data()
    flags = [layer.trainable for layer in model.layers]
    num_trainable = len(model.trainable_weights)
    before = _weights(model)
    generator = BalancedBatchGenerator(x, y, sampler="class_balanced",
                                       batch_size=6, seed=0)
    history = training.retrain_classifier(model, generator, epochs=2, verbose=0)
    after = _weights(model)
    assert len(history.history["loss"]) == 2
    for path, value in before.items():
        if path.startswith("head/"):
            assert not np.array_equal(value, after[path]), path
        else:  # backbone weights and BatchNorm moving statistics
            np.testing.assert_array_equal(value, after[path], err_msg=path)
    assert [layer.trainable for layer in model.layers] == flags
    assert len(model.trainable_weights) == num_trainable
    # Recompiled with its flags back: the BatchNorm layer trains again.
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(after["bn/gamma"], _weights(model)["bn/gamma"])
    assert np.array_equal(after["hidden/kernel"], _weights(model)["hidden/kernel"])


@pytest.mark.parametrize("reinitialize", [True, False])
def test_retrain_classifier_reinitializes_from_the_layers_initializers(reinitialize):
    head = keras.layers.Dense(NUM_CLASSES, name="head", kernel_initializer="ones",
                              bias_initializer=keras.initializers.Constant(0.5))
    model = _model(head=head)
    head.kernel.assign(np.full((6, NUM_CLASSES), 3.0, dtype="float32"))
    x, y = _data()
    # A zero learning rate shows the weights the fit started from.
    training.retrain_classifier(model, Batches(x, y), epochs=1, verbose=0,
                                reinitialize=reinitialize,
                                optimizer=keras.optimizers.SGD(0.0))
    kernel = keras.ops.convert_to_numpy(head.kernel)
    np.testing.assert_array_equal(kernel, 1.0 if reinitialize else 3.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(head.bias), 0.5)


def test_retrain_classifier_finds_the_head_by_name_layer_and_in_nested_models():
    inner = _model(compiled=False)
    inputs = keras.Input((NUM_FEATURES,))
    model = keras.Model(inputs, inner(inputs))
    model.compile(optimizer="adam", loss=_loss())
    x, y = _data()
    for classifier in ("head", inner.get_layer("head"), None):
        before = _weights(model)
        training.retrain_classifier(model, Batches(x, y), epochs=1, verbose=0,
                                    classifier=classifier)
        after = _weights(model)
        changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
        assert changed == ["head/bias", "head/kernel"]


def test_retrain_classifier_default_head_is_the_last_cosine_dense():
    def loss(y_true, y_pred):  # a plain function loss is reused as it is
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred,
                                                            from_logits=True)

    model = _model(head=CosineDense(NUM_CLASSES, scale=10.0, name="cos"),
                   compiled=False)
    model.compile(optimizer="sgd", loss=loss)
    x, y = _data()
    before = _weights(model)
    training.retrain_classifier(model, Batches(x, y), epochs=1, verbose=0)
    after = _weights(model)
    assert [p for p in before if not np.array_equal(before[p], after[p])] == [
        "cos/kernel"]


def test_retrain_classifier_errors():
    model = _model()
    x, y = _data()
    batches = Batches(x, y)
    fit = training.retrain_classifier
    with pytest.raises(ValueError, match=_error("epochs", "0")):
        fit(model, batches, epochs=0)
    with pytest.raises(ValueError, match=_error("epochs", "1.5")):
        fit(model, batches, epochs=1.5)
    with pytest.raises(ValueError, match=_error("reinitialize", "'yes'")):
        fit(model, batches, epochs=1, reinitialize="yes")
    with pytest.raises(ValueError, match=_error("generator", "array(shape=(24, 4)")):
        fit(model, x, epochs=1)
    with pytest.raises(ValueError, match=_error("generator", "(array(")):
        fit(model, (x, y), epochs=1)
    with pytest.raises(ValueError, match=_error("generator", "None")):
        fit(model, None, epochs=1)
    with pytest.raises(ValueError, match=_error("classifier", "'nope'")):
        fit(model, batches, epochs=1, classifier="nope")
    with pytest.raises(ValueError, match=_error("classifier", "'bn'")):
        fit(model, batches, epochs=1, classifier="bn")
    stranger = keras.layers.Dense(2, name="stranger")
    with pytest.raises(ValueError, match=_error("classifier", "<Dense name=stranger")):
        fit(model, batches, epochs=1, classifier=stranger)
    with pytest.raises(ValueError, match=_error("classifier", "3")):
        fit(model, batches, epochs=1, classifier=3)
    with pytest.raises(ValueError, match=_error("optimizer", "5")):
        fit(model, batches, epochs=1, optimizer=5)
    with pytest.raises(ValueError, match=_error("model", "<Dense")):
        fit(keras.layers.Dense(2), batches, epochs=1)
    with pytest.raises(ValueError, match=_error("model", "<Functional")):
        fit(_model(compiled=False), batches, epochs=1)
    def mean_square(y_true, y_pred):  # plain functions, not registered
        return keras.ops.mean(keras.ops.square(y_pred), axis=-1)

    unregistered = _model(compiled=False)
    unregistered.compile(optimizer="sgd", loss=_loss(), metrics=[mean_square])
    fit(unregistered, batches, epochs=1)  # compile() arguments are reused as given
    inputs = keras.Input((NUM_FEATURES,))
    headless = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    headless.compile(loss="mse")
    with pytest.raises(ValueError, match="a Dense or CosineDense classifier layer"):
        fit(headless, batches, epochs=1)
    with pytest.raises(ValueError, match=_error("model", "<Sequential")):
        fit(keras.Sequential([keras.layers.Dense(2)]), batches, epochs=1)


# tau_normalize -----------------------------------------------------------------

def _oracle_kernel(kernel, tau):
    kernel = np.asarray(kernel, dtype=np.float64)
    return kernel / np.linalg.norm(kernel, axis=0) ** tau


@settings(max_examples=8)
@given(tau=st.floats(0.0, 3.0), seed=st.integers(0, 2**16),
       num_classes=st.integers(2, 6))
def test_tau_normalize_matches_the_float64_oracle(tau, seed, num_classes):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((NUM_FEATURES,))
    model = keras.Model(inputs, keras.layers.Dense(num_classes, name="head")(inputs))
    kernel = rng.normal(size=(NUM_FEATURES, num_classes)) * rng.uniform(
        0.1, 10.0, size=num_classes)
    bias = rng.normal(size=num_classes)
    model.get_layer("head").set_weights([kernel, bias])
    original = _weights(model)
    balanced = training.tau_normalize(model, tau)
    head = balanced.get_layer("head")
    assert not head.use_bias and len(head.weights) == 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head.kernel),
                               _oracle_kernel(kernel.astype("float32"), tau),
                               rtol=1e-5, atol=1e-7)
    x = rng.normal(size=(5, NUM_FEATURES))
    np.testing.assert_allclose(
        balanced.predict(x, verbose=0),
        x @ _oracle_kernel(kernel.astype("float32"), tau), rtol=1e-4, atol=1e-5)
    for path, value in _weights(model).items():  # the original is untouched
        np.testing.assert_array_equal(value, original[path])


def test_tau_normalize_zero_is_the_identity_and_one_gives_unit_norms():
    head = keras.layers.Dense(NUM_CLASSES, use_bias=False, name="head")
    model = _model(head=head)
    x, _ = _data()
    same = training.tau_normalize(model, 0.0)
    np.testing.assert_array_equal(same.predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    unit = training.tau_normalize(model, tau=1.0, classifier="head")
    norms = np.linalg.norm(keras.ops.convert_to_numpy(unit.get_layer("head").kernel),
                           axis=0)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)
    assert unit.compiled  # compiled like the original


def test_tau_normalize_keeps_the_rest_of_a_nested_sequential_model():
    inner = keras.Sequential([keras.Input((NUM_FEATURES,)),
                              keras.layers.Dense(5, activation="relu", name="body"),
                              keras.layers.Dense(NUM_CLASSES, name="head")])
    inputs = keras.Input((NUM_FEATURES,))
    model = keras.Model(inputs, keras.layers.Softmax()(inner(inputs)))
    balanced = training.tau_normalize(model, 0.0)
    inner.get_layer("head").bias.assign(np.zeros(NUM_CLASSES, dtype="float32"))
    x, _ = _data()
    np.testing.assert_allclose(balanced.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_tau_normalize_of_a_cosine_head_leaves_predictions_unchanged(tau):
    model = _model(head=CosineDense(NUM_CLASSES, scale=5.0, name="cos"))
    model.get_layer("cos").kernel.assign(
        np.random.default_rng(0).normal(size=(6, NUM_CLASSES)) * [0.2, 1.0, 7.0])
    x, _ = _data()
    balanced = training.tau_normalize(model, tau)
    np.testing.assert_allclose(balanced.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_tau_normalized_model_saves_and_loads(tmp_path):
    model = _model()
    balanced = training.tau_normalize(model, 0.7)
    path = tmp_path / "tau.keras"
    balanced.save(path)
    restored = keras.saving.load_model(path)
    x, _ = _data()
    np.testing.assert_allclose(restored.predict(x, verbose=0),
                               balanced.predict(x, verbose=0), rtol=1e-6)


def test_tau_normalize_errors():
    model = _model()
    for tau, text in [(-1.0, "-1.0"), (float("nan"), "nan"), (float("inf"), "inf"),
                      ("1", "'1'")]:
        with pytest.raises(ValueError, match=_error("tau", text)):
            training.tau_normalize(model, tau)
    with pytest.raises(ValueError, match=_error("classifier", "'hidden_x'")):
        training.tau_normalize(model, classifier="hidden_x")
    tiny = _model()
    tiny.get_layer("head").kernel.assign(np.full((6, NUM_CLASSES), 1e-3, "float32"))
    with pytest.raises(ValueError, match=_error("tau", "1000.0")):
        training.tau_normalize(tiny, 1000.0)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(NUM_CLASSES)

        def call(self, inputs):
            return self.dense(inputs)

    subclassed = Subclassed()
    subclassed(np.ones((1, NUM_FEATURES)))
    with pytest.raises(ValueError, match="a Sequential or Functional model"):
        training.tau_normalize(subclassed)


# learn_weight_scaling ----------------------------------------------------------

@pytest.mark.parametrize("activation", [None, "softmax"])
def test_learn_weight_scaling_trains_only_the_scales(activation):
    head = keras.layers.Dense(NUM_CLASSES, activation=activation, name="head")
    model = _model(head=head, optimizer="adam")
    if activation == "softmax":
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _data()
    original = _weights(model)
    expected = model.predict(x, verbose=0)
    start, _ = training.learn_weight_scaling(
        model, Batches(x, y), epochs=1, verbose=0, optimizer=keras.optimizers.SGD(0.0))
    np.testing.assert_allclose(start.predict(x, verbose=0), expected, rtol=1e-6)

    scaled, history = training.learn_weight_scaling(
        model, Batches(x, y), epochs=2, verbose=0,
        optimizer=keras.optimizers.SGD(0.5))
    assert len(history.history["loss"]) == 2
    scales = keras.ops.convert_to_numpy(scaled.get_layer("head_scale").scale)
    assert scales.shape == (NUM_CLASSES,) and not np.allclose(scales, 1.0)
    for path, value in original.items():  # the copy's other weights, and the
        np.testing.assert_array_equal(value, _weights(scaled)[path])  # original's
        np.testing.assert_array_equal(value, _weights(model)[path])
    # The new output: the original logits times the scales (then the activation).
    logits_model = keras.Model(model.inputs, model.get_layer("bn").output)
    features = logits_model.predict(x, verbose=0).astype("float64")
    kernel, bias = original["head/kernel"], original["head/bias"]
    logits = (features @ kernel + bias) * scales
    if activation == "softmax":
        logits = np.exp(logits - logits.max(axis=1, keepdims=True))
        logits /= logits.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(scaled.predict(x, verbose=0), logits, rtol=1e-4,
                               atol=1e-5)
    if activation is None:  # flags and compile restored: the whole model trains
        scaled.fit(x, y, epochs=1, verbose=0)
        assert not np.array_equal(_weights(scaled)["bn/gamma"], original["bn/gamma"])


def test_learn_weight_scaling_errors():
    model = _model()
    x, y = _data()
    with pytest.raises(ValueError, match=_error("classifier", "'hidden'")):
        training.learn_weight_scaling(model, Batches(x, y), epochs=1,
                                      classifier="hidden")
    inputs = keras.Input((NUM_FEATURES,))
    two_heads = keras.Model(inputs, [keras.layers.Dense(2, name="a")(inputs),
                                     keras.layers.Dense(2, name="b")(inputs)])
    two_heads.compile(loss="mse")
    with pytest.raises(ValueError, match=r"layer 'b' is not\).*classifier=None"):
        training.learn_weight_scaling(two_heads, Batches(x, y), epochs=1)
    with pytest.raises(ValueError, match=_error("epochs", "-1")):
        training.learn_weight_scaling(model, Batches(x, y), epochs=-1)
    with pytest.raises(ValueError, match=_error("generator", "[1, 2]")):
        training.learn_weight_scaling(model, [1, 2], epochs=1)


def test_class_scale_layer_symbolic_call_and_save(tmp_path):
    layer = ClassScale(name="scale")
    symbolic = layer(keras.Input((NUM_CLASSES,)))
    assert tuple(symbolic.shape) == (None, NUM_CLASSES)
    inputs = keras.Input((NUM_CLASSES,))
    model = keras.Model(inputs, ClassScale(name="scale")(inputs))
    model.get_layer("scale").scale.assign(np.array([1.0, 2.0, -0.5], "float32"))
    path = tmp_path / "scale.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    values = np.array([[1.0, 1.0, 4.0]], "float32")
    np.testing.assert_array_equal(restored.predict(values, verbose=0),
                                  [[1.0, 2.0, -2.0]])
    with pytest.raises(ValueError, match=_error("scale_initializer", "'nope'")):
        ClassScale(scale_initializer="nope")
    with pytest.raises(ValueError, match=_error("input_shape", "(2, None)")):
        ClassScale().build((2, None))


# SharpnessAwareModel -----------------------------------------------------------

def test_sam_with_rho_zero_is_exactly_the_plain_step():
    plain, wrapped, wrapped_adaptive = _twins(count=3)
    sams = [training.SharpnessAwareModel(wrapped, rho=0.0),
            training.SharpnessAwareModel(wrapped_adaptive, rho=0.0, adaptive=True)]
    for model in (plain, *sams):
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=_loss(), metrics=["accuracy"])
    x, y = _data()
    plain_history = plain.fit(Batches(x, y), epochs=2, verbose=0, shuffle=False)
    for sam in sams:
        sam_history = sam.fit(Batches(x, y), epochs=2, verbose=0, shuffle=False)
        for path, value in _weights(plain).items():  # moving statistics included
            np.testing.assert_array_equal(_weights(sam.model)[path], value,
                                          err_msg=path)
        assert sam_history.history == plain_history.history


def test_sam_keeps_the_first_pass_batchnorm_statistics_and_loss():
    plain, wrapped = _twins(dropout=False)
    sam = training.SharpnessAwareModel(wrapped, rho=0.5)
    for model in (plain, sam):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=_loss())
    x, y = _data(n=8)
    plain_history = plain.fit(x, y, batch_size=8, epochs=1, verbose=0,
                              shuffle=False)
    sam_history = sam.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    plain_weights, sam_weights = _weights(plain), _weights(wrapped)
    for path in ("bn/moving_mean", "bn/moving_variance"):
        np.testing.assert_array_equal(sam_weights[path], plain_weights[path])
    assert not np.allclose(sam_weights["head/kernel"], plain_weights["head/kernel"])
    np.testing.assert_allclose(sam_history.history["loss"],
                               plain_history.history["loss"], rtol=1e-6)


def _sam_oracle(x, y, kernel, bias, *, rho, adaptive, learning_rate):
    """One SAM step of SGD on a linear model with the mean squared error."""
    def gradients(w, b):
        residual = x @ w + b - y
        scale = 2.0 / residual.size
        return scale * x.T @ residual, scale * residual.sum(axis=0)

    g_w, g_b = gradients(kernel, bias)
    if adaptive:
        norm = np.sqrt(np.sum((kernel * g_w) ** 2) + np.sum((bias * g_b) ** 2))
        e_w, e_b = kernel**2 * g_w * rho / norm, bias**2 * g_b * rho / norm
    else:
        norm = np.sqrt(np.sum(g_w**2) + np.sum(g_b**2))
        e_w, e_b = g_w * rho / norm, g_b * rho / norm
    g_w, g_b = gradients(kernel + e_w, bias + e_b)
    return kernel - learning_rate * g_w, bias - learning_rate * g_b


@settings(max_examples=6)
@given(seed=st.integers(0, 2**16), rho=st.floats(0.01, 2.0), adaptive=st.booleans(),
       batch=st.integers(2, 9))
def test_sam_step_matches_the_float64_oracle(seed, rho, adaptive, batch):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, 3))
    y = rng.normal(size=(batch, 2))
    kernel, bias = rng.normal(size=(3, 2)), rng.normal(size=2)
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([kernel, bias])
    sam = training.SharpnessAwareModel(model, rho=rho, adaptive=adaptive)
    sam.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    sam.fit(x.astype("float32"), y.astype("float32"), batch_size=batch, epochs=1,
            verbose=0)
    x32, y32 = (a.astype("float32").astype("float64") for a in (x, y))
    expected_kernel, expected_bias = _sam_oracle(
        x32, y32, kernel.astype("float32").astype("float64"),
        bias.astype("float32").astype("float64"), rho=rho, adaptive=adaptive,
        learning_rate=0.1)
    got_kernel, got_bias = dense.get_weights()
    np.testing.assert_allclose(got_kernel, expected_kernel, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_bias, expected_bias, rtol=1e-4, atol=1e-5)


def test_sam_round_trips_through_config_and_keras_files(tmp_path):
    model = _model(compiled=False)
    sam = training.SharpnessAwareModel(model, 0.2, adaptive=True, epsilon=1e-9,
                                       name="sam")
    sam.compile(optimizer="adam", loss=_loss())
    x, y = _data()
    sam.fit(x, y, epochs=1, verbose=0)
    config = keras.saving.serialize_keras_object(sam)
    again = keras.saving.deserialize_keras_object(config)
    assert (again.rho, again.adaptive, again.epsilon, again.name) == (
        0.2, True, 1e-9, "sam")
    path = tmp_path / "sam.keras"
    sam.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, training.SharpnessAwareModel)
    np.testing.assert_allclose(restored.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    restored.fit(x, y, epochs=1, verbose=0)  # compiled, and trains on


def test_sam_configs_written_before_the_package_split_still_load():
    # Until 0.4 the class lived in the module kimbalance/training.py; configs
    # and .keras files name it by its registered name, which did not change.
    sam = training.SharpnessAwareModel(_model(compiled=False), 0.3)
    config = keras.saving.serialize_keras_object(sam)
    assert config["registered_name"] == "kimbalance>SharpnessAwareModel"
    old = {**config, "module": "kimbalance.training"}
    again = keras.saving.deserialize_keras_object(old)
    assert isinstance(again, training.SharpnessAwareModel) and again.rho == 0.3


def test_sam_errors():
    model = _model(compiled=False)
    for rho, text in [(-0.1, "-0.1"), (float("nan"), "nan"), (float("inf"), "inf"),
                      (None, "None")]:
        with pytest.raises(ValueError, match=_error("rho", text)):
            training.SharpnessAwareModel(model, rho)
    with pytest.raises(ValueError, match=_error("adaptive", "1")):
        training.SharpnessAwareModel(model, adaptive=1)
    with pytest.raises(ValueError, match=_error("epsilon", "0.0")):
        training.SharpnessAwareModel(model, epsilon=0.0)
    with pytest.raises(ValueError, match=_error("model", "'net'")):
        training.SharpnessAwareModel("net")
