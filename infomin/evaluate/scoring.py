"""Score a trained two-view model: linear probes (one per factor), kNN, and its geometry.

The evaluation protocol of contrastive learning, as one function over plain
objects (no MLflow, no dataset loading: the protocols layer does those):

* the encoders are frozen and the heads dropped; each image is encoded through the
  view generator's deterministic evaluation inputs (``generator.eval_inputs``; for
  CMC the two encoders' features are concatenated) by :func:`encode_fn`;
* a linear probe on standardised features scores the label and, for datasets with
  known generative factors (the toy), every factor (``eval/linear_acc/<factor>``);
  the weighted kNN monitor scores the label;
* alignment and uniformity (Wang & Isola 2020) and tolerance (Wang & Liu 2021)
  describe the projections of views of held-out images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from infomin.evaluate.metrics import alignment, tolerance, uniformity
from infomin.evaluate.probes import extract_features, knn_accuracy, linear_probe

#: test images used for alignment / uniformity / tolerance
GEOMETRY_PAIRS = 1024


class Model(Protocol):
    """What scoring needs of a model (:class:`infomin.models.ContrastiveModel` has it)."""

    def representation(self, u1: Tensor, u2: Tensor) -> Tensor: ...

    def __call__(self, v1: Tensor, v2: Tensor) -> tuple[Tensor, Tensor]: ...


class EvalInputs(Protocol):
    """What scoring needs of a view generator (any :class:`infomin.views.ViewGenerator`)."""

    def eval_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]: ...


def encode_fn(model: Model, generator: EvalInputs, *, device: str | torch.device,
              channels_last: bool = False,
              autocast: Callable[[], Any] | None = None) -> Callable[[Tensor], Tensor]:
    """``x -> h``: frozen features of clean images ``x`` (B, C, H, W) in [0, 1].

    ``autocast``: a context factory wrapped around the forward pass (mixed precision on CUDA).
    """

    def encode(x: Tensor) -> Tensor:
        u1, u2 = generator.eval_inputs(x.to(device))
        if channels_last:
            u1 = u1.contiguous(memory_format=torch.channels_last)
            u2 = u2.contiguous(memory_format=torch.channels_last)
        if autocast is None:
            return model.representation(u1, u2)
        with autocast():
            return model.representation(u1, u2).float()

    return encode


@torch.no_grad()
def features(encode: Callable[[Tensor], Tensor], train: Any, test: Any) -> tuple[Tensor, Tensor]:
    """Train and test features (float32, CPU) of two datasets' images through ``encode``."""
    return extract_features(encode, train.images).float(), extract_features(encode, test.images).float()


def probe_accuracies(train_feats: Tensor, test_feats: Tensor, train: Any, test: Any, *,
                     backend: str = "sklearn", seed: int = 0, device: str | torch.device = "cpu",
                     knn_k: int = 200, knn_temperature: float = 0.1) -> dict[str, float]:
    """``eval/linear_acc``, ``eval/knn_acc`` and, with known factors, ``eval/linear_acc/<factor>``.

    ``train``/``test`` are :class:`infomin.data.ImageDataset`-like (``labels`` (N,) and
    ``factors``, name -> (N,)); a factor identical to the label reuses its probe; a
    constant factor is skipped.
    """
    probe_dev = device if backend == "torch" else "cpu"
    tr, te = train_feats.to(probe_dev), test_feats.to(probe_dev)
    out = {"eval/linear_acc": linear_probe(tr, train.labels.to(probe_dev), te, test.labels.to(probe_dev),
                                           backend=backend, seed=seed),
           "eval/knn_acc": knn_accuracy(train_feats.to(device), train.labels, test_feats.to(device),
                                        test.labels, k=knn_k, temperature=knn_temperature)}
    if set(train.factors) - {"label"}:
        for name, y in train.factors.items():
            y_te = test.factors[name]
            if torch.unique(y).numel() < 2:
                continue
            if torch.equal(y, train.labels) and torch.equal(y_te, test.labels):
                out[f"eval/linear_acc/{name}"] = out["eval/linear_acc"]   # the label factor
                continue
            out[f"eval/linear_acc/{name}"] = linear_probe(
                tr, y.to(probe_dev), te, y_te.to(probe_dev), backend=backend, seed=seed)
    return out


@torch.no_grad()
def geometry(model: Model, pairs: Callable[[Tensor, torch.Generator], Any], labels: Tensor, *,
             rng: torch.Generator, device: str | torch.device, n: int = GEOMETRY_PAIRS,
             channels_last: bool = False, autocast: Callable[[], Any] | None = None) -> dict[str, float]:
    """Alignment, uniformity and tolerance of the projections of ``n`` view pairs of held-out items.

    ``pairs``: a pair source over the test set; ``labels``: its labels (for tolerance).
    """
    n = min(n, labels.shape[0])
    idx = torch.arange(n, device=device)
    v1, v2, _ = pairs(idx, rng)
    if channels_last:
        v1 = v1.contiguous(memory_format=torch.channels_last)
        v2 = v2.contiguous(memory_format=torch.channels_last)
    if autocast is None:
        z1, z2 = model(v1, v2)
    else:
        with autocast():
            z1, z2 = model(v1, v2)
    z1, z2 = z1.float(), z2.float()
    return {"eval/alignment": float(alignment(z1, z2)),
            "eval/uniformity": float(0.5 * (uniformity(z1) + uniformity(z2))),
            "eval/tolerance": float(tolerance(z1, labels[:n].to(z1.device)))}


__all__ = ["GEOMETRY_PAIRS", "encode_fn", "features", "geometry", "probe_accuracies"]
