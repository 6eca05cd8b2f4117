"""Long-tailed classification: every imbalance method on one long-tailed split.

Builds a long-tailed training split (n_c = n_max * rho**(-c/(C-1)), the LDAM /
class-balanced formula) of a dataset, keeps its balanced test set, trains the
same network with each method and reports accuracy, balanced accuracy, G-mean,
macro-F1, many/medium/few-shot accuracy and train time (mean ± std over
seeds). Plots: per-class recall against class size, and the confusion matrices
of CE and of the best method (by balanced accuracy).

Methods: ce, weighted_ce, focal, class_balanced (effective number), ldam_drw
(LDAM + cosine classifier + deferred re-weighting), logit_adjusted (balanced
softmax), posthoc_la (the CE model + post-hoc logit adjustment), cdt, and CE
with over_sampling, under_sampling, cb_sampling (class-balanced batches),
progressive sampling; ldam_drw_aug and cb_sampling_aug add random 1-pixel
shifts of the training images (`kimbalance.data.RandomShiftFlip`). The newer
long-tail methods: vs (VS loss), mislas_ls (label-aware smoothing), crt,
tau_norm and lws (CE, then a classifier-only stage: cRT and LWS re-train on
class-balanced batches for a fifth of the epochs, reported as extra epochs),
mixup and remix (mixing augmentations), mislas (mixup, then cRT with
label-aware smoothing), sam and drw_sam (sharpness-aware minimisation).

Honest tuning: with `--val-per-class N` a balanced validation set of N images
per class is drawn from the training images the long-tailed split left out
(ImageNet-LT's convention); every tuned quantity (the tau of posthoc_la and
tau_norm) is chosen on it, never on the test set, and the table's "tuned"
column says what was tuned on what ("fixed": no validation set, default
used). `--smoke` uses 2 and `--demo` 5 images per class unless the option
is given.

Examples:
    python recipes/long_tail.py --demo                       # digits, minutes
    python recipes/long_tail.py --dataset fashion_mnist --ratio 100 \\
        --epochs 15 --seeds 3 --backend jax --out runs/fmnist_lt
    python recipes/long_tail.py --methods ce,logit_adjusted,ldam_drw --quiet

The embedded `digits` dataset has ~135 training images per class: a ratio the
data cannot support (the rarest class would keep < 5 images) is lowered to
the largest of 1, 2, 5, 10, 20, ... that fits, and the script says so.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

import numpy as np  # noqa: E402

from kimbalance import experiments as ex  # noqa: E402
from kimbalance import plots  # noqa: E402

COLUMNS = ["method", "accuracy", "balanced_accuracy", "g_mean", "macro_f1",
           "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
           "train_time", "extra_epochs", "tuned"]
SMOKE_VAL_PER_CLASS = 2
DEMO_VAL_PER_CLASS = 5  # measured: the 24-method demo takes ~2 min on 2 CPUs
DEMO_EPOCHS = 30


def build_parser():
    parser = ex.make_parser(__doc__, epochs=15, recipe="long_tail")
    parser.add_argument("--ratio", type=float, default=100.0,
                        help="imbalance ratio rho = n_max / n_min (default: 100)")
    parser.add_argument("--profile", choices=["long_tail", "step"],
                        default="long_tail", help="imbalance profile")
    parser.add_argument("--arch", choices=ex.ARCHITECTURES, default="cnn",
                        help="network (default: cnn = Conv32-Pool-Conv64-Pool-"
                             "Dense128-Dense(C))")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--val-per-class", type=int, default=None, metavar="N",
                        help="balanced validation set of N images per class from "
                             "the left-out training images; tuned quantities "
                             "are chosen on it (default: none)")
    ex.parse_methods(parser, ex.LONG_TAIL_METHODS)
    parser.add_argument("--demo", action="store_true",
                        help=f"preset for `make demo`: digits, every method, "
                             f"{DEMO_EPOCHS} epochs, {DEMO_VAL_PER_CLASS} "
                             "validation images per class, no progress bars")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.demo:
        args.dataset, args.epochs, args.quiet = "digits", DEMO_EPOCHS, True
        if args.val_per_class is None:
            args.val_per_class = DEMO_VAL_PER_CLASS
    ex.smoke_settings(args, **({"val_per_class": SMOKE_VAL_PER_CLASS}
                               if args.val_per_class is None else {}))
    methods = ex.select_methods(ex.LONG_TAIL_METHODS, args.methods)
    split = ex.long_tail_split(args.dataset, profile=args.profile, ratio=args.ratio,
                               data_dir=args.data_dir, max_train=args.max_train,
                               max_test=args.max_test,
                               val_per_class=args.val_per_class)
    val = f"; validation: {len(split.y_val)} samples" if split.y_val is not None \
        else ""
    print(f"train: {split.description}, counts {split.counts.tolist()}; "
          f"test: {len(split.y_test)} samples{val}")
    results = ex.run_methods(methods, split, seeds=ex.seeds_from_args(args),
                             arch=args.arch, learning_rate=args.lr,
                             **ex.train_kwargs(args))
    rows = ex.summarize(results)
    table = ex.markdown_table(rows, COLUMNS)
    print(table)
    out = ex.ensure_out(args)
    meta = {"command": "python recipes/long_tail.py " + " ".join(argv or sys.argv[1:]),
            "split": split.description, "train_counts": split.counts.tolist(),
            "test_samples": len(split.y_test), "epochs": args.epochs,
            "val_per_class": args.val_per_class,
            "batch_size": args.batch_size, "arch": args.arch,
            "seeds": ex.seeds_from_args(args), **ex.backend_info()}
    recall = _per_class_recall(results)
    ex.write_results(out, "long_tail", table=table, rows=rows, meta=meta,
                     runs=results, extra={"per_class_recall": recall})
    _plots(out, split, results, rows, recall)
    print(f"wrote {out}/long_tail.md, long_tail.json and PNG plots")
    return rows


def _per_class_recall(results):
    """Per-class recall of each method, averaged over seeds."""
    by_method = {}
    for result in results:
        by_method.setdefault(result.method, []).append(result.report.recall)
    return {name: np.mean(values, axis=0).tolist()
            for name, values in by_method.items()}


def _plots(out, split, results, rows, recall):
    ranked = sorted(rows, key=lambda r: -r["balanced_accuracy"])
    best = ranked[0]["method"]
    shown = (["ce"] if "ce" in recall else []) + [
        r["method"] for r in ranked if r["method"] != "ce"][:3]
    plots.plot_recall_vs_class_size(
        {name: recall[name] for name in shown}, split.counts,
        class_names=split.class_names, path=out / "per_class_recall.png",
        title=f"Per-class test recall ({split.description})")
    first = {}
    for result in results:
        first.setdefault(result.method, result)
    for name in dict.fromkeys(["ce", best]):
        if name in first:
            plots.plot_confusion_matrix(
                first[name].report, class_names=split.class_names,
                title=f"{name} ({split.description})",
                path=out / f"confusion_{name}.png")


if __name__ == "__main__":
    main()
