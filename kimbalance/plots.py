"""Plots for imbalanced learning (matplotlib, drawn with the Agg renderer).

Each function returns a `matplotlib.figure.Figure` and, given `path`, also
writes it there (PNG unless the file name asks for another format). Figures
are built without `pyplot`, so nothing accumulates in pyplot's global state,
no GUI backend is touched, and plotting works in headless jobs and threads;
in a notebook the returned figure displays as usual. matplotlib is imported
inside the functions: `import kimbalance` does not import it.

- `plot_class_distribution`: samples per class (bar chart, optional log scale).
- `plot_history`: per-epoch metric curves from a Keras `History` or a dict,
  one panel per metric, training against validation.
- `plot_confusion_matrix`: a (normalised) confusion matrix.
- `plot_imbalance_sweep`: a metric against the imbalance ratio, one curve per
  method, log x axis.
- `plot_recall_vs_class_size`: per-class recall against the training count of
  the class, log x axis.
- `plot_bars`: one bar per label (e.g. a value per backend), optionally in
  several side-by-side panels (e.g. epoch time and accuracy).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from kimbalance._validation import (
    check_bool,
    check_choice,
    check_path,
    check_vector,
    invalid,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_bars",
    "plot_class_distribution",
    "plot_history",
    "plot_confusion_matrix",
    "plot_imbalance_sweep",
    "plot_recall_vs_class_size",
]

_NORMALIZE = ("true", "pred", "all")


def plot_class_distribution(counts: ArrayLike, *,
                            class_names: Sequence[str] | None = None,
                            log_scale: bool = False, sort: bool = False,
                            title: str | None = "Class distribution",
                            path: str | os.PathLike | None = None) -> Figure:
    """Bar chart of the number of samples per class.

    The title carries the imbalance ratio (largest over smallest non-zero
    count).

    Args:
        counts: per-class counts, shape (C,) (`kimbalance.weights.class_counts`
            of the labels), or an object with a `counts` attribute
            (`kimbalance.data.describe(y)`).
        class_names: a label per class for the x axis.
        log_scale: log-scale y axis (long-tailed counts).
        sort: order the bars by decreasing count (the long-tail view).
        title: the figure title.
        path: where to write the figure (PNG by default).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: for empty, negative or non-finite counts, or class names
            of the wrong length.

    Examples:

    >>> fig = plot_class_distribution([500, 120, 30, 5], log_scale=True)
    >>> fig.axes[0].get_yscale(), len(fig.axes[0].patches)
    ('log', 4)
    """
    _text("title", title)
    counts = _vector("counts", getattr(counts, "counts", counts), nonnegative=True)
    names = _names(class_names, len(counts))
    log_scale = check_bool("log_scale", log_scale)
    order = np.argsort(-counts, kind="stable") if check_bool("sort", sort) else (
        np.arange(len(counts)))
    fig = _figure((max(4.0, 0.35 * len(counts) + 2.0), 3.6))
    ax = fig.add_subplot()
    positions = np.arange(len(counts))
    ax.bar(positions, counts[order], color="tab:blue")
    _class_ticks(ax, positions, [names[i] for i in order])
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("class")
    ax.set_ylabel("samples")
    present = counts[counts > 0]
    ratio = present.max() / present.min() if present.size else float("nan")
    ax.set_title(f"{title} (imbalance ratio {ratio:.3g})" if title else
                 f"imbalance ratio {ratio:.3g}")
    return _finish(fig, path)


def plot_history(history: Any, metrics: Sequence[str] | None = None, *,
                 title: str | None = None,
                 path: str | os.PathLike | None = None) -> Figure:
    """Per-epoch curves, one panel per metric: training against validation.

    For each metric `m` the panel draws `m` (training) and `val_m`
    (validation) when present, e.g. the accuracy / recall / precision panels
    of a binary classifier, or `ClassReport`'s `val_g_mean` alone.

    Args:
        history: a Keras `History` (`model.fit(...)`) or a dict of per-epoch
            lists.
        metrics: the metric names to draw (without `val_`); by default every
            training metric in `history`, or every validation metric when
            there is no training one.
        title: the figure title.
        path: where to write the figure (PNG by default).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: for an empty history, an unknown metric or a metric
            without values.

    Examples:

    >>> fig = plot_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7],
    ...                     "recall": [0.2, 0.6]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'recall']
    >>> len(fig.axes[0].lines)
    2
    """
    _text("title", title)
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise invalid("history", "a Keras History or a non-empty dict of "
                      "per-epoch lists", history)
    if metrics is None:
        metrics = [k for k in logs if not k.startswith("val_")]
        if not metrics:
            metrics = [k[4:] for k in logs]
    elif isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list | tuple) or not metrics:
        raise invalid("metrics", "a non-empty list of metric names", metrics)
    for name in metrics:
        if name not in logs and f"val_{name}" not in logs:
            raise invalid("metrics", f"names found in the history "
                          f"({sorted(logs)})", name)
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = _figure((4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    from matplotlib.ticker import MaxNLocator

    for ax, name in zip(axes, metrics, strict=False):
        for key, label, style in ((name, "training", "-"),
                                  (f"val_{name}", "validation", "--")):
            if key not in logs:
                continue
            values = _vector(f"history[{key!r}]", logs[key], finite=False)
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, style, marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics):]:
        fig.delaxes(ax)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_confusion_matrix(confusion: Any, *,
                          class_names: Sequence[str] | None = None,
                          normalize: str | None = "true",
                          annotate: bool | None = None,
                          title: str | None = "Confusion matrix",
                          path: str | os.PathLike | None = None) -> Figure:
    """Confusion matrix as an image, rows = true class, columns = predicted.

    Args:
        confusion: a (C, C) count matrix, or an `EvaluationReport` (its
            `confusion_matrix` and class names).
        class_names: a label per class (default: the report's, or the ids).
        normalize: `"true"` (each row sums to 1: the diagonal is the
            per-class recall), `"pred"` (columns sum to 1: precision),
            `"all"`, or `None` for counts; the sklearn vocabulary. A row or
            column without samples stays 0.
        annotate: write the value in each cell; by default when C <= 20.
        title: the figure title.
        path: where to write the figure (PNG by default).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: for an empty, non-square, negative or non-finite matrix,
            an unknown `normalize`, or class names of the wrong length.

    Examples:

    >>> fig = plot_confusion_matrix([[8, 2], [1, 4]])
    >>> np.round(fig.axes[0].images[0].get_array(), 2).tolist()
    [[0.8, 0.2], [0.2, 0.8]]
    """
    _text("title", title)
    names = getattr(confusion, "class_names", None) if class_names is None else (
        class_names)
    if hasattr(confusion, "confusion_matrix"):
        report = confusion
        confusion = report.confusion_matrix
        if confusion is None:  # evaluate() keeps no C x C matrix above 1024 classes
            raise invalid("confusion", "an EvaluationReport with a confusion matrix "
                          "(evaluate(..., confusion_matrix=True)) or a (C, C) array",
                          report)
    try:
        matrix = np.asarray(confusion, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("confusion", "a (C, C) matrix of counts", confusion) from None
    if matrix.ndim != 2 or matrix.size == 0 or matrix.shape[0] != matrix.shape[1]:
        raise invalid("confusion", "a non-empty square (C, C) matrix of counts",
                      confusion)
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise invalid("confusion", "finite counts >= 0", confusion)
    if normalize is not None:
        check_choice("normalize", normalize, _NORMALIZE)
    num_classes = matrix.shape[0]
    names = _names(names, num_classes)
    annotate = num_classes <= 20 if annotate is None else check_bool("annotate",
                                                                      annotate)
    values = _normalized(matrix, normalize)
    side = max(3.5, 0.45 * num_classes + 2.0)
    fig = _figure((side + 1.0, side))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0,
                      vmax=1.0 if normalize else max(values.max(), 1.0))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(num_classes)
    _class_ticks(ax, ticks, names)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if annotate:
        cut = values.max() / 2.0
        for i in range(num_classes):
            for j in range(num_classes):
                text = f"{values[i, j]:.2f}" if normalize else f"{int(values[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > cut else "black")
    if title:
        ax.set_title(title + (f" (normalised over {normalize})" if normalize else ""))
    return _finish(fig, path)


def plot_imbalance_sweep(results: Mapping[str, Any], *, metric: str = "accuracy",
                         log_x: bool = True, xlabel: str = "imbalance ratio",
                         title: str | None = None,
                         path: str | os.PathLike | None = None) -> Figure:
    """A metric against the imbalance ratio, one curve per method.

    Args:
        results: `{method: {ratio: value}}`, `{method: (ratios, values)}` (a
            tuple of two sequences) or `{method: [(ratio, value), ...]}` (a
            list of pairs); points are drawn in ratio order.
        metric: the y-axis label (the metric's name).
        log_x: log-scale x axis (ratios 1, 10, 100, ...); ratios must be > 0.
        xlabel: the x-axis label.
        title: the figure title.
        path: where to write the figure (PNG by default).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: for no methods, a method without points, mismatched
            ratios and values, non-finite numbers, or a ratio <= 0 with
            `log_x`.

    Examples:

    >>> fig = plot_imbalance_sweep({"CE": {1: 0.9, 10: 0.7, 100: 0.5},
    ...                             "LDAM-DRW": {1: 0.9, 10: 0.8, 100: 0.7}})
    >>> fig.axes[0].get_xscale(), len(fig.axes[0].lines)
    ('log', 2)
    """
    _text("metric", metric, allow_none=False)
    _text("xlabel", xlabel, allow_none=False)
    _text("title", title)
    if not isinstance(results, dict) or not results:
        raise invalid("results", "a non-empty dict {method: {ratio: value}}",
                      results)
    log_x = check_bool("log_x", log_x)
    curves = {}
    for method, points in results.items():
        ratios: Any
        values: Any
        if isinstance(points, dict):
            ratios, values = list(points.keys()), list(points.values())
        elif isinstance(points, tuple) and len(points) == 2:
            ratios, values = points
        elif isinstance(points, list) and all(
                isinstance(p, tuple | list) and len(p) == 2 for p in points):
            ratios, values = [p[0] for p in points], [p[1] for p in points]
        else:
            raise invalid(f"results[{method!r}]", "a dict {ratio: value}, a tuple "
                          "(ratios, values) or a list [(ratio, value), ...]", points)
        name = f"results[{method!r}]"
        ratios = _vector(name, ratios)
        values = _vector(name, values)
        if len(ratios) != len(values):
            raise invalid(name, "as many values as ratios", points)
        if log_x and np.any(ratios <= 0):
            raise invalid(name, "ratios > 0 (the x axis is logarithmic)", points)
        order = np.argsort(ratios, kind="stable")
        curves[str(method)] = (ratios[order], values[order])
    fig = _figure((6.0, 4.0))
    ax = fig.add_subplot()
    for method, (ratios, values) in curves.items():
        ax.plot(ratios, values, marker="o", label=method)
    if log_x:
        ax.set_xscale("log")
        swept = np.unique(np.concatenate([r for r, _ in curves.values()]))
        if len(swept) <= 12:  # label the swept ratios themselves: 1, 10, 50, 100
            from matplotlib.ticker import NullFormatter

            ax.set_xticks(swept, [f"{r:g}" for r in swept])
            ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title or f"{metric} against {xlabel}")
    return _finish(fig, path)


def plot_recall_vs_class_size(recall: Any, class_counts: ArrayLike | None = None, *,
                              class_names: Sequence[str] | None = None,
                              title: str | None = (
                                  "Per-class recall against class size"),
                              path: str | os.PathLike | None = None) -> Figure:
    """Scatter of each class's recall against its training count (log x).

    Args:
        recall: per-class recall, shape (C,); an `EvaluationReport` (its
            recall, and its `class_counts` when it has them); or a dict
            `{method: recall or report}` to compare methods, one colour each.
        class_counts: training samples per class, shape (C,); needed unless
            the reports carry them (a report's own counts win; plain recall
            arrays use `class_counts`, else the first report's counts).
        class_names: labels written next to the points (when C <= 30).
        title: the figure title.
        path: where to write the figure (PNG by default).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: for empty or mismatched recall / counts, counts <= 0
            (log axis), recall outside [0, 1], or missing counts.

    Examples:

    >>> fig = plot_recall_vs_class_size([0.9, 0.6, 0.2], [1000, 100, 10])
    >>> fig.axes[0].get_xscale(), fig.axes[0].collections[0].get_offsets().shape
    ('log', (3, 2))
    """
    _text("title", title)
    series = recall if isinstance(recall, dict) else {None: recall}
    if not series:
        raise invalid("recall", "per-class recall values (or a non-empty dict of "
                      "them)", recall)
    if class_counts is None:  # the first report that carries counts
        class_counts = next((v.class_counts for v in series.values()
                             if getattr(v, "class_counts", None) is not None), None)
    points = {}
    for method, values in series.items():
        counts = getattr(values, "class_counts", None)
        if counts is None:
            counts = class_counts
        values = getattr(values, "recall", values)
        name = "recall" if method is None else f"recall[{method!r}]"
        values = _vector(name, values)
        if np.any(values < 0) or np.any(values > 1):
            raise invalid(name, "recall values in [0, 1]", values)
        if counts is None:
            raise invalid("class_counts", "the training count of each class (or "
                          "EvaluationReports that carry class_counts)", None)
        counts = _vector("class_counts", counts)
        if len(counts) != len(values):
            raise invalid("class_counts", f"{len(values)} counts (one per class)",
                          counts)
        if np.any(counts <= 0):
            raise invalid("class_counts", "counts > 0 (the x axis is logarithmic)",
                          counts)
        points[method] = (counts, values)
    num_classes = len(next(iter(points.values()))[0])
    names = _names(class_names, num_classes) if class_names is not None else None
    fig = _figure((6.0, 4.0))
    ax = fig.add_subplot()
    for method, (counts, values) in points.items():
        ax.scatter(counts, values, label=None if method is None else str(method),
                   alpha=0.8)
        if names is not None and num_classes <= 30 and method == next(iter(points)):
            for c, name in enumerate(names):
                ax.annotate(name, (counts[c], values[c]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    if names is not None and num_classes <= 30:  # room for the rightmost labels
        low, high = ax.get_xlim()
        ax.set_xlim(low, high * 2.0)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training samples of the class")
    ax.set_ylabel("recall")
    ax.grid(alpha=0.3, which="both")
    if len(points) > 1 or None not in points:
        ax.legend()
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_bars(values: Any, *, ylabel: str = "", title: str | None = None,
              path: str | os.PathLike | None = None, errors: Any = None,
              fmt: str = "%.3g") -> Figure:
    """A bar chart of one value per label; several panels side by side.

    With `values` a dict `{label: value}`, one panel; with a dict of such
    dicts `{panel: {label: value}}`, one panel per entry, side by side, each
    titled by its key and labelled by the matching `ylabel` (e.g. epoch time
    and accuracy per backend).

    Args:
        values: `{label: value}` or `{panel: {label: value}}` with finite
            values.
        ylabel: the y-axis label (a str, or one str per panel).
        title: the figure title.
        path: where to write the figure (PNG by default).
        errors: optional error bars in the shape of `values`: a value
            `(low, high)` per label draws the range around the bar (e.g. the
            min and max epoch time around the median).
        fmt: the bar-label format (a %-format str, or one per panel).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: for empty or non-finite values, mismatched labels or
            error ranges, or a bad path.

    Examples:

    >>> fig = plot_bars({"jax": 900.0, "torch": 700.0}, ylabel="samples/s")
    >>> len(fig.axes[0].patches)
    2
    >>> fig = plot_bars({"epoch (ms)": {"jax": 12.0, "torch": 15.0},
    ...                  "accuracy": {"jax": 0.91, "torch": 0.9}})
    >>> [ax.get_title() for ax in fig.axes]
    ['epoch (ms)', 'accuracy']
    """
    panels = _bar_panels("values", values)
    ylabels = _per_panel("ylabel", ylabel, len(panels), "an axis label")
    _text("title", title)
    formats = _per_panel("fmt", fmt, len(panels), "a %-format such as '%.3g'")
    ranges = [None] * len(panels)
    if errors is not None:
        ranges = _bar_errors(errors, panels)
    width = max(len(p[1]) for p in panels)
    fig = _figure((len(panels) * max(3.5, 1.1 * width + 1.5), 3.6))
    for (name, labels, heights), ylab, bounds, label_format in zip(
            panels, ylabels, ranges, formats, strict=True):
        ax = fig.add_subplot(1, len(panels), len(fig.axes) + 1)
        yerr = None
        if bounds is not None:
            yerr = np.stack([heights - bounds[:, 0], bounds[:, 1] - heights])
        bars = ax.bar(labels, heights, color="tab:blue", yerr=yerr, capsize=4,
                      error_kw={"alpha": 0.6})
        ax.bar_label(bars, fmt=label_format, padding=2)
        ax.margins(y=0.12)
        ax.set_ylabel(ylab)
        ax.grid(alpha=0.3, axis="y")
        if name is not None:
            ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def _text(name, value, *, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise invalid(name, "a str" + (" or None" if allow_none else ""), value)
    return value


def _per_panel(name, value, count, what):
    """One str for every panel, or a list of `count` str."""
    if isinstance(value, str):
        return [value] * count
    if isinstance(value, list | tuple) and len(value) == count and all(
            isinstance(v, str) for v in value):
        return list(value)
    raise invalid(name, f"a str ({what}) or {count} of them, one per panel", value)


def _bar_panels(name, values):
    """[(panel title or None, labels, heights)] from one dict or a dict of dicts."""
    if not isinstance(values, dict) or not values:
        raise invalid(name, "a non-empty dict {label: value} or {panel: {label: "
                      "value}}", values)
    nested = all(isinstance(v, dict) for v in values.values())
    items = values.items() if nested else [(None, values)]
    panels = []
    for panel, mapping in items:
        label = name if panel is None else f"{name}[{panel!r}]"
        if not mapping:
            raise invalid(label, "a non-empty dict {label: value}", mapping)
        heights = _vector(label, list(mapping.values()))
        panels.append((None if panel is None else str(panel),
                       [str(k) for k in mapping], heights))
    return panels


def _bar_errors(errors, panels):
    """Per panel, None or a (labels, 2) array of (low, high) around each bar."""
    if not isinstance(errors, dict):
        raise invalid("errors", "a dict shaped like `values` with (low, high) "
                      "ranges", errors)
    mappings: list[Any]
    if panels[0][0] is None:
        mappings = [errors]
    else:
        lookup = {str(k): v for k, v in errors.items()}
        titles = [panel for panel, _, _ in panels]
        unknown = [k for k in lookup if k not in titles]
        if unknown:
            raise invalid("errors", f"ranges for panels of `values` ({titles}); "
                          f"unknown: {unknown}", errors)
        mappings = [lookup.get(title) for title in titles]
    ranges: list[np.ndarray | None] = []
    for mapping, (_, labels, heights) in zip(mappings, panels, strict=True):
        if mapping is None:
            ranges.append(None)
            continue
        if not isinstance(mapping, dict) or [str(k) for k in mapping] != labels:
            raise invalid("errors", "a (low, high) range for every label of "
                          "`values`, in the same order", errors)
        try:
            bounds = np.asarray(list(mapping.values()), dtype=np.float64)
        except (TypeError, ValueError):
            raise invalid("errors", "(low, high) number pairs", errors) from None
        if (bounds.shape != (len(labels), 2) or not np.all(np.isfinite(bounds))
                or np.any(bounds[:, 0] > heights) or np.any(bounds[:, 1] < heights)):
            raise invalid("errors", "finite (low, high) ranges around each value",
                          errors)
        ranges.append(bounds)
    return ranges


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    if path is not None:
        path = check_path("path", path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise invalid("path", "a file path in an existing folder", path)
        extension = os.path.splitext(path)[1]
        fig.savefig(path, dpi=120, format=None if extension else "png")
    return fig


def _class_ticks(ax, positions, names):
    rotate = len(names) > 10 or max((len(n) for n in names), default=0) > 6
    ax.set_xticks(positions, names, rotation=90 if rotate else 0,
                  fontsize=8 if len(names) > 20 else None)


def _vector(name: str, values: ArrayLike, *, nonnegative: bool = False,
            finite: bool = True) -> np.ndarray:
    if finite:
        return check_vector(name, values, nonnegative=nonnegative)
    # Histories may hold NaN or inf (a diverged loss): drawn as gaps.
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "a 1-D sequence of numbers", values) from None
    if arr.ndim != 1 or arr.size == 0:
        raise invalid(name, "a non-empty 1-D sequence of numbers", values)
    return arr


def _names(class_names, num_classes):
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    if isinstance(class_names, str) or not all(
            isinstance(n, str | numbers.Integral) for n in class_names):
        raise invalid("class_names", "a sequence of strings, one per class",
                      class_names)
    if len(class_names) != num_classes:
        raise invalid("class_names", f"{num_classes} names (one per class)",
                      class_names)
    return [str(n) for n in class_names]


def _normalized(matrix, normalize):
    if normalize is None:
        return matrix
    if normalize == "all":
        total = matrix.sum()
        return matrix / total if total > 0 else matrix
    axis = 1 if normalize == "true" else 0
    sums = matrix.sum(axis=axis, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)

