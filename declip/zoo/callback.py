"""``PushToHub``: publish the best checkpoint of a run on the Hugging Face Hub when training ends."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from declip.errors import ConfigError
from declip.zoo.export import export_checkpoint
from declip.zoo.hub import parse_ref, push


class PushToHub(L.Callback):
    """At the end of ``fit``, export the best checkpoint (of the trainer's ``ModelCheckpoint``; the
    last one when nothing is monitored) and push it to ``repo_id`` in one commit. Rank 0 only.

    Configure it like any callback::

        trainer:
          callbacks:
            - class_path: declip.zoo.PushToHub
              init_args: {repo_id: my-org/my-declipper, revision: main}
    """

    def __init__(self, repo_id: str, revision: str | None = None, private: bool = False) -> None:
        parse_ref(repo_id)
        if "@" in repo_id:
            raise ConfigError(f"PushToHub repo_id takes no @revision; use revision: ({repo_id!r})")
        self.repo_id, self.revision, self.private = repo_id, revision, private
        self.commit: str | None = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        callback = trainer.checkpoint_callback
        path = (callback.best_model_path or callback.last_model_path) if callback is not None else ""
        if not path or not Path(path).is_file():
            raise ConfigError(
                "PushToHub needs a saved checkpoint: keep a ModelCheckpoint callback (save_last or monitor)"
            )
        with tempfile.TemporaryDirectory() as tmp:
            folder = export_checkpoint(path, Path(tmp) / self.repo_id.split("/")[1])
            self.commit = push(folder, self.repo_id, self.revision, self.private, f"Upload {Path(path).name}")
        rank_zero_info(f"pushed {path} to {self.repo_id}@{self.revision or 'main'}: commit {self.commit}")
