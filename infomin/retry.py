"""One retry helper for every call infomin makes to the Optuna storage and the MLflow store.

A study outlives its infrastructure only if no single storage call can end it. Measured in
issue 10 (Optuna 5.0, PostgreSQL 15): a 10-second ``pg_ctl stop -m immediate`` killed every
worker, through a ``Connection refused`` in the trial, an exception in Optuna's heartbeat
thread, or an ``UnboundLocalError`` inside ``Study.tell``. So every call goes through
:meth:`Retrier.call`: a transient failure (connection refused or reset, a server shutting
down or starting up, SQLite's ``database is locked``) is retried with exponential backoff
(0.5 s doubling to 5 s) for up to ``patience`` seconds, a permanent one (a read-only
database, a wrong password, a missing table) is raised at once.

Two process-wide retriers, :data:`STORAGE` and :data:`TRACKING`, also keep the health of
their store: an outage is logged once when it starts and once when it ends, and
:meth:`Retrier.healthy_for` tells the stale-trial reaper how long the storage has been
answering. A reaper that just lived through an outage waits until live workers have had
time to send a heartbeat again, so it never fails their trials for the storage's silence.

>>> r = Retrier("demo", first_delay=0.0)
>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise ConnectionRefusedError("connection refused")
...     return "ok"
>>> r.call(flaky, what="a flaky call"), len(calls), r.outages
('ok', 3, 1)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from infomin.errors import InfominError, redact

T = TypeVar("T")

#: Default seconds a call waits for its store to come back before giving up.
PATIENCE_S = 600.0
#: A call that succeeded but took longer than this was stalled (a SQLite write lock): the
#: store counts as unhealthy until then, as for a failure.
STALL_S = 10.0

_PERMANENT = ("authentication failed", "does not exist", "permission denied", "pg_hba.conf",
              "readonly database", "read-only", "unable to open database file", "no such table")
_TRANSIENT_SQLITE = ("locked", "busy", "disk i/o error")
_TRANSIENT_TEXT = ("database is locked", "connection refused", "max retries exceeded",
                   "failed to establish a new connection", "connection aborted", "connection reset",
                   "remote end closed connection", "read timed out", "server closed the connection",
                   "terminating connection", "the database system is", "could not connect to server",
                   "502 server error", "503 server error", "504 server error", "bad gateway",
                   "service unavailable", "gateway timeout")


class Unavailable(InfominError):
    """A store stayed unreachable for longer than the patience (not the user's fault: exit 1)."""

    exit_code = 1


def chain(e: BaseException) -> Iterator[BaseException]:
    """``e`` and its causes (``__cause__``, then ``__context__``), outermost first, each once."""
    seen: set[int] = set()
    c: BaseException | None = e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        yield c
        orig = getattr(c, "orig", None)  # SQLAlchemy keeps the driver's error there
        c = c.__cause__ or (orig if isinstance(orig, BaseException) else None) or c.__context__


def _is_driver_error(e: BaseException, *names: str) -> bool:
    return any(k.__name__ in names and k.__module__.split(".")[0] in ("psycopg", "psycopg2")
               for k in type(e).__mro__)


def is_transient(e: BaseException) -> bool:
    """Whether retrying the call that raised ``e`` may succeed once the store is back.

    >>> is_transient(sqlite3.OperationalError("database is locked"))
    True
    >>> is_transient(sqlite3.OperationalError("attempt to write a readonly database"))
    False
    """
    causes = list(chain(e))
    if any(isinstance(c, Unavailable) for c in causes):
        return False
    text = " | ".join(str(c).lower() for c in causes)
    if any(p in text for p in _PERMANENT):
        return False
    for c in causes:
        if isinstance(c, sqlite3.OperationalError):
            return any(p in str(c).lower() for p in _TRANSIENT_SQLITE)
        if _is_driver_error(c, "OperationalError", "InterfaceError"):
            return True
        if isinstance(c, (ConnectionError, TimeoutError)):
            return True
        if getattr(c, "connection_invalidated", False):
            return True
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy comes with optuna and mlflow
        sa_exc = None
    if sa_exc is not None and any(isinstance(c, (sa_exc.OperationalError, sa_exc.InterfaceError,
                                                 sa_exc.TimeoutError)) for c in causes):
        return True
    return any(p in text for p in _TRANSIENT_TEXT)


def _is_root_cause(e: BaseException) -> bool:
    """A driver's or the operating system's own error (what actually went wrong)."""
    return (isinstance(e, (sqlite3.Error, OSError))
            or type(e).__module__.split(".")[0] in ("psycopg", "psycopg2", "requests", "urllib3"))


def describe(e: BaseException) -> str:
    """The real cause of ``e`` in one line, secrets redacted (the driver's message, not a wrapper's).

    Optuna wraps every database error in ``StorageInternalError("... e.g. exceeding max
    length")``, which names no cause; the driver's exception further down the chain does.
    """
    causes = [c for c in chain(e) if str(c).strip() not in ("", "()")]
    inner = next((c for c in causes if _is_root_cause(c)), causes[-1] if causes else e)
    lines = [ln.strip() for ln in str(inner).strip().splitlines() if ln.strip()]
    first = lines[0] if lines else type(inner).__name__
    if first.startswith("(") and ")" in first:  # SQLAlchemy's "(psycopg.OperationalError) ..." prefix
        first = first.split(")", 1)[1].strip() or first
    return redact(first)


class Retrier:
    """Retries transient failures of one store and keeps that store's health (thread-safe).

    Args:
        name: the store, in messages (``"storage"``, ``"tracking store"``).
        patience: default seconds a call keeps retrying after its first failure.
        first_delay, max_delay: the backoff between attempts (doubling).
    """

    def __init__(self, name: str, patience: float = PATIENCE_S, first_delay: float = 0.5,
                 max_delay: float = 5.0):
        self.name, self.patience = name, patience
        self.first_delay, self.max_delay = first_delay, max_delay
        self.log: Callable[[str], None] | None = None
        self.outages = 0
        self.longest_outage_s = 0.0
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._healthy_since = time.monotonic()
        self._last_cause = ""

    def call(self, fn: Callable[..., T], *args: Any, what: str, patience: float | None = None,
             transient: Callable[[BaseException], bool] | None = None, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried while it fails transiently, for up to ``patience`` s.

        ``what`` names the call in messages; ``transient`` widens what counts as transient
        for this call. Raises :class:`Unavailable` (chained to the last error) when the
        patience is spent, and a permanent error at once.
        """
        patience = self.patience if patience is None else patience
        deadline: float | None = None
        delay = self.first_delay
        while True:
            started = time.monotonic()
            try:
                out = fn(*args, **kwargs)
            except Exception as e:
                if not (is_transient(e) or (transient is not None and transient(e))):
                    raise
                now = time.monotonic()
                self._failed(now, e, what, patience)
                deadline = now + patience if deadline is None else deadline
                if now >= deadline:
                    raise Unavailable(f"{self.name} unreachable for {patience:.0f} s ({what}): "
                                      f"{describe(e)}") from e
                time.sleep(max(0.0, min(delay, deadline - now)))
                delay = min(max(delay, 0.05) * 2, self.max_delay)
                continue
            self._succeeded(started)
            return out

    def healthy_for(self) -> float:
        """Seconds since this process last saw the store fail or stall (0 while it fails)."""
        with self._lock:
            if self._failing_since is not None:
                return 0.0
            return time.monotonic() - self._healthy_since

    def _failed(self, now: float, e: BaseException, what: str, patience: float) -> None:
        with self._lock:
            starting = self._failing_since is None
            if starting:
                self._failing_since = now
            self._last_cause = describe(e)
        if starting and self.log is not None:
            self.log(f"{self.name} unreachable ({what}: {self._last_cause}); retrying")

    def _succeeded(self, started: float) -> None:
        now = time.monotonic()
        with self._lock:
            ended = self._failing_since
            self._failing_since = None
            if ended is not None:
                self.outages += 1
                self.longest_outage_s = max(self.longest_outage_s, now - ended)
                self._healthy_since = now
            elif now - started > STALL_S:
                self._healthy_since = now
        if ended is not None and self.log is not None:
            self.log(f"{self.name} back after {now - ended:.0f} s")


#: The Optuna storage (every process has its own view of its health).
STORAGE = Retrier("storage")
#: The MLflow tracking store.
TRACKING = Retrier("tracking store")


def set_log(log: Callable[[str], None] | None) -> None:
    """Where both retriers report outages (one line when one starts, one when it ends)."""
    STORAGE.log = TRACKING.log = log
