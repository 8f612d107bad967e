"""ksm — back ends and the command-line tool over a resolved solution.

``ksm.load(path, **options)`` returns the :class:`policy_lang.Solution` every back
end reads; ``ksm.SecurityModule(solution).decide(ksm.Event.request(...))`` decides
events as the Kaspersky Security Module would (docs/runtime.md).
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

from policy_lang import LoadOptions, Solution
from policy_lang import load as _load


try:
    __version__ = metadata.version("ksm-toolkit")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def load(path: str | Path, *, init: str | Path | None = None, include_dirs=(), defines=None, sdk_dirs=()) -> Solution:
    """Load a solution folder or top-level policy (see ``ksm check --help`` for the options)."""
    opts = LoadOptions(
        init=Path(init) if init else None,
        include_dirs=tuple(Path(p) for p in include_dirs),
        defines=dict(defines or {}),
        sdk_dirs=tuple(Path(p) for p in sdk_dirs),
    )
    return _load(path, opts)


from ksm.engine import Options, SecurityModule, SolutionNotLoadable  # noqa: E402
from ksm.events import Decision, Event  # noqa: E402

__all__ = ["Decision", "Event", "Options", "SecurityModule", "Solution", "SolutionNotLoadable", "load"]
