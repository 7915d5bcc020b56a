"""How loader workers start: forked, except under DDP, where they are spawned.

A rank of a DDP run holds threads (gloo's, the loaders' queue feeders, the resource sharer that
hands tensors between processes). Forking a process mid-way through one of them copies its locks
held, and the worker can wait on them for ever: a two-rank run on real audio with a worker per
loader hung this way now and then. A spawned worker is a fresh interpreter (fork and exec at once),
so it inherits no lock; the datasets here pickle cheaply (file names and settings, no audio). It is
still the rank's child, which it watches, so it ends when the rank dies (with workers from a fork
server, a run whose ranks were killed mid-epoch never ended). One process on its own keeps plain
fork, which starts workers fastest.
"""

from __future__ import annotations

from typing import Any


def worker_context(trainer: Any, num_workers: int) -> str | None:
    """The ``multiprocessing_context`` for a DataLoader with ``num_workers`` workers under ``trainer``."""
    if num_workers == 0 or trainer is None or getattr(trainer, "world_size", 1) <= 1:
        return None
    return "spawn"


def loader_options(trainer: Any, num_workers: int) -> dict[str, Any]:
    """DataLoader keyword arguments for workers: their number, their start, and kept between epochs."""
    return {
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "multiprocessing_context": worker_context(trainer, num_workers),
    }
