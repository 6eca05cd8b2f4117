"""Index samplers: which samples make up an epoch, and in which order (NumPy only).

A sampler is an index policy. `sampler.indices(epoch)` returns the epoch's
int64 array of dataset indices; it is a pure function of `(seed, epoch)`
(every random draw comes from `np.random.default_rng([seed, epoch, ...])`,
never from global state), so threads, processes and data-parallel shards
rebuild exactly the same epoch. `len(sampler)` is the number of samples per
epoch and never changes between epochs. A sampler is also a plain iterable
over the current epoch (`set_epoch(e)` then `iter(sampler)`), which is what
`torch.utils.data.DataLoader(sampler=...)` expects; `as_torch_sampler()`
wraps it in a real `torch.utils.data.Sampler`.

Storage. Built from labels `y`, a sampler keeps the stable argsort of the
labels (one int64 per sample), the class ids in the smallest unsigned dtype
(for `classes_of`) and a digest of the labels (for `same_labels`, so the
generator can tell a sampler built on other labels). Built with
`Sampler.from_counts(counts)` it assumes class-partitioned storage (class c at positions
`[offset_c, offset_c + n_c)`, `offset_c = sum(counts[:c])`) and keeps no
per-sample array at all, so billions of virtual samples cost O(classes).

Materialisation. Every sampler computes any slice of an epoch without the
rest: `indices(epoch, start=s, stop=e)` costs O(e - s). Epochs of at most
2**24 samples are computed whole on first use and cached (the two most recent
epochs), so batch after batch is a slice of a cached array; longer epochs are
computed slice by slice and never materialised. Both routes return identical
indices. `MultiLabelOverSampler` always materialises (it needs the label
matrix anyway). Permutations of up to 2**22 items are exact uniform shuffles
(`Generator.permutation`); larger ones use a keyed 6-round Feistel network
with cycle walking (the per-index shuffle of google/grain), which needs no
memory; that machinery lives in `kimbalance.data._random`.

| sampler | epoch | per-class count per epoch |
|---|---|---|
| `InstanceSampler` | every sample once, shuffled | n_c |
| `RandomOverSampler` | every sample once + top-ups (with replacement) | target >= n_c |
| `RandomUnderSampler` | a rotating window of each class | target <= n_c |
| `ClassBalancedSampler` | blocks of `batch_size`, each class-balanced | ~ equal |
| `PowerSampler(power=q)` | stratified, p_c = n_c**q / sum n**q | expected count |
| `SquareRootSampler` | `PowerSampler(power=0.5)` | |
| `ProgressiveSampler` | instance -> class-balanced over `num_epochs` | expected count |
| `MultiLabelOverSampler` | every sample once + ML-ROS clones | |
| `RepeatFactorSampler` | image i floor(r_i) or floor(r_i) + 1 times (LVIS) | |
"""

from kimbalance.data.samplers._base import Sampler
from kimbalance.data.samplers.class_balanced import ClassBalancedSampler
from kimbalance.data.samplers.multilabel import MultiLabelOverSampler
from kimbalance.data.samplers.power import (
    PowerSampler,
    ProgressiveSampler,
    SquareRootSampler,
)
from kimbalance.data.samplers.registry import SAMPLERS, get_sampler
from kimbalance.data.samplers.repeat_factor import RepeatFactorSampler, class_presence
from kimbalance.data.samplers.resampling import (
    InstanceSampler,
    RandomOverSampler,
    RandomUnderSampler,
)

__all__ = [
    "SAMPLERS",
    "Sampler",
    "InstanceSampler",
    "RandomOverSampler",
    "RandomUnderSampler",
    "ClassBalancedSampler",
    "PowerSampler",
    "SquareRootSampler",
    "ProgressiveSampler",
    "MultiLabelOverSampler",
    "RepeatFactorSampler",
    "class_presence",
    "get_sampler",
]
