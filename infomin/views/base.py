"""The view-generator contract: sample parameters, apply them, return views *and* parameters.

A view generator is a ``torch.nn.Module``. Calling it on a float batch
``x`` (B, C, H, W) in [0, 1] returns a :class:`ViewPair` ``(v1, v2, params)``:

* ``sample(x, rng)`` is the only place randomness lives. It draws every
  per-sample parameter from a **CPU** ``torch.Generator`` (so a seed gives the
  same views on any device) and returns them as a (possibly nested) dict of
  tensors on ``x.device``;
* ``apply(x, params)`` is deterministic: the same ``x`` and ``params`` give the
  same views, so any pair can be replayed with :meth:`ViewGenerator.replay`.

What callers may rely on, declared rather than discovered (the contract test in
``tests/views/test_contract.py`` checks each declaration for every registered kind):

* ``channels``: the channel counts of ``(v1, v2)``, so encoders can be sized from
  the generator (e.g. ``(1, 2)`` for L | ab); ``channel_names``: their names where
  known (``(["L"], ["a", "b"])``), for plots;
* ``in_channels``: the channels it expects (``None``: any);
* ``stochastic``: whether ``sample`` draws anything (a channel split or a learned
  colour flow does not; crops and augmentations do);
* ``eval_inputs(x)``: the deterministic input of each encoder at evaluation time
  (CMC: "we concatenate the features of the L and ab encoders", arXiv 1906.05849,
  Sec. 4.1): a deterministic generator's views; the clean image for both encoders
  when the views are random crops or augmentations; a ``pair``'s colour split;
* ``differentiable``: which gradients flow: ``"input"`` (w.r.t. ``x``),
  ``"params"`` (w.r.t. continuous sampled parameters such as crop boxes) and
  ``"weights"`` (w.r.t. the generator's own learnable parameters);
* ``source``: ``"images"`` for generators that transform a batch of pixels, or
  ``"dataset"`` for kinds that re-render the dataset's items from their known
  factors (the toy's ``shared_factors``), which can only be used through
  :meth:`pairs`.

:meth:`ViewGenerator.pairs` binds a generator to a dataset and returns a
:class:`PairSource`, ``(idx, rng) -> ViewPair``: the one interface trainers,
probes and plots use to get views of dataset items, whatever the kind.

Unlike kornia, the last draw is never hidden in ``self._params``: it is
returned with the views.
"""

from __future__ import annotations

import abc
import warnings
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from infomin.errors import SpecError
from infomin.seeding import SeedLike, make_generator

Params = dict[str, Any]
ChannelNames = tuple[list[str] | None, list[str] | None]


class ViewPair(NamedTuple):
    """Two views of one batch and the parameters that made them."""

    v1: Tensor
    v2: Tensor
    params: Params


@runtime_checkable
class PairSource(Protocol):
    """Views of dataset items: ``source(idx, rng) -> ViewPair`` for indices ``idx`` (B,).

    Made by :meth:`ViewGenerator.pairs`; what the trainer, the probes and the view
    grids consume. ``replay(idx, params)`` remakes a pair from its parameters.
    """

    channels: tuple[int, int]

    def __call__(self, idx: Tensor, rng: torch.Generator) -> ViewPair: ...

    def replay(self, idx: Tensor, params: Params) -> ViewPair: ...


class Dataset(Protocol):
    """What a pair source needs of a dataset (:class:`infomin.data.ImageDataset` has it)."""

    images: Tensor

    def batch(self, idx: Tensor) -> Tensor: ...


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
    implement :attr:`channels`, :meth:`sample` and :meth:`apply`, and override
    :attr:`stochastic`, :meth:`eval_inputs` and :attr:`channel_names` where the
    defaults (random; clean images at evaluation; no names) do not hold.
    """

    kind: ClassVar[str] = ""
    differentiable: ClassVar[frozenset[str]] = frozenset({"input"})
    #: channels the generator expects as input (``None``: any)
    in_channels: int | None = 3
    #: ``"images"``: transforms pixel batches; ``"dataset"``: re-renders dataset items (:meth:`pairs` only)
    source: ClassVar[Literal["images", "dataset"]] = "images"

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

    @property
    def stochastic(self) -> bool:
        """Whether :meth:`sample` draws from its generator (``False``: the views are a function of ``x``)."""
        return True

    @property
    def channel_names(self) -> ChannelNames:
        """Names of the channels of ``(v1, v2)`` (``None`` where they have none, e.g. RGB crops)."""
        return None, None

    @abc.abstractmethod
    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        """Draw per-sample parameters for batch ``x`` from the CPU generator ``rng``."""

    @abc.abstractmethod
    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        """Deterministically make ``(v1, v2)`` from ``x`` and ``params``."""

    def eval_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The deterministic inputs ``(u1, u2)`` of the two encoders at evaluation time.

        Default: the views themselves when nothing is drawn, else the clean image for
        both (random crops and augmentations are training-time only).
        """
        check_batch(x, self.in_channels)
        if not self.stochastic:
            return self.apply(x, {})
        return x, x

    # -- what users call ------------------------------------------------------------------
    def forward(self, x: Tensor, rng: SeedLike = None, *, generator: SeedLike = None) -> ViewPair:
        """Sample parameters for ``x`` (seeded by ``rng``) and return ``(v1, v2, params)``.

        ``generator=`` is the former name of ``rng`` (deprecated: "generator" means a
        view generator in infomin).
        """
        if generator is not None:
            warnings.warn("gen(x, generator=...) is deprecated; use gen(x, rng=...)",
                          DeprecationWarning, stacklevel=2)
            rng = generator if rng is None else rng
        check_batch(x, self.in_channels)
        g = make_generator(rng)
        params = params_to(self.sample(x, g), x.device)
        v1, v2 = self.apply(x, params)
        return ViewPair(v1, v2, params)

    def replay(self, x: Tensor, params: Params) -> ViewPair:
        """Re-make the pair that ``params`` describe (from an earlier call)."""
        check_batch(x, self.in_channels)
        params = params_to(params, x.device)
        v1, v2 = self.apply(x, params)
        return ViewPair(v1, v2, params)

    def pairs(self, dataset: Dataset) -> PairSource:
        """Bind to ``dataset``: a :class:`PairSource` making views of its items by index."""
        return ImagePairs(self, dataset)

    def to_spec(self) -> dict[str, Any]:
        """The spec dict that :func:`infomin.views.build` turns back into this generator."""
        spec: dict[str, Any] = {"kind": self.kind}
        for k, v in self._spec.items():
            spec[k] = v.to_spec() if isinstance(v, ViewGenerator) else v
        return spec

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._spec.items()
                         if not isinstance(v, ViewGenerator))


class ImagePairs:
    """The :class:`PairSource` of a pixel-batch generator: views of ``dataset.batch(idx)``."""

    def __init__(self, generator: ViewGenerator, dataset: Dataset) -> None:
        if generator.source != "images":
            raise SpecError("views.kind", generator.kind, "this kind re-renders dataset items; "
                            "use its own pairs() method")
        self.generator, self.dataset = generator, dataset
        self.channels = tuple(generator.channels)

    def __repr__(self) -> str:
        return f"ImagePairs({self.generator.kind})"

    def _batch(self, idx: Tensor) -> Tensor:
        # a no-op when the dataset already lives on idx's device (how protocols place it)
        return self.dataset.batch(idx.to(self.dataset.images.device)).to(idx.device)

    def __call__(self, idx: Tensor, rng: torch.Generator) -> ViewPair:
        """idx: (B,) item indices -> views of those items, on ``idx``'s device."""
        return self.generator(self._batch(idx), rng)

    def replay(self, idx: Tensor, params: Params) -> ViewPair:
        return self.generator.replay(self._batch(idx), params)
