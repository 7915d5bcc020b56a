"""``declip analyze`` and ``declip restore`` on lossy-coded clipped files, in real subprocesses."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from declip.data import ffmpeg
from declip.data.codecs import encode
from declip.inference.analysis import measure_array
from tests.detection.signals import RATE, clipped_at, rich_music


def declip(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "declip", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """A stereo recording clipped at 5 dB input SDR, as an MP3 (128 kbps), an Ogg Vorbis and an AAC (.m4a) file."""
    root = tmp_path_factory.mktemp("coded")
    clipped, theta = clipped_at(rich_music(4.0, 2, 3), 5)
    (root / "shares.json").write_text(json.dumps((np.abs(clipped) >= theta * (1 - 1e-6)).mean(0).tolist()))
    for codec, name in (("mp3", "song.mp3"), ("vorbis", "song.ogg"), ("aac", "song.m4a")):
        data, _ = encode(clipped, RATE, codec, 128)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("name", ["song.mp3", "song.ogg", "song.m4a"])
def test_a_coded_file_is_restored_end_to_end(coded, tmp_path, name):
    out = tmp_path / "out"
    result = declip("restore", coded / name, "-o", f"{out}/")
    assert result.returncode == 0, result.stderr
    assert "hard-clipped, then lossy-coded or filtered (confidence" in result.stdout
    assert "nothing clipped" not in result.stdout
    if name.endswith(".m4a"):  # libsndfile has no AAC: FFmpeg decodes it
        decoded, rate = ffmpeg.decode(coded / name)
    else:
        decoded, rate = sf.read(coded / name, dtype="float32", always_2d=True)
    restored, out_rate = sf.read(out / "song.wav", dtype="float32", always_2d=True)
    assert out_rate == rate and restored.shape == decoded.shape
    y = torch.from_numpy(decoded.T.copy())
    measurement = measure_array(y, rate)
    masks = measurement.physics.masks(measurement.level_view(y))
    assert masks.clipped.any()
    x_hat = torch.from_numpy(restored.T.copy())
    assert torch.equal(x_hat[masks.reliable], y[masks.reliable])
    assert float(x_hat.abs().max()) > float(y.abs().max())  # the clipped peaks were lifted


def test_analyze_reports_text_json_and_a_plot(coded, tmp_path):
    text = declip("analyze", coded / "song.mp3")
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("hard-coded") == 2 and "confidence" in text.stdout and "longest run" in text.stdout
    result = declip("analyze", coded / "song.ogg", "--json", "--plot", tmp_path / "song.png")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["files"]
    assert [c["kind"] for c in report["channels"]] == ["hard-coded", "hard-coded"]
    shares = json.loads((coded / "shares.json").read_text())  # before coding: about half the samples
    for channel, share in zip(report["channels"], shares):
        assert abs(channel["clipped_share"] - share) < 0.05 and channel["longest_run"] > 1
        assert channel["high"] > 0 > channel["low"]
    assert (tmp_path / "song.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aac_files_in_a_folder_are_found_analyzed_and_restored(coded, tmp_path):
    folder = tmp_path / "in"
    (folder / "album").mkdir(parents=True)
    (folder / "album" / "clip.m4a").write_bytes((coded / "song.m4a").read_bytes())
    (folder / "notes.txt").write_text("not audio")
    analyzed = declip("analyze", folder, "--json")
    assert analyzed.returncode == 0, analyzed.stderr
    (report,) = json.loads(analyzed.stdout)["files"]
    assert report["path"].endswith("clip.m4a") and [c["kind"] for c in report["channels"]] == ["hard-coded"] * 2
    restored = declip("restore", folder, "-o", tmp_path / "out")
    assert restored.returncode == 0, restored.stderr
    assert "clip.m4a -> " in restored.stdout and "lossy-coded" in restored.stdout
    assert sf.info(tmp_path / "out" / "album" / "clip.wav").frames == len(ffmpeg.decode(coded / "song.m4a")[0])
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["album", "clip.wav"]  # no temporaries left


def test_adapting_on_an_aac_file_is_refused_with_one_line_and_the_batch_goes_on(coded, tmp_path):
    other = tmp_path / "other.mp3"
    other.write_bytes((coded / "song.mp3").read_bytes())
    result = declip("restore", coded / "song.m4a", other, "--adapt", "2", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "declip: error: " in result.stderr and "--adapt reads WAV, FLAC, Ogg, Opus and MP3 files, not .m4a" in (
        result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["other.wav"]  # the MP3 after it: restored
    assert "other.mp3 -> " in result.stdout
    # clipped, then coded: no plateaus to adapt on, said so, and restored with the coded masks all the same
    assert "not adapted: no plateaus found (adaptation learns from plateaus, which lossy coding smears)" in (
        result.stdout
    )
    assert "then lossy-coded" in result.stdout


def test_adapt_on_coded_files_only_says_why_there_is_nothing_to_adapt_to(coded, tmp_path):
    result = declip("adapt", coded / "song.mp3", coded / "song.ogg", "--steps", "2", "-o", tmp_path / "adapted")
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert "no clipped samples in any of the 2 file(s)" in line and "lossy coding" in line
    assert "declip restore finds it without adapting" in line
    assert not (tmp_path / "adapted").exists()


def test_analyze_gives_the_one_line_messages_restore_gives(tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF garbage")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    clean = tmp_path / "clean.wav"
    sf.write(clean, rich_music(1.0, 1, 5), RATE)
    whole = tmp_path / "whole.flac"
    sf.write(whole, rich_music(2.0, 1, 6), RATE)
    (tmp_path / "truncated.flac").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # opens, then breaks
    bad = [tmp_path / "missing.wav", tmp_path / "corrupt.wav", tmp_path / "empty.wav", tmp_path / "truncated.flac"]
    analyzed = declip("analyze", clean, *bad)
    restored = declip("restore", *bad, "-o", tmp_path / "out")
    assert analyzed.returncode == 1 and restored.returncode == 1
    assert "clean.wav" in analyzed.stdout  # one bad file does not stop the others
    lines = analyzed.stderr.strip().splitlines()
    assert lines == restored.stderr.strip().splitlines()
    for line, reason in zip(lines, ("no such file", "unreadable audio", "no samples")):
        assert line.startswith("declip: error: ") and reason in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_plot_restores_under_the_measurement_analyze_reports(tmp_path, monkeypatch, capsys):
    """``--plot`` draws what the analysis at ``--sensitivity`` found, not what the default sensitivity would find."""
    from declip.cli import analyze

    clipped, _ = clipped_at(rich_music(6.0, 1, 7), 20)
    path = tmp_path / "light.mp3"
    path.write_bytes(encode(clipped, RATE, "mp3", 128)[0])
    seen = []

    def recording(audio, rate, model, measurement, start):
        seen.append(measurement.kinds)
        return audio[:, :rate], audio[:, :rate]

    monkeypatch.setattr(analyze, "restore_excerpt", recording)
    for sensitivity, kind in (("1", "hard-coded"), ("0.01", "none")):
        assert analyze.run_analyze([str(path), "--sensitivity", sensitivity, "--plot", str(tmp_path / "p.png")]) == 0
        assert f"channel 0: {kind} (" in capsys.readouterr().out
        assert seen.pop() == (kind,)
