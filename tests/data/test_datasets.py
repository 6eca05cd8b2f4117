"""Dataset loaders: real Fashion-MNIST IDX files, digits, IDX parsing, TFDS mock."""

import gzip
import os
import sys
import tracemalloc
from unittest import mock

import numpy as np
import pytest

from kimbalance.data import Dataset, available_datasets, load_dataset, read_idx
from kimbalance.data import datasets as datasets_module
from kimbalance.data.imbalance import stratified_split

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                 "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
         np.float32: 0x0D, np.float64: 0x0E}


def _idx_bytes(array, code=None, header_shape=None):
    array = np.asarray(array)
    code = CODES[array.dtype.type] if code is None else code
    shape = array.shape if header_shape is None else header_shape
    header = bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, payload, compress=False):
    if compress:
        path = str(path) + ".gz"
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
    return str(path)


def _write_mnist_like(directory, *, n_train=12, n_test=5, compress=False,
                      names=IDX_NAMES, overrides=None):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays.update(overrides or {})
    for key, array in arrays.items():
        _write(os.path.join(directory, names[key]), _idx_bytes(array), compress)
    return arrays


# ---------------------------------------------------------------------------
# The real Fashion-MNIST files (Debian's dataset-fashion-mnist)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion():
    if not os.path.isfile(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz")):
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_DIR} (apt-get "
                    "install dataset-fashion-mnist; CI installs it)")
    with mock.patch.dict(os.environ):
        os.environ.pop("KIMBALANCE_DATA", None)
        return load_dataset("fashion_mnist")


def test_fashion_mnist_from_the_debian_files(fashion):
    assert isinstance(fashion, Dataset)
    assert fashion.x_train.shape == (60000, 28, 28, 1)
    assert fashion.x_test.shape == (10000, 28, 28, 1)
    assert fashion.x_train.dtype == np.uint8 and fashion.y_train.dtype == np.int64
    assert fashion.y_test.dtype == np.int64
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.class_names == FASHION_NAMES and fashion.num_classes == 10
    assert fashion.source == FASHION_DIR and fashion.name == "fashion_mnist"
    # The first training labels of Fashion-MNIST (ankle boot, T-shirt, ...).
    assert fashion.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert fashion.x_train.min() == 0 and fashion.x_train.max() == 255
    assert fashion.train[1] is fashion.y_train and fashion.test[0] is fashion.x_test
    assert "(60000, 28, 28, 1)" in repr(fashion)


def test_fashion_mnist_equals_an_independent_parse(fashion):
    # Oracle: the IDX layout read directly (16-byte image, 8-byte label header).
    with gzip.open(os.path.join(FASHION_DIR, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    with gzip.open(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    assert np.array_equal(fashion.y_train, labels)
    assert np.array_equal(fashion.x_test[..., 0], images)


def test_available_datasets_reports_the_debian_files(monkeypatch, fashion):
    monkeypatch.delenv("KIMBALANCE_DATA", raising=False)
    assert available_datasets()["fashion_mnist"] == FASHION_DIR


# ---------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------


def test_digits_fixed_stratified_split():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    assert ds.x_train.shape == (1347, 8, 8, 1) and ds.x_test.shape == (450, 8, 8, 1)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.class_names == tuple("0123456789") and ds.source.startswith("scikit")
    # Pinned: the split must never drift between versions.
    assert ds.y_test[:12].tolist() == [0, 5, 9, 4, 5, 6, 7, 9, 3, 4, 5, 6]
    assert np.bincount(ds.y_test).tolist() == [45, 46, 44, 46, 45, 46, 45, 45, 43, 45]
    # 0..16 intensities scaled to 0..255, exactly invertible.
    bunch = load_digits()
    train_idx, test_idx = stratified_split(bunch.target, test_size=0.25, seed=0)
    assert np.array_equal(np.round(ds.x_test[..., 0] / 255 * 16),
                          bunch.images[test_idx])
    assert np.array_equal(ds.y_train, bunch.target[train_idx])
    assert np.array_equal(load_dataset("Digits").x_train, ds.x_train)


# ---------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_every_type_code(tmp_path, compress):
    rng = np.random.default_rng(1)
    for dtype in CODES:
        array = (rng.normal(size=(3, 4, 2)) * 100).astype(dtype)
        path = _write(tmp_path / f"a-{np.dtype(dtype).name}", _idx_bytes(array),
                      compress)
        out = read_idx(path)
        assert out.dtype == np.dtype(dtype) and out.dtype.isnative
        assert np.array_equal(out, array)


def _huge_header(code=0x08):
    return bytes([0, 0, code, 3]) + np.asarray([2**31, 2**31, 4], ">u4").tobytes()


@pytest.mark.parametrize("payload, compress, pattern", [
    (b"\x01\x00\x08\x01" + bytes(8), False, r"not an IDX file: it starts with"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), False, r"unknown type code 0x07"),
    (bytes([0, 0, 0x08, 0]), False, r"0 dimensions"),
    (bytes([0, 0, 8]), False, r"truncated: the header needs 4 bytes"),
    (bytes([0, 0, 8, 2, 0, 0, 0, 2]), False, r"truncated: the shape needs 8 bytes"),
    (_idx_bytes(np.arange(6, dtype=np.uint8))[:-2], False,
     r"does not match its header: shape \(6,\) of uint8 needs 6 bytes.*holds 4 "
     r"\(truncated\)"),
    (_idx_bytes(np.arange(6, dtype=np.uint8)) + b"\x00", False,
     r"needs 6 bytes of data but the file holds 7\."),
    (_idx_bytes(np.arange(6, dtype=np.int32))[:-1], True,
     r"truncated: shape \(6,\) of int32 needs 24 bytes but the file holds only 23"),
    (_idx_bytes(np.arange(6, dtype=np.uint8)) + b"\x00", True,
     r"there is data after the 6 bytes"),
    (_huge_header(), False, r"needs 18446744073709551616 bytes"),
])
def test_read_idx_rejects_corrupt_files(tmp_path, payload, compress, pattern):
    path = _write(tmp_path / "bad-idx", payload, compress)
    with pytest.raises(ValueError, match=pattern):
        read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(np.arange(100, dtype=np.uint8)))
    path = _write(tmp_path / "cut.gz", good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cut.gz is not a readable gzip file"):
        read_idx(path)
    garbled = good[:12] + bytes(20) + good[32:]
    path = _write(tmp_path / "garbled.gz", garbled)
    with pytest.raises(ValueError, match=r"not a readable gzip file"):
        read_idx(path)


def test_read_idx_lying_gzip_header_allocates_nothing_big(tmp_path):
    # The header claims 16 EiB; the file holds 1 MiB. Reading must stop at the
    # real content with a clear error, never allocate what the header claims.
    path = _write(tmp_path / "huge", _huge_header() + bytes(1 << 20), compress=True)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"truncated: shape \(2147483648, "):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# ---------------------------------------------------------------------------
# IDX datasets from data_dir / $KIMBALANCE_DATA
# ---------------------------------------------------------------------------


def test_idx_dataset_from_data_dir(tmp_path):
    arrays = _write_mnist_like(tmp_path)
    ds = load_dataset("mnist", data_dir=tmp_path, source="idx")
    assert ds.x_train.shape == (12, 5, 4, 1) and ds.x_test.shape == (5, 5, 4, 1)
    assert np.array_equal(ds.x_train[..., 0], arrays["x_train"])
    assert ds.y_test.dtype == np.int64 and ds.y_test.tolist() == [0, 1, 2, 3, 4]
    assert ds.class_names == tuple("0123456789") and ds.source == str(tmp_path)


def test_idx_dataset_from_kimbalance_data_gz_and_dotted_names(tmp_path, monkeypatch):
    dotted = {key: name.replace("-idx", ".idx") for key, name in IDX_NAMES.items()}
    arrays = _write_mnist_like(tmp_path / "fashion-mnist", compress=True,
                               names=dotted)
    monkeypatch.setenv("KIMBALANCE_DATA", str(tmp_path))
    ds = load_dataset("fashion-mnist")
    assert ds.source == str(tmp_path / "fashion-mnist")
    assert np.array_equal(ds.x_test[..., 0], arrays["x_test"])
    assert ds.class_names == FASHION_NAMES
    found = available_datasets()
    assert found["fashion_mnist"] == str(tmp_path / "fashion-mnist")
    assert found["digits"] == "scikit-learn (bundled)"


@pytest.mark.parametrize("overrides, pattern", [
    ({"y_train": np.full(12, 10, np.uint8)}, r"train-labels-idx1-ubyte holds label "
     r"10; mnist has 10 classes"),
    ({"y_test": np.zeros(4, np.uint8)}, r"holds 5 images but .*t10k-labels.* holds "
     r"4 labels"),
    ({"x_train": np.zeros(12, np.uint8)}, r"should hold uint8 images \(N, H, W\)"),
    ({"y_train": np.zeros(12, np.int32)}, r"should hold uint8 labels"),
    ({"x_test": np.zeros((5, 4, 4), np.uint8)}, r"train images are \(5, 4\) but "
     r"test images are \(4, 4\)"),
])
def test_idx_dataset_validation(tmp_path, overrides, pattern):
    _write_mnist_like(tmp_path, overrides=overrides)
    with pytest.raises(ValueError, match=pattern):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_dataset_missing_says_where_and_how(tmp_path):
    _write_mnist_like(tmp_path / "partial")
    os.remove(tmp_path / "partial" / IDX_NAMES["y_test"])
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion_mnist", data_dir=tmp_path / "partial", source="idx")
    message = str(info.value)
    assert f"in: {tmp_path / 'partial'}, {tmp_path / 'partial' / 'fashion_mnist'}" \
        in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    assert (f"tfds build fashion_mnist --file_format=array_record "
            f"--data_dir={tmp_path / 'partial'}") in message


def test_idx_dataset_missing_without_any_location(monkeypatch):
    monkeypatch.delenv("KIMBALANCE_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"(?s)nowhere: no data_dir.*"
                       r"KIMBALANCE_DATA/mnist"):
        load_dataset("mnist", source="idx")


# ---------------------------------------------------------------------------
# TensorFlow Datasets (tfds.testing.mock_data: no download, no prepared data)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


def test_cifar10_through_tfds_data_source(tfds):
    tf_loaded_before = "tensorflow" in sys.modules
    with tfds.testing.mock_data(num_examples=7):
        ds = load_dataset("cifar10")
        again = load_dataset("CIFAR10", source="tfds", download=True)
    assert ds.x_train.shape == (7, 32, 32, 3) and ds.x_test.shape == (7, 32, 32, 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.class_names[:3] == ("airplane", "automobile", "bird")
    assert ds.source.startswith("TensorFlow Datasets ")
    assert ds.y_train.min() >= 0 and ds.y_train.max() < 10
    assert np.array_equal(ds.x_train, again.x_train)
    if not tf_loaded_before:  # random access reads need no TensorFlow
        assert "tensorflow" not in sys.modules


def test_mnist_falls_back_to_tfds_without_idx_files(tfds, tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        ds = load_dataset("mnist", data_dir=tmp_path)
        other = load_dataset("cifar100", splits=("train[:50%]", "train[50%:]"))
    assert ds.x_train.shape == (4, 28, 28, 1) and ds.source.startswith("TensorFlow")
    assert other.num_classes == 100 and other.x_test.shape == (4, 32, 32, 3)


def test_tfds_dataset_not_prepared(tfds, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(info.value)
    assert f"Looked for prepared TensorFlow Datasets data in: {tmp_path}" in message
    assert f"load_dataset('cifar10', data_dir={str(tmp_path)!r}, download=True)" \
        in message
    assert (f"tfds build cifar10 --file_format=array_record --data_dir={tmp_path}"
            in message)


def test_tfds_not_installed(monkeypatch):
    monkeypatch.setattr(datasets_module, "_import_tfds", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"pip install tensorflow-datasets"):
        load_dataset("cifar10")


@pytest.mark.tensorflow_only(reason="reads through tf.data, which imports "
                             "TensorFlow (seconds on the other backends); the "
                             "code path is backend-independent")
def test_tfrecord_prepared_data_is_read_through_tf_data(tfds):
    builder_cls = tfds.core.dataset_builder.DatasetBuilder

    def no_random_access(self, *args, **kwargs):
        raise NotImplementedError("Random access data source for file format "
                                  "FileFormat.TFRECORD is not supported.")

    with tfds.testing.mock_data(num_examples=5), \
            mock.patch.object(builder_cls, "as_data_source", no_random_access), \
            mock.patch.object(builder_cls, "is_prepared", lambda self: True):
        ds = load_dataset("cifar10")
    assert ds.x_train.shape == (5, 32, 32, 3) and ds.y_test.dtype == np.int64
    assert ds.source.endswith("(tf.data)")


def test_tfds_items_must_be_fixed_shape_images():
    items = [{"image": np.zeros((4, 4, 3), np.uint8), "label": 0},
             {"image": np.zeros((5, 4, 3), np.uint8), "label": 1}]
    with pytest.raises(ValueError, match=r"images of different shapes"):
        datasets_module._read_random_access(items, "train", "cats_vs_dogs")
    with pytest.raises(ValueError, match=r"argument `name`.*'image' and 'label'.*"
                       r"\['text'\]"):
        datasets_module._read_random_access([{"text": b"x"}], "train", "imdb")
    gray = [{"image": np.ones((3, 3), np.uint8), "label": np.int64(2)}]
    images, labels = datasets_module._read_random_access(gray, "train", "gray")
    assert images.shape == (1, 3, 3, 1) and labels.tolist() == [2]


def test_unknown_tfds_name(tfds):
    with pytest.raises(ValueError, match=r"argument `name`.*'digits'.*cifar10.*"
                       r"Received: name='not_a_dataset_xyz'"):
        load_dataset("not_a_dataset_xyz")


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("args, kwargs, pattern", [
    ((3,), {}, r"argument `name`.*Received: name=3"),
    (("  ",), {}, r"argument `name`.*Received: name='  '"),
    (("digits",), dict(source="hub"), r"argument `source`.*'auto', 'idx', 'tfds'"
     r".*Received: source='hub'"),
    (("digits",), dict(source="tfds"), r"`source`.*'auto' for 'digits'"),
    (("digits",), dict(splits=("a", "b")), r"`splits`.*None for 'digits'"),
    (("cifar10",), dict(source="idx"), r"`source`.*'auto' or 'tfds' for 'cifar10'"),
    (("cifar10",), dict(download="yes"), r"`download`.*Received: download='yes'"),
    (("cifar10",), dict(splits="train"), r"`splits`.*a pair of TFDS split names"),
    (("cifar10",), dict(splits=("train",)), r"`splits`.*Received: splits=\('train',"),
    (("mnist",), dict(splits=("train", "test")), r"`splits`.*None for IDX files"),
    # Before: os.fspath(3) raised a bare TypeError deep inside the loader.
    (("mnist",), dict(data_dir=3), r"argument `data_dir`. Expected a path \(a str "
     r"or os.PathLike\) or None. Received: data_dir=3"),
    (("digits",), dict(data_dir=b"/tmp"), r"argument `data_dir`. Expected a path"),
    (("mnist",), dict(data_dir=""), r"argument `data_dir`. Expected a non-empty "
     r"path"),
    (("digits",), dict(download=1), r"`download`. Expected a bool. "
     r"Received: download=1"),
])
def test_load_dataset_bad_arguments(args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_dataset(*args, **kwargs)


def test_available_datasets_finds_prepared_tfds_data(tmp_path):
    info = tmp_path / "cifar10" / "3.0.2" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text("{}")
    (tmp_path / "cifar100" / "3.0.2").mkdir(parents=True)  # not prepared
    _write_mnist_like(tmp_path / "mnist")
    found = available_datasets(tmp_path)
    assert found["cifar10"] == str(info.parent)
    assert found["cifar100"] is None
    assert found["mnist"] == str(tmp_path / "mnist")
    assert set(found) == {"digits", "fashion_mnist", "mnist", "cifar10", "cifar100"}


def test_path_arguments_must_be_paths():
    with pytest.raises(ValueError, match=r"argument `path`. Expected a path \(a str "
                       r"or os.PathLike\). Received: path=3"):
        read_idx(3)
    with pytest.raises(ValueError, match=r"argument `data_dir`. Expected a path.*"
                       r"Received: data_dir=\['/tmp'\]"):
        available_datasets(["/tmp"])
