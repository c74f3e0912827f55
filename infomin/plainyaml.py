"""YAML in and out of plain data: the one place specs, configs and saved generators are written.

:func:`plain` turns tuples, mappings and numpy / torch scalars into lists, dicts and Python
numbers, so ``yaml.safe_dump`` (and JSON) accept the result and ``yaml.safe_load`` reads it
back without any custom tag; :func:`dump` writes it, with an optional comment header.

>>> plain({"split": ((0,), (1, 2)), "tau": 0.5})
{'split': [[0], [1, 2]], 'tau': 0.5}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def plain(obj: Any) -> Any:
    """Tuples -> lists, mappings -> dicts, numpy/torch scalars -> Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    item = getattr(obj, "item", None)   # numpy and torch scalars
    if callable(item) and getattr(obj, "ndim", 1) == 0:
        return item()
    return obj


def dump(obj: Any, path: str | Path | None = None, *, comment: str | None = None) -> str:
    """``obj`` as YAML (keys in their order), written to ``path`` if given; returns the text."""
    text = yaml.safe_dump(plain(obj), sort_keys=False)
    if comment:
        text = "".join(f"# {line}\n" for line in comment.splitlines()) + text
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text


__all__ = ["dump", "plain"]
