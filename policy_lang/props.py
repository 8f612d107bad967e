"""Property files (``*.props``): what a security engineer wants proved about a policy.

A property file states facts the prover (``ksm prove``) proves or refutes::

    property no_net_to_keystore:
        never request src=lock.NetAgent dst=lock.KeyStore

    property door_can_unlock:
        reachable state door[lock.Controller] == "unlocked"

    channel lock.Ui -> lock.Updater     # a dynamic channel, for the flow analysis

This module is the front end of that language: grammar (``grammars/props.lark``),
parser, name resolution against a loaded :class:`~policy_lang.solution.Solution`,
and ``PRP`` diagnostics.  It hands the prover :class:`Property` objects whose
conditions are ordinary PSL expression nodes (:mod:`policy_lang.syntax.ast`), so the
back end evaluates them with the machinery it already has for policy bodies; the
only new node is :class:`SidOf`.  The user documentation is ``docs/properties.md``.

Why the pieces are where they are:

* Expressions are parsed by the PSL builder (:class:`~policy_lang.syntax.psl.PslBuilder`)
  under rule names shared with ``psl.lark``: one definition of what ``a < -1`` or
  ``message.batch.[0].level`` means, for policies and properties alike.
* Lexing and parse errors of the shared machinery use ``SYN`` codes; here they are
  re-issued as ``PRP`` codes so that everything wrong in a property file carries
  one family a user can grep for.
* A file is cut into declarations at ``property`` / ``channel`` and each is parsed
  alone: one syntax error costs one declaration, and the rest is still checked.
* Resolution never raises and never stops early.  A property with an error is
  reported and left out of :attr:`PropertyFile.properties`, so the prover only ever
  sees properties whose every name resolved; :attr:`PropertyFile.ok` says whether
  anything was left out.

The front end must not import ``ksm``: the dependency runs from back end to front end.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from lark import Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Token

from . import model_library as ml
from .diagnostics import Diagnostic, Diagnostics, Severity, Span, define_code
from .resolve import _closest, _field_type
from .solution import (
    EINIT_CLASS, KERNEL_CLASS, ProcessClass, Solution, Target, message_params,
)
from .source import SourceText, display_path, read_text
from .syntax import ast
from .syntax.lexing import (
    SYN_UNEXPECTED_CHAR, SYN_UNTERMINATED, Grammar, lex, load_grammar,
)
from .syntax.psl import (
    MAX_DEPTH, SYN_DUPLICATE_KEY, SYN_INT_RANGE, SYN_SELECTOR_TWICE, SYN_SIMPLE_NAME,
    PslBuilder, PslTransformer,
)
from .templates import expand_template
from .types import ArrayType, IdlType, SequenceType

__all__ = [
    "ChannelDecl", "EventPattern", "ProcRef", "Property", "PropertyFile", "SidOf",
    "PROPERTY_KINDS", "find_property_files", "load_properties", "parse_properties",
]

#: Values of :attr:`Property.kind`.
PROPERTY_KINDS = ("never_event", "always_event", "never_state", "reachable_state", "invariant", "never_flow")


# =============================================================================== results

@dataclass(frozen=True, slots=True)
class SidOf:
    """``sid(PROC)``: the SID of one process, as an expression node.

    ``task`` is the resolved task name (``lock.Controller``, ``doorSensor``,
    ``kl.core.Core``, ``Einit``); ``pos`` is the offset of the process reference in
    the expanded text (inside ``sid(...)`` or ``OBJ[...]``), like ``pos`` of the
    :mod:`~policy_lang.syntax.ast` nodes.
    """

    task: str
    pos: int


@dataclass(frozen=True)
class ProcRef:
    """A process reference as written (``text``) and the processes it names.

    ``tasks`` are instance task names; ``is_class`` tells that ``text`` named a
    process class (every instance of it).  The built-ins ``kl.core.Core`` and
    ``Einit`` are single processes whose task name is the class name.
    """

    text: str
    tasks: tuple[str, ...]
    is_class: bool
    span: Span


@dataclass(frozen=True)
class EventPattern:
    """Which events a ``never`` / ``always`` property is about (selectors as in PSL).

    For ``response`` and ``error`` the server is ``src`` (it answers to ``dst``), as
    in PSL bindings; for ``execute``, ``src`` starts ``dst``.
    """

    kind: str
    src: ProcRef | None
    dst: ProcRef | None
    endpoint: str | None
    interface: str | None
    method: str | None
    span: Span


@dataclass(frozen=True)
class Property:
    """One resolved property; see :data:`PROPERTY_KINDS` and docs/properties.md."""

    name: str
    kind: str
    pattern: EventPattern | None
    condition: object | None
    flow_src: tuple[ProcRef, ...] = ()
    flow_dst: tuple[ProcRef, ...] = ()
    flow_via: tuple[ProcRef, ...] = ()
    span: Span | None = None
    text: str = ""
    # Not compared: SourceText compares by identity, and two parses of one text are
    # the same property.
    source: SourceText | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ChannelDecl:
    """``channel CLIENT -> SERVER``: a channel created at run time, for flow analysis."""

    client: ProcRef
    server: ProcRef
    span: Span


@dataclass(frozen=True)
class PropertyFile:
    """A property file after resolution.

    ``properties`` and ``channels`` hold only declarations that resolved without
    errors; every problem is in ``diagnostics``.
    """

    path: str
    properties: tuple[Property, ...]
    channels: tuple[ChannelDecl, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


# =============================================================================== syntax

PRP_SYNTAX = define_code(
    "PRP001", "error", "syntax error in a property file",
    "compare the line with the property language in docs/properties.md",
)
PRP_BAD_CHAR = define_code(
    "PRP002", "error", "character not allowed, or unterminated comment or text",
    "remove the character, close the /* comment */ or the \"text\" on its line",
)
PRP_EOF = define_code(
    "PRP003", "error", "declaration ends too early",
    "complete the property: `never|always EVENT ...`, `never|reachable|invariant state EXPR` "
    "or `never flow A -> B`",
)
PRP_TOO_DEEP = define_code(
    "PRP004", "error", "declaration nested too deeply",
    f"split the expression; nesting deeper than {MAX_DEPTH} levels cannot be analysed",
)
PRP_INT_RANGE = define_code(
    "PRP005", "error", "integer literal out of the 64-bit range",
    "integers are at most 64 bits wide (-2^63 .. 2^64-1)",
)
PRP_DUPLICATE_KEY = define_code(
    "PRP006", "error", "record has the same key twice",
    "give each key once per record",
)
PRP_SELECTOR_TWICE = define_code(
    "PRP007", "error", "selector given twice",
    "each of src, dst, endpoint, interface, method may appear once per event pattern",
)
PRP_SIMPLE_NAME = define_code(
    "PRP008", "error", "dotted name where a single word is required",
    "property names and record keys are single words without dots",
)

# The shared lexer and the PSL builder report in the SYN family; in a property file
# the same problems carry PRP codes (messages and spans are kept).
_SYN_TO_PRP = {
    SYN_UNEXPECTED_CHAR: PRP_BAD_CHAR,
    SYN_UNTERMINATED: PRP_BAD_CHAR,
    SYN_INT_RANGE: PRP_INT_RANGE,
    SYN_DUPLICATE_KEY: PRP_DUPLICATE_KEY,
    SYN_SELECTOR_TWICE: PRP_SELECTOR_TWICE,
    SYN_SIMPLE_NAME: PRP_SIMPLE_NAME,
}

_STARTERS = frozenset({"PROPERTY", "CHANNEL"})
# A declaration keyword right after one of these is a name (`dst=channel`, `a, property`).
_NAME_BEFORE = frozenset({"EQUAL", "COMMA", "ARROW", "PROPERTY", "CHANNEL", "FLOW", "VIA", "LPAR", "LSQB", "DOT"})
_OPENERS = frozenset({"LPAR", "LSQB", "LBRACE"})
_CLOSERS = frozenset({"RPAR", "RSQB", "RBRACE"})


def _grammar() -> Grammar:
    return load_grammar("props", ("decl",))


@dataclass(frozen=True)
class _PatternSyntax:
    kind: str
    selectors: tuple[ast.Selector, ...]
    pos: int
    end: int


@dataclass(frozen=True)
class _Body:
    kind: str
    pattern: _PatternSyntax | None = None
    condition: object | None = None
    flow_src: tuple[ast.Name, ...] = ()
    flow_dst: tuple[ast.Name, ...] = ()
    flow_via: tuple[ast.Name, ...] = ()


@dataclass(frozen=True)
class _PropertySyntax:
    name: ast.Name
    body: _Body
    text: str = ""


@dataclass(frozen=True)
class _ChannelSyntax:
    client: ast.Name
    server: ast.Name
    pos: int
    end: int


class _PropsBuilder(PslBuilder):
    """The PSL builder plus the property-file rules.

    Expression rules keep their ``psl.lark`` names, so the inherited methods build
    them.  ``sugar`` collects the offsets of the calls made from ``OBJ[PROC]``: the
    resolver reports "not a Flow object" there instead of a puzzling "no method
    query" about a call the user never wrote.
    """

    def __init__(self, source: SourceText, diags: Diagnostics):
        super().__init__(source, diags)
        self.sugar: set[int] = set()

    def _report(self, code: str, message: str, start: int, length: int = 0) -> None:
        super()._report(_SYN_TO_PRP.get(code, code), message, start, length)

    # -- declarations

    def property_decl(self, _kw: Token, name: Token, body: _Body) -> _PropertySyntax:
        return _PropertySyntax(self._simple(name, "property name"), body)

    def channel_decl(self, kw: Token, client: ast.Name, _arrow: Token, server: ast.Name) -> _ChannelSyntax:
        return _ChannelSyntax(client, server, kw.start_pos, server.pos + len(server.text))

    def never_event(self, _kw: Token, pattern: _PatternSyntax, where: object = None) -> _Body:
        return _Body("never_event", pattern, where)

    def always_event(self, _kw: Token, pattern: _PatternSyntax, where: object = None) -> _Body:
        return _Body("always_event", pattern, where)

    def never_state(self, _kw: Token, _state: Token, expr: object) -> _Body:
        return _Body("never_state", condition=expr)

    def reachable_state(self, _kw: Token, _state: Token, expr: object) -> _Body:
        return _Body("reachable_state", condition=expr)

    def invariant_state(self, _kw: Token, _state: Token, expr: object) -> _Body:
        return _Body("invariant", condition=expr)

    def never_flow(self, _kw: Token, _flow: Token, src: tuple, _arrow: Token, dst: tuple, via: tuple = ()) -> _Body:
        return _Body("never_flow", flow_src=src, flow_dst=dst, flow_via=via)

    def where_clause(self, _kw: Token, expr: object) -> object:
        return expr

    def via_clause(self, _unless: Token, _via: Token, procs: tuple) -> tuple:
        return procs

    # -- event patterns and process references

    def event_pattern(self, event: Token, *selectors: ast.Selector) -> _PatternSyntax:
        end = event.start_pos + len(event.value)
        if selectors:
            last = selectors[-1].value
            end = last.pos + len(last.text)
        return _PatternSyntax(event.value, self._selectors_checked(selectors), event.start_pos, end)

    def proc_list(self, *procs: ast.Name) -> tuple[ast.Name, ...]:
        return procs

    def proc(self, tok: Token) -> ast.Name:
        return ast.Name(tok.value, tok.start_pos)

    # -- expression additions

    def sid_of(self, _kw: Token, _lpar: Token, proc: Token, _rpar: Token) -> SidOf:
        return SidOf(proc.value, proc.start_pos)

    def obj_query(self, obj: Token, lsqb: Token, proc: Token, _rsqb: Token) -> ast.Call:
        """``OBJ[PROC]`` is ``OBJ.query {sid : sid(PROC)}``, built here once."""
        sid = SidOf(proc.value, proc.start_pos)
        arg = ast.RecordExpr((ast.RecordField(ast.Name("sid", proc.start_pos), sid, proc.start_pos),), lsqb.start_pos)
        self.sugar.add(obj.start_pos)
        return ast.Call(ast.Name(obj.value, obj.start_pos), ast.Name("query", lsqb.start_pos), arg, False, obj.start_pos)


def _split(tokens: list[Token], text: str) -> list[list[Token]]:
    """Cut tokens into declarations at ``property`` / ``channel``.

    At the start of a line the keyword always starts a declaration, so one
    unclosed bracket or missing value does not swallow the rest of the file.  In
    the middle of a line it does only outside brackets and where no name is
    expected (``dst=channel``, ``a, property`` are names).
    """
    chunks: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
    for tok in tokens:
        kind = tok.type
        if kind in _STARTERS and current and (
                _starts_line(text, tok.start_pos) or (depth == 0 and current[-1].type not in _NAME_BEFORE)):
            chunks.append(current)
            current = []
            depth = 0
        current.append(tok)
        if kind in _OPENERS:
            depth += 1
        elif kind in _CLOSERS and depth:
            depth -= 1
    if current:
        chunks.append(current)
    return chunks


def _starts_line(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return not text[line_start:pos].strip()


def _describe(chunk: list[Token]) -> str:
    first = chunk[0].type
    return {"PROPERTY": "property", "CHANNEL": "channel declaration"}.get(first, "declaration")


def _expected(grammar: Grammar, terminals: Iterable[str]) -> str:
    """A readable list of expected terminals; the keywords a name may also be are folded in."""
    wanted = {t for t in terminals if not t.startswith("__")}
    keywords = set(grammar.lexer.keywords.values()) - {"TRUE", "FALSE"}
    if "QNAME" in wanted and keywords <= wanted:
        wanted -= keywords
    shown = sorted({grammar.describe(t) for t in wanted})
    return ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else "")


def _acceptable(exc: UnexpectedToken) -> Iterable[str]:
    """Terminals the parser would really take at the error.

    ``exc.expected`` is the lookahead set of the failing LALR state, which merges
    the follow sets of every context a rule is used in (after ``property NAME`` it
    lists operators); the interactive parser tries each terminal instead.
    """
    try:
        return exc.interactive_parser.accepts()
    except Exception:  # pragma: no cover - lark internals; the merged set is still right, only longer
        return exc.expected


def _parse_chunk(grammar: Grammar, chunk: list[Token], source: SourceText, diags: Diagnostics) -> Tree | None:
    """Parse one declaration; on a syntax error report it (PRP001/PRP003) and return None."""
    what = _describe(chunk)
    try:
        return grammar.parser.parse(chunk, start="decl")
    except UnexpectedToken as exc:
        tok = exc.token
        hint = "expected " + _expected(grammar, _acceptable(exc))
        if tok.type == "$END":
            last = chunk[-1]
            diags.add(PRP_EOF, f"{what} ends too early", source.span(last.start_pos + len(last.value)), hint=hint)
        else:
            diags.add(PRP_SYNTAX, f"unexpected {tok.value!r} in {what}",
                      source.span(tok.start_pos, tok.start_pos + len(tok.value)), hint=hint)
    except UnexpectedEOF:
        last = chunk[-1]
        diags.add(PRP_EOF, f"{what} ends too early", source.span(last.start_pos + len(last.value)))
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        diags.add(PRP_SYNTAX, f"syntax error in {what}: {exc}", source.span(chunk[0].start_pos))
    return None


def _tree_depth(tree: Tree) -> int:
    """Depth of a lark tree, without recursion (the tree may be arbitrarily deep)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def _one_line(tokens: list[Token]) -> str:
    """The tokens as written, on one line: comments dropped, each gap one space."""
    parts: list[str] = []
    end = None
    for tok in tokens:
        if end is not None and tok.start_pos > end:
            parts.append(" ")
        parts.append(tok.value)
        end = tok.start_pos + len(tok.value)
    return "".join(parts)


def _lex(grammar: Grammar, source: SourceText, diags: Diagnostics) -> list[Token]:
    scratch = Diagnostics()
    tokens = lex(grammar, source, scratch)
    for d in scratch:
        diags.add(_SYN_TO_PRP.get(d.code, d.code), d.message, d.span)
    return tokens


def _parse(source: SourceText, diags: Diagnostics) -> tuple[list, frozenset[int]]:
    """Declarations of a file (property and channel syntax) and the ``OBJ[PROC]`` call offsets."""
    grammar = _grammar()
    builder = _PropsBuilder(source, diags)
    transformer = PslTransformer(builder)
    decls: list = []
    for chunk in _split(_lex(grammar, source, diags), source.text):
        tree = _parse_chunk(grammar, chunk, source, diags)
        if tree is None:
            continue
        if _tree_depth(tree) > MAX_DEPTH:
            diags.add(PRP_TOO_DEEP, f"{_describe(chunk)} nested more than {MAX_DEPTH} levels deep",
                      source.span(chunk[0].start_pos))
            continue
        errors = len(diags.errors)
        decl = transformer.transform(tree)
        if len(diags.errors) > errors:
            continue  # the builder reported a problem (literal range, duplicate key...): leave it out
        if isinstance(decl, _PropertySyntax):
            decl = dataclasses.replace(decl, text=_one_line(chunk[3:]))
        decls.append(decl)
    return decls, frozenset(builder.sugar)


# =============================================================================== resolution

PRP_DUPLICATE_PROPERTY = define_code(
    "PRP009", "error", "property name used twice",
    "give each property a unique name; reports and `ksm prove` refer to properties by name",
)
PRP_UNKNOWN_PROCESS = define_code(
    "PRP010", "error", "unknown process",
    "name a task from init.yaml (its `task`, or its `name` when `task` is omitted), a process class, "
    "kl.core.Core or Einit",
)
PRP_NOT_ONE_PROCESS = define_code(
    "PRP011", "error", "reference names several processes or none where one is needed",
    "sid(...) and OBJ[...] need one process: name the instance by its task name",
)
PRP_NO_INSTANCE = define_code(
    "PRP012", "warning", "process class has no instance",
    "init.yaml starts no process of this class, so the reference names no process; check the name",
)
PRP_BAD_SELECTOR = define_code(
    "PRP013", "error", "selector not valid for this event kind",
    "execute takes src and dst; security takes src, interface and method; "
    "request, response and error take all five",
)
PRP_UNKNOWN_ENDPOINT = define_code(
    "PRP014", "error", "endpoint does not exist",
    "use the qualified endpoint name of the server class (component instances, then the endpoint: comp.sub.ep)",
)
PRP_UNKNOWN_INTERFACE = define_code(
    "PRP015", "error", "interface not served by the selected classes",
    "name an IDL package that an endpoint (or, for security, the security interface) of the server class implements",
)
PRP_UNKNOWN_METHOD = define_code(
    "PRP016", "error", "method does not exist in the selected interfaces",
    "check the method name in the IDL of the selected endpoint or interface",
)
PRP_NO_TARGET = define_code(
    "PRP017", "error", "event pattern selects no method",
    "each selector exists, but together they address no (class, endpoint, method); "
    "check that the endpoint, interface and method belong together",
)
PRP_MESSAGE_PATH = define_code(
    "PRP018", "error", "message path missing from a selected method",
    "request and security messages hold in-parameters, response holds out-parameters, error holds "
    "error-parameters, execute has no message; narrow the pattern (method=...) so every selected method has the path",
)
PRP_STATE_NAME = define_code(
    "PRP019", "error", "message, src_sid or dst_sid in a state expression",
    "state expressions talk about the policy's state only; use sid(PROC) for a process, "
    "or write an event property with `where`",
)
PRP_UNKNOWN_NAME = define_code(
    "PRP020", "error", "name not defined here",
    "expressions can use message.<param> (in `where`), src_sid, dst_sid, sid(PROC), OBJ[PROC], "
    "model calls and literals; text is written in double quotes",
)
PRP_UNKNOWN_OBJECT = define_code(
    "PRP021", "error", "unknown policy object",
    "name a policy object of the solution (`policy object NAME : Model`) or one an nk include creates",
)
PRP_NOT_FLOW = define_code(
    "PRP022", "error", "OBJ[...] on an object that is not a Flow object",
    "OBJ[PROC] reads a Flow object's state; for other models call a method: OBJ.method {...}",
)
PRP_UNKNOWN_MODEL_METHOD = define_code(
    "PRP023", "error", "model has no such method",
    "see docs/language-support.md for the methods of each security model",
)
PRP_RULE_AS_VALUE = define_code(
    "PRP024", "error", "model rule used as a value",
    "rules (grant, enter, add, ...) vote on an event and give no value; properties use expressions "
    "(query, contains, get, ...)",
)
PRP_BAD_ARGUMENT = define_code(
    "PRP025", "error", "argument does not fit the model method",
    "see the method's signature in docs/language-support.md",
)
PRP_SERVERLESS_CHANNEL = define_code(
    "PRP026", "warning", "channel to a process without endpoints",
    "the server serves no endpoint, so no request on this channel can be meaningful; check the direction (client -> server)",
)

_ALL_SELECTORS = ("src", "dst", "endpoint", "interface", "method")
_SELECTORS_OF_KIND = {
    "request": _ALL_SELECTORS, "response": _ALL_SELECTORS, "error": _ALL_SELECTORS,
    "security": ("src", "interface", "method"),
    "execute": ("src", "dst"),
}
_DIRECTION = {"request": "in", "security": "in", "response": "out", "error": "error"}
_BUILTIN_TASKS = (KERNEL_CLASS, EINIT_CLASS)


@dataclass(frozen=True)
class _Scope:
    """What a condition may refer to.

    ``event`` is the event kind of a ``where`` clause, None for a state expression.
    ``targets`` are the methods the pattern selects whose message layout is known
    (message paths must exist in each); ``checkable`` is False when an opaque class
    may be selected and no known method is, so paths cannot be checked at all.
    """

    event: str | None
    targets: tuple[Target, ...] = ()
    checkable: bool = False


def _replace(node, **changes):
    """``node`` with the given fields, or ``node`` itself when nothing changed."""
    if all(getattr(node, k) is v for k, v in changes.items()):
        return node
    return dataclasses.replace(node, **changes)


class _Resolver:
    """Resolves the declarations of one file against a solution, reporting problems."""

    def __init__(self, solution: Solution, source: SourceText, diags: Diagnostics, sugar: frozenset[int]):
        self.sol = solution
        self.source = source
        self.diags = diags
        self.sugar = sugar
        self.instances = {i.task: i for i in solution.instances}
        self.tasks_of_class: dict[str, list[str]] = {}
        for inst in solution.instances:
            self.tasks_of_class.setdefault(inst.cls, []).append(inst.task)

    # ------------------------------------------------------------------ helpers
    def span(self, pos: int, length: int = 0) -> Span:
        return self.source.span(pos, pos + length if length else None)

    def name_span(self, name: ast.Name) -> Span:
        return self.span(name.pos, len(name.text))

    # ------------------------------------------------------------------ processes
    def proc(self, name: ast.Name, single: bool = False) -> ProcRef | None:
        """Resolve a process reference: instance task first, then class, then built-in.

        ``single``: the reference must name exactly one process (``sid``, ``OBJ[...]``).
        """
        text = name.text
        at = self.name_span(name)
        if text in self.instances:
            ref = ProcRef(text, (text,), False, at)
        elif text in _BUILTIN_TASKS:
            ref = ProcRef(text, (text,), False, at)
        elif text in self.sol.classes:
            ref = ProcRef(text, tuple(self.tasks_of_class.get(text, ())), True, at)
        else:
            close = _closest(text, list(self.instances) + list(self.sol.classes))
            self.diags.add(PRP_UNKNOWN_PROCESS, f"no task or process class named {text}", at,
                           hint=f"did you mean {close}?" if close else None)
            return None
        if single and len(ref.tasks) != 1:
            self._not_one(ref)
            return None
        if ref.is_class and not ref.tasks and not single:
            self.diags.add(PRP_NO_INSTANCE, f"init.yaml starts no process of class {text}", at)
        return ref

    def _not_one(self, ref: ProcRef) -> None:
        if ref.tasks:
            message = f"class {ref.text} has {len(ref.tasks)} instances ({', '.join(ref.tasks)}); one is needed here"
            hint = f"name one instance by its task name, e.g. {ref.tasks[0]}"
        else:
            message = f"class {ref.text} has no instance in init.yaml; one is needed here"
            hint = None
        self.diags.add(PRP_NOT_ONE_PROCESS, message, ref.span, hint=hint)

    def procs(self, names: Iterable[ast.Name]) -> tuple[ProcRef, ...]:
        return tuple(r for r in (self.proc(n) for n in names) if r is not None)

    def classes_of(self, ref: ProcRef) -> list[ProcessClass]:
        """The process classes a reference's processes belong to."""
        if ref.is_class:
            names = [ref.text]
        else:
            names = [self.instances[t].cls if t in self.instances else t for t in ref.tasks]
        return [self.sol.classes[n] for n in dict.fromkeys(names) if n in self.sol.classes]

    # ------------------------------------------------------------------ event patterns
    def pattern(self, p: _PatternSyntax) -> tuple[EventPattern, _Scope] | None:
        """Resolve selectors, check they select something; None if a name did not resolve."""
        allowed = _SELECTORS_OF_KIND[p.kind]
        values: dict[str, str] = {}
        refs: dict[str, ProcRef | None] = {}
        ok = True
        for sel in p.selectors:
            if sel.key not in allowed:
                self.diags.add(PRP_BAD_SELECTOR, f"`{sel.key}=` does not apply to {p.kind} events",
                               self.span(sel.pos, len(sel.key)))
                ok = False
                continue
            if sel.key in ("src", "dst"):
                refs[sel.key] = ref = self.proc(sel.value)
                ok = ok and ref is not None
            else:
                values[sel.key] = sel.value.text
        if not ok:
            return None
        pattern = EventPattern(p.kind, refs.get("src"), refs.get("dst"), values.get("endpoint"),
                               values.get("interface"), values.get("method"), self.span(p.pos, p.end - p.pos))
        scope = self.targets_checked(pattern, p)
        return (pattern, scope) if scope is not None else None

    def candidates(self, pattern: EventPattern) -> tuple[list[ProcessClass], bool, str | None]:
        """Classes that may serve the pattern's events, whether one is opaque, and the server as written."""
        server = pattern.dst if pattern.kind == "request" else pattern.src
        if server is not None:
            classes = self.classes_of(server)
            return classes, any(c.opaque for c in classes), server.text
        # No server given: every class; the kernel's interfaces are not modelled, so
        # it is left out rather than making every such pattern uncheckable.
        classes = [c for c in self.sol.classes.values() if c.name != KERNEL_CLASS]
        return classes, any(c.opaque for c in classes), None

    def targets_checked(self, pattern: EventPattern, p: _PatternSyntax) -> _Scope | None:
        """The methods a pattern selects; reports selector values that select nothing."""
        if pattern.kind == "execute":
            return _Scope("execute", (), True)
        classes, opaque, server = self.candidates(pattern)
        sel = {"endpoint": pattern.endpoint, "interface": pattern.interface, "method": pattern.method}
        found = _targets(pattern.kind, classes, **sel)
        if found or opaque:
            return _Scope(pattern.kind, found, bool(found))
        reported = False
        for s in p.selectors:
            if s.key in sel and not _targets(pattern.kind, classes, **{s.key: s.value.text}):
                self._unknown_selector(pattern, s, classes, server)
                reported = True
        if not reported:
            self.diags.add(PRP_NO_TARGET, f"{pattern.kind} {_describe_selectors(pattern)} selects no method",
                           pattern.span)
        return None

    def _unknown_selector(self, pattern: EventPattern, s: ast.Selector, classes: list[ProcessClass],
                          server: str | None) -> None:
        value = s.value.text
        at = self.name_span(s.value)
        if s.key == "endpoint":
            close = _closest(value, {ep.name for c in classes for ep in c.endpoints})
            self.diags.add(PRP_UNKNOWN_ENDPOINT, f"{server or 'no process class'} has no endpoint {value}", at,
                           hint=f"did you mean {close}?" if close else None)
        elif s.key == "interface":
            known = value in self.sol.interfaces
            where = server or "any process class"
            message = f"{where} serves no interface {value}" if known else f"unknown interface {value}"
            self.diags.add(PRP_UNKNOWN_INTERFACE, message, at)
        else:
            wider = _targets(pattern.kind, classes, endpoint=pattern.endpoint, interface=pattern.interface)
            close = _closest(value, {t.method.name for t in wider})
            self.diags.add(PRP_UNKNOWN_METHOD, f"method {value} is not in any interface this pattern selects", at,
                           hint=f"did you mean {close}?" if close else None)

    # ------------------------------------------------------------------ expressions
    def expr(self, e, scope: _Scope):
        """Check an expression; returns it with every :class:`SidOf` resolved to a task."""
        if isinstance(e, ast.Lit):
            return e
        if isinstance(e, ast.ListExpr):
            return _replace(e, items=tuple(self.expr(i, scope) for i in e.items))
        if isinstance(e, ast.RecordExpr):
            return _replace(e, fields=tuple(_replace(f, value=self.expr(f.value, scope)) for f in e.fields))
        if isinstance(e, (ast.Ref, ast.FieldAccess, ast.IndexExpr)):
            return self.chain(e, scope)
        if isinstance(e, ast.BinOp):
            return _replace(e, left=self.expr(e.left, scope), right=self.expr(e.right, scope))
        if isinstance(e, ast.UnOp):
            return _replace(e, operand=self.expr(e.operand, scope))
        if isinstance(e, ast.Call):
            return self.call(e, scope)
        if isinstance(e, SidOf):
            ref = self.proc(ast.Name(e.task, e.pos), single=True)
            return SidOf(ref.tasks[0], e.pos) if ref is not None else e
        return e  # pragma: no cover - the builder makes no other node

    def chain(self, e, scope: _Scope):
        """A name with field accesses and indexes: check the name and, for message, the whole path."""
        root, segments = _flatten(e)
        if isinstance(root, ast.Ref):
            self.ref(root, segments, scope)
        return self._rebuild(e, scope)

    def _rebuild(self, e, scope: _Scope):
        if isinstance(e, ast.FieldAccess):
            return _replace(e, base=self._rebuild(e.base, scope))
        if isinstance(e, ast.IndexExpr):
            return _replace(e, base=self._rebuild(e.base, scope), index=self.expr(e.index, scope))
        if isinstance(e, ast.Ref):
            return e
        return self.expr(e, scope)

    def ref(self, r: ast.Ref, segments: list, scope: _Scope) -> None:
        head = r.path[0]
        at = self.span(r.pos, len(".".join(r.path)))
        special = head == "message" or (head in ("src_sid", "dst_sid") and len(r.path) == 1 and not segments)
        if special and scope.event is None:
            self.diags.add(PRP_STATE_NAME, f"{head} has no meaning in a state expression", at)
        elif head == "dst_sid" and special and scope.event == "security":
            self.diags.add(PRP_UNKNOWN_NAME, "security events have no destination: dst_sid is undefined", at)
        elif head == "message":
            self.message_path(list(r.path[1:]) + segments, at, scope)
        elif not special:
            bare_word = len(r.path) == 1 and not segments
            self.diags.add(PRP_UNKNOWN_NAME, f"{'.'.join(r.path)} is not defined here", at,
                           hint=f"if you mean the text, write \"{head}\"" if bare_word else None)

    def message_path(self, path: list, at: Span, scope: _Scope) -> None:
        """``message.a.b.[i].c`` must exist, with these types, in every selected method."""
        if scope.event == "execute":
            self.diags.add(PRP_MESSAGE_PATH, "execute events carry no message", at)
            return
        if not path or not scope.checkable:
            return
        direction = _DIRECTION[scope.event]
        missing = sorted({f"{t.interface}.{t.method.name}" for t in scope.targets
                          if _path_type(message_params(t.method, scope.event), path) is None
                          and not _untyped(t.method, direction, path)})
        if missing:
            shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
            written = "message" + "".join(".[i]" if s is None else f".{s}" for s in path)
            self.diags.add(PRP_MESSAGE_PATH, f"{written} is not an {direction}-parameter path of {shown}", at)

    def call(self, c: ast.Call, scope: _Scope):
        """A model call used as a value: object, method, argument shape; returns the call resolved."""
        method = c.method.text
        obj = c.object.text if c.object is not None else ml.UNPREFIXED.get(method)
        at = self.span(c.pos)
        if obj is None:
            self.diags.add(PRP_UNKNOWN_MODEL_METHOD, f"{method} needs an object prefix (object.{method})", at)
        else:
            self._check_call(c, obj, method)
        return _replace(c, arg=self.expr(c.arg, scope))

    def _check_call(self, c: ast.Call, obj: str, method: str) -> bool:
        """Object, model method and argument shape of a call; reports the first problem."""
        od = self.sol.objects.get(obj)
        obj_at = self.name_span(c.object) if c.object is not None else self.span(c.pos)
        if od is None:
            close = _closest(obj, self.sol.objects)
            self.diags.add(PRP_UNKNOWN_OBJECT, f"unknown policy object {obj}", obj_at,
                           hint=f"did you mean {close}?" if close else None)
            return False
        if c.pos in self.sugar and od.model != "Flow":
            self.diags.add(PRP_NOT_FLOW, f"{obj}[...] needs a Flow object; {obj} is a {od.model} object", obj_at)
            return False
        model = ml.MODELS.get(od.model)
        sig = model.methods.get(method) if model is not None else None
        if sig is None:
            self.diags.add(PRP_UNKNOWN_MODEL_METHOD, f"model {od.model} has no method {method}",
                           self.name_span(c.method),
                           hint="methods: " + ", ".join(sorted(model.methods)) if model is not None else None)
            return False
        if sig.kind == "rule":
            self.diags.add(PRP_RULE_AS_VALUE, f"{obj}.{method} is a rule; it gives no value", self.span(c.pos))
            return False
        problem = _argument_problem(sig, c.arg)
        if problem:
            self.diags.add(PRP_BAD_ARGUMENT, f"{obj}.{method} {problem}", self.span(_pos_of(c.arg)))
            return False
        return True

    # ------------------------------------------------------------------ declarations
    def property(self, p: _PropertySyntax) -> Property | None:
        """Resolve one property; None when any of its names did not resolve."""
        mark = len(self.diags.errors)
        body = p.body
        pattern = None
        condition = None
        if body.pattern is not None:
            resolved = self.pattern(body.pattern)
            if resolved is not None:
                pattern, scope = resolved
                if body.condition is not None:
                    condition = self.expr(body.condition, scope)
            elif body.condition is not None:
                # Still report problems in the condition that do not depend on the pattern.
                self.expr(body.condition, _Scope(body.pattern.kind))
        elif body.condition is not None:
            condition = self.expr(body.condition, _Scope(None))
        flows = (self.procs(body.flow_src), self.procs(body.flow_dst), self.procs(body.flow_via))
        if len(self.diags.errors) > mark:
            return None
        return Property(
            name=p.name.text, kind=body.kind, pattern=pattern, condition=condition,
            flow_src=flows[0], flow_dst=flows[1], flow_via=flows[2],
            span=self.name_span(p.name), text=p.text, source=self.source,
        )

    def channel(self, c: _ChannelSyntax) -> ChannelDecl | None:
        client, server = self.proc(c.client), self.proc(c.server)
        if client is None or server is None:
            return None
        span = self.span(c.pos, c.end - c.pos)
        classes = self.classes_of(server)
        if classes and all(not cl.endpoints and not cl.opaque for cl in classes):
            self.diags.add(PRP_SERVERLESS_CHANNEL, f"{server.text} serves no endpoint", server.span)
        return ChannelDecl(client, server, span)


# ------------------------------------------------------------------ pure helpers

def _targets(kind: str, classes: Iterable[ProcessClass], endpoint: str | None = None,
             interface: str | None = None, method: str | None = None) -> tuple[Target, ...]:
    """Every (class, endpoint, method) of ``classes`` an event of ``kind`` with these selectors addresses."""
    out: list[Target] = []
    for cls in classes:
        if kind == "security":
            sources = [(None, cls.security)] if cls.security is not None and endpoint is None else []
        else:
            sources = [(ep.name, ep.interface) for ep in cls.endpoints if endpoint is None or ep.name == endpoint]
        for ep_name, iface in sources:
            if interface is not None and iface.name != interface:
                continue
            out.extend(Target(cls.name, ep_name, iface.name, m) for m in iface.methods
                       if method is None or m.name == method)
    return tuple(out)


def _describe_selectors(p: EventPattern) -> str:
    parts = [f"{k}={getattr(p, k).text}" for k in ("src", "dst") if getattr(p, k) is not None]
    parts += [f"{k}={v}" for k in ("endpoint", "interface", "method") if (v := getattr(p, k))]
    return " ".join(parts)


def _flatten(e) -> tuple[object, list]:
    """``a.b.[i].c`` -> (root ``Ref``/expression, segments ``["c", None]`` in reading order).

    ``None`` stands for an index (its value does not affect the type).
    """
    segments: list = []
    while True:
        if isinstance(e, ast.FieldAccess):
            segments.append(e.name)
            e = e.base
        elif isinstance(e, ast.IndexExpr):
            segments.append(None)
            e = e.base
        else:
            segments.reverse()
            return e, segments


def _untyped(method, direction: str, path: list) -> bool:
    """A parameter the method has by documented name only (the kernel's): its path cannot be checked."""
    names = method.untyped_names(direction)
    return bool(path) and (path[0] in names or "*" in names)


def _path_type(params: tuple, path: list) -> IdlType | None:
    """The IDL type at ``path`` (parameter, then fields / ``None`` indexes), or None if absent."""
    typ = next((p.type for p in params if p.name == path[0]), None) if path[0] is not None else None
    for seg in path[1:]:
        if typ is None:
            return None
        if seg is None:
            typ = typ.element if isinstance(typ, (SequenceType, ArrayType)) else None
        else:
            typ = _field_type(typ, seg)
    return typ


def _argument_problem(sig: ml.MethodSig, arg) -> str | None:
    """Why ``arg`` does not fit ``sig`` (None if it does): the same shapes the policy resolver checks."""
    kind = sig.arg.kind
    is_unit = isinstance(arg, ast.Lit) and arg.kind == "unit"
    if kind == "unit" and not is_unit:
        return "takes ()"
    if kind in ("bool", "number", "list", "any", "text") and is_unit:
        return "needs an argument"
    if kind != "record":
        return None
    if not isinstance(arg, ast.RecordExpr):
        return "takes a record {" + ", ".join(sig.arg.required) + "}"
    names = [f.key.text if isinstance(f.key, ast.Name) else str(f.key.value) for f in arg.fields]
    missing = [r for r in sig.arg.required if r not in names]
    if missing:
        return "needs field " + ", ".join(f"`{m}`" for m in missing)
    extra = [n for n in names if n not in sig.arg.required + sig.arg.optional]
    if extra:
        return "has no field " + ", ".join(f"`{x}`" for x in extra)
    return None


def _pos_of(e) -> int:
    return getattr(e, "pos", 0)


# =============================================================================== entry points

def parse_properties(solution: Solution, source: SourceText, diags: Diagnostics | None = None) -> PropertyFile:
    """Parse and resolve an already read (and expanded) property text; never raises.

    :func:`load_properties` reads a file and calls this; tests and tools that hold
    the text call it directly.
    """
    diags = diags if diags is not None else Diagnostics()
    decls, sugar = _parse(source, diags)
    resolver = _Resolver(solution, source, diags, sugar)
    properties: list[Property] = []
    channels: list[ChannelDecl] = []
    first: dict[str, Span] = {}
    for decl in decls:
        if isinstance(decl, _ChannelSyntax):
            ch = resolver.channel(decl)
            if ch is not None:
                channels.append(ch)
            continue
        name = decl.name.text
        if name in first:
            diags.add(PRP_DUPLICATE_PROPERTY, f"property {name} is already defined (line {first[name].line})",
                      resolver.name_span(decl.name))
            continue
        first[name] = resolver.name_span(decl.name)
        prop = resolver.property(decl)
        if prop is not None:
            properties.append(prop)
    return PropertyFile(source.path, tuple(properties), tuple(channels), tuple(diags.sorted()))


def load_properties(solution: Solution, path: str | Path,
                    defines: Mapping[str, str] | None = None) -> PropertyFile:
    """Read, expand (``@VAR@``, ``{% if %}`` with ``defines``), parse and resolve a ``.props`` file.

    Never raises for a problem in the file: a missing or unreadable file is an
    ``SRC`` diagnostic, everything else ``TPL`` or ``PRP``.
    """
    diags = Diagnostics()
    path = Path(path)
    shown = display_path(path)
    text = read_text(path, diags, shown)
    if text is None:
        return PropertyFile(shown, (), (), tuple(diags.sorted()))
    source = expand_template(text, shown, defines or {}, diags)
    return parse_properties(solution, source, diags)


def find_property_files(solution: Solution) -> list[Path]:
    """Every ``*.props`` file under the solution's folder, sorted; hidden folders are skipped."""
    root = Path(solution.root)
    if not root.is_dir():
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder) / f for f in files if f.endswith(".props") and not f.startswith("."))
    return sorted(found)
