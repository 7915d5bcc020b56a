"""The ADMM of A-SPADE on a batch of windowed frames, shared by the baseline and the unfolded model.

Per frame, with :math:`A` the unitary DFT of the frame zero-padded to ``redundancy`` times its length and
:math:`\\Gamma` the frame's consistent set (``lower <= x <= upper``), each iteration

:math:`\\bar z = S_i(z + u),\\quad x = P_\\Gamma(A^*(\\bar z - u)),\\quad u \\leftarrow u + A x - \\bar z`

with :math:`S_i` the iteration's sparsifying step: hard thresholding to the ``k`` largest coefficients in
A-SPADE (:mod:`declip.baselines.aspade`) and in the unfolded model's heavy path (which keeps ties at the k-th),
a learned smooth gain in the unfolded model's iterations (:mod:`declip.models.unfolded`). The callers differ
only in that step, in their stopping rule and in which iterate a frame returns; :func:`admm` takes those three.
:class:`ADMM` keeps each frame's state between stages, so a path can be run in parts: the unfolded model's probe is
the start of its heavy path, and the frames it finds sparse go on from where it left them.

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
"""``(z, z̄) -> (frames,)``, real: each frame's stopping score, how far it is from its sparse estimate (absolute in
A-SPADE, relative to the spectrum's norm in the unfolded model's heavy path); a frame stops once it is at most
``tolerance``. Computed without gradient. With ``keep_best``, every stage's scores rank the iterates alike, so a
solver's stages share one objective."""


class ADMM:
    """A-SPADE's ADMM on windowed frames ``(n, w)`` within ``lower <= x <= upper``, run in stages that share each
    frame's state: a frame leaves the batch when it meets a stage's stopping rule, or when the caller stops it
    (:meth:`stop`), and keeps its last iterate (or, with ``keep_best``, ``aspade.m``'s best one: the iterate with the
    smallest objective it was scored at; a tie keeps the later one; the iterate after the last update is never
    scored, so never kept). Iterations are numbered across stages, so a sparsity schedule goes on where the last
    stage left it. Differentiable through ``sparsify`` and the projection (the unfolded model trains through it).

    ``met``: ``(n,)`` booleans, the frames that met a stopping rule; ``seen``: those whose objective was at most
    a stage's ``watch`` (a second tolerance, which stops nothing) at some scored iteration; ``left``: ``(n,)`` the
    iteration each frame left at (the updates it had), -1 while it runs."""

    def __init__(self, frames: Tensor, lower: Tensor, upper: Tensor, redundancy: int, keep_best: bool = False) -> None:
        count, self.window = frames.shape
        self.size = redundancy * self.window
        self.keep_best = keep_best
        self.iteration = 0
        self.met = torch.zeros(count, dtype=torch.bool, device=frames.device)
        self.seen = torch.zeros_like(self.met)
        self.left = torch.full((count,), -1, dtype=torch.long, device=frames.device)
        self._frames = frames
        self._x, self._lower, self._upper = frames.clone(), lower, upper
        self._z = torch.fft.rfft(self._x, n=self.size, norm="ortho") if count else frames.new_zeros(0, 0)
        self._u = torch.zeros_like(self._z)
        self._alive = torch.arange(count, device=frames.device)
        self._best = self._x
        self._best_score = torch.full((count,), math.inf, dtype=frames.dtype, device=frames.device)  # as aspade.m
        self._finished: list[tuple[Tensor, Tensor]] = []

    def run(
        self,
        sparsify: Sparsify,
        iterations: int,
        objective: Objective | None = None,
        tolerance: float = 0.0,
        watch: float | None = None,
    ) -> None:
        """At most ``iterations`` more iterations; a frame whose ``objective`` is at most ``tolerance`` leaves the
        batch (no ``objective``: every frame runs them all). A frame whose ``objective`` is at most ``watch`` (a looser
        tolerance that stops nothing) is marked in :attr:`seen`."""
        if self.keep_best and objective is None:
            raise ValueError("admm: keep_best needs an objective to rank the iterates by")
        if watch is not None and objective is None:
            raise ValueError("admm: watch is a tolerance on the objective, and none was given")
        for _ in range(iterations):
            if self._alive.numel() == 0:
                break
            z_bar = sparsify(self._z + self._u, self.iteration)
            if objective is not None:
                with torch.no_grad():
                    score = objective(self._z, z_bar)
                if watch is not None:
                    self.seen[self._alive[score <= watch]] = True
                if self.keep_best:
                    better = score <= self._best_score
                    self._best = torch.where(better[:, None], self._x, self._best)
                    self._best_score = torch.where(better, score, self._best_score)
                done = score <= tolerance
                if bool(done.any()):
                    self.met[self._alive[done]] = True
                    self._leave(done)
                    z_bar = z_bar[~done]
                    if self._alive.numel() == 0:
                        break
            b = z_bar - self._u
            self._x = torch.fft.irfft(b, n=self.size, norm="ortho")[:, : self.window].clamp(self._lower, self._upper)
            self._z = torch.fft.rfft(self._x, n=self.size, norm="ortho")
            self._u = self._z - b  # u + A x - z̄
            self.iteration += 1

    def stop(self, which: Tensor, keep: bool = True) -> None:
        """The frames ``which`` (``(n,)`` booleans over the whole batch) that are still running leave it now, with
        their iterate; with ``keep=False`` the iterate is dropped at once (:meth:`result` gives those frames as they
        came in), so a caller that restores them another way holds no copy of it."""
        self._leave(which[self._alive], keep)

    def result(self) -> Tensor:
        """Every frame's iterate ``(n, w)``, in the batch's order: the running ones' current one."""
        groups = self._finished + ([(self._alive, self._returned())] if self._alive.numel() else [])
        if len(groups) == 1 and groups[0][0].numel() == self._frames.shape[0]:
            return groups[0][1]  # every frame left together (or none left): already in order
        if not groups:
            return self._frames.clone()
        index = torch.cat([g[0] for g in groups])
        return self._frames.index_copy(0, index, torch.cat([g[1] for g in groups]))  # dropped frames: as they came

    def _returned(self) -> Tensor:
        return self._best if self.keep_best else self._x

    def _leave(self, done: Tensor, keep: bool = True) -> None:
        """Rows ``done`` of the running frames leave, with their iterate unless ``keep`` is false; the running state
        shrinks."""
        if not bool(done.any()):
            return
        if keep:
            self._finished.append((self._alive[done], self._returned()[done]))
        self.left[self._alive[done]] = self.iteration
        running = ~done
        self._alive, self._x, self._z, self._u, self._lower, self._upper = (
            t[running] for t in (self._alive, self._x, self._z, self._u, self._lower, self._upper)
        )
        if self.keep_best:
            self._best, self._best_score = self._best[running], self._best_score[running]


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
) -> Tensor:
    """Run A-SPADE's ADMM (:class:`ADMM`, one stage) on windowed frames ``(n, w)`` within ``lower <= x <= upper``;
    the restored frames.

    A frame whose ``objective`` is at most ``tolerance`` leaves the batch (the others run on), at most
    ``iterations`` iterations in all; no ``objective``: every frame runs them all (``tolerance`` unused). A frame
    returns its last iterate, or with ``keep_best`` (``aspade.m``) the iterate with the smallest objective it was
    scored at. An empty batch or no iteration gives the frames back. Which frames met the rule: :attr:`ADMM.met`."""
    solver = ADMM(frames, lower, upper, redundancy, keep_best)
    solver.run(sparsify, iterations, objective, tolerance)
    return solver.result()


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
