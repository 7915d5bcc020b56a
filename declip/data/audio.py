"""``AudioDataModule``: folders of audio (and zip archives), split by track, clipped on the fly."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from declip.data.audio_files import AudioInfo, find_audio, probe
from declip.data.clipping import ClipLevels
from declip.data.segments import ClippedSegments
from declip.data.splits import load_or_write_manifest
from declip.errors import ConfigError
from declip.metrics import DEFAULT_LEVELS

log = logging.getLogger(__name__)


class AudioDataModule(L.LightningDataModule):
    """Random clipped segments of real audio for training; fixed ones for validation and test.

    Args:
        paths: files, folders (searched recursively) or zip archives of WAV/FLAC/OGG/Opus/MP3.
        sample_rate: model rate; files at other rates are resampled.
        channels: 1 downmixes, 2 keeps stereo (mono files are duplicated).
        segment_seconds: length of each example.
        input_sdr_range, threshold_range: training clip levels (see :class:`ClipLevels`).
        levels: input SDRs of the validation/test segments, cycled.
        train_items, val_items, test_items: examples per epoch / set.
        split: fractions of tracks for train, valid, test.
        manifest: JSON file recording the split (written on first use, then reused); default
            ``<first path>/declip-split.json`` when that is a folder.
        gain_db_range: random gain of training examples (dB).
        clean_targets: give training batches the clean ``x`` (only the supervised loss uses it).
        batch_size, num_workers, seed: loader settings.
    """

    def __init__(
        self,
        paths: Sequence[str],
        sample_rate: int = 44100,
        channels: int = 1,
        segment_seconds: float = 1.0,
        input_sdr_range: tuple[float, float] = (1.0, 20.0),
        threshold_range: tuple[float, float] | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        train_items: int = 10_000,
        val_items: int = 140,
        test_items: int = 700,
        split: tuple[float, float, float] = (0.8, 0.1, 0.1),
        manifest: str | None = None,
        gain_db_range: tuple[float, float] = (-6.0, 0.0),
        clean_targets: bool = True,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(paths, str):
            paths = [paths]
        if not paths:
            raise ConfigError("AudioDataModule needs at least one path to audio files or folders")
        if sample_rate <= 0 or channels <= 0 or segment_seconds <= 0:
            raise ConfigError("sample_rate, channels and segment_seconds must be positive")
        self.save_hyperparameters()
        self.train_levels = ClipLevels(input_sdr_range=input_sdr_range, threshold_range=threshold_range)
        self.eval_levels = ClipLevels(fixed_sdrs=levels)
        self.tracks: dict[str, list[AudioInfo]] = {}

    @property
    def manifest_path(self) -> Path:
        if self.hparams.manifest:
            return Path(self.hparams.manifest)
        first = Path(self.hparams.paths[0])
        return (first if first.is_dir() else first.parent) / "declip-split.json"

    def setup(self, stage: str | None = None) -> None:
        if self.tracks:
            return
        hp = self.hparams
        try:
            sources = find_audio(hp.paths)
        except FileNotFoundError as error:
            raise ConfigError(f"{error}; check data.init_args.paths") from error
        infos = [info for info in map(probe, sources) if info is not None]
        skipped = len(sources) - len(infos)
        if not infos:
            raise ConfigError(f"no usable audio under {', '.join(map(str, hp.paths))} ({skipped} unreadable files)")
        if skipped:
            log.warning("%d of %d audio files were unreadable and are skipped", skipped, len(sources))
        by_name = {info.source.name: info for info in infos}
        splits = load_or_write_manifest(self.manifest_path, sorted(by_name), hp.split, hp.seed)
        self.tracks = {name: [by_name[n] for n in names if n in by_name] for name, names in splits.items()}
        for name in ("train", "valid"):
            if not self.tracks[name]:
                raise ConfigError(
                    f"the {name} split of {self.manifest_path} has no usable track; add audio or change split"
                )

    def _dataset(self, split: str, items: int, fixed: bool, seed: int) -> ClippedSegments:
        hp = self.hparams
        tracks = self.tracks[split] or self.tracks["valid"]
        return ClippedSegments(
            tracks, round(hp.segment_seconds * hp.sample_rate), hp.sample_rate, hp.channels,
            self.eval_levels if fixed else self.train_levels, items, seed, fixed,
            gain_db_range=(0.0, 0.0) if fixed else tuple(hp.gain_db_range),
            clean_targets=True if fixed else hp.clean_targets,
        )  # fmt: skip

    def _loader(self, dataset: ClippedSegments, shuffle: bool) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            dataset, batch_size=hp.batch_size, shuffle=shuffle, num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("train", self.hparams.train_items, False, self.hparams.seed), True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("valid", self.hparams.val_items, True, self.hparams.seed + 1), False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("test", self.hparams.test_items, True, self.hparams.seed + 2), False)
