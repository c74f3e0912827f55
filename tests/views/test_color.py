"""Colour spaces (infomin.views.color) against scikit-image, round trips, gradients, and channel_split.

Reference: ``skimage.color.rgb2<space>`` (float64 NumPy, channels last). Ours is
compared after undoing :data:`SKIMAGE_AFFINE`, i.e. in our [0, 1] units, so one
tolerance means "this fraction of the channel's span" for every space.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage.color import colorconv

from infomin.errors import SpecError
from infomin.views import color as C
from infomin.views.color import SKIMAGE_AFFINE, SPACES, ChannelSplit, rgb_from, rgb_to

# -- helpers ---------------------------------------------------------------------------------

def rand_images(n=4, size=8, seed=0, dtype=torch.float64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def skimage_in_our_units(img_nhwc: np.ndarray, space: str) -> torch.Tensor:
    """skimage's conversion of float64 NHWC ``img`` -> (N, 3, H, W) in our units."""
    ref = img_nhwc if space == "rgb" else getattr(skcolor, f"rgb2{space}")(img_nhwc)
    scale, offset = (torch.tensor(v, dtype=torch.float64).view(3, 1, 1) for v in SKIMAGE_AFFINE[space])
    return (torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2) - offset) / scale


def channel_errors(ours: torch.Tensor, img_nhwc: np.ndarray, space: str) -> torch.Tensor:
    """Per-pixel |ours - skimage| in our units, (N, 3, H, W); hue compared on the circle."""
    ref = skimage_in_our_units(img_nhwc, space)
    ours = ours.double()
    if space == "hed":  # skimage clamps negative stain amounts at 0 (we keep them; see color.py)
        scale, offset = (torch.tensor(v, dtype=torch.float64).view(3, 1, 1) for v in SKIMAGE_AFFINE["hed"])
        ours = torch.maximum(ours, -offset / scale)
    err = (ours - ref).abs()
    if space == "hsv":
        err[:, 0] = torch.minimum(err[:, 0], 1.0 - err[:, 0])
    return err


def to_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.double().permute(0, 2, 3, 1).numpy()


def real_photos(cifar_dir) -> dict[str, np.ndarray]:
    """float64 NHWC in [0, 1]: sklearn's china.jpg (every 8th pixel) and 16 CIFAR-10 test images."""
    from sklearn.datasets import load_sample_image

    china = load_sample_image("china.jpg")[::8, ::8][None]                     # (1, 54, 80, 3)
    cifar = np.load(cifar_dir / "cifar10_test.npz")["images"][:16]              # (16, 32, 32, 3)
    assert cifar.shape == (16, 32, 32, 3) and cifar.dtype == np.uint8
    return {"china": china / 255.0, "cifar": cifar / 255.0}


def safe_hsv_colours(n: int, seed: int) -> torch.Tensor:
    """(1, 3, 1, n) float64 RGB whose hue is inside a sector (no max/min ties, no red wrap)."""
    g = torch.Generator().manual_seed(seed)
    sector = torch.randint(0, 6, (n,), generator=g).double()
    h = (sector + 0.2 + 0.6 * torch.rand(n, generator=g, dtype=torch.float64)) / 6.0
    s = 0.3 + 0.6 * torch.rand(n, generator=g, dtype=torch.float64)
    v = 0.3 + 0.6 * torch.rand(n, generator=g, dtype=torch.float64)
    hsv = torch.stack([h, s, v]).view(1, 3, 1, n)
    return rgb_from(hsv, "hsv")


# -- constants -------------------------------------------------------------------------------

def test_matrices_are_skimages():
    pairs = {
        "_XYZ_FROM_RGB": colorconv.xyz_from_rgb, "_YUV_FROM_RGB": colorconv.yuv_from_rgb,
        "_YIQ_FROM_RGB": colorconv.yiq_from_rgb, "_YPBPR_FROM_RGB": colorconv.ypbpr_from_rgb,
        "_YCBCR_FROM_RGB": colorconv.ycbcr_from_rgb, "_YDBDR_FROM_RGB": colorconv.ydbdr_from_rgb,
        "_RGB_FROM_HED": colorconv.rgb_from_hed,
    }
    for name, ref in pairs.items():
        np.testing.assert_array_equal(np.array(getattr(C, name)), ref, err_msg=name)


def test_affine_table_covers_every_space():
    assert set(SKIMAGE_AFFINE) == set(SPACES) == set(C.CHANNEL_NAMES)
    for space, (scale, offset) in SKIMAGE_AFFINE.items():
        assert len(scale) == len(offset) == 3
        assert all(s > 0 for s in scale), space


# -- against scikit-image --------------------------------------------------------------------

@pytest.mark.parametrize("space", SPACES)
def test_matches_skimage_float64_random(space):
    # Same formulas in float64: the only differences are kornia's epsilons, 1e-12 in Luv's
    # denominators and 1e-8 in HSV's saturation s = delta / (v + 1e-8) (so |ds| <= 1e-8 / v).
    x = rand_images(4, 8, seed=1)
    err = channel_errors(rgb_to(x, space), to_nhwc(x), space)
    tol = torch.full_like(err, 1e-9)
    if space == "hsv":
        tol[:, 1] = 1e-9 + 1e-8 / x.amax(1)
    assert (err <= tol).all(), f"{space}: max error per channel {err.amax((0, 2, 3)).tolist()}"


@pytest.mark.parametrize("space", SPACES)
def test_matches_skimage_float32_real_photos(space, cifar_dir):
    # float32 input vs skimage in float64. float32 unit roundoff is 6e-8; the longest chains
    # (sRGB gamma -> XYZ -> cube root -> Lab, or log -> HED) amplify it by < 10, measured
    # <= 3.2e-7. HSV's saturation also carries kornia's eps: 1e-8 / v <= 2.6e-6 for 8-bit
    # images whose darkest non-black max channel is 1/255. Thresholds: 1e-6, and 4e-6 there.
    for name, img in {**real_photos(cifar_dir), "random": to_nhwc(rand_images(4, 16, seed=2))}.items():
        x = torch.from_numpy(img).permute(0, 3, 1, 2).float()
        err = channel_errors(rgb_to(x, space), img, space).amax((0, 2, 3))
        tol = torch.tensor([1e-6, 4e-6 if space == "hsv" else 1e-6, 1e-6], dtype=torch.float64)
        assert (err <= tol).all(), f"{space} on {name}: max error per channel {err.tolist()}"


def test_outputs_lie_in_unit_interval_on_the_rgb_cube():
    g = torch.linspace(0, 1, 17, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(g, g, g, indexing="ij")).reshape(1, 3, 17, 17 * 17)
    for space in SPACES:
        y = rgb_to(cube, space)
        assert y.min() >= -1e-12 and y.max() <= 1 + 1e-12, (space, y.min().item(), y.max().item())
        if space in ("ycbcr", "yuv", "yiq", "ydbdr", "ypbpr", "xyz", "hed"):
            # linear spaces fill [0, 1]: the extremes are attained at cube corners (to 1e-7:
            # skimage's YIQ Q row sums to -1e-8, so its two extremes differ in the 8th decimal)
            torch.testing.assert_close(y.amin((0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                                       atol=1e-7, rtol=0)
            torch.testing.assert_close(y.amax((0, 2, 3)), torch.ones(3, dtype=torch.float64),
                                       atol=1e-7, rtol=0)


# -- closed forms ----------------------------------------------------------------------------

def grey_lab_luv_closed_form(level: float) -> tuple[float, float, float, float]:
    """(a, b, u, v) of sRGB grey ``level`` in skimage units, from the formulas.

    Not exactly 0: skimage (like kornia) normalises by the D65 white (0.95047, 1, 1.08883)
    while its sRGB matrix maps white to the row sums (0.950456, 1, 1.088754).
    """
    lin = ((level + 0.055) / 1.055) ** 2.4 if level > 0.04045 else level / 12.92
    wx, wz = np.array(C._XYZ_FROM_RGB).sum(1)[[0, 2]]
    nx, nz = 0.95047, 1.08883
    if lin <= 0.008856:  # only level 0 here: black
        return 0.0, 0.0, 0.0, 0.0
    fy = lin ** (1 / 3)
    a = 500 * fy * ((wx / nx) ** (1 / 3) - 1)
    b = 200 * fy * (1 - (wz / nz) ** (1 / 3))
    L = 116 * fy - 16
    u = 13 * L * (4 * wx / (wx + 15 + 3 * wz) - 4 * nx / (nx + 15 + 3 * nz))
    v = 13 * L * (9 / (wx + 15 + 3 * wz) - 9 / (nx + 15 + 3 * nz))
    return a, b, u, v


@pytest.mark.parametrize("level", [0.0, 0.2, 0.5, 1.0])
def test_grey_has_zero_chroma(level):
    grey = torch.full((2, 3, 2, 2), level, dtype=torch.float64)
    for space in ("ycbcr", "yuv", "yiq", "ydbdr", "ypbpr"):
        y = rgb_to(grey, space)
        torch.testing.assert_close(y[:, 1:], torch.full_like(y[:, 1:], 0.5), atol=1e-7, rtol=0,
                                   msg=lambda m, s=space: f"{s}: {m}")
        # luma 0.299 + 0.587 + 0.114 = 1 -> Y(grey) = level
        torch.testing.assert_close(y[:, 0], grey[:, 0], atol=1e-12, rtol=0)
    a, b, u, v = grey_lab_luv_closed_form(level)
    assert max(abs(a), abs(b), abs(u), abs(v)) < 0.02  # near-zero chroma, in skimage units
    for space, chroma in (("lab", (a, b)), ("luv", (u, v))):
        scale, offset = SKIMAGE_AFFINE[space]
        y = rgb_to(grey, space)
        for c in (1, 2):
            expected = (chroma[c - 1] - offset[c]) / scale[c]
            torch.testing.assert_close(y[:, c], torch.full_like(y[:, c], expected), atol=1e-9, rtol=0)
    hsv = rgb_to(grey, "hsv")
    assert (hsv[:, 1] == 0).all() and torch.allclose(hsv[:, 2], grey[:, 0])


def test_closed_form_primaries_and_white():
    white = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(rgb_to(white, "xyz").flatten(), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(rgb_to(white, "lab").flatten()[0], torch.tensor(1.0, dtype=torch.float64))
    # HED of white: optical density 0, so no stain: ours = -offset / scale
    scale, offset = SKIMAGE_AFFINE["hed"]
    torch.testing.assert_close(rgb_to(white, "hed").flatten(),
                               torch.tensor([-o / s for s, o in zip(scale, offset, strict=True)], dtype=torch.float64))
    blue = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).view(1, 3, 1, 1)
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    # YPbPr: Pb(blue) = +0.5 and Pr(red) = +0.5 are the extremes -> 1.0 in our units
    assert rgb_to(blue, "ypbpr")[0, 1].item() == pytest.approx(1.0)
    assert rgb_to(red, "ypbpr")[0, 2].item() == pytest.approx(1.0)
    # HSV hue of the primaries: 0, 1/3, 2/3
    green = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    hues = [rgb_to(c, "hsv")[0, 0].item() for c in (red, green, blue)]
    assert hues == pytest.approx([0.0, 1 / 3, 2 / 3])


# -- inverses ----------------------------------------------------------------------------------

@pytest.mark.parametrize("space", SPACES)
def test_round_trip_float32(space):
    x = rand_images(8, 16, seed=3, dtype=torch.float32)
    back = rgb_from(rgb_to(x, space), space)
    assert back.dtype == torch.float32
    err = (back - x).abs().max().item()
    assert err <= 1e-4, f"{space}: round trip error {err}"


@pytest.mark.parametrize("space", [s for s in SPACES if s != "rgb"])
def test_rgb_from_matches_skimage_inverse(space):
    # both inverses applied to skimage's forward output (ours after the affine), so skimage's
    # lossy HED clamp does not matter; skimage's inverses clip to [0, 1] (Lab, Luv, XYZ, HED)
    x = rand_images(2, 6, seed=4)
    sk = getattr(skcolor, f"rgb2{space}")(to_nhwc(x))
    ref = getattr(skcolor, f"{space}2rgb")(sk)
    ours = rgb_from(skimage_in_our_units(to_nhwc(x), space), space, clip=True)
    np.testing.assert_allclose(to_nhwc(ours), ref, atol=1e-8)


def test_clip_only_changes_out_of_gamut():
    lab = torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)  # far outside sRGB
    raw = rgb_from(lab, "lab")
    assert raw.min() < 0 or raw.max() > 1
    clipped = rgb_from(lab, "lab", clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


# -- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("space", SPACES)
def test_gradcheck_both_directions(space):
    if space == "hsv":
        x = safe_hsv_colours(4, seed=5)
    else:  # stay off the piecewise seams: sRGB gamma at 0.04045, Lab / Luv cube root at 0.008856
        x = 0.2 + 0.7 * rand_images(1, 2, seed=5)
    x = x.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: rgb_to(t, space), (x,), eps=1e-6, atol=1e-5)
    y = rgb_to(x, space).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: rgb_from(t, space), (y,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("space", SPACES)
def test_autocast_bf16_finite_and_differentiable(space):
    x = (0.05 + 0.9 * rand_images(2, 8, seed=6, dtype=torch.float32)).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = rgb_to(x, space)
        back = rgb_from(y, space)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    # autocast is switched off inside: still float32 accurate, not bf16's 3 digits
    assert (back - x).abs().max().item() <= 1e-4
    (y.square().sum() + back.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("space", SPACES)
def test_half_inputs_keep_their_dtype(space):
    x = rand_images(1, 4, seed=7, dtype=torch.float32).to(torch.bfloat16)
    y = rgb_to(x, space)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    ref = rgb_to(x.float(), space)
    assert (y.float() - ref).abs().max() <= 1e-2  # one bf16 rounding of values in [0, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_preserved(dtype):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        x = rand_images(2, 4, seed=8, dtype=dtype).to(device)
        for space in SPACES:
            y = rgb_to(x, space)
            back = rgb_from(y, space)
            assert y.dtype == back.dtype == dtype and y.device == back.device == x.device
            assert y.shape == back.shape == x.shape


def test_shape_only_devices_work():
    # "meta" has no autocast support: the autocast guard must not trip on it
    x = torch.empty(2, 3, 4, 4, device="meta")
    for space in SPACES:
        assert rgb_to(x, space).shape == x.shape == rgb_from(x, space).shape


def test_leading_dims_are_batch_dims():
    x = rand_images(6, 4, seed=9)
    for space in SPACES:
        flat = rgb_to(x, space)
        torch.testing.assert_close(rgb_to(x.view(2, 3, 3, 4, 4), space), flat.view(2, 3, 3, 4, 4))
        torch.testing.assert_close(rgb_to(x[0], space), flat[0])


def test_bad_arguments_raise_spec_error():
    x = rand_images(1, 4)
    with pytest.raises(SpecError) as e:
        rgb_to(x, "rgb2lab")
    assert e.value.field == "space" and e.value.choices == list(SPACES) and "'ydbdr'" in str(e.value)
    with pytest.raises(SpecError, match="x.shape"):
        rgb_to(torch.rand(1, 4, 2, 2), "lab")
    with pytest.raises(SpecError, match="x.dtype"):
        rgb_from(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), "lab")


# -- the channel_split kind ---------------------------------------------------------------------

@pytest.mark.parametrize("space,split,channels", [
    ("lab", [[0], [1, 2]], (1, 2)),
    ("ydbdr", [[0], [1, 2]], (1, 2)),
    ("rgb", [[0, 2], [1]], (2, 1)),
    ("hsv", [[2], [0]], (1, 1)),
])
def test_channel_split_values_are_slices_of_rgb_to(space, split, channels):
    gen = ChannelSplit(space, split)
    x = rand_images(3, 8, seed=10, dtype=torch.float32)
    v1, v2, params = gen(x, generator=0)
    assert gen.channels == channels == (v1.shape[1], v2.shape[1])
    assert params == {}
    full = rgb_to(x, space)
    torch.testing.assert_close(v1, full[:, split[0]], rtol=0, atol=0)
    torch.testing.assert_close(v2, full[:, split[1]], rtol=0, atol=0)
    # deterministic: another seed gives the same views, and replay reproduces them
    w1, w2, _ = gen(x, generator=123)
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    r1, r2, _ = gen.replay(x, params)
    assert torch.equal(v1, r1) and torch.equal(v2, r2)


def test_channel_split_defaults_spec_and_gradient():
    from infomin.views import build

    gen = build({"kind": "channel_split"})
    assert isinstance(gen, ChannelSplit) and gen.channels == (1, 2)
    assert gen.to_spec() == {"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]}
    again = build(ChannelSplit("yiq", [[1], [2, 0]]).to_spec())
    assert again.to_spec() == {"kind": "channel_split", "space": "yiq", "split": [[1], [2, 0]]}
    assert gen.differentiable == frozenset({"input"})
    x = rand_images(2, 8, seed=11, dtype=torch.float32).requires_grad_(True)
    v1, v2, _ = gen(x)
    (v1.sum() + v2.sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_channel_split_bad_space():
    with pytest.raises(SpecError) as e:
        ChannelSplit(space="cmyk")
    assert e.value.field == "space" and "'cmyk'" in str(e.value)
    assert all(f"'{s}'" in str(e.value) for s in SPACES)


@pytest.mark.parametrize("split", [
    [[0], [0, 1]],       # shared channel
    [[3], [1]],          # out of range
    [[-1], [1]],         # negative
    [[], [1, 2]],        # empty view
    [[0]],               # one view
    [[0], [1], [2]],     # three views
    "0|12",              # not a list
    [[0, 0], [1]],       # repeated
    [[True], [1]],       # bool is not an index
    [[0.0], [1]],        # float is not an index
])
def test_channel_split_bad_split(split):
    with pytest.raises(SpecError) as e:
        ChannelSplit("lab", split)
    assert e.value.field.startswith("split")
    assert e.value.choices == [0, 1, 2] and "valid choices: 0, 1, 2" in str(e.value)


def test_build_names_the_nested_field():
    from infomin.views import build

    with pytest.raises(SpecError) as e:
        build({"kind": "channel_split", "space": "lab", "split": [[0], [5]]})
    assert e.value.field == "views.split[1]"


def test_hue_is_circular_in_the_split():
    # reds just either side of the wrap: hue ~0.0 and ~1.0 are the same colour
    x = torch.tensor([[1.0, 0.0, 1e-3], [1.0, 1e-3, 0.0]], dtype=torch.float64).T.reshape(1, 3, 1, 2)
    h = rgb_to(x, "hsv")[0, 0, 0]
    d = (h[0] - h[1]).abs().item()
    assert min(d, 1 - d) < 2e-3 and not math.isclose(h[0].item(), h[1].item(), abs_tol=0.5)
