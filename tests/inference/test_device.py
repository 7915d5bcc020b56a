"""``--device auto|cpu|cuda``: one resolution for ``declip restore``, ``declip adapt`` and the app."""

import pytest
import torch

from declip.cli import main
from declip.errors import ConfigError
from declip.inference.device import resolve_device


def test_auto_takes_the_gpu_only_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device() == "cuda" and resolve_device("cpu") == "cpu" and resolve_device("cuda") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda; got 'tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize("command", ["restore", "adapt"])
def test_cuda_without_a_gpu_is_a_usage_error_of_each_command(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        main([command, str(tmp_path / "in.wav"), "-o", str(tmp_path / "out"), "--device", "cuda"])
    assert exit_.value.code == 2 and list(tmp_path.iterdir()) == []
    assert "--device cuda: torch sees no CUDA GPU here; use --device cpu (or auto)" in capsys.readouterr().err
