"""Statistics over seeds: closed forms, slow references, and verdicts on simulated studies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from infomin.errors import SpecError
from infomin.search.stats import (
    SAME,
    UNTESTED,
    WORSE,
    bootstrap_means,
    bootstrap_sweet_spot,
    compare_seeds,
    compare_with_best,
    detectable_difference,
    fit_many,
    fit_sweet_spot,
    lack_of_fit,
    paired_comparison,
    paired_power,
    paired_tests,
    per_comparison_alpha,
    percentile_interval,
    probe_error,
    summarize,
    sweet_spot_verdict,
)

# Student's t quantiles from printed tables: t_{0.975, 1} and t_{0.975, 2}.
T975_DF1, T975_DF2 = 12.7062047, 4.3026527


# -- one candidate -------------------------------------------------------------------------

def test_t_interval_matches_a_hand_computation():
    y = [0.61, 0.64, 0.60]
    mean = (0.61 + 0.64 + 0.60) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in y) / 2)
    s = summarize(y)
    assert s.n == 3 and s.mean == pytest.approx(mean) and s.sd == pytest.approx(sd)
    assert s.sem == pytest.approx(sd / math.sqrt(3))
    assert s.ci == pytest.approx((mean - T975_DF2 * sd / math.sqrt(3), mean + T975_DF2 * sd / math.sqrt(3)), abs=1e-6)
    two = summarize([0.5, 0.6])   # sd = 0.0707, sem = 0.05
    assert two.ci == pytest.approx((0.55 - T975_DF1 * 0.05, 0.55 + T975_DF1 * 0.05), abs=1e-6)
    lo90 = summarize(y, level=0.90).ci
    assert s.ci[0] < lo90[0] < lo90[1] < s.ci[1]


def test_one_seed_has_no_spread_and_no_interval_but_keeps_the_probe_error():
    s = summarize([0.7], n_test=400)
    assert s.n == 1 and s.sd is None and s.sem is None and s.ci is None
    assert s.probe_se == pytest.approx(math.sqrt(0.7 * 0.3 / 400))
    assert summarize([0.7]).probe_se is None
    assert summarize([1.5, 2.5], n_test=400).probe_se is None   # not a proportion
    assert summarize([0.4, 0.4, 0.4]).ci == pytest.approx((0.4, 0.4))


def test_probe_error_is_the_binomial_se_with_wilsons_interval():
    p, n, z = 0.62, 500, stats.norm.ppf(0.975)
    se, (lo, hi) = probe_error(p, n)
    assert se == pytest.approx(math.sqrt(p * (1 - p) / n))
    k = round(p * n) / n     # Wilson's score interval, written out
    centre = (k + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(k * (1 - k) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-9)
    _, (lo0, hi0) = probe_error(0.0, 100)
    assert lo0 == 0.0 and 0 < hi0 < 0.05
    for bad in (0, -3, 2.5, True):
        with pytest.raises(SpecError, match="n_test"):
            probe_error(0.5, bad)
    with pytest.raises(SpecError, match="p: got 1.2"):
        probe_error(1.2, 100)


def test_bad_input_names_the_field():
    with pytest.raises(SpecError, match="values"):
        summarize([])
    with pytest.raises(SpecError, match="values"):
        summarize([0.5, math.nan])
    with pytest.raises(SpecError, match="level: got 95"):
        summarize([0.5, 0.6], level=95)
    with pytest.raises(SpecError, match="per_seed"):
        compare_with_best([])


# -- paired comparisons --------------------------------------------------------------------

def slow_paired_t(best, other):
    """The paired t-test from its formula: t = mean(d) / (sd(d) / sqrt(n)), two-sided p from the
    regularized incomplete beta function, p = I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    seeds = sorted(set(best) & set(other))
    d = [other[s] - best[s] for s in seeds]
    n = len(d)
    mean = sum(d) / n
    var = sum((v - mean) ** 2 for v in d) / (n - 1)
    t = mean / math.sqrt(var / n)
    df = n - 1
    return mean, math.sqrt(var), t, float(special.betainc(df / 2, 0.5, df / (df + t * t)))


def test_paired_test_matches_scipy_and_the_slow_reference():
    best = {0: 0.612, 1: 0.640, 2: 0.598, 3: 0.633, 4: 0.621}
    other = {0: 0.590, 1: 0.631, 2: 0.570, 3: 0.629, 4: 0.600, 9: 0.9}   # seed 9 is not shared
    c = paired_comparison(best, other, alpha=0.05)
    mean, sd, t, p = slow_paired_t(best, other)
    ref = stats.ttest_rel([other[s] for s in range(5)], [best[s] for s in range(5)])
    assert c.seeds == (0, 1, 2, 3, 4) and c.n == 5
    assert c.diff == pytest.approx(mean) and c.sd == pytest.approx(sd)
    assert c.t == pytest.approx(t) == pytest.approx(ref.statistic)
    assert c.p == pytest.approx(p) == pytest.approx(ref.pvalue)
    half = 2.7764451 * sd / math.sqrt(5)   # t_{0.975, 4}
    assert c.ci == pytest.approx((mean - half, mean + half), abs=1e-6)
    assert c.verdict == WORSE and c.indistinguishable is False and p < 0.05
    strict = paired_comparison(best, other, alpha=0.001)
    assert strict.verdict == SAME and strict.indistinguishable is True
    assert strict.ci[0] < c.ci[0] and c.ci[1] < strict.ci[1] < 0 or strict.ci[1] > 0


def test_paired_test_direction_edge_cases_and_untested():
    assert paired_comparison({0: 0.5}, {0: 0.4}).verdict == UNTESTED
    c = paired_comparison({0: 0.5, 1: 0.6}, {2: 0.4, 3: 0.5})
    assert c.verdict == UNTESTED and c.indistinguishable is None and c.diff == pytest.approx(-0.1) and c.p is None
    same = paired_comparison({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6})
    assert same.p == 1.0 and same.verdict == SAME
    shifted = paired_comparison({0: 0.5, 1: 0.6}, {0: 0.4, 1: 0.5})   # every seed 0.1 below: p = 0
    assert shifted.p == 0.0 and shifted.verdict == WORSE
    better = paired_comparison({0: 0.5, 1: 0.6, 2: 0.55}, {0: 0.7, 1: 0.81, 2: 0.74})
    assert better.p < 0.05 and better.verdict == SAME   # above the best on shared seeds is not "worse"
    low = paired_comparison({0: 0.5, 1: 0.6, 2: 0.55}, {0: 0.7, 1: 0.81, 2: 0.74}, maximize=False)
    assert low.verdict == WORSE


def test_compare_with_best_picks_the_best_mean_and_adjusts_the_level():
    per_seed = [{0: 0.50, 1: 0.52, 2: 0.51}, {0: 0.60, 1: 0.61, 2: 0.62}, {0: 0.59, 1: 0.62, 2: 0.60},
                {0: 0.40, 1: 0.41, 2: 0.43}]
    best, comps = compare_with_best(per_seed)
    assert best == 1 and comps[1] is None
    assert [c.alpha for c in comps if c] == [pytest.approx(0.05 / 3)] * 3
    assert [c and c.verdict for c in comps] == [WORSE, None, SAME, WORSE]
    best_min, _ = compare_with_best(per_seed, maximize=False)
    assert best_min == 3
    assert per_comparison_alpha(2) == 0.05 and per_comparison_alpha(1) == 0.05
    assert per_comparison_alpha(5, 0.1) == pytest.approx(0.025)


def _simulate(rng, means, n_seeds, n_studies, seed_sd=0.02, noise_sd=0.01):
    """Studies ``(n_studies, m, n_seeds)`` of candidates with true ``means``: a seed effect shared
    by every candidate (the same data subset and initial weights) plus independent noise."""
    shared = rng.normal(0, seed_sd, (n_studies, 1, n_seeds))
    return np.asarray(means)[None, :, None] + shared + rng.normal(0, noise_sd, (n_studies, len(means), n_seeds))


def test_the_batched_comparison_gives_the_same_verdicts_as_the_per_candidate_one():
    rng = np.random.default_rng(11)
    studies = _simulate(rng, [0.60, 0.60, 0.59, 0.55], n_seeds=3, n_studies=40)
    batch = compare_seeds(studies)
    for r, study in enumerate(studies):
        best, comps = compare_with_best([dict(enumerate(row)) for row in study])
        assert best == batch["best"][r]
        for i, c in enumerate(comps):
            if c is None:
                assert batch["same"][r, i] and batch["diff"][r, i] == 0
                continue
            assert c.indistinguishable == batch["same"][r, i]
            assert c.p == pytest.approx(batch["p"][r, i]) and c.diff == pytest.approx(batch["diff"][r, i])
            assert c.ci == pytest.approx((batch["low"][r, i], batch["high"][r, i]))
    assert batch["same"].mean() < 1.0 and batch["same"].mean() > 0.5   # both verdicts occur


def test_two_equal_candidates_are_indistinguishable_at_the_stated_rate():
    rng = np.random.default_rng(12)
    for n_seeds in (3, 5):
        r = compare_seeds(_simulate(rng, [0.6, 0.6], n_seeds=n_seeds, n_studies=20000))
        kept = r["same"].all(axis=1).mean()
        mc = math.sqrt(0.95 * 0.05 / 20000)
        assert abs(kept - 0.95) < 4 * mc, (n_seeds, kept)   # exactly 1 - alpha with two candidates


def test_candidates_as_good_as_the_best_are_kept_at_least_at_the_stated_rate():
    # five equal candidates: the best is picked for its high mean, yet each other one is
    # marked indistinguishable at least 1 - alpha of the time (Bonferroni at alpha / 4)
    rng = np.random.default_rng(5)
    r = compare_seeds(_simulate(rng, [0.6] * 5, n_seeds=3, n_studies=10000))
    others = r["same"].sum(axis=1) - 1          # the best is always "same"
    kept = others.sum() / (4 * len(others))
    assert kept > 0.95 + 3 * math.sqrt(0.95 * 0.05 / (4 * len(others)))
    # without the adjustment it would not hold (the winner's curse): the same comparisons at 5% each
    studies = _simulate(np.random.default_rng(5), [0.6] * 5, n_seeds=3, n_studies=10000)
    best_rows = np.take_along_axis(studies, r["best"][:, None, None], axis=1)
    unadjusted = ~paired_tests(best_rows, studies, alpha=0.05)["worse"]
    assert (unadjusted.sum() - len(studies)) / (4 * len(studies)) < 0.94


def test_a_truly_better_candidate_is_found_as_often_as_the_power_formula_says():
    rng = np.random.default_rng(7)
    noise_sd, n = 0.01, 5
    sd_diff = noise_sd * math.sqrt(2)           # the shared seed effect cancels in the pairs
    d = detectable_difference(n, 0.05)          # 80% power
    assert paired_power(d, n) == pytest.approx(0.8, abs=1e-6)
    for effect in (d, 3.0):
        expected = paired_power(effect, n)
        r = compare_seeds(_simulate(rng, [0.6, 0.6 - effect * sd_diff], n_seeds=n, n_studies=20000,
                                    noise_sd=noise_sd))
        found = (r["best"] == 0) & r["worse"][:, 1]
        mc = math.sqrt(expected * (1 - expected) / 20000)
        assert abs(found.mean() - expected) < 4 * mc + 0.003, (effect, found.mean(), expected)
    assert paired_power(3.0, 5) > 0.95


def test_power_formula_textbook_values_and_monotonicity():
    assert paired_power(1.0, 10) == pytest.approx(0.8031, abs=5e-4)   # Cohen's tables: n = 10, d = 1
    assert paired_power(0.0, 10) == pytest.approx(0.05, abs=1e-9)
    assert paired_power(1.0, 1) == 0.0 and detectable_difference(1) is None
    assert detectable_difference(3, 0.0125) > detectable_difference(5, 0.0125) > detectable_difference(10, 0.0125)
    for n in (2, 3, 5):   # scipy's noncentral t is NaN in a far tail: the power must stay defined
        assert 0.0 <= paired_power(5.0, n, 0.0125) <= 1.0


# -- the bootstrap -------------------------------------------------------------------------

def test_bootstrap_of_a_normal_mean_approaches_the_normal_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, 200)
    (means,) = bootstrap_means([x], 10000, np.random.default_rng(1))
    lo, hi = percentile_interval(means[:, 0], 0.95)
    half = stats.norm.ppf(0.975) * x.std(ddof=1) / math.sqrt(x.size)
    assert lo == pytest.approx(x.mean() - half, abs=0.05 * half)
    assert hi == pytest.approx(x.mean() + half, abs=0.05 * half)


def test_bootstrap_variance_of_the_mean_is_exact_with_the_correction():
    # n = 3 seeds: plain resampling has variance (n-1)/n * s^2/n; corrected, s^2/n
    x = np.array([0.61, 0.64, 0.60])
    s2n = x.var(ddof=1) / 3
    (plain,) = bootstrap_means([x], 200000, np.random.default_rng(2), correct=False)
    (fixed,) = bootstrap_means([x], 200000, np.random.default_rng(2), correct=True)
    assert plain[:, 0].var() == pytest.approx(2 / 3 * s2n, rel=0.02)
    assert fixed[:, 0].var() == pytest.approx(s2n, rel=0.02)
    assert fixed[:, 0].mean() == pytest.approx(x.mean(), abs=1e-3)
    (one,) = bootstrap_means([np.array([0.5])], 10, np.random.default_rng(0))
    assert np.all(one == 0.5)


def test_fit_many_matches_fit_sweet_spot_row_by_row():
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0.2, 4.0, (300, 6)), axis=1)
    a = rng.uniform(-0.2, 0.2, (300, 1))
    y = a * (x - rng.uniform(0, 4, (300, 1))) ** 2 + rng.normal(0, 0.05, x.shape)
    many = fit_many(x, y)
    assert 0 < many["interior"].mean() < 1     # both kinds of rows are exercised
    for r in range(300):
        one = fit_sweet_spot(x[r], y[r])
        assert many["interior"][r] == one.interior
        assert many["i_nce"][r] == pytest.approx(one.i_nce, rel=1e-7, abs=1e-9)
        assert many["accuracy"][r] == pytest.approx(one.accuracy, rel=1e-7, abs=1e-9)
        assert many["coef"][r] == pytest.approx(one.coef, rel=1e-6, abs=1e-9)


def _sweet_data(rng, n_seeds, vertex=2.0, peak=0.8, curv=0.1, acc_sd=0.01, x_sd=0.03):
    centres = np.array([0.5, 1.0, 1.5, 2.5, 3.0, 3.5])
    xs = [c + rng.normal(0, x_sd, n_seeds) for c in centres]
    ys = [peak - curv * (x - vertex) ** 2 + rng.normal(0, acc_sd, n_seeds) for x in xs]
    return xs, ys


def test_sweet_spot_bootstrap_recovers_a_known_vertex():
    rng = np.random.default_rng(4)
    xs, ys = _sweet_data(rng, 5)
    b = bootstrap_sweet_spot(xs, ys, n_resamples=1000, rng=0)
    assert b.located and b.interior_share > 0.95 and b.fixed == 0
    assert b.i_nce_ci[0] < 2.0 < b.i_nce_ci[1] and b.i_nce_ci[1] - b.i_nce_ci[0] < 0.5
    assert b.accuracy_ci[0] < 0.8 < b.accuracy_ci[1]
    lo, hi = b.band([1.0, 2.0, 3.0])
    assert np.all(lo < hi) and lo[1] < 0.8 < hi[1]
    again = bootstrap_sweet_spot(xs, ys, n_resamples=1000, rng=0)
    assert again.i_nce_ci == b.i_nce_ci                      # seeded: the same report twice
    fit = fit_sweet_spot([x.mean() for x in xs], [y.mean() for y in ys])
    text = sweet_spot_verdict(fit, b)
    assert text.startswith("sweet spot: I_NCE = ") and "interior maximum in" in text


def test_sweet_spot_interval_covers_the_vertex_in_most_simulated_studies():
    rng = np.random.default_rng(8)
    hits = [b.i_nce_ci[0] <= 2.0 <= b.i_nce_ci[1]
            for b in (bootstrap_sweet_spot(*_sweet_data(rng, 3, acc_sd=0.02), n_resamples=400, rng=i)
                      for i in range(60))]
    assert np.mean(hits) >= 0.8, np.mean(hits)


def test_shared_seeds_give_the_peak_accuracy_a_t_interval_over_per_seed_fits():
    rng = np.random.default_rng(9)
    xs, ys = _sweet_data(rng, 4)
    seeds = [(10, 11, 12, 13)] * len(xs)
    b = bootstrap_sweet_spot(xs, ys, seeds=seeds, n_resamples=200)
    assert b.accuracy_method == "per-seed fits" and b.seed_coef.shape == (4, 3)
    # slow reference: np.polyfit once per seed, evaluated at the peak of the fit of the means
    peak = fit_sweet_spot([x.mean() for x in xs], [y.mean() for y in ys]).i_nce
    values = [np.polyval(np.polyfit([x[s] for x in xs], [y[s] for y in ys], 2), peak) for s in range(4)]
    half = 3.1824463 * np.std(values, ddof=1) / 2          # t_{0.975, 3} * sd / sqrt(4)
    assert b.accuracy_ci == pytest.approx((np.mean(values) - half, np.mean(values) + half), rel=1e-6)
    lo, hi = b.band([peak])
    assert (lo[0], hi[0]) == pytest.approx(b.accuracy_ci, rel=1e-6)
    unpaired = bootstrap_sweet_spot(xs, ys, seeds=[(0, 1, 2, 3)] + [(10, 11, 12, 13)] * 5, n_resamples=200)
    assert unpaired.accuracy_method == "bootstrap" and unpaired.accuracy_ci == unpaired.accuracy_ci_bootstrap
    with pytest.raises(SpecError, match="seeds"):
        bootstrap_sweet_spot(xs, ys, seeds=[(0, 1)] * len(xs))


def test_the_peak_accuracy_interval_holds_its_level_when_seed_effects_are_shared():
    # a seed moves every candidate's accuracy together (same data, same initial weights):
    # the per-seed interval keeps its level, resampling each candidate alone does not
    gen = np.random.default_rng(10)
    centres = np.array([0.5, 1.0, 1.5, 2.5, 3.0, 3.5])
    per_seed_hits, boot_hits = [], []
    for i in range(150):
        x = centres[:, None] + gen.normal(0, 0.03, (6, 3))
        y = 0.8 - 0.1 * (x - 2.0) ** 2 + gen.normal(0, 0.02, (1, 3)) + gen.normal(0, 0.01, (6, 3))
        b = bootstrap_sweet_spot(list(x), list(y), seeds=[(0, 1, 2)] * 6, n_resamples=300, rng=i)
        per_seed_hits.append(b.accuracy_ci[0] <= 0.8 <= b.accuracy_ci[1])
        boot_hits.append(b.accuracy_ci_bootstrap[0] <= 0.8 <= b.accuracy_ci_bootstrap[1])
    assert np.mean(per_seed_hits) > 0.95 - 3 * math.sqrt(0.95 * 0.05 / 150)
    assert np.mean(boot_hits) < np.mean(per_seed_hits)


def test_a_monotone_curve_locates_no_sweet_spot():
    rng = np.random.default_rng(6)
    xs = [c + rng.normal(0, 0.03, 3) for c in (0.5, 1.0, 1.5, 2.0, 2.5)]
    ys = [0.3 + 0.1 * x + rng.normal(0, 0.01, 3) for x in xs]
    b = bootstrap_sweet_spot(xs, ys, n_resamples=500)
    fit = fit_sweet_spot([x.mean() for x in xs], [y.mean() for y in ys])
    assert not b.located and b.interior_share < 0.5
    assert "no interior maximum in most resamples" in sweet_spot_verdict(fit, b)


def test_one_seed_studies_get_no_bootstrap_and_say_so():
    xs = [[0.5], [1.0], [1.5], [2.0], [2.5]]
    ys = [[0.6], [0.7], [0.75], [0.7], [0.6]]
    assert bootstrap_sweet_spot(xs, ys) is None
    fit = fit_sweet_spot([x[0] for x in xs], [y[0] for y in ys])
    text = sweet_spot_verdict(fit, None, n_seeds=1)
    assert "untested, one seed per candidate" in text and "not estimated" in text and "[" not in text
    best, comps = compare_with_best([dict([(0, y[0])]) for y in ys])
    assert all(c is None or c.verdict == UNTESTED for c in comps)
    # a mix: one-seed candidates are held fixed and the words say the interval is too narrow
    mixed = bootstrap_sweet_spot([[0.5, 0.52], *xs[1:]], [[0.6, 0.61], *ys[1:]], n_resamples=100)
    assert mixed.fixed == 4 and "too narrow" in sweet_spot_verdict(fit, mixed)


def slow_lack_of_fit(x, y):
    """Lack of fit in a randomized block design, written out with loops: y[i][j] is candidate i, seed j;
    the error is measured on each seed's y moved along the fitted slope to its candidate's mean x."""
    m, n = len(y), len(y[0])
    xbar, ybar = [sum(r) / n for r in x], [sum(r) / n for r in y]
    a, b, c = np.polyfit(xbar, ybar, 2)
    ss_fit = sum(n * (ybar[i] - (a * xbar[i] ** 2 + b * xbar[i] + c)) ** 2 for i in range(m))
    u = [[y[i][j] - (2 * a * xbar[i] + b) * (x[i][j] - xbar[i]) for j in range(n)] for i in range(m)]
    ubar = [sum(r) / n for r in u]
    col = [sum(u[i][j] for i in range(m)) / m for j in range(n)]
    grand = sum(ubar) / m
    ss_e = sum((u[i][j] - ubar[i] - col[j] + grand) ** 2 for i in range(m) for j in range(n))
    d1, d2 = m - 3, (m - 1) * (n - 1)
    f = (ss_fit / d1) / (ss_e / d2)
    return f, float(special.betainc(d2 / 2, d1 / 2, d2 / (d2 + d1 * f)))   # P(F > f), closed form


def test_lack_of_fit_matches_the_block_design_formula():
    rng = np.random.default_rng(13)
    xs, ys = _sweet_data(rng, 3)
    ys = [y + np.array([0.01, -0.02, 0.005]) for y in ys]                  # a shared seed effect
    fit = fit_sweet_spot([x.mean() for x in xs], [y.mean() for y in ys])
    lof = lack_of_fit(fit, xs, ys, seeds=[(0, 1, 2)] * 6)
    f, p = slow_lack_of_fit([list(x) for x in xs], [list(y) for y in ys])
    assert lof.method == "seed blocks" and (lof.df_fit, lof.df_error) == (3, 10)
    assert lof.f == pytest.approx(f) and lof.p == pytest.approx(p)
    pure = lack_of_fit(fit, xs, ys)                                          # seeds unknown: pooled within
    assert pure.method == "pure error" and pure.df_error == 6 * 2
    assert pure.f < lof.f          # the shared seed effect counts as noise there, hiding misfit
    assert lack_of_fit(fit, xs[:3], ys[:3]) is None and lack_of_fit(fit, [[1.0]] * 5, [[0.5]] * 5) is None


def test_lack_of_fit_rejects_at_its_level_and_finds_a_zig_zag():
    rng = np.random.default_rng(14)
    rejected = []
    for k in range(600):        # a true quadratic: rejected about 5% of the time
        xs, ys = _sweet_data(rng, 3, acc_sd=0.01, x_sd=0.3 if k % 2 else 0.03)
        if k % 2:               # accuracy follows the candidate's true I_NCE, measured with much noise
            ys = [0.8 - 0.1 * (c - 2.0) ** 2 + rng.normal(0, 0.01, 3)
                  for c in (0.5, 1.0, 1.5, 2.5, 3.0, 3.5)]
        ys = [y + shift for y, shift in zip(ys, [rng.normal(0, 0.02, 3)] * 6, strict=True)]
        fit = fit_sweet_spot([x.mean() for x in xs], [y.mean() for y in ys])
        rejected.append(not lack_of_fit(fit, xs, ys, seeds=[(0, 1, 2)] * 6).fits)
    assert abs(np.mean(rejected) - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 600)
    xs = [np.full(3, c) for c in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)]
    ys = [np.full(3, v) + rng.normal(0, 0.01, 3) for v in (0.3, 0.5, 0.2, 0.55, 0.25, 0.5)]
    fit = fit_sweet_spot([x.mean() for x in xs], [y.mean() for y in ys])
    lof = lack_of_fit(fit, xs, ys, seeds=[(0, 1, 2)] * 6)
    assert not lof.fits and lof.p < 1e-6
    b = bootstrap_sweet_spot(xs, ys, seeds=[(0, 1, 2)] * 6, n_resamples=100)
    assert sweet_spot_verdict(fit, b, lof=lof).startswith("no sweet spot located: the quadratic does not fit")


def test_bootstrap_rejects_bad_input():
    with pytest.raises(SpecError, match="n_resamples"):
        bootstrap_sweet_spot([[1.0, 1.1]] * 4, [[0.5, 0.6]] * 4, n_resamples=3)
    with pytest.raises(SpecError, match=r"accuracy\[1\]"):
        bootstrap_sweet_spot([[1.0, 1.1], [2.0, 2.1]], [[0.5, 0.6], [0.5]])
    assert bootstrap_sweet_spot([[1.0, 1.1]] * 3, [[0.5, 0.6]] * 3) is None   # too few candidates
