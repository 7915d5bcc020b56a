"""How loader workers start: forked, except under DDP, where they are spawned.

A two-rank run on real audio with a worker per loader hung now and then: the rank waiting for a
batch, its workers idle, as if a message between them was lost. A rank holds threads (gloo's, the
loaders' queue feeders, the resource sharer that hands tensors between processes), and forking a
process while one of them holds a lock copies the lock held: the likely cause. A spawned worker is a
fresh interpreter (fork and exec at once), so it inherits no lock; the datasets here pickle cheaply
(file names and settings, no audio). With spawned workers the hang has not come back. A spawned
worker is still the rank's child, which it watches, so it ends when the rank dies (with workers from
a fork server, a run whose ranks were killed mid-epoch never ended). One process on its own keeps
plain fork, which starts workers fastest.
"""

from __future__ import annotations

from typing import Any


def worker_context(trainer: Any, num_workers: int) -> str | None:
    """The ``multiprocessing_context`` for a DataLoader with ``num_workers`` workers under ``trainer``."""
    if num_workers == 0 or trainer is None or trainer.world_size <= 1:
        return None
    return "spawn"


def loader_options(trainer: Any, num_workers: int) -> dict[str, Any]:
    """DataLoader keyword arguments for workers: their number, their start, and kept between epochs."""
    return {
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "multiprocessing_context": worker_context(trainer, num_workers),
    }
