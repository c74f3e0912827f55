"""The retry helper against real failures: a PostgreSQL server that is not there, a locked
SQLite file, a read-only one; the outage bookkeeping the reaper relies on."""

from __future__ import annotations

import sqlite3
import threading
import time

import optuna
import pytest
import sqlalchemy
from helpers import free_port

from infomin.errors import has_secret, redact
from infomin.retry import Retrier, Unavailable, describe, is_transient


def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError("expected an exception")


def test_a_refused_postgresql_connection_is_transient_and_named(tmp_path):
    url = f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/db"
    storage_error = _raised(lambda: optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"connect_timeout": 2}}))
    assert is_transient(storage_error)
    assert "Connection refused" in describe(storage_error) or "connection" in describe(storage_error).lower()
    assert "exceeding max length" not in describe(storage_error), "the real cause, not Optuna's wrapper"
    assert "secret" not in describe(storage_error)


def test_sqlite_locked_is_transient_readonly_is_not(tmp_path):
    path = tmp_path / "a.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    with engine.connect() as conn:
        locked = _raised(lambda: (conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)")), conn.commit()))
    holder.execute("ROLLBACK")
    assert is_transient(locked) and describe(locked) == "database is locked"
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    readonly = _raised(lambda: ro.execute("INSERT INTO t VALUES (1)"))
    assert not is_transient(readonly) and "readonly" in describe(readonly)
    assert not is_transient(ValueError("a bug"))


def test_retrier_waits_out_an_outage_and_reports_it_once():
    lines: list[str] = []
    r = Retrier("storage", first_delay=0.01, max_delay=0.05)
    r.log = lines.append
    up_at = time.monotonic() + 0.4

    def call():
        if time.monotonic() < up_at:
            raise ConnectionRefusedError("connection refused")
        return 42

    assert r.healthy_for() >= 0
    assert r.call(call, what="a read") == 42
    assert r.outages == 1 and 0.3 < r.longest_outage_s < 2
    assert len(lines) == 2 and "storage unreachable (a read: connection refused)" in lines[0]
    assert lines[1].startswith("storage back after")
    assert r.healthy_for() < 0.5, "the health clock restarts when an outage ends"


def test_retrier_gives_up_after_its_patience_and_raises_permanent_errors_at_once():
    r = Retrier("storage", first_delay=0.01, max_delay=0.02)
    t0 = time.monotonic()
    with pytest.raises(Unavailable, match=r"storage unreachable for 0 s \(a write\): refused") as info:
        r.call(lambda: (_ for _ in ()).throw(ConnectionRefusedError("refused")), what="a write", patience=0.2)
    assert 0.15 < time.monotonic() - t0 < 2 and info.value.exit_code == 1
    calls = []
    with pytest.raises(ValueError):
        r.call(lambda: calls.append(1) or (_ for _ in ()).throw(ValueError("bad")), what="x")
    assert calls == [1], "a permanent error is not retried"


def test_healthy_for_is_zero_while_another_thread_sees_the_store_fail():
    r = Retrier("storage", first_delay=0.05, max_delay=0.05)
    stop = threading.Event()

    def failing():
        if not stop.is_set():
            raise ConnectionResetError("reset")

    t = threading.Thread(target=r.call, args=(failing,), kwargs={"what": "heartbeat", "patience": 5})
    t.start()
    time.sleep(0.2)
    assert r.healthy_for() == 0.0
    stop.set()
    t.join(5)
    assert r.healthy_for() < 1.0


def test_redact_hides_passwords_in_urls_and_messages():
    text = ("tracking postgresql+psycopg://mlflow:pa:ss@db/mlflow, http://u:tok@h:5000/x "
            "and postgresql://h/db?user=a&password=hunter2")
    out = redact(text)
    assert "pa:ss" not in out and "tok" not in out and "hunter2" not in out
    assert "mlflow:***@db" in out and "u:***@h:5000" in out and "password=***" in out
    assert has_secret(text) and not has_secret(out) and not has_secret("sqlite:////tmp/x.db")
