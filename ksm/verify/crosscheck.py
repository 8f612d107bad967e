"""Differential testing: the decision function against the Z3 model, event by event.

Both compute the same thing from the same resolved solution by different means
(closures over concrete values; formulas over symbolic ones), so any disagreement
is a bug in one of them.  Events come from three sources:

* **boundary** messages: every integer field at its IDL bounds, at 0, and at each
  integer literal of the policy and its neighbours; empty and full strings and
  sequences;
* **random** messages;
* **Z3-guided** messages: for each event key, a message the model says is granted
  and one it says is denied, when the messages above have not already exercised
  that verdict (so both verdicts of every key are exercised, including regular
  expressions).

Z3's verdict on a concrete event is the model's formula evaluated at that message
(substitution and simplification; a solver only when that leaves a formula).  Each
event key has a **time budget** for its Z3 work (encoding, evaluation, guided
messages) over the whole run: Z3 can spend its whole timeout on one bitwise or
nonlinear question, and without a bound a 60-line policy of such conditions took
minutes.  Events of a key whose budget is used up are not checked; the report counts
them (``budget_keys``, ``budget_events``) and says why.

The check runs in the state right after start-up and again in states reached by a
random walk of granted events, the symbolic state lifted from the concrete one.
A disagreement is shrunk (fields moved towards zero, empty text, short lists while
the disagreement persists) and reported with both explanations.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import z3

from policy_lang.solution import CallDef, ChoiceDef, MatchDef, Solution
from policy_lang.syntax import ast
from policy_lang.types import (
    ArrayType, BytesType, HandleType, IntType, SequenceType, StringType, StructType, UnionType,
)

from ..engine import MALFORMED_MESSAGE, SecurityModule
from ..events import Event
from ..security_models.symbolic import Fresh, NotEncoded, z3_text_value
from .message import Candidates, SymbolicMessage, _Node, literals_of
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
    events: int = 0                        # decided by both (agreed + skipped + disagreements)
    agreed: int = 0
    skipped: int = 0                       # not comparable: abstracted, not encoded, or undecided by Z3
    disagreements: list[Disagreement] = field(default_factory=list)
    keys: int = 0
    undecided: int = 0                     # of `skipped`: Z3 answered unknown (a timeout)
    key_seconds: float = 0.0               # the Z3 time budget of one event key (whole run)
    budget_keys: dict[str, int] = field(default_factory=dict)   # key whose budget ran out -> events skipped
    budget_events: int = 0                 # events not checked because their key's budget ran out

    def skipped_lines(self) -> list[str]:
        """What the time budget cut short, and why (empty when it cut nothing)."""
        if not self.budget_keys:
            return []
        lines = [f"skipped: {self.budget_events} event(s) not checked, of {len(self.budget_keys)} event key(s) "
                 f"whose Z3 time budget ({self.key_seconds:g} s per key) was used up:"]
        for k, n in list(self.budget_keys.items())[:20]:
            lines.append(f"  {k}: " + (f"{n} event(s) not checked" if n else
                                      "every event checked, a Z3-guided message not found in time"))
        if len(self.budget_keys) > 20:
            lines.append(f"  ... and {len(self.budget_keys) - 20} more")
        return lines


#: Z3 time per event key over the whole run, in seconds (see the module docstring).
KEY_SECONDS = 2.0
#: Timeout of one solver question, in ms (also bounded by what is left of the budget).
_QUESTION_MS = 5000


class _OverBudget(Exception):
    """The key's Z3 time budget is used up."""


class _Checker:
    def __init__(self, solution: Solution, seed: int, key_seconds: float = KEY_SECONDS):
        self.solution = solution
        self.key_seconds = key_seconds
        self.spent: dict[tuple, float] = {}       # engine key -> Z3 seconds used
        self.universe = Universe.build(solution)
        self.rng = random.Random(seed)
        self.literals = sorted(_int_literals(solution.bindings))
        self._cache: dict = {}
        self._before: dict = {}
        self._lifted: dict | None = None
        self._selector = Encoder(self.universe, Fresh("b."))    # only asked which bindings apply
        self.solution_transactional = self.universe.options.transactional
        self.last_unknown = False

    # -------------------------------------------------------------- budget
    def left(self, key: EventKey) -> float:
        return self.key_seconds - self.spent.get(key.engine_key, 0.0)

    def over_budget(self, key: EventKey) -> bool:
        return self.left(key) <= 0

    def charge(self, key: EventKey, since: float) -> None:
        self.spent[key.engine_key] = self.spent.get(key.engine_key, 0.0) + time.perf_counter() - since

    def ask(self, key: EventKey, s: z3.Solver, *assumptions):
        """``s.check(...)`` within what is left of the key's budget."""
        left = self.left(key)
        if left <= 0:
            raise _OverBudget
        s.set("timeout", max(1, int(min(_QUESTION_MS, left * 1000))))
        return s.check(*assumptions)

    # -------------------------------------------------------------- one event
    def encoding(self, key: EventKey, src: int, dst: int | None, module: SecurityModule):
        """(message, outcome, solver, simplified verdict) for a key in the module's current state,
        cached per round; counts against the key's budget (see :meth:`z3_verdict`)."""
        ck = (key.engine_key, src, dst)
        hit = self._cache.get(ck)
        if hit is None:
            if self.over_budget(key):
                raise _OverBudget
            enc = Encoder(self.universe, Fresh("x."))
            if self._lifted is None:          # the state is the same for the whole round
                self._lifted = {n: i.lift(module.states.get(n)) for n, i in enc.impls.items()}
            state = self._lifted
            msg = SymbolicMessage(key.params, "x")
            out = enc.encode(key, msg.value, z3.IntVal(src), z3.IntVal(dst) if dst is not None else None, state)
            solver = z3.Solver()
            solver.set("timeout", _QUESTION_MS)
            hit = self._cache[ck] = (msg, out, solver, z3.simplify(out.granted))
        return hit

    def z3_verdict(self, key: EventKey, event: Event, src: int, dst: int | None, module: SecurityModule):
        """Z3's decision for a concrete event in the module's current state (None: undecided).

        The formula is evaluated at the message first (every part the encoding built
        replaced by its value, then simplified): that needs no solver, and a bitwise
        or nonlinear condition on known numbers is just arithmetic.  A solver decides
        what simplification leaves open, within the key's budget.
        """
        t0 = time.perf_counter()
        try:
            return self._z3_verdict(key, event, src, dst, module)
        finally:
            self.charge(key, t0)

    def _z3_verdict(self, key, event, src, dst, module):
        msg, out, s, constant = self.encoding(key, src, dst, module)
        if out.abstract:
            return None
        if z3.is_true(constant) or z3.is_false(constant):   # no solver needed (e.g. default deny)
            return z3.is_true(constant)
        eqs = _pin(msg, event.message)
        if eqs is None:
            return None
        pairs = [(e.arg(0), e.arg(1)) for e in eqs if z3.is_eq(e) and z3.is_const(e.arg(0))]
        if len(pairs) == len(eqs):
            value = z3.simplify(z3.substitute(out.granted, *pairs)) if pairs else constant
            if z3.is_true(value) or z3.is_false(value):
                return z3.is_true(value)
        s.push()
        try:
            s.add(eqs)
            s.push()
            s.add(out.granted)
            can_grant = self.ask(key, s)
            s.pop()
            s.add(z3.Not(out.granted))
            can_deny = self.ask(key, s)
        finally:
            while s.num_scopes() > 0:
                s.pop()
        if can_grant == z3.sat and can_deny == z3.unsat:
            return True
        if can_deny == z3.sat and can_grant == z3.unsat:
            return False
        self.last_unknown = z3.unknown in (can_grant, can_deny)
        return None

    def both(self, key, event: Event, src, dst, module: SecurityModule) -> tuple[Any, bool | None]:
        """(the decision, Z3's verdict or None) for one event; the module's state is kept.

        Raises :class:`_OverBudget` when the key's Z3 time budget is used up."""
        decision = module.decide(event)
        module.states.clear()
        module.states.update(self._before)
        self.last_unknown = False
        try:
            verdict = self.z3_verdict(key, event, src, dst, module)
        except NotEncoded:
            verdict = None
        return decision, verdict

    def check(self, key, event, src, dst, module, report: CrosscheckReport) -> bool | None:
        """Compare one event; the verdict both agree on (None: not compared or disagreed)."""
        try:
            decision, verdict = self.both(key, event, src, dst, module)
        except _OverBudget:
            self.over(key, report)
            return None
        report.events += 1
        if verdict is None:
            report.skipped += 1
            report.undecided += self.last_unknown
            return None
        if verdict == decision.granted:
            report.agreed += 1
            return verdict
        try:
            event = self.shrink(key, event, src, dst, module)
        except _OverBudget:
            pass                              # report it unshrunk
        d2 = module.decide(event)
        module.states.clear()
        module.states.update(self._before)
        report.disagreements.append(Disagreement(event, d2.granted, not d2.granted, d2.explain()))
        return None

    def over(self, key: EventKey, report: CrosscheckReport, events: int = 1) -> None:
        """Count events not checked because the key's budget ran out."""
        report.budget_events += events
        name = key.describe()
        report.budget_keys[name] = report.budget_keys.get(name, 0) + events

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
        """Boundary, literal and random messages (the guided ones come from :meth:`guided`)."""
        params = key.params
        bindings = self._selector.bindings_for(key)
        if not bindings:                    # default deny: one boundary message is enough
            return [{p.name: _boundary(p.type, self.rng, self.literals, 0) for p in params}]
        literals = sorted(_int_literals(bindings))
        out = [{p.name: _boundary(p.type, self.rng, literals, i) for p in params} for i in range(4)]
        if any(_has_int(p.type) for p in params):     # the key's literals (and neighbours) in every field
            out += [{p.name: _uniform(p.type, v) for p in params} for v in literals]
        out += [{p.name: _random(p.type, self.rng, literals) for p in params} for _ in range(count)]
        return out

    def constant(self, key: EventKey, module: SecurityModule, src, dst) -> bool:
        """Whether the Z3 model gives the key one verdict whatever the message (e.g. default deny)."""
        t0 = time.perf_counter()
        try:
            constant = self.encoding(key, src, dst, module)[3]
        except (NotEncoded, _OverBudget):
            return False
        finally:
            self.charge(key, t0)
        return z3.is_true(constant) or z3.is_false(constant)

    def searched(self, key: EventKey, module: SecurityModule, src_p, dst_p, verdicts) -> dict:
        """verdict -> a message the decision function decides so, among boundary candidates
        (:class:`~ksm.verify.message.Candidates`); no Z3 involved, the module's state kept."""
        before = dict(module.states)
        bindings = self._selector.bindings_for(key)
        ints, texts = literals_of([st for b in bindings for st in b.body])
        found: dict = {}
        for i, message in enumerate(Candidates(key.params, ints, texts, self.rng).boundary()):
            if i >= _SEARCHED or len(found) == len(verdicts):
                break
            d = module.decide(key.event(src_p, dst_p, message))
            module.states.clear()
            module.states.update(before)
            if d.granted in verdicts and d.granted not in found and not d.reason.startswith(MALFORMED_MESSAGE):
                found[d.granted] = message
        return found

    def guided(self, key, module, src, dst, verdicts=(True, False)) -> list[dict]:
        """Messages the Z3 model grants / denies (for each wanted verdict), within the key's budget."""
        t0 = time.perf_counter()
        try:
            msg, out, s, constant = self.encoding(key, src, dst, module)
            if z3.is_true(constant) or z3.is_false(constant):
                return []                        # one verdict whatever the message
            found = []
            for verdict in verdicts:
                want = out.granted if verdict else z3.Not(out.granted)
                s.push()
                try:
                    s.add(msg.wellformed(), want)
                    if self.ask(key, s) == z3.sat:
                        found.append(msg.concrete(s.model()))
                finally:
                    s.pop()
            return found
        except (NotEncoded, _OverBudget):
            return []
        finally:
            self.charge(key, t0)


def crosscheck(solution: Solution, events: int = 200, seed: int = 0, walk: int = 3,
               key_seconds: float | None = None) -> CrosscheckReport:
    """Compare the decision function and the Z3 model on about ``events`` events per state.

    ``key_seconds``: the Z3 time budget of each event key over the whole run (default
    :data:`KEY_SECONDS`; see the module docstring); events of a key past it are
    counted in ``budget_events``.
    """
    if key_seconds is None:
        key_seconds = KEY_SECONDS
    ch = _Checker(solution, seed, key_seconds)
    report = CrosscheckReport(key_seconds=key_seconds)
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
            seen: set = set()
            messages = ch.messages(key, per_key, module, src, dst)
            for i, message in enumerate(messages):
                if ch.over_budget(key):
                    ch.over(key, report, len(messages) - i)
                    break
                seen.add(ch.check(key, key.event(src_p, dst_p, message), src, dst, module, report))
            missing = tuple(v for v in (True, False) if v not in seen)
            if missing and not ch.constant(key, module, src, dst):   # a verdict not yet exercised: look for one
                found = ch.searched(key, module, src_p, dst_p, missing)
                for message in found.values():
                    seen.add(ch.check(key, key.event(src_p, dst_p, message), src, dst, module, report))
                missing = tuple(v for v in missing if v not in seen)
            if missing and not ch.over_budget(key):      # still missing: ask Z3 for one
                for message in ch.guided(key, module, src, dst, missing):
                    ch.check(key, key.event(src_p, dst_p, message), src, dst, module, report)
        if round_ < walk:
            _random_walk(ch, module, keys, steps=10)
    for key in keys:                  # budgets used up by Z3 questions without skipping an event
        if ch.over_budget(key) and key.describe() not in report.budget_keys:
            report.budget_keys[key.describe()] = 0
    return report


def _random_walk(ch: _Checker, module: SecurityModule, keys: list[EventKey], steps: int) -> None:
    """Apply random events (granted ones change the state) so later rounds see other states.

    Each step tries a few random and boundary messages of a random key through the
    decision function, and asks Z3 for a granted one (within the key's budget) only
    when none of them is granted."""
    for _ in range(steps * 5):
        key = keys[ch.rng.randrange(len(keys))]
        src, dst = key.pairs[ch.rng.randrange(len(key.pairs))]
        d = dst.sid if dst is not None and key.kind != "security" else None
        params = key.params
        tries = [{p.name: _random(p.type, ch.rng, ch.literals) for p in params} for _ in range(_WALK_TRIES)]
        granted = False
        for message in tries:
            if module.decide(key.event(src, dst, message)).granted:
                granted = True
                break
        if not granted and not ch.constant(key, module, src.sid, d):
            found = ch.searched(key, module, src, dst, (True,)).get(True)
            if found is None and not ch.over_budget(key):
                found = next(iter(ch.guided(key, module, src.sid, d, (True,))), None)
            if found is not None:
                granted = module.decide(key.event(src, dst, found)).granted
        if granted or not ch.solution_transactional:
            ch._cache.clear()        # the state may have changed
            ch._lifted = None


_WALK_TRIES = 8
_SEARCHED = 256          # boundary candidates tried for a verdict not yet exercised


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
