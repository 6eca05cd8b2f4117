"""Result tables: summaries over seeds, Markdown, JSON files, timings.

Results are plain floats in [0, 1] (times in seconds); tables print rates as
percentages and `mean ± std` when several seeds ran.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kimbalance._validation import check_path, invalid

if TYPE_CHECKING:  # the runner imports this module
    from kimbalance.experiments.runner import RunResult

__all__ = [
    "RATE_HEADERS",
    "markdown_table",
    "positive_class_metrics",
    "summarize",
    "timing_summary",
    "write_results",
]

def summarize(results: Sequence[RunResult],
              metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Mean and standard deviation per method over seeds, in method order.

    Args:
        results: `RunResult`s.
        metrics: metric names to keep (default: all of the first result's).

    Returns:
        A list of dicts `{"method": name, "seeds": n, "<metric>": mean,
        "<metric>_std": std}` (population std, 0 for one seed), plus
        `"tuned"` (e.g. `"tau=0.5,1 on val"`) for methods that tuned a
        quantity after training.

    Raises:
        ValueError: for `results` that are not `RunResult`s, or `metrics`
            that are not a list of names.

    Examples:

    >>> from kimbalance.experiments import RunResult
    >>> runs = [RunResult("ce", 0, {"accuracy": 0.5}),
    ...         RunResult("ce", 1, {"accuracy": 0.7})]
    >>> row = summarize(runs)[0]
    >>> row["method"], round(row["accuracy"], 3), round(row["accuracy_std"], 3)
    ('ce', 0.6, 0.1)
    """
    results = _check_results(results)
    if metrics is not None:
        metrics = _check_names("metrics", metrics)
    order: list[str] = []
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        if result.method not in groups:
            order.append(result.method)
            groups[result.method] = []
        groups[result.method].append(result)
    if metrics is None:  # every metric any run reports, in first-seen order
        metrics = list(dict.fromkeys(k for r in results for k in r.metrics))
    rows = []
    for name in order:
        row = {"method": name, "seeds": len(groups[name])}
        tuned = _tuned_text(groups[name])
        if tuned:
            row["tuned"] = tuned
        for key in metrics:
            values = [r.metrics[key] for r in groups[name] if key in r.metrics]
            if values:
                row[key] = float(np.mean(values))
                row[f"{key}_std"] = float(np.std(values))
        rows.append(row)
    return rows


def _tuned_text(results):
    """What a method's runs tuned and on what: `"tau=1.25,1 on val"`."""
    parts = []
    for key in dict.fromkeys(k for r in results for k in getattr(r, "tuned", {})):
        values = ",".join(f"{r.tuned[key]:g}" for r in results if key in r.tuned)
        where = "/".join(dict.fromkeys(r.tuned_on for r in results
                                       if key in r.tuned))
        parts.append(f"{key}={values} (fixed default: no validation set)"
                     if where == "fixed" else f"{key}={values} on {where}")
    return "; ".join(parts)


RATE_HEADERS = {
    "accuracy": "acc",
    "balanced_accuracy": "bal. acc",
    "g_mean": "G-mean",
    "macro_f1": "macro-F1",
    "micro_f1": "micro-F1",
    "map": "mAP",
    "many_shot_accuracy": "many",
    "medium_shot_accuracy": "medium",
    "few_shot_accuracy": "few",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "train_accuracy": "train acc",
    "val_accuracy": "val acc",
}


def _cell(row, key, rates=()):
    if key not in row or row[key] is None:
        return "-"
    value, std = row[key], row.get(f"{key}_std")
    many = row.get("seeds", 1) > 1
    if key in RATE_HEADERS or key in rates or key.endswith(("_accuracy", "_recall")):
        text = f"{100 * value:.1f}"
        return f"{text} ± {100 * std:.1f}" if many and std is not None else text
    if isinstance(value, float) and key.endswith(("_ms", "_mb")):
        # milliseconds and megabytes: whole numbers once they are large
        text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return f"{text} ± {std:.2g}" if many and std is not None else text
    if isinstance(value, float):
        if key.endswith(("time", "_s")):
            text = f"{value:.1f}"
            return f"{text} ± {std:.1f}" if many and std is not None else text
        text = f"{value:.4g}"
        return f"{text} ± {std:.2g}" if many and std is not None else text
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
                   headers: Mapping[str, str] | None = None,
                   rates: Sequence[str] = ()) -> str:
    """A Markdown table; rates print as percentages, `± std` with several seeds.

    Args:
        rows: dicts (e.g. from `summarize`).
        columns: the keys to show, in order.
        headers: optional `{key: header}` overrides.
        rates: more keys to print as percentages (besides the known metrics).

    Returns:
        The table as a string.

    Examples:

    >>> print(markdown_table([{"method": "ce", "seeds": 1, "accuracy": 0.5}],
    ...                      ["method", "accuracy"]))
    | method | acc |
    |---|---|
    | ce | 50.0 |
    """
    if isinstance(rows, dict) or not isinstance(rows, list | tuple) or not all(
            isinstance(r, dict) for r in rows):
        raise invalid("rows", "a list of dicts (e.g. from summarize)", rows)
    columns = _check_names("columns", columns, allow_empty=False)
    if headers is not None and not isinstance(headers, dict):
        raise invalid("headers", "a dict {column: header} or None", headers)
    rates = _check_names("rates", rates)
    names = {**RATE_HEADERS, "train_time": "train time (s)", **(headers or {})}
    head = "| " + " | ".join(names.get(c, c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_cell(row, c, rates) for c in columns) + " |"
            for row in rows]
    return "\n".join([head, rule, *body])


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(
    out: str | os.PathLike[str],
    stem: str,
    *,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any] | None = None,
    runs: Sequence[RunResult] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes `<out>/<stem>.md` (title, settings, table) and `<out>/<stem>.json`.

    Args:
        out: output directory (created).
        stem: file name stem.
        table: the Markdown table (from `markdown_table`).
        rows: the summary rows (JSON).
        meta: settings to record (command, backend, dataset, ...).
        runs: per-seed `RunResult`s (their metrics go to the JSON).
        extra: more JSON-able content.

    Returns:
        The (markdown_path, json_path) pair.

    Raises:
        ValueError: for an `out` that is not a path, a `stem` that is not a
            plain file name, a `table` that is not a str, or `meta` / `extra`
            that are not dicts.
    """
    out = pathlib.Path(check_path("out", out))
    if not isinstance(stem, str) or not stem or "/" in stem or stem in (".", ".."):
        raise invalid("stem", "a file name stem (a non-empty str without '/')", stem)
    if not isinstance(table, str):
        raise invalid("table", "a str (e.g. from markdown_table)", table)
    for name, value in (("meta", meta), ("extra", extra)):
        if value is not None and not isinstance(value, dict):
            raise invalid(name, "a dict or None", value)
    if runs is not None:
        runs = _check_results(runs, name="runs")
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    lines = [f"# {stem}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += ["", table, ""]
    md_path = out / f"{stem}.md"
    md_path.write_text("\n".join(lines))
    payload = {"meta": meta, "rows": rows}
    if runs is not None:
        payload["runs"] = [{"method": r.method, "seed": r.seed, "metrics": r.metrics,
                            "epoch_times": r.epoch_times} for r in runs]
    if extra:
        payload.update(extra)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(_jsonable(payload), indent=2))
    return md_path, json_path



def timing_summary(result: RunResult) -> dict[str, float]:
    """Epoch times of a run: the first epoch apart, then min / median / max.

    The first epoch includes tracing / compilation; the other statistics are
    over the later epochs (over the only epoch when there is one).
    `samples_per_s` is the training samples of an epoch over the median.

    Args:
        result: a trained `RunResult` (with `epoch_times`).

    Returns:
        A dict of `first_epoch_s`, `epoch_s` (median), `epoch_min_s`,
        `epoch_max_s`, `samples_per_s` and `timed_epochs` (how many epochs
        the statistics cover).

    Raises:
        ValueError: for a result without epoch times.

    Examples:

    >>> from kimbalance.experiments import RunResult
    >>> r = RunResult("ce", 0, {}, epoch_times=[3.0, 1.0, 1.2, 0.8],
    ...               samples_per_epoch=1000)
    >>> timing_summary(r)["epoch_s"], timing_summary(r)["samples_per_s"]
    (1.0, 1000.0)
    >>> timing_summary(r)["epoch_min_s"], timing_summary(r)["epoch_max_s"]
    (0.8, 1.2)
    """
    (result,) = _check_results([result], name="result")
    times = [float(t) for t in result.epoch_times]
    if not times or not all(math.isfinite(t) and t > 0 for t in times):
        raise invalid("result", "a trained RunResult with positive epoch times",
                      result.method)
    later = times[1:] or times
    epoch = float(np.median(later))
    return {"first_epoch_s": times[0], "epoch_s": epoch,
            "epoch_min_s": min(later), "epoch_max_s": max(later),
            "samples_per_s": float(result.samples_per_epoch / epoch),
            "timed_epochs": len(later)}


def positive_class_metrics(results: Sequence[RunResult],
                           positive: int = 1) -> list[RunResult]:
    """Adds `precision`, `recall` and `f1` of class `positive` to each result.

    Reads the per-class scores of each result's `kimbalance.evaluate` report.

    Raises:
        ValueError: for results without a single-label report, or a
            `positive` class the reports do not have.
    """
    results = _check_results(results)
    if not isinstance(positive, numbers.Integral) or isinstance(positive, bool) or (
            positive < 0):
        raise invalid("positive", "a class id (an int >= 0)", positive)
    for result in results:
        report = result.report
        if not hasattr(report, "recall"):
            raise invalid("results", "results with a single-label "
                          "kimbalance.evaluate report", result.method)
        if positive >= len(report.recall):
            raise invalid("positive", f"a class id < {len(report.recall)}", positive)
        result.metrics["precision"] = float(report.precision[positive])
        result.metrics["recall"] = float(report.recall[positive])
        result.metrics["f1"] = float(report.f1[positive])
    return results


def _check_results(results, name="results"):
    if isinstance(results, dict | str) or not isinstance(results, list | tuple):
        raise invalid(name, "a list of RunResult", results)
    for result in results:
        if not all(hasattr(result, key) for key in ("method", "seed", "metrics",
                                                     "epoch_times")):
            raise invalid(name, "a list of RunResult", results)
    return list(results)


def _check_names(name, values, *, allow_empty=True):
    if isinstance(values, str) or not isinstance(values, list | tuple) or not all(
            isinstance(v, str) for v in values) or (not values and not allow_empty):
        raise invalid(name, "a list of str" + ("" if allow_empty else
                                               " (at least one)"), values)
    return list(values)
