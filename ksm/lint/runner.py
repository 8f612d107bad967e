"""Running the catalogue on a solution: rules, configuration, suppressions, baseline.

The order is fixed so results are reproducible: front-end diagnostics first (they
are part of the lint: names that resolve to nothing are found while resolving), then
every enabled rule in code order; then severities from the configuration, inline
suppressions, and the baseline.  Rules that need a solution without errors (all
linter rules do: the decision function refuses a broken solution) are skipped when
the front end reports errors, and the result says so.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Callable

from policy_lang.diagnostics import Diagnostic, Severity, define_code
from policy_lang.solution import Solution, Suppression

from .catalogue import Rule, all_rules
from .config import LintConfig
from .context import LintContext, LintOptions

LINT_CRASH = define_code(
    "LNT900", "error", "a lint rule failed (a bug in ksm)",
    "please report it with the solution that triggers it; the other rules still ran",
)

@dataclass
class LintResult:
    solution: Solution
    findings: list[Diagnostic]                     # what is reported (not suppressed, not in the baseline)
    suppressed: list[tuple[Diagnostic, Suppression]] = field(default_factory=list)
    baselined: list[Diagnostic] = field(default_factory=list)
    skipped: bool = False                          # linter rules skipped: the solution has errors
    rules_run: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)   # per rule
    crashed: list[str] = field(default_factory=list)          # rules that raised (LNT900 findings)
    config: LintConfig = field(default_factory=LintConfig)
    baseline_used: bool = False

    def failing(self) -> list[Diagnostic]:
        """Findings at or above the configured ``fail_on`` severity (none when it is "never")."""
        return [d for d in self.findings if self.config.fails(d.severity)]

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "note": 0}
        for d in self.findings:
            out[d.severity.value] += 1
        return out


def lint(solution: Solution, config: LintConfig | None = None, baseline=None,
         progress: Callable[[str], None] | None = None) -> LintResult:
    """Lint ``solution``; never raises for anything in the user's files.

    ``progress`` is told each rule's code after it ran (the CLI draws a bar with it)."""
    config = config or LintConfig()
    result = LintResult(solution, [], config=config)
    found: list[Diagnostic] = list(solution.diagnostics)
    ctx = LintContext(solution, LintOptions(timeout_ms=config.timeout_ms))
    catalogue = all_rules()
    if not solution.ok:
        result.skipped = True
    else:
        for code, r in catalogue.items():
            if r.check is None or not config.enabled(code):
                continue
            found.extend(_run(r, ctx, result))
            if progress is not None:
                progress(code)
    found = [_configured(d, config) for d in found if _kept(d, config)]
    found = _dedupe(found)
    found = _unsuppressed(found, solution.suppressions, result)
    if baseline is not None:
        result.baseline_used = True
        found, result.baselined = baseline.split(found, solution.root)
    result.findings = sorted(found, key=lambda d: (*d.sort_key(), d.code))
    return result


def _run(r: Rule, ctx: LintContext, result: LintResult) -> list[Diagnostic]:
    start = time.perf_counter()
    try:
        out = list(r.check(ctx))
    except Exception as exc:  # a rule's bug must not hide the other rules' findings
        where = traceback.extract_tb(exc.__traceback__)[-1]
        out = [ctx.finding(LINT_CRASH, f"rule {r.code} ({r.name}) failed: {type(exc).__name__}: {exc} "
                           f"[{where.filename.rsplit('/', 1)[-1]}:{where.lineno}]", None)]
        result.crashed.append(r.code)
    result.seconds[r.code] = time.perf_counter() - start
    result.rules_run.append(r.code)
    return out


def _frontend_error(d: Diagnostic) -> bool:
    """An error of the solution itself: never disabled, reweighted or suppressed, because
    nothing else can be checked until it is fixed."""
    return d.severity is Severity.ERROR and d.code[:3] != "LNT"


def _kept(d: Diagnostic, config: LintConfig) -> bool:
    return _frontend_error(d) or config.enabled(d.code)


def _configured(d: Diagnostic, config: LintConfig) -> Diagnostic:
    if _frontend_error(d):
        return d
    sev = config.severity_of(d.code, d.severity)
    return d if sev is d.severity else replace(d, severity=sev)


def _dedupe(found: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in found:
        key = (d.code, d.span, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _unsuppressed(found: list[Diagnostic], suppressions, result: LintResult) -> list[Diagnostic]:
    if not suppressions:
        return found
    by_file: dict[str, list[Suppression]] = {}
    for s in suppressions:
        by_file.setdefault(s.file, []).append(s)
    out = []
    for d in found:
        s = _suppressing(d, by_file)
        if s is None:
            out.append(d)
        else:
            result.suppressed.append((d, s))
    return out


def _suppressing(d: Diagnostic, by_file: dict[str, list[Suppression]]) -> Suppression | None:
    if d.span is None or _frontend_error(d):
        return None
    for s in by_file.get(d.span.file, ()):
        if covers(s, d.code, d.span):
            return s
    return None


def covers(s: Suppression, code: str, span) -> bool:
    """Whether suppression ``s`` silences rule ``code`` at ``span`` (its line, or its whole file)."""
    return ((code in s.codes or "all" in s.codes) and span.file == s.file
            and (s.scope == "file" or s.line == span.line))


def used_suppressions(result: LintResult) -> set[Suppression]:
    return {s for _, s in result.suppressed}
