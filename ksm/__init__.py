"""ksm — back ends and the command-line tool over a resolved solution.

``ksm.load(path, **options)`` returns the :class:`policy_lang.Solution` every back
end reads; ``ksm.SecurityModule(solution).decide(ksm.Event.request(...))`` decides
events as the Kaspersky Security Module would (docs/runtime.md).
``ksm.event_from_json(solution, data)`` reads an event as ``ksm decide --event`` and
counterexamples write it (message values decoded by IDL type; ``ksm.values``), and
``ksm.event_to_json(event)`` writes one.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from importlib import metadata

from policy_lang import LoadOptions, Solution
from policy_lang import load as _load


try:
    __version__ = metadata.version("ksm-toolkit")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def load(
    path: str | os.PathLike,
    *,
    init: str | os.PathLike | None = None,
    include_dirs: Iterable[str | os.PathLike] = (),
    defines: Mapping[str, str] | None = None,
    sdk_dirs: Iterable[str | os.PathLike] = (),
) -> Solution:
    """Load a solution folder or top-level policy (see ``ksm check --help`` for the options).

    The arguments are checked by :class:`policy_lang.LoadOptions` (a TypeError names
    what to pass); problems in the files are ``solution.diagnostics``, never raised.
    """
    return _load(path, LoadOptions(init=init, include_dirs=include_dirs, defines=defines, sdk_dirs=sdk_dirs))


from ksm.engine import Options, SecurityModule, SolutionNotLoadable  # noqa: E402
from ksm.events import Decision, Event  # noqa: E402
from ksm.values import event_from_json, event_to_json  # noqa: E402

__all__ = ["Decision", "Event", "Options", "SecurityModule", "Solution", "SolutionNotLoadable", "event_from_json",
           "event_to_json", "load"]
