"""Fixtures and helpers that tests in several folders share."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("PYTHONWARNINGS", "ignore")


def music(seconds: float, rate: int, channels: int, seed: int) -> np.ndarray:
    """A few seconds of tones with random pitches and levels, ``(frames, channels)`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(rng.uniform(0.1, 0.4) * np.sin(2 * np.pi * rng.uniform(80, 2000) * t) for _ in range(3))
    return np.stack([tone * rng.uniform(0.5, 1.0) for _ in range(channels)], 1).astype(np.float32)


def clipped_wav(
    path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 2, level: float = 0.3, seed: int = 5,
    subtype: str | None = "PCM_16",
) -> Path:  # fmt: skip
    """``music`` peaking at 0.9, clipped at ±``level`` and written to ``path`` (the format from its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = music(seconds, rate, channels, seed)
    sf.write(path, np.clip(0.9 * x / np.abs(x).max(), -level, level), rate, subtype=subtype)
    return path


def clipped_folder(root: Path, level: float = 0.3, files: int = 2) -> Path:
    """``root/take{i}.wav``: ``files`` clipped stereo recordings of 2 s at 16 kHz, to adapt on."""
    for i in range(files):
        clipped_wav(root / f"take{i}.wav", seconds=2.0, level=level, seed=10 + i)
    return root


@pytest.fixture
def musdb(tmp_path):
    """A MUSDB-like tree: 4 train and 1 test track of 2 s at 16 kHz with two stems and their mixture."""
    root = tmp_path / "musdb"
    for split, count in (("train", 4), ("test", 1)):
        for i in range(count):
            track = root / split / f"{split}{i}"
            track.mkdir(parents=True)
            drums, bass = music(2.0, 16000, 2, 100 + i), music(2.0, 16000, 2, 200 + i)
            sf.write(track / "drums.flac", drums, 16000)
            sf.write(track / "bass.wav", bass, 16000)
            sf.write(track / "mixture.wav", drums + bass, 16000)
    return root


@pytest.fixture
def plateau_detections(monkeypatch) -> list:
    """The calls of ``detect_clip_level_blocks`` (plateau detection, one pass over a file) made during the test,
    through every declip module that imported it."""
    import declip.detection.plateaus as plateaus

    original, calls = plateaus.detect_clip_level_blocks, []

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("declip") and getattr(module, "detect_clip_level_blocks", None) is original:
            monkeypatch.setattr(module, "detect_clip_level_blocks", counted)
    return calls


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny MC+EI model (16 kHz mono) trained for three steps, saved where LightningCLI would put it."""
    import lightning as L
    import torch

    from declip.data import SyntheticDataModule
    from declip.losses import EILoss, MCLoss
    from declip.models import UNet
    from declip.training import DeclipModule

    root = tmp_path_factory.mktemp("run")
    with torch.random.fork_rng():  # the same model whichever tests ran first (its bf16 agreement is tested)
        torch.manual_seed(0)
        module = DeclipModule(
            UNet(channels=1, widths=(4, 8), stem_stride=2), [MCLoss(), EILoss(weight=2.0)], sample_rate=16000
        )
        trainer = L.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                            limit_val_batches=0, enable_model_summary=False)  # fmt: skip
        trainer.fit(module, SyntheticDataModule(length=256, batch_size=4))
    (root / "checkpoints").mkdir()
    trainer.save_checkpoint(root / "checkpoints" / "last.ckpt")
    (root / "config.yaml").write_text("seed_everything: 0\nmodel:\n  lr: 0.001\n")
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A base model to adapt: a small untrained UNet folder in the Hub layout (adaptation has a lot to fix)."""
    import torch

    from declip.models import Declipper, UNet
    from declip.zoo.export import write_folder

    torch.manual_seed(0)
    backbone = UNet(channels=1, widths=(8, 16), stem_stride=4)
    config = {
        "sample_rate": 16000, "channels": 1, "backbone": {"class_path": "declip.models.UNet", "init_args":
        {"channels": 1, "widths": [8, 16], "kernel_size": 5, "bias": True, "stem_stride": 4}},
        "consistent_output": False, "regime": "mc+ei", "params": 0, "metrics": {"x": {"5": 1.0}},
    }  # fmt: skip
    return write_folder(Declipper(backbone).state_dict(), config, tmp_path_factory.mktemp("zoo") / "base", "base", None)


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An empty zoo (registry and folders) in ``tmp_path``; ``add(name, folder_entry)`` registers one."""
    from declip.zoo import registry

    path = tmp_path / "registry.json"
    path.write_text("[]")
    monkeypatch.setattr(registry, "REGISTRY", path)
    monkeypatch.setattr(registry, "ZOO", tmp_path / "zoo")

    def add(**fields):
        items = json.loads(path.read_text())
        base = dict(repo_id="declip-test/tiny", revision=None, regime="mc+ei", sample_rate=16000, channels=1,
                    params=0, headline="", scores={})  # fmt: skip
        items.append(base | fields)
        path.write_text(json.dumps(items))

    return add


class _Payload:
    """Unpickling this runs ``touch MARKER``: what an attacker's checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def crafted(tmp_path):
    """A checkpoint shaped like declip's, whose hyper-parameters hold a pickled shell command; and the file
    that command would create."""
    import torch

    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.ckpt"
    backbone = {"class_path": "declip.models.MLP", "init_args": {"payload": _Payload(marker)}}
    torch.save({"state_dict": {}, "global_step": 3, "hyper_parameters": {"backbone": backbone}}, path)
    assert not marker.exists()
    return path, marker
