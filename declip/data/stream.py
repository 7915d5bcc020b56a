"""``StreamingCorpus``: a corpus packed by ``declip data pack``, streamed from ``s3://`` or a folder.

Training visits every packed piece once per epoch (litdata shards the chunks across DDP ranks and
loader workers, shuffled by the seed, and its loader's state resumes mid-epoch) and draws one
segment from it; evaluation reads fixed segments by index. Segments, gains, silence redraws and
clipping follow :class:`~declip.data.ClippedSegments`.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader, Dataset

from declip.config import capture_init
from declip.data.clipping import ClipLevels
from declip.data.corpus import Corpus, Track
from declip.data.object_store import Location, allow_plain_http_endpoint, is_remote
from declip.data.pieces import SUMMARY
from declip.data.splits import SPLITS
from declip.data.workers import loader_options, worker_context
from declip.errors import ConfigError


class StreamingCorpus(Corpus):
    """A packed corpus at ``uri`` (``s3://bucket/prefix`` or a local folder), split as it was packed.

    The endpoint and credentials come from the AWS environment (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``), never from the config.

    Args:
        uri: where ``declip data pack`` wrote the corpus.
        cache_dir: local folder for downloaded chunks (default: litdata's, under ``~/.lightning``).
        max_cache_size: bound on the local cache of each split, e.g. ``"20GB"``; chunks already read
            are evicted beyond it.

    An epoch of training is one pass over the packed pieces (``train_items`` does not apply).
    """

    @capture_init
    def __init__(self, uri: str, cache_dir: str | None = None, max_cache_size: str = "20GB") -> None:
        self.uri, self.cache_dir, self.max_cache_size = uri.rstrip("/"), cache_dir, max_cache_size
        self.summary: dict | None = None

    def load(self) -> dict[str, list[Track]]:
        location = Location(self.uri)
        if not is_remote(self.uri) and not location.root.is_dir():
            raise ConfigError(f"{self.uri}: no such folder; pack a corpus there with: declip data pack ROOT --out URI")
        self.summary = location.read_json(SUMMARY)
        if self.summary is None:
            raise ConfigError(
                f"{location.url(SUMMARY)}: no packed corpus there (or its packing did not finish); "
                f"pack one with: declip data pack ROOT --out {self.uri}"
            )
        # tracks are known by name only: their audio is in the chunks
        return {name: [Track(t, {}) for t in self.summary["splits"][name]["tracks"]] for name in SPLITS}

    def _source(self, split: str, shuffle: bool, seed: int) -> dict:
        if not self.summary or not self.summary["splits"][split]["pieces"]:
            raise ConfigError(f"{self.uri}: the packed corpus has no {split} piece; pack a corpus with a {split} split")
        cache = f"{self.cache_dir}/{split}" if self.cache_dir and is_remote(self.uri) else None
        options = {"cache_dir": cache, "max_cache_size": self.max_cache_size} if is_remote(self.uri) else {}
        return {"input_dir": f"{self.uri}/{split}", "shuffle": shuffle, "seed": seed, **options}

    def segments(
        self, split: str, length: int, sample_rate: int, channels: int, levels: ClipLevels, items: int, seed: int,
        fixed: bool, gain_db_range: tuple[float, float], clean_targets: bool,
    ) -> Dataset:  # fmt: skip
        """The training stream (``fixed=False``) or a fixed evaluation set of ``items`` items."""
        try:
            from declip.data.streamed_segments import FixedStreamedSegments, SegmentDraw, StreamedSegments
        except ImportError as error:
            raise ConfigError(f"StreamingCorpus needs litdata ({error}): pip install 'declip[stream]'") from error

        draw = SegmentDraw(length, sample_rate, channels, levels, seed, split, gain_db_range, clean_targets)
        allow_plain_http_endpoint()
        if fixed:
            return FixedStreamedSegments(self._source(split, False, seed), draw, items)
        return StreamedSegments(draw, **self._source(split, True, seed))

    @staticmethod
    def loader(dataset: Dataset, batch_size: int, num_workers: int, trainer: Any = None) -> DataLoader:
        """litdata's loader for the training stream (its state resumes mid-epoch); a plain one otherwise."""
        from litdata import StreamingDataLoader, StreamingDataset

        if isinstance(dataset, StreamingDataset):
            context = worker_context(trainer, num_workers)
            return StreamingDataLoader(
                dataset, batch_size=batch_size, num_workers=num_workers, multiprocessing_context=context
            )
        return DataLoader(dataset, batch_size=batch_size, **loader_options(trainer, num_workers))
