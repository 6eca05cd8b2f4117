"""Smoke test of benchmarks/bench_losses.py on the current backend (in process).

Times are not checked (speed is measured by the benchmark, never asserted in
tests): only that the rows run, report positive times and render a table,
and that a worker's progress reaches the parent's stderr as it comes.
"""

import collections
import io
import pathlib
import sys

import keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_losses  # noqa: E402

ROWS = [
    bench_losses.BASELINE,
    "FocalCrossentropy [one-hot]",
    "LDAMLoss [ids]",
    "SigmoidFocalCrossentropy [multi-hot, probs]",
]


def test_quick_rows_run_and_render_a_table(capsys):
    backend = keras.backend.backend()
    result = bench_losses.measure([(8, 5)], repeats=1, warmup=1, rows=ROWS,
                                  memory=backend == "torch", bandwidth_mb=4)
    shape = result["shapes"]["8x5"]
    # One progress line per shape on stderr (stdout carries only the JSON).
    progress = capsys.readouterr()
    assert f"{backend} 8x5: {len(ROWS)} rows, 1 rounds, " in progress.err
    assert progress.out == ""
    assert not shape["notes"]
    assert set(shape["median_ms"]) == set(ROWS)
    assert all(ms > 0 for ms in shape["median_ms"].values())
    if backend != "tensorflow":
        assert all(peak is not None and peak >= 0 for peak in shape["peak_mb"].values())
    result.update(command="test", date="today", repeats=1, warmup=1)
    text = bench_losses.write_table({"backends": {backend: result}, "machine": "m"})
    assert "### (8, 5)" in text
    assert f"- {backend} 8x5: met " in text
    assert "| FocalCrossentropy [one-hot] |" in text


def test_the_parent_relays_a_worker_progress_and_keeps_its_tail(capsys):
    tail = collections.deque(maxlen=2)
    bench_losses._relay(io.StringIO("jax 8x5: 4 rows\nwarning\nTraceback\n"), "jax",
                        tail)
    assert capsys.readouterr().err == ("[jax] jax 8x5: 4 rows\n[jax] warning\n"
                                       "[jax] Traceback\n")
    assert "".join(tail) == "warning\nTraceback\n"
