"""The shared ADMM of A-SPADE: its sparsity schedule, stopping, returned iterates and windows."""

import importlib
import math

import pytest
import torch

from declip.baselines.aspade import aspade
from declip.models import Declipper, UnfoldedSPADE
from declip.physics import Clipping, threshold_for_sdr
from declip.spade import ADMM, admm, dual_window, hann, hard_threshold, power, ranking_power, schedule


def aspade_m_sparsities(s: int, r: int, iterations: int) -> list[int]:
    """k at each iteration as ``aspade.m`` counts it: counter from 1, k += s when the counter is a multiple of r."""
    k, counter, out = s, 1, []
    for _ in range(iterations):
        out.append(k)
        counter += 1
        if counter % r == 0:
            k += s
    return out


@pytest.mark.parametrize("s, r", [(1, 1), (1, 2), (2, 3), (3, 2)])
def test_schedule_counts_as_aspade_m(s, r):
    assert [schedule(s, r, i) for i in range(20)] == aspade_m_sparsities(s, r, 20)


def test_hard_threshold_keeps_k_bins_and_ranks_dc_at_half_its_magnitude():
    c = torch.tensor([[3.0, 2.0, -1.0, 0.5]], dtype=torch.complex128)
    for keep_ties in (False, True):
        kept = [hard_threshold(c, k, keep_ties) for k in (1, 2, 4, 9)]
        assert torch.equal(kept[0], torch.tensor([[0, 2.0, 0, 0]], dtype=torch.complex128))  # |3|/2 < 2
        assert torch.equal(kept[1], torch.tensor([[3.0, 2.0, 0, 0]], dtype=torch.complex128))
        assert torch.equal(kept[2], c) and torch.equal(kept[3], c)


def test_hard_threshold_keeps_exactly_k_or_every_tie_of_the_kth():
    c = torch.tensor([[0.0, 2.0, -2.0, 1j * 2, 0.5], [0.0, 1.0, 3.0, 2.0, 2.0]], dtype=torch.complex64)
    exact, ties = hard_threshold(c, 2), hard_threshold(c, 2, keep_ties=True)
    assert (exact != 0).sum(1).tolist() == [2, 2] and exact[1, 2] == 3.0  # the largest always kept
    assert torch.equal(ties, torch.tensor([[0, 2.0, -2.0, 2j, 0], [0, 0, 3.0, 2.0, 2.0]], dtype=torch.complex64))
    assert torch.equal(exact[ties == 0], torch.zeros(int((ties == 0).sum()), dtype=torch.complex64))


def test_ranking_power_quarters_dc_only():
    c = torch.tensor([[2 + 0j, 1 + 1j, 3j]])
    assert torch.equal(ranking_power(c), torch.tensor([[1.0, 2.0, 9.0]]))


def hard(k: int):
    def sparsify(v, i):
        p = ranking_power(v)
        return torch.where(p >= p.topk(k, dim=1).values[:, -1:], v, 0)

    return sparsify


def clipped_frames(count: int, window: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(window, dtype=torch.float64)
    x = torch.stack([torch.sin(2 * math.pi * (3 + j) * t / window + j) for j in range(count)])
    x = x + 0.01 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    y = x.clamp(-0.6, 0.6)
    lower = torch.where(y >= 0.6, 0.6, torch.where(y <= -0.6, -math.inf, y))
    upper = torch.where(y <= -0.6, -0.6, torch.where(y >= 0.6, math.inf, y))
    return y, lower, upper


def counting_score(stops: dict[int, int]):
    """A score that stops frame f (an index into the original batch) at iteration ``stops[f]``; never the others."""
    state = {"iteration": 0, "alive": None}

    def score(z, z_bar):
        i = state["iteration"]
        state["iteration"] += 1
        if state["alive"] is None:
            state["alive"] = list(range(z.shape[0]))
        out = torch.ones(z.shape[0], dtype=torch.float64)
        for row, frame in enumerate(state["alive"]):
            if stops.get(frame) == i:
                out[row] = 0
        state["alive"] = [f for row, f in enumerate(state["alive"]) if out[row] > 0.5]
        return out

    return score


def test_frames_that_stop_return_their_iterate_in_place_and_the_others_run_on():
    y, lower, upper = clipped_frames(4)
    out = admm(y, lower, upper, 2, hard(4), 10, counting_score({1: 3, 2: 0}), 0.5)
    # frame 1 is scored a fourth time after three updates: its third iterate; frame 2 its input
    assert torch.equal(out[1], admm(y[1:2], lower[1:2], upper[1:2], 2, hard(4), 3)[0])
    assert torch.equal(out[2], y[2])
    alone = admm(y[[0, 3]], lower[[0, 3]], upper[[0, 3]], 2, hard(4), 10)
    assert torch.equal(out[[0, 3]], alone)
    solver = ADMM(y, lower, upper, 2)
    solver.run(hard(4), 10, counting_score({1: 3, 2: 0}), 0.5)
    assert torch.equal(solver.result(), out) and solver.met.tolist() == [False, True, True, False]
    short = ADMM(y, lower, upper, 2)
    short.run(hard(4), 3, counting_score({1: 3, 2: 0}), 0.5)
    assert short.met.tolist() == [False, False, True, False]  # frame 1 would stop at its fourth score: past the last


def literal_aspade_m(frames, lower, upper, redundancy, k_of, max_iterations, distance, eps):
    """``aspade.m`` one frame at a time, as written there: the best iterate by objective, stop at eps; also the
    iteration each frame stopped at (``max_iterations``: never)."""
    results, stopped = [], []
    n = redundancy * frames.shape[1]
    for f in range(frames.shape[0]):
        x = frames[f : f + 1]
        z = torch.fft.rfft(x, n=n, norm="ortho")
        u = torch.zeros_like(z)
        best, best_objective, stop = x, math.inf, max_iterations
        for i in range(max_iterations):
            z_bar = k_of(z + u, i)
            objective = float(distance(z, z_bar))
            if objective <= best_objective:
                best, best_objective = x, objective
            if objective <= eps:
                stop = i
                break
            b = z_bar - u
            x = torch.fft.irfft(b, n=n, norm="ortho")[:, : frames.shape[1]].clamp(lower[f : f + 1], upper[f : f + 1])
            z = torch.fft.rfft(x, n=n, norm="ortho")
            u = z - b
        results.append(best)
        stopped.append(stop)
    return torch.cat(results), stopped


def test_keep_best_frame_by_frame_equals_aspade_m_one_frame_at_a_time():
    y, lower, upper = clipped_frames(6, seed=3)

    def sparsify(v, i):
        return hard(schedule(1, 2, i))(v, i)

    def distance(z, z_bar):
        return power(z - z_bar).sum(1).sqrt()

    eps = 1.0
    batched = admm(y, lower, upper, 2, sparsify, 32, distance, eps, keep_best=True)
    one_by_one, stopped = literal_aspade_m(y, lower, upper, 2, sparsify, 32, distance, eps)
    assert torch.equal(batched, one_by_one)
    assert len(set(stopped)) > 2 and 32 in stopped, stopped  # frames left at different iterations, one never


def test_keep_best_returns_the_iterate_with_the_smallest_score():
    y, lower, upper = clipped_frames(2)
    scores = iter([5.0, 1.0, 3.0, 2.0])  # the second iterate scored (after one update) is the best

    def score(z, z_bar):
        return torch.full((z.shape[0],), next(scores), dtype=torch.float64)

    best = admm(y, lower, upper, 2, hard(4), 4, score, -1.0, keep_best=True)
    assert torch.equal(best, admm(y, lower, upper, 2, hard(4), 1))
    assert not torch.equal(best, admm(y, lower, upper, 2, hard(4), 4))


def test_a_nan_score_is_never_the_best():
    y, lower, upper = clipped_frames(1)
    scores = iter([math.nan, 2.0, 3.0])

    def score(z, z_bar):
        return torch.full((z.shape[0],), next(scores), dtype=torch.float64)

    best = admm(y, lower, upper, 2, hard(4), 3, score, -1.0, keep_best=True)
    assert torch.equal(best, admm(y, lower, upper, 2, hard(4), 1))


def test_keep_best_and_watch_need_an_objective():
    y, lower, upper = clipped_frames(1)
    with pytest.raises(ValueError, match="keep_best"):
        admm(y, lower, upper, 2, hard(4), 3, keep_best=True)
    with pytest.raises(ValueError, match="watch is a tolerance"):
        ADMM(y, lower, upper, 2).run(hard(4), 3, watch=0.1)


@pytest.mark.parametrize("stops", [{}, {0: 2}])
def test_output_is_consistent_and_differentiable_also_where_a_frame_stopped(stops):
    y, lower, upper = clipped_frames(2)
    scale = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    out = admm(y, lower, upper, 2, lambda v, i: hard(8)(v, i) * scale, 5, counting_score(stops), 0.5)
    assert bool((out >= lower).all()) and bool((out <= upper).all())
    reliable = torch.isfinite(lower) & torch.isfinite(upper)
    assert torch.equal(out[reliable], y[reliable])
    for frame in (0, 1):  # the frame that stopped early too
        (grad,) = torch.autograd.grad(out[frame].square().sum(), scale, retain_graph=True)
        assert torch.isfinite(grad) and float(grad.abs()) > 0


@pytest.mark.parametrize("window, hop", [(64, 16), (64, 24), (48, 12)])
def test_dual_window_overlap_add_is_the_identity(window, hop):
    g = hann(window)
    assert float(g[window // 2]) == 1.0 and float(g[0]) == 0.0  # periodic: zero once, at the start
    assert torch.allclose(g[1:], g[1:].flip(0))
    dual = dual_window(g, hop)
    x = torch.randn(40 * hop, dtype=torch.float64)  # a whole number of hops: the frame grid wraps evenly
    out = torch.zeros_like(x)
    for start in range(0, x.shape[0], hop):
        positions = torch.arange(start, start + window) % x.shape[0]
        out.index_add_(0, positions, x[positions] * g * dual)
    assert torch.allclose(out, x)


def test_aspade_keeps_exactly_k_and_the_heavy_path_keeps_ties(monkeypatch):
    """The two callers of :func:`hard_threshold` ask for their own tie rule: A-SPADE's ``hard_thresholding.m``
    keeps exactly k, the unfolded model's heavy path every coefficient at the k-th power (its shipped rule)."""
    calls = []

    def spy(coefficients, k, keep_ties=False):
        calls.append(keep_ties)
        return hard_threshold(coefficients, k, keep_ties)

    for module in ("declip.baselines.aspade", "declip.models.unfolded"):  # the package names the function aspade
        monkeypatch.setattr(importlib.import_module(module), "hard_threshold", spy)
    t = torch.arange(4096) / 8000
    x = (0.8 * torch.sin(2 * torch.pi * 440 * t) + 0.3 * torch.sin(2 * torch.pi * 1250 * t)).float()
    theta = threshold_for_sdr(x[None], 3.0)
    y = Clipping(theta)(x)
    aspade(y, float(theta), window=512, hop=128, max_iterations=5)
    assert calls and not any(calls)
    calls.clear()
    backbone = UnfoldedSPADE(window=512, hop=128, iterations=2, k_step=4, heavy_share=1e-6, heavy_iterations=5)
    with torch.no_grad():
        Declipper(backbone)(y[None, None], Clipping(theta))
    assert calls and all(calls)


def test_stages_share_each_frames_state_and_numbering():
    """Two stages of 4 and 6 iterations are one run of 10 (the schedule sees iterations 0 to 9); a frame stopped by
    the caller keeps its iterate; ``watch`` marks frames and stops none."""
    y, lower, upper = clipped_frames(4)

    def sparsify(v, i):
        return hard(schedule(1, 2, i))(v, i)

    staged = ADMM(y, lower, upper, 2)
    staged.run(sparsify, 4)
    staged.run(sparsify, 6)
    assert staged.iteration == 10
    assert torch.equal(staged.result(), admm(y, lower, upper, 2, sparsify, 10))

    marked = iter([set(), {0}, {0, 3}])  # the rows (every frame runs on) scored 1 at each iteration, the others 2

    def score(z, z_bar):
        rows = next(marked)
        return torch.tensor([1.0 if row in rows else 2.0 for row in range(z.shape[0])])

    solver = ADMM(y, lower, upper, 2)
    solver.run(sparsify, 3, score, 0.5, watch=1.0)
    assert solver.seen.tolist() == [True, False, False, True] and not solver.met.any()
    solver.stop(torch.tensor([False, True, False, False]))
    assert solver.left.tolist() == [-1, 3, -1, -1]  # the updates it had when it left
    solver.run(sparsify, 7)
    out = solver.result()
    assert torch.equal(out[1], admm(y[1:2], lower[1:2], upper[1:2], 2, sparsify, 3)[0])
    assert torch.equal(out[[0, 2, 3]], admm(y[[0, 2, 3]], lower[[0, 2, 3]], upper[[0, 2, 3]], 2, sparsify, 10))


def test_a_frame_that_met_the_rule_in_one_stage_stays_out_of_the_next():
    y, lower, upper = clipped_frames(3)
    solver = ADMM(y, lower, upper, 2)
    solver.run(hard(4), 4, counting_score({2: 1}), 0.5)
    solver.run(hard(4), 5)
    assert solver.met.tolist() == [False, False, True] and solver.left.tolist() == [-1, -1, 1]
    out = solver.result()
    assert torch.equal(out[2], admm(y[2:3], lower[2:3], upper[2:3], 2, hard(4), 1)[0])
    assert torch.equal(out[:2], admm(y[:2], lower[:2], upper[:2], 2, hard(4), 9))


def test_a_frame_stopped_without_keeping_its_iterate_comes_back_as_given():
    y, lower, upper = clipped_frames(4)
    solver = ADMM(y, lower, upper, 2)
    solver.run(hard(4), 3)
    solver.stop(torch.tensor([True, False, False, True]), keep=False)
    assert solver.left.tolist() == [3, -1, -1, 3]
    solver.run(hard(4), 5)
    out = solver.result()
    assert torch.equal(out[[0, 3]], y[[0, 3]])
    assert torch.equal(out[[1, 2]], admm(y[[1, 2]], lower[[1, 2]], upper[[1, 2]], 2, hard(4), 8))
    everyone = ADMM(y, lower, upper, 2)
    everyone.run(hard(4), 2)
    everyone.stop(torch.ones(4, dtype=torch.bool), keep=False)
    assert torch.equal(everyone.result(), y)
