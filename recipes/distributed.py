"""Long-tailed training on a data-parallel engine: JAX, TensorFlow or PyTorch.

The long-tail recipe (a long-tailed split, one imbalance method, a balanced
test set) trained by an existing engine, each process reading its own
disjoint, rebalanced shard of one global epoch (`kimbalance.distributed`):

| `--engine` | what runs | `--processes N` |
|---|---|---|
| `jax-dp` | one process, `keras.distribution.DataParallel`, `fit` | N devices |
| `jax-multiprocess` | N processes joined by `jax.distributed`, `fit` | N processes |
| `tf-mirrored` | one process, `tf.distribute.MirroredStrategy`, `fit` | N devices |
| `tf-multiworker` | N `MultiWorkerMirroredStrategy` workers, custom loop | N procs |
| `torch-ddp` | N processes, `DistributedDataParallel`, torch loop | N processes |

Devices: GPUs when present (the first N), else the host CPU split into N
virtual devices (JAX: `--xla_force_host_platform_device_count`; TensorFlow:
logical CPU devices). Multi-process engines on one host are launched by this
script (loopback, free ports); on several hosts start one process per host:

    # JAX, on host i of 2 (process 0's host runs the coordinator):
    python recipes/distributed.py --engine jax-multiprocess --processes 2 \\
        --process-id i --coordinator host0:12345
    # TensorFlow: TF_CONFIG set on every host, then on each:
    python recipes/distributed.py --engine tf-multiworker
    # PyTorch, 2 hosts x 8 GPUs:
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint host0:29500 recipes/distributed.py --engine torch-ddp

`--global-batch-size` is the batch of one optimizer step over all replicas;
each process reads `global / processes` and splits it over its devices.
`--learning-rate` is for that global batch: when you grow the global batch,
scale it linearly (Goyal et al. 2017). `--plain` trains the same model
without kimbalance (cross-entropy, a uniform shuffle sharded by the engine's
usual means, accuracy only): the baseline of `benchmarks/bench_scaling.py`.

Examples:
    python recipes/distributed.py --engine torch-ddp --processes 2
    python recipes/distributed.py --engine jax-dp --processes 2 --method ldam_drw
    python recipes/distributed.py --engine tf-multiworker --processes 2 --epochs 5
"""

import argparse
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import time

ENGINES = {"jax-dp": "jax", "jax-multiprocess": "jax", "tf-mirrored": "tensorflow",
           "tf-multiworker": "tensorflow", "torch-ddp": "torch"}
MULTI_PROCESS = ("jax-multiprocess", "tf-multiworker", "torch-ddp")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=sorted(ENGINES), required=True)
    parser.add_argument("--processes", type=int, default=2,
                        help="processes (jax-multiprocess, tf-multiworker, "
                             "torch-ddp) or devices (jax-dp, tf-mirrored); default 2")
    parser.add_argument("--process-id", type=int, default=None,
                        help="jax-multiprocess: this process's id (multi-host)")
    parser.add_argument("--coordinator", default=None,
                        help="jax-multiprocess: host:port of process 0")
    parser.add_argument("--method", default="logit_adjusted",
                        help="a trainable method of kimbalance.experiments."
                             "LONG_TAIL_METHODS (default: logit_adjusted)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--ratio", type=float, default=10.0,
                        help="imbalance ratio n_max / n_min (default 10)")
    parser.add_argument("--arch", default="cnn", choices=("cnn", "mlp", "resnet32"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--global-batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05,
                        help="SGD (momentum 0.9) rate for the global batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train", type=int, default=None,
                        help="cap on the training set before the split (smoke runs)")
    parser.add_argument("--plain", action="store_true",
                        help="baseline without kimbalance (see above)")
    parser.add_argument("--out", default=None, help="folder for summary.json")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress (Keras progress bars or one line per "
                             "epoch, process 0 only): the RESULT line only")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="launcher: seconds before the workers are stopped")
    return parser.parse_args(argv)


# Launching ------------------------------------------------------------------


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _launched_externally(args):
    if args.engine == "jax-multiprocess":
        return args.process_id is not None
    if args.engine == "tf-multiworker":
        return "TF_CONFIG" in os.environ
    if args.engine == "torch-ddp":
        return "RANK" in os.environ
    return True


def launch_local(args, argv):
    """Starts `--processes` copies of this script on loopback; waits for all."""
    count = args.processes
    ports = _free_ports(count if args.engine == "tf-multiworker" else 1)
    processes = []
    try:
        for rank in range(count):
            env = dict(os.environ)
            command = [sys.executable, os.path.abspath(__file__), *argv]
            if args.engine == "jax-multiprocess":
                command += ["--process-id", str(rank),
                            "--coordinator", f"127.0.0.1:{ports[0]}"]
            elif args.engine == "tf-multiworker":
                cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
                env["TF_CONFIG"] = json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": rank}})
            else:
                env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ports[0]),
                           RANK=str(rank), LOCAL_RANK=str(rank),
                           WORLD_SIZE=str(count), LOCAL_WORLD_SIZE=str(count))
            output = None if rank == 0 else subprocess.DEVNULL
            processes.append(subprocess.Popen(command, env=env, stdout=output,
                                              start_new_session=True))
        deadline = time.monotonic() + args.timeout
        while any(p.poll() is None for p in processes):
            if any(p.poll() not in (None, 0) for p in processes):
                break
            if time.monotonic() > deadline:
                print(f"timeout after {args.timeout} s", file=sys.stderr)
                break
            time.sleep(0.2)
        codes = [p.poll() for p in processes]
        return 0 if codes == [0] * count else 1
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def configure_before_import(args):
    """Backend and devices: read once when the framework starts."""
    os.environ["KERAS_BACKEND"] = ENGINES[args.engine]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.engine.startswith("jax"):
        # Only the host platform reads this: on GPU hosts the GPUs are used.
        count = args.processes if args.engine == "jax-dp" else 1
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={count}").strip()
    if args.engine == "tf-mirrored":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * args.processes)
    if args.engine == "torch-ddp":
        import torch

        if torch.cuda.is_available():  # before Keras places any variable
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))


# The task -------------------------------------------------------------------


class Task:
    """The split, method, model and data settings every engine shares."""

    def __init__(self, args, rank):
        import keras

        from kimbalance import experiments as ex
        from kimbalance import metrics as kb_metrics

        self.args, self.keras, self.ex, self.rank = args, keras, ex, rank
        self.split = ex.long_tail_split(
            args.dataset, ratio=args.ratio, seed=args.seed, data_dir=args.data_dir,
            max_train=args.max_train, log=print if rank == 0 else None)
        method = ex.LONG_TAIL_METHODS.get(args.method)
        if method is None or method.posthoc or method.majority:
            trainable = [m.name for m in ex.LONG_TAIL_METHODS.values()
                         if not (m.posthoc or m.majority)]
            raise SystemExit(f"--method must be one of {trainable}")
        self.method = method
        self.info = ex.TaskInfo(counts=self.split.counts, y_train=self.split.y_train,
                                epochs=args.epochs, num_classes=self.split.num_classes)
        self.num_classes = self.split.num_classes
        self.kb_metrics = kb_metrics

    @property
    def verbose(self):
        """Keras `fit` verbosity: progress bars on process 0 unless --quiet."""
        return 0 if self.args.quiet or self.rank != 0 else 1

    def log_epoch(self, epoch, history, seconds):
        """The custom loops' progress: one line per epoch on process 0."""
        if self.verbose:
            values = ", ".join(f"{name} {values[-1]:.4f}"
                               for name, values in history.items())
            print(f"epoch {epoch + 1}/{self.args.epochs}: {values} ({seconds:.1f} s)",
                  flush=True)

    def model(self):
        head = "dense" if self.args.plain else self.method.head
        return self.ex.build_model(self.args.arch, self.split.input_shape,
                                   self.num_classes, head=head)

    def loss(self):
        if self.args.plain:
            return self.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return self.method.loss(self.info)

    def metrics(self):
        if self.args.plain:
            return ["accuracy"]
        c = self.num_classes
        return [self.kb_metrics.BalancedAccuracy(c), self.kb_metrics.MacroF1(c),
                self.kb_metrics.GeometricMean(c)]

    def optimizer(self):
        return self.keras.optimizers.SGD(self.args.learning_rate, momentum=0.9)

    def generator_kwargs(self):
        # drop_remainder: every step then splits evenly over all devices
        # (JAX needs it); the epoch is resampled, so no sample is lost for good.
        return {**self.method.generator_kwargs(self.info), "seed": self.args.seed,
                "drop_remainder": True}

    def callbacks(self, generator):
        return [] if self.args.plain else self.method.callbacks(generator, self.info)

    def plain_shard(self, num_shards, shard_index):
        """Equal contiguous slices of the training set (the usual static shard)."""
        x, y = self.split.x_train, self.split.y_train
        size = x.shape[0] // num_shards
        part = slice(shard_index * size, (shard_index + 1) * size)
        return x[part], y[part]

    def evaluate(self, weights):
        """Test metrics of the trained weights, in this process alone."""
        from kimbalance import evaluate

        model = self.model()
        model.set_weights(weights)
        report = evaluate(model, self.split.x_test, self.split.y_test,
                          class_counts=self.split.counts)
        return {name: float(getattr(report, name))
                for name in ("accuracy", "balanced_accuracy", "g_mean", "macro_f1",
                             "few_shot_accuracy")
                if getattr(report, name, None) is not None}


# Engines --------------------------------------------------------------------


def run_keras_fit(task, model, data_for_shard, num_shards, shard_index, distribution):
    """`fit` under a keras distribution or a tf.distribute strategy."""
    from kimbalance.distributed import shard_batch_size, sharded_generator

    args = task.args
    timer = task.ex.EpochTimer()
    if args.plain:
        x, y = data_for_shard(num_shards, shard_index)
        batch = shard_batch_size(args.global_batch_size, num_shards=num_shards)
        steps = x.shape[0] // batch
        history = model.fit(x[:steps * batch], y[:steps * batch], batch_size=batch,
                            epochs=args.epochs, shuffle=True, verbose=task.verbose,
                            callbacks=[timer])
    else:
        generator = sharded_generator(
            task.split.x_train, task.split.y_train,
            global_batch_size=args.global_batch_size, distribution=distribution,
            num_shards=num_shards, shard_index=shard_index, **task.generator_kwargs())
        steps = len(generator)
        # shuffle=False: the generator already shuffles, identically on every
        # process; fit's batch-order shuffle would differ between processes.
        history = model.fit(generator, epochs=args.epochs, shuffle=False,
                            verbose=task.verbose,
                            callbacks=[timer, *task.callbacks(generator)])
    return history.history, timer.times, steps


def run_jax(task, rank, world):
    import jax

    args, keras = task.args, task.keras
    if args.engine == "jax-multiprocess":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize(args.coordinator, num_processes=world,
                                      process_id=rank)
        devices = jax.devices()
    else:
        devices = jax.devices()[:args.processes]
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=False))
    model = task.model()
    model.compile(optimizer=task.optimizer(), loss=task.loss(), metrics=task.metrics())
    history, times, steps = run_keras_fit(task, model, task.plain_shard, world, rank,
                                          None)
    weights = model.get_weights()
    keras.distribution.set_distribution(None)
    return history, times, steps, weights, [str(d) for d in devices]


def run_tf_mirrored(task, rank, world):
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    pool = gpus or tf.config.list_logical_devices("CPU")
    devices = [d.name for d in pool[:task.args.processes]]
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        model = task.model()
        model.compile(optimizer=task.optimizer(), loss=task.loss(),
                      metrics=task.metrics())
    history, times, steps = run_keras_fit(task, model, task.plain_shard, 1, 0,
                                          strategy)
    return history, times, steps, model.get_weights(), devices


def run_tf_multiworker(task, rank, world):
    import tensorflow as tf

    from kimbalance.distributed import all_reduce_metrics, tf_distributed_dataset

    args, keras = task.args, task.keras
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    global_batch = args.global_batch_size
    with strategy.scope():
        model = task.model()
        optimizer = task.optimizer()
        optimizer.build(model.trainable_variables)
        metrics = ([keras.metrics.SparseCategoricalAccuracy()] if args.plain
                   else task.metrics())
    loss_fn = task.loss()
    # Each replica's loss is its share of the global batch's mean,
    # sum(w * loss) / global_batch (tf.distribute sums the gradients over
    # replicas): the same loss with reduction="sum", through the public API.
    summed_loss = type(loss_fn).from_config({**loss_fn.get_config(),
                                             "reduction": "sum"})
    callbacks = []
    if args.plain:
        x, y = task.split.x_train, task.split.y_train
        steps = x.shape[0] // global_batch

        def dataset_fn(context):
            batch = context.get_per_replica_batch_size(global_batch)
            data = tf.data.Dataset.from_tensor_slices((x, y)).shard(
                context.num_input_pipelines, context.input_pipeline_id)
            return data.shuffle(x.shape[0], seed=args.seed).batch(
                batch, drop_remainder=True).repeat()

        dataset = strategy.distribute_datasets_from_function(dataset_fn)
    else:
        # Endless; every len(generator) steps is the generator's next epoch.
        dataset, generators = tf_distributed_dataset(
            strategy, task.split.x_train, task.split.y_train,
            global_batch_size=global_batch, **task.generator_kwargs())
        steps = len(generators[0])
        callbacks = task.callbacks(generators[0])
    iterator = iter(dataset)

    def replica_step(batch):
        xb, yb = batch[0], batch[1]
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            weights = batch[2] if len(batch) == 3 else None
            loss = summed_loss(yb, logits, sample_weight=weights) / global_batch
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        for metric in metrics:
            metric.update_state(yb, logits)
        return loss

    @tf.function
    def train_step(iterator):
        per_replica = strategy.run(replica_step, args=(next(iterator),))
        return strategy.reduce("SUM", per_replica, axis=None)

    timer = task.ex.EpochTimer()
    history = {}
    for epoch in range(args.epochs):
        for callback in callbacks:  # deferred re-weighting switches the generator
            callback.on_epoch_begin(epoch)
        for metric in metrics:
            metric.reset_state()
        timer.on_epoch_begin(epoch)
        total = 0.0
        for _ in range(steps):
            total += float(train_step(iterator))
        timer.on_epoch_end(epoch)
        # tf.distribute metric states are sum-on-read: already global.
        values = ({m.name: float(m.result()) for m in metrics} if args.plain
                  else all_reduce_metrics(metrics))
        for name, value in {"loss": total / steps, **values}.items():
            history.setdefault(name, []).append(value)
        task.log_epoch(epoch, history, timer.times[-1])
    weights = [keras.ops.convert_to_numpy(w) for w in model.get_weights()]
    return history, timer.times, steps, weights, [str(strategy.extended.worker_devices)]


def shut_down_process_group(dist):
    """`destroy_process_group` without torch 2.13's gloo shutdown deadlock.

    The destructor joins gloo's worker threads while holding the GIL; a
    worker still releasing the tensors of its last collective needs the GIL
    too. A barrier, then a moment without the GIL, lets it finish first.
    """
    dist.barrier()
    time.sleep(0.5)
    dist.destroy_process_group()


def run_torch(task, rank, world):
    import torch
    import torch.distributed as dist

    from kimbalance.distributed import all_reduce_metrics, sharded_generator

    args, keras = task.args, task.keras
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else None
    model = task.model()
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if cuda else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.learning_rate, momentum=0.9)
    loss_fn = task.loss()
    x, y = task.split.x_train, task.split.y_train
    if args.plain:
        dataset = torch.utils.data.TensorDataset(torch.from_numpy(x),
                                                 torch.from_numpy(y))
        sampler = torch.utils.data.DistributedSampler(dataset, seed=args.seed)
        batches = torch.utils.data.DataLoader(
            dataset, batch_size=args.global_batch_size // world, sampler=sampler,
            drop_last=True)
        metrics, callbacks = [], []
    else:
        generator = sharded_generator(x, y, global_batch_size=args.global_batch_size,
                                      engine="torch", **task.generator_kwargs())
        batches = generator  # len() + indexing: a sharded, rebalanced epoch
        metrics, callbacks = task.metrics(), task.callbacks(generator)
    timer = task.ex.EpochTimer()
    history = {}
    for epoch in range(args.epochs):
        if args.plain:
            sampler.set_epoch(epoch)
        else:
            generator.set_epoch(epoch)
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        for metric in metrics:
            metric.reset_state()
        timer.on_epoch_begin(epoch)
        total = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        steps = 0
        for batch in (batches if args.plain else (generator[i]
                                                  for i in range(len(generator)))):
            xb, yb = (torch.as_tensor(v, device=device) for v in batch[:2])
            logits = ddp(xb)
            # The loss's own reduction (mean over the batch of w * loss), as
            # in `fit`; DDP averages the gradients over ranks.
            weights = (torch.as_tensor(batch[2], device=device) if len(batch) == 3
                       else None)
            loss = loss_fn(yb, logits, sample_weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach()
            steps += 1
            if args.plain:
                correct += (logits.argmax(-1) == yb).float().mean().detach()
            for metric in metrics:
                metric.update_state(yb, logits.detach())
        timer.on_epoch_end(epoch)
        dist.all_reduce(total)
        dist.all_reduce(correct)
        values = ({"accuracy": float(correct) / (steps * world)} if args.plain
                  else all_reduce_metrics(metrics))
        for name, value in {"loss": float(total) / (steps * world), **values}.items():
            history.setdefault(name, []).append(value)
        task.log_epoch(epoch, history, timer.times[-1])
    weights = [keras.ops.convert_to_numpy(w) for w in model.get_weights()]
    shut_down_process_group(dist)
    return history, timer.times, steps, weights, [str(device or "cpu")]


# Main -----------------------------------------------------------------------


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.processes < 1 or args.global_batch_size < 1:
        raise SystemExit("--processes and --global-batch-size must be >= 1")
    if args.engine in MULTI_PROCESS and not _launched_externally(args):
        return launch_local(args, argv)
    configure_before_import(args)
    if args.engine == "jax-multiprocess":
        rank, world = args.process_id, args.processes
    elif args.engine == "torch-ddp":
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    elif args.engine == "tf-multiworker":
        from kimbalance.distributed import shard_arguments

        shard = shard_arguments("tensorflow")
        rank, world = shard["shard_index"], shard["num_shards"]
    else:
        rank, world = 0, 1
    task = Task(args, rank)
    run = {"jax-dp": run_jax, "jax-multiprocess": run_jax,
           "tf-mirrored": run_tf_mirrored, "tf-multiworker": run_tf_multiworker,
           "torch-ddp": run_torch}[args.engine]
    history, times, steps, weights, devices = run(task, rank, world)
    test = task.evaluate(weights)  # on every process: they finish together
    if rank != 0:
        return 0
    replicas = world if args.engine in MULTI_PROCESS else args.processes
    timed = times[1:] if len(times) > 1 else times  # epoch 1 compiles
    samples = steps * args.global_batch_size
    summary = {
        "engine": args.engine, "backend": ENGINES[args.engine],
        "replicas": replicas, "devices": devices, "plain": args.plain,
        "method": "plain_ce" if args.plain else args.method,
        "split": task.split.description,
        "global_batch_size": args.global_batch_size,
        "per_replica_batch_size": args.global_batch_size // replicas,
        "steps_per_epoch": steps, "samples_per_epoch": samples,
        "epoch_times": times,
        "samples_per_second": samples / statistics.median(timed),
        "history": history, "test": test,
    }
    print("RESULT " + json.dumps(summary), flush=True)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
