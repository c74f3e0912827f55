"""InfoMin's adversarial view learner: the min-max game between a view generator and two critics.

InfoMin (Tian et al. 2020, arXiv 2005.10243, §4.1) learns the views themselves: a
view generator g (an invertible colour flow whose output is split into channel 1
and channels 2:3) is trained to *minimise* the InfoNCE bound between the two
views while the encoders f1, f2 *maximise* it (the paper's unsupervised objective)::

    min_g  max_{f1, f2}  I_NCE^{f1,f2}( g(X)_1 ; g(X)_{2:3} )

The semi-supervised variant adds a classifier on each view, trained on a labelled
subset; g and the classifiers both *minimise* their cross-entropy, so the views
keep the label::

    min_{g, c1, c2}  max_{f1, f2}  I_NCE^{f1,f2}(g(X)_1; g(X)_{2:3})
                                   + L_ce(c1(f1(g(X)_1)), y) + L_ce(c2(f2(g(X)_{2:3})), y)

The min-max is optimised by **gradient reversal** (Ganin & Lempitsky 2015, arXiv
1409.7495) between g and the encoders: one backward pass of ``L_NCE + L_ce`` gives
the encoders and heads their descent direction, while the reversal layer flips the
InfoNCE gradient that reaches g (g maximises L_NCE, i.e. minimises I_NCE); the
cross-entropy path does not go through the reversal, so g and the heads both descend
it. One step = one unlabelled batch (InfoNCE) + in semi-supervised mode one labelled
batch (cross-entropy). This is simultaneous gradient descent-ascent; ``critic_steps``
lets the critics take several steps per step of g.

This module holds the loop only. The paper's whole protocol (learn g, measure I_NCE
with fresh critics, freeze g, retrain fresh encoders on the start and learned views,
probe, save and register g) is :func:`infomin.protocols.learn_views`; how to choose
the learning rates and the classification weight is in docs/learned_views.md.

>>> from infomin.data.toy import colorful_moving_digits
>>> train = colorful_moving_digits("train", n=64, seed=0)
>>> g, hist = adversarial_fit({"kind": "flow_color"}, train, epochs=1, batch_size=32,
...                           seed=0, progress=False, encoder_kwargs={"width": 4})
>>> sorted(hist)[:3], g.channels
(['adv/loss_nce', 'adv/lr_generator', 'adv/mi_nce'], (1, 2))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infomin.config import resolve_device
from infomin.errors import SpecError, check_choice, check_int, check_range
from infomin.models import ContrastiveModel
from infomin.objectives import default_form, info_nce, mi_lower_bound, num_candidates
from infomin.progress import ProgressBar
from infomin.seeding import derive_seed, make_generator, seeded
from infomin.train.loop import autocast, check_finite, epoch_batches
from infomin.views import build
from infomin.views.base import ViewGenerator

MODES = ("unsupervised", "semi-supervised")
UPDATES = ("simultaneous", "alternating")
#: kinds with learnable weights the learner can train
LEARNABLE = ("flow_color", "perturbation", "pair with a flow_color split")


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


def _check_betas(betas: Any) -> tuple[float, float]:
    if not isinstance(betas, (list, tuple)) or len(betas) != 2:
        raise SpecError("betas", betas, "expected a pair (beta1, beta2)")
    b1, b2 = (check_range(f"betas[{i}]", b, 0, 1, high_open=True) for i, b in enumerate(betas))
    return float(b1), float(b2)


def start_generator(generator: Any, seed: int = 0, *, frozen: bool = True) -> ViewGenerator:
    """A fresh copy of ``generator`` (a spec or a module) initialised from ``seed``: the views
    :func:`adversarial_fit` starts from (global RNG untouched).

    For ``flow_color`` that is the flow at its identity initialisation, i.e. the
    hand-designed RGB R|GB or YDbDr Y|DbDr split (whatever the seed); for
    ``perturbation`` the randomly initialised net of that seed. Raises
    :class:`SpecError` for a generator without learnable weights.
    """
    spec = generator.to_spec() if isinstance(generator, ViewGenerator) else generator
    with seeded(seed):
        g = build(copy.deepcopy(spec), field="generator")
    if "weights" not in g.differentiable or not any(True for _ in g.parameters()):
        raise SpecError("generator.kind", g.to_spec().get("kind"),
                        "the view learner needs a generator with learnable weights", choices=LEARNABLE)
    return g.eval().requires_grad_(False) if frozen else g


# ---------------------------------------------------------------------------------------------
# the min-max game
# ---------------------------------------------------------------------------------------------
class ViewLearner(nn.Module):
    """The players of InfoMin's game: view generator g, critics f1, f2 (+ projection heads)
    and, semi-supervised, the classifiers c1, c2; :meth:`step` is one update of all of them.

    ``update="simultaneous"``: one backward pass through the gradient-reversal layer
    (see the module docstring). ``update="alternating"`` (the InfoMin authors' learner
    script): the critics and heads first take a step on the views with g detached, then
    g and the heads take a step against the updated critics; twice the forward passes.

    Args:
        generator: a :class:`ViewGenerator` with learnable weights (used as is, not copied).
        num_classes: classes of the labelled subset (0: unsupervised, no classifiers).
        lr, generator_lr, classifier_lr: Adam learning rates of the critics, of g and of
            the classifiers (defaults: ``lr``); betas: Adam's betas for all three.
        temperature, ce_weight, adversary_scale, critic_steps, update: see :func:`adversarial_fit`.
        encoder, encoder_kwargs, proj_dim: the critics (:class:`infomin.models.ContrastiveModel`).
        amp: autocast the critics (CUDA); g runs in float32.
    """

    def __init__(self, generator: ViewGenerator, *, num_classes: int = 0, lr: float = 1e-3,
                 generator_lr: float | None = None, classifier_lr: float | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), temperature: float = 0.1,
                 ce_weight: float = 1.0, adversary_scale: float = 1.0, encoder: str = "convnet",
                 encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64,
                 critic_steps: int = 1, update: str = "simultaneous", seed: int = 0,
                 amp: bool = False) -> None:
        super().__init__()
        check_int("critic_steps", critic_steps, 1)
        self.update = check_choice("update", update, UPDATES)
        check_range("lr", lr, 0, low_open=True)
        generator_lr = lr if generator_lr is None else generator_lr
        classifier_lr = lr if classifier_lr is None else classifier_lr
        check_range("generator_lr", generator_lr, 0, low_open=True)
        check_range("classifier_lr", classifier_lr, 0, low_open=True)
        betas = _check_betas(betas)
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
        with seeded(seed):   # critics, then classifiers, from one seeded stream
            self.critic = ContrastiveModel(self.channels, encoder, proj_dim=proj_dim,
                                           encoder_kwargs=dict(encoder_kwargs or {}))
            n_heads = (1 if self.critic.shared else 2) if num_classes else 0
            self.classifiers = nn.ModuleList([nn.Linear(self.critic.out_dim, num_classes)
                                              for _ in range(n_heads)])
        self.opt_f = torch.optim.Adam(self.critic.parameters(), lr=lr, betas=betas)
        self.opt_c = (torch.optim.Adam(self.classifiers.parameters(), lr=classifier_lr, betas=betas)
                      if n_heads else None)
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=generator_lr, betas=betas)

    def nce(self, x: Tensor, rng: torch.Generator, *, reverse: bool = False) -> Tensor:
        """L_NCE of g's views of ``x`` (B, C, H, W) under the critics; ``reverse`` puts the
        gradient-reversal layer between g and the critics."""
        v1, v2, _ = self.generator(x, rng)                     # (B, c1|c2, H, W)
        if reverse:
            v1, v2 = grad_reverse(v1, self.adversary_scale), grad_reverse(v2, self.adversary_scale)
        with autocast(x.device, self.amp):
            z1, z2 = self.critic(v1, v2)                                 # (B, D) each
        return info_nce(z1.float(), z2.float(), self.temperature, form=self.form)

    def ce(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Cross-entropy of the classifiers on both views of labelled ``x``; also their accuracies."""
        u1, u2, _ = self.generator(x, rng)
        with autocast(x.device, self.amp):
            logits1 = self.classifiers[0](self.critic.features(u1, 0))   # (B, classes)
            logits2 = self.classifiers[-1](self.critic.features(u2, 1))
        ce1, ce2 = F.cross_entropy(logits1.float(), y), F.cross_entropy(logits2.float(), y)
        acc1 = (logits1.argmax(1) == y).float().mean()
        acc2 = (logits2.argmax(1) == y).float().mean()
        return ce1, ce2, acc1, acc2

    def step(self, x: Tensor, rng: torch.Generator, labelled: tuple[Tensor, Tensor] | None = None
             ) -> dict[str, Tensor]:
        """One update of every player on an unlabelled batch ``x`` (and a labelled ``(x_l, y_l)``).

        Critics descend L_NCE (+ L_ce); the heads descend L_ce; g descends
        ``-adversary_scale * L_NCE + ce_weight * L_ce`` (on every ``critic_steps``-th call
        only). Returns detached ``adv/*`` statistics.
        """
        if labelled is not None and not len(self.classifiers):
            raise SpecError("labelled", "batch", "this learner has no classifiers (num_classes=0)")
        if self.update == "alternating":
            return self._alternating(x, rng, labelled)
        loss_nce = self.nce(x, rng, reverse=True)
        loss = loss_nce
        stats = {"adv/loss_nce": loss_nce.detach()}
        if labelled is not None:
            ce, ce_stats = self._ce(*labelled, rng)
            loss = loss + self.ce_weight * ce
            stats.update(ce_stats)
        self.steps_done += 1
        g_moves = self.steps_done % self.critic_steps == 0   # once per critic_steps critic updates
        self._descend(loss, self.opt_f, self.opt_c, self.opt_g if g_moves else None)
        return stats

    def _descend(self, loss: Tensor, *optimizers: torch.optim.Optimizer | None) -> None:
        """Clear every player's gradients, backpropagate ``loss`` and step ``optimizers``."""
        for opt in (self.opt_f, self.opt_c, self.opt_g):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            if opt is not None:
                opt.step()

    def _ce(self, x: Tensor, y: Tensor, rng: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        ce1, ce2, acc1, acc2 = self.ce(x, y, rng)
        return ce1 + ce2, {"adv/ce_view1": ce1.detach(), "adv/ce_view2": ce2.detach(),
                           "adv/acc_view1": acc1, "adv/acc_view2": acc2}

    def _alternating(self, x: Tensor, rng: torch.Generator,
                     labelled: tuple[Tensor, Tensor] | None) -> dict[str, Tensor]:
        v1, v2, _ = self.generator(x, rng)                     # (B, c1|c2, H, W), with a graph to g
        # 1. the critics (and heads) on the views, g detached
        with autocast(x.device, self.amp):
            z1, z2 = self.critic(v1.detach(), v2.detach())
        loss_nce = info_nce(z1.float(), z2.float(), self.temperature, form=self.form)
        self._descend(loss_nce, self.opt_f)
        self.steps_done += 1
        stats = {"adv/loss_nce": loss_nce.detach()}
        if self.steps_done % self.critic_steps:
            return stats
        # 2. g (and the heads) against the updated critics: g raises L_NCE, keeps the label
        with autocast(x.device, self.amp):
            z1, z2 = self.critic(v1, v2)
        loss = -self.adversary_scale * info_nce(z1.float(), z2.float(), self.temperature, form=self.form)
        if labelled is not None:
            ce, ce_stats = self._ce(*labelled, rng)
            loss = loss + self.ce_weight * ce
            stats.update(ce_stats)
        self._descend(loss, self.opt_g, self.opt_c)
        return stats


def adversarial_fit(generator: Any, train: Any, *, mode: str = "unsupervised", epochs: int = 5,
                    batch_size: int = 128, labelled: Tensor | None = None, lr: float = 1e-3,
                    generator_lr: float | None = None, classifier_lr: float | None = None,
                    betas: tuple[float, float] = (0.9, 0.999), temperature: float = 0.1,
                    ce_weight: float = 1.0, adversary_scale: float = 1.0, critic_steps: int = 1,
                    update: str = "simultaneous", seed: int = 0, device: str = "auto",
                    encoder: str = "convnet",
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
        update: ``"simultaneous"`` (gradient reversal, one backward pass) or
            ``"alternating"`` (critic step, then a step of g against the updated critic, as
            in the InfoMin authors' learner script).
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
    g = start_generator(generator, seed, frozen=False).to(device).train()
    n = len(train)
    if n < batch_size:
        raise SpecError("batch_size", batch_size, f"larger than the training set ({n} images)")
    g.requires_grad_(True)
    num_classes = int(train.labels.max().item()) + 1 if semi else 0
    learner = ViewLearner(g, num_classes=num_classes, lr=lr, generator_lr=generator_lr,
                          classifier_lr=classifier_lr, betas=betas, temperature=temperature, ce_weight=ce_weight,
                          adversary_scale=adversary_scale, encoder=encoder,
                          encoder_kwargs=encoder_kwargs, proj_dim=proj_dim,
                          critic_steps=critic_steps, update=update, seed=seed,
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
            for idx in epoch_batches(n, batch_size, rng):
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
            check_finite(metrics["adv/loss_nce"], "the InfoNCE loss", f"at epoch {epoch + 1}",
                         f"lower the learning rates (lr={lr}, generator_lr={generator_lr})")
            metrics["adv/mi_nce"] = float(mi_lower_bound(metrics["adv/loss_nce"], k))
            metrics["adv/lr_generator"] = float(lr if generator_lr is None else generator_lr)
            for key, v in metrics.items():
                history.setdefault(key, []).append(v)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    return g, history


__all__ = ["MODES", "ViewLearner", "adversarial_fit", "grad_reverse", "start_generator"]
