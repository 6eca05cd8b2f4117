"""The honest protocol: a balanced validation set from the left-out images,
and every tuned quantity chosen on it, never on the test set."""

import types

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.experiments import methods, splits


def _fake_dataset(per_class, num_classes, num_test=20):
    """Images whose one pixel value is the sample's identity (train: 1..N,
    test: from 60000 on), uint16 so `prepare_images` divides by 65535."""
    n = per_class * num_classes
    y_train = np.repeat(np.arange(num_classes), per_class)
    x_train = np.arange(1, n + 1, dtype=np.uint16)[:, None, None, None]
    y_test = np.arange(num_test) % num_classes
    x_test = np.arange(60000, 60000 + num_test,
                       dtype=np.uint16)[:, None, None, None]
    return types.SimpleNamespace(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        class_names=[str(c) for c in range(num_classes)])


def _ids(x):
    return set(np.rint(x.reshape(len(x)) * 65535).astype(int).tolist())


@settings(max_examples=10)
@given(per_class=st.integers(20, 60), num_classes=st.integers(2, 6),
       val=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_validation_set_is_balanced_disjoint_and_seeded(per_class, num_classes,
                                                         val, seed):
    dataset = _fake_dataset(per_class, num_classes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(splits, "cached_dataset", lambda name, data_dir=None: dataset)
        split = splits.long_tail_split("fake", ratio=4, seed=seed,
                                       val_per_class=val, log=None)
        again = splits.long_tail_split("fake", ratio=4, seed=seed,
                                       val_per_class=val, log=None)
    n = per_class * num_classes
    assert np.bincount(split.y_val, minlength=num_classes).tolist() == (
        [val] * num_classes)
    train, held = _ids(split.x_train), _ids(split.x_val)
    assert len(held) == val * num_classes and not train & held
    assert not held & _ids(split.x_test) and min(_ids(split.x_test)) >= 60000
    assert len(train) == len(split.y_train) and max(train) <= n
    # every validation image carries its own label
    labels = np.repeat(np.arange(num_classes), per_class)
    ids = np.rint(split.x_val.reshape(-1) * 65535).astype(int) - 1
    np.testing.assert_array_equal(labels[ids], split.y_val)
    np.testing.assert_array_equal(again.x_val, split.x_val)
    np.testing.assert_array_equal(again.x_train, split.x_train)
    assert "val=" in split.description


@pytest.fixture
def monkeypatch_dataset():
    patch = pytest.MonkeyPatch()

    def install(dataset):
        patch.setattr(splits, "cached_dataset", lambda name, data_dir=None: dataset)

    yield install
    patch.undo()


def test_without_validation_the_split_is_unchanged(monkeypatch_dataset):
    monkeypatch_dataset(_fake_dataset(30, 3))
    split = splits.long_tail_split("fake", ratio=5, log=None)
    assert split.x_val is None and split.y_val is None
    assert split.counts.tolist() == [30, 13, 6]


def test_validation_head_class_gives_up_its_validation_images(monkeypatch_dataset):
    monkeypatch_dataset(_fake_dataset(30, 3))
    split = splits.long_tail_split("fake", ratio=5, val_per_class=4, log=None)
    assert split.counts[0] == 26  # n_max = 30 - 4: every class has spares


@pytest.mark.parametrize("value", [0, -1, 30, 2.5, "4"])
def test_val_per_class_rejects_bad_values(monkeypatch_dataset, value):
    monkeypatch_dataset(_fake_dataset(30, 3))
    with pytest.raises(ValueError, match=r"argument `val_per_class`.*Received: "
                       r"val_per_class="):
        splits.long_tail_split("fake", val_per_class=value, log=None)


def _scores_split(seed):
    rng = np.random.default_rng(seed)
    y_val = np.repeat(np.arange(3), 10)
    y_test = np.repeat(np.arange(3), 15)
    return splits.Split(
        x_train=np.zeros((4, 1), np.float32), y_train=np.array([0, 0, 1, 2]),
        x_test=rng.normal(size=(45, 1)).astype(np.float32), y_test=y_test,
        class_names=["a", "b", "c"], x_val=np.zeros((30, 1), np.float32),
        y_val=y_val)


def test_posthoc_tau_is_chosen_on_validation_not_test():
    split = _scores_split(0)
    info = methods.TaskInfo(counts=np.array([80, 15, 5]), y_train=split.y_train,
                            epochs=1, num_classes=3)
    rng = np.random.default_rng(1)
    val_scores = rng.normal(size=(30, 3)).astype(np.float32)
    val_scores[np.arange(30), split.y_val] += 1.0
    decide = methods.LONG_TAIL_METHODS["posthoc_la"].decide
    chosen = set()
    for test_seed in range(3):  # different test scores: the same tau
        test_scores = np.random.default_rng(test_seed).normal(size=(45, 3))
        scores, tuned, tuned_on = decide(test_scores.astype(np.float32),
                                         val_scores, split, info)
        assert scores.shape == (45, 3) and tuned_on == "val"
        chosen.add(tuned["tau"])
    assert len(chosen) == 1 and chosen <= set(methods.TAU_GRID)
    shifted = val_scores + np.log(info.counts / info.counts.sum()) * 3
    _, tuned_shifted, _ = decide(test_scores.astype(np.float32), shifted, split,
                                 info)
    assert tuned_shifted["tau"] != tuned["tau"]  # the validation scores decide
    no_val = splits.Split(split.x_train, split.y_train, split.x_test, split.y_test,
                          split.class_names)
    _, tuned, tuned_on = decide(test_scores, None, no_val, info)
    assert tuned == {"tau": 1.0} and tuned_on == "fixed"


def _tau_norm_context(split):
    info = methods.TaskInfo(counts=np.array([80, 15, 5]), y_train=split.y_train,
                            epochs=1, num_classes=3)
    return methods.StageContext(split=split, info=info, make_generator=None,
                                verbose=0, predict=_predict)


def _predict(model, x):
    return np.asarray(model.predict(x, verbose=0), np.float32)


def test_tau_norm_tau_ignores_the_test_set():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False)(inputs))
    model.layers[-1].kernel.assign(np.array([[3.0, -1.0, -2.0]], np.float32))
    tau_norm = methods.LONG_TAIL_METHODS["tau_norm"].post_train
    split = _scores_split(0)
    split.x_val = np.linspace(-1, 1, 30, dtype=np.float32)[:, None]
    first = tau_norm(model, _tau_norm_context(split))
    split.x_test = -split.x_test * 7  # another test set
    second = tau_norm(model, _tau_norm_context(split))
    assert first.tuned == second.tuned and first.tuned_on == "val"
    assert first.tuned["tau"] in methods.TAU_GRID
