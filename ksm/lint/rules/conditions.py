"""Conditions the IDL bounds decide: always true (LNT010) or always false (LNT011).

A condition that has the same value for every message the IDL allows (and every
state of the policy objects) checks nothing: ``assert (message.key < 300)`` on a
``UInt8`` key grants every key, ``assert (message.key > 300)`` denies every one.
Such a condition is almost always a mistake in a bound or in the field's type.

What is examined: the argument of every Base ``assert`` and ``deny``, every Boolean
``choice`` selector, and every comparison (``== != < <= > >=``) and Boolean operator
(``&& || ==> !``) inside them.  A condition is constant only if it is constant, with
the same value, for every method its binding or section can apply to (the message
parameters differ between methods); a condition that can run incorrectly for some
input is never reported (it denies sometimes, so it is not constant).  Of nested
constant conditions only the innermost is reported: in
``(message.key < 300) || (message.text == "a")`` the comparison is the finding, not
the ``||`` that is true because of it.

How it is decided, cheapest first (the 10,000-line policy of ``ksm.bench`` takes ~0.06 s):

1. **intervals** — ``message.path OP literal`` (either side) on an integer field:
   the IDL type gives the field's range, and the range decides the comparison; a
   Boolean combination (``&& || ==> !``) of such comparisons on *one* integer field
   (``message.value == 0x1234 || message.value == 0x5678 || ...``) is decided the
   same way, from the set of field values it holds for (:mod:`ksm.lint.intervalset`);
2. **samples** — an expression that only reads the message and stateless models is
   evaluated with the decision function's own evaluator on a few well-formed
   messages (zeros, ones, minima, maxima); two different values or a run-time error
   settle it as "not constant" with no solver, and an expression that reads no
   message field is decided by one evaluation;
3. **Z3** — otherwise the expression is encoded exactly as the decision function
   evaluates it (:class:`ksm.verify.program.Encoder`) over a well-formed symbolic
   message, any SIDs and any state of the policy objects; a question that times out
   (``timeout_ms``) is "not constant".

Results of steps 2 and 3 are cached by the expression (its tree without positions)
and the IDL types of the parameters it reads, so a policy that repeats a condition
over many classes pays for it once.

Every sub-expression of a long condition is a question of its own, so nothing is
done per question that grows with the sub-expression's size: the cache key, the
fields read, the one-field value set, the compiled closure and its values on the
sample messages, and the Z3 encoding are each built once per node from its
children's.  The Z3 questions of one statement share one message, one encoding and
one solver, and the models Z3 found for earlier questions settle most later ones
(``a || b`` is not constant when one known input makes it true and another false).
A 190-term disjunction costs about what 190 separate comparisons cost.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Iterator, Mapping

import z3

from policy_lang import model_library as ml
from policy_lang.diagnostics import Diagnostic, Span
from policy_lang.solution import CallDef, ChoiceDef, MatchDef, Solution, StmtDef, Target, message_params
from policy_lang.syntax import ast
from policy_lang.types import (
    INT_TYPES, ArrayType, BytesType, HandleType, IdlType, IntType, SequenceType, StringType, StructType, UnionType,
    type_str,
)

from ...expressions import EvalContext, ExprCompiler
from ...security_models.base import StatelessModel
from ...security_models.registry import model_impl
from ...security_models.symbolic import Fresh, NotEncoded, anyof
from ...verify.message import SymbolicMessage
from ...verify.program import Encoder, Env, _Walk
from ..catalogue import Example, rule
from ..context import LintContext
from ..intervalset import IntSet

COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
BOOLEAN_BINARY = frozenset({"&&", "||", "==>"})
#: Operators that bind tighter than any comparison in every C-like reading (bitwise ones do not in C).
TIGHT_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "**"})
#: ``n OP x`` is ``x FLIPPED[OP] n``.
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

#: Parameters of one method as a hashable signature: ((name, IDL type), ...).
Signature = tuple[tuple[str, IdlType], ...]


@dataclass(frozen=True)
class _Method:
    """The message of the methods sharing one signature: its parameters, and their types by name."""

    params: tuple                   # ParamDef of one of the methods (for the symbolic message)
    types: Mapping[str, IdlType]


#: The single "method" of a condition that reads no message field.
_NO_MESSAGE: dict[Signature, _Method] = {(): _Method((), {})}


@dataclass(frozen=True)
class Verdict:
    """A condition's value for every input, and the bounds that decide it (for the message)."""

    value: bool
    reason: str


@dataclass(frozen=True)
class Finding:
    """One constant condition: the node, its verdict, and the statement it belongs to."""

    node: ast.Expr
    verdict: Verdict
    stmt: CallDef | ChoiceDef
    root: bool                      # the node is the statement's whole condition


# ============================================================================ printing
def show(e: Any) -> str:
    """An expression printed back as PSL, without positions.

    Parentheses are kept wherever precedence might not restore the tree (only a
    ``+ - * / % **`` operand of a comparison or Boolean operator goes without), so
    two different trees never print alike: the text doubles as the cache key.
    """
    if isinstance(e, ast.Lit):
        return _show_lit(e)
    if isinstance(e, ast.Ref):
        return ".".join(e.path)
    if isinstance(e, ast.FieldAccess):
        return f"{_atom(e.base)}.{e.name}"
    if isinstance(e, ast.IndexExpr):
        return f"{_atom(e.base)}.[{show(e.index)}]"
    if isinstance(e, ast.BinOp):
        return f"{_operand(e.op, e.left)} {e.op} {_operand(e.op, e.right)}"
    if isinstance(e, ast.UnOp):
        return f"{e.op}{_atom(e.operand)}"
    if isinstance(e, ast.Call):
        callee = f"{e.object.text}.{e.method.text}" if e.object is not None else e.method.text
        unit = isinstance(e.arg, ast.Lit) and e.arg.kind == "unit"
        return f"{callee} ({show(e.arg)})" if e.parenthesized and not unit else f"{callee} {show(e.arg)}"
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(show(i) for i in e.items) + "]"
    if isinstance(e, ast.RecordExpr):
        fields = ", ".join(f"{f.key.text if isinstance(f.key, ast.Name) else _show_lit(f.key)} : {show(f.value)}"
                           for f in e.fields)
        return "{ " + fields + " }" if fields else "{}"
    return f"<{type(e).__name__}>"


def _show_lit(e: ast.Lit) -> str:
    if e.kind == "bool":
        return "true" if e.value else "false"
    if e.kind == "unit":
        return "()"
    if e.kind == "text":
        return json.dumps(e.value, ensure_ascii=False)
    return str(e.value)


def _atom(e: Any) -> str:
    return f"({show(e)})" if isinstance(e, (ast.BinOp, ast.UnOp, ast.Call)) else show(e)


def _operand(parent: str, e: Any) -> str:
    """An operand of ``parent``, in parentheses unless precedence alone keeps it together."""
    loose = parent in COMPARISONS or parent in BOOLEAN_BINARY
    if isinstance(e, ast.BinOp) and not (loose and e.op in TIGHT_ARITHMETIC):
        return f"({show(e)})"
    if isinstance(e, ast.Call) and not e.parenthesized:
        return f"({show(e)})"
    return show(e)


# ============================================================================ tree helpers
def children(e: Any) -> tuple:
    """Direct sub-expressions of an expression node."""
    if isinstance(e, ast.BinOp):
        return (e.left, e.right)
    if isinstance(e, ast.UnOp):
        return (e.operand,)
    if isinstance(e, ast.Call):
        return (e.arg,)
    if isinstance(e, ast.ListExpr):
        return e.items
    if isinstance(e, ast.RecordExpr):
        return tuple(f.value for f in e.fields)
    if isinstance(e, ast.FieldAccess):
        return (e.base,)
    if isinstance(e, ast.IndexExpr):
        return (e.base, e.index)
    return ()


def is_condition(e: Any) -> bool:
    """A comparison or a Boolean operator: a node whose value is a Boolean by construction."""
    if isinstance(e, ast.BinOp):
        return e.op in COMPARISONS or e.op in BOOLEAN_BINARY
    return isinstance(e, ast.UnOp) and e.op == "!"


def _is_boolean_selector(e: Any) -> bool:
    return is_condition(e) or (isinstance(e, ast.Lit) and e.kind == "bool")


def _message_path(e: Any) -> tuple[str, ...] | None:
    """``("req", "count")`` for ``message.req.count``; None for anything else."""
    if isinstance(e, ast.Ref) and len(e.path) > 1 and e.path[0] == "message":
        return e.path[1:]
    return None


@dataclass(frozen=True)
class _Reads:
    """What an expression reads besides literals (decides which evaluation applies)."""

    params: frozenset[str] | None      # top-level message parameters; None: the whole message
    paths: tuple[tuple[str, ...], ...]  # message paths, in order of appearance
    sids: bool                          # src_sid / dst_sid
    objects: frozenset[str]             # policy objects called

    @property
    def message(self) -> bool:
        return self.params is None or bool(self.params)


# ============================================================================ IDL types
def field_type(types: Mapping[str, IdlType], path: tuple[str, ...]) -> IdlType | None:
    """The IDL type of ``message.<path>`` through parameters and struct fields.

    A handle's ``.handle`` (the SID) and ``.rights`` are ``UInt32`` (the structure
    check's range for both).  None when a step is missing or goes through a union
    member (which a message may not carry: reading it can run incorrectly, so no
    bound can be trusted).
    """
    t = types.get(path[0])
    for name in path[1:]:
        if isinstance(t, HandleType) and name in ("handle", "rights"):
            t = INT_TYPES["UInt32"]
            continue
        if not isinstance(t, StructType):
            return None
        f = t.field(name)
        t = f.type if f is not None else None
    return t


def _describe(path: tuple[str, ...], t: IdlType | None) -> str:
    name = ".".join(path)
    if isinstance(t, IntType):
        return f"{name} is {t.name} ({t.min}..{t.max})"
    return f"{name} is {type_str(t)}" if t is not None else f"{name} is read from the message"


# ============================================================================ intervals
def interval_verdict(op: str, lo: int, hi: int, n: int) -> bool | None:
    """The value of ``x OP n`` for every ``x`` in ``lo..hi`` (None: it depends on ``x``)."""
    if op == "<":
        return True if hi < n else False if lo >= n else None
    if op == "<=":
        return True if hi <= n else False if lo > n else None
    if op == ">":
        return True if lo > n else False if hi <= n else None
    if op == ">=":
        return True if lo >= n else False if hi < n else None
    if op in ("==", "!="):
        if not lo <= n <= hi:
            return op == "!="
        if lo == hi:
            return op == "=="
        return None
    raise ValueError(f"not a comparison: {op}")


@dataclass(frozen=True)
class _Shape:
    """``message.path OP n`` (a literal on the left is flipped to the right)."""

    op: str
    path: tuple[str, ...]
    n: int


def _interval_shape(e: Any) -> _Shape | None:
    """The shape the interval path decides, if ``e`` has it."""
    if not (isinstance(e, ast.BinOp) and e.op in COMPARISONS):
        return None
    op, path, lit = e.op, _message_path(e.left), e.right
    if path is None:
        op, path, lit = FLIPPED[e.op], _message_path(e.right), e.left
    if path is None or not (isinstance(lit, ast.Lit) and lit.kind == "int"):
        return None
    return _Shape(op, path, lit.value)


def _interval(shape: _Shape, types: Mapping[str, IdlType]) -> Verdict | None:
    """Decide the shape on an integer field (the caller checked the field is one)."""
    t = field_type(types, shape.path)
    assert isinstance(t, IntType)
    value = interval_verdict(shape.op, t.min, t.max, shape.n)
    return None if value is None else Verdict(value, _describe(shape.path, t))


# ============================================================================ samples
def sample_value(t: IdlType, how: str) -> Any:
    """A well-formed value of ``t`` as rules see it: ``how`` is zero, one, low or high.

    The four messages differ in every integer (0, 1, the minimum, the maximum), every
    text ("", "a", "A", the bound full of "z") and every list length, so a condition
    that depends on the message at all is likely to tell two of them apart.
    """
    if isinstance(t, IntType):
        return {"zero": 0, "one": min(max(1, t.min), t.max), "low": t.min, "high": t.max}[how]
    if isinstance(t, StringType):
        return {"zero": "", "one": "a", "low": "A", "high": "z" * t.bound}[how]
    if isinstance(t, BytesType):
        return b"" if how == "zero" else b"\x01"
    if isinstance(t, HandleType):
        v = {"zero": 0, "one": 1, "low": 0, "high": 0xFFFFFFFF}[how]
        return {"handle": v, "rights": v}
    if isinstance(t, SequenceType):
        n = {"zero": 0, "one": 1, "low": 1, "high": min(t.bound, 2)}[how]
        return [sample_value(t.element, how) for _ in range(n)]
    if isinstance(t, ArrayType):
        return [sample_value(t.element, how) for _ in range(t.length)]
    if isinstance(t, StructType):
        return {f.name: sample_value(f.type, how) for f in t.fields}
    if isinstance(t, UnionType):
        member = t.fields[-1] if how == "high" else t.fields[0]
        return {member.name: sample_value(member.type, how)}
    raise TypeError(t)


_SAMPLES = ("zero", "one", "low", "high")
_MAX_SAMPLED_ARRAY = 4096


def _samplable(t: IdlType) -> bool:
    """Whether sample messages of ``t`` stay small (huge fixed arrays go to Z3 instead)."""
    if isinstance(t, ArrayType):
        return t.length <= _MAX_SAMPLED_ARRAY and _samplable(t.element)
    if isinstance(t, SequenceType):
        return _samplable(t.element)
    if isinstance(t, (StructType, UnionType)):
        return all(_samplable(f.type) for f in t.fields)
    return True


# ============================================================================ per-node facts
_ANY_FIELD = ("",)          # form of a Boolean literal: combines with comparisons on any field


class _Nodes:
    """Facts about expression nodes, each built once from its children's facts.

    Every sub-condition of a long condition is examined, so a fact recomputed over
    the whole subtree at every node would cost the square of the condition's size.
    A node gets a number (:meth:`key`) shared by the nodes that print alike, that
    is, by equal trees wherever they are; the facts are kept by that number, so a
    condition repeated over many bindings is looked at once.  Numbers are kept by
    node identity: the nodes are the solution's, alive as long as the analysis.
    """

    _EMPTY: frozenset = frozenset()

    def __init__(self) -> None:
        self._keys: dict[int, int] = {}
        self._interned: dict[tuple, int] = {}
        self._reads: dict[int, tuple] = {}
        self._forms: dict[int, tuple[str, ...] | None] = {}
        self._sets: dict[tuple[int, int, int], IntSet] = {}

    def key(self, e: Any) -> int:
        """A number shared by exactly the nodes that :func:`show` prints alike (the cache key)."""
        k = self._keys.get(id(e))
        if k is None:
            if isinstance(e, ast.BinOp):
                shape: tuple = ("b", e.op, self.key(e.left), self.key(e.right))
            elif isinstance(e, ast.UnOp):
                shape = ("u", e.op, self.key(e.operand))
            else:
                shape = ("s", show(e))
            k = self._keys[id(e)] = self._interned.setdefault(shape, len(self._interned))
        return k

    def reads(self, e: Any) -> _Reads:
        """What ``e`` reads: its message parameters, its message paths in order of first
        appearance, whether it reads a SID, and the objects it calls."""
        return _Reads(*self._read_parts(e))

    def _read_parts(self, e: Any) -> tuple:
        """(parameters or None, message paths in order of first appearance, SIDs read, objects called)."""
        k = self.key(e)
        got = self._reads.get(k)
        if got is not None:
            return got
        empty = self._EMPTY
        if isinstance(e, ast.Ref):
            params: frozenset[str] | None = empty
            paths: tuple[tuple[str, ...], ...] = ()
            if e.path[0] == "message":
                if len(e.path) == 1:
                    params = None
                else:
                    params, paths = frozenset((e.path[1],)), (e.path[1:],)
            got = (params, paths, e.path[0] in ("src_sid", "dst_sid"), empty)
        else:
            params, paths, sids, objects = empty, (), False, empty
            for c in children(e):                 # in the order they are written
                p, ps, s, o = self._read_parts(c)
                if params is not None and p != params:
                    params = None if p is None else p if not params else params if not p else params | p
                paths = ps if not paths else paths + tuple(x for x in ps if x not in paths)
                sids = sids or s
                objects = o if not objects else objects if not o or o <= objects else objects | o
            if isinstance(e, ast.Call):
                name = e.object.text if e.object is not None else ml.UNPREFIXED.get(e.method.text)
                objects = objects | {name or f"?{e.method.text}"}   # "?": names no object (runs incorrectly)
            got = (params, paths, sids, objects)
        self._reads[k] = got
        return got

    def form(self, e: Any) -> tuple[str, ...] | None:
        """The one message path a Boolean combination of ``path OP literal`` comparisons reads.

        None when ``e`` is not such a combination (of ``&& || ==> !``, comparisons with
        an integer literal and Boolean literals) over a single path; ``_ANY_FIELD`` for
        Boolean literals alone.
        """
        k = self.key(e)
        if k in self._forms:
            return self._forms[k]
        found: tuple[str, ...] | None = None
        shape = _interval_shape(e)
        if shape is not None:
            found = shape.path
        elif isinstance(e, ast.Lit) and e.kind == "bool":
            found = _ANY_FIELD
        elif isinstance(e, ast.UnOp) and e.op == "!":
            found = self.form(e.operand)
        elif isinstance(e, ast.BinOp) and e.op in BOOLEAN_BINARY:
            a, b = self.form(e.left), self.form(e.right)
            if a is not None and b is not None:
                found = b if a == _ANY_FIELD else a if b in (_ANY_FIELD, a) else None
        self._forms[k] = found
        return found

    def values(self, e: Any, lo: int, hi: int) -> IntSet:
        """The values of the field in ``lo..hi`` for which ``e`` holds (``form(e)`` is a path)."""
        k = (self.key(e), lo, hi)
        got = self._sets.get(k)
        if got is None:
            shape = _interval_shape(e)
            if shape is not None:
                got = IntSet.compare(shape.op, shape.n, lo, hi)
            elif isinstance(e, ast.Lit):
                got = IntSet.constant(bool(e.value), lo, hi)
            elif isinstance(e, ast.UnOp):
                got = ~self.values(e.operand, lo, hi)
            else:
                a, b = self.values(e.left, lo, hi), self.values(e.right, lo, hi)
                got = a & b if e.op == "&&" else a | b if e.op == "||" else ~a | b
            self._sets[k] = got
        return got


# ============================================================================ the analysis
class ConditionAnalysis:
    """Finds the constant conditions of one solution (shared by LNT010 and LNT011)."""

    def __init__(self, ctx: LintContext):
        self.ctx = ctx
        self.solution: Solution = ctx.solution
        self._cache: dict[tuple, Verdict | None] = {}
        self._samples: dict[Signature, list[EvalContext] | None] = {}
        self._nodes = _Nodes()
        self._stmt: CallDef | ChoiceDef | None = None

    # ------------------------------------------------------------------ walking
    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        for b in self.solution.bindings:
            for stmt, targets in _statements(b.body, b.targets):
                out += self._statement(stmt, _methods(targets, b.event))
        return out

    def _statement(self, stmt: CallDef | ChoiceDef, methods: dict[Signature, _Method]) -> list[Finding]:
        if isinstance(stmt, CallDef):
            root = stmt.arg
            if isinstance(root, ast.Lit) and root.kind in ("unit", "bool"):
                return []             # `grant ()`, `deny (false)`, `assert (true)`: constant on purpose
            examine_root = True
        else:
            root, examine_root = stmt.expr, _is_boolean_selector(stmt.expr)
        self._stmt = stmt             # the Z3 questions of one statement share an encoding
        found: list[tuple[Any, Verdict]] = []
        self._visit(root, examine_root, methods, found)
        return [Finding(node, v, stmt, node is root) for node, v in found]

    def _visit(self, e: Any, examine: bool, methods: dict[Signature, _Method], found: list) -> bool:
        """Post-order: report ``e`` only if no condition below it is constant.

        Returns whether a constant condition was found in ``e``'s subtree.
        """
        below = False
        for c in children(e):
            below = self._visit(c, is_condition(c), methods, found) or below
        if below or not examine:
            return below
        v = self.verdict(e, methods)
        if v is None:
            return False
        found.append((e, v))
        return True

    # ------------------------------------------------------------------ deciding
    def verdict(self, e: Any, methods: dict[Signature, _Method]) -> Verdict | None:
        """The verdict shared by every method (None: not constant, or not the same everywhere)."""
        shape = _interval_shape(e)
        reads = None if shape is not None else self._nodes.reads(e)
        if reads is not None and not reads.message:
            methods = _NO_MESSAGE       # one evaluation serves every method (and execute bindings)
        if not methods:
            return None
        value, reasons = None, []
        for sig, m in methods.items():
            if shape is not None and isinstance(field_type(m.types, shape.path), IntType):
                v = _interval(shape, m.types)
            else:
                v = self._one(e, reads or self._nodes.reads(e), sig, m)
            if v is None or (value is not None and v.value != value):
                return None
            value = v.value
            if v.reason not in reasons:
                reasons.append(v.reason)
        return Verdict(bool(value), "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else ""))

    def _one(self, e: Any, reads: _Reads, sig: Signature, m: _Method) -> Verdict | None:
        """Value sets, samples, then Z3; cached by the expression's tree and the types of what it reads."""
        used = sig if reads.params is None else tuple((n, t) for n, t in sig if n in reads.params)
        key = (self._nodes.key(e), used)
        if key in self._cache:
            return self._cache[key]
        value = self._decide(e, reads, sig, m)
        v = None if value is None else Verdict(value, self._reason(reads, m.types, self.pure_objects))
        self._cache[key] = v
        return v

    def _decide(self, e: Any, reads: _Reads, sig: Signature, m: _Method) -> bool | None:
        path = self._nodes.form(e)
        if path is not None and path != _ANY_FIELD:
            t = field_type(m.types, path)
            if isinstance(t, IntType):
                # Exact; only Z3 can say "constant" of a condition that reads the message,
                # so where Z3 is not available the answer stays None, as it would without this step.
                value = self._nodes.values(e, t.min, t.max).value
                return value if value is not None and self.solver is not None else None
        if not reads.sids and reads.objects <= self.pure_objects:
            sampled = self._sampled(e, sig, reads.message)
            if sampled is not _UNSETTLED:
                return sampled
        return self.solver.constant(e, sig, m.params, self._stmt) if self.solver is not None else None

    @staticmethod
    def _reason(reads: _Reads, types: Mapping[str, IdlType], pure: frozenset[str]) -> str:
        """The bounds a verdict rests on: the types of the fields read, and the state if any."""
        parts = [_describe(p, field_type(types, p)) for p in reads.paths]
        if reads.params is None:
            parts.append("the message has " + (", ".join(f"{n} : {type_str(t)}" for n, t in types.items())
                                               or "no parameters"))
        if reads.sids:
            parts.append("SIDs are 1 and up")
        stateful = sorted(o for o in reads.objects - pure if not o.startswith("?"))
        if stateful:
            parts.append("for every state of " + ", ".join(stateful))
        return ", ".join(parts) if parts else "it only depends on constants"

    # ------------------------------------------------------------------ samples
    @cached_property
    def pure_objects(self) -> frozenset[str]:
        """Objects whose expressions depend on their argument alone (stateless models)."""
        return frozenset(n for n, o in self.solution.objects.items()
                         if o.model != "Base" and isinstance(model_impl(o.model), StatelessModel))

    @cached_property
    def evaluator(self) -> tuple[ExprCompiler, dict[str, Any]]:
        """The decision function's expression compiler, and the (fixed) state of the pure objects."""
        impls = {n: model_impl(o.model) for n, o in self.solution.objects.items()}
        states = {n: impls[n].initial_state(self.solution.objects[n]) for n in self.pure_objects}
        return _SharedCompiler(self.solution, impls, self._nodes.key), states

    @cached_property
    def _bare(self) -> list[EvalContext]:
        """The one context of an expression that reads no message field."""
        return [EvalContext({}, None, None, self.evaluator[1], {})]

    def _sampled(self, e: Any, sig: Signature, reads_message: bool) -> bool | None | object:
        """Evaluate on sample messages: a value, None (not constant) or ``_UNSETTLED`` (ask Z3)."""
        contexts = self._sample_contexts(sig) if reads_message else self._bare
        if contexts is None:
            return _UNSETTLED
        fn = self._compile(e)
        if fn is None:
            return None
        seen: set[bool] = set()
        for c in contexts:
            try:
                v = fn(c)
            except Exception:   # noqa: BLE001 - any failure is "runs incorrectly": the event is denied
                return None
            if type(v) is not bool:
                return None
            seen.add(v)
            if len(seen) > 1:
                return None
        if not reads_message:
            return seen.pop()
        return _UNSETTLED

    def _sample_contexts(self, sig: Signature) -> list[EvalContext] | None:
        """One evaluation context per sample message (kept: compiled nodes remember their values by context)."""
        if sig not in self._samples:
            ok = all(_samplable(t) for _, t in sig)
            states = self.evaluator[1]
            self._samples[sig] = [EvalContext({n: sample_value(t, how) for n, t in sig}, None, None, states, {})
                                  for how in _SAMPLES] if ok else None
        return self._samples[sig]

    def _compile(self, e: Any) -> Callable[[EvalContext], Any] | None:
        try:
            return self.evaluator[0].compile(e)
        except Exception:   # noqa: BLE001 - an operator the evaluator refuses denies at run time
            return None

    @cached_property
    def solver(self) -> "_Z3 | None":
        """The Z3 back end, built on the first question that needs it (None: the encoder refuses the solution)."""
        try:
            return _Z3(self.ctx)
        except Exception:   # noqa: BLE001 - a solution the encoder cannot take: no Z3 verdicts, no findings
            return None


_UNSETTLED = object()


class _Raised:
    """A remembered failure (of compiling, evaluating or encoding a node), raised again on each use."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception):
        self.exc = exc

    def again(self):
        raise self.exc.with_traceback(None)     # not the frames of an earlier raise


class _SharedCompiler(ExprCompiler):
    """The decision function's compiler, compiling each node once.

    Each node's closure also remembers its value (or failure) per evaluation
    context, so on the few fixed sample contexts a node is evaluated once however
    many examined conditions contain it.  The lint compiles without an audit
    profile or expression hook, and the pure objects' state never changes, so a
    node's value on a context is always the same.
    """

    def __init__(self, solution: Solution, impls: Mapping[str, Any], key: Callable[[Any], int]):
        super().__init__(solution, impls)
        self._key = key                 # equal trees share one closure, wherever they are
        self._done: dict[int, Any] = {}

    def compile(self, e: ast.Expr, profile: str | None = None) -> Callable[[EvalContext], Any]:
        k = self._key(e)
        got = self._done.get(k)
        if got is None:
            try:
                got = _remembering(super().compile(e, profile))
            except Exception as exc:   # noqa: BLE001 - remembered, and raised to every caller
                got = _Raised(exc)
            self._done[k] = got
        if type(got) is _Raised:
            got.again()
        return got


def _remembering(fn: Callable[[EvalContext], Any]) -> Callable[[EvalContext], Any]:
    seen: dict[int, Any] = {}

    def remembered(ctx: EvalContext) -> Any:
        got = seen.get(id(ctx), _UNSETTLED)
        if got is _UNSETTLED:
            try:
                got = fn(ctx)
            except Exception as exc:   # noqa: BLE001 - remembered, and raised to every caller
                got = _Raised(exc)
            seen[id(ctx)] = got
        if type(got) is _Raised:
            got.again()
        return got
    return remembered


_NOT_ENCODED = (NotEncoded, ValueError, TypeError, z3.Z3Exception)


class _SharedWalk(_Walk):
    """The encoder's expression walk, encoding each node once (for one message, SIDs and state).

    A subclass of the encoder's own walk, so the encoding is the decision function's
    as :meth:`Encoder.condition` builds it; only the memo is added.
    """

    def __init__(self, enc: Encoder, env: Env):
        super().__init__(enc, env)
        self._done: dict[int, Any] = {}

    def expr(self, e):
        got = self._done.get(id(e))
        if got is None:
            start = len(self.escapes)
            try:
                v, err = super().expr(e)
            except _NOT_ENCODED as exc:
                self._done[id(e)] = _Raised(exc)
                raise
            got = self._done[id(e)] = (v, err, tuple(self.escapes[start:]))
        elif type(got) is _Raised:
            got.again()
        else:
            self.escapes.extend(got[2])   # the untracked-SID conditions noted while encoding it
        return got[0], got[1]


@dataclass
class _Witness:
    """A model the solver found for an earlier question: an input the statement can see."""

    model: z3.ModelRef
    checked: int                    # how many of the message's constraints it is known to meet


@dataclass
class _Scope:
    """The Z3 questions of one statement and one message signature."""

    message: SymbolicMessage
    walk: _SharedWalk
    solver: z3.Solver
    added: int = 0                 # how many of the message's constraints the solver has
    witnesses: list[_Witness] = field(default_factory=list)

    def both_ways(self, value: z3.BoolRef) -> bool:
        """Whether two known inputs give ``value`` different truth values (so it is not constant).

        Each is a model of the solver's assertions (checked again when the message has
        gained parts since), so this answers "not constant" only where Z3 would too; it
        spares the questions about ``a || b`` once ``a`` and ``b`` were asked about.
        """
        seen: set[bool] = set()
        built = self.message.constraints
        for w in reversed(self.witnesses):
            if w.checked < self.added:
                if not z3.is_true(w.model.eval(z3.And(built[w.checked:self.added]), model_completion=True)):
                    continue
                w.checked = self.added
            got = w.model.eval(value, model_completion=True)
            if z3.is_true(got) or z3.is_false(got):
                seen.add(z3.is_true(got))
                if len(seen) == 2:
                    return True
        return False

    def check(self, question: z3.BoolRef) -> z3.CheckSatResult:
        """The solver's answer, keeping the model of a satisfiable question as a witness."""
        result = self.solver.check(question)
        if result == z3.sat:
            self.witnesses = self.witnesses[-(_WITNESSES - 1):] + [_Witness(self.solver.model(), self.added)]
        return result


#: Models kept per statement for :meth:`_Scope.both_ways`.
_WITNESSES = 8


class _Z3:
    """Decides whether a condition is constant with Z3, as the decision function evaluates it.

    One encoder, one unconstrained state of the policy objects and one pair of SIDs
    serve every question.  The questions of one statement (for one message
    signature) share a symbolic message, the encoding of every node (a condition's
    encoding is built from its operands', never again from scratch) and a solver
    holding the well-formedness of that message; each question is asked between a
    push and a pop, so what it adds does not slow the next one down, and the last
    few models found serve as witnesses (:meth:`_Scope.both_ways`).  The next
    statement starts afresh.
    """

    def __init__(self, ctx: LintContext):
        self.timeout = ctx.options.timeout_ms
        self.fresh = Fresh("lint!")
        self.encoder = Encoder(ctx.prover.universe, self.fresh)
        self.state, self.state_ok = self.encoder.any_state(self.fresh)
        self.src, self.dst = self.fresh.int("src_sid"), self.fresh.int("dst_sid")
        self.count = 0
        self._stmt: Any = None
        self._scopes: dict[Signature, _Scope] = {}

    def _scope(self, sig: Signature, params: tuple, stmt: Any) -> _Scope:
        if stmt is not self._stmt:
            self._stmt, self._scopes = stmt, {}
        sc = self._scopes.get(sig)
        if sc is None:
            self.count += 1
            msg = SymbolicMessage(params, f"lint{self.count}")
            walk = _SharedWalk(self.encoder, Env(msg.value, self.src, self.dst, dict(self.state),
                                                 self.encoder.task_sids))
            s = z3.Solver()
            s.set("timeout", self.timeout)
            s.add(self.state_ok, self.src >= 1, self.dst >= 1)
            sc = self._scopes[sig] = _Scope(msg, walk, s)
        return sc

    def constant(self, e: Any, sig: Signature, params: tuple, stmt: Any = None) -> bool | None:
        """True/False when ``e`` always has that value and never runs incorrectly; else None."""
        sc = self._scope(sig, params, stmt)
        sc.walk.escapes = []
        try:
            v, err = sc.walk.expr(e)
        except _NOT_ENCODED:
            return None
        if v.kind == "bool":
            value, escape = v.z, anyof(sc.walk.escapes)
        else:                                       # not a Boolean: runs incorrectly
            value, err, escape = z3.BoolVal(False), z3.BoolVal(True), z3.BoolVal(False)
        s, built = sc.solver, sc.message.constraints
        if len(built) > sc.added:                   # the structure check of the parts read so far
            s.add(*built[sc.added:])
            sc.added = len(built)
        if sc.both_ways(value):
            return None
        s.push()                    # the question's own terms go again after it: none piles up
        try:
            wrong = z3.simplify(z3.Or(err, escape))
            if not z3.is_false(wrong) and sc.check(wrong) != z3.unsat:
                return None         # runs incorrectly for some input (or the solver does not know)
            if sc.check(z3.Not(value)) == z3.unsat:
                return True
            if sc.check(value) == z3.unsat:
                return False
            return None
        finally:
            s.pop()


def _statements(body: Iterable[StmtDef], targets: tuple[Target, ...]) -> Iterator[tuple[CallDef | ChoiceDef, tuple]]:
    """Every assert/deny call and choice, with the targets of the innermost section around it."""
    for st in body:
        if isinstance(st, MatchDef):
            if st.satisfiable:
                yield from _statements(st.body, st.targets)
        elif isinstance(st, ChoiceDef):
            yield st, targets
            for arm in st.arms:
                yield from _statements(arm.body, targets)
        elif isinstance(st, CallDef) and st.model == "Base" and st.method in ("assert", "deny") and st.kind == "rule":
            yield st, targets


def _methods(targets: tuple[Target, ...], event: str) -> dict[Signature, _Method]:
    """The distinct messages the targets' methods carry for ``event``, by signature."""
    out: dict[Signature, _Method] = {}
    for t in targets:
        params = message_params(t.method, event)
        sig = tuple((p.name, p.type) for p in params)
        if sig not in out:
            out[sig] = _Method(params, dict(sig))
    return out


# ============================================================================ reporting
def analysis(ctx: LintContext) -> list[Finding]:
    """The constant conditions of ``ctx``'s solution, found once per lint run.

    Both rules read the same analysis, so it is kept on the context (like the
    context's own cached back ends) under a private key.
    """
    memo = vars(ctx)
    if "_lint_conditions" not in memo:
        memo["_lint_conditions"] = ConditionAnalysis(ctx).findings()
    return memo["_lint_conditions"]


def _consequence(f: Finding) -> str:
    """What a constant condition means for the statement that holds it."""
    if not f.root:
        return ""
    st, v = f.stmt, f.verdict.value
    if isinstance(st, ChoiceDef):
        return "; the choice always selects `true`" if v else "; the choice never selects `true`"
    if st.method == "assert":
        return "; the assert never denies" if v else "; the assert denies every event it applies to"
    return "; the deny denies every event it applies to" if v else "; the deny never denies"


def message(f: Finding) -> str:
    text = show(f.node)
    if len(text) > 120:
        text = text[:117] + "..."
    value = "true" if f.verdict.value else "false"
    return f"condition {text} is always {value}: {f.verdict.reason}{_consequence(f)}"


def _report(ctx: LintContext, code: str, value: bool) -> Iterator[Diagnostic]:
    for f in analysis(ctx):
        if f.verdict.value == value:
            span: Span = f.stmt.span
            yield ctx.finding(code, message(f), span)


def _put_assert(condition: str) -> Example:
    """A catalogue example: one assert in a Put binding of the example solution."""
    return Example("use demo.prelude._\n\n"
                   "request src=demo.Client dst=demo.Server endpoint=core.store method=Put {\n"
                   f"    assert ({condition})\n}}\n")


@rule(
    "LNT010", "condition-always-true", "warning", "condition always true for the messages the IDL allows",
    "compare with a bound inside the field's range, or widen/narrow the field's IDL type to what you meant",
    category="conditions",
    why="A condition that holds for every message the IDL allows (and every state of the policy objects) "
        "checks nothing: `assert (message.key < 300)` on a `UInt8` key grants every key there is. Usually "
        "the bound or the field's type is not what the author had in mind, and the check that was meant "
        "is missing. Comparisons inside larger conditions are reported too (the innermost constant one), "
        "and so is a `deny (cond)` whose condition always holds (it denies everything).",
    bad=_put_assert("message.key < 300"),
    good=_put_assert("message.key < 100"),
)
def condition_always_true(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(ctx, "LNT010", True)


@rule(
    "LNT011", "condition-always-false", "warning", "condition always false for the messages the IDL allows",
    "compare with a bound inside the field's range, or widen the field's IDL type",
    category="conditions",
    why="A condition that fails for every message the IDL allows makes its rule constant: an `assert` "
        "that always denies (`assert (message.key > 300)` on a `UInt8` key), a `deny (cond)` that never "
        "denies, a comparison inside a larger condition that can never hold, a `choice` whose `true` arm "
        "never runs. The binding then blocks (or lets through) far more than its text suggests.",
    bad=_put_assert("message.key > 300"),
    good=_put_assert("message.key > 100"),
)
def condition_always_false(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(ctx, "LNT011", False)
