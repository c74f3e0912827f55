"""Heartbeats, and the reaper that carries on the trials of dead workers.

* :class:`Heartbeat` records a running trial's heartbeat every ``interval`` seconds from a
  thread that never dies: a failed beat is retried every 2 s until the storage answers
  (Optuna's own heartbeat thread died on the first connection error, issue 10).
* :class:`Reaper` finds trials whose worker is gone: heartbeats older than the grace period
  (a killed worker), a trial left RUNNING without an owner (a worker lost the storage while
  asking for it), and failed trials still waiting for their follower (the process that
  failed them died). It does so only after the storage has answered (and accepted a write)
  for ``settle`` seconds: after an outage, live workers get time to send a heartbeat again,
  so their trials are not failed for the storage's silence.
* :class:`StaleTrialHandler` decides what carries a dead trial on: if its MLflow run
  finished with the objective, the result is recovered from MLflow into a COMPLETE
  follower; otherwise a WAITING retry (at most :data:`~infomin.search.trials.MAX_DEATHS`
  times for a point whose worker died or whose store failed it). Its reason and MLflow run id are stored on the study
  (a finished trial's attributes are read-only), and a RUNNING MLflow run is closed FAILED.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from infomin.retry import STORAGE, TRACKING
from infomin.search import trials as tr

#: seconds between attempts while heartbeats fail
BEAT_RETRY_S = 2.0
#: seconds an MLflow lookup or update from the reaper may wait for the tracking store
TRACKING_PATIENCE_S = 30.0


class Heartbeat:
    """Record trial ``trial_id``'s heartbeat every ``interval`` s while the ``with`` block runs."""

    def __init__(self, storage: Any, trial_id: int, interval: float | None):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.misses = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.interval:
            self._thread = threading.Thread(target=self._beat, name="infomin-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 15)

    def _beat(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                STORAGE.call(self.storage.record_heartbeat, self.trial_id, what="heartbeat", patience=0)
                wait = self.interval
            except Exception:  # noqa: BLE001 - never let the thread die: the next beat retries
                self.misses += 1
                wait = min(self.interval, BEAT_RETRY_S)


@dataclass
class Verdict:
    """What carries a dead trial on, decided from MLflow before any storage write."""

    number: int
    trial_id: int
    why: str
    death: bool
    run_id: str | None = None
    run_status: str | None = None
    recovered: tuple[float, dict[str, float]] | None = None


class StaleTrialHandler:
    """Carry on a trial whose worker is gone: recover its result from MLflow, or retry it.

    Args:
        tracking_uri, experiment_id, study_name: where the trials' MLflow runs are.
        metric: the objective (recovered from a FINISHED run's metrics).
        log: one line per trial handled.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, study_name: str, metric: str,
                 log: Callable[[str], None] | None = None):
        self.uri, self.experiment_id, self.study_name, self.metric = tracking_uri, experiment_id, study_name, metric
        self.log = log or (lambda s: None)

    def assess(self, trial: Any, why: str, *, death: bool) -> Verdict:
        """Look the trial's MLflow run up (by id, else by its tags) and read a finished result."""
        from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

        v = Verdict(trial.number, trial._trial_id, why, death, run_id=trial.user_attrs.get(tr.A_RUN))
        with contextlib.suppress(Exception):  # an unreachable tracking store: the trial is retried
            if v.run_id is None:
                v.run_id = TRACKING.call(tracking.find_trial_run, self.experiment_id, self.study_name,
                                         trial.number, uri=self.uri, what="find a trial's run",
                                         patience=TRACKING_PATIENCE_S)
            if v.run_id is not None:
                run = TRACKING.call(tracking.get_run, v.run_id, uri=self.uri, what="read a trial's run",
                                    patience=TRACKING_PATIENCE_S)
                v.run_status = run.info.status
                value = run.data.metrics.get(self.metric)
                if run.info.status == "FINISHED" and value is not None and math.isfinite(value):
                    v.recovered = (float(value), dict(run.data.metrics))
        return v

    def apply(self, optuna_study: Any, v: Verdict) -> str | None:
        """Fail the trial (if still RUNNING) and create its follower; the reason, or ``None`` when
        there was nothing to do (it finished meanwhile, or another process handled it)."""
        import optuna
        from optuna.trial import TrialState

        storage = optuna_study._storage
        trial = tr.stored(storage.get_trial, v.trial_id, what=f"trial {v.number}: read it")
        if trial.state == TrialState.RUNNING:
            try:  # marked first: if this process dies after failing it, the sweep creates the follower
                for key, value in ((tr.A_RETRY, True), (tr.A_REASON, v.why), (tr.A_RUN, v.run_id)):
                    tr.stored(storage.set_trial_user_attr, v.trial_id, key, value, what=f"trial {v.number}: mark it")
                if not tr.stored(storage.set_trial_state_values, v.trial_id, TrialState.FAIL,
                                 what=f"trial {v.number}: fail it"):
                    return None
            except optuna.exceptions.UpdateFinishedTrialError:
                return None  # its worker finished it after all
            trial = tr.stored(storage.get_trial, v.trial_id, what=f"trial {v.number}: read it")
        elif not tr.retry_pending(optuna_study, trial):
            return None
        trials = tr.get_trials(optuna_study)
        if tr.follower_of(trials, v.number) is not None:
            return None
        reason = self._carry_on(optuna_study, trial, v)
        for key, value in ((f"{tr.S_REASON}:{v.number}", reason), (f"{tr.S_RUN}:{v.number}", v.run_id)):
            if value is not None:
                tr.stored(optuna_study.set_user_attr, key, value, what=f"trial {v.number}: record why")
        return reason

    def _carry_on(self, optuna_study: Any, trial: Any, v: Verdict) -> str:
        from optuna.trial import TrialState

        if v.recovered is not None:
            value, metrics = v.recovered
            m = tr.add_follower(optuna_study, trial, TrialState.COMPLETE, value=value,
                                user_attrs={"metrics": metrics, tr.A_RUN: v.run_id, tr.A_RECOVERED: v.number})
            return f"{v.why}; its training had finished: result {value:.4f} recovered from MLflow run {v.run_id} as trial {m}"
        if v.death and tr.deaths(trial) >= tr.MAX_DEATHS:
            tr.stored(optuna_study.set_user_attr, f"{tr.S_EXHAUSTED}:{v.number}", True, what="record spent retries")
            return f"{v.why}; not retried again: this point was cut short {tr.deaths(trial) + 1} times"
        m = tr.add_follower(optuna_study, trial, TrialState.WAITING, death=v.death)
        return f"{v.why}; retried as trial {m}"

    def close_run(self, v: Verdict, reason: str) -> None:
        """End the dead trial's MLflow run FAILED with the reason (if MLflow left it RUNNING)."""
        from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

        if v.run_id is None or v.recovered is not None or v.run_status not in (None, "RUNNING"):
            return
        with contextlib.suppress(Exception):  # an unreachable tracking store must not stop the reaper
            TRACKING.call(tracking.end_run, v.run_id, "FAILED", reason, uri=self.uri,
                          what="close a dead trial's run", patience=TRACKING_PATIENCE_S)
            TRACKING.call(tracking.end_children, v.run_id, "FAILED", reason, uri=self.uri,
                          what="close a dead trial's seed runs", patience=TRACKING_PATIENCE_S)


class Reaper(threading.Thread):
    """Carry on the trials of dead workers every ``period`` seconds (:meth:`reap_once`).

    Args:
        optuna_study: the study (its storage has heartbeats on).
        handler: what carries a dead trial on.
        gate: the workers' cross-process gate (:class:`~infomin.search.storage.Gate`), held
            while a trial is failed and its follower created, so that two reapers, or a
            reaper and a worker finishing that trial, never both carry it on.
        period, settle, grace: seconds (see the module docstring).
    """

    def __init__(self, optuna_study: Any, handler: StaleTrialHandler, gate: Any, *, period: float,
                 settle: float, grace: float, log: Callable[[str], None] | None = None):
        super().__init__(name="infomin-reaper", daemon=True)
        self.optuna_study, self.handler, self.gate = optuna_study, handler, gate
        self.period, self.settle, self.grace = period, settle, grace
        self.log = log or (lambda s: None)
        self.reaped: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stop_event.wait(self.period):
            self.reap_once()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=60)

    def reap_once(self) -> int:
        """One pass; never raises (a storage error is retried at the next pass). Returns trials handled."""
        with self._lock:
            try:
                return sum(self._handle(t, why, death) for t, why, death in self._dead())
            except Exception as e:  # noqa: BLE001 - the reaper must outlive any outage
                self.errors.append(f"{type(e).__name__}: {e}")
                return 0

    def handle(self, trial: Any, why: str, *, death: bool) -> bool:
        """Carry on one trial now (a worker that was interrupted hands its own trial over)."""
        with self._lock:
            return self._handle(trial, why, death)

    def _handle(self, trial: Any, why: str, death: bool) -> bool:
        verdict = self.handler.assess(trial, why, death=death)
        with self._gate():
            reason = self.handler.apply(self.optuna_study, verdict)
        if reason is None:
            return False
        self.handler.close_run(verdict, reason)
        self.reaped.append((trial.number, reason))
        self.log(f"trial {trial.number} FAIL: {reason}")
        return True

    @contextlib.contextmanager
    def _gate(self) -> Iterator[None]:
        self.gate.acquire()
        try:
            yield
        finally:
            self.gate.release()

    def _dead(self) -> list[tuple[Any, str, bool]]:
        """(trial, why, whether its worker died) for every trial to carry on."""
        from optuna.trial import TrialState

        study = self.optuna_study
        storage = study._storage
        settled = self._settled()
        trials = tr.get_trials(study, patience=0)
        stale: set[int] = set()
        if settled:
            # Optuna's public fail_stale_trials fails the trials and then calls back, so a process
            # dying in between lost the retry; the ids alone let the handler mark them first.
            stale = set(tr.stored(storage._get_stale_trial_ids, study._study_id, what="find stale trials",
                                  patience=0))
        now = dt.datetime.now()
        out = []
        for t in trials:
            if t._trial_id in stale:
                out.append((t, f"worker {t.user_attrs.get(tr.A_WORKER, '?')} stopped sending heartbeats "
                               f"for over {self.grace:.0f} s (killed or lost)", True))
            elif (settled and t.state == TrialState.RUNNING and not t.user_attrs.get(tr.A_WORKER)
                  and t.datetime_start is not None
                  and (now - t.datetime_start).total_seconds() > self.grace + self.settle):
                out.append((t, "its worker was lost while starting it (no owner, no heartbeat)", False))
            elif tr.retry_pending(study, t) and tr.follower_of(trials, t.number) is None:
                out.append((t, t.user_attrs.get(tr.A_REASON) or "interrupted", False))
        return out

    def _settled(self) -> bool:
        """Whether the storage has accepted writes for ``settle`` seconds (a probe write first)."""
        study = self.optuna_study
        try:
            tr.stored(study._storage.set_study_system_attr, study._study_id, "infomin:reaper_probe",
                      dt.datetime.now().isoformat(), what="reaper probe", patience=0)
        except Exception:  # noqa: BLE001 - unreachable or locked: not settled
            return False
        return STORAGE.healthy_for() >= self.settle
