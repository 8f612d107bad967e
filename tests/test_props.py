"""Property files (``*.props``): grammar, resolution, every PRP code, robustness.

Each PRP code has a *firing* test (a minimal property text with exactly that problem:
the code is reported with its severity at the line and column of the offending text)
and a *quiet* test (the corrected or neighbouring form does not report it);
``test_every_prp_code_has_a_firing_and_a_quiet_test`` keeps that complete.

Most tests resolve against a small "door" solution written into a temporary folder
(the way tests/test_engine.py builds its ``door_solution``): a client with a
security interface, a server with two endpoints, a class with two instances
(``s1``, ``s2``), a class with none, a Flow object ``fsm`` and a HashSet ``seen``.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_lang.props as props_mod
from policy_lang import Diagnostics, Solution, load
from policy_lang.diagnostics import catalogue
from policy_lang.props import (
    ChannelDecl, EventPattern, ProcRef, Property, PropertyFile, SidOf, find_property_files,
    load_properties, parse_properties,
)
from policy_lang.source import SourceText
from policy_lang.syntax import ast
from policy_lang.syntax.psl import parse_psl
from policy_lang.templates import expand_template

ROOT = Path(__file__).resolve().parent.parent
SMART_LOCK = ROOT / "models" / "smart_lock"

# --------------------------------------------------------------------------- fixtures

API_IDL = """package door.Api
struct Req { UInt8 level; string<8> tag; }
interface {
    Open(in UInt32 code, in Req req, out UInt8 ok, error SInt32 rc);
    Close(error SInt32 rc);
    Put(in sequence<Req, 2> items, in Handle h);
}
"""
FILES = {
    "resources/Api.idl": API_IDL,
    "resources/Log.idl": "package door.Log\ninterface {\n    Write(in UInt8 level);\n}\n",
    "resources/Ctl.idl": "package door.Ctl\ninterface {\n    Arm(in UInt8 level);\n}\n",
    "resources/Client.edl": "task class door.Client\nsecurity door.Ctl\n",
    "resources/Server.edl": "task class door.Server\nendpoints {\n    api : door.Api\n    log : door.Log\n}\n",
    "resources/Sensor.edl": "task class door.Sensor\n",
    "resources/Spare.edl": "task class door.Spare\nendpoints {\n    api : door.Api\n}\n",
    "einit/src/security.psl": """use nk.base._
use nk.basic._
use nk.flow._
use nk.hashmap._
use EDL kl.core.Core
use EDL Einit
use EDL door.Client
use EDL door.Server
use EDL door.Sensor
use EDL door.Spare
execute: kl.core.Execute
policy object fsm : Flow {
    type State = "closed" | "open"
    config = { states : ["closed", "open"], initial : "closed",
               transitions : { "closed" : ["open"], "open" : ["closed"] } }
}
policy object seen : HashSet {
    type Entry = UInt32
    config = { set_size : 4, pool_size : 1 }
}
execute { grant () }
execute src=Einit, dst=door.Server { fsm.init { sid : dst_sid } seen.init { sid : dst_sid } }
request { grant () }
""",
}
INIT = """entities:
  - name: door.Client
    task: client
    connections:
      - target: server
        id: c
  - name: door.Server
    task: server
  - name: door.Sensor
    task: s1
  - name: door.Sensor
    task: s2
"""


def door_solution(root: Path, init: str = INIT) -> Solution:
    """The door solution written under ``root`` and loaded (checked clean)."""
    for rel, text in {**FILES, "einit/src/init.yaml": init}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    sol = load(root)
    assert sol.ok and not sol.diagnostics, [d.render() for d in sol.diagnostics]
    return sol


@pytest.fixture(scope="module")
def sol(tmp_path_factory) -> Solution:
    return door_solution(tmp_path_factory.mktemp("door"))


@pytest.fixture(scope="module")
def lock() -> Solution:
    s = load(SMART_LOCK)
    assert s.ok
    return s


def parse(solution: Solution, text: str) -> PropertyFile:
    return parse_properties(solution, SourceText("t.props", text))


def pos_of(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """(line, column), 1-based, of the nth occurrence of ``needle``."""
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def fires(pf: PropertyFile, code: str, text: str, needle: str, nth: int = 1, severity: str = "error"):
    """Exactly one ``code``, with its severity, at ``needle`` in ``text``; returns it."""
    hits = [d for d in pf.diagnostics if d.code == code]
    assert len(hits) == 1, [d.render() for d in pf.diagnostics]
    d = hits[0]
    assert d.severity.value == severity
    assert (d.span.line, d.span.column) == pos_of(text, needle, nth), d.render()
    assert d.span.file == "t.props"
    assert d.hint
    return d


def quiet(pf: PropertyFile, code: str) -> None:
    assert code not in [d.code for d in pf.diagnostics], [d.render() for d in pf.diagnostics]


def clean(pf: PropertyFile) -> PropertyFile:
    assert pf.diagnostics == (), [d.render() for d in pf.diagnostics]
    assert pf.ok
    return pf


def only(pf: PropertyFile) -> Property:
    clean(pf)
    assert len(pf.properties) == 1
    return pf.properties[0]


def shape(node):
    """A syntax tree without positions, for comparing two parses."""
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(
            shape(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "pos"
        )
    return node


# =========================================================================== parsing

def test_event_properties_of_every_kind(sol):
    text = """
property a: never request src=client dst=server endpoint=api method=Open
property b: always response src=server, dst=client, method=Open where message.ok == 1
property c: never error src=server interface=door.Api method=Close
property d: never execute src=Einit dst=server
property e: always security src=client method=Arm where message.level < 3
"""
    pf = clean(parse(sol, text))
    kinds = [(p.name, p.kind, p.pattern.kind) for p in pf.properties]
    assert kinds == [("a", "never_event", "request"), ("b", "always_event", "response"),
                     ("c", "never_event", "error"), ("d", "never_event", "execute"),
                     ("e", "always_event", "security")]
    a = pf.properties[0].pattern
    assert a == EventPattern("request", a.src, a.dst, "api", None, "Open", a.span)
    assert a.src.tasks == ("client",) and a.dst.tasks == ("server",)
    assert (a.span.line, a.span.column, a.span.end_column) == (2, 19, 73)
    assert pf.properties[0].condition is None
    c = pf.properties[2].pattern
    assert (c.interface, c.method, c.endpoint) == ("door.Api", "Close", None)
    assert isinstance(pf.properties[1].condition, ast.BinOp)


def test_selectors_in_any_order_with_commas_or_spaces(sol):
    one = only(parse(sol, "property p: never request method=Open, endpoint=api dst=server src=client,"))
    two = only(parse(sol, "property p: never request src=client dst=server endpoint=api method=Open"))
    assert one.pattern.method == two.pattern.method == "Open"
    assert one.pattern.dst.tasks == two.pattern.dst.tasks == ("server",)


def test_pattern_without_selectors(sol):
    p = only(parse(sol, "property p: never request"))
    assert p.pattern == EventPattern("request", None, None, None, None, None, p.pattern.span)


def test_state_properties(sol):
    text = """property n: never state fsm[server] == "open" && seen.contains {sid : sid(server), entry : 0}
property r: reachable state fsm[server] == "open"
property i: invariant state !seen.contains {sid : sid(server), entry : 7}
"""
    pf = clean(parse(sol, text))
    assert [(p.name, p.kind, p.pattern) for p in pf.properties] == [
        ("n", "never_state", None), ("r", "reachable_state", None), ("i", "invariant", None)]
    assert isinstance(pf.properties[2].condition, ast.UnOp)


def test_never_flow_with_and_without_via(sol):
    pf = clean(parse(sol, "property f: never flow client, s1 -> server\n"
                          "property g: never flow door.Sensor -> server, client unless via Einit, kl.core.Core\n"))
    f, g = pf.properties
    assert f.kind == g.kind == "never_flow"
    assert [r.text for r in f.flow_src] == ["client", "s1"] and [r.text for r in f.flow_dst] == ["server"]
    assert f.flow_via == () and f.pattern is None and f.condition is None
    assert g.flow_src[0] == ProcRef("door.Sensor", ("s1", "s2"), True, g.flow_src[0].span)
    assert [r.tasks for r in g.flow_via] == [("Einit",), ("kl.core.Core",)]


def test_channel_declarations(sol):
    pf = clean(parse(sol, "channel client -> server\nchannel door.Sensor -> door.Server  # every sensor\n"))
    first, second = pf.channels
    assert first == ChannelDecl(first.client, first.server, first.span)
    assert (first.client.tasks, first.server.tasks) == (("client",), ("server",))
    assert (first.span.line, first.span.column, first.span.end_column) == (1, 1, 25)
    assert second.client.is_class and second.client.tasks == ("s1", "s2")
    assert second.server == ProcRef("door.Server", ("server",), True, second.server.span)
    assert pf.properties == ()


def test_comments_of_all_three_kinds_and_property_text(sol):
    text = """# hash comment
// line comment
/* block
   comment */
property p:   # after the colon
    never request src=client   /* inline */ dst=server
        where message.code >= 0x10   // trailing
"""
    p = only(parse(sol, text.replace("dst=server", "dst=server method=Open")))
    assert p.text == "never request src=client dst=server method=Open where message.code >= 0x10"
    assert p.span.line == 5 and p.span.column == 10
    assert p.source is not None and p.source.path == "t.props"


def test_condition_positions_map_back_through_source(sol):
    text = "property p:\n  never request dst=server method=Open\n  where message.code > 1"
    p = only(parse(sol, text))
    assert p.source.span(p.condition.left.pos)[1:3] == pos_of(text, "message.code")


def test_keywords_are_words_where_a_name_is_expected(sol):
    p = only(parse(sol, "property state: never request dst=server method=Open where message.req.tag == \"x\""))
    assert p.name == "state"
    diags = Diagnostics()
    decls, _ = props_mod._parse(SourceText("t.props", "property p: never flow a, channel -> property, b"), diags)
    assert not diags.items and [n.text for n in decls[0].body.flow_dst] == ["property", "b"]


def test_process_reference_rule(sol):
    pf = clean(parse(sol, "channel client -> door.Server"))
    ref = pf.channels[0].server
    assert (ref.tasks, ref.is_class) == (("server",), True)
    pf = clean(parse(sol, "property p: never flow kl.core.Core, Einit -> client"))
    assert [(r.tasks, r.is_class) for r in pf.properties[0].flow_src] == [(("kl.core.Core",), False), (("Einit",), False)]


def test_instance_task_names_take_precedence_over_class_names(tmp_path):
    init = INIT.replace("task: client", "task: door.Spare")
    s = door_solution(tmp_path, init.replace("target: server", "target: server"))
    p = only(parse(s, "property p: never request src=door.Spare dst=server"))
    assert p.pattern.src == ProcRef("door.Spare", ("door.Spare",), False, p.pattern.src.span)


def test_sid_resolves_to_the_task(sol):
    p = only(parse(sol, "property p: invariant state sid(door.Server) == sid(server) && sid(s1) != sid(Einit)"))
    left = p.condition.left
    assert left.left == SidOf("server", left.left.pos) and left.right.task == "server"
    assert [p.condition.right.left.task, p.condition.right.right.task] == ["s1", "Einit"]


def test_obj_index_desugars_to_flow_query():
    text = 'property p: reachable state fsm[server] == "open"'
    diags = Diagnostics()
    decls, sugar = props_mod._parse(SourceText("t.props", text), diags)
    assert not diags.items
    cond = decls[0].body.condition
    obj, lsqb, proc = text.index("fsm"), text.index("["), text.index("server")
    assert cond.left == ast.Call(
        object=ast.Name("fsm", obj),
        method=ast.Name("query", lsqb),
        arg=ast.RecordExpr((ast.RecordField(ast.Name("sid", proc), SidOf("server", proc), proc),), lsqb),
        parenthesized=False,
        pos=obj,
    )
    assert sugar == {obj}


def test_obj_index_is_the_same_as_the_written_query(sol):
    a = only(parse(sol, 'property p: reachable state fsm[door.Server] == "open"'))
    b = only(parse(sol, 'property p: reachable state fsm.query {sid : sid(server)} == "open"'))
    assert shape(a.condition.left.arg) == shape(b.condition.left.arg)
    assert a.condition.left.arg.fields[0].value.task == "server"


PSL_EXPRESSIONS = [
    "1 + 2 * 3", "a - b - c", "!x && y || z", "a ==> b ==> c", "x | y & z", "-x * ~y",
    "a.[1].b", "(a + b) * c", 'm.f {k : [1, 2, ()], j : "t", 3 : true}', "m.f (x)", "m.f ()",
    "0x1F == 31", "x <-1", "true != false", "- - 3", "a < b && c >= d", "message.items.[0].tag",
    "x.[i + 1]", "(m.f (x)).y", "[]", "{}",
]


@pytest.mark.parametrize("expr", PSL_EXPRESSIONS)
def test_expressions_parse_exactly_as_in_psl(expr):
    diags = Diagnostics()
    psl = parse_psl(SourceText("x.psl", f"request {{ assert ({expr}) }}"), diags)
    decls, _ = props_mod._parse(SourceText("t.props", f"property p: never state {expr}"), diags)
    assert not diags.items, [d.render() for d in diags]
    assert shape(decls[0].body.condition) == shape(psl.decls[0].body[0].arg)


def test_state_expression_with_literals_of_every_kind(sol):
    p = only(parse(sol, 'property p: never state [1, -2, 0xFF] == [()] || {a : "t", b : false} == {}'))
    assert p.condition.op == "||"


def test_ok_is_false_and_properties_left_out_on_error(sol):
    pf = parse(sol, "property good: never request src=client\nproperty bad: never request src=nobody\n")
    assert not pf.ok
    assert [p.name for p in pf.properties] == ["good"]


def test_one_syntax_error_costs_one_declaration(sol):
    pf = parse(sol, "property a: never request src=\nproperty b: never request src=client\nchannel x ->\n"
                    "channel client -> server\n")
    assert [(d.code, d.span.line) for d in pf.diagnostics] == [("PRP003", 1), ("PRP003", 3)]
    assert [p.name for p in pf.properties] == ["b"]
    assert len(pf.channels) == 1


def test_unclosed_bracket_does_not_swallow_the_next_line(sol):
    pf = parse(sol, "property a: never state (1 == 1\nproperty b: never request src=client\n")
    assert [p.name for p in pf.properties] == ["b"]
    assert [(d.code, d.span.line) for d in pf.diagnostics] == [("PRP003", 1)]


def test_empty_and_comment_only_files(sol):
    assert clean(parse(sol, "")).properties == ()
    assert clean(parse(sol, "# nothing\n/* here */\n")).channels == ()


# =========================================================================== templates and files

TEMPLATED = """property p:
{% if WITH_CLIENT %}
    never request src=@CLIENT@ dst=server
{% else %}
    never request src=nobody dst=server
{% endif %}
property q: never state nope == 1
"""


def test_templates_with_defines(sol, tmp_path):
    f = tmp_path / "t.props"
    f.write_text(TEMPLATED)
    pf = load_properties(sol, f, {"WITH_CLIENT": "ON", "CLIENT": "client"})
    assert [p.name for p in pf.properties] == ["p"]
    assert pf.properties[0].pattern.src.tasks == ("client",)
    [d] = pf.diagnostics
    assert (d.code, d.span.line, d.span.column) == ("PRP020", 7, 25)


def test_templates_other_branch_maps_lines_back(sol, tmp_path):
    f = tmp_path / "t.props"
    f.write_text(TEMPLATED)
    pf = load_properties(sol, f, {"WITH_CLIENT": "OFF"})
    codes = {(d.code, d.span.line) for d in pf.diagnostics}
    assert ("PRP010", 5) in codes and ("PRP020", 7) in codes


def test_template_placeholder_without_value_warns(sol, tmp_path):
    f = tmp_path / "t.props"
    f.write_text("property p: never request src=client@X@\n")
    pf = load_properties(sol, f)
    assert [d.code for d in pf.diagnostics] == ["TPL001"]
    assert pf.ok and pf.properties[0].pattern.src.text == "client"


def test_missing_unreadable_and_undecodable_files(sol, tmp_path):
    missing = load_properties(sol, tmp_path / "none.props")
    assert [d.code for d in missing.diagnostics] == ["SRC001"] and not missing.ok
    folder = load_properties(sol, tmp_path)
    assert [d.code for d in folder.diagnostics] == ["SRC004"]
    bad = tmp_path / "bad.props"
    bad.write_bytes(b"property p: never request src=\xff\n")
    pf = load_properties(sol, bad)
    assert [(d.code, d.span.line) for d in pf.diagnostics] == [("SRC003", 1)]
    assert pf.properties == ()


def test_load_properties_path_and_str(sol, tmp_path):
    f = tmp_path / "ok.props"
    f.write_text("property p: never request src=client\n")
    assert load_properties(sol, str(f)).properties == load_properties(sol, f).properties
    assert load_properties(sol, f).path.endswith("ok.props")


def test_find_property_files_sorted_skipping_hidden_folders(tmp_path):
    s = door_solution(tmp_path)
    for rel in ("b.props", "einit/src/a.props", ".hidden/x.props", "einit/.git/y.props", "notes.txt", "c.props.bak"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    found = find_property_files(s)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["b.props", "einit/src/a.props"]


def test_find_property_files_of_a_solution_without_folder():
    assert find_property_files(load(Path("no/such/solution"))) == []


# =========================================================================== smart lock

def test_smart_lock_property_file_is_clean(lock):
    files = find_property_files(lock)
    assert [f.name for f in files] == ["smart_lock.props"]
    pf = clean(load_properties(lock, files[0]))
    kinds = {p.kind for p in pf.properties}
    assert 8 <= len(pf.properties) <= 10
    assert {"never_event", "always_event", "reachable_state", "never_flow"} <= kinds
    by_name = {p.name: p for p in pf.properties}
    jam = by_name["reset_only_when_jammed"].condition.left
    assert jam.object.text == "door" and jam.arg.fields[0].value == SidOf("lock.Controller", jam.arg.fields[0].value.pos)


def test_the_language_examples_on_the_smart_lock(lock):
    text = """property no_net_to_keystore:
    never request src=lock.NetAgent dst=lock.KeyStore
property crypto_reads_signing_keys:
    always request src=lock.Crypto dst=lock.KeyStore endpoint=vault.secrets method=GetKey
        where message.keyId >= 0x100 && message.keyId < 0x200
property reset_only_when_jammed:
    never request src=lock.Ui dst=lock.Controller method=Reset where door[lock.Controller] != "jammed"
property door_can_unlock:
    reachable state door[lock.Controller] == "unlocked"
property never_jammed_and_enrolled:
    never state door[lock.Controller] == "jammed" && tokens.contains {sid : sid(lock.Controller), entry : 0}
property tokens_nonzero:
    invariant state !tokens.contains {sid : sid(lock.Controller), entry : 0}
property no_secret_leak:
    never flow lock.NetAgent -> lock.KeyStore unless via lock.Parser, lock.Controller
property sensors: never request src=lock.Sensor dst=lock.Controller endpoint=feed method=Report
    where message.batch.[0].level > 100
channel lock.Ui -> lock.Updater
"""
    pf = parse(lock, text)
    assert [d.code for d in pf.diagnostics] == ["PRP026"]      # lock.Updater serves nothing
    assert len(pf.properties) == 8 and len(pf.channels) == 1
    sensors = pf.properties[-1].pattern.src
    assert sensors.tasks == ("doorSensor", "boltSensor") and sensors.is_class


def _doc_examples() -> list[str]:
    doc = (ROOT / "docs" / "properties.md").read_text()
    return [b for b in re.findall(r"```text\n(.*?)```", doc, re.S) if not b.startswith("file ")]


@pytest.mark.parametrize("block", _doc_examples())
def test_docs_examples_resolve_on_the_smart_lock(lock, block):
    """Every example in docs/properties.md resolves; an error only where `# error PRPnnn` announces it."""
    source = expand_template(block, "t.props", {}, Diagnostics())
    pf = parse_properties(lock, source)
    lines = block.split("\n")
    for d in pf.diagnostics:
        assert f"error {d.code}" in lines[d.span.line - 2], d.render()
    assert pf.properties or pf.channels


# =========================================================================== robustness

TOKENS = [
    "property", "channel", "p", ":", "never", "always", "reachable", "invariant", "state", "flow",
    "unless", "via", "where", "request", "response", "error", "execute", "security", "src", "dst",
    "endpoint", "interface", "method", "=", ",", "->", "client", "server", "door.Sensor", "fsm", "seen",
    "[", "]", "(", ")", "{", "}", ".", "sid", "message.code", "message", "src_sid", "dst_sid", "0x10", "1",
    '"t"', "true", "==", "!=", "<", "&&", "||", "!", "-", "~", "==>", "*", "+", "|", "&", "#", "/*", "\n",
    "query", "contains", "{sid : sid(server), entry : 1}", "@X@", "{% if X %}", "{% endif %}", "$", '"',
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join) | st.text(max_size=200))
def test_arbitrary_text_never_raises(sol, text):
    pf = parse(sol, text)
    assert isinstance(pf, PropertyFile)
    for d in pf.diagnostics:
        assert d.code[:3] in ("PRP", "TPL") and d.span is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_arbitrary_templated_file_never_raises(sol, tmp_path, text):
    f = tmp_path / "t.props"
    f.write_text(text)
    assert isinstance(load_properties(sol, f, {"X": "1"}), PropertyFile)


@pytest.mark.parametrize("text", [
    "property p: never state " + "(" * 5000 + "1" + ")" * 5000,
    "property p: never state " + "!" * 5000 + "true",
    "property p: never state " + " + ".join(["1"] * 5000) + " == 1",
    "property p: never state " + "[" * 3000,
])
def test_deep_or_long_input_is_a_diagnostic(sol, text):
    pf = parse(sol, text)
    assert pf.diagnostics and not pf.ok


def test_front_end_does_not_import_ksm():
    code = ("import sys, policy_lang.props; "
            "assert not [m for m in sys.modules if m == 'ksm' or m.startswith('ksm.')]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# =========================================================================== codes: catalogue

def test_prp_codes_are_in_the_catalogue():
    codes = [c for c in catalogue() if c.startswith("PRP")]
    assert codes == [f"PRP{i:03d}" for i in range(1, len(codes) + 1)]
    assert all(catalogue()[c].hint for c in codes)


def test_every_prp_code_has_a_firing_and_a_quiet_test():
    wanted = set(re.findall(r'define_code\(\s*"(PRP\d+)"', Path(props_mod.__file__).read_text()))
    names = [n for n in globals() if n.startswith("test_")]
    missing = [f"{code}: {kind}" for code in sorted(wanted) for kind in ("fires", "quiet")
               if not any(n.startswith(f"test_{code.lower()}_{kind}") for n in names)]
    assert not missing, missing


# =========================================================================== PRP001-PRP008 syntax

def test_prp001_fires_for_unexpected_token_with_expected_hint(sol):
    text = "property p:\n    never request src client"
    d = fires(parse(sol, text), "PRP001", text, "client")
    assert "expected '='" in d.hint


def test_prp001_fires_for_a_missing_colon(sol):
    text = "property p never request"
    d = fires(parse(sol, text), "PRP001", text, "never")
    assert d.hint == "expected ':'"


def test_prp001_quiet_for_valid_property(sol):
    quiet(parse(sol, "property p:\n    never request src=client"), "PRP001")


def test_prp002_fires_for_bad_character(sol):
    text = "property p: never state 1 == $"
    fires(parse(sol, text), "PRP002", text, "$")


def test_prp002_fires_for_unterminated_comment(sol):
    text = "property p: never request\n/* no end"
    fires(parse(sol, text), "PRP002", text, "/*")


def test_prp002_quiet_for_the_character_in_text_and_comments(sol):
    quiet(parse(sol, 'property p: never state "$" == "$" # $\n/* $ */'), "PRP002")


def test_prp003_fires_when_the_declaration_ends_early(sol):
    text = "property p: never state 1 == # nothing follows"
    d = fires(parse(sol, text), "PRP003", text, " #")     # just after the last token
    assert "a number" in d.hint


def test_prp003_quiet_for_complete_expression(sol):
    quiet(parse(sol, "property p: never state 1 == 2"), "PRP003")


def test_prp004_fires_for_deep_nesting(sol):
    text = "\nproperty p: never state " + "(" * 300 + "1" + ")" * 300
    fires(parse(sol, text), "PRP004", text, "property")


def test_prp004_quiet_for_moderate_nesting(sol):
    quiet(parse(sol, "property p: never state " + "(" * 150 + "1" + ")" * 150 + " == 1"), "PRP004")


def test_prp005_fires_for_integer_out_of_range(sol):
    text = "property p: never state 1 == 0x1FFFFFFFFFFFFFFFF"
    pf = parse(sol, text)
    fires(pf, "PRP005", text, "0x1F")
    assert pf.properties == ()


def test_prp005_quiet_for_largest_integer(sol):
    quiet(parse(sol, "property p: never state 1 == 0xFFFFFFFFFFFFFFFF"), "PRP005")


def test_prp006_fires_for_duplicate_record_key(sol):
    text = "property p: never state seen.contains {sid : sid(server), sid : sid(client), entry : 1}"
    fires(parse(sol, text), "PRP006", text, "sid :", nth=2)


def test_prp006_quiet_for_distinct_keys(sol):
    quiet(parse(sol, "property p: never state seen.contains {sid : sid(server), entry : 1}"), "PRP006")


def test_prp007_fires_for_selector_given_twice(sol):
    text = "property p: never request src=client src=server"
    fires(parse(sol, text), "PRP007", text, "src=", nth=2)


def test_prp007_quiet_for_distinct_selectors(sol):
    quiet(parse(sol, "property p: never request src=client dst=server"), "PRP007")


def test_prp008_fires_for_dotted_property_name(sol):
    text = "property a.b: never request"
    fires(parse(sol, text), "PRP008", text, "a.b")


def test_prp008_quiet_for_single_word_name(sol):
    quiet(parse(sol, "property a_b: never request"), "PRP008")


# =========================================================================== PRP009-PRP012 names

def test_prp009_fires_for_second_property_of_a_name(sol):
    text = "property p: never request\nproperty q: never response\nproperty p: never error"
    pf = parse(sol, text)
    d = fires(pf, "PRP009", text, "p:", nth=2)
    assert "line 1" in d.message
    assert [p.name for p in pf.properties] == ["p", "q"]


def test_prp009_quiet_for_unique_names(sol):
    quiet(parse(sol, "property p: never request\nproperty q: never request"), "PRP009")


def test_prp010_fires_for_unknown_process(sol):
    text = "property p: never request src=clinet dst=server"
    d = fires(parse(sol, text), "PRP010", text, "clinet")
    assert "client" in d.hint


def test_prp010_fires_in_flows_channels_and_sid(sol):
    text = "property p: never flow nobody -> server\nchannel client -> nowhere\nproperty q: never state sid(zz) == 1"
    pf = parse(sol, text)
    assert [(d.code, d.span.line, d.span.column) for d in pf.diagnostics] == [
        ("PRP010", 1, 24), ("PRP010", 2, 19), ("PRP010", 3, 29)]
    assert pf.properties == () and pf.channels == ()


def test_prp010_quiet_for_tasks_classes_and_builtins(sol):
    quiet(parse(sol, "property p: never flow client, door.Client, kl.core.Core, Einit -> s2"), "PRP010")


def test_prp011_fires_for_class_with_several_instances(sol):
    text = "property p: never state sid(door.Sensor) == sid(server)"
    d = fires(parse(sol, text), "PRP011", text, "door.Sensor")
    assert "s1" in d.hint and "s1, s2" in d.message


def test_prp011_fires_for_obj_index_on_class_without_instance(sol):
    text = 'property p: reachable state fsm[door.Spare] == "open"'
    fires(parse(sol, text), "PRP011", text, "door.Spare")


def test_prp011_quiet_for_one_instance(sol):
    quiet(parse(sol, 'property p: reachable state fsm[door.Server] == "open" && sid(s1) != sid(s2)'), "PRP011")


def test_prp012_fires_for_class_without_instance(sol):
    text = "property p: never request src=door.Spare dst=server"
    pf = parse(sol, text)
    fires(pf, "PRP012", text, "door.Spare", severity="warning")
    assert pf.ok and pf.properties[0].pattern.src.tasks == ()


def test_prp012_quiet_for_class_with_instances(sol):
    quiet(parse(sol, "property p: never request src=door.Sensor dst=server"), "PRP012")


# =========================================================================== PRP013-PRP017 patterns

def test_prp013_fires_for_dst_on_security(sol):
    text = "property p: never security src=client dst=server"
    fires(parse(sol, text), "PRP013", text, "dst")


def test_prp013_fires_for_method_on_execute(sol):
    text = "property p: never execute dst=server method=main"
    fires(parse(sol, text), "PRP013", text, "method")


def test_prp013_quiet_for_allowed_selectors(sol):
    pf = parse(sol, "property p: never security src=client interface=door.Ctl method=Arm\n"
                    "property q: never execute src=Einit dst=server")
    quiet(pf, "PRP013")
    assert len(pf.properties) == 2


def test_prp014_fires_for_unknown_endpoint(sol):
    text = "property p: never request dst=server endpoint=apii"
    d = fires(parse(sol, text), "PRP014", text, "apii")
    assert "api" in d.hint


def test_prp014_fires_for_unknown_endpoint_on_any_class(sol):
    text = "property p: never request endpoint=nowhere"
    fires(parse(sol, text), "PRP014", text, "nowhere")


def test_prp014_quiet_for_endpoint_of_the_server(sol):
    quiet(parse(sol, "property p: never request dst=server endpoint=log\nproperty q: never response src=server endpoint=api"),
          "PRP014")


def test_prp015_fires_for_unknown_interface(sol):
    text = "property p: never request dst=server interface=door.Nope"
    d = fires(parse(sol, text), "PRP015", text, "door.Nope")
    assert "unknown interface" in d.message


def test_prp015_fires_for_interface_the_server_does_not_serve(sol):
    text = "property p: never request dst=server interface=door.Ctl"
    d = fires(parse(sol, text), "PRP015", text, "door.Ctl")
    assert "serves no interface" in d.message


def test_prp015_quiet_for_served_interface(sol):
    quiet(parse(sol, "property p: never request dst=server interface=door.Log"), "PRP015")


def test_prp016_fires_for_unknown_method(sol):
    text = "property p: never request dst=server method=Opn"
    d = fires(parse(sol, text), "PRP016", text, "Opn")
    assert "Open" in d.hint


def test_prp016_fires_for_unknown_security_method(sol):
    text = "property p: never security src=client method=Disarm"
    fires(parse(sol, text), "PRP016", text, "Disarm")


def test_prp016_quiet_for_known_methods(sol):
    quiet(parse(sol, "property p: never request method=Write\nproperty q: never security method=Arm"), "PRP016")


def test_prp017_fires_for_selectors_that_do_not_belong_together(sol):
    text = "property p: never request dst=server endpoint=log method=Open"
    fires(parse(sol, text), "PRP017", text, "request")


def test_prp017_quiet_when_endpoint_and_method_match(sol):
    quiet(parse(sol, "property p: never request dst=server endpoint=api method=Open"), "PRP017")


def test_pattern_on_the_kernel_is_checked_against_the_builtin_description(sol):
    # A documented method: its parameters have no types, so `message.size` cannot be checked.
    assert only(parse(sol, "property p: never request dst=kl.core.Core endpoint=vmm.VMM method=Allocate "
                           "where message.size == 1"))
    text = "property p: never request dst=kl.core.Core method=Alocate"
    fires(parse(sol, text), "PRP016", text, "Alocate")


# =========================================================================== PRP018-PRP020 names in conditions

def test_prp018_fires_for_path_missing_from_one_selected_method(sol):
    text = "property p: never request dst=server endpoint=api where message.code > 1"
    d = fires(parse(sol, text), "PRP018", text, "message.code")
    assert "door.Api.Close" in d.message and "door.Api.Put" in d.message


def test_prp018_fires_for_wrong_direction(sol):
    text = "property p: never response src=server method=Open where message.code == 1"
    d = fires(parse(sol, text), "PRP018", text, "message.code")
    assert "out-parameter" in d.message


def test_prp018_fires_for_missing_nested_field(sol):
    text = 'property p: never request method=Put where message.items.[0].tga == "x"'
    fires(parse(sol, text), "PRP018", text, "message.items")


def test_prp018_fires_for_message_of_execute(sol):
    text = "property p: never execute dst=server where message.x == 1"
    fires(parse(sol, text), "PRP018", text, "message.x")


def test_prp018_quiet_for_paths_in_every_selected_method(sol):
    text = """property a: never request method=Open where message.req.level > 1 && message.code != 0
property b: never request method=Put where message.items.[0].tag == "x" && message.h.rights == 0
property c: never error src=server method=Close where message.rc >= 0
property d: always response src=server method=Open where message.ok == 1
property e: never security src=client where message.level > 3
"""
    pf = parse(sol, text)
    quiet(pf, "PRP018")
    assert len(clean(pf).properties) == 5


def test_prp019_fires_for_message_in_state_expression(sol):
    text = "property p: invariant state message.code == 1"
    fires(parse(sol, text), "PRP019", text, "message")


def test_prp019_fires_for_src_sid_in_state_expression(sol):
    text = "property p: never state src_sid == sid(server)"
    fires(parse(sol, text), "PRP019", text, "src_sid")


def test_prp019_quiet_for_sids_in_where(sol):
    text = 'property p: never request dst=server method=Open where src_sid == sid(client) && dst_sid != sid(s1)'
    quiet(clean(parse(sol, text)), "PRP019")


def test_prp020_fires_for_unknown_name(sol):
    text = 'property p: never state fsm[server] == open'
    d = fires(parse(sol, text), "PRP020", text, "open")
    assert '"open"' in d.hint


def test_prp020_fires_for_dst_sid_in_security(sol):
    text = "property p: never security src=client where dst_sid == sid(server)"
    fires(parse(sol, text), "PRP020", text, "dst_sid")


def test_prp020_quiet_for_text_literals(sol):
    quiet(parse(sol, 'property p: never state fsm[server] == "open"'), "PRP020")


# =========================================================================== PRP021-PRP025 model calls

def test_prp021_fires_for_unknown_object_in_call(sol):
    text = 'property p: never state fsmm.query {sid : sid(server)} == "open"'
    d = fires(parse(sol, text), "PRP021", text, "fsmm")
    assert "fsm" in d.hint


def test_prp021_fires_for_unknown_object_in_index(sol):
    text = 'property p: never state door[server] == "open"'
    fires(parse(sol, text), "PRP021", text, "door")


def test_prp021_quiet_for_declared_and_builtin_objects(sol):
    quiet(parse(sol, 'property p: never state fsm[server] == "x" || bool.any ([true]) || math.abs (1) > 0'), "PRP021")


def test_prp022_fires_for_index_on_a_hashset(sol):
    text = "property p: never state seen[server] == 1"
    fires(parse(sol, text), "PRP022", text, "seen")


def test_prp022_quiet_for_index_on_a_flow_object(sol):
    quiet(parse(sol, 'property p: never state fsm[server] == "open"'), "PRP022")


def test_prp023_fires_for_unknown_model_method(sol):
    text = 'property p: never state fsm.qurey {sid : sid(server)} == "open"'
    d = fires(parse(sol, text), "PRP023", text, "qurey")
    assert "query" in d.hint


def test_prp023_fires_for_call_without_object(sol):
    text = "property p: never state contains {sid : sid(server), entry : 1}"
    fires(parse(sol, text), "PRP023", text, "contains")


def test_prp023_quiet_for_model_methods(sol):
    quiet(parse(sol, "property p: never state seen.contains {sid : sid(server), entry : 1} && size ([1]) > 0"),
          "PRP023")


def test_prp024_fires_for_rule_used_as_value(sol):
    text = 'property p: never state fsm.enter {sid : sid(server), state : "open"}'
    fires(parse(sol, text), "PRP024", text, "fsm.enter")


def test_prp024_quiet_for_expressions(sol):
    quiet(parse(sol, "property p: never state seen.contains {sid : sid(server), entry : 1}"), "PRP024")


def test_prp025_fires_for_missing_field(sol):
    text = "property p: never state seen.contains {sid : sid(server)}"
    d = fires(parse(sol, text), "PRP025", text, "{sid")
    assert "`entry`" in d.message


def test_prp025_fires_for_non_record_argument(sol):
    text = "property p: never state seen.contains (1)"
    fires(parse(sol, text), "PRP025", text, "1)")


def test_prp025_quiet_for_fitting_argument(sol):
    quiet(parse(sol, "property p: never state seen.contains {sid : sid(server), entry : 1}"), "PRP025")


# =========================================================================== PRP026 channels

def test_prp026_fires_for_channel_to_a_process_without_endpoints(sol):
    text = "channel server -> s1"
    pf = parse(sol, text)
    fires(pf, "PRP026", text, "s1", severity="warning")
    assert pf.ok and len(pf.channels) == 1


def test_prp026_quiet_for_channel_to_a_server(sol):
    quiet(parse(sol, "channel s1 -> server\nchannel client -> kl.core.Core"), "PRP026")
