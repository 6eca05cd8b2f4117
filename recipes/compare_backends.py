"""One recipe configuration under torch, jax and tensorflow, side by side.

Runs the same long-tail configuration (dataset, split, network, method,
epochs, batch size, seed) once per backend, each in its own Python process
(the Keras backend is fixed per process), and compares: the first epoch
(tracing / compilation included), the median later epoch, training samples
per second, device, the resolved jit mode, and the final test accuracy and
balanced accuracy. Output: a table and a bar chart of samples/s.

Examples:
    python recipes/compare_backends.py --quiet
    python recipes/compare_backends.py --dataset fashion_mnist --ratio 100 \\
        --method ldam_drw --epochs 5 --backends jax torch
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402

from kimbalance import experiments as ex  # noqa: E402
from kimbalance import plots  # noqa: E402

COLUMNS = ["backend", "device", "jit_compile", "first_epoch_s", "epoch_s",
           "samples_per_s", "accuracy", "balanced_accuracy"]
HEADERS = {"first_epoch_s": "first epoch (s)", "epoch_s": "epoch (s, median)",
           "samples_per_s": "samples/s", "jit_compile": "jit"}


def build_parser():
    parser = ex.make_parser(__doc__, epochs=5, recipe="compare_backends")
    parser.add_argument("--backends", nargs="+", choices=ex.BACKENDS,
                        default=list(ex.BACKENDS),
                        help="backends to compare (default: all three); with "
                             "--smoke only the current one")
    parser.add_argument("--method", default="ce", choices=[
        m.name for m in ex.LONG_TAIL_METHODS.values() if not m.posthoc],
        help="the long-tail method to train (default: ce)")
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--arch", choices=ex.ARCHITECTURES, default="cnn")
    parser.add_argument("--worker-json", default=None, help=argparse.SUPPRESS)
    return parser


def worker(args):
    """Trains the configuration on this process's backend; writes a JSON row."""
    split = ex.long_tail_split(args.dataset, ratio=args.ratio, data_dir=args.data_dir,
                               max_train=args.max_train, max_test=args.max_test)
    method = ex.LONG_TAIL_METHODS[args.method]
    result = ex.run_method(method, split, arch=args.arch, seed=args.seed,
                           **ex.train_kwargs(args))
    row = {**ex.backend_info(), **ex.timing_summary(result),
           "jit_compile": str(result.jit_compile),
           "accuracy": result.metrics["accuracy"],
           "balanced_accuracy": result.metrics["balanced_accuracy"],
           "split": split.description, "seeds": 1}
    with open(args.worker_json, "w") as f:
        json.dump(row, f)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    ex.smoke_settings(args)
    if args.worker_json:
        return worker(args)
    backends = [keras.backend.backend()] if args.smoke else args.backends
    passthrough = _strip(argv, {"--backend", "--backends", "--out"})
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            path = os.path.join(tmp, f"{backend}.json")
            command = [sys.executable, os.path.abspath(__file__), *passthrough,
                       "--backend", backend, "--worker-json", path]
            print(f"=== {backend}: {' '.join(command[1:])}", flush=True)
            env = {**os.environ, "KERAS_BACKEND": backend}
            code = subprocess.call(command, env=env)
            if code or not os.path.exists(path):
                failed.append(backend)
                rows.append({"backend": backend, "device": f"failed (exit {code})",
                             "seeds": 1})
                continue
            with open(path) as f:
                rows.append(json.load(f))
    table = ex.markdown_table(rows, COLUMNS, headers=HEADERS)
    print(table)
    out = ex.ensure_out(args)
    meta = {"command": "python recipes/compare_backends.py " + " ".join(argv),
            "method": args.method, "dataset": args.dataset, "ratio": args.ratio,
            "epochs": args.epochs, "batch_size": args.batch_size}
    ex.write_results(out, "compare_backends", table=table, rows=rows, meta=meta)
    ok = [r for r in rows if "samples_per_s" in r]
    if ok:
        plots.plot_bars({r["backend"]: r["samples_per_s"] for r in ok},
                     ylabel="training samples / s (median epoch)",
                     title=f"{args.method} on {ok[0]['split']}",
                     path=out / "compare_backends.png")
    print(f"wrote {out}/compare_backends.md, compare_backends.json and "
          "compare_backends.png")
    if failed:
        sys.exit(f"backends failed: {failed}")
    return rows


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
