"""`BalancedBatchGenerator`: rebalanced NumPy batches as a `keras.utils.PyDataset`.

No tf.data and no `keras.ops`: batches are NumPy arrays gathered from an
in-memory array, a memmap, a dict of arrays or any random-access source,
following the epoch order of an index sampler (`kimbalance.data.samplers`).
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import keras
import numpy as np
from numpy.typing import ArrayLike

import kimbalance.data._targets as _targets
from kimbalance._validation import check_bool, check_int, invalid, parse_targets
from kimbalance.data.samplers import SAMPLERS, Sampler, get_sampler
from kimbalance.data.sharding import (
    ShardLayout,
    check_shard_index,
    shard_batch_indices,
)
from kimbalance.weights import resolve_class_weight

__all__ = ["BalancedBatchGenerator"]


class _ArraySource:
    """An in-memory array: one fancy-index gather per batch."""

    def __init__(self, array):
        self.array = array

    def __len__(self):
        return self.array.shape[0]

    def take(self, indices):
        return self.array[indices]


class _SortedReadSource(_ArraySource):
    """A memmap or on-disk array (h5py, zarr): reads rows in increasing order.

    Sorted, de-duplicated reads keep disk access sequential (and h5py needs
    increasing indices); the rows are then put back in batch order.
    """

    def take(self, indices):
        unique, inverse = np.unique(indices, return_inverse=True)
        rows = np.asarray(self.array[unique])
        if unique.shape[0] == indices.shape[0] and np.array_equal(unique, indices):
            return rows
        return rows[inverse]


def _stack(features):
    first = features[0]
    if isinstance(first, dict):
        return {key: np.stack([np.asarray(f[key]) for f in features]) for key in first}
    if isinstance(first, tuple):
        return tuple(np.stack([np.asarray(f[i]) for f in features])
                     for i in range(len(first)))
    return np.stack([np.asarray(f) for f in features])


def _reorder(batch, order):
    if isinstance(batch, dict):
        return {key: value[order] for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(value[order] for value in batch)
    return batch[order]


class _ItemSource:
    """Any `len()` + integer-indexing source returning one item per index.

    Uses the source's `__getitems__` (batch read, as `tfds.data_source` and
    torch datasets provide) when present; items are read once per distinct
    index, in increasing order.
    """

    def __init__(self, source, extract):
        self.source = source
        self.extract = extract
        self._batch_read = getattr(source, "__getitems__", None)

    def __len__(self):
        return len(self.source)

    def take(self, indices):
        unique, inverse = np.unique(indices, return_inverse=True)
        keys = unique.tolist()
        if self._batch_read is not None:
            items = self._batch_read(keys)
        else:
            items = [self.source[key] for key in keys]
        batch = _stack([self.extract(item) for item in items])
        if unique.shape[0] == indices.shape[0] and np.array_equal(unique, indices):
            return batch
        return _reorder(batch, inverse)


class _StructSource:
    """A dict or tuple of sources (multi-input models)."""

    def __init__(self, sources):
        self.sources = sources
        self.is_dict = isinstance(sources, dict)

    def __len__(self):
        values = self.sources.values() if self.is_dict else self.sources
        return len(next(iter(values)))

    def take(self, indices):
        if self.is_dict:
            return {key: source.take(indices) for key, source in self.sources.items()}
        return tuple(source.take(indices) for source in self.sources)


def _is_array_like(x):
    return hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")


def _array_source(x, name):
    if getattr(x, "shape", None) is not None and len(x.shape) == 0:
        raise invalid(name, "arrays with a batch dimension (not a 0-d scalar)", x)
    if isinstance(x, np.memmap):
        return _SortedReadSource(x)
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            raise invalid(name, "an array with a batch dimension", x)
        return _ArraySource(x)
    if _is_array_like(x):
        return _SortedReadSource(x)
    return None


def _make_extractor(x_key):
    if x_key is None:
        return lambda item: item
    if callable(x_key):
        return x_key
    if isinstance(x_key, str):
        return lambda item: item[x_key]
    if isinstance(x_key, list | tuple) and x_key and all(isinstance(k, str)
                                                         for k in x_key):
        keys = tuple(x_key)
        return lambda item: {key: item[key] for key in keys}
    raise invalid("x_key", "None, a key, a list of keys or a callable item -> "
                  "features", x_key)


def _make_source(x, x_key):
    if x is None or isinstance(x, str | bytes | numbers.Number):
        raise invalid("x", "an array, a memmap, a dict or tuple of arrays, or a "
                      "random-access source (len() and integer indexing); not a "
                      "string, a scalar or None", x)
    if getattr(x, "shape", None) is not None and len(x.shape) == 0:
        raise invalid("x", "an array with a batch dimension (not a 0-d scalar)", x)
    if isinstance(x, dict | tuple):
        if len(x) == 0:
            raise invalid("x", "a non-empty dict or tuple of arrays", x)
        items = x.items() if isinstance(x, dict) else enumerate(x)
        sources = {}
        for key, value in items:
            source = _array_source(value, "x")
            if source is None:
                raise invalid("x", "a dict or tuple whose values are arrays "
                              f"(entry {key!r} is {type(value).__name__})", x)
            sources[key] = source
        lengths = {key: len(source) for key, source in sources.items()}
        if len(set(lengths.values())) != 1:
            raise invalid("x", f"arrays of one length; got lengths {lengths}", x)
        if isinstance(x, tuple):
            return _StructSource(tuple(sources[i] for i in range(len(x))))
        return _StructSource(sources)
    if x_key is None:
        source = _array_source(x, "x")
        if source is not None:
            return source
    if hasattr(x, "__len__") and hasattr(x, "__getitem__"):
        return _ItemSource(x, _make_extractor(x_key))
    raise invalid("x", "an array, a memmap, a dict or tuple of arrays, or a "
                  "random-access source (len() and integer indexing)", x)


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):
        return {key: _to_numpy(v) for key, v in value.items()}
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy"):  # tf tensor
        return value.numpy()
    return np.asarray(value)


def _check_augmented(x, batch_size, augment):
    """An augmentation must keep one row per sample of the batch."""
    values = x.values() if isinstance(x, dict) else x if isinstance(x, tuple) else [x]
    sizes = [getattr(value, "shape", (None,))[:1] for value in values]
    if any(size != (batch_size,) for size in sizes):
        raise invalid("augment", f"a function that keeps the batch size (the batch "
                      f"has {batch_size} samples; augment returned leading "
                      f"dimensions {[s[0] if s else None for s in sizes]})", augment)


def _augment_mode(augment):
    if augment is None:
        return None, False
    if isinstance(augment, keras.layers.Layer):
        return "layer", False
    if not callable(augment):
        raise invalid("augment", "a callable (x) -> x or (x, y) -> x, or a Keras "
                      "preprocessing layer", augment)
    try:
        params = inspect.signature(augment).parameters.values()
    except (TypeError, ValueError):
        return "x", False
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty and p.name != "rng"]
    takes_rng = any(p.name == "rng" for p in params)
    takes_y = len(positional) >= 2 or any(p.name == "y" for p in params)
    return ("xy" if takes_y else "x"), takes_rng


class BalancedBatchGenerator(keras.utils.PyDataset):
    """Rebalanced batches `(x, y)` or `(x, y, sample_weight)` for `model.fit`.

    Each epoch follows the order of an index sampler (over-, under-,
    class-balanced, square-root, progressive or multi-label sampling), so the
    model sees a rebalanced stream; `on_epoch_end` (called by `fit`) moves to
    the next epoch, which is resampled. `len()` is the same every epoch.

    **Batches.** Batch `i` of epoch `e` is a pure function of
    `(seed, e, i)` and of the current class weights: the same batches come
    out whatever `workers` / `use_multiprocessing` are, and whether `fit`
    shuffles the batch order (its default for a `PyDataset`) or not. The
    last batch holds the epoch's remainder (`drop_remainder=False`, the
    default) or is dropped (`drop_remainder=True`); samples are never
    dropped silently. `x` rows are gathered in one fancy-index per batch; a
    memmap or on-disk array is read in sorted order (sequential disk access)
    and returned in batch order. Labels come out in the form and dtype given
    (1-D ids, (N, 1), one-hot or multi-hot), so the loss sees what it
    expects.

    **Sharding** (data parallelism). `batch_size` is the *per-shard* batch;
    the global batch is G = `batch_size * num_shards`. Every shard uses the
    same epoch order (same sampler and seed) and the same
    `kimbalance.data.ShardLayout` as `ShardedSampler`: step i's global
    batch is the epoch positions `[i G, (i + 1) G)`, so the global batch of
    step i is exactly batch i of the unsharded generator with batch size G
    and the same sampler (as a set of samples), and the shards of a step
    are disjoint. Each shard's batch is stratified: for single-label
    targets the step's samples are dealt to the shards by class, so a class
    with g samples in the global batch has `floor(g / num_shards)` or
    `ceil(g / num_shards)` of them in every shard's batch (with
    `"class_balanced"`, whose blocks are the per-shard batches, shard s
    takes block s of the step: class-balanced by construction; multi-hot
    targets: the contiguous positions `[i G + s b, i G + (s + 1) b)`). If
    the epoch's tail r (< G) does not split into equal parts, it is padded,
    like torch's `DistributedSampler`, with positions from the start of the
    same epoch (wrapping around as often as needed) up to a multiple of
    `num_shards * sampler.block_size` (at most that many minus one
    repeats), so every shard runs the same number of steps with equal batch
    shapes; with `num_shards=1` nothing is padded.

    **Epochs.** `on_epoch_end()` moves to the next epoch and `set_epoch(e)`
    jumps to one; `generator.epoch` counts those calls. Keras' `fit()` also
    calls `on_epoch_end()` once when it starts (its iterator reset), so the
    counter runs ahead of fit's epoch number. Resampling every epoch is
    unaffected; when the schedule must follow fit's epoch number exactly
    (`"progressive"`, or resuming with `initial_epoch`), pass
    `callbacks=[generator.sync_callback()]`, which sets the generator's
    epoch to fit's at the start of every epoch (before any batch of it is
    fetched, worker processes included).

    **Weights.** With `class_weight`, batches are `(x, y, sample_weight)`
    (float32): `w[y_i]` for single-label targets, the mean weight of the
    active labels for multi-hot targets (a row without labels gets 1), as
    `kimbalance.weights.sample_weights`. Scheme names count the classes of
    the given `y` (before resampling). `set_class_weight(w)` changes them
    from the next batch fetched (batches already prefetched by workers keep
    the old weights; at an epoch boundary the queue is empty, so a switch in
    `on_epoch_begin`, as `DeferredReweighting` does, is exact). Once the
    generator yields weights it keeps the 3-tuple: `set_class_weight(None)`
    yields ones, so compiled train steps keep their input signature. To
    switch weights on later in training (deferred re-weighting), start with
    `class_weight="none"` (ones) so the structure is fixed from the first
    batch (the TensorFlow backend fixes it from the first two batches).

    **Segmentation masks.** `y` may be masks: id maps (N, H, W) (or any
    (N, ...) of 3+ axes; a trailing axis of size 1 is a channel, as in
    (N, H, W, 1)) or one-hot maps (N, H, W, C), told apart as by
    `kimbalance.weights.dense_targets` (pass `num_classes` to settle an
    ambiguous tiny binary mask). They may be in memory or on disk (memmap,
    h5py, zarr: read per batch, in sorted order); they are scanned once,
    in chunks, to check every id (in `[0, C)` or `ignore_class`), count the
    pixels of each class (the counts the scheme names of `class_weight`
    use) and find the classes each image contains. Samplers work on images:
    `"repeat_factor"` and `"multilabel"` sample images by the classes their
    masks contain (`kimbalance.data.class_presence`), `"instance"` takes
    every image once; the one-label samplers (`"over"`, `"under"`,
    `"class_balanced"`, `"sqrt"`, `"power"`, `"progressive"`) need one label
    per image, given as `sampling_labels` (e.g. the rarest class of each
    mask), else a ValueError names `sampling_labels`. With `class_weight`
    the third element is a per-pixel weight map (B, H, W) (`w` of each
    pixel's class, 0 for `ignore_class`) that Keras' `sample_weight`
    applies element-wise; an augment that returns labels (a flip applied to
    image and mask) gets its weight map from the masks it returns.

    **Multi-output models.** `y` may be a dict `{output name: target}` or a
    tuple of targets (each labels or masks, one row per sample of `x`);
    `sampling_target` names the one the sampler balances (a key, or an
    index for a tuple), and `class_weight` is a dict `{output: weights or
    None}` (a tuple with one entry per output also works for a tuple `y`).
    Batches are `(x, y_dict, sample_weight_dict)` (tuples for a tuple `y`),
    as Keras' `fit` takes them for multi-output models; an output without
    class weights gets ones, per sample or per pixel (Keras 3 needs every
    output's weight once any is given: a missing key is a KeyError on every
    backend, and a None weight fails on TensorFlow).

    Args:
        x: the inputs: a NumPy array, a `numpy.memmap`, an on-disk array with
            `shape`/`dtype` (h5py, zarr), a dict or tuple of such arrays
            (multi-input models), or any random-access source with `len()`
            and integer indexing (e.g. `tfds.data_source(...)`, a torch
            `Dataset`, a list), read item by item (`__getitems__` when it
            has one).
        y: the labels, in memory, one row per sample of `x`: 1-D class ids,
            (N, 1) ids, one-hot or multi-hot rows; or segmentation masks
            (id maps or one-hot maps, in memory or on disk; see above); or
            a dict / tuple of such targets for a multi-output model. Or None
            with a
            class-partitioned sampler (`RandomOverSampler.from_counts(counts)`
            etc.: `x` stores class c at positions `[offset_c, offset_c +
            n_c)`): the batches' int64 class ids come from their positions,
            so no label array is kept for any dataset size.
        sampler: a sampler name (`"instance"`, `"over"`, `"under"`,
            `"class_balanced"`, `"sqrt"`, `"power"`, `"progressive"`,
            `"multilabel"`, `"repeat_factor"`) built on `y` with `seed` (and
            `batch_size` as the block of `"class_balanced"`), or a `Sampler`
            object built on the same samples (its own seed is used).
        batch_size: the per-shard batch size.
        class_weight: None, a scheme name of
            `kimbalance.weights.class_weights` (`"balanced"`, `"inverse"`,
            `"sqrt_inverse"`, `"power"`, `"effective_number"`, `"none"`), a
            dict `{class: weight}` covering every class, or a sequence of C
            weights.
        augment: None; a callable on the NumPy batch, `augment(x) -> x` or,
            if it has two positional parameters without defaults or a
            parameter named `y`, `augment(x, y) -> x` (the labels make
            minority-only augmentation possible; see
            `kimbalance.data.RandomShiftFlip`); an augment with the attribute
            `returns_labels = True` returns `(x, y)`, its labels replacing the
            batch's (the mixing augmentations `kimbalance.data.MixUp`,
            `CutMix`, `Remix`, `BalancedMixUp` return soft one-hot rows;
            sample weights still follow the sampled labels); a parameter named
            `rng` receives a `numpy.random.Generator` seeded from `(seed,
            epoch, batch index)` for reproducible augmentation. Or a Keras
            preprocessing layer, whose output is converted back to NumPy.
        seed: int >= 0, the seed of a named sampler and of `rng`.
        num_shards: the number of data-parallel shards (int >= 1).
        shard_index: this shard, in `[0, num_shards)`.
        drop_remainder: drop the epoch's last incomplete global batch.
        x_key: for item sources whose items are dicts (TFDS): the key of the
            input (`"image"`), a list of keys (a dict input), or a callable
            `item -> features`. None for arrays.
        num_classes: the number of classes for 1-D labels and id maps
            (defaults to `max(y) + 1`); a dict `{output: C}` for a
            multi-output `y`.
        sampler_kwargs: keyword arguments of a named sampler (e.g.
            `{"sampling_strategy": "minority"}`, `{"num_epochs": 30}` for
            `"progressive"`, `{"power": 0.3}`).
        sampling_target: for a dict / tuple `y`, the key (or index) of the
            target that drives the sampler (may be omitted for one output).
        sampling_labels: None, or one label per sample (class ids, one-hot
            or multi-hot rows) that the sampler balances instead of the
            sampling target's own: needed for one-label samplers with masks.
        ignore_class: None, or the id of void pixels in masks (e.g. 255):
            allowed outside `[0, C)`, not counted, weight 0.
        **pydataset_kwargs: `workers`, `use_multiprocessing`,
            `max_queue_size` of `keras.utils.PyDataset`.

    Raises:
        ValueError: for an `x` that is not a data source (a string, a
            scalar, None, a dict of arrays of unequal lengths), mismatched
            lengths of `x` and `y`, invalid labels (NaN, negative, out of
            range), a bad batch size or shard, an unknown sampler, a sampler
            built on other data (other length, or other labels of the same
            length: compared by a digest of the labels), or class weights of
            the wrong length; for masks: ids outside `[0, C)`, a one-label
            sampler without `sampling_labels`; for a dict / tuple `y`: an
            unknown `sampling_target`, targets of another length than `x`,
            `class_weight` keys that name no output; when a batch is
            fetched, an `augment` that changes the number of samples (of `x`
            or of returned labels), one with `returns_labels = True` that
            returns no `(x, y)` pair, or one returning masks with ids
            outside `[0, C)`.
        TypeError: for a batch index that is not an int (`gen[1.0]`).
        IndexError: for a batch index out of range.

    Examples:

    >>> y = np.array([0] * 90 + [1] * 10)
    >>> x = np.arange(100, dtype="float32").reshape(100, 1)
    >>> gen = BalancedBatchGenerator(x, y, sampler="over", batch_size=32)
    >>> len(gen), [len(gen[i][1]) for i in range(len(gen))]
    (6, [32, 32, 32, 32, 32, 20])
    >>> labels = np.concatenate([gen[i][1] for i in range(len(gen))])
    >>> np.bincount(labels).tolist()
    [90, 90]
    >>> gen = BalancedBatchGenerator(x, y, batch_size=8, class_weight="balanced")
    >>> xb, yb, wb = gen[0]
    >>> np.round(gen.class_weight, 4).tolist(), wb.dtype.name
    ([0.5556, 5.0], 'float32')

    Segmentation masks, with per-pixel weights and images with the rare
    class repeated:

    >>> masks = np.zeros((20, 4, 4), dtype="int32")
    >>> masks[:2, :2, :2] = 1                       # class 1 in 2 of 20 images
    >>> images = np.ones((20, 4, 4, 3), dtype="float32")
    >>> gen = BalancedBatchGenerator(images, masks, sampler="repeat_factor",
    ...                              sampler_kwargs={"threshold": 0.4},
    ...                              class_weight="balanced", batch_size=4)
    >>> xb, yb, wb = gen[0]
    >>> yb.shape, wb.shape, np.round(gen.class_weight, 3).tolist()
    ((4, 4, 4), (4, 4, 4), [0.513, 20.0])
    >>> gen.sampler.epoch_class_counts().tolist()   # images with class 0, 1
    [22, 4]

    Two outputs, the sampler balancing `"label"`, pixel weights on `"mask"`:

    >>> labels = (masks.max(axis=(1, 2)) > 0).astype("int64")
    >>> gen = BalancedBatchGenerator(
    ...     images, {"mask": masks, "label": labels}, sampling_target="label",
    ...     class_weight={"mask": "balanced", "label": None}, batch_size=4)
    >>> xb, yb, wb = gen[0]
    >>> sorted(yb), wb["mask"].shape, wb["label"].tolist()
    (['label', 'mask'], (4, 4, 4), [1.0, 1.0, 1.0, 1.0])

    References:
        Buda et al., "A systematic study of the class imbalance problem in
        convolutional neural networks", Neural Networks 2018 (over-sampling
        for CNNs).
    """

    def __init__(
        self,
        x: Any,
        y: ArrayLike | Mapping[Any, ArrayLike] | None,
        *,
        sampler: str | Sampler = "over",
        batch_size: int = 32,
        class_weight: str | Mapping[Any, Any] | ArrayLike | None = None,
        augment: Callable[..., Any] | None = None,
        seed: int = 0,
        num_shards: int = 1,
        shard_index: int = 0,
        drop_remainder: bool = False,
        x_key: str | Sequence[str] | Callable[[Any], Any] | None = None,
        num_classes: int | Mapping[Any, int] | None = None,
        sampler_kwargs: Mapping[str, Any] | None = None,
        sampling_target: str | int | None = None,
        sampling_labels: ArrayLike | None = None,
        ignore_class: int | None = None,
        **pydataset_kwargs: Any,
    ) -> None:
        super().__init__(**pydataset_kwargs)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.num_shards = check_int("num_shards", num_shards, low=1)
        self.shard_index = check_shard_index(shard_index, self.num_shards)
        self.drop_remainder = check_bool("drop_remainder", drop_remainder)

        self._source = _make_source(x, x_key)
        num_items = len(self._source)
        if sampler_kwargs is None:
            sampler_kwargs = {}
        elif not isinstance(sampler_kwargs, dict):
            raise invalid("sampler_kwargs", "a dict of keyword arguments",
                          sampler_kwargs)
        shared = sorted({"seed", "batch_size", "num_classes"} & set(sampler_kwargs))
        if shared:
            raise invalid("sampler_kwargs", f"the sampler's own keyword arguments "
                          f"({shared} are the generator's arguments: pass them to "
                          "BalancedBatchGenerator)", sampler_kwargs)
        if y is None:
            # Labels come from a class-partitioned sampler's layout
            # (`Sampler.from_counts`: class c at [offset_c, offset_c + n_c)),
            # so no per-sample array exists, whatever the dataset size.
            if not isinstance(sampler, Sampler) or not sampler.class_partitioned:
                raise invalid("y", "the labels, or y=None with a class-partitioned "
                              "sampler (`SamplerClass.from_counts(counts)`) that "
                              "gives every position's class", None)
            if num_classes is not None and num_classes != sampler.num_classes:
                raise invalid("num_classes", f"{sampler.num_classes} (the sampler's "
                              "number of classes)", num_classes)
            if sampling_target is not None or sampling_labels is not None:
                raise invalid("sampling_target" if sampling_target is not None
                              else "sampling_labels", "None when y is None",
                              sampling_target if sampling_target is not None
                              else sampling_labels)
            self._targets = {None: _targets.PartitionedTarget(sampler)}
            self._keys, self.sampling_target = None, None
        else:
            self._targets, self._keys, self.sampling_target = _targets.read_targets(
                y, num_classes=num_classes, sampling_target=sampling_target,
                ignore_class=ignore_class, num_items=num_items)
        driver = self._targets[self.sampling_target]
        self.num_classes = (driver.num_classes if self._keys is None else
                            {key: t.num_classes for key, t in self._targets.items()})
        image_targets = driver.image_targets()
        if sampling_labels is not None:
            image_targets = parse_targets(sampling_labels, name="sampling_labels")
            if len(image_targets) != num_items:
                raise invalid("sampling_labels", f"{num_items} labels, one per sample "
                              f"of x (len(x)={num_items})", sampling_labels)

        if isinstance(sampler, Sampler):
            if sampler.dataset_size != num_items:
                raise invalid("sampler", f"a sampler built on the {num_items} samples "
                              f"of x (this one indexes {sampler.dataset_size})",
                              sampler)
            if image_targets is not None and not sampler.same_labels(image_targets):
                raise invalid("sampler", "a sampler built on these labels `y` (its "
                              "labels differ from y: the sampler would rebalance "
                              "other classes)" if not driver.dense else
                              "a sampler built on the masks' image-level labels "
                              "(`class_presence(masks, C)`) or on sampling_labels",
                              sampler)
            self.sampler = sampler
        else:
            named = isinstance(sampler, str) and sampler in SAMPLERS
            image_level = named and SAMPLERS[sampler].multi_label
            if driver.dense and sampling_labels is None and named and not image_level:
                names = [name for name, cls in SAMPLERS.items() if cls.multi_label]
                raise invalid("sampling_labels", f"one label per image for sampler="
                              f"{sampler!r} with segmentation masks (e.g. the rarest "
                              "class each mask contains); "
                              + ", ".join(repr(n) for n in names)
                              + " sample images by the classes their masks contain",
                              sampling_labels)
            if image_targets.kind == "multi_hot" and named and not image_level:
                names = [name for name, cls in SAMPLERS.items() if cls.multi_label]
                raise invalid("sampler", " or ".join(repr(n) for n in names)
                              + " for multi-hot targets", sampler)
            self.sampler = get_sampler(sampler, image_targets, seed=self.seed,
                                       batch_size=self.batch_size,
                                       num_classes=image_targets.num_classes,
                                       **sampler_kwargs)
        self.layout = ShardLayout(len(self.sampler), self.batch_size,
                                  self.num_shards, self.shard_index,
                                  self.sampler.block_size, self.drop_remainder)
        self.global_batch_size = self.layout.global_batch_size
        self.epoch_size = self.layout.epoch_size

        self._augment = augment
        self._augment_mode, self._augment_rng = _augment_mode(augment)
        if self._augment_mode == "layer" and not isinstance(self._source,
                                                            _ArraySource):
            raise invalid("augment", "a callable for this x (a Keras layer takes "
                          "one array input)", augment)

        self.epoch = 0
        self.class_weight: np.ndarray | dict[Any, np.ndarray | None] | None = None
        self._emit_weights = False
        if class_weight is not None:
            self.set_class_weight(class_weight)

    # Epochs -----------------------------------------------------------------

    def __len__(self) -> int:
        return self.layout.num_batches

    def on_epoch_end(self) -> None:
        """Moves to the next epoch (called by `fit` after each epoch)."""
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch (e.g. `initial_epoch` when resuming training)."""
        self.epoch = check_int("epoch", epoch, low=0)
        self.sampler.set_epoch(self.epoch)

    def sync_callback(self) -> keras.callbacks.Callback:
        """A Keras callback that sets this generator's epoch to fit's epoch.

        Returns:
            A `keras.callbacks.Callback` calling `set_epoch(epoch)` in
            `on_epoch_begin`.
        """
        return _EpochSync(self)

    # Weights ----------------------------------------------------------------

    def set_class_weight(
        self, class_weight: str | Mapping[Any, Any] | ArrayLike | None
    ) -> None:
        """Sets the class weights used from the next batch fetched.

        Args:
            class_weight: None (ones once weights were yielded, else plain
                `(x, y)` batches), a scheme name, a dict or a sequence of C
                weights.
        """
        specs = _targets.read_class_weight(class_weight, self._keys)
        resolved = {}
        for key, spec in specs.items():
            target = self._targets[key]
            name = "class_weight" if key is None else f"class_weight[{key!r}]"
            weights = None if spec is None else resolve_class_weight(
                spec, target.num_classes, target.counts(), name=name)
            target.set_weights(weights)
            resolved[key] = weights
        self.class_weight = resolved[None] if self._keys is None else resolved
        if any(weights is not None for weights in resolved.values()):
            self._emit_weights = True

    # Batches ----------------------------------------------------------------

    def batch_indices(self, index: int, epoch: int | None = None) -> np.ndarray:
        """The dataset indices of this shard's batch `index` in an epoch.

        Args:
            index: the batch index in `[0, len(self))`.
            epoch: defaults to the current epoch.

        Returns:
            An int64 array (read-only).
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch, low=0)
        index = self.layout.check_index(index)
        return shard_batch_indices(self.sampler, self.layout, index, epoch)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        index = self.layout.check_index(index)
        epoch = self.epoch
        indices = shard_batch_indices(self.sampler, self.layout, index, epoch)
        x = self._source.take(indices)
        labels = {key: target.take(indices) for key, target in self._targets.items()}
        y = self._structure(labels)
        targets = y
        if self._augment_mode is not None:
            x, targets = self._apply_augment(x, y, epoch, index)
            _check_augmented(x, indices.shape[0], self._augment)
            if targets is not y:
                _check_augmented(targets, indices.shape[0], self._augment)
        if not self._emit_weights:
            return x, targets
        returned: dict[Any, Any] = {}
        if targets is not y:
            returned = ({None: targets} if self._keys is None else
                        dict(zip(self._keys, targets.values(), strict=True))
                        if isinstance(targets, dict) else
                        dict(zip(self._keys, targets, strict=True)))
        weights = {key: target.batch_weights(indices, labels[key], returned.get(key))
                   for key, target in self._targets.items()}
        return x, targets, self._structure(weights)

    def _structure(self, values):
        """Per-output values in the form of `y`: one array, a dict or a tuple."""
        if self._keys is None:
            return values[None]
        if isinstance(self._keys[0], str):
            return {key: values[key] for key in self._keys}
        return tuple(values[key] for key in self._keys)

    def _apply_augment(self, x, y, epoch, index):
        """Returns (x, labels): `y` itself unless the augment returns labels."""
        augment = cast(Callable[..., Any], self._augment)  # None only without a mode
        if self._augment_mode == "layer":
            return _to_numpy(augment(x)), y
        kwargs = {}
        if self._augment_rng:
            kwargs["rng"] = np.random.default_rng([self.seed, epoch, index])
        if self._augment_mode != "xy":
            return _to_numpy(augment(x, **kwargs)), y
        out = augment(x, y, **kwargs)
        if not getattr(self._augment, "returns_labels", False):
            return _to_numpy(out), y
        if not isinstance(out, tuple) or len(out) != 2:
            raise invalid("augment", "a function with `returns_labels = True` that "
                          "returns a pair (x, y)", self._augment)
        return _to_numpy(out[0]), _to_numpy(out[1])

    def __repr__(self) -> str:
        return (f"BalancedBatchGenerator(sampler={self.sampler!r}, "
                f"batch_size={self.batch_size}, num_batches={len(self)}, "
                f"num_shards={self.num_shards}, shard_index={self.shard_index}, "
                f"epoch={self.epoch})")


class _EpochSync(keras.callbacks.Callback):
    """Sets a generator's epoch to `fit`'s epoch at the start of each epoch."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def on_epoch_begin(self, epoch, logs=None):
        self.generator.set_epoch(epoch)
