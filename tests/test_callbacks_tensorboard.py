"""ClassReport(log_dir=...): TensorBoard event files, read back by TensorFlow."""

import io
import os
import struct

import keras
import numpy as np
import pytest

import kimbalance.callbacks as callbacks_module
from kimbalance.callbacks import ClassReport, EventFileWriter, crc32c

X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.2, 0.9], [0.9, 0.1],
              [0.5, 0.5]], "float32")
Y = np.array([0, 1, 1, 2, 0, 2])


def read_events(folder):
    """{tag: {step: value or PNG bytes}} from every events file in `folder`."""
    tf = pytest.importorskip(
        "tensorflow", reason="TensorFlow's summary_iterator reads the event files")
    files = sorted(f for f in os.listdir(folder) if "tfevents" in f)
    assert files, os.listdir(folder)
    tags, versions = {}, []
    for name in files:
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
            if event.file_version:
                versions.append(event.file_version)
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                entry = (value.simple_value if kind == "simple_value"
                         else value.image.encoded_image_string)
                tags.setdefault(value.tag, {})[event.step] = entry
                if kind == "image":
                    png = value.image.encoded_image_string
                    assert struct.unpack(">II", png[16:24]) == (value.image.width,
                                                                value.image.height)
    assert versions == ["brain.Event:2"] * len(files)
    return tags, files


def small_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fit_writes_per_class_scalars_and_the_confusion_matrix(tmp_path):
    report = ClassReport((X, Y), log_dir=tmp_path)
    history = small_model().fit(X, Y, epochs=2, verbose=0, callbacks=[report])
    assert report.tensorboard_run_dir == os.path.join(tmp_path, "validation")
    tags, files = read_events(tmp_path / "validation")
    assert len(files) == 1
    for key, values in history.history.items():
        if not key.startswith("val_"):
            continue
        tag = "epoch_" + key[len("val_"):]
        assert sorted(tags[tag]) == [0, 1], tag
        np.testing.assert_allclose([tags[tag][0], tags[tag][1]], values, rtol=1e-6)
    for c in range(3):
        assert {f"epoch_recall_{c}", f"epoch_precision_{c}", f"epoch_f1_{c}"} <= set(
            tags)
    images = tags["epoch_confusion_matrix"]
    assert sorted(images) == [0, 1]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images.values())


def test_each_fit_starts_a_new_file_and_prefix_names_the_run(tmp_path):
    report = ClassReport((X, Y), log_dir=str(tmp_path), prefix="test_",
                         write_confusion_matrix=False)
    model = small_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[report])
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[report])
    tags, files = read_events(tmp_path / "test")
    assert len(files) == 2
    assert "epoch_confusion_matrix" not in tags and "epoch_g_mean" in tags


def test_scalars_equal_the_report_scores(tmp_path):
    """Oracle: the scores `evaluate_model` returns, float32 as TensorBoard stores."""
    model = small_model()
    report = ClassReport((X, Y), log_dir=tmp_path)
    report.set_model(model)
    report.on_epoch_end(5, logs={})
    report.on_train_end()
    scores = report.evaluate_model()
    tags, _ = read_events(tmp_path / "validation")
    for key, value in scores.items():
        assert tags["epoch_" + key[4:]] == {5: pytest.approx(np.float32(value))}


def test_multi_hot_labels_log_scalars_without_a_confusion_matrix(tmp_path):
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 1], [1, 0], [0, 0]])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.BinaryCrossentropy(from_logits=True))
    report = ClassReport((X, y), log_dir=tmp_path, from_logits=True)
    model.fit(X, y.astype("float32"), epochs=1, verbose=0, callbacks=[report])
    tags, _ = read_events(tmp_path / "validation")
    assert "epoch_micro_f1" in tags and "epoch_confusion_matrix" not in tags


def test_heatmap_without_matplotlib_shows_the_row_normalised_matrix(monkeypatch):
    pil = pytest.importorskip("PIL.Image", reason="Pillow decodes the PNG")
    real_find_spec = callbacks_module.importlib.util.find_spec
    monkeypatch.setattr(callbacks_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib"
                        else real_find_spec(name, *a))
    from kimbalance.evaluation import evaluate

    predictions = np.eye(3)[[0, 1, 0, 2, 0, 1]]
    report = evaluate(predictions, Y)
    image = np.asarray(pil.open(io.BytesIO(callbacks_module.confusion_matrix_png(
        report))).convert("RGB")).astype(np.float64)
    cell = 256 // 3
    assert image.shape == (3 * cell, 3 * cell, 3)
    counts = report.confusion_matrix.astype(np.float64)
    recall = counts / counts.sum(axis=1, keepdims=True)
    white, blue = np.array([247.0, 251.0, 255.0]), np.array([8.0, 48.0, 107.0])
    for i in range(3):
        for j in range(3):
            centre = image[i * cell + cell // 2, j * cell + cell // 2]
            np.testing.assert_allclose(centre, white + recall[i, j] * (blue - white),
                                       atol=0.5)


def test_crc32c_known_values():
    # RFC 3720 (iSCSI) test vectors of CRC-32C.
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(bytes([0xFF] * 32)) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


def test_writer_records_read_back_in_order(tmp_path):
    writer = EventFileWriter(tmp_path / "run")
    for step in range(3):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.add_scalar("big_step", 2.5, 2**40)
    writer.close()
    writer.close()
    tags, _ = read_events(tmp_path / "run")
    assert tags["loss"] == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3)}
    assert tags["big_step"] == {2**40: 2.5}


@pytest.mark.parametrize("kwargs, message", [
    ({"log_dir": 3}, "argument `log_dir`"),
    ({"log_dir": __file__}, "argument `log_dir`.*folder"),
    ({"log_dir": "logs", "write_confusion_matrix": "yes"},
     "argument `write_confusion_matrix`"),
])
def test_invalid_tensorboard_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassReport((X, Y), **kwargs)
