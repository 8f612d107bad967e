"""PSL parser: ``*.psl`` text -> :class:`~policy_lang.syntax.ast.PslFile`.

Accepted language: PSL and PAL of KCE 1.1 - 1.4 (grammar and operator precedence
in ``grammars/psl.lark``)::

    execute: kl.core.Execute
    use nk.base._                              // PSL include (path stored without ._)
    use EDL acme.Hub                           // EDL include
    task class Alias : acme.Hub                // 1.3 renaming include
    type Level = "low" | "high"
    policy object door : Flow { type State = "a" | "b"  config = { ... } }
    audit profile trace = { 0 : { base : { kss : ["denied"] } } }
    audit default = trace 0
    request src=a.B, dst=c.D endpoint=ep method=M { audit trace  grant ()  match ... { }  choice (e) { "x" : ... } }
    assert "tests" { setup { k <- execute dst=kl.core.Core } sequence { grant request src=... { } } }

Older forms accepted: the 1.1 paren-less call argument (``assert message.ok``,
``math.sum [1, 2]``, ``assert set.contains {sid : src_sid, entry : 1}``;
``Call.parenthesized`` is False), the 1.1 PAL shorthand ``c ~> s : ep.Method {..}``
(and ``c <~ s : ...`` for a response, our reading), free layout instead of 1.1's
indentation rule, the ``component=`` selector.  Lenient extensions: trailing
commas in lists, records and selector lists; a ``choice`` arm may hold several
statements without braces.  ``x <-1`` is ``x < -1`` outside PAL arrows.

How a file is parsed (speed and error recovery):

1. the whole file is lexed once with the shared fast lexer (:func:`lex`);
2. :func:`split_declarations` cuts the tokens into top-level declarations; each is
   parsed alone, so one broken declaration gives one ``SYN`` diagnostic and the
   others still parse.  When a declaration fails *at* a declaration keyword that
   starts a line (a missing ``}`` made it swallow the next one), the rest is split
   and parsed again;
3. a declaration is parsed by a small LALR driver over lark's own parse table
   (:func:`_drive`): it calls :class:`PslBuilder` on every reduction, with the
   same child filtering lark's tree builder does, so no lark tree is ever built.
   Runs of pass-through reductions (``expr <- implies <- ... <- atom``) are
   collapsed through a memo;
4. an LALR parse depends only on the sequence of token *types*, so the driver
   records the reductions it performs and caches them, keyed by that sequence:
   the next declaration with the same shape (``request src=X dst=Y { grant () }``
   for any X, Y) replays the recording with its own tokens (:func:`_replay`).
   Bracket groups (``( )``, ``[ ]``, ``{ }``) are cached the same way, keyed by the
   LALR state after the opener and the types up to the closer, so a new
   declaration made of known pieces is mostly replayed too.  A replay calls the
   very same builder methods on the same arguments, so the AST is the one a fresh
   parse gives.  Both caches are bounded (:data:`CACHE_MAX_TOKENS`) and can be
   bypassed (``parse_psl(..., use_cache=False)``) or emptied (:func:`clear_cache`);
5. the cyclic garbage collector is paused while a file is parsed (the tokens and
   nodes built here form no cycles; see :func:`policy_lang.perf.gc_paused`).

A declaration with a syntax error is left out of the result (the others are kept);
declarations with a PSL-specific problem (``SYN1xx``) are kept when their meaning is
still clear.
"""
from __future__ import annotations

import dataclasses
import re
import threading
from array import array
from collections import OrderedDict
from operator import attrgetter
from typing import Any

from lark import Token, Transformer, Tree
from lark.parsers.lalr_analysis import Shift

from ..diagnostics import Diagnostics, define_code
from ..literals import int_value, out_of_range_message, oversized_int_digits
from ..source import SourceText
from . import ast
from ..perf import gc_paused
from .lexing import Grammar, load_grammar, lex, make_token, parse_tokens, split_declarations

__all__ = ["parse_psl", "clear_cache", "cache_info", "PslBuilder", "PslTransformer", "STARTERS"]

# ----------------------------------------------------------------------------- codes

SYN_USE_PATH = define_code(
    "SYN101", "error", "'use' path does not end with '._'",
    "include a PSL file as 'use a.b._' (it reads a/b.psl); use 'use EDL a.b.Class' for a process class",
)
SYN_USE_EDL_PATH = define_code(
    "SYN102", "error", "'use EDL' names a class, not a '._' path",
    "write 'use EDL a.b.Class' without the trailing '._'",
)
SYN_SIMPLE_NAME = define_code(
    "SYN103", "error", "dotted name where a single word is required",
    "policy object, type, record field, test variable and audit profile names are single words "
    "without dots",
)
SYN_ARROW_NOT_EXECUTE = define_code(
    "SYN104", "error", "'<-' on a test case that is not an execute event",
    "only 'var <- execute ...' binds a SID variable; drop 'var <-' from other test cases",
)
SYN_TEST_PART_TWICE = define_code(
    "SYN105", "error", "test block has more than one 'setup' or 'finally'",
    "merge the cases into one 'setup { }' / one 'finally { }' per assert block",
)
SYN_TEST_PART_ORDER = define_code(
    "SYN106", "error", "test block parts out of order",
    "write 'setup { }' first, then the 'sequence' blocks, then 'finally { }'",
)
SYN_SHORTHAND_TARGET = define_code(
    "SYN107", "error", "shorthand test case target is not 'endpoint.Method'",
    "write 'client ~> server : endpoint.Method { ... }' with the qualified endpoint name before the method",
)
SYN_SELECTOR_TWICE = define_code(
    "SYN108", "error", "selector given twice",
    "each of src, dst, endpoint, method, interface may appear once per binding, match section or test case",
)
SYN_CONFIG_TWICE = define_code(
    "SYN109", "error", "policy object has more than one 'config'",
    "give the object's whole configuration in one 'config = { ... }'",
)
SYN_DEFAULT_ARM_TWICE = define_code(
    "SYN110", "error", "choice has more than one default arm '_'",
    "keep one '_ : ...' arm, as the last arm",
)
SYN_TOO_DEEP = define_code(
    "SYN111", "error", "declaration nested too deeply",
    "split the expression or value; nesting deeper than 200 levels cannot be analysed "
    "(long `||`/`&&` runs count by the logarithm of their length)",
)
SYN_NO_SEQUENCE = define_code(
    "SYN112", "warning", "test block has no 'sequence'",
    "add at least one 'sequence { ... }': setup and finally cases run only around a sequence",
)
SYN_INT_RANGE = define_code(
    "SYN113", "error", "integer literal out of the 64-bit range",
    "PSL integers are at most 64 bits wide (-2^63 .. 2^64-1)",
)
SYN_DUPLICATE_KEY = define_code(
    "SYN114", "error", "record has the same key twice",
    "give each key once per record",
)

#: Keyword terminals that begin a top-level declaration.
STARTERS = frozenset({
    "EXECUTE", "USE", "POLICY", "TYPE", "TASK", "AUDIT",
    "REQUEST", "RESPONSE", "ERROR", "SECURITY", "ASSERT",
})

MAX_DEPTH = 200
#: Operators whose long chains are built balanced (see PslBuilder._chain).
CHAINED = frozenset({"||", "&&"})
#: Terms of a chain kept left-deep, as written, before blocks are joined.
CHAIN_BLOCK = 32
CACHE_MAX_TOKENS = 4_000_000      # per cache: key length + program length of all entries
CACHE_MAX_CHUNK = 5_000           # longer declarations are never cached
CACHE_MAX_GROUP = 400             # longer bracket groups are never cached
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1

_WHAT = {
    "REQUEST": "request binding",
    "RESPONSE": "response binding",
    "ERROR": "error binding",
    "SECURITY": "security binding",
    "POLICY": "policy object declaration",
    "TYPE": "type declaration",
    "TASK": "task class declaration",
    "ASSERT": "policy test block",
}


def _describe(chunk: list[Token]) -> str:
    first = chunk[0].type
    second = chunk[1].type if len(chunk) > 1 else ""
    if first == "EXECUTE":
        return "execute interface declaration" if second == "COLON" else "execute binding"
    if first == "USE":
        return "use EDL declaration" if second == "EDL" else "use declaration"
    if first == "AUDIT":
        if second == "PROFILE":
            return "audit profile"
        if second == "DEFAULT":
            return "audit default declaration"
        return "audit declaration"
    return _WHAT.get(first, "declaration")


def _grammar() -> Grammar:
    return load_grammar("psl", ("start", "decl"))


# ----------------------------------------------------------------------------- builder

class _Config:
    __slots__ = ("expr", "pos")

    def __init__(self, expr, pos):
        self.expr = expr
        self.pos = pos


class _Part:
    """setup / finally block of an assert block (sequences are TestSequence)."""

    __slots__ = ("kind", "cases", "pos")

    def __init__(self, kind, cases, pos):
        self.kind = kind
        self.cases = cases
        self.pos = pos


_TEXT_ESCAPE = re.compile(r'\\([\\"])')


def _text(tok: Token) -> str:
    r"""The value of a text literal: ``\\`` is one backslash and ``\"`` a quote.

    That is how the KasperskyOS documentation writes regular expressions: every
    backslash of the pattern doubled (``"Hello\\ world\\!"`` is the pattern
    ``Hello\ world\!``).  Any other backslash is kept as written, so a pattern with
    single backslashes (``"^\d+$"``) still reads as its author meant.  The block form
    (three backticks and ``regex``, the pattern, three backticks) takes the pattern as
    written, without its surrounding white space.
    """
    value = tok.value
    if value.startswith("```"):
        # The block form of a pattern: written as is, single backslashes, over several lines.
        return value[len("```regex"):-3].strip()
    body = value[1:-1]
    return _TEXT_ESCAPE.sub(r"\1", body) if "\\" in body else body


_LIT_KEY_TYPES = frozenset({"TEXT", "INT", "TRUE", "FALSE"})
_EXPECT = frozenset({"GRANT", "DENY", "ANY"})
_EVENTS = frozenset({"EXECUTE", "REQUEST", "RESPONSE", "ERROR", "SECURITY"})

Lit = ast.Lit
Name = ast.Name
Ref = ast.Ref
BinOp = ast.BinOp


def _fast_constructor(cls):
    """A constructor equivalent to ``cls(...)`` for a frozen slotted dataclass.

    The generated ``__init__`` of a frozen dataclass sets each field through
    ``object.__setattr__``; setting the slots through their descriptors gives the
    same object at about half the cost, which matters for the hundreds of
    thousands of nodes of a large policy.  Falls back to ``cls`` itself for any
    class with ``__post_init__``, default factories or no slots.
    """
    fields = dataclasses.fields(cls)
    if (
        "__slots__" not in vars(cls)
        or hasattr(cls, "__post_init__")
        or any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields)
    ):
        return cls
    env: dict = {"_new": object.__new__, "_cls": cls}
    params = []
    body = ["    o = _new(_cls)"]
    for f in fields:
        env[f"_set_{f.name}"] = vars(cls)[f.name].__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(o, {f.name})")
    exec(f"def make({', '.join(params)}):\n" + "\n".join(body) + "\n    return o\n", env)  # noqa: S102
    return env["make"]


_AssertBlock = _fast_constructor(ast.AssertBlock)
_AuditDefault = _fast_constructor(ast.AuditDefault)
_AuditProfile = _fast_constructor(ast.AuditProfile)
_BinOp = _fast_constructor(ast.BinOp)
_Binding = _fast_constructor(ast.Binding)
_Call = _fast_constructor(ast.Call)
_Choice = _fast_constructor(ast.Choice)
_ChoiceArm = _fast_constructor(ast.ChoiceArm)
_ExecuteDecl = _fast_constructor(ast.ExecuteDecl)
_FieldAccess = _fast_constructor(ast.FieldAccess)
_IndexExpr = _fast_constructor(ast.IndexExpr)
_ListExpr = _fast_constructor(ast.ListExpr)
_Lit = _fast_constructor(ast.Lit)
_LitType = _fast_constructor(ast.LitType)
_Match = _fast_constructor(ast.Match)
_Name = _fast_constructor(ast.Name)
_PolicyObject = _fast_constructor(ast.PolicyObject)
_RecordExpr = _fast_constructor(ast.RecordExpr)
_RecordField = _fast_constructor(ast.RecordField)
_RecordType = _fast_constructor(ast.RecordType)
_Ref = _fast_constructor(ast.Ref)
_Selector = _fast_constructor(ast.Selector)
_TaskClassDecl = _fast_constructor(ast.TaskClassDecl)
_TestCase = _fast_constructor(ast.TestCase)
_TestSequence = _fast_constructor(ast.TestSequence)
_TupleType = _fast_constructor(ast.TupleType)
_TypeDecl = _fast_constructor(ast.TypeDecl)
_TypeName = _fast_constructor(ast.TypeName)
_UnOp = _fast_constructor(ast.UnOp)
_UnionType = _fast_constructor(ast.UnionType)
_UseEdl = _fast_constructor(ast.UseEdl)
_UsePsl = _fast_constructor(ast.UsePsl)
_PslFile = ast.PslFile


class PslBuilder:
    """Builds AST nodes: one method per grammar rule (or alias), children inline.

    The LALR driver calls these on each reduction (see :class:`_Tables`); the lark
    :class:`PslTransformer` calls the same methods on a lark tree.  Every method
    depends only on its arguments (plus ``source``/``diags`` for reporting), which
    is what makes replaying a recorded reduction sequence exact.
    """

    def __init__(self, source: SourceText, diags: Diagnostics):
        self.source = source
        self.diags = diags
        self._chains: dict[int, tuple] = {}      # id(chain node) -> (node, operator, spine), see _chain

    # -- helpers

    def _report(self, code: str, message: str, start: int, length: int = 0) -> None:
        self.diags.add(code, message, self.source.span(start, start + length if length else None))

    def _simple(self, tok: Token, what: str) -> Name:
        text = tok.value
        if "." in text:
            self._report(SYN_SIMPLE_NAME, f"{what} '{text}' must be a single word", tok.start_pos, len(text))
        return _Name(text, tok.start_pos)

    def _int(self, tok: Token, negative: bool = False, pos: int | None = None) -> Lit:
        text = tok.value
        digits = oversized_int_digits(text)
        if digits is not None:   # before int(): Python refuses over 4,300 digits, and no PSL integer is that wide
            self._report(SYN_INT_RANGE, out_of_range_message(digits), tok.start_pos, len(text))
            return _Lit("int", 0, tok.start_pos if pos is None else pos)
        value = int_value(text)
        if negative:
            value = -value
        if value > _INT_MAX or value < _INT_MIN:
            self._report(SYN_INT_RANGE, f"integer literal {'-' if negative else ''}{text} does not fit in 64 bits",
                         tok.start_pos, len(text))
        return _Lit("int", value, tok.start_pos if pos is None else pos)

    def _selectors_checked(self, selectors: tuple) -> tuple:
        if len(selectors) > 1:
            seen: set[str] = set()
            for sel in selectors:
                if sel.key in seen:
                    self._report(SYN_SELECTOR_TWICE, f"selector '{sel.key}' given twice", sel.pos, len(sel.key))
                seen.add(sel.key)
        return selectors

    # -- file and declarations

    def start(self, *decls):
        return list(decls)

    def execute_decl(self, kw, iface):
        return _ExecuteDecl(_Name(iface.value, iface.start_pos), kw.start_pos)

    def use_psl(self, kw, path):
        text = path.value
        if text.endswith("._") and len(text) > 2:
            text = text[:-2]
        else:
            self._report(SYN_USE_PATH, f"'use {text}' does not end with '._'; write 'use {text}._'",
                         path.start_pos, len(path.value))
        return _UsePsl(_Name(text, path.start_pos), kw.start_pos)

    def use_edl(self, kw, _edl, cls):
        text = cls.value
        if text.endswith("._"):
            self._report(SYN_USE_EDL_PATH, f"'use EDL {text}' names a class; drop the trailing '._'",
                         cls.start_pos, len(text))
            text = text[:-2]
        return _UseEdl(_Name(text, cls.start_pos), kw.start_pos)

    def task_class(self, kw, _class, alias, edl):
        return _TaskClassDecl(_Name(alias.value, alias.start_pos), _Name(edl.value, edl.start_pos), kw.start_pos)

    def type_decl(self, kw, name, type_):
        return _TypeDecl(self._simple(name, "type name"), type_, kw.start_pos)

    def config_item(self, kw, expr):
        return _Config(expr, kw.start_pos)

    def policy_object(self, kw, _object, name, model, *body):
        types = []
        config = None
        for item in body:
            if type(item) is ast.TypeDecl:
                types.append(item)
            elif type(item) is _Config:
                if config is not None:
                    self._report(SYN_CONFIG_TWICE, "second 'config' in this policy object", item.pos, 6)
                else:
                    config = item.expr
        return _PolicyObject(
            self._simple(name, "policy object name"), _Name(model.value, model.start_pos),
            tuple(types), config, kw.start_pos,
        )

    def audit_profile(self, kw, _profile, name, levels):
        return _AuditProfile(self._simple(name, "audit profile name"), levels, kw.start_pos)

    def audit_default(self, kw, _default, profile, level):
        return _AuditDefault(self._simple(profile, "audit profile name"), self._int(level).value, kw.start_pos)

    # -- bindings

    def binding(self, event, *rest):
        audit, body = rest[-1]
        return _Binding(event.value, self._selectors_checked(rest[:-1]), audit, body, event.start_pos)

    def selector(self, key, value):
        return _Selector(key.value, _Name(value.value, value.start_pos), key.start_pos)

    def body(self, _lbrace, *items):
        # items: [audit Name] stmt* RBRACE
        if items and type(items[0]) is Name:
            return items[0], items[1:-1]
        return None, items[:-1]

    def audit_ref(self, _kw, name):
        return self._simple(name, "audit profile name")

    def block(self, _lbrace, *items):
        return items[:-1]

    def match(self, kw, *rest):
        audit, body = rest[-1]
        return _Match(self._selectors_checked(rest[:-1]), audit, body, kw.start_pos)

    def paren_expr(self, _lpar, expr, _rpar):
        return expr

    def choice(self, kw, expr, _lbrace, *items):
        audit = None
        if type(items[0]) is Name:
            audit = items[0]
            items = items[1:]
        arms = items[:-1]
        defaults = [arm for arm in arms if arm.case is None]
        for arm in defaults[1:]:
            self._report(SYN_DEFAULT_ARM_TWICE, "second default arm '_' in this choice", arm.pos, 1)
        return _Choice(expr, audit, arms, kw.start_pos)

    def arm(self, *items):
        first = items[0]
        kind = first.type
        if kind == "MINUS":
            case = self._int(items[1], negative=True, pos=first.start_pos)
            rest = items[2:]
        else:
            if kind == "UNDERSCORE":
                case = None
            elif kind == "TEXT":
                case = _Lit("text", _text(first), first.start_pos)
            elif kind == "INT":
                case = self._int(first)
            else:
                case = _Lit("bool", kind == "TRUE", first.start_pos)
            rest = items[1:]
        if len(rest) == 1 and type(rest[0]) is tuple:
            body = rest[0]
        else:
            body = rest
        return _ChoiceArm(case, body, first.start_pos)

    # -- calls

    @staticmethod
    def _split_callee(tok):
        text = tok.value
        dot = text.rfind(".")
        pos = tok.start_pos
        if dot < 0:
            return None, _Name(text, pos)
        return _Name(text[:dot], pos), _Name(text[dot + 1:], pos + dot + 1)

    def call_paren(self, callee, _lpar, expr, _rpar):
        obj, method = self._split_callee(callee)
        return _Call(obj, method, expr, True, callee.start_pos)

    def call_unit(self, callee, lpar, _rpar):
        obj, method = self._split_callee(callee)
        return _Call(obj, method, _Lit("unit", None, lpar.start_pos), True, callee.start_pos)

    def call_bare(self, callee, arg):
        obj, method = self._split_callee(callee)
        return _Call(obj, method, arg, False, callee.start_pos)

    # -- expressions

    def binop(self, left, op, right):
        if op.value in CHAINED:
            return self._chain(op.value, left, right)
        return _BinOp(op.value, left, right, left.pos)

    def _chain(self, op: str, left, right):
        """``left op right`` for an associative, left-to-right ``||`` or ``&&``.

        Why not always left-deep: real policies allow-list message values with
        disjunctions of hundreds of terms, and a left-deep tree is as deep as the
        chain is long, beyond what the recursive back ends (and :data:`MAX_DEPTH`)
        allow.  The first :data:`CHAIN_BLOCK` terms stay left-deep, exactly as written
        (most chains never get further); beyond that, blocks of that many terms are
        joined like a binary counter, so the depth grows with the logarithm of the
        length.  The terms keep their order, and so does evaluation: ``||`` and ``&&``
        are associative with short-circuits and errors, from left to right.
        """
        held = self._chains.get(id(left))
        if held is None or held[0] is not left or held[1] != op:
            spine = [(left, 1)]                   # (subtree, terms), sizes non-increasing
        else:
            spine = list(held[2])
        last, terms = spine[-1]
        if terms < CHAIN_BLOCK and (len(spine) == 1 or terms < spine[-2][1]):
            spine[-1] = (_BinOp(op, last, right, last.pos), terms + 1)   # the block being filled
        else:
            spine.append((right, 1))
        while len(spine) >= 2 and spine[-1][1] == spine[-2][1] and spine[-1][1] >= CHAIN_BLOCK:
            (a, n), (b, _) = spine[-2], spine[-1]
            spine[-2:] = [(_BinOp(op, a, b, a.pos), 2 * n)]
        node = spine[0][0]
        for sub, _ in spine[1:]:
            node = _BinOp(op, node, sub, node.pos)
        self._chains[id(node)] = (node, op, spine)
        return node

    @staticmethod
    def _unary(op, operand, pos):
        if op == "-" and type(operand) is Lit and operand.kind == "int":
            return _Lit("int", -operand.value, pos)
        return _UnOp(op, operand, pos)

    def unop(self, op, operand):
        return self._unary(op.value, operand, op.start_pos)

    def index(self, base, _dot, _lsqb, index, _rsqb):
        return _IndexExpr(base, index, base.pos)

    def attr(self, base, _dot, name):
        parts = name.value.split(".")
        if type(base) is Ref:
            return _Ref(base.path + tuple(parts), base.pos)
        for part in parts:
            base = _FieldAccess(base, part, base.pos)
        return base

    def paren(self, _lpar, expr, _rpar):
        return expr

    def unit(self, lpar, _rpar):
        return _Lit("unit", None, lpar.start_pos)

    def ref(self, tok):
        return _Ref(tuple(tok.value.split(".")), tok.start_pos)

    def int_lit(self, tok):
        return self._int(tok)

    def text_lit(self, tok):
        return _Lit("text", _text(tok), tok.start_pos)

    def bool_lit(self, tok):
        return _Lit("bool", tok.type == "TRUE", tok.start_pos)

    def list(self, lsqb, *items):
        return _ListExpr(items[:-1], lsqb.start_pos)

    def record(self, lbrace, *items):
        fields = items[:-1]
        if len(fields) > 1:
            seen = set()
            for f in fields:
                key = f.key
                k = (key.text,) if type(key) is Name else (key.kind, key.value)
                if k in seen:
                    shown = key.text if type(key) is Name else repr(key.value)
                    self._report(SYN_DUPLICATE_KEY, f"key {shown} appears twice in this record", f.pos)
                seen.add(k)
        return _RecordExpr(fields, lbrace.start_pos)

    def rfield(self, key, value):
        kind = key.type
        if kind in _LIT_KEY_TYPES:
            if kind == "TEXT":
                k = _Lit("text", _text(key), key.start_pos)
            elif kind == "INT":
                k = self._int(key)
            else:
                k = _Lit("bool", kind == "TRUE", key.start_pos)
        else:
            k = self._simple(key, "record key")
        return _RecordField(k, value, key.start_pos)

    # -- types

    def union_type(self, *members):
        return _UnionType(members, members[0].pos)

    def type_name(self, tok):
        return _TypeName(_Name(tok.value, tok.start_pos), (), tok.start_pos)

    def type_app(self, tok, *args):
        return _TypeName(_Name(tok.value, tok.start_pos), args, tok.start_pos)

    def lit_type(self, *toks):
        first = toks[0]
        kind = first.type
        if kind == "MINUS":
            lit = self._int(toks[1], negative=True, pos=first.start_pos)
        elif kind == "INT":
            lit = self._int(first)
        elif kind == "TEXT":
            lit = _Lit("text", _text(first), first.start_pos)
        else:
            lit = _Lit("bool", kind == "TRUE", first.start_pos)
        return _LitType(lit, first.start_pos)

    def unit_type(self, lpar, _rpar):
        return _LitType(_Lit("unit", None, lpar.start_pos), lpar.start_pos)

    def record_type(self, lbrace, *items):
        return _RecordType(items[:-1], lbrace.start_pos)

    def type_field(self, name, type_):
        return (self._simple(name, "record field"), type_)

    def tuple_type(self, lsqb, *items):
        return _TupleType(items[:-1], lsqb.start_pos)

    # -- PAL

    def assert_block(self, kw, *items):
        name = None
        if items[0].type == "TEXT":
            name = _text(items[0])
            items = items[1:]
        parts = items[1:-1]          # drop LBRACE, RBRACE
        setup: tuple = ()
        finally_: tuple = ()
        sequences = []
        seen_setup = seen_finally = False
        for part in parts:
            if type(part) is ast.TestSequence:
                if seen_finally:
                    self._report(SYN_TEST_PART_ORDER, "'sequence' after 'finally'", part.pos, 8)
                sequences.append(part)
                continue
            if part.kind == "setup":
                if seen_setup:
                    self._report(SYN_TEST_PART_TWICE, "second 'setup' in this test block", part.pos, 5)
                    setup = setup + part.cases
                else:
                    if sequences or seen_finally:
                        self._report(SYN_TEST_PART_ORDER, "'setup' must come before the sequences", part.pos, 5)
                    setup = part.cases
                seen_setup = True
            else:
                if seen_finally:
                    self._report(SYN_TEST_PART_TWICE, "second 'finally' in this test block", part.pos, 7)
                    finally_ = finally_ + part.cases
                else:
                    finally_ = part.cases
                seen_finally = True
        if not sequences:
            self._report(SYN_NO_SEQUENCE, "test block has no 'sequence'", kw.start_pos, 6)
        return _AssertBlock(name, setup, tuple(sequences), finally_, kw.start_pos)

    def setup(self, kw, _lbrace, *cases):
        return _Part("setup", cases[:-1], kw.start_pos)

    def finally_(self, kw, _lbrace, *cases):
        return _Part("finally", cases[:-1], kw.start_pos)

    def sequence(self, kw, *items):
        name = None
        if items[0].type == "TEXT":
            name = _text(items[0])
            items = items[1:]
        return _TestSequence(name, items[1:-1], kw.start_pos)

    def test_case(self, *items):
        var = None
        expect = None
        name = None
        event = None
        message = None
        selectors = []
        i = 0
        first = items[0]
        if first.type == "QNAME":           # VAR <-
            var = self._simple(first, "test variable")
            arrow = items[1]
            i = 2
        n = len(items)
        while i < n:
            item = items[i]
            t = type(item)
            if t is ast.Selector:
                selectors.append(item)
            elif t is ast.RecordExpr:
                message = item
            else:
                kind = item.type
                if kind in _EVENTS and event is None:
                    event = item.value
                elif kind == "TEXT":
                    name = _text(item)
                else:
                    expect = item.value
            i += 1
        if var is not None and event != "execute":
            self._report(SYN_ARROW_NOT_EXECUTE, f"'{var.text} <-' on a {event} test case", arrow.start_pos, 2)
        return _TestCase(var, expect, name, event, self._selectors_checked(tuple(selectors)), message,
                            first.start_pos)

    def test_short(self, *items):
        expect = None
        name = None
        i = 0
        while items[i].type != "QNAME":
            if items[i].type == "TEXT":
                name = _text(items[i])
            else:
                expect = items[i].value
            i += 1
        left, arrow, right, target = items[i:i + 4]
        message = items[i + 4] if len(items) > i + 4 else None
        if arrow.type == "RSQUIG":       # client ~> server : request
            event, src, dst = "request", left, right
        else:                            # client <~ server : response (server -> client)
            event, src, dst = "response", right, left
        selectors = [
            _Selector("src", self._simple(src, "test variable"), src.start_pos),
            _Selector("dst", self._simple(dst, "test variable"), dst.start_pos),
        ]
        text = target.value
        dot = text.rfind(".")
        if dot < 0:
            self._report(SYN_SHORTHAND_TARGET, f"'{text}' has no endpoint; write 'endpoint.{text}'",
                         target.start_pos, len(text))
            selectors.append(_Selector("method", _Name(text, target.start_pos), target.start_pos))
        else:
            selectors.append(_Selector("endpoint", _Name(text[:dot], target.start_pos), target.start_pos))
            mpos = target.start_pos + dot + 1
            selectors.append(_Selector("method", _Name(text[dot + 1:], mpos), mpos))
        return _TestCase(None, expect, name, event, tuple(selectors), message, items[0].start_pos,
                            shorthand=True)


# ----------------------------------------------------------------------------- lark tree path

class PslTransformer(Transformer):
    """A lark Transformer over a :class:`PslBuilder`: turns a lark parse tree of the
    psl grammar into AST nodes with the same methods the fast driver uses.

    ``parse_psl`` never builds lark trees; this is the reference path used to check
    the driver (tests) and to parse with lark directly when debugging::

        tree = load_grammar("psl", ("start", "decl")).parser.parse(tokens, start="decl")
        node = PslTransformer(PslBuilder(source, diags)).transform(tree)
    """

    def __init__(self, builder: PslBuilder):
        super().__init__(visit_tokens=False)
        self._builder = builder

    def __default__(self, data, children, meta):
        method = getattr(self._builder, data, None)
        if method is None or data.startswith("_"):
            return Tree(data, children, meta)
        return method(*children)


# ----------------------------------------------------------------------------- driver

_OPENERS = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}
_CLOSERS = frozenset(_OPENERS.values())


class _Codes(dict):
    """Terminal name -> byte code; a type the grammar does not know maps to 255."""

    def __missing__(self, key):
        return 255


class _Tables:
    """Per-process view of the grammar's LALR table and of its rules.

    * terminals are numbered (``codes``; ``$END`` is 0) so that a declaration's
      token types fit in a ``bytes`` object: compact cache keys, fast slicing;
    * ``actions[state][code]``: None (syntax error), ``>= 0`` shift to that state,
      ``< 0`` reduce by rule ``~action``; ``gotos[state][nonterminal]``: the state
      after a reduction;
    * one callback factory per rule: given a :class:`PslBuilder`, it returns a
      function of the rule's raw children (all symbols of the expansion) that drops
      anonymous tokens, splices the children of inlined rules (``_name`` and lark's
      generated helpers), collapses ``?rule`` with one child, and calls the builder
      method named after the rule or its alias - exactly what lark's tree builder
      does, minus the tree;
    * ``passthrough[k]``: the reduction returns its only child unchanged (a
      ``?rule`` with one symbol, or an inlined rule that always yields one child),
      so recorded programs leave it out.
    """

    def __init__(self, grammar: Grammar):
        lark_parser = grammar.parser
        table = lark_parser.parser.parser.parser.parse_table   # Lark -> frontend -> LALR_Parser -> _Parser
        self.grammar = grammar
        self.rules = list(lark_parser.rules)
        # Rules compare by origin and expansion, so this also works when lark loaded
        # its tables from a cache file (new but equal Rule objects).
        rule_index = {rule: k for k, rule in enumerate(self.rules)}
        names = sorted({str(t.name) for t in lark_parser.lexer_conf.terminals})
        self.codes = _Codes({"$END": 0})
        for name in names:
            self.codes[name] = len(self.codes)
        if len(self.codes) > 255:  # pragma: no cover - the grammar has about 70
            raise AssertionError("too many terminals for byte codes")
        nstates = max(table.states) + 1
        width = 256                          # code 255: a type the grammar does not know
        self.actions: list[list] = [[None] * width for _ in range(nstates)]
        self.gotos: list[dict[str, int]] = [{} for _ in range(nstates)]
        for state, row in table.states.items():
            acts = self.actions[state]
            gotos = self.gotos[state]
            for sym, (action, arg) in row.items():
                sym = str(sym)
                code = self.codes.get(sym)
                if code is None:
                    gotos[sym] = arg
                elif action is Shift:
                    acts[code] = arg
                else:
                    acts[code] = ~rule_index[arg]
        self.bracket_pairs = {self.codes[o]: self.codes[c] for o, c in _OPENERS.items()}
        self.has_bracket = frozenset(self.bracket_pairs)
        self.start_state = table.start_states["decl"]
        self.end_state = table.end_states["decl"]
        self.sizes = [len(rule.expansion) for rule in self.rules]
        self.origins = [str(rule.origin.name) for rule in self.rules]
        # Reductions that add no level to the AST: inlined rules (their children
        # are spliced into the parent) and parentheses (they return the inner node).
        self.inlined = [
            name.startswith("_") or rule.alias in ("paren",) or name == "paren_expr"
            for name, rule in zip(self.origins, self.rules)
        ]
        # `or_expr OROR and_expr` and `and_expr ANDAND ...`: left-recursive runs that the
        # builder keeps shallow (PslBuilder._chain), so _depth counts them by their length.
        self.chain_rules = [
            rule.alias == "binop" and name in ("or_expr", "and_expr") and len(rule.expansion) == 3
            and str(rule.expansion[0].name) == name
            for name, rule in zip(self.origins, self.rules)
        ]
        self.factories, self.passthrough = self._compile(self.rules)
        self.chains: dict[int, int] = {}     # see _drive: memoised pass-through runs
        if nstates >= 1 << 10:  # pragma: no cover - the grammar has about 450 states
            raise AssertionError("too many LALR states for the chain memo key")

    @staticmethod
    def _unit_inlines(rules) -> set[str]:
        """Inlined rules that always yield exactly one child (``_stmt: call | match``).

        Their reductions pass the child through and parents take it as a plain
        child: no one-element list is built and spliced.
        """
        by_origin: dict[str, list] = {}
        for rule in rules:
            by_origin.setdefault(str(rule.origin.name), []).append(rule)
        unit = {name for name in by_origin if name.startswith("_")}
        changed = True
        while changed:
            changed = False
            for name in sorted(unit):
                for rule in by_origin[name]:
                    kept = [sym for sym in rule.expansion if not (sym.is_term and sym.filter_out)]
                    ok = len(kept) == 1 and (
                        kept[0].is_term or not kept[0].name.startswith("_") or str(kept[0].name) in unit
                    )
                    if not ok:
                        unit.discard(name)
                        changed = True
                        break
        return unit

    @classmethod
    def _compile(cls, rules):
        methods = {name for name in vars(PslBuilder) if not name.startswith("_")}
        unit = cls._unit_inlines(rules)
        factories = []
        passthrough = []
        for rule in rules:
            keep = [
                (i, (not sym.is_term) and sym.name.startswith("_") and str(sym.name) not in unit)
                for i, sym in enumerate(rule.expansion)
                if not (sym.is_term and sym.filter_out)
            ]
            origin = str(rule.origin.name)
            name = str(rule.alias or rule.options.template_source or origin)
            inlined = origin.startswith("_") and origin not in unit
            expand1 = (bool(rule.options.expand1) and not rule.alias) or origin in unit
            has_method = name in methods and not origin.startswith("_")
            if not inlined and not has_method and not expand1:
                raise AssertionError(f"psl grammar rule {name!r} has no PslBuilder method")
            spliced = any(expand for _i, expand in keep)
            passthrough.append(expand1 and not spliced and len(keep) == 1 and len(rule.expansion) == 1)
            lines = []
            if not spliced:
                items = ", ".join(f"a[{i}]" for i, _e in keep)
                if inlined:
                    lines.append(f"return [{items}]")
                elif expand1 and len(keep) == 1:
                    lines.append(f"return {items}")
                else:
                    lines.append(f"return m({items})")
            else:
                first, *rest = keep
                if first[1] and first[0] == 0:
                    lines.append("c = a[0]")         # left-recursive list: grow it in place
                else:
                    lines.append("c = []")
                    rest = keep
                for i, expand in rest:
                    lines.append(f"c.extend(a[{i}])" if expand else f"c.append(a[{i}])")
                if inlined:
                    lines.append("return c")
                elif expand1 and has_method:
                    lines.append("return c[0] if len(c) == 1 else m(*c)")
                elif expand1:
                    lines.append("if len(c) != 1: raise AssertionError(%r)" % name)
                    lines.append("return c[0]")
                else:
                    lines.append("return m(*c)")
            body = "\n".join("        " + line for line in lines)
            src = f"def factory(m):\n    def cb(a):\n{body}\n    return cb\n"
            scope: dict = {}
            exec(src, scope)  # noqa: S102 - generated from the grammar's own rule table
            factories.append((scope["factory"], name if has_method else None))
        return factories, passthrough

    def callbacks_for(self, builder: PslBuilder) -> list:
        return [factory(getattr(builder, name) if name else None) for factory, name in self.factories]


_TABLES: _Tables | None = None
_TABLES_LOCK = threading.Lock()


def _tables() -> _Tables:
    global _TABLES
    if _TABLES is None:
        with _TABLES_LOCK:
            if _TABLES is None:
                _TABLES = _Tables(_grammar())
    return _TABLES


class _ParseFailed(Exception):
    def __init__(self, index: int):
        super().__init__(index)
        self.index = index       # index of the token the automaton could not take


def _brackets(codes: bytes, pairs: dict[int, int]) -> dict[int, int]:
    """Index of each opening bracket -> index of its closing bracket.

    ``pairs`` maps opener codes to closer codes.  Stops at the first mismatched
    closer (pairs found before it are kept); an unclosed bracket gets no entry.
    """
    close: dict[int, int] = {}
    stack: list[int] = []
    closers = set(pairs.values())
    for i, c in enumerate(codes):
        if c in pairs:
            stack.append(i)
        elif c in closers:
            if not stack or pairs[codes[stack[-1]]] != c:
                break
            close[stack.pop()] = i
    return close


def _program(log: list):
    """A recorded program, stored compactly (2 bytes per step when it fits)."""
    try:
        return array("h", log)
    except OverflowError:
        return array("i", log)


def _replay(program: tuple, tokens: list, pos: int, callbacks: list, sizes: list) -> list:
    """Run a recorded program on ``tokens[pos:]``; return the value stack it leaves."""
    stack: list = []
    push = stack.append
    for op in program:
        if op < 0:
            if op == -1:
                push(tokens[pos])
                pos += 1
            else:
                new = pos - op
                stack.extend(tokens[pos:new])
                pos = new
        else:
            size = sizes[op]
            if size:
                args = stack[-size:]
                del stack[-size:]
                push(callbacks[op](args))
            else:
                push(callbacks[op]([]))
    return stack


def _drive(tables: _Tables, callbacks: list, tokens: list, codes: bytes, log: list, groups) -> Any:
    """Parse one declaration with the LALR automaton; return its AST node.

    Every non-trivial step is appended to ``log``: ``-n`` shifts the next n
    tokens, ``k >= 0`` reduces by rule k (pass-through reductions are left out).
    With ``groups`` (the bracket-group cache), the steps from an opening bracket
    to its closing bracket are recorded under the key (LALR state after the
    opener, token types up to the closer); when that key is seen again, the group
    is replayed instead of parsed.  This is exact: between a bracket and its
    closer no reduction reaches below the opener (every rule that holds an opener
    also holds its closer), so those steps depend on that state and those types
    only.  Raises _ParseFailed on a syntax error.
    """
    actions = tables.actions
    gotos = tables.gotos
    sizes = tables.sizes
    origins = tables.origins
    passthrough = tables.passthrough
    end_state = tables.end_state
    if groups is not None:
        close = _brackets(codes, tables.bracket_pairs) if tables.has_bracket.intersection(codes) else {}
        group_get = groups.get
    else:
        close = {}
    close_get = close.get
    chains = tables.chains
    chains_get = chains.get
    state = tables.start_state
    state_stack = [state]
    values: list = []
    push_state = state_stack.append
    push_value = values.append
    log_append = log.append
    open_groups: list = []
    next_close = -1          # index of the closer of the innermost recorded group
    pending = 0              # shifts not yet written to the log
    n = len(tokens)
    i = 0
    code = codes[0] if n else 0
    while True:
        action = actions[state][code]
        if action is None:
            raise _ParseFailed(i)
        if action >= 0:                                   # shift
            state = action
            push_state(state)
            push_value(tokens[i])
            pending += 1
            if i == next_close:                           # closes a recorded group
                log_append(-pending)
                pending = 0
                _j, key, start, depth = open_groups.pop()
                program = _program(log[start:])
                _GROUP_CACHE.put(key, len(key[1]) + 2 * len(program), (program, tuple(state_stack[depth:])))
                next_close = open_groups[-1][0] if open_groups else -1
            j = close_get(i)
            i += 1
            if j is not None:                             # opens a group
                if pending:
                    log_append(-pending)
                    pending = 0
                key = (state, codes[i:j + 1])
                entry = group_get(key)
                if entry is not None:
                    program, segment = entry
                    state_stack.extend(segment)
                    state = segment[-1]
                    values.extend(_replay(program, tokens, i, callbacks, sizes))
                    log.extend(program)
                    i = j + 1
                elif j - i < CACHE_MAX_GROUP:
                    open_groups.append((j, key, len(log), len(state_stack)))
                    next_close = j
            code = codes[i] if i < n else 0
            continue
        k = ~action                                       # reduce
        if passthrough[k]:
            # A run of pass-through reductions (expr <- implies <- ... <- atom)
            # only rewrites the top state; the result depends on the state below,
            # the top state and the lookahead, so it is computed once and memoised.
            below = state_stack[-2]
            chain_key = (below << 18) | (state << 8) | code
            top = chains_get(chain_key)
            if top is None:
                top = _chain(tables, below, state, code)
                chains[chain_key] = top
            state = top
            state_stack[-1] = state
            if state == end_state and i >= n:
                return values[-1]
            continue
        size = sizes[k]
        if size:
            args = values[-size:]
            del values[-size:]
            del state_stack[-size:]
        else:
            args = []
        if pending:
            log_append(-pending)
            pending = 0
        log_append(k)
        value = callbacks[k](args)
        state = gotos[state_stack[-1]][origins[k]]
        push_state(state)
        push_value(value)
        if state == end_state and i >= n:
            return value


def _chain(tables: _Tables, below: int, top: int, code: int) -> int:
    """Top state after every pass-through reduction that applies in turn."""
    actions = tables.actions
    gotos = tables.gotos
    passthrough = tables.passthrough
    origins = tables.origins
    end_state = tables.end_state
    while True:
        action = actions[top][code]
        if action is None or action >= 0 or not passthrough[~action]:
            return top
        top = gotos[below][origins[~action]]
        if top == end_state and code == 0:
            return top


def _depth(program: tuple, tables: _Tables) -> int:
    """Nesting depth of the node a program builds (inlined helper rules add none).

    A run of one ``||`` or ``&&`` rule counts as :func:`chain_depth` of its terms,
    the depth :meth:`PslBuilder._chain` gives it, not as one level per term.
    """
    if len(program) <= MAX_DEPTH:       # each level needs its own reduction
        return 0
    sizes = tables.sizes
    inlined = tables.inlined
    chain_rules = tables.chain_rules
    stack: list[int] = []
    runs: list = []                     # per node: (chain rule, terms, deepest term) or None
    for op in program:
        if op < 0:
            stack.extend([0] * -op)
            runs.extend([None] * -op)
            continue
        size = sizes[op]
        if chain_rules[op] and size == 3:
            first, right = runs[-3], stack[-1]
            if first is not None and first[0] == op:
                terms, deepest = first[1] + 1, max(first[2], right)
            else:
                terms, deepest = 2, max(stack[-3], right)
            del stack[-3:], runs[-3:]
            stack.append(deepest + chain_depth(terms))
            runs.append((op, terms, deepest))
            continue
        if size:
            d = max(stack[-size:])
            del stack[-size:], runs[-size:]
        else:
            d = 0
        stack.append(d if inlined[op] else d + 1)
        runs.append(None)
    return max(stack) if stack else 0


def chain_depth(terms: int) -> int:
    """An upper bound of the levels :meth:`PslBuilder._chain` makes of ``terms`` terms."""
    if terms <= CHAIN_BLOCK:
        return terms - 1
    blocks = -(-terms // CHAIN_BLOCK)
    return CHAIN_BLOCK - 1 + 2 * blocks.bit_length()


# ----------------------------------------------------------------------------- caches
#
# Two bounded caches, both keyed by token *types* (an LALR parse depends on nothing
# else) and both holding recorded programs, never AST nodes:
#   _DECLS   whole declarations: type sequence -> (program, too_deep)
#   _GROUP_CACHE  bracket groups: (state after the opener, types up to the closer)
#            -> (program, LALR states left above the opener)
# Each entry costs the length of its key plus the length of its program (about
# 16 bytes per unit with the tuples' overhead); eviction is first-in first-out
# once a cache holds CACHE_MAX_TOKENS units (a few tens of MB at most).

class _Bounded:
    __slots__ = ("data", "tokens", "limit", "hits", "misses", "lock")

    def __init__(self, limit: int):
        self.data: OrderedDict = OrderedDict()
        self.tokens = 0
        self.limit = limit
        self.hits = 0
        self.misses = 0
        self.lock = threading.Lock()

    def put(self, key: tuple, size: int, value) -> None:
        """Store ``value``; ``size`` is what it costs (key length + program length)."""
        with self.lock:
            data = self.data
            if key in data or size > self.limit:
                return
            while data and self.tokens + size > self.limit:
                self.tokens -= data.popitem(last=False)[1][0]
            data[key] = (size, value)
            self.tokens += size

    def get(self, key):
        hit = self.data.get(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        return hit[1]

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.tokens = 0
            self.hits = self.misses = 0


_DECLS = _Bounded(CACHE_MAX_TOKENS)
_GROUP_CACHE = _Bounded(CACHE_MAX_TOKENS)


def clear_cache() -> None:
    """Forget every recorded declaration and bracket-group shape."""
    _DECLS.clear()
    _GROUP_CACHE.clear()


def cache_info() -> dict:
    """Sizes and hit counts of the two shape caches (for benchmarks and tests)."""
    return {
        "entries": len(_DECLS.data), "tokens": _DECLS.tokens, "hits": _DECLS.hits, "misses": _DECLS.misses,
        "group_entries": len(_GROUP_CACHE.data), "group_tokens": _GROUP_CACHE.tokens,
        "group_hits": _GROUP_CACHE.hits, "group_misses": _GROUP_CACHE.misses,
    }


# ----------------------------------------------------------------------------- entry point

_types_of = attrgetter("type")
_NAME_AFTER = frozenset({"EQUAL", "EDL"})


def _merge_split_names(chunks: list[list[Token]], text: str, shift: int = 0) -> list[list[Token]]:
    """Undo cuts made at a starter keyword used as a name on the same line.

    ``request endpoint=security {`` or ``audit default = error 0``: the keyword
    follows '=' (or ``use EDL``) on the same line, so it is a name, not the start of
    the next declaration.  ``shift`` is how far token positions are from offsets in
    ``text`` (non-zero only when :mod:`.psl_reparse` parses a stretch of a file).
    """
    out: list[list[Token]] = []
    for chunk in chunks:
        if out:
            prev_last = out[-1][-1]
            if (prev_last.type in _NAME_AFTER
                    and "\n" not in text[prev_last.start_pos - shift:chunk[0].start_pos - shift]):
                out[-1] = out[-1] + chunk
                continue
        out.append(chunk)
    return out


def parse_psl(source: SourceText, diags: Diagnostics, *, use_cache: bool = True) -> ast.PslFile:
    """Parse one PSL file; problems become diagnostics, never exceptions.

    Returns a :class:`PslFile` holding every declaration that parsed, in file order
    (a declaration with a syntax error is reported once and left out).
    ``use_cache=False`` parses every declaration with the LALR automaton instead of
    replaying recorded shapes (same result, slower; for tests and benchmarks).
    """
    with gc_paused():
        tokens = lex(_tables().grammar, source, diags)
        decls: list[Any] = []
        if tokens:
            chunks = _merge_split_names(split_declarations(tokens, STARTERS), source.text)
            parse_chunks(chunks, source, diags, decls, use_cache=use_cache)
        return _PslFile(source, tuple(decls))


def parse_chunks(chunks: list[list[Token]], source: SourceText, diags: Diagnostics, decls: list,
                 *, use_cache: bool = True, shift: int = 0, record: list | None = None) -> None:
    """Parse top-level declarations, appending their nodes to ``decls``.

    ``shift`` is how far token positions lie from offsets in ``source.text`` (token
    positions, and so node positions, are what ``source.span`` maps).  With
    ``record``, each chunk adds ``(chunk, first decl, end decl, first diag, end diag)``
    indices into ``decls`` and ``diags.items``: what :mod:`.psl_reparse` keeps so
    that an edit elsewhere can reuse the declaration as it is.
    """
    tables = _tables()
    grammar = tables.grammar
    text = source.text
    builder = PslBuilder(source, diags)
    callbacks = tables.callbacks_for(builder)
    sizes = tables.sizes
    append = decls.append
    cache = _DECLS.data if use_cache else None
    groups = _GROUP_CACHE if use_cache else None
    items = diags.items
    code_of = tables.codes.__getitem__
    arrows = (tables.codes["LARROW"], tables.codes["LSQUIG"])
    for top in chunks:
        first_decl, first_diag = len(decls), len(items)
        work = [top]
        index = 0
        while index < len(work):
            chunk = work[index]
            index += 1
            codes = bytes(map(code_of, map(_types_of, chunk)))
            if arrows[0] in codes or arrows[1] in codes:
                chunk = _split_arrows(chunk)
                codes = bytes(map(code_of, map(_types_of, chunk)))
            if cache is not None:
                hit = cache.get(codes)
                if hit is not None:
                    _DECLS.hits += 1
                    program, too_deep = hit[1]
                    if too_deep:
                        _report_too_deep(chunk, source, diags)
                    else:
                        append(_replay(program, chunk, 0, callbacks, sizes)[-1])
                    continue
                _DECLS.misses += 1
            mark = len(items)
            log: list[int] = []
            try:
                value = _drive(tables, callbacks, chunk, codes, log, groups)
            except _ParseFailed as failed:
                del items[mark:]          # checks reported by half-built nodes
                _report_syntax_error(grammar, chunk, source, diags)
                rest = _recovery_point(chunk, failed.index, text, shift)
                if rest:
                    work[index:index] = _merge_split_names(split_declarations(chunk[rest:], STARTERS), text, shift)
                continue
            program = _program(log)
            too_deep = _depth(program, tables) > MAX_DEPTH
            if cache is not None and len(codes) <= CACHE_MAX_CHUNK:
                _DECLS.put(codes, len(codes) + 2 * len(program), (program, too_deep))
            if too_deep:
                del items[mark:]
                _report_too_deep(chunk, source, diags)
                continue
            append(value)
        if record is not None:
            record.append((top, first_decl, len(decls), first_diag, len(items)))


def _report_too_deep(chunk: list[Token], source: SourceText, diags: Diagnostics) -> None:
    diags.add(SYN_TOO_DEEP, f"{_describe(chunk)} nested more than {MAX_DEPTH} levels deep",
              source.span(chunk[0].start_pos))


_ARROW_SPLIT = {"LARROW": ("MINUS", "-"), "LSQUIG": ("TILDE", "~")}


def _split_arrows(chunk: list[Token]) -> list[Token]:
    """Read ``<-`` / ``<~`` as ``<`` followed by ``-`` / ``~`` where no arrow can be.

    The context-free lexer takes ``x <-1`` for the PAL arrow.  Outside test blocks
    there are no arrows at all; inside one, an arrow never sits within ``( )`` or
    ``[ ]``.  Everywhere else the token is split in two, so the expression parses
    with the ordinary precedence (``x <-(a + b) * c`` is ``x < ((-(a + b)) * c)``).
    """
    in_test = chunk[0].type == "ASSERT"
    depth = 0
    out: list[Token] = []
    for tok in chunk:
        kind = tok.type
        if kind == "LPAR" or kind == "LSQB":
            depth += 1
        elif kind == "RPAR" or kind == "RSQB":
            depth = max(0, depth - 1)
        elif kind in _ARROW_SPLIT and (depth or not in_test):
            second, text = _ARROW_SPLIT[kind]
            out.append(make_token("LT", "<", tok.start_pos))
            out.append(make_token(second, text, tok.start_pos + 1))
            continue
        out.append(tok)
    return out


# Keywords that start a declaration and, at the start of a line, are very unlikely
# to be anything else (`assert`, `type` and `audit` also begin lines inside
# bodies and policy objects; event keywords inside test blocks).
_RESYNC = frozenset({"USE", "POLICY", "TASK", "EXECUTE", "REQUEST", "RESPONSE", "ERROR", "SECURITY"})


def _recovery_point(chunk: list[Token], index: int, text: str, shift: int = 0) -> int:
    """Where to resume after a syntax error, or 0 to give up on the chunk.

    A declaration that lacks a closing brace swallows the declarations after it
    (the splitter counts braces).  When the automaton fails *at* a declaration
    keyword that begins a line (``response`` after ``request { grant (``), the
    declaration evidently ended early: the tokens from there on are split and
    parsed again, so one missing brace costs one diagnostic, not the rest of the
    file.
    """
    if index <= 0 or index >= len(chunk) or chunk[0].type == "ASSERT":
        return 0
    tok = chunk[index]
    if tok.type not in _RESYNC:
        return 0
    at = tok.start_pos - shift
    line_start = text.rfind("\n", 0, at) + 1
    if text[line_start:at].strip():
        return 0
    return index


def _report_syntax_error(grammar: Grammar, chunk, source, diags) -> None:
    tree = parse_tokens(grammar, chunk, source, diags, start="decl", what=_describe(chunk))
    if tree is not None:  # pragma: no cover - same table as the driver: cannot happen
        raise AssertionError("PSL driver and lark disagree on a declaration")
