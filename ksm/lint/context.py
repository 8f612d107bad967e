"""What the lint rules read: the resolved solution plus back ends built on demand.

Why lazily: most rules only walk the solution model; the start-up decisions, the Z3
prover and the hop labeller cost time and are built the first time a rule asks, once
per lint run, and shared by every rule that needs them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

from policy_lang.diagnostics import Diagnostic, Span, code_info
from policy_lang.solution import (
    EINIT_CLASS, KERNEL_CLASS, BindingDef, CallDef, ChoiceDef, MatchDef, SelectorSet, Solution, StmtDef,
)

from ..events import Decision


@dataclass(frozen=True)
class LintOptions:
    """Limits of the semantic (Z3-backed) rules.

    ``timeout_ms`` bounds each Z3 question: a question that runs out is answered
    "unknown", and a rule never reports on an unknown answer (no false alarms).
    ``semantic=False`` skips the rules that need the decision function or Z3.
    """

    timeout_ms: int = 2_000
    semantic: bool = True


@dataclass(frozen=True)
class Site:
    """One statement of the policy and what is in force where it stands."""

    binding: BindingDef
    stmt: StmtDef
    selectors: SelectorSet        # the binding's selectors narrowed by every enclosing section
    in_choice: bool               # inside an arm of a choice


@dataclass
class LintContext:
    solution: Solution
    options: LintOptions = field(default_factory=LintOptions)
    memo: dict = field(default_factory=dict, repr=False)     # answers rules share (hop verdicts, ...)

    # ---------------------------------------------------------------- findings
    def finding(self, code: str, message: str, span: Span | None, hint: str | None = None) -> Diagnostic:
        info = code_info(code)
        return Diagnostic(code, info.severity, message, span, info.hint if hint is None else hint)

    # ---------------------------------------------------------------- model views
    @cached_property
    def has_init(self) -> bool:
        """Whether an init.yaml was loaded (without one, nothing is started by Einit)."""
        return any(f.language == "yaml" for f in self.solution.files)

    @cached_property
    def started_classes(self) -> set[str]:
        return {KERNEL_CLASS, EINIT_CLASS} | {i.cls for i in self.solution.instances}

    @cached_property
    def execute_targets(self) -> set[str]:
        """Classes an ``execute`` binding names as ``dst`` (they may be started at run time)."""
        return {b.selectors.dst for b in self.solution.bindings if b.event == "execute" and b.selectors.dst} | {
            s.selectors.dst for s in self.sites() if s.binding.event == "execute" and s.selectors.dst}

    def sites(self) -> Iterator[Site]:
        """Every statement of every binding, depth first, in textual order."""
        for b in self.solution.bindings:
            yield from self._walk(b, b.body, b.selectors, False)

    def _walk(self, b: BindingDef, body, sel: SelectorSet, in_choice: bool) -> Iterator[Site]:
        for st in body:
            if isinstance(st, MatchDef):
                yield Site(b, st, st.selectors, in_choice)
                yield from self._walk(b, st.body, st.selectors, in_choice)
            elif isinstance(st, ChoiceDef):
                yield Site(b, st, sel, in_choice)
                for arm in st.arms:
                    yield from self._walk(b, arm.body, sel, True)
            else:
                yield Site(b, st, sel, in_choice)

    def calls(self) -> Iterator[tuple[Site, CallDef]]:
        for s in self.sites():
            if isinstance(s.stmt, CallDef):
                yield s, s.stmt

    # ---------------------------------------------------------------- back ends
    @property
    def boot(self) -> tuple[Decision, ...]:
        """The start-up decisions: the kernel, Einit, then every init.yaml instance.

        Taken from the prover's universe, which boots the solution through the
        decision function anyway: the channel rules need that prover on every run.
        """
        return self.prover.universe.boot

    @cached_property
    def prover(self):
        from ..verify.prove import ProveOptions, Prover

        # Single-step questions only: the start-up state, then every state the encoding
        # allows.  A rule reports on a proof; what needs a reachability search stays unknown.
        return Prover(self.solution, ProveOptions(timeout_ms=self.options.timeout_ms, use_chc=False,
                                                  reachability=False))

    @cached_property
    def labeller(self):
        from ..flows.labels import Labeller

        return Labeller(self.prover)
