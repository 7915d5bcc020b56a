"""Deep-unfolded consistent declipper: K iterations of A-SPADE with learned, smooth thresholds.

Each frame of the signal (a Hann window of ``window`` samples every ``hop``) is restored on its own,
as A-SPADE does (:mod:`declip.baselines.aspade`): the frame's DFT, zero-padded to ``redundancy``
times its length, is alternately sparsified and projected onto the frame's consistent set (reliable
samples equal to the input, clipped ones at or beyond the threshold), by the ADMM of A-SPADE. Here
the number of iterations is fixed, and the hard threshold "keep the k largest coefficients" becomes a
smooth gain whose level and steepness are learned per iteration and per frequency band:

:math:`w \\mapsto w \\cdot \\sigma\\big(a_i\\,(\\log|w|^2 - \\log|w_{(k_i)}|^2 - \\delta_{i,b})\\big)`

with :math:`|w_{(k_i)}|` the ``k_i``-th largest magnitude of the frame (``k_i = k_step (i+1)``, A-SPADE's
schedule with ``r = 1``, or geometric up to ``k_max``), :math:`\\delta_{i,b}` a learned offset per iteration
``i`` and band ``b`` and :math:`a_i` a learned steepness. Untrained (δ = 0, steep gains) it is truncated
A-SPADE. The levels are relative to each frame's own coefficients, so the model is exactly equivariant to
amplitude.

With ``heavy_share``, frames at least that share clipped skip the learned iterations and run A-SPADE's own
slow schedule (k = 1, 2, 2, 3, 3, ..., or from ``heavy_start``; hard thresholds, no parameters) until their
spectrum is within ``heavy_rho`` of its sparse estimate: under heavy clipping A-SPADE's frames stop at k of
several hundred after hundreds of iterations, a range the K geometric steps cross in a few. Unlike ``aspade.m``,
such a frame returns its last iterate, not the one with the smallest residual: on dense music, whose frames do
not meet the rule, the smallest residual is an early iterate (docs/results.md).

With ``probe_iterations``, the other clipped frames first run that path for at most that many iterations: a frame
whose spectrum comes within ``probe_rho`` of its sparse estimate is a sparse one (a single line, as most of SQAM's
excerpts) and goes on along the heavy path from where the probe left it (the probe is that path's start, so this is
the heavy path from the start); the others take the learned iterations. With ``probe_dense``, frames whose input is
already dense (much of its energy outside its largest few coefficients) skip the probe. On the validation
splits, at ``probe_rho`` 0.5 and 300 iterations, no light frame of game music and 308 of 816 of the chorales' settled;
solo voices gained 4.7 dB on the mean, up to 10 dB at 10 dB input SDR; at ``probe_dense`` 0.4 (32 coefficients),
46 % of game music's probed frames skip the probe, and no frame that settled would have (docs/results.md).

Frames without a clipped sample are not computed (they are their input); with ``eps``, a frame stops as
soon as A-SPADE's criterion holds (its spectrum within ``eps`` of its sparse estimate). Every sample depends
only on the frames that hold it: the receptive field is one window, so chunked restoration equals
one pass. The output is consistent: reliable samples are kept bit-exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from declip.config import capture_init
from declip.errors import ConfigError
from declip.spade import ADMM, admm, dual_window, hann, hard_threshold, kth_power, power, ranking_power, schedule

TINY = 1e-30  # floor of powers before their logarithm (float32 keeps it)
SIGMOID_RANGE = 30.0  # gains stay >= 1e-13: no subnormal floats, which are slow on CPUs


def _overlap_add(frames: Tensor, hop: int) -> Tensor:
    """Sum frames ``(rows, count, w)`` placed every ``hop`` samples: ``(rows, (count - 1) * hop + w)``.
    ``w`` is a multiple of ``hop``: each frame is ``w / hop`` blocks, each block shifted and added."""
    rows, count, w = frames.shape
    parts = w // hop
    blocks = frames.reshape(rows, count, parts, hop)
    out = sum(F.pad(blocks[:, :, c], (0, 0, c, parts - 1 - c)) for c in range(parts))
    return out.reshape(rows, -1)


class UnfoldedSPADE(nn.Module):
    """``(batch, 2*channels, time) -> (batch, channels, time)``: frame-wise unfolded A-SPADE.

    The input is ``y/s`` and the signed clip mask, as for every backbone (:class:`~declip.models.Declipper`);
    on a clipped sample ``y/s`` is the threshold itself, so the bounds of the consistent set come from
    the input. The output is the correction ``x/s - y/s``: zero on reliable samples, outward on clipped ones.

    Args:
        channels: audio channels (each restored on its own, with the same parameters).
        window: frame length in samples, a power of two (A-SPADE on SQAM: 8192).
        hop: frame step; divides ``window`` and is at most ``window // 2``.
        redundancy: the DFT is ``redundancy * window`` points (frame zero-padded), at least 1.
        iterations: K, the unfolded iterations, at least 1.
        k_step: sparsity added per iteration (A-SPADE's ``s`` with ``r = 1``); with ``k_max``, the first k.
        k_max: if given, k grows geometrically from ``k_step`` to ``k_max`` over the K iterations instead
            of linearly: few iterations then reach the dense sparsities heavy clipping needs.
        bands: frequency bands (log-spaced) with a threshold offset each, per iteration.
        sharpness: initial steepness of the smooth threshold (in 1 / log-power units); large is hard.
        eps: if given, A-SPADE's stopping rule: a frame whose spectrum is within ``eps`` (threshold units,
            windowed frame) of its sparsified spectrum is done and leaves the batch; the others run on.
            None runs every frame through all K iterations.
        heavy_share: if given, frames with at least this share of clipped samples take A-SPADE's own path
            instead: k = 1, 2, 2, 3, 3, ... (one more every two iterations), hard thresholds, each frame
            stopping once its spectrum is within ``heavy_rho`` of its k-sparse estimate (relative to the
            spectrum's norm, so the rule is free of scale), at most ``heavy_iterations``. Heavily clipped
            frames need A-SPADE's slow growth of k, which K geometric steps skip; this path has no learned
            parameters. None: no share rule (every frame takes the learned K iterations unless the probe sends it to
            the heavy path).
        heavy_iterations: the most iterations of that path.
        heavy_rho: its relative stopping tolerance.
        heavy_start: the path's first k (k₀): k = k₀, k₀ + 1, k₀ + 1, k₀ + 2, ...; 1 is A-SPADE's. A later start
            saves iterations where frames settle at k of several hundred (dense music) and loses where they settle
            sooner (a start at 64 lost solo voices 2 to 4.6 dB on the validation split: docs/results.md).
        probe_iterations: if above 0, frames the share rule leaves to the learned iterations (every clipped frame when
            ``heavy_share`` is None) first run the heavy path for at most this many iterations, at most
            ``heavy_iterations``; those whose spectrum comes within ``probe_rho`` of its sparse estimate (a sparse
            frame) go on along it, the others take the learned iterations. 0: no probe.
        probe_rho: the probe's relative tolerance, normally looser than ``heavy_rho``: it asks whether a frame is
            sparse, not whether it has converged.
        probe_dense: if given, a frame whose input (as clipped, windowed) has more than this share of its spectrum's
            energy outside its ``probe_top`` largest coefficients is dense and skips the probe (no iteration decides
            it). None: every light frame is probed.
        probe_top: the coefficients that test counts.
    """

    float32_only = True  # frames are restored in float32 (FFTs ignore autocast): bfloat16 would gain nothing

    @capture_init
    def __init__(
        self,
        channels: int = 1,
        window: int = 8192,
        hop: int = 2048,
        redundancy: int = 2,
        iterations: int = 32,
        k_step: int = 16,
        k_max: int | None = None,
        bands: int = 16,
        sharpness: float = 8.0,
        eps: float | None = None,
        heavy_share: float | None = None,
        heavy_iterations: int = 1000,
        heavy_rho: float = 0.05,
        heavy_start: int = 1,
        probe_iterations: int = 0,
        probe_rho: float = 0.2,
        probe_dense: float | None = None,
        probe_top: int = 32,
    ) -> None:
        super().__init__()
        if window < 16 or window & (window - 1):
            raise ConfigError(f"UnfoldedSPADE window must be a power of two >= 16; got {window}")
        if hop < 1 or hop > window // 2 or window % hop:
            raise ConfigError(
                f"UnfoldedSPADE hop must divide window and be at most window/2; got hop {hop}, window {window}"
            )
        if iterations < 1:
            raise ConfigError(f"UnfoldedSPADE iterations (K) must be at least 1; got {iterations}")
        if redundancy < 1 or k_step < 1 or bands < 1:
            raise ConfigError(
                f"UnfoldedSPADE needs redundancy, k_step and bands >= 1; got {redundancy}, {k_step}, {bands}"
            )
        if k_max is not None and k_max < k_step:
            raise ConfigError(f"UnfoldedSPADE k_max must be at least k_step; got k_max {k_max}, k_step {k_step}")
        if eps is not None and not eps >= 0:
            raise ConfigError(f"UnfoldedSPADE eps must be at least 0 (or null: run all K iterations); got {eps}")
        if heavy_share is not None and not 0 < heavy_share <= 1:
            raise ConfigError(
                f"UnfoldedSPADE heavy_share must be in (0, 1] (or null: no heavy path); got {heavy_share}"
            )
        if heavy_iterations < 1 or not heavy_rho >= 0 or heavy_start < 1:
            raise ConfigError(
                "UnfoldedSPADE needs heavy_iterations >= 1, heavy_rho >= 0 and heavy_start >= 1; "
                f"got {heavy_iterations}, {heavy_rho}, {heavy_start}"
            )
        if not 0 <= probe_iterations <= heavy_iterations or not 0 <= probe_rho <= 1:
            raise ConfigError(
                "UnfoldedSPADE needs probe_iterations in [0, heavy_iterations] (0: no probe; the probe is the heavy "
                f"path's start) and probe_rho in [0, 1]; got {probe_iterations}, heavy_iterations {heavy_iterations}, "
                f"probe_rho {probe_rho}"
            )
        if (probe_dense is not None and not 0 <= probe_dense <= 1) or probe_top < 1:
            raise ConfigError(
                "UnfoldedSPADE needs probe_dense in [0, 1] (or null: probe every light frame) and probe_top >= 1; "
                f"got {probe_dense}, {probe_top}"
            )
        if not sharpness > 0:
            raise ConfigError(f"UnfoldedSPADE sharpness must be positive; got {sharpness}")
        self.channels, self.window, self._hop = channels, window, hop
        self.redundancy, self.iterations, self.k_step, self.k_max = redundancy, iterations, k_step, k_max
        self.eps = eps
        self.heavy_share, self.heavy_iterations, self.heavy_rho = heavy_share, heavy_iterations, heavy_rho
        self.heavy_start = heavy_start
        self.probe_iterations, self.probe_rho = probe_iterations, probe_rho
        self.probe_dense, self.probe_top = probe_dense, probe_top
        bins = redundancy * window // 2 + 1
        self.sparsities = [min(k, bins) for k in self._schedule(k_step, k_max, iterations)]
        # band of each bin: log-spaced edges from bin 1 up, DC in the first band
        edges = torch.logspace(0, math.log10(bins), bands + 1)
        band = torch.bucketize(torch.arange(bins).clamp(min=1).float(), edges[1:-1], right=True)
        self.register_buffer("band", band, persistent=False)
        self.offset = nn.Parameter(torch.zeros(iterations, bands))
        self.log_sharpness = nn.Parameter(torch.full((iterations,), math.log(sharpness)))
        g = hann(window)
        self.register_buffer("analysis", g.float(), persistent=False)
        self.register_buffer("synthesis", dual_window(g, hop).float(), persistent=False)

    @staticmethod
    def _schedule(k_step: int, k_max: int | None, iterations: int) -> list[int]:
        """k of each iteration: ``k_step (i + 1)``, or geometric from ``k_step`` to ``k_max``."""
        if k_max is None:
            return [k_step * (i + 1) for i in range(iterations)]
        ratio = (k_max / k_step) ** (1 / max(iterations - 1, 1))
        return [round(k_step * ratio**i) for i in range(iterations)]

    @property
    def hop(self) -> int:
        """Frames start on multiples of ``hop``: shifting the input by it shifts the output alike."""
        return self._hop

    @property
    def receptive_field(self) -> int:
        """Each output sample depends on the input within one window of it, on each side."""
        return self.window

    def forward(self, inp: Tensor) -> Tensor:
        batch, _, length = inp.shape
        u = inp[:, : self.channels].reshape(batch * self.channels, length)
        signed = inp[:, self.channels :].reshape(batch * self.channels, length)
        x = self._restore(u.float(), signed.float()).to(inp.dtype)
        correction = torch.where(signed > 0, (x - u).clamp(min=0), torch.where(signed < 0, (x - u).clamp(max=0), 0))
        if torch.is_grad_enabled() and not correction.requires_grad and self.offset.requires_grad:
            # no frame took the learned iterations (all on the heavy path, or none clipped): the parameters get a
            # zero gradient instead of a backward pass that fails for want of a graph
            correction = correction + 0 * (self.offset.sum() + self.log_sharpness.sum())
        return correction.reshape(batch, self.channels, length)

    def _restore(self, u: Tensor, signed: Tensor) -> Tensor:
        """Rows ``u`` ``(rows, time)`` in threshold units with their signed masks; the restored rows."""
        rows, length = u.shape
        w, hop = self.window, self._hop
        right = w + (-length % hop)
        u_pad = F.pad(u, (w, right))
        s_pad = F.pad(signed, (w, right))
        frames = u_pad.unfold(1, w, hop)  # (rows, count, w): frame j covers u[j*hop - w : j*hop]
        masks = s_pad.unfold(1, w, hop)
        count = frames.shape[1]
        todo = (masks != 0).any(-1).flatten().nonzero().flatten()
        if todo.numel() == 0:
            return u
        g = self.analysis.to(u)
        frame = frames.reshape(-1, w)[todo] * g
        mask = masks.reshape(-1, w)[todo]
        lower = torch.where(mask < 0, -math.inf, frame)  # clipped high: at least the (windowed) level
        upper = torch.where(mask > 0, math.inf, frame)
        restored = self._paths(frame, mask, lower, upper)
        corrections = torch.zeros(rows * count, w, dtype=u.dtype, device=u.device)
        corrections = corrections.index_copy(0, todo, (restored - frame) * self.synthesis.to(u))
        added = _overlap_add(corrections.reshape(rows, count, w), hop)
        return u + added[:, w : w + length]

    def _iterate(self, frames: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
        """K unfolded A-SPADE iterations on windowed frames ``(n, w)`` within ``lower <= x <= upper``: the ADMM of
        :func:`declip.spade.admm` with the learned smooth threshold as its sparsifying step."""
        sharp = self.log_sharpness.exp()

        def sparsify(v: Tensor, i: int) -> Tensor:
            # the gain's position is fixed in the backward pass (power detached, as the level): through it the
            # gradient grew geometrically with K (1e23 at K = 64, inf at 128); v * gain keeps it bounded
            with torch.no_grad():
                p = ranking_power(v)
                level = kth_power(p, self.sparsities[i])
                log_ratio = p.clamp_(min=TINY).log_().sub_(level.clamp(min=TINY).log())
            gain = torch.sigmoid(
                (sharp[i] * (log_ratio - self.offset[i][self.band])).clamp(-SIGMOID_RANGE, SIGMOID_RANGE)
            )
            return v * gain

        if self.eps is None:
            return admm(frames, lower, upper, self.redundancy, sparsify, self.iterations)

        def distance(z: Tensor, z_bar: Tensor) -> Tensor:  # A-SPADE's rule: within eps over the full spectrum
            return (power(z - z_bar).sum(1) * 2).sqrt()

        return admm(frames, lower, upper, self.redundancy, sparsify, self.iterations, distance, self.eps)

    def _paths(self, frames: Tensor, mask: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
        """Each frame restored along its path: the heavy path for those at least ``heavy_share`` clipped and those the
        probe finds sparse, the learned iterations for the others."""
        if self.heavy_share is None and not self.probe_iterations:
            return self._iterate(frames, lower, upper)
        heavy = torch.zeros(frames.shape[0], dtype=torch.bool, device=frames.device)
        if self.heavy_share is not None:
            heavy = (mask != 0).float().mean(1) >= self.heavy_share
        restored = torch.zeros_like(frames)
        if self.probe_iterations:  # the heavy frames run in the probe's batch: one batch for the path's long tail
            light = (~heavy).nonzero().flatten()
            if self.probe_dense is not None:
                light = light[~self._dense(frames[light])]
            index = heavy.index_fill(0, light, True).nonzero().flatten()
            out, kept = self._probe_and_settle(frames[index], lower[index], upper[index], heavy[index])
            settled = index[kept]
            restored = restored.index_copy(0, settled, out[kept])
        else:
            settled = heavy.nonzero().flatten()
            if settled.numel():
                restored = restored.index_copy(
                    0, settled, self._settle(frames[settled], lower[settled], upper[settled])
                )
        learned = torch.ones_like(heavy).index_fill(0, settled, False).nonzero().flatten()
        if learned.numel():
            restored = restored.index_copy(0, learned, self._iterate(frames[learned], lower[learned], upper[learned]))
        return restored

    def _heavy_sparsify(self, v: Tensor, i: int) -> Tensor:
        """The heavy path's step: keep the k largest, k = 1, 2, 2, 3, 3, ... shifted to start at ``heavy_start``."""
        return hard_threshold(v, schedule(1, 2, i) + self.heavy_start - 1, keep_ties=True)

    @staticmethod
    def _relative(z: Tensor, z_bar: Tensor) -> Tensor:
        """``‖z - z̄‖² / ‖z‖²`` of each frame, 0 where ``z = z̄``: a frame is within ρ of its sparse estimate when this
        is at most ρ²."""
        distance, energy = power(z - z_bar).sum(1), power(z).sum(1)
        return torch.where(distance == 0, 0.0, distance / energy)  # 0 / 0: met; d / 0: inf; nan: never met

    @torch.no_grad()
    def _dense(self, frames: Tensor) -> Tensor:
        """``(n,)`` booleans: the frames with more than ``probe_dense`` of their energy outside their ``probe_top``
        largest coefficients (by :func:`ranking_power`, on the input as it is: a test before any iteration)."""
        if frames.shape[0] == 0:  # an FFT of no frame fails on some backends
            return torch.zeros(0, dtype=torch.bool, device=frames.device)
        p = ranking_power(torch.fft.rfft(frames, n=self.redundancy * self.window, norm="ortho"))
        top = p.topk(min(self.probe_top, p.shape[1]), dim=1, sorted=False).values.sum(1)
        return top < (1 - self.probe_dense) * p.sum(1)

    @torch.no_grad()
    def _probe_and_settle(self, frames: Tensor, lower: Tensor, upper: Tensor, heavy: Tensor) -> tuple[Tensor, Tensor]:
        """The heavy path on ``frames``, in two stages: the probe (at most ``probe_iterations``), then, for the
        ``heavy`` frames and those the probe found within ``probe_rho`` of their sparse estimate, the rest of the path
        from where the probe left them. ``(the frames as that path leaves them, (n,) booleans: which went on)``; the
        others' frames come back as given (their probe iterates are dropped when they leave)."""
        solver = ADMM(frames, lower, upper, self.redundancy)
        rule = self._relative, self.heavy_rho**2
        solver.run(self._heavy_sparsify, self.probe_iterations, *rule, watch=self.probe_rho**2)
        kept = solver.seen | heavy  # a frame that met the path's own rule but not the probe's is not sparse
        solver.stop(~kept, keep=False)
        solver.run(self._heavy_sparsify, self.heavy_iterations - self.probe_iterations, *rule)
        return solver.result(), kept

    @torch.no_grad()
    def _settle(self, frames: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
        """A-SPADE's own iterations on the heavy path's frames: k = 1, 2, 2, 3, 3, ... shifted to start at
        ``heavy_start``, hard thresholds; a frame is done once ``‖z - z̄‖ <= heavy_rho ‖z‖`` and returns its last
        iterate (see the module docstring). No parameters, so no gradient."""
        return admm(
            frames, lower, upper, self.redundancy, self._heavy_sparsify, self.heavy_iterations,
            self._relative, self.heavy_rho**2,
        )  # fmt: skip
