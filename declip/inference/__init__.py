"""Inference: chunked restoration and the restore function (the clip level comes from :mod:`declip.detection`)."""

from declip.detection.plateaus import ClipLevel, detect_clip_level
from declip.inference.chunks import receptive_field, restore_chunked
from declip.inference.loaded import LoadedModel
from declip.inference.restore import RestoreReport, restore_array

__all__ = [
    "ClipLevel",
    "LoadedModel",
    "RestoreReport",
    "detect_clip_level",
    "receptive_field",
    "restore_array",
    "restore_chunked",
]
