"""Where views come from: one resolver for every way a user names them.

``views`` may be a preset name (``"lab_l_ab"``, ``"learned/flow_toy"``), a YAML
path (a plain spec or a saved generator, or its ``.safetensors`` twin, or a folder
holding one), an MLflow URI (``runs:/<run_id>/view_generator``,
``models:/<name>@<alias>``), ``{"source": <any of those>}`` (how a study's
``suggest`` proposes a saved generator), a spec dict, or a :class:`ViewGenerator`.
:func:`resolve_source` turns each into one :class:`ViewSource`;
:func:`build_views` builds it (weights loaded for saved generators);
:func:`load` is the user-facing reader of saved generators (frozen by default).

>>> src = resolve_source("lab_l_ab")
>>> src.spec["kind"], src.saved is None
('channel_split', True)
>>> spec, gen = build_views({"kind": "channel_split", "space": "ydbdr"})
>>> gen.channels
(1, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from infomin.errors import SpecError
from infomin.views import hub, io
from infomin.views.base import ViewGenerator
from infomin.views.registry import build
from infomin.views.spec import load_spec, presets

SOURCE_KEY = "source"


@dataclass(frozen=True)
class ViewSource:
    """A resolved view reference.

    ``spec`` is what a run records as its views (kind and parameters; ``source`` added
    when they come from a saved file or an MLflow URI, so the run can be re-made);
    ``saved`` is the saved generator's files (``None`` for a plain spec); ``generator``
    is set when the caller passed a module.
    """

    spec: dict[str, Any]
    saved: io.SavedGenerator | None = None
    generator: ViewGenerator | None = None

    @property
    def has_weights(self) -> bool:
        return self.saved is not None


def _local_yaml(source: str | Path, *, learned_only: bool) -> Path:
    """The YAML file a local path or preset name refers to."""
    s = str(source)
    p = Path(source)
    if p.suffix.lower() in io.PICKLE_SUFFIXES:
        io.refuse_pickle(p)  # raises for the suffix, without opening the file
    if p.is_dir():
        found = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml"))
        if len(found) != 1:
            raise SpecError("source", s, f"expected one saved generator (.yaml) in the folder, "
                                         f"found {[f.name for f in found]}")
        return found[0]
    if p.suffix == io.WEIGHTS_SUFFIX:
        p = p.with_suffix(".yaml")
    if p.is_file():
        return p
    if p.suffix:
        raise SpecError("source" if learned_only else "views", s, "file not found")
    table = presets()
    for key in (s, f"learned/{s}"):
        if key in table and (not learned_only or key.startswith("learned/")):
            return table[key]
    if learned_only:
        raise SpecError("source", s, "no such file, URI or learned preset",
                        choices=sorted(k for k in table if k.startswith("learned/")))
    raise SpecError("views", s, "no such preset or file", choices=sorted(table))


def resolve_source(views: Any) -> ViewSource:
    """Resolve any way of naming views (see the module docstring) into a :class:`ViewSource`.

    Raises :class:`SpecError` naming the field for an unknown preset, a missing file, a
    ``{"source": ...}`` with other keys, or anything that is not a view reference.
    """
    if isinstance(views, ViewGenerator):
        return ViewSource(views.to_spec(), generator=views)
    if isinstance(views, Mapping) and SOURCE_KEY in views and "kind" not in views:
        if set(views) != {SOURCE_KEY}:
            extra = sorted(set(views) - {SOURCE_KEY})[0]
            raise SpecError(f"views.{extra}", views[extra],
                            "a {'source': ...} view takes no other keys (its spec is in the file)")
        return resolve_source(str(views[SOURCE_KEY]))
    if isinstance(views, (str, Path)):
        if hub.is_uri(views):
            saved = io.read_saved(hub.download_view_generator(str(views)))
            if saved is None:
                raise SpecError("source", str(views), "not a saved view generator")
            return ViewSource({**saved.spec, SOURCE_KEY: str(views)}, saved)
        path = _local_yaml(views, learned_only=False)
        saved = io.read_saved(path)
        if saved is not None:
            return ViewSource({**saved.spec, SOURCE_KEY: str(path)}, saved)
        return ViewSource(load_spec(path))
    if not isinstance(views, Mapping):
        raise SpecError("views", views, "expected a preset name, a YAML path, a runs:/ or models:/ URI, "
                                        "a dict or a ViewGenerator")
    spec = {k: v for k, v in views.items() if k != SOURCE_KEY}
    return ViewSource(spec)


def build_views(views: Any) -> tuple[dict[str, Any], ViewGenerator]:
    """``views`` -> ``(spec, generator)``: the recorded spec and a built, trainable generator."""
    src = resolve_source(views)
    if src.generator is not None:
        return src.spec, src.generator
    if src.saved is not None:
        gen = build(src.saved.spec, field=src.saved.yaml_path.name)
        return src.spec, io.load_weights(gen, src.saved)
    return src.spec, build(src.spec)


def load(source: str | Path, *, frozen: bool = True,
         map_location: str | torch.device = "cpu") -> ViewGenerator:
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
        SpecError: not a saved generator, a bad spec, or tensor names / shapes that do not
            match the spec.
    """
    if hub.is_uri(source):
        path = hub.download_view_generator(str(source))
    else:
        path = _local_yaml(source, learned_only=True)
    saved = io.read_saved(path)
    if saved is None:
        raise SpecError("source", str(source),
                        "not a saved view generator (no 'meta' block; save one with infomin.views.save, "
                        "or build a plain spec with infomin.views.build)")
    gen = io.load_weights(build(saved.spec, field=saved.yaml_path.name), saved,
                          map_location=map_location)
    if frozen:
        gen.requires_grad_(False).eval()
    return gen


__all__ = ["ViewSource", "build_views", "load", "resolve_source"]
