"""The recipes' shared experiment runner: cli, splits, methods, runner, tables.

The recipe scripts in `recipes/` are thin: they parse flags, build a split and
call into this package, one concept per module:

- `kimbalance.experiments.cli`: the flags every recipe shares
  (`make_parser`, `parse_methods`, `smoke_settings`, `train_kwargs`, ...).
- `kimbalance.experiments.splits`: `Split` and the long-tail (optionally with
  a balanced validation set from the left-out images), binary-pair and
  mosaic splits.
- `kimbalance.experiments.methods`: `Method`, `TaskInfo` and the registries
  `LONG_TAIL_METHODS`, `BINARY_METHODS`, `MULTILABEL_METHODS`; a method's
  `wrap` (a training wrapper such as SAM) and `post_train` hook (a second,
  classifier-only stage or a quantity tuned on the validation set, through
  `StageContext` -> `SecondStage`), its `stage1` (the method whose trained
  model a second stage continues from, trained once per seed and shared) and
  its `grid` (hyperparameters chosen on the validation set, one full run per
  candidate).
- `kimbalance.experiments.runner`: `run_method`, `run_methods`,
  `imbalance_sweep`, `RunResult`, `Stage1`, `build_model`, `EpochTimer`.
- `kimbalance.experiments.tables`: `summarize`, `markdown_table`,
  `write_results`, `timing_summary`.

This module re-exports what the recipes and benchmarks use; everything else
is imported from its module (e.g. `kimbalance.experiments.splits.Split`).
"""

from kimbalance._env import BACKENDS, backend_info
from kimbalance.experiments.cli import (
    ensure_out,
    make_parser,
    parse_methods,
    seeds_from_args,
    smoke_settings,
    train_kwargs,
)
from kimbalance.experiments.methods import (
    BINARY_METHODS,
    LONG_TAIL_METHODS,
    MULTILABEL_METHODS,
    Method,
    TaskInfo,
    select_methods,
)
from kimbalance.experiments.runner import (
    ARCHITECTURES,
    EpochTimer,
    RunResult,
    build_model,
    imbalance_sweep,
    run_methods,
)
from kimbalance.experiments.splits import (
    binary_pair_split,
    long_tail_split,
    mosaic_split,
)
from kimbalance.experiments.tables import (
    markdown_table,
    positive_class_metrics,
    summarize,
    timing_summary,
    write_results,
)

__all__ = [
    "ARCHITECTURES",
    "BACKENDS",
    "BINARY_METHODS",
    "LONG_TAIL_METHODS",
    "MULTILABEL_METHODS",
    "EpochTimer",
    "Method",
    "RunResult",
    "TaskInfo",
    "backend_info",
    "binary_pair_split",
    "build_model",
    "ensure_out",
    "imbalance_sweep",
    "long_tail_split",
    "make_parser",
    "markdown_table",
    "mosaic_split",
    "parse_methods",
    "positive_class_metrics",
    "run_methods",
    "seeds_from_args",
    "select_methods",
    "smoke_settings",
    "summarize",
    "timing_summary",
    "train_kwargs",
    "write_results",
]
