"""A run resumed mid-epoch from a checkpoint trains on exactly the batches an uninterrupted run would have."""

import warnings
from itertools import islice
from types import SimpleNamespace

import lightning as L
import pytest
import soundfile as sf
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import Dataset

from declip.data import AudioDataModule, FolderCorpus, SyntheticDataModule
from declip.data.resumable import EpochSampler, ResumableLoader
from declip.losses import MCLoss
from declip.models import MLP
from declip.training import DeclipModule
from declip.training.checkpoint import load_checkpoint, safe_types
from tests.batch_log import BatchLog, batches
from tests.conftest import music

STEPS = 10  # 8 items in batches of 2: 4 steps an epoch, so 10 steps cross two epoch boundaries


def _fit(folder, run: str, num_workers: int, ckpt_path=None) -> list[str]:
    """Train ``STEPS`` steps on the audio in ``folder``, checkpointing every step; Lightning's warnings."""
    corpus = FolderCorpus([str(folder / "audio")], split=(0.5, 0.5, 0.0), manifest=str(folder / "split.json"))
    data = AudioDataModule(
        corpus, sample_rate=8000, segment_seconds=0.064, train_items=8, batch_size=2, num_workers=num_workers,
        clean_targets=False,
    )  # fmt: skip
    model = DeclipModule(MLP(channels=1, frame=64, hidden=8, layers=2), MCLoss(), sample_rate=8000)
    every_step = ModelCheckpoint(dirpath=folder / run, filename="{step}", every_n_train_steps=1, save_top_k=-1)
    trainer = L.Trainer(
        max_steps=STEPS, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[BatchLog(str(folder / run)), every_step],
        default_root_dir=folder,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught, safe_types():
        warnings.simplefilter("always")
        trainer.fit(model, data, ckpt_path=ckpt_path, weights_only=True)
    return [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    (folder / "audio").mkdir()
    for i in range(4):
        sf.write(folder / "audio" / f"track{i}.wav", music(1.0, 8000, 1, i), 8000)
    _fit(folder, "uninterrupted", num_workers=0)
    return folder, batches(folder / "uninterrupted")


@pytest.mark.parametrize(("num_workers", "step"), [(0, 1), (0, 4), (0, 6), (1, 6)])
def test_a_run_resumed_at_step_n_trains_on_the_batches_of_an_uninterrupted_run(uninterrupted, num_workers, step):
    folder, reference = uninterrupted
    assert sorted(reference) == list(range(STEPS)) and len(set(reference.values())) == STEPS  # no repeats
    checkpoint = folder / "uninterrupted" / f"step={step}.ckpt"
    epoch, batch = divmod(step - 1, 4)  # the checkpoint of step n is saved after batch n - 1
    place = load_checkpoint(checkpoint)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert place == [{"epoch": epoch, "batches": batch + 1}]
    run = f"resumed-{num_workers}-{step}"
    warned = _fit(folder, run, num_workers, ckpt_path=checkpoint)
    # the same batches whatever the loader workers (the uninterrupted run had none)
    assert batches(folder / run) == {s: reference[s] for s in range(step, STEPS)}
    assert not [w for w in warned if "not resumable" in w], warned


class _Indices(Dataset):
    """Item ``i`` is ``i``: batches show which items a loader served."""

    def __len__(self) -> int:
        return 9

    def __getitem__(self, index: int) -> int:
        return index


@pytest.mark.parametrize("fresh", [True, False])
def test_ranks_split_each_epoch_and_a_restored_loader_serves_the_rest_of_it(fresh):
    served = {}
    for epoch in (0, 1):
        for rank in (0, 1):
            sampler = EpochSampler(_Indices(), num_replicas=2, rank=rank, seed=3, fresh=fresh)
            sampler.set_epoch(epoch)
            served[epoch, rank] = list(sampler)
        assert len(served[epoch, 0]) == len(served[epoch, 1]) == 5
        both = served[epoch, 0] + served[epoch, 1]
        if fresh:  # new draw numbers every epoch, never one twice
            assert sorted(both) == list(range(10 * epoch, 10 * epoch + 10))
        else:  # a permutation of the 9 items, padded to equal shares as DistributedSampler pads
            assert set(both) == set(range(9))
    assert served[0, 0] != served[1, 0]

    def loader(rank: int) -> ResumableLoader:
        return ResumableLoader(_Indices(), batch_size=2, sampler=EpochSampler(_Indices(), 2, rank, 3, fresh))

    for rank in (0, 1):
        whole = [b.tolist() for b in loader(rank)]  # epoch 0
        first = loader(rank)
        head = [b.tolist() for b in islice(first, 2)]
        assert first.state_dict() == {"epoch": 0, "batches": 2}
        restored = loader(rank)
        restored.load_state_dict(first.state_dict())
        restored.sampler.set_epoch(0)  # as Lightning does before each epoch
        assert head + [b.tolist() for b in restored] == whole
        assert restored.state_dict() == {"epoch": 0, "batches": 3}
        assert [b.tolist() for b in restored] != whole  # the next pass is epoch 1


def test_under_ddp_loader_workers_are_spawned_and_serve_what_forked_ones_serve(uninterrupted):
    """Forking a DDP rank, which holds threads, can copy a lock held and hang the worker; spawning cannot."""
    folder, _ = uninterrupted
    corpus = FolderCorpus([str(folder / "audio")], split=(0.5, 0.5, 0.0), manifest=str(folder / "split.json"))
    served = {}
    for world_size in (1, 2):
        data = AudioDataModule(corpus, sample_rate=8000, segment_seconds=0.064, train_items=8, val_items=4,
                               batch_size=2, num_workers=1)  # fmt: skip
        data.trainer = SimpleNamespace(world_size=world_size, distributed_sampler_kwargs={"num_replicas": 1, "rank": 0})
        data.setup("fit")
        loaders = data.train_dataloader(), data.val_dataloader()
        starts = {
            loader.multiprocessing_context and loader.multiprocessing_context.get_start_method() for loader in loaders
        }
        assert starts == {None if world_size == 1 else "spawn"}  # None: the platform's own, fork on Linux
        served[world_size] = [[{k: v.tolist() for k, v in batch.items()} for batch in loader] for loader in loaders]
    assert [len(batches) for batches in served[1]] == [4, 2] and served[1] == served[2]


def test_the_synthetic_module_spawns_its_loader_workers_under_ddp_too():
    data = SyntheticDataModule(length=64, train_size=8, val_size=4, test_size=4, batch_size=2, num_workers=1)
    for world_size, start in ((1, None), (2, "spawn")):
        data.trainer = SimpleNamespace(world_size=world_size, distributed_sampler_kwargs={"num_replicas": 1, "rank": 0})
        for loader in (data.train_dataloader(), data.val_dataloader(), data.test_dataloader()):
            assert (loader.multiprocessing_context and loader.multiprocessing_context.get_start_method()) == start
