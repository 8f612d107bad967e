"""``granted(event, state)`` in Z3: the decision function's program, encoded symbolically.

This mirrors :mod:`ksm.engine` statement for statement, so the two can be checked
against each other (``ksm crosscheck``): the bindings and nested ``match`` sections
that select an event key contribute their calls in textual order; a ``choice`` runs
the first arm whose case matches (``_`` otherwise); the event is granted when at
least one rule ran and every rule granted, none running incorrectly.  Rules see the
state left by the rules before them in the same event.

Instead of branching, every statement carries a *path condition* (the Z3 formula
under which the concrete engine would reach it): a rule's verdict counts only under
its path condition, and its state change is applied as ``If(path and granted, new,
old)``.  Arms of one ``choice`` have exclusive path conditions, so walking them one
after another on the same running state is exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import z3

from policy_lang import model_library as ml
from policy_lang.solution import CallDef, ChoiceDef, MatchDef
from policy_lang.syntax import ast

from ..engine import BindingIndex, _selects
from ..security_models import arith, boolean, pred, struct
from ..security_models.symbolic import (
    FALSE, TRUE, Fresh, NotEncoded, SList, SNum, SRecord, SUnit, Sym, allof, anyof, lift, same,
)
from .models import symbolic_model
from .universe import EventKey, Universe

_BINARY = {**pred.SYMBOLIC_OPERATORS, **boolean.SYMBOLIC_BINARY, **arith.SYMBOLIC_BINARY}
_UNARY = {**boolean.SYMBOLIC_UNARY, **arith.SYMBOLIC_UNARY}
_SHORT_CIRCUIT_STOP = {"&&": False, "||": True, "==>": False}

State = dict   # object name -> tuple of Z3 terms (empty for stateless objects)


@dataclass
class Outcome:
    """What one event does: granted under which condition, and the state it leaves."""

    granted: z3.BoolRef
    post: State
    spans: list = field(default_factory=list)      # spans of the calls that can run
    escape: z3.BoolRef = FALSE                      # a stateful call reaches a SID not started at boot
    overgrant: z3.BoolRef = FALSE                   # the grant may be spurious (an over-approximation)

    @property
    def abstract(self) -> bool:
        """Whether an over-approximated grant took part (a rejected replay is then no bug)."""
        return not z3.is_false(self.overgrant)


@dataclass
class Env:
    """What expressions see: the message, the SIDs, the running state."""

    message: Sym
    src_sid: z3.ArithRef | None
    dst_sid: z3.ArithRef | None
    state: State
    sids: dict                                  # task -> SID, for SidOf


#: Rules that give a SID a context, per model (default: ``init``).
_CREATING = {"Mic": ("create", "execute")}


class Encoder:
    """Encodes events of one solution; one per proof (it owns the fresh names)."""

    def __init__(self, universe: Universe, fresh: Fresh):
        self.universe = universe
        self.solution = universe.solution
        self.fresh = fresh
        self.impls = {name: symbolic_model(obj, universe.sids, fresh, self._tracked(name))
                      for name, obj in self.solution.objects.items()}
        self.task_sids = {p.task: p.sid for p in universe.procs if p.task}
        self.unknown_reads: set[str] = set()   # message paths read whose values Z3 cannot know
        # Shared by every encoder of the universe (one per proof): engine key -> the
        # bindings that select it.
        self._selected: dict[tuple, list] = universe.memo.setdefault("selected-bindings", {})
        self.deny_unmatched = universe.options.choice_without_match == "deny"

    # ------------------------------------------------------------------ state
    def _tracked(self, name: str) -> tuple[int, ...]:
        """SIDs whose context of object ``name`` can exist after start-up.

        A context is created only by ``init`` (Mic: ``create``, ``execute``); if no
        binding but ``execute`` ones calls it, the SIDs with a context right after start-up (plus the next SID, for
        execute events) are all there can be, and every other SID provably has none.
        Keeping the encoded state that small is what makes large solutions tractable.
        """
        u = self.universe
        found = u.memo.get(("tracked", name))
        if found is None:
            found = u.memo[("tracked", name)] = self._tracked_sids(name)
        return found

    def _tracked_sids(self, name: str) -> tuple[int, ...]:
        u = self.universe
        making = _CREATING.get(self.solution.objects[name].model, ("init",))
        creates = any(st.object == name and st.method in making
                      for b in self.solution.bindings if b.event != "execute"
                      for st in _calls(b.body) if isinstance(st, CallDef))
        initial = u.initial_states.get(name)
        if creates or not hasattr(initial, "entries_by_sid"):
            return u.sids
        have = set(initial.entries_by_sid)
        return tuple(s for s in u.sids if s in have) + (u.fresh_sid,)

    @property
    def read_only_rules(self) -> dict[str, tuple[str, ...]]:
        """Per object, the rules that never change its state (see each model module)."""
        return {n: getattr(i, "read_only_rules", ()) for n, i in self.impls.items()}

    @property
    def stateful(self) -> list[str]:
        return [n for n, i in self.impls.items() if i.stateful]

    def initial_state(self) -> State:
        return {n: i.lift(self.universe.initial_states.get(n)) for n, i in self.impls.items()}

    def any_state(self, fresh: Fresh) -> tuple[State, z3.BoolRef]:
        """Unconstrained state (every value the encoding allows) and its well-formedness."""
        state, wf = {}, []
        for n, i in self.impls.items():
            state[n], c = i.fresh(fresh)
            wf.append(c)
        return state, allof(wf)

    def bindings_for(self, key: EventKey) -> list:
        """The bindings that select ``key``, in text order (the engine's index; memoised per universe)."""
        ek = key.engine_key
        found = self._selected.get(ek)
        if found is None:
            index = self.universe.memo.get("binding-index")
            if index is None:
                index = self.universe.memo["binding-index"] = BindingIndex(self.solution.bindings)
            found = self._selected[ek] = index.selecting(ek)
        return found

    def touches_state(self, key: EventKey) -> bool:
        """Whether the key's program reads or writes an exactly encoded stateful object."""
        names = set(self.stateful)
        return any(_objects_in(b.body) & names for b in self.bindings_for(key))

    # ------------------------------------------------------------------ events
    def encode(self, key: EventKey, message: Sym, src_sid, dst_sid, state: State) -> Outcome:
        walk = _Walk(self, Env(message, src_sid, dst_sid, dict(state), self.task_sids), _unknown_fields(key))
        for b in self.bindings_for(key):
            walk.spans.append(b.span)
            walk.body(b.body, TRUE, key)
        granted = z3.And(anyof(walk.ran), z3.Not(anyof(walk.denied)))
        return Outcome(granted, walk.env.state, walk.spans, anyof(walk.escapes), anyof(walk.overgrants))

    def condition(self, e: Any, message: Sym | None, src_sid, dst_sid, state: State,
                  key: EventKey | None = None) -> tuple[z3.BoolRef, z3.BoolRef]:
        """A property's condition: (value, runs incorrectly); it must be a Boolean."""
        walk = _Walk(self, Env(message if message is not None else SRecord({}), src_sid, dst_sid, dict(state),
                               self.task_sids), _unknown_fields(key) if key is not None else frozenset())
        v, err = walk.expr(e)
        if v.kind != "bool":
            return FALSE, TRUE
        self.last_escape = anyof(walk.escapes)
        return v.z, err


#: Stands for "every field": a message to an endpoint whose methods are unknown (opaque).
_ANY_FIELD = "*"


def _unknown_fields(key: EventKey) -> frozenset[str]:
    """Message fields of ``key`` whose values Z3 cannot know: parameters without a type.

    A kernel method documented by parameter names only (no IDL types), or any field of
    a message to an opaque endpoint: the decision function reads whatever value the
    message carries, but the symbolic message has no variable for it, so a rule that
    reads one is not encoded faithfully and a proof over it must not be claimed.
    """
    mdef = key.method_def
    if mdef is None:
        return frozenset((_ANY_FIELD,)) if key.kind in ("request", "response", "error") else frozenset()
    direction = {"request": "in", "response": "out"}.get(key.kind)
    return frozenset(mdef.untyped_names(direction)) if direction and mdef.untyped else frozenset()


def _has_field(message: Sym, name: str) -> bool:
    fields = getattr(message, "fields", None)
    try:
        return fields is not None and name in fields
    except TypeError:
        return False


class _Walk:
    def __init__(self, enc: Encoder, env: Env, unknown: frozenset[str] = frozenset()):
        self.enc, self.env = enc, env
        self.unknown = unknown
        self.pc: z3.BoolRef = TRUE                  # path condition of the expression being encoded
        self.ran: list = []
        self.denied: list = []
        self.spans: list = []
        self.escapes: list = []
        self.overgrants: list = []

    def _escapes(self, impl, pc: z3.BoolRef) -> None:
        """Collect the untracked-SID conditions an encoding noted, under the path condition
        (and its possible spurious grants, see ``MicSymbolic._context``)."""
        found = getattr(impl, "escapes", None)
        if found:
            self.escapes.append(z3.And(pc, anyof(found)))
            found.clear()
        over = getattr(impl, "overgrants", None)
        if over:
            self.overgrants.append(z3.And(pc, anyof(over)))
            over.clear()

    # ------------------------------------------------------------ statements
    def body(self, stmts, pc: z3.BoolRef, key: EventKey) -> None:
        for st in stmts:
            if isinstance(st, MatchDef):
                if st.satisfiable and _selects(st.selectors, key.engine_key):
                    self.body(st.body, pc, key)
            elif isinstance(st, ChoiceDef):
                self.choice(st, pc, key)
            elif isinstance(st, CallDef):
                self.call(st, pc)

    def call(self, c: CallDef, pc: z3.BoolRef) -> None:
        self.spans.append(c.span)
        if c.kind != "rule":
            self.pc = pc
            _, err = self.expr(c.node)
            self.denied.append(z3.And(pc, err))
            return
        self.pc = pc
        impl = self.enc.impls[c.object]
        arg, e1 = self.expr(c.arg)
        old = self.env.state[c.object]
        granted, new, e2 = impl.rule(old, c.method, arg)
        self._escapes(impl, pc)
        err = anyof([e1, e2])
        self.ran.append(pc)
        self.denied.append(z3.And(pc, z3.Or(err, z3.Not(granted))))
        if impl.stateful and new is not old:
            ok = z3.And(pc, z3.Not(err), granted)
            self.env.state[c.object] = tuple(z3.If(ok, n, o) for n, o in zip(new, old))

    def choice(self, ch: ChoiceDef, pc: z3.BoolRef, key: EventKey) -> None:
        cases = [a.case.value if a.case is not None else None for a in ch.arms]
        self.pc = pc
        conds, err = self.selector(ch.expr, cases)
        self.denied.append(z3.And(pc, err))
        live = z3.And(pc, z3.Not(err))
        earlier: list = []
        for arm, cond in zip(ch.arms, conds):
            if arm.case is None:
                continue
            here = z3.And(live, cond, z3.Not(anyof(earlier)))
            earlier.append(cond)
            self.body(arm.body, here, key)
        none = z3.And(live, z3.Not(anyof(earlier)))
        default = next((a for a in ch.arms if a.case is None), None)
        if default is not None:
            self.body(default.body, none, key)
        elif self.enc.deny_unmatched:
            self.ran.append(none)
            self.denied.append(none)

    def selector(self, e, cases: list) -> tuple[list, z3.BoolRef]:
        if isinstance(e, ast.Call):
            target = self.target(e)
            if target is not None:
                name, impl = target
                chooser = getattr(impl, "choose", None)
                if chooser is not None:
                    arg, e1 = self.expr(e.arg)
                    chosen = chooser(self.env.state[name], e.method.text, arg, cases)
                    self._escapes(impl, TRUE)
                    if chosen is not None:
                        conds, e2 = chosen
                        return conds, anyof([e1, e2])
        value, err = self.expr(e)
        return [FALSE if c is None else same(value, lift(c)) for c in cases], err

    # ------------------------------------------------------------ expressions
    def target(self, c: ast.Call):
        name = c.object.text if c.object is not None else ml.UNPREFIXED.get(c.method.text)
        impl = self.enc.impls.get(name) if name else None
        return (name, impl) if impl is not None else None

    def expr(self, e) -> tuple[Sym, z3.BoolRef]:
        kind = type(e).__name__
        fn = getattr(self, "_" + kind, None)
        if fn is None:
            raise NotEncoded(f"expression {kind}")
        return fn(e)

    def _Lit(self, e):
        return lift(e.value), FALSE

    def _ListExpr(self, e):
        items, errs = [], []
        for i in e.items:
            v, err = self.expr(i)
            items.append(v)
            errs.append(err)
        return SList(tuple(items), z3.IntVal(len(items))), anyof(errs)

    def _RecordExpr(self, e):
        fields, errs = {}, []
        for f in e.fields:
            k = f.key.text if isinstance(f.key, ast.Name) else f.key.value
            fields[k], err = self.expr(f.value)
            errs.append(err)
        return SRecord(fields), anyof(errs)

    def _Ref(self, e):
        head = e.path[0]
        if len(e.path) == 1 and head in ("src_sid", "dst_sid"):
            sid = self.env.src_sid if head == "src_sid" else self.env.dst_sid
            return (SNum(sid), FALSE) if sid is not None else (SUnit(), TRUE)
        if head != "message":
            return SUnit(), TRUE
        if len(e.path) > 1 and self.unknown and (e.path[1] in self.unknown or (
                _ANY_FIELD in self.unknown and not _has_field(self.env.message, e.path[1]))):
            # A value Z3 has no variable for: whatever is encoded here may be wrong.
            self.escapes.append(self.pc)
            self.enc.unknown_reads.add(".".join(e.path))
        v, errs = self.env.message, []
        for seg in e.path[1:]:
            v, err = struct.symbolic_field(v, seg)
            errs.append(err)
        return v, anyof(errs)

    def _FieldAccess(self, e):
        base, e1 = self.expr(e.base)
        v, e2 = struct.symbolic_field(base, e.name)
        return v, anyof([e1, e2])

    def _IndexExpr(self, e):
        base, e1 = self.expr(e.base)
        i, e2 = self.expr(e.index)
        v, e3 = struct.symbolic_index(base, i)
        return v, anyof([e1, e2, e3])

    def _BinOp(self, e):
        op = _BINARY.get(e.op)
        left, e1 = self.expr(e.left)
        right, e2 = self.expr(e.right)
        if op is None:
            return SUnit(), TRUE
        v, e3 = op(left, right)
        if boolean.SHORT_CIRCUIT and e.op in _SHORT_CIRCUIT_STOP and left.kind == "bool":
            stop = z3.BoolVal(_SHORT_CIRCUIT_STOP[e.op])
            decided = left.z == stop
            result = z3.BoolVal(e.op != "&&")
            return type(v)(z3.If(decided, result, v.z)), anyof([e1, z3.And(z3.Not(decided), anyof([e2, e3]))])
        return v, anyof([e1, e2, e3])

    def _UnOp(self, e):
        op = _UNARY.get(e.op)
        v, e1 = self.expr(e.operand)
        if op is None:
            return SUnit(), TRUE
        r, e2 = op(v)
        return r, anyof([e1, e2])

    def _Call(self, e):
        target = self.target(e)
        arg, e1 = self.expr(e.arg)
        if target is None:
            return SUnit(), TRUE
        name, impl = target
        v, e2 = impl.expression(self.env.state[name], e.method.text, arg)
        self._escapes(impl, TRUE)      # expressions have no path condition here: over-approximate
        return v, anyof([e1, e2])

    def _SidOf(self, e):
        sid = self.env.sids.get(e.task)
        return (SNum(z3.IntVal(sid)), FALSE) if sid is not None else (SUnit(), TRUE)


def _calls(stmts):
    for st in stmts:
        if isinstance(st, CallDef):
            yield st
        elif isinstance(st, MatchDef):
            yield from _calls(st.body)
        elif isinstance(st, ChoiceDef):
            yield st
            for arm in st.arms:
                yield from _calls(arm.body)


def _objects_in(stmts) -> set[str]:
    """Objects named by any call (rule or expression) in the statements."""
    out: set[str] = set()
    for st in _calls(stmts):
        if isinstance(st, CallDef):
            out.add(st.object)
            out |= _expr_objects(st.arg)
        else:
            out |= _expr_objects(st.expr)
    return out


def _rule_objects(stmts, read_only: dict | None = None) -> set[str]:
    """Objects whose rules the statements call; ``read_only`` (object -> rule names
    that never change state, e.g. Flow ``allow``, Mic ``call``) leaves those out, so
    only the objects the statements may write remain."""
    read_only = read_only or {}
    return {st.object for st in _calls(stmts) if isinstance(st, CallDef) and st.kind == "rule"
            and st.method not in read_only.get(st.object, ())}


def _expr_objects(e) -> set[str]:
    out: set[str] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Call):
            name = x.object.text if x.object is not None else ml.UNPREFIXED.get(x.method.text)
            if name:
                out.add(name)
            stack.append(x.arg)
        elif isinstance(x, (ast.BinOp,)):
            stack += [x.left, x.right]
        elif isinstance(x, ast.UnOp):
            stack.append(x.operand)
        elif isinstance(x, ast.ListExpr):
            stack += list(x.items)
        elif isinstance(x, ast.RecordExpr):
            stack += [f.value for f in x.fields]
        elif isinstance(x, ast.FieldAccess):
            stack.append(x.base)
        elif isinstance(x, ast.IndexExpr):
            stack += [x.base, x.index]
    return out


def expression_objects(e) -> set[str]:
    """Policy objects an expression (e.g. a property's condition) reads."""
    return _expr_objects(e)



