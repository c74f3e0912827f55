"""Datasets stored as NumPy ``.npz`` arrays, including CIFAR-10 as arrays (``cifar10-npz``).

An npz file holds ``images`` uint8 (N, H, W, C) (or (N, H, W) grayscale) and ``labels``
integer (N,), optionally ``classes`` (a string array). It is read with
``allow_pickle=False``: no code runs on load.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from infomin.data.base import ImageDataset
from infomin.errors import SpecError, check_choice

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


DATA_ENV = "INFOMIN_DATA_ROOT"


def default_root() -> Path:
    """Where datasets live by default: ``$INFOMIN_DATA_ROOT``, else ``~/.cache/infomin/datasets``."""
    return Path(os.environ.get(DATA_ENV, "~/.cache/infomin/datasets")).expanduser()


def load_npz(path: str | os.PathLike, name: str | None = None) -> ImageDataset:
    """Read ``images`` (uint8 NHWC or NHW) and ``labels`` (+ optional ``classes``) from an npz file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SpecError("path", str(path), "npz file not found")
    try:
        with np.load(path, allow_pickle=False) as d:
            keys = set(d.files)
            missing = {"images", "labels"} - keys
            if missing:
                raise SpecError("npz keys", sorted(keys), f"{path} lacks {sorted(missing)}; expected "
                                "'images' uint8 (N, H, W, C), 'labels' (N,) and optionally 'classes'")
            images, labels = d["images"], d["labels"]
            classes = [str(c) for c in d["classes"]] if "classes" in keys else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, SpecError):
            raise
        raise SpecError("path", str(path), f"not a readable npz archive ({e})") from e
    if images.dtype != np.uint8:
        raise SpecError("images.dtype", str(images.dtype), "expected uint8 (0..255); convert with "
                        "(x * 255).round().astype(np.uint8)")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise SpecError("images.shape", images.shape, "expected (N, H, W, C) or (N, H, W)")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise SpecError("labels", f"{labels.dtype} {labels.shape}",
                        f"expected integers of shape ({len(images)},)")
    if classes is None:
        classes = [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # N x C x H x W
    return ImageDataset(x, torch.from_numpy(labels.astype(np.int64)), classes, name or f"npz:{path}")


def load_cifar10_npz(split: str = "train", root: str | os.PathLike | None = None) -> ImageDataset:
    """CIFAR-10 as arrays: ``cifar10_train.npz`` and ``cifar10_test.npz`` (``images`` uint8
    NHWC, ``labels``, ``classes``) in ``root`` (default :func:`default_root`).

    Any subset of CIFAR-10 saved in that layout works (for example
    ``np.savez_compressed("cifar10_test.npz", images=x, labels=y, classes=names)``
    from torchvision's ``CIFAR10``); it is read without unpickling."""
    check_choice("split", split, ("train", "test"))
    folder = Path(root).expanduser() if root is not None else default_root()
    path = folder / f"cifar10_{split}.npz"
    if not path.is_file():
        raise SpecError("root", str(folder), f"{path.name} not found there; set {DATA_ENV} "
                        "or pass root= (--data-root) to the folder holding cifar10_train.npz / "
                        "cifar10_test.npz")
    return load_npz(path, name="cifar10-npz")
