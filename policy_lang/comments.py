"""Where the comments of a PSL/EDL/CDL/IDL or YAML text are.

Two stages need to know: template expansion (a ``{{ x }}`` inside a comment is not a
template tag, and a placeholder there deserves no warning) and suppression comments
(``ksm: disable=...``).  Both read the same tokenizers from here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Tokens of C-style text that are not code to skip over: double-quoted text literals
# (single-line, ``\"`` escapes: a `//` inside one is not a comment), line comments
# and block comments.  Loops unrolled so the engine never backtracks per character.
C_TOKEN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|//[^\n]*|/\*[\s\S]*?(?:\*/|\Z)')
_YAML_SPECIAL = re.compile(r"""[#"']""")
_YAML_BLOCK_SCALAR = re.compile(r"(?:^|[:?-])[ \t]*[|>][-+0-9]*$")
_YAML_LEAD = re.compile(r"[ \t]*(?:-[ \t]+)*")


@dataclass(frozen=True, slots=True)
class Comment:
    """One comment: ``start``/``end`` offsets of the whole comment, ``body`` the text inside it."""

    start: int
    end: int
    body_start: int
    body_end: int


def language_of(path: str) -> str:
    """``yaml`` for init files (``init.yaml``, ``x.yaml.in``, ``.yml``), ``c`` for PSL, EDL, CDL, IDL and props."""
    name = path[:-3] if path.endswith(".in") else path
    return "yaml" if name.endswith((".yaml", ".yml")) else "c"


def comment_ranges(text: str, language: str) -> list[tuple[int, int]]:
    """(start, end) offsets of every comment in ``text``, in order (``language``: c or yaml)."""
    if language == "yaml":
        return [(c.start, c.end) for c in yaml_comments(text)] if "#" in text else []
    if "/" not in text:
        return []
    return [(m.start(), m.end()) for m in C_TOKEN.finditer(text) if text.startswith("/", m.start())]


def yaml_comments(text: str) -> list[Comment]:
    """``#`` comments, leaving out ``#`` in quoted scalars, in block scalars and inside words."""
    out: list[Comment] = []
    quote: str | None = None        # a quoted scalar continued from an earlier line
    block_parent: int | None = None  # indentation a block scalar's lines must exceed
    pos = 0
    for line in text.split("\n"):
        base, pos = pos, pos + len(line) + 1
        if block_parent is not None:
            if not line.strip() or len(line) - len(line.lstrip(" ")) > block_parent:
                continue
            block_parent = None
        i, quote = _yaml_skip_quote(line, 0, quote)
        comment_at = len(line)
        while quote is None:
            m = _YAML_SPECIAL.search(line, i)
            if m is None:
                break
            j = m.start()
            ch = line[j]
            if ch == "#":
                if j == 0 or line[j - 1] in " \t":
                    comment_at = j
                    out.append(Comment(base + j, base + len(line), base + j + 1, base + len(line)))
                    break
                i = j + 1
            elif _starts_scalar(line, j):
                i, quote = _yaml_skip_quote(line, j + 1, ch)
            else:
                i = j + 1
        if quote is None:
            block_parent = _block_scalar_parent(line[:comment_at].rstrip())
    return out


def _yaml_skip_quote(line: str, i: int, quote: str | None) -> tuple[int, str | None]:
    """Past the closing ``quote`` from ``i``: (offset after it, None), or (len, quote) if it stays open."""
    if quote is None:
        return i, None
    while True:
        j = line.find(quote, i)
        if j < 0:
            return len(line), quote
        if quote == '"':
            backslashes = len(line[i:j]) - len(line[i:j].rstrip("\\"))
            if backslashes % 2:
                i = j + 1
                continue
            return j + 1, None
        if line.startswith("''", j):          # '' is an escaped quote in single quotes
            i = j + 2
            continue
        return j + 1, None


def _starts_scalar(line: str, j: int) -> bool:
    """Whether a quote at ``j`` opens a quoted scalar (and is not inside a plain one)."""
    before = line[:j].rstrip()
    if not before or before[-1] in "[{,":
        return True
    return before[-1] in ":-?" and line[j - 1] in " \t"


def _block_scalar_parent(content: str) -> int | None:
    """For a line that opens a ``|`` or ``>`` block scalar, the indentation its lines must exceed."""
    if not content or content[-1] not in "|>-+0123456789" or not _YAML_BLOCK_SCALAR.search(content):
        return None
    lead = _YAML_LEAD.match(content).group()
    if content[len(lead):len(lead) + 1] in ("|", ">"):
        dash = lead.rfind("-")
        return dash if dash >= 0 else len(lead)
    return len(lead)
