"""Classical declipping baselines to compare trained models against."""

from declip.baselines.aspade import ASPADE, aspade
from declip.baselines.spline import Spline, spline_fill

__all__ = ["ASPADE", "Spline", "aspade", "spline_fill"]
