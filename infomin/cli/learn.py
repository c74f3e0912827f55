"""``infomin learn-views``: InfoMin's adversarial view learner (arXiv 2005.10243, §4.1) from the shell.

Reads like the paper's protocol: learn g (min over g, max over the encoders of
I_NCE, plus label cross-entropy in semi-supervised mode), measure I_NCE of the
start and learned views with fresh critics, freeze g and train fresh encoders on
both, probe, save g (safetensors + YAML), log and register it.

Configuration precedence: :class:`~infomin.config.LearnViewsConfig` defaults, then
``--config learn.yaml``, then ``--set key=value``, then the named flags; the
resolved config is printed and logged with the parent run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from infomin.cli._common import parse_sets, user_errors
from infomin.errors import SpecError, check_choice

out = Console()

GENERATOR_KINDS = ("flow_color", "perturbation")


def learn_views_cmd(
    dataset: str = typer.Option(None, "--dataset", "-d",
                                help="An infomin.data name (colorful-moving-digits, cifar10-npz, ...)."),
    data_root: str = typer.Option(None, "--data-root", help="Dataset folder (default $INFOMIN_DATA_ROOT)."),
    mode: str = typer.Option("semi-supervised", "--mode", "-m",
                             help="unsupervised (min_g max_f I_NCE) or semi-supervised (+ label cross-entropy on --labels examples)."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Where to save g: PATH.yaml (+ PATH.safetensors); "
                                  "views/learned/NAME.yaml makes it a preset."),
    epochs: int = typer.Option(None, "--epochs", "-e", help="Adversarial epochs (also the evaluation runs' epochs)."),
    labels: int = typer.Option(None, "--labels", help="Labelled examples (semi-supervised), class-balanced."),
    label: str = typer.Option(None, "--label", help="Factor the classifiers keep and the probes score "
                              "(toy: digit, background, position, hue; default: the dataset's labels)."),
    ce_weight: float = typer.Option(None, "--ce-weight", help="Weight of the classifiers' cross-entropy "
                                    "(semi-supervised; default 1)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed of the first repeat."),
    repeats: int = typer.Option(1, "--repeats", "-r", help="Repeat over seeds seed..seed+repeats-1 and report the spread."),
    start: str = typer.Option(None, "--start", help="Colour space the flow starts from: rgb (default) or ydbdr."),
    kind: str = typer.Option(None, "--kind", help="flow_color (default) or perturbation (Viewmaker-style)."),
    volume_preserving: bool = typer.Option(None, "--volume-preserving/--nvp",
                                           help="NICE (additive) flow instead of RealNVP (affine, default)."),
    batch_size: int = typer.Option(None, "--batch-size", help="InfoNCE batch N (K follows)."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate of the encoders (critics)."),
    generator_lr: float = typer.Option(None, "--generator-lr", help="Adam learning rate of g (default: --lr)."),
    temperature: float = typer.Option(None, "--temperature", help="InfoNCE temperature tau."),
    train_subset: int = typer.Option(None, "--train-subset", help="Seeded training subset (0: all)."),
    test_subset: int = typer.Option(None, "--test-subset", help="Seeded test subset (0: all)."),
    mi_steps: int = typer.Option(None, "--mi-steps", help="Steps of the fresh critics that measure I_NCE."),
    width: int = typer.Option(None, "--width", help="Width of the learner's ConvNet critics (default 16)."),
    encoder: str = typer.Option(None, "--encoder", help="Encoder of the critics and the evaluation runs: "
                                "convnet (default), resnet18 (CIFAR stem) or tv:<torchvision name>."),
    device: str = typer.Option(None, "--device", help="auto (CUDA if present), cpu, cuda, cuda:1."),
    evaluate: bool = typer.Option(None, "--eval/--no-eval",
                                  help="Train fresh encoders on start and learned views and probe them."),
    recipe: str = typer.Option(None, "--recipe", help="Named settings under the flags: authors (the InfoMin "
                               "authors' learner: Adam 2e-4 betas (0.5, 0.999), g and heads at 5x, "
                               "alternating updates, the flow after two different crops)."),
    update: str = typer.Option(None, "--update", help="simultaneous (gradient reversal) or alternating "
                               "(critic step, then g against the updated critic)."),
    config: Path = typer.Option(None, "--config", "-c", help="A LearnViewsConfig YAML."),
    sets: list[str] = typer.Option(None, "--set", help="Any LearnViewsConfig key: --set critic_steps=2, "
                                   "--set eval.epochs=8 (repeatable)."),
    register_as: str = typer.Option(None, "--register", help="Register g in the MLflow model registry under NAME "
                                    "(default: the --out file's name, e.g. mine for views/learned/mine.yaml)."),
    no_register: bool = typer.Option(False, "--no-register", help="Log g to its run but do not register it."),
    alias: str = typer.Option("current", "--alias", help="Registry alias to point at the new version."),
    experiment: str = typer.Option(None, "--experiment", help="MLflow experiment (default infomin-learn-views)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store (default sqlite:///mlflow.db)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Learn views adversarially (InfoMin), evaluate them against the start views, save and register g.

    Settings: LearnViewsConfig defaults, then --config, then --recipe, then --set, then the flags.
    """
    from infomin import recipes, tracking
    from infomin.config import LearnViewsConfig
    from infomin.protocols import EXPERIMENT, learn_views
    from infomin.views.learned import FLOW_STARTS

    with user_errors():
        if repeats < 1:
            raise SpecError("--repeats", repeats, "expected at least 1")
        if out_path.suffix not in (".yaml", ".yml"):
            raise SpecError("--out", str(out_path), "expected a PATH.yaml (the weights go next to it)")
        overrides: dict = {}
        if recipe is not None:
            check_choice("--recipe", recipe, sorted(recipes.LEARN_RECIPES))
            overrides.update(recipes.LEARN_RECIPES[recipe])
        overrides.update(parse_sets(sets))
        if kind is not None or start is not None or volume_preserving is not None:
            kind = check_choice("--kind", kind or "flow_color", GENERATOR_KINDS)
            if start is not None:
                check_choice("--start", start, FLOW_STARTS)
            if kind == "perturbation" and (start is not None or volume_preserving is not None):
                raise SpecError("--start" if start is not None else "--volume-preserving",
                                start if start is not None else volume_preserving,
                                "only the flow_color generator has a start space and a flow type")
            overrides["generator"] = flag_generator(overrides.get("generator"), kind, start, volume_preserving)
        flags = dict(dataset=dataset, data_root=data_root, mode=mode, epochs=epochs, labels=labels, label=label,
                     ce_weight=ce_weight, batch_size=batch_size, lr=lr, generator_lr=generator_lr,
                     temperature=temperature, mi_steps=mi_steps, encoder=encoder, device=device,
                     evaluate=evaluate, update=update)
        overrides.update({k: v for k, v in flags.items() if v is not None})
        overrides["seeds"] = list(range(seed, seed + repeats))
        if encoder is not None and encoder != "convnet":
            if width is not None:
                raise SpecError("--width", width, f"only the convnet encoder has a width, not {encoder!r}")
            overrides["encoder_kwargs"] = {}
        if width is not None:
            overrides["encoder_kwargs"] = {"width": width}
        for name, v in (("train_subset", train_subset), ("test_subset", test_subset)):
            if v is not None:
                overrides[name] = None if v == 0 else v
        if quiet:
            overrides["progress"] = False
        cfg = (LearnViewsConfig.from_yaml(config, **overrides) if config is not None
               else LearnViewsConfig.from_dict(overrides))
        if not no_register and register_as is None:
            register_as = out_path.stem
        out.print(f"[bold]learn-views[/] {cfg.mode} on {cfg.dataset}: g = {cfg.generator}, seeds "
                  f"{list(cfg.seeds)}", highlight=False)
        res = learn_views(cfg, out=out_path, register_as=None if no_register else register_as,
                          alias=alias, experiment=experiment or EXPERIMENT, tracking_uri=tracking_uri,
                          echo=lambda m: out.print(m, highlight=False))
        out.print(_table(res))
        out.print(f"saved g: [bold]{out_path}[/] (+ {out_path.with_suffix('.safetensors').name})",
                  highlight=False)
        if res.registered.get("registered_uri"):
            out.print(f"registered: [bold]{res.registered['registered_uri']}[/] "
                      f"(version {res.registered['version']})", highlight=False)
        out.print(f"reuse it:   infomin.views.load({str(res.registered.get('registered_uri') or out_path)!r})",
                  highlight=False)
        out.print(f"MLflow parent run: {res.parent_run_id}   browse: {tracking.ui_command(tracking_uri)}",
                  highlight=False)


def _table(res) -> Table:
    cols = [("I_NCE before", "mi/before"), ("I_NCE after", "mi/after"),
            ("probe start", "eval/linear_acc/start"), ("probe learned", "eval/linear_acc/learned")]
    table = Table(title=f"learned views ({res.mode}); I_NCE from fresh critics, nats", header_style="bold")
    table.add_column("seed", justify="right")
    for name, _ in cols:
        table.add_column(name, justify="right")
    for row in res.table():
        table.add_row(str(row["seed"]), *(f"{row[k]:.3f}" if k in row else "-" for _, k in cols))
    if len(res.seeds) > 1:
        table.add_row("mean ± sd", *(
            f"{res.summary[k + '/mean']:.3f} ± {res.summary[k + '/std']:.3f}" if k + "/mean" in res.summary
            else "-" for _, k in cols))
    return table


def register(app: typer.Typer) -> None:
    app.command("learn-views")(learn_views_cmd)


def flag_generator(base: Any, kind: str, start: str | None, volume_preserving: bool | None) -> dict:
    """The generator spec that ``--kind``, ``--start`` and ``--volume-preserving`` ask for.

    A recipe's ``pair`` whose split is the colour flow (``--recipe authors``: crops, then the
    flow) keeps its crops: the flags set the flow inside it. Otherwise they name the whole
    generator.
    """
    split = base.get("split") if isinstance(base, Mapping) and base.get("kind") == "pair" else None
    if kind == "flow_color" and isinstance(split, Mapping) and split.get("kind") == "flow_color":
        flow = dict(split)
        if start is not None:
            flow["start"] = start
        if volume_preserving is not None:
            flow["volume_preserving"] = bool(volume_preserving)
        return {**base, "split": flow}
    if kind == "flow_color":
        return {"kind": "flow_color", "start": start or "rgb", "volume_preserving": bool(volume_preserving)}
    return {"kind": "perturbation"}
