"""`infomin train` and `infomin eval`: a run end to end, and bad input -> one line, exit 2, FAILED run."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from infomin import tracking
from infomin.cli import app

runner = CliRunner()
TINY = ["--dataset", "colorful-moving-digits", "--epochs", "1", "--batch-size", "32",
        "--train-subset", "96", "--test-subset", "64", "--set", "knn_k=20", "--set", "plots=false", "-q"]


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'mlflow.db'}"


@pytest.fixture
def lab_views(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("kind: channel_split\nspace: lab\nsplit: [[0], [1, 2]]\n")
    return str(path)


def _run_id(output: str) -> str:
    m = re.search(r"MLflow run:\s+([0-9a-f]{32})", output)
    assert m, output
    return m.group(1)


def _failed_run_id(output: str) -> str:
    m = re.search(r"MLflow run ([0-9a-f]{32}) marked FAILED", output)
    assert m, output
    return m.group(1)


def test_train_then_eval(uri, lab_views):
    res = runner.invoke(app, ["train", "--views", lab_views, *TINY, "--temperature", "0.3",
                              "--tracking-uri", uri, "--experiment", "cli"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "resolved config" in out and "temperature: 0.3" in out
    assert "eval/linear_acc" in out and "mi/log_k" in out
    assert f"infomin ui --tracking-uri {uri}" in out
    run = tracking.get_run(_run_id(out), uri=uri)
    assert run.info.status == "FINISHED" and run.data.params["temperature"] == "0.3"
    assert run.data.params["views.space"] == "lab" and run.data.params["knn_k"] == "20"

    ev = runner.invoke(app, ["eval", _run_id(out), "--tracking-uri", uri])
    assert ev.exit_code == 0, ev.output
    assert "eval/linear_acc" in ev.output and "eval/alignment" in ev.output


def test_config_file_and_flags_precedence(uri, lab_views, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("temperature: 0.7\nseed: 3\n")
    res = runner.invoke(app, ["train", "--views", lab_views, *TINY, "--config", str(cfg),
                              "--seed", "4", "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    p = tracking.get_run(_run_id(res.output), uri=uri).data.params
    assert p["temperature"] == "0.7" and p["seed"] == "4"


@pytest.mark.parametrize("args,match", [
    (["--dataset", "imagenet-typo"], "imagenet-typo"),
    (["--encoder", "vgg11"], "vgg11"),
])
def test_bad_input_fails_the_run(uri, lab_views, args, match):
    res = runner.invoke(app, ["train", "--views", lab_views, *TINY, *args, "--tracking-uri", uri])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert re.search(rf"error:.*{match}", res.output)
    run = tracking.get_run(_failed_run_id(res.output), uri=uri)
    assert run.info.status == "FAILED" and match in run.data.tags[tracking.FAILURE_TAG]


def test_missing_views_file(uri, tmp_path):
    res = runner.invoke(app, ["train", "--views", str(tmp_path / "none.yaml"), *TINY,
                              "--tracking-uri", uri])
    assert res.exit_code == 2 and "none.yaml" in res.output and "Traceback" not in res.output
    run = tracking.get_run(_failed_run_id(res.output), uri=uri)
    assert run.info.status == "FAILED"


@pytest.mark.parametrize("args,match", [
    (["--set", "epoch=3"], "valid choices"),
    (["--optimizer", "adamax"], "adamw"),
    (["--set", "knn_k"], "key=value"),
])
def test_bad_options_are_one_line(lab_views, args, match):
    res = runner.invoke(app, ["train", "--views", lab_views, *TINY, *args])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output


def test_eval_unknown_run(uri):
    res = runner.invoke(app, ["eval", "0" * 32, "--tracking-uri", uri])
    assert res.exit_code == 2 and "no such MLflow run" in res.output


def test_demo_writes_a_grid_per_preset(tmp_path):
    from infomin.demo import write_preset_grids
    from infomin.views import presets

    written = write_preset_grids(tmp_path / "demo-out", n=2)
    assert written and all(p.is_file() and p.stat().st_size > 1000 for p in written)
    assert {p.stem for p in written} <= {f"views_{n.replace('/', '_')}" for n in presets()}
    assert (tmp_path / "demo-out" / "views_lab_l_ab.png") in written


def test_recipe_comes_first_then_config_then_flags_and_sets_its_views(uri, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("temperature: 0.7\n")
    # the toy is 32 px RGB too: simclr views through the recipe become 16 px crops
    res = runner.invoke(app, ["train", "--views", "simclr", "--recipe", "CIFAR_CPU", *TINY,
                              "--config", str(cfg), "--set", "encoder=convnet", "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    assert "recipe CIFAR_CPU" in res.output and "'size': 16" in res.output
    p = tracking.get_run(_run_id(res.output), uri=uri).data.params
    assert p["optimizer"] == "sgd" and p["eval_every"] == "0"      # from the recipe
    assert p["temperature"] == "0.7"                               # the config file wins over it
    assert p["encoder"] == "convnet" and p["epochs"] == "1"        # --set and flags win over both
    assert p["views.spatial.size"] == "16"


def test_unknown_recipe_is_one_clear_line(uri):
    res = runner.invoke(app, ["train", "--views", "simclr", "--recipe", "cifar", *TINY,
                              "--tracking-uri", uri])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "CIFAR_CPU" in res.output
