"""Random generators for data items: fixed for evaluation, fresh every epoch for training."""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import get_worker_info


def item_generator(seed: int, stream: str, index: int, fresh: bool = False, draw: int = 0) -> torch.Generator:
    """A generator for item ``index`` of ``stream`` (``"train"``, ``"valid"``, ``"test"``).

    Without ``fresh`` it depends on ``(seed, stream, index)`` alone: the same item in every run,
    worker and DDP rank, and streams never share items. With ``fresh``, training items change from
    one epoch to the next while a seeded run stays reproducible: inside a DataLoader worker the mix
    includes the worker's seed (drawn anew each epoch from the run's seeded generator); in the main
    process it includes ``draw``, a count of the items served so far.
    """
    key = f"{seed}/{stream}/{index}"
    if fresh:
        worker = get_worker_info()
        key += f"/{worker.seed if worker is not None else draw}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
