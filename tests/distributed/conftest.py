"""Launching real multi-process engines on loopback from tests.

Each worker is a fresh Python process (engines fix devices and collectives at
start-up, so they cannot share the pytest process). Workers get free ports
chosen at run time, their own process group (killed as a whole on timeout or
failure) and a private output folder, so tests are safe under pytest-xdist.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))


def free_ports(count):
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_env(backend, **extra):
    env = dict(os.environ)
    for name in ("XLA_FLAGS", "TF_CONFIG", "RANK", "WORLD_SIZE", "LOCAL_RANK",
                 "MASTER_ADDR", "MASTER_PORT", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    env.update({
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "OMP_NUM_THREADS": "1",
        "JAX_PLATFORMS": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
    })
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run_workers(script, commands, *, timeout):
    """Runs one process per (args, env) in `commands`; returns their outputs.

    All processes start together (collectives need every rank) and are
    killed, with their children, if any fails or the deadline passes.
    """
    processes = []
    logs = []
    try:
        for args, env in commands:
            log = open(env["KIMBALANCE_WORKER_LOG"], "w+")
            logs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, str(HERE / script), *map(str, args)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        deadline = time.monotonic() + timeout
        failed = None
        while any(p.poll() is None for p in processes):
            codes = [p.poll() for p in processes]
            if any(code not in (None, 0) for code in codes):
                failed = "a worker failed"
                break
            if time.monotonic() > deadline:
                failed = f"timeout after {timeout} s"
                break
            time.sleep(0.1)
        outputs = []
        for log in logs:
            log.flush()
            log.seek(0)
            outputs.append(log.read())
        codes = [p.poll() for p in processes]
        if failed or any(codes):
            report = "\n".join(f"--- worker {i} (exit {code})\n{out[-6000:]}"
                               for i, (code, out) in enumerate(zip(codes, outputs,
                                                                   strict=True)))
            pytest.fail(f"{script}: {failed or 'a worker failed'}\n{report}")
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        for log in logs:
            log.close()


@pytest.fixture
def launch(tmp_path):
    """`launch(script, backend, ranks, args=f(rank, ports), env=f(rank, ports))`.

    `ports` free loopback ports are chosen first and handed to `args` / `env`.
    Returns the per-rank results each worker wrote as JSON (`result_<rank>`).
    """

    def _launch(script, backend, ranks, *, args=lambda rank, ports: [],
                env=lambda rank, ports: {}, ports=0, timeout=240):
        chosen = free_ports(ports)
        commands = []
        for rank in range(ranks):
            worker_args = ["--out", tmp_path, "--rank", rank, *args(rank, chosen)]
            worker = worker_env(backend, **env(rank, chosen),
                                KIMBALANCE_WORKER_LOG=tmp_path / f"log_{rank}.txt")
            commands.append((worker_args, worker))
        run_workers(script, commands, timeout=timeout)
        results = []
        for rank in range(ranks):
            with open(tmp_path / f"result_{rank}.json") as f:
                results.append(json.load(f))
        return results

    return _launch


def load_weights(result):
    return [np.asarray(w, dtype=np.float32) for w in result["weights"]]
