"""BalancedBatchGenerator: epochs, label forms, sources, shards, weights, fit."""

import concurrent.futures
import pickle

import keras
import numpy as np
import pytest

from kimbalance.data.generator import BalancedBatchGenerator
from kimbalance.data.samplers import (
    ClassBalancedSampler,
    InstanceSampler,
    RandomOverSampler,
    RandomUnderSampler,
)
from kimbalance.weights import class_weights, sample_weights

Y = np.repeat([0, 1], [90, 10])
X = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
Y3 = np.repeat([0, 1, 2], [70, 20, 10])


def epoch_indices(gen):
    return np.concatenate([gen.batch_indices(i) for i in range(len(gen))])


# Epochs and batches -------------------------------------------------------------


def test_over_epoch_covers_every_sample_with_a_short_last_batch():
    gen = BalancedBatchGenerator(X, Y, sampler="over", batch_size=32)
    sizes = [len(gen[i][1]) for i in range(len(gen))]
    assert sizes == [32] * 5 + [20]
    indices = epoch_indices(gen)
    np.testing.assert_array_equal(indices, gen.sampler.indices(0))
    assert np.all(np.bincount(indices, minlength=100) >= 1)
    x_batch, y_batch = gen[2]
    np.testing.assert_array_equal(x_batch[:, 0], gen.batch_indices(2))
    np.testing.assert_array_equal(y_batch, Y[gen.batch_indices(2)])
    labels = np.concatenate([gen[i][1] for i in range(len(gen))])
    assert np.bincount(labels).tolist() == [90, 90]


def test_drop_remainder_drops_only_the_incomplete_batch():
    gen = BalancedBatchGenerator(X, Y, batch_size=32, drop_remainder=True)
    assert len(gen) == 5
    assert all(len(gen[i][1]) == 32 for i in range(5))
    with pytest.raises(IndexError):
        gen[5]


def test_epochs_resample_with_constant_length():
    gen = BalancedBatchGenerator(X, Y, sampler="under", batch_size=8, seed=1)
    first = [gen[i][1].tolist() for i in range(len(gen))]
    first_indices = epoch_indices(gen)
    gen.on_epoch_end()
    assert gen.epoch == 1 and len(gen) == len(first)
    assert not np.array_equal(epoch_indices(gen), first_indices)
    gen.set_epoch(0)
    assert [gen[i][1].tolist() for i in range(len(gen))] == first


@pytest.mark.parametrize("form", ["sparse_int32", "column", "one_hot", "multi_hot"])
def test_labels_come_out_in_the_given_form(form):
    if form == "sparse_int32":
        y = Y3.astype(np.int32)
    elif form == "column":
        y = Y3[:, None].astype(np.int64)
    elif form == "one_hot":
        y = np.eye(3, dtype=np.float32)[Y3]
    else:
        y = np.eye(3, dtype=np.float32)[Y3]
        y[::7, 2] = 1.0
    sampler = "multilabel" if form == "multi_hot" else "over"
    gen = BalancedBatchGenerator(X, y, sampler=sampler, batch_size=16)
    _, y_batch = gen[1]
    assert y_batch.dtype == y.dtype and y_batch.shape[1:] == y.shape[1:]
    np.testing.assert_array_equal(y_batch, y[gen.batch_indices(1)])


def test_same_batches_from_threads_and_after_pickling():
    gen = BalancedBatchGenerator(X, Y3, sampler="class_balanced", batch_size=9,
                                 class_weight="balanced", seed=5)
    gen.set_epoch(2)
    expected = [gen[i] for i in range(len(gen))]
    order = list(range(len(gen)))[::-1]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        fetched = dict(zip(order, pool.map(gen.__getitem__, order), strict=True))
    clone = pickle.loads(pickle.dumps(gen))
    for i, batch in enumerate(expected):
        for part, threaded, unpickled in zip(batch, fetched[i], clone[i], strict=True):
            np.testing.assert_array_equal(threaded, part)
            np.testing.assert_array_equal(unpickled, part)


# Sources ----------------------------------------------------------------------


class RecordingArray:
    """An on-disk-like array (shape, dtype, fancy indexing) that logs reads."""

    def __init__(self, array):
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        self.reads = []

    def __getitem__(self, indices):
        self.reads.append(np.asarray(indices).copy())
        return self.array[indices]


def test_memmap_and_disk_arrays_read_sorted_and_return_batch_order(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, X)
    memmap = np.load(path, mmap_mode="r")
    recorder = RecordingArray(X)
    reference = BalancedBatchGenerator(X, Y, batch_size=32, seed=3)
    for source in (memmap, recorder):
        gen = BalancedBatchGenerator(source, Y, batch_size=32, seed=3)
        for i in range(len(gen)):
            x_batch, _ = gen[i]
            assert type(x_batch) is np.ndarray
            np.testing.assert_array_equal(x_batch, reference[i][0])
    for read in recorder.reads:
        assert np.all(np.diff(read) > 0)  # increasing, de-duplicated


def test_dict_and_tuple_inputs():
    inputs = {"a": X, "b": X[:, :2] * 2}
    gen = BalancedBatchGenerator(inputs, Y, batch_size=16)
    x_batch, _ = gen[0]
    rows = gen.batch_indices(0)
    assert set(x_batch) == {"a", "b"}
    np.testing.assert_array_equal(x_batch["b"], inputs["b"][rows])
    x_tuple, _ = BalancedBatchGenerator((X, X[:, :1]), Y, batch_size=16)[0]
    np.testing.assert_array_equal(x_tuple[1], X[rows, :1])


class ItemSource:
    """A TFDS-like data source: dict items, a batch read, a length."""

    def __init__(self, n):
        self.n, self.batch_reads = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": np.full((2, 2), i, np.float32), "label": int(Y[i])}

    def __getitems__(self, keys):
        self.batch_reads.append(list(keys))
        return [self[k] for k in keys]


def test_random_access_source_with_x_key():
    source = ItemSource(100)
    gen = BalancedBatchGenerator(source, Y, batch_size=16, x_key="image", seed=2)
    x_batch, _ = gen[3]
    rows = gen.batch_indices(3)
    assert x_batch.shape == (16, 2, 2)
    np.testing.assert_array_equal(x_batch[:, 0, 0], rows)
    assert source.batch_reads[-1] == sorted(set(rows.tolist()))
    by_callable = BalancedBatchGenerator(source, Y, batch_size=16, seed=2,
                                         x_key=lambda item: item["image"][0])
    np.testing.assert_array_equal(by_callable[3][0], x_batch[:, 0])
    as_dict = BalancedBatchGenerator(source, Y, batch_size=16, seed=2,
                                     x_key=["image"])[3][0]
    np.testing.assert_array_equal(as_dict["image"], x_batch)
    plain_list = [np.float32(i) for i in range(100)]
    listed = BalancedBatchGenerator(plain_list, Y, batch_size=16, seed=2)[3][0]
    np.testing.assert_array_equal(listed, rows.astype(np.float32))


# Shards -----------------------------------------------------------------------


def test_shards_split_the_unsharded_epoch():
    sampler = RandomOverSampler(Y, seed=7)  # 180 samples per epoch
    whole = BalancedBatchGenerator(X, Y, sampler=sampler, batch_size=24)
    shards = [BalancedBatchGenerator(X, Y, sampler=sampler, batch_size=8,
                                     num_shards=3, shard_index=s) for s in range(3)]
    assert {len(s) for s in shards} == {len(whole)} and whole.global_batch_size == 24
    for step in range(len(whole)):
        parts = [s.batch_indices(step) for s in shards]
        global_batch = whole.batch_indices(step)
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)),
                                      np.sort(global_batch))
        # Each shard's batch is stratified: floor or ceil of the global count / 3.
        global_counts = np.bincount(Y[global_batch], minlength=2)
        for part in parts:
            counts = np.bincount(Y[part], minlength=2)
            assert np.all(counts >= global_counts // 3), (counts, global_counts)
            assert np.all(counts <= -(-global_counts // 3)), (counts, global_counts)
    assert [len(s.batch_indices(len(whole) - 1)) for s in shards] == [4, 4, 4]


def test_uneven_tail_is_padded_from_the_epoch_start():
    sampler = RandomOverSampler(Y, seed=7)  # 180 = 6 * 28 + 12
    shards = [BalancedBatchGenerator(X, Y, sampler=sampler, batch_size=4,
                                     num_shards=7, shard_index=s) for s in range(7)]
    last = [s.batch_indices(6) for s in shards]
    assert [len(b) for b in last] == [2] * 7
    epoch = sampler.indices(0)
    np.testing.assert_array_equal(np.sort(np.concatenate(last)),
                                  np.sort(np.concatenate([epoch[168:], epoch[:2]])))


def test_sharded_class_balanced_batches_are_each_balanced():
    shards = [BalancedBatchGenerator(X, Y3, sampler="class_balanced", batch_size=6,
                                     num_shards=2, shard_index=s, seed=1)
              for s in range(2)]
    assert len(shards[0]) == len(shards[1]) == 9  # 102 samples = 17 blocks of 6
    for shard in shards:
        for i in range(len(shard)):
            assert np.bincount(shard[i][1], minlength=3).tolist() == [2, 2, 2]


# Weights ----------------------------------------------------------------------


def test_class_weight_forms():
    expected = class_weights(np.bincount(Y3), "balanced")
    for weight in ("balanced", dict(enumerate(expected)), list(expected)):
        gen = BalancedBatchGenerator(X, Y3, batch_size=16, class_weight=weight)
        _, y_batch, w_batch = gen[0]
        assert w_batch.dtype == np.float32
        np.testing.assert_allclose(w_batch, expected[y_batch], rtol=1e-6)


def test_multi_hot_weights_follow_sample_weights():
    y = np.eye(3, dtype=np.int32)[Y3]
    y[::5, 1] = 1
    gen = BalancedBatchGenerator(X, y, sampler="multilabel", batch_size=16,
                                 class_weight=[1.0, 2.0, 4.0])
    _, y_batch, w_batch = gen[1]
    np.testing.assert_allclose(w_batch, sample_weights(y_batch, [1.0, 2.0, 4.0]),
                               rtol=1e-6)


def test_set_class_weight_takes_effect_and_keeps_the_structure():
    plain = BalancedBatchGenerator(X, Y, batch_size=16)
    assert len(plain[0]) == 2
    gen = BalancedBatchGenerator(X, Y, batch_size=16, class_weight="none")
    assert np.all(gen[0][2] == 1.0)
    gen.set_class_weight([1.0, 9.0])
    _, y_batch, w_batch = gen[0]
    np.testing.assert_array_equal(w_batch, np.where(y_batch == 1, 9.0, 1.0))
    gen.set_class_weight(None)
    batch = gen[0]
    assert len(batch) == 3 and np.all(batch[2] == 1.0)


# Augmentation -----------------------------------------------------------------


def test_augment_callables_and_layers():
    plus_one = BalancedBatchGenerator(X, Y, batch_size=16, augment=lambda x: x + 1)
    rows = plus_one.batch_indices(0)
    np.testing.assert_array_equal(plus_one[0][0][:, 0], rows + 1)

    def minority_only(x, y):
        return np.where((y == 1)[:, None], -x, x)

    flipped = BalancedBatchGenerator(X, Y, batch_size=16, augment=minority_only)
    x_batch, y_batch = flipped[0]
    np.testing.assert_array_equal(x_batch[:, 0], np.where(y_batch == 1, -rows, rows))

    def noisy(x, rng):
        return x + rng.normal(size=x.shape).astype(np.float32)

    noisy_gen = BalancedBatchGenerator(X, Y, batch_size=16, augment=noisy)
    np.testing.assert_array_equal(noisy_gen[1][0], noisy_gen[1][0])
    assert not np.array_equal(noisy_gen[1][0], noisy_gen[2][0])

    layer_gen = BalancedBatchGenerator(X, Y, batch_size=16,
                                       augment=keras.layers.Rescaling(2.0))
    x_layer, _ = layer_gen[0]
    assert isinstance(x_layer, np.ndarray)
    np.testing.assert_allclose(x_layer[:, 0], 2.0 * rows)


# model.fit on every backend ------------------------------------------------------


def dense_model(num_classes, input_dim=3):
    inputs = keras.Input((input_dim,))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(inputs)
    return keras.Model(inputs, outputs)


class SwitchWeights(keras.callbacks.Callback):
    """Switches the weights at epoch 1 (as DRW) and logs the generator's epoch."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.generator.set_class_weight([1.0, 5.0, 10.0])

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(self.generator.epoch)


def test_fit_with_sample_weights_a_schedule_and_workers():
    x = (X / 100.0).astype(np.float32)
    gen = BalancedBatchGenerator(x, Y3, sampler="progressive", batch_size=32,
                                 class_weight="none", workers=2,
                                 sampler_kwargs={"num_epochs": 2})
    model = dense_model(3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    switch = SwitchWeights(gen)
    history = model.fit(gen, epochs=2, verbose=0,
                        callbacks=[gen.sync_callback(), switch])
    assert gen.epoch == 2
    assert switch.seen == [0] * len(gen) + [1] * len(gen)
    np.testing.assert_array_equal(gen.class_weight, [1.0, 5.0, 10.0])
    assert np.all(np.isfinite(history.history["loss"]))


def test_fit_dict_input_model_with_one_hot_labels():
    inputs = {"a": (X / 100.0).astype(np.float32),
              "b": np.ones((100, 2), np.float32)}
    y = np.eye(3, dtype=np.float32)[Y3]
    gen = BalancedBatchGenerator(inputs, y, sampler="class_balanced", batch_size=12)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    model = keras.Model({"a": a, "b": b},
                        keras.layers.Dense(3, activation="softmax")(merged))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    history = model.fit(gen, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# Errors -----------------------------------------------------------------------


def test_error_length_mismatch():
    with pytest.raises(ValueError, match=r"argument `y`. Expected 100 labels"):
        BalancedBatchGenerator(X, Y[:90])


def test_error_labels_out_of_range():
    with pytest.raises(ValueError, match="Expected class ids < num_classes=2"):
        BalancedBatchGenerator(X, Y3, num_classes=2)


def test_error_negative_labels():
    with pytest.raises(ValueError, match="argument `y`. Expected class ids >= 0"):
        BalancedBatchGenerator(X, Y - 1)


def test_error_nan_labels():
    y = Y.astype(np.float32)
    y[3] = np.nan
    with pytest.raises(ValueError, match="argument `y`. Expected finite labels"):
        BalancedBatchGenerator(X, y)


def test_error_batch_size():
    with pytest.raises(ValueError, match="argument `batch_size`.*Received: "
                       "batch_size=0"):
        BalancedBatchGenerator(X, Y, batch_size=0)


def test_error_shard_index():
    with pytest.raises(ValueError, match=r"`shard_index`. Expected an int in \[0, "
                       r"num_shards=2\). Received: shard_index=2"):
        BalancedBatchGenerator(X, Y, num_shards=2, shard_index=2)


def test_error_empty_class_over_sampled():
    with pytest.raises(ValueError, match="an empty class cannot be over-sampled"):
        BalancedBatchGenerator(X, Y, num_classes=3,
                               sampler_kwargs={"sampling_strategy": {2: 10}})


def test_error_unknown_sampler():
    with pytest.raises(ValueError, match="argument `sampler`.*Received: "
                       "sampler='smote'"):
        BalancedBatchGenerator(X, Y, sampler="smote")


def test_error_class_weight_length():
    with pytest.raises(ValueError, match=r"argument `class_weight`. Expected 2 "
                       r"weights.*Received: class_weight=\[1.0, 2.0, 3.0\]"):
        BalancedBatchGenerator(X, Y, class_weight=[1.0, 2.0, 3.0])


def test_error_sampler_built_on_other_data():
    with pytest.raises(ValueError, match="a sampler built on the 100 samples"):
        BalancedBatchGenerator(X, Y, sampler=RandomOverSampler(Y3[:50]))


def test_error_batch_size_not_a_multiple_of_the_block():
    sampler = ClassBalancedSampler(Y, batch_size=4)
    with pytest.raises(ValueError, match="a multiple of the sampler's block size 4"):
        BalancedBatchGenerator(X, Y, sampler=sampler, batch_size=6)


def test_error_multi_hot_with_a_single_label_sampler():
    y = np.ones((100, 2), np.int32)
    with pytest.raises(ValueError,
                       match="'instance' or 'multilabel' or 'repeat_factor' for multi"):
        BalancedBatchGenerator(X, y, sampler="over")


def test_error_augment_not_callable():
    with pytest.raises(ValueError, match="argument `augment`"):
        BalancedBatchGenerator(X, Y, augment="flip")


def test_error_bad_x():
    with pytest.raises(ValueError, match="argument `x`"):
        BalancedBatchGenerator(42, Y)


# Class-partitioned storage without a label array --------------------------------


@pytest.mark.parametrize("sampler_cls", [RandomOverSampler, ClassBalancedSampler])
@pytest.mark.parametrize("num_shards", [1, 2])
def test_labels_from_a_partitioned_sampler_match_the_label_array(sampler_cls,
                                                                num_shards):
    counts = [40, 7, 13]
    y_full = np.repeat([0, 1, 2], counts)
    x = np.arange(len(y_full), dtype=np.float32)[:, None]
    kwargs = {"batch_size": 6} if sampler_cls is ClassBalancedSampler else {}
    for shard in range(num_shards):
        def make(y, sampler_cls=sampler_cls, kwargs=kwargs, shard=shard):
            sampler = sampler_cls.from_counts(counts, seed=4, **kwargs)
            return BalancedBatchGenerator(x, y, sampler=sampler, batch_size=6,
                                          class_weight="balanced",
                                          num_shards=num_shards, shard_index=shard)
        free, labelled = make(None), make(y_full)
        assert len(free) == len(labelled) and free.num_classes == 3
        for epoch in (0, 3):
            free.set_epoch(epoch)
            labelled.set_epoch(epoch)
            for i in range(len(free)):
                (xa, ya, wa), (xb, yb, wb) = free[i], labelled[i]
                np.testing.assert_array_equal(xa, xb)
                np.testing.assert_array_equal(ya, yb)
                np.testing.assert_allclose(wa, wb)
                assert ya.dtype == np.int64 and wa.dtype == np.float32


def test_partitioned_generator_beyond_memory_and_in_fit():
    """3e9 positions: no per-sample array; x is a lazy item source."""

    class Lazy:
        def __len__(self):
            return 3_000_000_005

        def __getitem__(self, i):
            return np.full((2,), float(i >= 3_000_000_000), np.float32)

    under = RandomUnderSampler.from_counts([3_000_000_000, 5], seed=0)
    gen = BalancedBatchGenerator(Lazy(), None, sampler=under, batch_size=5)
    x_batch, y_batch = gen[0]
    np.testing.assert_array_equal(x_batch[:, 0], y_batch.astype(np.float32))
    labels = np.concatenate([gen[i][1] for i in range(len(gen))])
    assert np.bincount(labels).tolist() == [5, 5]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(gen, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_partitioned_generator_errors():
    x = np.zeros((20, 2), np.float32)
    y = np.repeat([0, 1], [15, 5])
    with pytest.raises(ValueError, match=r"argument `y`. Expected the labels, or "
                                         r"y=None with a class-partitioned sampler"):
        BalancedBatchGenerator(x, None, sampler="over")
    with pytest.raises(ValueError, match=r"argument `y`.*class-partitioned.*"
                                         r"Received: y=None"):
        BalancedBatchGenerator(x, None, sampler=RandomOverSampler(y))
    with pytest.raises(ValueError, match=r"argument `num_classes`. Expected 2"):
        BalancedBatchGenerator(x, None, sampler=RandomOverSampler.from_counts([15, 5]),
                               num_classes=3)
    with pytest.raises(ValueError, match=r"argument `sampler`. Expected a sampler "
                                         r"built on the 20 samples"):
        BalancedBatchGenerator(x, None, sampler=RandomOverSampler.from_counts([15, 6]))


# Data that does not belong together ------------------------------------------------


def test_error_sampler_built_on_other_labels_of_the_same_length():
    shuffled = np.random.default_rng(0).permutation(Y3)
    with pytest.raises(ValueError, match="`sampler`. Expected a sampler built on "
                                         "these labels `y`"):
        BalancedBatchGenerator(X, Y3, sampler=RandomOverSampler(shuffled))
    # The same labels in another form are accepted.
    gen = BalancedBatchGenerator(X, np.eye(3)[Y3], sampler=RandomOverSampler(Y3))
    assert len(gen) > 0


def test_error_partitioned_sampler_with_unsorted_labels():
    sampler = RandomOverSampler.from_counts([70, 20, 10])
    with pytest.raises(ValueError, match="`sampler`. Expected a sampler built on "
                                         "these labels"):
        BalancedBatchGenerator(X, Y3[::-1], sampler=sampler)
    assert len(BalancedBatchGenerator(X, Y3, sampler=sampler)) > 0


def test_error_augment_that_changes_the_batch_size():
    gen = BalancedBatchGenerator(X, Y, batch_size=16, augment=lambda x: x[:8])
    with pytest.raises(ValueError, match=r"`augment`. Expected a function that keeps "
                                         r"the batch size \(the batch has 16 "
                                         r"samples; augment returned leading "
                                         r"dimensions \[8\]\)"):
        gen[0]
    doubled = BalancedBatchGenerator({"a": X, "b": X}, Y, batch_size=16,
                                     augment=lambda x: {"a": x["a"],
                                                        "b": np.tile(x["b"], (2, 1))})
    with pytest.raises(ValueError, match=r"`augment`.*dimensions \[16, 32\]"):
        doubled[0]


@pytest.mark.parametrize("x, message", [
    ("abcd", "Received: x='abcd'"),
    (np.float32(3.0), r"Received: x=(np.float32\()?3.0"),
    (np.array(3.0), "Received: x=3.0"),
    (None, "Received: x=None"),
    (7, "Received: x=7"),
    ({"a": X, "b": X[:50]}, r"arrays of one length; got lengths \{'a': 100, "
                            r"'b': 50\}"),
    ({"a": X, "b": "text"}, "whose values are arrays"),
])
def test_error_x_that_is_not_data(x, message):
    with pytest.raises(ValueError, match="Invalid value for argument `x`.*" + message):
        BalancedBatchGenerator(x, Y)


@pytest.mark.parametrize("index, error, message", [
    (1.0, TypeError, "`index`. Expected an int batch index.*Received: index=1.0"),
    ("1", TypeError, "Received: index='1'"),
    (None, TypeError, "Received: index=None"),
    (99, IndexError, r"Expected a batch index in \[0, 6\).*Received: index=99"),
])
def test_error_batch_index_types(index, error, message):
    gen = BalancedBatchGenerator(X, Y, batch_size=32)
    with pytest.raises(error, match=message):
        gen[index]
    with pytest.raises(error, match=message):
        gen.batch_indices(index)


def test_numpy_and_negative_batch_indices():
    gen = BalancedBatchGenerator(X, Y, batch_size=32)
    np.testing.assert_array_equal(gen[np.int64(1)][0], gen[1][0])
    np.testing.assert_array_equal(gen[-1][0], gen[len(gen) - 1][0])


# Defect 2: multi-hot InstanceSampler is not class-partitioned ------------------------


def test_label_free_generator_refuses_a_multi_hot_instance_sampler():
    y = np.eye(3, dtype=np.int32)[Y3]
    y[::3, 0] = 1
    sampler = InstanceSampler(y, seed=0)
    with pytest.raises(ValueError, match=r"argument `y`.*class-partitioned.*"
                                         r"Received: y=None"):
        BalancedBatchGenerator(X, None, sampler=sampler)
    gen = BalancedBatchGenerator(X, y, sampler=sampler, batch_size=10)
    _, y_batch = gen[0]
    np.testing.assert_array_equal(y_batch, y[gen.batch_indices(0)])


def test_sampler_kwargs_are_checked_against_the_sampler():
    with pytest.raises(ValueError, match=r"`sampler_kwargs`. Expected keyword "
                                         r"arguments of RandomUnderSampler"):
        BalancedBatchGenerator(X, Y, sampler="under", sampler_kwargs={"power": 2.0})
    gen = BalancedBatchGenerator(X, Y3, sampler="class_balanced", batch_size=6)
    assert gen.sampler.block_size == 6  # the generator's batch, passed as context


def test_error_sampler_kwargs_that_are_generator_arguments():
    with pytest.raises(ValueError, match=r"`sampler_kwargs`. Expected the sampler's "
                                         r"own keyword arguments \(\['num_classes'\] "
                                         r"are the generator's arguments"):
        BalancedBatchGenerator(X, Y, sampler_kwargs={"num_classes": 3})
