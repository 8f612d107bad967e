"""Differential testing: the decision function against the Z3 model, event by event.

Both compute the same thing from the same resolved solution by different means
(closures over concrete values; formulas over symbolic ones), so any disagreement
is a bug in one of them.  Events come from three sources:

* **boundary** messages: every integer field at its IDL bounds, at 0, and at each
  integer literal of the policy and its neighbours; empty and full strings and
  sequences;
* **Z3-guided** messages: for each event key, a message the model says is granted
  and one it says is denied (so both verdicts of every key are exercised, including
  regular expressions);
* **random** messages.

The check runs in the state right after start-up and again in states reached by a
random walk of granted events, the symbolic state lifted from the concrete one.
A disagreement is shrunk (fields moved towards zero, empty text, short lists while
the disagreement persists) and reported with both explanations.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import z3

from policy_lang.solution import CallDef, ChoiceDef, MatchDef, Solution
from policy_lang.syntax import ast
from policy_lang.types import (
    ArrayType, BytesType, HandleType, IntType, SequenceType, StringType, StructType, UnionType,
)

from ..engine import SecurityModule
from ..events import Event
from ..security_models.symbolic import Fresh, NotEncoded, z3_text_value
from .message import SymbolicMessage, _Node
from .program import Encoder
from .universe import EventKey, Universe


@dataclass
class Disagreement:
    event: Event
    engine: bool
    z3: bool
    explanation: str

    def describe(self) -> str:
        return (f"{self.event.describe()} {self.event.message!r}: decision function "
                f"{'grants' if self.engine else 'denies'}, Z3 model {'grants' if self.z3 else 'denies'}\n"
                f"{self.explanation}")


@dataclass
class CrosscheckReport:
    events: int = 0
    agreed: int = 0
    skipped: int = 0                       # abstracted or not encoded
    disagreements: list[Disagreement] = field(default_factory=list)
    keys: int = 0


class _Checker:
    def __init__(self, solution: Solution, seed: int):
        self.solution = solution
        self.universe = Universe.build(solution)
        self.rng = random.Random(seed)
        self.literals = sorted(_int_literals(solution.bindings))
        self._cache: dict = {}
        self._before: dict = {}
        self._lifted: dict | None = None
        self._selector = Encoder(self.universe, Fresh("b."))    # only asked which bindings apply

    # -------------------------------------------------------------- one event
    def encoding(self, key: EventKey, src: int, dst: int | None, module: SecurityModule):
        """(message, outcome, solver) for a key in the module's current state, cached per round."""
        ck = (key.engine_key, src, dst)
        hit = self._cache.get(ck)
        if hit is None:
            enc = Encoder(self.universe, Fresh("x."))
            if self._lifted is None:          # the state is the same for the whole round
                self._lifted = {n: i.lift(module.states.get(n)) for n, i in enc.impls.items()}
            state = self._lifted
            msg = SymbolicMessage(key.params, "x")
            out = enc.encode(key, msg.value, z3.IntVal(src), z3.IntVal(dst) if dst is not None else None, state)
            solver = z3.Solver()
            solver.set("timeout", 5000)
            hit = self._cache[ck] = (msg, out, solver)
        return hit

    def z3_verdict(self, key: EventKey, event: Event, src: int, dst: int | None, module: SecurityModule):
        """Z3's decision for a concrete event in the module's current state (None: undecided)."""
        msg, out, s = self.encoding(key, src, dst, module)
        if out.abstract:
            return None
        constant = z3.simplify(out.granted)
        if z3.is_true(constant) or z3.is_false(constant):   # no solver needed (e.g. default deny)
            return z3.is_true(constant)
        eqs = _pin(msg, event.message)
        if eqs is None:
            return None
        s.push()
        s.add(eqs)
        s.push()
        s.add(out.granted)
        can_grant = s.check()
        s.pop()
        s.add(z3.Not(out.granted))
        can_deny = s.check()
        s.pop()
        if can_grant == z3.sat and can_deny == z3.unsat:
            return True
        if can_deny == z3.sat and can_grant == z3.unsat:
            return False
        return None

    def both(self, key, event: Event, src, dst, module: SecurityModule) -> tuple[Any, bool | None]:
        """(the decision, Z3's verdict or None) for one event; the module's state is kept."""
        decision = module.decide(event)
        module.states.clear()
        module.states.update(self._before)
        try:
            verdict = self.z3_verdict(key, event, src, dst, module)
        except NotEncoded:
            verdict = None
        return decision, verdict

    def check(self, key, event, src, dst, module, report: CrosscheckReport) -> None:
        report.events += 1
        decision, verdict = self.both(key, event, src, dst, module)
        if verdict is None:
            report.skipped += 1
            return
        if verdict == decision.granted:
            report.agreed += 1
            return
        event = self.shrink(key, event, src, dst, module)
        d2, _ = self.both(key, event, src, dst, module)
        report.disagreements.append(Disagreement(event, d2.granted, not d2.granted, d2.explain()))

    def shrink(self, key, event: Event, src, dst, module) -> Event:
        """Move leaves towards zero / empty while the two still disagree."""
        current = event
        for path, simpler in _simplifications(current.message):
            candidate = Event(current.kind, current.src, current.dst, current.endpoint, current.method,
                              _replace(current.message, path, simpler))
            d, v = self.both(key, candidate, src, dst, module)
            if v is not None and v != d.granted:
                current = candidate
        return current

    # -------------------------------------------------------------- events
    def messages(self, key: EventKey, count: int, module: SecurityModule, src, dst) -> list[dict]:
        params = key.params
        bindings = self._selector.bindings_for(key)
        if not bindings:                    # default deny: one boundary message is enough
            return [{p.name: _boundary(p.type, self.rng, self.literals, 0) for p in params}]
        literals = sorted(_int_literals(bindings))
        out = [{p.name: _boundary(p.type, self.rng, literals, i) for p in params} for i in range(4)]
        if any(_has_int(p.type) for p in params):     # the key's literals (and neighbours) in every field
            out += [{p.name: _uniform(p.type, v) for p in params} for v in literals]
        out += [{p.name: _random(p.type, self.rng, literals) for p in params} for _ in range(count)]
        out += self.guided(key, module, src, dst)
        return out

    def guided(self, key, module, src, dst) -> list[dict]:
        try:
            msg, out, s = self.encoding(key, src, dst, module)
        except NotEncoded:
            return []
        constant = z3.simplify(out.granted)
        if z3.is_true(constant) or z3.is_false(constant):
            return []                        # one verdict whatever the message
        found = []
        for want in (out.granted, z3.Not(out.granted)):
            s.push()
            s.add(msg.wellformed(), want)
            if s.check() == z3.sat:
                found.append(msg.concrete(s.model()))
            s.pop()
        return found


def crosscheck(solution: Solution, events: int = 200, seed: int = 0, walk: int = 3) -> CrosscheckReport:
    """Compare the decision function and the Z3 model on about ``events`` events per state."""
    ch = _Checker(solution, seed)
    report = CrosscheckReport()
    module = SecurityModule(solution)
    module.boot()
    keys = [k for k in ch.universe.keys() if k.kind != "execute"]
    report.keys = len(keys)
    per_key = max(1, events // max(1, len(keys)))
    for round_ in range(walk + 1):
        ch._before = dict(module.states)
        ch._cache.clear()
        ch._lifted = None
        for key in keys:
            src_p, dst_p = key.pairs[ch.rng.randrange(len(key.pairs))]
            src = src_p.sid
            dst = dst_p.sid if dst_p is not None and key.kind != "security" else None
            for message in ch.messages(key, per_key, module, src, dst):
                ev = key.event(src_p, dst_p, message)
                ch.check(key, ev, src, dst, module, report)
        if round_ < walk:
            _random_walk(ch, module, keys, steps=10)
    return report


def _random_walk(ch: _Checker, module: SecurityModule, keys: list[EventKey], steps: int) -> None:
    """Apply random events (granted ones change the state) so later rounds see other states."""
    for _ in range(steps * 5):
        key = keys[ch.rng.randrange(len(keys))]
        src, dst = key.pairs[ch.rng.randrange(len(key.pairs))]
        d = dst.sid if dst is not None and key.kind != "security" else None
        for message in ch.guided(key, module, src.sid, d)[:1]:
            module.decide(key.event(src, dst, message))
        ch._cache.clear()        # the state may have changed
        ch._lifted = None


# ------------------------------------------------------------------ values
def _int_literals(bindings) -> set[int]:
    out: set[int] = set()

    def walk_expr(e) -> None:
        stack = [e]
        while stack:
            x = stack.pop()
            if isinstance(x, ast.Lit) and x.kind == "int":
                out.update({x.value - 1, x.value, x.value + 1})
            for attr in ("left", "right", "operand", "arg", "base", "index"):
                child = getattr(x, attr, None)
                if child is not None:
                    stack.append(child)
            for attr in ("items",):
                stack.extend(getattr(x, attr, ()) or ())
            if isinstance(x, ast.RecordExpr):
                stack.extend(f.value for f in x.fields)

    def walk(stmts) -> None:
        for st in stmts:
            if isinstance(st, CallDef):
                walk_expr(st.arg)
            elif isinstance(st, MatchDef):
                walk(st.body)
            elif isinstance(st, ChoiceDef):
                walk_expr(st.expr)
                for arm in st.arms:
                    if arm.case is not None and arm.case.kind == "int":
                        out.add(arm.case.value)
                    walk(arm.body)
    for b in bindings:
        walk(b.body)
    return out


def _boundary(t, rng: random.Random, literals: list[int], i: int) -> Any:
    """The i-th boundary value of a type (0: low end, 1: high end, 2: zero-ish, 3: a literal)."""
    if isinstance(t, IntType):
        inside = [v for v in literals if t.min <= v <= t.max]
        return [t.min, t.max, 0, rng.choice(inside) if inside else t.min + 1][i]
    if isinstance(t, StringType):
        return ["", "a" * t.bound, "0", "x"][i]
    if isinstance(t, BytesType):
        return b"" if i % 2 == 0 else b"\x00" * t.bound
    if isinstance(t, HandleType):
        return [0, 0xFFFFFFFF, {"handle": 1, "rights": 3}, 2][i]
    if isinstance(t, SequenceType):
        n = [0, t.bound, 1, min(t.bound, 2)][i]
        return [_boundary(t.element, rng, literals, i) for _ in range(n)]
    if isinstance(t, ArrayType):
        return [_boundary(t.element, rng, literals, i) for _ in range(t.length)]
    if isinstance(t, StructType):
        return {f.name: _boundary(f.type, rng, literals, i) for f in t.fields}
    if isinstance(t, UnionType):
        f = t.fields[i % len(t.fields)]
        return {f.name: _boundary(f.type, rng, literals, i)}
    raise NotEncoded(type(t).__name__)


def _has_int(t) -> bool:
    if isinstance(t, IntType):
        return True
    if isinstance(t, (SequenceType, ArrayType)):
        return _has_int(t.element)
    if isinstance(t, (StructType, UnionType)):
        return any(_has_int(f.type) for f in t.fields)
    return False


def _uniform(t, v: int) -> Any:
    """A value whose integers all equal ``v`` (clamped to each type's range)."""
    if isinstance(t, IntType):
        return min(max(v, t.min), t.max)
    if isinstance(t, SequenceType):
        return [_uniform(t.element, v)] if t.bound else []
    if isinstance(t, ArrayType):
        return [_uniform(t.element, v) for _ in range(t.length)]
    if isinstance(t, StructType):
        return {f.name: _uniform(f.type, v) for f in t.fields}
    if isinstance(t, UnionType):
        return {t.fields[0].name: _uniform(t.fields[0].type, v)}
    return _boundary(t, random.Random(0), [], 0)


def _random(t, rng: random.Random, literals: list[int]) -> Any:
    if isinstance(t, IntType):
        inside = [v for v in literals if t.min <= v <= t.max]
        if inside and rng.random() < 0.5:
            return rng.choice(inside)
        return rng.randint(t.min, t.max)
    if isinstance(t, StringType):
        n = rng.randint(0, min(t.bound, 12))
        return "".join(rng.choice("aZ09 -_./LOCKUNSTAT") for _ in range(n))
    if isinstance(t, BytesType):
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, min(t.bound, 8))))
    if isinstance(t, HandleType):
        return {"handle": rng.randint(0, 20), "rights": rng.randint(0, 7)}
    if isinstance(t, SequenceType):
        return [_random(t.element, rng, literals) for _ in range(rng.randint(0, min(t.bound, 4)))]
    if isinstance(t, ArrayType):
        return [_random(t.element, rng, literals) for _ in range(t.length)]
    if isinstance(t, StructType):
        return {f.name: _random(f.type, rng, literals) for f in t.fields}
    if isinstance(t, UnionType):
        f = rng.choice(t.fields)
        return {f.name: _random(f.type, rng, literals)}
    raise NotEncoded(type(t).__name__)


def _pin(msg: SymbolicMessage, message: dict):
    """Constraints fixing every symbolic part built so far to the concrete message."""
    eqs: list = []

    def visit(node: _Node, value: Any) -> bool:
        v = node._value
        if v is None:
            return True
        t = node.type
        if isinstance(t, IntType):
            eqs.append(v.z == value)
        elif isinstance(t, StringType):
            eqs.append(v.z == z3_text_value(value))
        elif isinstance(t, HandleType):
            h = value if isinstance(value, dict) else {"handle": value, "rights": 0}
            eqs.extend([v.fields["handle"].z == h["handle"], v.fields["rights"].z == h.get("rights", 0)])
        elif isinstance(t, StructType):
            return all(visit(node.children[f.name], value[f.name]) for f in t.fields)
        elif isinstance(t, UnionType):
            (name, inner), = value.items()
            idx = [f.name for f in t.fields].index(name)
            eqs.append(node.tag == idx)
            return visit(node.children[name], inner)
        elif isinstance(t, (SequenceType, ArrayType)):
            if isinstance(t, SequenceType):
                eqs.append(v.length == len(value))
            return all(visit(node.items.node(i), x) for i, x in enumerate(value) if i in node.items._nodes)
        return True

    for name, node in msg.nodes.items():
        if not visit(node, message[name]):
            return None
    return eqs


def _simplifications(message: dict):
    """(path, simpler value) pairs, leaves first."""
    out = []

    def walk(v, path):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, path + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, path + (i,))
        elif isinstance(v, bool):
            pass
        elif isinstance(v, int) and v != 0:
            out.append((path, 0))
        elif isinstance(v, str) and v:
            out.append((path, ""))
    walk(message, ())
    return out


def _replace(v, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(v, dict):
        out = dict(v)
        out[head] = _replace(v[head], rest, new)
        return out
    out = list(v)
    out[head] = _replace(v[head], rest, new)
    return out
