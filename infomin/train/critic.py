"""A fair I_NCE measurement: a fresh critic trained on frozen views at a fixed budget.

Comparing the information two sets of views share needs the same estimator for
both: :func:`fresh_critic` trains a new :class:`~infomin.models.ContrastiveModel`
(seeded initialisation, Adam at a constant rate) for a fixed number of steps on the
views of a frozen generator with the contrastive trainer; :func:`estimate_mi` reads
the bound ``I_NCE = log K - L_NCE`` out on held-out views. Two generators measured
with the same arguments differ only in their views, so the difference of the
estimates is the difference the views make (at fixed K, tau, encoder and budget;
the bound can never exceed log K). :func:`probe_views` is the paper's "reset the
encoders, retrain, probe" protocol in miniature (no MLflow run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from infomin.config import resolve_device
from infomin.errors import SpecError, check_int
from infomin.evaluate.probes import linear_probe
from infomin.evaluate.scoring import encode_fn, features
from infomin.models import ContrastiveModel
from infomin.objectives import default_form, info_nce, mi_lower_bound, num_candidates
from infomin.seeding import make_generator, seed_for, seeded
from infomin.train.contrastive import ContrastiveTrainer
from infomin.train.loop import epoch_batches
from infomin.views.base import ViewGenerator


def build_critic(channels: tuple[int, int], encoder: str = "convnet",
                 encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64, *,
                 seed: int) -> ContrastiveModel:
    """Encoder(s) + head(s) for views of ``channels``, initialised from ``seed`` (global RNG untouched)."""
    with seeded(seed):
        return ContrastiveModel(channels, encoder, proj_dim=proj_dim, encoder_kwargs=dict(encoder_kwargs or {}))


def fresh_critic(generator: ViewGenerator, train: Any, *, steps: int = 100, batch_size: int = 128,
                 temperature: float = 0.1, lr: float = 1e-3, seed: int = 0, device: str = "auto",
                 encoder: str = "convnet", encoder_kwargs: Mapping[str, Any] | None = None,
                 proj_dim: int = 64) -> ContrastiveModel:
    """A new critic trained with InfoNCE for ``steps`` Adam steps (constant rate) on the views
    the frozen ``generator`` makes of ``train`` (no heads, no labels: the paper's "reset
    the encoders" step in miniature). Data order and views are drawn from ``seed``."""
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 2)
    device = resolve_device(device)
    n = len(train)
    if n < batch_size:
        raise SpecError("batch_size", batch_size, f"larger than the training set ({n} images)")
    g = generator.to(device)
    was_training = g.training
    g.eval()
    channels = tuple(g.channels)
    critic = build_critic(channels, encoder, encoder_kwargs, proj_dim, seed=seed)
    per_epoch = n // batch_size
    trainer = ContrastiveTrainer(critic, g.pairs(train), temperature=temperature,
                                 form=default_form(channels), epochs=math.ceil(steps / per_epoch),
                                 steps_per_epoch=per_epoch, optimizer="adam", lr=lr,
                                 schedule="constant", max_steps=steps, device=device, progress=False)
    try:
        trainer.fit(n, batch_size, rng=make_generator(seed))
    finally:
        g.train(was_training)
    return critic


@torch.no_grad()
def estimate_mi(generator: ViewGenerator, train: Any, test: Any | None = None, *, steps: int = 100,
                batch_size: int = 128, temperature: float = 0.1, lr: float = 1e-3, seed: int = 0,
                device: str = "auto", encoder: str = "convnet",
                encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64,
                eval_batches: int = 4) -> dict[str, float]:
    """I_NCE of ``generator``'s views under a :func:`fresh_critic` trained for ``steps`` steps.

    The bound ``log K - L_NCE`` is averaged over ``eval_batches`` batches of views of
    ``test`` (default ``train``), without gradients, with BatchNorm in batch-statistics
    mode as in training (after a short budget the running averages still lag the
    weights, which would bias the estimate down).

    Returns ``{"mi": I_NCE, "loss": L_NCE, "k": K, "log_k": log K}``.
    """
    device = resolve_device(device)
    with torch.enable_grad():
        critic = fresh_critic(generator, train, steps=steps, batch_size=batch_size,
                              temperature=temperature, lr=lr, seed=seed, device=device, encoder=encoder,
                              encoder_kwargs=encoder_kwargs, proj_dim=proj_dim)
    g = generator.to(device)
    was_training = g.training
    g.eval()
    form = default_form(tuple(g.channels))
    k = num_candidates(batch_size, form)
    data = train if test is None else test
    if len(data) < batch_size:
        raise SpecError("batch_size", batch_size, f"larger than the evaluation set ({len(data)} images)")
    critic.train()
    rng = make_generator(seed_for(seed, "mi-readout"))
    pairs = g.pairs(data)
    losses = []
    for idx in epoch_batches(len(data), batch_size, rng)[:eval_batches]:
        v1, v2, _ = pairs(idx.to(device), rng)
        losses.append(float(info_nce(*critic(v1, v2), temperature, form=form)))
    g.train(was_training)
    loss = sum(losses) / len(losses)
    return {"mi": float(mi_lower_bound(loss, k)), "loss": loss, "k": float(k), "log_k": math.log(k)}


def probe_views(generator: ViewGenerator, train: Any, test: Any, *, steps: int = 100,
                batch_size: int = 128, temperature: float = 0.1, lr: float = 1e-3, seed: int = 0,
                device: str = "auto", encoder: str = "convnet",
                encoder_kwargs: Mapping[str, Any] | None = None, proj_dim: int = 64) -> float:
    """Linear-probe accuracy of a :func:`fresh_critic` trained on ``generator``'s views.

    A light, in-memory version of the paper's protocol (no MLflow run, no plots): the
    frozen encoders' features of the clean images' evaluation inputs (both encoders,
    concatenated) are probed on ``train`` -> ``test`` labels.
    """
    device = resolve_device(device)
    critic = fresh_critic(generator, train, steps=steps, batch_size=batch_size,
                          temperature=temperature, lr=lr, seed=seed, device=device, encoder=encoder,
                          encoder_kwargs=encoder_kwargs, proj_dim=proj_dim).eval()
    g = generator.to(device).eval()
    tr, te = features(encode_fn(critic, g, device=device), train, test)
    return float(linear_probe(tr, train.labels.cpu(), te, test.labels.cpu(), seed=seed))


__all__ = ["build_critic", "estimate_mi", "fresh_critic", "probe_views"]
