"""Progress on a terminal, silence on a pipe.

Anything that can take more than a second or two (loading a large solution, proofs,
lint rules, verify's stages, cross-checks, benches) shows what it is doing on stderr
when stderr is a terminal; in CI logs, pipes and tests it prints nothing, so output
that scripts read never changes.  ``KSM_PROGRESS=0`` turns it off, ``=1`` forces it.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console

_console: Console | None = None


def enabled() -> bool:
    forced = os.environ.get("KSM_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "no", "false")
    try:
        return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def console() -> Console:
    """The stderr console progress draws on (a test may set its own with :func:`use`)."""
    global _console
    if _console is None:
        _console = Console(stderr=True, highlight=False)
    return _console


def use(c: Console | None) -> None:
    global _console
    _console = c


@contextmanager
def busy(label: str) -> Iterator[None]:
    """A spinner with ``label`` while the block runs (nothing when not on a terminal)."""
    if not enabled():
        yield
        return
    with console().status(label, spinner="dots"):
        yield


@contextmanager
def steps(label: str, total: int) -> Iterator[Callable[[str], None]]:
    """A bar of ``total`` steps; the block calls ``advance(description)`` after each one."""
    if not enabled() or total <= 0:
        yield lambda _description="": None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console(), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(description: str = "") -> None:
            bar.update(task, advance=1, description=f"{label}: {description}" if description else label)
        yield advance
