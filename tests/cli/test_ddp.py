"""Real two-process DDP runs on CPU (gloo), launched the way users launch them."""

import os
import signal
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
SYNTHETIC = ["--model.backbone.init_args.hidden=32", "--data.init_args.val_size=8"]
TIMEOUT = 300  # seconds; a run takes about 20


def _run(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run a launch to its end: ``(return code, stdout + stderr)``. A run still going after :data:`TIMEOUT` s
    fails the test with every process's stacks: each runs with faulthandler, and the whole process group (the
    launcher, the rank it starts, the loader workers) gets SIGABRT, on which faulthandler prints every thread."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGABRT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        pytest.fail(f"DDP run still going after {TIMEOUT} s; its output and every process's stacks:\n{output}")
    return process.returncode, output


def _fit(launcher: str, config: str, extra: list[str], tmp_path: Path) -> Path:
    command = [
        *LAUNCHERS[launcher], "fit", "--config", str(ROOT / config),
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
        "--trainer.max_steps=4", "--trainer.val_check_interval=2", "--trainer.enable_progress_bar=false",
        "--trainer.callbacks=[{class_path: lightning.pytorch.callbacks.ModelCheckpoint, init_args: {save_last: true}}]",
        f"--trainer.default_root_dir={tmp_path}", "--data.init_args.batch_size=4", *extra,
    ]  # fmt: skip
    code, output = _run(command, tmp_path)
    assert code == 0, output[-3000:]
    assert "distributed_backend=gloo" in output and "GLOBAL_RANK: 1" in output
    return tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_ddp_fit_on_two_cpu_processes_trains_and_checkpoints(launcher, tmp_path):
    last = _fit(launcher, "configs/synthetic.yaml", SYNTHETIC, tmp_path)
    assert torch.load(last, weights_only=False)["global_step"] == 4
    assert DeclipModule.load_from_checkpoint(last).regime == "mc+ei"


def test_ddp_fit_on_real_audio_with_loader_workers(musdb, tmp_path):
    extra = [
        "--model.backbone.init_args.widths=[4, 8]",
        f"--data.init_args.corpus.init_args.root={musdb}",
        "--data.init_args.corpus.init_args.valid_fraction=0.25",
        "--data.init_args.num_workers=1",
        "--data.init_args.val_items=8",
    ]
    last = _fit("lightning", "configs/music.yaml", extra, tmp_path)
    assert torch.load(last, weights_only=False)["global_step"] == 4
    assert (musdb / "declip-split.json").exists()
