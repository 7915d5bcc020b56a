"""The shared ADMM of A-SPADE: its sparsity schedule, stopping, returned iterates and windows."""

import math

import pytest
import torch

from declip.spade import admm, dual_window, hann, ranking_power, schedule


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


def test_frames_that_stop_early_return_in_place_and_the_others_run_on():
    y, lower, upper = clipped_frames(3)
    steps = {}

    def score(z, z_bar):  # frame 1 stops at once (its input returned); the others never
        steps[len(steps)] = z.shape[0]
        out = torch.ones(z.shape[0], dtype=torch.float64)
        if len(steps) == 1:
            out[1] = 0
        return out

    out = admm(y, lower, upper, 2, hard(4), 10, score, 0.5)
    assert torch.equal(out[1], y[1])
    alone = admm(y[[0, 2]], lower[[0, 2]], upper[[0, 2]], 2, hard(4), 10)
    assert torch.equal(out[[0, 2]], alone)
    assert steps[0] == 3 and steps[1] == 2 and len(steps) == 10


def test_keep_best_returns_the_iterate_with_the_smallest_score():
    y, lower, upper = clipped_frames(2)
    scores = iter([5.0, 1.0, 3.0, 2.0])  # the second iterate scored (after one update) is the best

    def score(z, z_bar):
        return torch.full((z.shape[0],), next(scores), dtype=torch.float64)

    best = admm(y, lower, upper, 2, hard(4), 4, score, -1.0, keep_best=True)
    assert torch.equal(best, admm(y, lower, upper, 2, hard(4), 1))
    assert not torch.equal(best, admm(y, lower, upper, 2, hard(4), 4))


def test_keep_best_needs_an_objective():
    y, lower, upper = clipped_frames(1)
    with pytest.raises(ValueError, match="keep_best"):
        admm(y, lower, upper, 2, hard(4), 3, keep_best=True)


def test_output_is_consistent_and_differentiable():
    y, lower, upper = clipped_frames(2)
    scale = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    out = admm(y, lower, upper, 2, lambda v, i: hard(8)(v, i) * scale, 5)
    assert bool((out >= lower).all()) and bool((out <= upper).all())
    reliable = torch.isfinite(lower) & torch.isfinite(upper)
    assert torch.equal(out[reliable], y[reliable])
    out.square().sum().backward()
    assert scale.grad is not None and float(scale.grad.abs()) > 0


@pytest.mark.parametrize("window, hop", [(64, 16), (64, 24), (48, 12)])
def test_dual_window_overlap_add_is_the_identity(window, hop):
    g = hann(window)
    assert float(g[window // 2]) == 1.0
    dual = dual_window(g, hop)
    x = torch.randn(40 * hop, dtype=torch.float64)  # a whole number of hops: the frame grid wraps evenly
    out = torch.zeros_like(x)
    for start in range(0, x.shape[0], hop):
        positions = torch.arange(start, start + window) % x.shape[0]
        out.index_add_(0, positions, x[positions] * g * dual)
    assert torch.allclose(out, x)
