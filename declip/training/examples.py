"""``ValidationExamples``: listen to and look at what the model does, at every validation."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


class ValidationExamples(L.Callback):
    """Log ``examples`` items of the first validation batch: the clipped, restored and clean audio
    and a spectrogram image of the three, to the run's Weights & Biases or TensorBoard logger
    (others are skipped). Rank 0 only; needs validation data with clean references.

    Args:
        examples: how many items of the batch (the validation set's first, the same every time).
        n_fft: STFT size of the spectrograms.
    """

    def __init__(self, examples: int = 2, n_fft: int = 1024) -> None:
        self.examples, self.n_fft = examples, n_fft

    @torch.no_grad()
    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, (WandbLogger, TensorBoardLogger))]
        if not loggers or "x" not in batch:
            return
        from declip.plots import figure_array, spectrogram_figure  # matplotlib only when logging

        physics = pl_module.physics_of(batch)
        y = batch["y"][: self.examples]
        small = type(physics)(_first(physics.high, len(y)), _first(physics.low, len(y)))
        restored = small.project(pl_module(y, small), y)
        rate = int(pl_module.hparams.get("sample_rate", 44100))
        step = trainer.global_step
        for i in range(len(y)):
            signals = {"clipped": y[i], "restored": restored[i], "clean": batch["x"][i]}
            gain = 1 / max(float(torch.stack([s.abs().max() for s in signals.values()]).max()), 1e-6)
            caption = f"input SDR {float(batch['input_sdr'][i]):.1f} dB" if "input_sdr" in batch else f"item {i}"
            image = figure_array(spectrogram_figure({k: v[0] for k, v in signals.items()}, rate, self.n_fft, caption))
            for logger in loggers:
                if isinstance(logger, WandbLogger):
                    for name, signal in signals.items():
                        audio = (signal * gain).T.cpu().numpy()
                        logger.log_audio(f"val/audio/{name}/{i}", [audio], step, sample_rate=[rate], caption=[caption])
                    logger.log_image(f"val/spectrogram/{i}", [image], step, caption=[caption])
                else:
                    for name, signal in signals.items():
                        mono = (signal * gain).mean(0, keepdim=True).cpu()
                        logger.experiment.add_audio(f"val/audio/{name}/{i}", mono, step, sample_rate=rate)
                    logger.experiment.add_image(f"val/spectrogram/{i}", image, step, dataformats="HWC")


def _first(threshold: torch.Tensor, n: int) -> torch.Tensor:
    return threshold[:n] if threshold.dim() == 3 else threshold
