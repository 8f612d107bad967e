"""Lint configuration: which rules run, at which severity, and what fails the run.

Read from ``[tool.ksm]`` in ``pyproject.toml`` or from ``ksm.toml`` (see
:func:`load_config`); command-line options override the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from policy_lang.diagnostics import Severity


@dataclass(frozen=True)
class LintConfig:
    """``enable``: when not None, only these rule codes run (``select``).
    ``disable``: codes that never report.  ``severity``: per-code severity overrides.
    ``fail_on``: the lowest severity that makes ``ksm lint`` exit 1.
    ``baseline``: a baseline file (relative to the config file's folder) whose findings do not fail.
    ``source``: the file the configuration came from (None: defaults), for messages.
    """

    enable: frozenset[str] | None = None
    disable: frozenset[str] = frozenset()
    severity: tuple[tuple[str, Severity], ...] = ()
    fail_on: Severity = Severity.WARNING
    baseline: str | None = None
    source: str | None = None
    timeout_ms: int = 2_000

    def severity_of(self, code: str, default: Severity) -> Severity:
        for c, s in self.severity:
            if c == code:
                return s
        return default

    def enabled(self, code: str) -> bool:
        if code in self.disable:
            return False
        return self.enable is None or code in self.enable
