"""Cut a MUSDB-like corpus down to a few minutes that travel with a working tree to a rented GPU.

    python benchmarks/gpu_corpus.py --root data/music --out gpu-data --tracks 40 --seconds 45 --max-mib 60

Takes the middle ``--seconds`` of the first ``--tracks`` train tracks (and a quarter as many valid
tracks), downmixed to mono 16-bit FLAC at the source rate, into ``OUT/train|valid/<track>/mixture.flac``,
and stops before the folder would exceed ``--max-mib``. Only the train and valid splits are copied:
held-out tracks stay held out. Prints a line per split: tracks, minutes, MiB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile as sf


def cut(root: Path, out: Path, tracks: int, seconds: float, max_bytes: int) -> dict[str, tuple[int, float]]:
    used, summary = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()), {}
    for split, count in (("train", tracks), ("valid", max(1, tracks // 4))):
        done, minutes = 0, 0.0
        for track in sorted(p for p in (root / split).iterdir() if (p / "mixture.flac").is_file())[:count]:
            target = out / split / track.name / "mixture.flac"
            if not target.is_file():
                info = sf.info(track / "mixture.flac")
                length = min(int(seconds * info.samplerate), info.frames)
                start = (info.frames - length) // 2
                audio, rate = sf.read(track / "mixture.flac", start=start, frames=length, dtype="float32")
                mono = audio.mean(1) if audio.ndim == 2 else audio
                target.parent.mkdir(parents=True, exist_ok=True)
                sf.write(target, mono, rate, subtype="PCM_16")
                if used + target.stat().st_size > max_bytes:
                    target.unlink()
                    target.parent.rmdir()
                    break
                used += target.stat().st_size
            done += 1
            minutes += sf.info(target).duration / 60
        summary[split] = (done, minutes)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("data/music"))
    parser.add_argument("--out", type=Path, default=Path("gpu-data"))
    parser.add_argument("--tracks", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--max-mib", type=float, default=60.0)
    args = parser.parse_args()
    summary = cut(args.root, args.out, args.tracks, args.seconds, int(args.max_mib * 2**20))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file()) / 2**20
    for split, (count, minutes) in summary.items():
        print(f"{split}: {count} tracks, {minutes:.1f} min")
    print(f"total: {size:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
