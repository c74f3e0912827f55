"""The view-generator contract: sample parameters, apply them, return views *and* parameters.

A view generator is a ``torch.nn.Module``. Calling it on a float batch
``x`` (B, C, H, W) in [0, 1] returns a :class:`ViewPair` ``(v1, v2, params)``:

* ``sample(x, rng)`` is the only place randomness lives. It draws every
  per-sample parameter from a **CPU** ``torch.Generator`` (so a seed gives the
  same views on any device) and returns them as a (possibly nested) dict of
  tensors on ``x.device``;
* ``apply(x, params)`` is deterministic: the same ``x`` and ``params`` give the
  same views, so any pair can be replayed with :meth:`ViewGenerator.replay`;
* ``channels`` declares the channel counts of ``(v1, v2)`` so encoders can be
  sized from the generator (e.g. ``(1, 2)`` for L | ab);
* ``differentiable`` declares which gradients flow: ``"input"`` (w.r.t. ``x``),
  ``"params"`` (w.r.t. continuous sampled parameters such as crop boxes) and
  ``"weights"`` (w.r.t. the generator's own learnable parameters). The
  contract test in ``tests/views/test_contract.py`` checks every declaration.

Unlike kornia, the last draw is never hidden in ``self._params``: it is
returned with the views (DESIGN.md principle 1).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from infomin.errors import SpecError
from infomin.seeding import SeedLike, make_generator

Params = dict[str, Any]


class ViewPair(NamedTuple):
    """Two views of one batch and the parameters that made them."""

    v1: Tensor
    v2: Tensor
    params: Params


def check_batch(x: Tensor, channels: int | None = None, name: str = "x") -> None:
    """Raise a clear error unless ``x`` is a float (B, C, H, W) batch."""
    if not isinstance(x, Tensor):
        raise SpecError(name, type(x).__name__, "expected a torch.Tensor of shape (B, C, H, W)")
    if x.ndim != 4:
        raise SpecError(f"{name}.shape", tuple(x.shape), "expected (B, C, H, W)")
    if not x.is_floating_point():
        raise SpecError(f"{name}.dtype", str(x.dtype),
                        "expected a floating-point batch in [0, 1] (divide uint8 by 255)")
    if channels is not None and x.shape[1] != channels:
        raise SpecError(f"{name}.shape[1]", x.shape[1], f"this generator expects {channels} channels")


def params_to(params: Params, device: torch.device | str) -> Params:
    """Move every tensor in a (nested) params dict to ``device``."""
    out: Params = {}
    for k, v in params.items():
        if isinstance(v, Tensor):
            out[k] = v.to(device)
        elif isinstance(v, dict):
            out[k] = params_to(v, device)
        else:
            out[k] = v
    return out


def uniform(rng: torch.Generator, n: int, low: float, high: float) -> Tensor:
    """``n`` draws from U[low, high) on the CPU, from ``rng``."""
    return torch.rand(n, generator=rng, dtype=torch.float64).mul_(high - low).add_(low).float()


class ViewGenerator(nn.Module, abc.ABC):
    """Base class of every view generator.

    Subclasses set ``kind`` (the registry name), store their constructor
    arguments with :meth:`_remember` (so :meth:`to_spec` can rebuild them),
    and implement :attr:`channels`, :meth:`sample` and :meth:`apply`.
    """

    kind: ClassVar[str] = ""
    differentiable: ClassVar[frozenset[str]] = frozenset({"input"})
    #: channels the generator expects as input (``None``: any)
    in_channels: int | None = 3

    def __init__(self) -> None:
        super().__init__()
        self._spec: dict[str, Any] = {}

    def _remember(self, **kwargs: Any) -> None:
        """Store the constructor arguments; they make up :meth:`to_spec`."""
        self._spec = dict(kwargs)

    # -- the contract ---------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def channels(self) -> tuple[int, int]:
        """Channel counts of ``(v1, v2)``."""

    @abc.abstractmethod
    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        """Draw per-sample parameters for batch ``x`` from the CPU generator ``rng``."""

    @abc.abstractmethod
    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        """Deterministically make ``(v1, v2)`` from ``x`` and ``params``."""

    # -- what users call ------------------------------------------------------------------
    def forward(self, x: Tensor, generator: SeedLike = None) -> ViewPair:
        """Sample parameters for ``x`` (seeded by ``generator``) and return ``(v1, v2, params)``."""
        check_batch(x, self.in_channels)
        rng = make_generator(generator)
        params = params_to(self.sample(x, rng), x.device)
        v1, v2 = self.apply(x, params)
        return ViewPair(v1, v2, params)

    def replay(self, x: Tensor, params: Params) -> ViewPair:
        """Re-make the pair that ``params`` describe (from an earlier call)."""
        check_batch(x, self.in_channels)
        params = params_to(params, x.device)
        v1, v2 = self.apply(x, params)
        return ViewPair(v1, v2, params)

    def to_spec(self) -> dict[str, Any]:
        """The spec dict that :func:`infomin.views.build` turns back into this generator."""
        spec: dict[str, Any] = {"kind": self.kind}
        for k, v in self._spec.items():
            spec[k] = v.to_spec() if isinstance(v, ViewGenerator) else v
        return spec

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._spec.items()
                         if not isinstance(v, ViewGenerator))
