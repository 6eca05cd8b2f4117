"""`recipes/distributed.py`: the command line, and one real torch-ddp run."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "distributed.py"


def _run(*arguments, timeout):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "TF_CONFIG", "XLA_FLAGS"):
        env.pop(name, None)
    return subprocess.run([sys.executable, str(RECIPE), *arguments], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_help_names_every_engine():
    completed = _run("--help", timeout=60)
    assert completed.returncode == 0, completed.stderr
    for engine in ("jax-dp", "jax-multiprocess", "tf-mirrored", "tf-multiworker",
                   "torch-ddp", "torchrun"):
        assert engine in completed.stdout


@pytest.mark.torch_only(reason="the recipe's torch-ddp engine; the benchmark "
                               "runs every engine")
@pytest.mark.slow
def test_torch_ddp_recipe_trains_two_ranks(tmp_path):
    completed = _run("--engine", "torch-ddp", "--processes", "2", "--epochs", "2",
                     "--max-train", "400", "--method", "ldam_drw", "--out", tmp_path,
                     timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
    # Progress without --quiet: one line per epoch from process 0 only.
    epochs = [line for line in completed.stdout.splitlines()
              if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert "balanced_accuracy" in epochs[-1], epochs
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["per_replica_batch_size"] == 32
    assert len(summary["history"]["loss"]) == 2
    assert set(summary["history"]) >= {"balanced_accuracy", "macro_f1",
                                       "geometric_mean"}
    assert 0.0 <= summary["test"]["balanced_accuracy"] <= 1.0


def test_progress_on_process_zero_unless_quiet(capsys):
    from recipes import distributed

    args = distributed.parse_args(["--engine", "torch-ddp", "--epochs", "3"])
    assert args.quiet is False
    task = object.__new__(distributed.Task)  # no split: only the progress parts
    task.args = args
    history = {"loss": [0.5, 0.25], "balanced_accuracy": [0.5, 0.75]}
    for rank, quiet, verbose in ((0, False, 1), (1, False, 0), (0, True, 0)):
        task.rank, args.quiet = rank, quiet
        assert task.verbose == verbose
        task.log_epoch(1, history, 1.5)
    assert capsys.readouterr().out == (
        "epoch 2/3: loss 0.2500, balanced_accuracy 0.7500 (1.5 s)\n")
    assert distributed.parse_args(["--engine", "jax-dp", "--quiet"]).quiet is True
