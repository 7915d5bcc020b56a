"""Faults during ``declip restore``: a bad output location, signals, a bad threshold or device, a race for
one output. One bad file never stops a batch; the summary always prints; nothing is silently replaced."""

import os
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf
import torch

from declip.cli import main
from tests.conftest import clipped_wav


def _declip(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "declip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)  # fmt: skip


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*tmp"))


def test_a_bad_output_location_fails_alone(checkpoint, tmp_path):
    for name in ("a.wav", "sub/b.wav", "c/d.wav", "z.wav"):
        clipped_wav(tmp_path / "in" / name, channels=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the folder sub/ should go")  # NotADirectoryError even for root
    (out / "c" / "d.wav").mkdir(parents=True)  # an output that is a folder: cannot be replaced by a file
    run = _declip("restore", str(tmp_path / "in"), "-o", str(out), "--model", str(checkpoint), "--overwrite")
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
        clipped_wav(tmp_path / "in" / name, seconds=4.0, channels=1)
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
    inputs = [str(clipped_wav(tmp_path / f"{i}.wav", channels=1)) for i in range(3)]
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
    src = clipped_wav(tmp_path / "x.wav", channels=1)
    run = _declip(command, str(src), "-o", str(tmp_path / "out"), "--device", "cuda")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 2
    assert stderr.strip().splitlines()[-1] == (
        f"declip {command}: error: --device cuda: torch sees no CUDA GPU here; use --device cpu (or auto)"
    )
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", ["restore", "adapt"])
def test_cuda_without_a_gpu_is_a_usage_error_of_each_command(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        main([command, str(tmp_path / "in.wav"), "-o", str(tmp_path / "out"), "--device", "cuda"])
    assert exit_.value.code == 2 and list(tmp_path.iterdir()) == []
    assert "--device cuda: torch sees no CUDA GPU here; use --device cpu (or auto)" in capsys.readouterr().err


def test_two_restores_of_one_output_at_once_never_both_succeed(checkpoint, tmp_path):
    src = clipped_wav(tmp_path / "x.wav", seconds=20.0, channels=1)
    runs = [
        _declip("restore", str(src), "-o", str(tmp_path / "same.wav"), "--model", str(checkpoint)) for _ in range(2)
    ]
    results = [(run.wait(timeout=600), run.communicate()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, (_, err) in results if code == 1)
    assert "same.wav" in loser and ("appeared while restoring" in loser or "exists" in loser)
    assert sf.info(tmp_path / "same.wav").frames == 20 * 16000
