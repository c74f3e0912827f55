"""infomin.protocols: the experiments, end to end, each recorded in MLflow.

The application layer: the only code that opens MLflow runs and loads datasets for
a run. Below it, ``infomin.train`` holds the loops and the min-max learner; above
it, ``infomin.search`` runs protocols as Optuna trials and the CLI calls them.

* :func:`run_candidate`: train and score one view candidate (one run);
* :func:`learn_views`: InfoMin's protocol: learn views, measure them with fresh
  critics, freeze them, retrain, compare with the start views (a parent run and
  child runs per seed);
* :func:`evaluate_run`, :func:`load_model`: re-probe / rebuild a finished run.
"""

from infomin.protocols.candidate import CandidateResult, run_candidate, train_and_score
from infomin.protocols.context import ceiling_warning, load_data
from infomin.protocols.learn import EXPERIMENT, LearnResult, SeedResult, learn_views, summarize
from infomin.protocols.reprobe import evaluate_run, load_model

__all__ = ["EXPERIMENT", "CandidateResult", "LearnResult", "SeedResult", "ceiling_warning",
           "evaluate_run", "learn_views", "load_data", "load_model", "run_candidate", "summarize",
           "train_and_score"]
