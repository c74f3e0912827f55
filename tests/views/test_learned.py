"""Learnable generators: the colour flow (inverse, identity start, Jacobians in closed form,
gradcheck) and the Viewmaker-style perturbation (L1 budget, replay, gradients)."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from infomin.errors import SpecError
from infomin.views import build
from infomin.views.learned import Coupling, FlowColor, InvertibleMix, Perturbation


def _randomise(module: torch.nn.Module, seed: int = 0, std: float = 0.3) -> torch.nn.Module:
    """Move every weight off its (identity) initialisation, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def _x(b=2, h=5, w=4, dtype=torch.float32, seed=1):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# -- flow_color ------------------------------------------------------------------------------
@pytest.mark.parametrize("vp", [False, True])
@pytest.mark.parametrize("start", ["rgb", "ydbdr"])
def test_flow_inverse_recovers_start_space_input(vp, start):
    g = _randomise(FlowColor(start=start, layers=4, volume_preserving=vp)).double()
    x = _x(dtype=torch.float64)
    y = g.transform(x)
    assert (y - g.to_start(x)).abs().max() > 1e-2  # the flow is not the identity any more
    assert torch.allclose(g.inverse(y), g.to_start(x), atol=1e-6, rtol=0)


def test_flow_ydbdr_inverse_back_to_rgb():
    from infomin.views.color import rgb_from

    g = _randomise(FlowColor(start="ydbdr", layers=3)).double()
    x = _x(dtype=torch.float64)
    assert torch.allclose(rgb_from(g.inverse(g.transform(x)), "ydbdr"), x, atol=1e-6)


@pytest.mark.parametrize("start", ["rgb", "ydbdr"])
def test_flow_starts_at_the_hand_designed_split(start):
    from infomin.views.color import rgb_to

    g = FlowColor(start=start)
    x = _x()
    v1, v2, params = g(x)
    ref = x if start == "rgb" else rgb_to(x, "ydbdr")
    assert params == {}
    assert torch.allclose(v1, ref[:, :1], atol=1e-6) and torch.allclose(v2, ref[:, 1:], atol=1e-6)


def test_invertible_mix_matches_lu_formula():
    """Glow (arXiv 1807.03039) §3.2: W = P L (U + diag(s)); checked against a hand-built matrix."""
    m = InvertibleMix(3).double()
    with torch.no_grad():
        m.lower.copy_(torch.tensor([[9.0, 9, 9], [0.5, 9, 9], [-0.2, 0.3, 9]]))  # only strict lower used
        m.upper.copy_(torch.tensor([[9.0, 0.1, -0.4], [9, 9, 0.7], [9, 9, 9]]))  # only strict upper used
        m.log_scale.copy_(torch.tensor([0.0, 0.5, -1.0]))
    L = torch.tensor([[1.0, 0, 0], [0.5, 1, 0], [-0.2, 0.3, 1]], dtype=torch.float64)
    s = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64).exp()
    U = torch.tensor([[s[0], 0.1, -0.4], [0, s[1], 0.7], [0, 0, s[2]]], dtype=torch.float64)
    W = L @ U
    assert torch.allclose(m.weight(), W)
    x = _x(dtype=torch.float64)
    assert torch.allclose(m(x), torch.einsum("oc,bchw->bohw", W, x))
    assert torch.allclose(torch.linalg.slogdet(m.weight()).logabsdet, torch.log(s).sum())


def _pixel_logdet(g: FlowColor, pixel: torch.Tensor) -> torch.Tensor:
    jac = torch.autograd.functional.jacobian(lambda p: g.transform(p.view(1, 3, 1, 1)).view(3), pixel)
    return torch.linalg.slogdet(jac).logabsdet


def test_volume_preserving_flow_has_unit_jacobian_determinant():
    g = _randomise(FlowColor(layers=4, volume_preserving=True)).double()
    for seed in range(3):
        pixel = torch.rand(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        assert abs(_pixel_logdet(g, pixel).item()) < 1e-9
    # the non-volume-preserving flow changes volume (closed form: sum of log-scales)
    nvp = _randomise(FlowColor(layers=4)).double()
    assert abs(_pixel_logdet(nvp, torch.full((3,), 0.5, dtype=torch.float64)).item()) > 1e-3


def test_affine_coupling_logdet_closed_form():
    """RealNVP (arXiv 1605.08803): log|det J| = sum_j s_j(x_cond)."""
    c = _randomise(Coupling([0], [1, 2], hidden=8, affine=True)).double()
    pixel = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda p: c(p.view(1, 3, 1, 1)).view(3), pixel)
    s, _ = c._st(pixel[:1].view(1, 1, 1, 1))
    assert torch.allclose(torch.linalg.slogdet(jac).logabsdet, s.sum())


def test_flow_gradcheck_input_and_weights():
    g = _randomise(FlowColor(layers=2, hidden=4), std=0.2).double()
    x = _x(b=1, h=2, w=2, dtype=torch.float64).requires_grad_()
    names = [n for n, _ in g.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in g.named_parameters())

    def f(x, *ps):
        v1, v2, _ = functional_call(g, dict(zip(names, ps, strict=True)), (x,), strict=False)
        return torch.cat([v1, v2], 1)

    assert torch.autograd.gradcheck(f, (x, *params), atol=1e-6)


def test_flow_weights_get_finite_gradients_from_the_split():
    g = _randomise(FlowColor(layers=2))
    v1, v2, _ = g(_x())
    (v1.square().mean() - v2.square().mean()).backward()
    for n, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n


def test_flow_bad_arguments_name_the_field():
    with pytest.raises(SpecError, match=r"start: got 'lab'.*'rgb', 'ydbdr'"):
        FlowColor(start="lab")
    with pytest.raises(SpecError, match="layers"):
        build({"kind": "flow_color", "layers": 0})
    with pytest.raises(SpecError, match="volume_preserving"):
        FlowColor(volume_preserving="yes")


# -- perturbation -----------------------------------------------------------------------------
def test_perturbation_uses_its_l1_budget_exactly():
    """Viewmaker (arXiv 2010.07432): ||delta||_1 = eps * C*H*W per image (checked away from the clamp)."""
    g = _randomise(Perturbation(budget=0.01), std=0.05)
    x = torch.full((3, 3, 8, 8), 0.5)
    v1, v2, params = g(x, generator=0)
    for v in (v1, v2):
        l1 = (v - x).abs().flatten(1).sum(1)
        assert torch.allclose(l1, torch.full((3,), 0.01 * 3 * 8 * 8), rtol=1e-4)
    assert params["noise"].shape == (2, 3, 4, 8, 8)
    assert not torch.allclose(v1, v2)  # two noise draws, two views


def test_perturbation_replays_and_is_seeded():
    g = Perturbation()
    x = _x(h=8, w=8)
    a = g(x, generator=3)
    b = g(x, generator=3)
    c = g.replay(x, a.params)
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, c.v2)
    assert not torch.equal(a.v1, g(x, generator=4).v1)
    assert ((a.v1 >= 0) & (a.v1 <= 1)).all()


def test_perturbation_gradients_reach_input_and_weights():
    g = Perturbation(hidden=8)
    x = _x(h=8, w=8).requires_grad_()
    v1, v2, _ = g(x, generator=0)
    (v1 * v2).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for n, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_perturbation_rejects_bad_arguments():
    with pytest.raises(SpecError, match="budget"):
        Perturbation(budget=0.0)
    with pytest.raises(SpecError, match="noise_dim"):
        build({"kind": "perturbation", "noise_dim": 0})
    g = Perturbation()
    with pytest.raises(SpecError, match="params.noise"):
        g.replay(_x(h=8, w=8), {"noise": torch.rand(2, 5, 4, 8, 8)})


@pytest.mark.parametrize("kind", ["flow_color", "perturbation"])
def test_builds_from_kind_alone_and_round_trips_spec(kind):
    g = build({"kind": kind})
    h = build(g.to_spec())
    assert type(h) is type(g) and h.to_spec() == g.to_spec()
    assert g.differentiable == frozenset({"input", "weights"})
    v1, v2, _ = g(_x(h=8, w=8), generator=0)
    assert (v1.shape[1], v2.shape[1]) == g.channels
