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
ARCHIVE_EXTENSIONS = (".zip", ".pk3")


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


def _is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def find_audio(paths: Iterable[str | Path]) -> list[AudioSource]:
    """Every audio stream under ``paths`` (files, folders searched recursively, zip archives), sorted.

    Raises ``FileNotFoundError`` naming a path that does not exist.
    """
    sources: list[AudioSource] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if _is_audio(file.name):
                sources.append(AudioSource(str(file)))
            elif file.suffix.lower() in ARCHIVE_EXTENSIONS:
                sources += _archive_members(file)
    return sources


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
