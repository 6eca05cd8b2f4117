"""PyTorch DDP over gloo: two processes on loopback, each training the Keras
model on its `ShardedSampler` shard with a kimbalance loss function."""

import dist_problem as p
import numpy as np
import pytest

pytestmark = [
    pytest.mark.torch_only(reason="DDP wraps the Keras model as a torch Module"),
    pytest.mark.slow,
]


def test_ddp_two_ranks_follow_the_single_process_run(launch):
    reference = p.reference_run()
    epochs = ",".join(map(str, reference["trained_epochs"]))
    results = launch(
        "dist_worker_torch.py", "torch", 2, ports=1,
        args=lambda rank, ports: ["--epochs", epochs],
        env=lambda rank, ports: {"MASTER_ADDR": "127.0.0.1",
                                 "MASTER_PORT": ports[0], "RANK": rank,
                                 "LOCAL_RANK": rank, "WORLD_SIZE": 2})
    for rank, result in enumerate(results):
        assert result["shard"] == {"num_shards": 2, "shard_index": rank}
        assert result["batch_size"] == p.GLOBAL_BATCH // 2
        # Losses, all-reduced metrics of every epoch and final weights match.
        p.check_training(result, reference)
    p.check_shards([r["indices"] for r in results], reference,
                   batch_size=p.GLOBAL_BATCH // 2)
    assert results[0]["local_states"] != results[1]["local_states"]
    want = reference["history"]
    for name in ("balanced_accuracy", "geometric_mean", "macro_f1"):
        np.testing.assert_allclose(results[0]["history"][name], want[name],
                                   rtol=1e-5)
