"""`infomin study run|list|show|report`: clean errors, tables, and the report logged to the parent run."""

from __future__ import annotations

import math
import textwrap

import optuna
from optuna.distributions import FloatDistribution
from typer.testing import CliRunner

from infomin import tracking
from infomin.cli import app
from infomin.search import storage as st

runner = CliRunner()


def test_run_reports_bad_modules_and_storage_in_one_line(tmp_path, mlflow_uri):
    (tmp_path / "nostudy.py").write_text('"""Q."""\ndef suggest(trial):\n    return {}\n')
    r = runner.invoke(app, ["study", "run", str(tmp_path / "nostudy.py")])
    assert r.exit_code == 2 and "nostudy.py.STUDY: got None; missing" in r.output
    (tmp_path / "ok.py").write_text(textwrap.dedent('''
        """Q."""
        from infomin.search import StudySpec
        STUDY = StudySpec(dataset="colorful-moving-digits", base_views="lab_l_ab", n_trials=1)
        def suggest(trial):
            return {"views": {}, "train": {}}
    '''))
    r = runner.invoke(app, ["study", "run", str(tmp_path / "ok.py"), "--storage", "postgresql://me:pw@127.0.0.1:9/x"])
    assert r.exit_code == 2 and "cannot connect" in r.output and "pw" not in r.output.replace("postgresql", "")
    r = runner.invoke(app, ["study", "show", "nope", "--storage", f"sqlite:///{tmp_path / 'none.db'}"])
    assert r.exit_code == 2 and "no such database file" in r.output


def _finished_study(tmp_path, mlflow_uri):
    """A real SQLite storage with a study whose trials carry what workers store, and its parent run."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="demo", storage=st.open_storage(url, create=True), direction="maximize")
    exp = tracking.get_or_create_experiment("demo", uri=mlflow_uri)
    parent = tracking.study_parent_run(exp, "demo", uri=mlflow_uri)
    for k, v in (("infomin.parent_run_id", parent), ("infomin.tracking_uri", mlflow_uri),
                 ("infomin.experiment_id", exp), ("infomin.metric", "eval/linear_acc")):
        study.set_user_attr(k, v)
    for i, d in enumerate((2.0, 6.0, 10.0, 14.0, 18.0)):
        mi = 3.0 - d / 8
        acc = 0.7 - 0.05 * (mi - 1.8) ** 2
        study.add_trial(optuna.trial.create_trial(
            params={"distance": d}, distributions={"distance": FloatDistribution(0.0, 22.0)}, value=acc,
            user_attrs={"metrics": {"eval/linear_acc": acc, "mi/nce": mi, "mi/log_k": math.log(255), "mi/k": 255.0},
                        "train": {"temperature": 0.2, "encoder": "convnet"},
                        "views": {"kind": "patch_distance", "size": 16, "distance": d},
                        "mlflow_run_id": f"run{i}"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                              user_attrs={"fail_reason": "objective 'eval/linear_acc' is nan"}))
    return url, parent


def test_list_show_and_report(tmp_path, mlflow_uri, monkeypatch):
    from rich.console import Console

    import infomin.cli.study as study_cli

    monkeypatch.setattr(study_cli, "console", Console(width=250))
    url, parent = _finished_study(tmp_path, mlflow_uri)
    r = runner.invoke(app, ["study", "list", "--storage", url])
    assert r.exit_code == 0 and "demo" in r.output and "maximize" in r.output
    r = runner.invoke(app, ["study", "show", "demo", "--storage", url])
    assert r.exit_code == 0 and "FAIL" in r.output and "is nan" in r.output and "distance=10" in r.output
    out = tmp_path / "rep"
    r = runner.invoke(app, ["study", "report", "demo", "--storage", url, "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "sweet spot" in text and "I_NCE = 1.8" in text
    assert "One seed per candidate: differences between candidates are not tested" in text
    assert "≈ best" not in text and "how to read this" in text
    assert (out / "sweet_spot.png").is_file() and (out / "best_views.yaml").is_file()
    logged = tracking.list_artifacts(parent, uri=mlflow_uri)
    assert {"report/sweet_spot.png", "report/table.csv", "report/best_views.yaml"} <= set(logged)
    run = tracking.get_run(parent, uri=mlflow_uri)
    assert abs(run.data.metrics["sweet_spot/i_nce"] - 1.8) < 1e-6
    # the parent run's description is the report: sweet spot and the trials' table
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("# Study `demo`: sweet-spot report") and "Sweet spot" in note and "I_NCE = 1.8" in note
    assert "| rank | trial | candidate |" in note and "distance=10" in note


def test_list_on_an_empty_storage(tmp_path):
    r = runner.invoke(app, ["study", "list", "--storage", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert r.exit_code == 0 and "no studies" in r.output


def test_report_with_repeats_prints_intervals_marks_and_logs_them(tmp_path, mlflow_uri, monkeypatch):
    from rich.console import Console

    import infomin.cli.study as study_cli

    monkeypatch.setattr(study_cli, "console", Console(width=250))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="rep", storage=st.open_storage(url, create=True), direction="maximize")
    exp = tracking.get_or_create_experiment("rep", uri=mlflow_uri)
    parent = tracking.study_parent_run(exp, "rep", uri=mlflow_uri)
    for k, v in (("infomin.parent_run_id", parent), ("infomin.tracking_uri", mlflow_uri),
                 ("infomin.experiment_id", exp), ("infomin.metric", "eval/linear_acc")):
        study.set_user_attr(k, v)
    shift = [0.0, 0.02, -0.015]                       # per-seed effects shared by every candidate
    for i, d in enumerate((2.0, 6.0, 10.0, 14.0, 18.0)):
        mi = 3.0 - d / 8
        attrs = {"train": {"temperature": 0.2, "encoder": "convnet"},
                 "views": {"kind": "patch_distance", "size": 16, "distance": d}}
        for s, e in enumerate(shift):
            acc = 0.7 - 0.05 * (mi - 1.8) ** 2 + e + 0.002 * ((i + s) % 3)
            attrs[f"seed/{s}/metrics"] = {"eval/linear_acc": acc, "mi/nce": mi + 0.01 * s, "mi/k": 255.0,
                                          "mi/log_k": math.log(255), "eval/n_test": 1000.0}
        study.add_trial(optuna.trial.create_trial(
            params={"distance": d}, distributions={"distance": FloatDistribution(0.0, 22.0)},
            value=0.5, user_attrs=attrs))
    out = tmp_path / "rep"
    r = runner.invoke(app, ["study", "report", "rep", "--storage", url, "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "5 candidates, 3 seeds each" in text and "95% CI" in text and "Δ best" in text
    assert "≈ best" in text and "worse" in text and "not tested" not in text
    assert "3 seeds per candidate (5 candidates)" in text and "0.05/4 = 0.0125" in text
    assert "how to read this" in text
    logged = tracking.list_artifacts(parent, uri=mlflow_uri)
    assert {"report/seeds.csv", "report/table.csv", "report/report.md", "report/sweet_spot.png"} <= set(logged)
    m = tracking.get_run(parent, uri=mlflow_uri).data.metrics
    assert m["study/seeds_min"] == 3 and m["sweet_spot/i_nce_low"] <= m["sweet_spot/i_nce"] <= m["sweet_spot/i_nce_high"]
    assert 1 <= m["study/n_indistinguishable_from_best"] < 5
