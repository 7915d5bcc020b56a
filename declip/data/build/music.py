"""``declip data build music``: a MUSDB-like tree of real produced music from Debian game-music packages."""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import soundfile as sf
from rich.progress import track as progress

from declip.data.audio_files import AudioSource, find_audio
from declip.data.build.tree import (
    complete,
    ensure_debian_packages,
    headroom,
    read_manifest,
    safe_name,
    start_manifest,
    to_rate_and_stereo,
    write_flac,
    write_manifest,
)
from declip.data.splits import split_tracks

log = logging.getLogger(__name__)

DOC_ROOT = Path("/usr/share/doc")
DEBIAN_MUSIC = {
    "wesnoth-1.16-music": "wesnoth",
    "ufoai-music": "ufoai",
    "warzone2100-music": "warzone2100",
    "nexuiz-music": "nexuiz",
}


def package_audio(package: str) -> list[AudioSource]:
    """Audio files and zip-archive members installed by a Debian package, sorted."""
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
    files = sorted(p for p in listing.splitlines() if os.path.isfile(p))
    return find_audio(files) if files else []


def package_license(package: str, name: str) -> str:
    """The license the package's copyright file states for ``name`` (DEP-5 ``Files:`` stanzas, the last
    match wins), or the first license it names, or a pointer to the file."""
    path = DOC_ROOT / package / "copyright"
    if not path.exists():
        return "unknown (no copyright file)"
    text = path.read_text(errors="replace")
    found, first = None, None
    for stanza in text.split("\n\n"):
        fields = _fields(stanza)
        license_name = fields.get("license", [""])[0] or None
        first = first or license_name
        patterns = fields.get("files", [])
        if license_name and any(_matches(name, p) for line in patterns for p in line.split()):
            found = license_name
    return found or first or _license_in_prose(text) or f"see {path}"


def _fields(stanza: str) -> dict[str, list[str]]:
    """A DEP-5 stanza as ``{field: [first line, continuation lines...]}`` with lower-case field names."""
    fields: dict[str, list[str]] = {}
    key = None
    for line in stanza.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key].append(line.strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = [value.strip()]
    return fields


def _matches(name: str, pattern: str) -> bool:
    """DEP-5 patterns are paths in the source tree; compare their last components with the installed path."""
    if pattern == "*":
        return True
    parts, pattern_parts = name.strip("/").split("/"), pattern.strip("/").split("/")
    k = min(len(parts), len(pattern_parts))
    return fnmatch.fnmatch("/".join(parts[-k:]), "/".join(pattern_parts[-k:]))


def _license_in_prose(text: str) -> str | None:
    """For copyright files that are not DEP-5: the common license they point to (GPL-2, GPL-2+ ...)."""
    match = re.search(r"/usr/share/common-licenses/([A-Za-z0-9.+-]+)", text)
    if not match:
        return None
    name = match.group(1).rstrip(".")
    later = "any later version" in text and not name.endswith("+")
    return f"{name}{'+' if later else ''} (as stated in the package's copyright file)"


def _track_names(sources: list[AudioSource], short: str) -> dict[str, AudioSource]:
    """Unique, stable folder names: the package's short name and the path below the common folder."""
    paths = [f"{s.path}/{s.member}" if s.member else s.path for s in sources]
    root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    return {safe_name(f"{short}-{os.path.splitext(os.path.relpath(p, root))[0]}"): s for p, s in zip(paths, sources)}


def build_music(
    out: str | Path,
    packages: Sequence[str] = tuple(DEBIAN_MUSIC),
    sample_rate: int = 44100,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict:
    """Write ``out/{train,valid,test}/<track>/mixture.flac`` (stereo, ``sample_rate``, 24-bit) and
    ``out/manifest.json`` (split, source package and file, license, duration). Deterministic and
    idempotent: a finished tree is left as it is, an interrupted one is completed."""
    out = Path(out)
    settings = {
        "kind": "music",
        "packages": list(packages),
        "sample_rate": sample_rate,
        "split": list(split),
        "seed": seed,
    }
    manifest = read_manifest(out)
    if complete(out, manifest, settings):
        log.info("%s is up to date (%d tracks)", out, len(manifest["tracks"]))
        return manifest
    ensure_debian_packages(list(packages))
    start_manifest(out, settings)
    sources: dict[str, tuple[str, AudioSource]] = {}
    for package in packages:
        short = DEBIAN_MUSIC.get(package, package)
        found = package_audio(package)
        if not found:
            log.warning("package %s installs no audio; skipped", package)
            continue
        sources.update({name: (package, s) for name, s in _track_names(found, short).items()})
    splits = split_tracks(sorted(sources), split, seed)
    split_of = {name: split_name for split_name, names in splits.items() for name in names}
    tracks = []
    for name in progress(sorted(sources), description="building music corpus"):
        package, source = sources[name]
        file = f"{split_of[name]}/{name}/mixture.flac"
        if not (out / file).exists():
            try:
                with source.open() as f:
                    audio, rate = f.read(dtype="float32", always_2d=True), f.samplerate
            except (sf.LibsndfileError, RuntimeError, OSError) as error:
                log.warning("skipping %s: unreadable (%s)", source.name, error)
                continue
            audio = to_rate_and_stereo(audio, rate, sample_rate)
            write_flac(out / file, audio * headroom(audio), sample_rate)
        seconds = sf.info(out / file).duration
        tracks.append({
            "name": name, "split": split_of[name], "files": [file], "package": package, "source": source.name,
            "license": package_license(package, source.member or source.path), "seconds": round(seconds, 3),
        })  # fmt: skip
    manifest = {"settings": settings, "finished": True, "sample_rate": sample_rate, "channels": 2, "tracks": tracks}
    write_manifest(out, manifest)
    return manifest
