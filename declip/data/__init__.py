"""Data sets and DataModules that clip clean audio on the fly."""

from declip.data.audio import AudioDataModule
from declip.data.audio_files import AudioSource, find_audio, probe
from declip.data.clipping import ClipLevels
from declip.data.corpus import Corpus, FolderCorpus, MusdbCorpus, Track
from declip.data.segments import ClippedSegments
from declip.data.stream import StreamingCorpus
from declip.data.synthetic import SyntheticClipping, SyntheticDataModule

__all__ = [
    "AudioDataModule",
    "AudioSource",
    "ClipLevels",
    "ClippedSegments",
    "Corpus",
    "FolderCorpus",
    "MusdbCorpus",
    "StreamingCorpus",
    "SyntheticClipping",
    "SyntheticDataModule",
    "Track",
    "find_audio",
    "probe",
]
