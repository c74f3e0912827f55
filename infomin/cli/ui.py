"""``infomin ui``: the MLflow UI and optuna-dashboard on 127.0.0.1, started and stopped together."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console

from infomin.cli._common import user_errors

out = Console(highlight=False, soft_wrap=True)   # URLs and commands must never be wrapped


def _raise_interrupt(signum, frame):  # SIGTERM / SIGHUP: stop the servers as Ctrl-C does
    raise KeyboardInterrupt


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]).expanduser() if url.startswith("sqlite:///") else None


def ui(
    tracking_uri: str = typer.Option(None, "--tracking-uri",
                                     help="MLflow store (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db); "
                                     "an http(s):// tracking server is linked to, not started."),
    storage: str = typer.Option(None, "--storage", help="Optuna storage (default $INFOMIN_STORAGE, else "
                                "optuna.db next to a SQLite MLflow store)."),
    mlflow_port: int = typer.Option(5000, "--mlflow-port", help="Port of the MLflow UI on 127.0.0.1."),
    dashboard_port: int = typer.Option(8080, "--dashboard-port", help="Port of optuna-dashboard on 127.0.0.1."),
    dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="Start optuna-dashboard too."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the servers to answer."),
) -> None:
    """Start the MLflow UI and optuna-dashboard on 127.0.0.1, print their URLs; Ctrl-C stops both."""
    from infomin import stores
    from infomin import ui as U
    from infomin.errors import InfominError

    with user_errors():
        uri = stores.tracking_uri(tracking_uri)
        storage_url = storage or stores.default_storage_url(uri)
        servers: list[U.Server] = []
        mlflow_base = None
        log_dir = Path(tempfile.mkdtemp(prefix="infomin-ui-"))
        notes = []
        if uri.startswith(("http://", "https://")):
            mlflow_base = uri.rstrip("/")
            notes.append(f"MLflow tracking server {mlflow_base}: linked to, not started")
        elif (p := _sqlite_path(uri)) is not None and not p.is_file():
            notes.append(f"no MLflow store at {p}: MLflow UI not started")
        else:
            U.check_port(mlflow_port, "--mlflow-port")
            servers.append(U.mlflow_server(uri, port=mlflow_port, log_dir=log_dir))
        if dashboard:
            if (p := _sqlite_path(storage_url)) is not None and not p.is_file():
                notes.append(f"no Optuna storage at {p}: optuna-dashboard not started")
            else:
                U.check_port(dashboard_port, "--dashboard-port")
                servers.append(U.dashboard_server(storage_url, port=dashboard_port, log_dir=log_dir))
        for n in notes:
            out.print(f"[yellow]note:[/] {n}")
        if not servers and mlflow_base is None:
            raise InfominError("nothing to browse: run `infomin study run` (or `make demo`) first, "
                               "or pass --tracking-uri / --storage")
        old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
        clean = False
        try:
            if servers:
                names = " and ".join(s.name for s in servers)
                out.print(f"starting {names} on 127.0.0.1; this may take a while (the MLflow UI took 20-45 s "
                          "to answer on 2 busy cores) ... Ctrl-C stops them")
                U.start_all(servers)
                with out.status("waiting") as status:
                    U.wait_ready(servers, timeout=timeout, on_tick=lambda t, pending: status.update(
                        f"waiting for {', '.join(pending)} ({t:.0f} s)"))
            _print_links(U, servers, mlflow_base)
            if not servers:
                clean = True
                return
            out.print("[bold]ready[/]; Ctrl-C stops " + ("both" if len(servers) == 2 else "it"))
            while all(s.alive() for s in servers):
                time.sleep(0.5)
            dead = next(s for s in servers if not s.alive())
            raise InfominError(f"{dead.name} stopped (exit code {dead.proc.returncode}); the end of its log "
                               f"({dead.log_path}):\n{dead.log_tail()}")
        except KeyboardInterrupt:
            out.print("stopping ...")
            clean = True
        finally:
            U.stop_all(servers)
            for s, handler in old.items():
                signal.signal(s, handler)
            if clean:
                shutil.rmtree(log_dir, ignore_errors=True)
        if servers:
            out.print("stopped " + " and ".join(s.name for s in servers))


def _print_links(U, servers, mlflow_base: str | None) -> None:  # noqa: N803 - the ui module
    by_name = {s.name: s for s in servers}
    mlflow = by_name.get("MLflow UI")
    base = mlflow.url if mlflow is not None else mlflow_base
    dash = by_name.get("optuna-dashboard")
    experiments, studies = [], []
    if base is not None:
        out.print(f"MLflow UI         {U.experiments_url(base)}")
        with contextlib.suppress(Exception):   # a remote server may need credentials: the list link stands
            experiments = U.experiment_links(base)
        if experiments:
            out.print("                  [dim](open an experiment from its runs link below: from the list, MLflow "
                      "3.17 opens experiments on its GenAI pages unless its switch says Model training)[/]")
    if dash is not None:
        out.print(f"optuna-dashboard  {U.dashboard_url(dash.url)}")
        with contextlib.suppress(Exception):   # the dashboard's own page lists the studies too
            studies = U.study_links(dash.url)
    study_by_name = {s.name: s for s in studies}
    width = max([len(x.name) for x in experiments + studies] + [8])
    for e in experiments:
        out.print(f"  {e.name:<{width}}  runs:  {e.url}")
        if e.name in study_by_name:
            out.print(f"  {'':<{width}}  study: {study_by_name.pop(e.name).url}")
    for s in study_by_name.values():
        out.print(f"  {s.name:<{width}}  study: {s.url}")


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
