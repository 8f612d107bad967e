"""The decision function: decide each security event as the Kaspersky Security Module would.

Pipeline for one event (docs/semantics.md lists every rule with its test):

1. **Participants.** The sender and receiver are resolved to running processes
   (by task name or SID).  ``execute`` creates the SID of the started process
   (``dst_sid``); the kernel's own start is ``execute`` of ``kl.core.Core``.
   Naming a process that is not running denies the event.
2. **Structure check.** The message must fit the called method exactly
   (:mod:`ksm.structure`); a malformed message is denied before any rule runs.
3. **Rules.** Every binding and nested ``match`` section whose selectors match the
   event contributes its calls, in textual order (no "first match wins").  A
   ``choice`` runs the arm its expression selects (``_`` otherwise).
4. **Verdict.** Granted only if at least one rule ran and every rule granted; a
   method that runs incorrectly (unknown SID, index out of range, ...) denies.
5. **State.** Rules see the state left by the rules before them in the same event;
   the event's state changes are committed only if the decision is granted
   (``transactional=True``, the default).

Speed: the statements that apply to an event depend only on (event kind, sender
class, receiver class, endpoint, method), so they are compiled once per such key
into a flat program of closures and cached; a decision does not walk the bindings.
Names are resolved once per (kind, src, dst, endpoint, method) into a *route*.  A
route whose program touches no model state (allowlist entries, ``assert`` on the
message, ``deny``) also gets a *hot* closure that decides without the module's lock:
structure check, then the program, then a shared :class:`~ksm.events.Decision` for
each constant outcome.  :meth:`SecurityModule.decide` and the direct calls
(:meth:`SecurityModule.request` and its siblings, which take the event's fields as
arguments and build no :class:`~ksm.events.Event`) go through the same routes.

Fail closed: nothing raised while deciding escapes :meth:`SecurityModule.decide`,
and nothing malformed is granted.  Reasons say whose mistake a denial is: a call
that is not an event, or an event field of the wrong type, is ``malformed event:
...``; a message that does not fit the method is ``malformed message: ...``; an
unexpected exception — a bug in ksm, never in the caller's input — is
``internal-error: ...``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any
from collections.abc import Callable, Iterable, Mapping

from policy_lang import Solution
from policy_lang.solution import (
    EINIT_CLASS, KERNEL_CLASS, BindingDef, CallDef, ChoiceDef, MatchDef, ProcessClass, SelectorSet,
    message_params,
)
from policy_lang.kernel import is_builtin_kernel
from policy_lang.perf import gc_paused
from policy_lang.syntax import ast
from policy_lang.types import ArrayType, HandleType, IdlType, IntType, SequenceType, StructType, UnionType

from .audit import AuditPolicy, AuditSink, MemorySink
from .events import MAX_IDL_INT_BITS, NO_MESSAGE, Decision, Event, Step, int_text, show
from .expressions import EvalContext, ExprCompiler, PureContext, calls_a_model
from .security_models import ModelError, choose_by_equality
from .security_models.base import StatelessModel
from .security_models.registry import model_impl
from .structure import MalformedMessage, compile_message, reasoned


class SolutionNotLoadable(ValueError):
    """The solution has errors; a security module is not built from it."""


@dataclass
class Process:
    sid: int
    cls: str
    task: str | None


@dataclass(frozen=True)
class Options:
    """Choices the documentation leaves open, with their defaults (docs/semantics.md)."""

    transactional: bool = True        # commit an event's state changes only if it is granted
    choice_without_match: str = "deny"  # "deny": a choice with no selected arm and no `_` denies; "nothing"
    check_structure: bool = True      # the structure check (off only for experiments)


_KINDS = ("execute", "request", "response", "error", "security")
_EVENT_KINDS = frozenset(_KINDS)
_KINDS_TEXT = ", ".join(_KINDS)
# Name types a route may be cached under.  Exact types, because 1 == 1.0 == True with
# one hash: a cached SID 1 must not answer for a float or a bool naming no process.
# The same test guards every lookup of a hot route (see SecurityModule.request).
_CACHEABLE_NAMES = frozenset({str, int, type(None)})
MALFORMED_EVENT = "malformed event"
MALFORMED_MESSAGE = "malformed message"
INTERNAL_ERROR = "internal-error"
GRANTED = "every rule granted"
NO_RULE = "no rule applies to this event (default deny)"
# Rules of Base that neither read nor change its state (the audit level): base.py
# documents that they return the state unchanged.
_PURE_BASE_RULES = frozenset({"grant", "deny", "assert"})
# The pending state changes of a program that makes none: read-only, so one serves all.
_NO_PENDING: Mapping[str, Any] = MappingProxyType({})
# Distinct outcomes a program keeps a shared Decision for (bounded: reasons may vary).
_OUTCOMES_KEPT = 16
_new_tuple = tuple.__new__
_UNKNOWN: Any = object()


class _Program:
    """The compiled statements for one key, in textual order.

    ``plain_grant`` marks a program made only of matched sections and unconditional
    ``grant ()`` calls (a pure allowlist entry): it grants every message, whatever the
    state.  ``always_granted`` is the decision function's fast path for such a program
    (decision and explanation computed once, at compile time), off when the solution
    audits, since the fast path would skip the audit records.

    ``stateless``: no step reads or changes model state, so the program may run
    without the module's lock.  ``rule_free``: no step can give a verdict (only
    matched sections, or nothing), so every event is a default deny.  ``granted`` and
    ``unruled`` are the shared decisions of those two constant outcomes.  ``args``
    and ``by_values`` answer the common stateless programs from their arguments'
    values alone (see :func:`_program`); ``outcomes`` keeps the shared decision of
    each outcome seen.

    (A plain class whose fields default to the class's: one is made for every key,
    and a frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``.
    :func:`_program` sets what differs; nothing changes a program after that.)
    """

    always_granted = False
    const_steps: tuple = ()
    plain_grant = False
    stateless = False
    rule_free = False
    granted: Decision | None = None
    unruled: Decision | None = None
    args: tuple | None = None       # see _program
    by_values: Mapping[Any, Decision] = MappingProxyType({})     # its own dict when it has args
    outcomes: Mapping[str, tuple[list, Decision]] = MappingProxyType({})   # its own dict when it runs

    def __init__(self, steps: tuple, plan: tuple):
        self.steps = steps
        self.plan = plan            # (line, None) for a matched section, (None, step) for the others


def _program(steps: tuple, auditing: bool) -> _Program:
    """The program of these compiled steps, with what the decision function may skip.

    ``args``: a stateless program of matched sections and Base grant/deny/assert
    calls (``assert (message.key < 1000)``) decides by the values its calls'
    arguments evaluate to alone, and only (), true and false are valid ones.  A hot
    route evaluates the arguments and looks their values up in ``by_values``, filled
    with the decisions the full evaluation gave for them; anything else (another
    value, an argument that fails) goes through the full evaluation, with its reasons.
    """
    plan = []
    const: list = []
    args: list | None = []
    granting = False
    pure = not auditing
    if not auditing and _ConstGrant in map(type, steps):
        if all(type(st) is Step or type(st) is _ConstGrant for st in steps):     # a pure allowlist entry
            lines = tuple(st if type(st) is Step else st.line for st in steps)
            program = _Program(steps, tuple((line, None) for line in lines))
            program.plain_grant = program.always_granted = program.stateless = True
            program.const_steps = lines
            program.granted = _new_tuple(Decision, (True, GRANTED, None, lines, None))
            return program
        steps = tuple(_callable(st) for st in steps)
    for st in steps:
        if type(st) is Step:        # a matched binding or section: its line
            const.append(st)
            plan.append((st, None))
            continue
        c = getattr(st, "const_step", None)
        if c is not None:           # an unconditional grant ()
            const.append(c)
            granting = True
        plan.append((None, st))
        if pure:
            arg = getattr(st, "pure_arg", None)
            if arg is None:
                args = None
                pure = getattr(st, "pure", False)
            elif args is not None:
                args.append(arg)
    program = _Program(steps, tuple(plan))
    if len(const) == len(steps):
        const_steps = tuple(const)
        if granting:
            program.plain_grant = True
            if auditing:            # it runs, for its audit records
                program.outcomes = {}
            else:
                program.always_granted = program.stateless = True
                program.const_steps = const_steps
                program.granted = _new_tuple(Decision, (True, GRANTED, None, const_steps, None))
            return program
        if not auditing:            # only matched sections: nothing runs, no state is touched
            program.rule_free = program.stateless = True
            program.const_steps = const_steps
            program.unruled = _new_tuple(Decision, (False, NO_RULE, None, const_steps, None))
            return program
    program.outcomes = {}           # it runs: the decisions of its outcomes are kept
    if pure:
        program.stateless = True
        if args:
            program.args = tuple(args)
            program.by_values = {}
    return program


class BindingIndex:
    """The bindings of a solution by (event, src selector, dst selector), None meaning "any".

    Why: a key looks at four buckets instead of every binding.  The decision function
    compiles its programs from it, and the Z3 encoder and the kernel access table ask it
    which bindings select a key, so all three agree on the bindings and on their order.
    """

    def __init__(self, bindings):
        self._buckets: dict[tuple, list[tuple[int, BindingDef]]] = {}
        for i, b in enumerate(bindings):
            self._buckets.setdefault((b.event, b.selectors.src, b.selectors.dst), []).append((i, b))
        self._candidates: dict[tuple, list[BindingDef]] = {}

    def candidates(self, triple: tuple) -> list[BindingDef]:
        """The bindings that may select a key of (kind, src class, dst class), in textual
        order; kept per triple, since callers ask about many keys of few triples (the
        channel graph asks about every kernel method of every class)."""
        found = self._candidates.get(triple)
        if found is None:
            kind, src, dst = triple
            get = self._buckets.get
            if src is not None and dst is not None:     # the four buckets, each once
                pairs = [*get((kind, src, dst), ()), *get((kind, src, None), ()), *get((kind, None, dst), ()),
                         *get((kind, None, None), ())]
            else:                                       # src or dst is None: fewer distinct buckets
                pairs = []
                for s in ((src, None) if src is not None else (None,)):
                    for d in ((dst, None) if dst is not None else (None,)):
                        pairs += get((kind, s, d), ())
            if len(pairs) > 1:
                pairs.sort(key=_first)
            found = self._candidates[triple] = [b for _, b in pairs]
        return found

    def selecting(self, key: tuple) -> list[BindingDef]:
        """The bindings that select engine key ``key``, in textual order."""
        return [b for b in self.candidates((key[0], key[1], key[2])) if _selects(b.selectors, key)]


def _first(pair: tuple) -> Any:
    return pair[0]


def _nests_matches(body) -> bool:
    """Whether a body holds a ``match`` section at any depth (its compiled form then depends on the key)."""
    for st in body:
        if isinstance(st, MatchDef):
            return True
        if isinstance(st, ChoiceDef) and any(_nests_matches(a.body) for a in st.arms):
            return True
    return False


class SecurityModule:
    """A running security module over one solution (thread safe, see :meth:`decide`)."""

    def __init__(self, solution: Solution, options: Options | None = None, audit_sink: AuditSink | None = None):
        _check_arguments(solution, options, audit_sink)
        self.solution = solution
        self.options = options or Options()
        self.audit = AuditPolicy(solution)
        self.audit_sink: AuditSink = audit_sink if audit_sink is not None else MemorySink()
        # Audit can only record something if the solution has a profile; without one
        # the pure-allowlist fast path stays on.
        self._auditing = bool(solution.audit_profiles)
        self._lock = threading.RLock()
        self._impls = {name: model_impl(o.model) for name, o in solution.objects.items()}
        self._exprs = ExprCompiler(solution, self._impls, self._audit_expression if self._auditing else None)
        self._programs: dict[tuple, _Program] = {}
        self._by_binding: dict[int, list] = {}          # id(binding) -> its steps, when they fit every key
        self._validators: dict[tuple, Callable] = {}
        self._validator_params: dict[Callable, tuple] = {}   # validator -> its parameters
        # Paused collector: the index allocates one tuple per binding, and on a large
        # solution that triggers full collections walking the whole loaded model (1.2 s
        # of 1.3 s at 100,000 bindings), while nothing allocated here forms a cycle.
        with gc_paused():
            self.bindings = BindingIndex(solution.bindings)
            self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Fresh module: no processes, every object in its initial state."""
        with self._lock:
            self.states: dict[str, Any] = {
                name: self._impls[name].initial_state(o) for name, o in self.solution.objects.items()
            }
            for name, o in self.solution.objects.items():
                if o.model == "Base":   # Base state is the audit runtime-level
                    self.states[name] = self.audit.initial_level
            self.processes: dict[int, Process] = {}
            self._by_task: dict[str, int] = {}
            self._forget_routes()
            self._next_sid = 1

    def _forget_routes(self) -> None:
        """Names and SIDs resolve differently now: resolve them again."""
        self._routes: dict[tuple, tuple] = {}
        self._hot: dict[tuple, Callable] = {}
        self._texts: dict[tuple, str] = {}          # a route's event as audit records describe it

    def is_running(self, task: str) -> bool:
        """Whether a process with this task name has been started."""
        with self._lock:
            return task in self._by_task

    def snapshot(self) -> dict[str, Any]:
        """The model state of every object (immutable values)."""
        with self._lock:
            return dict(self.states)

    def checkpoint(self) -> tuple:
        """Everything a decision can change, to go back to with :meth:`restore`.

        Why: replaying many traces that share a prefix (flow-hop witnesses, simulator
        branches) should not re-run start-up for each one.  Model states are
        immutable values and processes are never changed once started, so shallow
        copies suffice.
        """
        with self._lock:
            return (dict(self.states), dict(self.processes), dict(self._by_task), self._next_sid)

    def restore(self, checkpoint: tuple) -> None:
        """Return to a state saved by :meth:`checkpoint` (of this module)."""
        states, processes, by_task, next_sid = checkpoint
        with self._lock:
            self.states, self.processes = dict(states), dict(processes)
            self._by_task, self._next_sid = dict(by_task), next_sid
            self._forget_routes()

    def boot(self) -> list[Decision]:
        """Start the kernel, Einit and every init.yaml instance, as at system start."""
        out = [self.decide(Event.execute(KERNEL_CLASS))]
        out.append(self.decide(Event.execute(EINIT_CLASS, src=KERNEL_CLASS)))
        for inst in self.solution.instances:
            out.append(self.decide(Event.execute(inst.task, src=EINIT_CLASS)))
        return out

    # ------------------------------------------------------------------ deciding
    def decide(self, event: Event) -> Decision:
        """Decide one event; never raises, whatever ``event`` is (see the module docstring).

        Thread safe: decisions that read or change model state are serialised by the
        module's lock; a route whose program touches no state is decided without it
        (nothing it reads can change under it).
        """
        try:
            return self._decide(event)
        except Exception as exc:    # only a replaced _decide (a test's mutant) can raise here
            return Decision(False, f"{INTERNAL_ERROR}: {_exception_text(exc)}", event)

    def _decide(self, event: Event) -> Decision:
        """One event decided: by its hot route when it has one, else under the lock.

        Every :meth:`decide` and :meth:`decide_many` goes through here (tests replace
        it to check that a broken decision function is noticed); the direct calls
        (:meth:`request` ...) do not.
        """
        if type(event) is Event:
            d = self._hot_decision(event)
            if d is not None:
                return d
        with self._lock:
            return self._decide_closed(event)

    def _hot_decision(self, event: Event) -> Decision | None:
        """``event`` decided by its hot route, or None (no hot route: take the lock)."""
        try:
            kind, src, dst, endpoint, method = event.kind, event.src, event.dst, event.endpoint, event.method
            if type(kind) is str and (type(src) is type(dst) is type(endpoint) is type(method) is str
                                      or _names(src, dst, endpoint, method)):
                hot = self._hot.get((kind, src, dst, endpoint, method))
                if hot is not None:
                    decision = hot(event.message)
                    if decision is not None:
                        return _new_tuple(Decision, (decision[0], decision[1], event, decision[3], decision[4]))
        except Exception:       # an event built around __init__, missing fields: the general path says why
            pass
        return None

    def decide_many(self, events: Iterable[Event]) -> list[Decision]:
        """Decide events in order under one lock acquisition (no other caller interleaves).

        Raises TypeError only when ``events`` is not a collection of events at all
        (a misuse of this method, not an event to deny); each element that is not an
        event is denied like ``decide(junk)``.
        """
        if isinstance(events, (str, bytes, Event, Mapping)) or not isinstance(events, Iterable):
            raise TypeError(f"decide_many takes a list of ksm.Event, e.g. decide_many([event]); "
                            f"got {type(events).__name__}")
        with self._lock:
            return [self.decide(e) for e in events]

    # ----------------------------------------------------------- direct calls
    # (Written out once per kind on purpose: a shared helper would add a Python call,
    # about a fifth of a warm decision.)
    # The event's fields as arguments, no Event built: the same decision as
    # decide(Event(kind, ...)) — same routes, checks, reasons and audit records — with
    # ``event`` None.  ``message`` None (or left out) is no parameters, as in the
    # Event factories; anything else is checked as decide() checks Event.message.
    def request(self, src: str | int, dst: str | int, endpoint: str | int, method: str | int,
                message: Mapping[str, Any] | None = None) -> Decision:
        """``src`` calls ``dst``: decide(Event.request(src, dst, endpoint, method, message)), event None."""
        if type(src) is type(dst) is type(endpoint) is type(method) is str or _names(src, dst, endpoint, method):
            hot = self._hot.get(("request", src, dst, endpoint, method))
            if hot is not None:
                d = hot(NO_MESSAGE if message is None else message)
                if d is not None:
                    return d
        return self._direct("request", src, dst, endpoint, method, message)

    def response(self, src: str | int, dst: str | int, endpoint: str | int, method: str | int,
                 message: Mapping[str, Any] | None = None) -> Decision:
        """The server ``src`` answers ``dst``: decide(Event.response(...)), event None."""
        if type(src) is type(dst) is type(endpoint) is type(method) is str or _names(src, dst, endpoint, method):
            hot = self._hot.get(("response", src, dst, endpoint, method))
            if hot is not None:
                d = hot(NO_MESSAGE if message is None else message)
                if d is not None:
                    return d
        return self._direct("response", src, dst, endpoint, method, message)

    def error(self, src: str | int, dst: str | int, endpoint: str | int, method: str | int,
              message: Mapping[str, Any] | None = None) -> Decision:
        """The server ``src`` answers ``dst`` with the error flag: decide(Event.error(...)), event None."""
        if type(src) is type(dst) is type(endpoint) is type(method) is str or _names(src, dst, endpoint, method):
            hot = self._hot.get(("error", src, dst, endpoint, method))
            if hot is not None:
                d = hot(NO_MESSAGE if message is None else message)
                if d is not None:
                    return d
        return self._direct("error", src, dst, endpoint, method, message)

    def security(self, src: str | int, method: str | int, message: Mapping[str, Any] | None = None) -> Decision:
        """``src`` queries its security interface: decide(Event.security(src, method, message)), event None."""
        if type(src) is type(method) is str or _names(src, None, None, method):
            hot = self._hot.get(("security", src, None, None, method))
            if hot is not None:
                d = hot(NO_MESSAGE if message is None else message)
                if d is not None:
                    return d
        return self._direct("security", src, None, None, method, message)

    def execute(self, dst: str | int, src: str | int | None = None) -> Decision:
        """Start a process: decide(Event.execute(dst, src)), event None (``sid`` is the new SID).

        Always under the lock: a start changes the set of processes.
        """
        return self._direct("execute", src, dst, None, "main", NO_MESSAGE)

    def _direct(self, kind: str, src: Any, dst: Any, endpoint: Any, method: Any, message: Any) -> Decision:
        with self._lock:
            return self._closed(kind, src, dst, endpoint, method, NO_MESSAGE if message is None else message, None)

    # ------------------------------------------------------------ the general path
    def _decide_closed(self, event: Any) -> Decision:
        """Decide ``event`` under the lock (held by the caller), fail-closed."""
        if not isinstance(event, Event):
            return Decision(False, f"{MALFORMED_EVENT}: decide() takes a ksm.Event, got {type(event).__name__}", event)
        try:
            fields = (event.kind, event.src, event.dst, event.endpoint, event.method, event.message)
        except Exception as exc:   # an Event subclass whose fields raise
            return Decision(False, f"{INTERNAL_ERROR}: {_exception_text(exc)}", event)
        return self._closed(*fields, event)

    def _closed(self, kind: Any, src: Any, dst: Any, endpoint: Any, method: Any, message: Any,
                event: Event | None) -> Decision:
        """:meth:`_general` made fail-closed: every exception becomes a denial; ``event`` filled in."""
        try:
            d = self._general(kind, src, dst, endpoint, method, message, event)
        except _Denied as denied:
            if denied.reason.startswith(MALFORMED_MESSAGE):
                self._audit_always(event if event is not None else (kind, src, dst, endpoint, method), denied.reason)
            return Decision(False, denied.reason, event)
        except Exception as exc:  # a bug is a denial, never an escape
            return Decision(False, f"{INTERNAL_ERROR}: {_exception_text(exc)}", event)
        if event is not None:
            return _new_tuple(Decision, (d[0], d[1], event, d[3], d[4]))
        return d

    def _general(self, kind: Any, src: Any, dst: Any, endpoint: Any, method: Any, message: Any,
                 event: Event | None) -> Decision:
        """Decide under the lock; a Decision with ``event`` None (the caller fills it in)."""
        try:
            known = kind in _EVENT_KINDS
        except Exception:       # unhashable, or a hash that raises
            known = False
        if not known:
            if not isinstance(kind, str):
                raise _Denied(f"{MALFORMED_EVENT}: kind must be one of {_KINDS_TEXT}; got {type(kind).__name__}")
            raise _Denied(f"unknown event kind {show(kind)} (one of {_KINDS_TEXT})")
        who = event if event is not None else (kind, src, dst, endpoint, method)
        if kind == "execute":
            src_proc, new_proc = self._execute_participants(src, dst)
            src_sid = src_proc.sid if src_proc else new_proc.sid
            program = self._program((kind, src_proc.cls if src_proc else KERNEL_CLASS, new_proc.cls, None, None, "main"))
            decision, pending = self._evaluate(program, {}, src_sid, new_proc.sid, {}, who)
            if pending and (decision.granted or not self.options.transactional):
                self.states.update(pending)
            if not decision.granted:
                self._next_sid = new_proc.sid  # the SID was never handed out
                return decision
            self.processes[new_proc.sid] = new_proc
            if new_proc.task and new_proc.task not in self._by_task:
                self._by_task[new_proc.task] = new_proc.sid
            self._forget_routes()
            return _new_tuple(Decision, (True, decision.reason, None, decision.steps, new_proc.sid))
        src_sid, dst_sid, program, validate = self._route_of(kind, src, dst, endpoint, method)
        checked = self._checked(validate, message)
        if checked is message and not program.stateless:
            checked = dict(checked)     # a rule may keep what it is given in state: not the caller's dict
        decision, pending = self._evaluate(program, checked, src_sid, dst_sid,
                                           _NO_PENDING if program.stateless else {}, who)
        if pending and (decision.granted or not self.options.transactional):
            self.states.update(pending)
        return decision

    def _checked(self, validate: Callable | None, message: Any) -> dict:
        """The structure-checked (normalised) message; raises _Denied when it is malformed."""
        if validate is None:
            if type(message) is not dict and not isinstance(message, Mapping):
                raise _Denied(f"{MALFORMED_MESSAGE}: message must be a mapping of parameter values, "
                              f"got {type(message).__name__}")
            problem = _unencodable(message) if message else None
            if problem is not None:
                raise _Denied(f"{MALFORMED_MESSAGE}: {problem}")
            return dict(message)
        try:
            return validate(message)
        except MalformedMessage as exc:
            raise _Denied(f"{MALFORMED_MESSAGE}: {exc}")
        except ValueError:
            # Python will not print an int of more than 4,300 digits, and the
            # structure check prints the value it rejects: find it by its size.
            reason = _oversized_int(self._validator_params.get(validate, ()), message)
            if reason is None:
                raise
            raise _Denied(f"{MALFORMED_MESSAGE}: {reason}")

    def _evaluate(self, program: _Program, message: Mapping, src_sid: int | None, dst_sid: int | None,
                  pending: Any, who: Any) -> tuple[Decision, Any]:
        """Run ``program`` on a checked message: (decision with ``event`` None, pending state changes).

        The one evaluation both paths share (the lock's and the hot routes'), so they
        cannot disagree.  ``who`` is the event, or its (kind, src, dst, endpoint,
        method), for audit records (see :meth:`_describe`).
        """
        if program.always_granted:          # a pure allowlist entry: nothing to evaluate
            return program.granted, None
        if program.rule_free:               # only matched sections: default deny, always audited
            self._audit_always(who, NO_RULE)
            return program.unruled, None
        if program.stateless:
            ctx = _new_tuple(PureContext, (message, src_sid, dst_sid))
        else:
            ctx = EvalContext(message, src_sid, dst_sid, self.states, pending)
        steps: list = []
        verdicts = 0
        denied = ""
        for line, step in program.plan:
            if step is None:                # a matched section: its line, nothing to run
                steps.append(line)
                continue
            ok, why, n = step(ctx, steps)
            verdicts += n
            if not ok and not denied:
                denied = why
        granted = verdicts > 0 and not denied
        reason = GRANTED if granted else (denied or NO_RULE)
        if verdicts == 0:
            self._audit_always(who, reason)
        if ctx.audit:
            self._write_audit(ctx.audit, who, granted)
        # One shared decision per outcome: the steps and reasons of equal outcomes are
        # mostly the very same objects (calls keep their lines and reasons), so telling
        # them equal is a few identity tests.  Bounded: reasons may vary.
        outcomes = program.outcomes
        known = outcomes.get(reason)
        if known is not None and known[0] == steps and known[1][0] is granted:
            return known[1], ctx.pending
        decision = _new_tuple(Decision, (granted, reason, None, tuple(steps), None))
        if known is not None or len(outcomes) < _OUTCOMES_KEPT:
            outcomes[reason] = (steps, decision)
        return decision, ctx.pending

    def _write_audit(self, records: list, who: Any, granted: bool) -> None:
        level = self.audit_level()
        text = self._describe(who)
        with self._lock:
            for record in records:
                record["level"] = level
                record["event"] = text
                record["decision"] = "granted" if granted else "denied"
                self.audit_sink.write(record)

    def _describe(self, who: Any) -> str:
        """What an audit record says the event was: ``who`` is the Event, the text, or
        the (kind, src, dst, endpoint, method) of a direct call or a route (whose text
        is kept: a route's denials are audited again and again)."""
        if type(who) is not tuple:
            return who if type(who) is str else who.describe()
        if not _names(*who[1:]):        # not a route's names (a float, a list...): nothing to keep
            return Event(*who).describe()
        text = self._texts.get(who)
        if text is None:
            text = Event(*who).describe()
            if len(self._texts) < 100_000:
                self._texts[who] = text
        return text
        if not _names(*who[1:]):
            return Event(*who).describe()
        if text is None:
            text = Event(*who).describe()
            if len(self._texts) < 100_000:
                self._texts[who] = text
        return text

    # ------------------------------------------------------------------ routes
    def _route(self, event: Event):
        """(src SID, dst SID, program, validator) for an IPC or security event, cached."""
        return self._route_of(event.kind, event.src, event.dst, event.endpoint, event.method)

    def _route_of(self, kind: str, src: Any, dst: Any, endpoint: Any, method: Any):
        """(src SID, dst SID, program, validator) for an IPC or security event, cached.

        Resolving names, endpoints and methods is the same for every event with the
        same (kind, src, dst, endpoint, method); the cache is emptied whenever the set
        of running processes changes.  A route whose program touches no state also
        gets its hot closure (see :meth:`_hot_route`).
        """
        rkey: tuple | None = (kind, src, dst, endpoint, method)
        names = _CACHEABLE_NAMES
        if type(src) in names and type(dst) in names and type(endpoint) in names and type(method) in names:
            route = self._routes.get(rkey)
            if route is not None:
                return route
        else:
            rkey = None         # a float, a bool, an unhashable...: resolve uncached (and deny below)
        src_proc = self._process(src, "sender")
        dst_proc = self._process(dst, "receiver") if kind != "security" else None
        endpoint_name, interface, method_name, validate = self._address(kind, endpoint, method, src_proc, dst_proc)
        key = (kind, src_proc.cls, dst_proc.cls if dst_proc else None, endpoint_name, interface, method_name)
        program = self._program(key)
        route = (src_proc.sid, dst_proc.sid if dst_proc else None, program, validate)
        if rkey is not None:
            self._routes[rkey] = route
            if program.stateless:
                self._hot[rkey] = self._hot_route(rkey, route)
        return route

    def _hot_route(self, rkey: tuple, route: tuple) -> Callable[[Any], Decision | None]:
        """``hot(message)``: the decision of this route without the lock, or None.

        None sends the caller to the general path (under the lock), which decides the
        same event from scratch: taken for anything unusual (a message the structure
        check cannot word a reason for, an unexpected exception), so the hot path
        never has to be right about anything but the common cases.  A handler per
        shape of program (module functions below), bound to the route by a partial:
        making one costs two small objects, not a closure and its cells.
        """
        src_sid, dst_sid, program, validate = route
        if validate is None:                # opaque, or structure checks off
            return partial(_hot_unchecked, self, (src_sid, dst_sid, program, None, rkey))
        check = getattr(validate, "check", None) or reasoned(validate)     # the reason, not an exception
        if program.always_granted or program.rule_free:
            takes_nothing = getattr(validate, "takes_nothing", False)       # NO_MESSAGE needs no check
            return partial(_hot_constant, self, (src_sid, dst_sid, program, check, rkey, takes_nothing))
        handler = _hot_args if program.args is not None else _hot_evaluate
        return partial(handler, self, (src_sid, dst_sid, program, check, rkey))

    def _malformed(self, rkey: tuple, problem: str) -> Decision:
        """The denial of a malformed message on a hot route (audited, as always)."""
        reason = f"{MALFORMED_MESSAGE}: {problem}"
        self._audit_always(self._route_text(rkey), reason)
        return _new_tuple(Decision, (False, reason, None, (), None))

    def _route_text(self, rkey: tuple) -> str:
        """A route's event as audit records describe it (a route's names are always cacheable)."""
        text = self._texts.get(rkey)
        if text is None:
            text = self._texts[rkey] = Event(*rkey).describe()
        return text

    def audit_level(self) -> int:
        """The current audit runtime-level (the Base object's state)."""
        base = self.states.get("base")
        return base if isinstance(base, int) and not isinstance(base, bool) else self.audit.initial_level

    def _audit_always(self, who: Any, reason: str) -> None:
        """Denials the documentation says are audited whatever the profiles.

        Under the lock even on a hot route, unless the sink says it is thread safe
        (``thread_safe = True``, as :class:`~ksm.audit.MemorySink` does).
        """
        try:
            base = self.states.get("base")
            record = {"event": who if type(who) is str else self._describe(who), "decision": "denied",
                      "reason": reason, "always": True,
                      "level": base if type(base) is int else self.audit_level()}
            sink = self.audit_sink
            if getattr(sink, "thread_safe", False) is True:
                sink.write(record)
            else:
                with self._lock:
                    sink.write(record)
        except Exception:  # a failing sink must not change a decision
            pass

    def _audit_call(self, profile: str | None, obj: str, what: str, verdict: str, span, ctx, arg) -> None:
        flow_state = None
        if self.solution.objects[obj].model == "Flow" and isinstance(arg, Mapping) and "sid" in arg:
            try:
                flow_state = self._impls[obj].expression(self.solution.objects[obj], ctx.state(obj), "query",
                                                         {"sid": arg["sid"]})
            except ModelError:
                flow_state = None
        if self.audit.audits_rule(profile, self.audit_level(), obj, verdict, flow_state):
            _audit_list(ctx).append({"call": what, "verdict": verdict, "profile": profile or self.audit.default_profile,
                                     "file": span.file, "line": span.line})

    def _audit_expression(self, profile: str | None, obj: str, method: str, ctx) -> None:
        """Regex ``emit``: record calls of the listed expressions (``match``, ``select``)."""
        if self.audit.audits_expression(profile, self.audit_level(), obj, method):
            _audit_list(ctx).append({"call": f"{obj}.{method}", "expression": True,
                                     "profile": profile or self.audit.default_profile})

    def _program(self, key: tuple) -> "_Program":
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = self._compile(key)
        return program

    # ------------------------------------------------------------------ participants
    def _process(self, ref: Any, role: str) -> Process:
        if isinstance(ref, bool):
            raise _Denied(f"{role} {ref!r} is not a process")
        if isinstance(ref, int):
            proc = self.processes.get(ref)
            if proc is None:
                raise _Denied(f"{role}: no running process has SID {int_text(ref)}")
            return proc
        if isinstance(ref, str):
            sid = self._by_task.get(ref)
            if sid is None:
                raise _Denied(f"{role}: no running process named {show(ref)}")
            return self.processes[sid]
        raise _Denied(f"{role} must be a task name or a SID, not {type(ref).__name__}")

    def _execute_participants(self, src_ref: Any, dst: Any) -> tuple[Process | None, Process]:
        if not isinstance(dst, str):
            raise _Denied(f"execute: dst must name a task from init.yaml or a process class, not {type(dst).__name__}")
        instance = self.solution.instance(dst)
        if instance is not None:
            cls, task = instance.cls, instance.task
        elif dst in self.solution.classes:
            cls, task = dst, dst
        else:
            raise _Denied(f"execute: {show(dst)} is neither a task in init.yaml nor a known process class")
        if task in self._by_task:
            task = None  # a second process of the same name: reachable by its SID only
        src = None
        if src_ref is not None:
            src = self._process(src_ref, "sender")
        elif cls != KERNEL_CLASS:
            kernel = self._by_task.get(KERNEL_CLASS)
            src = self.processes.get(kernel) if kernel is not None else None
            if src is None:
                raise _Denied("execute: the kernel has not started (decide Event.execute('kl.core.Core') first)")
        sid = self._next_sid
        self._next_sid += 1
        return src, Process(sid, cls, task)

    def _address(self, kind: str, endpoint: Any, method: Any, src: Process, dst: Process | None):
        """(endpoint, interface, method, validator) of an IPC or security event."""
        if kind == "security":
            cls = self.solution.classes.get(src.cls)
            iface = cls.security if cls else None
            if iface is None:
                raise _Denied(f"{src.cls} has no security interface")
            m = _method(iface, method)
            return None, iface.name, m.name, self._validator(iface.name, m, kind)
        server = dst if kind == "request" else src
        cls: ProcessClass = self.solution.classes[server.cls]
        if cls.opaque:
            # Unknown endpoints (the kernel, SDK programs without descriptions): the
            # names are taken as given and the message is not structure-checked.
            if not isinstance(endpoint, (str, type(None))) or not isinstance(method, (str, type(None))):
                raise _Denied(f"{cls.name} is opaque: name its endpoint and method, not RIID/MID")
            return endpoint, None, method, None
        if is_builtin_kernel(cls) and not (isinstance(endpoint, str) and isinstance(method, str)):
            raise _Denied(f"{MALFORMED_MESSAGE}: the built-in kernel description does not number endpoints and "
                          f"methods as the real module does: name them (or load the SDK's Core.edl with --sdk)")
        ep = None
        if isinstance(endpoint, str):
            ep = cls.endpoint(endpoint)
        elif isinstance(endpoint, int) and not isinstance(endpoint, bool):
            ep = cls.endpoints[endpoint] if 0 <= endpoint < len(cls.endpoints) else None
        if ep is None:
            if isinstance(endpoint, str) and isinstance(method, str) and cls.in_opaque_part(endpoint):
                # An endpoint of a component from outside the solution: unknown, as for an opaque class.
                return endpoint, None, method, None
            raise _Denied(f"{MALFORMED_MESSAGE}: {cls.name} has no endpoint {show(endpoint)}")
        if ep.interface.opaque:
            if not isinstance(method, str):
                raise _Denied(f"{ep.interface.name} is opaque: name the method of {ep.name}, not its MID")
            return ep.name, ep.interface.name, method, None
        m = _method(ep.interface, method)
        return ep.name, ep.interface.name, m.name, self._validator(ep.interface.name, m, kind)

    def _validator(self, iface: str, method, kind: str) -> Callable | None:
        """The compiled structure check for (interface, method, event kind); None when off."""
        if not self.options.check_structure:
            return None
        key = (iface, method.name, kind)
        check = self._validators.get(key)
        if check is None:
            params = tuple(message_params(method, kind))
            if method.untyped and not params:
                check = self._validators[key] = _untyped_check(method, kind, f"{iface}.{method.name}")
            else:
                check = self._validators[key] = compile_message(params)
            self._validator_params[check] = params
        return check

    # ------------------------------------------------------------------ compiling
    def _compile(self, key: tuple) -> _Program:
        program: list = []
        for b in self.bindings.selecting(key):      # textual order
            program += self._binding(b, key)
        return _program(tuple(program), self._auditing)

    def _binding(self, b: BindingDef, key: tuple) -> list:
        """The compiled steps of binding ``b`` for ``key``.

        A body without ``match`` sections compiles alike for every key the binding
        selects, so it is compiled once and its closures are shared by those keys'
        programs (they hold no per-event state).
        """
        cached = self._by_binding.get(id(b))
        if cached is not None:
            return cached
        steps = [self._enter(f"{key[0]} {_selectors_text(b.selectors)}", b.span), *self._body(b.body, key, b.audit)]
        if not _nests_matches(b.body):
            self._by_binding[id(b)] = steps     # the solution keeps ``b`` (and so its id) alive
        return steps

    def _body(self, body, key, profile: str | None) -> list:
        """Compile statements; ``profile`` is the audit profile attached around them."""
        out: list = []
        for st in body:
            if isinstance(st, MatchDef):
                if st.satisfiable and _selects(st.selectors, key):
                    out.append(self._enter(f"match {_selectors_text(st.selectors)}", st.span))
                    out.extend(self._body(st.body, key, st.audit or profile))
            elif isinstance(st, ChoiceDef):
                out.append(self._choice(st, key, st.audit or profile))
            elif isinstance(st, CallDef):
                out.append(self._call(st, profile))
        return out

    @staticmethod
    def _enter(what: str, span) -> Step:
        """A matched binding or section: its explanation line stands for it in a step list."""
        return _new_tuple(Step, (what, "matched", span, ""))

    def _call(self, c: CallDef, profile: str | None = None) -> Callable:
        what = f"{c.object}.{c.method}"
        if c.kind != "rule":
            value = self._exprs.compile(c.node, profile)
            votes_nothing = Step(what, "value", c.span, "expression: votes nothing")

            def expr_step(ctx, steps):
                try:
                    value(ctx)
                except ModelError as exc:
                    steps.append(Step(what, "error", c.span, str(exc)))
                    return False, f"{what} runs incorrectly: {exc}", 0
                steps.append(votes_nothing)
                return True, "", 0
            expr_step.pure = not calls_a_model(c.node)
            return expr_step
        impl = self._impls[c.object]
        method = c.method
        span = c.span
        unconditional = c.model == "Base" and method == "grant" and isinstance(c.arg, ast.Lit) and c.arg.kind == "unit"
        if (not self._auditing and c.model == "Base" and method in _PURE_BASE_RULES
                and type(impl).rule is StatelessModel.rule and method in impl._rules and not calls_a_model(c.arg)):
            if unconditional:
                return _ConstGrant(what, span, impl._rules[method])     # what StatelessModel.rule calls
            return _pure_call(what, span, self._exprs.compile(c.arg, profile), impl._rules[method], False)
        arg = self._exprs.compile(c.arg, profile)
        obj = self.solution.objects[c.object]
        audit = self._audit_call if self._auditing else None
        name = c.object
        # Explanation lines and denial reasons by (verdict, model reason): most calls
        # give one of a few answers, so each is made once (bounded, so varying reasons
        # cannot grow it), and equal outcomes of one program share their objects.
        explained: dict[tuple[bool, str], tuple[Step, str]] = {}

        def explain(granted: bool, reason: str) -> tuple[Step, str]:
            known = explained.get((granted, reason))
            if known is None:
                known = _explained(what, span, granted, reason)
                if len(explained) < 64:
                    explained[(granted, reason)] = known
            return known

        def rule_step(ctx, steps):
            value = None
            try:
                value = arg(ctx)
                pending = ctx.pending
                state = pending[name] if name in pending else ctx.states[name]
                res = impl.rule(obj, state, method, value)
            except ModelError as exc:
                steps.append(Step(what, "error", span, str(exc)))
                if audit:
                    audit(profile, name, what, "denied", span, ctx, value)
                return False, f"{what} runs incorrectly: {exc}", 1
            if audit:
                audit(profile, name, what, "granted" if res.granted else "denied", span, ctx, value)
            line, why = explain(res.granted, res.reason)
            steps.append(line)
            if res.granted:
                if res.state is not state:
                    pending[name] = res.state
                return True, "", 1
            return False, why, 1
        if unconditional:
            rule_step.const_step = Step(what, "granted", c.span, "")
        return rule_step

    def _choice(self, ch: ChoiceDef, key, profile: str | None = None) -> Callable:
        cases = [a.case.value if a.case is not None else None for a in ch.arms]
        arms = [tuple(_callable(s) for s in self._body(a.body, key, profile)) for a in ch.arms]
        default = next((i for i, a in enumerate(ch.arms) if a.case is None), None)
        select = self._selector(ch.expr, cases, profile)
        deny_unmatched = self.options.choice_without_match == "deny"
        chose = [Step("choice", "chose", a.span, "_" if cases[i] is None else repr(cases[i]))
                 for i, a in enumerate(ch.arms)]
        no_arm = Step("choice", "chose", ch.span, "no arm selected")

        def step(ctx, steps):
            try:
                idx = select(ctx)
            except ModelError as exc:
                steps.append(Step("choice", "error", ch.span, str(exc)))
                return False, f"choice selector runs incorrectly: {exc}", 0
            if idx is None:
                idx = default
            if idx is None:
                steps.append(no_arm)
                return (False, "choice selected no arm and has no `_`", 1) if deny_unmatched else (True, "", 0)
            steps.append(chose[idx])
            ok_all, first_reason, n_all = True, "", 0
            for sub in arms[idx]:
                if type(sub) is Step:       # a matched section
                    steps.append(sub)
                    continue
                ok, reason, n = sub(ctx, steps)
                n_all += n
                if not ok and ok_all:
                    ok_all, first_reason = False, reason
            return ok_all, first_reason, n_all
        step.pure = not calls_a_model(ch.expr) and all(type(s) is Step or getattr(s, "pure", False)
                                                        for arm in arms for s in arm)
        return step

    def _selector(self, e: ast.Expr, cases: list, profile: str | None) -> Callable:
        if isinstance(e, ast.Call):
            target = self._exprs.call_target(e)
            if target is not None:
                name, impl, obj, method = target
                arg = self._exprs.compile(e.arg, profile)
                if not self._auditing:
                    return lambda ctx: impl.choose(obj, ctx.state(name), method, arg(ctx), cases)
                emit = self._audit_expression

                def audited(ctx):
                    idx = impl.choose(obj, ctx.state(name), method, arg(ctx), cases)
                    emit(profile, name, method, ctx)
                    return idx
                return audited
        value = self._exprs.compile(e, profile)
        return lambda ctx: choose_by_equality(value(ctx), cases)


def _explained(what: str, span, granted: bool, reason: str) -> tuple[Step, str]:
    """A call's explanation line, and the event's denial reason when it denies."""
    return (_new_tuple(Step, (what, "granted" if granted else "denied", span, reason)),
            "" if granted else f"{what} denied" + (f": {reason}" if reason else ""))


class _ConstGrant:
    """A ``grant ()`` call, kept as its explanation line while no program needs more.

    A pure allowlist entry (matched sections and ``grant ()``) never runs its calls:
    its decision is made once, from the lines (see :func:`_program`).  The callable
    step, with its closure, is made only for a program that runs (:func:`_callable`).
    """

    __slots__ = ("line", "what", "span", "rule")

    def __init__(self, what: str, span, rule: Callable):
        self.line = _new_tuple(Step, (what, "granted", span, ""))
        self.what, self.span, self.rule = what, span, rule


def _callable(step: Any) -> Any:
    """``step`` as a program that runs it needs it (a _ConstGrant becomes its call)."""
    if type(step) is _ConstGrant:
        return _pure_call(step.what, step.span, _unit, step.rule, True)
    return step


def _unit(ctx: Any) -> None:
    """The value of ``()``: what ``grant ()`` passes."""
    return None


def _pure_call(what: str, span, arg: Callable, rule: Callable, unconditional: bool) -> Callable:
    """The step of a Base grant/deny/assert call whose argument reads no state.

    With state None (unused, and returned unchanged) such a rule is a function of its
    argument alone, and only (), true and false are valid arguments: the outcome of
    each is worked out once, when it first occurs.
    """
    by_value: dict[Any, tuple] = {}

    def pure_step(ctx, steps):
        try:
            value = arg(ctx)
            if value is True or value is False or value is None:
                known = by_value.get(value)
                if known is None:
                    res = rule(None, value)
                    line, why = _explained(what, span, res.granted, res.reason)
                    known = by_value[value] = (line, res.granted, why)
                steps.append(known[0])
                return known[1], known[2], 1
            res = rule(None, value)             # raises: not a valid argument
        except ModelError as exc:
            steps.append(Step(what, "error", span, str(exc)))
            return False, f"{what} runs incorrectly: {exc}", 1
        line, why = _explained(what, span, res.granted, res.reason)
        steps.append(line)
        return res.granted, why, 1
    pure_step.pure = True
    pure_step.pure_arg = arg
    if unconditional:
        pure_step.const_step = _new_tuple(Step, (what, "granted", span, ""))
    return pure_step


def _names(src: Any, dst: Any, endpoint: Any, method: Any) -> bool:
    """Whether a route may be cached (and looked up) under these names: see _CACHEABLE_NAMES."""
    names = _CACHEABLE_NAMES
    return type(src) in names and type(dst) in names and type(endpoint) in names and type(method) in names


# ---------------------------------------------------------------- hot routes
# hot(message) of a route whose program touches no state: ``info`` is (src SID, dst
# SID, program, structure check answering its reason instead of raising, route key).  Each returns the decision (``event`` None), or
# None for the general path to decide the event from scratch (see _hot_route).

def _hot_unchecked(module: SecurityModule, info: tuple, message: Any) -> Decision | None:
    """Opaque endpoint, or structure checks off: the message is only screened."""
    src_sid, dst_sid, program, _, rkey = info
    if type(message) is not dict:
        return None
    try:
        checked = module._checked(None, message)
        return module._evaluate(program, checked, src_sid, dst_sid, _NO_PENDING, rkey)[0]
    except Exception:
        return None


def _hot_constant(module: SecurityModule, info: tuple, message: Any) -> Decision | None:
    """A pure allowlist entry (granted) or a key no rule applies to (denied, audited)."""
    program = info[2]
    if message is not NO_MESSAGE or not info[5]:
        try:
            checked = info[3](message)
        except Exception:
            return None
        if type(checked) is str:
            return module._malformed(info[4], checked)
    if program.always_granted:
        return program.granted
    module._audit_always(module._route_text(info[4]), NO_RULE)
    return program.unruled


def _hot_args(module: SecurityModule, info: tuple, message: Any) -> Decision | None:
    """Base grant/deny/assert on the message: the decision by the arguments' values."""
    src_sid, dst_sid, program, check, rkey = info
    try:
        checked = check(message)
    except Exception:
        return None
    if type(checked) is str:
        return module._malformed(rkey, checked)
    args = program.args
    by_values = program.by_values
    key: Any = _UNKNOWN
    try:
        ctx = _new_tuple(PureContext, (checked, src_sid, dst_sid))
        if len(args) == 1:
            value = args[0](ctx)
            if value is True or value is False or value is None:
                key = value
        else:
            values = tuple([arg(ctx) for arg in args])
            if all(v is True or v is False or v is None for v in values):
                key = values
        if key is not _UNKNOWN:
            known = by_values.get(key)
            if known is not None:
                return known
    except ModelError:
        pass                                # the full evaluation says what failed, and why
    except Exception:
        return None
    try:
        decision = module._evaluate(program, checked, src_sid, dst_sid, _NO_PENDING, rkey)[0]
    except Exception:
        return None
    if key is not _UNKNOWN and len(by_values) < _OUTCOMES_KEPT:
        by_values[key] = decision           # these values give this decision, every time
    return decision


def _hot_evaluate(module: SecurityModule, info: tuple, message: Any) -> Decision | None:
    """Any other stateless program: checked, then evaluated in full, without the lock."""
    src_sid, dst_sid, program, check, rkey = info
    try:
        checked = check(message)
    except Exception:
        return None
    if type(checked) is str:
        return module._malformed(rkey, checked)
    try:
        return module._evaluate(program, checked, src_sid, dst_sid, _NO_PENDING, rkey)[0]
    except Exception:
        return None


def _audit_list(ctx) -> list:
    """The event's audit records, made on the first one."""
    if ctx.audit is None:
        ctx.audit = []
    return ctx.audit


class _Denied(Exception):
    """Raised before any rule runs (bad participants, malformed message): a plain denial."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _method(iface, ref):
    if isinstance(ref, str):
        for m in iface.methods:
            if m.name == ref:
                return m
    elif isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(iface.methods):
        return iface.methods[ref]
    raise _Denied(f"{MALFORMED_MESSAGE}: interface {iface.name} has no method {show(ref)}")


def _selectors_text(sel: SelectorSet) -> str:
    """``sel.describe()``, written out: it names every matched binding and section of a
    first decision, and the generic form costs more than the rest of the line.
    (tests/test_fast_calls.py checks the two agree.)"""
    parts = []
    if sel.src:
        parts.append(f"src={sel.src}")
    if sel.dst:
        parts.append(f"dst={sel.dst}")
    if sel.component:
        parts.append(f"component={sel.component}")
    if sel.endpoint:
        parts.append(f"endpoint={sel.endpoint}")
    if sel.interface:
        parts.append(f"interface={sel.interface}")
    if sel.method:
        parts.append(f"method={sel.method}")
    return " ".join(parts) or "(any)"


def _selects(sel: SelectorSet, key: tuple) -> bool:
    kind, src, dst, endpoint, interface, method = key
    return (
        (sel.src is None or sel.src == src)
        and (sel.dst is None or sel.dst == dst)
        and (sel.endpoint is None or sel.endpoint == endpoint)
        and (sel.interface is None or sel.interface == interface)
        and (sel.method is None or sel.method == method)
        and (sel.component is None or ((dst if kind == "request" else src), endpoint) in sel.component_endpoints)
    )


def _check_arguments(solution: Any, options: Any, audit_sink: Any) -> None:
    """Refuse a wrong constructor argument with what to pass instead.

    Why here: a wrong argument otherwise fails far from the mistake (``'str' object
    has no attribute 'ok'``), or — an audit sink without ``write`` — only at the first
    audited decision, which is then quietly unrecorded.
    """
    if not isinstance(solution, Solution):
        raise TypeError("SecurityModule takes a loaded Solution, e.g. SecurityModule(ksm.load(path)); "
                        f"got {type(solution).__name__}")
    if not solution.ok:
        errors = [d for d in solution.diagnostics if d.severity.value == "error"]
        raise SolutionNotLoadable(
            f"the solution has {len(errors)} error{'' if len(errors) == 1 else 's'} "
            f"(the first: {errors[0].render().splitlines()[0]}); run `ksm check` and fix them first")
    if options is not None and not isinstance(options, Options):
        raise TypeError(f"SecurityModule options take a ksm.Options, e.g. Options(transactional=False); "
                        f"got {type(options).__name__}")
    if audit_sink is not None and not callable(getattr(audit_sink, "write", None)):
        raise TypeError("audit_sink takes an object with a write(record: dict) method, e.g. "
                        f"ksm.audit.MemorySink(); got {type(audit_sink).__name__}")


def _exception_text(exc: BaseException) -> str:
    """``Type: message`` of an unexpected exception, even when its message cannot be made."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:   # str() of the exception itself failed (it may hold a huge int)
        return type(exc).__name__


# Values an unchecked message may hold: what JSON, PAL and the simulator produce.
_PLAIN_VALUES = (str, int, float, bytes, bytearray, type(None), list, tuple, Mapping)
# Deeper than any IDL type nests; rules and error messages walk values recursively.
MAX_MESSAGE_DEPTH = 64


# The integers some IDL type holds: SInt64's lowest to UInt64's highest.
_IDL_MIN, _IDL_MAX = -(1 << (MAX_IDL_INT_BITS - 1)), (1 << MAX_IDL_INT_BITS) - 1
# Values no IDL type holds: IDL has no floating point, no Boolean and no null.
_NOT_IDL_VALUES = (float, bool, type(None))


def _untyped_check(method, kind: str, name: str) -> Callable[[Any], dict]:
    """The structure check of a method whose parameters are known by name only (the kernel's).

    The names are checked (a parameter the documentation does not list for this
    direction makes the message malformed) and the values only as far as any IDL
    value goes (:func:`_unencodable`); a documented parameter may be left out, since
    without its type nothing says what an absent one would hold.
    """
    direction = {"request": "in", "response": "out"}.get(kind)
    names = method.untyped_names(direction) if direction else ()
    allowed = frozenset(names)
    listed = ", ".join(names) if names else "none"
    anything = "*" in allowed          # parameters not documented at all: names unchecked

    def check(message: Any) -> dict:
        if not isinstance(message, Mapping):
            raise MalformedMessage("message must be a mapping of parameter values")
        for k in message:
            if type(k) is not str:
                raise MalformedMessage(f"parameter names are text, got {type(k).__name__} {show(k)}")
            if k not in allowed and not anything:
                raise MalformedMessage(f"{show(k)} is not a documented {direction or kind}-parameter of {name} "
                                       f"(documented: {listed})")
        problem = _unencodable(message, idl_only=True) if message else None
        if problem is not None:
            raise MalformedMessage(problem)
        return dict(message)

    return check


def _unencodable(message: Mapping, idl_only: bool = False) -> str | None:
    """Why a message to an opaque endpoint cannot be a real one, or None.

    ``idl_only`` also refuses floats, Booleans and ``None`` (:data:`_NOT_IDL_VALUES`):
    for a method whose parameters are known by name (the kernel's), every value is an
    IDL one; opaque endpoints keep taking what JSON and the simulator produce.

    Such a message is not structure-checked (its method is unknown), but some things
    no IDL message holds whatever the method: an integer wider than 64 bits, a field
    name that is not text, an object that is not a plain value (a socket, a class),
    nesting deeper than :data:`MAX_MESSAGE_DEPTH`.  Rules would otherwise meet them,
    and a model wording an error about ``10**5000`` fails to print it.  Iterative,
    so a deep or self-containing message cannot exhaust the stack.
    """
    if type(message) is dict:       # the usual flat message of names, numbers and text: no walk
        for k, v in message.items():
            if type(k) is not str or not (type(v) is str or (type(v) is int and _IDL_MIN <= v <= _IDL_MAX)):
                break
        else:
            return None
    stack: list[tuple[str, Any, int]] = [("", message, 0)]
    while stack:                                    # depth first, in the message's order
        path, v, depth = stack.pop()
        if idl_only and isinstance(v, _NOT_IDL_VALUES):
            return (f"{show(path, quote=False)}: {show(v)} is not an IDL value (IDL has integers, text, bytes, "
                    f"sequences and records)")
        if isinstance(v, int):
            if not _IDL_MIN <= v <= _IDL_MAX:
                return f"{path}: {int_text(v)} fits no IDL integer (SInt64 or UInt64)"
        elif not isinstance(v, _PLAIN_VALUES):
            return f"{path}: {type(v).__name__} is not a message value"
        elif isinstance(v, (list, tuple, Mapping)):
            if depth >= MAX_MESSAGE_DEPTH:
                return f"{show(path, quote=False)}: nested deeper than {MAX_MESSAGE_DEPTH} levels"
            if isinstance(v, Mapping):
                for k in v:
                    if type(k) is not str:
                        return f"{path or 'message'}: field names are text, got {type(k).__name__} {show(k)}"
                inner = [(f"{path}.{k}" if path else k, x) for k, x in v.items()]
            else:
                inner = [(f"{path}[{i}]", x) for i, x in enumerate(v)]
            stack.extend((p, x, depth + 1) for p, x in reversed(inner))
    return None


def _oversized_int(params: tuple, message: Any) -> str | None:
    """The structure check's reason for the first integer wider than any IDL integer.

    Only asked after the structure check failed to word its reason (it prints the
    value it rejects), so it walks the message as that check does — parameters,
    then struct fields, union members, sequence elements, in order — and measures
    integers by ``bit_length()`` instead of printing them.  None: no such integer
    (the failure was something else, a bug to report as ``internal-error``).
    """
    if not isinstance(message, Mapping):
        return None
    for p in params:
        if p.name in message:
            reason = _oversized_in(p.type, message[p.name], p.name)
            if reason is not None:
                return reason
    return None


def _oversized_in(t: IdlType, v: Any, path: str) -> str | None:
    if type(v) is int:
        if v.bit_length() <= MAX_IDL_INT_BITS:
            return None
        if isinstance(t, IntType):
            return f"{path}: {int_text(v)} out of range for {t.name}"
        if isinstance(t, HandleType):
            return f"{path}: SID {int_text(v)} out of range"
        return None
    if isinstance(t, HandleType) and isinstance(v, Mapping):
        handle = v.get("handle")
        if type(handle) is int and handle.bit_length() > MAX_IDL_INT_BITS:
            return f"{path}: SID {int_text(handle)} out of range"
        return None
    if isinstance(t, (SequenceType, ArrayType)) and isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            reason = _oversized_in(t.element, x, f"{path}[{i}]")
            if reason is not None:
                return reason
        return None
    if isinstance(t, StructType) and isinstance(v, Mapping):
        for f in t.fields:
            if f.name in v:
                reason = _oversized_in(f.type, v[f.name], f"{path}.{f.name}")
                if reason is not None:
                    return reason
        return None
    if isinstance(t, UnionType) and isinstance(v, Mapping) and len(v) == 1:
        (name, x), = v.items()
        member = next((f for f in t.fields if f.name == name), None)
        return _oversized_in(member.type, x, f"{path}.{name}") if member is not None else None
    return None
