"""Appearance augmentations per view, batched, differentiable in ``x``, seeded by *our* generator.

The ``augment`` kind makes two views of one batch by applying the same recipe twice
with independent per-sample draws. A recipe is plain data: a preset in
:data:`PRESETS` (``simclr``, ``simclr_imagenet``, ``infomin``, ``none``) with per-op
overrides (:data:`OPS`). Ops, in the order applied to each view (SimCLR's torchvision
pipeline, with InfoMin's RandAugment inserted where PyContrast puts it):

1. horizontal flip (``flip_p``);
2. colour jitter (``jitter_p``): brightness, contrast, saturation and hue with
   torchvision's ``ColorJitter`` semantics (factors ``U[max(0, 1-b), 1+b]``, hue shift
   ``U[-h, h]``, the four ops in a random order drawn per batch, :func:`color_jitter`);
3. Gaussian blur (``blur_p``), sigma ``U(blur_sigma)``, kernel ``blur_kernel`` x the side;
4. RandAugment (``ra_n`` layers; timm's ``rand-n2-m10-mstd0.5`` as in PyContrast,
   Cubuk et al. 2019, arXiv 1909.13719): 14 of its 15 ops, batched (Equalize is left
   out: a per-image histogram with zero gradient); Posterize has a straight-through
   gradient;
5. random grayscale (``gray_p``); 6. solarize at 0.5 (``solarize_p``, BYOL).

Every op is a batched kornia / torch function fed per-sample factor tensors, applied to
the subset of the batch that drew it; no per-sample Python loop. Randomness comes only
from the ``torch.Generator`` passed to :meth:`AugmentViews.sample` (kornia's
augmentation modules draw from torch's global generator and hide the last draw in
``self._params``; here the draw is returned and replayable). Colour ops equal
torchvision's functional ops to float precision (checked per sample in
``tests/views/test_augment.py``); why some are written here rather than called from
kornia is said at each function.

``color=False`` (and :class:`infomin.views.compose.Pair` with a channel split) skips
the colour ops (jitter, grayscale, solarize, RandAugment's colour ops): a jitter before
an L|ab split changes what the two channel groups share, the very variable a
channel-split study controls. PyContrast's InfoMin code keeps ColorJitter there; use
``color=True`` with ``overrides={"ra_ops": "cmc"}`` for its exact recipe.

>>> import torch
>>> from infomin.views.augment import AugmentViews
>>> gen = AugmentViews("simclr", overrides={"gray_p": 0.0})
>>> v1, v2, params = gen(torch.rand(4, 3, 32, 32), rng=0)
>>> v1.shape, sorted(params)
(torch.Size([4, 3, 32, 32]), ['view1', 'view2'])
"""

from __future__ import annotations

import copy
import math
from typing import Any

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from infomin.errors import SpecError, check_choice, check_int, check_interval, check_range
from infomin.views.base import Params, ViewGenerator
from infomin.views.registry import register

__all__ = ["PRESETS", "OPS", "RA_OPS", "RA_OPS_CMC", "AugmentViews", "resolve_ops",
           "sample_augment", "augment_batch"]

#: every op parameter, with its "off" value (the ``none`` preset)
OPS: dict[str, Any] = {
    "flip_p": 0.0,             # horizontal flip probability
    "jitter_p": 0.0,           # probability of colour jitter; then the four magnitudes below
    "brightness": 0.0,         # factor ~ U[max(0, 1 - b), 1 + b]   (x strength)
    "contrast": 0.0,           # factor ~ U[max(0, 1 - c), 1 + c]   (x strength)
    "saturation": 0.0,         # factor ~ U[max(0, 1 - s), 1 + s]   (x strength)
    "hue": 0.0,                # shift ~ U[-h, h] turns, h <= 0.5   (x strength, capped)
    "blur_p": 0.0,             # Gaussian blur probability
    "blur_sigma": [0.1, 2.0],  # sigma range in pixels
    "blur_kernel": 0.1,        # kernel side as a fraction of the view side (odd, >= 3)
    "ra_n": 0,                 # RandAugment layers (0: off)
    "ra_m": 10.0,              # RandAugment magnitude in [0, 10]
    "ra_mstd": 0.5,            # std of the per-sample magnitude noise
    "ra_p": 0.5,               # probability that a layer's chosen op is applied
    "ra_ops": "rgb",           # op list: "rgb" (RA_OPS) or "cmc" (RA_OPS_CMC, no colour ops)
    "gray_p": 0.0,             # random grayscale probability
    "solarize_p": 0.0,         # solarize (invert above 0.5) probability, as in BYOL
}

#: presets as data. Sources:
#: simclr: SimCLR (Chen et al. 2020, arXiv 2002.05709) CIFAR-10, Appendix B.9: colour strength
#:   s = 0.5 -> ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) with p = 0.8, grayscale p = 0.2, no blur;
#:   solo-learn's scripts/pretrain/cifar/augmentations/asymmetric.yaml has the same values
#:   except saturation 0.2.
#: simclr_imagenet: SimCLR ImageNet (s = 1): jitter 0.8/0.8/0.8/0.2 p = 0.8, grayscale 0.2,
#:   blur p = 0.5 with kernel 10% of the side, sigma in [0.1, 2.0] (solo-learn's CIFAR
#:   symmetric.yaml uses these values at 32 px too).
#: infomin: InfoMin Aug (Tian et al. 2020, arXiv 2005.10243, §4.3), PyContrast
#:   pycontrast/datasets/util.py aug "D": flip, ColorJitter(0.8, 0.8, 0.8, 0.2) p = 0.8,
#:   GaussianBlur p = 0.5, RandAugment rand-n2-m10-mstd0.5, grayscale p = 0.2.
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "simclr": {"flip_p": 0.5, "jitter_p": 0.8, "brightness": 0.4, "contrast": 0.4,
               "saturation": 0.4, "hue": 0.1, "gray_p": 0.2},
    "simclr_imagenet": {"flip_p": 0.5, "jitter_p": 0.8, "brightness": 0.8, "contrast": 0.8,
                        "saturation": 0.8, "hue": 0.2, "gray_p": 0.2, "blur_p": 0.5},
    "infomin": {"flip_p": 0.5, "jitter_p": 0.8, "brightness": 0.8, "contrast": 0.8,
                "saturation": 0.8, "hue": 0.2, "blur_p": 0.5, "ra_n": 2, "ra_m": 10.0,
                "ra_mstd": 0.5, "ra_p": 0.5, "gray_p": 0.2},
}

#: timm/PyContrast ``_RAND_TRANSFORMS`` minus Equalize, and ``_RAND_TRANSFORMS_CMC``
RA_OPS = ("auto_contrast", "invert", "rotate", "posterize", "solarize", "solarize_add", "color",
          "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y")
RA_OPS_CMC = ("auto_contrast", "identity", "rotate", "sharpness", "shear_x", "shear_y",
              "translate_x", "translate_y")
_GEOMETRIC = {"rotate", "shear_x", "shear_y", "translate_x", "translate_y"}
_FILL = (0.485, 0.456, 0.406)  # PyContrast fills with the ImageNet mean
_JITTER = ("brightness", "contrast", "saturation", "hue")


def resolve_ops(preset: str = "simclr", strength: float = 1.0,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full op table of ``preset`` with ``overrides`` applied and jitter scaled by ``strength``.

    Raises :class:`SpecError` naming the bad key or value (``overrides.<key>``).
    """
    check_choice("preset", preset, sorted(PRESETS))
    strength = float(check_range("strength", strength, 0.0))
    ops = copy.deepcopy(OPS)
    ops.update(copy.deepcopy(PRESETS[preset]))
    if overrides is not None and not isinstance(overrides, dict):
        raise SpecError("overrides", overrides, "expected a mapping op -> value",
                        choices=sorted(OPS))
    for key, value in (overrides or {}).items():
        if key not in OPS:
            raise SpecError(f"overrides.{key}", value, "unknown augmentation op parameter",
                            choices=sorted(OPS))
        ops[key] = value
    for key in ("flip_p", "jitter_p", "blur_p", "ra_p", "gray_p", "solarize_p"):
        ops[key] = float(check_range(f"overrides.{key}", ops[key], 0.0, 1.0))
    for key in ("brightness", "contrast", "saturation"):
        ops[key] = float(check_range(f"overrides.{key}", ops[key], 0.0)) * strength
    ops["hue"] = min(0.5, float(check_range("overrides.hue", ops["hue"], 0.0, 0.5)) * strength)
    ops["blur_sigma"] = list(check_interval("overrides.blur_sigma", ops["blur_sigma"], 0.0))
    if ops["blur_sigma"][0] <= 0:
        raise SpecError("overrides.blur_sigma", ops["blur_sigma"], "expected sigma > 0")
    ops["blur_kernel"] = float(check_range("overrides.blur_kernel", ops["blur_kernel"], 0.0, 1.0))
    ops["ra_n"] = check_int("overrides.ra_n", ops["ra_n"], 0, 8)
    ops["ra_m"] = float(check_range("overrides.ra_m", ops["ra_m"], 0.0, 10.0))
    ops["ra_mstd"] = float(check_range("overrides.ra_mstd", ops["ra_mstd"], 0.0))
    check_choice("overrides.ra_ops", ops["ra_ops"], ["rgb", "cmc"])
    return ops


# -- sampling -----------------------------------------------------------------------------------

def sample_augment(n: int, ops: dict[str, Any], rng: torch.Generator, *, color: bool = True) -> Params:
    """Draw one view's per-sample augmentation parameters for ``n`` images (CPU tensors).

    ``ops`` comes from :func:`resolve_ops`. With ``color=False`` the colour
    ops are off (their masks are all False) and RandAugment uses the CMC list.

    Returns a dict with (B,) bool masks ``flip, jitter, blur, gray, solarize``;
    (B,) factors ``brightness, contrast, saturation, hue`` (identity values
    where ``jitter`` is off) and ``sigma``; ``order`` (4,), the jitter op order
    (one per batch); RandAugment's ``ra_op`` (B, L) long, ``ra_on`` (B, L)
    bool, ``ra_level`` (B, L) and ``ra_sign`` (B, L) for ``L = ra_n`` layers;
    and two plain values replay needs: ``blur_kernel`` (fraction of the side)
    and ``ra_ops`` (op names).
    """
    def u(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=rng)

    def factor(b: float) -> Tensor:
        lo = max(0.0, 1.0 - b)
        return lo + u(n) * (1.0 + b - lo)

    off = torch.zeros(n, dtype=torch.bool)
    flip = u(n) < ops["flip_p"]
    jitter = (u(n) < ops["jitter_p"]) if color else off
    # samples without jitter get the identity factors (1, 1, 1, 0): apply needs no mask
    p: Params = {
        "flip": flip,
        "jitter": jitter,
        "brightness": torch.where(jitter, factor(ops["brightness"]), 1.0),
        "contrast": torch.where(jitter, factor(ops["contrast"]), 1.0),
        "saturation": torch.where(jitter, factor(ops["saturation"]), 1.0),
        "hue": torch.where(jitter, (2 * u(n) - 1) * ops["hue"], 0.0),
        "order": torch.argsort(u(4)),                  # jitter op order, one per batch
        "blur": u(n) < ops["blur_p"],
        "sigma": ops["blur_sigma"][0] + u(n) * (ops["blur_sigma"][1] - ops["blur_sigma"][0]),
        "gray": (u(n) < ops["gray_p"]) if color else off,
        "solarize": (u(n) < ops["solarize_p"]) if color else off,
        "blur_kernel": ops["blur_kernel"],
    }
    names = RA_OPS if (color and ops["ra_ops"] == "rgb") else RA_OPS_CMC
    k = ops["ra_n"]
    level = ops["ra_m"] + ops["ra_mstd"] * torch.randn(n, k, generator=rng)
    p.update({
        "ra_ops": names,
        "ra_op": torch.randint(0, len(names), (n, k), generator=rng),
        "ra_on": u(n, k) < ops["ra_p"],
        "ra_level": level.clamp(0.0, 10.0),
        "ra_sign": torch.where(u(n, k) < 0.5, -1.0, 1.0),
    })
    return p


# -- applying -----------------------------------------------------------------------------------

def _on_subset(x: Tensor, mask: Tensor, fn) -> Tensor:
    """``fn(x[idx], idx)`` written back into a copy of ``x`` where ``mask`` is set (out of place)."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    return x.index_put((idx,), fn(x.index_select(0, idx), idx))


def _col(v: Tensor, x: Tensor) -> Tensor:
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


#: torchvision's luma weights (ITU-R 601-2 with R rounded to 0.2989); kornia uses 0.299
_LUMA = (0.2989, 0.587, 0.114)


def _luma(x: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) grayscale with torchvision's weights (three plane passes)."""
    y = x[:, 0:1] * _LUMA[0]
    return y.add_(x[:, 1:2], alpha=_LUMA[1]).add_(x[:, 2:3], alpha=_LUMA[2])


def _gray3(x: Tensor) -> Tensor:
    return _luma(x).expand_as(x)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue of RGB ``x`` (B, 3, H, W) by ``shift`` (B,) turns (torchvision's ``adjust_hue``).

    Written here because ``kornia.enhance.adjust_hue`` (RGB -> HSV -> RGB) was
    the bottleneck of the whole SimCLR recipe (~150 ms per 512 CIFAR images on
    one core, 5x the other three jitter ops together; this is ~40 ms). Hue
    rotation keeps the max ``M`` and the chroma ``C = M - min`` of each pixel, so the closed form
    of HSV -> RGB, ``out_n = M - C * clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 h) mod 6`` and ``n = 5, 3, 1`` for R, G, B, gives the result
    from the shifted hue ``h`` directly (no HSV image is built). Matches torchvision to float precision
    (tested); differentiable almost everywhere.
    """
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    mx = torch.maximum(torch.maximum(r, g), b)
    c = mx - torch.minimum(torch.minimum(r, g), b)
    is_r = r == mx
    is_g = (g == mx).logical_and_(~is_r)
    # 6 h: (g - b)/C on the red sector, (b - r)/C + 2 on green, (r - g)/C + 4 on blue
    num = torch.where(is_r, g - b, torch.where(is_g, b - r, r - g))
    off = torch.where(is_r, 0.0, torch.where(is_g, 2.0, 4.0)).to(x.dtype)
    shift = shift.to(device=x.device, dtype=x.dtype).view(-1, 1, 1)
    # in-place steps only on fresh intermediates that autograd does not save (fewer allocations)
    h = (num / c.clamp_min(1e-12)).add_(off).add_(6.0 * shift).remainder_(6.0)
    # channel n = M - C * tri(n + 6h mod 6); tri(k) = clamp(2 - |k - 2|, 0, 1) on the circle, i.e.
    # clamp(2 - d, 0, 1) with d the circular distance from 6h to 3 (R), 5 (G), 1 (B). Written
    # with scalar ops (cheap on the CPU) instead of tensor-tensor minimum / where.
    out = []
    for peak, wraps in ((3.0, False), (5.0, True), (1.0, True)):
        a = (h - peak).abs()
        tri = (2.0 - a).clamp_(0.0, 1.0)
        if wraps:  # the other way round the circle: 6 - a < 2 where a > 4
            tri = tri + (a - 4.0).clamp_(0.0, 1.0)
        out.append(torch.addcmul(mx, c, tri, value=-1.0))
    return torch.stack(out, 1)


def _jitter_op(name: str, x: Tensor, f: Tensor) -> Tensor:
    """One torchvision colour op with per-sample factors ``f`` (B,).

    Brightness is ``kornia.enhance.adjust_contrast`` (a multiplicative blend with
    black, which is torchvision's brightness; kornia's ``adjust_brightness`` adds
    ``f`` instead). Contrast and saturation are written here as the same blends
    as kornia's ``adjust_contrast_with_mean_subtraction`` /
    ``adjust_saturation_with_gray_subtraction`` because those build a
    full-resolution grayscale image and several temporaries: measured 2-3x
    slower on the CPU, and the jitter is the hot path of every SimCLR step. The
    contrast mean is the mean of the luma image, computed from the channel
    means (the same number, a (B, 3) reduction instead of a (B, 1, H, W) image).
    Hue: :func:`adjust_hue`.
    """
    f = f.to(device=x.device, dtype=x.dtype)
    if name == "brightness":
        return kornia.enhance.adjust_contrast(x, f)
    fv = f.view(-1, 1, 1, 1)
    if name == "contrast":
        w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        mean = (x.mean((-2, -1), keepdim=True) * w).sum(1, keepdim=True)     # B x 1 x 1 x 1
        return (x * fv).add_((1 - fv) * mean).clamp_(0.0, 1.0)
    if name == "saturation":
        return torch.lerp(_luma(x), x, fv).clamp_(0.0, 1.0)
    return adjust_hue(x, f)


def color_jitter(x: Tensor, factors: dict[str, Tensor], order: Tensor) -> Tensor:
    """torchvision ``ColorJitter`` with per-sample factors, the four ops in the order ``order``.

    Args:
        x: (B, 3, H, W) in [0, 1].
        factors: ``brightness``, ``contrast``, ``saturation`` (B,) multiplicative factors and
            ``hue`` (B,) shift as a fraction of the hue circle; identity values (1, 1, 1, 0)
            leave a sample unchanged.
        order: (4,) permutation of (brightness, contrast, saturation, hue).

    torchvision draws the order per image; here it is drawn per batch (as
    kornia's ``ColorJitter`` does): a per-image order needs per-op subsets of
    the batch (gathers and scatters), which doubled the cost of the recipe on
    the CPU, while the factors, which carry the strength, stay per image.
    """
    for o in order.tolist():
        name = _JITTER[o]
        x = _jitter_op(name, x, factors[name])
    return x


def _blur(x: Tensor, sigma: Tensor, kernel_fraction: float) -> Tensor:
    side = min(x.shape[-2:])
    k = max(3, int(round(kernel_fraction * side)) // 2 * 2 + 1)
    s = sigma.to(device=x.device, dtype=x.dtype).view(-1, 1).expand(-1, 2)
    return kornia.filters.gaussian_blur2d(x, (k, k), s, border_type="reflect")


_GEO_ORDER = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
#: magnitude at level 10 (timm/PyContrast): degrees, shear factor, fraction of the side
_GEO_MAX = {"rotate": 30.0, "shear_x": 0.3, "shear_y": 0.3, "translate_x": 0.45, "translate_y": 0.45}


def _affine(x: Tensor, codes: Tensor, mag: Tensor) -> Tensor:
    """One affine warp per sample: ``codes`` index :data:`_GEO_ORDER`, ``mag`` is the signed magnitude.

    PIL conventions: rotation about the centre, shear about the top-left corner.
    """
    b, _, h, w = x.shape
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    mag = mag.to(device=x.device, dtype=x.dtype)
    rot = mag * (math.pi / 180)
    is_rot = codes == 0
    c, s = torch.cos(rot), torch.sin(rot)
    # rotation about the centre, in pixel units: u_in = c u - s (H/W) v, v_in = s (W/H) u + c v
    rot_theta = torch.stack([torch.stack([c, -s * h / w, torch.zeros_like(c)], -1),
                             torch.stack([s * w / h, c, torch.zeros_like(c)], -1)], 1)
    theta = torch.where(is_rot.view(-1, 1, 1), rot_theta, theta)
    # PIL shear_x: x_in = x + f y about the top-left corner -> u_in = u + f (H/W) (v + 1)
    sx = torch.where(codes == 1, mag, torch.zeros_like(mag)) * h / w
    sy = torch.where(codes == 2, mag, torch.zeros_like(mag)) * w / h
    tx = torch.where(codes == 3, mag, torch.zeros_like(mag))
    ty = torch.where(codes == 4, mag, torch.zeros_like(mag))
    add = torch.stack([torch.stack([torch.zeros_like(sx), sx, sx + 2 * tx], -1),
                       torch.stack([sy, torch.zeros_like(sy), sy + 2 * ty], -1)], 1)
    theta = theta + add
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    fill = torch.tensor(_FILL, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).add(fill).clamp(0.0, 1.0)


def _auto_contrast(x: Tensor) -> Tensor:
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    ok = span > 1e-6
    return torch.where(ok, (x - lo) / torch.where(ok, span, torch.ones_like(span)), x).clamp(0, 1)


def _posterize(x: Tensor, bits: Tensor) -> Tensor:
    # keep `bits` most significant bits of the 8-bit value; straight-through gradient
    step = torch.pow(2.0, 8 - bits.to(x.dtype)).view(-1, 1, 1, 1)
    q = torch.floor(torch.round(x * 255) / step) * step / 255
    return x + (q - x).detach()


def _ra_photometric(name: str, x: Tensor, level: Tensor) -> Tensor:
    lv = _col(level, x) / 10.0
    if name == "identity":
        return x
    if name == "auto_contrast":
        return _auto_contrast(x)
    if name == "invert":
        return 1.0 - x
    if name == "posterize":   # PosterizeTpu: keep int(level/10 * 4) bits
        return _posterize(x, torch.floor(level.to(x.device) / 10 * 4))
    if name == "solarize":    # PIL: invert where 255 x >= int(level/10 * 256)
        thresh = torch.floor(lv * 256) / 255
        return torch.where(x >= thresh, 1.0 - x, x)
    if name == "solarize_add":
        add = torch.floor(lv * 110) / 255
        return torch.where(x < 128 / 255, (x + add).clamp(max=1.0), x)
    f = (lv * 1.8 + 0.1).view(-1)  # PIL ImageEnhance factor in [0.1, 1.9]
    if name == "color":
        return kornia.enhance.adjust_saturation_with_gray_subtraction(x, f)
    if name == "contrast":
        return kornia.enhance.adjust_contrast_with_mean_subtraction(x, f)
    if name == "brightness":
        return kornia.enhance.adjust_contrast(x, f)
    if name == "sharpness":
        return kornia.enhance.sharpness(x, f)
    raise KeyError(name)


def _rand_augment_layer(x: Tensor, names: tuple[str, ...], op: Tensor, on: Tensor,
                        level: Tensor, sign: Tensor) -> Tensor:
    op, on, level, sign = (t.to(x.device) for t in (op, on, level, sign))
    # op index in `names` -> geometric code (or -1) and magnitude at level 10, as lookup tensors
    geo_code = torch.tensor([_GEO_ORDER.index(nm) if nm in _GEOMETRIC else -1 for nm in names],
                            device=x.device)
    geo_max = torch.tensor([_GEO_MAX.get(nm, 0.0) for nm in names], device=x.device)
    geo = on & (geo_code[op] >= 0)

    def warp(xs: Tensor, idx: Tensor) -> Tensor:
        o = op[idx]
        return _affine(xs, geo_code[o], level[idx] / 10.0 * geo_max[o] * sign[idx])

    x = _on_subset(x, geo, warp)
    for i, name in enumerate(names):
        if name in _GEOMETRIC or name == "identity":
            continue
        x = _on_subset(x, on & (op == i), lambda xs, idx, name=name: _ra_photometric(name, xs, level[idx]))
    return x


def augment_batch(x: Tensor, params: Params) -> Tensor:
    """Apply one view's augmentation ``params`` (from :func:`sample_augment`) to ``x`` (B, 3, H, W).

    Deterministic and differentiable w.r.t. ``x`` (almost everywhere: clamps
    and thresholds have zero gradient where they bite).
    """
    p = params
    if bool(p["flip"].any()):
        x = torch.where(_col(p["flip"], x).bool(), x.flip(-1), x)
    if bool(p["jitter"].any()):
        x = color_jitter(x, {k: p[k] for k in _JITTER}, p["order"])
    x = _on_subset(x, p["blur"], lambda xs, idx: _blur(xs, p["sigma"].to(x.device)[idx], p["blur_kernel"]))
    for layer in range(p["ra_op"].shape[1]):
        x = _rand_augment_layer(x, tuple(p["ra_ops"]), p["ra_op"][:, layer], p["ra_on"][:, layer],
                                p["ra_level"][:, layer], p["ra_sign"][:, layer])
    if bool(p["gray"].any()):
        x = torch.where(_col(p["gray"], x).bool(), _gray3(x), x)
    if bool(p["solarize"].any()):
        x = torch.where(_col(p["solarize"], x).bool() & (x >= 0.5), 1.0 - x, x)
    return x


@register("augment")
class AugmentViews(ViewGenerator):
    """Two independently augmented copies of each image (SimCLR / InfoMin appearance augmentations).

    SimCLR (arXiv 2002.05709, §2.1) applies random cropping, random colour
    distortion and random Gaussian blur in sequence; this kind is the
    appearance part (crops live in :mod:`infomin.views.crop`,
    :mod:`infomin.views.compose` chains the two).

    Args:
        preset: one of :data:`PRESETS` (``simclr``, ``simclr_imagenet``, ``infomin``, ``none``).
        strength: multiplies the jitter magnitudes (SimCLR's colour strength ``s`` relative
            to the preset); hue is capped at 0.5.
        overrides: per-op values, keys from :data:`OPS` (e.g. ``{"gray_p": 0.0}``).
        color: ``False`` skips the colour ops (jitter, grayscale, solarize, RandAugment colour ops).

    Params: ``{"view1": ..., "view2": ...}``, each from :func:`sample_augment`.
    """

    differentiable = frozenset({"input"})

    def __init__(self, preset: str = "simclr", strength: float = 1.0,
                 overrides: dict[str, Any] | None = None, color: bool = True):
        super().__init__()
        self.ops = resolve_ops(preset, strength, overrides)
        if not isinstance(color, bool):
            raise SpecError("color", color, "expected true or false")
        self.color = color
        self._remember(preset=preset, strength=float(strength),
                       overrides=dict(overrides) if overrides else None, color=color)

    @property
    def channels(self) -> tuple[int, int]:
        return (3, 3)

    @property
    def stochastic(self) -> bool:
        """False only for a recipe whose every op is off (e.g. the ``none`` preset)."""
        ops = self.ops
        probs = [ops["flip_p"], ops["blur_p"]]
        if self.color:
            probs += [ops["jitter_p"], ops["gray_p"], ops["solarize_p"]]
        return any(p > 0 for p in probs) or (ops["ra_n"] > 0 and ops["ra_p"] > 0)

    def sample_view(self, n: int, rng: torch.Generator, *, color: bool | None = None) -> Params:
        """One view's parameters; ``color=False`` turns the colour ops off for this draw."""
        return sample_augment(n, self.ops, rng, color=self.color if color is None else (self.color and color))

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        n = x.shape[0]
        return {"view1": self.sample_view(n, rng), "view2": self.sample_view(n, rng)}

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        return augment_batch(x, params["view1"]), augment_batch(x, params["view2"])
