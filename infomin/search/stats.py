"""Statistics for studies whose candidates ran several seeds: what is real, what is noise.

A candidate (one set of views) trained with seeds ``s = 1..n`` gives metric values ``y_s``.
This module turns them into the numbers a report needs, with numpy and scipy only:

* :func:`summarize`: mean, standard deviation and the 95% t-interval of the mean over seeds
  (``mean +- t_{0.975, n-1} * sd / sqrt(n)``, :func:`scipy.stats.t.interval`), plus the
  probe's own sampling error from the test-set size (:func:`probe_error`).
* :func:`compare_with_best`: the best candidate against each other one by a paired t-test
  over the seeds they share (:func:`scipy.stats.ttest_rel`), with Bonferroni-adjusted
  levels so that a candidate truly as good as the best is marked "indistinguishable" with
  probability at least ``1 - alpha`` (:data:`ALPHA`), exactly ``1 - alpha`` with two candidates.
* :func:`fit_sweet_spot` and :func:`bootstrap_sweet_spot`: the quadratic fit of accuracy
  against I_NCE over candidate means, and a bootstrap over seeds that gives a percentile
  interval for the located I_NCE, the share of resamples whose curve has an interior
  maximum, and an interval for the accuracy at the peak (from per-seed fits when all
  candidates share their seeds, else the bootstrap), with a verdict in words.

Why paired: seeds are shared between candidates (seed ``s`` draws the same data subset,
initial weights and batch order for every candidate), so much of the seed-to-seed spread
is common to all candidates and cancels in the per-seed difference. A paired test over
shared seeds is therefore much more sensitive than comparing two intervals.

Why Bonferroni: the best candidate is chosen because its mean is highest, so comparing it
with ``m - 1`` others at an unadjusted 5% marks a candidate that is truly as good as the
best "worse" more often than 5% of the time (the winner's curse). Testing each comparison
at ``alpha / (m - 1)`` keeps it at least ``1 - alpha``, and the differences are
reported with simultaneous intervals at the same level, so "the interval excludes 0" and
"marked worse" always agree. The price is power: with few seeds only large gaps are found
(:func:`detectable_difference` says how large).

With one seed per candidate every function still works: spreads, intervals and tests are
``None`` and the verdicts say that differences are not tested; nothing is invented.

>>> s = summarize([0.61, 0.64, 0.60], n_test=500)
>>> round(s.mean, 4), round(s.sd, 4), s.n
(0.6167, 0.0208, 3)
>>> [round(v, 3) for v in s.ci]
[0.565, 0.668]
>>> round(s.probe_se, 4)
0.0217
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from infomin.errors import SpecError

#: The confidence level of every interval in the report.
LEVEL = 0.95
#: The family-wise level of the "indistinguishable from the best" verdicts.
ALPHA = 0.05
#: Bootstrap resamples for the sweet spot.
N_RESAMPLES = 2000
#: A fit needs this many candidates with 3 distinct I_NCE values.
MIN_FIT_POINTS = 4

BEST, SAME, WORSE, UNTESTED = "best", "≈ best", "worse", "untested"


def _check_level(name: str, level: float) -> None:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise SpecError(name, level, "expected a probability strictly between 0 and 1")


def _finite_values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    y = np.asarray(values, dtype=float).ravel()
    if y.size == 0:
        raise SpecError(name, list(y), "expected at least one value")
    if not np.all(np.isfinite(y)):
        raise SpecError(name, y.tolist(), "expected finite numbers")
    return y


# -- one candidate -------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """A metric over one candidate's seeds.

    ``sd`` (ddof 1), ``sem`` and ``ci`` (the ``level`` t-interval of the mean) are ``None``
    with one seed. ``probe_se``/``probe_ci`` are the binomial standard error
    ``sqrt(p (1 - p) / n_test)`` of one probe evaluation at ``p = mean`` and its Wilson
    interval: the noise of the finite test set alone (``None`` when ``n_test`` is unknown
    or the metric is not a proportion).
    """

    n: int
    mean: float
    sd: float | None
    sem: float | None
    ci: tuple[float, float] | None
    level: float
    n_test: int | None = None
    probe_se: float | None = None
    probe_ci: tuple[float, float] | None = None


def summarize(values: Sequence[float], *, level: float = LEVEL, n_test: int | None = None) -> Summary:
    """Mean, sd and the t-interval of the mean of ``values`` (one per seed); the probe's error.

    ``n_test`` (the probe's test-set size) adds :func:`probe_error` when every value is a
    proportion in [0, 1].

    >>> summarize([0.5]).ci is None
    True
    """
    _check_level("level", level)
    y = _finite_values(values)
    n, mean = int(y.size), float(y.mean())
    sd = sem = ci = None
    if n >= 2:
        sd = float(y.std(ddof=1))
        sem = sd / math.sqrt(n)
        if sem > 0:
            lo, hi = stats.t.interval(level, n - 1, loc=mean, scale=sem)
            ci = (float(lo), float(hi))
        else:
            ci = (mean, mean)
    probe_se = probe_ci = None
    if n_test is not None and np.all((y >= 0) & (y <= 1)):
        probe_se, probe_ci = probe_error(mean, n_test, level=level)
    return Summary(n=n, mean=mean, sd=sd, sem=sem, ci=ci, level=level, n_test=n_test,
                   probe_se=probe_se, probe_ci=probe_ci)


def probe_error(p: float, n_test: int, *, level: float = LEVEL) -> tuple[float, tuple[float, float]]:
    """The binomial standard error of an accuracy ``p`` measured on ``n_test`` images, and its interval.

    A probe's accuracy on ``n_test`` independent test images is a binomial proportion:
    its standard error is ``sqrt(p (1 - p) / n_test)``. The interval is Wilson's score
    interval for ``round(p * n_test)`` successes (:meth:`scipy.stats.binomtest.proportion_ci`),
    which stays inside [0, 1] near the ends. This is the error of one evaluation; the
    spread over seeds contains it.

    >>> se, (lo, hi) = probe_error(0.5, 500)
    >>> round(se, 4), round(lo, 3), round(hi, 3)
    (0.0224, 0.456, 0.544)
    """
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) or n_test < 1:
        raise SpecError("n_test", n_test, "expected the number of test images (an integer >= 1)")
    if not (isinstance(p, (int, float, np.floating)) and 0.0 <= p <= 1.0):
        raise SpecError("p", p, "expected an accuracy in [0, 1]")
    _check_level("level", level)
    se = math.sqrt(p * (1 - p) / n_test)
    k = min(n_test, max(0, round(p * n_test)))
    ci = stats.binomtest(k, n_test).proportion_ci(confidence_level=level, method="wilson")
    return se, (float(ci.low), float(ci.high))


# -- candidates against the best -----------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """A candidate against the best over their shared seeds (``diff = candidate - best``).

    ``alpha`` is the per-comparison level; ``ci`` the ``1 - alpha`` interval of the mean
    paired difference; ``p`` the two-sided p-value of the paired t-test. ``verdict`` is
    :data:`SAME` (not significantly worse), :data:`WORSE` or :data:`UNTESTED` (fewer than 2
    shared seeds: ``diff`` is then the difference of the shared seed, or of the means when
    no seed is shared, and the test fields are ``None``).
    """

    seeds: tuple[int, ...]
    diff: float
    sd: float | None
    ci: tuple[float, float] | None
    t: float | None
    p: float | None
    alpha: float
    verdict: str

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def indistinguishable(self) -> bool | None:
        """True: cannot be told apart from the best at ``alpha``; None: not tested."""
        return None if self.verdict == UNTESTED else self.verdict == SAME


def paired_comparison(best: Mapping[int, float], other: Mapping[int, float], *, alpha: float = ALPHA,
                      maximize: bool = True) -> Comparison:
    """Paired t-test of ``other`` against ``best`` over the seeds both ran (``{seed: value}``).

    ``other`` is marked :data:`WORSE` when the test rejects at ``alpha`` and the mean
    difference points the worse way (below the best when ``maximize``); a significant
    difference the other way (possible only when the two ran different seeds) is not
    "worse", so it stays :data:`SAME`. With all paired differences equal the t statistic is
    undefined: zero differences give ``p = 1``, a constant non-zero one ``p = 0``.

    >>> c = paired_comparison({0: 0.60, 1: 0.62, 2: 0.61}, {0: 0.50, 1: 0.53, 2: 0.50})
    >>> c.verdict, round(c.diff, 3), round(c.p, 4)
    ('worse', -0.1, 0.0033)
    >>> paired_comparison({0: 0.6}, {0: 0.5}).verdict
    'untested'
    """
    _check_level("alpha", alpha)
    shared = tuple(sorted(set(best) & set(other)))
    if len(shared) < 2:
        if shared:
            diff = float(other[shared[0]] - best[shared[0]])
        else:
            diff = float(np.mean(list(other.values())) - np.mean(list(best.values())))
        return Comparison(seeds=shared, diff=diff, sd=None, ci=None, t=None, p=None, alpha=alpha,
                          verdict=UNTESTED)
    a = np.array([other[s] for s in shared], dtype=float)
    b = np.array([best[s] for s in shared], dtype=float)
    r = paired_tests(b, a, alpha=alpha, maximize=maximize)
    return Comparison(seeds=shared, diff=float(r["diff"]), sd=float(r["sd"]), ci=(float(r["low"]), float(r["high"])),
                      t=float(r["t"]), p=float(r["p"]), alpha=alpha, verdict=WORSE if r["worse"] else SAME)


def paired_tests(best: np.ndarray, other: np.ndarray, *, alpha: float = ALPHA,
                 maximize: bool = True) -> dict[str, np.ndarray]:
    """The paired t-test of ``other - best`` along the last axis (seeds), batched.

    ``best`` and ``other`` broadcast to ``(..., n)`` with ``n >= 2``, seeds aligned. Returns
    arrays of shape ``(...)``: ``diff`` (mean difference), ``sd`` (of the differences), ``t``,
    ``p`` (two-sided, :func:`scipy.stats.ttest_rel`), ``low``/``high`` (the ``1 - alpha``
    interval of ``diff``) and ``worse`` (rejected at ``alpha`` in the worse direction).
    Constant differences (a zero sd) give ``p = 1`` when zero, else ``p = 0``.
    """
    best, other = np.broadcast_arrays(np.asarray(best, dtype=float), np.asarray(other, dtype=float))
    if best.shape[-1] < 2:
        raise SpecError("seeds", best.shape[-1], "a paired test needs at least 2 shared seeds")
    d = other - best
    diff, sd = d.mean(axis=-1), d.std(axis=-1, ddof=1)
    scale = np.maximum(1.0, np.abs(d).max(axis=-1))
    const = sd <= 1e-12 * scale
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)   # scipy's precision-loss note on constant rows
        res = stats.ttest_rel(other, best, axis=-1)
        ci = res.confidence_interval(confidence_level=1 - alpha)
        t = np.where(const, np.where(diff == 0, 0.0, np.copysign(np.inf, diff)), res.statistic)
    p = np.where(const, np.where(diff == 0, 1.0, 0.0), res.pvalue)
    low, high = np.where(const, diff, ci.low), np.where(const, diff, ci.high)
    worse = (p < alpha) & ((diff < 0) if maximize else (diff > 0))
    return {"diff": diff, "sd": np.where(const, 0.0, sd), "t": t, "p": p, "low": low, "high": high, "worse": worse}


def per_comparison_alpha(n_candidates: int, alpha: float = ALPHA) -> float:
    """Bonferroni: ``alpha / (m - 1)`` for the ``m - 1`` comparisons with the best (``alpha`` for m <= 2)."""
    _check_level("alpha", alpha)
    return alpha / max(1, n_candidates - 1)


def best_index(means: Sequence[float] | np.ndarray, *, maximize: bool = True) -> Any:
    """Index of the best mean along the last axis (the first on ties)."""
    m = np.asarray(means, dtype=float)
    if m.size == 0:
        raise SpecError("means", [], "expected at least one candidate")
    i = np.argmax(m, axis=-1) if maximize else np.argmin(m, axis=-1)
    return int(i) if np.ndim(i) == 0 else i


def compare_seeds(values: np.ndarray, *, maximize: bool = True, alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """:func:`compare_with_best` for candidates that all ran the same seeds, batched over studies.

    ``values`` has shape ``(..., m, n)``: ``m`` candidates by ``n >= 2`` seeds (seed ``j``
    the same for every candidate). Returns ``best`` ``(...)`` and, per candidate ``(..., m)``,
    the :func:`paired_tests` fields against the best at :func:`per_comparison_alpha` and
    ``same`` (indistinguishable from the best; True for the best itself).
    """
    v = np.asarray(values, dtype=float)
    m = v.shape[-2]
    best = best_index(v.mean(axis=-1), maximize=maximize)
    best_rows = np.take_along_axis(v, np.asarray(best)[..., None, None], axis=-2)      # (..., 1, n)
    r = paired_tests(best_rows, v, alpha=per_comparison_alpha(m, alpha), maximize=maximize)
    r["best"] = np.asarray(best)
    r["same"] = ~r["worse"]
    return r


def compare_with_best(per_seed: Sequence[Mapping[int, float]], *, maximize: bool = True,
                      alpha: float = ALPHA) -> tuple[int, list[Comparison | None]]:
    """The best candidate (by mean over its seeds) and its comparison with each other one.

    ``per_seed[i]`` is candidate ``i``'s ``{seed: value}``. Returns ``(best, comparisons)``
    with ``comparisons[best] is None``; every comparison is :func:`paired_comparison` at
    :func:`per_comparison_alpha` over the seeds it shares with the best.

    >>> best, comps = compare_with_best([{0: 0.5, 1: 0.52, 2: 0.51}, {0: 0.6, 1: 0.61, 2: 0.62},
    ...                                  {0: 0.59, 1: 0.62, 2: 0.60}])
    >>> best, [c and c.verdict for c in comps], round(comps[0].alpha, 4)
    (1, ['worse', None, '≈ best'], 0.025)
    """
    if not per_seed or any(not v for v in per_seed):
        raise SpecError("per_seed", per_seed, "expected one non-empty {seed: value} dict per candidate")
    means = [float(np.mean(list(v.values()))) for v in per_seed]
    b = best_index(means, maximize=maximize)
    a = per_comparison_alpha(len(per_seed), alpha)
    comps = [None if i == b else paired_comparison(per_seed[b], v, alpha=a, maximize=maximize)
             for i, v in enumerate(per_seed)]
    return b, comps


def paired_power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """Probability that the two-sided paired t-test at ``alpha`` finds a true mean difference of
    ``effect`` standard deviations of the paired differences with ``n`` seeds (noncentral t).

    >>> round(paired_power(1.0, 10), 3)   # the textbook n = 10, d = 1 case
    0.803
    """
    if n < 2:
        return 0.0
    df, tc = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)
    nc = abs(effect) * math.sqrt(n)
    # P(T > tc) + P(T < -tc); the far tail is written as sf at -nc (scipy's nct.cdf returns
    # NaN there for some large nc), and a tail scipy cannot evaluate is negligible
    upper, lower = stats.nct.sf(tc, df, nc), stats.nct.sf(tc, df, -nc)
    return float(np.nan_to_num(upper) + np.nan_to_num(lower))


def detectable_difference(n: int, alpha: float = ALPHA, power: float = 0.8) -> float | None:
    """The true difference (in paired standard deviations) found with probability ``power``
    by :func:`paired_power` with ``n`` seeds; ``None`` with fewer than 2 seeds.

    >>> round(detectable_difference(10), 2)
    1.0
    """
    if n < 2:
        return None
    return float(optimize.brentq(lambda d: paired_power(d, n, alpha) - power, 1e-6, 1e4, xtol=1e-10))


# -- the sweet spot ------------------------------------------------------------------------

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


def fit_many(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`fit_sweet_spot` on each row of ``x, y`` (shape ``(B, m)``) at once.

    Returns arrays of shape ``(B,)`` (``i_nce``, ``accuracy``, ``interior``) and ``coef``
    ``(B, 3)`` as ``(a, b, c)``. Solved by least squares on centred I_NCE (batched
    pseudo-inverse), then mapped back to the raw coefficients.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mu = x.mean(axis=1, keepdims=True)
    xc = x - mu
    design = np.stack([xc ** 2, xc, np.ones_like(xc)], axis=-1)            # (B, m, 3)
    a2, b2, c2 = np.einsum("bkm,bm->bk", np.linalg.pinv(design), y).T      # y = a2 u^2 + b2 u + c2, u = x - mu
    m0 = mu[:, 0]
    a, b, c = a2, b2 - 2 * a2 * m0, a2 * m0 ** 2 - b2 * m0 + c2
    low, high = x.min(axis=1), x.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(a != 0, -b / (2 * a), np.nan)
    interior = (a < 0) & (vertex > low) & (vertex < high)
    f_low, f_high = a * low ** 2 + b * low + c, a * high ** 2 + b * high + c
    end = np.where(f_high > f_low, high, low)
    x_star = np.where(interior, vertex, end)
    return {"i_nce": x_star, "accuracy": a * x_star ** 2 + b * x_star + c, "interior": interior,
            "coef": np.stack([a, b, c], axis=1)}


def bootstrap_means(samples: Sequence[np.ndarray], n_resamples: int, rng: np.random.Generator, *,
                    correct: bool = True) -> list[np.ndarray]:
    """Bootstrap the mean of each sample (rows: seeds, columns: paired quantities).

    Each sample ``(n_i, q)`` is resampled by rows with replacement ``n_resamples`` times,
    giving an array ``(n_resamples, q)`` of resampled means per sample. Plain resampling
    underestimates the variance of a mean by the factor ``(n - 1) / n`` (2/3 with 3 seeds);
    with ``correct`` each resampled mean is moved away from the sample mean by
    ``sqrt(n / (n - 1))``, the modified residuals of Davison & Hinkley (1997, *Bootstrap
    Methods and their Application*, ch. 6) for a model with only an intercept, so its
    variance is ``s^2 / n``. A sample with one row is returned unchanged (no spread to draw).
    """
    out = []
    for sample in samples:
        v = np.asarray(sample, dtype=float)
        v = v[:, None] if v.ndim == 1 else v
        n = v.shape[0]
        if n == 1:
            out.append(np.repeat(v, n_resamples, axis=0))
            continue
        idx = rng.integers(0, n, size=(n_resamples, n))
        means = v[idx].mean(axis=1)                                      # (B, q)
        if correct:
            centre = v.mean(axis=0)
            means = centre + math.sqrt(n / (n - 1)) * (means - centre)
        out.append(means)
    return out


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The equal-tailed ``level`` percentile interval of bootstrap ``values``."""
    lo, hi = np.quantile(np.asarray(values, dtype=float), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class SweetSpotBootstrap:
    """The sweet spot's uncertainty from resampling each candidate's seeds.

    * ``i_nce_ci``: percentile interval of the fitted maximum's location over *all*
      resamples (an end of the range when a resample has no interior maximum, so a shaky
      peak widens it).
    * ``interior_share``: the fraction of resamples whose curve opens downwards with its
      vertex inside the resample's I_NCE range; the peak is :attr:`located` above 1/2.
    * ``accuracy_ci``: the interval of the fitted accuracy at the located peak, by
      ``accuracy_method``: ``"per-seed fits"`` when every candidate ran the same seeds (the
      curve is fitted once per seed, evaluated at the peak, and a t-interval is taken over
      seeds: seeds shared by all candidates move every accuracy together, which resampling
      each candidate separately would average away), else ``"bootstrap"`` (the percentile
      interval, also kept as ``accuracy_ci_bootstrap``).
    * ``fixed``: candidates with one seed, held at their value (their noise is not in the
      intervals); ``coef``: each resample's ``(a, b, c)``; ``seed_coef``: each seed's fit
      (``None`` unless ``accuracy_method`` is per-seed fits). :meth:`band` uses the same
      method as ``accuracy_ci``.
    """

    n_resamples: int
    level: float
    interior_share: float
    i_nce_ci: tuple[float, float]
    accuracy_ci: tuple[float, float]
    accuracy_method: str
    accuracy_ci_bootstrap: tuple[float, float]
    coef: np.ndarray
    seed_coef: np.ndarray | None
    fixed: int
    corrected: bool

    @property
    def located(self) -> bool:
        return self.interior_share > 0.5

    def band(self, grid: Sequence[float], level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``level`` band of the fitted curve at ``grid``."""
        g = np.asarray(grid, dtype=float)
        lv = self.level if level is None else level
        if self.seed_coef is not None:
            per_seed = self.seed_coef[:, :1] * g ** 2 + self.seed_coef[:, 1:2] * g + self.seed_coef[:, 2:3]
            return _t_interval_rows(per_seed, lv)
        curves = self.coef[:, :1] * g ** 2 + self.coef[:, 1:2] * g + self.coef[:, 2:3]   # (B, G)
        lo, hi = np.quantile(curves, [(1 - lv) / 2, (1 + lv) / 2], axis=0)
        return lo, hi


def _t_interval_rows(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The t-interval of the mean over axis 0 (rows: seeds)."""
    n = values.shape[0]
    mean, sem = values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(n)
    half = stats.t.ppf((1 + level) / 2, n - 1) * sem
    return mean - half, mean + half


def bootstrap_sweet_spot(i_nce: Sequence[Sequence[float]], accuracy: Sequence[Sequence[float]], *,
                         seeds: Sequence[Sequence[int]] | None = None, n_resamples: int = N_RESAMPLES,
                         level: float = LEVEL, rng: int | np.random.Generator = 0,
                         correct: bool = True) -> SweetSpotBootstrap | None:
    """Bootstrap over seeds: resample each candidate's seeds, refit, locate the maximum.

    ``i_nce[i]`` and ``accuracy[i]`` are candidate ``i``'s per-seed values (paired by seed:
    a seed's I_NCE and accuracy are resampled together), ``seeds[i]`` their seed ids. Each
    resample takes every candidate's mean over its resampled seeds (see
    :func:`bootstrap_means` for ``correct``) and fits the quadratic with :func:`fit_many`.
    When ``seeds`` shows that every candidate ran the same 2 or more seeds, the accuracy at
    the peak gets its interval from per-seed fits (see :class:`SweetSpotBootstrap`). Returns
    ``None`` when no candidate has two seeds (nothing to resample) or there are too few
    candidates for a fit.

    ``bench/stats_calibration.py`` measures how often each interval covers the truth on
    simulated studies (docs/reading_the_report.md quotes the figures).

    >>> rng = np.random.default_rng(0)
    >>> xs = [np.full(3, v) + rng.normal(0, 0.05, 3) for v in (0.5, 1.0, 1.5, 2.0, 2.5)]
    >>> ys = [0.8 - (x - 1.5) ** 2 + rng.normal(0, 0.01, 3) for x in xs]
    >>> b = bootstrap_sweet_spot(xs, ys, seeds=[(0, 1, 2)] * 5, n_resamples=500)
    >>> b.located, b.i_nce_ci[0] < 1.5 < b.i_nce_ci[1], b.accuracy_method
    (True, True, 'per-seed fits')
    """
    _check_level("level", level)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 10:
        raise SpecError("n_resamples", n_resamples, "expected an integer >= 10")
    if len(i_nce) != len(accuracy):
        raise SpecError("accuracy", len(accuracy), f"expected one list per candidate ({len(i_nce)})")
    samples = []
    for i, (x, y) in enumerate(zip(i_nce, accuracy, strict=True)):
        x, y = _finite_values(x, f"i_nce[{i}]"), _finite_values(y, f"accuracy[{i}]")
        if x.size != y.size:
            raise SpecError(f"accuracy[{i}]", y.tolist(), f"expected one value per seed ({x.size})")
        samples.append(np.stack([x, y], axis=1))
    if seeds is not None and (len(seeds) != len(samples)
                              or any(len(s) != v.shape[0] for s, v in zip(seeds, samples, strict=False))):
        raise SpecError("seeds", seeds, "expected one seed id per value of each candidate")
    if len(samples) < MIN_FIT_POINTS or all(s.shape[0] < 2 for s in samples):
        return None
    if np.unique(np.round([s[:, 0].mean() for s in samples], 9)).size < 3:
        return None
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    means = bootstrap_means(samples, n_resamples, gen, correct=correct)
    x = np.stack([m[:, 0] for m in means], axis=1)                           # (B, m)
    y = np.stack([m[:, 1] for m in means], axis=1)
    fit = fit_many(x, y)
    boot_acc = percentile_interval(fit["accuracy"], level)
    acc_ci, method, seed_coef = boot_acc, "bootstrap", None
    if seeds is not None and len({tuple(s) for s in seeds}) == 1 and len(seeds[0]) >= 2:
        # every candidate ran the same seeds, in the same order: one fit per seed
        per_x = np.stack([s[:, 0] for s in samples], axis=1)                 # (n, m)
        per_y = np.stack([s[:, 1] for s in samples], axis=1)
        seed_coef = fit_many(per_x, per_y)["coef"]                           # (n, 3)
        peak = fit_many(per_x.mean(axis=0)[None], per_y.mean(axis=0)[None])["i_nce"]
        values = seed_coef[:, :1] * peak ** 2 + seed_coef[:, 1:2] * peak + seed_coef[:, 2:3]
        lo, hi = _t_interval_rows(values, level)
        acc_ci, method = (float(lo[0]), float(hi[0])), "per-seed fits"
    return SweetSpotBootstrap(
        n_resamples=n_resamples, level=level, interior_share=float(fit["interior"].mean()),
        i_nce_ci=percentile_interval(fit["i_nce"], level), accuracy_ci=acc_ci, accuracy_method=method,
        accuracy_ci_bootstrap=boot_acc, coef=fit["coef"], seed_coef=seed_coef,
        fixed=sum(1 for s in samples if s.shape[0] < 2), corrected=correct)


@dataclass(frozen=True)
class LackOfFit:
    """The lack-of-fit F-test of the quadratic against the spread over seeds.

    ``f`` on ``(df_fit, df_error)`` degrees of freedom and its ``p``-value; ``method`` is
    ``"seed blocks"`` (every candidate ran the same seeds: the error is the candidate x
    seed interaction, so effects a seed has on every candidate do not count as noise) or
    ``"pure error"`` (the spread of each candidate's own seeds, pooled).
    """

    f: float
    df_fit: int
    df_error: int
    p: float
    method: str
    alpha: float = ALPHA

    @property
    def fits(self) -> bool:
        """False when the quadratic misses the candidate means by more than seed noise explains."""
        return self.p >= self.alpha


def lack_of_fit(fit: SweetSpot, i_nce: Sequence[Sequence[float]], accuracy: Sequence[Sequence[float]], *,
                seeds: Sequence[Sequence[int]] | None = None, alpha: float = ALPHA) -> LackOfFit | None:
    """Does the quadratic describe the candidate means, given how much they vary over seeds?

    The lack-of-fit test with replicates (Montgomery, *Design and Analysis of Experiments*,
    on regression with repeated runs): ``F = [sum_i n_i r_i^2 / (m - 3)] / MS_error`` with
    ``r_i = ybar_i - f(xbar_i)`` the distance of candidate ``i``'s mean from the curve. The
    error is measured on ``u_ij = y_ij - f'(xbar_i) (x_ij - xbar_i)``, each seed's accuracy
    moved along the curve to its candidate's mean I_NCE, so the noise of the measured I_NCE
    counts as noise rather than as misfit (``bench/stats_calibration.py`` measures the
    rejection rate of a true quadratic). With shared seeds (``seeds``
    all equal, ``n >= 2``) ``MS_error`` is the candidate x seed interaction mean square of
    ``u``, ``sum_ij (u_ij - ubar_i. - ubar_.j + ubar..)^2 / ((m - 1)(n - 1))`` (a randomized
    block design); otherwise the pooled within-candidate variance of ``u`` on
    ``sum_i (n_i - 1)`` degrees of freedom. A small ``p`` says
    the candidates' accuracies are not a smooth function of I_NCE alone (other things about
    the views matter), so the fitted maximum is no sweet spot. ``None`` with fewer than 4
    candidates or no replicate seeds.

    >>> x = [[0.5, 0.5], [1.0, 1.0], [1.5, 1.5], [2.0, 2.0], [2.5, 2.5]]
    >>> y = [[0.30, 0.32], [0.50, 0.51], [0.20, 0.22], [0.55, 0.56], [0.31, 0.30]]   # a zig-zag
    >>> f = fit_sweet_spot([1.0 * sum(v) / 2 for v in x], [sum(v) / 2 for v in y])
    >>> lof = lack_of_fit(f, x, y, seeds=[(0, 1)] * 5)
    >>> lof.fits, lof.method, lof.df_fit, lof.df_error
    (False, 'seed blocks', 2, 4)
    """
    _check_level("alpha", alpha)
    m = len(accuracy)
    if m < MIN_FIT_POINTS or len(i_nce) != m:
        return None
    # Each seed's accuracy, moved along the fitted slope to its candidate's mean I_NCE
    # (delta method): noise in the measured I_NCE then neither hides nor fakes a misfit.
    a, b, _ = fit.coef
    rs, resid = [], []
    for x, y in zip(i_nce, accuracy, strict=True):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        xbar = x.mean()
        rs.append(y - (2 * a * xbar + b) * (x - xbar))
        resid.append(float(y.mean() - fit.predict(xbar)))
    ns, resid = np.array([v.size for v in rs]), np.array(resid)
    df_fit = m - 3
    blocks = seeds is not None and len({tuple(s) for s in seeds}) == 1 and ns[0] >= 2
    if blocks:
        r = np.stack(rs)                                                   # (m, n)
        inter = r - r.mean(axis=1, keepdims=True) - r.mean(axis=0, keepdims=True) + r.mean()
        ss_e, df_e, method = float((inter ** 2).sum()), (m - 1) * (int(ns[0]) - 1), "seed blocks"
    else:
        ss_e = float(sum(((v - v.mean()) ** 2).sum() for v in rs))
        df_e, method = int((ns - 1).sum()), "pure error"
    if df_e < 1:
        return None
    ms_fit = float((ns * resid ** 2).sum()) / df_fit
    ms_e = ss_e / df_e
    if ms_e <= 1e-300:
        f = math.inf if ms_fit > 0 else 0.0
        p = 0.0 if ms_fit > 0 else 1.0
    else:
        f = ms_fit / ms_e
        p = float(stats.f.sf(f, df_fit, df_e))
    return LackOfFit(f=float(f), df_fit=df_fit, df_error=df_e, p=p, method=method, alpha=alpha)


def sweet_spot_verdict(fit: SweetSpot | None, boot: SweetSpotBootstrap | None, *, metric: str = "accuracy",
                       n_seeds: int = 1, lof: LackOfFit | None = None) -> str:
    """The sweet spot in plain words, with its uncertainty when there is one.

    A peak is *located* when most bootstrap resamples have an interior maximum and the
    quadratic is not rejected by its lack-of-fit test (:func:`lack_of_fit`).

    >>> sweet_spot_verdict(None, None)
    'no sweet spot fitted: too few candidates with I_NCE (need 4 with 3 distinct values)'
    """
    if fit is None:
        return (f"no sweet spot fitted: too few candidates with I_NCE (need {MIN_FIT_POINTS} "
                "with 3 distinct values)")
    where = f"I_NCE = {fit.i_nce:.3f} nats, fitted {metric} {fit.accuracy:.4f}"
    shape = "interior maximum" if fit.interior else "maximum at the end of the range"
    point = f"{where} ({shape}; quadratic fit on {fit.n} candidate means, R^2 = {fit.r2:.2f})"
    if boot is None:
        why = "one seed per candidate" if n_seeds <= 1 else "nothing to resample"
        return f"sweet spot (untested, {why}): {point}; its uncertainty is not estimated"
    lv = f"{100 * boot.level:.0f}%"
    share = f"{100 * boot.interior_share:.0f}% of {boot.n_resamples} bootstrap resamples"
    fixed = (f"; {boot.fixed} one-seed candidate(s) held fixed, so the intervals are too narrow"
             if boot.fixed else "")
    if lof is not None and not lof.fits:
        return (f"no sweet spot located: the quadratic does not fit the candidate means (lack-of-fit "
                f"F({lof.df_fit}, {lof.df_error}) = {lof.f:.1f}, p = {lof.p:.3g}, R^2 = {fit.r2:.2f}): "
                f"{metric} is not a smooth function of I_NCE alone across these candidates, so the fitted "
                f"maximum ({where}) is not a sweet spot{fixed}")
    if boot.located:
        return (f"sweet spot: I_NCE = {fit.i_nce:.3f} nats [{lv}: {boot.i_nce_ci[0]:.3f}, {boot.i_nce_ci[1]:.3f}], "
                f"{metric} at the peak {fit.accuracy:.4f} [{boot.accuracy_ci[0]:.4f}, {boot.accuracy_ci[1]:.4f}] "
                f"({boot.accuracy_method}); interior maximum in {share} (R^2 = {fit.r2:.2f}){fixed}")
    return (f"no sweet spot located: no interior maximum in most resamples (only {share} have one); "
            f"the point fit gives {point}; the maximum lies in [{boot.i_nce_ci[0]:.3f}, {boot.i_nce_ci[1]:.3f}] "
            f"nats ({lv}){fixed}")
