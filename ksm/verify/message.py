"""Symbolic messages: one Z3 value per IDL parameter, with the structure check as constraints.

Why lazy: a message type can be large (``sequence<Record, 4096>``) while a policy
reads two fields of it.  Each field, element or list length becomes a Z3 constant
only when an expression reaches it; its well-formedness constraint (integer range,
``string<N>`` bound, no NUL, sequence bound, union tag) is recorded at that moment.
Parts never read are unconstrained by the policy, so any well-formed value will do
for them: :meth:`SymbolicMessage.concrete` fills them with the PAL defaults.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
            tag = self._var(z3.Int, path + ".tag")
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


def plainest_model(solver: z3.Solver, messages) -> z3.ModelRef:
    """A model of a satisfiable ``solver`` whose message fields are as plain as possible.

    Each field is pinned to 0 / the empty text / the shortest length when that keeps
    the constraints satisfiable.  Counterexamples then read well and do not depend on
    which model Z3 happens to find first (the documentation quotes them).
    """
    for msg in messages:
        for var, plain in msg.leaves:
            if solver.check(var == plain) == z3.sat:
                solver.add(var == plain)
    solver.check()
    return solver.model()
