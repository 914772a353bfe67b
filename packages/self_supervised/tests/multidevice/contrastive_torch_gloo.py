"""CLIP, SigLIP, NT-Xent and SupCon on embeddings under torch DDP with two gloo processes.

Each process holds half of the global batch; the parent first trains alone
on the whole batch for comparison. Prints one JSON object on the last line of
stdout; test_contrastive_distributed.py checks it.
"""

import json
import os
import socket
import tempfile

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as torch_distributed  # noqa: E402
import torch.multiprocessing as torch_multiprocessing  # noqa: E402
from contrastive_common import (  # noqa: E402
    LEARNING_RATE,
    LOSS_NAMES,
    STEPS,
    as_lists,
    build_model,
    make_loss,
    problem,
    targets,
)
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from dl_techniques.losses.core.distributed import all_mean, replica_count  # noqa: E402

WORLD_SIZE = 2


def train(arrays, loss_name, rank, world_size):
    """SGD steps on this process's slice, the model wrapped in DDP when distributed."""
    model = build_model(arrays)
    module = DistributedDataParallel(model) if world_size > 1 else model
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    loss_fn = make_loss(loss_name)
    batch = {
        name: torch.from_numpy(np.split(arrays[name], world_size)[rank].copy())
        for name in ("image", "text")
    }
    labels = targets(arrays, loss_name)
    if labels is not None:
        labels = torch.from_numpy(np.split(labels, world_size)[rank].copy())
    losses = []
    for _ in range(STEPS):
        loss = loss_fn(labels, module(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(all_mean(loss.detach()).item())
    return {
        "loss": losses,
        "weights": [weight.tolist() for weight in model.get_weights()],
        "replica_counts_seen": [replica_count()],
    }


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    torch_distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        arrays = problem()
        result = {name: train(arrays, name, rank, WORLD_SIZE) for name in LOSS_NAMES}
    finally:
        torch_distributed.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    torch.set_num_threads(1)
    arrays = problem()
    single = {name: train(arrays, name, rank=0, world_size=1) for name in LOSS_NAMES}
    with tempfile.TemporaryDirectory() as out_dir:
        torch_multiprocessing.spawn(
            _worker, args=(_free_port(), out_dir), nprocs=WORLD_SIZE, join=True
        )
        ranks = []
        for rank in range(WORLD_SIZE):
            with open(os.path.join(out_dir, f"rank{rank}.json")) as handle:
                ranks.append(json.load(handle))
    result = {"replicas": WORLD_SIZE, "problem": as_lists(arrays)}
    for name in LOSS_NAMES:
        result[name] = {
            "single": single[name],
            "distributed": ranks[0][name],
            "ranks": [rank[name] for rank in ranks],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
