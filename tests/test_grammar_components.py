"""CDL / EDL grammar and parser: both EDL forms, legacy blocks, checks with positions."""
from __future__ import annotations

import pytest

from policy_lang.diagnostics import Diagnostics, Severity, code_info
from policy_lang.source import SourceText
from policy_lang.syntax import ast
from policy_lang.syntax.components import parse_component


def parse(text: str, kind: str, path: str | None = None):
    diags = Diagnostics()
    path = path or ("X.cdl" if kind == "component" else "X.edl")
    f = parse_component(SourceText(path=path, text=text), diags, kind)
    return f, diags


def ok(text: str, kind: str) -> ast.ComponentFile:
    f, diags = parse(text, kind)
    assert not list(diags), diags.render()
    assert f is not None
    return f


def where(diags: Diagnostics, code: str) -> list[tuple[int, int]]:
    return [(d.span.line, d.span.column) for d in diags if d.code == code]


def eps(f: ast.ComponentFile) -> list[tuple[str, str]]:
    return [(e.name.text, e.interface.text) for e in f.endpoints]


def insts(f: ast.ComponentFile) -> list[tuple[str, str]]:
    return [(c.name.text, c.component.text) for c in f.components]


# ----------------------------------------------------------------------------- CDL

def test_cdl_full():
    text = (
        "component acme.IngestComp\n"
        "security acme.IngestControl\n"
        "endpoints {\n"
        "    raw : acme.Telemetry\n"
        "    cmd : acme.Command\n"
        "}\n"
        "components {\n"
        "    archive : acme.ArchiveComp\n"
        "}\n"
    )
    f = ok(text, "component")
    assert f.kind == "component" and f.form == "component"
    assert f.name == ast.Name("acme.IngestComp", text.index("acme.IngestComp"))
    assert f.security == ast.Name("acme.IngestControl", text.index("acme.IngestControl"))
    assert eps(f) == [("raw", "acme.Telemetry"), ("cmd", "acme.Command")]
    assert insts(f) == [("archive", "acme.ArchiveComp")]
    assert f.endpoints[0].pos == text.index("raw")
    assert f.components[0].pos == text.index("archive")
    assert f.legacy_interfaces is False
    assert f.source.path == "X.cdl"


def test_cdl_sections_in_any_order():
    f = ok(
        "component a.Comp\ncomponents { c : a.Inner }\nendpoints { e : a.Iface }\nsecurity a.Sec\n",
        "component",
    )
    assert eps(f) == [("e", "a.Iface")] and insts(f) == [("c", "a.Inner")]
    assert f.security.text == "a.Sec"


@pytest.mark.parametrize("body", [
    "a : x.A; b : x.B;",
    "a : x.A, b : x.B",
    "a:x.A b:x.B",
    "\n  a : x.A ;\n  b : x.B ,\n",
])
def test_entry_separators_are_lenient(body):
    f = ok(f"component x.Comp\nendpoints {{ {body} }}\n", "component")
    assert eps(f) == [("a", "x.A"), ("b", "x.B")]


def test_same_interface_twice_is_fine():
    f = ok("component x.Comp\nendpoints { a : x.I\n b : x.I }\n", "component")
    assert eps(f) == [("a", "x.I"), ("b", "x.I")]


def test_cdl_with_comments():
    f = ok(
        "/* Component name: Ping */\ncomponent echo.Ping\n// implementation\nendpoints {\n"
        "  ping : echo.Ping // the endpoint\n}\n",
        "component",
    )
    assert eps(f) == [("ping", "echo.Ping")]


def test_keywords_inside_blocks_and_dotted_names():
    f = ok(
        "component a.Comp\nsecurity kl.security.Audit\n"
        "endpoints { security : a.components.Sec; task : a.class.Iface }\n",
        "component",
    )
    assert f.security.text == "kl.security.Audit"
    assert eps(f) == [("security", "a.components.Sec"), ("task", "a.class.Iface")]


def test_empty_component_warning():
    f, diags = parse("component a.Empty\n", "component")
    assert f is not None and f.name.text == "a.Empty"
    assert diags.codes() == ["SYN244"]
    assert where(diags, "SYN244") == [(1, 11)]
    assert diags.items[0].severity is Severity.WARNING


# ----------------------------------------------------------------------------- EDL

def test_edl_task_class_form():
    text = (
        "task class acme.Hub\n"
        "components { ingest : acme.IngestComp }\n"
        "endpoints  { feed : acme.Telemetry }\n"
        "security acme.HubControl\n"
    )
    f = ok(text, "class")
    assert f.kind == "class" and f.form == "task class"
    assert f.name == ast.Name("acme.Hub", text.index("acme.Hub"))
    assert insts(f) == [("ingest", "acme.IngestComp")]
    assert eps(f) == [("feed", "acme.Telemetry")]
    assert f.security.text == "acme.HubControl"


def test_edl_entity_form():
    f = ok("entity kl.Signald\ncomponents {\n    signals : kl.Signals\n}\n", "class")
    assert f.form == "entity" and f.name.text == "kl.Signald"
    assert insts(f) == [("signals", "kl.Signals")]


@pytest.mark.parametrize("text,form", [
    ("task class example.Client\n", "task class"),
    ("// Class of processes that do not contain components.\nentity Hello\n", "entity"),
])
def test_edl_with_only_the_name(text, form):
    f = ok(text, "class")
    assert f.form == form
    assert f.endpoints == () and f.components == () and f.security is None


def test_edl_components_block_in_sdk_example_layout():
    f = ok(
        "task class example.Server\n\ncomponents\n{\n    lion:      example.Cat\n"
        "    domestic:  example.Cat\n    collie:    example.Dog\n}\n",
        "class",
    )
    assert insts(f) == [("lion", "example.Cat"), ("domestic", "example.Cat"), ("collie", "example.Dog")]


# ----------------------------------------------------------------------------- legacy forms

@pytest.mark.parametrize("kind,header", [("component", "component echo.Ping"), ("class", "entity echo.Server")])
def test_legacy_interfaces_block(kind, header):
    f = ok(f"{header}\ninterfaces {{\n    ping: echo.Ping\n}}\n", kind)
    assert eps(f) == [("ping", "echo.Ping")]
    assert f.legacy_interfaces is True


def test_legacy_order_security_interfaces_components():
    f = ok(
        "entity a.Server\nsecurity a.Sec\ninterfaces { impl : a.Iface }\ncomponents { c : a.Comp }\n",
        "class",
    )
    assert f.security.text == "a.Sec" and eps(f) == [("impl", "a.Iface")] and insts(f) == [("c", "a.Comp")]
    assert f.legacy_interfaces


def test_singular_interface_block():
    f, diags = parse("entity a.Server\ninterface {\n    impl : a.Iface\n}\n", "class")
    assert eps(f) == [("impl", "a.Iface")] and f.legacy_interfaces
    assert diags.codes() == ["SYN243"]
    assert where(diags, "SYN243") == [(2, 1)]
    assert diags.items[0].severity is Severity.WARNING


def test_education_kit_cdl_bare_entries():
    f, diags = parse("/* Component name: CoFoo */\ncomponent CoFoo\nfoo: Foo.IFoo\nbar: Baz.IBar\n", "component")
    assert eps(f) == [("foo", "Foo.IFoo"), ("bar", "Baz.IBar")]
    assert f.legacy_interfaces
    assert diags.codes() == ["SYN242"]
    assert where(diags, "SYN242") == [(3, 1)]


def test_education_kit_edl_bare_entries():
    f, diags = parse("entity Driver\nsecurity a.Sec\nuart0: UartComp\nuart1: UartComp\n", "class")
    assert insts(f) == [("uart0", "UartComp"), ("uart1", "UartComp")]
    assert f.security.text == "a.Sec"
    assert not f.legacy_interfaces
    assert diags.codes() == ["SYN242"]


# ----------------------------------------------------------------------------- checks

@pytest.mark.parametrize("kind,text,col", [
    ("component", "entity a.B\n", 1),
    ("component", "task class a.B\n", 1),
    ("class", "component a.B\n", 1),
])
def test_wrong_header_kind(kind, text, col):
    f, diags = parse(text, kind)
    assert f is None
    assert diags.codes() == ["SYN240"]
    assert where(diags, "SYN240") == [(1, col)]


def test_missing_header():
    f, diags = parse("\nendpoints { a : b.C }\ncomponent x.Y\n", "component")
    assert f is None
    assert diags.codes() == ["SYN240"]
    assert where(diags, "SYN240") == [(2, 1)]


def test_empty_file():
    f, diags = parse("   // only a comment\n", "class")
    assert f is None and diags.codes() == ["SYN240"]


def test_second_header():
    f, diags = parse("component a.B\nendpoints { e : a.I }\ncomponent a.C\n", "component")
    assert f.name.text == "a.B"
    assert diags.codes() == ["SYN241"]
    assert where(diags, "SYN241") == [(3, 1)]


def test_security_twice():
    f, diags = parse("component a.B\nsecurity a.S1\nsecurity a.S2\n", "component")
    assert f.security.text == "a.S1"
    assert where(diags, "SYN241") == [(3, 1)]


def test_endpoint_blocks_twice_are_merged_with_an_error():
    f, diags = parse("component a.B\nendpoints { x : a.I }\nendpoints { y : a.J }\n", "component")
    assert eps(f) == [("x", "a.I"), ("y", "a.J")]
    assert diags.codes() == ["SYN241"]
    assert where(diags, "SYN241") == [(3, 1)]
    assert diags.items[0].severity is Severity.ERROR


@pytest.mark.parametrize("block,what", [("endpoints", "endpoint"), ("components", "component instance")])
def test_underscore_in_entry_names(block, what):
    _, diags = parse(f"component a.B\n{block} {{\n  my_name : a.I\n}}\n", "component")
    assert diags.codes() == ["SYN205"]
    assert where(diags, "SYN205") == [(3, 3)]
    assert what in diags.items[0].message
    assert diags.items[0].severity is Severity.ERROR


@pytest.mark.parametrize("block", ["endpoints", "components"])
def test_duplicate_entry_names(block):
    _, diags = parse(f"task class a.B\n{block} {{\n  x : a.I\n  x : a.J\n}}\n", "class")
    assert diags.codes() == ["SYN206"]
    assert where(diags, "SYN206") == [(4, 3)]


def test_endpoint_and_instance_may_share_a_name():
    ok("component a.B\nendpoints { x : a.I }\ncomponents { x : a.C }\n", "component")


@pytest.mark.parametrize("name", ["acme.hub", "acme.My_Hub"])
def test_class_name_style_warning(name):
    _, diags = parse(f"task class {name}\n", "class")
    assert diags.codes() == ["SYN213"]
    assert diags.items[0].severity is Severity.WARNING


def test_syntax_error_in_block_keeps_other_sections():
    f, diags = parse("component a.B\nendpoints {\n  x : \n}\nsecurity a.S\n", "component")
    assert diags.codes() == ["SYN001"]
    assert where(diags, "SYN001") == [(4, 1)]
    assert f.security.text == "a.S" and f.endpoints == ()


def test_missing_colon():
    _, diags = parse("component a.B\nendpoints {\n  x a.I\n}\n", "component")
    assert where(diags, "SYN001") == [(3, 5)]


def test_unclosed_block():
    _, diags = parse("task class a.B\nendpoints { x : a.I\n", "class")
    assert diags.codes() == ["SYN003"]


def test_unterminated_comment():
    f, diags = parse("component a.B\nsecurity a.S\n/* open\nendpoints { x : a.I }\n", "component")
    assert diags.codes() == ["SYN004"]
    assert where(diags, "SYN004") == [(3, 1)]
    assert f.security.text == "a.S"


def test_unexpected_character():
    _, diags = parse("component a.B\nendpoints { x : a.I; y = a.J }\n", "component")
    assert where(diags, "SYN002") == [(2, 24)]


def test_bad_kind_argument():
    with pytest.raises(ValueError):
        parse("component a.B\n", "cdl")


def test_codes_are_documented():
    for code in ["SYN240", "SYN241", "SYN242", "SYN243", "SYN244", "SYN205", "SYN206", "SYN213"]:
        info = code_info(code)
        assert info.title and info.hint
