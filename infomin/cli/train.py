"""``infomin train`` (train and score one view candidate) and ``infomin eval RUN_ID`` (re-probe it).

Configuration precedence: :class:`~infomin.config.TrainConfig` defaults, then
``--recipe NAME`` (:mod:`infomin.recipes`), then ``--config cfg.yaml``, then
``--set key=value``, then the named flags. A recipe's view parameters (e.g. 16 px
crops) are applied to the views too, unless they are a learned generator. The
resolved config is printed and saved with the run.
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from infomin.cli._common import parse_sets, user_errors
from infomin.errors import InfominError, SpecError

out = Console()


def _metrics_table(metrics: dict[str, float]) -> Table:
    table = Table(title="metrics", show_header=True, header_style="bold")
    table.add_column("name")
    table.add_column("value", justify="right")
    order = ("eval/", "mi/", "train/")
    for prefix in order:
        for k in sorted(m for m in metrics if m.startswith(prefix)):
            v = metrics[k]
            table.add_row(k, f"{int(v)}" if k == "mi/k" else f"{v:.4f}")
    return table


def _recipe_views(recipe: str, views: str):
    """``views`` with the recipe's view parameters applied: a spec dict when they change it, else
    ``views`` itself (learned generators and URIs are left as they are)."""
    from infomin import recipes
    from infomin.views import hub
    from infomin.views.sources import resolve_source

    if hub.is_uri(views):
        return views
    src = resolve_source(views)
    if src.has_weights:
        return views
    spec = src.spec
    new = recipes.apply_views(recipe, spec)
    return views if new == spec else new


def train(
    views: str = typer.Option(..., "--views", "-v", help="View spec: a preset name (simclr, lab_l_ab), "
                              "a YAML path, or runs:/ / models:/ URI of a learned generator."),
    recipe: str = typer.Option(None, "--recipe", "-r", help="A named recipe (infomin.recipes, e.g. "
                               "CIFAR_CPU): its settings come first, then --config, --set and the flags."),
    dataset: str = typer.Option(None, help="colorful-moving-digits, cifar10, cifar10-npz, cifar100, "
                                "stl10, npz:<path>, folder:<path>."),
    data_root: str = typer.Option(None, "--data-root", help="Dataset folder (cifar10-npz arrays, torchvision "
                                  "sets; default $INFOMIN_DATA_ROOT or ~/.cache/infomin/datasets)."),
    epochs: int = typer.Option(None, help="Training epochs."),
    encoder: str = typer.Option(None, help="convnet, resnet18, tv:<torchvision resnet>."),
    temperature: float = typer.Option(None, help="InfoNCE temperature tau."),
    device: str = typer.Option(None, help="auto (CUDA if present), cpu, cuda, cuda:1."),
    batch_size: int = typer.Option(None, "--batch-size", help="Global batch size (K grows with it)."),
    lr: float = typer.Option(None, help="Peak learning rate."),
    optimizer: str = typer.Option(None, help="sgd, adamw or lars."),
    seed: int = typer.Option(None, help="Seed of data order, views and weights."),
    train_subset: int = typer.Option(None, "--train-subset", help="Train on a seeded subset."),
    test_subset: int = typer.Option(None, "--test-subset", help="Evaluate on a seeded subset."),
    config: Path = typer.Option(None, "--config", "-c", help="A TrainConfig YAML."),
    sets: list[str] = typer.Option(None, "--set", help="Any config key: --set knn_k=50 (repeatable)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri",
                                     help="MLflow store (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
    experiment: str = typer.Option(None, "--experiment", help="MLflow experiment name (default infomin)."),
    run_name: str = typer.Option(None, "--run-name", help="MLflow run name."),
    nproc: int = typer.Option(None, "--nproc", help="DDP processes (one per GPU; gloo on CPU)."),
    checkpoint_dir: str = typer.Option(None, "--checkpoint-dir", help="Write a checkpoint every epoch here."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --checkpoint-dir."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a contrastive model on VIEWS, score it, and record one MLflow run."""
    from infomin import recipes, tracking
    from infomin.config import TrainConfig
    from infomin.protocols import run_candidate

    with user_errors():
        flags = dict(dataset=dataset, data_root=data_root, epochs=epochs, encoder=encoder, temperature=temperature,
                     device=device, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                     train_subset=train_subset, test_subset=test_subset, nproc=nproc,
                     checkpoint_dir=checkpoint_dir)
        overrides = {**parse_sets(sets), **{k: v for k, v in flags.items() if v is not None}}
        if resume:
            overrides["resume"] = True
        if quiet:
            overrides["progress"] = False
        base = recipes.get(recipe) if recipe is not None else {}
        if config is not None:
            TrainConfig.from_yaml(config)          # a clear error for a bad file, before merging
            base.update(yaml.safe_load(config.read_text()) or {})
        cfg = TrainConfig.from_dict(base, **overrides)
        if recipe is not None:
            new_views = _recipe_views(recipe, views)
            if new_views is not views:
                out.print(f"[bold]recipe {recipe}[/]: views {views!r} with "
                          f"{recipes.VIEW_OVERRIDES[recipe]}", highlight=False, soft_wrap=True)
                views = new_views
        out.print("[bold]resolved config[/]")
        out.print(cfg.to_yaml().rstrip(), highlight=False, soft_wrap=True)
        exp_id = (tracking.get_or_create_experiment(experiment, uri=tracking_uri)
                  if experiment else None)
        try:
            res = run_candidate(views, cfg, experiment_id=exp_id, run_name=run_name,
                                tracking_uri=tracking_uri)
        except InfominError as e:
            run_id = getattr(e, "mlflow_run_id", None)
            if run_id:
                out.print(f"MLflow run [bold]{run_id}[/] marked FAILED "
                          f"(tag infomin.failure_reason)", highlight=False, soft_wrap=True)
            raise
        if not res.run_id or not res.metrics:   # torchrun: ranks other than 0 stay quiet
            return
        out.print(_metrics_table(res.metrics))
        out.print(f"MLflow run: [bold]{res.run_id}[/]  ({tracking.display_uri(tracking_uri)})",
                  highlight=False, soft_wrap=True)
        out.print(f"browse it:  {tracking.ui_command(tracking_uri)}", highlight=False, soft_wrap=True)


def evaluate(
    run_id: str = typer.Argument(..., help="The MLflow run id of an `infomin train` run."),
    probe: str = typer.Option(None, help="sklearn or torch (default: the run's)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda."),
    test_subset: int = typer.Option(None, "--test-subset", help="Evaluate on a seeded subset."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store."),
    log: bool = typer.Option(False, "--log", help="Also log the metrics to the run."),
) -> None:
    """Re-probe the encoder saved by run RUN_ID (safetensors) on its dataset."""
    from infomin.protocols import evaluate_run

    with user_errors():
        if probe is not None and probe not in ("sklearn", "torch"):
            raise SpecError("--probe", probe, choices=["sklearn", "torch"])
        metrics = evaluate_run(run_id, uri=tracking_uri, probe=probe, device=device,
                               test_subset=test_subset, log=log)
        out.print(_metrics_table(metrics))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)
