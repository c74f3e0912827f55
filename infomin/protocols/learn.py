"""InfoMin's view-learning protocol: learn views, measure them, freeze them, retrain, compare.

The paper's protocol (Tian et al. 2020, arXiv 2005.10243, §4.1), for each seed of a
:class:`~infomin.config.LearnViewsConfig`, inside one parent MLflow run:

1. learn g adversarially (:func:`infomin.train.adversarial.adversarial_fit`) in a child
   run ``adversarial seed=s`` that logs ``adv/*`` per epoch;
2. measure I_NCE of the start views and of the learned views with *fresh* critics at
   the same budget (:func:`infomin.train.critic.estimate_mi`): ``mi/before``, ``mi/after``;
3. save g (safetensors + YAML) and log it to the run (``runs:/<id>/view_generator``),
   registering the first seed's (``models:/<name>@<alias>``);
4. with ``evaluate``: freeze g, *reset* the encoders, train fresh ones without heads on
   the start views and on the learned views (:func:`infomin.protocols.run_candidate`,
   two child runs), and read out their linear probes (``eval/linear_acc/start``,
   ``.../learned``).

The parent run gets the mean and standard deviation of every figure over seeds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infomin import tracking
from infomin.config import LearnViewsConfig, resolve_device
from infomin.data import balanced_indices
from infomin.errors import SpecError
from infomin.models import build_encoder
from infomin.protocols.candidate import run_candidate
from infomin.protocols.context import load_data
from infomin.train.adversarial import adversarial_fit, start_generator
from infomin.train.critic import estimate_mi
from infomin.views import flatten, save
from infomin.views.base import ViewGenerator
from infomin.views.hub import log_view_generator

EXPERIMENT = "infomin-learn-views"


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

    config: LearnViewsConfig
    seeds: list[SeedResult]
    summary: dict[str, float]
    experiment_id: str | None = None
    parent_run_id: str | None = None
    registered: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def generator(self) -> ViewGenerator:
        """The first seed's learned generator."""
        return self.seeds[0].generator

    def table(self) -> list[dict[str, float]]:
        """One row per seed: I_NCE before/after (fresh critic) and probe accuracy start/learned."""
        keys = ("mi/before", "mi/after", "eval/linear_acc/start", "eval/linear_acc/learned",
                "mi/nce/start", "mi/nce/learned")
        return [{"seed": s.seed, **{k: s.metrics[k] for k in keys if k in s.metrics}} for s in self.seeds]


def summarize(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """``<key>/mean`` and ``<key>/std`` (sample standard deviation; 0 for one row) of every key."""
    out: dict[str, float] = {}
    for key in sorted({k for r in rows for k in r}):
        vals = [r[key] for r in rows if key in r]
        out[f"{key}/mean"] = statistics.fmean(vals)
        out[f"{key}/std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return out


def _seed_path(out: Path, seed: int, first: bool) -> Path:
    return out if first else out.with_name(f"{out.with_suffix('').name}-seed{seed}.yaml")


def learn_views(config: LearnViewsConfig, *, out: str | Path | None = None,
                register_as: str | None = None, alias: str = "current",
                experiment: str = EXPERIMENT, tracking_uri: str | None = None,
                echo: Callable[[str], None] | None = None) -> LearnResult:
    """Run the view-learning protocol (module docstring) for every seed of ``config``.

    Args:
        config: the learner, its data and its evaluation.
        out: where the first seed's generator is saved (``PATH.yaml`` + ``PATH.safetensors``;
            other seeds go to ``PATH-seed<s>.yaml``); ``None``: logged to the runs only.
        register_as, alias: register the first seed's generator in the MLflow model registry
            as ``models:/<register_as>@<alias>``.
        experiment, tracking_uri: where the runs go.
        echo: called with one line per finished step (the CLI prints them).
    """
    if not isinstance(config, LearnViewsConfig):
        raise SpecError("config", type(config).__name__, "expected an infomin.config.LearnViewsConfig")
    start_generator(config.generator)                    # a generator without weights fails here
    build_encoder(config.encoder, 1, **config.encoder_kwargs)  # so does an unknown encoder
    say = echo or (lambda _msg: None)
    device = resolve_device(config.device)
    exp_id = tracking.get_or_create_experiment(experiment, uri=tracking_uri)
    results: list[SeedResult] = []
    registered: dict[str, Any] = {}
    params = flatten(config.to_dict())   # generator.kind, eval.epochs, ...
    with tracking.start_run(experiment_id=exp_id, run_name=f"learn-views {config.mode}",
                            tags={"infomin.kind": "learn-views"}, uri=tracking_uri) as parent:
        parent.log_params(params)
        for s in config.seeds:
            first = s == config.seeds[0]
            res, info = _learn_one(config, s, device=device, exp_id=exp_id, parent_id=parent.run_id,
                                   out=None if out is None else _seed_path(Path(out), s, first),
                                   register_as=register_as if first else None, alias=alias,
                                   tracking_uri=tracking_uri, say=say)
            registered = info if first else registered
            results.append(res)
        summary = summarize([{k: v for k, v in r.metrics.items() if k.startswith(("mi/", "eval/"))}
                             for r in results])
        parent.log_metrics(summary, step=0)
    return LearnResult(config=config, seeds=results, summary=summary, experiment_id=exp_id,
                       parent_run_id=parent.run_id, registered=registered)


def _learn_one(config: LearnViewsConfig, seed: int, *, device: str, exp_id: str, parent_id: str,
               out: Path | None, register_as: str | None, alias: str, tracking_uri: str | None,
               say: Callable[[str], None]) -> tuple[SeedResult, dict[str, Any]]:
    """Steps 1-4 of the protocol for one seed; returns the result and the registry entry."""
    train, test = load_data(config.dataset, root=config.data_root, train_subset=config.train_subset,
                            test_subset=config.test_subset, seed=seed, device=device, label=config.label)
    semi = config.mode == "semi-supervised"
    labelled = (balanced_indices(train.labels.cpu(), min(config.labels, len(train)), seed=seed)
                if semi else None)
    start = start_generator(config.generator, seed).to(device)
    registered: dict[str, Any] = {}
    with tracking.start_run(experiment_id=exp_id, parent_run_id=parent_id, run_name=f"adversarial seed={seed}",
                            uri=tracking_uri, tags={"infomin.kind": "adversarial", "infomin.seed": seed}) as run:
        run.log_params({**flatten(config.to_dict()), "seed": seed})
        t0 = time.perf_counter()
        g, history = adversarial_fit(
            config.generator, train, mode=config.mode, epochs=config.epochs, batch_size=config.batch_size,
            labelled=labelled, lr=config.lr, generator_lr=config.generator_lr,
            classifier_lr=config.classifier_lr, betas=config.betas, temperature=config.temperature,
            ce_weight=config.ce_weight, adversary_scale=config.adversary_scale,
            critic_steps=config.critic_steps, update=config.update, seed=seed, device=device, encoder=config.encoder,
            encoder_kwargs=config.encoder_kwargs, proj_dim=config.proj_dim, amp=config.amp,
            progress=config.progress, on_epoch=lambda e, m: run.log_metrics(m, step=e))
        g.eval().requires_grad_(False)
        metrics: dict[str, float] = {"adv/seconds": time.perf_counter() - t0}
        mi_kw = dict(steps=config.mi_steps, batch_size=config.batch_size, temperature=config.temperature,
                     lr=config.lr, seed=seed, device=device, encoder=config.encoder,
                     encoder_kwargs=config.encoder_kwargs, proj_dim=config.proj_dim)
        before, after = estimate_mi(start, train, test, **mi_kw), estimate_mi(g, train, test, **mi_kw)
        metrics.update({"mi/before": before["mi"], "mi/after": after["mi"],
                        "mi/k": before["k"], "mi/log_k": before["log_k"]})
        say(f"seed {seed}: I_NCE (fresh critic, K={int(before['k'])}) "
            f"before {before['mi']:.3f} -> after {after['mi']:.3f} (log K {before['log_k']:.3f})")
        if out is not None:
            prov = {"run_id": run.run_id, "dataset": config.dataset, "label": config.label or "labels",
                    "seed": seed, "mode": config.mode, "epochs": config.epochs,
                    "labels": config.labels if semi else 0,
                    "mi_before": before["mi"], "mi_after": after["mi"]}
            out = save(g, out, provenance=prov)
            registered = log_view_generator(out, run_id=run.run_id, uri=tracking_uri,
                                            register_as=register_as, alias=alias)
        run.log_metrics(metrics, step=config.epochs)
    res = SeedResult(seed=seed, generator=g, history=history, metrics=metrics, run_id=run.run_id, path=out)
    if config.evaluate:
        _freeze_retrain_compare(res, start, config, exp_id=exp_id, parent_id=parent_id,
                                tracking_uri=tracking_uri)
        tracking.Run(run.run_id, tracking_uri).log_metrics(
            {k: v for k, v in res.metrics.items() if k.startswith(("eval/", "mi/nce/"))}, step=config.epochs)
        say(f"seed {seed}: linear probe start {res.metrics['eval/linear_acc/start']:.3f} -> "
            f"learned {res.metrics['eval/linear_acc/learned']:.3f}")
    return res, registered


def _freeze_retrain_compare(res: SeedResult, start: ViewGenerator, config: LearnViewsConfig, *,
                            exp_id: str, parent_id: str, tracking_uri: str | None) -> None:
    """Train fresh encoders on the start and the learned views (g frozen) and probe both."""
    cfg = config.eval_config(seed=res.seed)
    learned: Any = res.path if res.path is not None else res.generator
    for name, views in (("start", start), ("learned", learned)):
        cand = run_candidate(views, cfg, experiment_id=exp_id, parent_run_id=parent_id,
                             run_name=f"{name} views seed={res.seed}", tracking_uri=tracking_uri,
                             tags={"infomin.kind": f"learn-views/{name}", "infomin.seed": res.seed,
                                   "infomin.adversarial_run": res.run_id or ""})
        # with a chosen label, the headline probe is that factor's (the runs log every factor)
        key = f"eval/linear_acc/{config.label}"
        key = key if config.label and key in cand.metrics else "eval/linear_acc"
        res.metrics[f"eval/linear_acc/{name}"] = cand.metrics[key]
        res.metrics[f"mi/nce/{name}"] = cand.metrics["mi/nce"]
        for k, v in cand.metrics.items():
            if k.startswith("eval/linear_acc/"):
                res.metrics[f"{k}/{name}"] = v
        setattr(res, f"{name}_run_id", cand.run_id)


__all__ = ["EXPERIMENT", "LearnResult", "SeedResult", "learn_views", "summarize"]
