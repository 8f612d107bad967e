"""``ksm fmt``: a token-stream formatter for PSL (``.psl``, ``.psl.in``) and ``.props`` files.

The text is lexed with the project's own lexer (:mod:`policy_lang.syntax.lexing`); the
white space and comments between tokens are read back from the text, so every comment
survives, and the file is printed again token by token (docs/formatting.md has the
style).  The layout rules only ever change white space:

* indentation is 4 spaces per open bracket (``{ [ (``; several opened on one line
  count once), a line that starts with a closer is at its opener's level;
  continuation lines of a top-level declaration get one more level (``.props``:
  ``where`` / ``unless`` lines two);
* one space around binary operators, after commas and around ``:``; none inside
  ``( )`` / ``[ ]``, around ``.`` or around a selector's ``=`` (``src=A``);
* the author's line breaks are kept (runs of blank lines become one blank line; no
  blank line right after ``{`` or before ``}``), plus: one top-level declaration per
  line, and a PSL block (``{ }`` of a binding, match, choice, arm, assert, ...) that
  spans several lines has its contents on lines of their own and its closing brace
  on a line of its own;
* trailing comments keep the author's spacing before them; block comments are
  re-indented as a whole (their text is kept);
* no trailing white space, one final newline.

Safety: a file that does not parse is left unchanged (its diagnostic is reported);
the result is re-lexed and must give the same tokens and the same comments, and
formatting it again must change nothing - otherwise the file is left unchanged and
the failure reported.  ``.psl.in`` templates: ``@NAME@`` placeholders are kept
verbatim (a line holding only a placeholder is kept exactly); a file with Jinja tags
(``{{ }}``, ``{% %}``, ``{# #}``) is left unchanged (a tag may stand for any text).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from policy_lang.diagnostics import Diagnostics
from policy_lang.source import SourceText

INDENT = "    "
SUFFIXES = (".psl", ".psl.in", ".props", ".props.in")

_PLACEHOLDER = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*@")
_JINJA = re.compile(r"\{\{|\{%|\{#")
_C_GAP = re.compile(r"//[^\n]*|/\*[\s\S]*?\*/")
_PROPS_GAP = re.compile(r"//[^\n]*|#[^\n]*|/\*[\s\S]*?\*/")

_OPENERS = {"LBRACE": "RBRACE", "LPAR": "RPAR", "LSQB": "RSQB"}
_CLOSERS = frozenset(_OPENERS.values())
_BINARY = frozenset({"IMPLIES", "OROR", "ANDAND", "EQEQ", "NOTEQ", "LE", "GE", "LT", "GT", "PLUS", "STAR",
                     "BAR", "AMP", "LARROW", "RSQUIG", "LSQUIG", "ARROW"})
_SELECTOR_KEYS = frozenset({"SRC", "DST", "ENDPOINT", "METHOD", "INTERFACE", "COMPONENT"})
_UNARY = frozenset({"BANG", "TILDE"})
# after these a '-' is a sign (unary), not a subtraction
_BEFORE_OPERAND = frozenset({"LPAR", "LSQB", "LBRACE", "COMMA", "COLON", "EQUAL", "MINUS", "BANG", "TILDE",
                             "RETURN"}) | _BINARY
_BLOCK_RULES = frozenset({"body", "block", "choice", "policy_object", "assert_block", "setup", "sequence",
                          "finally_"})


@dataclass
class Result:
    """What formatting one file gave: the new text (None: left unchanged) and why not."""

    path: str
    original: str
    text: str | None = None
    problems: list[str] = field(default_factory=list)   # parse diagnostics or formatter failures
    skipped: str = ""                                    # why the file was left as it is (not an error)

    @property
    def changed(self) -> bool:
        return self.text is not None and self.text != self.original


class FormatError(Exception):
    """The formatter could not keep its promises for a text (tokens, comments, idempotence)."""


# ------------------------------------------------------------------------- language

def language_of(path: str) -> str:
    name = path[:-3] if path.endswith(".in") else path
    return "props" if name.endswith(".props") else "psl"


def _grammar(language: str):
    if language == "props":
        from policy_lang.props import _grammar as props_grammar

        return props_grammar()
    from policy_lang.syntax.psl import _tables

    return _tables().grammar


def _starters(language: str) -> frozenset[str]:
    if language == "props":
        return frozenset({"PROPERTY", "CHANNEL"})
    from policy_lang.syntax.psl import STARTERS

    return STARTERS


def parse_problems(text: str, path: str, language: str) -> list[str]:
    """The syntax errors the project's parser reports for ``text`` (rendered)."""
    diags = Diagnostics()
    source = SourceText(path, text)
    if language == "props":
        from policy_lang.props import _parse

        _parse(source, diags)
    else:
        from policy_lang.syntax.psl import parse_psl

        parse_psl(source, diags)
    return [d.render() for d in diags.errors]


# --------------------------------------------------------------------------- lexing

@dataclass
class _Item:
    kind: str          # a token type, or "COMMENT"
    text: str
    start: int
    breaks: int        # newlines before it (0: same line; 2 or more: a blank line)
    spaces: int = 1    # for a trailing comment: the author's spaces before it
    record: bool = False   # a brace of a record (printed without inner spaces)


def _items(text: str, language: str) -> list[_Item]:
    """Tokens and comments in order, each with the line breaks in front of it."""
    from policy_lang.syntax.lexing import LexError

    grammar = _grammar(language)
    tokens: list = []
    try:
        grammar.lexer.scan_into(tokens, text)
    except LexError as err:
        raise FormatError(f"cannot lex at offset {err.pos}") from None
    gap_re = _PROPS_GAP if language == "props" else _C_GAP
    out: list[_Item] = []
    pos = 0
    for tok in [*tokens, None]:
        end = len(text) if tok is None else tok.start_pos
        gap = text[pos:end]
        last = 0
        for m in gap_re.finditer(gap):
            between = gap[last:m.start()]
            if between.strip():
                raise FormatError(f"unexpected text {between.strip()[:20]!r} between tokens")
            nl = between.count("\n")
            spaces = len(between) - len(between.rstrip(" \t")) if nl == 0 else 0
            out.append(_Item("COMMENT", m.group(), pos + m.start(), nl if (out or nl) else 1, max(spaces, 1)))
            last = m.end()
        between = gap[last:]
        if between.strip():
            raise FormatError(f"unexpected text {between.strip()[:20]!r} between tokens")
        if tok is not None:
            out.append(_Item(tok.type, tok.value, tok.start_pos, between.count("\n")))
            pos = tok.start_pos + len(tok.value)
    if out:
        out[0].breaks = 1
    return out


def _block_braces(text: str, language: str, records: set[int]) -> set[int]:
    """Offsets of the braces of PSL blocks, from lark trees of the declarations (those
    of records are added to ``records``); a declaration lark cannot parse on its own
    contributes none."""
    if language != "psl":
        return set()
    from lark import Token, Tree

    from policy_lang.syntax.lexing import lex, parse_tokens, split_declarations
    from policy_lang.syntax.psl import STARTERS, _merge_split_names

    grammar = _grammar(language)
    source = SourceText("<fmt>", text)
    found: set[int] = set()
    for chunk in _merge_split_names(split_declarations(lex(grammar, source, Diagnostics()), STARTERS), text):
        tree = parse_tokens(grammar, chunk, source, Diagnostics(), start="decl")
        if tree is None:
            continue
        for node in ([tree] if isinstance(tree, Tree) else []):
            stack = [node]
            while stack:
                n = stack.pop()
                for child in n.children:
                    if isinstance(child, Tree):
                        stack.append(child)
                    elif isinstance(child, Token) and child.type in ("LBRACE", "RBRACE"):
                        if n.data in _BLOCK_RULES:
                            found.add(child.start_pos)
                        elif n.data in ("record", "record_type"):
                            records.add(child.start_pos)
    return found


# ------------------------------------------------------------------------- printing

def _space(prev: _Item, cur: _Item, before_prev: _Item | None, language: str) -> str:
    p, c = prev.kind, cur.kind
    if c == "COMMENT":
        return " " * cur.spaces
    if p in ("LPAR", "LSQB") or c in ("RPAR", "RSQB", "COMMA"):
        return ""
    if p == "DOT" or c == "DOT":
        return ""
    if c == "EQUAL" and p in _SELECTOR_KEYS and (before_prev is None or before_prev.kind != "PROFILE"):
        return ""
    if p == "EQUAL" and before_prev is not None and before_prev.kind in _SELECTOR_KEYS:
        return ""
    if c == "COLON" and p == "EXECUTE":
        return ""
    if p == "LBRACE" and c == "RBRACE":
        return ""
    if c == "COLON" and language == "props":
        return ""
    if p in _UNARY or (p == "MINUS" and (before_prev is None or before_prev.kind in _BEFORE_OPERAND
                                         or before_prev.kind in _STATEMENT_END)):
        return ""
    if language == "props" and c in ("LPAR", "LSQB") and p in ("QNAME", "NAME"):
        return ""
    return " "


# tokens that end a statement or arm: a '-' after them starts a negative choice case
_STATEMENT_END = frozenset({"RBRACE"})


def _layout(items: list[_Item], text: str, language: str) -> None:
    """Adjust ``breaks`` for the rules beyond the author's own line breaks."""
    starters = _starters(language)
    records: set[int] = set()
    blocks = _block_braces(text, language, records)
    for it in items:
        it.record = language == "props" or it.start in records
    # match braces
    partner: dict[int, int] = {}
    stack: list[int] = []
    for i, it in enumerate(items):
        if it.kind in _OPENERS:
            stack.append(i)
        elif it.kind in _CLOSERS and stack:
            partner[stack.pop()] = i
    depth = 0
    name_after = frozenset({"EQUAL", "EDL", "USE"})
    prev_tok: _Item | None = None
    for i, it in enumerate(items):
        if it.kind == "COMMENT":
            continue
        if depth == 0 and it.kind in starters and prev_tok is not None and it.breaks == 0 \
                and prev_tok.kind not in name_after:
            it.breaks = 1
        if it.kind in _OPENERS:
            depth += 1
        elif it.kind in _CLOSERS:
            depth = max(0, depth - 1)
        prev_tok = it
    for i, j in partner.items():
        if items[i].kind != "LBRACE" or items[i].start not in blocks:
            continue
        if not any(x.breaks for x in items[i + 1:j + 1]):
            continue
        nxt = items[i + 1]
        if nxt.breaks == 0 and not (nxt.kind == "COMMENT" and nxt.text.startswith("//")) and i + 1 != j:
            nxt.breaks = 1
        if nxt.kind == "COMMENT" and nxt.breaks == 0 and i + 2 < j and items[i + 2].breaks == 0:
            items[i + 2].breaks = 1
        if items[j].breaks == 0:
            items[j].breaks = 1
        if j + 1 < len(items) and items[j + 1].breaks == 0 and items[j + 1].kind not in _CLOSERS | {"COMMA"} \
                and items[j + 1].kind != "COMMENT":
            items[j + 1].breaks = 1
    for i, it in enumerate(items):
        if it.breaks > 1:
            prev = items[i - 1] if i else None
            if prev is None or prev.kind in _OPENERS or it.kind in _CLOSERS:
                it.breaks = 1


def _reindent_block_comment(comment: str, old_col: int, new_col: int) -> str:
    lines = comment.split("\n")
    rest = lines[1:]
    delta = new_col - old_col
    if delta > 0:
        rest = [(" " * delta + ln) if ln.strip() else "" for ln in rest]
    elif delta < 0:
        if all(not ln.strip() or ln[:-delta].strip(" ") == "" for ln in rest):
            rest = [ln[-delta:] if ln.strip() else "" for ln in rest]
    return "\n".join([lines[0], *(ln.rstrip() for ln in rest)])


def _print(items: list[_Item], text: str, language: str) -> str:
    out: list[str] = []
    stack: list[int] = []          # indentation level of the line each open bracket is on
    level = 0
    prev: _Item | None = None
    before_prev: _Item | None = None
    starters = _starters(language)
    line_level = 0
    for it in items:
        if it.breaks or prev is None:
            if out:
                out[-1] = out[-1].rstrip(" \t")
                out.append("\n" * min(it.breaks, 2))
            if it.kind in _CLOSERS and stack:
                level = stack[-1]
            elif stack:
                level = stack[-1] + 1
            else:
                level = 0 if it.kind in starters or it.kind == "COMMENT" or prev is None else 1
                if language == "props" and it.kind in ("WHERE", "UNLESS"):
                    level = 2
            indent = INDENT * level
            line_level = level
            if it.kind == "COMMENT" and "\n" in it.text:
                old_col = it.start - (text.rfind("\n", 0, it.start) + 1)
                out.append(indent + _reindent_block_comment(it.text, old_col, len(indent)))
            else:
                out.append(indent + it.text)
        else:
            out.append(_space(prev, it, before_prev, language) + it.text)
        if it.kind != "COMMENT":
            if it.kind in _OPENERS:
                stack.append(line_level)
            elif it.kind in _CLOSERS and stack:
                stack.pop()
            before_prev, prev = prev, it
        elif prev is None:
            prev = it
    result = "".join(out).rstrip()
    return result + "\n" if result else ""


def _format_once(text: str, language: str) -> str:
    items = _items(text, language)
    if not items:
        return ""
    _layout(items, text, language)
    return _strip_trailing(_print(items, text, language), items)


def _strip_trailing(text: str, items: list[_Item]) -> str:
    """Trailing white space off every line, except inside a multi-line token (a ```regex``` text)."""
    if any(it.kind != "COMMENT" and "\n" in it.text for it in items):
        return text
    return "\n".join(line.rstrip(" \t") for line in text.split("\n"))


def _signature(text: str, language: str) -> tuple[list[tuple[str, str]], list[str]]:
    items = _items(text, language)
    toks = [(it.kind, it.text) for it in items if it.kind != "COMMENT"]
    comments = [" ".join(ln.strip() for ln in it.text.split("\n")) for it in items if it.kind == "COMMENT"]
    return toks, comments


# ------------------------------------------------------------------------ templates

def _protect(text: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Placeholders replaced by stand-ins: a whole-line placeholder by a line comment
    (the original line comes back exactly), an inline one by a name."""
    lines: dict[str, str] = {}
    names: dict[str, str] = {}
    out_lines = []
    for line in text.split("\n"):
        if _PLACEHOLDER.fullmatch(line.strip() or "-"):
            key = f"//KSMFMT_LINE_{len(lines)}_"
            lines[key] = line
            out_lines.append(key)
        else:
            out_lines.append(line)
    body = "\n".join(out_lines)

    def sub(m: re.Match) -> str:
        key = f"KSMFMT_NAME_{len(names)}_"
        names[key] = m.group()
        return key

    body = _PLACEHOLDER.sub(sub, body)
    return body, lines, names


def _restore(text: str, lines: dict[str, str], names: dict[str, str]) -> str:
    if lines:
        text = "\n".join(lines.get(ln.strip(), ln) for ln in text.split("\n"))
    for key, value in names.items():
        text = text.replace(key, value)
    return text


# ------------------------------------------------------------------------------ API

def format_text(text: str, path: str = "policy.psl") -> Result:
    """Format ``text`` (named ``path``, which picks the language); never raises for bad input."""
    res = Result(path, text)
    language = language_of(path)
    if "KSMFMT_" in text:
        res.skipped = "the text uses the formatter's reserved word KSMFMT_"
        return res
    if path.endswith(".in") and _has_jinja(text, language):
        res.skipped = "Jinja template tags ({{ }}, {% %}, {# #}): left unchanged"
        return res
    body, lines, names = _protect(text)
    problems = parse_problems(body, path, language)
    if problems:
        res.problems = problems
        return res
    try:
        once = _format_once(body, language)
        twice = _format_once(once, language)
        if twice != once:
            once = twice
            if _format_once(once, language) != once:
                raise FormatError("formatting is not stable")
        if _signature(once, language) != _signature(body, language):
            raise FormatError("formatting would change the tokens or comments")
        if parse_problems(once, path, language):
            raise FormatError("the formatted text does not parse")
    except FormatError as exc:
        res.problems = [f"{path}: error[FMT001]: cannot format safely: {exc}; file left unchanged"]
        return res
    res.text = _restore(once, lines, names)
    return res


def _has_jinja(text: str, language: str) -> bool:
    from policy_lang.comments import comment_ranges

    ranges = comment_ranges(text, "c")
    for m in _JINJA.finditer(text):
        if not any(a <= m.start() < b for a, b in ranges):
            return True
    return False


def format_file(path: Path) -> Result:
    """Format one file.  Read like every user file (``read_user_text``): a FIFO, a device
    or a huge file named by mistake is refused at once, never waited on or read whole."""
    from policy_lang.source import UserFileError, read_user_text

    try:
        text = read_user_text(path)
    except UserFileError as exc:
        res = Result(str(path), "")
        res.problems = [f"{path}: error[FMT002]: cannot read: {exc.reason}"]
        return res
    return format_text(text, str(path))


def collect(paths: list[str]) -> list[Path]:
    """The files to format: each file given, and every PSL/props file under each folder.

    Folders whose name starts with a dot (``.git``, ``.tito``...) are not searched: they
    hold tools' own files, and other tools use the ``.props`` suffix too (a real
    solution keeps a ``.tito/tito.props`` that is not a property file).  A file named
    on the command line is always formatted.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES)
                              and not any(part.startswith(".") for part in f.relative_to(p).parts[:-1])))
        else:
            out.append(p)
    seen: set[Path] = set()
    return [f for f in out if not (f in seen or seen.add(f))]


__all__ = ["Result", "SUFFIXES", "collect", "format_file", "format_text", "language_of"]
