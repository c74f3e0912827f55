"""Train and score one view candidate, recorded as one MLflow run.

:func:`run_candidate` is the box every other part calls (``infomin train``, the
Optuna objective, the demo, the view learner's evaluation)::

    views + config -> dataset (uint8 on the device) -> views by index -> ContrastiveModel
        -> InfoNCE training (checkpoint per epoch, kNN monitor) -> frozen features
        -> linear probe (+ one per factor on the toy), alignment / uniformity / tolerance
        -> MLflow run: params, per-epoch and final metrics, view grid, plots, weights (safetensors)

The run records ``K``, ``log K``, ``I_NCE`` and ``I_NCE / log K`` (``mi/*``) and
warns when the bound is saturated (``I_NCE > 0.9 log K``): then the views cannot be
ranked by I_NCE at this batch size (arXiv 2005.10243, Sec. 3; the bound never
exceeds log K).

>>> from infomin.config import TrainConfig
>>> cfg = TrainConfig(epochs=1, batch_size=64, train_subset=256, test_subset=128,
...                   progress=False)                                     # doctest: +SKIP
>>> res = run_candidate("lab_l_ab", cfg)                                  # doctest: +SKIP
>>> sorted(k for k in res.metrics if k.startswith("mi/"))                 # doctest: +SKIP
['mi/k', 'mi/log_k', 'mi/nce', 'mi/ratio']
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from infomin import tracking
from infomin.config import TrainConfig
from infomin.errors import InfominError, SpecError
from infomin.evaluate.probes import knn_accuracy
from infomin.evaluate.scoring import encode_fn, features, geometry, probe_accuracies
from infomin.models import ContrastiveModel
from infomin.objectives import num_candidates
from infomin.protocols.context import (
    CEILING_TAG,
    RunLog,
    ceiling_warning,
    check_channels,
    load_data,
)
from infomin.seeding import make_generator, seed_for, seeded
from infomin.train import ddp
from infomin.train.contrastive import CHECKPOINT, ContrastiveTrainer
from infomin.train.loop import autocast
from infomin.views import build_views, save
from infomin.views.base import ViewGenerator

log = logging.getLogger("infomin")


@dataclass
class CandidateResult:
    """What one training + scoring run produced (``run_id`` is ``None`` off rank 0 under torchrun)."""

    run_id: str | None
    metrics: dict[str, float]
    history: dict[str, list[float]] = field(default_factory=dict)
    views: dict[str, Any] = field(default_factory=dict)
    config: TrainConfig | None = None
    channels: tuple[int, int] = (3, 3)
    form: str = "ntxent"


def run_candidate(views: Any, config: TrainConfig, *, experiment_id: str | None = None,
                  parent_run_id: str | None = None, run_name: str | None = None,
                  tags: Mapping[str, Any] | None = None,
                  on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                  tracking_uri: str | None = None) -> CandidateResult:
    """Train a contrastive model on ``views`` and score it; one MLflow run records everything.

    Args:
        views: a preset name (``"lab_l_ab"``), a YAML path, a ``runs:/`` or ``models:/``
            URI of a learned generator, ``{"source": ...}``, a spec dict
            (``{"kind": "shared_factors", "shared": ["digit"]}`` for the toy's factor pairs)
            or a ``ViewGenerator`` (:func:`infomin.views.resolve_source`).
        config: the :class:`~infomin.config.TrainConfig`.
        experiment_id, parent_run_id, run_name, tags: where the run goes (a study's
            trial is a child of the study's parent run, possibly from another process).
        on_epoch: ``on_epoch(epoch, metrics)`` after each epoch (``metrics`` holds
            ``train/*``, ``mi/*`` and ``eval/knn_acc``); raising ``optuna.TrialPruned``
            stops the run (it ends ``KILLED``) and propagates. Needs ``nproc == 1``.
        tracking_uri: MLflow store (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``).

    Returns:
        :class:`CandidateResult` with the run id, final metrics and per-epoch history.

    Raises:
        SpecError: bad views, dataset, encoder; InfominError: a non-finite loss. The
        MLflow run then ends ``FAILED`` with the tag ``infomin.failure_reason``.
    """
    if not isinstance(config, TrainConfig):
        raise SpecError("config", type(config).__name__, "expected an infomin.config.TrainConfig")
    env = ddp.from_env()
    if env is None and config.nproc > 1:
        if on_epoch is not None:
            raise SpecError("on_epoch", on_epoch, "per-epoch callbacks need nproc=1 "
                            "(they would run in a child process)")
        return _run_spawned(views, config, experiment_id=experiment_id, parent_run_id=parent_run_id,
                            run_name=run_name, tags=tags, tracking_uri=tracking_uri)
    info = env or ddp.SINGLE
    device = ddp.device_for(info, config.resolved_device())
    ddp.init(info, device)
    if not info.is_main:   # torchrun: only rank 0 talks to MLflow
        run_id = ddp.broadcast_object(None)   # collectives in the same order as rank 0
        out = train_and_score(views, config, run=None, info=info, device=device)
        return CandidateResult(run_id=run_id, **out)
    with tracking.start_run(experiment_id=experiment_id, parent_run_id=parent_run_id,
                            run_name=run_name, tags={"infomin.kind": "candidate", **(tags or {})},
                            uri=tracking_uri) as run:
        if info.enabled:
            ddp.broadcast_object(run.run_id)
        out = train_and_score(views, config, run=run, info=info, device=device, on_epoch=on_epoch)
    return CandidateResult(run_id=run.run_id, **out)


def _run_spawned(views: Any, config: TrainConfig, **run_kw: Any) -> CandidateResult:
    """``nproc`` local processes (gloo on CPU, one GPU each on CUDA); rank 0 logs to the run."""
    tracking_uri = tracking.tracking_uri(run_kw.pop("tracking_uri"))
    if config.resolved_device().startswith("cuda") and torch.cuda.device_count() < config.nproc:
        raise SpecError("config.nproc", config.nproc,
                        f"only {torch.cuda.device_count()} GPUs visible (one process per GPU)")
    tags = {"infomin.kind": "candidate", "infomin.nproc": config.nproc, **(run_kw.pop("tags") or {})}
    with tracking.start_run(tags=tags, uri=tracking_uri, **run_kw) as run:
        with tempfile.TemporaryDirectory(prefix="infomin-ddp-") as tmp:
            result_path = Path(tmp) / "result.json"
            views_arg = _picklable_views(views, Path(tmp))
            try:
                ddp.spawn(_spawned_worker, config.nproc,
                          (views_arg, config.to_dict(), run.run_id, tracking_uri, str(result_path)))
            except Exception as e:  # ProcessRaisedException: keep the worker's own last line
                lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
                raise InfominError(f"a training process failed: {lines[-1] if lines else e}") from e
            out = json.loads(result_path.read_text())
    return CandidateResult(run_id=run.run_id, metrics=out["metrics"], history=out["history"],
                           views=out["views"], config=config, channels=tuple(out["channels"]),
                           form=out["form"])


def _picklable_views(views: Any, tmp: Path) -> Any:
    """What a spawned process can rebuild the views from: a path, a URI or a spec dict; a
    generator module with weights is saved (safetensors + YAML) to ``tmp`` first."""
    if isinstance(views, Path):
        return str(views)
    if not isinstance(views, ViewGenerator):
        return views
    if len(views.state_dict()):
        return str(save(views, tmp / "views.yaml"))
    return views.to_spec()


def _spawned_worker(views: Any, config: dict[str, Any], run_id: str, uri: str, result_path: str) -> None:
    cfg = TrainConfig.from_dict(config)
    info = ddp.from_env()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.nproc))
    device = ddp.device_for(info, cfg.resolved_device())
    ddp.init(info, device)
    run = tracking.Run(run_id, uri) if info.is_main else None   # only rank 0 logs
    out = train_and_score(views, cfg, run=run, info=info, device=device)
    if info.is_main:
        Path(result_path).write_text(json.dumps(
            {"metrics": out["metrics"], "history": out["history"], "views": out["views"],
             "channels": list(out["channels"]), "form": out["form"]}))


class _Features:
    """Train/test features of the current model, computed at most once per epoch."""

    def __init__(self, encode: Callable[[Tensor], Tensor], train: Any, test: Any) -> None:
        self.encode, self.train, self.test = encode, train, test
        self.epoch: int | None = None
        self.value: tuple[Tensor, Tensor] | None = None

    def at(self, model: torch.nn.Module, epoch: int) -> tuple[Tensor, Tensor]:
        if self.epoch != epoch or self.value is None:
            model.eval()
            self.value, self.epoch = features(self.encode, self.train, self.test), epoch
        return self.value


def train_and_score(views: Any, config: TrainConfig, *, run: tracking.Run | None,
                    info: ddp.DistInfo, device: str,
                    on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Everything between "a run has started" and "the run ends" (rank 0 has ``run``)."""
    rlog = RunLog(run)
    rlog.config(config)
    spec, generator = build_views(views)
    rlog.views(spec)
    train, test = load_data(config.dataset, root=config.data_root, train_subset=config.train_subset,
                            test_subset=config.test_subset, seed=config.seed, device=device)
    generator = generator.to(device).eval().requires_grad_(False)
    check_channels(generator, train, config.dataset)
    pairs, test_pairs = generator.pairs(train), generator.pairs(test)
    channels = tuple(generator.channels)
    form = config.resolved_loss(channels)
    k = num_candidates(config.batch_size, form)
    steps = len(train) // config.batch_size
    if steps < 1:
        raise SpecError("config.batch_size", config.batch_size,
                        f"larger than the training set ({len(train)} images)")
    amp = config.resolved_amp(device)
    channels_last = config.resolved_channels_last(device)
    with seeded(config.seed):   # weight initialisation draws from torch's global RNG
        model = ContrastiveModel(channels, config.encoder, proj_dim=config.proj_dim, share=config.share)
    trainer = ContrastiveTrainer(
        model, pairs, temperature=config.temperature, form=form, epochs=config.epochs,
        steps_per_epoch=steps, optimizer=config.optimizer, lr=config.lr,
        weight_decay=config.weight_decay, momentum=config.momentum, schedule=config.schedule,
        warmup_epochs=config.warmup_epochs, device=device, amp=amp,
        channels_last=channels_last, compile=config.compile, dist=info, progress=config.progress)
    trainer.seed(make_generator(config.seed))
    if config.resume:
        trainer.load_checkpoint(Path(config.checkpoint_dir) / CHECKPOINT)
        rlog.tags({"infomin.resumed_epoch": trainer.epoch})
        for e in range(trainer.epoch):
            rlog.metrics({kk: v[e] for kk, v in trainer.history.items() if e < len(v)}, step=e)
    rlog.params({"resolved.device": device, "resolved.loss": form, "resolved.amp": amp,
                 "resolved.channels_last": channels_last, "resolved.channels": list(channels),
                 "world_size": info.world_size})
    rlog.metrics({"mi/k": k, "mi/log_k": math.log(k)}, step=0)
    rlog.view_grid(generator, pairs, train, seed=config.seed)

    amp_ctx = functools.partial(autocast, device, amp) if amp else None
    feats = _Features(encode_fn(model, generator, device=device, channels_last=channels_last,
                                autocast=amp_ctx), train, test)

    def monitor(epoch: int) -> dict[str, float]:
        tr, te = feats.at(model, epoch)
        return {"eval/knn_acc": knn_accuracy(tr.to(device), train.labels, te.to(device), test.labels,
                                             k=config.knn_k, temperature=config.knn_temperature)}

    def epoch_done(epoch: int, metrics: dict[str, float]) -> None:
        mi = metrics["train/mi_nce"]   # I_NCE per epoch, so its chart is a curve
        rlog.metrics({**metrics, "mi/nce": mi, "mi/ratio": mi / math.log(k)}, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, dict(metrics))

    trainer.fit(len(train), config.batch_size, rng=None, checkpoint_dir=config.checkpoint_dir,
                evaluate=monitor if config.eval_every else None, eval_every=config.eval_every,
                on_epoch=epoch_done)
    history = {kk: list(v) for kk, v in trainer.history.items()}
    out: dict[str, Any] = {"history": history, "views": spec, "config": config,
                           "channels": channels, "form": form, "metrics": {}}
    if not info.is_main:
        ddp.barrier()
        return out

    # -- final scoring (rank 0) --
    tr, te = feats.at(model, trainer.epoch - 1)
    metrics = probe_accuracies(tr, te, train, test, backend=config.probe, seed=config.seed, device=device,
                               knn_k=config.knn_k, knn_temperature=config.knn_temperature)
    metrics.update(geometry(model, test_pairs, test.labels, rng=make_generator(seed_for(config.seed, "geometry")),
                            device=device, channels_last=channels_last, autocast=amp_ctx))
    mi = history["train/mi_nce"][-1]
    metrics.update({"mi/k": float(k), "mi/log_k": math.log(k), "mi/nce": mi, "mi/ratio": mi / math.log(k),
                    "eval/n_test": float(len(test))})   # the probe's sampling error needs it
    per_epoch = {*history, "mi/nce", "mi/ratio"}
    final = {kk: v for kk, v in metrics.items() if kk not in per_epoch}   # the others are logged already
    metrics.update({kk: v[-1] for kk, v in history.items()})
    msg = ceiling_warning(mi, k)
    if msg:
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
        rlog.tags({CEILING_TAG: msg})
    rlog.metrics(final, step=trainer.epoch - 1)
    if config.plots:
        rlog.training_plots(history, te, test.labels, log_k=math.log(k), seed=config.seed,
                            title=f"{spec.get('kind')} | {config.encoder} | tau={config.temperature}",
                            class_names=train.classes)
    rlog.model(model, encoder=config.encoder, proj_dim=config.proj_dim)
    if info.enabled:
        ddp.barrier()
    out["metrics"] = metrics
    return out


__all__ = ["CandidateResult", "run_candidate", "train_and_score"]
