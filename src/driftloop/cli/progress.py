"""The progress of long verbs: copies made of all still to make, their rate, chains done, money spent.

In a terminal: a rich progress bar. Without one (a log file, a pipe, ``nohup``, CI): one plain line every
:data:`PLAIN_EVERY` seconds (``DRIFTLOOP_PROGRESS_INTERVAL`` to change it), so a long run is never silent.
"""

from __future__ import annotations

import os
import time
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

from driftloop import fmt
from driftloop.cli.shell import console

# Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_EVERY = 15.0

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


def plain_line(label: str, done: int, total: int, made: int, seconds: float) -> str:
    """``replicating: 37/101 copies (37%) · 0.68 copies/s · about 1 min left``: ``made`` copies (this
    session's, not those a resumed run already had) in ``seconds`` give the rate and the time left."""
    share = f" ({100 * done // total}%)" if total else ""
    text = f"{label}: {done}/{total} copies{share}"
    if made > 0 and seconds > 0:
        rate = made / seconds
        text += f" · {rate:.2f} copies/s"
        if total > done:
            text += f" · about {fmt.duration((total - done) / rate)} left"
    return text


def _plain_every() -> float:
    try:
        return max(0.0, float(os.environ.get("DRIFTLOOP_PROGRESS_INTERVAL", PLAIN_EVERY)))
    except ValueError:
        return PLAIN_EVERY


class ProgressDisplay:
    """A rich progress bar fed by engine events (copies made of all still to make, over every chain); plain
    lines at a steady interval when stderr is not a terminal; silent under --quiet."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.enabled = not quiet and console.is_terminal
        self.plain = not quiet and not console.is_terminal
        self.every = _plain_every()
        self._first: tuple[float, int] | None = None  # (time, copies done) at the first event
        self._said = -1.0  # when the last plain line was printed
        self._said_done = -1  # and at how many copies
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
        if self.plain:
            self._say(event)
            return
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=event.frames_total)
        self.progress.update(self.task, completed=event.frames_done, total=event.frames_total, event=event)

    def _say(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, event.frames_done)
        finished = event.frames_done >= event.frames_total
        if event.frames_done == self._said_done or (
            self._said >= 0 and now - self._said < self.every and not finished
        ):
            return
        self._said, self._said_done = now, event.frames_done
        started, done_then = self._first
        line = plain_line(self.label, event.frames_done, event.frames_total, event.frames_done - done_then,
                          now - started)  # fmt: skip
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    def for_label(self, label: str) -> ProgressDisplay:
        """Another bar on the same display (a sweep shows one per model)."""
        other = ProgressDisplay.__new__(ProgressDisplay)
        other.enabled, other.progress, other.label, other.task = self.enabled, self.progress, label, None
        other.plain, other.every, other._first, other._said = self.plain, self.every, None, -1.0
        other._said_done = -1
        return other
