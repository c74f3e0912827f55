"""InfoMin's view-learning protocol end to end (MLflow runs, saving, registering) and
the ``infomin learn-views`` command."""

from __future__ import annotations

import math

import pytest
import torch
import yaml


def test_learn_views_protocol_saves_registers_and_compares_in_one_experiment(mlflow_uri, tmp_path):
    """The paper's protocol end to end at a tiny budget: learn g, measure I_NCE with fresh
    critics, freeze g and train fresh encoders on start and learned views, save + register g."""
    from infomin import tracking
    from infomin.config import LearnViewsConfig
    from infomin.protocols import learn_views
    from infomin.views import load

    cfg = LearnViewsConfig(mode="semi-supervised", labels=40, epochs=1, batch_size=32, seeds=[0],
                           train_subset=96, test_subset=64, mi_steps=3, encoder_kwargs={"width": 4},
                           progress=False, eval={"knn_k": 10})
    res = learn_views(cfg, out=tmp_path / "flow.yaml", register_as="toy-flow")
    (row,) = res.table()
    assert row["seed"] == 0
    assert {"mi/before", "mi/after", "eval/linear_acc/start", "eval/linear_acc/learned"} <= set(row)
    assert 0.0 <= row["eval/linear_acc/learned"] <= 1.0
    assert row["mi/before"] <= math.log(32) and row["mi/after"] <= math.log(32)  # K = N (CMC form)
    # every run lives in the one experiment: parent + adversarial + start views + learned views
    runs = tracking.client().search_runs([res.experiment_id])
    kinds = sorted(r.data.tags.get("infomin.kind") for r in runs)
    assert kinds == ["adversarial", "learn-views", "learn-views/learned", "learn-views/start"]
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs} == {None, res.parent_run_id}
    adv = tracking.get_run(res.seeds[0].run_id)
    assert {"adv/mi_nce", "adv/ce_view1", "adv/ce_view2", "mi/before", "mi/after",
            "eval/linear_acc/learned", "eval/linear_acc/start"} <= set(adv.data.metrics)
    assert len(tracking.metric_history(res.seeds[0].run_id, "adv/mi_nce")) == 1  # one per epoch
    parent = tracking.get_run(res.parent_run_id)
    assert parent.data.metrics["eval/linear_acc/learned/mean"] == pytest.approx(row["eval/linear_acc/learned"])
    # the learned-views run trained on the saved generator, not on a copy of the spec
    learned = tracking.get_run(res.seeds[0].learned_run_id)
    assert learned.data.params["views.source"].endswith("flow.yaml")
    # saved, registered, and reloadable identically from the path and both URIs
    assert (tmp_path / "flow.safetensors").is_file()
    assert res.registered["registered_uri"] == "models:/toy-flow@current"
    x = torch.rand(4, 3, 32, 32)
    ref = res.generator(x)
    for source in (tmp_path / "flow.yaml", "models:/toy-flow@current", res.registered["run_uri"]):
        assert torch.equal(load(source)(x).v2, ref.v2)


def test_summary_reports_mean_and_spread_over_seeds():
    from infomin.protocols import summarize

    out = summarize([{"mi/after": 1.0, "eval/linear_acc/learned": 0.5},
                    {"mi/after": 2.0, "eval/linear_acc/learned": 0.7},
                    {"mi/after": 3.0, "eval/linear_acc/learned": 0.6}])
    assert out["mi/after/mean"] == pytest.approx(2.0) and out["mi/after/std"] == pytest.approx(1.0)
    assert out["eval/linear_acc/learned/std"] == pytest.approx(0.1)
    assert summarize([{"mi/after": 1.5}])["mi/after/std"] == 0.0


def test_cli_learn_views_saves_registers_and_prints_the_comparison(mlflow_uri, tmp_path):
    from typer.testing import CliRunner

    from infomin.cli import app
    from infomin.views import load

    out = tmp_path / "views" / "learned" / "cli_flow.yaml"
    r = CliRunner().invoke(app, [
        "learn-views", "--dataset", "colorful-moving-digits", "--mode", "unsupervised",
        "--epochs", "1", "--seed", "2", "--start", "ydbdr", "--out", str(out), "--register", "cli-flow",
        "--batch-size", "32", "--train-subset", "64", "--test-subset", "64", "--mi-steps", "2",
        "--width", "4", "--no-eval", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "I_NCE before" in r.output and "models:/cli-flow@current" in r.output
    g = load("models:/cli-flow@current")
    assert g.to_spec()["start"] == "ydbdr"
    meta = yaml.safe_load(out.read_text())["meta"]
    assert meta["provenance"]["seed"] == 2 and meta["provenance"]["dataset"] == "colorful-moving-digits"
    bad = CliRunner().invoke(app, ["learn-views", "--mode", "supervised", "--out", str(out)])
    assert bad.exit_code == 2 and "mode: got 'supervised'" in bad.output
    # semi-supervised on another factor: the heads get the hue classes, the provenance says so
    small = ["--epochs", "1", "--batch-size", "32", "--train-subset", "64", "--test-subset", "64",
             "--mi-steps", "2", "--width", "4", "--no-eval", "--quiet", "--labels", "12"]
    semi = tmp_path / "semi.yaml"
    r = CliRunner().invoke(app, ["learn-views", "--label", "hue", "--ce-weight", "10", "--out", str(semi), *small])
    assert r.exit_code == 0, r.output
    prov = yaml.safe_load(semi.read_text())["meta"]["provenance"]
    assert (prov["label"], prov["mode"], prov["labels"]) == ("hue", "semi-supervised", 12)
    assert "registered: models:/semi@current" in r.output  # registered under the file's name by default
    assert load("models:/semi@current").to_spec() == load(semi).to_spec()
    bad = CliRunner().invoke(app, ["learn-views", "--label", "colour", "--out", str(semi), *small])
    assert bad.exit_code == 2 and "label: got 'colour'" in bad.output and "hue" in bad.output
    bad = CliRunner().invoke(app, ["learn-views", "--encoder", "resnet18", "--out", str(semi), *small])
    assert bad.exit_code == 2 and "--width" in bad.output  # only the convnet has a width


def test_cli_learn_views_with_the_gpu_scale_encoder(mlflow_uri, tmp_path):
    """The GPU-scale command's ``--encoder resnet18`` reaches the critics (no convnet width)."""
    from typer.testing import CliRunner

    from infomin.cli import app

    out = tmp_path / "r18.yaml"
    r = CliRunner().invoke(app, [
        "learn-views", "--encoder", "resnet18", "--mode", "unsupervised", "--epochs", "1",
        "--batch-size", "16", "--train-subset", "32", "--test-subset", "32", "--mi-steps", "1",
        "--no-eval", "--quiet", "--experiment", "r18", "--no-register", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "registered:" not in r.output
    import mlflow

    run = mlflow.search_runs(experiment_names=["r18"], filter_string="tags.`infomin.kind` = 'adversarial'")
    assert run["params.encoder"].tolist() == ["resnet18"] and out.exists()




def test_cli_authors_recipe_config_file_and_set_compose(mlflow_uri, tmp_path):
    """--config, then --recipe, then --set, then the flags: the resolved settings reach the run."""
    from typer.testing import CliRunner

    from infomin import tracking
    from infomin.cli import app
    from infomin.config import LearnViewsConfig
    from infomin.views import load

    cfg = tmp_path / "learn.yaml"
    LearnViewsConfig(epochs=1, batch_size=32, train_subset=64, test_subset=64, mi_steps=2,
                     encoder_kwargs={"width": 4}, temperature=0.3).to_yaml(cfg)
    out = tmp_path / "authors.yaml"
    r = CliRunner().invoke(app, [
        "learn-views", "--config", str(cfg), "--recipe", "authors", "--mode", "unsupervised",
        "--set", "critic_steps=2", "--no-eval", "--quiet", "--no-register", "--experiment", "authors",
        "--out", str(out)])
    assert r.exit_code == 0, r.output
    (run,) = tracking.client().search_runs(
        [tracking.get_or_create_experiment("authors")], "tags.`infomin.kind` = 'adversarial'")
    p = run.data.params
    assert (p["update"], p["lr"], p["generator_lr"], p["critic_steps"], p["temperature"]) == \
        ("alternating", "0.0002", "0.001", "2", "0.3")
    assert p["generator.kind"] == "pair" and p["generator.split.kind"] == "flow_color"
    g = load(out)
    assert g.kind == "pair" and g.channels == (1, 2) and "weights" in g.differentiable
    bad = CliRunner().invoke(app, ["learn-views", "--recipe", "paper", "--out", str(out)])
    assert bad.exit_code == 2 and "--recipe: got 'paper'" in bad.output and "authors" in bad.output


def test_start_flag_sets_the_flow_inside_the_authors_pair_and_keeps_its_crops():
    """`--recipe authors --start ydbdr` must learn crops + flow from YDbDr, not a crop-less flow."""
    from infomin import recipes
    from infomin.cli.learn import flag_generator

    pair = recipes.LEARN_AUTHORS["generator"]
    g = flag_generator(pair, "flow_color", "ydbdr", None)
    assert g["kind"] == "pair" and g["spatial"] == pair["spatial"]
    assert g["split"] == {"kind": "flow_color", "start": "ydbdr"}
    assert pair["split"]["start"] == "rgb"                        # the recipe itself is not modified
    nvp = flag_generator(pair, "flow_color", None, True)["split"]
    assert nvp["start"] == "rgb" and nvp["volume_preserving"] is True
    # without a recipe (or a pair without the flow) the flags name the whole generator
    assert flag_generator(None, "flow_color", "ydbdr", None) == {"kind": "flow_color", "start": "ydbdr",
                                                                 "volume_preserving": False}
    assert flag_generator(pair, "perturbation", None, None) == {"kind": "perturbation"}


@pytest.mark.parametrize("args,match", [
    (["--recipe", "authors", "--start", "lab"], "--start: got 'lab'"),
    (["--start", "lab"], "--start: got 'lab'"),
    (["--kind", "perturbation", "--start", "rgb"], "only the flow_color generator"),
    (["--recipe", "author"], "--recipe: got 'author'"),
])
def test_bad_learn_flags_are_named_by_their_flag_before_anything_runs(tmp_path, args, match):
    from typer.testing import CliRunner

    from infomin.cli import app

    res = CliRunner().invoke(app, ["learn-views", "--dataset", "colorful-moving-digits", *args,
                                   "--out", str(tmp_path / "g.yaml"),
                                   "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output
    assert "learn-views" not in res.output.split("error")[0]   # no run header before the error
    assert "valid choices" in res.output or "only" in res.output
