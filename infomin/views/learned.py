"""Learnable view generators: a pixel-wise invertible colour flow and a bounded perturbation net.

Both are ordinary :class:`~infomin.views.base.ViewGenerator` modules with
trainable weights, so the adversarial learner (:mod:`infomin.train.adversarial`)
can optimise them and :mod:`infomin.views.io` can save them (safetensors + YAML).

* ``flow_color`` -- InfoMin's learned colour views (Tian et al. 2020, arXiv
  2005.10243, §4.1): the view generator g is a flow-based, pixel-wise invertible
  transform (volume-preserving or not) of the image, and g(X) is split into
  X_1 = g(X)_1 and X_2 = g(X)_{2:3}. Each block here is an invertible 1x1 channel
  mixing, LU-parametrised as in Glow (Kingma & Dhariwal 2018, arXiv 1807.03039),
  followed by a coupling layer whose networks are 1x1 convolutions: affine
  (RealNVP, Dinh et al. 2016, arXiv 1605.08803) or additive (NICE, Dinh et al.
  2014, arXiv 1410.8516) when ``volume_preserving=True``. Because every operation
  acts on one pixel's three channels, g is a learned, invertible colour-space
  transform. It starts at the identity, so the untrained flow *is* the
  hand-designed split (RGB R|GB, or YDbDr Y|DbDr with ``start="ydbdr"``).
* ``perturbation`` -- Viewmaker networks (Tamkin et al. 2020, arXiv 2010.07432): a
  network takes the image and random noise and outputs a perturbation that is
  rescaled to an L1 budget (proportional to the number of input dimensions) and
  added to the image. The noise that makes the two views differ is drawn in
  :meth:`Perturbation.sample` from the caller's generator, so pairs replay.

Example (seeded)::

    >>> import torch
    >>> from infomin.views import build
    >>> g = build({"kind": "flow_color", "start": "rgb"})
    >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> v1, v2, params = g(x)
    >>> v1.shape, v2.shape, params
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 2, 8, 8]), {})
    >>> torch.allclose(torch.cat([v1, v2], 1), x)   # identity at initialisation
    True
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from infomin.errors import SpecError, check_choice, check_int, check_range
from infomin.views.base import Params, ViewGenerator
from infomin.views.color import rgb_to
from infomin.views.registry import register

FLOW_STARTS = ("rgb", "ydbdr")


# ---------------------------------------------------------------------------------------------
# Flow building blocks (pixel-wise: every op is a 1x1 convolution over C channels)
# ---------------------------------------------------------------------------------------------
def _mix(weight: Tensor, x: Tensor) -> Tensor:
    """Apply a (C_out, C_in) matrix to every pixel of x (B, C_in, H, W) -> (B, C_out, H, W)."""
    return torch.einsum("oc,bchw->bohw", weight, x)


class InvertibleMix(nn.Module):
    """Invertible 1x1 channel mixing, LU-parametrised (Glow, arXiv 1807.03039, §3.2).

    ``W = P L (U + diag(sign(s) * exp(log|s|)))`` with ``P`` a fixed permutation,
    ``L`` unit lower-triangular and ``U`` strictly upper-triangular, so
    ``log|det W| = sum(log|s|)`` and the inverse is cheap. Initialised at
    ``W = I`` (``P = I``, ``L = I``, ``U = 0``, ``log|s| = 0``). With
    ``volume_preserving=True`` the diagonal is fixed (``|det W| = 1``).
    """

    def __init__(self, channels: int, *, volume_preserving: bool = False) -> None:
        super().__init__()
        c = channels
        self.lower = nn.Parameter(torch.zeros(c, c))
        self.upper = nn.Parameter(torch.zeros(c, c))
        if volume_preserving:  # |det W| = 1: the diagonal is fixed at 1
            self.register_buffer("log_scale", torch.zeros(c))
        else:
            self.log_scale = nn.Parameter(torch.zeros(c))
        self.register_buffer("perm", torch.eye(c))
        self.register_buffer("sign", torch.ones(c))
        self.register_buffer("lower_mask", torch.tril(torch.ones(c, c), -1))
        self.volume_preserving = volume_preserving

    def weight(self) -> Tensor:
        """The (C, C) mixing matrix."""
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        scale = self.sign * self.log_scale.exp()
        upper = self.upper * self.lower_mask.T + torch.diag(scale)
        return self.perm @ lower @ upper

    def forward(self, x: Tensor) -> Tensor:
        return _mix(self.weight(), x)

    def inverse(self, y: Tensor) -> Tensor:
        return _mix(torch.linalg.inv(self.weight()), y)


class Coupling(nn.Module):
    """Affine (RealNVP) or additive (NICE) coupling over channels with 1x1-conv networks.

    Channels ``cond`` pass unchanged and parametrise the transform of channels
    ``trans``: ``y_t = x_t * exp(s(x_c)) + t(x_c)`` (RealNVP, arXiv 1605.08803,
    with ``s = tanh(.)`` bounded) or
    ``y_t = x_t + t(x_c)`` (NICE, arXiv 1410.8516, additive: volume preserving).
    The last convolution starts at zero, so the layer starts at the identity.
    """

    def __init__(self, cond: list[int], trans: list[int], hidden: int, *, affine: bool) -> None:
        super().__init__()
        self.cond, self.trans, self.affine = list(cond), list(trans), affine
        out = len(trans) * (2 if affine else 1)
        self.net = nn.Sequential(
            nn.Conv2d(len(cond), hidden, 1), nn.SiLU(),
            nn.Conv2d(hidden, hidden, 1), nn.SiLU(),
            nn.Conv2d(hidden, out, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _st(self, xc: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(xc)
        if self.affine:
            s, t = h.chunk(2, dim=1)
            return torch.tanh(s), t
        return torch.zeros_like(h), h

    def _assemble(self, xc: Tensor, yt: Tensor) -> Tensor:
        parts: list[Tensor | None] = [None] * (len(self.cond) + len(self.trans))
        for i, c in enumerate(self.cond):
            parts[c] = xc[:, i:i + 1]
        for i, c in enumerate(self.trans):
            parts[c] = yt[:, i:i + 1]
        return torch.cat(parts, dim=1)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        xc, xt = x[:, self.cond], x[:, self.trans]
        s, t = self._st(xc)
        return self._assemble(xc, xt * s.exp() + t)

    def inverse(self, y: Tensor) -> Tensor:
        yc, yt = y[:, self.cond], y[:, self.trans]
        s, t = self._st(yc)
        return self._assemble(yc, (yt - t) * (-s).exp())


@register("flow_color")
class FlowColor(ViewGenerator):
    """Learnable invertible pixel-wise colour transform g, split into channel 1 | channels 2:3.

    InfoMin (arXiv 2005.10243, §4.1): ``min_g max_{f1,f2} I_NCE(g(X)_1; g(X)_{2:3})``,
    with g a volume-preserving or non-volume-preserving flow. ``layers`` blocks
    of [invertible 1x1 mixing, coupling] act on the ``start`` colour space
    (``"rgb"``, or ``"ydbdr"`` via :func:`infomin.views.color.rgb_to`). At
    initialisation g is the identity, i.e. the hand-designed split.

    Deterministic: :meth:`sample` returns ``{}``. Gradients flow to the input and
    to the weights (``differentiable = {"input", "weights"}``).

    Shapes: ``x`` (B, 3, H, W) in [0, 1] -> ``v1`` (B, 1, H, W), ``v2`` (B, 2, H, W).

    Args:
        start: colour space the flow starts from, ``"rgb"`` or ``"ydbdr"``.
        layers: number of [mixing, coupling] blocks (>= 1).
        volume_preserving: additive (NICE) couplings and unit-determinant mixing
            instead of affine (RealNVP) couplings.
        hidden: width of the 1x1-conv coupling networks.

    >>> g = FlowColor(start="rgb", layers=2)
    >>> x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    >>> g = g.double()
    >>> torch.allclose(g.inverse(g.transform(x)), x)
    True
    """

    differentiable: ClassVar[frozenset[str]] = frozenset({"input", "weights"})

    def __init__(self, start: str = "rgb", layers: int = 4, volume_preserving: bool = False,
                 hidden: int = 16) -> None:
        super().__init__()
        check_choice("start", start, FLOW_STARTS)
        check_int("layers", layers, 1, 64)
        check_int("hidden", hidden, 1, 4096)
        if not isinstance(volume_preserving, bool):
            raise SpecError("volume_preserving", volume_preserving, "expected true or false")
        self._remember(start=start, layers=layers, volume_preserving=volume_preserving, hidden=hidden)
        self.start = start
        blocks = []
        for i in range(layers):
            # alternate which side conditions the other, so every channel gets transformed
            cond, trans = ([0], [1, 2]) if i % 2 == 0 else ([1, 2], [0])
            blocks.append(InvertibleMix(3, volume_preserving=volume_preserving))
            blocks.append(Coupling(cond, trans, hidden, affine=not volume_preserving))
        self.blocks = nn.ModuleList(blocks)

    @property
    def channels(self) -> tuple[int, int]:
        return (1, 2)

    @property
    def stochastic(self) -> bool:
        return False

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        return {}

    def to_start(self, x: Tensor) -> Tensor:
        """RGB (B, 3, H, W) -> the start colour space (identity for ``"rgb"``)."""
        if self.start == "rgb":
            return x
        return rgb_to(x, self.start)

    def transform(self, x: Tensor) -> Tensor:
        """g(x): RGB (B, 3, H, W) -> the learned 3-channel image (B, 3, H, W), before the split."""
        y = self.to_start(x)
        for block in self.blocks:
            y = block(y)
        return y

    def inverse(self, y: Tensor) -> Tensor:
        """Invert the flow: (B, 3, H, W) output of :meth:`transform` -> the start-space input.

        For ``start="rgb"`` that is the RGB image; for ``"ydbdr"`` use
        :func:`infomin.views.color.rgb_from` to go back to RGB.
        """
        for block in reversed(self.blocks):
            y = block.inverse(y)
        return y

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        y = self.transform(x)
        return y[:, :1], y[:, 1:]


@register("perturbation")
class Perturbation(ViewGenerator):
    """Viewmaker-style bounded perturbation: ``v = clamp(x + delta(x, noise), 0, 1)``.

    Tamkin et al. 2020 (arXiv 2010.07432): a small convolutional network
    takes the image and random noise and outputs a perturbation ``delta`` that is
    rescaled to the L1 sphere of radius ``budget * C * H * W`` per image (the
    Viewmaker projection: every view uses its whole budget). Two views come from
    two noise draws, made in :meth:`sample` from the caller's generator (so a
    seed replays the pair); the network itself is deterministic.

    Shapes: ``x`` (B, 3, H, W) in [0, 1] -> ``v1``, ``v2`` (B, 3, H, W);
    ``params = {"noise": (2, B, noise_dim, H, W)}``.

    Args:
        budget: L1 budget per input dimension (Viewmaker's epsilon), in (0, 1].
        hidden: width of the conv net.
        noise_dim: number of uniform noise channels concatenated to the input.

    >>> g = Perturbation(budget=0.05)
    >>> x = torch.rand(2, 3, 8, 8)
    >>> v1, v2, p = g(x, rng=0)
    >>> v1.shape, p["noise"].shape
    (torch.Size([2, 3, 8, 8]), torch.Size([2, 2, 4, 8, 8]))
    """

    differentiable: ClassVar[frozenset[str]] = frozenset({"input", "weights"})

    def __init__(self, budget: float = 0.05, hidden: int = 32, noise_dim: int = 4) -> None:
        super().__init__()
        check_range("budget", budget, 0.0, 1.0, low_open=True)
        check_int("hidden", hidden, 1, 4096)
        check_int("noise_dim", noise_dim, 1, 256)
        self._remember(budget=budget, hidden=hidden, noise_dim=noise_dim)
        self.budget, self.noise_dim = float(budget), noise_dim
        self.net = nn.Sequential(
            nn.Conv2d(3 + noise_dim, hidden, 3, padding=1, padding_mode="reflect"), nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, padding_mode="reflect"), nn.SiLU(),
            nn.Conv2d(hidden, 3, 3, padding=1, padding_mode="reflect"),
        )

    @property
    def channels(self) -> tuple[int, int]:
        return (3, 3)

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        b, _, h, w = x.shape
        return {"noise": torch.rand(2, b, self.noise_dim, h, w, generator=rng)}

    def perturb(self, x: Tensor, noise: Tensor) -> Tensor:
        """One view: x (B, 3, H, W), noise (B, noise_dim, H, W) -> clamp(x + delta) (B, 3, H, W)."""
        delta = self.net(torch.cat([x, noise.to(dtype=x.dtype)], dim=1))     # (B, 3, H, W)
        # rescale to the L1 sphere of radius budget * C*H*W (Viewmaker's projection, arXiv 2010.07432)
        l1 = delta.abs().flatten(1).sum(1).clamp_min(1e-12)                  # (B,)
        radius = self.budget * delta[0].numel()
        delta = delta * (radius / l1).view(-1, 1, 1, 1)
        return (x + delta).clamp(0.0, 1.0)

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        noise = params["noise"]
        if noise.shape[:2] != (2, x.shape[0]) or noise.shape[-2:] != x.shape[-2:]:
            raise SpecError("params.noise", tuple(noise.shape),
                            f"expected (2, {x.shape[0]}, {self.noise_dim}, {x.shape[2]}, {x.shape[3]})")
        return self.perturb(x, noise[0]), self.perturb(x, noise[1])


__all__ = ["FlowColor", "Perturbation", "InvertibleMix", "Coupling", "FLOW_STARTS"]
