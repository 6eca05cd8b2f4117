"""The small imbalanced problem every distributed test trains (shared by workers).

Three classes of 40 / 16 / 8 samples, over-sampled to a balanced epoch of 120
samples, global batches of 8 (15 steps per epoch), a 4-16-3 MLP from fixed
initial weights, focal loss from logits and plain SGD: data-parallel runs
on the sharded generators must follow the single-process run on the global
batches up to float32 rounding.
"""

import json
import pathlib

import numpy as np

NUM_CLASSES = 3
COUNTS = (40, 16, 8)
GLOBAL_BATCH = 8
EPOCHS = 2
LEARNING_RATE = 0.1
SEED = 3
GAMMA = 2.0


def make_data():
    rng = np.random.default_rng(7)
    y = np.repeat(np.arange(NUM_CLASSES), COUNTS)
    y = y[rng.permutation(y.shape[0])].astype(np.int32)
    means = np.array([[1.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 1.5, 0]])
    x = rng.normal(size=(y.shape[0], 4)) + means[y]
    return x.astype(np.float32), y


def make_generator(x, y, **kwargs):
    from kimbalance.data import BalancedBatchGenerator

    return BalancedBatchGenerator(x, y, sampler="over", seed=SEED, **kwargs)


def initial_weights():
    rng = np.random.default_rng(11)
    return [
        (rng.normal(size=(4, 16)) * 0.5).astype(np.float32),
        np.zeros(16, np.float32),
        (rng.normal(size=(16, NUM_CLASSES)) * 0.5).astype(np.float32),
        np.zeros(NUM_CLASSES, np.float32),
    ]


def build_model():
    import keras

    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.set_weights(initial_weights())
    return model


def make_loss():
    from kimbalance.losses import FocalCrossentropy

    return FocalCrossentropy(gamma=GAMMA, from_logits=True)


def per_sample_loss(y, logits):
    from kimbalance.losses import focal_crossentropy

    return focal_crossentropy(y, logits, gamma=GAMMA, from_logits=True)


def make_metrics():
    from kimbalance.metrics import BalancedAccuracy, GeometricMean, MacroF1

    return [BalancedAccuracy(NUM_CLASSES), GeometricMean(NUM_CLASSES),
            MacroF1(NUM_CLASSES)]


def forward(weights, x):
    """The MLP in float64 NumPy (for metrics of final weights)."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in weights)
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def row_index(x):
    """Maps each row of x (its bytes) to its index: recovers what a batch held."""
    table = {row.tobytes(): i for i, row in enumerate(np.asarray(x))}

    def lookup(batch):
        return [table[row.tobytes()] for row in np.asarray(batch)]

    return lookup


def write_result(out, rank, **data):
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if hasattr(value, "tolist"):
            return value.tolist()
        return value

    path = pathlib.Path(out) / f"result_{rank}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plain(data)))
    tmp.replace(path)


def worker_arguments(extra=()):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rank", type=int, required=True)
    for name, kind in extra:
        parser.add_argument(name, type=kind)
    return parser.parse_args()


# Checks shared by the engine tests (run in the pytest process) -------------


def reference_run():
    """The single-process run on the global batches: history and weights."""
    import keras

    x, y = make_data()
    generator = make_generator(x, y, batch_size=GLOBAL_BATCH)
    model = build_model()
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=make_loss(),
                  metrics=make_metrics())
    trained = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            trained.append(generator.epoch)

    history = model.fit(generator, epochs=EPOCHS, shuffle=False, verbose=0,
                        callbacks=[Record()])
    # Keras' fit calls on_epoch_end once before the first epoch (its
    # EpochIterator.reset()), so it trains on sampler epochs 1..EPOCHS.
    epochs = [generator.sampler.indices(e) for e in trained]
    return {"history": history.history, "weights": model.get_weights(),
            "epochs": epochs, "trained_epochs": trained}


def check_shards(per_rank, reference, *, batch_size):
    """Every rank's epoch is its own slice of each global batch, balanced.

    `per_rank[r][e]` lists the dataset indices rank r trained on in epoch e,
    in order. Rebuilding the global batches from the ranks' batches must
    give the single-process epoch exactly, so positions are disjoint and
    their union is the epoch; each rank's share is balanced.
    """
    _, y = make_data()
    ranks = len(per_rank)
    assert all(len(rank_epochs) == len(reference["epochs"]) for rank_epochs in per_rank)
    for epoch, expected in enumerate(reference["epochs"]):
        shards = [np.asarray(rank_epochs[epoch]) for rank_epochs in per_rank]
        assert all(s.shape[0] == expected.shape[0] // ranks for s in shards)
        # Step by step, the ranks' batches together are the global batch (as
        # a set: each rank's batch is a stratified deal of it).
        for i in range(0, shards[0].shape[0], batch_size):
            step = np.concatenate([shards[r][i:i + batch_size] for r in range(ranks)])
            np.testing.assert_array_equal(
                np.sort(step), np.sort(expected[i * ranks:(i + batch_size) * ranks]))
        np.testing.assert_array_equal(np.sort(np.concatenate(shards)),
                                      np.sort(expected))
        # Over-sampling balances the epoch exactly (40 / 40 / 40) and each
        # shard in expectation: far from the data's 40 : 8.
        np.testing.assert_array_equal(np.bincount(y[expected]), [40, 40, 40])
        for shard in shards:
            counts = np.bincount(y[shard], minlength=NUM_CLASSES)
            assert counts.max() / counts.min() <= 2.0, counts


def check_training(result, reference, *, rtol=1e-4, atol=1e-5):
    """Same epoch losses and metrics, same final weights; the loss decreased."""
    history = result["history"]
    assert result["trained_epochs"] == reference["trained_epochs"]
    assert history["loss"][-1] < history["loss"][0]
    for name, values in reference["history"].items():
        np.testing.assert_allclose(history[name], values, rtol=rtol, atol=atol,
                                   err_msg=name)
    for got, want in zip(result["weights"], reference["weights"], strict=True):
        np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=rtol,
                                   atol=atol)


def global_metric_values(weights, epoch_indices):
    """Metrics of `weights` on one whole epoch, in one process (the truth)."""
    import keras

    x, y = make_data()
    metrics = make_metrics()
    logits = forward(weights, x[epoch_indices]).astype(np.float32)
    for metric in metrics:
        metric.update_state(y[epoch_indices], logits)
    states = [keras.ops.convert_to_numpy(m.confusion_matrix) for m in metrics]
    return {m.name: float(m.result()) for m in metrics}, states
