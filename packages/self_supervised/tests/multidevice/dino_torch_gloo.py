"""DINO/iBOT under torch.distributed with two gloo processes vs one process.

Each process holds half of the batch and trains the DDP-wrapped model with the
losses and centre updates of ``DistillationModel.compute_loss``. Prints one
JSON object on the last line of stdout; test_dino_distributed.py checks it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from dino_common import (  # noqa: E402
    LEARNING_RATE,
    REDUNDANCY_TERMS,
    STEPS,
    TARGETS,
    as_lists,
    new_model,
    problem,
    redundancy_values,
    summary,
)
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from dl_techniques.losses.core.distributed import all_mean  # noqa: E402
from dl_techniques.losses.core.testing.gloo import run_gloo_ranks  # noqa: E402

WORLD_SIZE = 2


def _slice(array, rank, world_size):
    return torch.from_numpy(np.split(array, world_size)[rank].copy())


def train(arrays, rank, world_size):
    model = new_model(arrays)
    module = DistributedDataParallel(model) if world_size > 1 else model
    optimizer = torch.optim.SGD(model.student.parameters(), lr=LEARNING_RATE)
    crops = _slice(arrays["crops"], rank, world_size)
    y = {name: _slice(arrays[name], rank, world_size) for name in TARGETS}
    history = {name: [] for name in ("loss", *REDUNDANCY_TERMS)}
    for _ in range(STEPS):
        for tracker in model.redundancy_trackers:
            tracker.reset_state()
        loss = model.compute_loss(y=y, y_pred=module(crops), training=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["loss"].append(all_mean(loss.detach()).item())
        for name, value in redundancy_values(model).items():
            history[name].append(value)
    return summary(model, history)


def _rank(rank, world_size):
    return train(problem(), rank, world_size)


def main():
    torch.set_num_threads(1)
    arrays = problem()
    single = train(arrays, rank=0, world_size=1)
    ranks = run_gloo_ranks(_rank, WORLD_SIZE)
    return {"replicas": WORLD_SIZE, "problem": as_lists(arrays), "single": single, "ranks": ranks}


if __name__ == "__main__":
    print(json.dumps(main()))
