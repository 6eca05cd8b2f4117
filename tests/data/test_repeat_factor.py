"""RepeatFactorSampler (LVIS repeat-factor sampling) and class_presence."""

import pickle

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kimbalance.data.samplers._base as sampler_base
import kimbalance.data.samplers.repeat_factor as repeat_factor_module
from kimbalance.data import (
    BalancedBatchGenerator,
    RepeatFactorSampler,
    ShardedSampler,
    class_presence,
    get_sampler,
)

# 10 images, 3 classes: class 0 everywhere, class 1 in 4 images, class 2 in 1.
PRESENCE = np.array([[1, 0, 0]] * 5 + [[1, 1, 0]] * 4 + [[1, 1, 1]])


def _presence(seed, images, classes, density):
    rng = np.random.default_rng(seed)
    y = (rng.random((images, classes)) < density).astype(np.int8)
    y[rng.integers(0, images), :] = 1  # every class in at least one image
    return y


def test_hand_computed_factors():
    s = RepeatFactorSampler(PRESENCE, threshold=0.9, seed=0)
    # f = [1, 0.5, 0.1]; r_c = max(1, sqrt(0.9 / f_c)) = [1, sqrt(1.8), 3].
    np.testing.assert_allclose(s.class_repeat_factors, [1.0, np.sqrt(1.8), 3.0])
    np.testing.assert_allclose(s.repeat_factors,
                               [1.0] * 5 + [np.sqrt(1.8)] * 4 + [3.0])
    # sum floor(r) = 5 + 4 + 3 = 12; sum frac = 4 * 0.3416 = 1.366 -> K = 1.
    assert len(s) == 13
    fractions = np.sqrt(1.8) - 1.0
    expected = np.array([1.0] * 5 + [1.0 + 0.25] * 4 + [3.0])
    np.testing.assert_allclose(s.expected_repeats, expected)
    assert fractions * 4 == pytest.approx(1.3666, abs=1e-4)
    for epoch in range(5):
        counts = np.bincount(s.indices(epoch), minlength=10)
        assert counts[9] == 3
        assert np.all(counts[:5] == 1)
        assert counts[5:9].sum() == 5 and set(counts[5:9]) <= {1, 2}


def test_threshold_below_every_frequency_is_the_plain_epoch():
    s = RepeatFactorSampler(PRESENCE, threshold=0.1, seed=3)
    np.testing.assert_array_equal(s.repeat_factors, np.ones(10))
    assert sorted(s.indices(0).tolist()) == list(range(10))


def test_images_without_any_class_have_factor_one():
    y = np.array([[0, 0], [1, 0], [0, 1], [0, 0]])
    s = RepeatFactorSampler(y, threshold=1.0)
    np.testing.assert_allclose(s.repeat_factors, [1.0, 2.0, 2.0, 1.0])
    assert np.bincount(s.indices(0), minlength=4).tolist() == [1, 2, 2, 1]


def test_class_ids_are_one_class_per_image():
    ids = np.array([0] * 8 + [1] * 2)
    s = RepeatFactorSampler(ids, threshold=0.8)
    np.testing.assert_allclose(s.class_repeat_factors, [1.0, 2.0])
    assert len(s) == 12
    assert s.epoch_class_counts(0).tolist() == [8, 4]
    np.testing.assert_array_equal(s.classes_of([0, 9]), [0, 1])


@settings(max_examples=8)
@given(seed=st.integers(0, 2**32 - 1), images=st.integers(3, 40),
       classes=st.integers(2, 6), density=st.floats(0.05, 0.6),
       threshold=st.floats(0.05, 1.0))
def test_expected_repeats_over_many_epochs(seed, images, classes, density, threshold):
    y = _presence(seed, images, classes, density)
    s = RepeatFactorSampler(y, threshold=threshold, seed=seed)
    frequency = y.sum(axis=0) / images
    class_factors = np.maximum(1.0, np.sqrt(threshold / frequency))
    factors = np.max(np.where(y > 0, class_factors, 1.0), axis=1)
    np.testing.assert_allclose(s.repeat_factors, factors, rtol=1e-12)
    # Epoch length and expectations: within 1/2 of sum r_i in total.
    assert abs(s.expected_repeats.sum() - factors.sum()) <= 0.5 + 1e-9
    assert len(s) == round(s.expected_repeats.sum())
    epochs = 200
    counts = np.stack([np.bincount(s.indices(e), minlength=images)
                       for e in range(epochs)])
    whole = np.floor(factors)
    assert np.all((counts == whole) | (counts == whole + 1))
    extra = s.expected_repeats - whole
    # Bernoulli(q) means over 200 epochs: 5 standard deviations.
    tolerance = 5 * np.sqrt(extra * (1 - extra) / epochs) + 1e-9
    assert np.all(np.abs(counts.mean(axis=0) - s.expected_repeats) <= tolerance)
    np.testing.assert_array_equal(
        s.epoch_class_counts(7), (counts[7][:, None] * (y > 0)).sum(axis=0))


def test_determinism_pickling_and_slices():
    y = _presence(1, 30, 4, 0.2)
    a = RepeatFactorSampler(y, threshold=0.5, seed=7)
    b = RepeatFactorSampler(y, threshold=0.5, seed=7)
    other = RepeatFactorSampler(y, threshold=0.5, seed=8)
    np.testing.assert_array_equal(a.indices(3), b.indices(3))
    assert not np.array_equal(a.indices(3), a.indices(4))
    assert not np.array_equal(a.indices(3), other.indices(3))
    clone = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(clone.indices(5), a.indices(5))
    whole = a.indices(2)
    np.testing.assert_array_equal(a.indices(2, 3, 11), whole[3:11])
    np.testing.assert_array_equal(a.indices_at(2, [7, 0, 7]), whole[[7, 0, 7]])


def test_unmaterialised_slices_equal_the_materialised_epoch(monkeypatch):
    y = _presence(2, 50, 5, 0.15)
    s = RepeatFactorSampler(y, threshold=0.6, seed=4)
    assert s.materializes_epoch
    whole = [s.indices(e).copy() for e in range(3)]
    monkeypatch.setattr(sampler_base, "EPOCH_CACHE_LIMIT", 4)
    fresh = RepeatFactorSampler(y, threshold=0.6, seed=4)
    assert not fresh.materializes_epoch
    for epoch in range(3):
        np.testing.assert_array_equal(fresh.indices(epoch), whole[epoch])
        np.testing.assert_array_equal(fresh.indices(epoch, 5, 17), whole[epoch][5:17])


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_together_are_the_epoch(num_shards):
    y = _presence(3, 23, 3, 0.2)
    s = RepeatFactorSampler(y, threshold=0.7, seed=2)
    epoch = s.indices(0)
    parts = []
    for index in range(num_shards):
        shard = ShardedSampler(s, num_shards=num_shards, shard_index=index,
                               batch_size=4)
        parts.append(list(shard))
        gen = BalancedBatchGenerator(np.arange(23, dtype=np.float32)[:, None], y,
                                     sampler=s, batch_size=4, num_shards=num_shards,
                                     shard_index=index)
        yielded = np.concatenate([gen[j][0][:, 0] for j in range(len(gen))])
        np.testing.assert_array_equal(yielded.astype(np.int64), parts[-1])
    assert len({len(p) for p in parts}) == 1
    seen = np.concatenate(parts)
    padded = len(seen) - len(epoch)
    assert 0 <= padded < 4 * num_shards
    assert sorted(seen.tolist()) == sorted(
        np.concatenate([epoch, epoch[:padded]]).tolist())


def test_get_sampler_by_name():
    s = get_sampler("repeat_factor", PRESENCE, seed=1, batch_size=8, threshold=0.9)
    assert isinstance(s, RepeatFactorSampler) and s.threshold == 0.9
    with pytest.raises(ValueError, match="argument `sampler_kwargs`"):
        get_sampler("repeat_factor", PRESENCE, power=2.0)


def test_fit_with_the_generator_on_multi_hot_targets():
    rng = np.random.default_rng(0)
    y = _presence(0, 48, 3, 0.2).astype(np.float32)
    x = (y @ rng.normal(size=(3, 5)) + rng.normal(size=(48, 5)) * 0.1
         ).astype(np.float32)
    gen = BalancedBatchGenerator(x, y, sampler="repeat_factor", batch_size=16,
                                 sampler_kwargs={"threshold": 0.5})
    assert isinstance(gen.sampler, RepeatFactorSampler)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(gen, epochs=2, verbose=0, callbacks=[gen.sync_callback()])
    assert np.all(np.isfinite(history.history["loss"]))


def test_class_presence_of_masks():
    masks = np.zeros((3, 4, 5), dtype=np.uint8)
    masks[0, 1, 1] = 2
    masks[2] = 1
    np.testing.assert_array_equal(
        class_presence(masks, 3), [[1, 0, 1], [1, 0, 0], [0, 1, 0]])
    volumes = np.zeros((2, 2, 3, 3))
    volumes[1, 0, 0, 0] = 3
    np.testing.assert_array_equal(class_presence(volumes, 4),
                                  [[1, 0, 0, 0], [1, 0, 0, 1]])
    s = RepeatFactorSampler(class_presence(masks, 3), threshold=1.0)
    np.testing.assert_allclose(s.repeat_factors,
                               [np.sqrt(3), np.sqrt(1.5), np.sqrt(3)])


def test_class_presence_reads_masks_in_chunks(monkeypatch):
    monkeypatch.setattr(repeat_factor_module, "_PRESENCE_CHUNK", 20)
    masks = np.random.default_rng(0).integers(0, 4, size=(9, 3, 4))
    expected = np.stack([np.isin(np.arange(4), m) for m in masks])
    np.testing.assert_array_equal(class_presence(masks, 4), expected)


@pytest.mark.parametrize("masks,message", [
    (np.array([[0, 3]]), r"class ids in \[0, num_classes=3\) \(found \[3\]\)"),
    (np.array([[0, -1]]), r"found \[-1\]"),
    (np.array([[0.5, 1.0]]), r"whole class ids \(found \[0.5\]\)"),
    (np.array([[np.nan, 1.0]]), r"finite class ids"),
    (np.array([0, 1]), r"at least one map axis; got shape \(2,\)"),
    (np.array([["a", "b"]]), r"numeric class ids"),
])
def test_class_presence_errors(masks, message):
    with pytest.raises(ValueError, match=r"argument `masks`.*" + message):
        class_presence(masks, 3)
    with pytest.raises(ValueError, match=r"argument `num_classes`.*"
                       "Received: num_classes=0"):
        class_presence(np.zeros((1, 2), int), 0)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan"), "0.1", True])
def test_invalid_threshold(threshold):
    with pytest.raises(ValueError, match=r"argument `threshold`. Expected a finite "
                       r"float > 0.0 and <= 1.0. Received: threshold="):
        RepeatFactorSampler(PRESENCE, threshold=threshold)


def test_other_errors():
    with pytest.raises(ValueError, match=r"argument `counts`.*image-level labels"):
        RepeatFactorSampler.from_counts([3, 2])
    with pytest.raises(ValueError, match=r"argument `num_classes`.*"
                       r"Received: num_classes=4"):
        RepeatFactorSampler(PRESENCE, num_classes=4)
    with pytest.raises(ValueError, match=r"argument `y`.*0 and 1 values"):
        RepeatFactorSampler(PRESENCE * 2)
    with pytest.raises(ValueError, match=r"argument `seed`.*Received: seed=-1"):
        RepeatFactorSampler(PRESENCE, seed=-1)
