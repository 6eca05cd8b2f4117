"""BalancedBatchGenerator with multi-output targets (dict or tuple `y`).

Oracles: NumPy lookups of the per-output class weights; a float64 hand
computation of the two-head loss `fit` reports for one batch.
"""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance import callbacks
from kimbalance.data.generator import BalancedBatchGenerator
from kimbalance.weights import class_counts, class_weights

N = 40
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, 4)).astype(np.float32)
YA = np.repeat([0, 1, 2], [28, 8, 4])                       # the softmax head
YB = (np.arange(N) % 5 == 0).astype(np.float32)[:, None]    # the binary head, (N, 1)


def _epoch(gen):
    return np.concatenate([gen.batch_indices(i) for i in range(len(gen))])


def test_dict_targets_sampler_on_one_output_weights_on_another():
    gen = BalancedBatchGenerator(X, {"head_a": YA, "head_b": YB},
                                 sampling_target="head_b", sampler="over",
                                 class_weight={"head_a": "balanced", "head_b": None},
                                 batch_size=8)
    assert gen.sampling_target == "head_b" and gen.num_classes == {"head_a": 3,
                                                                   "head_b": 2}
    # The sampler balances head_b's classes (32 negatives, 8 positives).
    assert np.bincount(YB[_epoch(gen), 0].astype(int)).tolist() == [32, 32]
    want_a = class_weights(class_counts(YA), "balanced")
    np.testing.assert_allclose(gen.class_weight["head_a"], want_a)
    assert gen.class_weight["head_b"] is None
    xb, yb, wb = gen[0]
    idx = gen.batch_indices(0)
    assert set(yb) == set(wb) == {"head_a", "head_b"}
    np.testing.assert_array_equal(yb["head_a"], YA[idx])
    np.testing.assert_array_equal(yb["head_b"], YB[idx])
    np.testing.assert_array_equal(wb["head_a"], want_a[YA[idx]].astype(np.float32))
    np.testing.assert_array_equal(wb["head_b"], np.ones(8, np.float32))


def test_tuple_targets_with_an_int_sampling_target_and_tuple_weights():
    gen = BalancedBatchGenerator(X, (YA, YB), sampling_target=0, sampler="under",
                                 class_weight=(None, [1.0, 4.0]), batch_size=6)
    assert np.bincount(YA[_epoch(gen)]).tolist() == [4, 4, 4]
    xb, yb, wb = gen[0]
    idx = gen.batch_indices(0)
    assert isinstance(yb, tuple) and isinstance(wb, tuple)
    np.testing.assert_array_equal(yb[0], YA[idx])
    np.testing.assert_array_equal(wb[0], np.ones(6, np.float32))
    np.testing.assert_array_equal(wb[1], np.where(YB[idx, 0] == 1, 4.0, 1.0))
    # A dict {index: weights} is the same as the tuple.
    same = BalancedBatchGenerator(X, (YA, YB), sampling_target=0, sampler="under",
                                  class_weight={1: [1.0, 4.0]}, batch_size=6)
    for got, want in zip(same[0][2], wb, strict=True):
        np.testing.assert_array_equal(got, want)


def test_mask_and_label_outputs_and_no_weights():
    masks = np.zeros((N, 3, 3), dtype=np.int32)
    masks[YA == 2, 1, 1] = 2
    masks[YA == 1, 0, :] = 1
    gen = BalancedBatchGenerator(X, {"seg": masks, "cls": YA}, sampling_target="seg",
                                 sampler="repeat_factor", batch_size=5,
                                 class_weight={"seg": [1.0, 2.0, 3.0]})
    xb, yb, wb = gen[0]
    assert wb["seg"].shape == (5, 3, 3) and wb["cls"].shape == (5,)
    np.testing.assert_array_equal(wb["seg"], np.array([1.0, 2.0, 3.0],
                                                      np.float32)[yb["seg"]])
    plain = BalancedBatchGenerator(X, {"a": YA, "b": YB}, sampling_target="a",
                                   batch_size=5)
    assert len(plain[0]) == 2
    plain.set_class_weight({"b": "balanced"})
    _, _, wb = plain[0]
    assert np.all(wb["a"] == 1.0) and wb["b"].shape == (5,)


def _two_head_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, activation="tanh")(inputs)
    head_a = keras.layers.Dense(3, activation="softmax", name="head_a")(hidden)
    head_b = keras.layers.Dense(1, activation="sigmoid", name="head_b")(hidden)
    return keras.Model(inputs, {"head_a": head_a, "head_b": head_b})


def _hand_loss(model, xb, ya, yb, wa, wb):
    out = model(xb)
    pa = keras.ops.convert_to_numpy(out["head_a"]).astype(np.float64)
    pb = keras.ops.convert_to_numpy(out["head_b"]).astype(np.float64)[:, 0]
    eps = keras.config.epsilon()
    pa = np.clip(pa, eps, 1 - eps)
    pb = np.clip(pb, eps, 1 - eps)
    la = -np.log(pa[np.arange(len(ya)), ya])
    t = yb[:, 0]
    lb = -(t * np.log(pb) + (1 - t) * np.log(1 - pb))
    return np.mean(wa * la) + np.mean(wb * lb)


@pytest.mark.parametrize("structure", ["dict", "tuple"])
def test_fit_two_head_model_applies_weights_per_head(structure):
    weights_a, weights_b = [0.5, 2.0, 6.0], [1.0, 3.0]
    if structure == "dict":
        model = _two_head_model()
        y = {"head_a": YA, "head_b": YB}
        class_weight = {"head_a": weights_a, "head_b": weights_b}
        loss = {"head_a": "sparse_categorical_crossentropy",
                "head_b": "binary_crossentropy"}
        gen = BalancedBatchGenerator(X, y, sampling_target="head_a", sampler="instance",
                                     class_weight=class_weight, batch_size=N)
    else:
        base = _two_head_model()
        model = keras.Model(base.inputs, list(base.outputs))
        loss = ["sparse_categorical_crossentropy", "binary_crossentropy"]
        gen = BalancedBatchGenerator(X, (YA, YB), sampling_target=0, sampler="instance",
                                     class_weight=(weights_a, weights_b), batch_size=N)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    history = model.fit(gen, epochs=1, verbose=0)
    xb, yb, wb = gen[0]
    if structure == "tuple":
        yb = {"head_a": yb[0], "head_b": yb[1]}
        wb = {"head_a": wb[0], "head_b": wb[1]}
        model = _as_dict_model(model)
    want = _hand_loss(model, xb, yb["head_a"], yb["head_b"], wb["head_a"],
                      wb["head_b"])
    np.testing.assert_allclose(history.history["loss"][0], want, rtol=1e-5)
    unweighted = _hand_loss(model, xb, yb["head_a"], yb["head_b"], 1.0, 1.0)
    assert abs(want - unweighted) > 1e-3


def _as_dict_model(model):
    outputs = model.outputs
    return keras.Model(model.inputs, {"head_a": outputs[0], "head_b": outputs[1]})


def test_fit_segmentation_and_classification_heads_with_pixel_weights():
    """A mask head weighted per pixel next to an unweighted label head."""
    rng = np.random.default_rng(2)
    images = rng.normal(size=(16, 4, 4, 2)).astype(np.float32)
    masks = np.zeros((16, 4, 4), dtype=np.int32)
    masks[:4, :2, :2] = 1
    labels = (masks.max(axis=(1, 2)) > 0).astype(np.int32)
    inputs = keras.Input((4, 4, 2))
    seg = keras.layers.Conv2D(2, 1, name="seg")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    cls = keras.layers.Dense(2, name="cls")(pooled)
    model = keras.Model(inputs, {"seg": seg, "cls": cls})
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss={"seg": ce, "cls": ce})
    gen = BalancedBatchGenerator(images, {"seg": masks, "cls": labels},
                                 sampling_target="seg", sampler="instance",
                                 class_weight={"seg": "balanced"}, batch_size=16)
    history = model.fit(gen, epochs=1, verbose=0)
    xb, yb, wb = gen[0]
    out = model(xb)

    def ce_np(logits, ids):
        logits = keras.ops.convert_to_numpy(logits).astype(np.float64)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.take_along_axis(log_probs, ids[..., None].astype(int), -1)[..., 0]

    want = (np.mean(wb["seg"] * ce_np(out["seg"], yb["seg"]))
            + np.mean(ce_np(out["cls"], yb["cls"])))
    np.testing.assert_allclose(history.history["loss"][0], want, rtol=1e-5)


def test_shards_split_the_unsharded_epoch_with_two_outputs():
    y = {"head_a": YA, "head_b": YB}
    whole = BalancedBatchGenerator(X, y, sampling_target="head_a", batch_size=12,
                                   class_weight={"head_b": "balanced"}, seed=5)
    shards = [BalancedBatchGenerator(X, y, sampling_target="head_a", batch_size=4,
                                     class_weight={"head_b": "balanced"}, seed=5,
                                     num_shards=3, shard_index=s) for s in range(3)]
    assert {len(s) for s in shards} == {len(whole)}
    for step in range(len(whole) - 1):
        parts = [s.batch_indices(step) for s in shards]
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)),
                                      np.sort(whole.batch_indices(step)))
        # Stratified by the sampling target's classes: floor or ceil of g / 3.
        global_counts = np.bincount(YA[whole.batch_indices(step)], minlength=3)
        for shard, idx in zip(shards, parts, strict=True):
            counts = np.bincount(YA[idx], minlength=3)
            assert np.all(np.abs(counts - global_counts / 3) < 1)
            _, yb, wb = shard[step]
            np.testing.assert_array_equal(yb["head_b"], YB[idx])
            np.testing.assert_array_equal(
                wb["head_b"], whole.class_weight["head_b"][YB[idx, 0].astype(int)]
                .astype(np.float32))


@settings(max_examples=15)
@given(st.integers(0, 10**6), st.sampled_from(["over", "under", "instance"]),
       st.integers(1, 9))
def test_weights_of_every_output_follow_its_own_labels(seed, sampler, batch_size):
    rng = np.random.default_rng(seed)
    ya = rng.integers(0, 3, size=N)
    ya[:3] = [0, 1, 2]
    yb = rng.integers(0, 2, size=N)
    yb[:2] = [0, 1]
    wa, wb_ = rng.uniform(0.1, 5, size=3), rng.uniform(0.1, 5, size=2)
    gen = BalancedBatchGenerator(np.arange(N)[:, None], {"a": ya, "b": yb},
                                 sampling_target="b", sampler=sampler, seed=seed,
                                 class_weight={"a": wa, "b": wb_},
                                 batch_size=batch_size)
    epoch = []
    for i in range(len(gen)):
        xb, yd, wd = gen[i]
        idx = xb[:, 0]
        np.testing.assert_array_equal(yd["a"], ya[idx])
        np.testing.assert_array_equal(wd["a"], wa[ya[idx]].astype(np.float32))
        np.testing.assert_array_equal(wd["b"], wb_[yb[idx]].astype(np.float32))
        epoch.append(idx)
    counts = np.bincount(yb[np.concatenate(epoch)], minlength=2)
    if sampler != "instance":
        assert counts[0] == counts[1]           # the sampler balanced output "b"


# Errors -----------------------------------------------------------------------


ERRORS = {
    "unknown_sampling_target": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}, sampling_target="head_c"),
        r"argument `sampling_target`. Expected the key of the target that drives "
        r"the sampler, one of \['head_a', 'head_b'\]. Received: "
        r"sampling_target='head_c'"),
    "missing_sampling_target": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}),
        r"argument `sampling_target`. Expected the key.*Received: "
        r"sampling_target=None"),
    "tuple_sampling_target": (lambda: BalancedBatchGenerator(
        X, (YA, YB), sampling_target=2),
        r"argument `sampling_target`. Expected the index of the target that drives "
        r"the sampler, one of \[0, 1\]"),
    "class_weight_unknown_output": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}, sampling_target="head_a",
        class_weight={"head_c": "balanced"}),
        r"argument `class_weight`. Expected a dict \{output: class weights or None\} "
        r"keyed by the outputs \['head_a', 'head_b'\] \(unknown: \['head_c'\]\)"),
    "class_weight_not_per_output": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}, sampling_target="head_a",
        class_weight="balanced"),
        r"argument `class_weight`. Expected a dict \{output name: class weights or "
        r"None\} for a multi-output y"),
    "tuple_class_weight_numbers": (lambda: BalancedBatchGenerator(
        X, (YA, YB), sampling_target=0, class_weight=[1.0, 2.0]),
        r"argument `class_weight`. Expected a tuple of 2 class weights or None"),
    "output_class_weight_length": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}, sampling_target="head_a",
        class_weight={"head_a": [1.0, 2.0]}),
        r"argument `class_weight\['head_a'\]`. Expected 3 weights"),
    "output_length": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB[:30]}, sampling_target="head_a"),
        r"argument `y\['head_b'\]`. Expected 40 labels or masks"),
    "output_labels": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA - 1, "head_b": YB}, sampling_target="head_b"),
        r"argument `y\['head_a'\]`. Expected class ids >= 0"),
    "num_classes_int": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}, sampling_target="head_a", num_classes=3),
        r"argument `num_classes`. Expected None or a dict \{output: number of "
        r"classes\}"),
    "num_classes_unknown": (lambda: BalancedBatchGenerator(
        X, {"head_a": YA, "head_b": YB}, sampling_target="head_a",
        num_classes={"c": 3}),
        r"argument `num_classes`. Expected keys among the outputs"),
    "non_string_keys": (lambda: BalancedBatchGenerator(X, {0: YA, 1: YB}),
                        r"argument `y`. Expected a dict keyed by output names"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_messages(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_num_classes_per_output():
    gen = BalancedBatchGenerator(X, {"a": YA, "b": YB}, sampling_target="a",
                                 num_classes={"a": 5})
    assert gen.num_classes == {"a": 5, "b": 2}


def test_deferred_reweighting_refuses_a_multi_output_generator():
    x = np.zeros((8, 2), "float32")
    gen = BalancedBatchGenerator(
        x, {"a": np.array([0, 1] * 4), "b": np.array([0] * 6 + [1] * 2)},
        sampling_target="b", batch_size=4)
    with pytest.raises(ValueError, match=r"argument `generator`. Expected a "
                       r"single-output generator.*outputs \['a', 'b'\]"):
        callbacks.DeferredReweighting(gen, start_epoch=1)
