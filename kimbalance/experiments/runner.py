"""Training and scoring: one `run_method`, seeds, sweeps and timing.

`run_method` trains one method on one split with one seed (a
`kimbalance.models` network, the method's generator and loss) and scores
it on the test set; `run_methods` runs several methods over seeds, post-hoc
methods reusing their base model; `imbalance_sweep` repeats that over
imbalance ratios. `EpochTimer` records epoch wall times (a Keras callback,
also driven by hand in custom training loops).
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import keras
import numpy as np

from kimbalance import data as kb_data
from kimbalance import models as kb_models
from kimbalance._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    invalid,
)
from kimbalance.evaluation import evaluate, multilabel_report
from kimbalance.experiments.methods import (
    HEADS,
    Method,
    SecondStage,
    StageContext,
    TaskInfo,
)
from kimbalance.experiments.splits import PROFILES, Split, long_tail_split
from kimbalance.experiments.tables import summarize

__all__ = [
    "ARCHITECTURES",
    "EpochTimer",
    "RunResult",
    "Stage1",
    "build_model",
    "imbalance_sweep",
    "run_method",
    "run_methods",
    "set_random_seed",
]

ARCHITECTURES = ("cnn", "mlp", "resnet32")


def build_model(arch: str, input_shape: Sequence[int], num_classes: int, *,
                head: str = "dense") -> keras.Model:
    """One of the `kimbalance.models` networks (logits out).

    Args:
        arch: `"cnn"` (small_cnn), `"mlp"` or `"resnet32"`.
        input_shape: per-sample input shape.
        num_classes: output units.
        head: `"dense"` or `"cosine"` classifier.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: for an unknown architecture or head, a bad input shape
            or a class count below 1.
    """
    check_choice("arch", arch, ARCHITECTURES)
    check_choice("head", head, HEADS)
    check_int("num_classes", num_classes, low=1)
    if (not isinstance(input_shape, tuple | list) or not input_shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                       for d in input_shape)):
        raise invalid("input_shape", "a non-empty tuple of ints >= 1", input_shape)
    builders: dict[str, Callable[..., keras.Model]] = {
        "cnn": kb_models.small_cnn, "mlp": kb_models.mlp,
        "resnet32": kb_models.resnet32}
    builder = builders[arch]
    return builder(input_shape, num_classes, classifier=head)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every training epoch in `self.times` (seconds).

    A Keras callback for `fit`; custom training loops (a torch DDP loop, a
    `tf.distribute` loop) call `on_epoch_begin(epoch)` / `on_epoch_end(epoch)`
    themselves.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # Set by on_epoch_begin, which Keras (or the loop) calls first.
        self.times.append(time.perf_counter() - cast(float, self._start))


def set_random_seed(seed: int) -> None:
    """Seeds Python, NumPy and the backend, like `keras.utils.set_random_seed`.

    `keras.utils.set_random_seed` imports TensorFlow whenever it is
    installed (to seed `tf.random` for `tf.data` pipelines), which on the
    torch and jax backends costs seconds and prints TensorFlow's start-up
    log lines. The runner never uses TensorFlow there, so on those backends
    this seeds what Keras model building reads instead: Python's `random`
    (initializer and dropout seeds come from it), NumPy, and torch's global
    generator on the torch backend. On TensorFlow, or once TensorFlow is
    loaded anyway, it calls `keras.utils.set_random_seed`.

    Args:
        seed: an int >= 0.

    Raises:
        ValueError: for a seed that is not an int >= 0.
    """
    seed = check_int("seed", seed, low=0)
    backend = keras.backend.backend()
    if backend == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


@dataclasses.dataclass
class RunResult:
    """One method trained (or applied) with one seed.

    Attributes:
        method: the method's name.
        seed: the seed.
        metrics: floats (rates in [0, 1], `train_time` in seconds).
        history: Keras `History.history` (per-epoch lists).
        epoch_times: seconds per epoch.
        test_scores: the test-set decision scores (logits, or adjusted
            logits for post-hoc methods).
        report: the `kimbalance.evaluate` report (single-label) or the
            `multilabel_report` dict.
        samples_per_epoch: training samples drawn per epoch.
        jit_compile: the compiled model's resolved jit mode.
        tuned: `{quantity: value}` chosen after training (a post-hoc or
            tau-norm tau), empty when nothing was tuned.
        tuned_on: `"val"` (chosen on the validation set), `"fixed"` (a
            default: the split has no validation set) or `""` (nothing
            tuned). The test set never chooses anything.
        stage1: the `Stage1` after the main fit, kept only when asked
            (`run_method(..., keep_stage1=True)`); `run_methods` drops it
            once the seed's methods are done.
    """

    def __post_init__(self):
        if not isinstance(self.method, str) or not self.method:
            raise invalid("method", "a method name (a non-empty str)", self.method)
        check_int("seed", self.seed)
        if not isinstance(self.metrics, dict):
            raise invalid("metrics", "a dict {name: float}", self.metrics)

    method: str
    seed: int
    metrics: dict
    history: dict = dataclasses.field(default_factory=dict)
    epoch_times: list = dataclasses.field(default_factory=list)
    test_scores: np.ndarray | None = None
    val_scores: np.ndarray | None = None
    report: object = None
    samples_per_epoch: int = 0
    jit_compile: object = None
    tuned: dict = dataclasses.field(default_factory=dict)
    tuned_on: str = ""
    stage1: Stage1 | None = None


def _single_label_scores(scores, y_true, counts, class_names):
    report = evaluate(scores, y=y_true, class_counts=counts,
                      class_names=[str(n) for n in class_names])
    metrics = {k: float(v) for k, v in report.summary().items() if v is not None}
    return metrics, report


@dataclasses.dataclass
class Stage1:
    """A method's trained model after its main `fit`, for methods that continue.

    `run_methods` keeps it for a method that others name as their
    `Method.stage1` and hands it to `run_method(..., stage1=...)`, which
    then skips the fit and runs only the method's `post_train`.

    Attributes:
        method: the name of the method that trained it.
        weights: `model.get_weights()` after the fit (NumPy arrays; no
            Keras serialization, which imports TensorFlow on every backend).
        history: the fit's `History.history`.
        epoch_times: seconds per epoch of the fit.
        train_time: seconds of the fit.
        samples_per_epoch: training samples drawn per epoch.
        jit_compile: the compiled model's resolved jit mode.
    """

    method: str
    weights: list
    history: dict
    epoch_times: list
    train_time: float
    samples_per_epoch: int
    jit_compile: object = None


def run_method(
    method: Method,
    split: Split,
    *,
    arch: str = "cnn",
    epochs: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 1e-3,
    verbose: int | str = 1,
    callbacks: (Sequence[keras.callbacks.Callback]
                | Callable[[Any, Split], Sequence[keras.callbacks.Callback]]) = (),
    validation: bool = False,
    train_accuracy: bool = False,
    jit_compile: bool | str = "auto",
    run_eagerly: bool = False,
    drop_remainder: bool = False,
    model_fn: Callable[[tuple[int, ...], int, str], keras.Model] | None = None,
    stage1: Stage1 | None = None,
    keep_stage1: bool = False,
) -> RunResult:
    """Trains `method` on `split` and scores it on `split`'s test set.

    Post-hoc methods are not trained here: use `run_methods`, which reuses
    the base method's result. A method with a `grid` is trained once per
    candidate and the best validation accuracy is kept (see `Method.grid`):
    `train_time` is then the sum over the candidates and `tuned` names the
    choice.

    Args:
        method: a `Method` (not post-hoc).
        split: a `Split`.
        arch: architecture for `build_model` (ignored with `model_fn`).
        epochs: training epochs.
        batch_size: batch size of the generator.
        seed: seeds Keras (weights) and the generator (batch order).
        learning_rate: learning rate of the method's optimizer (Adam by
            default).
        verbose: Keras `fit` verbosity.
        callbacks: extra Keras callbacks, or a callable `(model, split) ->
            callbacks` (e.g. a `ClassReport` on the validation data).
        validation: also compute validation-set scores (for post-hoc tuning)
            and, single-label, `val_accuracy`.
        train_accuracy: also report `train_accuracy` (single-label).
        jit_compile: forwarded to `compile` ("auto" by default).
        run_eagerly: forwarded to `compile`.
        drop_remainder: drop each epoch's last partial batch (one batch
            shape, one traced train step: smoke runs); kept when the epoch
            is shorter than a batch.
        model_fn: optional `(input_shape, num_classes, head) -> model`.
        stage1: a `Stage1` of the method named by `method.stage1` (same
            split, seed and training arguments): the model gets its weights
            and skips the main fit; `train_time` is the stage-1 time plus
            the `post_train` time, `history` and `epoch_times` are stage 1's.
            None to train the method's own stage 1.
        keep_stage1: keep the weights after the main fit in
            `RunResult.stage1` (for methods that continue from this one).

    Returns:
        A `RunResult`.

    Raises:
        ValueError: for a post-hoc method, a `split` that is not a `Split`,
            a `stage1` that is not a `Stage1` of `method.stage1` fitting the
            model, or any invalid training argument.
    """
    _check_method(method)
    if method.posthoc:
        raise invalid("method", "a trained method (post-hoc methods run through "
                      "run_methods, which reuses their base)", method.name)
    _check_split(split)
    if model_fn is None:
        check_choice("arch", arch, ARCHITECTURES)
    elif not callable(model_fn):
        raise invalid("model_fn", "a callable (input_shape, num_classes, head) -> "
                      "model, or None", model_fn)
    check_int("epochs", epochs, low=1)
    check_int("batch_size", batch_size, low=1)
    check_float("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise invalid("verbose", "0, 1, 2 or 'auto'", verbose)
    if not (callable(callbacks) or isinstance(callbacks, list | tuple)):
        raise invalid("callbacks", "a list of Keras callbacks or a callable "
                      "(model, split) -> callbacks", callbacks)
    validation = check_bool("validation", validation)
    train_accuracy = check_bool("train_accuracy", train_accuracy)
    if jit_compile not in ("auto", True, False):
        raise invalid("jit_compile", "'auto', True or False", jit_compile)
    run_eagerly = check_bool("run_eagerly", run_eagerly)
    drop_remainder = check_bool("drop_remainder", drop_remainder)
    keep_stage1 = check_bool("keep_stage1", keep_stage1)
    if stage1 is not None and (not isinstance(stage1, Stage1)
                               or stage1.method != method.stage1):
        raise invalid("stage1", f"None, or a Stage1 of the method "
                      f"{method.stage1!r} that {method.name!r} continues from",
                      stage1)
    if model_fn is None:
        def model_fn(shape, n, head):
            return build_model(arch, shape, n, head=head)
    settings = dict(epochs=epochs, batch_size=batch_size, seed=seed,
                    learning_rate=learning_rate, verbose=verbose,
                    callbacks=callbacks, train_accuracy=train_accuracy,
                    jit_compile=jit_compile, run_eagerly=run_eagerly,
                    drop_remainder=drop_remainder, model_fn=model_fn,
                    stage1=stage1, keep_stage1=keep_stage1)
    candidates = method.candidates()
    if len(candidates) == 1 and not method.grid:
        return _train(method, split, params={}, validation=validation, **settings)
    if split.x_val is None or split.multilabel:
        result = _train(method, split, params=candidates[0], validation=validation,
                        **settings)
        result.tuned, result.tuned_on = {**candidates[0], **result.tuned}, "fixed"
        return result
    results = [_train(method, split, params=params, validation=True, **settings)
               for params in candidates]
    accuracies = [r.metrics["val_accuracy"] for r in results]
    best = int(np.argmax(accuracies))  # the first on ties
    result = results[best]
    result.metrics["train_time"] = float(sum(r.metrics["train_time"]
                                             for r in results))
    result.tuned = {**candidates[best], **result.tuned}
    result.tuned_on = "val"
    return result


def _train(method, split, *, params, epochs, batch_size, seed, learning_rate,
           verbose, callbacks, validation, train_accuracy, jit_compile,
           run_eagerly, drop_remainder, model_fn, stage1, keep_stage1):
    """One training run of `method` with the grid candidate `params`."""
    set_random_seed(seed)
    counts = split.counts
    info = TaskInfo(counts=counts, y_train=split.y_train, epochs=epochs,
                    num_classes=split.num_classes, params=dict(params))
    if method.majority:
        return _run_majority(method, split, info, seed)
    model = model_fn(split.input_shape, split.num_classes, method.head)

    def optimizer():
        if method.optimizer is None:
            return keras.optimizers.Adam(learning_rate)
        return method.optimizer(learning_rate, info)

    compile_kwargs = dict(loss=method.loss(info), jit_compile=jit_compile,
                          run_eagerly=run_eagerly)
    if stage1 is not None:
        try:
            model.set_weights(stage1.weights)
        except ValueError:
            raise invalid("stage1", f"the weights of a model like the one "
                          f"{method.name!r} builds", stage1.method) from None
        model.compile(optimizer=optimizer(), **compile_kwargs)
        history, epoch_times = stage1.history, list(stage1.epoch_times)
        samples_per_epoch = stage1.samples_per_epoch
        start = time.perf_counter() - stage1.train_time
    else:
        generator_kwargs = dict(batch_size=batch_size, seed=seed,
                                **method.generator_kwargs(info))
        generator = kb_data.BalancedBatchGenerator(split.x_train, split.y_train,
                                                   **generator_kwargs)
        if drop_remainder and generator.epoch_size >= batch_size:
            generator = kb_data.BalancedBatchGenerator(
                split.x_train, split.y_train, drop_remainder=True,
                **generator_kwargs)
        trained = method.wrap(model, info) if method.wrap else model
        trained.compile(optimizer=optimizer(), **compile_kwargs)
        if trained is not model:  # a wrapper sharing the weights: compile both
            model.compile(optimizer=optimizer(), **compile_kwargs)
        timer = EpochTimer()
        extra = callbacks(model, split) if callable(callbacks) else list(callbacks)
        start = time.perf_counter()
        fitted = trained.fit(generator, epochs=epochs, verbose=verbose,
                             callbacks=[timer, generator.sync_callback(),
                                        *method.callbacks(generator, info),
                                        *extra])
        history = {k: [float(v) for v in vs] for k, vs in fitted.history.items()}
        epoch_times = timer.times
        samples_per_epoch = int(min(generator.epoch_size,
                                    len(generator) * batch_size))
        if keep_stage1:
            kept = Stage1(method=method.name, weights=model.get_weights(),
                          history=history, epoch_times=list(epoch_times),
                          train_time=time.perf_counter() - start,
                          samples_per_epoch=samples_per_epoch,
                          jit_compile="eager" if run_eagerly else model.jit_compile)
    stage = SecondStage(model)
    if method.post_train is not None:
        stage = method.post_train(model, StageContext(
            split=split, info=info, verbose=verbose, predict=_predict,
            make_generator=lambda **kw: kb_data.BalancedBatchGenerator(
                split.x_train, split.y_train, batch_size=batch_size, seed=seed,
                **kw)))
        if not isinstance(stage, SecondStage):
            raise invalid("post_train", "a callable returning a SecondStage",
                          method.post_train)
        model = stage.model
    train_time = time.perf_counter() - start
    parts = {"test": split.x_test}
    if validation and split.x_val is not None:
        parts["val"] = split.x_val
    if train_accuracy and not split.multilabel:
        parts["train"] = split.x_train
    scores = _predict_parts(model, parts)
    result = _score(method, split, seed, scores["test"], counts)
    result.val_scores = scores.get("val")
    result.history = history
    result.epoch_times = epoch_times
    if result.val_scores is not None and not split.multilabel:
        result.metrics["val_accuracy"] = float(
            np.mean(result.val_scores.argmax(axis=1) == split.y_val))
    if "train" in scores:
        result.metrics["train_accuracy"] = float(
            np.mean(scores["train"].argmax(axis=1) == split.y_train))
    result.metrics["train_time"] = train_time
    if method.post_train is not None:
        result.metrics["extra_epochs"] = float(stage.extra_epochs)
    if stage.tuned:
        result.tuned, result.tuned_on = dict(stage.tuned), stage.tuned_on
    result.samples_per_epoch = samples_per_epoch
    result.jit_compile = "eager" if run_eagerly else model.jit_compile
    if stage1 is None and keep_stage1:
        result.stage1 = kept
    return result


PREDICT_BATCH = 1024


def _predict(model, x):
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0),
                      np.float32)


def _predict_parts(model, parts):
    """One `predict` over the concatenated inputs (one traced shape), split back.

    Under jit (jax, tensorflow) every distinct input length below the batch
    size traces the predict function again; one call over test, validation
    and training inputs traces it once or twice.
    """
    names = list(parts)
    sizes = [len(parts[n]) for n in names]
    joined = np.concatenate([parts[n] for n in names]) if len(names) > 1 else (
        parts[names[0]])
    scores = np.asarray(model.predict(joined, batch_size=PREDICT_BATCH, verbose=0),
                        np.float32)
    bounds = np.cumsum([0, *sizes])
    return {n: scores[bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}


def _score(method, split, seed, test_scores, counts):
    if split.multilabel:
        report = multilabel_report(split.y_test, test_scores,
                                   label_names=split.class_names)
        metrics = {k: report[k] for k in ("macro_f1", "micro_f1", "map")}
    else:
        metrics, report = _single_label_scores(test_scores, split.y_test, counts,
                                               split.class_names)
    return RunResult(method=method.name, seed=seed, metrics=metrics,
                     test_scores=test_scores, report=report)


def _run_majority(method, split, info, seed):
    log_prior = np.log(np.maximum(info.counts, 1) / info.counts.sum())
    scores = np.tile(log_prior.astype(np.float32), (len(split.y_test), 1))
    result = _score(method, split, seed, scores, info.counts)
    majority = int(np.argmax(info.counts))
    result.metrics["train_accuracy"] = float(np.mean(split.y_train == majority))
    if split.y_val is not None:
        result.metrics["val_accuracy"] = float(np.mean(split.y_val == majority))
        result.val_scores = np.tile(log_prior.astype(np.float32),
                                    (len(split.y_val), 1))
    result.metrics["train_time"] = 0.0
    return result


def run_methods(methods: Sequence[Method], split: Split | Callable[[int], Split], *,
                seeds: Sequence[int] = (0,),
                log: Callable[[str], Any] | None = print,
                validation: bool | None = None, **kwargs: Any) -> list[RunResult]:
    """Runs every method for every seed; post-hoc methods reuse their base.

    A method whose `Method.stage1` is listed before it continues from that
    method's trained model of the same seed (its weights kept after the
    fit), so the shared stage 1 is trained once: e.g. `crt`, `tau_norm` and
    `lws` after `ce` train only their second stage. Their `train_time` is
    the stage-1 time plus their own; their `history` and `epoch_times` are
    stage 1's. A method whose stage 1 is not listed before it trains it
    itself.

    Args:
        methods: `Method`s (see `select_methods`; bases must be included).
        split: a `Split`, or a callable `seed -> Split` (a fresh imbalanced
            draw per seed).
        seeds: the seeds.
        log: progress lines (`print`, or None).
        validation: score the validation data too; by default only when a
            post-hoc method needs it.
        **kwargs: forwarded to `run_method`.

    Returns:
        A list of `RunResult`, ordered by method then seed.

    Raises:
        ValueError: for an empty method list, no seeds, or a post-hoc
            method listed before its base.
    """
    if (not isinstance(methods, list | tuple) or not methods
            or not all(isinstance(m, Method) for m in methods)):
        raise invalid("methods", "a non-empty list of Method", methods)
    if not (isinstance(split, Split) or callable(split)):
        raise invalid("split", "a Split or a callable seed -> Split", split)
    seeds = _check_seeds(seeds)
    _check_log(log)
    if validation is not None:
        check_bool("validation", validation)
    results: dict[tuple[str, int], RunResult] = {}
    needs_val = (any(m.posthoc for m in methods) if validation is None
                 else bool(validation))
    names = [m.name for m in methods]
    shared = {m.stage1 for i, m in enumerate(methods)
              if m.stage1 in names[:i] and not m.posthoc}
    for seed in seeds:
        current = split(seed) if callable(split) else split
        for method in methods:
            if log:
                log(f"[{keras.backend.backend()}] {method.name} seed={seed}: "
                    f"{method.summary}")
            if method.posthoc:
                base = results.get((method.base, seed))
                if base is None:
                    raise invalid("methods", f"the base method {method.base!r} of "
                                  f"{method.name!r} to be listed first", method.name)
                results[(method.name, seed)] = _run_posthoc(
                    method, base, current, epochs=kwargs.get("epochs", 10))
            else:
                base = results.get((method.stage1, seed))
                results[(method.name, seed)] = run_method(
                    method, current, seed=seed, validation=needs_val,
                    stage1=base.stage1 if base is not None else None,
                    keep_stage1=method.name in shared, **kwargs)
            if log:
                log("    " + _metrics_line(results[(method.name, seed)].metrics))
        for method in methods:  # the kept weights are no longer needed
            results[(method.name, seed)].stage1 = None
    return [results[(m.name, s)] for m in methods for s in seeds]


def _run_posthoc(method, base, split, *, epochs):
    info = TaskInfo(counts=split.counts, y_train=split.y_train, epochs=epochs,
                    num_classes=split.num_classes)
    decision = method.decide(base.test_scores, base.val_scores, split, info)
    tuned, tuned_on = {}, ""
    if isinstance(decision, tuple):  # (scores, tuned, tuned_on)
        decision, tuned, tuned_on = decision
    scores = np.asarray(decision, np.float32)
    result = _score(method, split, base.seed, scores, info.counts)
    result.tuned, result.tuned_on = dict(tuned), tuned_on
    if base.val_scores is not None and not split.multilabel:
        val_decisions = method.decide(base.val_scores, base.val_scores, split, info)
        if isinstance(val_decisions, tuple):
            val_decisions = val_decisions[0]
        result.metrics["val_accuracy"] = float(
            np.mean(np.asarray(val_decisions).argmax(axis=1) == split.y_val))
    result.metrics["train_time"] = base.metrics.get("train_time", 0.0)
    result.history = base.history
    result.epoch_times = base.epoch_times
    result.samples_per_epoch = base.samples_per_epoch
    result.jit_compile = base.jit_compile
    return result


def _metrics_line(metrics):
    return "  ".join(f"{k}={v:.4f}" if k != "train_time" else f"{k}={v:.1f}s"
                     for k, v in metrics.items())


def imbalance_sweep(
    methods: Sequence[Method],
    dataset: str = "digits",
    *,
    ratios: Sequence[float] = (1, 10, 100),
    profiles: Sequence[str] = ("step", "long_tail"),
    seeds: Sequence[int] = (0,),
    data_dir: str | pathlib.Path | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    min_tail: int = 5,
    log: Callable[[str], Any] | None = print,
    **run_kwargs: Any,
) -> tuple[list[dict[str, Any]], list[RunResult]]:
    """Trains `methods` on imbalanced subsets of growing ratio; one test set.

    Ratio 1 is the same balanced set for every profile: it is trained once
    and reported under each profile. Ratios that would leave the rarest
    class fewer than `min_tail` samples are skipped (noted through `log`).

    Args:
        methods: `Method`s (post-hoc ones after their base).
        dataset: a `load_dataset` name.
        ratios: imbalance ratios n_max / n_min.
        profiles: `"step"` and/or `"long_tail"`.
        seeds: training seeds (the subsets use seed 0: nested across ratios).
        data_dir, max_train, max_test: as `long_tail_split`.
        min_tail: see `supported_ratio`.
        log: progress lines (`print` or None).
        **run_kwargs: forwarded to `run_methods` / `run_method`.

    Returns:
        `(rows, runs)`: summary rows with `profile` and `ratio` keys (see
        `summarize`) and the raw `RunResult`s.

    Raises:
        ValueError: for no methods, no ratios, a ratio below 1 or not
            finite, an unknown profile, or no seeds.
    """
    if (not isinstance(methods, list | tuple) or not methods
            or not all(isinstance(m, Method) for m in methods)):
        raise invalid("methods", "a non-empty list of Method", methods)
    if not isinstance(ratios, list | tuple) or not ratios:
        raise invalid("ratios", "a non-empty list of ratios >= 1", ratios)
    ratios = [check_float("ratios", r, low=1.0) for r in ratios]
    if isinstance(profiles, str) or not isinstance(profiles, list | tuple) or (
            not profiles):
        raise invalid("profiles", f"a non-empty list from {list(PROFILES)}", profiles)
    for profile in profiles:
        check_choice("profiles", profile, PROFILES)
    _check_seeds(seeds)
    _check_log(log)
    rows, runs, done = [], [], {}
    for profile in profiles:
        for ratio in ratios:
            split = long_tail_split(dataset, profile=profile, ratio=ratio,
                                    data_dir=data_dir, max_train=max_train,
                                    max_test=max_test, min_tail=min_tail, log=None)
            used = split.ratio
            if used != float(ratio):
                if log:
                    log(f"skip {profile} ratio {ratio:g}: {dataset} supports at "
                        f"most {used:g} with >= {min_tail} tail samples")
                continue
            key = "balanced" if float(ratio) == 1.0 else (profile, float(ratio))
            if key not in done:
                if log:
                    log(f"--- {split.description}: counts {split.counts.tolist()}")
                done[key] = run_methods(methods, split, seeds=seeds, log=log,
                                        **run_kwargs)
                runs += done[key]
            for row in summarize(done[key]):
                rows.append({"profile": profile, "ratio": float(ratio), **row})
    return rows, runs


def _check_method(method):
    if not isinstance(method, Method):
        raise invalid("method", "a Method (e.g. LONG_TAIL_METHODS['ce'])", method)
    return method


def _check_split(split):
    if not isinstance(split, Split):
        raise invalid("split", "a Split (e.g. from long_tail_split)", split)
    return split


def _check_seeds(seeds):
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        raise invalid("seeds", "a non-empty list of ints (e.g. [0, 1, 2])", seeds)
    try:
        seeds = list(seeds)
    except TypeError:
        raise invalid("seeds", "a non-empty list of ints", seeds) from None
    if not seeds:
        raise invalid("seeds", "a non-empty list of ints", seeds)
    for seed in seeds:
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or (
                seed < 0):
            raise invalid("seeds", "ints >= 0", seeds)
    return [int(s) for s in seeds]


def _check_log(log):
    if log is not None and not callable(log):
        raise invalid("log", "a callable taking one str (e.g. print) or None", log)
    return log
