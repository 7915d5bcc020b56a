"""``declip data build solo``: each chosen stem of a rendered stems corpus as a track of its own.

A validation set of single lines (one instrument, one note at a time), as most of SQAM's excerpts are,
which the chorales' four-part mixtures are not. Tracks keep the split of the piece they come from, so
nothing moves between training and held-out data.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import soundfile as sf

from declip.data.build.tree import complete, read_manifest, safe_name, start_manifest, write_manifest
from declip.errors import ConfigError

log = logging.getLogger(__name__)


def build_solo(out: str | Path, source: str | Path, stems: Sequence[str] = ("soprano", "bass")) -> dict:
    """Copy ``source/<split>/<piece>/<stem>.flac`` for each stem of ``stems`` to
    ``out/<split>/<piece>-<stem>/mixture.flac`` and write ``out/manifest.json``.

    ``source`` is a finished ``declip data build stems`` corpus. A piece without one of the stems (its score names
    the part otherwise) is skipped for that stem, with a warning; a stem no piece has stops the build before
    anything is written. Idempotent, like the other builders."""
    out, source = Path(out), Path(source)
    if not stems:
        raise ConfigError("declip data build solo needs at least one stem (--stems soprano,bass)")
    origin = read_manifest(source)
    if origin is None or not origin.get("finished") or origin.get("settings", {}).get("kind") != "stems":
        raise ConfigError(
            f"{source} is not a finished stems corpus (no finished manifest.json of kind 'stems'); "
            f"build it first: declip data build stems --out {source}"
        )
    wanted, skipped = [], []
    for track in origin["tracks"]:
        names = {Path(f).stem for f in track["files"]} - {"mixture"}
        wanted += [(track, stem) for stem in stems if stem in names]
        skipped += [f"{track['name']}/{stem}" for stem in stems if stem not in names]
    missing = [stem for stem in stems if all(stem != chosen for _, chosen in wanted)]
    if missing:
        found = sorted({Path(f).stem for t in origin["tracks"] for f in t["files"]} - {"mixture"})
        raise ConfigError(
            f"{source}: no piece has the stem {missing[0]!r} (its stems: {', '.join(found)}); choose --stems among them"
        )
    if skipped:  # scores name their parts: a few pieces lack a voice (a chorale with 'soprano_oboe_1' for 'soprano')
        log.warning("%d piece stems not in %s, skipped: %s", len(skipped), source, ", ".join(skipped))
    settings = {"kind": "solo", "stems": list(stems), "source": origin["settings"]}
    manifest = read_manifest(out)
    if complete(out, manifest, settings):
        log.info("%s is up to date (%d tracks)", out, len(manifest["tracks"]))
        return manifest
    start_manifest(out, settings)
    tracks = []
    for track, stem in wanted:
        name = safe_name(f"{track['name']}-{stem}")
        file = f"{track['split']}/{name}/mixture.flac"
        target = out / file
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source / track["split"] / track["name"] / f"{stem}.flac", tmp)
            os.replace(tmp, target)  # a crash never leaves half a file
        tracks.append({
            "name": name, "split": track["split"], "files": [file], "stem": stem,
            "source": f"{track['name']}/{stem}.flac of {source}", "license": track.get("license"),
            "seconds": round(sf.info(str(target)).duration, 3),
        })  # fmt: skip
    manifest = {
        "settings": settings, "finished": True, "sample_rate": origin.get("sample_rate"),
        "channels": origin.get("channels"), "tracks": tracks,
    }  # fmt: skip
    write_manifest(out, manifest)
    return manifest
