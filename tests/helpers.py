"""Test helpers importable from any test module (``from helpers import need``)."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def cifar_arrays_dir() -> Path:
    """The CIFAR-10 arrays the tests use: ``$INFOMIN_TEST_DATA``, else the CI machine's data
    folder beside the checkout (test infrastructure only; the library never looks there)."""
    return Path(os.environ.get("INFOMIN_TEST_DATA", REPO.parent / "shared" / "data"))


def need(condition: bool, why: str) -> None:
    """Skip outside CI when ``condition`` is false; fail in CI (no skips there but GPU-only ones)."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at this moment)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hold_write_lock(db: Path, seconds: float) -> None:
    """Hold SQLite file ``db``'s write lock for ``seconds`` (another writer blocks meanwhile)."""
    holder = sqlite3.connect(db, isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")
    time.sleep(seconds)
    holder.execute("ROLLBACK")
    holder.close()
