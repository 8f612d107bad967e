"""Hover, go to definition and document symbols, from the resolved solution alone.

The word under the cursor (a dotted identifier) is looked up in the solution's
tables; what surrounds it on its line (``src=``, ``endpoint=``, ``method=``,
``use EDL``, ``message.``) says which table, and the resolved binding whose span
precedes the cursor gives the selectors in force there (for an endpoint: its class;
for a method or a ``message.`` field: the binding's targets).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from policy_lang.diagnostics import Span
from policy_lang.solution import KERNEL_CLASS, BindingDef, MatchDef, ProcessClass, Solution, Target
from policy_lang.types import MethodDef, StructType, UnionType, type_str

_TOKEN = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class Word:
    text: str          # the whole dotted token
    part: str          # the token up to the end of the dotted part under the cursor
    start: int         # 0-based columns of the token
    end: int
    before: str        # the line before the token


def word_at(lines: list[str], line: int, character: int) -> Word | None:
    if not 0 <= line < len(lines):
        return None
    text = lines[line]
    for m in _TOKEN.finditer(text):
        if m.start() <= character <= m.end():
            token = m.group()
            dot = token.find(".", character - m.start())
            part = token if dot < 0 else token[:dot]
            return Word(token.rstrip("."), part.rstrip("."), m.start(), m.end(), text[:m.start()])
    return None


def _same_file(span: Span | None, path: Path) -> bool:
    return span is not None and os.path.abspath(span.file) == str(path)


def _before(span: Span, line: int, character: int) -> bool:
    return (span.line - 1, span.column - 1) <= (line, character)


def enclosing(sol: Solution, path: Path, line: int, character: int) -> list[BindingDef | MatchDef]:
    """The binding whose span is the last to start before the cursor, then its nested
    ``match`` sections likewise, outermost first."""
    chain: list[BindingDef | MatchDef] = []
    best = None
    for b in sol.bindings:
        if _same_file(b.span, path) and _before(b.span, line, character):
            if best is None or (b.span.line, b.span.column) >= (best.span.line, best.span.column):
                best = b
    node = best
    while node is not None:
        chain.append(node)
        inner = [s for s in node.body if isinstance(s, MatchDef) and _before(s.span, line, character)]
        node = inner[-1] if inner else None
    return chain


def type_text(t) -> str:
    """The IDL spelling of a type (policy_lang.types.type_str), a struct or union with its fields."""
    if isinstance(t, (StructType, UnionType)):
        kind = "struct" if isinstance(t, StructType) else "union"
        return f"{kind} {t.name} {{ " + "; ".join(f"{type_str(f.type)} {f.name}" for f in t.fields) + " }"
    return type_str(t)


def method_signature(m: MethodDef) -> str:
    params = ", ".join(f"{p.direction} {type_text(p.type)} {p.name}" for p in m.params)
    untyped = ", ".join(f"{d} {n}" for n, d in getattr(m, "untyped", ()))
    return f"{m.name}({params}{', ' if params and untyped else ''}{untyped})"


def class_hover(cls: ProcessClass) -> str:
    out = [f"**{cls.name}** ({cls.form}{', opaque' if cls.opaque else ''})"]
    if cls.span:
        out.append(f"declared at {cls.span}")
    if cls.endpoints:
        out.append("")
        out.append("| RIID | endpoint | interface |")
        out.append("|---|---|---|")
        out += [f"| {ep.riid} | `{ep.name}` | `{ep.interface.name}` |" for ep in cls.endpoints]
    elif not cls.opaque:
        out.append("no endpoints")
    return "\n".join(out)


def _kernel_note(cls: str | None, interface: str, method: str) -> str:
    if cls != KERNEL_CLASS:
        return ""
    from policy_lang.kernel import kernel_method

    km = kernel_method(interface, method)
    return f"\n\nkernel method: {km.danger_text()}" if km is not None else ""


def _targets(chain: list[BindingDef | MatchDef]) -> tuple[Target, ...]:
    for node in reversed(chain):
        if node.targets:
            return node.targets
    return ()


def _riid(sol: Solution, cls: str, endpoint: str | None) -> int | None:
    c = sol.classes.get(cls)
    ep = c.endpoint(endpoint) if c is not None and endpoint else None
    return ep.riid if ep is not None else None


def _find_endpoint(sol: Solution, name: str, cls: str | None):
    classes = [sol.classes[cls]] if cls in sol.classes else list(sol.classes.values())
    for c in classes:
        ep = c.endpoint(name)
        if ep is not None:
            return c, ep
    return None


def _find_method(sol: Solution, chain, name: str):
    """(class, endpoint, interface, MethodDef) of method ``name`` for the binding at the cursor."""
    for t in _targets(chain):
        if t.method.name == name:
            return t.cls, t.endpoint, t.interface, t.method
    sel = chain[-1].selectors if chain else None
    if sel is not None and sel.dst in sol.classes:
        for ep in sol.classes[sel.dst].endpoints:
            if sel.endpoint in (None, ep.name):
                m = ep.interface.method(name)
                if m is not None:
                    return sel.dst, ep.name, ep.interface.name, m
    for iface in sol.interfaces.values():
        m = iface.method(name)
        if m is not None:
            return None, None, iface.name, m
    return None


def _selector_key(before: str) -> str | None:
    m = re.search(r"(\w+)\s*=\s*$", before)
    return m.group(1) if m else None


def _message_field(sol: Solution, chain, word: Word):
    path = word.text.split(".")[1:]
    if not path:
        return None
    event = chain[0].event if chain and isinstance(chain[0], BindingDef) else "request"
    direction = {"request": "in", "response": "out", "error": "error"}.get(event, "in")
    seen = []
    for t in _targets(chain):
        for p in t.method.params:
            if p.name == path[0] and p.direction == direction:
                typ = p.type
                for name in path[1:]:
                    f = typ.field(name) if isinstance(typ, (StructType, UnionType)) else None
                    if f is None:
                        break
                    typ = f.type
                seen.append((t, p, typ))
    return seen


def hover(sol: Solution, path: Path, lines: list[str], line: int, character: int) -> str | None:
    w = word_at(lines, line, character)
    if w is None:
        return None
    chain = enclosing(sol, path, line, character)
    key = _selector_key(w.before)
    if w.text in sol.classes and key != "endpoint":
        return class_hover(sol.classes[w.text])
    if w.text.startswith("message."):
        if w.part != "message":
            w = Word(w.part, w.part, w.start, w.end, w.before)
        found = _message_field(sol, chain, w)
        if found:
            t, p, typ = found[0]
            out = [f"`{w.text}`: `{type_text(typ)}`", "",
                   f"parameter `{p.direction} {p.name}` of `{t.interface}.{t.method.name}`"]
            if len({type_text(x[2]) for x in found}) > 1:
                out.append("(its type differs between the methods this binding applies to)")
            return "\n".join(out)
        return None
    if key == "endpoint":
        sel = chain[-1].selectors if chain else None
        got = _find_endpoint(sol, w.text, sel.dst if sel else None)
        if got:
            c, ep = got
            body = "\n".join(f"- MID {m.index}: `{method_signature(m)}`"
                             + _kernel_note(c.name, ep.interface.name, m.name).replace("\n\n", " — ")
                             for m in ep.interface.methods)
            return f"endpoint **{c.name}.{ep.name}** (RIID {ep.riid}): interface `{ep.interface.name}`\n\n{body}"
    if key == "method":
        got = _find_method(sol, chain, w.text)
        if got:
            cls, ep, iface, m = got
            riid = _riid(sol, cls, ep) if cls else None
            where = f"{cls}.{ep}" if cls and ep else iface
            return (f"`{iface}.{method_signature(m)}`\n\n{where}: RIID {riid if riid is not None else '?'}, "
                    f"MID {m.index}" + _kernel_note(cls, iface, m.name))
    if "." in w.text:
        obj, _, meth = w.text.partition(".")
        if obj in sol.objects and "." not in meth:
            from policy_lang.model_library import MODELS

            od = sol.objects[obj]
            model = MODELS.get(od.model)
            sig = model.methods.get(meth) if model else None
            if sig is not None:
                arg = sig.arg.kind + (f" {{{', '.join(sig.arg.required + sig.arg.optional)}}}"
                                      if sig.arg.required or sig.arg.optional else "")
                meaning = ("a rule: votes granted or denied" if sig.kind == "rule"
                           else f"an expression returning {sig.returns or 'a value'}")
                return (f"`{obj}.{meth}` ({arg})\n\nmethod of security model **{od.model}** "
                        f"(`{model.include}`): {meaning}; since PSL {sig.since}")
    if w.text in sol.objects:
        od = sol.objects[w.text]
        return f"policy object **{od.name}**: security model `{od.model}`" + (" (built in)" if od.builtin else "")
    return None


def _loc(span: Span | None):
    return (os.path.abspath(span.file), span) if span is not None else None


@dataclass(frozen=True)
class Symbol:
    """What the word under the cursor names: ``kind`` is class, endpoint, method, object or file;
    ``cls`` the endpoint's class, ``interface`` the method's interface; ``decl`` (absolute
    file, span) of its declaration, None when it has none (built-in elements)."""
    kind: str
    name: str
    decl: tuple[str, Span] | None
    cls: str | None = None
    interface: str | None = None


def symbol_at(sol: Solution, path: Path, lines: list[str], line: int, character: int) -> Symbol | None:
    """The symbol under the cursor, looked up as go to definition does."""
    w = word_at(lines, line, character)
    if w is None:
        return None
    chain = enclosing(sol, path, line, character)
    key = _selector_key(w.before)
    if re.search(r"\buse\s+$", w.before) and w.text.endswith("._"):
        rel = w.text[:-2].replace(".", os.sep)
        for f in sol.files:
            if f.path.endswith((rel + ".psl", rel + ".psl.in")):
                return Symbol("file", w.text[:-2], (os.path.abspath(f.path), Span(f.path, 1, 1)))
        return None
    if w.text in sol.classes and key != "endpoint":
        return Symbol("class", w.text, _loc(sol.classes[w.text].span))
    if key == "endpoint":
        sel = chain[-1].selectors if chain else None
        got = _find_endpoint(sol, w.text, sel.dst if sel else None)
        return Symbol("endpoint", got[1].name, _loc(got[1].span), cls=got[0].name) if got else None
    if key == "method":
        got = _find_method(sol, chain, w.text)
        return Symbol("method", w.text, _loc(got[3].span), interface=got[2]) if got else None
    if w.part in sol.objects:
        return Symbol("object", w.part, _loc(sol.objects[w.part].span))
    return None


def definition(sol: Solution, path: Path, lines: list[str], line: int, character: int):
    """(absolute file, span) of what the word under the cursor names, or None."""
    sym = symbol_at(sol, path, lines, line, character)
    return sym.decl if sym is not None else None


def symbols(sol: Solution, path: Path):
    """(name, detail, kind, span, next_start_line or None) of the file's top-level elements."""
    found = []
    for b in sol.bindings:
        if _same_file(b.span, path):
            found.append((f"{b.event} {b.selectors.describe()}", "binding", "event", b.span))
    for o in sol.objects.values():
        if not o.builtin and _same_file(o.span, path):
            found.append((o.name, f"policy object: {o.model}", "object", o.span))
    for t in sol.tests:
        if _same_file(t.span, path):
            found.append((t.name or "assert", "test block", "test", t.span))
    for a in sol.audit_profiles.values():
        if _same_file(a.span, path):
            found.append((a.name, "audit profile", "audit", a.span))
    found.sort(key=lambda s: (s[3].line, s[3].column))
    return found
