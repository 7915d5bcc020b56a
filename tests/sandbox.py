"""Tiny inputs for the tests that run documented commands and benchmark scripts: a MUSDB-like music
corpus, SQAM-like excerpts and clipped recordings, seconds long, written with soundfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100


def tones(seconds: float, channels: int, seed: int, rate: int = RATE) -> np.ndarray:
    """Three tones with random pitches and levels under a slow swell, ``(frames, channels)`` float32 in (-1, 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t)
    tone = swell * sum(rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(80, 2000) * t) for _ in range(3))
    return np.stack([tone * rng.uniform(0.6, 1.0) for _ in range(channels)], 1).astype(np.float32)


def music_corpus(root: Path, tracks: dict[str, list[str]], seconds: float = 2.0, seed: int = 0) -> Path:
    """``root/{split}/{track}/mixture.flac`` (44.1 kHz stereo 24-bit) plus two stems, as
    ``declip data build`` writes them."""
    for split, names in tracks.items():
        for number, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            low, high = tones(seconds, 2, seed + 2 * number), tones(seconds, 2, seed + 2 * number + 1)
            sf.write(folder / "bass.flac", low, RATE, subtype="PCM_24")
            sf.write(folder / "other.flac", high, RATE, subtype="PCM_24")
            sf.write(folder / "mixture.flac", (low + high) / 2, RATE, subtype="PCM_24")
        seed += 100
    return root


def sqam_excerpts(folder: Path, files: int = 2, seconds: float = 1.0) -> Path:
    """Mono 16-bit 44.1 kHz WAV excerpts, the format ``declip bench sqam`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        sf.write(folder / f"a{number:02d}_tones.wav", tones(seconds, 1, 50 + number), RATE, subtype="PCM_16")
    return folder


def clipped_recording(path: Path, seconds: float = 1.0, seed: int = 7, level: float = 0.25) -> Path:
    """A stereo float WAV of tones clipped at ``level`` (plateaus the clip-level detection finds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(tones(seconds, 2, seed) * 1.5, -level, level), RATE, subtype="FLOAT")
    return path
