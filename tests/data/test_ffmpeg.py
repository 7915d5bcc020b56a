"""AAC through FFmpeg (PyAV): encoding, decoding aligned with the input, and one-line errors."""

import functools
import io
import struct

import av
import numpy as np
import pytest
import soundfile as sf

from declip.data import ffmpeg
from declip.data.codecs import code, encode
from declip.errors import ConfigError
from declip.inference import reading
from declip.inference.reading import decode_to_float_wav
from tests.detection.signals import RATE, rich_music


@pytest.fixture(scope="module")
def music():
    return rich_music(3.0, 2, 5)


def test_aac_round_trip_is_aligned_with_the_input_at_the_encoders_level(music):
    data, rate = encode(music, RATE, "aac", 128)
    assert rate == RATE and data[4:8] == b"ftyp"  # an MP4 (.m4a) file
    decoded, decoded_rate = ffmpeg.decode(io.BytesIO(data))
    assert decoded_rate == RATE and decoded.dtype == np.float32 and decoded.shape[1] == 2
    assert len(music) <= len(decoded) < len(music) + 2048  # the priming dropped, the last frame's padding kept
    y = code(music, RATE, "aac", 128)
    assert y.shape == music.shape
    middle = slice(RATE // 4, -RATE // 4)
    lags = range(-8, 9)
    score = [np.dot(np.roll(y[middle, 0], lag), music[middle, 0]) for lag in lags]
    assert lags[int(np.argmax(score))] == 0
    error = y[middle] - music[middle]
    snr = 10 * np.log10(np.sum(music[middle] ** 2) / np.sum(error**2))
    assert snr > 15, snr  # a 128 kbps coding of the same samples, not another signal


def test_decode_to_float_wav_writes_the_samples_decode_returns(music, tmp_path):
    source = tmp_path / "song.m4a"
    source.write_bytes(encode(music, RATE, "aac", 96)[0])
    assert ffmpeg.libsndfile_error(source) is not None
    info = decode_to_float_wav(source, tmp_path / "song.wav")
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 2, "FLOAT")
    written, _ = sf.read(tmp_path / "song.wav", dtype="float32", always_2d=True)
    assert np.array_equal(written, ffmpeg.decode(source)[0])


def test_a_long_decode_goes_on_in_rf64_past_the_riff_limit(music, tmp_path, monkeypatch):
    """A decoded copy over 4 GiB stays whole: the writer switches to RF64 (here past 64 KiB)."""
    monkeypatch.setattr(reading, "FloatWavWriter", functools.partial(reading.FloatWavWriter, riff_limit=65536))
    source = tmp_path / "song.m4a"
    source.write_bytes(encode(music, RATE, "aac", 96)[0])
    info = decode_to_float_wav(source, tmp_path / "song.wav")
    assert info.format == "RF64" and info.frames == len(ffmpeg.decode(source)[0])


def test_mono_at_48_khz(music):
    data, rate = encode(music[:, :1], 48000, "aac", 64)
    decoded, decoded_rate = ffmpeg.decode(io.BytesIO(data))
    assert (rate, decoded_rate, decoded.shape[1]) == (48000, 48000, 1)


def _video_only_mp4(path):
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _wav_of_an_unknown_codec(path):
    """A WAV whose format tag (0x1234) neither libsndfile nor FFmpeg decodes."""
    data = np.zeros(1000, np.int16).tobytes()
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 8000, 16000, 2, 16)
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(chunks)) + chunks)
    return path


def test_files_neither_library_reads_are_one_line(music, tmp_path):
    (tmp_path / "notes.m4a").write_text("not audio\n")
    data = encode(music, RATE, "aac", 96)[0]
    (tmp_path / "cut.m4a").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end
    bad = {
        "notes.m4a": "FFmpeg: .*Invalid data",
        "cut.m4a": "FFmpeg: .*Invalid data",
        _video_only_mp4(tmp_path / "video.mp4").name: "FFmpeg: the file holds no audio stream",
        _wav_of_an_unknown_codec(tmp_path / "odd.wav").name: "FFmpeg: FFmpeg has no decoder for its audio stream",
    }
    for name, reason in bad.items():
        path = tmp_path / name
        libsndfile = ffmpeg.libsndfile_error(path)
        assert libsndfile is not None
        with pytest.raises(ConfigError, match=rf"^unreadable audio \(.+; {reason}.*\)$") as error:
            ffmpeg.probe(path, libsndfile)
        assert "\n" not in str(error.value)
        with pytest.raises(ConfigError):
            ffmpeg.decode(path)
    with pytest.raises(ConfigError, match="mono or stereo"):
        ffmpeg.encode_aac(np.zeros((2048, 3), np.float32), RATE, 128)


def test_without_pyav_an_aac_file_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ffmpeg, "available", lambda: False)
    with pytest.raises(ConfigError, match=r"\.m4a files are decoded by FFmpeg: pip install 'declip\[aac\]'"):
        ffmpeg.probe(tmp_path / "song.m4a", "Format not recognised")
    with pytest.raises(ConfigError, match=r"^unreadable audio \(Format not recognised\)$"):
        ffmpeg.probe(tmp_path / "song.wav", "Format not recognised")
