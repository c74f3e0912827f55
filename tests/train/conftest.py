"""Fixtures for the training tests: a pre-initialised MLflow SQLite store.

Creating an MLflow database runs its Alembic migrations (several seconds); the
template is made once per session and copied per test.
"""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory):
    from infomin import tracking

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    tracking.get_or_create_experiment("template", uri=f"sqlite:///{path}")
    return path


@pytest.fixture
def tracking_db(tmp_path, monkeypatch, _mlflow_template) -> str:
    """A fresh, initialised store in the test's folder, exported as ``MLFLOW_TRACKING_URI``."""
    dst = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_template, dst)
    uri = f"sqlite:///{dst}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
