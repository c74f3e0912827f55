"""Shared test fixtures.

* torch uses one thread per test process (CI has 2 cores; tests are small);
* ``mlflow_uri``: a throw-away SQLite MLflow store in the test's tmp folder;
* ``tracking_db``: the same, copied from a store initialised once per session (creating
  an MLflow database runs its Alembic migrations, several seconds);
* ``cifar_dir``: the real CIFAR-10 arrays (:func:`helpers.cifar_arrays_dir`), also set as
  ``$INFOMIN_DATA_ROOT`` so ``load("cifar10-npz")`` finds them. Outside CI a missing folder
  skips the test with a clear message; in CI (``CI=true``) it fails.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from helpers import IN_CI, REPO, cifar_arrays_dir, need  # noqa: E402,F401


@pytest.fixture
def cifar_dir(monkeypatch) -> Path:
    d = cifar_arrays_dir()
    need((d / "cifar10_test.npz").is_file(),
         f"real CIFAR-10 arrays (cifar10_train.npz, cifar10_test.npz) not found in {d}; "
         "set INFOMIN_TEST_DATA to their folder")
    monkeypatch.setenv("INFOMIN_DATA_ROOT", str(d))
    return d


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(autouse=True)
def _chdir_tmp(tmp_path, monkeypatch):
    """Every test runs in its own folder, so default outputs (mlflow.db, runs/) never leak."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INFOMIN_VIEWS_DIR", str(REPO / "views"))


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
    # SQLite's backup API, not a file copy: a store this process still holds open may keep its last
    # writes in a journal beside the file (mlflow.db-wal in WAL mode)
    src, out = sqlite3.connect(_mlflow_template), sqlite3.connect(dst)
    try:
        src.backup(out)
    finally:
        src.close()
        out.close()
    uri = f"sqlite:///{dst}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
