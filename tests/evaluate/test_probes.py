"""Probes: the linear probe against scikit-learn, the kNN against a slow per-sample reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from infomin.errors import SpecError
from infomin.evaluate.probes import extract_features, knn_accuracy, linear_probe, standardise


def _blobs(n: int, d: int, classes: int, sep: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * sep
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, d, generator=g)
    return x, y


def _knn_reference(train, train_y, test, test_y, k, t):
    """InstDisc's weighted kNN, one test sample at a time, written from the paper."""
    correct = 0
    classes = sorted(set(train_y.tolist()))
    for q, yq in zip(test, test_y, strict=True):
        sims = [(float(F.cosine_similarity(q, b, dim=0)), int(yb)) for b, yb in zip(train, train_y, strict=True)]
        sims.sort(key=lambda s: -s[0])
        votes = dict.fromkeys(classes, 0.0)
        for s, yb in sims[:k]:
            votes[yb] += math.exp(s / t)
        pred = max(classes, key=lambda c: votes[c])
        correct += pred == int(yq)
    return correct / len(test)


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
def test_linear_probe_separable(backend):
    # Linearly separable by construction: the label is the sign of a fixed projection, with a margin.
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 10, generator=g)
    w = torch.randn(10, generator=g)
    s = x @ w
    keep = s.abs() > 0.5
    x, y = x[keep], (s[keep] > 0).long()
    acc = linear_probe(x[:300], y[:300], x[300:], y[300:], backend=backend)
    assert acc >= 0.98


def test_torch_probe_matches_sklearn():
    x, y = _blobs(800, 16, 5, sep=0.8, seed=2)   # overlapping classes: accuracy well below 1
    kw = dict(C=0.5)
    a_sk = linear_probe(x[:500], y[:500], x[500:], y[500:], backend="sklearn", **kw)
    a_t = linear_probe(x[:500], y[:500], x[500:], y[500:], backend="torch", **kw)
    assert 0.4 < a_sk < 0.99
    assert abs(a_sk - a_t) <= 0.01  # same convex objective, same optimum


def test_linear_probe_chance_on_noise():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(600, 8, generator=g)
    y = torch.randint(0, 4, (600,), generator=g)
    assert linear_probe(x[:400], y[:400], x[400:], y[400:]) < 0.4


def test_standardise_uses_train_statistics():
    tr = torch.tensor([[0.0], [2.0]])
    te = torch.tensor([[4.0]])
    a, b = standardise(tr, te)
    assert torch.allclose(a, torch.tensor([[-1.0], [1.0]]))
    assert torch.allclose(b, torch.tensor([[3.0]]))


@pytest.mark.parametrize("k,t", [(1, 0.1), (7, 0.1), (25, 0.5), (500, 0.07)])
def test_knn_matches_reference(k, t):
    x, y = _blobs(160, 6, 4, sep=1.0, seed=4)
    fast = knn_accuracy(x[:120], y[:120], x[120:], y[120:], k=k, temperature=t, chunk_size=7)
    slow = _knn_reference(x[:120], y[:120], x[120:], y[120:], min(k, 120), t)
    assert fast == pytest.approx(slow)


def test_knn_closed_form():
    # k=1 on exact copies: every test point finds itself -> accuracy 1; label noise-free.
    x, y = _blobs(50, 5, 3, sep=0.1, seed=5)
    assert knn_accuracy(x, y, x, y, k=1) == 1.0
    # Non-contiguous labels are fine (classes are looked up, not assumed 0..C-1).
    assert knn_accuracy(x, y * 10 + 3, x, y * 10 + 3, k=1) == 1.0


def test_extract_features_batches():
    imgs = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    out = extract_features(lambda x: x.mean((2, 3)), imgs, batch_size=3)
    assert out.shape == (10, 3)
    assert torch.allclose(out, imgs.float().div(255).mean((2, 3)))


def test_bad_inputs():
    x, y = _blobs(20, 3, 2, sep=1.0, seed=6)
    with pytest.raises(SpecError, match="backend"):
        linear_probe(x, y, x, y, backend="svm")
    with pytest.raises(SpecError, match="train_y.shape"):
        knn_accuracy(x, y[:5], x, y)
    with pytest.raises(SpecError, match="2 classes"):
        linear_probe(x, torch.zeros(20, dtype=torch.long), x, y)
