"""Batch mixing augmentations with soft labels: MixUp, CutMix, Remix, Balanced-MixUp.

Each is a NumPy callable for `BalancedBatchGenerator(augment=...)`: it is
called as `augment(x, y, rng=rng)` with the batch, its class ids (or one-hot
rows) and a `numpy.random.Generator` seeded from `(seed, epoch, batch)`, and
returns `(x_mixed, y_soft)` (the attribute `returns_labels = True` tells the
generator so). `y_soft` is float32 of shape (N, C), rows summing to 1: the
categorical losses of `kimbalance.losses` take it as soft labels. Per-sample
weights of the generator still follow the sampled (unmixed) labels.

Every mixing ratio is drawn once per batch, as in the reference code. For
MixUp, CutMix and Remix the batch is mixed with a random permutation of
itself and the ratio `lam` of the batch's own sample is `max(l, 1 - l)`,
`l ~ Beta(alpha, alpha)` (the convention of MixMatch): each row stays
dominated by the sample the sampler put there, so the batch composition (and
the sample weights) keep their meaning and `alpha -> 0` gives back the
unmixed batch. For MixUp and Remix this leaves the distribution of a mixed
pair unchanged (Beta(alpha, alpha) is symmetric, the partner is uniform, and
Remix's label rule is symmetric in the two samples); for CutMix it means the
pasted box covers at most half the image.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from kimbalance._validation import (
    check_counts,
    check_float,
    check_num_classes,
    invalid,
    parse_targets,
)

__all__ = ["BalancedMixUp", "CutMix", "MixUp", "Remix"]

# Beta(alpha, .) with alpha above this is numerically a point mass at 1/2
# (MixUp) or 1 (Balanced-MixUp); the bound keeps alpha a sane float.
_MAX_ALPHA = 1e4


def _check_alpha(alpha):
    return check_float("alpha", alpha, low=0.0, high=_MAX_ALPHA)


def _float_batch(x):
    """x as a floating array (integer images become float32)."""
    if x.dtype.kind == "f":
        return x
    return x.astype(np.float32)


class _Mixing:
    """Shared parts: label parsing, batch checks, one-hot rows, the ratio."""

    returns_labels = True
    num_classes: int | None = None
    alpha: float  # set by each subclass's __init__

    def _labels(self, x, y):
        """(x as an array, int64 ids, num_classes) for a batch."""
        if y is None:
            raise invalid("y", "the batch's labels (the generator passes them)", None)
        targets = parse_targets(y, self.num_classes, name="y", multi_label=False)
        if targets.kind == "ids" and self.num_classes is None:
            raise invalid("num_classes", "the number of classes (an int >= 1) when "
                          "the labels are class ids", None)
        ids = cast(np.ndarray, targets.ids)  # multi_label=False: never None
        images = np.asarray(x)
        if (images.ndim < 1 or images.dtype.kind not in "biuf"
                or images.shape[0] != len(ids)):
            raise invalid("x", f"a numeric batch with one row per label "
                          f"({len(ids)} labels; got shape {images.shape})",
                          x)
        return images, ids, targets.num_classes

    def _ratio(self, rng):
        """The batch's own share, max(l, 1 - l) with l ~ Beta(alpha, alpha)."""
        lam = float(rng.beta(self.alpha, self.alpha))
        return max(lam, 1.0 - lam)


def _one_hot(ids, num_classes):
    out = np.zeros((ids.shape[0], num_classes), dtype=np.float64)
    out[np.arange(ids.shape[0]), ids] = 1.0
    return out


def _mix_labels(own, other, weight):
    """weight * own + (1 - weight) * other, as float32 rows summing to 1.

    `weight` is a scalar or one value per row.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim:
        weight = weight[:, None]
    return (weight * own + (1.0 - weight) * other).astype(np.float32)


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


class MixUp(_Mixing):
    """MixUp: convex combinations of a batch with a permutation of itself.

    `x' = lam * x + (1 - lam) * x[perm]`, `y' = lam * y + (1 - lam) *
    y[perm]`, one `lam = max(l, 1 - l)`, `l ~ Beta(alpha, alpha)` per batch
    (see `kimbalance.data.mixing` for why the max). `alpha=0` returns the
    batch unchanged with one-hot labels.

    Args:
        alpha: the Beta parameter, a float in [0, 1e4] (0.2-1.0 is usual;
            larger mixes more).
        num_classes: the number of classes, needed when the labels are class
            ids (one-hot rows give it by their width).

    Returns (when called):
        `(x_mixed, y_soft)`: x as a float array (integer images become
        float32) and float32 (N, C) labels whose rows sum to 1.

    Raises:
        ValueError: for `alpha` outside [0, 1e4] or a bad `num_classes`;
            when called, for labels that are not ids / one-hot rows, ids
            without `num_classes`, or an `x` without one row per label.

    Examples:

    >>> x = np.array([[0.0], [1.0]], dtype="float32")
    >>> x_mixed, y_soft = MixUp(alpha=0.4, num_classes=2)(
    ...     x, np.array([0, 1]), rng=np.random.default_rng(0))
    >>> y_soft.shape, np.round(y_soft.sum(axis=1), 6).tolist()
    ((2, 2), [1.0, 1.0])

    References:
        Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
    """

    def __init__(self, alpha: float = 0.2, *, num_classes: int | None = None) -> None:
        self.alpha = _check_alpha(alpha)
        self.num_classes = check_num_classes(num_classes)

    def __call__(self, x: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
        x, ids, num_classes = self._labels(x, y)
        own = _one_hot(ids, num_classes)
        if self.alpha == 0:
            return x, own.astype(np.float32)
        rng = _rng(rng)
        lam = self._ratio(rng)
        perm = rng.permutation(ids.shape[0])
        xf = _float_batch(x)
        mixed = (lam * xf + (1.0 - lam) * xf[perm]).astype(xf.dtype)
        return mixed, _mix_labels(own, own[perm], lam)

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha!r}, num_classes={self.num_classes!r})"


class CutMix(_Mixing):
    """CutMix: a box of a partner image pasted into each image of the batch.

    One box per batch, as in the reference code: its area fraction is
    `1 - lam` (`lam = max(l, 1 - l)`, `l ~ Beta(alpha, alpha)`), its centre
    uniform over the image, clipped at the border; the label weight is the
    kept area, `1 - box area / image area`, after clipping. Images are
    channels-last `(N, H, W)` or `(N, H, W, C)`. `alpha=0` returns the batch
    unchanged with one-hot labels.

    Args:
        alpha: the Beta parameter, a float in [0, 1e4] (1.0 in the paper).
        num_classes: the number of classes, needed when the labels are class
            ids.

    Returns (when called):
        `(x_mixed, y_soft)`: x with its own dtype, float32 (N, C) labels
        whose rows sum to 1.

    Raises:
        ValueError: for `alpha` outside [0, 1e4] or a bad `num_classes`;
            when called, for labels that are not ids / one-hot rows, ids
            without `num_classes`, or an `x` that is not an (N, H, W[, C])
            batch with one image per label.

    Examples:

    >>> x = np.zeros((2, 4, 4, 1), dtype="float32")
    >>> x[1] = 1.0
    >>> x_mixed, y_soft = CutMix(alpha=1.0, num_classes=2)(
    ...     x, np.array([0, 1]), rng=np.random.default_rng(3))
    >>> x_mixed.shape, np.round(y_soft.sum(axis=1), 6).tolist()
    ((2, 4, 4, 1), [1.0, 1.0])

    References:
        Yun et al., "CutMix: Regularization Strategy to Train Strong
        Classifiers with Localizable Features", ICCV 2019.
    """

    def __init__(self, alpha: float = 1.0, *, num_classes: int | None = None) -> None:
        self.alpha = _check_alpha(alpha)
        self.num_classes = check_num_classes(num_classes)

    def __call__(self, x: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
        x, ids, num_classes = self._labels(x, y)
        if x.ndim not in (3, 4):
            raise invalid("x", f"an image batch of shape (N, H, W) or (N, H, W, C) "
                          f"(got shape {x.shape})", x)
        own = _one_hot(ids, num_classes)
        if self.alpha == 0:
            return x, own.astype(np.float32)
        rng = _rng(rng)
        lam = self._ratio(rng)
        perm = rng.permutation(ids.shape[0])
        height, width = x.shape[1:3]
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        mixed = x.copy()
        mixed[:, top:bottom, left:right] = x[perm, top:bottom, left:right]
        kept = 1.0 - (bottom - top) * (right - left) / (height * width)
        return mixed, _mix_labels(own, own[perm], kept)

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha!r}, num_classes={self.num_classes!r})"


class Remix(MixUp):
    """Remix: MixUp whose label goes to the minority class of an unequal pair.

    Inputs mix as in `MixUp` (`x' = lam * x_i + (1 - lam) * x_j`); the label
    is `lam_y * y_i + (1 - lam_y) * y_j` with (Chou et al., eq. 3)

    - `lam_y = 0` if `n_i / n_j >= kappa` and `lam < tau` (i is the majority
      class and its share is small: the label is wholly the minority j's);
    - `lam_y = 1` if `n_i / n_j <= 1 / kappa` and `1 - lam < tau` (the same
      with the roles swapped);
    - `lam_y = lam` otherwise;

    where `n` are the training-set class counts. The rule is symmetric in the
    two samples, so drawing `lam >= 1/2` (see `kimbalance.data.mixing`)
    leaves Remix's distribution unchanged.

    Args:
        alpha: the Beta parameter, a float in [0, 1e4] (1.0 in the paper).
        kappa: the count ratio from which a pair counts as unequal, a float
            >= 1 (3.0 in the paper).
        tau: the share below which the majority sample loses its label, a
            float in [0, 1] (0.5 in the paper; 0 disables the rule: plain
            MixUp).
        class_counts: the training-set count of each class (all > 0); its
            length is the number of classes.

    Returns (when called):
        `(x_mixed, y_soft)` as `MixUp`.

    Raises:
        ValueError: for `alpha` outside [0, 1e4], `kappa < 1`, `tau` outside
            [0, 1], or counts that are not positive whole numbers; when
            called, as `MixUp`.

    Examples:

    >>> x = np.array([[0.0], [1.0]], dtype="float32")
    >>> remix = Remix(alpha=1.0, class_counts=[100, 10])
    >>> x_mixed, y_soft = remix(x, np.array([0, 1]), rng=np.random.default_rng(0))
    >>> y_soft.astype("float64").round(3).tolist()
    [[0.702, 0.298], [0.0, 1.0]]

    Row 0 is mostly the majority image: a MixUp label. Row 1 is mostly the
    minority image of a 10:1 pair: the label is wholly the minority's.

    References:
        Chou et al., "Remix: Rebalanced Mixup", ECCV 2020 Workshops.
    """

    def __init__(self, alpha: float = 1.0, kappa: float = 3.0, tau: float = 0.5, *,
                 class_counts: ArrayLike) -> None:
        self.alpha = _check_alpha(alpha)
        self.kappa = check_float("kappa", kappa, low=1.0)
        self.tau = check_float("tau", tau, low=0.0, high=1.0)
        counts = check_counts("class_counts", class_counts, positive=True)
        self.class_counts = counts.tolist()
        self.num_classes = len(self.class_counts)
        self._counts = counts.astype(np.float64)

    def __call__(self, x: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
        x, ids, num_classes = self._labels(x, y)
        own = _one_hot(ids, num_classes)
        if self.alpha == 0:
            return x, own.astype(np.float32)
        rng = _rng(rng)
        lam = self._ratio(rng)
        perm = rng.permutation(ids.shape[0])
        xf = _float_batch(x)
        mixed = (lam * xf + (1.0 - lam) * xf[perm]).astype(xf.dtype)
        ratio = self._counts[ids] / self._counts[ids[perm]]
        label_weight = np.full(ids.shape[0], lam)
        label_weight[(ratio >= self.kappa) & (lam < self.tau)] = 0.0
        label_weight[(ratio <= 1.0 / self.kappa) & (1.0 - lam < self.tau)] = 1.0
        return mixed, _mix_labels(own, own[perm], label_weight)

    def __repr__(self) -> str:
        return (f"Remix(alpha={self.alpha!r}, kappa={self.kappa!r}, "
                f"tau={self.tau!r}, class_counts={self.class_counts!r})")


class BalancedMixUp(_Mixing):
    """Balanced-MixUp: the sampled batch mixed with a class-balanced batch.

    The generator's batch (usually instance-sampled, `sampler="instance"`)
    is mixed with a second batch drawn class-balanced from the whole training
    set: each of its samples is of a class drawn uniformly from the classes
    present, then a uniform member of that class (with replacement, as the
    official code's class-balanced loader). Both draws come from the batch's
    `rng`, so the second stream is reproducible from `(seed, epoch, batch)`
    and the same for every worker. With `lam ~ Beta(alpha, 1)` once per
    batch, `x' = (1 - lam) * x + lam * x_balanced` and `y' = (1 - lam) * y +
    lam * y_balanced`: a small `alpha` (0.1-0.2 in the paper) mixes lightly,
    `alpha=0` returns the batch unchanged with one-hot labels.

    Args:
        x: the training inputs, an array (or memmap) indexable by an int
            index array, the same the generator serves.
        y: their labels (class ids or one-hot rows).
        alpha: the Beta(alpha, 1) parameter, a float in [0, 1e4].
        num_classes: the number of classes for 1-D labels (defaults to
            `max(y) + 1`).

    Returns (when called):
        `(x_mixed, y_soft)`: x as a float array (integer images become
        float32) and float32 (N, C) labels whose rows sum to 1.

    Raises:
        ValueError: for invalid `y`, an `x` of another length, or `alpha`
            outside [0, 1e4]; when called, for labels that are not ids /
            one-hot rows of the same classes, or a batch whose samples do
            not have the shape of `x`'s.

    Examples:

    >>> x = np.arange(6, dtype="float32").reshape(6, 1)
    >>> y = np.array([0, 0, 0, 0, 1, 2])
    >>> mix = BalancedMixUp(x, y, alpha=0.2)
    >>> x_mixed, y_soft = mix(x[:4], y[:4], rng=np.random.default_rng(0))
    >>> y_soft.shape, np.round(y_soft.sum(axis=1), 6).tolist()
    ((4, 3), [1.0, 1.0, 1.0, 1.0])

    References:
        Galdran et al., "Balanced-MixUp for Highly Imbalanced Medical Image
        Classification", MICCAI 2021.
    """

    def __init__(self, x: Any, y: ArrayLike, alpha: float = 0.2, *,
                 num_classes: int | None = None) -> None:
        targets = parse_targets(y, num_classes, name="y", multi_label=False)
        ids = cast(np.ndarray, targets.ids)  # multi_label=False: never None
        if not hasattr(x, "__len__") or not hasattr(x, "__getitem__"):
            raise invalid("x", "an array indexable by an int index array", x)
        if len(x) != len(ids):
            raise invalid("x", f"{len(ids)} samples (one per label of y); "
                          f"got {len(x)}", x)
        self.alpha = check_float("alpha", alpha, low=0.0, high=_MAX_ALPHA)
        self.num_classes = targets.num_classes
        self._x = x
        self._order = np.argsort(ids, kind="stable")
        self._counts = np.bincount(ids, minlength=targets.num_classes)
        self._offsets = np.concatenate([[0], np.cumsum(self._counts)[:-1]])
        self._present = np.flatnonzero(self._counts)

    def balanced_indices(self, batch_size: int,
                         rng: np.random.Generator) -> np.ndarray:
        """Indices of a class-balanced draw of `batch_size` samples.

        Args:
            batch_size: the number of samples.
            rng: a `numpy.random.Generator`.

        Returns:
            An int64 array of dataset indices.
        """
        return self._draw(batch_size, rng)[0]

    def _draw(self, batch_size, rng):
        """(dataset indices, their class ids) of a class-balanced draw."""
        picks = rng.integers(0, self._present.shape[0], size=batch_size)
        classes = self._present[picks]
        sizes = self._counts[classes]
        members = np.floor(rng.random(batch_size) * sizes).astype(np.int64)
        members = np.minimum(members, sizes - 1)
        return self._order[self._offsets[classes] + members], classes

    def __call__(self, x: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
        x, ids, num_classes = self._labels(x, y)
        own = _one_hot(ids, num_classes)
        if self.alpha == 0:
            return x, own.astype(np.float32)
        rng = _rng(rng)
        lam = float(rng.beta(self.alpha, 1.0))
        index, classes = self._draw(ids.shape[0], rng)
        other = np.asarray(self._x[index])
        if other.shape[1:] != x.shape[1:]:
            raise invalid("x", f"a batch of samples shaped like the training inputs "
                          f"{other.shape[1:]} (got shape {x.shape})", x)
        xf = _float_batch(x)
        mixed = ((1.0 - lam) * xf + lam * _float_batch(other)).astype(xf.dtype)
        balanced = _one_hot(classes, num_classes)
        return mixed, _mix_labels(own, balanced, 1.0 - lam)

    def __repr__(self) -> str:
        return (f"BalancedMixUp(alpha={self.alpha!r}, num_classes={self.num_classes}, "
                f"num_samples={len(self._order)})")
