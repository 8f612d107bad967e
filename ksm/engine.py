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
from .events import MAX_IDL_INT_BITS, Decision, Event, Step, int_text, show
from .expressions import ExprCompiler, EvalContext
from .security_models import ModelError, choose_by_equality
from .security_models.registry import model_impl
from .structure import MalformedMessage, compile_message


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
_CACHEABLE_NAMES = frozenset({str, int, type(None)})
MALFORMED_EVENT = "malformed event"
MALFORMED_MESSAGE = "malformed message"
INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True)
class _Program:
    """The compiled statements for one key, in textual order.

    ``plain_grant`` marks a program made only of matched sections and unconditional
    ``grant ()`` calls (a pure allowlist entry): it grants every message, whatever the
    state.  ``always_granted`` is the decision function's fast path for such a program
    (decision and explanation computed once, at compile time), off when the solution
    audits, since the fast path would skip the audit records.
    """

    steps: tuple
    always_granted: bool = False
    const_steps: tuple = ()
    plain_grant: bool = False


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

    def selecting(self, key: tuple) -> list[BindingDef]:
        """The bindings that select engine key ``key``, in textual order."""
        kind, src, dst = key[0], key[1], key[2]
        buckets = {(kind, s, d) for s in (src, None) for d in (dst, None)}    # a set: src or dst may be None
        candidates = sorted((ib for k in buckets for ib in self._buckets.get(k, ())), key=lambda ib: ib[0])
        return [b for _, b in candidates if _selects(b.selectors, key)]


class SecurityModule:
    """A running security module over one solution (thread safe: one decision at a time)."""

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
            self._routes: dict[tuple, tuple] = {}
            self._next_sid = 1

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
            self._routes = {}

    def boot(self) -> list[Decision]:
        """Start the kernel, Einit and every init.yaml instance, as at system start."""
        out = [self.decide(Event.execute(KERNEL_CLASS))]
        out.append(self.decide(Event.execute(EINIT_CLASS, src=KERNEL_CLASS)))
        for inst in self.solution.instances:
            out.append(self.decide(Event.execute(inst.task, src=EINIT_CLASS)))
        return out

    # ------------------------------------------------------------------ deciding
    def decide(self, event: Event) -> Decision:
        """Decide one event; never raises, whatever ``event`` is (see the module docstring)."""
        with self._lock:
            return self._decide_closed(event)

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
            return [self._decide_closed(e) for e in events]

    def _decide_closed(self, event: Event) -> Decision:
        """:meth:`_decide` made fail-closed: every exception becomes a denial."""
        try:
            return self._decide(event)
        except _Denied as d:
            if d.reason.startswith(MALFORMED_MESSAGE):
                self._audit_always(event, d.reason)
            return Decision(False, d.reason, event)
        except Exception as exc:  # a bug is a denial, never an escape
            return Decision(False, f"{INTERNAL_ERROR}: {_exception_text(exc)}", event)

    def _decide(self, event: Event) -> Decision:
        if not isinstance(event, Event):
            raise _Denied(f"{MALFORMED_EVENT}: decide() takes a ksm.Event, got {type(event).__name__}")
        kind = event.kind
        try:
            known = kind in _EVENT_KINDS
        except Exception:       # unhashable, or a hash that raises
            known = False
        if not known:
            if not isinstance(kind, str):
                raise _Denied(f"{MALFORMED_EVENT}: kind must be one of {_KINDS_TEXT}; got {type(kind).__name__}")
            raise _Denied(f"unknown event kind {show(kind)} (one of {_KINDS_TEXT})")
        new_proc: Process | None = None
        if kind == "execute":
            src_proc, new_proc = self._execute_participants(event)
            src_cls = src_proc.cls if src_proc else KERNEL_CLASS
            src_sid, dst_sid = (src_proc.sid if src_proc else new_proc.sid), new_proc.sid
            program = self._program((kind, src_cls, new_proc.cls, None, None, "main"))
            message: Mapping = {}
        else:
            src_sid, dst_sid, program, validate = self._route(event)
            if validate is None:
                message = event.message
                if type(message) is not dict and not isinstance(message, Mapping):
                    raise _Denied(f"{MALFORMED_MESSAGE}: message must be a mapping of parameter values, "
                                  f"got {type(message).__name__}")
                problem = _unencodable(message) if message else None
                if problem is not None:
                    raise _Denied(f"{MALFORMED_MESSAGE}: {problem}")
                message = dict(message)
            else:
                try:
                    message = validate(event.message)
                except MalformedMessage as exc:
                    raise _Denied(f"{MALFORMED_MESSAGE}: {exc}")
                except ValueError:
                    # Python will not print an int of more than 4,300 digits, and the
                    # structure check prints the value it rejects: find it by its size.
                    reason = _oversized_int(self._validator_params.get(validate, ()), event.message)
                    if reason is None:
                        raise
                    raise _Denied(f"{MALFORMED_MESSAGE}: {reason}")
        if program.always_granted:          # a pure allowlist entry: nothing to evaluate
            steps = program.const_steps
            granted, reason, pending = True, "every rule granted", None
        else:
            ctx = EvalContext(message, src_sid, dst_sid, self.states, {})
            step_list: list = []
            verdicts = 0
            denied_reason = ""
            for step in program.steps:
                ok, why, n = step(ctx, step_list)
                verdicts += n
                if not ok and not denied_reason:
                    denied_reason = why
            granted = verdicts > 0 and not denied_reason
            reason = "every rule granted" if granted else (denied_reason or "no rule applies to this event (default deny)")
            steps, pending = tuple(step_list), ctx.pending
            if verdicts == 0:
                self._audit_always(event, reason)
            if ctx.audit:
                level = self.audit_level()
                for record in ctx.audit:
                    record["level"] = level
                    record["event"] = event.describe()
                    record["decision"] = "granted" if granted else "denied"
                    self.audit_sink.write(record)
        if pending and (granted or not self.options.transactional):
            self.states.update(pending)
        if new_proc is not None:
            if granted:
                self.processes[new_proc.sid] = new_proc
                if new_proc.task and new_proc.task not in self._by_task:
                    self._by_task[new_proc.task] = new_proc.sid
                self._routes.clear()    # names and SIDs resolve differently now
            else:
                self._next_sid = new_proc.sid  # the SID was never handed out
        return Decision(granted, reason, event, steps, new_proc.sid if (new_proc and granted) else None)

    def _route(self, event: Event):
        """(src SID, dst SID, program, validator) for an IPC or security event, cached.

        Resolving names, endpoints and methods is the same for every event with the
        same (kind, src, dst, endpoint, method); the cache is emptied whenever the set
        of running processes changes.
        """
        rkey = (event.kind, event.src, event.dst, event.endpoint, event.method)
        names = _CACHEABLE_NAMES
        if (type(rkey[1]) in names and type(rkey[2]) in names and type(rkey[3]) in names
                and type(rkey[4]) in names):
            route = self._routes.get(rkey)
            if route is not None:
                return route
        else:
            rkey = None         # a float, a bool, an unhashable...: resolve uncached (and deny below)
        kind = event.kind
        src_proc = self._process(event.src, "sender")
        dst_proc = self._process(event.dst, "receiver") if kind != "security" else None
        endpoint, interface, method_name, validate = self._address(event, src_proc, dst_proc)
        key = (kind, src_proc.cls, dst_proc.cls if dst_proc else None, endpoint, interface, method_name)
        route = (src_proc.sid, dst_proc.sid if dst_proc else None, self._program(key), validate)
        if rkey is not None:
            self._routes[rkey] = route
        return route

    def audit_level(self) -> int:
        """The current audit runtime-level (the Base object's state)."""
        base = self.states.get("base")
        return base if isinstance(base, int) and not isinstance(base, bool) else self.audit.initial_level

    def _audit_always(self, event: Event, reason: str) -> None:
        """Denials the documentation says are audited whatever the profiles."""
        try:
            self.audit_sink.write({"event": event.describe(), "decision": "denied", "reason": reason,
                                   "always": True, "level": self.audit_level()})
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
            ctx.audit.append({"call": what, "verdict": verdict, "profile": profile or self.audit.default_profile,
                              "file": span.file, "line": span.line})

    def _audit_expression(self, profile: str | None, obj: str, method: str, ctx) -> None:
        """Regex ``emit``: record calls of the listed expressions (``match``, ``select``)."""
        if self.audit.audits_expression(profile, self.audit_level(), obj, method):
            ctx.audit.append({"call": f"{obj}.{method}", "expression": True,
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

    def _execute_participants(self, event: Event) -> tuple[Process | None, Process]:
        dst = event.dst
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
        if event.src is not None:
            src = self._process(event.src, "sender")
        elif cls != KERNEL_CLASS:
            kernel = self._by_task.get(KERNEL_CLASS)
            src = self.processes.get(kernel) if kernel is not None else None
            if src is None:
                raise _Denied("execute: the kernel has not started (decide Event.execute('kl.core.Core') first)")
        sid = self._next_sid
        self._next_sid += 1
        return src, Process(sid, cls, task)

    def _address(self, event: Event, src: Process, dst: Process | None):
        """(endpoint, interface, method, normalised message) of an IPC or security event."""
        kind = event.kind
        if kind == "security":
            cls = self.solution.classes.get(src.cls)
            iface = cls.security if cls else None
            if iface is None:
                raise _Denied(f"{src.cls} has no security interface")
            method = _method(iface, event.method)
            return None, iface.name, method.name, self._validator(iface.name, method, kind)
        server = dst if kind == "request" else src
        cls: ProcessClass = self.solution.classes[server.cls]
        if cls.opaque:
            # Unknown endpoints (the kernel, SDK programs without descriptions): the
            # names are taken as given and the message is not structure-checked.
            if not isinstance(event.endpoint, (str, type(None))) or not isinstance(event.method, (str, type(None))):
                raise _Denied(f"{cls.name} is opaque: name its endpoint and method, not RIID/MID")
            return event.endpoint, None, event.method, None
        if is_builtin_kernel(cls) and not (isinstance(event.endpoint, str) and isinstance(event.method, str)):
            raise _Denied(f"{MALFORMED_MESSAGE}: the built-in kernel description does not number endpoints and "
                          f"methods as the real module does: name them (or load the SDK's Core.edl with --sdk)")
        ep = None
        if isinstance(event.endpoint, str):
            ep = cls.endpoint(event.endpoint)
        elif isinstance(event.endpoint, int) and not isinstance(event.endpoint, bool):
            ep = cls.endpoints[event.endpoint] if 0 <= event.endpoint < len(cls.endpoints) else None
        if ep is None:
            if isinstance(event.endpoint, str) and isinstance(event.method, str) and cls.in_opaque_part(event.endpoint):
                # An endpoint of a component from outside the solution: unknown, as for an opaque class.
                return event.endpoint, None, event.method, None
            raise _Denied(f"{MALFORMED_MESSAGE}: {cls.name} has no endpoint {show(event.endpoint)}")
        if ep.interface.opaque:
            if not isinstance(event.method, str):
                raise _Denied(f"{ep.interface.name} is opaque: name the method of {ep.name}, not its MID")
            return ep.name, ep.interface.name, event.method, None
        method = _method(ep.interface, event.method)
        return ep.name, ep.interface.name, method.name, self._validator(ep.interface.name, method, kind)

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
        kind = key[0]
        program: list = []
        for b in self.bindings.selecting(key):      # textual order
            program.append(self._enter(f"{kind} {b.selectors.describe()}", b.span))
            program.extend(self._body(b.body, key, b.audit))
        steps = tuple(program)
        const = [getattr(st, "const_step", None) for st in steps]
        if steps and all(c is not None for c in const) and any(c.verdict == "granted" for c in const):
            if self._auditing:
                return _Program(steps, plain_grant=True)
            return _Program(steps, True, tuple(const), plain_grant=True)
        return _Program(steps)

    def _body(self, body, key, profile: str | None) -> list:
        """Compile statements; ``profile`` is the audit profile attached around them."""
        out: list = []
        for st in body:
            if isinstance(st, MatchDef):
                if st.satisfiable and _selects(st.selectors, key):
                    out.append(self._enter(f"match {st.selectors.describe()}", st.span))
                    out.extend(self._body(st.body, key, st.audit or profile))
            elif isinstance(st, ChoiceDef):
                out.append(self._choice(st, key, st.audit or profile))
            elif isinstance(st, CallDef):
                out.append(self._call(st, profile))
        return out

    @staticmethod
    def _enter(what: str, span) -> Callable:
        entry = Step(what, "matched", span)

        def step(ctx, steps):
            steps.append(entry)
            return True, "", 0
        step.const_step = entry
        return step

    def _call(self, c: CallDef, profile: str | None = None) -> Callable:
        what = f"{c.object}.{c.method}"
        if c.kind != "rule":
            value = self._exprs.compile(c.node, profile)

            def expr_step(ctx, steps):
                try:
                    value(ctx)
                except ModelError as exc:
                    steps.append(Step(what, "error", c.span, str(exc)))
                    return False, f"{what} runs incorrectly: {exc}", 0
                steps.append(Step(what, "value", c.span, "expression: votes nothing"))
                return True, "", 0
            return expr_step
        impl = self._impls[c.object]
        obj = self.solution.objects[c.object]
        arg = self._exprs.compile(c.arg, profile)
        method = c.method
        unconditional = c.model == "Base" and c.method == "grant" and isinstance(c.arg, ast.Lit) and c.arg.kind == "unit"
        audit = self._audit_call if self._auditing else None
        name = c.object

        span = c.span
        # Explanation lines by (verdict, reason): most calls give one of a few answers,
        # so the Step is built once (bounded, so varying reasons cannot grow it).
        explained: dict[tuple[bool, str], Step] = {}

        def explain(granted: bool, reason: str) -> Step:
            step = explained.get((granted, reason))
            if step is None:
                step = Step(what, "granted" if granted else "denied", span, reason)
                if len(explained) < 64:
                    explained[(granted, reason)] = step
            return step

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
            steps.append(explain(res.granted, res.reason))
            if res.granted:
                if res.state is not state:
                    pending[name] = res.state
                return True, "", 1
            return False, f"{what} denied" + (f": {res.reason}" if res.reason else ""), 1
        if unconditional:
            rule_step.const_step = Step(what, "granted", c.span, "")
        return rule_step

    def _choice(self, ch: ChoiceDef, key, profile: str | None = None) -> Callable:
        cases = [a.case.value if a.case is not None else None for a in ch.arms]
        arms = [tuple(self._body(a.body, key, profile)) for a in ch.arms]
        default = next((i for i, a in enumerate(ch.arms) if a.case is None), None)
        select = self._selector(ch.expr, cases, profile)
        deny_unmatched = self.options.choice_without_match == "deny"

        def step(ctx, steps):
            try:
                idx = select(ctx)
            except ModelError as exc:
                steps.append(Step("choice", "error", ch.span, str(exc)))
                return False, f"choice selector runs incorrectly: {exc}", 0
            if idx is None:
                idx = default
            if idx is None:
                steps.append(Step("choice", "chose", ch.span, "no arm selected"))
                return (False, "choice selected no arm and has no `_`", 1) if deny_unmatched else (True, "", 0)
            steps.append(Step("choice", "chose", ch.arms[idx].span, "_" if cases[idx] is None else repr(cases[idx])))
            ok_all, first_reason, n_all = True, "", 0
            for sub in arms[idx]:
                ok, reason, n = sub(ctx, steps)
                n_all += n
                if not ok and ok_all:
                    ok_all, first_reason = False, reason
            return ok_all, first_reason, n_all
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
