"""The distributed helpers under torch.distributed with two gloo processes.

Each process holds half of the batch. The parent first does the same work
alone, with no process group, for comparison. Prints one JSON object on the
last line of stdout; test_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import (  # noqa: E402
    LEARNING_RATE,
    STEPS,
    as_lists,
    centred_contrastive_loss,
    contrastive_sum,
    problem,
)
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from dl_techniques.losses.core.distributed import (  # noqa: E402
    all_gather,
    all_mean,
    replica_count,
)
from dl_techniques.losses.core.testing.gloo import run_gloo_ranks  # noqa: E402

WORLD_SIZE = 2


def _slice(array, rank, world_size, axis=0):
    return torch.from_numpy(np.split(array, world_size, axis=axis)[rank].copy())


def collectives(arrays, rank, world_size):
    rows = _slice(arrays["batch"], rank, world_size)
    column_block = _slice(arrays["columns"], rank, world_size, axis=1)
    return {
        "replicas": replica_count(),
        "gathered": all_gather(rows).tolist(),
        "gathered_columns": all_gather(column_block, axis=-1).tolist(),
        "mean": all_mean(rows).tolist(),
        "mean_of_scalar": all_mean(rows.sum()).item(),
    }


def gather_gradient(arrays, rank, world_size):
    rows = _slice(arrays["batch"], rank, world_size).requires_grad_(True)
    contrastive_sum(rows).backward()
    return rows.grad.tolist()


def train(arrays, rank, world_size):
    """SGD steps of a Keras model on its slice, wrapped in DDP when distributed."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.set_weights([arrays["kernel"], arrays["bias"]])
    module = DistributedDataParallel(model) if world_size > 1 else model
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    x = _slice(arrays["x"], rank, world_size)
    y = _slice(arrays["y"], rank, world_size)
    losses = []
    for _ in range(STEPS):
        loss = torch.mean(centred_contrastive_loss(y, module(x)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(all_mean(loss.detach()).item())
    return {"loss": losses, "weights": [weight.tolist() for weight in model.get_weights()]}


def run_all(arrays, rank, world_size):
    return {
        "collectives": collectives(arrays, rank, world_size),
        "gradient": gather_gradient(arrays, rank, world_size),
        "fit": train(arrays, rank, world_size),
    }


def _rank(rank, world_size):
    return run_all(problem(world_size), rank, world_size)


def main():
    torch.set_num_threads(1)
    arrays = problem(WORLD_SIZE)
    single = run_all(arrays, rank=0, world_size=1)
    ranks = run_gloo_ranks(_rank, WORLD_SIZE)
    return {
        "world_size": WORLD_SIZE,
        "problem": as_lists(arrays),
        "single": single,
        "ranks": ranks,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
