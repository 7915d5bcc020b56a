"""A ``declip fit`` killed with SIGKILL resumes with ``--ckpt_path last`` at the step it had saved."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from declip.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
FIT = [
    sys.executable, "-m", "declip", "fit", "--config", str(ROOT / "configs/synthetic.yaml"),
    "--model.backbone.init_args.hidden=32", "--data.init_args.val_size=8", "--data.init_args.batch_size=4",
    "--trainer.val_check_interval=10", "--trainer.log_every_n_steps=5", "--trainer.enable_progress_bar=false",
]  # fmt: skip


def _scalars(version: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(version))
    events.Reload()
    return [event.step for event in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def test_sigkilled_fit_resumes_from_the_latest_last_ckpt(tmp_path):
    first = subprocess.Popen([*FIT, "--trainer.max_steps=100000"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    checkpoints = tmp_path / "lightning_logs/version_0/checkpoints"
    deadline = time.monotonic() + 300
    while not any(int(m.group(1)) >= 20 for p in checkpoints.glob("*.ckpt") if (m := re.search(r"step=(\d+)", p.name))):
        assert first.poll() is None, first.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the first run saved no checkpoint at step 20 in 300 s"
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)  # no chance to save or clean up, as after a crash or an OOM kill
    first.wait()
    first.stderr.close()
    saved = max(load_checkpoint(p)["global_step"] for p in checkpoints.glob("*.ckpt"))
    assert saved >= 20

    resumed = subprocess.run([*FIT, f"--trainer.max_steps={saved + 20}", "--ckpt_path", "last"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert f"resuming from {checkpoints / 'last.ckpt'} (step {saved})" in output, output[-3000:]
    assert "No checkpoint" not in output and "no last checkpoint" not in output.lower()
    version = tmp_path / "lightning_logs/version_1"
    assert load_checkpoint(version / "checkpoints/last.ckpt")["global_step"] == saved + 20
    train_steps = _scalars(version, "train/loss")
    assert train_steps and min(train_steps) > saved, train_steps  # went on from the saved step, not from 0
    assert max(train_steps) >= saved + 15
    assert _scalars(version, "val/delta_sdr"), "the resumed run logged no validation score"


def test_last_with_no_earlier_run_trains_from_step_0_and_says_so(tmp_path):
    result = subprocess.run([*FIT, "--trainer.max_steps=2", "--ckpt_path", "last"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no last.ckpt under" in result.stderr and "training from step 0" in result.stderr


@pytest.mark.parametrize("command", ["validate", "test"])
def test_last_with_no_earlier_run_is_one_line_outside_fit(tmp_path, command):
    result = subprocess.run([*FIT[:3], command, *FIT[4:], "--ckpt_path", "last"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("declip: error: --ckpt_path last: no last.ckpt under")
    assert "Traceback" not in result.stderr


def test_a_truncated_last_ckpt_is_skipped_for_the_newest_readable_one(tmp_path, monkeypatch, capsys):
    from declip.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["fit", *FIT[4:], "--trainer.val_check_interval=2"]
    assert main([*args, "--trainer.max_steps=2"]) == 0
    good = tmp_path / "lightning_logs/version_0/checkpoints/last.ckpt"
    broken = tmp_path / "lightning_logs/version_1/checkpoints/last.ckpt"  # newer: a kill while it was saved
    broken.parent.mkdir(parents=True)
    broken.write_bytes(good.read_bytes()[:1000])
    capsys.readouterr()
    assert main([*args, "--trainer.max_steps=4", "--ckpt_path", "last"]) == 0
    err = capsys.readouterr().err
    assert f"skipping {broken}: not a declip checkpoint" in err
    assert f"resuming from {good} (step 2)" in err
    assert load_checkpoint(tmp_path / "lightning_logs/version_2/checkpoints/last.ckpt")["global_step"] == 4
