"""The sweet-spot report: the fit against a closed form and a slow reference, warnings, files,
and its verdicts on synthetic studies with a known answer (one seed and several)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution

from infomin.search.report import build_report, comparability_warnings, fit_sweet_spot, make_report
from infomin.search.results import CandidateSeeds


def slow_quadratic_fit(x, y):
    """Least squares from the normal equations, summed term by term: (X^T X) beta = X^T y."""
    s = [sum(xi ** p for xi in x) for p in range(5)]
    t = [sum(yi * xi ** p for xi, yi in zip(x, y, strict=True)) for p in range(3)]
    a = [[s[i + j] for j in range(3)] for i in range(3)]  # rows: powers 0, 1, 2
    c0, c1, c2 = np.linalg.solve(np.array(a), np.array(t))
    return c2, c1, c0


def test_closed_form_reverse_u_is_located_exactly():
    x = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    y = [0.9 - 0.2 * (v - 1.75) ** 2 for v in x]
    s = fit_sweet_spot(x, y)
    assert s.interior
    assert s.i_nce == pytest.approx(1.75, abs=1e-9)
    assert s.accuracy == pytest.approx(0.9, abs=1e-9)
    assert s.r2 == pytest.approx(1.0)


def test_fit_matches_the_normal_equations_on_noisy_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 4.0, 12)
    y = 0.6 - 0.05 * (x - 2.2) ** 2 + rng.normal(0, 0.01, 12)
    s = fit_sweet_spot(x, y)
    a, b, c = slow_quadratic_fit(x.tolist(), y.tolist())
    assert s.coef == pytest.approx((a, b, c), rel=1e-6)
    assert s.i_nce == pytest.approx(-b / (2 * a), rel=1e-6)
    assert 0.0 < s.r2 <= 1.0


def test_monotone_data_puts_the_spot_at_the_end_and_says_so():
    x = [0.5, 1.0, 1.5, 2.0]
    s = fit_sweet_spot(x, [0.1, 0.2, 0.3, 0.4])
    assert not s.interior and s.i_nce == pytest.approx(2.0)
    s = fit_sweet_spot(x, [0.4, 0.3, 0.2, 0.1])
    assert not s.interior and s.i_nce == pytest.approx(0.5)
    s = fit_sweet_spot(x, [0.1, 0.3, 0.3, 0.1 + 1e-9])  # an upward parabola has no interior maximum
    s_up = fit_sweet_spot(x, [0.4, 0.1, 0.1, 0.4])
    assert s.interior and not s_up.interior


def test_too_few_points_or_values_give_no_fit():
    assert fit_sweet_spot([1.0, 2.0, 3.0], [0.1, 0.3, 0.2]) is None
    assert fit_sweet_spot([1.0, 1.0, 2.0, 2.0], [0.1, 0.2, 0.3, 0.4]) is None  # 2 distinct x
    assert fit_sweet_spot([1.0, 2.0, math.nan, 3.0, 4.0], [0.1, 0.2, 0.3, math.inf, 0.1]) is None
    assert fit_sweet_spot([], []) is None


def test_warnings_for_mixed_k_tau_encoder_and_saturation():
    rows = [{"mi/k": 255.0, "mi/nce": 1.0, "mi/log_k": math.log(255), "temperature": 0.2, "encoder": "convnet"},
            {"mi/k": 127.0, "mi/nce": 1.0, "mi/log_k": math.log(127), "temperature": 0.2, "encoder": "convnet"}]
    w = comparability_warnings(rows)
    assert len(w) == 1 and "differ in K" in w[0] and "127, 255" in w[0]
    rows[1].update({"mi/k": 255.0, "mi/log_k": math.log(255), "temperature": 0.5, "encoder": "resnet18"})
    w = comparability_warnings(rows)
    assert any("tau" in m for m in w) and any("encoder" in m for m in w) and not any("differ in K" in m for m in w)
    same = [{"mi/k": 63.0, "mi/log_k": math.log(63), "mi/nce": 0.95 * math.log(63), "temperature": 0.2}] * 3
    assert any("saturated" in m for m in comparability_warnings(same))
    half = same[:1] + [{"mi/k": 63.0, "mi/log_k": math.log(63), "mi/nce": 1.0, "temperature": 0.2}] * 2
    assert comparability_warnings(half) == []


def _study(points, *, ks=None):
    """A real in-memory Optuna study whose trials carry the metrics a worker stores."""
    study = optuna.create_study(study_name="synthetic", direction="maximize")
    study.set_user_attr("infomin.metric", "eval/linear_acc")
    for i, (mi, acc) in enumerate(points):
        k = (ks or [255.0] * len(points))[i]
        study.add_trial(optuna.trial.create_trial(
            params={"space": f"s{i}", "distance": float(i)},
            distributions={"space": CategoricalDistribution([f"s{j}" for j in range(len(points))]),
                           "distance": FloatDistribution(0.0, 22.0)},
            value=acc,
            user_attrs={"metrics": {"eval/linear_acc": acc, "mi/nce": mi, "mi/log_k": math.log(k), "mi/k": k,
                                    "eval/alignment": 0.5, "eval/uniformity": -2.0, "eval/tolerance": 0.7},
                        "train": {"temperature": 0.2, "encoder": "convnet"},
                        "views": {"kind": "patch_distance", "size": 16, "distance": float(i)}}))
    return study


def test_report_writes_table_plots_and_a_usable_best_preset(tmp_path):
    from infomin.views import build_views

    pts = [(m, 0.8 - 0.1 * (m - 2.0) ** 2) for m in (0.5, 1.0, 1.5, 2.5, 3.0, 3.5)]
    rep = make_report(_study(pts), tmp_path / "report", log=False)
    assert rep.sweet_spot is not None and rep.sweet_spot.i_nce == pytest.approx(2.0, abs=1e-6)
    assert {"table", "seeds", "sweet_spot", "history", "importances", "best_views", "markdown"} <= set(rep.files)
    for p in rep.files.values():
        assert p.is_file() and p.stat().st_size > 0
    rows = (tmp_path / "report" / "table.csv").read_text().splitlines()
    assert rows[0].startswith("rank,trial,label,params,n_seeds,seeds,mean,sd,ci_low,ci_high") and len(rows) == 7
    spec = yaml.safe_load(rep.files["best_views"].read_text())
    best = max(range(len(pts)), key=lambda i: pts[i][1])
    assert spec == {"kind": "patch_distance", "size": 16, "distance": float(best)}
    build_views(str(rep.files["best_views"]))  # what `infomin train --views <file>` does first
    assert rep.warnings == []


def test_a_one_seed_report_says_differences_are_not_tested(tmp_path):
    pts = [(m, 0.8 - 0.1 * (m - 2.0) ** 2) for m in (0.5, 1.0, 1.5, 2.5, 3.0, 3.5)]
    rep = make_report(_study(pts), tmp_path / "r", log=False)
    assert rep.seed_counts == (1, 1) and not rep.tested and rep.bootstrap is None
    assert all(c.verdict in ("best", "untested") for c in rep.candidates)
    assert all(c.metric.ci is None and c.metric.sd is None for c in rep.candidates)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "One seed per candidate: differences between candidates are not tested" in md
    assert "untested, one seed per candidate" in md and "≈ best" not in md and "worse" not in md
    table = (tmp_path / "r" / "table.csv").read_text().splitlines()[1].split(",")
    assert table[7:10] == ["", "", ""]                                  # no sd, no interval invented


def _repeated_study(curve, n_seeds, *, seed_sd=0.02, noise_sd=0.004, rng=0, direction="maximize"):
    """A study with repeats: per-seed metrics in ``seed/<s>/metrics`` trial attributes.

    ``curve`` lists (I_NCE, true accuracy); seed ``s`` adds a shift shared by every candidate
    (the same data and initial weights) and independent noise, as real seeds do.
    """
    gen = np.random.default_rng(rng)
    shift = gen.normal(0, seed_sd, n_seeds)
    study = optuna.create_study(study_name="repeats", direction=direction)
    study.set_user_attr("infomin.metric", "eval/linear_acc")
    for i, (mi, acc) in enumerate(curve):
        attrs = {"train": {"temperature": 0.2, "encoder": "convnet"},
                 "views": {"kind": "patch_distance", "size": 16, "distance": float(i)}}
        accs = []
        for s in range(n_seeds):
            a = acc + shift[s] + gen.normal(0, noise_sd)
            accs.append(a)
            attrs[f"seed/{s}/metrics"] = {"eval/linear_acc": a, "mi/nce": mi + gen.normal(0, 0.03),
                                          "mi/log_k": math.log(255), "mi/k": 255.0, "eval/n_test": 500.0,
                                          "eval/alignment": 0.5}
            attrs[f"seed/{s}/mlflow_run_id"] = f"run-{i}-{s}"
        study.add_trial(optuna.trial.create_trial(
            params={"distance": float(i)}, distributions={"distance": FloatDistribution(0.0, 22.0)},
            value=float(np.mean(accs)), user_attrs=attrs))
    return study


CURVE = [(0.5, 0.575), (1.0, 0.70), (1.5, 0.775), (2.0, 0.80), (2.02, 0.80), (2.5, 0.775), (3.5, 0.575)]


def test_a_report_with_repeats_marks_ties_and_losers_and_locates_the_known_peak(tmp_path):
    rep = make_report(_repeated_study(CURVE, 4), tmp_path / "r", log=False)
    by_distance = {c.candidate.params["distance"]: c for c in rep.candidates}
    assert rep.seed_counts == (4, 4) and rep.tested
    assert rep.best.candidate.params["distance"] in (3.0, 4.0)            # one of the two true peaks
    twin = by_distance[7.0 - rep.best.candidate.params["distance"]]
    assert twin.verdict == "≈ best" and twin.comparison.ci[0] < 0 < twin.comparison.ci[1]
    for far in (0.0, 6.0, 1.0):
        c = by_distance[far]
        assert c.verdict == "worse" and c.comparison.ci[1] < 0 and c.comparison.p < c.comparison.alpha
    assert all(c.comparison.alpha == pytest.approx(0.05 / 6) for c in rep.candidates if c.comparison)
    s = by_distance[0.0].metric
    assert s.n == 4 and s.ci[0] < s.mean < s.ci[1] and s.probe_se == pytest.approx(
        math.sqrt(s.mean * (1 - s.mean) / 500))
    assert rep.bootstrap.located and rep.bootstrap.i_nce_ci[0] < 2.0 < rep.bootstrap.i_nce_ci[1]
    assert rep.bootstrap.accuracy_ci[0] < 0.80 + 0.02 and rep.bootstrap.accuracy_ci[1] > 0.80 - 0.02
    md = (tmp_path / "r" / "report.md").read_text()
    assert "4 seeds per candidate (7 candidates)" in md and "How to read this:" in md
    assert md.count("| worse |") >= 3 and "| ≈ best |" in md and "Sweet spot: I_NCE = " in md
    seeds = (tmp_path / "r" / "seeds.csv").read_text().splitlines()
    assert len(seeds) == 1 + 7 * 4 and "run-0-0" in "".join(seeds)
    assert yaml.safe_load(rep.files["best_views"].read_text())["distance"] == rep.best.candidate.params["distance"]


def test_a_study_whose_means_are_not_a_reverse_u_locates_no_peak(tmp_path):
    # what the quickstart shows: which factors are shared matters, not I_NCE alone
    zig = [(0.2, 0.15), (2.0, 0.21), (3.4, 0.36), (3.6, 0.10), (4.4, 0.20)]
    rep = make_report(_repeated_study(zig, 3, noise_sd=0.01), tmp_path / "r", log=False)
    assert rep.lack_of_fit is not None and not rep.lack_of_fit.fits and not rep.peak_located
    assert rep.sweet_spot_text.startswith("no sweet spot located: the quadratic does not fit")
    assert "the quadratic does not fit the candidate means" in (tmp_path / "r" / "report.md").read_text()
    fine = make_report(_repeated_study(CURVE, 3), tmp_path / "c", log=False)
    assert fine.lack_of_fit.fits and fine.peak_located


def test_a_monotone_study_with_repeats_locates_no_peak(tmp_path):
    rising = [(x, 0.3 + 0.1 * x) for x in (0.5, 1.0, 1.5, 2.0, 2.5)]
    rep = make_report(_repeated_study(rising, 3), tmp_path / "r", log=False)
    assert rep.bootstrap is not None and not rep.bootstrap.located
    assert rep.sweet_spot_text.startswith("no sweet spot located")
    assert any("no interior maximum in most resamples" in w for w in rep.warnings)


def test_build_report_takes_candidates_directly_and_minimises(tmp_path):
    cands = [CandidateSeeds(i, f"c{i}", {"i": i}, {s: {"loss": 1.0 + 0.5 * i + 0.01 * s * (i % 2)} for s in range(3)})
             for i in range(3)]
    rep = build_report(cands, metric="loss", maximize=False, n_resamples=50)
    assert [c.candidate.number for c in rep.candidates] == [0, 1, 2] and rep.best.verdict == "best"
    assert rep.candidates[2].verdict == "worse" and rep.candidates[0].metric.probe_se is None  # not an accuracy
    assert rep.sweet_spot is None and rep.sweet_spot_text.startswith("no sweet spot: the study minimises loss")
    missing = build_report([*cands, CandidateSeeds(9, "x", {"i": 9}, {0: {"other": 1.0}})], metric="loss",
                           maximize=False, n_resamples=50)
    assert len(missing.candidates) == 3 and any("trial 9 (x) has no loss" in w for w in missing.warnings)


def test_report_warns_on_mixed_k_and_on_too_few_trials(tmp_path):
    rep = make_report(_study([(1.0, 0.5), (2.0, 0.6)], ks=[255.0, 127.0]), tmp_path / "r", log=False)
    assert rep.sweet_spot is None
    assert any("differ in K" in w for w in rep.warnings)
    assert any("too few for a fit" in w for w in rep.warnings)
    assert "Warning:** trials differ in K" in (tmp_path / "r" / "report.md").read_text()
