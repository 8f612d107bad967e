"""A finding's identity across edits: what baselines and SARIF fingerprints compare.

Why not the line number: a baseline must keep matching a known finding after lines
are added above it.  The identity is the code, the file (relative to the solution
root, with forward slashes) and the message with any ``file:line[:col]`` references
in it removed; several identical findings in one file are told apart by count.
"""
from __future__ import annotations

import hashlib
import os
import re

from policy_lang.diagnostics import Diagnostic

_LOCATION = re.compile(r"(?<=[\w.])(:\d+){1,2}\b")


def relative_file(path: str, root: str) -> str:
    """``path`` relative to ``root`` when it lies inside, with '/' separators."""
    try:
        rel = os.path.relpath(path, root)
    except ValueError:          # another drive on Windows
        rel = path
    if rel.startswith(".."):
        rel = path
    return rel.replace(os.sep, "/")


def identity(diag: Diagnostic, root: str) -> tuple[str, str, str]:
    file = relative_file(diag.span.file, root) if diag.span else ""
    return diag.code, file, _LOCATION.sub("", diag.message)


def fingerprint(diag: Diagnostic, root: str) -> str:
    """A stable hex digest of :func:`identity` (SARIF ``partialFingerprints``)."""
    return hashlib.sha256("\x1f".join(identity(diag, root)).encode()).hexdigest()[:32]
