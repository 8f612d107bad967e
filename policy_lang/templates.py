"""Build-time template expansion with a line map back to the user's file.

Real solutions ship ``security.psl.in`` and ``init.yaml.in``.  Two engines touch them
before the policy compiler sees plain text, and :func:`expand_template` applies both,
in the order the build does:

1. CMake ``configure_file``: every ``@NAME@`` (``NAME`` = ``[A-Za-z_][A-Za-z0-9_+]*``,
   so ``@INIT_Client_ENTITY_CONNECTIONS+@`` is one placeholder) becomes
   ``defines[NAME]``.  A placeholder without a value becomes nothing, as CMake does,
   and is reported (``TPL001``, warning) at its own line and column.  A value may
   span several lines; every line it produces maps to the placeholder's line.
   An ``@`` that is not part of an ``@NAME@`` form (an e-mail address in a comment)
   is plain text.
2. The Jinja dialect of KasperskyOS 1.4 ("Ginger", inside ``nk-psl-gen-c``):
   ``{% if %}``/``{% elif %}``/``{% else %}``, ``{% for %}``, ``{% macro %}``,
   ``{{ expr }}``, ``{# comment #}``, rendered by a sandboxed jinja2 environment.
   It runs only when the text (after step 1) contains ``{%``, ``{{`` or ``{#``.

Choices made where the SDK documentation is silent
--------------------------------------------------
* **Values are strings.**  ``defines`` come from CMake or ``-D NAME=VALUE`` and stay
  strings in Jinja, so ``{% if TARGET == "qemu" %}`` compares as written.  Their
  *truth value* follows CMake, because these flags usually are CMake variables:
  ``""``, ``0``, ``OFF``, ``NO``, ``FALSE``, ``N``, ``IGNORE``, ``NOTFOUND`` and
  ``*-NOTFOUND`` (any case) are false in ``{% if FLAG %}``; everything else is true.
  Non-string values passed by library callers (``True``, ``3``) are given to Jinja
  unchanged.
* **Undefined variables.**  ``{{ X }}`` with no value for ``X`` expands to nothing and
  is reported (``TPL002``, warning) once per line.  In a test (``{% if X %}``,
  ``X == "a"``, ``X | default(...)``, ``{% for i in X %}``) an undefined ``X`` is
  simply false/empty without a warning: that is how optional feature flags are
  written.  Arithmetic on an undefined value is an evaluation error (``TPL004``).
* **Whitespace.**  A line holding only ``{% %}`` tags and ``{# #}`` comments leaves
  no line behind (``lstrip_blocks`` plus a token filter that removes the newline of
  such a line only), so the expanded text has the shape the author sees: kept lines
  keep their numbers, dropped lines vanish, and a line of text ending in a tag is
  never joined to the next.  This differs from plain Jinja only in blank lines,
  which PSL and YAML ignore.  ``{%- -%}`` whitespace control works as in Jinja.
* **Line map.**  Every output line maps to the original line its text came from:
  lines of a ``{% for %}`` body map to the body, lines of a macro to the macro's
  body, lines printed by ``{{ expr }}`` (a multi-line value) to the line of the
  ``{{``.  This is done by a token filter that puts an invisible marker into the
  template's *literal text* only (never inside a tag, so strings in tags and the
  ``{%- -%}`` whitespace control are untouched), and reading the markers back out of
  the rendered text.  A captured block (``{% set x %}...{% endset %}``) therefore
  holds markers too; comparing such a capture with a literal string is not supported.
* **Errors do not stop the pipeline.**  On a syntax error (``TPL003``) or an error
  while rendering (``TPL004``, ``TPL005``) the result is the text after step 1 with
  every ``{% %}``, ``{{ }}`` and ``{# #}`` tag blanked (newlines inside tags kept,
  so the line map stays exact).  All literal text of every branch survives, so
  later stages still parse and report what they can; duplicates from two branches
  of one ``if`` may add follow-up diagnostics, but nothing that looks like template
  syntax reaches a parser.
* **Resource limits.**  The sandbox already forbids attribute tricks; in addition
  ``range`` is budgeted (:data:`MAX_RANGE_TOTAL` elements per expansion), ``*`` and
  ``**`` refuse to build huge values, and the output stops at
  :data:`MAX_OUTPUT_CHARS` characters (``TPL005``).
"""
from __future__ import annotations

import bisect
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.ext import Extension
from jinja2.lexer import Token
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from .comments import comment_ranges, language_of
from .diagnostics import Diagnostics, Span, define_code
from .perf import may_leave_cycles
from .sdk_catalogue import placeholder_summary
from .source import MAX_FILE_BYTES, SourceText

TPL_UNDEFINED_PLACEHOLDER = define_code(
    "TPL001", "warning", "@VAR@ or ${VAR} placeholder has no value",
    "give the variable a value (-D VAR=VALUE or --defines FILE) or fix its spelling; "
    "alone on its line it expands to nothing, as CMake configure_file does, and inside a line it stands as its name",
)
TPL_UNDEFINED_VARIABLE = define_code(
    "TPL002", "warning", "undefined template variable",
    "give the variable a value among the template defines (or fix its spelling); "
    "{{ ... }} printed nothing. Write {{ X | default('...') }} if it is optional",
)
TPL_SYNTAX = define_code(
    "TPL003", "error", "template syntax error",
    "fix the {% %} / {{ }} / {# #} tag; until then every template tag of this file "
    "is ignored and the text of all branches is kept",
)
TPL_EVALUATION = define_code(
    "TPL004", "error", "template evaluation error",
    "the template could not be rendered with the given defines; until it is fixed "
    "every template tag of this file is ignored and the text of all branches is kept",
)
TPL_SDK_PLACEHOLDER = define_code(
    "TPL006", "note", "placeholder the SDK build fills has no value",
    "the KasperskyOS SDK's CMake fills it (system programs' entities, channels, arguments); what it would "
    "add is treated as outside the solution. Give it a value with -D to check that part too",
)
TPL_GENERATOR_EXPRESSION = define_code(
    "TPL007", "warning", "CMake generator expression left unevaluated",
    "$<...> is evaluated by the build, not by configure_file; alone on its line it expands to nothing, "
    "inside a line it stands as a plain word",
)
TPL_TOO_LARGE = define_code(
    "TPL005", "error", "template expansion too large",
    "a loop or operator in the template produces far more text than a policy or init "
    "file can hold; check loop bounds and repeated strings",
)

#: CMake placeholder form.  ``+`` is allowed in names (``INIT_X_ENTITY_CONNECTIONS+``).
PLACEHOLDER_RE = re.compile(r"@([A-Za-z_][A-Za-z0-9_+]*)@")
#: Every CMake construct: ``@NAME@``, ``${NAME}``, and the start of a ``$<...>`` generator expression.
_CMAKE_RE = re.compile(r"@([A-Za-z_][A-Za-z0-9_+]*)@|\$\{([A-Za-z_][A-Za-z0-9_.+-]*)\}|\$<")
_JINJA_OPENERS = ("{%", "{{", "{#")
_NEEDS_RE = re.compile(r"@[A-Za-z_][A-Za-z0-9_+]*@|\$\{[A-Za-z_][A-Za-z0-9_.+-]*\}|\$<|\{[%{#]")
# Stands for ``{`` inside comments while Jinja renders, so a ``// {{ x }}`` stays text.
_COMMENT_BRACE = "\ue000"

#: Output limit for one expansion (characters), the same bound as for an input file.
MAX_OUTPUT_CHARS = MAX_FILE_BYTES
#: Total number of elements ``range()`` may produce during one expansion.
MAX_RANGE_TOTAL = 1_000_000

# Invisible line markers: "\x00<line>\x01" before literal text, and the weaker
# "\x00<line>\x02" before a ``{{``, used only for a line that holds no literal text
# (so text a macro prints maps to the macro body, a bare multi-line value to its
# ``{{``).  The characters cannot occur in a real policy or YAML file; any that do
# are replaced before rendering.
_MARK_OPEN, _MARK_CLOSE, _WEAK_CLOSE = "\x00", "\x01", "\x02"
_MARK_RE = re.compile(r"\x00(\d+)([\x01\x02])")
_TAG_RE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL)
_OPEN_TAG_RE = re.compile(r"\{[%{#][^\n]*")
_LINE_END_RE = re.compile(r"[ \t]*\n")

_CMAKE_FALSE = frozenset({"", "0", "OFF", "NO", "FALSE", "N", "IGNORE", "NOTFOUND"})


def needs_expansion(text: str, language: str = "c") -> bool:
    """True when ``text`` holds a CMake placeholder, or a Jinja tag that is not prose in a comment.

    ``language`` (``c`` or ``yaml``, see :func:`policy_lang.comments.language_of`) says
    how comments are written: a ``// {{ x }}`` comment in a plain ``security.psl`` is a
    comment, not a template (a ``{% %}`` tag counts wherever it is).
    """
    comments: list[tuple[int, int]] | None = None
    for m in _NEEDS_RE.finditer(text):
        if m.group()[0] in "@$" or m.group() == "{%":
            return True
        if comments is None:
            comments = comment_ranges(text, language)
        if not _inside(comments, m.start()):
            return True
    return False


def expand_template(
    text: str,
    path: str,
    defines: Mapping[str, str],
    diags: Diagnostics,
    *,
    jinja: bool = True,
    language: str | None = None,
) -> SourceText:
    """Expand CMake placeholders, then Jinja tags; map every line back.

    ``path`` is the original file name used in diagnostics and in the result;
    ``language`` (default: from ``path``) says how its comments are written.
    ``jinja=False`` applies only the CMake step (for files the build does not give
    to the Jinja preprocessor).  Never raises for bad input: problems become
    diagnostics (see the module docstring for the error fallback).
    """
    language = language or language_of(path)
    if not needs_expansion(text, language):
        return SourceText(path, text)
    orig_lines = text.split("\n")
    lines, origin, unset = _substitute_placeholders(text, orig_lines, path, defines, diags, language)
    stand_ins = frozenset(e.stand_in for e in unset.values() if e.inline)
    stage1 = "\n".join(lines)
    if not (jinja and any(o in stage1 for o in _JINJA_OPENERS)):
        return SourceText(path, stage1, tuple(origin), stand_ins, frozenset(unset))
    out_text, out_origin = _render_jinja(stage1, origin, orig_lines, path, defines, diags, language)
    return SourceText(path, out_text, tuple(out_origin), stand_ins, frozenset(unset))


def _inside(ranges: list[tuple[int, int]], offset: int) -> bool:
    i = bisect.bisect_right(ranges, (offset, sys.maxsize)) - 1
    return i >= 0 and ranges[i][0] <= offset < ranges[i][1]


# ----------------------------------------------------------------------------- CMake

@dataclass
class _Unset:
    """Every use of one placeholder without a value in one file."""

    span: Span
    written: str                 # as first written: @NAME@, ${NAME} or $<...>
    uses: int = 0
    inline: bool = False
    stand_in: str = ""


def _generator_end(line: str, start: int) -> int:
    """End offset of the ``$<...>`` generator expression at ``start`` (nesting counted), or -1."""
    depth, i = 0, start
    while i < len(line):
        if line.startswith("$<", i):
            depth += 1
            i += 2
            continue
        if line[i] == ">":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _substitute_placeholders(
    text: str, orig_lines: list[str], path: str, defines: Mapping[str, Any], diags: Diagnostics, language: str
) -> tuple[list[str], list[int], dict[str, _Unset]]:
    """The CMake step: ``@NAME@``, ``${NAME}`` and ``$<...>``, line by line.

    A construct without a value that fills a line on its own (``@INIT_EXTERNAL_ENTITIES@``)
    or is glued to a word (``client@N@``) expands to nothing, as CMake does.  Any other
    becomes a stand-in, its own name (``client:@ROOTFS_ENTITY@`` reads
    ``client:ROOTFS_ENTITY``), because nothing there would change the syntax around it
    (``client:`` is a YAML key, ``path:`` has no value, ``use EDL a.`` is a syntax error).  Each construct is
    reported once per file, at its first use; uses inside comments are not reported.
    """
    comments = comment_ranges(text, language) if ("#" in text or "/" in text) else []
    unset: dict[str, _Unset] = {}
    out: list[str] = []
    origin: list[int] = []
    base = 0
    for lineno, line in enumerate(orig_lines, start=1):
        line_base, base = base, base + len(line) + 1
        if "@" not in line and "$" not in line:
            out.append(line)
            origin.append(lineno)
            continue
        pieces: list[str] = []
        pos = 0
        for m in _CMAKE_RE.finditer(line):
            if m.start() < pos:
                continue
            if m.group(0) == "$<":
                end = _generator_end(line, m.start())
                if end < 0:
                    continue
                key, value = line[m.start():end], None
            else:
                end = m.end()
                key = m.group(1) or m.group(2)
                value = None if key not in defines else "" if defines[key] is None else str(defines[key])
            pieces.append(line[pos:m.start()])
            pos = end
            if value is not None:
                pieces.append(value.replace("\r\n", "\n").replace("\r", "\n"))
                continue
            stand_in = "" if _needs_nothing(line, m.start(), end) else _stand_in(key)
            pieces.append(stand_in)
            if comments and _inside(comments, line_base + m.start()):
                continue
            entry = unset.get(key)
            if entry is None:
                entry = unset[key] = _Unset(Span(path, lineno, m.start() + 1, lineno, end + 1), line[m.start():end])
            entry.uses += 1
            if stand_in:
                entry.inline, entry.stand_in = True, stand_in
        if not pieces:
            out.append(line)
            origin.append(lineno)
            continue
        pieces.append(line[pos:])
        produced = "".join(pieces).split("\n")
        out.extend(produced)
        origin.extend([lineno] * len(produced))
    for key, entry in unset.items():
        _report_unset(key, entry, diags)
    return out, origin, unset


def _needs_nothing(line: str, start: int, end: int) -> bool:
    """Whether an unset construct can simply vanish: it fills its line, or is glued to a word.

    ``client@X@`` still reads as a word without it; ``client:@X@``, ``path: @X@`` and
    ``helloworld.@X@`` would not, so those get a stand-in.
    """
    rest = line[end:].lstrip()
    if not line[:start].strip() and (not rest or rest.startswith(("#", "//", "/*"))):
        return True  # the only code on its line (a comment may follow)
    before, after = line[start - 1:start], line[end:end + 1]
    return bool(before and (before.isalnum() or before == "_")) or bool(after and (after.isalnum() or after == "_"))


def _stand_in(key: str) -> str:
    """The neutral text an unset construct leaves inside a line: its name as a plain word."""
    if key.startswith("$<"):
        return re.sub(r"\W+", "_", key[2:-1]).strip("_") or "GENERATOR_EXPRESSION"
    return key.rstrip("+")


def _report_unset(key: str, entry: _Unset, diags: Diagnostics) -> None:
    uses = f" ({entry.uses} uses in this file)" if entry.uses > 1 else ""
    became = f"it stands as {entry.stand_in} where it is inside a line" if entry.inline else "it expands to nothing"
    if key.startswith("$<"):
        diags.add(TPL_GENERATOR_EXPRESSION, f"{key} is evaluated by the build{uses}; {became}", entry.span)
        return
    sdk = placeholder_summary(key)
    if sdk is not None:
        diags.add(TPL_SDK_PLACEHOLDER, f"{entry.written} is filled by the SDK build ({sdk}){uses}; {became}", entry.span)
        return
    diags.add(TPL_UNDEFINED_PLACEHOLDER, f"{entry.written} has no value{uses}; {became}", entry.span)


# ----------------------------------------------------------------------------- Jinja

class _Define(str):
    """A define's string value with CMake's idea of true and false."""

    __slots__ = ()

    def __bool__(self) -> bool:
        up = self.strip().upper()
        return not (up in _CMAKE_FALSE or up.endswith("-NOTFOUND"))


class _LineMarks(Extension):
    """Token filter: drop tag-only lines and mark where each piece of text came from.

    *Tag-only lines.*  A line that holds nothing but ``{% %}`` tags and comments (and
    blanks) leaves no line behind: the newline that ends it is removed.  Unlike
    jinja's ``trim_blocks`` this never joins a line of text to the next one
    (``use EDL a.B {% endif %}`` keeps its newline).

    *Markers.*  A marker goes at the start of every literal-text token and after
    every newline inside one (except a final newline: what follows it is not known
    here); a weak marker goes before every ``{{`` so that a line holding only
    printed values is attributed to the line of the ``{{``.  Markers never enter a
    tag.
    """

    def filter_stream(self, stream):  # type: ignore[override]
        content = False  # the current template line has literal text or a {{ }}
        tagged = False  # ... and has held a {% %} tag or a comment
        prev_data = False
        for tok in stream:
            if tok.type == "data":
                value, lineno = tok.value, tok.lineno
                if prev_data:  # two texts in a row: a comment or raw tag vanished between
                    tagged = True
                if tagged and not content:
                    m = _LINE_END_RE.match(value)
                    if m:
                        value, lineno = value[m.end():], lineno + 1
                if "\n" in value:
                    content, tagged = bool(value.rsplit("\n", 1)[1].strip()), False
                else:
                    content = content or bool(value.strip())
                prev_data = True
                if value:
                    yield Token(lineno, "data", _mark_data(value, lineno))
                continue
            prev_data = False
            if tok.type == "variable_begin":
                content = True
                yield Token(tok.lineno, "data", f"{_MARK_OPEN}{tok.lineno}{_WEAK_CLOSE}")
            elif tok.type == "block_begin":
                tagged = True
            yield tok


def _mark_data(value: str, lineno: int) -> str:
    parts = value.split("\n")
    out = [f"{_MARK_OPEN}{lineno}{_MARK_CLOSE}{parts[0]}"]
    for k, part in enumerate(parts[1:], start=1):
        if k == len(parts) - 1 and part == "":
            out.append("")
        else:
            out.append(f"{_MARK_OPEN}{lineno + k}{_MARK_CLOSE}{part}")
    return "\n".join(out)


class _RecordingUndefined(jinja2.ChainableUndefined):
    """Undefined that prints as nothing and records where it was printed.

    Tests (``__bool__``, ``==``, iteration, ``default``) stay silent; only turning
    the value into text records it, in the sink of the expansion running in this
    thread (one class for all expansions: a class made per expansion is a reference
    cycle, left to the cyclic collector).
    """

    __slots__ = ()

    def __str__(self) -> str:
        _sinks.current.append((self._undefined_message, _template_line(sys._getframe(1))))
        return ""

    def __html__(self) -> str:  # pragma: no cover - autoescape is off
        return str(self)


_sinks = threading.local()


def _template_line(frame) -> int | None:
    """Template line of the innermost frame that runs compiled template code."""
    while frame is not None:
        tmpl = frame.f_globals.get("__jinja_template__")
        if tmpl is not None:
            return tmpl.get_corresponding_lineno(frame.f_lineno)
        frame = frame.f_back
    return None


class _Env(SandboxedEnvironment):
    """Sandbox that also refuses to build huge values with ``*`` and ``**``."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):  # type: ignore[override]
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and not isinstance(n, bool):
                    if len(seq) * n > MAX_OUTPUT_CHARS:
                        raise SecurityError("value too large: repetition would exceed the output limit")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 4096:
                raise SecurityError("value too large: exponent over 4096")
        return super().call_binop(context, operator, left, right)


def _budgeted_range():
    left = [MAX_RANGE_TOTAL]

    def budget_range(*args: Any):
        r = range(*args)
        left[0] -= len(r)
        if left[0] < 0:
            raise SecurityError(f"range() produced more than {MAX_RANGE_TOTAL} elements in total")
        return r

    return budget_range


def _render_jinja(
    stage1: str,
    origin1: list[int],
    orig_lines: list[str],
    path: str,
    defines: Mapping[str, Any],
    diags: Diagnostics,
    language: str = "c",
) -> tuple[str, list[int]]:
    # Jinja's environment, templates and whatever a template builds (macros, loops)
    # hold reference cycles: this load must not end with gc.freeze() (policy_lang.perf).
    may_leave_cycles()
    sink: list[tuple[str, int | None]] = []
    env = _Env(
        keep_trailing_newline=True,
        lstrip_blocks=True,
        autoescape=False,
        undefined=_RecordingUndefined,
        extensions=[_LineMarks],
    )
    env.globals["range"] = _budgeted_range()
    outer_sink = getattr(_sinks, "current", None)
    _sinks.current = sink
    try:
        return _render_in(env, sink, stage1, origin1, orig_lines, path, defines, diags, language)
    finally:
        _sinks.current = outer_sink
        env.extensions.clear()      # extension <-> environment: the cycles jinja leaves in every expansion


def _render_in(env: _Env, sink: list, stage1: str, origin1: list[int], orig_lines: list[str], path: str,
               defines: Mapping[str, Any], diags: Diagnostics, language: str) -> tuple[str, list[int]]:
    source = _mask_comment_tags(stage1.translate({ord(c): "\ufffd" for c in (_MARK_OPEN, _MARK_CLOSE, _WEAK_CLOSE)}),
                                language)

    def orig_of(line: int | None) -> int:
        if line is None or not origin1:
            return 1
        return origin1[min(max(line, 1), len(origin1)) - 1]

    def tag_column(oline: int) -> int:
        text = orig_lines[oline - 1] if 0 < oline <= len(orig_lines) else ""
        found = [i for i in (text.find(o) for o in _JINJA_OPENERS) if i >= 0]
        return min(found) + 1 if found else 1

    def fail(code: str, message: str, span: Span) -> tuple[str, list[int]]:
        diags.add(code, message, span)
        return _blank_tags(stage1), list(origin1)

    try:
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        where = _syntax_culprit(stage1, exc.message or "", exc.lineno)
        if where is not None:
            span = Span(path, orig_of(where[0]), where[1])
        else:
            oline = orig_of(exc.lineno)
            span = Span(path, oline, tag_column(oline))
        return fail(TPL_SYNTAX, f"template syntax error: {exc.message}", span)
    except Exception as exc:  # lexer/compiler failures that are not syntax errors
        return fail(TPL_SYNTAX, f"template cannot be compiled: {exc}", Span(path, 1, 1))

    try:
        return _generate(template, sink, stage1, origin1, orig_lines, path, defines, diags, fail, orig_of, tag_column)
    finally:
        # template <-> the namespace its code runs in: clear it once the text is out.
        template.root_render_func.__globals__.clear()


def _generate(template, sink, stage1, origin1, orig_lines, path, defines, diags, fail, orig_of, tag_column):
    too_large = f"template expansion exceeds {MAX_OUTPUT_CHARS} characters"
    variables = {k: _Define(v) if isinstance(v, str) else v for k, v in defines.items()}
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS * 2:  # markers at most about double the text
                return fail(TPL_TOO_LARGE, too_large, Span(path, 1, 1))
            chunks.append(chunk)
    except RecursionError:
        return fail(TPL_EVALUATION, "template recursion too deep", Span(path, 1, 1))
    except Exception as exc:  # anything the template itself raised while rendering
        oline = orig_of(_traceback_template_line(exc))
        code = TPL_TOO_LARGE if isinstance(exc, SecurityError) and "too large" in str(exc) else TPL_EVALUATION
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return fail(code, f"template evaluation failed: {message}", Span(path, oline, tag_column(oline)))

    text, lines1 = _strip_markers("".join(chunks))
    text = text.replace(_COMMENT_BRACE, "{")
    if len(text) > MAX_OUTPUT_CHARS:
        return fail(TPL_TOO_LARGE, too_large, Span(path, 1, 1))

    seen: set[tuple[str, int]] = set()
    for message, tline in sink:
        oline = orig_of(tline)
        if (message, oline) in seen:
            continue
        seen.add((message, oline))
        diags.add(
            TPL_UNDEFINED_VARIABLE,
            f"{message}; {{{{ }}}} printed nothing",
            Span(path, oline, _name_column(orig_lines, oline, message)),
        )
    return text, [orig_of(line) for line in lines1]


def _mask_comment_tags(text: str, language: str) -> str:
    """``text`` with every ``{{`` and ``{#`` inside a comment hidden from Jinja (same length).

    A ``// {{ x }}`` in a comment is prose, not a value to print.  ``{% %}`` block tags
    stay live even in a comment: ``use EDL a.B {% if X %}// note{% endif %}`` puts the
    comment itself under a condition, which is what its author meant.
    """
    if "{{" not in text and "{#" not in text:
        return text
    text = text.replace(_COMMENT_BRACE, "\ufffd")
    parts, pos = [], 0
    for start, end in comment_ranges(text, language):
        chunk = text[start:end]
        if "{{" in chunk or "{#" in chunk:
            parts += [text[pos:start], chunk.replace("{{", _COMMENT_BRACE + "{").replace("{#", _COMMENT_BRACE + "#")]
            pos = end
    return "".join(parts) + text[pos:] if parts else text


def _traceback_template_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _name_column(orig_lines: list[str], oline: int, message: str) -> int:
    """Column of the undefined name on its line (falls back to the first ``{{``)."""
    text = orig_lines[oline - 1] if 0 < oline <= len(orig_lines) else ""
    m = re.search(r"'([^']+)' is undefined", message)
    if m:
        found = re.search(r"(?<![A-Za-z0-9_])" + re.escape(m.group(1)) + r"(?![A-Za-z0-9_])", text)
        if found:
            return found.start() + 1
    i = text.find("{{")
    return i + 1 if i >= 0 else 1


def _strip_markers(rendered: str) -> tuple[str, list[int]]:
    """Remove markers and give each output line the line it came from.

    A line takes its first strong marker, else its first weak one, else the last
    marker seen before it (the continuation of a multi-line printed value).  A final
    empty line (after the last newline) takes the last line seen.
    """
    out: list[str] = []
    lines: list[int] = []
    current = 1
    for raw in rendered.split("\n"):
        marks = _MARK_RE.findall(raw) if _MARK_OPEN in raw else []
        if not marks:
            lines.append(current)
            out.append(raw)
            continue
        strong = [int(n) for n, kind in marks if kind == _MARK_CLOSE]
        lines.append(strong[0] if strong else int(marks[0][0]))
        current = int(marks[-1][0])
        out.append(_MARK_RE.sub("", raw))
    return "\n".join(out), lines


_BLOCK_KEYWORDS = frozenset({"if", "for", "macro", "call", "filter", "block", "with", "autoescape", "raw"})
_BLOCK_TAG_RE = re.compile(r"\{%[-+]?\s*(\w+)")


def _syntax_culprit(text: str, message: str, line: int) -> tuple[int, int] | None:
    """(line, column) of the tag a syntax error is really about, when jinja's line is not.

    Jinja reports an unterminated ``{{``/``{%``/``{#`` where the text runs out, and a
    block left open at the last line.  The culprit is the first unterminated tag (if
    it starts on or before the reported line), else, at the end of the template, the
    innermost block still open.  Other errors are where jinja says they are.
    """
    masked = _TAG_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    opener = re.search(r"\{[%{#]", masked)
    if opener is not None and _line_col(text, opener.start())[0] <= line:
        return _line_col(text, opener.start())
    if "end of template" not in message:
        return None
    stack: list[int] = []
    for m in _BLOCK_TAG_RE.finditer(text):
        word = m.group(1)
        if word in _BLOCK_KEYWORDS:
            stack.append(m.start())
        elif word.startswith("end") and stack:
            stack.pop()
    return _line_col(text, stack[-1]) if stack else None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _blank_tags(text: str) -> str:
    """``text`` with every template tag removed, newlines inside tags kept."""
    def blank(m: re.Match[str]) -> str:
        return "\n" * m.group(0).count("\n")

    text = _TAG_RE.sub(blank, text)
    return _OPEN_TAG_RE.sub("", text)  # an unterminated tag: drop it to the end of its line


__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_RANGE_TOTAL",
    "PLACEHOLDER_RE",
    "expand_template",
    "needs_expansion",
]
