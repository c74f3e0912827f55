"""The sweet-spot report: accuracy against I_NCE, the reverse U, and how far to trust it.

"The optimal views ... share only the information necessary for the downstream task;
... transfer performance follows a reverse-U shape as a function of I(v1; v2)."
(Tian et al. 2020, *What Makes for Good Views for Contrastive Learning?*, arXiv 2005.10243)

The report reads one :class:`~infomin.search.results.CandidateSeeds` per candidate (its
metrics per seed) and states, per candidate: the metric's mean and standard deviation over
seeds, the 95% t-interval of the mean, the probe's own sampling error from the test-set
size, I_NCE = log K - L_NCE (the bound never exceeds log K, van den Oord et al. 2018,
arXiv 1807.03748), alignment and uniformity (Wang & Isola 2020, arXiv 2005.10242),
tolerance (Wang & Liu 2021, arXiv 2012.09740), and the paired comparison with the best
candidate ("≈ best" when the two cannot be told apart). It fits a quadratic
``acc = a I^2 + b I + c`` to the candidate means and bootstraps the seeds to say where the
maximum is and how sure that is (:mod:`infomin.search.stats`). With one seed per candidate
it says in words that differences are not tested.

It warns when the I_NCE values are not comparable (candidates differ in K, tau or encoder)
or when the bound is saturated (I_NCE near log K for many candidates: then it
under-reports the MI and the x axis is compressed).

Writes ``table.csv`` (one row per candidate), ``seeds.csv`` (one row per candidate and
seed), ``report.md``, ``sweet_spot.png``, ``history.png``, ``importances.png`` and
``best_views.yaml`` (ready for ``infomin train --views``) to the report folder and logs
them to the study's parent MLflow run.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infomin.search.results import CandidateSeeds, candidates_from_study
from infomin.search.stats import (
    ALPHA,
    BEST,
    LEVEL,
    MIN_FIT_POINTS,
    N_RESAMPLES,
    SAME,
    UNTESTED,
    WORSE,
    Comparison,
    LackOfFit,
    Summary,
    SweetSpot,
    SweetSpotBootstrap,
    bootstrap_sweet_spot,
    compare_with_best,
    detectable_difference,
    fit_sweet_spot,
    lack_of_fit,
    per_comparison_alpha,
    summarize,
    sweet_spot_verdict,
)
from infomin.search.trials import tracking_uri_of

__all__ = ["SATURATION", "SATURATED_SHARE", "MIN_FIT_POINTS", "CandidateStats", "Report", "SweetSpot",
           "build_report", "comparability_warnings", "fit_sweet_spot", "make_report", "write_report"]

#: An I_NCE within this fraction of log K counts as saturated.
SATURATION = 0.9
#: Warn when more than this share of the candidates is saturated.
SATURATED_SHARE = 0.5
#: The parent run's description holds the report up to this size (MLflow allows 8,000 characters).
NOTE_CHARS = 7500
#: Warn that the reverse U is not evident below this R^2 of the quadratic fit.
LOW_R2 = 0.5
I_NCE, LOG_K = "mi/nce", "mi/log_k"
#: Means of these metrics are carried into the tables (when present).
EXTRA = ("eval/alignment", "eval/uniformity", "eval/tolerance", "eval/knn_acc")
TABLE_COLUMNS = ("rank", "trial", "label", "params", "n_seeds", "seeds", "mean", "sd", "ci_low", "ci_high",
                 "n_test", "probe_se", "probe_low", "probe_high", "i_nce_mean", "i_nce_sd", "log_k",
                 "diff_vs_best", "diff_low", "diff_high", "p_value", "alpha", "verdict", *EXTRA)


# -- warnings --------------------------------------------------------------------------------

def comparability_warnings(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Warnings for I_NCE values that cannot be compared or are saturated.

    ``rows`` hold ``mi/k``, ``mi/nce``, ``mi/log_k``, ``temperature`` and ``encoder``
    (missing keys are ignored), one per candidate.
    """
    out = []
    for key, label in (("mi/k", "K (candidates per anchor)"), ("temperature", "tau (temperature)"),
                       ("encoder", "encoder")):
        values = sorted({_fmt(r[key]) for r in rows if r.get(key) is not None})
        if len(values) > 1:
            out.append(f"trials differ in {label}: {', '.join(values)}; I_NCE is only comparable at fixed "
                       "K, tau and encoder, so the reverse U mixes different bounds")
    sat = [r for r in rows if _finite(r.get(I_NCE)) and _finite(r.get(LOG_K)) and r[LOG_K] > 0
           and r[I_NCE] >= SATURATION * r[LOG_K]]
    if rows and sat and len(sat) > SATURATED_SHARE * len(rows):
        out.append(f"I_NCE is within {100 * (1 - SATURATION):.0f}% of log K in {len(sat)} of {len(rows)} trials: "
                   "the bound is saturated and under-reports the mutual information; raise K (the batch size) "
                   "before reading the sweet spot")
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _params(p: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


# -- the report's content --------------------------------------------------------------------

@dataclass(frozen=True)
class CandidateStats:
    """One candidate's line of the report.

    ``metric``: the objective over seeds; ``i_nce``: I_NCE over seeds (``None`` when not
    recorded); ``comparison``: against the best (``None`` for the best itself); ``verdict``:
    ``best``, ``≈ best``, ``worse`` or ``untested``; ``extras``: means of :data:`EXTRA`;
    ``seeds``: the seeds with a value of the metric.
    """

    rank: int
    candidate: CandidateSeeds
    metric: Summary
    i_nce: Summary | None
    log_k: float | None
    comparison: Comparison | None
    verdict: str
    extras: dict[str, float]
    seeds: tuple[int, ...] = ()

    def row(self) -> dict[str, Any]:
        """A flat dict with :data:`TABLE_COLUMNS` (for the CSV)."""
        c, m, cmp = self.candidate, self.metric, self.comparison
        return {
            "rank": self.rank, "trial": c.number, "label": c.label, "params": _params(c.params),
            "n_seeds": m.n, "seeds": " ".join(str(s) for s in self.seeds),
            "mean": m.mean, "sd": m.sd, "ci_low": m.ci and m.ci[0], "ci_high": m.ci and m.ci[1],
            "n_test": m.n_test, "probe_se": m.probe_se, "probe_low": m.probe_ci and m.probe_ci[0],
            "probe_high": m.probe_ci and m.probe_ci[1],
            "i_nce_mean": self.i_nce and self.i_nce.mean, "i_nce_sd": self.i_nce and self.i_nce.sd,
            "log_k": self.log_k, "diff_vs_best": cmp.diff if cmp else 0.0,
            "diff_low": cmp.ci[0] if cmp and cmp.ci else None, "diff_high": cmp.ci[1] if cmp and cmp.ci else None,
            "p_value": cmp.p if cmp else None, "alpha": cmp.alpha if cmp else None, "verdict": self.verdict,
            **{k: self.extras.get(k) for k in EXTRA},
        }


@dataclass
class Report:
    """The report's content and where its files went.

    ``candidates`` are ranked best first. ``sweet_spot`` is the fit of the candidate means,
    ``bootstrap`` its uncertainty over seeds, ``lack_of_fit`` the test of the quadratic
    against the seed noise (``None`` with one seed). ``notes`` are the sentences that say how
    many seeds ran and what was (not) tested; ``legend`` says how to read the table.
    """

    name: str
    metric: str
    maximize: bool
    candidates: list[CandidateStats]
    sweet_spot: SweetSpot | None
    bootstrap: SweetSpotBootstrap | None
    lack_of_fit: LackOfFit | None
    sweet_spot_text: str
    warnings: list[str]
    notes: list[str]
    legend: list[str]
    alpha: float = ALPHA
    level: float = LEVEL
    files: dict[str, Path] = field(default_factory=dict)
    logged_to: str | None = None
    question: str = ""
    fixed: dict[str, str] = field(default_factory=dict)

    @property
    def peak_located(self) -> bool:
        """A sweet spot is claimed: most resamples peak inside the range and the quadratic fits."""
        return (self.bootstrap is not None and self.bootstrap.located
                and (self.lack_of_fit is None or self.lack_of_fit.fits))

    @property
    def best(self) -> CandidateStats | None:
        return self.candidates[0] if self.candidates else None

    @property
    def best_trial(self) -> int | None:
        return self.best.candidate.number if self.best else None

    @property
    def best_value(self) -> float | None:
        return self.best.metric.mean if self.best else None

    @property
    def seed_counts(self) -> tuple[int, int]:
        """Fewest and most seeds of a candidate (``(0, 0)`` without candidates)."""
        ns = [c.metric.n for c in self.candidates]
        return (min(ns), max(ns)) if ns else (0, 0)

    @property
    def tested(self) -> bool:
        """Whether any comparison with the best was tested (some pair shares 2 seeds)."""
        return any(c.comparison is not None and c.comparison.verdict != UNTESTED for c in self.candidates)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [c.row() for c in self.candidates]


def build_report(candidates: Sequence[CandidateSeeds], *, metric: str, maximize: bool = True,
                 name: str = "study", question: str = "", fixed: Mapping[str, str] | None = None,
                 alpha: float = ALPHA, level: float = LEVEL, n_resamples: int = N_RESAMPLES,
                 rng: int | np.random.Generator = 0) -> Report:
    """The report's numbers and sentences from per-seed results (no files, no Optuna).

    Candidates without a finite ``metric`` on any seed are left out with a warning. The
    bootstrap is seeded by ``rng`` (the same data give the same report).
    """
    warns: list[str] = []
    kept = []
    for c in candidates:
        if c.values(metric):
            kept.append(c)
        else:
            warns.append(f"trial {c.number} ({c.label}) has no {metric}: left out")
    per_seed = [c.values(metric) for c in kept]
    best_i, comps = compare_with_best(per_seed, maximize=maximize, alpha=alpha) if kept else (0, [])
    order = sorted(range(len(kept)), key=lambda i: (i != best_i, -(1 if maximize else -1) * kept[i].mean(metric),
                                                   kept[i].number))
    stats_ = []
    for rank, i in enumerate(order, start=1):
        c = kept[i]
        vals = per_seed[i]
        is_acc = "acc" in metric
        summ = summarize(list(vals.values()), level=level, n_test=c.n_test if is_acc else None)
        mi = c.values(I_NCE)
        log_k = c.values(LOG_K)
        extras = {k: float(np.mean(list(c.values(k).values()))) for k in EXTRA if c.values(k)}
        cmp = comps[i]
        verdict = BEST if cmp is None else cmp.verdict
        stats_.append(CandidateStats(rank=rank, candidate=c, metric=summ,
                                     i_nce=summarize(list(mi.values()), level=level) if mi else None,
                                     log_k=float(np.mean(list(log_k.values()))) if log_k else None,
                                     comparison=cmp, verdict=verdict, extras=extras, seeds=tuple(vals)))
    warns = comparability_warnings([
        {"mi/k": s.candidate.mean("mi/k"), I_NCE: s.i_nce.mean if s.i_nce else None, LOG_K: s.log_k,
         "temperature": s.candidate.train.get("temperature"), "encoder": s.candidate.train.get("encoder")}
        for s in stats_]) + warns

    # the sweet spot: a fit of the candidate means, a bootstrap over each candidate's seeds
    fit_set = [s for s in stats_ if s.i_nce is not None]
    xs, ys, seed_ids = [], [], []
    for s in fit_set:
        both = sorted(set(s.candidate.values(I_NCE)) & set(s.candidate.values(metric)))
        if both:
            xs.append([s.candidate.seeds[k][I_NCE] for k in both])
            ys.append([s.candidate.seeds[k][metric] for k in both])
            seed_ids.append(both)
    # the reverse U is a maximum: a minimised metric (a loss) gets its table, not a sweet spot
    fit = fit_sweet_spot([np.mean(x) for x in xs], [np.mean(y) for y in ys]) if xs and maximize else None
    boot = (bootstrap_sweet_spot(xs, ys, seeds=seed_ids, n_resamples=n_resamples, level=level, rng=rng)
            if fit is not None else None)
    lof = lack_of_fit(fit, xs, ys, seeds=seed_ids, alpha=alpha) if boot is not None else None
    n_lo, n_hi = (min(s.metric.n for s in stats_), max(s.metric.n for s in stats_)) if stats_ else (0, 0)
    spot_text = sweet_spot_verdict(fit, boot, metric=metric, n_seeds=n_hi, lof=lof)
    if not maximize:
        spot_text = f"no sweet spot: the study minimises {metric}, and the sweet spot is the maximum of a score"
    elif fit is None:
        warns.append(f"{len(xs)} candidate(s) with both I_NCE and {metric}: too few for a fit "
                     f"(need {MIN_FIT_POINTS} with 3 distinct I_NCE values); the best candidate stands in")
    elif lof is None and fit.r2 < LOW_R2:
        warns.append(f"the quadratic explains only {100 * max(fit.r2, 0):.0f}% of the variation of the candidate "
                     f"means (R^2 = {fit.r2:.2f}): a reverse U is not evident in these candidates")
    if fit is not None and (lof is None or lof.fits) and (
            (boot is not None and not boot.located) or (boot is None and not fit.interior)):
        warns.append(f"no interior maximum{' in most resamples' if boot is not None else ''}: {metric} is not "
                     f"shown to peak inside I_NCE [{fit.low:.3f}, {fit.high:.3f}] nats; widen the search to "
                     "see the reverse U")
    seed_sets = {tuple(sorted(s.candidate.values(metric))) for s in stats_}
    if len(seed_sets) > 1 and n_hi > 1:
        warns.append("candidates ran different seeds; each comparison uses the seeds it shares with the best")

    a_per = per_comparison_alpha(len(stats_), alpha)
    notes = _notes(stats_, metric, n_lo, n_hi, alpha, a_per, level)
    legend = _legend(metric, alpha, a_per, level, n_hi)
    return Report(name=name, metric=metric, maximize=maximize, candidates=stats_, sweet_spot=fit, bootstrap=boot,
                  lack_of_fit=lof, sweet_spot_text=spot_text, warnings=warns, notes=notes, legend=legend, alpha=alpha,
                  level=level, question=question, fixed=dict(fixed or {}))


def _notes(stats_: list[CandidateStats], metric: str, n_lo: int, n_hi: int, alpha: float, a_per: float,
           level: float) -> list[str]:
    if not stats_:
        return ["no completed candidates"]
    m = len(stats_)
    if n_hi <= 1:
        return ["One seed per candidate: differences between candidates are not tested, and the ranking may "
                "change with the seed; no intervals over seeds are shown (the probe column is the test-set "
                "error of one evaluation only). Run the study with repeats (3 or more seeds) to test them."]
    seeds = f"{n_lo}" if n_lo == n_hi else f"{n_lo}-{n_hi}"
    out = [f"{seeds} seeds per candidate ({m} candidates). The best is compared with each other candidate by a "
           f"paired t-test over the seeds they share, each at level {alpha:g}/{max(1, m - 1)} = {a_per:.4g} "
           f"(Bonferroni: each candidate as good as the best is marked '{WORSE}' with probability at most "
           f"{alpha:g})."]
    ns = [c.comparison.n for c in stats_ if c.comparison is not None and c.comparison.n >= 2]
    if ns:
        n = min(ns)
        d = detectable_difference(n, a_per)
        sds = sorted(c.comparison.sd for c in stats_ if c.comparison is not None and c.comparison.sd)
        text = (f"With {n} shared seeds such a test finds a true gap of {d:.1f} standard deviations of the paired "
                "differences 80% of the time")
        if sds:
            med = sds[len(sds) // 2]
            text += f" (about {d * med:.3f} in {metric} at the median paired sd here, {med:.3f})"
        out.append(text + f": '{SAME}' means 'not shown to differ', not 'equal'.")
    if any(c.verdict == UNTESTED for c in stats_):
        out.append(f"'{UNTESTED}': fewer than 2 seeds shared with the best, so no test was possible.")
    return out


def _legend(metric: str, alpha: float, a_per: float, level: float, n_hi: int) -> list[str]:
    """How to read the table, one short line per column group (docs/reading_the_report.md says more)."""
    lv = f"{100 * level:.0f}%"
    if n_hi <= 1:
        return ["probe SE: sqrt(p(1-p)/n_test), the noise of one probe evaluation on n_test test images; a gap "
                "under about 3 probe SEs can come from the test set alone, and seed-to-seed variation (not "
                "measured here) adds to it.",
                "I_NCE = log K - L_NCE (nats): compares only at fixed K, tau and encoder; never above log K."]
    return [
        f"mean ± sd over the seeds; {lv} CI: t-interval of the mean.",
        "probe SE: sqrt(p(1-p)/n_test), the noise of one probe evaluation on n_test test images; an sd well "
        "above it means training itself varies between seeds.",
        f"Δ best: paired difference to the best over shared seeds [simultaneous {lv} interval]; p: paired "
        f"t-test; '{SAME}': p >= {a_per:.4g}, not shown to differ (which is not 'equal'); '{WORSE}': shown "
        "below the best.",
        "sweet spot: the I_NCE bracket is a bootstrap over seeds, and a peak is located only when most "
        "resamples peak inside the range; the accuracy bracket and the plot's band are t-intervals over "
        "per-seed fits when all candidates ran the same seeds (else bootstrap).",
        "I_NCE = log K - L_NCE (nats, mean over seeds): compares only at fixed K, tau and encoder.",
    ]


# -- from an Optuna study --------------------------------------------------------------------

def make_report(optuna_study: Any, out: str | Path, *, metric: str | None = None, log: bool = True,
                candidates: Sequence[CandidateSeeds] | None = None, alpha: float = ALPHA,
                n_resamples: int = N_RESAMPLES) -> Report:
    """Write the report of ``optuna_study`` to ``out`` (and its parent MLflow run).

    ``candidates`` default to :func:`~infomin.search.results.candidates_from_study` (the
    per-seed metrics its trials stored).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metric = metric or optuna_study.user_attrs.get("infomin.metric", "eval/linear_acc")
    cands = list(candidates) if candidates is not None else candidates_from_study(optuna_study)
    maximize = optuna_study.direction.name.lower() != "minimize"
    report = build_report(cands, metric=metric, maximize=maximize, name=optuna_study.study_name,
                          question=optuna_study.user_attrs.get("infomin.question", ""),
                          fixed=dict(optuna_study.user_attrs.get("infomin.fixed") or {}),
                          alpha=alpha, n_resamples=n_resamples)
    write_report(report, out)
    for key, fn in (("history", "plot_optimization_history"), ("importances", "plot_param_importances")):
        path, problem = _optuna_plot(optuna_study, fn, out / f"{key}.png")
        if path is not None:
            report.files[key] = path
        elif problem:
            report.warnings.append(f"{key} plot skipped: {problem}")
    best = report.best
    if best is not None and best.candidate.views:
        from infomin.views.spec import dump_spec  # torch, kornia: the best preset only

        path = out / "best_views.yaml"
        dump_spec(dict(best.candidate.views), path,
                  comment=f"best view of study {optuna_study.study_name}: trial {best.candidate.number}, "
                          f"{metric} = {best.metric.mean:.4f} (mean of {best.metric.n} seed(s))\n"
                          f"use: infomin train --views {path}")
        report.files["best_views"] = path
    report.files["markdown"] = _write_markdown(report, out / "report.md")   # again: warnings may have grown
    if log:
        report.logged_to = _log_to_parent(optuna_study, report, out)
    return report


def write_report(report: Report, out: str | Path) -> dict[str, Path]:
    """Write ``table.csv``, ``seeds.csv``, ``report.md`` and ``sweet_spot.png`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report.files["table"] = _write_table(report, out / "table.csv")
    report.files["seeds"] = _write_seeds(report, out / "seeds.csv")
    report.files["sweet_spot"] = _plot_sweet_spot(report, out / "sweet_spot.png")
    report.files["markdown"] = _write_markdown(report, out / "report.md")
    return report.files


def _write_table(report: Report, path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        w.writeheader()
        for r in report.rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
    return path


def _write_seeds(report: Report, path: Path) -> Path:
    metrics = sorted({k for s in report.candidates for m in s.candidate.seeds.values() for k in m})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "label", "seed", "mlflow_run_id", *metrics])
        for s in report.candidates:
            c = s.candidate
            for seed, m in c.seeds.items():
                w.writerow([c.number, c.label, seed, c.run_ids.get(seed, ""), *(m.get(k, "") for k in metrics)])
    return path


# -- text ----------------------------------------------------------------------------------

def fmt_mean_sd(s: Summary, digits: int = 4) -> str:
    return f"{s.mean:.{digits}f}" if s.sd is None else f"{s.mean:.{digits}f} ± {s.sd:.{digits}f}"


def fmt_interval(ci: tuple[float, float] | None, digits: int = 4) -> str:
    return "" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def fmt_diff(c: Comparison | None, digits: int = 4) -> str:
    if c is None:
        return ""
    text = f"{c.diff:+.{digits}f}"
    return text if c.ci is None else f"{text} [{c.ci[0]:+.{digits}f}, {c.ci[1]:+.{digits}f}]"


def fmt_p(c: Comparison | None) -> str:
    if c is None or c.p is None:
        return ""
    return "<0.001" if c.p < 1e-3 else f"{c.p:.3f}"


def fmt_probe(s: Summary) -> str:
    return "" if s.probe_se is None else f"±{s.probe_se:.4f} (n={s.n_test})"


def _write_markdown(report: Report, path: Path) -> Path:
    path.write_text(markdown(report))
    return path


def markdown(report: Report, max_chars: int | None = None) -> str:
    """The report as markdown; with ``max_chars`` the table's last rows are dropped (and counted) to fit."""
    lines = [f"# Study `{report.name}`: sweet-spot report", ""]
    if report.question:
        lines += [f"Question: {report.question}", ""]
    if report.fixed:
        lines += ["Held fixed: " + ", ".join(f"{k} = {v}" for k, v in report.fixed.items()), ""]
    lines += [*report.notes, ""]
    lines += [report.sweet_spot_text[0].upper() + report.sweet_spot_text[1:] + ".", ""]
    if report.best is not None:
        b = report.best
        lines += [f"Best candidate: trial {b.candidate.number} ({b.candidate.label}), {report.metric} = "
                  f"{fmt_mean_sd(b.metric)} over {b.metric.n} seed(s).", ""]
    for w in report.warnings:
        lines.append(f"> **Warning:** {w}")
    lv = f"{100 * report.level:.0f}%"
    cols = ["rank", "trial", "candidate", "seeds", f"{report.metric} mean ± sd", f"{lv} CI", "probe SE",
            "I_NCE", "log K", f"Δ best [{lv} simult.]", "p", "vs best", "align", "unif", "toler"]
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = []
    for s in report.candidates:
        cells = [str(s.rank), str(s.candidate.number), s.candidate.label, str(s.metric.n), fmt_mean_sd(s.metric),
                 fmt_interval(s.metric.ci), fmt_probe(s.metric), "" if s.i_nce is None else fmt_mean_sd(s.i_nce, 3),
                 "" if s.log_k is None else f"{s.log_k:.3f}", fmt_diff(s.comparison), fmt_p(s.comparison),
                 s.verdict, *("" if s.extras.get(k) is None else f"{s.extras[k]:.3f}" for k in EXTRA[:3])]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    legend = ["", "How to read this:", ""] + [f"- {x}" for x in report.legend]
    text = "\n".join(lines + rows + legend) + "\n"
    while max_chars is not None and len(text) > max_chars and rows:
        rows.pop()
        more = f"({len(report.candidates) - len(rows)} more candidates in report/table.csv)"
        text = "\n".join(lines + rows + ["", more] + legend) + "\n"
    return text


# -- the plot ------------------------------------------------------------------------------

_COLOURS = {BEST: "tab:red", SAME: "tab:blue", WORSE: "tab:gray", UNTESTED: "tab:blue"}


def _plot_sweet_spot(report: Report, path: Path) -> Path:
    import matplotlib  # heavy, only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.style.context("default"):   # Optuna's plots switch the global style to ggplot
        return _draw_sweet_spot(report, path, plt)


def _draw_sweet_spot(report: Report, path: Path, plt: Any) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    pts = [s for s in report.candidates if s.i_nce is not None]
    one_seed = report.seed_counts[1] <= 1
    seen: set[str] = set()
    by_x = sorted(pts, key=lambda s: s.i_nce.mean)
    below = set()   # of two neighbours in I_NCE, the lower point's label goes below it, the higher's above
    for k, s in enumerate(by_x):
        near = [n for n in (by_x[k - 1] if k else None, by_x[k + 1] if k + 1 < len(by_x) else None) if n is not None]
        nearest = min(near, key=lambda n: abs(n.i_nce.mean - s.i_nce.mean), default=None)
        if nearest is not None and s.metric.mean < nearest.metric.mean:
            below.add(id(s))
    for s in pts:
        x, y = s.i_nce.mean, s.metric.mean
        if s.metric.ci is not None:
            yerr = [[y - s.metric.ci[0]], [s.metric.ci[1] - y]]
            kind = f"{s.verdict} ({100 * report.level:.0f}% CI over seeds)"
        elif s.metric.probe_ci is not None:
            yerr = [[y - s.metric.probe_ci[0]], [s.metric.probe_ci[1] - y]]
            kind = "one seed (bar: test-set error only)"
        else:
            yerr, kind = None, "one seed (no error bar)"
        xerr = None if s.i_nce.ci is None else [[x - s.i_nce.ci[0]], [s.i_nce.ci[1] - x]]
        colour = "tab:blue" if one_seed else _COLOURS[s.verdict]
        ax.errorbar([x], [y], yerr=yerr, xerr=xerr, fmt="o", color=colour, ecolor=colour, elinewidth=1, capsize=3,
                    zorder=3, label=None if kind in seen else kind)
        seen.add(kind)
        ax.annotate(s.candidate.label, (x, y), xytext=(5, -10 if id(s) in below else 5), textcoords="offset points",
                    fontsize=7)
    fit, boot = report.sweet_spot, report.bootstrap
    if fit is not None:
        grid = np.linspace(fit.low, fit.high, 200)
        misfit = report.lack_of_fit is not None and not report.lack_of_fit.fits
        ax.plot(grid, fit.predict(grid), color="tab:orange", lw=1.5, ls="--" if misfit else "-",
                label=f"quadratic fit of the means (R$^2$={fit.r2:.2f}{', rejected' if misfit else ''})")
        if boot is not None:
            lo, hi = boot.band(grid)
            how = "t-band over per-seed fits" if boot.seed_coef is not None else "bootstrap band"
            ax.fill_between(grid, lo, hi, color="tab:orange", alpha=0.2, label=f"{100 * boot.level:.0f}% {how}")
            lof = report.lack_of_fit
            if lof is not None and not lof.fits:
                ax.text(0.02, 0.02, f"the quadratic does not fit the means (lack-of-fit p = {lof.p:.2g}): "
                        "no sweet spot located", transform=ax.transAxes, fontsize=7, color="tab:red")
            elif report.peak_located:
                ax.axvspan(*boot.i_nce_ci, color="tab:red", alpha=0.08)
                ax.errorbar([fit.i_nce], [fit.accuracy],
                            xerr=[[fit.i_nce - boot.i_nce_ci[0]], [boot.i_nce_ci[1] - fit.i_nce]],
                            yerr=[[fit.accuracy - boot.accuracy_ci[0]], [boot.accuracy_ci[1] - fit.accuracy]],
                            fmt="*", ms=13, color="tab:red", alpha=0.8, capsize=3, zorder=2,
                            label=f"sweet spot I_NCE={fit.i_nce:.2f} [{boot.i_nce_ci[0]:.2f}, {boot.i_nce_ci[1]:.2f}]"
                                  f" ({100 * boot.interior_share:.0f}% of resamples)")
            else:
                ax.text(0.02, 0.02, f"no interior maximum in most resamples ({100 * boot.interior_share:.0f}% "
                        "have one): no sweet spot located", transform=ax.transAxes, fontsize=7, color="tab:red")
    log_ks = sorted({round(s.log_k, 6) for s in report.candidates if s.log_k is not None})
    if len(log_ks) == 1:
        ax.axvline(log_ks[0], color="gray", ls=":", lw=1, label=f"log K = {log_ks[0]:.2f} (ceiling)")
    ax.set_xlabel("I_NCE = log K - L_NCE (nats)")
    ax.set_ylabel(report.metric)
    n_lo, n_hi = report.seed_counts
    seeds = "one seed per candidate: differences not tested" if one_seed else (
        f"{n_lo} seeds per candidate" if n_lo == n_hi else f"{n_lo}-{n_hi} seeds per candidate")
    ax.set_title(f"{report.metric} vs shared information ({seeds})", fontsize=9)
    if pts:   # below the axes, so it never hides a point
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _optuna_plot(optuna_study: Any, fn: str, path: Path) -> tuple[Path | None, str | None]:
    import warnings

    import matplotlib  # heavy, only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    with warnings.catch_warnings(), plt.style.context("default"):   # keep Optuna's style.use inside
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
    from infomin import tracking  # mlflow: heavy (~2 s), only logging needs it

    parent = optuna_study.user_attrs.get("infomin.parent_run_id")
    if not parent:
        return None
    uri = tracking_uri_of(optuna_study)
    n_lo, n_hi = report.seed_counts
    metrics = {"study/n_complete": float(len(report.candidates)), "study/seeds_min": float(n_lo),
               "study/seeds_max": float(n_hi)}
    if report.best_value is not None:
        metrics["study/best_value"] = float(report.best_value)
        n_same = sum(1 for c in report.candidates if c.verdict in (BEST, SAME))
        if report.tested:
            metrics["study/n_indistinguishable_from_best"] = float(n_same)
    s, b = report.sweet_spot, report.bootstrap
    if s is not None:
        metrics["sweet_spot/i_nce"] = s.i_nce
        metrics["sweet_spot/accuracy"] = s.accuracy
        metrics["sweet_spot/r2"] = s.r2
    if report.lack_of_fit is not None:
        metrics["sweet_spot/lack_of_fit_p"] = report.lack_of_fit.p
    if b is not None:
        metrics["sweet_spot/located"] = float(report.peak_located)
        metrics["sweet_spot/interior_share"] = b.interior_share
        metrics["sweet_spot/i_nce_low"], metrics["sweet_spot/i_nce_high"] = b.i_nce_ci
        metrics["sweet_spot/accuracy_low"], metrics["sweet_spot/accuracy_high"] = b.accuracy_ci
    tracking.log_folder(parent, out, "report", metrics=metrics, uri=uri)
    # the parent run's description is the report: question, sweet spot, table, how to read it
    tracking.Run(parent, uri).set_tags({tracking.NOTE_TAG: markdown(report, max_chars=NOTE_CHARS)})
    return parent
