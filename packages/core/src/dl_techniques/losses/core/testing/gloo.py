"""Runs a function on every rank of a torch gloo process group, for DDP tests.

Multi-device tests of torch DDP on one CPU machine start a process per rank
joined by a gloo process group. Rank 0 runs in the calling process, which has
imported torch, Keras and the losses already; only the other ranks start a
process (``torch.multiprocessing``, start method spawn), which saves one
interpreter start-up per run.
"""

import json
import os
import pathlib
import socket
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["run_gloo_ranks"]


def run_gloo_ranks(worker: Callable[[int, int], Any], world_size: int) -> list[Any]:
    """Returns ``[worker(rank, world_size) for rank in range(world_size)]``, one process per rank.

    Each rank sets torch to one thread, joins a gloo process group over a free
    local port, calls ``worker(rank, world_size)`` and leaves the group. The
    other ranks are spawned, so ``worker`` must be a module-level function of
    an importable module or of the ``__main__`` script, whose top level must
    not start the run again (guard it with ``if __name__ == "__main__"``).

    Args:
        worker: Called once on each rank; returns a JSON-serialisable value.
        world_size: The number of ranks, at least 2.

    Returns:
        The value of each rank, in rank order.

    Raises:
        ValueError: If ``world_size`` is below 2.
    """
    import torch.multiprocessing as torch_multiprocessing

    if world_size < 2:
        raise ValueError(f"run_gloo_ranks: `world_size` must be at least 2, got {world_size}.")
    with tempfile.TemporaryDirectory(prefix="dl-losses-gloo-") as out_dir:
        port = _free_port()
        others = torch_multiprocessing.start_processes(
            _spawned_rank,
            args=(worker, port, world_size, out_dir),
            nprocs=world_size - 1,
            join=False,
            daemon=True,
        )
        _run_rank(0, worker, port, world_size, out_dir)
        while not others.join():
            pass
        return [
            json.loads((pathlib.Path(out_dir) / f"rank{rank}.json").read_text())
            for rank in range(world_size)
        ]


def _spawned_rank(index: int, worker: Callable[[int, int], Any], *rest: Any) -> None:
    _run_rank(index + 1, worker, *rest)


def _run_rank(
    rank: int, worker: Callable[[int, int], Any], port: int, world_size: int, out_dir: str
) -> None:
    import torch
    import torch.distributed as torch_distributed

    torch.set_num_threads(1)
    torch_distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        result = worker(rank, world_size)
    finally:
        torch_distributed.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
