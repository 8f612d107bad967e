"""``ksm lsp``: a Language Server Protocol server over stdio for a solution's files.

What it does (docs/lsp.md): diagnostics of the front end at once and of the linter
after a pause in typing, hover, go to definition, find references, document symbols, and (editing.py)
formatting, completion, folding ranges and quick fixes.  Everything
comes from the resolved :class:`policy_lang.Solution` of the edited file's solution,
loaded with the editor's unsaved buffers in place of the files on disk
(``LoadOptions.overlay``); there is no second parser: the word under the cursor is
looked up in the solution's tables, with the binding that encloses the cursor (by
the spans of the resolved bindings) as its context.

Per-solution state is the last loaded solution, the files diagnostics were last
published for, and the pending reload task; a newer change cancels the pending one.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from policy_lang import LoadOptions, Severity, Solution, load
from policy_lang.diagnostics import Diagnostic, Diagnostics, Span
from policy_lang.source import UserFileError, read_user_text
from policy_lang.syntax.psl_reparse import PslReparser

log = logging.getLogger("ksm.lsp")

#: Pause after the last change before the linter runs (seconds).
LINT_DELAY = 0.3
#: Every this many pauses, the objects frozen after reloads are handed back to the
#: collector before it runs (see ``KsmLanguageServer.collect_when_idle``).
THAW_EVERY = 50
#: Pause after a change before the front end reloads: long enough to take in the
#: changes already queued (an editor sends a burst on paste or undo), short next to
#: the reload itself; a change during a reload cancels what follows it.
LOAD_DELAY = 0.01

_SOLUTION_SUFFIXES = (".psl", ".psl.in", ".edl", ".edl.in", ".cdl", ".cdl.in", ".idl", ".idl.in",
                      ".yaml", ".yaml.in", ".yml", ".props", ".toml")
_DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
_WORD = re.compile(r"[A-Za-z_][\w.]*")


# ----------------------------------------------------------------------------- paths

def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def path_to_uri(path: Path) -> str:
    return path.absolute().as_uri()


def _span_path(span: Span) -> Path:
    """The absolute path of a span's file (spans show paths relative to the working folder)."""
    return Path(os.path.abspath(span.file))


def _has_policy(folder: Path) -> bool:
    return any((folder / sub / name).is_file() for sub in (".", "einit/src", "einit", "src")
               for name in ("security.psl", "security.psl.in"))


def find_root(path: Path) -> Path | None:
    """The solution folder ``ksm check`` would use for the solution ``path`` belongs to.

    Walks up from the file: the first folder holding a top-level policy where
    ``ksm check`` looks for one (``.``, ``einit/src``, ``einit``, ``src``), or holding a
    ``ksm.toml``; a folder inside ``einit`` belongs to the folder holding ``einit``.
    The walk stops at a repository root (``.git``).  Found none: a policy file is its
    own solution (as ``ksm check FILE`` takes it), so a project whose policies have
    other names (``einit/sim/src/sim_offline.psl.in``) is checked too."""
    folder = path.parent
    for parent in (folder, *folder.parents):
        if _has_policy(parent) or (parent / "ksm.toml").is_file():
            for up in (parent, *parent.parents):
                if up.name == "einit":
                    return up.parent
            return parent
        if (parent / ".git").exists():
            break
    return path if path.name.endswith((".psl", ".psl.in")) else None


def options_for(root: Path) -> tuple[LoadOptions, list[Diagnostic]]:
    """The loading options ``[solution]`` of the settings file gives ``root`` (ksm.toml
    found upward, as ``ksm check`` finds it), and the problems in that file."""
    from ksm.cli.settings import _Checker, read_settings

    settings, problems = read_settings(root)
    if problems or settings.file is None:
        return LoadOptions(), problems
    checker = _Checker(settings)
    got = checker.solution(settings.tables.get("solution", {}))
    defines: dict[str, str] = {}
    for values in got.get("defines", []):
        defines.update(values)
    defines.update(dict(got.get("define", [])))
    try:
        options = LoadOptions(init=got.get("init"), include_dirs=tuple(got.get("include", ())), defines=defines,
                              sdk_dirs=tuple(got.get("sdk", ())), trusted=tuple(got.get("trusted", ())))
    except (TypeError, ValueError) as exc:
        log.warning("settings of %s not used: %s", root, exc)
        options = LoadOptions()
    return options, list(checker.diags)


# ----------------------------------------------------------------------------- diagnostics

_SEVERITY = {Severity.ERROR: lsp.DiagnosticSeverity.Error, Severity.WARNING: lsp.DiagnosticSeverity.Warning,
             Severity.NOTE: lsp.DiagnosticSeverity.Information}


def _doc_link(code: str) -> str | None:
    page = _DOCS / "lint" / f"{code}.md" if code.startswith("LNT") else _DOCS / "diagnostics.md"
    return page.as_uri() if page.is_file() else None


def _line_text(lines: list[str], line: int) -> str:
    return lines[line] if 0 <= line < len(lines) else ""


def span_range(span: Span | None, lines: list[str]) -> lsp.Range:
    """A 1-based span as a 0-based LSP range; without an end, the word at the start."""
    if span is None:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    line, col = max(span.line - 1, 0), max(span.column - 1, 0)
    if span.end_line:
        return lsp.Range(lsp.Position(line, col), lsp.Position(span.end_line - 1, max(span.end_column - 1, 0)))
    text = _line_text(lines, line)
    m = _WORD.match(text, col)
    end = m.end() if m else min(col + 1, len(text)) if col < len(text) else col
    return lsp.Range(lsp.Position(line, col), lsp.Position(line, end))


def to_lsp(d: Diagnostic, lines: list[str]) -> lsp.Diagnostic:
    href = _doc_link(d.code)
    return lsp.Diagnostic(
        range=span_range(d.span, lines), message=d.message + (f"\nhint: {d.hint}" if d.hint else ""),
        severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Information), code=d.code, source="ksm",
        code_description=lsp.CodeDescription(href=href) if href else None)


def _property_problems(sol: Solution, root: Path, overlay: dict[str, str], defines) -> list[Diagnostic]:
    """Diagnostics of the property files open in the editor (``ksm prove`` reads them
    against the solution just loaded), from their buffers' texts."""
    from policy_lang.props import parse_properties
    from policy_lang.templates import expand_template

    out: list[Diagnostic] = []
    for name, text in sorted(overlay.items()):
        if not name.endswith((".props", ".props.in")) or not Path(name).is_relative_to(root):
            continue
        diags = Diagnostics()
        out.extend(parse_properties(sol, expand_template(text, name, dict(defines), diags), diags).diagnostics)
    return out


class _Superseded(Exception):
    """A newer change made the running lint pointless."""


@dataclass
class SolutionState:
    root: Path
    solution: Solution | None = None
    good: Solution | None = None       # the last solution whose files all parsed (for completion)
    published: set[str] = field(default_factory=set)
    task: asyncio.Task | None = None
    generation: int = 0
    timings: dict[str, float | int] = field(default_factory=dict)
    #: Last parse of each PSL file, so a reload re-reads only the edited declarations.
    reparser: PslReparser = field(default_factory=PslReparser)


class KsmLanguageServer(LanguageServer):
    def __init__(self) -> None:
        from ksm import __version__ as version

        super().__init__("ksm-lsp", version, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.states: dict[Path, SolutionState] = {}
        #: Set by :func:`ksm.lsp.serve_stdio`, which has each large reload end with
        #: ``gc.freeze()``.  A frozen object is never walked by the collector; reference
        #: counting still frees a dropped solution (loading builds no reference cycles).
        #: What is frozen while alive and later dies in a cycle (the linter's compiled
        #: decision programs are full of them) would stay, so the server collects once the
        #: linter has run, when the user has paused, and every :data:`THAW_EVERY` such
        #: pauses hands the frozen objects back to the collector first.
        self.collect_when_idle = False
        self.idle_collections = 0
        # One load at a time, off the event loop: the server keeps answering while it runs.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ksm-load")
        # The linter in a thread of its own, so that a keystroke's reload need not wait
        # for the rule that is running (it stops at the next rule; the solvers the rules
        # call release the interpreter meanwhile).
        self.lint_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ksm-lint")

    # ---------------------------------------------------------------- state
    def state_for(self, uri: str) -> SolutionState | None:
        path = uri_to_path(uri)
        if path is None:
            return None
        root = find_root(path.absolute())
        if root is None:
            return None
        root = root.resolve()
        st = self.states.get(root)
        if st is None:
            st = self.states[root] = SolutionState(root)
        return st

    def overlay(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for uri, doc in list(self.workspace.text_documents.items()):
            path = uri_to_path(uri)
            if path is not None:
                try:
                    out[str(path.resolve())] = doc.source
                except (OSError, ValueError):
                    pass
        return out

    def lines_of(self, path: Path, cache: dict[Path, list[str]]) -> list[str]:
        got = cache.get(path)
        if got is None:
            doc = self.workspace.text_documents.get(path_to_uri(path))
            if doc is not None:
                got = doc.source.splitlines()
            else:
                try:   # as every user file is read: a FIFO or a device must not hang the server
                    got = read_user_text(path).splitlines()
                except UserFileError:
                    got = []
            cache[path] = got
        return got

    # ---------------------------------------------------------------- reloading
    def schedule(self, uri: str) -> None:
        st = self.state_for(uri)
        if st is None:
            return
        st.generation += 1
        if st.task is not None and not st.task.done():
            st.task.cancel()
        st.task = asyncio.ensure_future(self._reload(st, st.generation))

    async def _reload(self, st: SolutionState, generation: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(LOAD_DELAY)
            overlay = self.overlay()
            start = time.perf_counter()
            sol, settings_problems = await loop.run_in_executor(self.executor, self._load, st.root, overlay,
                                                                st.reparser)
            if generation != st.generation:
                return
            st.solution = sol
            if st.good is None or not any(d.code.startswith("SYN") for d in sol.diagnostics):
                st.good = sol
            st.timings["load"] = time.perf_counter() - start
            self.publish(st, list(sol.diagnostics) + settings_problems)
            st.timings["load+publish"] = time.perf_counter() - start
            await asyncio.sleep(LINT_DELAY)
            if generation != st.generation:
                return
            start = time.perf_counter()
            findings = await loop.run_in_executor(self.lint_executor, self._lint, st.root, sol,
                                                  lambda: generation != st.generation)
            if generation != st.generation or findings is None:
                return
            self.publish(st, findings + settings_problems)
            st.timings["lint"] = time.perf_counter() - start
            if self.collect_when_idle:
                start = time.perf_counter()
                self.idle_collections += 1
                if self.idle_collections % THAW_EVERY == 0:
                    gc.unfreeze()
                st.timings["found in cycles"] = gc.collect()
                st.timings["collect"] = time.perf_counter() - start
            self.window_log_message(lsp.LogMessageParams(
                lsp.MessageType.Log, f"ksm: {st.root}: {len(findings)} finding(s), {len(overlay)} open buffer(s); "
                + ", ".join(f"{k} {v * 1000:.0f} ms" if isinstance(v, float) else f"{k} {v}"
                            for k, v in st.timings.items())
                + "; psl parse " + ", ".join(f"{k} {v}" for k, v in sorted(st.reparser.stats.items()))))
        except asyncio.CancelledError:
            pass
        except Exception as exc:   # a bug in ksm must not take the editor's server down
            log.exception("reload of %s failed", st.root)
            self.window_log_message(lsp.LogMessageParams(lsp.MessageType.Error,
                                                         f"ksm: reloading {st.root} failed: {exc!r}"))

    @staticmethod
    def _load(root: Path, overlay: dict[str, str], reparse: PslReparser | None = None
              ) -> tuple[Solution, list[Diagnostic]]:
        options, problems = options_for(root)
        options = LoadOptions(init=options.init, include_dirs=options.include_dirs, defines=options.defines,
                              sdk_dirs=options.sdk_dirs, trusted=options.trusted, overlay=overlay,
                              reparse=reparse)
        sol = load(root, options)
        return sol, problems + _property_problems(sol, Path(sol.root).resolve(), overlay, options.defines)

    @staticmethod
    def _lint(root: Path, sol: Solution, superseded=lambda: False) -> list[Diagnostic] | None:
        """The linter's findings, or None when ``superseded()`` turns true between two
        rules: a keystroke during a lint waits for one rule, not for all of them."""
        from ksm.lint.config import load_config
        from ksm.lint.runner import lint

        config, problems = load_config(root)
        if problems:
            return list(sol.diagnostics) + list(problems)

        def progress(code: str) -> None:
            if superseded():
                raise _Superseded(code)
        try:
            return list(lint(sol, config, progress=progress).findings)
        except _Superseded:
            return None

    def publish(self, st: SolutionState, diags: list[Diagnostic]) -> None:
        by_file: dict[Path, list[Diagnostic]] = {}
        fallback = Path(os.path.abspath(st.solution.policy)) if st.solution and st.solution.policy else None
        for d in diags:
            path = _span_path(d.span) if d.span else fallback
            if path is not None:
                by_file.setdefault(path, []).append(d)
        cache: dict[Path, list[str]] = {}
        now: set[str] = set()
        for path, found in by_file.items():
            uri = path_to_uri(path)
            now.add(uri)
            lines = self.lines_of(path, cache)
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=uri, diagnostics=[to_lsp(d, lines) for d in found]))
        for uri in st.published - now:
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        st.published = now


_FEATURES: list[tuple[str, object, object]] = []   # (LSP method, handler, options), registered on each new server


def _feature(method: str, options=None):
    def register(fn):
        _FEATURES.append((method, fn, options))
        return fn
    return register


def build_server() -> KsmLanguageServer:
    """A new server with every feature registered.  Why not one module-level server: a
    server that has run once has shut its worker pool down, and ``ksm lsp`` may be run
    more than once in one process (tests, scripts calling ``ksm.cli.main``)."""
    server = KsmLanguageServer()
    for method, fn, options in _FEATURES:
        server.feature(method, options)(fn)
    return server


def _wanted(uri: str) -> bool:
    return uri.endswith(_SOLUTION_SUFFIXES)


def _document_event(ls: KsmLanguageServer, params) -> None:
    """Open, change, save or close of a solution's file: reload its solution.  After a
    close the file on disk counts again (the buffer may have been closed unsaved)."""
    if _wanted(params.text_document.uri):
        ls.schedule(params.text_document.uri)


for _method in (lsp.TEXT_DOCUMENT_DID_OPEN, lsp.TEXT_DOCUMENT_DID_CHANGE, lsp.TEXT_DOCUMENT_DID_SAVE,
                lsp.TEXT_DOCUMENT_DID_CLOSE):
    _feature(_method)(_document_event)


# ----------------------------------------------------------------------------- navigation

async def _current(ls: KsmLanguageServer, uri: str) -> tuple[Solution, Path, list[str]] | None:
    """The solution of ``uri`` (waiting for the load in progress, if it is the first),
    the file's absolute path and its lines as the editor has them."""
    st = ls.state_for(uri)
    path = uri_to_path(uri)
    if st is None or path is None:
        return None
    if st.solution is None:
        if st.task is None or st.task.done():
            ls.schedule(uri)
        for _ in range(200):          # up to 10 s for the first load
            if st.solution is not None:
                break
            await asyncio.sleep(0.05)
        if st.solution is None:
            return None
    path = Path(os.path.abspath(path))
    return st.solution, path, ls.lines_of(path, {})


def _guarded(what: str):
    """A handler that logs instead of failing the request when a bug in ksm raises."""
    def wrap(fn):
        async def handler(ls: KsmLanguageServer, params):
            try:
                return await fn(ls, params)
            except Exception as exc:
                log.exception("%s failed", what)
                ls.window_log_message(lsp.LogMessageParams(lsp.MessageType.Error, f"ksm: {what} failed: {exc!r}"))
                return None
        handler.__name__ = fn.__name__
        return handler
    return wrap


def _on_solution(what: str):
    """A guarded handler of a position in a solution file: it is called with the file's
    solution, absolute path and lines, and answers None when there is no solution."""
    def wrap(fn):
        async def handler(ls: KsmLanguageServer, params):
            got = await _current(ls, params.text_document.uri)
            return None if got is None else await fn(ls, params, *got)
        handler.__name__ = fn.__name__
        return _guarded(what)(handler)
    return wrap


@_feature(lsp.TEXT_DOCUMENT_HOVER)
@_on_solution("hover")
async def on_hover(ls: KsmLanguageServer, params: lsp.HoverParams, sol: Solution, path: Path, lines: list[str]) -> lsp.Hover | None:
    from .features import hover

    text = hover(sol, path, lines, params.position.line, params.position.character)
    if text is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


@_feature(lsp.TEXT_DOCUMENT_DEFINITION)
@_on_solution("definition")
async def on_definition(ls: KsmLanguageServer, params: lsp.DefinitionParams, sol: Solution, path: Path, lines: list[str]) -> lsp.Location | None:
    from .features import definition

    found = definition(sol, path, lines, params.position.line, params.position.character)
    if found is None:
        return None
    target, span = found
    target_path = Path(target)
    return lsp.Location(uri=path_to_uri(target_path), range=span_range(span, ls.lines_of(target_path, {})))


@_feature(lsp.TEXT_DOCUMENT_REFERENCES)
@_on_solution("references")
async def on_references(ls: KsmLanguageServer, params: lsp.ReferenceParams, sol: Solution, path: Path, lines: list[str]) -> list[lsp.Location] | None:
    from .features import symbol_at
    from .references import references

    sym = symbol_at(sol, path, lines, params.position.line, params.position.character)
    if sym is None:
        return []
    cache: dict[Path, list[str]] = {}
    found = references(sol, sym, lambda p: ls.lines_of(p, cache), params.context.include_declaration)
    return [lsp.Location(uri=path_to_uri(Path(f)), range=span_range(s, ls.lines_of(Path(f), cache)))
            for f, s in found]


_KINDS = {"event": lsp.SymbolKind.Event, "object": lsp.SymbolKind.Object, "test": lsp.SymbolKind.Method,
          "audit": lsp.SymbolKind.Struct}


@_feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@_on_solution("document symbols")
async def on_symbols(ls: KsmLanguageServer, params: lsp.DocumentSymbolParams, sol: Solution, path: Path, lines: list[str]) -> list[lsp.DocumentSymbol] | None:
    from .features import symbols

    found = symbols(sol, path)
    out = []
    for i, (name, detail, kind, span) in enumerate(found):
        start = lsp.Position(span.line - 1, max(span.column - 1, 0))
        nxt = found[i + 1][3].line - 2 if i + 1 < len(found) else len(lines) - 1
        end_line = max(nxt, span.line - 1)
        while end_line > span.line - 1 and not _line_text(lines, end_line).strip():
            end_line -= 1
        end = lsp.Position(end_line, len(_line_text(lines, end_line)))
        out.append(lsp.DocumentSymbol(name=name, detail=detail, kind=_KINDS[kind], range=lsp.Range(start, end),
                                      selection_range=span_range(span, lines)))
    return out


# ----------------------------------------------------------------------------- editing

_FORMATTED = (".psl", ".psl.in", ".props", ".props.in")


def _document_text(ls: KsmLanguageServer, uri: str) -> str | None:
    doc = ls.workspace.text_documents.get(uri)
    if doc is not None:
        return doc.source
    path = uri_to_path(uri)
    try:
        return read_user_text(path) if path is not None else None
    except UserFileError:
        return None


@_feature(lsp.TEXT_DOCUMENT_FORMATTING)
@_guarded("formatting")
async def on_formatting(ls: KsmLanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
    from .editing import formatting_edit

    uri = params.text_document.uri
    path = uri_to_path(uri)
    if path is None or not path.name.endswith(_FORMATTED):
        return None
    text = _document_text(ls, uri)
    if text is None:
        return None
    got = await asyncio.to_thread(formatting_edit, text, path.name)
    if got is None:
        return []
    (line, col), new = got
    return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), lsp.Position(line, col)), new_text=new)]


_ITEM_KINDS = {"keyword": lsp.CompletionItemKind.Keyword, "key": lsp.CompletionItemKind.Property,
               "class": lsp.CompletionItemKind.Class, "endpoint": lsp.CompletionItemKind.Interface,
               "interface": lsp.CompletionItemKind.Interface, "component": lsp.CompletionItemKind.Module,
               "method": lsp.CompletionItemKind.Method, "field": lsp.CompletionItemKind.Field,
               "rule": lsp.CompletionItemKind.Function, "expression": lsp.CompletionItemKind.Function}


@_feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["=", "."]))
@_guarded("completion")
async def on_completion(ls: KsmLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList | None:
    from .editing import completions

    uri = params.text_document.uri
    path = uri_to_path(uri)
    if path is None or not path.name.endswith((".psl", ".psl.in")):
        return None
    text = _document_text(ls, uri)
    got = await _current(ls, uri)
    st = ls.state_for(uri)
    sol = (st.good if st is not None and st.good is not None else got[0] if got else None)
    if text is None:
        return None
    pos = params.position
    start, items = completions(sol, text, pos.line, pos.character)
    where = lsp.Range(lsp.Position(pos.line, start), pos)
    return lsp.CompletionList(is_incomplete=False, items=[
        lsp.CompletionItem(label=i.label, kind=_ITEM_KINDS.get(i.kind), detail=i.detail or None,
                           text_edit=lsp.TextEdit(range=where, new_text=i.insert or i.label))
        for i in items])


@_feature(lsp.TEXT_DOCUMENT_FOLDING_RANGE)
@_guarded("folding ranges")
async def on_folding(ls: KsmLanguageServer, params: lsp.FoldingRangeParams) -> list[lsp.FoldingRange] | None:
    from .editing import folding_ranges

    uri = params.text_document.uri
    path = uri_to_path(uri)
    if path is None or not _wanted(uri) or path.name.endswith((".yaml", ".yaml.in", ".yml", ".toml")):
        return None
    text = _document_text(ls, uri)
    if text is None:
        return None
    kinds = {"region": lsp.FoldingRangeKind.Region, "comment": lsp.FoldingRangeKind.Comment}
    return [lsp.FoldingRange(start_line=a, end_line=b, kind=kinds[k]) for a, b, k in folding_ranges(text)]


def _range_text(lines: list[str], r: lsp.Range) -> str:
    if r.start.line != r.end.line:
        return ""
    return _line_text(lines, r.start.line)[r.start.character:r.end.character]


@_feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
          lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
@_guarded("code actions")
async def on_code_action(ls: KsmLanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
    from .editing import edl_declares, suggestion, undeclared_class, use_insert_line

    uri = params.text_document.uri
    text = _document_text(ls, uri)
    if text is None:
        return None
    lines = text.split("\n")
    st = ls.state_for(uri)
    out: list[lsp.CodeAction] = []
    for d in params.context.diagnostics:
        if d.source not in (None, "ksm"):
            continue
        wrong = _range_text(lines, d.range)
        got = suggestion(d.message, wrong)
        if got is not None:
            name, n = got
            r = lsp.Range(d.range.start, lsp.Position(d.range.start.line, d.range.start.character + n))
            out.append(lsp.CodeAction(title=f"Replace {wrong[:n]} with {name}", kind=lsp.CodeActionKind.QuickFix,
                                      diagnostics=[d], is_preferred=True,
                                      edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=r, new_text=name)]})))
        cls = undeclared_class(d.message) if str(d.code) == "PSL001" else None
        if cls and st is not None and f"use EDL {cls}" not in text \
                and await asyncio.to_thread(edl_declares, st.root if st.root.is_dir() else st.root.parent, cls):
            at = lsp.Position(use_insert_line(text), 0)
            out.append(lsp.CodeAction(title=f"Add `use EDL {cls}`", kind=lsp.CodeActionKind.QuickFix,
                                      diagnostics=[d], is_preferred=got is None,
                                      edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(
                                          range=lsp.Range(at, at), new_text=f"use EDL {cls}\n")]})))
    return out
