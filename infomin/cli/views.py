"""``infomin views``: list presets and kinds, preview a view generator on real images.

* ``infomin views list``: the presets in ``views/`` and every registered kind with its
  parameters, channels and declared differentiability;
* ``infomin views show PRESET_OR_YAML --out grid.png``: a grid source | v1 | v2 on real images
  (scikit-learn's bundled photos, its digits, or the CIFAR-10 test arrays; no network);
* ``infomin views render-all --out DIR``: one grid per preset.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from infomin.cli._common import user_errors
from infomin.errors import SpecError

if TYPE_CHECKING:  # torch is imported by the commands that draw images, not when commands register
    import torch

out = Console()


class ImageSource(str, enum.Enum):
    sample = "sample"
    digits = "digits"
    cifar = "cifar"


def _sample_photos(n: int, size: int, rng: torch.Generator) -> torch.Tensor:
    """``n`` random square crops of scikit-learn's two bundled photos, resized to ``size`` (antialiased)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(im.copy()).permute(2, 0, 1).float() / 255 for im in load_sample_images().images]
    out_ = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[-2:]
        side = int(torch.randint(min(h, w) // 3, min(h, w) + 1, (1,), generator=rng))
        y = int(torch.randint(0, h - side + 1, (1,), generator=rng))
        x = int(torch.randint(0, w - side + 1, (1,), generator=rng))
        crop = img[:, y:y + side, x:x + side].unsqueeze(0)
        out_.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False))
    return torch.cat(out_).clamp(0, 1)


def _digits(n: int, size: int, rng: torch.Generator) -> torch.Tensor:
    """scikit-learn's 8x8 digits, upsampled, painted with a random foreground and background colour."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = torch.randperm(len(d.images), generator=rng)[:n]
    g = torch.from_numpy(d.images[idx.numpy()]).float().unsqueeze(1) / 16.0   # n x 1 x 8 x 8
    g = F.interpolate(g, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    fg = torch.rand(n, 3, 1, 1, generator=rng)
    bg = torch.rand(n, 3, 1, 1, generator=rng)
    return g * fg + (1 - g) * bg


def _cifar(n: int, size: int, rng: torch.Generator) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    from infomin import data

    ds = data.load("cifar10-npz", split="test")
    idx = torch.randperm(len(ds), generator=rng)[:n]
    x = ds.images[idx].float() / 255
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)


def load_images(source: str, n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` RGB images (n, 3, size, size) in [0, 1] from ``source`` (sample | digits | cifar)."""
    from infomin.seeding import make_generator

    rng = make_generator(seed)
    if source == "sample":
        return _sample_photos(n, size, rng)
    if source == "digits":
        return _digits(n, size, rng)
    if source == "cifar":
        try:
            return _cifar(n, size, rng)
        except (ImportError, FileNotFoundError, OSError) as e:
            raise SpecError("--image-source", source, f"CIFAR-10 arrays unavailable ({e})",
                            choices=[s.value for s in ImageSource]) from None
    raise SpecError("--image-source", source, choices=[s.value for s in ImageSource])


def render_preset(spec: str, path: Path, *, n: int = 8, seed: int = 0, source: str = "sample",
                  size: int = 64) -> Path:
    """Build ``spec`` (preset name or YAML path), draw views of real images, save the grid."""
    import torch

    from infomin.views import build
    from infomin.views.render import save_grid

    gen = build(spec)
    with torch.no_grad():
        if gen.source == "dataset":   # re-renders the toy's items from their factors
            from infomin import data as D

            ds = D.load("colorful-moving-digits", split="test", subset=max(n, 10), seed=seed)
            idx = torch.arange(n)
            x = ds.batch(idx)
            pair = gen.pairs(ds)(idx, torch.Generator().manual_seed(seed))
        else:
            x = load_images(source, n, size, seed)
            pair = gen(x, rng=seed)
    names = gen.channel_names
    title = f"{spec}  ({gen.kind}, channels {gen.channels[0]} | {gen.channels[1]})"
    return save_grid(x, pair, path, n=n, title=title, channel_names=names)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(u) for u in v) + "]"
    return repr(v) if isinstance(v, str) else str(v)


def list_views() -> None:
    """Print the presets and the registered kinds."""
    from infomin.views import build, presets
    from infomin.views.registry import available

    table = Table(title="presets", header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("channels", no_wrap=True)
    table.add_column("file", overflow="fold")
    for name, path in sorted(presets().items()):
        try:
            gen = build(name)
            table.add_row(name, gen.kind, f"{gen.channels[0]} | {gen.channels[1]}", path.name)
        except Exception as e:  # a broken preset file is listed, not fatal
            table.add_row(name, "[red]error[/]", "-", f"{path}: {e}")
    out.print(table)

    table = Table(title="kinds", header_style="bold", show_lines=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("channels", no_wrap=True)
    table.add_column("grad", no_wrap=True)
    table.add_column("parameters (defaults) and description", overflow="fold")
    for kind, info in available().items():
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in info["params"].items()) or "(none)"
        try:
            ch = build({"kind": kind}).channels
            channels = f"{ch[0]} | {ch[1]}"
        except Exception:
            channels = "-"
        table.add_row(kind, channels, ", ".join(info["differentiable"]),
                      f"{params}\n[dim]{info['doc']}[/]")
    out.print(table)


def register(app: typer.Typer) -> None:
    views = typer.Typer(help="List, preview and render view generators.", no_args_is_help=True)

    @views.command("list")
    def list_cmd() -> None:
        """List the presets in views/ and every registered view kind."""
        with user_errors():
            list_views()

    @views.command("show")
    def show(
        spec: str = typer.Argument(..., help="A preset name (simclr, lab_l_ab, ...) or a YAML file."),
        out_path: Path = typer.Option(Path("views.png"), "--out", "-o", help="Output image (.png)."),
        n: int = typer.Option(8, "--n", min=1, max=64, help="Rows (images)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the images and the views."),
        image_source: ImageSource = typer.Option(ImageSource.sample, "--image-source",
                                                 help="sample: scikit-learn's photos; digits; "
                                                 "cifar: the CIFAR-10 test arrays."),
        size: int = typer.Option(None, "--size", min=8, max=512,
                                 help="Image side in pixels (default 64; 32 for cifar)."),
    ) -> None:
        """Render source | v1 | v2 for real images into one figure."""
        with user_errors():
            side = size or (32 if image_source is ImageSource.cifar else 64)
            path = render_preset(spec, out_path, n=n, seed=seed, source=image_source.value, size=side)
        out.print(f"wrote {path}")

    @views.command("render-all")
    def render_all(
        out_dir: Path = typer.Option(Path("views-out"), "--out", "-o", help="Output folder."),
        n: int = typer.Option(6, "--n", min=1, max=64, help="Rows per grid."),
        seed: int = typer.Option(0, "--seed"),
        image_source: ImageSource = typer.Option(ImageSource.sample, "--image-source"),
        size: int = typer.Option(None, "--size", min=8, max=512),
    ) -> None:
        """Render one grid per preset into OUT (learned presets included)."""
        from infomin.views import presets

        side = size or (32 if image_source is ImageSource.cifar else 64)
        failed = []
        with user_errors():
            for name in sorted(presets()):
                path = out_dir / (name.replace("/", "_") + ".png")
                try:
                    render_preset(name, path, n=n, seed=seed, source=image_source.value, size=side)
                    out.print(f"wrote {path}")
                except Exception as e:  # keep going; report at the end
                    failed.append(name)
                    out.print(f"[red]failed[/] {name}: {e}")
        if failed:
            raise typer.Exit(1)

    app.add_typer(views, name="views")
