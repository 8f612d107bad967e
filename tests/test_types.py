"""IDL resolver: constant evaluation, ranges, names across imports, cycles, type_str.

Also a property test: random mutations of valid IDL / CDL / EDL texts never raise,
they only produce diagnostics.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_lang.diagnostics import Diagnostics, Severity, Span, code_info
from policy_lang.source import SourceText
from policy_lang.syntax.components import parse_component
from policy_lang.syntax.idl import parse_idl
from policy_lang.types import (
    ArrayType, BytesType, FieldDef, HandleType, IdlResolver, IntType, InterfaceDef, MethodDef,
    PackageDef, ParamDef, SequenceType, StringType, StructType, UnionType, type_str,
)


class World:
    """A fake loader: package name -> IDL text; records lookups."""

    def __init__(self, files: dict[str, str], report_missing: bool = False):
        self.files = files
        self.diags = Diagnostics()
        self.calls: list[str] = []
        self.report_missing = report_missing
        self.resolver = IdlResolver(self.lookup, self.diags)

    def lookup(self, name: str, at: Span | None):
        self.calls.append(name)
        text = self.files.get(name)
        if text is None:
            if self.report_missing:
                from policy_lang.diagnostics import SRC_NOT_FOUND
                self.diags.add(SRC_NOT_FOUND, f"file not found: {name}", at)
            return None
        path = name.replace(".", "/") + ".idl"
        return parse_idl(SourceText(path=path, text=text), self.diags)

    def package(self, name: str) -> PackageDef | None:
        return self.resolver.package(name)

    def codes(self) -> list[str]:
        return self.diags.codes()

    def where(self, code: str) -> list[tuple[str, int, int]]:
        return [(d.span.file, d.span.line, d.span.column) for d in self.diags if d.code == code]


def one(text: str, name: str = "a.B") -> tuple[PackageDef | None, World]:
    w = World({name: text})
    return w.package(name), w


def const(expr: str, ctype: str = "SInt64", extra: str = "") -> tuple[int | None, World]:
    p, w = one(f"package a.B\n{extra}const {ctype} C = {expr};\n")
    return p.consts.get("C"), w


# ----------------------------------------------------------------------------- types

def test_int_type_ranges():
    assert IntType("UInt8", 8, False).min == 0 and IntType("UInt8", 8, False).max == 255
    assert IntType("SInt8", 8, True).min == -128 and IntType("SInt8", 8, True).max == 127
    assert IntType("UInt64", 64, False).max == 2**64 - 1
    assert IntType("SInt32", 32, True).min == -(2**31)


def test_primitive_and_composite_types_resolve():
    p, w = one(
        "package a.B\n"
        "const UInt32 N = 4;\n"
        "typedef UIntSize Size;\n"
        "typedef Handle H;\n"
        "typedef string<N> S;\n"
        "typedef bytes<N * 2> Y;\n"
        "typedef sequence<S, 3> Q;\n"
        "typedef array<SInt16, N> A;\n"
        "struct P { SInt32 x; SInt32 y; }\n"
        "union U { UInt8 code; P point; }\n"
    )
    assert w.codes() == []
    t = p.types
    assert t["Size"] == IntType("UIntSize", 64, False)
    assert t["H"] == HandleType(None)
    assert t["S"] == StringType(4)
    assert t["Y"] == BytesType(8)
    assert t["Q"] == SequenceType(StringType(4), 3)
    assert t["A"] == ArrayType(IntType("SInt16", 16, True), 4)
    assert t["P"] == StructType("a.B.P", (FieldDef("x", IntType("SInt32", 32, True)),
                                          FieldDef("y", IntType("SInt32", 32, True))))
    assert t["U"] == UnionType("a.B.U", (FieldDef("code", IntType("UInt8", 8, False)), FieldDef("point", t["P"])))
    assert p.consts == {"N": 4}
    assert p.name == "a.B" and p.file == "a/B.idl" and p.interface is None


def test_type_str():
    sample = StructType("acme.Telemetry.Sample", ())
    assert type_str(SequenceType(sample, 40)) == "sequence<acme.Telemetry.Sample, 40>"
    assert type_str(ArrayType(IntType("UInt8", 8, False), 16)) == "array<UInt8, 16>"
    assert type_str(HandleType(None)) == "Handle"
    assert type_str(HandleType("acme.Telemetry")) == "handle<acme.Telemetry>"
    assert type_str(StringType(8)) == "string<8>" and type_str(BytesType(3)) == "bytes<3>"
    assert type_str(UnionType("a.B.U", ())) == "a.B.U"


def test_interface_methods_and_params():
    p, w = one(
        "package acme.Telemetry\n"
        "typedef sequence<UInt8, 8> Blob;\n"
        "interface {\n"
        "    Push(in Blob data, error SInt32 rc);\n"
        "    Flush(in UInt32 n, out UInt32 stored, error SInt32 rc, error string<16> why);\n"
        "    Reset();\n"
        "}\n",
        "acme.Telemetry",
    )
    assert w.codes() == []
    iface = p.interface
    assert isinstance(iface, InterfaceDef) and iface.name == "acme.Telemetry"
    assert [(m.name, m.index) for m in iface.methods] == [("Push", 0), ("Flush", 1), ("Reset", 2)]
    flush = iface.method("Flush")
    assert isinstance(flush, MethodDef)
    assert [x.name for x in flush.in_params] == ["n"]
    assert [x.name for x in flush.out_params] == ["stored"]
    assert [(x.name, type_str(x.type)) for x in flush.error_params] == [("rc", "SInt32"), ("why", "string<16>")]
    assert iface.method("Nope") is None
    push = iface.method("Push")
    assert push.params[0] == ParamDef("data", "in", SequenceType(IntType("UInt8", 8, False), 8), push.params[0].span)
    assert push.span.line == 4 and push.span.column == 5
    assert push.params[0].span.column == 10
    assert iface.span.line == 3
    assert iface.method_names == ("Push", "Flush", "Reset")


# ----------------------------------------------------------------------------- constants

@pytest.mark.parametrize("expr,value", [
    ("(2 << 3) ** 2", 256),
    ("0x10 + 0o10 + 10", 34),
    ("7 - 10", -3),
    ("6 * 7", 42),
    ("4 / 3", 1),
    ("-4 / 3", -2),          # rounds down
    ("-5 % 2", 1),           # sign of the divisor
    ("5 % -2", -1),
    ("2 ** 10", 1024),
    ("1 << 63", 2**63),
    ("256 >> 4", 16),
    ("0xF0 | 0x0F", 255),
    ("0xFF & 0x0F", 15),
    ("0xFF ^ 0x0F", 0xF0),
    ("-(3)", -3),
    ("~0", -1),
    ("+7", 7),
    ("(MaxLogMessageSize + 4) * MaxLogMessageCount", 26000),
])
def test_constant_evaluation(expr, value):
    extra = "const UInt32 MaxLogMessageSize = (2 << 3) ** 2;\nconst UInt32 MaxLogMessageCount = 100;\n"
    got, w = const(expr, "SInt64" if value <= 2**63 - 1 else "UInt64", extra)
    assert [c for c in w.codes() if not c.startswith("SYN2")] == []
    assert got == value


def test_forward_references_are_allowed():
    p, w = one("package a.B\nconst UInt32 A = B + 1;\nconst UInt32 B = 2;\ntypedef string<B> S;\n")
    assert w.codes() == [] and p.consts == {"A": 3, "B": 2} and p.types["S"] == StringType(2)


def test_constant_of_typedef_integer_type():
    p, w = one("package a.B\ntypedef UInt8 Code;\nconst Code Ok = 0;\n")
    assert w.codes() == [] and p.consts["Ok"] == 0


@pytest.mark.parametrize("ctype,expr,ok", [
    ("UInt8", "255", True), ("UInt8", "256", False), ("UInt8", "-1", False),
    ("SInt8", "-128", True), ("SInt8", "-129", False), ("SInt8", "127", True), ("SInt8", "128", False),
    ("UInt16", "0xFFFF", True), ("UInt16", "0x10000", False),
    ("SInt32", "-(2 ** 31)", True), ("UInt32", "2 ** 32", False),
    ("UInt64", "0xFFFFFFFFFFFFFFFF", True), ("SInt64", "0xFFFFFFFFFFFFFFFF", False),
    ("UIntPtr", "2 ** 40", True),
])
def test_range_check_against_declared_type(ctype, expr, ok):
    value, w = const(expr, ctype)
    if ok:
        assert w.codes() == []
    else:
        assert w.codes() == ["IDL004"]
        assert w.where("IDL004") == [("a/B.idl", 2, len(f"const {ctype} ") + 1)]
        assert w.diags.items[0].severity is Severity.ERROR
    assert value is not None  # the value is kept either way


@pytest.mark.parametrize("expr,code,col", [
    ("1 / 0", "IDL005", 20),
    ("1 % (2 - 2)", "IDL005", 20),
    ("2 ** -1", "IDL012", 20),
    ("1 << 64", "IDL012", 20),
    ("1 >> -1", "IDL012", 20),
    ("2 ** 64", "IDL013", 20),
    ("0xFFFFFFFFFFFFFFFF + 1", "IDL013", 37),
    ("-0x8000000000000000 - 1", "IDL013", 38),
    ("18446744073709551616", "IDL013", 18),
    ("2 ** 100000000", "IDL013", 20),
])
def test_evaluation_errors(expr, code, col):
    value, w = const(expr)
    assert w.codes() == [code]
    assert w.where(code) == [("a/B.idl", 2, col)]
    assert value is None


def test_failed_constant_does_not_cascade():
    p, w = one("package a.B\nconst UInt32 A = 1 / 0;\nconst UInt32 B = A + 1;\ntypedef string<B> S;\n")
    assert w.codes() == ["IDL005"]
    assert "A" not in p.consts and "B" not in p.consts and "S" not in p.types


def test_recursive_constants():
    p, w = one("package a.B\nconst UInt32 A = B + 1;\nconst UInt32 B = A * 2;\n")
    assert w.codes() == ["IDL009"]
    assert w.where("IDL009") == [("a/B.idl", 3, 18)]
    assert p.consts == {}


def test_constant_with_non_integer_type():
    _, w = one("package a.B\nconst Handle H = 1;\n")
    assert w.codes() == ["IDL007"]
    assert w.where("IDL007") == [("a/B.idl", 2, 7)]


def test_wrong_kind_of_name():
    _, w = one("package a.B\nconst UInt32 N = 4;\nstruct S { UInt8 x; }\ntypedef N T;\nconst UInt32 M = S + 1;\n")
    assert w.codes() == ["IDL008", "IDL008"]
    assert w.where("IDL008") == [("a/B.idl", 4, 9), ("a/B.idl", 5, 18)]


@pytest.mark.parametrize("decl,col", [
    ("typedef string<0> S;", 16),
    ("typedef bytes<1 - 2> S;", 15),
    ("typedef sequence<UInt8, 0> S;", 25),
    ("typedef array<UInt8, -3> S;", 22),
])
def test_non_positive_bounds(decl, col):
    p, w = one(f"package a.B\n{decl}\n")
    assert w.codes() == ["IDL006"]
    assert w.where("IDL006") == [("a/B.idl", 2, col)]
    assert "S" not in p.types


# ----------------------------------------------------------------------------- names and imports

COMMON = (
    "package acme.Common\n"
    "const UInt32 Max = 8;\n"
    "typedef string<Max> Name;\n"
    "struct Point { SInt32 x; SInt32 y; }\n"
)


def test_qualified_typedef_and_constant_across_imports():
    w = World({
        "acme.Common": COMMON,
        "acme.Telemetry": (
            "package acme.Telemetry\nimport acme.Common\n"
            "const UInt32 Batch = acme.Common.Max * 5;\n"
            "struct Sample { acme.Common.Name tag; acme.Common.Point at; }\n"
            "interface { Push(in sequence<Sample, Batch> items); }\n"
        ),
    })
    p = w.package("acme.Telemetry")
    assert w.codes() == []
    assert p.consts == {"Batch": 40}
    sample = p.types["Sample"]
    assert sample.fields[0] == FieldDef("tag", StringType(8))
    assert sample.fields[1].type.name == "acme.Common.Point"
    (param,) = p.interface.method("Push").params
    assert type_str(param.type) == "sequence<acme.Telemetry.Sample, 40>"
    common = w.package("acme.Common")
    assert common is not None and common.types["Name"] == StringType(8)


def test_unqualified_names_from_imports():
    w = World({
        "kl.core.Types": "package kl.core.Types\ntypedef UInt8 Char;\nconst UInt8 Zero = 0;\n",
        "test.IEcho": (
            "package test.IEcho\nimport kl.core.Types\n"
            "struct SimpleStruct { Char c; }\nconst UInt8 One = Zero + 1;\n"
        ),
    })
    p = w.package("test.IEcho")
    assert w.codes() == []
    assert p.types["SimpleStruct"].fields[0].type == IntType("UInt8", 8, False)
    assert p.consts["One"] == 1


def test_local_names_shadow_imports():
    w = World({"a.C": "package a.C\nconst UInt8 X = 1;\n",
               "a.B": "package a.B\nimport a.C\nconst UInt8 X = 2;\nconst UInt8 Y = X;\n"})
    assert w.package("a.B").consts["Y"] == 2 and w.codes() == []


def test_ambiguous_name_in_two_imports():
    w = World({
        "a.C": "package a.C\nconst UInt8 X = 1;\n",
        "a.D": "package a.D\nconst UInt8 X = 2;\n",
        "a.B": "package a.B\nimport a.C\nimport a.D\nconst UInt8 Y = X + X;\n",
    })
    p = w.package("a.B")
    assert w.codes() == ["IDL014"]  # reported once
    assert w.diags.items[0].severity is Severity.WARNING
    assert p.consts["Y"] == 2


def test_qualified_reference_without_import():
    w = World({"acme.Common": COMMON, "a.B": "package a.B\ntypedef acme.Common.Name N;\n"})
    p = w.package("a.B")
    assert w.codes() == ["IDL010"]
    assert w.where("IDL010") == [("a/B.idl", 2, 9)]
    assert p.types["N"] == StringType(8)  # still resolved


def test_unknown_type_used_as_parameter():
    p, w = one("package a.B\ninterface {\n  Get(in UInt8 a, out Missing m);\n}\n")
    assert w.codes() == ["IDL001"]
    assert w.where("IDL001") == [("a/B.idl", 3, 23)]
    get = p.interface.method("Get")
    assert [x.name for x in get.params] == ["a"]  # the broken parameter is left out
    assert get.index == 0


def test_unknown_name_suggests_a_close_one():
    _, w = one("package a.B\nconst UInt32 MaxName = 1;\ntypedef string<MaxNmae> S;\n")
    assert w.codes() == ["IDL001"]
    assert "MaxName" in w.diags.items[0].hint


def test_unknown_member_of_imported_package():
    w = World({"acme.Common": COMMON, "a.B": "package a.B\nimport acme.Common\ntypedef acme.Common.Nope N;\n"})
    w.package("a.B")
    assert w.codes() == ["IDL001"]


def test_missing_import_reported_by_the_resolver():
    w = World({"a.B": "package a.B\nimport a.Gone\ntypedef Thing T;\ntypedef a.Gone.X Y;\n"})
    p = w.package("a.B")
    assert w.codes() == ["IDL016"]  # no cascade of unknown names
    assert w.where("IDL016") == [("a/B.idl", 2, 8)]
    assert p.types == {}


def test_missing_import_reported_by_the_lookup():
    w = World({"a.B": "package a.B\nimport a.Gone\n"}, report_missing=True)
    w.package("a.B")
    assert w.codes() == ["SRC001"]


def test_missing_top_level_package_is_left_to_the_caller():
    w = World({})
    assert w.package("a.Nope") is None
    assert w.codes() == []


def test_import_cycle():
    w = World({
        "a.A": "package a.A\nimport a.B\nconst UInt8 X = 1;\n",
        "a.B": "package a.B\nimport a.A\nconst UInt8 Y = a.A.X + 1;\n",
    })
    a = w.package("a.A")
    assert w.codes() == ["IDL002"]
    assert w.where("IDL002") == [("a/B.idl", 2, 8)]
    assert "a.A -> a.B -> a.A" in w.diags.items[0].message
    assert a is not None
    assert w.package("a.B").consts["Y"] == 2  # names still resolve through the cycle


def test_self_import():
    p, w = one("package a.B\nimport a.B\nconst UInt8 X = 1;\n")
    assert w.codes() == ["IDL002"] and p.consts == {"X": 1}


def test_package_name_mismatch():
    w = World({"a.B": "package a.Other\n"})
    w.package("a.B")
    assert w.codes() == ["IDL011"]
    assert w.where("IDL011") == [("a/B.idl", 1, 9)]


def test_memoized_and_lookup_called_once():
    w = World({"acme.Common": COMMON,
               "a.B": "package a.B\nimport acme.Common\n",
               "a.C": "package a.C\nimport acme.Common\nimport a.B\n"})
    c = w.package("a.C")
    assert w.package("a.C") is c
    assert w.calls.count("acme.Common") == 1 and w.calls.count("a.B") == 1


# ----------------------------------------------------------------------------- recursion

@pytest.mark.parametrize("text,pos", [
    ("struct S { UInt8 a; S next; }", (2, 21)),
    ("struct S { sequence<S, 4> kids; }", (2, 21)),
    ("struct A { B b; }\nstruct B { A a; }", (3, 12)),
    ("typedef T2 T1;\ntypedef T1 T2;", (3, 9)),
    ("union U { UInt8 a; array<U, 2> more; }", (2, 26)),
])
def test_recursive_types(text, pos):
    p, w = one(f"package a.B\n{text}\n")
    assert w.codes() == ["IDL003"]
    assert w.where("IDL003") == [("a/B.idl", *pos)]


def test_recursive_type_used_by_a_parameter_is_reported_once():
    p, w = one("package a.B\nstruct S { S s; }\ninterface { M(in S s, in UInt8 x); }\n")
    assert w.codes() == ["IDL003"]
    assert [x.name for x in p.interface.method("M").params] == ["x"]


# ----------------------------------------------------------------------------- handle<>

def test_callable_handle_checks_the_interface():
    w = World({
        "acme.Common": COMMON,
        "acme.Log": "package acme.Log\ninterface { Write(in string<8> s); }\n",
        "a.B": ("package a.B\ninterface {\n"
                "  Open(out handle<acme.Log> log, out handle<acme.Common> c, out handle<acme.Gone> g);\n}\n"),
    })
    p = w.package("a.B")
    assert w.codes() == ["IDL015", "IDL016"]
    assert w.where("IDL015") == [("a/B.idl", 3, 45)]
    assert [type_str(x.type) for x in p.interface.method("Open").params] == [
        "handle<acme.Log>", "handle<acme.Common>", "handle<acme.Gone>"]


def test_callable_handle_to_own_package():
    p, w = one("package a.B\ninterface { Clone(out handle<a.B> h); }\n")
    assert w.codes() == []
    assert p.interface.methods[0].params[0].type == HandleType("a.B")


# ----------------------------------------------------------------------------- robustness

def test_deeply_nested_expression_does_not_crash():
    depth = 3000
    p, w = one("package a.B\nconst UInt64 C = " + "(" * depth + "1" + ")" * depth + ";\n")
    assert w.diags.has_errors  # reported (too deep), not raised


def test_long_operator_chain_does_not_crash():
    p, w = one("package a.B\nconst UInt64 C = " + " + ".join(["1"] * 5000) + ";\n")
    assert p is None or p.consts.get("C") in (None, 5000)


def test_codes_are_documented():
    for n in range(1, 18):
        info = code_info(f"IDL{n:03d}")
        assert info.title and info.hint


VALID_IDL = (
    "package acme.Telemetry\n"
    "import acme.Common\n"
    "const UInt32 MaxName = 0o40;\n"
    "const UInt32 MaxBatch = (MaxName + 8) * 2 - (0x10 % 3) + (1 << 4);\n"
    "typedef string<MaxName> Name;\n"
    "struct Sample { UInt16 level; Name tag; acme.Common.Point at; }\n"
    "union Unit { UInt8 code; Name label; }\n"
    "typedef sequence<Sample, MaxBatch> Batch;\n"
    "interface {\n"
    "    Push(in Sample sample, error SInt32 rc);\n"
    "    Flush(in Batch items, out UInt32 stored, error SInt32 rc);\n"
    "    Describe(in Unit unit, out array<UInt8, 16> digest, out handle<acme.Telemetry> h);\n"
    "}\n"
)
VALID_CDL = (
    "component acme.IngestComp\nsecurity acme.Control\n"
    "endpoints {\n  raw : acme.Telemetry\n  cmd : acme.Command;\n}\n"
    "components { archive : acme.ArchiveComp, spare : acme.ArchiveComp }\n"
)
VALID_EDL = (
    "task class acme.Hub\n/* hub */\ncomponents { ingest : acme.IngestComp }\n"
    "endpoints  { feed : acme.Telemetry }\nsecurity acme.HubControl\ninterfaces { old : a.B }\n"
)
PIECES = st.sampled_from(list("{}();:,.<>*/+-~%|&^=_ \n\t0xo9aZ") + [
    "package", "import", "const", "typedef", "struct", "union", "interface", "in", "out", "error",
    "handle", "string", "bytes", "sequence", "array", "UInt8", "Handle", "component", "entity",
    "task", "class", "security", "endpoints", "components", "interfaces", "/*", "*/", "//", "**",
    "<<", ">>", "0x", "0o", "999999999999999999999999",
])


@st.composite
def mutated(draw, base: str) -> str:
    text = base
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 12)))
        piece = draw(PIECES)
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[j:]
        else:
            text = text[:i] + piece + text[j:]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID_IDL))
def test_mutated_idl_never_raises(text):
    w = World({"acme.Telemetry": text, "acme.Common": COMMON})
    w.package("acme.Telemetry")
    for d in w.diags:
        assert d.span is None or d.span.line >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID_CDL), mutated(VALID_EDL))
def test_mutated_cdl_and_edl_never_raise(cdl, edl):
    for text, kind in ((cdl, "component"), (edl, "class"), (cdl, "class"), (edl, "component")):
        diags = Diagnostics()
        f = parse_component(SourceText(path="X.cdl", text=text), diags, kind)
        assert f is None or f.kind == kind
