"""Running a study: one coordinator, W supervised worker processes, a reaper, one MLflow child run per trial.

The order of events answers the races measured in issue 4 (Optuna 5.0, MLflow 3.17):

1. The **coordinator** validates the study module (:func:`~infomin.search.spec.check_study`),
   opens the storage (an unreachable URL fails here, before anything runs) and, under a
   creation lock shared by all coordinators, creates or loads the Optuna study, takes the
   next *session* number, creates the MLflow store, the experiment (artifacts under
   ``<out>/mlartifacts`` for local stores) and the parent run, and enqueues the baselines
   and grid points. Workers that created a fresh storage at the same moment crashed
   (SQLite 7 of 8 workers, PostgreSQL 4 of 8), and MLflow's ``set_experiment`` race filed
   runs under ``Default``: so workers only *load* the study and receive the experiment
   and parent run ids explicitly.
2. **Workers** are processes (``spawn``, :mod:`~infomin.search.supervise`), each with
   ``cores // W`` torch threads, or one per GPU (``CUDA_VISIBLE_DEVICES``); they exit when
   their coordinator dies, and one that dies is replaced while trials remain. Each loops
   (:class:`Worker`): under a cross-process gate, ask the storage whether the budget is
   spent (:func:`~infomin.search.trials.budget_state`), ask for a trial and record its
   first heartbeat; then train with a heartbeat thread; then tell the result.
   ``--workers 1`` runs in-process. Each worker's sampler has its own seed, derived from
   the study's seed, the session and the worker (:func:`sampler_seed`): coordinators
   started together, or one after another, never draw the same random candidates.
3. A **reaper** thread in the coordinator (:class:`~infomin.search.reaper.Reaper`) carries
   on the trials of dead workers every few seconds: recovered from MLflow when training
   had finished, else retried.

Every storage and MLflow call goes through :mod:`infomin.retry`: an outage (a PostgreSQL
restart, a SQLite file locked for minutes, a tracking server restart) pauses the study
instead of ending it, for up to ``patience`` seconds per call. A trial that finishes
training while the storage is away keeps its result and tells it when the storage
returns; if a reaper failed it meanwhile, the result goes to its follower.

Each trial is a child MLflow run (tags ``infomin.study``, ``infomin.trial``); its id is
the trial's user attribute ``mlflow_run_id``; per-epoch ``eval/knn_acc`` values are the
intermediate values the pruner sees. A trial that raises, or whose objective is missing,
not a real number, NaN or infinite (Optuna records infinity as COMPLETE) is FAIL, with
the reason in the trial's user attribute ``fail_reason`` and on its MLflow run, and the
study goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import numbers
import os
import socket
import statistics
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infomin.errors import InfominError, SpecError, has_secret, redact
from infomin.retry import (
    PATIENCE_S,
    STORAGE,
    TRACKING,
    Unavailable,
    describe,
    is_transient,
    set_log,
)
from infomin.search import storage as st
from infomin.search import trials as tr
from infomin.search.naming import (  # noqa: F401 - re-exported: the CLI and tests read them here
    PARENT_COLOR,
    name_width,
    param_label,
    result_line,
    trial_color,
    trial_note,
    trial_run_name,
)
from infomin.search.reaper import Heartbeat, Reaper, StaleTrialHandler
from infomin.search.results import SEED_METRICS_KEY, SEED_RUN
from infomin.search.spec import Study, check_study, load_study
from infomin.search.supervise import (
    Death,
    Supervisor,
    die_with_parent,
    ignore_signals,
    signal_name,
    signals_interrupt,
)
from infomin.search.trials import (  # noqa: F401 - re-exported: the CLI and tests read them here
    A_REASON,
    A_RUN,
    A_RUN_NAME,
    A_SESSION,
    A_WORKER,
    S_EXP,
    S_PARENT,
    S_URI,
    budget_state,
    fail_reason,
    trial_run_id,
)
from infomin.stores import NOTE_TAG, RUN_COLOR_TAG

INTERMEDIATE = "eval/knn_acc"
OUT_ROOT = "infomin-out"
#: seconds an interrupted worker spends recording its trial before it exits
INTERRUPT_PATIENCE_S = 10.0


class StudyIncomplete(InfominError):
    """The study stopped before its budget was spent (workers kept dying, the storage stayed away)."""

    exit_code = 1

    def __init__(self, message: str, result: StudyResult):
        super().__init__(message)
        self.result = result


# -- samplers and pruners ------------------------------------------------------------------

def make_sampler(study: Study, seed: int):
    """The study's sampler, seeded (each worker passes its own :func:`sampler_seed`)."""
    import optuna

    spec = study.spec
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in spec.grid.items()}, seed=seed)
    if spec.sampler == "qmc":
        with tr.quiet_optuna():
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


def sampler_seed(seed: int, session: int, rank: int, incarnation: int = 0) -> int:
    """The sampler seed of one worker process: distinct for every coordinator run (``session``,
    counted in the storage), worker ``rank`` and replacement (``incarnation``).

    Issue 10 measured what identical seeds do: ``-n 2`` then ``-n 4`` re-ran trials 0-1's
    parameters as trials 2-3, and two coordinators on one study repeated 4 of 8 settings.
    The first worker of the first session keeps the study's own seed, so a study run once
    with one worker is reproducible from its ``seed`` alone; every seed is a pure function
    of these four numbers, so a sequence of commands replays exactly.

    >>> sampler_seed(0, 0, 0), sampler_seed(0, 1, 0) != sampler_seed(0, 0, 1)
    (0, True)
    """
    if (session, rank, incarnation) == (0, 0, 0):
        return seed
    digest = hashlib.blake2b(f"{seed}:{session}:{rank}:{incarnation}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31 - 1)


def worker_sampler(study: Study, session: int, rank: int, incarnation: int = 0):
    """QMC is the exception: every worker must share one scrambled sequence (Optuna counts the
    samples drawn in the storage, under the gate), so it keeps the study's seed."""
    seed = study.spec.seed if study.spec.sampler == "qmc" else sampler_seed(study.spec.seed, session, rank, incarnation)
    return make_sampler(study, seed)


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
    session: int = 0
    rank: int = 0
    incarnation: int = 0
    threads: int = 1
    cuda_device: int | None = None
    heartbeat_interval: int | None = st.HEARTBEAT
    grace_period: int | None = st.GRACE
    poll_s: float = 1.0
    patience: float = PATIENCE_S
    coordinator_pid: int | None = None
    verbose: bool = False
    repeats: int = 1


@dataclass
class Outcome:
    """How one trial ended, as the worker tells the storage."""

    state: Any  # optuna.trial.TrialState
    value: float | None = None
    reason: str | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    retry: bool = False  # failed by the infrastructure (a store that did not answer), not by itself
    #: ``seed/<s>/metrics`` and ``seed/<s>/mlflow_run_id`` of a candidate trained with repeats
    seed_attrs: dict[str, Any] = field(default_factory=dict)


class Objective:
    """``suggest`` -> views + config -> train and score (once per seed) -> a checked :class:`Outcome`.

    Never raises for a bad trial (its reason goes to the trial and its MLflow run); only an
    interrupt (``KeyboardInterrupt``) or a storage gone for longer than the patience
    (:class:`~infomin.retry.Unavailable`) propagate.

    With ``repeats`` > 1 the trial's MLflow run is a group: each seed is a child run of it
    (``t03 digit s1``), each finished seed is stored at once on the trial
    (``seed/<s>/metrics``, ``seed/<s>/mlflow_run_id``; a retry of the trial inherits them and
    trains only the missing seeds), and the trial's value is the seed mean. Optuna's samplers
    then model the candidate's expected accuracy rather than one draw of it, and the pruner
    sees the first seed's per-epoch values only, so every trial's curve is comparable to the
    others' at the same epoch (a mean of a varying number of seeds would not be).
    """

    def __init__(self, study: Study, args: WorkerArgs, run: Callable[..., Any] | None = None,
                 log: Callable[[str], None] | None = None, gate: st.Gate | None = None):
        self.study, self.args, self.gate = study, args, gate
        self.run = run or study.run or _run_candidate
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.log = log or (lambda line: None)

    def __call__(self, trial: Any) -> Outcome:
        from optuna.trial import TrialState

        a, number = self.args, trial.number
        tags = self._tags(trial)
        run_name = trial_run_name(number, trial.params, width=name_width(a.n_trials))
        try:
            views, config = self.study.candidate(trial)
            config = config.replace(progress=False)
            run_name = trial_run_name(number, trial.params, width=name_width(a.n_trials))  # now with its params
            tags[NOTE_TAG] = trial_note(a.study_name, number, trial.params, views, self.study.spec.metric,
                                        self.study.spec.direction)
            tr.set_trial_attr(trial, A_RUN_NAME, run_name)   # optuna-dashboard shows it next to the run id
            tr.set_trial_attr(trial, "views", views)
            tr.set_trial_attr(trial, "train", {k: v for k, v in config.to_dict().items()
                                               if k in ("temperature", "encoder", "batch_size", "epochs", "loss",
                                                        "dataset", "lr", "proj_dim", "seed", "test_subset")})
        except Unavailable:
            raise
        except Exception as e:  # a bad proposal: SpecError naming the field
            reason = _reason(e)
            return Outcome(TrialState.FAIL, reason=reason, run_id=self._fail(trial, reason, None, tags, run_name),
                           retry=is_transient(e))
        if a.repeats <= 1:
            return self._single(trial, views, config, tags, run_name)
        return self._repeated(trial, views, config, tags, run_name)

    def _train(self, trial: Any, views: Any, config: Any, *, parent: str, run_name: str,
               tags: Mapping[str, Any], report: bool, link: bool) -> tuple[Any, str | None]:
        """One training run: ``(result, run id)``; pruning raises ``TrialPruned`` (``report``)."""
        import optuna

        a, number = self.args, trial.number
        run_id: list[str | None] = [None]

        def on_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
            if link and run_id[0] is None:
                run_id[0] = _find_run(a, number)
                if run_id[0] is not None:  # early, for a worker killed mid-trial; set again at the end
                    with contextlib.suppress(Unavailable):
                        tr.set_trial_attr(trial, A_RUN, run_id[0], patience=0)
            value = metrics.get(INTERMEDIATE)
            if (report and value is not None and math.isfinite(float(value))
                    and _report(trial, float(value), int(epoch))):
                raise optuna.TrialPruned(f"pruned at epoch {epoch}: {INTERMEDIATE}={float(value):.4f}")

        try:
            result = self.run(views, config, experiment_id=a.experiment_id, parent_run_id=parent,
                              run_name=run_name, tags=tags, on_epoch=on_epoch, tracking_uri=a.tracking_uri)
        except BaseException as e:
            e.infomin_run_id = run_id[0]  # type: ignore[attr-defined]  (the run to close)
            raise
        return result, getattr(result, "run_id", None) or run_id[0]

    def _single(self, trial: Any, views: Any, config: Any, tags: dict[str, Any], run_name: str) -> Outcome:
        import optuna
        from optuna.trial import TrialState

        a, number = self.args, trial.number
        try:
            result, run_id = self._train(trial, views, config, parent=a.parent_run_id, run_name=run_name,
                                         tags=tags, report=True, link=True)
        except optuna.TrialPruned as e:
            reason = str(e) or "pruned"
            rid = _close_trial_run(a, number, "KILLED", reason, getattr(e, "infomin_run_id", None))
            return Outcome(TrialState.PRUNED, reason=reason, run_id=rid)
        except Unavailable:
            raise
        except Exception as e:
            reason = _training_failure(e)
            return Outcome(TrialState.FAIL, reason=reason, retry=is_transient(e),
                           run_id=self._fail(trial, reason, getattr(e, "infomin_run_id", None), tags, run_name))
        metrics = dict(getattr(result, "metrics", None) or {})
        clean = _clean(metrics)
        value, problem = check_value(metrics, self.study.spec.metric)
        if problem is not None:
            return Outcome(TrialState.FAIL, reason=problem, metrics=clean,
                           run_id=self._fail(trial, problem, run_id, tags, run_name))
        if run_id is not None:
            _set_note(a, run_id, tags[NOTE_TAG] + "\n\n" + result_line(metrics, self.study.spec.metric))
        return Outcome(TrialState.COMPLETE, value=value, run_id=run_id, metrics=clean)

    def _repeated(self, trial: Any, views: Any, config: Any, tags: dict[str, Any], run_name: str) -> Outcome:
        """Seeds ``config.seed + i`` as child runs of one trial run; the value is their mean.

        The first seed (the pruner's) is trained here; once it is done the others are open to
        idle workers (:meth:`help_once`), each taken by a claim under the storage gate and kept
        alive by its holder; this worker trains the open seeds nobody holds and takes over a
        claim whose holder stopped refreshing it.
        """
        import optuna
        from optuna.trial import TrialState

        from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

        a, metric = self.args, self.study.spec.metric
        seeds = [int(config.seed) + i for i in range(a.repeats)]
        done = {s: dict(trial.user_attrs[SEED_METRICS_KEY.format(seed=s)]) for s in seeds
                if isinstance(trial.user_attrs.get(SEED_METRICS_KEY.format(seed=s)), Mapping)}
        seed_attrs: dict[str, Any] = {}
        try:
            with tracking.start_run(experiment_id=a.experiment_id, parent_run_id=a.parent_run_id,
                                    run_name=run_name, tags={**tags, "infomin.repeats": a.repeats},
                                    uri=a.tracking_uri, end=False) as group:
                group_id = group.run_id
            tr.set_trial_attr(trial, A_RUN, group_id)
            tr.set_trial_attr(trial, A_CONFIG, config.to_dict())
        except Unavailable:
            raise
        except Exception as e:
            reason = f"{type(e).__name__}: {describe(e)} (the tracking store did not answer)"
            return Outcome(TrialState.FAIL, reason=reason, retry=is_transient(e),
                           run_id=self._fail(trial, reason, None, tags, run_name))
        if done:
            _set_note(a, group_id, tags[NOTE_TAG] + f"\n\nSeeds {sorted(done)} inherited from an earlier attempt.")
        while len(done) < len(seeds):
            if seeds[0] in done:
                self._open_seeds(trial, seeds)
                self._collect(trial, seeds, done, seed_attrs)
            seed = self._next_seed(trial, seeds, done)
            if seed is None:   # every missing seed is held by a live helper
                time.sleep(a.poll_s)
                continue
            try:
                with self._keep_claim(trial, seed, seeds):
                    metrics, seed_run = self._seed(trial, views, config, seed, seeds, group_id, tags)
            except optuna.TrialPruned as e:
                reason = f"{e or 'pruned'} (seed {seed})"
                _end_run(a, group_id, "KILLED", reason)
                return Outcome(TrialState.PRUNED, reason=reason, run_id=group_id, seed_attrs=seed_attrs)
            except SeedFailed as e:
                return Outcome(TrialState.FAIL, reason=e.reason, retry=e.retry, seed_attrs=seed_attrs,
                               run_id=self._fail(trial, e.reason, group_id, tags, run_name))
            done[seed] = metrics
            new = {SEED_METRICS_KEY.format(seed=seed): metrics, **({SEED_RUN.format(seed=seed): seed_run}
                                                                   if seed_run else {})}
            seed_attrs.update(new)
            for key, value in new.items():  # at once: a retry of this trial reuses the finished seeds
                with contextlib.suppress(Unavailable):
                    tr.set_trial_attr(trial, key, value)
        mean = seed_means([done[s] for s in seeds])
        value = mean[metric]
        summary = {**mean, "seeds/n": float(len(seeds)),
                   f"{metric}/sd": statistics.stdev([done[s][metric] for s in seeds])}
        with contextlib.suppress(Exception):  # the group's figures are a convenience: the seeds hold them
            TRACKING.call(tracking.log_metrics, group_id, summary, uri=a.tracking_uri,
                          what="log a trial's seed means", patience=30)
        per_seed = ", ".join(f"{done[s][metric]:.4f}" for s in seeds)
        _set_note(a, group_id, tags[NOTE_TAG] + f"\n\nMean of {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
                  f"{metric} per seed: {per_seed} (sd {summary[f'{metric}/sd']:.4f}). " + result_line(mean, metric))
        _end_run(a, group_id, "FINISHED", None)
        return Outcome(TrialState.COMPLETE, value=value, run_id=group_id, metrics=mean, seed_attrs=seed_attrs)

    def _seed(self, trial: Any, views: Any, config: Any, seed: int, seeds: list[int], group_id: str,
              tags: Mapping[str, Any]) -> tuple[dict[str, float], str | None]:
        """Train and score one seed as a child run of ``group_id``: ``(metrics, run id)``.

        Raises ``TrialPruned`` (first seed only) or :class:`SeedFailed`."""
        import optuna

        a, number, metric = self.args, trial.number, self.study.spec.metric
        i = seeds.index(seed)
        seed_tags = {**tags, "infomin.seed": seed, "infomin.trial_run": group_id, "infomin.worker": self.worker,
                     NOTE_TAG: tags[NOTE_TAG] + f"\n\nSeed {seed} ({i + 1} of {len(seeds)})."}
        seed_name = trial_run_name(number, trial.params, width=name_width(a.n_trials), seed=seed)
        try:
            result, seed_run = self._train(trial, views, config.replace(seed=seed), parent=group_id,
                                           run_name=seed_name, tags=seed_tags, report=i == 0, link=False)
        except optuna.TrialPruned as e:
            _end_run(a, getattr(e, "infomin_run_id", None), "KILLED", f"{e or 'pruned'} (seed {seed})")
            raise
        except Unavailable:
            raise
        except Exception as e:
            reason = f"seed {seed}: {_training_failure(e)}"
            _end_run(a, getattr(e, "infomin_run_id", None), "FAILED", reason)
            raise SeedFailed(reason, is_transient(e)) from None
        metrics = dict(getattr(result, "metrics", None) or {})
        _, problem = check_value(metrics, metric)
        if problem is not None:
            _end_run(a, seed_run, "FAILED", f"seed {seed}: {problem}")
            raise SeedFailed(f"seed {seed}: {problem}", False)
        if seed_run is not None:
            _set_note(a, seed_run, seed_tags[NOTE_TAG] + "\n\n" + result_line(metrics, metric))
        self.log(f"trial {number} seed {seed} ({i + 1} of {len(seeds)}): {metric} {float(metrics[metric]):.4f} "
                 f"({param_label(trial.params)})")
        return _clean(metrics), seed_run

    # -- seeds shared with idle workers ------------------------------------------------------

    def _stale_s(self) -> float:
        """Seconds after which a seed claim that was not refreshed is taken over."""
        beat = float(self.args.heartbeat_interval or st.HEARTBEAT)
        return max(float(self.args.grace_period or st.GRACE), 3 * beat)

    def _keep_claim(self, trial: Any, seed: int, seeds: list[int]) -> contextlib.AbstractContextManager:
        """Keep this worker's claim on ``seed`` fresh while it trains (the first seed is never
        open to helpers, so it has no claim); a stale claim would let a helper train it again."""
        if self.gate is None or seed == seeds[0]:
            return contextlib.nullcontext()
        return self._claim_keeper(trial.study._storage, trial._trial_id, seed)

    def _claim_keeper(self, storage: Any, trial_id: int, seed: int) -> ClaimKeeper:
        """This worker's claim on ``seed`` of trial ``trial_id``, refreshed at the heartbeat period."""
        return ClaimKeeper(storage, trial_id, claim_key(seed), self.worker,
                           float(self.args.heartbeat_interval or st.HEARTBEAT))

    def _open_seeds(self, trial: Any, seeds: list[int]) -> None:
        if self.gate is not None and trial.user_attrs.get(A_SEEDS_OPEN) != seeds[1:]:
            tr.set_trial_attr(trial, A_SEEDS_OPEN, seeds[1:])

    def _collect(self, trial: Any, seeds: list[int], done: dict[int, dict[str, float]],
                 seed_attrs: dict[str, Any]) -> None:
        """Seeds finished by helpers (read back from the storage)."""
        if self.gate is None:
            return
        fresh = tr.stored(trial.study._storage.get_trial, trial._trial_id, what=f"trial {trial.number}: read it")
        for s in seeds:
            m = fresh.user_attrs.get(SEED_METRICS_KEY.format(seed=s))
            if s not in done and isinstance(m, Mapping):
                done[s] = dict(m)
                seed_attrs[SEED_METRICS_KEY.format(seed=s)] = dict(m)
                run = fresh.user_attrs.get(SEED_RUN.format(seed=s))
                if run:
                    seed_attrs[SEED_RUN.format(seed=s)] = run

    def _next_seed(self, trial: Any, seeds: list[int], done: Mapping[int, Any]) -> int | None:
        """The next seed this worker trains (claimed), or ``None`` while helpers hold the rest."""
        missing = [s for s in seeds if s not in done]
        if self.gate is None or seeds[0] in missing:
            return missing[0]
        storage = trial.study._storage
        self.gate.acquire()
        try:
            attrs = tr.stored(storage.get_trial, trial._trial_id, what=f"trial {trial.number}: read it").user_attrs
            for s in missing:
                claim = attrs.get(claim_key(s))
                if claim_free(claim, self.worker, self._stale_s()):
                    if isinstance(claim, Mapping) and claim.get("worker") != self.worker:
                        self.log(f"trial {trial.number} seed {s}: its helper {claim.get('worker')} stopped; "
                                 "training it here")
                    tr.set_trial_attr(trial, claim_key(s), {"worker": self.worker, "t": time.time()})
                    return s
            return None
        finally:
            self.gate.release()

    def help_once(self, optuna_study: Any) -> bool:
        """Train one open seed of another worker's running trial; ``False`` when there is none."""
        import optuna
        from optuna.trial import TrialState

        from infomin.config import TrainConfig  # torch: workers only

        if self.gate is None or self.args.repeats <= 1:
            return False
        storage, stale = optuna_study._storage, self._stale_s()
        pick = None
        self.gate.acquire()
        try:
            for t in tr.get_trials(optuna_study):
                if t.state != TrialState.RUNNING or not t.user_attrs.get(A_SEEDS_OPEN):
                    continue
                for s in t.user_attrs[A_SEEDS_OPEN]:
                    if (SEED_METRICS_KEY.format(seed=s) not in t.user_attrs
                            and claim_free(t.user_attrs.get(claim_key(s)), self.worker, stale)):
                        tr.stored(storage.set_trial_user_attr, t._trial_id, claim_key(s),
                                  {"worker": self.worker, "t": time.time()}, what=f"trial {t.number}: claim a seed")
                        pick = (t, int(s))
                        break
                if pick:
                    break
        except optuna.exceptions.UpdateFinishedTrialError:
            pick = None
        finally:
            self.gate.release()
        if pick is None:
            return False
        t, seed = pick
        views, config = t.user_attrs["views"], TrainConfig.from_dict(t.user_attrs[A_CONFIG])
        seeds = [int(config.seed) + i for i in range(len(t.user_attrs[A_SEEDS_OPEN]) + 1)]
        tags = {**self._tags(t), NOTE_TAG: trial_note(self.args.study_name, t.number, t.params, views,
                                                      self.study.spec.metric, self.study.spec.direction)}
        self.log(f"helping trial {t.number}: seed {seed}")
        with self._claim_keeper(storage, t._trial_id, seed):
            try:
                metrics, run = self._seed(t, views, config, seed, seeds, t.user_attrs[A_RUN], tags)
            except SeedFailed as e:   # the trial's own worker trains it again and fails the trial if it fails
                self.log(f"trial {t.number} seed {seed} failed here ({e.reason}); left to the trial's worker")
                with contextlib.suppress(Exception):
                    tr.stored(storage.set_trial_user_attr, t._trial_id, claim_key(seed), None, what="release a seed")
                return True
        try:
            for key, value in ((SEED_METRICS_KEY.format(seed=seed), metrics), (SEED_RUN.format(seed=seed), run)):
                tr.stored(storage.set_trial_user_attr, t._trial_id, key, value, what=f"trial {t.number}: a seed")
        except optuna.exceptions.UpdateFinishedTrialError:
            self.log(f"trial {t.number} ended while seed {seed} trained here (MLflow run {run} keeps it)")
        return True

    def _tags(self, trial: Any) -> dict[str, Any]:
        a = self.args
        tags = {"infomin.study": a.study_name, "infomin.trial": trial.number, "infomin.worker": self.worker,
                "infomin.study_file": Path(a.study_path).name, RUN_COLOR_TAG: trial_color(trial.number)}
        retry_of = _system_attrs(trial).get("failed_trial")
        if retry_of is not None:
            tags["infomin.retry_of"] = retry_of
        return tags

    def _fail(self, trial: Any, reason: str, run_id: str | None, tags: Mapping[str, Any],
              run_name: str) -> str | None:
        """Store the reason on the trial and on its MLflow run (one is created if training never
        started); returns the run id."""
        from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

        a = self.args
        tr.set_trial_attr(trial, A_REASON, reason)
        rid = _close_trial_run(a, trial.number, "FAILED", reason, run_id)
        if rid is None:  # failed before the trainer opened a run: still show it in MLflow
            with contextlib.suppress(Exception):
                with tracking.start_run(experiment_id=a.experiment_id, parent_run_id=a.parent_run_id,
                                        run_name=run_name, tags=tags,
                                        uri=a.tracking_uri, end=False) as run:
                    rid = run.run_id
                tracking.end_run(rid, "FAILED", reason, uri=a.tracking_uri)
        return rid


#: trial user attributes of a candidate with repeats: the full config (for helpers), the seeds
#: open to idle workers, and each seed's claim ``{"worker": ..., "t": unix time}``
A_CONFIG = "config"
A_SEEDS_OPEN = "seeds_open"


def claim_key(seed: int) -> str:
    return f"seed/{int(seed)}/claim"


def claim_free(claim: Any, me: str, stale_s: float, now: float | None = None) -> bool:
    """Whether a seed with ``claim`` may be taken by worker ``me``: unclaimed, claimed by ``me``,
    or claimed by a holder that has not refreshed it for ``stale_s`` seconds.

    >>> claim_free(None, "a", 40), claim_free({"worker": "b", "t": 100.0}, "a", 40, now=120.0)
    (True, False)
    >>> claim_free({"worker": "b", "t": 100.0}, "a", 40, now=141.0), claim_free({"worker": "a", "t": 0}, "a", 40)
    (True, True)
    """
    if not isinstance(claim, Mapping):
        return True
    now = time.time() if now is None else now
    return claim.get("worker") == me or now - float(claim.get("t", 0)) > stale_s


class SeedFailed(Exception):
    """One seed of a candidate failed (``reason``; ``retry``: not the candidate's own fault)."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.reason, self.retry = reason, retry


class ClaimKeeper:
    """Refresh a seed claim every ``interval`` s while the ``with`` block runs (like a heartbeat)."""

    def __init__(self, storage: Any, trial_id: int, key: str, worker: str, interval: float):
        self.storage, self.trial_id, self.key, self.worker, self.interval = storage, trial_id, key, worker, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="infomin-seed-claim", daemon=True)

    def __enter__(self) -> ClaimKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 15)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # never let the thread die: the next beat retries
                STORAGE.call(self.storage.set_trial_user_attr, self.trial_id, self.key,
                             {"worker": self.worker, "t": time.time()}, what="refresh a seed claim", patience=0)


def seed_means(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean of every metric that all seeds recorded.

    >>> seed_means([{"a": 1.0, "b": 2.0}, {"a": 3.0}])
    {'a': 2.0}
    """
    keys = set.intersection(*(set(m) for m in per_seed)) if per_seed else set()
    return {k: float(statistics.fmean(m[k] for m in per_seed)) for k in sorted(keys)}


def _clean(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if _is_real(v) and math.isfinite(float(v))}


def _end_run(a: WorkerArgs, run_id: str | None, status: str, reason: str | None) -> None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    if run_id is None:
        return
    with contextlib.suppress(Exception):  # an unreachable tracking server must not kill the study
        TRACKING.call(tracking.end_run, run_id, status, reason, uri=a.tracking_uri, what="close a run", patience=30)


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


def _training_failure(e: BaseException) -> str:
    """Why a training failed, in one line; a transient store error (the trainer's MLflow store
    locked beyond its own timeout, say) says that a store did not answer."""
    if is_transient(e):
        return f"{type(e).__name__}: {describe(e)} (a store did not answer)"
    return _reason(e)


def _report(trial: Any, value: float, epoch: int) -> bool:
    """Report an intermediate value; whether to prune. A storage that does not answer at once
    skips the report (training goes on; the pruner sees fewer epochs)."""
    import optuna

    try:
        tr.stored(trial.report, value, epoch, what=f"trial {trial.number}: report epoch {epoch}", patience=0)
        return bool(tr.stored(trial.should_prune, what=f"trial {trial.number}: ask the pruner", patience=0))
    except (Unavailable, optuna.exceptions.UpdateFinishedTrialError):
        return False


def _system_attrs(trial: Any) -> dict[str, Any]:
    """A live trial's system attributes (Optuna 5 dropped ``Trial.system_attrs``)."""
    attrs = getattr(trial, "system_attrs", None)
    if attrs is not None:
        return dict(attrs)
    return dict(tr.stored(trial.study._storage.get_trial_system_attrs, trial._trial_id, what="read a trial"))


def _find_run(a: WorkerArgs, number: int) -> str | None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    try:
        return TRACKING.call(tracking.find_trial_run, a.experiment_id, a.study_name, number, uri=a.tracking_uri,
                             what="find a trial's run", patience=0)
    except Exception:  # noqa: BLE001 - found again at the next epoch
        return None


def _close_trial_run(a: WorkerArgs, number: int, status: str, reason: str | None,
                     run_id: str | None = None) -> str | None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    try:
        run_id = run_id or TRACKING.call(tracking.find_trial_run, a.experiment_id, a.study_name, number,
                                         uri=a.tracking_uri, what="find a trial's run", patience=30)
        if run_id is not None:
            TRACKING.call(tracking.end_run, run_id, status, reason, uri=a.tracking_uri,
                          what="close a trial's run", patience=30)
        return run_id
    except Exception:  # noqa: BLE001 - an unreachable tracking server must not kill the study
        return run_id


def _set_note(a: WorkerArgs, run_id: str, note: str) -> None:
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    with contextlib.suppress(Exception):  # a description must not fail a finished trial
        TRACKING.call(tracking.Run(run_id, a.tracking_uri).set_tags, {NOTE_TAG: note},
                      what="describe a trial's run", patience=30)


def _run_candidate(views, config, **kwargs):
    from infomin.protocols import run_candidate  # torch: workers only

    return run_candidate(views, config, **kwargs)


# -- a worker --------------------------------------------------------------------------------

class Worker:
    """One worker's loop: claim a trial under the gate, train it with a heartbeat, tell the result.

    Optuna's ``Study.optimize`` is not used: its trial loop let a storage error escape
    from the heartbeat thread and from ``tell`` (an ``UnboundLocalError`` inside Optuna,
    issue 10). Every step here goes through :func:`~infomin.search.trials.stored`.
    """

    def __init__(self, study: Study, args: WorkerArgs, optuna_study: Any, gate: st.Gate, reaper: Reaper,
                 log: Callable[[str], None]):
        self.study, self.args, self.optuna_study = study, args, optuna_study
        self.gate, self.reaper, self.log = gate, reaper, log
        self.objective = Objective(study, args, log=log, gate=gate)

    def run(self) -> int:
        """Run trials until the study's budget is spent. Returns the number of trials run."""
        ran = 0
        while True:
            step = self.step()
            if step == "done":
                return ran
            if step == "wait":  # a waiting worker helps with open seeds, and is a reaper too
                if self.objective.help_once(self.optuna_study):
                    continue
                self.reaper.reap_once()
                time.sleep(self.args.poll_s)
            if step == "ran":
                ran += 1

    def step(self) -> str:
        """Claim and run one trial: ``"ran"``, ``"skipped"`` (a duplicate), ``"wait"`` or ``"done"``."""
        from optuna.trial import TrialState

        claimed = self._claim()
        if isinstance(claimed, str):
            return claimed
        trial, duplicate = claimed
        if duplicate is not None:
            tr.set_trial_attr(trial, tr.A_DUPLICATE, duplicate)
            tr.set_trial_attr(trial, A_REASON, f"its point already ran as trial {duplicate}")
            self._tell(trial, Outcome(TrialState.FAIL, reason=f"its point already ran as trial {duplicate}"))
            self.log(f"trial {trial.number} skipped: its point already ran as trial {duplicate}")
            return "skipped"
        t0 = time.perf_counter()
        try:  # heartbeats until the result is told: a tell waiting out an outage keeps the trial alive
            with Heartbeat(self.optuna_study._storage, trial._trial_id, self.args.heartbeat_interval):
                outcome = self.objective(trial)
                self._finish(trial, outcome, time.perf_counter() - t0)
        except KeyboardInterrupt as e:
            self._interrupted(trial, getattr(e, "reason", None) or "interrupted by SIGINT")
            raise
        return "ran"

    def _claim(self) -> str | tuple[Any, int | None]:
        """Under the gate: the budget, ``ask``, the first heartbeat, the owner; then a duplicate check."""
        study, storage = self.optuna_study, self.optuna_study._storage
        self.gate.acquire()
        try:
            state = budget_state(study, self.args.n_trials)
            if state != "go":
                return state
            with tr.quiet_optuna():
                trial = tr.stored(study.ask, what="ask for a trial")
            tr.stored(storage.record_heartbeat, trial._trial_id, what=f"trial {trial.number}: first heartbeat")
            for key, value in ((A_WORKER, self.objective.worker), (A_SESSION, self.args.session), (A_RUN, None)):
                tr.set_trial_attr(trial, key, value)
            me = tr.stored(storage.get_trial, trial._trial_id, what=f"trial {trial.number}: read it")
            return trial, tr.duplicate_of(tr.get_trials(study), me)
        finally:
            self.gate.release()

    def _tell(self, trial: Any, outcome: Outcome) -> Any:
        from optuna.trial import TrialState

        values = [outcome.value] if outcome.state == TrialState.COMPLETE else None
        with tr.quiet_optuna():
            return tr.stored(self.optuna_study.tell, trial, values, outcome.state, skip_if_finished=True,
                             what=f"trial {trial.number}: record its result")

    def _finish(self, trial: Any, outcome: Outcome, seconds: float) -> None:
        """Record the outcome; a trial a reaper failed meanwhile passes its result to its follower."""
        if outcome.run_id is not None:
            tr.set_trial_attr(trial, A_RUN, outcome.run_id)
        if outcome.metrics:
            tr.set_trial_attr(trial, "metrics", outcome.metrics)
        for key, value in outcome.seed_attrs.items():  # stored as each seed finished; again if that failed
            if trial.user_attrs.get(key) != value:
                tr.set_trial_attr(trial, key, value)
        if outcome.retry:
            tr.set_trial_attr(trial, tr.A_RETRY, True)
        told = self._tell(trial, outcome)
        if told.state != outcome.state:
            self._hand_over(told, outcome, seconds)
            return
        if outcome.retry:  # counted like a dead worker, so a store that never answers cannot loop
            self.reaper.handle(told, outcome.reason or "failed by a store", death=True)
        else:
            self.log(_trial_line(trial.number, outcome, trial.params, seconds))

    def _hand_over(self, dead: Any, outcome: Outcome, seconds: float) -> None:
        """Our trial was failed by a reaper (the storage was away longer than the grace period):
        a COMPLETE result goes to its follower (claimed if still WAITING), nothing is lost."""
        from optuna.trial import TrialState

        n = dead.number
        if outcome.state != TrialState.COMPLETE:
            self.log(f"trial {n} {outcome.state.name} after {seconds:.1f} s, but a reaper had failed it meanwhile; "
                     "its retry runs it again")
            return
        attrs = {"metrics": outcome.metrics, A_RUN: outcome.run_id, A_WORKER: self.objective.worker,
                 tr.A_RECOVERED: n, **outcome.seed_attrs}
        self.gate.acquire()
        try:
            follower = tr.follower_of(tr.get_trials(self.optuna_study), n)
            if follower is None:
                m = tr.add_follower(self.optuna_study, dead, TrialState.COMPLETE, value=outcome.value, user_attrs=attrs)
            elif follower.state == TrialState.WAITING and self._complete(follower, outcome, attrs):
                m = follower.number
            elif follower.state == TrialState.COMPLETE:
                m = follower.number
            else:
                self.log(f"trial {n} COMPLETE {outcome.value:.4f}, but its retry, trial {follower.number}, is "
                         f"{follower.state.name} already (MLflow run {outcome.run_id} keeps this result)")
                return
        finally:
            self.gate.release()
        self.log(f"trial {n} COMPLETE {outcome.value:.4f} in {seconds:.1f} s, recorded as trial {m} "
                 f"(a reaper had failed trial {n} while the storage was away)")

    def _complete(self, waiting: Any, outcome: Outcome, attrs: dict[str, Any]) -> bool:
        """Claim a WAITING follower and complete it with ``outcome``; ``False`` if another worker took it."""
        from optuna.trial import TrialState

        storage, tid = self.optuna_study._storage, waiting._trial_id
        if not tr.stored(storage.set_trial_state_values, tid, TrialState.RUNNING, what="claim a retry"):
            return False
        for key, value in attrs.items():
            tr.stored(storage.set_trial_user_attr, tid, key, value, what="copy a result")
        tr.stored(storage.set_trial_state_values, tid, TrialState.COMPLETE, [outcome.value], what="copy a result")
        return True

    def _interrupted(self, trial: Any, reason: str) -> None:
        """Fail the trial as interrupted and hand it to a retry (best effort: if this process dies
        first, the trial is marked and any reaper's sweep retries it)."""
        from optuna.trial import TrialState

        ignore_signals()  # a second Ctrl-C or the coordinator's SIGTERM must not cut this short
        handed = False
        with contextlib.suppress(Exception):
            for key, value in ((tr.A_RETRY, True), (A_REASON, reason)):
                tr.set_trial_attr(trial, key, value, patience=INTERRUPT_PATIENCE_S)
            with tr.quiet_optuna():
                told = tr.stored(self.optuna_study.tell, trial, None, TrialState.FAIL, skip_if_finished=True,
                                 what=f"trial {trial.number}: record the interrupt", patience=INTERRUPT_PATIENCE_S)
            handed = self.reaper.handle(told, reason, death=False)  # logs "retried as trial M"
        if not handed:
            self.log(f"trial {trial.number} FAIL: {reason}; it runs again when the study is resumed")


def _trial_line(number: int, outcome: Outcome, params: Mapping[str, Any], seconds: float) -> str:
    from optuna.trial import TrialState

    p = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    if outcome.state == TrialState.COMPLETE:
        return f"trial {number} COMPLETE {outcome.value:.4f} ({p}) in {seconds:.1f} s"
    run = f" (MLflow run {outcome.run_id})" if outcome.run_id else ""
    return f"trial {number} {outcome.state.name}: {outcome.reason}{run}"


def worker_main(args: WorkerArgs, log: Callable[[str], None] | None = None) -> int:
    """Run trials until the study's budget is spent (in a worker process, or in-process). Returns trials run."""
    import optuna

    log = log or (lambda s: None)
    study = load_study(args.study_path)
    storage = st.open_storage(args.storage_url, heartbeat_interval=args.heartbeat_interval,
                              grace_period=args.grace_period, patience=args.patience)
    optuna_study = tr.stored(optuna.load_study, study_name=args.study_name, storage=storage,
                             sampler=worker_sampler(study, args.session, args.rank, args.incarnation),
                             pruner=make_pruner(study), what="load the study")
    gate = st.Gate(args.storage_url, patience=args.patience)
    reaper = _reaper(optuna_study, study, args, gate, log)
    try:
        return Worker(study, args, optuna_study, gate, reaper, log).run()
    except KeyboardInterrupt:
        if coordinator_gone(args):
            close_parent_run(optuna_study, args, "KILLED",
                             f"coordinator (pid {args.coordinator_pid}) died; rerun `infomin study run` to continue",
                             log)
        raise
    finally:
        gate.close()


def coordinator_gone(args: WorkerArgs) -> bool:
    """Whether this worker process outlived the coordinator that started it."""
    return args.coordinator_pid not in (None, os.getpid()) and os.getppid() != args.coordinator_pid


def _reaper(optuna_study: Any, study: Study, args: WorkerArgs, gate: st.Gate, log: Callable[[str], None]) -> Reaper:
    handler = StaleTrialHandler(args.tracking_uri, args.experiment_id, args.study_name, study.spec.metric, log)
    hb = args.heartbeat_interval or st.HEARTBEAT
    return Reaper(optuna_study, handler, gate, period=max(0.5, hb / 2), settle=settle_time(hb),
                  grace=float(args.grace_period or st.GRACE), log=log)


def settle_time(heartbeat_interval: float) -> float:
    """Seconds the storage must answer before a reaper may fail trials for missing heartbeats:
    one heartbeat period, the 2 s retry of a failing heartbeat thread and PostgreSQL's 10 s
    connect timeout."""
    return float(heartbeat_interval) + 12.0


def close_parent_run(optuna_study: Any, args: WorkerArgs, status: str, reason: str | None,
                     log: Callable[[str], None]) -> None:
    """End the study's parent MLflow run, unless trials of another coordinator are running."""
    from optuna.trial import TrialState

    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    try:
        trials = tr.get_trials(optuna_study, patience=INTERRUPT_PATIENCE_S)
        others = sorted(t.number for t in trials
                        if t.state == TrialState.RUNNING and t.user_attrs.get(A_SESSION) != args.session)
        if others:
            log(f"parent run {args.parent_run_id} stays RUNNING: trials {others} of another coordinator are running")
            return
        TRACKING.call(tracking.end_run, args.parent_run_id, status, reason, uri=args.tracking_uri,
                      what="close the parent run", patience=30)
        if status == "FINISHED":
            with contextlib.suppress(Exception):  # an earlier interrupted session's reason
                tracking.client(args.tracking_uri).delete_tag(args.parent_run_id, tracking.FAILURE_TAG)
    except Exception as e:  # noqa: BLE001 - closing the run must not hide why the study stopped
        log(f"could not close parent run {args.parent_run_id}: {describe(e)}")


def _worker_entry(args: WorkerArgs) -> None:  # pragma: no cover - runs in a child process
    """A spawned worker: dies with its coordinator; its tracking store, threads and GPU first,
    then :func:`worker_main`; any error ends it in one line with an exit code."""
    if args.coordinator_pid is not None:
        die_with_parent(args.coordinator_pid)
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.cuda_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.cuda_device)  # before CUDA initialises
    import torch

    torch.set_num_threads(args.threads)
    log = _printer(f"worker {args.rank}: ")
    configure(log, args.patience)

    def why(signum: int) -> str:
        # The parent-death signal may come while the dying coordinator's other threads still hold
        # us (the kernel sends it when the thread that started us exits): wait for the reparenting.
        deadline = time.monotonic() + 1.0
        while not coordinator_gone(args) and time.monotonic() < deadline:
            time.sleep(0.05)
        if coordinator_gone(args):
            return f"its coordinator (pid {args.coordinator_pid}) died"
        return f"interrupted by {signal_name(signum)}"

    code = 0
    try:
        with signals_interrupt(why):
            worker_main(args, log)
    except KeyboardInterrupt:
        code = 130
    except InfominError as e:
        log(f"error: {e}")
        code = e.exit_code
    except Exception as e:  # noqa: BLE001 - one line; the traceback with --verbose
        if args.verbose:
            traceback.print_exc()
        log(f"error: {type(e).__name__}: {describe(e)} (not a problem with your input; --verbose shows the traceback)")
        code = 1
    sys.stdout.flush()
    sys.exit(code)


def _printer(prefix: str) -> Callable[[str], None]:
    def log(line: str) -> None:
        print(redact(f"{prefix}{line}"), flush=True)

    return log


def configure(log: Callable[[str], None] | None, patience: float) -> None:
    """Process-wide: where storage outages are reported, how long calls wait, Optuna's logs off."""
    import optuna

    set_log(log)
    STORAGE.patience = TRACKING.patience = float(patience)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- the coordinator -------------------------------------------------------------------------

@dataclass
class StudyResult:
    """What ``infomin study run`` prints: counts, the best trial, where things are, what went wrong."""

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
    deaths: list[Death] = field(default_factory=list)
    complete: bool = True
    counted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    superseded: int = 0
    session: int = 0
    retried: list[tuple[int, str]] = field(default_factory=list)
    storage_outages: int = 0
    longest_outage_s: float = 0.0

    @property
    def dead_workers(self) -> list[str]:
        return [str(d) for d in self.deaths]


@dataclass
class _Setup:
    optuna_study: Any
    session: int
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def run_study(source: str | Path, *, n_trials: int | None = None, workers: int = 1,
              storage: str | None = None, study_name: str | None = None, out: str | Path | None = None,
              heartbeat_interval: int = st.HEARTBEAT, grace_period: int = st.GRACE,
              reap_every: float | None = None, patience: float = PATIENCE_S, verbose: bool = False,
              repeats: int | None = None, log: Callable[[str], None] | None = None) -> StudyResult:
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
        patience: seconds any storage or MLflow call waits for its store to come back.
        verbose: workers print tracebacks of unexpected errors.
        repeats: seeds per candidate (default ``STUDY.repeats``); see :class:`Objective`.
        log: receives one line per event (trials, outages, dead workers).

    Raises :class:`SpecError` / :class:`InfominError` for a bad module, budget or storage,
    before any trial runs; :class:`StudyIncomplete` (with the result) when the budget was not
    reached; ``KeyboardInterrupt`` after a SIGINT or SIGTERM, once the workers have recorded
    their trials and the parent run is closed ``KILLED``.
    """
    log = log or (lambda s: None)
    t0 = time.perf_counter()
    configure(log, patience)
    study = load_study(source)
    check_study(study)
    name = study_name or study.name
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise SpecError("workers", workers, "expected an integer >= 1")
    budget = study.spec.n_trials if n_trials is None else n_trials
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SpecError("n_trials", budget, "expected an integer >= 1")
    repeats = study.spec.repeats if repeats is None else repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SpecError("repeats", repeats, "expected an integer >= 1 (seeds per candidate)")
    if grace_period <= heartbeat_interval:
        raise SpecError("grace_period", grace_period, f"must exceed heartbeat_interval={heartbeat_interval}")
    if study.spec.sampler == "grid" and budget > math.prod(len(v) for v in study.spec.grid.values()):
        raise SpecError("n_trials", budget, f"the grid has {math.prod(len(v) for v in study.spec.grid.values())} "
                        "points and each runs once")
    out = Path(out or Path(OUT_ROOT) / name).resolve()
    url = st.normalize_url(storage or st.default_storage_url())
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecError("out", str(out), f"cannot create the study's folder ({e.strerror})") from None
    setup = _create(study, name, url, out, heartbeat_interval, grace_period)
    args = [WorkerArgs(study_path=str(study.path), study_name=name, storage_url=url, tracking_uri=setup.tracking_uri,
                       experiment_id=setup.experiment_id, parent_run_id=setup.parent_run_id, n_trials=budget,
                       session=setup.session, rank=r, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                       patience=patience, coordinator_pid=os.getpid(), verbose=verbose, repeats=repeats,
                       **_placement(r, workers))
            for r in range(workers)]
    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    log(f"study {name} (session {setup.session}): {budget} trials"
        + (f" x {repeats} seeds" if repeats > 1 else " (1 seed each)")
        + f", {workers} worker(s), storage {st.redact(url)}, "
        f"tracking {tracking.display_uri(setup.tracking_uri)} (experiment {setup.experiment_id}, "
        f"parent run {setup.parent_run_id})")
    gate = st.Gate(url, patience=patience)
    reaper = _reaper(setup.optuna_study, study, args[0], gate, log)
    if reap_every:
        reaper.period = reap_every
    reaper.reap_once()  # retries of a previous session's interrupted trials go first
    reaper.start()
    deaths: list[Death] = []
    try:
        with signals_interrupt():
            deaths = _run_workers(study, args, setup, log)
    except KeyboardInterrupt as e:
        close_parent_run(setup.optuna_study, args[0], "KILLED",
                         f"{getattr(e, 'reason', None) or 'interrupted by SIGINT'}; "
                         "rerun the same command to continue", log)
        raise
    except Unavailable as e:
        close_parent_run(setup.optuna_study, args[0], "FAILED", describe(e), log)
        raise Unavailable(f"{e}; nothing is lost: rerun the same command once it answers") from e
    except Exception as e:
        close_parent_run(setup.optuna_study, args[0], "FAILED", describe(e), log)
        raise
    finally:
        reaper.stop()
        gate.close()
    res = _result(setup, name, url, out, budget, time.perf_counter() - t0, deaths, reaper)
    if res.complete:
        close_parent_run(setup.optuna_study, args[0], "FINISHED", None, log)
        return res
    why = _why_incomplete(res)
    close_parent_run(setup.optuna_study, args[0], "FAILED", why, log)
    raise StudyIncomplete(why, res)


def _create(study: Study, name: str, url: str, out: Path, heartbeat_interval: int, grace_period: int) -> _Setup:
    """Under the creation lock: the Optuna study, a new session, the MLflow store, experiment and parent run."""
    import optuna

    from infomin import tracking  # mlflow: heavy (~2 s), only runs need it

    with st.creation_lock(url):
        with st.storage_errors(url):
            rdb = st.open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, create=True)
            optuna_study = optuna.create_study(study_name=name, storage=rdb, direction=study.spec.direction,
                                               sampler=make_sampler(study, study.spec.seed),
                                               pruner=make_pruner(study), load_if_exists=True)
            if optuna_study.direction.name.lower() != study.spec.direction:
                raise SpecError("STUDY.direction", study.spec.direction,
                                f"study {name!r} in {st.redact(url)} was created to "
                                f"{optuna_study.direction.name.lower()}")
            session = int(optuna_study.user_attrs.get(tr.S_SESSIONS, 0))
            optuna_study.set_user_attr(tr.S_SESSIONS, session + 1)
        with tracking.store_errors():
            uri = tracking.prepare_store()
            artifact_location = (out / "mlartifacts").as_uri() if tracking.is_local_store(uri) else None
            experiment_id = TRACKING.call(tracking.get_or_create_experiment, name, artifact_location, uri=uri,
                                          what="create the experiment", patience=60)
            parent = TRACKING.call(
                tracking.study_parent_run, experiment_id, name, uri=uri, what="create the parent run", patience=60,
                params={**{f"study.{k}": v for k, v in study.spec.to_dict().items() if k != "baselines"},
                        "study.file": study.path.name},
                tags={NOTE_TAG: study.question, "infomin.storage": st.redact(url), RUN_COLOR_TAG: PARENT_COLOR})
            with contextlib.suppress(Exception):  # the runs table's default columns: a convenience
                tracking.set_runs_view(experiment_id, study.spec.metric, study.spec.direction, uri=uri)
        with st.storage_errors(url):
            _first_time(optuna_study, study, tracking.display_uri(uri), experiment_id, parent)
    return _Setup(optuna_study, session, uri, experiment_id, parent)


def _first_time(optuna_study: Any, study: Study, display_uri: str, experiment_id: str, parent: str) -> None:
    """Study attributes (the tracking URI without its password) and the enqueued points, once."""
    import optuna
    attrs = optuna_study.user_attrs
    for key, value in ((S_URI, display_uri), (S_EXP, experiment_id), (S_PARENT, parent)):
        if key not in attrs or (key == S_URI and has_secret(str(attrs[key]))):  # stored in clear before issue 10
            optuna_study.set_user_attr(key, value)
    if "infomin.study_file" in attrs:
        return
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


def _run_workers(study: Study, args: list[WorkerArgs], setup: _Setup, log: Callable[[str], None]) -> list[Death]:
    """In this process for one worker; else supervised processes, replaced while trials remain."""
    from dataclasses import replace

    if len(args) == 1:
        worker_main(args[0], log)
        return []

    def work_remains() -> bool:
        try:
            return budget_state(setup.optuna_study, args[0].n_trials,
                                tr.get_trials(setup.optuna_study, patience=30)) != "done"
        except Exception:  # noqa: BLE001 - unknown: replace the worker, it will find out
            return True

    sup = Supervisor(target=_worker_entry, make_args=lambda slot, inc: replace(args[slot], incarnation=inc),
                     slots=len(args), work_remains=work_remains, max_replacements=2 * len(args), log=log)
    try:
        return sup.run()
    finally:
        sup.stop()  # after an interrupt: SIGTERM, each worker records its trial; no-op otherwise


def _placement(rank: int, workers: int) -> dict[str, Any]:
    """Threads and device of worker ``rank``: one GPU each when CUDA is present, else cores // W threads."""
    import torch

    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"threads": max(1, cpu_cores() // workers), "cuda_device": rank % n_gpu if n_gpu else None}


def _result(setup: _Setup, name: str, url: str, out: Path, budget: int, wall_s: float, deaths: list[Death],
            reaper: Reaper) -> StudyResult:
    from optuna.trial import TrialState

    study = setup.optuna_study
    trials = tr.get_trials(study)
    counts = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    n_counted = len(tr.counted(study, trials))
    gone = tr.superseded(trials)
    final = [t for t in trials if t.state.is_finished() and t.number not in gone
             and t.user_attrs.get(tr.A_DUPLICATE) is None and not tr.retry_pending(study, t)]
    outcomes = {s.name: sum(1 for t in final if t.state == s) for s in TrialState if s.is_finished()}
    completes = [t for t in trials if t.state == TrialState.COMPLETE]
    pick = max if study.direction.name.lower() == "maximize" else min
    best = pick(completes, key=lambda t: t.value) if completes else None
    return StudyResult(name=name, storage_url=url, tracking_uri=setup.tracking_uri, experiment_id=setup.experiment_id,
                       parent_run_id=setup.parent_run_id, out=out, n_trials=budget, counts=counts,
                       best_value=None if best is None else best.value,
                       best_params=None if best is None else dict(best.params),
                       best_trial=None if best is None else best.number, wall_s=wall_s, deaths=deaths,
                       complete=n_counted >= budget, counted=n_counted, session=setup.session,
                       outcomes=outcomes, superseded=len(gone),
                       retried=list(reaper.reaped), storage_outages=STORAGE.outages,
                       longest_outage_s=STORAGE.longest_outage_s)


def _why_incomplete(res: StudyResult) -> str:
    why = f"study {res.name} stopped with {res.counted} of {res.n_trials} trials finished"
    if res.deaths:
        last = res.deaths[-1]
        why += f": {len(res.deaths)} worker(s) died (last: {last}; its own error is printed above)"
    return why + "; rerun the same command to continue"
