"""kimbalance.experiments: a shared stage 1 and per-method validation grids."""

import dataclasses

import keras
import numpy as np
import pytest

from kimbalance.experiments import methods, runner, splits


@pytest.fixture(scope="module")
def digits():
    return splits.long_tail_split("digits", ratio=10, val_per_class=3, max_test=200,
                                  log=None)


def _mlp(input_shape, num_classes, head):
    return runner.build_model("mlp", input_shape, num_classes, head=head)


_RUN = dict(epochs=1, batch_size=64, verbose=0, model_fn=_mlp, log=None)


def _probe(name="crt"):
    """`name` with its `post_train` first recording the stage-1 predictions."""
    seen = []
    method = methods.LONG_TAIL_METHODS[name]

    def post_train(model, context):
        seen.append(context.predict(model, context.split.x_test))
        return method.post_train(model, context)

    return dataclasses.replace(method, post_train=post_train), seen


def test_crt_continues_from_the_ce_model_of_the_same_seed(digits):
    crt, seen = _probe()
    ce = methods.LONG_TAIL_METHODS["ce"]
    results = runner.run_methods([ce, crt], digits, seeds=[1], **_RUN)
    ce_run, crt_run = results
    np.testing.assert_array_equal(seen[0], ce_run.test_scores)
    assert crt_run.history == ce_run.history
    assert crt_run.epoch_times == ce_run.epoch_times
    assert crt_run.metrics["train_time"] > ce_run.metrics["train_time"]
    assert crt_run.metrics["extra_epochs"] == 1.0
    assert crt_run.samples_per_epoch == ce_run.samples_per_epoch
    assert not np.array_equal(crt_run.test_scores, ce_run.test_scores)
    assert all(r.stage1 is None for r in results)  # weights dropped


def test_a_method_without_its_stage1_in_the_run_trains_it(digits):
    crt, seen = _probe()
    (alone,) = runner.run_methods([crt], digits, **_RUN)
    assert len(alone.epoch_times) == 1 and len(seen) == 1
    assert alone.metrics["extra_epochs"] == 1.0 and alone.stage1 is None


def test_run_method_keeps_and_takes_a_stage1(digits):
    ce = runner.run_method(methods.LONG_TAIL_METHODS["ce"], digits, keep_stage1=True,
                           epochs=1, batch_size=64, verbose=0, model_fn=_mlp)
    kept = ce.stage1
    assert isinstance(kept, runner.Stage1) and kept.method == "ce"
    assert all(isinstance(w, np.ndarray) for w in kept.weights)
    assert kept.train_time <= ce.metrics["train_time"]
    tau_norm = runner.run_method(methods.LONG_TAIL_METHODS["tau_norm"], digits,
                                 stage1=kept, epochs=1, batch_size=64, verbose=0,
                                 model_fn=_mlp)
    assert tau_norm.tuned_on == "val"
    assert tau_norm.metrics["train_time"] >= kept.train_time


def test_run_method_rejects_a_bad_stage1(digits):
    ce = runner.run_method(methods.LONG_TAIL_METHODS["ce"], digits, keep_stage1=True,
                           epochs=1, batch_size=64, verbose=0, model_fn=_mlp)
    crt = methods.LONG_TAIL_METHODS["crt"]
    with pytest.raises(ValueError, match="argument `stage1`. Expected None, or a "
                       "Stage1 of the method 'mixup' that 'mislas'"):
        runner.run_method(methods.LONG_TAIL_METHODS["mislas"], digits,
                          stage1=ce.stage1, epochs=1, verbose=0, model_fn=_mlp)
    with pytest.raises(ValueError, match="argument `stage1`"):
        runner.run_method(crt, digits, stage1=ce.stage1.weights, epochs=1,
                          verbose=0, model_fn=_mlp)
    wrong = dataclasses.replace(ce.stage1, weights=ce.stage1.weights[:1])
    with pytest.raises(ValueError, match="the weights of a model like the one"):
        runner.run_method(crt, digits, stage1=wrong, epochs=1, verbose=0,
                          model_fn=_mlp)
    with pytest.raises(ValueError, match="argument `keep_stage1`"):
        runner.run_method(crt, digits, keep_stage1="yes", epochs=1, verbose=0,
                          model_fn=_mlp)


def test_every_stage1_in_the_registry_is_a_trained_method_with_the_same_fit():
    registry = methods.LONG_TAIL_METHODS
    info = methods.TaskInfo(counts=np.array([5, 3, 2]),
                            y_train=np.repeat([0, 1, 2], [5, 3, 2]), epochs=5,
                            num_classes=3)
    continuing = [m for m in registry.values() if m.stage1]
    assert {m.name for m in continuing} >= {"crt", "tau_norm", "lws", "mislas"}
    for method in continuing:
        first = registry[method.stage1]
        assert first.post_train is None and not first.posthoc
        assert (first.head, first.wrap, first.optimizer, first.callbacks) == (
            method.head, method.wrap, method.optimizer, method.callbacks)
        assert type(first.loss(info)) is type(method.loss(info))
        ours, theirs = method.generator_kwargs(info), first.generator_kwargs(info)
        assert ours["sampler"] == theirs["sampler"]
        assert type(ours["augment"]) is type(theirs["augment"])


# --- grids -------------------------------------------------------------------


def _grid_method(values):
    chosen = []

    def optimizer(learning_rate, info):
        chosen.append(info.params["learning_rate"])
        return keras.optimizers.Adam(info.params["learning_rate"])

    method = methods.Method("grid", "CE, SGD learning rate on val",
                            loss=methods.LONG_TAIL_METHODS["ce"].loss,
                            optimizer=optimizer,
                            grid={"learning_rate": list(values)})
    return method, chosen


def test_a_grid_keeps_the_best_validation_accuracy(digits, monkeypatch):
    method, chosen = _grid_method([1e-9, 0.01])
    times, train = [], runner._train

    def recording_train(*args, **kwargs):
        result = train(*args, **kwargs)
        times.append(result.metrics["train_time"])
        return result

    monkeypatch.setattr(runner, "_train", recording_train)
    result = runner.run_method(method, digits, epochs=1, batch_size=64, verbose=0,
                               model_fn=_mlp)
    assert chosen == [1e-9, 0.01]
    # train_time is the sum over the candidates (checked without timing the runs).
    assert len(times) == 2 and result.metrics["train_time"] == sum(times)
    # A learning rate of 1e-9 leaves the random initialisation: chance level.
    assert result.tuned == {"learning_rate": 0.01} and result.tuned_on == "val"
    assert result.metrics["val_accuracy"] > 0.3
    single, _ = _grid_method([0.01])
    one = runner.run_method(single, digits, epochs=1, batch_size=64, verbose=0,
                            model_fn=_mlp)
    np.testing.assert_array_equal(one.test_scores, result.test_scores)


def test_a_grid_without_validation_data_runs_its_first_candidate(digits):
    no_val = dataclasses.replace(digits, x_val=None, y_val=None)
    method, chosen = _grid_method([0.01, 1e-9])
    result = runner.run_method(method, no_val, epochs=1, batch_size=64, verbose=0,
                               model_fn=_mlp)
    assert chosen == [0.01]
    assert result.tuned == {"learning_rate": 0.01} and result.tuned_on == "fixed"


@pytest.mark.parametrize("kwargs, message", [
    ({"stage1": "x"}, "argument `stage1`"),
    ({"stage1": "x", "post_train": lambda m, c: m, "name": "x"},
     "argument `stage1`"),
    ({"stage1": 3, "post_train": lambda m, c: m}, "argument `stage1`"),
    ({"grid": {"a": []}}, "argument `grid`"),
    ({"grid": [1, 2]}, "argument `grid`"),
    ({"grid": {"a": [1]}, "stage1": "ce", "post_train": lambda m, c: m},
     "argument `grid`. Expected None for 'm'"),
    ({"optimizer": "adam"}, "argument `optimizer`"),
])
def test_method_rejects_bad_stage1_grid_and_optimizer(kwargs, message):
    fields = {"name": "m", "summary": "s",
              "loss": methods.LONG_TAIL_METHODS["ce"].loss, **kwargs}
    with pytest.raises(ValueError, match=message):
        methods.Method(**fields)


def test_task_info_rejects_bad_params():
    with pytest.raises(ValueError, match="argument `params`"):
        methods.TaskInfo(counts=np.array([1]), y_train=np.zeros(1), epochs=1,
                         num_classes=1, params=[("a", 1)])


def test_weight_balancing_tunes_its_weight_decay_and_bounds_the_classifier(
        digits, monkeypatch):
    from kimbalance import training

    bounds, decays = [], []
    original = training.weight_balance

    def spy(model, generator, **kwargs):
        decays.append(float(model.optimizer.weight_decay))
        history, bound = original(model, generator, **kwargs)
        kernel = model.layers[-1].get_weights()[0]
        bounds.append((bound, np.linalg.norm(kernel, axis=0).max()))
        return history, bound

    monkeypatch.setattr(training, "weight_balance", spy)
    wb = methods.LONG_TAIL_METHODS["wb"]
    assert len(wb.candidates()) <= 2
    result = runner.run_method(wb, digits, epochs=1, batch_size=64, verbose=0,
                               model_fn=_mlp)
    assert decays == list(methods.WB_WEIGHT_DECAYS)  # one full run per candidate
    assert all(norm <= bound * (1 + 1e-5) for bound, norm in bounds)
    assert result.tuned_on == "val"
    assert result.tuned["weight_decay"] in methods.WB_WEIGHT_DECAYS
    assert result.metrics["extra_epochs"] == 1.0


def test_imbsam_wraps_the_model_with_the_tail_classes(digits):
    from kimbalance import training

    counts = np.array([6000, 3584, 2140, 1278, 763, 456, 272, 163, 97, 60])
    assert methods.imbsam_tail_classes(counts) == [7, 8, 9]  # under 240 images
    info = methods.TaskInfo(counts=counts, y_train=np.repeat(np.arange(10), counts),
                            epochs=1, num_classes=10)
    model = _mlp((4,), 10, "dense")
    wrapped = methods.LONG_TAIL_METHODS["imbsam"].wrap(model, info)
    assert isinstance(wrapped, training.SharpnessAwareModel)
    assert wrapped.sharpness_classes == [7, 8, 9] and wrapped.model is model
    assert wrapped.rho == methods.SAM_RHO
    result = runner.run_method(methods.LONG_TAIL_METHODS["imbsam"], digits, epochs=1,
                               batch_size=64, verbose=0, model_fn=_mlp)
    assert 0.0 <= result.metrics["balanced_accuracy"] <= 1.0
