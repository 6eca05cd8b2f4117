"""Every public symbol is importable; every serializable one round-trips."""

import importlib
import inspect

import keras
import numpy as np
import pytest

import kimbalance

COUNTS = [50, 20, 5]

# Constructor arguments for the public classes that need some.
ARGS = {
    "LogitAdjustedCrossentropy": {"class_priors": COUNTS},
    "LDAMLoss": {"class_counts": COUNTS},
    "LabelAwareSmoothingCrossentropy": {"class_counts": COUNTS},
    "VSLoss": {"class_counts": COUNTS},
    "CDTLoss": {"class_counts": COUNTS},
    "DistributionBalancedLoss": {"label_counts": COUNTS, "num_samples": 100},
    "CosineDense": {"units": 3},
    "LogitAdjustment": {"class_priors": COUNTS},
    "ThresholdDecision": {"thresholds": [0.5, 0.4, 0.3]},
    "BalancedAccuracy": {"num_classes": 3},
    "ClassIoU": {"num_classes": 3},
    "ClassDice": {"num_classes": 3},
    "MeanClassIoU": {"num_classes": 3},
    "MeanClassDice": {"num_classes": 3},
    "GeometricMean": {"num_classes": 3},
    "MacroF1": {"num_classes": 3},
}

SERIALIZABLE_MODULES = ["losses", "layers", "metrics"]


def _public(module_name):
    module = importlib.import_module(f"kimbalance.{module_name}")
    return [(name, getattr(module, name)) for name in module.__all__]


@pytest.mark.parametrize(
    "module_name",
    ["weights", "data", "data.samplers", "data.grain", "data.collate", "data.mosaics",
     "losses", "layers", "metrics", "thresholds", "callbacks", "plots", "models",
     "evaluation", "experiments", "distributed", "training"],
)
def test_every_name_in_all_exists(module_name):
    module = importlib.import_module(f"kimbalance.{module_name}")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


def test_top_level_exports():
    for name in kimbalance.__all__:
        assert hasattr(kimbalance, name), name
    assert kimbalance.evaluate is kimbalance.evaluation.evaluate


def _serializable():
    for module_name in SERIALIZABLE_MODULES:
        for name, obj in _public(module_name):
            yield pytest.param(name, obj, id=f"{module_name}.{name}")


@pytest.mark.parametrize("name,obj", list(_serializable()))
def test_round_trip_through_keras_serialization(name, obj):
    registered = keras.saving.get_registered_name(obj)
    assert registered == f"kimbalance>{name}"
    if inspect.isfunction(obj):
        config = keras.saving.serialize_keras_object(obj)
        assert keras.saving.deserialize_keras_object(config) is obj
        return
    instance = obj(**ARGS.get(name, {}))
    config = keras.saving.serialize_keras_object(instance)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is obj
    original, again = instance.get_config(), restored.get_config()
    assert original.keys() == again.keys()
    for key, value in original.items():
        if isinstance(value, list | tuple | np.ndarray):
            np.testing.assert_allclose(np.asarray(value, dtype=float),
                                       np.asarray(again[key], dtype=float))
        elif key != "name" or value is not None:
            assert again[key] == value, key
