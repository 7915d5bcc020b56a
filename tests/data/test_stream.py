"""Packing corpora into litdata chunks and streaming them, from a folder and from a real S3 API
(moto's server on loopback, credentials checked), including a two-process DDP run killed mid-epoch."""

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import soundfile as sf
import torch

import declip.data.pack as pack_module
from declip.data import AudioDataModule, StreamingCorpus
from declip.data.object_store import Location
from declip.data.pack import pack_corpus
from declip.errors import ConfigError
from tests.conftest import music
from tests.data.s3_server import BUCKET, free_port, start_moto

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000


@pytest.fixture(scope="session")
def s3():
    server, aws = start_moto()
    yield aws
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def aws(s3, monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in s3.items():
        monkeypatch.setenv(key, value)
    return s3


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A MUSDB-like tree: 4 train tracks of 3 s (12 pieces of 1 s), 1 valid and 1 test track, stereo FLAC."""
    root = tmp_path_factory.mktemp("tiny") / "musdb"
    for split, count in (("train", 4), ("valid", 1), ("test", 1)):
        for i in range(count):
            track = root / split / f"{split}{i}"
            track.mkdir(parents=True)
            sf.write(track / "mixture.flac", music(3.0, RATE, 2, 10 * len(split) + i), RATE)
    return root


@pytest.fixture(scope="session")
def packed_s3(s3, tiny):
    with mock.patch.dict(os.environ, s3):
        summary = pack_corpus(str(tiny), f"s3://{BUCKET}/tiny", piece_seconds=1.0, pieces_per_chunk=4, progress=False)
    return f"s3://{BUCKET}/tiny", summary


def _module(uri: str, **kwargs) -> AudioDataModule:
    settings = {"sample_rate": RATE, "segment_seconds": 0.25, "batch_size": 4, "val_items": 14, "seed": 3, **kwargs}
    return AudioDataModule(StreamingCorpus(uri, cache_dir=settings.pop("cache_dir", None)), **settings)


def _epoch(loader) -> list[dict]:
    return [{k: v.clone() for k, v in batch.items()} for batch in loader]


def test_pack_to_s3_keeps_the_track_splits_and_a_second_run_does_nothing(packed_s3, tiny, aws, monkeypatch):
    uri, summary = packed_s3
    assert {k: v["tracks"] for k, v in summary["splits"].items()} == {
        "train": [f"train/train{i}" for i in range(4)], "valid": ["valid/valid0"], "test": ["test/test0"],
    }  # fmt: skip
    assert [summary["splits"][s]["pieces"] for s in ("train", "valid", "test")] == [12, 3, 3]
    location = Location(uri)
    chunks = [c["filename"] for c in location.read_json("train/index.json")["chunks"]]
    assert chunks == ["chunk-0-0.bin", "chunk-0-1.bin", "chunk-0-2.bin"]
    for name in chunks:
        assert location.client.head_object(Bucket=BUCKET, Key=f"tiny/train/{name}")["ContentLength"] > 1000
    writes = []
    monkeypatch.setattr(Location, "put_file", lambda self, local, name: writes.append(name))
    monkeypatch.setattr(Location, "write_json", lambda self, name, value: writes.append(name))
    assert pack_corpus(str(tiny), uri, piece_seconds=1.0, pieces_per_chunk=4, progress=False) == summary
    assert writes == []
    with pytest.raises(ConfigError, match="already holds another pack"):
        pack_corpus(str(tiny), uri, piece_seconds=0.5, pieces_per_chunk=4, progress=False)


def test_an_interrupted_pack_resumes_at_the_next_chunk(tiny, aws, monkeypatch, tmp_path):
    encode, calls = pack_module.encode_piece, []

    def failing(x, rate):
        calls.append(1)
        if len(calls) == 7:  # in the second chunk of train
            raise KeyboardInterrupt
        return encode(x, rate)

    monkeypatch.setattr(pack_module, "encode_piece", failing)
    uri = f"s3://{BUCKET}/resumed"
    with pytest.raises(KeyboardInterrupt):
        pack_corpus(str(tiny), uri, piece_seconds=1.0, pieces_per_chunk=4, progress=False)
    assert Location(uri).read_json("declip-pack.json") is None
    calls.clear()
    monkeypatch.setattr(pack_module, "encode_piece", lambda x, rate: calls.append(1) or encode(x, rate))
    summary = pack_corpus(str(tiny), uri, piece_seconds=1.0, pieces_per_chunk=4, progress=False)
    assert len(calls) == 12 - 4 + 3 + 3  # the first train chunk was kept
    fresh = pack_corpus(str(tiny), str(tmp_path / "fresh"), piece_seconds=1.0, pieces_per_chunk=4, progress=False)
    assert summary["splits"] == fresh["splits"]
    assert Location(uri).read_json("train/index.json") == json.loads((tmp_path / "fresh/train/index.json").read_text())


def test_streamed_items_are_seeded_clipped_and_visit_each_piece_once_per_epoch(tiny, tmp_path):
    out = str(tmp_path / "packed")
    pack_corpus(str(tiny), out, piece_seconds=1.0, pieces_per_chunk=4, progress=False)
    module, again = _module(out), _module(out)
    module.setup("fit"), again.setup("fit")
    loader = module.train_dataloader()  # Lightning iterates one loader, epoch after epoch
    first, repeat = _epoch(loader), _epoch(again.train_dataloader())
    pieces = torch.cat([b["piece"] for b in first])
    assert sorted(pieces.tolist()) == list(range(12))
    for a, b in zip(first, repeat):
        assert torch.equal(a["y"], b["y"]) and torch.equal(a["piece"], b["piece"])
    batch = first[0]
    assert torch.equal(batch["y"], torch.clamp(batch["x"], batch["low"], batch["high"]))
    assert ((batch["input_sdr"] > 0.9) & (batch["input_sdr"] < 20.1)).all()
    assert batch["y"].shape == (4, 1, 4000)
    second = _epoch(loader)  # a new epoch: every piece again, other segments
    assert sorted(torch.cat([b["piece"] for b in second]).tolist()) == list(range(12))
    assert not torch.equal(torch.cat([b["x"] for b in first]), torch.cat([b["x"] for b in second]))


def test_silent_pieces_are_left_out_and_silent_draws_redrawn(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(5):
        x = music(2.0, RATE, 1, i)
        x[: int(1.7 * RATE)] = 0  # the first piece silent, most of the second too
        sf.write(folder / f"song{i}.wav", x, RATE)
    summary = pack_corpus(str(folder), str(tmp_path / "packed"), piece_seconds=1.0, progress=False)
    assert summary["splits"]["train"]["silent_pieces"] == len(summary["splits"]["train"]["tracks"])
    module = _module(str(tmp_path / "packed"), segment_seconds=0.1, batch_size=1)
    module.setup("fit")
    for batch in module.train_dataloader():
        assert 10 * torch.log10(batch["x"].pow(2).mean()) > -50


def test_evaluation_items_are_the_same_in_every_run_and_cycle_the_levels(packed_s3, aws, tmp_path):
    uri, _ = packed_s3
    items = []
    for run in range(2):
        module = _module(uri, cache_dir=str(tmp_path / f"cache{run}"))
        module.setup("fit")
        items.append([b for b in module.val_dataloader()])
    sdrs = torch.cat([b["input_sdr"] for b in items[0]])
    assert torch.allclose(sdrs, torch.tensor([1.0, 3, 5, 7, 10, 15, 20] * 2), atol=1e-3)
    assert torch.equal(torch.cat([b["y"] for b in items[0]]), torch.cat([b["y"] for b in items[1]]))
    assert torch.cat([b["piece"] for b in items[0]]).tolist() == [0] * 7 + [1] * 7


def test_streaming_from_s3_keeps_the_local_cache_within_its_bound(packed_s3, aws, tmp_path):
    uri, _ = packed_s3
    module = _module(uri, cache_dir=str(tmp_path / "cache"))
    module.corpus.max_cache_size = "200KB"
    module.setup("fit")
    sizes = []
    for _ in module.train_dataloader():
        sizes.append(sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.bin")))
    biggest = max(c["chunk_bytes"] for c in Location(uri).read_json("train/index.json")["chunks"])
    assert len(sizes) == 3 and max(sizes) <= 200_000 + biggest


@pytest.mark.parametrize(
    "case, uri, env, message",
    [
        ("bad uri", "gs://bucket/corpus", {}, "not a folder or an s3://bucket/prefix URI"),
        ("missing bucket", "s3://no-such-bucket/corpus", {}, "the bucket 'no-such-bucket' does not exist"),
        ("wrong credentials", f"s3://{BUCKET}/tiny", {"AWS_SECRET_ACCESS_KEY": "wrong"}, "refused the credentials"),
        ("unreachable", f"s3://{BUCKET}/tiny", {"AWS_ENDPOINT_URL": "closed"}, "cannot reach the object store"),
    ],
)
def test_storage_mistakes_give_one_clear_line(case, uri, env, message, aws, tiny, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, f"http://127.0.0.1:{free_port()}" if value == "closed" else value)
    with pytest.raises(ConfigError, match=message):
        StreamingCorpus(uri).load()
    result = subprocess.run(
        [sys.executable, "-m", "declip", "data", "pack", str(tiny), "--out", uri],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("declip: error: ") and message in lines[0] and uri.split("/")[2] in lines[0]


CONFIG = """
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 2
  strategy: ddp
  enable_progress_bar: false
  num_sanity_val_steps: 0
  limit_val_batches: 0
  logger: false
model:
  backbone: {{class_path: declip.models.UNet, init_args: {{channels: 1, widths: [4, 8]}}}}
  losses: [{{class_path: declip.losses.MCLoss}}]
  sample_rate: 16000
data:
  class_path: declip.data.AudioDataModule
  init_args:
    corpus: {{class_path: declip.data.StreamingCorpus, init_args: {{uri: "{uri}", cache_dir: "{cache}"}}}}
    sample_rate: 16000
    segment_seconds: 0.256
    clean_targets: false
    batch_size: 2
    num_workers: 1
"""


def _fit(config: Path, tmp_path: Path, log: str, kill_at_step: int, *extra: str) -> subprocess.CompletedProcess:
    callbacks = (
        "[{class_path: lightning.pytorch.callbacks.ModelCheckpoint, init_args: "
        f"{{dirpath: {tmp_path / 'ckpt'}, every_n_train_steps: 1, save_last: true, save_top_k: 0}}}}, "
        f"{{class_path: tests.data.stream_probe.PieceLog, init_args: {{folder: {tmp_path / log}, "
        f"kill_at_step: {kill_at_step}}}}}]"
    )
    command = [
        sys.executable,
        "-m",
        "declip",
        "fit",
        "--config",
        str(config),
        f"--trainer.callbacks={callbacks}",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)


def _pieces(folder: Path) -> dict[int, list[tuple[int, list[int]]]]:
    lines = [line for path in sorted(folder.glob("rank*.jsonl")) for line in path.read_text().splitlines()]
    records = [json.loads(line) for line in lines]
    return {rank: [(r["step"], r["pieces"]) for r in records if r["rank"] == rank] for rank in (0, 1)}


def test_two_process_ddp_reads_disjoint_pieces_and_resumes_mid_epoch_after_a_kill(packed_s3, aws, tmp_path):
    uri, summary = packed_s3
    config = tmp_path / "stream.yaml"
    config.write_text(CONFIG.format(uri=uri, cache=tmp_path / "cache"))
    # 12 train pieces, 2 ranks, batches of 2: 3 steps an epoch; every rank dies before step 2
    killed = _fit(config, tmp_path, "run1", 2, "--trainer.max_steps=100")
    assert killed.returncode != 0 and (tmp_path / "ckpt/last.ckpt").exists(), killed.stderr[-3000:]
    assert torch.load(tmp_path / "ckpt/last.ckpt", weights_only=False)["global_step"] == 2
    resumed = _fit(config, tmp_path, "run2", -1, "--trainer.max_steps=3", f"--ckpt_path={tmp_path / 'ckpt/last.ckpt'}")
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "distributed_backend=gloo" in output
    before, after = _pieces(tmp_path / "run1"), _pieces(tmp_path / "run2")
    per_rank = {}
    for rank in (0, 1):
        assert [step for step, _ in before[rank]] == [0, 1] and [step for step, _ in after[rank]] == [2]
        pieces = [p for _, batch in before[rank] + after[rank] for p in batch]
        assert len(pieces) == len(set(pieces)) == 6  # nothing repeated after the resumption
        per_rank[rank] = set(pieces)
    assert not per_rank[0] & per_rank[1]
    assert per_rank[0] | per_rank[1] == set(range(summary["splits"]["train"]["pieces"]))
