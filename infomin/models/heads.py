"""Projection heads and the two-view contrastive model (shared encoder, or one per view as in CMC).

"We use a MLP with one hidden layer to obtain z_i = g(h_i) = W(2) sigma(W(1) h_i)" and
"it is beneficial to define the contrastive loss on z_i's rather than h_i's"
(SimCLR, Chen et al. 2020, arXiv 2002.05709, sec. 2.1 and 4.2). CMC (Tian et al. 2019,
arXiv 1906.05849) uses one encoder per view when the views have different channels
(e.g. L and ab).

>>> import torch
>>> m = ContrastiveModel(channels=(1, 2))            # CMC: two encoders, two heads
>>> z1, z2 = m(torch.rand(4, 1, 32, 32), torch.rand(4, 2, 32, 32))
>>> z1.shape, len(m.encoders), round(float(z1.detach().norm(dim=1).mean()), 4)
(torch.Size([4, 128]), 2, 1.0)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infomin.errors import SpecError, check_int
from infomin.models.encoders import build_encoder


class ProjectionHead(nn.Module):
    """SimCLR MLP head: ``num_layers`` linears, BN + ReLU after all but the last.

    Same layout as lightly's ``SimCLRProjectionHead`` (Linear without bias before BN).
    h: (N, in_dim) -> z: (N, out_dim), not normalised.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128,
                 num_layers: int = 2) -> None:
        super().__init__()
        check_int("in_dim", in_dim, 1)
        check_int("hidden_dim", hidden_dim, 1)
        check_int("out_dim", out_dim, 1)
        check_int("num_layers", num_layers, 1)
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            if i < num_layers - 1:
                layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
            else:
                layers.append(nn.Linear(a, b))
        self.layers = nn.Sequential(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, h: Tensor) -> Tensor:
        return self.layers(h)


class ContrastiveModel(nn.Module):
    """Encoder(s) + projection head(s) for two views.

    Args:
        channels: ``(c1, c2)``, channels of ``v1`` and ``v2`` (a view generator's ``.channels``).
        encoder: encoder name for :func:`~infomin.models.build_encoder`.
        proj_dim: D, the projection (embedding) size.
        hidden_dim: hidden width of the projection MLP.
        share: share one encoder + head between the views. ``None`` (default): share when
            ``c1 == c2``. ``True`` with ``c1 != c2`` raises.
        encoder_kwargs: extra options for the encoder factory (e.g. ``{"width": 16}``).

    Attributes:
        encoders: ``nn.ModuleList`` of 1 (shared) or 2 (CMC) encoders.
        heads: ``nn.ModuleList``, one head per encoder.
        shared: whether both views go through ``encoders[0]``.
    """

    def __init__(self, channels: tuple[int, int] = (3, 3), encoder: str = "convnet",
                 proj_dim: int = 128, hidden_dim: int = 512, share: bool | None = None,
                 encoder_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(channels, (tuple, list)) or len(channels) != 2:
            raise SpecError("channels", channels, "expected a pair (c1, c2)")
        c1, c2 = (check_int(f"channels[{i}]", c, 1) for i, c in enumerate(channels))
        if share is None:
            share = c1 == c2
        elif share and c1 != c2:
            raise SpecError("share", share, f"views have different channels {(c1, c2)}; "
                            "one encoder cannot take both")
        self.channels = (c1, c2)
        self.shared = bool(share)
        kw = dict(encoder_kwargs or {})
        n_enc = 1 if self.shared else 2
        self.encoders = nn.ModuleList(
            [build_encoder(encoder, (c1, c2)[i], **kw) for i in range(n_enc)])
        self.heads = nn.ModuleList(
            [ProjectionHead(e.out_dim, hidden_dim, proj_dim) for e in self.encoders])
        self.out_dim = self.encoders[0].out_dim
        self.proj_dim = proj_dim

    def _check_view(self, view: int) -> int:
        if view not in (0, 1):
            raise SpecError("view", view, choices=[0, 1])
        return 0 if self.shared else view

    def features(self, x: Tensor, view: int = 0) -> Tensor:
        """Encoder output h (N, out_dim) for images of ``view`` (0 or 1); the head is dropped,
        as in SimCLR's linear evaluation."""
        return self.encoders[self._check_view(view)](x)

    def representation(self, u1: Tensor, u2: Tensor) -> Tensor:
        """The frozen representation of evaluation inputs ``(u1, u2)`` (a generator's
        ``eval_inputs``): the shared encoder's features of ``u1``, or the two encoders'
        features concatenated (CMC: "we concatenate the features of the L and ab
        encoders", arXiv 1906.05849, Sec. 4.1). (N, out_dim) or (N, 2 * out_dim)."""
        if self.shared:
            return self.features(u1, 0)
        return torch.cat([self.features(u1, 0), self.features(u2, 1)], dim=1)

    @property
    def representation_dim(self) -> int:
        return self.out_dim * (1 if self.shared else 2)

    def project(self, x: Tensor, view: int = 0) -> Tensor:
        """L2-normalised projection z (N, proj_dim) of one view."""
        i = self._check_view(view)
        return F.normalize(self.heads[i](self.encoders[i](x)), dim=1)

    def forward(self, v1: Tensor, v2: Tensor) -> tuple[Tensor, Tensor]:
        """v1: (N, c1, H, W), v2: (N, c2, H', W') -> z1, z2: (N, proj_dim), L2-normalised.

        With a shared encoder and same-size views both go through one forward pass (one
        BatchNorm statistic over 2N images, as SimCLR's global BN within a device).
        """
        if self.shared and v1.shape == v2.shape:
            n = v1.shape[0]
            z = self.project(torch.cat([v1, v2], dim=0), 0)  # 2N x D
            return z[:n], z[n:]
        return self.project(v1, 0), self.project(v2, 1)
