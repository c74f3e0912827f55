"""Throughput of view generation: infomin's batched views vs the per-sample torchvision pipeline
vs kornia's AugmentationSequential (images per second, two views per image).

The SimCLR recipe at 32 px (batch 512) and 96 px (batch 256): RandomResizedCrop(scale 0.08-1),
horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8, RandomGrayscale(p = 0.2),
applied twice per image.

* infomin: ``infomin.views.build("simclr")`` on the whole batch (parameters drawn and returned);
* torchvision: ``transforms.v2`` on each image tensor in a Python loop, twice per image (the
  usual Dataset.__getitem__ pipeline, minus the PIL decode, which only makes it slower);
* kornia: ``AugmentationSequential`` of the same ops on the batch, called twice.

Plus a bare crop pair (random_resized_crop) and an L | ab split (lab_l_ab, cmc_lab).
Each figure is the median of ``REPEATS`` timed calls after a warm-up call; the pipelines are
timed in turn, one call each per round, so a change in a shared machine's load hits all alike.
The per-sample pipeline is timed on the first images of the batch (its cost is linear in
the batch). Run: ``python bench/views.py [--threads 1] [--quick] [--device cuda]`` (under a
minute on 2 idle cores; ``--device cuda`` times every pipeline on a batch already on the GPU).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import kornia.augmentation as K
import torch
from torchvision.transforms import v2

import infomin.views as V

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, parse_args, parser, print_table, sync  # noqa: E402

REPEATS = 5
#: (side, batch, images timed for the per-sample pipeline)
SIZES = ((32, 512, 128), (96, 256, 48))
QUICK_SIZES = ((32, 64, 16),)


def torchvision_pipeline(size: int) -> v2.Compose:
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ])


def kornia_pipeline(size: int) -> K.AugmentationSequential:
    return K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=(0.08, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
    )


def round_robin_rates(pipelines: dict[str, tuple], repeats: int) -> dict[str, float]:
    """Median images/s per pipeline, timing them in turn (one call each per round, after one
    warm-up round) so that a change in the machine's load hits every pipeline alike."""
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for rnd in range(repeats + 1):
        for name, (fn, _) in pipelines.items():
            t0 = time.perf_counter()
            fn()
            sync()
            if rnd:
                times[name].append(time.perf_counter() - t0)
    return {name: n / statistics.median(times[name]) for name, (_, n) in pipelines.items()}


def bench_size(size: int, batch: int, per_sample_n: int, repeats: int,
               device: str = "cpu") -> tuple[list[dict], list[dict]]:
    """Rows (name, img/s) for the SimCLR recipe and for the bare crop / split kinds, every
    pipeline working on a batch already on ``device``."""
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    ours = V.build(V.merge(V.load_spec("simclr"), {"spatial.size": size})).to(device)
    crop_only = V.build({"kind": "random_resized_crop", "size": size}).to(device)
    lab = V.build("lab_l_ab").to(device)
    cmc = V.build(V.merge(V.load_spec("cmc_lab"), {"spatial.size": size})).to(device)
    tv = torchvision_pipeline(size)
    ko = kornia_pipeline(size).to(device)
    rng = torch.Generator().manual_seed(0)

    def per_sample():
        return [(tv(img), tv(img)) for img in x[:per_sample_n]]

    pipelines = {
        "torchvision v2, per sample": (per_sample, per_sample_n),
        "kornia AugmentationSequential": (lambda: (ko(x), ko(x)), batch),
        "infomin views.build('simclr')": (lambda: ours(x, generator=rng), batch),
        "random_resized_crop (crop pair)": (lambda: crop_only(x, generator=rng), batch),
        "lab_l_ab (L/ab split)": (lambda: lab(x, generator=rng), batch),
        "cmc_lab (shared crop + L/ab)": (lambda: cmc(x, generator=rng), batch),
    }
    with torch.no_grad():
        rates = round_robin_rates(pipelines, repeats)
    names = list(pipelines)
    recipe = [{"pipeline": k, "img/s": rates[k]} for k in names[:3]]
    parts = [{"kind": k, "img/s": rates[k]} for k in names[3:]]
    return recipe, parts


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (CUDA if present)")
    args = parse_args(p, argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    t0 = time.perf_counter()
    print(banner("views: images/s, two views per image", {"device": device}))
    repeats = 1 if args.quick else REPEATS
    for size, batch, m in (QUICK_SIZES if args.quick else SIZES):
        recipe, parts = bench_size(size, batch, m, repeats, device)
        print_table(f"SimCLR recipe, {size} px, batch {batch} (per-sample pipeline timed on {m} images)",
                    recipe, ratio_of="img/s")
        base = recipe[0]["img/s"]
        print_table(f"infomin kinds, {size} px, batch {batch} (ratio vs the per-sample pipeline)",
                    [{**r, "vs per-sample": f"{r['img/s'] / base:.1f}x"} for r in parts])
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
