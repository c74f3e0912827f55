"""infomin.ui and ``infomin ui`` without the MLflow server: process groups stopped whole, readiness,
clear errors; and the command's life cycle on optuna-dashboard alone (seconds, not minutes).

The full command (MLflow UI + optuna-dashboard, pages in a browser, Ctrl-C) is in test_ui.py.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import REPO, free_port, need
from typer.testing import CliRunner

from infomin import ui as U
from infomin.cli import app
from infomin.errors import InfominError, SpecError


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


STUBBORN = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child', flush=True); time.sleep(600)"])
print("grandchild", child.pid, flush=True)
time.sleep(600)
"""


def test_stop_ends_the_whole_process_group_even_a_child_that_ignores_sigterm(tmp_path):
    """MLflow's server starts children of its own (a job runner, consumers); none may outlive it."""
    need(Path("/proc/self/stat").is_file(), "needs /proc (Linux)")
    s = U.Server("stub", [sys.executable, "-c", STUBBORN], "http://127.0.0.1:9", "/", tmp_path / "stub.log")
    s.start()
    assert _wait(lambda: "child" in s.log_path.read_text() and "grandchild" in s.log_path.read_text())
    grandchild = int(re.search(r"grandchild (\d+)", s.log_path.read_text()).group(1))
    assert _running(grandchild)
    t0 = time.monotonic()
    s.stop(grace=1.0)
    assert not s.alive() and time.monotonic() - t0 < 15
    assert _wait(lambda: not _running(grandchild), 10), "the SIGTERM-proof child survived"


def test_wait_ready_names_a_server_that_exits_with_the_end_of_its_log(tmp_path):
    s = U.Server("broken", [sys.executable, "-c", "print('no such store: /x.db'); raise SystemExit(3)"],
                 f"http://127.0.0.1:{free_port()}", "/", tmp_path / "broken.log")
    U.start_all([s])
    with pytest.raises(InfominError, match=r"(?s)broken exited \(code 3\).*no such store: /x\.db"):
        U.wait_ready([s], timeout=60)
    U.stop_all([s])


def test_wait_ready_returns_once_a_real_server_answers_and_times_out_otherwise(tmp_path):
    port = free_port()
    s = U.Server("http.server", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                 "--directory", str(tmp_path)], f"http://127.0.0.1:{port}", "/",
                 tmp_path / "http.log")
    ticks = []
    try:
        U.start_all([s])
        U.wait_ready([s], timeout=60, on_tick=lambda t, pending: ticks.append(pending))
        assert s.ready()
    finally:
        U.stop_all([s])
    assert not s.ready() and not s.alive()
    silent = U.Server("silent", [sys.executable, "-c", "import time; time.sleep(60)"],
                      f"http://127.0.0.1:{free_port()}", "/", tmp_path / "silent.log")
    try:
        U.start_all([silent])
        with pytest.raises(InfominError, match="silent did not answer within 1 s"):
            U.wait_ready([silent], timeout=1.0, poll=0.2)
    finally:
        U.stop_all([silent])


def test_a_taken_port_is_a_clear_error_naming_the_option():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SpecError, match=rf"--mlflow-port: got {port}; 127\.0\.0\.1:{port} is already in use"):
            U.check_port(port, "--mlflow-port")
    with pytest.raises(SpecError, match="--dashboard-port"):
        U.check_port(70000, "--dashboard-port")


def test_ui_command_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("INFOMIN_STORAGE", raising=False)
    r = CliRunner().invoke(app, ["ui"])
    assert r.exit_code == 2 and "nothing to browse" in r.output and "Traceback" not in r.output
    (tmp_path / "mlflow.db").write_bytes(b"")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(app, ["ui", "--mlflow-port", str(port), "--no-dashboard"])
    assert r.exit_code == 2 and f"--mlflow-port: got {port}" in r.output


def test_ui_on_optuna_dashboard_alone_prints_links_and_stops_on_sigterm(tmp_path):
    """The whole command on the server that starts in seconds: no mlflow.db, so MLflow is not
    started (and said so); the study's link answers; SIGTERM (as from a service manager) stops it."""
    need(Path("/proc/self/stat").is_file(), "needs /proc (Linux)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="only", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "INFOMIN_STORAGE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-c", "from infomin.cli import main; main()", "ui",
                             "--dashboard-port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if line.startswith("ready"):
                break
        text = "".join(out)
        assert "no MLflow store at" in text and "MLflow UI not started" in text, text
        link = re.search(r"^\s*only\s+study:\s+(\S+)$", text, re.M)
        assert link and link.group(1) == f"http://127.0.0.1:{port}/dashboard/studies/1", text
        servers = [int(p.name) for p in Path("/proc").glob("[0-9]*")
                   if p.joinpath("stat").is_file() and _ppid(p) == proc.pid]
        assert servers, "optuna-dashboard runs as a child of infomin ui"
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0 and "stopped optuna-dashboard" in rest, rest
        assert _wait(lambda: not any(_running(p) for p in servers), 10)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ppid(proc_dir: Path) -> int:
    try:
        return int(proc_dir.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
