"""Dataset loaders: embedded digits, local IDX files, TensorFlow Datasets.

Every loader returns a `Dataset` of NumPy arrays with one convention:

- images: `uint8` arrays of shape (N, H, W, C) with values in [0, 255]
  (divide by 255 for [0, 1] inputs);
- labels: `int64` class ids of shape (N,);
- `class_names`: a tuple of strings, one per class.

Sources, tried in this order with `source="auto"`:

- `"digits"`: scikit-learn's bundled 8x8 digits (always offline).
- `"fashion_mnist"`, `"mnist"`: IDX files (`.gz` or plain) in `data_dir`, else
  `$KIMBALANCE_DATA`, else Debian's `/usr/share/datasets/fashion-mnist`
  (`apt-get install dataset-fashion-mnist`); else TensorFlow Datasets.
- `"cifar10"`, `"cifar100"` and other TFDS image / label datasets: TensorFlow
  Datasets (prepared data in `data_dir`, `$TFDS_DATA_DIR` or
  `~/tensorflow_datasets`).

TensorFlow Datasets is read through `tfds.data_source` (random access over
ArrayRecord files): no `tf.data` and no TensorFlow import. Only a dataset that
was prepared in the TFRecord format is read through `tf.data` (which imports
TensorFlow). Nothing is downloaded unless `download=True`.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

from kimbalance._validation import check_bool, check_choice, check_path, invalid
from kimbalance.data.imbalance import stratified_split

__all__ = [
    "Dataset",
    "load_dataset",
    "available_datasets",
    "read_idx",
    "DIGITS_TEST_SIZE",
]

#: Fraction of scikit-learn's digits held out as the fixed test split.
DIGITS_TEST_SIZE = 0.25

_SOURCES = ("auto", "idx", "tfds")
_IDX_NAMES = ("fashion_mnist", "mnist")
_SYSTEM_DIRS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}
_APT_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}
_IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_CLASS_NAMES = {
    "digits": tuple(str(i) for i in range(10)),
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                "horse", "ship", "truck"),
}
# IDX type codes (LeCun's format): data are big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8),
               0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CHUNK = 1 << 22


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train / test pair of NumPy arrays.

    Attributes:
        x_train: uint8 images (N, H, W, C) in [0, 255].
        y_train: int64 class ids (N,).
        x_test: uint8 images (M, H, W, C) in [0, 255].
        y_test: int64 class ids (M,).
        class_names: tuple of C class names.
        name: the dataset's name.
        source: where the arrays were read from (a path, or a description).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    name: str = ""
    source: str = ""

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """`(x_train, y_train)`."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """`(x_test, y_test)`."""
        return self.x_test, self.y_test

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, x_train={_shape(self.x_train)}, "
                f"x_test={_shape(self.x_test)}, num_classes={self.num_classes}, "
                f"source={self.source!r})")


def _shape(x):
    return f"<{x.dtype} array {tuple(x.shape)}>"


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open(path, compressed):
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exact(stream, size, path, what):
    """Reads `size` bytes in bounded chunks: a lying header cannot allocate more
    than the file really holds."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(_CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    if len(buffer) < size:
        raise ValueError(f"IDX file {path} is truncated: {what} needs {size} bytes "
                         f"but the file holds only {len(buffer)}.")
    return buffer


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (LeCun's MNIST format), plain or gzip-compressed.

    The header is validated (two zero bytes, a known type code, 1 to 8
    dimensions) and the data must have exactly the size the header declares:
    a truncated, padded or corrupt file raises a ValueError naming the file. The
    file is read in bounded chunks, so a corrupt header never causes an
    allocation larger than the file's real content.

    Args:
        path: the file (gzip-compressed files are recognised by their magic
            bytes and decompressed).

    Returns:
        A NumPy array of the declared shape, in native byte order
        (uint8, int8, int16, int32, float32 or float64).

    Raises:
        ValueError: for a `path` that is not a str / `os.PathLike`, or a file
            that is not a valid IDX file.
        FileNotFoundError: if `path` does not exist.

    Examples:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 2]))
    >>> read_idx(path).tolist()
    [7, 1, 2]
    """
    path = check_path("path", path)
    compressed = _is_gzip(path)
    try:
        with _open(path, compressed) as stream:
            header = _read_exact(stream, 4, path, "the header")
            if header[0] != 0 or header[1] != 0:
                raise ValueError(f"{path} is not an IDX file: it starts with "
                                 f"{bytes(header[:4])!r}, not two zero bytes.")
            code, ndim = header[2], header[3]
            if code not in _IDX_DTYPES:
                raise ValueError(f"{path} is not an IDX file: unknown type code "
                                 f"0x{code:02X} (expected one of "
                                 f"{[f'0x{c:02X}' for c in _IDX_DTYPES]}).")
            if not 1 <= ndim <= 8:
                raise ValueError(f"{path} is not a supported IDX file: {ndim} "
                                 "dimensions (expected 1 to 8).")
            dims = np.frombuffer(_read_exact(stream, 4 * ndim, path, "the shape"),
                                 dtype=">u4")
            shape = tuple(int(d) for d in dims)
            dtype = _IDX_DTYPES[code]
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if not compressed:
                actual = os.path.getsize(path) - 4 - 4 * ndim
                if actual != size:
                    raise ValueError(
                        f"IDX file {path} does not match its header: shape {shape} "
                        f"of {dtype.name} needs {size} bytes of data but the file "
                        f"holds {actual}" + (" (truncated)." if actual < size
                                             else "."))
            data = _read_exact(stream, size, path, f"shape {shape} of {dtype.name}")
            if stream.read(1):
                raise ValueError(f"IDX file {path} does not match its header: "
                                 f"there is data after the {size} bytes that shape "
                                 f"{shape} of {dtype.name} needs.")
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is not a readable gzip file ({err}); the "
                         "download may be truncated or corrupt.") from None
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=dtype.itemsize > 1)


def _find_file(directory, names):
    for name in names:
        for candidate in (name + ".gz", name):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                return path
    return None


def _idx_dirs(name, data_dir):
    """Directories that may hold the IDX files of `name`, in search order."""
    roots = []
    if data_dir is not None:
        roots.append(os.fspath(data_dir))
    else:
        env = os.environ.get("KIMBALANCE_DATA")
        if env:
            roots.append(env)
    dirs = []
    for root in roots:
        dirs += [root, os.path.join(root, name),
                 os.path.join(root, name.replace("_", "-"))]
    if data_dir is None:
        dirs += list(_SYSTEM_DIRS.get(name, ()))
    return list(dict.fromkeys(dirs))


def _find_idx(name, data_dir):
    """Returns (directory, {key: path}) of the first complete set, or None."""
    for directory in _idx_dirs(name, data_dir):
        files = {key: _find_file(directory, names) for key, names in
                 _IDX_FILES.items()}
        if all(files.values()):
            return directory, files
    return None


def _load_idx(name, directory, files):
    arrays = {key: read_idx(path) for key, path in files.items()}
    num_classes = len(_CLASS_NAMES[name])
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        x_path, y_path = files[f"x_{split}"], files[f"y_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise ValueError(f"{x_path} should hold uint8 images (N, H, W); it "
                             f"holds {x.dtype} of shape {x.shape}.")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise ValueError(f"{y_path} should hold uint8 labels (N,); it holds "
                             f"{y.dtype} of shape {y.shape}.")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{x_path} holds {x.shape[0]} images but {y_path} "
                             f"holds {y.shape[0]} labels.")
        if y.size and y.max() >= num_classes:
            raise ValueError(f"{y_path} holds label {int(y.max())}; {name} has "
                             f"{num_classes} classes.")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(f"{directory}: train images are "
                         f"{arrays['x_train'].shape[1:]} but test images are "
                         f"{arrays['x_test'].shape[1:]}.")
    return Dataset(
        x_train=arrays["x_train"][..., None],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"][..., None],
        y_test=arrays["y_test"].astype(np.int64),
        class_names=_CLASS_NAMES[name], name=name, source=directory,
    )


# ---------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------


def _load_digits():
    bunch = load_digits()
    # 0..16 intensities -> 0..255, exactly invertible: np.round(x / 255 * 16).
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, test_size=DIGITS_TEST_SIZE, seed=0)
    return Dataset(
        x_train=images[train_idx], y_train=labels[train_idx],
        x_test=images[test_idx], y_test=labels[test_idx],
        class_names=_CLASS_NAMES["digits"], name="digits",
        source="scikit-learn (bundled)",
    )


# ---------------------------------------------------------------------------
# TensorFlow Datasets
# ---------------------------------------------------------------------------


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    return tfds


def _tfds_build_command(name, data_dir):
    command = f"tfds build {name} --file_format=array_record"
    if data_dir is not None:
        command += f" --data_dir={os.fspath(data_dir)}"
    return command


def _tfds_builder(tfds, name, data_dir, download):
    kwargs = {"file_format": "array_record"} if download else {}
    try:
        return tfds.builder(name, data_dir=None if data_dir is None
                            else os.fspath(data_dir), **kwargs)
    except tfds.core.registered.DatasetNotFoundError:
        raise invalid("name", f"'digits', one of {list(_IDX_NAMES)}, or the name of "
                      "a TensorFlow Datasets image classification dataset such as "
                      "'cifar10' or 'cifar100'", name) from None


def _read_random_access(source, split_name, dataset_name):
    """Stacks `image` / `label` items of a random-access source, one by one
    (`__getitems__` is not used: tfds's test mock breaks it)."""
    num = len(source)
    if num == 0:
        raise ValueError(f"TFDS split {split_name!r} of {dataset_name} is empty.")
    images = None
    labels = np.empty(num, dtype=np.int64)
    for i in range(num):
        image, label = _image_label(source[i], dataset_name)
        if images is None:
            images = np.empty((num, *image.shape), dtype=np.uint8)
        if image.shape != images.shape[1:]:
            raise ValueError(f"{dataset_name} has images of different shapes "
                             f"({images.shape[1:]} and {image.shape}); load_dataset "
                             "needs a fixed image shape.")
        images[i] = image
        labels[i] = label
    return images, labels


def _image_label(item, dataset_name):
    if not isinstance(item, dict) or "image" not in item or "label" not in item:
        keys = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise invalid("name", "a TFDS dataset with 'image' and 'label' features "
                      f"({dataset_name} has {keys})", dataset_name)
    image = np.asarray(item["image"])
    if image.dtype != np.uint8:
        raise ValueError(f"{dataset_name} images are {image.dtype}, not uint8.")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"{dataset_name} images have shape {image.shape}, not "
                         "(H, W, C).")
    return image, int(np.asarray(item["label"]))


def _read_tf_data(tfds: Any, builder: Any, split: str,
                  dataset_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads a TFRecord-prepared split through tf.data (imports TensorFlow)."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    for item in tfds.as_numpy(builder.as_dataset(split=split)):
        image, label = _image_label(item, dataset_name)
        if images and image.shape != images[0].shape:
            raise ValueError(f"{dataset_name} has images of different shapes "
                             f"({images[0].shape} and {image.shape}); load_dataset "
                             "needs a fixed image shape.")
        images.append(image)
        labels.append(label)
    if not images:
        raise ValueError(f"TFDS split {split!r} of {dataset_name} is empty.")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _tfds_class_names(builder, dataset_name, num_classes_seen):
    try:
        names = tuple(str(n) for n in builder.info.features["label"].names)
    except (KeyError, AttributeError, TypeError):
        names = ()
    known = _CLASS_NAMES.get(dataset_name)
    placeholder = tuple(str(i) for i in range(len(names)))
    if known is not None and (not names or (names == placeholder
                                            and len(names) == len(known))):
        return known  # unprepared builders (and the test mock) know no names
    return names or tuple(str(i) for i in range(num_classes_seen))


def _load_tfds(name, data_dir, download, splits, looked_in=()):
    tfds = _import_tfds()
    if tfds is None:
        raise FileNotFoundError(_missing_message(
            name, data_dir, looked_in, tfds_path=None,
            extra="TensorFlow Datasets is not installed: `pip install "
                  "tensorflow-datasets`."))
    builder = _tfds_builder(tfds, name, data_dir, download)
    if download:
        builder.download_and_prepare()
    arrays = []
    try:
        for split in splits:
            source = builder.as_data_source(split=split)
            arrays.append(_read_random_access(source, split, name))
        where = f"TensorFlow Datasets {builder.data_path}"
    except (KeyError, NotImplementedError, OSError, AssertionError):
        if not builder.is_prepared():
            raise FileNotFoundError(_missing_message(
                name, data_dir, looked_in, tfds_path=builder.data_path)) from None
        file_format = getattr(builder.info, "file_format", None)
        if file_format in tfds.core.file_adapters.FileFormat.with_random_access():
            raise
        arrays = [_read_tf_data(tfds, builder, split, name) for split in splits]
        where = f"TensorFlow Datasets {builder.data_path} (tf.data)"
    (x_train, y_train), (x_test, y_test) = arrays
    num_seen = int(max(y_train.max(), y_test.max())) + 1
    class_names = _tfds_class_names(builder, name, num_seen)
    if num_seen > len(class_names):
        raise ValueError(f"{name} holds label {num_seen - 1} but has "
                         f"{len(class_names)} class names.")
    return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=class_names, name=name, source=where)


def _missing_message(name, data_dir, looked_in, tfds_path, extra=None):
    lines = [f"Dataset {name!r} was not found."]
    if name in _IDX_NAMES:
        files = ", ".join(names[0] + "[.gz]" for names in _IDX_FILES.values())
        where = ", ".join(looked_in) if looked_in else (
            "nowhere: no data_dir was given and $KIMBALANCE_DATA is not set")
        lines.append(f"Looked for the IDX files ({files}) in: {where}.")
    if tfds_path is not None:
        lines.append(f"Looked for prepared TensorFlow Datasets data in: {tfds_path}.")
    lines.append("To get it, one of:")
    if name in _APT_PACKAGES:
        lines.append(f"  apt-get install {_APT_PACKAGES[name]}")
    if name in _IDX_NAMES:
        lines.append(f"  put the four IDX files in $KIMBALANCE_DATA/{name} (or pass "
                     "data_dir=...)")
    data_dir_arg = "" if data_dir is None else f", data_dir={os.fspath(data_dir)!r}"
    lines.append(f"  load_dataset({name!r}{data_dir_arg}, download=True)  "
                 "(downloads through TensorFlow Datasets)")
    lines.append(f"  {_tfds_build_command(name, data_dir)}")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------


def _normalise_name(name):
    if not isinstance(name, str) or not name.strip():
        raise invalid("name", "a dataset name such as 'digits', 'fashion_mnist' or "
                      "'cifar10'", name)
    return name.strip().lower().replace("-", "_")


def _check_splits(splits):
    if splits is None:
        return ("train", "test")
    if (isinstance(splits, str) or not isinstance(splits, list | tuple)
            or len(splits) != 2 or not all(isinstance(s, str) and s for s in splits)):
        raise invalid("splits", "a pair of TFDS split names for (train, test), "
                      "e.g. ('train', 'test') or ('train[:80%]', 'train[80%:]')",
                      splits)
    return tuple(splits)


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None,
                 source: str = "auto", download: bool = False,
                 splits: Sequence[str] | None = None) -> Dataset:
    """Loads a labelled image dataset as NumPy arrays.

    `"digits"` is scikit-learn's bundled 8x8 digits (1797 images), always
    available offline, as (N, 8, 8, 1) uint8 images whose 0..16 intensities are
    scaled to 0..255 (`round(v * 255 / 16)`; `np.round(x / 255 * 16)` inverts
    it exactly), with a fixed stratified train / test split (25% test, seed 0:
    1347 / 450 images).

    `"fashion_mnist"` and `"mnist"` are read from local IDX files (`.gz` or
    plain; the four files `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`) found in `data_dir` (or
    its `<name>` subfolder) when given, else in `$KIMBALANCE_DATA` (or its
    `<name>` subfolder), else in Debian's `/usr/share/datasets/fashion-mnist`
    (`apt-get install dataset-fashion-mnist`); when none is there (or with
    `source="tfds"`), from TensorFlow Datasets.

    Any other name, e.g. `"cifar10"` or `"cifar100"`, is a TensorFlow Datasets
    image classification dataset with `image` and `label` features, read from
    prepared data (in `data_dir`, `$TFDS_DATA_DIR` or `~/tensorflow_datasets`)
    through `tfds.data_source`, without TensorFlow. Nothing is downloaded unless
    `download=True` (which prepares ArrayRecord files).

    Args:
        name: dataset name (case-insensitive; `-` and `_` are the same).
        data_dir: directory holding the IDX files, or the TFDS data directory.
        source: `"auto"`, `"idx"` (local IDX files only) or `"tfds"`
            (TensorFlow Datasets only). `"digits"` takes only `"auto"`.
        download: let TensorFlow Datasets download and prepare the data.
        splits: TFDS only: the (train, test) split names, default
            `("train", "test")`; e.g. `("train[:80%]", "train[80%:]")` for a
            dataset with no test split.

    Returns:
        A `Dataset` with `x_train`, `y_train`, `x_test`, `y_test` (uint8 images
        (N, H, W, C) in [0, 255] and int64 labels), `class_names`, `name` and
        `source` (where it was read from).

    Raises:
        ValueError: for an unknown name, a `data_dir` that is not a path, an
            invalid `source` / `splits` / `download`, or a corrupt file.
        FileNotFoundError: when the dataset is not available locally; the
            message lists where it looked and the command that gets it.

    Examples:

    >>> ds = load_dataset("digits")
    >>> ds.x_train.shape, ds.x_train.dtype.name, ds.y_train.dtype.name
    ((1347, 8, 8, 1), 'uint8', 'int64')
    >>> int(ds.x_train.max()), ds.class_names[:3]
    (255, ('0', '1', '2'))
    """
    name = _normalise_name(name)
    data_dir = check_path("data_dir", data_dir, allow_none=True)
    check_choice("source", source, _SOURCES)
    check_bool("download", download)
    if name == "digits":
        if source != "auto":
            raise invalid("source", "'auto' for 'digits' (it is bundled with "
                          "scikit-learn)", source)
        if splits is not None:
            raise invalid("splits", "None for 'digits' (its split is fixed)", splits)
        return _load_digits()
    if name not in _IDX_NAMES and source == "idx":
        raise invalid("source", f"'auto' or 'tfds' for {name!r} (IDX files exist "
                      f"only for {list(_IDX_NAMES)})", source)
    if name in _IDX_NAMES and source != "tfds":
        if splits is not None:
            raise invalid("splits", "None for IDX files (use source='tfds' to pick "
                          "TFDS splits)", splits)
        found = _find_idx(name, data_dir)
        if found is not None:
            return _load_idx(name, *found)
        looked_in = _idx_dirs(name, data_dir)
        if source == "idx":
            raise FileNotFoundError(_missing_message(name, data_dir, looked_in,
                                                     tfds_path=None))
        return _load_tfds(name, data_dir, download, ("train", "test"), looked_in)
    return _load_tfds(name, data_dir, download, _check_splits(splits))


#: The datasets `available_datasets` reports on.
_REPORTED = ("digits", "fashion_mnist", "mnist", "cifar10", "cifar100")


def _tfds_data_dir(data_dir):
    if data_dir is not None:
        return os.fspath(data_dir)
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets")


def _prepared_tfds(name, data_dir):
    """A prepared TFDS version folder of `name` (checked on disk, no import)."""
    root = os.path.join(_tfds_data_dir(data_dir), name)
    if not os.path.isdir(root):
        return None
    for version in sorted(os.listdir(root), reverse=True):
        path = os.path.join(root, version)
        if os.path.isfile(os.path.join(path, "dataset_info.json")):
            return path
    return None


def available_datasets(data_dir: str | os.PathLike | None = None,
                       ) -> dict[str, str | None]:
    """Where each well-known dataset is found locally (without loading it).

    Args:
        data_dir: as in `load_dataset`.

    Returns:
        A dict mapping `"digits"`, `"fashion_mnist"`, `"mnist"`, `"cifar10"` and
        `"cifar100"` to the directory they would be loaded from (a string), or
        None when `load_dataset` would need `download=True`.

    Examples:

    >>> available_datasets()["digits"]
    'scikit-learn (bundled)'
    """
    data_dir = check_path("data_dir", data_dir, allow_none=True)
    found: dict[str, str | None] = {}
    for name in _REPORTED:
        if name == "digits":
            found[name] = "scikit-learn (bundled)"
            continue
        where = None
        if name in _IDX_NAMES:
            idx = _find_idx(name, data_dir)
            where = idx[0] if idx is not None else None
        found[name] = where or _prepared_tfds(name, data_dir)
    return found
