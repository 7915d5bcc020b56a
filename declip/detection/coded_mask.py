"""Which samples were clipped before a lossy codec smeared them: a small network over ``y / θ``.

After coding, a clipped run's samples scatter around the level θ: pre-echo and ringing dip some of
them well under it and lift others above it, while peaks that were never clipped can reach it. A
fixed band ("at or beyond 97 % of θ") marks the wrong samples: on held-out music coded with Opus it
restored 0.7 dB where the true mask gives 4.6. :class:`ClipMaskNet`, a stack of dilated convolutions,
reads ``y / θ`` around each sample (the shipped one: 513 samples on each side, about one codec frame in all)
and gives the log-odds that it was clipped; the polarity is its sign. It is trained from clipped recordings
alone: a hard-clipped recording's plateaus are the labels, the codec is applied to it on the fly
(:mod:`declip.training.coded_mask`); its weights ship with the package (``coded_mask.safetensors``:
tensors only, no pickled code).

:class:`LearnedMaskClipping` is the clipping operator of such a measurement: masks from the network (only
for the polarities found hard-clipped), the network's input with the masked samples at the level and
the rest strictly inside it, and the inherited projection (reliable samples bit-exact, masked ones at
least their coded value, with its sign).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from declip.physics import ClipMasks, Clipping

WEIGHTS = Path(__file__).with_name("coded_mask.safetensors")
FLOOR = 0.5  # samples under half the level are never counted clipped, whatever the network says
PIECE = 16384  # samples per piece the network runs on (with its context around)
WIDTH, DILATIONS = 32, (1, 2, 4, 8, 16, 32)  # a new network's shape (and that of files without metadata)
INSIDE = 1 - 1e-4  # reliable samples at or beyond the level are moved this far inside it for the network
NEAR = (0.9, 1.1)  # a ceiling's evidence: the samples between these multiples of its level ...
SURE = 3.0  # ... and the share of them whose log-odds of "clipped" are this or more (odds of 20 to 1)


class ClipMaskNet(nn.Module):
    """Per-sample log-odds of "clipped before coding" from ``u = y / θ`` ``(batch, 1, time)``; same shape out."""

    def __init__(self, width: int = WIDTH, dilations: tuple[int, ...] = DILATIONS) -> None:
        super().__init__()
        self.width, self.dilations = width, tuple(dilations)
        self.inp = nn.Conv1d(2, width, 5, padding=2)
        self.blocks = nn.ModuleList(nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in dilations)
        self.mix = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in dilations)
        self.out = nn.Conv1d(width, 1, 1)
        self.context = 2 + sum(dilations)  # samples each side that reach an output (kernels 5, then 3 dilated)

    def forward(self, u: Tensor) -> Tensor:
        h = self.inp(torch.cat([u, u.abs()], 1))
        for block, mix in zip(self.blocks, self.mix):
            h = h + mix(F.gelu(block(F.gelu(h))))
        return self.out(F.gelu(h))

    def grown(self, dilations: tuple[int, ...]) -> ClipMaskNet:
        """A network with blocks of ``dilations`` appended (a wider receptive field) whose output equals this
        one's: the new blocks' residual branches start at zero, so training begins from what this one knows
        (their first convolutions start at random, from torch's generator; on the CPU)."""
        net = ClipMaskNet(self.width, self.dilations + tuple(dilations))
        for grown_layers, layers in ((net.blocks, self.blocks), (net.mix, self.mix)):
            for grown_layer, layer in zip(grown_layers, layers):  # the new blocks are past the end of zip
                grown_layer.load_state_dict(layer.state_dict())
        net.inp.load_state_dict(self.inp.state_dict())
        net.out.load_state_dict(self.out.state_dict())
        for mix in net.mix[len(self.dilations) :]:
            nn.init.zeros_(mix.weight)
            nn.init.zeros_(mix.bias)
        return net


def save_mask_net(net: ClipMaskNet, path: str | Path) -> None:
    """``net``'s weights in ``path`` (``.safetensors``), its width and dilations in the file's metadata."""
    shape = {"width": str(net.width), "dilations": ",".join(map(str, net.dilations))}
    save_file(net.state_dict(), path, metadata=shape)


def load_mask_net(path: str | Path) -> ClipMaskNet:
    """A network with the weights in ``path`` (a ``.safetensors`` of :class:`ClipMaskNet`), in eval mode; its
    width and dilations from the file's metadata (a file without them: :data:`WIDTH` and :data:`DILATIONS`)."""
    with safe_open(str(path), "pt") as f:
        shape = f.metadata() or {}
    dilations = tuple(int(d) for d in shape["dilations"].split(",")) if "dilations" in shape else DILATIONS
    net = ClipMaskNet(int(shape.get("width", WIDTH)), dilations)
    net.load_state_dict(load_file(path))
    return net.eval().requires_grad_(False)


@lru_cache(maxsize=1)
def default_mask_net() -> ClipMaskNet:
    """The shipped network, in eval mode."""
    return load_mask_net(WEIGHTS)


def _net_on(net: ClipMaskNet, device: torch.device) -> ClipMaskNet:
    """``net`` if it is on ``device``, else a copy there (the shared network is never moved)."""
    return net if next(net.parameters()).device == device else copy.deepcopy(net).to(device)


def _logits(net: ClipMaskNet, u: Tensor, piece: int = PIECE, batch: int = 16, floor: float = FLOOR) -> Tensor:
    """``net`` over each row of ``u`` ``(rows, time)``, in pieces of ``piece`` samples with the
    network's context on each side (zeros past the ends): any stretch of ``u`` gives the same
    logits at the samples it holds with their context, so blocks agree with one pass; activations
    stay tens of MB. Pieces with no sample at or above ``floor`` are not computed (-inf)."""
    rows, length = u.shape
    context = net.context
    starts = range(0, length, piece)
    padded = F.pad(u, (context, piece + context))
    windows = torch.stack([padded[:, s : s + piece + 2 * context] for s in starts], 1).reshape(-1, piece + 2 * context)
    out = torch.full((windows.shape[0], piece), -torch.inf, device=u.device)  # no sample near the level: none clipped
    loud = torch.nonzero((windows[:, context : context + piece].abs() >= floor).any(1)).flatten()
    with torch.no_grad():
        for i in range(0, len(loud), batch):
            rows_in = loud[i : i + batch]
            out[rows_in] = net(windows[rows_in, None])[:, 0, context : context + piece]
    return out.reshape(rows, -1)[:, :length]


def marked_share(levels: Tensor, asked: Tensor, blocks: Iterable[Tensor], net: ClipMaskNet | None = None) -> Tensor:
    """Per channel and polarity ``(channels, 2)``, where ``asked``: of the samples within :data:`NEAR` of the
    polarity's level, the share that ``net`` (the shipped one by default) marks clipped with log-odds
    :data:`SURE` or more; 0 where not asked. ``levels`` ``(channels, 2)``: magnitudes the network's input is
    scaled by, as :class:`LearnedMaskClipping` scales it (the polarities not asked about too: pass the levels
    the measurement would use). One pass over consecutive ``blocks`` ``(channels, time)``, each with its
    neighbours' samples as context, so the share is that of one pass over the whole recording. A hard-clipped
    top after coding is marked; a limiter's ceiling or a tone's peaks, round under it, are not (see
    :meth:`declip.detection.coded.CodedClipLevel.confirmed`)."""
    net = default_mask_net() if net is None else net
    near = torch.zeros(levels.shape, dtype=torch.long)
    sure = torch.zeros(levels.shape, dtype=torch.long)
    for left, block, right in with_context(blocks, net.context):
        y = torch.cat([left, block, right], -1).float()
        high, low = levels[:, :1].to(y), levels[:, 1:].to(y)
        u = torch.where(y >= 0, y / high, y / low)
        logits = _logits(_net_on(net, y.device), u, floor=NEAR[0])
        inside = slice(left.shape[-1], left.shape[-1] + block.shape[-1])
        u, logits = u[:, inside], logits[:, inside]
        for polarity, v in enumerate((u, -u)):
            counted = (v >= NEAR[0]) & (v <= NEAR[1]) & asked[:, polarity : polarity + 1].to(y.device)
            near[:, polarity] += counted.sum(-1).cpu()
            sure[:, polarity] += (counted & (logits >= SURE)).sum(-1).cpu()
    return sure / near.clamp(min=1)


def with_context(blocks: Iterable[Tensor], context: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Each block ``(channels, frames)`` with up to ``context`` samples of its neighbours on each side (none past
    the ends), as ``(left, block, right)``: a mask that looks ``context`` samples around each sample (the learned
    coded masks) then counts the samples of a block as one pass over the whole recording would, for blocks of at
    least ``context`` samples."""
    previous, current = None, None
    for block in blocks:
        if current is not None:
            yield _tail(previous, current, context), current, block[:, :context]
        previous, current = current, block
    if current is not None:
        yield _tail(previous, current, context), current, current[:, :0]


def _tail(previous: Tensor | None, current: Tensor, context: int) -> Tensor:
    """The last ``context`` samples of ``previous`` (none before the first block)."""
    if previous is None or context == 0:
        return current[:, :0]
    return previous[:, -context:]


class LearnedMaskClipping(Clipping):
    """Clipping at the coded levels ``high`` / ``low`` (the centres of the pile-ups) with the clipped
    samples chosen by ``net``; ``enabled``: per channel, whether the positive and negative polarity
    were found hard-clipped ``(channels, 2)`` (a polarity that was not gets no clipped sample)."""

    def __init__(self, high: Tensor, low: Tensor, enabled: Tensor, net: ClipMaskNet | None = None) -> None:
        super().__init__(high, low)
        self.enabled = enabled.bool()
        self.net = net if net is not None else default_mask_net()

    @property
    def context(self) -> int:
        return self.net.context

    def masks(self, y: Tensor) -> ClipMasks:
        """The network's masks of ``y`` (``(channels, time)`` or ``(batch, channels, time)``)."""
        high, low = self.high.to(y), self.low.to(y)
        u = torch.where(y >= 0, y / high, y / -low)
        net = _net_on(self.net, y.device)
        clipped = _logits(net, u.reshape(-1, u.shape[-1]).float()).reshape(u.shape) > 0
        clipped &= u.abs() >= FLOOR
        enabled = self.enabled.to(y.device)
        return ClipMasks(high=clipped & (y > 0) & enabled[:, :1], low=clipped & (y < 0) & enabled[:, 1:])

    def network_input(self, y: Tensor, masks: ClipMasks | None = None) -> Tensor:
        """``y`` as a hard-clipped recording: masked samples at the level, the others strictly inside it."""
        m = self.masks(y) if masks is None else masks
        high, low = self.high.to(y), self.low.to(y)
        inside = torch.clamp(y, min=low * INSIDE, max=high * INSIDE)
        return torch.where(m.high, high, torch.where(m.low, low, inside))

    def to(self, device: torch.device | str) -> LearnedMaskClipping:
        """On ``device``, with a copy of the network there (the shared CPU one stays where it is)."""
        net = _net_on(self.net, torch.device(device))
        return LearnedMaskClipping(self.high.to(device), self.low.to(device), self.enabled.to(device), net)
