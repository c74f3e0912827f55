"""Shared helpers for the benchmark scripts in ``bench/``: banner, timing, markdown tables.

Every benchmark prints (1) a banner naming the machine and the library versions,
(2) one markdown table per comparison whose last column is a ratio against a
baseline row, so README can quote ratios rather than absolute times (absolute
figures depend on the machine and on its load, which the banner also prints).

Timing protocol (issue 6): each figure is the **median** over ``repeats`` timed
calls after ``warmup`` untimed calls; ``time.perf_counter`` around a synchronous
call (CUDA work is synchronised by :func:`sync` before the clock stops).

Run directly (``python bench/_common.py``) it prints the banner only.

>>> rate = median_rate(lambda: sum(range(1000)), n_items=1000, repeats=3, warmup=1)
>>> rate > 0
True
>>> print(markdown_table([{"name": "a", "img/s": 10.0}, {"name": "b", "img/s": 25.0}],
...                      ratio_of="img/s"))
| name | img/s | ratio (vs a) |
|---|---|---|
| a | 10.0 | 1.00x |
| b | 25.0 | 2.50x |
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import torch

#: libraries whose versions every banner reports (missing ones print "not installed")
LIBRARIES: tuple[str, ...] = ("infomin", "torch", "torchvision", "kornia", "scikit-learn",
                              "numpy", "optuna", "mlflow", "lightly")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    """Installed version of distribution ``dist`` (``"not installed"`` if absent)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge a figure: cores, CPU, GPU, threads, load, versions."""
    info: dict[str, Any] = {
        "date (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "torch threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "gpu": (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"),
    }
    if hasattr(os, "getloadavg"):
        # a shared machine makes absolute figures noisy: say how busy it was
        info["load avg (1/5/15 min)"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    for lib in LIBRARIES:
        info[lib] = version(lib)
    return info


def banner(title: str, extra: dict[str, Any] | None = None) -> str:
    """A markdown block: ``## title`` then one ``- key: value`` line per machine fact."""
    info = machine_info()
    info.update(extra or {})
    lines = [f"## {title}", ""] + [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def sync() -> None:
    """Wait for queued CUDA work (no-op on the CPU) so the clock measures finished work."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds per call of ``fn`` (see :func:`time_calls`)."""
    return statistics.median(time_calls(fn, repeats, warmup))


def median_rate(fn: Callable[[], Any], n_items: int, repeats: int = 5, warmup: int = 1) -> float:
    """Items per second: ``n_items`` (processed by one call of ``fn``) / median seconds per call."""
    return n_items / median_time(fn, repeats, warmup)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:  # NaN: a figure that could not be measured
            return "n/a"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.1f}"
        return f"{v:.3f}"
    return str(v)


def markdown_table(rows: Sequence[dict[str, Any]], *, ratio_of: str | None = None,
                   baseline: int | str = 0, lower_is_better: bool = False,
                   columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts sharing keys), with a ratio column.

    Args:
        rows: one dict per row; the first key is the row's name.
        ratio_of: the column to compare; adds ``ratio (vs <baseline name>)``, the factor by
            which each row beats the baseline: ``value / base`` for rates, ``base / value``
            when ``lower_is_better`` (times). ``None``: no ratio column.
        baseline: index of the baseline row, or its name (value of the first column).
        columns: the columns to show, in order (default: the first row's keys).
    """
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    out_rows = [dict(r) for r in rows]
    if ratio_of is not None:
        name_key = columns[0]
        if isinstance(baseline, str):
            matches = [i for i, r in enumerate(rows) if r.get(name_key) == baseline]
            if not matches:
                raise ValueError(f"baseline row {baseline!r} not found")
            baseline = matches[0]
        base = rows[baseline]
        head = f"ratio (vs {base[name_key]})"
        b = float(base.get(ratio_of, float("nan")))
        for r in out_rows:
            v = float(r.get(ratio_of, float("nan")))
            ratio = (b / v) if lower_is_better else (v / b)
            r[head] = "n/a" if ratio != ratio or b == 0 else f"{ratio:.2f}x"
        columns.append(head)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in out_rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def print_table(title: str, rows: Sequence[dict[str, Any]], **kw: Any) -> None:
    """Print ``### title``, a blank line, :func:`markdown_table` and a blank line (flushed)."""
    print(f"### {title}\n\n{markdown_table(rows, **kw)}\n", flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the ``--quick`` flag every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and few repeats (smoke test, < 30 s); figures are meaningless")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice, one per core); on a "
                        "machine shared with other jobs, 1 avoids pathological spin-waiting")
    return p


def parse_args(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and apply ``--threads`` (before any timing, so the banner shows it)."""
    args = p.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            p.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    return args


if __name__ == "__main__":  # `make bench` runs every bench/*.py: this one prints the machine only
    print(banner("machine"))
    sys.exit(0)
