"""Crop pairs: two boxes per image, resampled with an affine grid (differentiable in image *and* box).

InfoMin (Tian et al. 2020, arXiv 2005.10243) argues that "we should reduce
the mutual information (MI) between views while keeping task-relevant
information intact" (abstract). Its §3.2 tests this with spatial views: two
fixed-size patches of one image, taken further and further apart, share less
and less information, and downstream accuracy traces a reverse-U with a sweet
spot in between. SimCLR (Chen et al. 2020, arXiv 2002.05709, §3) finds random
cropping composed with colour distortion the key augmentation. This module
makes those crop pairs:

* ``random_resized_crop``: torchvision's ``RandomResizedCrop`` box distribution,
  one box per view (``shared=True``: the same box for both views, as CMC does
  before splitting channels), plus a horizontal flip;
* ``patch_distance``: two fixed-size patches whose centres are ``distance``
  pixels apart (the InfoMin patch-distance experiment);
* ``overlap_crops``: two square crops whose IoU lies in a range, or that are
  disjoint;
* ``identity``: ``v1 = v2 = x``.

Boxes are float tensors ``(B, 4)`` holding ``(x0, y0, x1, y1)`` as fractions of
the image width and height (``0 <= x0 < x1 <= 1``). :func:`crop_boxes_to_grid`
turns boxes into a sampling grid for ``torch.nn.functional.grid_sample``
(bilinear, ``align_corners=False``: a box edge lies on a pixel edge), so the
views are differentiable w.r.t. ``x`` and w.r.t. the boxes: a view learner can
move the boxes by gradient descent, and any pair can be replayed from its
boxes.

Why not kornia's crops: ``kornia.augmentation.RandomResizedCrop`` and
``kornia.geometry.transform.crop_and_resize`` round the box to integer pixels
(``crop_by_indices`` and the homography built from integer corners), which
cuts the gradient to the box, and they draw from torch's global generator.
A box -> affine matrix -> ``affine_grid`` -> ``grid_sample`` keeps both.

Known difference from torchvision: the crop is resampled bilinearly without
antialiasing, so shrinking a large crop by more than ~2x aliases (torchvision's
tensor ``resize`` antialiases). At CIFAR/STL sizes crops are mostly enlarged.

>>> import torch
>>> from infomin.views.crop import RandomResizedCropPair
>>> gen = RandomResizedCropPair(size=16)
>>> v1, v2, params = gen(torch.rand(4, 3, 32, 32), rng=0)
>>> v1.shape, params["box1"].shape
(torch.Size([4, 3, 16, 16]), torch.Size([4, 4]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from infomin.errors import SpecError, check_int, check_interval, check_range
from infomin.views.base import Params, ViewGenerator
from infomin.views.registry import register

__all__ = [
    "crop_boxes_to_grid", "crop", "box_iou", "sample_rrc_boxes",
    "RandomResizedCropPair", "PatchDistancePair", "OverlapCropPair", "Identity",
]


# -- box utilities ----------------------------------------------------------------------------

def crop_boxes_to_grid(boxes: Tensor, size: int | tuple[int, int],
                       flip: Tensor | None = None) -> Tensor:
    """Sampling grid that maps each box onto a ``size`` output, for ``grid_sample``.

    Args:
        boxes: (B, 4) ``(x0, y0, x1, y1)`` in [0, 1] image fractions (float; may require grad).
        size: output ``h`` (= ``w``) or ``(h, w)``.
        flip: optional (B,) bool, mirror the box horizontally.

    Returns:
        (B, h, w, 2) grid in ``grid_sample``'s [-1, 1] coordinates (``align_corners=False``).

    With ``align_corners=False``, ``u = -1`` is the left edge of the left pixel,
    so the affine map ``u_in = (x0 + x1 - 1) + (x1 - x0) * u_out`` sends the
    output's edges exactly onto the box edges; its derivative w.r.t. the box
    is what carries gradients to the box.
    """
    h, w = (size, size) if isinstance(size, int) else size
    x0, y0, x1, y1 = boxes.unbind(-1)
    sx = x1 - x0
    if flip is not None:
        sx = torch.where(flip.to(boxes.device, torch.bool), -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([
        torch.stack([sx, zero, x0 + x1 - 1.0], -1),
        torch.stack([zero, y1 - y0, y0 + y1 - 1.0], -1),
    ], 1)  # B x 2 x 3
    return F.affine_grid(theta, [boxes.shape[0], 1, h, w], align_corners=False)


def crop(x: Tensor, boxes: Tensor, size: int | tuple[int, int], flip: Tensor | None = None) -> Tensor:
    """Resample box ``b`` of image ``x[b]`` to ``size`` (bilinear): (B, C, H, W) -> (B, C, h, w)."""
    grid = crop_boxes_to_grid(boxes.to(x.device), size, flip).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise IoU of boxes ``(..., 4)`` in the same coordinates -> ``(...)``."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter).clamp_min(1e-12)


def _rand(rng: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(*shape, generator=rng, dtype=torch.float64)


def sample_rrc_boxes(n: int, height: int, width: int, rng: torch.Generator,
                     scale: tuple[float, float] = (0.08, 1.0),
                     ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10) -> Tensor:
    """``n`` RandomResizedCrop boxes, torchvision's distribution, vectorised.

    torchvision (``RandomResizedCrop.get_params``) draws an area fraction
    ``s ~ U(scale)`` and a log-uniform aspect ratio ``r``, sets
    ``w = sqrt(s*H*W*r)``, ``h = sqrt(s*H*W/r)``, accepts the first of 10
    tries that fits in the image, and otherwise falls back to the central crop
    with the ratio clamped into ``ratio``. Here the 10 tries are drawn at once
    as an (n, 10) tensor and the first fitting one is picked with ``argmax`` over
    the acceptance mask: the same distribution with no Python loop. Box
    sides and positions are continuous (torchvision rounds them to pixels).

    Returns:
        (n, 4) float32 ``(x0, y0, x1, y1)`` in image fractions.
    """
    area = float(height * width)
    s = _rand(rng, n, tries) * (scale[1] - scale[0]) + scale[0]
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    r = torch.exp(_rand(rng, n, tries) * (log_hi - log_lo) + log_lo)
    w = torch.sqrt(s * area * r)
    h = torch.sqrt(s * area / r)
    ok = (w <= width) & (h <= height) & (w > 0) & (h > 0)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)  # first accepted try (0 if none)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)
    # torchvision's fallback: the central crop with the ratio clamped into `ratio`
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = float(width), width / ratio[0]
    elif in_ratio > ratio[1]:
        fw, fh = height * ratio[1], float(height)
    else:
        fw, fh = float(width), float(height)
    found = ok.any(1)
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    u = _rand(rng, n, 2)
    x0 = torch.where(found, u[:, 0] * (width - w), (width - w) / 2)
    y0 = torch.where(found, u[:, 1] * (height - h), (height - h) / 2)
    boxes = torch.stack([x0 / width, y0 / height, (x0 + w) / width, (y0 + h) / height], 1)
    return boxes.clamp(0.0, 1.0).float()


def _flips(rng: torch.Generator, n: int, p: float) -> Tensor:
    return torch.rand(n, generator=rng) < p


# -- kinds ------------------------------------------------------------------------------------

class _CropPair(ViewGenerator):
    """Shared apply: ``v_i = crop(x, box_i, size, flip_i)``."""

    differentiable = frozenset({"input", "params"})
    size: int

    @property
    def channels(self) -> tuple[int, int]:
        return (3, 3)

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        if params.get("shared", False):
            v = crop(x, params["box1"], self.size, params.get("flip1"))
            return v, v
        return (crop(x, params["box1"], self.size, params.get("flip1")),
                crop(x, params["box2"], self.size, params.get("flip2")))


@register("random_resized_crop")
class RandomResizedCropPair(_CropPair):
    """Two RandomResizedCrop views per image (torchvision's box distribution), optionally shared.

    SimCLR (arXiv 2002.05709, Appendix A) crops a random area and aspect ratio,
    resizes it to the original size and flips it with probability 0.5.
    ``shared=True`` gives both views the same box and flip (CMC,
    arXiv 1906.05849, crops once, then splits channels).

    Args:
        size: output side in pixels.
        scale: range of the box area as a fraction of the image area.
        ratio: range of the box aspect ratio w/h (log-uniform).
        shared: same box (and flip) for ``v1`` and ``v2``.
        flip: probability of a horizontal flip, drawn per view.

    Params: ``box1``, ``box2`` (B, 4) float image fractions; ``flip1``,
    ``flip2`` (B,) bool; ``shared`` bool.
    """

    def __init__(self, size: int = 32, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), shared: bool = False,
                 flip: float = 0.5):
        super().__init__()
        self.size = check_int("size", size, 1)
        self.scale = check_interval("scale", scale, 0.0, 1.0)
        if self.scale[0] <= 0:
            raise SpecError("scale", list(scale), "expected 0 < low <= high <= 1")
        self.ratio = check_interval("ratio", ratio, 0.0)
        if self.ratio[0] <= 0:
            raise SpecError("ratio", list(ratio), "expected 0 < low <= high")
        if not isinstance(shared, bool):
            raise SpecError("shared", shared, "expected true or false")
        self.shared = shared
        self.flip = float(check_range("flip", flip, 0.0, 1.0))
        self._remember(size=size, scale=list(self.scale), ratio=list(self.ratio),
                       shared=shared, flip=self.flip)

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        b, _, h, w = x.shape
        box1 = sample_rrc_boxes(b, h, w, rng, self.scale, self.ratio)
        flip1 = _flips(rng, b, self.flip)
        if self.shared:
            return {"box1": box1, "box2": box1.clone(), "flip1": flip1, "flip2": flip1.clone(),
                    "shared": True}
        box2 = sample_rrc_boxes(b, h, w, rng, self.scale, self.ratio)
        return {"box1": box1, "box2": box2, "flip1": flip1, "flip2": _flips(rng, b, self.flip),
                "shared": False}


@register("patch_distance")
class PatchDistancePair(_CropPair):
    """Two ``size`` x ``size`` patches whose centres are ``distance`` pixels apart.

    InfoMin (arXiv 2005.10243, §3.2) samples two same-size patches of one
    image and varies the distance between them: the closer the patches, the
    more information they share. Patches are taken at 1:1 scale (output side
    = ``size``).

    Sampling (exact, no rejection): with ``L_x = W - size`` and
    ``L_y = H - size`` the room left for a centre, a displacement
    ``(d cos t, d sin t)`` fits iff ``|d cos t| <= L_x`` and ``|d sin t| <= L_y``;
    in the first quadrant that is ``t`` in ``[acos(min(1, L_x/d)), asin(min(1, L_y/d))]``.
    ``t`` is uniform on that arc, the quadrant is uniform, and the first
    centre is uniform over the positions that keep both patches inside.

    Args:
        size: patch side in pixels.
        distance: centre distance in pixels.
        jitter: the distance is drawn per sample from ``U[distance - jitter, distance + jitter]`` (>= 0).

    Params: ``box1``, ``box2`` (B, 4) float; ``distance`` (B,) achieved distance in pixels.

    Raises:
        SpecError: at sampling time if two patches that far apart do not fit in the image.
    """

    def __init__(self, size: int = 16, distance: float = 8.0, jitter: float = 0.0):
        super().__init__()
        self.size = check_int("size", size, 1)
        self.distance = float(check_range("distance", distance, 0.0))
        self.jitter = float(check_range("jitter", jitter, 0.0))
        self._remember(size=size, distance=self.distance, jitter=self.jitter)

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        b, _, h, w = x.shape
        lx, ly = float(w - self.size), float(h - self.size)
        d_max = self.distance + self.jitter
        if lx < 0 or ly < 0:
            raise SpecError("size", self.size, f"a patch does not fit in a {h}x{w} image")
        if d_max > math.hypot(lx, ly) + 1e-9:
            raise SpecError("distance", self.distance,
                            f"two {self.size}px patches {d_max:g}px apart (distance + jitter) do not fit "
                            f"in a {h}x{w} image; the largest possible distance is {math.hypot(lx, ly):.2f}")
        d = self.distance + (2 * _rand(rng, b) - 1) * self.jitter
        d = d.clamp_min(0.0)
        safe = d.clamp_min(1e-12)
        lo = torch.acos((lx / safe).clamp(max=1.0))   # smallest feasible angle from the x axis
        hi = torch.asin((ly / safe).clamp(max=1.0))   # largest feasible angle
        u = _rand(rng, b, 5)
        t = lo + u[:, 0] * (hi - lo).clamp_min(0.0)
        sx = torch.where(u[:, 1] < 0.5, -1.0, 1.0)
        sy = torch.where(u[:, 2] < 0.5, -1.0, 1.0)
        dx, dy = sx * d * torch.cos(t), sy * d * torch.sin(t)
        half = self.size / 2
        # first centre: uniform over the positions that keep both patches in the image
        cx_lo, cx_hi = half + (-dx).clamp_min(0), w - half - dx.clamp_min(0)
        cy_lo, cy_hi = half + (-dy).clamp_min(0), h - half - dy.clamp_min(0)
        c1x = cx_lo + u[:, 3] * (cx_hi - cx_lo).clamp_min(0)
        c1y = cy_lo + u[:, 4] * (cy_hi - cy_lo).clamp_min(0)
        c2x = (c1x + dx).clamp(half, w - half)
        c2y = (c1y + dy).clamp(half, h - half)

        def box(cx: Tensor, cy: Tensor) -> Tensor:
            return torch.stack([(cx - half) / w, (cy - half) / h, (cx + half) / w, (cy + half) / h], 1).float()

        return {"box1": box(c1x, c1y), "box2": box(c2x, c2y),
                "distance": torch.hypot(c2x - c1x, c2y - c1y).float()}


@register("overlap_crops")
class OverlapCropPair(_CropPair):
    """Two square crops whose IoU lies in ``iou`` (or that are disjoint), resized to ``size``.

    A controlled version of the InfoMin spatial study (arXiv 2005.10243, §3.2):
    the overlap of two crops bounds how much of the scene they share.

    Sampling: each round draws ``candidates`` pairs per image at once (side
    ``sqrt(s*H*W)`` with ``s ~ U(scale)``, uniform positions), computes their
    IoU, and keeps the first valid pair per image with tensor ops; rows with
    no valid pair are redrawn in the next round (at most ``rounds`` rounds,
    then a :class:`SpecError` says the range is too hard to hit).

    Args:
        size: output side in pixels.
        scale: crop area range as a fraction of the image area (crops are square in pixels).
        iou: accepted IoU range ``[low, high]``.
        disjoint: require zero intersection instead (``iou`` is then ignored).

    Params: ``box1``, ``box2`` (B, 4) float; ``iou`` (B,) achieved IoU.
    """

    candidates = 64
    rounds = 16

    def __init__(self, size: int = 32, scale: tuple[float, float] = (0.2, 0.6),
                 iou: tuple[float, float] = (0.0, 1.0), disjoint: bool = False):
        super().__init__()
        self.size = check_int("size", size, 1)
        self.scale = check_interval("scale", scale, 0.0, 1.0)
        if self.scale[0] <= 0:
            raise SpecError("scale", list(scale), "expected 0 < low <= high <= 1")
        self.iou = check_interval("iou", iou, 0.0, 1.0)
        if not isinstance(disjoint, bool):
            raise SpecError("disjoint", disjoint, "expected true or false")
        if disjoint and self.scale[0] > 0.25:
            # two squares of area >= s (side sqrt(s)) fit side by side only if 2 sqrt(s) <= 1
            raise SpecError("scale", list(scale), "disjoint square crops need scale[0] <= 0.25")
        self.disjoint = disjoint
        self._remember(size=size, scale=list(self.scale), iou=list(self.iou), disjoint=disjoint)

    def _candidates(self, n: int, h: int, w: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        m = self.candidates
        s = _rand(rng, n, m, 2) * (self.scale[1] - self.scale[0]) + self.scale[0]
        side = torch.sqrt(s * h * w).clamp(max=float(min(h, w)))  # n x m x 2 pixels
        u = _rand(rng, n, m, 2, 2)
        x0 = u[..., 0] * (w - side)
        y0 = u[..., 1] * (h - side)
        boxes = torch.stack([x0 / w, y0 / h, (x0 + side) / w, (y0 + side) / h], -1)  # n x m x 2 x 4
        return boxes[..., 0, :], boxes[..., 1, :]

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        b, _, h, w = x.shape
        box1 = torch.zeros(b, 4, dtype=torch.float64)
        box2 = torch.zeros(b, 4, dtype=torch.float64)
        todo = torch.arange(b)
        for _ in range(self.rounds):
            a, c = self._candidates(len(todo), h, w, rng)       # n x m x 4 each
            # IoU in pixel units (the boxes are square in pixels, not in fractions)
            scale = torch.tensor([w, h, w, h], dtype=torch.float64)
            iou = box_iou(a * scale, c * scale)                  # n x m
            if self.disjoint:
                ok = iou <= 0.0
            else:
                ok = (iou >= self.iou[0]) & (iou <= self.iou[1])
            first = ok.to(torch.uint8).argmax(1)
            found = ok.any(1)
            rows = torch.arange(len(todo))
            box1[todo[found]] = a[rows, first][found]
            box2[todo[found]] = c[rows, first][found]
            todo = todo[~found]
            if len(todo) == 0:
                break
        if len(todo):
            field, value = ("disjoint", True) if self.disjoint else ("iou", list(self.iou))
            raise SpecError(field, value,
                            f"no crop pair with scale {list(self.scale)} hit this range in "
                            f"{self.candidates * self.rounds} tries on a {h}x{w} image; widen it")
        scale = torch.tensor([w, h, w, h], dtype=torch.float64)
        return {"box1": box1.float(), "box2": box2.float(),
                "iou": box_iou(box1 * scale, box2 * scale).float()}


@register("identity")
class Identity(ViewGenerator):
    """No view at all: ``v1 = v2 = x`` (the degenerate end of the InfoMin curve: all information shared).

    Deterministic; params are empty.
    """

    differentiable = frozenset({"input"})

    def __init__(self) -> None:
        super().__init__()
        self._remember()

    @property
    def channels(self) -> tuple[int, int]:
        return (3, 3)

    @property
    def stochastic(self) -> bool:
        return False

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        return {}

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        return x, x
