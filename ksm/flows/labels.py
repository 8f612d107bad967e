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

Why kernel hops skip the prover when they can: the described kernel adds some 160
methods, three hops each, per client class, and most are settled without Z3.  A
request to the kernel takes the verdict of :func:`ksm.kernel_access.kernel_access`,
which decides whole groups of methods at once (over every state, so "never" and
"always" are sure); a response or error of the kernel is settled when its compiled
program is empty (default deny) or a plain allowlist entry.  An "always" hop gets as
witness one plain message granted right after start-up, re-decided by the decision
function (else the prover is asked after all); a conditional one goes to the prover.
"""
from __future__ import annotations

from dataclasses import dataclass

from policy_lang.diagnostics import Span
from policy_lang.props import EventPattern, ProcRef, Property
from policy_lang.solution import KERNEL_CLASS, message_params

from ..engine import SecurityModule
from ..events import Event
from ..verify.message import Candidates
from ..verify.prove import PROVED, REFUTED, Counterexample, Prover, TraceStep
from ..verify.universe import Proc

GRANTED, DENIED, UNKNOWN = "granted", "denied", "unknown"
ALWAYS, DEPENDS = "always", "depends"
NEVER = "never"                               # a kernel hop's cheap verdict (never a Condition status)

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
        self._kernel: dict[tuple, tuple[str, str] | None] = {}   # class key -> (always|never, how)
        self._kernel_calls: dict[str, dict] = {}                 # class -> (endpoint, method) -> KernelCall
        self.questions = 0                    # proofs asked (for the benchmark)
        self.shortcuts = 0                    # kernel hops settled without a proof

    def label(self, kind: str, src: Proc, dst: Proc, endpoint: str | None, method: str | None) -> HopLabel:
        if KERNEL_CLASS in (src.cls, dst.cls):
            quick = self._kernel_label(kind, src, dst, endpoint, method)
            if quick is not None:
                self.shortcuts += 1
                return quick
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

    # ------------------------------------------------------------------ the kernel
    def _kernel_label(self, kind: str, src: Proc, dst: Proc, endpoint, method) -> HopLabel | None:
        """A kernel hop settled without the prover, or None (then the prover decides it)."""
        verdict = self._kernel_verdict(kind, src.cls, dst.cls, endpoint, method)
        if verdict is None:
            return None
        status, how = verdict
        if status == NEVER:
            return HopLabel(DENIED, how)
        witness = self._kernel_witness(kind, src, dst, endpoint, method)
        if witness is None:         # the plain message is not granted after all: ask the prover
            self._kernel[(kind, src.cls, dst.cls, endpoint, method)] = None
            return None
        return HopLabel(GRANTED, f"{how}; witness right after start-up", witness)

    def _kernel_verdict(self, kind: str, src_cls: str, dst_cls: str, endpoint, method) -> tuple[str, str] | None:
        """("always" | "never", how) for a class key of a kernel hop, when a cheap answer exists."""
        key = (kind, src_cls, dst_cls, endpoint, method)
        if key in self._kernel:
            return self._kernel[key]
        found = None
        iface = self._kernel_interface(endpoint, method)
        if iface is not None and kind == "request" and dst_cls == KERNEL_CLASS and src_cls != KERNEL_CLASS:
            found = self._request_verdict(src_cls, endpoint, method)
        elif iface is not None and kind in ("response", "error") and src_cls == KERNEL_CLASS \
                and dst_cls != KERNEL_CLASS:
            program = self.prover.booted()._program((kind, KERNEL_CLASS, dst_cls, endpoint, iface, method))
            if not program.steps:
                found = (NEVER, f"no binding selects a kernel {kind} to {dst_cls} (default deny)")
            elif program.plain_grant:
                found = (ALWAYS, f"kernel {kind}s to {dst_cls} are always granted (a plain allowlist entry)")
        self._kernel[key] = found
        return found

    def _request_verdict(self, cls: str, endpoint: str, method: str) -> tuple[str, str] | None:
        from ..kernel_access import ALWAYS as K_ALWAYS, NEVER as K_NEVER, kernel_access

        calls = self._kernel_calls.get(cls)
        if calls is None:
            row = kernel_access(self.universe.solution, self.universe.options).of(cls)
            calls = self._kernel_calls[cls] = {(c.endpoint, c.method): c for c in row.calls} if row else {}
        call = calls.get((endpoint, method))
        if call is None:
            return None
        if call.verdict == K_NEVER:
            why = "no binding selects it (default deny)" if not call.bindings else "denied in every state"
            return NEVER, f"kernel access of {cls}: never, {why}"
        if call.verdict == K_ALWAYS:
            return ALWAYS, f"kernel access of {cls}: always granted"
        return None

    def _kernel_interface(self, endpoint, method) -> str | None:
        """The interface of a kernel endpoint that has ``method``, if the kernel is described."""
        kernel = self.universe.solution.classes.get(KERNEL_CLASS)
        ep = kernel.endpoint(endpoint) if kernel is not None and isinstance(endpoint, str) else None
        if ep is None or not any(m.name == method for m in ep.interface.methods):
            return None
        return ep.interface.name

    def _kernel_witness(self, kind: str, src: Proc, dst: Proc, endpoint: str, method: str) -> Counterexample | None:
        """One plain message of this kind granted right after start-up, or None."""
        kernel = self.universe.solution.classes[KERNEL_CLASS]
        mdef = next(m for m in kernel.endpoint(endpoint).interface.methods if m.name == method)
        message = Candidates(message_params(mdef, kind)).message(lambda path, t: None)
        ctor = {"request": Event.request, "response": Event.response, "error": Event.error}[kind]
        event = ctor(src.ref, dst.ref, endpoint, method, message)
        if not self.prover.booted().decide(event).granted:
            return None
        return Counterexample(self.universe.boot_events(), [TraceStep(event, "granted")])

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
        if KERNEL_CLASS in (src.cls, dst.cls):
            quick = self._kernel_verdict(kind, src.cls, dst.cls, endpoint, method)
            if quick is not None and quick[0] == ALWAYS:
                found = self._conditions[key] = Condition(ALWAYS, quick[1])
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
