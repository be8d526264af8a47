"""Seconds per CFGAN epoch, one process against data-parallel processes (torch.distributed; gloo on
the CPU, NCCL where there are GPUs), on a seeded synthetic users x items matrix.

    python benchmarks/data_parallel.py [--users 6000] [--items 3000] [--density 0.01] [--epochs 3]
        [--processes 2] [--device cpu|cuda]

Each configuration runs as its own torchrun job; the CPU's cores are split evenly between the
processes (torch threads per process = cores / processes), so the comparison is the same machine
used two ways. Prints the median epoch and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = """
import json, sys, time
import numpy as np, scipy.sparse as sp, torch
from genrec import distributed
from genrec.models.cfgan.config import CFGANConfig
from genrec.models.cfgan.trainer import CFGANTrainer
from genrec.training import resolve_device
users, items, density, epochs, threads, device, out = sys.argv[1:8]
torch.set_num_threads(int(threads))
device = resolve_device(device)  # under torchrun, each process its own GPU
group = distributed.init_from_env(device)
rng = np.random.default_rng(0)
n_users, n_items = int(users), int(items)
nnz = int(n_users * n_items * float(density))
matrix = sp.csr_matrix((np.ones(nnz, np.float32), (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
                       shape=(n_users, n_items))
matrix.data[:] = 1
trainer = CFGANTrainer(CFGANConfig(batch_g=256, batch_d=256), matrix, device, seed=0)
seconds = []
for _ in range(int(epochs)):
    start = time.perf_counter()
    trainer.train_epoch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds.append(time.perf_counter() - start)
if group.rank == 0:
    json.dump({"seconds": seconds, "world": group.world}, open(out, "w"))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes: int, args, cores: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        script, out = Path(tmp) / "worker.py", Path(tmp) / "out.json"
        script.write_text(WORKER)
        threads = max(1, cores // processes) if args.device == "cpu" else 1
        cmd = [str(Path(sys.executable).parent / "torchrun"), f"--nproc-per-node={processes}", f"--master-port={_port()}",
               str(script), str(args.users), str(args.items), str(args.density), str(args.epochs), str(threads),
               args.device, str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        return json.loads(out.read_text())["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"CFGAN (default sizes, batches of 256) on {args.users} users x {args.items} items, density {args.density}; "
          f"{args.device}, {cores} cores; {args.epochs} epochs each, median epoch shown")
    base = None
    for processes in sorted({1, args.processes}):
        start = time.perf_counter()
        seconds = sorted(run(processes, args, cores))
        median = seconds[len(seconds) // 2]
        base = base or median
        print(f"{processes} process(es): {median:.2f} s per epoch (speed-up {base / median:.2f}x; "
              f"wall {time.perf_counter() - start:.0f} s with start-up)")


if __name__ == "__main__":
    main()
