"""Which messages of a channel the policy can let through: asked of the prover.

Why the prover and not a cheaper guess: an edge of the flow graph is only as good as
the claim that its message can (or cannot) be granted.  Each claim here is either a
proof (``never KIND src dst endpoint method`` PROVED, with the prover's own "how") or
a witness trace that the decision function grants.

Why class keys first: the rules see a process through its class and its SID, so one
question per (kind, sender class, receiver class, endpoint, method) settles every
instance pair at once when the answer is "denied", and gives a witness message that
is re-decided concretely for each other pair when it is "granted".  Only pairs whose
re-decision disagrees (rules that read per-SID state) get a proof of their own.  A
solution of 1,000 instances of ten classes thus needs about as many Z3 calls as one
of ten instances.
"""
from __future__ import annotations

from dataclasses import dataclass

from policy_lang.diagnostics import Span
from policy_lang.props import EventPattern, ProcRef, Property

from ..engine import SecurityModule
from ..events import Event
from ..verify.prove import PROVED, REFUTED, Counterexample, Prover, TraceStep
from ..verify.universe import Proc

GRANTED, DENIED, UNKNOWN = "granted", "denied", "unknown"
ALWAYS, DEPENDS = "always", "depends"

_HERE = Span("<flows>", 1, 1)


@dataclass(frozen=True)
class HopLabel:
    """What the policy does with one kind of message on one channel."""

    status: str                               # granted | denied | unknown
    how: str                                  # the proof of denial, or where the witness comes from
    witness: Counterexample | None = None     # start-up, then steps ending with the granted message


@dataclass(frozen=True)
class Condition:
    """When a granted hop is granted: always, or depending on the message or state."""

    status: str                               # always | depends | unknown
    how: str                                  # the prover's method
    denied: Counterexample | None = None      # depends: a trace whose last message is denied
    reason: str = ""                          # depends: why the decision function denies it


class Labeller:
    """Labels hops (kind, sender, receiver, endpoint, method) for one solution."""

    def __init__(self, prover: Prover):
        self.prover = prover
        self.universe = prover.universe
        self._results: dict = {}
        self._conditions: dict = {}
        self._class_refs: dict[str, ProcRef] = {}
        self._prefixes: dict[int, tuple] = {}
        self.questions = 0                    # proofs asked (for the benchmark)

    def label(self, kind: str, src: Proc, dst: Proc, endpoint: str | None, method: str | None) -> HopLabel:
        result = self._ask(kind, self._class_ref(src.cls), self._class_ref(dst.cls), endpoint, method)
        if result.status == PROVED:
            return HopLabel(DENIED, result.how)
        if result.status == REFUTED:
            mine = self._for_pair(result.counterexample, kind, src, dst, endpoint, method)
            if mine is not None:
                return HopLabel(GRANTED, f"witness for {src.cls} -> {dst.cls} ({result.how})", mine)
        own = self._ask(kind, self._task_ref(src), self._task_ref(dst), endpoint, method)
        if own.status == PROVED:
            return HopLabel(DENIED, own.how)
        if own.status == REFUTED:
            return HopLabel(GRANTED, own.how, own.counterexample)
        return HopLabel(UNKNOWN, own.how)

    # ------------------------------------------------------------------ helpers
    def _class_ref(self, cls: str) -> ProcRef:
        found = self._class_refs.get(cls)
        if found is None:
            tasks = tuple(p.task for p in self.universe.by_class().get(cls, []) if p.task)
            found = self._class_refs[cls] = ProcRef(cls, tasks, True, _HERE)
        return found

    @staticmethod
    def _task_ref(p: Proc) -> ProcRef:
        return ProcRef(p.task, (p.task,), False, _HERE)

    def _ask(self, kind: str, s: ProcRef, d: ProcRef, endpoint, method, quantifier: str = "never"):
        """The prover's answer to ``never|always KIND src=s dst=d ...``, asked once."""
        key = (quantifier, kind, s.text, s.is_class, d.text, d.is_class, endpoint, method)
        found = self._results.get(key)
        if found is None:
            text = f"{quantifier} {kind} src={s.text} dst={d.text} endpoint={endpoint} method={method}"
            prop = Property(text, f"{quantifier}_event", EventPattern(kind, s, d, endpoint, None, method, _HERE),
                            None, span=_HERE, text=text)
            self.questions += 1
            found = self._results[key] = self.prover.prove(prop)
        return found

    def _for_pair(self, cex: Counterexample, kind, src: Proc, dst: Proc, endpoint, method) -> Counterexample | None:
        """The class witness moved to this pair, if the decision function grants it."""
        last = cex.steps[-1].event
        if last.src == src.ref and last.dst == dst.ref:
            return cex
        ctor = {"request": Event.request, "response": Event.response, "error": Event.error}[kind]
        event = ctor(src.ref, dst.ref, last.endpoint, last.method, last.message)
        module = self._replayed(cex)
        if not module.decide(event).granted:
            return None
        return Counterexample(cex.setup, cex.steps[:-1] + [TraceStep(event, "granted")], cex.note)

    def _replayed(self, cex: Counterexample) -> SecurityModule:
        """The module after start-up and every step of ``cex`` but the last.

        Why a cache: one class witness is moved to every instance pair of its two
        classes (ten thousand channels in the benchmark).  The state after the prefix
        is computed once and restored before each pair.
        """
        key = id(cex)               # class witnesses stay alive in self._results
        saved = self._prefixes.get(key)
        if saved is not None:
            return self.prover.booted(saved)
        module = self.prover.booted()
        for step in cex.steps[:-1]:
            module.decide(step.event)
        self._prefixes[key] = module.checkpoint()
        return module

    # ------------------------------------------------------------ conditions
    def condition(self, kind: str, src: Proc, dst: Proc, endpoint: str | None, method: str | None) -> Condition:
        """Whether a granted hop is granted for every message in every state.

        Asked per class pair (``always KIND src=CLASS dst=CLASS ...``), so "always"
        holds for every instance pair, and "depends" comes with one denied message of
        some instance pair of these classes and the reason the decision function
        gives for denying it: the rule (file:line) whose check fails.
        """
        key = (kind, src.cls, dst.cls, endpoint, method)
        found = self._conditions.get(key)
        if found is not None:
            return found
        r = self._ask(kind, self._class_ref(src.cls), self._class_ref(dst.cls), endpoint, method, "always")
        if r.status == PROVED:
            found = Condition(ALWAYS, r.how)
        elif r.status == REFUTED:
            module = self._replayed(r.counterexample)
            denied = module.decide(r.counterexample.steps[-1].event)
            site = next((st.span for st in denied.steps if st.verdict in ("denied", "error") and st.span), None)
            where = f" ({site.file}:{site.line})" if site is not None else ""
            found = Condition(DEPENDS, r.how, r.counterexample, denied.reason + where)
        else:
            found = Condition(UNKNOWN, r.how)
        self._conditions[key] = found
        return found
