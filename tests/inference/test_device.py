"""``--device auto|cpu|cuda``: one resolution for ``declip restore``, ``declip adapt`` and the app (the
commands' answer without a GPU: tests/cli/test_restore_faults.py)."""

import pytest
import torch

from declip.errors import ConfigError
from declip.inference.device import resolve_device


def test_auto_takes_the_gpu_only_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device() == "cuda" and resolve_device("cpu") == "cpu" and resolve_device("cuda") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda; got 'tpu'"):
        resolve_device("tpu")
