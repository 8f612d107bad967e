"""``ksm lsp`` end to end: a real client (pytest-lsp) starts ``python -m ksm.lsp`` on stdio.

Every test works on a copy of models/smart_lock in tmp_path, so edits never touch the
repository.  The server publishes front-end diagnostics at once and lint findings
after a pause, so tests wait for a publication with the expected content.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.asyncio


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "ksm.lsp"],
                                              server_env={"PYTHONPATH": str(REPO)}))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(T.InitializeParams(capabilities=pytest_lsp.client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    dest = tmp_path / "smart_lock"
    shutil.copytree(REPO / "models" / "smart_lock", dest)
    return dest


def _policy(lock: Path) -> tuple[Path, str, str]:
    path = lock / "einit" / "src" / "security.psl"
    return path, path.as_uri(), path.read_text()


def _open(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "psl", 1, text)))


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [T.TextDocumentContentChangeWholeDocument(text=text)]))


async def _until(check, seconds: float = 20.0):
    for _ in range(int(seconds / 0.05)):
        got = check()
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for the server")


def _pos(text: str, needle: str, offset: int = 0) -> T.Position:
    for i, line in enumerate(text.splitlines()):
        k = line.find(needle)
        if k >= 0:
            return T.Position(i, k + offset)
    raise AssertionError(needle)


async def test_misspelt_class_diagnostic_and_fix(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    bad = text.replace("request src=lock.NetAgent, dst=lock.Parser,", "request src=lock.NetAgnet, dst=lock.Parser,")
    assert bad != text
    _change(client, uri, bad, 2)
    diags = await _until(lambda: [d for d in client.diagnostics.get(uri, []) if "NetAgnet" in d.message])
    d = diags[0]
    where = _pos(bad, "lock.NetAgnet")
    assert d.range.start == where
    assert d.range.end == T.Position(where.line, where.character + len("lock.NetAgnet"))
    assert d.code.startswith("PSL") and d.severity == T.DiagnosticSeverity.Error
    assert d.code_description is None or d.code_description.href.endswith("diagnostics.md")
    _change(client, uri, text, 3)
    await _until(lambda: not any("NetAgnet" in d.message for d in client.diagnostics.get(uri, [])))


async def test_lint_findings_arrive(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    # An unconditional grant of a dangerous kernel interface to everyone: LNT021 (not suppressed here).
    marker = "// ksm: disable=LNT021 accepted risk: floods"
    assert marker in text
    text = text.replace(marker, "// accepted risk: floods")
    _open(client, uri, text)
    lnt = await _until(lambda: [d for d in client.diagnostics.get(uri, []) if str(d.code).startswith("LNT")])
    assert lnt[0].code_description.href.endswith(f"{lnt[0].code}.md")


async def test_hover(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    doc = T.TextDocumentIdentifier(uri)
    h = await client.text_document_hover_async(T.HoverParams(doc, _pos(text, "use EDL lock.Controller", 10)))
    assert "lock.Controller" in h.contents.value and "core.door.control" in h.contents.value
    h = await client.text_document_hover_async(T.HoverParams(doc, _pos(text, "method=Submit", 8)))
    assert "Submit(in string<64> text" in h.contents.value and "RIID 0, MID 0" in h.contents.value
    h = await client.text_document_hover_async(T.HoverParams(doc, _pos(text, "message.pin.attempt", 9)))
    assert "UInt8" in h.contents.value
    h = await client.text_document_hover_async(T.HoverParams(doc, _pos(text, "re.match", 4)))
    assert "Regex" in h.contents.value
    h = await client.text_document_hover_async(T.HoverParams(doc, _pos(text, "endpoint=cm.CM", 10)))
    assert "kernel method: dos" in h.contents.value


async def test_definition(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    doc = T.TextDocumentIdentifier(uri)
    loc = await client.text_document_definition_async(T.DefinitionParams(doc, _pos(text, "use EDL lock.Controller", 10)))
    assert loc.uri.endswith("resources/edl/Controller.edl") and loc.range.start.line == 4
    loc = await client.text_document_definition_async(T.DefinitionParams(doc, _pos(text, "method=Submit", 8)))
    assert loc.uri.endswith("resources/idl/CommandIntake.idl") and "Submit" in (lock / "resources/idl/CommandIntake.idl").read_text().splitlines()[loc.range.start.line]
    loc = await client.text_document_definition_async(T.DefinitionParams(doc, _pos(text, "endpoint=intake", 10)))
    assert loc.uri.endswith("resources/edl/Parser.edl")
    loc = await client.text_document_definition_async(T.DefinitionParams(doc, _pos(text, "use lock.policy.door._", 6)))
    assert loc.uri.endswith("lock/policy/door.psl")


async def test_document_symbols(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    syms = await client.text_document_document_symbol_async(T.DocumentSymbolParams(T.TextDocumentIdentifier(uri)))
    names = [s.name for s in syms]
    assert "request src=lock.NetAgent dst=lock.Parser endpoint=intake method=Submit" in names
    assert all(s.range.start.line <= s.selection_range.start.line <= s.range.end.line for s in syms)
    door = lock / "einit" / "src" / "lock" / "policy" / "door.psl"
    _open(client, door.as_uri(), door.read_text())
    syms = await client.text_document_document_symbol_async(
        T.DocumentSymbolParams(T.TextDocumentIdentifier(door.as_uri())))
    assert any(s.kind == T.SymbolKind.Object for s in syms)


async def test_half_typed_file(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    cut = text[:text.index("assert (message.pin.attempt") + len("assert (message.pi")]
    _change(client, uri, cut, 2)
    await _until(lambda: client.diagnostics.get(uri))
    h = await client.text_document_hover_async(
        T.HoverParams(T.TextDocumentIdentifier(uri), _pos(cut, "use EDL lock.Controller", 10)))
    assert "lock.Controller" in h.contents.value


def _fmt_params(uri: str) -> T.DocumentFormattingParams:
    return T.DocumentFormattingParams(T.TextDocumentIdentifier(uri), T.FormattingOptions(tab_size=4, insert_spaces=True))


async def test_formatting(client: LanguageClient, lock: Path):
    from ksm.fmt import format_text

    path, uri, text = _policy(lock)
    _open(client, uri, text)
    assert not await client.text_document_formatting_async(_fmt_params(uri))     # formatted already
    messy = text.replace("use EDL lock.Ui", "use EDL   lock.Ui  ").replace("match dst=Einit { grant () }",
                                                                        "match dst=Einit {grant()}")
    _change(client, uri, messy, 2)
    edits = await client.text_document_formatting_async(_fmt_params(uri))
    assert len(edits) == 1 and edits[0].range.start == T.Position(0, 0)
    n = messy.split("\n")
    assert edits[0].range.end == T.Position(len(n) - 1, len(n[-1]))
    assert edits[0].new_text == format_text(messy, "security.psl").text == text
    _change(client, uri, messy + "\nrequest {", 3)                                # does not parse: nothing
    assert not await client.text_document_formatting_async(_fmt_params(uri))
    props = lock / "einit" / "src" / "smart_lock.props"
    ptext = props.read_text()
    lines = ptext.splitlines(keepends=True)
    k = next(i for i, ln in enumerate(lines) if ln.startswith("    "))
    lines[k] = "  " + lines[k]
    _open(client, props.as_uri(), "".join(lines))
    edits = await client.text_document_formatting_async(_fmt_params(props.as_uri()))
    assert len(edits) == 1 and edits[0].new_text == format_text("".join(lines), "x.props").text


async def _complete(client: LanguageClient, uri: str, text: str, version: int, line: int, character: int) -> list[str]:
    _change(client, uri, text, version)
    got = await client.text_document_completion_async(
        T.CompletionParams(T.TextDocumentIdentifier(uri), T.Position(line, character)))
    return [i.label for i in (got.items if isinstance(got, T.CompletionList) else got or [])]


def _typed(text: str, needle: str, typed: str) -> tuple[str, int, int]:
    """``text`` with the line holding ``needle`` cut after it and ``typed`` appended, and the cursor at its end."""
    lines = text.split("\n")
    i = next(k for k, ln in enumerate(lines) if needle in ln)
    lines[i] = lines[i][:lines[i].index(needle) + len(needle)] + typed
    return "\n".join(lines), i, len(lines[i])


async def test_completion(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    head = "request src=lock.NetAgent, dst=lock.Parser, "
    v = iter(range(2, 100))
    # start of a line: event kinds and declarations
    t, i, c = _typed(text, "request src=lock.Controller dst=lock.KeyStore", "\nre")
    labels = await _complete(client, uri, t, next(v), i + 1, 2)
    assert "request" in labels and "use EDL" in labels and "policy object" in labels
    # selector keys after the kind, values after the keys
    labels = await _complete(client, uri, *_typed(text, head, "")[:1], next(v), *_typed(text, head, "")[1:])
    assert {"endpoint=", "method="} <= set(labels) and "src=" not in labels
    t, i, c = _typed(text, "request src=", "lock.Ne")
    labels = await _complete(client, uri, t, next(v), i, c)
    assert "lock.NetAgent" in labels and "lock.Parser" in labels
    t, i, c = _typed(text, head + "endpoint=", "")
    assert await _complete(client, uri, t, next(v), i, c) == ["intake"]
    t, i, c = _typed(text, head + "endpoint=intake, method=", "")
    assert "Submit" in await _complete(client, uri, t, next(v), i, c)
    # message fields of the binding's method, struct fields, model methods
    t, i, c = _typed(text, "    assert (message.pin.", "")
    labels = await _complete(client, uri, t, next(v), i, c)
    assert "attempt" in labels
    t, i, c = _typed(text, "    assert (message.pi", "")
    assert "pin" in await _complete(client, uri, t, next(v), i, c)
    t, i, c = _typed(text, "    assert (re.", "")
    assert "match" in await _complete(client, uri, t, next(v), i, c)
    # half-typed junk: an answer, never an error
    t, i, c = _typed(text, "    assert (re.", "match {{ ] message.")
    assert isinstance(await _complete(client, uri, t, next(v), i, c), list)


async def test_folding_ranges(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    got = await client.text_document_folding_range_async(T.FoldingRangeParams(T.TextDocumentIdentifier(uri)))
    spans = {(r.start_line, r.end_line, r.kind) for r in got}
    lines = text.splitlines()
    assert (0, 10, T.FoldingRangeKind.Comment) in spans                       # the file's header comment
    execute = _pos(text, "execute {").line
    close = next(i for i in range(execute, len(lines)) if lines[i] == "}")
    assert (execute, close - 1, T.FoldingRangeKind.Region) in spans
    binding = _pos(text, "request src=lock.Controller dst=lock.KeyStore").line
    assert (binding, binding + 1, T.FoldingRangeKind.Region) in spans
    one_line = _pos(text, "match dst=Einit { grant () }").line                 # a one-line block: no fold
    assert not any(r.start_line == one_line for r in got)
    assert all(r.end_line > r.start_line for r in got)


async def _actions(client: LanguageClient, uri: str, diags: list[T.Diagnostic]) -> list[T.CodeAction]:
    got = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), diags[0].range, T.CodeActionContext(diagnostics=diags)))
    return got or []


def _apply(text: str, edits: list[T.TextEdit]) -> str:
    lines = text.split("\n")
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        s, t = e.range.start, e.range.end
        head, tail = "\n".join(lines[:s.line] + [lines[s.line][:s.character]]), \
            "\n".join([lines[t.line][t.character:]] + lines[t.line + 1:])
        lines = (head + e.new_text + tail).split("\n")
    return "\n".join(lines)


async def test_code_actions(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    # a misspelt class: replace it with the suggestion; no `use EDL` fix (no such EDL)
    bad = text.replace("request src=lock.NetAgent, dst=lock.Parser,", "request src=lock.NetAgnet, dst=lock.Parser,")
    _change(client, uri, bad, 2)
    diags = await _until(lambda: [d for d in client.diagnostics.get(uri, []) if "NetAgnet" in d.message])
    acts = await _actions(client, uri, diags)
    assert [a.title for a in acts] == ["Replace lock.NetAgnet with lock.NetAgent"]
    assert _apply(bad, acts[0].edit.changes[uri]) == text
    # a misspelt policy object in a call: only the object's name is replaced
    bad = text.replace("assert (re.match", "assert (ree.match")
    _change(client, uri, bad, 3)
    diags = await _until(lambda: [d for d in client.diagnostics.get(uri, []) if "ree" in d.message])
    acts = await _actions(client, uri, diags)
    assert len(acts) == 1 and _apply(bad, acts[0].edit.changes[uri]) == text
    # a class whose `use EDL` line is missing: add it after the last `use` line
    bad = text.replace("use EDL lock.Ui\n", "")
    _change(client, uri, bad, 4)
    diags = await _until(lambda: [d for d in client.diagnostics.get(uri, [])
                                  if d.code == "PSL001" and "lock.Ui" in d.message])
    acts = await _actions(client, uri, diags[:1])
    assert [a.title for a in acts] == ["Add `use EDL lock.Ui`"]
    fixed = _apply(bad, acts[0].edit.changes[uri])
    assert "use EDL lock.Ui\n" in fixed
    assert fixed.index("use EDL lock.Ui") > fixed.index("use lock.policy.door._")
    # a message without a certain fix: no action
    assert await _actions(client, uri, [T.Diagnostic(diags[0].range, "something else", code="PSL999",
                                                     source="ksm")]) == []


async def _refs(client: LanguageClient, uri: str, pos: T.Position, decl: bool) -> list[T.Location]:
    return await client.text_document_references_async(T.ReferenceParams(
        context=T.ReferenceContext(include_declaration=decl), text_document=T.TextDocumentIdentifier(uri),
        position=pos))


def _named(loc: T.Location) -> tuple[str, int, str]:
    """(file name, line, the text the range covers)."""
    from ksm.lsp.server import uri_to_path

    line = uri_to_path(loc.uri).read_text().splitlines()[loc.range.start.line]
    return Path(loc.uri).name, loc.range.start.line, line[loc.range.start.character:loc.range.end.character]


async def test_references(client: LanguageClient, lock: Path):
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    # a class: its `use EDL` line, binding and match selectors, test cases, init.yaml entry, and the EDL
    refs = await _refs(client, uri, _pos(text, "use EDL lock.Parser", 10), True)
    got = [_named(r) for r in refs]
    assert all(t == "lock.Parser" for f, _, t in got if f != "Parser.edl")
    lines = {(f, n) for f, n, _ in got}
    assert ("security.psl", _pos(text, "use EDL lock.Parser").line) in lines
    assert ("security.psl", _pos(text, "request src=lock.NetAgent, dst=lock.Parser").line) in lines
    assert ("security.psl", _pos(text, "match dst=lock.Parser { grant () }").line) in lines
    assert ("security.psl", _pos(text, "parser <- execute src=einit dst=lock.Parser").line) in lines
    init = (lock / "einit" / "src" / "init.yaml").read_text()
    assert ("init.yaml", _pos(init, "name: lock.Parser").line) in lines
    assert any(f == "door.psl" for f, _ in lines)
    assert any(f == "Parser.edl" for f, _ in lines)
    without = await _refs(client, uri, _pos(text, "use EDL lock.Parser", 10), False)
    assert len(without) == len(refs) - 1 and not any(r.uri.endswith("Parser.edl") for r in without)
    # a method: the IDL declaration, `method=` of the binding and of the PAL test cases
    refs = await _refs(client, uri, _pos(text, "method=Submit", 8), True)
    got = [_named(r) for r in refs]
    assert any(f == "CommandIntake.idl" for f, _, _ in got) and all(t == "Submit" for _, _, t in got)
    assert ("security.psl", _pos(text, "method=Submit").line, "Submit") in got
    assert sum(1 for f, _, _ in got if f == "security.psl") == 4          # the binding and three test cases
    refs = await _refs(client, uri, _pos(text, "method=Submit", 8), False)
    assert len(refs) == 4 and not any(r.uri.endswith(".idl") for r in refs)
    # a policy object: its declaration and its calls (not `core.door.control`)
    door = lock / "einit" / "src" / "lock" / "policy" / "door.psl"
    dtext = door.read_text()
    _open(client, door.as_uri(), dtext)
    refs = await _refs(client, door.as_uri(), _pos(dtext, "door.init", 1), True)
    got = [_named(r) for r in refs]
    assert all(t == "door" for _, _, t in got)
    calls = [i for i, ln in enumerate(dtext.splitlines())
             if re.search(r"(?<![\w.])door\.\w", ln) and not ln.lstrip().startswith(("*", "/"))]
    assert {n for _, n, _ in got} >= set(calls) | {_pos(dtext, "policy object door").line}
    assert not any(n == _pos(dtext, "endpoint=core.door.control").line for _, n, _ in got)
    refs = await _refs(client, door.as_uri(), _pos(dtext, "door.init", 1), False)
    assert {r.range.start.line for r in refs} == set(calls)
    # nothing under the cursor: an empty list
    empty = await _refs(client, uri, T.Position(_pos(text, "use nk.base._").line + 1, 0), True)
    assert empty is not None and len(empty) == 0


async def test_edits_far_apart_keep_every_position_right(client: LanguageClient, lock: Path):
    """Reloads re-read only the edited declarations (policy_lang.syntax.psl_reparse):
    after lines are added above a binding, its error must point at its new line, and a
    later edit elsewhere must neither lose it nor move it."""
    path, uri, text = _policy(lock)
    _open(client, uri, text)
    first = text.replace("request src=lock.NetAgent, dst=lock.Parser,", "request src=lock.NetAgnet, dst=lock.Parser,")
    _change(client, uri, first, 2)
    await _until(lambda: [d for d in client.diagnostics.get(uri, []) if "NetAgnet" in d.message])
    head, rest = first.split("\n", 1)
    moved = head + "\n// three\n// new\n// lines\n" + rest                      # everything below moves down
    _change(client, uri, moved, 3)
    want = _pos(moved, "lock.NetAgnet")
    d = await _until(lambda: [d for d in client.diagnostics.get(uri, [])
                              if "NetAgnet" in d.message and d.range.start == want])
    assert d
    tail_edit = moved.rstrip("\n") + "\n\n// the end\n"                          # an edit after it
    _change(client, uri, tail_edit, 4)
    await asyncio.sleep(0.5)
    diags = [d for d in client.diagnostics.get(uri, []) if "NetAgnet" in d.message]
    assert [d.range.start for d in diags] == [_pos(tail_edit, "lock.NetAgnet")]


async def test_a_property_file_is_checked_from_its_buffer(client: LanguageClient, lock: Path):
    props = lock / "einit" / "src" / "smart_lock.props"
    uri, text = props.as_uri(), props.read_text()
    policy_path, policy_uri, policy_text = _policy(lock)
    _open(client, policy_uri, policy_text)
    _open(client, uri, text)
    bad = text.replace("never request src=lock.NetAgent dst=lock.KeyStore", "never request src=lock.NetAgnet dst=lock.KeyStore")
    assert bad != text
    _change(client, uri, bad, 2)
    diags = await _until(lambda: [d for d in client.diagnostics.get(uri, []) if "NetAgnet" in d.message])
    assert diags[0].code.startswith("PRP") and diags[0].range.start == _pos(bad, "lock.NetAgnet")
    _change(client, uri, text, 3)
    await _until(lambda: uri in client.diagnostics and not any("NetAgnet" in d.message
                                                                for d in client.diagnostics[uri]))
