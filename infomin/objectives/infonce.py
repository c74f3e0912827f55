"""InfoNCE / NT-Xent as pure tensor maths, and the I_NCE lower bound with its log K ceiling.

Two forms of the same contrastive objective are provided:

``"ntxent"`` (SimCLR, Chen et al. 2020, arXiv 2002.05709, eq. 1)
    "We randomly sample a minibatch of N examples and define the contrastive
    prediction task on pairs of augmented examples derived from the minibatch,
    resulting in 2N data points. [...] we treat the other 2(N - 1) augmented
    examples within a minibatch as negative examples."
    Every one of the 2N views is an anchor; its candidates are the 2N - 1 other
    views (self excluded): one positive, 2N - 2 negatives, so ``K = 2N - 1``.

``"cross"`` (CMC, Tian et al. 2019, arXiv 1906.05849, eq. 2; CPC, van den Oord et al.
2018, arXiv 1807.03748, eq. 4)
    Each anchor of view 1 is scored against the N samples of view 2 (one positive,
    N - 1 negatives, ``K = N``), and symmetrically view 2 against view 1; the loss
    is the average of both directions (CMC's ``L(V1, V2) = L_{V1}^{V2} + L_{V2}^{V1}``,
    halved so both forms are on the per-anchor scale).

Both compute the log-sum-exp through :func:`torch.nn.functional.cross_entropy`
(stable, fused) on cosine similarities divided by the temperature tau. Inputs are
**L2-normalised inside** (so callers may pass raw projections; normalising twice is
harmless).

The bound (CPC, arXiv 1807.03748; InfoMin, Tian et al. 2020, arXiv 2005.10243, eq. 1)::

    I(v1; v2) >= log K - L_NCE = I_NCE

``I_NCE`` can never exceed ``log K``, so estimates are comparable only at a fixed K
(batch size and form), temperature and encoder: record K and ``log K`` with every
estimate (see :func:`near_ceiling`).

Example
-------
>>> import torch
>>> from infomin.objectives import info_nce, num_candidates, mi_lower_bound
>>> g = torch.Generator().manual_seed(0)
>>> z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
>>> loss = info_nce(z1, z2, temperature=0.5)
>>> k = num_candidates(8, "ntxent")
>>> k
15
>>> bool(mi_lower_bound(loss, k) <= torch.log(torch.tensor(15.0)))
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from infomin.errors import SpecError, check_choice, check_range

FORMS: tuple[str, ...] = ("ntxent", "cross")


def _check_pair(z1: Tensor, z2: Tensor) -> None:
    for name, z in (("z1", z1), ("z2", z2)):
        if not isinstance(z, Tensor):
            raise SpecError(name, type(z).__name__, "expected a torch.Tensor of shape (N, D)")
        if z.ndim != 2:
            raise SpecError(f"{name}.shape", tuple(z.shape), "expected (N, D)")
    if z1.shape != z2.shape:
        raise SpecError("z2.shape", tuple(z2.shape), f"expected the shape of z1, {tuple(z1.shape)}")
    if z1.shape[0] < 2:
        raise SpecError("z1.shape[0]", z1.shape[0], "InfoNCE needs a batch of at least 2 (negatives)")


def default_form(channels: tuple[int, int]) -> str:
    """The InfoNCE form for two views: ``"cross"`` (CMC: two encoders, the N-1 negatives of the
    other view) when their channel counts differ, else ``"ntxent"`` (SimCLR, 2N-2 negatives).

    >>> default_form((1, 2)), default_form((3, 3))
    ('cross', 'ntxent')
    """
    return "cross" if channels[0] != channels[1] else "ntxent"


def num_candidates(batch_size: int, form: str = "ntxent") -> int:
    """Candidates per anchor, K: ``2N - 1`` for ``"ntxent"``, ``N`` for ``"cross"``.

    >>> num_candidates(256, "ntxent"), num_candidates(256, "cross")
    (511, 256)
    """
    check_choice("form", form, FORMS)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise SpecError("batch_size", batch_size, "expected an integer >= 2")
    return 2 * batch_size - 1 if form == "ntxent" else batch_size


def info_nce(z1: Tensor, z2: Tensor, temperature: float, *, form: str = "ntxent") -> Tensor:
    """The symmetric InfoNCE loss of two batches of embeddings (mean over anchors).

    Args:
        z1: (N, D) embeddings of view 1 (normalised inside).
        z2: (N, D) embeddings of view 2; row i is the positive of ``z1[i]``.
        temperature: tau > 0; logits are ``cos(z_i, z_j) / tau``.
        form: ``"ntxent"`` (SimCLR, K = 2N - 1) or ``"cross"`` (CMC/CPC, K = N).

    Returns:
        A scalar tensor ``L_NCE`` (natural log units). ``log K - L_NCE`` is the I_NCE bound.

    The 2N x 2N similarity matrix of ``"ntxent"`` costs O(N^2 D); fine for N up to a
    few thousand. Under autocast the matmul runs in half precision and the
    cross-entropy in float32 (autocast promotes it).
    """
    check_range("temperature", temperature, 0.0, None, low_open=True)
    check_choice("form", form, FORMS)
    _check_pair(z1, z2)
    n = z1.shape[0]
    z1 = F.normalize(z1, dim=1)  # N x D
    z2 = F.normalize(z2, dim=1)  # N x D
    if form == "cross":
        # logits: N x N, row i = anchor z1[i] against every z2[j]; positive on the diagonal
        logits = z1 @ z2.T / temperature
        labels = torch.arange(n, device=z1.device)  # N
        # view1 -> view2 uses rows, view2 -> view1 uses columns (the transpose)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))

    z = torch.cat([z1, z2], dim=0)  # 2N x D
    sim = z @ z.T / temperature  # 2N x 2N
    # drop self-similarity: 2N x (2N - 1); row i keeps columns j != i in order
    off_diag = ~torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = sim[off_diag].view(2 * n, 2 * n - 1)
    # positive of i < N is i + N, which moves one column left once the diagonal (i) is dropped;
    # positive of i >= N is i - N < i, which does not move.
    idx = torch.arange(n, device=z.device)
    labels = torch.cat([idx + n - 1, idx])  # 2N
    return F.cross_entropy(logits, labels)


def mi_lower_bound(loss: Tensor | float, k: int) -> Tensor | float:
    """The I_NCE bound ``log K - L_NCE`` (nats); never above ``log K``.

    "I(z_t; c_t) >= log(N) - L_N" (CPC, arXiv 1807.03748, eq. 5 with N = K candidates;
    InfoMin arXiv 2005.10243, eq. 1). Since ``L_NCE >= 0``, the bound saturates at
    ``log K``: compare estimates only at the same K, temperature and encoder.

    >>> round(mi_lower_bound(0.0, 511), 4)
    6.2364
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SpecError("k", k, "expected a positive integer number of candidates")
    return math.log(k) - loss


def near_ceiling(mi: Tensor | float, k: int, frac: float = 0.9) -> bool:
    """True when an I_NCE estimate is at least ``frac * log K``: the bound is saturated,
    so a larger K (batch) is needed before comparing views.

    >>> near_ceiling(6.0, 511), near_ceiling(2.0, 511)
    (True, False)
    """
    check_range("frac", frac, 0.0, 1.0, low_open=True)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise SpecError("k", k, "expected an integer >= 2 (log K > 0)")
    return bool(float(mi) >= frac * math.log(k))
