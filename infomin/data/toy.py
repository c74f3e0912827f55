"""colorful-moving-digits: InfoMin's toy with known factors, built offline from scikit-learn's data.

InfoMin (Tian et al. 2020, arXiv 2005.10243, sec. 3.1) builds *Colorful-Moving-MNIST*:
"each image contains a digit moving on a colorful background ... [views] share
either the digit, the position or the background", and shows that what the views share
decides which factor the representation learns ("the optimal views ... share only the
task-relevant information").

This module rebuilds that experiment from data that ships with scikit-learn, so it runs
without any download:

* **digit** (10 classes): a real handwritten digit from ``sklearn.datasets.load_digits``
  (8x8, upsampled to 14x14 px), painted in a random fully saturated colour. Train and test
  use disjoint handwritten instances (every 5th instance is a test instance).
* **background** (12 classes): a 32x32 patch cut from one of 12 fixed regions of the two
  photographs of ``sklearn.datasets.load_sample_images`` (china.jpg, flower.jpg, downsampled
  2x), with a random jitter of up to 8 px of the cut so no two images share a background exactly.
* **position** (16 classes): the digit's top-left corner on a 4x4 grid (offsets 0, 6, 12, 18 px).
* **hue** (6 classes, a labelled attribute of the digit rather than a factor views choose):
  the digit's hue binned around red, yellow, green, cyan, blue and magenta. It travels with
  the digit in the ``shared_factors`` views. Colour is what a learned colour transform can keep or
  drop, so it is the label the view learner's toy test uses (``ds.relabel("hue")``).

Images are 32x32 RGB, uint8. Rendering is batched tensor indexing (one gather for the
backgrounds, a loop over the 16 positions for pasting the glyphs), so 5,000 images take
well under a second. The dataset keeps the glyph and background pools and each image's
render parameters, so the ``shared_factors`` view kind (:mod:`infomin.views.factors`) can
re-render any image with some factors kept and the others resampled.

>>> ds = colorful_moving_digits("train", n=100, seed=0)
>>> ds.images.shape, sorted(ds.factors), ds.factors["background"].max().item() < 12
(torch.Size([100, 3, 32, 32]), ['background', 'digit', 'hue', 'position'], True)
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_hsv
from torch import Tensor

from infomin.data.base import ImageDataset
from infomin.errors import check_choice, check_int
from infomin.seeding import make_generator

NAME = "colorful-moving-digits"
FACTORS: tuple[str, ...] = ("digit", "background", "position")
#: class names of the ``hue`` factor (the digit's colour); bin k is centred on hue k/6
COLORS: tuple[str, ...] = ("red", "yellow", "green", "cyan", "blue", "magenta")
IMAGE_SIZE = 32
GLYPH_SIZE = 14
GRID_OFFSETS: tuple[int, ...] = (0, 6, 12, 18)  # 4 x 4 = 16 positions
JITTER = 8  # background cut jitter, px (at half resolution)
TILE = IMAGE_SIZE + JITTER
# (photo, row, col) of the top-left corner of each background region, in the 2x-downsampled
# photos (213 x 320), chosen by eye to look different.
BACKGROUND_REGIONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),      # sky
    (0, 20, 70),    # pagoda roof
    (0, 65, 50),    # pagoda body
    (0, 105, 195),  # lake
    (0, 70, 275),   # tree, right
    (0, 170, 230),  # bushes
    (0, 150, 0),    # dark trees, left
    (1, 85, 125),   # flower centre
    (1, 40, 105),   # petals
    (1, 0, 0),      # dark bokeh
    (1, 170, 145),  # second flower
    (1, 120, 260),  # blue-green bokeh
)
DEFAULT_SIZES = {"train": 5000, "test": 1000}
SPLITS: tuple[str, ...] = ("train", "test")

# which render parameters carry each factor (kept together when the factor is shared)
FACTOR_PARAMS: dict[str, tuple[str, ...]] = {
    "digit": ("glyph", "color"),
    "background": ("background", "offset"),
    "position": ("position",),
}


@lru_cache(maxsize=2)
def _glyph_pool(split: str) -> tuple[Tensor, Tensor]:
    """Handwritten digits of ``split``: glyphs float (P, 14, 14) in [0, 1], digit labels long (P,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = torch.from_numpy(d.images).float().div_(16.0)  # 1797 x 8 x 8, values 0..16
    labels = torch.from_numpy(d.target).long()
    test = torch.arange(len(labels)) % 5 == 0
    keep = test if split == "test" else ~test
    up = F.interpolate(imgs[keep, None], size=(GLYPH_SIZE, GLYPH_SIZE), mode="bilinear",
                       align_corners=False)[:, 0].clamp_(0.0, 1.0)
    return up, labels[keep]


@lru_cache(maxsize=1)
def _background_tiles() -> Tensor:
    """Background regions: float (12, 3, TILE, TILE) in [0, 1]."""
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(im.copy()).permute(2, 0, 1).float().div_(255.0)
              for im in load_sample_images().images]  # 2 x (3, 427, 640)
    half = [F.avg_pool2d(p[None], 2)[0] for p in photos]  # 2 x (3, 213, 320)
    return torch.stack([half[k][:, r:r + TILE, c:c + TILE] for k, r, c in BACKGROUND_REGIONS])


def _hue_to_rgb(hue: Tensor) -> Tensor:
    """Fully saturated, full-value colours for hues in [0, 1): (N,) -> (N, 3)."""
    n = torch.tensor([5.0, 3.0, 1.0], device=hue.device)
    k = (n[None] + hue[:, None] * 6.0) % 6.0
    return 1.0 - torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def _hue_bin(rgb: Tensor) -> Tensor:
    """Colours (N, 3) -> the nearest of the 6 hues k/6 (N,) (index into COLORS)."""
    hue = rgb_to_hsv(rgb[:, :, None, None])[:, 0, 0, 0] / (2 * math.pi)  # kornia: radians -> [0, 1)
    return torch.round(hue * len(COLORS)).long() % len(COLORS)


def cell_masks() -> Tensor:
    """Bool (16, 1, 32, 32): the pixels each position's glyph may cover (its grid cell)."""
    g = len(GRID_OFFSETS)
    m = torch.zeros(g * g, 1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
    for p in range(g * g):
        oy, ox = GRID_OFFSETS[p // g], GRID_OFFSETS[p % g]
        m[p, 0, oy:oy + GLYPH_SIZE, ox:ox + GLYPH_SIZE] = True
    return m


class DigitRenderer:
    """Holds the glyph and background pools; samples and renders factor parameters.

    Render parameters (per image): ``glyph`` (index into the glyph pool), ``color`` (3,),
    ``background`` (class), ``offset`` (2,) jitter of the background cut, ``position`` (class).
    """

    def __init__(self, split: str) -> None:
        check_choice("split", split, SPLITS)
        self.split = split
        self.glyphs, self.glyph_labels = _glyph_pool(split)
        self.tiles = _background_tiles()

    @property
    def device(self) -> torch.device:
        return self.glyphs.device

    def to(self, device: torch.device | str) -> DigitRenderer:
        self.glyphs = self.glyphs.to(device)
        self.glyph_labels = self.glyph_labels.to(device)
        self.tiles = self.tiles.to(device)
        return self

    def sample(self, n: int, rng: torch.Generator) -> dict[str, Tensor]:
        """Draw parameters for ``n`` images on the CPU from ``rng``, then move them to the pools' device."""
        p = {
            "glyph": torch.randint(0, len(self.glyph_labels), (n,), generator=rng),
            "color": _hue_to_rgb(torch.rand(n, generator=rng)),
            "background": torch.randint(0, len(self.tiles), (n,), generator=rng),
            "offset": torch.randint(0, JITTER + 1, (n, 2), generator=rng),
            "position": torch.randint(0, len(GRID_OFFSETS) ** 2, (n,), generator=rng),
        }
        return {k: v.to(self.device) for k, v in p.items()}

    def factors(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Factor labels (digit, background, position, and the digit's hue bin) of render parameters."""
        return {"digit": self.glyph_labels[params["glyph"]], "background": params["background"],
                "position": params["position"], "hue": _hue_bin(params["color"])}

    def render(self, params: dict[str, Tensor], *, return_alpha: bool = False):
        """Render float (N, 3, 32, 32) images in [0, 1] (and the digit alpha (N, 1, 32, 32))."""
        bg_cls, off, pos = params["background"], params["offset"], params["position"]
        n = bg_cls.shape[0]
        ar = torch.arange(IMAGE_SIZE, device=self.device)
        rows = off[:, 0, None] + ar  # N x 32
        cols = off[:, 1, None] + ar  # N x 32
        # advanced indices around a slice: result is N x 32 x 32 x 3
        bg = self.tiles[bg_cls[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        bg = bg.permute(0, 3, 1, 2)  # N x 3 x 32 x 32
        alpha = torch.zeros(n, 1, IMAGE_SIZE, IMAGE_SIZE, device=self.device)
        glyphs = self.glyphs[params["glyph"]]  # N x 14 x 14
        g = len(GRID_OFFSETS)
        for p in range(g * g):  # one batched paste per grid position
            m = pos == p
            oy, ox = GRID_OFFSETS[p // g], GRID_OFFSETS[p % g]
            alpha[m, 0, oy:oy + GLYPH_SIZE, ox:ox + GLYPH_SIZE] = glyphs[m]
        x = bg * (1.0 - alpha) + params["color"][:, :, None, None] * alpha
        return (x, alpha) if return_alpha else x


class ColorfulMovingDigits(ImageDataset):
    """The toy dataset: images, ``labels`` = digit, ``factors`` digit/background/position,
    plus the :class:`DigitRenderer` pools and each image's render ``params``."""

    renderer: DigitRenderer
    params: dict[str, Tensor]

    def __init__(self, split: str = "train", n: int | None = None, seed: int = 0) -> None:
        check_choice("split", split, SPLITS)
        n = DEFAULT_SIZES[split] if n is None else check_int("n", n, 1)
        renderer = DigitRenderer(split)
        # train and test draw from different streams of the same seed
        rng = make_generator(int(seed) * 2 + SPLITS.index(split))
        params = renderer.sample(n, rng)
        images = renderer.render(params).mul_(255.0).round_().to(torch.uint8)
        factors = renderer.factors(params)
        super().__init__(images, factors["digit"], [str(d) for d in range(10)], NAME, factors)
        self.renderer, self.params, self.split, self.seed = renderer, params, split, seed

    @property
    def factor_sizes(self) -> dict[str, int]:
        return {"digit": 10, "background": len(BACKGROUND_REGIONS), "position": len(GRID_OFFSETS) ** 2,
                "hue": len(COLORS)}

    def factor_classes(self, factor: str) -> list[str]:
        """Class names of ``factor`` (what :meth:`relabel` puts in ``classes``)."""
        if factor == "hue":
            return list(COLORS)
        if factor == "digit":
            return [str(d) for d in range(10)]
        g = len(GRID_OFFSETS)
        if factor == "position":
            return [f"row{p // g}-col{p % g}" for p in range(g * g)]
        return super().factor_classes(factor)

    def to(self, device: torch.device | str) -> ColorfulMovingDigits:
        super().to(device)
        self.renderer.to(device)
        self.params = {k: v.to(device) for k, v in self.params.items()}
        return self

    def relabel(self, factor: str) -> ColorfulMovingDigits:
        out = super().relabel(factor)
        # own pools and params, as in _with_rows: moving the copy must not move this one
        out.renderer, out.params = copy.copy(self.renderer), dict(self.params)
        return out

    def _with_rows(self, idx: Tensor) -> ColorfulMovingDigits:
        out = ColorfulMovingDigits.__new__(ColorfulMovingDigits)
        ImageDataset.__init__(out, self.images[idx], self.labels[idx], self.classes, self.name,
                              {k: v[idx] for k, v in self.factors.items()})
        # a shallow copy: the pools are shared, but moving the subset does not move the parent
        out.renderer, out.split, out.seed = copy.copy(self.renderer), self.split, self.seed
        out.params = {k: v[idx] for k, v in self.params.items()}
        return out


def colorful_moving_digits(split: str = "train", n: int | None = None, seed: int = 0) -> ColorfulMovingDigits:
    """Build the toy (deterministic given ``seed``); ``n`` defaults to 5,000 train / 1,000 test."""
    return ColorfulMovingDigits(split, n, seed)
