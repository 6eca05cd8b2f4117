"""Every recipe runs end to end in `--smoke` mode on the current backend.

To stay inside the time budget, one fresh Python process (the backend from
KERAS_BACKEND, temporary KERAS_HOME / MPLCONFIGDIR, quiet TensorFlow) imports
keras once and runs the five recipe scripts one after another as `__main__`,
each with its own `--out` directory; `compare_backends.py` then starts its own
worker process for the current backend, so the subprocess path is exercised
too. The tests below check each recipe's exit status, tables, JSON and plots.
"""

import json
import os
import pathlib
import runpy
import subprocess
import sys

import keras
import pytest

from kimbalance.experiments import (
    BINARY_METHODS,
    LONG_TAIL_METHODS,
    MULTILABEL_METHODS,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECIPES = ["cats_vs_dogs", "long_tail", "imbalance_sweep", "multilabel",
           "compare_backends"]
PNGS = {
    "cats_vs_dogs": ["curves_accuracy.png", "curves_precision.png",
                     "curves_recall.png"],
    "long_tail": ["per_class_recall.png", "confusion_ce.png"],
    "imbalance_sweep": ["imbalance_sweep_step.png", "imbalance_sweep_long_tail.png"],
    "multilabel": ["per_label_f1.png"],
    "compare_backends": ["compare_backends.png"],
}

DRIVER = """
import contextlib, io, json, os, runpy, sys, time, traceback
status, helps = {}, {}
for name, out in json.loads(sys.argv[1]).items():
    start = time.perf_counter()
    sys.argv = [os.path.join("recipes", name + ".py"), "--help"]
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        runpy.run_path(sys.argv[0], run_name="__main__")
    helps[name] = text.getvalue()
    sys.argv = [os.path.join("recipes", name + ".py"), "--smoke", "--quiet",
                "--out", out]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        status[name] = "ok"
    except SystemExit as exit:
        status[name] = "ok" if not exit.code else f"exit {exit.code}"
    except Exception:
        status[name] = traceback.format_exc()
    print(f"=== {name}: {status[name]} ({time.perf_counter() - start:.1f} s)",
          flush=True)
print("HELP " + json.dumps(helps))
print("STATUS " + json.dumps(status))
print("TENSORFLOW_LOADED " + json.dumps("tensorflow" in sys.modules))
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Runs every recipe once; returns (status by recipe, out dir by recipe, log)."""
    tmp = tmp_path_factory.mktemp("recipes")
    outs = {name: str(tmp / name) for name in RECIPES}
    # No TF_CPP_MIN_LOG_LEVEL / TF_ENABLE_ONEDNN_OPTS here: the recipes must
    # quiet TensorFlow themselves (recipes/_backend.py).
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env = {**env, "KERAS_BACKEND": keras.backend.backend(),
           "KERAS_HOME": str(tmp / "keras"), "MPLCONFIGDIR": str(tmp / "mpl"),
           "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(outs)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    status_lines = [line for line in proc.stdout.splitlines()
                    if line.startswith("STATUS ")]
    assert status_lines, f"the recipe driver crashed:\n{log[-6000:]}"
    status = json.loads(status_lines[-1][len("STATUS "):])
    help_line = next(line for line in proc.stdout.splitlines()
                     if line.startswith("HELP "))
    status["help"] = json.loads(help_line[len("HELP "):])
    status["tensorflow_loaded"] = any(
        line == "TENSORFLOW_LOADED true" for line in proc.stdout.splitlines())
    return status, {k: pathlib.Path(v) for k, v in outs.items()}, log


def _load(smoke, name):
    status, outs, log = smoke
    assert status[name] == "ok", f"{name} failed:\n{status[name]}\n{log[-4000:]}"
    out = outs[name]
    for png in PNGS[name]:
        path = out / png
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert (out / f"{name}.md").read_text().count("|") > 10
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.parametrize("name", RECIPES)
def test_help_lists_the_common_flags(smoke, name):
    text = smoke[0]["help"][name]
    for flag in ("--backend", "--dataset", "--epochs", "--seeds", "--out", "--quiet",
                 "--smoke"):
        assert flag in text, (name, flag)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow",
                    reason="TensorFlow is the backend there")
def test_recipes_print_no_tensorflow_lines_on_other_backends(smoke):
    """Running every recipe on torch / jax prints none of TensorFlow's lines.

    TensorFlow used to be imported by `keras.utils.set_random_seed` in every
    run and printed its oneDNN start-up lines. The runner no longer imports it
    (tests/experiments checks that importing kimbalance, building and seeding
    leave it unloaded); Keras' own model serialization still imports it when
    a method copies a model (tau_norm, lws), so the recipes quiet it there.
    """
    log = smoke[2]
    noise = [line for line in log.splitlines()
             if "oneDNN" in line or "absl::InitializeLog" in line
             or "cuda_dnn" in line or "port.cc" in line]
    assert not noise, noise[:5]


def _rate(value):
    return value is not None and 0.0 <= value <= 1.0


def test_cats_vs_dogs(smoke):
    payload = _load(smoke, "cats_vs_dogs")
    rows = {row["method"]: row for row in payload["rows"]}
    assert set(rows) == {"majority", "ce", "cw_0_1", "cw_0.15_0.85", "cw_balanced",
                         "over_sampling", "threshold", "reference"}
    mock = rows["majority"]
    assert mock["recall"] == 0.0 and mock["accuracy"] == pytest.approx(0.5)
    assert mock["train_accuracy"] == pytest.approx(0.8, abs=0.01)
    for row in rows.values():
        assert all(_rate(row[k]) for k in ("accuracy", "precision", "recall"))
    assert payload["curves"]["ce"], "per-epoch validation curves are recorded"


def test_long_tail(smoke):
    payload = _load(smoke, "long_tail")
    rows = {row["method"]: row for row in payload["rows"]}
    assert set(rows) == set(LONG_TAIL_METHODS)  # every method, post-hoc included
    for row in rows.values():
        assert _rate(row["balanced_accuracy"]) and _rate(row["macro_f1"])
        assert row["train_time"] >= 0
    assert "ratio=" in payload["meta"]["split"]
    # smoke mode tunes on a 2-per-class validation set, never on the test set
    assert payload["meta"]["val_per_class"] == 2
    assert "val=2/class" in payload["meta"]["split"]
    assert rows["posthoc_la"]["tuned"].endswith("on val")
    assert rows["tau_norm"]["tuned"].endswith("on val")
    for name in ("crt", "lws", "mislas"):
        assert rows[name]["extra_epochs"] == 1.0, name
    recall = payload["per_class_recall"]["ce"]
    assert len(recall) == 10 and all(_rate(r) for r in recall)
    status, outs, _ = smoke
    assert list(outs["long_tail"].glob("confusion_*.png"))


def test_imbalance_sweep(smoke):
    payload = _load(smoke, "imbalance_sweep")
    rows = payload["rows"]
    assert {row["profile"] for row in rows} == {"step", "long_tail"}
    assert {row["ratio"] for row in rows} == {5.0}
    assert {row["method"] for row in rows} == {"ce", "over_sampling",
                                               "under_sampling", "logit_adjusted"}
    assert all(_rate(row["accuracy"]) for row in rows)


def test_multilabel(smoke):
    payload = _load(smoke, "multilabel")
    rows = {row["method"]: row for row in payload["rows"]}
    assert set(rows) == {"bce", "weighted_bce", "sigmoid_focal", "asl", "db",
                         "ml_over", "thresholds"}
    for row in rows.values():
        assert _rate(row["macro_f1"]) and _rate(row["micro_f1"]) and _rate(row["map"])
    before, after = payload["describe_before"], payload["describe_after"]
    assert after["mean_ir"] < before["mean_ir"]  # over-sampling reduces MeanIR
    assert len(payload["per_label"]["bce"]) == 10


def test_compare_backends(smoke):
    payload = _load(smoke, "compare_backends")
    (row,) = payload["rows"]
    assert row["backend"] == keras.backend.backend()
    assert row["samples_per_s"] > 0 and _rate(row["balanced_accuracy"])
    assert row["first_epoch_ms"] > 0 and row["peak_rss_mb"] > 50
    assert 0 < row["epoch_min_ms"] <= row["epoch_ms"] <= row["epoch_max_ms"]
    assert payload["agreement"] is None  # one backend: nothing to compare
    _, _, log = smoke
    # one summary line for the backend, no Keras progress bar of the worker
    lines = [line for line in log.splitlines()
             if line.startswith(keras.backend.backend())]
    assert len(lines) == 1 and "peak RSS" in lines[0], lines
    assert "━" not in log and "step -" not in log


def test_compare_backends_agreement_rule():
    module = runpy.run_path(str(ROOT / "recipes" / "compare_backends.py"),
                            run_name="compare_backends")
    rows = [{"backend": b, "accuracy": a, "test_samples": 10_000}
            for b, a in (("torch", 0.85), ("jax", 0.855), ("tensorflow", 0.86))]
    check = module["agreement"](rows)
    # binomial SE at p = 0.855 over 10,000 images: 0.35 points; tolerance 1.5
    assert check["agree"] and check["tolerance"] == pytest.approx(0.0149, abs=2e-4)
    rows[2]["accuracy"] = 0.83
    assert not module["agreement"](rows)["agree"]
    rows[0]["accuracy_seed_std"] = 0.02  # observed seed noise widens it
    assert module["agreement"](rows)["agree"]
    assert module["agreement"](rows[:1]) is None


@pytest.mark.parametrize("name", ["long_tail", "cats_vs_dogs", "multilabel"])
def test_methods_flag_takes_commas_or_spaces(name):
    module = runpy.run_path(str(ROOT / "recipes" / f"{name}.py"), run_name=name)
    registry = {"long_tail": LONG_TAIL_METHODS, "cats_vs_dogs": BINARY_METHODS,
                "multilabel": MULTILABEL_METHODS}[name]
    first, second = list(registry)[1:3]
    parser = module["build_parser"]()
    for argv in (["--methods", first, second], ["--methods", f"{first},{second}"]):
        assert parser.parse_args(argv).methods == [first, second]
