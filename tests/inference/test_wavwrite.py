import numpy as np
import pytest
import soundfile as sf

from declip.inference.wavwrite import FloatWavWriter


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
@pytest.mark.parametrize("rf64", [False, True])
def test_blocks_written_out_of_order_read_back_exactly(tmp_path, channels, rf64):
    audio = (np.random.default_rng(channels).standard_normal((5001, channels)) * 2).astype(np.float32)
    path = tmp_path / "out.wav"
    with FloatWavWriter(path, 22050, channels, riff_limit=100 if rf64 else 2**32 - 1) as out:
        out.write_at(3000, audio[3000:])  # peaks above 1.0 are kept
        out.write_at(0, audio[:1000])
        out.write_at(1000, audio[1000:3000].T.copy().T)  # any memory layout
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, channels, 5001, "FLOAT")
    assert info.format == ("RF64" if rf64 else "WAV" if channels <= 2 else "WAVEX")
    np.testing.assert_array_equal(sf.read(path, dtype="float32", always_2d=True)[0], audio)


def test_a_block_of_the_wrong_shape_is_refused(tmp_path):
    with FloatWavWriter(tmp_path / "out.wav", 8000, 2) as out:
        with pytest.raises(ValueError, match="expected"):
            out.write_at(0, np.zeros((10, 3), np.float32))
        out.write_at(0, np.zeros((10, 2), np.float32))
    assert sf.info(tmp_path / "out.wav").frames == 10
