"""Figures of one run: training curves with the I_NCE ceiling, and a t-SNE feature map.

Matplotlib with the non-interactive Agg backend; each function returns a
``Figure`` (the caller saves or logs it, then closes it).

>>> fig = plot_curves({"train/loss": [3.0, 2.5], "train/mi_nce": [0.5, 1.0]}, log_k=4.8)
>>> len(fig.axes)
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402


def plot_curves(history: Mapping[str, Sequence[float]], *, log_k: float | None = None,
                title: str | None = None) -> Figure:
    """Loss (left) and I_NCE = log K - L_NCE with its ceiling log K (right), per epoch.

    ``history`` maps metric names (``train/loss``, ``train/mi_nce``, optionally
    ``eval/knn_acc`` drawn on a twin axis) to per-epoch values.
    """
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    loss = list(history.get("train/loss", []))
    mi = list(history.get("train/mi_nce", []))
    ep = np.arange(1, len(loss) + 1)
    ax_l.plot(ep, loss, marker="o", color="C0")
    ax_l.set(xlabel="epoch", ylabel="InfoNCE loss", title="training loss")
    ax_m.plot(np.arange(1, len(mi) + 1), mi, marker="o", color="C1", label="I_NCE")
    if log_k is not None:
        ax_m.axhline(log_k, color="k", ls="--", lw=1, label=f"log K = {log_k:.2f}")
    ax_m.set(xlabel="epoch", ylabel="nats", title="I_NCE = log K - L (lower bound)")
    knn = [v for v in history.get("eval/knn_acc", []) if v is not None]
    if knn:
        ax_k = ax_m.twinx()
        ax_k.plot(np.arange(1, len(knn) + 1), knn, marker="s", color="C2", label="kNN acc")
        ax_k.set_ylabel("kNN accuracy")
        ax_k.set_ylim(0, 1)
        ax_k.legend(loc="lower right", fontsize=8)
    ax_m.legend(loc="upper left", fontsize=8)
    for ax in (ax_l, ax_m):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def tsne_embedding(feats: Tensor, *, seed: int = 0, perplexity: float = 30.0,
                   max_iter: int = 500, pca_dim: int = 50) -> np.ndarray:
    """2-D t-SNE (scikit-learn, seeded) of (N, D) features -> (N, 2).

    Features are first reduced to ``pca_dim`` dimensions by PCA, as van der Maaten &
    Hinton (2008) recommend; this and ``max_iter=500`` keep 600 points to seconds on a CPU.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = feats.float().cpu().numpy()
    if x.shape[1] > pca_dim and x.shape[0] > pca_dim:
        x = PCA(pca_dim, random_state=seed).fit_transform(x)
    perplexity = float(min(perplexity, max(2.0, (x.shape[0] - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto", max_iter=max_iter).fit_transform(x)


def plot_feature_map(feats: Tensor, labels: Tensor, *, seed: int = 0, max_points: int = 600,
                     class_names: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """t-SNE of (N, D) test features, points coloured by their (N,) label.

    At most ``max_points`` points (a seeded subset) keep it to seconds on a CPU.
    """
    n = feats.shape[0]
    if n > max_points:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(n, generator=g)[:max_points]
        feats, labels = feats[idx], labels[idx]
    emb = tsne_embedding(feats, seed=seed)
    y = labels.cpu().numpy()
    fig, ax = plt.subplots(figsize=(5.2, 4.6), constrained_layout=True)
    classes = np.unique(y)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        m = y == c
        name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(c)
        ax.scatter(emb[m, 0], emb[m, 1], s=6, color=cmap(i % cmap.N), label=name)
    if len(classes) <= 20:
        ax.legend(markerscale=2.5, fontsize=7, loc="best", ncol=2 if len(classes) > 10 else 1)
    ax.set(xticks=[], yticks=[], title=title or "t-SNE of test features")
    return fig
