"""``declip fit|validate|test|predict``: LightningCLI over :class:`DeclipModule` and any DataModule.

Two things differ from a plain LightningCLI: ``--ckpt_path last`` finds the newest ``last.ckpt`` of
earlier runs (Lightning looks only in the new run's own version folder, so after a crash it trained
from step 0), and every checkpoint is read with ``weights_only=True``: a crafted one is refused, never run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from declip.errors import ConfigError
from declip.training import DeclipModule
from declip.training.checkpoint import load_checkpoint, safe_types


class DeclipCLI(LightningCLI):
    """LightningCLI whose subcommands resolve ``--ckpt_path last`` across runs and load no pickled code."""

    def _parse_ckpt_path(self) -> None:  # LightningCLI reads the checkpoint's hyper-parameters while parsing
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            load_checkpoint(ckpt_path)  # one line for a crafted or broken file
        with safe_types():
            super()._parse_ckpt_path()

    def fit(self, model: L.LightningModule, **kwargs: Any) -> None:
        self._run("fit", model, **kwargs)

    def validate(self, model: L.LightningModule, **kwargs: Any) -> None:
        self._run("validate", model, **kwargs)

    def test(self, model: L.LightningModule, **kwargs: Any) -> None:
        self._run("test", model, **kwargs)

    def predict(self, model: L.LightningModule, **kwargs: Any) -> None:
        self._run("predict", model, **kwargs)

    def _run(self, subcommand: str, model: L.LightningModule, ckpt_path: Any = None, **kwargs: Any) -> None:
        if kwargs.pop("weights_only", None) is False:
            raise ConfigError("--weights_only false: declip reads checkpoints without running code; drop the option")
        resolved = self._checkpoint(subcommand, ckpt_path)  # "last" comes back read and checked
        if resolved == ckpt_path and ckpt_path is not None and Path(str(ckpt_path)).is_file():
            load_checkpoint(ckpt_path)  # one line for a crafted or broken file, before the trainer starts
        with safe_types():
            getattr(self.trainer, subcommand)(model, ckpt_path=resolved, weights_only=True, **kwargs)

    def _checkpoint(self, subcommand: str, ckpt_path: Any) -> Any:
        """``last``: the newest ``last*.ckpt`` in the version folders of the logger's directory (or None for
        ``fit`` when there is none: training starts from step 0, said on one line); other values unchanged."""
        if ckpt_path != "last":
            return ckpt_path
        if any(isinstance(c, ModelCheckpoint) and c.dirpath for c in self.trainer.callbacks):
            return ckpt_path  # an explicit dirpath is shared by every run: Lightning finds it there
        logger = self.trainer.logger
        if logger is None:
            root, pattern = Path(self.trainer.default_root_dir), "checkpoints/last*.ckpt"
        else:
            root = Path(getattr(logger, "root_dir", None) or Path(self.trainer.default_root_dir, "lightning_logs"))
            pattern = "*/checkpoints/last*.ckpt"
        found = sorted(root.glob(pattern), key=lambda path: path.stat().st_mtime, reverse=True)
        for path in found:  # a run killed while saving can leave a truncated file: take the newest readable one
            try:
                step = load_checkpoint(path).get("global_step")
            except ConfigError as error:
                print(f"declip: --ckpt_path last: skipping {error}", file=sys.stderr)
                continue
            print(f"declip: --ckpt_path last: resuming from {path} (step {step})", file=sys.stderr)
            return str(path)
        if subcommand != "fit":
            raise ConfigError(f"--ckpt_path last: no last.ckpt under {root}; pass the checkpoint's path")
        print(f"declip: --ckpt_path last: no last.ckpt under {root} yet; training from step 0", file=sys.stderr)
        return None


def run_lightning(args: list[str]) -> None:
    """Run the CLI on ``args`` (``["fit", "--config", ...]``); the DataModule is chosen by class_path."""
    DeclipCLI(
        DeclipModule,
        L.LightningDataModule,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},
        args=None if args == sys.argv[1:] else args,
    )
