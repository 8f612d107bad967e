"""The rule catalogue: every lint rule with its code, severity, docs and examples.

Why the examples live here and not only in the docs: each rule carries a policy it
fires on and one it is silent on, linted against the small example solution in
``ksm/lint/examples/skeleton``.  The tests lint both, and the per-rule pages of
``docs/lint/`` are generated from this catalogue (a test keeps them equal), so a
rule, its documentation and its proof of working can never drift apart.

Two kinds of rule share the catalogue: rules checked by the linter (``check`` is a
function of the :class:`~ksm.lint.context.LintContext`) and rules that are
diagnostics of the front end (``check`` is None: names that resolve to nothing are
found while the solution is resolved, and the linter reports them as they come).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from policy_lang.diagnostics import Diagnostic, Severity, code_info, define_code

#: Categories, in the order the docs list them.
CATEGORIES = {
    "names": "Names that resolve to nothing",
    "processes": "Processes, start-up and channels",
    "bindings": "Bindings and sections",
    "conditions": "Conditions decided by the IDL bounds",
    "objects": "Policy objects and audit",
    "flow": "Flow state machines",
    "kernel": "Least privilege on kernel calls",
}


@dataclass(frozen=True)
class Example:
    """A whole ``security.psl`` for the example solution (``ksm/lint/examples/skeleton``).

    Most examples start with ``use demo.prelude._``, which holds what every example
    shares (start-up, the kernel, one granted request per static channel).  ``init``
    replaces the skeleton's init.yaml when the example needs other processes.
    """

    policy: str
    init: str | None = None


@dataclass(frozen=True)
class Rule:
    code: str
    name: str                   # a short slug, shown next to the code in listings
    category: str
    why: str                    # what the rule catches and why it matters (docs paragraph)
    bad: Example                # fires on it
    good: Example               # silent on it
    check: Callable[..., Iterable[Diagnostic]] | None = None   # None: a front-end diagnostic

    @property
    def severity(self) -> Severity:
        return code_info(self.code).severity

    @property
    def title(self) -> str:
        return code_info(self.code).title

    @property
    def hint(self) -> str:
        return code_info(self.code).hint


RULES: dict[str, Rule] = {}


def _register(r: Rule) -> Rule:
    if r.category not in CATEGORIES:
        raise ValueError(f"rule {r.code}: unknown category {r.category}")
    old = RULES.get(r.code)
    if old is not None and (old.name, old.category) != (r.name, r.category):
        raise ValueError(f"lint rule {r.code} defined twice")
    RULES[r.code] = r
    return r


def rule(code: str, name: str, severity: str, title: str, hint: str, *, category: str, why: str,
         bad: Example, good: Example):
    """Declare a linter rule; decorates its check ``(ctx) -> Iterable[Diagnostic]``."""
    define_code(code, severity, title, hint)

    def wrap(fn: Callable[..., Iterable[Diagnostic]]):
        _register(Rule(code, name, category, why, bad, good, fn))
        return fn

    return wrap


def frontend_rule(code: str, name: str, *, category: str, why: str, bad: Example, good: Example) -> Rule:
    """List a front-end diagnostic in the catalogue (its severity, title and hint stay the front end's)."""
    code_info(code)             # the code must exist
    return _register(Rule(code, name, category, why, bad, good, None))


def all_rules() -> dict[str, Rule]:
    """Every rule, once all rule modules are imported, sorted by code."""
    import importlib

    importlib.import_module(f"{__package__}.rules")   # registers every rule

    return dict(sorted(RULES.items()))
