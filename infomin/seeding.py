"""Randomness: the only module that touches global RNG state.

Library functions take ``rng: torch.Generator`` (docs/architecture.md, "One RNG,
passed in"). A seed, a generator or ``None`` is converted once, at the boundary,
by :func:`make_generator`. View parameters are always drawn from a **CPU**
generator and then moved to the data's device, so the same seed gives the same
views on CPU and CUDA.

Two helpers give a piece of work its own stream without disturbing anyone else's:

* :func:`seed_for` derives a stable seed from a run's seed and a purpose
  (``seed_for(0, "eval")``), instead of ad-hoc offsets such as ``seed + 1``;
* :func:`seeded` is the one place where torch's *global* generator is used on
  purpose: module constructors (weight initialisation) draw from it, so a model
  is built inside ``with seeded(s):``, which forks the global state
  (:func:`torch.random.fork_rng`), seeds it, and restores it on exit.

>>> import torch
>>> with seeded(seed_for(0, "model")):
...     a = torch.nn.Linear(2, 2).weight.clone()
>>> with seeded(seed_for(0, "model")):
...     b = torch.nn.Linear(2, 2).weight.clone()
>>> torch.equal(a, b), seed_for(0, "model") != seed_for(0, "eval")
(True, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from infomin.errors import SpecError

SeedLike = int | torch.Generator | None

_SEED_BITS = 63


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
            raise SpecError("seed", seed, "expected an int, a torch.Generator or None")
        g.manual_seed(int(seed))
    return g


def derive_seed(rng: torch.Generator) -> int:
    """Draw a fresh 63-bit seed from ``rng`` (for child generators, numpy, sklearn)."""
    return int(torch.randint(0, 2**_SEED_BITS - 1, (1,), generator=rng).item())


def seed_for(seed: int, *purpose: str | int) -> int:
    """A stable 63-bit seed for ``purpose`` under a run's ``seed``.

    The same arguments give the same seed in every process and Python version
    (SHA-256, not ``hash()``); different purposes give unrelated streams.

    >>> seed_for(3, "eval") == seed_for(3, "eval"), seed_for(3, "eval") == seed_for(4, "eval")
    (True, False)
    """
    text = "/".join(str(p) for p in (seed, *purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> (64 - _SEED_BITS)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the body with torch's global CPU generator seeded to ``seed``, then restore it.

    For code that draws from the global generator and cannot be given an ``rng``
    (``torch.nn`` initialisers). CUDA generators are not forked: infomin builds
    modules on the CPU and moves them afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch's global generators, for scripts and entry points only.

    Library code never calls this (it uses :func:`seeded` and explicit generators);
    a script that runs third-party code drawing from global state may.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
