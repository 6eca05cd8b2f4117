"""collate_with_weights: class-weighted torch DataLoader batches for model.fit.

Oracles: torch's `default_collate` for the stacked batch, NumPy lookups of
the class weights (sklearn's compute_class_weight for "balanced"), and a
float64 hand computation of the weighted loss `fit` reports (torch backend:
Keras refuses `class_weight` for a DataLoader).
"""

import pickle

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight

from kimbalance.data import collate_with_weights
from kimbalance.data.collate import WeightedCollate
from kimbalance.data.samplers import ClassBalancedSampler, RandomOverSampler

torch = pytest.importorskip(
    "torch", reason="collate_with_weights is a collate function for torch DataLoaders")
from torch.utils.data import DataLoader, Dataset, default_collate  # noqa: E402

N = 30
Y = np.repeat([0, 1, 2], [20, 7, 3])
X = np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)


class PairDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_batch_is_default_collate_plus_the_weights_of_its_labels():
    items = [(X[i], Y[i]) for i in (0, 21, 28, 5)]
    collate = collate_with_weights("balanced", y=Y)
    x, y, w = collate(items)
    want_x, want_y = default_collate(items)
    assert torch.equal(x, want_x) and torch.equal(y, want_y)
    weights = compute_class_weight("balanced", classes=np.arange(3), y=Y)
    np.testing.assert_allclose(collate.class_weight, weights, rtol=1e-12)
    assert w.dtype == torch.float32 and w.shape == (4,)
    np.testing.assert_allclose(w.numpy(), weights[[0, 1, 2, 0]], rtol=1e-6)


def test_one_hot_multi_hot_dict_inputs_and_masks():
    one_hot = np.eye(3, dtype=np.float32)[Y]
    _, _, w = collate_with_weights([1.0, 2.0, 3.0])([(X[i], one_hot[i])
                                                      for i in (0, 25)])
    assert w.tolist() == [1.0, 2.0]
    multi_hot = np.array([[1, 1, 0], [0, 0, 0]], dtype=np.float32)
    _, _, w = collate_with_weights([1.0, 2.0, 3.0])([(X[0], multi_hot[0]),
                                                      (X[1], multi_hot[1])])
    assert w.tolist() == [1.5, 1.0]
    x, _, _ = collate_with_weights({0: 1.0, 1: 2.0, 2: 3.0})(
        [({"a": X[0], "b": X[1]}, 0), ({"a": X[2], "b": X[3]}, 2)])
    assert set(x) == {"a", "b"} and x["a"].shape == (2, 4)
    masks = np.zeros((3, 2, 2), dtype=np.int64)
    masks[0, 0, 0] = 2
    masks[1, 1, :] = 255
    collate = collate_with_weights([1.0, 2.0, 3.0], ignore_class=255)
    _, y, w = collate([(X[i], masks[i]) for i in range(3)])
    assert w.shape == (3, 2, 2) and torch.equal(y, torch.as_tensor(masks))
    want = np.where(masks == 255, 0.0, np.array([1.0, 2.0, 3.0])[masks % 255])
    np.testing.assert_array_equal(w.numpy(), want)
    # One-hot masks (B, H, W, C) give the same map.
    one_hot_masks = np.eye(3, dtype=np.float32)[masks[:1] % 255]
    _, _, w = collate_with_weights([1.0, 2.0, 3.0])([(X[0], one_hot_masks[0])])
    np.testing.assert_array_equal(w.numpy(), want[:1])


def test_collate_is_picklable():
    collate = collate_with_weights("inverse", y=Y)
    again = pickle.loads(pickle.dumps(collate))
    assert isinstance(again, WeightedCollate)
    np.testing.assert_array_equal(again.class_weight, collate.class_weight)
    assert "WeightedCollate(class_weight=" in repr(again)


@pytest.mark.parametrize("make_sampler", [
    lambda: RandomOverSampler(Y, seed=3),
    lambda: ClassBalancedSampler(Y, batch_size=6, seed=3),
], ids=["over", "class_balanced"])
def test_kimbalance_sampler_drives_a_dataloader_epoch(make_sampler):
    index = np.arange(N)
    sampler = make_sampler()
    loader = DataLoader(PairDataset(index, Y), batch_size=8, sampler=sampler,
                        collate_fn=collate_with_weights([1.0, 1.0, 1.0]))
    assert len(loader) == -(-len(sampler) // 8)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        seen = np.concatenate([x.numpy() for x, _, _ in loader])
        np.testing.assert_array_equal(seen, sampler.indices(epoch))
    # Over- and class-balanced sampling: every class equally often.
    assert len(set(np.bincount(Y[seen]).tolist())) == 1


@settings(max_examples=15)
@given(st.integers(0, 10**6), st.integers(1, 9))
def test_every_batch_weight_is_the_class_weight_of_its_label(seed, batch_size):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=N)
    class_w = rng.uniform(0.1, 5.0, size=4)
    loader = DataLoader(PairDataset(np.arange(N), y), batch_size=batch_size,
                        sampler=RandomOverSampler(y, seed=seed, num_classes=4),
                        collate_fn=collate_with_weights(class_w))
    for idx, labels, w in loader:
        np.testing.assert_array_equal(labels.numpy(), y[idx.numpy()])
        np.testing.assert_allclose(w.numpy(), class_w[y[idx.numpy()]], rtol=1e-6)


@pytest.mark.torch_only(reason="Keras takes a torch DataLoader only on torch")
def test_fit_on_a_weighted_dataloader_equals_the_hand_weighted_loss():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    collate = collate_with_weights("balanced", y=Y)
    sampler = RandomOverSampler(Y, seed=0)
    loader = DataLoader(PairDataset(X, Y), batch_size=len(sampler), sampler=sampler,
                        collate_fn=collate)
    history = model.fit(loader, epochs=1, verbose=0)
    xb, yb, wb = next(iter(loader))
    logits = keras.ops.convert_to_numpy(model(xb.numpy())).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    losses = -log_probs[np.arange(len(yb)), yb.numpy()]
    want = np.mean(wb.numpy() * losses)
    np.testing.assert_allclose(history.history["loss"][0], want, rtol=1e-5)
    assert abs(want - losses.mean()) > 1e-3


@pytest.mark.torch_only(reason="Keras takes a torch DataLoader only on torch")
def test_fit_segmentation_dataloader_with_pixel_weights_and_epoch_callback():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(12, 4, 4, 2)).astype(np.float32)
    masks = np.zeros((12, 4, 4), dtype=np.int64)
    masks[:3, :2, :2] = 1
    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(2, 1)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    sampler = RandomOverSampler((masks.max(axis=(1, 2))), seed=0)
    loader = DataLoader(PairDataset(images, masks), batch_size=6, sampler=sampler,
                        collate_fn=collate_with_weights("balanced", y=masks))
    epochs = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: (sampler.set_epoch(epoch),
                                            epochs.append(epoch)))
    history = model.fit(loader, epochs=2, verbose=0, callbacks=[callback])
    assert epochs == [0, 1] and sampler.epoch == 1
    assert np.all(np.isfinite(history.history["loss"]))


ERRORS = {
    "scheme_without_y": (lambda: collate_with_weights("balanced"),
                         r"argument `y`. Expected the dataset's labels, to count for "
                         r"class_weight='balanced'"),
    "unknown_scheme": (lambda: collate_with_weights("often", y=Y),
                       r"argument `class_weight`. Expected one of"),
    "number": (lambda: collate_with_weights(2.0),
               r"argument `class_weight`. Expected a scheme name, a dict or a 1-D "
               r"sequence of weights. Received: class_weight=2.0"),
    "negative_weights": (lambda: collate_with_weights([1.0, -1.0]),
                         r"argument `class_weight`. Expected finite weights >= 0"),
    "dict_missing_class": (lambda: collate_with_weights({0: 1.0, 2: 3.0}),
                           r"argument `class_weight`. Expected a dict with one weight "
                           r"for each class 0..2"),
    "num_classes": (lambda: collate_with_weights([1.0, 2.0], num_classes=0),
                    r"argument `num_classes`. Expected an int in \[1, "),
    "one_hot": (lambda: collate_with_weights([1.0, 2.0], one_hot="no"),
                r"argument `one_hot`. Expected None, True or False"),
    "ignore_class": (lambda: collate_with_weights([1.0, 2.0], ignore_class=0.5),
                     r"argument `ignore_class`. Expected None or an int class id"),
    "items_not_pairs": (lambda: collate_with_weights([1.0, 2.0])([X[0], X[1]]),
                        r"argument `batch`. Expected a non-empty list of \(x, y\) "
                        r"pairs"),
    "label_out_of_range": (lambda: collate_with_weights([1.0, 2.0])([(X[0], 0),
                                                                     (X[1], 3)]),
                           r"argument `y`. Expected class ids < num_classes=2 "
                           r"\(found 3\)"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_messages(case):
    call, message = ERRORS[case]
    with pytest.raises(ValueError, match=message):
        call()
