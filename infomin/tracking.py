"""MLflow tracking: the only module that imports ``mlflow``.

One MLflow run per training; a study is a parent run and each trial a child
run (tag ``mlflow.parentRunId``), possibly written from another process, so
everything here goes through an explicit :class:`mlflow.MlflowClient` and a
``run_id`` instead of MLflow's process-global "active run" stack.

* The store defaults to ``sqlite:///mlflow.db`` in the working directory
  (MLflow 3 refuses the plain file store by default); ``MLFLOW_TRACKING_URI``
  or an explicit ``uri`` overrides it. Browse with ``infomin ui`` (the MLflow UI and
  optuna-dashboard together, :mod:`infomin.ui`).
* Metrics of one step are sent with one ``log_batch``, not one ``log_metric``
  call (and one database transaction) per value.
* A run that raises ends ``FAILED`` with the tag ``infomin.failure_reason``;
  an Optuna prune or Ctrl-C ends it ``KILLED``.
* ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``: no artifact is ever unpickled.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> uri = f"sqlite:///{d}/mlflow.db"
>>> exp = get_or_create_experiment("doc", uri=uri)
>>> with start_run(experiment_id=exp, run_name="r", uri=uri) as run:
...     run.log_metrics({"train/loss": 1.5}, step=0)
>>> get_run(run.run_id, uri=uri).info.status
'FINISHED'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunStatus, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from infomin.errors import InfominError, has_secret, redact  # noqa: E402,F401
from infomin.retry import TRACKING, describe  # noqa: E402
from infomin.stores import (  # noqa: E402,F401  (re-exported)
    DEFAULT_URI_FILE,
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING,
    NOTE_TAG,
    PRIMARY_METRIC_TAG,
    RUN_COLOR_TAG,
    SHARED_VIEW_TAG,
    VIEW_KEY,
    browse_command,
    file_lock,
    tracking_uri,
)

DEFAULT_EXPERIMENT = "infomin"
FAILURE_TAG = "infomin.failure_reason"
PARENT_TAG = "mlflow.parentRunId"
#: What a user compares between runs: the runs table opens with these columns first.
KEY_METRICS = ("eval/linear_acc", "mi/nce", "mi/log_k", "eval/alignment", "eval/uniformity",
               "eval/tolerance", "eval/knn_acc")
_MAX_PARAMS = 100  # per log_batch call
_MAX_METRICS = 1000
_MAX_PARAM_LEN = 6000

_clients: dict[str, MlflowClient] = {}


def ui_command(uri: str | None = None, storage: str | None = None) -> str:
    """The shell command that browses ``uri`` (and ``storage``): ``infomin ui ...``, spelled so that
    it works as printed from the cwd (:func:`infomin.stores.browse_command`)."""
    return browse_command(uri, storage)


def display_uri(uri: str | None = None) -> str:
    """``uri`` as it may be printed or stored: the password replaced by ``***``."""
    return redact(tracking_uri(uri))


def client(uri: str | None = None) -> MlflowClient:
    """A cached :class:`MlflowClient` for ``uri`` (see :func:`tracking_uri`). A SQLite store's schema
    is created (or found in place) under its creation lock first, once per process; its journal
    mode is left alone (:func:`prepare_store` switches a study's store to WAL)."""
    u = tracking_uri(uri)
    if u not in _clients:
        if u.startswith("sqlite:///"):
            with _creation_lock(Path(u[len("sqlite:///"):]).expanduser()):
                _create_schema(u, None)
        _clients[u] = MlflowClient(tracking_uri=u)
    return _clients[u]


def get_or_create_experiment(name: str = DEFAULT_EXPERIMENT, artifact_location: str | None = None,
                             *, uri: str | None = None) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``) if missing.

    Every experiment infomin creates or reuses is marked as model training
    (:data:`~infomin.stores.EXPERIMENT_KIND_TAG`), names its primary metric, and carries a
    runs-table view with the :data:`KEY_METRICS` as its first columns (:func:`set_runs_view`; a
    study replaces both with its own objective); an existing view or primary metric is kept.
    """
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            return c.create_experiment(name, artifact_location=artifact_location, tags=_experiment_tags())
        except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel worker
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    for key, value in _experiment_tags().items():
        if exp.tags.get(key) is None or (key == EXPERIMENT_KIND_TAG and exp.tags[key] != value):
            c.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def _experiment_tags(metric: str = KEY_METRICS[0], direction: str = "maximize") -> dict[str, str]:
    return {EXPERIMENT_KIND_TAG: MODEL_TRAINING, PRIMARY_METRIC_TAG: metric,
            SHARED_VIEW_TAG + VIEW_KEY: runs_view([metric, *KEY_METRICS], order_by=metric,
                                                  ascending=direction == "minimize")}


def runs_view(metrics: Sequence[str], *, order_by: str | None = None, ascending: bool = False) -> str:
    """The MLflow UI's runs-table state (JSON): ``metrics`` as the first columns, in this order,
    runs sorted by metric ``order_by``.

    The keys are the UI's own (``selectedColumns`` and ``columnOrder`` hold ``metrics.`<key>```
    column ids; ``orderByKey`` a sort key); the UI fills in the rest with its defaults. Sorting by
    a metric also lists a study's trials flat, next to its parent run: the UI nests child runs
    under their parent only in its default sort, and keeps them collapsed (a saved view cannot
    expand them).

    >>> runs_view(["mi/nce", "mi/nce"], order_by="mi/nce")
    '{"selectedColumns": ["metrics.`mi/nce`"], "columnOrder": ["metrics.`mi/nce`"], "orderByKey": "metrics.`mi/nce`", "orderByAsc": false}'
    """
    cols: list[str] = []
    for m in metrics:
        if f"metrics.`{m}`" not in cols:
            cols.append(f"metrics.`{m}`")
    state: dict[str, Any] = {"selectedColumns": cols, "columnOrder": cols}
    if order_by:
        state.update(orderByKey=f"metrics.`{order_by}`", orderByAsc=bool(ascending))
    return json.dumps(state)


def set_runs_view(experiment_id: str, metric: str, direction: str = "maximize", *,
                  uri: str | None = None) -> None:
    """Make ``metric`` the experiment's primary metric, and its runs-table view (where ``infomin
    ui``'s links open it) list ``metric`` then :data:`KEY_METRICS`, best run first."""
    c = client(uri)
    for key, value in _experiment_tags(metric, direction).items():
        c.set_experiment_tag(experiment_id, key, value)


def _param_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        s = repr(v)
    else:
        s = str(v)
    return s if len(s) <= _MAX_PARAM_LEN else s[: _MAX_PARAM_LEN - 3] + "..."


class Run:
    """A handle on one MLflow run: everything is logged by ``run_id`` through one client.

    Cheap to construct; safe to use from a worker process given the same ``run_id`` and ``uri``.
    """

    def __init__(self, run_id: str, uri: str | None = None):
        self.run_id = run_id
        self.uri = tracking_uri(uri)
        self.client = client(self.uri)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r}, uri={self.uri!r})"

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (values turned to strings); chunked to MLflow's 100-per-batch limit."""
        items = [Param(str(k), _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), _MAX_PARAMS):
            self.client.log_batch(self.run_id, params=items[i:i + _MAX_PARAMS], synchronous=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log one step's metrics with a single ``log_batch``; non-finite values are skipped."""
        ts = int(time.time() * 1000)
        items = [Metric(str(k), float(v), ts, int(step)) for k, v in metrics.items()
                 if v is not None and math.isfinite(float(v))]
        for i in range(0, len(items), _MAX_METRICS):
            self.client.log_batch(self.run_id, metrics=items[i:i + _MAX_METRICS], synchronous=True)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        items = [RunTag(str(k), _param_value(v)) for k, v in tags.items()]
        if items:
            self.client.log_batch(self.run_id, tags=items, synchronous=True)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        """Write ``text`` as artifact ``name`` (e.g. ``"views.yaml"``)."""
        self.client.log_text(self.run_id, text, name)

    def log_figure(self, figure: Any, name: str, *, close: bool = True) -> None:
        """Save a matplotlib figure as artifact ``name`` (e.g. ``"plots/curves.png"``)."""
        self.client.log_figure(self.run_id, figure, name)
        if close:
            import matplotlib.pyplot as plt

            plt.close(figure)

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        end_run(self.run_id, status, reason, uri=self.uri)


def end_run(run_id: str, status: str = "FINISHED", reason: str | None = None,
            *, uri: str | None = None) -> None:
    """Mark a run ``FINISHED``, ``FAILED`` or ``KILLED``; ``reason`` goes to tag ``infomin.failure_reason``."""
    status = status.upper()
    RunStatus.from_string(status)  # validates
    c = client(uri)
    if reason:
        c.set_tag(run_id, FAILURE_TAG, _param_value(reason))
    c.set_terminated(run_id, status=status)


def _status_for(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED"
    try:
        import optuna

        if isinstance(exc, optuna.TrialPruned):
            return "KILLED"
    except ImportError:  # pragma: no cover
        pass
    return "FAILED"


def failure_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def start_run(*, experiment_id: str | None = None, experiment: str | None = None,
              run_name: str | None = None, parent_run_id: str | None = None,
              run_id: str | None = None, tags: Mapping[str, Any] | None = None,
              uri: str | None = None, end: bool = True) -> Iterator[Run]:
    """Create (or, with ``run_id``, re-open) a run and end it on exit.

    A nested child run of ``parent_run_id`` carries the tag ``mlflow.parentRunId``
    (works across processes). On an exception the run ends ``FAILED`` (``KILLED``
    for ``optuna.TrialPruned`` and ``KeyboardInterrupt``) with the reason tagged,
    and the exception propagates. ``end=False`` leaves a successful run open.
    """
    c = client(uri)
    if run_id is None:
        if experiment_id is None:
            experiment_id = get_or_create_experiment(
                experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT, uri=uri)
        all_tags = {str(k): _param_value(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        info = c.create_run(experiment_id, tags=all_tags, run_name=run_name).info
        run = Run(info.run_id, uri)
    else:
        run = Run(run_id, uri)
        if tags:
            run.set_tags(tags)
    try:
        yield run
    except BaseException as e:
        status = _status_for(e)
        with contextlib.suppress(Exception):  # lets the CLI name the failed run
            if getattr(e, "mlflow_run_id", None) is None:
                e.mlflow_run_id = run.run_id
        with contextlib.suppress(Exception):
            end_run(run.run_id, status, failure_reason(e), uri=uri)
        raise
    if end:
        end_run(run.run_id, "FINISHED", uri=uri)


def log_figure(run_id: str, figure: Any, name: str, *, uri: str | None = None) -> None:
    """Save a matplotlib figure as artifact ``name`` of run ``run_id`` (and close it)."""
    Run(run_id, uri).log_figure(figure, name)


def log_artifact(run_id: str, path: str | Path, artifact_path: str | None = None,
                 *, uri: str | None = None) -> None:
    """Copy a local file into run ``run_id``'s artifacts (under ``artifact_path``)."""
    Run(run_id, uri).log_artifact(path, artifact_path)


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int = 0,
                *, uri: str | None = None) -> None:
    """One ``log_batch`` of ``metrics`` at ``step`` to run ``run_id``."""
    Run(run_id, uri).log_metrics(metrics, step)


def get_run(run_id: str, *, uri: str | None = None):
    """The MLflow ``Run`` entity (``.info``, ``.data.params``, ``.data.metrics``, ``.data.tags``)."""
    return client(uri).get_run(run_id)


def metric_history(run_id: str, key: str, *, uri: str | None = None) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one metric."""
    return [(m.step, m.value) for m in client(uri).get_metric_history(run_id, key)]


def list_artifacts(run_id: str, path: str | None = None, *, uri: str | None = None) -> list[str]:
    """Artifact paths of a run, recursively."""
    c = client(uri)
    out: list[str] = []
    stack = [path]
    while stack:
        p = stack.pop()
        for f in c.list_artifacts(run_id, p):
            (stack.append(f.path) if f.is_dir else out.append(f.path))
    return sorted(out)


def download_artifacts(run_id: str, path: str = "", dst: str | Path | None = None,
                       *, uri: str | None = None) -> Path:
    """Copy a run's artifact (file or folder) to ``dst`` (a new temp folder by default)."""
    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="infomin-"))
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client(uri).download_artifacts(run_id, path, str(dst)))


# -- studies --
# One experiment per Optuna study (artifacts under the study's folder for local stores), one
# parent run per study and one child run per trial, found again by their tags so that any
# process (a worker, the reaper of another machine) can close a run it did not open.

STUDY_TAG = "infomin.study"
TRIAL_TAG = "infomin.trial"
SEED_TAG = "infomin.seed"
ROLE_TAG = "infomin.role"


def prepare_store(uri: str | None = None, *, patience: float | None = None) -> str:
    """Create the tracking store once, before any worker starts; returns the absolute URI.

    Measured (issue 4): 4 processes opening a fresh MLflow SQLite store at once left it unusable
    in 4 of 5 runs, so one coordinator creates it (tables and migrations) first. A SQLite store
    is switched to WAL mode *before* MLflow creates its tables, so workers writing metrics and
    readers (``mlflow ui``) do not block each other. Locks are waited out (issue 10: a reader
    holding a brand-new ``mlflow.db`` for 45 s made MLflow fail with ``database is locked`` on
    ``CREATE TABLE experiments``): SQLite's busy timeout first, then
    :data:`infomin.retry.TRACKING` for up to ``patience`` seconds, also across a second
    process creating the same tables at that moment.
    """
    import sqlite3

    u = tracking_uri(uri)
    if not u.startswith("sqlite:///"):
        return _create_schema(u, patience)
    path = Path(u[len("sqlite:///"):]).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    u = f"sqlite:///{path}"

    def wal() -> None:
        con = sqlite3.connect(path, timeout=60)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()

    with _creation_lock(path):
        TRACKING.call(wal, what="switch mlflow.db to WAL", patience=patience)
        return _create_schema(u, patience)


@contextlib.contextmanager
def _creation_lock(path: Path) -> Iterator[None]:
    """One process at a time creates or migrates the SQLite store at ``path`` (``fcntl`` lock on
    ``<path>.lock``, as the Optuna storage's). MLflow has no lock of its own, and processes that
    migrate a new store at once leave it half-made (``duplicate column name: step``, alembic
    tables; tests/test_tracking.py starts four at once). Without ``fcntl``
    (Windows) or in a read-only folder there is no lock, and the retries below are all there is."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(ImportError, OSError):
            stack.enter_context(file_lock(f"{path}.lock"))
        yield


def _create_schema(u: str, patience: float | None) -> str:
    """Create (or migrate) the schema of store ``u``; ``u``."""
    started = time.monotonic()

    def create() -> None:
        try:
            MlflowClient(tracking_uri=u).search_experiments(max_results=1)  # creates the schema
        except Exception as e:
            if not _creation_race(e):
                raise
            if time.monotonic() - started < _MIGRATION_S:
                raise _MigrationRace(str(e)) from e
            raise InfominError(
                f"tracking store {display_uri(u)}: MLflow's schema migration keeps failing ({describe(e)}); "
                "another process created this store at the same moment and died half-way: delete the new store "
                "and run again") from None

    TRACKING.call(create, what="create the MLflow store", patience=patience,
                  transient=lambda e: isinstance(e, _MigrationRace))
    return u


#: seconds another process's MLflow migration may take before its leftovers mean it died half-way
_MIGRATION_S = 20.0


class _MigrationRace(Exception):
    """Another process is creating or migrating the same new store (retried for ``_MIGRATION_S``)."""


@contextlib.contextmanager
def store_errors(uri: str | None = None) -> Iterator[None]:
    """A tracking-store failure as one line: ``tracking store <uri, redacted>: <the real cause>``."""
    try:
        yield
    except InfominError:
        raise
    except (mlflow.exceptions.MlflowException, OSError) as e:
        raise InfominError(f"tracking store {display_uri(uri)}: {describe(e)}") from None
    except Exception as e:
        if type(e).__module__.split(".")[0] != "sqlalchemy":
            raise
        raise InfominError(f"tracking store {display_uri(uri)}: {describe(e)}") from None


def _creation_race(e: BaseException) -> bool:
    """Another process (``mlflow ui``, a plain client) creating or migrating the same new store
    at this moment. Seen here: ``table experiments already exists``, ``duplicate column name``,
    alembic's ``Online migration expected to match one row ... in 'alembic_version'; 0 found``,
    ``No such index`` raised inside an alembic batch migration, a leftover ``_alembic_tmp_`` table."""
    import traceback  # only to tell an alembic failure from others

    text = str(e).lower()
    in_alembic = type(e).__module__.split(".")[0] == "alembic" or any(
        "/alembic/" in f.filename for f in traceback.extract_tb(e.__traceback__))
    return in_alembic or any(s in text for s in ("alembic", "already exists", "no such table", "duplicate"))


def is_local_store(uri: str | None = None) -> bool:
    """Whether artifacts of ``uri`` may go to a local folder (SQLite or file stores)."""
    return tracking_uri(uri).split(":", 1)[0] in ("sqlite", "file")


def study_parent_run(experiment_id: str, study: str, *, params: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None, uri: str | None = None) -> str:
    """The id of the study's parent run: the existing one, or a new one.

    Two coordinators starting together may both create one; the oldest wins and the other is
    deleted, so every trial of the study nests under one parent.
    """
    c = client(uri)
    flt = f"tags.`{STUDY_TAG}` = '{study}' and tags.`{ROLE_TAG}` = 'study'"
    found = c.search_runs([experiment_id], flt, order_by=["attributes.start_time ASC"], max_results=5)
    if found:
        run_id = found[0].info.run_id
        if found[0].info.status != "RUNNING":
            c.update_run(run_id, status="RUNNING")
        return run_id
    all_tags = {STUDY_TAG: study, ROLE_TAG: "study", **{str(k): _param_value(v) for k, v in (tags or {}).items()}}
    run_id = c.create_run(experiment_id, tags=all_tags, run_name=study).info.run_id
    if params:
        Run(run_id, uri).log_params(params)
    found = c.search_runs([experiment_id], flt, order_by=["attributes.start_time ASC"], max_results=5)
    if found and found[0].info.run_id != run_id:
        c.delete_run(run_id)
        return found[0].info.run_id
    return run_id


def find_trial_run(experiment_id: str, study: str, trial: int, *, uri: str | None = None) -> str | None:
    """The child run of trial number ``trial`` (the newest if several), or ``None``; the runs of
    its seeds (tag ``infomin.seed``, children of the trial's run) are not it."""
    flt = f"tags.`{STUDY_TAG}` = '{study}' and tags.`{TRIAL_TAG}` = '{int(trial)}'"
    runs = client(uri).search_runs([experiment_id], flt, order_by=["attributes.start_time DESC"], max_results=50)
    runs = [r for r in runs if SEED_TAG not in r.data.tags]
    return runs[0].info.run_id if runs else None


def trial_runs(experiment_id: str, study: str, *, uri: str | None = None) -> list[Any]:
    """All child runs of a study (MLflow ``Run`` entities), oldest first."""
    flt = f"tags.`{STUDY_TAG}` = '{study}'"
    c = client(uri)
    out, token = [], None
    while True:
        page = c.search_runs([experiment_id], flt, order_by=["attributes.start_time ASC"],
                             max_results=1000, page_token=token)
        out.extend(r for r in page if r.data.tags.get(TRIAL_TAG) is not None)
        token = page.token
        if not token:
            return out


def end_children(run_id: str, status: str, reason: str | None = None, *, uri: str | None = None) -> list[str]:
    """End the RUNNING child runs of ``run_id`` (the seeds of a trial whose worker died); their ids."""
    c = client(uri)
    run = c.get_run(run_id)
    flt = f"tags.`mlflow.parentRunId` = '{run_id}' and attributes.status = 'RUNNING'"
    ended = []
    for child in c.search_runs([run.info.experiment_id], flt, max_results=1000):
        end_run(child.info.run_id, status, reason, uri=uri)
        ended.append(child.info.run_id)
    return ended


def run_status(run_id: str, *, uri: str | None = None) -> str:
    """``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``."""
    return client(uri).get_run(run_id).info.status


def log_folder(run_id: str, folder: str | Path, artifact_path: str | None = None,
               *, metrics: Mapping[str, float] | None = None, uri: str | None = None) -> None:
    """Upload a folder's files as artifacts of ``run_id`` and log ``metrics`` (one batch)."""
    client(uri).log_artifacts(run_id, str(folder), artifact_path)
    if metrics:
        Run(run_id, uri).log_metrics(metrics)
