"""One long-tail training run under torch, jax and tensorflow, side by side.

Trains the same configuration (dataset, long-tailed split, network, method,
epochs, batch size, seed) once per backend, each in its own Python process
(the Keras backend is fixed per process), and compares:

- epoch time in ms: the first epoch (tracing / compilation included) apart,
  then min / median / max over the later epochs, and training samples/s at
  the median;
- peak memory: the maximum resident set size of each backend's process
  (`resource.getrusage`), imports, data and model included;
- test accuracy and balanced accuracy, and whether the backends agree on
  accuracy within seed noise (see "Agreement" below);
- the device and the resolved jit mode.

Each backend prints one line when it is done (the training processes run
with `verbose=0` and their output is kept apart, so nothing interleaves).
Output: a Markdown table, a JSON file, and a plot of epoch time (median with
the min-max range) and test accuracy side by side.

Defaults: Fashion-MNIST-LT (ratio 100, 14,886 training images, the full
10,000-image test set) for 5 epochs when its IDX files are found locally
(`--data-dir`, `$KIMBALANCE_DATA`, `/usr/share/datasets/fashion-mnist`),
else the embedded scikit-learn digits (ratio lowered to 20: 441 training
and 450 test images) for 40 epochs, where the CNN reaches its usual ~90 %
test accuracy; the small CNN, cross-entropy, batch 128, seed 0. `--epochs`
overrides the per-dataset default. Fashion-MNIST-LT takes minutes per backend
on a few CPU cores (torch runs eagerly: one epoch took 2-3 minutes on a
loaded 2-core machine, where it reached 79.7 % test accuracy after 5 epochs);
`--dataset digits` is the quick check (about a minute per backend).

Agreement: the backends initialise weights from different random number
generators and sum floats in different orders, so their runs differ the way
two seeds do. Two seeds' test accuracies differ by about the binomial standard
error of an accuracy on n test samples, SE = sqrt(p (1 - p) / n) (the quality
benchmark on Fashion-MNIST-LT: 86.9 +- 0.4 % over 3 seeds, where SE = 0.34
points), so the backends agree when the
spread (max - min) of their accuracies is within 3 * sqrt(2) * SE, three
standard deviations of a difference of two runs: 1.5 points on Fashion-MNIST's
10,000 test images, 6 points on digits' 450. With `--seeds k > 1` the
observed standard deviation over seeds is used when it is larger.

Examples:
    python recipes/compare_backends.py
    python recipes/compare_backends.py --dataset digits --backends jax torch
    python recipes/compare_backends.py --method ldam_drw --epochs 10 --seeds 3
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kimbalance import experiments as ex  # noqa: E402
from kimbalance import plots  # noqa: E402
from kimbalance.data import available_datasets  # noqa: E402

# Per-dataset default epochs: enough for the CNN to reach its usual accuracy
# and to time several post-compilation epochs.
DEFAULT_EPOCHS = {"fashion_mnist": 5, "digits": 40}
COLUMNS = ["backend", "device", "jit_compile", "first_epoch_ms", "epoch_min_ms",
           "epoch_ms", "epoch_max_ms", "samples_per_s", "peak_rss_mb", "accuracy",
           "balanced_accuracy"]
HEADERS = {"first_epoch_ms": "first epoch (ms)", "epoch_min_ms": "epoch min (ms)",
           "epoch_ms": "epoch median (ms)", "epoch_max_ms": "epoch max (ms)",
           "samples_per_s": "samples/s", "peak_rss_mb": "peak RSS (MB)",
           "jit_compile": "jit"}
# Three standard deviations of the difference of two independent runs.
AGREEMENT_SIGMAS = 3.0 * math.sqrt(2.0)


def build_parser():
    parser = ex.make_parser(__doc__, epochs=None, recipe="compare_backends",
                            dataset="auto")
    parser.add_argument("--backends", nargs="+", choices=ex.BACKENDS,
                        default=list(ex.BACKENDS),
                        help="backends to compare (default: all three); with "
                             "--smoke only the current one")
    parser.add_argument("--method", default="ce", choices=[
        m.name for m in ex.LONG_TAIL_METHODS.values() if not m.posthoc],
        help="the long-tail method to train (default: ce)")
    parser.add_argument("--ratio", type=float, default=100.0,
                        help="imbalance ratio n_max / n_min (default: 100; "
                             "lowered to what the data supports)")
    parser.add_argument("--arch", choices=ex.ARCHITECTURES, default="cnn")
    parser.add_argument("--worker-json", default=None, help=argparse.SUPPRESS)
    return parser


def resolve_defaults(args):
    """`--dataset auto` and the per-dataset epochs."""
    if args.dataset == "auto":
        local = available_datasets(args.data_dir).get("fashion_mnist")
        args.dataset = "fashion_mnist" if local and not args.smoke else "digits"
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS.get(args.dataset, DEFAULT_EPOCHS["fashion_mnist"])
    return args


def peak_rss_mb():
    """This process's peak resident set size in MB (ru_maxrss: KB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def worker(args):
    """Trains on this process's backend, quietly; writes one JSON row."""
    split = ex.long_tail_split(args.dataset, ratio=args.ratio, data_dir=args.data_dir,
                               max_train=args.max_train, max_test=args.max_test,
                               log=None)
    method = ex.LONG_TAIL_METHODS[args.method]
    results = ex.run_methods([method], split, seeds=ex.seeds_from_args(args),
                             log=None, arch=args.arch,
                             **{**ex.train_kwargs(args), "verbose": 0})
    timings = [ex.timing_summary(r) for r in results]
    accuracy = [r.metrics["accuracy"] for r in results]
    row = {**ex.backend_info(),
           "jit_compile": str(results[0].jit_compile),
           "first_epoch_ms": 1e3 * np.median([t["first_epoch_s"] for t in timings]),
           "epoch_min_ms": 1e3 * min(t["epoch_min_s"] for t in timings),
           "epoch_ms": 1e3 * np.median([t["epoch_s"] for t in timings]),
           "epoch_max_ms": 1e3 * max(t["epoch_max_s"] for t in timings),
           "timed_epochs": sum(t["timed_epochs"] for t in timings),
           "samples_per_s": float(np.median([t["samples_per_s"] for t in timings])),
           "accuracy": float(np.mean(accuracy)),
           "accuracy_seed_std": float(np.std(accuracy)),
           "balanced_accuracy": float(np.mean(
               [r.metrics["balanced_accuracy"] for r in results])),
           "test_samples": len(split.y_test), "train_samples": len(split.y_train),
           "split": split.description, "seeds": len(results),
           "peak_rss_mb": peak_rss_mb()}
    with open(args.worker_json, "w") as f:
        json.dump(row, f)


def agreement(rows):
    """Whether the backends' accuracies agree within seed noise (see docstring)."""
    done = [r for r in rows if "accuracy" in r]
    if len(done) < 2:
        return None
    accuracy = np.array([r["accuracy"] for r in done])
    p = float(np.clip(accuracy.mean(), 1e-3, 1 - 1e-3))
    standard_error = math.sqrt(p * (1 - p) / done[0]["test_samples"])
    seed_std = max(r.get("accuracy_seed_std", 0.0) for r in done)
    tolerance = AGREEMENT_SIGMAS * max(standard_error, seed_std)
    spread = float(accuracy.max() - accuracy.min())
    return {"agree": spread <= tolerance, "spread": spread, "tolerance": tolerance,
            "standard_error": standard_error, "seed_std": seed_std}


def run_backend(backend, passthrough, tmp):
    """Runs one worker process; returns its row (or a failure row) and its log."""
    path = os.path.join(tmp, f"{backend}.json")
    command = [sys.executable, os.path.abspath(__file__), *passthrough,
               "--backend", backend, "--worker-json", path]
    env = {**os.environ, "KERAS_BACKEND": backend}
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if completed.returncode or not os.path.exists(path):
        return ({"backend": backend, "device": f"failed (exit "
                 f"{completed.returncode})", "seeds": 1, "wall_s": wall},
                completed.stdout + completed.stderr)
    with open(path) as f:
        return {**json.load(f), "wall_s": wall}, ""


def summary_line(row):
    if "accuracy" not in row:
        return f"{row['device']} after {row['wall_s']:.0f} s"
    return (f"done in {row['wall_s']:.0f} s: first epoch "
            f"{row['first_epoch_ms']:.0f} ms, then {row['epoch_min_ms']:.0f} / "
            f"{row['epoch_ms']:.0f} / {row['epoch_max_ms']:.0f} ms (min / median / "
            f"max of {row['timed_epochs']}), peak RSS {row['peak_rss_mb']:.0f} MB, "
            f"accuracy {100 * row['accuracy']:.1f} %, balanced "
            f"{100 * row['balanced_accuracy']:.1f} %")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = resolve_defaults(build_parser().parse_args(argv))
    ex.smoke_settings(args)
    if args.worker_json:
        return worker(args)
    backends = [keras.backend.backend()] if args.smoke else args.backends
    passthrough = _strip(argv, {"--backend", "--backends", "--out", "--dataset",
                                "--epochs"})
    passthrough += ["--dataset", args.dataset, "--epochs", str(args.epochs)]
    print(f"{args.method} on {args.dataset} (requested ratio {args.ratio:g}), "
          f"{args.arch}, "
          f"{args.epochs} epochs, batch {args.batch_size}, "
          f"{len(ex.seeds_from_args(args))} seed(s); one process per backend",
          flush=True)
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            print(f"{backend:<10} ...", end=" ", flush=True)
            row, log = run_backend(backend, passthrough, tmp)
            print(summary_line(row), flush=True)
            if log:
                failed.append(backend)
                print(log[-3000:], file=sys.stderr)
            rows.append(row)
    table = ex.markdown_table(rows, COLUMNS, headers=HEADERS)
    check = agreement(rows)
    verdict = _verdict(check)
    print(table)
    print(verdict)
    out = ex.ensure_out(args)
    meta = {"command": "python recipes/compare_backends.py " + " ".join(argv),
            "method": args.method, "dataset": args.dataset, "ratio": args.ratio,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "arch": args.arch, "seeds": ex.seeds_from_args(args),
            "agreement": verdict}
    ex.write_results(out, "compare_backends", table=table + "\n\n" + verdict,
                     rows=rows, meta=meta, extra={"agreement": check})
    ok = [r for r in rows if "accuracy" in r]
    if ok:
        plots.plot_bars(
            {"epoch time (ms, median)": {r["backend"]: r["epoch_ms"] for r in ok},
             "test accuracy (%)": {r["backend"]: 100 * r["accuracy"] for r in ok}},
            ylabel=["ms per epoch (bars: min-max)", "%"], fmt=["%.0f", "%.1f"],
            errors={"epoch time (ms, median)": {
                r["backend"]: (r["epoch_min_ms"], r["epoch_max_ms"]) for r in ok}},
            title=f"{args.method} on {ok[0]['split']}, {args.epochs} epochs",
            path=out / "compare_backends.png")
    print(f"wrote {out}/compare_backends.md, compare_backends.json and "
          "compare_backends.png")
    if failed:
        sys.exit(f"backends failed: {failed}")
    return rows


def _verdict(check):
    if check is None:
        return "agreement: needs two or more backends"
    word = "agree" if check["agree"] else "DISAGREE"
    return (f"accuracy: backends {word} within seed noise (spread "
            f"{100 * check['spread']:.1f} points, tolerance "
            f"{100 * check['tolerance']:.1f} = 3 * sqrt(2) * "
            f"max(binomial SE {100 * check['standard_error']:.2f}, seed std "
            f"{100 * check['seed_std']:.2f}) points)")


def _strip(argv, flags):
    """`argv` without the given flags (and their values)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            if arg.startswith("--"):
                skip = False
            else:
                continue
        name = arg.split("=", 1)[0]
        if name in flags:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


if __name__ == "__main__":
    main()
