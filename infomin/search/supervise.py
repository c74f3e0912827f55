"""Worker processes that live and die with their coordinator.

Measured in issue 10: killing a coordinator left its workers running unsupervised, its
parent MLflow run RUNNING, and a worker that died was never replaced. Here:

* a worker asks the kernel for ``SIGTERM`` when its coordinator dies (Linux
  ``prctl(PR_SET_PDEATHSIG)``), and a watcher thread checks its parent pid every second
  as a portable fallback (and for the race where the parent died before ``prctl``);
* ``SIGTERM`` and ``SIGINT`` become :class:`Interrupted` (a ``KeyboardInterrupt``, so
  the MLflow run of the trial in flight ends ``KILLED`` with the reason);
* :class:`Supervisor` starts the worker processes, replaces one that dies while trials
  remain (a bounded number of times), and stops them all when the coordinator is
  interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """A signal asked this process to stop; ``reason`` says which and why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_description(code: int | None) -> str:
    """``exit code 1`` or ``killed by SIGKILL`` for a process's ``exitcode``."""
    if code is None:
        return "still running"
    return f"killed by {signal_name(-code)}" if code < 0 else f"exit code {code}"


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> str:
    """Make this process receive ``sig`` when ``parent_pid`` dies; returns how.

    ``prctl(PR_SET_PDEATHSIG)`` on Linux (the kernel signals at once), plus a thread that
    polls ``os.getppid()`` every second everywhere (a reparented process's parent pid
    changes), which also covers a parent that died before ``prctl`` was called.
    """
    how = "parent-pid watch"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
                how = "PR_SET_PDEATHSIG + parent-pid watch"
        except (OSError, AttributeError):  # pragma: no cover - no libc / no prctl
            pass
    watcher = threading.Thread(target=_watch_parent, args=(parent_pid, sig), name="infomin-parent-watch",
                               daemon=True)
    watcher.start()
    return how


def _watch_parent(parent_pid: int, sig: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), sig)


@contextlib.contextmanager
def signals_interrupt(describe: Callable[[int], str] | None = None) -> Iterator[None]:
    """While active, the first ``SIGTERM`` or ``SIGINT`` raises :class:`Interrupted` in the main
    thread; later ones are ignored, so that the clean-up it starts (recording the trial in
    flight, closing runs) is not cut short by a second signal (``kill -9`` still ends it).

    ``describe(signum)`` gives the reason (default: ``"interrupted by SIGTERM"``). Outside
    the main thread this does nothing (signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        ignore_signals()
        raise Interrupted(describe(signum) if describe else f"interrupted by {signal_name(signum)}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def ignore_signals() -> None:
    """From now on this process ignores SIGINT and SIGTERM (while it records an interrupted trial)."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)


@dataclass
class Death:
    """A worker process that ended with a non-zero status."""

    name: str
    pid: int
    exitcode: int | None
    replaced_by: int | None = None

    def __str__(self) -> str:
        what = f"{self.name} (pid {self.pid}) {exit_description(self.exitcode)}"
        if self.replaced_by is not None:
            return f"{what}; replaced by pid {self.replaced_by}"
        return f"{what}; not replaced"


@dataclass
class Supervisor:
    """Run ``target(args)`` in one process per slot; replace a process that dies while work remains.

    Args:
        target: the worker entry point (picklable: a module-level function).
        make_args: ``make_args(slot, incarnation)`` -> the worker's arguments (a new sampler
            seed for each incarnation).
        work_remains: asked when a worker dies; replacing stops once it says no. A worker
            that exits 0 found the budget spent and is not replaced.
        max_replacements: replacements over all slots (a worker that fails at start-up every
            time must not loop forever).
    """

    target: Callable[[Any], None]
    make_args: Callable[[int, int], Any]
    slots: int
    work_remains: Callable[[], bool]
    max_replacements: int = 4
    log: Callable[[str], None] = lambda s: None
    poll_s: float = 0.5
    deaths: list[Death] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._procs: dict[int, Any] = {}
        self._incarnation = [0] * self.slots

    def run(self) -> list[Death]:
        """Start every slot and supervise until all workers have ended; returns the deaths."""
        for slot in range(self.slots):
            self._start(slot)
        while self._procs:
            wait([p.sentinel for p in self._procs.values()], timeout=self.poll_s)
            for slot, p in list(self._procs.items()):
                if p.exitcode is None:
                    continue
                del self._procs[slot]
                if p.exitcode != 0:
                    self._on_death(slot, p)
        return self.deaths

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every live worker (each ends its trial as interrupted), SIGKILL after ``timeout``."""
        procs = [p for p in self._procs.values() if p.exitcode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.exitcode is None:
                p.kill()
                p.join(5)
        self._procs.clear()

    def _start(self, slot: int) -> Any:
        args = self.make_args(slot, self._incarnation[slot])
        p = self._ctx.Process(target=self.target, args=(args,), name=f"infomin-worker-{slot}")
        p.start()
        self._procs[slot] = p
        return p

    def _on_death(self, slot: int, p: Any) -> None:
        death = Death(p.name, p.pid, p.exitcode)
        self.deaths.append(death)
        replaced = sum(d.replaced_by is not None for d in self.deaths)
        if replaced >= self.max_replacements:
            self.log(f"worker {slot} (pid {p.pid}) {exit_description(p.exitcode)}; not replaced: "
                     f"{replaced} replacements already")
            return
        if not self.work_remains():
            self.log(f"worker {slot} (pid {p.pid}) {exit_description(p.exitcode)}; no trials remain")
            return
        self._incarnation[slot] += 1
        new = self._start(slot)
        death.replaced_by = new.pid
        self.log(f"worker {slot} (pid {p.pid}) {exit_description(p.exitcode)}; replaced by pid {new.pid}")
