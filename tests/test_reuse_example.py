"""docs/reuse_example.py (the README's plain PyTorch loop) runs against a learned generator
saved as the ``learned/flow_toy`` preset, and training on its views lowers the InfoNCE loss."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from infomin.seeding import seed_everything
from infomin.views import build, save

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "reuse_example.py"


def test_reuse_example_runs_with_a_saved_generator(tmp_path):
    seed_everything(0)  # the coupling nets' initial weights
    g = build({"kind": "flow_color", "start": "ydbdr", "layers": 2})
    with torch.no_grad():  # a "learned" generator: weights away from the identity
        for p in g.parameters():
            p.add_(0.05)
    save(g, tmp_path / "views" / "learned" / "flow_toy.yaml", provenance={"seed": 0})
    env = dict(os.environ, INFOMIN_VIEWS_DIR=str(tmp_path / "views"), OMP_NUM_THREADS="1",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    r = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    m = re.search(r"InfoNCE loss after 60 steps: ([\d.]+) \(log N = ([\d.]+)\)", r.stdout)
    assert m, r.stdout
    loss, log_n = float(m.group(1)), float(m.group(2))
    assert loss < log_n - 0.25  # the encoders learned something from the learned views


def test_reuse_example_is_short_plain_pytorch():
    code = EXAMPLE.read_text()
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) <= 30
    assert "torch.load(" not in code and "import pickle" not in code
