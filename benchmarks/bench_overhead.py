"""Overhead benchmark: kimbalance's generator and losses vs plain `model.fit`.

Same data and network everywhere: Fashion-MNIST-LT (rho = 100, 14,887 training
images), the CNN Conv32-Pool-Conv64-Pool-Dense128-Dense10, Adam 1e-3, batch
128. Per Keras backend, each in its own process:

- `arrays`: `model.fit(x, y, shuffle=True)` with Keras'
  `SparseCategoricalCrossentropy(from_logits=True)` (the baseline);
- `generator`: `BalancedBatchGenerator(sampler="instance")` + the same loss
  (the cost of the Python batch generator alone);
- `generator+loss`: `BalancedBatchGenerator(sampler="instance",
  class_weight="balanced")` (per-sample weights) +
  `kimbalance.losses.WeightedCategoricalCrossentropy(from_logits=True)`;
- `over+loss`: `BalancedBatchGenerator(sampler="over")` (each class topped up
  to the head's count: a 4x larger epoch) + `LogitAdjustedCrossentropy`.

Side by side, a native PyTorch loop (same architecture in `torch.nn`,
`DataLoader` + `WeightedRandomSampler` with inverse-frequency weights, N
samples per epoch, `CrossEntropyLoss`, Adam). Every configuration trains
`--epochs` epochs, round robin over the configurations (epoch 1 of each,
then epoch 2, ...: load changes on a shared machine hit all alike); the
first (tracing / compilation) is dropped and the median of the others is
reported as samples/s. Overhead % is
`samples/s(arrays) / samples/s(config) - 1` on the same backend.

    python benchmarks/bench_overhead.py                  # all backends + torch
    python benchmarks/bench_overhead.py --backends jax --epochs 3
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import preparse_flag, select_backend  # noqa: E402

# Worker processes get `--worker BACKEND`; "native_torch" runs no keras.
_WORKER = preparse_flag(sys.argv[1:], "--worker")
select_backend(["--backend", _WORKER] if _WORKER not in (None, "native_torch") else [],
               disable_onednn=True)

_LOAD_START = os.getloadavg()[0]  # before this run adds its own load

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
BACKENDS = ("torch", "jax", "tensorflow")
CONFIGS = ("arrays", "generator", "generator+loss", "over+loss")
DEFAULT_CONFIGS = ("arrays", "generator", "generator+loss")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS,
                        default=list(BACKENDS))
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs per configuration; the first is dropped")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS,
                        default=list(DEFAULT_CONFIGS),
                        help="Keras configurations (default: all but over+loss, "
                             "whose epoch is 4x longer)")
    parser.add_argument("--no-native", action="store_true",
                        help="skip the native PyTorch loop")
    parser.add_argument("--out", default=str(HERE / "results" / "overhead.md"))
    parser.add_argument("--update", action="store_true",
                        help="keep the rows of backends not run now from the "
                             "existing results JSON")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-json", default=None, help=argparse.SUPPRESS)
    return parser


def _split(args):
    from kimbalance import experiments as ex

    return ex.long_tail_split(args.dataset, ratio=args.ratio)


def _median_rate(epoch_times, samples):
    times = epoch_times[1:] or epoch_times
    return samples / float(np.median(times)), [float(t) for t in epoch_times]


def keras_worker(args):
    import keras

    from kimbalance import data as kb_data
    from kimbalance import experiments as ex
    from kimbalance import losses

    split = _split(args)
    x, y = split.x_train, split.y_train
    setups = []
    for config in args.configs:
        keras.utils.set_random_seed(0)
        model = ex.build_model("cnn", split.input_shape, split.num_classes)
        if config == "arrays":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            fit_args, fit_kwargs, samples = (x, y), {"batch_size": args.batch_size,
                                                     "shuffle": True}, len(y)
        else:
            sampler = "over" if config == "over+loss" else "instance"
            weight = "balanced" if config == "generator+loss" else None
            generator = kb_data.BalancedBatchGenerator(
                x, y, sampler=sampler, batch_size=args.batch_size,
                class_weight=weight, seed=0)
            if config == "generator":
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            elif config == "generator+loss":
                loss = losses.WeightedCategoricalCrossentropy(from_logits=True)
            else:
                loss = losses.LogitAdjustedCrossentropy(split.counts.tolist())
            fit_args, fit_kwargs = (generator,), {}
            samples = generator.epoch_size
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
        setups.append((config, model, fit_args, fit_kwargs, samples, ex.EpochTimer()))
    # Epochs run round robin over the configurations, so a load change on a
    # shared machine hits every configuration alike.
    for epoch in range(args.epochs):
        for config, model, fit_args, fit_kwargs, _, timer in setups:
            model.fit(*fit_args, initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                      callbacks=[timer], **fit_kwargs)
            print(f"{keras.backend.backend()} {config} epoch {epoch}: "
                  f"{timer.times[-1]:.1f}s", flush=True)
    rows = []
    for config, model, _, _, samples, timer in setups:
        rate, times = _median_rate(timer.times, samples)
        rows.append({"backend": keras.backend.backend(), "config": config,
                     "samples_per_epoch": samples, "samples_per_s": rate,
                     "epoch_times": times, "jit_compile": str(model.jit_compile),
                     "device": ex.backend_info()["device"]})
        print(f"{keras.backend.backend()} {config}: {rate:.0f} samples/s "
              f"(epochs {np.round(times, 2).tolist()})", flush=True)
    return rows


def native_torch_worker(args):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

    split = _split(args)
    torch.manual_seed(0)
    x = torch.from_numpy(np.moveaxis(split.x_train, -1, 1).copy())
    y = torch.from_numpy(split.y_train)
    counts = np.bincount(split.y_train)
    weights = torch.from_numpy((1.0 / counts)[split.y_train])
    sampler = WeightedRandomSampler(weights, num_samples=len(y), replacement=True,
                                    generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size,
                        sampler=sampler)
    channels, height = x.shape[1], x.shape[2]
    # As small_cnn: "valid" convolutions from 16 pixels up, "same" below.
    pad = 0 if min(x.shape[2:]) >= 16 else 1
    side = (((height - 2) // 2 - 2) // 2) if pad == 0 else height // 4
    model = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=pad), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * side * side, 128), nn.ReLU(),
        nn.Linear(128, split.num_classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    rate, times = _median_rate(times, len(y))
    print(f"native torch: {rate:.0f} samples/s (epochs {np.round(times, 2).tolist()})",
          flush=True)
    return [{"backend": "native torch", "config": "DataLoader+WeightedRandomSampler",
             "samples_per_epoch": len(y), "samples_per_s": rate, "epoch_times": times,
             "jit_compile": "eager", "device": "cpu"}]


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker:
        rows = (native_torch_worker(args) if args.worker == "native_torch"
                else keras_worker(args))
        pathlib.Path(args.worker_json).write_text(json.dumps(rows))
        return
    workers = list(args.backends) + ([] if args.no_native else ["native_torch"])
    rows = []
    passthrough = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--ratio", str(args.ratio), "--dataset", args.dataset,
                   "--configs", *args.configs]
    with tempfile.TemporaryDirectory() as tmp:
        for worker in workers:
            path = os.path.join(tmp, f"{worker}.json")
            command = [sys.executable, __file__, "--worker", worker,
                       "--worker-json", path, *passthrough]
            env = {**os.environ}
            if worker != "native_torch":
                env["KERAS_BACKEND"] = worker
            print(f"=== {worker}", flush=True)
            if subprocess.call(command, env=env) == 0:
                rows += json.loads(pathlib.Path(path).read_text())
            else:
                rows.append({"backend": worker, "config": "FAILED"})
    write_report(args, rows, argv if argv is not None else sys.argv[1:])


def write_report(args, rows, argv):
    from kimbalance._env import machine_description

    command = "python benchmarks/bench_overhead.py " + " ".join(argv)
    for row in rows:
        row.setdefault("command", command.strip())
        row.setdefault("epochs", args.epochs)
    out = pathlib.Path(args.out)
    if args.update and out.with_suffix(".json").exists():
        rerun = {r["backend"] for r in rows}
        kept = [r for r in json.loads(out.with_suffix(".json").read_text())
                if r["backend"] not in rerun]
        order = {name: i for i, name in enumerate([*BACKENDS, "native torch"])}
        rows = sorted(kept + rows, key=lambda r: order.get(r["backend"], 99))
    base = {r["backend"]: r["samples_per_s"] for r in rows if r["config"] == "arrays"}
    native = next((r["samples_per_s"] for r in rows
                   if r["backend"] == "native torch"), None)
    lines = ["| backend | configuration | jit | epochs | samples/epoch | samples/s "
             "(median) | overhead vs arrays | x native torch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "samples_per_s" not in r:
            lines.append(f"| {r['backend']} | {r['config']} | - | - | - | - | - | - |")
            continue
        rate = r["samples_per_s"]
        over = (f"{100 * (base[r['backend']] / rate - 1):+.1f}%"
                if r["backend"] in base else "-")
        ratio = f"{rate / native:.2f}" if native else "-"
        lines.append(f"| {r['backend']} | {r['config']} | {r['jit_compile']} | "
                     f"{r['epochs']} | {r['samples_per_epoch']} | {rate:.0f} | "
                     f"{over} | {ratio} |")
    commands = "\n".join(f"- `{c}`" for c in dict.fromkeys(r["command"] for r in rows))
    machine = f"{machine_description()} (shared)"
    text = f"""## overhead

Cost of kimbalance's batch generator and losses against plain `model.fit(x, y)`
on the same backend, and a native PyTorch loop (DataLoader +
WeightedRandomSampler) side by side. {args.dataset} long-tailed
(rho = {args.ratio:g}), CNN Conv32-Pool-Conv64-Pool-Dense128-Dense10,
Adam 1e-3, batch {args.batch_size}. Each configuration trains the given
epochs, round robin over the configurations of a backend; the first epoch
(tracing / compilation) is dropped, samples/s is from the median of the
rest. Overhead % is per training sample, against `arrays` on the same
backend. Machine: {machine}; 1-minute load average {_LOAD_START:.1f} at the
start, {os.getloadavg()[0]:.1f} at the end (this run's own training counts). Under
other jobs' load the same configuration varied by up to +-30% here, so only
differences well beyond the spread between repeated runs mean anything.

Commands (rows from each):
{commands}

{chr(10).join(lines)}
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    (out.with_suffix(".json")).write_text(json.dumps(rows, indent=2))
    print(text)


if __name__ == "__main__":
    main()
