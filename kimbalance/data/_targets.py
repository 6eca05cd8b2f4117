"""The batch generator's targets: class labels, segmentation masks, outputs.

One object per model output: it reads its rows for a batch (`take`), gives
its per-class counts (the scheme names of `class_weight` count them) and
turns class weights into the batch's sample weights, one per sample for
class labels, one per element for masks. `read_targets` builds them from
the generator's `y` (an array, or a dict / tuple of arrays for multi-output
models) and says which one drives the sampler.
"""

import numbers

import numpy as np

from kimbalance._validation import check_num_classes, invalid, parse_targets
from kimbalance.weights import dense_targets, sample_weights

# Elements per chunk when masks are scanned (a memmap is read in pieces).
SCAN_CHUNK = 1 << 22


class LabelTarget:
    """In-memory class labels: ids, (N, 1) ids, one-hot or multi-hot rows."""

    dense = False

    def __init__(self, y, num_classes, name):
        self.targets = parse_targets(y, num_classes, name=name)
        self.kind = self.targets.kind
        self.num_classes = self.targets.num_classes
        self._per_sample = None

    def __len__(self):
        return len(self.targets)

    def take(self, indices):
        return self.targets.array[indices]

    def counts(self):
        return self.targets.counts()

    def image_targets(self):
        return self.targets

    def set_weights(self, weights):
        """Per-sample weights, precomputed once per class-weight change."""
        if weights is None:
            self._per_sample = None
        elif self.targets.ids is not None:
            self._per_sample = weights[self.targets.ids].astype(np.float32)
        else:
            self._per_sample = sample_weights(self.targets.array,
                                              weights).astype(np.float32)

    def batch_weights(self, indices, labels, returned):
        # Weights follow the sampled labels, also when a mixing augment
        # returns soft labels.
        if self._per_sample is None:
            return np.ones(indices.shape[0], dtype=np.float32)
        return self._per_sample[indices]


class PartitionedTarget:
    """No label array: class c at positions [offset_c, offset_c + n_c)."""

    dense = False
    kind = "ids"

    def __init__(self, sampler):
        self.sampler = sampler
        self.num_classes = sampler.num_classes
        self._weights = None

    def __len__(self):
        return self.sampler.dataset_size

    def take(self, indices):
        return self.sampler.classes_of(indices)

    def counts(self):
        return self.sampler.counts

    def image_targets(self):
        return None

    def set_weights(self, weights):
        self._weights = weights

    def batch_weights(self, indices, labels, returned):
        if self._weights is None:
            return np.ones(indices.shape[0], dtype=np.float32)
        return self._weights[labels].astype(np.float32)


class MaskTarget:
    """Segmentation masks: id maps (N, ...) or one-hot maps (N, ..., C).

    The masks stay where they are (an in-memory array, a memmap or an
    on-disk array such as h5py / zarr); they are scanned once in chunks of
    images to check every id and to count pixels per class and the classes
    each image contains (its image-level label for the samplers).
    """

    dense = True

    def __init__(self, y, num_classes, ignore_class, name):
        self.name = name
        self.source = y
        self.ignore_class = ignore_class
        self._in_memory = isinstance(y, np.ndarray) and not isinstance(y, np.memmap)
        shape = tuple(int(d) for d in y.shape)
        if shape[0] == 0:
            raise invalid(name, "masks with at least one image; got shape "
                          f"{shape}", y)
        per_image = max(1, int(np.prod(shape[1:])))
        step = max(1, SCAN_CHUNK // per_image)
        one_hot = None
        counts = np.zeros(0, dtype=np.int64)
        parts = []
        for start in range(0, shape[0], step):
            chunk = np.asarray(y[start:start + step])
            targets, map_shape, keep = dense_targets(
                chunk, num_classes, one_hot=one_hot, ignore_class=ignore_class,
                name=name)
            if one_hot is None:
                one_hot = targets.kind == "one_hot"
                if one_hot:
                    num_classes = targets.num_classes
            part_counts = targets.counts()
            if part_counts.shape[0] > counts.shape[0]:
                counts = np.pad(counts, (0, part_counts.shape[0] - counts.shape[0]))
            counts[:part_counts.shape[0]] += part_counts
            pixels = max(1, int(np.prod(map_shape[1:])))
            rows = np.repeat(np.arange(chunk.shape[0]), pixels)
            if keep is not None:
                rows = rows[keep]
            part = np.zeros((chunk.shape[0], targets.num_classes), dtype=bool)
            part[rows, targets.ids] = True
            parts.append(part)
        self.one_hot = one_hot
        self.kind = "one_hot" if one_hot else "ids"
        self.num_classes = int(num_classes if num_classes is not None
                               else counts.shape[0])
        self.map_shape = tuple(map_shape[1:])
        self._channel = not one_hot and len(shape) - 1 > len(self.map_shape)
        self._counts = np.pad(counts, (0, self.num_classes - counts.shape[0]))
        presence = np.zeros((shape[0], self.num_classes), dtype=bool)
        start = 0
        for part in parts:
            presence[start:start + part.shape[0], :part.shape[1]] = part
            start += part.shape[0]
        self.presence = presence
        self._weights = None

    def __len__(self):
        return self.presence.shape[0]

    def take(self, indices):
        if self._in_memory:
            return self.source[indices]
        # Sorted, de-duplicated reads (sequential disk access; h5py needs
        # increasing indices), then put back in batch order.
        unique, inverse = np.unique(indices, return_inverse=True)
        rows = np.asarray(self.source[unique])
        if unique.shape[0] == indices.shape[0] and np.array_equal(unique, indices):
            return rows
        return rows[inverse]

    def counts(self):
        return self._counts

    def image_targets(self):
        """Which classes each mask contains (multi-hot; one-hot when one each)."""
        return parse_targets(self.presence, name=self.name)

    def set_weights(self, weights):
        self._weights = weights

    def batch_weights(self, indices, labels, returned):
        """The batch's weight map (B, ...), from the masks the batch yields.

        Masks returned by an augment (a flip, a crop) replace the sampled
        ones, so the weights stay aligned with the pixels.
        """
        masks = labels if returned is None else returned
        if self._weights is None:
            return np.ones((indices.shape[0], *self.map_shape), dtype=np.float32)
        ids = self._ids(np.asarray(masks), checked=returned is None)
        if self.ignore_class is None:
            return self._weights[ids].astype(np.float32)
        void = ids == self.ignore_class
        out = self._weights[np.where(void, 0, ids)].astype(np.float32)
        out[void] = 0.0
        return out

    def _ids(self, masks, checked):
        if self.one_hot:
            if masks.ndim < 2 or masks.shape[-1] != self.num_classes:
                raise invalid("augment", "a function returning one-hot masks of "
                              f"width {self.num_classes}; got shape {masks.shape}",
                              masks)
            return np.argmax(masks, axis=-1)
        ids = masks[..., 0] if self._channel and masks.ndim > 1 else masks
        if checked:
            return ids.astype(np.int64, copy=False)
        if ids.dtype.kind not in "biuf" or not np.all(np.isfinite(ids)):
            raise invalid("augment", "a function returning masks of class ids",
                          masks)
        valid = (ids == np.floor(ids)) & (ids >= 0) & (ids < self.num_classes)
        if self.ignore_class is not None:
            valid |= ids == self.ignore_class
        if not np.all(valid):
            raise invalid("augment", "a function returning masks with class ids in "
                          f"[0, {self.num_classes}) (found "
                          f"{np.unique(ids[~valid])[:5].tolist()})", masks)
        return ids.astype(np.int64)


def is_mask_source(y):
    """Whether `y` holds masks: an array-like with 3 or more axes."""
    shape = getattr(y, "shape", None)
    if shape is None and isinstance(y, list):
        shape = np.shape(y)
    return shape is not None and len(shape) >= 3 and hasattr(y, "__getitem__")


def is_structure(y):
    """A dict of targets, or a tuple of arrays (not a tuple of scalar labels)."""
    if isinstance(y, dict):
        return True
    return isinstance(y, tuple) and len(y) > 0 and all(
        hasattr(v, "shape") or isinstance(v, list | tuple) for v in y)


def make_target(y, num_classes, ignore_class, name):
    """A `MaskTarget` for masks, else a `LabelTarget`."""
    if is_mask_source(y):
        if isinstance(y, list):
            y = np.asarray(y)
        return MaskTarget(y, num_classes, ignore_class, name)
    if ignore_class is not None:
        raise invalid("ignore_class", "None for class labels (it marks void pixels "
                      "of segmentation masks)", ignore_class)
    return LabelTarget(y, num_classes, name)


def check_ignore_class(ignore_class):
    if ignore_class is not None and (not isinstance(ignore_class, numbers.Integral)
                                     or isinstance(ignore_class, bool | np.bool_)):
        raise invalid("ignore_class", "None or an int class id", ignore_class)
    return ignore_class


def read_targets(y, *, num_classes, sampling_target, ignore_class, num_items):
    """Builds the targets of `y` and picks the one that drives the sampler.

    Returns:
        `(targets, keys, sampling_key)`: a dict key -> target (key None for a
        single output), the output keys in order (None for a single output;
        a tuple of ints for a tuple `y`), and the key of the sampling target.
    """
    ignore_class = check_ignore_class(ignore_class)
    if not is_structure(y):
        if sampling_target is not None:
            raise invalid("sampling_target", "None for a single target y (it names "
                          "one entry of a dict or tuple y)", sampling_target)
        target = make_target(y, num_classes, ignore_class, "y")
        _check_length(target, num_items, "y", y)
        return {None: target}, None, None
    keys = tuple(y) if isinstance(y, dict) else tuple(range(len(y)))
    if not keys:
        raise invalid("y", "a non-empty dict or tuple of targets", y)
    if isinstance(y, dict) and not all(isinstance(k, str) for k in keys):
        raise invalid("y", "a dict keyed by output names (strings)", y)
    if num_classes is not None and not isinstance(num_classes, dict):
        raise invalid("num_classes", "None or a dict {output: number of classes} "
                      "for a dict or tuple y", num_classes)
    per_output = num_classes or {}
    unknown = [k for k in per_output if k not in keys]
    if unknown:
        raise invalid("num_classes", f"keys among the outputs {list(keys)} (unknown: "
                      f"{unknown})", num_classes)
    targets = {}
    for key in keys:
        name = f"y[{key!r}]"
        classes = check_num_classes(per_output.get(key), f"num_classes[{key!r}]")
        targets[key] = make_target(y[key], classes, ignore_class, name)
        _check_length(targets[key], num_items, name, y[key])
    if sampling_target is None and len(keys) == 1:
        sampling_target = keys[0]
    if isinstance(sampling_target, bool) or sampling_target not in keys:
        kind = "key" if isinstance(y, dict) else "index"
        raise invalid("sampling_target", f"the {kind} of the target that drives the "
                      f"sampler, one of {list(keys)}", sampling_target)
    return targets, keys, sampling_target


def _check_length(target, num_items, name, y):
    if len(target) != num_items:
        raise invalid(name, f"{num_items} labels or masks, one per sample of x "
                      f"(len(x)={num_items}; got {len(target)})", y)


def read_class_weight(class_weight, keys):
    """Per-output class-weight specs: a dict key -> spec (or None)."""
    if keys is None:
        return {None: class_weight}
    if class_weight is None:
        return dict.fromkeys(keys)
    if isinstance(class_weight, dict):
        unknown = [k for k in class_weight if k not in keys]
        if unknown:
            raise invalid("class_weight", "a dict {output: class weights or None} "
                          f"keyed by the outputs {list(keys)} (unknown: {unknown})",
                          class_weight)
        return {key: class_weight.get(key) for key in keys}
    if isinstance(class_weight, list | tuple) and isinstance(keys[0], int) and len(
            class_weight) == len(keys) and not any(
            isinstance(v, numbers.Number) for v in class_weight):
        return dict(zip(keys, class_weight, strict=True))
    expected = ("a dict {output name: class weights or None}" if isinstance(
        keys[0], str) else f"a tuple of {len(keys)} class weights or None (one per "
        "output) or a dict {output index: class weights}")
    raise invalid("class_weight", expected + " for a multi-output y", class_weight)
