"""Training loops: contrastive (InfoNCE, DDP-ready) in :mod:`.contrastive`; DDP helpers in :mod:`.ddp`."""

from infomin.train.contrastive import (
    LARS,
    ContrastiveTrainer,
    build_optimizer,
    warmup_cosine,
)

__all__ = ["LARS", "ContrastiveTrainer", "build_optimizer", "warmup_cosine"]
