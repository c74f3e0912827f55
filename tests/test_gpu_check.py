"""bench/gpu_check.sh, the prepared GPU check: present, executable, valid bash, and it refuses to
run (exit 2, one clear message, no stage started) on a machine without CUDA.

The script itself can only run on a CUDA machine; here ``CUDA_VISIBLE_DEVICES=""`` hides any GPU,
so this test checks the refusal on every machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"


def test_exists_and_is_executable():
    assert SCRIPT.is_file()
    assert os.access(SCRIPT, os.X_OK), "chmod +x bench/gpu_check.sh"
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")


def test_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_stage_is_time_boxed_and_the_total_fits_8_minutes():
    text = SCRIPT.read_text()
    limits = [int(line.split()[2]) for line in text.splitlines() if line.startswith("run_stage ")]
    assert len(limits) == 4, limits   # tests, throughput, views, recipe
    assert sum(limits) <= 8 * 60 - 30, limits   # 30 s left for start-up and the table
    assert 'timeout --kill-after=10 "$limit"' in text


def test_refuses_without_cuda(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    proc = subprocess.run([str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=180)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "no CUDA device" in proc.stderr and "nothing was run" in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()   # no stage ran, nothing written


def test_refuses_when_python_cannot_import_torch(tmp_path):
    py = tmp_path / "python"      # a stand-in interpreter whose torch import fails
    py.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    py.chmod(0o755)
    proc = subprocess.run([str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": str(py)}, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert "No module named torch" in proc.stderr   # the reason is shown
