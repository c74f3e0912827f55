"""Tables (docs/results/<study>/table.md) and figures for README (Results) from the studies' runs.

Run in the folder holding mlflow.db / optuna.db (and untrained_baseline.json), after the studies::

    python docs/results/make_tables.py sf lvs             # from the studies' runs
    python docs/results/make_tables.py ttc tts cdc        # from the reports' seeds.csv
    python docs/results/make_tables.py lv    # where `infomin learn-views` wrote its mlflow.db
"""
import json
import os
import sys
from pathlib import Path

import matplotlib
import mlflow
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
DOCS = Path(__file__).resolve().parent


def durations(study):
    import optuna
    st = optuna.load_study(study_name=study, storage=os.environ.get("INFOMIN_STORAGE", "sqlite:///optuna.db"))
    return {str(t.number): t.duration.total_seconds() for t in st.trials if t.duration is not None}


def runs(study):
    df = mlflow.search_runs(search_all_experiments=True,
                            filter_string=f"tags.`infomin.study` = '{study}' and tags.`infomin.kind` = 'candidate' and attributes.status = 'FINISHED'")
    d = durations(study)
    df["secs"] = [d.get(str(t), float("nan")) for t in df["tags.infomin.trial"]]
    return df


def write_table(name, lines, file="table.md"):
    """Write the markdown ``lines`` to docs/results/<name>/<file>; return the folder."""
    out = DOCS / name
    out.mkdir(parents=True, exist_ok=True)
    (out / file).write_text("\n".join(lines) + "\n")
    return out


def f3(v):
    return f"{v:.3f}"


def mean_sd(vs):
    """'0.643 ± 0.044' over seeds ('0.643' for one)."""
    vs = [float(v) for v in vs]
    if len(vs) == 1:
        return f3(vs[0])
    return f"{np.mean(vs):.3f} ± {np.std(vs, ddof=1):.3f}"


def shared_factors():
    name = "repro_shared_factors"
    df = runs(name)
    order = ["digit", "background", "position", "digit+background", "digit+position",
             "background+position", "digit+background+position"]
    factors = ("digit", "background", "position")
    rows = {}   # subset -> its trials (one per seed)
    for _, r in df.iterrows():
        shared = "+".join(eval(r["params.views.shared"])) if r["params.views.shared"].startswith("[") else r["params.views.shared"]
        rows.setdefault(shared, []).append(r)
    lines = ["| shared factors | seeds | digit acc | background acc | position acc | I_NCE (nats) | log K | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for s in order:
        if s not in rows:
            lines.append(f"| {s} | (not run) | | | | | | |")
            continue
        rs = rows[s]
        cells = [mean_sd([r[f"metrics.eval/linear_acc/{f}"] for r in rs]) for f in factors]
        lines.append(f"| {s} | {len(rs)} | " + " | ".join(cells)
                     + f" | {mean_sd([r['metrics.mi/nce'] for r in rs])} | {rs[0]['metrics.mi/log_k']:.2f}"
                     + f" | {np.mean([r['secs'] for r in rs]):.0f} |")
    rb = json.load(open("untrained_baseline.json"))
    floor = {f: [v for k, v in rb.items() if k.startswith(f"toy/{f}/")] for f in factors}
    lines.append(f"| *untrained encoder (no views)* | {len(floor['digit'])} | "
                 + " | ".join(mean_sd(floor[f]) for f in factors) + " | | | |")
    lines.append("| *chance* | | 0.100 | 0.083 | 0.063 | | | |")
    out = write_table(name, lines)
    # grouped bars: the mean over seeds, the seeds as dots
    done = [s for s in order if s in rows]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    w = 0.27
    for i, (f, c) in enumerate(zip(factors, ("tab:blue", "tab:orange", "tab:green"), strict=True)):
        xs = [k + (i - 1) * w for k in range(len(done))]
        vals = [[r[f"metrics.eval/linear_acc/{f}"] for r in rows[s]] for s in done]
        ax.bar(xs, [np.mean(v) for v in vals], w, label=f"probe: {f}", color=c)
        for x, v in zip(xs, vals, strict=True):
            ax.plot([x] * len(v), v, "k.", ms=2)
        ax.axhline([0.1, 1 / 12, 1 / 16][i], color=c, ls=":", lw=0.8)
    ax.set_xticks(range(len(done)))
    ax.set_xticklabels([s.replace("+", "+\n") for s in done], fontsize=7)
    ax.set_xlabel("factors shared by the two views")
    ax.set_ylabel("linear probe accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, 1.18))
    fig.tight_layout()
    fig.savefig(out / "factor_probes.png", dpi=90)
    print("\n".join(lines))




def seeds_table(name):
    """The per-seed rows of a study's report (docs/results/<name>/seeds.csv, copied from
    infomin-out/<name>/report/): a DataFrame with one row per candidate and seed."""
    import pandas as pd
    return pd.read_csv(DOCS / name / "seeds.csv")


def sweep_plot(name, df, x, xlabel, file, log=False, acc=("eval/linear_acc", "CIFAR-10 linear acc")):
    """Accuracy (metric, title ``acc``), uniformity and tolerance against column ``x`` of ``df`` (rows
    of seeds.csv): mean ± sd over seeds, each seed a dot; saved as docs/results/<name>/<file>."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
    for ax, (m, lab) in zip(axes, (acc,
                                   ("eval/uniformity", "uniformity (lower = more uniform)"),
                                   ("eval/tolerance", "tolerance")), strict=True):
        g = df.groupby(x)[m]
        xs = np.array(sorted(df[x].unique()), dtype=float)
        ax.errorbar(xs, g.mean().loc[xs], yerr=g.std().loc[xs], fmt="o-", capsize=3)
        ax.plot(df[x], df[m], "k.", ms=3)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(lab, fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / name / file, dpi=90)


def temperature_seeds(name="repro_temperature_cifar", acc=("eval/linear_acc", "CIFAR-10 linear acc")):
    """A temperature study with three seeds: tau_sweep.png from its report's seeds.csv."""
    df = seeds_table(name)
    df["tau"] = df["label"].str.removeprefix("temperature=").astype(float)
    sweep_plot(name, df, "tau", "temperature tau", "tau_sweep.png", log=True, acc=acc)


def toy_temperature_seeds():
    """repro_temperature (the toy) with three seeds: tau_sweep.png (digit probe) and the per-factor
    probes over seeds, from its report's seeds.csv."""
    name = "repro_temperature"
    temperature_seeds(name, acc=("eval/linear_acc/digit", "toy: digit linear acc"))
    df = seeds_table(name)
    df["tau"] = df["label"].str.removeprefix("temperature=").astype(float)
    cols = [("eval/linear_acc/digit", "digit"), ("eval/linear_acc/background", "background"),
            ("eval/linear_acc/position", "position"), ("eval/linear_acc/hue", "hue"),
            ("eval/alignment", "alignment"), ("eval/uniformity", "uniformity"), ("eval/tolerance", "tolerance")]
    lines = ["| tau | " + " | ".join(lab for _, lab in cols) + " |", "|---|" + "---|" * len(cols)]
    for tau, g in df.groupby("tau"):
        lines.append(f"| {tau:g} | " + " | ".join(mean_sd(g[c]) for c, _ in cols) + " |")
    write_table(name, lines)
    print("\n".join(lines))


def crop_distance_seeds():
    """repro_crop_distance_cifar with three seeds: distance_sweep.png from its report's seeds.csv."""
    name = "repro_crop_distance_cifar"
    df = seeds_table(name)
    df["distance"] = df["label"].str.removeprefix("distance=").astype(float)
    sweep_plot(name, df, "distance", "patch distance (px)", "distance_sweep.png")


def learned_views():
    """`infomin learn-views` runs (tags infomin.kind = adversarial): per seed and mean +- sd per start."""
    import statistics

    name = "repro_learned_views_cifar"
    df = mlflow.search_runs(search_all_experiments=True,
                            filter_string="tags.`infomin.kind` = 'adversarial' and attributes.status = 'FINISHED'")
    keys = [("mi/before", "I_NCE start"), ("mi/after", "I_NCE learned"), ("eval/linear_acc/start", "probe start"),
            ("eval/linear_acc/learned", "probe learned"), ("adv/acc_view1", "head acc view 1"),
            ("adv/acc_view2", "head acc view 2")]
    lines = ["| start | seed | " + " | ".join(lab for _, lab in keys) + " | learner seconds |",
             "|---|---|" + "---|" * len(keys) + "---|"]
    summary = {}
    for start in ("rgb", "ydbdr"):
        rows = df[df["params.generator.start"] == start].sort_values("tags.infomin.seed")
        for _, r in rows.iterrows():
            lines.append(f"| {start} | {r['tags.infomin.seed']} | " + " | ".join(f3(r[f'metrics.{k}']) for k, _ in keys)
                         + f" | {r['metrics.adv/seconds']:.0f} |")
        vals = {k: [float(v) for v in rows[f"metrics.{k}"]] for k, _ in keys}
        summary[start] = {k: (statistics.fmean(v), statistics.stdev(v)) for k, v in vals.items() if len(v) > 1}
        lines.append(f"| **{start}** | mean ± sd | " + " | ".join(
            f"{summary[start][k][0]:.3f} ± {summary[start][k][1]:.3f}" for k, _ in keys) + " | |")
    out = write_table(name, lines, "learner_table.md")  # the study writes table.md
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.9))
    for ax, (a, b, lab) in zip(axes, (("mi/before", "mi/after", "I_NCE, fresh critic (nats, K = 128)"),
                                      ("eval/linear_acc/start", "eval/linear_acc/learned", "CIFAR-10 linear acc")),
                               strict=True):
        for i, start in enumerate(("rgb", "ydbdr")):
            m = [summary[start][a][0], summary[start][b][0]]
            e = [summary[start][a][1], summary[start][b][1]]
            ax.bar([i - 0.18, i + 0.18], m, 0.34, yerr=e, capsize=3, color=["tab:gray", "tab:blue"],
                   label=["hand-designed start", "learned (semi-supervised)"] if i == 0 else None)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["RGB R|GB start", "YDbDr Y|DbDr start"])
        ax.set_title(lab + " (mean ± sd, 3 seeds)", fontsize=8)
    axes[1].set_ylim(0.3, 0.5)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "learned_vs_start.png", dpi=90)
    print("\n".join(lines))


def learned_views_study():
    """`studies/repro_learned_views_cifar.py`: start views against the shipped learned generators, with
    the paired difference learned - start over the seeds (t-interval; seed k's generator against the
    start views trained with seed k)."""
    import statistics

    from scipy import stats

    name = "repro_learned_views_cifar"
    df = runs(name)

    def sd(v):
        return statistics.stdev(v) if len(v) > 1 else 0.0

    groups: dict[str, dict[int, object]] = {}
    for _, r in df.iterrows():
        views, seed = r["tags.mlflow.runName"].split(" ", 1)[1].split("/seed")   # "t03 ydbdr/seed0"
        groups.setdefault(views, {})[int(seed)] = r
    lines = ["| views | seed 0 | seed 1 | seed 2 | linear acc, mean ± sd | learned - start [95% CI], p "
             "| I_NCE (nats), mean ± sd | seconds per trial |", "|---|---|---|---|---|---|---|---|"]
    for start in ("rgb", "ydbdr", "rgb-crops"):
        for views in (start, f"learned-{start}"):
            rows = groups.get(views, {})
            seeds = sorted(rows)
            accs = [rows[k]["metrics.eval/linear_acc"] for k in seeds]
            mis = [rows[k]["metrics.mi/nce"] for k in seeds]
            secs = [rows[k]["secs"] for k in seeds]
            cells = [f3(a) for a in accs] + [""] * (3 - len(accs))
            paired = ""
            if views != start:
                shared = [k for k in seeds if k in groups.get(start, {})]
                d = np.array([rows[k]["metrics.eval/linear_acc"] - groups[start][k]["metrics.eval/linear_acc"]
                              for k in shared])
                if len(d) > 1:
                    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
                    p = stats.ttest_1samp(d, 0.0).pvalue
                    paired = f"{d.mean():+.3f} [{d.mean() - half:+.3f}, {d.mean() + half:+.3f}], p = {p:.2f}"
            lines.append(f"| {views} | " + " | ".join(cells) + f" | {statistics.fmean(accs):.3f} ± {sd(accs):.3f} | "
                         f"{paired} | {statistics.fmean(mis):.3f} ± {sd(mis):.3f} | {statistics.fmean(secs):.0f} |")
    write_table(name, lines)
    print("\n".join(lines))


for which in sys.argv[1:]:
    {"sf": shared_factors, "lv": learned_views, "lvs": learned_views_study, "ttc": temperature_seeds, "tts": toy_temperature_seeds,
     "cdc": crop_distance_seeds}[which]()
