"""Helpers shared by the command modules: turning library errors into clean messages."""

from __future__ import annotations

import contextlib

import typer
from rich.console import Console

from infomin.errors import InfominError

console = Console(stderr=True)


@contextlib.contextmanager
def user_errors():
    """Print an :class:`InfominError` as one red line and exit 2, instead of a traceback."""
    try:
        yield
    except InfominError as e:
        console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
