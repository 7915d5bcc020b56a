"""A callback that records what each training step trained on, and can die mid-run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import lightning as L


class BatchLog(L.Callback):
    """Append ``{"rank", "step", "digest"}`` per training batch to ``folder/rank<r>.jsonl`` (``digest``: a hash
    of the batch's clipped input ``y``); with ``kill_at_step``, the process kills itself (SIGKILL) before
    running that step: no chance to save or clean up, as after a crash or an OOM kill."""

    def __init__(self, folder: str, kill_at_step: int = -1) -> None:
        self.folder, self.kill_at_step = Path(folder), kill_at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(batch["y"].detach().cpu().numpy().tobytes()).hexdigest()[:16]
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps({"rank": trainer.global_rank, "step": trainer.global_step, "digest": digest}) + "\n")


def batches(folder: Path, rank: int = 0) -> dict[int, str]:
    """The digest of each step's batch on ``rank``, by step."""
    path = Path(folder) / f"rank{rank}.jsonl"
    return {r["step"]: r["digest"] for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}
