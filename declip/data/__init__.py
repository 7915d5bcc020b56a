"""Data sets and DataModules that clip clean audio on the fly."""

from declip.data.clipping import ClipLevels
from declip.data.synthetic import SyntheticClipping, SyntheticDataModule

__all__ = ["ClipLevels", "SyntheticClipping", "SyntheticDataModule"]
