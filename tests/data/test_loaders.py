"""ImageDataset, class-balanced subsets and the loaders: npz, real CIFAR-10 arrays, torchvision, folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from infomin.data import (
    NAMES,
    FolderStream,
    ImageDataset,
    balanced_indices,
    default_root,
    iter_batches,
    load,
    stream,
)
from infomin.errors import SpecError


def _write_npz(path: Path, n=30, hw=(8, 8), c=3, classes=True, **overrides):
    rng = np.random.default_rng(0)
    d = {"images": rng.integers(0, 256, (n, *hw, c), dtype=np.uint8) if c else
         rng.integers(0, 256, (n, *hw), dtype=np.uint8),
         "labels": np.arange(n) % 3}
    if classes:
        d["classes"] = np.array(["cat", "dog", "eel"])
    d.update(overrides)
    np.savez(path, **d)
    return d


# -- ImageDataset -------------------------------------------------------------------------------
def test_batches_cover_an_epoch_and_batch_is_float():
    ds = ImageDataset(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).clone(),
                      torch.arange(10) % 2, ["a", "b"])
    rng = torch.Generator().manual_seed(0)
    idx = list(ds.batches(3, rng, drop_last=False))
    assert [len(i) for i in idx] == [3, 3, 3, 1]
    assert sorted(torch.cat(idx).tolist()) == list(range(10))
    assert [len(i) for i in ds.batches(3, rng)] == [3, 3, 3]  # drop_last
    x = ds.batch(idx[0])
    assert x.dtype == torch.float32 and x.shape == (3, 1, 2, 2)
    assert torch.allclose(x[:, 0, 0, 0] * 255, idx[0].float())
    # same seed, same order
    a = torch.cat(list(ds.batches(5, torch.Generator().manual_seed(1))))
    b = torch.cat(list(ds.batches(5, torch.Generator().manual_seed(1))))
    assert torch.equal(a, b)


def test_image_dataset_validates():
    with pytest.raises(SpecError, match="uint8"):
        ImageDataset(torch.zeros(2, 3, 4, 4), torch.zeros(2), ["a"])
    with pytest.raises(SpecError, match="labels.shape"):
        ImageDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3), ["a"])
    with pytest.raises(SpecError, match="labels"):
        ImageDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 2]), ["a", "b"])
    ds = ImageDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2), ["a"])
    with pytest.raises(SpecError, match="batch_size"):
        next(ds.batches(3, torch.Generator()))


# -- balanced subsets -----------------------------------------------------------------------------
def test_balanced_indices():
    labels = torch.arange(100) % 4
    labels[:10] = 0  # unbalanced: class 0 has more
    idx = balanced_indices(labels, 22, seed=0)
    assert len(idx) == 22 and torch.equal(idx, idx.sort().values) and len(idx.unique()) == 22
    counts = labels[idx].bincount().tolist()
    assert sorted(counts) == [5, 5, 6, 6]
    assert torch.equal(idx, balanced_indices(labels, 22, seed=0))
    assert not torch.equal(idx, balanced_indices(labels, 22, seed=1))
    with pytest.raises(SpecError, match="class"):
        balanced_indices(torch.tensor([0, 0, 0, 1]), 4)
    with pytest.raises(SpecError, match="larger"):
        balanced_indices(labels, 101)


# -- npz --------------------------------------------------------------------------------------------
def test_npz_roundtrip(tmp_path):
    d = _write_npz(tmp_path / "a.npz")
    ds = load(f"npz:{tmp_path / 'a.npz'}")
    assert ds.images.shape == (30, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert torch.equal(ds.images[4], torch.from_numpy(d["images"][4]).permute(2, 0, 1))
    assert ds.classes == ["cat", "dog", "eel"] and ds.labels.tolist() == (np.arange(30) % 3).tolist()
    assert torch.equal(ds.factors["label"], ds.labels)
    sub = load(f"npz:{tmp_path / 'a.npz'}", subset=9, seed=1)
    assert sub.labels.bincount().tolist() == [3, 3, 3]


def test_npz_grayscale_without_classes_and_split_placeholder(tmp_path):
    _write_npz(tmp_path / "g_test.npz", c=0, classes=False)
    ds = load(f"npz:{tmp_path / 'g_{split}.npz'}", split="test")
    assert ds.images.shape == (30, 1, 8, 8) and ds.classes == ["0", "1", "2"]


def test_npz_errors(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        load(f"npz:{tmp_path / 'missing.npz'}")
    np.savez(tmp_path / "keys.npz", x=np.zeros((2, 4, 4, 3), np.uint8), y=np.zeros(2))
    with pytest.raises(SpecError, match="lacks") as e:
        load(f"npz:{tmp_path / 'keys.npz'}")
    assert "'images'" in str(e.value) and "['x', 'y']" in str(e.value)
    _write_npz(tmp_path / "f.npz", images=np.zeros((30, 8, 8, 3), np.float32))
    with pytest.raises(SpecError, match="uint8"):
        load(f"npz:{tmp_path / 'f.npz'}")
    _write_npz(tmp_path / "l.npz", labels=np.zeros(7, np.int64))
    with pytest.raises(SpecError, match="labels"):
        load(f"npz:{tmp_path / 'l.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"not an archive")
    with pytest.raises(SpecError, match="npz"):
        load(f"npz:{tmp_path / 'junk.npz'}")


# -- the real CIFAR-10 arrays ------------------------------------------------------------------------
def test_cifar10_npz_real_arrays(cifar_dir):
    ds = load("cifar10-npz", split="test")
    assert len(ds) == 10_000 and ds.images.shape == (10_000, 3, 32, 32)
    assert ds.classes[:3] == ["airplane", "automobile", "bird"]
    assert ds.labels.bincount().tolist() == [1000] * 10
    assert ds.labels[:5].tolist() == [3, 8, 8, 0, 6]  # the official test order
    mean = ds.images.float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4941, 0.4851, 0.4504]), atol=2e-3)
    sub = load("cifar10-npz", split="test", subset=200, seed=0)
    assert sub.labels.bincount().tolist() == [20] * 10
    assert torch.equal(sub.images[0], ds.images[balanced_indices(ds.labels, 200, 0)[0]])


def test_data_root_is_the_env_variable_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("INFOMIN_DATA_ROOT", raising=False)
    assert default_root() == Path.home() / ".cache" / "infomin" / "datasets"
    monkeypatch.setenv("INFOMIN_DATA_ROOT", str(tmp_path))
    assert default_root() == tmp_path


def test_cifar10_npz_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOMIN_DATA_ROOT", str(tmp_path))
    with pytest.raises(SpecError, match="INFOMIN_DATA_ROOT"):
        load("cifar10-npz")
    with pytest.raises(SpecError, match="cifar10_train.npz"):
        load("cifar10-npz", root=str(tmp_path / "elsewhere"))
    with pytest.raises(SpecError, match="split"):
        load("cifar10-npz", split="val")


# -- names and torchvision ----------------------------------------------------------------------------
def test_unknown_name_lists_choices():
    with pytest.raises(SpecError) as e:
        load("imagenet")
    assert e.value.field == "dataset" and list(e.value.choices) == list(NAMES)
    assert "cifar10-npz" in str(e.value)


def test_torchvision_set_is_never_downloaded_by_default(tmp_path):
    with pytest.raises(SpecError, match="download=True") as e:
        load("cifar10", root=tmp_path)
    assert e.value.field == "root"
    assert list(tmp_path.iterdir()) == []  # nothing fetched or created
    with pytest.raises(SpecError, match="split"):
        load("stl10", split="val", root=tmp_path)


# -- image folders -------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("ants", "bees"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(5):
                hw = (20 + i, 24) if cls == "bees" else (24, 24)
                Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png")
    return tmp_path


def test_folder_loads_into_memory(folder):
    ds = load(f"folder:{folder}", split="test", image_size=16)  # "test" falls back to val/
    assert ds.images.shape == (10, 3, 16, 16) and ds.classes == ["ants", "bees"]
    assert ds.labels.tolist() == [0] * 5 + [1] * 5
    with pytest.raises(SpecError, match="image_size"):
        load(f"folder:{folder}")  # mixed sizes without image_size
    with pytest.raises(SpecError, match="not found"):
        load(f"folder:{folder / 'nope'}")


def test_iter_batches_from_memory_and_from_a_stream(folder):
    ds = load(f"folder:{folder}", image_size=16)
    got = list(iter_batches(ds, 4, torch.Generator().manual_seed(0)))
    assert len(got) == 2 and got[0][0].shape == (4, 3, 16, 16) and got[0][0].dtype == torch.float32
    src = stream(f"folder:{folder}", image_size=16, num_workers=1)
    assert isinstance(src, FolderStream) and len(src) == 10
    batches = list(iter_batches(src, 4, torch.Generator().manual_seed(0), drop_last=False))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x = torch.cat([b[0] for b in batches])
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    # the streamed images are the in-memory images, in some order
    key = lambda t: sorted(float(v) for v in t.flatten(1).sum(1))  # noqa: E731
    assert key(x) == pytest.approx(key(ds.images.float() / 255), rel=1e-5)
    with pytest.raises(SpecError, match="folder"):
        stream("cifar10")
