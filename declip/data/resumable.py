"""Training loaders that resume mid-epoch: each checkpoint holds the loader's place in its epoch.

Lightning saves ``state_dict()`` of a training loader that has one and hands it back to
``load_state_dict()`` when a run resumes. Here each epoch's order is a function of the seed and the
epoch alone (:class:`EpochSampler`), so the place is two numbers: the epoch and the batches served.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, Dataset, DistributedSampler

from declip.data.workers import loader_options


class EpochSampler(DistributedSampler):
    """This rank's items of epoch ``e``, the same in every run, worker count and resumption.

    ``fresh=False``: :class:`~torch.utils.data.DistributedSampler`'s order, a permutation of the
    dataset seeded by ``seed + e``, split across ranks. ``fresh=True``: draw numbers ``e*T + rank``,
    ``e*T + rank + W``, ... below ``(e + 1)*T`` (``T``: the dataset's length rounded up to a multiple of
    the ``W`` ranks), for a dataset whose item ``i`` is a random draw seeded by ``i`` alone (training
    :class:`~declip.data.ClippedSegments`): every epoch draws new items and no draw is served twice.

    The first ``start`` items of the epoch are left out (those a resumed run trained on before). Each
    pass moves on to the next epoch, unless ``set_epoch`` (which Lightning calls every epoch) says otherwise.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, fresh: bool = False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=not fresh, seed=seed)
        self.fresh, self.start = fresh, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.start = 0  # a place saved in another epoch does not apply
        super().set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        if self.fresh:
            first = self.epoch * self.total_size
            indices = list(range(first + self.rank, first + self.total_size, self.num_replicas))
        else:
            indices = list(super().__iter__())
        indices = indices[self.start :]
        self.epoch, self.start = self.epoch + 1, 0
        return iter(indices)


class ResumableLoader(DataLoader):
    """A DataLoader whose place in the epoch is saved with each checkpoint and restored on resuming.

    With an :class:`EpochSampler`, the place is ``{"epoch", "batches"}`` (batches served to training
    in that epoch); a loader given it serves the rest of that epoch, exactly the batches an
    uninterrupted run would have served. DDP ranks get equal shares, so the place Lightning saves
    from rank 0 is every rank's. With another sampler (Lightning's ``overfit_batches`` puts a
    sequential one) it is a plain DataLoader with nothing to save.
    """

    _place: dict[str, int] | None = None

    def __iter__(self) -> Iterator[Any]:
        if not isinstance(self.sampler, EpochSampler):
            return super().__iter__()
        return self._serve()

    def _serve(self) -> Iterator[Any]:
        # a generator: the epoch is read at the first batch, after Lightning's set_epoch
        self._place = place = {"epoch": self.sampler.epoch, "batches": self.sampler.start // self.batch_size}
        for batch in super().__iter__():
            place["batches"] += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        if not isinstance(self.sampler, EpochSampler):
            return {}
        return dict(self._place or {"epoch": self.sampler.epoch, "batches": self.sampler.start // self.batch_size})

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state and isinstance(self.sampler, EpochSampler):
            self.sampler.set_epoch(state["epoch"])
            self.sampler.start = state["batches"] * self.batch_size
            self._place = None


def training_loader(
    dataset: Dataset, batch_size: int, num_workers: int, seed: int, fresh: bool, trainer: Any = None
) -> ResumableLoader:
    """A resumable training loader over ``dataset``, split across the ranks of ``trainer`` (if any)."""
    ranks = (trainer.distributed_sampler_kwargs if trainer is not None else None) or {"num_replicas": 1, "rank": 0}
    return ResumableLoader(
        dataset, batch_size=batch_size, sampler=EpochSampler(dataset, **ranks, seed=seed, fresh=fresh),
        **loader_options(trainer, num_workers),
    )  # fmt: skip
