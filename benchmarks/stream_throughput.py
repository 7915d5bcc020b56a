"""Streaming loader (litdata chunks over S3) against the local-file loader, and both against the model.

    python benchmarks/stream_throughput.py --root data/music --tracks 8 --batches 120 --workers 1

Takes the first ``--tracks`` train tracks (and one valid track) of a MUSDB-like tree, packs them with
``declip data pack`` into ``--uri`` (default: a bucket on moto's S3 server started on 127.0.0.1, so
the chunks travel over a real S3 API), then times with the config's data settings:

1. the file loader (``MusdbCorpus``, each item seeks and decodes its segment from FLAC files);
2. the streaming loader (``StreamingCorpus``: chunks downloaded to a fresh local cache, then each
   piece decoded from FLAC bytes), from its first batch, so the downloads are counted;
3. the model's training step on one batch (as ``benchmarks/loader_throughput.py``).

Segments/s per worker, and each loader against the model (the target is 20x).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from declip.data import AudioDataModule, MusdbCorpus, StreamingCorpus
from declip.data.pack import pack_corpus
from declip.physics import Clipping
from declip.training import DeclipModule


def subset(root: Path, tracks: int, into: Path) -> Path:
    """A MUSDB-like tree of links to the first ``tracks`` train tracks and the first valid track."""
    for split, count in (("train", tracks), ("valid", 1)):
        for track in sorted(p for p in (root / split).iterdir() if p.is_dir())[:count]:
            (into / split).mkdir(parents=True, exist_ok=True)
            (into / split / track.name).symlink_to(track.resolve())
    return into


def start_s3() -> subprocess.Popen:
    """moto's S3 server on a free loopback port, with a bucket ``bench``; sets the AWS variables."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    import boto3

    for _ in range(300):
        try:
            boto3.session.Session().client("s3").create_bucket(Bucket="bench")
            return server
        except Exception:  # not listening yet
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def loader_rate(data: AudioDataModule, batches: int) -> tuple[float, dict]:
    """Segments/s over ``batches`` batches from the first one (epochs restart as needed)."""
    data.setup("fit")
    loader, done, start, last = data.train_dataloader(), 0, time.perf_counter(), None
    while done < batches:
        for last in loader:  # noqa: B007 (the last batch feeds the model's timing)
            done += 1
            if done == batches:
                break
    return batches * data.hparams.batch_size / (time.perf_counter() - start), last


def model_rate(config: dict, batch: dict, steps: int) -> tuple[float, str]:
    module = DeclipModule(**config["model"])
    optimizer = torch.optim.Adam(module.parameters(), lr=module.hparams.lr)
    physics = Clipping(batch["high"], batch["low"])
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        x_net = module.model(batch["y"], physics)
        loss = sum(loss(x_net, batch["y"], physics, module.model, batch.get("x")) for loss in module.losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch["y"].shape[0] / (time.perf_counter() - start), module.regime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/music", help="a MUSDB-like tree (declip data build music)")
    parser.add_argument("--config", default="configs/music.yaml")
    parser.add_argument("--tracks", type=int, default=8, help="train tracks to pack")
    parser.add_argument("--batches", type=int, default=120, help="loader batches to time")
    parser.add_argument("--steps", type=int, default=10, help="training steps to time")
    parser.add_argument("--workers", type=int, default=1, help="loader workers")
    parser.add_argument("--piece-seconds", type=float, default=4.0, help="packed piece length (default 4)")
    parser.add_argument("--uri", default=None, help="pack into this folder or s3:// URI instead of a local moto")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    settings = {k: v for k, v in config["data"]["init_args"].items() if k != "corpus"}
    settings["num_workers"] = args.workers
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_s3() if args.uri is None else None
        try:
            root = subset(Path(args.root), args.tracks, Path(tmp) / "subset")
            uri = args.uri or "s3://bench/corpus"
            start = time.perf_counter()
            summary = pack_corpus(str(root), uri, piece_seconds=args.piece_seconds, progress=False)
            packing = time.perf_counter() - start
            files, batch = loader_rate(AudioDataModule(MusdbCorpus(str(root), valid_fraction=0), **settings),
                                       args.batches)  # fmt: skip
            corpus = StreamingCorpus(uri, cache_dir=f"{tmp}/cache", max_cache_size="2GB")
            streamed, _ = loader_rate(AudioDataModule(corpus, **settings), args.batches)
        finally:
            if server is not None:
                server.terminate()
    model, regime = model_rate(config, batch, args.steps)
    train = summary["splits"]["train"]
    print(f"config: {args.config}; {args.tracks} train tracks, {train['pieces']} pieces of "
          f"{summary['piece_seconds']} s packed into {uri} in {packing:.1f} s; batch {settings['batch_size']} x "
          f"{settings['segment_seconds']} s at {settings['sample_rate']} Hz; {args.workers} worker(s); "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print("| stage | segments/s | per worker | / model |")
    print("|---|---|---|---|")
    for name, rate in (("file loader (MusdbCorpus)", files), ("streaming loader (StreamingCorpus, S3)", streamed)):
        print(f"| {name} | {rate:.1f} | {rate / args.workers:.1f} | {rate / model:.0f}x |")
    print(f"| training step ({regime}) | {model:.2f} | | |")


if __name__ == "__main__":
    main()
