"""Training images/s: infomin's training step against lightly's usual SimCLR pipeline.

Same encoder (``infomin.models.build_encoder``), same projection MLP shape
(512 hidden, 128 out, BN), same batch, same optimiser (SGD, momentum 0.9, weight
decay 5e-4), same temperature (0.5), same 32 px CIFAR-10 images, one process:

* **lightly**: the pipeline of lightly's SimCLR tutorial: a ``torch.utils.data.Dataset``
  of PIL images with ``lightly.transforms.SimCLRTransform`` (the CIFAR settings
  lightly recommends: ``input_size=32, cj_strength=0.5, gaussian_blur=0.0``)
  applied per sample in a ``DataLoader`` (``num_workers`` 0 and 2 timed, the
  faster one is the baseline), ``SimCLRProjectionHead`` and ``NTXentLoss``;
* **infomin**: :class:`infomin.train.contrastive.ContrastiveTrainer.step`, the
  step ``infomin train`` runs: SimCLR views made in batch from the uint8 image
  tensor by index (``infomin.views.build("simclr")``), ``ContrastiveModel``,
  ``infomin.objectives.info_nce``; with and without ``channels_last`` (the
  trainer's CPU and CUDA default is on).

A figure is images/s = batch * steps per call / median seconds per call, after a
warm-up call (which also absorbs the DataLoader workers' start). Each row checks
that its loss is finite.

Both sides run in fp32 on ``--device`` (``auto``: CUDA if available, else the
CPU); on a GPU lightly's batches are pinned and copied non-blocking, and no step
calls ``.item()`` (losses are checked after timing), so neither side syncs per step.

Run: ``python bench/lightly_compare.py`` (full: ConvNet and ResNet-18, several
minutes on 2 cores) or ``--quick`` (a width-8 ConvNet, smoke test, figures
meaningless). ``--encoders convnet``, ``--workers 0,2,4``, ``--threads 1``
(advisable on a machine shared with other jobs), ``--synthetic`` (random pixels:
no data files needed), ``--no-lightly`` (infomin only; also what runs, with a
clear note, when lightly is not installed: ``pip install 'infomin[bench]'``).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, median_rate, parse_args, parser, print_table  # noqa: E402

TEMPERATURE = 0.5
OPT = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)
#: the fallback when the ``simclr`` preset YAML is absent: RandomResizedCrop + SimCLR CIFAR augment
SIMCLR_SPEC = {"kind": "pair", "spatial": {"kind": "random_resized_crop", "size": 32},
               "augment": {"kind": "augment", "preset": "simclr"}}

#: per encoder: batch, steps per timed call, timed calls (full run)
FULL = {"convnet": dict(batch=256, steps=3, repeats=3, kw={}),
        "resnet18": dict(batch=64, steps=1, repeats=3, kw={})}
QUICK = {"convnet": dict(batch=32, steps=1, repeats=2, kw={"width": 8})}


# -- data -----------------------------------------------------------------------------------
def load_images(n: int | None, *, synthetic: bool) -> tuple[Tensor, str]:
    """CIFAR-10 train images, uint8 (N, 3, 32, 32), and where they came from.

    ``infomin.data.load("cifar10-npz")`` (arrays in ``$INFOMIN_DATA_ROOT``); with
    ``synthetic``, random pixels, which time the same as real ones.
    """
    if not synthetic:
        from infomin import data as D
        from infomin.errors import SpecError

        try:
            ds = D.load("cifar10-npz", split="train", subset=n, seed=0)
        except SpecError as e:
            raise SystemExit(f"error: {e}; or pass --synthetic") from None
        return ds.images, "infomin.data.load('cifar10-npz')"
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n or 1024, 3, 32, 32), dtype=torch.uint8, generator=g), "synthetic"


# -- lightly ------------------------------------------------------------------------------
def import_lightly():
    """``(SimCLRTransform, NTXentLoss, SimCLRProjectionHead)`` or the import error's text."""
    try:
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead
        from lightly.transforms import SimCLRTransform
    except Exception as e:  # noqa: BLE001  (any import failure: report it, time infomin alone)
        return f"{type(e).__name__}: {e}"
    return SimCLRTransform, NTXentLoss, SimCLRProjectionHead


def lightly_dataset(lightly, images: Tensor) -> torch.utils.data.Dataset:
    """CIFAR-10 as lightly's tutorial feeds it: PIL images through ``SimCLRTransform`` with
    lightly's recommended CIFAR settings (32 px, colour strength 0.5, no blur)."""
    transform = lightly[0](input_size=32, cj_strength=0.5, gaussian_blur=0.0)
    return PILImages(np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy()), transform)


class PILImages(torch.utils.data.Dataset):
    """CIFAR-10 as torchvision serves it: a PIL image per item, the transform per sample."""

    def __init__(self, images_nhwc: np.ndarray, transform) -> None:
        self.images = images_nhwc
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), 0


def lightly_step_fn(lightly, images: Tensor, encoder: str, enc_kw: dict, batch: int, steps: int,
                    workers: int, device: str = "cpu"):
    """A callable running ``steps`` lightly training steps (and the list of losses it appends)."""
    from infomin.models import build_encoder
    from infomin.seeding import seed_everything

    _, NTXentLoss, SimCLRProjectionHead = lightly
    ds = lightly_dataset(lightly, images)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True,
                                         num_workers=workers, persistent_workers=workers > 0,
                                         pin_memory=device.startswith("cuda"))
    seed_everything(0)
    backbone = build_encoder(encoder, 3, **enc_kw)
    model = nn.Sequential(backbone, SimCLRProjectionHead(backbone.out_dim, 512, 128)).to(device)
    criterion = NTXentLoss(temperature=TEMPERATURE)
    opt = torch.optim.SGD(model.parameters(), **OPT)
    model.train()
    state = {"it": iter(loader)}
    losses: list[Tensor] = []

    def next_batch():
        try:
            return next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            return next(state["it"])

    def run() -> None:
        for _ in range(steps):
            (x0, x1), _ = next_batch()
            x0, x1 = x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
            z0, z1 = model(x0), model(x1)       # lightly's tutorial: one forward per view
            loss = criterion(z0, z1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())  # no .item(): it would sync a GPU every step

    return run, losses, state


# -- infomin ------------------------------------------------------------------------------
def simclr_views():
    """infomin's SimCLR views: the ``simclr`` preset, else the equivalent spec."""
    import infomin.views as V

    try:
        return V.build("simclr"), "preset 'simclr'"
    except Exception:  # noqa: BLE001  (preset file not there: same recipe as a spec)
        return V.build(SIMCLR_SPEC), f"spec {SIMCLR_SPEC}"


def infomin_step_fn(images: Tensor, encoder: str, enc_kw: dict, batch: int, steps: int,
                    channels_last: bool, device: str = "cpu"):
    """A callable running ``steps`` of :meth:`ContrastiveTrainer.step` (and its losses)."""
    from infomin.models import ContrastiveModel
    from infomin.seeding import make_generator, seed_everything
    from infomin.train.contrastive import ContrastiveTrainer

    generator, _ = simclr_views()
    generator = generator.to(device).eval().requires_grad_(False)
    images = images.to(device)

    def pair_fn(idx: Tensor, rng: torch.Generator):   # as infomin.protocols builds it
        return generator(images[idx].float().div_(255), generator=rng)

    seed_everything(0)
    model = ContrastiveModel(generator.channels, encoder, proj_dim=128, hidden_dim=512,
                             encoder_kwargs=enc_kw)
    trainer = ContrastiveTrainer(model, pair_fn, temperature=TEMPERATURE, epochs=1,
                                 steps_per_epoch=10**6, optimizer="sgd", device=device,
                                 channels_last=channels_last, progress=False, **OPT)
    trainer.seed(make_generator(0))
    trainer.model.train()
    state = {"batches": []}
    losses: list[Tensor] = []

    def run() -> None:
        for _ in range(steps):
            if not state["batches"]:
                state["batches"] = trainer.batches(images.shape[0], batch)
            losses.append(trainer.step(state["batches"].pop()))

    return run, losses


# -- views alone ------------------------------------------------------------------------------
def bench_views(images: Tensor, lightly, workers: list[int], batch: int, repeats: int,
                warmup: int, device: str) -> list[dict]:
    """Images/s of making the two SimCLR views of a batch, without the model: where the
    training step's time goes (bench/views.py compares view libraries in depth)."""
    rows: list[dict] = []
    if not isinstance(lightly, str):
        ds = lightly_dataset(lightly, images)
        for w in workers:
            loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True,
                                                 drop_last=True, num_workers=w,
                                                 persistent_workers=w > 0)
            state = {"it": iter(loader)}

            def take(loader=loader, state=state):
                try:
                    return next(state["it"])
                except StopIteration:  # a new epoch (small --synthetic sets run out)
                    state["it"] = iter(loader)
                    return next(state["it"])

            # Workers prefetch (2 batches each) while the main process is idle between
            # timed calls, so timing a few next() calls measures a full queue, not the
            # pipeline (it read 134k img/s once). Each repeat drains the queue untimed,
            # then times `steady` batches: the workers' steady-state rate.
            depth = 2 * max(w, 1)
            steady = max(4, 2 * depth)
            times = []
            for r in range(warmup + repeats):
                for _ in range(depth):
                    take()
                t0 = time.perf_counter()
                for _ in range(steady):
                    (x0, x1), _ = take()
                    x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
                if r >= warmup:
                    times.append(time.perf_counter() - t0)
            rate = steady * batch / statistics.median(times)
            rows.append({"views": f"lightly SimCLRTransform, DataLoader workers={w}",
                         "img/s": rate})
            del state["it"]
    generator, _ = simclr_views()
    generator = generator.to(device).eval().requires_grad_(False)
    x = images.to(device)
    rng = torch.Generator().manual_seed(0)
    order = {"perm": torch.randperm(x.shape[0], generator=rng)}

    def make() -> None:
        if order["perm"].numel() < batch:
            order["perm"] = torch.randperm(x.shape[0], generator=rng)
        idx, order["perm"] = order["perm"][:batch], order["perm"][batch:]
        with torch.no_grad():
            generator(x[idx.to(device)].float().div_(255), generator=rng)

    rows.append({"views": "infomin views.build('simclr'), batched by index",
                 "img/s": median_rate(make, batch, repeats=repeats, warmup=warmup)})
    return rows


# -- main ---------------------------------------------------------------------------------
def bench_encoder(name: str, cfg: dict, images: Tensor, lightly, workers: list[int],
                  warmup: int, device: str) -> list[dict]:
    batch, steps, repeats, kw = cfg["batch"], cfg["steps"], cfg["repeats"], cfg["kw"]
    n_items = batch * steps
    rows: list[dict] = []

    def record(label: str, run, losses) -> None:
        rate = median_rate(run, n_items, repeats=repeats, warmup=warmup)
        values = [float(v) for v in losses]
        if not values or not all(math.isfinite(v) for v in values):
            raise SystemExit(f"error: {label}: non-finite loss {values[-3:]}")
        rows.append({"pipeline": label, "img/s": rate, "loss (last)": values[-1]})
        print(f"  {name}: {label}: {rate:.1f} img/s", file=sys.stderr, flush=True)

    if not isinstance(lightly, str):
        for w in workers:
            run, losses, state = lightly_step_fn(lightly, images, name, kw, batch, steps, w,
                                                 device)
            record(f"lightly, DataLoader workers={w}", run, losses)
            del state["it"]  # shut the workers down before the next row
    for cl in (False, True):
        run, losses = infomin_step_fn(images, name, kw, batch, steps, cl, device)
        record(f"infomin, channels_last={'on' if cl else 'off'}", run, losses)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--encoders", default=None,
                   help="comma-separated subset of: " + ", ".join(FULL))
    p.add_argument("--workers", default="0,2", help="DataLoader num_workers values for lightly")
    p.add_argument("--no-lightly", action="store_true", help="time infomin only")
    p.add_argument("--synthetic", action="store_true", help="random pixels instead of CIFAR-10")
    p.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda")
    args = parse_args(p, argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device

    plan = dict(QUICK if args.quick else FULL)
    if args.encoders:
        names = [e.strip() for e in args.encoders.split(",") if e.strip()]
        bad = [e for e in names if e not in FULL]
        if bad:
            p.error(f"unknown encoder {bad[0]!r}; choose from {', '.join(FULL)}")
        plan = {e: (QUICK.get(e) if args.quick and e in QUICK else FULL[e]) for e in names}
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    warmup = 1

    lightly = "disabled by --no-lightly" if args.no_lightly else import_lightly()
    n_needed = max(c["batch"] * c["steps"] * (c["repeats"] + warmup) for c in plan.values())
    images, source = load_images(512 if args.quick else None, synthetic=args.synthetic)
    if images.shape[0] < n_needed and args.quick:
        images = images.repeat(math.ceil(n_needed / images.shape[0]), 1, 1, 1)
    _, views_src = simclr_views()
    print(banner("infomin vs lightly: SimCLR training images/s at 32 px", {
        "device": f"{device} (fp32 on both sides, no autocast)",
        "data": f"{source}, {tuple(images.shape)} uint8",
        "infomin views": views_src,
        "lightly views": "SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0)",
        "optimiser": f"SGD {OPT}, temperature {TEMPERATURE}, head 512-BN-ReLU-128",
        "protocol": f"median of timed calls after {warmup} warm-up call(s)",
        "mode": "quick (smoke test: figures meaningless)" if args.quick else "full",
    }))
    if isinstance(lightly, str):
        print(f"**lightly unavailable** ({lightly}): infomin figures only; "
              "install it with `pip install 'infomin[bench]'`.\n", flush=True)

    for name, cfg in plan.items():
        rows = bench_encoder(name, cfg, images, lightly, workers, warmup, device)
        lightly_rows = [i for i, r in enumerate(rows) if r["pipeline"].startswith("lightly")]
        base = max(lightly_rows, key=lambda i: rows[i]["img/s"]) if lightly_rows else 0
        steps_note = f"batch {cfg['batch']}, {cfg['steps']} step(s) per call x {cfg['repeats']} calls"
        print_table(f"{name} ({steps_note})", rows, ratio_of="img/s", baseline=base)

    vb = min(c["batch"] for c in plan.values())
    vrep = 2 if args.quick else 5
    rows = bench_views(images, lightly, workers, vb, vrep, warmup, device)
    base = max(range(len(rows) - 1), key=lambda i: rows[i]["img/s"]) if len(rows) > 1 else 0
    print_table(f"SimCLR views alone, no model (batch {vb}, {vrep} calls)", rows,
                ratio_of="img/s", baseline=base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
