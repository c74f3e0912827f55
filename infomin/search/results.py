"""What a study produced, per candidate and per seed: the input of the report.

A *candidate* is one point of the search space (one Optuna trial: its parameters, the
views they resolve to, the training settings). Each candidate runs one or more *seeds*;
a seed's result is the flat metrics dict of one training run (``eval/linear_acc``,
``mi/nce``, ``eval/n_test``...). :class:`CandidateSeeds` holds one candidate with all its
seeds; :mod:`infomin.search.report` turns a list of them into the report.

Where the seeds come from, in the Optuna storage (:func:`candidates_from_study`):

* **several seeds** (studies with repeats): one trial user attribute per seed,
  ``"seed/<s>/metrics"`` (the seed's metrics dict) and optionally
  ``"seed/<s>/mlflow_run_id"``. One key per seed, so seeds finished by different workers
  never overwrite each other (no read-modify-write of a shared dict). A finished trial's
  attributes are read-only in Optuna, so a seed that ends after its trial was told may be
  stored on the study instead, as ``"trial/<n>/seed/<s>/metrics"`` and
  ``"trial/<n>/seed/<s>/mlflow_run_id"``; both places are read.
* **one seed** (studies run before repeats): the trial's ``"metrics"`` attribute, under the
  seed in its ``"train"`` attribute (0 when absent).

Candidates that ran as separate trials (the same parameters in several studies, or a
runner that makes each seed its own trial) are merged with :func:`combine`.

>>> c = CandidateSeeds(number=3, label="digit", params={"shared": "digit"},
...                    seeds={0: {"acc": 0.61}, 1: {"acc": 0.64}}, n_test=500)
>>> c.values("acc"), c.n_seeds
({0: 0.61, 1: 0.64}, 2)
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infomin.errors import InfominError, SpecError

#: Trial user attributes of a study with repeats: ``seed/<s>/metrics``, ``seed/<s>/mlflow_run_id``.
SEED_PREFIX = "seed/"
SEED_METRICS = re.compile(r"^seed/(-?\d+)/metrics$")
SEED_RUN = "seed/{seed}/mlflow_run_id"
SEED_METRICS_KEY = "seed/{seed}/metrics"
#: The same on the study, for seeds stored after their trial finished: ``trial/<n>/seed/<s>/...``.
STUDY_SEED_METRICS = re.compile(r"^trial/(\d+)/seed/(-?\d+)/metrics$")
STUDY_PREFIX = "trial/{number}/"
#: The metric every probe run stores: the number of test images it was scored on.
N_TEST = "eval/n_test"
#: Longest label drawn next to a point; longer ones fall back to ``#<trial>``.
MAX_LABEL = 28


@dataclass(frozen=True)
class CandidateSeeds:
    """One candidate and its results per seed.

    * ``number``: the Optuna trial number (the smallest one when merged from several trials).
    * ``label``: a short name for tables and plot labels (:func:`short_label` of the params).
    * ``params``: the trial's parameters (what ``suggest`` drew).
    * ``seeds``: ``{seed: {metric: value}}``, one metrics dict per training seed; the
      same seed across candidates means the same data subset, initial weights and batch
      order, which is what makes paired comparisons possible.
    * ``n_test``: test images the probe was scored on (for its binomial sampling error),
      ``None`` when unknown.
    * ``train``: training settings that decide whether I_NCE values compare
      (``temperature``, ``encoder``...); ``views``: the resolved view spec (for
      ``best_views.yaml``); ``run_ids``: ``{seed: MLflow run id}``.

    Raises :class:`SpecError` for no seeds, a non-integer seed or a non-dict metrics entry.
    """

    number: int
    label: str
    params: Mapping[str, Any]
    seeds: Mapping[int, Mapping[str, float]]
    n_test: int | None = None
    train: Mapping[str, Any] = field(default_factory=dict)
    views: Mapping[str, Any] | None = None
    run_ids: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, Mapping) or not self.seeds:
            raise SpecError(f"candidate {self.number}.seeds", self.seeds, "expected {seed: {metric: value}} with a seed")
        seeds = {}
        for s, m in self.seeds.items():
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise SpecError(f"candidate {self.number}.seeds", s, "expected integer seeds")
            if not isinstance(m, Mapping):
                raise SpecError(f"candidate {self.number}.seeds[{s}]", m, "expected a {metric: value} dict")
            seeds[int(s)] = {str(k): float(v) for k, v in m.items() if _real(v)}
        object.__setattr__(self, "seeds", dict(sorted(seeds.items())))
        if self.n_test is not None and (isinstance(self.n_test, bool) or not isinstance(self.n_test, numbers.Integral)
                                        or self.n_test < 1):
            raise SpecError(f"candidate {self.number}.n_test", self.n_test, "expected a positive integer or None")
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "train", dict(self.train))
        object.__setattr__(self, "run_ids", {int(k): v for k, v in self.run_ids.items()})

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    def values(self, metric: str) -> dict[int, float]:
        """``{seed: value}`` of ``metric`` over the seeds that have a finite one."""
        return {s: m[metric] for s, m in self.seeds.items() if metric in m and math.isfinite(m[metric])}

    def mean(self, metric: str) -> float | None:
        v = list(self.values(metric).values())
        return sum(v) / len(v) if v else None


def _real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def short_label(params: Mapping[str, Any], number: int) -> str:
    """A short name for a candidate: a single text parameter's value, else ``k=v`` pairs
    (``#<number>`` when there are none or the text is longer than :data:`MAX_LABEL`).

    >>> short_label({"shared": "digit+position"}, 2), short_label({"space": "lab", "p": 0.25}, 0)
    ('digit+position', 'space=lab p=0.25')
    >>> short_label({"distance": 4.0}, 1), short_label({}, 7), short_label({"a": "x" * 40}, 4)
    ('distance=4', '#7', '#4')
    """
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    if not params:
        return f"#{number}"
    only = next(iter(params.values())) if len(params) == 1 else None
    text = only if isinstance(only, str) else " ".join(f"{k}={fmt(v)}" for k, v in params.items())
    return text if len(text) <= MAX_LABEL else f"#{number}"


def n_test_of(seeds: Mapping[int, Mapping[str, float]], train: Mapping[str, Any] | None = None) -> int | None:
    """The probe's test-set size: ``eval/n_test`` of the seeds (the smallest if they differ),
    else ``train["test_subset"]``, else ``None``."""
    ns = [m[N_TEST] for m in seeds.values() if N_TEST in m and m[N_TEST] >= 1]
    if ns:
        return int(min(ns))
    sub = (train or {}).get("test_subset")
    return int(sub) if isinstance(sub, numbers.Integral) and not isinstance(sub, bool) and sub >= 1 else None


def seeds_of_trial(trial: Any, study_attrs: Mapping[str, Any] | None = None
                   ) -> tuple[dict[int, dict[str, float]], dict[int, str]]:
    """A finished trial's ``({seed: metrics}, {seed: run id})`` (see the module docstring);
    ``study_attrs`` (the study's user attributes) adds seeds stored on the study."""
    prefix = STUDY_PREFIX.format(number=trial.number)
    attrs = {**{k[len(prefix):]: v for k, v in (study_attrs or {}).items() if k.startswith(prefix)},
             **trial.user_attrs}
    seeds, runs = {}, {}
    for key, value in attrs.items():
        m = SEED_METRICS.match(key)
        if m and isinstance(value, Mapping):
            s = int(m.group(1))
            seeds[s] = dict(value)
            run = attrs.get(SEED_RUN.format(seed=s))
            if run:
                runs[s] = run
    if seeds:
        return seeds, runs
    metrics = attrs.get("metrics")
    if not metrics:
        return {}, {}
    seed = (attrs.get("train") or {}).get("seed", 0)
    seed = seed if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) else 0
    # the reaper stores the run of a trial whose worker died on the study (a finished trial is read-only)
    run = attrs.get("mlflow_run_id") or (study_attrs or {}).get(f"mlflow_run_id:{trial.number}")
    return {int(seed): dict(metrics)}, ({int(seed): run} if run else {})


def candidate_from_trial(trial: Any, study_attrs: Mapping[str, Any] | None = None) -> CandidateSeeds | None:
    """The :class:`CandidateSeeds` of one Optuna trial (``None`` when it stored no metrics)."""
    seeds, runs = seeds_of_trial(trial, study_attrs)
    if not seeds:
        return None
    train = dict(trial.user_attrs.get("train") or {})
    params = dict(trial.params)
    return CandidateSeeds(number=trial.number, label=short_label(params, trial.number), params=params,
                          seeds=seeds, n_test=n_test_of(seeds, train), train=train,
                          views=trial.user_attrs.get("views"), run_ids=runs)


def candidates_from_study(optuna_study: Any, *, states: Sequence[str] = ("COMPLETE",),
                          merge: bool = True) -> list[CandidateSeeds]:
    """One :class:`CandidateSeeds` per trial in ``states`` that stored metrics, in trial order;
    with ``merge``, trials with equal parameters are merged (:func:`combine`)."""
    out = []
    study_attrs = optuna_study.user_attrs
    for t in optuna_study.get_trials(deepcopy=False):
        if t.state.name in states:
            c = candidate_from_trial(t, study_attrs)
            if c is not None:
                out.append(c)
    return combine(out) if merge else out


def _key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def combine(*groups: Iterable[CandidateSeeds]) -> list[CandidateSeeds]:
    """Merge candidates with equal parameters into one whose seeds are the union.

    Use it to join studies that ran the same candidates with different ``train.seed``
    (each study is one seed), or trials that each ran one seed of the same candidate. The
    merged candidate keeps the first one's trial number, label, views and settings.

    Raises :class:`InfominError` when one seed of one candidate appears twice with
    different metrics (a duplicated run: the report would count it twice).

    >>> a = CandidateSeeds(0, "x", {"p": 1}, {0: {"acc": 0.5}})
    >>> b = CandidateSeeds(4, "x", {"p": 1}, {1: {"acc": 0.6}})
    >>> [(c.number, sorted(c.seeds)) for c in combine([a], [b])]
    [(0, [0, 1])]
    """
    merged: dict[tuple, CandidateSeeds] = {}
    for group in groups:
        for c in group:
            k = _key(c.params)
            if k not in merged:
                merged[k] = c
                continue
            first = merged[k]
            seeds, runs = dict(first.seeds), dict(first.run_ids)
            for s, m in c.seeds.items():
                if s in seeds and seeds[s] != m:
                    raise InfominError(f"candidate {first.label!r} (trials {first.number} and {c.number}) has "
                                       f"seed {s} twice with different metrics: a duplicated run")
                seeds[s] = m
                if s in c.run_ids:
                    runs.setdefault(s, c.run_ids[s])
            n_tests = [n for n in (first.n_test, c.n_test) if n is not None]
            merged[k] = CandidateSeeds(number=min(first.number, c.number), label=first.label, params=first.params,
                                       seeds=seeds, n_test=min(n_tests) if n_tests else None, train=first.train,
                                       views=first.views, run_ids=runs)
    return sorted(merged.values(), key=lambda c: c.number)
