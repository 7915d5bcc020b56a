"""Lightning training: the module pairing a backbone with losses, and its callbacks."""

from declip.training.examples import ValidationExamples
from declip.training.module import DeclipModule

__all__ = ["DeclipModule", "ValidationExamples"]
