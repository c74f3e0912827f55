"""README examples must run: every ```python block in README.md is executed.

A block preceded by ``<!-- readme-test: skip (reason) -->`` is not run (for
GPU-only snippets); every other block runs in a fresh interpreter, in a
temporary folder, with the blocks of the same section before it (so a later
block may use names from an earlier one).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

FENCE = re.compile(r"(<!-- readme-test: skip[^>]*-->\s*)?```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    out, section = [], "top"
    pos = 0
    for m in FENCE.finditer(text):
        heads = re.findall(r"^#+ (.+)$", text[pos:m.start()], re.M)
        if heads:
            section = heads[-1].strip()
        pos = m.end()
        if m.group(1):
            continue
        out.append((section, m.group(2)))
    return out


BLOCKS = _blocks()


def test_readme_has_runnable_examples():
    assert BLOCKS, "README.md should show at least one runnable Python example"


@pytest.mark.parametrize("i", range(len(BLOCKS)), ids=[f"{s}-{i}" for i, (s, _) in enumerate(BLOCKS)])
def test_readme_block_runs(i, tmp_path):
    section = BLOCKS[i][0]
    code = "\n".join(b for s, b in BLOCKS[: i + 1] if s == section)
    env = dict(os.environ, INFOMIN_VIEWS_DIR=str(REPO / "views"), MPLBACKEND="Agg",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README block {i} ({section}) failed:\n{r.stdout}\n{r.stderr}"
