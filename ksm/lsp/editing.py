"""Formatting, completion, folding ranges and code actions (docs/lsp.md).

These work on the editor's text of the current document; completion and code
actions also use the last solution that loaded (never the half-typed text's own
parse), so they keep answering while the file does not parse.
"""
from __future__ import annotations


def utf16_len(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (LSP positions count those)."""
    return len(text.encode("utf-16-le")) // 2


# ----------------------------------------------------------------------------- formatting

def formatting_edit(text: str, path: str) -> tuple[tuple[int, int], str] | None:
    """(end of the document as (line, UTF-16 column), new text) when ``ksm fmt`` changes
    ``text``; None when it is formatted already, does not parse or is left unchanged."""
    from ksm.fmt import format_text

    res = format_text(text, path)
    if not res.changed:
        return None
    lines = text.split("\n")
    return (len(lines) - 1, utf16_len(lines[-1])), res.text


# ----------------------------------------------------------------------------- completion

import re  # noqa: E402
from dataclasses import dataclass  # noqa: E402

EVENT_KINDS = ("request", "response", "error", "security", "execute")
DECLARATIONS = ("use", "use EDL", "policy object", "type", "audit profile", "assert", "task class")
BODY_KEYWORDS = ("grant ()", "deny", "match", "choice", "audit", "assert")
SELECTOR_KEYS = ("src", "dst", "endpoint", "method", "interface", "component")

_BLOCKS = re.compile(r'//[^\n]*|/\*[\s\S]*?(?:\*/|$)|"(?:\\.|[^"\\\n])*"?|[{}]')
_HEADER = re.compile(r"\b(request|response|error|security|execute|match)\b(?![\w.])")
_SELECTOR = re.compile(r"\b(src|dst|endpoint|method|interface|component)\s*=\s*([\w.]+)")
_SELECTOR_AT_END = re.compile(r"\b(src|dst|endpoint|method|interface|component)\s*=\s*([\w.]*)$")
_KEY_AFTER_KIND = re.compile(r"^\s*(request|response|error|security|execute|match)\b([^{}]*?)([a-z]*)$")
_MESSAGE = re.compile(r"(?<![\w.])message\.((?:\w+\.)*)(\w*)$")
_OBJ_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.(\w*)$")
_DIRECTION = {"request": "in", "response": "out", "error": "error"}


@dataclass(frozen=True)
class Item:
    label: str
    kind: str          # keyword, key, class, endpoint, method, interface, component, field, rule, expression
    detail: str = ""
    insert: str = ""   # text to insert when it differs from the label


@dataclass
class Context:
    """The blocks open at the cursor, read from the text before it: the event kind of
    the outermost binding and the selectors in force (inner ones override)."""
    event: str | None
    selectors: dict[str, str]
    header: str         # the unfinished header being typed (since the last brace)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*[\s\S]*?(?:\*/|$)", " ", text)


def block_context(before: str) -> Context:
    stack: list[str] = []
    last = 0
    for m in _BLOCKS.finditer(before):
        tok = m.group()
        if tok == "{":
            stack.append(before[last:m.start()])
            last = m.end()
        elif tok == "}":
            if stack:
                stack.pop()
            last = m.end()
    headers = [*stack, before[last:]]
    event = None
    selectors: dict[str, str] = {}
    for h in headers:
        h = _strip_comments(h)
        kinds = list(_HEADER.finditer(h))
        if not kinds:
            continue
        start = kinds[-1]
        if start.group(1) != "match":
            event, selectors = start.group(1), {}
        for s in _SELECTOR.finditer(h, start.end()):
            selectors[s.group(1)] = s.group(2)
    return Context(event, selectors, headers[-1])


def _targets(sol, ctx: Context, line_sel: dict[str, str]):
    """(class, endpoint, interface) triples the selectors in force address."""
    sel = {**ctx.selectors, **line_sel}
    classes = [sol.classes[c] for c in (sel.get("dst"), sel.get("src")) if c in sol.classes]
    out = []
    for group in (classes, list(sol.classes.values())):
        for c in group:
            for ep in c.endpoints:
                if sel.get("endpoint") not in (None, ep.name):
                    continue
                if sel.get("interface") not in (None, ep.interface.name):
                    continue
                out.append((c, ep, ep.interface))
        if out:
            return out
    iface = sol.interfaces.get(sel.get("interface", ""))
    return [(None, None, iface)] if iface is not None else []


def _unique(items: list[Item]) -> list[Item]:
    seen: set[tuple[str, str]] = set()
    return [i for i in items if not ((i.label, i.kind) in seen or seen.add((i.label, i.kind)))]


def completions(sol, text: str, line: int, character: int) -> tuple[int, list[Item]]:
    """(column where the replaced word starts, items) for the cursor; never raises on
    half-typed text (the solution is only read, the text only matched)."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return character, []
    cur = lines[line]
    before_line = cur[:character]
    offset = sum(len(ln) + 1 for ln in lines[:line]) + len(before_line)
    before = text[:offset]

    m = _MESSAGE.search(before_line)
    if m:
        return character - len(m.group(2)), _message_items(sol, block_context(before), m.group(1))
    m = _SELECTOR_AT_END.search(before_line)
    if m:
        return character - len(m.group(2)), _selector_values(sol, block_context(before), m.group(1), cur)
    m = _OBJ_CALL.search(before_line)
    if m and sol is not None and m.group(1) in sol.objects:
        return character - len(m.group(2)), _object_items(sol, m.group(1))
    m = _KEY_AFTER_KIND.match(before_line)
    if m and (m.group(2).endswith((" ", ",", "\t")) or not m.group(2)) and (m.group(2) or m.group(3)):
        if not m.group(2) and m.group(3):
            pass                    # still typing the kind itself: fall through to keywords
        else:
            used = {k for k, _ in _SELECTOR.findall(cur)}
            return character - len(m.group(3)), [Item(f"{k}=", "key", "selector", f"{k}=") for k in SELECTOR_KEYS
                                                  if k not in used]
    m = re.fullmatch(r"(\s*)([A-Za-z_]*)", before_line)
    if m:
        ctx = block_context(before)
        if ctx.header.strip() and not re.fullmatch(r"\s*[A-Za-z_]*", _strip_comments(ctx.header).rsplit("\n", 1)[-1]):
            return character, []
        inside = bool(re.search(r"\{", before)) and _depth(before) > 0
        words = BODY_KEYWORDS if inside else EVENT_KINDS + DECLARATIONS
        return character - len(m.group(2)), [Item(w, "keyword") for w in words]
    return character, []


def _depth(before: str) -> int:
    depth = 0
    for m in _BLOCKS.finditer(before):
        if m.group() == "{":
            depth += 1
        elif m.group() == "}":
            depth = max(depth - 1, 0)
    return depth


def _selector_values(sol, ctx: Context, key: str, cur: str) -> list[Item]:
    if sol is None:
        return []
    line_sel = dict(_SELECTOR.findall(cur))
    if key in ("src", "dst"):
        return [Item(c.name, "class", c.form) for c in sol.classes.values()]
    if key == "endpoint":
        dst = line_sel.get("dst") or ctx.selectors.get("dst")
        names = [dst]
        if ctx.event in ("response", "error"):      # the server may be the src= class
            names.append(line_sel.get("src") or ctx.selectors.get("src"))
        classes = [sol.classes[c] for c in names if c in sol.classes] or list(sol.classes.values())
        return _unique([Item(ep.name, "endpoint", f"{c.name}: {ep.interface.name}")
                        for c in classes for ep in c.endpoints])
    if key == "interface":
        return [Item(n, "interface") for n in sol.interfaces]
    if key == "component":
        return _unique([Item(comp, "component") for c in sol.classes.values() for ep in c.endpoints
                        for comp in ep.components])
    if key == "method":
        line_sel.pop("method", None)
        sel = {k: v for k, v in ctx.selectors.items() if k != "method"}
        from .features import method_signature

        return _unique([Item(m.name, "method", f"{iface.name}.{method_signature(m)}")
                        for _, _, iface in _targets(sol, Context(ctx.event, sel, ""), line_sel)
                        for m in iface.methods])
    return []


def _message_items(sol, ctx: Context, path: str) -> list[Item]:
    if sol is None or ctx.event is None:
        return []
    from policy_lang.types import StructType, UnionType

    from .features import type_text

    direction = _DIRECTION.get(ctx.event)
    if direction is None:
        return []
    names = [p for p in path.split(".") if p]
    out: list[Item] = []
    for _, _, iface in _targets(sol, ctx, {}):
        methods = [iface.method(ctx.selectors["method"])] if "method" in ctx.selectors else list(iface.methods)
        for meth in methods:
            if meth is None:
                continue
            for p in meth.params:
                if p.direction != direction:
                    continue
                if not names:
                    out.append(Item(p.name, "field", f"{p.direction} {type_text(p.type)} ({meth.name})"))
                    continue
                if p.name != names[0]:
                    continue
                typ = p.type
                for n in names[1:]:
                    f = typ.field(n) if isinstance(typ, (StructType, UnionType)) else None
                    typ = f.type if f is not None else None
                    if typ is None:
                        break
                if isinstance(typ, (StructType, UnionType)):
                    out += [Item(f.name, "field", type_text(f.type)) for f in typ.fields]
    return _unique(out)


def _object_items(sol, obj: str) -> list[Item]:
    from policy_lang.model_library import MODELS

    od = sol.objects[obj]
    model = MODELS.get(od.model)
    if model is None:
        return []
    out = []
    for name, sig in model.methods.items():
        arg = sig.arg.kind + (f" {{{', '.join(sig.arg.required + sig.arg.optional)}}}"
                              if sig.arg.required or sig.arg.optional else "")
        what = "rule" if sig.kind == "rule" else f"expression → {sig.returns or 'value'}"
        out.append(Item(name, "rule" if sig.kind == "rule" else "expression", f"{what} ({arg}); {od.model}"))
    return out


# ----------------------------------------------------------------------------- folding

def folding_ranges(text: str) -> list[tuple[int, int, str]]:
    """(start line, end line, "region" or "comment") of every multi-line ``{ }`` block
    (up to the line before its closing brace, so the brace stays visible) and every
    multi-line block comment; 0-based lines."""
    out: list[tuple[int, int, str]] = []
    stack: list[int] = []
    line = 0
    pos = 0
    for m in _BLOCKS.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        tok = m.group()
        if tok == "{":
            stack.append(line)
        elif tok == "}":
            if stack:
                start = stack.pop()
                if line > start:
                    out.append((start, line - 1 if line - 1 > start else line, "region"))
        elif tok.startswith("/*"):
            end = line + tok.count("\n")
            if end > line:
                out.append((line, end, "comment"))
    out.sort()
    return out


# ----------------------------------------------------------------------------- code actions

_DID_YOU_MEAN = re.compile(r"did you mean `?([A-Za-z_][\w.]*)`?\?")
_NOT_DECLARED = re.compile(r"^(?:process class )?([A-Za-z_][\w.]*) is not declared (?:in the policy|with `use EDL`)")
_EDL_DECL = re.compile(r"^\s*(?:task\s+class|entity)\s+([A-Za-z_][\w.]*)", re.M)


def suggestion(message: str, wrong: str) -> tuple[str, int] | None:
    """(the one name a diagnostic's "did you mean X?" suggests, how many leading
    characters of ``wrong`` (the text its range covers) it replaces), when that is
    certain: one suggestion, and the range's text (or its first dotted part) is the
    name the message complains about."""
    hits = _DID_YOU_MEAN.findall(message)
    if len(set(hits)) != 1:
        return None
    for cand in (wrong, wrong.split(".")[0]):
        if cand and re.search(rf"(?<![\w.]){re.escape(cand)}(?![\w.])", message.split("\nhint:")[0]):
            if cand != hits[0]:
                return hits[0], len(cand)
    return None


def undeclared_class(message: str) -> str | None:
    m = _NOT_DECLARED.match(message)
    return m.group(1) if m else None


def edl_declares(root, name: str, limit: int = 5000) -> bool:
    """Whether exactly one ``.edl`` file under the solution folder declares class ``name``."""
    import os

    from policy_lang.source import UserFileError, read_user_text

    found = 0
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
        for fn in filenames:
            if not fn.endswith((".edl", ".edl.in")):
                continue
            seen += 1
            if seen > limit:
                return False
            try:     # read as every user file is: a FIFO named *.edl must not hang the server
                m = _EDL_DECL.search(read_user_text(os.path.join(dirpath, fn))[:20000])
            except UserFileError:
                continue
            if m and m.group(1) == name:
                found += 1
    return found == 1


def use_insert_line(text: str) -> int:
    """The 0-based line after the last top-level ``use`` line (0 when there is none)."""
    last = -1
    for i, ln in enumerate(text.split("\n")):
        if re.match(r"use\b", ln):
            last = i
    return last + 1
