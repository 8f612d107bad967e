"""IDL grammar and parser: accepted forms (AST) and rejected forms (code, line, column)."""
from __future__ import annotations

import pytest

from policy_lang.diagnostics import Diagnostics, Severity, code_info
from policy_lang.source import SourceText
from policy_lang.syntax import ast
from policy_lang.syntax.idl import parse_idl


def parse(text: str, path: str = "X.idl"):
    diags = Diagnostics()
    f = parse_idl(SourceText(path=path, text=text), diags)
    return f, diags


def ok(text: str) -> ast.IdlFile:
    f, diags = parse(text)
    assert not list(diags), diags.render()
    assert f is not None
    return f


def where(diags: Diagnostics, code: str) -> list[tuple[int, int]]:
    return [(d.span.line, d.span.column) for d in diags if d.code == code]


def const_value(text_expr: str, ctype: str = "UInt64") -> ast.ConstExpr:
    f = ok(f"package a.B\nconst {ctype} C = {text_expr};\n")
    (decl,) = f.decls
    assert isinstance(decl, ast.IdlConst)
    return decl.value


# ----------------------------------------------------------------------------- layout

def test_package_only():
    f = ok("package acme.Telemetry\n")
    assert f.package == ast.Name("acme.Telemetry", 8)
    assert f.imports == () and f.decls == () and f.interface is None
    assert f.source.path == "X.idl"


def test_full_example_from_the_reference():
    f = ok(
        "package acme.Telemetry\n"
        "import acme.Common\n"
        "\n"
        "const UInt32 MaxName = 0o40;\n"
        "const UInt32 MaxBatch = (MaxName + 8) * 2;\n"
        "typedef string<MaxName> Name;\n"
        "struct Sample { UInt16 level; Name tag; }\n"
        "union Unit { UInt8 code; Name label; }\n"
        "typedef sequence<Sample, MaxBatch> Batch;\n"
        "\n"
        "interface {\n"
        "    Push(in Sample sample, error SInt32 rc);\n"
        "    Flush(in Batch items, out UInt32 stored, error SInt32 rc);\n"
        "    Describe(in Unit unit, out array<UInt8, 16> digest);\n"
        "}\n"
    )
    assert f.package.text == "acme.Telemetry"
    assert [i.text for i in f.imports] == ["acme.Common"]
    kinds = [type(d).__name__ for d in f.decls]
    assert kinds == ["IdlConst", "IdlConst", "IdlTypedef", "IdlStruct", "IdlUnion", "IdlTypedef"]
    max_name = f.decls[0]
    assert max_name.type == ast.PrimType("UInt32", max_name.type.pos)
    assert max_name.name.text == "MaxName"
    assert isinstance(max_name.value, ast.IntLit) and max_name.value.value == 32
    sample = f.decls[3]
    assert isinstance(sample, ast.IdlStruct)
    assert [(fl.name.text, type(fl.type).__name__) for fl in sample.fields] == [
        ("level", "PrimType"), ("tag", "NamedType")]
    batch = f.decls[5]
    assert isinstance(batch.type, ast.SequenceType)
    assert batch.type.element == ast.NamedType("Sample", batch.type.element.pos)
    assert batch.type.bound == ast.ConstRef("MaxBatch", batch.type.bound.pos)
    methods = f.interface.methods
    assert [m.name.text for m in methods] == ["Push", "Flush", "Describe"]
    assert [(p.direction, p.name.text) for p in methods[1].params] == [
        ("in", "items"), ("out", "stored"), ("error", "rc")]
    digest = methods[2].params[1]
    assert isinstance(digest.type, ast.ArrayType)
    assert digest.type.bound.value == 16


def test_positions_are_offsets_of_the_first_token():
    text = "package a.B\nstruct S { UInt8 x; }\ninterface { M(in string<4> s); }\n"
    f = ok(text)
    s = f.decls[0]
    assert s.pos == text.index("struct")
    assert s.name.pos == text.index("S {")
    assert s.fields[0].pos == text.index("UInt8")
    assert f.interface.pos == text.index("interface")
    m = f.interface.methods[0]
    assert m.pos == text.index("M(")
    assert m.params[0].pos == text.index("in string")
    assert m.params[0].type.pos == text.index("string")


def test_comments_are_ignored():
    f = ok(
        "// leading comment\n"
        "package a.B /* inline */\n"
        "/* multi\n line */ const UInt8 X = 1; // trailing\n"
    )
    assert f.decls[0].name.text == "X"


def test_several_imports():
    f = ok("package a.B\nimport a.C\nimport kl.core.Types\n")
    assert [i.text for i in f.imports] == ["a.C", "kl.core.Types"]


def test_keyword_segments_in_dotted_names():
    f = ok("package acme.error.Codes\nimport acme.interface.Base\ntypedef acme.interface.Base.T X;\n")
    assert f.package.text == "acme.error.Codes"
    assert f.decls[0].type == ast.NamedType("acme.interface.Base.T", f.decls[0].type.pos)


# ----------------------------------------------------------------------------- constants

@pytest.mark.parametrize("literal,value", [
    ("0", 0), ("100", 100), ("0x2f", 47), ("0X2F", 47), ("0x0001FFFF", 0x1FFFF),
    ("0o123", 0o123), ("0O17", 15),
])
def test_integer_literals(literal, value):
    e = const_value(literal)
    assert e == ast.IntLit(value, e.pos)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "%", "**", "<<", ">>"])
def test_documented_binary_operators(op):
    e = const_value(f"A {op} 2")
    assert isinstance(e, ast.ConstBinOp) and e.op == op
    assert e.left == ast.ConstRef("A", e.left.pos)
    assert e.right == ast.IntLit(2, e.right.pos)


@pytest.mark.parametrize("op", ["|", "&", "^"])
def test_bitwise_operators_are_accepted_with_a_warning(op):
    f, diags = parse(f"package a.B\nconst UInt32 C = 6 {op} 3;\n")
    e = f.decls[0].value
    assert isinstance(e, ast.ConstBinOp) and e.op == op
    assert diags.codes() == ["SYN210"]
    assert where(diags, "SYN210") == [(2, 20)]
    assert diags.items[0].severity is Severity.WARNING


@pytest.mark.parametrize("op", ["-", "~"])
def test_unary_operators(op):
    e = const_value(f"{op}5", "SInt64")
    assert e == ast.ConstUnOp(op, ast.IntLit(5, e.operand.pos), e.pos)


def test_unary_plus_is_undocumented():
    f, diags = parse("package a.B\nconst UInt8 C = +5;\n")
    assert isinstance(f.decls[0].value, ast.ConstUnOp)
    assert diags.codes() == ["SYN210"]


def test_precedence_and_parentheses():
    e = const_value("1 + 2 * 3")
    assert e.op == "+" and e.right.op == "*"
    e = const_value("(1 + 2) * 3")
    assert e.op == "*" and e.left.op == "+"
    e = const_value("(2 << 3) ** 2")  # the documentation's own example
    assert e.op == "**" and e.left.op == "<<"
    e = const_value("-2 ** 2", "SInt64")  # unary binds tighter than **
    assert e.op == "**" and isinstance(e.left, ast.ConstUnOp)
    e = const_value("(MaxLogMessageSize + 4) * MaxLogMessageCount")
    assert e.op == "*" and e.left.op == "+"


def test_package_qualified_constant_reference():
    e = const_value("acme.Common.Max * 2")
    assert e.left == ast.ConstRef("acme.Common.Max", e.left.pos)


@pytest.mark.parametrize("expr,col", [
    ("2 ** 3 ** 2", 20),     # ** is not associative
    ("1 << 2 << 3", 25),     # neither is <<
    ("1 << 2 + 3", 20),      # shifts do not mix with arithmetic
    ("1 + 2 >> 1", 24),
    ("2 ** 2 << 1", 25),
])
def test_operators_that_need_parentheses(expr, col):
    _, diags = parse(f"package a.B\nconst UInt32 C = {expr};\n")
    assert diags.codes() == ["SYN209"]
    assert where(diags, "SYN209") == [(2, col)]


@pytest.mark.parametrize("expr", ["(2 ** 3) ** 2", "2 ** (3 ** 2)", "(1 << 2) << 3", "1 << (2 + 3)",
                                  "(1 + 2) >> 1"])
def test_parenthesised_forms_are_fine(expr):
    ok(f"package a.B\nconst UInt32 C = {expr};\n")


def test_literal_too_long():
    _, diags = parse("package a.B\nconst UInt64 C = " + "9" * 50 + ";\n")
    assert where(diags, "SYN214") == [(2, 18)]


# ----------------------------------------------------------------------------- types

@pytest.mark.parametrize("name", [
    "UInt8", "UInt16", "UInt32", "UInt64", "SInt8", "SInt16", "SInt32", "SInt64",
    "UIntSize", "UIntPtr", "Handle",
])
def test_primitive_types(name):
    f = ok(f"package a.B\ntypedef {name} T;\n")
    assert f.decls[0].type == ast.PrimType(name, f.decls[0].type.pos)


def test_composite_types():
    f = ok(
        "package a.B\n"
        "typedef handle<acme.Telemetry> H;\n"
        "typedef string<32> S;\n"
        "typedef bytes<0x100> Y;\n"
        "typedef sequence<sequence<UInt8, 4>, 8> Q;\n"
        "typedef array<array<SInt8, 2>, N * 2> A;\n"
        "typedef acme.Common.Name Q2;\n"
    )
    h, s, y, q, a, q2 = (d.type for d in f.decls)
    assert isinstance(h, ast.HandleType) and h.interface.text == "acme.Telemetry"
    assert isinstance(s, ast.StringType) and s.bound.value == 32
    assert isinstance(y, ast.BytesType) and y.bound.value == 256
    assert isinstance(q, ast.SequenceType) and isinstance(q.element, ast.SequenceType)
    assert q.element.element == ast.PrimType("UInt8", q.element.element.pos)
    assert isinstance(a, ast.ArrayType) and isinstance(a.bound, ast.ConstBinOp)
    assert q2 == ast.NamedType("acme.Common.Name", q2.pos)


def test_old_spacing_of_generic_types():
    f = ok("package a.B\ntypedef array <SInt8, 1024> String;\n")
    assert isinstance(f.decls[0].type, ast.ArrayType)


@pytest.mark.parametrize("tail", ["}", "};"])
def test_struct_and_union_with_or_without_semicolon(tail):
    f = ok(f"package a.B\nstruct S {{ UInt8 a; UInt16 b; {tail}\nunion U {{ UInt8 a; S s; {tail}\n")
    s, u = f.decls
    assert isinstance(s, ast.IdlStruct) and [x.name.text for x in s.fields] == ["a", "b"]
    assert isinstance(u, ast.IdlUnion) and [x.name.text for x in u.fields] == ["a", "s"]


def test_keywords_as_field_and_parameter_names():
    f = ok(
        "package a.B\n"
        "struct S { Handle handle; bytes<4> bytes; string<4> string; UInt8 in; }\n"
        "interface { M(in UInt8 out, error SInt32 error); }\n"
    )
    assert [x.name.text for x in f.decls[0].fields] == ["handle", "bytes", "string", "in"]
    assert [p.name.text for p in f.interface.methods[0].params] == ["out", "error"]


# ----------------------------------------------------------------------------- interface

def test_methods_with_zero_params():
    f = ok("package a.B\ninterface {\n  Reset();\n  Ping(in UInt32 v, out UInt32 r);\n}\n")
    assert f.interface.methods[0].params == ()
    assert f.interface.methods[0].name.text == "Reset"


def test_extended_error_params_are_unrestricted():
    f = ok(
        "package a.B\nstruct Why { UInt8 code; }\n"
        "interface { Open(in string<64> path, out Handle h, error SInt32 rc, error Why why, "
        "error string<32> text); }\n"
    )
    params = f.interface.methods[0].params
    assert [p.direction for p in params] == ["in", "out", "error", "error", "error"]


def test_empty_interface():
    f = ok("package a.B\ninterface { }\n")
    assert f.interface == ast.IdlInterface((), f.interface.pos)


def test_interface_block_on_its_own_line():
    f = ok("package a.B\ninterface\n{\n    Method1(in SInt8 input); // just type\n}\n")
    assert f.interface.methods[0].name.text == "Method1"


def test_parameter_order_warning():
    f, diags = parse("package a.B\ninterface {\n  M(out UInt8 a, in UInt8 b);\n}\n")
    assert diags.codes() == ["SYN204"]
    assert where(diags, "SYN204") == [(3, 18)]
    assert diags.items[0].severity is Severity.WARNING
    assert [p.name.text for p in f.interface.methods[0].params] == ["a", "b"]  # as written


def test_error_before_out_is_out_of_order():
    _, diags = parse("package a.B\ninterface { M(error UInt8 e, out UInt8 a); }\n")
    assert diags.codes() == ["SYN204"]


def test_named_interface_education_kit():
    f, diags = parse("package ping\ninterface IPing {\n  Ping(in UInt32 value, out UInt32 result);\n}\n")
    assert "SYN207" in diags.codes()
    assert where(diags, "SYN207") == [(2, 11)]
    assert f.interface.methods[0].name.text == "Ping"


def test_method_without_semicolon_is_a_warning():
    f, diags = parse("package a.B\ninterface {\n  A()\n  B(in UInt8 x);\n}\n")
    assert diags.codes() == ["SYN208"]
    assert where(diags, "SYN208") == [(3, 3)]
    assert [m.name.text for m in f.interface.methods] == ["A", "B"]


# ----------------------------------------------------------------------------- checks

def test_missing_package():
    f, diags = parse("\n\nconst UInt8 X = 1;\n")
    assert diags.codes() == ["SYN200"]
    assert where(diags, "SYN200") == [(3, 1)]
    assert f.package is None and len(f.decls) == 1


def test_empty_file():
    f, diags = parse("// nothing\n")
    assert f is None
    assert diags.codes() == ["SYN200"]


def test_package_not_first_and_twice():
    _, diags = parse("import a.C\npackage a.B\npackage a.D\n")
    assert diags.codes() == ["SYN201", "SYN201"]
    assert where(diags, "SYN201") == [(2, 1), (3, 1)]


def test_two_interfaces():
    f, diags = parse("package a.B\ninterface { A(); }\ninterface { B(); }\n")
    assert diags.codes() == ["SYN203"]
    assert where(diags, "SYN203") == [(3, 1)]
    assert [m.name.text for m in f.interface.methods] == ["A"]


def test_underscore_in_method_name_is_an_error():
    _, diags = parse("package a.B\ninterface {\n    Get_Value();\n}\n")
    assert diags.codes() == ["SYN205"]
    assert where(diags, "SYN205") == [(3, 5)]
    assert diags.items[0].severity is Severity.ERROR


@pytest.mark.parametrize("text,pos", [
    ("package a.B\ninterface { A(); B(); A(); }\n", (2, 23)),
    ("package a.B\ninterface { A(in UInt8 x, out UInt8 x); }\n", (2, 37)),
    ("package a.B\nstruct S { UInt8 x; UInt16 x; }\n", (2, 28)),
    ("package a.B\nunion U { UInt8 x; UInt16 x; }\n", (2, 27)),
    ("package a.B\nconst UInt8 X = 1;\ntypedef UInt8 X;\n", (3, 15)),
])
def test_duplicate_names(text, pos):
    _, diags = parse(text)
    assert diags.codes() == ["SYN206"]
    assert where(diags, "SYN206") == [pos]


def test_empty_struct_warning():
    f, diags = parse("package a.B\nstruct S { }\n")
    assert diags.codes() == ["SYN211"]
    assert f.decls[0].fields == ()


def test_reserved_type_name():
    _, diags = parse("package a.B\ntypedef UInt8 UInt16;\n")
    assert where(diags, "SYN212") == [(2, 15)]


@pytest.mark.parametrize("name", ["acme.telemetry", "acme.My_Iface"])
def test_package_name_style_warning(name):
    _, diags = parse(f"package {name}\n")
    assert diags.codes() == ["SYN213"]
    assert diags.items[0].severity is Severity.WARNING


# ----------------------------------------------------------------------------- syntax errors

def test_syntax_error_position_and_recovery():
    f, diags = parse("package a.B\nconst UInt32 = 5;\ntypedef UInt8 Ok;\n")
    assert diags.codes() == ["SYN001"]
    assert where(diags, "SYN001") == [(2, 14)]
    assert [d.name.text for d in f.decls] == ["Ok"]  # the next declaration still parses


def test_missing_field_semicolon():
    _, diags = parse("package a.B\nstruct S {\n  UInt8 a\n  UInt8 b;\n}\n")
    assert diags.codes() == ["SYN001"]
    assert where(diags, "SYN001") == [(4, 3)]


def test_bad_direction():
    _, diags = parse("package a.B\ninterface { M(inout UInt8 a); }\n")
    assert diags.codes() == ["SYN001"]
    assert where(diags, "SYN001") == [(2, 15)]


def test_eof_inside_interface():
    _, diags = parse("package a.B\ninterface {\n  M(in UInt8 a);\n")
    assert diags.codes() == ["SYN003"]


def test_unexpected_character():
    _, diags = parse("package a.B\nconst UInt8 X = 1 $ 2;\n")
    assert "SYN002" in diags.codes()
    assert where(diags, "SYN002") == [(2, 19)]


def test_unterminated_comment():
    f, diags = parse("package a.B\nconst UInt8 X = 1;\n/* never closed\nconst UInt8 Y = 2;\n")
    assert diags.codes() == ["SYN004"]
    assert where(diags, "SYN004") == [(3, 1)]
    assert [d.name.text for d in f.decls] == ["X"]


def test_codes_are_documented():
    for code in ["SYN200", "SYN201", "SYN203", "SYN204", "SYN205", "SYN206", "SYN207", "SYN208",
                 "SYN209", "SYN210", "SYN211", "SYN212", "SYN213", "SYN214", "SYN215"]:
        info = code_info(code)
        assert info.title and info.hint
