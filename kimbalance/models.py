"""Backend-agnostic Keras model builders used by the recipes.

Every builder returns a functional `keras.Model` that outputs **logits**
(no softmax; `small_unet` a logit map `(H, W, num_classes)`): compile it
with losses that take `from_logits=True` (e.g.
`keras.losses.SparseCategoricalCrossentropy(from_logits=True)` or
`kimbalance.losses.FocalCrossentropy(from_logits=True)`); with
`num_classes=1` the single output is the logit of the positive class
(`keras.losses.BinaryCrossentropy(from_logits=True)`).

`classifier="cosine"` replaces the final `Dense` by
`kimbalance.layers.CosineDense`, the normalised classifier of LDAM (Cao et al.
2019): it outputs cosine similarities in [-1, 1], which `LDAMLoss` multiplies
by its `scale` (30); scale them yourself for other losses.

`preprocessing` takes a Keras layer (or a list of layers) applied right after
the input, e.g. `keras.layers.Rescaling(1 / 255)` or a `Normalization` layer
with the training mean and variance, so the saved model takes raw pixels.

Images are channels-last, `(height, width, channels)`, whatever
`keras.config.image_data_format()` says: the builders set `data_format`
explicitly.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kimbalance._api import export
from kimbalance._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_num_classes,
    invalid,
)
from kimbalance.layers import CosineDense

__all__ = ["small_cnn", "mlp", "resnet32", "small_unet"]

_CLASSIFIERS = ("dense", "cosine")
_UPSAMPLING = ("transpose", "bilinear", "nearest")
_CHANNELS_LAST = "channels_last"


def small_cnn(input_shape: Sequence[int], num_classes: int, *,
              classifier: str = "dense", preprocessing: Any = None,
              dropout: float = 0.0, name: str = "small_cnn") -> keras.Model:
    """The small CNN of the benchmarks: Conv32-Pool-Conv64-Pool-Dense128-Dense(C).

    Two 3x3 ReLU convolutions (32 and 64 filters), each followed by 2x2 max
    pooling, then a 128-unit ReLU layer and the classifier. The convolutions
    use `"valid"` padding when the smaller image side is at least 16 (28x28:
    26-13-11-5, the classic Keras MNIST network) and `"same"` padding below
    that, so 8x8 digits still pool twice (8-4-4-2).

    Args:
        input_shape: `(height, width, channels)`, or `(height, width)` for
            grayscale images (a channel axis is added); sides >= 4.
        num_classes: number of output logits (1 for a binary sigmoid head).
        classifier: `"dense"` or `"cosine"` (`kimbalance.layers.CosineDense`).
        preprocessing: `None`, a Keras layer or a list of layers applied to
            the input first (e.g. `keras.layers.Rescaling(1 / 255)`).
        dropout: dropout rate before the 128-unit layer, in [0, 1).
        name: the model name.

    Returns:
        A `keras.Model` mapping images to `(batch, num_classes)` logits.

    Raises:
        ValueError: for a bad shape, class count, classifier, dropout rate or
            preprocessing layer.

    Examples:

    >>> model = small_cnn((8, 8, 1), 10)
    >>> model.output_shape, model.count_params()
    ((None, 10), 53002)
    """
    shape = _check_image_shape(input_shape, min_side=4, allow_grayscale=True)
    num_classes = check_num_classes(num_classes, allow_none=False)
    _check_name(name)
    check_choice("classifier", classifier, _CLASSIFIERS)
    dropout = check_float("dropout", dropout, low=0.0, high=1.0,
                          high_inclusive=False)
    inputs = keras.Input(shape, name="images")
    x = _preprocess(inputs, preprocessing)
    if len(shape) == 2:
        x = keras.layers.Reshape((*shape, 1))(x)
    padding = "valid" if min(shape[:2]) >= 16 else "same"
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding=padding, activation="relu",
                                data_format=_CHANNELS_LAST)(x)
        x = keras.layers.MaxPooling2D(2, data_format=_CHANNELS_LAST)(x)
    x = keras.layers.Flatten(data_format=_CHANNELS_LAST)(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    outputs = _head(x, num_classes, classifier)
    return keras.Model(inputs, outputs, name=name)


def mlp(input_shape: Sequence[int], num_classes: int, *,
        hidden: int | Sequence[int] = (256, 128), classifier: str = "dense",
        activation: str | Callable[..., Any] = "relu", dropout: float = 0.0,
        preprocessing: Any = None, name: str = "mlp") -> keras.Model:
    """A multilayer perceptron on flattened inputs.

    Args:
        input_shape: the shape of one sample (flattened first), e.g. `(64,)`
            or `(8, 8, 1)`.
        num_classes: number of output logits (1 for a binary sigmoid head).
        hidden: the widths of the hidden layers, e.g. `(256, 128)`; `()`
            gives a linear (multinomial logistic regression) model.
        classifier: `"dense"` or `"cosine"` (`kimbalance.layers.CosineDense`).
        activation: the hidden activation (any Keras activation name).
        dropout: dropout rate after each hidden layer, in [0, 1).
        preprocessing: `None`, a Keras layer or a list of layers applied to
            the input first.
        name: the model name.

    Returns:
        A `keras.Model` mapping inputs to `(batch, num_classes)` logits.

    Raises:
        ValueError: for a bad shape, class count, hidden widths, classifier,
            dropout rate or preprocessing layer.

    Examples:

    >>> model = mlp((64,), 10, hidden=(32,))
    >>> model.output_shape, model.count_params()
    ((None, 10), 2410)
    """
    shape = _check_shape("input_shape", input_shape)
    num_classes = check_num_classes(num_classes, allow_none=False)
    _check_name(name)
    check_choice("classifier", classifier, _CLASSIFIERS)
    dropout = check_float("dropout", dropout, low=0.0, high=1.0,
                          high_inclusive=False)
    widths = (hidden,) if isinstance(hidden, numbers.Integral) else hidden
    if not isinstance(widths, list | tuple) or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool) and int(w) >= 1
            for w in widths):
        raise invalid("hidden", "a sequence of layer widths >= 1", hidden)
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise invalid("activation", "a Keras activation name or callable",
                      activation) from None
    inputs = keras.Input(shape, name="inputs")
    x = _preprocess(inputs, preprocessing)
    if len(shape) > 1:
        x = keras.layers.Flatten()(x)
    for width in widths:
        x = keras.layers.Dense(int(width), activation=activation)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    outputs = _head(x, num_classes, classifier)
    return keras.Model(inputs, outputs, name=name)


def resnet32(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10, *,
             classifier: str = "dense", preprocessing: Any = None,
             seed: int | None = None, name: str = "resnet32") -> keras.Model:
    """The CIFAR ResNet-32 of He et al. (2016), as in LDAM-DRW's `resnet_cifar.py`.

    A 3x3 convolution with 16 filters, then 3 stages of 5 basic blocks
    (two 3x3 convolutions each, 16 / 32 / 64 filters, the first block of
    stages 2 and 3 with stride 2), global average pooling and the classifier:
    31 convolutions + 1 classifier = 32 layers, 0.46M parameters for 10
    classes. The shortcut where the shape changes is option A of the paper
    and of LDAM's code: take every other pixel and zero-pad the channels (no
    parameters). Like the reference: convolutions without bias, batch
    normalisation with torch's defaults (momentum 0.1, i.e. Keras 0.9,
    epsilon 1e-5), Kaiming-normal (fan-in) initialisation of convolutions and
    classifier, and strided convolutions padded by 1 pixel on each side
    (torch `padding=1`), which keeps them aligned with the option-A shortcut.

    The Kaiming-normal weights are drawn with NumPy from `seed`, so the same
    seed gives the same initial network on torch, jax and tensorflow (and
    building it needs no per-shape random kernels, which jax would compile).

    Args:
        input_shape: `(height, width, channels)`; CIFAR is `(32, 32, 3)`.
        num_classes: number of output logits.
        classifier: `"dense"` or `"cosine"` (`kimbalance.layers.CosineDense`,
            LDAM's `NormedLinear`).
        preprocessing: `None`, a Keras layer or a list of layers applied to
            the input first (e.g. per-channel `Normalization`).
        seed: int seed of the initial weights; by default one is drawn from
            NumPy's global generator, which `keras.utils.set_random_seed`
            seeds.
        name: the model name.

    Returns:
        A `keras.Model` mapping images to `(batch, num_classes)` logits.

    Raises:
        ValueError: for a bad shape, class count, classifier, seed or
            preprocessing layer.

    Examples:

    >>> model = resnet32()
    >>> model.output_shape
    (None, 10)
    >>> sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    464154

    References:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
        Margin Loss", NeurIPS 2019 (github.com/kaidic/LDAM-DRW).
    """
    shape = _check_image_shape(input_shape, min_side=1, allow_grayscale=False)
    num_classes = check_num_classes(num_classes, allow_none=False)
    _check_name(name)
    check_choice("classifier", classifier, _CLASSIFIERS)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    seed = check_int("seed", seed, low=0)
    seeds = iter(range(seed, seed + 64))  # one per kernel: 31 convolutions + 1
    inputs = keras.Input(shape, name="images")
    x = _preprocess(inputs, preprocessing)
    x = _conv_bn(x, 16, stride=1, name="stem", seed=next(seeds))
    x = keras.layers.ReLU(name="stem_relu")(x)
    in_filters = 16
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(5):
            stride = 2 if (stage > 1 and block == 0) else 1
            x = _basic_block(x, in_filters, filters, stride, seeds,
                             name=f"stage{stage}_block{block}")
            in_filters = filters
    x = keras.layers.GlobalAveragePooling2D(data_format=_CHANNELS_LAST,
                                            name="pool")(x)
    outputs = _head(x, num_classes, classifier,
                    kernel_initializer=KaimingNormal(next(seeds)))
    return keras.Model(inputs, outputs, name=name)


def small_unet(input_shape: Sequence[int], num_classes: int, *,
               base_filters: int = 16, depth: int = 2, upsampling: str = "transpose",
               batch_norm: bool = True, dropout: float = 0.0,
               preprocessing: Any = None, seed: int | None = None,
               name: str = "small_unet") -> keras.Model:
    """A small U-Net for semantic segmentation: a logit map per pixel.

    The U-Net of Ronneberger et al. (2015), scaled down: `depth` encoder
    levels, each two 3x3 convolutions (`"same"` padding, batch
    normalisation unless `batch_norm=False`, ReLU) then 2x2 max pooling, the
    filters doubling from `base_filters` at each level; a bottleneck block
    with `base_filters * 2**depth` filters (dropout after it when `dropout`
    > 0); then `depth` decoder levels, each an upsampling by 2 (a 2x2
    stride-2 transposed convolution, or bilinear / nearest upsampling and a
    3x3 convolution), the concatenation with the encoder output of the same
    resolution (the skip connection) and two 3x3 convolutions; and a 1x1
    convolution to `num_classes` logits. The output has the input's height
    and width: `(batch, H, W, num_classes)`; with `num_classes=1` it is the
    logit of the foreground (`keras.losses.BinaryCrossentropy(
    from_logits=True)`).

    H and W must be divisible by `2**depth` (each pooling halves them and
    each upsampling doubles them back); `None` sides build a fully
    convolutional model that takes any such size. Kernels are Kaiming-normal
    drawn with NumPy from `seed` (as `resnet32`), so one seed gives the same
    initial network on torch, jax and tensorflow.

    Args:
        input_shape: `(height, width, channels)`, or `(height, width)` for
            grayscale images (a channel axis is added); sides divisible by
            `2**depth`, or `None` (with a channel count: `(None, None, 1)`).
        num_classes: number of output logits per pixel (1 for a binary
            sigmoid head).
        base_filters: int in [1, 1024], the filters of the first level.
        depth: int in [1, 6], the number of poolings (and upsamplings).
        upsampling: `"transpose"` (`Conv2DTranspose`, learned), `"bilinear"`
            or `"nearest"` (`UpSampling2D` then a 3x3 convolution).
        batch_norm: bool, batch normalisation after every 3x3 convolution
            (the convolutions then have no bias).
        dropout: dropout rate after the bottleneck, in [0, 1).
        preprocessing: `None`, a Keras layer or a list of layers applied to
            the input first (e.g. `keras.layers.Rescaling(1 / 255)`).
        seed: int seed of the initial kernels; by default one is drawn from
            NumPy's global generator, which `keras.utils.set_random_seed`
            seeds.
        name: the model name.

    Returns:
        A `keras.Model` mapping `(batch, H, W, channels)` images to
        `(batch, H, W, num_classes)` logits.

    Raises:
        ValueError: for a bad shape (naming `input_shape`, including sides
            not divisible by `2**depth`), class count, `base_filters`,
            `depth`, `upsampling`, `batch_norm`, dropout rate, seed or
            preprocessing layer.

    Examples:

    >>> model = small_unet((32, 32, 1), 3, base_filters=8, depth=2, seed=0)
    >>> model.output_shape, model.count_params()
    ((None, 32, 32, 3), 29819)
    >>> logits = model(np.zeros((2, 32, 32, 1), "float32"))
    >>> tuple(logits.shape)
    (2, 32, 32, 3)
    >>> any_size = small_unet((None, None, 3), 2, depth=3, seed=0)
    >>> any_size.output_shape
    (None, None, None, 2)

    References:
        Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional
        networks for biomedical image segmentation." MICCAI 2015.
    """
    depth = check_int("depth", depth, low=1, high=6)
    shape = _check_unet_shape(input_shape, depth)
    num_classes = check_num_classes(num_classes, allow_none=False)
    base_filters = check_int("base_filters", base_filters, low=1, high=1024)
    check_choice("upsampling", upsampling, _UPSAMPLING)
    batch_norm = check_bool("batch_norm", batch_norm)
    dropout = check_float("dropout", dropout, low=0.0, high=1.0,
                          high_inclusive=False)
    _check_name(name)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    seeds = iter(range(check_int("seed", seed, low=0), seed + 8 * depth + 8))
    inputs = keras.Input(shape, name="images")
    x = _preprocess(inputs, preprocessing)
    if len(shape) == 2:
        x = keras.layers.Reshape((*shape, 1))(x)
    skips = []
    for level in range(depth):
        x = _unet_block(x, base_filters * 2**level, f"enc{level}", batch_norm, seeds)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, data_format=_CHANNELS_LAST,
                                      name=f"enc{level}_pool")(x)
    x = _unet_block(x, base_filters * 2**depth, "bottleneck", batch_norm, seeds)
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(
                filters, 2, strides=2, kernel_initializer=KaimingNormal(next(seeds)),
                data_format=_CHANNELS_LAST, name=f"dec{level}_up")(x)
        else:
            x = keras.layers.UpSampling2D(2, interpolation=upsampling,
                                          data_format=_CHANNELS_LAST,
                                          name=f"dec{level}_upsample")(x)
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu",
                kernel_initializer=KaimingNormal(next(seeds)),
                data_format=_CHANNELS_LAST, name=f"dec{level}_up")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"dec{level}_skip")(
            [skips[level], x])
        x = _unet_block(x, filters, f"dec{level}", batch_norm, seeds)
    outputs = keras.layers.Conv2D(
        num_classes, 1, kernel_initializer=KaimingNormal(next(seeds)),
        data_format=_CHANNELS_LAST, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _unet_block(x, filters, prefix, batch_norm, seeds):
    for j in (1, 2):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", use_bias=not batch_norm,
            kernel_initializer=KaimingNormal(next(seeds)),
            data_format=_CHANNELS_LAST, name=f"{prefix}_conv{j}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{j}")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu{j}")(x)
    return x


def _check_unet_shape(input_shape, depth):
    sides_ok = isinstance(input_shape, list | tuple) and len(input_shape) in (2, 3)
    if sides_ok:
        sides, channels = input_shape[:2], input_shape[2:]
        sides_ok = all(side is None or (
            isinstance(side, numbers.Integral) and not isinstance(side, bool)
            and int(side) >= 1) for side in sides) and all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and int(c) >= 1
            for c in channels)
    if not sides_ok:
        raise invalid("input_shape", "(height, width, channels) or (height, width) "
                      "with positive int (or None) sides and a positive int "
                      "channel count", input_shape)
    if len(input_shape) == 2 and None in input_shape:
        raise invalid("input_shape", "int sides for a grayscale (height, width) "
                      "shape; pass (None, None, 1) for any size", input_shape)
    factor = 2**depth
    if any(side is not None and side % factor for side in input_shape[:2]):
        raise invalid("input_shape", f"height and width divisible by 2**depth = "
                      f"{factor} (depth={depth}), or None", input_shape)
    return tuple(None if side is None else int(side) for side in input_shape)


@export
class KaimingNormal(keras.initializers.Initializer):
    """`torch.nn.init.kaiming_normal_` drawn with NumPy: N(0, 2 / fan_in).

    Untruncated, fan-in mode, ReLU gain; fan-in is the product of all kernel
    dimensions but the last (Keras kernels are `(..., in, out)`). The values
    depend only on `seed` and the shape, so they are the same on every
    backend. Used by `resnet32`.

    Args:
        seed: int seed; `None` draws fresh values on each call.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = None if seed is None else check_int("seed", seed, low=0)

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])
        rng = np.random.default_rng(self.seed)
        values = rng.standard_normal(tuple(shape)) * np.sqrt(2.0 / max(fan_in, 1))
        return ops.convert_to_tensor(values, dtype=dtype or keras.config.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def _conv_bn(x, filters, stride, name, seed):
    if stride > 1:
        x = keras.layers.ZeroPadding2D(1, data_format=_CHANNELS_LAST,
                                       name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        filters, 3, strides=stride, padding="valid" if stride > 1 else "same",
        use_bias=False, kernel_initializer=KaimingNormal(seed),
        data_format=_CHANNELS_LAST, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                           name=f"{name}_bn")(x)


def _basic_block(x, in_filters, filters, stride, seeds, name):
    out = _conv_bn(x, filters, stride, name=f"{name}_1", seed=next(seeds))
    out = keras.layers.ReLU(name=f"{name}_relu1")(out)
    out = _conv_bn(out, filters, 1, name=f"{name}_2", seed=next(seeds))
    if stride != 1 or in_filters != filters:
        x = OptionAShortcut(stride=stride, pad_channels=(filters - in_filters) // 2,
                            name=f"{name}_shortcut")(x)
    out = keras.layers.Add(name=f"{name}_add")([out, x])
    return keras.layers.ReLU(name=f"{name}_relu2")(out)


@export
class OptionAShortcut(keras.layers.Layer):
    """ResNet option-A shortcut: spatial subsampling and zero channel padding.

    `x[:, ::stride, ::stride, :]` padded with `pad_channels` zero channels on
    each side (He et al. 2016; LDAM's `LambdaLayer`). No weights. Used by
    `resnet32`; registered so saved models load on any backend.

    Args:
        stride: the spatial subsampling step.
        pad_channels: zero channels added before and after the input channels.
    """

    def __init__(self, stride: int = 2, pad_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stride = check_int("stride", stride, low=1)
        self.pad_channels = check_int("pad_channels", pad_channels, low=0)

    def call(self, inputs: Any) -> Any:
        x = inputs[:, :: self.stride, :: self.stride, :]
        pad = self.pad_channels
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [pad, pad]])

    def compute_output_shape(
        self, input_shape: tuple[int | None, ...]
    ) -> tuple[int | None, ...]:
        def sub(side: int | None) -> int | None:
            return None if side is None else -(-side // self.stride)

        channels = input_shape[3]
        return (input_shape[0], sub(input_shape[1]), sub(input_shape[2]),
                None if channels is None else channels + 2 * self.pad_channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stride": self.stride,
                "pad_channels": self.pad_channels}


def _head(x, num_classes, classifier, kernel_initializer=None):
    if classifier == "cosine":
        return CosineDense(num_classes, name="logits")(x)
    kwargs = {} if kernel_initializer is None else {
        "kernel_initializer": kernel_initializer}
    return keras.layers.Dense(num_classes, name="logits", **kwargs)(x)


def _preprocess(x, preprocessing):
    if preprocessing is None:
        return x
    layers = (list(preprocessing) if isinstance(preprocessing, list | tuple)
              else [preprocessing])
    if not layers or not all(isinstance(layer, keras.layers.Layer)
                             for layer in layers):
        raise invalid("preprocessing", "None, a Keras layer or a list of Keras "
                      "layers", preprocessing)
    for layer in layers:
        x = layer(x)
    return x


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise invalid("name", "a non-empty string (the model name)", name)


def _check_shape(name, input_shape):
    if (not isinstance(input_shape, list | tuple) or not input_shape or not all(
            isinstance(side, numbers.Integral) and not isinstance(side, bool)
            and int(side) >= 1 for side in input_shape)):
        raise invalid(name, "a non-empty tuple of positive ints (the shape of one "
                      "sample, without the batch axis)", input_shape)
    return tuple(int(side) for side in input_shape)


def _check_image_shape(input_shape, *, min_side, allow_grayscale):
    shape = _check_shape("input_shape", input_shape)
    ranks = (2, 3) if allow_grayscale else (3,)
    if len(shape) not in ranks:
        expected = ("(height, width, channels) or (height, width)"
                    if allow_grayscale else "(height, width, channels)")
        raise invalid("input_shape", expected, input_shape)
    if min(shape[:2]) < min_side:
        raise invalid("input_shape", f"image sides >= {min_side}", input_shape)
    return shape
