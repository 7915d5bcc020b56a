"""Where audio lives: plain files (WAV, FLAC, OGG, Opus, MP3) and members of zip archives (``.zip``,
``.pk3``), found under folders and probed without decoding."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")
LOSSY_EXTENSIONS = (".ogg", ".opus", ".mp3")  # lossy codecs among them: a clipped file's plateaus are smeared
ARCHIVE_EXTENSIONS = (".zip", ".pk3")
NO_AUDIO = "a folder with no audio file (WAV, FLAC, OGG, Opus, MP3; restore and analyze: AAC too)"


@dataclass(frozen=True)
class AudioSource:
    """One audio stream: a file, or ``member`` inside the zip archive ``path``."""

    path: str
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path}::{self.member}" if self.member else self.path

    def open(self) -> sf.SoundFile:
        """A seekable ``SoundFile``; an archive member is decompressed to memory first."""
        if self.member is None:
            return sf.SoundFile(self.path)
        with zipfile.ZipFile(self.path) as archive:
            return sf.SoundFile(io.BytesIO(archive.read(self.member)))


@dataclass(frozen=True)
class AudioInfo:
    source: AudioSource
    frames: int
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def _is_audio(name: str, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> bool:
    return name.lower().endswith(extensions)


def find_audio(
    paths: Iterable[str | Path], archives: bool = True, extensions: tuple[str, ...] = AUDIO_EXTENSIONS
) -> list[AudioSource]:
    """Every audio stream under ``paths`` (files named with one of ``extensions``, in folders searched
    recursively, and unless not ``archives`` the members of zip archives), sorted.

    Raises ``FileNotFoundError`` naming a path that does not exist.
    """
    sources: list[AudioSource] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if _is_audio(file.name, extensions):
                sources.append(AudioSource(str(file)))
            elif archives and file.suffix.lower() in ARCHIVE_EXTENSIONS:
                sources += _archive_members(file)
    return sources


def find_inputs(
    paths: Iterable[str | Path], archives: bool = True, extensions: tuple[str, ...] = AUDIO_EXTENSIONS
) -> tuple[list[tuple[AudioSource, Path]], list[tuple[str, str]]]:
    """What a command given files and folders works on (``declip restore``, ``declip adapt``): each audio
    stream with its name below the folder given (a file given: its own name), and ``(path, reason)``
    for each path that does not exist or holds no audio. A folder is searched as :func:`find_audio`
    searches it; a file is taken whatever its name (an archive, with ``archives``: its members)."""
    found: list[tuple[AudioSource, Path]] = []
    failures: list[tuple[str, str]] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            sources = find_audio([path], archives, extensions)
            if not sources:
                failures.append((str(name), NO_AUDIO))
            found += [(s, Path(s.path).relative_to(path) / (s.member or "")) for s in sources]
        elif path.is_file() and archives and path.suffix.lower() in ARCHIVE_EXTENSIONS:
            sources = _archive_members(path)
            if not sources:
                failures.append((str(name), NO_AUDIO))
            found += [(s, Path(path.name) / s.member) for s in sources]
        elif path.is_file():
            found.append((AudioSource(str(path)), Path(path.name)))
        else:
            failures.append((str(name), "no such file or folder"))
    return found, failures


def _archive_members(path: Path) -> list[AudioSource]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [AudioSource(str(path), name) for name in sorted(archive.namelist()) if _is_audio(name)]
    except (zipfile.BadZipFile, OSError) as error:
        log.warning("skipping %s: not a readable zip archive (%s)", path, error)
        return []


def probe(source: AudioSource) -> AudioInfo | None:
    """Length, rate and channels from the header; ``None`` (with one warning) when unreadable or empty."""
    try:
        with source.open() as f:
            info = AudioInfo(source, f.frames, f.samplerate, f.channels)
    except (sf.LibsndfileError, RuntimeError, OSError, zipfile.BadZipFile) as error:
        log.warning("skipping %s: unreadable audio (%s)", source.name, error)
        return None
    if info.frames <= 0:
        log.warning("skipping %s: no samples", source.name)
        return None
    return info
