"""Running a study: one coordinator, W worker processes, a reaper, one MLflow child run per trial.

The order of events answers the races measured in issue 4 (Optuna 5.0, MLflow 3.17):

1. The **coordinator** validates the study module (:func:`~infomin.search.spec.check_study`),
   opens the storage (an unreachable URL fails here, before anything runs), creates the
   Optuna study (``load_if_exists``: re-running continues it), the MLflow store, the
   experiment (artifacts under ``<out>/mlartifacts`` for local stores) and the parent run,
   and enqueues the baselines. Workers that created a fresh storage at the same moment
   crashed (SQLite 7 of 8 workers, PostgreSQL 4 of 8), and MLflow's ``set_experiment``
   race filed runs under ``Default``: so workers only *load* the study and receive the
   experiment and parent run ids explicitly.
2. **Workers** are processes (``spawn``), each with ``cores // W`` torch threads, or one
   per GPU (``CUDA_VISIBLE_DEVICES``). Each loops: ask the storage whether the budget is
   spent (:func:`budget_state`), run one trial, repeat. ``--workers 1`` runs in-process.
3. A **reaper** thread in the coordinator calls :func:`optuna.storages.fail_stale_trials`
   every few seconds: Optuna only looks for stale trials when a live worker starts its
   next trial, so with minute-long trials a dead worker's trial would wait minutes. A
   stale trial is failed, re-enqueued (:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`),
   its reason recorded and its MLflow run, which MLflow would leave RUNNING forever,
   closed as FAILED (:class:`StaleTrialHandler`).

Each trial is a child MLflow run named ``t03 <parameters>`` (:func:`trial_run_name`), described
by the candidate and its result (:func:`trial_note`, :func:`result_line`), tagged
``infomin.study`` and ``infomin.trial``; its id is
the trial's user attribute ``mlflow_run_id``; per-epoch ``eval/knn_acc`` values are the
intermediate values the pruner sees. A trial that raises, or whose objective is missing,
not a real number, NaN or infinite (Optuna records infinity as COMPLETE) is FAIL, with
the reason in the trial's user attribute ``fail_reason`` and on its MLflow run, and the
study goes on.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import numbers
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infomin.errors import InfominError, SpecError
from infomin.search import storage as st
from infomin.search.spec import Study, check_study, load_study
from infomin.stores import NOTE_TAG, RUN_COLOR_TAG

INTERMEDIATE = "eval/knn_acc"
OUT_ROOT = "infomin-out"
#: user-attribute / study-attribute keys
A_RUN = "mlflow_run_id"
A_RUN_NAME = "mlflow_run_name"
A_REASON = "fail_reason"
A_WORKER = "worker"
A_INTERRUPTED = "interrupted"
S_URI, S_EXP, S_PARENT = "infomin.tracking_uri", "infomin.experiment_id", "infomin.parent_run_id"


class TrialFailed(InfominError):
    """A trial whose result cannot be used (missing, non-real, NaN or infinite objective)."""


# -- samplers and pruners ------------------------------------------------------------------

def make_sampler(study: Study, seed: int):
    """The study's sampler, seeded (each worker passes its own derived seed)."""
    import optuna

    spec = study.spec
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in spec.grid.items()}, seed=seed)
    if spec.sampler == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    n_startup = spec.n_startup_trials
    if n_startup is None:
        n_startup = min(10, max(2, spec.n_trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup)


def make_pruner(study: Study):
    """Median (after 2 complete trials and 1 epoch) or Hyperband over the epochs; or none."""
    import optuna

    spec = study.spec
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if spec.pruner == "hyperband":
        epochs = int(spec.train.get("epochs", 5))
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 2), reduction_factor=3)
    return optuna.pruners.NopPruner()


def worker_seed(seed: int, rank: int) -> int:
    """Distinct sampler seeds per worker (identical seeds would propose identical random trials)."""
    return seed if rank == 0 else (seed * 1_000_003 + rank * 7919) % (2**31 - 1)


# -- the budget shared by all workers --------------------------------------------------------

def budget_state(optuna_study: Any, n_trials: int) -> str:
    """``"go"``, ``"wait"`` or ``"done"`` for a worker about to start a trial.

    A trial counts once finished (COMPLETE, PRUNED or FAIL) unless it was retried (then its
    retry counts) or interrupted by Ctrl-C (re-running the command replaces it). With WAITING trials (baselines, retries) a worker always goes; when the
    finished plus running trials reach the budget it waits, since a running trial whose
    worker died will come back as a WAITING retry.
    """
    from optuna.trial import TrialState

    trials = optuna_study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    finished = sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
                   and t.number not in retried and not t.user_attrs.get(A_INTERRUPTED))
    if finished >= n_trials:
        return "done"
    if any(t.state == TrialState.WAITING for t in trials):
        return "go"
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return "wait" if finished + running >= n_trials else "go"


def study_attr(optuna_study: Any, key: str, default: Any = None) -> Any:
    return optuna_study.user_attrs.get(key, default)


def fail_reason(optuna_study: Any, trial: Any) -> str | None:
    """The stored reason a trial failed (trial attribute, or the study's for reaped trials)."""
    return trial.user_attrs.get(A_REASON) or optuna_study.user_attrs.get(f"{A_REASON}:{trial.number}")


# -- stale trials ----------------------------------------------------------------------------

class StaleTrialHandler:
    """Heartbeat-stale callback: retry the trial, record why, close its MLflow run FAILED.

    Optuna fails a stale trial before calling this, and a finished trial's user attributes
    are read-only, so the reason is stored on the study as ``fail_reason:<number>`` (read
    back by :func:`fail_reason`). Runs in whichever process reaps first (a coordinator's
    reaper or a worker starting its next trial).
    """

    def __init__(self, grace_period: int | None, max_retry: int = 2):
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        self.grace_period = grace_period

    def __call__(self, optuna_study: Any, trial: Any) -> None:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry(optuna_study, trial)
        worker = trial.user_attrs.get(A_WORKER, "?")
        reason = (f"worker {worker} stopped sending heartbeats for over {self.grace_period} s "
                  f"(killed or lost); trial {trial.number} re-enqueued")
        try:
            optuna_study.set_user_attr(f"{A_REASON}:{trial.number}", reason)
        except Exception:  # noqa: BLE001 - recording the reason must not stop the reaper
            pass
        uri, exp = study_attr(optuna_study, S_URI), study_attr(optuna_study, S_EXP)
        if uri and exp:
            _close_trial_run(uri, exp, optuna_study.study_name, trial.number, "FAILED", reason)


def _close_trial_run(uri: str, experiment_id: str, study_name: str, number: int, status: str,
                     reason: str | None, run_id: str | None = None) -> str | None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    try:
        run_id = run_id or tracking.find_trial_run(experiment_id, study_name, number, uri=uri)
        if run_id is not None:
            tracking.end_run(run_id, status, reason, uri=uri)
        return run_id
    except Exception:  # noqa: BLE001 - an unreachable tracking server must not kill the study
        return run_id


def reap(optuna_study: Any) -> None:
    """One pass of :func:`optuna.storages.fail_stale_trials` (warnings silenced)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(optuna_study)


class Reaper(threading.Thread):
    """Fail stale trials every ``period`` seconds until stopped."""

    def __init__(self, optuna_study: Any, period: float):
        super().__init__(name="infomin-reaper", daemon=True)
        self.optuna_study, self.period = optuna_study, period
        self._stop_event = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self._stop_event.wait(self.period):
            try:
                reap(self.optuna_study)
            except Exception as e:  # noqa: BLE001 - a transient DB error: try again next period
                self.errors.append(f"{type(e).__name__}: {e}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


# -- one trial -------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerArgs:
    """Everything a worker process needs, as plain values (pickled to ``spawn`` children)."""

    study_path: str
    study_name: str
    storage_url: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    n_trials: int
    rank: int = 0
    threads: int = 1
    cuda_device: int | None = None
    heartbeat_interval: int | None = st.HEARTBEAT
    grace_period: int | None = st.GRACE
    poll_s: float = 1.0


class Objective:
    """The Optuna objective: ``suggest`` -> views + config -> train and score -> checked value."""

    def __init__(self, study: Study, args: WorkerArgs, run: Callable[..., Any] | None = None):
        self.study, self.args = study, args
        self.run = run or study.run or _run_candidate
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.on_start: Callable[[], None] | None = None

    def __call__(self, trial: Any) -> float:
        import optuna

        if self.on_start is not None:
            self.on_start()
        a, name, number = self.args, self.args.study_name, trial.number
        trial.set_user_attr(A_WORKER, self.worker)
        trial.set_user_attr(A_RUN, None)  # a retried trial inherits the dead trial's attributes
        retry_of = _system_attrs(trial).get("failed_trial")
        tags = {"infomin.study": name, "infomin.trial": number, "infomin.worker": self.worker,
                "infomin.study_file": Path(a.study_path).name, RUN_COLOR_TAG: trial_color(number)}
        if retry_of is not None:
            tags["infomin.retry_of"] = retry_of
        run_id: list[str | None] = [None]
        run_name = trial_run_name(number, trial.params, width=name_width(a.n_trials))
        try:
            views, config = self.study.candidate(trial)
            config = config.replace(progress=False)
            run_name = trial_run_name(number, trial.params, width=name_width(a.n_trials))
            note = trial_note(name, number, trial.params, views, self.study.spec.metric,
                              self.study.spec.direction)
            tags[NOTE_TAG] = note
            trial.set_user_attr(A_RUN_NAME, run_name)   # optuna-dashboard shows it next to the run id
            trial.set_user_attr("views", views)
            trial.set_user_attr("train", {k: v for k, v in config.to_dict().items()
                                          if k in ("temperature", "encoder", "batch_size", "epochs", "loss",
                                                   "dataset", "lr", "proj_dim", "seed", "test_subset")})

            def on_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
                if run_id[0] is None:
                    run_id[0] = _find_run(a, number)
                    if run_id[0] is not None:
                        trial.set_user_attr(A_RUN, run_id[0])
                value = metrics.get(INTERMEDIATE)
                if value is not None and math.isfinite(float(value)):
                    trial.report(float(value), int(epoch))
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}: {INTERMEDIATE}={float(value):.4f}")

            result = self.run(views, config, experiment_id=a.experiment_id, parent_run_id=a.parent_run_id,
                              run_name=run_name, tags=tags, on_epoch=on_epoch,
                              tracking_uri=a.tracking_uri)
        except optuna.TrialPruned as e:
            rid = _close_trial_run(a.tracking_uri, a.experiment_id, name, number, "KILLED", str(e) or "pruned",
                                   run_id[0])
            if rid is not None:
                trial.set_user_attr(A_RUN, rid)
            raise
        except Exception as e:
            reason = _reason(e)
            self._fail(trial, reason, run_id[0], tags, run_name)
            raise
        except KeyboardInterrupt:  # Ctrl-C: FAIL for Optuna, but not counted against the budget
            trial.set_user_attr(A_REASON, "interrupted (KeyboardInterrupt)")
            trial.set_user_attr(A_INTERRUPTED, True)
            raise
        run_id[0] = getattr(result, "run_id", None) or run_id[0]
        if run_id[0] is not None:
            trial.set_user_attr(A_RUN, run_id[0])
        metrics = dict(getattr(result, "metrics", None) or {})
        trial.set_user_attr("metrics", {k: float(v) for k, v in metrics.items()
                                        if _is_real(v) and math.isfinite(float(v))})
        value, problem = check_value(metrics, self.study.spec.metric)
        if problem is not None:
            self._fail(trial, problem, run_id[0], tags, run_name)
            raise TrialFailed(problem)
        if run_id[0] is not None:
            _set_note(a.tracking_uri, run_id[0],
                      tags[NOTE_TAG] + "\n\n" + result_line(metrics, self.study.spec.metric))
        return value

    def _fail(self, trial: Any, reason: str, run_id: str | None, tags: Mapping[str, Any],
              run_name: str) -> None:
        """Store the reason on the trial and on its MLflow run (one is created if training never started)."""
        from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

        a = self.args
        try:
            trial.set_user_attr(A_REASON, reason)
        except Exception:  # noqa: BLE001
            pass
        rid = _close_trial_run(a.tracking_uri, a.experiment_id, a.study_name, trial.number, "FAILED", reason, run_id)
        if rid is None:  # failed before the trainer opened a run: still show it in MLflow
            try:
                with tracking.start_run(experiment_id=a.experiment_id, parent_run_id=a.parent_run_id,
                                        run_name=run_name, tags=tags,
                                        uri=a.tracking_uri, end=False) as run:
                    rid = run.run_id
                tracking.end_run(rid, "FAILED", reason, uri=a.tracking_uri)
            except Exception:  # noqa: BLE001
                rid = None
        if rid is not None:
            try:
                trial.set_user_attr(A_RUN, rid)
            except Exception:  # noqa: BLE001
                pass


# -- how a trial's run reads in the MLflow UI -----------------------------------------------

LABEL_CHARS = 40
#: Run colours: MLflow's own palette, reordered so that consecutive trials differ in hue (MLflow
#: otherwise hashes run ids onto 29 colours, and two of five trials shared one here).
TRIAL_COLORS = ("#2272b4", "#de7921", "#3ba65e", "#c83243", "#8a63bf", "#04867d", "#e65b77", "#a6630c",
                "#434a93", "#facb66", "#137dae", "#93320b", "#277c43", "#b45091", "#5f7281", "#f2be88",
                "#0e538b", "#9e102c", "#8ddda8", "#be501e", "#4299e0", "#c82d4c", "#308613", "#f792a6",
                "#445461", "#8acaff", "#115026", "#8396a5")
PARENT_COLOR = "#1f272d"


def trial_color(number: int) -> str:
    """The colour of trial ``number``'s run: distinct for the first 28 trials of a study.

    >>> trial_color(0), trial_color(1), trial_color(28)
    ('#2272b4', '#de7921', '#2272b4')
    """
    return TRIAL_COLORS[int(number) % len(TRIAL_COLORS)]


def name_width(n_trials: int) -> int:
    """Digits of the trial numbers in run names: 2, or more for studies of 100+ trials."""
    return max(2, len(str(max(int(n_trials) - 1, 0))))


def param_label(params: Mapping[str, Any], max_chars: int = LABEL_CHARS) -> str:
    """A short label of a candidate's parameters: categorical strings bare, numbers as ``k=v``.

    >>> param_label({"shared": "digit+position"})
    'digit+position'
    >>> param_label({"space": "lab", "lead": 1, "min_scale": 0.123456})
    'lab lead=1 min_scale=0.123'
    """
    parts = []
    for k, v in params.items():
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, bool):
            parts.append(k if v else f"no-{k}")
        elif isinstance(v, float):
            parts.append(f"{k}={v:.3g}")
        else:
            parts.append(f"{k}={v}")
    label = " ".join(parts)
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def trial_run_name(number: int, params: Mapping[str, Any], *, width: int = 2, seed: int | None = None) -> str:
    """The MLflow run name of a trial: ``t03 digit+position`` (``t03 digit+position s1`` for seed 1).

    Short enough for the runs table, distinct across a study's trials, and sorted by trial number.

    >>> trial_run_name(3, {"shared": "digit+position"})
    't03 digit+position'
    >>> trial_run_name(3, {}, seed=1)
    't03 s1'
    """
    parts = [f"t{int(number):0{width}d}", param_label(params)]
    if seed is not None:
        parts.append(f"s{seed}")
    return " ".join(p for p in parts if p)


def trial_note(study: str, number: int, params: Mapping[str, Any], views: Any, metric: str,
               direction: str) -> str:
    """The trial run's description: which candidate it is, and what the study scores it by."""
    import json

    shown = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items())
    lines = [f"Trial {number} of study `{study}`" + (f": {shown}" if shown else "") + ".", "",
             f"Views: `{json.dumps(views, default=str)}`", "",
             f"Objective: `{metric}` ({direction})."]
    return "\n".join(lines)


def result_line(metrics: Mapping[str, Any], metric: str) -> str:
    """One markdown line of the numbers a user compares.

    >>> result_line({"eval/linear_acc": 0.5, "mi/nce": 1.25, "mi/log_k": 5.5}, "eval/linear_acc")
    'Result: eval/linear_acc = 0.5000 · I_NCE = 1.250 nats (log K = 5.500)'
    """
    parts = []
    keys = [metric] + [k for k in ("eval/linear_acc",) if k != metric]
    for k in keys:
        if _finite(metrics.get(k)):
            parts.append(f"{k} = {float(metrics[k]):.4f}")
    if _finite(metrics.get("mi/nce")):
        mi = f"I_NCE = {float(metrics['mi/nce']):.3f} nats"
        if _finite(metrics.get("mi/log_k")):
            mi += f" (log K = {float(metrics['mi/log_k']):.3f})"
        parts.append(mi)
    for k, label in (("eval/alignment", "alignment"), ("eval/uniformity", "uniformity"),
                     ("eval/tolerance", "tolerance")):
        if _finite(metrics.get(k)):
            parts.append(f"{label} = {float(metrics[k]):.3f}")
    return "Result: " + " · ".join(parts)


def _finite(v: Any) -> bool:
    return _is_real(v) and math.isfinite(float(v))


def _set_note(uri: str, run_id: str, note: str) -> None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    try:
        tracking.Run(run_id, uri).set_tags({NOTE_TAG: note})
    except Exception:  # noqa: BLE001 - a description must not fail a finished trial
        pass


def check_value(metrics: Mapping[str, Any], metric: str) -> tuple[float, str | None]:
    """The objective value and ``None``, or ``(nan, reason)`` when it cannot be used.

    >>> check_value({"eval/linear_acc": 0.5}, "eval/linear_acc")
    (0.5, None)
    >>> check_value({"eval/linear_acc": float("inf")}, "eval/linear_acc")[1]
    "objective 'eval/linear_acc' is inf (not finite)"
    """
    if metric not in metrics:
        return math.nan, f"objective {metric!r} missing from the candidate's metrics (got {sorted(metrics)})"
    v = metrics[metric]
    if not _is_real(v):
        return math.nan, f"objective {metric!r} is a {type(v).__name__} ({v!r}), not a real number"
    v = float(v)
    if not math.isfinite(v):
        return math.nan, f"objective {metric!r} is {v} (not finite)"
    return v, None


def _is_real(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Real):
        return True
    return hasattr(v, "item") and getattr(v, "ndim", 1) == 0 and isinstance(v.item(), numbers.Real) \
        and not isinstance(v.item(), bool)


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _system_attrs(trial: Any) -> dict[str, Any]:
    """A live trial's system attributes (Optuna 5 dropped ``Trial.system_attrs``)."""
    attrs = getattr(trial, "system_attrs", None)
    if attrs is not None:
        return dict(attrs)
    return dict(trial.study._storage.get_trial_system_attrs(trial._trial_id))


def _find_run(a: WorkerArgs, number: int) -> str | None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    try:
        return tracking.find_trial_run(a.experiment_id, a.study_name, number, uri=a.tracking_uri)
    except Exception:  # noqa: BLE001
        return None


def _run_candidate(views, config, **kwargs):
    from infomin.protocols import run_candidate  # torch: workers only

    return run_candidate(views, config, **kwargs)


# -- a worker --------------------------------------------------------------------------------

def worker_main(args: WorkerArgs) -> int:
    """Run trials until the study's budget is spent (in a worker process, or in-process). Returns trials run."""
    import optuna

    study = load_study(args.study_path)
    storage = st.open_storage(args.storage_url, heartbeat_interval=args.heartbeat_interval,
                              grace_period=args.grace_period, on_stale=StaleTrialHandler(args.grace_period))
    optuna_study = optuna.load_study(study_name=args.study_name, storage=storage,
                                     sampler=make_sampler(study, worker_seed(study.spec.seed, args.rank)),
                                     pruner=make_pruner(study))
    objective = Objective(study, args)
    gate = st.Gate(args.storage_url)
    objective.on_start = gate.release  # the trial is RUNNING in the storage: others may ask now
    ran = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            while True:
                gate.acquire()
                state = budget_state(optuna_study, args.n_trials)
                if state == "done":
                    return ran
                if state == "wait":
                    gate.release()
                    reap(optuna_study)  # a waiting worker is a reaper too (its coordinator may be gone)
                    time.sleep(args.poll_s)
                    continue
                try:
                    optuna_study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
                finally:
                    gate.release()
                ran += 1
    finally:
        gate.close()


def _worker_entry(args: WorkerArgs) -> None:  # pragma: no cover - runs in a child process
    """A spawned worker: its tracking store, threads and GPU first, then :func:`worker_main`."""
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.cuda_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.cuda_device)  # before CUDA initialises
    import torch

    torch.set_num_threads(args.threads)
    try:
        worker_main(args)
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group; the coordinator reports
        raise SystemExit(130) from None


# -- the coordinator -------------------------------------------------------------------------

@dataclass
class StudyResult:
    """What ``infomin study run`` prints: counts, the best trial, where things are."""

    name: str
    storage_url: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    out: Path
    n_trials: int
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any] | None
    best_trial: int | None
    wall_s: float
    dead_workers: list[str] = field(default_factory=list)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def run_study(source: str | Path, *, n_trials: int | None = None, workers: int = 1,
              storage: str | None = None, study_name: str | None = None, out: str | Path | None = None,
              heartbeat_interval: int = st.HEARTBEAT, grace_period: int = st.GRACE,
              reap_every: float | None = None, log: Callable[[str], None] | None = None) -> StudyResult:
    """Create or continue a study and run it to ``n_trials`` with ``workers`` processes.

    Args:
        source: a study file (``studies/color_spaces.py``) or name (``color_spaces``).
        n_trials: the study's total budget (default ``STUDY.n_trials``); re-running with the
            same budget finishes an interrupted study, a larger one extends it.
        workers: worker processes on this machine (1: in this process).
        storage: an Optuna storage URL (default :func:`~infomin.search.storage.default_storage_url`);
            ``postgresql://`` lets coordinators on several machines join one study.
        study_name: default: the module's file name.
        out: the study's folder (default ``infomin-out/<name>``): MLflow artifacts, the report.
        heartbeat_interval, grace_period: seconds; a RUNNING trial without a heartbeat for
            ``grace_period`` is failed and retried.
        reap_every: reaper period in seconds (default ``heartbeat_interval / 2``).

    Raises :class:`SpecError` / :class:`InfominError` for a bad module, budget or storage,
    before any trial runs.
    """
    import optuna

    log = log or (lambda s: None)
    t0 = time.perf_counter()
    study = load_study(source)
    check_study(study)
    name = study_name or study.name
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise SpecError("workers", workers, "expected an integer >= 1")
    budget = study.spec.n_trials if n_trials is None else n_trials
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SpecError("n_trials", budget, "expected an integer >= 1")
    if grace_period <= heartbeat_interval:
        raise SpecError("grace_period", grace_period, f"must exceed heartbeat_interval={heartbeat_interval}")
    out = Path(out or Path(OUT_ROOT) / name).resolve()
    url = st.normalize_url(storage or st.default_storage_url())
    handler = StaleTrialHandler(grace_period)
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    with st.creation_lock(url):
        rdb = st.open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                              on_stale=handler, create=True)
        optuna_study = optuna.create_study(study_name=name, storage=rdb, direction=study.spec.direction,
                                           sampler=make_sampler(study, study.spec.seed),
                                           pruner=make_pruner(study), load_if_exists=True)
        if optuna_study.direction.name.lower() != study.spec.direction:
            raise SpecError("STUDY.direction", study.spec.direction,
                            f"study {name!r} in {st.redact(url)} was created to "
                            f"{optuna_study.direction.name.lower()}")
        uri = tracking.prepare_store()
        artifact_location = (out / "mlartifacts").as_uri() if tracking.is_local_store(uri) else None
        experiment_id = tracking.get_or_create_experiment(name, artifact_location, uri=uri)
        parent = tracking.study_parent_run(
            experiment_id, name, uri=uri,
            params={**{f"study.{k}": v for k, v in study.spec.to_dict().items() if k != "baselines"},
                    "study.file": study.path.name},
            tags={NOTE_TAG: study.question, "infomin.storage": st.redact(url), RUN_COLOR_TAG: PARENT_COLOR})
        tracking.set_runs_view(experiment_id, study.spec.metric, study.spec.direction, uri=uri)
        attrs = optuna_study.user_attrs
        for key, value in ((S_URI, uri), (S_EXP, experiment_id), (S_PARENT, parent)):
            if key not in attrs:
                optuna_study.set_user_attr(key, value)
        if "infomin.study_file" not in attrs:
            optuna_study.set_user_attr("infomin.study_file", str(study.path))
            optuna_study.set_user_attr("infomin.question", study.question.splitlines()[0] if study.question else "")
            optuna_study.set_user_attr("infomin.metric", study.spec.metric)
            optuna_study.set_user_attr("infomin.fixed", dict(study.spec.fixed))
            with warnings.catch_warnings():   # names the objective in optuna-dashboard and Optuna's plots
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna_study.set_metric_names([study.spec.metric])
            for params in study.spec.baselines:  # once, by the coordinator that created the study
                optuna_study.enqueue_trial(dict(params), skip_if_exists=True)
            if study.spec.sampler == "grid":
                # Optuna's GridSampler picks "unvisited" grid points per worker, so two workers
                # that ask at the same moment can draw the same point (seen here: a 5-point grid
                # with 2 workers ran one point twice and skipped another). Enqueued trials are
                # popped atomically from the storage, so each grid point runs exactly once.
                keys = list(study.spec.grid)
                for values in itertools.product(*(study.spec.grid[k] for k in keys)):
                    optuna_study.enqueue_trial(dict(zip(keys, values, strict=True)), skip_if_exists=True)
    out.mkdir(parents=True, exist_ok=True)

    args = [WorkerArgs(study_path=str(study.path), study_name=name, storage_url=url, tracking_uri=uri,
                       experiment_id=experiment_id, parent_run_id=parent, n_trials=budget, rank=r,
                       heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                       **_placement(r, workers)) for r in range(workers)]
    log(f"study {name}: {budget} trials, {workers} worker(s), storage {st.redact(url)}, "
        f"tracking {uri} (experiment {experiment_id}, parent run {parent})")
    reaper = Reaper(optuna_study, reap_every or max(0.5, heartbeat_interval / 2))
    reaper.start()
    dead: list[str] = []
    status = "KILLED"
    try:
        if workers == 1:
            worker_main(args[0])
        else:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_worker_entry, args=(a,), name=f"infomin-worker-{a.rank}") for a in args]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            dead = [f"{p.name} (pid {p.pid}) exit code {p.exitcode}" for p in procs if p.exitcode != 0]
        status = "FINISHED"
    finally:
        reaper.stop()
        # Trials of dead workers still RUNNING (every worker died) are reaped by the next run.
        try:
            tracking.end_run(parent, status, uri=uri)
        except Exception:  # noqa: BLE001 - do not mask the original error
            pass
    return _result(optuna_study, name, url, uri, experiment_id, parent, out, budget,
                   time.perf_counter() - t0, dead)


def _placement(rank: int, workers: int) -> dict[str, Any]:
    """Threads and device of worker ``rank``: one GPU each when CUDA is present, else cores // W threads."""
    import torch

    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"threads": max(1, cpu_cores() // workers), "cuda_device": rank % n_gpu if n_gpu else None}


def _result(optuna_study: Any, name: str, url: str, uri: str, experiment_id: str, parent: str, out: Path,
            budget: int, wall_s: float, dead: list[str]) -> StudyResult:
    from optuna.trial import TrialState

    trials = optuna_study.get_trials(deepcopy=False)
    counts = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    best = None
    try:
        best = optuna_study.best_trial
    except ValueError:
        pass
    return StudyResult(name=name, storage_url=url, tracking_uri=uri, experiment_id=experiment_id,
                       parent_run_id=parent, out=out, n_trials=budget, counts=counts,
                       best_value=None if best is None else best.value,
                       best_params=None if best is None else dict(best.params),
                       best_trial=None if best is None else best.number, wall_s=wall_s, dead_workers=dead)
