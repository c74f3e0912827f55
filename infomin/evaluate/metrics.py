"""Representation metrics: alignment and uniformity (Wang & Isola 2020), tolerance (Wang & Liu 2021).

* Alignment, "the expected distance between positive pairs":
  ``L_align = E_{(x, y) ~ p_pos} ||f(x) - f(y)||_2^alpha`` (arXiv 2005.10242, eq. 2);
* uniformity, "the logarithm of the average pairwise Gaussian potential":
  ``L_uniform = log E_{x, y ~ p_data} exp(-t ||f(x) - f(y)||_2^2)`` (eq. 3). Both follow
  the authors' reference code (``align_loss``, ``uniform_loss`` with ``torch.pdist``),
  so lower is better for both; pass L2-normalised embeddings.
* Tolerance, how close same-class samples are: ``T = E[ s(x)^T s(y) | l(x) = l(y) ]``
  (Wang & Liu 2021, arXiv 2012.09740, sec. 4.2). We average the cosine similarity over
  ordered same-class pairs ``i != j`` (the paper's expectation restricted to the
  same-class event, which makes values comparable across datasets with different class
  counts); higher means the embedding tolerates semantically similar samples.

>>> import torch
>>> z = torch.nn.functional.normalize(torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), dim=1)
>>> float(alignment(z, z)), float(uniformity(z[:1].repeat(5, 1)))
(0.0, 0.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from infomin.errors import SpecError, check_range


def _check_2d(name: str, z: Tensor, min_rows: int = 1) -> None:
    if not isinstance(z, Tensor) or z.ndim != 2:
        raise SpecError(name, getattr(z, "shape", type(z).__name__), "expected a tensor of shape (N, D)")
    if z.shape[0] < min_rows:
        raise SpecError(f"{name}.shape[0]", z.shape[0], f"expected at least {min_rows} rows")


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2) -> Tensor:
    """Mean ``||z1_i - z2_i||^alpha`` over positive pairs. z1, z2: (N, D) -> scalar. 0 is perfect."""
    _check_2d("z1", z1)
    _check_2d("z2", z2)
    if z1.shape != z2.shape:
        raise SpecError("z2.shape", tuple(z2.shape), f"expected the shape of z1, {tuple(z1.shape)}")
    check_range("alpha", alpha, 0.0, None, low_open=True)
    return (z1 - z2).norm(p=2, dim=1).pow(alpha).mean()


def uniformity(z: Tensor, t: float = 2) -> Tensor:
    """``log mean_{i<j} exp(-t ||z_i - z_j||^2)``. z: (N, D), N >= 2 -> scalar <= 0 (lower is more uniform).

    ``torch.pdist`` gives the N(N-1)/2 distances of pairs i < j, as in the reference
    code; the log-mean-exp uses ``logsumexp`` for stability.
    """
    _check_2d("z", z, min_rows=2)
    check_range("t", t, 0.0, None, low_open=True)
    d2 = torch.pdist(z, p=2).pow(2)  # N(N-1)/2
    return torch.logsumexp(-t * d2, dim=0) - torch.log(torch.tensor(float(d2.numel()), device=z.device,
                                                                       dtype=d2.dtype))


def tolerance(z: Tensor, labels: Tensor) -> Tensor:
    """Mean cosine similarity over ordered same-class pairs ``i != j``. z: (N, D), labels: (N,) -> scalar.

    Batched with a one-hot matrix: with ``s_c = sum_{i in c} z_i`` (normalised z),
    ``sum_{i != j, same class} z_i . z_j = sum_c ||s_c||^2 - sum_i ||z_i||^2`` and the
    number of such pairs is ``sum_c n_c^2 - N``; O(N D) memory, no N x N matrix.
    """
    _check_2d("z", z, min_rows=2)
    if not isinstance(labels, Tensor) or labels.shape != (z.shape[0],):
        raise SpecError("labels", getattr(labels, "shape", type(labels).__name__),
                        f"expected a tensor of shape ({z.shape[0]},)")
    zn = F.normalize(z.float(), dim=1)  # N x D
    _, inv = torch.unique(labels, return_inverse=True)
    onehot = F.one_hot(inv).to(zn.dtype)  # N x C
    class_sums = onehot.T @ zn  # C x D
    counts = onehot.sum(0)  # C
    pairs = (counts * counts).sum() - z.shape[0]
    if pairs <= 0:
        raise SpecError("labels", "all distinct", "tolerance needs at least one same-class pair")
    same = class_sums.pow(2).sum() - zn.pow(2).sum()
    return same / pairs
