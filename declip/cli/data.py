"""``declip data build music|stems|solo --out DIR``: build training corpora; ``declip data pack ROOT --out URI``:
pack one for streaming."""

from __future__ import annotations

import argparse
import logging

from declip.data.build import DEBIAN_MUSIC, build_music, build_solo, build_stems
from declip.errors import ConfigError


def _split(text: str) -> tuple[float, float, float]:
    parts = tuple(float(v) for v in text.split(","))
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give three fractions: train,valid,test (e.g. 0.8,0.1,0.1)")
    return parts


def run_data(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="declip data", description="Build training corpora.")
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="build a corpus")
    pack = actions.add_parser("pack", help="pack a corpus into chunks for streaming (declip.data.StreamingCorpus)")
    pack.add_argument("root", help="a MUSDB-like tree (with train/) or a folder of audio files")
    pack.add_argument("--out", required=True, help="folder or s3://bucket/prefix (endpoint, keys: AWS_* variables)")
    pack.add_argument("--piece-seconds", type=float, default=4.0, help="length of the pieces an epoch visits once each")
    pack.add_argument("--pieces-per-chunk", type=int, default=64, help="pieces in each chunk (the unit of download)")
    pack.add_argument("--split", type=_split, default=(0.8, 0.1, 0.1), help="train,valid,test (folders)")
    pack.add_argument("--seed", type=int, default=0)
    kinds = build.add_subparsers(dest="kind", required=True)
    music = kinds.add_parser("music", help="real music from Debian game-music packages (MUSDB-like, FLAC)")
    music.add_argument("--packages", nargs="+", default=list(DEBIAN_MUSIC), help="Debian packages to take music from")
    music.add_argument("--split", type=_split, default=(0.8, 0.1, 0.1), help="train,valid,test fractions by track")
    stems = kinds.add_parser("stems", help="multi-stem tracks rendered from MIDI (music21 corpus, FluidSynth)")
    stems.add_argument("--pieces", type=int, default=8, help="number of pieces to render")
    stems.add_argument("--measures", type=int, default=None, help="render only the first bars of each piece")
    stems.add_argument("--split", type=_split, default=(0.75, 0.125, 0.125), help="train,valid,test fractions")
    solo = kinds.add_parser("solo", help="each chosen stem of a stems corpus as a track of its own (solo lines)")
    solo.add_argument("--from", dest="source", required=True, help="a corpus built by declip data build stems")
    solo.add_argument("--stems", default="soprano,bass", help="comma-separated stem names (default soprano,bass)")
    for sub in (music, stems, solo):
        sub.add_argument("--out", required=True, help="output folder (a MUSDB-like tree)")
    for sub in (music, stems):
        sub.add_argument("--sample-rate", type=int, default=44100)
        sub.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if ns.action == "pack":
        return _pack(ns)
    if ns.kind == "music":
        manifest = build_music(ns.out, ns.packages, ns.sample_rate, ns.split, ns.seed)
    elif ns.kind == "solo":
        names = list(dict.fromkeys(s.strip() for s in ns.stems.split(",") if s.strip()))  # order kept, repeats once
        manifest = build_solo(ns.out, ns.source, names)
    else:
        manifest = build_stems(ns.out, ns.pieces, ns.measures, ns.sample_rate, ns.split, ns.seed)
    hours = sum(t["seconds"] for t in manifest["tracks"]) / 3600
    counts = {s: sum(t["split"] == s for t in manifest["tracks"]) for s in ("train", "valid", "test")}
    print(f"{ns.out}: {len(manifest['tracks'])} tracks, {hours:.2f} h (train {counts['train']}, "
          f"valid {counts['valid']}, test {counts['test']}); manifest in {ns.out}/manifest.json")  # fmt: skip
    return 0


def _pack(ns: argparse.Namespace) -> int:
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "litdata"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        from declip.data.pack import pack_corpus
    except ImportError as error:
        raise ConfigError(f"declip data pack needs litdata ({error}): pip install 'declip[stream]'") from error

    summary = pack_corpus(ns.root, ns.out, ns.piece_seconds, ns.pieces_per_chunk, ns.split, ns.seed)
    counts = ", ".join(
        f"{name} {len(s['tracks'])} tracks/{s['pieces']} pieces" for name, s in summary["splits"].items()
    )
    print(f"{ns.out}: packed ({counts}); train with class_path declip.data.StreamingCorpus, uri {ns.out}")
    return 0
