"""colorful-moving-digits: InfoMin's toy with known factors, built offline from scikit-learn's data.

InfoMin (Tian et al. 2020, arXiv 2005.10243, sec. 3.1) builds *Colorful-Moving-MNIST*:
"each image contains a digit moving on a colorful background ... [views] share
either the digit, the position or the background", and shows that what the views share
decides which factor the representation learns ("the optimal views ... share only the
task-relevant information"); when an easier factor is shared as well, it wins.

This module rebuilds that experiment from data that ships with scikit-learn, so it runs
without any download. Each image has three **factors** (what ``shared_factors`` views can share)
and two **nuisances** (redrawn for every view, never shared):

* **digit** (10 classes): a real handwritten digit from ``sklearn.datasets.load_digits``
  (8x8, upsampled to 20x20 px and sharpened), filled with a colour and ringed by a 1 px dark
  outline. Train and test use disjoint handwritten instances (every 5th instance is a test
  instance). A shared digit is the same handwritten instance.
* **background** (12 classes): a 32x32 cut from one of 12 fixed 64x64 regions of the two
  photographs of ``sklearn.datasets.load_sample_images`` (china.jpg, flower.jpg, downsampled
  2x), at a random offset and flip. The regions are converted to grey and histogram-equalised,
  so every class has the same grey-level histogram and differs only in its texture; the
  grey levels are then mapped to colours by the image's *tone* (below). A shared background
  is the same region, offset and flip: the same texture.
* **position** (16 classes): the digit's top-left corner on a 4x4 grid (offsets 2, 5, 8, 11 px).
* nuisance **color**: the digit's fill, a random hue mixed with 30% white (bright whatever the hue).
* nuisance **tone**: the background's duotone, a random dark colour and a lighter one
  (a per-image colour shift and contrast). The background's class is not its colour.
* **hue** (6 classes, a labelled attribute of the digit's colour rather than a factor views
  choose): the fill's hue binned around red, yellow, green, cyan, blue and magenta. Colour is
  what a learned colour transform can keep or drop, so it is the label the view learner's
  toy test uses (``ds.relabel("hue")``).

The nuisances (:data:`NUISANCE_PARAMS`) are there so that an encoder sees them but no factor
is in them: a random encoder reads colour and grey-level statistics very well, and here the
colour carries no class and every background class has the same grey-level histogram.
docs/toy.md has the measured table (an untrained encoder, and each shared subset's probe per
factor).

Images are 32x32 RGB, uint8. Rendering is batched tensor indexing (one gather for the
backgrounds, a loop over the 16 positions for pasting the glyphs), so 5,000 images take
under a second. The dataset keeps the glyph and background pools and each image's
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
GLYPH_SIZE = 20
GLYPH_SHARPNESS = 4.0  # slope of the ink ramp around 0.5 (1 would keep the bicubic blur)
GRID_OFFSETS: tuple[int, ...] = (2, 5, 8, 11)  # 4 x 4 = 16 positions, 3 px apart
REGION = 64  # side of a background region, px (at half resolution); the cut moves inside it
TONE_MAX = 0.8  # the duotone's colours lie in [0, TONE_MAX]^3
TONE_CONTRAST = (0.4, 0.7)  # range of the light colour minus the dark one (per image, all channels)
PASTEL = 0.3  # white mixed into the digit's colour
# (photo, row, col) of the top-left corner of each background region, in the 2x-downsampled
# photos (213 x 320), chosen by eye to hold different textures.
BACKGROUND_REGIONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),      # sky
    (0, 20, 70),    # pagoda roof
    (0, 65, 50),    # pagoda body
    (0, 105, 195),  # lake
    (0, 70, 255),   # tree, right
    (0, 149, 220),  # bushes
    (0, 149, 0),    # dark trees, left
    (1, 85, 125),   # flower centre
    (1, 40, 105),   # petals
    (1, 0, 0),      # dark bokeh
    (1, 149, 145),  # second flower
    (1, 120, 256),  # blue-green bokeh
)
DEFAULT_SIZES = {"train": 5000, "test": 1000}
SPLITS: tuple[str, ...] = ("train", "test")

# which render parameters carry each factor (kept together when the factor is shared)
FACTOR_PARAMS: dict[str, tuple[str, ...]] = {
    "digit": ("glyph",),
    "background": ("background", "offset", "flip"),
    "position": ("position",),
}
#: render parameters that belong to no factor: every view redraws them
NUISANCE_PARAMS: tuple[str, ...] = ("color", "tone")


@lru_cache(maxsize=2)
def _glyph_pool(split: str) -> tuple[Tensor, Tensor]:
    """Handwritten digits of ``split``: glyphs float (P, 20, 20) in [0, 1], digit labels long (P,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = torch.from_numpy(d.images).float().div_(16.0)  # 1797 x 8 x 8, values 0..16
    labels = torch.from_numpy(d.target).long()
    test = torch.arange(len(labels)) % 5 == 0
    keep = test if split == "test" else ~test
    up = F.interpolate(imgs[keep, None], size=(GLYPH_SIZE, GLYPH_SIZE), mode="bicubic",
                       align_corners=False)[:, 0]
    up = ((up - 0.5) * GLYPH_SHARPNESS + 0.5).clamp_(0.0, 1.0)  # solid strokes, soft 1 px edge
    return up, labels[keep]


@lru_cache(maxsize=1)
def _background_tiles() -> Tensor:
    """Background regions: float (12, REGION, REGION) grey levels, uniform in [0, 1] per region."""
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(im.copy()).permute(2, 0, 1).float().div_(255.0)
              for im in load_sample_images().images]  # 2 x (3, 427, 640)
    half = [F.avg_pool2d(p[None], 2)[0] for p in photos]  # 2 x (3, 213, 320)
    tiles = torch.stack([half[k][:, r:r + REGION, c:c + REGION] for k, r, c in BACKGROUND_REGIONS])
    grey = torch.einsum("kchw,c->khw", tiles, torch.tensor([0.299, 0.587, 0.114]))  # K x R x R
    flat = grey.flatten(1)
    # histogram equalisation: each pixel's rank in its region, so all regions share one histogram
    ranks = flat.argsort(dim=1, stable=True).argsort(dim=1, stable=True).float() / (flat.shape[1] - 1)
    return ranks.view_as(grey)


def _hue_to_rgb(hue: Tensor) -> Tensor:
    """Fully saturated, full-value colours for hues in [0, 1): (N,) -> (N, 3)."""
    n = torch.tensor([5.0, 3.0, 1.0], device=hue.device)
    k = (n[None] + hue[:, None] * 6.0) % 6.0
    return 1.0 - torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def _hue_bin(rgb: Tensor) -> Tensor:
    """Colours (N, 3) -> the nearest of the 6 hues k/6 (N,) (index into COLORS)."""
    hue = rgb_to_hsv(rgb[:, :, None, None])[:, 0, 0, 0] / (2 * math.pi)  # kornia: radians -> [0, 1)
    return torch.round(hue * len(COLORS)).long() % len(COLORS)


def _sample_tone(n: int, rng: torch.Generator) -> Tensor:
    """Duotones (n, 2, 3): a dark colour and a light one, ``TONE_CONTRAST`` apart in every channel."""
    lo = torch.rand(n, 3, generator=rng)
    lo_c, hi_c = TONE_CONTRAST
    c = lo_c + (hi_c - lo_c) * torch.rand(n, 1, generator=rng)
    lo = lo * (TONE_MAX - c)
    return torch.stack([lo, lo + c.expand(-1, 3)], 1)


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

    Render parameters (per image): ``glyph`` (index into the glyph pool), ``background``
    (region), ``offset`` (2,) and ``flip`` (2,) of the background cut, ``position`` (grid
    cell); the nuisances ``color`` (3,) of the digit and ``tone`` (2, 3), the background's
    dark and light colours.
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
            "color": PASTEL + (1.0 - PASTEL) * _hue_to_rgb(torch.rand(n, generator=rng)),
            "background": torch.randint(0, len(self.tiles), (n,), generator=rng),
            "offset": torch.randint(0, REGION - IMAGE_SIZE + 1, (n, 2), generator=rng),
            "flip": torch.randint(0, 2, (n, 2), generator=rng),
            "tone": _sample_tone(n, rng),
            "position": torch.randint(0, len(GRID_OFFSETS) ** 2, (n,), generator=rng),
        }
        return {k: v.to(self.device) for k, v in p.items()}

    def factors(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Factor labels (digit, background, position, and the digit's hue bin) of render parameters."""
        return {"digit": self.glyph_labels[params["glyph"]], "background": params["background"],
                "position": params["position"], "hue": _hue_bin(params["color"])}

    def background(self, params: dict[str, Tensor]) -> Tensor:
        """The background texture before toning: grey levels float (N, 32, 32) in [0, 1]."""
        off, flip = params["offset"], params["flip"].bool()
        ar = torch.arange(IMAGE_SIZE, device=self.device)
        rows = off[:, 0, None] + torch.where(flip[:, 0, None], IMAGE_SIZE - 1 - ar, ar)  # N x 32
        cols = off[:, 1, None] + torch.where(flip[:, 1, None], IMAGE_SIZE - 1 - ar, ar)  # N x 32
        return self.tiles[params["background"][:, None, None], rows[:, :, None], cols[:, None, :]]

    def render(self, params: dict[str, Tensor], *, return_alpha: bool = False):
        """Render float (N, 3, 32, 32) images in [0, 1] (and the digit alpha (N, 1, 32, 32))."""
        grey = self.background(params)[:, None]  # N x 1 x 32 x 32
        lo, hi = params["tone"][:, 0, :, None, None], params["tone"][:, 1, :, None, None]
        bg = lo + (hi - lo) * grey  # N x 3 x 32 x 32
        pos = params["position"]
        alpha = torch.zeros(pos.shape[0], 1, IMAGE_SIZE, IMAGE_SIZE, device=self.device)
        glyphs = self.glyphs[params["glyph"]]  # N x 20 x 20
        g = len(GRID_OFFSETS)
        for p in range(g * g):  # one batched paste per grid position
            m = pos == p
            oy, ox = GRID_OFFSETS[p // g], GRID_OFFSETS[p % g]
            alpha[m, 0, oy:oy + GLYPH_SIZE, ox:ox + GLYPH_SIZE] = glyphs[m]
        ring = F.max_pool2d(alpha, 3, stride=1, padding=1)  # the ink dilated by 1 px: the outline
        x = bg * (1.0 - ring) * (1.0 - alpha) + params["color"][:, :, None, None] * alpha
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
