"""Corpus builders behind ``declip data build``: real music from Debian packages, rendered MIDI stems, solo lines
from those stems."""

from declip.data.build.music import DEBIAN_MUSIC, build_music
from declip.data.build.solo import build_solo
from declip.data.build.stems import build_stems

__all__ = ["DEBIAN_MUSIC", "build_music", "build_solo", "build_stems"]
