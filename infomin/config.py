"""Run configuration: frozen dataclasses, validated at construction, YAML in and out.

Configs stop at the edge (DESIGN.md principle 7): the CLI and the search layer
build a :class:`TrainConfig`, :func:`infomin.pipeline.run_candidate` turns it
into plain typed arguments for the trainer and the probes.

>>> cfg = TrainConfig.from_dict({"dataset": "colorful-moving-digits", "epochs": 2})
>>> cfg.epochs, cfg.encoder
(2, 'convnet')
>>> TrainConfig.from_dict({"epoch": 2})
Traceback (most recent call last):
...
infomin.errors.SpecError: config.epoch: got 2; unknown key; valid choices: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from infomin.errors import SpecError, check_choice, check_int, check_range

OPTIMIZERS = ("sgd", "adamw", "lars")
LOSS_FORMS = ("auto", "ntxent", "cross")
PROBES = ("sklearn", "torch")
DEVICES_HINT = ("auto", "cpu", "cuda", "cuda:<index>", "mps")


def _check_auto_bool(name: str, value: Any) -> Any:
    if value == "auto" or isinstance(value, bool):
        return value
    raise SpecError(name, value, "expected true, false or 'auto'")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other names are checked and kept."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not (device in ("cpu", "mps") or device.split(":")[0] == "cuda"):
        raise SpecError("device", device, choices=list(DEVICES_HINT))
    return device


@dataclass(frozen=True)
class TrainConfig:
    """Everything one contrastive training + scoring run needs, besides the views.

    Attributes (defaults suit a few-minute CPU run of the small ConvNet on the toy):

    * ``dataset``: an :func:`infomin.data.load` name (``colorful-moving-digits``,
      ``cifar10``, ``cifar10-npz``, ``npz:<path>``, ``folder:<path>`` ...); ``data_root``
      its folder where it needs one.
    * ``encoder``: an :func:`infomin.models.build_encoder` name; ``proj_dim`` the
      projection size; ``share``: one encoder for both views (``None``: when their
      channels match, the CMC rule).
    * ``epochs``, ``batch_size`` (global, over all processes), ``optimizer``
      (``sgd``, ``adamw``, ``lars``), ``lr``, ``weight_decay``, ``momentum``,
      ``warmup_epochs`` (linear warm-up, capped at half the run, then a per-step cosine decay to 0).
    * ``temperature`` (tau) and ``loss``: ``ntxent`` (SimCLR, 2N-2 negatives) or
      ``cross`` (CMC, N-1 negatives from the other view); ``auto`` picks ``cross``
      when the two views have different channels, else ``ntxent``.
    * ``seed``; ``device`` (``auto``: CUDA when present, else CPU); ``amp``
      (``auto``: on for CUDA only; bf16 autocast on a CPU is 17-25x slower, see
      DESIGN.md); ``channels_last`` (``auto``: on for CUDA and for CPU, where it
      measured 1.15-1.3x); ``compile`` (``torch.compile`` the model).
    * ``train_subset``/``test_subset``: sizes of seeded subsets (``None``: all).
    * ``probe``: ``sklearn`` (LogisticRegression) or ``torch`` (full-batch L-BFGS);
      ``knn_k``, ``knn_temperature``: the weighted kNN monitor, run every
      ``eval_every`` epochs (0: never).
    * ``checkpoint_dir`` (``None``: a temporary folder, removed at the end) and
      ``resume`` (continue from the last checkpoint in ``checkpoint_dir``).
    * ``nproc``: processes for DDP training (one per GPU; gloo on CPU).
    * ``progress``: a progress bar; ``plots``: log the curves, t-SNE and view-grid
      figures (turn off for cheap search trials; the weights are always saved).
    """

    dataset: str = "colorful-moving-digits"
    data_root: str | None = None
    encoder: str = "convnet"
    proj_dim: int = 128
    share: bool | None = None
    epochs: int = 5
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    temperature: float = 0.2
    loss: str = "auto"
    seed: int = 0
    device: str = "auto"
    amp: bool | str = "auto"
    channels_last: bool | str = "auto"
    compile: bool = False
    train_subset: int | None = None
    test_subset: int | None = None
    probe: str = "sklearn"
    knn_k: int = 200
    knn_temperature: float = 0.1
    eval_every: int = 1
    checkpoint_dir: str | None = None
    resume: bool = False
    nproc: int = 1
    progress: bool = True
    plots: bool = True

    def __post_init__(self) -> None:
        check_int("config.epochs", self.epochs, 1)
        check_int("config.batch_size", self.batch_size, 2)
        check_int("config.proj_dim", self.proj_dim, 1)
        check_choice("config.optimizer", self.optimizer, OPTIMIZERS)
        check_range("config.lr", self.lr, 0, low_open=True)
        check_range("config.weight_decay", self.weight_decay, 0)
        check_range("config.momentum", self.momentum, 0, 1, high_open=True)
        check_range("config.warmup_epochs", self.warmup_epochs, 0)
        check_range("config.temperature", self.temperature, 0, low_open=True)
        check_choice("config.loss", self.loss, LOSS_FORMS)
        check_int("config.seed", self.seed, 0)
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "mps") or self.device.split(":")[0] == "cuda"):
            raise SpecError("config.device", self.device, choices=DEVICES_HINT)
        _check_auto_bool("config.amp", self.amp)
        _check_auto_bool("config.channels_last", self.channels_last)
        for name in ("compile", "progress", "plots"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"config.{name}", getattr(self, name), "expected true or false")
        for name in ("train_subset", "test_subset"):
            v = getattr(self, name)
            if v is not None:
                check_int(f"config.{name}", v, 1)
        check_choice("config.probe", self.probe, PROBES)
        check_int("config.knn_k", self.knn_k, 1)
        check_range("config.knn_temperature", self.knn_temperature, 0, low_open=True)
        check_int("config.eval_every", self.eval_every, 0)
        if not isinstance(self.resume, bool):
            raise SpecError("config.resume", self.resume, "expected true or false")
        if self.resume and not self.checkpoint_dir:
            raise SpecError("config.resume", self.resume, "resume needs a checkpoint_dir")
        check_int("config.nproc", self.nproc, 1)
        if self.batch_size % self.nproc:
            raise SpecError("config.batch_size", self.batch_size,
                            f"must be divisible by nproc={self.nproc} (it is the global batch)")
        if self.share is not None and not isinstance(self.share, bool):
            raise SpecError("config.share", self.share, "expected true, false or null")

    # -- dict / YAML ------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
        """Build from a (possibly partial) dict; unknown keys raise :class:`SpecError`.

        Integral floats are accepted for integer fields (YAML ``1e3``), ints for floats.
        """
        merged = {**(data or {}), **overrides}
        if not isinstance(merged, dict):
            raise SpecError("config", merged, "expected a mapping")
        valid = cls.keys()
        for k in merged:
            if k not in valid:
                raise SpecError(f"config.{k}", merged[k], "unknown key", choices=valid)
        types = {f.name: f.type for f in fields(cls)}
        clean = {}
        for k, v in merged.items():
            t = str(types[k])
            if t.startswith("int") and isinstance(v, float) and v.is_integer():
                v = int(v)
            elif t.startswith("float") and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            clean[k] = v
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict(self.to_dict(), **changes)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        p = Path(path)
        if not p.is_file():
            raise SpecError("config", str(path), "file not found")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise SpecError("config", str(path), f"not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise SpecError("config", str(path), "expected a YAML mapping")
        return cls.from_dict(data, **overrides)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        return text

    # -- resolved choices ---------------------------------------------------------------------
    def resolved_device(self) -> str:
        return resolve_device(self.device)

    def resolved_loss(self, channels: tuple[int, int]) -> str:
        from infomin.objectives import default_form

        return self.loss if self.loss != "auto" else default_form(channels)

    def resolved_amp(self, device: str) -> bool:
        if self.amp == "auto":
            return device.startswith("cuda")
        return bool(self.amp)

    def resolved_channels_last(self, device: str) -> bool:
        if self.channels_last == "auto":
            return device.startswith("cuda") or device == "cpu"
        return bool(self.channels_last)
