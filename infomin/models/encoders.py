"""Encoders: name -> factory -> ``nn.Module`` with ``.out_dim``, mapping (N, C, H, W) to (N, out_dim).

Names (see :func:`build_encoder`):

* ``"convnet"``: a small 4-block conv net (conv3x3-BN-ReLU, strides 1, 2, 2, 2, global
  average pool). About 0.4 M parameters at the default width; the encoder used for CPU
  studies and tests (ResNet-18 is for GPUs: see README, Performance).
* ``"convnet-512"``: the same net with a 1x1 conv-BN-ReLU from 256 to 512 channels before
  the pool (``convnet(out_dim=512)``): twice the features for the linear probe for one
  1x1 conv on the last (4 x 4 at 32 px) feature map; the encoder of the CPU recipe
  ``infomin.recipes.CIFAR_CPU``.
* ``"resnet18"``: torchvision's ResNet-18 with the CIFAR stem used by SimCLR for
  32 px images: "we replace the first 7x7 Conv of stride 2 with 3x3 Conv of stride 1,
  and also remove the first max pooling operation" (Chen et al. 2020, arXiv 2002.05709,
  appendix B.9); ``fc`` removed, ``out_dim = 512``.
* ``"tv:<name>"``: any torchvision classification model (``torchvision.models.list_models``),
  e.g. ``"tv:resnet50"``, ``"tv:convnext_tiny"``: the first convolution is rebuilt for
  ``in_channels`` and the last ``nn.Linear`` (the classifier) is replaced by ``Identity``.

Every encoder works with ``channels_last`` inputs and modules (convs, BN and pooling
all support it; the final flatten acts on an (N, D, 1, 1) tensor).

>>> import torch
>>> enc = build_encoder("convnet", in_channels=2)
>>> enc(torch.zeros(4, 2, 32, 32)).shape, enc.out_dim
(torch.Size([4, 256]), 256)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from infomin.errors import SpecError, check_int

#: named variants of :func:`convnet` (its keyword arguments); a config picks one by name
CONVNETS: dict[str, dict[str, Any]] = {
    "convnet": {},
    "convnet-512": {"out_dim": 512},
}
BUILTIN: tuple[str, ...] = (*CONVNETS, "resnet18")


class Encoder(nn.Module):
    """Wraps a backbone that returns (N, D, ...) features; flattens to (N, D) and records ``out_dim``."""

    def __init__(self, backbone: nn.Module, out_dim: int, name: str, in_channels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.out_dim = int(out_dim)
        self.name = name
        self.in_channels = int(in_channels)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> h: (N, out_dim)."""
        return torch.flatten(self.backbone(x), 1)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, in_channels={self.in_channels}, out_dim={self.out_dim}"


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def convnet(in_channels: int, width: int = 32, out_dim: int | None = None,
            name: str = "convnet") -> Encoder:
    """Small conv net: widths ``width * (1, 2, 4, 8)``, strides (1, 2, 2, 2), global average pool.

    ``out_dim`` defaults to ``8 * width`` (256); another value adds a 1x1 conv-BN-ReLU to it.
    ``name`` is recorded on the encoder (the variant's name in :data:`CONVNETS`).
    """
    check_int("width", width, 1)
    w = (width, 2 * width, 4 * width, 8 * width)
    layers: list[nn.Module] = [
        _conv_bn_relu(in_channels, w[0], 1),
        _conv_bn_relu(w[0], w[1], 2),
        _conv_bn_relu(w[1], w[2], 2),
        _conv_bn_relu(w[2], w[3], 2),
    ]
    d = w[3]
    if out_dim is not None and out_dim != d:
        check_int("out_dim", out_dim, 1)
        layers.append(nn.Sequential(nn.Conv2d(d, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim),
                                    nn.ReLU(inplace=True)))
        d = out_dim
    layers.append(nn.AdaptiveAvgPool2d(1))
    return Encoder(nn.Sequential(*layers), d, name, in_channels)


def resnet18_cifar(in_channels: int) -> Encoder:
    """torchvision ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool), ``fc`` removed."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    out_dim = net.fc.in_features
    net.fc = nn.Identity()
    return Encoder(net, out_dim, "resnet18", in_channels)


def _set_submodule(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def torchvision_backbone(name: str, in_channels: int, weights: str | None = None) -> Encoder:
    """Any torchvision classification model, first conv adapted to ``in_channels``, classifier removed.

    ``weights`` is passed to ``torchvision.models.get_model`` (``None``: random init; a
    weights name downloads them). With pretrained weights and ``in_channels != 3`` the
    first conv is re-initialised: its RGB filters do not apply to other channels.
    """
    import torchvision

    choices = torchvision.models.list_models(module=torchvision.models)
    if name not in choices:
        raise SpecError("encoder", f"tv:{name}", "unknown torchvision classification model",
                        choices=[f"tv:{c}" for c in choices])
    net = torchvision.models.get_model(name, weights=weights)
    first = next(((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise SpecError("encoder", f"tv:{name}", "model has no Conv2d to adapt to in_channels")
    conv_name, conv = first
    if conv.in_channels != in_channels:
        if conv.groups != 1:
            raise SpecError("encoder", f"tv:{name}", "first convolution is grouped; cannot adapt it")
        _set_submodule(net, conv_name, nn.Conv2d(
            in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
            padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
            padding_mode=conv.padding_mode))
    last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        raise SpecError("encoder", f"tv:{name}", "model has no nn.Linear classifier to remove")
    fc_name, fc = last[-1]
    _set_submodule(net, fc_name, nn.Identity())
    if hasattr(net, "aux_logits"):  # inception/googlenet: plain features in train mode too
        net.aux_logits = False
        for aux in ("AuxLogits", "aux1", "aux2"):
            if hasattr(net, aux):
                setattr(net, aux, None)
    return Encoder(net, fc.in_features, f"tv:{name}", in_channels)


def available() -> list[str]:
    """Built-in names plus ``"tv:<name>"`` (any torchvision classification model)."""
    return [*BUILTIN, "tv:<torchvision model name>"]


def build_encoder(name: str, in_channels: int, **kwargs: Any) -> Encoder:
    """Build an encoder by name: ``"convnet"`` (or a variant in :data:`CONVNETS`, e.g.
    ``"convnet-512"``), ``"resnet18"`` or ``"tv:<torchvision name>"``.

    Args:
        name: the encoder name.
        in_channels: channels of the view it encodes (e.g. 1 for L, 2 for ab).
        **kwargs: passed to the factory (``convnet`` and its variants: ``width``, ``out_dim``,
            over the variant's own values; ``tv:``: ``weights``).

    Returns:
        An :class:`Encoder` mapping (N, in_channels, H, W) to (N, ``out_dim``).
    """
    check_int("in_channels", in_channels, 1)
    if isinstance(name, str) and name in CONVNETS:
        return convnet(in_channels, **{**CONVNETS[name], **kwargs}, name=name)
    if name == "resnet18":
        if kwargs:
            raise SpecError("encoder_kwargs", sorted(kwargs), "resnet18 takes no options")
        return resnet18_cifar(in_channels)
    if isinstance(name, str) and name.startswith("tv:"):
        return torchvision_backbone(name[3:], in_channels, **kwargs)
    raise SpecError("encoder", name, choices=available())
