"""Data-parallel training with torch.distributed (gloo on the CPU): two processes launched by
torchrun, each running CFGAN's networks on half of every batch, end an epoch with the parameters
one process has after the same epoch on the whole batches."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import free_port
import torch

EPOCH = textwrap.dedent("""
    import sys
    import numpy as np, scipy.sparse as sp, torch
    from genrec import distributed
    from genrec.models.cfgan.config import CFGANConfig
    from genrec.models.cfgan.trainer import CFGANTrainer

    torch.set_num_threads(1)
    group = distributed.init_from_env(torch.device("cpu"))
    loss, out = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(3)
    rows = sp.csr_matrix((rng.random((61, 40)) < 0.2).astype(np.float32))  # 61 users: shares of 31 and 30
    cfg = CFGANConfig(hidden_g=16, hidden_d=8, scheme="ZP", loss=loss, input_dropout=0.2, ema_decay=0.9,
                      batch_g=61, batch_d=45, g_steps=2, d_steps=2, lr_g=1e-2, lr_d=1e-2)
    trainer = CFGANTrainer(cfg, rows, torch.device("cpu"), seed=7)
    losses = trainer.train_epoch()
    if group.rank == 0:
        torch.save({"losses": losses, "world": group.world, "g": trainer.generator.state_dict(),
                    "d": trainer.discriminator.state_dict(), "kept": trainer.kept()}, out)
""")


def _epoch(tmp_path: Path, loss: str, processes: int) -> dict:
    script = tmp_path / "epoch.py"
    script.write_text(EPOCH)
    out = tmp_path / f"{loss}-{processes}.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    if processes == 1:
        cmd = [sys.executable, str(script), loss, str(out)]
    else:
        cmd = [str(Path(sys.executable).parent / "torchrun"), f"--nproc-per-node={processes}",
               f"--master-port={free_port()}", str(script), loss, str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out)


@pytest.mark.parametrize("loss", ["bce", "wgan-gp"])
def test_two_processes_end_the_epoch_where_one_does(tmp_path, loss):
    one, two = _epoch(tmp_path, loss, 1), _epoch(tmp_path, loss, 2)
    assert one["world"] == 1 and two["world"] == 2
    for part in ("g", "d", "kept"):
        assert one[part].keys() == two[part].keys()
        for name, value in one[part].items():
            if value.is_floating_point():
                torch.testing.assert_close(two[part][name], value, rtol=1e-4, atol=1e-5, msg=f"{part}.{name}")
    for name, value in one["losses"].items():  # the logged losses are the whole batches' too
        assert two["losses"][name] == pytest.approx(value, rel=1e-4, abs=1e-6)
    start = _start(loss)
    moved = max(float((one["g"][k] - start[k]).abs().max()) for k in start if start[k].is_floating_point())
    assert moved > 1e-3  # the epoch really trained: the check compares weights that moved


def _start(loss: str) -> dict:
    import numpy as np
    import scipy.sparse as sp

    from genrec.models.cfgan.config import CFGANConfig
    from genrec.models.cfgan.trainer import CFGANTrainer

    rng = np.random.default_rng(3)
    rows = sp.csr_matrix((rng.random((61, 40)) < 0.2).astype(np.float32))
    cfg = CFGANConfig(hidden_g=16, hidden_d=8, scheme="ZP", loss=loss, input_dropout=0.2, ema_decay=0.9,
                      batch_g=61, batch_d=45, g_steps=2, d_steps=2, lr_g=1e-2, lr_d=1e-2)
    return CFGANTrainer(cfg, rows, torch.device("cpu"), seed=7).generator.state_dict()
