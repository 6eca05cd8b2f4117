"""Forward + gradient time and peak memory of every kimbalance loss and its peers.

For each backend (each in its own subprocess, since the Keras backend is fixed
per process) this times one loss value plus its gradient with respect to the
logits, at (4096, 1000) and (256, 32000) float32 logits by default, compiled
the way the backend compiles a train step:

- jax: `jax.jit(jax.value_and_grad(...))`;
- tensorflow: `tf.function(jit_compile=True)` around a `GradientTape`;
- torch: eager (`torch.compile` takes minutes per loss on this CPU, so the
  torch column is op-by-op execution, as `model.fit` runs by default there).

Repeats are interleaved (every row once per round) so that load from other
processes hits all rows alike; the table reports medians and each row's time
relative to `keras.losses.CategoricalCrossentropy(from_logits=True)` on the
same backend and shape. `[..., probs]` rows take probabilities: the step
applies the softmax (sigmoid for multi-label rows) to the logits and the loss
gets `from_logits=False`, as behind a model's softmax head.

Peak memory: torch, the largest amount of memory the step allocated above
what existed before it (`torch.profiler` with `profile_memory=True`, the
running sum of its allocation events); jax, the compiled step's temporary +
output buffers (`jax.jit(f).lower(...).compile().memory_analysis()`);
tensorflow: not available on CPU (see the table notes). The bandwidth floor
is the time to read the logits and labels and write the gradient once at the
copy bandwidth measured with `np.copyto` in the same run.

Each backend's results go to `benchmarks/results/losses.json` (a run of one
backend replaces only that backend's entry), and `benchmarks/results/losses.md`
is rebuilt from all entries.

    python benchmarks/bench_losses.py                       # all three backends
    python benchmarks/bench_losses.py --backends torch --repeats 9
    python benchmarks/bench_losses.py --quick               # smoke run, writes nothing
    python benchmarks/bench_losses.py --backend torch       # worker: prints JSON
"""

import argparse
import collections
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kimbalance._env import (  # noqa: E402  (workers get KERAS_BACKEND first)
    devices,
    machine_description,
    package_versions,
)

RESULT = HERE / "results" / "losses.md"
RAW = HERE / "results" / "losses.json"
BACKENDS = ("torch", "jax", "tensorflow")
SHAPES = ((4096, 1000), (256, 32000))
QUICK_SHAPES = ((64, 100),)
BASELINE = "keras CategoricalCrossentropy [one-hot]"
TARGET = 1.2  # x Keras CE, every loss; class-id paths <= 1.0x.
# (row name, labels) in table order; `labels` is the label form, with
# ", probs" for rows that take probabilities. The factories are in `_factories`.
ROWS = [
    ("keras CategoricalCrossentropy", "one-hot"),
    ("keras CategoricalCrossentropy", "one-hot, probs"),
    ("keras SparseCategoricalCrossentropy", "ids"),
    ("keras CategoricalFocalCrossentropy", "one-hot"),
    ("keras BinaryCrossentropy", "multi-hot"),
    ("keras BinaryCrossentropy", "multi-hot, probs"),
    ("keras BinaryFocalCrossentropy", "multi-hot"),
    ("WeightedCategoricalCrossentropy", "one-hot"),
    ("WeightedCategoricalCrossentropy", "ids"),
    ("WeightedCategoricalCrossentropy", "one-hot, probs"),
    ("FocalCrossentropy", "one-hot"),
    ("FocalCrossentropy", "ids"),
    ("FocalCrossentropy", "one-hot, probs"),
    ("LogitAdjustedCrossentropy", "one-hot"),
    ("LogitAdjustedCrossentropy", "ids"),
    ("LDAMLoss", "ids"),
    ("CDTLoss", "ids"),
    ("WeightedBinaryCrossentropy", "multi-hot"),
    ("WeightedBinaryCrossentropy", "multi-hot, probs"),
    ("SigmoidFocalCrossentropy", "multi-hot"),
    ("SigmoidFocalCrossentropy", "multi-hot, probs"),
    ("AsymmetricLoss", "multi-hot"),
    ("DistributionBalancedLoss", "multi-hot"),
    # Peers a user would otherwise call (torch on torch, optax on jax).
    ("torch F.cross_entropy", "ids"),
    ("torch F.cross_entropy(weight=)", "ids"),
    ("torch F.binary_cross_entropy_with_logits(pos_weight=)", "multi-hot"),
    ("torchvision sigmoid_focal_loss formula", "multi-hot"),
    ("optax softmax_cross_entropy", "one-hot"),
    ("optax softmax_cross_entropy_with_integer_labels", "ids"),
    ("optax sigmoid_binary_cross_entropy", "multi-hot"),
    ("optax sigmoid_focal_loss", "multi-hot"),
]
PEER_PREFIXES = ("keras", "torch", "optax")
# Each kimbalance row and the peers that compute the same thing.
PEERS = {
    "WeightedCategoricalCrossentropy [ids]": ["torch F.cross_entropy(weight=) [ids]"],
    "FocalCrossentropy [one-hot]": ["keras CategoricalFocalCrossentropy [one-hot]"],
    "WeightedBinaryCrossentropy [multi-hot]": [
        "torch F.binary_cross_entropy_with_logits(pos_weight=) [multi-hot]"],
    "SigmoidFocalCrossentropy [multi-hot]": [
        "keras BinaryFocalCrossentropy [multi-hot]",
        "torchvision sigmoid_focal_loss formula [multi-hot]",
        "optax sigmoid_focal_loss [multi-hot]"],
}


# Why the targets are missed where they are (profiled with torch.profiler on
# torch eager; XLA fuses the same passes on jax and tensorflow).
REASONS = {
    "torch eager, dense-label losses": (
        "eager torch runs one kernel per `keras.ops` call and allocates a fresh "
        "(N, C) tensor for each, so time grows with the number of elementwise "
        "passes. `torch.profiler` of Keras CE's step: 4 (N, C) kernels "
        "(log-softmax, product, their backward); of ASL's fused step before the "
        "pass trimming: ~35 (log-sigmoid, sigmoid, clamps, two `where`s per "
        "floor, the focusing powers, products). The closed-form gradients of the "
        "focusing losses need the probabilities, the log-probabilities, the "
        "focal factor and its slope: 10-30 passes however arranged. Fusing them "
        "takes a compiler (`torch.compile`, XLA on jax / tensorflow) or a "
        "hand-written torch kernel, neither within `keras.ops`."),
    "jax / tensorflow, focusing losses": (
        "XLA fuses the passes into a few loops, but the focusing losses "
        "evaluate several transcendentals per element (softmax and "
        "log-softmax, or sigmoid and log-sigmoid; for ASL and DB also a log, an "
        "exp / expm1 and powers) against CE's one exp per element (not "
        "profiled further here)."),
    "class ids (`[ids]`, <= 1.0x)": (
        "a log-softmax and a gather (scatter in the backward): the same passes "
        "as Keras' sparse CE; LDAM adds the logit scale and the label-column "
        "margin (2 passes more), CDT the per-class temperatures (1 pass more), "
        "so they sit at ~1.0-1.8x."),
    "`[..., probs]` rows": (
        "from probabilities the loss differentiates through the softmax / "
        "sigmoid, the renormalisation and the clipped log as Keras does, so the "
        "reference for them is `keras CategoricalCrossentropy [one-hot, probs]` "
        "/ `keras BinaryCrossentropy [multi-hot, probs]`."),
}


def row_key(name, labels):
    return f"{name} [{labels}]"


def _counts(num_classes, n_max=1000, ratio=100.0):
    """Long-tailed per-class counts, as the LDAM / CB papers build them."""
    return [max(1, int(n_max * ratio ** (-i / (num_classes - 1))))
            for i in range(num_classes)]


def _factories(num_classes):
    """row key -> zero-argument constructor of a loss `f(y_true, y_pred)`."""
    import keras
    import numpy as np

    from kimbalance import losses

    counts = _counts(num_classes)
    weights = (np.sum(counts) / (num_classes * np.asarray(counts))).tolist()
    label_counts = [max(1, c // 10) for c in counts]
    k = keras.losses

    def make(cls, **kwargs):
        return lambda: cls(**kwargs)

    rows = {
        "keras CategoricalCrossentropy [one-hot]": make(
            k.CategoricalCrossentropy, from_logits=True),
        "keras CategoricalCrossentropy [one-hot, probs]": make(
            k.CategoricalCrossentropy),
        "keras SparseCategoricalCrossentropy [ids]": make(
            k.SparseCategoricalCrossentropy, from_logits=True),
        "keras CategoricalFocalCrossentropy [one-hot]": make(
            k.CategoricalFocalCrossentropy, from_logits=True),
        "keras BinaryCrossentropy [multi-hot]": make(k.BinaryCrossentropy,
                                                     from_logits=True),
        "keras BinaryCrossentropy [multi-hot, probs]": make(k.BinaryCrossentropy),
        # torchvision's alpha_t weighting, like SigmoidFocalCrossentropy's.
        "keras BinaryFocalCrossentropy [multi-hot]": make(
            k.BinaryFocalCrossentropy, apply_class_balancing=True, alpha=0.25,
            gamma=2.0, from_logits=True),
    }
    for labels in ("one-hot", "ids", "one-hot, probs"):
        logits = "probs" not in labels
        rows[row_key("WeightedCategoricalCrossentropy", labels)] = make(
            losses.WeightedCategoricalCrossentropy, class_weight=weights,
            from_logits=logits)
        # alpha=0.25 and gamma=2 are Keras' defaults: the same computation.
        rows[row_key("FocalCrossentropy", labels)] = make(
            losses.FocalCrossentropy, gamma=2.0, alpha=0.25, from_logits=logits)
    for labels in ("one-hot", "ids"):
        rows[row_key("LogitAdjustedCrossentropy", labels)] = make(
            losses.LogitAdjustedCrossentropy, class_priors=counts)
    rows["LDAMLoss [ids]"] = make(losses.LDAMLoss, class_counts=counts)
    rows["CDTLoss [ids]"] = make(losses.CDTLoss, class_counts=counts)
    for labels in ("multi-hot", "multi-hot, probs"):
        logits = "probs" not in labels
        rows[row_key("WeightedBinaryCrossentropy", labels)] = make(
            losses.WeightedBinaryCrossentropy, pos_weight=weights,
            from_logits=logits)
        rows[row_key("SigmoidFocalCrossentropy", labels)] = make(
            losses.SigmoidFocalCrossentropy, from_logits=logits)
    rows["AsymmetricLoss [multi-hot]"] = make(losses.AsymmetricLoss)
    rows["DistributionBalancedLoss [multi-hot]"] = make(
        losses.DistributionBalancedLoss, label_counts=label_counts,
        num_samples=int(np.sum(label_counts)) * 4)
    rows.update(_peer_factories(weights))
    return rows


def _peer_factories(weights):
    """Peer losses of the current backend: row key -> constructor of f(y, z).

    torchvision is not needed: its `sigmoid_focal_loss` is five lines of torch
    (torchvision/ops/focal_loss.py), written out here with its defaults
    (alpha=0.25, gamma=2, mean reduction).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch
        import torch.nn.functional as F  # noqa: N812

        def cross_entropy(weighted):
            weight = torch.tensor(weights, dtype=torch.float32) if weighted else None
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

        return {
            "torch F.cross_entropy [ids]": lambda: cross_entropy(False),
            "torch F.cross_entropy(weight=) [ids]": lambda: cross_entropy(True),
            "torch F.binary_cross_entropy_with_logits(pos_weight=) [multi-hot]": bce,
            "torchvision sigmoid_focal_loss formula [multi-hot]": sigmoid_focal,
        }
    if backend == "jax":
        try:
            import optax
        except ImportError:
            return {}
        return {
            "optax softmax_cross_entropy [one-hot]": lambda: (
                lambda y, z: optax.softmax_cross_entropy(z, y).mean()),
            "optax softmax_cross_entropy_with_integer_labels [ids]": lambda: (
                lambda y, z: optax.softmax_cross_entropy_with_integer_labels(
                    z, y).mean()),
            "optax sigmoid_binary_cross_entropy [multi-hot]": lambda: (
                lambda y, z: optax.sigmoid_binary_cross_entropy(z, y).mean()),
            "optax sigmoid_focal_loss [multi-hot]": lambda: (
                lambda y, z: optax.sigmoid_focal_loss(z, y, alpha=0.25,
                                                      gamma=2.0).mean()),
        }
    return {}


def _activation(labels):
    """The activation a `[..., probs]` row applies to the logits, else None."""
    from keras import ops

    if "probs" not in labels:
        return None
    return ops.sigmoid if labels.startswith("multi-hot") else ops.softmax


def _torch_peak_bytes(run):
    """Largest memory allocated by `run()` above what existed before it."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    sizes = []

    def walk(node):
        if node.tag == _EventType.Allocation:
            sizes.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    total = peak = 0
    for _, size in sorted(sizes):
        total += size
        peak = max(peak, total)
    return peak


def _step_builder(backend):
    """Returns make(loss, y, z, act) -> (run, peak bytes or None)."""
    if backend == "jax":
        import jax

        def make(loss, y, z, act):
            def value(logits, labels):
                return loss(labels, logits if act is None else act(logits))

            jitted = jax.jit(jax.value_and_grad(value))
            compiled = jitted.lower(z, y).compile()
            try:
                stats = compiled.memory_analysis()
                peak = stats.temp_size_in_bytes + stats.output_size_in_bytes
            except Exception:  # not every jax build exposes it
                peak = None
            return (lambda: jax.block_until_ready(compiled(z, y))), peak
        return make
    if backend == "tensorflow":
        import tensorflow as tf

        def make(loss, y, z, act):
            @tf.function(jit_compile=True)
            def step(logits, labels):
                with tf.GradientTape() as tape:
                    tape.watch(logits)
                    value = loss(labels, logits if act is None else act(logits))
                return value, tape.gradient(value, logits)

            def run():
                value, grad = step(z, y)
                value.numpy()
                return grad
            return run, None
        return make
    import torch

    def make(loss, y, z, act):
        def run():
            logits = z.detach().requires_grad_(True)
            value = loss(y, logits if act is None else act(logits))
            (grad,) = torch.autograd.grad(value, logits)
            return grad
        return run, "torch"
    return make


def copy_bandwidth(megabytes=256, repeats=5):
    """Bytes read + written per second by `np.copyto` of a large float32 array."""
    import numpy as np

    src = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * src.nbytes / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def floor_bytes(labels, batch, classes):
    """Bytes the loss + gradient must move at least: logits, labels, gradient."""
    dense = batch * classes * 4
    return 2 * dense + (batch * 4 if labels == "ids" else dense)


def measure(shapes, repeats, warmup, rows=None, memory=True, bandwidth_mb=256,
            max_seconds=None):
    """Times every row (or the `rows` keys) on the current backend.

    Returns a JSON-ready dict: per shape the median milliseconds, peak MB,
    notes (rows that failed or have no peer here) and the number of timed
    rounds. With `max_seconds`, each shape gets an equal share of it and stops
    after the round that crosses its share (at least one round).
    """
    import keras
    import numpy as np

    backend = keras.backend.backend()
    out = {"backend": backend, "device": ", ".join(devices(backend)),
           "load_start": os.getloadavg()[0], "shapes": {}}
    if backend == "torch":
        import torch

        out["torch_threads"] = torch.get_num_threads()
    started = time.monotonic()
    out["copy_bandwidth"] = copy_bandwidth(bandwidth_mb)
    make = _step_builder(backend)
    for index, (batch, classes) in enumerate(shapes):
        deadline = None
        if max_seconds:
            deadline = time.monotonic() + (
                max_seconds - (time.monotonic() - started)) / (len(shapes) - index)
        rng = np.random.default_rng(0)
        logits = (rng.normal(size=(batch, classes)) * 2.0).astype("float32")
        ids = rng.integers(0, classes, size=batch)
        labels = {
            "ids": ids.astype("int32"),
            "one-hot": np.eye(classes, dtype="float32")[ids],
            "multi-hot": (rng.random((batch, classes)) < 0.01).astype("float32"),
        }
        z = keras.ops.convert_to_tensor(logits)
        tensors = {k: keras.ops.convert_to_tensor(v) for k, v in labels.items()}
        factories = _factories(classes)
        steps, peaks, notes = {}, {}, {}
        for name, form in ROWS:
            key = row_key(name, form)
            if rows is not None and key not in rows:
                continue
            factory = factories.get(key)
            if factory is None:
                if name.startswith("optax") and backend == "jax":
                    notes[key] = "optax is not installed"
                continue
            try:
                run, peak = make(factory(), tensors[form.split(",")[0]], z,
                                 _activation(form))
                calls = warmup
                if peak == "torch" and memory:
                    # The first warm-up call runs under the profiler (eager
                    # torch allocates the same on every call).
                    peak, calls = _torch_peak_bytes(run), warmup - 1
                elif peak == "torch":
                    peak = None
                for _ in range(calls):
                    run()
            except Exception as error:  # report, keep benchmarking the others
                notes[key] = f"failed: {type(error).__name__}: {str(error)[:160]}"
                continue
            steps[key], peaks[key] = run, peak
        times = {key: [] for key in steps}
        rounds = 0
        while rounds < repeats and (rounds == 0 or deadline is None
                                    or time.monotonic() < deadline):
            for key, run in steps.items():
                times[key].append(_timed(run))
            rounds += 1
        # Progress on stderr (stdout is the JSON result); the parent relays it.
        print(f"{backend} {batch}x{classes}: {len(steps)} rows, {rounds} rounds, "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        out["shapes"][f"{batch}x{classes}"] = {
            "median_ms": {k: statistics.median(v) * 1e3 for k, v in times.items()},
            "peak_mb": {k: None if v is None else v / 2**20 for k, v in peaks.items()},
            "notes": notes,
            "rounds": rounds,
        }
    out["load_end"] = os.getloadavg()[0]
    return out


def _relay(stream, backend, tail):
    """Echoes a worker's stderr (its per-shape progress) as it comes; keeps
    the last lines for the failure message."""
    for line in stream:
        tail.append(line)
        print(f"[{backend}] {line}", end="", file=sys.stderr, flush=True)


def worker(args):
    shapes = QUICK_SHAPES if args.quick else _parse_shapes(args.shapes)
    print(json.dumps(measure(shapes, args.repeats, args.warmup,
                             max_seconds=args.max_seconds)))


def _parse_shapes(values):
    return [tuple(int(v) for v in value.lower().split("x")) for value in values]


# --- the table -------------------------------------------------------------------


def _cell(shape_result, key):
    if shape_result is None:
        return "n/a"
    ms = shape_result["median_ms"].get(key)
    if ms is None:
        return "failed" if key in shape_result["notes"] else "-"
    base = shape_result["median_ms"].get(BASELINE)
    ratio = f" ({ms / base:.2f}x)" if base else ""
    return f"{ms:.1f}{ratio}"


def _peak_cell(shape_result, key, backend):
    if shape_result is None or key not in shape_result["median_ms"]:
        return "-" if backend != "tensorflow" else "n/a"
    peak = shape_result["peak_mb"].get(key)
    return "n/a" if peak is None else f"{peak:.1f}" if peak < 10 else f"{peak:.0f}"


def _target(key):
    return 1.0 if key.endswith("[ids]") else TARGET


def summary(backend, shape, result):
    """One line: targets met and missed, peers, for one backend and shape."""
    ms = result["median_ms"]
    base = ms.get(BASELINE)
    ours = [row_key(n, f) for n, f in ROWS if not n.startswith(PEER_PREFIXES)]
    ours = [k for k in ours if k in ms]
    if not base or not ours:
        return f"- {backend} {shape}: no kimbalance rows measured."
    met = [k for k in ours if ms[k] <= _target(k) * base]
    missed = [f"{k} {ms[k] / base:.2f}x" for k in ours if k not in met]
    peers = []
    for key in ours:
        for peer in PEERS.get(key, []):
            if peer in ms:
                mark = "ok" if ms[key] <= ms[peer] else "slower"
                peers.append(f"{key} {ms[key] / ms[peer]:.2f}x of {peer} ({mark})")
    return (f"- {backend} {shape}: met {len(met)} of {len(ours)}"
            f" (`[ids]` rows <= 1.0x, others <= {TARGET}x); over: "
            f"{'; '.join(missed) if missed else 'none'}. Against peers: "
            f"{'; '.join(peers) if peers else 'none here'}.")


def write_table(raw):
    """Rebuilds losses.md from the per-backend entries of losses.json."""
    results = raw["backends"]
    shapes = []
    for backend in BACKENDS:
        for shape in results.get(backend, {}).get("shapes", {}):
            if shape not in shapes:
                shapes.append(shape)
    bandwidths = [r["copy_bandwidth"] for r in results.values()]
    bandwidth = max(bandwidths) if bandwidths else None
    lines = [
        "## losses",
        "",
        "Forward + gradient (w.r.t. the logits) of one loss value on float32 "
        "logits: median of interleaved repeats (every row once per round) after "
        "warm-up calls; in parentheses the time relative to "
        "`keras.losses.CategoricalCrossentropy(from_logits=True)` (one-hot) on the "
        "same backend and shape. jax: `jax.jit(jax.value_and_grad(...))`; "
        "tensorflow: `tf.function(jit_compile=True)` + `GradientTape`; torch: "
        "eager (`torch.compile` is too slow to compile here; eager is what "
        "`model.fit` runs on torch by default). `[..., probs]` rows apply the "
        "softmax (sigmoid for multi-hot) inside the step and pass probabilities "
        "with `from_logits=False`.",
        "",
        "**Noise.** 2 logical CPUs; the 1-minute load averages below include the "
        "benchmark itself (its jax and tensorflow workers use both cores). Even "
        "with nothing else running, two runs of this command ten minutes apart "
        "(2026-12-02) differed by up to 2x on single rows (Keras CE on tensorflow "
        "13.8 vs 8.9 ms; Keras focal on torch 45 vs 82 ms), so read every ratio "
        "as +-30% and differences within ~0.3 of a target as ties; the misses "
        "listed below are several times larger than that.",
        "",
        f"- Machine: {raw.get('machine', '?')}",
        f"- Versions: {_versions_line()}",
    ]
    for backend in BACKENDS:
        result = results.get(backend)
        if not result:
            lines.append(f"- {backend}: not run yet")
            continue
        threads = (f"; torch threads {result['torch_threads']}"
                   if "torch_threads" in result else "")
        rounds = ", ".join(f"{shape}: {r.get('rounds', result['repeats'])}"
                           for shape, r in result["shapes"].items())
        parallel = (" (the backends' workers ran at the same time)"
                    if result.get("parallel") else "")
        lines.append(
            f"- {backend}: `{result['command']}` on {result['date']}{parallel}, "
            f"timed rounds per shape {rounds} (of {result['repeats']} asked) after "
            f"{result['warmup']} warm-up calls; "
            f"device {result['device']}{threads}; 1-minute load average "
            f"{result['load_start']:.1f} at start, {result['load_end']:.1f} at end; "
            f"np.copyto bandwidth {result['copy_bandwidth'] / 1e9:.1f} GB/s "
            "(read + write)")
    lines += [
        "",
        "Columns: `floor ms` is the memory-bandwidth floor, the time to read the "
        "logits and labels and write the gradient once (4-byte floats; int32 ids) "
        "at the fastest copy bandwidth measured in these runs"
        + (f" ({bandwidth / 1e9:.1f} GB/s)" if bandwidth else "")
        + "; `peak MB`: torch, the most memory the step allocated above what "
        "existed before it (`torch.profiler`, `profile_memory=True`); jax, the "
        "compiled step's temporary + output buffers "
        "(`jax.jit(...).lower(...).compile().memory_analysis()`); tensorflow "
        "n/a: TensorFlow has no peak-memory API on CPU "
        "(`tf.config.experimental.get_memory_info` reads 0 there) and the "
        "XLA-compiled function exposes no memory analysis. The logits (and the "
        "labels) are inputs and not counted; the gradient is.",
    ]
    for shape in shapes:
        batch, classes = (int(v) for v in shape.split("x"))
        lines += ["", f"### ({batch}, {classes})", "",
                  "| loss [labels] | floor ms | " + " | ".join(
                      f"{b} ms (x CE) | {b} peak MB" for b in BACKENDS) + " |",
                  "|---|---:|" + "---:|---:|" * len(BACKENDS)]
        for name, form in ROWS:
            key = row_key(name, form)
            per = [results.get(b, {}).get("shapes", {}).get(shape) for b in BACKENDS]
            if not any(p and key in p["median_ms"] for p in per):
                continue
            moved = floor_bytes(form.split(",")[0], batch, classes)
            floor = f"{moved / bandwidth * 1e3:.2g}" if bandwidth else "n/a"
            cells = []
            for backend, shape_result in zip(BACKENDS, per, strict=True):
                cells += [_cell(shape_result, key),
                          _peak_cell(shape_result, key, backend)]
            lines.append(f"| {key} | {floor} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Labels: `[one-hot]` rows get the same one-hot labels as Keras' "
        "CategoricalCrossentropy; `[ids]` rows the same labels as int class ids; "
        "`[multi-hot]` rows independent labels with ~1% positives (the "
        "`keras BinaryCrossentropy` / `BinaryFocalCrossentropy` rows are their "
        "like-for-like references). Hyperparameters: long-tailed counts "
        "(imbalance 100), balanced class weights, focal gamma 2 and alpha 0.25 "
        "(Keras' defaults), ASL and DB at their defaults. Fused (closed-form "
        "gradient, `kimbalance/losses/_fused.py`): the dense-label rows from logits "
        "(on torch the softmax cross-entropy family, i.e. weighted / "
        "logit-adjusted one-hot rows, keeps autodiff: eager torch has a one-kernel "
        "log-softmax backward); class ids take a log-softmax gather and "
        "`[..., probs]` rows use autodiff.",
        "",
        "Where an aim is missed, the reason (all measured on this CPU, where "
        "every elementwise pass over an (N, C) float32 array costs a few ms):",
        *[f"- {name}: {reason}" for name, reason in REASONS.items()],
        "",
        f"What we aimed for: every kimbalance loss within {TARGET}x of Keras CE "
        "on every backend, class-id paths within 1.0x, and no kimbalance loss "
        "slower than the peer that computes the same thing (Keras focal for "
        "FocalCrossentropy [one-hot]; on torch F.cross_entropy(weight=), "
        "F.binary_cross_entropy_with_logits(pos_weight=) and torchvision's sigmoid "
        "focal formula; on jax optax's sigmoid_focal_loss). A `-` cell: no such "
        "peer on that backend.",
    ]
    for shape in shapes:
        for backend in BACKENDS:
            shape_result = results.get(backend, {}).get("shapes", {}).get(shape)
            if shape_result is None:
                continue
            lines.append(summary(backend, shape, shape_result))
            for key, note in shape_result["notes"].items():
                lines.append(f"  - {key}: {note}")
    text = "\n".join(lines) + "\n"
    return text


def _versions_line():
    return ", ".join(f"{name} {version or '(not installed)'}"
                     for name, version in package_versions().items())


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=BACKENDS,
                        help="worker mode: time this backend, print JSON")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS,
                        default=list(BACKENDS))
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{c}" for b, c in SHAPES],
                        help="BATCHxCLASSES, e.g. 4096x1000")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time budget per backend: fewer timed rounds than "
                        "--repeats when it runs out (at least one per shape)")
    parser.add_argument("--parallel", action="store_true",
                        help="run the backends' workers at the same time")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: shape {QUICK_SHAPES[0]}, 1 repeat, 1 "
                        "warm-up; prints the table, writes nothing")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.warmup = 1, 1
    if args.backend:
        worker(args)
        return
    command = "python benchmarks/bench_losses.py " + " ".join(sys.argv[1:])
    raw = {"backends": {}}
    if RAW.exists() and not args.quick:
        raw = json.loads(RAW.read_text())
    raw["machine"] = machine_description()
    failures = {}
    procs, relays, outputs = {}, {}, {}
    for backend in args.backends:
        print(f"--- {backend}", flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        worker_args = [sys.executable, __file__, "--backend", backend, "--repeats",
                       str(args.repeats), "--warmup", str(args.warmup), "--shapes",
                       *args.shapes] + (["--quick"] if args.quick else []) + (
                           ["--max-seconds", str(args.max_seconds)]
                           if args.max_seconds else [])
        procs[backend] = subprocess.Popen(
            worker_args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=HERE.parent)
        tail = collections.deque(maxlen=100)
        thread = threading.Thread(target=_relay, daemon=True,
                                  args=(procs[backend].stderr, backend, tail))
        thread.start()
        relays[backend] = thread, tail
        if not args.parallel:  # one at a time (read first: a full pipe blocks it)
            outputs[backend] = procs[backend].stdout.read()
            procs[backend].wait()
    for backend, proc in procs.items():
        stdout = outputs[backend] if backend in outputs else proc.stdout.read()
        proc.wait()
        thread, tail = relays[backend]
        thread.join()
        stderr = "".join(tail)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            failures[backend] = f"exit {proc.returncode}: {stderr[-800:]}"
            print(failures[backend], file=sys.stderr)
            continue
        result = json.loads(lines[-1])
        result.update(command=command.strip(), date=datetime.date.today().isoformat(),
                      repeats=args.repeats, warmup=args.warmup,
                      parallel=bool(args.parallel and len(procs) > 1))
        raw["backends"][backend] = result
    text = write_table(raw)
    if not args.quick:
        RAW.parent.mkdir(parents=True, exist_ok=True)
        RAW.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n")
        RESULT.write_text(text)
    print(text)
    if failures:
        sys.exit(f"failed backends: {sorted(failures)}")
    failed_rows = [key for result in raw["backends"].values()
                   for shape in result["shapes"].values()
                   for key, note in shape["notes"].items() if note.startswith("failed")]
    if args.quick and failed_rows:
        sys.exit(f"failed rows: {failed_rows}")


if __name__ == "__main__":
    main()
