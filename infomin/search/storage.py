"""Optuna storage: the embedded SQLite default, PostgreSQL for many machines, heartbeats.

Why SQLite (in WAL mode) rather than Optuna's journal file for the embedded default:
heartbeats, and so the detection and retry of trials whose worker died, exist only
for RDB storages. Measured here (Optuna 5.0, see issue 4): in SQLite's default
rollback-journal mode a reader holding the file for a few seconds (a dashboard, a
notebook) stranded a trial RUNNING in 5 of 5 runs, in WAL mode in 0 of 3; WAL lets
readers and the single writer proceed together, and a 60 s busy timeout makes the
few workers of one machine (each writes a handful of rows per epoch) queue instead
of failing. WAL is a property of the database file, so the coordinator sets it once
when it creates the file; workers then only open it. Across machines use PostgreSQL.

A plain ``postgresql://`` URL is mapped to the psycopg 3 driver
(``postgresql+psycopg://``); an explicit ``postgresql+psycopg2://`` is kept.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from infomin import stores
from infomin.errors import InfominError, SpecError
from infomin.errors import redact as _redact
from infomin.retry import STORAGE, describe, is_transient

#: Heartbeat defaults (seconds): a worker writes its heartbeat every ``HEARTBEAT``
#: seconds; a RUNNING trial without one for ``GRACE`` seconds is failed and retried.
HEARTBEAT = 10
GRACE = 40
#: SQLite's busy timeout (seconds a writer waits for a lock before "database is locked", which
#: is then retried like any outage); ``$INFOMIN_SQLITE_TIMEOUT`` overrides it.
SQLITE_TIMEOUT_S = float(os.environ.get("INFOMIN_SQLITE_TIMEOUT", "60"))
STORAGE_ENV = stores.STORAGE_ENV


def default_storage_url() -> str:
    """``$INFOMIN_STORAGE``, else ``sqlite:///<folder of mlflow.db>/optuna.db`` (the cwd by default)."""
    return stores.default_storage_url()


SUPPORTED = ("sqlite:///path/optuna.db", "postgresql://user@host:5432/db",
             "postgresql+psycopg://...", "postgresql+psycopg2://...")


def normalize_url(url: str) -> str:
    """Absolute SQLite paths (workers may start elsewhere), psycopg 3 for ``postgresql://``.

    Only SQLite and PostgreSQL are accepted: the cross-process gate and the creation lock
    (file locks, PostgreSQL advisory locks) and the fault tests exist for those two; any
    other scheme is refused here, before anything is created.
    """
    if not isinstance(url, str) or "://" not in url:
        raise SpecError("storage", redact(str(url)), "expected a URL", choices=list(SUPPORTED))
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        rest = url[len("sqlite:///"):]
        if rest in ("", ":memory:"):
            raise SpecError("storage", url, "an in-memory SQLite storage cannot be shared with workers")
        return f"sqlite:///{Path(rest).expanduser().resolve()}"
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if scheme in ("postgresql+psycopg", "postgresql+psycopg2"):
        return url
    raise SpecError("storage", redact(url), f"unsupported storage scheme {scheme!r}", choices=list(SUPPORTED))


def redact(url: str) -> str:
    """Hide a password in a URL (``user:***@host``, ``password=***``) for messages and logs."""
    return _redact(url)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///"):])


def prepare_sqlite(url: str) -> None:
    """Create the SQLite file's folder and switch the file to WAL mode (persistent).

    Only the coordinator calls this, before any worker starts. A folder or file it cannot
    write is refused here in one line (SQLite would only say so at the first write, through
    Optuna's misleading "exceeding max length").
    """
    path = sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InfominError(f"storage {url}: cannot create the folder {path.parent}: {e.strerror}") from None
    _check_writable(url, path)
    con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error as e:
        raise InfominError(f"storage {url}: {describe(e)}") from None
    finally:
        con.close()
    if str(mode).lower() != "wal":  # e.g. a network file system
        raise InfominError(f"storage {url}: could not switch SQLite to WAL mode (got {mode!r}); "
                           "put it on a local disk or use PostgreSQL")


def _check_writable(url: str, path: Path) -> None:
    """SQLite in WAL mode writes the file and creates ``-wal``/``-shm`` files next to it."""
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InfominError(f"storage {url}: the folder {path.parent} is not writable "
                           "(SQLite needs to create files next to the database)")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise InfominError(f"storage {url}: the database file cannot be written (a read-only file or file system)")


def _engine_kwargs(url: str) -> dict[str, Any]:
    if is_sqlite(url):
        return {"pool_pre_ping": True, "connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    if url.startswith("postgresql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {"pool_pre_ping": True}


def open_storage(url: str, *, heartbeat_interval: int | None = HEARTBEAT, grace_period: int | None = GRACE,
                 on_stale: Callable[[Any, Any], None] | None = None, create: bool = False,
                 patience: float = 0.0):
    """Open an Optuna RDB storage with heartbeats.

    Args:
        url: a normalised URL (:func:`normalize_url`).
        heartbeat_interval, grace_period: seconds; ``None`` disables heartbeats.
        on_stale: the storage's ``heartbeat_stale_trial_callback`` (called with
            ``(study, frozen_trial)`` for every trial failed as stale).
        create: the coordinator creates the schema (and WAL mode); workers pass
            ``False`` and then never race to create tables.
        patience: seconds to wait for an unreachable server (a worker replaced during an
            outage); 0 (a coordinator starting, a reader) fails at once.

    Raises :class:`InfominError` with the redacted URL when the server cannot be reached.
    """
    import optuna

    kwargs = _engine_kwargs(url)
    if is_sqlite(url):
        if create:
            prepare_sqlite(url)
        elif not sqlite_path(url).is_file():
            raise InfominError(f"storage {url}: no such database file (the coordinator creates it)")
    elif url.startswith("postgresql"):
        _check_driver(url)

    def _open():
        if not create:
            _check_initialised(url, kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_interval,
                grace_period=grace_period, heartbeat_stale_trial_callback=on_stale,
                skip_table_creation=not create)

    with storage_errors(url):
        return STORAGE.call(_open, what="open the storage", patience=patience)


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn a storage failure into one line naming the storage (redacted) and the real cause.

    An unreachable server reads ``cannot connect: <the driver's message>``; anything else the
    database refused (a read-only file, a missing table) reads ``storage <url>: <cause>``.
    """
    import optuna
    import sqlalchemy.exc

    try:
        yield
    except InfominError as e:
        if e.__cause__ is not None and is_transient(e.__cause__):  # Unavailable: patience spent
            raise InfominError(f"storage {redact(url)}: cannot connect: {describe(e.__cause__)}") from None
        raise
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, sqlite3.Error, OSError) as e:
        if is_transient(e):
            raise InfominError(f"storage {redact(url)}: cannot connect: {describe(e)}") from None
        raise InfominError(f"storage {redact(url)}: {describe(e)}") from None


class StorageNotReady(InfominError):
    """The storage exists but no coordinator has created Optuna's tables in it yet."""


def _check_initialised(url: str, engine_kwargs: dict[str, Any]) -> None:
    """Refuse to open a storage whose schema a coordinator has not finished creating.

    Optuna's RDBStorage stamps its schema version whenever it opens a database, even with
    ``skip_table_creation``: a reader (``study list``, a dashboard, a worker) opening a fresh
    database while the coordinator creates it raced into ``duplicate key ... alembic_version``
    on PostgreSQL. The alembic stamp is the coordinator's last step, so its presence means done.
    """
    import sqlalchemy

    kw = {k: v for k, v in engine_kwargs.items() if k != "pool_pre_ping"}
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, **kw)
    try:
        with engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table("alembic_version"):
                ready = False
            else:
                ready = conn.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version")).scalar() > 0
    finally:
        engine.dispose()
    if not ready:
        raise StorageNotReady(f"storage {redact(url)}: holds no Optuna studies yet "
                              "(`infomin study run` creates them)")


@contextlib.contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Serialise study creation among coordinators: a PostgreSQL advisory lock, or a file lock.

    Several coordinators (``docker compose --scale worker=8``, or one per machine) creating
    the schema and the study at the same moment crash (measured: 4 of 8 on PostgreSQL); the
    first to take the lock creates, the others then find everything in place.
    """
    if is_sqlite(url):
        path = sqlite_path(url)
        lock = Path(f"{path}.lock")
        with contextlib.ExitStack() as stack:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(stores.file_lock(lock))
            except OSError as e:
                raise InfominError(f"storage {url}: the folder {path.parent} is not writable "
                                   f"(cannot create {lock.name}: {e.strerror})") from None
            yield
        return
    import sqlalchemy

    _check_driver(url)
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 10}, poolclass=sqlalchemy.pool.NullPool)
    with storage_errors(url):
        conn = engine.connect()
    try:
        with storage_errors(url):
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
        yield
    finally:
        with contextlib.suppress(Exception):  # a connection lost meanwhile released the lock
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        with contextlib.suppress(Exception):
            conn.close()
        engine.dispose()


_LOCK_KEY = 0x1F05D  # any fixed 64-bit keys, shared by every infomin process
_GATE_KEY = 0x1F05E


class Gate:
    """A cross-process mutex around "is the budget spent? then ask for a trial".

    Without it two workers finishing together both see room for one more trial and both
    start one (measured: 4 trials for a budget of 3 with 2 workers). A file lock next to a
    SQLite database, a PostgreSQL advisory lock on a connection held by the worker otherwise;
    both are released by the operating system or the server if the process dies. A
    PostgreSQL outage drops the connection and with it the lock: :meth:`acquire` then
    reconnects (retried like every storage call) and :meth:`release` never raises.
    """

    def __init__(self, url: str, patience: float | None = None):
        self.url, self.patience = url, patience
        self._held = False
        self._file = None
        self._conn = None
        self._engine = None
        if is_sqlite(url):
            self._file = open(f"{sqlite_path(url)}.gate", "a")  # noqa: SIM115 - held for the worker's life
        elif url.startswith("postgresql"):
            import sqlalchemy

            self._engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 10},
                                                    poolclass=sqlalchemy.pool.NullPool)

    def acquire(self) -> None:
        if self._held:
            return
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_EX)
        elif self._engine is not None:
            STORAGE.call(self._lock_pg, what="take the trial gate", patience=self.patience)
        self._held = True

    def _lock_pg(self) -> None:
        import sqlalchemy

        fresh = self._conn is None
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _GATE_KEY})
            self._conn.commit()
        except Exception:
            self._drop_conn()
            if fresh:
                raise
            self._lock_pg()  # a connection the server dropped during an outage: once more on a new one

    def _drop_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)
        elif self._conn is not None:
            import sqlalchemy

            try:
                self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _GATE_KEY})
                self._conn.commit()
            except Exception:  # noqa: BLE001 - the connection died, and the server released the lock with it
                self._drop_conn()

    def close(self) -> None:
        self.release()
        if self._file is not None:
            self._file.close()
        self._drop_conn()
        if self._engine is not None:
            self._engine.dispose()


def _check_driver(url: str) -> None:
    module = "psycopg2" if "+psycopg2" in url else "psycopg"
    try:
        __import__(module)
    except ImportError:
        pkg = "psycopg2-binary" if module == "psycopg2" else "psycopg[binary]"
        raise InfominError(f"storage {redact(url)}: needs the {module} driver (pip install '{pkg}')") from None


def study_names(url: str) -> list[str]:
    """Names of the studies in a storage (empty when the SQLite file does not exist)."""
    import optuna

    url = normalize_url(url)
    if is_sqlite(url) and not sqlite_path(url).is_file():
        return []
    try:
        storage = open_storage(url, heartbeat_interval=None, grace_period=None)
    except StorageNotReady:
        return []
    with storage_errors(url):
        return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(url: str, name: str, **kwargs: Any):
    """Load an existing Optuna study; :class:`SpecError` with the existing names otherwise."""
    import optuna

    url = normalize_url(url)
    if is_sqlite(url) and not sqlite_path(url).is_file():
        raise InfominError(f"storage {url}: no such database file; run `infomin study run` first "
                           "or pass --storage")
    kwargs.setdefault("heartbeat_interval", None)
    kwargs.setdefault("grace_period", None)
    storage = open_storage(url, **kwargs)
    with storage_errors(url):
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        raise SpecError("study", name, f"no such study in {redact(url)}", choices=names)
