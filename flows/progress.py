"""Step progress of a refresh, for the command line.

The Prefect UI already shows each task of a run. A person who started ``kgrec refresh`` or
``kgrec demo`` in a terminal sees the same steps as progress bars: the flows report which step
starts and how far it got, and the CLI installs a :class:`Reporter` that draws them. Without a
reporter installed (deployments, tests, the API) every call here does nothing.

The reporter is process-wide, not per run: the CLI runs one refresh at a time in its process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    """Receives the steps of a refresh as they happen."""

    def begin(self, step: str, total: int | None) -> None:
        """A step started; ``total`` is its number of units (None: one unit of unknown length)."""

    def advance(self, step: str, units: int) -> None:
        """``units`` more units of ``step`` are done."""

    def end(self, step: str, ok: bool) -> None:
        """The step finished (``ok``) or raised."""


_lock = threading.Lock()
_reporter: Reporter | None = None


def install(reporter: Reporter | None) -> Reporter | None:
    """Make ``reporter`` receive every step from now on (None removes it); returns the previous one."""
    global _reporter
    with _lock:
        previous, _reporter = _reporter, reporter
    return previous


@contextmanager
def step(name: str, total: int | None = None) -> Iterator[None]:
    """Report ``name`` as running for the duration of the ``with`` block."""
    reporter = _reporter
    if reporter is None:
        yield
        return
    reporter.begin(name, total)
    try:
        yield
    except BaseException:
        reporter.end(name, ok=False)
        raise
    reporter.end(name, ok=True)


def advance(name: str, units: int = 1) -> None:
    """Count ``units`` more done in the running step ``name``."""
    reporter = _reporter
    if reporter is not None:
        reporter.advance(name, units)


class RichReporter:
    """Draws one bar per step with rich (a Prefect dependency), finished steps stay listed.

    Args:
        console: where to draw; by default standard error, so stdout stays parseable.
    """

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description:<28}"),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=self.console, transient=False)
        self._tasks: dict[str, tuple[int, int]] = {}  # step -> (rich task id, total)

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def title(self, text: str) -> None:
        """A heading line above the next bars (e.g. the domain being refreshed)."""
        self._progress.console.print(text)

    def begin(self, step: str, total: int | None) -> None:
        total = total if total is not None else 1
        self._tasks[step] = (self._progress.add_task(step, total=total), total)

    def advance(self, step: str, units: int) -> None:
        if step in self._tasks:
            self._progress.advance(self._tasks[step][0], units)

    def end(self, step: str, ok: bool) -> None:
        if step not in self._tasks:
            return
        task_id, total = self._tasks.pop(step)
        if ok:
            self._progress.update(task_id, completed=total)
        else:
            self._progress.update(task_id, description=f"[red]{step} (failed)")
        self._progress.stop_task(task_id)
