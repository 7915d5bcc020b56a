"""Training throughput of ``declip fit`` against a bare PyTorch loop: the Lightning overhead.

    python benchmarks/train_throughput.py --config configs/music.yaml --steps 200 \
        [--set data.init_args.corpus.init_args.root=data/music] [--threads 2] [--device cpu|cuda] [--warmup 10]

Both runs build the same model, optimizer, batch size and data from the config, with the same
seed and thread count, and time the same number of training steps after ``--warmup`` warm-up steps:

1. ``declip fit``: the config through LightningCLI (as the command runs it; validation off, the
   config's callbacks and default logger on, no progress bar), timed by a callback;
2. a bare loop: ``next(loader)``, forward, the losses, backward, ``Adam.step``, nothing else.

The overhead is ``(lightning - bare) / bare`` in wall time per step. The two run one after the
other, so neither slows the other; the loader's workers run in both. On a GPU the clock is read
after ``torch.cuda.synchronize()`` at the first timed step and at the last.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from declip.physics import Clipping
from declip.training import DeclipModule

WARMUP = 10  # steps before the clock starts (--warmup)


def sync() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Wall time from the start of step ``WARMUP`` to the end of the last step."""

    def __init__(self, warmup: int = WARMUP) -> None:
        self.warmup, self.start, self.stop = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            sync()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= trainer.max_steps:
            sync()
            self.stop = time.perf_counter()


def cli(config: str, overrides: list[str], steps: int, root: str, device: str, warmup: int) -> LightningCLI:
    accelerator = "gpu" if device == "cuda" else "cpu"
    args = ["--config", config, *(f"--{o}" for o in overrides), f"--trainer.max_steps={warmup + steps}",
            "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false",
            f"--trainer.accelerator={accelerator}", "--trainer.devices=1",
            f"--trainer.default_root_dir={root}", "--model.lr_schedule=constant"]  # fmt: skip
    return LightningCLI(DeclipModule, L.LightningDataModule, subclass_mode_data=True, run=False, args=args)


def lightning_seconds(config: str, overrides: list[str], steps: int, device: str, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        run = cli(config, overrides, steps, root, device, warmup)
        timer = StepTimer(warmup)
        run.trainer.callbacks.append(timer)
        run.trainer.fit(run.model, run.datamodule)
        return timer.stop - timer.start


def bare_seconds(config: str, overrides: list[str], steps: int, device: str, warmup: int) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as root:
        run = cli(config, overrides, steps, root, device, warmup)  # the same objects, built by the same parser
    module, data = run.model, run.datamodule
    L.seed_everything(run.config.get("seed_everything") or 0)
    data.setup("fit")
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=module.hparams.lr)
    module.train()
    batches = iter(data.train_dataloader())
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            start = time.perf_counter()
        batch = {key: value.to(device, non_blocking=True) for key, value in next(batches).items()}
        physics = Clipping(batch["high"], batch["low"])
        x_net = module.model(batch["y"], physics)
        loss = sum(loss(x_net, batch["y"], physics, module.model, batch.get("x")) for loss in module.losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync()
    return time.perf_counter() - start, module.regime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/music.yaml")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE (repeatable)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--warmup", type=int, default=WARMUP, help="untimed steps before the timed ones")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bare, regime = bare_seconds(args.config, args.set, args.steps, args.device, args.warmup)
    lightning = lightning_seconds(args.config, args.set, args.steps, args.device, args.warmup)
    print(
        f"config: {args.config} ({regime}); {args.steps} steps after {args.warmup} warm-up; "
        f"torch threads {args.threads}; device {args.device}"
    )
    print("| loop | s/step | steps/s |")
    print("|---|---|---|")
    for name, seconds in (("bare PyTorch", bare), ("declip fit (Lightning)", lightning)):
        print(f"| {name} | {seconds / args.steps:.4f} | {args.steps / seconds:.2f} |")
    print(f"Lightning overhead: {100 * (lightning - bare) / bare:+.1f} %")


if __name__ == "__main__":
    main()
