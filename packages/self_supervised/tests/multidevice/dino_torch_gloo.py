"""DINO/iBOT under torch.distributed with two gloo processes vs one process.

Each process holds half of the batch and trains the DDP-wrapped model with the
losses and centre updates of ``DistillationModel.compute_loss``. Prints one
JSON object on the last line of stdout; test_dino_distributed.py checks it.
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


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    torch_distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        result = train(problem(), rank, WORLD_SIZE)
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
    single = train(arrays, rank=0, world_size=1)
    with tempfile.TemporaryDirectory() as out_dir:
        torch_multiprocessing.spawn(
            _worker, args=(_free_port(), out_dir), nprocs=WORLD_SIZE, join=True
        )
        ranks = []
        for rank in range(WORLD_SIZE):
            with open(os.path.join(out_dir, f"rank{rank}.json")) as handle:
                ranks.append(json.load(handle))
    print(
        json.dumps(
            {"replicas": WORLD_SIZE, "problem": as_lists(arrays), "single": single, "ranks": ranks}
        )
    )


if __name__ == "__main__":
    main()
