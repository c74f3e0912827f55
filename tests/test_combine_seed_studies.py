"""docs/combine_seed_studies.py: three one-seed studies of the same candidates read as one study
with three seeds, printed and written like ``infomin study report``."""

from __future__ import annotations

import importlib.util
import math

import optuna
from helpers import REPO
from optuna.distributions import CategoricalDistribution

from infomin.search import storage as st

SUBSETS = ["position", "digit", "digit+position", "background", "digit+background+position"]


def _module():
    spec = importlib.util.spec_from_file_location("combine_seed_studies", REPO / "docs" / "combine_seed_studies.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_three_one_seed_studies_become_one_report_with_three_seeds(tmp_path, capsys, monkeypatch):
    from rich.console import Console

    import infomin.cli.study as study_cli

    monkeypatch.setattr(study_cli, "console", Console(width=200))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = st.open_storage(url, create=True)
    truth = {"position": 0.15, "digit": 0.21, "digit+position": 0.36, "background": 0.10,
             "digit+background+position": 0.20}
    for seed, shift in enumerate((0.0, 0.01, -0.012)):
        study = optuna.create_study(study_name=f"q{seed}", storage=storage, direction="maximize")
        study.set_user_attr("infomin.metric", "eval/linear_acc/digit")
        for i, shared in enumerate(SUBSETS):
            acc = truth[shared] + shift + 0.004 * ((i * 7 + seed * 3) % 5 - 2)
            study.add_trial(optuna.trial.create_trial(
                params={"shared": shared}, distributions={"shared": CategoricalDistribution(SUBSETS)}, value=acc,
                user_attrs={"metrics": {"eval/linear_acc/digit": acc, "mi/nce": 0.9 * i + 0.02 * seed,
                                        "mi/log_k": math.log(255), "mi/k": 255.0, "eval/n_test": 500.0},
                            "train": {"seed": seed, "temperature": 0.2, "encoder": "convnet"}}))
    out = tmp_path / "report"
    assert _module().main(["q0", "q1", "q2", "--storage", url, "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "5 candidates, 3 seeds each" in text and "3 seeds per candidate (5 candidates)" in text
    assert "digit+position" in text and "worse" in text and "not tested" not in text
    seeds = (out / "seeds.csv").read_text().splitlines()
    assert len(seeds) == 1 + 5 * 3
    assert {line.split(",")[2] for line in seeds[1:]} == {"0", "1", "2"}
    assert (out / "sweet_spot.png").is_file() and "How to read this" in (out / "report.md").read_text()
