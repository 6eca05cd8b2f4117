"""Counter-based randomness and keyed permutations for the samplers (NumPy only).

Every random draw of a sampler is a pure function of integer words such as
`(seed, epoch, purpose, class)`: `generator(*words)` is
`np.random.default_rng(words)`, `hash64(key, counters)` is SplitMix64 of a
counter array under a key (a counter-based RNG: any element is computed
without the others), and `permutation_at(n, key, positions)` gives positions
of a keyed pseudo-random permutation of `range(n)` without materialising it
when n is large. Permutations of up to `EXPLICIT_LIMIT` items are exact
uniform shuffles (`Generator.permutation`, cached); larger ones use a keyed
6-round Feistel network with cycle walking (the per-index shuffle of
google/grain), which needs no memory.

Streams. The epoch order uses `generator(seed, epoch)`; every other stream
appends a purpose (the constants below, >= 1) and a class id, always four
words: `SeedSequence` pads short entropy with zeros, so lengths must not vary.
"""

import threading
from collections import OrderedDict

import numpy as np

__all__ = [
    "BLOCK",
    "CLASS_ORDER",
    "EXPLICIT_LIMIT",
    "MULTILABEL",
    "QUOTA",
    "REPEAT_FACTOR",
    "ROTATION",
    "SHARD_DEAL",
    "TOP_UP",
    "feistel_permutation_at",
    "full_permutation",
    "generator",
    "hash64",
    "permutation_at",
    "raw_key",
    "shuffle_in_place",
]

# Permutations up to this many items are exact shuffles (cached, bounded).
# Read at call time (`_random.EXPLICIT_LIMIT`), so tests may lower it.
EXPLICIT_LIMIT = 1 << 22
PERMUTATION_CACHE_ITEMS = 1 << 24
FEISTEL_ROUNDS = 6

# Purposes of the random streams (the third word of a key).
TOP_UP = 1
QUOTA = 2
ROTATION = 3
BLOCK = 4
CLASS_ORDER = 5
MULTILABEL = 6
SHARD_DEAL = 7
REPEAT_FACTOR = 8

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)


def hash64(key, counter):
    """SplitMix64 of `counter` (uint64 array) under `key`: a counter-based RNG."""
    z = np.asarray(counter).astype(np.uint64) * _GOLDEN + np.uint64(key)
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


def generator(*words):
    """`np.random.default_rng(words)`: the stream keyed by integer `words`."""
    return np.random.default_rng([int(w) for w in words])


def raw_key(*words):
    """One 64-bit key drawn from the stream keyed by `words`."""
    return generator(*words).bit_generator.random_raw()


def _feistel_encrypt(x, keys, width_hi, width_lo):
    hi = x >> np.uint64(width_lo)
    lo = x & np.uint64((1 << width_lo) - 1)
    for key in keys:
        z = (lo ^ key) * _MIX1
        z ^= z >> _U31
        z *= _MIX2
        hi, lo = lo, hi ^ (z >> np.uint64(64 - width_hi))
        width_hi, width_lo = width_lo, width_hi
    return (hi << np.uint64(width_lo)) | lo


def feistel_permutation_at(n, key, positions):
    """Position `positions` of a keyed pseudo-random permutation of range(n)."""
    keys = generator(*key).bit_generator.random_raw(FEISTEL_ROUNDS)
    bits = max(2, (n - 1).bit_length())
    width_hi = bits // 2
    width_lo = bits - width_hi
    x = _feistel_encrypt(positions.astype(np.uint64), keys, width_hi, width_lo)
    limit = np.uint64(n)
    # Cycle walking: the domain is < 2n, so a few rounds settle every element.
    pending = np.flatnonzero(x >= limit)
    while pending.size:
        walked = _feistel_encrypt(x[pending], keys, width_hi, width_lo)
        x[pending] = walked
        pending = pending[walked >= limit]
    return x.astype(np.int64)


class _PermutationCache:
    """Exact permutations by key, bounded by the total number of items held."""

    def __init__(self, max_items):
        self.max_items = max_items
        self._items = 0
        self._store = OrderedDict()
        self._lock = threading.Lock()

    def get(self, n, key):
        entry = self._store.get((n, key))
        if entry is not None:
            return entry
        perm = generator(*key).permutation(n)
        perm.flags.writeable = False
        with self._lock:
            if (n, key) not in self._store:
                self._store[(n, key)] = perm
                self._items += n
                while self._items > self.max_items and len(self._store) > 1:
                    _, old = self._store.popitem(last=False)
                    self._items -= old.shape[0]
        return perm


_PERMUTATIONS = _PermutationCache(PERMUTATION_CACHE_ITEMS)


def permutation_at(n, key, positions):
    """`perm[positions]` for the permutation of range(n) keyed by `key`."""
    if n <= EXPLICIT_LIMIT:
        return _PERMUTATIONS.get(n, key)[positions]
    return feistel_permutation_at(n, key, positions)


def full_permutation(n, key):
    """The whole permutation of range(n) keyed by `key` (int64)."""
    if n <= EXPLICIT_LIMIT:
        return generator(*key).permutation(n)
    return feistel_permutation_at(n, key, np.arange(n, dtype=np.int64))


def shuffle_in_place(items, key):
    """Shuffles `items` like `items[full_permutation(len(items), key)]`.

    For up to `EXPLICIT_LIMIT` items it applies the same swaps as
    `generator(*key).permutation(n)` in place (no index array).
    """
    n = items.shape[0]
    if n <= EXPLICIT_LIMIT:
        generator(*key).shuffle(items)
        return items
    return items[feistel_permutation_at(n, key, np.arange(n, dtype=np.int64))]
