"""Classical declipping baselines to compare trained models against."""

from declip.baselines.aspade import ASPADE, aspade

__all__ = ["ASPADE", "aspade"]
