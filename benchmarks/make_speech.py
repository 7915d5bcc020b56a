"""A small speech set for the cross-domain adaptation benchmark, synthesised offline with Flite.

    sudo apt-get install flite
    python benchmarks/make_speech.py --out data/speech [--files 16] [--words 70]

Reads the GNU GPL v3 text that Debian ships (``/usr/share/common-licenses/GPL-3``), cuts it into
passages of about ``--words`` words, and speaks passage ``i`` with Flite voice ``i mod 4`` (slt,
rms, awb, kal16: two American, one Scottish, one diphone voice) into ``OUT/NN-VOICE.wav``
(16-bit mono, 16 kHz). No passage is spoken twice, so files are disjoint in text.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

VOICES = ("slt", "rms", "awb", "kal16")
TEXT = Path("/usr/share/common-licenses/GPL-3")


def passages(words: int) -> list[str]:
    text = TEXT.read_text().split("TERMS AND CONDITIONS", 1)[-1]
    tokens = re.sub(r"[^A-Za-z0-9,.;:'\- ]+", " ", text).split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens) - words, words)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--words", type=int, default=70)
    args = parser.parse_args()
    if shutil.which("flite") is None:
        raise SystemExit("make_speech: flite is not installed; run `sudo apt-get install flite`")
    if not TEXT.is_file():
        raise SystemExit(f"make_speech: {TEXT} is missing; install the base-files package")
    args.out.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(passages(args.words)[: args.files]):
        voice = VOICES[i % len(VOICES)]
        target = args.out / f"{i:02d}-{voice}.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(target)], check=True)
        print(target, flush=True)


if __name__ == "__main__":
    main()
