"""Frame-wise MLP with a skip connection (the paper's synthetic experiments)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from declip.config import capture_init


class MLP(nn.Module):
    """Fully connected network on non-overlapping frames of ``frame`` samples.

    ``(batch, 2*channels, time) -> (batch, channels, time)``; any length (the last frame is
    zero-padded). The skip connection is added by :class:`~declip.models.Declipper`.
    """

    @capture_init
    def __init__(self, channels: int = 1, frame: int = 256, hidden: int = 1024, layers: int = 3) -> None:
        super().__init__()
        self.channels, self.frame = channels, frame
        sizes = [2 * channels * frame] + [hidden] * (layers - 1)
        blocks: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        blocks.append(nn.Linear(sizes[-1], channels * frame))
        self.net = nn.Sequential(*blocks)

    @property
    def hop(self) -> int:
        """Frames start at multiples of ``hop``."""
        return self.frame

    def forward(self, inp: Tensor) -> Tensor:
        batch, in_channels, length = inp.shape
        frames = -(-length // self.frame)
        x = F.pad(inp, (0, frames * self.frame - length))
        x = x.reshape(batch, in_channels, frames, self.frame).transpose(1, 2).flatten(2)
        out = self.net(x).reshape(batch, frames, self.channels, self.frame).transpose(1, 2)
        return out.flatten(2)[..., :length]
