"""RandomShiftFlip: shifts and flips checked against a per-image loop."""

import keras
import numpy as np
import pytest

from kimbalance.data import BalancedBatchGenerator, RandomShiftFlip


def _shift(image, dy, dx, fill=0.0):
    """Oracle: image content moved by (dy, dx), a loop over output pixels."""
    out = np.full_like(image, fill)
    height, width = image.shape[:2]
    for r in range(height):
        for c in range(width):
            if 0 <= r - dy < height and 0 <= c - dx < width:
                out[r, c] = image[r - dy, c - dx]
    return out


def _candidates(image, max_shift, flip):
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            shifted = _shift(image, dy, dx)
            yield (dy, dx, False), shifted
            if flip:
                yield (dy, dx, True), shifted[:, ::-1]


def _explain(x, out, max_shift, flip):
    """The (dy, dx, flipped) each output image is, by brute force (unique)."""
    found = []
    for image, result in zip(x, out, strict=True):
        matches = [key for key, cand in _candidates(image, max_shift, flip)
                   if np.array_equal(cand, result)]
        assert matches, "an output image is no shift/flip of its input"
        found.append(matches[0])
    return found


@pytest.mark.parametrize("shape", [(64, 6, 7), (64, 6, 7, 2)])
def test_every_image_is_a_shift_or_flip_of_its_input(shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape).astype(np.float32)
    out = RandomShiftFlip(2)(x, rng=np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    found = _explain(x, out, 2, True)
    offsets = {(dy, dx) for dy, dx, _ in found}
    flips = [f for _, _, f in found]
    assert len(offsets) > 10  # of the 25 possible
    assert 0.2 < np.mean(flips) < 0.8
    assert max(max(abs(dy), abs(dx)) for dy, dx, _ in found) == 2


def test_flip_only_and_shift_only():
    x = np.random.default_rng(2).normal(size=(40, 5, 5)).astype(np.float32)
    flipped = RandomShiftFlip(0)(x, rng=np.random.default_rng(0))
    assert all(dy == dx == 0 for dy, dx, _ in _explain(x, flipped, 0, True))
    shifted = RandomShiftFlip(1, horizontal_flip=False)(x, rng=np.random.default_rng(0))
    assert not any(f for _, _, f in _explain(x, shifted, 1, False))
    np.testing.assert_array_equal(x, np.random.default_rng(2).normal(
        size=(40, 5, 5)).astype(np.float32))  # input untouched


def test_noop_returns_input_and_integer_dtypes_survive():
    x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    assert RandomShiftFlip(0, horizontal_flip=False)(x) is x
    out = RandomShiftFlip(1, fill_value=7)(x, rng=np.random.default_rng(3))
    assert out.dtype == np.uint8
    assert (out == 7).any() or np.array_equal(np.sort(out, axis=None),
                                              np.sort(x, axis=None))


def test_same_rng_same_output():
    x = np.random.default_rng(4).normal(size=(8, 6, 6, 1)).astype(np.float32)
    augment = RandomShiftFlip(2)
    a = augment(x, rng=np.random.default_rng([5, 1, 0]))
    b = augment(x, rng=np.random.default_rng([5, 1, 0]))
    np.testing.assert_array_equal(a, b)


def test_classes_augments_only_those_classes():
    x = np.random.default_rng(6).normal(size=(30, 5, 5)).astype(np.float32)
    y = np.arange(30) % 3
    out = RandomShiftFlip(1, classes=[2])(x, y, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out[y != 2], x[y != 2])
    assert not np.array_equal(out[y == 2], x[y == 2])
    _explain(x[y == 2], out[y == 2], 1, True)
    column = RandomShiftFlip(1, classes=[2])(x, y[:, None],
                                             rng=np.random.default_rng(0))
    np.testing.assert_array_equal(column, out)


def test_in_the_generator_reproducible_per_epoch():
    x = np.random.default_rng(7).normal(size=(48, 6, 6, 1)).astype(np.float32)
    y = np.repeat([0, 1, 2], [32, 12, 4])

    def epoch_batches(gen, epoch):
        gen.on_epoch_end() if epoch else None
        return [gen[i][0] for i in range(len(gen))]

    def make():
        return BalancedBatchGenerator(x, y, sampler="over", batch_size=16, seed=3,
                                      augment=RandomShiftFlip(2, classes=[1, 2]))
    first, again = make(), make()
    batches = epoch_batches(first, 0)
    for a, b in zip(batches, epoch_batches(again, 0), strict=True):
        np.testing.assert_array_equal(a, b)
    _, labels = first[0]
    assert set(np.unique(labels)) <= {0, 1, 2}
    later = epoch_batches(first, 1)
    assert any(not np.array_equal(a, b) for a, b in zip(batches, later, strict=True))


def test_fit_with_augmented_generator():
    x = np.random.default_rng(8).normal(size=(40, 6, 6, 1)).astype(np.float32)
    y = np.repeat([0, 1], [30, 10])
    gen = BalancedBatchGenerator(x, y, sampler="class_balanced", batch_size=8,
                                 augment=RandomShiftFlip(1))
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(gen, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"max_shift": -1}, r"argument `max_shift`. Expected an int >= 0. Received: "
                        r"max_shift=-1"),
    ({"max_shift": 1.5}, r"argument `max_shift`.*Received: max_shift=1.5"),
    ({"horizontal_flip": "yes"}, r"argument `horizontal_flip`.*Received: "
                                 r"horizontal_flip='yes'"),
    ({"fill_value": "black"}, r"argument `fill_value`.*Received: fill_value='black'"),
    ({"classes": []}, r"argument `classes`. Expected None or a non-empty list"),
    ({"classes": [0.5]}, r"argument `classes`.*Received: classes=\[0.5\]"),
    ({"classes": [-1, 2]}, r"argument `classes`. Expected class ids >= 0. "
                           r"Received: classes=\[-1, 2\]"),
    ({"classes": "01"}, r"argument `classes`. Expected None or a non-empty list"),
    ({"classes": True}, r"argument `classes`. Expected None or a non-empty list"),
    ({"classes": [True]}, r"argument `classes`. Expected None or a non-empty list"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomShiftFlip(**kwargs)


def test_invalid_batches():
    with pytest.raises(ValueError, match=r"argument `x`. Expected a numeric image "
                                         r"batch of shape \(N, H, W\) or \(N, H, W, "
                                         r"C\) \(got shape \(4, 5\)\)"):
        RandomShiftFlip(1)(np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"argument `max_shift`. Expected a shift "
                                         r"below the image size \(3, 3\). Received: "
                                         r"max_shift=3"):
        RandomShiftFlip(3)(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"argument `y`. Expected the batch's labels"):
        RandomShiftFlip(1, classes=[1])(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"argument `y`. Expected 2 class ids or "
                                         r"one-hot rows \(one per image\)"):
        RandomShiftFlip(1, classes=[1])(np.zeros((2, 4, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"argument `y`. Expected 2 class ids or "
                                         r"one-hot rows.*Received: y=\[0, 1, 1\]"):
        RandomShiftFlip(1, classes=[1])(np.zeros((2, 4, 4)), [0, 1, 1])
    with pytest.raises(ValueError, match=r"argument `y`. Expected finite labels"):
        RandomShiftFlip(1, classes=[1])(np.zeros((2, 4, 4)), [0.0, np.nan])
    with pytest.raises(ValueError, match=r"argument `x`. Expected a numeric image"):
        RandomShiftFlip(1)(np.full((2, 4, 4), "a"))


def test_classes_read_one_hot_labels_like_ids():
    x = np.arange(4 * 4 * 4, dtype="float32").reshape(4, 4, 4)
    ids = np.array([0, 2, 1, 2])
    augment = RandomShiftFlip(1, classes=[2])
    by_ids = augment(x, ids, rng=np.random.default_rng(3))
    by_one_hot = augment(x, np.eye(3)[ids], rng=np.random.default_rng(3))
    np.testing.assert_array_equal(by_ids, by_one_hot)
    np.testing.assert_array_equal(by_ids[[0, 2]], x[[0, 2]])
