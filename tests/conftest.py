import os

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
