"""MixUp, CutMix, Remix, BalancedMixUp: soft labels, Remix's rule, the generator."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimbalance.data import BalancedBatchGenerator, BalancedMixUp, CutMix, MixUp, Remix
from kimbalance.losses import FocalCrossentropy, WeightedCategoricalCrossentropy

COUNTS = [60, 20, 8, 4]


class FixedRng:
    """Stands in for a numpy Generator: a given ratio and permutation."""

    def __init__(self, lam, perm):
        self.lam, self.perm = lam, np.asarray(perm)

    def beta(self, a, b):
        return self.lam

    def permutation(self, n):
        assert n == self.perm.shape[0]
        return self.perm


def _batch(n, num_classes, seed, image=False):
    rng = np.random.default_rng(seed)
    shape = (n, 5, 6, 2) if image else (n, 3)
    return (rng.normal(size=shape).astype(np.float32),
            rng.integers(0, num_classes, size=n))


def _augments(num_classes, alpha, x=None, y=None):
    counts = list(range(num_classes * 3, 0, -3))
    out = [MixUp(alpha, num_classes=num_classes),
           CutMix(alpha, num_classes=num_classes),
           Remix(alpha, class_counts=counts)]
    if x is not None:
        out.append(BalancedMixUp(x, y, alpha, num_classes=num_classes))
    return out


sizes = st.integers(1, 12)
classes = st.integers(2, 5)
seeds = st.integers(0, 2**16)
alphas = st.sampled_from([0.1, 0.4, 1.0, 4.0])


@settings(max_examples=15)
@given(n=sizes, num_classes=classes, seed=seeds, alpha=alphas)
def test_soft_labels_are_distributions_and_same_rng_same_output(n, num_classes, seed,
                                                                 alpha):
    x, y = _batch(n, num_classes, seed, image=True)
    for augment in _augments(num_classes, alpha, x, y):
        mixed, soft = augment(x, y, rng=np.random.default_rng([seed, 1]))
        assert mixed.shape == x.shape and mixed.dtype == x.dtype
        assert soft.dtype == np.float32 and soft.shape == (n, num_classes)
        assert np.all(soft >= 0)
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        again = augment(x, y, rng=np.random.default_rng([seed, 1]))
        np.testing.assert_array_equal(mixed, again[0])
        np.testing.assert_array_equal(soft, again[1])


@settings(max_examples=10)
@given(n=sizes, num_classes=classes, seed=seeds)
def test_alpha_to_zero_returns_the_unmixed_batch(n, num_classes, seed):
    x, y = _batch(n, num_classes, seed, image=True)
    one_hot = np.eye(num_classes, dtype=np.float32)[y]
    for augment in _augments(num_classes, 1e-4, x, y):
        mixed, soft = augment(x, y, rng=np.random.default_rng(seed))
        np.testing.assert_allclose(mixed, x, atol=1e-3)
        np.testing.assert_allclose(soft, one_hot, atol=1e-3)
    for augment in _augments(num_classes, 0.0, x, y):
        mixed, soft = augment(x, y, rng=np.random.default_rng(seed))
        assert mixed is x
        np.testing.assert_array_equal(soft, one_hot)


def test_mixup_matches_the_formula_and_keeps_the_dominant_sample():
    x, y = _batch(4, 3, 0)
    mixed, soft = MixUp(1.0, num_classes=3)(x, y, rng=FixedRng(0.3, [2, 0, 3, 1]))
    lam = 0.7  # max(0.3, 0.7): each row stays mostly its own sample
    np.testing.assert_allclose(mixed, lam * x + (1 - lam) * x[[2, 0, 3, 1]], rtol=1e-6)
    eye = np.eye(3)
    np.testing.assert_allclose(soft, lam * eye[y] + (1 - lam) * eye[y[[2, 0, 3, 1]]],
                               rtol=1e-6)


def test_cutmix_label_weight_is_the_kept_area():
    x = np.zeros((2, 8, 8, 1), dtype=np.float32)
    x[1] = 1.0
    y = np.array([0, 1])
    for seed in range(20):
        mixed, soft = CutMix(1.0, num_classes=2)(x, y, rng=np.random.default_rng(seed))
        pasted = mixed[0].mean()  # image 0 is zeros, its partner (1) ones
        if soft[0, 1] > 0:
            np.testing.assert_allclose(soft[0], [1 - pasted, pasted], rtol=1e-6)
        assert pasted <= 0.5 + 1e-6
        np.testing.assert_allclose(1 - mixed[1].mean(), soft[1, 0], rtol=1e-6)


@pytest.mark.parametrize(
    "counts,tau,row0,row1",
    [
        # Row 0 is 0.6 x_0 + 0.4 x_1, row 1 is 0.6 x_1 + 0.4 x_0.
        # Class 0 majority (100 vs 10 >= kappa 3). Row 0: its share 0.6 < tau
        # 0.7, all to class 1. Row 1: the majority's share 0.4 < 0.7, all to 1.
        ([100, 10], 0.7, [0.0, 1.0], [0.0, 1.0]),
        # tau 0.5: row 0's majority share 0.6 >= 0.5 keeps the MixUp label.
        ([100, 10], 0.5, [0.6, 0.4], [0.0, 1.0]),
        # Class 0 minority: row 0 is mostly it, the majority's 0.4 < 0.5.
        ([10, 100], 0.5, [1.0, 0.0], [0.4, 0.6]),
        # tau 0.3: no share is below it.
        ([10, 100], 0.3, [0.6, 0.4], [0.4, 0.6]),
        # Ratio 2 < kappa 3: never re-assigned.
        ([20, 10], 0.9, [0.6, 0.4], [0.4, 0.6]),
        ([10, 20], 0.9, [0.6, 0.4], [0.4, 0.6]),
        # A ratio of exactly kappa counts as unequal.
        ([30, 10], 0.7, [0.0, 1.0], [0.0, 1.0]),
        # tau = 0: plain MixUp.
        ([100, 10], 0.0, [0.6, 0.4], [0.4, 0.6]),
    ],
)
def test_remix_label_rule_on_hand_made_pairs(counts, tau, row0, row1):
    x = np.array([[1.0], [0.0]], dtype=np.float32)
    y = np.array([0, 1])
    remix = Remix(1.0, kappa=3.0, tau=tau, class_counts=counts)
    mixed, soft = remix(x, y, rng=FixedRng(0.4, [1, 0]))  # lam = max(0.4, 0.6)
    np.testing.assert_allclose(mixed[:, 0], [0.6, 0.4], rtol=1e-6)
    np.testing.assert_allclose(soft, [row0, row1], atol=1e-6)


def test_balanced_mixup_second_stream_is_class_balanced():
    y = np.array([0] * 94 + [1] * 4 + [2] * 2)
    x = np.stack([y, np.arange(100)], axis=1).astype(np.float32)
    mix = BalancedMixUp(x, y, alpha=0.2)
    index = np.concatenate([mix.balanced_indices(64, np.random.default_rng(s))
                            for s in range(30)])
    shares = np.bincount(y[index], minlength=3) / index.shape[0]
    np.testing.assert_allclose(shares, 1 / 3, atol=0.04)
    # The mixed inputs are (1 - lam) * own + lam * drawn, labels alike.
    mixed, soft = mix(x[:8], y[:8], rng=np.random.default_rng(5))
    lam = 1.0 - soft[np.arange(8), y[:8]].min()
    assert 0.0 <= lam < 1.0
    drawn = np.round((mixed[:, 0] - (1 - lam) * x[:8, 0]) / max(lam, 1e-12))
    assert set(drawn.tolist()) <= {0.0, 1.0, 2.0}


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: MixUp(-0.1), "argument `alpha`"),
        (lambda: MixUp(float("nan")), "argument `alpha`"),
        (lambda: CutMix(1.0, num_classes=0), "argument `num_classes`"),
        (lambda: Remix(1.0, kappa=0.5, class_counts=COUNTS), "argument `kappa`"),
        (lambda: Remix(1.0, tau=1.5, class_counts=COUNTS), "argument `tau`"),
        (lambda: Remix(1.0, class_counts=[3, 0]), "argument `class_counts`"),
        (lambda: BalancedMixUp(np.zeros((3, 2)), [0, 1], 0.2), "argument `x`"),
        (lambda: BalancedMixUp(np.zeros((2, 2)), [0, -1], 0.2), "argument `y`"),
        (lambda: BalancedMixUp(np.zeros((2, 2)), [0, 1], -1.0), "argument `alpha`"),
    ],
)
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_invalid_batches():
    x = np.zeros((4, 5, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="argument `num_classes`.*Received: "
                                         "num_classes=None"):
        MixUp(0.2)(x, np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="argument `y`"):
        MixUp(0.2, num_classes=2)(x, np.array([0, 1, 0, 2]))
    with pytest.raises(ValueError, match="argument `y`"):
        MixUp(0.2, num_classes=2)(x, np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="argument `x`"):
        MixUp(0.2, num_classes=2)(x[:3], np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="argument `x`.*shape"):
        CutMix(1.0, num_classes=2)(np.zeros((4, 5)), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="argument `x`"):
        BalancedMixUp(np.zeros((4, 5)), [0, 1, 0, 1], 0.2)(
            np.zeros((4, 6)), np.array([0, 1, 0, 1]), rng=np.random.default_rng(0))
    # one-hot rows give the number of classes
    _, soft = MixUp(0.2)(x, np.eye(3)[[0, 1, 2, 0]], rng=np.random.default_rng(0))
    assert soft.shape == (4, 3)


def test_generator_rejects_an_augment_that_returns_no_pair():
    class Broken:
        returns_labels = True

        def __call__(self, x, y):
            return x

    y = np.array([0, 1] * 8)
    gen = BalancedBatchGenerator(np.zeros((16, 2), dtype=np.float32), y,
                                 augment=Broken(), batch_size=4)
    with pytest.raises(ValueError, match="argument `augment`.*pair"):
        gen[0]


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    x = rng.normal(size=(n, 4, 4, 1)).astype(np.float32) + y[:, None, None, None]
    return x, y


@pytest.mark.parametrize("which", ["mixup", "cutmix", "remix", "balanced"])
def test_fit_through_the_generator_with_soft_labels(which):
    x, y = _data()
    counts = np.bincount(y, minlength=3)
    augment = {"mixup": MixUp(0.4, num_classes=3),
               "cutmix": CutMix(1.0, num_classes=3),
               "remix": Remix(1.0, class_counts=counts),
               "balanced": BalancedMixUp(x, y, alpha=0.2)}[which]
    gen = BalancedBatchGenerator(x, y, sampler="instance", batch_size=16,
                                 augment=augment, class_weight="balanced", seed=3)
    batch = gen[0]
    assert batch[1].shape == (16, 3) and batch[2].shape == (16,)
    np.testing.assert_allclose(batch[1].sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(batch[1], gen[0][1])  # seeded per batch
    # Sample weights follow the sampled (unmixed) labels.
    sampled = y[gen.batch_indices(0)]
    np.testing.assert_allclose(batch[2], gen.class_weight[sampled], rtol=1e-6)
    loss = (WeightedCategoricalCrossentropy(class_weight=[1.0, 2.0, 3.0],
                                            from_logits=True)
            if which in ("mixup", "balanced")
            else FocalCrossentropy(gamma=2.0, from_logits=True))
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss)
    history = model.fit(gen, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
