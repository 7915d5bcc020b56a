"""``restore_file`` and ``restore_array``: the output's format, blocks in and out, blocks side by side, a clip
level given, stopping mid-file, window settings, an output that appears meanwhile."""

import numpy as np
import pytest
import soundfile as sf
import torch

from declip.detection.plateaus import detect_clip_level
from declip.errors import ConfigError
from declip.inference import LoadedModel
from declip.inference.restore import restore_array, restore_file
from tests.conftest import clipped_wav, music


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*tmp"))


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


def test_a_model_with_a_wide_context_gets_cores_four_times_it_with_as_many_samples_per_call(checkpoint):
    model = LoadedModel.from_checkpoint(checkpoint)
    y = torch.from_numpy(np.clip(music(0.5, 16000, 1, 14), -0.25, 0.25).T.copy())
    calls = []

    class Wide:  # a method whose windows need 3000 samples of context on each side
        sample_rate, channels, hop, context, info = model.sample_rate, model.channels, model.hop, 3000, {}

        def estimate(self, items, physics, chunk, batch_size, progress=None, span=None):
            calls.append((chunk, batch_size))
            return model.estimate(items, physics, chunk, batch_size, progress, span)

    restore_array(y, 16000, Wide(), chunk_seconds=0.25, batch_size=8)  # asked: 4000-sample cores
    assert calls == [(12000, 8 * 4000 // 12000)]
    calls.clear()
    restore_array(y, 16000, Wide(), chunk_seconds=1.0, batch_size=8)  # 16000 >= 4 x 3000: as asked
    assert calls == [(16000, 8)]


def test_an_output_written_meanwhile_by_another_run_is_kept(checkpoint, tmp_path):
    src, target = clipped_wav(tmp_path / "x.wav", channels=1), tmp_path / "out.wav"
    model = LoadedModel.from_checkpoint(checkpoint)

    def other_run_finishes_first(done, total):  # another restore writes the same output while this one runs
        if done == total:
            target.write_bytes(b"the other run's output")

    with pytest.raises(ConfigError, match="appeared while restoring .* kept it"):
        restore_file(src, target, model, progress=other_run_finishes_first)
    assert target.read_bytes() == b"the other run's output"
    assert _leftovers(tmp_path) == []
    target.unlink()
    restore_file(src, target, model, progress=other_run_finishes_first, overwrite=True)  # asked to replace
    assert sf.info(target).frames == 16000
