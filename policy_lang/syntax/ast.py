"""Syntax trees of the four input languages, as plain frozen dataclasses.

Parsers (``idl.py``, ``components.py``, ``psl.py``, ``init_yaml.py``) turn lark parse
trees into these nodes once, so no later stage ever looks at a lark tree.  Nodes hold
``pos``: the character offset in the *expanded* text of their file; the file node
keeps the :class:`~policy_lang.source.SourceText` that turns an offset into a span in
the user's original file.  Nothing here is resolved: names are still the strings the
user wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..source import SourceText


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier or dotted name as written (``acme.Hub``, ``log``, ``net.Net``)."""

    text: str
    pos: int

    def __str__(self) -> str:
        return self.text


# ----------------------------------------------------------------------------- IDL

@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    pos: int


@dataclass(frozen=True, slots=True)
class ConstRef:
    """A named constant used in a constant expression (``MaxName``, ``pkg.Max``)."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class ConstBinOp:
    op: str  # one of + - * / % << >> ** | & ^
    left: "ConstExpr"
    right: "ConstExpr"
    pos: int


@dataclass(frozen=True, slots=True)
class ConstUnOp:
    op: str  # - ~ +
    operand: "ConstExpr"
    pos: int


ConstExpr = Union[IntLit, ConstRef, ConstBinOp, ConstUnOp]


@dataclass(frozen=True, slots=True)
class PrimType:
    """UInt8..UInt64, SInt8..SInt64, Handle, UIntSize, UIntPtr."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class NamedType:
    """Reference to a typedef/struct/union, possibly package-qualified (``acme.Common.Name``)."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class StringType:
    bound: ConstExpr
    pos: int


@dataclass(frozen=True, slots=True)
class BytesType:
    bound: ConstExpr
    pos: int


@dataclass(frozen=True, slots=True)
class SequenceType:
    element: "TypeExpr"
    bound: ConstExpr
    pos: int


@dataclass(frozen=True, slots=True)
class ArrayType:
    element: "TypeExpr"
    bound: ConstExpr
    pos: int


@dataclass(frozen=True, slots=True)
class HandleType:
    """``handle<acme.Iface>`` (KCE 1.4 callable handle)."""

    interface: Name
    pos: int


TypeExpr = Union[PrimType, NamedType, StringType, BytesType, SequenceType, ArrayType, HandleType]


@dataclass(frozen=True, slots=True)
class IdlConst:
    type: TypeExpr
    name: Name
    value: ConstExpr
    pos: int


@dataclass(frozen=True, slots=True)
class IdlTypedef:
    type: TypeExpr
    name: Name
    pos: int


@dataclass(frozen=True, slots=True)
class IdlField:
    type: TypeExpr
    name: Name
    pos: int


@dataclass(frozen=True, slots=True)
class IdlStruct:
    name: Name
    fields: tuple[IdlField, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class IdlUnion:
    name: Name
    fields: tuple[IdlField, ...]
    pos: int


IdlDecl = Union[IdlConst, IdlTypedef, IdlStruct, IdlUnion]


@dataclass(frozen=True, slots=True)
class IdlParam:
    direction: str  # "in" | "out" | "error"
    type: TypeExpr
    name: Name
    pos: int


@dataclass(frozen=True, slots=True)
class IdlMethod:
    name: Name
    params: tuple[IdlParam, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class IdlInterface:
    methods: tuple[IdlMethod, ...]
    pos: int


@dataclass(frozen=True, eq=False)
class IdlFile:
    source: SourceText
    package: Name | None
    imports: tuple[Name, ...]
    decls: tuple[IdlDecl, ...]          # in file order (constants may refer to earlier ones)
    interface: IdlInterface | None


# ------------------------------------------------------------------------ CDL / EDL

@dataclass(frozen=True, slots=True)
class EndpointDecl:
    """``name : pkg.Iface`` inside ``endpoints { }`` (or legacy ``interfaces { }``)."""

    name: Name
    interface: Name
    pos: int


@dataclass(frozen=True, slots=True)
class ComponentInstanceDecl:
    """``inst : pkg.Component`` inside ``components { }``."""

    name: Name
    component: Name
    pos: int


@dataclass(frozen=True, eq=False)
class ComponentFile:
    """A CDL component or an EDL process class (both forms).

    ``kind`` is ``"component"`` (CDL) or ``"class"`` (EDL); ``form`` records the
    keyword used (``"component"``, ``"task class"``, ``"entity"``) so that linters can
    talk about old syntax.  Legacy ``interfaces { }`` blocks land in ``endpoints`` with
    ``legacy_interfaces`` set.
    """

    source: SourceText
    kind: str
    form: str
    name: Name
    security: Name | None
    endpoints: tuple[EndpointDecl, ...]
    components: tuple[ComponentInstanceDecl, ...]
    legacy_interfaces: bool = False


# ----------------------------------------------------------------------------- PSL
# Expressions and values (PSL values in `config`, arguments, messages).

@dataclass(frozen=True, slots=True)
class Lit:
    """A scalar literal: ``kind`` is "int", "text", "bool" or "unit" (value None)."""

    kind: str
    value: object
    pos: int


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple["Expr", ...]
    pos: int


@dataclass(frozen=True, slots=True)
class RecordField:
    """``key : value``; ``key`` is a Name (dictionary) or a Lit (map with literal keys)."""

    key: Union[Name, Lit]
    value: "Expr"
    pos: int


@dataclass(frozen=True, slots=True)
class RecordExpr:
    fields: tuple[RecordField, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Ref:
    """A dotted reference: ``message.req.count``, ``src_sid``, ``dst_sid``, a PAL variable.

    ``path`` is split on dots: ``("message", "req", "count")``.
    """

    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class FieldAccess:
    """``<expr>.name`` where the base is not a plain dotted name (e.g. after ``.[i]``)."""

    base: "Expr"
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class IndexExpr:
    """``<expr>.[<index>]`` (Struct model; zero-based)."""

    base: "Expr"
    index: "Expr"
    pos: int


@dataclass(frozen=True, slots=True)
class BinOp:
    """Binary operator: == != < <= > >= && || ==> + - * | & (and ^ << >> if written)."""

    op: str
    left: "Expr"
    right: "Expr"
    pos: int


@dataclass(frozen=True, slots=True)
class UnOp:
    """Unary operator: ``!`` (Bool), ``~`` (Math 1.3+), ``-`` (negation)."""

    op: str
    operand: "Expr"
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """``[object.]method <argument>`` — a rule in a body or an expression in a term.

    ``object`` is None when the prefix is omitted (``grant ()``, ``size (x)``).
    ``parenthesized`` tells the 1.2+ ``m (x)`` form from the 1.1 ``m x`` form; ``arg``
    is the single argument term (``Lit(kind="unit")`` for ``()``).
    """

    object: Name | None
    method: Name
    arg: "Expr"
    parenthesized: bool
    pos: int


Expr = Union[Lit, ListExpr, RecordExpr, Ref, FieldAccess, IndexExpr, BinOp, UnOp, Call]


# PSL types (in `type X = ...` declarations).

@dataclass(frozen=True, slots=True)
class TypeName:
    """A named type, possibly applied: ``UInt8``, ``Text``, ``State``, ``Set<State>``, ``Map<K, V>``."""

    name: Name
    args: tuple["PslType", ...]
    pos: int


@dataclass(frozen=True, slots=True)
class LitType:
    """A literal used as a singleton type: ``"open"``, ``12``, ``()``."""

    lit: Lit
    pos: int


@dataclass(frozen=True, slots=True)
class UnionType:
    members: tuple["PslType", ...]
    pos: int


@dataclass(frozen=True, slots=True)
class RecordType:
    fields: tuple[tuple[Name, "PslType"], ...]
    pos: int


@dataclass(frozen=True, slots=True)
class TupleType:
    items: tuple["PslType", ...]
    pos: int


PslType = Union[TypeName, LitType, UnionType, RecordType, TupleType]


# Binding bodies.

@dataclass(frozen=True, slots=True)
class Selector:
    """``key = value``; key is src, dst, endpoint, method, interface (or component)."""

    key: str
    value: Name
    pos: int


@dataclass(frozen=True, slots=True)
class Match:
    selectors: tuple[Selector, ...]
    audit: Name | None
    body: tuple["Stmt", ...]
    pos: int


@dataclass(frozen=True, slots=True)
class ChoiceArm:
    """One arm; ``case`` is None for the ``_`` default arm."""

    case: Lit | None
    body: tuple["Stmt", ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Choice:
    expr: Expr
    audit: Name | None
    arms: tuple[ChoiceArm, ...]
    pos: int


Stmt = Union[Call, Match, Choice]


# Top-level declarations.

@dataclass(frozen=True, slots=True)
class ExecuteDecl:
    """``execute: kl.core.Execute``"""

    interface: Name
    pos: int


@dataclass(frozen=True, slots=True)
class UsePsl:
    """``use nk.base._`` — ``path`` is the dotted path without the trailing ``._``."""

    path: Name
    pos: int


@dataclass(frozen=True, slots=True)
class UseEdl:
    """``use EDL acme.Hub``"""

    cls: Name
    pos: int


@dataclass(frozen=True, slots=True)
class TaskClassDecl:
    """``task class Alias : path.To.Edl`` (PSL 1.3 renaming include)."""

    cls: Name
    edl: Name
    pos: int


@dataclass(frozen=True, slots=True)
class TypeDecl:
    name: Name
    type: PslType
    pos: int


@dataclass(frozen=True, slots=True)
class PolicyObject:
    name: Name
    model: Name
    types: tuple[TypeDecl, ...]
    config: Expr | None
    pos: int


@dataclass(frozen=True, slots=True)
class AuditProfile:
    """``audit profile NAME = { level : { object : { kss : [...], ... } } }``"""

    name: Name
    levels: Expr
    pos: int


@dataclass(frozen=True, slots=True)
class AuditDefault:
    """``audit default = PROFILE LEVEL``"""

    profile: Name
    level: int
    pos: int


@dataclass(frozen=True, slots=True)
class Binding:
    event: str  # execute | request | response | error | security
    selectors: tuple[Selector, ...]
    audit: Name | None
    body: tuple[Stmt, ...]
    pos: int


# PAL tests.

@dataclass(frozen=True, slots=True)
class TestCase:
    """One PAL case.

    ``expect`` is "grant", "deny", "any" or None (omitted: means grant).  The
    ``a ~> b : ep.Method {..}`` shorthand is stored as event "request" with
    selectors src, dst, endpoint and method filled in and ``shorthand=True``.
    """

    var: Name | None
    expect: str | None
    name: str | None
    event: str
    selectors: tuple[Selector, ...]
    message: RecordExpr | None
    pos: int
    shorthand: bool = False


@dataclass(frozen=True, slots=True)
class TestSequence:
    name: str | None
    cases: tuple[TestCase, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class AssertBlock:
    name: str | None
    setup: tuple[TestCase, ...]
    sequences: tuple[TestSequence, ...]
    finally_: tuple[TestCase, ...]
    pos: int


PslDecl = Union[
    ExecuteDecl, UsePsl, UseEdl, TaskClassDecl, TypeDecl, PolicyObject,
    AuditProfile, AuditDefault, Binding, AssertBlock,
]


@dataclass(frozen=True, eq=False)
class PslFile:
    source: SourceText
    decls: tuple[PslDecl, ...]


# ----------------------------------------------------------------------- init.yaml
# YAML nodes carry line/column marks, not offsets, so these nodes keep spans.

from ..diagnostics import Span  # noqa: E402  (kept next to the nodes that use it)


@dataclass(frozen=True, slots=True)
class InitConnection:
    """One static channel owned by the client entity.

    ``id`` is the channel name.  In the ``id: {var: NAME, include: HEADER}`` form the
    name is a C macro from a header; ``id`` then holds the macro name and ``id_var`` /
    ``id_include`` record the form.
    """

    target: str
    id: str
    span: Span
    id_var: str | None = None
    id_include: str | None = None
    target_span: Span | None = None   # the `target` value, for "no such task" reports


@dataclass(frozen=True, slots=True)
class InitEntity:
    name: str                    # process class
    task: str                    # instance name (defaults to name)
    path: str                    # executable (defaults to last dotted segment of name)
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    connections: tuple[InitConnection, ...]
    span: Span
    task_given: bool = True
    name_span: Span | None = None      # the `name` value, for "no such class" reports


@dataclass(frozen=True, eq=False)
class InitFile:
    source: SourceText
    entities: tuple[InitEntity, ...]
