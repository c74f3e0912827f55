"""Render view pairs as an image grid: rows are images, columns source | v1 | v2.

Views are shown so that what each encoder sees is readable:

* a 3-channel RGB view is one colour panel;
* any other view gets one grey panel per channel (1-channel L or Y, the two
  chroma channels of ab / DbDr, the three channels of XYZ or HSV, learned
  channels), labelled with the channel name when known.

Grey panels use a fixed [0, 1] scale when the channel lies in about [0, 1]
(colour-space channels are rescaled to that range by :mod:`infomin.views.color`)
and a per-panel min-max stretch otherwise (then the label says "(stretched)").

>>> import torch, tempfile, pathlib
>>> from infomin.views import build
>>> from infomin.views.render import save_grid
>>> x = torch.rand(4, 3, 32, 32)
>>> out = save_grid(x, build("lab_l_ab")(x, rng=0), pathlib.Path(tempfile.mkdtemp()) / "g.png", n=2)
>>> out.name
'g.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

__all__ = ["save_grid"]


def _panels(v: Tensor, rgb: bool, names: Sequence[str] | None, tag: str) -> list[tuple[str, Tensor, bool]]:
    """Split one view (C, H, W) into (label, image, is_rgb) panels."""
    v = v.detach().float().cpu()
    if v.shape[0] == 3 and rgb:
        return [(tag, v.permute(1, 2, 0).clamp(0, 1), True)]
    out = []
    for c in range(v.shape[0]):
        name = names[c] if names is not None and c < len(names) else f"c{c}"
        out.append((f"{tag} {name}", v[c], False))
    return out


def save_grid(x: Tensor, pair, path: str | Path, *, n: int = 8, title: str | None = None,
              rgb: tuple[bool, bool] | None = None,
              channel_names: tuple[Sequence[str] | None, Sequence[str] | None] | None = None) -> Path:
    """Save a figure of ``n`` rows (images) and columns source | v1 panels | v2 panels.

    Args:
        x: (B, 3, H, W) source images in [0, 1].
        pair: a :class:`~infomin.views.base.ViewPair` or ``(v1, v2)``; views (B, C_i, h, w).
        path: output image file (format from the suffix, e.g. ``.png``).
        n: rows (the first ``n`` images).
        title: figure title.
        rgb: whether each 3-channel view is RGB (default: yes unless channel names are given).
        channel_names: names for each view's channels (e.g. ``(["L"], ["a", "b"])``).

    Returns:
        ``Path(path)``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    v1, v2 = pair[0], pair[1]
    n = max(1, min(n, x.shape[0]))
    names = channel_names or (None, None)
    if rgb is None:
        rgb = (names[0] is None, names[1] is None)
    rows = []
    for i in range(n):
        src = [("source", x[i].detach().float().cpu().permute(1, 2, 0).clamp(0, 1), True)]
        rows.append(src + _panels(v1[i], rgb[0], names[0], "v1") + _panels(v2[i], rgb[1], names[1], "v2"))
    cols = len(rows[0])
    fig = Figure(figsize=(1.5 * cols, 1.5 * n + (0.5 if title else 0.2)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, cols, squeeze=False)
    for i, row in enumerate(rows):
        for j, (label, img, is_rgb) in enumerate(row):
            ax = axes[i][j]
            if is_rgb:
                ax.imshow(img.numpy(), interpolation="nearest")
            else:
                lo, hi = float(img.min()), float(img.max())
                if lo >= -0.05 and hi <= 1.05:
                    ax.imshow(img.numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                else:
                    ax.imshow(((img - lo) / max(hi - lo, 1e-12)).numpy(), cmap="gray", vmin=0.0,
                              vmax=1.0, interpolation="nearest")
                    label += " (stretched)"
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
