"""Corpora: which tracks exist, what each is made of, and which split each belongs to."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from declip.config import capture_init
from declip.data.audio_files import AudioInfo, find_audio, probe
from declip.data.splits import SPLITS, load_or_write_manifest, split_tracks
from declip.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Track:
    """A piece of music: its stems (one ``"mixture"`` stem for plain files), all at one rate."""

    name: str
    stems: dict[str, AudioInfo]

    @property
    def seconds(self) -> float:
        return min(info.seconds for info in self.stems.values())


class Corpus:
    """Base class. ``load()`` finds and probes the tracks; ``tracks(split)`` lists them per split.

    ``remix`` asks the training set to mix stems drawn from different tracks.
    """

    remix: bool = False
    stems: list[str] | None = None

    def load(self) -> dict[str, list[Track]]:
        raise NotImplementedError

    @staticmethod
    def _probe_all(sources: Sequence, where: str) -> list[AudioInfo]:
        infos = [info for info in map(probe, sources) if info is not None]
        skipped = len(sources) - len(infos)
        if not infos:
            raise ConfigError(f"no usable audio under {where} ({skipped} unreadable files)")
        if skipped:
            log.warning("%d of %d audio files under %s are unreadable and skipped", skipped, len(sources), where)
        return infos


class FolderCorpus(Corpus):
    """Every audio file (and zip archive member) under ``paths`` is one track; tracks are split
    ``split`` (train, valid, test fractions) with ``seed``, recorded in ``manifest`` (default:
    ``declip-split.json`` in the first folder)."""

    @capture_init
    def __init__(
        self,
        paths: Sequence[str],
        split: tuple[float, float, float] = (0.8, 0.1, 0.1),
        manifest: str | None = None,
        seed: int = 0,
    ) -> None:
        self.paths = [str(Path(p).resolve()) for p in ([paths] if isinstance(paths, str) else paths)]
        if not self.paths:
            raise ConfigError("FolderCorpus needs at least one path to audio files or folders")
        split_tracks([], split, seed)  # validates the fractions now rather than at setup
        self.split, self.manifest, self.seed = tuple(split), manifest, seed

    @property
    def manifest_path(self) -> Path:
        if self.manifest:
            return Path(self.manifest)
        first = Path(self.paths[0])
        return (first if first.is_dir() else first.parent) / "declip-split.json"

    def load(self) -> dict[str, list[Track]]:
        try:
            sources = find_audio(self.paths)
        except FileNotFoundError as error:
            raise ConfigError(f"{error}; check the corpus paths") from error
        infos = self._probe_all(sources, ", ".join(self.paths))
        by_name = {info.source.name: Track(info.source.name, {"mixture": info}) for info in infos}
        splits = load_or_write_manifest(self.manifest_path, sorted(by_name), self.split, self.seed)
        return {name: [by_name[n] for n in names if n in by_name] for name, names in splits.items()}


class MusdbCorpus(Corpus):
    """A MUSDB18-like tree: ``root/{train,valid,test}/<track>/`` holding ``mixture.<ext>`` and stems
    (``vocals``, ``drums``, ``bass``, ``other``, or any names) in WAV/FLAC/OGG/Opus/MP3.

    Without a ``valid`` folder, ``valid_fraction`` of the train tracks (seeded, by track) become the
    validation set, recorded in ``manifest`` (default ``root/declip-split.json``).

    Args:
        source: ``"mixture"`` trains on each track's mixture; ``"remix"`` on sums of stems drawn from
            different tracks (evaluation always uses the real mixtures).
        stems: the stem names to remix (default: every stem found).
    """

    @capture_init
    def __init__(
        self,
        root: str,
        source: str = "mixture",
        stems: Sequence[str] | None = None,
        valid_fraction: float = 0.1,
        manifest: str | None = None,
        seed: int = 0,
    ) -> None:
        if source not in ("mixture", "remix"):
            raise ConfigError(f"MusdbCorpus source must be 'mixture' or 'remix'; got {source!r}")
        if not 0 <= valid_fraction < 1:
            raise ConfigError(f"valid_fraction must be in [0, 1); got {valid_fraction}")
        self.root, self.source, self.stems = Path(root), source, list(stems) if stems else None
        self.valid_fraction, self.manifest, self.seed = valid_fraction, manifest, seed
        self.remix = source == "remix"

    def _folder_tracks(self, folder: Path) -> list[Track]:
        tracks = []
        for track_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            infos = [info for info in map(probe, find_audio([track_dir])) if info is not None]
            stems = {Path(info.source.path).stem: info for info in infos}
            if not stems:
                log.warning("skipping %s: no audio in the track folder", track_dir)
                continue
            if len({(i.sample_rate, i.channels) for i in stems.values()}) > 1:
                log.warning("skipping %s: stems differ in rate or channels", track_dir)
                continue
            tracks.append(Track(f"{folder.name}/{track_dir.name}", stems))
        return tracks

    def load(self) -> dict[str, list[Track]]:
        if not (self.root / "train").is_dir():
            raise ConfigError(
                f"{self.root}: not a MUSDB-like tree (no train/ folder); "
                f"build one with: declip data build music --out {self.root}"
            )
        out = {name: self._folder_tracks(self.root / name) if (self.root / name).is_dir() else [] for name in SPLITS}
        if not (self.root / "valid").is_dir() and self.valid_fraction > 0:
            names = sorted(t.name for t in out["train"])
            path = Path(self.manifest) if self.manifest else self.root / "declip-split.json"
            split = load_or_write_manifest(path, names, (1 - self.valid_fraction, self.valid_fraction, 0.0), self.seed)
            valid = set(split["valid"])
            out["valid"] = [t for t in out["train"] if t.name in valid]
            out["train"] = [t for t in out["train"] if t.name not in valid]
        if self.stems is not None:
            for split_name, tracks in out.items():
                out[split_name] = [t for t in tracks if set(self.stems) <= set(t.stems)]
        return out
