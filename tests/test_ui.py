"""What a user sees after a study: ``infomin ui`` and the MLflow UI / optuna-dashboard pages, in a real browser.

No mocks. A tiny real study runs through the CLI (three trials of the toy's shared factors); its
``browse:`` line is run as printed (plus free ports, since 5000 and 8080 may be taken where tests
run); headless Debian Chromium (``.ci/chromium.sh``), driven over its DevTools protocol
(``tests/browser.py``), opens the links ``infomin ui`` printed and waits until each page shows what
a user should find. Screenshots of every page are kept under ``$INFOMIN_TEST_ARTIFACTS/browser``
(default ``test-artifacts/browser``; CI keeps the folder as an artefact); the folder is printed.

Outside CI a missing chromium skips the browser tests with a message; in CI they fail.
The last test stops ``infomin ui`` with Ctrl-C and checks that no server process is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from browser import Browser, chromium
from helpers import REPO, free_port, need

pytestmark = pytest.mark.slow

STUDY = "tiny_ui"
TRIALS = ("t00 position", "t01 digit", "t02 digit+position")
METRIC = "eval/linear_acc/digit"
STUDY_MODULE = f'''"""Tiny UI study: which shared factors teach the digit? (the browser test's study)"""
from infomin.search import StudySpec

SUBSETS = ("position", "digit", "digit+position")
STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={{"kind": "shared_factors", "shared": ["digit"]}},
    train={{"epochs": 2, "batch_size": 32, "train_subset": 128, "test_subset": 64, "optimizer": "adamw",
           "lr": 2e-3, "warmup_epochs": 0.0, "temperature": 0.2, "encoder": "convnet", "eval_every": 1,
           "plots": False, "knn_k": 10, "device": "cpu"}},
    metric="{METRIC}", sampler="grid", grid={{"shared": list(SUBSETS)}}, pruner="none",
    n_trials=len(SUBSETS), seed=0)


def suggest(trial):
    shared = trial.suggest_categorical("shared", list(SUBSETS))
    return {{"views": {{"kind": "shared_factors", "shared": shared.split("+")}}, "train": {{}}}}
'''
SEEDS_STUDY = "tiny_ui_seeds"
SEEDS_MODULE = (STUDY_MODULE.replace("the browser test's study", "the browser test's study with seeds")
                .replace('("position", "digit", "digit+position")', '("position", "digit")')
                .replace("n_trials=len(SUBSETS), seed=0)", "n_trials=len(SUBSETS), repeats=2, seed=0)"))
INFOMIN = [sys.executable, "-c", "import sys; from infomin.cli import main; sys.argv[0] = 'infomin'; main()"]


def _env() -> dict[str, str]:
    env = {**os.environ, "INFOMIN_VIEWS_DIR": str(REPO / "views"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "COLUMNS": "200"}
    for var in ("MLFLOW_TRACKING_URI", "INFOMIN_STORAGE"):   # the defaults: stores in the study's folder
        env.pop(var, None)
    return env



def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished tiny study in its own folder (mlflow.db, optuna.db, infomin-out/), run by the CLI."""
    folder = tmp_path_factory.mktemp("ui-study")
    (folder / f"{STUDY}.py").write_text(STUDY_MODULE)
    r = subprocess.run([*INFOMIN, "study", "run", f"{STUDY}.py"], cwd=folder, env=_env(), capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # a second study in the same stores (listed after the first), two seeds per candidate
    (folder / f"{SEEDS_STUDY}.py").write_text(SEEDS_MODULE)
    assert "repeats=2" in SEEDS_MODULE and '("position", "digit")' in SEEDS_MODULE
    seeds = subprocess.run([*INFOMIN, "study", "run", f"{SEEDS_STUDY}.py", "--workers", "2"], cwd=folder,
                           env=_env(), capture_output=True, text=True, timeout=1200)
    assert seeds.returncode == 0, seeds.stdout[-3000:] + seeds.stderr[-3000:]
    browse = [ln for ln in r.stdout.splitlines() if ln.startswith("browse: ")]
    assert len(browse) == 1, r.stdout[-2000:]
    return folder, browse[0][len("browse: "):].split("   (")[0]


class UI:
    """``infomin ui`` running in the background: its output so far and the URLs it printed."""

    def __init__(self, argv: list[str], cwd: Path):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,   # its own process group, as a shell gives a foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as in a terminal
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output, re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"`infomin ui` never printed /{pattern}/; it printed:\n{self.output[-3000:]}")

    def url(self, *label: str) -> str:
        """The URL printed after ``label`` (its words, however aligned) at the start of a line."""
        pattern = r"\s+".join(re.escape(w) for w in label)
        m = re.search(rf"^\s*{pattern}\s+(\S+)$", self.output, re.M)
        assert m, f"no {' '.join(label)!r} line in:\n{self.output}"
        return m.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def ui(study):
    """The study's printed browse command, run as printed (with free ports added)."""
    folder, command = study
    ports = (free_port(), free_port())
    app = UI([*shlex.split(command), "--mlflow-port", str(ports[0]), "--dashboard-port", str(ports[1])], folder)
    app.ports = ports
    try:
        app.wait_for(r"^ready", timeout=600)
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def shots(request) -> Path:
    folder = Path(os.environ.get("INFOMIN_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(f"\nbrowser screenshots: {folder}", flush=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium()
    need(exe is not None, "headless Chromium not found (Debian: apt-get install chromium, or run .ci/chromium.sh)")
    b = Browser(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page()
    yield p
    p.close()


def _mlflow(ui: UI, path: str, body: dict | None = None) -> dict:
    base = f"http://127.0.0.1:{ui.ports[0]}"
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read().decode())


def _tag(run: dict, key: str) -> str | None:
    return next((t["value"] for t in run["data"].get("tags", []) if t["key"] == key), None)


def _runs(ui: UI, study: str = STUDY) -> tuple[str, dict[str, dict]]:
    """A study's experiment id and its runs by name (through the MLflow server's REST API)."""
    exp = _mlflow(ui, f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={study}")["experiment"]
    runs = _mlflow(ui, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]],
                                                         "max_results": 100})["runs"]
    return exp["experiment_id"], {r["info"]["run_name"]: r for r in runs}


# -- infomin ui --------------------------------------------------------------------------------

def test_printed_browse_command_starts_both_servers_and_prints_their_urls(study, ui):
    _, command = study
    assert re.fullmatch(r"\S*infomin ui", command), command   # the default stores: no options needed
    assert "may take a while" in ui.output
    mlflow, dashboard = ui.url("MLflow UI"), ui.url("optuna-dashboard")
    assert mlflow.startswith(f"http://127.0.0.1:{ui.ports[0]}/") and "workflowType=machine_learning" in mlflow
    assert dashboard == f"http://127.0.0.1:{ui.ports[1]}/dashboard"
    runs = ui.url(STUDY, "runs:")
    assert re.fullmatch(rf"http://127\.0\.0\.1:{ui.ports[0]}/#/experiments/\d+/runs\?workflowType=machine_learning"
                        r"&viewStateShareKey=infomin", runs), runs
    assert re.fullmatch(rf"http://127\.0\.0\.1:{ui.ports[1]}/dashboard/studies/\d+", ui.url("study:"))
    assert _get(f"http://127.0.0.1:{ui.ports[0]}/health")[0] == 200
    assert _get(dashboard)[0] == 200


def test_experiment_is_tagged_as_model_training_with_the_study_view(ui):
    exp = _mlflow(ui, f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={STUDY}")["experiment"]
    tags = {t["key"]: t["value"] for t in exp["tags"]}
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags["mlflow.experiment.primaryMetric.name"] == METRIC
    view = json.loads(tags["mlflow.sharedViewState.infomin"])
    assert view["selectedColumns"][0] == f"metrics.`{METRIC}`" and view["orderByKey"] == f"metrics.`{METRIC}`"


# -- the MLflow UI in a browser ------------------------------------------------------------------

def test_experiment_page_lists_the_trials_by_name_with_their_metrics_first(ui, page, shots):
    page.goto(ui.url(STUDY, "runs:"))
    text = page.wait_for_text(*TRIALS, METRIC, "mi/nce", timeout=180)
    page.screenshot(shots / "mlflow-experiment-runs.png")
    assert "Model training" in text and "Run Name" in text
    assert "No data available" not in text and "Traces\n0" not in text, "opened on the GenAI overview"
    assert f"Sort: {METRIC}" in text
    # the metric columns are the ones a user compares, not the runs' other metrics (train/*, mi/k,
    # the other factors' probes); the UI orders them by name unless it applies the saved order
    # before the runs arrive, which it does only sometimes
    header = text.split("\nMetrics\n", 1)[1].split("\n#", 1)[0].split("\n")
    shown = [h for h in header if "/" in h]
    assert set(shown) == {METRIC, "eval/linear_acc", "mi/nce", "mi/log_k", "eval/alignment", "eval/uniformity",
                          "eval/tolerance", "eval/knn_acc"}, header
    # the trials are listed, best first: their names appear in the order of their objective
    _, runs = _runs(ui)
    by_value = sorted(TRIALS, key=lambda n: -next(m["value"] for m in runs[n]["data"]["metrics"]
                                                    if m["key"] == METRIC))
    positions = [text.index(n) for n in by_value]
    values = [next(m["value"] for m in runs[n]["data"]["metrics"] if m["key"] == METRIC) for n in by_value]
    assert positions == sorted(positions) or len(set(values)) < len(values), (by_value, values)
    # distinct colours (MLflow's own hash gave two of five trials one colour)
    assert len({_tag(runs[n], "mlflow.runColor") for n in TRIALS}) == len(TRIALS)


def test_trial_run_page_describes_the_candidate_and_its_result(ui, page, shots):
    exp, runs = _runs(ui)
    run_id = runs["t02 digit+position"]["info"]["run_id"]
    page.goto(f"http://127.0.0.1:{ui.ports[0]}/#/experiments/{exp}/runs/{run_id}?workflowType=machine_learning")
    text = page.wait_for_text("t02 digit+position", f"Trial 2 of study {STUDY}", f"Result: {METRIC} =",
                              "I_NCE =", timeout=120)
    page.screenshot(shots / "mlflow-trial-run.png")
    assert "shared = digit+position" in text


def test_parent_run_holds_the_report_and_its_artifacts_the_sweet_spot_plot(ui, page, shots):
    exp, runs = _runs(ui)
    parent = runs[STUDY]["info"]["run_id"]
    base = f"http://127.0.0.1:{ui.ports[0]}/#/experiments/{exp}/runs/{parent}"
    page.goto(f"{base}?workflowType=machine_learning")
    text = page.wait_for_text(f"Study {STUDY}: sweet-spot report", "Question: Tiny UI study", *TRIALS[:1],
                              timeout=120)
    page.screenshot(shots / "mlflow-parent-run.png")
    assert "Child runs" in text
    page.goto(f"{base}/artifacts/report/sweet_spot.png?workflowType=machine_learning")
    text = page.wait_for_text("report", "sweet_spot.png", "table.csv", "report.md", "best_views.yaml",
                              timeout=120)
    # the plot itself is drawn (the preview loads the PNG as a blob: its size tells it apart from icons)
    drawn = "[...document.images].some(i => i.complete && i.naturalWidth >= 400 && i.naturalHeight >= 300)"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not page.evaluate(drawn):
        time.sleep(0.5)
    page.screenshot(shots / "mlflow-parent-artifacts-sweet-spot.png")
    assert page.evaluate(drawn), "the sweet-spot plot is listed but not drawn"


def test_a_study_with_seeds_lists_each_trial_with_its_seed_runs_and_describes_their_spread(ui, page, shots):
    """With repeats, each trial run holds one child run per seed; the experiment page lists trials
    and seeds by name, and a trial's page gives the objective per seed, their sd and the mean."""
    exp, runs = _runs(ui, SEEDS_STUDY)
    parent = runs[SEEDS_STUDY]["info"]["run_id"]
    trials = {n: r for n, r in runs.items() if _tag(r, "mlflow.parentRunId") == parent}
    assert sorted(n.split(" ", 1)[1] for n in trials) == ["digit", "position"], sorted(runs)
    seed_names = []
    for name, run in trials.items():
        seeds = sorted(n for n, r in runs.items() if _tag(r, "mlflow.parentRunId") == run["info"]["run_id"])
        assert seeds == [f"{name} s0", f"{name} s1"], sorted(runs)
        seed_names += seeds
    page.goto(ui.url(SEEDS_STUDY, "runs:"))
    text = page.wait_for_text(*trials, *seed_names, METRIC, timeout=180)
    page.screenshot(shots / "mlflow-experiment-runs-with-seeds.png")
    assert "No data available" not in text
    name = next(n for n in trials if n.endswith(" digit"))
    run = trials[name]
    per_seed = [next(m["value"] for m in runs[f"{name} s{s}"]["data"]["metrics"] if m["key"] == METRIC)
                for s in (0, 1)]
    mean = next(m["value"] for m in run["data"]["metrics"] if m["key"] == METRIC)
    assert mean == pytest.approx(sum(per_seed) / 2)
    page.goto(f"http://127.0.0.1:{ui.ports[0]}/#/experiments/{exp}/runs/{run['info']['run_id']}"
              "?workflowType=machine_learning")
    text = page.wait_for_text(name, f"of study {SEEDS_STUDY}", "Mean of 2 seeds (0, 1)",
                              f"{METRIC} per seed: {per_seed[0]:.4f}, {per_seed[1]:.4f} (sd ", timeout=120)
    page.screenshot(shots / "mlflow-trial-run-with-seeds.png")
    assert f"Result: {METRIC} = {mean:.4f}" in text


# -- optuna-dashboard in a browser ---------------------------------------------------------------

def test_optuna_dashboard_study_page_names_the_study_its_objective_and_trials(ui, page, shots):
    study_url = ui.url("study:")
    page.goto(study_url)
    page.wait_for_text(STUDY, "History", timeout=120)
    deadline = time.monotonic() + 60   # plotly draws the axis titles (SVG) after the page's text
    while time.monotonic() < deadline and METRIC not in (page.evaluate("document.body.textContent") or ""):
        time.sleep(0.5)
    page.screenshot(shots / "optuna-dashboard-study.png")
    assert METRIC in page.evaluate("document.body.textContent"), "the objective is named, not 'Objective 0'"
    page.goto(study_url + "/trials")
    text = page.wait_for_text("3 Trials", "Trial 0", "Trial 1", "Trial 2", "Complete", timeout=120)
    page.screenshot(shots / "optuna-dashboard-trials.png")
    assert "mlflow_run_id" in text and "mlflow_run_name t00 position" in text


# -- curves and a view grid in every trial -----------------------------------------------------

def _trials_log_curves_and_a_view_grid(ui: UI) -> None:
    """What :func:`infomin.protocols.run_candidate` logs so a trial is readable in the UI:

    * ``mi/nce`` (and ``mi/ratio``) logged at every epoch where I_NCE is computed (each epoch's
      ``train/mi_nce``), so the MLflow charts of I_NCE are curves, not one point;
    * ``eval/*`` logged at every epoch where the monitor computes them (``eval/knn_acc`` with
      ``eval_every=1``);
    * every trial logs ``plots/views.png`` (source | v1 | v2) even when ``plots=False``.
    """
    exp, runs = _runs(ui)
    for name in TRIALS:
        run_id = runs[name]["info"]["run_id"]
        for key in ("mi/nce", "eval/knn_acc"):
            hist = _mlflow(ui, f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}")
            steps = sorted({m["step"] for m in hist.get("metrics", [])})
            assert len(steps) >= 2, f"{name}: {key} logged at steps {steps}, not per epoch"
        files = _mlflow(ui, f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=plots").get("files", [])
        assert any(f["path"] == "plots/views.png" for f in files), f"{name}: no plots/views.png"


def test_trials_log_curves_and_a_view_grid(ui, page, shots):
    _trials_log_curves_and_a_view_grid(ui)
    exp, runs = _runs(ui)
    run_id = runs["t01 digit"]["info"]["run_id"]
    page.goto(f"http://127.0.0.1:{ui.ports[0]}/#/experiments/{exp}/runs/{run_id}/artifacts/plots/views.png"
              "?workflowType=machine_learning")
    page.wait_for_text("views.png", timeout=120)
    page.screenshot(shots / "mlflow-trial-view-grid.png")


# -- Ctrl-C (last: it stops the module's servers) -----------------------------------------------

def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child whose parent has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_both_servers_and_every_process_they_started(ui):
    need(Path("/proc/self/stat").is_file(), "needs /proc to list the servers' processes (Linux)")
    servers = _descendants(ui.proc.pid)
    assert len(servers) >= 2, "the MLflow UI and optuna-dashboard (and MLflow's own children)"
    os.killpg(ui.proc.pid, signal.SIGINT)   # what a terminal sends its foreground job on Ctrl-C
    assert ui.proc.wait(timeout=90) == 0, ui.output[-2000:]
    assert "stopping" in ui.output and "stopped MLflow UI and optuna-dashboard" in ui.output
    left = sorted(p for p in servers if _running(p))
    assert not left, f"orphaned server processes: {left}"
    for port in ui.ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
