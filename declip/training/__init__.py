"""Lightning training: the module pairing a backbone with losses."""

from declip.training.module import DeclipModule

__all__ = ["DeclipModule"]
