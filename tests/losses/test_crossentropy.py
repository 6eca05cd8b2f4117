"""WeightedCategoricalCrossentropy / WeightedBinaryCrossentropy.

Oracles: float64 NumPy formulas, torch.nn.CrossEntropyLoss(weight=...) and
torch.nn.BCEWithLogitsLoss(pos_weight=...) (through the root conftest's `torch`
fixture: those tests skip without torch), and Keras' own cross-entropies.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.losses import (
    WeightedBinaryCrossentropy,
    WeightedCategoricalCrossentropy,
    weighted_binary_crossentropy,
    weighted_categorical_crossentropy,
)

N, C, L = 8, 4, 3
RTOL, ATOL = 1e-5, 1e-6
CLASS_WEIGHT = [0.5, 1.0, 2.0, 4.0]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _logits(seed=0, shape=(N, C), scale=2.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype("float32")


def _ids(seed=1, n=N, c=C):
    return np.random.default_rng(seed).permutation(np.arange(n) % c).astype("int64")


def _labels(form, ids):
    """The same labels as class ids, an (N, 1) column, one-hot, or soft."""
    if form == "ids":
        return ids
    if form == "ids_col":
        return ids[:, None]
    onehot = np.eye(C, dtype="float32")[ids]
    if form == "onehot":
        return onehot
    soft = np.random.default_rng(7).dirichlet(np.ones(C), size=len(ids))
    return (0.5 * onehot + 0.5 * soft).astype("float32")


def _dense(form, ids):
    y = _labels(form, ids)
    return np.eye(C)[ids] if form.startswith("ids") else np.asarray(y, np.float64)


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def np_log_probs(p):
    p = np.asarray(p, np.float64)
    p = p / p.sum(-1, keepdims=True)
    return np.log(np.clip(p, 1e-7, 1 - 1e-7))


def oracle_weighted_cce(targets, y_pred, class_weight=None, label_smoothing=0.0,
                        from_logits=True):
    targets = np.asarray(targets, np.float64)
    num = targets.shape[-1]
    targets = targets * (1 - label_smoothing) + label_smoothing / num
    weights = np.ones(num) if class_weight is None else np.asarray(class_weight)
    logp = np_log_softmax(y_pred) if from_logits else np_log_probs(y_pred)
    return -(targets * weights * logp).sum(-1)


def _softmax(z):
    return np.exp(np_log_softmax(z)).astype("float32")


# --- WeightedCategoricalCrossentropy: values -----------------------------------


@pytest.mark.parametrize("from_logits", [True, False])
def test_weighted_cce_matches_float64_oracle(from_logits):
    ids, logits = _ids(), _logits()
    y_pred = logits if from_logits else _softmax(logits)
    for form in ("ids", "ids_col", "onehot", "soft"):
        for label_smoothing in (0.0, 0.2):
            got = weighted_categorical_crossentropy(
                _labels(form, ids), y_pred, class_weight=CLASS_WEIGHT,
                from_logits=from_logits, label_smoothing=label_smoothing)
            want = oracle_weighted_cce(_dense(form, ids), y_pred, CLASS_WEIGHT,
                                       label_smoothing, from_logits)
            assert tuple(got.shape) == (N,)
            np.testing.assert_allclose(_np(got), want, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{form} {label_smoothing}")


def test_weighted_cce_rank3_class_ids():
    # Per-position class ids (N, T) with (N, T, C) logits, e.g. segmentation.
    logits = _logits(shape=(2, 5, C))
    ids = np.random.default_rng(3).integers(0, C, size=(2, 5))
    got = weighted_categorical_crossentropy(ids, logits, class_weight=CLASS_WEIGHT,
                                            from_logits=True)
    want = oracle_weighted_cce(np.eye(C)[ids], logits, CLASS_WEIGHT)
    np.testing.assert_allclose(_np(got), want, rtol=RTOL, atol=ATOL)


def test_uniform_class_weight_equals_unweighted_and_keras():
    ids, logits = _ids(), _logits()
    keras_ce = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                    label_smoothing=0.1)
    for form in ("ids", "onehot"):
        y = _labels(form, ids)
        uniform = WeightedCategoricalCrossentropy(class_weight=[2.5] * C,
                                                  from_logits=True,
                                                  label_smoothing=0.1)
        plain = WeightedCategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
        np.testing.assert_allclose(_np(uniform(y, logits)),
                                   2.5 * _np(plain(y, logits)), rtol=RTOL)
        np.testing.assert_allclose(_np(plain(y, logits)),
                                   _np(keras_ce(np.eye(C)[ids], logits)), rtol=RTOL)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(
        _np(WeightedCategoricalCrossentropy(from_logits=True)(ids, logits)),
        _np(sparse(ids, logits)), rtol=RTOL)


def test_class_weight_dict_equals_list():
    ids, logits = _ids(), _logits()
    as_dict = WeightedCategoricalCrossentropy(
        class_weight=dict(enumerate(CLASS_WEIGHT)), from_logits=True)
    as_list = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT,
                                              from_logits=True)
    assert as_dict.get_config()["class_weight"] == CLASS_WEIGHT
    np.testing.assert_allclose(_np(as_dict(ids, logits)), _np(as_list(ids, logits)))



def test_class_weight_any_mapping_equals_list():
    # Any Mapping (not only a dict) is read as {class: weight}.
    import types

    ids, logits = _ids(), _logits()
    proxy = types.MappingProxyType(dict(enumerate(CLASS_WEIGHT)))
    as_proxy = WeightedCategoricalCrossentropy(class_weight=proxy, from_logits=True)
    as_list = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT,
                                              from_logits=True)
    np.testing.assert_allclose(_np(as_proxy(ids, logits)), _np(as_list(ids, logits)))

# --- WeightedCategoricalCrossentropy: torch parity and reductions ---------------


def test_torch_weighted_mean_parity(torch):
    ids, logits = _ids(), _logits()
    z = torch.tensor(logits, dtype=torch.float64)
    for label_smoothing, ignore_class in [(0.0, None), (0.15, None), (0.0, 2),
                                          (0.15, 2)]:
        loss = WeightedCategoricalCrossentropy(
            class_weight=CLASS_WEIGHT, from_logits=True,
            label_smoothing=label_smoothing, ignore_class=ignore_class,
            reduction="mean_with_sample_weight")
        ref = torch.nn.CrossEntropyLoss(
            weight=torch.tensor(CLASS_WEIGHT, dtype=torch.float64),
            label_smoothing=label_smoothing,
            ignore_index=-100 if ignore_class is None else ignore_class)
        want = ref(z, torch.tensor(ids)).item()
        np.testing.assert_allclose(float(_np(loss(ids, logits))), want, rtol=RTOL)
        # The per-sample values are torch's reduction="none" values.
        ref.reduction = "none"
        got = weighted_categorical_crossentropy(
            ids, logits, class_weight=CLASS_WEIGHT, from_logits=True,
            label_smoothing=label_smoothing, ignore_class=ignore_class)
        np.testing.assert_allclose(_np(got), ref(z, torch.tensor(ids)).numpy(),
                                   rtol=RTOL, atol=ATOL)


def test_torch_weighted_mean_parity_for_one_hot_labels(torch):
    ids, logits = _ids(), _logits()
    loss = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT, from_logits=True,
                                           reduction="mean_with_sample_weight")
    ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHT,
                                                        dtype=torch.float64))
    want = ref(torch.tensor(logits, dtype=torch.float64), torch.tensor(ids)).item()
    got = float(_np(loss(_labels("onehot", ids), logits)))
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_soft_labels_match_torch_probability_targets(torch):
    # torch averages probability targets over N (not over weights): our default.
    ids, logits = _ids(), _logits()
    soft = _labels("soft", ids)
    ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHT,
                                                        dtype=torch.float64))
    want = ref(torch.tensor(logits, dtype=torch.float64),
               torch.tensor(soft, dtype=torch.float64)).item()
    loss = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT, from_logits=True)
    np.testing.assert_allclose(float(_np(loss(soft, logits))), want, rtol=RTOL)


def test_torch_mean_with_sample_weight():
    ids, logits = _ids(), _logits()
    sample_weight = np.linspace(0.5, 2.0, N).astype("float32")
    loss = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT, from_logits=True,
                                           reduction="mean_with_sample_weight")
    per_sample = oracle_weighted_cce(np.eye(C)[ids], logits, CLASS_WEIGHT)
    class_w = np.asarray(CLASS_WEIGHT)[ids]
    want = (sample_weight * per_sample).sum() / (sample_weight * class_w).sum()
    for weight in (sample_weight, sample_weight[:, None]):
        got = float(_np(loss(ids, logits, sample_weight=weight)))
        np.testing.assert_allclose(got, want, rtol=RTOL)


def test_ignore_class_mean_over_kept_samples_like_keras():
    ids, logits = _ids(), _logits()
    keep = ids != 1
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                            ignore_class=1)
    ours = WeightedCategoricalCrossentropy(from_logits=True, ignore_class=1)
    np.testing.assert_allclose(float(_np(ours(ids, logits))),
                               float(_np(keras_loss(ids, logits))), rtol=RTOL)
    weighted = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT,
                                               from_logits=True, ignore_class=1)
    per_sample = oracle_weighted_cce(np.eye(C)[ids], logits, CLASS_WEIGHT)
    np.testing.assert_allclose(float(_np(weighted(ids, logits))),
                               per_sample[keep].sum() / keep.sum(), rtol=RTOL)
    summed = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT,
                                             from_logits=True, ignore_class=1,
                                             reduction="sum")
    np.testing.assert_allclose(float(_np(summed(ids, logits))),
                               per_sample[keep].sum(), rtol=RTOL)
    none = WeightedCategoricalCrossentropy(class_weight=CLASS_WEIGHT, from_logits=True,
                                           ignore_class=1, reduction=None)
    np.testing.assert_allclose(_np(none(ids, logits)), np.where(keep, per_sample, 0),
                               rtol=RTOL, atol=ATOL)


# --- WeightedCategoricalCrossentropy: bad input ---------------------------------


def test_class_weight_length_checked_against_y_pred_by_class():
    loss = WeightedCategoricalCrossentropy(class_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"argument `class_weight`.*4 values.*"
                       r"Received: class_weight=\[1.0, 2.0, 3.0\]"):
        loss(_ids(), _softmax(_logits()))


def test_negative_class_weight():
    with pytest.raises(ValueError, match=r"argument `class_weight`.*>= 0.*"
                       r"Received: class_weight=\[1.0, -1.0\]"):
        WeightedCategoricalCrossentropy(class_weight=[1.0, -1.0])


def test_nan_class_weight():
    with pytest.raises(ValueError, match=r"argument `class_weight`.*finite"):
        WeightedCategoricalCrossentropy(class_weight=[1.0, float("nan")])


def test_scalar_class_weight():
    with pytest.raises(ValueError, match=r"argument `class_weight`.*per-class.*"
                       r"Received: class_weight=2.0"):
        WeightedCategoricalCrossentropy(class_weight=2.0)


def test_class_weight_dict_missing_a_class():
    with pytest.raises(ValueError,
                       match=r"argument `class_weight`.*one weight for each class"):
        WeightedCategoricalCrossentropy(class_weight={0: 1.0, 2: 3.0})


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_label_smoothing_out_of_range(value):
    with pytest.raises(ValueError, match=r"argument `label_smoothing`.*>= 0.0 and "
                       rf"<= 1.0. Received: label_smoothing={value}"):
        WeightedCategoricalCrossentropy(label_smoothing=value)


def test_ignore_class_not_an_int():
    with pytest.raises(ValueError, match=r"argument `ignore_class`.*an int.*"
                       r"Received: ignore_class=1.5"):
        WeightedCategoricalCrossentropy(ignore_class=1.5)


def test_from_logits_not_a_bool():
    with pytest.raises(ValueError, match=r"argument `from_logits`.*a bool"):
        WeightedCategoricalCrossentropy(from_logits="yes")


def test_labels_of_wrong_rank():
    labels = np.zeros((N, C, 1), dtype="float32")
    with pytest.raises(ValueError, match=r"argument `y_true`.*"
                       r"Received: y_true='<tensor of shape \(8, 4, 1\)>'"):
        WeightedCategoricalCrossentropy(from_logits=True)(labels, _logits())


def test_labels_of_wrong_width():
    with pytest.raises(ValueError, match=r"argument `y_true`.*\(8, 4\).*"
                       r"Received: y_true='<tensor of shape \(8, 3\)>'"):
        weighted_categorical_crossentropy(np.zeros((N, 3)), _logits())


def test_ignore_class_with_one_hot_labels():
    loss = WeightedCategoricalCrossentropy(ignore_class=0, from_logits=True)
    with pytest.raises(ValueError, match=r"argument `ignore_class`.*class ids"):
        loss(_labels("onehot", _ids()), _logits())


# --- WeightedBinaryCrossentropy -----------------------------------------------


def _multi_hot(seed=2, shape=(N, L)):
    return (np.random.default_rng(seed).random(shape) < 0.3).astype("float32")


def _sigmoid(z):
    return (1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))).astype("float32")


def oracle_weighted_bce(y, y_pred, pos_weight=None, neg_weight=None,
                        label_smoothing=0.0, from_logits=True):
    y = np.asarray(y, np.float64) * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        z = np.asarray(y_pred, np.float64)
        log_p, log_1mp = -np.logaddexp(0, -z), -np.logaddexp(0, z)
    else:
        p = np.clip(np.asarray(y_pred, np.float64), 1e-7, 1 - 1e-7)
        log_p, log_1mp = np.log(p), np.log1p(-p)
    pos = 1.0 if pos_weight is None else np.asarray(pos_weight)
    neg = 1.0 if neg_weight is None else np.asarray(neg_weight)
    return -(pos * y * log_p + neg * (1 - y) * log_1mp)


def test_weighted_bce_equals_torch_bce_with_logits_elementwise(torch):
    y, logits = _multi_hot(), _logits(shape=(N, L), scale=3.0)
    for pos_weight in (None, 3.0, [0.5, 2.0, 9.0]):
        torch_pos = None if pos_weight is None else torch.tensor(
            np.broadcast_to(pos_weight, (L,)), dtype=torch.float64)
        ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch_pos, reduction="none")
        elementwise = ref(torch.tensor(logits, dtype=torch.float64),
                          torch.tensor(y, dtype=torch.float64)).numpy()
        got = weighted_binary_crossentropy(y, logits, pos_weight=pos_weight,
                                           from_logits=True)
        np.testing.assert_allclose(_np(got), elementwise.mean(-1), rtol=RTOL,
                                   atol=ATOL)
        for label in range(L):  # Rank-1 inputs give the elements themselves.
            weight = pos_weight[label] if isinstance(pos_weight, list) else pos_weight
            column = weighted_binary_crossentropy(y[:, label], logits[:, label],
                                                  pos_weight=weight, from_logits=True)
            np.testing.assert_allclose(_np(column), elementwise[:, label], rtol=RTOL,
                                       atol=ATOL)
        loss = WeightedBinaryCrossentropy(pos_weight=pos_weight, from_logits=True)
        np.testing.assert_allclose(float(_np(loss(y, logits))), elementwise.mean(),
                                   rtol=RTOL)


def test_weighted_bce_neg_weight_and_smoothing_match_oracle():
    y, logits = _multi_hot(), _logits(shape=(N, L), scale=3.0)
    kwargs = dict(pos_weight=[1.0, 4.0, 2.0], neg_weight=[0.5, 1.0, 0.25],
                  label_smoothing=0.1)
    for from_logits in (True, False):
        y_pred = logits if from_logits else _sigmoid(logits)
        got = weighted_binary_crossentropy(y, y_pred, from_logits=from_logits,
                                           **kwargs)
        want = oracle_weighted_bce(y, y_pred, from_logits=from_logits, **kwargs)
        np.testing.assert_allclose(_np(got), want.mean(-1), rtol=RTOL, atol=ATOL)


def test_unweighted_bce_equals_keras():
    y, logits = _multi_hot(), _logits(shape=(N, L), scale=3.0)
    for from_logits in (True, False):
        y_pred = logits if from_logits else _sigmoid(logits)
        keras_bce = keras.losses.BinaryCrossentropy(
            from_logits=from_logits, label_smoothing=0.2, reduction=None)
        ours = WeightedBinaryCrossentropy(from_logits=from_logits,
                                          label_smoothing=0.2, reduction=None)
        np.testing.assert_allclose(_np(ours(y, y_pred)), _np(keras_bce(y, y_pred)),
                                   rtol=1e-5, atol=1e-6)


def test_binary_labels_of_shape_n_for_outputs_n_by_1():
    y, logits = _multi_hot(shape=(N,)), _logits(shape=(N, 1))
    as_vector = weighted_binary_crossentropy(y, logits, pos_weight=2.0,
                                             from_logits=True)
    as_column = weighted_binary_crossentropy(y[:, None], logits, pos_weight=2.0,
                                             from_logits=True)
    assert tuple(as_vector.shape) == (N,)
    np.testing.assert_allclose(_np(as_vector), _np(as_column))
    np.testing.assert_allclose(_np(as_vector),
                               oracle_weighted_bce(y[:, None], logits, 2.0)[:, 0],
                               rtol=RTOL, atol=ATOL)


def test_pos_weight_length_checked_against_y_pred():
    loss = WeightedBinaryCrossentropy(pos_weight=[1.0, 2.0], from_logits=True)
    with pytest.raises(ValueError, match=r"argument `pos_weight`.*3 values \(one per "
                       r"label.*Received: pos_weight=\[1.0, 2.0\]"):
        loss(_multi_hot(), _logits(shape=(N, L)))


def test_negative_pos_weight():
    with pytest.raises(ValueError, match=r"argument `pos_weight`.*>= 0.*"
                       r"Received: pos_weight=-1.0"):
        WeightedBinaryCrossentropy(pos_weight=-1.0)


def test_negative_neg_weight_in_list():
    with pytest.raises(ValueError, match=r"argument `neg_weight`.*>= 0.*"
                       r"Received: neg_weight=\[1.0, -2.0\]"):
        WeightedBinaryCrossentropy(neg_weight=[1.0, -2.0])


def test_binary_label_smoothing_out_of_range():
    with pytest.raises(ValueError, match=r"argument `label_smoothing`.*"
                       r"Received: label_smoothing=2.0"):
        weighted_binary_crossentropy(_multi_hot(), _logits(shape=(N, L)),
                                     label_smoothing=2.0)


def test_binary_labels_of_wrong_shape():
    with pytest.raises(ValueError, match=r"argument `y_true`.*\(8, 3\).*"
                       r"Received: y_true='<tensor of shape \(8, 2\)>'"):
        WeightedBinaryCrossentropy(from_logits=True)(np.zeros((N, 2)),
                                                     _logits(shape=(N, L)))
