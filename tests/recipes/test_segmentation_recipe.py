"""recipes/segmentation.py: smoke run on the current backend, resume, scores.

One fresh Python process (the backend from KERAS_BACKEND, temporary
KERAS_HOME / MPLCONFIGDIR, TensorFlow not quieted by the test) runs the
recipe in `--smoke` mode (digits tiles, every method, one epoch), then again
with `--resume` on the same runs file, which must train nothing, then with
`--report-only`, which rebuilds the table from the runs file alone (smoke
mode runs one seed, so nothing is missing there). The score
functions are checked against scikit-learn on the flattened pixels.
"""

import json
import os
import pathlib
import re
import runpy
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, jaccard_score

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "recipes" / "segmentation.py"
RECIPE = runpy.run_path(str(SCRIPT), run_name="segmentation")
METHODS = list(RECIPE["METHODS"])

DRIVER = """
import os, runpy, sys
script, out = sys.argv[1], sys.argv[2]
for extra in ([], ["--resume", "--methods", "ce,dice"],
              ["--report-only"]):
    sys.argv = [script, "--smoke", "--quiet", "--out", out, *extra]
    runpy.run_path(script, run_name="__main__")
    print("=== DONE", flush=True)
print("TENSORFLOW_LOADED", "tensorflow" in sys.modules)
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("segmentation")
    out = tmp / "out"
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env = {**env, "KERAS_BACKEND": keras.backend.backend(),
           "KERAS_HOME": str(tmp / "keras"), "MPLCONFIGDIR": str(tmp / "mpl"),
           "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(SCRIPT), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and log.count("=== DONE") == 3, log[-6000:]
    return out, log


def test_smoke_run_writes_table_runs_and_plot(smoke):
    out, log = smoke
    payload = json.loads((out / "segmentation.json").read_text())
    rows = {row["method"]: row for row in payload["rows"]}
    assert set(rows) == set(METHODS)
    for row in rows.values():
        for key in ("miou", "tail_iou", "balanced_pixel_accuracy",
                    "background_iou", "val_miou"):
            assert 0.0 <= row[key] <= 1.0, (row["method"], key)
        assert row["train_time"] > 0
    assert payload["meta"]["settings"]["dataset"] == "digits"
    assert payload["meta"]["settings"]["smoke"] is True
    assert len(payload["per_class"]) == 11  # background + 10 digit classes
    table = (out / "segmentation.md").read_text()
    assert "mIoU (fg)" in table and "tail IoU" in table
    png = (out / "segmentation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_runs_file_has_one_line_per_run_and_resume_trains_nothing(smoke):
    out, log = smoke
    lines = (out / "segmentation_runs.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["method"] for r in records] == METHODS  # the resume added none
    for record in records:
        assert record["seed"] == 0 and len(record["iou"]) == 11
        assert record["settings"]["backend"] == keras.backend.backend()
        # repeat-factor sampling repeats images holding rare classes
        more = record["images_per_epoch"] > RECIPE["SMOKE_SIZES"][0]
        assert more == (record["method"] == "repeat_factor")
    assert "ce seed 0: resumed from" in log and "dice seed 0: resumed from" in log
    # --report-only trains nothing: every method of the first run is read back
    # twice (by --resume for ce and dice, by --report-only for all)
    for method in METHODS:
        lines = re.findall(rf"^{method} seed 0: resumed from", log, flags=re.M)
        assert len(lines) == (2 if method in ("ce", "dice") else 1), method


@pytest.mark.skipif(keras.backend.backend() == "tensorflow",
                    reason="TensorFlow is the backend there")
def test_no_tensorflow_lines_on_other_backends(smoke):
    noise = [line for line in smoke[1].splitlines()
             if "oneDNN" in line or "absl::InitializeLog" in line
             or "port.cc" in line]
    assert not noise, noise[:5]


def test_help_and_methods_flag():
    parser = RECIPE["build_parser"]()
    text = parser.format_help()
    for flag in ("--backend", "--seeds", "--epochs", "--smoke", "--methods",
                 "--resume", "--runs", "--plot", "--pixel-weights"):
        assert flag in text
    assert parser.parse_args(["--methods", "ce,dice", "tversky"]).methods == [
        "ce", "dice", "tversky"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--methods", "nope"])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), num_classes=st.integers(2, 5))
def test_scores_match_sklearn(seed, num_classes):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, num_classes, size=(3, 4, 4))
    pred = np.where(rng.random((3, 4, 4)) < 0.6, truth,
                    rng.integers(0, num_classes, size=(3, 4, 4)))
    tail = np.array([num_classes - 1])
    metrics, iou = RECIPE["scores"](RECIPE["confusion"](truth, pred, num_classes),
                                    tail)
    labels = np.arange(num_classes)
    reference = jaccard_score(truth.ravel(), pred.ravel(), labels=labels,
                              average=None, zero_division=0)  # absent: masked below
    present = np.isin(labels, np.concatenate([truth.ravel(), pred.ravel()]))
    np.testing.assert_allclose(iou[present], reference[present])
    assert np.all(np.isnan(iou[~present]))
    assert metrics["miou"] == pytest.approx(np.nanmean(iou[1:]))
    assert metrics["tail_iou"] == pytest.approx(iou[-1], nan_ok=True)
    assert metrics["balanced_pixel_accuracy"] == pytest.approx(
        balanced_accuracy_score(truth.ravel(), pred.ravel()))
    assert metrics["pixel_accuracy"] == pytest.approx(np.mean(truth == pred))


def test_tail_classes_and_shrink():
    pixels = np.array([1000, 50, 5, 30, 7, 9, 40])
    assert RECIPE["tail_classes"](pixels).tolist() == [2, 4]
    assert RECIPE["tail_classes"](np.array([9, 1])).tolist() == [1]
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    small = RECIPE["_shrink"](images, 2)
    assert small.shape == (2, 2, 2, 1) and small.dtype == np.uint8
    assert small[0, 0, 0, 0] == round(np.mean([0, 1, 4, 5]))
