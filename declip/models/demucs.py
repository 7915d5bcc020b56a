"""Demucs-style waveform network: strided convolutions, a sequence bottleneck, transposed convolutions."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from declip.config import capture_init
from declip.errors import ConfigError

BOTTLENECKS = ("lstm", "attention", "none")


class _BLSTM(nn.Module):
    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:  # (batch, dim, time)
        out, _ = self.lstm(x.transpose(1, 2))
        return self.linear(out).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)


class Demucs(nn.Module):
    """``(batch, 2*channels, time) -> (batch, channels, time)`` for any ``time``.

    Args:
        channels: audio channels.
        hidden: feature channels of the first encoder layer, multiplied by ``growth`` per layer.
        depth: encoder (and decoder) layers.
        kernel_size, stride: of each strided convolution.
        growth: channel growth per layer.
        bottleneck: ``"lstm"`` (bidirectional), ``"attention"`` (transformer encoder) or ``"none"``.
        bottleneck_layers: layers of the bottleneck.
        heads: attention heads (``"attention"`` only; must divide the bottleneck width).
    """

    @capture_init
    def __init__(
        self,
        channels: int = 1,
        hidden: int = 32,
        depth: int = 4,
        kernel_size: int = 8,
        stride: int = 4,
        growth: int = 2,
        bottleneck: str = "lstm",
        bottleneck_layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if bottleneck not in BOTTLENECKS:
            raise ConfigError(f"Demucs bottleneck must be one of {BOTTLENECKS}; got {bottleneck!r}")
        self.channels, self.depth = channels, depth
        self.kernel_size, self.stride = kernel_size, stride
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        c_in, c = 2 * channels, hidden
        for index in range(depth):
            self.encoder.append(
                nn.Sequential(nn.Conv1d(c_in, c, kernel_size, stride), nn.ReLU(), nn.Conv1d(c, 2 * c, 1), nn.GLU(1))
            )
            c_out = channels if index == 0 else c_in
            decode: list[nn.Module] = [
                nn.Conv1d(c, 2 * c, 1),
                nn.GLU(1),
                nn.ConvTranspose1d(c, c_out, kernel_size, stride),
            ]
            if index > 0:
                decode.append(nn.ReLU())
            self.decoder.insert(0, nn.Sequential(*decode))
            c_in, c = c, growth * c
        if bottleneck == "attention" and c_in % heads:
            raise ConfigError(f"Demucs attention: heads ({heads}) must divide the bottleneck width ({c_in})")
        if bottleneck == "lstm":
            self.bottleneck: nn.Module = _BLSTM(c_in, bottleneck_layers)
        elif bottleneck == "attention":
            self.bottleneck = _Attention(c_in, bottleneck_layers, heads)
        else:
            self.bottleneck = nn.Identity()

    @property
    def hop(self) -> int:
        """Shifts of the input by multiples of ``hop`` shift the output alike (the total stride)."""
        return self.stride**self.depth

    def valid_length(self, length: int) -> int:
        """Smallest length >= ``length`` that the strided layers map back to itself exactly."""
        for _ in range(self.depth):
            length = max(math.ceil((length - self.kernel_size) / self.stride) + 1, 1)
        for _ in range(self.depth):
            length = (length - 1) * self.stride + self.kernel_size
        return length

    def forward(self, inp: Tensor) -> Tensor:
        length = inp.shape[-1]
        x = F.pad(inp, (0, self.valid_length(length) - length))
        skips = []
        for encode in self.encoder:
            x = encode(x)
            skips.append(x)
        x = self.bottleneck(x)
        for decode in self.decoder:
            x = decode(x + skips.pop()[..., : x.shape[-1]])
        return x[..., :length]
