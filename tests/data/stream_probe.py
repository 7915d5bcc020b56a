"""A callback for DDP runs: each rank records the pieces of its batches, and can die mid-epoch."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning as L


class PieceLog(L.Callback):
    """Append ``{"rank", "step", "pieces"}`` per training batch to ``folder/rank<r>.jsonl``; with
    ``kill_at_step``, every rank kills itself (SIGKILL) before running that step."""

    def __init__(self, folder: str, kill_at_step: int = -1) -> None:
        self.folder, self.kill_at_step = Path(folder), kill_at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"rank": trainer.global_rank, "step": trainer.global_step, "pieces": batch["piece"].tolist()}
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
