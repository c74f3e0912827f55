"""torchvision datasets (CIFAR-10/100, STL-10) as in-memory tensors, and image folders.

Small sets are read once into a uint8 (N, C, H, W) tensor (see :mod:`infomin.data.base`).
Image folders are either materialised the same way (:func:`load_folder`, for folders that
fit in memory) or streamed with a ``DataLoader`` and worker processes
(:class:`FolderStream`, used through :func:`infomin.data.iter_batches`).

Nothing is downloaded unless ``download=True`` (CLI: ``--download``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from infomin.data.arrays import default_root
from infomin.data.base import ImageDataset
from infomin.errors import SpecError, check_choice, check_int
from infomin.seeding import derive_seed

TORCHVISION_SETS: tuple[str, ...] = ("cifar10", "cifar100", "stl10")
SPLITS = {"cifar10": ("train", "test"), "cifar100": ("train", "test"),
          "stl10": ("train", "test", "unlabeled")}
#: largest folder :func:`load_folder` reads into memory (bytes of uint8 pixels)
MAX_IN_MEMORY_BYTES = 4 * 2**30
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")




def load_torchvision(name: str, split: str = "train", root: str | os.PathLike | None = None,
                     download: bool = False) -> ImageDataset:
    """CIFAR-10, CIFAR-100 or STL-10 (96 px) from ``root`` via torchvision.

    STL-10's ``"unlabeled"`` split (100,000 images) has no labels: they are all 0 with the
    single class ``"unlabeled"``; use it for pre-training only.
    """
    import torchvision.datasets as tvd

    check_choice("name", name, TORCHVISION_SETS)
    check_choice("split", split, SPLITS[name])
    root = Path(root).expanduser() if root is not None else default_root()
    try:
        if name == "stl10":
            ds = tvd.STL10(str(root), split=split, download=download)
            images = torch.from_numpy(ds.data)  # N x 3 x 96 x 96 uint8 already
            labels = torch.from_numpy(np.asarray(ds.labels, dtype=np.int64))
            classes = list(ds.classes)
            if split == "unlabeled":
                labels, classes = torch.zeros_like(labels), ["unlabeled"]
        else:
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            ds = cls(str(root), train=split == "train", download=download)
            images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # N x 3 x 32 x 32
            labels = torch.as_tensor(ds.targets, dtype=torch.long)
            classes = list(ds.classes)
    except RuntimeError as e:
        if download:
            raise
        raise SpecError("root", str(root), f"{name} ({split}) not found there ({e}). Pass "
                        "download=True (CLI: --download) to fetch it, or root= (CLI: --root) to the "
                        "folder that holds it") from e
    return ImageDataset(images.contiguous(), labels, classes, name)


def _folder_for_split(path: Path, split: str) -> Path:
    """``<path>/<split>`` when it exists (``test`` also tries ``val``), else ``<path>``."""
    if not path.is_dir():
        raise SpecError("folder", str(path), "image folder not found")
    for sub in (split, "val") if split == "test" else (split,):
        if (path / sub).is_dir():
            return path / sub
    return path


def _image_folder(path: Path, split: str, image_size: int | None):
    import torchvision.datasets as tvd
    from torchvision.transforms import v2

    root = _folder_for_split(path, split)
    ops: list = [v2.PILToTensor()]
    if image_size is not None:
        check_int("image_size", image_size, 1)
        ops += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    try:
        return tvd.ImageFolder(str(root), transform=v2.Compose(ops))
    except FileNotFoundError as e:
        raise SpecError("folder", str(root), "expected one sub-folder of images per class "
                        f"(torchvision ImageFolder layout): {e}") from e


class FolderStream:
    """An image folder read lazily, batch by batch, by a ``DataLoader`` with worker processes.

    For folders too large for :func:`load_folder`. Use with :func:`infomin.data.iter_batches`,
    which yields the same float batches as for an :class:`~infomin.data.ImageDataset`.
    Images are decoded to uint8 (C, ``image_size``, ``image_size``) in the workers
    (resize + centre crop) and converted to float on the target device.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", image_size: int = 96,
                 num_workers: int = 4) -> None:
        self.path = Path(path).expanduser()
        self.dataset = _image_folder(self.path, split, check_int("image_size", image_size, 1))
        self.num_workers = check_int("num_workers", num_workers, 0)
        self.classes = list(self.dataset.classes)
        self.name = f"folder:{self.path}"
        self.image_size = (image_size, image_size)

    def __len__(self) -> int:
        return len(self.dataset)

    def loader(self, batch_size: int, rng: torch.Generator, *, drop_last: bool = True,
               pin_memory: bool = False) -> torch.utils.data.DataLoader:
        g = torch.Generator().manual_seed(derive_seed(rng))
        return torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, shuffle=True, generator=g, drop_last=drop_last,
            num_workers=self.num_workers, pin_memory=pin_memory,
            persistent_workers=False)


def load_folder(path: str | os.PathLike, split: str = "train", image_size: int | None = None,
                num_workers: int = 2, max_bytes: int = MAX_IN_MEMORY_BYTES) -> ImageDataset:
    """Read an ImageFolder (one sub-folder per class) into memory as uint8.

    ``image_size`` resizes (shorter side) and centre-crops every image; without it all
    images must have the same size. Folders over ``max_bytes`` of pixels raise: stream
    them with :func:`infomin.data.stream` instead.
    """
    ds = _image_folder(Path(path).expanduser(), split, image_size)
    n = len(ds)
    if n == 0:
        raise SpecError("folder", str(path), "no images found")
    if image_size is None:
        # read only the headers: every image must have the same size to be stacked
        from PIL import Image

        sizes = set()
        for file, _ in ds.samples:
            with Image.open(file) as im:
                sizes.add(im.size)
            if len(sizes) > 1:
                raise SpecError("image_size", None, f"images in {path} differ in size {sorted(sizes)}; "
                                "pass image_size= to resize and centre-crop them")
    first = ds[0][0]
    est = n * first.numel()
    if est > max_bytes:
        raise SpecError("folder", str(path), f"{n} images need about {est / 2**30:.1f} GiB in memory "
                        f"(limit {max_bytes / 2**30:.1f} GiB); use infomin.data.stream(...) with "
                        "iter_batches to read it with a DataLoader instead")
    workers = num_workers if n > 2048 else 0  # worker start-up costs more than decoding a few images
    loader = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=False, num_workers=workers)
    images = torch.empty((n, *first.shape), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    start = 0
    for x, y in loader:
        images[start:start + len(x)] = x
        labels[start:start + len(x)] = y
        start += len(x)
    return ImageDataset(images, labels, ds.classes, f"folder:{Path(path).expanduser()}")
