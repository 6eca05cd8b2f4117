"""Rebalanced batches as a Grain dataset (`grain_dataset`), for `model.fit`.

Keras 3 `fit` accepts Grain datasets directly but refuses `class_weight` for
them; `grain_dataset` yields the per-sample weights with the batches instead,
in the record order of a kimbalance sampler. Grain is imported when
`grain_dataset` is called (this module stays NumPy-only at import).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from kimbalance._validation import check_int, invalid
from kimbalance.data.generator import BalancedBatchGenerator

if TYPE_CHECKING:
    import grain

__all__ = ["grain_dataset"]


def grain_dataset(
    x: Any,
    y: Any,
    *,
    sampler: Any = "over",
    batch_size: int = 32,
    class_weight: Any = None,
    seed: int = 0,
    num_shards: int = 1,
    shard_index: int = 0,
    shard_options: Any = None,
    sampler_kwargs: Mapping[str, Any] | None = None,
    drop_remainder: bool = False,
    augment: Any = None,
    num_classes: int | None = None,
    x_key: Any = None,
    initial_epoch: int = 0,
) -> grain.IterDataset:
    """A `grain.IterDataset` of rebalanced batches `(x, y[, sample_weight])`.

    The record order comes from a kimbalance index sampler and the shard
    layout of `kimbalance.data.BalancedBatchGenerator`: batch `i` of epoch
    `e` is exactly batch `i` of a `BalancedBatchGenerator` built with the
    same arguments at epoch `e` (same sampler, seed, shard, class weights and
    augmentation), so switching between the two input pipelines changes no
    batch. Every pass over the dataset is one epoch and is resampled.

    **Epochs.** The dataset keeps the number of the next epoch
    (`dataset.epoch`, `initial_epoch` at first). An iteration started with
    `iter(dataset)` yields the batches of that epoch; once its last batch has
    been yielded, the counter moves to the next epoch, so `model.fit(dataset,
    epochs=E)` trains on E resampled epochs. A partial pass (a `break`,
    Keras reading the first two batches to infer the shapes) does not count,
    unless it reached the epoch's last batch: with at most two batches per
    epoch, Keras' shape inference counts as a pass. To follow fit's epoch
    numbers exactly (the `"progressive"` sampler, resuming with
    `initial_epoch`), pass `callbacks=[dataset.sync_callback()]`;
    `dataset.set_epoch(e)` jumps to an epoch. Iterators are checkpointable
    with Grain (`get_state()` is `{"epoch", "next_index"}`).

    **Sharding.** `batch_size` is the per-shard batch. Each process builds
    the dataset with its own `shard_index` of `num_shards` (for example
    `jax.process_index()` of `jax.process_count()`) or passes Grain's
    `shard_options` (e.g. `grain.sharding.ShardByJaxProcess()`); the shards
    of a step are disjoint and stratified, as documented on
    `BalancedBatchGenerator`.

    Args:
        x: the inputs: an array, a memmap or on-disk array, a dict or tuple
            of arrays, or a random-access source with `len()` and integer
            indexing (as for `BalancedBatchGenerator`).
        y: the labels: 1-D ids, (N, 1) ids, one-hot or multi-hot rows, masks,
            or a dict / tuple of targets (multi-output).
        sampler: a sampler name (`"instance"`, `"over"`, `"under"`,
            `"class_balanced"`, `"sqrt"`, `"power"`, `"progressive"`,
            `"multilabel"`, `"repeat_factor"`) or a `Sampler` object built on
            the same samples.
        batch_size: the per-shard batch size (int >= 1).
        class_weight: None (batches `(x, y)`), a scheme name of
            `kimbalance.weights.class_weights`, a dict or a sequence of one
            weight per class (batches `(x, y, sample_weight)`).
        seed: int >= 0, the seed of a named sampler and of augmentations.
        num_shards: the number of data-parallel shards (processes).
        shard_index: this process's shard, in `[0, num_shards)`.
        shard_options: a `grain.sharding.ShardOptions` (such as
            `ShardByJaxProcess()`) giving `shard_count` and `shard_index`
            instead of `num_shards` / `shard_index`.
        sampler_kwargs: keyword arguments of a named sampler.
        drop_remainder: drop the epoch's last incomplete global batch.
        augment: a batch augmentation (see `BalancedBatchGenerator`).
        num_classes: the number of classes for 1-D labels.
        x_key: for item sources whose items are dicts: the input's key(s).
        initial_epoch: the first epoch the dataset yields (int >= 0).

    Returns:
        A `grain.IterDataset` with the attributes `generator` (the
        `BalancedBatchGenerator` that makes its batches), `epoch`,
        `num_batches` (batches per epoch) and the methods `set_epoch(e)`,
        `set_class_weight(w)` and `sync_callback()`.

    Raises:
        ImportError: when `grain` is not installed.
        ValueError: for `shard_options` together with `num_shards` /
            `shard_index`, a bad `initial_epoch`, and every invalid argument
            `BalancedBatchGenerator` rejects.

    Examples:

    >>> import pytest; _ = pytest.importorskip("grain")  # skipped without grain
    >>> y = np.array([0] * 90 + [1] * 10)
    >>> x = np.arange(100, dtype="float32").reshape(100, 1)
    >>> ds = grain_dataset(x, y, sampler="over", batch_size=64,
    ...                    class_weight="balanced")
    >>> [len(batch[1]) for batch in ds], ds.epoch
    ([64, 64, 52], 1)
    >>> labels = np.concatenate([batch[1] for batch in ds])
    >>> np.bincount(labels).tolist(), ds.epoch
    ([90, 90], 2)
    >>> xb, yb, wb = next(iter(ds))
    >>> np.unique(wb).astype("float64").round(4).tolist()
    [0.5556, 5.0]
    """
    if shard_options is not None:
        if num_shards != 1 or shard_index != 0:
            raise invalid("shard_options", "None when num_shards / shard_index are "
                          f"given (num_shards={num_shards!r}, shard_index="
                          f"{shard_index!r})", shard_options)
        try:
            num_shards = int(shard_options.shard_count)
            shard_index = int(shard_options.shard_index)
        except (AttributeError, TypeError, ValueError):
            raise invalid("shard_options", "a grain.sharding.ShardOptions "
                          "(shard_count and shard_index)", shard_options) from None
    initial_epoch = check_int("initial_epoch", initial_epoch, low=0)
    generator = BalancedBatchGenerator(
        x, y, sampler=sampler, batch_size=batch_size, class_weight=class_weight,
        augment=augment, seed=seed, num_shards=num_shards, shard_index=shard_index,
        drop_remainder=drop_remainder, x_key=x_key, num_classes=num_classes,
        sampler_kwargs=None if sampler_kwargs is None else dict(sampler_kwargs))
    dataset_class, _ = _grain_classes()
    return dataset_class(generator, initial_epoch)


@functools.cache
def _grain_classes() -> tuple[type, type]:
    """The Grain dataset and iterator classes (Grain is imported here)."""
    try:
        import grain
    except ImportError as error:
        raise ImportError("kimbalance.data.grain.grain_dataset needs the `grain` "
                          "package: pip install grain (or kimbalance[grain])"
                          ) from error

    class BalancedGrainDataset(grain.IterDataset):
        """Rebalanced batches of a `BalancedBatchGenerator`, one epoch a pass."""

        def __init__(self, generator: BalancedBatchGenerator, epoch: int):
            super().__init__()
            self.generator = generator
            self.epoch = epoch

        @property
        def num_batches(self) -> int:
            """Batches per epoch (the same every epoch)."""
            return len(self.generator)

        def set_epoch(self, epoch: int) -> None:
            """Sets the epoch the next iteration yields."""
            self.epoch = check_int("epoch", epoch, low=0)

        def set_class_weight(self, class_weight: Any) -> None:
            """Sets the class weights of the batches read from now on."""
            self.generator.set_class_weight(class_weight)

        def sync_callback(self) -> keras.callbacks.Callback:
            """A Keras callback that sets the dataset's epoch to fit's epoch."""
            return _EpochSync(self)

        def batch(self, epoch: int, index: int) -> tuple:
            """Batch `index` of epoch `epoch` (random access)."""
            epoch = check_int("epoch", epoch, low=0)
            generator = self.generator
            if generator.epoch != epoch:
                generator.set_epoch(epoch)
            return generator[index]

        def __iter__(self) -> BalancedGrainIterator:
            return BalancedGrainIterator(self)

        def __str__(self) -> str:
            return (f"BalancedGrainDataset(sampler={self.generator.sampler!r}, "
                    f"batch_size={self.generator.batch_size}, "
                    f"num_batches={self.num_batches}, epoch={self.epoch})")

    class BalancedGrainIterator(grain.DatasetIterator):
        """Iterates one epoch of a `BalancedGrainDataset`."""

        def __init__(self, dataset: BalancedGrainDataset):
            super().__init__()
            self._dataset = dataset
            self._epoch = dataset.epoch
            self._next_index = 0

        def __next__(self) -> tuple:
            dataset = self._dataset
            if self._next_index >= dataset.num_batches:
                raise StopIteration
            batch = dataset.batch(self._epoch, self._next_index)
            self._next_index += 1
            if self._next_index == dataset.num_batches:
                dataset.epoch = max(dataset.epoch, self._epoch + 1)
            return batch

        def get_state(self) -> dict[str, Any]:
            return {"epoch": self._epoch, "next_index": self._next_index}

        def set_state(self, state: dict[str, Any]) -> None:
            epoch = check_int("state['epoch']", int(np.asarray(state["epoch"])), low=0)
            index = check_int("state['next_index']",
                              int(np.asarray(state["next_index"])), low=0,
                              high=self._dataset.num_batches)
            self._epoch, self._next_index = epoch, index

        def __str__(self) -> str:
            return (f"BalancedGrainIterator(epoch={self._epoch}, "
                    f"next_index={self._next_index})")

    class _EpochSync(keras.callbacks.Callback):
        def __init__(self, dataset: BalancedGrainDataset):
            super().__init__()
            self.dataset = dataset

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.dataset.set_epoch(epoch)

    return BalancedGrainDataset, BalancedGrainIterator
