"""Binary 4:1 imbalance: the cats-vs-dogs experiment of the seed blog post.

Two confusable classes of a real dataset, four negatives (majority, label 0)
per positive (minority, label 1) in training; validation and test sets are
balanced, so a model that always answers "majority" scores 0.5 there.
Datasets (`--dataset auto`, the default, takes the first available):
CIFAR-10 cats (3) vs dogs (5) through TensorFlow Datasets, Fashion-MNIST shirt
(6) vs T-shirt/top (0) from local IDX files, scikit-learn digits 3 vs 5
(embedded, always there).

Runs, in order:
- majority: the "mock model" that always predicts the majority class:
  train accuracy 0.8, balanced validation/test accuracy 0.5, recall 0;
- ce: plain cross-entropy;
- cw_0_1, cw_0.15_0.85, cw_balanced: class weights (0, 1), (0.15, 0.85) and
  sklearn's "balanced" N / (C n_c), as per-sample weights from the generator;
- over_sampling: random over-sampling of the minority;
- threshold: the CE model with an F2-optimal (recall-oriented) threshold
  tuned on the validation set;
- reference: CE on balanced training data (ratio 1:1).
Output: a table (train/val/test accuracy, balanced accuracy, precision,
recall and F1 of the positive class) and per-epoch validation accuracy /
precision / recall curves.

Examples:
    python recipes/cats_vs_dogs.py --quiet
    python recipes/cats_vs_dogs.py --dataset digits --epochs 30 --seeds 3
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

from kimbalance import callbacks, plots  # noqa: E402
from kimbalance import data as kb_data  # noqa: E402
from kimbalance import experiments as ex  # noqa: E402

COLUMNS = ["method", "train_accuracy", "val_accuracy", "accuracy",
           "balanced_accuracy", "precision", "recall", "f1", "train_time"]
AUTO_ORDER = ("cifar10", "fashion_mnist", "digits")


def build_parser():
    parser = ex.make_parser(__doc__, epochs=15, recipe="cats_vs_dogs",
                            batch_size=64, dataset="auto")
    parser.add_argument("--ratio", type=float, default=4.0,
                        help="negatives per positive in training (default: 4)")
    parser.add_argument("--pair", type=int, nargs=2, metavar=("NEG", "POS"),
                        default=None, help="class ids (majority, minority); "
                        "default: the dataset's entry in BINARY_PAIRS")
    parser.add_argument("--arch", choices=ex.ARCHITECTURES, default="cnn")
    ex.parse_methods(parser, ex.BINARY_METHODS)
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the balanced-data reference run")
    return parser


def pick_dataset(name, smoke=False):
    """`auto`: the first of CIFAR-10, Fashion-MNIST, digits that is available
    (digits for `--smoke`)."""
    if name != "auto":
        return name
    if smoke:
        return "digits"
    available = kb_data.available_datasets()
    return next(n for n in AUTO_ORDER if n == "digits" or available.get(n))


def main(argv=None):
    args = build_parser().parse_args(argv)
    ex.smoke_settings(args)
    name = pick_dataset(args.dataset, args.smoke)
    seeds = ex.seeds_from_args(args)
    split_kwargs = dict(pair=args.pair, data_dir=args.data_dir,
                        max_train=args.max_train, max_test=args.max_test)
    split = ex.binary_pair_split(name, ratio=args.ratio, **split_kwargs)
    print(f"train: {split.description}, counts {split.counts.tolist()}; "
          f"validation {len(split.y_val)}, test {len(split.y_test)} (balanced)")
    methods = ex.select_methods(ex.BINARY_METHODS, args.methods)
    run_kwargs = dict(arch=args.arch, train_accuracy=True, callbacks=_class_report,
                      **ex.train_kwargs(args))
    results = ex.run_methods(methods, split, seeds=seeds, **run_kwargs)
    if not args.no_reference:
        balanced = ex.binary_pair_split(name, balanced=True, **split_kwargs)
        reference = ex.Method("reference", "CE on balanced training data",
                              loss=ex.LONG_TAIL_METHODS["ce"].loss)
        print(f"reference: {balanced.description}, counts "
              f"{balanced.counts.tolist()}")
        results += ex.run_methods([reference], balanced, seeds=seeds,
                                  validation=True, **run_kwargs)
    ex.positive_class_metrics(results)
    rows = ex.summarize(results)
    table = ex.markdown_table(rows, COLUMNS)
    print(table)
    out = ex.ensure_out(args)
    meta = {"command": "python recipes/cats_vs_dogs.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
            "split": split.description, "train_counts": split.counts.tolist(),
            "validation_samples": len(split.y_val), "test_samples": len(split.y_test),
            "epochs": args.epochs, "batch_size": args.batch_size, "seeds": seeds,
            **ex.backend_info()}
    trained = {m.name for m in methods if not m.posthoc and not m.majority}
    curves = {r.method: r.history for r in results
              if r.seed == seeds[0] and r.method in trained | {"reference"}}
    ex.write_results(out, "cats_vs_dogs", table=table, rows=rows, meta=meta,
                     runs=results, extra={"curves": curves})
    _plot_curves(out, curves, split)
    print(f"wrote {out}/cats_vs_dogs.md, cats_vs_dogs.json and curves_*.png")
    return rows


def _class_report(model, split):
    return [callbacks.ClassReport(validation_data=(split.x_val, split.y_val))]


CURVES = {"accuracy": "val_balanced_accuracy", "precision": "val_precision_1",
          "recall": "val_recall_1"}


def _plot_curves(out, curves, split):
    """Per-epoch validation accuracy / precision / recall, one curve per run.

    The validation set is balanced, so its balanced accuracy is its accuracy.
    """
    for name, key in CURVES.items():
        series = {method: list(enumerate(history[key], start=1))
                  for method, history in curves.items() if history.get(key)}
        negative, positive = split.class_names
        plots.plot_imbalance_sweep(
            series, metric=f"validation {name}", log_x=False, xlabel="epoch",
            title=f"validation {name}: {negative} vs {positive} (positive)",
            path=out / f"curves_{name}.png")


if __name__ == "__main__":
    main()
