"""The progress bar of long verbs: copies made of all still to make, their rate, chains done, money spent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from driftloop.cli.shell import console

if TYPE_CHECKING:
    from driftloop.chain import ProgressEvent


class CopyRate(ProgressColumn):
    """Copies per second so far, chains finished, and money spent (hosted models)."""

    def render(self, task: Task) -> Text:
        event = task.fields.get("event")
        rate = (
            f"{task.completed / task.elapsed:.2f} copies/s"
            if task.completed and task.elapsed
            else "-- copies/s"
        )
        if event is None:
            return Text(rate, style="progress.data.speed")
        chains = f" · {event.chains_done}/{event.chains_total} chains" if event.chains_total > 1 else ""
        spend = f" · ${event.usd:.2f}" if event.usd else ""
        return Text(rate + chains + spend, style="progress.data.speed")


class ProgressDisplay:
    """A rich progress bar fed by engine events (copies made of all still to make, over every chain);
    silent under --quiet or when stderr is not a terminal."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.enabled = not quiet and console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("copies"),
            CopyRate(),
            TimeRemainingColumn(),
            console=console,
            disable=not self.enabled,
            transient=False,
        )
        self.label = label
        self.task: int | None = None

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=event.frames_total)
        self.progress.update(self.task, completed=event.frames_done, total=event.frames_total, event=event)

    def for_label(self, label: str) -> ProgressDisplay:
        """Another bar on the same display (a sweep shows one per model)."""
        other = ProgressDisplay.__new__(ProgressDisplay)
        other.enabled, other.progress, other.label, other.task = self.enabled, self.progress, label, None
        return other
