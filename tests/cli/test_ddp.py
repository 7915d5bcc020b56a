"""A real two-process DDP run on CPU (gloo), launched the way users launch it."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from declip.training import DeclipModule

ROOT = Path(__file__).resolve().parents[2]


LAUNCHERS = {
    "lightning": [sys.executable, "-m", "declip"],  # Lightning starts the second process
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "declip"],
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_ddp_fit_on_two_cpu_processes_trains_and_checkpoints(launcher, tmp_path):
    command = [
        *LAUNCHERS[launcher], "fit", "--config", str(ROOT / "configs/synthetic.yaml"),
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
        "--trainer.max_steps=4", "--trainer.val_check_interval=2", "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}", "--model.backbone.init_args.hidden=32",
        "--data.init_args.batch_size=4", "--data.init_args.val_size=8",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "distributed_backend=gloo" in output and "GLOBAL_RANK: 1" in output
    last = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    assert checkpoint["global_step"] == 4
    module = DeclipModule.load_from_checkpoint(last)
    assert module.regime == "mc+ei"
