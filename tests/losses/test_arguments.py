"""Hyperparameters, flags, configs and `call()` of every loss.

Regressions for issue #10: overflowing or non-finite hyperparameters gave
NaN / inf losses (`scale=1e308`, `tau=1e308`, huge gamma, priors of 1e308),
all-zero class weights were accepted, the loss *functions* took
`from_logits="no"` as true, not every class kept its arguments as
attributes, and `WeightedCategoricalCrossentropy.call` returned `l / w[y]`
under `reduction="mean_with_sample_weight"`.
"""

import json

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
IDS = np.array([0, 1, 2, 3, 1])
LOGITS = np.random.default_rng(0).normal(size=(5, C)).astype("float32")
MULTI_HOT = (np.random.default_rng(1).random((5, C)) < 0.4).astype("float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


# --- overflowing / non-finite hyperparameters -------------------------------------

BAD_HYPERPARAMETERS = [
    (LDAMLoss, dict(class_counts=COUNTS, scale=1e308), r"`scale`.*<= 10000"),
    (LDAMLoss, dict(class_counts=COUNTS, max_margin=1e308), r"`max_margin`.*<= 10000"),
    (LDAMLoss, dict(class_counts=[1e308, 1, 1, 1]), r"`class_counts`.*2\*\*53"),
    (LDAMLoss, dict(class_counts=COUNTS, class_weight=[0, 0, 0, 0]),
     r"`class_weight`.*at least one > 0"),
    (LDAMLoss, dict(class_counts=COUNTS, class_weight=[1e308, 1, 1, 1]),
     r"`class_weight`.*(<= 1e\+12|finite)"),
    (LogitAdjustedCrossentropy, dict(class_priors=COUNTS, tau=1e308),
     r"`tau`.*<= 10000"),
    (LogitAdjustedCrossentropy, dict(class_priors=[1, np.nan, 1, 1]),
     r"`class_priors`.*finite"),
    (FocalCrossentropy, dict(gamma=1e308), r"`gamma`.*<= 10000"),
    (FocalCrossentropy, dict(gamma=float("nan")), r"`gamma`.*finite"),
    (FocalCrossentropy, dict(alpha=[0.0, 0.0, 0.0, 0.0]), r"`alpha`.*at least one > 0"),
    (FocalCrossentropy, dict(alpha=0.0), r"`alpha`.*\(0, 1e\+12\]"),
    (SigmoidFocalCrossentropy, dict(gamma=1e308), r"`gamma`.*<= 10000"),
    (WeightedCategoricalCrossentropy, dict(class_weight=[0.0, 0.0, 0.0, 0.0]),
     r"`class_weight`.*at least one > 0"),
    (WeightedCategoricalCrossentropy, dict(class_weight={0: 0, 1: 0}),
     r"`class_weight`.*at least one > 0"),
    (WeightedCategoricalCrossentropy, dict(class_weight=[1e300, 1.0, 1.0, 1.0]),
     r"`class_weight`.*<= 1e\+12"),
    (WeightedCategoricalCrossentropy, dict(class_weight=[1.0, np.inf, 1.0, 1.0]),
     r"`class_weight`.*finite"),
    (WeightedBinaryCrossentropy, dict(pos_weight=[0.0, 0.0], neg_weight=0.0),
     r"`neg_weight`.*both all 0"),
    (WeightedBinaryCrossentropy, dict(pos_weight=1e300),
     r"`pos_weight`.*<= 1000000000000\.0"),
    (CDTLoss, dict(class_counts=COUNTS, gamma=1e308), r"`gamma`.*<= 10000"),
    (CDTLoss, dict(class_counts=[2**50, 1], gamma=5.0),
     r"`gamma`.*temperatures.*gamma <= 1\.99"),
    (AsymmetricLoss, dict(gamma_neg=1e308), r"`gamma_neg`.*<= 10000"),
    (AsymmetricLoss, dict(gamma_pos=float("inf")), r"`gamma_pos`.*finite"),
    (DistributionBalancedLoss, dict(label_counts=COUNTS, num_samples=100,
                                    neg_scale=1e308), r"`neg_scale`.*<= 10000"),
    (DistributionBalancedLoss, dict(label_counts=COUNTS, num_samples=100,
                                    neg_scale=1e-300), r"`neg_scale`.*>= 0\.0001"),
    (DistributionBalancedLoss, dict(label_counts=COUNTS, num_samples=100,
                                    map_beta=1e308), r"`map_beta`.*<= 10000"),
    (DistributionBalancedLoss, dict(label_counts=COUNTS, num_samples=100,
                                    focal_gamma=1e308), r"`focal_gamma`.*<= 10000"),
    (DistributionBalancedLoss, dict(label_counts=COUNTS, num_samples=2**60),
     r"`num_samples`"),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD_HYPERPARAMETERS,
                         ids=[f"{c.__name__}-{next(iter(k.items()))[0]}-{i}"
                              for i, (c, k, _) in enumerate(BAD_HYPERPARAMETERS)])
def test_overflowing_or_degenerate_hyperparameters_raise(cls, kwargs, message):
    name = message.split("`")[1]
    with pytest.raises(ValueError, match=rf"Invalid value for argument {message}.*"
                       rf"Received: {name}="):
        cls(**kwargs)


def test_hyperparameters_at_their_bounds_give_finite_values():
    cases = [
        (LDAMLoss(COUNTS, max_margin=1e4, scale=1e4), IDS, np.tanh(LOGITS)),
        (LogitAdjustedCrossentropy([1e308, 1e308, 1e-300, 1.0], tau=1e4), IDS,
         LOGITS),
        (FocalCrossentropy(gamma=1e4, from_logits=True), IDS, LOGITS * 1e4),
        (SigmoidFocalCrossentropy(gamma=1e4, from_logits=True), MULTI_HOT,
         LOGITS * 1e4),
        (CDTLoss([2**52, 1, 1, 1], gamma=1.0), IDS, LOGITS * 1e4),
        (AsymmetricLoss(gamma_neg=1e4, gamma_pos=1e4), MULTI_HOT, LOGITS * 1e4),
        (DistributionBalancedLoss(COUNTS, num_samples=100, neg_scale=1e4,
                                  map_beta=1e4, init_bias=1e4), MULTI_HOT,
         LOGITS * 1e4),
        (WeightedCategoricalCrossentropy(class_weight=[1e12, 1, 1, 0],
                                         from_logits=True), IDS, LOGITS * 1e4),
    ]
    for loss, y, z in cases:
        loss.reduction = None
        assert np.all(np.isfinite(_np(loss(y, z)))), loss.name


def test_logit_adjustment_of_huge_priors_matches_normalised_priors():
    # Counts of 1e308 overflowed their sum (log(0) = -inf adjustments).
    huge = logit_adjusted_crossentropy(IDS, LOGITS, class_priors=[1e308, 4e307,
                                                                  1e307, 1e306])
    small = logit_adjusted_crossentropy(IDS, LOGITS, class_priors=[1000, 400, 100,
                                                                   10])
    np.testing.assert_allclose(_np(huge), _np(small), rtol=1e-5)


# --- flags of the functions --------------------------------------------------------

FUNCTIONS = [
    (weighted_categorical_crossentropy, IDS, {}),
    (weighted_binary_crossentropy, MULTI_HOT, {}),
    (focal_crossentropy, IDS, {}),
    (sigmoid_focal_crossentropy, MULTI_HOT, {}),
    (logit_adjusted_crossentropy, IDS, {"class_priors": COUNTS}),
    (asymmetric_loss, MULTI_HOT, {}),
]


@pytest.mark.parametrize("fn,labels,kwargs", FUNCTIONS,
                         ids=[f.__name__ for f, _, _ in FUNCTIONS])
@pytest.mark.parametrize("value", ["no", 1, None])
def test_functions_validate_from_logits(fn, labels, kwargs, value):
    with pytest.raises(ValueError, match=r"Invalid value for argument `from_logits`\. "
                       rf"Expected a bool\. Received: from_logits={value!r}"):
        fn(labels, LOGITS, from_logits=value, **kwargs)


@pytest.mark.parametrize("fn,kwargs,flag", [
    (asymmetric_loss, {}, "stop_gradient_focusing"),
    (distribution_balanced_loss, {"label_counts": COUNTS, "num_samples": 100},
     "rebalance"),
])
def test_functions_validate_other_flags(fn, kwargs, flag):
    with pytest.raises(ValueError, match=rf"argument `{flag}`\. Expected a bool\. "
                       rf"Received: {flag}='no'"):
        fn(MULTI_HOT, LOGITS, **{flag: "no"}, **kwargs)


@pytest.mark.parametrize("fn,kwargs", [
    (ldam_loss, {"class_counts": COUNTS, "scale": 1e308}),
    (cdt_loss, {"class_counts": COUNTS, "gamma": -1.0}),
    (logit_adjusted_crossentropy, {"class_priors": COUNTS, "tau": float("inf")}),
    (focal_crossentropy, {"gamma": 1e308}),
    (weighted_categorical_crossentropy, {"class_weight": [0, 0, 0, 0]}),
])
def test_functions_validate_like_the_classes(fn, kwargs):
    name = next(k for k in kwargs if k not in ("class_counts", "class_priors"))
    with pytest.raises(ValueError, match=rf"argument `{name}`.*Received: {name}="):
        fn(IDS, LOGITS, **kwargs)


# --- attributes and configs of every loss --------------------------------------------

# cls: (constructor arguments, labels, predictions)
EVERY_LOSS = {
    WeightedCategoricalCrossentropy: (dict(
        class_weight=[0.5, 1.0, 2.0, 4.0], from_logits=True, label_smoothing=0.1,
        ignore_class=3, reduction="mean_with_sample_weight"), IDS, LOGITS),
    WeightedBinaryCrossentropy: (dict(pos_weight=[1.0, 2.0, 3.0, 4.0],
                                      neg_weight=0.5, from_logits=True,
                                      label_smoothing=0.05), MULTI_HOT, LOGITS),
    FocalCrossentropy: (dict(gamma=1.5, alpha=[0.1, 0.2, 0.3, 0.4],
                             from_logits=True, ignore_class=0), IDS, LOGITS),
    SigmoidFocalCrossentropy: (dict(gamma=0.5, alpha=0.3, from_logits=True),
                               MULTI_HOT, LOGITS),
    LogitAdjustedCrossentropy: (dict(class_priors=COUNTS, tau=0.7), IDS, LOGITS),
    LDAMLoss: (dict(class_counts=COUNTS, max_margin=0.4, scale=20.0,
                    class_weight="effective_number"), IDS, np.tanh(LOGITS)),
    CDTLoss: (dict(class_counts=COUNTS, gamma=0.3), IDS, LOGITS),
    AsymmetricLoss: (dict(gamma_neg=3.0, gamma_pos=0.5, clip=0.1,
                          stop_gradient_focusing=False), MULTI_HOT, LOGITS),
    DistributionBalancedLoss: (dict(label_counts=COUNTS, num_samples=100,
                                    map_gamma=0.3, focal_gamma=1.0), MULTI_HOT,
                               LOGITS),
}


@pytest.mark.parametrize("cls", list(EVERY_LOSS), ids=lambda c: c.__name__)
def test_arguments_are_attributes_and_the_config_round_trips(cls):
    kwargs, y, z = EVERY_LOSS[cls]
    loss = cls(**kwargs)
    config = loss.get_config()
    for key, value in kwargs.items():
        assert getattr(loss, key) == value, key  # plain values, as given
        assert config[key] == value, key
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(loss)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is cls and restored.get_config() == config
    np.testing.assert_allclose(_np(restored(y, z)), _np(loss(y, z)), rtol=1e-6)
    # The attributes drive the loss: changing one changes the value.
    loss.reduction = "sum"
    np.testing.assert_allclose(_np(loss(y, z)), _np(loss.call(y, z)).sum(),
                               rtol=1e-5)


@pytest.mark.parametrize("cls", list(EVERY_LOSS), ids=lambda c: c.__name__)
def test_call_is_per_sample_under_every_reduction(cls):
    kwargs, y, z = EVERY_LOSS[cls]
    values = [_np(cls(**{**kwargs, "reduction": reduction}).call(y, z))
              for reduction in ("sum_over_batch_size", "mean_with_sample_weight",
                                "sum", None)]
    for other in values[1:]:
        np.testing.assert_allclose(other, values[0], rtol=1e-6)
    function = cls.fn
    direct = function(y, z, **{k: v for k, v in kwargs.items() if k != "reduction"})
    np.testing.assert_allclose(values[0], _np(direct), rtol=1e-6)


def test_weighted_mean_with_a_zero_class_weight_and_smoothing_matches_torch(torch):
    # The old reduction handed Keras l / w[y] and so dropped the smoothed loss
    # of samples whose class weight is 0; torch keeps it in the numerator.
    weights = [1.0, 0.0, 2.0, 3.0]
    sample_weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0], "float32")
    loss = WeightedCategoricalCrossentropy(class_weight=weights, from_logits=True,
                                           label_smoothing=0.2,
                                           reduction="mean_with_sample_weight")
    want = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights),
                                     label_smoothing=0.2)(torch.tensor(LOGITS),
                                                          torch.tensor(IDS))
    np.testing.assert_allclose(float(loss(IDS, LOGITS)), float(want), rtol=1e-5)
    per_sample = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights), label_smoothing=0.2, reduction="none")(
        torch.tensor(LOGITS), torch.tensor(IDS)).numpy()
    np.testing.assert_allclose(_np(loss.call(IDS, LOGITS)), per_sample, rtol=1e-5)
    want_weighted = (per_sample * sample_weight).sum() / (
        np.asarray(weights)[IDS] * sample_weight).sum()
    np.testing.assert_allclose(float(loss(IDS, LOGITS, sample_weight=sample_weight)),
                               want_weighted, rtol=1e-5)
