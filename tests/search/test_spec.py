"""Study modules: loading, validation before anything runs, and every shipped study's search space."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest

from infomin.errors import InfominError, SpecError
from infomin.search import StudySpec, check_study, load_study
from infomin.search.spec import contains, merge_views

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (REPO / "studies").glob("*.py") if not p.stem.startswith("_"))
HERE = Path(__file__).parent / "studies"


def write(tmp_path: Path, body: str, name: str = "s.py") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


HEADER = '''
"""A question."""
from infomin.search import StudySpec
'''
GOOD_STUDY = '''
STUDY = StudySpec(dataset="colorful-moving-digits",
                  base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
                  n_trials=2, baselines=BASELINES)

def suggest(trial):
    tau = trial.suggest_float("tau", 0.05, 1.0, log=True)
    space = trial.suggest_categorical("space", ["lab", "yuv"])
    return {"views": {"space": space}, "train": {"temperature": tau}}
'''


def good(tmp_path, baselines="()"):
    return write(tmp_path, HEADER + f"BASELINES = {baselines}\n" + GOOD_STUDY)


def test_shipped_studies_are_the_six_asked_for():
    assert {"quickstart", "color_spaces", "crop_distance", "temperature", "shared_factors",
            "cifar10_color"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_study_loads_and_every_baseline_builds(name):
    study = load_study(REPO / "studies" / f"{name}.py")
    assert study.question and study.question[0].isupper(), "the module docstring states the question"
    check_study(study)  # baselines inside the space, views build, TrainConfig validates


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_study_random_draws_build_valid_views(name):
    """Five seeded draws of each search space resolve to views that build and a valid config."""
    from infomin.views import build_views

    study = load_study(REPO / "studies" / f"{name}.py")
    sampler = optuna.samplers.RandomSampler(seed=1)
    opt = optuna.create_study(sampler=sampler)
    for _ in range(5):
        trial = opt.ask()
        views, config = study.candidate(optuna.trial.FixedTrial(dict(trial.params) or _draw(study, trial)))
        spec, gen = build_views(views)
        if "source" in views:  # a saved learned generator: its spec and weights come from the file
            assert spec["source"].endswith(".yaml") and gen.to_spec()["kind"] == spec["kind"]
        else:
            assert spec["kind"] == views["kind"]
        assert config.dataset == study.spec.dataset
        opt.tell(trial, 0.0)


def _draw(study, trial):
    study.suggest(trial)  # records the parameters on the real trial
    return dict(trial.params)


def test_color_spaces_covers_eight_spaces_at_fixed_k_and_tau():
    study = load_study(REPO / "studies" / "color_spaces.py")
    spaces = study.spec.grid["space"]
    assert len(set(spaces)) >= 8
    seen = set()
    for space in spaces:
        views, config = study.candidate(optuna.trial.FixedTrial({"space": space, "lead": 0}))
        seen.add((config.batch_size, config.temperature, config.encoder))
        assert views == {"kind": "channel_split", "space": space, "split": [[0], [1, 2]]}
    assert len(seen) == 1, "K, tau and encoder must not vary across trials"


def test_temperature_study_moves_tau_only():
    study = load_study(REPO / "studies" / "temperature.py")
    _, lo = study.candidate(optuna.trial.FixedTrial({"temperature": 0.05}))
    v2, hi = study.candidate(optuna.trial.FixedTrial({"temperature": 1.0}))
    assert (lo.temperature, hi.temperature) == (0.05, 1.0)
    assert v2 == study.base_views()


def test_shared_factors_study_builds_factor_pairs():
    study = load_study(REPO / "studies" / "shared_factors.py")
    views, _ = study.candidate(optuna.trial.FixedTrial({"shared": "digit+position"}))
    assert views == {"kind": "shared_factors", "shared": ["digit", "position"]}


def test_load_by_name_and_unknown_name_lists_choices(tmp_path):
    assert load_study("quickstart").name == "quickstart"
    with pytest.raises(SpecError, match="no such study.*'quickstart'"):
        load_study("quikstart")


def test_module_without_study_or_suggest(tmp_path):
    with pytest.raises(SpecError, match=r"s.py.STUDY: got None; missing"):
        load_study(write(tmp_path, '"""Q."""\ndef suggest(trial):\n    return {}\n'))
    with pytest.raises(SpecError, match=r"s.py.suggest: got None; missing"):
        load_study(write(tmp_path, HEADER + 'STUDY = StudySpec(dataset="x", base_views="lab_l_ab", n_trials=1)\n'))
    with pytest.raises(SpecError, match="expected an infomin.search.StudySpec"):
        load_study(write(tmp_path, 'STUDY = {"n_trials": 3}\ndef suggest(trial):\n    return {}\n'))
    with pytest.raises(SpecError, match="expected one argument"):
        load_study(write(tmp_path, HEADER + 'STUDY = StudySpec(dataset="x", base_views="a", n_trials=1)\n'
                                            'def suggest():\n    return {}\n'))
    with pytest.raises(InfominError, match="importing it failed: ZeroDivisionError"):
        load_study(write(tmp_path, "1 / 0\n"))
    with pytest.raises(SpecError, match="file not found"):
        load_study(tmp_path / "missing.py")


@pytest.mark.parametrize("kwargs, field", [
    ({"sampler": "cmaes"}, "STUDY.sampler"),
    ({"pruner": "sha"}, "STUDY.pruner"),
    ({"n_trials": 0}, "STUDY.n_trials"),
    ({"sampler": "grid"}, "STUDY.grid"),
    ({"direction": "minimize"}, "STUDY.pruner"),
    ({"baselines": {"tau": 0.1}}, "STUDY.baselines"),
    ({"sampler": "grid", "grid": {"tau": [0.1]}, "baselines": [{"tau": 0.1}]}, "STUDY.baselines"),
    ({"recipe": "CIFAR_CPU_SHRT"}, "STUDY.recipe"),
])
def test_study_spec_validates(kwargs, field):
    base = {"dataset": "colorful-moving-digits", "base_views": "lab_l_ab", "n_trials": 3}
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        StudySpec(**{**base, **kwargs})


def test_baseline_out_of_range_is_an_error_not_a_warning(tmp_path):
    study = load_study(good(tmp_path, '({"tau": 2.0, "space": "lab"},)'))
    with pytest.raises(SpecError, match=r"STUDY.baselines\[0\].tau: got 2.0; outside the search space"):
        check_study(study)


def test_baseline_bad_choice_unknown_and_missing_params(tmp_path):
    with pytest.raises(SpecError, match=r"baselines\[0\].space: got 'hsv'"):
        check_study(load_study(good(tmp_path, '({"tau": 0.2, "space": "hsv"},)')))
    with pytest.raises(SpecError, match=r"baselines\[0\].lr: got 0.1; not a parameter of suggest"):
        check_study(load_study(good(tmp_path, '({"tau": 0.2, "space": "lab", "lr": 0.1},)')))
    with pytest.raises(SpecError, match=r"baselines\[0\]"):
        check_study(load_study(good(tmp_path, '({"space": "lab"},)')))
    check_study(load_study(good(tmp_path, '({"tau": 0.2, "space": "yuv"},)')))  # a valid one passes


def test_suggest_producing_an_invalid_config_or_view_is_caught_before_running(tmp_path):
    bad_tau = HEADER + '''
STUDY = StudySpec(dataset="colorful-moving-digits", base_views={"kind": "channel_split"}, n_trials=2)
def suggest(trial):
    return {"views": {}, "train": {"temperature": trial.suggest_float("tau", -1.0, -0.5)}}
'''
    with pytest.raises(SpecError, match="config.temperature"):
        check_study(load_study(write(tmp_path, bad_tau)))
    bad_view = HEADER + '''
STUDY = StudySpec(dataset="colorful-moving-digits", base_views={"kind": "channel_split"}, n_trials=2)
def suggest(trial):
    return {"views": {"space": trial.suggest_categorical("space", ["lab", "cmyk"])}, "train": {}}
'''
    with pytest.raises(SpecError, match="space"):
        study = load_study(write(tmp_path, bad_view))
        for space in ("lab", "cmyk"):
            from infomin.search.spec import check_views

            check_views(study.candidate(optuna.trial.FixedTrial({"space": space}))[0])
    not_a_dict = HEADER + '''
STUDY = StudySpec(dataset="colorful-moving-digits", base_views={"kind": "channel_split"}, n_trials=2)
def suggest(trial):
    return [1, 2]
'''
    with pytest.raises(SpecError, match="expected a dict with keys 'views'"):
        check_study(load_study(write(tmp_path, not_a_dict)))


def test_merge_views_merges_same_kind_and_replaces_other_kind():
    base = {"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]}
    assert merge_views(base, {"space": "yuv"}) == {"kind": "channel_split", "space": "yuv", "split": [[0], [1, 2]]}
    assert merge_views(base, {"kind": "identity"}) == {"kind": "identity"}


def test_contains_checks_every_distribution_kind():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    assert contains(FloatDistribution(0.05, 1.0, log=True), 0.2)
    assert not contains(FloatDistribution(0.05, 1.0, log=True), 1.5)
    assert not contains(FloatDistribution(0.0, 1.0), float("nan"))
    assert contains(IntDistribution(1, 9, step=2), 3) and not contains(IntDistribution(1, 9, step=2), 4)
    assert contains(CategoricalDistribution(["a", 1]), 1) and not contains(CategoricalDistribution(["a"]), "b")
    assert not contains(CategoricalDistribution([1, 2]), True)


def test_a_trial_can_propose_a_saved_learned_generator_by_source():
    """{"source": "learned/<name>"} replaces the base spec and resolves with its weights."""
    import torch

    import infomin.views as V
    from infomin.search.spec import merge_views
    from infomin.views import build_views

    assert merge_views({"kind": "channel_split", "space": "lab"}, {"source": "learned/flow_toy"}) == \
        {"source": "learned/flow_toy"}
    spec, gen = build_views({"source": "learned/flow_toy"})
    ref = V.load("learned/flow_toy")
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert spec["kind"] == "flow_color" and spec["source"].endswith("flow_toy.yaml")
    assert torch.equal(gen(x, generator=0)[0], ref(x, generator=0)[0])
    assert not torch.equal(gen(x, generator=0)[0], x[:, :1])  # the learned weights, not the identity
    with pytest.raises(SpecError, match="views.layers"):
        build_views({"source": "learned/flow_toy", "layers": 2})
    with pytest.raises(SpecError, match="no_such"):
        build_views({"source": "learned/no_such"})


RECIPE_STUDY = '''
STUDY = StudySpec(dataset="cifar10-npz", recipe="CIFAR_CPU_SHORT", train={"epochs": 2},
                  base_views={"kind": "pair", "split": {"kind": "channel_split", "space": "lab"},
                              "spatial": {"kind": "random_resized_crop", "size": 32}},
                  sampler="grid", grid={"views": ["base", "own", "learned"]}, pruner="none", n_trials=3)

def suggest(trial):
    name = trial.suggest_categorical("views", ["base", "own", "learned"])
    views = {"base": {}, "own": {"kind": "random_resized_crop", "size": 24, "scale": [0.2, 1.0]},
             "learned": {"source": "learned/flow_toy"}}[name]
    return {"views": views, "train": {"temperature": 0.1} if name == "own" else {}}
'''


def test_a_study_recipe_sets_training_and_view_parameters_on_every_candidate(tmp_path):
    """recipe= gives the recipe's TrainConfig (train= and the trial win) and its crop size to each candidate."""
    from infomin import recipes

    study = load_study(write(tmp_path, HEADER + RECIPE_STUDY))
    short = recipes.get("CIFAR_CPU_SHORT")
    size = recipes.VIEW_OVERRIDES["CIFAR_CPU_SHORT"]["random_resized_crop"]["size"]
    views, cfg = study.candidate(optuna.trial.FixedTrial({"views": "base"}))
    assert views["spatial"]["size"] == size != 32 and views["split"]["space"] == "lab"
    assert cfg.encoder == short["encoder"] and cfg.optimizer == short["optimizer"] and cfg.lr == short["lr"]
    assert cfg.train_subset == short["train_subset"] and cfg.epochs == 2        # train= wins over the recipe
    views, cfg = study.candidate(optuna.trial.FixedTrial({"views": "own"}))     # a whole spec of another kind
    assert views == {"kind": "random_resized_crop", "size": size, "scale": [0.2, 1.0]}
    assert cfg.temperature == 0.1 and cfg.epochs == 2                            # the trial wins over both
    views, _ = study.candidate(optuna.trial.FixedTrial({"views": "learned"}))   # a saved generator is as saved
    assert views == {"source": "learned/flow_toy"}
    check_study(study)
    assert study.spec.to_dict()["recipe"] == "CIFAR_CPU_SHORT"
