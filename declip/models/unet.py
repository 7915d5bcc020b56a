"""1-D waveform UNet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from declip.config import capture_init
from declip.errors import ConfigError


def _block(c_in: int, c_out: int, kernel_size: int, bias: bool) -> nn.Sequential:
    pad = kernel_size // 2
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel_size, padding=pad, bias=bias),
        nn.ReLU(),
        nn.Conv1d(c_out, c_out, kernel_size, padding=pad, bias=bias),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections; each level halves the time resolution.

    ``(batch, 2*channels, time) -> (batch, channels, time)`` for any ``time`` (padded internally to
    a multiple of ``2**(len(widths)-1)``).

    Args:
        channels: audio channels.
        widths: feature channels per level, top to bottom (its length is the depth).
        kernel_size: odd convolution kernel size.
        bias: use biases (``False`` gives a network that is positively homogeneous in its input).
        stem_stride: > 1 puts a strided convolution (kernel ``2*stem_stride``) before the first level
            and a transposed one after the last, so every level runs at ``1/stem_stride`` of the
            audio rate: about ``stem_stride`` times less compute.
        head_width: > 0 adds a head at the audio rate: two convolutions of ``head_width`` channels
            that see the network's output features beside the input itself, for detail finer than
            ``stem_stride`` samples (short clipped runs). 0: no head.
    """

    @capture_init
    def __init__(
        self,
        channels: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128),
        kernel_size: int = 5,
        bias: bool = True,
        stem_stride: int = 1,
        head_width: int = 0,
    ) -> None:
        super().__init__()
        widths = list(widths)
        if kernel_size % 2 == 0 or not widths:
            raise ConfigError(f"UNet needs an odd kernel_size and at least one width; got {kernel_size}, {widths}")
        if stem_stride < 1:
            raise ConfigError(f"UNet stem_stride must be >= 1; got {stem_stride}")
        if head_width < 0:
            raise ConfigError(f"UNet head_width must be >= 0; got {head_width}")
        out = head_width or channels
        self.channels, self.levels, self.stem_stride = channels, len(widths), stem_stride
        if stem_stride > 1:
            k, pad = 2 * stem_stride, stem_stride // 2
            self.stem = nn.Conv1d(2 * channels, widths[0], k, stride=stem_stride, padding=pad, bias=bias)
            self.inp = _block(widths[0], widths[0], kernel_size, bias)
            self.out = nn.ConvTranspose1d(widths[0], out, k, stride=stem_stride, padding=pad, bias=bias)
        else:
            self.stem = nn.Identity()
            self.inp = _block(2 * channels, widths[0], kernel_size, bias)
            self.out = nn.Conv1d(widths[0], out, 1, bias=bias)
        self.head = (
            nn.Sequential(
                _block(head_width + 2 * channels, head_width, kernel_size, bias),
                nn.Conv1d(head_width, channels, 1, bias=bias),
            )
            if head_width
            else None
        )
        self.down = nn.ModuleList()
        self.encoders = nn.ModuleList()
        self.up = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w, w_next in zip(widths[:-1], widths[1:]):
            self.down.append(nn.Conv1d(w, w, 4, stride=2, padding=1, bias=bias))
            self.encoders.append(_block(w, w_next, kernel_size, bias))
            self.up.append(nn.ConvTranspose1d(w_next, w, 4, stride=2, padding=1, bias=bias))
            self.decoders.append(_block(2 * w, w, kernel_size, bias))

    @property
    def hop(self) -> int:
        """Shifts of the input by multiples of ``hop`` shift the output alike (the total stride)."""
        return 2 ** (self.levels - 1) * self.stem_stride

    def forward(self, inp: Tensor) -> Tensor:
        length = inp.shape[-1]
        multiple = 2 ** (self.levels - 1) * self.stem_stride
        x = padded = F.pad(inp, (0, -length % multiple))
        if torch.is_autocast_enabled(x.device.type):  # under autocast the raw waveform stays in float32
            with torch.autocast(x.device.type, enabled=False):
                x = self.stem(x.float())
        else:
            x = self.stem(x)
        x = self.inp(x)
        skips = []
        for down, enc in zip(self.down, self.encoders):
            skips.append(x)
            x = enc(down(x))
        for up, dec, skip in zip(reversed(self.up), reversed(self.decoders), reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        out = self.out(x)
        if self.head is not None:
            out = self.head(torch.cat([out, padded], dim=1))
        return out[..., :length]
