"""Encoders, projection head and the two-view model: shapes, sharing, gradients, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from infomin.errors import SpecError
from infomin.models import ContrastiveModel, ProjectionHead, build_encoder

ENCODERS = {"convnet": 256, "convnet-512": 512, "resnet18": 512, "tv:resnet18": 512}


@pytest.mark.parametrize("name,dim", ENCODERS.items())
@pytest.mark.parametrize("c", [1, 2, 3])
def test_encoder_shapes(name, dim, c):
    torch.manual_seed(0)
    enc = build_encoder(name, c)
    h = enc(torch.rand(2, c, 32, 32))
    assert h.shape == (2, dim) and enc.out_dim == dim
    assert torch.isfinite(h).all()


def test_resnet18_has_cifar_stem():
    enc = build_encoder("resnet18", 3)
    net = enc.backbone
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity) and isinstance(net.fc, nn.Identity)
    # no downsampling in the stem: layer1 sees the full 32 x 32 grid
    seen = {}

    def hook(module, inputs, output):
        seen["hw"] = tuple(output.shape[-2:])

    net.layer1.register_forward_hook(hook)
    enc(torch.rand(2, 3, 32, 32))
    assert tuple(seen["hw"]) == (32, 32)


def test_torchvision_backbone_adapts_first_conv_and_drops_classifier():
    enc = build_encoder("tv:convnext_tiny", 2)
    first = next(m for m in enc.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 2
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in enc.modules())
    assert enc.eval()(torch.rand(1, 2, 32, 32)).shape == (1, 768)


def test_convnet_options():
    enc = build_encoder("convnet", 3, width=8, out_dim=20)
    assert enc(torch.rand(2, 3, 16, 16)).shape == (2, 20) and enc.out_dim == 20


def test_convnet_512_is_the_convnet_with_a_1x1_expansion():
    torch.manual_seed(0)
    base = build_encoder("convnet", 3)
    torch.manual_seed(0)
    wide = build_encoder("convnet-512", 3)
    assert wide.name == "convnet-512" and base.name == "convnet"
    # same trunk (same weights from the same seed), then conv1x1(256 -> 512)-BN-ReLU, then the pool
    trunk = list(wide.backbone)[:4]
    for a, b in zip(trunk, list(base.backbone)[:4], strict=True):
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(pa, pb)
    expand = wide.backbone[4]
    assert isinstance(expand[0], nn.Conv2d) and expand[0].kernel_size == (1, 1)
    assert (expand[0].in_channels, expand[0].out_channels) == (256, 512)
    # its factory options still apply over the variant's own
    assert build_encoder("convnet-512", 2, width=8).out_dim == 512
    assert build_encoder("convnet-512", 2, out_dim=64).out_dim == 64
    # any input size: the recipe trains on 24 px crops and probes 32 px images
    assert wide(torch.rand(2, 3, 24, 24)).shape == (2, 512)


def test_unknown_names():
    with pytest.raises(SpecError, match="convnet") as e:
        build_encoder("resnet19", 3)
    assert e.value.field == "encoder" and "resnet18" in e.value.choices
    with pytest.raises(SpecError, match="tv:resnet50"):
        build_encoder("tv:resnet_nope", 3)
    with pytest.raises(SpecError, match="in_channels"):
        build_encoder("convnet", 0)


def test_projection_head_layout():
    head = ProjectionHead(16, hidden_dim=32, out_dim=8, num_layers=3)
    kinds = [type(m) for m in head.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    assert head(torch.randn(5, 16)).shape == (5, 8)


def test_shared_model_has_one_encoder():
    torch.manual_seed(0)
    m = ContrastiveModel(channels=(3, 3), proj_dim=16, hidden_dim=32, encoder_kwargs={"width": 8})
    assert m.shared and len(m.encoders) == 1 and len(m.heads) == 1
    v1, v2 = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    z1, z2 = m(v1, v2)
    assert z1.shape == z2.shape == (4, 16)
    assert torch.allclose(z1.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(z2.norm(dim=1), torch.ones(4), atol=1e-5)
    # features(view=1) goes through the same (only) encoder
    m.eval()
    assert torch.equal(m.features(v1, 0), m.features(v1, 1))


def test_cmc_model_has_two_encoders_and_features_skip_head():
    torch.manual_seed(0)
    m = ContrastiveModel(channels=(1, 2), proj_dim=16, hidden_dim=32, encoder_kwargs={"width": 8})
    assert not m.shared and len(m.encoders) == 2 and len(m.heads) == 2
    assert m.encoders[0].in_channels == 1 and m.encoders[1].in_channels == 2
    v1, v2 = torch.rand(4, 1, 16, 16), torch.rand(4, 2, 16, 16)
    z1, z2 = m(v1, v2)
    assert z1.shape == z2.shape == (4, 16)
    h = m.features(v2, view=1)
    assert h.shape == (4, m.encoders[1].out_dim) == (4, 64)  # encoder width, not proj_dim
    m.eval()
    assert torch.equal(m.features(v2, 1), m.encoders[1](v2))


def test_share_false_with_equal_channels_and_bad_share():
    assert len(ContrastiveModel((3, 3), share=False, encoder_kwargs={"width": 4}).encoders) == 2
    with pytest.raises(SpecError, match="share"):
        ContrastiveModel((1, 2), share=True)
    with pytest.raises(SpecError, match="view"):
        ContrastiveModel((3, 3), encoder_kwargs={"width": 4}).features(torch.rand(2, 3, 8, 8), view=2)


@pytest.mark.parametrize("channels", [(3, 3), (1, 2)])
def test_gradients_finite_on_every_parameter(channels):
    from infomin.objectives import info_nce

    torch.manual_seed(0)
    m = ContrastiveModel(channels, proj_dim=8, hidden_dim=16, encoder_kwargs={"width": 4})
    v1 = torch.rand(6, channels[0], 16, 16)
    v2 = torch.rand(6, channels[1], 16, 16)
    info_nce(*m(v1, v2), 0.2).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in m.parameters()) > 0


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    m = ContrastiveModel((3, 3), proj_dim=8, hidden_dim=16, encoder_kwargs={"width": 4}).eval()
    v1, v2 = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    ref = m(v1, v2)
    m_cl = m.to(memory_format=torch.channels_last)
    cl = m_cl(v1.contiguous(memory_format=torch.channels_last),
              v2.contiguous(memory_format=torch.channels_last))
    for a, b in zip(ref, cl, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
