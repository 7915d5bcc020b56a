"""``pack_corpus``: a MUSDB-like tree or a folder of audio as a litdata optimized dataset, locally or
on ``s3://bucket/prefix``, for :class:`~declip.data.StreamingCorpus`.

Layout: ``<out>/<split>/`` holds litdata chunks of pieces (a few seconds of a track each, FLAC bytes)
and their ``index.json``; ``<out>/declip-pack.json`` records the tracks of each split (the corpus's
own track-level split), the piece counts and a fingerprint of the plan. Each chunk is written and
uploaded once, and ``<split>/declip-progress.json`` records it, so an interrupted run resumes at the
next chunk and a finished one does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from litdata.streaming.writer import BinaryWriter
from rich.progress import Progress

from declip.data.corpus import Corpus, FolderCorpus, MusdbCorpus, Track
from declip.data.object_store import Location
from declip.data.pieces import SUMMARY, cut_pieces, encode_piece, is_silent
from declip.data.splits import SPLITS
from declip.errors import ConfigError

log = logging.getLogger(__name__)

PROGRESS = "declip-progress.json"
FORMAT = 1


def corpus_at(root: str, split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Corpus:
    """A MUSDB-like tree (``root/train/``) as :class:`MusdbCorpus`, any other folder as :class:`FolderCorpus`."""
    path = Path(root)
    if not path.exists():
        raise ConfigError(f"{root}: no such folder; give a MUSDB-like tree or a folder of audio to pack")
    if (path / "train").is_dir():
        return MusdbCorpus(str(path), seed=seed)
    return FolderCorpus([str(path)], split=tuple(split), seed=seed)


def _read_track(track: Track) -> np.ndarray:
    """The whole mixture (or sum of stems) of ``track``, ``(frames, channels)`` float32."""
    stems = [track.stems["mixture"]] if "mixture" in track.stems else list(track.stems.values())
    frames = min(info.frames for info in stems)
    total = None
    for info in stems:
        with info.source.open() as f:
            data = f.read(frames, dtype="float32", always_2d=True)
        total = data if total is None else total[: len(data)] + data[: len(total)]
    return total


def _plan(tracks: dict[str, list[Track]], piece_seconds: float, pieces_per_chunk: int) -> tuple[dict, str]:
    plan = {
        split: [
            (t.name, start, frames)
            for t in tracks[split]
            for start, frames in cut_pieces(min(i.frames for i in t.stems.values()), _rate(t), piece_seconds)
        ]
        for split in SPLITS
    }
    text = json.dumps([FORMAT, piece_seconds, pieces_per_chunk, plan], sort_keys=True)
    return plan, hashlib.sha256(text.encode()).hexdigest()[:16]


def _rate(track: Track) -> int:
    return next(iter(track.stems.values())).sample_rate


def pack_corpus(
    root: str,
    out: str,
    piece_seconds: float = 4.0,
    pieces_per_chunk: int = 64,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Pack the corpus at ``root`` into ``out`` (a folder or ``s3://bucket/prefix``); returns the summary
    written to ``out/declip-pack.json``. Pieces quieter than -60 dBFS are left out; a track that fails
    to decode is skipped with a warning."""
    if piece_seconds <= 0 or pieces_per_chunk < 1:
        raise ConfigError("piece_seconds must be positive and pieces_per_chunk at least 1")
    corpus = corpus_at(root, split, seed)
    tracks = corpus.load()
    plan, fingerprint = _plan(tracks, piece_seconds, pieces_per_chunk)
    dest = Location(out)
    done = dest.read_json(SUMMARY)
    if done is not None:
        if done.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"{dest.url(SUMMARY)}: {out} already holds another pack (other tracks or settings); "
                "pack into another --out, or delete it to pack again"
            )
        log.info("%s is already packed; nothing to do", out)
        return done
    by_name = {t.name: t for split_tracks in tracks.values() for t in split_tracks}
    summary = {"format": FORMAT, "fingerprint": fingerprint, "piece_seconds": piece_seconds, "splits": {}}
    with Progress(disable=not progress) as bar:
        for name in SPLITS:
            task = bar.add_task(f"packing {name}", total=len(plan[name]))
            summary["splits"][name] = _pack_split(
                dest, name, plan[name], by_name, fingerprint, pieces_per_chunk, lambda n, t=task: bar.advance(t, n)
            )
            summary["splits"][name]["tracks"] = [t.name for t in tracks[name]]
    dest.write_json(SUMMARY, summary)
    return summary


def _pack_split(dest, split, plan, by_name, fingerprint, pieces_per_chunk, advance) -> dict:
    """Write the chunks of one split that are not written yet, then its ``index.json``."""
    state = dest.read_json(f"{split}/{PROGRESS}")
    if state is None or state.get("fingerprint") != fingerprint:
        state = {"fingerprint": fingerprint, "groups_done": 0, "chunks": [], "config": None, "silent": 0, "failed": []}
    groups = [plan[i : i + pieces_per_chunk] for i in range(0, len(plan), pieces_per_chunk)]
    numbers = {name: n for n, name in enumerate(dict.fromkeys(name for name, _, _ in plan))}
    advance(sum(len(g) for g in groups[: state["groups_done"]]))
    audio: tuple[str, np.ndarray | None] = ("", None)
    with tempfile.TemporaryDirectory(prefix="declip-pack-") as stage:
        for g in range(state["groups_done"], len(groups)):
            writer = BinaryWriter(stage, chunk_size=pieces_per_chunk, chunk_index=g)
            items = 0
            for name, start, frames in groups[g]:
                if audio[0] != name:
                    audio = (name, _read_or_skip(by_name[name], state))
                if audio[1] is not None:
                    x = audio[1][start : start + frames]
                    if is_silent(x):
                        state["silent"] += 1
                    else:
                        flac, scale = encode_piece(x, _rate(by_name[name]))
                        # the track by its number in the split: litdata would read a name like a.wav as a file
                        item = {"track": numbers[name], "start": start, "rate": _rate(by_name[name]), "scale": scale}
                        writer.add_item(items, {**item, "flac": flac})
                        items += 1
                advance(1)
            if items:
                writer.done()
                index = json.loads((Path(stage) / "0.index.json").read_text())
                (Path(stage) / "0.index.json").unlink()
                for chunk in index["chunks"]:
                    dest.put_file(Path(stage) / chunk["filename"], f"{split}/{chunk['filename']}")
                state["chunks"] += index["chunks"]
                state["config"] = index["config"]
            state["groups_done"] = g + 1
            dest.write_json(f"{split}/{PROGRESS}", state)
    if state["chunks"]:
        dest.write_json(f"{split}/index.json", {"chunks": state["chunks"], "config": state["config"]})
    pieces = sum(c["chunk_size"] for c in state["chunks"])
    return {"pieces": pieces, "silent_pieces": state["silent"], "failed_tracks": sorted(set(state["failed"]))}


def _read_or_skip(track: Track, state: dict) -> np.ndarray | None:
    try:
        return _read_track(track)
    except (RuntimeError, OSError) as error:
        log.warning("skipping %s: failed to decode (%s)", track.name, error)
        state["failed"].append(track.name)
        return None
