import keras
import numpy as np
import pytest

from kimbalance.models import KaimingNormal, OptionAShortcut, mlp, resnet32, small_cnn


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _small_cnn_params(height, width, channels, num_classes):
    """Parameter count of Conv32-Pool-Conv64-Pool-Dense128-Dense(C), by hand."""
    if min(height, width) >= 16:  # "valid" convolutions
        side_h, side_w = ((height - 2) // 2 - 2) // 2, ((width - 2) // 2 - 2) // 2
    else:  # "same" convolutions
        side_h, side_w = height // 2 // 2, width // 2 // 2
    conv = (9 * channels * 32 + 32) + (9 * 32 * 64 + 64)
    dense = side_h * side_w * 64 * 128 + 128
    return conv + dense + 128 * num_classes + num_classes


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (8, 8)])
def test_small_cnn_shapes_and_parameters(shape):
    model = small_cnn(shape, 7)
    assert model.output_shape == (None, 7)
    channels = shape[2] if len(shape) == 3 else 1
    assert model.count_params() == _small_cnn_params(shape[0], shape[1], channels, 7)
    flat = [layer for layer in model.layers
            if isinstance(layer, keras.layers.Flatten)][0]
    if shape[0] == 28:  # the classic Keras MNIST network: 28-26-13-11-5
        assert flat.output.shape[-1] == 5 * 5 * 64
    if shape[0] == 8:  # 8-4-4-2 with "same" padding
        assert flat.output.shape[-1] == 2 * 2 * 64


def test_small_cnn_cosine_head_fit_and_save_load(tmp_path):
    from kimbalance.layers import CosineDense

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(6, 8, 8, 1)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    model = small_cnn((8, 8, 1), 3, classifier="cosine", dropout=0.25,
                      preprocessing=keras.layers.Rescaling(1 / 255))
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    assert isinstance(model.get_layer("logits"), CosineDense)
    model.compile(optimizer="sgd", loss=_sparse_ce())
    history = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    outputs = model.predict(x, verbose=0)
    assert outputs.shape == (6, 3) and np.all(np.abs(outputs) <= 1.0 + 1e-5)
    path = tmp_path / "cnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), outputs, atol=1e-6)


def test_mlp_fit_shapes_and_linear_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4, 2)).astype("float32")
    y = rng.integers(0, 2, size=(8, 1)).astype("float32")
    model = mlp((4, 2), 1, hidden=(5, 3), dropout=0.1, activation="tanh")
    assert model.output_shape == (None, 1)
    widths = [layer.units for layer in model.layers
              if isinstance(layer, keras.layers.Dense)]
    assert widths == [5, 3, 1]
    model.compile(optimizer="sgd",
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    linear = mlp((64,), 10, hidden=())
    assert linear.count_params() == 64 * 10 + 10


@pytest.fixture(scope="module")
def tiny_resnet():
    # ResNet-32's parameters do not depend on the image size (global pooling):
    # 8x8 images keep the train step cheap.
    return resnet32((8, 8, 3), 10, seed=0)


def test_resnet32_architecture(tiny_resnet):
    model = tiny_resnet
    assert model.output_shape == (None, 10)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 464_154  # 0.46M (He et al. 2016, Table 6; LDAM-DRW)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 31 and all(not conv.use_bias for conv in convs)
    shortcuts = [layer for layer in model.layers if isinstance(layer, OptionAShortcut)]
    assert [s.pad_channels for s in shortcuts] == [8, 16]
    assert model.get_layer("stage1_block4_relu2").output.shape == (None, 8, 8, 16)
    assert model.get_layer("stage2_block4_relu2").output.shape == (None, 4, 4, 32)
    assert model.get_layer("stage3_block4_relu2").output.shape == (None, 2, 2, 64)
    cifar = resnet32()
    assert cifar.get_layer("stage3_block4_relu2").output.shape == (None, 8, 8, 64)


def test_resnet32_init_is_kaiming_normal_and_seeded(tiny_resnet):
    kernel = keras.ops.convert_to_numpy(
        tiny_resnet.get_layer("stage3_block4_2_conv").kernel)
    assert kernel.shape == (3, 3, 64, 64)
    # torch.nn.init.kaiming_normal_: std sqrt(2 / fan_in), fan_in = 3 * 3 * 64.
    assert abs(kernel.std() / np.sqrt(2.0 / 576) - 1.0) < 0.03
    assert abs(kernel.mean()) < 0.05 * kernel.std()
    same = resnet32((8, 8, 3), 10, seed=0)
    for a, b in zip(same.weights, tiny_resnet.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    first = keras.ops.convert_to_numpy(KaimingNormal(1)((3, 3, 3, 16)))
    other = keras.ops.convert_to_numpy(KaimingNormal(2)((3, 3, 3, 16)))
    assert not np.allclose(first, other)


def test_resnet32_strided_convolution_matches_torch_padding_1(tiny_resnet, torch):
    pad = tiny_resnet.get_layer("stage2_block0_1_pad")
    conv = tiny_resnet.get_layer("stage2_block0_1_conv")
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 16)).astype("float32")
    ours = keras.ops.convert_to_numpy(conv(pad(x)))
    kernel = keras.ops.convert_to_numpy(conv.kernel)  # (3, 3, in, out)
    reference = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2),
        torch.from_numpy(kernel).permute(3, 2, 0, 1), stride=2, padding=1)
    np.testing.assert_allclose(ours, reference.permute(0, 2, 3, 1).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_resnet32_train_step_and_save_load(tiny_resnet, tmp_path):
    model = tiny_resnet
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    y = np.array([3, 7])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=_sparse_ce())
    before = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    assert not np.allclose(before, after)
    path = tmp_path / "resnet32.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers]
    for a, b in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))


def test_option_a_shortcut_values_and_config():
    x = np.arange(2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
    layer = OptionAShortcut(stride=2, pad_channels=2)
    out = keras.ops.convert_to_numpy(layer(x))
    expected = np.pad(x[:, ::2, ::2, :], [(0, 0), (0, 0), (0, 0), (2, 2)])
    np.testing.assert_array_equal(out, expected)
    assert layer.compute_output_shape((None, 5, 5, 3)) == (None, 3, 3, 7)
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, OptionAShortcut)
    assert (clone.stride, clone.pad_channels) == (2, 2)
    initializer = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(KaimingNormal(5)))
    assert isinstance(initializer, KaimingNormal) and initializer.seed == 5


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        (small_cnn, {"input_shape": (8,)}, r"`input_shape`. Expected \(height"),
        (small_cnn, {"input_shape": (3, 3, 1)}, "`input_shape`. Expected image"),
        (small_cnn, {"input_shape": (8, -8, 1)}, "argument `input_shape`. Expected a"),
        (small_cnn, {"input_shape": "8x8"}, "argument `input_shape`"),
        (small_cnn, {"num_classes": 0}, "argument `num_classes`"),
        (small_cnn, {"classifier": "softmax"}, "argument `classifier`"),
        (small_cnn, {"dropout": 1.0}, "argument `dropout`"),
        (small_cnn, {"preprocessing": "rescale"}, "argument `preprocessing`"),
        (small_cnn, {"preprocessing": []}, "argument `preprocessing`"),
        (mlp, {"hidden": (4, 0)}, "argument `hidden`"),
        (mlp, {"hidden": "wide"}, "argument `hidden`"),
        (mlp, {"activation": "no_such_activation"}, "argument `activation`"),
        (mlp, {"input_shape": ()}, "argument `input_shape`"),
        (resnet32, {"input_shape": (32, 32)}, "argument `input_shape`"),
        (resnet32, {"seed": -1}, "argument `seed`"),
        (resnet32, {"classifier": "normed"}, "argument `classifier`"),
    ],
)
def test_invalid_arguments(build, kwargs, message):
    arguments = {"input_shape": (8, 8, 1), "num_classes": 3}
    if build is resnet32:
        arguments["input_shape"] = (8, 8, 3)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build(**arguments)


def test_option_a_shortcut_invalid_arguments():
    with pytest.raises(ValueError, match="argument `stride`"):
        OptionAShortcut(stride=0)
    with pytest.raises(ValueError, match="argument `pad_channels`"):
        OptionAShortcut(pad_channels=-1)


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        (small_cnn, {"num_classes": True}, r"`num_classes`. Expected an int.*"
                                           r"Received: num_classes=True"),
        (mlp, {"num_classes": 3.0}, r"`num_classes`. Expected an int"),
        (mlp, {"num_classes": 10**9}, r"`num_classes`. Expected an int.*16777216"),
        (resnet32, {"num_classes": None}, r"`num_classes`. Expected an int"),
        (mlp, {"hidden": True}, r"`hidden`. Expected a sequence of layer widths "
                                r">= 1. Received: hidden=True"),
        (mlp, {"hidden": (8, 2.5)}, r"`hidden`.*Received: hidden=\(8, 2.5\)"),
        (mlp, {"dropout": float("nan")}, r"`dropout`. Expected a finite float"),
        (small_cnn, {"dropout": 1e308}, r"`dropout`. Expected a finite float"),
        (mlp, {"name": 3}, r"`name`. Expected a non-empty string"),
        (small_cnn, {"name": ""}, r"`name`. Expected a non-empty string"),
        (resnet32, {"seed": True}, r"`seed`. Expected an int"),
        (resnet32, {"seed": 1.5}, r"`seed`. Expected an int"),
        (small_cnn, {"input_shape": (8.0, 8, 1)}, r"`input_shape`. Expected a "
                                                  r"non-empty tuple of positive ints"),
        (small_cnn, {"input_shape": (True, 8, 1)}, r"`input_shape`. Expected a "),
    ],
)
def test_invalid_flags_types_and_overflowing_values(build, kwargs, message):
    arguments = {"input_shape": (8, 8, 1), "num_classes": 3}
    if build is resnet32:
        arguments["input_shape"] = (8, 8, 3)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build(**arguments)
