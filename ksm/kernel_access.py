"""Which kernel methods each process class may call: always, under conditions, never.

The least-privilege questions of the kernel documentation ("is this dangerous method
granted to an untrusted component, and without conditions?") are questions about
one event key each: a request from a class to one kernel method.  A solution has
tens of classes and the kernel well over a hundred methods, but most keys share
their program — the same bindings and sections apply to every method a blanket
``request dst=kl.core.Core`` or ``match interface=kl.core.Sync`` covers — so keys are
grouped by the sections that select them and each group is decided once:

* no binding selects it: **never** (default deny);
* its program is a plain allowlist entry (the decision function's constant path):
  **always**;
* otherwise Z3 decides over every message and every model state (not only reachable
  ones, so "always" and "never" are sure and anything in between is reported as
  **conditional**); a rule that reads a parameter whose type is unknown makes it
  conditional too, as does an expression Z3 cannot encode.

The kernel's documented dangers come from :mod:`policy_lang.kernel` by interface and
method name, so the table is the same whether the kernel came built in or from the
SDK's ``Core.edl``.
"""
from __future__ import annotations

from dataclasses import dataclass

import z3

from policy_lang.diagnostics import Span
from policy_lang.kernel import KernelMethod, is_builtin_kernel, kernel_method
from policy_lang.solution import KERNEL_CLASS, MatchDef, Solution

from .engine import Options, SecurityModule, _selects
from .security_models.symbolic import Fresh, NotEncoded
from .verify.equivalence import Equivalence
from .verify.message import SymbolicMessage
from .verify.program import Encoder
from .verify.universe import EventKey, Universe

ALWAYS, CONDITIONAL, NEVER = "always", "conditional", "never"
VERDICTS = (ALWAYS, CONDITIONAL, NEVER)


@dataclass(frozen=True)
class KernelCall:
    """One kernel method as one class may call it."""

    endpoint: str
    interface: str
    method: str
    facts: KernelMethod | None      # the documentation's facts (None: a method only the SDK knows)
    verdict: str
    bindings: tuple[Span, ...]      # the bindings that select it, in text order
    why: str = ""                   # what a conditional grant depends on
    sites: tuple[Span, ...] = ()    # the innermost sections (or bindings) whose rules decide it

    @property
    def label(self) -> str:
        return f"{self.endpoint}.{self.method}"

    @property
    def where(self) -> Span | None:
        """Where it is granted: the first innermost section deciding it, else the first binding selecting it."""
        return next((s for s in (self.sites or self.bindings) if s is not None), None)

    @property
    def dangerous(self) -> bool:
        return self.facts is not None and self.facts.dangerous

    @property
    def granted(self) -> bool:
        return self.verdict != NEVER


@dataclass(frozen=True)
class ClassAccess:
    """The kernel methods one process class may call."""

    cls: str
    trusted: bool
    calls: tuple[KernelCall, ...]

    def with_verdict(self, verdict: str) -> tuple[KernelCall, ...]:
        return tuple(c for c in self.calls if c.verdict == verdict)

    def dangerous(self, verdicts: tuple[str, ...] = (ALWAYS, CONDITIONAL)) -> tuple[KernelCall, ...]:
        return tuple(c for c in self.calls if c.dangerous and c.verdict in verdicts)


@dataclass(frozen=True)
class KernelAccess:
    """The table for a whole solution: one row per process class (the kernel itself excluded)."""

    source: str                      # "built-in" or "sdk"
    classes: tuple[ClassAccess, ...]

    def of(self, cls: str) -> ClassAccess | None:
        return next((c for c in self.classes if c.cls == cls), None)


def kernel_access(solution: Solution, options: Options | None = None, classes: list[str] | None = None) -> KernelAccess:
    """The kernel access table of ``solution`` (every class, or those named in ``classes``).

    Memoised on the solution: the linter's kernel rules and ``ksm kernel`` ask for it.
    """
    cache = _CACHE.get(id(solution))
    if cache is not None and cache[0] is solution and classes is None:
        return cache[1]
    result = _Decider(solution, options or Options()).table(classes)
    if classes is None:
        _CACHE.clear()
        _CACHE[id(solution)] = (solution, result)
    return result


_CACHE: dict[int, tuple[Solution, KernelAccess]] = {}
_DECIDERS: dict[int, tuple[Solution, "_Decider"]] = {}


def _decider_for(solution: Solution, options: Options | None) -> "_Decider":
    """One decider (its booted universe, its encoder) per solution, for the per-class questions."""
    found = _DECIDERS.get(id(solution))
    if found is not None and found[0] is solution and options is None:
        return found[1]
    decider = _Decider(solution, options or Options())
    if options is None:
        _DECIDERS.clear()
        _DECIDERS[id(solution)] = (solution, decider)
    return decider


class _Decider:
    def __init__(self, solution: Solution, options: Options):
        self.solution = solution
        self.options = options
        self.kernel = solution.classes.get(KERNEL_CLASS)
        self.module = SecurityModule(solution, options)
        self._universe: Universe | None = None
        self._encoder = None
        self._decided: dict[tuple, tuple[str, str, bool]] = {}
        self.equivalence = Equivalence(solution)

    def encoder(self):
        """One encoder and one unconstrained state for every question of this table."""
        if self._encoder is None:
            enc = Encoder(self.universe(), Fresh("k."))
            state, wf = enc.any_state(enc.fresh)
            self._encoder = (enc, state, wf)
        return self._encoder

    def universe(self) -> Universe:
        if self._universe is None:
            self._universe = Universe.build(self.solution, self.options)
        return self._universe

    def table(self, only: list[str] | None) -> KernelAccess:
        names = [c for c in self.solution.classes if c != KERNEL_CLASS and (only is None or c in only)]
        rows = [ClassAccess(c, self.solution.trusted(c), tuple(self.calls(c))) for c in sorted(names)]
        return KernelAccess("built-in" if is_builtin_kernel(self.kernel) else "sdk", tuple(rows))

    def calls(self, cls: str):
        if self.kernel is None:
            return
        for ep in self.kernel.endpoints:
            for m in ep.interface.methods:
                key = ("request", cls, KERNEL_CLASS, ep.name, ep.interface.name, m.name)
                selecting = self.module.bindings.selecting(key)
                spans = tuple(b.span for b in selecting)
                verdict, why, _ = self.decide(key, m, selecting)
                sites = tuple(site for b in selecting for site in _sites(b.body, key, b.span))
                yield KernelCall(ep.name, ep.interface.name, m.name, kernel_method(ep.interface.name, m.name),
                                 verdict, spans, why, sites)

    def decide(self, key: tuple, mdef, selecting: list) -> tuple[str, str, bool]:
        """(verdict, what a conditional one depends on, whether the verdict is sure).

        Not sure: Z3 could not decide, or the rules read what it cannot follow; the
        verdict is then "conditional", which no rule reports on.
        """
        if not selecting:
            return NEVER, "", True
        group = (key[1], self.equivalence.signature(key, mdef, selecting=selecting))
        found = self._decided.get(group)
        if found is None:
            found = self._decided[group] = self._decide(key, mdef)
        return found

    def _decide(self, key: tuple, mdef) -> tuple[str, str, bool]:
        program = self.module._program(key)
        if program.plain_grant:
            return ALWAYS, "", True
        if not program.steps:
            return NEVER, "", True
        ekey = EventKey(*key, method_def=mdef)
        try:
            enc, state, wf = self.encoder()
            enc.unknown_reads.clear()
            msg = SymbolicMessage(ekey.params, "k")
            src, dst = z3.Int("k.src_sid"), z3.Int("k.dst_sid")
            out = enc.encode(ekey, msg.value, src, dst, state)
        except NotEncoded as exc:
            return CONDITIONAL, f"not decided: {exc}", False
        if enc.unknown_reads:            # Z3 cannot say more: the grant reads a value it has no variable for
            reads = ", ".join(sorted(enc.unknown_reads))
            return CONDITIONAL, f"depends on {reads}, whose type is not documented", False
        if not z3.is_false(z3.simplify(out.escape)):
            return CONDITIONAL, "depends on a model context the prover does not track", False
        base = z3.And(wf, msg.wellformed())
        can_grant = _sat(z3.And(base, out.granted))
        can_deny = _sat(z3.And(base, z3.Not(out.granted))) if can_grant is not False else True
        if can_grant is False:
            return NEVER, "", True
        if can_deny is False:
            return ALWAYS, "", True
        if can_grant is None or can_deny is None:
            return CONDITIONAL, "Z3 could not decide it in time", False
        return CONDITIONAL, "depends on the message or the policy's state", True


#: Kernel methods that only serve to create a process, which the policy then decides
#: as an ``execute`` event from the creating process: granting them is useless where
#: no such start can be granted.
PROCESS_CREATION = (("kl.core.Task", "Create"),)


def may_start_processes(solution: Solution, cls: str, options: Options | None = None) -> bool | None:
    """Whether the policy can grant ``execute src=cls`` for some started class.

    False only when it is proved for every target class (no binding selects it, or Z3
    shows no state and no SIDs under which its program grants); None when Z3 gives up.
    """
    decider = _decider_for(solution, options)
    unknown = False
    for target in sorted(solution.classes):
        if target == KERNEL_CLASS:
            continue
        key = ("execute", cls, target, None, None, "main")
        verdict, _, sure = decider.decide(key, None, decider.module.bindings.selecting(key))
        if verdict == ALWAYS or (verdict == CONDITIONAL and sure):
            return True
        unknown = unknown or not sure
    return None if unknown else False


def _sat(formula) -> bool | None:
    """Whether ``formula`` is satisfiable; None when Z3 gives up (2 s)."""
    s = z3.Solver()
    s.set("timeout", 2000)
    s.add(formula)
    r = s.check()
    return None if r == z3.unknown else r == z3.sat


def _sites(body, key: tuple, here: Span) -> list[Span]:
    """Spans of the innermost sections applying to ``key`` that hold rules (``here`` if none is nested)."""
    out: list[Span] = []
    rules = False                      # a call or a choice right here decides too
    for st in body:
        if not isinstance(st, MatchDef):
            rules = True
        elif st.satisfiable and _selects(st.selectors, key):
            out.extend(_sites(st.body, key, st.span))
    return ([here] if rules else []) + out
