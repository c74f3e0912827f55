"""``infomin study run|list|show|report``: Optuna studies over view generators.

Each command parses, validates and calls :mod:`infomin.search` (docs/architecture.md).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infomin.cli._common import user_errors

console = Console()

STORAGE_HELP = ("Optuna storage URL (default: $INFOMIN_STORAGE, else sqlite:///optuna.db next to the MLflow "
                "store); postgresql://user@host:5432/db joins one study from many machines")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else str(v)
    return str(v)


def _params(p: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


VERBOSE_HELP = "print the traceback of an unexpected error (workers too)"


def run(study: str = typer.Argument(..., help="a study file (studies/color_spaces.py) or name (color_spaces)"),
        n_trials: int = typer.Option(None, "--n-trials", "-n", help="total trials (default: STUDY.n_trials)"),
        workers: int = typer.Option(1, "--workers", "-w", help="worker processes on this machine"),
        repeats: int = typer.Option(None, "--repeats", "-r", help="seeds per candidate (default: STUDY.repeats); "
                                    "the report gives intervals over them"),
        storage: str = typer.Option(None, "--storage", help=STORAGE_HELP),
        study_name: str = typer.Option(None, "--study-name", help="default: the module's file name"),
        out: Path = typer.Option(None, "--out", help="study folder (default infomin-out/<name>)"),
        heartbeat: int = typer.Option(10, "--heartbeat", help="seconds between a worker's heartbeats"),
        grace: int = typer.Option(40, "--grace", help="seconds without heartbeat before a trial is failed and retried"),
        patience: float = typer.Option(600, "--patience", help="seconds to wait for an unreachable storage or "
                                       "MLflow store before giving up (the study pauses meanwhile)"),
        report: bool = typer.Option(True, "--report/--no-report", help="write the sweet-spot report at the end"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)):
    """Create or continue a study and run it with W worker processes (Ctrl-C stops; re-run to continue)."""
    from infomin.search.runner import StudyIncomplete, run_study

    with user_errors(verbose):
        try:
            res = run_study(study, n_trials=n_trials, workers=workers, storage=storage, study_name=study_name,
                            out=out, heartbeat_interval=heartbeat, grace_period=grace, patience=patience,
                            verbose=verbose, repeats=repeats, log=_log)
        except StudyIncomplete as e:
            _print_summary(e.result)
            raise
        _print_summary(res)
        if report:
            _print_report(res.name, res.storage_url, res.out / "report")
        _print_browse(res.storage_url, res.tracking_uri)


def _log(line: str) -> None:
    from rich.markup import escape

    from infomin.errors import redact

    console.print(f"[dim]{escape(redact(line))}[/]", highlight=False, soft_wrap=True)


def _print_summary(res: Any) -> None:
    """Counts, the best trial, and what went wrong on the way (each said once, as it happened)."""
    c, o = res.counts, res.outcomes
    ran = sum(c.get(k, 0) for k in ("COMPLETE", "PRUNED", "FAIL"))
    retried = f"; {res.superseded} carried on by a retry" if res.superseded else ""
    console.print(f"study [bold]{res.name}[/]: {res.counted} of {res.n_trials} trials done "
                  f"({o.get('COMPLETE', 0)} complete, {o.get('PRUNED', 0)} pruned, {o.get('FAIL', 0)} failed{retried}) "
                  f"in {res.wall_s:.1f} s ({60 * ran / max(res.wall_s, 1e-9):.2f} trials/min)", soft_wrap=True)
    if res.best_trial is not None:
        console.print(f"best: trial {res.best_trial}, value {res.best_value:.4f}, {_params(res.best_params or {})}")
    for d in res.deaths:
        console.print(f"[yellow]warning:[/] {d}")
    for number, reason in res.retried:
        console.print(f"[yellow]warning:[/] trial {number}: {reason}", soft_wrap=True)
    if res.storage_outages:
        console.print(f"[yellow]warning:[/] the storage was unreachable {res.storage_outages} time(s), "
                      f"the longest for {res.longest_outage_s:.0f} s; the study waited")


def list_(storage: str = typer.Option(None, "--storage", help=STORAGE_HELP),
          verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)):
    """List the studies in a storage."""
    import optuna

    from infomin.search import storage as st

    with user_errors(verbose):
        url = st.normalize_url(storage or st.default_storage_url())
        with st.storage_errors(url):
            try:   # one storage for the whole listing: each opening checks the schema (about 0.5 s)
                rdb = (None if st.is_sqlite(url) and not Path(url[len("sqlite:///"):]).is_file()
                       else st.open_storage(url, heartbeat_interval=None, grace_period=None))
            except st.StorageNotReady:
                rdb = None
            summaries = optuna.get_all_study_summaries(rdb) if rdb is not None else []
        if not summaries:
            console.print(f"no studies in {st.redact(url)}")
            return
        table = Table(title=f"studies in {st.redact(url)}")
        for col in ("study", "trials", "complete", "pruned", "failed", "direction", "best value", "started"):
            table.add_column(col)
        for s in summaries:
            study = optuna.load_study(study_name=s.study_name, storage=rdb)
            states = [t.state.name for t in study.get_trials(deepcopy=False)]
            best = s.best_trial.value if s.best_trial is not None else None
            table.add_row(s.study_name, str(s.n_trials), str(states.count("COMPLETE")), str(states.count("PRUNED")),
                          str(states.count("FAIL")), s.direction.name.lower(), _fmt(best),
                          s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else "")
        console.print(table)


def show(name: str = typer.Argument(..., help="study name"),
         storage: str = typer.Option(None, "--storage", help=STORAGE_HELP),
         verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)):
    """Print a study's trials: state, value, parameters, I_NCE, duration, failure reason, MLflow run."""
    from infomin.search import storage as st
    from infomin.search.trials import fail_reason, trial_run_id

    with user_errors(verbose):
        study = st.load_study(storage or st.default_storage_url(), name)
        q = study.user_attrs.get("infomin.question")
        table = Table(title=f"study {name}" + (f": {q}" if q else ""))
        for col in ("trial", "state", "value", "params", "I_NCE", "log K", "seconds", "reason", "mlflow run"):
            table.add_column(col, overflow="fold")
        for t in study.get_trials(deepcopy=False):
            m = t.user_attrs.get("metrics") or {}
            secs = t.duration.total_seconds() if t.duration is not None else None
            table.add_row(str(t.number), t.state.name, _fmt(t.value), _params(t.params), _fmt(m.get("mi/nce"), 3),
                          _fmt(m.get("mi/log_k"), 3), _fmt(secs, 1), fail_reason(study, t) or "",
                          trial_run_id(study, t) or "")
        console.print(table)


def report(name: str = typer.Argument(..., help="study name"),
           storage: str = typer.Option(None, "--storage", help=STORAGE_HELP),
           out: Path = typer.Option(None, "--out", help="folder (default infomin-out/<name>/report)"),
           log: bool = typer.Option(True, "--log/--no-log", help="log the report to the study's parent MLflow run"),
           verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)):
    """The sweet-spot report: trials table, accuracy vs I_NCE with the fitted reverse U, Optuna plots, best view."""
    from infomin.search import storage as st

    with user_errors(verbose):
        url = st.normalize_url(storage or st.default_storage_url())
        _print_report(name, url, out or Path("infomin-out") / name / "report", log=log)


def _print_report(name: str, url: str, out: Path, *, log: bool = True) -> None:
    from infomin.search import storage as st
    from infomin.search.report import make_report

    study = st.load_study(url, name)
    print_report(make_report(study, out, log=log), out)


def print_report(rep: Any, out: Path, *, to: Console | None = None) -> None:
    """Print a :class:`~infomin.search.report.Report`: the ranked table, what was tested, the sweet
    spot, warnings, the legend and where the files are (on ``to``, default the CLI's console)."""
    from infomin.search.report import fmt_diff, fmt_interval, fmt_mean_sd, fmt_p

    con = to or console
    name = rep.name
    n_lo, n_hi = rep.seed_counts
    seeds = "1 seed each" if n_hi <= 1 else (f"{n_lo} seeds each" if n_lo == n_hi else f"{n_lo}-{n_hi} seeds each")
    lv = f"{100 * rep.level:.0f}%"
    table = Table(title=f"study {name}: {rep.metric} of {len(rep.candidates)} candidates, {seeds}, best first",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    varied = n_lo != n_hi     # the seed count gets a column only when it differs between candidates
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("candidate", overflow="fold", min_width=10)
    if varied:
        table.add_column("seeds", justify="right", no_wrap=True)
    narrow = con.width < 100   # the interval goes under the mean instead of in its own column
    table.add_column(("mean ± sd" + (f"\n[{lv} CI]" if narrow else "")) if n_hi > 1 else "value",
                     justify="right", no_wrap=True)
    if n_hi > 1 and not narrow:
        table.add_column(f"{lv} CI", justify="right", no_wrap=True)
    table.add_column("probe", justify="right", no_wrap=True)
    table.add_column("I_NCE", justify="right", no_wrap=True)
    if n_hi > 1:
        table.add_column(f"Δ best [{lv}]", justify="right", no_wrap=True)
        table.add_column("p", justify="right", no_wrap=True)
        table.add_column("vs best", no_wrap=True)
    style = {"best": "bold green", "≈ best": "green", "worse": "dim", "untested": "yellow"}
    for s in rep.candidates:
        cells = [str(s.candidate.number), s.candidate.label] + ([str(s.metric.n)] if varied else [])
        if n_hi > 1 and narrow:
            cells.append(f"{fmt_mean_sd(s.metric, 3)}\n{fmt_interval(s.metric.ci, 3)}")
        else:
            cells += [fmt_mean_sd(s.metric, 3)] + ([fmt_interval(s.metric.ci, 3)] if n_hi > 1 else [])
        cells += ["" if s.metric.probe_se is None else f"±{s.metric.probe_se:.3f}",
                  "" if s.i_nce is None else _fmt(s.i_nce.mean, 3)]
        if n_hi > 1:
            cells += [fmt_diff(s.comparison, 3).replace(" [", "\n["),   # the interval under the difference
                      fmt_p(s.comparison), f"[{style[s.verdict]}]{escape(s.verdict)}[/]"]
        table.add_row(*cells)
    con.print(table)
    for note in rep.notes:
        con.print(note, markup=False, highlight=False)
    head, _, rest = rep.sweet_spot_text.partition(":")
    con.print(f"[bold]{escape(head)}[/]:{escape(rest)}", highlight=False)
    for w in rep.warnings:
        con.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    con.print("[dim]how to read this:[/]")
    for line in rep.legend:
        con.print(f"[dim]  - {escape(line)}[/]", highlight=False)
    con.print(f"report: {out}/ ({', '.join(sorted(p.name for p in rep.files.values()))})"
                  + (f"; logged to MLflow run {rep.logged_to}" if rep.logged_to else ""))
    if "best_views" in rep.files:
        con.print(f"best view: infomin train --views {rep.files['best_views']}", highlight=False,
                  soft_wrap=True)   # a command: never broken across lines


def _print_browse(url: str, tracking_uri: str) -> None:
    """How to browse the study (``infomin ui``); a URL holding a password is read from its environment variable."""
    from infomin.stores import browse_command

    console.print(f"browse: {browse_command(tracking_uri, url)}   (the MLflow UI and optuna-dashboard; "
                  "Ctrl-C stops both)", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Optuna studies over view generators: run, list, show, report.", no_args_is_help=True)
    group.command("run")(run)
    group.command("list")(list_)
    group.command("show")(show)
    group.command("report")(report)
    app.add_typer(group, name="study")
