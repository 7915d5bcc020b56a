"""A ``declip fit`` killed with SIGKILL resumes with ``--ckpt_path last`` at the step it had saved, data included."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from declip.training.checkpoint import load_checkpoint
from tests.batch_log import batches

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
    def fit(log: str, *extra: str, kill_at_step: int = -1) -> subprocess.CompletedProcess:
        init_args = f"{{folder: {tmp_path / log}, kill_at_step: {kill_at_step}}}"
        batch_log = f"{{class_path: tests.batch_log.BatchLog, init_args: {init_args}}}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}  # Lightning's warnings shown
        command = [*FIT, *extra, f"--trainer.callbacks+={batch_log}"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)

    # killed with SIGKILL before step 25 (no chance to save or clean up, as after a crash or an OOM kill),
    # after validating and saving last.ckpt at step 20
    first = fit("run1", "--trainer.max_steps=100000", kill_at_step=25)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    checkpoints = tmp_path / "lightning_logs/version_0/checkpoints"
    saved = max(load_checkpoint(p)["global_step"] for p in checkpoints.glob("*.ckpt"))
    assert saved == 20

    resumed = fit("run2", f"--trainer.max_steps={saved + 20}", "--ckpt_path", "last")
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert f"resuming from {checkpoints / 'last.ckpt'} (step {saved})" in output, output[-3000:]
    assert "No checkpoint" not in output and "no last checkpoint" not in output.lower()
    assert "not resumable" not in output
    version = tmp_path / "lightning_logs/version_1"
    assert load_checkpoint(version / "checkpoints/last.ckpt")["global_step"] == saved + 20
    train_steps = _scalars(version, "train/loss")
    assert train_steps and min(train_steps) > saved, train_steps  # went on from the saved step, not from 0
    assert max(train_steps) >= saved + 15
    assert _scalars(version, "val/delta_sdr"), "the resumed run logged no validation score"
    # the data stream went on too: steps 20-24 trained on what the killed run had drawn for them, and
    # nothing trained on before step 20 came again
    before, after = batches(tmp_path / "run1"), batches(tmp_path / "run2")
    assert sorted(before) == list(range(25)) and sorted(after) == list(range(saved, saved + 20))
    assert all(after[step] == before[step] for step in range(saved, 25))
    assert not {before[step] for step in range(saved)} & set(after.values())


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
