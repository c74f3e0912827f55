"""Re-probe a finished run: rebuild its model from the run's artifacts and score it again.

``infomin eval RUN_ID`` calls :func:`evaluate_run`; :func:`load_model` gives the
model (safetensors, no pickle), its view generator, spec and config for your own code.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from safetensors import safe_open
from safetensors.torch import load_model as st_load

from infomin import tracking
from infomin.config import TrainConfig, resolve_device
from infomin.errors import SpecError
from infomin.evaluate.scoring import encode_fn, features, geometry, probe_accuracies
from infomin.models import ContrastiveModel
from infomin.protocols.context import load_data
from infomin.seeding import make_generator, seed_for
from infomin.views import build_views
from infomin.views.base import ViewGenerator
from infomin.views.sources import SOURCE_KEY

ARTIFACTS = ("config.yaml", "views.yaml", "model/model.safetensors")


def load_model(run_id: str, *, uri: str | None = None,
               device: str = "cpu") -> tuple[ContrastiveModel, ViewGenerator, dict[str, Any], TrainConfig]:
    """Rebuild a run's :class:`~infomin.models.ContrastiveModel` from its artifacts (safetensors).

    Returns ``(model, generator, spec, config)``; the model is in eval mode on ``device``.
    """
    tmp = Path(tempfile.mkdtemp(prefix="infomin-eval-"))
    try:
        try:
            tracking.get_run(run_id, uri=uri)
        except Exception as e:  # MlflowException: no such run
            raise SpecError("run_id", run_id, f"no such MLflow run in {tracking.tracking_uri(uri)}") from e
        local = {}
        for name in ARTIFACTS:
            try:
                local[name] = tracking.download_artifacts(run_id, name, tmp, uri=uri)
            except Exception as e:
                raise SpecError("run_id", run_id, f"the run has no artifact {name!r} (did it finish?)") from e
        cfg = TrainConfig.from_dict(yaml.safe_load(local["config.yaml"].read_text()))
        spec = yaml.safe_load(local["views.yaml"].read_text())
        source = spec.get(SOURCE_KEY) if isinstance(spec, dict) else None
        _, generator = build_views({SOURCE_KEY: source} if source else spec)
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
    dev = resolve_device(device)
    model, generator, _, cfg = load_model(run_id, uri=uri, device=dev)
    if probe is not None:
        cfg = cfg.replace(probe=probe)
    if test_subset is not None:
        cfg = cfg.replace(test_subset=test_subset)
    train, test = load_data(cfg.dataset, root=cfg.data_root, train_subset=cfg.train_subset,
                            test_subset=cfg.test_subset, seed=cfg.seed, device=dev)
    generator = generator.to(dev).eval().requires_grad_(False)
    tr, te = features(encode_fn(model, generator, device=dev), train, test)
    metrics = probe_accuracies(tr, te, train, test, backend=cfg.probe, seed=cfg.seed, device=dev,
                               knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature)
    metrics.update(geometry(model, generator.pairs(test), test.labels, device=dev,
                            rng=make_generator(seed_for(cfg.seed, "geometry"))))
    if log:
        tracking.Run(run_id, uri).log_metrics(metrics, step=cfg.epochs + 1)
    return metrics


__all__ = ["evaluate_run", "load_model"]
