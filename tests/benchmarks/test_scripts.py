"""Every script in benchmarks/ runs end to end as a subprocess on tiny inputs, and what it prints is sane.

These are smoke tests: a few steps, seconds of audio, a corpus written here. They check that the
commands behind the numbers in docs/ still run and that the printed tables hold finite numbers in
the right rows, never how fast anything is. A new script in benchmarks/ needs a test here, marked
``@smoke("name.py")``; ``test_every_benchmark_script_has_a_smoke_test`` fails until it has one.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml

from declip.errors import ConfigError
from declip.inference.overrides import overridden, parse_overrides
from declip.zoo import load_model
from tests.sandbox import RATE, music_corpus, sqam_excerpts, tones

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
LEVELS = ["1", "3", "5", "7", "10", "15", "20"]
SMOKE: dict[str, Callable] = {}


def smoke(script: str) -> Callable[[Callable], Callable]:
    """Register the decorated test as the smoke test of ``benchmarks/<script>``."""

    def register(test: Callable) -> Callable:
        SMOKE[script] = test
        return test

    return register


def run(script: str, *args: object, cwd: Path, timeout: int = 300) -> str:
    """Run ``benchmarks/<script>`` with ``args``; its stdout (fails with its stderr when it fails)."""
    command = [sys.executable, str(BENCHMARKS / script), *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return result.stdout


def table(text: str, first_header: str) -> list[list[str]]:
    """The rows (cells, stripped) of the markdown table whose header row starts with ``| first_header |``."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")), None)
    assert start is not None, f"no table headed {first_header!r} in:\n{text}"
    assert set(lines[start + 1].replace("|", "")) == {"-"}, "the header is not followed by a rule"
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def number(cell: str) -> float:
    """A table cell as a float (``12.3x`` and ``+4.5`` read too); fails on anything not finite."""
    value = float(cell.strip().removesuffix("x").removesuffix("×"))
    assert math.isfinite(value), cell
    return value


def test_every_benchmark_script_has_a_smoke_test():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")}
    missing, stale = sorted(scripts - set(SMOKE)), sorted(set(SMOKE) - scripts)
    assert not missing, f"benchmarks/ scripts without a smoke test: {missing}; add one to {Path(__file__).name}"
    assert not stale, f"smoke tests of scripts that are gone from benchmarks/: {stale}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A MUSDB-like corpus: 2 train, 1 valid and 2 test tracks of 2 s (44.1 kHz stereo FLAC)."""
    root = tmp_path_factory.mktemp("corpus") / "music"
    tracks = {"train": ["t0", "t1"], "valid": ["v0"], "test": ["e0", "e1"]}
    return music_corpus(root, tracks)


def music_config(tmp_path: Path, corpus: Path, name: str = "music.yaml") -> Path:
    """``configs/<name>`` reading ``corpus`` with one loader worker."""
    config = yaml.safe_load((ROOT / "configs" / name).read_text())
    config["data"]["init_args"]["corpus"]["init_args"]["root"] = str(corpus)
    config["data"]["init_args"]["num_workers"] = 1
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@smoke("loader_throughput.py")
def test_loader_throughput(tmp_path, corpus):
    out = run("loader_throughput.py", "--config", music_config(tmp_path, corpus), "--batches", 4, "--steps", 1,
              cwd=tmp_path)  # fmt: skip
    rows = {row[0]: [number(cell) for cell in row[1:]] for row in table(out, "stage")}
    assert set(rows) == {"loader", "training step (mc+ei)"}
    for segments, audio in rows.values():
        assert segments > 0 and audio == pytest.approx(segments * 0.3715, rel=0.02, abs=0.01)
    ratio = float(re.search(r"loader / model: (\d+)x", out).group(1))
    assert ratio == pytest.approx(rows["loader"][0] / rows["training step (mc+ei)"][0], rel=0.05, abs=1)
    memory = [float(v) for v in re.search(r"over the run: (.*)", out).group(1).split(", ")]
    assert len(memory) == 5 and all(100 < v < 100_000 for v in memory)  # once before, then after each batch


@smoke("train_throughput.py")
def test_train_throughput(tmp_path, corpus):
    out = run("train_throughput.py", "--config", ROOT / "configs/music.yaml", "--steps", 2, "--warmup", 1,
              "--set", f"data.init_args.corpus.init_args.root={corpus}", "--set", "data.init_args.num_workers=0",
              "--set", "model.backbone.init_args.widths=[8,16,32]", cwd=tmp_path)  # fmt: skip
    assert "(mc+ei); 2 steps after 1 warm-up" in out
    rows = {row[0]: [number(cell) for cell in row[1:]] for row in table(out, "loop")}
    assert set(rows) == {"bare PyTorch", "declip fit (Lightning)"}
    for per_step, per_second in rows.values():
        assert per_step > 0 and per_step * per_second == pytest.approx(1, rel=0.05)
    overhead = float(re.search(r"Lightning overhead: ([+-][\d.]+) %", out).group(1))
    bare, lightning = rows["bare PyTorch"][0], rows["declip fit (Lightning)"][0]
    assert overhead == pytest.approx(100 * (lightning - bare) / bare, abs=0.5 + 0.1 * abs(overhead))


@smoke("synthetic_experiment.py")
def test_synthetic_experiment(tmp_path):
    regimes = ["mc", "mc+ei-lam1"]
    out = run("synthetic_experiment.py", "--runs", tmp_path / "runs", "--steps", 2, "--regimes", *regimes,
              "--test-size", 70, "--model.backbone.init_args.hidden=32", "--data.init_args.val_size=8",
              cwd=tmp_path)  # fmt: skip
    overall, clipped = out.split("clipped samples only")
    for text in (overall, clipped):
        rows = table(text, "regime")
        assert [row[0] for row in rows] == regimes
        for row in rows:
            values = [number(cell) for cell in row[1:]]
            assert len(values) == 8 and all(-60 < v < 60 for v in values)
            # 10 test signals per level: the overall mean is the mean of the levels' means
            assert values[-1] == pytest.approx(sum(values[:-1]) / 7, abs=0.01)
    derived = yaml.safe_load((tmp_path / "runs/mcei-lam1/config.yaml").read_text())
    assert derived["model"]["losses"][1]["init_args"]["weight"] == 1.0  # the ablation's λ reached its run


@smoke("music_eval.py")
def test_music_eval(tmp_path, corpus):
    out = run("music_eval.py", "--root", corpus, "--test-items", 14, "--json", tmp_path / "scores.json",
              "--run", f"reclip={ROOT}/configs/music-reclip-only.yaml:unet-music-reclip",
              "--run", f"supervised={ROOT}/configs/music-supervised.yaml:unet-music-supervised",
              cwd=tmp_path)  # fmt: skip
    rows = table(out, "model")
    assert [row[0] for row in rows] == ["reclip", "supervised"]
    scores = json.loads((tmp_path / "scores.json").read_text())
    for name, steps, *cells in rows:
        assert int(steps) > 0  # the zoo card's training step
        values = [number(cell) for cell in cells]
        assert len(values) == 8 and all(-30 < v < 60 for v in values)
        assert scores[name] == dict(zip([*LEVELS, "mean"], values))


@smoke("restore_speed.py")
def test_restore_speed(tmp_path):
    out = run("restore_speed.py", "--minutes", 0.5, "--repeat", 2, "--precision", "fp32", cwd=tmp_path)
    rows = table(out, "audio (min)")
    assert [row[1] for row in rows] == ["1", "2"]
    for minutes, _, precision, wall, factor, peak in rows:
        assert precision == "fp32" and number(minutes) == 0.5  # 10-s tones, looped to 30 s
        assert number(factor) == pytest.approx(30 / number(wall), rel=0.05)
        assert 100 < number(peak) < 100_000
    source = tmp_path / "source.wav"
    sf.write(source, tones(4.0, 2, 3, rate=44100), 44100)
    out = run("restore_speed.py", "--source", source, cwd=tmp_path)  # the source once
    (row,) = table(out, "audio (min)")
    assert number(row[4]) == pytest.approx(4 / number(row[3]), rel=0.05)
    out = run("restore_speed.py", "--source", source, "--minutes", 0.1, 0.05, cwd=tmp_path)  # looped, then cut
    assert [number(r[4]) * number(r[3]) for r in table(out, "audio (min)")] == pytest.approx([6, 3], rel=0.05)
    unfolded = ("--model", "unfolded-music-reclip", "--override", "probe_iterations=0", "--choose", "eps=0.5")
    out = run("restore_speed.py", "--source", source, "--minutes", 0.02, "--input-sdr", 20, *unfolded, cwd=tmp_path)
    assert len(table(out, "audio (min)")) == 1
    assert re.search(r"^\((kept the model's setting|chose eps=0.5) by re-clipping 1.2 s at 0.0 s ", out, re.M), out
    out = run("restore_speed.py", "--network", "--chunk-seconds", 0.5, "--batch-size", 2, cwd=tmp_path)
    found = re.search(r"network only: 2 windows of 0.5 s .* ([\d.]+) ms per batch, (\d+)x real time", out)
    assert found, out
    milliseconds, factor = float(found.group(1)), float(found.group(2))
    assert milliseconds > 0 and factor == pytest.approx(2 * 0.5 / 2 / (milliseconds / 1000), rel=0.05, abs=1)


@smoke("adapt_sqam.py")
def test_adapt_sqam(tmp_path):
    data = sqam_excerpts(tmp_path / "sqam", files=1)
    out = run("adapt_sqam.py", "--data", data, "--steps", 2, "--levels", "1,20", "--json", tmp_path / "out.json",
              cwd=tmp_path)  # fmt: skip
    rows = table(out, "input SDR (dB)")
    assert [row[0] for row in rows] == ["1", "20"]
    assert [number(row[3]) for row in rows] == [11.88, 20.27]  # the published A-SPADE means
    scores = json.loads((tmp_path / "out.json").read_text())
    for level, base, adapted, _, seconds in rows:
        assert -30 < number(base) < 60 and -30 < number(adapted) < 60 and number(seconds) > 0
        (saved,) = scores[f"{float(level)}"]["base"]  # one excerpt
        assert saved == pytest.approx(number(base), abs=0.006)


@smoke("adapt_domain.py")
def test_adapt_domain(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    for index in range(3):
        sf.write(clean / f"{index:02d}.wav", tones(1.0, 1, seed=index), RATE)
    out = run("adapt_domain.py", "--clean", clean, "--eval", 1, "--steps", 2, "--levels", "1,20",
              "--json", tmp_path / "out.json", cwd=tmp_path)  # fmt: skip
    assert "adapted on 2 clipped files" in out and "held out: clean/02.wav" in out
    rows = table(out, "input SDR (dB)")
    assert [row[0] for row in rows] == ["1", "20", "mean"]
    for _, base, adapted, change, better_worse in rows[:-1]:
        assert -30 < number(base) < 60 and -30 < number(adapted) < 60
        assert number(change) == pytest.approx(number(adapted) - number(base), abs=0.011)
        assert sum(map(int, better_worse.split(" / "))) <= 1  # one held-out file
    assert number(rows[-1][1]) == pytest.approx((number(rows[0][1]) + number(rows[1][1])) / 2, abs=0.011)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["adapt_files"] == ["clean/00.wav", "clean/01.wav"] and report["steps"] == 2


@smoke("make_speech.py")
@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (.ci/run installs it)")
def test_make_speech(tmp_path):
    out = run("make_speech.py", "--out", tmp_path / "speech", "--files", 2, "--words", 6, cwd=tmp_path)
    files = sorted((tmp_path / "speech").glob("*.wav"))
    assert [f.name for f in files] == ["00-slt.wav", "01-rms.wav"] and out.split() == [str(f) for f in files]
    for file in files:
        audio, rate = sf.read(file)
        assert rate == 16000 and audio.ndim == 1 and len(audio) > 0.5 * rate and abs(audio).max() > 0.05


@smoke("spectrogram_figure.py")
def test_spectrogram_figure(tmp_path, corpus):
    figure = tmp_path / "figure.png"
    source = corpus / "test/e0/mixture.flac"
    out = run("spectrogram_figure.py", "--source", source, "--start", 0.5, "--seconds", 1, "--out", figure,
              cwd=tmp_path)  # fmt: skip
    found = re.search(r"SDR (-?[\d.]+) dB clipped, (-?[\d.]+) dB restored; wrote (.*)", out)
    assert found and found.group(3) == str(figure), out
    assert float(found.group(1)) == pytest.approx(5.0, abs=0.1)  # clipped at the default 5 dB input SDR
    assert -10 < float(found.group(2)) < 60
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@smoke("coded_detection.py")
def test_coded_detection(tmp_path, corpus):
    out = run("coded_detection.py", "--root", corpus, "--split", "test", "--excerpts", 1, cwd=tmp_path)
    assert out.startswith(f"2 tracks of {corpus}/test")
    for codec in ("mp3 128k", "opus 96k", "aac 128k"):
        flagged = re.search(rf"clean {codec}: (\d+)/2 flagged", out)
        assert flagged and int(flagged.group(1)) <= 2, out
    clean = table(out, "coded")
    assert [row[:2] for row in clean] == [["mp3 128k", "2"], ["opus 96k", "2"], ["aac 128k", "2"]]
    for _, _, flagged, *kinds, names in clean:
        assert int(flagged) == sum(map(int, kinds)) <= 2 and (names == "-") == (flagged == "0")
    rows = table(out, "codec")
    codecs = ("none", "mp3", "opus", "aac")
    assert [(row[0], row[1]) for row in rows] == [(c, f"{v} dB") for c in codecs for v in LEVELS]
    for _, _, detected, median, worst in rows:
        found, total = map(int, detected.split("/"))
        assert total == 2 and 0 <= found <= 2
        if found:
            assert 0 <= number(median.removesuffix(" %")) <= number(worst.removesuffix(" %"))
        else:
            assert median == worst == "-"
    assert all(row[2] == "2/2" for row in rows if row[0] == "none")  # uncoded hard clipping is always found


@smoke("coded_restore.py")
def test_coded_restore(tmp_path, corpus):
    sqam = sqam_excerpts(tmp_path / "sqam", files=1)
    out = run("coded_restore.py", "--music", corpus, "--tracks", 1, "--seconds", 1, "--sqam", sqam,
              "--codecs", "none", "mp3", cwd=tmp_path)  # fmt: skip
    assert "music: 1 signals (e0)" in out and "sqam: 1 signals (a00_tones)" in out
    music, sqam_part = out.split("\nsqam: ")
    for part in (music, sqam_part):
        rows = table(part, "codec")
        assert [(row[0], row[1]) for row in rows] == [
            (codec, arm) for codec in ("none", "mp3") for arm in ("given", "detected", "share found", "input SDR")
        ]
        for codec, arm, *cells in rows:
            values = [number(cell) for cell in cells[:7]]
            if arm in ("given", "detected"):
                assert all(-30 < v < 60 for v in values) and number(cells[7]) == pytest.approx(
                    sum(values) / 7, abs=0.011
                )
            elif arm == "share found":
                assert all(0 <= v <= 1 for v in values)
            else:  # the input SDR: the clip level, less the coding's error
                if codec == "none":
                    assert values == pytest.approx([float(v) for v in LEVELS], abs=0.02)
                assert all(v < float(level) + 0.5 for v, level in zip(values, LEVELS))


def test_coded_restore_scores_the_given_arm_alone_with_a_row_per_item(tmp_path, corpus):
    out = run("coded_restore.py", "--music", corpus, "--tracks", 2, "--seconds", 1, "--sets", "music",
              "--codecs", "none", "mp3", "--levels", 3, 20, "--arms", "given", "--per-item", cwd=tmp_path)  # fmt: skip
    rows = {(row[0], row[1]): [number(cell) for cell in row[2:5] if cell] for row in table(out, "codec")}
    items = ("given: e0", "given: e1")
    assert list(rows) == [(codec, arm) for codec in ("none", "mp3") for arm in ("given", "input SDR", *items)]
    for codec in ("none", "mp3"):
        per_item = [rows[(codec, item)] for item in items]
        assert all(-30 < v < 60 for values in per_item for v in values)
        assert rows[(codec, "given")][:2] == pytest.approx([(a + b) / 2 for a, b in zip(*per_item)][:2], abs=0.006)
        assert all(values[2] == pytest.approx(sum(values[:2]) / 2, abs=0.006) for values in per_item)
    assert rows[("none", "given: e0")] != rows[("none", "given: e1")]  # each item scored on its own


def test_coded_restore_scores_the_detected_arm_alone(tmp_path, corpus):
    out = run("coded_restore.py", "--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music",
              "--codecs", "none", "--levels", 20, "--arms", "detected", cwd=tmp_path)  # fmt: skip
    rows = {(row[0], row[1]): [number(cell) for cell in row[2:3]] for row in table(out, "codec")}
    assert list(rows) == [("none", "detected"), ("none", "share found"), ("none", "input SDR")]
    assert rows[("none", "share found")] == [1.0]  # uncoded, the plateaus are found on every item
    assert -30 < rows[("none", "detected")][0] < 60


def test_coded_restore_true_masks_and_cap(tmp_path, corpus):
    out = run("coded_restore.py", "--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music",
              "--codecs", "none", "mp3", "--true-masks", "--levels", 3, 20, cwd=tmp_path)  # fmt: skip
    assert "| codec | arm | 3 dB | 20 dB | mean |" in out
    rows = {(row[0], row[1]): [number(cell) for cell in row[2:4]] for row in table(out, "codec")}
    arms = {"none": ("given", "detected", "true masks"), "mp3": ("given", "detected", "true masks", "cap")}
    assert list(rows) == [(codec, arm) for codec in arms for arm in (*arms[codec], "share found", "input SDR")]
    assert rows[("none", "true masks")] == rows[("none", "given")]  # uncoded, the plateaus are the true mask
    # a perfect declipper under the codec's noise beats any restoration
    assert all(c > t for c, t in zip(rows[("mp3", "cap")], rows[("mp3", "true masks")]))
    assert rows[("none", "input SDR")] == pytest.approx([3.0, 20.0], abs=0.02)  # --levels sets the clipping


def test_coded_restore_override_changes_the_model_setting_and_refuses_unknown_ones(tmp_path, corpus):
    args = ("--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music", "--codecs", "none", "--levels", 1,
            "--model", "unfolded-music-reclip")  # fmt: skip
    rows = {}
    for share, label in (("0.02", "0.02"), ("null", "None")):  # 1 dB: A-SPADE's schedule only where a share is set
        out = run("coded_restore.py", *args, "--override", f"heavy_share={share}", cwd=tmp_path)
        assert f"model unfolded-music-reclip, heavy_share={label}, given arm" in out
        rows[share] = {(row[0], row[1]): number(row[2]) for row in table(out, "codec")}
    assert rows["0.02"][("none", "given")] != rows["null"][("none", "given")]
    command = [sys.executable, str(BENCHMARKS / "coded_restore.py"), *map(str, args), "--override", "heavy_ro=1"]
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--override heavy_ro: not a setting of" in refused.stderr


def test_coded_restore_choose_lets_re_clipping_pick_in_the_detected_arm(tmp_path, corpus):
    args = ("--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music", "--codecs", "none", "--levels", 20,
            "--model", "unfolded-music-reclip")  # fmt: skip
    out = run("coded_restore.py", *args, "--arms", "detected", "--choose", "probe_iterations=0", cwd=tmp_path)
    assert "probe_iterations=0 as re-clipping chooses (detected arm)" in out
    rows = {(row[0], row[1]): number(row[2]) for row in table(out, "codec")}
    arms = ("detected", "share found", "share choosing another setting", "input SDR")
    assert list(rows) == [("none", arm) for arm in arms]
    assert rows[("none", "share choosing another setting")] in (0.0, 1.0) and -30 < rows[("none", "detected")] < 60
    command = [sys.executable, str(BENCHMARKS / "coded_restore.py"), *map(str, args), "--arms", "given", "--choose",
               "probe_iterations=0"]  # fmt: skip
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--choose acts in the detected arm" in refused.stderr


def test_coded_restore_takes_another_mask_network_for_the_given_arm(tmp_path, corpus):
    import torch
    from safetensors.torch import save_file

    from declip.detection.coded_mask import ClipMaskNet

    silent = ClipMaskNet()
    torch.nn.init.constant_(silent.out.bias, -100.0)  # marks no sample clipped: nothing to restore
    save_file(silent.state_dict(), tmp_path / "silent.safetensors")
    args = ("--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music", "--codecs", "mp3")
    shipped = {(r[0], r[1]): r[2:9] for r in table(run("coded_restore.py", *args, cwd=tmp_path), "codec")}
    out = run("coded_restore.py", *args, "--masks", tmp_path / "silent.safetensors", cwd=tmp_path)
    assert "learned masks (" in out and "silent.safetensors)" in out
    rows = {(r[0], r[1]): r[2:9] for r in table(out, "codec")}
    assert all(number(cell) == 0 for cell in rows[("mp3", "given")])  # its masks: the coded input back
    assert rows[("mp3", "detected")] == shipped[("mp3", "detected")]  # detection keeps the shipped network
    assert any(number(cell) > 0.5 for cell in shipped[("mp3", "given")])
    command = [sys.executable, str(BENCHMARKS / "coded_restore.py"), *map(str, args), "--mask", "band", "--masks", "x"]
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--masks gives the learned masks' network" in refused.stderr


def test_coded_restore_scores_above_a_highpass_when_asked(tmp_path, corpus):
    args = ("--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music", "--codecs", "none", "--levels", 10)
    whole = {(r[0], r[1]): number(r[2]) for r in table(run("coded_restore.py", *args, cwd=tmp_path), "codec")}
    out = run("coded_restore.py", *args, "--highpass", 20, cwd=tmp_path)
    assert "scored above 20 Hz" in out
    above_20 = {(r[0], r[1]): number(r[2]) for r in table(out, "codec")}
    # the corpus's tones hold next to nothing below 20 Hz (their 1-s window leaks a little): about the same scores
    assert above_20 == pytest.approx(whole, abs=0.2)
    above_2k = {(r[0], r[1]): number(r[2]) for r in table(run("coded_restore.py", *args, "--highpass", 2000,
                                                                 cwd=tmp_path), "codec")}  # fmt: skip
    assert abs(above_2k[("none", "input SDR")] - whole[("none", "input SDR")]) > 1  # most of their energy is lower


def test_coded_restore_oracle_baseline_changes_the_input_only(tmp_path, corpus):
    args = ("--music", corpus, "--tracks", 1, "--seconds", 1, "--sets", "music", "--codecs", "mp3", "--levels", 10,
            "--true-masks", "--highpass", 20)  # fmt: skip
    plain = {(r[0], r[1]): number(r[2]) for r in table(run("coded_restore.py", *args, cwd=tmp_path), "codec")}
    oracle = {(r[0], r[1]): number(r[2]) for r in table(run("coded_restore.py", *args, "--oracle-baseline",
                                                             cwd=tmp_path), "codec")}  # fmt: skip
    assert list(oracle) == list(plain)
    for arm in ("cap", "input SDR"):  # neither depends on what the model was given
        assert oracle[("mp3", arm)] == plain[("mp3", arm)]
    assert all(-30 < oracle[("mp3", arm)] < 60 for arm in ("given", "detected", "true masks"))
    command = [sys.executable, str(BENCHMARKS / "coded_restore.py"), "--music", str(corpus), "--oracle-baseline"]
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "give --highpass HZ" in refused.stderr
    estimated = {(r[0], r[1]): number(r[2]) for r in table(run("coded_restore.py", *args, "--estimated-baseline", 2048,
                                                                cwd=tmp_path), "codec")}  # fmt: skip
    assert estimated[("mp3", "cap")] == plain[("mp3", "cap")]
    assert all(-30 < estimated[("mp3", arm)] < 60 for arm in ("given", "detected", "true masks"))
    refused = subprocess.run([*command, "--highpass", "20", "--estimated-baseline", "2048"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert refused.returncode == 2 and "give one" in refused.stderr


@smoke("codec_postfilter.py")
def test_codec_postfilter(tmp_path, corpus):
    out = run("codec_postfilter.py", "--music", corpus, "--segments", 4, "--seconds", 1, "--steps", 3, "--batch", 2,
              "--valid-tracks", 1, "--eval-seconds", 1, cwd=tmp_path)  # fmt: skip
    assert "4 training segments of 1.0 s coded once and twice (opus, 96 kbps)" in out
    bands = {row[0]: [number(cell) for cell in row[1:]] for row in table(out, "share of the energy, validation tracks")}
    assert list(bands) == ["codec's error x - y1", "signal x"]
    assert all(len(shares) == 5 and sum(shares) == pytest.approx(1, abs=0.003) for shares in bands.values())
    ((track, offset, whole, above_20),) = table(out, "validation track")
    assert track == "v0" and abs(number(offset)) < 0.1 and 5 < number(whole) <= number(above_20) + 0.5
    rows = {row[0]: [number(cell) for cell in row[1:]] for row in table(out, "training")}
    assert list(rows) == ["none (as coded)", "re-coding: f(y2) -> y1", "clean: f(y1) -> x"]
    once, filtered, gain, low, high, twice, filtered_twice = rows["none (as coded)"]
    assert filtered == once and gain == low == high == 0 and filtered_twice == twice  # no filter: as coded
    for once_, filtered, gain, low, high, twice_, _ in rows.values():
        assert (once_, twice_) == (once, twice) and 5 < once < 60  # the same coded tracks for every row
        assert gain == pytest.approx(filtered - once, abs=0.011) and low <= gain <= high


@smoke("stream_throughput.py")
def test_stream_throughput(tmp_path, corpus):
    out = run("stream_throughput.py", "--root", corpus, "--config", ROOT / "configs/music.yaml", "--tracks", 2,
              "--batches", 3, "--steps", 1, "--workers", 1, cwd=tmp_path)  # fmt: skip
    assert "2 train tracks" in out and "packed into s3://bench/corpus" in out
    rows = {row[0]: row[1:] for row in table(out, "stage")}
    assert set(rows) == {"file loader (MusdbCorpus)", "streaming loader (StreamingCorpus, S3)", "training step (mc+ei)"}
    model = number(rows["training step (mc+ei)"][0])
    assert model > 0
    for name in ("file loader (MusdbCorpus)", "streaming loader (StreamingCorpus, S3)"):
        rate, per_worker, ratio = (number(cell) for cell in rows[name])
        assert rate > 0 and per_worker == rate and ratio == pytest.approx(rate / model, rel=0.05, abs=1)


@smoke("heldout_eval.py")
def test_heldout_eval(tmp_path, corpus):
    tiny = tmp_path / "unfolded.yaml"
    config = yaml.safe_load((ROOT / "configs/music-unfolded.yaml").read_text())
    config["model"]["backbone"]["init_args"] |= {"window": 1024, "hop": 256, "iterations": 2}
    tiny.write_text(yaml.safe_dump(config))
    out = run("heldout_eval.py", "--root", corpus, "--per-level", 2, "--seconds", 0.5, "--levels", "1,20",
              "--model", "unet-music-reclip", "--untrained", tiny, "--method", "spline",
              "--json", tmp_path / "scores.json", cwd=tmp_path)  # fmt: skip
    rows = table(out, "method")
    assert [row[0] for row in rows] == ["unet-music-reclip", "untrained unfolded", "spline"]
    scores = json.loads((tmp_path / "scores.json").read_text())
    for name, *cells in rows:
        values = [number(cell) for cell in cells]
        assert len(values) == 4 and all(-30 < v < 60 for v in values[:3]) and values[3] > 0
        assert scores[name]["mean"] == pytest.approx(values[2], abs=0.006)
        assert scores[name]["segments"] == {"1": 2, "20": 2}  # each level's score is the mean of its 2 segments


def test_heldout_eval_choose_adds_a_row_restored_with_the_setting_re_clipping_picked(tmp_path, corpus):
    from declip.inference.restore import AS_LOADED

    out = run("heldout_eval.py", "--root", corpus, "--per-level", 1, "--seconds", 0.5, "--levels", "15,20",
              "--model", "unfolded-music-reclip", "--override", "probe_iterations=0", "--choose", "eps=0.5",
              "--choose", "eps=0.01",
              "--json", tmp_path / "scores.json", cwd=tmp_path)  # fmt: skip
    own = "unfolded-music-reclip, probe_iterations=0"  # the probe off: the learned iterations alone, quick
    chooses = f"{own}, or eps=0.5 or eps=0.01 as re-clipping chooses"
    assert [row[0] for row in table(out, "method")] == [own, chooses]
    scores = json.loads((tmp_path / "scores.json").read_text())
    loaded, chosen = scores[own], scores[chooses]
    names = {AS_LOADED, "eps=0.5", "eps=0.01"}
    assert sum(chosen["chosen"].values()) == 2 and set(chosen["chosen"]) <= names
    for level in ("15", "20"):  # where the model's own setting was kept, the segment restores as the model alone
        segments = zip(chosen["picks"][level], loaded["per_segment"][level], chosen["per_segment"][level])
        assert all(name != AS_LOADED or own == picked for name, own, picked in segments)
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "heldout_eval.py"), "--root", corpus, "--model",
                              "unfolded-music-reclip", "--choose", "probe_iterations"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert refused.returncode == 1 and "--choose 'probe_iterations': give NAME=VALUE" in refused.stderr


def test_heldout_eval_override_rebuilds_the_backbone_with_the_same_weights():
    spec = importlib.util.spec_from_file_location("heldout_eval", BENCHMARKS / "heldout_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded = load_model("unfolded-music-reclip", precision="fp32")
    weights = {k: v.clone() for k, v in loaded.model.backbone.state_dict().items()}
    changed = module.override(loaded, parse_overrides(["heavy_rho=0.3", "heavy_share=null"]))
    backbone = changed.model.backbone
    assert (backbone.heavy_rho, backbone.heavy_share, backbone.heavy_iterations) == (0.3, None, 3000)
    assert weights.keys() == backbone.state_dict().keys()
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in weights.items())
    with pytest.raises(SystemExit, match="--override heavy_ro: not a setting of declip.models.unfolded.UnfoldedSPADE"):
        module.override(changed, {"heavy_ro": 1})
    with pytest.raises(SystemExit, match="--override bands: the trained weights do not fit the changed"):
        module.override(changed, {"bands": 4})
    with pytest.raises(SystemExit, match=r"--override sharpness: it sets initial weights only \(log_sharpness\)"):
        module.override(changed, {"sharpness": 4.0})  # the trained log_sharpness would replace it unseen
    with pytest.raises(ConfigError, match="give NAME=VALUE"):
        parse_overrides(["heavy_rho"])
    with pytest.raises(ConfigError, match=r"'heavy_rho=\[0.1,': VALUE is not YAML"):
        parse_overrides(["heavy_rho=[0.1,"])
    bf16 = overridden(dataclasses.replace(changed, precision="bf16"), {"heavy_rho": 0.05})
    assert bf16.precision == "bf16" and bf16.model.backbone.heavy_rho == 0.05  # its precision kept
    with pytest.raises(SystemExit, match="--override 'heavy_rho': give NAME=VALUE"):
        module.methods(argparse.Namespace(override=["heavy_rho"], model=["unfolded-music-reclip"]))
    alone = argparse.Namespace(override=["heavy_rho=0.1"], model=[], untrained=[], method=["spline"])
    with pytest.raises(SystemExit, match="no --model was given"):
        module.methods(alone)


@smoke("gpu_corpus.py")
def test_gpu_corpus(tmp_path, corpus):
    out = run("gpu_corpus.py", "--root", corpus, "--out", tmp_path / "gpu-data", "--tracks", 2, "--seconds", 1,
              cwd=tmp_path)  # fmt: skip
    assert "train: 2 tracks, 0.0 min" in out and "valid: 1 tracks" in out
    files = sorted((tmp_path / "gpu-data").rglob("mixture.flac"))
    assert len(files) == 3 and not (tmp_path / "gpu-data" / "test").exists()  # held-out tracks stay out
    info = sf.info(files[0])
    assert info.channels == 1 and abs(info.duration - 1.0) < 0.01
    again = run("gpu_corpus.py", "--root", corpus, "--out", tmp_path / "gpu-data", "--tracks", 2, "--seconds", 1,
                cwd=tmp_path)  # fmt: skip
    assert again.splitlines()[-1] == out.splitlines()[-1]  # a second run writes nothing new
