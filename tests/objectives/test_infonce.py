"""InfoNCE: against a slow loop reference written from the papers' formulas, and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from infomin.errors import SpecError
from infomin.objectives import info_nce, mi_lower_bound, near_ceiling, num_candidates


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb)


def slow_ntxent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """SimCLR eq. 1: l(i, j) = -log exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau), averaged over 2N anchors."""
    n = z1.shape[0]
    z = z1.tolist() + z2.tolist()
    total = 0.0
    for i in range(2 * n):
        j = i + n if i < n else i - n  # the other view of the same sample
        num = math.exp(_cos(z[i], z[j]) / tau)
        den = sum(math.exp(_cos(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    return total / (2 * n)


def slow_cross(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """CMC eq. 2 in both directions: anchors of one view against the N samples of the other."""
    n = z1.shape[0]
    a, b = z1.tolist(), z2.tolist()

    def one_way(u, v):
        total = 0.0
        for i in range(n):
            num = math.exp(_cos(u[i], v[i]) / tau)
            den = sum(math.exp(_cos(u[i], v[k]) / tau) for k in range(n))
            total += -math.log(num / den)
        return total / n

    return 0.5 * (one_way(a, b) + one_way(b, a))


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0, 3.0])
@pytest.mark.parametrize("form,slow", [("ntxent", slow_ntxent), ("cross", slow_cross)])
def test_matches_slow_reference(form, slow, tau):
    g = torch.Generator().manual_seed(int(tau * 100))
    z1 = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3  # unnormalised on purpose
    z2 = z1 + torch.randn(7, 5, generator=g, dtype=torch.float64)
    got = info_nce(z1, z2, tau, form=form).item()
    assert got == pytest.approx(slow(z1, z2, tau), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("form", ["ntxent", "cross"])
def test_identical_orthogonal_views_reach_log_k(form):
    # Orthonormal rows: positive cosine 1, every negative cosine 0, so with tau = 0.01
    # L = log(1 + (K - 1) e^{-100}) ~ 0 and I_NCE = log K - L ~ log K.
    n, d = 16, 32
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0)))
    z = q[:n]
    k = num_candidates(n, form)
    mi = mi_lower_bound(info_nce(z, z.clone(), 0.01, form=form), k)
    assert abs(float(mi) - math.log(k)) < 1e-2
    assert near_ceiling(mi, k)


@pytest.mark.parametrize("form", ["ntxent", "cross"])
def test_independent_views_give_zero_information(form):
    # Independent uniform directions in D dims: cosines s ~ N(0, 1/D). Per anchor,
    # E[log sum_k exp(s_k / tau)] ~ log K + 1/(2 D tau^2) and E[s_pos] = 0, so
    # E[I_NCE] ~ -1/(2 D tau^2) (bias), and the mean positive logit over the N pairs
    # fluctuates with std 1/(tau sqrt(D N)). We allow bias + 5 std.
    n, d, tau = 512, 256, 0.5
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(n, d, generator=g, requires_grad=True)
    z2 = torch.randn(n, d, generator=g, requires_grad=True)
    loss = info_nce(z1, z2, tau, form=form)
    mi = float(mi_lower_bound(loss.detach(), num_candidates(n, form)))
    bias = 1 / (2 * d * tau**2)
    std = 1 / (tau * math.sqrt(d * n))
    assert abs(mi + bias) < 5 * std, (mi, bias, std)
    loss.backward()
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()
    assert z1.grad.abs().sum() > 0


@pytest.mark.parametrize("form", ["ntxent", "cross"])
@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0, 5.0])
def test_the_bound_approaches_log_k_only_for_perfect_views(form, tau):
    """Closed form: orthonormal embeddings with z1 = z2 give the positive similarity 1 and every
    other candidate 0, so L = log(1 + (K - 1) exp(-1 / tau)) and I_NCE = log K - L: strictly
    below the ceiling log K, reaching it only as tau -> 0. An implementation that dropped the
    positive from the denominator would give I_NCE > log K here."""
    n = 6
    z = torch.eye(n, 8)                          # (N, D) orthonormal rows
    k = num_candidates(n, form)
    loss = info_nce(z, z.clone(), tau, form=form)
    expected = math.log1p((k - 1) * math.exp(-1.0 / tau))
    assert float(loss) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    mi = float(mi_lower_bound(loss, k))
    assert mi <= math.log(k) + 1e-6          # float32 rounding of log K
    assert math.log(k) - mi == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_symmetric_in_the_two_views():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    for form in ("ntxent", "cross"):
        assert torch.allclose(info_nce(z1, z2, 0.3, form=form), info_nce(z2, z1, 0.3, form=form))


def test_num_candidates_and_ceiling():
    assert num_candidates(256, "ntxent") == 511
    assert num_candidates(256, "cross") == 256
    assert mi_lower_bound(0.0, 511) == pytest.approx(math.log(511))
    assert not near_ceiling(0.5 * math.log(511), 511)
    assert near_ceiling(0.95 * math.log(511), 511)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), "0.1"])
def test_bad_temperature(tau):
    z = torch.randn(4, 3)
    with pytest.raises(SpecError, match="temperature"):
        info_nce(z, z, tau)


def test_bad_inputs():
    z = torch.randn(4, 3)
    with pytest.raises(SpecError, match="ntxent"):
        info_nce(z, z, 0.1, form="nce")
    with pytest.raises(SpecError, match="z2.shape"):
        info_nce(z, torch.randn(5, 3), 0.1)
    with pytest.raises(SpecError, match="at least 2"):
        info_nce(z[:1], z[:1], 0.1)
    with pytest.raises(SpecError, match="batch_size"):
        num_candidates(1, "cross")
    with pytest.raises(SpecError, match="form"):
        num_candidates(8, "moco")
    with pytest.raises(SpecError, match="k"):
        mi_lower_bound(1.0, 0)
