"""Shared test fixtures.

* torch uses one thread per test process (CI has 2 cores; tests are small);
* ``mlflow_uri``: a throw-away SQLite MLflow store in the test's tmp folder;
* ``cifar_dir``: the real CIFAR-10 arrays in ../shared/data. Outside CI a
  missing folder skips the test with a clear message; in CI (``CI=true``) it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from helpers import IN_CI, REPO, need, shared_data_dir  # noqa: E402,F401


@pytest.fixture
def cifar_dir() -> Path:
    d = shared_data_dir()
    need((d / "cifar10_test.npz").is_file(),
         f"real CIFAR-10 arrays not found in {d} (set INFOMIN_SHARED_DATA or place ../shared/data)")
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
