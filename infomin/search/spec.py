"""Study definitions: a ``STUDY`` spec plus a pure ``suggest(trial)``, loaded from ``studies/*.py``.

A study module states one research question (its docstring), the fixed part of
the experiment (:class:`StudySpec`: dataset, base view preset, training budget,
probe, sampler, pruner, number of trials, seed, baselines) and the search space
as Optuna's define-by-run function (docs/architecture.md)::

    \"\"\"Which colour space's channel split gives the best linear accuracy?\"\"\"
    from infomin.search import StudySpec

    STUDY = StudySpec(dataset="colorful-moving-digits", base_views="lab_l_ab",
                      train={"epochs": 3, "temperature": 0.2}, n_trials=12)

    def suggest(trial):
        space = trial.suggest_categorical("space", ["lab", "yuv", "ycbcr"])
        return {"views": {"space": space}, "train": {}}

``suggest`` never trains: it returns the view overrides (merged into the base
preset, a whole spec when it names another ``kind``, or ``{"source": "learned/name"}``
for a saved learned generator, weights included) and TrainConfig overrides. Tests call it with :class:`optuna.trial.FixedTrial`.

A study may also define ``run(views, config, **run_kwargs) -> CandidateResult`` to
score candidates with something else than :func:`infomin.protocols.run_candidate`
(the default); it receives the same keyword arguments.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from infomin.errors import InfominError, SpecError, check_choice, check_int

SAMPLERS = ("tpe", "random", "grid", "qmc")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class StudySpec:
    """The fixed part of a study; the varying part is the module's ``suggest(trial)``.

    * ``dataset``: an :func:`infomin.data.load` name (TrainConfig ``dataset``).
    * ``base_views``: a preset name (``views/<name>.yaml``) or a view spec dict the
      trial's view overrides are merged into.
    * ``recipe``: a named training budget (:mod:`infomin.recipes`, e.g. ``"CIFAR_CPU_SHORT"``):
      its TrainConfig overrides come first (``train`` and the trial's own win over them), and
      its view parameters (:data:`infomin.recipes.VIEW_OVERRIDES`, e.g. crops made at 16 px)
      are set on every candidate's views, so no candidate can miss them.
    * ``train``: TrainConfig overrides shared by every trial (epochs, subsets, tau...).
    * ``probe``: the linear-probe backend (``sklearn`` or ``torch``).
    * ``metric``/``direction``: the objective read from the candidate's metrics.
    * ``sampler``: ``tpe`` (seeded, ``n_startup_trials`` random first), ``random``,
      ``grid`` (over ``grid``, a ``{param: [values]}`` dict) or ``qmc``.
    * ``pruner``: ``median``, ``hyperband`` (both on the per-epoch ``eval/knn_acc``,
      a maximised value) or ``none``.
    * ``n_trials``: the study's total budget (re-running continues up to it); ``seed``.
    * ``repeats``: seeds per candidate (default 1). Each candidate (an Optuna trial) trains
      ``repeats`` times with seeds ``train.seed``, ``train.seed + 1``, ...; Optuna sees the seed
      mean, the pruner the first seed's per-epoch values; the report gives intervals over seeds.
    * ``baselines``: parameter dicts enqueued before any sampled trial, each checked
      against the search space (Optuna itself only warns on out-of-range values).
    * ``fixed``: notes of what must not vary for I_NCE to be comparable (K, tau,
      encoder); shown in the report.
    """

    dataset: str
    base_views: str | Mapping[str, Any]
    n_trials: int
    train: Mapping[str, Any] = field(default_factory=dict)
    probe: str = "sklearn"
    metric: str = "eval/linear_acc"
    direction: str = "maximize"
    sampler: str = "tpe"
    n_startup_trials: int | None = None
    grid: Mapping[str, list] | None = None
    pruner: str = "median"
    seed: int = 0
    repeats: int = 1
    baselines: tuple[Mapping[str, Any], ...] = ()
    fixed: Mapping[str, str] = field(default_factory=dict)
    recipe: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise SpecError("STUDY.dataset", self.dataset, "expected a dataset name")
        if self.recipe is not None:
            from infomin import recipes  # K needs infomin.objectives (torch): not for `study list`

            check_choice("STUDY.recipe", self.recipe, recipes.names())
        if not isinstance(self.base_views, (str, Mapping)):
            raise SpecError("STUDY.base_views", self.base_views, "expected a preset name or a view spec")
        check_int("STUDY.n_trials", self.n_trials, 1)
        check_int("STUDY.seed", self.seed, 0)
        check_int("STUDY.repeats", self.repeats, 1)
        check_choice("STUDY.sampler", self.sampler, SAMPLERS)
        check_choice("STUDY.pruner", self.pruner, PRUNERS)
        check_choice("STUDY.direction", self.direction, DIRECTIONS)
        if not isinstance(self.train, Mapping):
            raise SpecError("STUDY.train", self.train, "expected a dict of TrainConfig overrides")
        if not isinstance(self.metric, str) or not self.metric:
            raise SpecError("STUDY.metric", self.metric, "expected a metric name such as 'eval/linear_acc'")
        if self.direction == "minimize" and self.pruner != "none":
            raise SpecError("STUDY.pruner", self.pruner, "pruning reads the per-epoch kNN accuracy, a maximised "
                            "value; with direction='minimize' use pruner='none'")
        if self.n_startup_trials is not None:
            check_int("STUDY.n_startup_trials", self.n_startup_trials, 0)
        if self.sampler == "grid" and not (isinstance(self.grid, Mapping) and self.grid):
            raise SpecError("STUDY.grid", self.grid, "sampler='grid' needs a {param: [values]} grid")
        if self.sampler == "grid" and self.baselines:
            raise SpecError("STUDY.baselines", list(self.baselines), "the grid sampler runs every grid point "
                            "already; enqueued baselines would run twice (use sampler='tpe' or 'random')")
        if isinstance(self.baselines, Mapping) or not all(isinstance(b, Mapping) for b in self.baselines):
            raise SpecError("STUDY.baselines", self.baselines, "expected a list of parameter dicts")
        object.__setattr__(self, "baselines", tuple(dict(b) for b in self.baselines))
        object.__setattr__(self, "train", dict(self.train))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for MLflow params and the report)."""
        from dataclasses import asdict

        out = asdict(self)
        out["baselines"] = [dict(b) for b in self.baselines]
        return out


@dataclass(frozen=True)
class Study:
    """A loaded study module: its name, question, spec, ``suggest`` and trainer."""

    name: str
    path: Path
    question: str
    spec: StudySpec
    suggest: Callable[[Any], dict[str, Any]]
    run: Callable[..., Any] | None = None

    def base_views(self) -> dict[str, Any]:
        from infomin.views.spec import load_spec  # torch, kornia: not for `study list`

        if isinstance(self.spec.base_views, Mapping):
            return dict(self.spec.base_views)
        try:
            return load_spec(self.spec.base_views)
        except SpecError as e:
            raise SpecError("STUDY.base_views", self.spec.base_views, e.message, choices=e.choices) from None

    def candidate(self, trial: Any) -> tuple[dict[str, Any], Any]:
        """Run ``suggest(trial)`` and resolve it into (full view spec, TrainConfig).

        Raises :class:`SpecError` naming the field for a malformed proposal or an
        invalid config value (for example ``train.temperature: got 0.0``).
        """
        from infomin import recipes  # torch (infomin.objectives): `study list` must not load it
        from infomin.config import TrainConfig  # torch: `study list` must not load it

        proposal = self.suggest(trial)
        if not isinstance(proposal, Mapping) or not set(proposal) <= {"views", "train"}:
            raise SpecError(f"{self.name}.suggest", proposal,
                            "expected a dict with keys 'views' (view overrides) and 'train' (TrainConfig overrides)")
        views = merge_views(self.base_views(), proposal.get("views") or {})
        recipe = {}
        if self.spec.recipe is not None:
            recipe = recipes.get(self.spec.recipe)
            views = recipes.apply_views(self.spec.recipe, views)
        train = {"dataset": self.spec.dataset, "probe": self.spec.probe, **recipe, **self.spec.train,
                 **dict(proposal.get("train") or {})}
        return views, TrainConfig.from_dict(train)


def merge_views(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a trial's view overrides into the base spec; another top-level ``kind`` replaces it."""
    from infomin.views.spec import merge  # torch, kornia: not for `study list`

    if not isinstance(overrides, Mapping):
        raise SpecError("suggest.views", overrides, "expected a dict of view overrides or a view spec")
    if "kind" in overrides and overrides["kind"] != base.get("kind"):
        return dict(overrides)
    if "source" in overrides and "kind" not in overrides:  # a saved generator: {"source": "learned/x"}
        return dict(overrides)
    return merge(dict(base), dict(overrides))


def check_views(views: Mapping[str, Any], *, field: str = "views") -> None:
    """Build the view generator once (on no data) so a bad spec fails before training."""
    from infomin.views import build_views  # the view library (torch, kornia): only checks need it

    try:
        build_views(dict(views))
    except SpecError as e:
        if e.field.startswith(field):
            raise
        raise SpecError(f"{field}.{e.field.removeprefix('views.')}", e.value, e.message, choices=e.choices) from None


def load_study(source: str | Path) -> Study:
    """Import a study module (``studies/x.py`` or a name in ``./studies`` / the repo's ``studies/``).

    Raises :class:`SpecError` when the module is missing, lacks ``STUDY`` or
    ``suggest``, or they have the wrong type.
    """
    path = _find_study(source)
    name = path.stem
    mod_name = f"infomin_study_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SpecError("study", str(source), "not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except InfominError:
        raise
    except Exception as e:  # a broken study module: say which file, keep the cause
        raise InfominError(f"study {path}: importing it failed: {type(e).__name__}: {e}") from e
    return _from_module(module, path)


def _find_study(source: str | Path) -> Path:
    p = Path(source)
    if p.suffix == ".py":
        if not p.is_file():
            raise SpecError("study", str(source), "file not found")
        return p.resolve()
    candidates = [Path.cwd() / "studies", Path(__file__).resolve().parents[2] / "studies"]
    for d in candidates:
        if (d / f"{source}.py").is_file():
            return (d / f"{source}.py").resolve()
    names = sorted({q.stem for d in candidates if d.is_dir() for q in d.glob("*.py")
                    if not q.stem.startswith("_")})
    raise SpecError("study", str(source), "no such study file or name", choices=names)


def _from_module(module: ModuleType, path: Path) -> Study:
    spec = getattr(module, "STUDY", None)
    suggest = getattr(module, "suggest", None)
    if spec is None:
        raise SpecError(f"{path.name}.STUDY", None, "missing: define STUDY = StudySpec(...)")
    if not isinstance(spec, StudySpec):
        raise SpecError(f"{path.name}.STUDY", type(spec).__name__, "expected an infomin.search.StudySpec")
    if suggest is None or not callable(suggest):
        raise SpecError(f"{path.name}.suggest", suggest, "missing: define suggest(trial) -> {'views': ..., 'train': ...}")
    if len(inspect.signature(suggest).parameters) != 1:
        raise SpecError(f"{path.name}.suggest", str(inspect.signature(suggest)), "expected one argument: trial")
    run = getattr(module, "run", None)
    question = (inspect.getdoc(module) or "").strip()
    return Study(name=path.stem, path=path, question=question, spec=spec, suggest=suggest,
                 run=run if callable(run) else None)


def check_study(study: Study) -> None:
    """Validate everything that can be checked without training, before anything runs.

    * every baseline runs through ``suggest`` on a :class:`~optuna.trial.FixedTrial`,
      names only parameters ``suggest`` asks for, and each value lies in its
      distribution (Optuna merely warns and clamps otherwise);
    * each baseline's view spec builds and its TrainConfig validates;
    * with no baselines, a seeded random draw of the space does the same.
    """
    import optuna

    for i, params in enumerate(study.spec.baselines):
        field_ = f"STUDY.baselines[{i}]"
        trial = _CheckedFixedTrial(dict(params), field_)
        views = _checked_candidate(study, trial, f"on {field_} {dict(params)}")
        unknown = sorted(set(params) - set(trial.distributions))
        if unknown:
            raise SpecError(f"{field_}.{unknown[0]}", params[unknown[0]], "not a parameter of suggest()",
                            choices=sorted(trial.distributions))
        check_views(views, field=f"{field_}.views")
    if not study.spec.baselines:
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=study.spec.seed)).ask()
        views = _checked_candidate(study, trial, "on a random draw of its space")
        check_views(views)
    if study.spec.sampler == "grid":
        for name, values in study.spec.grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise SpecError(f"STUDY.grid.{name}", values, "expected a non-empty list of values")


def _checked_candidate(study: Study, trial: Any, on: str) -> dict[str, Any]:
    """``study.candidate(trial)``'s views; a ``suggest`` that raises is the study's error, in one line."""
    try:
        views, _ = study.candidate(trial)
    except InfominError:
        raise
    except Exception as e:
        text = str(e).strip().splitlines()
        raise InfominError(f"study {study.path}: suggest() raised during the start-up check {on}: "
                           f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")) from e
    return views


def _checked_fixed_trial_class():
    import optuna

    class CheckedFixedTrial(optuna.trial.FixedTrial):
        """A FixedTrial that raises :class:`SpecError` for a missing or out-of-space value
        (Optuna's only warns, and clamps nothing: the baseline would run outside the space)."""

        def __init__(self, params: dict[str, Any], field_: str):
            super().__init__(params)
            self._field = field_

        def _suggest(self, name: str, distribution: Any) -> Any:
            if name not in self._params:
                raise SpecError(f"{self._field}.{name}", None, f"missing: suggest() asks for it ({distribution})")
            if not contains(distribution, self._params[name]):
                raise SpecError(f"{self._field}.{name}", self._params[name], f"outside the search space {distribution}")
            return super()._suggest(name, distribution)

    return CheckedFixedTrial


def _CheckedFixedTrial(params: dict[str, Any], field_: str) -> Any:  # noqa: N802 - a class factory
    return _checked_fixed_trial_class()(params, field_)


def contains(dist: Any, value: Any) -> bool:
    """Whether an Optuna distribution contains ``value`` (categoricals by equality)."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in dist.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
