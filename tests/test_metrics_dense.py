"""kimbalance.metrics on dense targets (segmentation maps) and the IoU / Dice views.

Oracles: sklearn / imblearn on the flattened pixels, `keras.metrics.MeanIoU` /
`IoU` / `BinaryIoU`, MONAI's `compute_iou` / `compute_dice`, and a float64
NumPy confusion matrix.
"""

import os
import warnings

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.metrics import geometric_mean_score
from keras import ops
from sklearn.metrics import balanced_accuracy_score, f1_score, jaccard_score

from kimbalance.losses import WeightedCategoricalCrossentropy
from kimbalance.metrics import (
    BalancedAccuracy,
    ClassDice,
    ClassIoU,
    GeometricMean,
    MacroF1,
    MeanClassDice,
    MeanClassIoU,
)

C = 4


def sklearn_value(name, y_true, y_pred, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "balanced_accuracy":
            return balanced_accuracy_score(y_true, y_pred, sample_weight=sample_weight)
        if name == "geometric_mean":
            return geometric_mean_score(y_true, y_pred, sample_weight=sample_weight)
        return f1_score(y_true, y_pred, average="macro", sample_weight=sample_weight)


CLASSIFICATION = {"balanced_accuracy": BalancedAccuracy,
                  "geometric_mean": GeometricMean, "macro_f1": MacroF1}


def segmentation_batches(seed=0, sizes=(2, 3, 1), side=(5, 6), num_classes=C,
                         void=None, weighted=False):
    """Id maps with a dominant background, logits favouring the truth.

    Class `num_classes - 1` is rare; `void` (an id) marks ~10 % of pixels.
    """
    rng = np.random.default_rng(seed)
    probabilities = np.array([0.7, 0.2, 0.08, 0.02])[:num_classes]
    probabilities /= probabilities.sum()
    batches = []
    for size in sizes:
        ids = rng.choice(num_classes, size=(size, *side), p=probabilities)
        logits = rng.normal(size=(size, *side, num_classes))
        logits += 1.5 * np.eye(num_classes)[ids]
        if void is not None:
            ids = np.where(rng.random(ids.shape) < 0.1, void, ids)
        weights = (rng.uniform(0.1, 2.0, size=ids.shape).astype("float32")
                   if weighted else None)
        batches.append((ids, logits.astype("float32"), weights))
    return batches


def flattened(batches, void=None):
    """The kept pixels' labels, argmax predictions and weights (float64)."""
    labels = np.concatenate([b[0].reshape(-1) for b in batches])
    predictions = np.concatenate([b[1].argmax(-1).reshape(-1) for b in batches])
    weights = None
    if batches[0][2] is not None:
        weights = np.concatenate([b[2].reshape(-1) for b in batches]).astype(float)
    if void is not None:
        keep = labels != void
        labels, predictions = labels[keep], predictions[keep]
        weights = None if weights is None else weights[keep]
    return labels, predictions, weights


def feed(metric, batches, form="ids"):
    for ids, logits, weights in batches:
        if form == "ids":
            y_true = ids
        elif form == "column":
            y_true = ids[..., None].astype("float32")
        else:
            y_true = np.eye(metric.num_classes, dtype="float32")[ids]
        metric.update_state(ops.convert_to_tensor(y_true),
                            ops.convert_to_tensor(logits), sample_weight=weights)
    return ops.convert_to_numpy(metric.result())


def numpy_confusion(labels, predictions, weights=None, num_classes=C):
    matrix = np.zeros((num_classes, num_classes))
    np.add.at(matrix, (labels, predictions), 1.0 if weights is None else weights)
    return matrix


def numpy_views(matrix):
    """Per-class IoU / Dice (NaN where the class is empty), float64."""
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    total = matrix.sum(0) + matrix.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / union, 2 * tp / total


# -- 1. BalancedAccuracy / GeometricMean / MacroF1 on maps ------------------------

@pytest.mark.parametrize("form", ["ids", "column", "one_hot"])
@pytest.mark.parametrize("weighted", [False, True])
def test_classification_metrics_on_maps_equal_sklearn_on_flat_pixels(form, weighted):
    batches = segmentation_batches(weighted=weighted)
    labels, predictions, weights = flattened(batches)
    for name, cls in CLASSIFICATION.items():
        value = feed(cls(num_classes=C), batches, form)
        np.testing.assert_allclose(value, sklearn_value(name, labels, predictions,
                                                        weights), rtol=1e-5)


@pytest.mark.parametrize("void", [255, -1, 2])
def test_ignore_class_equals_sklearn_on_the_kept_pixels(void):
    batches = segmentation_batches(void=void, weighted=True)
    labels, predictions, weights = flattened(batches, void)
    assert len(labels) < sum(b[0].size for b in batches)  # something was skipped
    for name, cls in CLASSIFICATION.items():
        value = feed(cls(num_classes=C, ignore_class=void), batches)
        np.testing.assert_allclose(value, sklearn_value(name, labels, predictions,
                                                        weights), rtol=1e-5)


def test_one_hot_maps_with_ignore_class_skip_that_class_rows():
    batches = segmentation_batches()
    labels, predictions, _ = flattened(batches, void=0)
    value = feed(BalancedAccuracy(num_classes=C, ignore_class=0), batches, "one_hot")
    np.testing.assert_allclose(
        value, sklearn_value("balanced_accuracy", labels, predictions), rtol=1e-5)


def test_per_image_weights_broadcast_over_pixels():
    ids, logits, _ = segmentation_batches(sizes=(3,))[0]
    image_weights = np.array([0.5, 2.0, 0.0], dtype="float32")
    metric = MacroF1(num_classes=C)
    metric.update_state(ids, logits, sample_weight=image_weights)
    pixel_weights = np.broadcast_to(image_weights[:, None, None], ids.shape)
    expected = f1_score(ids.reshape(-1), logits.argmax(-1).reshape(-1),
                        average="macro", sample_weight=pixel_weights.reshape(-1))
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)


def test_volumes_and_sequences_flatten_any_rank():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 3, size=(2, 3, 4, 2))  # (B, D, H, W) volumes
    logits = rng.normal(size=(2, 3, 4, 2, 3)).astype("float32")
    metric = MeanClassDice(num_classes=3)
    metric.update_state(ids, logits)
    expected = f1_score(ids.reshape(-1), logits.argmax(-1).reshape(-1),
                        average="macro")
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)


# -- 2. IoU / Dice views ------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("void", [None, 255])
def test_class_iou_and_dice_equal_sklearn_per_class(weighted, void):
    num_classes = 5  # class 4 never appears: empty
    batches = segmentation_batches(num_classes=4, void=void, weighted=weighted)
    labels, predictions, weights = flattened(batches, void)
    iou = feed(ClassIoU(num_classes, ignore_class=void), batches_with(batches, 5))
    dice = feed(ClassDice(num_classes, ignore_class=void), batches_with(batches, 5))
    present = [0, 1, 2, 3]
    np.testing.assert_allclose(
        iou[present], jaccard_score(labels, predictions, labels=present, average=None,
                                    sample_weight=weights), rtol=1e-5)
    np.testing.assert_allclose(
        dice[present], f1_score(labels, predictions, labels=present, average=None,
                                sample_weight=weights), rtol=1e-5)
    assert np.isnan(iou[4]) and np.isnan(dice[4])  # empty class: NaN, documented
    np.testing.assert_allclose(dice[present], 2 * iou[present] / (1 + iou[present]),
                               rtol=1e-5)


def batches_with(batches, num_classes):
    """The same batches with logits padded by never-predicted classes."""
    out = []
    for ids, logits, weights in batches:
        pad = num_classes - logits.shape[-1]
        extra = np.full((*logits.shape[:-1], pad), -100.0, dtype="float32")
        out.append((ids, np.concatenate([logits, extra], axis=-1), weights))
    return out


@pytest.mark.parametrize("void", [None, 255, 0, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_mean_class_iou_equals_keras_mean_iou(void, weighted):
    batches = segmentation_batches(void=void, weighted=weighted, seed=1)
    ours = MeanClassIoU(num_classes=C, ignore_class=void)
    keras_metric = keras.metrics.MeanIoU(num_classes=C, ignore_class=void,
                                         sparse_y_pred=False, dtype="float32")
    for ids, logits, weights in batches:
        ours.update_state(ids, logits, sample_weight=weights)
        keras_metric.update_state(ids, logits, sample_weight=weights)
    np.testing.assert_allclose(float(ours.result()), float(keras_metric.result()),
                               rtol=1e-5)


@pytest.mark.parametrize("classes", [[1, 2, 3], [3], [0, 2]])
def test_mean_class_iou_over_classes_equals_keras_iou_target_class_ids(classes):
    batches = segmentation_batches(seed=2, void=255)
    ours = MeanClassIoU(num_classes=C, classes=classes, ignore_class=255)
    keras_metric = keras.metrics.IoU(num_classes=C, target_class_ids=classes,
                                     ignore_class=255, sparse_y_pred=False,
                                     dtype="float32")
    for ids, logits, _ in batches:
        ours.update_state(ids, logits)
        keras_metric.update_state(ids, logits)
    np.testing.assert_allclose(float(ours.result()), float(keras_metric.result()),
                               rtol=1e-5)


def test_single_sigmoid_maps_equal_keras_binary_iou():
    rng = np.random.default_rng(4)
    masks = (rng.random((3, 6, 6)) < 0.2).astype("int32")
    logits = (rng.normal(size=(3, 6, 6, 1)) + 2.0 * masks[..., None] - 1.0)
    logits = logits.astype("float32")
    ours = ClassIoU(num_classes=2, class_id=1, threshold=0.0)  # logits: 0.0
    ours.update_state(masks, logits)
    keras_metric = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.0)
    keras_metric.update_state(masks, logits)
    np.testing.assert_allclose(float(ours.result()), float(keras_metric.result()),
                               rtol=1e-5)
    probabilities = ClassIoU(num_classes=2, class_id=1)  # probabilities: 0.5
    probabilities.update_state(masks[..., None], ops.sigmoid(logits))
    np.testing.assert_allclose(float(probabilities.result()), float(ours.result()),
                               rtol=1e-6)


def test_hard_dice_and_iou_equal_monai_on_one_image():
    torch = pytest.importorskip(
        "torch", reason="torch is an optional extra; this test needs it")
    monai_metrics = pytest.importorskip(
        "monai.metrics", reason="MONAI (needs torch) is an optional test oracle")
    rng = np.random.default_rng(5)
    ids = rng.integers(0, C, size=(1, 8, 8))
    ids[0, 0, :C] = np.arange(C)  # every class present in the truth
    logits = (rng.normal(size=(1, 8, 8, C)) + 1.2 * np.eye(C)[ids]).astype("float32")
    to_monai = lambda one_hot: torch.from_numpy(one_hot).permute(0, 3, 1, 2)  # noqa: E731
    truth = to_monai(np.eye(C, dtype="float32")[ids])
    predicted = to_monai(np.eye(C, dtype="float32")[logits.argmax(-1)])
    monai_dice = monai_metrics.compute_dice(predicted, truth, include_background=True)
    monai_iou = monai_metrics.compute_iou(predicted, truth, include_background=True)
    dice = ClassDice(num_classes=C)
    dice.update_state(ids, logits)
    iou = ClassIoU(num_classes=C)
    iou.update_state(ids, logits)
    np.testing.assert_allclose(ops.convert_to_numpy(dice.result()),
                               monai_dice.numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(iou.result()),
                               monai_iou.numpy()[0], rtol=1e-5)


def test_mean_dice_is_macro_f1_and_one_state_gives_every_view():
    batches = segmentation_batches(seed=6, weighted=True)
    labels, predictions, weights = flattened(batches)
    np.testing.assert_allclose(
        feed(MeanClassDice(num_classes=C), batches),
        f1_score(labels, predictions, average="macro", sample_weight=weights),
        rtol=1e-5)
    source = MeanClassIoU(num_classes=C)
    feed(source, batches)
    matrix = numpy_confusion(labels, predictions, weights)
    np.testing.assert_allclose(ops.convert_to_numpy(source.confusion_matrix), matrix,
                               rtol=1e-5)
    iou, dice = numpy_views(matrix)
    for view, expected in ((ClassIoU(num_classes=C), iou),
                           (ClassDice(num_classes=C), dice),
                           (MeanClassIoU(num_classes=C, classes=[1, 2, 3]),
                            np.nanmean(iou[1:])),
                           (MacroF1(num_classes=C), np.nanmean(dice))):
        view.confusion_matrix.assign(source.confusion_matrix)  # the same state
        np.testing.assert_allclose(ops.convert_to_numpy(view.result()), expected,
                                   rtol=1e-5)


def test_class_id_selection_and_empty_value():
    y_true = np.array([[[0, 0, 1], [1, 0, 0]]])
    y_pred = np.eye(3)[[[[0, 1, 1], [0, 0, 0]]]]
    full = ClassIoU(num_classes=3)
    full.update_state(y_true, y_pred)
    values = ops.convert_to_numpy(full.result())
    np.testing.assert_allclose(values[:2], [3 / 5, 1 / 3], rtol=1e-6)
    assert np.isnan(values[2]) and values.shape == (3,)
    single = ClassIoU(num_classes=3, class_id=1)
    single.update_state(y_true, y_pred)
    assert ops.convert_to_numpy(single.result()).shape == ()
    np.testing.assert_allclose(float(single.result()), 1 / 3, rtol=1e-6)
    chosen = ClassDice(num_classes=3, class_id=[2, 0], empty_value=1.0)
    chosen.update_state(y_true, y_pred)
    np.testing.assert_allclose(ops.convert_to_numpy(chosen.result()), [1.0, 3 / 4],
                               rtol=1e-6)


def test_means_skip_empty_classes_and_never_return_nan():
    for cls in (MeanClassIoU, MeanClassDice):
        metric = cls(num_classes=3)
        assert float(metric.result()) == 0.0  # nothing seen: 0, as Keras
        metric.update_state([[0, 0]], np.eye(3)[[[0, 0]]])  # classes 1, 2 empty
        assert float(metric.result()) == 1.0
        foreground = cls(num_classes=3, classes=[1, 2])
        foreground.update_state([[0, 0]], np.eye(3)[[[0, 0]]])
        assert float(foreground.result()) == 0.0  # no foreground anywhere
        ignored = cls(num_classes=3, ignore_class=255)
        ignored.update_state([[255, 255]], np.eye(3)[[[1, 2]]])
        assert float(ignored.result()) == 0.0  # every pixel skipped


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), num_classes=st.integers(2, 5),
       batches=st.integers(1, 3), void=st.sampled_from([None, 255, 0]))
def test_property_streaming_views_equal_numpy_and_means_are_finite(
        seed, num_classes, batches, void):
    rng = np.random.default_rng(seed)
    metrics = [ClassIoU(num_classes, ignore_class=void),
               ClassDice(num_classes, ignore_class=void),
               MeanClassIoU(num_classes, ignore_class=void),
               MeanClassDice(num_classes, ignore_class=void)]
    all_ids, all_predictions, all_weights = [], [], []
    for _ in range(batches):
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 5)),
                 int(rng.integers(1, 5)))
        ids = rng.integers(0, num_classes, size=shape)
        if void is not None:
            ids = np.where(rng.random(shape) < 0.2, void, ids)
        logits = rng.normal(size=(*shape, num_classes)).astype("float32")
        weights = rng.uniform(0.0, 2.0, size=shape).astype("float32")
        for metric in metrics:
            metric.update_state(ids, logits, sample_weight=weights)
        all_ids.append(ids.reshape(-1))
        all_predictions.append(logits.argmax(-1).reshape(-1))
        all_weights.append(weights.reshape(-1).astype(float))
    labels, predictions, weights = map(np.concatenate,
                                       (all_ids, all_predictions, all_weights))
    keep = labels != void if void is not None else np.ones(len(labels), bool)
    matrix = numpy_confusion(labels[keep], predictions[keep], weights[keep],
                             num_classes)
    iou, dice = numpy_views(matrix)
    results = [ops.convert_to_numpy(metric.result()) for metric in metrics]
    np.testing.assert_allclose(results[0], iou, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results[1], dice, rtol=1e-4, atol=1e-6)
    for result, per_class in zip(results[2:], (iou, dice), strict=True):
        expected = np.nanmean(per_class) if np.isfinite(per_class).any() else 0.0
        assert np.isfinite(result)
        np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), splits=st.integers(1, 4))
def test_property_batching_does_not_change_any_map_metric(seed, splits):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 3, size=(4, 3, 3))
    logits = rng.normal(size=(4, 3, 3, 3)).astype("float32")
    weights = rng.uniform(0.0, 1.0, size=(4, 3, 3)).astype("float32")
    for cls in (*CLASSIFICATION.values(), MeanClassIoU, MeanClassDice):
        whole, streamed = cls(num_classes=3), cls(num_classes=3)
        whole.update_state(ids, logits, sample_weight=weights)
        for part in np.array_split(np.arange(4), splits):
            streamed.update_state(ids[part], logits[part], sample_weight=weights[part])
        np.testing.assert_allclose(float(streamed.result()), float(whole.result()),
                                   rtol=1e-5, atol=1e-7)


# -- config, fit, errors -------------------------------------------------------------

@pytest.mark.parametrize("metric", [
    ClassIoU(4, class_id=[3, 1], empty_value=0.0, ignore_class=255, name="iou"),
    ClassIoU(4, class_id=2),
    ClassDice(4, threshold=0.2),
    MeanClassIoU(4, classes=[1, 2, 3], ignore_class=-1),
    MeanClassDice(4, ignore_class=0),
    BalancedAccuracy(4, ignore_class=255),
])
def test_config_round_trip(metric):
    config = metric.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == config
    batches = segmentation_batches(seed=7)
    np.testing.assert_array_equal(feed(restored, batches), feed(metric, batches))


def _segmenter(num_classes=C):
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(num_classes, 1),
    ])


def test_fit_and_evaluate_on_masks_with_weight_maps(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(12, 6, 6, 2)).astype("float32")
    y = np.clip((x[..., 0] > 0.5).astype(int) + (x[..., 1] > 1.0) * 2, 0, C - 1)
    y = np.where(rng.random(y.shape) < 0.05, 255, y)  # void pixels
    weights = rng.uniform(0.2, 2.0, size=y.shape).astype("float32")
    model = _segmenter()
    # Not keras' SparseCategoricalCrossentropy(ignore_class=255): on torch its
    # mask multiplies the batch's sample_weight tensor in place (Keras 3.15
    # `apply_mask`), so weighted metrics would see rescaled weights.
    model.compile(
        optimizer="adam",
        loss=WeightedCategoricalCrossentropy(from_logits=True, ignore_class=255),
        metrics=[MeanClassIoU(C, classes=[1, 2, 3], ignore_class=255, name="fg_iou"),
                 MeanClassDice(C, ignore_class=255),
                 ClassIoU(C, class_id=3, empty_value=0.0, ignore_class=255),
                 BalancedAccuracy(C, ignore_class=255)],
        weighted_metrics=[MacroF1(C, ignore_class=255, name="weighted_f1")],
    )
    history = model.fit(x, y, sample_weight=weights, batch_size=4, epochs=2,
                        verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values())
    results = model.evaluate(x, y, sample_weight=weights, batch_size=4, verbose=0,
                             return_dict=True)
    predictions = model.predict(x, batch_size=4, verbose=0).argmax(-1).reshape(-1)
    labels = y.reshape(-1)
    keep = labels != 255
    labels, predictions = labels[keep], predictions[keep]
    pixel_weights = weights.reshape(-1)[keep].astype(float)
    iou, dice = numpy_views(numpy_confusion(labels, predictions))
    np.testing.assert_allclose(results["fg_iou"], np.nanmean(iou[1:]), rtol=1e-5)
    np.testing.assert_allclose(results["mean_class_dice"], np.nanmean(dice),
                               rtol=1e-5)
    np.testing.assert_allclose(results["class_iou"], np.nan_to_num(iou[3]),
                               rtol=1e-5)
    np.testing.assert_allclose(results["balanced_accuracy"],
                               balanced_accuracy_score(labels, predictions),
                               rtol=1e-5)
    np.testing.assert_allclose(
        results["weighted_f1"],
        f1_score(labels, predictions, average="macro", sample_weight=pixel_weights),
        rtol=1e-5)
    path = os.path.join(tmp_path, "segmenter.keras")
    model.save(path)
    again = keras.saving.load_model(path).evaluate(
        x, y, sample_weight=weights, batch_size=4, verbose=0, return_dict=True)
    for name, value in results.items():
        np.testing.assert_allclose(again[name], value, rtol=1e-5, atol=1e-6)


def test_fit_with_a_vector_class_iou_metric():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    y = (x[..., 0] > 0).astype("int32")
    model = _segmenter(2)
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[ClassIoU(2)])
    results = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    predictions = model.predict(x, verbose=0).argmax(-1).reshape(-1)
    expected, _ = numpy_views(numpy_confusion(y.reshape(-1), predictions,
                                              num_classes=2))
    assert np.asarray(results["class_iou"]).shape == (2,)
    np.testing.assert_allclose(np.asarray(results["class_iou"]), expected, rtol=1e-5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ClassIoU(3, class_id=3), r"`class_id`. Expected None, a class id or a "
                                      r"non-empty list of distinct class ids in "
                                      r"\[0, 3\). Received: class_id=3"),
    (lambda: ClassIoU(3, class_id=[0, 0]), r"`class_id`.*Received: class_id=\[0, 0\]"),
    (lambda: ClassDice(3, class_id=True), r"`class_id`.*Received: class_id=True"),
    (lambda: ClassDice(3, class_id=[]), r"`class_id`.*Received: class_id=\[\]"),
    (lambda: ClassIoU(3, empty_value=float("nan")), r"`empty_value`. Expected a "
                                                    r"finite float"),
    (lambda: ClassIoU(3, empty_value="zero"), r"`empty_value`"),
    (lambda: MeanClassIoU(3, classes=2), r"`classes`. Expected None or a non-empty "
                                         r"list.*Received: classes=2"),
    (lambda: MeanClassIoU(3, classes=[1, -1]), r"`classes`.*\[1, -1\]"),
    (lambda: MeanClassDice(3, classes=[]), r"`classes`"),
    (lambda: MeanClassIoU(3, ignore_class=1.5), r"`ignore_class`. Expected an int"),
    (lambda: BalancedAccuracy(3, ignore_class=True), r"`ignore_class`"),
    (lambda: MacroF1(3, ignore_class=2**40), r"`ignore_class`"),
    (lambda: MeanClassIoU(1), r"`num_classes`"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_mask_shape_mismatch_raises():
    metric = MeanClassIoU(num_classes=3)
    with pytest.raises(ValueError, match=r"argument `y_true`. Expected labels of the "
                       r"same sample shape as y_pred \(2, 4, 4\).*got shape "
                       r"\(2, 4, 5\)"):
        metric.update_state(np.zeros((2, 4, 5), "int32"), np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"argument `y_true`.*same sample shape"):
        metric.update_state(np.zeros((2, 5, 4, 3)), np.zeros((2, 4, 4, 3)))


def test_ids_outside_range_raise_unless_ignored():
    scores = np.zeros((1, 2, 2, 3), "float32")
    for ids in ([[[0, 3], [1, 2]]], [[[0, -1], [1, 2]]]):
        with pytest.raises(ValueError, match=r"argument `y_true`"):
            MeanClassIoU(num_classes=3).update_state(np.array(ids), scores)
    with pytest.raises(ValueError, match=r"argument `y_true`"):  # 3 is not ignored
        MeanClassIoU(num_classes=3, ignore_class=255).update_state(
            np.array([[[0, 255], [3, 2]]]), scores)
    ok = MeanClassIoU(num_classes=3, ignore_class=-1)
    ok.update_state(np.array([[[0, -1], [0, -1]]]), scores)
    assert ops.convert_to_numpy(ok.confusion_matrix).sum() == 2


@pytest.mark.parametrize("shape", [(2, 5), (2, 4, 4, 2), (4, 4), (3,), (2, 4, 5, 2)])
def test_weight_maps_of_the_wrong_shape_raise(shape):
    metric = MeanClassDice(num_classes=3)
    with pytest.raises(ValueError, match=r"argument `sample_weight`. Expected weights "
                       r"broadcastable to the labels' shape \(2, 4, 5\).*got shape "
                       + rf"\({', '.join(map(str, shape))},?\)"):
        metric.update_state(np.zeros((2, 4, 5), "int32"), np.zeros((2, 4, 5, 3)),
                            sample_weight=np.ones(shape, "float32"))
    assert ops.convert_to_numpy(metric.confusion_matrix).sum() == 0


def test_traced_ignore_class_is_masked(monkeypatch):
    import kimbalance.metrics as metrics_module

    monkeypatch.setattr(metrics_module, "is_concrete", lambda value: False)
    ids = ops.convert_to_tensor(np.array([[0, 1, 255, 2, 1]]))
    scores = ops.convert_to_tensor(np.eye(3, dtype="float32")[[[0, 1, 2, 2, 1]]])
    for void in (255, 1):
        metric = MeanClassIoU(num_classes=3, ignore_class=void)
        metric.update_state(ids, scores)
        matrix = ops.convert_to_numpy(metric.confusion_matrix)
        assert matrix.sum() == (4 if void == 255 else 2)
        assert matrix[1].sum() == 0 or void != 1
