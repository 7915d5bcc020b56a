"""A-SPADE, the analysis (cosparse) SParse Audio DEclipper, batched over frames.

Kitić, Bertin, Gribonval, "Sparsity and cosparsity for audio declipping: a flexible non-convex
approach", LVA/ICA 2015. Per windowed frame it solves, by ADMM with a growing sparsity k,

:math:`\\min_{x, z} \\|z\\|_0 \\ \\text{s.t.}\\ x \\in \\Gamma(y),\\ \\|A x - z\\|_2 \\le \\varepsilon`

with :math:`A` the unitary DFT of the frame zero-padded to ``redundancy`` times its length (a Parseval
tight frame) and :math:`\\Gamma(y)` the consistent set (reliable samples equal ``y``, clipped ones at or
beyond the threshold with the sign of ``y``).

Followed to the letter: the MATLAB toolbox of Záviška, Rajmic, Ozerov, Rencker, "A survey and an
extensive evaluation of popular audio declipping methods", IEEE JSTSP 15(1), 2021
(github.com/rajmic/declipping2020_codes, ``Methods/SPADE``: ``aspade.m``, ``spade_segmentation.m``,
``hard_thresholding.m``, ``proj_time.m``, ``main_spade_SQAM.m``; LTFAT 2.4 windows):

- padding to ``L = ceil(Ls/a) a + (ceil(w/a) - 1) a`` zeros-extended samples (reliable, equal to 0);
  ``L/a`` frames centred at ``n a``, read circularly mod ``L``;
- analysis: the clipped frame times a peak-normalised periodic Hann window; the consistent set of the
  frame is the windowed one (bounds ``θ g``); synthesis: the frame estimate times the canonical dual
  ``g / Σ_n g²(· - n a)`` (``gabdual(g, a, w) * w``), overlap-added;
- hard thresholding on the half spectrum (DC, positive bins, Nyquist) with the DC magnitude halved
  for the ranking, then completed by conjugate symmetry; termination ``‖A x - z̄‖ ≤ ε`` over the full
  spectrum; the returned frame is the iterate with the smallest objective seen;
- k starts at ``s``; the counter starts at 1 and k grows by ``s`` each time it reaches a multiple of ``r``;
  at most ``ceil((redundancy w / 2 + 1) r / s)`` iterations by default.

Two departures, both no-ops for hard-clipped input: the clipped bounds are the thresholds ``θ`` (the
toolbox uses the clipped samples, equal to ``θ``), and a final projection makes reliable samples
bit-exact (the overlap-add reproduces them only to rounding). Frames with no clipped sample are copied:
A-SPADE returns them unchanged at its first iteration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from declip.physics import Clipping
from declip.spade import admm, dual_window, hann, hard_threshold, power, schedule


def aspade(
    y: Tensor,
    high: Tensor | float,
    low: Tensor | float | None = None,
    window: int = 8192,
    hop: int = 2048,
    redundancy: int = 2,
    s: int = 1,
    r: int = 2,
    eps: float = 0.1,
    max_iterations: int | None = None,
    batch_frames: int | None = None,
) -> Tensor:
    """Declip ``y`` ``(..., time)`` (e.g. ``(time,)`` or ``(channels, time)``), clipped at ``low < 0 < high``.

    Thresholds are floats or tensors broadcastable to ``y.shape[:-1] + (1,)`` (a ``(channels,)`` tensor
    is read as one per channel); ``low=None`` means ``-high``. Every row is restored on its own. Returns
    the estimate, same shape and dtype as ``y``: reliable samples bit-exact, clipped ones at or beyond
    their threshold. Computed in float64 on ``y``'s device; ``batch_frames`` caps how many frames are
    iterated at once (``None``: all; about 1.5 MB each at window 8192) and does not change the result.
    """
    if window < 2 or not 0 < hop < window or redundancy < 1 or s < 1 or r < 1 or eps < 0:
        raise ValueError("aspade needs window >= 2, 0 < hop < window, redundancy >= 1, s >= 1, r >= 1, eps >= 0")
    if max_iterations is None:
        max_iterations = math.ceil((redundancy * window // 2 + 1) * r / s)
    shape, length = y.shape, y.shape[-1]
    rows = y.reshape(-1, length)
    high = _per_row(high, shape, y.device)
    low = -high if low is None else _per_row(low, shape, y.device)
    physics = Clipping(high.reshape(*shape[:-1], 1), low.reshape(*shape[:-1], 1))
    masks = physics.masks(y)
    if length == 0 or not bool(masks.clipped.any()):
        return y.clone()
    with torch.no_grad():
        estimate = _segmented(
            rows.double(), masks.high.reshape(rows.shape), masks.low.reshape(rows.shape),
            high.double()[:, None], low.double()[:, None],
            window, hop, redundancy, s, r, eps, max_iterations, batch_frames,
        )  # fmt: skip
    return physics.project(estimate.reshape(shape).to(y.dtype), y)


@dataclass(frozen=True)
class ASPADE:
    """A-SPADE with fixed settings (the survey's by default), called like a restorer:
    ``ASPADE()(y, physics)`` with ``physics`` a :class:`declip.Clipping`; see :func:`aspade`."""

    window: int = 8192
    hop: int = 2048
    redundancy: int = 2
    s: int = 1
    r: int = 2
    eps: float = 0.1
    max_iterations: int | None = None
    batch_frames: int | None = None

    def __call__(self, y: Tensor, physics: Clipping) -> Tensor:
        return aspade(y, physics.high, physics.low, **asdict(self))


def _per_row(value: Tensor | float, shape: torch.Size, device: torch.device) -> Tensor:
    """A threshold as one value per row of a ``(..., time)`` signal, shape ``(rows,)``."""
    t = torch.as_tensor(value, dtype=torch.float64, device=device)
    if t.dim() == len(shape) - 1 and t.dim() > 0:  # (channels,) for (channels, time)
        t = t[..., None]
    return t.broadcast_to(*shape[:-1], 1).reshape(-1)


def _segmented(y, high_mask, low_mask, high, low, window, hop, redundancy, s, r, eps, max_iterations, batch_frames):
    """Frame ``y`` ``(rows, Ls)`` as ``spade_segmentation.m`` does, run A-SPADE on the frames holding a
    clipped sample, overlap-add with the dual window; returns ``(rows, Ls)`` float64.

    The dual window is ``g / Σ_n g²(· - n a)`` (``gabdual(g, a, w) * w``). A copied frame contributes
    ``y g · g / Σ g²``, so the sum is ``y`` plus the restored frames' corrections: memory grows with
    ``batch_frames``, not with the length of ``y``."""
    rows, length = y.shape
    padded = math.ceil(length / hop) * hop + (math.ceil(window / hop) - 1) * hop
    count = padded // hop
    device = y.device
    g = hann(window, device)
    dual = dual_window(g, hop)
    positions = torch.arange(window, device=device)
    signal = torch.zeros(rows, padded, dtype=torch.float64, device=device)
    signal[:, :length] = y
    masks = torch.zeros(2, rows, padded, dtype=torch.bool, device=device)
    masks[0, :, :length], masks[1, :, :length] = high_mask, low_mask
    clipped, high_mask, low_mask = masks[0] | masks[1], masks[0].flatten(), masks[1].flatten()

    # frame (row, n) covers samples n*hop - window//2 + positions (mod padded); keep those with a clipped sample
    starts = (torch.arange(count, device=device) * hop - window // 2) % padded
    cumulative = torch.nn.functional.pad(torch.cat([clipped, clipped[:, :window]], 1).cumsum(1), (1, 0))
    todo = torch.nonzero((cumulative[:, starts + window] > cumulative[:, starts]).flatten()).flatten()  # row*count + n
    step = max(todo.numel() if batch_frames is None else batch_frames, 1)
    out = signal.flatten().clone()
    for chosen in todo.split(step):
        row, n = chosen // count, chosen % count
        index = row[:, None] * padded + (n[:, None] * hop - window // 2 + positions) % padded
        frames = signal.flatten()[index] * g
        hi, lo = high_mask[index], low_mask[index]
        lower = torch.where(hi, high[row] * g, torch.where(lo, -math.inf, frames))
        upper = torch.where(lo, low[row] * g, torch.where(hi, math.inf, frames))
        restored = _aspade_frames(frames, lower, upper, redundancy, s, r, eps, max_iterations)
        out.index_add_(0, index.flatten(), ((restored - frames) * dual).flatten())
    return out.reshape(rows, padded)[:, :length]


def _aspade_frames(frames, lower, upper, redundancy, s, r, eps, max_iterations) -> Tensor:
    """``aspade.m`` on a batch of windowed frames ``(batch, w)`` with bounds ``lower <= x <= upper``;
    returns the best iterate of each frame, ``(batch, w)``. Frames stop on their own (:func:`declip.spade.admm`)."""
    nyquist = redundancy * frames.shape[1] % 2 == 0  # the last half-spectrum bin has no conjugate twin

    def sparsify(v: Tensor, i: int) -> Tensor:
        return hard_threshold(v, schedule(s, r, i))

    def distance(z: Tensor, z_bar: Tensor) -> Tensor:
        return _full_norm(z - z_bar, nyquist)

    return admm(frames, lower, upper, redundancy, sparsify, max_iterations, distance, eps, keep_best=True)


def _full_norm(half: Tensor, nyquist: bool) -> Tensor:
    """``‖c‖₂`` of conjugate-symmetric spectra given by their halves ``(batch, n//2 + 1)``: every bin but DC
    (and Nyquist for even ``n``) stands for two."""
    flat = torch.view_as_real(half).flatten(1)
    edges = power(half[:, [0, -1]] if nyquist else half[:, :1]).sum(1)
    return (2 * torch.linalg.vecdot(flat, flat, dim=1) - edges).sqrt()
