"""Diagnostic codes of the simulator's inputs, and the exception that carries one.

Behaviour modules, scenario files and counterexample files are user files: a
mistake in one is a diagnostic with file, line, column, a stable code and a hint,
never a traceback.
"""
from __future__ import annotations

from policy_lang.diagnostics import Diagnostic, Severity, Span, code_info, define_code

SIM_BEHAVIOUR = define_code(
    "SIM001", "error", "behaviour module cannot be used",
    "a behaviour module is a Python file defining Behaviour subclasses, each with "
    "process_class = \"pkg.Class\" naming a class of the solution (docs/simulation.md)",
)
SIM_SCENARIO = define_code(
    "SIM002", "error", "scenario file problem",
    "see docs/simulation.md for the scenario format: processes -> TASK -> serve / run",
)
SIM_REPLAY = define_code(
    "SIM003", "error", "counterexample file problem",
    "give the JSON written by `ksm prove --format json` or `ksm flows --format json`",
)


class SimInputError(Exception):
    """A simulation input that cannot be used; ``diagnostic`` is what the CLI prints."""

    def __init__(self, code: str, message: str, span: Span | None, hint: str | None = None):
        super().__init__(message)
        self.diagnostic = Diagnostic(code, Severity.ERROR, message, span, hint or code_info(code).hint)
