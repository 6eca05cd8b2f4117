"""kimbalance.data.grain.grain_dataset: Grain batches in a sampler's order, in fit."""

import ast
import pathlib
import sys

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kimbalance.data.grain as grain_module
from kimbalance.data.generator import BalancedBatchGenerator
from kimbalance.data.grain import grain_dataset
from kimbalance.data.samplers import RandomOverSampler
from kimbalance.weights import class_weights

grain = pytest.importorskip(
    "grain", reason="grain is not installed (pip install kimbalance[grain])")

Y = np.repeat([0, 1, 2], [70, 20, 10])
# Column 0 of each row is its index, so a batch's x says which samples it holds.
X = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)


def epoch_batches(dataset):
    return list(iter(dataset))


def assert_same_batches(batches, generator):
    assert len(batches) == len(generator)
    for i, batch in enumerate(batches):
        expected = generator[i]
        assert len(batch) == len(expected)
        for got, want in zip(batch, expected, strict=True):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype


@pytest.mark.parametrize("sampler", ["instance", "over", "under", "sqrt",
                                     "class_balanced"])
def test_same_batches_as_the_generator_every_epoch(sampler):
    ds = grain_dataset(X, Y, sampler=sampler, batch_size=16, seed=3,
                       class_weight="balanced")
    gen = BalancedBatchGenerator(X, Y, sampler=sampler, batch_size=16, seed=3,
                                 class_weight="balanced")
    for epoch in range(3):
        assert ds.epoch == epoch
        gen.set_epoch(epoch)
        assert_same_batches(epoch_batches(ds), gen)
    assert ds.epoch == 3


def test_record_order_is_the_samplers_epoch_order():
    """Oracle: the sampler's own index order, read from column 0 of x."""
    sampler = RandomOverSampler(Y, seed=5)
    ds = grain_dataset(X, Y, sampler=sampler, batch_size=32)
    for epoch in range(2):
        order = np.concatenate([xb[:, 0] for xb, _ in epoch_batches(ds)])
        np.testing.assert_array_equal(order.astype(np.int64), sampler.indices(epoch))
    assert not np.array_equal(sampler.indices(0), sampler.indices(1))


def test_batches_carry_the_class_weights_as_sample_weights():
    ds = grain_dataset(X, Y, sampler="instance", batch_size=50,
                       class_weight="effective_number")
    weights = class_weights(np.bincount(Y), "effective_number")
    for _xb, yb, wb in ds:
        assert wb.dtype == np.float32
        np.testing.assert_allclose(wb, weights[yb], rtol=1e-6)
    ds.set_class_weight([1.0, 2.0, 3.0])
    xb, yb, wb = next(iter(ds))
    np.testing.assert_array_equal(wb, np.array([1.0, 2.0, 3.0], np.float32)[yb])


def test_without_class_weight_batches_are_pairs():
    batch = next(iter(grain_dataset(X, Y, batch_size=8)))
    assert len(batch) == 2


@settings(max_examples=12, deadline=None)
@given(n=st.integers(8, 60), batch_size=st.integers(1, 9), seed=st.integers(0, 99),
       num_shards=st.integers(1, 3), epoch=st.integers(0, 3),
       sampler=st.sampled_from(["instance", "over", "under", "sqrt"]))
def test_property_same_batches_as_the_generator_on_every_shard(
        n, batch_size, seed, num_shards, epoch, sampler):
    y = np.arange(n) % 3 if n % 2 else (np.arange(n) % 5 == 0).astype(int)
    x = np.arange(n, dtype=np.float32)[:, None]
    for shard in range(num_shards):
        ds = grain_dataset(x, y, sampler=sampler, batch_size=batch_size, seed=seed,
                           num_shards=num_shards, shard_index=shard,
                           initial_epoch=epoch)
        gen = BalancedBatchGenerator(x, y, sampler=sampler, batch_size=batch_size,
                                     seed=seed, num_shards=num_shards,
                                     shard_index=shard)
        gen.set_epoch(epoch)
        assert_same_batches(epoch_batches(ds), gen)


def test_shards_of_a_step_are_disjoint_and_cover_the_global_batch():
    shards = [epoch_batches(grain_dataset(X, Y, sampler="over", batch_size=10,
                                          seed=1, num_shards=2, shard_index=s))
              for s in range(2)]
    whole = epoch_batches(grain_dataset(X, Y, sampler="over", batch_size=20,
                                        seed=1))
    assert len(shards[0]) == len(shards[1]) == len(whole)
    for step, (a, b) in enumerate(zip(*shards, strict=True)):
        merged = np.sort(np.concatenate([a[0][:, 0], b[0][:, 0]]))
        if step < len(whole) - 1:
            np.testing.assert_array_equal(merged, np.sort(whole[step][0][:, 0]))


def test_grain_shard_options_equal_num_shards_and_shard_index():
    options = grain.sharding.ShardOptions(shard_index=1, shard_count=3)
    a = epoch_batches(grain_dataset(X, Y, batch_size=8, shard_options=options))
    b = epoch_batches(grain_dataset(X, Y, batch_size=8, num_shards=3, shard_index=1))
    for batch_a, batch_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(batch_a[0], batch_b[0])


# Epochs and iterator state -----------------------------------------------------------


def test_partial_pass_does_not_count_and_set_epoch_jumps():
    ds = grain_dataset(X, Y, sampler="over", batch_size=16, seed=2)
    it = iter(ds)
    first = next(it)
    next(it)
    assert ds.epoch == 0
    np.testing.assert_array_equal(next(iter(ds))[0], first[0])
    ds.set_epoch(4)
    gen = BalancedBatchGenerator(X, Y, sampler="over", batch_size=16, seed=2)
    gen.set_epoch(4)
    assert_same_batches(epoch_batches(ds), gen)
    assert ds.epoch == 5 and ds.num_batches == len(gen)


def test_iterator_state_round_trip_resumes_mid_epoch():
    ds = grain_dataset(X, Y, sampler="over", batch_size=16, seed=2,
                       class_weight="balanced")
    it = iter(ds)
    for _ in range(3):
        next(it)
    state = it.get_state()
    assert state == {"epoch": 0, "next_index": 3}
    rest = list(it)
    resumed = iter(grain_dataset(X, Y, sampler="over", batch_size=16, seed=2,
                                 class_weight="balanced", initial_epoch=7))
    resumed.set_state(state)
    again = list(resumed)
    assert len(again) == len(rest)
    for a, b in zip(again, rest, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="argument `state\\['next_index'\\]`"):
        resumed.set_state({"epoch": 0, "next_index": 99})


def test_sync_callback_follows_fits_epoch():
    ds = grain_dataset(X, Y, batch_size=16)
    callback = ds.sync_callback()
    callback.on_epoch_begin(6)
    assert ds.epoch == 6


# fit ---------------------------------------------------------------------------------


def test_fit_trains_on_resampled_epochs_with_sample_weights():
    ds = grain_dataset(X / 100.0, Y, sampler="over", batch_size=64, seed=0,
                       class_weight="balanced")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"])
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))
    # 210 resampled samples / 64 = 4 batches: Keras' look at the first two
    # batches (to infer the shapes) is not a pass, each fit epoch is one.
    assert ds.num_batches == 4 and ds.epoch == 2


def test_fit_refuses_class_weight_for_grain_so_weights_ride_in_the_batches():
    ds = grain_dataset(X, Y, batch_size=32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight"):
        model.fit(ds, class_weight={0: 1.0, 1: 2.0, 2: 3.0}, epochs=1, verbose=0)


# Arguments and import ------------------------------------------------------------


def test_invalid_arguments():
    options = grain.sharding.ShardOptions(shard_index=0, shard_count=2)
    with pytest.raises(ValueError, match="argument `shard_options`"):
        grain_dataset(X, Y, shard_options=options, num_shards=2)
    with pytest.raises(ValueError, match="argument `shard_options`.*ShardOptions"):
        grain_dataset(X, Y, shard_options="jax")
    with pytest.raises(ValueError, match="argument `initial_epoch`"):
        grain_dataset(X, Y, initial_epoch=-1)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        grain_dataset(X, Y, batch_size=0)
    with pytest.raises(ValueError, match="argument `shard_index`"):
        grain_dataset(X, Y, num_shards=2, shard_index=2)
    with pytest.raises(ValueError, match="argument `sampler_kwargs`"):
        grain_dataset(X, Y, sampler_kwargs={"seed": 1})
    with pytest.raises(ValueError, match="argument `epoch`"):
        grain_dataset(X, Y).set_epoch(-1)


def test_grain_is_imported_only_when_called(monkeypatch):
    tree = ast.parse(pathlib.Path(grain_module.__file__).read_text())
    top = [alias.name for node in tree.body if isinstance(node, ast.Import)
           for alias in node.names]
    assert "grain" not in top
    grain_module._grain_classes.cache_clear()
    monkeypatch.setitem(sys.modules, "grain", None)
    try:
        with pytest.raises(ImportError, match="pip install grain"):
            grain_dataset(X, Y)
    finally:
        grain_module._grain_classes.cache_clear()
