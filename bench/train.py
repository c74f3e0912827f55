"""Training throughput: infomin's trainer against a minimal hand-written PyTorch loop.

Both loops train the same model (identical initial weights), on the same views
(made on the device from the uint8 dataset tensor by index), with the same SGD
optimiser and InfoNCE loss, in one process. The framework side is exactly what
:func:`infomin.protocols.run_candidate` runs: :meth:`ContrastiveTrainer.train_epoch`
(data order, view RNG, warm-up/cosine schedule, NaN check, loss bookkeeping;
progress bar off). Figures are source images per second (each gives two views).

Protocol: after one warm-up epoch per loop, ``repeats`` rounds each time one epoch
of ``steps`` steps of both loops, alternating (a shared machine's load drifts
slowly, so alternating keeps the comparison fair); the median per loop is reported.
Target: the framework at >= 0.95x the hand-written loop.

    python bench/train.py                 # convnet (32 px), then resnet18 (few steps)
    python bench/train.py --quick         # smoke test
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, parse_args, parser, print_table, sync  # noqa: E402


def _setup(encoder: str, views: str, n_images: int, device: str):
    from infomin import data as D
    from infomin import views as V
    from infomin.models import ContrastiveModel
    from infomin.seeding import seed_everything

    ds = D.load("colorful-moving-digits", split="train", subset=n_images, seed=0).to(device)
    gen = V.build(views).to(device).eval().requires_grad_(False)
    seed_everything(0)
    model = ContrastiveModel(tuple(gen.channels), encoder, proj_dim=128)
    return ds, gen, model


def hand_loop(model, gen, ds, *, batch: int, steps: int, temperature: float, form: str,
              channels_last: bool, amp: bool, device: str):
    """The minimal loop: index, views, forward, InfoNCE, backward, SGD step."""
    from infomin.objectives import info_nce

    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rng = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16

    def epoch():
        model.train()
        perm = torch.randperm(len(ds), generator=rng)[: steps * batch].view(steps, batch)
        for idx in perm:
            v1, v2, _ = gen(ds.batch(idx.to(device)), generator=rng)
            if channels_last:
                v1 = v1.contiguous(memory_format=torch.channels_last)
                v2 = v2.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=dtype, enabled=amp):
                z1, z2 = model(v1, v2)
            loss = info_nce(z1.float(), z2.float(), temperature, form=form)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def framework_loop(model, gen, ds, *, batch: int, steps: int, temperature: float, form: str,
                   channels_last: bool, amp: bool, device: str):
    """infomin's trainer, as run_candidate builds it (progress bar off)."""
    from infomin.train.contrastive import ContrastiveTrainer

    def pair_fn(idx, rng):
        return gen(ds.batch(idx), generator=rng)

    tr = ContrastiveTrainer(model, pair_fn, temperature=temperature, form=form, epochs=1000,
                            steps_per_epoch=steps, optimizer="sgd", lr=0.05, weight_decay=5e-4,
                            momentum=0.9, warmup_epochs=0.0, device=device, amp=amp,
                            channels_last=channels_last, progress=False)
    tr.seed(torch.Generator().manual_seed(0))
    n = steps * batch  # exactly `steps` full batches per epoch, like the hand loop

    def epoch():
        tr.train_epoch(n, batch)

    return epoch


def compare(encoder: str, views: str, *, batch: int, steps: int, repeats: int,
            channels_last: bool, device: str) -> dict:
    ds, gen, model = _setup(encoder, views, max(steps * batch, batch), device)
    form = "cross" if gen.channels[0] != gen.channels[1] else "ntxent"
    amp = device.startswith("cuda")
    kw = dict(batch=batch, steps=steps, temperature=0.2, form=form, channels_last=channels_last,
              amp=amp, device=device)
    hand = hand_loop(copy.deepcopy(model), gen, ds, **kw)
    fw = framework_loop(copy.deepcopy(model), gen, ds, **kw)
    hand()
    fw()  # warm-up (allocator, kernels, lazy imports)
    t_hand, t_fw = [], []
    for _ in range(repeats):
        for fn, acc in ((hand, t_hand), (fw, t_fw)):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            acc.append(time.perf_counter() - t0)
    imgs = steps * batch
    h, f = imgs / statistics.median(t_hand), imgs / statistics.median(t_fw)
    return {"setting": f"{encoder}, {views}, batch {batch}, channels_last {'on' if channels_last else 'off'}",
            "hand-written img/s": h, "infomin img/s": f, "infomin / hand": f"{f / h:.3f}x"}


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--views", default="lab_l_ab", help="view preset (default lab_l_ab)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-resnet", action="store_true", help="skip the ResNet-18 rows")
    args = parse_args(p, argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    print(banner("training throughput: infomin trainer vs a hand-written loop",
                 {"device": device, "views": args.views}))
    rows = []
    conv = dict(batch=32, steps=2, repeats=2) if args.quick else dict(batch=128, steps=8, repeats=5)
    for cl in (False, True):
        rows.append(compare("convnet", args.views, channels_last=cl, device=device, **conv))
    if not args.no_resnet:
        res = dict(batch=8, steps=1, repeats=1) if args.quick else (
            dict(batch=128, steps=10, repeats=5) if device.startswith("cuda")
            else dict(batch=32, steps=2, repeats=3))
        for cl in (False, True):
            rows.append(compare("resnet18", args.views, channels_last=cl, device=device, **res))
    print_table("images per second (median of repeats; ratio >= 0.95x is the target)", rows)


if __name__ == "__main__":
    main()
