"""One contract over every registered view kind (DESIGN.md principle 5).

Each kind must build from ``{"kind": k}`` alone and then: make views of the
declared channels with the input's dtype and device; be reproducible from a
seed; draw per-sample parameters (unless it is deterministic); replay a pair
from its parameters; round-trip through ``to_spec``; give finite gradients for
everything it declares differentiable (input, sampled params, own weights);
and run under CPU bf16 autocast. New kinds added by other modules are picked
up automatically.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import infomin.views as V

KINDS = V.kinds()
B, S = 6, 32


def _x(b=B, seed=0, **kw):
    return torch.rand(b, 3, S, S, generator=torch.Generator().manual_seed(seed), **kw)


def _build(kind):
    return V.build({"kind": kind})


def _float_leaves(params, prefix=""):
    """(path, tensor) for every floating tensor in a nested params dict."""
    for k, v in params.items():
        if isinstance(v, Tensor) and v.is_floating_point():
            yield prefix + k, v
        elif isinstance(v, dict):
            yield from _float_leaves(v, prefix + k + ".")


def _replace(params, path, value):
    head, _, rest = path.partition(".")
    out = dict(params)
    out[head] = _replace(params[head], rest, value) if rest else value
    return out


def _is_deterministic(gen, x):
    a, b = gen(x, generator=0), gen(x, generator=1)
    return torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)


def _loss(v1, v2):
    g = torch.Generator().manual_seed(0)
    return (v1.float() * torch.rand(v1.shape, generator=g)).sum() + (v2.float() * torch.rand(v2.shape, generator=g)).sum()


def test_every_family_is_registered():
    assert {"random_resized_crop", "patch_distance", "overlap_crops", "identity", "augment", "pair",
            "channel_split"} <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_channels_dtype_device(kind):
    gen = _build(kind)
    x = _x()
    v1, v2, params = gen(x, generator=0)
    assert isinstance(params, dict)
    assert (v1.shape[0], v2.shape[0]) == (B, B)
    assert (v1.shape[1], v2.shape[1]) == gen.channels
    assert v1.dtype == x.dtype and v2.dtype == x.dtype
    assert v1.device == x.device and v2.device == x.device
    assert torch.isfinite(v1).all() and torch.isfinite(v2).all()


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_views(kind):
    gen = _build(kind)
    x = _x()
    a, b = gen(x, generator=7), gen(x, generator=7)
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    rng = torch.Generator().manual_seed(7)           # a Generator works like its seed
    c = gen(x, generator=rng)
    assert torch.equal(a.v1, c.v1)


@pytest.mark.parametrize("kind", KINDS)
def test_per_sample_randomness(kind):
    gen = _build(kind)
    x = _x(8)[:1].expand(8, -1, -1, -1).contiguous()   # eight copies of one image
    v1, v2, _ = gen(x, generator=0)
    same = all(torch.equal(v1[i], v1[0]) and torch.equal(v2[i], v2[0]) for i in range(8))
    if _is_deterministic(gen, _x(8)):
        assert same, "a deterministic kind must treat identical images identically"
    else:
        assert not same, "a random kind must draw parameters per sample, not per batch"


@pytest.mark.parametrize("kind", KINDS)
def test_replay_equals_forward(kind):
    gen = _build(kind)
    x = _x()
    v1, v2, params = gen(x, generator=3)
    r1, r2, _ = gen.replay(x, params)
    assert torch.equal(r1, v1) and torch.equal(r2, v2)


@pytest.mark.parametrize("kind", KINDS)
def test_to_spec_round_trip(kind):
    gen = _build(kind)
    spec = gen.to_spec()
    assert spec["kind"] == kind
    again = V.build(spec)
    assert again.to_spec() == spec
    if "weights" in gen.differentiable:
        again.load_state_dict(gen.state_dict())
    x = _x()
    a, b = gen(x, generator=2), again(x, generator=2)
    assert torch.allclose(a.v1, b.v1) and torch.allclose(a.v2, b.v2)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_wrt_input(kind):
    gen = _build(kind)
    assert "input" in gen.differentiable, f"{kind} must declare gradients w.r.t. its input"
    x = _x().requires_grad_()
    v1, v2, _ = gen(x, generator=0)
    _loss(v1, v2).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", [k for k in KINDS if "weights" in V.get(k).differentiable])
def test_gradient_wrt_weights(kind):
    gen = _build(kind)
    weights = [p for p in gen.parameters() if p.requires_grad]
    assert weights, f"{kind} declares 'weights' but has no learnable parameters"
    v1, v2, _ = gen(_x(), generator=0)
    _loss(v1, v2).backward()
    grads = [p.grad for p in weights]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("kind", [k for k in KINDS if "params" in _build(k).differentiable])
def test_gradient_wrt_params(kind):
    gen = _build(kind)
    x = _x()
    params = gen(x, generator=0).params
    leaves = dict(_float_leaves(params))
    assert leaves, f"{kind} declares 'params' but samples no float parameters"
    for path, t in leaves.items():
        params = _replace(params, path, t.detach().clone().requires_grad_())
    v1, v2, _ = gen.replay(x, params)
    _loss(v1, v2).backward()
    grads = {path: t.grad for path, t in _float_leaves(params)}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert any(g is not None and g.abs().sum() > 0 for g in grads.values()), grads.keys()


@pytest.mark.parametrize("kind", KINDS)
def test_cpu_bf16_autocast(kind):
    gen = _build(kind)
    x = _x(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v1, v2, _ = gen(x, generator=0)
    assert (v1.shape[1], v2.shape[1]) == gen.channels
    assert v1.is_floating_point() and torch.isfinite(v1.float()).all() and torch.isfinite(v2.float()).all()


@pytest.mark.parametrize("kind", KINDS)
def test_float64_input_keeps_its_dtype(kind):
    gen = _build(kind).double()
    v1, v2, _ = gen(_x(2, dtype=torch.float64), generator=0)
    assert v1.dtype == torch.float64 and v2.dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_gives_the_cpu_views_for_the_same_seed(kind):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    gen = _build(kind)
    x = _x()
    cpu = gen(x, generator=4)
    cuda = gen.to("cuda")(x.cuda(), generator=4)
    assert cuda.v1.device.type == "cuda"
    assert torch.allclose(cuda.v1.cpu(), cpu.v1, atol=1e-4) and torch.allclose(cuda.v2.cpu(), cpu.v2, atol=1e-4)
