"""Do the report's verdicts and intervals hold their stated rates? Simulated studies, counted.

The statistics behind ``infomin study report`` (:mod:`infomin.search.stats`) make three
claims; this script checks each on thousands of simulated studies with a known answer
and prints the rates:

1. **"≈ best"**: a candidate truly as good as the best is marked indistinguishable with
   probability at least 1 - alpha (alpha = 0.05). Studies of ``m`` equal candidates with
   ``n`` seeds; the rate with each comparison at alpha (unadjusted) and at alpha / (m - 1)
   (Bonferroni, what the report does).
2. **power**: the true gap, in standard deviations of the paired differences, that the
   report's test finds 80% of the time (noncentral t), by seeds and candidates.
3. **the sweet spot**: how often the 95% intervals contain the true vertex (I_NCE) and the
   true peak accuracy, for the bootstrap with and without the small-sample variance
   correction, and for the accuracy interval from per-seed fits; with seed effects that
   are independent between candidates, and shared by them (a seed fixes the data subset
   and the initial weights of every candidate).
4. **lack of fit**: how often the test rejects a quadratic that is true, when the
   measured I_NCE varies little or much between seeds and the accuracy follows either the
   measured I_NCE or the candidate's true one.

Seeds are simulated as ``accuracy = true + shared seed effect + own noise`` (and I_NCE
with a small noise), the structure the paired test and the per-seed fits assume.

Run: ``python bench/stats_calibration.py`` (under a minute of CPU) or ``--quick``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import banner, parse_args, parser, print_table  # noqa: E402

from infomin.search.stats import (  # noqa: E402
    bootstrap_sweet_spot,
    compare_seeds,
    detectable_difference,
    fit_sweet_spot,
    lack_of_fit,
    paired_tests,
    per_comparison_alpha,
)

CENTRES = np.array([0.5, 1.0, 1.5, 2.5, 3.0, 3.5])   # candidate I_NCE values; true vertex 2.0, peak 0.8


def simulate(rng, means, n_seeds, n_studies, seed_sd=0.02, noise_sd=0.01):
    """``(n_studies, m, n_seeds)`` accuracies: true means + a seed effect shared by all candidates + noise."""
    shared = rng.normal(0, seed_sd, (n_studies, 1, n_seeds))
    return np.asarray(means)[None, :, None] + shared + rng.normal(0, noise_sd, (n_studies, len(means), n_seeds))


def verdict_rates(n_studies: int) -> list[dict]:
    rows = []
    for m in (2, 3, 5, 8):
        for n in (3, 5):
            v = simulate(np.random.default_rng(m * 10 + n), [0.6] * m, n, n_studies)
            r = compare_seeds(v)                                     # Bonferroni, as the report
            best_rows = np.take_along_axis(v, r["best"][:, None, None], axis=1)
            raw = ~paired_tests(best_rows, v, alpha=0.05)["worse"]
            others = n_studies * (m - 1)
            rows.append({"candidates": m, "seeds": n, "studies": n_studies,
                         "kept, 5% each": (raw.sum() - n_studies) / others,
                         "kept, Bonferroni": (r["same"].sum() - n_studies) / others,
                         "any equal one marked worse": float((~r["same"]).any(axis=1).mean()),
                         "per-comparison level": per_comparison_alpha(m)})
    return rows


def power_rows() -> list[dict]:
    rows = []
    for n in (2, 3, 5, 10):
        row = {"seeds": n}
        for m in (2, 5, 8):
            d = detectable_difference(n, per_comparison_alpha(m))
            row[f"{m} candidates"] = d
        rows.append(row)
    return rows


def coverage_rows(n_studies: int, n_resamples: int) -> list[dict]:
    rows = []
    for n in (3, 5):
        for label, seed_sd, noise_sd in (("independent", 0.0, 0.02), ("shared", 0.02, 0.01)):
            gen = np.random.default_rng(1000 + n)
            hits = {"x": 0, "x_plain": 0, "acc_seed": 0, "acc_boot": 0, "located": 0}
            for i in range(n_studies):
                x = CENTRES[:, None] + gen.normal(0, 0.03, (6, n))
                y = 0.8 - 0.1 * (x - 2.0) ** 2 + gen.normal(0, seed_sd, (1, n)) + gen.normal(0, noise_sd, (6, n))
                seeds = [tuple(range(n))] * 6
                b = bootstrap_sweet_spot(list(x), list(y), seeds=seeds, n_resamples=n_resamples, rng=i)
                p = bootstrap_sweet_spot(list(x), list(y), n_resamples=n_resamples, rng=i, correct=False)
                hits["x"] += b.i_nce_ci[0] <= 2.0 <= b.i_nce_ci[1]
                hits["x_plain"] += p.i_nce_ci[0] <= 2.0 <= p.i_nce_ci[1]
                hits["acc_seed"] += b.accuracy_ci[0] <= 0.8 <= b.accuracy_ci[1]
                hits["acc_boot"] += b.accuracy_ci_bootstrap[0] <= 0.8 <= b.accuracy_ci_bootstrap[1]
                hits["located"] += b.located
            rows.append({"seeds": n, "seed effects": label, "studies": n_studies,
                         "I_NCE (report)": hits["x"] / n_studies,
                         "I_NCE, uncorrected bootstrap": hits["x_plain"] / n_studies,
                         "peak acc, per-seed fits (report)": hits["acc_seed"] / n_studies,
                         "peak acc, bootstrap": hits["acc_boot"] / n_studies,
                         "peak located": hits["located"] / n_studies})
    return rows


def lack_of_fit_rows(n_studies: int) -> list[dict]:
    rows = []
    for x_sd in (0.03, 0.3):
        for follows in ("measured", "true"):
            gen = np.random.default_rng(2000 + int(100 * x_sd))
            rejected = 0
            for _ in range(n_studies):
                x = CENTRES[:, None] + gen.normal(0, x_sd, (6, 3))
                base = x if follows == "measured" else CENTRES[:, None]
                y = 0.8 - 0.1 * (base - 2.0) ** 2 + gen.normal(0, 0.01, (6, 3)) + gen.normal(0, 0.02, (1, 3))
                fit = fit_sweet_spot(x.mean(axis=1), y.mean(axis=1))
                rejected += not lack_of_fit(fit, list(x), list(y), seeds=[(0, 1, 2)] * 6).fits
            rows.append({"I_NCE sd between seeds": x_sd, "accuracy follows": f"{follows} I_NCE",
                         "studies": n_studies, "true quadratic rejected": rejected / n_studies})
    return rows


def main(argv=None) -> int:
    args = parse_args(parser(__doc__.splitlines()[0]), argv)
    n_verdict, n_cov, n_boot = (500, 20, 100) if args.quick else (20000, 400, 1000)
    print(banner("statistics of the study report: verdict rates, power, interval coverage",
                 {"verdict studies": n_verdict, "coverage studies": n_cov, "bootstrap resamples": n_boot}))
    mc = math.sqrt(0.95 * 0.05 / n_verdict)
    print_table(f"1. equal candidates kept as '≈ best' (target >= 0.95; Monte Carlo sd about {mc:.3f} "
                "per cell before pooling)", verdict_rates(n_verdict))
    print_table("2. true gap found 80% of the time, in sds of the paired differences (Bonferroni level)",
                power_rows())
    mc = math.sqrt(0.95 * 0.05 / n_cov)
    print_table(f"3. 95% intervals of the sweet spot: share of studies covering the truth (Monte Carlo sd "
                f"about {mc:.3f})", coverage_rows(n_cov, n_boot))
    n_lof = 100 if args.quick else 4000
    print_table(f"4. lack-of-fit test at 5%, 6 candidates x 3 seeds on a true quadratic (target 0.05; Monte Carlo "
                f"sd about {math.sqrt(0.05 * 0.95 / n_lof):.3f})", lack_of_fit_rows(n_lof))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
