"""Alignment, uniformity and tolerance: against slow loops from the papers, and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from infomin.errors import SpecError
from infomin.evaluate.metrics import alignment, tolerance, uniformity


def _unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed),
                                   dtype=torch.float64), dim=1)


def slow_alignment(z1, z2, alpha):
    n = z1.shape[0]
    return sum(math.dist(z1[i].tolist(), z2[i].tolist()) ** alpha for i in range(n)) / n


def slow_uniformity(z, t):
    n = z.shape[0]
    vals = [math.exp(-t * math.dist(z[i].tolist(), z[j].tolist()) ** 2)
            for i in range(n) for j in range(i + 1, n)]
    return math.log(sum(vals) / len(vals))


def slow_tolerance(z, labels):
    n = z.shape[0]
    zs = [F.normalize(z[i], dim=0).tolist() for i in range(n)]
    sims = [sum(a * b for a, b in zip(zs[i], zs[j], strict=True))
            for i in range(n) for j in range(n) if i != j and labels[i] == labels[j]]
    return sum(sims) / len(sims)


@pytest.mark.parametrize("alpha", [1, 2, 3.5])
def test_alignment_matches_loop(alpha):
    z1, z2 = _unit(20, 6, 0), _unit(20, 6, 1)
    assert float(alignment(z1, z2, alpha)) == pytest.approx(slow_alignment(z1, z2, alpha), rel=1e-10)


@pytest.mark.parametrize("t", [0.5, 2, 5])
def test_uniformity_matches_loop(t):
    z = _unit(25, 4, 2)
    assert float(uniformity(z, t)) == pytest.approx(slow_uniformity(z, t), rel=1e-10)


def test_tolerance_matches_loop():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(30, 5, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, 4, (30,), generator=g)
    assert float(tolerance(z, labels)) == pytest.approx(slow_tolerance(z, labels.tolist()), rel=1e-5)


def test_closed_forms():
    z = _unit(10, 3, 4)
    # identical views: perfectly aligned
    assert float(alignment(z, z)) == 0.0
    # antipodal views on the unit sphere: ||z - (-z)||^2 = 4
    assert float(alignment(z, -z)) == pytest.approx(4.0)
    # all embeddings at one point: every potential is exp(0) = 1, log 1 = 0 (the worst)
    assert float(uniformity(z[:1].repeat(7, 1))) == pytest.approx(0.0, abs=1e-12)
    # an antipodal pair: one distance of 2, log exp(-t * 4) = -4t
    pair = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert float(uniformity(pair, t=2)) == pytest.approx(-8.0)
    # equally spaced points on the circle are more uniform than a clustered set
    ang = torch.arange(12) * (2 * math.pi / 12)
    circle = torch.stack([ang.cos(), ang.sin()], 1)
    assert float(uniformity(circle)) < float(uniformity(circle * 0.1 + torch.tensor([1.0, 0.0])))
    # classes collapsed to one point each: tolerance 1; classes split into antipodes: -1
    labels = torch.tensor([0, 0, 1, 1, 1])
    collapsed = torch.tensor([[1.0, 0], [2.0, 0], [0, 1.0], [0, 3.0], [0, 0.5]])
    assert float(tolerance(collapsed, labels)) == pytest.approx(1.0)
    anti = torch.tensor([[1.0, 0], [-1.0, 0], [0, 1.0], [0, -1.0], [0, 1.0]])
    # class 0: 2 ordered pairs at -1; class 1: 6 ordered pairs, 2 at +1 and 4 at -1 -> (-2 + 2 - 4) / 8
    assert float(tolerance(anti, labels)) == pytest.approx(-0.5)


def test_uniformity_of_large_random_set_is_stable_and_negative():
    z = _unit(2000, 128, 5).float()
    u = float(uniformity(z))
    # on S^(D-1), ||zi - zj||^2 = 2 - 2s with s ~ N(0, 1/D), so
    # U = log E exp(-t (2 - 2s)) = -2t + 2t^2 / D = -4 + 8/128 for t = 2, D = 128
    assert u == pytest.approx(-4.0 + 8 / 128, abs=0.01)


def test_errors():
    z = torch.randn(4, 3)
    with pytest.raises(SpecError, match="z2.shape"):
        alignment(z, torch.randn(5, 3))
    with pytest.raises(SpecError, match="alpha"):
        alignment(z, z, alpha=0)
    with pytest.raises(SpecError, match="t"):
        uniformity(z, t=-1)
    with pytest.raises(SpecError, match="at least 2"):
        uniformity(z[:1])
    with pytest.raises(SpecError, match="labels"):
        tolerance(z, torch.arange(3))
    with pytest.raises(SpecError, match="same-class"):
        tolerance(z, torch.arange(4))
