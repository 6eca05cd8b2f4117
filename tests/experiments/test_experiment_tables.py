"""kimbalance.experiments.tables: summaries, Markdown and result files."""

import json

import numpy as np
import pytest

from kimbalance.experiments import tables as ex
from kimbalance.experiments.runner import RunResult


def _runs():
    return [RunResult("ce", 0, {"accuracy": 0.5, "train_time": 2.0}),
            RunResult("ce", 1, {"accuracy": 0.7, "train_time": 4.0}),
            RunResult("focal", 0, {"accuracy": 0.9, "train_time": 3.0})]


def test_summarize_means_and_stds_in_method_order():
    rows = ex.summarize(_runs())
    assert [r["method"] for r in rows] == ["ce", "focal"]
    assert rows[0]["accuracy"] == pytest.approx(0.6)
    assert rows[0]["accuracy_std"] == pytest.approx(0.1)
    assert rows[0]["seeds"] == 2 and rows[1]["accuracy_std"] == 0.0


def test_markdown_table_formats_rates_and_times():
    table = ex.markdown_table(ex.summarize(_runs()),
                              ["method", "accuracy", "train_time", "missing"])
    lines = table.splitlines()
    assert lines[0] == "| method | acc | train time (s) | missing |"
    assert lines[2] == "| ce | 60.0 ± 10.0 | 3.0 ± 1.0 | - |"
    assert lines[3] == "| focal | 90.0 | 3.0 | - |"


def test_markdown_table_formats_milliseconds_and_megabytes():
    rows = [{"backend": "jax", "epoch_ms": 15950.4, "peak_rss_mb": 630.4,
             "first_epoch_ms": 0.731}]
    table = ex.markdown_table(rows, ["backend", "epoch_ms", "peak_rss_mb",
                                     "first_epoch_ms"])
    assert table.splitlines()[2] == "| jax | 15950 | 630 | 0.731 |"


def test_write_results_writes_markdown_and_json(tmp_path):
    runs = _runs()
    rows = ex.summarize(runs)
    md, js = ex.write_results(tmp_path / "out", "demo",
                              table=ex.markdown_table(rows, ["method", "accuracy"]),
                              rows=rows, meta={"backend": "x"}, runs=runs,
                              extra={"arr": np.arange(2), "nan": float("nan")})
    assert "| ce | 60.0 ± 10.0 |" in md.read_text()
    payload = json.loads(js.read_text())
    assert payload["meta"] == {"backend": "x"} and len(payload["runs"]) == 3
    assert payload["arr"] == [0, 1] and payload["nan"] is None


def test_timing_summary_reports_the_first_epoch_apart():
    run = RunResult("ce", 0, {}, epoch_times=[5.0, 0.2, 0.4, 0.3],
                    samples_per_epoch=600)
    summary = ex.timing_summary(run)
    assert summary["first_epoch_s"] == 5.0 and summary["timed_epochs"] == 3
    assert (summary["epoch_min_s"], summary["epoch_s"], summary["epoch_max_s"]) == (
        0.2, 0.3, 0.4)
    assert summary["samples_per_s"] == pytest.approx(2000.0)
    one = ex.timing_summary(RunResult("ce", 0, {}, epoch_times=[2.0],
                                      samples_per_epoch=10))
    assert one["epoch_s"] == one["first_epoch_s"] == 2.0


@pytest.mark.parametrize("call, message", [
    (lambda: ex.timing_summary(RunResult("ce", 0, {})), "argument `result`"),
    (lambda: ex.timing_summary("ce"), "argument `result`"),
    (lambda: ex.summarize("ce"), "argument `results`"),
    (lambda: ex.summarize(_runs(), metrics="accuracy"), "argument `metrics`"),
    (lambda: ex.markdown_table({"method": "ce"}, ["method"]), "argument `rows`"),
    (lambda: ex.markdown_table([], []), "argument `columns`"),
    (lambda: ex.markdown_table([], "method"), "argument `columns`"),
    (lambda: ex.markdown_table([], ["method"], headers=["x"]), "argument `headers`"),
    (lambda: ex.positive_class_metrics(_runs()), "argument `results`"),
    (lambda: ex.positive_class_metrics([], positive=-1), "argument `positive`"),
    (lambda: RunResult("ce", 0.5, {}), "argument `seed`"),
    (lambda: RunResult("", 0, {}), "argument `method`"),
])
def test_tables_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("kwargs, message", [
    ({"out": 3}, "argument `out`. Expected a path"),
    ({"stem": "a/b"}, "argument `stem`"),
    ({"table": None}, "argument `table`"),
    ({"meta": ["x"]}, "argument `meta`"),
    ({"runs": "ce"}, "argument `runs`"),
])
def test_write_results_rejects_bad_arguments(tmp_path, kwargs, message):
    arguments = {"out": tmp_path, "stem": "demo", "table": "", "rows": [], **kwargs}
    with pytest.raises(ValueError, match=message):
        ex.write_results(**arguments)
