"""No command runs code from a checkpoint: a crafted ``.ckpt`` (the ``crafted`` fixture) is refused with one line
by every command that reads one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = {
    "zoo export": ["zoo", "export", "{ckpt}", "{tmp}/exported"],
    "zoo push": ["zoo", "push", "{ckpt}", "--repo-id", "someone/model"],
    "restore --model": ["restore", "{wav}", "-o", "{tmp}/out", "--model", "{ckpt}"],
    "adapt --model": ["adapt", "{wav}", "-o", "{tmp}/adapted", "--model", "{ckpt}", "--steps", "2"],
    "fit --ckpt_path": ["fit", "--config", str(ROOT / "configs/synthetic.yaml"), "--ckpt_path", "{ckpt}"],
    "test --ckpt_path": ["test", "--config", str(ROOT / "configs/synthetic.yaml"), "--ckpt_path", "{ckpt}"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_refuses_with_one_line(crafted, tmp_path, name):
    import numpy as np
    import soundfile as sf

    path, marker = crafted
    wav = tmp_path / "in.wav"
    sf.write(wav, np.clip(np.sin(np.arange(8000) / 5.0), -0.5, 0.5).astype(np.float32), 16000)
    args = [a.format(ckpt=path, tmp=tmp_path, wav=wav) for a in COMMANDS[name]]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "declip", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode != 0
    assert not marker.exists(), f"declip {name} ran the checkpoint's code"
    assert "refused: it holds pickled Python objects (posix.system)" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "weights_only=False" not in result.stderr
    assert "weights_only` set to `False`" not in result.stderr
