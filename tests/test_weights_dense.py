"""kimbalance.weights on dense targets: id maps, one-hot maps, weight maps.

Oracles: NumPy bincount and sklearn's compute_class_weight /
compute_sample_weight on the flattened ids; torch's F.cross_entropy(weight=w)
on (N, C, H, W) logits for the weighted pixel cross-entropy under both
normalisations; a float64 hand computation of the loss `model.fit` reports
with a per-pixel `sample_weight` map.
"""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from kimbalance.weights import class_counts, dense_targets, sample_weights

C = 4


def _masks(shape=(3, 5, 6), num_classes=C, seed=0):
    rng = np.random.default_rng(seed)
    probs = np.array([0.85, 0.1, 0.04, 0.01])[:num_classes]
    masks = rng.choice(num_classes, size=shape, p=probs / probs.sum())
    masks.reshape(-1)[:num_classes] = np.arange(num_classes)  # every class present
    return masks


def test_id_map_counts_and_balanced_weights_equal_sklearn_on_flat_ids():
    masks = _masks()
    flat = masks.reshape(-1)
    np.testing.assert_array_equal(class_counts(masks), np.bincount(flat, minlength=C))
    weights = compute_class_weight("balanced", classes=np.arange(C), y=flat)
    got = sample_weights(masks, "balanced")
    assert got.shape == masks.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, weights[masks], rtol=1e-12)
    np.testing.assert_allclose(got.reshape(-1), compute_sample_weight("balanced", flat),
                               rtol=1e-12)


def test_one_hot_map_and_channel_axis_read_as_the_id_map():
    masks = _masks()
    one_hot = np.eye(C, dtype="float32")[masks]              # (N, H, W, C)
    column = masks[..., None]                                 # (N, H, W, 1)
    want = sample_weights(masks, [1.0, 2.0, 3.0, 4.0])
    for y in (one_hot, column):
        np.testing.assert_array_equal(class_counts(y), class_counts(masks))
        got = sample_weights(y, [1.0, 2.0, 3.0, 4.0])
        assert got.shape == masks.shape
        np.testing.assert_array_equal(got, want)
    targets, shape, keep = dense_targets(one_hot)
    assert (targets.kind, targets.num_classes, shape, keep) == ("one_hot", C,
                                                                masks.shape, None)


def test_one_hot_rule_num_classes_and_explicit_flag():
    # Binary id maps whose every row holds exactly one 1 look one-hot.
    ambiguous = np.array([[[0, 1], [1, 0]], [[1, 0], [0, 1]]])
    assert dense_targets(ambiguous)[0].kind == "one_hot"
    assert dense_targets(ambiguous, one_hot=False)[0].kind == "ids"
    # A num_classes other than the last axis' width means an id map.
    assert dense_targets(ambiguous, num_classes=3)[0].kind == "ids"
    assert class_counts(ambiguous, one_hot=False).tolist() == [4, 4]
    # Two-axis arrays keep their classification meaning unless one_hot=False.
    seq = np.array([[0, 1, 2], [2, 2, 0]])
    assert sample_weights(seq, [1.0, 2.0, 3.0], one_hot=False).tolist() == [
        [1.0, 2.0, 3.0], [3.0, 3.0, 1.0]]
    assert class_counts(np.eye(3)[[0, 1, 1]], one_hot=True).tolist() == [1, 2, 0]


def test_ignore_class_gets_weight_zero_and_is_not_counted():
    masks = _masks(num_classes=3)
    masks[0, 0, :3] = 255
    kept = masks[masks != 255]
    np.testing.assert_array_equal(class_counts(masks, ignore_class=255),
                                  np.bincount(kept, minlength=3))
    got = sample_weights(masks, "balanced", ignore_class=255)
    want = compute_class_weight("balanced", classes=np.arange(3), y=kept)
    assert np.all(got[masks == 255] == 0)
    np.testing.assert_allclose(got[masks != 255], want[kept], rtol=1e-12)
    # An ignored id inside [0, C) (e.g. background) on a one-hot map.
    one_hot = np.eye(3)[_masks(num_classes=3)]
    got = sample_weights(one_hot, [1.0, 2.0, 3.0], ignore_class=0)
    ids = one_hot.argmax(-1)
    np.testing.assert_array_equal(got, np.where(ids == 0, 0.0, ids + 1.0))
    # 1-D labels and negative void ids.
    assert sample_weights([0, -1, 1], [1.0, 2.0], ignore_class=-1).tolist() == [
        1.0, 0.0, 2.0]


@pytest.mark.parametrize("reduction",
                         ["mean_with_sample_weight", "sum_over_batch_size"])
def test_weighted_pixel_crossentropy_equals_torch(reduction):
    torch = pytest.importorskip(
        "torch", reason="torch is an optional extra; this test needs it")
    rng = np.random.default_rng(3)
    masks = _masks((2, 4, 5))
    logits = rng.normal(size=(2, 4, 5, C)) * 3
    class_w = np.array([0.2, 1.0, 3.0, 7.0])
    weight_map = sample_weights(masks, class_w)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction=reduction)
    got = float(loss(masks, logits.astype("float32"),
                     sample_weight=weight_map.astype("float32")))
    t_logits = torch.tensor(logits).permute(0, 3, 1, 2)       # (N, C, H, W)
    t_masks = torch.tensor(masks)
    if reduction == "mean_with_sample_weight":
        # torch's weighted mean: sum(w_y * l) / sum(w_y).
        want = torch.nn.functional.cross_entropy(t_logits, t_masks,
                                                 weight=torch.tensor(class_w))
    else:
        # Keras' default divides by the element count: torch's weighted sum / N H W.
        want = torch.nn.functional.cross_entropy(
            t_logits, t_masks, weight=torch.tensor(class_w), reduction="sum"
        ) / masks.size
    np.testing.assert_allclose(got, float(want), rtol=1e-5)


def test_fit_applies_a_pixel_weight_map_element_wise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 3, 2)).astype("float32")
    masks = _masks((4, 3, 3))
    weight_map = sample_weights(masks, "balanced").astype("float32")
    model = keras.Sequential([keras.Input((3, 3, 2)),
                              keras.layers.Conv2D(C, 1, name="logits")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, masks, sample_weight=weight_map, batch_size=4, epochs=1,
                        shuffle=False, verbose=0)
    logits = keras.ops.convert_to_numpy(model(x)).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    pixel_loss = -np.take_along_axis(log_probs, masks[..., None], -1)[..., 0]
    want = np.sum(weight_map * pixel_loss) / masks.size
    np.testing.assert_allclose(history.history["loss"][0], want, rtol=1e-5)
    unweighted = np.mean(pixel_loss)
    assert abs(want - unweighted) > 1e-3          # the map made a difference


@settings(max_examples=20)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(2, 4), st.integers(2, 5),
       st.integers(0, 10**6), st.booleans())
def test_weight_map_is_the_class_weight_of_each_element(n, h, w, c, seed, one_hot):
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, c, size=(n, h, w))
    class_w = rng.uniform(0.1, 5.0, size=c)
    y = np.eye(c)[masks] if one_hot else masks
    got = sample_weights(y, class_w, one_hot=one_hot, num_classes=c)
    assert got.shape == masks.shape
    np.testing.assert_array_equal(got, class_w[masks])
    counts = class_counts(y, c, one_hot=one_hot)
    np.testing.assert_array_equal(counts, np.bincount(masks.reshape(-1), minlength=c))
    ignored = sample_weights(masks, class_w, ignore_class=0, one_hot=False) if np.any(
        masks) else None
    if ignored is not None:
        assert np.all(ignored[masks == 0] == 0)
        np.testing.assert_array_equal(ignored[masks != 0], class_w[masks[masks != 0]])


ERRORS = {
    "one_hot_not_bool": (lambda: class_counts(_masks(), one_hot="yes"),
                         r"argument `one_hot`. Expected None, True or False. "
                         r"Received: one_hot='yes'"),
    "ignore_not_int": (lambda: sample_weights(_masks(), "balanced", ignore_class=1.5),
                       r"argument `ignore_class`. Expected None or an int class id. "
                       r"Received: ignore_class=1.5"),
    "all_ignored": (lambda: class_counts(np.zeros((2, 2, 2), int), ignore_class=0),
                    r"argument `y`. Expected at least one element not equal to "
                    r"ignore_class=0"),
    "one_hot_required": (lambda: class_counts(np.full((2, 2, 3), 2), one_hot=True),
                         r"argument `y`. Expected one-hot / multi-hot rows of 0 and 1"),
    "one_hot_1d": (lambda: class_counts([0, 1], one_hot=True),
                   r"argument `y`. Expected one-hot rows \(a 2-D array\) when "
                   r"one_hot=True"),
    "id_out_of_range": (lambda: sample_weights(np.full((1, 2, 3), 5), [1.0, 2.0]),
                        r"argument `y`. Expected class ids in \[0, 2\)"),
    "id_map_num_classes": (lambda: class_counts(np.full((1, 2, 3), 5), 3),
                           r"argument `y`. Expected class ids < num_classes=3 "
                           r"\(found 5\)"),
    "negative_id": (lambda: class_counts(np.full((1, 2, 3), -1)),
                    r"argument `y`. Expected class ids >= 0 \(found -1\)"),
    "fractional_map": (lambda: class_counts(np.full((1, 2, 3), 0.5)),
                       r"argument `y`. Expected integer class ids"),
    "one_hot_width": (lambda: class_counts(np.eye(3)[np.zeros((1, 2), int)], 4,
                                           one_hot=True),
                      r"argument `num_classes`. Expected 3 \(the width of y\)"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_messages(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        call()
