"""The in-memory dataset every loader returns, and class-balanced subsets.

Two ways data reaches the trainer (one choice per dataset, by size):

* **small** (the toy, CIFAR, STL-10, npz arrays, small image folders): one uint8
  ``(N, C, H, W)`` tensor, moved once to the training device with :meth:`ImageDataset.to`
  and indexed per batch (:meth:`ImageDataset.batches` + :meth:`ImageDataset.batch`). No
  DataLoader, no worker processes, no per-sample Python: CIFAR-10 train is 150 MB as uint8,
  and indexing it on the GPU costs microseconds. Augmentations then run batched on the
  device (``infomin.views``).
* **large** (image folders that do not fit in memory): a streaming source
  (:func:`infomin.data.stream`) read by a ``torch.utils.data.DataLoader`` with workers,
  used through :func:`infomin.data.iter_batches`, which yields the same float batches
  for either kind.

Images stay uint8 until :meth:`ImageDataset.batch` converts a batch to float in [0, 1],
so a dataset costs 1 byte per value on the device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from infomin.errors import SpecError, check_int


class ImageDataset:
    """Images, labels and the generative factors behind them.

    Args:
        images: uint8 (N, C, H, W).
        labels: int (N,), the class used by probes (``classes[labels[i]]``).
        classes: class names, ``len(classes) > labels.max()``.
        name: the name it was loaded by (recorded with runs).
        factors: named integer factors (N,) each; defaults to ``{"label": labels}``. The toy
            has ``digit``, ``background`` and ``position``; probes report one accuracy per factor.

    >>> import torch
    >>> ds = ImageDataset(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.arange(10) % 2, ["a", "b"])
    >>> idx = next(ds.batches(4, torch.Generator().manual_seed(0)))
    >>> ds.batch(idx).shape, ds.batch(idx).dtype
    (torch.Size([4, 3, 8, 8]), torch.float32)
    """

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str], name: str = "",
                 factors: dict[str, Tensor] | None = None) -> None:
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise SpecError("images", getattr(images, "dtype", type(images).__name__),
                            "expected a uint8 tensor of shape (N, C, H, W)")
        labels = torch.as_tensor(labels).long()
        if labels.shape != (images.shape[0],):
            raise SpecError("labels.shape", tuple(labels.shape), f"expected ({images.shape[0]},)")
        classes = [str(c) for c in classes]
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
            raise SpecError("labels", (int(labels.min()), int(labels.max())),
                            f"expected values in [0, {len(classes) - 1}] ({len(classes)} classes)")
        self.images = images
        self.labels = labels.to(images.device)
        self.classes = classes
        self.name = name
        factors = {"label": self.labels} if factors is None else dict(factors)
        for k, v in factors.items():
            if v.shape != (images.shape[0],):
                raise SpecError(f"factors[{k!r}].shape", tuple(v.shape), f"expected ({images.shape[0]},)")
        self.factors = {k: v.long().to(images.device) for k, v in factors.items()}

    # -- shape ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return (f"{type(self).__name__}(name={self.name!r}, n={len(self)}, shape=({c}, {h}, {w}), "
                f"classes={self.num_classes}, factors={sorted(self.factors)}, device={self.device})")

    # -- access -----------------------------------------------------------------------------
    def to(self, device: torch.device | str) -> ImageDataset:
        """Move images, labels and factors to ``device`` in place (returns ``self``, like ``nn.Module.to``)."""
        self.images = self.images.to(device)
        self.labels = self.labels.to(device)
        self.factors = {k: v.to(device) for k, v in self.factors.items()}
        return self

    def batch(self, idx: Tensor) -> Tensor:
        """Images ``idx`` as float (B, C, H, W) in [0, 1] on the dataset's device."""
        return self.images[idx.to(self.images.device)].float().div_(255.0)

    def batches(self, batch_size: int, rng: torch.Generator, *,
                drop_last: bool = True) -> Iterator[Tensor]:
        """One epoch of shuffled index tensors (B,) on the dataset's device.

        The permutation is drawn on the CPU from ``rng`` (same order on every device).
        ``drop_last`` drops the final short batch (InfoNCE's K then stays fixed).
        """
        check_int("batch_size", batch_size, 1)
        n = len(self)
        if drop_last and batch_size > n:
            raise SpecError("batch_size", batch_size, f"larger than the dataset ({n}) with drop_last")
        perm = torch.randperm(n, generator=rng).to(self.images.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield perm[start:start + batch_size]

    def factor_classes(self, factor: str) -> list[str]:
        """Class names of ``factor`` (``"label"``: :attr:`classes`; others: their integer values)."""
        if factor not in self.factors:
            raise SpecError("label", factor, f"not a factor of {self.name or 'this dataset'}",
                            choices=sorted(self.factors))
        if factor == "label":
            return list(self.classes)
        return [str(i) for i in range(int(self.factors[factor].max()) + 1)]

    def relabel(self, factor: str) -> ImageDataset:
        """The same images with ``labels`` (and ``classes``) taken from the factor ``factor``.

        A shallow copy (the images are shared, not copied): probes, classifier heads and
        class-balanced subsets then use that factor, e.g. the toy's ``"hue"`` or
        ``"position"`` instead of its digit.

        >>> import torch
        >>> ds = ImageDataset(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]),
        ...                   ["a", "b"], factors={"label": torch.tensor([0, 1, 0, 1]),
        ...                                        "size": torch.tensor([2, 0, 1, 1])})
        >>> ds.relabel("size").labels.tolist(), ds.relabel("size").classes
        ([2, 0, 1, 1], ['0', '1', '2'])
        """
        import copy

        classes = self.factor_classes(factor)
        out = copy.copy(self)
        out.labels, out.classes = self.factors[factor], classes
        return out

    def subset(self, indices: Tensor) -> ImageDataset:
        """A new dataset of the rows ``indices`` (same class list and factor names)."""
        idx = torch.as_tensor(indices, dtype=torch.long).to(self.images.device)
        return self._with_rows(idx)

    def _with_rows(self, idx: Tensor) -> ImageDataset:
        return ImageDataset(self.images[idx], self.labels[idx], self.classes, self.name,
                            {k: v[idx] for k, v in self.factors.items()})


def balanced_indices(labels: Tensor, n: int, seed: int = 0) -> Tensor:
    """Indices of a class-balanced subset of size ``n``, sorted in dataset order.

    Each class gets ``n // C`` samples (the first ``n % C`` classes of a seeded class order
    one more), drawn uniformly without replacement with a seeded permutation. A class with
    too few samples raises. Vectorised: one permutation, one stable sort by label.

    >>> labels = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    >>> labels[balanced_indices(labels, 4)].bincount().tolist()
    [2, 2]
    """
    check_int("subset", n, 1)
    labels = labels.cpu().long()
    if n > labels.numel():
        raise SpecError("subset", n, f"larger than the split ({labels.numel()} samples)")
    g = torch.Generator().manual_seed(int(seed))
    classes, counts = torch.unique(labels, return_counts=True)
    c = classes.numel()
    quota = torch.full((c,), n // c, dtype=torch.long)
    quota[torch.randperm(c, generator=g)[: n % c]] += 1
    short = (quota > counts).nonzero().flatten()
    if short.numel():
        k = int(short[0])
        raise SpecError("subset", n, f"class {int(classes[k])} has only {int(counts[k])} samples; "
                        f"a balanced subset of {n} needs {int(quota[k])} per class")
    perm = torch.randperm(labels.numel(), generator=g)
    cls = torch.searchsorted(classes, labels[perm])  # class position of each permuted sample
    order = torch.sort(cls, stable=True).indices  # grouped by class, random within a class
    grouped = cls[order]
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(labels.numel()) - starts[grouped]  # rank within its class
    keep = rank < quota[grouped]
    return perm[order[keep]].sort().values
