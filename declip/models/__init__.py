"""Backbones (plain ``nn.Module``s, configured by their constructor arguments) and the Declipper wrapper."""

from declip.models.blend import Blend
from declip.models.declipper import Declipper
from declip.models.demucs import Demucs
from declip.models.mlp import MLP
from declip.models.unet import UNet
from declip.models.unfolded import UnfoldedSPADE

__all__ = ["MLP", "Blend", "Declipper", "Demucs", "UNet", "UnfoldedSPADE"]
