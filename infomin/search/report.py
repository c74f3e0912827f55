"""The sweet-spot report: accuracy against I_NCE, the reverse U, and what to trust in it.

"The optimal views ... share only the information necessary for the downstream task;
... transfer performance follows a reverse-U shape as a function of I(v1; v2)."
(Tian et al. 2020, *What Makes for Good Views for Contrastive Learning?*, arXiv 2005.10243)

For every completed trial the report tabulates I_NCE = log K - L_NCE (and log K: the
bound never exceeds it, van den Oord et al. 2018, arXiv 1807.03748), the probe accuracy,
alignment and uniformity (Wang & Isola 2020, arXiv 2005.10242) and tolerance (Wang & Liu
2021, arXiv 2012.09740), fits a quadratic ``acc = a I^2 + b I + c`` by least squares
and places the sweet spot at the fit's maximum inside the observed I_NCE range. It warns
when the I_NCE values are not comparable (trials differ in K, tau or encoder) or when the
bound is saturated (I_NCE near log K for many trials: then it under-reports the MI and
the x axis is compressed).

Writes ``table.csv``, ``report.md``, ``sweet_spot.png``, ``history.png``,
``importances.png`` and ``best_views.yaml`` (ready for ``infomin train --views``) to the
report folder and logs them to the study's parent MLflow run.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: An I_NCE within this fraction of log K counts as saturated.
SATURATION = 0.9
#: Warn when more than this share of the trials is saturated.
SATURATED_SHARE = 0.5
MIN_FIT_POINTS = 4
COLUMNS = ("trial", "state", "params", "mi/nce", "mi/log_k", "accuracy", "eval/alignment",
           "eval/uniformity", "eval/tolerance")


@dataclass(frozen=True)
class SweetSpot:
    """The fitted reverse U: ``accuracy ~ a * i_nce**2 + b * i_nce + c`` over ``[low, high]``.

    ``i_nce``/``accuracy`` locate the fit's maximum in the data range; ``interior`` is False
    when it sits at an end of the range (the curve is monotone there: widen the search).
    ``coef`` is ``(a, b, c)``, ``r2`` the fit's coefficient of determination.
    """

    i_nce: float
    accuracy: float
    coef: tuple[float, float, float]
    low: float
    high: float
    interior: bool
    r2: float
    n: int

    def predict(self, x: Any) -> np.ndarray:
        return np.polyval(np.asarray(self.coef), np.asarray(x, dtype=float))


def fit_sweet_spot(i_nce: Sequence[float], accuracy: Sequence[float]) -> SweetSpot | None:
    """Least-squares quadratic fit of accuracy against I_NCE and its maximum within the data.

    Returns ``None`` with fewer than :data:`MIN_FIT_POINTS` finite points or fewer than 3
    distinct I_NCE values (a parabola through 3 points is no evidence of a reverse U).

    >>> x = [0.5, 1.0, 1.5, 2.0, 2.5]
    >>> y = [0.8 - (v - 1.5) ** 2 for v in x]
    >>> s = fit_sweet_spot(x, y)
    >>> round(s.i_nce, 6), round(s.accuracy, 6), s.interior
    (1.5, 0.8, True)
    """
    x = np.asarray(i_nce, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < MIN_FIT_POINTS or np.unique(np.round(x, 9)).size < 3:
        return None
    a, b, c = np.polyfit(x, y, 2)
    low, high = float(x.min()), float(x.max())
    # The maximum of a parabola on [low, high]: the vertex when it opens downwards and lies
    # inside, else the better end point.
    if a < 0 and low < -b / (2 * a) < high:
        x_star, interior = float(-b / (2 * a)), True
    else:
        ends = np.array([low, high])
        x_star, interior = float(ends[np.argmax(np.polyval([a, b, c], ends))]), False
    resid = y - np.polyval([a, b, c], x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return SweetSpot(i_nce=x_star, accuracy=float(np.polyval([a, b, c], x_star)),
                     coef=(float(a), float(b), float(c)), low=low, high=high, interior=interior,
                     r2=r2, n=int(x.size))


def comparability_warnings(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Warnings for I_NCE values that cannot be compared or are saturated.

    ``rows`` hold ``mi/k``, ``mi/nce``, ``mi/log_k``, ``temperature`` and ``encoder``
    (missing keys are ignored).
    """
    out = []
    for key, label in (("mi/k", "K (candidates per anchor)"), ("temperature", "tau (temperature)"),
                       ("encoder", "encoder")):
        values = sorted({_fmt(r[key]) for r in rows if r.get(key) is not None})
        if len(values) > 1:
            out.append(f"trials differ in {label}: {', '.join(values)}; I_NCE is only comparable at fixed "
                       "K, tau and encoder, so the reverse U mixes different bounds")
    sat = [r for r in rows if _finite(r.get("mi/nce")) and _finite(r.get("mi/log_k")) and r["mi/log_k"] > 0
           and r["mi/nce"] >= SATURATION * r["mi/log_k"]]
    if rows and sat and len(sat) > SATURATED_SHARE * len(rows):
        out.append(f"I_NCE is within {100 * (1 - SATURATION):.0f}% of log K in {len(sat)} of {len(rows)} trials: "
                   "the bound is saturated and under-reports the mutual information; raise K (the batch size) "
                   "before reading the sweet spot")
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# -- from an Optuna study --------------------------------------------------------------------

def trial_rows(optuna_study: Any, metric: str = "eval/linear_acc", *, states: Sequence[str] = ("COMPLETE",)) -> list[dict[str, Any]]:
    """One flat dict per trial in ``states``: number, state, params, metrics, tau, encoder."""
    from infomin.search.trials import fail_reason, trial_run_id

    rows = []
    for t in optuna_study.get_trials(deepcopy=False):
        if t.state.name not in states:
            continue
        m = t.user_attrs.get("metrics") or {}
        train = t.user_attrs.get("train") or {}
        rows.append({
            "trial": t.number, "state": t.state.name, "params": dict(t.params),
            "value": t.value, "accuracy": m.get(metric, t.value),
            **{k: m.get(k) for k in ("mi/nce", "mi/log_k", "mi/k", "eval/alignment", "eval/uniformity",
                                      "eval/tolerance", "eval/knn_acc")},
            "temperature": train.get("temperature"), "encoder": train.get("encoder"),
            "mlflow_run_id": trial_run_id(optuna_study, t), "fail_reason": fail_reason(optuna_study, t),
            "views": t.user_attrs.get("views"),
        })
    return rows


@dataclass
class Report:
    """The report's content and where its files went."""

    name: str
    rows: list[dict[str, Any]]
    sweet_spot: SweetSpot | None
    warnings: list[str]
    best_trial: int | None
    best_value: float | None
    files: dict[str, Path] = field(default_factory=dict)
    logged_to: str | None = None
    question: str = ""
    fixed: dict[str, str] = field(default_factory=dict)


def make_report(optuna_study: Any, out: str | Path, *, metric: str | None = None, log: bool = True) -> Report:
    """Write the table, plots and best-view preset of ``optuna_study`` to ``out`` (and its parent run)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metric = metric or optuna_study.user_attrs.get("infomin.metric", "eval/linear_acc")
    rows = trial_rows(optuna_study, metric)
    warns = comparability_warnings(rows)
    pts = [(r["mi/nce"], r["accuracy"]) for r in rows if _finite(r.get("mi/nce")) and _finite(r.get("accuracy"))]
    spot = fit_sweet_spot([p[0] for p in pts], [p[1] for p in pts])
    if spot is None:
        warns.append(f"{len(pts)} trial(s) with both I_NCE and {metric}: too few for a fit "
                     f"(need {MIN_FIT_POINTS} with 3 distinct I_NCE values); the best trial stands in")
    elif not spot.interior:
        warns.append(f"no interior maximum: {metric} is monotone in I_NCE over [{spot.low:.3f}, {spot.high:.3f}] "
                     "nats; widen the search to see the reverse U")
    best_trial = best_value = None
    try:
        bt = optuna_study.best_trial
        best_trial, best_value = bt.number, bt.value
    except ValueError:
        pass
    files: dict[str, Path] = {}
    files["table"] = _write_csv(rows, out / "table.csv")
    files["sweet_spot"] = _plot_sweet_spot(pts, spot, rows, metric, out / "sweet_spot.png")
    for key, fn in (("history", "plot_optimization_history"), ("importances", "plot_param_importances")):
        path, problem = _optuna_plot(optuna_study, fn, out / f"{key}.png")
        if path is not None:
            files[key] = path
        elif problem:
            warns.append(f"{key} plot skipped: {problem}")
    if best_trial is not None:
        bt = optuna_study.trials[best_trial]
        if bt.user_attrs.get("views"):
            from infomin.views.spec import dump_spec

            path = out / "best_views.yaml"
            dump_spec(bt.user_attrs["views"], path,
                      comment=f"best view of study {optuna_study.study_name}: trial {best_trial}, "
                              f"{metric} = {best_value:.4f}\nuse: infomin train --views {path}")
            files["best_views"] = path
    report = Report(name=optuna_study.study_name, rows=rows, sweet_spot=spot, warnings=warns,
                    best_trial=best_trial, best_value=best_value, files=files,
                    question=optuna_study.user_attrs.get("infomin.question", ""),
                    fixed=dict(optuna_study.user_attrs.get("infomin.fixed") or {}))
    files["markdown"] = _write_markdown(report, metric, out / "report.md")
    if log:
        report.logged_to = _log_to_parent(optuna_study, report, out)
    return report


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r["trial"], r["state"], " ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items()),
                        *(r.get(k) for k in COLUMNS[3:])])
    return path


def _write_markdown(report: Report, metric: str, path: Path) -> Path:
    lines = [f"# Study `{report.name}`: sweet-spot report", ""]
    if report.question:
        lines += [f"Question: {report.question}", ""]
    if report.fixed:
        lines += ["Held fixed: " + ", ".join(f"{k} = {v}" for k, v in report.fixed.items()), ""]
    s = report.sweet_spot
    if s is not None:
        lines += [f"Sweet spot: I_NCE = {s.i_nce:.3f} nats, fitted {metric} = {s.accuracy:.4f} "
                  f"({'interior maximum' if s.interior else 'at the end of the range'}; quadratic fit on "
                  f"{s.n} trials, R^2 = {s.r2:.2f}).", ""]
    if report.best_trial is not None:
        lines += [f"Best trial: {report.best_trial} ({metric} = {report.best_value:.4f}).", ""]
    for w in report.warnings:
        lines.append(f"> **Warning:** {w}")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in report.rows:
        cells = [str(r["trial"]), r["state"], " ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items())]
        cells += ["" if r.get(k) is None else f"{r[k]:.4f}" for k in COLUMNS[3:]]
        lines.append("| " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")
    return path


def _plot_sweet_spot(pts, spot: SweetSpot | None, rows, metric: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    if pts:
        x, y = np.array(pts).T
        ax.scatter(x, y, color="tab:blue", zorder=3, label="trials")
    if spot is not None:
        grid = np.linspace(spot.low, spot.high, 200)
        ax.plot(grid, spot.predict(grid), color="tab:orange", label=f"quadratic fit (R$^2$={spot.r2:.2f})")
        ax.axvline(spot.i_nce, color="tab:red", ls="--", lw=1)
        ax.scatter([spot.i_nce], [spot.accuracy], marker="*", s=180, color="tab:red", zorder=4,
                   label=f"sweet spot: I_NCE={spot.i_nce:.2f}")
    log_ks = sorted({r["mi/log_k"] for r in rows if _finite(r.get("mi/log_k"))})
    if len(log_ks) == 1:
        ax.axvline(log_ks[0], color="gray", ls=":", lw=1, label=f"log K = {log_ks[0]:.2f} (ceiling)")
    ax.set_xlabel("I_NCE = log K - L_NCE (nats)")
    ax.set_ylabel(metric)
    ax.set_title("accuracy vs shared information (reverse U)")
    if pts:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _optuna_plot(optuna_study: Any, fn: str, path: Path) -> tuple[Path | None, str | None]:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ax = getattr(optuna.visualization.matplotlib, fn)(optuna_study)
        except Exception as e:  # noqa: BLE001 - e.g. importances need 2 complete trials with varied params
            plt.close("all")
            return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    fig = ax.figure if hasattr(ax, "figure") else np.ravel(ax)[0].figure
    fig.set_size_inches(6, 4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path, None


def _log_to_parent(optuna_study: Any, report: Report, out: Path) -> str | None:
    from infomin import tracking
    from infomin.search.trials import tracking_uri_of

    parent = optuna_study.user_attrs.get("infomin.parent_run_id")
    if not parent:
        return None
    uri = tracking_uri_of(optuna_study)
    metrics = {"study/n_complete": float(len(report.rows))}
    if report.best_value is not None:
        metrics["study/best_value"] = float(report.best_value)
    if report.sweet_spot is not None:
        metrics["sweet_spot/i_nce"] = report.sweet_spot.i_nce
        metrics["sweet_spot/accuracy"] = report.sweet_spot.accuracy
    tracking.log_folder(parent, out, "report", metrics=metrics, uri=uri)
    return parent
