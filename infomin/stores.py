"""Where results are kept, and the command that browses them; imports neither mlflow nor optuna.

* The MLflow tracking store: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db``
  (SQLite) in the working directory.
* The Optuna storage: ``$INFOMIN_STORAGE``, else ``optuna.db`` next to a SQLite ``mlflow.db``
  (the working directory otherwise).
* :func:`browse_command`: the ``infomin ui`` line to print after a run, spelled so that it
  works exactly as printed from the working directory (``.venv/bin/infomin ui`` when infomin
  runs from a virtual environment there that is not on ``PATH``).

These live apart from :mod:`infomin.tracking` and :mod:`infomin.search.storage` so that commands
which only need a location (``infomin study list``, ``infomin ui``) start without importing MLflow.

>>> import os
>>> os.environ.pop("MLFLOW_TRACKING_URI", None) is None or True
True
>>> tracking_uri("sqlite:////tmp/x/mlflow.db")
'sqlite:////tmp/x/mlflow.db'
>>> default_storage_url("sqlite:////tmp/x/mlflow.db") if "INFOMIN_STORAGE" not in os.environ else "sqlite:////tmp/x/optuna.db"
'sqlite:////tmp/x/optuna.db'
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from infomin.errors import redact  # noqa: F401  (re-exported: one redaction for every URL)

DEFAULT_URI_FILE = "mlflow.db"
DEFAULT_STORAGE_FILE = "optuna.db"
STORAGE_ENV = "INFOMIN_STORAGE"

# How the MLflow UI (3.x) is told that infomin's experiments are model training and which
# runs-table view to open them on; strings only, written by infomin.tracking, read by infomin.ui.
#: Experiment tag MLflow 3 reads as the experiment's kind; ``custom_model_development`` is
#: "Machine learning / Model training" rather than "GenAI apps & agents".
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
#: MLflow 3.17's UI takes the kind from a global GenAI / Model training switch (this URL
#: parameter, else the browser's saved choice, else GenAI), not from the tag.
WORKFLOW_PARAM = "workflowType=machine_learning"
#: A runs-table view (columns, expanded parents) saved on the experiment as the tag
#: ``mlflow.sharedViewState.<key>`` and opened by the URL parameter ``viewStateShareKey=<key>``.
SHARED_VIEW_TAG = "mlflow.sharedViewState."
VIEW_KEY = "infomin"
#: A run's description (markdown), shown at the top of its page.
NOTE_TAG = "mlflow.note.content"
#: Experiment tag naming the metric the UI's default charts plot (else the first metric key).
PRIMARY_METRIC_TAG = "mlflow.experiment.primaryMetric.name"
#: Run tag holding a run's colour in tables and charts (else a hash of its id, which collides).
RUN_COLOR_TAG = "mlflow.runColor"


def tracking_uri(uri: str | None = None) -> str:
    """The MLflow store to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / DEFAULT_URI_FILE}"


def default_storage_url(uri: str | None = None) -> str:
    """``$INFOMIN_STORAGE``, else ``sqlite:///<folder of mlflow.db>/optuna.db`` (the cwd for other stores)."""
    env = os.environ.get(STORAGE_ENV)
    if env:
        return env
    return _storage_next_to(tracking_uri(uri))


def script(name: str) -> str:
    """How to call console script ``name`` of this Python environment, as typed from the cwd.

    The bare name when ``PATH`` finds this environment's script; else its path, relative to
    the cwd when it lies below it (``.venv/bin/infomin`` after ``make demo``), else absolute.
    """
    bindir = Path(sys.executable).parent   # not resolved: a venv's python is a symlink
    candidate = bindir / name
    if not candidate.exists():
        return name
    found = shutil.which(name)
    if found and Path(found).resolve() == candidate.resolve():
        return name
    try:
        return str(candidate.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(candidate.absolute())


def browse_command(uri: str | None = None, storage: str | None = None) -> str:
    """The ``infomin ui`` command that opens the MLflow UI on ``uri`` and optuna-dashboard on ``storage``.

    ``--tracking-uri`` is left out only for ``mlflow.db`` in the cwd and ``--storage`` only for
    ``optuna.db`` next to a SQLite tracking store: what ``infomin ui`` picks by itself there when
    no environment variable says otherwise (the shell the line is pasted into may not have them).
    """
    parts = [shlex.quote(script("infomin")), "ui"]
    u = tracking_uri(uri)
    if _same_url(u) != _same_url(f"sqlite:///{Path.cwd() / DEFAULT_URI_FILE}"):
        parts += ["--tracking-uri", _shell_url(u, "MLFLOW_TRACKING_URI")]
    if storage and _same_url(storage) != _same_url(_storage_next_to(u)):
        parts += ["--storage", _shell_url(storage, STORAGE_ENV)]
    return " ".join(parts)


def _shell_url(url: str, env: str) -> str:
    """``url`` quoted for a shell; one holding a password is never printed: ``"$ENV"`` when that
    variable holds it, else the redacted URL (the user substitutes the password)."""
    if redact(url) == url:
        return shlex.quote(url)
    if _same_url(os.environ.get(env, "")) == _same_url(url):
        return f'"${env}"'
    return shlex.quote(redact(url))


def _storage_next_to(uri: str) -> str:
    folder = Path.cwd()
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).expanduser().resolve().parent
    return f"sqlite:///{folder / DEFAULT_STORAGE_FILE}"


def _same_url(url: str) -> str:
    """A form in which two spellings of one store compare equal (absolute SQLite paths; the
    psycopg 3 driver that ``postgresql://`` means to infomin)."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(url[len("sqlite:///"):]).expanduser().resolve())
    return re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql+psycopg://", url)


@contextlib.contextmanager
def file_lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on file ``path`` (created if missing) while the block runs:
    one process at a time creates a SQLite store's schema. Raises ``OSError`` when the file cannot
    be opened and ``ImportError`` without ``fcntl`` (Windows); callers decide what that means."""
    import fcntl  # POSIX only: ImportError on Windows, for the caller

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
