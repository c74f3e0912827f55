"""The ``infomin`` command. Each command group lives in its own module and only
parses, validates and calls library functions (docs/architecture.md).

Registering the commands imports only typer, rich and infomin's light modules: torch, mlflow,
kornia, optuna and scikit-learn are imported inside the command functions that use them, so
``infomin --help`` starts in well under a second (``bench/cli_startup.py``,
``tests/test_cli_startup.py``)."""

from __future__ import annotations

import os

import typer

# Backstop: never unpickle MLflow artifacts in our processes (see infomin.views.io).
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")

app = typer.Typer(
    name="infomin",
    help="Find the right views for contrastive learning: build and preview view generators, "
    "train and score candidates, run Optuna studies, learn views adversarially.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _register() -> None:
    import importlib

    for mod in ("views", "train", "study", "learn", "ui"):
        try:
            m = importlib.import_module(f"infomin.cli.{mod}")
        except ModuleNotFoundError as e:  # a command group not written yet
            if e.name == f"infomin.cli.{mod}":
                continue
            raise
        m.register(app)


_register()


def main() -> None:  # pragma: no cover
    app()
