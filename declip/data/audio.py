"""``AudioDataModule``: any corpus of real audio, split by track, clipped on the fly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning as L
from torch.utils.data import DataLoader, Dataset

from declip.config import config_of, instantiate
from declip.data.clipping import ClipLevels
from declip.data.coded_segments import CodedClipping, CodedSegments
from declip.data.corpus import Corpus, Track
from declip.data.resumable import training_loader
from declip.data.segments import ClippedSegments
from declip.data.stream import StreamingCorpus
from declip.data.workers import loader_options
from declip.errors import ConfigError
from declip.metrics import DEFAULT_LEVELS


class AudioDataModule(L.LightningDataModule):
    """Random clipped segments of real audio for training; fixed ones for validation and test.

    Args:
        corpus: where the tracks come from (:class:`FolderCorpus`, :class:`MusdbCorpus`).
        sample_rate: model rate; files at other rates are resampled.
        channels: 1 downmixes, 2 keeps stereo (mono files are duplicated).
        segment_seconds: length of each example.
        input_sdr_range, threshold_range: training clip levels (see :class:`ClipLevels`).
        levels: input SDRs of the validation/test segments, cycled.
        train_items, val_items, test_items: examples per epoch / set.
        gain_db_range: random gain of training examples (dB).
        clean_targets: give training batches the clean ``x`` (only the supervised loss uses it).
        codecs: clip, then code: every segment (training and evaluation) is coded after clipping by
            one of these real encoders, codec to kbps (``{mp3: 128, opus: 96}``; one drawn per item),
            and measured under a tolerance band (:class:`~declip.data.coded_segments.CodedClipping`).
            ``None``: uncoded.
        codec_band: the band's relative width δ under the encoder's gain times θ, uniform in this range.
        batch_size, num_workers, seed: loader settings.
    """

    def __init__(
        self,
        corpus: Corpus,
        sample_rate: int = 44100,
        channels: int = 1,
        segment_seconds: float = 1.0,
        input_sdr_range: tuple[float, float] = (1.0, 20.0),
        threshold_range: tuple[float, float] | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        train_items: int = 10_000,
        val_items: int = 140,
        test_items: int = 700,
        gain_db_range: tuple[float, float] = (-6.0, 0.0),
        clean_targets: bool = True,
        codecs: Mapping[str, float] | None = None,
        codec_band: tuple[float, float] = (0.01, 0.1),
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if sample_rate <= 0 or segment_seconds <= 0:
            raise ConfigError("sample_rate and segment_seconds must be positive")
        if channels not in (1, 2):
            raise ConfigError(f"channels must be 1 (mono) or 2 (stereo); got {channels}")
        self.corpus = instantiate(corpus)
        self.save_hyperparameters(ignore=["corpus"])
        self.hparams["corpus"] = config_of(self.corpus)
        self.train_levels = ClipLevels(input_sdr_range=input_sdr_range, threshold_range=threshold_range)
        self.eval_levels = ClipLevels(fixed_sdrs=levels)
        self.coding = CodedClipping(codecs, tuple(codec_band)) if codecs else None
        if self.coding is not None and isinstance(self.corpus, StreamingCorpus):
            raise ConfigError("codecs (clip, then code) needs a corpus read from files, not a StreamingCorpus")
        self.tracks: dict[str, list[Track]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.tracks:
            return
        self.tracks = self.corpus.load()
        for name in ("train", "valid"):
            if not self.tracks[name]:
                raise ConfigError(f"the corpus has no usable {name} track; add audio or change the split")

    def _dataset(self, split: str, items: int, fixed: bool) -> Dataset:
        hp = self.hparams
        if not self.tracks[split]:
            raise ConfigError(f"the corpus has no {split} track: give it a {split} split to {split} on")
        if isinstance(self.corpus, StreamingCorpus):  # pieces streamed from object storage
            return self.corpus.segments(
                split, round(hp.segment_seconds * hp.sample_rate), hp.sample_rate, hp.channels,
                self.eval_levels if fixed else self.train_levels, items, hp.seed, fixed,
                (0.0, 0.0) if fixed else tuple(hp.gain_db_range), True if fixed else hp.clean_targets,
            )  # fmt: skip
        length = round(hp.segment_seconds * hp.sample_rate) + (2 * self.coding.margin if self.coding else 0)
        segments = ClippedSegments(
            self.tracks[split], length, hp.sample_rate, hp.channels,
            self.eval_levels if fixed else self.train_levels, items, hp.seed, fixed, stream=split,
            remix=self.corpus.remix and not fixed, remix_stems=self.corpus.stems,
            gain_db_range=(0.0, 0.0) if fixed else tuple(hp.gain_db_range),
            clean_targets=True if fixed else hp.clean_targets,
        )  # fmt: skip
        if self.coding is None:
            return segments
        return CodedSegments(segments, self.coding, hp.sample_rate, hp.seed, split)

    def _loader(self, dataset: Dataset) -> DataLoader:
        hp = self.hparams
        if isinstance(self.corpus, StreamingCorpus):  # the stream shuffles and shards itself
            return self.corpus.loader(dataset, hp.batch_size, hp.num_workers, self.trainer)
        return DataLoader(dataset, batch_size=hp.batch_size, **loader_options(self.trainer, hp.num_workers))

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        dataset = self._dataset("train", hp.train_items, False)
        if isinstance(self.corpus, StreamingCorpus):  # litdata's loader resumes mid-epoch itself
            return self._loader(dataset)
        # new draw numbers each epoch (new segments); checkpoints keep the place in the epoch
        return training_loader(dataset, hp.batch_size, hp.num_workers, hp.seed, fresh=True, trainer=self.trainer)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("valid", self.hparams.val_items, True))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("test", self.hparams.test_items, True))
