"""JAX data parallelism with `keras.distribution`: one process with two virtual
CPU devices, and two processes joined by `jax.distributed` over loopback."""

import dist_problem as p
import numpy as np
import pytest

pytestmark = [
    pytest.mark.jax_only(reason="keras.distribution runs on the JAX backend"),
    pytest.mark.slow,
]


def _devices(count):
    # Read once, when JAX starts: hence a fresh process per configuration.
    return f"--xla_force_host_platform_device_count={count}"


@pytest.fixture(scope="module")
def reference():
    return p.reference_run()


def test_data_parallel_two_devices_matches_single_device(launch, reference):
    (result,) = launch(
        "dist_worker_jax.py", "jax", 1, args=lambda rank, ports: ["--mode", "dp"],
        env=lambda rank, ports: {"XLA_FLAGS": _devices(2)})
    assert result["devices"] == 2 and result["local_replicas"] == 2
    assert result["shard"] == {"num_shards": 1, "shard_index": 0}
    assert result["batch_size"] == p.GLOBAL_BATCH
    assert "multiple of num_shards * local_replicas = 1 * 2 = 2" in (
        result["odd_batch_error"])
    p.check_shards([result["indices"]], reference, batch_size=p.GLOBAL_BATCH)
    p.check_training(result, reference)


def test_two_processes_feed_one_global_balanced_epoch(launch, reference):
    results = launch(
        "dist_worker_jax.py", "jax", 2, ports=1,
        args=lambda rank, ports: ["--mode", "multiprocess", "--port", ports[0]],
        env=lambda rank, ports: {"XLA_FLAGS": _devices(1)})
    for rank, result in enumerate(results):
        assert result["devices"] == 2 and result["local_replicas"] == 1
        assert result["shard"] == {"num_shards": 2, "shard_index": rank}
        assert result["batch_size"] == p.GLOBAL_BATCH // 2
        p.check_training(result, reference)
    p.check_shards([r["indices"] for r in results], reference,
                   batch_size=p.GLOBAL_BATCH // 2)
    # Confusion matrices summed over the processes give the exact global
    # metrics of the last epoch, on both processes.
    want, want_states = p.global_metric_values(results[0]["weights"],
                                               reference["epochs"][-1])
    summed = np.sum([r["local_states"] for r in results], axis=0)
    np.testing.assert_allclose(summed, want_states)
    assert results[0]["local_states"] != results[1]["local_states"]
    for result in results:
        for name, value in want.items():
            np.testing.assert_allclose(result["reduced"][name], value, rtol=1e-6)
