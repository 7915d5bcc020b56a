"""No command runs code from a checkpoint: a crafted ``.ckpt`` is refused with one line everywhere."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from declip.errors import ConfigError
from declip.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


class _Payload:
    """Unpickling this runs ``touch MARKER``: what an attacker's checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def crafted(tmp_path):
    """A checkpoint shaped like declip's, whose hyper-parameters hold a pickled shell command."""
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.ckpt"
    backbone = {"class_path": "declip.models.MLP", "init_args": {"payload": _Payload(marker)}}
    torch.save({"state_dict": {}, "global_step": 3, "hyper_parameters": {"backbone": backbone}}, path)
    assert not marker.exists()
    return path, marker


def test_reader_refuses_and_names_the_global(crafted):
    path, marker = crafted
    with pytest.raises(ConfigError, match=r"crafted.ckpt: refused: it holds pickled Python objects \(posix.system\)"):
        load_checkpoint(path)
    assert not marker.exists()


def test_python_api_refuses(crafted):
    from declip.zoo import load_model
    from declip.zoo.export import export_checkpoint

    path, marker = crafted
    with pytest.raises(ConfigError, match="refused"):
        load_model(path)
    with pytest.raises(ConfigError, match="refused"):
        export_checkpoint(path, path.parent / "out")
    assert not marker.exists()


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


def test_random_bytes_are_one_line_without_torch_advice(tmp_path):
    path = tmp_path / "random.ckpt"
    path.write_bytes(np_bytes := bytes(range(256)) * 20)
    assert len(np_bytes) == 5120
    with pytest.raises(ConfigError) as error:
        load_checkpoint(path)
    text = str(error.value)
    assert text.startswith(f"{path}: not a declip checkpoint (") and "\n" not in text
    assert "weights_only" not in text
