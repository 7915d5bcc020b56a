"""Signals for the detection tests: music-like mixtures, a limiter, a one-sided bump, real encoders' gains."""

import math

import numpy as np
import torch

from declip.data.codecs import code
from declip.physics import threshold_for_sdr

RATE = 44100
KBPS = {"mp3": 128, "opus": 96, "vorbis": 128, "aac": 128}


def rich_music(seconds: float, channels: int, seed: int) -> np.ndarray:
    """Forty partials under slow envelopes and a little noise, ``(frames, channels)`` float32 at
    0.9 peak: an amplitude distribution close to real music's (a few pure tones would pile up at
    their peak, like a clipped signal)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = []
    for _ in range(channels):
        s = np.zeros_like(t)
        for _ in range(40):
            f = 55 * 2 ** rng.uniform(0, 6)
            envelope = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t + rng.uniform(0, 6.3))
            s += rng.uniform(0.2, 1) / np.sqrt(f / 55) * envelope * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
        out.append(s + 0.05 * s.std() * rng.standard_normal(len(t)))
    x = np.stack(out, 1)
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


def drum_music(seconds: float, channels: int, seed: int, drums: float) -> np.ndarray:
    """:func:`rich_music` with a noise burst (15 ms decay) every quarter second, ``drums`` times its
    RMS, at 0.9 peak: broadband peaks, on which Opus at 96 kbps adds noise of a few % of the level
    (as on real music), where on the partials alone it adds much less."""
    rng = np.random.default_rng(seed)
    x = rich_music(seconds, channels, seed).astype(np.float64)
    hits = np.zeros(len(x))
    for start in np.arange(0, seconds, 0.25):
        i, n = int((start + rng.uniform(0, 0.02)) * RATE), int(0.08 * RATE)
        hits[i : i + n] += rng.uniform(0.5, 1) * np.exp(-np.arange(min(n, len(x) - i)) / (0.015 * RATE))
    noise = rng.standard_normal(x.shape) * hits[:, None]
    x = x / x.std() + drums * noise / noise.std()
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


def limiter(x: np.ndarray, ceiling: float, attack: float = 0.005, release: float = 0.05) -> np.ndarray:
    """A look-ahead brick-wall limiter: the gain never lets a peak past ``ceiling``; it falls
    ``attack`` seconds ahead of a peak and recovers with a ``release`` time constant."""
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x).max(1), 1e-9))
    width = 2 * int(attack * RATE) + 1
    gain = -torch.nn.functional.max_pool1d(-torch.from_numpy(need)[None, None], width, 1, width // 2)[0, 0].numpy()
    smooth, current, k = np.empty_like(gain), 1.0, np.exp(-1 / (release * RATE))
    for i, g in enumerate(gain):
        current = g if g < current else k * current + (1 - k) * g
        smooth[i] = current
    return (x * np.minimum(smooth, need)[:, None]).astype(np.float32)


def one_sided_bump(x: np.ndarray, centre: float = 0.3, width: float = 0.03, squeeze: float = 0.3) -> np.ndarray:
    """``x`` with its positive amplitudes near ``centre`` drawn together by a smooth monotone map whose
    slope dips to ``squeeze`` there: a bump in one polarity's amplitude distribution, with music above
    it, as the peaks of a sustained sound make one (a validation track's bump, 1.55 times the density
    below it after MP3, was called clipped)."""
    v = torch.from_numpy(x.astype(np.float64))
    shift = (1 - squeeze) * width * np.sqrt(np.pi) / 2 * (torch.erf((v - centre) / width) + math.erf(centre / width))
    return torch.where(v > 0, v - shift, v).numpy().astype(np.float32)


def sine_gain(codec: str) -> float:
    """What the encoder does to a sine's amplitude (LAME scales by 0.95): the clip level in the file."""
    t = np.arange(RATE * 2) / RATE
    sine = (0.5 * np.sin(2 * np.pi * 997 * t))[:, None].astype(np.float32)
    return float(np.abs(code(sine, RATE, codec, KBPS[codec])[RATE // 2 : -RATE // 2]).max() / 0.5)


def tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.T))


def clipped_at(x: np.ndarray, sdr_db: float) -> tuple[np.ndarray, float]:
    theta = float(threshold_for_sdr(tensor(x)[None], sdr_db))
    return np.clip(x, -theta, theta), theta
