"""Probe time at 10k x 512 features: the linear probe's two backends, and the kNN monitor vs sklearn.

* **Linear probe**: :func:`infomin.evaluate.probes.linear_probe` with
  ``backend="sklearn"`` (``LogisticRegression``, L-BFGS, the baseline) and
  ``backend="torch"`` (full-batch L-BFGS in torch, same objective);
* **kNN monitor** (k = 200, tau = 0.1, cosine, weights ``exp(s / tau)``; InstDisc,
  arXiv 1805.01978): :func:`infomin.evaluate.probes.knn_accuracy` against
  ``sklearn.neighbors.KNeighborsClassifier(metric="cosine", algorithm="brute")`` with
  the same weights, so both compute the same classifier.

Accuracies are printed beside the times so that speed is not bought with accuracy.

Features are synthetic but shaped like a contrastive encoder's: 10 Gaussian class
clusters in 512-D, a shared low-rank nuisance (rank 32) on top of isotropic noise,
then a ReLU (encoder features come out of ReLU + average pooling), seeded. The
cluster separation is set so that a linear probe lands near 80 %, where the
optimiser has real work to do.

Run: ``python bench/probe.py`` (full) or ``--quick`` (smoke test, tiny sizes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, parse_args, parser, print_table, time_calls  # noqa: E402

CLASSES = 10
K, TAU = 200, 0.1
FULL = dict(n_train=10_000, n_test=10_000, dim=512, repeats=3, warmup=1)
QUICK = dict(n_train=1_000, n_test=500, dim=64, repeats=1, warmup=0)


def synthetic_features(n: int, dim: int, *, rng: torch.Generator, means: Tensor,
                       nuisance: Tensor) -> tuple[Tensor, Tensor]:
    """``n`` features (n, dim) and labels (n,): ReLU(class mean + low-rank nuisance + noise)."""
    y = torch.arange(n) % CLASSES
    y = y[torch.randperm(n, generator=rng)]
    z = torch.randn(n, nuisance.shape[0], generator=rng)                 # (n, r)
    noise = torch.randn(n, dim, generator=rng)                            # (n, dim)
    h = means[y] + z @ nuisance + noise                                   # (n, dim)
    return torch.relu(h), y


def make_data(n_train: int, n_test: int, dim: int, seed: int = 0):
    rng = torch.Generator().manual_seed(seed)
    # mean distances ~ 3.8 * sqrt(2) and a rank-32 nuisance of std 2 along each of its
    # directions, whatever dim: the linear probe lands near 0.8 at 10k x 512
    means = 3.8 / dim ** 0.5 * torch.randn(CLASSES, dim, generator=rng)   # (C, dim)
    nuisance = 2.0 / dim ** 0.5 * torch.randn(32, dim, generator=rng)     # (r, dim)
    tr = synthetic_features(n_train, dim, rng=rng, means=means, nuisance=nuisance)
    te = synthetic_features(n_test, dim, rng=rng, means=means, nuisance=nuisance)
    return (*tr, *te)


def sklearn_knn(tr: Tensor, ytr: Tensor, te: Tensor, yte: Tensor) -> float:
    """sklearn's weighted kNN with the monitor's weights: ``exp(s / tau)``, ``s = 1 - d``."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(K, len(tr)), metric="cosine", algorithm="brute",
                               weights=lambda d: np.exp((1.0 - d) / TAU))
    clf.fit(tr.numpy(), ytr.numpy())
    return float(np.mean(clf.predict(te.numpy()) == yte.numpy()))


def timed(fn, repeats: int, warmup: int) -> tuple[float, float]:
    """(median seconds, the result of the last call)."""
    out: list[float] = []
    times = time_calls(lambda: out.append(fn()), repeats=repeats, warmup=warmup)
    return float(np.median(times)), out[-1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(__doc__.splitlines()[0]), argv)
    cfg = QUICK if args.quick else FULL
    from infomin.evaluate.probes import knn_accuracy, linear_probe

    tr, ytr, te, yte = make_data(cfg["n_train"], cfg["n_test"], cfg["dim"])
    reps, warm = cfg["repeats"], cfg["warmup"]
    print(banner("Probes: linear probe backends and the kNN monitor", {
        "features": f"synthetic clusters, train {tuple(tr.shape)}, test {tuple(te.shape)}, "
                    f"{CLASSES} classes, float32",
        "protocol": f"median of {reps} timed call(s) after {warm} warm-up call(s)",
        "mode": "quick (smoke test: figures meaningless)" if args.quick else "full",
    }))

    rows = []
    for backend in ("sklearn", "torch"):
        s, acc = timed(lambda b=backend: linear_probe(tr, ytr, te, yte, backend=b, seed=0),
                       reps, warm)
        rows.append({"linear probe": f"linear_probe(backend={backend!r})", "seconds": s,
                     "test accuracy": acc})
        print(f"  linear {backend}: {s:.2f} s, acc {acc:.4f}", file=sys.stderr, flush=True)
    print_table(f"Linear probe, {cfg['n_train']:,} x {cfg['dim']} features", rows,
                ratio_of="seconds", lower_is_better=True)

    knn_rows = []
    s, acc = timed(lambda: sklearn_knn(tr, ytr, te, yte), reps, warm)
    knn_rows.append({"kNN (k=200, tau=0.1)": "sklearn KNeighborsClassifier(cosine, brute)",
                     "seconds": s, "test accuracy": acc})
    s, acc = timed(lambda: knn_accuracy(tr, ytr, te, yte, k=K, temperature=TAU), reps, warm)
    knn_rows.append({"kNN (k=200, tau=0.1)": "infomin knn_accuracy", "seconds": s,
                     "test accuracy": acc})
    print_table(f"kNN monitor, {cfg['n_train']:,} train x {cfg['n_test']:,} test x {cfg['dim']}",
                knn_rows, ratio_of="seconds", lower_is_better=True)

    for r in rows + knn_rows:
        if not 0.0 <= r["test accuracy"] <= 1.0 or r["test accuracy"] < 1.5 / CLASSES:
            print(f"error: implausible accuracy {r}", file=sys.stderr)
            return 1
    gap = abs(knn_rows[0]["test accuracy"] - knn_rows[1]["test accuracy"])
    if gap > 0.02:  # same classifier: only ties may differ
        print(f"error: kNN accuracies differ by {gap:.3f}: not the same classifier", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
