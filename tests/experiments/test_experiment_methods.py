"""kimbalance.experiments.methods: the registries and `Method`."""

import keras
import numpy as np
import pytest

from kimbalance.experiments import methods as ex


def test_select_methods_pulls_in_the_base_of_a_posthoc_method():
    names = [m.name for m in ex.select_methods(ex.LONG_TAIL_METHODS,
                                               "posthoc_la,focal")]
    assert names == ["ce", "posthoc_la", "focal"]
    assert [m.name for m in ex.select_methods(ex.BINARY_METHODS)][:2] == [
        "majority", "ce"]


def test_select_methods_rejects_unknown_names():
    with pytest.raises(ValueError, match="Invalid value for argument `methods`"):
        ex.select_methods(ex.LONG_TAIL_METHODS, ["nope"])


@pytest.mark.parametrize("registry", ["LONG_TAIL_METHODS", "MULTILABEL_METHODS"])
def test_every_trained_method_builds_its_loss(registry):
    counts = np.array([50, 20, 5])
    y = (np.arange(75)[:, None] % np.array([2, 3, 5]) == 0).astype(np.int64)
    info = ex.TaskInfo(counts=counts if registry == "LONG_TAIL_METHODS"
                       else y.sum(axis=0), y_train=y, epochs=10, num_classes=3)
    for method in getattr(ex, registry).values():
        if method.posthoc:
            assert method.base in getattr(ex, registry) and method.decide
            continue
        assert isinstance(method.loss(info), keras.losses.Loss), method.name


def test_drw_start_epoch():
    assert [ex.drw_start_epoch(e) for e in (1, 10, 15, 200)] == [0, 8, 12, 160]


# --- generator arguments: one place for the runner and the distributed recipe --


def _info(counts=(50, 20, 5), epochs=10):
    counts = np.asarray(counts)
    y = np.repeat(np.arange(len(counts)), counts)
    return ex.TaskInfo(counts=counts, y_train=y, epochs=epochs,
                       num_classes=len(counts))


def test_generator_kwargs_of_every_trained_method():
    info = _info()
    for method in ex.LONG_TAIL_METHODS.values():
        if method.posthoc:
            with pytest.raises(ValueError, match="argument `method`"):
                method.generator_kwargs(info)
            continue
        kwargs = method.generator_kwargs(info)
        assert set(kwargs) == {"sampler", "sampler_kwargs", "class_weight", "augment"}
        assert (kwargs["augment"] is not None) == (
            method.name.endswith("_aug") or method.name in {"mixup", "remix",
                                                            "mislas"})
        assert (kwargs["class_weight"] is not None) == (
            method.name.startswith("ldam") or method.name == "drw_sam")
    assert ex.LONG_TAIL_METHODS["cb_sampling"].generator_kwargs(info)["sampler"] == (
        "class_balanced")
    assert ex.LONG_TAIL_METHODS["progressive"].generator_kwargs(
        _info(epochs=7))["sampler_kwargs"] == {"num_epochs": 6}
    with pytest.raises(ValueError, match="argument `info`"):
        ex.LONG_TAIL_METHODS["ce"].generator_kwargs({"counts": [1]})


@pytest.mark.parametrize("kwargs, message", [
    ({"name": ""}, "argument `name`"),
    ({"name": "x", "head": "conv"}, "argument `head`"),
    ({"name": "x", "base": "ce"}, "argument `decide`"),
    ({"name": "x", "loss": "ce"}, "argument `loss`"),
    ({"name": "x", "loss": lambda info: None, "sampler": 3}, "argument `sampler`"),
    ({"name": "x", "loss": lambda info: None, "augment": "flip"},
     "argument `augment`"),
    ({"name": "x", "loss": lambda info: None, "wrap": "sam"}, "argument `wrap`"),
    ({"name": "x", "loss": lambda info: None, "post_train": 1},
     "argument `post_train`"),
])
def test_method_rejects_bad_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ex.Method(summary="s", **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "argument `epochs`"),
    ({"num_classes": 2}, "argument `counts`. Expected 2 integer counts"),
])
def test_task_info_rejects_bad_fields(kwargs, message):
    fields = {"counts": np.array([3, 1, 1]), "y_train": np.zeros(5), "epochs": 1,
              "num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        ex.TaskInfo(**fields)


def test_select_methods_accepts_every_names_form():
    for names in ("ce,focal", ["ce", "focal"], ["ce,focal"]):
        assert [m.name for m in ex.select_methods(ex.LONG_TAIL_METHODS, names)] == [
            "ce", "focal"]
    with pytest.raises(ValueError, match="argument `registry`"):
        ex.select_methods({}, ["ce"])
    with pytest.raises(ValueError, match="argument `methods`"):
        ex.select_methods(ex.LONG_TAIL_METHODS, [])


def test_vs_tunes_gamma_and_tau_on_validation_with_the_paper_setting_first():
    method = ex.LONG_TAIL_METHODS["vs"]
    candidates = method.candidates()
    assert candidates[0] == {"gamma": 0.2, "tau": 1.0} and len(candidates) == 4
    info = ex.TaskInfo(counts=np.array([50, 20, 5]), y_train=np.zeros(75, int),
                       epochs=10, num_classes=3)
    assert method.loss(info).get_config()["gamma"] == 0.2  # no candidate: paper's
    info = ex.TaskInfo(counts=np.array([50, 20, 5]), y_train=np.zeros(75, int),
                       epochs=10, num_classes=3, params={"gamma": 0.1, "tau": 0.5})
    config = method.loss(info).get_config()
    assert (config["gamma"], config["tau"]) == (0.1, 0.5)
