import json
import logging
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from declip.data import AudioDataModule, ClipLevels, ClippedSegments, FolderCorpus, MusdbCorpus, find_audio, probe
from declip.data.audio_files import NO_AUDIO, find_inputs
from declip.data.segments import read_segment
from declip.data.splits import split_tracks
from declip.errors import ConfigError
from tests.conftest import music as _music


@pytest.fixture
def corpus(tmp_path):
    """Mixed formats, rates and channel counts, a zip archive, and bad files."""
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    for i in range(6):
        sf.write(root / "a" / f"track{i}.wav", _music(2.0, 16000, 1, i), 16000)
    sf.write(root / "stereo.flac", _music(1.5, 22050, 2, 10), 22050)
    sf.write(root / "vorbis.ogg", _music(1.5, 16000, 1, 11), 16000)
    sf.write(root / "speech.opus", _music(1.5, 16000, 1, 14), 16000, format="OGG", subtype="OPUS")
    sf.write(root / "song.mp3", _music(1.5, 16000, 2, 15), 16000, format="MP3", subtype="MPEG_LAYER_III")
    sf.write(root / "short.wav", _music(0.1, 16000, 1, 12), 16000)
    sf.write(root / "silent.wav", np.zeros((16000, 1), np.float32), 16000)
    sf.write(tmp_path / "zipped.wav", _music(2.0, 16000, 1, 13), 16000)
    with zipfile.ZipFile(root / "music.pk3", "w") as archive:
        archive.write(tmp_path / "zipped.wav", "sounds/zipped.wav")
        archive.writestr("readme.txt", "not audio")
    (root / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (root / "empty.flac").write_bytes(b"")
    (root / "notes.txt").write_text("ignored")
    return root


def test_find_audio_lists_files_and_archive_members(corpus):
    names = [s.name for s in find_audio([corpus])]
    assert f"{corpus}/music.pk3::sounds/zipped.wav" in names
    assert f"{corpus}/vorbis.ogg" in names and f"{corpus}/a/track0.wav" in names
    assert f"{corpus}/speech.opus" in names and f"{corpus}/song.mp3" in names
    assert not any(n.endswith(".txt") for n in names)
    with pytest.raises(FileNotFoundError, match="missing"):
        find_audio([corpus / "missing"])


def test_find_inputs_names_files_below_their_folder_and_each_path_that_fails(corpus, tmp_path):
    (tmp_path / "empty").mkdir()
    found, failures = find_inputs([corpus, corpus / "notes.txt", tmp_path / "missing", tmp_path / "empty"])
    names = {str(relative): source.name for source, relative in found}
    assert names["a/track0.wav"] == f"{corpus}/a/track0.wav"
    assert names["music.pk3/sounds/zipped.wav"] == f"{corpus}/music.pk3::sounds/zipped.wav"
    assert names["notes.txt"] == f"{corpus}/notes.txt"  # a file given by name is taken, whatever its suffix
    assert failures == [(str(tmp_path / "missing"), "no such file or folder"), (str(tmp_path / "empty"), NO_AUDIO)]
    files, _ = find_inputs([corpus], archives=False)  # restore reads files, not archive members
    plain = [name for name in names if name not in ("notes.txt", "music.pk3/sounds/zipped.wav")]
    assert [str(relative) for _, relative in files] == plain


def test_probe_skips_corrupt_and_empty_files_with_one_warning_each(corpus, caplog):
    with caplog.at_level(logging.WARNING):
        infos = {s.name: probe(s) for s in find_audio([corpus])}
    assert infos[f"{corpus}/corrupt.wav"] is None and infos[f"{corpus}/empty.flac"] is None
    assert sum("corrupt.wav" in r.message for r in caplog.records) == 1
    zipped = infos[f"{corpus}/music.pk3::sounds/zipped.wav"]
    assert zipped.frames == 32000 and zipped.sample_rate == 16000


def test_read_segment_reads_only_the_requested_samples_and_pads(corpus):
    info = probe(find_audio([corpus / "a/track1.wav"])[0])
    full, _ = sf.read(corpus / "a/track1.wav", dtype="float32", always_2d=True)
    seg = read_segment(info, 1000, 500)
    assert torch.equal(seg, torch.from_numpy(full[1000:1500].T))
    tail = read_segment(info, 31900, 500)
    assert torch.equal(tail[:, 100:], torch.zeros(1, 400))


@pytest.mark.parametrize("name", ["stereo.flac", "vorbis.ogg", "speech.opus", "song.mp3"])
def test_partial_reads_of_compressed_formats_match_a_full_decode(corpus, name):
    info = probe(find_audio([corpus / name])[0])
    full, _ = sf.read(corpus / name, dtype="float32", always_2d=True)
    start = info.frames // 3
    seg = read_segment(info, start, 2000)
    assert torch.allclose(seg, torch.from_numpy(full[start : start + 2000].T), atol=1e-4)


def test_split_is_by_track_seeded_and_disjoint():
    names = [f"t{i}" for i in range(20)]
    a = split_tracks(names, (0.8, 0.1, 0.1), seed=3)
    assert a == split_tracks(list(reversed(names)), (0.8, 0.1, 0.1), seed=3)
    assert a != split_tracks(names, (0.8, 0.1, 0.1), seed=4)
    assert sorted(a["train"] + a["valid"] + a["test"]) == sorted(names)
    assert len(a["valid"]) == 2 and len(a["test"]) == 2


def _module(corpus, manifest=None, **kwargs):
    options = dict(sample_rate=8000, segment_seconds=0.25, batch_size=4, val_items=8, test_items=8, train_items=16)
    folder = FolderCorpus([str(corpus)], split=(0.6, 0.2, 0.2), manifest=manifest)
    dm = AudioDataModule(folder, **{**options, **kwargs})
    dm.setup("fit")
    return dm


def test_datamodule_streams_clipped_segments_and_records_the_split(corpus):
    dm = _module(corpus, channels=2)
    manifest = json.loads((corpus / "declip-split.json").read_text())
    train, valid = set(manifest["splits"]["train"]), set(manifest["splits"]["valid"])
    assert not train & valid and not train & set(manifest["splits"]["test"])
    assert not any("corrupt" in n or "empty" in n for n in train | valid)
    batch = next(iter(dm.train_dataloader()))
    assert batch["y"].shape == (4, 2, 2000) and batch["x"].shape == (4, 2, 2000)
    assert torch.equal(batch["y"], torch.clamp(batch["x"], batch["low"], batch["high"]))
    assert (batch["input_sdr"] >= 0.99).all() and (batch["input_sdr"] <= 20.01).all()
    assert batch["x"].abs().amax() > 0


def test_validation_segments_are_identical_across_runs_and_workers(corpus):
    def everything(dm):
        batches = list(dm.val_dataloader())
        return {k: torch.cat([b[k] for b in batches]) for k in ("x", "y", "input_sdr")}

    a, b = everything(_module(corpus)), everything(_module(corpus, num_workers=2))
    assert all(torch.equal(a[k], b[k]) for k in a) and len(a["x"]) == 8
    assert torch.allclose(a["input_sdr"][:4], torch.tensor([1.0, 3.0, 5.0, 7.0]), atol=0.01)


def test_every_validation_track_is_scored_at_every_level(corpus):
    dm = _module(corpus, val_items=14, levels=(1.0, 10.0))
    dataset = dm.val_dataloader().dataset
    pairs = [(dataset[i]["x"], round(float(dataset[i]["input_sdr"]))) for i in range(4)]
    assert [level for _, level in pairs] == [1, 10, 1, 10]
    assert torch.equal(pairs[0][0], pairs[1][0]) and not torch.equal(pairs[0][0], pairs[2][0])


def test_self_supervised_training_batches_can_omit_the_clean_signal(corpus):
    batch = next(iter(_module(corpus, clean_targets=False).train_dataloader()))
    assert "x" not in batch and batch["y"].shape == (4, 1, 2000)


def test_a_corpus_without_usable_audio_fails_at_setup_naming_the_path(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(ConfigError, match=str(tmp_path)):
        _module(tmp_path)
    with pytest.raises(ConfigError, match="nowhere"):
        _module(tmp_path / "nowhere")


def test_fit_on_an_audio_folder_through_the_cli(corpus, tmp_path, monkeypatch):
    from declip.cli import main

    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--model.backbone=declip.models.UNet",
        "--model.backbone.init_args.widths=[4, 8]",
        "--model.losses=declip.losses.MCLoss",
        "--model.sample_rate=8000",
        "--data=declip.data.AudioDataModule",
        "--data.init_args.corpus=declip.data.FolderCorpus",
        f"--data.init_args.corpus.init_args.paths=[{corpus}]",
        "--data.init_args.corpus.init_args.split=[0.6, 0.2, 0.2]",
        f"--data.init_args.corpus.init_args.manifest={tmp_path / 'split.json'}",
        "--data.init_args.sample_rate=8000",
        "--data.init_args.segment_seconds=0.25",
        "--data.init_args.batch_size=2",
        "--data.init_args.clean_targets=false",
        "--trainer.fast_dev_run=2",
    ]
    assert main(args) == 0
    assert (tmp_path / "split.json").exists() and not (corpus / "declip-split.json").exists()


def test_musdb_tree_splits_valid_from_train_by_track(musdb):
    tracks = MusdbCorpus(str(musdb), valid_fraction=0.25).load()
    assert [len(tracks[s]) for s in ("train", "valid", "test")] == [3, 1, 1]
    assert set(tracks["train"][0].stems) == {"drums", "bass", "mixture"}
    assert tracks["valid"][0].name not in {t.name for t in tracks["train"]}
    assert (musdb / "declip-split.json").exists()
    with pytest.raises(ConfigError, match="not a MUSDB-like tree"):
        MusdbCorpus(str(musdb / "train")).load()


@pytest.mark.parametrize("source", ["mixture", "remix"])
def test_musdb_training_on_mixtures_or_remixed_stems(musdb, source):
    dm = AudioDataModule(
        MusdbCorpus(str(musdb), source=source, valid_fraction=0.25), sample_rate=16000, channels=2,
        segment_seconds=0.5, batch_size=8, train_items=8, gain_db_range=(0.0, 0.0),
    )  # fmt: skip
    dm.setup("fit")
    x = next(iter(dm.train_dataloader()))["x"]
    mixtures = [sf.read(musdb / t.name / "mixture.wav", dtype="float32")[0].T for t in dm.tracks["train"]]

    def found_in_a_mixture(segment):
        return any(
            np.allclose(m[:, s : s + 8000], segment, atol=1e-6) for m in mixtures for s in range(0, 32000 - 8000 + 1)
        )

    hits = [found_in_a_mixture(seg.numpy()) for seg in x[:2]]
    assert all(hits) if source == "mixture" else not any(hits)


def test_each_ddp_rank_gets_distinct_training_items(corpus):
    from torch.utils.data import DistributedSampler

    dataset = _module(corpus).train_dataloader().dataset
    ranks = [list(DistributedSampler(dataset, num_replicas=2, rank=r, shuffle=True, seed=0)) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and len(ranks[0]) + len(ranks[1]) == len(dataset)
    items = [dataset[i]["x"] for i in ranks[0][:2] + ranks[1][:2]]
    assert all(not torch.equal(a, b) for i, a in enumerate(items) for b in items[i + 1 :])


def test_training_segments_are_fresh_each_epoch_and_the_same_whatever_the_workers(corpus):
    def two_epochs(num_workers: int, global_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)  # the segments depend on the data's seed alone
        loader = _module(corpus, num_workers=num_workers, train_items=8).train_dataloader()
        return [torch.cat([b["x"] for b in loader]) for _ in range(2)]

    first, second = two_epochs(num_workers=2, global_seed=0)
    assert not torch.equal(first, second)
    again = two_epochs(num_workers=0, global_seed=1)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])


def test_a_track_shorter_than_a_segment_is_zero_padded(tmp_path):
    sf.write(tmp_path / "short.wav", _music(0.1, 8000, 1, 0), 8000)
    (track,) = FolderCorpus([str(tmp_path)], split=(0.0, 1.0, 0.0)).load()["valid"]
    for fixed in (True, False):
        segments = ClippedSegments([track], 4000, 8000, 1, ClipLevels(fixed_sdrs=[5.0]), 2, seed=0, fixed=fixed)
        x = segments[1]["x"]
        assert x.shape == (1, 4000)
        assert x[:, :800].abs().amax() > 0 and torch.equal(x[:, 820:], torch.zeros(1, 3180))


def test_source_files_are_only_read(corpus):
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in corpus.rglob("*") if p.is_file()}
    dm = _module(corpus, manifest=str(corpus.parent / "split.json"))
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        next(iter(loader))
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in corpus.rglob("*") if p.is_file()}
    assert after == before


def test_a_musdb_folder_without_audio_is_skipped_with_a_warning(musdb, caplog):
    (musdb / "train" / "artwork").mkdir()
    (musdb / "train" / "artwork" / "cover.jpg").write_bytes(b"\xff\xd8")
    with caplog.at_level(logging.WARNING):
        tracks = MusdbCorpus(str(musdb), valid_fraction=0.25).load()
    assert len(tracks["train"]) + len(tracks["valid"]) == 4
    assert any("artwork" in r.message for r in caplog.records)


def test_testing_without_test_tracks_is_refused(musdb):
    dm = AudioDataModule(MusdbCorpus(str(musdb), valid_fraction=0.25), sample_rate=16000)
    dm.setup("test")
    dm.tracks["test"] = []
    with pytest.raises(ConfigError, match="no test track"):
        dm.test_dataloader()


def test_channel_counts_other_than_mono_or_stereo_are_refused(musdb):
    with pytest.raises(ConfigError, match="channels"):
        AudioDataModule(MusdbCorpus(str(musdb)), channels=6)
