"""Faults during ``declip restore``: a bad output location, signals, a bad threshold or device, a race for
one output. One bad file never stops a batch; the summary always prints; nothing is silently replaced."""

import os
import signal
import subprocess
import sys
import time

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from declip.cli import main
from declip.data import SyntheticDataModule
from declip.errors import ConfigError
from declip.inference import LoadedModel
from declip.inference.restore import restore_file
from declip.losses import SupervisedLoss
from declip.models import UNet
from declip.training import DeclipModule
from tests.conftest import music


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    module = DeclipModule(UNet(channels=1, widths=(4, 8), stem_stride=2), SupervisedLoss(), sample_rate=16000)
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        limit_val_batches=0, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, SyntheticDataModule(length=256, batch_size=4))
    trainer.save_checkpoint(root / "model.ckpt")
    return str(root / "model.ckpt")


def _clipped(path, seconds=1.0, rate=16000, seed=5):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = music(seconds, rate, 1, seed)
    sf.write(path, np.clip(0.9 * x / np.abs(x).max(), -0.3, 0.3), rate, subtype="PCM_16")
    return path


def _declip(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "declip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)  # fmt: skip


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*tmp"))


def test_a_bad_output_location_fails_alone(checkpoint, tmp_path):
    for name in ("a.wav", "sub/b.wav", "c/d.wav", "z.wav"):
        _clipped(tmp_path / "in" / name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the folder sub/ should go")  # NotADirectoryError even for root
    (out / "c" / "d.wav").mkdir(parents=True)  # an output that is a folder: cannot be replaced by a file
    run = _declip("restore", str(tmp_path / "in"), "-o", str(out), "--model", checkpoint, "--overwrite")
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 1, stderr
    assert "restored 2 file(s), 2 failed" in stdout
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 2 and all(line.startswith("declip: error: ") for line in errors), stderr
    assert "sub/b.wav" in errors[-2] or "sub/b.wav" in errors[-1]
    assert any("c/d.wav" in line and "cannot write" in line for line in errors), stderr
    assert "Traceback" not in stderr
    assert sf.info(out / "a.wav").frames == 16000 and sf.info(out / "z.wav").frames == 16000
    assert (out / "sub").read_text().startswith("a file") and _leftovers(out) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_removes_temp_files_and_prints_the_summary(tmp_path, signum):
    for name in ("a.wav", "b.wav", "c.wav"):  # A-SPADE runs below real time: seconds per file
        _clipped(tmp_path / "in" / name, seconds=4.0)
    out = tmp_path / "out"
    run = _declip("restore", str(tmp_path / "in"), "-o", str(out), "--method", "aspade")
    deadline = time.monotonic() + 300
    while not (out.is_dir() and _leftovers(out)):  # a file is being written
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(run.pid, signum)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    name = signal.Signals(signum).name
    assert "file(s)," in stdout and "failed" in stdout  # the summary so far
    stopped = [line for line in stderr.splitlines() if f"not restored: stopped by {name}" in line]
    assert stopped and all(line.startswith("declip: error: ") for line in stopped)
    assert _leftovers(out) == [], "temporary files were left behind"
    written = sorted(p.name for p in out.glob("*.wav"))
    assert len(written) + len(stopped) == 3


def test_threshold_is_checked_once_before_the_model_loads(tmp_path, capsys):
    inputs = [str(_clipped(tmp_path / f"{i}.wav")) for i in range(3)]
    for bad in ("nan", "inf", "-0.2", "0", "loud"):
        with pytest.raises(SystemExit) as stop:  # --model names no model: it would fail if it were loaded first
            main(["restore", *inputs, "-o", str(tmp_path / "out"), "--threshold", bad, "--model", "no-such-model"])
        assert stop.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert errors == [
            f"declip restore: error: --threshold must be 'auto' or a positive number (the clip level); got {bad!r}"
        ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("command", ["restore", "adapt"])
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, command):
    src = _clipped(tmp_path / "x.wav")
    run = _declip(command, str(src), "-o", str(tmp_path / "out"), "--device", "cuda")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 2
    assert stderr.strip().splitlines()[-1] == (
        f"declip {command}: error: --device cuda: torch sees no CUDA GPU here; use --device cpu (or auto)"
    )
    assert "Traceback" not in stderr


def test_an_output_written_meanwhile_by_another_run_is_kept(checkpoint, tmp_path):
    src, target = _clipped(tmp_path / "x.wav"), tmp_path / "out.wav"
    model = LoadedModel.from_checkpoint(checkpoint)

    def other_run_finishes_first(done, total):  # another restore writes the same output while this one runs
        if done == total:
            target.write_bytes(b"the other run's output")

    with pytest.raises(ConfigError, match="appeared while restoring .* kept it"):
        restore_file(src, target, model, progress=other_run_finishes_first)
    assert target.read_bytes() == b"the other run's output"
    assert _leftovers(tmp_path) == []
    target.unlink()
    restore_file(src, target, model, progress=other_run_finishes_first, overwrite=True)  # asked to replace
    assert sf.info(target).frames == 16000


def test_two_restores_of_one_output_at_once_never_both_succeed(checkpoint, tmp_path):
    src = _clipped(tmp_path / "x.wav", seconds=20.0)
    runs = [_declip("restore", str(src), "-o", str(tmp_path / "same.wav"), "--model", checkpoint) for _ in range(2)]
    results = [(run.wait(timeout=600), run.communicate()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, (_, err) in results if code == 1)
    assert "same.wav" in loser and ("appeared while restoring" in loser or "exists" in loser)
    assert sf.info(tmp_path / "same.wav").frames == 20 * 16000
