"""Forward + gradient time of every kimbalance loss against Keras' own losses.

For each backend (each in its own subprocess, since the Keras backend is fixed
per process) this times one loss value plus its gradient with respect to the
logits on (4096, 1000) float32 logits, compiled the way the backend compiles a
train step:

- jax: `jax.jit(jax.value_and_grad(...))`;
- tensorflow: `tf.function(jit_compile=True)` around a `GradientTape`;
- torch: eager (`torch.compile` takes minutes per loss on this CPU, so the
  torch column is op-by-op execution, as `model.fit` runs by default there).

Repeats are interleaved (every loss once per round) so that load from other
processes hits all losses alike; the table reports medians and each loss's
time relative to `keras.losses.CategoricalCrossentropy(from_logits=True)` on
the same backend. Writes `benchmarks/results/losses.md`.

    python benchmarks/bench_losses.py                  # all three backends
    python benchmarks/bench_losses.py --backends jax --repeats 10
    python benchmarks/bench_losses.py --backend torch  # one worker (prints JSON)
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kimbalance._env import (  # noqa: E402  (workers get KERAS_BACKEND first)
    devices,
    machine_description,
    package_versions,
)

RESULT = HERE / "results" / "losses.md"
BACKENDS = ("torch", "jax", "tensorflow")
BASELINE = "keras CategoricalCrossentropy"
FOCAL_BASELINE = "keras CategoricalFocalCrossentropy"
# (row name, label form) in table order; the factories live in `_factories`.
ROWS = [
    (BASELINE, "one-hot"),
    (FOCAL_BASELINE, "one-hot"),
    ("keras SparseCategoricalCrossentropy", "ids"),
    ("keras BinaryCrossentropy", "multi-hot"),
    ("keras BinaryFocalCrossentropy", "multi-hot"),
    ("WeightedCategoricalCrossentropy", "one-hot"),
    ("WeightedCategoricalCrossentropy", "ids"),
    ("FocalCrossentropy", "one-hot"),
    ("FocalCrossentropy", "ids"),
    ("LogitAdjustedCrossentropy", "one-hot"),
    ("LogitAdjustedCrossentropy", "ids"),
    ("WeightedBinaryCrossentropy", "multi-hot"),
    ("SigmoidFocalCrossentropy", "multi-hot"),
    ("LDAMLoss", "ids"),
    ("CDTLoss", "ids"),
    ("AsymmetricLoss", "multi-hot"),
    ("DistributionBalancedLoss", "multi-hot"),
    # Peers a user would otherwise call (torch only; optax when importable).
    ("torch F.cross_entropy(weight=)", "ids"),
    ("torch F.binary_cross_entropy_with_logits(pos_weight=)", "multi-hot"),
    ("torchvision sigmoid_focal_loss formula", "multi-hot"),
    ("optax softmax_cross_entropy", "one-hot"),
    ("optax sigmoid_focal_loss", "multi-hot"),
]
# Each peer row and the kimbalance row that computes the same thing.
PEERS = {
    "WeightedCategoricalCrossentropy [ids]": "torch F.cross_entropy(weight=) [ids]",
    "WeightedBinaryCrossentropy [multi-hot]":
        "torch F.binary_cross_entropy_with_logits(pos_weight=) [multi-hot]",
    "SigmoidFocalCrossentropy [multi-hot]":
        "torchvision sigmoid_focal_loss formula [multi-hot]",
    "FocalCrossentropy [one-hot]": FOCAL_BASELINE + " [one-hot]",
}
TARGET = 1.2  # x Keras CE, every loss; class-id paths <= 1.0x.


def _counts(num_classes, n_max=1000, ratio=100.0):
    """Long-tailed per-class counts, as the LDAM / CB papers build them."""
    return [max(1, int(n_max * ratio ** (-i / (num_classes - 1))))
            for i in range(num_classes)]


def _factories(num_classes):
    """name -> zero-argument constructor (None if the loss does not exist)."""
    import keras
    import numpy as np

    from kimbalance import losses

    counts = _counts(num_classes)
    weights = (np.sum(counts) / (num_classes * np.asarray(counts))).tolist()
    label_counts = [max(1, c // 10) for c in counts]

    def ours(name, **kwargs):
        cls = getattr(losses, name, None)
        return None if cls is None else (lambda: cls(**kwargs))

    peers = _peer_factories(weights)
    return {
        **peers,
        BASELINE: lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
        FOCAL_BASELINE: lambda: keras.losses.CategoricalFocalCrossentropy(
            from_logits=True),
        "keras SparseCategoricalCrossentropy": lambda: (
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        "keras BinaryCrossentropy": lambda: keras.losses.BinaryCrossentropy(
            from_logits=True),
        # torchvision's alpha_t weighting, like SigmoidFocalCrossentropy's.
        "keras BinaryFocalCrossentropy": lambda: keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=0.25, gamma=2.0, from_logits=True),
        "WeightedCategoricalCrossentropy": ours(
            "WeightedCategoricalCrossentropy", class_weight=weights, from_logits=True),
        # alpha=0.25 and gamma=2 are Keras' defaults: the same computation.
        "FocalCrossentropy": ours("FocalCrossentropy", gamma=2.0, alpha=0.25,
                                  from_logits=True),
        "LogitAdjustedCrossentropy": ours("LogitAdjustedCrossentropy",
                                          class_priors=counts),
        "WeightedBinaryCrossentropy": ours(
            "WeightedBinaryCrossentropy", pos_weight=weights, from_logits=True),
        "SigmoidFocalCrossentropy": ours("SigmoidFocalCrossentropy",
                                         from_logits=True),
        "LDAMLoss": ours("LDAMLoss", class_counts=counts),
        "CDTLoss": ours("CDTLoss", class_counts=counts),
        "AsymmetricLoss": ours("AsymmetricLoss"),
        "DistributionBalancedLoss": ours(
            "DistributionBalancedLoss", label_counts=label_counts,
            num_samples=int(np.sum(label_counts)) * 4),
    }


def _peer_factories(weights):
    """Peer losses of the current backend: name -> constructor of f(y, z).

    torchvision is not needed: its `sigmoid_focal_loss` is five lines of torch
    (torchvision/ops/focal_loss.py), written out here with its defaults
    (alpha=0.25, gamma=2, mean reduction).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch
        import torch.nn.functional as F  # noqa: N812

        def cross_entropy():
            weight = torch.tensor(weights, dtype=torch.float32)
            return lambda y, z: F.cross_entropy(z, y.long(), weight=weight)

        def bce():
            pos_weight = torch.tensor(weights, dtype=torch.float32)
            return lambda y, z: F.binary_cross_entropy_with_logits(
                z, y, pos_weight=pos_weight)

        def sigmoid_focal():
            def loss(y, z, alpha=0.25, gamma=2.0):
                p = torch.sigmoid(z)
                ce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
                p_t = p * y + (1 - p) * (1 - y)
                value = ce * ((1 - p_t) ** gamma)
                value = (alpha * y + (1 - alpha) * (1 - y)) * value
                return value.mean()
            return loss

        return {"torch F.cross_entropy(weight=)": cross_entropy,
                "torch F.binary_cross_entropy_with_logits(pos_weight=)": bce,
                "torchvision sigmoid_focal_loss formula": sigmoid_focal}
    if backend == "jax":
        try:
            import optax
        except ImportError:
            return {}
        return {
            "optax softmax_cross_entropy": lambda: (
                lambda y, z: optax.softmax_cross_entropy(z, y).mean()),
            "optax sigmoid_focal_loss": lambda: (
                lambda y, z: optax.sigmoid_focal_loss(z, y, alpha=0.25,
                                                      gamma=2.0).mean()),
        }
    return {}


def _step_builder(backend):
    """Returns make(loss, y, z) -> a zero-argument function running one step."""
    if backend == "jax":
        import jax

        def make(loss, y, z):
            step = jax.jit(jax.value_and_grad(lambda logits, labels: loss(labels,
                                                                           logits)))
            return lambda: jax.block_until_ready(step(z, y))
        return make
    if backend == "tensorflow":
        import tensorflow as tf

        def make(loss, y, z):
            @tf.function(jit_compile=True)
            def step(logits, labels):
                with tf.GradientTape() as tape:
                    tape.watch(logits)
                    value = loss(labels, logits)
                return value, tape.gradient(value, logits)

            def run():
                value, grad = step(z, y)
                value.numpy()
                return grad
            return run
        return make
    import torch

    def make(loss, y, z):
        def run():
            logits = z.detach().requires_grad_(True)
            value = loss(y, logits)
            (grad,) = torch.autograd.grad(value, logits)
            if grad.is_cuda:
                torch.cuda.synchronize()
            return grad
        return run
    return make


def worker(args):
    """Times every row on the current backend; prints one JSON line."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    n, c = args.batch, args.classes
    logits = (rng.normal(size=(n, c)) * 2.0).astype("float32")
    ids = rng.integers(0, c, size=n)
    labels = {
        "ids": ids.astype("int32"),
        "one-hot": np.eye(c, dtype="float32")[ids],
        "multi-hot": (rng.random((n, c)) < 0.01).astype("float32"),
    }
    z = keras.ops.convert_to_tensor(logits)
    tensors = {k: keras.ops.convert_to_tensor(v) for k, v in labels.items()}
    make = _step_builder(backend)
    factories = _factories(c)
    steps, notes = {}, {}
    for name, form in ROWS:
        key = f"{name} [{form}]"
        factory = factories.get(name)
        if factory is None:
            if not name.startswith(("torch", "optax")):
                notes[key] = "not in kimbalance.losses"
            elif name.startswith("optax") and backend == "jax":
                notes[key] = "optax is not installed"
            continue
        try:
            step = make(factory(), tensors[form], z)
            for _ in range(args.warmup):
                step()
        except Exception as error:  # report, keep benchmarking the others
            notes[key] = f"failed: {type(error).__name__}: {str(error)[:120]}"
            continue
        steps[key] = step
    times = {key: [] for key in steps}
    for _ in range(args.repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    medians = {key: statistics.median(values) * 1e3 for key, values in times.items()}
    print(json.dumps({"backend": backend, "median_ms": medians, "notes": notes,
                      "device": ", ".join(devices(backend))}))


def _versions_line():
    return ", ".join(f"{name} {version or '(not installed)'}"
                     for name, version in package_versions().items())


def _cell(result, key, baseline_key):
    if result is None:
        return "n/a"
    ms = result["median_ms"].get(key)
    if ms is None:
        return "skipped"
    base = result["median_ms"].get(baseline_key)
    ratio = f" ({ms / base:.2f}x)" if base else ""
    return f"{ms:.1f}{ratio}"


def write_table(results, args, command, machine):
    keys = [f"{name} [{form}]" for name, form in ROWS]
    base_key = f"{BASELINE} [one-hot]"
    header = "| loss [labels] | " + " | ".join(
        f"{b} ms (x Keras CE)" for b in BACKENDS) + " |"
    lines = [
        "## losses",
        "",
        f"Forward + gradient (w.r.t. the logits) of one loss value on "
        f"({args.batch}, {args.classes}) float32 logits: median of {args.repeats} "
        f"interleaved repeats after {args.warmup} warm-up calls; in parentheses the "
        f"time relative to `keras.losses.CategoricalCrossentropy(from_logits=True)` "
        f"on the same backend. jax: `jax.jit(jax.value_and_grad(...))`; tensorflow: "
        f"`tf.function(jit_compile=True)` + `GradientTape`; torch: eager "
        f"(`torch.compile` is too slow to compile here; eager is what `model.fit` "
        f"runs on torch by default).",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        "- Devices: " + ", ".join(
            f"{b}: {results[b]['device']}" for b in BACKENDS if results.get(b)),
        f"- Versions: {_versions_line()}",
        f"- Date: {datetime.date.today().isoformat()}",
        "",
        header,
        "|" + "---|" * (len(BACKENDS) + 1),
    ]
    for key in keys:
        cells = [_cell(results.get(b), key, base_key) for b in BACKENDS]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Labels: `[one-hot]` rows get the same one-hot labels as Keras' "
        "CategoricalCrossentropy; `[ids]` rows the same labels as int class ids "
        "(our losses gather the label's log-probability instead of a dense "
        f"product); `[multi-hot]` rows {args.classes} independent labels with ~1% "
        "positives. "
        "The binary / multi-label losses evaluate a sigmoid per logit, so the "
        "`keras BinaryCrossentropy` / `BinaryFocalCrossentropy` rows are their "
        "like-for-like references. Other "
        "processes shared the machine: the same computation varies by up to ~30% "
        "between runs, so read ratios within ~0.3 of a target as ties. "
        "Fused (closed-form gradient, `kimbalance/losses/_fused.py`): the one-hot "
        "rows of Weighted / LogitAdjusted / FocalCrossentropy, WeightedBinary and "
        "SigmoidFocalCrossentropy, LDAMLoss, CDTLoss, AsymmetricLoss (stop-gradient "
        "focusing), DistributionBalancedLoss. On torch the softmax "
        "cross-entropy family keeps autodiff. Peak memory and the bandwidth floor "
        "are not "
        "measured yet.",
        "",
        f"Targets (issue #13): every kimbalance loss within {TARGET}x of Keras CE "
        "on every backend, class-id paths within 1.0x, and no kimbalance loss "
        "slower than the peer that computes the same thing (Keras focal for "
        "FocalCrossentropy; on torch F.cross_entropy(weight=), "
        "F.binary_cross_entropy_with_logits(pos_weight=) and torchvision's sigmoid "
        "focal formula). Peer rows are empty on backends without that peer.",
        f"- 1-minute load average at the end: {os.getloadavg()[0]:.1f}",
    ]
    for backend in BACKENDS:
        result = results.get(backend)
        if not result:
            reason = args.failures.get(backend, "not requested with --backends")
            lines.append(f"- {backend}: no result ({reason})")
            continue
        ms = result["median_ms"]
        ours = [k for k in keys if not k.startswith(("keras", "torch", "optax"))
                and k in ms]
        met = [k for k in ours
               if ms[k] <= (1.0 if k.endswith("[ids]") else TARGET) * ms[base_key]]
        missed = [f"{k} {ms[k] / ms[base_key]:.2f}x" for k in ours if k not in met]
        peers = [f"{k} {ms[k] / ms[PEERS[k]]:.2f}x of {PEERS[k]}"
                 for k in ours if PEERS.get(k) in ms]
        lines.append(f"- {backend}: met {len(met)} of {len(ours)}; over target: "
                     f"{'; '.join(missed) if missed else 'none'}. Against peers: "
                     f"{'; '.join(peers) if peers else 'none here'}.")
        for key, note in result["notes"].items():
            lines.append(f"  - {key}: {note}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=BACKENDS,
                        help="worker mode: time this backend, print JSON")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS,
                        default=list(BACKENDS))
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if args.backend:
        worker(args)
        return
    command = "python benchmarks/bench_losses.py " + " ".join(sys.argv[1:])
    load = os.getloadavg()[0]
    machine = f"{machine_description()}; 1-minute load average at start {load:.1f}"
    results, args.failures = {}, {}
    for backend in args.backends:
        print(f"--- {backend}", flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run(
            [sys.executable, __file__, "--backend", backend, "--batch",
             str(args.batch), "--classes", str(args.classes), "--repeats",
             str(args.repeats), "--warmup", str(args.warmup)],
            env=env, capture_output=True, text=True, cwd=HERE.parent)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            args.failures[backend] = f"exit {proc.returncode}: {proc.stderr[-500:]}"
            print(args.failures[backend], file=sys.stderr)
            continue
        results[backend] = json.loads(lines[-1])
    print(write_table(results, args, command.strip(), machine))
    if args.failures:
        sys.exit(f"failed backends: {sorted(args.failures)}")


if __name__ == "__main__":
    main()
