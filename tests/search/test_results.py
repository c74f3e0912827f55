"""Per-seed results of a study: the dataclass, reading Optuna trials of both formats, merging."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from infomin.errors import InfominError, SpecError
from infomin.search.results import (
    CandidateSeeds,
    candidates_from_study,
    combine,
    n_test_of,
    short_label,
)

SHARED = CategoricalDistribution(["digit", "position", "digit+position"])


def _trial(shared, attrs, state=optuna.trial.TrialState.COMPLETE, value=0.5):
    return optuna.trial.create_trial(params={"shared": shared}, distributions={"shared": SHARED},
                                     value=value if state == optuna.trial.TrialState.COMPLETE else None,
                                     state=state, user_attrs=attrs)


def test_candidate_validates_and_normalises_its_seeds():
    c = CandidateSeeds(number=2, label="digit", params={"shared": "digit"},
                       seeds={3: {"acc": 0.6, "flag": True, "name": "x"}, 1: {"acc": 0.7}}, n_test=500)
    assert list(c.seeds) == [1, 3]                                   # sorted
    assert c.seeds[3] == {"acc": 0.6}                                 # non-numbers dropped
    assert c.values("acc") == {1: 0.7, 3: 0.6} and c.mean("acc") == pytest.approx(0.65)
    assert c.values("missing") == {} and c.mean("missing") is None
    with pytest.raises(SpecError, match=r"candidate 2.seeds"):
        CandidateSeeds(number=2, label="x", params={}, seeds={})
    with pytest.raises(SpecError, match="integer seeds"):
        CandidateSeeds(number=2, label="x", params={}, seeds={"0": {"acc": 0.5}})
    with pytest.raises(SpecError, match="n_test: got 0"):
        CandidateSeeds(number=2, label="x", params={}, seeds={0: {"acc": 0.5}}, n_test=0)


def test_one_seed_trials_of_todays_runner_become_one_seed_candidates():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial("digit", {"metrics": {"acc": 0.61, "mi/nce": 2.0, "eval/n_test": 500.0},
                                     "train": {"seed": 4, "temperature": 0.2}, "mlflow_run_id": "r0",
                                     "views": {"kind": "shared_factors", "shared": ["digit"]}}))
    study.add_trial(_trial("position", {"metrics": {"acc": 0.2}, "train": {"test_subset": 256}}))
    study.add_trial(_trial("digit+position", {}, state=optuna.trial.TrialState.FAIL))
    study.add_trial(_trial("digit+position", {}))                      # complete without metrics
    a, b = candidates_from_study(study)
    assert (a.number, a.label, dict(a.seeds), a.n_test, dict(a.run_ids)) == (
        0, "digit", {4: {"acc": 0.61, "mi/nce": 2.0, "eval/n_test": 500.0}}, 500, {4: "r0"})
    assert a.views == {"kind": "shared_factors", "shared": ["digit"]} and a.train["temperature"] == 0.2
    assert list(b.seeds) == [0] and b.n_test == 256                  # no seed recorded: 0; n from test_subset


def test_trials_with_repeats_store_one_attribute_per_seed():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial("digit", {
        "metrics": {"acc": 0.65},                                        # the mean: ignored when seeds exist
        "seed/0/metrics": {"acc": 0.6, "eval/n_test": 500.0}, "seed/0/mlflow_run_id": "a",
        "seed/1/metrics": {"acc": 0.7, "eval/n_test": 500.0}, "seed/1/mlflow_run_id": "b",
        "seed/2/metrics": {"acc": 0.65, "eval/n_test": 400.0}, "seed/x/metrics": {"acc": 1.0}}))
    (c,) = candidates_from_study(study)
    assert c.values("acc") == {0: 0.6, 1: 0.7, 2: 0.65}
    assert c.run_ids == {0: "a", 1: "b"} and c.n_test == 400          # the smallest test set


def test_seeds_stored_on_the_study_after_their_trial_finished_are_read_too():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial("digit", {"seed/0/metrics": {"acc": 0.6}, "seed/0/mlflow_run_id": "a"}))
    study.add_trial(_trial("position", {"seed/0/metrics": {"acc": 0.2}}))
    study.set_user_attr("trial/0/seed/1/metrics", {"acc": 0.7})
    study.set_user_attr("trial/0/seed/1/mlflow_run_id", "b")
    study.set_user_attr("trial/10/seed/1/metrics", {"acc": 0.9})          # no such trial: ignored
    digit, position = candidates_from_study(study)
    assert digit.values("acc") == {0: 0.6, 1: 0.7} and digit.run_ids == {0: "a", 1: "b"}
    assert position.values("acc") == {0: 0.2}


def test_combine_merges_equal_params_and_refuses_duplicated_seeds():
    a = CandidateSeeds(0, "digit", {"shared": "digit"}, {0: {"acc": 0.6}}, n_test=500, run_ids={0: "r0"})
    b = CandidateSeeds(5, "digit", {"shared": "digit"}, {1: {"acc": 0.7}}, n_test=500, run_ids={1: "r1"})
    c = CandidateSeeds(1, "position", {"shared": "position"}, {0: {"acc": 0.2}})
    merged = combine([a, c], [b])
    assert [(m.number, m.label, sorted(m.seeds)) for m in merged] == [(0, "digit", [0, 1]), (1, "position", [0])]
    assert merged[0].run_ids == {0: "r0", 1: "r1"}
    assert combine([a], [a]) == [a]                                   # the same run twice is one seed
    clash = CandidateSeeds(7, "digit", {"shared": "digit"}, {0: {"acc": 0.9}})
    with pytest.raises(InfominError, match="seed 0 twice"):
        combine([a], [clash])


def test_labels_and_test_set_sizes():
    assert short_label({"shared": "digit"}, 1) == "digit"
    assert short_label({"lr": 0.0012345, "space": "lab"}, 1) == "lr=0.00123 space=lab"
    assert n_test_of({0: {"eval/n_test": 500.0}, 1: {"eval/n_test": 300.0}}) == 300
    assert n_test_of({0: {}}, {"test_subset": None}) is None
    assert n_test_of({0: {}}, {"test_subset": True}) is None
