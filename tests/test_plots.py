import numpy as np
import pytest

from kimbalance import plots
from kimbalance.evaluation import evaluate

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == _PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn


def _report():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=200, p=[0.6, 0.25, 0.1, 0.05])
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), y] += 1.0
    return evaluate(logits, y, class_counts=[1000, 300, 60, 8],
                    class_names=["cat", "dog", "bird", "frog"])


def test_matplotlib_is_imported_lazily():
    # keras itself may import matplotlib, so check the module's own imports.
    import ast

    tree = ast.parse(open(plots.__file__).read())
    top_level = [node for node in tree.body
                 if isinstance(node, ast.Import | ast.ImportFrom)]
    names = [alias.name for node in top_level if isinstance(node, ast.Import)
             for alias in node.names]
    names += [node.module for node in top_level if isinstance(node, ast.ImportFrom)]
    assert names and not any(name.startswith("matplotlib") for name in names)


def test_class_distribution(tmp_path):
    counts = [5000, 2000, 700, 250, 90, 50]
    path = tmp_path / "dist.png"
    fig = plots.plot_class_distribution(counts, log_scale=True, sort=True,
                                        class_names=list("abcdef"), path=path)
    _assert_png(path)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [bar.get_height() for bar in ax.patches] == counts
    assert "imbalance ratio 100" in ax.get_title()
    unsorted = plots.plot_class_distribution(np.array([3, 9, 1]), sort=True)
    assert [b.get_height() for b in unsorted.axes[0].patches] == [9, 3, 1]
    assert [t.get_text() for t in unsorted.axes[0].get_xticklabels()] == [
        "1", "0", "2"]

    class _Described:  # anything with `counts`, like data.describe(y)
        counts = np.array([4, 2])

    assert len(plots.plot_class_distribution(_Described()).axes[0].patches) == 2


def test_history_from_keras_history_and_dict(tmp_path):
    import keras

    logs = {"loss": [0.7, 0.5, 0.4], "accuracy": [0.6, 0.7, 0.8],
            "recall": [0.2, 0.4, 0.5], "precision": [0.5, 0.6, 0.6],
            "val_loss": [0.8, 0.6, 0.6], "val_accuracy": [0.5, 0.6, 0.7],
            "val_recall": [0.1, 0.3, 0.4], "val_precision": [0.4, 0.5, 0.5]}
    history = keras.callbacks.History()
    history.history = logs
    path = tmp_path / "curves.png"
    fig = plots.plot_history(history, ["accuracy", "recall", "precision"],
                             title="cats vs dogs", path=path)
    _assert_png(path)
    assert [ax.get_title() for ax in fig.axes] == ["accuracy", "recall", "precision"]
    for ax, name in zip(fig.axes, ["accuracy", "recall", "precision"], strict=True):
        train, val = ax.lines
        assert train.get_xdata().tolist() == [1, 2, 3]
        assert train.get_ydata().tolist() == logs[name]
        assert val.get_ydata().tolist() == logs[f"val_{name}"]
    everything = plots.plot_history(logs)  # 4 training metrics: 2 rows of 3
    assert [ax.get_title() for ax in everything.axes] == [
        "loss", "accuracy", "recall", "precision"]
    val_only = plots.plot_history({"val_g_mean": [0.1, 0.2]})
    assert [ax.get_title() for ax in val_only.axes] == ["g_mean"]
    assert len(val_only.axes[0].lines) == 1


def test_confusion_matrix(tmp_path):
    report = _report()
    path = tmp_path / "confusion.png"
    fig = plots.plot_confusion_matrix(report, path=path)
    _assert_png(path)
    image = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(image.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(image), report.recall)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "cat", "dog", "bird", "frog"]
    assert len(fig.axes[0].texts) == 16
    by_pred = plots.plot_confusion_matrix(report.confusion_matrix,
                                          normalize="pred", annotate=False)
    by_pred_image = np.asarray(by_pred.axes[0].images[0].get_array())
    np.testing.assert_allclose(np.diag(by_pred_image), report.precision)
    assert not by_pred.axes[0].texts
    counts = plots.plot_confusion_matrix([[3, 0], [0, 0]], normalize=None)
    assert np.asarray(counts.axes[0].images[0].get_array()).tolist() == [
        [3, 0], [0, 0]]
    empty_row = plots.plot_confusion_matrix([[3, 1], [0, 0]])
    assert np.asarray(empty_row.axes[0].images[0].get_array()).tolist() == [
        [0.75, 0.25], [0.0, 0.0]]


def test_imbalance_sweep(tmp_path):
    path = tmp_path / "sweep.png"
    results = {"CE": {100: 0.55, 1: 0.9, 10: 0.75},
               "focal": ([1, 10, 100], [0.9, 0.77, 0.6]),
               "LDAM-DRW": [(1, 0.9), (10, 0.8), (100, 0.68)]}
    fig = plots.plot_imbalance_sweep(results, metric="balanced accuracy", path=path)
    _assert_png(path)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "balanced accuracy"
    assert [line.get_label() for line in ax.lines] == ["CE", "focal", "LDAM-DRW"]
    assert ax.lines[0].get_xdata().tolist() == [1, 10, 100]
    assert ax.lines[0].get_ydata().tolist() == [0.9, 0.75, 0.55]
    linear = plots.plot_imbalance_sweep({"CE": {0: 0.9, 0.5: 0.8}}, log_x=False)
    assert linear.axes[0].get_xscale() == "linear"


def test_recall_vs_class_size(tmp_path):
    report = _report()
    path = tmp_path / "recall.png"
    fig = plots.plot_recall_vs_class_size(report, class_names=report.class_names,
                                          path=path)
    _assert_png(path)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.collections[0].get_offsets(),
                               np.stack([report.class_counts, report.recall], 1))
    assert [t.get_text() for t in ax.texts] == report.class_names
    compared = plots.plot_recall_vs_class_size(
        {"CE": report, "balanced": [0.5, 0.6, 0.7, 0.8]},
        class_counts=[1000, 300, 60, 8])
    assert len(compared.axes[0].collections) == 2
    labels = [t.get_text() for t in compared.axes[0].get_legend().get_texts()]
    assert labels == ["CE", "balanced"]


def test_bars_one_panel_and_side_by_side(tmp_path):
    fig = plots.plot_bars({"jax": 900.0, "torch": 700.0}, ylabel="samples/s",
                          path=tmp_path / "bars.png")
    _assert_png(tmp_path / "bars.png")
    assert [p.get_height() for p in fig.axes[0].patches] == [900.0, 700.0]
    values = {"epoch (ms)": {"jax": 12.0, "torch": 15.0, "tensorflow": 14.0},
              "accuracy": {"jax": 0.91, "torch": 0.90, "tensorflow": 0.92}}
    fig = plots.plot_bars(values, ylabel=["ms", "test accuracy"],
                          errors={"epoch (ms)": {"jax": (10, 13), "torch": (15, 18),
                                                 "tensorflow": (13, 14)}},
                          title="backends", path=tmp_path / "side.png")
    _assert_png(tmp_path / "side.png")
    assert [ax.get_title() for ax in fig.axes] == ["epoch (ms)", "accuracy"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["ms", "test accuracy"]
    assert [len(ax.patches) for ax in fig.axes] == [3, 3]
    assert len(fig.axes[0].lines) > 0 and not fig.axes[1].lines  # error bars


def test_other_formats_and_extensionless_paths(tmp_path):
    plots.plot_class_distribution([3, 1], path=tmp_path / "dist")
    _assert_png(tmp_path / "dist")
    plots.plot_class_distribution([3, 1], path=str(tmp_path / "dist.svg"))
    assert (tmp_path / "dist.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("plot", "args", "kwargs", "message"),
    [
        (plots.plot_class_distribution, ([],), {}, "argument `counts`. Expected a non"),
        (plots.plot_class_distribution, ([3, -1],), {}, "argument `counts`.*>= 0"),
        (plots.plot_class_distribution, ([3, np.nan],), {}, "argument `counts`"),
        (plots.plot_class_distribution, ([3, 1],), {"class_names": ["a"]},
         "argument `class_names`. Expected 2 names"),
        (plots.plot_class_distribution, ([3, 1],), {"log_scale": "yes"},
         "argument `log_scale`"),
        (plots.plot_class_distribution, ([3, 1],), {"path": "/no/such/dir/x.png"},
         "argument `path`"),
        (plots.plot_history, ({},), {}, "argument `history`"),
        (plots.plot_history, ({"loss": [1.0]}, ["recall"]), {}, "argument `metrics`"),
        (plots.plot_history, ({"loss": [1.0]}, []), {}, "argument `metrics`"),
        (plots.plot_history, ({"loss": []},), {}, r"argument `history\['loss'\]`"),
        (plots.plot_confusion_matrix, ([],), {}, "argument `confusion`"),
        (plots.plot_confusion_matrix, ([[1, 2, 3]],), {}, "argument `confusion`"),
        (plots.plot_confusion_matrix, ([[1, -2], [0, 1]],), {},
         "argument `confusion`. Expected finite counts"),
        (plots.plot_confusion_matrix, ([[1, 2], [0, 1]],), {"normalize": "rows"},
         "argument `normalize`"),
        (plots.plot_imbalance_sweep, ({},), {}, "argument `results`"),
        (plots.plot_imbalance_sweep, ({"CE": {}},), {},
         r"argument `results\['CE'\]`. Expected a non-empty"),
        (plots.plot_imbalance_sweep, ({"CE": ([1, 10], [0.5])},), {},
         r"argument `results\['CE'\]`. Expected as many values"),
        (plots.plot_imbalance_sweep, ({"CE": {0: 0.5, 10: 0.4}},), {},
         r"argument `results\['CE'\]`. Expected ratios > 0"),
        (plots.plot_imbalance_sweep, ({"CE": 0.5},), {}, r"argument `results\['CE'\]`"),
        (plots.plot_recall_vs_class_size, ([],), {"class_counts": []},
         "argument `recall`"),
        (plots.plot_recall_vs_class_size, ({},), {}, "argument `recall`"),
        (plots.plot_recall_vs_class_size, ([0.5, 0.4],), {},
         "argument `class_counts`. Expected the training count"),
        (plots.plot_recall_vs_class_size, ([0.5, 0.4],), {"class_counts": [10]},
         "argument `class_counts`. Expected 2 counts"),
        (plots.plot_recall_vs_class_size, ([0.5, 0.4],), {"class_counts": [10, 0]},
         "argument `class_counts`. Expected counts > 0"),
        (plots.plot_recall_vs_class_size, ([0.5, 1.4],), {"class_counts": [10, 2]},
         "argument `recall`. Expected recall values in"),
        (plots.plot_bars, ({},), {}, "argument `values`. Expected a non-empty"),
        (plots.plot_bars, ([1.0],), {}, "argument `values`"),
        (plots.plot_bars, ({"a": np.inf},), {}, "argument `values`. Expected finite"),
        (plots.plot_bars, ({"a": "x"},), {}, "argument `values`"),
        (plots.plot_bars, ({"p": {}},), {}, r"argument `values\['p'\]`"),
        (plots.plot_bars, ({"a": 1.0},), {"ylabel": ["x", "y"]}, "argument `ylabel`"),
        (plots.plot_bars, ({"a": 1.0},), {"title": 3}, "argument `title`"),
        (plots.plot_bars, ({"a": 1.0},), {"fmt": ["%d", "%d"]}, "argument `fmt`"),
        (plots.plot_bars, ({"a": 1.0},), {"errors": {"a": (2.0, 3.0)}},
         "argument `errors`. Expected finite \\(low, high\\) ranges"),
        (plots.plot_bars, ({"a": 1.0},), {"errors": {"b": (0.0, 3.0)}},
         "argument `errors`"),
        (plots.plot_bars, ({"p": {"a": 1.0}},), {"errors": {"q": {}}},
         "argument `errors`. Expected ranges for panels"),
        (plots.plot_bars, ({"a": 1.0},), {"path": 3}, "argument `path`. Expected a "
                                                      "path"),
        (plots.plot_class_distribution, ([3, 1],), {"path": 7}, "argument `path`"),
        (plots.plot_class_distribution, ([3, 1],), {"title": 7}, "argument `title`"),
        (plots.plot_history, ({"loss": [1.0]},), {"title": ["t"]}, "argument `title`"),
        (plots.plot_confusion_matrix, ([[1, 0], [0, 1]],), {"title": 1},
         "argument `title`"),
        (plots.plot_imbalance_sweep, ({"CE": {1: 0.5}},), {"metric": None},
         "argument `metric`. Expected a str. Received: metric=None"),
        (plots.plot_imbalance_sweep, ({"CE": {1: 0.5}},), {"xlabel": 3},
         "argument `xlabel`"),
        (plots.plot_recall_vs_class_size, ([0.5],), {"class_counts": [3],
                                                     "title": 2}, "argument `title`"),
    ],
)
def test_invalid_arguments(plot, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot(*args, **kwargs)
