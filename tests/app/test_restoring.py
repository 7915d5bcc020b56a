"""The page's library half, without a browser: detection summary, clip level field, restorer."""

import numpy as np
import pytest
import soundfile as sf

import declip.app.clipping as clipping
from declip.app.clipping import summarise_clipping
from declip.app.restoring import Restorer, parse_level
from declip.cli import main
from declip.data import ffmpeg
from declip.data.codecs import code
from declip.errors import ConfigError
from declip.inference.restore import restore_file
from tests.app.conftest import clipped_recording
from tests.conftest import music
from tests.detection.signals import KBPS, RATE, clipped_at, rich_music


def _write(path, x, rate=16000):
    sf.write(path, x, rate, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "high, low, kind",
    [(0.4, -0.4, "hard-clipped, symmetric (confidence 1.00)"), (0.5, -0.3, "hard-clipped, asymmetric"),
     (0.4, -2.0, "hard-clipped, positive peaks only"), (2.0, -0.4, "hard-clipped, negative peaks only")],
)  # fmt: skip
def test_summary_names_the_kind_and_counts_the_clipped_share(tmp_path, high, low, kind):
    x = music(1.0, 16000, 1, 3)
    x = 0.9 * x / np.abs(x).max()
    summary = summarise_clipping(_write(tmp_path / "y.wav", np.clip(x, low, high)))
    assert summary.kind == ["hard"] and kind in summary.markdown() and not summary.given
    expected = np.mean((x >= high) | (x <= low))
    # samples within the detection's tolerance (1e-5 relative) of the level count as clipped, as in declip restore
    assert summary.share[0] == pytest.approx(expected, abs=2 / 16000) and summary.clipped
    if high < 1:
        assert summary.high[0] == pytest.approx(high, rel=1e-5) and f"+{high:.4f}" in summary.markdown()


def test_summary_of_an_unclipped_file_and_channel(tmp_path):
    x = music(1.0, 16000, 2, 3)
    x = 0.9 * x / np.abs(x).max()
    x[:, 1] = np.clip(x[:, 1], -0.4, 0.4)  # the second channel only
    summary = summarise_clipping(_write(tmp_path / "one.wav", x))
    assert summary.share[0] == 0 and summary.share[1] > 0
    assert "| 1 | – / – | 0.00 % | nothing clipped |" in summary.markdown()
    quiet = summarise_clipping(_write(tmp_path / "quiet.wav", x[:, :1]))
    assert not quiet.clipped and quiet.kind[0] in ("none", "soft")


def test_summary_at_a_given_level_and_per_channel(tmp_path):
    path = clipped_recording(tmp_path / "y.wav", seconds=1.0, rate=16000, level=0.3, subtype="FLOAT")
    summary = summarise_clipping(path, threshold=0.3)
    assert summary.given and len(summary.share) == 2 and all(s > 0 for s in summary.share)
    assert "level (given)" in summary.markdown() and "level given by hand, symmetric" in summary.markdown()
    above = summarise_clipping(path, threshold=0.5)
    assert not above.clipped and "level given by hand, nothing at or beyond it" in above.markdown()


def test_summary_refuses_unreadable_and_empty_files(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(ConfigError, match="unreadable audio"):
        summarise_clipping(tmp_path / "bad.wav")
    with pytest.raises(ConfigError, match="no samples"):
        summarise_clipping(_write(tmp_path / "empty.wav", np.zeros((0, 1))))


@pytest.mark.parametrize("text, value", [("auto", None), ("", None), (None, None), (" AUTO ", None), ("0.25", 0.25)])
def test_the_clip_level_field(text, value):
    assert parse_level(text) == value


@pytest.mark.parametrize(
    "text, message", [("loud", "neither 'auto' nor a number"), ("-1", "positive"), ("0", "positive")]
)
def test_a_bad_clip_level_is_one_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_level(text)


def test_restorer_writes_what_declip_restore_writes_and_reports_progress(tmp_path):
    source = clipped_recording(tmp_path / "song.flac", seconds=2.0)
    restorer = Restorer(tmp_path / "work")
    calls = []
    result = restorer.restore(source, "unet-music-reclip", "auto", progress=lambda *a: calls.append(a))
    assert result.output.name == "song-restored.wav" and result.output.parent.parent == tmp_path / "work"
    assert calls and calls[-1][0] == calls[-1][1]
    assert result.seconds == pytest.approx(2.0) and result.sample_rate == 44100 and result.clipping.clipped
    assert main(["restore", str(source), "-o", str(tmp_path / "cli.wav")]) == 0
    assert result.output.read_bytes() == (tmp_path / "cli.wav").read_bytes()
    again = restorer.restore(source, "unet-music-reclip", "0.4")
    assert again.output != result.output  # each restoration gets its own folder; nothing is overwritten
    assert restorer.model("unet-music-reclip") is restorer.model(" unet-music-reclip ")  # loaded once
    expected = restore_file(source, tmp_path / "given.wav", restorer.model("unet-music-reclip"), threshold=0.4)
    assert again.account == expected and again.output.read_bytes() == (tmp_path / "given.wav").read_bytes()


def test_the_restorer_detects_the_clip_level_once(checkpoint, tmp_path, plateau_detections):
    """The summary finds the plateaus; the restoration takes them instead of reading the file for them again,
    and writes what detecting them again would write."""
    source = clipped_recording(tmp_path / "song.flac", seconds=1.0, rate=16000)
    restorer = Restorer(tmp_path / "work")
    result = restorer.restore(source, str(checkpoint), "auto")
    assert len(plateau_detections) == 1 and result.clipping.clipped and not result.clipping.given
    restorer.restore(source, str(checkpoint), "0.3")
    assert len(plateau_detections) == 1  # a level given: nothing detected
    expected = restore_file(source, tmp_path / "detected.wav", restorer.model(str(checkpoint)))
    assert result.account == expected and result.output.read_bytes() == (tmp_path / "detected.wav").read_bytes()


def test_the_restorer_estimates_a_coded_level_once(checkpoint, tmp_path, monkeypatch):
    """After a codec there are no plateaus: the summary estimates the level and the masks, and the restoration
    takes that measurement instead of reading the file for it again; it writes what ``declip restore`` writes."""
    import declip.detection.measurement as measurement

    original, estimates = measurement.coded_measurement, []
    monkeypatch.setattr(measurement, "coded_measurement", lambda *a, **k: estimates.append(a) or original(*a, **k))
    clipped, _ = clipped_at(rich_music(2.0, 1, 4), 5)
    source = tmp_path / "coded.mp3"
    sf.write(source, code(clipped, RATE, "mp3", KBPS["mp3"]), RATE, format="MP3")
    restorer = Restorer(tmp_path / "work")
    result = restorer.restore(source, str(checkpoint), "auto")
    assert result.clipping.kind == ["hard-coded"] and len(estimates) == 1
    expected = restore_file(source, tmp_path / "cli.wav", restorer.model(str(checkpoint)))
    assert len(estimates) == 2  # declip restore's own estimate, for the comparison
    assert result.account == expected and result.output.read_bytes() == (tmp_path / "cli.wav").read_bytes()


def test_restorer_names_a_bad_model(tmp_path):
    restorer = Restorer(tmp_path)
    with pytest.raises(ConfigError, match="unknown model 'no-such-model'"):
        restorer.model("no-such-model")
    with pytest.raises(ConfigError, match="no model chosen"):
        restorer.model("  ")


def test_summary_of_a_coded_file_counts_block_edges_as_one_pass(tmp_path, monkeypatch):
    """The coded masks look at each sample's neighbours: blocks read with their neighbours' samples around them
    count exactly what one pass over the whole file counts."""
    clipped, _ = clipped_at(rich_music(3.0, 1, 5), 5)
    path = tmp_path / "coded.mp3"
    sf.write(path, code(clipped, RATE, "mp3", KBPS["mp3"]), RATE, format="MP3")
    whole = summarise_clipping(path)
    assert whole.kind == ["hard-coded"] and whole.share[0] > 0.05
    monkeypatch.setattr(clipping, "BLOCK_FRAMES", 4099)  # block edges inside clipped runs, far above the context
    blocked = summarise_clipping(path)
    assert blocked.share == whole.share and blocked.high == whole.high and blocked.low == whole.low


def test_an_aac_upload_is_decoded_once_and_restored_as_declip_restore_restores_it(checkpoint, tmp_path):
    clipped, _ = clipped_at(rich_music(2.0, 2, 9), 5)
    source = tmp_path / "upload.m4a"
    source.write_bytes(ffmpeg.encode_aac(clipped, RATE, 128))
    restorer = Restorer(tmp_path / "work")
    result = restorer.restore(source, str(checkpoint), "auto")
    assert result.source.name == "upload-decoded.wav" and result.source.parent == result.output.parent
    assert result.output.name == "upload-restored.wav"
    decoded, rate = ffmpeg.decode(source)
    assert np.array_equal(sf.read(result.source, dtype="float32")[0], decoded) and rate == result.sample_rate
    assert result.clipping.kind == ["hard-coded"] * 2
    assert "lossy-coded" in result.account
    expected = restore_file(source, tmp_path / "cli.wav", restorer.model(str(checkpoint)))
    assert result.account == expected and result.output.read_bytes() == (tmp_path / "cli.wav").read_bytes()
    jobs = set((tmp_path / "work").iterdir())
    (tmp_path / "notes.m4a").write_text("not audio")
    with pytest.raises(ConfigError, match=r"unreadable audio \(.+; FFmpeg: .+\)"):
        restorer.restore(tmp_path / "notes.m4a", str(checkpoint), "auto")
    data = source.read_bytes()
    (tmp_path / "cut.m4a").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="unreadable audio"):
        restorer.restore(tmp_path / "cut.m4a", str(checkpoint), "auto")
    assert set((tmp_path / "work").iterdir()) == jobs  # a failed job leaves nothing behind
