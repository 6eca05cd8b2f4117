"""Sharding arithmetic, engine shard arguments, the DistributedSampler
replacement, metric-state merging, and data larger than memory."""

import json
import types

import keras
import numpy as np
import pytest

from kimbalance.data import (
    BalancedBatchGenerator,
    ClassBalancedSampler,
    RandomOverSampler,
    RandomUnderSampler,
)
from kimbalance.distributed import (
    ShardedSampler,
    all_reduce_metrics,
    local_replica_count,
    merge_metric_states,
    shard_arguments,
    shard_batch_size,
    sharded_generator,
)
from kimbalance.metrics import BalancedAccuracy, GeometricMean, MacroF1

NUMPY_SUBPROCESS = pytest.mark.torch_only(
    reason="backend-independent: runs in a NumPy-backend subprocess, so once "
           "(in the torch suite) is enough")


def _labels(counts=(23, 9, 4), seed=0):
    y = np.repeat(np.arange(len(counts)), counts)
    return y[np.random.default_rng(seed).permutation(y.shape[0])]


class _TwoDeviceStrategy:
    """Looks like a `tf.distribute` strategy with two local replicas."""

    num_replicas_in_sync = 2
    extended = types.SimpleNamespace(worker_devices=("/cpu:0", "/cpu:1"))


# Shard arguments from the engine -------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("TF_CONFIG", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_single_process_is_one_shard(clean_env):
    assert shard_arguments() == {"num_shards": 1, "shard_index": 0}
    assert shard_arguments("none") == {"num_shards": 1, "shard_index": 0}
    assert local_replica_count() == 1


@pytest.mark.parametrize("task, index", [({"type": "chief", "index": 0}, 0),
                                         ({"type": "worker", "index": 0}, 1),
                                         ({"type": "worker", "index": 1}, 2)])
def test_tf_config_numbers_workers_chief_first(clean_env, task, index):
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"], "ps": ["h3:1"]}
    clean_env.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert shard_arguments() == {"num_shards": 3, "shard_index": index}


def test_tf_config_of_an_evaluator_is_an_error(clean_env):
    clean_env.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h:1"]},
                                              "task": {"type": "evaluator",
                                                       "index": 0}}))
    with pytest.raises(ValueError, match="Invalid value for argument `TF_CONFIG`"):
        shard_arguments("tensorflow")


def test_tf_config_not_json_is_an_error(clean_env):
    clean_env.setenv("TF_CONFIG", "{cluster")
    with pytest.raises(ValueError, match="`TF_CONFIG`. Expected a JSON object"):
        shard_arguments()


def test_torchrun_variables_before_the_group_is_joined(clean_env):
    clean_env.setenv("RANK", "3")
    clean_env.setenv("WORLD_SIZE", "4")
    assert shard_arguments() == {"num_shards": 4, "shard_index": 3}


def test_tf_input_context_gives_the_pipeline():
    context = types.SimpleNamespace(num_input_pipelines=4, input_pipeline_id=2)
    assert shard_arguments(input_context=context) == {"num_shards": 4,
                                                      "shard_index": 2}


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match="`engine`. Expected one of .* "
                                         "Received: engine='mpi'"):
        shard_arguments("mpi")


def test_unknown_distribution_is_an_error():
    with pytest.raises(ValueError, match="Invalid value for argument `distribution`"):
        local_replica_count(object())


# Global, per-shard and per-replica batch sizes -----------------------------


def test_shard_batch_size_splits_over_processes_and_devices():
    assert shard_batch_size(256, num_shards=4, local_replicas=8) == 64
    assert shard_batch_size(6) == 6
    assert local_replica_count(_TwoDeviceStrategy()) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"global_batch_size": 12, "num_shards": 8}, "Received: global_batch_size=12"),
    ({"global_batch_size": 0}, "Received: global_batch_size=0"),
    ({"global_batch_size": 8, "num_shards": 0}, "Received: num_shards=0"),
    ({"global_batch_size": 8, "local_replicas": 2.0},
     "Received: local_replicas=2.0"),
])
def test_shard_batch_size_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        shard_batch_size(**kwargs)


def test_sharded_generator_builds_the_shards_of_the_global_epoch():
    y = _labels()
    x = np.arange(y.shape[0], dtype=np.float32)[:, None]
    full = BalancedBatchGenerator(x, y, sampler="over", batch_size=12, seed=4)
    shards = [sharded_generator(x, y, global_batch_size=12, num_shards=3,
                                shard_index=i, sampler="over", seed=4)
              for i in range(3)]
    assert [g.batch_size for g in shards] == [4, 4, 4]
    for index in range(len(full)):
        rebuilt = np.concatenate([g[index][0] for g in shards])
        np.testing.assert_array_equal(np.sort(rebuilt[:, 0]),
                                      np.sort(full[index][0][:, 0]))


def test_sharded_generator_refuses_a_batch_size():
    with pytest.raises(ValueError, match="Invalid value for argument `batch_size`"):
        sharded_generator(np.zeros((8, 1)), np.arange(8) % 2, global_batch_size=4,
                          batch_size=4)


def test_last_batch_must_split_over_local_devices():
    y = np.arange(9) % 3  # 9 samples: batches of 4, 4 and 1
    x = np.zeros((9, 1), np.float32)
    with pytest.raises(ValueError, match="`drop_remainder`. Expected True for this "
                                         "epoch: its last batch holds 1 samples"):
        sharded_generator(x, y, global_batch_size=4, distribution=_TwoDeviceStrategy(),
                          num_shards=1, shard_index=0, sampler="instance")
    generator = sharded_generator(x, y, global_batch_size=4,
                                  distribution=_TwoDeviceStrategy(), num_shards=1,
                                  shard_index=0, sampler="instance",
                                  drop_remainder=True)
    assert len(generator) == 2


# The DistributedSampler replacement ----------------------------------------


@pytest.mark.parametrize("make_sampler, batch_size", [
    (lambda y: RandomOverSampler(y, seed=2), 5),
    (lambda y: RandomUnderSampler(y, seed=2), 2),
    (lambda y: ClassBalancedSampler(y, batch_size=6, seed=2), 6),
])
def test_sharded_sampler_gives_the_generators_shard_batches(make_sampler, batch_size):
    y = _labels()
    x = np.zeros((y.shape[0], 1), np.float32)
    for num_shards in (1, 3):  # 3 shards leave a padded tail
        for shard_index in range(num_shards):
            sampler = make_sampler(y)
            shard = ShardedSampler(sampler, batch_size=batch_size,
                                   num_shards=num_shards, shard_index=shard_index)
            generator = BalancedBatchGenerator(x, y, sampler=make_sampler(y),
                                               batch_size=batch_size,
                                               num_shards=num_shards,
                                               shard_index=shard_index)
            assert shard.num_batches == len(generator)
            for epoch in (0, 1):
                shard.set_epoch(epoch)
                expected = np.concatenate([generator.batch_indices(i, epoch)
                                           for i in range(len(generator))])
                np.testing.assert_array_equal(list(shard), expected)
                assert len(shard) == expected.shape[0]


def test_sharded_sampler_in_a_torch_data_loader():
    torch = pytest.importorskip(
        "torch", reason="torch is an optional extra; this test needs it")
    y = _labels()
    dataset = torch.utils.data.TensorDataset(torch.arange(y.shape[0]))
    loaders = [torch.utils.data.DataLoader(
        dataset, batch_size=4, sampler=ShardedSampler(RandomOverSampler(y, seed=1),
                                                      batch_size=4, num_shards=2,
                                                      shard_index=i))
        for i in range(2)]
    for loader in loaders:
        loader.sampler.set_epoch(3)
    shards = [torch.cat([b for (b,) in loader]).numpy() for loader in loaders]
    # 69 samples: 8 steps of 2 x 4, then a tail of 5 padded to 2 x 3 with the
    # epoch's first sample, as DistributedSampler pads.
    assert len(shards[0]) == len(shards[1]) == 35
    epoch = RandomOverSampler(y, seed=1).indices(3)
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)),
                                  np.sort(np.concatenate([epoch, epoch[:1]])))


@pytest.mark.parametrize("kwargs, message", [
    ({"sampler": [0, 1, 2], "batch_size": 2}, "`sampler`. Expected a kimbalance"),
    ({"batch_size": 2, "num_shards": 2, "shard_index": 2},
     "Received: shard_index=2"),
    ({"batch_size": 2, "shard_index": True}, "Received: shard_index=True"),
    ({"batch_size": 0}, "Received: batch_size=0"),
    ({"batch_size": 100, "drop_remainder": True}, "at least one full batch"),
])
def test_sharded_sampler_errors(kwargs, message):
    kwargs.setdefault("sampler", RandomOverSampler(_labels(), seed=0))
    with pytest.raises(ValueError, match=message):
        ShardedSampler(**kwargs)


def test_sharded_sampler_batch_must_hold_whole_blocks():
    sampler = ClassBalancedSampler(_labels(), batch_size=6, seed=0)
    with pytest.raises(ValueError, match="multiple of the sampler's block size 6"):
        ShardedSampler(sampler, batch_size=4)


# Index arithmetic beyond 2**31 ---------------------------------------------


class _VirtualRows:
    """3e9 class-partitioned samples computed on demand: row i encodes i."""

    def __init__(self, counts):
        self.counts = np.asarray(counts, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, index):
        label = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return np.array([index // 10**6, index % 10**6, label], np.int64)


def test_three_billion_virtual_samples_shard_from_counts_alone():
    counts = [2_000_000_000, 1_000_000_000, 6]
    source = _VirtualRows(counts)
    assert len(source) > 2**31
    sampler = RandomUnderSampler.from_counts(counts, seed=5)
    shards = [ShardedSampler(sampler, batch_size=3, num_shards=2, shard_index=i)
              for i in range(2)]
    for epoch in (0, 1):
        for shard in shards:
            shard.set_epoch(epoch)
        parts = [np.fromiter(shard, np.int64) for shard in shards]
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)),
                                      np.sort(sampler.indices(epoch)))
        for part in parts:
            rows = np.stack([source[int(i)] for i in part])
            np.testing.assert_array_equal(rows[:, 0] * 10**6 + rows[:, 1], part)
            assert rows.shape[0] == 9  # half of the 18-sample epoch
        labels = np.concatenate([[source[int(i)][2] for i in p] for p in parts])
        np.testing.assert_array_equal(np.bincount(labels), [6, 6, 6])
        assert np.concatenate(parts).max() >= 2_000_000_000


def test_class_balanced_blocks_beyond_int32_offsets():
    counts = [2_500_000_000, 600_000_000, 3]
    offsets = np.cumsum([0, *counts])
    sampler = ClassBalancedSampler.from_counts(counts, batch_size=6, num_samples=60,
                                               seed=1)
    shards = [ShardedSampler(sampler, batch_size=6, num_shards=2, shard_index=i)
              for i in range(2)]
    for shard in shards:
        for index in range(shard.num_batches):
            batch = shard.batch_indices(index)
            assert batch.dtype == np.int64
            labels = np.searchsorted(offsets, batch, side="right") - 1
            np.testing.assert_array_equal(np.bincount(labels, minlength=3), [2, 2, 2])
    tail = np.concatenate([shard.batch_indices(i) for shard in shards
                           for i in range(shard.num_batches)])
    assert tail[tail >= offsets[2]].min() >= 3_100_000_000


# Exact global metrics from summed confusion matrices ----------------------


def test_merged_states_equal_the_metric_on_all_samples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=90)
    scores = rng.normal(size=(90, 4)).astype(np.float32)
    for make in (BalancedAccuracy, GeometricMean, MacroF1):
        whole = make(num_classes=4)
        whole.update_state(y, scores)
        replicas = [make(num_classes=4) for _ in range(3)]
        for replica, part in zip(replicas, np.array_split(np.arange(90), 3),
                                 strict=True):
            replica.update_state(y[part], scores[part])
        averaged = np.mean([float(r.result()) for r in replicas])
        states = [keras.ops.convert_to_numpy(r.confusion_matrix) for r in replicas]
        merged = merge_metric_states(replicas[0], states)
        np.testing.assert_allclose(merged, float(whole.result()), rtol=1e-6)
        # Averaging the replicas' values instead would be off.
        assert abs(averaged - merged) > 1e-3, make


def test_all_reduce_in_one_process_keeps_the_values():
    metric = MacroF1(num_classes=3)
    metric.update_state([0, 1, 2, 2], np.eye(3, dtype=np.float32)[[0, 1, 1, 2]])
    before = float(metric.result())
    assert all_reduce_metrics([metric]) == {"macro_f1": before}
    assert all_reduce_metrics(metric, engine="none") == {"macro_f1": before}


def test_merge_errors():
    metric = BalancedAccuracy(num_classes=2)
    with pytest.raises(ValueError, match="`states`. Expected confusion matrices of "
                                         r"shape \(2, 2\)"):
        merge_metric_states(metric, [np.zeros((3, 3))])
    with pytest.raises(ValueError, match="`states`. Expected at least one"):
        merge_metric_states(metric, [])
    with pytest.raises(ValueError, match="`metrics`. Expected kimbalance metrics"):
        all_reduce_metrics([keras.metrics.Mean()])


# Data larger than memory ---------------------------------------------------


def _check_epoch(shards, y, sampler):
    epoch = sampler.indices(0)
    for i in range(0, len(shards[0]), 32):  # step by step, as sets
        step = np.concatenate([s[i:i + 32] for s in shards])
        np.testing.assert_array_equal(np.sort(step), np.sort(epoch[2 * i:2 * i + 64]))
    for shard in shards:
        counts = np.bincount(y[shard], minlength=3)
        assert counts.max() / counts.min() <= 1.2, counts  # data: 1536 / 128


@NUMPY_SUBPROCESS
@pytest.mark.slow
def test_memmap_and_row_file_larger_than_the_address_space_limit(launch, tmp_path):
    rows, width = 2048, 32768  # 256 MiB of float32, rows of 128 KiB
    data = tmp_path / "x.f32"
    with open(data, "wb") as f:  # sparse: only each row's first cell is written
        f.truncate(rows * width * 4)
        for i in range(rows):
            f.seek(i * width * 4)
            f.write(np.float32(i).tobytes())
    y = _labels((1536, 384, 128), seed=3).astype(np.int32)
    np.save(tmp_path / "y.npy", y)
    (result,) = launch("dist_worker_numpy.py", "numpy", 1, timeout=180,
                       args=lambda rank, ports: [
                           "--mode", "memmap", "--data", data, "--labels",
                           tmp_path / "y.npy", "--rows", rows, "--width", width])
    assert result["frameworks_loaded"] in ([], ["jax"])  # keras imports jax's API
    assert result["copy_refused"] and result["map_refused"]
    sampler = RandomOverSampler(y, seed=1)
    _check_epoch(result["memmap_shards"], y, sampler)
    _check_epoch(result["rowfile_shards"], y, sampler)


@NUMPY_SUBPROCESS
@pytest.mark.slow
def test_workers_and_processes_give_the_same_batches(launch):
    (result,) = launch("dist_worker_numpy.py", "numpy", 1, timeout=180,
                       args=lambda rank, ports: ["--mode", "workers"])
    single = result["single"]
    assert single[0]["direct"] != single[1]["direct"]  # resampled each epoch
    for name in ("single", "threads", "processes"):
        for epoch in range(2):
            assert result[name][epoch]["predicted"] == single[epoch]["direct"], name


@pytest.mark.tensorflow_only(reason="tensorflow_datasets imports TensorFlow")
def test_mocked_tfds_data_source_shards():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=60):
        source = tfds.data_source("mnist", split="train")
        # tfds 4.9.10's mock sets __getitems__ as an unbound partial (a
        # TypeError when called); route it to the mocked __getitem__ so the
        # real ArrayRecordDataSource.__getitems__ still runs.
        inner = source.data_source
        inner.__getitems__ = lambda keys: [inner[key] for key in keys]
        y = np.array([source[i]["label"] for i in range(len(source))])
        options = {"x_key": "image", "sampler": "over", "seed": 2,
                   "drop_remainder": True}  # random labels: an uneven tail
        shards = [BalancedBatchGenerator(source, y, batch_size=6, num_shards=2,
                                         shard_index=i, **options) for i in range(2)]
        full = BalancedBatchGenerator(source, y, batch_size=12, **options)
        assert len(full) == len(shards[0]) > 0
        for index in range(len(full)):
            xs, ys = zip(*(shard[index] for shard in shards), strict=True)
            x_full, y_full = full[index]
            assert xs[0].shape == (6, 28, 28, 1) and xs[0].dtype == np.uint8
            # The shards' batches together are the global batch, as a set.
            order = np.argsort(np.concatenate([shard.batch_indices(index)
                                               for shard in shards]), kind="stable")
            full_order = np.argsort(full.batch_indices(index), kind="stable")
            np.testing.assert_array_equal(np.concatenate(xs)[order], x_full[full_order])
            np.testing.assert_array_equal(np.concatenate(ys)[order], y_full[full_order])
        counts = np.bincount(y[full.sampler.indices(0)], minlength=10)
        present = np.bincount(y, minlength=10) > 0
        assert np.all(counts[present] == counts.max())  # every label topped up
