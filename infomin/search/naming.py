"""How a study's runs read in the MLflow UI: short distinct names, colours, descriptions.

``t03 digit+position`` for trial 3, ``t03 digit+position s1`` for its seed 1; consecutive trials
get distinct colours; a trial's description names its candidate and, once it is done, its result.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

LABEL_CHARS = 40
#: Run colours: MLflow's own palette, reordered so that consecutive trials differ in hue (MLflow
#: otherwise hashes run ids onto 29 colours, and two of five trials shared one here).
TRIAL_COLORS = ("#2272b4", "#de7921", "#3ba65e", "#c83243", "#8a63bf", "#04867d", "#e65b77", "#a6630c",
                "#434a93", "#facb66", "#137dae", "#93320b", "#277c43", "#b45091", "#5f7281", "#f2be88",
                "#0e538b", "#9e102c", "#8ddda8", "#be501e", "#4299e0", "#c82d4c", "#308613", "#f792a6",
                "#445461", "#8acaff", "#115026", "#8396a5")
PARENT_COLOR = "#1f272d"


def trial_color(number: int) -> str:
    """The colour of trial ``number``'s run: distinct for the first 28 trials of a study.

    >>> trial_color(0), trial_color(1), trial_color(28)
    ('#2272b4', '#de7921', '#2272b4')
    """
    return TRIAL_COLORS[int(number) % len(TRIAL_COLORS)]


def name_width(n_trials: int) -> int:
    """Digits of the trial numbers in run names: 2, or more for studies of 100+ trials."""
    return max(2, len(str(max(int(n_trials) - 1, 0))))


def param_label(params: Mapping[str, Any], max_chars: int = LABEL_CHARS) -> str:
    """A short label of a candidate's parameters: categorical strings bare, numbers as ``k=v``.

    >>> param_label({"shared": "digit+position"})
    'digit+position'
    >>> param_label({"space": "lab", "lead": 1, "min_scale": 0.123456})
    'lab lead=1 min_scale=0.123'
    """
    parts = []
    for k, v in params.items():
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, bool):
            parts.append(k if v else f"no-{k}")
        elif isinstance(v, float):
            parts.append(f"{k}={v:.3g}")
        else:
            parts.append(f"{k}={v}")
    label = " ".join(parts)
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def trial_run_name(number: int, params: Mapping[str, Any], *, width: int = 2, seed: int | None = None) -> str:
    """The MLflow run name of a trial: ``t03 digit+position`` (``t03 digit+position s1`` for seed 1).

    Short enough for the runs table, distinct across a study's trials, and sorted by trial number.

    >>> trial_run_name(3, {"shared": "digit+position"})
    't03 digit+position'
    >>> trial_run_name(3, {}, seed=1)
    't03 s1'
    """
    parts = [f"t{int(number):0{width}d}", param_label(params)]
    if seed is not None:
        parts.append(f"s{seed}")
    return " ".join(p for p in parts if p)


def trial_note(study: str, number: int, params: Mapping[str, Any], views: Any, metric: str,
               direction: str) -> str:
    """The trial run's description: which candidate it is, and what the study scores it by."""

    shown = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items())
    lines = [f"Trial {number} of study `{study}`" + (f": {shown}" if shown else "") + ".", "",
             f"Views: `{json.dumps(views, default=str)}`", "",
             f"Objective: `{metric}` ({direction})."]
    return "\n".join(lines)


def result_line(metrics: Mapping[str, Any], metric: str) -> str:
    """One markdown line of the numbers a user compares.

    >>> result_line({"eval/linear_acc": 0.5, "mi/nce": 1.25, "mi/log_k": 5.5}, "eval/linear_acc")
    'Result: eval/linear_acc = 0.5000 · I_NCE = 1.250 nats (log K = 5.500)'
    """
    parts = []
    keys = [metric] + [k for k in ("eval/linear_acc",) if k != metric]
    for k in keys:
        if _finite(metrics.get(k)):
            parts.append(f"{k} = {float(metrics[k]):.4f}")
    if _finite(metrics.get("mi/nce")):
        mi = f"I_NCE = {float(metrics['mi/nce']):.3f} nats"
        if _finite(metrics.get("mi/log_k")):
            mi += f" (log K = {float(metrics['mi/log_k']):.3f})"
        parts.append(mi)
    for k, label in (("eval/alignment", "alignment"), ("eval/uniformity", "uniformity"),
                     ("eval/tolerance", "tolerance")):
        if _finite(metrics.get(k)):
            parts.append(f"{label} = {float(metrics[k]):.3f}")
    return "Result: " + " · ".join(parts)


def _finite(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
