"""One contract over every registered view kind (docs/architecture.md, "Name -> factory").

Each kind must build from ``{"kind": k}`` alone and then, through its pair source on a
dataset (every kind, ``shared_factors`` included): make views of the declared channels;
be reproducible from a seed; be random exactly when it declares ``stochastic`` (and then
per sample, not per batch); replay a pair from its parameters; name as many channels as
it declares. Kinds that transform pixel batches (``source == "images"``) must also keep
the input's dtype and device, give deterministic evaluation inputs of the declared
channels, round-trip through ``to_spec``, give finite gradients for everything they
declare differentiable (input, sampled params, own weights) and run under CPU bf16
autocast. New kinds added by other modules are picked up automatically.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import infomin.views as V

KINDS = V.kinds()
IMAGE_KINDS = [k for k in KINDS if V.get(k).source == "images"]
B, S = 6, 32


@pytest.fixture(scope="module")
def toy():
    from infomin.data.toy import colorful_moving_digits

    return colorful_moving_digits("train", n=64, seed=0)


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


def _loss(v1, v2):
    g = torch.Generator().manual_seed(0)
    return (v1.float() * torch.rand(v1.shape, generator=g)).sum() + (v2.float() * torch.rand(v2.shape, generator=g)).sum()


def test_every_family_is_registered():
    assert {"random_resized_crop", "patch_distance", "overlap_crops", "identity", "augment", "pair",
            "channel_split"} <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_pair_source_channels_seed_randomness_and_replay(kind, toy):
    gen = _build(kind)
    pairs = gen.pairs(toy)
    assert isinstance(pairs, V.PairSource) and tuple(pairs.channels) == tuple(gen.channels)
    idx = torch.arange(B)
    a = pairs(idx, torch.Generator().manual_seed(7))
    b = pairs(idx, torch.Generator().manual_seed(7))
    c = pairs(idx, torch.Generator().manual_seed(8))
    assert (a.v1.shape[:2], a.v2.shape[:2]) == ((B, gen.channels[0]), (B, gen.channels[1]))
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    differs = not (torch.equal(a.v1, c.v1) and torch.equal(a.v2, c.v2))
    assert differs == gen.stochastic, f"{kind} declares stochastic={gen.stochastic}"
    r = pairs.replay(idx, a.params)
    assert torch.equal(r.v1, a.v1) and torch.equal(r.v2, a.v2)


@pytest.mark.parametrize("kind", KINDS)
def test_channel_names_match_the_declared_channels(kind):
    gen = _build(kind)
    for names, c in zip(gen.channel_names, gen.channels, strict=True):
        assert names is None or len(names) == c


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_eval_inputs_are_deterministic_and_fit_the_encoders(kind):
    gen = _build(kind)
    x = _x()
    u1, u2 = gen.eval_inputs(x)
    w1, w2 = gen.eval_inputs(x)
    assert torch.equal(u1, w1) and torch.equal(u2, w2)
    assert (u1.shape[:2], u2.shape[:2]) == ((B, gen.channels[0]), (B, gen.channels[1]))
    if not gen.stochastic:   # nothing is drawn: the evaluation inputs are the views
        v1, v2, _ = gen(x, rng=0)
        assert torch.equal(u1, v1) and torch.equal(u2, v2)


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_shapes_channels_dtype_device(kind):
    gen = _build(kind)
    x = _x()
    v1, v2, params = gen(x, rng=0)
    assert isinstance(params, dict)
    assert (v1.shape[0], v2.shape[0]) == (B, B)
    assert (v1.shape[1], v2.shape[1]) == gen.channels
    assert v1.dtype == x.dtype and v2.dtype == x.dtype
    assert v1.device == x.device and v2.device == x.device
    assert torch.isfinite(v1).all() and torch.isfinite(v2).all()


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_same_seed_same_views(kind):
    gen = _build(kind)
    x = _x()
    a, b = gen(x, rng=7), gen(x, rng=7)
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    rng = torch.Generator().manual_seed(7)           # a Generator works like its seed
    c = gen(x, rng=rng)
    assert torch.equal(a.v1, c.v1)


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_per_sample_randomness(kind):
    """The declaration decides the expectation (not the observed behaviour): a random kind
    draws per sample, a deterministic one treats identical images identically."""
    gen = _build(kind)
    x = _x(8)[:1].expand(8, -1, -1, -1).contiguous()   # eight copies of one image
    v1, v2, _ = gen(x, rng=0)
    same = all(torch.equal(v1[i], v1[0]) and torch.equal(v2[i], v2[0]) for i in range(8))
    if gen.stochastic:
        assert not same, "a random kind must draw parameters per sample, not per batch"
    else:
        assert same, "a deterministic kind must treat identical images identically"
    a, b = gen(_x(8), rng=0), gen(_x(8), rng=1)
    seed_matters = not (torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2))
    assert seed_matters == gen.stochastic


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_replay_equals_forward(kind):
    gen = _build(kind)
    x = _x()
    v1, v2, params = gen(x, rng=3)
    r1, r2, _ = gen.replay(x, params)
    assert torch.equal(r1, v1) and torch.equal(r2, v2)


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_to_spec_round_trip(kind):
    gen = _build(kind)
    spec = gen.to_spec()
    assert spec["kind"] == kind
    again = V.build(spec)
    assert again.to_spec() == spec
    if "weights" in gen.differentiable:
        again.load_state_dict(gen.state_dict())
    x = _x()
    a, b = gen(x, rng=2), again(x, rng=2)
    assert torch.allclose(a.v1, b.v1) and torch.allclose(a.v2, b.v2)


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_gradient_wrt_input(kind):
    gen = _build(kind)
    assert "input" in gen.differentiable, f"{kind} must declare gradients w.r.t. its input"
    x = _x().requires_grad_()
    v1, v2, _ = gen(x, rng=0)
    _loss(v1, v2).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", [k for k in IMAGE_KINDS if "weights" in V.get(k).differentiable])
def test_gradient_wrt_weights(kind):
    gen = _build(kind)
    weights = [p for p in gen.parameters() if p.requires_grad]
    assert weights, f"{kind} declares 'weights' but has no learnable parameters"
    v1, v2, _ = gen(_x(), rng=0)
    _loss(v1, v2).backward()
    grads = [p.grad for p in weights]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("kind", [k for k in IMAGE_KINDS if "params" in _build(k).differentiable])
def test_gradient_wrt_params(kind):
    gen = _build(kind)
    x = _x()
    params = gen(x, rng=0).params
    leaves = dict(_float_leaves(params))
    assert leaves, f"{kind} declares 'params' but samples no float parameters"
    for path, t in leaves.items():
        params = _replace(params, path, t.detach().clone().requires_grad_())
    v1, v2, _ = gen.replay(x, params)
    _loss(v1, v2).backward()
    grads = {path: t.grad for path, t in _float_leaves(params)}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert any(g is not None and g.abs().sum() > 0 for g in grads.values()), grads.keys()


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_cpu_bf16_autocast(kind):
    gen = _build(kind)
    x = _x(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v1, v2, _ = gen(x, rng=0)
    assert (v1.shape[1], v2.shape[1]) == gen.channels
    assert v1.is_floating_point() and torch.isfinite(v1.float()).all() and torch.isfinite(v2.float()).all()


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_float64_input_keeps_its_dtype(kind):
    gen = _build(kind).double()
    v1, v2, _ = gen(_x(2, dtype=torch.float64), rng=0)
    assert v1.dtype == torch.float64 and v2.dtype == torch.float64


@pytest.mark.gpu
@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_cuda_gives_the_cpu_views_for_the_same_seed(kind):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    gen = _build(kind)
    x = _x()
    cpu = gen(x, rng=4)
    cuda = gen.to("cuda")(x.cuda(), rng=4)
    assert cuda.v1.device.type == "cuda"
    assert torch.allclose(cuda.v1.cpu(), cpu.v1, atol=1e-4) and torch.allclose(cuda.v2.cpu(), cpu.v2, atol=1e-4)
