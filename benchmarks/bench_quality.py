"""Quality benchmark: every long-tail method on Fashion-MNIST-LT (rho = 100).

Setup (fixed, as in issue 5): Fashion-MNIST from local IDX files, long-tailed
training split n_c = 6000 * 100**(-c/9) (14,887 images, class 0 the head,
class 9 the tail with 60), the full balanced 10,000-image test set; the CNN
Conv32-Pool-Conv64-Pool-Dense128-Dense10 (`kimbalance.models.small_cnn`),
Adam 1e-3, batch 128, 15 epochs, seeds 0, 1, 2; one backend.

Honest protocol (issue 11): a balanced validation set of `--val-per-class`
images per class (default 20) is drawn from the training images the
long-tailed split left out; every tuned quantity (the tau of posthoc_la and
tau_norm, wb's stage-1 weight decay) is chosen on it and the test set is used
once per reported number.
The table's "tuned" column says what was tuned on what; "extra epochs" counts
the classifier-only epochs of two-stage methods (crt, lws, mislas).

Runs seed by seed (every method for seed 0, then seed 1, ...), appending each
finished (method, seed) to `benchmarks/results/quality_runs.jsonl`, so an
interrupted run keeps what it finished and `--resume` continues it. The
Markdown section `benchmarks/results/quality.md` is rebuilt from that file
after every run: medians and mean ± std over the completed seeds, with the
number of seeds per row.

Every row is reproducible by one command (the table's "command" line), e.g.
    python recipes/long_tail.py --dataset fashion_mnist --ratio 100 \\
        --epochs 15 --seeds 3 --batch-size 128 --backend jax --quiet \\
        --val-per-class 20 --methods logit_adjusted

    python benchmarks/bench_quality.py --backend jax            # all, ~hours
    python benchmarks/bench_quality.py --backend jax --resume   # continue
    python benchmarks/bench_quality.py --report-only            # rebuild .md
    python benchmarks/bench_quality.py --dataset digits --ratio 10 --epochs 1 \
        --seeds 1 --runs-file /tmp/q/runs.jsonl --methods crt,tau_norm  # dry run

The Markdown report is written next to the runs file (`quality.md`).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:], default="jax", disable_onednn=True)

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from kimbalance import experiments as ex  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "quality_runs.jsonl"
COLUMNS = ["method", "seeds", "val_accuracy", "accuracy", "balanced_accuracy", "g_mean",
           "macro_f1",
           "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
           "shirt_recall", "train_time", "extra_epochs", "tuned"]
PEERS = [
    ("plain CE in Keras", "80-84"),
    ("sklearn 'balanced' class_weight in Keras", "85.4"),
    ("native PyTorch loop + WeightedRandomSampler", "84.9"),
]
TARGET = 0.885
SHIRT = 6  # Fashion-MNIST's "Shirt", the bottleneck class
# Most informative first, the 4x-longer over-sampling epoch last: an
# interrupted run still covers the main methods.
PRIORITY = ["ce", "posthoc_la", "logit_adjusted", "weighted_ce", "ldam_drw", "cdt",
            "focal", "class_balanced", "cb_sampling", "progressive",
            "under_sampling", "over_sampling", "ldam_drw_aug", "cb_sampling_aug",
            "tau_norm", "crt", "lws", "vs", "mislas_ls", "drw_sam", "sam", "mixup",
            "remix", "mislas", "wb", "imbsam"]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=ex.BACKENDS, default=None,
                        help="Keras backend (default: $KERAS_BACKEND, else jax)")
    ex.parse_methods(parser, ex.LONG_TAIL_METHODS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed (runs seeds first-seed .. "
                             "seeds-1): parallel workers on disjoint seeds")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--val-per-class", type=int, default=20, metavar="N",
                        help="balanced validation images per class, from the "
                             "left-out training images (default: 20)")
    parser.add_argument("--resume", action="store_true",
                        help="skip (method, seed) pairs already in the runs file")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild quality.md from the runs file")
    parser.add_argument("--runs-file", default=str(RUNS))
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="also draw per-class test recall against class size "
                             "(CE and the three methods best on validation, mean "
                             "over seeds)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    runs_file = pathlib.Path(args.runs_file)
    if not args.report_only:
        run(args, runs_file)
    report(runs_file)
    if args.plot:
        plot_recall(runs_file, args.plot)


def plot_recall(runs_file, path):
    from kimbalance import plots

    records = [json.loads(line) for line in runs_file.read_text().splitlines()]
    recall, scores = {}, {}
    for r in records:  # ranked by validation accuracy: the test set picks nothing
        recall.setdefault(r["method"], []).append(r["per_class_recall"])
        scores.setdefault(r["method"], []).append(
            r["metrics"].get("val_accuracy", r["metrics"]["balanced_accuracy"]))
    ranked = sorted((m for m in scores if m != "ce"),
                    key=lambda m: -float(np.mean(scores[m])))
    shown = (["ce"] if "ce" in recall else []) + ranked[:3]
    config = records[0]["config"]
    split = ex.long_tail_split(config["dataset"], ratio=config["ratio"], log=None,
                               val_per_class=config.get("val_per_class"))
    plots.plot_recall_vs_class_size(
        {m: np.mean(recall[m], axis=0) for m in shown}, split.counts,
        title=f"Per-class test recall, {config['dataset']}-LT "
              f"rho={config['ratio']:g}", path=path)
    print(f"wrote {path}")


def _config(args):
    return {"dataset": args.dataset, "ratio": args.ratio, "epochs": args.epochs,
            "batch_size": args.batch_size, "arch": "cnn", "lr": 1e-3,
            "val_per_class": args.val_per_class,
            "backend": ex.backend_info()["backend"]}


def run(args, runs_file):
    config = _config(args)
    done = set()
    if args.resume and runs_file.exists():
        for line in runs_file.read_text().splitlines():
            record = json.loads(line)
            if record["config"] == config:
                done.add((record["method"], record["seed"]))
    elif runs_file.exists():
        runs_file.unlink()
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    split = ex.long_tail_split(args.dataset, ratio=args.ratio,
                               val_per_class=args.val_per_class)
    print(f"train: {split.description} counts {split.counts.tolist()} "
          f"({len(split.y_train)} images); test {len(split.y_test)}; validation "
          f"{0 if split.y_val is None else len(split.y_val)}", flush=True)
    methods = ex.select_methods(ex.LONG_TAIL_METHODS, args.methods or PRIORITY)
    units = _units(methods)
    for seed in range(args.first_seed, args.seeds):
        for unit in units:
            if all((m.name, seed) in done for m in unit):
                continue
            start = time.time()
            results = ex.run_methods(unit, split, seeds=[seed], epochs=args.epochs,
                                     batch_size=args.batch_size, arch="cnn",
                                     learning_rate=1e-3, verbose=0,
                                     validation=True)
            with runs_file.open("a") as f:
                for result in results:
                    if (result.method, seed) in done:  # re-run only as a base
                        continue
                    f.write(json.dumps({
                        "method": result.method, "seed": seed, "config": config,
                        "metrics": result.metrics,
                        "tuned": result.tuned, "tuned_on": result.tuned_on,
                        "epoch_times": result.epoch_times,
                        "per_class_recall": result.report.recall.tolist(),
                        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "machine": ex.backend_info()}) + "\n")
            print(f"seed {seed} {[m.name for m in unit]} done in "
                  f"{time.time() - start:.0f}s", flush=True)
            report(runs_file)


def _units(methods):
    """Methods grouped so a post-hoc method runs with its base, and a
    two-stage method with the method whose stage 1 it continues from."""
    units, index = [], {}
    for method in methods:
        parent = method.base if method.posthoc else getattr(method, "stage1", None)
        if parent in index:
            units[index[parent]].append(method)
        else:
            index[method.name] = len(units)
            units.append([method])
    return units


def report(runs_file):
    if not runs_file.exists():
        print(f"no runs in {runs_file}")
        return
    records = [json.loads(line) for line in runs_file.read_text().splitlines()]
    results = [ex.RunResult(r["method"], r["seed"], r["metrics"],
                            tuned=r.get("tuned", {}), tuned_on=r.get("tuned_on", ""))
               for r in records]
    order = [m for m in ex.LONG_TAIL_METHODS if any(r.method == m for r in results)]
    results.sort(key=lambda r: (order.index(r.method), r.seed))
    rows = ex.summarize(results)
    for row in rows:
        values = [r.metrics["balanced_accuracy"] for r in results
                  if r.method == row["method"]]
        row["median_bal"] = float(np.median(values))
    config = records[0]["config"]
    if config["dataset"] == "fashion_mnist":
        for row in rows:
            row["shirt_recall"] = float(np.mean(
                [r["per_class_recall"][SHIRT] for r in records
                 if r["method"] == row["method"]]))
    machine = records[0]["machine"]
    table = ex.markdown_table(
        rows, COLUMNS[:4] + ["median_bal"] + COLUMNS[4:],
        headers={"median_bal": "bal. acc (median)", "shirt_recall": "shirt recall",
                 "val_accuracy": "val acc",
                 "extra_epochs": "extra epochs"},
        rates=["median_bal", "shirt_recall"])
    # "Best" is chosen on the validation set; the test set only scores it.
    # Ties (200 validation images: accuracies move in steps of 0.5 %) go to the
    # first row in the registry order, which lists the plainer variant first
    # (ldam_drw before ldam_drw_aug); the rule is fixed in code, not chosen
    # after seeing test numbers, and the report names every tied row.
    def val(row):
        return row.get("val_accuracy", row["balanced_accuracy"])
    top = max(val(row) for row in rows)
    tied = [row for row in rows if abs(val(row) - top) < 1e-9]
    best = tied[0]
    ties = ""
    if len(tied) > 1:
        named = [f"{row['method']} ({100 * row['balanced_accuracy']:.1f}% test)"
                 for row in tied]
        ties = (" Tied on validation (the first in the registry order is taken): "
                + ", ".join(named) + ".")
    command = ("python recipes/long_tail.py --dataset {dataset} --ratio {ratio:g} "
               "--epochs {epochs} --seeds 3 --batch-size {batch_size} "
               "--backend {backend} --val-per-class {val} --quiet "
               "--methods METHOD").format(val=config.get("val_per_class"), **config)
    all_rows = (f"python benchmarks/bench_quality.py --backend {config['backend']} "
                f"--val-per-class {config.get('val_per_class')}")
    peers = "\n".join(f"| {name} | {value} |" for name, value in PEERS)
    missing = [name for name in ex.LONG_TAIL_METHODS
               if not any(row["method"] == name for row in rows)]
    if all(row["seeds"] >= 3 for row in rows):
        status = f"every row has {min(row['seeds'] for row in rows)} seeds"
        if missing:
            status += ("; not run under this protocol, so not shown: "
                       + ", ".join(missing))
    else:
        status = (f"PARTIAL: {len(records)} (method, seed) runs finished; the "
                  "'seeds' column says how many seeds each row averages")
    text = f"""## quality

Long-tail methods on Fashion-MNIST-LT (rho = {config['ratio']:g}): balanced 10,000-image
test set (so accuracy = balanced accuracy up to rounding), CNN
Conv32-Pool-Conv64-Pool-Dense128-Dense10, Adam 1e-3, batch {config['batch_size']},
{config['epochs']} epochs; backend {config['backend']} on {machine['device']}
({machine['cpus']} CPUs, shared; {machine['machine']}), keras {machine['keras']}.
Rates in %, mean ± std over seeds (population std). Few-shot accuracy is
empty: no class has fewer than 20 training images here (the tail class has
59). Train time is wall time in seconds on a 2-core machine shared with other
jobs whose load varied during the run, so it compares methods only loosely.
Validation: {config.get('val_per_class')} images per class from the training images
the long-tailed split left out; every tuned quantity was chosen on it (the
"tuned" column: what, and on what) and the test set scored each run once.
Status: {status}.

Command (all rows): `{all_rows}`
One row: `{command}`

{table}

Best on validation: **{best['method']}** ({100 * best.get('val_accuracy', 0):.1f}%
validation accuracy), {100 * best['balanced_accuracy']:.1f}% balanced test
accuracy over the seeds (the {100 * TARGET:.1f}% we aimed for: {'reached' if
best['balanced_accuracy'] >= TARGET else 'not reached'}).{ties}

The `_aug` rows add random 1-pixel shifts of the training images
(`kimbalance.data.RandomShiftFlip(1, horizontal_flip=False)` as the
generator's `augment`). That shift size was fixed in an earlier one-seed
exploration that looked at this test set (there, 2-pixel shifts with
horizontal flips cost logit adjustment 2.3 points); it is kept as a fixed
design choice and not re-tuned, so read those rows with that in mind.

Peer numbers (the same long-tailed setup, CNN and epochs, trained without
kimbalance before the validation hold-out existed; balanced test accuracy %):

| run | bal. acc |
|---|---|
{peers}
"""
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    (runs_file.parent / "quality.md").write_text(text)
    print(table)


if __name__ == "__main__":
    main()
