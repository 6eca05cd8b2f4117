"""The command line every recipe shares: common flags, seeds, smoke settings.

A recipe builds its parser with `make_parser` (or adds the flags to its own
with `add_common_arguments`), adds `--methods` with `parse_methods`, applies
`smoke_settings` after parsing and passes `train_kwargs(args)` to the
runner.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from kimbalance._env import BACKENDS
from kimbalance._validation import check_int, check_path, invalid

__all__ = [
    "add_common_arguments",
    "ensure_out",
    "make_parser",
    "method_names",
    "parse_methods",
    "seeds_from_args",
    "smoke_settings",
    "train_kwargs",
    "verbosity",
]

# Smoke runs: one short epoch on a few hundred samples.
SMOKE_MAX_TRAIN = 400
SMOKE_MAX_TEST = 200
SMOKE_BATCH_SIZE = 64


def _check_text(name, value, *, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(name, "a non-empty str", value)
    return value


def make_parser(description: str | None, *, epochs: int | None, recipe: str | None,
                batch_size: int = 128,
                dataset: str = "digits") -> argparse.ArgumentParser:
    """An `argparse.ArgumentParser` with the recipe's docstring and common flags.

    Args:
        description: the `--help` text (the recipe's docstring).
        epochs, batch_size, dataset, recipe: as `add_common_arguments`.

    Returns:
        The parser.

    Examples:

    >>> parser = make_parser("Demo.", epochs=3, recipe="demo")
    >>> parser.parse_args([]).out
    'runs/demo'
    """
    if description is not None and not isinstance(description, str):
        raise invalid("description", "a str or None", description)
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_common_arguments(parser, epochs=epochs, batch_size=batch_size,
                                dataset=dataset, recipe=recipe)


def add_common_arguments(parser: argparse.ArgumentParser, *, epochs: int | None,
                         batch_size: int = 128, dataset: str = "digits",
                         recipe: str | None = None) -> argparse.ArgumentParser:
    """Adds the flags every recipe shares to an `argparse.ArgumentParser`.

    `--backend` is listed for `--help`; the recipe applies it to
    `os.environ["KERAS_BACKEND"]` with a pre-parse *before* keras is imported.

    Args:
        parser: the recipe's `argparse.ArgumentParser`.
        epochs: default number of epochs (an int >= 1), or None when the
            recipe picks it after parsing (e.g. per dataset; its `--help`
            text says how).
        batch_size: default batch size (an int >= 1).
        dataset: default dataset name (`"digits"` is embedded and offline).
        recipe: the recipe's name; `--out` defaults to `runs/<recipe>`.

    Returns:
        The parser.

    Raises:
        ValueError: for a parser that is not an `ArgumentParser` or an
            invalid default.

    Examples:

    >>> parser = add_common_arguments(argparse.ArgumentParser(), epochs=5)
    >>> args = parser.parse_args(["--seeds", "3", "--quiet"])
    >>> args.epochs, seeds_from_args(args), args.quiet
    (5, [0, 1, 2], True)
    """
    if not isinstance(parser, argparse.ArgumentParser):
        raise invalid("parser", "an argparse.ArgumentParser", parser)
    if epochs is not None:
        check_int("epochs", epochs, low=1)
    check_int("batch_size", batch_size, low=1)
    _check_text("dataset", dataset)
    _check_text("recipe", recipe, allow_none=True)
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend; applied to KERAS_BACKEND before keras "
                             "is imported (default: $KERAS_BACKEND)")
    parser.add_argument("--dataset", default=dataset,
                        help=f"dataset name for kimbalance.data.load_dataset "
                             f"(default: {dataset})")
    parser.add_argument("--data-dir", default=None,
                        help="directory with local dataset files")
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"training epochs (default: "
                             f"{epochs or 'depends on the dataset, see above'})")
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help=f"batch size (default: {batch_size})")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="number of seeds seed, seed+1, ...; tables report "
                             "mean ± std (default: 1)")
    default_out = f"runs/{recipe}" if recipe else None
    parser.add_argument("--out", default=default_out,
                        help=f"output directory for tables (Markdown + JSON) and "
                             f"PNG plots (default: {default_out})")
    parser.add_argument("--quiet", action="store_true",
                        help="no Keras progress bars")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny data and one epoch: checks the wiring in seconds")
    return parser


def _check_args(args, *names):
    if not isinstance(args, argparse.Namespace):
        raise invalid("args", "an argparse.Namespace (parser.parse_args())", args)
    missing = [n for n in names if not hasattr(args, n)]
    if missing:
        raise invalid("args", f"the common flags (missing: {missing}); build the "
                      "parser with make_parser or add_common_arguments", args)
    return args


def seeds_from_args(args: argparse.Namespace) -> list[int]:
    """The list of seeds `args.seed, ..., args.seed + args.seeds - 1`.

    Raises:
        ValueError: when `args.seeds` < 1 or `args.seed` is not an int.
    """
    _check_args(args, "seed", "seeds")
    check_int("seed", args.seed)
    check_int("seeds", args.seeds, low=1)
    return [args.seed + i for i in range(args.seeds)]


def smoke_settings(args: argparse.Namespace,
                   **overrides: Any) -> argparse.Namespace:
    """Checks the common flags and shrinks `args` in place under `--smoke`.

    Smoke mode trains one epoch of full batches only
    (`args.drop_remainder`; eagerly on TensorFlow, `args.run_eagerly`), one
    seed, an MLP instead of the CNN, and lets the recipe cap its data sizes
    through `args.max_train` / `args.max_test` (None outside smoke mode).
    `overrides` set extra smoke-only attributes.

    Returns:
        `args`.

    Raises:
        ValueError: for `--epochs`, `--batch-size` or `--seeds` below 1.
    """
    _check_args(args, "smoke", "epochs", "batch_size", "seeds")
    check_int("epochs", args.epochs, low=1)
    check_int("batch_size", args.batch_size, low=1)
    check_int("seeds", args.seeds, low=1)
    args.max_train = None
    args.max_test = None
    args.run_eagerly = False
    args.drop_remainder = False
    if args.smoke:
        # Each traced batch shape costs a compilation (seconds under jit):
        # smoke runs use one batch shape. Measured on 2 CPUs: tracing a
        # train step costs TensorFlow more than running a few batches
        # eagerly, while eager JAX compiles every op (slower than one jit).
        args.drop_remainder = True
        args.run_eagerly = keras.backend.backend() == "tensorflow"
        if getattr(args, "arch", None):
            args.arch = "mlp"  # fewer ops to dispatch (and warm up) eagerly
        args.epochs = 1
        args.seeds = 1
        args.batch_size = min(args.batch_size, SMOKE_BATCH_SIZE)
        args.max_train = SMOKE_MAX_TRAIN
        args.max_test = SMOKE_MAX_TEST
        for key, value in overrides.items():
            setattr(args, key, value)
    return args


def verbosity(args: argparse.Namespace) -> int:
    """Keras `verbose` for `fit`: progress bars unless `--quiet`."""
    _check_args(args, "quiet")
    return 0 if args.quiet else 1


def train_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The `run_method` keyword arguments the common flags set."""
    _check_args(args, "epochs", "batch_size", "quiet")
    return {"epochs": args.epochs, "batch_size": args.batch_size,
            "verbose": verbosity(args),
            "run_eagerly": getattr(args, "run_eagerly", False),
            "drop_remainder": getattr(args, "drop_remainder", False)}


def method_names(values: str | Sequence[str],
                 registry: Mapping[str, Any] | None = None) -> list[str]:
    """Method names from `--methods` values: `a,b`, `a b` or both mixed.

    Args:
        values: a str or a list of str, each a name or a comma-separated list.
        registry: when given, every name must be one of its keys.

    Returns:
        The list of names, in order, without empty entries.

    Raises:
        ValueError: for a value that is not a str (or list of str), no name
            at all, or a name the registry does not know.

    Examples:

    >>> method_names(["ce,focal", "ldam_drw"])
    ['ce', 'focal', 'ldam_drw']
    >>> method_names("ce")
    ['ce']
    """
    items = [values] if isinstance(values, str) else values
    if not isinstance(items, list | tuple) or not all(
            isinstance(v, str) for v in items):
        raise invalid("methods", "method names: a str or a list of str", values)
    names = [n.strip() for v in items for n in v.split(",") if n.strip()]
    if not names:
        raise invalid("methods", "at least one method name", values)
    if registry is not None:
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise invalid("methods", f"names from {sorted(registry)} "
                          f"(unknown: {unknown})", values)
    return names


class _MethodsAction(argparse.Action):
    """`--methods a,b c`: names separated by commas and/or spaces, checked."""

    def __init__(self, option_strings, dest, registry=None, **kwargs):
        self.registry = registry
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            names = method_names(list(values), self.registry)
        except ValueError as error:
            raise argparse.ArgumentError(self, str(error)) from None
        previous = getattr(namespace, self.dest, None) or []
        setattr(namespace, self.dest, [*previous, *names])


def parse_methods(parser: argparse.ArgumentParser,
                  registry: Mapping[str, Any]) -> argparse.ArgumentParser:
    """Adds `--methods` over `registry` to `parser` (default: all, i.e. None).

    Names may be given comma-separated (`--methods ce,focal`), space-separated
    (`--methods ce focal`, the argparse convention) or both.

    Examples:

    >>> parser = parse_methods(argparse.ArgumentParser(), {"ce": 0, "focal": 1})
    >>> parser.parse_args(["--methods", "ce", "focal"]).methods
    ['ce', 'focal']
    >>> parser.parse_args(["--methods", "ce,focal"]).methods
    ['ce', 'focal']
    """
    if not isinstance(parser, argparse.ArgumentParser):
        raise invalid("parser", "an argparse.ArgumentParser", parser)
    if not isinstance(registry, dict) or not registry:
        raise invalid("registry", "a non-empty dict {name: Method}", registry)
    parser.add_argument(
        "--methods", nargs="+", default=None, action=_MethodsAction,
        registry=registry, metavar="METHOD",
        help="subset of: " + ", ".join(registry)
             + " (comma- or space-separated; default: all)")
    return parser


def ensure_out(args: argparse.Namespace) -> pathlib.Path:
    """Creates and returns `args.out` as a `pathlib.Path`.

    Raises:
        ValueError: when `args.out` is not a path (e.g. None or an int).
    """
    _check_args(args, "out")
    out = pathlib.Path(check_path("out", args.out))
    out.mkdir(parents=True, exist_ok=True)
    return out
