"""Fault tolerance for real: SIGKILL a worker mid-trial, on the embedded storage and on PostgreSQL.

The PostgreSQL cases use ``$INFOMIN_TEST_POSTGRES_URL`` (``.ci/run`` starts a throw-away cluster
with ``.ci/postgres.sh``); without it, the ``postgres_url`` fixture starts its own cluster with the
same script when ``initdb`` exists, and otherwise skips (never in CI: conftest ``need``).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from optuna.trial import TrialState

from infomin import tracking
from infomin.search import storage as st
from infomin.search.runner import fail_reason

REPO = Path(__file__).resolve().parents[2]
STUDIES = Path(__file__).parent / "studies"
INFOMIN = str(Path(sys.executable).parent / "infomin")
HEARTBEAT, GRACE = 1, 4
REAP = HEARTBEAT / 2


def _need(condition: bool, why: str) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import need

    need(condition, why)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    url = os.environ.get("INFOMIN_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    has_initdb = bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    _need(has_initdb, "PostgreSQL not available: set INFOMIN_TEST_POSTGRES_URL or install postgresql "
                      "(.ci/run starts a cluster with .ci/postgres.sh)")
    env = {**os.environ, "INFOMIN_PG_STATE": str(tmp_path_factory.mktemp("pg") / "state")}
    script = str(REPO / ".ci" / "postgres.sh")
    out = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=180)
    _need(out.returncode == 0, f"could not start a PostgreSQL cluster: {out.stderr[-800:]}")
    url = out.stdout.strip().split("=", 1)[1]
    try:
        yield url
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=60)


def _wait_for_running_trial(url: str, name: str, proc: subprocess.Popen, timeout: float = 240):
    """A RUNNING trial that has reported at least one epoch (so it is mid-trial), or fail."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, f"coordinator ended early:\n{proc.stdout.read()[-3000:]}"
        try:
            study = st.load_study(url, name)
        except Exception:  # noqa: BLE001 - not created yet
            time.sleep(0.5)
            continue
        for t in study.get_trials(deepcopy=False):
            if t.state == TrialState.RUNNING and t.intermediate_values and t.user_attrs.get("worker"):
                return study, t
        time.sleep(0.3)
    raise AssertionError("no trial reached its first epoch in time")


def _kill_a_worker_mid_trial(storage_url: str, tmp_path: Path, mlflow_uri: str) -> None:
    name = f"slow_{uuid.uuid4().hex[:8]}"
    url = st.normalize_url(storage_url)
    cmd = [INFOMIN, "study", "run", str(STUDIES / "slow.py"), "--workers", "2", "--n-trials", "3",
           "--study-name", name, "--storage", storage_url, "--out", str(tmp_path / "out"),
           "--heartbeat", str(HEARTBEAT), "--grace", str(GRACE), "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        study, victim = _wait_for_running_trial(url, name, proc)
        complete_before = {t.number for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}
        pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
        killed_at = dt.datetime.now()
        os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert f"pid {pid}) exit code -9" in output, "the coordinator reports the dead worker"

    study = st.load_study(url, name)
    trials = {t.number: t for t in study.get_trials()}
    dead = trials[victim.number]
    assert dead.state == TrialState.FAIL
    failed_after = (dead.datetime_complete - killed_at).total_seconds()
    assert failed_after <= GRACE + REAP + 10, f"reaped {failed_after:.1f} s after the kill"
    assert "stopped sending heartbeats" in fail_reason(study, dead)
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1, "the killed trial is retried once"
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.user_attrs["worker"] != dead.user_attrs["worker"], "another worker ran the retry"
    assert all(trials[n].state == TrialState.COMPLETE for n in complete_before), "no completed trial lost"
    assert sum(t.state == TrialState.COMPLETE for t in trials.values()) == 3

    client = tracking.client(mlflow_uri)
    run = client.get_run(dead.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert "stopped sending heartbeats" in run.data.tags[tracking.FAILURE_TAG]
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id])
    parent = study.user_attrs["infomin.parent_run_id"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert len(runs) == len(children) + 1 and len(children) == len(trials)
    assert {r.info.status for r in children} == {"FINISHED", "FAILED"}


@pytest.mark.slow
def test_killed_worker_on_embedded_storage(tmp_path, mlflow_uri):
    _kill_a_worker_mid_trial(f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path, mlflow_uri)


@pytest.mark.slow
@pytest.mark.postgres
def test_killed_worker_on_postgresql_with_two_workers(tmp_path, mlflow_uri, postgres_url):
    """A 2-worker study on PostgreSQL that survives losing a worker (psycopg 3 driver)."""
    _kill_a_worker_mid_trial(postgres_url, tmp_path, mlflow_uri)


@pytest.mark.postgres
def test_postgresql_study_names_and_unknown_study(postgres_url):
    from infomin.errors import InfominError

    url = st.normalize_url(postgres_url)
    assert url.startswith("postgresql+psycopg://")
    assert isinstance(st.study_names(postgres_url), list)  # [] on a fresh database, never a crash
    with pytest.raises(InfominError, match="no such study|holds no Optuna studies yet"):
        st.load_study(postgres_url, f"missing_{uuid.uuid4().hex[:6]}")
