"""Pieces every training loop here shares: autocast, epoch batching, the non-finite-loss check.

The contrastive trainer (:mod:`.contrastive`) and the view learner
(:mod:`.adversarial`) both use these, so mixed precision, data order and the
error a diverging run raises behave the same everywhere.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor

from infomin.errors import InfominError, SpecError


def autocast_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on GPUs that support it (no scaler needed), else fp16."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: str | torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` with :func:`autocast_dtype` when ``enabled``, else a no-op.

    Callers enable it on CUDA only: bf16 autocast on the CPUs measured here is many times
    slower than fp32 (README, Performance).
    """
    if not enabled:
        return contextlib.nullcontext()
    dev = torch.device(device)
    return torch.autocast(dev.type, dtype=autocast_dtype(dev))


def epoch_batches(n: int, batch_size: int, rng: torch.Generator) -> Tensor:
    """One epoch of shuffled index batches (steps, batch_size) drawn from ``rng`` (CPU).

    The incomplete last batch is dropped, so every step sees the same K.

    >>> epoch_batches(10, 4, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 4])
    """
    if n < batch_size:
        raise SpecError("batch_size", batch_size, f"larger than the training set ({n} items)")
    perm = torch.randperm(n, generator=rng)
    return perm[: (n // batch_size) * batch_size].view(-1, batch_size)


def check_finite(value: float, what: str, where: str, hint: str) -> float:
    """Raise :class:`InfominError` naming ``what``, ``where`` and the remedy when ``value`` is
    NaN or infinite ("loss is nan at epoch 1, step 2: lower the learning rate ...").

    >>> check_finite(1.5, "loss", "at epoch 1", "lower the learning rate")
    1.5
    """
    if not math.isfinite(value):
        raise InfominError(f"{what} is {value} {where}: {hint}")
    return value


__all__ = ["autocast", "autocast_dtype", "check_finite", "epoch_batches"]
