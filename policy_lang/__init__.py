"""policy_lang — the front end: KasperskyOS solution files in, one resolved model out.

    >>> from policy_lang import load
    >>> solution = load("models/echo")
    >>> solution.ok, solution.summary()["classes"]
    (True, 2)

Data flows one way: templates → lark syntax trees → AST → :class:`Solution`.
Problems in the user's files never raise; they are ``solution.diagnostics``.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .diagnostics import Diagnostic, Diagnostics, Severity, Span
from .loader import LoadOptions, solution_path
from .resolve import load as _load
from .solution import Solution


def load(
    target: str | os.PathLike,
    options: LoadOptions | None = None,
    *,
    init: str | os.PathLike | None = None,
    include_dirs: Iterable[str | os.PathLike] | None = None,
    defines: Mapping[str, str] | None = None,
    sdk_dirs: Iterable[str | os.PathLike] | None = None,
) -> Solution:
    """Load, check and resolve a solution folder or top-level policy.

    Problems in the user's *files* never raise (they are ``solution.diagnostics``,
    a missing folder included); a wrong *argument* is the caller's bug and raises
    TypeError or ValueError at once, naming what to pass — see :class:`LoadOptions`,
    which checks the options whether they come as one object or as keywords.
    """
    path = solution_path(target)
    given = {name: value for name, value in
             (("init", init), ("include_dirs", include_dirs), ("defines", defines), ("sdk_dirs", sdk_dirs))
             if value is not None}
    if options is None:
        options = LoadOptions(**given)
    elif not isinstance(options, LoadOptions):
        raise TypeError(f"load() takes its options as a LoadOptions or as keywords, e.g. "
                        f"load(path, defines={{'A': '1'}}); got {type(options).__name__}")
    elif given:
        raise TypeError(f"load() takes its options as a LoadOptions or as keywords, not both; "
                        f"got a LoadOptions and {', '.join(given)}")
    return _load(path, options)


__all__ = ["Diagnostic", "Diagnostics", "LoadOptions", "Severity", "Solution", "Span", "load"]
