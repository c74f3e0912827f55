"""ViewSpec: one format for presets (YAML), code (dicts), Optuna and MLflow (flat dicts).

A spec is a dict with a ``kind`` and that kind's parameters; a parameter may
itself be a spec (``{"kind": "pair", "spatial": {"kind": ...}}``). The flat
form joins nested keys with dots (``spatial.scale``), which is what Optuna
trials and MLflow params hold; :func:`unflatten` inverts it exactly.

Presets are YAML files in the repository's ``views/`` folder (``views/learned/``
for learned generators); ``INFOMIN_VIEWS_DIR`` points elsewhere.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from infomin.errors import SpecError
from infomin.plainyaml import dump

SEP = "."


def preset_dirs() -> list[Path]:
    """Folders searched for presets, in order: ``$INFOMIN_VIEWS_DIR``, ``./views``, the repo's ``views/``."""
    dirs = []
    env = os.environ.get("INFOMIN_VIEWS_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(Path.cwd() / "views")
    dirs.append(Path(__file__).resolve().parents[2] / "views")
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen and r.is_dir():
            seen.add(r)
            out.append(r)
    return out


def presets() -> dict[str, Path]:
    """Preset name -> YAML path (``learned/<name>`` for learned ones); first folder wins."""
    out: dict[str, Path] = {}
    for d in preset_dirs():
        for p in sorted(d.glob("*.yaml")) + sorted(d.glob("learned/*.yaml")):
            name = p.stem if p.parent == d else f"learned/{p.stem}"
            out.setdefault(name, p)
    return out


def resolve(source: str | Path) -> Path:
    """The YAML file behind a path or a preset name (``simclr``, ``learned/foo``)."""
    path = Path(source)
    if not path.suffix and not path.exists():
        table = presets()
        if str(source) not in table:
            raise SpecError("views", str(source), "no such preset or file", choices=sorted(table))
        path = table[str(source)]
    if not path.is_file():
        raise SpecError("views", str(source), "file not found")
    return path


def read_yaml(source: str | Path) -> dict[str, Any]:
    """The whole YAML mapping of a spec file or preset, ``meta`` (learned generators) included."""
    path = resolve(source)
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError("views", str(path), f"not valid YAML ({e})") from None
    if not isinstance(spec, dict):
        raise SpecError("views", str(path), "expected a YAML mapping with a 'kind'")
    return spec


def load_spec(source: str | Path) -> dict[str, Any]:
    """Read a spec from a YAML file path or a preset name (``simclr``, ``learned/foo``)."""
    spec = read_yaml(source)
    spec.pop("meta", None)  # provenance of learned presets; not a constructor argument
    return spec


def dump_spec(spec: dict[str, Any], path: str | Path | None = None, *, comment: str | None = None) -> str:
    """Write ``spec`` as YAML (to ``path`` if given) and return the text."""
    return dump(spec, path, comment=comment)


def flatten(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``. Lists stay values."""
    out: dict[str, Any] = {}
    for k, v in spec.items():
        key = f"{prefix}{SEP}{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten`."""
    out: dict[str, Any] = {}
    for key, v in flat.items():
        parts = key.split(SEP)
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SpecError(key, v, f"'{p}' is a value, not a nested spec")
        node[parts[-1]] = v
    return out


def merge(spec: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` (nested or dotted keys) into a copy of ``spec``.

    A nested dict that changes ``kind`` replaces the sub-spec instead of merging
    into it (a crop of another kind keeps none of the old crop's parameters).
    """
    out = copy.deepcopy(spec)
    for key, v in unflatten(overrides).items():
        if isinstance(v, dict) and isinstance(out.get(key), dict) and v.get("kind", out[key].get("kind")) == out[key].get("kind"):
            out[key] = merge(out[key], v)
        else:
            out[key] = copy.deepcopy(v)
    return out
