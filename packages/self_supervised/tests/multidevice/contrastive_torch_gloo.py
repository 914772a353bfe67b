"""CLIP, SigLIP, NT-Xent and SupCon on embeddings under torch DDP with two gloo processes.

Each process holds half of the global batch; the parent first trains alone
on the whole batch for comparison. Prints one JSON object on the last line of
stdout; test_contrastive_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import torch  # noqa: E402
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
from dl_techniques.losses.core.testing.gloo import run_gloo_ranks  # noqa: E402

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


def _rank(rank, world_size):
    arrays = problem()
    return {name: train(arrays, name, rank, world_size) for name in LOSS_NAMES}


def main():
    torch.set_num_threads(1)
    arrays = problem()
    single = {name: train(arrays, name, rank=0, world_size=1) for name in LOSS_NAMES}
    ranks = run_gloo_ranks(_rank, WORLD_SIZE)
    result = {"replicas": WORLD_SIZE, "problem": as_lists(arrays)}
    for name in LOSS_NAMES:
        result[name] = {
            "single": single[name],
            "distributed": ranks[0][name],
            "ranks": [rank[name] for rank in ranks],
        }
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
