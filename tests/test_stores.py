"""infomin.stores: store locations without mlflow, and a browse command that works as printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO, need

from infomin import stores


def test_defaults_follow_the_tracking_store(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("INFOMIN_STORAGE", raising=False)
    assert stores.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert stores.default_storage_url() == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert stores.default_storage_url("sqlite:////data/x/mlflow.db") == "sqlite:////data/x/optuna.db"
    assert stores.default_storage_url("http://mlflow:5000") == f"sqlite:///{tmp_path / 'optuna.db'}"
    monkeypatch.setenv("INFOMIN_STORAGE", "postgresql://u@db/optuna")
    assert stores.default_storage_url() == "postgresql://u@db/optuna"


def test_browse_command_names_only_what_differs_from_the_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("INFOMIN_STORAGE", raising=False)
    ui = stores.script("infomin") + " ui"
    assert stores.browse_command() == ui
    assert stores.browse_command(f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}") == ui
    assert stores.browse_command("sqlite:////d/mlflow.db", "sqlite:////d/optuna.db") == \
        f"{ui} --tracking-uri sqlite:////d/mlflow.db"
    assert stores.browse_command(None, "sqlite:////e/o.db") == f"{ui} --storage sqlite:////e/o.db"
    # a variable set where the run happened may be missing where the line is pasted: spelled out
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////d/mlflow.db")
    assert "--tracking-uri sqlite:////d/mlflow.db" in stores.browse_command()


def test_browse_command_never_prints_a_password(monkeypatch):
    url = "postgresql://me:secret@db:5432/optuna"
    assert "secret" not in stores.browse_command(None, url)
    monkeypatch.setenv("INFOMIN_STORAGE", url)
    # the runner normalises the URL to the psycopg driver: still the variable's value
    assert stores.browse_command(None, "postgresql+psycopg://me:secret@db:5432/optuna").endswith(
        '--storage "$INFOMIN_STORAGE"')


def test_script_is_callable_as_printed(tmp_path):
    """The printed name runs from the cwd: bare when PATH finds this environment's script, a path
    (relative below the cwd, else absolute) when it does not."""
    bindir = Path(sys.executable).parent
    need((bindir / "infomin").exists(), f"infomin is not installed as a script in {bindir}")
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    probe = tmp_path / "probe.py"   # a file, not -c: the cwd must not shadow the infomin under test
    probe.write_text("from infomin.stores import script; print(script('infomin'))\n")

    def printed(cwd: Path) -> str:
        return subprocess.run([sys.executable, str(probe)], env=env, cwd=cwd, capture_output=True,
                              text=True, check=True).stdout.strip()

    out = printed(tmp_path)
    assert out == str((bindir / "infomin").absolute())
    r = subprocess.run([out, "--help"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "infomin" in r.stdout
    # `make demo`: the venv lies in the cwd, so the line reads .venv/bin/infomin ui
    root = bindir.parent.parent
    rel = printed(root)
    assert rel == str((bindir / "infomin").absolute().relative_to(root)) and not rel.startswith("/")
    r = subprocess.run([rel, "--help"], env=env, cwd=root, capture_output=True, text=True, shell=False)
    assert r.returncode == 0 and "infomin" in r.stdout
    env["PATH"] = f"{bindir}:/usr/bin:/bin"
    assert printed(tmp_path) == "infomin"
