"""What every protocol does around its training: load the data onto the device, record a run.

The protocols (:mod:`.candidate`: train and score one candidate; :mod:`.learn`: learn
views, freeze, retrain and compare) are the only code that opens MLflow runs and loads
datasets for a run. They share:

* :func:`load_data`: a dataset's train and test splits as seeded subsets, relabelled
  to a factor if asked, moved once to the training device (views are then made there
  in batch, by index);
* :class:`RunLog`: one run's records (config, views, metrics, figures, weights), a
  no-op off rank 0 under DDP, so protocol code reads the same on every rank;
* :func:`ceiling_warning`: the I_NCE saturation warning (the bound never exceeds log K).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from infomin import data as D
from infomin import tracking
from infomin.config import TrainConfig
from infomin.errors import SpecError
from infomin.objectives import near_ceiling
from infomin.seeding import make_generator
from infomin.views import dump_spec, flatten, render
from infomin.views.base import PairSource, ViewGenerator

NEAR_CEILING = 0.9
CEILING_TAG = "infomin.warning.mi_near_ceiling"
FEATURE_MAP_POINTS = 600   # t-SNE points
VIEW_GRID_ROWS = 8
MODEL_FORMAT = "infomin.contrastive_model/1"


def load_data(dataset: str, *, root: str | None, train_subset: int | None, test_subset: int | None,
              seed: int, device: str, label: str | None = None) -> tuple[D.ImageDataset, D.ImageDataset]:
    """Train and test splits of ``dataset`` (seeded class-balanced subsets) on ``device``.

    ``label`` makes a factor of the dataset the label (the toy's ``"hue"``), raising
    :class:`SpecError` with the valid factors otherwise.
    """
    train = D.load(dataset, split="train", root=root, subset=train_subset, seed=seed)
    test = D.load(dataset, split="test", root=root, subset=test_subset, seed=seed)
    if label is not None:
        train, test = train.relabel(label), test.relabel(label)
    return train.to(device), test.to(device)


def ceiling_warning(mi: float, k: int, frac: float = NEAR_CEILING) -> str | None:
    """The warning for an I_NCE estimate above ``frac * log K`` (a saturated bound), else ``None``.

    >>> ceiling_warning(1.0, 255) is None, ceiling_warning(5.2, 255) is not None
    (True, True)
    """
    if not near_ceiling(mi, k, frac):
        return None
    return (f"I_NCE = {mi:.3f} is above {frac:.0%} of its ceiling log K = {math.log(k):.3f} "
            f"(K = {k}): the bound is saturated; use a larger batch before comparing views by I_NCE")


class RunLog:
    """The records of one MLflow run, or nothing (``run=None``: ranks other than 0)."""

    def __init__(self, run: tracking.Run | None) -> None:
        self.run = run

    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run.run_id

    def config(self, config: TrainConfig) -> None:
        if self.run is not None:
            self.run.log_params(config.to_dict())
            self.run.log_text(config.to_yaml(), "config.yaml")

    def views(self, spec: Mapping[str, Any]) -> None:
        if self.run is not None:
            self.run.log_params({f"views.{k}": v for k, v in flatten(dict(spec)).items()})
            self.run.log_text(dump_spec(dict(spec)), "views.yaml")

    def params(self, params: Mapping[str, Any]) -> None:
        if self.run is not None:
            self.run.log_params(params)

    def tags(self, tags: Mapping[str, Any]) -> None:
        if self.run is not None:
            self.run.set_tags(tags)

    def metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if self.run is not None:
            self.run.log_metrics(metrics, step=step)

    def view_grid(self, generator: ViewGenerator, pairs: PairSource, dataset: D.ImageDataset, *,
                  seed: int, n: int = VIEW_GRID_ROWS) -> None:
        """``plots/views.png``: ``n`` training images and their two views (source | v1 | v2)."""
        if self.run is None:
            return
        idx = torch.arange(min(n, len(dataset)), device=dataset.images.device)
        v1, v2, _ = pairs(idx, make_generator(seed))
        names = generator.channel_names
        with tempfile.TemporaryDirectory(prefix="infomin-grid-") as tmp:
            path = render.save_grid(dataset.batch(idx), (v1, v2), Path(tmp) / "views.png", n=n,
                                    title=f"views: {generator.kind}",
                                    channel_names=None if names == (None, None) else names)
            self.run.log_artifact(path, "plots")

    def training_plots(self, history: Mapping[str, Sequence[float]], test_feats: torch.Tensor,
                       test_labels: torch.Tensor, *, log_k: float, title: str, seed: int,
                       class_names: Sequence[str] | None = None) -> None:
        """``plots/curves.png`` (loss and I_NCE against its log K ceiling) and ``plots/features.png`` (t-SNE)."""
        if self.run is None:
            return
        from infomin.evaluate.plots import (  # matplotlib: heavy, plots only
            plot_curves,
            plot_feature_map,
        )

        self.run.log_figure(plot_curves(dict(history), log_k=log_k, title=title), "plots/curves.png")
        self.run.log_figure(plot_feature_map(test_feats, test_labels, seed=seed, max_points=FEATURE_MAP_POINTS,
                                             class_names=list(class_names) if class_names else None),
                            "plots/features.png")

    def model(self, model: torch.nn.Module, *, encoder: str, proj_dim: int) -> None:
        """The final weights as safetensors: ``model/model.safetensors`` (encoders + heads) and
        ``model/encoder.safetensors`` (encoders only), with what rebuilding them needs as metadata."""
        if self.run is None:
            return
        from safetensors.torch import save_file, save_model

        meta = {"encoder": encoder, "channels": json.dumps(list(model.channels)),
                "proj_dim": str(proj_dim), "shared": str(model.shared).lower(), "format": MODEL_FORMAT}
        device = next(model.parameters()).device
        model_cpu = model.to("cpu")
        try:
            with tempfile.TemporaryDirectory(prefix="infomin-model-") as tmp:
                save_model(model_cpu, str(Path(tmp) / "model.safetensors"), metadata=meta)
                enc = {k: v.contiguous() for k, v in model_cpu.encoders.state_dict().items()}
                save_file(enc, str(Path(tmp) / "encoder.safetensors"), metadata=meta)
                self.run.log_artifact(Path(tmp) / "model.safetensors", "model")
                self.run.log_artifact(Path(tmp) / "encoder.safetensors", "model")
        finally:
            model.to(device)


def check_channels(generator: ViewGenerator, dataset: D.ImageDataset, dataset_name: str) -> None:
    """Raise :class:`SpecError` when the generator expects other channels than the dataset has."""
    if generator.in_channels is not None and generator.in_channels != dataset.channels:
        raise SpecError("views", generator.kind, f"expects {generator.in_channels}-channel images; "
                        f"dataset {dataset_name!r} has {dataset.channels}")


__all__ = ["CEILING_TAG", "RunLog", "ceiling_warning", "check_channels", "load_data"]
