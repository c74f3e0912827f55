"""Optuna studies over view generators, run by processes on one or many machines.

* :mod:`.spec`: a study module's ``STUDY`` (:class:`StudySpec`) and ``suggest(trial)``;
  :func:`load_study` and :func:`check_study` validate both before anything runs.
* :mod:`.storage`: the embedded SQLite default (WAL, busy timeout), PostgreSQL, heartbeats.
* :mod:`.runner`: the coordinator (:func:`run_study`) and the workers' ask / heartbeat / tell loop;
  :mod:`.supervise` keeps worker processes tied to their coordinator, :mod:`.reaper` carries on
  the trials of dead workers, :mod:`.trials` holds the budget, retries and duplicates; every
  storage call goes through :mod:`infomin.retry`.
* :mod:`.results`: what a study produced per candidate and seed (:class:`CandidateSeeds`).
* :mod:`.stats`: intervals over seeds, paired comparisons with the best, the sweet-spot bootstrap.
* :mod:`.report`: the sweet-spot report (:func:`make_report`, :func:`fit_sweet_spot`).

>>> from infomin.search import StudySpec
>>> StudySpec(dataset="colorful-moving-digits", base_views="lab_l_ab", n_trials=4).sampler
'tpe'
"""

from infomin.search.spec import Study, StudySpec, check_study, load_study

__all__ = ["StudySpec", "Study", "check_study", "load_study", "run_study", "make_report", "fit_sweet_spot"]


def __getattr__(name):  # lazy: the runner and report pull in optuna, mlflow and matplotlib
    if name == "run_study":
        from infomin.search.runner import run_study  # optuna, mlflow: imported on first use

        return run_study
    if name in ("make_report", "fit_sweet_spot"):
        from infomin.search import report  # optuna, matplotlib: imported on first use

        return getattr(report, name)
    raise AttributeError(name)
