"""Imbalance sweep: test accuracy as the training imbalance grows.

For each profile (step: half the classes are minorities; long-tail:
exponential decay) and each imbalance ratio, trains CE, CE + random
over-sampling, CE + random under-sampling and one imbalance loss (default:
the logit-adjusted loss) on a subset of the training data, and scores them on
the full, balanced test set. For a fixed seed the subsets of a sweep are
nested (a larger ratio drops samples, never swaps them). Ratios the data
cannot support (the rarest class would keep < 5 samples) are skipped with a
note.

Output: a table (profile, ratio, method, accuracy, balanced accuracy) and the
accuracy-vs-ratio plot, one panel per profile.

Examples:
    python recipes/imbalance_sweep.py --quiet
    python recipes/imbalance_sweep.py --dataset fashion_mnist \\
        --ratios 1 10 100 --epochs 10 --seeds 3 --loss ldam_drw
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

from kimbalance import experiments as ex  # noqa: E402
from kimbalance import plots  # noqa: E402

COLUMNS = ["profile", "ratio", "method", "accuracy", "balanced_accuracy",
           "train_time"]


def build_parser():
    parser = ex.make_parser(__doc__, epochs=20, recipe="imbalance_sweep")
    parser.add_argument("--ratios", type=float, nargs="+",
                        default=[1, 2, 5, 10, 20, 50, 100],
                        help="imbalance ratios (default: 1 2 5 10 20 50 100)")
    parser.add_argument("--profiles", nargs="+", choices=["step", "long_tail"],
                        default=["step", "long_tail"])
    parser.add_argument("--loss", default="logit_adjusted",
                        choices=[m.name for m in ex.LONG_TAIL_METHODS.values()
                                 if not m.posthoc and m.sampler == "instance"
                                 and m.name != "ce"],
                        help="the imbalance loss to sweep (default: logit_adjusted)")
    parser.add_argument("--arch", choices=ex.ARCHITECTURES, default="cnn")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    ex.smoke_settings(args, ratios=[5.0])
    names = ["ce", "over_sampling", "under_sampling", args.loss]
    methods = ex.select_methods(ex.LONG_TAIL_METHODS, names)
    rows, runs = ex.imbalance_sweep(
        methods, args.dataset, ratios=args.ratios, profiles=args.profiles,
        seeds=ex.seeds_from_args(args), data_dir=args.data_dir,
        max_train=args.max_train, max_test=args.max_test, arch=args.arch,
        **ex.train_kwargs(args))
    table = ex.markdown_table(rows, COLUMNS)
    print(table)
    out = ex.ensure_out(args)
    meta = {"command": "python recipes/imbalance_sweep.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
            "dataset": args.dataset, "epochs": args.epochs,
            "batch_size": args.batch_size, "seeds": ex.seeds_from_args(args),
            **ex.backend_info()}
    ex.write_results(out, "imbalance_sweep", table=table, rows=rows, meta=meta)
    for profile in args.profiles:
        curves = {}
        for row in rows:
            if row["profile"] == profile:
                curves.setdefault(row["method"], {})[row["ratio"]] = row[
                    "balanced_accuracy"]
        plots.plot_imbalance_sweep(
            curves, metric="balanced test accuracy",
            xlabel=f"imbalance ratio ({profile.replace('_', '-')} profile)",
            title=f"{args.dataset}: {profile.replace('_', '-')} imbalance",
            path=out / f"imbalance_sweep_{profile}.png")
    print(f"wrote {out}/imbalance_sweep.md, imbalance_sweep.json and "
          "imbalance_sweep_*.png")
    return rows


if __name__ == "__main__":
    main()
