"""PSL expressions compiled to closures over an evaluation context.

A binding's arguments and conditions are compiled once (per program) into nested
Python closures; evaluating one is then a chain of calls with no dispatch on node
types.  Operators and the Struct accessors come from their security-model modules
(``pred``, ``boolean``, ``arith``, ``struct``), so the semantics live in one place.
"""
from __future__ import annotations

import operator
from types import MappingProxyType
from collections import namedtuple
from typing import Any, Callable, ClassVar, Mapping

from policy_lang import model_library as ml
from policy_lang.solution import Solution
from policy_lang.syntax import ast

from .security_models import ModelError
from .security_models import arith, boolean, pred, struct

Fn = Callable[["EvalContext"], Any]

# Operators by symbol, from the model that defines each (pred has no unary ones).
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    **pred.OPERATORS, **boolean.BINARY_OPERATORS, **arith.BINARY_OPERATORS,
}
_UNARY: dict[str, Callable[[Any], Any]] = {**boolean.UNARY_OPERATORS, **arith.UNARY_OPERATORS}


# pred's comparisons of two plain ints are Python's (pred.py: "two plain ints ... the
# commonest operands ... everything else takes the checked path"): `message.x < 10`
# compares them directly, and calls pred only for anything else.
_INT_COMPARISONS: dict[Callable, Callable[[int, int], bool]] = {
    pred.lt: operator.lt, pred.le: operator.le, pred.gt: operator.gt, pred.ge: operator.ge,
    pred.eq: operator.eq, pred.ne: operator.ne,
}

# With boolean.SHORT_CIRCUIT on: the left operand value that decides the result alone.
_SHORT_CIRCUIT_STOP = {"&&": False, "||": True, "==>": False}


class EvalContext:
    """What an expression can see: the message, the participants' SIDs, model state.

    A plain slotted class: one is built per decision, and a dataclass costs more.
    """

    __slots__ = ("message", "src_sid", "dst_sid", "states", "pending", "audit")

    def __init__(self, message: Mapping[str, Any], src_sid: int | None, dst_sid: int | None,
                 states: Mapping[str, Any], pending: dict[str, Any]):
        self.message = message
        self.src_sid = src_sid
        self.dst_sid = dst_sid
        self.states = states
        self.pending = pending        # state changes of this event so far (not yet committed)
        self.audit: list | None = None  # audit records of this event, written after the verdict (made on the first)

    def state(self, obj: str) -> Any:
        pending = self.pending
        return pending[obj] if obj in pending else self.states[obj]


class PureContext(namedtuple("PureContext", ("message", "src_sid", "dst_sid"))):
    """The context of a program that touches no model state: the message and the SIDs.

    A named tuple, so a hot route makes one without running any Python code (an
    :class:`EvalContext` runs its ``__init__``).  Where state would be it is empty and
    read-only: such a program never reads or changes state, and if one ever did, the
    read fails (a denial, ``internal-error``) instead of racing with a decision that
    holds the lock.
    """

    __slots__ = ()
    states: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    pending: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    audit: ClassVar[None] = None

    def state(self, obj: str) -> Any:
        return self.states[obj]


#: Called as ``hook(profile, object, method, ctx)`` after a model expression ran,
#: so the engine can record it for audit (Regex ``emit``).
ExpressionHook = Callable[[Any, str, str, "EvalContext"], None]


class ExprCompiler:
    def __init__(self, solution: Solution, impls: Mapping[str, Any], on_expression: ExpressionHook | None = None):
        self.solution = solution
        self.impls = impls
        self.on_expression = on_expression
        self._profile: str | None = None

    def call_target(self, c: ast.Call):
        """(object name, model implementation, object, method) of a call, if it resolves."""
        name = c.object.text if c.object is not None else ml.UNPREFIXED.get(c.method.text)
        if name is None or name not in self.solution.objects:
            return None
        return name, self.impls[name], self.solution.objects[name], c.method.text

    def compile(self, e: ast.Expr, profile: str | None = None) -> Fn:
        """Closure evaluating ``e``; ``profile`` is the audit profile in force around it."""
        outer, self._profile = self._profile, profile if profile is not None else self._profile
        try:
            return getattr(self, "_" + type(e).__name__)(e)
        finally:
            self._profile = outer

    # --------------------------------------------------------------- node kinds
    def _Lit(self, e: ast.Lit) -> Fn:
        v = e.value
        return lambda ctx: v

    def _ListExpr(self, e: ast.ListExpr) -> Fn:
        items = [self.compile(i) for i in e.items]
        return lambda ctx: [f(ctx) for f in items]

    def _RecordExpr(self, e: ast.RecordExpr) -> Fn:
        fields = [(f.key.text if isinstance(f.key, ast.Name) else f.key.value, self.compile(f.value)) for f in e.fields]
        return lambda ctx: {k: f(ctx) for k, f in fields}

    def _Ref(self, e: ast.Ref) -> Fn:
        path = e.path
        head = path[0]
        if head == "src_sid" and len(path) == 1:
            return lambda ctx: _need(ctx.src_sid, "src_sid")
        if head == "dst_sid" and len(path) == 1:
            return lambda ctx: _need(ctx.dst_sid, "dst_sid")
        if head != "message":
            name = ".".join(path)

            def undefined(ctx):
                raise ModelError(f"{name} is not defined")
            return undefined
        rest = path[1:]
        field = struct.field
        if len(rest) == 1:                      # message.x: the common case, one lookup
            seg = rest[0]
            return lambda ctx: field(ctx.message, seg)

        def ref(ctx):
            v = ctx.message
            for seg in rest:
                v = field(v, seg)
            return v
        return ref

    def _FieldAccess(self, e: ast.FieldAccess) -> Fn:
        base = self.compile(e.base)
        name = e.name
        field = struct.field
        return lambda ctx: field(base(ctx), name)

    def _IndexExpr(self, e: ast.IndexExpr) -> Fn:
        base = self.compile(e.base)
        idx = self.compile(e.index)
        index = struct.index
        return lambda ctx: index(base(ctx), idx(ctx))

    def _BinOp(self, e: ast.BinOp) -> Fn:
        op = _BINARY.get(e.op)
        if op is None:
            raise ModelError(f"operator {e.op} is not supported")
        left, right = self.compile(e.left), self.compile(e.right)
        if isinstance(e.right, ast.Lit) and e.op not in _SHORT_CIRCUIT_STOP:
            constant = e.right.value            # `message.x < 10`: no closure call for 10
            seg = _message_field(e.left)
            if seg is not None:                 # ... nor for message.x (struct.field's fast path inlined)
                field = struct.field
                ints = _INT_COMPARISONS.get(op) if type(constant) is int else None
                if ints is not None:
                    def compare_int_field(ctx):
                        m = ctx.message
                        if type(m) is dict:
                            v = m.get(seg, m)           # the message itself: no such field
                            if type(v) is int:
                                return ints(v, constant)
                            if v is not m:
                                return op(v, constant)
                        return op(field(m, seg), constant)
                    return compare_int_field

                def compare_field(ctx):
                    m = ctx.message
                    if type(m) is dict and seg in m:
                        return op(m[seg], constant)
                    return op(field(m, seg), constant)
                return compare_field
            return lambda ctx: op(left(ctx), constant)
        if boolean.SHORT_CIRCUIT and e.op in _SHORT_CIRCUIT_STOP:
            stop = _SHORT_CIRCUIT_STOP[e.op]    # left value that decides alone
            result = e.op != "&&"               # what the operator then returns

            def lazy(ctx):
                lv = left(ctx)
                if lv is stop:
                    return result
                return op(lv, right(ctx))
            return lazy
        return lambda ctx: op(left(ctx), right(ctx))

    def _UnOp(self, e: ast.UnOp) -> Fn:
        op = _UNARY.get(e.op)
        if op is None:
            raise ModelError(f"operator {e.op} is not supported")
        operand = self.compile(e.operand)
        return lambda ctx: op(operand(ctx))

    def _Call(self, e: ast.Call) -> Fn:
        target = self.call_target(e)
        arg = self.compile(e.arg)
        if target is None:
            what = f"{e.object.text + '.' if e.object else ''}{e.method.text}"

            def unknown(ctx):
                raise ModelError(f"{what} is not a known model method")
            return unknown
        name, impl, obj, method = target
        hook, profile = self.on_expression, self._profile
        if hook is None:
            return lambda ctx: impl.expression(obj, ctx.state(name), method, arg(ctx))

        def audited(ctx):
            value = impl.expression(obj, ctx.state(name), method, arg(ctx))
            hook(profile, name, method, ctx)
            return value
        return audited


def _message_field(e: ast.Expr) -> str | None:
    """``x`` when ``e`` is ``message.x``, else None."""
    if isinstance(e, ast.Ref) and len(e.path) == 2 and e.path[0] == "message":
        return e.path[1]
    return None


def calls_a_model(e: Any) -> bool:
    """Whether evaluating ``e`` may call a security model method (and so read model state).

    Anything that is not a literal, a reference or an operator over those counts as a
    call: the answer decides whether a program may run without the module's lock, so
    an unknown node must say yes.
    """
    t = type(e)
    if t is ast.Lit or t is ast.Ref:
        return False
    if isinstance(e, (ast.Lit, ast.Ref)):
        return False
    if isinstance(e, ast.ListExpr):
        return any(calls_a_model(i) for i in e.items)
    if isinstance(e, ast.RecordExpr):
        return any(calls_a_model(f.value) for f in e.fields)
    if isinstance(e, ast.FieldAccess):
        return calls_a_model(e.base)
    if isinstance(e, ast.IndexExpr):
        return calls_a_model(e.base) or calls_a_model(e.index)
    if isinstance(e, ast.BinOp):
        return calls_a_model(e.left) or calls_a_model(e.right)
    if isinstance(e, ast.UnOp):
        return calls_a_model(e.operand)
    return True


def _need(v, what: str):
    if v is None:
        raise ModelError(f"{what} is undefined for this event")
    return v
