"""The ADMM of A-SPADE on a batch of windowed frames, shared by the baseline and the unfolded model.

Per frame, with :math:`A` the unitary DFT of the frame zero-padded to ``redundancy`` times its length and
:math:`\\Gamma` the frame's consistent set (``lower <= x <= upper``), each iteration

:math:`\\bar z = S_i(z + u),\\quad x = P_\\Gamma(A^*(\\bar z - u)),\\quad u \\leftarrow u + A x - \\bar z`

with :math:`S_i` the iteration's sparsifying step: hard thresholding to the ``k`` largest coefficients in
A-SPADE (:mod:`declip.baselines.aspade`) and in the unfolded model's heavy path (which keeps ties at the k-th),
a learned smooth gain in the unfolded model's iterations (:mod:`declip.models.unfolded`). The callers differ
only in that step, in their stopping rule and in which iterate a frame returns; :func:`admm` takes those three.

Spectra are half spectra (``rfft``, unitary) and stay complex: a complex sum or product is one pass over
memory, where the same arithmetic on real views took two to three times as long on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Sparsify = Callable[[Tensor, int], Tensor]
"""``(z + u, i) -> z̄``: the sparse estimate of the half spectra ``(frames, bins)`` at iteration ``i`` (from 0)."""

Objective = Callable[[Tensor, Tensor], Tensor]
"""``(z, z̄) -> (frames,)``, real: each frame's stopping score, mostly how far it is from its sparse estimate (or a
signed excess over a tolerance of its own); a frame stops once it is at most ``tolerance``. Computed without
gradient."""


def admm(
    frames: Tensor,
    lower: Tensor,
    upper: Tensor,
    redundancy: int,
    sparsify: Sparsify,
    iterations: int,
    objective: Objective | None = None,
    tolerance: float = 0.0,
    keep_best: bool = False,
    return_met: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Run A-SPADE's ADMM on windowed frames ``(n, w)`` within ``lower <= x <= upper``; the restored frames.

    A frame whose ``objective`` is at most ``tolerance`` leaves the batch (the others run on), at most
    ``iterations`` iterations in all; no ``objective``: every frame runs them all (``tolerance`` unused). A frame
    returns its last iterate, or with ``keep_best`` (``aspade.m``) the iterate with the smallest objective it was
    scored at (a tie keeps the later one; the iterate after the last update is never scored, so never kept).
    Differentiable through ``sparsify`` and the projection (the unfolded model trains through it). An empty batch
    or no iteration gives the frames back. With ``return_met``, also ``(n,)`` booleans: which frames met the rule
    within ``iterations``."""
    if keep_best and objective is None:
        raise ValueError("admm: keep_best needs an objective to rank the iterates by")
    met = torch.zeros(frames.shape[0], dtype=torch.bool, device=frames.device)
    if frames.shape[0] == 0 or iterations < 1:
        return (frames.clone(), met) if return_met else frames.clone()
    window = frames.shape[1]
    n = redundancy * window
    x = frames
    z = torch.fft.rfft(x, n=n, norm="ortho")
    u = torch.zeros_like(z)
    alive = torch.arange(frames.shape[0], device=frames.device)
    finished: list[tuple[Tensor, Tensor]] = []
    best = x
    best_score = torch.full((frames.shape[0],), math.inf, dtype=frames.dtype, device=frames.device)  # as aspade.m
    for i in range(iterations):
        z_bar = sparsify(z + u, i)
        if objective is not None:
            with torch.no_grad():
                score = objective(z, z_bar)
            if keep_best:
                better = score <= best_score
                best = torch.where(better[:, None], x, best)
                best_score = torch.where(better, score, best_score)
            done = score <= tolerance
            if bool(done.any()):
                met[alive[done]] = True
                finished.append((alive[done], best[done] if keep_best else x[done]))
                keep = ~done
                alive, x, z, u, z_bar, lower, upper = (t[keep] for t in (alive, x, z, u, z_bar, lower, upper))
                if keep_best:
                    best, best_score = best[keep], best_score[keep]
                if alive.numel() == 0:
                    break
        b = z_bar - u
        x = torch.fft.irfft(b, n=n, norm="ortho")[:, :window].clamp(lower, upper)
        z = torch.fft.rfft(x, n=n, norm="ortho")
        u = z - b  # u + A x - z̄
    if alive.numel():
        finished.append((alive, best if keep_best else x))
    if len(finished) == 1 and finished[0][0].numel() == frames.shape[0]:
        out = finished[0][1]  # every frame stopped together (or none stopped): already in order
    else:
        index = torch.cat([f[0] for f in finished])
        out = torch.zeros_like(frames).index_copy(0, index, torch.cat([f[1] for f in finished]))
    return (out, met) if return_met else out


def power(spectrum: Tensor) -> Tensor:
    """``|c|²`` of complex coefficients, without the square root of ``abs``."""
    return spectrum.real.square() + spectrum.imag.square()


def ranking_power(spectrum: Tensor) -> Tensor:
    """``|c|²`` of half spectra ``(frames, bins)`` for ranking, DC at half its magnitude (its power quartered),
    as ``hard_thresholding.m`` ranks it."""
    p = power(spectrum)
    p[:, 0] *= 0.25
    return p


def kth_power(ranked: Tensor, k: int) -> Tensor:
    """The k-th largest of each row of ``ranked`` ``(frames, bins)`` (:func:`ranking_power`), ``(frames, 1)``: the
    level a hard threshold keeping k per frame, ties included, keeps at or above."""
    return ranked.topk(k, dim=1, sorted=False).values.amin(1, keepdim=True)


def hard_threshold(coefficients: Tensor, k: int, keep_ties: bool = False) -> Tensor:
    """``hard_thresholding.m`` on half spectra ``(frames, bins)``: keep the k largest by :func:`ranking_power`, zero
    the rest; k at least the half length keeps everything. Exactly k (the sort's order breaks ties), or with
    ``keep_ties`` every coefficient at or above the k-th largest power (a threshold; the heavy path's rule)."""
    if k >= coefficients.shape[1]:
        return coefficients
    ranked = ranking_power(coefficients)
    if keep_ties:
        return torch.where(ranked >= kth_power(ranked, k), coefficients, 0)
    kept = torch.topk(ranked, k, dim=1, sorted=False).indices
    mask = torch.zeros(ranked.shape, dtype=torch.bool, device=ranked.device).scatter_(1, kept, True)
    return torch.where(mask, coefficients, 0)


def schedule(s: int, r: int, iteration: int) -> int:
    """A-SPADE's sparsity at ``iteration`` (from 0): k starts at ``s`` and grows by ``s`` each time its counter,
    starting at 1 and counting iterations, reaches a multiple of ``r`` (``aspade.m``)."""
    return s * (1 + (iteration + 1) // r - 1 // r)


def hann(window: int, device: torch.device | None = None) -> Tensor:
    """LTFAT's peak-normalised periodic ``firwin('hann', w)`` in time order: peak 1 at sample ``window // 2``;
    float64."""
    offsets = torch.arange(window, dtype=torch.float64, device=device) - window // 2
    return 0.5 + 0.5 * torch.cos(2 * math.pi * offsets / window)


def dual_window(g: Tensor, hop: int) -> Tensor:
    """The canonical dual of the window ``g`` at step ``hop``: ``g / Σ_n g²(· - n hop)``
    (LTFAT's ``gabdual(g, a, w) * w``). Analysis by ``g`` then synthesis by it, overlap-added, is the identity."""
    positions = torch.arange(g.shape[0], device=g.device)
    periodised = torch.zeros(hop, dtype=g.dtype, device=g.device).index_add_(0, positions % hop, g * g)
    return g / periodised[positions % hop]
