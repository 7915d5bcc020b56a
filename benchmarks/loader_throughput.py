"""Loader throughput and memory against the model's consumption, for one training config.

    python benchmarks/loader_throughput.py --config configs/music.yaml --batches 400 --steps 20

1. The training loader (the config's workers) alone: segments/s and audio-seconds/s, and the
   resident memory of the loader process and its workers sampled along the way (flat = no
   decoded tracks are kept).
2. The model alone: training steps (forward, backward, Adam) on one batch of the same loader.
The two run one after the other, so neither slows the other on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import yaml

from declip.config import instantiate
from declip.physics import Clipping
from declip.training import DeclipModule


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process and all its descendants (MB), from /proc."""
    pid = os.getpid() if pid is None else pid
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/music.yaml")
    parser.add_argument("--batches", type=int, default=400, help="loader batches to time")
    parser.add_argument("--steps", type=int, default=20, help="training steps to time")
    parser.add_argument("--workers", type=int, default=None, help="override the config's num_workers")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    torch.manual_seed(0)
    data_config = config["data"]
    if args.workers is not None:
        data_config["init_args"]["num_workers"] = args.workers
    data = instantiate(data_config)
    data.setup("fit")
    hp = data.hparams
    loader = data.train_dataloader()
    iterator = iter(loader)
    for _ in range(5):  # start the workers
        batch = next(iterator)
    rss, start = [rss_mb()], time.perf_counter()
    for index in range(args.batches):
        next(iterator)
        if (index + 1) % max(args.batches // 8, 1) == 0:
            rss.append(rss_mb())
    seconds = time.perf_counter() - start
    loader_rate = args.batches * hp.batch_size / seconds
    del iterator

    module = DeclipModule(**config["model"])
    # Adam as configure_optimizers builds it; its cosine schedule needs a Trainer and costs nothing per step
    optimizer = torch.optim.Adam(module.parameters(), lr=module.hparams.lr)
    physics = Clipping(batch["high"], batch["low"])
    for step in range(args.steps + 2):
        if step == 2:
            start = time.perf_counter()
        x_net = module.model(batch["y"], physics)
        loss = sum(loss(x_net, batch["y"], physics, module.model, batch.get("x")) for loss in module.losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model_rate = args.steps * hp.batch_size / (time.perf_counter() - start)

    print(f"config: {args.config}; batch {hp.batch_size} x {hp.segment_seconds} s at {hp.sample_rate} Hz, "
          f"{hp.channels} channel(s); {hp.num_workers} workers; torch threads {torch.get_num_threads()}")  # fmt: skip
    print("| stage | segments/s | audio s/s |")
    print("|---|---|---|")
    print(f"| loader | {loader_rate:.1f} | {loader_rate * hp.segment_seconds:.1f} |")
    print(f"| training step ({module.regime}) | {model_rate:.2f} | {model_rate * hp.segment_seconds:.2f} |")
    print(f"loader / model: {loader_rate / model_rate:.0f}x")
    print("resident memory (MB, loader process + workers) over the run: " + ", ".join(f"{v:.0f}" for v in rss))


if __name__ == "__main__":
    main()
