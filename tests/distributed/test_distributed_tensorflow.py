"""TensorFlow: `MirroredStrategy` over two logical CPU devices (`model.fit`),
and `MultiWorkerMirroredStrategy` with two workers on loopback (`TF_CONFIG`,
custom loop over `tf_distributed_dataset`)."""

import json

import dist_problem as p
import pytest

pytestmark = [
    pytest.mark.tensorflow_only(reason="tf.distribute strategies"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def reference():
    return p.reference_run()


def test_mirrored_two_devices_fit_matches_single_device(launch, reference):
    (result,) = launch("dist_worker_tf.py", "tensorflow", 1,
                       args=lambda rank, ports: ["--mode", "mirrored"])
    assert result["replicas"] == 2 and result["local_replicas"] == 2
    assert result["shard"] == {"num_shards": 1, "shard_index": 0}
    assert result["batch_size"] == p.GLOBAL_BATCH
    assert "num_shards * local_replicas = 1 * 2 = 2" in result["odd_batch_error"]
    p.check_shards([result["indices"]], reference, batch_size=p.GLOBAL_BATCH)
    # Sum-on-read confusion matrices: fit's metrics are the global values.
    p.check_training(result, reference)


def test_multi_worker_custom_loop_matches_single_process(launch, reference):
    epochs = ",".join(map(str, reference["trained_epochs"]))

    def tf_config(rank, ports):
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        return {"TF_CONFIG": json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": rank}})}

    results = launch("dist_worker_tf.py", "tensorflow", 2, ports=2, env=tf_config,
                     args=lambda rank, ports: ["--mode", "multiworker",
                                               "--epochs", epochs])
    for rank, result in enumerate(results):
        assert result["replicas"] == 2 and result["local_replicas"] == 1
        assert result["shard"] == {"num_shards": 2, "shard_index": rank}
        assert result["batch_size"] == p.GLOBAL_BATCH // 2
        assert result["pipelines"] == 1
        p.check_training(result, reference)
    p.check_shards([r["indices"] for r in results], reference,
                   batch_size=p.GLOBAL_BATCH // 2)
