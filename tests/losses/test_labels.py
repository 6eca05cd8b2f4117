"""Label values in every loss: clear errors when they are concrete (eager).

Regression for defect 4 of issue #10 and the "labels in losses" kind: ids
outside [0, C) gave a bare IndexError on torch and a silent value on jax;
negative ids (torch's -100), fractional / NaN labels, 0/1 targets with other
values, all-zero one-hot rows and int64 ids >= 2**32 were accepted. Now each
raises the same ValueError naming `y_true` on every backend, through the
function and through the class, for NumPy labels and for eager tensors.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kimbalance.losses import (
    AsymmetricLoss,
    CDTLoss,
    DistributionBalancedLoss,
    FocalCrossentropy,
    LDAMLoss,
    LogitAdjustedCrossentropy,
    SigmoidFocalCrossentropy,
    WeightedBinaryCrossentropy,
    WeightedCategoricalCrossentropy,
    asymmetric_loss,
    cdt_loss,
    distribution_balanced_loss,
    focal_crossentropy,
    ldam_loss,
    logit_adjusted_crossentropy,
    sigmoid_focal_crossentropy,
    weighted_binary_crossentropy,
    weighted_categorical_crossentropy,
)

C = 4
COUNTS = [50, 20, 8, 3]
LOGITS = np.random.default_rng(0).normal(size=(4, C)).astype("float32")
COSINES = np.tanh(LOGITS)

# name: (class instance factory, function with hyperparameters bound, y_pred)
SINGLE_LABEL = {
    "wcce": (lambda: WeightedCategoricalCrossentropy(
        class_weight=[1.0, 2.0, 3.0, 4.0], from_logits=True,
        reduction="mean_with_sample_weight"),
        lambda y, z: weighted_categorical_crossentropy(y, z, from_logits=True),
        LOGITS),
    "focal": (lambda: FocalCrossentropy(from_logits=True),
              lambda y, z: focal_crossentropy(y, z, alpha=[1, 2, 3, 4],
                                              from_logits=True), LOGITS),
    "logit_adjusted": (lambda: LogitAdjustedCrossentropy(COUNTS),
                       lambda y, z: logit_adjusted_crossentropy(
                           y, z, class_priors=COUNTS), LOGITS),
    "ldam": (lambda: LDAMLoss(COUNTS, class_weight="balanced"),
             lambda y, z: ldam_loss(y, z, class_counts=COUNTS), COSINES),
    "cdt": (lambda: CDTLoss(COUNTS),
            lambda y, z: cdt_loss(y, z, class_counts=COUNTS), LOGITS),
}
MULTI_LABEL = {
    "wbce": (lambda: WeightedBinaryCrossentropy(pos_weight=2.0, from_logits=True),
             lambda y, z: weighted_binary_crossentropy(y, z, from_logits=True)),
    "sigmoid_focal": (lambda: SigmoidFocalCrossentropy(from_logits=True),
                      lambda y, z: sigmoid_focal_crossentropy(y, z,
                                                              from_logits=True)),
    "asl": (AsymmetricLoss, asymmetric_loss),
}
HARD_MULTI_LABEL = {
    "db": (lambda: DistributionBalancedLoss(COUNTS, num_samples=100),
           lambda y, z: distribution_balanced_loss(y, z, label_counts=COUNTS,
                                                   num_samples=100)),
}

BAD_IDS = {
    "out_of_range": (np.array([0, 5, 1, 2]), r"class ids < 4 .*found \[5\]"),
    "negative": (np.array([0, -100, 1, 2]), r"class ids >= 0.*found \[-100\]"),
    "fractional": (np.array([0.0, 1.5, 1.0, 2.0]), r"integer class ids.*\[1\.5\]"),
    "nan": (np.array([0.0, np.nan, 1.0, 2.0]), r"finite class ids"),
    "int64_wraps_int32": (np.array([0, 2**32 + 1, 1, 2], dtype=np.int64),
                          r"class ids < 4 .*found \[4294967297\]"),
    "column": (np.array([[0], [4], [1], [2]]), r"class ids < 4 .*found \[4\]"),
}
ONE_HOT = np.eye(C, dtype="float32")[[0, 1, 2, 3]]
BAD_DENSE = {
    "value_2": (ONE_HOT * 2, r"values in \[0, 1\] \(found \[2\]\)"),
    "negative": (ONE_HOT - 0.5, r"values in \[0, 1\] \(found \[-0\.5\]\)"),
    "nan": (np.where(ONE_HOT == 1, np.nan, 0.0), r"finite labels"),
    "all_zero_row": (ONE_HOT * np.array([[1], [0], [1], [1]]),
                     r"sum to 1 \(rows \[1\] sum to \[0\.0\]"),
    "soft_not_normalised": (ONE_HOT * 0.5, r"sum to 1 \(rows \[0, 1, 2, 3\]"),
}


def _message(pattern):
    return r"Invalid value for argument `y_true`\. Expected .*" + pattern + \
        r".*Received: y_true="


def _as_tensor(y):
    # int64 ids above 2**31 are exercised as NumPy only: jax (without x64)
    # cannot hold them as a tensor at all.
    return ops.convert_to_tensor(y)


@pytest.mark.parametrize("case", list(BAD_IDS))
@pytest.mark.parametrize("loss_name", list(SINGLE_LABEL))
def test_bad_class_ids_raise_for_single_label_losses(loss_name, case):
    make_loss, function, y_pred = SINGLE_LABEL[loss_name]
    y, pattern = BAD_IDS[case]
    inputs = [y] if case == "int64_wraps_int32" else [y, _as_tensor(y)]
    for labels in inputs:
        with pytest.raises(ValueError, match=_message(pattern)):
            make_loss()(labels, y_pred)
        with pytest.raises(ValueError, match=_message(pattern)):
            function(labels, y_pred)


@pytest.mark.parametrize("case", list(BAD_DENSE))
@pytest.mark.parametrize("loss_name", list(SINGLE_LABEL))
def test_bad_one_hot_rows_raise_for_single_label_losses(loss_name, case):
    make_loss, function, y_pred = SINGLE_LABEL[loss_name]
    y, pattern = BAD_DENSE[case]
    for labels in (y, _as_tensor(y.astype("float32"))):
        with pytest.raises(ValueError, match=_message(pattern)):
            make_loss()(labels, y_pred)
        with pytest.raises(ValueError, match=_message(pattern)):
            function(labels, y_pred)


@pytest.mark.parametrize("loss_name", list(SINGLE_LABEL))
def test_valid_soft_and_half_precision_labels_pass(loss_name):
    make_loss, function, y_pred = SINGLE_LABEL[loss_name]
    soft = np.random.default_rng(3).dirichlet(np.ones(C), size=4).astype("float32")
    for labels in (soft, ops.convert_to_tensor(soft, "bfloat16"),
                   np.array([0, 1, 2, 3]), np.array([0.0, 3.0, 1.0, 1.0])):
        assert np.all(np.isfinite(ops.convert_to_numpy(function(labels, y_pred))))
        assert np.isfinite(float(make_loss()(labels, y_pred)))


@pytest.mark.parametrize("make_loss", [
    lambda: WeightedCategoricalCrossentropy(from_logits=True),
    lambda: FocalCrossentropy(from_logits=True),
], ids=["wcce", "focal"])
def test_negative_ids_suggest_ignore_class_which_accepts_them(make_loss):
    y = np.array([0, -100, 1, 2])
    with pytest.raises(ValueError, match=r"found \[-100\]; pass ignore_class=-100"):
        make_loss()(y, LOGITS)
    loss = make_loss()
    loss.ignore_class = -100
    value = loss(y, LOGITS)
    want = make_loss()(y[[0, 2, 3]], LOGITS[[0, 2, 3]])
    np.testing.assert_allclose(float(value), float(want), rtol=1e-6)
    with pytest.raises(ValueError, match=r"class ids < 4 .*or ignore_class=-100 "
                       r"\(found \[7\]\)"):
        loss(np.array([0, -100, 7, 2]), LOGITS)


MULTI_HOT = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]],
                     dtype="float32")
BAD_MULTI = {
    "value_2": (MULTI_HOT * 2, r"(values in \[0, 1\]|0 and 1 values) \(found \[2\]\)"),
    "negative": (MULTI_HOT - 1, r"(values in \[0, 1\]|0 and 1 values) "
                 r"\(found \[-1\]\)"),
    "nan": (np.where(MULTI_HOT == 1, np.nan, 0.0), r"finite labels"),
}


@pytest.mark.parametrize("case", list(BAD_MULTI))
@pytest.mark.parametrize("loss_name", list(MULTI_LABEL) + list(HARD_MULTI_LABEL))
def test_bad_multi_hot_labels_raise(loss_name, case):
    make_loss, function = {**MULTI_LABEL, **HARD_MULTI_LABEL}[loss_name]
    y, pattern = BAD_MULTI[case]
    for labels in (y, _as_tensor(y.astype("float32"))):
        with pytest.raises(ValueError, match=_message(pattern)):
            make_loss()(labels, LOGITS)
        with pytest.raises(ValueError, match=_message(pattern)):
            function(labels, LOGITS)


def test_soft_multi_labels_pass_where_allowed_and_raise_for_db():
    soft = MULTI_HOT * 0.7
    for make_loss, function in MULTI_LABEL.values():
        assert np.isfinite(float(make_loss()(soft, LOGITS)))
        assert np.all(np.isfinite(ops.convert_to_numpy(function(soft, LOGITS))))
    make_loss, function = HARD_MULTI_LABEL["db"]
    pattern = _message(r"multi-hot labels of 0 and 1 values \(found \[0\.7\]\)")
    with pytest.raises(ValueError, match=pattern):
        make_loss()(soft, LOGITS)
    with pytest.raises(ValueError, match=pattern):
        function(soft, LOGITS)


def test_binary_labels_for_single_output():
    y = np.array([0.0, 1.0, 2.0])
    z = np.zeros((3, 1), "float32")
    with pytest.raises(ValueError, match=_message(r"values in \[0, 1\]")):
        weighted_binary_crossentropy(y, z)
    assert np.all(np.isfinite(ops.convert_to_numpy(
        weighted_binary_crossentropy(np.array([0.0, 1.0, 0.25]), z))))


def test_labels_are_not_checked_in_a_compiled_model():
    # Inside a compiled train step (jax / tensorflow trace it; torch runs
    # eagerly and still checks) the loss adds no host round trip: fit works
    # with valid labels on every backend.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(C)(inputs))
    model.compile(optimizer="sgd", loss=FocalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    history = model.fit(x, np.arange(8) % C, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.jax_only
def test_jax_jit_skips_the_check():
    # Reason: documents the jit behaviour (values unknown while tracing).
    import jax

    value = jax.jit(lambda y, z: weighted_categorical_crossentropy(y, z))(
        np.array([0, 5, 1, 2]), LOGITS)
    assert value.shape == (4,)


@pytest.mark.tensorflow_only
def test_tf_function_skips_the_check():
    # Reason: documents the tf.function behaviour (graph tensors have no value).
    import tensorflow as tf

    value = tf.function(lambda y, z: weighted_categorical_crossentropy(y, z))(
        np.array([0, 1, 1, 2]), LOGITS)
    assert value.shape == (4,)


@pytest.mark.torch_only
def test_torch_compile_skips_the_check():
    # Reason: documents the torch.compile behaviour (dynamo traces the loss,
    # so values are unknown there); the "eager" dynamo backend keeps it fast.
    import torch

    compiled = torch.compile(
        lambda y, z: weighted_categorical_crossentropy(y, z, from_logits=True),
        backend="eager")
    logits = torch.tensor(LOGITS)
    valid = torch.tensor([3, 2, 1, 0])
    np.testing.assert_allclose(
        compiled(valid, logits).numpy(),
        _np_value(weighted_categorical_crossentropy(valid, logits, from_logits=True)),
        rtol=1e-6)
    try:  # Undefined under a trace: any result or a backend error, not ours.
        compiled(torch.tensor([0, 5, 1, 2]), logits)
    except ValueError as error:
        assert "y_true" not in str(error)
    except (RuntimeError, IndexError):
        pass


def _np_value(x):
    return np.asarray(ops.convert_to_numpy(x))
