"""infomin.protocols.run_candidate end to end on the toy: it learns, the MLflow run is complete, failures are FAILED
runs with a reason, pruning is KILLED, resume through the protocol, and a 2-process DDP run."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

from infomin import tracking
from infomin.config import TrainConfig
from infomin.errors import InfominError, SpecError
from infomin.protocols import run_candidate

TOY = "colorful-moving-digits"
FACTORS = {"kind": "shared_factors", "shared": ["digit", "position"]}


def _tiny(**kw) -> TrainConfig:
    base = dict(dataset=TOY, train_subset=128, test_subset=64, batch_size=32, epochs=1,
                progress=False, eval_every=1, knn_k=20, plots=False)
    return TrainConfig.from_dict({**base, **kw})


def _random_init_probes(cfg: TrainConfig) -> dict[str, float]:
    """The same encoder at its (seeded) initialisation, probed the same way."""
    from infomin import data as D
    from infomin.evaluate import encode_fn, extract_features, linear_probe
    from infomin.models import ContrastiveModel
    from infomin.seeding import seeded
    from infomin.views import build

    train = D.load(cfg.dataset, split="train", subset=cfg.train_subset, seed=cfg.seed)
    test = D.load(cfg.dataset, split="test", subset=cfg.test_subset, seed=cfg.seed)
    with seeded(cfg.seed):
        model = ContrastiveModel((3, 3), cfg.encoder, proj_dim=cfg.proj_dim).eval()
    enc = encode_fn(model, build(FACTORS), device="cpu")
    tr, te = extract_features(enc, train.images), extract_features(enc, test.images)
    return {f: linear_probe(tr, train.factors[f], te, test.factors[f], seed=cfg.seed)
            for f in ("digit", "position")}


def test_training_learns_what_the_views_share_and_the_run_is_complete(tracking_db):
    # Views sharing {digit, position} (InfoMin's toy): after a short CPU training the
    # position probe is far above the same encoder at random initialisation (~0.3).
    cfg = TrainConfig(dataset=TOY, train_subset=768, test_subset=512, batch_size=64, epochs=3,
                      optimizer="adamw", lr=2e-3, weight_decay=1e-4, temperature=0.5,
                      warmup_epochs=0.2, progress=False, eval_every=1)
    res = run_candidate(FACTORS, cfg, run_name="learns", tags={"suite": "test"})
    before = _random_init_probes(cfg)
    after = res.metrics
    assert after["eval/linear_acc/position"] > before["position"] + 0.15, (before, after)
    assert after["eval/linear_acc/digit"] > before["digit"], (before, after)
    assert after["train/loss"] < res.history["train/loss"][0]

    run = tracking.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    p, m, tags = run.data.params, run.data.metrics, run.data.tags
    assert p["views.kind"] == "shared_factors" and p["views.shared"] == "['digit', 'position']"
    assert p["epochs"] == "3" and p["optimizer"] == "adamw" and p["temperature"] == "0.5"
    for name in ("train/loss", "train/mi_nce", "train/lr", "eval/knn_acc", "eval/linear_acc",
                 "eval/alignment", "eval/uniformity", "eval/tolerance", "eval/linear_acc/digit",
                 "eval/linear_acc/background", "eval/linear_acc/position", "mi/log_k", "mi/k",
                 "mi/nce", "mi/ratio"):
        assert name in m, name
    k = 2 * 64 - 1
    assert m["mi/k"] == k and m["mi/log_k"] == pytest.approx(math.log(k))
    assert m["mi/ratio"] == pytest.approx(m["mi/nce"] / math.log(k))
    assert m["mi/nce"] <= math.log(k)
    # one value per epoch for the monitors
    assert [s for s, _ in tracking.metric_history(res.run_id, "eval/knn_acc")][:3] == [0, 1, 2]
    assert len(tracking.metric_history(res.run_id, "train/loss")) == 3
    assert tags["suite"] == "test" and tags["mlflow.runName"] == "learns"
    arts = tracking.list_artifacts(res.run_id)
    for a in ("views.yaml", "config.yaml", "plots/curves.png", "plots/features.png",
              "plots/views.png", "model/encoder.safetensors", "model/model.safetensors"):
        assert a in arts, (a, arts)


def test_run_candidate_reloads_for_eval(tracking_db):
    from infomin.protocols import evaluate_run, load_model

    res = run_candidate({"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
                        _tiny(epochs=1))
    assert res.form == "cross" and res.channels == (1, 2)
    model, gen, spec, cfg = load_model(res.run_id)
    assert not model.shared and len(model.encoders) == 2 and spec["space"] == "lab"
    again = evaluate_run(res.run_id)
    assert again["eval/linear_acc"] == pytest.approx(res.metrics["eval/linear_acc"])
    assert again["eval/alignment"] == pytest.approx(res.metrics["eval/alignment"], rel=1e-4)


@pytest.mark.parametrize("change,match", [
    ({"dataset": "mnist-typo"}, "mnist-typo"),
    ({"encoder": "vgg"}, "vgg"),
])
def test_bad_input_is_a_failed_run_with_reason(tracking_db, change, match):
    with pytest.raises(SpecError, match=match) as info:
        run_candidate(FACTORS, _tiny(**change))
    run = tracking.get_run(info.value.mlflow_run_id)
    assert run.info.status == "FAILED"
    assert match in run.data.tags[tracking.FAILURE_TAG]


def test_missing_views_file_is_a_failed_run(tracking_db, tmp_path):
    with pytest.raises(SpecError, match="not found|no such") as info:
        run_candidate(str(tmp_path / "nope.yaml"), _tiny())
    run = tracking.get_run(info.value.mlflow_run_id)
    assert run.info.status == "FAILED" and "nope.yaml" in run.data.tags[tracking.FAILURE_TAG]


def test_nan_loss_is_a_failed_run(tracking_db):
    with pytest.raises(InfominError, match="loss is nan") as info:
        run_candidate(FACTORS, _tiny(temperature=1e-30, eval_every=0))
    run = tracking.get_run(info.value.mlflow_run_id)
    assert run.info.status == "FAILED" and "loss is nan" in run.data.tags[tracking.FAILURE_TAG]


def test_pruned_trial_is_killed_and_propagates(tracking_db):
    seen = []

    def on_epoch(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    with pytest.raises(optuna.TrialPruned) as info:
        run_candidate(FACTORS, _tiny(epochs=2), on_epoch=on_epoch)
    assert seen == [(0, ["eval/knn_acc", "train/loss", "train/lr", "train/mi_nce"])]
    run = tracking.get_run(info.value.mlflow_run_id)
    assert run.info.status == "KILLED"


def test_nested_child_run(tracking_db):
    exp = tracking.get_or_create_experiment("study")
    with tracking.start_run(experiment_id=exp, run_name="parent") as parent:
        res = run_candidate(FACTORS, _tiny(eval_every=0), experiment_id=exp,
                            parent_run_id=parent.run_id)
    child = tracking.get_run(res.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.run_id
    assert child.info.experiment_id == exp


def test_resume_through_the_protocol_matches_an_uninterrupted_run(tracking_db, tmp_path):
    cfg = _tiny(epochs=2, eval_every=0, train_subset=64)
    full = run_candidate(FACTORS, cfg)

    def crash(epoch, metrics):
        raise KeyboardInterrupt

    ck = str(tmp_path / "ck")
    with pytest.raises(KeyboardInterrupt) as info:
        run_candidate(FACTORS, cfg.replace(checkpoint_dir=ck), on_epoch=crash)
    assert tracking.get_run(info.value.mlflow_run_id).info.status == "KILLED"
    resumed = run_candidate(FACTORS, cfg.replace(checkpoint_dir=ck, resume=True))
    assert resumed.history["train/loss"] == full.history["train/loss"]
    assert len(tracking.metric_history(resumed.run_id, "train/loss")) == 2


def test_two_process_ddp_run_completes(tracking_db):
    # CMC views (two encoders, cross form) on 2 gloo processes; rank 0 logs the run.
    cfg = _tiny(nproc=2, epochs=1, batch_size=32, eval_every=0)
    res = run_candidate({"kind": "channel_split", "space": "lab"}, cfg)
    run = tracking.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["world_size"] == "2"
    assert "eval/linear_acc" in run.data.metrics and math.isfinite(run.data.metrics["train/loss"])
    assert res.metrics["mi/k"] == 32   # K is the global batch, not the per-rank 16


def test_on_epoch_with_nproc_is_refused(tracking_db):
    with pytest.raises(SpecError, match="on_epoch"):
        run_candidate(FACTORS, _tiny(nproc=2), on_epoch=lambda e, m: None)


def test_config_is_required():
    with pytest.raises(SpecError, match="TrainConfig"):
        run_candidate(FACTORS, {"epochs": 1})
    assert torch.get_num_threads() >= 1


def test_ceiling_warning_closed_form():
    from infomin.protocols import ceiling_warning

    k = 255
    assert ceiling_warning(0.5 * math.log(k), k) is None
    msg = ceiling_warning(0.95 * math.log(k), k)
    assert msg is not None and "K = 255" in msg and "larger batch" in msg
