"""kimbalance.models.small_unet: architecture, a torch forward oracle, fit, save."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.losses import DiceLoss, WeightedCategoricalCrossentropy
from kimbalance.metrics import MeanClassIoU
from kimbalance.models import small_unet


def _unet_params(channels, num_classes, base, depth, upsampling="transpose",
                 batch_norm=True):
    """Parameter count by hand: blocks of two 3x3 convolutions (+BN), ups, head."""

    def block(inputs, filters):
        # With BN: no bias, and gamma, beta, moving mean and variance.
        per_conv = 4 * filters if batch_norm else filters
        return 9 * inputs * filters + 9 * filters * filters + 2 * per_conv

    total, inputs = 0, channels
    for level in range(depth):
        total += block(inputs, base * 2**level)
        inputs = base * 2**level
    total += block(inputs, base * 2**depth)
    inputs = base * 2**depth
    for level in reversed(range(depth)):
        filters = base * 2**level
        kernel = 4 if upsampling == "transpose" else 9  # 2x2 transposed or 3x3
        total += kernel * inputs * filters + filters
        total += block(2 * filters, filters)  # skip concatenated: 2 * filters in
        inputs = filters
    return total + inputs * num_classes + num_classes


@pytest.mark.parametrize(("shape", "classes", "base", "depth", "upsampling", "bn"), [
    ((16, 16, 1), 3, 8, 2, "transpose", True),
    ((8, 24, 3), 5, 4, 3, "bilinear", False),
    ((12, 12), 2, 6, 2, "nearest", True),
    ((4, 4, 2), 1, 3, 1, "transpose", False),
])
def test_shapes_and_parameter_counts(shape, classes, base, depth, upsampling, bn):
    model = small_unet(shape, classes, base_filters=base, depth=depth,
                       upsampling=upsampling, batch_norm=bn, seed=0)
    height, width = shape[:2]
    assert model.output_shape == (None, height, width, classes)
    channels = shape[2] if len(shape) == 3 else 1
    assert model.count_params() == _unet_params(channels, classes, base, depth,
                                                upsampling, bn)
    pools = [layer for layer in model.layers
             if isinstance(layer, keras.layers.MaxPooling2D)]
    skips = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Concatenate)]
    assert len(pools) == len(skips) == depth
    bottleneck = model.get_layer("bottleneck_relu2").output.shape
    assert bottleneck == (None, height // 2**depth, width // 2**depth,
                          base * 2**depth)
    for level, skip in enumerate(reversed(skips)):
        assert skip.output.shape[1:] == (height // 2**level, width // 2**level,
                                         2 * base * 2**level)


def _torch_forward(model, x, depth):
    """The same network in torch.nn.functional (NCHW), batch_norm=False."""
    import torch

    functional = torch.nn.functional

    def kernel(name):
        return torch.from_numpy(keras.ops.convert_to_numpy(
            model.get_layer(name).kernel)).permute(3, 2, 0, 1)

    def bias(name):
        return torch.from_numpy(keras.ops.convert_to_numpy(model.get_layer(name).bias))

    def block(t, prefix):
        for j in (1, 2):
            name = f"{prefix}_conv{j}"
            t = functional.relu(functional.conv2d(t, kernel(name), bias(name),
                                                  padding=1))
        return t

    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    skips = []
    for level in range(depth):
        t = block(t, f"enc{level}")
        skips.append(t)
        t = functional.max_pool2d(t, 2)
    t = block(t, "bottleneck")
    for level in reversed(range(depth)):
        # Keras Conv2DTranspose kernel (kh, kw, out, in); torch (in, out, kh, kw).
        up = model.get_layer(f"dec{level}_up")
        weight = torch.from_numpy(keras.ops.convert_to_numpy(up.kernel)).permute(
            3, 2, 0, 1)
        t = functional.conv_transpose2d(t, weight, bias(f"dec{level}_up"), stride=2)
        t = block(torch.cat([skips[level], t], dim=1), f"dec{level}")
    logits = functional.conv2d(t, kernel("logits"), bias("logits"))
    return logits.permute(0, 2, 3, 1).numpy()


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("depth", [1, 2])
def test_forward_pass_equals_a_torch_reference(depth):
    model = small_unet((8, 8, 2), 3, base_filters=4, depth=depth, batch_norm=False,
                       seed=1)
    # Non-zero biases, so that each bias is checked too.
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(scale=0.1, size=layer.bias.shape)
                              .astype("float32"))
    x = rng.normal(size=(2, 8, 8, 2)).astype("float32")
    ours = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(ours, _torch_forward(model, x, depth), rtol=1e-4,
                               atol=1e-5)


def test_seeded_initialisation_is_reproducible_and_kaiming_normal():
    first = small_unet((16, 16, 1), 2, base_filters=16, seed=3)
    same = small_unet((16, 16, 1), 2, base_filters=16, seed=3)
    other = small_unet((16, 16, 1), 2, base_filters=16, seed=4)
    for a, b in zip(first.weights, same.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    kernel = keras.ops.convert_to_numpy(first.get_layer("bottleneck_conv2").kernel)
    assert not np.allclose(
        kernel, keras.ops.convert_to_numpy(other.get_layer("bottleneck_conv2").kernel))
    assert kernel.shape == (3, 3, 64, 64)
    assert abs(kernel.std() / np.sqrt(2.0 / (9 * 64)) - 1.0) < 0.03
    # Every convolution kernel is drawn from its own seed.
    kernels = [keras.ops.convert_to_numpy(layer.kernel).ravel()[:8]
               for layer in first.layers if hasattr(layer, "kernel")]
    assert len({k.tobytes() for k in kernels}) == len(kernels)


def test_any_size_model_and_skip_alignment():
    model = small_unet((None, None, 3), 2, base_filters=4, depth=2, seed=0)
    assert model.output_shape == (None, None, None, 2)
    for shape in ((1, 8, 8, 3), (2, 12, 20, 3)):
        out = model.predict(np.zeros(shape, "float32"), verbose=0)
        assert out.shape == (*shape[:3], 2)
    # Fully convolutional: a same-size model with the same seed agrees.
    fixed = small_unet((12, 20, 3), 2, base_filters=4, depth=2, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 12, 20, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), fixed.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def _masks(rng, n, side, num_classes):
    x = rng.normal(size=(n, side, side, 1)).astype("float32")
    y = np.digitize(x[..., 0], np.linspace(-1.0, 1.0, num_classes - 1))
    return x, y.astype("int32")


def test_fit_with_pixel_weights_dice_and_iou_then_save_load(tmp_path):
    rng = np.random.default_rng(0)
    x, y = _masks(rng, 4, 8, 3)
    pixel_weights = np.array([0.5, 2.0, 4.0], dtype="float32")[y]  # a weight map
    model = small_unet((8, 8, 1), 3, base_filters=4, depth=2, dropout=0.1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=WeightedCategoricalCrossentropy(from_logits=True),
                  metrics=[MeanClassIoU(3, classes=[1, 2], name="fg_iou")])
    before = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    history = model.fit(x, y, sample_weight=pixel_weights, batch_size=2, epochs=1,
                        verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert np.isfinite(history.history["fg_iou"]).all()
    assert not np.allclose(before,
                           keras.ops.convert_to_numpy(model.get_layer("logits").kernel))
    path = tmp_path / "unet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert [layer.name for layer in loaded.layers] == [
        layer.name for layer in model.layers]
    # A Dice loss trains the same network too.
    loaded.compile(optimizer="adam", loss=DiceLoss(from_logits=True))
    assert np.isfinite(loaded.fit(x, y, batch_size=4, epochs=1,
                                  verbose=0).history["loss"][0])


def test_binary_head_and_bilinear_upsampling_fit():
    rng = np.random.default_rng(1)
    x, y = _masks(rng, 4, 8, 2)
    model = small_unet((8, 8, 1), 1, base_filters=4, depth=1, upsampling="bilinear",
                       preprocessing=keras.layers.Rescaling(0.5), seed=0)
    assert model.output_shape == (None, 8, 8, 1)
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    model.compile(optimizer="sgd",
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(x, y[..., None].astype("float32"), batch_size=2, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])


@settings(max_examples=4, deadline=None)
@given(depth=st.integers(1, 3), height=st.integers(1, 3), width=st.integers(1, 3),
       classes=st.integers(1, 4))
def test_property_output_matches_any_divisible_input(depth, height, width, classes):
    shape = (height * 2**depth, width * 2**depth, 1)
    model = small_unet(shape, classes, base_filters=1, depth=depth,
                       batch_norm=False, seed=0)
    assert model.output_shape == (None, *shape[:2], classes)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_shape": (10, 16, 1)}, r"`input_shape`. Expected height and width "
                                   r"divisible by 2\*\*depth = 4 \(depth=2\), or None. "
                                   r"Received: input_shape=\(10, 16, 1\)"),
    ({"input_shape": (16, 16, 1), "depth": 5}, r"`input_shape`. Expected height and "
                                               r"width divisible by 2\*\*depth = 32"),
    ({"input_shape": (16,)}, r"`input_shape`. Expected \(height, width, channels\)"),
    ({"input_shape": (16, 16, 0)}, r"`input_shape`. Expected \(height, width"),
    ({"input_shape": (16, 16, None)}, r"`input_shape`"),
    ({"input_shape": (None, None)}, r"`input_shape`. Expected int sides for a "
                                    r"grayscale"),
    ({"input_shape": (16.0, 16, 1)}, r"`input_shape`"),
    ({"input_shape": "16x16"}, r"`input_shape`"),
    ({"num_classes": 0}, r"`num_classes`"),
    ({"base_filters": 0}, r"`base_filters`. Expected an int"),
    ({"depth": 0}, r"`depth`. Expected an int"),
    ({"depth": 7}, r"`depth`. Expected an int"),
    ({"depth": True}, r"`depth`"),
    ({"upsampling": "bicubic"}, r"`upsampling`. Expected one of"),
    ({"batch_norm": 1}, r"`batch_norm`. Expected a bool"),
    ({"dropout": 1.0}, r"`dropout`"),
    ({"seed": -1}, r"`seed`"),
    ({"preprocessing": "rescale"}, r"`preprocessing`"),
    ({"name": ""}, r"`name`"),
])
def test_invalid_arguments(kwargs, message):
    arguments = {"input_shape": (16, 16, 1), "num_classes": 3}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        small_unet(**arguments)
