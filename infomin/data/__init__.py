"""Datasets without augmentation: the toy with known factors, torchvision sets, npz arrays, image folders.

:func:`load` returns an in-memory :class:`ImageDataset` (uint8 images indexed per batch on
the training device); :func:`stream` returns a :class:`FolderStream` for image folders too
large for memory; :func:`iter_batches` yields float batches from either. Views are made
afterwards, batched on the device, by :mod:`infomin.views` (for the toy also by
re-rendering items from their factors: the ``shared_factors`` view kind).

Names:

==========================  =================================================================
``colorful-moving-digits``  InfoMin's toy (arXiv 2005.10243 sec. 3.1) from sklearn data, offline;
                            factors digit / background / position; 5,000 train / 1,000 test
``cifar10-npz``             CIFAR-10 as npz arrays (``cifar10_{train,test}.npz``) in ``root``
                            (default ``$INFOMIN_DATA_ROOT`` or ``~/.cache/infomin/datasets``)
``cifar10``, ``cifar100``   torchvision, from ``root`` (``download=True`` to fetch)
``stl10``                   torchvision, 96 px; splits train / test / unlabeled
``npz:<path>``              ``images`` uint8 (N, H, W, C) + ``labels`` (+ ``classes``);
                            ``{split}`` in the path is replaced by the split
``folder:<path>``           torchvision ImageFolder; ``<path>/<split>`` if it exists
==========================  =================================================================

>>> ds = load("colorful-moving-digits", split="test", subset=100, seed=0)
>>> len(ds), ds.labels.bincount().tolist()
(100, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from infomin.data.arrays import default_root, load_cifar10_npz, load_npz
from infomin.data.base import ImageDataset, balanced_indices
from infomin.data.torchvision_sets import FolderStream, load_folder, load_torchvision
from infomin.data.toy import DEFAULT_SIZES, SPLITS, ColorfulMovingDigits, colorful_moving_digits
from infomin.errors import SpecError, check_int

NAMES: tuple[str, ...] = ("colorful-moving-digits", "cifar10-npz", "cifar10", "cifar100", "stl10",
                          "npz:<path>", "folder:<path>")

__all__ = [
    "NAMES", "ColorfulMovingDigits", "FolderStream", "ImageDataset", "balanced_indices",
    "colorful_moving_digits", "default_root", "iter_batches", "load", "load_npz", "stream",
]


def load(name: str, *, split: str = "train", root: str | os.PathLike | None = None,
         subset: int | None = None, seed: int = 0, download: bool = False,
         image_size: int | None = None) -> ImageDataset:
    """Load a dataset by name into memory (uint8, CPU; move it with ``.to(device)``).

    Args:
        name: one of :data:`NAMES`.
        split: ``"train"`` or ``"test"`` (STL-10 also ``"unlabeled"``).
        root: the dataset folder of torchvision sets and of the ``cifar10-npz`` arrays
            (default ``$INFOMIN_DATA_ROOT`` or ``~/.cache/infomin/datasets``).
        subset: keep a class-balanced random subset of this size (seeded by ``seed``).
        seed: seeds the subset and the toy's rendering.
        download: allow torchvision to download (default: never touch the network).
        image_size: resize + centre-crop folder images to this size.
    """
    if not isinstance(name, str):
        raise SpecError("dataset", name, choices=NAMES)
    if subset is not None:
        check_int("subset", subset, 1)
    if name == "colorful-moving-digits":
        if split not in SPLITS:
            raise SpecError("split", split, choices=SPLITS)
        n = DEFAULT_SIZES[split]
        if subset is not None and subset > 0.8 * n:  # render enough that every digit has its share
            n = math.ceil(1.25 * subset) + 100
        ds: ImageDataset = colorful_moving_digits(split, n=n, seed=seed)
    elif name == "cifar10-npz":
        ds = load_cifar10_npz(split, root)
    elif name in ("cifar10", "cifar100", "stl10"):
        ds = load_torchvision(name, split, root, download)
    elif name.startswith("npz:"):
        ds = load_npz(name[4:].replace("{split}", split), name=name)
    elif name.startswith("folder:"):
        ds = load_folder(name[7:], split, image_size)
    else:
        raise SpecError("dataset", name, choices=NAMES)
    if subset is not None and subset != len(ds):
        ds = ds.subset(balanced_indices(ds.labels, subset, seed))
    return ds


def stream(name: str, *, split: str = "train", image_size: int = 96,
           num_workers: int = 4) -> FolderStream:
    """A streaming source for ``folder:<path>`` datasets too large for :func:`load`."""
    if not isinstance(name, str) or not name.startswith("folder:"):
        raise SpecError("dataset", name, "only image folders are streamed; load() the others",
                        choices=["folder:<path>"])
    return FolderStream(Path(name[7:]), split, image_size, num_workers)


def iter_batches(source: ImageDataset | FolderStream, batch_size: int, rng: torch.Generator, *,
                 drop_last: bool = True, device: torch.device | str | None = None
                 ) -> Iterator[tuple[Tensor, Tensor]]:
    """One shuffled epoch of ``(x, labels)``: x float (B, C, H, W) in [0, 1] on ``device``.

    * :class:`ImageDataset`: index tensors from :meth:`ImageDataset.batches` into the
      uint8 tensor (on the dataset's device; ``device`` moves each batch if different).
    * :class:`FolderStream`: a ``DataLoader`` with ``num_workers`` processes decodes uint8
      batches (pinned when ``device`` is CUDA), copied non-blocking, then converted to float.
    """
    check_int("batch_size", batch_size, 1)
    if isinstance(source, ImageDataset):
        for idx in source.batches(batch_size, rng, drop_last=drop_last):
            x, y = source.batch(idx), source.labels[idx]
            if device is not None:
                x, y = x.to(device), y.to(device)
            yield x, y
        return
    if isinstance(source, FolderStream):
        dev = torch.device(device) if device is not None else torch.device("cpu")
        loader = source.loader(batch_size, rng, drop_last=drop_last, pin_memory=dev.type == "cuda")
        for x, y in loader:
            yield x.to(dev, non_blocking=True).float().div_(255.0), y.to(dev, non_blocking=True)
        return
    raise SpecError("source", type(source).__name__, "expected an ImageDataset or a FolderStream")
