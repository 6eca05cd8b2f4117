"""Multi-label imbalance: mosaics of real images with long-tailed labels.

Each sample is a 2x2 mosaic of real images (digits, Fashion-MNIST, ...; a
tile may be blank); its label set is the classes present. Tiles of training
and validation mosaics are drawn with long-tailed class probabilities, so
label frequencies are long-tailed; test mosaics use uniform tiles.
`kimbalance.data.describe` prints the imbalance statistics (IRLbl, MeanIR,
CVIR, SCUMBLE) before and after multi-label over-sampling.

Methods: bce, weighted_bce (pos_weight = negatives / positives per label),
sigmoid_focal, asl (asymmetric loss), db (distribution-balanced loss),
ml_over (BCE + MultiLabelOverSampler), thresholds (the BCE model with
per-label F1-optimal thresholds tuned on the validation mosaics).
Scores: macro-F1, micro-F1 (decision: probability >= 0.5, or the tuned
thresholds), mAP (sklearn `average_precision_score`, macro over labels), and a
per-label table.

Examples:
    python recipes/multilabel.py --quiet
    python recipes/multilabel.py --dataset fashion_mnist --epochs 10 --seeds 3
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

import numpy as np  # noqa: E402

from kimbalance import data as kb_data  # noqa: E402
from kimbalance import experiments as ex  # noqa: E402
from kimbalance import plots  # noqa: E402

COLUMNS = ["method", "macro_f1", "micro_f1", "map", "train_time"]


def build_parser():
    parser = ex.make_parser(__doc__, epochs=15, recipe="multilabel")
    parser.add_argument("--label-ratio", type=float, default=50.0,
                        help="head / tail label probability ratio (default: 50)")
    parser.add_argument("--empty-prob", type=float, default=0.25,
                        help="probability that a tile is blank (default: 0.25)")
    parser.add_argument("--train-size", type=int, default=4000,
                        help="training mosaics (default: 4000)")
    parser.add_argument("--arch", choices=ex.ARCHITECTURES, default="cnn")
    ex.parse_methods(parser, ex.MULTILABEL_METHODS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    ex.smoke_settings(args)
    sizes = ((300, 100, 100) if args.smoke
             else (args.train_size, args.train_size // 4, args.train_size // 2))
    split = ex.mosaic_split(args.dataset, label_ratio=args.label_ratio,
                            empty_prob=args.empty_prob, num_train=sizes[0],
                            num_val=sizes[1], num_test=sizes[2],
                            data_dir=args.data_dir)
    before = kb_data.describe(split.y_train, class_names=split.class_names)
    sampler = kb_data.MultiLabelOverSampler(split.y_train, seed=args.seed)
    after = kb_data.describe(split.y_train[sampler.indices(0)],
                             class_names=split.class_names)
    print(f"train: {split.description}, {len(split.y_train)} mosaics")
    print("label statistics before sampling:\n" + str(before))
    print("label statistics after MultiLabelOverSampler (epoch 0):\n" + str(after))
    methods = ex.select_methods(ex.MULTILABEL_METHODS, args.methods)
    results = ex.run_methods(methods, split, seeds=ex.seeds_from_args(args),
                             arch=args.arch, **ex.train_kwargs(args))
    rows = ex.summarize(results)
    table = ex.markdown_table(rows, COLUMNS)
    per_label_rows, per_label = _per_label(split, results, before)
    label_table = ex.markdown_table(
        per_label_rows, ["label", "train_positives", "irlbl", *per_label],
        headers={"train_positives": "train positives", "irlbl": "IRLbl",
                 **{m: f"F1 {m}" for m in per_label}}, rates=per_label)
    print(table)
    print("per-label F1 (test, first seed):")
    print(label_table)
    out = ex.ensure_out(args)
    meta = {"command": "python recipes/multilabel.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
            "split": split.description, "train_positives": split.counts.tolist(),
            "mean_ir_before": float(before.mean_ir), "scumble_before": float(
                before.scumble), "mean_ir_after": float(after.mean_ir),
            "epochs": args.epochs, "batch_size": args.batch_size,
            "seeds": ex.seeds_from_args(args), **ex.backend_info()}
    ex.write_results(out, "multilabel", table=table + "\n\n" + label_table, rows=rows,
                     meta=meta, runs=results,
                     extra={"describe_before": before.to_dict(),
                            "describe_after": after.to_dict(),
                            "per_label": {r.method: r.report["per_label"]
                                          for r in results}})
    plots.plot_imbalance_sweep(
        {m: [(row["train_positives"], row[m]) for row in per_label_rows
             if row["train_positives"] > 0] for m in per_label},
        metric="test F1 of the label",
        xlabel="training positives of the label",
        title=f"Per-label F1 ({split.description})", path=out / "per_label_f1.png")
    print(f"wrote {out}/multilabel.md, multilabel.json and per_label_f1.png")
    return rows


def _per_label(split, results, before):
    first = {}
    for result in results:
        first.setdefault(result.method, result)
    methods = list(first)
    rows = []
    for j, name in enumerate(split.class_names):
        row = {"label": name, "seeds": 1, "train_positives": int(split.counts[j]),
               "irlbl": float(np.asarray(before.irlbl)[j])}
        for m in methods:
            row[m] = first[m].report["per_label"][j]["f1"]
        rows.append(row)
    return rows, methods


if __name__ == "__main__":
    main()
