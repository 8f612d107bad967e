"""`ksm fmt`: idempotent, meaning-preserving, comment-keeping formatting of PSL and .props files."""
import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksm.cli import main
from ksm.fmt import _items, collect, format_text
from policy_lang import load
from policy_lang.dump import solution_model

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(p for d in ("models", "docs/examples", "tests/corpus") for p in collect([str(ROOT / d)]))
PSL_FILES = [p for p in FILES if p.name.endswith((".psl", ".psl.in"))]


def _tokens(text: str, path: str):
    return [(it.kind, it.text) for it in _items(text, "props" if ".props" in path else "psl") if it.kind != "COMMENT"]


def _comments(text: str) -> list[str]:
    return [" ".join(ln.strip() for ln in c.split("\n"))
            for c in re.findall(r'"(?:[^"\\\n]|\\.)*"|(//[^\n]*|/\*[\s\S]*?\*/)', text) if c]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_formatting_is_idempotent_and_keeps_tokens_and_comments(path):
    text = path.read_text()
    res = format_text(text, str(path))
    if res.problems or res.skipped:
        assert res.text is None
        return
    out = res.text
    assert format_text(out, str(path)).text == out
    if "@" not in text:
        assert _tokens(out, str(path)) == _tokens(text, str(path))
    assert _comments(out) == _comments(text)
    assert out.endswith("\n") and not out.endswith("\n\n")
    assert not any(line != line.rstrip() for line in out.split("\n"))
    assert "\n\n\n" not in out


def _strip_positions(value):
    if isinstance(value, dict):
        return {k: _strip_positions(v) for k, v in value.items() if k not in ("at", "line", "span", "diagnostics")}
    if isinstance(value, list):
        return [_strip_positions(v) for v in value]
    if isinstance(value, str):
        return re.sub(r":\d+(:\d+)?\b", ":N", value)
    return value


def _model(folder: Path) -> dict:
    sol = load(folder)
    model = solution_model(sol)
    codes = sorted(d.code for d in sol.diagnostics)
    return {"model": _strip_positions(model), "codes": codes}


def _solution_of(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.name == "einit":
            return parent.parent
        if parent == ROOT:
            return None
    return None


SOLUTION_DIRS = sorted({s for s in map(_solution_of, PSL_FILES) if s is not None})


@pytest.mark.parametrize("solution", SOLUTION_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_formatting_keeps_the_resolved_model(solution, tmp_path):
    original = tmp_path / "a" / solution.name
    formatted = tmp_path / "b" / solution.name
    shutil.copytree(solution, original)
    shutil.copytree(solution, formatted)
    for f in collect([str(formatted)]):
        res = format_text(f.read_text(), str(f))
        if res.text is not None:
            f.write_text(res.text)
    assert _model(formatted) == _model(original)


# ----------------------------------------------------------------- hypothesis
BASE = """\
use nk.base._
use EDL Einit
use EDL demo.Server
execute: kl.core.Execute
type Level = "low" | "high"
policy object door : Flow { type State = "a" | "b" config = { states : ["a", "b"], initial : "a", transitions : { a : ["b"], b : ["a"] } } }
execute src=Einit, dst=demo.Server { grant () }
request src=Einit dst=demo.Server endpoint=e method=M { assert (message.x + 1 > -2 && !(message.y == 3)) }
request dst=demo.Server { match src=Einit { choice (message.mode) { "a" : grant () _ : deny () } } }
assert "t" { setup { s <- execute dst=demo.Server } sequence "one" { grant request src=s dst=s endpoint=e method=M { x : 1 } } }
"""
_GAPS = st.sampled_from(["", " ", "  ", "\n", "\n\n\n", "\t", " /* c */ ", " // line\n", "\n/* a\n   b */\n"])


@st.composite
def noisy_policies(draw):
    out = []
    pos = 0
    for tok in _items(BASE, "psl"):
        gap = BASE[pos:tok.start]
        new_gap = draw(_GAPS)
        out.append(new_gap or (" " if gap else ""))
        out.append(tok.text)
        pos = tok.start + len(tok.text)
    return "".join(out) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_policies())
def test_random_layouts_format_stably_and_keep_tokens(text):
    res = format_text(text, "security.psl")
    assert not res.problems, res.problems
    out = res.text
    assert format_text(out, "security.psl").text == out
    assert _tokens(out, "x.psl") == _tokens(text, "x.psl")
    assert _comments(out) == _comments(text)
    # without the comments and line breaks, every layout gives one canonical text
    flat = re.sub(r"\s+", " ", re.sub(r"//[^\n]*|/\*[\s\S]*?\*/", " ", text))
    assert format_text(flat, "s.psl").text == format_text(re.sub(r"\s+", " ", BASE), "s.psl").text


def test_formatted_model_of_a_messy_solution_is_unchanged(tmp_path):
    sol = tmp_path / "echo"
    shutil.copytree(ROOT / "models" / "echo", sol)
    psl = sol / "einit" / "src" / "security.psl"
    messy = re.sub(r"[ \t]+", "  ", psl.read_text()).replace("{ grant () }", "{\n  grant ()   }")
    psl.write_text(messy)
    before = _model(sol)
    psl.write_text(format_text(messy, str(psl)).text)
    assert _model(sol) == before


# ----------------------------------------------------------- style, comments
def test_style_and_comments():
    text = ("use nk.base._ use EDL Einit\n\n\n\n// keep me\nrequest   src=Einit,dst=x.Y {assert(message.a+1>2)  /* b */\n"
            "match method=M{grant ()}}\n")
    out = format_text(text, "a.psl").text
    assert out == ("use nk.base._\nuse EDL Einit\n\n// keep me\nrequest src=Einit, dst=x.Y {\n"
                   "    assert (message.a + 1 > 2)  /* b */\n    match method=M { grant () }\n}\n")


def test_placeholders_kept_and_jinja_files_left_alone():
    text = "use EDL demo.@MAIN_TASK@\n@INIT_EXTERNAL_ENTITIES@\nexecute  src=Einit {grant ()}\n"
    out = format_text(text, "security.psl.in").text
    assert out == "use EDL demo.@MAIN_TASK@\n@INIT_EXTERNAL_ENTITIES@\nexecute src=Einit { grant () }\n"
    jinja = "{% for c in cs %}\nexecute  src={{ c }} {grant ()}\n{% endfor %}\n"
    res = format_text(jinja, "security.psl.in")
    assert res.text is None and "Jinja" in res.skipped


def test_props_formatting():
    text = "# c\nproperty  p :\nnever request src=A where message.x>1\nchannel A->B"
    out = format_text(text, "x.props").text
    assert format_text(out, "x.props").text == out and "# c" in out


def test_unparsable_file_is_left_unchanged_with_a_diagnostic(tmp_path, capsys):
    bad = tmp_path / "security.psl"
    text = "request src=Einit dst=x.Y {\n    assert (message.a +\n"
    bad.write_text(text)
    assert main(["fmt", str(bad)]) == 1
    assert bad.read_text() == text
    err = capsys.readouterr().err
    assert re.search(r"security\.psl:\d+:\d+: error\[SYN\d+\]", err) and "left unchanged" in err


# ----------------------------------------------------------------------- CLI
def test_cli_check_diff_and_rewrite(tmp_path, capsys):
    f = tmp_path / "a.psl"
    f.write_text("execute  src=Einit {grant ()}")
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    assert "would reformat" in capsys.readouterr().out
    assert main(["fmt", "--diff", str(f)]) == 1
    assert "+execute src=Einit { grant () }" in capsys.readouterr().out
    assert f.read_text() == "execute  src=Einit {grant ()}"
    assert main(["fmt", str(f)]) == 0
    assert f.read_text() == "execute src=Einit { grant () }\n"
    assert main(["fmt", "--check", str(f)]) == 0
    assert main(["fmt", str(tmp_path / "missing.psl")]) == 2
    assert main(["fmt", "--check", "--diff", str(f)]) == 2


def test_repository_models_and_examples_are_formatted():
    assert main(["fmt", "--check", str(ROOT / "models"), str(ROOT / "docs" / "examples")]) == 0


def test_folders_starting_with_a_dot_are_not_searched(tmp_path, capsys):
    """A real solution keeps `.tito/tito.props`, another tool's file: a folder walk skips it."""
    (tmp_path / ".tito").mkdir()
    (tmp_path / ".tito" / "tito.props").write_text("[buildconfig]\nbuilder = %(x)s\n")
    (tmp_path / "p.props").write_text("property  p : never request src=a.B\n")
    assert [f.name for f in collect([str(tmp_path)])] == ["p.props"]
    assert [f.name for f in collect([str(tmp_path / ".tito" / "tito.props")])] == ["tito.props"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_or_a_device_is_refused_at_once_not_waited_on(tmp_path, capsys):
    """`ksm fmt` reads files as every command does: opening a FIFO used to block for a writer."""
    fifo = tmp_path / "policy.psl"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        if not target.exists():
            continue
        assert main(["fmt", "--check", str(target)]) == 1
        assert "error[FMT002]: cannot read" in capsys.readouterr().err
