"""The declipping survey's protocol on the SQAM excerpts (``declip bench sqam``).

Protocol (Záviška, Rajmic, Ozerov, Rencker 2021): x = int16 / 32768, mono, 44.1 kHz, not
normalised; for each input SDR the threshold θ is root-searched so that SDR(x, clip(x, θ)) hits
it; each method restores clip(x, θ) given θ; ΔSDR = SDR(x, x̂) - SDR(x, y) with the plain SDR,
overall and on the clipped samples, averaged over the files; ΔSI-SDR likewise. The excerpts are
for evaluation only: never train or tune on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as si_sdr

from declip.errors import ConfigError
from declip.inference.restore import restore_array
from declip.metrics import DEFAULT_LEVELS, delta_sdr
from declip.physics import LEVEL_TOLERANCE, threshold_for_sdr

LEVELS = DEFAULT_LEVELS  # the survey's input SDRs, which the published rows below are indexed by
PUBLISHED = {  # mean ΔSDR of the study's released results (SQAM README of the benchmark data)
    "SS-PEW": [12.17, 15.03, 16.60, 17.66, 19.00, 21.11, 21.99],
    "A-SPADE": [11.88, 13.88, 15.06, 15.98, 17.28, 19.43, 20.27],
    "S-SPADE": [11.38, 13.71, 15.04, 15.62, 17.11, 19.28, 19.91],
    "CP, parabola-weighted l1": [9.95, 13.03, 14.77, 15.96, 17.44, 19.63, 21.00],
    "NMF": [5.10, 12.21, 14.27, 16.22, 18.00, 20.57, 21.96],
    "Janssen (AR)": [-0.95, -1.28, 0.62, 3.52, 7.87, 17.01, 19.57],
}


@dataclass
class MethodScores:
    """Per-level means over the files, and the time the restorations took."""

    name: str
    delta_sdr: dict[float, float] = field(default_factory=dict)
    delta_sdr_clipped: dict[float, float] = field(default_factory=dict)
    delta_si_sdr: dict[float, float] = field(default_factory=dict)
    per_file: dict[str, dict[float, float]] = field(default_factory=dict)
    wall_seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else float("inf")

    def as_dict(self) -> dict:
        def keyed(values: dict[float, float]) -> dict[str, float]:
            return {f"{level:g}": round(value, 3) for level, value in values.items()}

        return {
            "delta_sdr": keyed(self.delta_sdr) | {"mean": round(float(np.mean(list(self.delta_sdr.values()))), 3)},
            "delta_sdr_clipped": keyed(self.delta_sdr_clipped),
            "delta_si_sdr": keyed(self.delta_si_sdr),
            "per_file": {name: keyed(values) for name, values in self.per_file.items()},
            "wall_seconds": round(self.wall_seconds, 2),
            "audio_seconds": round(self.audio_seconds, 2),
            "real_time_factor": round(self.real_time_factor, 3),
        }


def read_excerpt(path: Path) -> tuple[torch.Tensor, int]:
    """``x`` ``(1, frames)`` as the protocol reads it (int16 / 32768), and its rate."""
    info = sf.info(path)
    if info.channels != 1 or info.subtype != "PCM_16":
        raise ConfigError(f"{path}: the protocol takes mono 16-bit PCM excerpts; got {info.channels} ch {info.subtype}")
    pcm, rate = sf.read(path, dtype="int16")
    return torch.from_numpy(pcm.astype(np.float64) / 32768)[None], rate


def excerpts(data: Path, files: int | None = None) -> list[Path]:
    found = sorted(data.glob("*.wav"))[:files]
    if not found:
        raise ConfigError(f"{data}: no .wav excerpts; point --data at the SQAM folder (see docs/benchmarks.md)")
    return found


def score(name: str, method, files: list[Path], levels: tuple[float, ...] = LEVELS) -> MethodScores:
    """Run ``method`` (anything :func:`declip.restore` takes as a model) on every file and level."""
    scores = MethodScores(name)
    sums: dict[str, dict[float, list[float]]] = {"sdr": {}, "clipped": {}, "si": {}}
    for file in files:
        x, rate = read_excerpt(file)
        scores.per_file[file.stem] = {}
        for level in levels:
            theta = float(threshold_for_sdr(x[None], level)[0])
            y = x.clamp(-theta, theta)
            start = time.perf_counter()
            x_hat, _ = restore_array(y.float(), rate, method, threshold=theta)
            scores.wall_seconds += time.perf_counter() - start
            scores.audio_seconds += x.shape[1] / rate
            x_hat = x_hat.double()
            mask = y.abs() >= theta * (1 - LEVEL_TOLERANCE)
            gain = float(delta_sdr(x, x_hat, y))
            scores.per_file[file.stem][level] = gain
            sums["sdr"].setdefault(level, []).append(gain)
            sums["clipped"].setdefault(level, []).append(float(delta_sdr(x, x_hat, y, mask)))
            sums["si"].setdefault(level, []).append(float(si_sdr(x_hat, x) - si_sdr(y, x)))
    scores.delta_sdr = {level: float(np.mean(v)) for level, v in sums["sdr"].items()}
    scores.delta_sdr_clipped = {level: float(np.mean(v)) for level, v in sums["clipped"].items()}
    scores.delta_si_sdr = {level: float(np.mean(v)) for level, v in sums["si"].items()}
    return scores


def markdown(results: list[MethodScores], levels: tuple[float, ...], files: int) -> str:
    """The table: published rows, then ours (ΔSDR overall / clipped only, ΔSI-SDR, speed)."""
    head = "| method | " + " | ".join(f"{level:g} dB" for level in levels) + " | mean | real-time factor |"
    lines = [
        f"Mean ΔSDR (dB) over {files} SQAM excerpts per input SDR. Ours: overall (clipped samples only; "
        "ΔSI-SDR in the second table).",
        "",
        head,
        "|---" * (len(levels) + 3) + "|",
    ]
    for name, row in PUBLISHED.items():
        cells = [f"{row[LEVELS.index(level)]:.2f}" if level in LEVELS else "–" for level in levels]
        mean = f"{np.mean(row):.2f}" if tuple(levels) == LEVELS else "–"
        lines.append(f"| {name} (published) | " + " | ".join(cells) + f" | {mean} | |")
    for r in results:
        cells = [f"{r.delta_sdr[level]:.2f} ({r.delta_sdr_clipped[level]:.2f})" for level in levels]
        mean = np.mean([r.delta_sdr[level] for level in levels])
        lines.append(f"| {r.name} | " + " | ".join(cells) + f" | {mean:.2f} | {r.real_time_factor:.2f}x |")
    lines += ["", "| method | " + " | ".join(f"ΔSI-SDR {level:g} dB" for level in levels) + " |"]
    lines.append("|---" * (len(levels) + 1) + "|")
    for r in results:
        lines.append(f"| {r.name} | " + " | ".join(f"{r.delta_si_sdr[level]:.2f}" for level in levels) + " |")
    return "\n".join(lines) + "\n"
