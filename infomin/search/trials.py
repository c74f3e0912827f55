"""What a study's trials say about each other: the budget, retries, duplicates, reasons.

Every storage call here goes through :data:`infomin.retry.STORAGE` (:func:`stored`).

Retries. A trial that did not finish for a reason that is not its own (its worker was
killed or lost the storage, Ctrl-C, the coordinator died) is failed and gets a *follower*:
a new trial with the same parameters whose ``retry_history`` ends with its number (Optuna's
own convention, :class:`optuna.storages.RetryHeartbeatStaleTrialCallback`). The follower is
``WAITING`` (a retry, run before any new sample) or, when the dead trial's training had
finished and its result is known, ``COMPLETE`` with that result. Before failing such a trial
its owner marks it ``retry_pending``, so that a follower is created even if the process that
failed it dies at that moment (the reaper's sweep looks for pending trials without one).

The budget counts each *lineage* (a trial and its followers) once: a superseded trial, a
duplicate, or a failed trial still waiting for its follower does not count.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from infomin.errors import InfominError
from infomin.retry import STORAGE

T = TypeVar("T")

#: trial user attributes
A_RUN = "mlflow_run_id"
A_RUN_NAME = "mlflow_run_name"
A_REASON = "fail_reason"
A_WORKER = "worker"
A_SESSION = "session"
A_INTERRUPTED = "interrupted"   # written by infomin < issue 10: an interrupted trial, never retried
A_RETRY = "retry_pending"       # failed for a reason not its own: a follower carries it on
A_DUPLICATE = "duplicate_of"    # an enqueued point that had already run: skipped
A_RECOVERED = "recovered_from"  # this COMPLETE trial holds the result of that failed one
#: attributes that belong to one trial and are not copied to its followers
TRIAL_LOCAL = (A_RUN, A_RUN_NAME, A_REASON, A_WORKER, A_SESSION, A_INTERRUPTED, A_RETRY, A_DUPLICATE, A_RECOVERED)
#: study user attributes
S_URI, S_EXP, S_PARENT = "infomin.tracking_uri", "infomin.experiment_id", "infomin.parent_run_id"
S_SESSIONS = "infomin.sessions"
#: study user attribute prefixes (a finished trial's own attributes are read-only)
S_REASON = "fail_reason"         # fail_reason:<number>
S_RUN = "mlflow_run_id"          # mlflow_run_id:<number>
S_EXHAUSTED = "retries_spent"    # retries_spent:<number>
#: system attribute: how many times this lineage was cut short by a dead worker or a store that
#: failed it (bounded by MAX_DEATHS, so a point that kills its worker cannot loop forever)
DEATHS = "infomin:deaths"
MAX_DEATHS = 2


def stored(fn: Callable[..., T], *args: Any, what: str, patience: float | None = None, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` against the storage, retried through outages."""
    return STORAGE.call(fn, *args, what=what, patience=patience, **kwargs)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's experimental-API warnings and its "use heartbeats with optimize" hint
    (infomin runs its own ask / heartbeat / tell loop, :class:`infomin.search.runner.Worker`)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        yield


def get_trials(optuna_study: Any, *, patience: float | None = None) -> list[Any]:
    return stored(optuna_study.get_trials, deepcopy=False, what="read the trials", patience=patience)


def set_trial_attr(trial: Any, key: str, value: Any, *, patience: float | None = None) -> bool:
    """Set a live trial's user attribute; ``False`` when a reaper finished the trial meanwhile."""
    import optuna

    try:
        stored(trial.set_user_attr, key, value, what=f"trial {trial.number}: set {key}", patience=patience)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True


# -- lineages and the budget -----------------------------------------------------------------

def superseded(trials: Sequence[Any]) -> set[int]:
    """Numbers of trials carried on by a follower."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def lineage(trial: Any) -> int:
    """The number of the first trial of ``trial``'s retry chain."""
    return int(trial.system_attrs.get("failed_trial", trial.number))


def follower_of(trials: Sequence[Any], number: int) -> Any | None:
    """The trial that carries on trial ``number`` (its retry or recovered result), if any."""
    for t in trials:
        if t.system_attrs.get("retry_history", [])[-1:] == [number]:
            return t
    return None


def retry_pending(optuna_study: Any, trial: Any) -> bool:
    """A failed trial waiting for its follower (unless its retries are spent)."""
    from optuna.trial import TrialState

    marked = trial.user_attrs.get(A_RETRY) or trial.user_attrs.get(A_INTERRUPTED)
    return (trial.state == TrialState.FAIL and bool(marked)
            and not optuna_study.user_attrs.get(f"{S_EXHAUSTED}:{trial.number}"))


def counted(optuna_study: Any, trials: Sequence[Any]) -> set[int]:
    """Lineages with a finished trial that counts toward the budget."""
    gone = superseded(trials)
    return {lineage(t) for t in trials
            if t.state.is_finished() and t.number not in gone and t.user_attrs.get(A_DUPLICATE) is None
            and not retry_pending(optuna_study, t)}


def budget_state(optuna_study: Any, n_trials: int, trials: Sequence[Any] | None = None) -> str:
    """``"go"``, ``"wait"`` or ``"done"`` for a worker about to start a trial.

    A lineage counts once finished (COMPLETE, PRUNED or FAIL by its own fault). With a
    WAITING retry (a follower) a worker always goes; when the counted plus running trials
    reach the budget it waits, since a running trial whose worker dies comes back as a
    WAITING retry. Enqueued points (baselines, grid points) count like any trial, so
    ``-n 2`` on a grid of 3 runs 2.
    """
    from optuna.trial import TrialState

    trials = get_trials(optuna_study) if trials is None else trials
    done = counted(optuna_study, trials)
    if len(done) >= n_trials:
        return "done"
    if any(t.state == TrialState.WAITING and "failed_trial" in t.system_attrs for t in trials):
        return "go"
    running = {lineage(t) for t in trials if t.state == TrialState.RUNNING} - done
    pending = {lineage(t) for t in trials if retry_pending(optuna_study, t)} - done
    return "wait" if len(done) + len(running | pending) >= n_trials else "go"


def duplicate_of(trials: Sequence[Any], me: Any) -> int | None:
    """Another trial already holding the point ``me`` was enqueued for, or ``None``.

    An enqueued point (a baseline, a grid point: Optuna's ``fixed_params``) or a retry runs
    once: if another live or finished trial of the same lineage or with the same fixed
    parameters exists, ``me`` is a duplicate (enqueued twice, or a retry created twice
    across an outage).
    """
    from optuna.trial import TrialState

    fixed = me.system_attrs.get("fixed_params")
    retry = "failed_trial" in me.system_attrs
    if fixed is None and not retry:
        return None
    gone = superseded(trials)
    for t in trials:
        if (t.number == me.number or t.number in gone or t.state == TrialState.WAITING
                or t.user_attrs.get(A_DUPLICATE) is not None):
            continue
        if (retry and lineage(t) == lineage(me)) or (fixed is not None and t.system_attrs.get("fixed_params") == fixed):
            return t.number
    return None


# -- followers -------------------------------------------------------------------------------

def add_follower(optuna_study: Any, dead: Any, state: Any, *, value: float | None = None,
                 user_attrs: dict[str, Any] | None = None, death: bool = False) -> int:
    """Create the trial that carries on ``dead`` (same parameters); returns its number.

    ``state`` is ``WAITING`` (a retry) or ``COMPLETE`` (``value``: the dead trial's result,
    known from its MLflow run or from its worker). ``death`` counts a dead worker against
    :data:`MAX_DEATHS`.
    """
    import optuna
    from optuna.trial import TrialState

    history = [*dead.system_attrs.get("retry_history", []), dead.number]
    system_attrs = {**dead.system_attrs, "failed_trial": lineage(dead), "retry_history": history,
                    DEATHS: int(dead.system_attrs.get(DEATHS, 0)) + int(death)}
    attrs = {k: v for k, v in dead.user_attrs.items() if k not in TRIAL_LOCAL and not _attempt_local(k)}
    attrs.update(user_attrs or {})
    template = optuna.trial.create_trial(
        state=state, value=value if state == TrialState.COMPLETE else None, params=dead.params,
        distributions=dead.distributions, user_attrs=attrs, system_attrs=system_attrs,
        intermediate_values=dead.intermediate_values if state == TrialState.COMPLETE else None)
    storage = optuna_study._storage
    trial_id = stored(storage.create_new_trial, optuna_study._study_id, template_trial=template,
                      what=f"trial {dead.number}: create its follower")
    return stored(storage.get_trial_number_from_id, trial_id, what="read a trial number")


def _attempt_local(key: str) -> bool:
    """Seed claims and the seeds a trial opened to helpers belong to one attempt, not its retry
    (finished seeds, ``seed/<s>/metrics``, are carried on)."""
    return key == "seeds_open" or (key.startswith("seed/") and key.endswith("/claim"))


def deaths(trial: Any) -> int:
    return int(trial.system_attrs.get(DEATHS, 0))


# -- what a finished trial says --------------------------------------------------------------

def fail_reason(optuna_study: Any, trial: Any) -> str | None:
    """Why a trial failed: the reaper's full account (a study attribute, as a finished trial's
    attributes are read-only), else the trial's own ``fail_reason``."""
    return optuna_study.user_attrs.get(f"{S_REASON}:{trial.number}") or trial.user_attrs.get(A_REASON)


def trial_run_id(optuna_study: Any, trial: Any) -> str | None:
    """The trial's MLflow run (found by the reaper for a trial whose worker was killed early)."""
    return trial.user_attrs.get(A_RUN) or optuna_study.user_attrs.get(f"{S_RUN}:{trial.number}")


def tracking_uri_of(optuna_study: Any) -> str | None:
    """The study's MLflow store. Stored without its password (``user:***@``): then the current
    ``$MLFLOW_TRACKING_URI`` is used if it is the same store."""
    from infomin import tracking  # mlflow: heavy (~2 s), only reports need it

    stored_uri = optuna_study.user_attrs.get(S_URI)
    if not stored_uri or "***" not in stored_uri:
        return stored_uri
    if tracking.display_uri() == stored_uri:
        return tracking.tracking_uri()
    raise InfominError(f"study {optuna_study.study_name} is tracked in {stored_uri}; set MLFLOW_TRACKING_URI "
                       "to that store (with its password) to reach it")
