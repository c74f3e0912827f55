"""Colour spaces as differentiable tensor maps, and the ``channel_split`` view kind.

InfoMin (Tian et al. 2020, arXiv 2005.10243, §4) builds views of an image
from disjoint channel sets of a colour space and finds the luminance |
chrominance splits -- Y | DbDr and L | ab -- close to the sweet spot of its
reverse-U curve of downstream accuracy against the views' mutual information.

:func:`rgb_to` maps an sRGB batch ``x`` of shape ``(..., 3, H, W)`` with
values in [0, 1] to one of :data:`SPACES`; :func:`rgb_from` is its exact
inverse. Every conversion is a batched tensor op (one ``einsum`` with a 3x3
matrix per linear step), differentiable w.r.t. its input, and computed in
float32 or float64 with autocast disabled: colour maps contain cube roots,
logs and divisions that bf16/fp16 would ruin, so half-precision inputs are
up-cast and the result cast back to the input dtype.

Scale. Encoders like inputs of comparable scale, so each output channel is
affinely rescaled to about [0, 1]. :data:`SKIMAGE_AFFINE` records the map
back to scikit-image's units: per channel ``c``,
``skimage.color.rgb2<space>(img)[..., c] == rgb_to(x, space)[:, c] * scale[c] + offset[c]``.
Chroma / opponent channels are *centred*: neutral grey maps to exactly 0.5.
For the linear spaces ``scale`` is twice the largest absolute value the row
can take on the RGB cube, so those channels fill [0, 1] exactly; Lab and Luv
use one scale for both chroma channels (Euclidean chroma distances keep their
perceptual meaning); HED maps the full range reachable from RGB in [0, 1]
(skimage's 1e-6 floor included) onto [0, 1].

| space | channels | scale                        | offset                          | our range                  |
|-------|----------|------------------------------|---------------------------------|----------------------------|
| rgb   | R G B    | 1, 1, 1                      | 0, 0, 0                         | [0, 1]                     |
| lab   | L a b    | 100, 220, 220                | 0, -110, -110                   | L [0, 1], a b [0.01, 0.95] |
| luv   | L u v    | 100, 360, 360                | 0, -180, -180                   | L [0, 1], u v [0.12, 0.99] |
| ycbcr | Y Cb Cr  | 219, 224, 224                | 16, 16, 16                      | [0, 1]                     |
| yuv   | Y U V    | 1, 0.872021, 1.229951        | 0, -0.43601, -0.614975          | [0, 1]                     |
| yiq   | Y I Q    | 1, 1.191801, 1.045472        | 0, -0.595901, -0.522736         | [0, 1]                     |
| ydbdr | Y Db Dr  | 1, 2.666, 2.666              | 0, -1.333, -1.333               | [0, 1]                     |
| ypbpr | Y Pb Pr  | 1, 1, 1                      | 0, -0.5, -0.5                   | [0, 1]                     |
| xyz   | X Y Z    | 0.950456, 1, 1.088754        | 0, 0, 0                         | [0, 1]                     |
| hsv   | H S V    | 1, 1, 1                      | 0, 0, 0                         | [0, 1), H circular         |
| hed   | H E D    | 2.545798, 2.622823, 2.265226 | -0.667815, -1.488093, -0.691638 | [0, 1]                     |

Sources and deviations:

* matrices and constants are scikit-image's (``skimage/color/colorconv.py``,
  sRGB D65, observer 2°); YIQ, YDbDr, YPbPr and HED are written here because
  kornia has none of them;
* Lab, Luv and HSV use ``kornia.color`` (checked against skimage in the
  tests); sRGB linearisation uses kornia's ``rgb_to_linear_rgb``;
* YCbCr and YUV use skimage's matrices, not kornia's: kornia's ``rgb_to_ycbcr``
  uses rounded 0.564 / 0.713 chroma gains (Cb of pure blue is 0.9997, not 1:
  0.06 off in skimage's 8-bit units) and its ``rgb_to_yuv`` 3-decimal
  coefficients (1.3e-4 off); XYZ linearises with kornia, then applies
  skimage's matrix (kornia's ``rgb_to_xyz`` agrees to 1e-16 but takes
  *linear* RGB) with the rescaling folded into the same ``einsum``;
* HED follows skimage's ``separate_stains`` (optical density
  ``log(max(rgb, 1e-6)) / log(1e-6)`` times ``hed_from_rgb``) but does **not**
  clamp negative stain amounts to 0: the clamp makes the map non-invertible
  and zeroes its gradient. ``skimage.color.rgb2hed(img) == max(ours * scale +
  offset, 0)``. Its gradient is ``1 / rgb``: large near black.

Example (seeded)::

    >>> import torch
    >>> from infomin.views.color import rgb_to, rgb_from
    >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> lab = rgb_to(x, "lab")                      # (2, 3, 8, 8): L/100, a/220 + .5, b/220 + .5
    >>> bool(lab.min() >= 0) and bool(lab.max() <= 1)
    True
    >>> bool(torch.allclose(rgb_from(lab, "lab"), x, atol=1e-4))
    True
    >>> grey = torch.full((1, 3, 1, 1), 0.5)
    >>> [round(v, 6) for v in rgb_to(grey, "ydbdr").flatten().tolist()]   # zero chroma -> 0.5
    [0.5, 0.5, 0.5]
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import torch
from kornia.color import (
    hsv_to_rgb,
    lab_to_rgb,
    linear_rgb_to_rgb,
    luv_to_rgb,
    rgb_to_hsv,
    rgb_to_lab,
    rgb_to_linear_rgb,
    rgb_to_luv,
)
from torch import Tensor

from infomin.errors import SpecError, check_choice
from infomin.views.base import Params, ViewGenerator
from infomin.views.registry import register

__all__ = [
    "SPACES", "CHANNEL_NAMES", "SKIMAGE_AFFINE", "rgb_to", "rgb_from", "ChannelSplit",
]

SPACES: tuple[str, ...] = (
    "rgb", "lab", "luv", "ycbcr", "yuv", "yiq", "ydbdr", "ypbpr", "xyz", "hsv", "hed",
)

#: channel names per space, in output order
CHANNEL_NAMES: dict[str, tuple[str, str, str]] = {
    "rgb": ("R", "G", "B"), "lab": ("L", "a", "b"), "luv": ("L", "u", "v"),
    "ycbcr": ("Y", "Cb", "Cr"), "yuv": ("Y", "U", "V"), "yiq": ("Y", "I", "Q"),
    "ydbdr": ("Y", "Db", "Dr"), "ypbpr": ("Y", "Pb", "Pr"), "xyz": ("X", "Y", "Z"),
    "hsv": ("H", "S", "V"), "hed": ("H", "E", "D"),
}

# -- scikit-image's constants (skimage/color/colorconv.py), row i = output channel i -------
Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

_XYZ_FROM_RGB: Matrix = ((0.412453, 0.357580, 0.180423),
                         (0.212671, 0.715160, 0.072169),
                         (0.019334, 0.119193, 0.950227))
_YUV_FROM_RGB: Matrix = ((0.299, 0.587, 0.114),
                         (-0.14714119, -0.28886916, 0.43601035),
                         (0.61497538, -0.51496512, -0.10001026))
_YIQ_FROM_RGB: Matrix = ((0.299, 0.587, 0.114),
                         (0.59590059, -0.27455667, -0.32134392),
                         (0.21153661, -0.52273617, 0.31119955))
_YPBPR_FROM_RGB: Matrix = ((0.299, 0.587, 0.114),
                           (-0.168736, -0.331264, 0.5),
                           (0.5, -0.418688, -0.081312))
# skimage's ycbcr_from_rgb is (219, 224, 224) x the YPbPr rows, plus (16, 128, 128)
_YCBCR_FROM_RGB: Matrix = ((65.481, 128.553, 24.966),
                           (-37.797, -74.203, 112.0),
                           (112.0, -93.786, -18.214))
_YCBCR_BIAS = (16.0, 128.0, 128.0)
_YDBDR_FROM_RGB: Matrix = ((0.299, 0.587, 0.114),
                           (-0.45, -0.883, 1.333),
                           (-1.333, 1.116, 0.217))
# Ruifrok & Johnston 2001 stain vectors (rows: H, E, D); skimage's hed_from_rgb = inv(this)
_RGB_FROM_HED: Matrix = ((0.65, 0.70, 0.29),
                         (0.07, 0.99, 0.11),
                         (0.27, 0.57, 0.78))
_HED_FLOOR = 1e-6                     # skimage: np.maximum(rgb, 1e-6) "avoiding log artifacts"
_HED_LOG_ADJUST = math.log(_HED_FLOOR)

_TWO_PI = 2.0 * math.pi
_LAB_CHROMA = 110.0    # |a|, |b| <= 107.9 on the sRGB cube
_LUV_CHROMA = 180.0    # |u| <= 175.1, |v| <= 134.1 on the sRGB cube


def _t64(m: Any) -> Tensor:
    return torch.tensor(m, dtype=torch.float64)


def _centred_row(row: Tensor) -> tuple[float, float]:
    """(scale, offset) mapping ``row @ rgb`` over the RGB cube onto [0, 1] with 0 -> 0.5."""
    m = max(float(row.clamp(min=0).sum()), float(-row.clamp(max=0).sum()))
    return 2.0 * m, -m


def _linear_affine(m: Matrix) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mat = _t64(m)
    rows = [(1.0, 0.0)] + [_centred_row(mat[i]) for i in (1, 2)]
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def _hed_affine() -> tuple[tuple[float, ...], tuple[float, ...]]:
    # stains = od @ hed_from_rgb with od in [0, 1]^3: column j spans [sum of negatives, sum of positives]
    hed_from_rgb = torch.linalg.inv(_t64(_RGB_FROM_HED))
    lo = hed_from_rgb.clamp(max=0).sum(0)
    hi = hed_from_rgb.clamp(min=0).sum(0)
    return tuple((hi - lo).tolist()), tuple(lo.tolist())


#: per space: ((scale_0, scale_1, scale_2), (offset_0, offset_1, offset_2)) such that
#: ``skimage.color.rgb2<space>(img)[..., c] == rgb_to(x, space)[:, c] * scale[c] + offset[c]``
#: (HED: before skimage's clamp at 0; see the module docstring)
SKIMAGE_AFFINE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "rgb": ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
    "lab": ((100.0, 2 * _LAB_CHROMA, 2 * _LAB_CHROMA), (0.0, -_LAB_CHROMA, -_LAB_CHROMA)),
    "luv": ((100.0, 2 * _LUV_CHROMA, 2 * _LUV_CHROMA), (0.0, -_LUV_CHROMA, -_LUV_CHROMA)),
    "ycbcr": ((219.0, 224.0, 224.0), (16.0, 16.0, 16.0)),
    "yuv": _linear_affine(_YUV_FROM_RGB),
    "yiq": _linear_affine(_YIQ_FROM_RGB),
    "ydbdr": _linear_affine(_YDBDR_FROM_RGB),
    "ypbpr": _linear_affine(_YPBPR_FROM_RGB),
    "xyz": (tuple(_t64(_XYZ_FROM_RGB).sum(1).tolist()), (0.0, 0.0, 0.0)),  # sRGB white -> 1
    "hsv": ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
    "hed": _hed_affine(),
}

# skimage output = M @ input + bias, where input is sRGB (yuv...), linear RGB (xyz) or optical density (hed)
_LINEAR: dict[str, tuple[Tensor, tuple[float, float, float]]] = {
    "ycbcr": (_t64(_YCBCR_FROM_RGB), _YCBCR_BIAS),
    "yuv": (_t64(_YUV_FROM_RGB), (0.0, 0.0, 0.0)),
    "yiq": (_t64(_YIQ_FROM_RGB), (0.0, 0.0, 0.0)),
    "ydbdr": (_t64(_YDBDR_FROM_RGB), (0.0, 0.0, 0.0)),
    "ypbpr": (_t64(_YPBPR_FROM_RGB), (0.0, 0.0, 0.0)),
    "xyz": (_t64(_XYZ_FROM_RGB), (0.0, 0.0, 0.0)),
    # skimage multiplies row vectors on the right (od @ hed_from_rgb): transpose to our convention
    "hed": (torch.linalg.inv(_t64(_RGB_FROM_HED)).T.contiguous(), (0.0, 0.0, 0.0)),
}


@functools.lru_cache(maxsize=64)
def _folded(space: str, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``ours = A @ u + b`` and its inverse ``u = A_inv @ ours + b_inv`` (rescaling folded in)."""
    m, bias = _LINEAR[space]
    scale, offset = (_t64(v) for v in SKIMAGE_AFFINE[space])
    a = m / scale[:, None]
    b = (_t64(bias) - offset) / scale
    a_inv = torch.linalg.inv(a)
    b_inv = -a_inv @ b
    return tuple(t.to(device=device, dtype=dtype) for t in (a, b, a_inv, b_inv))  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _affine(space: str, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """(scale, offset) shaped (3, 1, 1) for broadcasting over (..., 3, H, W)."""
    scale, offset = SKIMAGE_AFFINE[space]
    if space == "hsv":  # kornia's hue is in radians [0, 2 pi); ours and skimage's in [0, 1)
        scale = (_TWO_PI, 1.0, 1.0)
    return (torch.tensor(scale, dtype=dtype, device=device).view(3, 1, 1),
            torch.tensor(offset, dtype=dtype, device=device).view(3, 1, 1))


def _mix(a: Tensor, b: Tensor, u: Tensor) -> Tensor:
    """``a @ u + b`` over the channel axis: (3, 3), (3,), (..., 3, H, W) -> (..., 3, H, W)."""
    return torch.einsum("ij,...jhw->...ihw", a, u) + b.view(3, 1, 1)


def _to(x: Tensor, space: str) -> Tensor:
    if space == "rgb":
        return x
    if space in ("lab", "luv", "hsv"):
        y = {"lab": rgb_to_lab, "luv": rgb_to_luv, "hsv": rgb_to_hsv}[space](x)
        scale, offset = _affine(space, x.device, x.dtype)
        return (y - offset) / scale
    a, b, _, _ = _folded(space, x.device, x.dtype)
    if space == "xyz":
        return _mix(a, b, rgb_to_linear_rgb(x))
    if space == "hed":
        od = torch.log(x.clamp(min=_HED_FLOOR)) / _HED_LOG_ADJUST  # optical density in [0, 1]
        return _mix(a, b, od)
    return _mix(a, b, x)


def _from(y: Tensor, space: str) -> Tensor:
    if space == "rgb":
        return y
    if space in ("lab", "luv", "hsv"):
        scale, offset = _affine(space, y.device, y.dtype)
        y = y * scale + offset
        if space == "lab":
            return lab_to_rgb(y, clip=False)
        return luv_to_rgb(y) if space == "luv" else hsv_to_rgb(y)
    _, _, a_inv, b_inv = _folded(space, y.device, y.dtype)
    u = _mix(a_inv, b_inv, y)
    if space == "xyz":
        return linear_rgb_to_rgb(u)
    if space == "hed":
        return torch.exp(u * _HED_LOG_ADJUST)
    return u


def _check(x: Any, space: Any, field: str) -> None:
    check_choice("space", space, SPACES)
    if not isinstance(x, Tensor):
        raise SpecError(field, type(x).__name__, "expected a torch.Tensor of shape (..., 3, H, W)")
    if x.ndim < 3 or x.shape[-3] != 3:
        raise SpecError(f"{field}.shape", tuple(x.shape), "expected (..., 3, H, W)")
    if not x.is_floating_point():
        raise SpecError(f"{field}.dtype", str(x.dtype),
                        "expected a floating-point tensor in [0, 1] (divide uint8 by 255)")


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:  # device types without autocast support (e.g. "meta")
        enabled = False
    return torch.autocast(device_type, enabled=False) if enabled else contextlib.nullcontext()


def _run(fn, x: Tensor, space: str) -> Tensor:
    """Run ``fn`` in float32/float64 with autocast off; return the input's dtype."""
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    with _autocast_off(x.device.type):
        y = fn(work, space)
    return y.to(x.dtype)


def rgb_to(x: Tensor, space: str) -> Tensor:
    """Convert an sRGB batch to ``space``, each channel rescaled to about [0, 1].

    Args:
        x: (..., 3, H, W) float sRGB in [0, 1].
        space: one of :data:`SPACES`.

    Returns:
        (..., 3, H, W), same dtype and device as ``x``; ``out * scale + offset``
        with :data:`SKIMAGE_AFFINE` ``[space]`` is skimage's ``rgb2<space>``.
        Differentiable w.r.t. ``x`` (HSV: except where the max / min channel
        ties and at the red hue wrap; HED: gradient ``~1/x``, 0 below 1e-6).

    >>> import torch
    >>> rgb_to(torch.ones(1, 3, 1, 1), "xyz").flatten().tolist()  # sRGB white
    [1.0, 1.0, 1.0]
    """
    _check(x, space, "x")
    return _run(_to, x, space)


def rgb_from(x: Tensor, space: str, *, clip: bool = False) -> Tensor:
    """Exact inverse of :func:`rgb_to`: (..., 3, H, W) in ``space`` -> sRGB.

    Args:
        x: (..., 3, H, W) float, as returned by :func:`rgb_to` (or edited).
        space: one of :data:`SPACES`.
        clip: clamp the result to [0, 1] (out-of-gamut colours otherwise leave
            it; clamping zeroes their gradient).

    Returns:
        (..., 3, H, W) sRGB, same dtype and device as ``x``.
    """
    _check(x, space, "x")
    rgb = _run(_from, x, space)
    return rgb.clamp(0.0, 1.0) if clip else rgb


# -- the view kind ---------------------------------------------------------------------------

def _check_split(split: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    choices = [0, 1, 2]
    hint = "expected two disjoint non-empty lists of channel indices, e.g. [[0], [1, 2]]"
    if not isinstance(split, (list, tuple)) or len(split) != 2:
        raise SpecError("split", split, hint, choices=choices)
    out = []
    for i, part in enumerate(split):
        if not isinstance(part, (list, tuple)) or len(part) == 0:
            raise SpecError(f"split[{i}]", part, hint, choices=choices)
        for c in part:
            if isinstance(c, bool) or not isinstance(c, int) or c not in choices:
                raise SpecError(f"split[{i}]", part, "channel index out of range", choices=choices)
        if len(set(part)) != len(part):
            raise SpecError(f"split[{i}]", part, "repeated channel index", choices=choices)
        out.append(tuple(int(c) for c in part))
    if set(out[0]) & set(out[1]):
        raise SpecError("split", split, "the two views share a channel; " + hint, choices=choices)
    return out[0], out[1]


def _take(y: Tensor, idx: tuple[int, ...]) -> Tensor:
    """Channels ``idx`` of (B, 3, H, W) ``y``: a view when they are consecutive, else a copy."""
    if idx == tuple(range(idx[0], idx[0] + len(idx))):
        return y[:, idx[0]:idx[0] + len(idx)]
    return y[:, list(idx)]


@register("channel_split")
class ChannelSplit(ViewGenerator):
    """Two views from disjoint channel sets of one colour space (deterministic).

    InfoMin (arXiv 2005.10243, §4) splits the channels of a colour space into
    two views; luminance | chrominance splits such as Y | DbDr and L | ab sit
    near the sweet spot of its reverse-U curve.

    Args:
        space: one of :data:`SPACES`.
        split: two disjoint non-empty lists of channel indices (0..2) of
            ``rgb_to(x, space)``; ``v1`` takes ``split[0]``, ``v2`` ``split[1]``;
            channels in neither are dropped.

    Shapes: ``x`` (B, 3, H, W) in [0, 1] -> ``v1`` (B, len(split[0]), H, W),
    ``v2`` (B, len(split[1]), H, W), each channel in about [0, 1]
    (see :data:`SKIMAGE_AFFINE`). ``params`` is empty: there is nothing to sample.

    >>> import torch
    >>> gen = ChannelSplit("ydbdr", [[0], [1, 2]])
    >>> v1, v2, params = gen(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    >>> gen.channels, tuple(v1.shape), tuple(v2.shape), params
    ((1, 2), (4, 1, 16, 16), (4, 2, 16, 16), {})
    """

    differentiable = frozenset({"input"})

    def __init__(self, space: str = "lab", split: Any = ((0,), (1, 2))) -> None:
        super().__init__()
        self.space = check_choice("space", space, SPACES)
        self.split = _check_split(split)
        self._remember(space=space, split=[list(self.split[0]), list(self.split[1])])

    @property
    def channels(self) -> tuple[int, int]:
        return len(self.split[0]), len(self.split[1])

    @property
    def stochastic(self) -> bool:
        return False

    @property
    def channel_names(self) -> tuple[list[str], list[str]]:
        names = CHANNEL_NAMES[self.space]
        return [names[c] for c in self.split[0]], [names[c] for c in self.split[1]]

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        return {}

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        y = rgb_to(x, self.space)
        return _take(y, self.split[0]), _take(y, self.split[1])
