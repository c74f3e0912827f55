"""Train and score one view candidate, recorded as one MLflow run.

:func:`run_candidate` is the box every other part calls (the CLI's ``infomin
train``, the Optuna objective, the demo)::

    views + config ─> dataset (uint8 on the device) ─> views by index ─> ContrastiveModel
        ─> InfoNCE training (checkpoint per epoch, kNN monitor) ─> frozen features
        ─> linear probe (+ one per factor on the toy), alignment / uniformity / tolerance
        ─> MLflow run: params, per-epoch and final metrics, plots, weights (safetensors)

The run records ``K``, ``log K``, ``I_NCE`` and ``I_NCE / log K`` (``mi/*``)
and warns when the bound is saturated (``I_NCE > 0.9 log K``): then the views
cannot be ranked by I_NCE at this batch size (arXiv 2005.10243, Sec. 3; the
bound can never exceed log K).

>>> from infomin.config import TrainConfig
>>> cfg = TrainConfig(epochs=1, batch_size=64, train_subset=256, test_subset=128,
...                   progress=False)                                     # doctest: +SKIP
>>> res = run_candidate("lab_l_ab", cfg)                                  # doctest: +SKIP
>>> sorted(k for k in res.metrics if k.startswith("mi/"))                 # doctest: +SKIP
['mi/k', 'mi/log_k', 'mi/nce', 'mi/ratio']
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from infomin.config import TrainConfig
from infomin.errors import InfominError, SpecError
from infomin.train import ddp

log = logging.getLogger("infomin")

SHARED_FACTORS = "shared_factors"
NEAR_CEILING = 0.9
CEILING_TAG = "infomin.warning.mi_near_ceiling"
EVAL_PAIRS = 1024          # test images used for alignment / uniformity / tolerance
FEATURE_MAP_POINTS = 600   # t-SNE points


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


# -- views ---------------------------------------------------------------------------------
def resolve_views(views: Any) -> tuple[dict[str, Any], Any]:
    """``views`` (preset name, YAML path, ``runs:/``/``models:/`` URI, ``{"source": one of those}``,
    dict or generator) ->
    ``(spec, generator)``; the generator is ``None`` for the toy's ``shared_factors`` spec,
    which needs the dataset (:class:`infomin.data.toy.FactorPairs`)."""
    import infomin.views as V

    if isinstance(views, V.ViewGenerator):
        return views.to_spec(), views
    if isinstance(views, Mapping) and "source" in views and "kind" not in views:
        # {"source": preset | path | URI}: how a study's suggest() proposes a saved generator
        if set(views) != {"source"}:
            extra = sorted(set(views) - {"source"})[0]
            raise SpecError(f"views.{extra}", views[extra],
                            "a {'source': ...} view takes no other keys (its spec is in the file)")
        return resolve_views(str(views["source"]))
    if isinstance(views, (str, Path)):
        s = str(views)
        if s.startswith(("runs:/", "models:/")):
            gen = V.load(s)
            return {**gen.to_spec(), "source": s}, gen
        spec = V.load_spec(views)          # SpecError for a missing file / unknown preset
        path = Path(views) if Path(views).is_file() else V.presets().get(s)
        if path is not None and _is_saved_generator(path):
            gen = V.load(path)
            return {**gen.to_spec(), "source": str(path)}, gen
        views = spec
    if not isinstance(views, Mapping):
        raise SpecError("views", views, "expected a preset name, a YAML path, a dict or a ViewGenerator")
    spec = dict(views)
    spec.pop("source", None)
    if spec.get("kind") == SHARED_FACTORS:
        extra = set(spec) - {"kind", "shared"}
        if extra:
            raise SpecError(f"views.{sorted(extra)[0]}", spec[sorted(extra)[0]],
                            "unknown parameter of kind 'shared_factors'", choices=["shared"])
        return spec, None
    return spec, V.build(spec)


def _is_saved_generator(path: Path) -> bool:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("meta"), dict) and "weights" in doc["meta"]


def eval_inputs(generator: Any, x: Tensor) -> tuple[Tensor, Tensor]:
    """The deterministic inputs of each encoder at evaluation time, from clean images ``x``.

    Evaluation drops the stochastic parts of a view generator and keeps its
    deterministic colour transform (CMC: "we concatenate the features of the L and
    ab encoders", arXiv 1906.05849, Sec. 4.1): a generator with an ``eval_views``
    method decides itself; a generator whose ``sample`` draws nothing (a channel
    split, a learned colour flow) is applied as is; a ``pair`` applies only its
    colour ``split``; otherwise both encoders see ``x``.
    """
    if generator is None:
        return x, x
    if hasattr(generator, "eval_views"):
        return tuple(generator.eval_views(x))
    split = getattr(generator, "split", None)
    if split is not None and hasattr(split, "apply") and hasattr(split, "sample"):
        generator = split
    params = generator.sample(x, torch.Generator().manual_seed(0))
    if not params:
        return tuple(generator.apply(x, params))
    return x, x


def feature_fn(model: Any, generator: Any, *, channels_last: bool = False) -> Callable[[Tensor], Tensor]:
    """``x -> h``: frozen encoder features, the head dropped; the two encoders of a CMC model
    see their own view inputs and their features are concatenated."""

    def encode(x: Tensor) -> Tensor:
        u1, u2 = eval_inputs(generator, x)
        if channels_last:
            u1 = u1.contiguous(memory_format=torch.channels_last)
            u2 = u2.contiguous(memory_format=torch.channels_last)
        if model.shared:
            return model.features(u1, 0)
        return torch.cat([model.features(u1, 0), model.features(u2, 1)], dim=1)

    return encode


# -- the run -------------------------------------------------------------------------------
def run_candidate(views: Any, config: TrainConfig, *, experiment_id: str | None = None,
                  parent_run_id: str | None = None, run_name: str | None = None,
                  tags: Mapping[str, Any] | None = None,
                  on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                  tracking_uri: str | None = None) -> CandidateResult:
    """Train a contrastive model on ``views`` and score it; one MLflow run records everything.

    Args:
        views: a preset name (``"lab_l_ab"``), a YAML path, a ``runs:/`` or ``models:/``
            URI of a learned generator, a spec dict (``{"kind": "shared_factors",
            "shared": ["digit"]}`` for the toy's factor pairs) or a ``ViewGenerator``.
        config: the :class:`~infomin.config.TrainConfig`.
        experiment_id, parent_run_id, run_name, tags: where the run goes (a study's
            trial is a child of the study's parent run, possibly from another process).
        on_epoch: ``on_epoch(epoch, metrics)`` after each epoch (``metrics`` holds
            ``train/*`` and ``eval/knn_acc``); raising ``optuna.TrialPruned`` stops the
            run (it ends ``KILLED``) and propagates. Needs ``nproc == 1``.
        tracking_uri: MLflow store (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``).

    Returns:
        :class:`CandidateResult` with the run id, final metrics and per-epoch history.

    Raises:
        SpecError: bad views, dataset, encoder; InfominError: a non-finite loss. The
        MLflow run then ends ``FAILED`` with the tag ``infomin.failure_reason``.
    """
    from infomin import tracking

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
        out = _execute(views, config, run=None, info=info, device=device, on_epoch=None)
        return CandidateResult(run_id=run_id, **out)
    with tracking.start_run(experiment_id=experiment_id, parent_run_id=parent_run_id,
                            run_name=run_name, tags={"infomin.kind": "candidate", **(tags or {})},
                            uri=tracking_uri) as run:
        if info.enabled:
            ddp.broadcast_object(run.run_id)
        out = _execute(views, config, run=run, info=info, device=device, on_epoch=on_epoch)
    return CandidateResult(run_id=run.run_id, **out)


def _run_spawned(views: Any, config: TrainConfig, **run_kw: Any) -> CandidateResult:
    """``nproc`` local processes (gloo on CPU, one GPU each on CUDA); rank 0 logs to the run."""
    from infomin import tracking

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
    generator object with weights is saved (safetensors + YAML) to ``tmp`` first."""
    if isinstance(views, Path):
        return str(views)
    if isinstance(views, (str, Mapping)):
        return views
    if len(views.state_dict()):
        from infomin.views import save

        return str(save(views, tmp / "views.yaml"))
    return views.to_spec()


def _spawned_worker(views: Any, config: dict[str, Any], run_id: str, uri: str, result_path: str) -> None:
    cfg = TrainConfig.from_dict(config)
    info = ddp.from_env()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.nproc))
    device = ddp.device_for(info, cfg.resolved_device())
    ddp.init(info, device)
    run = None
    if info.is_main:   # only rank 0 imports mlflow
        from infomin import tracking

        run = tracking.Run(run_id, uri)
    out = _execute(views, cfg, run=run, info=info, device=device, on_epoch=None)
    if info.is_main:
        Path(result_path).write_text(json.dumps(
            {"metrics": out["metrics"], "history": out["history"], "views": out["views"],
             "channels": list(out["channels"]), "form": out["form"]}))


def _execute(views: Any, config: TrainConfig, *, run: Any, info: ddp.DistInfo, device: str,
             on_epoch: Callable[[int, dict[str, float]], None] | None) -> dict[str, Any]:
    """Everything between "a run has started" and "log the results" (rank 0 has ``run``)."""
    from infomin import data as D
    from infomin.models import ContrastiveModel
    from infomin.objectives import num_candidates
    from infomin.seeding import make_generator, seed_everything
    from infomin.train.contrastive import CHECKPOINT, ContrastiveTrainer
    from infomin.views import flatten

    main = run is not None
    if main:
        run.log_params(config.to_dict())
        run.log_text(config.to_yaml(), "config.yaml")
    spec, generator = resolve_views(views)
    if main:
        from infomin.views import dump_spec

        run.log_params({f"views.{k}": v for k, v in flatten(spec).items()})
        run.log_text(dump_spec(spec), "views.yaml")

    # data: one uint8 tensor on the device, batches by index
    train = D.load(config.dataset, split="train", root=config.data_root,
                   subset=config.train_subset, seed=config.seed).to(device)
    test = D.load(config.dataset, split="test", root=config.data_root,
                  subset=config.test_subset, seed=config.seed).to(device)
    if generator is None:
        from infomin.data.toy import FactorPairs

        pairs = FactorPairs(train, shared=tuple(spec.get("shared", ("digit",))))
        test_pairs = FactorPairs(test, shared=tuple(spec.get("shared", ("digit",))))
        channels = (train.channels, train.channels)
        pair_fn = pairs
    else:
        generator = generator.to(device).eval().requires_grad_(False)
        channels = tuple(generator.channels)
        in_c = getattr(generator, "in_channels", None)
        if in_c is not None and in_c != train.channels:
            raise SpecError("views", spec.get("kind"), f"expects {in_c}-channel images; "
                            f"dataset {config.dataset!r} has {train.channels}")

        def pair_fn(idx: Tensor, rng: torch.Generator):
            return generator(train.batch(idx), generator=rng)

        def test_pairs(idx: Tensor, rng: torch.Generator):
            return generator(test.batch(idx), generator=rng)

    form = config.resolved_loss(channels)
    k = num_candidates(config.batch_size, form)
    steps = len(train) // config.batch_size
    if steps < 1:
        raise SpecError("config.batch_size", config.batch_size,
                        f"larger than the training set ({len(train)} images)")
    amp = config.resolved_amp(device)
    channels_last = config.resolved_channels_last(device)
    seed_everything(config.seed)   # weight init draws from torch's global RNG
    model = ContrastiveModel(channels, config.encoder, proj_dim=config.proj_dim, share=config.share)
    trainer = ContrastiveTrainer(
        model, pair_fn, temperature=config.temperature, form=form, epochs=config.epochs,
        steps_per_epoch=steps, optimizer=config.optimizer, lr=config.lr,
        weight_decay=config.weight_decay, momentum=config.momentum,
        warmup_epochs=config.warmup_epochs, device=device, amp=amp,
        channels_last=channels_last, compile=config.compile, dist=info,
        progress=config.progress)
    trainer.seed(make_generator(config.seed))
    if config.resume:
        trainer.load_checkpoint(Path(config.checkpoint_dir) / CHECKPOINT)
        if main:
            run.set_tags({"infomin.resumed_epoch": trainer.epoch})
            for e in range(trainer.epoch):
                run.log_metrics({kk: v[e] for kk, v in trainer.history.items() if e < len(v)}, step=e)
    if main:
        run.log_params({"resolved.device": device, "resolved.loss": form, "resolved.amp": amp,
                        "resolved.channels_last": channels_last, "resolved.channels": list(channels),
                        "world_size": info.world_size})
        run.log_metrics({"mi/k": k, "mi/log_k": math.log(k)}, step=0)

    encode = feature_fn(model, generator, channels_last=channels_last)
    cache: dict[str, Any] = {}

    def features() -> tuple[Tensor, Tensor]:
        from infomin.evaluate import extract_features

        model.eval()
        with _amp(device, amp):
            cache["train"] = extract_features(encode, train.images).float()
            cache["test"] = extract_features(encode, test.images).float()
        cache["epoch"] = trainer.epoch
        return cache["train"], cache["test"]

    def final_features() -> tuple[Tensor, Tensor]:
        if cache.get("epoch") == trainer.epoch:   # the monitor ran after the last epoch
            return cache["train"], cache["test"]
        return features()

    def monitor(epoch: int) -> dict[str, float]:
        from infomin.evaluate import knn_accuracy

        tr, te = features()
        acc = knn_accuracy(tr.to(device), train.labels, te.to(device), test.labels,
                           k=config.knn_k, temperature=config.knn_temperature)
        return {"eval/knn_acc": acc}

    def epoch_done(epoch: int, metrics: dict[str, float]) -> None:
        if main:
            run.log_metrics(metrics, step=epoch)
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
    metrics = _score(model, train, test, test_pairs, final_features, config=config, device=device,
                     amp=amp, channels_last=channels_last)
    mi = history["train/mi_nce"][-1]
    metrics.update({"mi/k": float(k), "mi/log_k": math.log(k), "mi/nce": mi,
                    "mi/ratio": mi / math.log(k),
                    "eval/n_test": float(len(test))})   # the probes' test-set size (sampling error)
    final = {kk: v for kk, v in metrics.items() if kk not in history}   # per-epoch ones are logged
    metrics.update({kk: v[-1] for kk, v in history.items()})
    msg = ceiling_warning(mi, k)
    if msg:
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
        run.set_tags({CEILING_TAG: msg})
    run.log_metrics(final, step=config.epochs)
    _log_artifacts(run, model, generator, pair_fn, train, cache["test"], test.labels, history,
                   k=k, spec=spec, config=config, device=device)
    if info.enabled:
        ddp.barrier()
    out["metrics"] = metrics
    return out


def ceiling_warning(mi: float, k: int, frac: float = NEAR_CEILING) -> str | None:
    """The warning for an I_NCE estimate above ``frac * log K`` (a saturated bound), else ``None``.

    >>> ceiling_warning(1.0, 255) is None, ceiling_warning(5.2, 255) is not None
    (True, True)
    """
    from infomin.objectives import near_ceiling

    if not near_ceiling(mi, k, frac):
        return None
    return (f"I_NCE = {mi:.3f} is above {frac:.0%} of its ceiling log K = {math.log(k):.3f} "
            f"(K = {k}): the bound is saturated; use a larger batch before comparing views by I_NCE")


def _amp(device: str, amp: bool):
    from contextlib import nullcontext

    from infomin.train.contrastive import autocast_dtype

    if not amp:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=autocast_dtype(device))


@torch.no_grad()
def _score(model: Any, train: Any, test: Any, test_pairs: Callable, features: Callable, *,
           config: TrainConfig, device: str, amp: bool, channels_last: bool) -> dict[str, float]:
    """Linear probe(s) on frozen features; alignment, uniformity, tolerance on test views."""
    from infomin.evaluate import knn_accuracy, linear_probe
    from infomin.evaluate.metrics import alignment, tolerance, uniformity
    from infomin.seeding import make_generator

    model.eval()
    tr, te = features()
    probe_dev = device if config.probe == "torch" else "cpu"
    out = {"eval/linear_acc": linear_probe(tr.to(probe_dev), train.labels.to(probe_dev),
                                           te.to(probe_dev), test.labels.to(probe_dev),
                                           backend=config.probe, seed=config.seed),
           "eval/knn_acc": knn_accuracy(tr.to(device), train.labels, te.to(device), test.labels,
                                        k=config.knn_k, temperature=config.knn_temperature)}
    factors = getattr(train, "factors", None) or {}
    if set(factors) - {"label"}:
        for name, y in factors.items():
            y_te = test.factors[name]
            if torch.unique(y).numel() < 2:
                continue
            if torch.equal(y, train.labels) and torch.equal(y_te, test.labels):
                out[f"eval/linear_acc/{name}"] = out["eval/linear_acc"]   # the label factor
                continue
            out[f"eval/linear_acc/{name}"] = linear_probe(
                tr.to(probe_dev), y.to(probe_dev), te.to(probe_dev), y_te.to(probe_dev),
                backend=config.probe, seed=config.seed)
    # representation geometry on the unit sphere, on views of test images (fixed seed)
    n = min(EVAL_PAIRS, len(test))
    idx = torch.arange(n, device=test.images.device)
    v1, v2, _ = test_pairs(idx, make_generator(config.seed + 1))
    if channels_last:
        v1 = v1.contiguous(memory_format=torch.channels_last)
        v2 = v2.contiguous(memory_format=torch.channels_last)
    with _amp(device, amp):
        z1, z2 = model(v1, v2)
    z1, z2 = z1.float(), z2.float()
    out["eval/alignment"] = float(alignment(z1, z2))
    out["eval/uniformity"] = float(0.5 * (uniformity(z1) + uniformity(z2)))
    out["eval/tolerance"] = float(tolerance(z1, test.labels[:n].to(z1.device)))
    return out


def _log_artifacts(run: Any, model: Any, generator: Any, pair_fn: Callable, train: Any,
                   test_feats: Tensor, test_labels: Tensor, history: dict[str, list[float]], *,
                   k: int, spec: dict[str, Any], config: TrainConfig, device: str) -> None:
    """Plots (curves, t-SNE, view grid) and the final weights (safetensors) of the run."""
    from safetensors.torch import save_file, save_model

    from infomin.evaluate.plots import plot_curves, plot_feature_map

    with tempfile.TemporaryDirectory(prefix="infomin-art-") as tmp:
        if config.plots:
            title = f"{spec.get('kind')} | {config.encoder} | tau={config.temperature}"
            run.log_figure(plot_curves(history, log_k=math.log(k), title=title), "plots/curves.png")
            names = list(getattr(train, "classes", []) or []) or None
            run.log_figure(plot_feature_map(test_feats, test_labels, seed=config.seed,
                                            max_points=FEATURE_MAP_POINTS, class_names=names),
                           "plots/features.png")
            grid = Path(tmp) / "views.png"
            if _view_grid(generator, pair_fn, train, grid, seed=config.seed):
                run.log_artifact(grid, "plots")
        meta = {"encoder": config.encoder, "channels": json.dumps(list(model.channels)),
                "proj_dim": str(config.proj_dim), "shared": str(model.shared).lower(),
                "format": "infomin.contrastive_model/1"}
        model_cpu = model.to("cpu")
        save_model(model_cpu, str(Path(tmp) / "model.safetensors"), metadata=meta)
        enc = {k_: v.contiguous() for k_, v in model_cpu.encoders.state_dict().items()}
        save_file(enc, str(Path(tmp) / "encoder.safetensors"), metadata=meta)
        run.log_artifact(Path(tmp) / "model.safetensors", "model")
        run.log_artifact(Path(tmp) / "encoder.safetensors", "model")
        model.to(device)


def _view_grid(generator: Any, pair_fn: Callable, dataset: Any, path: Path, *, seed: int,
               n: int = 8) -> bool:
    """A PNG of ``n`` images and their two views (:func:`infomin.views.render.save_grid`)."""
    from infomin.seeding import make_generator
    from infomin.views import render

    idx = torch.arange(min(n, len(dataset)), device=dataset.images.device)
    x = dataset.batch(idx)
    v1, v2, _ = pair_fn(idx, make_generator(seed))
    names = render.view_channel_names(generator) if generator is not None else (None, None)
    kind = generator.kind if generator is not None else "shared_factors"
    render.save_grid(x, (v1, v2), path, n=n, title=f"views: {kind}",
                     channel_names=names if names != (None, None) else None)
    return path.is_file()


def load_model(run_id: str, *, uri: str | None = None, device: str = "cpu"):
    """Rebuild a run's :class:`~infomin.models.ContrastiveModel` from its artifacts (safetensors).

    Returns ``(model, generator_or_None, spec, config)``.
    """
    import yaml
    from safetensors import safe_open
    from safetensors.torch import load_model as st_load

    from infomin import tracking
    from infomin.models import ContrastiveModel

    tmp = Path(tempfile.mkdtemp(prefix="infomin-eval-"))
    try:
        try:
            tracking.get_run(run_id, uri=uri)
        except Exception as e:  # MlflowException: no such run
            raise SpecError("run_id", run_id, f"no such MLflow run in {tracking.tracking_uri(uri)}") from e
        local = {}
        for name in ("config.yaml", "views.yaml", "model/model.safetensors"):
            try:
                local[name] = tracking.download_artifacts(run_id, name, tmp, uri=uri)
            except Exception as e:
                raise SpecError("run_id", run_id, f"the run has no artifact {name!r} "
                                "(did it finish?)") from e
        cfg = TrainConfig.from_dict(yaml.safe_load(local["config.yaml"].read_text()))
        spec = yaml.safe_load(local["views.yaml"].read_text())
        source = spec.pop("source", None) if isinstance(spec, dict) else None
        _, generator = resolve_views(source if source else spec)
        wpath = local["model/model.safetensors"]
        with safe_open(str(wpath), "pt") as f:
            meta = f.metadata() or {}
        channels = tuple(json.loads(meta["channels"]))
        model = ContrastiveModel(channels, meta["encoder"], proj_dim=int(meta["proj_dim"]),
                                 share=meta["shared"] == "true")
        st_load(model, str(wpath))
        model.to(device).eval()
        return model, generator, spec, cfg
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate_run(run_id: str, *, uri: str | None = None, probe: str | None = None,
                 device: str = "auto", test_subset: int | None = None,
                 log: bool = False) -> dict[str, float]:
    """Re-probe a finished run's saved encoder (``infomin eval RUN_ID``): linear probe(s), kNN,
    alignment, uniformity, tolerance. ``log=True`` adds them to the run (next step)."""
    from infomin import data as D
    from infomin import tracking

    dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    model, generator, spec, cfg = load_model(run_id, uri=uri, device=dev)
    if probe is not None:
        cfg = cfg.replace(probe=probe)
    if test_subset is not None:
        cfg = cfg.replace(test_subset=test_subset)
    train = D.load(cfg.dataset, split="train", root=cfg.data_root, subset=cfg.train_subset,
                   seed=cfg.seed).to(dev)
    test = D.load(cfg.dataset, split="test", root=cfg.data_root, subset=cfg.test_subset,
                  seed=cfg.seed).to(dev)
    if generator is None:
        from infomin.data.toy import FactorPairs

        test_pairs = FactorPairs(test, shared=tuple(spec.get("shared", ("digit",))))
    else:
        generator = generator.to(dev).eval().requires_grad_(False)

        def test_pairs(idx: Tensor, rng: torch.Generator):
            return generator(test.batch(idx), generator=rng)

    encode = feature_fn(model, generator)

    def features() -> tuple[Tensor, Tensor]:
        from infomin.evaluate import extract_features

        return extract_features(encode, train.images), extract_features(encode, test.images)

    metrics = _score(model, train, test, test_pairs, features, config=cfg, device=dev, amp=False,
                     channels_last=False)
    if log:
        tracking.Run(run_id, uri).log_metrics(metrics, step=cfg.epochs + 1)
    return metrics
