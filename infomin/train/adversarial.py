"""InfoMin's adversarial view learner (unsupervised and semi-supervised), and its evaluation protocol.

InfoMin (Tian et al. 2020, arXiv 2005.10243, §4.1) learns the views themselves: a
view generator g (an invertible colour flow whose output is split into channel 1
and channels 2:3) is trained to *minimise* the InfoNCE bound between the two
views while the encoders f1, f2 *maximise* it (paraphrased; the paper's
unsupervised objective)::

    min_g  max_{f1, f2}  I_NCE^{f1,f2}( g(X)_1 ; g(X)_{2:3} )

Because the unsupervised game may also remove task-relevant information, the
semi-supervised variant adds a classifier on each view, trained on a labelled
subset; g and the classifiers both *minimise* their cross-entropy, so the views
keep the label::

    min_{g, c1, c2}  max_{f1, f2}  I_NCE^{f1,f2}(g(X)_1; g(X)_{2:3})
                                   + L_ce(c1(f1(g(X)_1)), y) + L_ce(c2(f2(g(X)_{2:3})), y)

How the min-max is optimised here: **gradient reversal** (Ganin & Lempitsky 2015,
arXiv 1409.7495) between g and the encoders. One backward pass of
``L_NCE + L_ce`` gives the encoders and heads their descent direction (encoders
minimise L_NCE, i.e. maximise I_NCE = log K - L_NCE), while the reversal layer
flips the InfoNCE gradient that reaches g (g maximises L_NCE, i.e. minimises
I_NCE). The cross-entropy path does not go through the reversal, so g and the
heads both descend it. One step = one unlabelled batch (InfoNCE) + in
semi-supervised mode one labelled batch (cross-entropy), as the paper describes.
This is equivalent to simultaneous gradient descent-ascent; alternating steps
would cost a second forward pass per step.

The paper's protocol after learning (§4.1): freeze g, *reset* the
encoders, train fresh ones on the learned views with plain InfoNCE (no
classifier heads) and read out a linear probe; compare with the hand-designed
views g started from (RGB R|GB or YDbDr Y|DbDr: the flow at its identity
initialisation). :func:`learn_views` does all of this through
:func:`infomin.pipeline.run_candidate` (one MLflow run each, in one experiment),
repeated over seeds: the paper warns that adversarial runs vary.

I_NCE before/after is measured fairly by :func:`estimate_mi`: a *fresh* critic
(same seed, same encoder, same steps, same K and tau) is trained on the start
views and on the learned views, and the bound is read out on held-out images.
The learner's own critic is not used for that comparison: it was trained
against a moving g and its final value depends on how far the game was from
equilibrium. Measured on the toy at CPU budgets, the game reliably lowers the I_NCE
its own critic reaches (against a frozen-g control at the same budget), while a
fresh critic trained on the final g finds most of the information again: with
fast g updates g mostly "chases" the current critic. Keep ``generator_lr`` below
the critics' rate (or raise ``critic_steps``) for views that stay learned.

>>> from infomin.data.toy import colorful_moving_digits
>>> train = colorful_moving_digits("train", n=64, seed=0)
>>> g, hist = adversarial_fit({"kind": "flow_color"}, train, epochs=1, batch_size=32,
...                           seed=0, progress=False, encoder_kwargs={"width": 4})
>>> sorted(hist)[:3], g.channels
(['adv/loss_nce', 'adv/lr_generator', 'adv/mi_nce'], (1, 2))
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infomin.config import resolve_device
from infomin.errors import InfominError, SpecError, check_choice, check_int, check_range
from infomin.objectives import default_form, info_nce, mi_lower_bound, num_candidates
from infomin.progress import ProgressBar
from infomin.seeding import derive_seed, make_generator, seed_everything
from infomin.views.base import ViewGenerator

MODES = ("unsupervised", "semi-supervised")
DEFAULT_GENERATOR: dict[str, Any] = {"kind": "flow_color", "start": "rgb"}
EXPERIMENT = "infomin-learn-views"
#: the learner's critics: the small ConvNet at width 16 (about 2.5x faster than 32 on a CPU)
DEFAULT_CRITIC: dict[str, Any] = {"width": 16}


# ---------------------------------------------------------------------------------------------
# gradient reversal
# ---------------------------------------------------------------------------------------------
class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: Tensor, scale: float = 1.0) -> Tensor:
    """Identity forward; multiplies the gradient by ``-scale`` backward (arXiv 1409.7495)."""
    return _GradReverse.apply(x, float(scale))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _build_generator(spec: Any) -> ViewGenerator:
    from infomin.views import build

    g = copy.deepcopy(spec) if isinstance(spec, ViewGenerator) else build(spec, field="generator_spec")
    if "weights" not in g.differentiable or not any(True for _ in g.parameters()):
        raise SpecError("generator_spec", g.to_spec().get("kind"),
                        "the view learner needs a generator with learnable weights",
                        choices=["flow_color", "perturbation"])
    return g


def _critic(channels: tuple[int, int], encoder: str, encoder_kwargs: Mapping[str, Any] | None,
            proj_dim: int, seed: int) -> nn.Module:
    from infomin.models import ContrastiveModel

    # weight init draws from torch's global RNG (the models' convention): seed it here
    seed_everything(seed)
    return ContrastiveModel(channels, encoder, proj_dim=proj_dim, encoder_kwargs=dict(encoder_kwargs or {}))


def _autocast(device: str, amp: bool):
    if not amp:
        return nullcontext()
    from infomin.train.contrastive import autocast_dtype

    return torch.autocast(torch.device(device).type, dtype=autocast_dtype(device))


def _steps(n: int, batch_size: int, rng: torch.Generator) -> Tensor:
    """One epoch of shuffled index batches (B,), the incomplete last batch dropped."""
    perm = torch.randperm(n, generator=rng)
    return perm[: (n // batch_size) * batch_size].view(-1, batch_size)


# ---------------------------------------------------------------------------------------------
# the min-max game
# ---------------------------------------------------------------------------------------------
class ViewLearner(nn.Module):
    """The players of InfoMin's game: view generator g, critics f1, f2 (+ projection heads)
    and, semi-supervised, the classifiers c1, c2; :meth:`step` is one simultaneous
    update through gradient reversal (see the module docstring).

    Args:
        generator: a :class:`ViewGenerator` with learnable weights (used as is, not copied).
        num_classes: classes of the labelled subset (0: unsupervised, no classifiers).
        lr, generator_lr: Adam learning rates of critics/classifiers and of g.
        temperature, ce_weight, adversary_scale, critic_steps: see :func:`adversarial_fit`.
        encoder, encoder_kwargs, proj_dim: the critics (:class:`infomin.models.ContrastiveModel`).
        amp: autocast the critics (CUDA); g runs in float32.
    """

    def __init__(self, generator: ViewGenerator, *, num_classes: int = 0, lr: float = 1e-3,
                 generator_lr: float | None = None, temperature: float = 0.1,
                 ce_weight: float = 1.0, adversary_scale: float = 1.0, encoder: str = "convnet",
                 encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64,
                 critic_steps: int = 1, seed: int = 0, amp: bool = False) -> None:
        super().__init__()
        check_int("critic_steps", critic_steps, 1)
        check_range("lr", lr, 0, low_open=True)
        generator_lr = lr if generator_lr is None else generator_lr
        check_range("generator_lr", generator_lr, 0, low_open=True)
        check_range("temperature", temperature, 0, low_open=True)
        check_range("ce_weight", ce_weight, 0)
        check_range("adversary_scale", adversary_scale, 0)
        check_int("num_classes", num_classes, 0)
        self.generator = generator
        self.channels = tuple(generator.channels)
        self.form = default_form(self.channels)
        self.temperature, self.ce_weight, self.adversary_scale = temperature, ce_weight, adversary_scale
        self.amp = amp
        self.critic_steps = critic_steps
        self.steps_done = 0
        self.critic = _critic(self.channels, encoder, encoder_kwargs, proj_dim, seed)
        n_heads = (1 if self.critic.shared else 2) if num_classes else 0
        self.classifiers = nn.ModuleList([nn.Linear(self.critic.out_dim, num_classes)
                                          for _ in range(n_heads)])
        self.opt_f = torch.optim.Adam([*self.critic.parameters(), *self.classifiers.parameters()], lr=lr)
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=generator_lr)

    def nce(self, x: Tensor, rng: torch.Generator, *, reverse: bool = False) -> Tensor:
        """L_NCE of g's views of ``x`` (B, C, H, W) under the critics; ``reverse`` puts the
        gradient-reversal layer between g and the critics."""
        v1, v2, _ = self.generator(x, generator=rng)                     # (B, c1|c2, H, W)
        if reverse:
            v1, v2 = grad_reverse(v1, self.adversary_scale), grad_reverse(v2, self.adversary_scale)
        with _autocast(str(x.device), self.amp):
            z1, z2 = self.critic(v1, v2)                                 # (B, D) each
        return info_nce(z1.float(), z2.float(), self.temperature, form=self.form)

    def ce(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Cross-entropy of the classifiers on both views of labelled ``x``; also their accuracies."""
        u1, u2, _ = self.generator(x, generator=rng)
        with _autocast(str(x.device), self.amp):
            logits1 = self.classifiers[0](self.critic.features(u1, 0))   # (B, classes)
            logits2 = self.classifiers[-1](self.critic.features(u2, 1))
        ce1, ce2 = F.cross_entropy(logits1.float(), y), F.cross_entropy(logits2.float(), y)
        acc1 = (logits1.argmax(1) == y).float().mean()
        acc2 = (logits2.argmax(1) == y).float().mean()
        return ce1, ce2, acc1, acc2

    def step(self, x: Tensor, rng: torch.Generator, labelled: tuple[Tensor, Tensor] | None = None
             ) -> dict[str, Tensor]:
        """One update of every player on an unlabelled batch ``x`` (and a labelled ``(x_l, y_l)``).

        Critics descend L_NCE (+ L_ce); g descends ``-adversary_scale * L_NCE + L_ce``
        (on every ``critic_steps``-th call only).
        Returns detached ``adv/*`` statistics.
        """
        loss_nce = self.nce(x, rng, reverse=True)
        loss = loss_nce
        stats = {"adv/loss_nce": loss_nce.detach()}
        if labelled is not None:
            if not len(self.classifiers):
                raise SpecError("labelled", "batch", "this learner has no classifiers (num_classes=0)")
            ce1, ce2, acc1, acc2 = self.ce(*labelled, rng)
            loss = loss + self.ce_weight * (ce1 + ce2)
            stats.update({"adv/ce_view1": ce1.detach(), "adv/ce_view2": ce2.detach(),
                          "adv/acc_view1": acc1, "adv/acc_view2": acc2})
        self.opt_f.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_f.step()
        self.steps_done += 1
        if self.steps_done % self.critic_steps == 0:  # g moves once per critic_steps critic updates
            self.opt_g.step()
        return stats


def adversarial_fit(generator: Any, train: Any, *, mode: str = "unsupervised", epochs: int = 5,
                    batch_size: int = 128, labelled: Tensor | None = None, lr: float = 1e-3,
                    generator_lr: float | None = None, temperature: float = 0.1,
                    ce_weight: float = 1.0, adversary_scale: float = 1.0, critic_steps: int = 1,
                    seed: int = 0, device: str = "auto", encoder: str = "convnet",
                    encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64,
                    amp: bool | str = "auto", progress: bool = True,
                    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                    ) -> tuple[ViewGenerator, dict[str, list[float]]]:
    """Learn ``generator`` adversarially (InfoMin §4.1) on ``train``; return ``(g, history)``.

    Args:
        generator: a spec dict (e.g. ``{"kind": "flow_color", "start": "ydbdr"}``) or a
            :class:`ViewGenerator` with learnable weights (copied, not modified).
        train: an :class:`infomin.data.ImageDataset` (images uint8 (N, C, H, W), labels (N,)).
        mode: ``"unsupervised"`` or ``"semi-supervised"`` (needs ``labelled``).
        labelled: indices (L,) of the labelled subset (semi-supervised).
        epochs, batch_size: passes over ``train`` and N, the InfoNCE batch (K from N and the form).
        lr: Adam learning rate of the critics, projection heads and classifiers.
        generator_lr: Adam learning rate of g (default ``lr``). With Adam the size of g's
            steps is set by this rate, not by ``adversary_scale``; keep g slower than the
            critics, or g only chases the current critic (a fresh critic then finds the
            information again).
        temperature: tau of InfoNCE.
        ce_weight: weight of the two cross-entropy terms (semi-supervised).
        adversary_scale: the gradient-reversal factor on g's InfoNCE gradient (0: g
            ignores InfoNCE, i.e. a purely supervised g).
        critic_steps: critic updates per update of g (WGAN's n_critic, arXiv 1701.07875):
            g then plays against a critic closer to its best response.
        seed: seeds g's and the critics' initialisation, data order and views.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; amp: bf16/fp16 autocast of the critics
            (``"auto"``: CUDA only; g always runs in float32 so the flow stays invertible).
        encoder, encoder_kwargs, proj_dim: the critics f1, f2 (:class:`infomin.models.ContrastiveModel`).
        on_epoch: ``on_epoch(epoch, metrics)`` after each epoch (e.g. MLflow logging).

    Returns:
        The learned generator (train mode, on ``device``) and the per-epoch history:
        ``adv/loss_nce``, ``adv/mi_nce`` (I_NCE of g's views under the learner's critic),
        ``adv/lr_generator`` and, semi-supervised, ``adv/ce_view1``, ``adv/ce_view2``,
        ``adv/acc_view1``, ``adv/acc_view2`` (on the labelled batches).
    """
    check_choice("mode", mode, MODES)
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 2)
    device = resolve_device(device)
    use_amp = device.startswith("cuda") if amp == "auto" else bool(amp)
    semi = mode == "semi-supervised"
    if semi and (labelled is None or len(labelled) < 2):
        raise SpecError("labelled", None if labelled is None else len(labelled),
                        "semi-supervised view learning needs at least 2 labelled examples")
    seed_everything(seed)  # the generator's initial weights come from torch's global RNG
    g = _build_generator(generator).to(device).train()
    n = len(train)
    if n < batch_size:
        raise SpecError("batch_size", batch_size, f"larger than the training set ({n} images)")
    g.requires_grad_(True)
    num_classes = int(train.labels.max().item()) + 1 if semi else 0
    learner = ViewLearner(g, num_classes=num_classes, lr=lr, generator_lr=generator_lr,
                          temperature=temperature, ce_weight=ce_weight,
                          adversary_scale=adversary_scale, encoder=encoder,
                          encoder_kwargs=encoder_kwargs, proj_dim=proj_dim,
                          critic_steps=critic_steps, seed=seed,
                          amp=use_amp).to(device).train()
    k = num_candidates(batch_size, learner.form)
    rng = make_generator(seed)
    lab_rng = make_generator(derive_seed(rng))
    lab_bs = min(batch_size, len(labelled)) if semi else 0
    history: dict[str, list[float]] = {}
    steps_per_epoch = n // batch_size
    dev_images = train.images.device

    with ProgressBar(epochs * steps_per_epoch, f"learn views ({mode})", progress) as bar:
        for epoch in range(epochs):
            sums: dict[str, Tensor] = {}
            for idx in _steps(n, batch_size, rng):
                x = train.batch(idx.to(dev_images)).to(device)
                lab = None
                if semi:
                    sel = labelled[torch.randint(len(labelled), (lab_bs,), generator=lab_rng)]
                    lab = (train.batch(sel.to(dev_images)).to(device),
                           train.labels[sel.to(train.labels.device)].to(device))
                stats = learner.step(x, rng, lab)
                for key, v in stats.items():
                    sums[key] = sums.get(key, 0.0) + v
                if bar.enabled:
                    lv = float(stats["adv/loss_nce"])
                    bar.update(advance=1, L_NCE=lv, I_NCE=float(mi_lower_bound(lv, k)))
            metrics = {key: float(v) / steps_per_epoch for key, v in sums.items()}
            if not math.isfinite(metrics["adv/loss_nce"]):
                raise InfominError(f"the InfoNCE loss is {metrics['adv/loss_nce']} at epoch {epoch + 1}: "
                                   f"lower the learning rates (lr={lr}, generator_lr={generator_lr})")
            metrics["adv/mi_nce"] = float(mi_lower_bound(metrics["adv/loss_nce"], k))
            metrics["adv/lr_generator"] = float(lr if generator_lr is None else generator_lr)
            for key, v in metrics.items():
                history.setdefault(key, []).append(v)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    return g, history


# ---------------------------------------------------------------------------------------------
# a fair I_NCE measurement: a fresh critic at a fixed budget
# ---------------------------------------------------------------------------------------------
def fresh_critic(generator: ViewGenerator, train: Any, *, steps: int = 100, batch_size: int = 128,
                 temperature: float = 0.1, lr: float = 1e-3, seed: int = 0, device: str = "auto",
                 encoder: str = "convnet", encoder_kwargs: Mapping[str, Any] | None = None,
                 proj_dim: int = 64) -> nn.Module:
    """A new :class:`~infomin.models.ContrastiveModel` (seeded init) trained with InfoNCE for
    ``steps`` Adam steps on views of ``train`` made by the frozen ``generator`` (no heads,
    no labels: the paper's "reset the encoders" step in miniature)."""
    check_int("steps", steps, 1)
    device = resolve_device(device)
    g = generator.to(device)
    was_training = g.training
    g.eval()
    channels = tuple(g.channels)
    form = default_form(channels)
    critic = _critic(channels, encoder, encoder_kwargs, proj_dim, seed).to(device).train()
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    rng = make_generator(seed)
    n = len(train)
    if n < batch_size:
        raise SpecError("batch_size", batch_size, f"larger than the training set ({n} images)")
    done = 0
    while done < steps:
        for idx in _steps(n, batch_size, rng):
            with torch.no_grad():
                v1, v2, _ = g(train.batch(idx.to(train.images.device)).to(device), generator=rng)
            loss = info_nce(*critic(v1, v2), temperature, form=form)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
    g.train(was_training)
    return critic


def estimate_mi(generator: ViewGenerator, train: Any, test: Any | None = None, *, steps: int = 100,
                batch_size: int = 128, temperature: float = 0.1, lr: float = 1e-3, seed: int = 0,
                device: str = "auto", encoder: str = "convnet",
                encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64,
                eval_batches: int = 4) -> dict[str, float]:
    """I_NCE of ``generator``'s views under a *fresh* critic trained for ``steps`` Adam steps.

    The critic (:func:`fresh_critic`) is initialised from ``seed``, trained on views
    of ``train`` with the data order and view noise from ``seed``, then the bound
    ``log K - L_NCE`` is averaged over ``eval_batches`` batches of views of ``test``
    (default ``train``), without gradients (BatchNorm with batch statistics, as in
    training). Two generators compared with the same arguments differ only in their
    views, so the difference of the estimates is the difference the views make (at
    fixed K, tau, encoder and budget; the bound can never exceed log K).

    Returns ``{"mi": I_NCE, "loss": L_NCE, "k": K, "log_k": log K}``.
    """
    device = resolve_device(device)
    critic = fresh_critic(generator, train, steps=steps, batch_size=batch_size,
                          temperature=temperature, lr=lr, seed=seed, device=device, encoder=encoder,
                          encoder_kwargs=encoder_kwargs, proj_dim=proj_dim)
    g = generator.to(device)
    was_training = g.training
    g.eval()
    form = default_form(tuple(g.channels))
    k = num_candidates(batch_size, form)
    data = train if test is None else test
    # BatchNorm keeps batch statistics at read-out: after a short budget the running
    # averages still lag the weights, which would bias the estimate down
    critic.train()
    eval_rng = make_generator(seed + 1)
    losses = []
    with torch.no_grad():
        for idx in _steps(len(data), batch_size, eval_rng)[:eval_batches]:
            v1, v2, _ = g(data.batch(idx.to(data.images.device)).to(device), generator=eval_rng)
            losses.append(float(info_nce(*critic(v1, v2), temperature, form=form)))
    g.train(was_training)
    if not losses:
        raise SpecError("batch_size", batch_size, f"larger than the evaluation set ({len(data)} images)")
    loss = sum(losses) / len(losses)
    return {"mi": float(mi_lower_bound(loss, k)), "loss": loss, "k": float(k), "log_k": math.log(k)}


def probe_views(generator: ViewGenerator, train: Any, test: Any, *, steps: int = 100,
                batch_size: int = 128, temperature: float = 0.1, lr: float = 1e-3, seed: int = 0,
                device: str = "auto", encoder: str = "convnet",
                encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64) -> float:
    """Linear-probe accuracy of a :func:`fresh_critic` trained on ``generator``'s views.

    A light, in-memory version of the paper's protocol (no MLflow run, no plots): the
    frozen encoders' features of the clean images' deterministic views
    (:func:`infomin.pipeline.eval_inputs`: both encoders, concatenated) are probed
    with :func:`infomin.evaluate.linear_probe` on ``train`` -> ``test`` labels.
    """
    from infomin.evaluate import linear_probe
    from infomin.pipeline import eval_inputs

    device = resolve_device(device)
    critic = fresh_critic(generator, train, steps=steps, batch_size=batch_size,
                          temperature=temperature, lr=lr, seed=seed, device=device, encoder=encoder,
                          encoder_kwargs=encoder_kwargs, proj_dim=proj_dim).eval()
    g = generator.to(device).eval()

    @torch.no_grad()
    def features(data: Any) -> Tensor:
        out = []
        for idx in torch.arange(len(data)).split(256):
            u1, u2 = eval_inputs(g, data.batch(idx.to(data.images.device)).to(device))
            h = (critic.features(u1, 0) if critic.shared
                 else torch.cat([critic.features(u1, 0), critic.features(u2, 1)], dim=1))
            out.append(h.float().cpu())
        return torch.cat(out)

    return float(linear_probe(features(train), train.labels.cpu(), features(test), test.labels.cpu(),
                              seed=seed))


def start_generator(generator: Any, seed: int = 0) -> ViewGenerator:
    """The views a learned generator started from: a fresh copy initialised as
    :func:`adversarial_fit` with ``seed`` initialises it.

    For ``flow_color`` that is the flow at its identity initialisation, i.e. the
    hand-designed RGB R|GB or YDbDr Y|DbDr split (whatever the seed); for
    ``perturbation`` the randomly initialised net of that seed.
    """
    from infomin.views import build

    spec = generator.to_spec() if isinstance(generator, ViewGenerator) else dict(generator)
    seed_everything(seed)
    return build(spec, field="generator_spec").eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------
# the whole protocol
# ---------------------------------------------------------------------------------------------
@dataclass
class SeedResult:
    """One seed of :func:`learn_views`."""

    seed: int
    generator: ViewGenerator
    history: dict[str, list[float]]
    metrics: dict[str, float]
    run_id: str | None = None
    path: Path | None = None
    start_run_id: str | None = None
    learned_run_id: str | None = None


@dataclass
class LearnResult:
    """What :func:`learn_views` produced: per-seed results and the spread over seeds."""

    mode: str
    generator_spec: dict[str, Any]
    seeds: list[SeedResult]
    summary: dict[str, float]
    experiment_id: str | None = None
    parent_run_id: str | None = None
    registered: dict[str, Any] = field(default_factory=dict)

    @property
    def generator(self) -> ViewGenerator:
        """The first seed's learned generator."""
        return self.seeds[0].generator

    def table(self) -> list[dict[str, float]]:
        """One row per seed: I_NCE before/after (fresh critic) and probe accuracy start/learned."""
        keys = ("mi/before", "mi/after", "eval/linear_acc/start", "eval/linear_acc/learned",
                "mi/nce/start", "mi/nce/learned")
        return [{"seed": s.seed, **{k: s.metrics[k] for k in keys if k in s.metrics}} for s in self.seeds]


def _summary(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    keys = sorted({k for r in rows for k in r})
    for key in keys:
        vals = [r[key] for r in rows if key in r]
        out[f"{key}/mean"] = statistics.fmean(vals)
        out[f"{key}/std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return out


def learn_views(dataset: str, *, mode: str = "unsupervised",
                generator_spec: Mapping[str, Any] | None = None, epochs: int = 4,
                batch_size: int = 128, labels: int = 500, lr: float = 1e-3,
                generator_lr: float | None = None, temperature: float = 0.1, seed: int = 0,
                seeds: Sequence[int] | None = None, label: str | None = None,
                device: str = "auto", encoder: str = "convnet",
                encoder_kwargs: Mapping[str, Any] | None = DEFAULT_CRITIC, ce_weight: float = 1.0,
                critic_steps: int = 1, train_subset: int | None = 1000, test_subset: int | None = 500,
                mi_steps: int = 50, eval_config: Any | None = None, evaluate: bool = True,
                out: str | Path | None = None, register_as: str | None = None,
                alias: str = "current", experiment: str = EXPERIMENT,
                tracking_uri: str | None = None, progress: bool = True,
                echo: Callable[[str], None] | None = None) -> LearnResult:
    """Learn views adversarially on ``dataset``, then evaluate them by the paper's protocol.

    For each seed (``seeds``, default ``[seed]``), inside one parent MLflow run of
    experiment ``experiment``:

    1. a child run ``adversarial seed=s`` learns g (:func:`adversarial_fit`) and logs
       ``adv/*`` per epoch; I_NCE of the start and learned views under fresh critics
       (:func:`estimate_mi`, ``mi_steps`` steps each) as ``mi/before`` and ``mi/after``;
       the generator is saved (safetensors + YAML, :func:`infomin.views.save`) and
       logged as artifacts (``runs:/<id>/view_generator``);
    2. with ``evaluate``: g is frozen, and fresh encoders are trained without heads on
       the start views and on the learned views (:func:`infomin.pipeline.run_candidate`,
       two child runs with ``eval_config`` or a config built from the arguments);
       their linear probes go into ``eval/linear_acc/start`` and ``.../learned``.

    The parent run gets the mean and standard deviation over seeds. With ``out`` the
    first seed's generator is written to ``out`` (others to ``<out>-seed<s>.yaml``);
    with ``register_as`` it is registered in the MLflow model registry under
    ``alias`` (:func:`infomin.tracking.log_view_generator`).

    Args:
        dataset: an :func:`infomin.data.load` name (e.g. ``"colorful-moving-digits"``).
        mode: ``"unsupervised"`` or ``"semi-supervised"``.
        generator_spec: the learnable generator (default ``flow_color`` from RGB).
        labels: size of the class-balanced labelled subset (semi-supervised).
        label: the factor the classifier heads keep and the probes score (e.g. the toy's
            ``"hue"`` or ``"position"``; :meth:`infomin.data.ImageDataset.relabel`);
            default the dataset's own labels (the toy's digit). The per-factor probes of the
            evaluation runs are logged either way.
        ce_weight: weight of the classifiers' cross-entropy against the InfoNCE term
            (semi-supervised). Measured on the toy (label ``"hue"``, 4 epochs): at 1 the
            label is not kept better than by the unsupervised learner, at 10 it is.
        train_subset, test_subset: seeded subsets of the dataset (``None``: all).
        Others: see :func:`adversarial_fit` and :class:`infomin.config.TrainConfig`.
    """
    from infomin import data as D
    from infomin import tracking
    from infomin.data.base import balanced_indices
    from infomin.models.encoders import build_encoder
    from infomin.views import flatten
    from infomin.views.io import save

    check_choice("mode", mode, MODES)
    spec = dict(generator_spec or DEFAULT_GENERATOR)
    _build_generator(spec)  # validate early
    seeds = [seed] if seeds is None else [check_int("seeds[]", s, 0) for s in seeds]
    if not seeds:
        raise SpecError("seeds", seeds, "expected at least one seed")
    if mode == "semi-supervised":
        check_int("labels", labels, 2)
    check_range("ce_weight", ce_weight, 0)
    build_encoder(encoder, 1, **dict(encoder_kwargs or {}))  # a bad encoder fails before any run opens
    say = echo or (lambda _msg: None)
    device = resolve_device(device)
    exp_id = tracking.get_or_create_experiment(experiment, uri=tracking_uri)
    results: list[SeedResult] = []
    params = {"mode": mode, "dataset": dataset, "label": label or "", "epochs": epochs,
              "batch_size": batch_size,
              "labels": labels if mode == "semi-supervised" else 0, "lr": lr,
              "generator_lr": generator_lr if generator_lr is not None else lr,
              "temperature": temperature, "encoder": encoder, "ce_weight": ce_weight,
              "critic_steps": critic_steps, "encoder_kwargs": dict(encoder_kwargs or {}),
              "train_subset": train_subset, "test_subset": test_subset, "mi_steps": mi_steps,
              "seeds": ",".join(map(str, seeds)),
              **{f"generator.{k}": v for k, v in flatten(spec).items()}}
    registered: dict[str, Any] = {}
    with tracking.start_run(experiment_id=exp_id, run_name=f"learn-views {mode}",
                            tags={"infomin.kind": "learn-views"}, uri=tracking_uri) as parent:
        parent.log_params(params)
        for s in seeds:
            train = D.load(dataset, split="train", subset=train_subset, seed=s)
            test = D.load(dataset, split="test", subset=test_subset, seed=s)
            if label is not None:
                train, test = train.relabel(label), test.relabel(label)
            labelled = (balanced_indices(train.labels.cpu(), min(labels, len(train)), seed=s)
                        if mode == "semi-supervised" else None)
            start = start_generator(spec, s)
            with tracking.start_run(experiment_id=exp_id, parent_run_id=parent.run_id,
                                    run_name=f"adversarial seed={s}", uri=tracking_uri,
                                    tags={"infomin.kind": "adversarial", "infomin.seed": s}) as run:
                run.log_params({**params, "seed": s})
                t0 = time.perf_counter()
                g, history = adversarial_fit(
                    spec, train, mode=mode, epochs=epochs, batch_size=batch_size, labelled=labelled,
                    lr=lr, generator_lr=generator_lr, temperature=temperature, ce_weight=ce_weight,
                    critic_steps=critic_steps, seed=s, device=device, encoder=encoder, encoder_kwargs=encoder_kwargs,
                    progress=progress, on_epoch=lambda e, m: run.log_metrics(m, step=e))
                g.eval().requires_grad_(False)
                metrics: dict[str, float] = {"adv/seconds": time.perf_counter() - t0}
                mi_kw = dict(steps=mi_steps, batch_size=batch_size, temperature=temperature, lr=lr,
                             seed=s, device=device, encoder=encoder, encoder_kwargs=encoder_kwargs)
                before = estimate_mi(start, train, test, **mi_kw)
                after = estimate_mi(g, train, test, **mi_kw)
                metrics.update({"mi/before": before["mi"], "mi/after": after["mi"],
                                "mi/k": before["k"], "mi/log_k": before["log_k"]})
                say(f"seed {s}: I_NCE (fresh critic, K={int(before['k'])}) "
                    f"before {before['mi']:.3f} -> after {after['mi']:.3f} (log K {before['log_k']:.3f})")
                path = None
                if out is not None:
                    p = Path(out)
                    p = p if s == seeds[0] else p.with_name(f"{p.with_suffix('').name}-seed{s}.yaml")
                    prov = {"run_id": run.run_id, "dataset": dataset, "label": label or "labels",
                            "seed": s, "mode": mode,
                            "epochs": epochs, "labels": params["labels"],
                            "mi_before": before["mi"], "mi_after": after["mi"]}
                    path = save(g, p, provenance=prov)
                    info = tracking.log_view_generator(
                        path, run_id=run.run_id, uri=tracking_uri,
                        register_as=register_as if s == seeds[0] else None, alias=alias)
                    if s == seeds[0]:
                        registered = info
                run.log_metrics(metrics, step=epochs)
            res = SeedResult(seed=s, generator=g, history=history, metrics=metrics, run_id=run.run_id,
                             path=path)
            if evaluate:
                _protocol(res, start, dataset, exp_id=exp_id, parent_id=parent.run_id,
                          eval_config=eval_config, batch_size=batch_size, temperature=temperature,
                          encoder=encoder, device=device, train_subset=train_subset,
                          test_subset=test_subset, epochs=epochs, progress=progress,
                          tracking_uri=tracking_uri, label=label)
                tracking.Run(run.run_id, tracking_uri).log_metrics(
                    {k: v for k, v in res.metrics.items() if k.startswith(("eval/", "mi/nce/"))},
                    step=epochs)
                say(f"seed {s}: linear probe start {res.metrics['eval/linear_acc/start']:.3f} -> "
                    f"learned {res.metrics['eval/linear_acc/learned']:.3f}")
            results.append(res)
        summary = _summary([{k: v for k, v in r.metrics.items() if k.startswith(("mi/", "eval/"))}
                            for r in results])
        parent.log_metrics(summary, step=0)
    return LearnResult(mode=mode, generator_spec=spec, seeds=results, summary=summary,
                       experiment_id=exp_id, parent_run_id=parent.run_id, registered=registered)


def _protocol(res: SeedResult, start: ViewGenerator, dataset: str, *, exp_id: str, parent_id: str,
              eval_config: Any, batch_size: int, temperature: float, encoder: str, device: str,
              train_subset: int | None, test_subset: int | None, epochs: int, progress: bool,
              tracking_uri: str | None, label: str | None = None) -> None:
    """Freeze g, reset the encoders, train fresh ones on start and learned views; probe both."""
    from infomin.config import TrainConfig
    from infomin.pipeline import run_candidate

    if eval_config is None:
        eval_config = TrainConfig(dataset=dataset, encoder=encoder, epochs=epochs,
                                  batch_size=batch_size, temperature=temperature, device=device,
                                  train_subset=train_subset, test_subset=test_subset,
                                  progress=progress, eval_every=0)
    cfg = eval_config.replace(seed=res.seed)
    learned_views: Any = res.path if res.path is not None else res.generator
    for name, views in (("start", start), ("learned", learned_views)):
        cand = run_candidate(views, cfg, experiment_id=exp_id, parent_run_id=parent_id,
                             run_name=f"{name} views seed={res.seed}", tracking_uri=tracking_uri,
                             tags={"infomin.kind": f"learn-views/{name}", "infomin.seed": res.seed,
                                   "infomin.adversarial_run": res.run_id or ""})
        # with a chosen label, the headline probe is that factor's (the runs log every factor)
        key = f"eval/linear_acc/{label}" if label and f"eval/linear_acc/{label}" in cand.metrics \
            else "eval/linear_acc"
        res.metrics[f"eval/linear_acc/{name}"] = cand.metrics[key]
        res.metrics[f"mi/nce/{name}"] = cand.metrics["mi/nce"]
        for key, v in cand.metrics.items():
            if key.startswith("eval/linear_acc/"):
                res.metrics[f"{key}/{name}"] = v
        setattr(res, f"{name}_run_id", cand.run_id)


__all__ = ["MODES", "LearnResult", "SeedResult", "ViewLearner", "adversarial_fit", "estimate_mi",
           "fresh_critic", "grad_reverse", "learn_views", "probe_views", "start_generator"]
