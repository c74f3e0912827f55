"""Helpers shared by the command modules: clean error messages, ``--set key=value`` parsing."""

from __future__ import annotations

import contextlib

import typer
import yaml
from rich.console import Console

from infomin.errors import InfominError, SpecError

console = Console(stderr=True)


@contextlib.contextmanager
def user_errors():
    """Print an :class:`InfominError` as one red line and exit 2, instead of a traceback."""
    try:
        yield
    except InfominError as e:
        console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None


def parse_sets(items: list[str] | None) -> dict:
    """``["a=1", "eval.epochs=8"]`` -> ``{"a": 1, "eval": {"epochs": 8}}`` (values parsed as YAML).

    >>> parse_sets(["knn_k=50", "eval.epochs=8", "eval.lr=0.5"])
    {'knn_k': 50, 'eval': {'epochs': 8, 'lr': 0.5}}
    """
    values: dict = {}
    for item in items or []:
        if "=" not in item:
            raise SpecError("--set", item, "expected key=value (e.g. --set knn_k=50)")
        key, raw = item.split("=", 1)
        *parents, last = key.strip().split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError("--set", item, f"{part!r} is set to a value already")
        node[last] = yaml.safe_load(raw) if raw.strip() else None
    return values
