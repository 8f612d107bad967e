"""Find references: every place in the solution's files that names a symbol.

The symbol is the one go to definition resolves (:func:`features.symbol_at`).  Places
come from the resolved solution: the bindings and ``match`` sections whose resolved
selectors name it, PAL test cases, init.yaml entries, model calls in binding bodies;
``use`` lines from the syntax trees of the solution's PSL files.  Where the model keeps
only where an element starts (a binding's span has no end), the name is looked for by
whole-word match in that element's own text only: a header up to its ``{``, a test
case's line, an init entry's line, or for a policy object a binding's body up to its
closing brace; comments and strings are blanked first.  Never a whole-file search.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

from policy_lang.diagnostics import Span
from policy_lang.solution import BindingDef, CallDef, ChoiceDef, MatchDef, Solution

from .features import Symbol

_BLANK = re.compile(r'//[^\n]*|/\*[\s\S]*?(?:\*/|$)|"(?:\\.|[^"\\\n])*"')
_HEADER_LINES = 20       # a header longer than this is not searched further


def _blank(text: str) -> list[str]:
    """The text with comments and strings replaced by spaces (lines and columns kept)."""
    return _BLANK.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text).split("\n")


class _Files:
    def __init__(self, lines_of: Callable[[Path], list[str]]):
        self.lines_of = lines_of
        self.masked: dict[str, list[str]] = {}

    def get(self, file: str) -> list[str]:
        path = os.path.abspath(file)
        got = self.masked.get(path)
        if got is None:
            text = "\n".join(self.lines_of(Path(path)))
            got = self.masked[path] = _blank(text) if ".psl" in Path(path).name else text.split("\n")
        return got


def _span(file: str, line0: int, start: int, end: int) -> Span:
    return Span(file, line0 + 1, start + 1, line0 + 1, end + 1)


def _search(files: _Files, span: Span, pattern: re.Pattern, *, stop: str | None = "{",
            max_lines: int = _HEADER_LINES, group: int = 1) -> list[Span]:
    """Matches of ``pattern`` from ``span``'s start, up to the first ``stop`` character or
    ``max_lines`` lines."""
    lines = files.get(span.file)
    out: list[Span] = []
    first = span.line - 1
    for i in range(first, min(first + max_lines, len(lines))):
        text = lines[i]
        lo = span.column - 1 if i == first else 0
        hi = len(text)
        if stop is not None:
            k = text.find(stop, lo)
            hi = k if k >= 0 else hi
        for m in pattern.finditer(text, lo, hi):
            out.append(_span(span.file, i, m.start(group), m.end(group)))
        if hi < len(text):
            break
    return out


def _body_extent(files: _Files, span: Span) -> int:
    """The number of lines of the binding that starts at ``span``: up to its closing brace."""
    lines = files.get(span.file)
    depth, opened = 0, False
    first = span.line - 1
    for i in range(first, len(lines)):
        text = lines[i][span.column - 1:] if i == first else lines[i]
        for ch in text:
            if ch == "{":
                depth, opened = depth + 1, True
            elif ch == "}":
                depth -= 1
                if opened and depth == 0:
                    return i - first + 1
    return len(lines) - first


def _nodes(sol: Solution):
    """Every binding and nested match section."""
    def walk(body):
        for s in body:
            if isinstance(s, MatchDef):
                yield s
                yield from walk(s.body)
            elif isinstance(s, ChoiceDef):
                for arm in s.arms:
                    yield from walk(arm.body)
    for b in sol.bindings:
        yield b
        yield from walk(b.body)


def _mentions(node, name: str) -> bool:
    """Whether a syntax tree or resolved body mentions policy object ``name`` in a call."""
    if isinstance(node, (list, tuple)):
        return any(_mentions(x, name) for x in node)
    if isinstance(node, CallDef):
        return node.object == name or _mentions(node.node, name)
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return False
    obj = getattr(node, "object", None)
    if type(node).__name__ == "Call" and getattr(obj, "text", None) == name:
        return True
    return any(_mentions(getattr(node, f.name), name) for f in dataclasses.fields(node)
               if f.name not in ("span", "pos", "selectors", "targets"))


def _word(name: str) -> str:
    return r"(?<![\w.])(" + re.escape(name) + r")(?![\w])"


def _test_cases(sol: Solution):
    """(case, {var: class}) of every PAL test case."""
    for block in sol.tests:
        cases = list(block.setup) + [c for s in block.sequences for c in s.cases] + list(block.finally_)
        classes = {c.var: c.selectors.get("dst") for c in cases if c.var and c.event == "execute"}
        for c in cases:
            yield c, classes


def _use_decls(sol: Solution, files: _Files):
    """(kind, written name, Span) of the ``use`` lines of the solution's plain PSL files."""
    from policy_lang.diagnostics import Diagnostics
    from policy_lang.source import SourceText
    from policy_lang.syntax import ast
    from policy_lang.syntax.psl import parse_psl

    for f in sol.files:
        if f.language != "psl" or f.templated or not f.path.endswith(".psl"):
            continue
        src = SourceText(f.path, "\n".join(files.lines_of(Path(os.path.abspath(f.path)))))
        for d in parse_psl(src, Diagnostics()).decls:
            if isinstance(d, ast.UseEdl):
                yield "class", d.cls.text, src.span(d.cls.pos, d.cls.pos + len(d.cls.text))
            elif isinstance(d, ast.UsePsl):
                yield "file", d.path.text, src.span(d.path.pos, d.path.pos + len(d.path.text))


def references(sol: Solution, sym: Symbol, lines_of: Callable[[Path], list[str]],
               include_declaration: bool) -> list[tuple[str, Span]]:
    """(absolute file, span) of every place naming ``sym``, in file order, without duplicates."""
    files = _Files(lines_of)
    found: list[Span] = []
    name = sym.name
    if sym.kind == "class":
        sel = re.compile(r"\b(?:src|dst)\s*=\s*" + _word(name))
        for n in _nodes(sol):
            if name in (n.selectors.src, n.selectors.dst):
                found += _search(files, n.span, sel)
        for c, _ in _test_cases(sol):
            if name in (c.selectors.get("src"), c.selectors.get("dst")):
                found += _search(files, c.span, sel, max_lines=1)
        for inst in sol.instances:
            if inst.cls == name and inst.span is not None and not inst.external:
                found += _search(files, inst.span, re.compile(r"\bname\s*:\s*['\"]?" + _word(name)),
                                 stop=None, max_lines=1)
        uses = [s for kind, text, s in _use_decls(sol, files) if kind == "class" and text == name]
        first = sol.edl_uses.get(name)
        found += uses or ([Span(first.file, first.line, first.column + len("use EDL "), first.line,
                                first.column + len("use EDL ") + len(name))] if first else [])
    elif sym.kind == "endpoint":
        sel = re.compile(r"\bendpoint\s*=\s*" + _word(name))
        for n in _nodes(sol):
            if n.selectors.endpoint == name and (
                    any(t.cls == sym.cls and t.endpoint == name for t in n.targets)
                    or sym.cls in (n.selectors.src, n.selectors.dst)):
                found += _search(files, n.span, sel)
        for c, classes in _test_cases(sol):
            if c.selectors.get("endpoint") == name and classes.get(c.selectors.get("dst")) == sym.cls:
                found += _search(files, c.span, sel, max_lines=1)
    elif sym.kind == "method":
        sel = re.compile(r"\bmethod\s*=\s*" + _word(name))
        for n in _nodes(sol):
            if n.selectors.method == name and any(t.interface == sym.interface and t.method.name == name
                                                  for t in n.targets):
                found += _search(files, n.span, sel)
        for c, classes in _test_cases(sol):
            if c.selectors.get("method") != name:
                continue
            cls = sol.classes.get(classes.get(c.selectors.get("dst")) or "")
            ep = cls.endpoint(c.selectors.get("endpoint")) if cls is not None and c.selectors.get("endpoint") else None
            if ep is not None and ep.interface.name == sym.interface:
                found += _search(files, c.span, sel, max_lines=1)
    elif sym.kind == "object":
        call = re.compile(_word(name) + r"(?=\s*\.\s*\w)")
        for b in sol.bindings:
            if isinstance(b, BindingDef) and _mentions(b.body, name):
                found += _search(files, b.span, call, stop=None, max_lines=_body_extent(files, b.span))
    elif sym.kind == "file":
        found += [s for kind, text, s in _use_decls(sol, files)
                  if kind == "file" and text.removesuffix("._").removesuffix("._") == name]
    out: list[tuple[str, Span]] = []
    seen: set[tuple[str, int, int]] = set()
    decl = [sym.decl] if include_declaration and sym.decl is not None else []
    for path, s in decl + [(os.path.abspath(s.file), s) for s in found]:
        key = (path, s.line, s.column)
        if key not in seen:
            seen.add(key)
            out.append((path, s))
    out.sort(key=lambda x: (x[0], x[1].line, x[1].column))
    return out
