"""Training losses, all called as ``loss(x_net, y, physics, model, x=None)``; combine them in a list."""

from declip.losses.base import Loss
from declip.losses.ei import EILoss
from declip.losses.mc import MCLoss, NaiveMCLoss
from declip.losses.reclip import ReclipLoss
from declip.losses.supervised import SupervisedLoss

__all__ = ["EILoss", "Loss", "MCLoss", "NaiveMCLoss", "ReclipLoss", "SupervisedLoss"]
