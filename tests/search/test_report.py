"""The sweet-spot report: the fit against a closed form and a slow reference, warnings, files."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution

from infomin.search.report import comparability_warnings, fit_sweet_spot, make_report


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
    assert {"table", "sweet_spot", "history", "importances", "best_views", "markdown"} <= set(rep.files)
    for p in rep.files.values():
        assert p.is_file() and p.stat().st_size > 0
    rows = (tmp_path / "report" / "table.csv").read_text().splitlines()
    assert rows[0].startswith("trial,state,params,mi/nce,mi/log_k,accuracy") and len(rows) == 7
    spec = yaml.safe_load(rep.files["best_views"].read_text())
    best = max(range(len(pts)), key=lambda i: pts[i][1])
    assert spec == {"kind": "patch_distance", "size": 16, "distance": float(best)}
    build_views(str(rep.files["best_views"]))  # what `infomin train --views <file>` does first
    assert rep.warnings == []


def test_report_warns_on_mixed_k_and_on_too_few_trials(tmp_path):
    rep = make_report(_study([(1.0, 0.5), (2.0, 0.6)], ks=[255.0, 127.0]), tmp_path / "r", log=False)
    assert rep.sweet_spot is None
    assert any("differ in K" in w for w in rep.warnings)
    assert any("too few for a fit" in w for w in rep.warnings)
    assert "Warning:** trials differ in K" in (tmp_path / "r" / "report.md").read_text()
