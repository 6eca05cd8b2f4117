"""Worker: JAX data parallelism through `keras.distribution` on CPU devices.

`--mode dp`: one process, two virtual CPU devices (`XLA_FLAGS` set by the
launcher), `DataParallel` over both, `model.fit` on the generator.
`--mode multiprocess`: one of two processes joined by `jax.distributed` on
127.0.0.1 with gloo CPU collectives, each feeding its own shard.
"""

import sys


def main():
    from dist_problem import worker_arguments

    args = worker_arguments([("--mode", str), ("--port", int)])
    # keras.distribution.initialize seeds TensorFlow when it is importable;
    # these workers never use it, and importing it costs ~10 s on 2 cores.
    sys.modules.setdefault("tensorflow", None)
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import dist_problem as p
    import keras

    from kimbalance.distributed import (
        all_reduce_metrics,
        local_replica_count,
        shard_arguments,
        sharded_generator,
    )

    x, y = p.make_data()
    result = {}
    if args.mode == "multiprocess":
        keras.distribution.initialize(f"127.0.0.1:{args.port}", num_processes=2,
                                      process_id=args.rank)
    # Created before the distribution: plain per-process state, updated with
    # this process's shard only, then summed by all_reduce_metrics.
    local_metrics = p.make_metrics()
    distribution = keras.distribution.DataParallel(
        devices=jax.devices(), auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    result["devices"] = len(jax.devices())
    result["local_replicas"] = local_replica_count()
    result["shard"] = shard_arguments()
    try:
        sharded_generator(x, y, global_batch_size=7, sampler="over", seed=p.SEED)
    except ValueError as error:
        result["odd_batch_error"] = str(error)

    generator = sharded_generator(x, y, global_batch_size=p.GLOBAL_BATCH,
                                  sampler="over", seed=p.SEED)
    result["batch_size"] = generator.batch_size
    model = p.build_model()
    model.compile(optimizer=keras.optimizers.SGD(p.LEARNING_RATE), loss=p.make_loss(),
                  metrics=p.make_metrics())
    seen, trained = [], []
    lookup = p.row_index(x)

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append([])
            trained.append(generator.epoch)

        def on_train_batch_begin(self, batch, logs=None):
            xb, _ = generator[batch]
            seen[-1].extend(lookup(xb))

    history = model.fit(generator, epochs=p.EPOCHS, shuffle=False, verbose=0,
                        callbacks=[Record()])
    weights = model.get_weights()
    last_epoch = trained[-1]
    for index in range(len(generator)):
        batch = generator.batch_indices(index, epoch=last_epoch)
        logits = p.forward(weights, x[batch]).astype("float32")
        for metric in local_metrics:
            metric.update_state(y[batch], logits)
    result["local_states"] = [keras.ops.convert_to_numpy(m.confusion_matrix)
                              for m in local_metrics]
    result["reduced"] = all_reduce_metrics(local_metrics, engine="jax")
    p.write_result(args.out, args.rank, history=history.history, weights=weights,
                   indices=seen, trained_epochs=trained, **result)


if __name__ == "__main__":
    main()
