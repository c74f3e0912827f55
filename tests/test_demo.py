"""The main job: ``make demo`` runs ``python -m infomin.demo``; its quick form end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO


def test_quick_demo_writes_grids_trains_probes_and_prints_how_to_browse(tmp_path):
    env = dict(os.environ, INFOMIN_VIEWS_DIR=str(REPO / "views"), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    r = subprocess.run([sys.executable, "-m", "infomin.demo", "--quick"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    grids = sorted((tmp_path / "demo-out").glob("views_*.png"))
    assert len(grids) >= 13, [g.name for g in grids]
    assert "eval/linear_acc" in r.stdout and "mi/log_k" in r.stdout
    assert "MLflow run:" in r.stdout
    # the store is mlflow.db in the cwd: `infomin ui` needs no option to find it
    assert re.search(r"^browse it:\s+\S*infomin ui\s+\(the MLflow UI", r.stdout, re.M), r.stdout
    assert (tmp_path / "mlflow.db").is_file()
