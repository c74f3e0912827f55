"""Save and load learned view generators: safetensors weights + a YAML spec, never pickle.

A saved generator is two files side by side::

    views/learned/flow_toy.yaml          # kind + parameters (a normal view spec) + meta
    views/learned/flow_toy.safetensors   # the state_dict, as plain tensors

The YAML is an ordinary spec (``infomin.views.build`` reads it; its ``meta``
block is ignored there) plus ``meta``: the format version, the weights file
name, its SHA-256 and the provenance (run id, dataset, seed, date, versions).

:func:`load` accepts a YAML path, a preset name under ``views/learned/``, an
MLflow ``runs:/<run_id>/<path>`` URI or a registry ``models:/<name>@<alias>``
URI. It builds the generator from the spec, checks the weights file's hash,
header, keys and shapes, and loads them with :func:`safetensors.torch.load_file`.
Nothing is ever unpickled: ``torch.load`` and ``mlflow.pytorch.load_model``
execute code embedded in a crafted file (``mlflow.pytorch.load_model`` does so
even under MLflow 3.17's defaults), so they are not used, and a file that is a
pickle or a ``torch.save`` archive is refused with a clear error.

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
from pathlib import Path
from typing import Any

import torch
import yaml

from infomin.errors import InfominError, SpecError
from infomin.views.base import ViewGenerator

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
    from safetensors.torch import save_file

    from infomin.views.spec import _plain, dump_spec

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
    prov.update(_plain(dict(provenance or {})))
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
# load
# ---------------------------------------------------------------------------------------------
def load(source: str | Path, *, frozen: bool = True, map_location: str | torch.device = "cpu"
         ) -> ViewGenerator:
    """Return the saved generator that ``source`` names, weights loaded and checked.

    Args:
        source: a YAML path (or its ``.safetensors`` twin), a folder holding one
            saved generator, a preset name under ``views/learned/`` (``flow_toy`` or
            ``learned/flow_toy``), ``runs:/<run_id>/<artifact path>`` or
            ``models:/<name>@<alias>`` (also ``models:/<name>/<version>``).
        frozen: ``eval()`` and ``requires_grad_(False)`` (the default, for reuse);
            ``False`` returns a trainable module in train mode.
        map_location: device for the weights.

    Raises:
        UnsafeFileError: a pickle / ``torch.save`` file, or weights that are not safetensors.
        InfominError: the weights' SHA-256 differs from the one recorded in the YAML.
        SpecError: a bad spec, or tensor names / shapes that do not match the spec.
    """
    yaml_path = resolve(source)
    return _load_yaml(yaml_path, frozen=frozen, map_location=map_location)


def resolve(source: str | Path) -> Path:
    """The local YAML path that ``source`` names (downloading MLflow artifacts if needed)."""
    s = str(source)
    if s.startswith(("runs:/", "models:/")):
        from infomin import tracking

        return tracking.download_view_generator(s)
    p = Path(source)
    if p.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeFileError(
            f"{p}: refusing to load a {p.suffix} file: it is a pickle-based format that can run "
            "arbitrary code when loaded. infomin loads only a YAML spec + .safetensors weights "
            "(see infomin.views.save).")
    if p.is_dir():
        found = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml"))
        if len(found) != 1:
            raise SpecError("source", s, f"expected one saved generator (.yaml) in the folder, "
                                         f"found {[f.name for f in found]}")
        return found[0]
    if p.suffix == WEIGHTS_SUFFIX:
        p = p.with_suffix(".yaml")
    if p.is_file():
        _refuse_pickle(p)
        return p
    if not p.suffix:  # a preset name
        from infomin.views.spec import presets

        table = presets()
        for key in (s, f"learned/{s}"):
            if key in table:
                return table[key]
        learned = sorted(k for k in table if k.startswith("learned/"))
        raise SpecError("source", s, "no such file, URI or learned preset", choices=learned)
    raise SpecError("source", s, "file not found")


_PICKLE_PROTOCOL_BYTE = {bytes([0x80, n]) for n in range(2, 6)}


def _refuse_pickle(path: Path) -> None:
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
    _refuse_pickle(path)
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


def read_meta(yaml_path: str | Path) -> dict[str, Any]:
    """The ``meta`` block of a saved generator's YAML (format, weights, sha256, provenance)."""
    text = Path(yaml_path).read_text()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError("source", str(yaml_path), f"not valid YAML ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict):
        raise SpecError("source", str(yaml_path),
                        "not a saved view generator (no 'meta' block; save one with infomin.views.save)")
    return doc["meta"]


def _load_yaml(yaml_path: Path, *, frozen: bool, map_location: str | torch.device) -> ViewGenerator:
    from safetensors.torch import load_file

    from infomin.views.registry import build
    from infomin.views.spec import load_spec

    meta = read_meta(yaml_path)
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise SpecError("meta.format", fmt, f"unsupported format of {yaml_path}", choices=[FORMAT])
    weights_name = meta.get("weights")
    if not isinstance(weights_name, str) or Path(weights_name).name != weights_name:
        raise SpecError("meta.weights", weights_name, "expected a file name next to the YAML")
    weights_path = yaml_path.parent / weights_name
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

    generator = build(load_spec(yaml_path), field=f"{yaml_path.name}")
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
    generator.to(device)
    if frozen:
        generator.requires_grad_(False)
        generator.eval()
    return generator


__all__ = ["save", "load", "resolve", "read_meta", "sha256_file", "UnsafeFileError", "FORMAT"]
