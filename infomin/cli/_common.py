"""Helpers shared by the command modules: turning library errors into clean messages."""

from __future__ import annotations

import contextlib

import click
import typer
from rich.console import Console
from rich.markup import escape

from infomin.errors import InfominError, redact

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
        from infomin.retry import describe

        if verbose:
            console.print_exception()
        console.print(f"[bold red]error:[/] {type(e).__name__}: {escape(describe(e))} "
                      "(an unexpected failure; --verbose shows the traceback)", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
