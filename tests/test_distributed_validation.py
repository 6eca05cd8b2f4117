"""Bad input to the distributed helpers: clear errors at the call, not later.

Single process: the launcher's environment variables are monkeypatched.
"""

import json
import types

import keras
import numpy as np
import pytest

from kimbalance.distributed import (
    all_reduce_metrics,
    merge_metric_states,
    shard_arguments,
    shard_batch_size,
    sharded_generator,
    tf_distributed_dataset,
)
from kimbalance.metrics import BalancedAccuracy, MacroF1

LAUNCH_VARIABLES = ("TF_CONFIG", "RANK", "WORLD_SIZE", "LOCAL_RANK")


@pytest.fixture
def env(monkeypatch):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def data():
    y = np.array([0] * 12 + [1] * 4)
    return np.arange(16, dtype="float32").reshape(16, 1), y


# Launcher environment ---------------------------------------------------------


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "", "0", " ", "1e3", "0x2"])
def test_malformed_world_size(env, value):
    env.setenv("WORLD_SIZE", value)
    env.setenv("RANK", "0")
    with pytest.raises(ValueError, match=r"argument `WORLD_SIZE`. Expected an int "
                       r">= 1 in the environment variable WORLD_SIZE. Received: "
                       rf"WORLD_SIZE='{value}'"):
        shard_arguments()


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "", "4", "9"])
def test_malformed_or_out_of_world_rank(env, value):
    env.setenv("WORLD_SIZE", "4")
    env.setenv("RANK", value)
    with pytest.raises(ValueError, match=r"argument `RANK`. Expected an int in "
                       r"\[0, WORLD_SIZE=4\) in the environment variable RANK. "
                       rf"Received: RANK='{value}'"):
        shard_arguments("torch")


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "2"])
def test_malformed_local_rank(env, value):
    env.setenv("WORLD_SIZE", "2")
    env.setenv("RANK", "1")
    env.setenv("LOCAL_RANK", value)
    with pytest.raises(ValueError, match=r"argument `LOCAL_RANK`. Expected an int "
                       rf"in \[0, WORLD_SIZE=2\).*Received: LOCAL_RANK='{value}'"):
        shard_arguments()


def test_well_formed_launch_variables(env):
    env.setenv("WORLD_SIZE", " 4 ")
    env.setenv("RANK", "+2")
    env.setenv("LOCAL_RANK", "0")
    assert shard_arguments() == {"num_shards": 4, "shard_index": 2}
    # The variables set the shard of sharded_generator too.
    x, y = data()
    generator = sharded_generator(x, y, global_batch_size=8, sampler="over")
    assert (generator.num_shards, generator.shard_index) == (4, 2)


@pytest.mark.parametrize("given, missing", [("WORLD_SIZE", "RANK"),
                                            ("RANK", "WORLD_SIZE")])
def test_one_launch_variable_without_the_other(env, given, missing):
    env.setenv(given, "2")
    with pytest.raises(ValueError, match=rf"argument `{missing}`. Expected set in "
                       rf"the environment together with {given}.*Received: "
                       rf"{missing}=None"):
        shard_arguments()


def test_bad_rank_fails_sharded_generator_at_the_call(env):
    env.setenv("WORLD_SIZE", "2")
    env.setenv("RANK", "two")
    x, y = data()
    with pytest.raises(ValueError, match="argument `RANK`"):
        sharded_generator(x, y, global_batch_size=8)


@pytest.mark.parametrize("index, match", [
    (-1, r"a task index in \[0, 2\) \(the cluster has 2 worker task"),
    (2, r"a task index in \[0, 2\)"),
    (1.5, r"a JSON object with `cluster` and `task`"),
    (1.0, r"a JSON object with `cluster` and `task`"),
    (None, r"a JSON object with `cluster` and `task`"),
    ("one", r"a JSON object with `cluster` and `task`"),
])
def test_tf_config_task_index_outside_the_cluster(env, index, match):
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    text = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    env.setenv("TF_CONFIG", text)
    with pytest.raises(ValueError, match=r"argument `TF_CONFIG`. Expected " + match):
        shard_arguments()


def test_tf_config_index_as_a_decimal_string(env):
    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    env.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": "1"}}))
    assert shard_arguments() == {"num_shards": 3, "shard_index": 2}


@pytest.mark.parametrize("context", [
    types.SimpleNamespace(num_input_pipelines=2, input_pipeline_id=2),
    types.SimpleNamespace(num_input_pipelines=2, input_pipeline_id=-1),
    types.SimpleNamespace(num_input_pipelines=2.0, input_pipeline_id=0),
    "pipeline 0",
])
def test_bad_input_context(context):
    with pytest.raises(ValueError, match=r"argument `input_context`. Expected a "
                       r"tf.distribute.InputContext.*Received: input_context="):
        shard_arguments(input_context=context)


# Batch sizes and shards ---------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"global_batch_size": 30, "num_shards": 4}, "global_batch_size"),
    ({"global_batch_size": 0}, "global_batch_size"),
    ({"global_batch_size": 8.0}, "global_batch_size"),
    ({"global_batch_size": 8, "num_shards": 0}, "num_shards"),
    ({"global_batch_size": 8, "local_replicas": True}, "local_replicas"),
])
def test_shard_batch_size_errors(kwargs, name):
    value = kwargs[name]
    with pytest.raises(ValueError, match=rf"argument `{name}`.*Received: "
                       rf"{name}={value!r}"):
        shard_batch_size(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    ({"num_shards": 2, "shard_index": 2}, "shard_index"),
    ({"num_shards": 2, "shard_index": -1}, "shard_index"),
    ({"num_shards": 2, "shard_index": True}, "shard_index"),
    ({"num_shards": "2", "shard_index": 0}, "num_shards"),
    ({"num_shards": 3, "shard_index": 0}, "global_batch_size"),
])
def test_sharded_generator_errors(env, kwargs, name):
    x, y = data()
    value = 8 if name == "global_batch_size" else kwargs[name]
    with pytest.raises(ValueError, match=rf"argument `{name}`.*Received: "
                       rf"{name}={value!r}"):
        sharded_generator(x, y, global_batch_size=8, **kwargs)


def test_tf_distributed_dataset_needs_a_strategy():
    x, y = data()
    for strategy in (None, "mirrored"):
        with pytest.raises(ValueError, match="argument `strategy`. Expected a "
                           "tf.distribute.Strategy"):
            tf_distributed_dataset(strategy, x, y, global_batch_size=8)


# Metrics and metric states ------------------------------------------------------


def metric_with_state():
    metric = BalancedAccuracy(num_classes=2)
    metric.update_state([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    return metric


@pytest.mark.parametrize("metrics", [None, [], [None], "balanced_accuracy",
                                     {"m": 1}, [keras.metrics.Mean()], 3])
def test_all_reduce_metrics_rejects_non_metrics(metrics):
    with pytest.raises(ValueError, match=r"argument `metrics`. Expected kimbalance "
                       r"metrics .*Received: metrics="):
        all_reduce_metrics(metrics)


def test_all_reduce_metrics_names_the_bad_entry():
    with pytest.raises(ValueError, match=r"entry 1 is None"):
        all_reduce_metrics([metric_with_state(), None])


def test_all_reduce_metrics_rejects_duplicate_names():
    with pytest.raises(ValueError, match="argument `metrics`. Expected metrics with "
                       "distinct names"):
        all_reduce_metrics([MacroF1(2), MacroF1(2)])


def test_all_reduce_metrics_accepts_any_iterable():
    metric = metric_with_state()
    value = float(metric.result())
    assert all_reduce_metrics(iter([metric])) == {"balanced_accuracy": value}
    assert all_reduce_metrics((metric,), engine="none") == {"balanced_accuracy": value}


@pytest.mark.parametrize("metric", [None, [metric_with_state()], "m",
                                    keras.metrics.Mean()])
def test_merge_metric_states_rejects_non_metrics(metric):
    with pytest.raises(ValueError, match=r"argument `metric`. Expected one kimbalance "
                       r"metric.*Received: metric="):
        merge_metric_states(metric, [np.zeros((2, 2))])


@pytest.mark.parametrize("states, detail", [
    (None, r"Expected at least one confusion matrix of shape \(2, 2\)"),
    ([], r"Expected at least one confusion matrix of shape \(2, 2\)"),
    (np.zeros((2, 2)), r"Expected at least one confusion matrix"),
    ([None], r"entry 0 is None"),
    ([np.eye(2), None], r"entry 1 is None"),
    ([np.zeros((3, 3))], r"entry 0 is shape \(3, 3\)"),
    (["ab"], r"entry 0 is str"),
    ([np.full((2, 2), np.nan)], r"Expected finite, non-negative confusion matrices"),
    ([-np.eye(2)], r"Expected finite, non-negative confusion matrices"),
])
def test_merge_metric_states_rejects_bad_states(states, detail):
    metric = metric_with_state()
    before = keras.ops.convert_to_numpy(metric.confusion_matrix).copy()
    with pytest.raises(ValueError, match=r"argument `states`. .*" + detail):
        merge_metric_states(metric, states)
    # Nothing was assigned.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(metric.confusion_matrix), before)


def test_merge_metric_states_accepts_iterables_and_stacked_arrays():
    metric = metric_with_state()
    state = keras.ops.convert_to_numpy(metric.confusion_matrix)
    value = float(metric.result())
    assert merge_metric_states(metric, (s for s in [state])) == pytest.approx(value)
    assert merge_metric_states(metric, np.stack([state, state])) == pytest.approx(
        value)
    # The tensors a backend hands out work as states too.
    assert merge_metric_states(metric, [metric.confusion_matrix * 0.5,
                                        keras.ops.convert_to_tensor(state) * 0.5]
                               ) == pytest.approx(value)
