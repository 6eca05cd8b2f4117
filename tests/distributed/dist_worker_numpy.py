"""Worker: a NumPy-only process that imports `kimbalance.data` and nothing else.

JAX and TensorFlow reserve gigabytes of address space when they start, so the
address-space limit (`RLIMIT_AS`) is only meaningful in a process that never
loads them: `KERAS_BACKEND=numpy` and `kimbalance.data` imported without the
package `__init__` (which loads the losses and metrics).

`--mode memmap`: an epoch from a `numpy.memmap` whose copy does not fit under
the limit, then from a file read row by row (`len()` + indexing) that does
not even fit in the address space. `--mode workers`: the same batches from
`workers` threads / `use_multiprocessing` processes as from one process.
"""

import os
import pathlib
import resource
import sys
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def import_kimbalance_data():
    package = types.ModuleType("kimbalance")
    package.__path__ = [str(ROOT / "kimbalance")]
    sys.modules["kimbalance"] = package
    import kimbalance.data

    return kimbalance.data


def address_space():
    """This process's mapped address space in bytes (VmSize)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def limit_address_space(extra):
    """Caps the address space at what is mapped now plus `extra` bytes."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (address_space() + extra, hard))


class RowFile:
    """A float32 matrix on disk read row by row with `pread`: `len()` + indexing."""

    def __init__(self, path, rows, width):
        self.fd = os.open(path, os.O_RDONLY)
        self.rows, self.width = rows, width
        self.row_bytes = width * 4

    def __len__(self):
        return self.rows

    def __getitem__(self, index):
        if not 0 <= index < self.rows:
            raise IndexError(index)
        data = os.pread(self.fd, self.row_bytes, int(index) * self.row_bytes)
        return np.frombuffer(data, dtype=np.float32)


def epoch_of_shards(data, x, y, *, num_shards, batch_size):
    """Reads one epoch through every shard; returns each shard's row markers."""
    shards = []
    for shard_index in range(num_shards):
        generator = data.BalancedBatchGenerator(
            x, y, sampler="over", batch_size=batch_size, seed=1,
            num_shards=num_shards, shard_index=shard_index)
        markers = []
        for index in range(len(generator)):
            xb, yb = generator[index]
            expected = generator.batch_indices(index)
            # Row i holds i in its first cell, and its label must travel along.
            np.testing.assert_array_equal(xb[:, 0], expected)
            np.testing.assert_array_equal(yb, y[expected])
            markers.extend(xb[:, 0].astype(np.int64).tolist())
        shards.append(markers)
    return shards


def memmap_mode(args, data):
    rows, width = args.rows, args.width
    file_bytes = rows * width * 4
    y = np.load(args.labels)
    x = np.memmap(args.data, dtype=np.float32, mode="r", shape=(rows, width))
    # The mapping fits; a copy of it does not.
    limit_address_space(file_bytes // 2)
    result = {"limit_bytes": resource.getrlimit(resource.RLIMIT_AS)[0],
              "file_bytes": file_bytes}
    try:
        np.array(x)
        result["copy_refused"] = False
    except MemoryError:
        result["copy_refused"] = True
    result["memmap_shards"] = epoch_of_shards(data, x, y, num_shards=2,
                                              batch_size=32)
    del x
    # Now not even the mapping fits: read row by row.
    limit_address_space(file_bytes // 2)
    try:
        np.memmap(args.data, dtype=np.float32, mode="r", shape=(rows, width))
        result["map_refused"] = False
    except (OSError, MemoryError, ValueError):
        result["map_refused"] = True
    source = RowFile(args.data, rows, width)
    result["rowfile_shards"] = epoch_of_shards(data, source, y, num_shards=2,
                                               batch_size=32)
    result["address_space_end"] = address_space()
    return result


def workers_mode(args, data):
    import keras

    y = np.repeat(np.arange(3), [50, 20, 6]).astype(np.int32)
    x = np.stack([np.arange(y.shape[0]), y], axis=1).astype(np.float32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    runs = {}
    for name, options in [("single", {}),
                          ("threads", {"workers": 2}),
                          ("processes", {"workers": 2, "use_multiprocessing": True})]:
        generator = data.BalancedBatchGenerator(
            x, y, sampler="over", batch_size=16, seed=5, num_shards=2, shard_index=1,
            class_weight="balanced", **options)
        epochs = []
        for epoch in (0, 1):
            generator.set_epoch(epoch)
            direct = np.concatenate([generator[i][0] for i in range(len(generator))])
            predicted = model.predict(generator, verbose=0)
            epochs.append({"direct": direct[:, 0], "predicted": predicted[:, 0]})
        runs[name] = epochs
    return {name: [{k: v.astype(np.int64).tolist() for k, v in epoch.items()}
                   for epoch in epochs] for name, epochs in runs.items()}


def main():
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--data")
    parser.add_argument("--labels")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--width", type=int)
    args = parser.parse_args()
    data = import_kimbalance_data()
    loaded = sorted(name for name in ("jax", "tensorflow", "torch")
                    if name in sys.modules)
    result = memmap_mode(args, data) if args.mode == "memmap" else workers_mode(
        args, data)
    result["frameworks_loaded"] = loaded
    path = pathlib.Path(args.out) / f"result_{args.rank}.json"
    path.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
