"""Faults survived: a run interrupted at epoch k and resumed from a backup.

`keras.callbacks.BackupAndRestore` restores the weights, the optimizer state
and fit's epoch; the generator's `sync_callback()` puts the generator on fit's
epoch. Together, the resumed run must fetch exactly the batches of an
uninterrupted run from epoch k on, and end with the same weights (CPU kernels
are deterministic on every backend).
"""

import keras
import numpy as np
import pytest

from kimbalance.data import BalancedBatchGenerator

EPOCHS = 4
INTERRUPT_AT = 2


class RecordingGenerator(BalancedBatchGenerator):
    """Logs the dataset indices of every batch it hands out, with fit's epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fit_epoch = None  # None outside an epoch (e.g. Keras' spec peeking)
        self.log = []

    def __getitem__(self, index):
        if self.fit_epoch is not None:
            self.log.append((self.fit_epoch, self.epoch, int(index),
                             self.batch_indices(index).tolist()))
        return super().__getitem__(index)


class EpochMarker(keras.callbacks.Callback):
    """Tells the recording generator which epoch of fit is running."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def on_epoch_begin(self, epoch, logs=None):
        self.generator.fit_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.generator.fit_epoch = None


class Interrupt(RuntimeError):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises at the start of epoch `epoch`, as a killed process would stop."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt(f"interrupted at epoch {epoch}")


def make_data():
    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 8 + [2] * 4)
    x = rng.normal(size=(y.size, 5)).astype("float32") + y[:, None]
    return x, y


def make_model(initial_weights=None):
    model = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if initial_weights is not None:
        model.set_weights(initial_weights)
    return model


def run(model, x, y, callbacks):
    """One `fit` of EPOCHS epochs on a fresh generator (a fresh process's view)."""
    generator = RecordingGenerator(x, y, sampler="over", batch_size=8, seed=0)
    callbacks = [*callbacks, generator.sync_callback(), EpochMarker(generator)]
    try:
        model.fit(generator, epochs=EPOCHS, shuffle=False, verbose=0,
                  callbacks=callbacks)
    except Interrupt:
        pass
    return generator.log


def by_epoch(log):
    """{fit epoch: [(generator epoch, batch index, indices), ...]}."""
    epochs = {}
    for fit_epoch, generator_epoch, index, indices in log:
        epochs.setdefault(fit_epoch, []).append((generator_epoch, index, indices))
    return epochs


def test_resumed_run_sees_the_batches_and_weights_of_an_uninterrupted_run(tmp_path):
    x, y = make_data()
    keras.utils.set_random_seed(0)
    initial = make_model().get_weights()

    reference_model = make_model(initial)
    reference = by_epoch(run(reference_model, x, y, []))
    assert sorted(reference) == list(range(EPOCHS))
    for epoch, batches in reference.items():
        # Every epoch reads the generator's epoch of the same number, batch by
        # batch, each batch once.
        assert [(e, i) for e, i, _ in batches] == [
            (epoch, i) for i in range(len(batches))]

    backup_dir = str(tmp_path / "backup")
    first = by_epoch(run(make_model(initial), x, y,
                         [keras.callbacks.BackupAndRestore(backup_dir),
                          InterruptAt(INTERRUPT_AT)]))
    assert sorted(first) == list(range(INTERRUPT_AT))

    # A new process: new model object, new generator, same backup directory.
    resumed_model = make_model(initial)
    resumed = by_epoch(run(resumed_model, x, y,
                           [keras.callbacks.BackupAndRestore(backup_dir)]))

    assert sorted(resumed) == list(range(INTERRUPT_AT, EPOCHS))
    for epoch in range(INTERRUPT_AT, EPOCHS):
        assert resumed[epoch] == reference[epoch], f"epoch {epoch}"
    for before, after in zip(reference_model.get_weights(),
                             resumed_model.get_weights(), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)
    # The epochs before the interruption are those of the reference run too.
    for epoch in range(INTERRUPT_AT):
        assert first[epoch] == reference[epoch]


@pytest.mark.parametrize("epoch", [0, 3])
def test_sync_callback_follows_initial_epoch(epoch):
    """`fit(initial_epoch=e)` reads the generator's epoch e, not e + 1."""
    x, y = make_data()
    generator = RecordingGenerator(x, y, sampler="over", batch_size=8, seed=0)
    model = make_model()
    model.fit(generator, epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
              verbose=0, callbacks=[generator.sync_callback(), EpochMarker(generator)])
    assert {(fit_epoch, generator_epoch) for fit_epoch, generator_epoch, _, _
            in generator.log} == {(epoch, epoch)}
