"""BalancedBatchGenerator with segmentation masks: weight maps, samplers, shards.

Oracles: NumPy lookups `w[mask]` and sklearn's compute_class_weight on the
flattened masks; `class_presence` + `RepeatFactorSampler` built by hand; a
float64 hand computation of the pixel-weighted loss `fit` reports.
"""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight

from kimbalance.data.generator import BalancedBatchGenerator
from kimbalance.data.samplers import RandomOverSampler, RepeatFactorSampler
from kimbalance.data.samplers.repeat_factor import class_presence

N, H, W, C = 24, 4, 5, 3


def _masks(n=N, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, H, W), dtype=np.int64)
    for i in range(n):
        if i % 4 == 0:                                  # class 1 in a quarter
            masks[i, :2, :2] = 1
        if i in (5, 17):                                # class 2 in two images
            masks[i, rng.integers(0, H), rng.integers(0, W)] = 2
    return masks


MASKS = _masks()
X = np.arange(N, dtype=np.float32)[:, None, None, None] * np.ones((1, H, W, 2),
                                                                    np.float32)


def _epoch(gen):
    return np.concatenate([gen.batch_indices(i) for i in range(len(gen))])


def test_id_masks_yield_masks_and_pixel_weight_maps():
    gen = BalancedBatchGenerator(X, MASKS, sampler="instance", batch_size=5,
                                 class_weight="balanced")
    want = compute_class_weight("balanced", classes=np.arange(C), y=MASKS.reshape(-1))
    np.testing.assert_allclose(gen.class_weight, want, rtol=1e-12)
    assert gen.num_classes == C
    for i in range(len(gen)):
        xb, yb, wb = gen[i]
        idx = gen.batch_indices(i)
        np.testing.assert_array_equal(xb[:, 0, 0, 0], idx)
        np.testing.assert_array_equal(yb, MASKS[idx])
        assert wb.shape == yb.shape and wb.dtype == np.float32
        np.testing.assert_array_equal(wb, want[MASKS[idx]].astype(np.float32))


@pytest.mark.parametrize("form", ["one_hot", "channel"])
def test_one_hot_and_channel_masks_give_the_same_weight_maps(form):
    y = np.eye(C, dtype=np.float32)[MASKS] if form == "one_hot" else MASKS[..., None]
    ref = BalancedBatchGenerator(X, MASKS, sampler="instance", batch_size=8,
                                 class_weight=[1.0, 2.0, 3.0])
    gen = BalancedBatchGenerator(X, y, sampler="instance", batch_size=8,
                                 class_weight=[1.0, 2.0, 3.0])
    xb, yb, wb = gen[1]
    np.testing.assert_array_equal(yb, y[gen.batch_indices(1)])
    np.testing.assert_array_equal(wb, ref[1][2])
    assert wb.shape == (8, H, W)


class _IncreasingReads:
    """An h5py-like on-disk array: slices and increasing index lists only."""

    def __init__(self, array):
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        self.reads = 0

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, np.ndarray):
            assert np.all(np.diff(key) > 0), "reads must be increasing"
            self.reads += 1
        return self.array[key]


def test_memmap_and_on_disk_masks_match_in_memory(tmp_path):
    path = tmp_path / "masks.npy"
    np.save(path, MASKS.astype(np.uint8))
    memmap = np.load(path, mmap_mode="r")
    on_disk = _IncreasingReads(MASKS.astype(np.uint8))
    ref = BalancedBatchGenerator(X, MASKS, sampler="repeat_factor", batch_size=7,
                                 class_weight="inverse", seed=3,
                                 sampler_kwargs={"threshold": 0.5})
    for masks in (memmap, on_disk):
        gen = BalancedBatchGenerator(X, masks, sampler="repeat_factor", batch_size=7,
                                     class_weight="inverse", seed=3,
                                     sampler_kwargs={"threshold": 0.5})
        np.testing.assert_array_equal(gen.class_weight, ref.class_weight)
        for i in range(len(gen)):
            for got, want in zip(gen[i], ref[i], strict=True):
                np.testing.assert_array_equal(got, want)
    assert on_disk.reads == len(ref)


def test_repeat_factor_sampler_uses_the_classes_each_mask_contains():
    presence = class_presence(MASKS, C)
    by_hand = RepeatFactorSampler(presence, threshold=0.5, seed=2)
    gen = BalancedBatchGenerator(X, MASKS, sampler="repeat_factor", seed=2,
                                 batch_size=6, sampler_kwargs={"threshold": 0.5})
    np.testing.assert_array_equal(gen.sampler.repeat_factors, by_hand.repeat_factors)
    np.testing.assert_array_equal(_epoch(gen), by_hand.indices(0))
    # Images with class 2 (2 of 24, f = 1/12) repeat sqrt(0.5 * 12) times.
    np.testing.assert_allclose(gen.sampler.class_repeat_factors[2], np.sqrt(6.0))
    # The hand-built sampler object is accepted as built on these masks.
    same = BalancedBatchGenerator(X, MASKS, sampler=by_hand, batch_size=6)
    np.testing.assert_array_equal(_epoch(same), _epoch(gen))


def test_one_label_samplers_take_sampling_labels():
    rarest = np.array([m.max() for m in MASKS])             # rarest class per image
    gen = BalancedBatchGenerator(X, MASKS, sampler="over", sampling_labels=rarest,
                                 batch_size=8, class_weight="balanced")
    counts = np.bincount(rarest[_epoch(gen)], minlength=C)
    assert counts.tolist() == [np.bincount(rarest).max()] * C
    xb, yb, wb = gen[0]
    assert yb.shape == (8, H, W) and wb.shape == (8, H, W)
    instance = BalancedBatchGenerator(X, MASKS, sampler="instance", batch_size=8)
    assert np.bincount(_epoch(instance), minlength=N).tolist() == [1] * N


def test_ignore_class_pixels_weigh_zero_and_are_not_counted():
    masks = MASKS.copy()
    masks[:, 0, 0] = 255
    gen = BalancedBatchGenerator(X, masks, sampler="instance", batch_size=N,
                                 class_weight="balanced", ignore_class=255)
    kept = masks[masks != 255]
    want = compute_class_weight("balanced", classes=np.arange(C), y=kept)
    np.testing.assert_allclose(gen.class_weight, want, rtol=1e-12)
    _, yb, wb = gen[0]
    assert np.all(wb[yb == 255] == 0)
    np.testing.assert_array_equal(wb[yb != 255], want[yb[yb != 255]].astype("float32"))


def test_weight_maps_follow_masks_returned_by_an_augment():
    def flip(x, y):
        return x[:, :, ::-1], y[:, :, ::-1]
    flip.returns_labels = True
    masks = MASKS.copy()
    masks[:, :, 0] = 2                                  # left column class 2
    gen = BalancedBatchGenerator(X, masks, sampler="instance", batch_size=4,
                                 augment=flip, class_weight=[1.0, 2.0, 5.0])
    _, yb, wb = gen[0]
    assert np.all(yb[:, :, -1] == 2)
    np.testing.assert_array_equal(wb, np.array([1.0, 2.0, 5.0], "float32")[yb])


def test_class_weight_none_later_yields_ones_of_the_map_shape():
    gen = BalancedBatchGenerator(X, MASKS, sampler="instance", batch_size=4,
                                 class_weight="balanced")
    gen.set_class_weight(None)
    _, _, wb = gen[0]
    assert wb.shape == (4, H, W) and np.all(wb == 1.0)


@pytest.mark.parametrize("sampler", ["repeat_factor", "instance"])
def test_shards_split_the_unsharded_epoch_with_masks(sampler):
    kwargs = {"threshold": 0.5} if sampler == "repeat_factor" else {}
    whole = BalancedBatchGenerator(X, MASKS, sampler=sampler, batch_size=9, seed=4,
                                   sampler_kwargs=kwargs, class_weight="balanced")
    shards = [BalancedBatchGenerator(X, MASKS, sampler=sampler, batch_size=3, seed=4,
                                     sampler_kwargs=kwargs, class_weight="balanced",
                                     num_shards=3, shard_index=s) for s in range(3)]
    assert {len(s) for s in shards} == {len(whole)}
    for step in range(len(whole) - 1):
        parts = [s.batch_indices(step) for s in shards]
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)),
                                      np.sort(whole.batch_indices(step)))
        for shard, idx in zip(shards, parts, strict=True):
            _, yb, wb = shard[step]
            np.testing.assert_array_equal(yb, MASKS[idx])
            np.testing.assert_array_equal(wb, whole.class_weight[MASKS[idx]]
                                          .astype("float32"))


def test_fit_with_pixel_weight_maps_equals_the_hand_weighted_loss():
    gen = BalancedBatchGenerator(X / N, MASKS, sampler="instance", batch_size=N,
                                 class_weight="balanced")
    model = keras.Sequential([keras.Input((H, W, 2)), keras.layers.Conv2D(C, 1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(gen, epochs=1, verbose=0)
    xb, yb, wb = gen[0]
    logits = keras.ops.convert_to_numpy(model(xb)).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    pixel = -np.take_along_axis(log_probs, yb[..., None], -1)[..., 0]
    np.testing.assert_allclose(history.history["loss"][0],
                               np.sum(wb * pixel) / yb.size, rtol=1e-5)
    assert abs(np.sum(wb * pixel) / yb.size - pixel.mean()) > 1e-3


@settings(max_examples=15)
@given(st.integers(2, 12), st.integers(1, 4), st.integers(2, 4), st.integers(1, 5),
       st.integers(1, 3), st.integers(0, 10**6))
def test_every_batch_weight_map_is_the_class_weight_of_its_pixels(
        n, h, c, batch_size, num_shards, seed):
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, c, size=(n, h, 3))
    class_w = rng.uniform(0.1, 4.0, size=c)
    x = np.arange(n, dtype=np.float32)[:, None]
    shards = [BalancedBatchGenerator(x, masks, sampler="repeat_factor", seed=seed,
                                     batch_size=batch_size, class_weight=class_w,
                                     num_classes=c, num_shards=num_shards,
                                     shard_index=s, sampler_kwargs={"threshold": 1.0})
              for s in range(num_shards)]
    seen = []
    for shard in shards:
        for i in range(len(shard)):
            xb, yb, wb = shard[i]
            np.testing.assert_array_equal(yb, masks[xb[:, 0].astype(int)])
            np.testing.assert_array_equal(wb, class_w[yb].astype(np.float32))
            seen.append(xb[:, 0].astype(int))
    # Every epoch position is yielded (plus at most the shard padding).
    epoch = shards[0].sampler.indices(0)
    got = np.bincount(np.concatenate(seen), minlength=n)
    want = np.bincount(epoch, minlength=n)
    assert np.all(got >= want)
    assert got.sum() - want.sum() < num_shards * batch_size


# Errors -----------------------------------------------------------------------


ERRORS = {
    "length": (lambda: BalancedBatchGenerator(X, MASKS[:20]),
               r"argument `y`. Expected 24 labels or masks, one per sample of x "
               r"\(len\(x\)=24; got 20\)"),
    "id_out_of_range": (lambda: BalancedBatchGenerator(X, MASKS, num_classes=2),
                        r"argument `y`. Expected class ids < num_classes=2 "
                        r"\(found 2\)"),
    "negative_id": (lambda: BalancedBatchGenerator(X, MASKS - 1,
                                                   sampler="instance"),
                    r"argument `y`. Expected class ids >= 0 \(found -1\)"),
    "one_label_sampler": (lambda: BalancedBatchGenerator(X, MASKS, sampler="over"),
                          r"argument `sampling_labels`. Expected one label per image "
                          r"for sampler='over' with segmentation masks.*"
                          r"Received: sampling_labels=None"),
    "sampling_labels_length": (lambda: BalancedBatchGenerator(
        X, MASKS, sampler="over", sampling_labels=[0, 1]),
        r"argument `sampling_labels`. Expected 24 labels, one per sample of x"),
    "other_sampler": (lambda: BalancedBatchGenerator(
        X, MASKS, sampler=RandomOverSampler(np.arange(N) % 2)),
        r"argument `sampler`. Expected a sampler built on the masks' image-level "
        r"labels"),
    "ignore_for_labels": (lambda: BalancedBatchGenerator(
        X, np.arange(N) % 2, ignore_class=255),
        r"argument `ignore_class`. Expected None for class labels"),
    "ignore_not_int": (lambda: BalancedBatchGenerator(X, MASKS, sampler="instance",
                                                      ignore_class="void"),
                       r"argument `ignore_class`. Expected None or an int class id"),
    "class_weight_length": (lambda: BalancedBatchGenerator(
        X, MASKS, sampler="instance", class_weight=[1.0, 2.0]),
        r"argument `class_weight`. Expected 3 weights \(one per class\)"),
    "sampling_target_single": (lambda: BalancedBatchGenerator(
        X, MASKS, sampler="instance", sampling_target="mask"),
        r"argument `sampling_target`. Expected None for a single target y"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_messages(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        call()


def _augment_returning(masks_fn):
    def augment(x, y):
        return x, masks_fn(y)
    augment.returns_labels = True
    return augment


@pytest.mark.parametrize("masks_fn,message", [
    (lambda y: y + 5, r"argument `augment`. Expected a function returning masks with "
                      r"class ids in \[0, 3\) \(found \[5"),
    (lambda y: y[:2], r"argument `augment`. Expected a function that keeps the batch "
                      r"size"),
])
def test_error_augment_returning_bad_masks(masks_fn, message):
    gen = BalancedBatchGenerator(X, MASKS, sampler="instance", batch_size=4,
                                 augment=_augment_returning(masks_fn),
                                 class_weight="balanced")
    with pytest.raises(ValueError, match=message):
        gen[0]


def test_error_augment_returning_one_hot_masks_of_another_width():
    y = np.eye(C, dtype=np.float32)[MASKS]
    gen = BalancedBatchGenerator(X, y, sampler="instance", batch_size=4,
                                 augment=_augment_returning(lambda m: m[..., :2]),
                                 class_weight="balanced")
    with pytest.raises(ValueError, match=r"argument `augment`. Expected a function "
                       r"returning one-hot masks of width 3; got shape \(4, 4, 5, 2\)"):
        gen[0]
