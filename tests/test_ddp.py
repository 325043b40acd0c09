"""Two-process DDP training on CPU (gloo) under torchrun: both ranks end with identical weights."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from test_training_helpers import tiny_config

SCRIPT = """
import os, sys
import torch
from iseg.training import load_config, trainer

nets = []
build = trainer.build_networks


def capture(cfg, device):
    net, coarse = build(cfg, device)
    nets.append(net)
    return net, coarse


trainer.build_networks = capture
out = trainer.train(load_config(sys.argv[1]), sys.argv[2], progress=False)
torch.save(nets[0].state_dict(), out / f"rank{os.environ['RANK']}.pt")
"""


@pytest.mark.slow
def test_torchrun_two_gloo_processes_keep_identical_weights(tmp_path):
    cfg = tiny_config(tmp_path, epochs=2, samples_per_epoch=8, batch_size=2, threads=1)
    cfg.save(tmp_path / "train.yaml")
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script), str(tmp_path / "train.yaml"), str(out)],
                            capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key in ranks[0]:
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    assert (out / "checkpoints" / "last.pt").is_file()
    assert len((out / "metrics.csv").read_text().splitlines()) == 3
