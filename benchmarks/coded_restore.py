"""ΔSDR of a zoo model on clipped recordings that were then lossy-coded, beside the uncoded case.

    nice python benchmarks/coded_restore.py --music data/music --tracks 4 --sqam ../shared/benchmarks/sqam

Sets: the first ``--tracks`` tracks of ``MUSIC/test`` (``--split``; ``--seconds`` from the middle of each, left
channel) and the SQAM excerpts (mono, int16 / 32768; evaluation only). Each signal x is clipped at
θ for 1, 3, 5, 7, 10, 15, 20 dB input SDR (SDR(x, clip(x, θ)); or ``--levels``), then coded with MP3 128 kbps,
Opus 96 kbps (libsndfile: LAME, libopus at 48 kHz, resampled there and back) or AAC 128 kbps (FFmpeg's
encoder through PyAV, ``--codecs ... aac``), or left uncoded.

Arms, each scored as ΔSDR = SDR(r, x̂) - SDR(r, y) against r = g x, g the encoder's gain measured
with a sine (LAME scales by 0.95; 1 for Opus and uncoded):

- ``given``: the level is known. Uncoded: ``restore_array(threshold=θ)`` (the SQAM protocol).
  Coded: the learned masks at g θ (:class:`~declip.detection.coded_mask.LearnedMaskClipping`; the shipped
  network, or ``--masks WEIGHTS``, a ``.safetensors`` of another), or with
  ``--mask band`` the earlier tolerance band (samples beyond (1 - δ) g θ clipped, δ = ``--band``).
- ``detected``: nothing given; what ``declip restore`` does (plateaus, else the coded estimate;
  nothing found: the input comes back unchanged, ΔSDR 0).
- with ``--true-masks``: ``true masks``, the given arm with the samples that were clipped before coding
  as the mask (what a perfect mask would give), and ``cap``, those samples set to g x and every other
  sample as coded (what a perfect declipper could reach under the codec's noise; coded rows only).

With ``--highpass HZ`` every score (and the input SDR) is taken on the signals with their spectrum below HZ removed
(the reference, the estimate and the input alike; the model still restores the whole band). Opus removes what lies
below about 20 Hz, offsets included, so a reference holding much of it caps every ΔSDR after Opus. With
``--oracle-baseline`` as well, the coded input gets back what coding took from the clipped signal below HZ before it
is restored, and each output loses it again (an oracle: it puts the clipped plateaus back on the level).
``--estimated-baseline WINDOW`` does the same with an estimate from the coded input alone, for every input and both
arms: the midpoint of each WINDOW-sample window's largest and smallest sample, kept below 20 Hz
(:func:`~declip.detection.baseline.estimate_baseline`), taken out of the coded input before restoring and added back
to each output. Coded rows only. (Detection itself, in the ``detected`` arm, takes it out, with a window of 2048, only
where the coded input as it is shows nothing.)

``--arms given`` or ``--arms detected`` scores that arm alone (each arm restores every input once; uncoded,
``--true-masks`` still restores the given arm, which it equals there); ``--per-item``
adds, under each codec's rows, one row per signal for each arm scored (ΔSDR per level and its mean), to see which
item a change moves.

``--override NAME=VALUE`` (repeatable; VALUE read as YAML) rebuilds the model's backbone with that constructor setting
changed and the same weights (:func:`~declip.inference.overrides.overridden`; ``--override heavy_share=null``), as
``heldout_eval.py`` does. ``--choose NAME=VALUE`` (repeatable) lets re-clipping pick, per signal, that setting or the
model's own in the detected arm, as ``declip restore --choose`` does (:mod:`declip.inference.choice`); a row counts
how often it picked another.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from declip.data.codecs import code
from declip.detection.baseline import estimate_baseline
from declip.detection.coded_mask import ClipMaskNet, LearnedMaskClipping, load_mask_net
from declip.detection.measurement import Measurement
from declip.errors import ConfigError
from declip.inference.analysis import restore_measured
from declip.inference.overrides import alternatives, overridden, parse_overrides
from declip.inference.restore import AS_LOADED, restore_array
from declip.metrics import DEFAULT_LEVELS, delta_sdr
from declip.physics import ClipMasks, Clipping, sdr, threshold_for_sdr
from declip.zoo import load_model

LEVELS = [int(v) for v in DEFAULT_LEVELS]  # input SDRs (dB), as the tables print them
KBPS = {"mp3": 128, "opus": 96, "aac": 128}


def codec_gain(codec: str, rate: int = 44100) -> float:
    if codec == "none":
        return 1.0
    t = np.arange(rate * 2) / rate
    sine = (0.5 * np.sin(2 * np.pi * 997 * t))[:, None].astype(np.float32)
    return float(np.abs(code(sine, rate, codec, KBPS[codec])[rate // 2 : -rate // 2]).max() / 0.5)


def signals(args) -> dict[str, list[tuple[str, np.ndarray, int]]]:
    sets = {}
    music_files = sorted(glob.glob(f"{args.music}/{args.split}/*/mixture.flac"))
    tracks = music_files[: args.tracks] if "music" in args.sets else []
    music = []
    for file in tracks:
        info = sf.info(file)
        start = max(info.frames // 2 - int(args.seconds * info.samplerate / 2), 0)
        x, rate = sf.read(
            file, dtype="float32", always_2d=True, start=start, frames=int(args.seconds * info.samplerate)
        )
        music.append((Path(file).parent.name, x[:, :1].copy(), rate))
    sets["music"] = music
    sqam = []
    for file in sorted(Path(args.sqam).glob("*.wav")):
        pcm, rate = sf.read(file, dtype="int16", always_2d=True)
        sqam.append((file.stem, (pcm[:, :1] / 32768).astype(np.float32), rate))
    sets["sqam"] = sqam
    return sets


class BandClipping(Clipping):
    """The earlier coded measurement: every sample beyond the band's edge clipped, the input clipped there."""

    def network_input(self, y, masks=None):
        return self(y)

    def to(self, device):
        return BandClipping(self.high.to(device), self.low.to(device))


def given_physics(level: float, mask: str, band: float, net: ClipMaskNet | None = None) -> Clipping:
    if mask == "band":
        return BandClipping(torch.full((1, 1), (1 - band) * level))
    both = torch.ones(1, 2, dtype=torch.bool)
    return LearnedMaskClipping(torch.full((1, 1), level), torch.full((1, 1), -level), both, net)


class TrueMaskClipping(LearnedMaskClipping):
    """The coded measurement with the samples that were clipped before coding as its mask (``--true-masks``)."""

    def __init__(self, level: float, truth: torch.Tensor) -> None:
        super().__init__(torch.full((1, 1), level), torch.full((1, 1), -level), torch.ones(1, 2, dtype=torch.bool))
        self.truth = truth

    def masks(self, y: torch.Tensor) -> ClipMasks:
        return ClipMasks(high=self.truth & (y > 0), low=self.truth & (y < 0))


def highpass(signal: torch.Tensor, rate: int, cutoff: float) -> torch.Tensor:
    """``signal`` with its spectrum below ``cutoff`` Hz set to zero (the whole signal as one FFT); as it is at 0."""
    if cutoff <= 0:
        return signal
    spectrum = torch.fft.rfft(signal.double(), dim=-1)
    spectrum[..., torch.fft.rfftfreq(signal.shape[-1], 1 / rate) < cutoff] = 0
    return torch.fft.irfft(spectrum, signal.shape[-1], dim=-1).to(signal.dtype)


def score(model, x: np.ndarray, rate: int, level: float, codec: str, gain: float, args) -> dict[str, float]:
    def delta(estimate: torch.Tensor) -> float:  # scored above --highpass: ΔSDR of the filtered signals
        return float(delta_sdr(*(highpass(v, rate, args.highpass)[None] for v in (reference, estimate, yt))))

    xt = torch.from_numpy(x.T.copy())
    theta = float(threshold_for_sdr(xt[None], level))
    clipped = np.clip(x, -theta, theta)
    y = clipped if codec == "none" else code(clipped, rate, codec, KBPS[codec])
    yt, reference = torch.from_numpy(y.T.copy()), gain * xt
    base = float(sdr(*(highpass(v, rate, args.highpass)[None] for v in (reference, yt))))
    restored_from = yt  # the model's input; its outputs lose again what was added to it (see above)
    if args.oracle_baseline and codec != "none":
        lost = torch.from_numpy(clipped.T.copy()) * gain - yt
        restored_from = yt + (lost - highpass(lost, rate, args.highpass))
    if args.estimated_baseline and codec != "none":
        restored_from = estimate_baseline([yt], rate, args.estimated_baseline).removed(yt)
    added = restored_from - yt
    scores = {"input": base}
    if "given" in args.arms or (args.true_masks and codec == "none"):  # uncoded, the true masks are the given arm's
        if codec == "none":
            given, _ = restore_array(yt, rate, model, threshold=theta)
        else:
            physics = given_physics(gain * theta, args.mask, args.band, args.net)
            measurement = Measurement(physics, True, ("hard-coded",), (1.0,))
            given = restore_measured(restored_from, rate, model, measurement) - added
        scores["given"] = delta(given)
    if "detected" in args.arms:
        detected, report = restore_array(restored_from, rate, model, alternatives=args.alternatives)
        scores |= {"detected": delta(detected - added), "found": float(report.clipped)}
        if args.alternatives:
            scores["chose another"] = float(report.choice is not None and report.choice.name != AS_LOADED)
    if args.true_masks:
        truth = xt.abs() >= theta
        if codec == "none":
            true = given
        else:
            truly = Measurement(TrueMaskClipping(gain * theta, truth), True, ("hard-coded",), (1.0,))
            true = restore_measured(restored_from, rate, model, truly) - added
        scores["true masks"] = delta(true)
        if codec != "none":
            scores["cap"] = delta(torch.where(truth, reference, yt))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--music", default="data/music")
    parser.add_argument("--split", default="test", help="the music corpus's split (valid: to choose designs on)")
    parser.add_argument("--tracks", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sqam", default="../shared/benchmarks/sqam")
    parser.add_argument("--model", default="unet-music-reclip")
    parser.add_argument("--mask", choices=["learned", "band"], default="learned", help="the given arm's coded masks")
    parser.add_argument("--masks", help="the given arm's mask network weights (.safetensors; default: the shipped)")
    parser.add_argument("--band", type=float, default=0.03, help="δ of the tolerance band (--mask band)")
    parser.add_argument("--codecs", nargs="+", default=["none", "mp3", "opus"])
    parser.add_argument("--true-masks", action="store_true", help="add the true-mask and cap arms (see above)")
    parser.add_argument("--arms", nargs="+", choices=["given", "detected"], default=["given", "detected"])
    parser.add_argument("--per-item", action="store_true", help="a row per signal under each codec's rows")
    parser.add_argument("--sets", nargs="+", default=["music", "sqam"], choices=["music", "sqam"])
    parser.add_argument("--levels", type=int, nargs="+", default=LEVELS, help="input SDRs (dB); default: all seven")
    parser.add_argument(
        "--highpass", type=float, default=0.0, help="score above this many Hz only (see above; default: the whole band)"
    )
    parser.add_argument("--oracle-baseline", action="store_true", help="see above; needs --highpass")
    parser.add_argument("--estimated-baseline", type=int, default=0, metavar="WINDOW", help="see above (samples)")
    parser.add_argument("--override", action="append", default=[], help="NAME=VALUE: a --model backbone setting")
    parser.add_argument(
        "--choose", action="append", default=[], help="NAME=VALUE: a setting re-clipping may pick (detected arm)"
    )
    args = parser.parse_args()
    if args.choose and "detected" not in args.arms:
        parser.error("--choose acts in the detected arm (as declip restore --choose): add --arms detected")
    if args.oracle_baseline and args.estimated_baseline:
        parser.error("--oracle-baseline and --estimated-baseline each set the model's input: give one")
    if args.oracle_baseline and args.highpass <= 0:
        parser.error("--oracle-baseline puts back what lies below --highpass: give --highpass HZ")
    if args.masks and args.mask == "band":
        parser.error("--masks gives the learned masks' network; --mask band uses none")
    model = load_model(args.model, precision="fp32")
    try:
        overrides = parse_overrides(args.override)
        model = overridden(model, overrides) if overrides else model
    except ConfigError as error:
        parser.error(f"--override {error}")
    try:
        choices = [parse_overrides([pair]) for pair in args.choose]
        args.alternatives = alternatives(lambda: load_model(args.model, precision="fp32"), overrides, choices) or None
    except ConfigError as error:
        parser.error(f"--choose {error}")
    args.net = load_mask_net(args.masks) if args.masks else None
    gains = {codec: codec_gain(codec) for codec in args.codecs}
    masks = f"band δ {args.band}" if args.mask == "band" else f"learned masks ({args.masks or 'shipped'})"
    scored = f", scored above {args.highpass:g} Hz" if args.highpass > 0 else ""
    label = "".join(f", {k}={v}" for k, v in overrides.items())  # as heldout_eval.py labels its rows
    label += f", or {' or '.join(args.alternatives)} as re-clipping chooses (detected arm)" if args.alternatives else ""
    print(f"model {args.model}{label}, given arm: {masks}, encoder gains {gains}{scored}")
    start = time.time()
    for name, items in signals(args).items():
        if name not in args.sets:
            continue
        print(f"\n{name}: {len(items)} signals ({', '.join(n for n, _, _ in items)})")
        print("| codec | arm | " + " | ".join(f"{v} dB" for v in args.levels) + " | mean |")
        print("|---" * (len(args.levels) + 3) + "|")
        for codec in args.codecs:
            arms = (*args.arms, *(("true masks", "cap") if args.true_masks else ()))
            arms = arms[:-1] if codec == "none" and args.true_masks else arms  # uncoded, the cap is the signal itself
            found = ("found",) if "detected" in args.arms else ()
            found += ("chose another",) if args.alternatives else ()
            per_level = [[score(model, x, rate, level, codec, gains[codec], args) for _, x, rate in items]
                         for level in args.levels]  # fmt: skip
            rows = {key: [float(np.mean([s[key] for s in scores])) for scores in per_level]
                    for key in (*arms, *found, "input")}  # fmt: skip
            for arm in arms:
                cells = " | ".join(f"{v:.2f}" for v in rows[arm])
                print(f"| {codec} | {arm} | {cells} | {np.mean(rows[arm]):.2f} |")
            for key in found:
                share = "share found" if key == "found" else "share choosing another setting"
                print(f"| {codec} | {share} | " + " | ".join(f"{v:.2f}" for v in rows[key]) + " | |")
            print(f"| {codec} | input SDR | " + " | ".join(f"{v:.2f}" for v in rows["input"]) + " | |", flush=True)
            for index, (item, _, _) in enumerate(items if args.per_item else ()):
                for arm in arms:
                    values = [scores[index][arm] for scores in per_level]
                    cells = " | ".join(f"{v:.2f}" for v in values)
                    print(f"| {codec} | {arm}: {item} | {cells} | {np.mean(values):.2f} |", flush=True)
    print(f"({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
