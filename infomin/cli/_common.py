"""Helpers shared by the command modules: clean error messages, ``--set key=value`` parsing."""

from __future__ import annotations

import contextlib

import click
import typer
import yaml
from rich.console import Console
from rich.markup import escape

from infomin.errors import InfominError, SpecError, redact

console = Console(stderr=True)


@contextlib.contextmanager
def user_errors(verbose: bool | None = None):
    """Print a failure as one red line (secrets redacted) and exit with its code.

    An :class:`InfominError` exits with its ``exit_code`` (2: input the user can fix; 1: a
    failure that is not the user's, such as a store unreachable for longer than the
    patience); Ctrl-C or SIGTERM exits 130. Commands that offer ``--verbose`` pass it:
    then any other exception is one line and exit 1 too, and ``--verbose`` prints the
    traceback first; with ``verbose=None`` such an exception propagates (a traceback).
    """
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except InfominError as e:
        if verbose:
            console.print_exception()
        console.print(f"[bold red]error:[/] {escape(redact(str(e)))}", soft_wrap=True, highlight=False)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt as e:
        reason = getattr(e, "reason", None) or "interrupted"
        console.print(f"[yellow]stopped:[/] {escape(redact(reason))}", soft_wrap=True, highlight=False)
        raise typer.Exit(130) from None
    except Exception as e:
        if verbose is None:
            raise
        from infomin.retry import describe  # the CLI imports the library lazily (fast --help)

        if verbose:
            console.print_exception()
        console.print(f"[bold red]error:[/] {type(e).__name__}: {escape(describe(e))} "
                      "(an unexpected failure; --verbose shows the traceback)", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None


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
