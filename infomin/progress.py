"""One rich progress bar for every long loop (training epochs, the view learner)."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """A rich progress bar with a free-text stats column; a no-op when ``enabled`` is false.

    >>> with ProgressBar(total=3, desc="epoch 1/1", enabled=False) as bar:
    ...     bar.update(advance=1, loss=0.5)
    """

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.enabled = enabled
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeRemainingColumn())
            self.task = self.progress.add_task(desc, total=total, stats="")

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)

    def update(self, *, completed: int | None = None, advance: int | None = None,
               text: str | None = None, **stats: float) -> None:
        """Move the bar (to ``completed`` or by ``advance``) and show ``text`` or ``name value`` pairs."""
        if self.enabled:
            shown = text if text is not None else "  ".join(f"{k} {v:.3f}" for k, v in stats.items())
            self.progress.update(self.task, completed=completed, advance=advance, stats=shown)
