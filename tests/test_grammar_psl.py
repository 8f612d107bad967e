"""PSL / PAL grammar and AST builder (policy_lang/grammars/psl.lark, syntax/psl.py).

For each construct: accepted forms with the AST they must produce, rejected forms
with the diagnostic code and position.  Then error recovery, the PSL-specific
SYN1xx checks, and property tests: garbage never raises, and the shape caches
give exactly the AST of a fresh parse.
"""
from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_lang.diagnostics import Diagnostics
from policy_lang.source import SourceText
from policy_lang.syntax import ast, psl
from policy_lang.syntax.lexing import GRAMMAR_DIR, _PassThroughLexer, lex, split_declarations
from policy_lang.syntax.psl import parse_psl

# ----------------------------------------------------------------------------- helpers


def parse(text: str, use_cache: bool = True):
    diags = Diagnostics()
    f = parse_psl(SourceText(path="t.psl", text=text), diags, use_cache=use_cache)
    return f, diags


def ok(text: str) -> tuple:
    f, d = parse(text)
    assert not d.items, d.render()
    return f.decls


def one(text: str):
    decls = ok(text)
    assert len(decls) == 1, decls
    return decls[0]


def body(text: str) -> tuple:
    return one("request { " + text + " }").body


def expr(text: str):
    (stmt,) = body("assert (" + text + ")")
    assert isinstance(stmt, ast.Call) and stmt.parenthesized
    return stmt.arg


def diag(text: str, code: str):
    """The only diagnostic of ``text``; it must have ``code``."""
    f, d = parse(text)
    assert [x.code for x in d] == [code], d.render()
    return d.items[0], f


def where(text: str, code: str) -> tuple[int, int]:
    item, _f = diag(text, code)
    return item.span.line, item.span.column


def show(node) -> str:
    """Compact, position-free rendering of an expression."""
    if isinstance(node, ast.Lit):
        if node.kind == "text":  # written back as a literal: the value's backslashes and quotes escaped
            return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if node.kind == "bool":
            return "true" if node.value else "false"
        if node.kind == "unit":
            return "()"
        return str(node.value)
    if isinstance(node, ast.Ref):
        return ".".join(node.path)
    if isinstance(node, ast.BinOp):
        return f"({node.op} {show(node.left)} {show(node.right)})"
    if isinstance(node, ast.UnOp):
        return f"({node.op} {show(node.operand)})"
    if isinstance(node, ast.Call):
        obj = f"{node.object.text}." if node.object else ""
        arg = f"({show(node.arg)})" if node.parenthesized else f" {show(node.arg)}"
        return f"{obj}{node.method.text}{arg}"
    if isinstance(node, ast.IndexExpr):
        return f"{show(node.base)}.[{show(node.index)}]"
    if isinstance(node, ast.FieldAccess):
        return f"{show(node.base)}.{node.name}"
    if isinstance(node, ast.ListExpr):
        return "[" + ", ".join(show(i) for i in node.items) + "]"
    if isinstance(node, ast.RecordExpr):
        return "{" + ", ".join(f"{show_key(f.key)}: {show(f.value)}" for f in node.fields) + "}"
    raise AssertionError(node)


def show_key(key) -> str:
    return key.text if isinstance(key, ast.Name) else show(key)


def sels(node) -> list[tuple[str, str]]:
    return [(s.key, s.value.text) for s in node.selectors]


def show_type(t) -> str:
    if isinstance(t, ast.TypeName):
        return t.name.text + ("<" + ", ".join(show_type(a) for a in t.args) + ">" if t.args else "")
    if isinstance(t, ast.LitType):
        return show(t.lit)
    if isinstance(t, ast.UnionType):
        return " | ".join(show_type(m) for m in t.members)
    if isinstance(t, ast.RecordType):
        return "{" + ", ".join(f"{n.text}: {show_type(v)}" for n, v in t.fields) + "}"
    if isinstance(t, ast.TupleType):
        return "[" + ", ".join(show_type(i) for i in t.items) + "]"
    raise AssertionError(t)


# ----------------------------------------------------------------------------- grammar


def test_grammar_is_conflict_free_lalr():
    # strict mode turns any shift/reduce or reduce/reduce conflict into an error
    text = (GRAMMAR_DIR / "psl.lark").read_text(encoding="utf-8")
    lark.Lark(text, parser="lalr", lexer=_PassThroughLexer, start=["start", "decl"], strict=True)


def test_whole_file_start_matches_parse_psl():
    text = POLICY_14 + "\nassert { sequence { k <- execute dst=kl.core.Core } }\n"
    src = SourceText(path="t.psl", text=text)
    grammar = psl._tables().grammar
    tree = grammar.parser.parse(lex(grammar, src, Diagnostics()), start="start")
    decls = psl.PslTransformer(psl.PslBuilder(src, Diagnostics())).transform(tree)
    assert tuple(decls) == ok(text)


def test_empty_and_comment_only_files():
    assert ok("") == ()
    assert ok("  // nothing\n/* at\n all */\n") == ()


# ----------------------------------------------------------------------------- declarations


def test_execute_interface():
    d = one("execute: kl.core.Execute")
    assert d == ast.ExecuteDecl(ast.Name("kl.core.Execute", 9), 0)
    assert one("execute : kl.core.Execute").interface.text == "kl.core.Execute"


def test_execute_interface_rejected():
    item, _ = diag("execute kl.core.Execute", "SYN001")
    assert (item.span.line, item.span.column) == (1, 9)
    assert "execute binding" in item.message
    assert where("execute:\n", "SYN003") == (1, 9)


def test_use_psl_strips_trailing_dot_underscore():
    d1, d2 = ok("use nk.base._\nuse parts.sensors._")
    assert d1 == ast.UsePsl(ast.Name("nk.base", 4), 0)
    assert d2.path.text == "parts.sensors"
    assert one("use kl.core.DCM._").path.text == "kl.core.DCM"


def test_use_psl_without_dot_underscore_is_syn101_but_kept():
    item, f = diag("\n  use nk.base", "SYN101")
    assert (item.span.line, item.span.column) == (2, 7)
    assert f.decls[0].path.text == "nk.base"
    assert where('use "nk.base._"', "SYN001") == (1, 5)


def test_use_edl():
    a, b, c = ok("use EDL kl.core.Core\nuse EDL Einit\nuse EDL a.b.Class")
    assert a == ast.UseEdl(ast.Name("kl.core.Core", 8), 0)
    assert (b.cls.text, c.cls.text) == ("Einit", "a.b.Class")


def test_use_edl_rejected():
    assert where("use EDL", "SYN003") == (1, 8)
    assert where("use EDL a.b._", "SYN102") == (1, 9)
    assert where("use EDL\n  \"Einit\"", "SYN001") == (2, 3)


def test_task_class():
    d = one("task class Alias : path.to.Edl")
    assert d == ast.TaskClassDecl(ast.Name("Alias", 11), ast.Name("path.to.Edl", 19), 0)
    assert one("task class kl.core.Core : kl.core.Core").cls.text == "kl.core.Core"
    assert where("task Alias : x", "SYN001") == (1, 6)
    assert where("task class A x", "SYN001") == (1, 14)


def test_policy_object_with_types_and_config():
    text = """policy object door : Flow {
    type State = "locked" | "open"
    config = { states      : ["locked", "open"]
             , initial     : "locked"
             , transitions : { "locked" : ["open"]
                             , "open"   : ["locked"]
                             }
             }
}"""
    d = one(text)
    assert isinstance(d, ast.PolicyObject)
    assert (d.name, d.model) == (ast.Name("door", 14), ast.Name("Flow", 21))
    assert [(t.name.text, show_type(t.type)) for t in d.types] == [("State", '"locked" | "open"')]
    assert show(d.config) == '{states: ["locked", "open"], initial: "locked", ' \
                             'transitions: {"locked": ["open"], "open": ["locked"]}}'
    keys = d.config.fields[2].value.fields
    assert keys[0].key == ast.Lit("text", "locked", text.index('"locked" :'))


def test_policy_object_forms():
    assert one("policy object b2 : Base {}") == ast.PolicyObject(ast.Name("b2", 14), ast.Name("Base", 19), (), None, 0)
    assert one("policy object b3 : Base").types == ()
    mic = one('policy object mic : Mic { config = ["LOW", "HIGH"] }')
    assert show(mic.config) == '["LOW", "HIGH"]'
    hs = one("policy object ports : HashSet { type Entry = UInt16 config = { set_size : 8, pool_size : 4 } }")
    assert show_type(hs.types[0].type) == "UInt16" and show(hs.config) == "{set_size: 8, pool_size: 4}"


def test_policy_object_rejected():
    assert where("policy object door Flow {}", "SYN001") == (1, 20)
    assert where("policy door : Flow {}", "SYN001") == (1, 8)
    assert where("policy object a.b : Flow {}", "SYN103") == (1, 15)
    assert where("policy object d : F { config = 1\n config = 2 }", "SYN109") == (2, 2)
    assert where("policy object d : F { grant () }", "SYN001") == (1, 23)


def test_types():
    cases = {
        "UInt8": "UInt8",
        "Set<State>": "Set<State>",
        "List<Text | ()>": "List<Text | ()>",
        "Map<Text, UInt32>": "Map<Text, UInt32>",
        "Array<UInt8, 16>": "Array<UInt8, 16>",
        "Sequence<UInt8, 0x100>": "Sequence<UInt8, 256>",
        "Set<List<Text>>": "Set<List<Text>>",
        '"a" | "b" | "c"': '"a" | "b" | "c"',
        "12 | -5 | true | ()": "12 | -5 | true | ()",
        "{ handle : Handle, rights : UInt32 }": "{handle: Handle, rights: UInt32}",
        "{ type : Text, method : Text, }": "{type: Text, method: Text}",
        "{}": "{}",
        "[UInt8, Text]": "[UInt8, Text]",
        "(Boolean | ())": "Boolean | ()",
        "Unsigned | Signed": "Unsigned | Signed",
    }
    for src, want in cases.items():
        d = one(f"type T = {src}")
        assert isinstance(d, ast.TypeDecl) and d.name == ast.Name("T", 5)
        assert show_type(d.type) == want, src


def test_type_positions_and_literal_nodes():
    d = one('type T = -5 | "x"')
    assert d.type == ast.UnionType(
        (ast.LitType(ast.Lit("int", -5, 9), 9), ast.LitType(ast.Lit("text", "x", 14), 14)), 9)
    assert one("type U = ()").type == ast.LitType(ast.Lit("unit", None, 9), 9)


def test_types_rejected():
    assert where("type X = Set<", "SYN003") == (1, 14)
    assert where("type X =", "SYN003") == (1, 9)
    assert where("type a.b = UInt8", "SYN103") == (1, 6)
    assert where("type X = Set<Text", "SYN003") == (1, 18)
    assert where("type X = UInt8 |", "SYN003") == (1, 17)
    assert where("type X = Map<Text UInt8>", "SYN001") == (1, 19)


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("src, want", [
    ("()", "()"),
    ("true", "true"),
    ("false", "false"),
    ("42", "42"),
    ("-7", "-7"),
    ("0xFFFF", "65535"),
    ("0X1f", "31"),
    ('"text"', '"text"'),
    ('""', '""'),
    ('"^[0-9]*$"', '"^[0-9]*$"'),
    (r'"a\"b"', r'"a\"b"'),
    ("[1, 2, 3]", "[1, 2, 3]"),
    ("[]", "[]"),
    ("[1, 2,]", "[1, 2]"),
    ('{ name : "x", size : 4 }', '{name: "x", size: 4}'),
    ("{ a : 1\n, b : 2\n}", "{a: 1, b: 2}"),
    ("{ a : 1, b : 2, }", "{a: 1, b: 2}"),
    ("{}", "{}"),
    ('{ "idle" : ["busy"], "busy" : ["idle", "done"] }', '{"idle": ["busy"], "busy": ["idle", "done"]}'),
    ('{ type : 1, method : "GET", error : 2, match : 3, src : 4, default : 5 }',
     '{type: 1, method: "GET", error: 2, match: 3, src: 4, default: 5}'),
    ("{ 0 : { base : { kss : [] } } }", "{0: {base: {kss: []}}}"),
    ("{ true : 1, 0x10 : 2 }", "{true: 1, 16: 2}"),
    ('{ image : (), target : dst_sid, level : "LOW" }', '{image: (), target: dst_sid, level: "LOW"}'),
])
def test_values(src, want):
    d = one(f"policy object o : M {{ config = {src} }}")
    assert show(d.config) == want


def test_value_nodes_and_positions():
    text = "policy object o : M { config = { a : [1, -2], \"k\" : () } }"
    cfg = one(text).config
    p = text.index("{ a")
    assert cfg == ast.RecordExpr((
        ast.RecordField(ast.Name("a", p + 2), ast.ListExpr(
            (ast.Lit("int", 1, p + 7), ast.Lit("int", -2, p + 10)), p + 6), p + 2),
        ast.RecordField(ast.Lit("text", "k", p + 15), ast.Lit("unit", None, p + 21), p + 15),
    ), p)


def test_values_rejected():
    assert where("policy object o : M { config = { a : 1 b : 2 } }", "SYN001") == (1, 40)
    assert where("policy object o : M { config = [1 2] }", "SYN001") == (1, 35)
    assert where("policy object o : M { config = { a.b : 1 } }", "SYN103") == (1, 34)
    assert where("policy object o : M { config = { a : 1,\n a : 2 } }", "SYN114") == (2, 2)
    assert where("policy object o : M { config = 99999999999999999999999 }", "SYN113") == (1, 32)
    assert where("policy object o : M { config = [ , 1] }", "SYN001") == (1, 34)
    assert where("policy object o : M { config = { : 1 } }", "SYN001") == (1, 34)


# ----------------------------------------------------------------------------- bindings


@pytest.mark.parametrize("event", ["execute", "request", "response", "error", "security"])
def test_binding_for_each_event(event):
    d = one(f"{event} src=a.B {{ grant () }}")
    assert isinstance(d, ast.Binding) and d.event == event and d.pos == 0
    assert sels(d) == [("src", "a.B")]
    assert d.body == (ast.Call(None, ast.Name("grant", len(event) + 11), ast.Lit("unit", None, len(event) + 17),
                               True, len(event) + 11),)


def test_selectors_commas_spaces_and_spacing():
    forms = [
        "request src=a.B, dst=c.D, endpoint=net.Net, method=Ping { grant () }",
        "request src=a.B dst=c.D endpoint=net.Net method=Ping { grant () }",
        "request src = a.B dst = c.D\n    endpoint = net.Net method = Ping { grant () }",
        "request src=a.B,dst=c.D,endpoint=net.Net,method=Ping, { grant () }",
    ]
    for text in forms:
        assert sels(one(text)) == [("src", "a.B"), ("dst", "c.D"), ("endpoint", "net.Net"), ("method", "Ping")]
    d = one("request interface = some.Api component = comp.sub.ep { grant () }")
    assert sels(d) == [("interface", "some.Api"), ("component", "comp.sub.ep")]
    sel = one("request  dst = kl.core.Core {}").selectors[0]
    assert sel == ast.Selector("dst", ast.Name("kl.core.Core", 15), 9)


def test_binding_without_selectors_and_empty_body():
    d = one("response { }")
    assert d == ast.Binding("response", (), None, (), 0)


def test_selector_values_may_be_keywords():
    d = one("request endpoint=security method=error { grant () }")
    assert sels(d) == [("endpoint", "security"), ("method", "error")]
    d = one("request endpoint = type, method = match { grant () }")
    assert sels(d) == [("endpoint", "type"), ("method", "match")]


def test_binding_audit():
    d = one("request dst=acme.Hub {\n    audit diag\n    match endpoint=feed { grant () }\n}")
    assert d.audit == ast.Name("diag", 33)
    assert isinstance(d.body[0], ast.Match)


def test_bindings_rejected():
    item, _ = diag("request src= { grant () }", "SYN001")
    assert (item.span.line, item.span.column) == (1, 14) and "request binding" in item.message
    assert where("request foo=x {}", "SYN001") == (1, 9)
    assert where("request src=a\n  src=b {}", "SYN108") == (2, 3)
    assert where("request { grant ()", "SYN003") == (1, 19)
    assert where("request { audit p audit q grant () }", "SYN001") == (1, 19)
    assert where("request { grant () audit p }", "SYN001") == (1, 20)
    assert where("security src=a method=M", "SYN003") == (1, 24)
    assert where("response src=a.b.", "SYN001") == (1, 17)


# ----------------------------------------------------------------------------- match / choice


def test_nested_match():
    text = """execute {
    match src = kl.core.Core { match dst = kl.core.Core { grant () }  match dst = Einit { grant () } }
    match src = Einit { match dst = some.App { grant () } }
}"""
    d = one(text)
    assert d.event == "execute" and len(d.body) == 2
    outer = d.body[0]
    assert isinstance(outer, ast.Match) and sels(outer) == [("src", "kl.core.Core")]
    assert [sels(m) for m in outer.body] == [[("dst", "kl.core.Core")], [("dst", "Einit")]]
    assert outer.pos == text.index("match src")


def test_match_interface_selector_and_audit():
    d = one("request { match interface = some.Api method = Wait { grant () } }")
    assert sels(d.body[0]) == [("interface", "some.Api"), ("method", "Wait")]
    m = body("match endpoint = log, method = Write { audit trace grant () }")[0]
    assert sels(m) == [("endpoint", "log"), ("method", "Write")] and m.audit.text == "trace"
    assert [type(s).__name__ for s in body("grant () match src=a {} deny ()")] == ["Call", "Match", "Call"]


def test_match_rejected():
    assert where("request { match { grant () } }", "SYN001") == (1, 17)
    assert where("request { match src=a }", "SYN001") == (1, 23)
    assert where("request { match src=a, src=b {} }", "SYN108") == (1, 24)


def test_choice():
    (c,) = body('choice (door.query {sid : dst_sid}) {\n "open" : grant ()\n _ : deny () }')
    assert isinstance(c, ast.Choice) and c.audit is None
    assert show(c.expr) == "door.query {sid: dst_sid}"
    assert [(a.case, [show(s) for s in a.body]) for a in c.arms] == [
        (ast.Lit("text", "open", c.arms[0].pos), ["grant(())"]),
        (None, ["deny(())"]),
    ]


def test_choice_arm_forms():
    (c,) = body("""choice (re.select {text : message.mode}) {
        audit trace
        "^ro$"   : { grant () assert (message.x > 1) }
        "^rw$"   : door.enter {sid : src_sid, state : "open"} grant ()
        1        : match src=a { grant () }
        -1       : {}
        true     : assert message.flag
        _        : deny ()
    }""")
    assert c.audit.text == "trace"
    assert [show(a.case) if a.case else "_" for a in c.arms] == ['"^ro$"', '"^rw$"', "1", "-1", "true", "_"]
    assert [len(a.body) for a in c.arms] == [2, 2, 1, 0, 1, 1]
    assert isinstance(c.arms[2].body[0], ast.Match)
    assert c.arms[4].body[0].parenthesized is False
    (c2,) = body("choice message.mode { _ : grant () }")
    assert show(c2.expr) == "message.mode"


def test_choice_rejected():
    assert where("request { choice (x) { } }", "SYN001") == (1, 24)
    assert where('request { choice (x) { "a" grant () } }', "SYN001") == (1, 28)
    assert where("request { choice (x) {\n _ : grant ()\n _ : deny () } }", "SYN110") == (3, 2)
    assert where("request { choice (x) { y : grant () } }", "SYN001") == (1, 24)
    assert where("request { choice (x) }", "SYN001") == (1, 22)


# ----------------------------------------------------------------------------- calls


@pytest.mark.parametrize("src, want, paren", [
    ("grant ()", "grant(())", True),
    ("deny ()", "deny(())", True),
    ("deny (message.x > 1)", "deny((> message.x 1))", True),
    ("assert (message.port >= 1024)", "assert((>= message.port 1024))", True),
    ("assert message.flag", "assert message.flag", False),
    ('door.enter {sid : dst_sid, state : "open"}', 'door.enter {sid: dst_sid, state: "open"}', False),
    ('re.match {text : message.host, pattern : "^[a-z]+$"}',
     're.match {text: message.host, pattern: "^[a-z]+$"}', False),
    ("math.sum ([1, 2])", "math.sum([1, 2])", True),
    ("math.sum [1, 2]", "math.sum [1, 2]", False),
    ("base.grant ()", "base.grant(())", True),
    ("set_level (2)", "set_level(2)", True),
    ("assert true", "assert true", False),
    ('assert "x"', 'assert "x"', False),
    ("assert message.items.[0].ok", "assert message.items.[0].ok", False),
    ("deny ((message.req.count) > 1)", "deny((> message.req.count 1))", True),
    ("a.b.c.m ()", "a.b.c.m(())", True),
])
def test_calls(src, want, paren):
    (c,) = body(src)
    assert isinstance(c, ast.Call)
    assert show(c) == want and c.parenthesized is paren


def test_call_nodes():
    text = "request { base.grant () door.enter {sid : dst_sid} }"
    c1, c2 = one(text).body
    p = text.index("base")
    assert c1 == ast.Call(ast.Name("base", p), ast.Name("grant", p + 5), ast.Lit("unit", None, p + 11), True, p)
    q = text.index("door")
    assert c2.object == ast.Name("door", q) and c2.method == ast.Name("enter", q + 5) and c2.pos == q
    (c3,) = body("a.b.m (1)")
    assert (c3.object.text, c3.method.text) == ("a.b", "m")


def test_calls_rejected():
    assert where("request { grant }", "SYN001") == (1, 17)
    assert where("request { grant () () }", "SYN001") == (1, 20)
    # the argument is one term: a 1.1 paren-less argument cannot be a binary expression
    assert where("request { assert message.x > 1 }", "SYN001") == (1, 28)
    assert where("request { door.enter }", "SYN001") == (1, 22)
    assert where("request { 1 }", "SYN001") == (1, 11)


# ----------------------------------------------------------------------------- expressions


@pytest.mark.parametrize("src, want", [
    ("a + b * c", "(+ a (* b c))"),
    ("a * b + c", "(+ (* a b) c)"),
    ("a - b - c", "(- (- a b) c)"),
    ("a | b & c", "(| a (& b c))"),
    ("a & b + c", "(& a (+ b c))"),
    ("a | b == c", "(== (| a b) c)"),
    ("a == b && c < d || e", "(|| (&& (== a b) (< c d)) e)"),
    ("a || b && c", "(|| a (&& b c))"),
    ("a ==> b ==> c", "(==> a (==> b c))"),
    ("a || b ==> c && d", "(==> (|| a b) (&& c d))"),
    ("!a && b", "(&& (! a) b)"),
    ("!(a && b)", "(! (&& a b))"),
    ("~a | b", "(| (~ a) b)"),
    ("-5", "-5"),
    ("- 5 + 1", "(+ -5 1)"),
    ("-x * 2", "(* (- x) 2)"),
    ("- -x", "(- (- x))"),
    ("a != b", "(!= a b)"),
    ("a <= b", "(<= a b)"),
    ("a >= b", "(>= a b)"),
    ("x <-1", "(< x -1)"),
    ("x <- y + 1", "(< x (+ (- y) 1))"),
    ("x <-(a + b) * c", "(< x (* (- (+ a b)) c))"),
    ("x <~y", "(< x (~ y))"),
    ("f {a : x <-1}", "f {a: (< x -1)}"),
    ("(message.req.count) > 1", "(> message.req.count 1)"),
    ("message.items.[0].x", "message.items.[0].x"),
    ("xs.[i].a.b", "xs.[i].a.b"),
    ("xs.[0].[1]", "xs.[0].[1]"),
    ("xs.[0].type", "xs.[0].type"),
    ("(message.a).b", "message.a.b"),
    ("message.req.method == \"GET\"", '(== message.req.method "GET")'),
    ("message.type + message.error.code", "(+ message.type message.error.code)"),
    ("size (message.seq) > 0", "(> size(message.seq) 0)"),
    ("math.neg (x) > 0", "(> math.neg(x) 0)"),
    ("flow.query {sid : dst_sid} == \"a\"", '(== flow.query {sid: dst_sid} "a")'),
    ("!pred.empty (message.key)", "(! pred.empty(message.key))"),
    ("bool.all ([a, b == 1])", "bool.all([a, (== b 1)])"),
    ("src_sid == dst_sid", "(== src_sid dst_sid)"),
    ("message.h.handle", "message.h.handle"),
    ("(message.file.rights & 1) != 0", "(!= (& message.file.rights 1) 0)"),
    ("m.get {sid : src_sid, key : \"base\"} + 4", '(+ m.get {sid: src_sid, key: "base"} 4)'),
    ("f [1]", "f [1]"),
])
def test_expressions(src, want):
    assert show(expr(src)) == want


def test_expression_nodes_and_positions():
    text = "request { assert (message.items.[0].x < -1) }"
    e = one(text).body[0].arg
    p = text.index("message")
    ref = ast.Ref(("message", "items"), p)
    assert e == ast.BinOp("<", ast.FieldAccess(ast.IndexExpr(ref, ast.Lit("int", 0, p + 15), p), "x", p),
                          ast.Lit("int", -1, text.index("-1")), p)
    e = expr("!x")
    assert isinstance(e, ast.UnOp) and e.op == "!"


def test_expressions_rejected():
    assert where("request { assert ((a) > ) }", "SYN001") == (1, 25)
    assert where("request { assert (a < b < c) }", "SYN001") == (1, 25)
    assert where("request { assert (a +) }", "SYN001") == (1, 22)
    assert where("request { assert (a &&& b) }", "SYN001") == (1, 23)
    assert where("request { assert (xs.[]) }", "SYN001") == (1, 23)
    assert where("request { assert (xs.(0)) }", "SYN001") == (1, 22)
    assert where("request { assert (a\n  b c) }", "SYN001") == (2, 5)


# ----------------------------------------------------------------------------- audit


def test_audit_profile_and_default():
    text = """audit profile diag =
    { 0 : { base : { kss : ["denied"] } }
    , 1 : { base : { kss : ["granted", "denied"] }
          , hubState : { kss : ["denied"], omit : ["booting"] } }
    }
request { grant () }
audit default = diag 0"""
    prof, binding, default = ok(text)
    assert isinstance(prof, ast.AuditProfile) and prof.name == ast.Name("diag", 14) and prof.pos == 0
    assert show(prof.levels) == ('{0: {base: {kss: ["denied"]}}, 1: {base: {kss: ["granted", "denied"]}, '
                                 'hubState: {kss: ["denied"], omit: ["booting"]}}}')
    assert isinstance(binding, ast.Binding)
    assert default == ast.AuditDefault(ast.Name("diag", text.index("diag 0")), 0, text.index("audit default"))
    assert one("audit default = empty 0x2").level == 2


def test_audit_rejected():
    assert where("audit default = trace", "SYN003") == (1, 22)
    assert where("audit default trace 0", "SYN001") == (1, 15)
    assert where("audit profile = {}", "SYN001") == (1, 15)
    assert where("audit trace", "SYN001") == (1, 7)
    assert where("audit default = a.b 1", "SYN103") == (1, 17)


# ----------------------------------------------------------------------------- PAL


PAL = """assert "hub gate" {
    setup {
        core <- execute dst=kl.core.Core
        einit <- execute src=core dst=Einit
        hub <- execute src=einit dst=acme.Hub
    }
    sequence "closed until ready" {
        deny  "too early" request src=sen dst=hub endpoint=feed method=Push { sample : { level : 5 } }
        grant security src=hub method=Ready {}
        grant "ok" request src=c dst=s endpoint=e method=M { value : 5, req : { a : 1 }, type : 2 }
        any response src=s dst=c endpoint=e method=M
        request src=c dst=s endpoint=e method=M
    }
    sequence {
        c ~> s : pingComp.pingImpl.Ping { value : 100 }
        deny c ~> s : ep.Pong {}
        grant "named" c <~ s : ep.Pong
    }
    finally { any execute dst=X }
}"""


def test_pal_block():
    a = one(PAL)
    assert isinstance(a, ast.AssertBlock) and a.name == "hub gate" and a.pos == 0
    assert [(c.var.text, c.event, sels(c)) for c in a.setup] == [
        ("core", "execute", [("dst", "kl.core.Core")]),
        ("einit", "execute", [("src", "core"), ("dst", "Einit")]),
        ("hub", "execute", [("src", "einit"), ("dst", "acme.Hub")]),
    ]
    s1, s2 = a.sequences
    assert s1.name == "closed until ready" and s2.name is None
    assert [(c.expect, c.name, c.event) for c in s1.cases] == [
        ("deny", "too early", "request"), ("grant", None, "security"), ("grant", "ok", "request"),
        ("any", None, "response"), (None, None, "request"),
    ]
    assert show(s1.cases[0].message) == "{sample: {level: 5}}"
    assert s1.cases[1].message == ast.RecordExpr((), PAL.index("{}"))
    assert show(s1.cases[2].message) == "{value: 5, req: {a: 1}, type: 2}"
    assert s1.cases[3].message is None
    assert [(c.expect, c.var, c.shorthand) for c in a.finally_] == [("any", None, False)]


def test_pal_case_node():
    text = 'assert { sequence { grant "ok" request src=c dst=s endpoint=e method=M { value : 5 } } }'
    case = one(text).sequences[0].cases[0]
    p = text.index("grant")
    assert case == ast.TestCase(
        None, "grant", "ok", "request",
        (ast.Selector("src", ast.Name("c", text.index("c dst")), text.index("src")),
         ast.Selector("dst", ast.Name("s", text.index("s endpoint")), text.index("dst")),
         ast.Selector("endpoint", ast.Name("e", text.index("e method")), text.index("endpoint")),
         ast.Selector("method", ast.Name("M", text.index("M {")), text.index("method"))),
        ast.RecordExpr((ast.RecordField(ast.Name("value", text.index("value")),
                                        ast.Lit("int", 5, text.index("5 }")), text.index("value")),),
                       text.index("{ value")),
        p,
    )


def test_pal_shorthand():
    a = one(PAL)
    c1, c2, c3 = a.sequences[1].cases
    assert c1.shorthand and c1.event == "request" and c1.expect is None and c1.var is None
    assert sels(c1) == [("src", "c"), ("dst", "s"), ("endpoint", "pingComp.pingImpl"), ("method", "Ping")]
    m = c1.selectors[3]
    assert m.value.pos == PAL.index("Ping {") and c1.pos == PAL.index("c ~> s : ping")
    assert show(c1.message) == "{value: 100}"
    assert (c2.expect, c2.event, sels(c2)) == ("deny", "request",
                                             [("src", "c"), ("dst", "s"), ("endpoint", "ep"), ("method", "Pong")])
    # `c <~ s` : the server s answers the client c
    assert (c3.expect, c3.name, c3.event, c3.message) == ("grant", "named", "response", None)
    assert sels(c3) == [("src", "s"), ("dst", "c"), ("endpoint", "ep"), ("method", "Pong")]


def test_pal_arrows_and_less_than_minus():
    text = "assert { sequence { x <- execute dst=A\n grant request src=x dst=x method=M { v : (n <-1) } } }"
    (case1, case2) = one(text).sequences[0].cases
    assert case1.var.text == "x" and show(case2.message) == "{v: (< n -1)}"
    # outside test blocks `<-` is always less-than-minus
    assert show(expr("a <-b")) == "(< a (- b))"
    assert where("request { x <- execute }", "SYN001") == (1, 13)


def test_pal_names_optional_and_parts_optional():
    a = one("assert { sequence { k <- execute dst=kl.core.Core } }")
    assert a.name is None and a.setup == () and a.finally_ == () and a.sequences[0].name is None
    a = one('assert "x" { sequence "a" {} sequence "b" {} sequence {} }')
    assert [s.name for s in a.sequences] == ["a", "b", None]


def test_pal_rejected():
    assert where("assert { sequence {\n x <- request src=a dst=b } }", "SYN104") == (2, 4)
    assert where("assert { setup {} sequence {}\n setup {} }", "SYN105") == (2, 2)
    assert where("assert { sequence {} finally {}\n finally {} }", "SYN105") == (2, 2)
    assert where("assert { sequence {}\n setup {} }", "SYN106") == (2, 2)
    assert where("assert { finally {}\n sequence {} }", "SYN106") == (2, 2)
    assert where("assert { sequence { c ~> s : Ping {} } }", "SYN107") == (1, 30)
    item, f = diag('assert "t" { setup {} }', "SYN112")
    assert item.severity.value == "warning" and len(f.decls) == 1
    item, _ = diag('assert "t" { sequence { grant } }', "SYN001")
    assert (item.span.line, item.span.column) == (1, 31) and "policy test block" in item.message
    assert where("assert { sequence { execute dst=a.b } setup }", "SYN001") == (1, 45)
    assert where("assert { sequence { c ~> s Ping {} } }", "SYN001") == (1, 28)
    assert where("assert { sequence { c ~> s : ep.Ping ; } }", "SYN002") == (1, 38)
    assert where("assert { sequence { a.b <- execute dst=X } }", "SYN103") == (1, 21)


# ----------------------------------------------------------------------------- lexical


def test_comments_anywhere():
    text = """// leading
request /* a */ src /* b */ = /* c */ a.B // d
{ /* e */ assert ( /* f */ message.x // g
  > /* h */ 1 ) /* i */ }
/* multi
   line */ response { grant () }"""
    b1, b2 = ok(text)
    assert sels(b1) == [("src", "a.B")] and show(b1.body[0]) == "assert((> message.x 1))"
    assert b2.event == "response"


def test_lexical_errors():
    item, f = diag("request { grant () } /* never closed\nresponse { grant () }", "SYN004")
    assert (item.span.line, item.span.column) == (1, 22) and len(f.decls) == 1
    assert where("request { grant () @ }", "SYN002") == (1, 20)
    _f, d = parse('request { assert (message.x == "abc) }')
    assert d.codes()[0] == "SYN004"


def test_layout_is_free():
    a = one("request src=a\ndst=b\n{\ngrant\n(\n)\n}")
    b = one("request src=a dst=b { grant () }")
    assert show(a.body[0]) == show(b.body[0]) and sels(a) == sels(b)


# ----------------------------------------------------------------------------- spec idioms


POLICY_14 = """execute {
    match src = kl.core.Core { match dst = kl.core.Core { grant () }  match dst = Einit { grant () } }
    match src = Einit { match dst = some.App { grant () } }
}
request {
    match dst = kl.core.Core { match src = Einit { grant () }  match src = some.App { grant () } }
    match dst = some.Server { match src = some.App { match endpoint = log, method = Write { grant () } } }
}
request dst = some.Server endpoint = log method = Sum { match src = some.App { deny ((message.req.count) > 1) } }
request { match interface = some.Api method = Wait { grant () } }   // interface selector
response { grant () }
error { grant () }
"""


def test_spec_section_14_idioms():
    decls = ok(POLICY_14)
    assert [d.event for d in decls] == ["execute", "request", "request", "request", "response", "error"]
    sum_ = decls[2]
    assert sels(sum_) == [("dst", "some.Server"), ("endpoint", "log"), ("method", "Sum")]
    assert show(sum_.body[0].body[0]) == "deny((> message.req.count 1))"


def test_spec_section_6_example_policy():
    text = """use nk.base._
use nk.flow._
use EDL kl.core.Core
use EDL Einit
use EDL acme.Sensor
use EDL acme.Hub

execute: kl.core.Execute

policy object hubState : Flow {
    type State = "booting" | "ready" | "halted"
    config = { states : ["booting", "ready", "halted"], initial : "booting"
             , transitions : { "booting" : ["ready", "halted"], "ready" : ["halted"] } }
}

execute {
    match src = kl.core.Core {
        match dst = kl.core.Core { grant () }
        match dst = Einit        { grant () }
    }
    match src = Einit dst = acme.Hub { hubState.init {sid : dst_sid} }
    match src = Einit dst = acme.Sensor { grant () }
}

request dst = acme.Hub endpoint = feed method = Push {
    match src = acme.Sensor {
        assert (message.sample.level <= 1000)
        choice (hubState.query {sid : dst_sid}) {
            "ready" : grant ()
            _       : deny ()
        }
    }
}

request src = acme.Hub dst = kl.core.Core { grant () }
response { grant () }
error    { grant () }
security src = acme.Hub method = Ready { hubState.enter {sid : src_sid, state : "ready"} }
audit default = empty 0
"""
    decls = ok(text)
    kinds = [type(d).__name__ for d in decls]
    assert kinds == ["UsePsl", "UsePsl", "UseEdl", "UseEdl", "UseEdl", "UseEdl", "ExecuteDecl", "PolicyObject",
                     "Binding", "Binding", "Binding", "Binding", "Binding", "Binding", "AuditDefault"]
    assert sels(decls[-2]) == [("src", "acme.Hub"), ("method", "Ready")]


def test_security_models_examples():
    text = """request dst=Cfg, method=SetMode {
    choice (re.select {text : message.mode}) {
        "^ro$"    : grant ()
        "^debug"  : deny ()
        _         : deny ()
    }
}
response src=FsDrv, endpoint=fs.Files {
    match method=Create {
        mic.create {source : dst_sid, target : message.file.handle, container : (),
                    driver : src_sid, level : "UNTRUSTED"}
    }
}
request src=UartDrv, dst=kl.core.Core, method=MapIo {
    assert (message.addr >= mmio.get {sid : src_sid, key : "base"})
}
request dst=Store, method=Put { assert (!pred.empty (message.key)) }
security src=Ui, method=Unlock { assert (bool.any ([message.pin == 1234, message.admin])) }
request dst=Fs, method=Read { assert ((message.file.rights & 1) != 0) }
"""
    assert len(ok(text)) == 6


def test_paren_less_11_forms():
    b = body("assert message.flag math.sum [1, 2] assert (x) deny message.bad grant ()")
    assert [show(s) for s in b] == ["assert message.flag", "math.sum [1, 2]", "assert(x)", "deny message.bad",
                                    "grant(())"]
    assert [s.parenthesized for s in b] == [False, False, True, False, True]


# ----------------------------------------------------------------------------- recovery


def test_several_broken_declarations_report_all():
    text = """use nk.base._
request src=a { grant ( }
request dst=b { assert (message.x > ) }
response src=c { deny () }
error src= { grant () }
security src=d { grant () }
"""
    f, d = parse(text)
    assert d.codes() == ["SYN001", "SYN001", "SYN001"]
    assert [(x.span.line, x.span.column) for x in d] == [(2, 25), (3, 37), (5, 12)]
    assert [type(x).__name__ for x in f.decls] == ["UsePsl", "Binding", "Binding"]
    assert [x.event for x in f.decls[1:]] == ["response", "security"]
    assert "request binding" in d.items[0].message and "error binding" in d.items[2].message


def test_missing_closing_brace_does_not_swallow_the_file():
    text = "request { grant (\nresponse { grant () }\nuse nk.base._\n"
    f, d = parse(text)
    assert d.codes() == ["SYN001"] and (d.items[0].span.line, d.items[0].span.column) == (2, 1)
    assert [type(x).__name__ for x in f.decls] == ["Binding", "UsePsl"]


def test_extra_closing_brace():
    f, d = parse("request { grant () } }\nresponse { grant () }")
    assert d.codes() == ["SYN001"] and d.items[0].span.column == 22
    assert [x.event for x in f.decls] == ["response"]


def test_leading_garbage():
    f, d = parse("foo bar\nrequest {}")
    assert d.codes() == ["SYN001"] and (d.items[0].span.line, d.items[0].span.column) == (1, 1)
    assert len(f.decls) == 1


def test_keyword_value_split_only_on_the_same_line():
    f, d = parse("audit default = error 0\nrequest endpoint=\nrequest { grant () }")
    assert [type(x).__name__ for x in f.decls] == ["AuditDefault", "Binding"]
    assert f.decls[0].profile.text == "error"
    assert d.codes() == ["SYN003"] and d.items[0].span.line == 2


def test_too_deep_is_reported_not_raised():
    text = "request { assert (" + "[" * 300 + "x" + "]" * 300 + ") }\nresponse { grant () }"
    for use_cache in (True, True, False):
        f, d = parse(text, use_cache=use_cache)
        assert d.codes() == ["SYN111"] and [x.event for x in f.decls] == ["response"]
        assert (d.items[0].span.line, d.items[0].span.column) == (1, 1)
    assert parse("request { assert (" + "!" * 400 + "x) }")[1].codes() == ["SYN111"]
    # a long run of && or || is not nesting (tests/test_long_chains.py): it loads, shallow
    assert parse("request { assert (" + " && ".join(["x"] * 300) + ") }")[1].codes() == []
    # redundant parentheses add no depth; long flat lists are fine
    assert show(expr("(" * 300 + "x" + ")" * 300)) == "x"
    assert len(body(" ".join(["grant ()"] * 500))) == 500
    assert len(expr("[" + ", ".join(["1"] * 2000) + "]").items) == 2000


# ----------------------------------------------------------------------------- caches and properties


def test_fast_constructors_build_equal_nodes():
    make = psl._fast_constructor(ast.TestCase)
    a = make(None, "grant", None, "request", (), None, 3)
    b = ast.TestCase(None, "grant", None, "request", (), None, 3)
    assert a == b and type(a) is ast.TestCase and a.shorthand is False and hash(a) == hash(b)
    assert psl._fast_constructor(ast.PslFile) is ast.PslFile          # not slotted: plain class


def _reference(text: str):
    """AST and diagnostics from lark's own parser + the same builder (no driver, no cache)."""
    src = SourceText(path="t.psl", text=text)
    diags = Diagnostics()
    grammar = psl._tables().grammar
    tokens = lex(grammar, src, diags)
    out = []
    chunks = psl._merge_split_names(split_declarations(tokens, psl.STARTERS), text) if tokens else []
    transformer = psl.PslTransformer(psl.PslBuilder(src, diags))
    index = 0
    while index < len(chunks):
        chunk = chunks[index]
        index += 1
        if any(t.type in ("LARROW", "LSQUIG") for t in chunk):
            chunk = psl._split_arrows(chunk)
        try:
            tree = grammar.parser.parse(chunk, start="decl")
        except lark.exceptions.UnexpectedToken as exc:
            failed = next((i for i, t in enumerate(chunk) if t is exc.token), len(chunk))
            rest = psl._recovery_point(chunk, failed, text)
            if rest:
                chunks[index:index] = psl._merge_split_names(split_declarations(chunk[rest:], psl.STARTERS), text)
            continue
        out.append(transformer.transform(tree))
    return tuple(out)


def _assert_same_everywhere(text: str):
    psl.clear_cache()
    runs = [parse(text, use_cache=c) for c in (True, True, False)]   # cold, warm, uncached
    (f0, d0), (f1, d1), (f2, d2) = runs
    assert f0.decls == f1.decls == f2.decls
    assert [x.render() for x in d0] == [x.render() for x in d1] == [x.render() for x in d2]
    return f0, d0


def _bench_generator():
    path = Path(__file__).parent / "bench" / "bench_psl_parse.py"
    spec = importlib.util.spec_from_file_location("bench_psl_parse", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_psl_parse", module)
    spec.loader.exec_module(module)
    return module.Gen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cache_replay_equals_fresh_parse_on_generated_policies(seed):
    text = _bench_generator()(seed).policy(1500)
    f, d = _assert_same_everywhere(text)
    assert not d.items and len(f.decls) > 100
    assert f.decls == _reference(text)
    info = psl.cache_info()
    assert info["hits"] > 0 and info["group_hits"] > 0


def test_cache_is_bounded(monkeypatch):
    text = _bench_generator()(7).policy(800)
    fresh = parse(text, use_cache=False)[0].decls
    psl.clear_cache()
    monkeypatch.setattr(psl._DECLS, "limit", 400)
    monkeypatch.setattr(psl._GROUP_CACHE, "limit", 300)
    for _ in range(2):
        assert parse(text)[0].decls == fresh
        info = psl.cache_info()
        assert 0 < info["tokens"] <= 400 and 0 < info["group_tokens"] <= 300
    psl.clear_cache()


# random valid policies for the exactness property

_atoms = st.sampled_from([
    "message.a", "message.req.method", "message.type", "1", "0x1F", '"t"', "true", "()", "dst_sid",
    "xs.[0].type", "size (message.s)", "f.q {sid : src_sid}", "[1, 2]", "{ a : 1, type : 2 }", "-3",
])
_binary = st.sampled_from(["+", "-", "*", "&", "|", "&&", "||", "==>"])
_compare = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _combine(inner):
    return st.one_of(
        st.tuples(inner, _binary, inner).map(lambda t: f"{t[0]} {t[1]} ({t[2]})"),
        st.tuples(inner, _compare, inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        inner.map(lambda e: f"!({e})"),
        inner.map(lambda e: f"- {e}"),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"math.neg ({e})"),
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(inner, max_size=2).map(lambda xs: "{ " + ", ".join(f"k{i} : {x}" for i, x in enumerate(xs)) + " }"),
    )


_exprs = st.recursive(_atoms, _combine, max_leaves=8)
_selector = st.sampled_from(["src=a.B", "dst = c.D", "endpoint=ep.x", "method=M", "interface=i.I", "method=error"])


def _stmts(depth: int):
    call = st.one_of(
        st.just("grant ()"),
        _exprs.map(lambda e: f"assert ({e})"),
        _exprs.map(lambda e: f"deny ({e})"),
        st.sampled_from(["assert message.ok", "math.sum [1, 2]", "o.m {sid : dst_sid}"]),
    )
    if depth == 0:
        return call
    inner = st.lists(_stmts(depth - 1), max_size=3).map(" ".join)
    match = st.tuples(st.lists(_selector, min_size=1, max_size=2), inner).map(
        lambda t: f"match {', '.join(t[0])} {{ {t[1]} }}")
    choice = st.tuples(_exprs, st.lists(st.tuples(st.sampled_from(['"a"', '"b"', "1", "_"]), _stmts(depth - 1)),
                                        min_size=1, max_size=3)).map(
        lambda t: f"choice ({t[0]}) {{ " + " ".join(f"{c} : {{ {s} }}" for c, s in t[1]) + " }")
    return st.one_of(call, match, choice)


_binding = st.tuples(
    st.sampled_from(["execute", "request", "response", "error", "security"]),
    st.lists(_selector, max_size=3),
    st.lists(_stmts(2), max_size=4),
).map(lambda t: f"{t[0]} {' '.join(t[1])} {{ {' '.join(t[2])} }}")
_decl = st.one_of(
    _binding, _binding,
    _exprs.map(lambda e: f"policy object o : M {{ config = {e} }}"),
    st.sampled_from(["use nk.base._", "use EDL a.B", "execute: kl.core.Execute", "audit default = p 1",
                     "type T = Set<Text> | ()", 'assert { sequence { x <- execute dst=A grant "n" request src=x dst=x '
                     "method=M { a : 1 } } }", "request src=a { grant (", "request { assert (1 < ) }"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_decl, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_cache_is_exact_on_random_policies(decls, rnd):
    # repeat declarations so that shapes recur with different names/values
    text = "\n".join(decls + [rnd.choice(decls) for _ in range(3)])
    f, _d = _assert_same_everywhere(text)
    assert f.decls == _reference(text)


_VOCAB = [
    "request", "response", "error", "security", "execute", "use", "EDL", "policy", "object", "type", "task",
    "class", "config", "audit", "profile", "default", "match", "choice", "assert", "setup", "sequence",
    "finally", "grant", "deny", "any", "src", "dst", "endpoint", "method", "interface", "=", ",", ":", "{",
    "}", "(", ")", "[", "]", ".", "_", "<-", "~>", "<~", "==>", "||", "&&", "==", "!=", "<", "<=", ">", ">=",
    "+", "-", "*", "|", "&", "~", "!", "a", "b.c", "nk.base._", "message.x", "1", "0x2", '"s"', "true",
    "//c\n", "/* c */", "\n", "@", '"open', "/*",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_VOCAB), max_size=60))
def test_token_soup_never_raises(words):
    text = " ".join(words)
    f, d = _assert_same_everywhere(text)
    assert isinstance(f, ast.PslFile)
    for item in d:
        assert item.code.startswith("SYN") and item.span is not None and item.span.line >= 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_never_raises(text):
    f, d = parse(text)
    assert isinstance(f, ast.PslFile)
    assert all(item.code.startswith("SYN") for item in d)


def test_randomly_mutated_policy_never_raises():
    rnd = random.Random(5)
    base = _bench_generator()(11).policy(300)
    for _ in range(40):
        chars = list(base)
        for _ in range(rnd.randint(1, 20)):
            i = rnd.randrange(len(chars))
            chars[i] = rnd.choice("{}()[]=,:.\"/ *\nax1_")
        _assert_same_everywhere("".join(chars))
