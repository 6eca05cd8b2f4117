"""kimbalance.experiments.cli: the flags every recipe shares."""

import argparse

import pytest

from kimbalance.experiments import cli as ex
from kimbalance.experiments.methods import LONG_TAIL_METHODS


def test_common_arguments_and_seeds():
    parser = ex.make_parser("d", epochs=7, recipe="demo")
    args = parser.parse_args(["--seed", "4", "--seeds", "3", "--backend", "jax"])
    assert args.epochs == 7 and args.out == "runs/demo" and args.backend == "jax"
    assert ex.seeds_from_args(args) == [4, 5, 6]


def test_seeds_must_be_positive():
    args = argparse.Namespace(seed=0, seeds=0)
    with pytest.raises(ValueError, match="Invalid value for argument `seeds`"):
        ex.seeds_from_args(args)


def test_smoke_settings_shrink_the_run():
    parser = ex.make_parser("d", epochs=30, recipe="demo")
    args = ex.smoke_settings(parser.parse_args(["--smoke", "--seeds", "5"]),
                             ratios=[1.0])
    assert (args.epochs, args.seeds, args.ratios) == (1, 1, [1.0])
    assert args.max_train and args.max_test
    full = ex.smoke_settings(parser.parse_args([]))
    assert full.epochs == 30 and full.max_train is None


# --- --methods: comma- and space-separated (defect 8) ---------------------------


@pytest.mark.parametrize("argv", [
    ["--methods", "ce", "cb_sampling"],
    ["--methods", "ce,cb_sampling"],
    ["--methods=ce,cb_sampling"],
    ["--methods", "ce,", "cb_sampling"],
    ["--methods", "ce", "--methods", "cb_sampling"],
])
def test_methods_accept_commas_and_spaces(argv):
    parser = ex.parse_methods(ex.make_parser("d", epochs=1, recipe="demo"),
                              LONG_TAIL_METHODS)
    assert parser.parse_args(argv).methods == ["ce", "cb_sampling"]
    assert parser.parse_args([]).methods is None


def test_unknown_method_is_a_usage_error(capsys):
    parser = ex.parse_methods(ex.make_parser("d", epochs=1, recipe="demo"),
                              LONG_TAIL_METHODS)
    with pytest.raises(SystemExit):
        parser.parse_args(["--methods", "ce", "nope"])
    assert "Invalid value for argument `methods`" in capsys.readouterr().err


@pytest.mark.parametrize("values, message", [
    ([], "Expected at least one method name"),
    ([","], "Expected at least one method name"),
    ([3], "Expected method names"),
    (["ce", "nope"], r"Expected names from .*\(unknown: \['nope'\]\)"),
])
def test_method_names_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match="argument `methods`. " + message):
        ex.method_names(values, LONG_TAIL_METHODS)


# --- argument checks ----------------------------------------------------------


def _args(**overrides):
    args = ex.make_parser("d", epochs=2, recipe="demo").parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.mark.parametrize("call, message", [
    (lambda: ex.make_parser("d", epochs=0, recipe="x"), "argument `epochs`"),
    (lambda: ex.make_parser("d", epochs=1, recipe="x", batch_size=0),
     "argument `batch_size`"),
    (lambda: ex.make_parser("d", epochs=1, recipe=3), "argument `recipe`"),
    (lambda: ex.make_parser(3, epochs=1, recipe="x"), "argument `description`"),
    (lambda: ex.add_common_arguments("parser", epochs=1), "argument `parser`"),
    (lambda: ex.smoke_settings(_args(epochs=0)), "argument `epochs`. Expected an "
                                                 "int >= 1. Received: epochs=0"),
    (lambda: ex.smoke_settings(_args(batch_size=-1)), "argument `batch_size`"),
    (lambda: ex.smoke_settings({"smoke": True}), "argument `args`"),
    (lambda: ex.seeds_from_args(_args(seed=1.5)), "argument `seed`"),
    (lambda: ex.ensure_out(_args(out=3)), "argument `out`. Expected a path"),
    (lambda: ex.ensure_out(_args(out=None)), "argument `out`"),
    (lambda: ex.parse_methods(argparse.ArgumentParser(), {}), "argument `registry`"),
    (lambda: ex.train_kwargs(argparse.Namespace()), "argument `args`"),
])
def test_cli_rejects_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ensure_out_creates_the_folder(tmp_path):
    out = ex.ensure_out(_args(out=str(tmp_path / "a" / "b")))
    assert out.is_dir()
