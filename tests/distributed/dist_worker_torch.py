"""Worker: PyTorch DDP (gloo) training the Keras model in a torch loop.

Launched like `torchrun` launches (MASTER_ADDR / MASTER_PORT / RANK /
WORLD_SIZE in the environment), as Keras' guide "Multi-GPU distributed
training with PyTorch" trains a Keras model: the model is a
`torch.nn.Module` wrapped in `DistributedDataParallel`, the loss is a
kimbalance loss function, and `ShardedSampler` replaces `DistributedSampler`.
"""

import time


def main():
    from dist_problem import worker_arguments

    args = worker_arguments([("--epochs", str)])
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    import dist_problem as p
    import keras

    from kimbalance.data import RandomOverSampler
    from kimbalance.distributed import (
        ShardedSampler,
        all_reduce_metrics,
        shard_arguments,
        shard_batch_size,
    )

    dist.init_process_group("gloo")  # env:// as set by torchrun
    shard = shard_arguments()
    batch_size = shard_batch_size(p.GLOBAL_BATCH, num_shards=shard["num_shards"])
    x, y = p.make_data()
    sampler = ShardedSampler(RandomOverSampler(y, seed=p.SEED), batch_size=batch_size,
                             **shard)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                         sampler=sampler)
    model = p.build_model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=p.LEARNING_RATE)
    metrics = p.make_metrics()
    lookup = p.row_index(x)
    history = {"loss": []}
    seen, trained = [], []
    for epoch in map(int, args.epochs.split(",")):
        sampler.set_epoch(epoch)
        trained.append(epoch)
        seen.append([])
        for metric in metrics:
            metric.reset_state()
        total = torch.zeros(())
        for xb, yb in loader:
            seen[-1].extend(lookup(xb.numpy()))
            logits = ddp(xb)
            loss = keras.ops.mean(p.per_sample_loss(yb, logits))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for metric in metrics:
                metric.update_state(yb, logits.detach())
            total += loss.detach()
        # Mean over the epoch of the global batch loss (the mean of the ranks').
        dist.all_reduce(total)
        history["loss"].append(float(total) / (len(loader) * dist.get_world_size()))
        local = [keras.ops.convert_to_numpy(m.confusion_matrix) for m in metrics]
        for name, value in all_reduce_metrics(metrics).items():
            history.setdefault(name, []).append(value)
    weights = [keras.ops.convert_to_numpy(w) for w in model.get_weights()]
    p.write_result(args.out, args.rank, history=history, weights=weights,
                   indices=seen, trained_epochs=trained, shard=shard,
                   batch_size=batch_size, local_states=local)
    # torch 2.13 can deadlock in destroy_process_group: it joins gloo's
    # threads holding the GIL while one still needs it to free the tensors of
    # the last collective. Let them finish first.
    dist.barrier()
    time.sleep(0.5)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
