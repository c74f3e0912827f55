"""Crop pairs: closed-form crops, a slow bilinear reference, torchvision's box distribution,
patch distances, IoU ranges, and gradients w.r.t. image and boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infomin.errors import SpecError
from infomin.seeding import make_generator, seed_everything
from infomin.views.crop import (
    Identity,
    OverlapCropPair,
    PatchDistancePair,
    RandomResizedCropPair,
    box_iou,
    crop,
    sample_rrc_boxes,
)


def _x(b=4, h=32, w=32, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


# -- crop(): closed forms and a slow reference -------------------------------------------------

def test_full_box_is_the_image_and_flip_mirrors_it():
    x = _x()
    full = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(4, 4)
    assert torch.allclose(crop(x, full, 32), x, atol=1e-6)
    flip = torch.tensor([True, False, True, False])
    out = crop(x, full, 32, flip)
    assert torch.allclose(out[0], x[0].flip(-1), atol=1e-6)
    assert torch.allclose(out[1], x[1], atol=1e-6)


def test_pixel_aligned_box_at_one_to_one_scale_is_a_slice():
    x = _x()
    box = torch.tensor([[8 / 32, 4 / 32, 24 / 32, 20 / 32]]).expand(4, 4)
    assert torch.allclose(crop(x, box, 16), x[:, :, 4:20, 8:24], atol=1e-5)


def _bilinear_reference(img: np.ndarray, box, size: int) -> np.ndarray:
    """Per-pixel bilinear sampling written from the definition (pixel centres at i + 0.5,
    replicate border): output pixel j samples x = x0 W + (j + 0.5) (x1 - x0) W / size - 0.5."""
    c, h, w = img.shape
    x0, y0, x1, y1 = box
    out = np.zeros((c, size, size))
    for i in range(size):
        for j in range(size):
            sx = x0 * w + (j + 0.5) * (x1 - x0) * w / size - 0.5
            sy = y0 * h + (i + 0.5) * (y1 - y0) * h / size - 0.5
            fx, fy = math.floor(sx), math.floor(sy)
            ax, ay = sx - fx, sy - fy
            acc = 0.0
            for dy, wy in ((0, 1 - ay), (1, ay)):
                for dx, wx in ((0, 1 - ax), (1, ax)):
                    yy = min(max(fy + dy, 0), h - 1)
                    xx = min(max(fx + dx, 0), w - 1)
                    acc = acc + wy * wx * img[:, yy, xx]
            out[:, i, j] = acc
    return out


def test_crop_matches_slow_bilinear_reference():
    x = _x(2, 9, 7, seed=3).double()
    boxes = torch.tensor([[0.13, 0.21, 0.77, 0.93], [0.0, 0.05, 0.5, 0.4]], dtype=torch.float64)
    out = crop(x, boxes, 5)
    for b in range(2):
        ref = _bilinear_reference(x[b].numpy(), boxes[b].tolist(), 5)
        np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-10)


# -- random_resized_crop --------------------------------------------------------------------------

def test_rrc_boxes_follow_torchvision_distribution():
    from torchvision.transforms import v2

    h = w = 32
    ours = sample_rrc_boxes(4000, h, w, make_generator(0))
    seed_everything(0)  # torchvision draws from the global generator
    tv = torch.tensor([v2.RandomResizedCrop.get_params(torch.zeros(3, h, w), [0.08, 1.0], [3 / 4, 4 / 3])
                       for _ in range(4000)], dtype=torch.float64)  # top, left, height, width
    ours_area = ((ours[:, 2] - ours[:, 0]) * (ours[:, 3] - ours[:, 1])).double()
    tv_area = tv[:, 2] * tv[:, 3] / (h * w)
    ours_ratio = torch.log((ours[:, 2] - ours[:, 0]) / (ours[:, 3] - ours[:, 1])).double()
    tv_ratio = torch.log(tv[:, 3] / tv[:, 2])
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(torch.quantile(ours_area, q) - torch.quantile(tv_area, q)) < 0.04, q
        assert abs(torch.quantile(ours_ratio, q) - torch.quantile(tv_ratio, q)) < 0.06, q
    # every box lies inside the image, with the area and ratio ranges respected
    assert (ours >= 0).all() and (ours <= 1).all()
    assert (ours_area >= 0.08 - 1e-6).all() and (ours_area <= 1 + 1e-6).all()
    assert (ours_ratio.abs() <= math.log(4 / 3) + 1e-5).all()


def test_rrc_falls_back_to_central_crop_on_extreme_images():
    boxes = sample_rrc_boxes(64, 4, 200, make_generator(0), scale=(0.9, 1.0))
    # 90 % of a 4x200 image cannot have a ratio <= 4/3: torchvision's fallback clamps the ratio
    wpx = (boxes[:, 2] - boxes[:, 0]) * 200
    hpx = (boxes[:, 3] - boxes[:, 1]) * 4
    assert torch.allclose(hpx, torch.full_like(hpx, 4.0))
    assert torch.allclose(wpx, torch.full_like(wpx, 4 * 4 / 3), atol=1e-4)
    assert torch.allclose((boxes[:, 0] + boxes[:, 2]) / 2, torch.full((64,), 0.5), atol=1e-6)


def test_rrc_shared_gives_identical_views_and_unshared_does_not():
    x = _x()
    v1, v2, p = RandomResizedCropPair(shared=True)(x, generator=1)
    assert v1 is v2 and torch.equal(p["box1"], p["box2"])
    v1, v2, p = RandomResizedCropPair(shared=False)(x, generator=1)
    assert not torch.equal(p["box1"], p["box2"]) and not torch.allclose(v1, v2)


def test_rrc_flip_probability():
    p = RandomResizedCropPair(flip=0.3).sample(_x(2000, 8, 8), make_generator(0))
    rate = torch.cat([p["flip1"], p["flip2"]]).float().mean().item()
    assert abs(rate - 0.3) < 0.03


@pytest.mark.parametrize("field,kwargs", [
    ("scale", {"scale": [0.0, 1.0]}), ("scale", {"scale": [0.5, 0.2]}), ("ratio", {"ratio": [0, 1]}),
    ("flip", {"flip": 1.5}), ("size", {"size": 0}), ("shared", {"shared": "yes"}),
])
def test_rrc_rejects_bad_arguments(field, kwargs):
    with pytest.raises(SpecError) as e:
        RandomResizedCropPair(**kwargs)
    assert e.value.field.startswith(field)


# -- patch_distance ---------------------------------------------------------------------------

def test_patch_distance_exact_distance_inside_and_all_directions():
    gen = PatchDistancePair(size=8, distance=10.0)
    x = _x(512)
    v1, v2, p = gen(x, generator=0)
    assert v1.shape == (512, 3, 8, 8)
    assert torch.allclose(p["distance"], torch.full((512,), 10.0), atol=1e-3)
    c1 = (p["box1"][:, :2] + p["box1"][:, 2:]) / 2 * 32
    c2 = (p["box2"][:, :2] + p["box2"][:, 2:]) / 2 * 32
    assert torch.allclose((c2 - c1).norm(dim=1), torch.full((512,), 10.0), atol=1e-3)
    for box in (p["box1"], p["box2"]):
        assert (box >= -1e-6).all() and (box <= 1 + 1e-6).all()
        assert torch.allclose(box[:, 2] - box[:, 0], torch.full((512,), 8 / 32))
    d = c2 - c1
    quadrants = {(bool(a > 0), bool(b > 0)) for a, b in d.tolist()}
    assert len(quadrants) == 4


def test_patch_distance_jitter_range_and_the_diagonal_limit():
    p = PatchDistancePair(size=8, distance=10.0, jitter=3.0).sample(_x(500), make_generator(0))
    assert p["distance"].min() >= 7.0 - 1e-3 and p["distance"].max() <= 13.0 + 1e-3
    assert p["distance"].std() > 1.0
    # the largest distance fits only along the diagonals
    far = math.hypot(16, 16)
    p = PatchDistancePair(size=16, distance=far).sample(_x(64), make_generator(0))
    assert torch.allclose(p["distance"], torch.full((64,), far), atol=1e-3)


def test_patch_distance_pixel_aligned_patch_is_a_slice():
    gen = PatchDistancePair(size=8, distance=0.0)
    x = _x(1)
    params = {"box1": torch.tensor([[4 / 32, 8 / 32, 12 / 32, 16 / 32]]),
              "box2": torch.tensor([[4 / 32, 8 / 32, 12 / 32, 16 / 32]]), "distance": torch.zeros(1)}
    v1, _, _ = gen.replay(x, params)
    assert torch.allclose(v1, x[:, :, 8:16, 4:12], atol=1e-5)


def test_patch_distance_impossible_raises_spec_error():
    with pytest.raises(SpecError) as e:
        PatchDistancePair(size=16, distance=30.0)(_x(2), generator=0)
    assert e.value.field == "distance" and e.value.value == 30.0 and "22.6" in str(e.value)
    with pytest.raises(SpecError) as e:
        PatchDistancePair(size=40)(_x(2), generator=0)
    assert e.value.field == "size"


# -- overlap_crops ------------------------------------------------------------------------------

def test_overlap_crops_iou_in_range_and_reported():
    gen = OverlapCropPair(size=16, scale=(0.2, 0.6), iou=(0.3, 0.5))
    _, _, p = gen(_x(256), generator=0)
    scale = torch.tensor([32.0, 32.0, 32.0, 32.0])
    iou = box_iou(p["box1"] * scale, p["box2"] * scale)
    assert torch.allclose(iou, p["iou"], atol=1e-5)
    assert (p["iou"] >= 0.3 - 1e-5).all() and (p["iou"] <= 0.5 + 1e-5).all()
    side = (p["box1"][:, 2] - p["box1"][:, 0]) * 32
    assert torch.allclose(side, (p["box1"][:, 3] - p["box1"][:, 1]) * 32, atol=1e-4)  # square in pixels


def test_overlap_crops_disjoint():
    _, _, p = OverlapCropPair(scale=(0.05, 0.2), disjoint=True)(_x(256), generator=0)
    assert (p["iou"] == 0).all()
    b1, b2 = p["box1"], p["box2"]
    sep_x = (b1[:, 2] <= b2[:, 0] + 1e-6) | (b2[:, 2] <= b1[:, 0] + 1e-6)
    sep_y = (b1[:, 3] <= b2[:, 1] + 1e-6) | (b2[:, 3] <= b1[:, 1] + 1e-6)
    assert (sep_x | sep_y).all()


def test_overlap_crops_impossible_ranges_raise():
    with pytest.raises(SpecError) as e:
        OverlapCropPair(scale=(0.3, 0.6), disjoint=True)
    assert e.value.field == "scale"
    with pytest.raises(SpecError) as e:
        OverlapCropPair(scale=(0.05, 0.6), iou=(0.9999, 1.0))(_x(8), generator=0)
    assert e.value.field == "iou" and e.value.value == [0.9999, 1.0]


def test_box_iou_closed_form():
    a = torch.tensor([0.0, 0.0, 2.0, 2.0])
    b = torch.tensor([1.0, 1.0, 3.0, 3.0])
    assert torch.isclose(box_iou(a, b), torch.tensor(1 / 7))
    assert box_iou(a, torch.tensor([2.0, 0.0, 3.0, 1.0])) == 0


def test_identity_returns_input():
    x = _x()
    v1, v2, p = Identity()(x, generator=0)
    assert v1 is x and v2 is x and p == {}


# -- gradients --------------------------------------------------------------------------------

def test_gradcheck_crop_wrt_image_and_boxes_float64():
    x = torch.rand(2, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[0.11, 0.17, 0.83, 0.71], [0.23, 0.05, 0.61, 0.97]],
                         dtype=torch.float64, requires_grad=True)
    flip = torch.tensor([False, True])
    assert torch.autograd.gradcheck(lambda a, b: crop(a, b, 3, flip), (x, boxes), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("gen", [RandomResizedCropPair(size=8), PatchDistancePair(size=8, distance=5.0),
                                 OverlapCropPair(size=8)], ids=lambda g: g.kind)
def test_gradcheck_views_wrt_boxes(gen):
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    params = gen.sample(x, make_generator(0))
    b1 = params["box1"].double().requires_grad_()
    b2 = params["box2"].double().requires_grad_()

    def views(a, b):
        return gen.replay(x, {**params, "box1": a, "box2": b})[:2]

    assert torch.autograd.gradcheck(views, (b1, b2), eps=1e-6, atol=1e-5)


def test_box_gradient_descent_finds_the_target_crop():
    """The gradient w.r.t. the box is useful: moving a box by gradient descent recovers a target crop."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    img = torch.stack([torch.exp(-((xx - 0.6) ** 2 + (yy - 0.4) ** 2) / 0.05), xx, yy]).unsqueeze(0)
    target_box = torch.tensor([[0.3, 0.2, 0.8, 0.7]])
    target = crop(img, target_box, 12)
    box = torch.tensor([[0.2, 0.3, 0.7, 0.8]], requires_grad=True)
    opt = torch.optim.Adam([box], lr=0.01)
    first = None
    for _ in range(150):
        loss = (crop(img, box, 12) - target).pow(2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    assert (box.detach() - target_box).abs().max() < 0.03
