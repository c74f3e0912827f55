"""The main job in a few minutes on a laptop CPU: ``python -m infomin.demo`` (``make demo``).

1. Writes a view grid of every preset in ``views/`` to ``demo-out/`` (what each
   encoder sees).
2. Runs the ``quickstart`` study (``studies/quickstart.py``): five candidate view
   pairs on the toy (colorful-moving-digits), three seeds each, trained contrastively, probed
   (one linear probe per factor: digit, background, position) and recorded as a
   child MLflow run under one parent run for the study, with an embedded SQLite
   Optuna storage and MLflow store in the working directory.
3. Prints the sweet-spot report (accuracy against I_NCE, the fitted reverse U)
   and the command that opens the MLflow UI and optuna-dashboard (``infomin ui``,
   spelled ``.venv/bin/infomin ui`` when run by ``make demo``).

About 5 minutes on 2 idle CPU cores (docs/toy.md). ``--quick`` trains and probes a single small
candidate instead of the study (a smoke test of well under a minute).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

OUT = Path("demo-out")
FALLBACK_LAB = {"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]}


def write_preset_grids(out: Path = OUT, *, n: int = 6, seed: int = 0) -> list[Path]:
    """One PNG per view preset (source | v1 | v2 on toy images) in ``out``."""
    import torch

    from infomin import data as D
    from infomin import views as V
    from infomin.seeding import make_generator
    from infomin.views import render

    ds = D.load("colorful-moving-digits", split="test", subset=max(n, 10), seed=seed)
    idx = torch.arange(n)
    x = ds.batch(idx)
    written = []
    for name, path in sorted(V.presets().items()):
        try:
            gen = V.load(path) if name.startswith("learned/") else V.build(path)
            if gen.in_channels not in (None, x.shape[1]):
                continue
            pair = gen.pairs(ds)(idx, make_generator(seed))
            names = gen.channel_names
            dst = out / f"views_{name.replace('/', '_')}.png"
            render.save_grid(x, pair, dst, n=n, title=name,
                             channel_names=names if names != (None, None) else None)
            written.append(dst)
        except Exception as e:  # a broken preset must not stop the demo; say which and why
            print(f"  (skipped preset {name}: {type(e).__name__}: {e})")
    return written


def train_candidate(views: str = "lab_l_ab", *, quick: bool = False, tracking_uri: str | None = None,
                    experiment: str = "infomin-demo"):
    """Train and score one candidate on the toy; return the :class:`CandidateResult`."""
    from infomin import tracking
    from infomin.config import TrainConfig
    from infomin.protocols import run_candidate
    from infomin.views import presets

    if views == "lab_l_ab" and "lab_l_ab" not in presets():
        views = FALLBACK_LAB
    cfg = TrainConfig(
        dataset="colorful-moving-digits",
        encoder="convnet",
        epochs=2 if quick else 6,
        batch_size=64 if quick else 128,
        train_subset=256 if quick else 2000,
        test_subset=128 if quick else None,   # the whole 1,000-image test split
        optimizer="adamw", lr=2e-3, weight_decay=1e-4, warmup_epochs=0.5 if quick else 1.0,
        temperature=0.2, knn_k=50 if quick else 200, eval_every=2, seed=0,
    )
    exp = tracking.get_or_create_experiment(experiment, uri=tracking_uri)
    return run_candidate(views, cfg, experiment_id=exp, run_name=f"demo-{_name(views)}",
                         tags={"infomin.demo": "true"}, tracking_uri=tracking_uri)


def _name(views) -> str:
    return views if isinstance(views, str) else str(views.get("kind"))


def print_result(res, tracking_uri: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from infomin import tracking

    console = Console()
    table = Table(title="candidate metrics", header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(res.metrics):
        if key.startswith(("eval/", "mi/")) or key == "train/loss":
            v = res.metrics[key]
            table.add_row(key, f"{int(v)}" if key == "mi/k" else f"{v:.4f}")
    console.print(table)
    console.print(f"MLflow run: [bold]{res.run_id}[/]", highlight=False, soft_wrap=True)
    console.print(f"browse it:  {tracking.ui_command(tracking_uri)}   (the MLflow UI; Ctrl-C stops it)",
                  highlight=False, soft_wrap=True)


def run_quickstart(*, workers: int | None = None, tracking_uri: str | None = None) -> None:
    """Run ``studies/quickstart.py`` through the CLI's own code path and print its report."""
    import os

    from infomin.cli import app

    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    app(["study", "run", "quickstart", "--workers", str(workers)], standalone_mode=False)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="train and probe one small candidate instead of the study (under a minute)")
    p.add_argument("--views", default="lab_l_ab", help="with --quick: a preset name or YAML path (default lab_l_ab)")
    p.add_argument("--workers", type=int, default=None, help="study worker processes (default: min(2, cores))")
    p.add_argument("--out", default=str(OUT), help="folder for the preset view grids")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default sqlite:///mlflow.db)")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    print(f"[1/2] view grids of every preset -> {args.out}/")
    grids = write_preset_grids(Path(args.out), n=4 if args.quick else 6)
    print(f"  wrote {len(grids)} grids")
    if args.quick:
        print(f"[2/2] training and probing the {args.views} candidate on colorful-moving-digits")
        res = train_candidate(args.views, quick=True, tracking_uri=args.tracking_uri)
        print_result(res, args.tracking_uri)
    else:
        print("[2/2] the quickstart study: which factors must two views share for the encoder to "
              "learn the digit? (studies/quickstart.py)")
        run_quickstart(workers=args.workers, tracking_uri=args.tracking_uri)
    print(f"demo done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
