"""Syntax highlighting: the Pygments lexers of ksm/highlight.py and the VS Code
extension in editors/vscode (TextMate grammars, language configuration)."""
import json
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from ksm.highlight import CdlLexer, EdlLexer, IdlLexer, PropsLexer, PslLexer

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"


def _lexer_for(path: Path):
    name = path.name
    if name.endswith(".psl") or name.endswith(".psl.in"):
        return PslLexer
    return {".idl": IdlLexer, ".cdl": CdlLexer, ".edl": EdlLexer, ".props": PropsLexer}.get(path.suffix)


def _sources():
    for top in ("models", "docs/examples", "tests/corpus"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and _lexer_for(path):
                yield pytest.param(path, id=str(path.relative_to(ROOT)))


SOURCES = list(_sources())


def _tokens(lexer_cls, text):
    # stripnl/ensurenl off: the token values must add up to the text exactly
    return list(lexer_cls(stripnl=False, ensurenl=False).get_tokens(text))


def test_the_corpus_has_every_language():
    suffixes = {p.values[0].name.split(".", 1)[1] for p in SOURCES}
    assert {"psl", "psl.in", "idl", "cdl", "edl", "props"} <= suffixes


@pytest.mark.parametrize("path", SOURCES)
def test_every_source_lexes_cleanly_and_round_trips(path):
    text = path.read_text()
    tokens = _tokens(_lexer_for(path), text)
    errors = [value for ttype, value in tokens if ttype in Error]
    assert not errors, f"Error tokens in {path}: {errors[:10]}"
    assert "".join(value for _, value in tokens) == text


def _kinds(lexer_cls, text):
    """(token type, value) pairs without white space."""
    return [(t, v) for t, v in _tokens(lexer_cls, text) if v.strip()]


def _type_of(lexer_cls, text, value):
    matches = [t for t, v in _kinds(lexer_cls, text) if v == value]
    assert matches, f"{value!r} is not one token of {text!r}: {_kinds(lexer_cls, text)}"
    return matches[0]


PSL = """\
/* block */ execute: kl.core.Execute
use nk.base._
use EDL kl.core.Core   // line comment
request src=demo.Client dst=demo.Server method=Ping {
    assert (message.req.method == 0x1F && message.value <= 0b101 && src_sid != 42)
    choice (message.kind) { "a\\"b" : grant () _ : deny () }
}
policy object flow : Flow { type State = "on" | "off" }
assert "t" { setup { c <- execute dst=demo.Client } sequence { grant c ~> s:ep.Ping {} } finally {} }
"""


@pytest.mark.parametrize("value,expected", [
    ("execute", Keyword), ("use", Keyword), ("EDL", Keyword), ("request", Keyword),
    ("assert", Keyword), ("choice", Keyword), ("grant", Keyword), ("deny", Keyword),
    ("policy", Keyword), ("object", Keyword), ("setup", Keyword), ("sequence", Keyword),
    ("finally", Keyword), ("src", Keyword), ("method", Keyword),
    ("/* block */", Comment), ("// line comment", Comment),
    ("0x1F", Number.Hex), ("0b101", Number.Bin), ("42", Number.Integer),
    ("kl.core.Core", Name.Class), ("kl.core.Execute", Name.Class), ("demo.Client", Name.Class),
    ("nk.base._", Name.Namespace), ("message", Name.Builtin), ("src_sid", Name.Builtin),
    ("Flow", Name.Class), ("~>", Operator), ("<-", Operator), ("==", Operator),
])
def test_psl_constructs(value, expected):
    ttype = _type_of(PslLexer, PSL, value)
    assert ttype in expected, (value, ttype)


def test_psl_keywords_inside_dotted_names_are_names():
    kinds = _kinds(PslLexer, PSL)
    assert (Name, "req.method") in kinds  # not the selector key `method`
    assert (Name.Builtin, "message") in kinds


def test_psl_strings_with_escapes():
    kinds = _kinds(PslLexer, 'assert (message.s == "a\\"b")')
    assert (String.Escape, '\\"') in kinds
    assert "".join(v for t, v in kinds if t in String) == '"a\\"b"'


def test_psl_regex_block_is_one_string():
    text = 'assert (re.match { text : message.t, pattern :\n```regex\n^/a[0-9]+$\n```\n})'
    assert _type_of(PslLexer, text, "```regex\n^/a[0-9]+$\n```") in String


@pytest.mark.parametrize("value", ["@INIT_EXTERNAL_ENTITIES@", "{{ MAX_LEVEL }}", "{% if X == \"on\" %}"])
def test_template_placeholders_are_preproc(value):
    text = 'use EDL a.B\n@INIT_EXTERNAL_ENTITIES@\n{% if X == "on" %}\nassert (x <= {{ MAX_LEVEL }})\n'
    assert _type_of(PslLexer, text, value) in Comment.Preproc


IDL = """\
package acme.Echo
import acme.error.Codes
typedef sequence<UInt8, 0x10> Buf;
const UInt32 Max = 1 << 4;
struct Pair { SInt64 a; string<32> error; }
interface {
    // send
    Ping(in UInt32 value, in Handle h, out bytes<8> reply, error UInt8 code);
}
"""


@pytest.mark.parametrize("value,expected", [
    ("package", Keyword), ("typedef", Keyword), ("struct", Keyword), ("const", Keyword),
    ("interface", Keyword), ("in", Keyword), ("out", Keyword),
    ("UInt8", Keyword.Type), ("SInt64", Keyword.Type), ("Handle", Keyword.Type),
    ("string", Keyword.Type), ("bytes", Keyword.Type), ("sequence", Keyword.Type),
    ("acme.Echo", Name.Namespace), ("acme.error.Codes", Name.Namespace), ("Pair", Name.Class),
    ("Ping", Name.Function), ("0x10", Number.Hex), ("// send", Comment),
])
def test_idl_constructs(value, expected):
    assert _type_of(IdlLexer, IDL, value) in expected


def test_idl_direction_keyword_and_member_called_error():
    kinds = _kinds(IdlLexer, IDL)
    assert (Name, "error") in kinds  # `string<32> error;` - a field
    assert any(t in Keyword and v == "error" for t, v in kinds)  # `error UInt8 code`


@pytest.mark.parametrize("lexer_cls", [CdlLexer, EdlLexer])
def test_components_constructs(lexer_cls):
    text = ("/* c */ task class demo.Server\ncomponent demo.Comp\nsecurity demo.Iface\n"
            "components { security : kl.security.Audit }\nendpoints { ep : demo.Echo }\n")
    kinds = _kinds(lexer_cls, text)
    assert _type_of(lexer_cls, text, "demo.Server") in Name.Class
    assert _type_of(lexer_cls, text, "kl.security.Audit") in Name.Class
    assert _type_of(lexer_cls, text, "/* c */") in Comment
    for word in ("task", "class", "component", "components", "endpoints"):
        assert any(t in Keyword and v == word for t, v in kinds), word
    assert (Name.Variable, "security") in kinds  # an entry name, not the keyword


def test_props_constructs():
    text = ('# hash comment\nproperty p_1: never request src=a.B dst=c.D where message.x == "y"\n'
            "channel a.B -> c.D\nproperty q: never state door[lock.C] == 0x2\n")
    assert _type_of(PropsLexer, text, "# hash comment") in Comment
    assert _type_of(PropsLexer, text, "property") in Keyword
    assert _type_of(PropsLexer, text, "never") in Keyword
    assert _type_of(PropsLexer, text, "a.B") in Name.Class
    assert _type_of(PropsLexer, text, "0x2") in Number
    assert _type_of(PropsLexer, text, "->") not in Error


def test_half_typed_input_has_no_error_tokens():
    for lexer_cls in (PslLexer, IdlLexer, CdlLexer, EdlLexer, PropsLexer):
        for text in ['request src= { "unterminated\n', "/* open comment", "a $ ? ' ` \\ ^ %", "{{ x"]:
            tokens = _tokens(lexer_cls, text)
            assert not [v for t, v in tokens if t in Error], (lexer_cls, text)
            assert "".join(v for _, v in tokens) == text


def _installed_lexer_entry_points():
    return {ep.name: ep.value for ep in entry_points(group="pygments.lexers")
            if ep.value.startswith("ksm.highlight:")}


def test_pyproject_declares_the_entry_points():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pygments.lexers"]
    assert set(declared.values()) == {f"ksm.highlight:{c.__name__}"
                                      for c in (PslLexer, IdlLexer, CdlLexer, EdlLexer, PropsLexer)}


@pytest.mark.parametrize("alias,cls", [("psl", PslLexer), ("kos-psl", PslLexer), ("kos-idl", IdlLexer),
                                       ("cdl", CdlLexer), ("edl", EdlLexer), ("ksm-props", PropsLexer)])
def test_pygments_finds_the_lexers_by_name(alias, cls):
    if not _installed_lexer_entry_points():
        pytest.skip("the pygments.lexers entry points are not installed: run `pip install -e . --no-deps`")
    from pygments.lexers import get_lexer_by_name

    assert type(get_lexer_by_name(alias)).__name__ == cls.__name__


@pytest.mark.parametrize("filename,cls", [("security.psl", PslLexer), ("security.psl.in", PslLexer),
                                          ("echo.idl", IdlLexer), ("c.cdl", CdlLexer), ("s.edl", EdlLexer),
                                          ("w.props", PropsLexer)])
def test_pygments_finds_the_lexers_by_filename(filename, cls):
    if not _installed_lexer_entry_points():
        pytest.skip("the pygments.lexers entry points are not installed: run `pip install -e . --no-deps`")
    from pygments.lexers import get_lexer_for_filename

    assert type(get_lexer_for_filename(filename)).__name__ == cls.__name__


def test_rich_syntax_renders_psl():
    from rich.console import Console
    from rich.syntax import Syntax

    console = Console(record=True, width=100, color_system="truecolor", force_terminal=True)
    console.print(Syntax(PSL, lexer=PslLexer(), theme="monokai"))
    assert "use EDL kl.core.Core" in console.export_text(clear=False)
    assert "\x1b[" in console.export_text(styles=True)


# ------------------------------------------------------------------ VS Code


def _package():
    return json.loads((VSCODE / "package.json").read_text())


def test_vscode_json_files_parse():
    files = [VSCODE / "package.json", *VSCODE.glob("*language-configuration.json"),
             *(VSCODE / "syntaxes").glob("*.tmLanguage.json")]
    assert len(files) >= 2 + 5
    for path in files:
        json.loads(path.read_text())


def test_vscode_every_language_has_a_grammar_and_configuration():
    contributes = _package()["contributes"]
    grammars = {g["language"]: g for g in contributes["grammars"]}
    languages = {lang["id"]: lang for lang in contributes["languages"]}
    assert len(languages) == 5
    exts = {e for lang in languages.values() for e in lang["extensions"]}
    assert {".psl", ".psl.in", ".idl", ".cdl", ".edl", ".props"} <= exts
    for lang_id, lang in languages.items():
        grammar = grammars[lang_id]
        doc = json.loads((VSCODE / grammar["path"]).read_text())
        assert doc["scopeName"] == grammar["scopeName"], lang_id
        config = json.loads((VSCODE / lang["configuration"]).read_text())
        assert config["comments"]["lineComment"] == "//"
        assert config["comments"]["blockComment"] == ["/*", "*/"]
        assert config["brackets"] and config["autoClosingPairs"] and config["folding"]["markers"]


def test_vscode_client_declares_its_dependency():
    package = _package()
    assert "vscode-languageclient" in package["dependencies"]
    assert package["main"] == "./extension.js"
    source = (VSCODE / "extension.js").read_text()
    assert '"lsp"' in source and "TransportKind.stdio" in source
    assert not (VSCODE / "node_modules").exists()


def _regexes(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("match", "begin", "end") and isinstance(value, str):
                yield value
            else:
                yield from _regexes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _regexes(item)


@pytest.mark.parametrize("path", sorted((VSCODE / "syntaxes").glob("*.tmLanguage.json")), ids=lambda p: p.name)
def test_textmate_grammar(path):
    grammar = json.loads(path.read_text())
    regexes = list(_regexes(grammar))
    for rx in regexes:  # the grammars keep to the subset Oniguruma and Python's re share
        re.compile(rx)
    names = json.dumps(grammar)
    for scope in ("comment.", "keyword.", "storage.type"):
        assert scope in names, (path.name, scope)
    if path.name.split(".")[0] != "cdl" and path.name.split(".")[0] != "edl":
        assert "string.quoted" in names and "constant.numeric" in names
    # every include points at an existing repository entry
    for ref in re.findall(r'"include": "#([^"]+)"', names):
        assert ref in grammar["repository"], ref
    # the grammar actually matches a comment and a keyword of its language
    assert any(re.fullmatch(rx, "// c") for rx in regexes)
