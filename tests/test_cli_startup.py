"""The ``infomin`` command imports only what the command run needs (a behaviour test, not a timing
one: ``bench/cli_startup.py`` measures the times). Each case runs in a fresh interpreter and
reports which heavy libraries ended up in ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
from helpers import REPO

HEAVY = ("torch", "mlflow", "kornia", "sklearn", "optuna", "matplotlib", "scipy")
PROBE = """
import json, sys
from infomin.cli import app
try:
    app(sys.argv[1:], prog_name="infomin")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
""".replace("HEAVY", repr(HEAVY))


def imported(*args: str, cwd) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "INFOMIN_VIEWS_DIR": str(REPO / "views")}
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["ui", "--help"], ["study", "--help"], ["views", "--help"],
                                  ["train", "--help"], ["learn-views", "--help"]])
def test_help_imports_no_heavy_library(args, tmp_path):
    assert imported(*args, cwd=tmp_path) == set()


def test_views_list_imports_torch_and_kornia_but_not_mlflow_or_sklearn(tmp_path):
    assert imported("views", "list", cwd=tmp_path) & {"mlflow", "sklearn", "optuna"} == set()
    assert {"torch", "kornia"} <= imported("views", "list", cwd=tmp_path)


def test_study_list_imports_optuna_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="s", storage=url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert imported("study", "list", "--storage", url, cwd=tmp_path) == {"optuna"}
