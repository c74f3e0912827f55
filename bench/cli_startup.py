"""CLI start-up: ``infomin --help``, ``infomin views list``, ``infomin study list`` against the imports they need.

Each command runs in a fresh process, as a user runs it (the ``infomin`` console script of this
Python environment, with the repository first on ``PYTHONPATH``). For each the table gives the
median wall time and the median peak resident memory (``ru_maxrss`` of that process, from
``os.wait4``) over ``--repeats`` runs after one untimed run (which warms the file cache), and
which heavy libraries the command imported (one extra run under ``python -X importtime``).

Reference rows import what the commands need and nothing else: ``import torch``, ``import
torch, kornia`` plus infomin's view registry, the work of ``views list`` (build every preset and
kind, print the tables) called without the CLI,
opening an Optuna storage and listing its studies with optuna alone (``study list`` does that and
counts each study's trials) and ``import mlflow``.

Targets (issue 11): ``infomin --help`` under 1 s, and no command slower to start than importing
what it needs. The script prints whether each is met; it asserts nothing (figures from a
shared machine are noisy: re-measure on an idle one before quoting them).

Run: ``python bench/cli_startup.py`` (5 repeats) or ``--quick`` (1 repeat).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, parse_args, parser, print_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: What ``infomin study list`` needs at least: optuna, its RDB storage (SQLAlchemy, alembic), one query.
OPEN_STORAGE = ("import sys, optuna; optuna.get_all_study_summaries("
                "optuna.storages.RDBStorage(sys.argv[1], skip_table_creation=True))")
HEAVY = ("torch", "kornia", "mlflow", "sklearn", "optuna", "matplotlib", "scipy")


def infomin_argv(*args: str) -> list[str]:
    """The ``infomin`` console script next to this interpreter (else the same entry point via -c)."""
    script = Path(sys.executable).parent / "infomin"
    if script.exists():
        return [sys.executable, str(script), *args]
    return [sys.executable, "-c", "import sys; from infomin.cli import app; sys.argv[0] = 'infomin'; "
            "sys.exit(app())", *args]


#: Runs a command ``n`` times from a small interpreter of its own: a child's peak RSS counts the
#: memory of the process it was forked from, and this script's own process has torch loaded.
_MEASURE = r"""
import json, os, subprocess, sys, time
argv, cwd, n = json.loads(sys.argv[1])
out = []
for _ in range(n):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    out.append([time.perf_counter() - t0, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status),
                err.decode(errors="replace")])
print(json.dumps(out))
"""


def run(argv: list[str], env: dict[str, str], cwd: Path, n: int) -> list[tuple[float, float, str]]:
    """``n`` runs of ``argv`` in fresh processes: wall seconds, peak RSS (MB) and stderr of each."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps([argv, str(cwd), n])], env=env,
                         capture_output=True, text=True, check=True).stdout
    runs = []
    for wall, rss, code, err in json.loads(out):
        if code != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {code}:\n{err[-2000:]}")
        runs.append((wall, rss, err))
    return runs


def heavy_imports(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """The :data:`HEAVY` top-level packages ``argv`` imports (from ``-X importtime``)."""
    _, _, err = run([argv[0], "-X", "importtime", *argv[1:]], env, cwd, 1)[0]
    found = set()
    for line in err.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if name in HEAVY:
                found.add(name)
    return ", ".join(m for m in HEAVY if m in found) or "none"


def make_storage(folder: Path) -> str:
    """An Optuna SQLite storage with one small finished study, for ``infomin study list``."""
    import optuna

    url = f"sqlite:///{folder / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="bench", storage=url, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    return url


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per command (median)")
    args = parse_args(p, argv)
    repeats = 1 if args.quick else args.repeats
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "INFOMIN_VIEWS_DIR": os.environ.get("INFOMIN_VIEWS_DIR", str(REPO / "views")),
           "PYTHONWARNINGS": "ignore", "COLUMNS": "120"}
    print(banner("CLI start-up (fresh processes)", {"repeats": repeats}))
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="infomin-bench-") as tmp:
        tmp = Path(tmp)
        storage = make_storage(tmp)
        commands = [
            ("python -c pass", [py, "-c", "pass"]),
            ("import torch", [py, "-c", "import torch"]),
            ("import torch, kornia + infomin.views", [py, "-c", "import torch, kornia, infomin.views"]),
            ("views list's work without the CLI", [py, "-c", "from infomin.cli.views import list_views; "
                                                   "list_views()"]),
            ("optuna: open storage, list studies", [py, "-c", OPEN_STORAGE, storage]),
            ("import mlflow", [py, "-c", "import mlflow"]),
            ("infomin --help", infomin_argv("--help")),
            ("infomin views list", infomin_argv("views", "list")),
            ("infomin study list", infomin_argv("study", "list", "--storage", storage)),
        ]
        rows = []
        for name, cmd in commands:
            runs = run(cmd, env, tmp, repeats + 1)[1:]   # the first run warms the file cache
            rows.append({"command": name,
                         "wall s (median)": statistics.median(r[0] for r in runs),
                         "wall s (min)": min(r[0] for r in runs),
                         "peak RSS MB": statistics.median(r[1] for r in runs),
                         "heavy imports": heavy_imports(cmd, env, tmp)})
            print(f"  measured {name}", file=sys.stderr, flush=True)
    print_table("start-up time and memory (median over runs)", rows, ratio_of="wall s (median)",
                baseline="import torch", lower_is_better=True)
    t = {r["command"]: r["wall s (median)"] for r in rows}
    help_s, work_s = t["infomin --help"], t["views list's work without the CLI"]
    checks = [
        ("infomin --help under 1 s", help_s < 1.0, f"{help_s:.2f} s"),
        ("infomin views list costs no more than its own work plus the CLI's start (infomin --help)",
         t["infomin views list"] <= 1.1 * (work_s + help_s),
         f"{t['infomin views list']:.2f} s vs {work_s:.2f} s + {help_s:.2f} s"),
        ("infomin study list within 1.5 s of opening the storage with optuna alone",
         t["infomin study list"] <= t["optuna: open storage, list studies"] + 1.5,
         f"{t['infomin study list']:.2f} s vs {t['optuna: open storage, list studies']:.2f} s "
         "(the table also counts each study's trials)"),
    ]
    print("### targets\n")
    for label, ok, detail in checks:
        print(f"- {label}: {'met' if ok else 'NOT met'} ({detail})")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
