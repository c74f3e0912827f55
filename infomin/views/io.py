"""Saved view generators on disk: safetensors weights + a YAML spec, never pickle.

A saved generator is two files side by side::

    views/learned/flow_toy.yaml          # kind + parameters (a normal view spec) + meta
    views/learned/flow_toy.safetensors   # the state_dict, as plain tensors

The YAML is an ordinary spec (``infomin.views.build`` reads it; its ``meta``
block is ignored there) plus ``meta``: the format version, the weights file
name, its SHA-256 and the provenance (run id, dataset, seed, date, versions).

This module is the one reader of that YAML (:func:`read_saved`) and the one
place weights are checked and loaded (:func:`load_weights`: the file's hash,
header, keys and shapes, then :func:`safetensors.torch.load_file`). Nothing is
ever unpickled: ``torch.load`` and ``mlflow.pytorch.load_model`` execute code
embedded in a crafted file, so they are not used, and a file that is a pickle or
a ``torch.save`` archive is refused with a clear error.
:func:`infomin.views.load` (:mod:`infomin.views.sources`) resolves preset names
and MLflow URIs to these files.

>>> import torch, tempfile, pathlib
>>> from infomin.views import build, save, load
>>> g = build({"kind": "flow_color", "start": "rgb", "layers": 2})
>>> path = save(g, pathlib.Path(tempfile.mkdtemp()) / "flow.yaml", provenance={"seed": 0})
>>> h = load(path)                      # frozen: eval() and requires_grad False
>>> x = torch.rand(2, 3, 8, 8)
>>> torch.equal(h(x).v1, g(x).v1)
True
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from infomin.errors import InfominError, SpecError
from infomin.plainyaml import plain
from infomin.views.base import ViewGenerator
from infomin.views.spec import dump_spec, read_yaml
from infomin.views.spec import resolve as resolve_spec

FORMAT = "infomin.view_generator/1"
WEIGHTS_SUFFIX = ".safetensors"
#: suffixes of formats that unpickle on load; refused outright
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib", ".tar")

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")


class UnsafeFileError(InfominError):
    """A file that would execute code when loaded (pickle, ``torch.save`` archive) or is not what it claims."""


# ---------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------
def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".yaml", ".yml", WEIGHTS_SUFFIX):
        p = p.with_suffix("")
    return p.with_suffix(".yaml"), p.with_suffix(WEIGHTS_SUFFIX)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(generator: ViewGenerator, path: str | Path, *, provenance: dict[str, Any] | None = None,
         name: str | None = None) -> Path:
    """Write ``<path>.yaml`` (spec + meta) and ``<path>.safetensors`` (weights); return the YAML path.

    Args:
        generator: any view generator (its :meth:`~ViewGenerator.to_spec` must rebuild it).
        path: ``foo.yaml``, ``foo.safetensors`` or ``foo``: both files are written next to each other.
        provenance: free-form, plain values (e.g. ``run_id``, ``dataset``, ``seed``); the
            date and the torch / infomin versions are added.
        name: a human name for the generator (defaults to the file stem).
    """
    from safetensors.torch import save_file  # heavy-ish; only saving needs it

    if not isinstance(generator, ViewGenerator):
        raise SpecError("generator", type(generator).__name__, "expected an infomin ViewGenerator")
    yaml_path, weights_path = _paths(path)
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous tensors that do not share memory
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in generator.state_dict().items()}
    save_file(state, str(weights_path), metadata={"format": FORMAT, "kind": generator.kind})
    prov = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__.split("+")[0],
        "infomin": _version(),
    }
    prov.update(plain(dict(provenance or {})))
    spec = generator.to_spec()
    spec["meta"] = {
        "format": FORMAT,
        "name": name or yaml_path.stem,
        "weights": weights_path.name,
        "sha256": sha256_file(weights_path),
        "provenance": prov,
    }
    dump_spec(spec, yaml_path, comment=f"infomin learned view generator ({FORMAT}); weights in "
                                       f"{weights_path.name}; load with infomin.views.load(path)")
    return yaml_path


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("infomin")
    except Exception:  # noqa: BLE001  (not installed: running from a checkout)
        return "dev"


# ---------------------------------------------------------------------------------------------
# read
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SavedGenerator:
    """A saved generator's YAML, read once: its spec (without ``meta``) and its ``meta`` block."""

    yaml_path: Path
    spec: dict[str, Any]
    meta: dict[str, Any]

    @property
    def weights_path(self) -> Path:
        return self.yaml_path.parent / str(self.meta.get("weights"))

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.meta.get("provenance") or {})


def read_saved(path: str | Path) -> SavedGenerator | None:
    """The saved generator at a YAML path or preset name, or ``None`` for a plain spec.

    A file is a saved generator when its ``meta`` block names a weights file.
    Raises :class:`SpecError` for a missing file or invalid YAML, and
    :class:`UnsafeFileError` for a pickle.
    """
    p = Path(path)
    if p.is_file():
        refuse_pickle(p)
    doc = read_yaml(path)
    meta = doc.pop("meta", None)
    if not (isinstance(meta, dict) and meta.get("weights")):
        return None
    return SavedGenerator(resolve_spec(path), doc, meta)


def read_meta(yaml_path: str | Path) -> dict[str, Any]:
    """The ``meta`` block of a saved generator's YAML (format, weights, sha256, provenance)."""
    saved = read_saved(yaml_path)
    if saved is None:
        raise SpecError("source", str(yaml_path),
                        "not a saved view generator (no 'meta' block; save one with infomin.views.save)")
    return saved.meta


_PICKLE_PROTOCOL_BYTE = {bytes([0x80, n]) for n in range(2, 6)}


def refuse_pickle(path: Path) -> None:
    """Raise :class:`UnsafeFileError` for a pickle or zip (``torch.save``) file, by its bytes or suffix."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(
            f"{path}: refusing to load a {path.suffix} file: it is a pickle-based format that can run "
            "arbitrary code when loaded. infomin loads only a YAML spec + .safetensors weights "
            "(see infomin.views.save).")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] in _PICKLE_PROTOCOL_BYTE:
        raise UnsafeFileError(f"{path}: this file is a Python pickle; refusing to load it "
                              "(unpickling runs arbitrary code). Expected YAML + .safetensors.")
    if head[:4] == b"PK\x03\x04":
        raise UnsafeFileError(f"{path}: this file is a zip archive (torch.save / pickle-based "
                              "checkpoint); refusing to load it. Expected YAML + .safetensors.")


def _check_safetensors_header(path: Path) -> dict[str, Any]:
    """Validate the safetensors layout (8-byte little-endian header size, then JSON) without loading."""
    refuse_pickle(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        n = struct.unpack("<Q", raw)[0] if len(raw) == 8 else -1
        if not (0 < n <= size - 8):
            raise UnsafeFileError(f"{path}: not a safetensors file (bad header size)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise UnsafeFileError(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise UnsafeFileError(f"{path}: not a safetensors file (header is not a JSON object)")
    return header


# ---------------------------------------------------------------------------------------------
# load weights
# ---------------------------------------------------------------------------------------------
def load_weights(generator: ViewGenerator, saved: SavedGenerator, *,
                 map_location: str | torch.device = "cpu") -> ViewGenerator:
    """Check ``saved``'s weights file (format, hash, header, names, shapes) and load it into
    ``generator`` (built from ``saved.spec``); returns it on ``map_location``, in train mode.

    Raises:
        UnsafeFileError: a pickle / ``torch.save`` file, or weights that are not safetensors.
        InfominError: the weights' SHA-256 differs from the one recorded in the YAML.
        SpecError: an unknown format, a missing file, or tensor names / shapes that do not
            match the spec.
    """
    from safetensors.torch import load_file  # only loading needs it

    meta, yaml_path = saved.meta, saved.yaml_path
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise SpecError("meta.format", fmt, f"unsupported format of {yaml_path}", choices=[FORMAT])
    weights_name = meta.get("weights")
    if not isinstance(weights_name, str) or Path(weights_name).name != weights_name:
        raise SpecError("meta.weights", weights_name, "expected a file name next to the YAML")
    weights_path = saved.weights_path
    if Path(weights_name).suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(f"{weights_path}: refusing pickle-based weights; expected .safetensors")
    if not weights_path.is_file():
        raise SpecError("meta.weights", weights_name, f"weights file not found next to {yaml_path}")
    header = _check_safetensors_header(weights_path)
    expected = meta.get("sha256")
    actual = sha256_file(weights_path)
    if expected != actual:
        raise InfominError(
            f"{weights_path}: SHA-256 mismatch (YAML records {expected}, file has {actual}): the "
            "weights were modified after saving or belong to another generator; refusing to load.")
    expected_shapes = {k: tuple(v.shape) for k, v in generator.state_dict().items()}
    found_shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    missing = sorted(set(expected_shapes) - set(found_shapes))
    unexpected = sorted(set(found_shapes) - set(expected_shapes))
    wrong = sorted(k for k in set(expected_shapes) & set(found_shapes)
                   if expected_shapes[k] != found_shapes[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected}")
        if wrong:
            parts.append("wrong shapes " + ", ".join(
                f"{k}: file {list(found_shapes[k])} vs spec {list(expected_shapes[k])}" for k in wrong))
        raise SpecError("weights", weights_path.name,
                        f"do not match the spec in {yaml_path.name}: " + "; ".join(parts))
    device = str(map_location) if isinstance(map_location, torch.device) else map_location
    state = load_file(str(weights_path), device=device)
    generator.load_state_dict(state, strict=True)
    return generator.to(device).train()


__all__ = ["FORMAT", "SavedGenerator", "UnsafeFileError", "load_weights", "read_meta", "read_saved",
           "refuse_pickle", "save", "sha256_file"]
