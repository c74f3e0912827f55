"""Run configuration: frozen dataclasses, validated at construction, YAML in and out.

Configs stop at the edge (docs/architecture.md): the CLI and the search layer
build a :class:`TrainConfig` or a :class:`LearnViewsConfig`; the protocols
(:func:`infomin.protocols.run_candidate`, :func:`infomin.protocols.learn_views`)
turn them into plain typed arguments for the trainers and the probes.

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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
import yaml

from infomin.errors import SpecError, check_choice, check_int, check_range
from infomin.objectives import default_form
from infomin.plainyaml import dump, plain

OPTIMIZERS = ("sgd", "adamw", "adam", "lars")
SCHEDULES = ("cosine", "constant")
LOSS_FORMS = ("auto", "ntxent", "cross")
PROBES = ("sklearn", "torch")
DEVICES_HINT = ("auto", "cpu", "cuda", "cuda:<index>", "mps")


def _check_auto_bool(name: str, value: Any) -> Any:
    if value == "auto" or isinstance(value, bool):
        return value
    raise SpecError(name, value, "expected true, false or 'auto'")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other names are checked and kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not (device in ("cpu", "mps") or device.split(":")[0] == "cuda"):
        raise SpecError("device", device, choices=list(DEVICES_HINT))
    return device


class _Config:
    """Dict / YAML in and out for frozen config dataclasses; unknown keys raise :class:`SpecError`."""

    PREFIX: ClassVar[str] = "config"

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None = None, **overrides: Any) -> Any:
        """Build from a (possibly partial) dict; unknown keys raise :class:`SpecError`.

        Integral floats are accepted for integer fields (YAML ``1e3``), ints for floats.
        """
        merged = {**(data or {}), **overrides}
        if not isinstance(merged, dict):
            raise SpecError(cls.PREFIX, merged, "expected a mapping")
        valid = cls.keys()
        for k in merged:
            if k not in valid:
                raise SpecError(f"{cls.PREFIX}.{k}", merged[k], "unknown key", choices=valid)
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
        return plain(dataclasses.asdict(self))

    def replace(self, **changes: Any) -> Any:
        return type(self).from_dict(self.to_dict(), **changes)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> Any:
        p = Path(path)
        if not p.is_file():
            raise SpecError(cls.PREFIX, str(path), "file not found")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise SpecError(cls.PREFIX, str(path), f"not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise SpecError(cls.PREFIX, str(path), "expected a YAML mapping")
        return cls.from_dict(data, **overrides)

    def to_yaml(self, path: str | Path | None = None) -> str:
        return dump(self.to_dict(), path)


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Everything one contrastive training + scoring run needs, besides the views.

    Attributes (defaults suit a few-minute CPU run of the small ConvNet on the toy):

    * ``dataset``: an :func:`infomin.data.load` name (``colorful-moving-digits``,
      ``cifar10``, ``cifar10-npz``, ``npz:<path>``, ``folder:<path>`` ...); ``data_root``
      its folder where it needs one.
    * ``encoder``: an :func:`infomin.models.build_encoder` name; ``proj_dim`` the
      projection size; ``share``: one encoder for both views (``None``: when their
      channels match, the CMC rule).
    * ``epochs``, ``batch_size`` (global, over all processes), ``optimizer``
      (``sgd``, ``adamw``, ``adam``, ``lars``), ``lr``, ``weight_decay``, ``momentum``,
      ``schedule``: ``cosine`` (linear warm-up over ``warmup_epochs``, capped at half the
      run, then a per-step cosine decay to 0) or ``constant``.
    * ``temperature`` (tau) and ``loss``: ``ntxent`` (SimCLR, 2N-2 negatives) or
      ``cross`` (CMC, N-1 negatives from the other view); ``auto`` picks ``cross``
      when the two views have different channels, else ``ntxent``.
    * ``seed``; ``device`` (``auto``: CUDA when present, else CPU); ``amp``
      (``auto``: on for CUDA only; bf16 autocast on a CPU is many times slower than
      fp32, README "Performance"); ``channels_last`` (``auto``: on for CUDA and for
      CPU, where it is faster); ``compile`` (``torch.compile`` the model).
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
    schedule: str = "cosine"
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
        check_choice("config.schedule", self.schedule, SCHEDULES)
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

    # -- resolved choices ---------------------------------------------------------------------
    def resolved_device(self) -> str:
        return resolve_device(self.device)

    def resolved_loss(self, channels: tuple[int, int]) -> str:
        return self.loss if self.loss != "auto" else default_form(channels)

    def resolved_amp(self, device: str) -> bool:
        if self.amp == "auto":
            return device.startswith("cuda")
        return bool(self.amp)

    def resolved_channels_last(self, device: str) -> bool:
        if self.channels_last == "auto":
            return device.startswith("cuda") or device == "cpu"
        return bool(self.channels_last)


LEARN_MODES = ("unsupervised", "semi-supervised")
LEARN_UPDATES = ("simultaneous", "alternating")
#: TrainConfig fields of the evaluation runs that always follow the learner's own settings
EVAL_FOLLOWS = ("dataset", "data_root", "train_subset", "test_subset", "device", "progress")


@dataclass(frozen=True)
class LearnViewsConfig(_Config):
    """Everything :func:`infomin.protocols.learn_views` needs: the learner, its data, the evaluation.

    The learner (InfoMin's min-max, arXiv 2005.10243 §4.1; see
    :func:`infomin.train.adversarial.adversarial_fit`):

    * ``mode``: ``unsupervised`` or ``semi-supervised`` (classifier heads on ``labels``
      class-balanced labelled examples, weighted by ``ce_weight``; ``label`` picks the
      factor they keep, e.g. the toy's ``hue``; default the dataset's labels);
    * ``generator``: the learnable view generator's spec (``flow_color`` from RGB by
      default; a ``pair`` with a ``flow_color`` split learns the colour transform after
      the crops, as in the authors' code);
    * ``epochs``, ``batch_size`` (N, which sets K), ``temperature``;
    * Adam for every player: ``lr`` (critics), ``generator_lr`` and ``classifier_lr``
      (default ``lr``), ``betas``; ``adversary_scale`` (the gradient-reversal factor),
      ``critic_steps`` (critic updates per update of g) and ``update``
      (``simultaneous`` through gradient reversal, or ``alternating`` as in the authors'
      learner script);
    * the critics: ``encoder``, ``encoder_kwargs``, ``proj_dim``;
    * ``seeds``: one learner per seed (adversarial runs vary); ``device``, ``amp``.

    Data: ``dataset``, ``data_root``, ``train_subset``, ``test_subset`` (seeded subsets,
    ``None``: all), drawn per seed.

    Evaluation: ``mi_steps`` (steps of the fresh critics that measure I_NCE before and
    after); with ``evaluate``, fresh encoders are trained on the start and the learned
    views by the contrastive pipeline with a :class:`TrainConfig` built from this config
    (:meth:`eval_config`) and the overrides in ``eval``; the evaluation always uses the
    learner's dataset, subsets and device (``EVAL_FOLLOWS``), and an override that
    contradicts them is an error.

    >>> cfg = LearnViewsConfig(mode="semi-supervised", epochs=2, eval={"epochs": 3})
    >>> cfg.eval_config().epochs, cfg.eval_config().dataset
    (3, 'colorful-moving-digits')
    >>> LearnViewsConfig(eval={"dataset": "cifar10-npz"})
    Traceback (most recent call last):
    ...
    infomin.errors.SpecError: learn.eval.dataset: got 'cifar10-npz'; the evaluation runs use the learner's dataset ('colorful-moving-digits')
    """

    PREFIX: ClassVar[str] = "learn"

    dataset: str = "colorful-moving-digits"
    data_root: str | None = None
    mode: str = "unsupervised"
    generator: Mapping[str, Any] = field(default_factory=lambda: {"kind": "flow_color", "start": "rgb"})
    epochs: int = 4
    batch_size: int = 128
    labels: int = 500
    label: str | None = None
    lr: float = 1e-3
    generator_lr: float | None = None
    classifier_lr: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    temperature: float = 0.1
    ce_weight: float = 1.0
    adversary_scale: float = 1.0
    critic_steps: int = 1
    update: str = "simultaneous"
    encoder: str = "convnet"
    encoder_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"width": 16})
    proj_dim: int = 64
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    amp: bool | str = "auto"
    train_subset: int | None = 1000
    test_subset: int | None = 500
    mi_steps: int = 50
    evaluate: bool = True
    eval: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        p = self.PREFIX
        if not isinstance(self.dataset, str) or not self.dataset:
            raise SpecError(f"{p}.dataset", self.dataset, "expected a dataset name")
        check_choice(f"{p}.mode", self.mode, LEARN_MODES)
        if not isinstance(self.generator, Mapping) or "kind" not in self.generator:
            raise SpecError(f"{p}.generator", self.generator, "expected a view spec with a 'kind'")
        check_int(f"{p}.epochs", self.epochs, 1)
        check_int(f"{p}.batch_size", self.batch_size, 2)
        check_int(f"{p}.labels", self.labels, 2)
        if self.label is not None and not isinstance(self.label, str):
            raise SpecError(f"{p}.label", self.label, "expected a factor name or null")
        check_range(f"{p}.lr", self.lr, 0, low_open=True)
        for name in ("generator_lr", "classifier_lr"):
            if getattr(self, name) is not None:
                check_range(f"{p}.{name}", getattr(self, name), 0, low_open=True)
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise SpecError(f"{p}.betas", self.betas, "expected a pair [beta1, beta2]")
        for i, b in enumerate(self.betas):
            check_range(f"{p}.betas[{i}]", b, 0, 1, high_open=True)
        check_range(f"{p}.temperature", self.temperature, 0, low_open=True)
        check_range(f"{p}.ce_weight", self.ce_weight, 0)
        check_range(f"{p}.adversary_scale", self.adversary_scale, 0)
        check_int(f"{p}.critic_steps", self.critic_steps, 1)
        check_choice(f"{p}.update", self.update, LEARN_UPDATES)
        if not isinstance(self.encoder_kwargs, Mapping):
            raise SpecError(f"{p}.encoder_kwargs", self.encoder_kwargs, "expected a mapping")
        check_int(f"{p}.proj_dim", self.proj_dim, 1)
        if isinstance(self.seeds, (str, bytes)) or not isinstance(self.seeds, (list, tuple)) or not self.seeds:
            raise SpecError(f"{p}.seeds", self.seeds, "expected a non-empty list of seeds")
        for i, s in enumerate(self.seeds):
            check_int(f"{p}.seeds[{i}]", s, 0)
        if len(set(self.seeds)) != len(self.seeds):
            raise SpecError(f"{p}.seeds", list(self.seeds), "seeds repeat")
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "mps") or self.device.split(":")[0] == "cuda"):
            raise SpecError(f"{p}.device", self.device, choices=DEVICES_HINT)
        _check_auto_bool(f"{p}.amp", self.amp)
        for name in ("train_subset", "test_subset"):
            if getattr(self, name) is not None:
                check_int(f"{p}.{name}", getattr(self, name), 1)
        check_int(f"{p}.mi_steps", self.mi_steps, 1)
        for name in ("evaluate", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"{p}.{name}", getattr(self, name), "expected true or false")
        if not isinstance(self.eval, Mapping):
            raise SpecError(f"{p}.eval", self.eval, "expected a mapping of TrainConfig overrides")
        object.__setattr__(self, "generator", dict(self.generator))
        object.__setattr__(self, "encoder_kwargs", dict(self.encoder_kwargs))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "eval", dict(self.eval))
        self.eval_config()  # validates the overrides

    def eval_config(self, seed: int | None = None) -> TrainConfig:
        """The :class:`TrainConfig` of the evaluation runs (for ``seed``: default the first seed)."""
        follows = {"dataset": self.dataset, "data_root": self.data_root,
                   "train_subset": self.train_subset, "test_subset": self.test_subset,
                   "device": self.device, "progress": self.progress}
        for key in EVAL_FOLLOWS:
            if key in self.eval and self.eval[key] != follows[key]:
                raise SpecError(f"{self.PREFIX}.eval.{key}", self.eval[key],
                                f"the evaluation runs use the learner's {key} ({follows[key]!r})")
        if "seed" in self.eval:
            raise SpecError(f"{self.PREFIX}.eval.seed", self.eval["seed"],
                            "each evaluation run takes its learner's seed (set seeds instead)")
        defaults = {"encoder": self.encoder, "epochs": self.epochs, "batch_size": self.batch_size,
                    "temperature": self.temperature, "eval_every": 0}
        merged = {**defaults, **self.eval, **follows, "seed": self.seeds[0] if seed is None else seed}
        try:
            return TrainConfig.from_dict(merged)
        except SpecError as e:
            raise SpecError(f"{self.PREFIX}.eval.{e.field.removeprefix('config.')}", e.value, e.message,
                            choices=e.choices) from None
