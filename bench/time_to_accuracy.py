"""Time to accuracy: infomin's CIFAR CPU recipe against a plain hand-written SimCLR loop.

Linear and kNN accuracy on the CIFAR-10 test arrays against **training wall time**, for

* **plain loop**: what a user would write with torch + kornia and no infomin (the loop of
  issue 13): a 64-128-256-512 ConvNet of conv3x3-BN-ReLU-maxpool blocks, a 512-512-128 MLP
  head, kornia ``AugmentationSequential`` (RandomResizedCrop 0.08-1, flip, ColorJitter
  0.4/0.4/0.4/0.1 p 0.8, grayscale p 0.2) applied twice per batch, NT-Xent written out,
  SGD lr 0.06 momentum 0.9 weight decay 5e-4, cosine per step, batch 256, tau 0.2;
* **infomin**: the recipe ``infomin.recipes.<name>`` (default ``CIFAR_CPU``) with the
  ``simclr`` views, built as ``infomin train`` builds it (``ContrastiveModel`` +
  ``ContrastiveTrainer``, views made in batch from the uint8 tensor).

Same protocol for both: the same images (``infomin.data.load("cifar10-npz")``, a seeded
class-balanced training subset, the full 10k test arrays), and at each checkpoint the same
probes on the same kind of features: the frozen encoder in eval mode on the clean 32 px
images, projection head dropped; ``infomin.evaluate.linear_probe`` (scikit-learn logistic
regression on standardised features) and ``knn_accuracy`` (k = 200, tau = 0.1), both fitted on
the training subset. Evaluation is outside the clock.

The two runs share one process and **take turns by the clock**: the loop with less training
time so far runs its next epoch, so a change of load on a shared machine hits both alike.
Each is evaluated at ``--checkpoints`` evenly spaced epochs (the last one included).

    python bench/time_to_accuracy.py                      # 6 plain epochs on 15k images (~20 min idle)
    python bench/time_to_accuracy.py --epochs 6 --train-subset 15000 --out bench-out
    python bench/time_to_accuracy.py --quick              # smoke test: figures meaningless

Prints a table per checkpoint and a summary with ratios; writes ``time_to_accuracy.png`` (the
plot) and ``time_to_accuracy.json`` (every figure) to ``--out``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, cpu_model, parse_args, parser, print_table  # noqa: E402

#: the plain loop of issue 13 (batch, tau and epochs come from the command line)
PLAIN = dict(lr=0.06, momentum=0.9, weight_decay=5e-4, widths=(64, 128, 256, 512))


# -- the plain loop: torch + kornia, no infomin ---------------------------------------------
def plain_convnet(widths: tuple[int, ...] = (64, 128, 256, 512)) -> nn.Sequential:
    """conv3x3-BN-ReLU-maxpool blocks, then global average pooling: (N, 3, H, W) -> (N, widths[-1])."""
    layers: list[nn.Module] = []
    c = 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def nt_xent(z1: Tensor, z2: Tensor, tau: float) -> Tensor:
    """SimCLR's NT-Xent: z1, z2 (N, D) -> scalar; 2N anchors, each with 2N - 2 negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)                     # 2N x D
    sim = z @ z.T / tau                                             # 2N x 2N
    sim.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


class PlainLoop:
    """The hand-written SimCLR loop, one epoch per :meth:`epoch` call."""

    def __init__(self, images: Tensor, *, epochs: int, batch_size: int, temperature: float,
                 seed: int, widths: tuple[int, ...] = PLAIN["widths"]) -> None:
        torch.manual_seed(seed)   # kornia draws from torch's global generator
        self.images = images
        self.encoder = plain_convnet(widths)
        d = widths[-1]
        self.head = nn.Sequential(nn.Linear(d, 512, bias=False), nn.BatchNorm1d(512),
                                  nn.ReLU(inplace=True), nn.Linear(512, 128))
        self.model = nn.Sequential(self.encoder, self.head)
        self.augment = K.AugmentationSequential(
            K.RandomResizedCrop((32, 32), scale=(0.08, 1.0)),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
        )
        self.steps = len(images) // batch_size
        self.batch_size, self.temperature = batch_size, temperature
        self.opt = torch.optim.SGD(self.model.parameters(), lr=PLAIN["lr"], momentum=PLAIN["momentum"],
                                   weight_decay=PLAIN["weight_decay"])
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, epochs * self.steps)

    def epoch(self) -> float:
        self.model.train()
        perm = torch.randperm(len(self.images))[: self.steps * self.batch_size]
        total = 0.0
        for idx in perm.view(self.steps, self.batch_size):
            x = self.images[idx].float().div_(255)
            with torch.no_grad():
                v1, v2 = self.augment(x), self.augment(x)
            z = self.model(torch.cat([v1, v2]))
            loss = nt_xent(z[: len(idx)], z[len(idx):], self.temperature)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            total += float(loss.detach())
        return total / self.steps

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)


# -- infomin -----------------------------------------------------------------------------------
class InfominLoop:
    """infomin's trainer on the ``simclr`` views with a recipe's settings, as ``infomin train`` runs it."""

    def __init__(self, train, config, *, views: str | dict = "simclr") -> None:
        from infomin import views as V
        from infomin.models import ContrastiveModel
        from infomin.seeding import make_generator, seed_everything
        from infomin.train.contrastive import ContrastiveTrainer

        self.device = config.resolved_device()
        self.train = train.to(self.device)
        self.generator = V.build(views).to(self.device).eval().requires_grad_(False)
        channels = tuple(self.generator.channels)
        seed_everything(config.seed)
        self.model = ContrastiveModel(channels, config.encoder, proj_dim=config.proj_dim,
                                      share=config.share)
        self.channels_last = config.resolved_channels_last(self.device)

        def pair_fn(idx: Tensor, rng: torch.Generator):
            return self.generator(self.train.batch(idx), generator=rng)

        self.trainer = ContrastiveTrainer(
            self.model, pair_fn, temperature=config.temperature,
            form=config.resolved_loss(channels), epochs=config.epochs,
            steps_per_epoch=len(train) // config.batch_size, optimizer=config.optimizer,
            lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum,
            warmup_epochs=config.warmup_epochs, device=self.device,
            amp=config.resolved_amp(self.device), channels_last=self.channels_last,
            compile=config.compile, progress=False)
        self.trainer.seed(make_generator(config.seed))
        self.batch_size = config.batch_size

    def epoch(self) -> float:
        return self.trainer.train_epoch(len(self.train), self.batch_size)["train/loss"]

    def encode(self, x: Tensor) -> Tensor:
        x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model.features(x, 0)


# -- the protocol --------------------------------------------------------------------------------
@dataclass
class Curve:
    name: str
    loop: PlainLoop | InfominLoop
    epochs: int
    checkpoints: set[int]
    points: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    done: int = 0


def checkpoint_epochs(epochs: int, n: int) -> set[int]:
    """``n`` evenly spaced epochs in 1..epochs, the last one included.

    >>> sorted(checkpoint_epochs(6, 3)), sorted(checkpoint_epochs(14, 3)), sorted(checkpoint_epochs(1, 3))
    ([2, 4, 6], [5, 9, 14], [1])
    """
    return {max(1, math.ceil(epochs * (i + 1) / n)) for i in range(n)}


@torch.no_grad()
def evaluate(encode: Callable[[Tensor], Tensor], modules: list[nn.Module], train, test) -> dict:
    """Frozen features (eval mode, clean images, head dropped) -> linear probe and kNN accuracy."""
    from infomin.evaluate import extract_features, knn_accuracy, linear_probe

    for m in modules:
        m.eval()
    tr = extract_features(encode, train.images)
    te = extract_features(encode, test.images)
    return {"linear": linear_probe(tr, train.labels, te, test.labels, backend="sklearn", seed=0),
            "knn": knn_accuracy(tr, train.labels, te, test.labels, k=200, temperature=0.1)}


def race(curves: list[Curve], train, test) -> Iterator[tuple[Curve, dict]]:
    """Train the curves in turns by the clock (the one with the least training time so far runs
    its next epoch); evaluate each at its checkpoints, outside the clock."""
    while any(c.done < c.epochs for c in curves):
        c = min((c for c in curves if c.done < c.epochs), key=lambda c: c.seconds)
        t0 = time.perf_counter()
        loss = c.loop.epoch()
        c.seconds += time.perf_counter() - t0
        c.done += 1
        if not math.isfinite(loss):
            raise SystemExit(f"error: {c.name}: loss is {loss} at epoch {c.done}")
        if c.done in c.checkpoints:
            modules = [c.loop.encoder] if isinstance(c.loop, PlainLoop) else [c.loop.model]
            acc = evaluate(c.loop.encode, modules, train, test)
            point = {"epoch": c.done, "train_s": c.seconds, "loss": loss, **acc}
            c.points.append(point)
            yield c, point


def first_reaching(points: list[dict], target: float, key: str = "linear") -> dict | None:
    """The earliest checkpoint whose ``key`` accuracy is at least ``target``."""
    return next((p for p in points if p[key] >= target), None)


def at_time(points: list[dict], seconds: float) -> dict | None:
    """The last checkpoint reached within ``seconds`` of training."""
    within = [p for p in points if p["train_s"] <= seconds]
    return within[-1] if within else None


def plot(curves: list[Curve], path: Path, title: str, n_test: int) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # heavy optional import, only to draw the figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, key, label in zip(axes, ("linear", "knn"), ("linear probe", "kNN (k = 200)"), strict=True):
        for c in curves:
            ax.plot([p["train_s"] / 60 for p in c.points], [p[key] for p in c.points], marker="o",
                    label=c.name)
        ax.set_xlabel("training wall time (min)")
        ax.set_ylabel(f"{label} accuracy ({n_test} test images)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6, help="epochs of the plain loop (default 6)")
    p.add_argument("--infomin-epochs", type=int, default=None,
                   help="epochs of infomin's run (default: the recipe's own, or 1 with --quick)")
    p.add_argument("--train-subset", type=int, default=15000,
                   help="class-balanced training images (default 15000; the arrays hold 30000)")
    p.add_argument("--test-subset", type=int, default=None, help="test images (default: all 10000)")
    p.add_argument("--recipe", default="CIFAR_CPU", help="a name in infomin.recipes (default CIFAR_CPU)")
    p.add_argument("--batch-size", type=int, default=256, help="plain loop's batch (default 256)")
    p.add_argument("--temperature", type=float, default=0.2, help="plain loop's tau (default 0.2)")
    p.add_argument("--checkpoints", type=int, default=3, help="evaluations per run (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench-out", help="folder for the PNG and JSON (default bench-out)")
    args = parse_args(p, argv)

    from infomin import data as D
    from infomin import recipes
    from infomin.config import TrainConfig

    if args.quick:
        args.epochs, args.train_subset, args.checkpoints = 1, 512, 1
        args.test_subset = args.test_subset or 500
        args.batch_size = min(args.batch_size, 128)
    overrides = recipes.get(args.recipe)
    config = TrainConfig.from_dict({**overrides, "dataset": "cifar10-npz",
                                    "train_subset": args.train_subset, "seed": args.seed,
                                    "progress": False})
    if args.quick:
        config = config.replace(batch_size=min(config.batch_size, 128), epochs=1)
    if args.infomin_epochs is not None:
        config = config.replace(epochs=args.infomin_epochs)
    try:
        train = D.load("cifar10-npz", split="train", subset=args.train_subset, seed=args.seed)
        test = D.load("cifar10-npz", split="test", subset=args.test_subset, seed=args.seed)
    except Exception as e:  # noqa: BLE001  (a missing data folder: say how to fix it, let `make bench` go on)
        print(f"skipped: cannot load the CIFAR-10 arrays ({e}); set INFOMIN_DATA_ROOT to the folder holding "
              "cifar10_train.npz and cifar10_test.npz")
        raise SystemExit(0) from e

    print(banner("time to accuracy: infomin's recipe vs a plain hand-written SimCLR loop", {
        "data": f"cifar10-npz, {len(train)} train (class-balanced, seed {args.seed}), {len(test)} test",
        "plain loop": f"{args.epochs} epochs, batch {args.batch_size}, tau {args.temperature}, "
                      f"ConvNet {'-'.join(map(str, PLAIN['widths']))} max-pool, SGD lr {PLAIN['lr']}",
        "infomin": f"recipe {args.recipe}: " + ", ".join(
            f"{k}={getattr(config, k)}" for k in ("encoder", "epochs", "batch_size", "optimizer", "lr",
                                                  "weight_decay", "warmup_epochs", "temperature")),
        "device": config.resolved_device(),
    }), flush=True)

    plain_name = f"plain loop ({args.epochs} ep)"
    ours_name = f"infomin {args.recipe} ({config.epochs} ep)"
    plain = PlainLoop(train.images, epochs=args.epochs, batch_size=args.batch_size,
                      temperature=args.temperature, seed=args.seed)
    import infomin.views as V

    views = recipes.apply_views(args.recipe, V.load_spec("simclr"))
    ours = InfominLoop(train, config, views=views)
    curves = [Curve(plain_name, plain, args.epochs, checkpoint_epochs(args.epochs, args.checkpoints)),
              Curve(ours_name, ours, config.epochs, checkpoint_epochs(config.epochs, args.checkpoints))]
    for c, pt in race(curves, train, test):
        print(f"- {c.name}: epoch {pt['epoch']}, {pt['train_s']:.0f} s, linear {pt['linear']:.3f}, "
              f"kNN {pt['knn']:.3f}", flush=True)

    rows = [{"run": c.name, "epoch": p_["epoch"], "train s": p_["train_s"], "linear": p_["linear"],
             "kNN": p_["knn"]} for c in curves for p_ in c.points]
    print_table("accuracy at each checkpoint (training wall time; evaluation not counted)", rows)

    ref = curves[0].points[-1]
    mine = curves[1].points
    summary = [{"run": plain_name, "train s": ref["train_s"], "linear": ref["linear"], "kNN": ref["knn"]},
               {"run": ours_name, "train s": mine[-1]["train_s"], "linear": mine[-1]["linear"],
                "kNN": mine[-1]["knn"]}]
    same = at_time(mine, ref["train_s"])
    if same is not None and same is not mine[-1]:
        summary.append({"run": f"infomin at epoch {same['epoch']} (within the plain loop's time)",
                        "train s": same["train_s"], "linear": same["linear"], "kNN": same["knn"]})
    reach = first_reaching(mine, ref["linear"])
    if reach is not None:
        summary.append({"run": f"infomin, first checkpoint at the plain loop's final linear "
                               f"({ref['linear']:.3f}): epoch {reach['epoch']}",
                        "train s": reach["train_s"], "linear": reach["linear"], "kNN": reach["knn"]})
    else:
        summary.append({"run": "infomin never reached the plain loop's final linear accuracy",
                        "train s": float("nan"), "linear": float("nan"), "kNN": float("nan")})
    print_table("summary (ratio: how many times less training time than the plain loop)", summary,
                ratio_of="train s", lower_is_better=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    title = (f"cifar10-npz, {len(train)} train / {len(test)} test; {cpu_model()}, "
             f"{torch.get_num_threads()} threads; load average at the end {load}")
    plot(curves, out / "time_to_accuracy.png", title, len(test))
    (out / "time_to_accuracy.json").write_text(json.dumps({
        "config": config.to_dict(), "recipe": args.recipe, "plain": {**PLAIN, "epochs": args.epochs,
                                                                      "batch_size": args.batch_size,
                                                                      "temperature": args.temperature},
        "curves": {c.name: c.points for c in curves}}, indent=1))
    print(f"wrote {out / 'time_to_accuracy.png'} and {out / 'time_to_accuracy.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
