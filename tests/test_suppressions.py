"""Suppression comments (`ksm: disable=...`): the scanner, its line mapping, and the linter honouring them."""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ksm
from ksm.lint import Example, lint
from ksm.lint.examples import POLICY, materialize
from policy_lang.diagnostics import Diagnostics, Severity, catalogue, code_info
from policy_lang.source import SourceText
from policy_lang.suppressions import scan
from policy_lang.templates import expand_template


def sups(text: str, language: str = "psl") -> tuple[list[tuple[int, tuple[str, ...], str]], Diagnostics]:
    diags = Diagnostics()
    found = scan(SourceText("f.psl", text), language, diags)
    return [(s.line, s.codes, s.scope) for s in found], diags


def t(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


# ----------------------------------------------------------------------------- scopes

def test_no_mention_is_nothing():
    assert sups("grant () // a comment\n") == ([], Diagnostics())


def test_comment_after_code_covers_its_line():
    found, diags = sups("a\ngrant () // ksm: disable=LNT001\nb\n")
    assert found == [(2, ("LNT001",), "line")]
    assert len(diags) == 0


def test_comment_alone_covers_next_code_line_skipping_blank_and_comment_lines():
    text = t("""
        a
          // ksm: disable=LNT001

        // another comment
        /* and a block
           comment */
        grant ()
    """)
    assert sups(text)[0] == [(7, ("LNT001",), "next")]


def test_disable_next_line_is_next_even_after_code():
    assert sups("x // ksm: disable-next-line=LNT001\n\ny\n")[0] == [(3, ("LNT001",), "next")]


def test_disable_file():
    assert sups("a\nb\n// ksm: disable-file=LNT001,all\n")[0] == [(3, ("LNT001", "all"), "file")]


def test_spaces_around_equals_and_commas_and_a_reason():
    found, diags = sups("x // ksm:disable = LNT001 , PSL005,LNT002 because the IDL says so\n")
    assert found == [(1, ("LNT001", "PSL005", "LNT002"), "line")]
    assert len(diags) == 0


def test_repeated_codes_are_kept_once():
    assert sups("x // ksm: disable=LNT001,LNT001\n")[0] == [(1, ("LNT001",), "line")]


def test_comment_alone_at_the_end_covers_the_following_line():
    assert sups("a\n// ksm: disable=LNT001")[0] == [(3, ("LNT001",), "next")]


def test_suppression_records_file_and_directive_span():
    diags = Diagnostics()
    (s,) = scan(SourceText("dir/f.psl", "grant () // ksm: disable=LNT001\n"), "psl", diags)
    assert s.file == "dir/f.psl"
    assert (s.span.line, s.span.column, s.span.end_column) == (1, 13, 32)


# ----------------------------------------------------------------------------- comment forms

def test_block_comment_after_code_and_before_code():
    assert sups("x /* ksm: disable=LNT001 */\n")[0] == [(1, ("LNT001",), "line")]
    assert sups("/* ksm: disable=LNT001*/ grant ()\n")[0] == [(1, ("LNT001",), "line")]


def test_multiline_block_comment_alone_covers_the_line_after_it():
    text = t("""
        /*
         * ksm: disable=LNT001
         */
        grant ()
    """)
    assert sups(text)[0] == [(4, ("LNT001",), "next")]


def test_text_literal_containing_slashes_is_not_a_comment():
    assert sups('x = "http://host/ksm: disable=LNT001"\n') == ([], Diagnostics())
    assert sups('x = "a \\" // ksm: disable=LNT001" y\n') == ([], Diagnostics())


def test_comment_after_a_text_literal_with_slashes():
    assert sups('x = "a//b" // ksm: disable=LNT001\n')[0] == [(1, ("LNT001",), "line")]


def test_block_comment_opener_inside_text_or_line_comment_is_ignored():
    text = t("""
        x = "/*" // ksm: disable=LNT001
        // not a block: /*
        y // ksm: disable=LNT002
    """)
    assert sups(text)[0] == [(1, ("LNT001",), "line"), (3, ("LNT002",), "line")]


def test_mention_inside_a_block_comment_spanning_lines():
    text = t("""
        /* a
           // ksm: disable=LNT001
        */
        grant ()
    """)
    assert sups(text)[0] == [(4, ("LNT001",), "next")]


def test_yaml_comments():
    text = t("""
        entities:  # ksm: disable=LNT001
          # ksm: disable=LNT002

          - name: demo.Client
            args: ["a # ksm: disable=LNT003", 'b # ksm: disable=LNT004']
            env: it's # ksm: disable=LNT005
            url: x#ksm: disable=LNT006
    """)
    found, diags = sups(text, "yaml")
    assert found == [(1, ("LNT001",), "line"), (4, ("LNT002",), "next"), (6, ("LNT005",), "line")]
    assert len(diags) == 0


def test_yaml_block_scalars_hold_no_comments():
    text = t("""
        a: |
          # ksm: disable=LNT001
          text
        b: >-
          more # ksm: disable=LNT002
        c: 1 # ksm: disable=LNT003
        - |
          # ksm: disable=LNT004
        - x # ksm: disable=LNT005
    """)
    assert sups(text, "yaml")[0] == [(6, ("LNT003",), "line"), (9, ("LNT005",), "line")]


def test_yaml_double_slash_is_not_a_comment():
    assert sups("a: b // ksm: disable=LNT001\n", "yaml") == ([], Diagnostics())


# ----------------------------------------------------------------------------- SUP001

@pytest.mark.parametrize("comment, words", [
    ("// ksm: disabel=LNT001", "did you mean `disable`"),
    ("// ksm: disable", "expected `=`"),
    ("// ksm: disable=", "lists no codes"),
    ("// ksm: disable=lnt001", "`lnt001` is not a rule code"),
    ("// ksm: disable=LNT01", "`LNT01` is not a rule code"),
    ("// ksm: disable=LNT001,", "stray comma"),
    ("// ksm: disable=LNT001 LNT002", "separate codes with commas"),
    ("// ksm:", "not followed by a directive"),
    ("/* ksm: disable-file */", "expected `=`"),
])
def test_malformed_directive_warns_and_suppresses_nothing(comment, words):
    found, diags = sups(f"grant ()\n  {comment}\nx\n")
    assert found == []
    (d,) = diags
    assert d.code == "SUP001" and d.severity is Severity.WARNING
    assert words in d.message
    assert (d.span.line, d.span.column) == (2, comment.index("ksm:") + 3)
    assert "ksm: disable=CODE" in d.hint


def test_sup001_is_catalogued_with_a_hint():
    assert "SUP001" in catalogue()
    info = code_info("SUP001")
    assert info.severity is Severity.WARNING and "disable-next-line" in info.hint


@pytest.mark.parametrize("text", [
    "x // ksm: disable=LNT001\n",
    "x // this mentions myksm: nothing\n",
    'x = "ksm: broken"\n',
    "x // ksm: disable=all -- reason\n",
])
def test_sup001_silent(text):
    assert len(sups(text)[1]) == 0


def test_yaml_malformed_directive_warns():
    found, diags = sups("a: 1 # ksm: disable=nope\n", "yaml")
    assert found == [] and diags.codes() == ["SUP001"]


# ----------------------------------------------------------------------------- templates

def test_template_moves_lines_but_suppressions_keep_original_lines():
    text = t("""
        use demo.prelude._
        {% if EXTRA %}
        // extra line one
        // extra line two
        {% endif %}
        // ksm: disable=LNT016

        audit profile trace = {}  // ksm: disable=LNT014
    """)
    for defines in ({}, {"EXTRA": "1"}):
        diags = Diagnostics()
        source = expand_template(text, "security.psl.in", defines, diags)
        assert len(diags) == 0
        found = [(s.line, s.codes, s.scope) for s in scan(source, "psl", Diagnostics())]
        assert found == [(8, ("LNT016",), "next"), (8, ("LNT014",), "line")], defines


# ----------------------------------------------------------------------------- speed

def test_large_policy_scans_fast():
    body = ('request src=demo.Client dst=demo.Server endpoint=store.kv method=Put { grant () } // "x"\n'
            '  audit profile p = { 0 : { base : { kss : ["granted", "denied"] } } }\n'
            '/* a block\n   comment */\n\n') * 2_000
    text = "// ksm: disable-file=LNT001\n" + body + "// ksm: disable=LNT002\ngrant ()\n"
    source = SourceText("big.psl", text)
    source.line_starts()                       # shared with the parser in a real load
    best = min(_timed(source) for _ in range(5))
    assert best < 0.02, f"{best * 1000:.1f} ms"
    found = [(s.line, s.scope) for s in scan(source, "psl", Diagnostics())]
    assert found == [(1, "file"), (text.count("\n"), "next")]
    plain = SourceText("plain.psl", body)
    start = time.perf_counter()
    assert scan(plain, "psl", Diagnostics()) == []
    assert time.perf_counter() - start < 0.005


def _timed(source: SourceText) -> float:
    start = time.perf_counter()
    scan(source, "psl", Diagnostics())
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- property

_CODES = st.lists(st.sampled_from(["LNT001", "LNT016", "PSL005", "all"]), min_size=1, max_size=3, unique=True)
_C_CODE = st.sampled_from(["grant ()", 'x = "a // b"', "  match src=A { }", 'y = "/*"'])
_Y_CODE = st.sampled_from(["key: value", '- name: "a # b"', "  args: ['x']", "url: a#b"])


@st.composite
def _lines(draw, yaml: bool):
    """[(kind, codes, text)]: kinds code, after (code + comment), alone, next, comment, blank, block."""
    kinds = ["code", "after", "alone", "next", "comment", "blank"] + ([] if yaml else ["block"])
    out = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(kinds))
        codes = tuple(draw(_CODES))
        out.append((kind, codes, draw(_Y_CODE if yaml else _C_CODE)))
    return out


def _render(lines, yaml: bool) -> tuple[str, list[tuple[int, tuple[str, ...], str]]]:
    """The text and the suppressions expected in it."""
    mark = "#" if yaml else "//"
    rows: list[tuple[str, bool]] = []           # (line text, holds code)
    pending: list[tuple[tuple[str, ...], int]] = []     # (codes, line of the comment)
    expected = []
    for kind, codes, code in lines:
        directive = f"ksm: disable={','.join(codes)}"
        if kind == "code":
            rows.append((code, True))
        elif kind == "after":
            rows.append((f"{code}  {mark} {directive}", True))
            expected.append((len(rows), codes, "line"))
        elif kind in ("alone", "next"):
            word = directive if kind == "alone" else directive.replace("disable=", "disable-next-line=")
            rows.append((f"  {mark} {word}", False))
            pending.append((codes, len(rows)))
            continue
        elif kind == "comment":
            rows.append((f"{mark} plain", False))
        elif kind == "blank":
            rows.append(("", False))
        else:
            rows.extend([("/* a block", False), ("   comment */", False)])
        if rows[-1][1]:
            expected.extend((len(rows), c, "next") for c, _ in pending)
            pending = []
    # Nothing follows: the line after the comment (which holds nothing to report).
    expected.extend((line + 1, c, "next") for c, line in pending)
    return "\n".join(r for r, _ in rows) + "\n", sorted(expected)


@settings(max_examples=150, deadline=None)
@given(lines=_lines(yaml=False))
def test_property_psl_each_suppression_covers_its_line(lines):
    text, expected = _render(lines, yaml=False)
    found, diags = sups(text)
    assert sorted(found) == expected
    assert len(diags) == 0


@settings(max_examples=150, deadline=None)
@given(lines=_lines(yaml=True))
def test_property_yaml_each_suppression_covers_its_line(lines):
    text, expected = _render(lines, yaml=True)
    found, diags = sups(text, "yaml")
    assert sorted(found) == expected
    assert len(diags) == 0


# ----------------------------------------------------------------------------- end to end

AUDIT = 'audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }'


def _lint(tmp_path: Path, policy: str):
    root = materialize(Example(policy), tmp_path / "x")
    return lint(ksm.load(root))


def test_unsuppressed_example_fires_lnt016(tmp_path):
    result = _lint(tmp_path, f"use demo.prelude._\n\n{AUDIT}\n")
    assert [(d.code, d.span.line) for d in result.findings] == [("LNT016", 3)]
    assert result.suppressed == []


@pytest.mark.parametrize("policy", [
    f"use demo.prelude._\n\n{AUDIT} // ksm: disable=LNT016\n",
    f"use demo.prelude._\n// ksm: disable=LNT016\n{AUDIT}\n",
    f"use demo.prelude._\n// ksm: disable-next-line=all\n{AUDIT}\n",
    f"// ksm: disable-file=LNT016\nuse demo.prelude._\n{AUDIT}\n",
])
def test_suppressed_findings_move_to_suppressed(tmp_path, policy):
    result = _lint(tmp_path, policy)
    assert result.findings == []
    ((d, s),) = result.suppressed
    assert d.code == "LNT016" and s.file == d.span.file
    assert s.file.endswith(str(POLICY))


def test_other_code_does_not_suppress(tmp_path):
    result = _lint(tmp_path, f"use demo.prelude._\n// ksm: disable=LNT014\n{AUDIT}\n")
    assert [d.code for d in result.findings] == ["LNT016"]
    assert result.suppressed == []


def test_load_collects_suppressions_and_sup001(tmp_path):
    root = materialize(Example(f"use demo.prelude._\n// ksm: disabel=LNT016\n{AUDIT} // ksm: disable=LNT016\n"),
                       tmp_path / "x")
    solution = ksm.load(root)
    assert [(s.line, s.scope) for s in solution.suppressions] == [(3, "line")]
    assert [(d.code, d.span.line) for d in solution.diagnostics] == [("SUP001", 2)]
    assert solution.ok


def test_templated_policy_keeps_original_lines(tmp_path):
    root = materialize(Example("use demo.prelude._\n"), tmp_path / "x")
    (root / POLICY).unlink()
    (root / POLICY.with_name("security.psl.in")).write_text(
        "use demo.prelude._\n{% if EXTRA %}\n// one\n// two\n{% endif %}\n"
        f"// ksm: disable=LNT016\n{AUDIT}\n", encoding="utf-8")
    for defines in ({}, {"EXTRA": "1"}):
        result = lint(ksm.load(root, defines=defines))
        assert result.findings == [], defines
        ((d, s),) = result.suppressed
        assert (d.span.line, s.line, s.scope) == (7, 7, "next")
