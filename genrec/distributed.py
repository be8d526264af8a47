"""Data-parallel training across processes with torch.distributed: gloo on the CPU, NCCL on GPUs.

Launched by torchrun (`torchrun --nproc-per-node N ...`), each process (rank) builds the same trainer
from the same seed, so every rank draws the same batches and the same random masks for the whole
global batch; each then runs the networks forward and backward on its own contiguous share of the
batch's rows only (the costly part), and DistributedDataParallel averages the gradients. Each
rank's loss is weighted by its share of the rows, so the averaged gradient is the global batch's
mean exactly, and the weights after a step equal those of one process on the same global batch
(tests/test_distributed.py). Validation and early stopping then agree on every rank; only rank 0
writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1

    @property
    def parallel(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> slice:
        """This rank's contiguous share of `n` rows (sizes differ by at most one)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """`module` whose backward averages gradients over the ranks (itself in one process)."""
        if not self.parallel:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def weight(self, local_rows: int, global_rows: int) -> float:
        """The factor on a rank's mean loss that makes the ranks' averaged gradient the global mean's."""
        return local_rows * self.world / global_rows if self.parallel else 1.0

    def global_mean(self, local_mean: float, local_rows: int, global_rows: int) -> float:
        """The global batch's mean of a per-row loss from each rank's mean over its rows."""
        if not self.parallel:
            return local_mean
        total = torch.tensor([local_mean * local_rows], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total) / global_rows


def current() -> Group:
    """The process group this process belongs to; one process where none is set up."""
    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    return Group()


def init_from_env(device: torch.device) -> Group:
    """Join the group torchrun describes in the environment (WORLD_SIZE > 1), once."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return current()
