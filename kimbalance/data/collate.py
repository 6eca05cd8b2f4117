"""`collate_with_weights`: class-weighted batches from a torch `DataLoader`.

Keras' `fit(class_weight=...)` refuses a torch `DataLoader` (and never
weights pixels); a collate function that appends the sample weights to each
batch makes `model.fit(DataLoader(...))` class-weighted on the torch backend.
NumPy at import time: torch is imported when a batch is collated.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kimbalance._validation import check_num_classes, invalid
from kimbalance.weights import dense_targets, resolve_class_weight, sample_weights

__all__ = ["collate_with_weights"]


def collate_with_weights(
    class_weight: str | dict[int, float] | Sequence[float] | np.ndarray, *,
    num_classes: int | None = None, y: ArrayLike | None = None,
    one_hot: bool | None = None, ignore_class: int | None = None,
) -> WeightedCollate:
    """A `DataLoader` `collate_fn` that appends class weights: `(x, y, w)`.

    Each batch is stacked as `torch.utils.data.default_collate` stacks it
    (items are `(x, y)` pairs; `x` may be a tensor, an array, a dict or a
    tuple of them), then the sample weights of its labels are appended as a
    float32 tensor: `w[y_i]` for class ids and one-hot rows, the mean weight
    of the active labels for multi-hot rows (as
    `kimbalance.weights.sample_weights`), and a weight map (B, H, W) for
    segmentation masks (id maps (B, H, W) or one-hot maps (B, H, W, C),
    told apart with the rule of `kimbalance.weights.dense_targets`, with
    `num_classes` fixed to the number of weights), which Keras applies
    element-wise. Keras takes the third element of a batch as
    `sample_weight`, so

        loader = DataLoader(dataset, batch_size=32, sampler=sampler,
                            collate_fn=collate_with_weights("balanced", y=labels))
        model.fit(loader, epochs=10)

    trains class-weighted on the torch backend. Any kimbalance sampler works
    as the `DataLoader`'s `sampler` (it is an iterable with a length); `fit`
    does not tell a sampler its epoch, so pass
    `keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs:
    sampler.set_epoch(e))` to resample every epoch. The returned function is
    picklable, so `num_workers > 0` works.

    Args:
        class_weight: a scheme name of `kimbalance.weights.class_weights`
            (`"balanced"`, `"inverse"`, ...; needs `y`), a dict
            `{class: weight}` covering every class, or a sequence of C
            weights.
        num_classes: the number of classes (defaults to the number of
            weights, or to the classes of `y` for a scheme name).
        y: the dataset's labels or masks (any form `class_counts` takes),
            counted to resolve a scheme name; not needed for explicit
            weights.
        one_hot: None (infer), True or False; see `dense_targets`.
        ignore_class: None, or the id of void mask pixels (weight 0).

    Returns:
        A picklable callable `batch -> (x, y, sample_weight)`.

    Raises:
        ValueError: for a scheme name without `y`, bad weights or labels, or
            a bad `one_hot` / `ignore_class`; when a batch is collated, for
            items that are not `(x, y)` pairs or labels outside `[0, C)`.

    Examples:

    >>> collate = collate_with_weights([1.0, 4.0])
    >>> x, y, w = collate([(np.zeros(2, "float32"), 0), (np.ones(2, "float32"), 1)])
    >>> tuple(x.shape), y.tolist(), w.tolist()
    ((2, 2), [0, 1], [1.0, 4.0])
    >>> masks = np.array([[[0, 0], [0, 1]], [[0, 0], [0, 0]]])      # (2, 2, 2)
    >>> collate = collate_with_weights("balanced", y=masks)
    >>> batch = [(np.zeros((2, 2, 1), "float32"), m) for m in masks]
    >>> _, _, w = collate(batch)
    >>> tuple(w.shape), round(float(w[0, 1, 1]), 3), round(float(w[0, 0, 0]), 3)
    ((2, 2, 2), 4.0, 0.571)
    """
    if one_hot is not None and not isinstance(one_hot, bool | np.bool_):
        raise invalid("one_hot", "None, True or False", one_hot)
    if ignore_class is not None and (not isinstance(ignore_class, numbers.Integral)
                                     or isinstance(ignore_class, bool | np.bool_)):
        raise invalid("ignore_class", "None or an int class id", ignore_class)
    num_classes = check_num_classes(num_classes)
    if isinstance(class_weight, str):
        if y is None:
            raise invalid("y", f"the dataset's labels, to count for "
                          f"class_weight={class_weight!r} (or explicit weights)", y)
        targets, _, _ = dense_targets(y, num_classes, one_hot=one_hot,
                                      ignore_class=ignore_class)
        weights = resolve_class_weight(class_weight, targets.num_classes,
                                       targets.counts())
    else:
        if class_weight is None or isinstance(class_weight, numbers.Number):
            raise invalid("class_weight", "a scheme name, a dict or a 1-D sequence "
                          "of weights", class_weight)
        if num_classes is None:
            num_classes = (max(class_weight) + 1 if isinstance(class_weight, dict)
                           and class_weight and all(isinstance(k, numbers.Integral)
                                                    for k in class_weight)
                           else _length(class_weight))
        weights = resolve_class_weight(class_weight, num_classes)
    return WeightedCollate(weights, one_hot=one_hot, ignore_class=ignore_class)


def _length(class_weight):
    try:
        return len(class_weight)
    except TypeError:
        raise invalid("class_weight", "a scheme name, a dict or a 1-D sequence of "
                      "weights", class_weight) from None


class WeightedCollate:
    """The collate function `collate_with_weights` returns (picklable).

    Attributes:
        class_weight: the float64 per-class weights, shape (C,).
    """

    def __init__(self, class_weight: ArrayLike, *, one_hot: bool | None = None,
                 ignore_class: int | None = None) -> None:
        self.class_weight = np.asarray(class_weight, dtype=np.float64)
        self.one_hot = one_hot
        self.ignore_class = ignore_class

    def __call__(self, batch: Sequence[tuple[Any, Any]]) -> tuple[Any, Any, Any]:
        from torch import as_tensor, float32
        from torch.utils.data import default_collate

        if not isinstance(batch, list | tuple) or not batch or not all(
                isinstance(item, list | tuple) and len(item) == 2 for item in batch):
            raise invalid("batch", "a non-empty list of (x, y) pairs (the items of "
                          "the dataset)", batch)
        x, y = default_collate(list(batch))
        labels = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
        weights = sample_weights(labels, self.class_weight,
                                 num_classes=self.class_weight.shape[0],
                                 one_hot=self.one_hot, ignore_class=self.ignore_class)
        return x, y, as_tensor(weights, dtype=float32)

    def __repr__(self) -> str:
        weights = np.round(self.class_weight, 4).tolist()
        return (f"WeightedCollate(class_weight={weights}, one_hot={self.one_hot}, "
                f"ignore_class={self.ignore_class})")
