"""Batch generator throughput: one over-sampled epoch of Fashion-MNIST-LT.

Side by side, in one process, on the same in-memory float32 images, batch 256:

- floor: a plain NumPy fancy-index gather of the very batches kimbalance yields
  (`x[idx]`, `y[idx]`), the cost of the data movement alone;
- kimbalance: `BalancedBatchGenerator(sampler="over")`, each repeat a fresh
  epoch (so the epoch's resampling is inside the timing);
- imblearn: `imblearn.keras.BalancedBatchGenerator(sampler=RandomOverSampler())`
  (it resamples once, in its constructor: reported as setup, not timed per
  epoch);
- torch: `DataLoader` + `WeightedRandomSampler` (weights 1/n_c, as many
  samples as the over-sampled epoch), over a `TensorDataset` and over the usual
  per-sample `Dataset` returning `(torch.from_numpy(x[i]), y[i])`; no workers.

Reports samples/s (median over repeats; methods interleaved in every repeat so
they share the machine's load) and the ratio to the floor, and writes
`benchmarks/results/generator.md`.

    python benchmarks/bench_generator.py            # 9 repeats
    python benchmarks/bench_generator.py --repeats 3 --no-write
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # imblearn.keras needs it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402  (before tensorflow, which imblearn.keras imports)

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kimbalance._env import machine_description  # noqa: E402
from kimbalance.data import (  # noqa: E402
    BalancedBatchGenerator,
    load_dataset,
    make_imbalanced,
)


def load_fashion_mnist_lt(ratio):
    data = load_dataset("fashion_mnist")
    x, y = make_imbalanced(data.x_train, data.y_train, profile="long_tail",
                           ratio=ratio, seed=0)
    x = x.reshape(len(x), 28, 28).astype(np.float32) / 255.0
    return np.ascontiguousarray(x), y.astype(np.int64)


class PerSampleDataset(torch.utils.data.Dataset):
    """The usual per-sample torch Dataset over NumPy arrays."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), int(self.y[i])


def build_methods(x, y, batch_size):
    """Returns {name: (setup seconds, run(repeat) -> samples)}."""
    methods = {}

    start = time.perf_counter()
    generator = BalancedBatchGenerator(x, y, sampler="over", batch_size=batch_size,
                                       seed=0)
    kimbalance_setup = time.perf_counter() - start

    def floor(repeat):
        indices = generator.sampler.indices(1000 + repeat)  # untimed below
        return indices

    def run_floor(indices):
        total = 0
        for begin in range(0, len(indices), batch_size):
            batch = indices[begin:begin + batch_size]
            x[batch]
            total += len(y[batch])
        return total

    methods["floor: NumPy gather of the same batches"] = (0.0, run_floor, floor)

    def run_kimbalance(repeat):
        generator.set_epoch(repeat)  # a fresh epoch: resampling is timed
        total = 0
        for i in range(len(generator)):
            total += len(generator[i][1])
        return total

    methods["kimbalance BalancedBatchGenerator"] = (kimbalance_setup,
                                                    run_kimbalance, None)

    try:
        from imblearn.keras import BalancedBatchGenerator as ImblearnGenerator
        from imblearn.over_sampling import RandomOverSampler
    except ImportError as error:  # pragma: no cover - reported in the table
        print(f"imblearn.keras unavailable: {error}", file=sys.stderr)
    else:
        start = time.perf_counter()
        imblearn_generator = ImblearnGenerator(
            x.reshape(len(x), -1), y, sampler=RandomOverSampler(random_state=0),
            batch_size=batch_size, random_state=0)
        imblearn_setup = time.perf_counter() - start

        def run_imblearn(repeat):
            total = 0
            for i in range(len(imblearn_generator)):
                total += len(imblearn_generator[i][1])
            return total

        methods["imblearn.keras BalancedBatchGenerator"] = (imblearn_setup,
                                                            run_imblearn, None)

    counts = np.bincount(y)
    epoch_size = len(generator.sampler)
    weights = torch.as_tensor(1.0 / counts[y], dtype=torch.double)

    def torch_loader(dataset, repeat):
        sampler = torch.utils.data.WeightedRandomSampler(
            weights, num_samples=epoch_size, replacement=True,
            generator=torch.Generator().manual_seed(repeat))
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                           sampler=sampler)

    tensor_dataset = torch.utils.data.TensorDataset(torch.from_numpy(x),
                                                    torch.from_numpy(y))
    per_sample = PerSampleDataset(x, y)

    def run_torch(dataset):
        def run(repeat):
            total = 0
            for _, yb in torch_loader(dataset, repeat):
                total += len(yb)
            return total
        return run

    methods["torch DataLoader + WeightedRandomSampler (TensorDataset)"] = (
        0.0, run_torch(tensor_dataset), None)
    methods["torch DataLoader + WeightedRandomSampler (per-sample Dataset)"] = (
        0.0, run_torch(per_sample), None)
    return methods


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ratio", type=float, default=100.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    x, y = load_fashion_mnist_lt(args.ratio)
    counts = np.bincount(y)
    load_before = os.getloadavg()
    methods = build_methods(x, y, args.batch_size)
    names = list(methods)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    samples = {}
    for repeat in range(-1, args.repeats):  # repeat -1 warms up, untimed
        print("warm-up" if repeat < 0 else f"repeat {repeat + 1}/{args.repeats}",
              f"({len(names)} generators)", flush=True)
        shift = max(repeat, 0) % len(names)  # rotate the order between repeats
        for name in names[shift:] + names[:shift]:
            _, run, prepare = methods[name]
            argument = prepare(repeat + 1) if prepare else repeat + 1
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            produced = run(argument)
            elapsed_wall = time.perf_counter() - start_wall
            elapsed_cpu = time.process_time() - start_cpu
            if repeat >= 0:
                wall[name].append(elapsed_wall)
                cpu[name].append(elapsed_cpu)
                samples[name] = produced
    load_after = os.getloadavg()

    floor = names[0]
    wall_rate = {n: samples[n] / statistics.median(wall[n]) for n in names}
    cpu_rate = {n: samples[n] / statistics.median(cpu[n]) for n in names}
    rows = []
    for name in names:
        spread = [samples[name] / t for t in wall[name]]
        rows.append(
            f"| {name} | {samples[name]} | {wall_rate[name] / 1e6:.3f}M "
            f"({min(spread) / 1e6:.2f}-{max(spread) / 1e6:.2f}) | "
            f"{wall_rate[name] / wall_rate[floor]:.2f}x | "
            f"{cpu_rate[name] / 1e6:.3f}M | {cpu_rate[name] / cpu_rate[floor]:.2f}x | "
            f"{methods[name][0] * 1e3:.0f} ms |")
    command = ("python benchmarks/bench_generator.py"
               + (f" --repeats {args.repeats}" if args.repeats != 9 else "")
               + (f" --batch-size {args.batch_size}" if args.batch_size != 256 else "")
               + (f" --ratio {args.ratio:g}" if args.ratio != 100 else ""))
    text = "\n".join([
        "## generator",
        "",
        f"Throughput of one over-sampled epoch of Fashion-MNIST-LT (rho="
        f"{args.ratio:g}: {len(y)} training images, class counts "
        f"{counts.tolist()}, from the real IDX files; 28x28 uint8 -> float32 in "
        f"memory), batch {args.batch_size}, one process, no workers. "
        f"Over-sampling tops every class up to {int(counts.max())}: "
        f"{len(counts) * int(counts.max())} samples per epoch. Samples/s is the "
        f"median of {args.repeats} repeats (range in brackets), by wall clock and "
        "by the process's CPU time (steadier on a loaded machine); the methods "
        "are interleaved within each repeat, in an order rotated between "
        "repeats, so they share the machine's load. "
        "Setup is the constructor's time (imblearn resamples there, once; "
        "kimbalance resamples every epoch, inside the timed loop).",
        "",
        "| method | samples/epoch | samples/s (wall) | vs floor | "
        "samples/s (CPU time) | vs floor | setup |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The floor gathers exactly kimbalance's batches with `x[idx]`, `y[idx]`. "
        "imblearn drops the last incomplete batch; torch draws classes "
        "i.i.d. with replacement (`WeightedRandomSampler`, weights 1/n_c).",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine_description()}. Load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (a shared "
        "machine: absolute numbers move with its load, ratios much less).",
        "",
    ])
    print(text)
    if not args.no_write:
        out = HERE / "results" / "generator.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
