"""Synthetic signals from an amplitude-invariant distribution, clipped on the fly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from declip.data.clipping import ClipLevels
from declip.data.resumable import training_loader
from declip.data.workers import loader_options
from declip.errors import ConfigError
from declip.metrics import DEFAULT_LEVELS


def damped_sinusoids(generator: torch.Generator, length: int, channels: int = 1, max_components: int = 5) -> Tensor:
    """A sparse sum of damped sinusoids, ``(channels, length)``.

    1 to ``max_components`` components with frequency log-uniform in [0.005, 0.05] cycles/sample,
    amplitude log-uniform in [0.1, 1], random phase and onset, decay log-uniform in [length/8,
    4*length], and a global gain log-uniform in [0.01, 100]: the law is invariant to amplitude
    scaling over that range. Stereo channels share the components with random per-channel gains.
    """

    def log_uniform(low: float, high: float, *shape: int) -> Tensor:
        u = torch.rand(*shape, generator=generator, dtype=torch.float64)
        return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u)

    k = int(torch.randint(1, max_components + 1, (1,), generator=generator))
    t = torch.arange(length, dtype=torch.float64)
    freq = log_uniform(0.005, 0.05, k, 1)
    amp = log_uniform(0.1, 1.0, k, 1)
    phase = 2 * math.pi * torch.rand(k, 1, generator=generator, dtype=torch.float64)
    onset = (torch.rand(k, 1, generator=generator, dtype=torch.float64) - 0.5) * length
    decay = log_uniform(length / 8, 4 * length, k, 1)
    envelope = torch.exp(-(t - onset).clamp(min=0) / decay) * (t >= onset)
    components = amp * envelope * torch.sin(2 * math.pi * freq * t + phase)  # (k, length)
    pan = log_uniform(0.5, 1.0, channels, k) if channels > 1 else torch.ones(1, k, dtype=torch.float64)
    return (log_uniform(0.01, 100.0, 1, 1) * pan @ components).float()


class SyntheticClipping(Dataset):
    """Item ``i`` is a deterministic function of ``(seed, i)``, so workers and DDP ranks agree.

    Items are dicts: ``y`` and ``x`` ``(channels, length)``, ``high`` and ``low`` ``(1, 1)``,
    ``input_sdr`` (a scalar, dB).
    """

    def __init__(
        self, size: int, length: int, channels: int, levels: ClipLevels, seed: int, max_components: int = 5
    ) -> None:
        self.size, self.length, self.channels = size, length, channels
        self.levels, self.seed, self.max_components = levels, seed, max_components

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        x = damped_sinusoids(generator, self.length, self.channels, self.max_components)
        return self.levels.clip(x, index, generator)


class SyntheticDataModule(L.LightningDataModule):
    """Training examples clipped at a random level; validation and test sets at fixed levels.

    Args:
        length: samples per example.
        channels: 1 (mono) or more.
        input_sdr_range: training input SDRs drawn uniformly in this range (dB, > 0).
        threshold_range: instead, absolute thresholds drawn log-uniformly in this range (> 0).
        levels: input SDRs (dB) of the validation/test sets, cycled over their items.
        train_size, val_size, test_size: items per set.
        batch_size, num_workers: loader settings.
        seed: base seed; validation and test sets use ``seed + 1`` and ``seed + 2``.
        max_components: most damped sinusoids per example.
    """

    def __init__(
        self,
        length: int = 512,
        channels: int = 1,
        input_sdr_range: tuple[float, float] = (1.0, 20.0),
        threshold_range: tuple[float, float] | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        train_size: int = 1_000_000,
        val_size: int = 700,
        test_size: int = 2100,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        max_components: int = 5,
    ) -> None:
        super().__init__()
        if train_size >= 1_000_003:
            raise ConfigError("train_size must be below 1000003 (larger sets would share items with the test set)")
        self.save_hyperparameters()
        self.train_levels = ClipLevels(input_sdr_range=input_sdr_range, threshold_range=threshold_range)
        self.eval_levels = ClipLevels(fixed_sdrs=levels)

    def _dataset(self, size: int, levels: ClipLevels, seed: int) -> SyntheticClipping:
        hp = self.hparams
        return SyntheticClipping(size, hp.length, hp.channels, levels, seed, hp.max_components)

    def _loader(self, dataset: Dataset) -> DataLoader:
        hp = self.hparams
        return DataLoader(dataset, batch_size=hp.batch_size, **loader_options(self.trainer, hp.num_workers))

    def train_dataloader(self) -> DataLoader:
        # shuffled by (seed, epoch); checkpoints keep the place in the epoch
        hp = self.hparams
        dataset = self._dataset(hp.train_size, self.train_levels, hp.seed)
        return training_loader(dataset, hp.batch_size, hp.num_workers, hp.seed, fresh=False, trainer=self.trainer)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset(self.hparams.val_size, self.eval_levels, self.hparams.seed + 1))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._dataset(self.hparams.test_size, self.eval_levels, self.hparams.seed + 2))

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
