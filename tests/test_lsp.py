"""``ksm lsp`` end to end: a real client (pytest-lsp) starts ``python -m ksm.lsp`` on stdio.

Every test works on a copy of models/smart_lock in tmp_path, so edits never touch the
repository.  The server publishes front-end diagnostics at once and lint findings
after a pause, so tests wait for a publication with the expected content.
"""
from __future__ import annotations

import asyncio
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
