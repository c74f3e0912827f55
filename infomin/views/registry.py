"""Name -> factory: register, build and list view-generator kinds.

``@register("random_resized_crop")`` puts a class in the registry (a duplicate
name raises); :func:`build` turns a spec (a dict, a YAML path or a preset
name) into a generator, checking the kind and every parameter name first so a
typo is reported with the valid choices instead of a ``TypeError`` deep inside
``__init__``. Value ranges are checked by each class's constructor.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from infomin.errors import SpecError
from infomin.views import io
from infomin.views.base import ViewGenerator
from infomin.views.spec import load_spec

_REGISTRY: dict[str, type[ViewGenerator]] = {}


def register(kind: str):
    """Class decorator: register a :class:`ViewGenerator` subclass under ``kind``."""

    def deco(cls: type[ViewGenerator]) -> type[ViewGenerator]:
        prev = _REGISTRY.get(kind)
        # The same class imported twice (doctest collection, importlib reloads) is not a clash.
        same = prev is not None and (prev.__module__, prev.__qualname__) == (cls.__module__, cls.__qualname__)
        if prev is not None and prev is not cls and not same:
            raise ValueError(f"view kind {kind!r} is already registered by {_REGISTRY[kind].__qualname__}")
        if not (isinstance(cls, type) and issubclass(cls, ViewGenerator)):
            raise TypeError(f"{cls!r} is not a ViewGenerator subclass")
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return deco


def kinds() -> list[str]:
    return sorted(_REGISTRY)


def get(kind: Any) -> type[ViewGenerator]:
    if kind not in _REGISTRY:
        raise SpecError("kind", kind, choices=sorted(_REGISTRY))
    return _REGISTRY[kind]


def parameters(kind: str) -> dict[str, Any]:
    """Constructor parameters of ``kind`` with their defaults (``inspect.Parameter.empty`` if required)."""
    sig = inspect.signature(get(kind).__init__)
    return {name: p.default for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def available() -> dict[str, dict[str, Any]]:
    """Every registered kind with its parameters (defaults) and the first line of its docstring."""
    out = {}
    for kind in kinds():
        cls = _REGISTRY[kind]
        doc = (inspect.getdoc(cls) or "").strip().splitlines()
        out[kind] = {
            "params": {k: (None if v is inspect.Parameter.empty else v) for k, v in parameters(kind).items()},
            "required": [k for k, v in parameters(kind).items() if v is inspect.Parameter.empty],
            "channels_declared": True,
            "differentiable": sorted(cls.differentiable),
            "doc": doc[0] if doc else "",
        }
    return out


def build(spec: Any, *, field: str = "views") -> ViewGenerator:
    """Build a view generator from a dict, a YAML file path, a preset name, or a generator.

    A saved learned generator (a YAML whose ``meta`` names a safetensors file) comes
    with its weights, hash-checked, trainable like any built generator;
    :func:`infomin.views.load` gives the frozen one and also resolves MLflow URIs.

    >>> from infomin.views import build
    >>> gen = build({"kind": "channel_split", "space": "lab"})
    >>> gen.channels
    (1, 2)
    """
    if isinstance(spec, ViewGenerator):
        return spec
    if isinstance(spec, (str, Path)):
        saved = io.read_saved(spec)
        if saved is not None:
            return io.load_weights(build(saved.spec, field=saved.yaml_path.name), saved)
        spec = load_spec(spec)
    if not isinstance(spec, dict):
        raise SpecError(field, spec, "expected a dict with a 'kind', a YAML path or a preset name")
    if "kind" not in spec:
        raise SpecError(f"{field}.kind", None, "missing", choices=kinds())
    spec = dict(spec)
    kind = spec.pop("kind")
    try:
        cls = get(kind)
    except SpecError as e:
        raise SpecError(f"{field}.kind", kind, choices=e.choices) from None
    allowed = parameters(kind)
    for name in spec:
        if name not in allowed:
            raise SpecError(f"{field}.{name}", spec[name], f"unknown parameter of kind {kind!r}",
                            choices=sorted(allowed))
    missing = [k for k, v in allowed.items() if v is inspect.Parameter.empty and k not in spec]
    if missing:
        raise SpecError(f"{field}.{missing[0]}", None, f"required by kind {kind!r}")
    try:
        return cls(**spec)
    except SpecError as e:
        if e.field.startswith(field + "."):
            raise
        raise SpecError(f"{field}.{e.field}", e.value, e.message, choices=e.choices) from None
