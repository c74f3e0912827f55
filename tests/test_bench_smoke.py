"""Smoke tests of the benchmark scripts (bench/lightly_compare.py, bench/probe.py, bench/cli_startup.py,
bench/stats_calibration.py, bench/time_to_accuracy.py, bench/_common.py).

Each script runs as users run it (a subprocess, ``--quick``) and must exit 0 and
print a markdown table with a ratio column. No timing is asserted: figures from
a shared CI machine mean nothing; the helpers' arithmetic is tested instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod   # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _run(script: str, *args: str, timeout: float = 240, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _tables(out: str) -> list[list[list[str]]]:
    """Markdown tables in ``out``: lists of rows of cells (header first, separator dropped)."""
    tables, cur = [], []
    for line in out.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                cur.append([c.strip() for c in line.strip("|").split("|")])
        elif cur:
            tables.append(cur)
            cur = []
    return tables


def _check_ratio_table(table: list[list[str]], min_rows: int) -> None:
    header, rows = table[0], table[1:]
    assert header[-1].startswith("ratio (vs "), header
    assert len(rows) >= min_rows
    ratios = [r[-1] for r in rows if "never reached" not in r[0]]   # that row says why it has no ratio
    assert all(re.fullmatch(r"\d+\.\d\dx", x) for x in ratios), ratios
    assert "1.00x" in ratios  # the baseline row


def test_banner_names_machine_and_versions():
    c = _module("_common")
    text = c.banner("t", {"extra": 1})
    for key in ("nproc", "cpu", "torch threads", "torch", "kornia", "scikit-learn", "lightly",
                "- extra: 1"):
        assert key in text, key


def test_markdown_table_ratios():
    c = _module("_common")
    rows = [{"name": "a", "s": 2.0}, {"name": "b", "s": 0.5}, {"name": "c", "s": float("nan")}]
    rate = _tables(c.markdown_table(rows, ratio_of="s", baseline="b"))[0]
    assert rate[0][-1] == "ratio (vs b)"
    assert [r[-1] for r in rate[1:]] == ["4.00x", "1.00x", "n/a"]
    times = _tables(c.markdown_table(rows, ratio_of="s", lower_is_better=True))[0]
    assert [r[-1] for r in times[1:]] == ["1.00x", "4.00x", "n/a"]
    with pytest.raises(ValueError, match="baseline row 'zzz'"):
        c.markdown_table(rows, ratio_of="s", baseline="zzz")


def test_median_rate_is_items_over_median_time(monkeypatch):
    c = _module("_common")
    ticks = iter([0.0, 1.0, 1.0, 5.0, 5.0, 7.0])   # calls of 1 s, 4 s and 2 s: median 2 s
    monkeypatch.setattr(c.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert c.median_rate(lambda: calls.append(1), n_items=10, repeats=3, warmup=2) == 5.0
    assert len(calls) == 5
    with pytest.raises(ValueError):
        c.time_calls(lambda: None, repeats=0)


def test_lightly_compare_quick():
    out = _run("lightly_compare.py", "--synthetic")
    table, views = _tables(out)
    _check_ratio_table(table, min_rows=2)
    _check_ratio_table(views, min_rows=1)
    names = [r[0] for r in table[1:]]
    assert "infomin, channels_last=on" in names and "infomin, channels_last=off" in names
    assert views[-1][0].startswith("infomin views.build('simclr')")
    if importlib.util.find_spec("lightly") is not None:
        assert "lightly, DataLoader workers=0" in names and "lightly, DataLoader workers=2" in names
        assert len(views) == 4   # header + lightly workers 0, 2 + infomin
    else:
        assert "lightly unavailable" in out


def test_lightly_compare_without_lightly_reports_infomin(capsys):
    mod = _module("lightly_compare")
    assert mod.main(["--quick", "--synthetic", "--no-lightly"]) == 0
    out = capsys.readouterr().out
    assert "**lightly unavailable**" in out
    table, views = _tables(out)
    _check_ratio_table(table, min_rows=2)
    assert all(r[0].startswith("infomin") for r in table[1:] + views[1:])


def test_probe_quick():
    out = _run("probe.py")
    linear, knn = _tables(out)
    _check_ratio_table(linear, min_rows=2)
    _check_ratio_table(knn, min_rows=2)
    assert [r[0] for r in linear[1:]] == ["linear_probe(backend='sklearn')",
                                          "linear_probe(backend='torch')"]
    acc = [float(r[2]) for r in linear[1:] + knn[1:]]
    assert all(0.3 < a <= 1.0 for a in acc), acc   # 10 classes: well above chance


def test_time_to_accuracy_quick(cifar_dir, tmp_path):
    out = _run("time_to_accuracy.py", "--out", str(tmp_path), env={"INFOMIN_DATA_ROOT": str(cifar_dir)})
    checkpoints, summary = _tables(out)
    assert [r[0] for r in checkpoints[1:]] == ["plain loop (1 ep)", "infomin CIFAR_CPU (1 ep)"]
    assert all(0.0 <= float(x) <= 1.0 for r in checkpoints[1:] for x in r[3:5])
    _check_ratio_table(summary, min_rows=3)
    assert summary[1][0] == "plain loop (1 ep)" and summary[1][-1] == "1.00x"
    assert (tmp_path / "time_to_accuracy.png").stat().st_size > 10_000
    data = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    assert set(data["curves"]) == {"plain loop (1 ep)", "infomin CIFAR_CPU (1 ep)"}
    assert data["config"]["encoder"] == "convnet-512"


def test_time_to_accuracy_plain_loss_is_infomins_nt_xent():
    # the plain loop's hand-written loss and infomin's must be the same function
    import torch

    from infomin.objectives import info_nce

    tta = _module("time_to_accuracy")
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    torch.testing.assert_close(tta.nt_xent(z1, z2, 0.2), info_nce(z1, z2, 0.2, form="ntxent"))
    assert sorted(tta.checkpoint_epochs(6, 3)) == [2, 4, 6]
    assert sorted(tta.checkpoint_epochs(20, 4)) == [5, 10, 15, 20]
    assert sorted(tta.checkpoint_epochs(1, 3)) == [1]


@pytest.mark.slow
def test_cli_startup_quick():
    out = _run("cli_startup.py", timeout=900)   # some 25 fresh interpreters, torch and mlflow among them
    (table,) = _tables(out)
    _check_ratio_table(table, min_rows=8)
    rows = {r[0]: r for r in table[1:]}
    for name in ("import torch", "import mlflow", "infomin --help", "infomin views list", "infomin study list"):
        assert name in rows, name
    heavy = table[0].index("heavy imports")
    assert rows["infomin --help"][heavy] == "none"
    assert "mlflow" not in rows["infomin views list"][heavy] and "torch" in rows["infomin views list"][heavy]
    assert "- infomin --help under 1 s: " in out


def test_stats_calibration_quick():
    out = _run("stats_calibration.py")
    verdicts, power, coverage, lof = _tables(out)
    assert len(lof) == 1 + 4 and all(0.0 <= float(r[-1]) <= 0.3 for r in lof[1:])
    assert verdicts[0][:2] == ["candidates", "seeds"] and len(verdicts) == 1 + 8
    kept = [float(r[4]) for r in verdicts[1:]]             # Bonferroni column: equal candidates kept
    assert all(0.85 < k <= 1.0 for k in kept), kept
    assert [r[0] for r in power[1:]] == ["2", "3", "5", "10"]
    assert len(coverage) == 1 + 4 and all(0.0 <= float(c) <= 1.0 for r in coverage[1:] for c in r[3:])
