"""The load's fast paths give exactly what the plain paths give.

Each speed-up of the front end has a slow twin that is the reference: the lexer that
skips white space and comments inside each match (against the lexer that makes them
tokens), the recorded LALR parses (against ``Lark.parse``), libyaml's event parser
(against PyYAML's), the per-load path memo (against ``Path.resolve``).  Nothing here
measures time; ``ksm bench load`` does.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from lark.exceptions import UnexpectedInput

import policy_lang.syntax.init_yaml as init_yaml
from policy_lang import load
from policy_lang.diagnostics import Diagnostics
from policy_lang.loader import LoadOptions, Workspace
from policy_lang.source import SourceText
from policy_lang.syntax import components, idl, psl
from policy_lang.syntax.lexing import FastLexer, LexError, load_grammar, split_declarations

ROOT = Path(__file__).resolve().parent.parent
GRAMMARS = {"psl": ("start", "decl"), "idl": ("item",), "components": ("item",), "props": ("decl",)}
SUFFIXES = {"psl": (".psl", ".psl.in"), "idl": (".idl",), "components": (".cdl", ".edl"), "props": (".props",)}


def _corpus(suffixes: tuple[str, ...]) -> list[str]:
    out = []
    for base in ("models", "tests/corpus", "docs/examples", "tests/sdk_stub"):
        for p in sorted((ROOT / base).rglob("*")):
            if p.is_file() and p.name.endswith(suffixes):
                out.append(p.read_text(encoding="utf-8", errors="replace"))
    return out


def _scan(lexer: FastLexer, text: str):
    out: list = []
    try:
        lexer.scan_into(out, text)
    except LexError as err:
        return [(t.type, str(t), t.start_pos) for t in out], (err.pos, err.kind)
    return [(t.type, str(t), t.start_pos) for t in out], None


# Pieces that make lexers disagree if anything does: comments (closed, unclosed, nested
# in text), white space of every kind, operators that share a first character,
# keywords glued to dots, characters no terminal takes.
_PIECES = ["/*", "*/", "//", "/", "*", "**", "\n", " ", "\t", "\r", "\f", "\u00a0", "\u2028", '"', '"x"', "'",
           "`", "```regex a```", "#", "a", "a.b", ".c", "request", "src", "=", "==", "==>", "<", "<-", "<~", "~>",
           "!", "!=", "&", "&&", "|", "||", "-", "0x1F", "12", "{", "}", "(", ")", "[", "]", ",", ":", ";", "_",
           "\\", "@", "$", "é", "\u0000"]


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_lexer_skipping_ignored_text_and_merging_punctuation_gives_the_same_tokens(name):
    grammar = load_grammar(name, GRAMMARS[name])
    fast = grammar.lexer
    plain = FastLexer.from_lark(grammar.parser, skip_ignored=False, merge_punctuation=False)
    assert fast.skips_ignored and not plain.skips_ignored
    assert len(fast.regex.groupindex) < len(plain.regex.groupindex)     # punctuation merged
    texts = _corpus(SUFFIXES[name])
    rng = random.Random(7)
    for _ in range(1500):
        texts.append("".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 40))))
    for text in texts:
        assert _scan(fast, text) == _scan(plain, text), text[:200]
        for start in (0, len(text) // 3):             # a slice, as lex() resumes after an error
            out_f: list = []
            out_p: list = []
            try:
                fast.scan_into(out_f, text, start, len(text) - 1)
            except LexError as err:
                out_f.append(err.pos)
            try:
                plain.scan_into(out_p, text, start, len(text) - 1)
            except LexError as err:
                out_p.append(err.pos)
            assert out_f == out_p


def _chunks(name: str):
    grammar = load_grammar(name, GRAMMARS[name])
    diags = Diagnostics()
    for text in _corpus(SUFFIXES[name]):
        src = SourceText("x", text)
        if name == "psl":
            from policy_lang.syntax.lexing import lex
            tokens = lex(grammar, src, diags)
            yield from split_declarations(tokens, psl.STARTERS)
        else:
            from policy_lang.syntax.lexing import lex
            tokens = idl.prepare_tokens(grammar, lex(grammar, src, diags), src, diags)
            yield from split_declarations(tokens, idl._STARTERS if name == "idl" else components._STARTERS)


@pytest.mark.parametrize("name,start", [("idl", "item"), ("components", "item"), ("psl", "decl")])
def test_recorded_parses_build_the_tree_lark_builds(name, start):
    grammar = load_grammar(name, GRAMMARS[name])
    rng = random.Random(3)
    checked = 0
    for chunk in _chunks(name):
        variants = [chunk, list(chunk)]                     # the second replays the first's recording
        for _ in range(3):                                  # damaged copies: both must reject or agree
            broken = list(chunk)
            i = rng.randrange(len(broken))
            if rng.random() < 0.5:
                del broken[i]
            else:
                broken.insert(i, broken[rng.randrange(len(broken))])
            variants.append(broken)
        for tokens in variants:
            if not tokens:
                continue
            mine = grammar.automaton(start).parse(tokens)
            try:
                theirs = grammar.parser.parse(tokens, start=start)
            except UnexpectedInput:
                theirs = None
            assert mine == theirs
            if mine is not None:
                assert mine.pretty() == theirs.pretty()
                checked += 1
    assert checked > 20


def _init_texts() -> list[str]:
    out = []
    for base in ("models", "tests/corpus", "docs/examples"):
        for p in sorted((ROOT / base).rglob("*")):
            if p.is_file() and (".yaml" in p.name or ".yml" in p.name):
                out.append(p.read_text())
    return out


def _parse_init(text: str, fast: bool, monkeypatch):
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(init_yaml, "_CParser", None)
        diags = Diagnostics()
        result = init_yaml.parse_init(SourceText("init.yaml", text), diags)
    return repr(result), [(d.code, d.message, d.span) for d in diags]


_YAML_PIECES = ["- ", ": ", "\n  ", "\n- ", "*a", "&a ", "<<: *a", "---\n", "...\n", "? ", "'x'", '"y"', "|\n  t\n",
                ">-\n  t\n", "{a: b}", "[a, b]", "!!str ", "!x ", "%YAML 1.1\n", "# c\n", '"\\x41"', "'it''s'", "~",
                "- name: a.B\n", "  connections:\n  - target: t\n    id: c\n", ":", "-", "[", "{", "\n", "  "]


def test_libyaml_events_read_init_files_as_pyyaml_does(monkeypatch):
    if init_yaml._CParser is None:
        pytest.skip("PyYAML without libyaml")
    seeds = [t for t in _init_texts() if init_yaml._PLAIN_TEXT.fullmatch(t)]
    assert seeds
    rng = random.Random(5)
    texts = list(seeds)
    for _ in range(600):
        lines = rng.choice(seeds).split("\n")
        for _ in range(rng.choice((1, 1, 2, 3))):
            i = rng.randrange(len(lines))
            op = rng.randrange(5)
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(i, rng.choice(lines))
            elif op == 2:
                lines[i] = "  " + lines[i]
            else:
                k = rng.randint(0, len(lines[i]))
                lines[i] = lines[i][:k] + rng.choice(_YAML_PIECES) + lines[i][k + (op == 4):]
        texts.append("\n".join(lines).rstrip("\n") + "\n")
    fast = 0
    for text in texts:
        if init_yaml._compose_fast(text) is not init_yaml._NOT_FAST:
            fast += 1
        assert _parse_init(text, True, monkeypatch) == _parse_init(text, False, monkeypatch), text[:300]
    assert fast > 150            # texts libyaml read (the others fell back to PyYAML's parser)
    for text in seeds:           # every file PyYAML reads, libyaml reads too
        if "YML001" not in [code for code, *_ in _parse_init(text, False, monkeypatch)[1]]:
            assert init_yaml._compose_fast(text) is not init_yaml._NOT_FAST


@pytest.mark.parametrize("text", [
    "entities:\n  - name: a.B\n    task: b",                      # no final line feed
    "entities:\n\t- name: a.B\n",                                # a tab
    "entities:\n  - name: \u00e9.B\n",                            # not ASCII
    "entities:\n" + "  " * 70 + "[" * 80 + "]" * 80 + "\n",      # deep
    "a: &a [*a]\n",                                              # recursive alias
    "entities:\n  - name: a.B\n  - name: a.B\n",                  # a duplicate task
])
def test_texts_off_the_fast_path_or_failing_on_it_read_as_before(text, monkeypatch):
    assert _parse_init(text, True, monkeypatch) == _parse_init(text, False, monkeypatch)
    if "\t" in text or "\u00e9" in text or not text.endswith("\n") or "[[[" in text:
        assert init_yaml._compose_fast(text) is init_yaml._NOT_FAST


def test_the_written_node_limit_holds_on_both_paths(monkeypatch):
    monkeypatch.setattr(init_yaml, "MAX_WRITTEN_NODES", 50)
    text = "entities:\n" + "".join(f"  - name: a.B{i}\n    task: t{i}\n" for i in range(30))
    fast, slow = _parse_init(text, True, monkeypatch), _parse_init(text, False, monkeypatch)
    assert fast == slow and [code for code, *_ in fast[1]] == ["YML003"]


def test_the_workspace_resolves_and_shows_paths_as_path_resolve_does(tmp_path, monkeypatch):
    root = tmp_path / "sol"
    (root / "einit/src").mkdir(parents=True)
    (root / "res").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    (root / "res/A.edl").write_text("task class a.A\n")
    (shared / "B.edl").write_text("task class a.B\n")
    (shared / "C.idl").write_text("package a.C\ninterface { Ping(); }\n")
    os.symlink(shared / "B.edl", root / "res/B.edl")                 # a linked file
    os.symlink(shared, root / "linked")                              # a linked folder
    os.symlink(root / "res", root / "res/loop")                      # a link cycle
    monkeypatch.chdir(tmp_path)
    ws = Workspace(root, LoadOptions(), Diagnostics())
    index = ws._index()
    assert index["class"]["a.A"] == [(root / "res/A.edl").resolve()]
    assert index["class"]["a.B"] == [(shared / "B.edl").resolve()]
    assert index["idl"]["a.C"] == [(shared / "C.idl").resolve()]
    for p in (root / "res/B.edl", root / "linked/C.idl", Path("sol/res/A.edl"), tmp_path / "nowhere",
              (root / "res/A.edl").resolve(), tmp_path.resolve(), tmp_path.resolve().parent, Path("/")):
        assert ws.real(p) == p.resolve()
        from policy_lang.source import display_path
        assert ws.shown(p) == display_path(p)


def test_a_load_leaves_no_reference_cycles(monkeypatch):
    """What a load builds is freed by reference counting: no cycle is left to the collector
    (what makes gc.freeze() at the end of a large load safe, see policy_lang.perf)."""
    import gc

    targets = [p for base in ("models", "tests/corpus", "docs/examples") for p in sorted((ROOT / base).iterdir())
               if p.is_dir()]
    from conftest import read_defines

    load(targets[0])
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        for target in targets:
            gc.collect()
            sol = load(target, defines=read_defines(target))
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                gc.collect()
                left = [type(o).__name__ for o in gc.garbage]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
            assert not left, f"{target.name}: {len(left)} objects in cycles, e.g. {sorted(set(left))[:8]}"
            del sol
    finally:
        if was:
            gc.enable()


def test_a_large_load_freezes_what_it_built_and_frees_it_later(tmp_path, monkeypatch):
    import gc

    from policy_lang import perf

    from ksm.load_bench import generate_many_file_solution

    generate_many_file_solution(tmp_path, 600)
    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        monkeypatch.setattr(perf, "FREEZE_MIN_OBJECTS", 1)
        sol = load(tmp_path)
        assert sol.ok
        loaded = gc.get_freeze_count()
        assert loaded > frozen                          # the load's objects are out of the collector's way
        del sol                                         # ... and freed by reference counting when dropped
        dropped = gc.get_freeze_count()
        assert dropped < loaded - 1000
        sol = load(tmp_path)                            # nothing of the first load is kept
        assert gc.get_freeze_count() - dropped <= loaded - dropped + 100
        del sol
        monkeypatch.setattr(perf, "FREEZE_MIN_OBJECTS", None)
        gc.unfreeze()
        load(tmp_path)
        assert gc.get_freeze_count() == 0               # turned off
    finally:
        gc.unfreeze()


def test_a_template_expansion_keeps_the_collector_from_freezing(tmp_path, monkeypatch):
    import gc

    from policy_lang import perf

    (tmp_path / "einit/src").mkdir(parents=True)
    (tmp_path / "einit/src/security.psl.in").write_text(
        "use nk.base._\nexecute: kl.core.Execute\n{% if A %}execute { grant () }{% endif %}\n")
    (tmp_path / "einit/src/init.yaml").write_text("entities: []\n")
    gc.unfreeze()
    monkeypatch.setattr(perf, "FREEZE_MIN_OBJECTS", 1)
    try:
        load(tmp_path, defines={"A": "1"})
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


def test_a_corrupt_or_stale_grammar_cache_does_not_stop_a_load(tmp_path, monkeypatch):
    from policy_lang.syntax import lexing

    monkeypatch.setenv("KSM_CACHE_DIR", str(tmp_path))
    build = lexing.load_grammar.__wrapped__
    reference = build("idl", ("item",))
    files = sorted(tmp_path.glob("idl-*.lark-cache"))
    assert len(files) == 1                                   # written on the first build
    files[0].write_bytes(b"\x00not a cache\xff" * 10)          # corrupt it
    again = build("idl", ("item",))
    src = SourceText("x.idl", "package a.B\ninterface { Ping(in UInt8 v); }\n")
    assert repr(idl.parse_idl(src, Diagnostics())) == repr(idl.parse_idl(src, Diagnostics()))
    tokens = lexing.lex(again, src, Diagnostics())
    chunks = split_declarations(idl.prepare_tokens(again, tokens, src, Diagnostics()), idl._STARTERS)
    for chunk in chunks:
        assert again.parser.parse(chunk, start="item") == reference.parser.parse(chunk, start="item")
    # Another grammar text (or lark version) is another file: a stale cache is never read.
    assert lexing._cache_file("idl", "x", ("item",)) != lexing._cache_file("idl", "y", ("item",))
    monkeypatch.setenv("KSM_CACHE_DIR", "")
    assert lexing._cache_file("idl", "x", ("item",)) is None
    assert build("idl", ("item",)).parser is not None
