"""The recipes show Keras progress by default (`--quiet` turns it off).

Static (the recipes are run by tests/recipes/test_recipes.py, with --quiet):
every `fit` call in recipes/*.py takes its verbosity from the command line,
through `ex.train_kwargs(args)`, `0 if args.quiet else 1` or the
distributed recipe's `task.verbose`; none hard-codes `verbose=0`, except the one recipe
that trains in worker processes and prints a line per worker instead.
"""

import ast
import pathlib

import pytest

from kimbalance import experiments as ex

RECIPES = pathlib.Path(__file__).resolve().parents[2] / "recipes"
# Trains each backend in a subprocess with verbose=0 (the outputs of the
# workers would interleave); prints "<backend> ..." and a summary per worker.
QUIET_BY_DESIGN = {"compare_backends.py"}
FROM_THE_COMMAND_LINE = ("0 if args.quiet else 1", "task.verbose")


def _fit_calls(path):
    tree = ast.parse(path.read_text())
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "fit"]


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.py")), ids=lambda p: p.name)
def test_every_fit_takes_its_verbosity_from_the_command_line(path):
    for call in _fit_calls(path):
        where = f"{path.name}:{call.lineno}"
        keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
        if path.name in QUIET_BY_DESIGN:
            continue
        if "verbose" in keywords:
            assert keywords["verbose"] in FROM_THE_COMMAND_LINE, where
        else:
            unpacked = [v for k, v in keywords.items() if k is None]
            assert any("ex.train_kwargs(args)" in v for v in unpacked), where


def _trains(path):
    """A `fit` call or a call taking `**ex.train_kwargs(args)` (the runner's)."""
    calls = [node for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call)]
    return bool(_fit_calls(path)) or any(
        k.arg is None and "train_kwargs" in ast.unparse(k.value)
        for call in calls for k in call.keywords)


def test_the_recipes_that_train_are_checked():
    trained = {p.name for p in RECIPES.glob("*.py") if _trains(p)}
    assert {"long_tail.py", "multilabel.py", "imbalance_sweep.py", "cats_vs_dogs.py",
            "segmentation.py", "distributed.py"} <= trained


def test_progress_bars_unless_quiet():
    parser = ex.make_parser("a recipe", epochs=1, recipe="long_tail")
    assert ex.train_kwargs(parser.parse_args([]))["verbose"] == 1
    assert ex.train_kwargs(parser.parse_args(["--quiet"]))["verbose"] == 0
