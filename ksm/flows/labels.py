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

Why the program's text before the prover: on a policy written per channel (hundreds of
distinct classes, one rule per connected pair) almost every class key is new, and a
proof per key does not scale.  So, cheapest first, a class key is settled:

1. **from the program's text**, where that is exact: no binding selects it (default
   deny, in every state), or what selects it is only ``grant ()`` (granted for every
   message in every state; the witness is one plain message the decision function
   grants right after start-up);
2. **by another key's proof**: when the key's statements read only the message, the
   answer depends only on those statements and the message type, so keys with the same
   statements (written anywhere, for any classes; :func:`program_shape`) share one
   proof.  A denial carries the proof of the first key of the group; a grant carries
   that key's witness message, re-decided concretely for each pair (a disagreement
   sends the pair to a proof of its own);
3. by a proof of its own, as before.
"""
from __future__ import annotations

from dataclasses import dataclass

from policy_lang.diagnostics import Span
from policy_lang.props import EventPattern, ProcRef, Property
from policy_lang.solution import KERNEL_CLASS, MatchDef, message_params

from ..engine import SecurityModule
from ..events import Event
from ..security_models.symbolic import Fresh
from ..verify.equivalence import KeyBindings, plain_grant_shape, program_shape
from ..verify.message import Candidates
from ..verify.program import Encoder
from ..verify.prove import PROVED, REFUTED, Counterexample, Prover, Result, TraceStep
from ..verify.universe import Proc

GRANTED, DENIED, UNKNOWN = "granted", "denied", "unknown"
ALWAYS, DEPENDS = "always", "depends"
NEVER = "never"                               # a kernel hop's cheap verdict (never a Condition status)

_HERE = Span("<flows>", 1, 1)


class HopLabel:
    """What the policy does with one kind of message on one channel.

    ``status``: granted | denied | unknown; ``how``: the proof of denial, or where the
    witness comes from; ``witness``: start-up, then steps ending with the granted message.

    Why the witness may be built on first use (``make``): a graph of a thousand classes
    has a third of a million granted kernel hops, whose witnesses are all "start-up,
    then this plain message" and are read only for the hops a report shows.
    """

    __slots__ = ("status", "how", "_witness", "_make")

    def __init__(self, status: str, how: str, witness: Counterexample | None = None, make=None):
        self.status, self.how, self._witness, self._make = status, how, witness, make

    @property
    def witness(self) -> Counterexample | None:
        if self._make is not None:
            self._witness, self._make = self._make(), None
        return self._witness

    def __eq__(self, other) -> bool:
        if not isinstance(other, HopLabel):
            return NotImplemented
        return (self.status, self.how, self.witness) == (other.status, other.how, other.witness)

    def __hash__(self) -> int:
        return hash((self.status, self.how))

    def __repr__(self) -> str:
        return f"HopLabel(status={self.status!r}, how={self.how!r}, witness={self.witness!r})"


@dataclass(frozen=True)
class Condition:
    """When a granted hop is granted: always, or depending on the message or state."""

    status: str                               # always | depends | unknown
    how: str                                  # the prover's method
    denied: Counterexample | None = None      # depends: a trace whose last message is denied
    reason: str = ""                          # depends: why the decision function denies it


@dataclass(frozen=True)
class _ClassAnswer:
    """The answer for one class key (kind, sender class, receiver class, endpoint, method).

    ``sure``: every instance pair of the two classes gets the same answer (a denial that
    covers them all, or a grant of ``message`` in every state), so a pair's label is
    built without deciding again.  Otherwise a granted ``witness`` is moved to each pair
    and re-decided.
    """

    status: str
    how: str
    sure: bool
    witness: Counterexample | None = None
    message: object = None
    label: HopLabel | None = None            # the shared label of a sure denial


_CTORS = {"request": Event.request, "response": Event.response, "error": Event.error}


class Labeller:
    """Labels hops (kind, sender, receiver, endpoint, method) for one solution."""

    def __init__(self, prover: Prover, share: bool = True):
        """``share=False`` asks the prover about every class key (steps 1 and 2 of the
        module notes off): the reference the shared answers are tested against."""
        self.prover = prover
        self.share = share
        self.universe = prover.universe
        self._results: dict = {}
        self._conditions: dict = {}
        self._class_refs: dict[str, ProcRef] = {}
        self._prefixes: dict[int, tuple] = {}
        self._kernel: dict[tuple, tuple[str, str, bool] | None] = {}   # class key -> (always|never, how, by text)
        self._kernel_calls: dict[str, dict] = {}                 # class -> (endpoint, method) -> KernelCall
        self._answers: dict[tuple, _ClassAnswer] = {}            # class key -> its answer
        self._groups: dict[tuple, tuple[Result, str]] = {}       # (quantifier, kind, method def, shape) -> answer, key
        self._shapes: dict[tuple, tuple | None] = {}             # class key -> program shape (None: not pure)
        self._methods: dict[tuple, tuple] | None = None          # (class, endpoint, method) -> (interface, method def)
        self._boot: list[Event] | None = None
        self._stateful: frozenset[str] | None = None
        self._bindings: KeyBindings | None = None
        self._body_shapes: dict[int, tuple | None] = {}          # binding -> its body's shape (see program_shape)
        self._kernel_groups: dict[tuple, tuple] = {}             # kernel class key -> (kind, bindings, method def)
        self._plain_groups: dict[tuple, bool] = {}               # (kind, bindings) -> only grant () selects it
        self._kernel_shared: dict[tuple, _ClassAnswer] = {}      # see _kernel_answer
        self._confirmed: dict[tuple, object] = {}                # kernel program group -> its granted message
        self._messages: dict[tuple, dict] = {}                   # (kind, method def) -> a plain message
        self.questions = 0                    # proofs asked (for the benchmark)
        self.shortcuts = 0                    # kernel hops settled without a proof
        self.syntactic = 0                    # class keys settled from the program's text
        self.grouped = 0                      # class keys answered by another key's proof

    def label(self, kind: str, src: Proc, dst: Proc, endpoint: str | None, method: str | None) -> HopLabel:
        key = (kind, src.cls, dst.cls, endpoint, method)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = self._class_answer(kind, src, dst, endpoint, method)
        if answer.label is not None:
            return answer.label
        if answer.status == GRANTED:
            if answer.sure:
                return HopLabel(GRANTED, answer.how, make=lambda: self._plain_witness(
                    kind, src, dst, endpoint, method, answer.message))
            mine = self._for_pair(answer.witness, kind, src, dst, endpoint, method)
            if mine is not None:
                return HopLabel(GRANTED, f"witness for {src.cls} -> {dst.cls} ({answer.how})", mine)
        own = self._ask(kind, self._task_ref(src), self._task_ref(dst), endpoint, method)
        if own.status == PROVED:
            return HopLabel(DENIED, own.how)
        if own.status == REFUTED:
            return HopLabel(GRANTED, own.how, own.counterexample)
        return HopLabel(UNKNOWN, own.how)

    def _class_answer(self, kind: str, src: Proc, dst: Proc, endpoint, method) -> _ClassAnswer:
        """Settle a class key: from the text, by a group's proof, or by its own proof."""
        if KERNEL_CLASS in (src.cls, dst.cls):
            quick = self._kernel_answer(kind, src, dst, endpoint, method)
            if quick is not None:
                return quick
        shape = self._shape(kind, src.cls, dst.cls, endpoint, method)
        if shape is not None:
            if not shape:
                self.syntactic += 1
                how = f"no binding selects a {kind} {src.cls} -> {dst.cls} {endpoint}.{method} (default deny)"
                return _ClassAnswer(DENIED, how, True, label=HopLabel(DENIED, how))
            if plain_grant_shape(shape):
                message = self._plain_message(kind, src, dst, endpoint, method)
                if message is not None:
                    self.syntactic += 1
                    return _ClassAnswer(GRANTED, "an unconditional grant () selects it; witness right after start-up",
                                        True, message=message)
        result, rep = self._group_ask("never", kind, src.cls, dst.cls, endpoint, method, shape)
        if result.status == PROVED:
            how = result.how if rep is None else f"{result.how} (proved for {rep}: the same statements, message type)"
            return _ClassAnswer(DENIED, how, True, label=HopLabel(DENIED, how))
        if result.status == REFUTED:
            return _ClassAnswer(GRANTED, result.how if rep is None else f"{result.how}, as for {rep}", False,
                                result.counterexample)
        return _ClassAnswer(UNKNOWN, result.how, False)

    def _group_ask(self, quantifier: str, kind: str, src_cls: str, dst_cls: str, endpoint, method,
                   shape) -> tuple[Result, str | None]:
        """The prover's answer for a class key, shared by keys of the same program shape.

        Returns the answer and, when it was proved for another key, that key's text.
        """
        own = lambda: self._ask(kind, self._class_ref(src_cls), self._class_ref(dst_cls),  # noqa: E731
                                endpoint, method, quantifier)
        if shape is None:
            return own(), None
        gkey = (quantifier, kind, id(self._method_def(kind, src_cls, dst_cls, endpoint, method)[1]), shape)
        found = self._groups.get(gkey)
        if found is None:
            found = self._groups[gkey] = (own(), f"{kind} {src_cls} -> {dst_cls} {endpoint}.{method}")
            return found[0], None
        self.grouped += 1
        return found

    # ------------------------------------------------------------ program text
    def _method_def(self, kind: str, src_cls: str, dst_cls: str, endpoint, method) -> tuple:
        """(interface, method def) of the server's address, or (None, None) when not described."""
        if self._methods is None:
            self._methods = {(c, ep, m): (iface, mdef) for c, ep, iface, m, mdef in self.universe._addresses()}
        server = dst_cls if kind == "request" else src_cls
        return self._methods.get((server, endpoint, method), (None, None))

    def _shape(self, kind: str, src_cls: str, dst_cls: str, endpoint, method) -> tuple | None:
        """The program shape of a class key (see :func:`program_shape`), None when the key
        is not described (an opaque address) or its statements read more than the message."""
        key = (kind, src_cls, dst_cls, endpoint, method)
        if not self.share:
            return None
        if key in self._shapes:
            return self._shapes[key]
        iface, mdef = self._method_def(kind, src_cls, dst_cls, endpoint, method)
        found = None
        if mdef is not None and not mdef.untyped:
            engine_key = (kind, src_cls, dst_cls, endpoint, iface, method)
            found = program_shape(self._selecting(engine_key), engine_key, self._stateful_objects(), self._body_shapes)
        self._shapes[key] = found
        return found

    def _bindings_of(self) -> KeyBindings:
        if self._bindings is None:
            self._bindings = KeyBindings(self.universe.solution.bindings)
        return self._bindings

    def _selecting(self, engine_key: tuple) -> list:
        return self._bindings_of().selecting(engine_key)

    def _stateful_objects(self) -> frozenset[str]:
        if self._stateful is None:
            self._stateful = frozenset(Encoder(self.universe, Fresh("l.")).stateful)
        return self._stateful

    def _plain_message(self, kind: str, src: Proc, dst: Proc, endpoint, method):
        """A plain message of the key the decision function grants right after start-up, or None."""
        _, mdef = self._method_def(kind, src.cls, dst.cls, endpoint, method)
        if mdef is None:
            return None
        message = self._messages.get((kind, id(mdef)))
        if message is None:
            message = self._messages[(kind, id(mdef))] = Candidates(message_params(mdef, kind)).message(
                lambda path, t: None)
        event = _CTORS[kind](src.ref, dst.ref, endpoint, method, message)
        return message if self.prover.booted().decide(event).granted else None

    def _plain_witness(self, kind: str, src: Proc, dst: Proc, endpoint, method, message) -> Counterexample:
        """Start-up, then ``message`` from ``src`` to ``dst`` (granted in every state: a sure answer)."""
        if self._boot is None:
            self._boot = self.universe.boot_events()
        return Counterexample(self._boot, [TraceStep(_CTORS[kind](src.ref, dst.ref, endpoint, method, message), "granted")])

    # ------------------------------------------------------------------ the kernel
    def _kernel_answer(self, kind: str, src: Proc, dst: Proc, endpoint, method) -> _ClassAnswer | None:
        """A kernel class key settled without the prover, or None (then the prover decides it).

        Why shared between classes: with a thousand classes the kernel adds half a million
        class keys.  Classes whose kernel bindings are the same ones (a blanket ``request
        dst=kl.core.Core``, no section naming a class) get the same answers from the text,
        so each (kind, method) is settled once for all of them.
        """
        shared = self._bindings_of().same_for_every_class((kind, src.cls, dst.cls))
        skey = (kind, src.cls == KERNEL_CLASS, shared, endpoint, method) if shared is not None else None
        if skey is not None and skey in self._kernel_shared:
            self.shortcuts += 1
            return self._kernel_shared[skey]
        verdict = self._kernel_verdict(kind, src.cls, dst.cls, endpoint, method)
        if verdict is None:
            return None
        status, how, by_text = verdict
        self.shortcuts += 1
        if status == NEVER:
            found = _ClassAnswer(DENIED, how, True, label=HopLabel(DENIED, how))
        else:
            message = self._kernel_message(kind, src, dst, endpoint, method)
            if message is None:     # the plain message is not granted after all: ask the prover
                self.shortcuts -= 1
                self._kernel[(kind, src.cls, dst.cls, endpoint, method)] = None
                return None
            found = _ClassAnswer(GRANTED, f"{how}; witness right after start-up", True, message=message)
        if skey is not None and by_text:
            self._kernel_shared[skey] = found
        return found

    def _kernel_verdict(self, kind: str, src_cls: str, dst_cls: str, endpoint, method) -> tuple[str, str, bool] | None:
        """("always" | "never", how, read from the text) for a class key of a kernel hop,
        when a cheap answer exists.

        From the program's text first (nothing selects it; only ``grant ()`` does), then,
        for a request, from the kernel access table (which decides whole groups of methods
        over every state).
        """
        key = (kind, src_cls, dst_cls, endpoint, method)
        if key in self._kernel:
            return self._kernel[key]
        found = None
        iface, mdef = self._method_def(kind, src_cls, dst_cls, endpoint, method)
        request = kind == "request" and dst_cls == KERNEL_CLASS and src_cls != KERNEL_CLASS
        reply = kind in ("response", "error") and src_cls == KERNEL_CLASS and dst_cls != KERNEL_CLASS
        if mdef is not None and (request or reply):
            engine_key = (kind, src_cls, dst_cls, endpoint, iface, method)
            selecting = self._selecting(engine_key)
            group = self._kernel_groups[key] = (kind, tuple(id(b) for b in selecting), id(mdef))
            plain = self._plain_groups.get(group[:2])
            if plain is None:       # whether only grant () selects it; per key when sections apply per method
                shape = program_shape(selecting, engine_key, self._stateful_objects(), self._body_shapes)
                plain = shape is not None and plain_grant_shape(shape)
                if not any(isinstance(st, MatchDef) for b in selecting for st in b.body):
                    self._plain_groups[group[:2]] = plain
            if not selecting:
                found = (NEVER, "kernel access: never, no binding selects it (default deny)" if request
                         else f"no binding selects this kernel {kind} (default deny)", True)
            elif plain:
                found = (ALWAYS, f"kernel access: always, only grant () selects this kernel {kind}"
                                 " (a plain allowlist entry)", True)
            elif request:
                verdict = self._request_verdict(src_cls, endpoint, method)
                found = verdict + (False,) if verdict is not None else None
        self._kernel[key] = found
        return found

    def _request_verdict(self, cls: str, endpoint: str, method: str) -> tuple[str, str] | None:
        from ..kernel_access import ALWAYS as K_ALWAYS
        from ..kernel_access import NEVER as K_NEVER
        from ..kernel_access import kernel_access

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

    def _kernel_message(self, kind: str, src: Proc, dst: Proc, endpoint: str, method: str):
        """One plain message of this kind the decision function grants, or None.

        The verdict it confirms holds in every state for every instance of the class, so
        it is decided once per program and message type (the same bindings select the
        key, the same method definition), not once per class or per pair.
        """
        group = self._kernel_groups[(kind, src.cls, dst.cls, endpoint, method)]
        if group not in self._confirmed:
            self._confirmed[group] = self._plain_message(kind, src, dst, endpoint, method)
        return self._confirmed[group]

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
        event = _CTORS[kind](src.ref, dst.ref, endpoint, method, last.message)
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
        shape = self._shape(kind, src.cls, dst.cls, endpoint, method)
        if shape and plain_grant_shape(shape):
            found = self._conditions[key] = Condition(ALWAYS, "an unconditional grant () selects it")
            return found
        r, rep = self._group_ask("always", kind, src.cls, dst.cls, endpoint, method, shape)
        found = None
        if r.status == PROVED:
            found = Condition(ALWAYS, r.how if rep is None else f"{r.how} (proved for {rep}: the same statements)")
        elif r.status == REFUTED:
            cex = r.counterexample if rep is None else self._moved(r.counterexample, kind, src, dst, endpoint, method)
            module = self._replayed(r.counterexample)     # the same prefix (cached by the group's witness)
            denied = module.decide(cex.steps[-1].event)
            if not denied.granted:
                site = next((st.span for st in denied.steps if st.verdict in ("denied", "error") and st.span), None)
                where = f" ({site.file}:{site.line})" if site is not None else ""
                found = Condition(DEPENDS, r.how, cex, denied.reason + where)
        else:
            found = Condition(UNKNOWN, r.how)
        if found is None:           # the group's denied message is granted here: this key's own proof
            return self._own_condition(key, kind, src, dst, endpoint, method)
        self._conditions[key] = found
        return found

    def _own_condition(self, key: tuple, kind: str, src: Proc, dst: Proc, endpoint, method) -> Condition:
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

    def _moved(self, cex: Counterexample, kind: str, src: Proc, dst: Proc, endpoint, method) -> Counterexample:
        """``cex`` with its last message sent from ``src`` to ``dst`` at this key's address."""
        last = cex.steps[-1]
        event = _CTORS[kind](src.ref, dst.ref, endpoint, method, last.event.message)
        return Counterexample(cex.setup, cex.steps[:-1] + [TraceStep(event, last.expect)], cex.note)
