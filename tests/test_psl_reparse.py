"""Incremental PSL parsing (policy_lang.syntax.psl_reparse): after any edit, a partial
parse must give exactly what a full parse of the new text gives: the same nodes at the
same lines and columns, and the same diagnostics in the same order."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policy_lang import load
from policy_lang.diagnostics import Diagnostics
from policy_lang.dump import solution_model
from policy_lang.loader import LoadOptions
from policy_lang.source import SourceText
from policy_lang.syntax.psl import parse_psl
from policy_lang.syntax.psl_reparse import PslReparser, RelocatedSource
from policy_lang.templates import expand_template

REPO = Path(__file__).resolve().parents[1]
POLICIES = sorted(p for p in (REPO / "models").glob("*/einit/src/security.psl*"))
CORPUS = sorted((REPO / "tests" / "corpus").rglob("*.psl"))[:12]

# Pieces that stress the places where reuse could go wrong: braces, comments and text
# literals that run on, keywords that start declarations, names after '=', line breaks.
SNIPPETS = ["x", "\n", " ", "{", "}", "(", ")", "/*", "*/", "//", '"', '"a b"', "=", "= request", "<-",
            "use", "use EDL a.B\n", "request ", "request src=a.B { grant () }\n", "\n\n", "}\n",
            "assert", "policy object p : Base {}\n", "execute {", "audit default = ", "$", "#", "_"]


def _shape(node, source):
    """A node tree with every position turned into (line, column) through its file's source."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out = [type(node).__name__]
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            out.append(tuple(source.span(value))[1:3] if f.name == "pos" else _shape(value, source))
        return tuple(out)
    if isinstance(node, (list, tuple)):
        return tuple(_shape(v, source) for v in node)
    return node


def _result(parse, source: SourceText):
    diags = Diagnostics()
    f = parse(source, diags)
    return _shape(f.decls, f.source), [(d.code, d.message, d.span) for d in diags.items]


def _source(text: str, templated: bool) -> SourceText:
    if templated:
        return expand_template(text, "policy.psl.in", {"MAIN": "Main"}, Diagnostics(), language="c")
    return SourceText("policy.psl", text)


edits = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(SNIPPETS), st.integers(0, 12), st.booleans()),
                 min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(POLICIES) + len(CORPUS) - 1), steps=edits, templated=st.booleans())
@example(which=0, steps=[(0.5, "/*", 0, True), (0.5, "*/", 0, True)], templated=False)
@example(which=0, steps=[(0.3, "{", 0, True), (0.3, "", 1, False)], templated=False)
def test_a_partial_parse_after_any_edits_equals_a_full_parse(which, steps, templated):
    text = (POLICIES + CORPUS)[which].read_text(encoding="utf-8")
    reparser = PslReparser()
    reparser.parse(_source(text, templated), Diagnostics())
    for where, snippet, cut, insert in steps:
        at = int(where * len(text))
        text = text[:at] + snippet + text[at:] if insert else text[:at] + text[at + cut:]
        assert _result(reparser.parse, _source(text, templated)) == _result(parse_psl, _source(text, templated))


def _big_policy(tmp_path: Path, lines: int = 3000) -> tuple[Path, str]:
    from ksm.load_bench import generate_solution

    generate_solution(tmp_path, lines)
    policy = tmp_path / "einit" / "src" / "security.psl"
    return policy, policy.read_text()


def test_a_keystroke_in_one_binding_lexes_only_that_binding(tmp_path):
    policy, text = _big_policy(tmp_path)
    m = list(re.finditer(r"request src=([\w.]+)", text))[len(text) // 4000]   # somewhere in the middle
    reparser = PslReparser()
    reparser.parse(SourceText("p.psl", text), Diagnostics())
    assert reparser.stats == {"full": 1} and reparser.last_lexed == len(text)
    edited = text[:m.end(1)] + "x" + text[m.end(1):]
    got = _result(reparser.parse, SourceText("p.psl", edited))
    assert reparser.stats == {"full": 1, "partial": 1}
    assert reparser.last_lexed < 500                      # one declaration, not 100 KiB
    assert got == _result(parse_psl, SourceText("p.psl", edited))
    # A line break before it moves every later declaration a line down: still partial.
    line_start = edited.rfind("\n", 0, m.start()) + 1
    moved = edited[:line_start] + "\n" + edited[line_start:]
    got = _result(reparser.parse, SourceText("p.psl", moved))
    assert reparser.stats["partial"] == 2
    assert got == _result(parse_psl, SourceText("p.psl", moved))


@pytest.mark.parametrize("snippet, reason", [
    ("/* ", "comment left open"),
    ("request src=a.B {\n", "braces left open"),
])
def test_an_edit_that_runs_into_later_declarations_parses_the_whole_file(tmp_path, snippet, reason):
    policy, text = _big_policy(tmp_path, 400)
    reparser = PslReparser()
    reparser.parse(SourceText("p.psl", text), Diagnostics())
    at = text.index("\nrequest ") + 1
    edited = text[:at] + snippet + text[at:]
    got = _result(reparser.parse, SourceText("p.psl", edited))
    assert reparser.stats.get(f"full: {reason}") == 1
    assert got == _result(parse_psl, SourceText("p.psl", edited))


def test_positions_after_the_edit_map_to_their_new_lines_and_columns():
    text = "use nk.base._\n\nrequest src=a.B { grant () }\nrequest src=c.D { deny () }\n"
    reparser = PslReparser()
    reparser.parse(SourceText("p.psl", text), Diagnostics())
    edited = text.replace("use nk.base._\n", "use nk.base._\n// a comment\n\n")
    f = reparser.parse(SourceText("p.psl", edited), Diagnostics())
    assert isinstance(f.source, RelocatedSource)
    last = f.decls[-1]
    assert tuple(f.source.span(last.pos))[1:3] == (6, 1)
    assert f.source.real(last.pos) == edited.index("request src=c.D")


def test_an_unchanged_text_reuses_every_declaration():
    text = POLICIES[0].read_text()
    reparser = PslReparser()
    first = reparser.parse(SourceText("p.psl", text), Diagnostics())
    again = reparser.parse(SourceText("p.psl", text), Diagnostics())
    assert reparser.last_lexed == 0
    assert all(a is b for a, b in zip(first.decls, again.decls)) and len(first.decls) == len(again.decls)


def test_load_with_a_reparser_resolves_the_solution_a_fresh_load_does(tmp_path):
    policy, text = _big_policy(tmp_path, 1500)
    key = str(policy.resolve())
    reparser = PslReparser()
    load(tmp_path, LoadOptions(overlay={key: text}, reparse=reparser))
    for edited in (text.replace("grant ()", "grant ( )", 1),
                   text.replace("\nrequest ", "\n\n\nrequest ", 3),
                   text.replace("request src=", "request src=Nope", 1)):
        warm = load(tmp_path, LoadOptions(overlay={key: edited}, reparse=reparser))
        cold = load(tmp_path, LoadOptions(overlay={key: edited}))
        assert solution_model(warm) == solution_model(cold)
        assert [(d.code, d.message, d.span) for d in warm.diagnostics] == \
               [(d.code, d.message, d.span) for d in cold.diagnostics]
        assert [(b.span, b.event) for b in warm.bindings] == [(b.span, b.event) for b in cold.bindings]
    assert reparser.stats["partial"] == 3
