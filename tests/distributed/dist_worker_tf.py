"""Worker: TensorFlow `tf.distribute` strategies on CPU.

`--mode mirrored`: one process, `MirroredStrategy` over two logical CPU
devices, `model.fit` on the sharded generator (Keras splits each batch over
the replicas). `--mode multiworker`: one of two `MultiWorkerMirroredStrategy`
workers (`TF_CONFIG` set by the launcher) with a custom training loop over
`tf_distributed_dataset`, the route TensorFlow documents for multi-worker
training (Keras 3's `fit` does not take multi-worker distributed datasets,
keras-team/keras#20585).
"""


def main():
    from dist_problem import worker_arguments

    args = worker_arguments([("--mode", str), ("--epochs", str)])
    import tensorflow as tf

    if args.mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import dist_problem as p
    import keras

    from kimbalance.distributed import (
        all_reduce_metrics,
        local_replica_count,
        shard_arguments,
        sharded_generator,
        tf_distributed_dataset,
    )

    x, y = p.make_data()
    lookup = p.row_index(x)
    if args.mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        result = fit_mirrored(strategy, p, keras, x, y, lookup, sharded_generator)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        result = custom_loop(strategy, p, keras, tf, x, y, lookup, args,
                             tf_distributed_dataset, all_reduce_metrics)
    result["replicas"] = strategy.num_replicas_in_sync
    result["local_replicas"] = local_replica_count(strategy)
    result["shard"] = shard_arguments()
    p.write_result(args.out, args.rank, **result)


def fit_mirrored(strategy, p, keras, x, y, lookup, sharded_generator):
    with strategy.scope():
        model = p.build_model()
        model.compile(optimizer=keras.optimizers.SGD(p.LEARNING_RATE),
                      loss=p.make_loss(), metrics=p.make_metrics())
    result = {}
    try:
        sharded_generator(x, y, global_batch_size=7, distribution=strategy,
                          sampler="over", seed=p.SEED)
    except ValueError as error:
        result["odd_batch_error"] = str(error)
    generator = sharded_generator(x, y, global_batch_size=p.GLOBAL_BATCH,
                                  distribution=strategy, sampler="over", seed=p.SEED)
    seen, trained = [], []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append([])
            trained.append(generator.epoch)

        def on_train_batch_begin(self, batch, logs=None):
            seen[-1].extend(lookup(generator[batch][0]))

    history = model.fit(generator, epochs=p.EPOCHS, shuffle=False, verbose=0,
                        callbacks=[Record()])
    result.update(history=history.history, weights=model.get_weights(),
                  indices=seen, trained_epochs=trained,
                  batch_size=generator.batch_size)
    return result


def custom_loop(strategy, p, keras, tf, x, y, lookup, args, tf_distributed_dataset,
                all_reduce_metrics):
    with strategy.scope():
        model = p.build_model()
        optimizer = keras.optimizers.SGD(p.LEARNING_RATE)
        optimizer.build(model.trainable_variables)
        metrics = p.make_metrics()
    epochs = [int(e) for e in args.epochs.split(",")]
    dataset, generators = tf_distributed_dataset(
        strategy, x, y, global_batch_size=p.GLOBAL_BATCH, initial_epoch=epochs[0],
        sampler="over", seed=p.SEED)
    steps = len(generators[0])

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            per_sample = p.per_sample_loss(yb, logits)
            loss = tf.nn.compute_average_loss(per_sample,
                                              global_batch_size=p.GLOBAL_BATCH)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        for metric in metrics:
            metric.update_state(yb, logits)
        return loss, xb

    @tf.function
    def train_step(iterator):
        xb, yb = next(iterator)
        loss, xb = strategy.run(replica_step, args=(xb, yb))
        return strategy.reduce("SUM", loss, axis=None), xb

    history = {"loss": []}
    seen = []
    iterator = iter(dataset)  # endless: each len(generator) steps is an epoch
    for _ in epochs:
        for metric in metrics:
            metric.reset_state()
        seen.append([])
        total = 0.0
        for _ in range(steps):
            loss, xb = train_step(iterator)
            total += float(loss)
            for local in strategy.experimental_local_results(xb):
                seen[-1].extend(lookup(local.numpy()))
        history["loss"].append(total / steps)
        # Sum-on-read state: already the global value; all_reduce_metrics
        # must leave it as it is.
        before = {m.name: float(m.result()) for m in metrics}
        after = all_reduce_metrics(metrics)
        assert after == before, (before, after)
        for name, value in after.items():
            history.setdefault(name, []).append(value)
    return {"history": history,
            "weights": [keras.ops.convert_to_numpy(w) for w in model.get_weights()],
            "indices": seen, "trained_epochs": epochs,
            "batch_size": generators[0].batch_size,
            "pipelines": len(generators)}


if __name__ == "__main__":
    main()
