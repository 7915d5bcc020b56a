"""``declip restore`` on real files with a small trained checkpoint."""

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from declip.cli import main
from declip.data import SyntheticDataModule
from declip.detection.plateaus import detect_clip_level
from declip.errors import ConfigError
from declip.inference import LoadedModel
from declip.inference.restore import restore_array, restore_file
from declip.losses import SupervisedLoss
from declip.models import UNet
from declip.training import DeclipModule
from tests.conftest import music


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    module = DeclipModule(UNet(channels=1, widths=(4, 8), stem_stride=2), SupervisedLoss(), sample_rate=16000)
    trainer = L.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        limit_val_batches=0, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, SyntheticDataModule(length=256, batch_size=4))
    trainer.save_checkpoint(root / "model.ckpt")
    return str(root / "model.ckpt")


def _clipped(tmp_path, name, rate=16000, channels=2, subtype="PCM_16", level=0.3, seconds=1.0):
    x = music(seconds, rate, channels, 5)
    x = 0.9 * x / np.abs(x).max()
    path = tmp_path / name
    sf.write(path, np.clip(x, -level, level), rate, subtype=subtype)
    return path


def test_restores_a_clipped_file_consistently(checkpoint, tmp_path):
    src = _clipped(tmp_path, "song.wav")
    out = tmp_path / "out"
    assert main(["restore", str(src), "-o", str(out) + "/", "--model", checkpoint]) == 0
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
    src = _clipped(tmp_path, "odd.flac", rate=rate, channels=channels, subtype="PCM_24", seconds=0.5)
    assert main(["restore", str(src), "-o", str(tmp_path / "odd.wav"), "--model", checkpoint]) == 0
    x_hat, out_rate = sf.read(tmp_path / "odd.wav", always_2d=True)
    assert out_rate == rate and x_hat.shape == (rate // 2, channels)


def test_bad_inputs_fail_alone_and_are_named(checkpoint, tmp_path, capsys):
    good = _clipped(tmp_path, "good.wav")
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
    code = main(["restore", *inputs, "-o", str(tmp_path / "out"), "--model", checkpoint])
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
    src = _clipped(tmp_path, "song.wav")
    before = src.read_bytes()
    assert main(["restore", str(src), "-o", str(src), "--model", checkpoint]) == 1
    assert src.read_bytes() == before
    target = tmp_path / "restored.wav"
    target.write_bytes(b"keep me")
    assert main(["restore", str(src), "-o", str(target), "--model", checkpoint]) == 1
    assert target.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    assert main(["restore", str(src), "-o", str(target), "--model", checkpoint, "--overwrite"]) == 0
    assert sf.info(target).frames == 16000


class Overshoot(torch.nn.Module):
    """A stand-in declipper that doubles every clipped sample, so peaks surely exceed full scale."""

    def forward(self, y, physics):
        return y + physics.masks(y).signed * physics.scale


def test_pcm_output_above_full_scale_needs_normalize(tmp_path):
    src = tmp_path / "hot.wav"
    sf.write(src, np.clip(music(1.0, 16000, 2, 5) * 3, -1, 1), 16000, subtype="PCM_16")
    model = LoadedModel(Overshoot(), sample_rate=16000, channels=1, hop=1, context=0)
    out = tmp_path / "hot16.wav"
    with pytest.raises(ConfigError, match="--normalize"):
        restore_file(src, out, model, subtype="PCM_16")
    assert not out.exists()
    note = restore_file(src, out, model, subtype="PCM_16", normalize=True)
    restored = sf.read(out)[0]
    assert "scaled by -6.0" in note and np.abs(restored).max() <= 1.0 and sf.info(out).subtype == "PCM_16"
    restore_file(src, tmp_path / "float.wav", model)
    assert np.abs(sf.read(tmp_path / "float.wav")[0]).max() > 1.9  # float keeps the peaks


def test_python_api_on_arrays_and_files(checkpoint, tmp_path):
    import declip

    model = LoadedModel.from_checkpoint(checkpoint)
    x = music(0.5, 16000, 2, 9)
    y = np.clip(x, -0.2, 0.2)
    restored = declip.restore(y, model, sample_rate=16000)
    assert restored.shape == y.shape and np.array_equal(restored[np.abs(y) < 0.2], y[np.abs(y) < 0.2])
    sf.write(tmp_path / "in.wav", y, 16000, subtype="FLOAT")
    account = declip.restore(tmp_path / "in.wav", checkpoint, output=tmp_path / "out.wav", precision="fp32")
    assert "clipped" in account
    np.testing.assert_allclose(sf.read(tmp_path / "out.wav", dtype="float32")[0], restored, atol=1e-6)
    with pytest.raises(ConfigError, match="no samples"):
        declip.restore(np.zeros((0, 2), np.float32), model, sample_rate=16000)


def test_a_given_threshold_finds_the_plateaus_of_integer_files(checkpoint, tmp_path, capsys):
    src = _clipped(tmp_path, "song.wav", level=0.3)  # PCM_16 stores 0.3 as 0.29999...
    assert (
        main(["restore", str(src), "-o", str(tmp_path / "out.wav"), "--model", checkpoint, "--threshold", "0.3"]) == 0
    )
    out = capsys.readouterr().out
    assert "nothing clipped" not in out and "% clipped" in out


def test_resampling_keeps_reliable_samples_exact_and_clipped_ones_beyond(checkpoint, tmp_path):
    src = _clipped(tmp_path, "song44.wav", rate=44100, subtype="FLOAT", seconds=0.5)
    assert main(["restore", str(src), "-o", str(tmp_path / "r.wav"), "--model", checkpoint]) == 0
    y, _ = sf.read(src, dtype="float32")
    x_hat, _ = sf.read(tmp_path / "r.wav", dtype="float32")
    reliable = np.abs(y) < 0.3
    assert np.array_equal(x_hat[reliable], y[reliable]) and (np.abs(x_hat[~reliable]) >= 0.3 - 1e-6).all()


def test_same_names_in_two_folders_do_not_collide(checkpoint, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        _clipped(tmp_path / "in" / folder, "x.wav")
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", checkpoint]) == 0
    assert (tmp_path / "out/a/x.wav").exists() and (tmp_path / "out/b/x.wav").exists()


def test_bad_arguments_and_models_give_one_line(checkpoint, tmp_path, capsys):
    src = _clipped(tmp_path, "song.wav")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    assert main(["restore", str(src), "-o", str(tmp_path / "o.wav"), "--model", str(garbage)]) == 2
    assert "not a declip checkpoint" in capsys.readouterr().err
    assert main(["restore", str(src), "-o", str(tmp_path / "o.flac"), "--model", checkpoint]) == 1
    assert ".wav" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["restore", str(src), "-o", str(tmp_path / "o.wav"), "--model", checkpoint, "--batch-size", "0"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_streaming_by_blocks_equals_restoring_the_whole_array(checkpoint, tmp_path):
    model = LoadedModel.from_checkpoint(checkpoint)
    y = np.clip(music(2.0, 16000, 2, 11), -0.25, 0.25)
    sf.write(tmp_path / "in.wav", y, 16000, subtype="FLOAT")
    restore_file(tmp_path / "in.wav", tmp_path / "streamed.wav", model, block_seconds=0.3, chunk_seconds=0.1)
    streamed = sf.read(tmp_path / "streamed.wav", dtype="float32")[0]
    whole, _ = restore_array(torch.from_numpy(y.T.copy()), 16000, model)
    whole = whole.T.numpy()
    assert np.linalg.norm(streamed - whole) / np.linalg.norm(whole) < 1e-4
    assert not np.array_equal(streamed, y)  # something was restored


@pytest.mark.parametrize(
    ("source", "subtype", "threshold"),
    [("in.flac", "PCM_24", None), ("in.wav", "PCM_24", None), ("in.ogg", None, 0.2)],  # Ogg: read as it is, serially
)
def test_blocks_restored_side_by_side_equal_one_at_a_time(checkpoint, tmp_path, source, subtype, threshold):
    model = LoadedModel.from_checkpoint(checkpoint)
    y = np.clip(music(3.0, 16000, 2, 12), -0.25, 0.25)
    sf.write(tmp_path / source, y, 16000, subtype=subtype)
    outputs = {}
    for workers in (1, 3):
        out = tmp_path / f"out{workers}.wav"
        restore_file(
            tmp_path / source, out, model, threshold, block_seconds=0.25, workers=workers, decode_threads=workers
        )
        outputs[workers] = sf.read(out, dtype="float32")[0]
    assert outputs[1].shape == y.shape and not np.array_equal(outputs[1], y.astype(np.float32))
    np.testing.assert_array_equal(outputs[3], outputs[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source, "out1.wav", "out3.wav"])  # no leftovers


@pytest.mark.parametrize(("source", "subtype"), [("in.wav", "PCM_16"), ("in.flac", "PCM_24"), ("in.ogg", None)])
def test_a_clip_level_given_gives_the_bytes_of_detecting_it(checkpoint, tmp_path, source, subtype):
    """``restore_file(level=...)`` (what ``declip restore --adapt`` passes) skips detection, and a compressed
    file is still decoded once and read from that copy: the output is byte for byte detection's."""
    model = LoadedModel.from_checkpoint(checkpoint)
    sf.write(tmp_path / source, np.clip(music(2.0, 16000, 2, 15), -0.25, 0.2), 16000, subtype=subtype)
    level = detect_clip_level(torch.from_numpy(sf.read(tmp_path / source, dtype="float32")[0].T.copy()))
    detected, given = tmp_path / "detected.wav", tmp_path / "given.wav"
    account = restore_file(tmp_path / source, detected, model, block_seconds=0.5)
    assert restore_file(tmp_path / source, given, model, block_seconds=0.5, level=level) == account
    assert given.read_bytes() == detected.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source, "detected.wav", "given.wav"])  # no leftovers
    mono = detect_clip_level(torch.zeros(1, 8))
    with pytest.raises(ConfigError, match="clip level given is for 1 channel"):
        restore_file(tmp_path / source, tmp_path / "mono.wav", model, level=mono)


def test_stopping_mid_file_leaves_no_output_and_no_temporary_files(checkpoint, tmp_path):
    model = LoadedModel.from_checkpoint(checkpoint)
    sf.write(tmp_path / "in.flac", np.clip(music(3.0, 16000, 2, 13), -0.25, 0.25), 16000, subtype="PCM_24")

    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore_file(
            tmp_path / "in.flac", tmp_path / "out.wav", model, block_seconds=0.25, workers=3, progress=interrupt
        )
    assert [p.name for p in tmp_path.iterdir()] == ["in.flac"]


def test_window_settings_are_checked_and_a_method_without_a_device_runs_on_the_cpu(checkpoint, tmp_path):
    model = LoadedModel.from_checkpoint(checkpoint)
    y = torch.from_numpy(np.clip(music(0.5, 16000, 1, 14), -0.25, 0.25).T.copy())
    with pytest.raises(ConfigError, match="chunk_seconds must be positive"):
        restore_array(y, 16000, model, chunk_seconds=0)

    class Plain:  # the method interface before ``device``: sample rate, channels, hop, context, estimate
        sample_rate, channels, hop, context, info = model.sample_rate, model.channels, model.hop, model.context, {}
        estimate = model.estimate

    restored, report = restore_array(y, 16000, Plain())
    assert report.clipped and torch.equal(restored, restore_array(y, 16000, model)[0])


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


def test_compressed_input_decoded_once_gives_the_wav_result_and_bf16_is_close(checkpoint, tmp_path):
    flac = _clipped(tmp_path, "song.flac", subtype="PCM_16", seconds=2.0)
    wav = tmp_path / "song.wav"
    sf.write(wav, sf.read(flac, dtype="float32")[0], 16000, subtype="PCM_16")
    out = tmp_path / "out"
    for src, name, precision in ((flac, "a", "fp32"), (wav, "b", "fp32"), (flac, "c", "bf16")):
        argv = ["restore", str(src), "-o", str(out / f"{name}.wav"), "--model", checkpoint, "--precision", precision]
        assert main(argv) == 0
    a, b, c = (sf.read(out / f"{name}.wav", dtype="float32")[0] for name in "abc")
    assert np.array_equal(a, b)
    y = sf.read(flac, dtype="float32")[0]
    reliable = np.abs(y) < np.abs(y).max(0) - 1e-6
    assert np.array_equal(c[reliable], y[reliable]) and not np.array_equal(c, a)
    assert np.linalg.norm(c - a) / np.linalg.norm(a - y) < 0.02
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav", "c.wav"]  # no scratch files left


def test_a_new_output_path_without_suffix_is_a_folder(checkpoint, tmp_path):
    src = _clipped(tmp_path, "song.flac", level=0.3)
    assert main(["restore", str(src), "-o", str(tmp_path / "restored"), "--model", checkpoint]) == 0
    assert (tmp_path / "restored" / "song.wav").is_file()
    assert main(["restore", str(src), "-o", str(tmp_path / "one.flac"), "--model", checkpoint]) == 1
    assert not (tmp_path / "one.flac").exists()


def test_the_python_api_takes_a_classical_method_object():
    import declip
    from declip.baselines import ASPADE
    from declip.inference.methods import ASPADEMethod

    x = music(0.5, 16000, 1, 3).astype(np.float32)
    x = 0.9 * x / np.abs(x).max()
    y = np.clip(x, -0.5, 0.5)
    small = ASPADEMethod(settings=ASPADE(window=512, hop=128, max_iterations=50))  # fast, not the survey's
    restored = declip.restore(y, small, sample_rate=16000)
    reliable = np.abs(y) < 0.5
    assert restored.shape == y.shape and np.array_equal(restored[reliable], y[reliable])
    assert np.abs(restored).max() > 0.5  # peaks restored beyond the clip level
