"""The MLflow UI and optuna-dashboard for infomin's stores, started, awaited and stopped together.

``infomin ui`` (:mod:`infomin.cli.ui`) is the command; this module holds the parts:

* :func:`mlflow_server` and :func:`dashboard_server` describe the two servers, bound to
  127.0.0.1: ``mlflow server`` with one worker (the UI serves one person; MLflow's default of
  four uvicorn workers only makes it slower to start on a small machine) and
  ``optuna-dashboard`` with its threaded stdlib server.
* :meth:`Server.start` runs each in its own session (process group), so a terminal's Ctrl-C
  reaches only ``infomin ui``, which then stops each group with SIGTERM and, after a grace
  period, SIGKILL (:meth:`Server.stop`): MLflow's server has children of its own (a job
  runner and its consumer), and none may outlive the command. On Linux each server also gets
  SIGTERM should ``infomin ui`` itself be killed outright.
* :func:`wait_ready` polls both until they answer (the MLflow UI took 20-45 s to start on
  2 busy cores) and reports a server that exits instead, with the end of its log.
* :func:`experiment_links` and :func:`study_links` ask the running servers which experiments
  and studies there are and build the URLs that open MLflow on an experiment's runs (MLflow
  3.17 opens experiments on its GenAI pages unless the URL says ``workflowType=machine_learning``)
  with infomin's saved runs-table view (:func:`infomin.tracking.runs_view`).

Only the standard library is imported here: the servers run in their own processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infomin.errors import InfominError, SpecError
from infomin.stores import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING,
    SHARED_VIEW_TAG,
    VIEW_KEY,
    WORKFLOW_PARAM,
)

HOST = "127.0.0.1"
MLFLOW_PORT = 5000
DASHBOARD_PORT = 8080
READY_TIMEOUT_S = 300.0
STOP_GRACE_S = 10.0


@dataclass
class Server:
    """One server process: what to run, where it answers, where its output goes."""

    name: str
    argv: list[str]
    url: str               # the base URL, e.g. http://127.0.0.1:5000
    ready_path: str        # GET url + ready_path answers 2xx once the server can serve pages
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server in a new session, its output going to :attr:`log_path`."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env}, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self, timeout: float = 3.0) -> bool:
        """Whether the server answers its readiness URL with a 2xx status now."""
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=timeout) as r:
                return 200 <= r.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the server's process group, SIGKILL what is left after ``grace`` seconds."""
        if self.proc is None:
            return
        pgid = self.proc.pid   # the session leader: its pid is the group id
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pgid, self.proc):
            time.sleep(0.1)
        if _group_alive(pgid, self.proc):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _group_alive(pgid: int, leader: subprocess.Popen) -> bool:
    leader.poll()   # reap the leader, so a zombie does not count as alive
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: deliver SIGTERM to this process when its parent (``infomin ui``) dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))   # PR_SET_PDEATHSIG


# -- the two servers ---------------------------------------------------------------------------

def mlflow_server(uri: str, *, port: int = MLFLOW_PORT, workers: int = 1, log_dir: Path) -> Server:
    """``mlflow server`` for tracking store ``uri`` on 127.0.0.1:``port``."""
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
            "--host", HOST, "--port", str(port), "--workers", str(workers)]
    return Server("MLflow UI", argv, f"http://{HOST}:{port}", "/health", log_dir / "mlflow.log",
                  env={"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false", "GIT_PYTHON_REFRESH": "quiet"})


def dashboard_server(storage: str, *, port: int = DASHBOARD_PORT, log_dir: Path) -> Server:
    """``optuna-dashboard`` for Optuna storage ``storage`` on 127.0.0.1:``port``."""
    exe = Path(sys.executable).parent / "optuna-dashboard"
    if not exe.exists():
        found = shutil.which("optuna-dashboard")
        if found is None:
            raise InfominError("optuna-dashboard is not installed in this environment "
                               "(pip install optuna-dashboard)")
        exe = Path(found)
    argv = [str(exe), storage, "--host", HOST, "--port", str(port), "--server", "wsgiref"]
    return Server("optuna-dashboard", argv, f"http://{HOST}:{port}", "/api/studies",
                  log_dir / "optuna-dashboard.log")


def check_port(port: int, field_name: str) -> None:
    """Raise :class:`SpecError` when 127.0.0.1:``port`` is taken (say which option to change)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise SpecError(field_name, port, "expected a port number 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as servers do: TIME_WAIT is not "in use"
        try:
            s.bind((HOST, port))
        except OSError:
            raise SpecError(field_name, port, f"{HOST}:{port} is already in use "
                            "(another server is running there); pick another port") from None


def start_all(servers: Sequence[Server]) -> None:
    """Start every server; if one cannot be started, stop those already running and re-raise."""
    started: list[Server] = []
    try:
        for s in servers:
            s.start()
            started.append(s)
    except BaseException:
        stop_all(started)
        raise


def wait_ready(servers: Sequence[Server], *, timeout: float = READY_TIMEOUT_S, poll: float = 0.5,
               on_tick: Callable[[float, list[str]], None] | None = None) -> None:
    """Block until every server answers. Raises :class:`InfominError` naming a server that exited
    (with the end of its log) or that did not answer within ``timeout`` seconds."""
    t0 = time.monotonic()
    pending = list(servers)
    while pending:
        for s in list(pending):
            if not s.alive():
                raise InfominError(f"{s.name} exited (code {s.proc.returncode if s.proc else '?'}) before "
                                   f"it answered; the end of its log ({s.log_path}):\n{s.log_tail()}")
            if s.ready():
                pending.remove(s)
        elapsed = time.monotonic() - t0
        if pending and elapsed > timeout:
            names = ", ".join(s.name for s in pending)
            raise InfominError(f"{names} did not answer within {timeout:.0f} s (raise --timeout; logs in "
                               f"{pending[0].log_path.parent})")
        if on_tick is not None:
            on_tick(elapsed, [s.name for s in pending])
        if pending:
            time.sleep(poll)


def stop_all(servers: Sequence[Server], grace: float = STOP_GRACE_S) -> None:
    """Stop every server (each one's whole process group), Ctrl-C ignored meanwhile."""
    old = signal.getsignal(signal.SIGINT)
    is_main = _in_main_thread()
    if is_main:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for s in servers:
            s.stop(grace)
    finally:
        if is_main:
            signal.signal(signal.SIGINT, old)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# -- links into the running servers -------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    name: str
    url: str


def experiments_url(base: str) -> str:
    """The MLflow UI's experiment list, in its model-training mode."""
    return f"{base}/#/experiments?{WORKFLOW_PARAM}"


def experiment_url(base: str, experiment_id: str, *, view: bool = True) -> str:
    """An experiment's runs table in model-training mode; ``view``: with infomin's saved view.

    >>> experiment_url("http://127.0.0.1:5000", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=infomin'
    """
    url = f"{base}/#/experiments/{experiment_id}/runs?{WORKFLOW_PARAM}"
    return url + (f"&viewStateShareKey={VIEW_KEY}" if view else "")


def run_url(base: str, experiment_id: str, run_id: str, tab: str | None = None) -> str:
    """A run's page (``tab``: e.g. ``artifacts``) in model-training mode."""
    page = f"{base}/#/experiments/{experiment_id}/runs/{run_id}" + (f"/{tab}" if tab else "")
    return f"{page}?{WORKFLOW_PARAM}"


def dashboard_url(base: str, study_id: int | None = None) -> str:
    return f"{base}/dashboard" + (f"/studies/{study_id}" if study_id is not None else "")


def _get_json(url: str, body: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def experiments(base: str) -> list[dict[str, Any]]:
    """The active experiments of a running MLflow server (REST), oldest first, with tags as a dict."""
    out: list[dict[str, Any]] = []
    token = None
    while True:
        body: dict[str, Any] = {"max_results": 1000, "view_type": "ACTIVE_ONLY",
                                "order_by": ["creation_time ASC"]}
        if token:
            body["page_token"] = token
        page = _get_json(f"{base}/api/2.0/mlflow/experiments/search", body)
        for e in page.get("experiments", []):
            e["tags"] = {t["key"]: t.get("value") for t in e.get("tags", [])}
            out.append(e)
        token = page.get("next_page_token")
        if not token:
            return out


def experiment_links(base: str) -> list[Link]:
    """One link per experiment except an empty ``Default``: its runs, in model-training mode, with
    infomin's view where the experiment has one."""
    links = []
    for e in experiments(base):
        tags = e["tags"]
        if e["name"] == "Default" and tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
            continue
        links.append(Link(e["name"], experiment_url(base, e["experiment_id"],
                                                    view=SHARED_VIEW_TAG + VIEW_KEY in tags)))
    return links


def study_links(base: str) -> list[Link]:
    """One link per study of a running optuna-dashboard (REST)."""
    studies = _get_json(f"{base}/api/studies").get("study_summaries", [])
    return [Link(s["study_name"], dashboard_url(base, s["study_id"])) for s in studies]
