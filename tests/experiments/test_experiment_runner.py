"""kimbalance.experiments.runner: training, post-hoc methods, sweeps."""

import numpy as np
import pytest

from kimbalance import data as kb_data
from kimbalance.experiments import methods, runner, splits, tables


@pytest.fixture(scope="module")
def tiny_split():
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    y_train = np.repeat([0, 1, 2], [60, 20, 6])
    y_test = np.repeat([0, 1, 2], 20)
    x_train = centers[y_train] + rng.normal(size=(len(y_train), 2))
    x_test = centers[y_test] + rng.normal(size=(len(y_test), 2))
    return splits.Split(x_train.astype(np.float32), y_train, x_test.astype(np.float32),
                    y_test, ["a", "b", "c"], x_val=x_test.astype(np.float32),
                    y_val=y_test)


def _tiny_model(input_shape, num_classes, head):
    return runner.build_model("mlp", input_shape, num_classes, head=head)


def test_run_methods_trains_and_applies_posthoc_adjustment(tiny_split):
    chosen = methods.select_methods(methods.LONG_TAIL_METHODS, ["posthoc_la"])
    results = runner.run_methods(chosen, tiny_split, seeds=[0], log=None, epochs=2,
                             batch_size=32, verbose=0, model_fn=_tiny_model)
    ce, posthoc = results
    assert (ce.method, posthoc.method) == ("ce", "posthoc_la")
    assert len(ce.epoch_times) == 2 and ce.metrics["train_time"] > 0
    for key in ("accuracy", "balanced_accuracy", "g_mean", "macro_f1"):
        assert 0.0 <= ce.metrics[key] <= 1.0
    assert "val_accuracy" in ce.metrics and "val_accuracy" in posthoc.metrics
    log_prior = np.log(tiny_split.counts / tiny_split.counts.sum())
    assert posthoc.tuned_on == "val" and ce.tuned == {} and ce.tuned_on == ""
    tau = posthoc.tuned["tau"]
    assert tau in methods.TAU_GRID
    np.testing.assert_allclose(posthoc.test_scores, ce.test_scores - tau * log_prior,
                               rtol=1e-5, atol=1e-5)
    row = tables.summarize(results)[1]
    assert row["tuned"] == f"tau={tau:g} on val"
    summary = tables.timing_summary(ce)
    assert summary["samples_per_s"] > 0


def test_augmented_methods_shift_the_training_images(monkeypatch):
    """`Method.augment` reaches the generator: the model sees shifted images."""
    rng = np.random.default_rng(1)
    y_train = np.repeat([0, 1, 2], [40, 16, 8])
    x_train = rng.random((len(y_train), 6, 6, 1)).astype(np.float32)
    split = splits.Split(x_train, y_train, x_train[:12], y_train[:12], ["a", "b", "c"])
    seen = []
    original = kb_data.RandomShiftFlip.__call__

    def spy(self, x, y=None, rng=None):
        out = original(self, x, y, rng=rng)
        seen.append((self.max_shift, self.horizontal_flip,
                     not np.array_equal(out, x)))
        return out

    monkeypatch.setattr(kb_data.RandomShiftFlip, "__call__", spy)
    for name in ("ldam_drw_aug", "cb_sampling_aug"):
        seen.clear()
        result = runner.run_method(methods.LONG_TAIL_METHODS[name], split, arch="mlp",
                               epochs=1, batch_size=16, verbose=0)
        assert 0.0 <= result.metrics["balanced_accuracy"] <= 1.0
        assert seen and all(s[:2] == (methods.AUGMENT_SHIFT, False) for s in seen)
        assert any(s[2] for s in seen)


def test_second_stage_methods_report_extra_epochs_and_tuning(tiny_split):
    chosen = methods.select_methods(methods.LONG_TAIL_METHODS,
                                    ["crt", "tau_norm", "sam"])
    results = runner.run_methods(chosen, tiny_split, seeds=[0], log=None, epochs=2,
                                 batch_size=32, verbose=0, model_fn=_tiny_model)
    crt, tau_norm, sam = results
    assert crt.metrics["extra_epochs"] == methods.classifier_epochs(2) == 1
    assert tau_norm.metrics["extra_epochs"] == 0 and tau_norm.tuned_on == "val"
    assert "extra_epochs" not in sam.metrics and sam.tuned == {}
    rows = {r["method"]: r for r in tables.summarize(results)}
    assert rows["crt"]["extra_epochs"] == 1.0 and "extra_epochs" not in rows["sam"]
    assert rows["tau_norm"]["tuned"].endswith("on val")


def test_post_train_must_return_a_second_stage(tiny_split):
    method = methods.Method("bad", "s", loss=methods.LONG_TAIL_METHODS["ce"].loss,
                            post_train=lambda model, context: model)
    with pytest.raises(ValueError, match="argument `post_train`"):
        runner.run_method(method, tiny_split, epochs=1, batch_size=32, verbose=0,
                          model_fn=_tiny_model)


def test_majority_mock_model_scores(tiny_split):
    s = tiny_split
    binary = splits.Split(s.x_train, (s.y_train == 2).astype(int), s.x_test,
                      (s.y_test == 2).astype(int), ["neg", "pos"], x_val=s.x_val,
                      y_val=(s.y_val == 2).astype(int))
    (result,) = runner.run_methods([methods.BINARY_METHODS["majority"]], binary,
                                   log=None)
    tables.positive_class_metrics([result])
    assert result.metrics["train_accuracy"] == pytest.approx(80 / 86)
    assert result.metrics["recall"] == 0.0
    assert result.metrics["balanced_accuracy"] == pytest.approx(0.5)


def test_run_method_refuses_a_posthoc_method(tiny_split):
    with pytest.raises(ValueError, match="Invalid value for argument `method`"):
        runner.run_method(methods.LONG_TAIL_METHODS["posthoc_la"], tiny_split)


# --- argument checks ----------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "argument `epochs`. Expected an int >= 1. Received: epochs=0"),
    ({"batch_size": 0}, "argument `batch_size`"),
    ({"seed": -1}, "argument `seed`"),
    ({"learning_rate": float("inf")}, "argument `learning_rate`"),
    ({"learning_rate": 0.0}, "argument `learning_rate`"),
    ({"arch": "vgg"}, "argument `arch`"),
    ({"verbose": "loud"}, "argument `verbose`"),
    ({"validation": "yes"}, "argument `validation`"),
    ({"jit_compile": "xla"}, "argument `jit_compile`"),
    ({"callbacks": 3}, "argument `callbacks`"),
    ({"model_fn": "mlp"}, "argument `model_fn`"),
])
def test_run_method_rejects_bad_arguments(tiny_split, kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner.run_method(methods.LONG_TAIL_METHODS["ce"], tiny_split, **kwargs)


def test_run_method_rejects_bad_method_and_split(tiny_split):
    with pytest.raises(ValueError, match="argument `method`. Expected a Method"):
        runner.run_method("ce", tiny_split)
    with pytest.raises(ValueError, match="argument `split`. Expected a Split"):
        runner.run_method(methods.LONG_TAIL_METHODS["ce"], (1, 2))


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": 3}, "argument `seeds`. Expected a non-empty list"),
    ({"seeds": []}, "argument `seeds`"),
    ({"seeds": [0, -1]}, "argument `seeds`"),
    ({"log": "print"}, "argument `log`"),
    ({"validation": 1}, "argument `validation`"),
])
def test_run_methods_rejects_bad_arguments(tiny_split, kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner.run_methods([methods.LONG_TAIL_METHODS["ce"]], tiny_split, **kwargs)
    with pytest.raises(ValueError, match="argument `methods`"):
        runner.run_methods([], tiny_split)
    with pytest.raises(ValueError, match="argument `methods`"):
        runner.run_methods(["ce"], tiny_split)


@pytest.mark.parametrize("kwargs, message", [
    ({"ratios": [1, float("inf")]}, "argument `ratios`"),
    ({"ratios": []}, "argument `ratios`"),
    ({"ratios": [0.5]}, "argument `ratios`"),
    ({"profiles": "step"}, "argument `profiles`"),
    ({"profiles": ["zipf"]}, "argument `profiles`"),
])
def test_imbalance_sweep_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner.imbalance_sweep([methods.LONG_TAIL_METHODS["ce"]], **kwargs)


@pytest.mark.parametrize("args, kwargs, message", [
    (("vgg", (4,), 2), {}, "argument `arch`"),
    (("mlp", (4,), 0), {}, "argument `num_classes`"),
    (("mlp", 4, 2), {}, "argument `input_shape`"),
    (("mlp", (4,), 2), {"head": "conv"}, "argument `head`"),
])
def test_build_model_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner.build_model(*args, **kwargs)


def test_set_random_seed_reproduces_model_weights():
    runner.set_random_seed(3)
    first = runner.build_model("mlp", (4,), 3).get_weights()
    runner.set_random_seed(3)
    second = runner.build_model("mlp", (4,), 3).get_weights()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="argument `seed`"):
        runner.set_random_seed(1.0)


def test_epoch_timer_runs_by_hand():
    timer = runner.EpochTimer()
    for epoch in range(2):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch)
    assert len(timer.times) == 2 and all(t >= 0 for t in timer.times)
