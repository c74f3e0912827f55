"""The contrastive trainer: a plain PyTorch loop over views made on the device, DDP-ready.

Algorithm (SimCLR, arXiv 2002.05709, Algorithm 1; CMC, arXiv 1906.05849):
for each minibatch of N images, draw two views ``v1, v2``, encode and project
them to ``z1, z2``, and minimise the InfoNCE loss over the (global) batch; the
bound ``I_NCE = log K - L_NCE`` (arXiv 2005.10243, eq. 1) is reported with it.

What makes the loop fast and exact:

* views are made **on the device, in batch**, from the dataset's uint8 tensor by
  index (no DataLoader in the hot path): ``pair_fn(idx, rng) -> (v1, v2, params)``;
* one CPU ``torch.Generator`` orders the data and (in one process) draws every
  view parameter; its state goes into the checkpoint, so resuming replays the
  run exactly (a test compares 2 epochs against 1 + resume 1);
* SGD (momentum), AdamW or LARS, linear warm-up then cosine decay, stepped per
  batch; AMP on CUDA (bf16 where supported, else fp16 with a ``GradScaler``);
  ``channels_last``; optional ``torch.compile``;
* under DDP (:mod:`infomin.train.ddp`) each rank takes its slice of the global
  batch and the embeddings are gathered with gradient, so K is the global K.

>>> import torch
>>> from infomin.models import ContrastiveModel
>>> x = torch.rand(64, 3, 8, 8)
>>> def pair_fn(idx, rng):   # two noisy copies: a toy view generator
...     v = x[idx]
...     return v + 0.1 * torch.randn(v.shape, generator=rng), v, {}
>>> model = ContrastiveModel((3, 3), "convnet", proj_dim=16, encoder_kwargs={"width": 8})
>>> tr = ContrastiveTrainer(model, pair_fn, temperature=0.5, epochs=1, steps_per_epoch=4,
...                         lr=0.05, device="cpu", progress=False)
>>> hist = tr.fit(64, batch_size=16, rng=torch.Generator().manual_seed(0))
>>> sorted(hist)
['train/loss', 'train/lr', 'train/mi_nce']
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from infomin.errors import InfominError, SpecError, check_choice, check_int, check_range
from infomin.objectives import info_nce, mi_lower_bound, num_candidates
from infomin.progress import ProgressBar
from infomin.seeding import derive_seed, make_generator
from infomin.train import ddp
from infomin.train.loop import autocast, autocast_dtype, check_finite, epoch_batches

PairFn = Callable[[Tensor, torch.Generator], tuple]
CHECKPOINT = "last.pt"
OPTIMIZERS = ("sgd", "adamw", "adam", "lars")
SCHEDULES = ("cosine", "constant")


# -- optimiser and schedule -----------------------------------------------------------------
class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017, arXiv 1708.03888).

    "The local LR for each layer is eta * ||w|| / ||grad + beta w||". As in SimCLR,
    biases and normalisation weights (1-D tensors) skip both the weight decay and the
    adaptation. Written here because torch has no LARS (solo-learn and lightly also
    ship their own).
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0, eta: float = 0.001) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta))

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    d = d.add(p, alpha=group["weight_decay"])
                    w_norm, d_norm = torch.norm(p), torch.norm(d)
                    trust = torch.where((w_norm > 0) & (d_norm > 0),
                                        group["eta"] * w_norm / d_norm, torch.ones_like(w_norm))
                    d = d.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(d).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def build_optimizer(params: Iterable, name: str = "sgd", *, lr: float, weight_decay: float = 0.0,
                    momentum: float = 0.9,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """``sgd`` (momentum), ``adamw``, ``adam`` (``betas``; coupled L2 ``weight_decay``) or ``lars``."""
    check_choice("optimizer", name, OPTIMIZERS)
    check_range("lr", lr, 0, low_open=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas)
    return LARS(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int,
                  total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warm-up from ``lr / warmup_steps`` to ``lr``, then cosine to 0.

    The warm-up is capped at half of ``total_steps`` (a 1-epoch run with 1 warm-up
    epoch would otherwise never decay).

    "We use linear warmup for the first 10 epochs, and decay the learning rate with the
    cosine decay schedule without restarts" (SimCLR, arXiv 2002.05709, Sec. B.6).

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = warmup_cosine(opt, 2, 6)
    >>> lrs = []
    >>> for _ in range(6):
    ...     lrs.append(round(s.get_last_lr()[0], 3)); opt.step(); s.step()
    >>> lrs
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    check_int("total_steps", total_steps, 1)
    # capped at half the run, so that a short run still decays
    warmup_steps = min(check_int("warmup_steps", warmup_steps, 0), total_steps // 2)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def constant_schedule(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate as given, every step (the fresh critics that measure I_NCE use it)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def rank_seed(seed: int, rank: int) -> int:
    """A distinct, reproducible seed for the view RNG of ``rank`` (rank 0 included)."""
    g = make_generator(seed)
    s = 0
    for _ in range(rank + 1):
        s = derive_seed(g)
    return s


# -- the trainer ------------------------------------------------------------------------------
class ContrastiveTrainer:
    """Train a two-view model with InfoNCE on views made by ``pair_fn``.

    Args:
        model: a module with ``forward(v1, v2) -> (z1, z2)`` (e.g.
            :class:`infomin.models.ContrastiveModel`); moved to ``device``.
        pair_fn: ``(idx: LongTensor (B,), rng) -> (v1, v2, params)``, views of the
            dataset items ``idx`` on ``device`` (B = this rank's share of the batch): a
            :class:`~infomin.views.PairSource`. Views are data here: they are made
            without gradients.
        temperature: tau of the InfoNCE logits. form: ``"ntxent"`` or ``"cross"``.
        epochs, steps_per_epoch: fix the length of the schedule; ``max_steps`` stops
            earlier (a budget in optimiser steps, e.g. for a fresh critic).
        optimizer, lr, weight_decay, momentum, betas: see :func:`build_optimizer`.
        schedule: ``"cosine"`` (linear warm-up over ``warmup_epochs``, then cosine decay
            to 0, per step: :func:`warmup_cosine`) or ``"constant"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ... (resolved, not ``"auto"``).
        amp: autocast (CUDA only; bf16 on these CPUs is far slower than fp32).
        channels_last: NHWC memory format for the model and the views.
        compile: wrap the model in ``torch.compile``.
        dist: this process's place in a DDP group (default: single process).
        progress: show a rich progress bar (rank 0 only).
    """

    def __init__(self, model: nn.Module, pair_fn: PairFn, *, temperature: float,
                 form: str = "ntxent", epochs: int, steps_per_epoch: int,
                 optimizer: str = "sgd", lr: float = 0.1, weight_decay: float = 0.0,
                 momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999),
                 schedule: str = "cosine", warmup_epochs: float = 0.0,
                 max_steps: int | None = None, device: str = "cpu",
                 amp: bool = False, channels_last: bool = False, compile: bool = False,
                 dist: ddp.DistInfo = ddp.SINGLE, progress: bool = True) -> None:
        check_range("temperature", temperature, 0, low_open=True)
        check_int("epochs", epochs, 1)
        check_int("steps_per_epoch", steps_per_epoch, 1)
        check_range("warmup_epochs", warmup_epochs, 0)
        check_choice("schedule", schedule, SCHEDULES)
        if max_steps is not None:
            check_int("max_steps", max_steps, 1)
        if device == "auto":
            raise SpecError("device", device, "resolve 'auto' first (infomin.config.resolve_device)")
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        if amp and not self.is_cuda:
            raise SpecError("amp", amp, "autocast is for CUDA; bf16 on the CPU is many times slower than fp32")
        self.temperature = float(temperature)
        self.form = form
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.max_steps = max_steps
        self.steps_done = 0
        self.dist = dist
        self.progress = progress and dist.is_main
        self.channels_last = channels_last
        self.amp = amp
        self.pair_fn = pair_fn

        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model.parameters(), optimizer, lr=lr,
                                         weight_decay=weight_decay, momentum=momentum, betas=betas)
        total = epochs * steps_per_epoch
        self.scheduler = (constant_schedule(self.optimizer) if schedule == "constant" else
                          warmup_cosine(self.optimizer, round(warmup_epochs * steps_per_epoch), total))
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and autocast_dtype(device) == torch.float16)
        net: nn.Module = self.model
        if dist.enabled:
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if self.is_cuda else None)
        self.net = torch.compile(net) if compile else net
        self.epoch = 0  # epochs completed
        self.history: dict[str, list[float]] = {}
        self.order_rng: torch.Generator | None = None
        self.view_rng: torch.Generator | None = None

    # -- RNG ----------------------------------------------------------------------------
    def seed(self, rng: torch.Generator | int) -> None:
        """Set the data-order RNG (same on every rank) and this rank's view RNG.

        In one process they are the same generator (the single RNG of the run); under
        DDP every rank draws its own views from a generator seeded per rank.
        """
        if isinstance(rng, int):
            rng = make_generator(rng)
        self.order_rng = rng
        if self.dist.enabled:
            self.view_rng = make_generator(rank_seed(rng.initial_seed(), self.dist.rank))
        else:
            self.view_rng = rng

    # -- one step -----------------------------------------------------------------------
    def loss_on(self, v1: Tensor, v2: Tensor) -> Tensor:
        """InfoNCE of one (local) batch of views, with embeddings gathered over ranks."""
        if self.channels_last:
            v1 = v1.contiguous(memory_format=torch.channels_last)
            v2 = v2.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp):
            z1, z2 = self.net(v1, v2)                                 # (B, D) each
        z1, z2 = ddp.gather_with_grad(z1.float()), ddp.gather_with_grad(z2.float())  # (N, D)
        return info_nce(z1, z2, self.temperature, form=self.form)

    def step(self, idx: Tensor) -> Tensor:
        """One optimisation step on the global-batch indices ``idx``; returns the detached loss."""
        if self.view_rng is None:
            raise InfominError("call ContrastiveTrainer.seed(rng) before step()")
        with torch.no_grad():  # views are data: no graph through the view generator
            v1, v2, _ = self.pair_fn(ddp.shard(idx, self.dist).to(self.device), self.view_rng)
        loss = self.loss_on(v1, v2)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.steps_done += 1
        return loss.detach()

    # -- epochs -------------------------------------------------------------------------
    def batches(self, n: int, batch_size: int) -> list[Tensor]:
        """One epoch of global batches: a permutation of ``range(n)`` from the order RNG, the
        incomplete last batch dropped (every rank draws the same permutation)."""
        return list(epoch_batches(n, batch_size, self.order_rng))

    @property
    def done(self) -> bool:
        """Whether the schedule (epochs, or ``max_steps``) is used up."""
        return self.epoch >= self.epochs or (self.max_steps is not None and self.steps_done >= self.max_steps)

    def train_epoch(self, n: int, batch_size: int) -> dict[str, float]:
        """Train one epoch over ``n`` items; return ``train/loss``, ``train/mi_nce``, ``train/lr``."""
        self.model.train()
        batches = self.batches(n, batch_size)[: self.steps_per_epoch]
        if self.max_steps is not None:
            batches = batches[: max(0, self.max_steps - self.steps_done)]
        k = num_candidates(batch_size, self.form)
        total = torch.zeros((), device=self.device)
        sync_every = 1 if not self.is_cuda else 20  # .item() syncs the GPU: do it rarely there
        bar = ProgressBar(len(batches), f"epoch {self.epoch + 1}/{self.epochs}", self.progress)
        hint = (f"lower the learning rate ({self.optimizer.param_groups[0]['lr']:.3g}) or raise "
                f"the temperature ({self.temperature})")
        t0 = time.perf_counter()
        with bar:
            for i, idx in enumerate(batches):
                total += self.step(idx)
                if (i + 1) % sync_every == 0 or i + 1 == len(batches):
                    mean = check_finite(float(total) / (i + 1), "loss",
                                        f"at epoch {self.epoch + 1}, step {i + 1}", hint)
                    bar.update(completed=i + 1, text=f"loss {mean:.3f}  I_NCE {mi_lower_bound(mean, k):.3f} "
                                                        f"/ log K {math.log(k):.2f}")
        mean = float(total) / max(1, len(batches))
        self.epoch += 1
        return {"train/loss": mean, "train/mi_nce": float(mi_lower_bound(mean, k)),
                "train/lr": float(self.optimizer.param_groups[0]["lr"]),
                "train/seconds": time.perf_counter() - t0}

    def fit(self, n: int, batch_size: int, *, rng: torch.Generator | int | None = None,
            checkpoint_dir: str | Path | None = None,
            evaluate: Callable[[int], dict[str, float]] | None = None, eval_every: int = 1,
            on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[float]]:
        """Train epochs ``self.epoch .. epochs-1`` over ``n`` items; return the per-epoch history.

        After each epoch: (rank 0) ``evaluate(epoch)`` every ``eval_every`` epochs and
        at the end, a checkpoint (``checkpoint_dir/last.pt``), then
        ``on_epoch(epoch, metrics)``; an exception there stops training (the
        checkpoint is already written, so the run can resume). Stops early once
        ``max_steps`` optimiser steps are done.
        """
        if rng is not None or self.order_rng is None:
            self.seed(rng if rng is not None else 0)
        if n < batch_size:
            raise SpecError("batch_size", batch_size, f"larger than the training set ({n} items)")
        while not self.done:
            epoch = self.epoch
            metrics = self.train_epoch(n, batch_size)
            metrics.pop("train/seconds")
            last = self.done
            if self.dist.is_main and evaluate is not None and eval_every and (
                    (epoch + 1) % eval_every == 0 or last):
                metrics.update(evaluate(epoch))
            for key, v in metrics.items():
                self.history.setdefault(key, []).append(v)
            if checkpoint_dir is not None:
                self.save_checkpoint(Path(checkpoint_dir) / CHECKPOINT)
            if self.dist.is_main and on_epoch is not None:
                on_epoch(epoch, metrics)
        return self.history

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and containers only (loadable with ``weights_only=True``)."""
        views = ddp.all_gather_object(self.view_rng.get_state()) if self.dist.enabled else []
        return {
            "epoch": self.epoch,
            "steps_done": self.steps_done,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "order_rng": self.order_rng.get_state(),
            "view_rngs": views,
            "history": {k: [float(v) for v in vs] for k, vs in self.history.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.steps_done = int(state.get("steps_done", self.epoch * self.steps_per_epoch))
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.order_rng = make_generator(0)
        self.order_rng.set_state(state["order_rng"])
        if self.dist.enabled:
            views = state["view_rngs"]
            if len(views) != self.dist.world_size:
                raise InfominError(f"checkpoint was written by {len(views)} processes, "
                                   f"this run has {self.dist.world_size}")
            self.view_rng = make_generator(0)
            self.view_rng.set_state(views[self.dist.rank])
        else:
            self.view_rng = self.order_rng

    def save_checkpoint(self, path: str | Path) -> None:
        """Write the full training state (rank 0), atomically (temp file + rename)."""
        state = self.state_dict()  # collective under DDP: every rank takes part
        if self.dist.is_main:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
        ddp.barrier()

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a :meth:`save_checkpoint` file (no pickle: ``weights_only=True``)."""
        path = Path(path)
        if not path.is_file():
            raise SpecError("resume", str(path), "no checkpoint found")
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
