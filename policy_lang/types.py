"""Resolved IDL types, constant evaluation and the package resolver.

:class:`IdlResolver` turns :class:`~policy_lang.syntax.ast.IdlFile` syntax trees into
:class:`PackageDef` values: every constant evaluated to an ``int``, every typedef,
struct and union resolved to an :data:`IdlType`, and the interface (if any) as an
:class:`InterfaceDef` whose methods carry their MID (declaration order from 0).

Name resolution (nk's rules as far as the documentation states them):

* an unqualified name is looked up in the package itself, then in the imported
  packages in import order (the first hit wins; several hits give IDL014);
* a qualified name ``a.b.Pkg.Name`` names ``Name`` in package ``a.b.Pkg``, which
  should be the package itself or one of its imports (IDL010 otherwise; the name is
  still resolved so one missing ``import`` does not cascade);
* declarations may be used before they appear (the resolver is lazy and memoized);
  cycles among constants (IDL009), types (IDL003) and imports (IDL002) are errors.

Constant expressions use exact integer arithmetic with nk's documented operator
semantics: ``/`` rounds down (``-4 / 3 == -2``), the sign of ``%`` follows the divisor
(``-5 % 2 == 1``), ``**`` needs a non-negative exponent, shift amounts lie in
[0, 63], and ``~a == -a - 1``.  Every intermediate value must fit in 64 bits
(signed or unsigned, IDL013) and a constant's value must fit its declared type
(IDL004).  ``UIntSize`` and ``UIntPtr`` are taken as 64-bit.

Every failure is reported once, where it happens; anything that depends on a failed
definition is left out silently (a parameter whose type failed is dropped from its
method, a struct with a failed field is itself unresolved).
"""
from __future__ import annotations

import difflib
import operator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Union

from .diagnostics import Diagnostics, Span, define_code
from .syntax import ast

# ----------------------------------------------------------------------------- codes

IDL_UNKNOWN_NAME = define_code(
    "IDL001", "error", "unknown type or constant",
    "declare it in this package, or import the package that declares it (import a.b.Pkg)",
)
IDL_IMPORT_CYCLE = define_code(
    "IDL002", "error", "import cycle",
    "packages must not import each other in a circle; move the shared declarations into a "
    "package that both import",
)
IDL_RECURSIVE_TYPE = define_code(
    "IDL003", "error", "recursive type definition",
    "a struct, union or typedef cannot contain itself, directly or through other types",
)
IDL_CONST_RANGE = define_code(
    "IDL004", "error", "constant value out of range for its type",
    "change the value or declare the constant with a wider type (UInt64, SInt64)",
)
IDL_DIV_ZERO = define_code(
    "IDL005", "error", "division by zero in a constant expression",
    "the right operand of '/' and '%' must not be zero",
)
IDL_BAD_BOUND = define_code(
    "IDL006", "error", "size bound must be positive",
    "string<N>, bytes<N>, sequence<T, N> and array<T, N> need N >= 1",
)
IDL_CONST_TYPE = define_code(
    "IDL007", "error", "constant of a non-integer type",
    "constants have an integer type: UInt8 ... UInt64, SInt8 ... SInt64, UIntSize, UIntPtr",
)
IDL_WRONG_KIND = define_code(
    "IDL008", "error", "type used as a constant, or constant used as a type",
    "constant expressions use constants; parameter, field and element types use "
    "typedef, struct and union names",
)
IDL_RECURSIVE_CONST = define_code(
    "IDL009", "error", "constant defined in terms of itself",
    "break the cycle: one of the constants must have a value that does not depend on the others",
)
IDL_NOT_IMPORTED = define_code(
    "IDL010", "error", "package used without import",
    "add 'import a.b.Pkg' after the package declaration",
)
IDL_PACKAGE_MISMATCH = define_code(
    "IDL011", "error", "package name does not match the name the file was looked up by",
    "the package declaration must be the dotted path of the file: a/b/Name.idl declares "
    "'package a.b.Name'",
)
IDL_BAD_OPERAND = define_code(
    "IDL012", "error", "invalid operand",
    "exponents must not be negative and shift amounts must be between 0 and 63",
)
IDL_OVERFLOW = define_code(
    "IDL013", "error", "integer overflow in a constant expression",
    "every intermediate value must fit in 64 bits",
)
IDL_AMBIGUOUS = define_code(
    "IDL014", "warning", "name declared in several imported packages",
    "the first import wins; write the qualified name (a.b.Pkg.Name) to say which one you mean",
)
IDL_NO_INTERFACE = define_code(
    "IDL015", "error", "handle<> names a package without an interface",
    "handle<a.b.Iface> needs an IDL package that has an 'interface { }' block",
)
IDL_PACKAGE_NOT_FOUND = define_code(
    "IDL016", "error", "IDL package not found",
    "check the dotted name (each dot is a folder: a.b.Name is a/b/Name.idl) or add its folder with -I DIR",
)
IDL_TOO_DEEP = define_code(
    "IDL017", "error", "definitions nested too deeply",
    "split deeply nested expressions or types into named constants and typedefs",
)

# ----------------------------------------------------------------------------- types


@dataclass(frozen=True)
class IntType:
    name: str
    bits: int
    signed: bool

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True)
class HandleType:
    """``Handle`` (interface None) or the KCE 1.4 callable ``handle<a.b.Iface>``."""

    interface: str | None


@dataclass(frozen=True)
class StringType:
    bound: int


@dataclass(frozen=True)
class BytesType:
    bound: int


@dataclass(frozen=True)
class SequenceType:
    element: "IdlType"
    bound: int


@dataclass(frozen=True)
class ArrayType:
    element: "IdlType"
    length: int


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: "IdlType"


@dataclass(frozen=True)
class StructType:
    name: str  # qualified: pkg.Name
    fields: tuple[FieldDef, ...]

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class UnionType:
    name: str  # qualified: pkg.Name
    fields: tuple[FieldDef, ...]

    def field(self, name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.name == name), None)


IdlType = Union[IntType, HandleType, StringType, BytesType, SequenceType, ArrayType, StructType, UnionType]


@dataclass(frozen=True)
class ParamDef:
    name: str
    direction: str  # "in" | "out" | "error"
    type: IdlType
    span: Span | None


@dataclass(frozen=True)
class MethodDef:
    """A method of an interface.

    ``untyped`` lists parameters known by name and direction only, as ``(name,
    direction)`` pairs: the kernel's methods as the public documentation describes
    them (it names each parameter but gives no IDL type).  They are kept out of
    ``params`` so that every back end that works from types sees a method without
    them, and the few places that must know they exist (message structure, ``message.x``
    in a policy, the prover's "unknown value") read them from here.
    """

    name: str
    index: int  # MID: declaration order from 0
    params: tuple[ParamDef, ...]
    span: Span | None
    untyped: tuple[tuple[str, str], ...] = ()

    def untyped_names(self, direction: str) -> tuple[str, ...]:
        return tuple(n for n, d in self.untyped if d == direction)

    @property
    def in_params(self) -> tuple[ParamDef, ...]:
        return tuple(p for p in self.params if p.direction == "in")

    @property
    def out_params(self) -> tuple[ParamDef, ...]:
        return tuple(p for p in self.params if p.direction == "out")

    @property
    def error_params(self) -> tuple[ParamDef, ...]:
        return tuple(p for p in self.params if p.direction == "error")


@dataclass(frozen=True)
class InterfaceDef:
    """An interface: the methods of one IDL package.

    ``opaque``: the package is outside the solution (an SDK interface without
    ``--sdk``, or one that could not be found): its methods are unknown, so nothing
    addressed through it can be checked against the IDL.
    """

    name: str  # the package name
    methods: tuple[MethodDef, ...]
    span: Span | None
    opaque: bool = False

    def method(self, name: str) -> MethodDef | None:
        """The method called ``name`` (the first one if the IDL repeats a name)."""
        return next((m for m in self.methods if m.name == name), None)

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.methods)


@dataclass(frozen=True)
class PackageDef:
    name: str
    file: str  # path shown in diagnostics
    consts: Mapping[str, int]
    types: Mapping[str, IdlType]
    interface: InterfaceDef | None


INT_TYPES: Mapping[str, IntType] = MappingProxyType({
    t.name: t
    for t in (
        IntType("UInt8", 8, False), IntType("UInt16", 16, False),
        IntType("UInt32", 32, False), IntType("UInt64", 64, False),
        IntType("SInt8", 8, True), IntType("SInt16", 16, True),
        IntType("SInt32", 32, True), IntType("SInt64", 64, True),
        IntType("UIntSize", 64, False), IntType("UIntPtr", 64, False),
    )
})
HANDLE = HandleType(None)


def type_str(t: IdlType) -> str:
    """The type as a user writes it: ``sequence<acme.Telemetry.Sample, 40>``."""
    if isinstance(t, IntType):
        return t.name
    if isinstance(t, HandleType):
        return "Handle" if t.interface is None else f"handle<{t.interface}>"
    if isinstance(t, StringType):
        return f"string<{t.bound}>"
    if isinstance(t, BytesType):
        return f"bytes<{t.bound}>"
    if isinstance(t, SequenceType):
        return f"sequence<{type_str(t.element)}, {t.bound}>"
    if isinstance(t, ArrayType):
        return f"array<{type_str(t.element)}, {t.length}>"
    if isinstance(t, (StructType, UnionType)):
        return t.name
    return repr(t)  # pragma: no cover - not an IdlType


# ----------------------------------------------------------------------------- resolver

_BINARY: Mapping[str, Callable[[int, int], int]] = MappingProxyType({
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.floordiv,   # rounds down: -4 / 3 == -2 (nk documents this)
    "%": operator.mod,        # sign of the divisor: -5 % 2 == 1, 5 % -2 == -1
    "**": operator.pow,
    "<<": operator.lshift,
    ">>": operator.rshift,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
})
_WIDE_MIN = -(1 << 63)
_WIDE_MAX = (1 << 64) - 1
_BUSY = object()
_FAILED = object()


class _Pkg:
    """One package while (and after) it is resolved."""

    def __init__(self, name: str, file: ast.IdlFile):
        self.name = name
        self.file = file
        self.source = file.source
        self.decls: dict[str, ast.IdlDecl] = {}
        for d in file.decls:
            self.decls.setdefault(d.name.text, d)
        self.imports: list[str] = []          # imported package names, in order, deduplicated
        self.imported: dict[str, _Pkg | None] = {}
        self.values: dict[str, object] = {}   # name -> int | IdlType | _BUSY | _FAILED
        self.ambiguous_reported: set[str] = set()

    def span(self, pos: int, length: int = 0) -> Span:
        return self.source.span(pos, pos + length if length else None)

    @property
    def any_import_failed(self) -> bool:
        return any(p is None for p in self.imported.values())


class IdlResolver:
    """Resolves IDL packages on demand, each once.

    ``lookup(package, at)`` returns the parsed file declaring ``package`` (or None;
    it may report SRC001 at ``at`` itself).  When the lookup of an *imported* or
    ``handle<>`` package returns None without reporting anything, the resolver
    reports IDL016 at the import.  For the package asked for through
    :meth:`package` the caller decides what a missing package means.
    """

    def __init__(self, lookup: Callable[[str, Span | None], ast.IdlFile | None], diags: Diagnostics,
                 outside: Callable[[str, Span | None], bool] | None = None):
        self._lookup = lookup
        self.diags = diags
        # Asked about a package that cannot be found: True when it is outside the
        # solution (an SDK package) and has been reported as such, instead of IDL016.
        self._outside = outside
        self._files: dict[str, ast.IdlFile | None] = {}
        self._pkgs: dict[str, _Pkg] = {}
        self._done: dict[str, PackageDef | None] = {}
        self._stack: list[str] = []

    # ------------------------------------------------------------------ public API

    def package(self, name: str, at: Span | None = None) -> PackageDef | None:
        """The resolved package ``name`` (with its imports, transitively); memoized."""
        if name in self._done:
            return self._done[name]
        if name in self._stack:  # asked for while it is being resolved
            return None
        file, _ = self._file(name, at)
        if file is None:
            self._done[name] = None
            return None
        pkg = _Pkg(name, file)
        self._pkgs[name] = pkg
        self._stack.append(name)
        try:
            result = self._build(pkg)
        except RecursionError:
            self.diags.add(IDL_TOO_DEEP, f"package {name}: definitions nested too deeply to resolve", at)
            result = None
        finally:
            self._stack.pop()
        self._done[name] = result
        return result

    # ------------------------------------------------------------------ building

    def _file(self, name: str, at: Span | None) -> tuple[ast.IdlFile | None, bool]:
        """(file, reported): ``reported`` is True when the lookup added a diagnostic."""
        if name in self._files:
            return self._files[name], True
        before = len(self.diags)
        file = self._lookup(name, at)
        self._files[name] = file
        return file, len(self.diags) > before

    def _build(self, pkg: _Pkg) -> PackageDef:
        f = pkg.file
        if f.package is not None and f.package.text != pkg.name:
            self.diags.add(
                IDL_PACKAGE_MISMATCH,
                f"file declares package {f.package.text} but was looked up as {pkg.name}",
                pkg.span(f.package.pos, len(f.package.text)),
            )
        for imp in f.imports:
            self._import(pkg, imp)
        for d in f.decls:
            if pkg.decls.get(d.name.text) is not d:
                continue  # duplicate declaration (SYN206 already reported)
            self._member(pkg, d.name.text)
        interface = self._interface(pkg) if f.interface is not None else None
        consts = {n: v for n, v in pkg.values.items() if isinstance(v, int) and not isinstance(v, bool)}
        types = {
            n: v for n, v in pkg.values.items()
            if v is not _BUSY and v is not _FAILED and not isinstance(v, int)
        }
        return PackageDef(
            name=pkg.name,
            file=pkg.source.path,
            consts=MappingProxyType(consts),
            types=MappingProxyType(types),
            interface=interface,
        )

    def _import(self, pkg: _Pkg, imp: ast.Name) -> None:
        name = imp.text
        if name in pkg.imported:
            return
        at = pkg.span(imp.pos, len(name))
        pkg.imports.append(name)
        if name in self._stack:
            chain = self._stack[self._stack.index(name):] + [name]
            self.diags.add(
                IDL_IMPORT_CYCLE,
                "import cycle: " + " -> ".join(chain) if len(chain) > 2 else f"package {name} imports itself",
                at,
            )
            pkg.imported[name] = self._pkgs.get(name)  # still usable for lookups
            return
        if name not in self._done:
            before = len(self.diags)
            self.package(name, at)
            if self._done.get(name) is None and name not in self._pkgs and len(self.diags) == before \
                    and not (self._outside and self._outside(name, at)):
                self.diags.add(IDL_PACKAGE_NOT_FOUND, f"imported package {name} not found", at)
        pkg.imported[name] = self._pkgs.get(name)

    def _interface(self, pkg: _Pkg) -> InterfaceDef:
        iface = pkg.file.interface
        assert iface is not None
        methods = []
        for index, m in enumerate(iface.methods):
            params = []
            for p in m.params:
                t = self._type(pkg, p.type)
                if t is not None:
                    params.append(ParamDef(p.name.text, p.direction, t, pkg.span(p.pos)))
            methods.append(MethodDef(m.name.text, index, tuple(params), pkg.span(m.pos, len(m.name.text))))
        return InterfaceDef(pkg.name, tuple(methods), pkg.span(iface.pos))

    # ------------------------------------------------------------------ names

    def _find(self, pkg: _Pkg, name: str, pos: int) -> tuple[_Pkg, str] | None | bool:
        """Where ``name`` (as written in ``pkg``) is declared.

        Returns (owner, member), or False when it is unknown but a diagnostic has
        already explained why (missing import), or None when it is simply unknown.
        """
        if "." in name:
            prefix, _, member = name.rpartition(".")
            if prefix == pkg.name:
                owner: _Pkg | None = pkg
            elif prefix in pkg.imported:
                owner = pkg.imported[prefix]
                if owner is None:
                    return False  # the import failed and was reported
            else:
                self.diags.add(
                    IDL_NOT_IMPORTED,
                    f"{name} refers to package {prefix}, which {pkg.name} does not import",
                    pkg.span(pos, len(name)),
                )
                if prefix not in self._pkgs:
                    self.package(prefix, pkg.span(pos, len(prefix)))
                owner = self._pkgs.get(prefix)
                if owner is None:
                    return False
            if member in owner.decls:
                return owner, member
            return None
        if name in pkg.decls:
            return pkg, name
        hits = [p for p in pkg.imported.values() if p is not None and name in p.decls]
        if not hits:
            return False if pkg.any_import_failed else None
        if len(hits) > 1 and name not in pkg.ambiguous_reported:
            pkg.ambiguous_reported.add(name)
            self.diags.add(
                IDL_AMBIGUOUS,
                f"{name} is declared in " + ", ".join(p.name for p in hits) + f"; using {hits[0].name}.{name}",
                pkg.span(pos, len(name)),
            )
        return hits[0], name

    def _unknown(self, pkg: _Pkg, name: str, pos: int, what: str, want_const: bool) -> None:
        candidates = set()
        for p in [pkg] + [q for q in pkg.imported.values() if q is not None]:
            for n, d in p.decls.items():
                if isinstance(d, ast.IdlConst) == want_const:
                    candidates.add(n)
                    candidates.add(f"{p.name}.{n}")
        close = difflib.get_close_matches(name, sorted(candidates), n=1)
        hint = f"did you mean {close[0]}?" if close else None
        self.diags.add(IDL_UNKNOWN_NAME, f"unknown {what} {name}", pkg.span(pos, len(name)), hint=hint)

    def _member(self, owner: _Pkg, member: str, ref: _Pkg | None = None, pos: int | None = None):
        """Value of a declaration: an int (constant) or an IdlType; None on failure."""
        state = owner.values.get(member)
        if state is _BUSY:
            ref = ref or owner
            decl = owner.decls[member]
            where = ref.span(pos, len(member)) if pos is not None else ref.span(decl.pos)
            if isinstance(decl, ast.IdlConst):
                self.diags.add(IDL_RECURSIVE_CONST, f"constant {owner.name}.{member} depends on itself", where)
            else:
                self.diags.add(IDL_RECURSIVE_TYPE, f"type {owner.name}.{member} refers to itself", where)
            return None
        if state is _FAILED:
            return None
        if state is not None:
            return state
        owner.values[member] = _BUSY
        decl = owner.decls[member]
        if isinstance(decl, ast.IdlConst):
            value = self._const(owner, decl)
        elif isinstance(decl, ast.IdlTypedef):
            value = self._type(owner, decl.type)
        else:
            value = self._record(owner, decl)
        owner.values[member] = _FAILED if value is None else value
        return value

    # ------------------------------------------------------------------ types

    def _record(self, pkg: _Pkg, decl: ast.IdlStruct | ast.IdlUnion):
        fields = []
        ok = True
        for f in decl.fields:
            t = self._type(pkg, f.type)
            if t is None:
                ok = False
                continue
            fields.append(FieldDef(f.name.text, t))
        if not ok:
            return None
        cls = StructType if isinstance(decl, ast.IdlStruct) else UnionType
        return cls(f"{pkg.name}.{decl.name.text}", tuple(fields))

    def _type(self, pkg: _Pkg, t: ast.TypeExpr) -> IdlType | None:
        if isinstance(t, ast.PrimType):
            if t.name == "Handle":
                return HANDLE
            return INT_TYPES[t.name]
        if isinstance(t, ast.NamedType):
            found = self._find(pkg, t.name, t.pos)
            if not found:
                if found is None:
                    self._unknown(pkg, t.name, t.pos, "type", want_const=False)
                return None
            owner, member = found
            if isinstance(owner.decls[member], ast.IdlConst):
                self.diags.add(IDL_WRONG_KIND, f"{t.name} is a constant, not a type", pkg.span(t.pos, len(t.name)))
                return None
            return self._member(owner, member, pkg, t.pos)
        if isinstance(t, ast.StringType):
            n = self._bound(pkg, t.bound, "string")
            return None if n is None else StringType(n)
        if isinstance(t, ast.BytesType):
            n = self._bound(pkg, t.bound, "bytes")
            return None if n is None else BytesType(n)
        if isinstance(t, (ast.SequenceType, ast.ArrayType)):
            element = self._type(pkg, t.element)
            what = "sequence" if isinstance(t, ast.SequenceType) else "array"
            n = self._bound(pkg, t.bound, what)
            if element is None or n is None:
                return None
            return SequenceType(element, n) if what == "sequence" else ArrayType(element, n)
        if isinstance(t, ast.HandleType):
            self._check_handle(pkg, t.interface)
            return HandleType(t.interface.text)
        return None  # pragma: no cover - not a TypeExpr

    def _bound(self, pkg: _Pkg, expr: ast.ConstExpr, what: str) -> int | None:
        value = self._eval(pkg, expr)
        if value is None:
            return None
        if value <= 0:
            self.diags.add(
                IDL_BAD_BOUND, f"{what} size bound is {value}; it must be at least 1", pkg.span(_start(expr))
            )
            return None
        return value

    def _check_handle(self, pkg: _Pkg, iface: ast.Name) -> None:
        name = iface.text
        at = pkg.span(iface.pos, len(name))
        if name in self._pkgs:
            file: ast.IdlFile | None = self._pkgs[name].file
            reported = True
        else:
            file, reported = self._file(name, at)
        if file is None:
            if not reported and not (self._outside and self._outside(name, at)):
                self.diags.add(IDL_PACKAGE_NOT_FOUND, f"handle<{name}>: no IDL package {name}", at)
        elif file.interface is None:
            self.diags.add(IDL_NO_INTERFACE, f"handle<{name}>: package {name} has no interface block", at)

    # ------------------------------------------------------------------ constants

    def _const(self, pkg: _Pkg, decl: ast.IdlConst) -> int | None:
        t = self._type(pkg, decl.type)
        if t is None:
            return None
        if not isinstance(t, IntType):
            self.diags.add(
                IDL_CONST_TYPE,
                f"constant {decl.name.text} has type {type_str(t)}; constants must be integers",
                pkg.span(decl.type.pos),
            )
            return None
        value = self._eval(pkg, decl.value)
        if value is None:
            return None
        if not t.min <= value <= t.max:
            self.diags.add(
                IDL_CONST_RANGE,
                f"constant {decl.name.text} = {value} does not fit {t.name} ({t.min}..{t.max})",
                pkg.span(decl.name.pos, len(decl.name.text)),
            )
        return value

    def _eval(self, pkg: _Pkg, e: ast.ConstExpr) -> int | None:
        if isinstance(e, ast.IntLit):
            if e.value > _WIDE_MAX:
                self.diags.add(IDL_OVERFLOW, f"literal {e.value} does not fit in 64 bits", pkg.span(e.pos))
                return None
            return e.value
        if isinstance(e, ast.ConstRef):
            found = self._find(pkg, e.name, e.pos)
            if not found:
                if found is None:
                    self._unknown(pkg, e.name, e.pos, "constant", want_const=True)
                return None
            owner, member = found
            if not isinstance(owner.decls[member], ast.IdlConst):
                self.diags.add(IDL_WRONG_KIND, f"{e.name} is a type, not a constant", pkg.span(e.pos, len(e.name)))
                return None
            value = self._member(owner, member, pkg, e.pos)
            return value if isinstance(value, int) else None
        if isinstance(e, ast.ConstUnOp):
            v = self._eval(pkg, e.operand)
            if v is None:
                return None
            result = -v if e.op == "-" else ~v if e.op == "~" else v
            return self._checked(pkg, result, e.pos, e.op)
        if isinstance(e, ast.ConstBinOp):
            a = self._eval(pkg, e.left)
            b = self._eval(pkg, e.right)
            if a is None or b is None:
                return None
            return self._binop(pkg, e, a, b)
        return None  # pragma: no cover - not a ConstExpr

    def _binop(self, pkg: _Pkg, e: ast.ConstBinOp, a: int, b: int) -> int | None:
        op = e.op
        at = pkg.span(e.pos, len(op))
        if op in ("/", "%") and b == 0:
            self.diags.add(IDL_DIV_ZERO, f"division by zero: {a} {op} 0", at)
            return None
        if op in ("<<", ">>") and not 0 <= b <= 63:
            self.diags.add(IDL_BAD_OPERAND, f"shift amount {b} is outside 0..63", at)
            return None
        if op == "**":
            if b < 0:
                self.diags.add(IDL_BAD_OPERAND, f"negative exponent {b}", at)
                return None
            if abs(a) > 1 and b > 128:  # certainly beyond 64 bits; do not compute it
                self.diags.add(IDL_OVERFLOW, f"{a} ** {b} does not fit in 64 bits", at)
                return None
        return self._checked(pkg, _BINARY[op](a, b), e.pos, op)

    def _checked(self, pkg: _Pkg, value: int, pos: int, op: str) -> int | None:
        if _WIDE_MIN <= value <= _WIDE_MAX:
            return value
        self.diags.add(IDL_OVERFLOW, f"'{op}' gives {value}, which does not fit in 64 bits", pkg.span(pos, len(op)))
        return None


def _start(e: ast.ConstExpr) -> int:
    """Offset where the expression's text starts (its leftmost token)."""
    while isinstance(e, ast.ConstBinOp):
        e = e.left
    return e.pos
