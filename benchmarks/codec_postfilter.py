"""Can a learned post-filter take a codec's own noise out of coded music, and can it learn that without clean audio?

    nice python benchmarks/codec_postfilter.py --music data/music --segments 400 --steps 1500

After lossy coding, a declipper that leaves the unclipped samples as coded cannot gain more than the codec's
noise allows (docs/results.md, "After Opus under light clipping"). This asks whether that noise can be removed.

Training pairs: ``--segments`` mono segments of ``--seconds`` from ``MUSIC/train`` (peak-normalised to 0.9, then
a random gain of 0.3 to 1), x, coded once, y1 = c(x), and twice, y2 = c(y1) (``--codec``, the bit rates of
benchmarks/coded_restore.py). Two post-filters of one design are trained: ``re-coding`` learns f(y2) -> y1 (no clean
audio: a recording that was coded can be coded again), ``clean`` learns f(y1) -> x (the bound with clean targets).
The design: a real gain on each bin of a 1024-point STFT, predicted from the log power of the nine frames around
it by a frame-rate convolutional network (1.1 M parameters), starting at gain 1 (the identity). LAME's level
change (0.95) is undone after decoding, so only the codec's noise is left.

Scored on the first ``--valid-tracks`` tracks of ``MUSIC/valid`` (``--eval-seconds`` from the middle, left channel,
peak 0.9), coded once: SDR(x, y1) and SDR(x, f(y1)), and on the re-coding task itself, SDR(y1, y2) and
SDR(y1, f(y2)). Mean over the tracks, with the smallest and largest gain. First, where the codec's error lies:
the shares of its energy, and of the signal's, in five bands, and each track's SDR over the whole band and above
20 Hz (``--steps 0`` prints these alone, in seconds).
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn

from declip.data.codecs import ENCODER_GAINS, code
from declip.physics import sdr

KBPS = {"mp3": 128, "opus": 96, "aac": 128}
N_FFT, HOP = 1024, 256


class BinGains(nn.Module):
    """A real gain per STFT bin from the log power of ``context`` frames around it; the identity at the start."""

    def __init__(self, hidden: int = 256, context: int = 5) -> None:
        super().__init__()
        bins = N_FFT // 2 + 1
        self.net = nn.Sequential(
            nn.Conv1d(bins, hidden, context, padding=context // 2),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, context, padding=context // 2),
            nn.GELU(),
            nn.Conv1d(hidden, bins, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.constant_(self.net[-1].bias, 4.0)
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.scale = 1 / torch.sigmoid(torch.tensor(4.0)).item()  # gains in (0, 1.02), 1 at the start

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # (batch, samples)
        spec = torch.stft(y, N_FFT, HOP, window=self.window, return_complex=True)
        gain = torch.sigmoid(self.net(torch.log(spec.abs() ** 2 + 1e-8))) * self.scale
        return torch.istft(spec * gain, N_FFT, HOP, window=self.window, length=y.shape[-1])


def _tracks(music: str, split: str) -> list[str]:
    files = sorted(glob.glob(f"{music}/{split}/*/mixture.flac"))
    if not files:
        raise SystemExit(
            f"{music}/{split}: no */mixture.flac; build a corpus with: declip data build music --out {music}"
        )
    return files


def _mono(path: str, start: int, length: int) -> np.ndarray:
    with sf.SoundFile(path) as f:
        f.seek(start)
        return f.read(length, dtype="float32", always_2d=True)[:, 0]


def _code(audio: np.ndarray, rate: int, codec: str) -> np.ndarray:
    return code(audio[:, None], rate, codec, KBPS[codec])[:, 0] / ENCODER_GAINS[codec]


def training_pairs(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    files = _tracks(args.music, "train")
    rate = sf.info(files[0]).samplerate
    length = round(args.seconds * rate)
    rng = np.random.default_rng(args.seed)
    xs, y1s, y2s, tries = [], [], [], 0
    while len(xs) < args.segments:
        tries += 1
        if tries > 20 * args.segments:
            raise SystemExit(f"{args.music}/train: too few segments above -40 dBFS; use shorter --seconds")
        path = files[rng.integers(len(files))]
        frames = sf.info(path).frames
        x = _mono(path, int(rng.integers(0, max(frames - length, 0) + 1)), length)
        if len(x) < length or np.sqrt(np.mean(x**2)) < 0.01:
            continue
        x = x * (0.9 / np.abs(x).max()) * float(rng.uniform(0.3, 1.0))
        y1 = _code(x, rate, args.codec)
        xs.append(x)
        y1s.append(y1)
        y2s.append(_code(y1, rate, args.codec))
    return np.stack(xs), np.stack(y1s), np.stack(y2s), rate


def train(inputs: np.ndarray, targets: np.ndarray, args) -> BinGains:
    torch.manual_seed(args.seed)
    inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
    crop = min(32768, inputs.shape[1])
    model = BinGains()
    optimiser = torch.optim.Adam(model.parameters(), args.lr)
    for _ in range(args.steps):
        items = torch.randint(len(inputs), (args.batch,))
        start = int(torch.randint(0, inputs.shape[1] - crop + 1, ()))
        a, b = inputs[items, start : start + crop], targets[items, start : start + crop]
        loss = ((model(a) - b) ** 2).mean() / (b**2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def validation_tracks(args) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(x, y1, y2)`` for each validation track: the middle ``--eval-seconds``, coded once and twice."""
    tracks = []
    for path in _tracks(args.music, "valid")[: args.valid_tracks]:
        info = sf.info(path)
        length = min(round(args.eval_seconds * info.samplerate), info.frames)
        x = _mono(path, (info.frames - length) // 2, length)
        x = x * (0.9 / max(np.abs(x).max(), 1e-6))
        y1 = _code(x, info.samplerate, args.codec)
        tracks.append((x, y1, _code(y1, info.samplerate, args.codec)))
    return tracks


def evaluate(model: BinGains | None, tracks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    scores: dict[str, list[float]] = {"once": [], "filtered": [], "twice": [], "filtered twice": []}
    for x, y1, y2 in tracks:
        with torch.no_grad():
            f1, f2 = (y if model is None else model(torch.from_numpy(y)[None])[0].numpy() for y in (y1, y2))
        pairs = {"once": (x, y1), "filtered": (x, f1), "twice": (y1, y2), "filtered twice": (y1, f2)}
        for key, (reference, estimate) in pairs.items():
            scores[key].append(float(sdr(torch.from_numpy(reference)[None], torch.from_numpy(estimate)[None])[0]))
    return {key: np.array(value) for key, value in scores.items()}


BANDS_HZ = (0, 20, 4000, 12000, 20000, None)


def error_bands(tracks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], rate: int) -> tuple[list[float], list[float]]:
    """The shares of the codec's error energy ``x - y1`` and of the signal's energy ``x`` in :data:`BANDS_HZ`."""
    error, signal = np.zeros(len(BANDS_HZ) - 1), np.zeros(len(BANDS_HZ) - 1)
    for x, y1, _ in tracks:
        frequencies = np.fft.rfftfreq(len(x), 1 / rate)
        for power, total in ((np.abs(np.fft.rfft(x - y1)) ** 2, error), (np.abs(np.fft.rfft(x)) ** 2, signal)):
            for band, (low, high) in enumerate(zip(BANDS_HZ[:-1], BANDS_HZ[1:])):
                total[band] += power[(frequencies >= low) & (frequencies < (high or np.inf))].sum()
    return list(error / error.sum()), list(signal / signal.sum())


def highpass(signal: np.ndarray, rate: int, cutoff: float) -> np.ndarray:
    """``signal`` with its spectrum below ``cutoff`` Hz set to zero (one FFT over the whole signal)."""
    spectrum = np.fft.rfft(signal.astype(np.float64))
    spectrum[np.fft.rfftfreq(len(signal), 1 / rate) < cutoff] = 0
    return np.fft.irfft(spectrum, len(signal))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--music", required=True, help="a corpus as `declip data build music` writes it")
    parser.add_argument("--codec", choices=sorted(KBPS), default="opus")
    parser.add_argument("--segments", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--valid-tracks", type=int, default=16)
    parser.add_argument("--eval-seconds", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.time()
    x, y1, y2, rate = training_pairs(args)
    print(f"{len(x)} training segments of {args.seconds} s coded once and twice ({args.codec}, "
          f"{KBPS[args.codec]} kbps): {time.time() - started:.0f} s")  # fmt: skip
    tracks = validation_tracks(args)
    names = [f"{low:g}-{high:g} Hz" if high else f"above {low:g} Hz" for low, high in zip(BANDS_HZ[:-1], BANDS_HZ[1:])]
    print(f"\n| share of the energy, validation tracks | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for name, shares in zip(("codec's error x - y1", "signal x"), error_bands(tracks, rate)):
        print(f"| {name} | " + " | ".join(f"{share:.3f}" for share in shares) + " |")
    print("\n| validation track | mean of x | SDR(x, y1) | the same above 20 Hz |\n|---|---|---|---|")
    for path, (clean, coded, _) in zip(_tracks(args.music, "valid"), tracks):
        above = [torch.from_numpy(highpass(v, rate, 20.0))[None] for v in (clean, coded)]
        whole = float(sdr(torch.from_numpy(clean)[None], torch.from_numpy(coded)[None])[0])
        print(f"| {path.split('/')[-2]} | {clean.mean():+.4f} | {whole:.2f} | {float(sdr(*above)[0]):.2f} |")
    print()
    rows = [("none (as coded)", None)]
    for name, (inputs, targets) in {"re-coding: f(y2) -> y1": (y2, y1), "clean: f(y1) -> x": (y1, x)}.items():
        started = time.time()
        rows.append((name, train(inputs, targets, args)))
        print(f"{name}: {args.steps} steps, {time.time() - started:.0f} s")
    print()
    print("| training | SDR(x, y1) | SDR(x, f(y1)) | gain | min | max | SDR(y1, y2) | SDR(y1, f(y2)) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model in rows:
        s = evaluate(model, tracks)
        gain = s["filtered"] - s["once"]
        cells = [s["once"].mean(), s["filtered"].mean(), gain.mean(), gain.min(), gain.max()]
        cells += [s["twice"].mean(), s["filtered twice"].mean()]
        print(
            f"| {name} | "
            + " | ".join(f"{v:.2f}" if i not in (2, 3, 4) else f"{v:+.2f}" for i, v in enumerate(cells))
            + " |"
        )


if __name__ == "__main__":
    main()
