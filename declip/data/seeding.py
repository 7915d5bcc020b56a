"""Random generators for data items, one per item, from the seed, the stream and the item's index."""

from __future__ import annotations

import hashlib

import torch


def item_generator(seed: int, stream: str, index: int) -> torch.Generator:
    """A generator for item ``index`` of ``stream`` (``"train"``, ``"valid"``, ``"test"``).

    It depends on ``(seed, stream, index)`` alone: the same item in every run, worker, DDP rank and
    resumption, and streams never share items. Training items change from one epoch to the next
    because the sampler gives each epoch new indices (:class:`~declip.data.resumable.EpochSampler`).
    """
    digest = hashlib.blake2b(f"{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
