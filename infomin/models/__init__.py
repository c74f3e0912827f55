"""Encoders (small ConvNet, ResNet-18 CIFAR stem, torchvision backbones) and projection heads."""

from infomin.models.encoders import Encoder, available, build_encoder
from infomin.models.heads import ContrastiveModel, ProjectionHead

__all__ = ["ContrastiveModel", "Encoder", "ProjectionHead", "available", "build_encoder"]
