"""policy_lang — the front end: KasperskyOS solution files in, one resolved model out.

    >>> from policy_lang import load
    >>> solution = load("models/echo")
    >>> solution.ok, solution.summary()["classes"]
    (True, 2)

Data flows one way: templates → lark syntax trees → AST → :class:`Solution`.
Problems in the user's files never raise; they are ``solution.diagnostics``.
"""
from .diagnostics import Diagnostic, Diagnostics, Severity, Span
from .loader import LoadOptions
from .resolve import load
from .solution import Solution

__all__ = ["Diagnostic", "Diagnostics", "LoadOptions", "Severity", "Solution", "Span", "load"]
