"""segmentation_mosaics: shapes, determinism, the label rule, long tails, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.data import long_tail_counts
from kimbalance.data.mosaics import segmentation_mosaics, tile_class_probabilities


def _tiles(num_classes=3, per_class=4, size=4, seed=0):
    """uint8 tiles: per class, images with random intensities; labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(num_classes * per_class, size, size), dtype=np.uint8)
    y = np.repeat(np.arange(num_classes), per_class)
    return x, y


def test_shapes_and_dtypes():
    x, y = _tiles()
    images, masks = segmentation_mosaics(x, y, num_images=5, grid=3, seed=0)
    assert images.shape == (5, 12, 12, 1) and images.dtype == np.float32
    assert masks.shape == (5, 12, 12) and masks.dtype == np.int32
    assert images.min() >= 0 and images.max() <= 1
    assert masks.min() >= 0 and masks.max() <= 3
    rgb = np.repeat(x[..., None], 3, axis=-1)
    images, masks = segmentation_mosaics(rgb, y, num_images=2, seed=0)
    assert images.shape == (2, 8, 8, 3) and masks.shape == (2, 8, 8)


def test_deterministic_per_seed():
    x, y = _tiles()
    a = segmentation_mosaics(x, y, num_images=6, ratio=5.0, noise=0.1, seed=3)
    b = segmentation_mosaics(x, y, num_images=6, ratio=5.0, noise=0.1, seed=3)
    c = segmentation_mosaics(x, y, num_images=6, ratio=5.0, noise=0.1, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_label_rule_on_a_hand_made_case():
    # Two 2x2 tiles: class 0 with one bright pixel, class 1 with three.
    tiles = np.array([[[0.9, 0.1], [0.3, 0.0]],
                      [[0.5, 0.6], [0.2, 1.0]]], dtype=np.float64)
    images, masks = segmentation_mosaics(tiles, [0, 1], num_images=1, grid=2,
                                         class_counts=[1, 1], threshold=0.3, seed=0)
    # The NumPy oracle: find where each tile landed and apply the rule.
    expected = np.zeros((4, 4), np.int32)
    found = []
    for row in range(2):
        for col in range(2):
            window = (slice(2 * row, 2 * row + 2), slice(2 * col, 2 * col + 2))
            patch = images[0][window][..., 0]
            for c, tile in enumerate(tiles):
                if np.allclose(patch, tile):
                    expected[window] = np.where(tile > 0.3, c + 1, 0)
                    found.append(c)
    assert sorted(found) == [0, 1]  # exactly one tile per class, two blanks
    np.testing.assert_array_equal(masks[0], expected)
    assert int(np.sum(masks == 1)) == 1 and int(np.sum(masks == 2)) == 3
    # 0.3 itself is not above the threshold: background.
    assert int(np.sum(images[0][..., 0] == np.float32(0.3))) == 1


def test_integer_images_are_scaled_by_dtype_maximum():
    tiles = np.full((1, 2, 2), 255, np.uint8)
    images, masks = segmentation_mosaics(tiles, [0], num_images=1, grid=1,
                                         class_counts=[1], seed=0)
    assert images.max() == 1.0 and np.all(masks == 1)


def test_class_counts_place_exact_tile_numbers():
    tiles = np.ones((3, 2, 2))  # fully bright: a tile's slot is all class + 1
    counts = [7, 3, 1]
    _, masks = segmentation_mosaics(tiles, [0, 1, 2], num_images=5, grid=2,
                                    class_counts=counts, seed=1)
    slots = masks[:, ::2, ::2]  # one pixel per slot
    assert np.bincount(slots.ravel(), minlength=4).tolist() == [9, 7, 3, 1]


def test_long_tail_background_dominant_tail_rare_but_present():
    rng = np.random.default_rng(0)
    tiles = rng.integers(100, 256, size=(40, 4, 4), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 4)
    _, masks = segmentation_mosaics(tiles, labels, num_images=2000, ratio=100.0,
                                    background_prob=0.5, threshold=0.0, seed=0)
    pixels = np.bincount(masks.ravel(), minlength=11)
    assert pixels[0] == pixels.max()
    assert pixels[10] > 0  # the tail class is present
    # Tile frequencies follow the profile within sampling error.
    tiles_per_class = pixels[1:] / 16
    expected = 2000 * 4 * 0.5 * tile_class_probabilities(10, 100.0)
    np.testing.assert_allclose(tiles_per_class, expected,
                               rtol=0.0, atol=float(np.max(4 * np.sqrt(expected) + 1)))
    assert tiles_per_class[0] > 50 * tiles_per_class[-1]


def test_noise_keeps_masks_and_range():
    x, y = _tiles()
    clean, masks = segmentation_mosaics(x, y, num_images=4, seed=2)
    noisy, noisy_masks = segmentation_mosaics(x, y, num_images=4, noise=0.2, seed=2)
    np.testing.assert_array_equal(masks, noisy_masks)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not np.array_equal(clean, noisy)


def test_tile_class_probabilities_oracle():
    p = tile_class_probabilities(10, 100.0)
    counts = long_tail_counts(10**9, 10, 100.0).astype(np.float64)
    np.testing.assert_allclose(p, counts / counts.sum(), rtol=1e-6)
    assert tile_class_probabilities(1, 5.0).tolist() == [1.0]


@settings(max_examples=20, deadline=None)
@given(num_classes=st.integers(1, 12), ratio=st.floats(1.0, 1e4))
def test_tile_class_probabilities_properties(num_classes, ratio):
    p = tile_class_probabilities(num_classes, ratio)
    assert p.shape == (num_classes,) and np.isclose(p.sum(), 1.0)
    assert np.all(np.diff(p) <= 1e-15)
    if num_classes > 1:
        assert np.isclose(p[0] / p[-1], ratio)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), grid=st.integers(1, 3),
       threshold=st.floats(0.0, 0.95), num_classes=st.integers(1, 4),
       background=st.floats(0.0, 0.9))
def test_label_rule_property(seed, grid, threshold, num_classes, background):
    """Without noise: foreground exactly where the image is above threshold,
    one class per slot, ids in [0, C]."""
    x, y = _tiles(num_classes=num_classes, per_class=2, size=3, seed=seed)
    images, masks = segmentation_mosaics(x, y, num_images=3, grid=grid,
                                         background_prob=background,
                                         threshold=threshold, seed=seed)
    np.testing.assert_array_equal(masks > 0, images[..., 0] > threshold)
    assert masks.min() >= 0 and masks.max() <= num_classes
    for row in range(grid):
        for col in range(grid):
            slot = masks[:, 3 * row:3 * row + 3, 3 * col:3 * col + 3].reshape(3, -1)
            for values in slot:
                assert len(set(values[values > 0].tolist())) <= 1


@pytest.mark.parametrize("kwargs, match", [
    ({"images": np.zeros((2, 3))}, "images"),
    ({"images": np.full((2, 3, 3), 2.0)}, "images"),
    ({"images": np.array([["a"]])}, "images"),
    ({"labels": [0, 1, 1]}, "labels"),
    ({"labels": [0, -1]}, "labels"),
    ({"num_images": 0}, "num_images"),
    ({"num_images": 10**9}, "num_images"),
    ({"grid": 0}, "grid"),
    ({"threshold": 1.0}, "threshold"),
    ({"noise": -0.1}, "noise"),
    ({"seed": -1}, "seed"),
    ({"ratio": 0.5}, "ratio"),
    ({"ratio": 2.0, "class_counts": [1, 1]}, "ratio"),
    ({"class_counts": [1, 1], "background_prob": 0.1}, "background_prob"),
    ({"background_prob": 1.0}, "background_prob"),
    ({"class_counts": [1]}, "class_counts"),
    ({"class_counts": [1, -1]}, "class_counts"),
    ({"class_counts": [1.5, 1]}, "class_counts"),
    ({"class_counts": [0, 0]}, "class_counts"),
    ({"class_counts": [5, 5]}, "class_counts"),
    ({"num_classes": 3}, "labels"),
])
def test_bad_arguments(kwargs, match):
    args = {"images": np.zeros((2, 3, 3), np.uint8), "labels": [0, 1],
            "num_images": 2, **kwargs}
    with pytest.raises(ValueError, match=f"Invalid value for argument `{match}`"):
        segmentation_mosaics(args.pop("images"), args.pop("labels"), **args)
