"""Clip-level detection from the signal alone: plateaus at the extreme value, the pile-up a codec
leaves around the level, and the measurement model to restore under."""

from declip.detection.coded import CodedClipLevel, estimate_clip_level, estimate_clip_level_blocks
from declip.detection.measurement import Measurement, measure
from declip.detection.plateaus import ClipLevel, detect_clip_level, detect_clip_level_blocks

__all__ = [
    "ClipLevel",
    "CodedClipLevel",
    "Measurement",
    "detect_clip_level",
    "detect_clip_level_blocks",
    "estimate_clip_level",
    "estimate_clip_level_blocks",
    "measure",
]
