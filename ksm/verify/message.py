"""Symbolic messages: one Z3 value per IDL parameter, with the structure check as constraints.

Why lazy: a message type can be large (``sequence<Record, 4096>``) while a policy
reads two fields of it.  Each field, element or list length becomes a Z3 constant
only when an expression reaches it; its well-formedness constraint (integer range,
``string<N>`` bound, no NUL, sequence bound, union tag) is recorded at that moment.
Parts never read are unconstrained by the policy, so any well-formed value will do
for them: :meth:`SymbolicMessage.concrete` fills them with the PAL defaults.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import z3

from policy_lang.types import (
    ArrayType, BytesType, HandleType, IdlType, IntType, SequenceType, StringType, StructType, UnionType,
)

from ..security_models.symbolic import TRUE, NotEncoded, SList, SNum, SRecord, SText, SUnit, Sym, concrete, z3_text_value
from ..structure import default_value

#: A list whose elements are reached by a computed index becomes an If-chain over
#: every element; past this bound that chain is refused (NotEncoded).
MAX_SYMBOLIC_ELEMENTS = 256
_UINT32 = 0xFFFFFFFF


class _Node:
    """A lazily built part of a message and how to read it back from a model."""

    def __init__(self, builder: "SymbolicMessage", t: IdlType, path: str):
        self.builder, self.type, self.path = builder, t, path
        self._value: Sym | None = None

    @property
    def value(self) -> Sym:
        if self._value is None:
            self._value = self.builder._make(self.type, self.path, self)
        return self._value

    def concrete(self, model: z3.ModelRef) -> Any:
        if self._value is None:
            return default_value(self.type)
        t = self.type
        if isinstance(t, (StructType,)):
            return {n: c.concrete(model) for n, c in self.children.items()}
        if isinstance(t, UnionType):
            tag = model.eval(self.tag, model_completion=True).as_long()
            name = t.fields[tag].name
            return {name: self.children[name].concrete(model)}
        if isinstance(t, (SequenceType, ArrayType)):
            n = model.eval(self._value.length, model_completion=True).as_long()
            return [self.items.node(i).concrete(model) for i in range(n)]
        if isinstance(t, BytesType):
            return b""
        return concrete(self._value, model)


class _LazyFields(Mapping):
    """Record fields built on first access."""

    def __init__(self, nodes: dict[str, _Node]):
        self.nodes = nodes

    def __getitem__(self, name: str) -> Sym:
        return self.nodes[name].value

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


class _LazyItems(Sequence):
    """List elements built on first access (``len`` is the IDL bound)."""

    def __init__(self, builder: "SymbolicMessage", element: IdlType, bound: int, path: str):
        self.builder, self.element, self.bound, self.path = builder, element, bound, path
        self._nodes: dict[int, _Node] = {}

    def node(self, i: int) -> _Node:
        if i not in self._nodes:
            self._nodes[i] = _Node(self.builder, self.element, f"{self.path}[{i}]")
        return self._nodes[i]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.bound))]
        if i < 0:
            i += self.bound
        if not 0 <= i < self.bound:
            raise IndexError(i)
        if len(self._nodes) >= MAX_SYMBOLIC_ELEMENTS and i not in self._nodes:
            raise NotEncoded(f"{self.path}: more than {MAX_SYMBOLIC_ELEMENTS} elements read symbolically")
        return self.node(i).value

    def __len__(self) -> int:
        return self.bound


class SymbolicMessage:
    """The message of one event: a symbolic record of its parameters plus constraints."""

    def __init__(self, params: Sequence, prefix: str):
        self.prefix = prefix
        self.constraints: list[z3.BoolRef] = []
        self.leaves: list[tuple[z3.ExprRef, z3.ExprRef]] = []   # (variable, its plainest value)
        self.nodes = {p.name: _Node(self, p.type, p.name) for p in params}
        self.value = SRecord(_LazyFields(self.nodes))

    def wellformed(self) -> z3.BoolRef:
        """The structure check, for every part built so far."""
        return z3.And(self.constraints) if self.constraints else TRUE

    def concrete(self, model: z3.ModelRef) -> dict:
        return {name: node.concrete(model) for name, node in self.nodes.items()}

    # ------------------------------------------------------------------ building
    def _var(self, ctor, path: str):
        return ctor(f"{self.prefix}.{path}")

    def _range(self, x: z3.ArithRef, lo: int, hi: int) -> None:
        self.constraints.append(z3.And(x >= lo, x <= hi))
        self.leaves.append((x, z3.IntVal(min(max(0, lo), hi))))

    def _make(self, t: IdlType, path: str, node: _Node) -> Sym:
        if isinstance(t, IntType):
            x = self._var(z3.Int, path)
            self._range(x, t.min, t.max)
            return SNum(x)
        if isinstance(t, StringType):
            s = self._var(z3.String, path)
            self.leaves.append((s, z3_text_value("")))
            self.constraints += [z3.Length(s) <= t.bound, z3.Not(z3.Contains(s, z3_text_value("\x00")))]
            return SText(s)
        if isinstance(t, HandleType):
            h, r = self._var(z3.Int, path + ".handle"), self._var(z3.Int, path + ".rights")
            self._range(h, 0, _UINT32)
            self._range(r, 0, _UINT32)
            return SRecord({"handle": SNum(h), "rights": SNum(r)})
        if isinstance(t, BytesType):
            return _Opaque()
        if isinstance(t, StructType):
            node.children = {f.name: _Node(self, f.type, f"{path}.{f.name}") for f in t.fields}
            return SRecord(_LazyFields(node.children))
        if isinstance(t, UnionType):
            # "#": not an IDL identifier character, so the discriminant can never be the
            # same Z3 variable as a member called `tag` (fuzz seed 1073: an unsound PROVED)
            tag = self._var(z3.Int, path + "#tag")
            self._range(tag, 0, len(t.fields) - 1)
            node.tag = tag
            node.children = {f.name: _Node(self, f.type, f"{path}.{f.name}") for f in t.fields}
            present = {f.name: tag == i for i, f in enumerate(t.fields)}
            return SRecord(_LazyFields(node.children), present)
        if isinstance(t, SequenceType):
            n = self._var(z3.Int, path + ".length")
            self._range(n, 0, t.bound)
            node.items = _LazyItems(self, t.element, t.bound, path)
            return SList(node.items, n)
        if isinstance(t, ArrayType):
            node.items = _LazyItems(self, t.element, t.length, path)
            return SList(node.items, z3.IntVal(t.length))
        raise NotEncoded(f"{path}: IDL type {type(t).__name__}")


class _Opaque(SUnit):
    """``bytes<N>``: rules never see the content; any operation on it runs incorrectly."""

    kind = "bytes"


#: Time limit of each "can this field be plain?" question, in ms: plainness is cosmetic,
#: and a question on bit-vector or nonlinear constraints can use the whole timeout.
PIN_TIMEOUT_MS = 1000


class NoModel(RuntimeError):
    """Z3 gave no model (its answer was unknown) and none was found before."""


def current_model(solver: z3.Solver) -> z3.ModelRef | None:
    """The model of the solver's last check, or None when that check was not sat."""
    try:
        return solver.model()
    except z3.Z3Exception:
        return None


class Pinner:
    """Adds "plain" equalities to a satisfiable solver while they keep it satisfiable.

    Why it keeps a model: each question may come back unknown (a timeout, typically
    on bit-vector or nonlinear constraints), and so may the final check; Z3 then
    has no model to give (``model is not available``).  The last model found is kept
    instead: the caller's, or that of a question answered sat, which satisfies every
    equality added so far.  The questions asked are exactly those of a plain loop of
    ``check(c)`` / ``add(c)``, so fast answers give the same models as always.
    """

    def __init__(self, solver: z3.Solver, timeout_ms: int | None = PIN_TIMEOUT_MS,
                 model: z3.ModelRef | None = None):
        self.solver = solver
        self.best = model if model is not None else current_model(solver)
        if timeout_ms is not None:
            solver.set("timeout", timeout_ms)

    def pin(self, cond: z3.BoolRef) -> bool:
        if self.solver.check(cond) == z3.sat:
            self.best = self.solver.model()
            self.solver.add(cond)
            return True
        return False

    def model(self) -> z3.ModelRef:
        r = self.solver.check()
        if r == z3.sat:
            return self.solver.model()
        if self.best is None:
            raise NoModel(f"Z3 returned unknown: {self.solver.reason_unknown()}")
        return self.best


def plainest_model(solver: z3.Solver, messages, pinner: Pinner | None = None) -> z3.ModelRef:
    """A model of a satisfiable ``solver`` whose message fields are as plain as possible.

    Each field is pinned to 0 / the empty text / the shortest length when that keeps
    the constraints satisfiable.  Counterexamples then read well and do not depend on
    which model Z3 happens to find first (the documentation quotes them).  Call it
    right after a ``check()`` that said sat (or pass the :class:`Pinner` used since):
    when Z3 cannot answer a later question, that model (or a later one) is returned.
    """
    pinner = pinner or Pinner(solver)
    for msg in messages:
        for var, plain in msg.leaves:
            pinner.pin(var == plain)
    return pinner.model()


# ====================================================================== concrete candidates
class _Range:
    """The integer range of a part that is not an IDL integer (handle, rights)."""

    def __init__(self, lo: int, hi: int):
        self.min, self.max = lo, hi


_HANDLE = _Range(0, _UINT32)


def int_candidates(t, literals: Iterable[int] = ()) -> list[int]:
    """Boundary values of an integer type, plainest first, all within its range.

    0, 1 and -1; each literal with its neighbours and its negation; the type's ends
    and their neighbours; every power of two within the range, its neighbours and
    (for signed types) their negations.
    """
    lo, hi = t.min, t.max
    out = [0, 1, -1]
    for v in sorted(set(literals), key=lambda v: (abs(v), v)):
        out += [v, v - 1, v + 1, -v]
    out += [hi, hi - 1, lo, lo + 1]
    for k in range(1, max(abs(lo), abs(hi)).bit_length() + 1):
        p = 1 << k
        out += [p, p - 1, p + 1, -p, -p + 1, -p - 1]
    return [v for v in dict.fromkeys(out) if lo <= v <= hi]


def text_candidates(t: StringType, texts: Iterable[str] = ()) -> list[str]:
    """Short well-formed texts: empty, the policy's literals that fit, one letter, full length."""
    out = ["", *sorted(set(texts), key=lambda x: (len(x), x)), "a", "0", "a" * min(t.bound, 64)]
    return [x for x in dict.fromkeys(out) if len(x) <= t.bound and "\x00" not in x]


def literals_of(nodes) -> tuple[set[int], set[str]]:
    """The integer and text literals of PSL statements and expressions (policy or property)."""
    from policy_lang.solution import CallDef, ChoiceDef, MatchDef
    from policy_lang.syntax import ast

    ints: set[int] = set()
    texts: set[str] = set()
    stack = list(nodes)
    while stack:
        x = stack.pop()
        if x is None:
            continue
        if isinstance(x, CallDef):
            stack.append(x.arg)
        elif isinstance(x, MatchDef):
            stack.extend(x.body)
        elif isinstance(x, ChoiceDef):
            stack.append(x.expr)
            for arm in x.arms:
                stack.append(arm.case)
                stack.extend(arm.body)
        elif isinstance(x, ast.Lit):
            if x.kind == "int" and isinstance(x.value, int):
                ints.add(x.value)
            elif x.kind == "text" and isinstance(x.value, str):
                texts.add(x.value)
        else:
            for attr in ("left", "right", "operand", "arg", "base", "index"):
                child = getattr(x, attr, None)
                if child is not None:
                    stack.append(child)
            stack.extend(getattr(x, "items", ()) or ())
            if isinstance(x, ast.RecordExpr):
                stack.extend(f.value for f in x.fields)
    return ints, texts


class Candidates:
    """Concrete well-formed messages of one method, for a concrete counterexample search.

    :meth:`boundary` lists the deterministic ones, plainest first: the default
    message; every integer set to one literal-derived value; each integer part in turn
    through the boundary values of its type (:func:`int_candidates`), the others
    plain; each text part through :func:`text_candidates`; every integer set to each
    remaining boundary value.  :meth:`random` draws a seeded random one (integers from
    the boundary values or uniformly from the range, sequences of up to 4 elements).
    Sequences are one element long in the boundary messages, unions take their first
    member (other members are reached by varying the parts inside them).
    """

    def __init__(self, params: Sequence, literals: Iterable[int] = (), texts: Iterable[str] = (),
                 rng: random.Random | None = None):
        self.params = tuple(params)
        self.literals = sorted(set(literals), key=lambda v: (abs(v), v))
        self.texts = sorted(set(texts))
        self.rng = rng or random.Random(0)
        self._ints: dict[tuple[int, int], list[int]] = {}

    # ------------------------------------------------------------ values
    def ints(self, t) -> list[int]:
        key = (t.min, t.max)
        found = self._ints.get(key)
        if found is None:
            found = self._ints[key] = int_candidates(t, self.literals)
        return found

    def message(self, leaf) -> dict:
        """A message whose leaves ``leaf(path, type)`` chooses (None: the plain value)."""
        return {p.name: _build(p.type, leaf, (p.name,)) for p in self.params}

    def leaves(self) -> list[tuple[tuple, Any]]:
        """(path, type) of every integer, text and handle part of the boundary shape."""
        out: list = []
        for p in self.params:
            _leaves(p.type, (p.name,), out)
        return out

    # ------------------------------------------------------------ messages
    def boundary(self) -> Iterator[dict]:
        seen: set[str] = set()

        def fresh(m: dict) -> bool:
            k = repr(m)
            if k in seen:
                return False
            seen.add(k)
            return True

        def uniform(v: int):
            def leaf(path, t):
                if path[-1] == "#":
                    return 1
                if isinstance(t, (IntType, _Range)):
                    return min(max(v, t.min), t.max)
                return None
            return self.message(leaf)

        yield from filter(fresh, [self.message(lambda path, t: None)])
        around = [w for v in self.literals for w in (v, v - 1, v + 1)]
        for v in around:
            m = uniform(v)
            if fresh(m):
                yield m
        leaves = self.leaves()
        lists = [(path, self.ints(t) if isinstance(t, (IntType, _Range)) else text_candidates(t, self.texts))
                 for path, t in leaves]
        depth = max((len(vals) for _, vals in lists), default=0)
        for i in range(depth):                 # round robin: every part's early values first
            for path, vals in lists:
                if i < len(vals):
                    m = self.message(_only(path, vals[i]))
                    if fresh(m):
                        yield m
        for t in {(t.min, t.max): t for _, t in leaves if isinstance(t, (IntType, _Range))}.values():
            for v in self.ints(t):
                m = uniform(v)
                if fresh(m):
                    yield m

    def random(self) -> dict:
        rng = self.rng

        def leaf(path, t):
            if path[-1] == "#":
                return rng.randint(0, min(t.bound, 4))
            if path[-1] == "?":
                return rng.randrange(len(t.fields))
            if isinstance(t, (IntType, _Range)):
                if rng.random() < 0.6:
                    return rng.choice(self.ints(t))
                return rng.randint(t.min, t.max)
            if isinstance(t, StringType):
                if rng.random() < 0.5:
                    return rng.choice(text_candidates(t, self.texts))
                n = rng.randint(0, min(t.bound, 8))
                return "".join(rng.choice("aZ09 -_./") for _ in range(n))
            return None
        return self.message(leaf)


def _only(target: tuple, value):
    """A leaf chooser setting one part (and the shape leading to it) and nothing else."""
    def leaf(path, t):
        if path == target:
            return value
        if path[-1] in ("#", "?") and target[:len(path) - 1] == path[:-1] and len(target) >= len(path):
            step = target[len(path) - 1]
            if path[-1] == "#":
                return step + 1
            return [f.name for f in t.fields].index(step)
        return None
    return leaf


def _build(t, leaf, path: tuple):
    if isinstance(t, IntType):
        v = leaf(path, t)
        return 0 if v is None else v
    if isinstance(t, StringType):
        v = leaf(path, t)
        return "" if v is None else v
    if isinstance(t, BytesType):
        return b""
    if isinstance(t, HandleType):
        h, r = leaf(path + ("handle",), _HANDLE), leaf(path + ("rights",), _HANDLE)
        return {"handle": h or 0, "rights": r or 0}
    if isinstance(t, SequenceType):
        n = leaf(path + ("#",), t) or 0
        return [_build(t.element, leaf, path + (i,)) for i in range(min(n, t.bound))]
    if isinstance(t, ArrayType):
        return [_build(t.element, leaf, path + (i,)) for i in range(t.length)]
    if isinstance(t, StructType):
        return {f.name: _build(f.type, leaf, path + (f.name,)) for f in t.fields}
    if isinstance(t, UnionType):
        i = leaf(path + ("?",), t) or 0
        f = t.fields[i]
        return {f.name: _build(f.type, leaf, path + (f.name,))}
    return default_value(t)


#: Parts varied one at a time in the boundary messages, at most (large arrays).
MAX_VARIED_PARTS = 64


def _leaves(t, path: tuple, out: list) -> None:
    if len(out) >= MAX_VARIED_PARTS:
        return
    if isinstance(t, (IntType, StringType)):
        out.append((path, t))
    elif isinstance(t, HandleType):
        out += [(path + ("handle",), _HANDLE), (path + ("rights",), _HANDLE)]
    elif isinstance(t, SequenceType):
        if t.bound:
            _leaves(t.element, path + (0,), out)
    elif isinstance(t, ArrayType):
        for i in range(t.length):
            _leaves(t.element, path + (i,), out)
    elif isinstance(t, (StructType, UnionType)):          # a union: every member's parts
        for f in t.fields:
            _leaves(f.type, path + (f.name,), out)
