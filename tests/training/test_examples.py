"""Validation examples (audio + spectrograms) reach Weights & Biases (offline) and TensorBoard."""

from pathlib import Path

import numpy as np
import torch
import wandb
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from declip.cli import main
from declip.plots import figure_array, spectrogram_figure

ROOT = Path(__file__).resolve().parents[2]
FIT = [
    "fit", "--config", str(ROOT / "configs/synthetic.yaml"),
    "--model.backbone.init_args.hidden=32", "--data.init_args.val_size=8", "--data.init_args.batch_size=4",
    "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false", "--trainer.callbacks+=declip.training.ValidationExamples",
]  # fmt: skip


def test_wandb_offline_run_gets_metrics_audio_and_spectrograms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = [
        "--trainer.logger=lightning.pytorch.loggers.WandbLogger", "--trainer.logger.init_args.offline=true",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.logger.init_args.project=declip",
    ]  # fmt: skip
    assert main([*FIT, *logger]) == 0
    wandb.finish()
    wandb.teardown()  # stop the wandb service, as the end of the process would: the run file is then complete
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    media = run / "files" / "media"
    for name in ("clipped", "restored", "clean"):
        assert len(list((media / "audio/val/audio" / name).rglob("*.wav"))) == 2  # two examples each
    images = list((media / "images/val/spectrogram").rglob("*.png"))
    assert len(images) == 2 and all(p.stat().st_size > 10_000 for p in images)
    record = next(run.glob("run-*.wandb")).read_bytes()
    assert b"val/delta_sdr" in record and b"val/loss" in record  # the metrics went to the same run


def test_tensorboard_is_the_default_logger_and_gets_the_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*FIT, f"--trainer.default_root_dir={tmp_path}"]) == 0
    (events,) = {p.parent for p in tmp_path.glob("lightning_logs/version_0/events.out.tfevents.*")}
    acc = EventAccumulator(str(events), size_guidance={"audio": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {f"val/audio/{name}/{i}" for name in ("clipped", "restored", "clean") for i in (0, 1)} <= set(tags["audio"])
    assert {"val/spectrogram/0", "val/spectrogram/1"} <= set(tags["images"])
    assert "val/delta_sdr" in tags["scalars"]


def test_spectrogram_figure_shows_the_missing_peaks():
    t = torch.arange(16000) / 16000
    clean = 0.9 * torch.sin(2 * torch.pi * 440 * t)
    clipped = clean.clamp(-0.3, 0.3)
    image = figure_array(spectrogram_figure({"clipped": clipped, "clean": clean}, 16000))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 10  # not a blank canvas
