"""Property tests (Hypothesis) for the guarantees the README gives the samplers,
the shard layout and the generator, over random sizes, class counts, batch
sizes, shard counts and seeds."""

import math
import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.data import (
    BalancedBatchGenerator,
    ClassBalancedSampler,
    InstanceSampler,
    PowerSampler,
    RandomOverSampler,
    RandomUnderSampler,
    ShardedSampler,
)

seeds = st.integers(0, 2**32 - 1)
epochs = st.integers(0, 50)
# Per-class counts: 2-6 classes of 1-40 samples, sometimes an empty class.
class_counts = st.lists(st.integers(1, 40), min_size=2, max_size=6).flatmap(
    lambda counts: st.sampled_from([counts, [*counts, 0]]))


def labels_of(counts, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    return y[np.random.default_rng(seed).permutation(y.shape[0])]


@given(class_counts, seeds, epochs)
def test_over_sampling_shows_every_sample_with_the_stated_counts(counts, seed, epoch):
    y = labels_of(counts, seed)
    sampler = RandomOverSampler(y, seed=seed, num_classes=len(counts))
    indices = sampler.indices(epoch)
    assert np.all(np.bincount(indices, minlength=y.shape[0]) >= 1)
    present = np.asarray(counts) > 0
    expected = np.where(present, max(counts), 0)
    np.testing.assert_array_equal(np.bincount(y[indices], minlength=len(counts)),
                                  expected)
    np.testing.assert_array_equal(sampler.epoch_class_counts(epoch), expected)


@given(class_counts, seeds, st.integers(0, 3))
def test_under_sampling_uses_every_sample_within_its_cycle(counts, seed, cycle):
    y = labels_of(counts, seed)
    sampler = RandomUnderSampler(y, seed=seed, num_classes=len(counts))
    target = min(c for c in counts if c > 0)
    for cls, n in enumerate(counts):
        if n == 0:
            continue
        length = math.ceil(n / target)
        assert sampler.cycle_lengths[cls] == length
        seen = set()
        for epoch in range(cycle * length, (cycle + 1) * length):
            chosen = [i for i in sampler.indices(epoch).tolist() if y[i] == cls]
            assert len(chosen) == len(set(chosen)) == target
            seen.update(chosen)
        assert seen == set(np.flatnonzero(y == cls).tolist())


@given(class_counts, seeds, epochs, st.integers(1, 14))
def test_class_balanced_blocks_have_the_stated_composition(counts, seed, epoch,
                                                           batch_size):
    y = labels_of(counts, seed)
    sampler = ClassBalancedSampler(y, batch_size=batch_size, seed=seed,
                                   num_classes=len(counts))
    num_present = sum(c > 0 for c in counts)
    base, extra = divmod(batch_size, num_present)
    blocks = y[sampler.indices(epoch)].reshape(-1, batch_size)
    present = np.asarray(counts) > 0
    for block in blocks:
        block_counts = np.bincount(block, minlength=len(counts))
        assert np.all(block_counts[~present] == 0)
        assert set(block_counts[present].tolist()) <= {base, base + 1}
        assert int(np.sum(block_counts[present] == base + 1)) == extra


def build_sampler(kind, y, seed, block):
    if kind == "over":
        return RandomOverSampler(y, seed=seed)
    if kind == "under":
        return RandomUnderSampler(y, seed=seed)
    if kind == "power":
        return PowerSampler(y, power=0.3, num_samples=len(y) + 7, seed=seed)
    if kind == "class_balanced":
        return ClassBalancedSampler(y, batch_size=block, seed=seed)
    if kind == "partitioned":
        return RandomOverSampler.from_counts(np.bincount(y), seed=seed)
    return InstanceSampler(y, seed=seed)


@settings(max_examples=20)
@given(class_counts, seeds, epochs, st.integers(1, 6), st.integers(1, 9),
       st.sampled_from(["over", "under", "power", "class_balanced", "partitioned",
                        "instance"]),
       st.booleans())
def test_shards_are_disjoint_equal_and_together_the_unsharded_epoch(
        counts, seed, epoch, batch_size, num_shards, kind, drop_remainder):
    y = labels_of(counts, seed)
    block = batch_size if kind == "class_balanced" else 1
    sampler = build_sampler(kind, y, seed, block)
    size, global_batch = len(sampler), batch_size * num_shards
    if drop_remainder and size < global_batch:
        return  # no full batch: a documented error
    shards = [ShardedSampler(sampler, batch_size=batch_size, num_shards=num_shards,
                             shard_index=s, drop_remainder=drop_remainder)
              for s in range(num_shards)]
    lengths = {len(s) for s in shards}
    assert len(lengths) == 1 and len({s.num_batches for s in shards}) == 1
    epoch_indices = sampler.indices(epoch)
    full_steps = size // global_batch
    for step in range(shards[0].num_batches):
        parts = [s.batch_indices(step, epoch) for s in shards]
        assert len({p.shape[0] for p in parts}) == 1
        if step < full_steps:  # the global batch of the unsharded epoch
            expected = epoch_indices[step * global_batch:(step + 1) * global_batch]
            np.testing.assert_array_equal(np.sort(np.concatenate(parts)),
                                          np.sort(expected))
            if kind != "class_balanced":  # stratified shards
                classes = sampler.classes_of  # also for class-partitioned storage
                global_counts = np.bincount(classes(expected), minlength=len(counts))
                for part in parts:
                    part_counts = np.bincount(classes(part), minlength=len(counts))
                    assert np.all(part_counts >= global_counts // num_shards)
                    assert np.all(part_counts <= -(-global_counts // num_shards))
    for shard in shards:
        shard.set_epoch(epoch)
    everything = np.concatenate([np.fromiter(iter(s), np.int64) for s in shards])
    if drop_remainder:
        expected = epoch_indices[:full_steps * global_batch]
    else:
        padding = len(everything) - size  # at most num_shards * block - 1 repeats
        assert 0 <= padding < num_shards * block
        expected = np.concatenate([epoch_indices,
                                   np.resize(epoch_indices, padding)])
    np.testing.assert_array_equal(np.sort(everything), np.sort(expected))


@settings(max_examples=15)
@given(class_counts, seeds, epochs, st.integers(1, 8), st.integers(1, 4),
       st.sampled_from(["over", "under", "class_balanced", "partitioned"]))
def test_same_seed_and_epoch_give_the_same_batches(counts, seed, epoch, batch_size,
                                                  num_shards, kind):
    y = labels_of(counts, seed)
    x = np.arange(y.shape[0], dtype=np.float32)[:, None]
    block = batch_size if kind == "class_balanced" else 1

    def make(shard_index):
        sampler = build_sampler(kind, y, seed, block)
        labels = None if kind == "partitioned" else y
        return BalancedBatchGenerator(x, labels, sampler=sampler,
                                      batch_size=batch_size, num_shards=num_shards,
                                      shard_index=shard_index)

    for shard_index in range(num_shards):
        first, fresh = make(shard_index), make(shard_index)
        clone = pickle.loads(pickle.dumps(first))
        shard = ShardedSampler(first.sampler, batch_size=batch_size,
                               num_shards=num_shards, shard_index=shard_index)
        for gen in (first, fresh, clone):
            gen.set_epoch(epoch)
        shard.set_epoch(epoch)
        batches = [first[i] for i in range(len(first))]
        for other in (fresh, clone):
            for i, (xb, yb) in enumerate(batches):
                other_x, other_y = other[i]
                np.testing.assert_array_equal(other_x, xb)
                np.testing.assert_array_equal(other_y, yb)
        np.testing.assert_array_equal(
            list(shard), np.concatenate([xb[:, 0] for xb, _ in batches]).astype(int))
