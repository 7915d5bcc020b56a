"""``declip restore`` on real files with a small trained checkpoint, a classical method or the default model."""

import re

import numpy as np
import pytest
import soundfile as sf

from declip.cli import main
from tests.conftest import clipped_wav, music


def test_restores_a_clipped_file_consistently(checkpoint, tmp_path):
    src = clipped_wav(tmp_path / "song.wav")
    out = tmp_path / "out"
    assert main(["restore", str(src), "-o", str(out) + "/", "--model", str(checkpoint)]) == 0
    y, _ = sf.read(src, dtype="float32")
    x_hat, rate = sf.read(out / "song.wav", dtype="float32")
    assert rate == 16000 and x_hat.shape == y.shape and sf.info(out / "song.wav").subtype == "FLOAT"
    reliable = (y < y.max(0) - 1e-6) & (y > y.min(0) + 1e-6)  # PCM_16 stores +0.3 and -0.3 one step apart
    assert np.array_equal(x_hat[reliable], y[reliable])  # bit-exact
    clipped = ~reliable
    assert (np.sign(x_hat[clipped]) == np.sign(y[clipped])).all()
    assert (np.abs(x_hat[clipped]) >= np.abs(y[clipped]) - 1e-6).all()


@pytest.mark.parametrize("rate, channels", [(8000, 1), (96000, 6)])
def test_other_rates_and_channel_counts(checkpoint, tmp_path, rate, channels):
    src = clipped_wav(tmp_path / "odd.flac", rate=rate, channels=channels, subtype="PCM_24", seconds=0.5)
    assert main(["restore", str(src), "-o", str(tmp_path / "odd.wav"), "--model", str(checkpoint)]) == 0
    x_hat, out_rate = sf.read(tmp_path / "odd.wav", always_2d=True)
    assert out_rate == rate and x_hat.shape == (rate // 2, channels)


def test_bad_inputs_fail_alone_and_are_named(checkpoint, tmp_path, capsys):
    good = clipped_wav(tmp_path / "good.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF garbage")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    nan = music(0.2, 16000, 1, 1)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(tmp_path / "silent.wav", np.zeros((1600, 1)), 16000)
    sf.write(tmp_path / "one.wav", np.array([[0.5]]), 16000)
    (tmp_path / "empty_folder").mkdir()
    inputs = [str(tmp_path / n) for n in ("good.wav", "corrupt.wav", "empty.wav", "nan.wav", "silent.wav", "one.wav")]
    inputs += [str(tmp_path / "missing.wav"), str(tmp_path / "empty_folder")]
    code = main(["restore", *inputs, "-o", str(tmp_path / "out"), "--model", str(checkpoint)])
    err = capsys.readouterr()
    assert code == 1
    for name, reason in [
        ("corrupt.wav", "unreadable"), ("empty.wav", "no samples"), ("nan.wav", "NaN"),
        ("missing.wav", "no such file"), ("empty_folder", "no audio file"),
    ]:  # fmt: skip
        assert any(name in line and reason in line for line in err.err.splitlines()), (name, err.err)
    assert (tmp_path / "out/good.wav").exists()
    silent, _ = sf.read(tmp_path / "out/silent.wav")
    assert not silent.any() and "nothing clipped" in err.out
    assert sf.read(tmp_path / "out/one.wav")[0].tolist() == [0.5]
    assert sf.read(good)[0].shape == (16000, 2)  # inputs untouched


def test_existing_outputs_and_inputs_are_never_overwritten(checkpoint, tmp_path, capsys):
    src = clipped_wav(tmp_path / "song.wav")
    before = src.read_bytes()
    assert main(["restore", str(src), "-o", str(src), "--model", str(checkpoint)]) == 1
    assert src.read_bytes() == before
    target = tmp_path / "restored.wav"
    target.write_bytes(b"keep me")
    assert main(["restore", str(src), "-o", str(target), "--model", str(checkpoint)]) == 1
    assert target.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["restore", str(src), "-o", str(target), "--model", str(checkpoint), "--overwrite"]) == 0
    assert sf.info(target).frames == 16000


def test_a_given_threshold_finds_the_plateaus_of_integer_files(checkpoint, tmp_path, capsys):
    src = clipped_wav(tmp_path / "song.wav", level=0.3)  # PCM_16 stores 0.3 as 0.29999...
    assert (
        main(["restore", str(src), "-o", str(tmp_path / "out.wav"), "--model", str(checkpoint), "--threshold", "0.3"])
        == 0
    )
    out = capsys.readouterr().out
    assert "nothing clipped" not in out and "% clipped" in out


def test_resampling_keeps_reliable_samples_exact_and_clipped_ones_beyond(checkpoint, tmp_path):
    src = clipped_wav(tmp_path / "song44.wav", rate=44100, subtype="FLOAT", seconds=0.5)
    assert main(["restore", str(src), "-o", str(tmp_path / "r.wav"), "--model", str(checkpoint)]) == 0
    y, _ = sf.read(src, dtype="float32")
    x_hat, _ = sf.read(tmp_path / "r.wav", dtype="float32")
    reliable = np.abs(y) < 0.3
    assert np.array_equal(x_hat[reliable], y[reliable]) and (np.abs(x_hat[~reliable]) >= 0.3 - 1e-6).all()


def test_same_names_in_two_folders_do_not_collide(checkpoint, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        clipped_wav(tmp_path / "in" / folder / "x.wav")
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(checkpoint)]) == 0
    assert (tmp_path / "out/a/x.wav").exists() and (tmp_path / "out/b/x.wav").exists()


def test_two_inputs_for_one_output_name_the_first_that_writes_it(checkpoint, tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    clipped_wav(folder / "song.flac", subtype=None, seed=6)  # writes song.wav
    clipped_wav(folder / "song.wav")  # refused: that name is taken
    (folder / "take.flac").write_bytes(b"fLaC garbage")  # unreadable: writes nothing, so take.wav may
    clipped_wav(folder / "take.wav")
    assert main(["restore", str(folder), "-o", str(out), "--model", str(checkpoint)]) == 1
    captured = capsys.readouterr()
    assert "restored 2 file(s), 2 failed" in captured.out
    assert f"{folder / 'song.flac'} -> " in captured.out and f"{folder / 'take.wav'} -> " in captured.out
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2, errors
    taken = f"song.wav: {folder / 'song.flac'} already writes {out / 'song.wav'}; restore them separately"
    assert errors[0].endswith(taken)
    assert "take.flac: unreadable audio" in errors[1]
    for name, source in (("song.wav", "song.flac"), ("take.wav", "take.wav")):
        restored, y = sf.read(out / name)[0], sf.read(folder / source)[0]
        assert np.array_equal(restored[np.abs(y) < 0.29], y[np.abs(y) < 0.29])  # that input's samples


def test_bad_arguments_and_models_give_one_line(checkpoint, tmp_path, capsys):
    src = clipped_wav(tmp_path / "song.wav")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    assert main(["restore", str(src), "-o", str(tmp_path / "o.wav"), "--model", str(garbage)]) == 2
    assert "not a declip checkpoint" in capsys.readouterr().err
    assert main(["restore", str(src), "-o", str(tmp_path / "o.flac"), "--model", str(checkpoint)]) == 1
    assert ".wav" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["restore", str(src), "-o", str(tmp_path / "o.wav"), "--model", str(checkpoint), "--batch-size", "0"])
    assert stop.value.code == 2 and "--batch-size must be at least 1" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_aspade_method_restores_without_a_model(tmp_path, monkeypatch):
    from declip.baselines import ASPADE
    from declip.inference import methods

    monkeypatch.setattr(methods, "SETTINGS", ASPADE(window=1024, hop=256, max_iterations=300))  # fast, not the survey's
    t = np.arange(8000) / 16000
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 660 * t + 1) + 0.2 * np.sin(2 * np.pi * 1100 * t)
    level = 0.6
    sf.write(tmp_path / "in.wav", np.clip(x, -level, level), 16000, subtype="FLOAT")
    assert main(["restore", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "--method", "aspade"]) == 0
    y = np.clip(x, -level, level)
    x_hat = sf.read(tmp_path / "out.wav", dtype="float32")[0]
    reliable = np.abs(y) < level
    assert np.array_equal(x_hat[reliable], y[reliable].astype(np.float32))
    assert (np.abs(x_hat[~reliable]) >= level - 1e-6).all()
    error = np.linalg.norm(x_hat - x) / np.linalg.norm(y - x)
    assert error < 0.8  # closer to the clean signal than the clipped input


def test_the_spline_method_restores_through_the_cli(tmp_path):
    t = np.arange(16000) / 16000
    x = 0.5 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t + 1)
    level = 0.6
    y = np.clip(x, -level, level)
    sf.write(tmp_path / "in.wav", y, 16000, subtype="FLOAT")
    assert main(["restore", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "--method", "spline"]) == 0
    x_hat = sf.read(tmp_path / "out.wav", dtype="float32")[0]
    reliable = np.abs(y) < level
    assert np.array_equal(x_hat[reliable], y[reliable].astype(np.float32))
    assert np.linalg.norm(x_hat - x) < 0.5 * np.linalg.norm(y - x)


def test_compressed_input_decoded_once_gives_the_wav_result_and_bf16_is_close(checkpoint, tmp_path):
    flac = clipped_wav(tmp_path / "song.flac", subtype="PCM_16", seconds=2.0)
    wav = tmp_path / "song.wav"
    sf.write(wav, sf.read(flac, dtype="float32")[0], 16000, subtype="PCM_16")
    out = tmp_path / "out"
    for src, name, precision in ((flac, "a", "fp32"), (wav, "b", "fp32"), (flac, "c", "bf16")):
        argv = [
            "restore",
            str(src),
            "-o",
            str(out / f"{name}.wav"),
            "--model",
            str(checkpoint),
            "--precision",
            precision,
        ]
        assert main(argv) == 0
    a, b, c = (sf.read(out / f"{name}.wav", dtype="float32")[0] for name in "abc")
    assert np.array_equal(a, b)
    y = sf.read(flac, dtype="float32")[0]
    reliable = np.abs(y) < np.abs(y).max(0) - 1e-6
    assert np.array_equal(c[reliable], y[reliable]) and not np.array_equal(c, a)
    assert np.linalg.norm(c - a) / np.linalg.norm(a - y) < 0.02
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav", "c.wav"]  # no scratch files left


def test_a_new_output_path_without_suffix_is_a_folder(checkpoint, tmp_path):
    src = clipped_wav(tmp_path / "song.flac", level=0.3)
    assert main(["restore", str(src), "-o", str(tmp_path / "restored"), "--model", str(checkpoint)]) == 0
    assert (tmp_path / "restored" / "song.wav").is_file()
    assert main(["restore", str(src), "-o", str(tmp_path / "one.flac"), "--model", str(checkpoint)]) == 1
    assert not (tmp_path / "one.flac").exists()


def test_override_restores_with_a_changed_setting_and_refuses_bad_ones(tmp_path, capsys):
    import declip
    from declip.inference.overrides import overridden

    src = clipped_wav(tmp_path / "song.wav", rate=44100, channels=1, seconds=0.5)
    changed = {"heavy_share": 0.001, "heavy_iterations": 2, "probe_iterations": 0}  # every clipped frame: 2 steps
    flags = [f"--override={name}={value}" for name, value in changed.items()]
    model = ["--model", "unfolded-music-reclip"]
    assert main(["restore", str(src), "-o", str(tmp_path / "shipped.wav"), *model]) == 0
    assert main(["restore", str(src), "-o", str(tmp_path / "changed.wav"), *model, *flags]) == 0
    declip.restore(
        str(src), overridden(declip.load_model("unfolded-music-reclip"), changed), output=tmp_path / "api.wav"
    )
    out, shipped, api = (sf.read(tmp_path / f"{n}.wav", dtype="float32")[0] for n in ("changed", "shipped", "api"))
    assert np.array_equal(out, api) and not np.allclose(out, shipped, atol=1e-3)
    capsys.readouterr()
    bad = [
        (["--override", "nonsense=1"], "--override nonsense: not a setting of declip.models.unfolded.UnfoldedSPADE"),
        (["--override", "iterations=4"], "the trained weights do not fit"),
        (["--override", "probe_iterations=-1"], "probe_iterations"),
    ]
    for extra, message in bad:
        assert main(["restore", str(src), "-o", str(tmp_path / "bad.wav"), *model, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    for extra, message in [
        (["--override", "probe_iterations"], "give NAME=VALUE"),
        (["--method", "spline", "--override", "probe_iterations=0"], "does not apply to --method"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["restore", str(src), "-o", str(tmp_path / "bad.wav"), *model, *extra])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bad.wav").exists()


def test_choose_restores_with_the_setting_re_clipping_picks_and_refuses_bad_ones(tmp_path, capsys):
    import declip
    from declip.inference.overrides import overridden

    src = clipped_wav(tmp_path / "song.wav", rate=44100, channels=1, seconds=0.5)
    model = ["--model", "unfolded-music-reclip"]
    assert main(["restore", str(src), "-o", str(tmp_path / "cli.wav"), *model, "--choose", "probe_iterations=0"]) == 0
    line = capsys.readouterr().out
    said = re.search(r"(kept the model's setting|chose probe_iterations=0) by re-clipping 0.5 s at 0.0 s \(", line)
    assert said, line
    loaded = declip.load_model("unfolded-music-reclip")
    setting = loaded if said.group(1).startswith("kept") else overridden(loaded, {"probe_iterations": 0})
    declip.restore(str(src), setting, output=tmp_path / "api.wav")  # the setting the line names, alone
    cli, api = (sf.read(tmp_path / f"{n}.wav", dtype="float32")[0] for n in ("cli", "api"))
    assert np.array_equal(cli, api)
    bad = [
        (["--choose", "nonsense=1"], "--choose nonsense: not a setting of declip.models.unfolded.UnfoldedSPADE"),
        (["--choose", "iterations=4"], "the trained weights do not fit"),
    ]
    for extra, message in bad:
        assert main(["restore", str(src), "-o", str(tmp_path / "bad.wav"), *model, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    for extra, message in [
        (["--choose", "probe_iterations"], "--choose 'probe_iterations': give NAME=VALUE"),
        (["--method", "spline", "--choose", "probe_iterations=0"], "--choose changes a trained model's settings"),
        (["--adapt", "5", "--choose", "probe_iterations=0"], "it does not apply with --adapt"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["restore", str(src), "-o", str(tmp_path / "bad.wav"), *model, *extra])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bad.wav").exists()
