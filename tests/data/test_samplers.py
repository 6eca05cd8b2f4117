"""Index samplers: guarantees, imblearn parity, determinism, laziness, errors."""

import collections
import math
import pickle

import numpy as np
import pytest

from kimbalance.data import _random
from kimbalance.data import samplers as samplers_module
from kimbalance.data.samplers import (
    ClassBalancedSampler,
    InstanceSampler,
    MultiLabelOverSampler,
    PowerSampler,
    ProgressiveSampler,
    RandomOverSampler,
    RandomUnderSampler,
    Sampler,
    SquareRootSampler,
    get_sampler,
)
from kimbalance.data.samplers import _base as sampler_base

COUNTS = [200, 120, 60, 30, 12, 5]


def long_tail_labels(counts=COUNTS, seed=0):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(y)
    return y


Y = long_tail_labels()
BINARY = long_tail_labels([90, 13])

ALL_SAMPLERS = [
    ("instance", lambda y: InstanceSampler(y, seed=3)),
    ("over", lambda y: RandomOverSampler(y, seed=3)),
    ("under", lambda y: RandomUnderSampler(y, seed=3)),
    ("class_balanced", lambda y: ClassBalancedSampler(y, batch_size=12, seed=3)),
    ("class_balanced_uneven", lambda y: ClassBalancedSampler(y, batch_size=16,
                                                             seed=3)),
    ("sqrt", lambda y: SquareRootSampler(y, seed=3)),
    ("progressive", lambda y: ProgressiveSampler(y, num_epochs=4, seed=3)),
]
IDS = [name for name, _ in ALL_SAMPLERS]
BUILDERS = [build for _, build in ALL_SAMPLERS]


# Determinism, purity, interface ---------------------------------------------


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
def test_same_seed_and_epoch_give_same_indices_and_epochs_differ(build):
    a, b = build(Y), build(Y)
    first = a.indices(1)
    assert first.dtype == np.int64
    np.testing.assert_array_equal(first, b.indices(1))
    assert len(first) == len(a)
    assert not np.array_equal(first, a.indices(2))
    assert len(a.indices(2)) == len(a)  # len is constant across epochs


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
def test_epoch_class_counts_match_the_indices(build):
    sampler = build(Y)
    for epoch in (0, 3):
        counts = np.bincount(Y[sampler.indices(epoch)], minlength=len(COUNTS))
        np.testing.assert_array_equal(counts, sampler.epoch_class_counts(epoch))
        assert counts.sum() == len(sampler)


def test_no_global_random_state_is_read_or_written():
    np.random.seed(1)
    a = RandomOverSampler(Y, seed=5).indices(0)
    np.random.seed(2)
    b = RandomOverSampler(Y, seed=5).indices(0)
    np.testing.assert_array_equal(a, b)
    np.random.seed(1)
    before = np.random.get_state()[1].copy()
    RandomUnderSampler(Y, seed=5).indices(4)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_different_seeds_differ():
    assert not np.array_equal(InstanceSampler(Y, seed=0).indices(0),
                              InstanceSampler(Y, seed=1).indices(0))


def test_label_forms_give_the_same_epoch():
    one_hot = np.eye(len(COUNTS))[Y]
    reference = RandomOverSampler(Y, seed=2).indices(0)
    np.testing.assert_array_equal(RandomOverSampler(Y[:, None], seed=2).indices(0),
                                  reference)
    np.testing.assert_array_equal(RandomOverSampler(one_hot, seed=2).indices(0),
                                  reference)
    np.testing.assert_array_equal(RandomOverSampler(Y.astype("float32"),
                                                    seed=2).indices(0), reference)


def test_iteration_follows_set_epoch():
    sampler = RandomOverSampler(Y, seed=1)
    assert list(sampler) == sampler.indices(0).tolist()
    sampler.set_epoch(3)
    assert list(sampler) == sampler.indices(3).tolist()
    assert all(type(i) is int for i in list(sampler)[:5])


def test_slices_are_slices_of_the_epoch():
    sampler = ClassBalancedSampler(Y, batch_size=12, seed=1)
    full = sampler.indices(2)
    np.testing.assert_array_equal(sampler.indices(2, start=24, stop=60), full[24:60])
    with pytest.raises(ValueError, match="never writ|read-only"):
        full[0] = 1


def test_pickle_round_trip_keeps_the_epochs():
    sampler = ClassBalancedSampler(Y, batch_size=12, seed=4)
    sampler.indices(0)
    clone = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(clone.indices(5), sampler.indices(5))


def test_torch_sampler_and_dataloader():
    torch = pytest.importorskip(
        "torch", reason="torch is an optional extra; this test needs it")
    sampler = RandomOverSampler(Y, seed=0)
    wrapped = sampler.as_torch_sampler()
    assert isinstance(wrapped, torch.utils.data.Sampler)
    wrapped.set_epoch(2)
    assert list(wrapped) == sampler.indices(2).tolist()
    assert len(wrapped) == len(sampler)
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(Y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=50, sampler=sampler)
    labels = torch.cat([batch[0] for batch in loader]).numpy()
    np.testing.assert_array_equal(labels, Y[sampler.indices(2)])


# Over-sampling --------------------------------------------------------------


def test_over_every_sample_every_epoch_and_targets():
    sampler = RandomOverSampler(Y, seed=0)
    for epoch in range(3):
        indices = sampler.indices(epoch)
        assert np.all(np.bincount(indices, minlength=len(Y)) >= 1)
        np.testing.assert_array_equal(np.bincount(Y[indices]),
                                      [max(COUNTS)] * len(COUNTS))
    # top-ups change between epochs
    assert not np.array_equal(np.sort(sampler.indices(0)), np.sort(sampler.indices(1)))


def _imblearn_counts(sampler_cls, strategy, y):
    resampler = sampler_cls(sampling_strategy=strategy, random_state=0)
    _, y_res = resampler.fit_resample(np.zeros((len(y), 1)), y)
    counts = collections.Counter(y_res.tolist())
    return [counts.get(c, 0) for c in range(int(y.max()) + 1)]


OVER_STRATEGIES = [("auto", Y), ("minority", Y), ("not minority", Y), ("all", Y),
                   ("not majority", Y), ({1: 150, 5: 40}, Y), (0.5, BINARY),
                   (1.0, BINARY)]


@pytest.mark.parametrize("strategy,y", OVER_STRATEGIES,
                         ids=[str(s) for s, _ in OVER_STRATEGIES])
def test_over_class_counts_match_imblearn(strategy, y):
    imblearn = pytest.importorskip("imblearn")
    expected = _imblearn_counts(imblearn.over_sampling.RandomOverSampler, strategy, y)
    sampler = RandomOverSampler(y, sampling_strategy=strategy, seed=0)
    assert sampler.epoch_class_counts().tolist() == expected
    assert np.bincount(y[sampler.indices(0)]).tolist() == expected


UNDER_STRATEGIES = [("auto", Y), ("majority", Y), ("not minority", Y), ("all", Y),
                    ("not majority", Y), ({0: 50, 2: 7}, Y), (0.5, BINARY)]


@pytest.mark.parametrize("strategy,y", UNDER_STRATEGIES,
                         ids=[str(s) for s, _ in UNDER_STRATEGIES])
def test_under_class_counts_match_imblearn(strategy, y):
    imblearn = pytest.importorskip("imblearn")
    expected = _imblearn_counts(imblearn.under_sampling.RandomUnderSampler, strategy,
                                y)
    sampler = RandomUnderSampler(y, sampling_strategy=strategy, seed=0)
    assert sampler.epoch_class_counts().tolist() == expected
    assert np.bincount(y[sampler.indices(0)], minlength=len(expected)).tolist() == (
        expected)


# Under-sampling -------------------------------------------------------------


def test_under_uses_every_sample_within_each_cycle():
    sampler = RandomUnderSampler(Y, sampling_strategy={0: 30, 1: 50}, seed=2)
    members = {0: np.flatnonzero(Y == 0), 1: np.flatnonzero(Y == 1)}
    for cls, target in ((0, 30), (1, 50)):
        cycle = math.ceil(COUNTS[cls] / target)
        assert sampler.cycle_lengths[cls] == cycle
        windows = []
        for q in range(3):
            seen = set()
            for epoch in range(q * cycle, (q + 1) * cycle):
                chosen = [i for i in sampler.indices(epoch).tolist() if Y[i] == cls]
                assert len(chosen) == len(set(chosen)) == target  # distinct
                seen.update(chosen)
                windows.append(chosen)
            assert seen == set(members[cls].tolist())
        # reshuffled each cycle: cycle 1 does not replay cycle 0
        assert windows[0] != windows[cycle]
    # classes kept whole appear exactly once per epoch
    indices = sampler.indices(1)
    np.testing.assert_array_equal(np.sort(indices[Y[indices] == 4]),
                                  np.flatnonzero(Y == 4))


# Class-balanced -------------------------------------------------------------


def test_class_balanced_blocks_hold_k_per_class():
    sampler = ClassBalancedSampler(Y, batch_size=12, seed=0)
    blocks = Y[sampler.indices(0)].reshape(-1, 12)
    counts = np.stack([np.bincount(b, minlength=6) for b in blocks])
    assert np.all(counts == 2)
    assert len(sampler) == math.ceil(len(Y) / 12) * 12


def test_class_balanced_uneven_batches_are_as_equal_as_possible():
    num_classes = len(COUNTS)
    sampler = ClassBalancedSampler(Y, batch_size=16, seed=0)  # 16 = 2 * 6 + 4
    blocks = Y[sampler.indices(1)].reshape(-1, 16)
    counts = np.stack([np.bincount(b, minlength=num_classes) for b in blocks])
    assert counts.min() == 2 and counts.max() == 3
    assert np.all((counts == 3).sum(axis=1) == 4)
    for start in range(len(blocks) - num_classes + 1):
        window = counts[start:start + num_classes]
        np.testing.assert_array_equal((window == 3).sum(axis=0), [4] * num_classes)


def test_class_balanced_small_batch_has_distinct_classes():
    sampler = ClassBalancedSampler(Y, batch_size=4, num_samples=240, seed=0)
    blocks = Y[sampler.indices(0)].reshape(-1, 4)
    assert all(len(set(b.tolist())) == 4 for b in blocks)
    np.testing.assert_array_equal(np.bincount(blocks.ravel()), [40] * 6)


def test_class_balanced_members_cycle_evenly():
    sampler = ClassBalancedSampler(Y, batch_size=12, seed=0)
    uses = np.bincount(sampler.indices(0), minlength=len(Y))
    for cls, n in enumerate(COUNTS):
        t = sampler.epoch_class_counts(0)[cls]
        assert set(uses[Y == cls].tolist()) <= {t // n, -(-t // n)}


# Power and progressive --------------------------------------------------------


def _expected_counts(total, probabilities):
    exact = total * np.asarray(probabilities, dtype=np.float64)
    counts = np.floor(exact)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: int(total - counts.sum())]] += 1
    return counts.astype(int).tolist()


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0, 2.0])
def test_power_class_counts(power):
    n = np.asarray(COUNTS, dtype=np.float64)
    p = n**power / np.sum(n**power)
    sampler = PowerSampler(Y, power=power, num_samples=1000, seed=0)
    counts = sampler.epoch_class_counts(0)
    assert counts.tolist() == _expected_counts(1000, p)
    assert np.all(np.abs(counts - 1000 * p) < 1)
    assert np.bincount(Y[sampler.indices(0)], minlength=6).tolist() == counts.tolist()


def test_square_root_is_power_one_half():
    np.testing.assert_array_equal(SquareRootSampler(Y, seed=1).indices(2),
                                  PowerSampler(Y, power=0.5, seed=1).indices(2))


def test_progressive_follows_kang_interpolation():
    num_epochs = 10
    sampler = ProgressiveSampler(Y, num_epochs=num_epochs, num_samples=6000, seed=0)
    n = np.asarray(COUNTS, dtype=np.float64)
    instance, balanced = n / n.sum(), np.full(len(n), 1 / len(n))
    for epoch in (0, num_epochs // 2, num_epochs, num_epochs + 3):
        t = min(epoch, num_epochs) / num_epochs
        p = (1 - t) * instance + t * balanced
        np.testing.assert_allclose(sampler.probabilities(epoch), p, rtol=1e-12)
        counts = np.bincount(Y[sampler.indices(epoch)], minlength=len(n))
        assert np.all(np.abs(counts - 6000 * p) < 1)
    assert np.bincount(Y[sampler.indices(0)]).tolist() == [
        round(6000 * c / n.sum()) for c in COUNTS]
    assert np.bincount(Y[sampler.indices(num_epochs)]).tolist() == [1000] * 6


# Multi-label ----------------------------------------------------------------


def multilabel_targets(seed=0):
    rng = np.random.default_rng(seed)
    rates = np.array([0.6, 0.3, 0.1, 0.04, 0.02])
    y = (rng.random((600, len(rates))) < rates).astype(np.int32)
    return y


def _mean_ir(counts):
    counts = np.asarray(counts, dtype=np.float64)
    return float(np.mean(counts.max() / counts))


def test_multilabel_lowers_mean_ir_and_keeps_every_sample():
    y = multilabel_targets()
    sampler = MultiLabelOverSampler(y, clone_fraction=0.25, seed=0)
    assert len(sampler) == 600 + 150
    assert sampler.mean_ir == pytest.approx(_mean_ir(y.sum(axis=0)))
    for epoch in (0, 1):
        indices = sampler.indices(epoch)
        assert len(indices) == len(sampler)
        assert np.all(np.bincount(indices, minlength=600) >= 1)
        after = _mean_ir(y[indices].sum(axis=0))
        assert after < sampler.mean_ir
        report = sampler.report(epoch)
        assert report["mean_ir_after"] == pytest.approx(after)
        assert report["mean_ir_before"] == pytest.approx(sampler.mean_ir)


def test_multilabel_clones_come_from_minority_bags():
    y = multilabel_targets()
    sampler = MultiLabelOverSampler(y, clone_fraction=0.03, seed=0)
    assert sampler.report(0)["num_filled"] == 0
    minority = sampler.irlbl > sampler.mean_ir
    clones = np.bincount(sampler.indices(0), minlength=600) - 1
    assert clones.sum() == 18
    assert np.all(y[clones > 0][:, minority].sum(axis=1) >= 1)


def test_multilabel_fills_the_budget_when_balanced_early():
    y = np.array([[1, 0]] * 10 + [[0, 1]] * 9)
    sampler = MultiLabelOverSampler(y, clone_fraction=0.5, seed=0)
    report = sampler.report(0)
    assert len(sampler.indices(0)) == len(sampler) == 19 + 9
    assert report["num_filled"] > 0


# Storage from counts, beyond 2**31 ------------------------------------------

BIG = [2**31 + 7, 3_000, 11]


def _class_of(indices, counts):
    return np.searchsorted(np.cumsum(counts), indices, side="right")


def test_from_counts_under_sampling_beyond_int32():
    sampler = RandomUnderSampler.from_counts(BIG, seed=0)
    assert sampler.dataset_size == sum(BIG) and sampler.materializes_epoch
    for epoch in (0, 1):
        indices = sampler.indices(epoch)
        assert indices.dtype == np.int64 and len(indices) == 33
        np.testing.assert_array_equal(np.bincount(_class_of(indices, BIG)), [11] * 3)
        assert indices.max() < sum(BIG)
        big = indices[indices < BIG[0]]
        assert len(set(big.tolist())) == 11
    assert int(sampler.cycle_lengths[0]) == -(-BIG[0] // 11)


def test_from_counts_class_balanced_small_epoch():
    sampler = ClassBalancedSampler.from_counts(BIG, batch_size=6, num_samples=60,
                                               seed=0)
    blocks = _class_of(sampler.indices(0), BIG).reshape(-1, 6)
    assert all(np.bincount(b, minlength=3).tolist() == [2, 2, 2] for b in blocks)


def test_from_counts_lazy_slices_beyond_int32():
    instance = InstanceSampler.from_counts(BIG, seed=0)
    over = RandomOverSampler.from_counts(BIG, seed=0)
    assert not instance.materializes_epoch and len(over) == 3 * BIG[0]
    start = 2**31 - 500
    window = instance.indices(0, start=start, stop=start + 1000)
    assert window.dtype == np.int64
    assert len(set(window.tolist())) == 1000 and window.max() < sum(BIG)
    np.testing.assert_array_equal(instance.indices(0, start=start + 100,
                                                   stop=start + 200), window[100:200])
    # an over-sampled slice holds each class about equally, every index in range
    batch = over.indices(3, start=2 * 2**31, stop=2 * 2**31 + 30_000)
    shares = np.bincount(_class_of(batch, BIG), minlength=3) / 30_000
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.02)
    assert batch.min() >= 0 and batch.max() < sum(BIG)


def test_multilabel_from_counts_is_an_error():
    with pytest.raises(ValueError, match="Invalid value for argument `counts`"):
        MultiLabelOverSampler.from_counts([3, 4])


# Lazy and materialised routes agree -------------------------------------------


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
def test_lazy_slices_equal_the_materialised_epoch(build, monkeypatch):
    full = build(Y).indices(2)
    monkeypatch.setattr(sampler_base, "EPOCH_CACHE_LIMIT", 0)
    lazy = build(Y)
    assert not lazy.materializes_epoch
    parts = [lazy.indices(2, start=s, stop=min(s + 37, len(lazy)))
             for s in range(0, len(lazy), 37)]
    np.testing.assert_array_equal(np.concatenate(parts), full)


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
def test_feistel_permutations_keep_the_guarantees(build, monkeypatch):
    monkeypatch.setattr(_random, "EXPLICIT_LIMIT", 1)
    sampler = build(Y)
    reference = build(Y)
    indices = sampler.indices(1)
    np.testing.assert_array_equal(indices, reference.indices(1))
    np.testing.assert_array_equal(np.bincount(Y[indices], minlength=6),
                                  sampler.epoch_class_counts(1))


@pytest.mark.parametrize("n", [2, 3, 5, 64, 1000, 4097])
def test_feistel_is_a_permutation(n):
    perm = _random.feistel_permutation_at(n, (0, 1, 2, 3),
                                          np.arange(n, dtype=np.int64))
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    if n >= 64:
        assert not np.array_equal(perm, np.arange(n))


# Factory and errors ------------------------------------------------------------


def test_get_sampler_names():
    assert isinstance(get_sampler("sqrt", Y), SquareRootSampler)
    assert isinstance(get_sampler("class_balanced", Y, batch_size=6),
                      ClassBalancedSampler)
    sampler = InstanceSampler(Y)
    assert get_sampler(sampler, Y) is sampler
    assert issubclass(RandomOverSampler, Sampler)


def test_error_unknown_sampler_name():
    with pytest.raises(ValueError, match="`sampler`.*Received: sampler='oversample'"):
        get_sampler("oversample", Y)


def test_error_negative_seed():
    with pytest.raises(ValueError, match="argument `seed`.*Received: seed=-1"):
        RandomOverSampler(Y, seed=-1)


def test_error_nan_labels():
    with pytest.raises(ValueError, match="argument `y`. Expected finite labels"):
        RandomOverSampler(np.array([0.0, np.nan, 1.0]))


def test_error_negative_labels():
    with pytest.raises(ValueError, match="argument `y`. Expected class ids >= 0"):
        RandomOverSampler([0, -1, 1])


def test_error_labels_out_of_range():
    with pytest.raises(ValueError, match="Expected class ids < num_classes=2"):
        RandomOverSampler([0, 1, 2], num_classes=2)


def test_error_multi_hot_for_single_label_sampler():
    with pytest.raises(ValueError, match="argument `y`. Expected single-label"):
        RandomOverSampler([[1, 1], [0, 1], [1, 0]])


def test_error_unknown_strategy():
    with pytest.raises(ValueError, match="`sampling_strategy`.*Received: "
                       "sampling_strategy='most'"):
        RandomOverSampler(Y, sampling_strategy="most")


def test_error_majority_for_over_sampling():
    with pytest.raises(ValueError, match="Received: sampling_strategy='majority'"):
        RandomOverSampler(Y, sampling_strategy="majority")


def test_error_float_strategy_needs_binary_targets():
    with pytest.raises(ValueError, match="a float only for binary targets"):
        RandomOverSampler(Y, sampling_strategy=0.5)


def test_error_float_over_strategy_below_current_ratio():
    with pytest.raises(ValueError, match="over-sampling cannot remove samples"):
        RandomOverSampler(BINARY, sampling_strategy=0.1)


def test_error_over_dict_below_class_size():
    with pytest.raises(ValueError, match="a count >= 120 for class 1"):
        RandomOverSampler(Y, sampling_strategy={1: 100})


def test_error_under_dict_above_class_size():
    with pytest.raises(ValueError, match="a count <= 5 for class 5"):
        RandomUnderSampler(Y, sampling_strategy={5: 6})


def test_error_empty_class_over_sampled():
    with pytest.raises(ValueError, match="an empty class cannot be over-sampled"):
        RandomOverSampler([0, 0, 1], num_classes=3, sampling_strategy={2: 4})


def test_error_class_balanced_batch_size():
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        ClassBalancedSampler(Y, batch_size=0)


def test_error_negative_power():
    with pytest.raises(ValueError, match="Received: power=-0.5"):
        PowerSampler(Y, power=-0.5)


def test_error_progressive_num_epochs():
    with pytest.raises(ValueError, match="Received: num_epochs=0"):
        ProgressiveSampler(Y, num_epochs=0)


def test_error_negative_counts():
    with pytest.raises(ValueError, match="argument `counts`.*Received: counts="):
        RandomOverSampler.from_counts([5, -1])


def test_error_slice_bounds():
    sampler = InstanceSampler(Y)
    with pytest.raises(ValueError, match="Received: stop=5"):
        sampler.indices(0, start=10, stop=5)


def test_error_clone_fraction():
    with pytest.raises(ValueError, match="Received: clone_fraction=0"):
        MultiLabelOverSampler(multilabel_targets(), clone_fraction=0)


# The public sampler protocol ---------------------------------------------------


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
def test_indices_at_any_positions(build):
    sampler = build(Y)
    positions = np.array([[len(sampler) - 1, 0], [5, 5]])
    full = sampler.indices(1)
    np.testing.assert_array_equal(sampler.indices_at(1, positions), full[positions])


def test_indices_at_errors():
    sampler = InstanceSampler(Y)
    with pytest.raises(ValueError, match=r"`positions`. Expected positions in \[0, "
                                         r"len\(sampler\)=427\)"):
        sampler.indices_at(0, [427])
    with pytest.raises(ValueError, match="`positions`. Expected an integer array"):
        sampler.indices_at(0, [0.5])


def test_classes_of_labels_and_partitioned_storage():
    sampler = RandomOverSampler(Y, seed=0)
    indices = sampler.indices(0)[:50]
    np.testing.assert_array_equal(sampler.classes_of(indices), Y[indices])
    assert sampler.classes_of(indices).dtype == np.int64
    partitioned = RandomOverSampler.from_counts(COUNTS, seed=0)
    np.testing.assert_array_equal(partitioned.classes_of([0, 199, 200, 426]),
                                  [0, 0, 1, 5])


def test_same_labels_compares_a_digest_of_the_labels():
    sampler = RandomOverSampler(Y, seed=0)
    assert sampler.same_labels(Y) and sampler.same_labels(np.eye(6)[Y])
    assert sampler.same_labels(Y[:, None].astype(np.int32))
    assert not sampler.same_labels(np.random.default_rng(0).permutation(Y))
    assert not sampler.same_labels(Y[:-1])
    partitioned = RandomOverSampler.from_counts(COUNTS)
    assert partitioned.same_labels(np.repeat(np.arange(6), COUNTS))
    assert not partitioned.same_labels(Y)


def test_every_sampler_declares_its_keyword_arguments():
    import inspect

    for name, cls in samplers_module.SAMPLERS.items():
        parameters = inspect.signature(cls.__init__).parameters
        declared = set(parameters) - {"self", "y", "seed"}
        assert set(cls.keyword_arguments) == declared, name


def test_get_sampler_passes_context_only_where_declared():
    sampler = get_sampler("over", Y, batch_size=7, num_classes=8)
    assert sampler.num_classes == 8 and sampler.block_size == 1
    assert get_sampler("class_balanced", Y, batch_size=7).block_size == 7
    multilabel = get_sampler("multilabel", np.eye(6)[Y], num_classes=6, batch_size=4)
    assert isinstance(multilabel, MultiLabelOverSampler)


def test_error_get_sampler_unknown_keyword():
    with pytest.raises(ValueError, match=r"`sampler_kwargs`. Expected keyword "
                       r"arguments of RandomOverSampler .*\['power'\] are not"):
        get_sampler("over", Y, power=0.5)


def test_multilabel_sampler_initialises_the_base_class():
    y = multilabel_targets()
    sampler = MultiLabelOverSampler(y, seed=1)
    assert sampler.dataset_size == 600 and sampler.epoch == 0
    assert not sampler.single_label and not sampler.class_partitioned
    assert sampler.same_labels(y) and not sampler.same_labels(y[::-1])
    clone = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(clone.indices(2), sampler.indices(2))


def test_progressive_exposes_only_its_schedule():
    sampler = ProgressiveSampler(Y, num_epochs=4)
    assert not hasattr(sampler, "power")
    assert not hasattr(sampler, "class_probabilities")
    assert not isinstance(sampler, PowerSampler)
    np.testing.assert_allclose(sampler.probabilities(4), [1 / 6] * 6)


# Defect 2: InstanceSampler on multi-hot rows is not class-partitioned ---------


def test_instance_sampler_on_multi_hot_rows_is_not_class_partitioned():
    y = multilabel_targets()
    sampler = InstanceSampler(y, seed=0)
    assert not sampler.class_partitioned and not sampler.single_label
    assert sorted(sampler.indices(0).tolist()) == list(range(600))
    with pytest.raises(ValueError, match="`indices`. Expected indices of a "
                                         "single-label sampler"):
        sampler.classes_of([0, 1])
    assert InstanceSampler.from_counts([3, 4]).class_partitioned
    assert not InstanceSampler(Y).class_partitioned


# Non-finite or overflowing hyperparameters ---------------------------------------


@pytest.mark.parametrize("power", [60.0, 1000.0, 1e308])
def test_huge_powers_give_finite_probabilities(power):
    sampler = PowerSampler(Y, power=power, seed=0)
    assert np.all(np.isfinite(sampler.class_probabilities))
    assert sampler.class_probabilities.sum() == pytest.approx(1.0)
    assert sampler.epoch_class_counts().tolist() == [len(Y), 0, 0, 0, 0, 0]
    assert len(sampler.indices(0)) == len(Y)


def test_power_probabilities_match_the_direct_formula():
    for power in (0.0, 0.3, 0.5, 1.0, 2.0):
        n = np.asarray(COUNTS, dtype=np.float64)
        np.testing.assert_allclose(PowerSampler(Y, power=power).class_probabilities,
                                   n**power / np.sum(n**power), rtol=1e-12)


@pytest.mark.parametrize("build, message", [
    (lambda: PowerSampler(Y, num_samples=10**30),
     r"`num_samples`. Expected an int .*9007199254740992.*Received: "
     r"num_samples=10+$"),
    (lambda: ClassBalancedSampler(Y, batch_size=4, num_samples=2**60),
     "Received: num_samples=1152921504606846976"),
    (lambda: ProgressiveSampler(Y, num_epochs=2, num_samples=2**62),
     "Received: num_samples="),
    (lambda: RandomOverSampler(Y, sampling_strategy={1: 10**20}),
     r"`sampling_strategy`. Expected counts that are ints in \[0, 2\*\*53\]"),
    (lambda: RandomOverSampler.from_counts([2**53, 2**53 - 1, 5]),
     "`sampling_strategy`. Expected an epoch of 1 to 2\\*\\*53 samples"),
    (lambda: MultiLabelOverSampler(multilabel_targets(), clone_fraction=1e308),
     "`clone_fraction`. Expected a clone budget"),
    (lambda: PowerSampler(Y, power=float("inf")), "Received: power=inf"),
])
def test_error_overflowing_hyperparameters(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_error_slice_message_names_the_argument_and_its_bounds():
    sampler = InstanceSampler([0, 1, 1])
    with pytest.raises(ValueError, match=r"`stop`. Expected an int in \[start=2, "
                                         r"len\(sampler\)=3\]. Received: stop=1"):
        sampler.indices(0, start=2, stop=1)
