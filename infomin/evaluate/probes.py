"""Probes on frozen features: the linear probe and the weighted kNN monitor.

The standard protocol of contrastive learning scores a representation by a
linear classifier trained on frozen, standardised encoder features (the
projection head is dropped): "we train a linear classifier on the frozen
features" (SimCLR, arXiv 2002.05709; CMC, arXiv 1906.05849). The cheap
per-epoch monitor is the weighted k-nearest-neighbour classifier of Wu et al.
2018 (InstDisc, arXiv 1805.01978): "the top k nearest neighbours ... vote with
weights exp(s_i / tau)", with cosine similarity s_i, k = 200 and tau = 0.1, as
in solo-learn's ``WeightedKNNClassifier``.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> y = torch.arange(200) % 2
>>> f = torch.randn(200, 8, generator=g) + 4 * y[:, None].float()
>>> linear_probe(f[:100], y[:100], f[100:], y[100:]) > 0.95
True
>>> knn_accuracy(f[:100], y[:100], f[100:], y[100:], k=20) > 0.95
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from infomin.errors import SpecError, check_choice, check_int, check_range

BACKENDS = ("sklearn", "torch")


def _check_pair(feats: Tensor, y: Tensor, name: str) -> None:
    if feats.ndim != 2:
        raise SpecError(f"{name}_feats.shape", tuple(feats.shape), "expected (N, D)")
    if y.ndim != 1 or y.shape[0] != feats.shape[0]:
        raise SpecError(f"{name}_y.shape", tuple(y.shape), f"expected ({feats.shape[0]},)")


@torch.no_grad()
def extract_features(encode: Callable[[Tensor], Tensor], images: Tensor, *,
                     batch_size: int = 512) -> Tensor:
    """Run ``encode`` over uint8 ``images`` (N, C, H, W) in batches; return float32 CPU (N, D).

    ``encode`` receives float batches in [0, 1] on ``images.device``.
    """
    check_int("batch_size", batch_size, 1)
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].float().div_(255)
        out.append(encode(x).float().flatten(1).cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def standardise(train_feats: Tensor, test_feats: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Zero-mean, unit-variance features using the *train* statistics only."""
    mean = train_feats.mean(0, keepdim=True)
    std = train_feats.std(0, unbiased=False, keepdim=True).clamp_min(eps)
    return (train_feats - mean) / std, (test_feats - mean) / std


def linear_probe(train_feats: Tensor, train_y: Tensor, test_feats: Tensor, test_y: Tensor, *,
                 backend: str = "sklearn", seed: int = 0, C: float = 1.0,
                 max_iter: int = 1000) -> float:
    """Test accuracy of a multinomial logistic regression on standardised frozen features.

    Both backends minimise the same objective, scikit-learn's
    ``C * sum_i CE(W h_i + b, y_i) + ||W||^2 / 2`` (the bias is not penalised):

    * ``"sklearn"``: :class:`sklearn.linear_model.LogisticRegression` (L-BFGS, seeded);
    * ``"torch"``: full-batch L-BFGS on the features' device, for large feature sets
      or a GPU (sklearn runs on one CPU core and copies to NumPy).

    Args:
        train_feats, test_feats: (N, D) and (M, D) features (any float dtype, any device).
        train_y, test_y: (N,) and (M,) integer labels.
    Returns:
        accuracy in [0, 1] on the test set.
    """
    check_choice("backend", backend, BACKENDS)
    check_range("C", C, 0, low_open=True)
    _check_pair(train_feats, train_y, "train")
    _check_pair(test_feats, test_y, "test")
    if torch.unique(train_y).numel() < 2:
        raise SpecError("train_y", f"{torch.unique(train_y).numel()} class",
                        "a linear probe needs at least 2 classes")
    tr, te = standardise(train_feats.float(), test_feats.float())
    if backend == "sklearn":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        clf.fit(tr.cpu().numpy(), train_y.cpu().numpy())
        pred = clf.predict(te.cpu().numpy())
        return float(np.mean(pred == test_y.cpu().numpy()))
    return _torch_probe(tr, train_y, te, test_y, seed=seed, C=C, max_iter=max_iter)


def _torch_probe(tr: Tensor, train_y: Tensor, te: Tensor, test_y: Tensor, *, seed: int, C: float,
                 max_iter: int) -> float:
    # Hand-written because no library offers a GPU full-batch multinomial logistic regression
    # with sklearn's exact objective; L-BFGS + strong Wolfe converges like sklearn's lbfgs.
    classes, yi = torch.unique(train_y, return_inverse=True)
    n, d = tr.shape
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    w = (torch.randn(len(classes), d, generator=g) * 1e-3).to(tr.device).requires_grad_(True)
    b = torch.zeros(len(classes), device=tr.device, requires_grad=True)
    yi = yi.to(tr.device)
    lam = 1.0 / (2.0 * C * n)  # sklearn's objective divided by C * n
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6,
                            tolerance_change=1e-9, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(tr @ w.T + b, yi) + lam * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = classes.to(te.device)[(te @ w.T + b).argmax(1)]
    return float((pred.cpu() == test_y.cpu()).float().mean())


@torch.no_grad()
def knn_accuracy(train_feats: Tensor, train_y: Tensor, test_feats: Tensor, test_y: Tensor,
                 k: int = 200, temperature: float = 0.1, *, chunk_size: int = 1024) -> float:
    """Weighted kNN accuracy (InstDisc, arXiv 1805.01978), batched over test chunks.

    Each test feature votes with its ``k`` most cosine-similar train features,
    neighbour ``i`` weighing ``exp(s_i / temperature)`` for its class; the class
    with the largest total wins.

    Args:
        train_feats: (N, D), train_y: (N,) integer labels.
        test_feats: (M, D), test_y: (M,).
        k: neighbours (clipped to N). temperature: tau of the weights.
    Returns:
        accuracy in [0, 1].
    """
    check_int("k", k, 1)
    check_range("temperature", temperature, 0, low_open=True)
    check_int("chunk_size", chunk_size, 1)
    _check_pair(train_feats, train_y, "train")
    _check_pair(test_feats, test_y, "test")
    classes, yi = torch.unique(train_y, return_inverse=True)
    device = train_feats.device
    bank = F.normalize(train_feats.float(), dim=1)          # (N, D)
    yi = yi.to(device)
    k = min(k, bank.shape[0])
    correct = 0
    for i in range(0, test_feats.shape[0], chunk_size):
        q = F.normalize(test_feats[i:i + chunk_size].to(device).float(), dim=1)   # (m, D)
        sim, nn_idx = (q @ bank.T).topk(k, dim=1)                                 # (m, k)
        w = (sim / temperature).exp()                                             # (m, k)
        votes = torch.zeros(q.shape[0], len(classes), device=device)
        votes.scatter_add_(1, yi[nn_idx], w)                                      # (m, C)
        pred = classes.to(device)[votes.argmax(1)]
        correct += int((pred.cpu() == test_y[i:i + chunk_size].cpu()).sum())
    return correct / max(1, test_feats.shape[0])
