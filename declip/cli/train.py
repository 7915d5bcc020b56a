"""``declip fit|validate|test|predict``: LightningCLI over :class:`DeclipModule` and any DataModule."""

from __future__ import annotations

import sys

import lightning as L
from lightning.pytorch.cli import LightningCLI

from declip.training import DeclipModule


def run_lightning(args: list[str]) -> None:
    """Run LightningCLI on ``args`` (``["fit", "--config", ...]``); the DataModule is chosen by class_path."""
    LightningCLI(
        DeclipModule,
        L.LightningDataModule,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},
        args=None if args == sys.argv[1:] else args,
    )
