"""Test helpers importable from any test module (``from helpers import need``)."""

from __future__ import annotations

import os
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
