"""Answer properties: a proof, or a counterexample the decision function confirms.

How a property is answered (cheapest first):

1. **single-step** — the violating event is looked for in the state right after
   start-up, then in *every* state the encoding allows (stateful objects
   unconstrained).  If none exists in every state, the property is proved without
   looking at reachability; if one exists after start-up, that is a counterexample.
2. **inductive invariant (CHC)** — otherwise the reachable states matter: the
   transition relation (every event that can change a relevant object's state, as
   the decision function would grant it) goes to Z3's Horn-clause engine (Spacer),
   which either finds an inductive invariant excluding the violation (PROVED) or
   says a violation is reachable.
3. **k-induction / bounded model checking** — when Spacer gives up, or to produce
   the trace of a reachable violation: unrolled transitions from start-up (BMC)
   find the shortest trace up to the bound; the induction step proves the property
   for every depth once k consecutive safe states cannot reach a violation.

Every counterexample is replayed through :class:`ksm.engine.SecurityModule` before
it is reported; a disagreement with no over-approximated grant involved raises
:class:`ReplayMismatch` (a bug in one of the two).

When Z3 cannot decide (its answer is unknown, a construct is not encoded, or Z3
fails), the property is not lost and neither are the others: before answering
UNKNOWN with the reason, a cheap **concrete search** (:class:`_Search`) runs boundary
and seeded random messages through the decision function, and a counterexample it
finds is replayed and reported like any other.

Only relevant state is encoded: the objects the property reads, closed under the
objects read or written by any event that writes one of them (cone of influence).
Processes started after boot are not part of the transition relation: their
contexts could only be created by events the model does not unroll (documented in
docs/proving.md).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import z3

from policy_lang.solution import Solution

from ..engine import MALFORMED_MESSAGE, Options, SecurityModule
from ..events import Event, jsonable
from ..expressions import EvalContext, ExprCompiler
from ..security_models.symbolic import TRUE, Fresh, NotEncoded, allof, anyof
from .message import Candidates, NoModel, Pinner, SymbolicMessage, literals_of, plainest_model
from .program import Encoder, expression_objects, _objects_in, _rule_objects
from .universe import EventKey, Universe

PROVED, REFUTED, UNKNOWN = "PROVED", "REFUTED", "UNKNOWN"


class ReplayMismatch(RuntimeError):
    """The decision function disagrees with the Z3 model on a counterexample (a bug)."""


@dataclass
class TraceStep:
    event: Event
    expect: str                 # granted | denied
    explanation: str = ""


@dataclass
class Counterexample:
    """Start-up events, then each message, ending with the violating one (if any)."""

    setup: list[Event]
    steps: list[TraceStep]
    note: str = ""

    def to_json(self) -> dict:
        return {"setup": [_event_json(e) for e in self.setup],
                "steps": [dict(_event_json(s.event), expect=s.expect) for s in self.steps],
                "note": self.note}


@dataclass
class Result:
    name: str
    kind: str
    status: str
    how: str
    seconds: float = 0.0
    counterexample: Counterexample | None = None
    related: list = field(default_factory=list)     # spans of bindings/calls involved
    prop: Any = None

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "status": self.status, "how": self.how,
               "seconds": round(self.seconds, 4)}
        if self.prop is not None and getattr(self.prop, "span", None) is not None:
            sp = self.prop.span
            out["location"] = {"file": sp.file, "line": sp.line, "column": sp.column}
        if self.counterexample is not None:
            out["counterexample"] = self.counterexample.to_json()
        return out


@dataclass(frozen=True)
class ProveOptions:
    timeout_ms: int = 10_000      # per Z3 call
    depth: int = 8                # k for k-induction and the BMC bound
    use_chc: bool = True
    reachability: bool = True     # False: event properties stop after the single-step checks (lint)
    # The concrete search before an UNKNOWN answer (docs/proving.md):
    search: bool = True
    search_messages: int = 512    # candidate messages per event key and sender/receiver pair, at start-up
    search_walks: int = 8         # random walks of up to `depth` granted events (when reachable states matter)
    search_seconds: float = 2.0   # wall-clock bound of one property's search
    seed: int = 0                 # of the random messages and walks


def _event_json(e: Event) -> dict:
    return {"kind": e.kind, "src": e.src, "dst": e.dst, "endpoint": e.endpoint, "method": e.method,
            "message": jsonable(e.message)}


# ====================================================================== the prover
class Prover:
    """Proves properties of one solution (the universe is built once and shared)."""

    def __init__(self, solution: Solution, options: ProveOptions | None = None,
                 engine_options: Options | None = None):
        self.solution = solution
        self.options = options or ProveOptions()
        self.universe = Universe.build(solution, engine_options)
        self._pairs: dict[tuple, z3.BoolRef] = {}
        self._module: SecurityModule | None = None
        self._booted: tuple = ()

    def booted(self, at: tuple | None = None) -> SecurityModule:
        """A decision function right after start-up (or at checkpoint ``at`` of it), for replays.

        Why one module restored each time: start-up is one decision per process, and
        large solutions replay hundreds of counterexamples (one per hop label).  The
        module is shared: it is valid until the next call.
        """
        if self._module is None:
            self._module = SecurityModule(self.universe.solution, self.universe.options)
            self._module.boot()
            self._booted = self._module.checkpoint()
        self._module.restore(at if at is not None else self._booted)
        return self._module

    def pair_condition(self, src: z3.ArithRef, dst, key: EventKey) -> z3.BoolRef:
        """``(src, dst)`` is one of the key's pairs: a sender and a receiver of it.

        Built once per pair of sides, then renamed: a question about two classes of
        a hundred instances each would otherwise build the same disjunctions anew.
        """
        senders = tuple(a.sid for a in key.senders)
        receivers = tuple(b.sid for b in key.receivers if b is not None) if dst is not None else ()
        found = self._pairs.get((senders, receivers))
        if found is None:
            src_ok = sid_in(_PAIR_SRC, senders)
            found = z3.And(src_ok, sid_in(_PAIR_DST, receivers)) if receivers else src_ok
            self._pairs[(senders, receivers)] = found
        return z3.substitute(found, (_PAIR_SRC, src), *(((_PAIR_DST, dst),) if receivers else ()))

    def prove(self, prop) -> Result:
        """One property's answer; whatever goes wrong stays with this property.

        Z3 giving up, a construct the encoding lacks, or an exception inside the
        prover makes this property UNKNOWN with the reason (after the concrete
        search); only a counterexample the decision function rejects
        (:class:`ReplayMismatch`, a bug the command must report) propagates.
        """
        t0 = time.perf_counter()
        proof = None
        try:
            proof = _Proof(self, prop)
            result = proof.run()
        except ReplayMismatch:
            raise
        except NotEncoded as exc:
            result = Result(prop.name, prop.kind, UNKNOWN, f"not encoded: {exc}")
        except NoModel as exc:
            result = Result(prop.name, prop.kind, UNKNOWN, str(exc))
        except z3.Z3Exception as exc:
            result = Result(prop.name, prop.kind, UNKNOWN, f"Z3 failed: {_text(exc)}")
        except RecursionError:
            result = Result(prop.name, prop.kind, UNKNOWN, "too deeply nested for the encoding (recursion limit)")
        except Exception as exc:  # a bug in the prover: this property only
            result = Result(prop.name, prop.kind, UNKNOWN, f"internal error: {type(exc).__name__}: {_text(exc)}")
        if result.status == UNKNOWN and self.options.search and prop.kind in _SEARCHABLE:
            result = self._search(prop, proof, result)
        result.prop = prop
        result.seconds = time.perf_counter() - t0
        return result

    def _search(self, prop, proof: _Proof | None, result: Result) -> Result:
        """The concrete search before an UNKNOWN answer (see :class:`_Search`)."""
        deep = proof is None or proof.deep
        related = list(dict.fromkeys(proof.related)) if proof is not None else []
        try:
            proof = _Proof(self, prop)            # fresh: the failed attempt may be half-way
            found, tried = _Search(proof, deep).run()
        except ReplayMismatch:
            raise
        except Exception as exc:  # the search is a bonus: never worse than the UNKNOWN it started from
            result.how += f"; concrete search failed: {type(exc).__name__}: {_text(exc)}"
            return result
        if found is None:
            result.how += f"; concrete search: {tried}"
            return result
        found.how = f"{found.how}; proof attempt: {result.how}"
        found.related = found.related or related
        return found

    def prove_all(self, props, progress: Callable[[Result], None] | None = None) -> list[Result]:
        """Every property's answer (see :meth:`prove`: one property's trouble is its own)."""
        out = []
        for p in props:
            r = self.prove(p)
            out.append(r)
            if progress:
                progress(r)
        return out


@dataclass
class _Instance:
    """One event key instantiated with fresh message and SID variables."""

    key: EventKey
    message: SymbolicMessage
    src: z3.ArithRef
    dst: z3.ArithRef | None
    pairs: z3.BoolRef

    def concrete_event(self, model: z3.ModelRef) -> Event:
        s = model.eval(self.src, model_completion=True).as_long()
        d = model.eval(self.dst, model_completion=True).as_long() if self.dst is not None else None
        src = next((a for a in self.key.senders if a.sid == s), self.key.senders[0])
        dst = next((b for b in self.key.receivers if b is None or d is None or b.sid == d), self.key.receivers[0])
        return self.key.event(src, dst, self.message.concrete(model))


def plainest(solver: z3.Solver, insts: list, pinner: Pinner | None = None) -> z3.ModelRef:
    """The plainest model: the first listed sender/receiver pair, then plain fields.

    Call it right after a ``check()`` that said sat, or pass the :class:`Pinner` used
    since: Z3 may answer unknown to any later question (see :class:`Pinner`).
    """
    pinner = pinner or Pinner(solver)
    for inst in insts:
        sides = [(inst.src, [a.sid for a in inst.key.senders])]
        if inst.dst is not None:
            sides.append((inst.dst, [b.sid for b in inst.key.receivers if b is not None]))
        for var, sids in sides:           # the first sender that can send, then its first receiver
            for sid in sids:
                if pinner.pin(var == sid):
                    break
    return plainest_model(solver, [i.message for i in insts], pinner)


class _Proof:
    def __init__(self, prover: Prover, prop):
        self.prover, self.prop = prover, prop
        self.universe = prover.universe
        self.opts = prover.options
        self.fresh = Fresh("p.")
        self.enc = Encoder(self.universe, self.fresh)
        self.counter = 0
        self.abstract = False
        self.related: list = []
        self.escapes: list = []       # events that would reach a model context of an untracked SID
        self._unknown = ""            # why Z3 gave up on a start-up check, if it did
        self.deep = True              # UNKNOWN left by Z3 on reachable states: the search walks too
        self._condition_fn = None     # the property's condition compiled for the decision function

    # ------------------------------------------------------------ helpers
    def escaping(self) -> bool:
        """Whether some event involved could reach an untracked SID (then no proof)."""
        live = [e for e in self.escapes if not z3.is_false(z3.simplify(e))]
        if not live:
            return False
        s = self.solver()
        s.add(z3.Or(live))
        r = s.check()
        if r == z3.unknown:
            self._escape_unknown = s.reason_unknown()
        return r != z3.unsat

    def solver(self) -> z3.Solver:
        s = z3.Solver()
        s.set("timeout", self.opts.timeout_ms)
        return s

    def instance(self, key: EventKey) -> _Instance:
        self.counter += 1
        tag = f"e{self.counter}"
        msg = SymbolicMessage(key.params, tag)
        src = z3.Int(f"{tag}.src_sid")
        dst = z3.Int(f"{tag}.dst_sid") if key.kind != "security" else None
        return _Instance(key, msg, src, dst, self.prover.pair_condition(src, dst, key))

    def selected_keys(self) -> list[tuple[EventKey, list]]:
        pat = self.prop.pattern
        keys = self.universe.matching(
            (pat.kind,), set(pat.src.tasks) if pat.src is not None else None,
            set(pat.dst.tasks) if pat.dst is not None else None,
            pat.endpoint, pat.interface, pat.method if pat.kind != "execute" else None,
            untyped_matters=self.prop.condition is not None)
        return [k for k in keys if k.senders and k.receivers]

    # ------------------------------------------------------------ entry
    def run(self) -> Result:
        kind = self.prop.kind
        if kind in ("never_event", "always_event"):
            return self.event_property()
        if kind in ("never_state", "invariant", "reachable_state"):
            return self.state_property()
        return Result(self.prop.name, kind, UNKNOWN, f"`{kind}` properties are answered by `ksm flows`")

    def result(self, status: str, how: str, cex: Counterexample | None = None) -> Result:
        if status == PROVED and cex is None and self.escaping():
            self.deep = False     # a limit of the model, not of Z3: the search stays at start-up
            status, how = UNKNOWN, ("a rule or expression involved can address a SID of a process not "
                                    "started at boot, whose model contexts are not modelled")
            if self.enc.unknown_reads:
                reads = sorted(self.enc.unknown_reads)
                how = (f"the property or the rules involved read {', '.join(reads[:3])}{', ...' if len(reads) > 3 else ''}, a "
                       "parameter without a known type (a kernel method documented by name only, or an endpoint "
                       "outside the solution), whose values the model cannot follow; pass --sdk DIR for the "
                       "SDK's descriptions")
            why = getattr(self, "_escape_unknown", "")
            if why:
                how = (f"Z3 returned unknown: {why}, deciding whether a rule or expression involved can address "
                       "a SID of a process not started at boot")
        return Result(self.prop.name, self.prop.kind, status, how, counterexample=cex,
                      related=list(dict.fromkeys(self.related)))

    # ------------------------------------------------------------ event properties
    def bad_event(self, state: dict, keys) -> tuple[z3.BoolRef, list[_Instance], list]:
        """Some selected event violates the property in ``state``: (formula, instances, per-key)."""
        never = self.prop.kind == "never_event"
        parts, insts = [], []
        for key in keys:
            inst = self.instance(key)
            out = self.enc.encode(key, inst.message.value, inst.src, inst.dst, state)
            self.abstract |= out.abstract
            self.related += out.spans
            cond, escape = TRUE, out.escape
            if self.prop.condition is not None:
                c, err = self.enc.condition(self.prop.condition, inst.message.value, inst.src, inst.dst, state, key)
                cond = z3.And(c, z3.Not(err))
                escape = anyof([escape, self.enc.last_escape])
            if not never:             # a spurious grant would hide the denial `always` looks for
                escape = anyof([escape, out.overgrant])
            self.escapes.append(z3.And(inst.pairs, inst.message.wellformed(), escape))
            verdict = out.granted if never else z3.Not(out.granted)
            parts.append(z3.And(inst.pairs, inst.message.wellformed(), cond, verdict))
            insts.append(inst)
        return parts, insts, keys

    def event_property(self) -> Result:
        keys = self.selected_keys()
        if not keys:
            return self.result(PROVED, "vacuous: no running process can send such an event")
        reads_state = any(self.enc.touches_state(k) for k in keys) or (
            self.prop.condition is not None
            and expression_objects(self.prop.condition) & set(self.enc.stateful))
        # 1a. right after start-up
        found = self.check_at(self.enc.initial_state(), keys)
        if found is not None:
            return found
        if self._unknown:
            return self.result(UNKNOWN, self._unknown)
        if not reads_state:
            return self.result(PROVED, f"single-step ({_keys(keys)}; no state involved)")
        # 1b. in every state the encoding allows
        state, wf = self.enc.any_state(self.fresh)
        parts, _, _ = self.bad_event(state, keys)
        s = self.solver()
        s.add(wf, anyof(parts))
        r = s.check()
        if r == z3.unsat:
            return self.result(PROVED, f"single-step in every state ({_keys(keys)})")
        if not self.opts.reachability:
            self.deep = False
            return self.result(UNKNOWN, "not decided in one step, and the reachability search is off")
        return self.reachability(lambda st: self.bad_event(st, keys))

    def check_at(self, state: dict, keys) -> Result | None:
        parts, insts, _ = self.bad_event(state, keys)
        for part, inst in zip(parts, insts):
            s = self.solver()
            s.add(part)
            r = s.check()
            if r == z3.sat:
                event = inst.concrete_event(plainest(s, [inst]))
                expect = "granted" if self.prop.kind == "never_event" else "denied"
                cex = Counterexample(self.universe.boot_events(), [TraceStep(event, expect)])
                return self.confirmed(cex, "counterexample right after start-up")
            if r == z3.unknown:
                self._unknown = f"Z3 returned unknown: {s.reason_unknown()}"
        return None

    # ------------------------------------------------------------ state properties
    def state_condition(self, state: dict) -> tuple[z3.BoolRef, z3.BoolRef]:
        c, err = self.enc.condition(self.prop.condition, None, None, None, state)
        self.escapes.append(self.enc.last_escape)
        return c, err

    def state_property(self) -> Result:
        reach = self.prop.kind == "reachable_state"
        negate = self.prop.kind == "invariant"

        def bad(state):
            c, err = self.state_condition(state)
            target = z3.And(z3.Not(c), z3.Not(err)) if negate else z3.And(c, z3.Not(err))
            return [target], [], []

        init = self.enc.initial_state()
        parts, _, _ = bad(init)
        s = self.solver()
        s.add(anyof(parts))
        if s.check() == z3.sat:
            cex = Counterexample(self.universe.boot_events(), [], "holds right after start-up")
            if reach:
                return self.confirmed_reach(cex, "reachable right after start-up")
            return self.confirmed(cex, "violated right after start-up")
        result = self.reachability(bad)
        if reach:
            # reachability of the target: a "counterexample" to `never` is the witness
            if result.status == REFUTED:
                return self.result(PROVED, result.how.replace("counterexample", "witness"), result.counterexample)
            if result.status == PROVED:
                return self.result(REFUTED, "unreachable: " + result.how)
            # (an unreachability proof is a proof too: `result` already ran the
            # untracked-SID guard and would be UNKNOWN if it had failed)
        return result

    def confirmed_reach(self, cex: Counterexample, how: str) -> Result:
        self.replay(cex)
        return self.result(PROVED, how, cex)

    # ------------------------------------------------------------ reachability
    def cone(self, bad_objects: set[str], close: bool = True) -> tuple[list[str], list[tuple[EventKey, list]]]:
        """Relevant stateful objects and the events that can change them.

        Only bindings that write a relevant object are looked at, and only the keys
        their selectors can select are enumerated (execute keys are left out: later
        process starts are not modelled, see the module docstring).  ``close``: add
        the objects those events read, until nothing changes (the exact cone);
        without it the caller havocs what they read (see :meth:`reachability`).
        """
        stateful = set(self.enc.stateful)
        relevant = bad_objects & stateful
        bindings = [b for b in self.universe.solution.bindings if b.event != "execute"]
        read_only = self.enc.read_only_rules
        changed = close
        while changed:
            changed = False
            for b in bindings:
                if _rule_objects(b.body, read_only) & relevant:
                    touched = _objects_in(b.body) & stateful
                    if not touched <= relevant:
                        relevant |= touched
                        changed = True
        writers: dict = {}
        for b in bindings:
            if not _rule_objects(b.body, read_only) & relevant:
                continue
            sel = b.selectors
            for k in self.universe.matching((b.event,), endpoint=sel.endpoint, interface=sel.interface,
                                            method=sel.method,
                                            src_classes={sel.src} if sel.src else None,
                                            dst_classes={sel.dst} if sel.dst else None):
                if k.senders and k.receivers and k.engine_key not in writers:
                    writers[k.engine_key] = k
        return sorted(relevant), list(writers.values())

    def reachability(self, bad: Callable) -> Result:
        read = set()
        if self.prop.condition is not None:
            read |= expression_objects(self.prop.condition)
        if self.prop.pattern is not None:
            for k in self.selected_keys():
                for b in self.enc.bindings_for(k):
                    read |= _objects_in(b.body)
        relevant, writers = self.cone(read)
        if not writers:
            return self.result(PROVED, "no event changes the state it depends on: holds in every reachable state "
                               "(single-step from start-up)")
        if self.opts.use_chc:
            # Localisation first: keep only the objects the property reads and let
            # every other object the writers consult take any value at each step.
            # That over-approximates the transitions, so a proof holds; the smaller
            # state is often what lets Spacer find the invariant at all.
            # Single objects are tried first: an invariant over one object is the
            # common case and Spacer settles such small systems quickly either way.
            core, _ = self.cone(read, close=False)
            init = self.enc.initial_state()
            size = {n: sum(10 if z3.is_array(t) else 1 for t in init[n]) for n in core}
            tries = [[n] for n in sorted(core, key=size.get)] if len(core) > 1 else []
            tries += [core] if len(core) < len(relevant) else []
            for keep in tries:
                _, keep_writers = self.cone(set(keep), close=False)
                havoc = [n for n in relevant if n not in keep]
                if keep_writers and _System(self, keep, keep_writers, havoc).chc(bad) == PROVED:
                    return self.result(PROVED, f"inductive invariant (Z3 Spacer/CHC) over {', '.join(keep)}; "
                                       f"{', '.join(havoc)} taken as arbitrary")
        system = _System(self, relevant, writers)
        quick = min(2, self.opts.depth)
        # k-induction at depth k proves the property only together with its base case:
        # no violation within k-1 events, which BMC must have *decided* (unsat).
        for depth in range(0, quick + 1):          # short traces first: cheap and common
            trace = system.bmc(bad, depth)
            if trace is not None:
                return self.confirmed(trace, f"counterexample in {len(trace.steps)} step(s) after start-up")
        if self.opts.use_chc:
            verdict = system.chc(bad)
            if verdict == PROVED:
                return self.result(PROVED, f"inductive invariant (Z3 Spacer/CHC) over {', '.join(relevant)}")
        for depth in range(1, self.opts.depth + 1):
            if depth > quick:
                trace = system.bmc(bad, depth)
                if trace is not None:
                    return self.confirmed(trace, f"counterexample in {len(trace.steps)} step(s) after start-up")
            if system.safe_depth >= depth - 1 and system.induction(bad, depth):
                return self.result(PROVED, f"k-induction, depth {depth}")
        if system.unknown:
            d, why = min(system.unknown.items())
            if system.safe_depth < 0:
                return self.result(UNKNOWN, f"Z3 returned unknown: {why} (on traces of {d} event(s) from start-up)")
            return self.result(UNKNOWN, f"bounded: no counterexample up to depth {system.safe_depth}; "
                               f"Z3 returned unknown on traces of {d} event(s): {why}")
        return self.result(UNKNOWN, f"bounded: no counterexample up to depth {self.opts.depth}; "
                           "not proved for every depth")

    # ------------------------------------------------------------ replay
    def confirmed(self, cex: Counterexample, how: str) -> Result:
        try:
            self.replay(cex)
        except ReplayMismatch as exc:
            if self.abstract:
                self.deep = False
                return self.result(UNKNOWN, f"candidate counterexample relies on an over-approximated grant and "
                                   f"the decision function rejects it ({exc})")
            raise
        return self.result(REFUTED, how, cex)

    def replay(self, cex: Counterexample) -> None:
        module = self.prover.booted()
        last_before = dict(module.states)
        for step in cex.steps:
            before = dict(module.states)
            d = module.decide(step.event)
            step.explanation = d.explain()
            got = "granted" if d.granted else "denied"
            if got != step.expect:
                raise ReplayMismatch(f"{step.event.describe()}: Z3 says {step.expect}, decision function says "
                                     f"{got}\n{d.explain()}")
            last_before = before
        if self.prop.kind in ("never_state", "invariant", "reachable_state"):
            value = self.concrete_condition(module, None, module.states)
            want = self.prop.kind != "invariant"
            if value is not want:
                raise ReplayMismatch(f"the state condition is {value} after the trace, expected {want}")
        elif cex.steps and self.prop.condition is not None:
            final = cex.steps[-1].event
            if self.concrete_condition(module, final, last_before) is not True:
                raise ReplayMismatch("the `where` condition does not hold for the final event")

    def concrete_condition(self, module: SecurityModule, event: Event | None, states) -> Any:
        if self._condition_fn is None or self._condition_fn[0] is not module:
            self._condition_fn = (module, _ConditionCompiler(module).compile(self.prop.condition))
        fn = self._condition_fn[1]
        src = dst = None
        message = {}
        if event is not None:
            src = module._by_task.get(event.src, event.src) if isinstance(event.src, str) else event.src
            dst = module._by_task.get(event.dst, event.dst) if isinstance(event.dst, str) else event.dst
            message = dict(event.message)
            try:
                _, _, _, validate = module._route(event)
                if validate is not None:
                    message = validate(event.message)
            except Exception:
                pass
        try:
            return fn(EvalContext(message, src, dst, states, {}))
        except Exception as exc:
            return f"runs incorrectly: {exc}"


class _ConditionCompiler(ExprCompiler):
    """The engine's expression compiler plus ``sid(TASK)`` from property files."""

    def __init__(self, module: SecurityModule):
        super().__init__(module.solution, module._impls)
        self.module = module

    def _SidOf(self, e):
        sid = self.module._by_task.get(e.task)
        return lambda ctx: sid


# ====================================================================== concrete search
_SEARCHABLE = ("never_event", "always_event", "never_state", "invariant", "reachable_state")


class _Search:
    """A cheap concrete search for a counterexample, run before a property is left UNKNOWN.

    Why: Z3 can time out on bitwise and nonlinear conditions (``&`` goes through
    65-bit vectors, ``*`` of two fields is nonlinear) where a plain value refutes the
    property at once.  The decision function decides an event in microseconds, so a
    few thousand candidates cost milliseconds.

    Candidates (:class:`~ksm.verify.message.Candidates`): boundary values of each IDL
    field type (0, 1, -1, the ends and their neighbours, powers of two +-1) and the
    literals of the rules of the selected keys and of the property's condition, +-1;
    then seeded random messages.  Event properties are tried in the state right after
    start-up, for every key the pattern selects and up to ``_PAIRS`` sender/receiver
    pairs of each; state properties have their condition evaluated after start-up.
    When the reachable states are what Z3 could not settle (``deep``), the search also
    follows ``search_walks`` seeded random walks of up to ``depth`` granted events
    (of the events that change the state the property depends on) and tries again in
    every state they reach.  Bounds: ``search_messages`` candidates per key and pair
    after start-up (an eighth of that in each walked state) and ``search_seconds`` in
    all.  A counterexample found is an ordinary trace, replayed like every other.
    """

    def __init__(self, proof: _Proof, deep: bool):
        self.proof, self.deep = proof, deep
        self.prover, self.prop, self.opts = proof.prover, proof.prop, proof.opts
        self.rng = random.Random(f"{self.opts.seed}:{self.prop.name}")
        self.deadline = time.perf_counter() + self.opts.search_seconds
        self.tried = 0
        self.states = 0
        self.walked = 0
        self._pools: dict = {}
        self.transactional = self.prover.universe.options.transactional

    def out_of_time(self) -> bool:
        return time.perf_counter() > self.deadline

    def summary(self, why: str = "") -> str:
        what = f"no counterexample among {self.tried} message(s) in {self.states} state(s)"
        if self.walked:
            what += f", {self.walked} of them reached by random walks"
        return what + (f" ({why})" if why else "")

    # ------------------------------------------------------------ candidates
    def pool(self, key: EventKey) -> tuple[list[dict], Candidates]:
        """The key's boundary messages (capped) and its random generator."""
        found = self._pools.get(key.engine_key)
        if found is None:
            nodes: list = []
            for b in self.proof.enc.bindings_for(key):
                nodes += list(b.body)
            if self.prop.condition is not None:
                nodes.append(self.prop.condition)
            ints, texts = literals_of(nodes)
            gen = Candidates(key.search_params, ints, texts, self.rng)
            boundary = []
            for m in gen.boundary():
                boundary.append(m)
                if len(boundary) >= self.opts.search_messages // 2:
                    break
            found = self._pools[key.engine_key] = (boundary, gen)
        return found

    def messages(self, key: EventKey, n: int):
        """Up to ``n`` candidates: boundary ones first, then random ones."""
        boundary, gen = self.pool(key)
        yield from boundary[:n]
        if not key.search_params:
            return                              # one message only: {}
        for _ in range(n - min(n, len(boundary))):
            yield gen.random()

    def pairs(self, key: EventKey) -> list:
        """At most ``_PAIRS`` (sender, receiver) pairs: the first ones, then random ones.

        Why not ``key.pairs``: a key between two classes of a thousand instances each
        stands for a million pairs."""
        senders, receivers = key.senders, key.receivers
        out = [(a, b) for a in senders[:_PAIRS // 2] for b in receivers[:1]][:_PAIRS // 2]
        if len(senders) * len(receivers) <= _PAIRS:
            return [(a, b) for a in senders for b in receivers]
        while len(out) < _PAIRS:
            out.append(self.random_pair(key))
        return list(dict.fromkeys(out))

    def random_pair(self, key: EventKey) -> tuple:
        return self.rng.choice(key.senders), self.rng.choice(key.receivers)

    # ------------------------------------------------------------ entry
    def run(self) -> tuple[Result | None, str]:
        """(the REFUTED result, or PROVED with a witness for ``reachable state``; or None, what was tried)."""
        module = self.prover.booted()
        start = module.checkpoint()
        if self.prop.kind in ("never_event", "always_event"):
            keys = self.proof.selected_keys()
            if not keys:
                return None, "no event key to try"
            found = self.in_state(module, start, [], keys, self.opts.search_messages)
            if found is None and self.deep:
                found = self.walks(module, start, keys)
        else:
            found = self.state_holds(module, [])
            if found is None and self.deep:
                found = self.walks(module, start, None)
        if found is None:
            return None, self.summary("time bound reached" if self.out_of_time() else "")
        steps, how = found
        cex = Counterexample(self.proof.universe.boot_events(), steps,
                             "" if steps else "holds right after start-up")
        event = self.prop.kind in ("never_event", "always_event")   # the last step is the violation
        where = (f"in {len(steps)} step(s) after start-up" if len(steps) > (1 if event else 0)
                 else "right after start-up")
        if self.prop.kind == "reachable_state":
            return self.proof.confirmed_reach(cex, f"witness {where}, found by a concrete search ({how})"), ""
        return self.proof.confirmed(cex, f"counterexample {where}, found by a concrete search ({how})"), ""

    # ------------------------------------------------------------ event properties
    def in_state(self, module: SecurityModule, here: tuple, steps: list, keys, n: int):
        """A violating event in the module's current state (checkpoint ``here``), or None."""
        self.states += 1
        never = self.prop.kind == "never_event"
        for key in keys:
            for src, dst in self.pairs(key):
                for message in self.messages(key, n):
                    if self.out_of_time():
                        return None
                    self.tried += 1
                    event = key.event(src, dst, message)
                    if self.prop.condition is not None and \
                            self.proof.concrete_condition(module, event, module.states) is not True:
                        continue
                    d = module.decide(event)
                    if d.granted or not self.transactional:
                        module.restore(here)
                    if d.reason.startswith(MALFORMED_MESSAGE):
                        continue             # not well-formed: no property speaks of it
                    if d.granted == never:
                        last = TraceStep(event, "granted" if never else "denied")
                        return list(steps) + [last], f"{self.tried} message(s) tried"
        return None

    # ------------------------------------------------------------ state properties
    def state_holds(self, module: SecurityModule, steps: list):
        """The state condition violated (or, for ``reachable``, met) in the current state."""
        self.states += 1
        want = self.prop.kind != "invariant"
        if self.proof.concrete_condition(module, None, module.states) is want:
            return list(steps), f"{self.states} state(s) tried"
        return None

    # ------------------------------------------------------------ walks
    def walks(self, module: SecurityModule, start: tuple, keys):
        """Random walks of granted events from start-up, trying every state they reach."""
        read = set(expression_objects(self.prop.condition)) if self.prop.condition is not None else set()
        for k in keys or ():
            for b in self.proof.enc.bindings_for(k):
                read |= _objects_in(b.body)
        _, writers = self.proof.cone(read)
        if not writers:
            return None
        per_state = max(1, self.opts.search_messages // 8)
        for _ in range(self.opts.search_walks):
            module.restore(start)
            steps: list[TraceStep] = []
            for _ in range(self.opts.depth):
                if self.out_of_time():
                    return None
                step = self.step(module, writers)
                if step is None:
                    break
                steps.append(step)
                if step.expect != "granted":
                    continue
                self.walked += 1
                if keys is None:
                    found = self.state_holds(module, steps)
                else:
                    found = self.in_state(module, module.checkpoint(), steps, keys, per_state)
                if found is not None:
                    return found
        return None

    def step(self, module: SecurityModule, writers: list) -> TraceStep | None:
        """One random event of a writer key that the decision function grants (a few tries)."""
        for _ in range(_WALK_TRIES):
            key = writers[self.rng.randrange(len(writers))]
            src, dst = self.random_pair(key)
            boundary, gen = self.pool(key)
            message = self.rng.choice(boundary) if boundary and self.rng.random() < 0.5 else gen.random()
            event = key.event(src, dst, message)
            self.tried += 1
            d = module.decide(event)
            if d.granted:
                return TraceStep(event, "granted")
            if not self.transactional and not d.reason.startswith(MALFORMED_MESSAGE):
                return TraceStep(event, "denied")   # a denial may change the state then: keep it in the trace
        return None


_PAIRS = 4              # sender/receiver pairs of one key tried by the concrete search
_WALK_TRIES = 16        # events tried for one granted step of a random walk


def _text(exc: BaseException) -> str:
    """An exception's message on one line, bounded."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ====================================================================== transition system
class _System:
    """The relevant state and the events that change it, for CHC, BMC and k-induction."""

    def __init__(self, proof: _Proof, relevant: list[str], writers: list, havoc: list[str] = ()):
        self.proof, self.relevant, self.writers = proof, relevant, writers
        self.havoc = list(havoc)      # objects read by the writers but not tracked: any value each step
        self.enc = proof.enc
        self.safe_depth = -1          # BMC decided: no violation within this many events
        self.unknown: dict[int, str] = {}   # depth -> why Z3 could not decide BMC there

    def restrict(self, full: dict, part: dict) -> dict:
        out = dict(full)
        out.update(part)
        return out

    def flat(self, state: dict) -> list:
        return [t for n in self.relevant for t in state[n]]

    def step(self, state: dict, tag: str):
        """(next state, per-writer instance/granted, selector) for one transition."""
        sel = z3.Int(f"{tag}.sel")
        constraints = [z3.And(sel >= -1, sel < len(self.writers))]
        if self.havoc:
            state = dict(state)
            fresh = Fresh(f"{tag}.any.")
            for n in self.havoc:
                state[n], wf = self.enc.impls[n].fresh(fresh)
                constraints.append(wf)
        nxt = dict(state)
        choices = []
        for j, key in enumerate(self.writers):
            inst = self.proof.instance(key)
            out = self.enc.encode(key, inst.message.value, inst.src, inst.dst, state)
            self.proof.abstract |= out.abstract
            fire = z3.And(sel == j, out.granted)
            constraints.append(z3.Implies(sel == j, z3.And(inst.pairs, inst.message.wellformed())))
            self.proof.escapes.append(z3.And(inst.pairs, inst.message.wellformed(), out.escape))
            for n in self.relevant:
                nxt[n] = tuple(z3.If(fire, a, b) for a, b in zip(out.post[n], nxt[n]))
            choices.append((inst, out.granted))
        return nxt, choices, sel, allof(constraints)

    def bad_formula(self, bad, state):
        parts, insts, _ = bad(state)
        return anyof(parts), parts, insts

    # -- bounded model checking from start-up
    def bmc(self, bad, depth: int) -> Counterexample | None:
        state = self.enc.initial_state()
        s = self.proof.solver()
        steps = []
        for i in range(depth):
            state, choices, sel, cons = self.step(state, f"b{depth}.{i}")
            s.add(cons)
            steps.append((choices, sel))
        formula, parts, insts = self.bad_formula(bad, state)
        s.add(formula)
        r = s.check()
        if r == z3.unsat:
            self.safe_depth = max(self.safe_depth, depth)
            return None
        if r != z3.sat:
            self.unknown[depth] = s.reason_unknown()
            return None
        pinner = Pinner(s)
        for choices, sel in steps:            # drop every step the violation does not need,
            for j in range(-1, len(choices)):  # and make the others the first event that serves
                if pinner.pin(sel == j):
                    break
        m = plainest(s, [inst for choices, _ in steps for inst, _ in choices] + insts, pinner)
        trace: list[TraceStep] = []
        for choices, sel in steps:
            j = m.eval(sel, model_completion=True).as_long()
            if 0 <= j < len(choices) and z3.is_true(m.eval(choices[j][1], model_completion=True)):
                trace.append(TraceStep(choices[j][0].concrete_event(m), "granted"))
        expect = "granted" if self.proof.prop.kind == "never_event" else "denied"
        for part, inst in zip(parts, insts):
            if z3.is_true(m.eval(part, model_completion=True)):
                trace.append(TraceStep(inst.concrete_event(m), expect))
                break
        return Counterexample(self.proof.universe.boot_events(), trace)

    # -- k-induction step case
    def induction(self, bad, k: int) -> bool:
        state, wf = self.enc.any_state(Fresh(f"k{k}."))
        state = self.restrict(self.enc.initial_state(), {n: state[n] for n in self.relevant})
        if not self.flat(state):
            return False
        s = self.proof.solver()
        s.add(wf)
        path = [self.flat(state)]
        for i in range(k):
            f, _, _ = self.bad_formula(bad, state)
            s.add(z3.Not(f))
            state, _, _, cons = self.step(state, f"k{k}.{i}")
            s.add(cons)
            path.append(self.flat(state))
        # simple path: a violation reachable at all is reachable without repeating a
        # state, so only loop-free paths need refuting (this lets induction converge
        # although denied events leave the state unchanged)
        for i in range(len(path)):
            for j in range(i + 1, len(path)):
                s.add(z3.Or([a != b for a, b in zip(path[i], path[j])]))
        f, _, _ = self.bad_formula(bad, state)
        s.add(f)
        return s.check() == z3.unsat

    # -- Horn clauses for Spacer
    def chc(self, bad) -> str:
        init = self.enc.initial_state()
        cur, _ = self.enc.any_state(Fresh("h."))
        cur = self.restrict(init, {n: cur[n] for n in self.relevant})
        terms = self.flat(cur)
        if not terms:
            return UNKNOWN
        seen = dict(cur)              # what the violation reads: havocked objects take any value
        anything = []
        for n in self.havoc:
            seen[n], wf = self.enc.impls[n].fresh(Fresh("h.bad."))
            anything.append(wf)
        sorts = [t.sort() for t in terms]
        inv = z3.Function(f"Inv_{id(self)}", *sorts, z3.BoolSort())
        fp = z3.Fixedpoint()
        fp.set(engine="spacer")
        fp.set("timeout", self.proof.opts.timeout_ms)
        fp.register_relation(inv)
        nxt, _, _, cons = self.step(cur, "h.t")
        bad_f, _, _ = self.bad_formula(bad, seen)
        bad_f = z3.And(bad_f, *anything)
        free = set()
        for f in [cons, bad_f] + self.flat(nxt) + terms:
            free |= _constants(f)
        for v in free:
            fp.declare_var(v)
        try:
            fp.rule(inv(*self.flat(init)))
            fp.rule(inv(*self.flat(nxt)), [inv(*terms), cons])
            r = fp.query(z3.And(inv(*terms), bad_f))
        except z3.Z3Exception:
            return UNKNOWN
        if r == z3.unsat:
            return PROVED
        if r == z3.sat:
            return REFUTED
        return UNKNOWN


_PAIR_SRC, _PAIR_DST = z3.Int("pair.src_sid"), z3.Int("pair.dst_sid")


def sid_in(var: z3.ArithRef, sids) -> z3.BoolRef:
    """``var`` is one of ``sids``, with runs of evenly spaced SIDs as one range test.

    Why: the instances of one class get evenly spaced SIDs when init.yaml lists the
    classes round-robin (or all together), and a thousand equalities cost Z3's
    Python API a thousand calls per question, where a run costs three.
    """
    sids = sorted(set(sids))
    parts, i = [], 0
    while i < len(sids):
        j = i + 1
        if j < len(sids):
            step = sids[j] - sids[i]
            while j + 1 < len(sids) and sids[j + 1] - sids[j] == step:
                j += 1
            if j - i >= 2:                       # three or more: a run
                lo, hi = sids[i], sids[j]
                bounds = [var >= lo, var <= hi]
                parts.append(z3.And(bounds if step == 1 else bounds + [(var - lo) % step == 0]))
                i = j + 1
                continue
        parts.append(var == sids[i])
        i += 1
    return anyof(parts)


def _keys(keys) -> str:
    return f"{len(keys)} event key{'' if len(keys) == 1 else 's'}"


def _constants(e) -> set:
    """Uninterpreted constants (the variables) of a Z3 term."""
    out, seen, stack = set(), set(), [e]
    while stack:
        x = stack.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_const(x) and x.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.add(x)
        else:
            stack.extend(x.children())
    return out

