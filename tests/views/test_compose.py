"""The ``pair`` kind: stage order, channel bookkeeping, colour ops skipped before a split,
shorthands, size, spec round trips and declared differentiability."""

from __future__ import annotations

import pytest
import torch

from infomin.errors import SpecError
from infomin.views import build
from infomin.views.augment import augment_batch
from infomin.views.color import rgb_to
from infomin.views.compose import Pair


def _x(b=6, s=32, seed=0):
    return torch.rand(b, 3, s, s, generator=torch.Generator().manual_seed(seed))


def test_default_pair_is_two_random_resized_crops():
    gen = build({"kind": "pair"})
    v1, v2, p = gen(_x(), generator=0)
    assert gen.channels == (3, 3) and v1.shape == (6, 3, 32, 32)
    assert set(p) == {"spatial"} and set(p["spatial"]) >= {"box1", "box2"}
    assert gen.differentiable == frozenset({"input", "params"})


def test_stages_in_order_crop_then_augment_then_split():
    gen = Pair({"kind": "random_resized_crop", "size": 16}, augment="simclr", split="lab")
    x = _x()
    v1, v2, p = gen(x, generator=3)
    assert set(p) == {"spatial", "augment1", "augment2", "split"}
    s1, s2 = gen.spatial.apply(x, p["spatial"])
    s1, s2 = augment_batch(s1, p["augment1"]), augment_batch(s2, p["augment2"])
    assert torch.allclose(v1, rgb_to(s1, "lab")[:, :1], atol=1e-6)
    assert torch.allclose(v2, rgb_to(s2, "lab")[:, 1:], atol=1e-6)
    assert gen.channels == (1, 2) and v1.shape == (6, 1, 16, 16) and v2.shape == (6, 2, 16, 16)


def test_colour_ops_are_skipped_before_a_split_but_not_without_one():
    x = _x(256, 8)
    with_split = Pair(augment={"kind": "augment", "preset": "simclr"}, split="ydbdr")
    p = with_split.sample(x, torch.Generator().manual_seed(0))
    assert not p["augment1"]["jitter"].any() and not p["augment2"]["gray"].any()
    without = Pair(augment={"kind": "augment", "preset": "simclr"})
    p = without.sample(x, torch.Generator().manual_seed(0))
    assert p["augment1"]["jitter"].any() and p["augment2"]["gray"].any()


def test_shared_crop_with_a_split_gives_aligned_views():
    gen = build("cmc_lab")
    x = _x()
    v1, v2, p = gen(x, generator=0)
    s, _ = gen.spatial.apply(x, p["spatial"])
    lab = rgb_to(s, "lab")
    assert torch.allclose(v1, lab[:, :1], atol=1e-6) and torch.allclose(v2, lab[:, 1:], atol=1e-6)


def test_string_shorthands():
    gen = Pair("patch_distance", augment="infomin", split="ydbdr")
    assert gen.spatial.kind == "patch_distance" and gen.augment.ops["ra_n"] == 2
    assert gen.split.space == "ydbdr" and gen.channels == (1, 2)
    assert build(gen.to_spec()).to_spec() == gen.to_spec()


def test_size_sets_the_spatial_size():
    gen = Pair({"kind": "overlap_crops"}, size=24)
    assert gen.spatial.size == 24 and gen(_x(), generator=0).v1.shape[-1] == 24
    with pytest.raises(SpecError) as e:
        Pair({"kind": "identity"}, size=24)
    assert e.value.field == "size"
    with pytest.raises(SpecError) as e:
        Pair(size=0)
    assert e.value.field == "size"


def test_to_spec_round_trips_and_replays_the_same_views():
    gen = Pair({"kind": "random_resized_crop", "size": 16, "scale": [0.2, 1.0]},
               augment={"kind": "augment", "preset": "infomin", "overrides": {"flip_p": 0.0}},
               split={"kind": "channel_split", "space": "ydbdr", "split": [[0], [1, 2]]})
    spec = gen.to_spec()
    assert spec["kind"] == "pair" and spec["spatial"]["kind"] == "random_resized_crop"
    assert spec["augment"]["overrides"] == {"flip_p": 0.0}
    again = build(spec)
    assert again.to_spec() == spec
    x = _x()
    a, b = gen(x, generator=5), again(x, generator=5)
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)


@pytest.mark.parametrize("stages,declared", [
    ({}, {"input", "params"}),
    ({"augment": "simclr"}, {"input", "params"}),
    ({"split": "lab"}, {"input", "params"}),
    ({"split": {"kind": "flow_color"}}, {"input", "params", "weights"}),
    ({"spatial": "identity", "split": {"kind": "flow_color"}}, {"input", "weights"}),
])
def test_declared_gradients_are_what_flows_through_the_chain(stages, declared):
    """A stage's params or weights get gradients when every later stage passes gradients to its
    input; the declaration is checked against real gradients."""
    gen = Pair(**stages)
    assert gen.differentiable == frozenset(declared)
    x = _x().requires_grad_()
    v1, v2, params = gen(x, rng=0)
    boxes = [params["spatial"][k] for k in ("box1", "box2") if k in params["spatial"]]
    if boxes:
        params = {**params, "spatial": {**params["spatial"],
                                        **{k: params["spatial"][k].clone().requires_grad_()
                                           for k in ("box1", "box2")}}}
        v1, v2, _ = gen.replay(x, params)
    (v1.sum() + v2.sum()).backward()
    assert ("input" in declared) == (x.grad is not None and bool(x.grad.abs().sum() > 0))
    if boxes:
        got = params["spatial"]["box1"].grad
        assert ("params" in declared) == (got is not None and bool(got.abs().sum() > 0))
    weights = [q.grad for q in gen.parameters()]
    assert ("weights" in declared) == any(g is not None and bool(g.abs().sum() > 0) for g in weights)


def test_bad_stages_raise_spec_errors_with_the_stage_path():
    with pytest.raises(SpecError) as e:
        build({"kind": "pair", "augment": {"kind": "identity"}})
    assert e.value.field == "views.augment.kind" and e.value.choices == ["augment"]
    with pytest.raises(SpecError) as e:
        build({"kind": "pair", "spatial": {"kind": "random_resized_crop", "flip": 2.0}})
    assert e.value.field == "views.spatial.flip" and e.value.value == 2.0
    with pytest.raises(SpecError) as e:
        build({"kind": "pair", "split": {"kind": "channel_split", "space": "cmyk"}})
    assert e.value.field == "views.split.space" and "lab" in e.value.choices
    with pytest.raises(SpecError) as e:
        build({"kind": "pair", "spatial": {"kind": "channel_split"}})
    assert e.value.field == "views.spatial.kind"
    with pytest.raises(SpecError) as e:
        build({"kind": "pair", "augment": {"kind": "augment", "preset": "nope"}})
    assert e.value.field == "views.augment.preset"
