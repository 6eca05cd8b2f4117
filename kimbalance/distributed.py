"""Data-parallel training with kimbalance on the engines Keras already runs on.

kimbalance brings no engine of its own: JAX (`keras.distribution`), TensorFlow
(`tf.distribute`) and PyTorch (`torch.distributed` / DDP) do the training.
What they need from an imbalance toolkit is the data side and the metric side,
and this module supplies exactly that:

- *which shard am I*: `shard_arguments()` reads the engine (JAX process index,
  torch rank, `TF_CONFIG` task or a `tf.distribute.InputContext`) and returns
  the `num_shards` / `shard_index` arguments of `BalancedBatchGenerator`;
- *how big is my batch*: `shard_batch_size()` splits a global batch over
  processes and local devices, with a clear error when it does not divide;
  `sharded_generator()` builds the generator of this process from the global
  batch size and the active distribution;
- *a `DistributedSampler` replacement*: `ShardedSampler` hands a torch
  `DataLoader` this rank's indices of a rebalanced epoch (the same batches as
  the sharded generator), and works from per-class counts alone;
- *TensorFlow multi-worker input*: `tf_distributed_dataset()` wraps one
  sharded generator per input pipeline for
  `strategy.distribute_datasets_from_function`;
- *exact global metrics*: `all_reduce_metrics()` sums the confusion matrices
  of `kimbalance.metrics` across processes; `merge_metric_states()` sums
  states gathered by any other route.

**Batch sizes.** `BalancedBatchGenerator(batch_size=...)` is the batch of one
shard (one process). The global batch is `batch_size * num_shards`; each
process splits its shard batch over its local devices. Every shard uses the
same epoch order, so the global batch of step i is exactly batch i of the
unsharded generator with the global batch size (as a set of samples; each
shard's part is stratified by class): data-parallel training on the
sharded generators follows the single-process run on the global batches.
With `model.fit`, pass `shuffle=False`: the generator already shuffles, the
same way on every process, while `fit`'s batch-order shuffle would differ
between processes. Keras 3.15's `fit` calls `on_epoch_end` once before its
first epoch, so it trains on the generator's epochs 1, 2, ...; custom loops
choose the epoch with `set_epoch`.

**Metrics.** `kimbalance.metrics` keep a `confusion_matrix` variable created
with `aggregation="sum"`, and every metric value is a function of that matrix.
Summing the matrices of all replicas therefore gives the exact global metric
(not an average of per-replica values). Under `keras.distribution` (JAX) the
metric is updated on global arrays and is already global; under
`tf.distribute` the variable is a sum-on-read variable and is already global
when read; with torch DDP (or JAX / TensorFlow custom loops that update
metrics on local data only) call `all_reduce_metrics`.

This module imports no framework at import time; each helper imports the one
it is asked to use.
"""

from __future__ import annotations

import json
import numbers
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np

from kimbalance._validation import check_bool, check_choice, check_int, invalid
from kimbalance.data.generator import BalancedBatchGenerator
from kimbalance.data.sharding import ShardedSampler

__all__ = [
    "ShardedSampler",
    "all_reduce_metrics",
    "local_replica_count",
    "merge_metric_states",
    "shard_arguments",
    "shard_batch_size",
    "sharded_generator",
    "tf_distributed_dataset",
]

ENGINES = ("auto", "none", "jax", "keras", "tensorflow", "torch")


# Which shard am I ----------------------------------------------------------


def _torch_group():
    """torch.distributed when this process joined a process group, else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist
    return None


def _keras_distribution():
    """The active `keras.distribution` distribution (JAX backend), else None."""
    if keras.backend.backend() != "jax":
        return None
    return keras.distribution.distribution()


def _jax_initialized():
    jax = sys.modules.get("jax")
    return jax is not None and jax.distributed.is_initialized()


def _tf_strategy():
    tf = sys.modules.get("tensorflow")
    if tf is None or not tf.distribute.has_strategy():
        return None
    return tf.distribute.get_strategy()


def _resolve_engine(engine):
    check_choice("engine", engine, ENGINES)
    if engine != "auto":
        return engine
    if _torch_group() is not None:
        return "torch"
    if _keras_distribution() is not None:
        return "keras"
    if _jax_initialized():
        return "jax"
    if _tf_config_cluster() is not None:
        return "tensorflow"
    if any(name in os.environ for name in _TORCHRUN_VARIABLES):
        return "torch"  # launched by torchrun, process group not joined yet
    return "none"


# Set by torchrun (and torch.distributed.launch) for every process.
_TORCHRUN_VARIABLES = ("WORLD_SIZE", "RANK")


def _env_int(name, *, low, high=None, high_name=None):
    """The environment variable `name` as a decimal int in [low, high)."""
    text = os.environ[name]
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    if high is None:
        expected = f"an int >= {low}"
    else:
        expected = f"an int in [{low}, {high_name}={high})"
    expected += f" in the environment variable {name}"
    if not (digits.isascii() and digits.isdigit()):
        raise invalid(name, expected, text)
    value = int(stripped)
    if value < low or (high is not None and value >= high):
        raise invalid(name, expected, text)
    return value


def _torchrun_shard():
    """(WORLD_SIZE, RANK) of a torchrun launch, validated; (1, 0) when unset.

    Both variables must be set together (torchrun sets both) and be decimal
    ints with 0 <= RANK < WORLD_SIZE; `LOCAL_RANK`, when set, must be an int
    in [0, WORLD_SIZE) too.
    """
    present = [name for name in _TORCHRUN_VARIABLES if name in os.environ]
    if not present:
        return 1, 0
    if len(present) == 1:
        (given,) = present
        (missing,) = set(_TORCHRUN_VARIABLES) - {given}
        raise invalid(missing, f"set in the environment together with {given} "
                      f"(torchrun sets both; {given}={os.environ[given]!r})", None)
    world_size = _env_int("WORLD_SIZE", low=1)
    rank = _env_int("RANK", low=0, high=world_size, high_name="WORLD_SIZE")
    if "LOCAL_RANK" in os.environ:
        _env_int("LOCAL_RANK", low=0, high=world_size, high_name="WORLD_SIZE")
    return world_size, rank


def _tf_config_cluster():
    """(workers, task id) from `TF_CONFIG` (chief first, as MultiWorker does)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster = config.get("cluster", {})
        task = config.get("task", {})
        chiefs = len(cluster.get("chief", []))
        workers = chiefs + len(cluster.get("worker", []))
        task_type, task_index = task["type"], task["index"]
        if isinstance(task_index, str) and task_index.strip().isdigit():
            task_index = int(task_index)
        if not _is_int(task_index):
            raise TypeError(task_index)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise invalid("TF_CONFIG", "a JSON object with `cluster` and `task` "
                      "({'type': ..., 'index': ...})", text) from None
    if task_type in ("chief", "worker"):
        members = len(cluster.get(task_type, []))
        if not 0 <= task_index < members:
            raise invalid("TF_CONFIG", f"a task index in [0, {members}) (the "
                          f"cluster has {members} {task_type} task(s))", text)
        return workers, task_index if task_type == "chief" else chiefs + task_index
    raise invalid("TF_CONFIG", "a chief or worker task (evaluators and parameter "
                  "servers read no training shard)", text)


def shard_arguments(engine: str = "auto", *,
                    input_context: Any = None) -> dict[str, int]:
    """The `num_shards` / `shard_index` of this process, read from the engine.

    Pass the result to `BalancedBatchGenerator(..., **shard_arguments())` so
    that each process reads its own disjoint, balanced shard of one global
    epoch. The shard is:

    - `input_context` given (TensorFlow's `distribute_datasets_from_function`):
      `input_pipeline_id` of `num_input_pipelines`;
    - `"torch"`: `torch.distributed` rank of world size, or `RANK` /
      `WORLD_SIZE` of a `torchrun` launch before the group is joined (both
      decimal ints, `0 <= RANK < WORLD_SIZE`, set together; `LOCAL_RANK`,
      when set, in `[0, WORLD_SIZE)`; neither set: a single shard);
    - `"keras"`: the active `keras.distribution` distribution's
      `data_shard_id` of its data shards;
    - `"jax"`: `jax.process_index()` of `jax.process_count()`;
    - `"tensorflow"`: the task of `TF_CONFIG`, numbered as
      `MultiWorkerMirroredStrategy` numbers its workers (chief first);
    - `"none"`: a single shard.

    `"auto"` picks the first that applies in the order torch process group,
    keras distribution, `jax.distributed`, `TF_CONFIG`, `torchrun`
    variables (`WORLD_SIZE` or `RANK` set), none. It never starts a
    framework: it only looks at the ones this process already imported.

    Args:
        engine: one of `"auto"`, `"none"`, `"jax"`, `"keras"`,
            `"tensorflow"`, `"torch"`.
        input_context: a `tf.distribute.InputContext`; overrides `engine`.

    Returns:
        A dict `{"num_shards": int, "shard_index": int}`.

    Raises:
        ValueError: for an unknown engine, an unusable `TF_CONFIG` or
            `input_context`, or malformed `WORLD_SIZE` / `RANK` /
            `LOCAL_RANK` variables (not a decimal int, negative, a rank
            outside the world, one of `WORLD_SIZE` / `RANK` without the
            other), named in the message with the value found.

    Examples:

    >>> shard_arguments()  # a single process
    {'num_shards': 1, 'shard_index': 0}
    """
    if input_context is not None:
        return _input_context_shard(input_context)
    engine = _resolve_engine(engine)
    if engine == "torch":
        dist = _torch_group()
        if dist is not None:
            num, index = dist.get_world_size(), dist.get_rank()
        else:
            num, index = _torchrun_shard()
    elif engine == "keras":
        distribution = _keras_distribution()
        if distribution is None:
            num, index = 1, 0
        else:
            num = min(distribution.num_processes, distribution.num_model_replicas)
            index = distribution.data_shard_id
    elif engine == "jax":
        import jax

        num, index = jax.process_count(), jax.process_index()
    elif engine == "tensorflow":
        cluster = _tf_config_cluster()
        num, index = cluster if cluster is not None else (1, 0)
    else:
        num, index = 1, 0
    return {"num_shards": int(num), "shard_index": int(index)}


def _input_context_shard(input_context: Any) -> dict[str, int]:
    num: Any = getattr(input_context, "num_input_pipelines", None)
    index: Any = getattr(input_context, "input_pipeline_id", None)
    if not (_is_int(num) and _is_int(index) and 0 <= index < num):
        raise invalid("input_context", "a tf.distribute.InputContext (int "
                      "input_pipeline_id in [0, num_input_pipelines))", input_context)
    return {"num_shards": int(num), "shard_index": int(index)}


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def local_replica_count(distribution: Any = None) -> int:
    """The number of data-parallel replicas (devices) this process feeds.

    Args:
        distribution: a `keras.distribution.Distribution` (JAX backend), a
            `tf.distribute.Strategy`, or None for the active one (the current
            keras distribution, or the TensorFlow strategy whose scope is
            open); torch DDP runs one replica per process.

    Returns:
        An int >= 1.

    Examples:

    >>> local_replica_count()  # no distribution active
    1
    """
    if distribution is None:
        distribution = _keras_distribution() or _tf_strategy()
    if distribution is None:
        return 1
    if hasattr(distribution, "device_mesh"):  # keras.distribution
        mesh = distribution.device_mesh
        axis = mesh.axis_names.index(distribution.batch_dim_name)
        return max(1, mesh.shape[axis] // max(1, distribution.num_processes))
    if hasattr(distribution, "num_replicas_in_sync"):  # tf.distribute
        return max(1, len(distribution.extended.worker_devices))
    raise invalid("distribution", "a keras.distribution.Distribution, a "
                  "tf.distribute.Strategy or None", distribution)


# How big is my batch -------------------------------------------------------


def shard_batch_size(global_batch_size: int, *, num_shards: int = 1,
                     local_replicas: int = 1) -> int:
    """The per-shard (per-process) batch size for a global batch size.

    The global batch is split into `num_shards` equal shard batches, and each
    shard batch into `local_replicas` equal device batches, so the global
    batch must be a multiple of `num_shards * local_replicas`. The
    per-replica batch is the result divided by `local_replicas`.

    When scaling from 1 to R replicas at a fixed per-replica batch, the
    global batch grows R times: scale the learning rate with it (linearly
    for SGD, Goyal et al. 2017) or keep the global batch fixed.

    Args:
        global_batch_size: int >= 1, samples per optimizer step over all
            replicas.
        num_shards: int >= 1, the number of processes reading data.
        local_replicas: int >= 1, the devices each process feeds.

    Returns:
        `global_batch_size // num_shards`.

    Raises:
        ValueError: when the global batch does not split evenly.

    Examples:

    >>> shard_batch_size(64, num_shards=2, local_replicas=4)
    32
    >>> shard_batch_size(30, num_shards=4)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for argument `global_batch_size`. Expected a \
multiple of num_shards * local_replicas = 4 * 1 = 4...

    References:
        Goyal, P. et al. "Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour." arXiv:1706.02677, 2017.
    """
    global_batch_size = check_int("global_batch_size", global_batch_size, low=1)
    num_shards = check_int("num_shards", num_shards, low=1)
    local_replicas = check_int("local_replicas", local_replicas, low=1)
    unit = num_shards * local_replicas
    if global_batch_size % unit:
        raise invalid(
            "global_batch_size",
            f"a multiple of num_shards * local_replicas = {num_shards} * "
            f"{local_replicas} = {unit}, so that every replica gets an equal "
            "slice",
            global_batch_size,
        )
    return global_batch_size // num_shards


def sharded_generator(x: Any, y: Any, *, global_batch_size: int,
                      distribution: Any = None, engine: str = "auto",
                      num_shards: int | None = None, shard_index: int | None = None,
                      **generator_kwargs: Any) -> BalancedBatchGenerator:
    """This process's `BalancedBatchGenerator` for a data-parallel run.

    Reads the shard from the engine (`shard_arguments`), the number of local
    devices from the distribution (`local_replica_count`), checks that the
    global batch splits evenly (`shard_batch_size`) and builds the generator
    with the per-shard batch size. Every batch of the epoch, the last one
    included, then divides by the local device count, which
    `keras.distribution.DataParallel` and `tf.distribute` need; a last
    batch that would not divide is a clear error (pass
    `drop_remainder=True`, or a global batch that divides the epoch). Use
    `model.fit(generator, shuffle=False)`: every process must take its
    batches in the same order.

    Args:
        x, y: the generator's inputs and labels.
        global_batch_size: int, samples per optimizer step over all replicas.
        distribution: see `local_replica_count` (None: the active one).
        engine: see `shard_arguments` (ignored for arguments given).
        num_shards, shard_index: override what the engine says.
        **generator_kwargs: `sampler`, `class_weight`, `seed`,
            `drop_remainder`, ... of `BalancedBatchGenerator` (not
            `batch_size`: it is derived).

    Returns:
        A `BalancedBatchGenerator` whose `batch_size` is the per-shard batch.

    Raises:
        ValueError: for a global batch that does not split, a last batch
            that does not divide by the local devices, or `batch_size`
            given.

    Examples:

    >>> y = np.array([0] * 24 + [1] * 8)
    >>> x = np.arange(32, dtype="float32").reshape(32, 1)
    >>> shards = [sharded_generator(x, y, global_batch_size=8, num_shards=2,
    ...                             shard_index=i, sampler="over")
    ...           for i in range(2)]
    >>> shards[0].batch_size, len(shards[0])
    (4, 6)
    """
    if "batch_size" in generator_kwargs:
        raise invalid("batch_size", "not given (sharded_generator derives the "
                      "per-shard batch from global_batch_size)",
                      generator_kwargs["batch_size"])
    if num_shards is None or shard_index is None:
        found = shard_arguments(engine)
        num_shards = found["num_shards"] if num_shards is None else num_shards
        shard_index = found["shard_index"] if shard_index is None else shard_index
    num_shards = check_int("num_shards", num_shards, low=1)
    if not (_is_int(shard_index) and 0 <= shard_index < num_shards):
        raise invalid("shard_index", f"an int in [0, num_shards={num_shards})",
                      shard_index)
    replicas = local_replica_count(distribution)
    batch_size = shard_batch_size(global_batch_size, num_shards=num_shards,
                                  local_replicas=replicas)
    generator = BalancedBatchGenerator(x, y, batch_size=batch_size,
                                       num_shards=num_shards,
                                       shard_index=shard_index, **generator_kwargs)
    last = generator.batch_indices(len(generator) - 1, epoch=0).shape[0]
    if last % replicas:
        raise invalid(
            "drop_remainder",
            f"True for this epoch: its last batch holds {last} samples per "
            f"shard, which does not split over {replicas} local devices "
            f"(epoch of {generator.epoch_size} samples, global batch "
            f"{global_batch_size})",
            generator.drop_remainder,
        )
    return generator


# The DistributedSampler replacement ----------------------------------------


# `ShardedSampler` is a NumPy data object: it lives in `kimbalance.data.sharding`
# (one shard layout with the generator) and is re-exported here.


# TensorFlow multi-worker input ----------------------------------------------


def _tensor_spec(tf, value):
    value = np.asarray(value)
    return tf.TensorSpec(shape=(None,) + value.shape[1:],
                         dtype=tf.as_dtype(value.dtype))


def _batches_as_tf_dataset(generator, repeat):
    """A `tf.data.Dataset` over the generator's batches, one epoch per pass.

    Each new pass (a new epoch) moves the generator to the next epoch, as
    `model.fit` does with `on_epoch_end`; the first pass uses the generator's
    epoch at that moment. With `repeat`, the passes follow each other in one
    endless dataset.
    """
    import tensorflow as tf

    first = generator[0]
    signature = tf.nest.map_structure(lambda v: _tensor_spec(tf, v), first)
    last = {"epoch": None}

    def batches():
        # The first pass reads the generator's epoch then (initial_epoch);
        # each later pass is the next epoch.
        epoch = generator.epoch if last["epoch"] is None else last["epoch"] + 1
        last["epoch"] = epoch
        generator.set_epoch(epoch)
        for index in range(len(generator)):
            yield generator[index]

    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return dataset.repeat() if repeat else dataset


def tf_distributed_dataset(strategy: Any, x: Any, y: Any, *, global_batch_size: int,
                           repeat: bool = True, initial_epoch: int = 0,
                           **generator_kwargs: Any,
                           ) -> tuple[Any, list[BalancedBatchGenerator]]:
    """A sharded, rebalanced distributed dataset for a `tf.distribute` strategy.

    Each input pipeline (one per worker of a `MultiWorkerMirroredStrategy`)
    builds its own `BalancedBatchGenerator` shard from the
    `tf.distribute.InputContext` (shard = `input_pipeline_id` of
    `num_input_pipelines`, batch = the per-replica batch) and streams it
    through `tf.data.Dataset.from_generator`; nothing is auto-sharded by
    tf.data. Every pass over a generator is its next epoch.

    With `repeat=True` (the default) the dataset is endless: make one
    iterator and run `len(generators[0])` steps per epoch, as TensorFlow's
    custom-loop guides do (a new distributed iterator per epoch costs
    seconds). Prefetching may then build the first batch or two of an epoch
    before your loop reaches it, so a class-weight switch made at an epoch
    boundary (`set_class_weight`, `DeferredReweighting`) can reach them a
    batch late; with `repeat=False`, iterate the dataset once per epoch and
    such switches are exact.

    Use it with a custom training loop (`strategy.run`), the route
    TensorFlow documents for multi-worker training; Keras 3.15's `fit`
    cannot consume multi-worker distributed datasets
    (keras-team/keras#20585). For `MirroredStrategy` (one machine) pass the
    generator to `fit` directly: Keras splits each batch over the replicas.

    Args:
        strategy: a `tf.distribute.Strategy`.
        x, y: the generator's inputs and labels.
        global_batch_size: int, samples per step over all replicas.
        repeat: bool, one endless dataset (True) or one epoch per iteration.
        initial_epoch: int >= 0, the generators' first epoch (to resume).
        **generator_kwargs: other `BalancedBatchGenerator` arguments.

    Returns:
        `(dataset, generators)`: the distributed dataset and the list of this
        worker's generators (one per local input pipeline; `len()` of one is
        the number of steps per epoch).

    Raises:
        ValueError: for a `strategy` that is not a `tf.distribute.Strategy`,
            or when the global batch does not split over the replicas.
    """
    if "batch_size" in generator_kwargs:
        raise invalid("batch_size", "not given (derived from global_batch_size)",
                      generator_kwargs["batch_size"])
    if not (hasattr(strategy, "distribute_datasets_from_function")
            and _is_int(getattr(strategy, "num_replicas_in_sync", None))):
        raise invalid("strategy", "a tf.distribute.Strategy", strategy)
    check_int("global_batch_size", global_batch_size, low=1)
    repeat = check_bool("repeat", repeat)
    initial_epoch = check_int("initial_epoch", initial_epoch, low=0)
    shard_batch_size(global_batch_size, num_shards=strategy.num_replicas_in_sync)
    generators = []

    def dataset_fn(input_context):
        replicas_per_pipeline = (input_context.num_replicas_in_sync
                                 // input_context.num_input_pipelines)
        if replicas_per_pipeline != 1:
            # Each element of a pipeline goes to one replica, whole.
            batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        else:
            batch_size = global_batch_size // input_context.num_input_pipelines
        shard = shard_arguments(input_context=input_context)
        generator = BalancedBatchGenerator(
            x, y, batch_size=batch_size, num_shards=shard["num_shards"],
            shard_index=shard["shard_index"], **generator_kwargs)
        generator.set_epoch(initial_epoch)  # before tf.data can read a batch
        generators.append(generator)
        return _batches_as_tf_dataset(generator, repeat)

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    return dataset, generators


# Exact global metrics -------------------------------------------------------


_METRICS_EXPECTED = ("kimbalance metrics (with a `confusion_matrix` state): one "
                     "metric or a non-empty list of them")


def _is_confusion_metric(value):
    return (isinstance(value, keras.metrics.Metric)
            and hasattr(value, "confusion_matrix"))


def _metric_list(metrics):
    if _is_confusion_metric(metrics):
        return [metrics]
    metrics = _as_list(metrics)
    if metrics is None:
        raise invalid("metrics", _METRICS_EXPECTED, metrics)
    bad = [i for i, metric in enumerate(metrics) if not _is_confusion_metric(metric)]
    if not metrics or bad:
        detail = f" (entry {bad[0]} is {metrics[bad[0]]!r})" if bad else ""
        raise invalid("metrics", _METRICS_EXPECTED + detail, metrics)
    names = [metric.name for metric in metrics]
    if len(set(names)) != len(names):
        raise invalid("metrics", "metrics with distinct names (the result is a "
                      f"dict by name; got names {names})", metrics)
    return metrics


def _as_list(values):
    """A list from a list, tuple or other iterable (not a string / mapping)."""
    if values is None or isinstance(values, str | bytes | dict | np.ndarray):
        return None
    try:
        return list(values)
    except TypeError:
        return None


def _check_state(state, index, shape, states):
    """One replica's confusion matrix as float64: the shape, finite, >= 0."""
    if state is None or isinstance(state, str | bytes | dict):
        array = None
    else:
        try:
            array = np.asarray(keras.ops.convert_to_numpy(state), dtype=np.float64)
        except (TypeError, ValueError):
            array = None
    if array is None or array.shape != shape:
        found = "None" if state is None else (
            type(state).__name__ if array is None else f"shape {array.shape}")
        raise invalid("states", f"confusion matrices of shape {shape} (entry "
                      f"{index} is {found})", states)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise invalid("states", f"finite, non-negative confusion matrices (entry "
                      f"{index} has NaN, inf or negative cells)", states)
    return array


def merge_metric_states(metric: keras.metrics.Metric,
                        states: Sequence[Any]) -> float:
    """Sets a metric's confusion matrix to the sum of several replicas' states.

    Use it when the per-replica matrices arrive by any route (gathered files,
    `process_allgather`, `strategy.gather`, a queue): the metric then holds
    the exact global value over all replicas' samples.

    Args:
        metric: a `kimbalance.metrics` metric (its `num_classes` fixes the
            shape).
        states: a non-empty iterable of (num_classes, num_classes) confusion
            matrices (`ops.convert_to_numpy(m.confusion_matrix)` of each
            replica; finite, >= 0), or one array of stacked matrices.

    Returns:
        The metric's global result as a float.

    Raises:
        ValueError: for a metric without a confusion matrix (or `None`, or a
            list), no states, or a state that is `None`, of the wrong shape,
            non-finite or negative.

    Examples:

    >>> from kimbalance.metrics import BalancedAccuracy
    >>> replicas = [BalancedAccuracy(num_classes=2) for _ in range(2)]
    >>> replicas[0].update_state([0, 0, 1], [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    >>> replicas[1].update_state([1, 1], [[0.6, 0.4], [0.1, 0.9]])
    >>> states = [keras.ops.convert_to_numpy(m.confusion_matrix) for m in replicas]
    >>> round(merge_metric_states(replicas[0], states), 4)  # (1/2 + 2/3) / 2
    0.5833
    """
    if not _is_confusion_metric(metric):
        raise invalid("metric", "one kimbalance metric (with a `confusion_matrix` "
                      "state)", metric)
    shape = tuple(metric.confusion_matrix.shape)
    given = states
    if isinstance(states, np.ndarray) and states.ndim == len(shape) + 1:
        states = list(states)  # stacked matrices
    else:
        states = _as_list(states)
    if not states:
        raise invalid("states", f"at least one confusion matrix of shape {shape} "
                      "(a non-empty list)", given)
    total = np.zeros(shape, dtype=np.float64)
    for index, state in enumerate(states):
        total += _check_state(state, index, shape, given)
    metric.confusion_matrix.assign(total.astype(np.float32))
    return float(metric.result())


def all_reduce_metrics(metrics: Iterable[keras.metrics.Metric], *,
                       engine: str = "auto") -> dict[str, float]:
    """Sums kimbalance metrics' confusion matrices over all processes, in place.

    Call it on every process at the same point (end of an epoch or of an
    evaluation), after each process updated its metrics with its own shard.
    Afterwards every process holds the global matrices, so `result()` is the
    exact global value everywhere. Reset the metrics before the next epoch
    (Keras' `fit` does); calling it twice sums twice.

    By engine: `"torch"` all-reduces through the joined `torch.distributed`
    group (gloo on CPU, NCCL on CUDA); `"jax"` / `"keras"` sum
    `multihost_utils.process_allgather` of the states; `"tensorflow"` and
    `"none"` change nothing: under `tf.distribute` the matrix is a sum-on-read
    variable that already reads as the sum over all replicas and workers,
    and a single process has nothing to add. Under `keras.distribution`
    `fit` / `evaluate` update metrics on global arrays, so their metrics are
    global without this call; use it for metrics updated on local data in a
    custom loop.

    Args:
        metrics: a kimbalance metric or a non-empty iterable of them (with
            distinct names).
        engine: see `shard_arguments`.

    Returns:
        A dict `{metric.name: float(result)}` of the global values.

    Raises:
        ValueError: for `None`, no metrics, metrics without a confusion
            matrix or with the same name, or an unknown engine.

    Examples:

    >>> from kimbalance.metrics import MacroF1
    >>> metric = MacroF1(num_classes=2)
    >>> metric.update_state([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> {k: round(v, 4) for k, v in all_reduce_metrics(metric).items()}
    {'macro_f1': 0.6667}
    """
    metrics = _metric_list(metrics)
    engine = _resolve_engine(engine)
    if engine in ("torch", "jax", "keras") and metrics:
        states = np.stack([keras.ops.convert_to_numpy(m.confusion_matrix)
                           .astype(np.float64) for m in metrics])
        if engine == "torch":
            summed = _torch_all_reduce(states)
        else:
            summed = _jax_all_reduce(states)
        if summed is not None:
            for metric, state in zip(metrics, summed, strict=True):
                metric.confusion_matrix.assign(state.astype(np.float32))
    return {metric.name: float(metric.result()) for metric in metrics}


def _torch_all_reduce(states):
    dist = _torch_group()
    if dist is None or dist.get_world_size() == 1:
        return None
    import torch

    tensor = torch.from_numpy(states)
    if dist.get_backend() == "nccl":
        tensor = tensor.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def _jax_all_reduce(states):
    import jax

    if jax.process_count() == 1:
        return None
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(states.astype(np.float32))
    return np.asarray(gathered, dtype=np.float64).sum(axis=0)
