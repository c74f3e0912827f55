"""MLflow tracking: the only module that imports ``mlflow``.

One MLflow run per training; a study is a parent run and each trial a child
run (tag ``mlflow.parentRunId``), possibly written from another process, so
everything here goes through an explicit :class:`mlflow.MlflowClient` and a
``run_id`` instead of MLflow's process-global "active run" stack.

* The store defaults to ``sqlite:///mlflow.db`` in the working directory
  (MLflow 3 refuses the plain file store by default); ``MLFLOW_TRACKING_URI``
  or an explicit ``uri`` overrides it. Browse with
  ``mlflow ui --backend-store-uri sqlite:///mlflow.db``.
* Metrics of one step are sent with one ``log_batch`` (about 7x cheaper than
  one ``log_metric`` per value, DESIGN.md).
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
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunStatus, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from infomin.errors import has_secret, redact  # noqa: E402

DEFAULT_URI_FILE = "mlflow.db"
DEFAULT_EXPERIMENT = "infomin"
FAILURE_TAG = "infomin.failure_reason"
PARENT_TAG = "mlflow.parentRunId"
_MAX_PARAMS = 100  # per log_batch call
_MAX_METRICS = 1000
_MAX_PARAM_LEN = 6000

_clients: dict[str, MlflowClient] = {}


def tracking_uri(uri: str | None = None) -> str:
    """The store to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / DEFAULT_URI_FILE}"


def ui_command(uri: str | None = None) -> str:
    """The shell command that browses ``uri`` (relative to the cwd when the store is there).

    A URI holding a password is never printed: the command reads it from
    ``$MLFLOW_TRACKING_URI`` when that is where it came from, else shows it redacted.
    """
    u = tracking_uri(uri)
    cwd_db = f"sqlite:///{Path.cwd() / DEFAULT_URI_FILE}"
    if u == cwd_db:
        u = f"sqlite:///{DEFAULT_URI_FILE}"
    if has_secret(u):
        u = '"$MLFLOW_TRACKING_URI"' if os.environ.get("MLFLOW_TRACKING_URI") == u else redact(u)
    return f"mlflow ui --backend-store-uri {u}"


def display_uri(uri: str | None = None) -> str:
    """``uri`` as it may be printed or stored: the password replaced by ``***``."""
    return redact(tracking_uri(uri))


def client(uri: str | None = None) -> MlflowClient:
    """A cached :class:`MlflowClient` for ``uri`` (see :func:`tracking_uri`)."""
    u = tracking_uri(uri)
    if u not in _clients:
        _clients[u] = MlflowClient(tracking_uri=u)
    return _clients[u]


def get_or_create_experiment(name: str = DEFAULT_EXPERIMENT, artifact_location: str | None = None,
                             *, uri: str | None = None) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``) if missing."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel worker
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


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


# -- sections added by other modules below --


# -- model registry --
# Learned view generators (infomin.views.io: YAML spec + safetensors weights) logged as run
# artifacts and registered as MLflow models without any pickle: an MLflow "models from code"
# pyfunc whose code is the small file below (written next to the model, never pickled) and whose
# artifacts are the YAML and the .safetensors file. The registry uses aliases (stages are deprecated).

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
VIEW_GENERATOR_ARTIFACT = "view_generator"
VIEW_GENERATOR_MODEL = "view_generator_model"

# The pyfunc's code (MLflow "models from code": the file is stored as is and run by
# mlflow.pyfunc.load_model; nothing is pickled). predict() takes images (B, C, H, W) in [0, 1]
# and returns the two views concatenated on the channel axis (B, c1 + c2, H, W).
_PYFUNC_CODE = '''"""infomin learned view generator as an MLflow pyfunc (models from code; no pickle)."""
import warnings

import numpy as np
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

with warnings.catch_warnings():  # MLflow asks for type hints on predict; images are plain arrays
    warnings.simplefilter("ignore", UserWarning)

    class ViewGeneratorModel(PythonModel):
        def load_context(self, context):
            from infomin.views.io import load

            self.generator = load(context.artifacts["spec"], frozen=True)

        def predict(self, context, model_input, params=None):
            x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
            seed = int((params or {}).get("seed", 0))
            with torch.no_grad():
                v1, v2, _ = self.generator(x, generator=seed)
            return torch.cat([v1, v2], dim=1).numpy()


set_model(ViewGeneratorModel())
'''


@contextlib.contextmanager
def _global_uri(uri: str | None) -> Iterator[None]:
    """Briefly point MLflow's *global* tracking URI at ``uri`` (the fluent model API and the
    registry's resolution of ``models:/`` URIs read it, not a client's URI).

    ``mlflow.set_tracking_uri`` also writes (or, given ``None``, deletes) the
    ``MLFLOW_TRACKING_URI`` environment variable, so both the module's URI and the
    variable are restored exactly afterwards.
    """
    from mlflow.tracking._tracking_service import utils as _service  # the explicitly set URI

    old_uri = _service._tracking_uri
    old_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri(uri))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_uri)
        if old_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_env


@contextlib.contextmanager
def _active(run_id: str, uri: str | None) -> Iterator[None]:
    """Briefly make ``run_id`` MLflow's active run on ``uri`` (for ``mlflow.pyfunc.log_model``)."""
    with _global_uri(uri), mlflow.start_run(run_id=run_id):
        yield


def log_view_generator(yaml_path: str | Path, *, run_id: str, register_as: str | None = None,
                       alias: str = "current", uri: str | None = None) -> dict[str, Any]:
    """Log a saved view generator to ``run_id`` and optionally register it under ``register_as@alias``.

    The YAML and ``.safetensors`` pair go to the run's ``view_generator/`` artifacts
    (``runs:/<run_id>/view_generator``); a models-from-code pyfunc holding the
    same two files is logged as ``view_generator_model``. With ``register_as`` the
    pyfunc becomes a new version of that registered model and ``alias`` points to it
    (MLflow reserves ``latest``: ``models:/<name>/latest`` already means the newest version).

    Returns ``{"run_uri", "model_uri", "name", "version", "alias", "registered_uri"}``.
    The run must not be in progress elsewhere in this process's fluent stack.
    """
    from infomin.views.io import read_meta

    yaml_path = Path(yaml_path)
    weights = yaml_path.parent / read_meta(yaml_path)["weights"]
    run = Run(run_id, uri)
    run.log_artifact(yaml_path, VIEW_GENERATOR_ARTIFACT)
    run.log_artifact(weights, VIEW_GENERATOR_ARTIFACT)
    out: dict[str, Any] = {"run_uri": f"runs:/{run_id}/{VIEW_GENERATOR_ARTIFACT}", "name": None,
                           "version": None, "alias": None, "registered_uri": None}
    with tempfile.TemporaryDirectory(prefix="infomin-pyfunc-") as tmp:
        code = Path(tmp) / "view_generator_model.py"
        code.write_text(_PYFUNC_CODE)
        with _active(run_id, uri):
            info = mlflow.pyfunc.log_model(
                name=VIEW_GENERATOR_MODEL,
                python_model=str(code),
                artifacts={"spec": str(yaml_path), "weights": str(weights)},
                # explicit requirements: skips MLflow's inference, which loads the model in a subprocess
                pip_requirements=["torch", "numpy", "safetensors", "pyyaml", "infomin"],
            )
            out["model_uri"] = info.model_uri
            if register_as:
                c = client(uri)
                with contextlib.suppress(mlflow.exceptions.MlflowException):  # exists already
                    c.create_registered_model(register_as)
                mv = c.create_model_version(register_as, source=info.model_uri, run_id=run_id,
                                            model_id=getattr(info, "model_id", None))
                c.set_registered_model_alias(register_as, alias, mv.version)
                out.update(name=register_as, version=int(mv.version), alias=alias,
                           registered_uri=f"models:/{register_as}@{alias}")
    return out


def download_view_generator(source: str, dst: str | Path | None = None, *,
                            uri: str | None = None) -> Path:
    """Download a generator named by ``runs:/<run_id>/<path>`` or ``models:/<name>@<alias>``
    (or ``models:/<name>/<version>``) and return the local YAML path.

    Only plain files are copied (YAML, safetensors, MLmodel, the pyfunc's code); nothing
    is loaded or unpickled here: :func:`infomin.views.io.load` reads the two files.
    """
    from infomin.errors import SpecError

    dst = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="infomin-gen-"))
    dst.mkdir(parents=True, exist_ok=True)
    u = tracking_uri(uri)
    try:
        if source.startswith("runs:/"):
            rest = source[len("runs:/"):].strip("/")
            run_id, _, path = rest.partition("/")
            if not run_id:
                raise SpecError("source", source, "expected runs:/<run_id>/<artifact path>")
            path = path or VIEW_GENERATOR_ARTIFACT
            if path.endswith((".yaml", ".yml", ".safetensors")):  # a file: fetch its folder
                path = path.rsplit("/", 1)[0] if "/" in path else ""
            local = Path(client(u).download_artifacts(run_id, path, str(dst)))
        elif source.startswith("models:/"):
            with _global_uri(u):
                local = Path(mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(dst), tracking_uri=u))
            # a pyfunc keeps its artifacts under artifacts/ (models from code)
            if (local / "artifacts").is_dir():
                local = local / "artifacts"
        else:
            raise SpecError("source", source, "expected a runs:/ or models:/ URI")
    except mlflow.exceptions.MlflowException as e:
        raise SpecError("source", source, f"MLflow could not resolve it ({str(e).splitlines()[0]})") from None
    if local.is_file():
        return local
    found = sorted(local.rglob("*.yaml"))
    if len(found) != 1:
        raise SpecError("source", source, f"expected one saved generator (.yaml), found "
                                          f"{[str(f.relative_to(local)) for f in found]}")
    return found[0]


# -- studies --
# One experiment per Optuna study (artifacts under the study's folder for local stores), one
# parent run per study and one child run per trial, found again by their tags so that any
# process (a worker, the reaper of another machine) can close a run it did not open.

STUDY_TAG = "infomin.study"
TRIAL_TAG = "infomin.trial"
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

    from infomin.retry import TRACKING

    u = tracking_uri(uri)
    if u.startswith("sqlite:///"):
        path = Path(u[len("sqlite:///"):]).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        u = f"sqlite:///{path}"

        def wal() -> None:
            con = sqlite3.connect(path, timeout=60)
            try:
                con.execute("PRAGMA journal_mode=WAL")
            finally:
                con.close()

        TRACKING.call(wal, what="switch mlflow.db to WAL", patience=patience)
    started = time.monotonic()

    def create() -> None:
        try:
            client(u).search_experiments(max_results=1)  # creates the schema
        except Exception as e:
            if not _creation_race(e):
                raise
            if time.monotonic() - started < _MIGRATION_S:
                raise _MigrationRace(str(e)) from e
            from infomin.errors import InfominError
            from infomin.retry import describe

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
    from infomin.errors import InfominError
    from infomin.retry import describe

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
    import traceback

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
    """The child run of trial number ``trial`` (the newest if several), or ``None``."""
    flt = f"tags.`{STUDY_TAG}` = '{study}' and tags.`{TRIAL_TAG}` = '{int(trial)}'"
    runs = client(uri).search_runs([experiment_id], flt, order_by=["attributes.start_time DESC"], max_results=1)
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


def run_status(run_id: str, *, uri: str | None = None) -> str:
    """``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``."""
    return client(uri).get_run(run_id).info.status


def log_folder(run_id: str, folder: str | Path, artifact_path: str | None = None,
               *, metrics: Mapping[str, float] | None = None, uri: str | None = None) -> None:
    """Upload a folder's files as artifacts of ``run_id`` and log ``metrics`` (one batch)."""
    client(uri).log_artifacts(run_id, str(folder), artifact_path)
    if metrics:
        Run(run_id, uri).log_metrics(metrics)
