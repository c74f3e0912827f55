"""Randomness: the only module that touches global RNG state.

Library functions take ``rng: torch.Generator`` (DESIGN.md principle 2). A
seed, a generator or ``None`` is converted once, at the boundary, by
:func:`make_generator`. View parameters are always drawn from a **CPU**
generator and then moved to the data's device, so the same seed gives the
same views on CPU and CUDA.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

SeedLike = int | torch.Generator | None


def make_generator(seed: SeedLike = None) -> torch.Generator:
    """Return a CPU ``torch.Generator`` from a seed, an existing generator or ``None``.

    ``None`` gives a generator seeded from the operating system (not
    reproducible); an ``int`` gives a reproducible one; a generator is
    returned as is (its state is shared, not copied).
    """
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device="cpu")
    if seed is None:
        g.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            from infomin.errors import SpecError

            raise SpecError("seed", seed, "expected an int, a torch.Generator or None")
        g.manual_seed(int(seed))
    return g


def derive_seed(rng: torch.Generator) -> int:
    """Draw a fresh 63-bit seed from ``rng`` (for child generators, numpy, sklearn)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=rng).item())


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch's global generators (for third-party code that uses them).

    infomin's own code never relies on these; kornia and DataLoader workers do.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
