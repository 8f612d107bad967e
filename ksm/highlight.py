"""Pygments lexers for the policy languages: PSL (and ``.psl.in`` templates), IDL,
CDL, EDL and the ``.props`` property language.

Registered as Pygments plugins (entry points ``pygments.lexers`` in pyproject.toml),
so ``pygmentize -l psl``, ``pygments.lexers.get_lexer_by_name("psl")`` and rich's
``Syntax(code, "psl")`` find them once the package is installed.  They can also be
used directly: ``rich.syntax.Syntax(code, lexer=PslLexer())``.

The token rules follow the grammars in policy_lang/grammars: a dotted name is one
token, and a keyword is only a keyword as a whole undotted word (``message.method``
is a name, not the selector key ``method``).  Nothing a lexer meets is an ``Error``
token: highlighting must not shout at a half-typed file.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

__all__ = ["PslLexer", "IdlLexer", "CdlLexer", "EdlLexer", "PropsLexer"]

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
QNAME = rf"{_ID}(?:\.{_ID})*"
_WS = r"(\s+)"


def _kw(*words: str) -> str:
    """A regex for whole undotted keywords: not after '.', not before '.name'."""
    return r"(?<![.\w])(?:" + "|".join(words) + r")(?![\w])(?!\.[A-Za-z_])"


_C_COMMENTS = [
    (r"//[^\n]*", Comment.Single),
    (r"/\*[\s\S]*?(?:\*/|\Z)", Comment.Multiline),
]

_NUMBERS = [
    (r"0[xX][0-9A-Fa-f]+", Number.Hex),
    (r"0[bB][01]+", Number.Bin),
    (r"0[oO][0-7]+", Number.Oct),
    (r"[0-9]+", Number.Integer),
]

_STRING_STATE = [
    (r'\\.', String.Escape),
    (r'[^"\\\n]+', String.Double),
    (r'"', String.Double, "#pop"),
    (r"\n", Whitespace, "#pop"),  # unterminated: the string ends with the line
    (r"\\", String.Double),
]

_SELECTOR_KEYS = ("src", "dst", "endpoint", "method", "interface", "component")
_EVENTS = ("execute", "request", "response", "error", "security")
_BUILTINS = ("message", "src_sid", "dst_sid")

# `src=kl.core.Core`, `method=Ping`: the key, '=', and the selected name.
_SELECTOR = [
    (rf"(?<![.\w])(src|dst|component|interface)(\s*)(=)(?!=)(\s*)({QNAME})",
     bygroups(Keyword.Pseudo, Whitespace, Operator, Whitespace, Name.Class)),
    (rf"(?<![.\w])(endpoint)(\s*)(=)(?!=)(\s*)({QNAME})",
     bygroups(Keyword.Pseudo, Whitespace, Operator, Whitespace, Name.Label)),
    (rf"(?<![.\w])(method)(\s*)(=)(?!=)(\s*)({QNAME})",
     bygroups(Keyword.Pseudo, Whitespace, Operator, Whitespace, Name.Function)),
    (_kw(*_SELECTOR_KEYS) + r"(?=\s*=(?!=))", Keyword.Pseudo),
]


class PslLexer(RegexLexer):
    """KasperskyOS Policy Specification Language, with PAL tests (``assert`` blocks)
    and the template forms of ``security.psl.in``: CMake placeholders ``@NAME@`` and
    Jinja ``{{ ... }}`` / ``{% ... %}`` / ``{# ... #}``."""

    name = "PSL"
    aliases = ["psl", "kos-psl"]
    filenames = ["*.psl", "*.psl.in"]
    mimetypes = ["text/x-psl"]
    url = "https://support.kaspersky.com/help/KCE/1.1/en-US/psl_syntax.htm"
    priority = 0.2  # above ParaSail, which also claims *.psl

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            include("comments"),
            include("template"),
            (r"```regex[\s\S]*?(?:```|\Z)", String.Regex),
            (r'"', String.Double, "string"),
            include("numbers"),
            # declarations
            (rf"(?<![.\w])(execute)(\s*)(:)(\s*)({QNAME})",
             bygroups(Keyword.Namespace, Whitespace, Punctuation, Whitespace, Name.Class)),
            (rf"(?<![.\w])(use)(\s+)(EDL)(\s+)({QNAME})",
             bygroups(Keyword.Namespace, Whitespace, Keyword.Namespace, Whitespace, Name.Class)),
            (rf"(?<![.\w])(use)(\s+)({QNAME})",
             bygroups(Keyword.Namespace, Whitespace, Name.Namespace)),
            (rf"(?<![.\w])(task)(\s+)(class)(\s+)({QNAME})",
             bygroups(Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace, Name.Class)),
            (rf"(?<![.\w])(policy)(\s+)(object)(\s+)({QNAME})(\s*)(:)(\s*)({QNAME})",
             bygroups(Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace,
                      Name.Variable, Whitespace, Punctuation, Whitespace, Name.Class)),
            (rf"(?<![.\w])(type)(\s+)({QNAME})(?=\s*=)",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (rf"(?<![.\w])(audit)(\s+)(profile)(\s+)({QNAME})",
             bygroups(Keyword, Whitespace, Keyword, Whitespace, Name.Label)),
            include("selectors"),
            (_kw("true", "false"), Keyword.Constant),
            (_kw("_"), Name.Builtin.Pseudo),
            (_kw("use", "EDL"), Keyword.Namespace),
            (_kw("task", "class", "policy", "object", "type", "config"), Keyword.Declaration),
            (_kw(*_EVENTS, "match", "choice", "audit", "profile", "default",
                 "grant", "deny", "any", "assert", "setup", "sequence", "finally"), Keyword),
            # `message` also at the head of `message.req.method`
            (r"(?<![.\w])(?:message|src_sid|dst_sid)\b", Name.Builtin),
            (rf"{QNAME}(?=\s*\()", Name.Function),
            (QNAME, Name),
            (r"==>|->|<-|~>|<~|==|!=|<=|>=|&&|\|\||[<>+\-*|&~!=]", Operator),
            (r"[{}()\[\],:;.]", Punctuation),
            # stray characters (a half-typed file); not an Error token
            (r"[^\s\w]", Text),
        ],
        "comments": _C_COMMENTS,
        "numbers": _NUMBERS,
        "selectors": _SELECTOR,
        "template": [
            (rf"@{_ID}@", Comment.Preproc),
            (r"\{\{[\s\S]*?(?:\}\}|\Z)", Comment.Preproc),
            (r"\{%[\s\S]*?(?:%\}|\Z)", Comment.Preproc),
            (r"\{#[\s\S]*?(?:#\}|\Z)", Comment.Preproc),
        ],
        "string": _STRING_STATE,
    }

    def analyse_text(text):
        score = 0.0
        if "use EDL" in text or "execute:" in text.replace(" ", ""):
            score += 0.6
        if "request src=" in text or "response src=" in text:
            score += 0.3
        return min(score, 1.0)


_IDL_TYPES = ("UInt8", "UInt16", "UInt32", "UInt64", "SInt8", "SInt16", "SInt32",
              "SInt64", "Handle")


class IdlLexer(RegexLexer):
    """KasperskyOS Interface Definition Language (``*.idl``)."""

    name = "KasperskyOS IDL"
    aliases = ["idl", "kos-idl"]  # Pygments resolves plain `idl` to its own IDLLexer first
    filenames = ["*.idl"]
    mimetypes = ["text/x-kos-idl"]
    priority = 0.2  # above OMG IDL, which also claims *.idl

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            include("comments"),
            include("numbers"),
            (rf"(?<![.\w])(package|import)(\s+)({QNAME})",
             bygroups(Keyword.Namespace, Whitespace, Name.Namespace)),
            (rf"(?<![.\w])(struct|union|interface)(\s+)({_ID})",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (_kw("package", "import"), Keyword.Namespace),
            (_kw("typedef", "struct", "union", "const", "interface"), Keyword.Declaration),
            # a direction, not a parameter called `in` / `error`: a type follows
            (_kw("in", "out", "error") + r"(?=\s+[A-Za-z_])", Keyword),
            (_kw(*_IDL_TYPES), Keyword.Type),
            (_kw("string", "bytes", "sequence", "array", "handle") + r"(?=\s*<)", Keyword.Type),
            (rf"{_ID}(?=\s*\()", Name.Function),
            (QNAME, Name),
            (r"\*\*|<<|>>|[|^&+\-*/%~=]", Operator),
            (r"[{}()\[\]<>,:;.]", Punctuation),
            (r"[^\s\w]", Text),
        ],
        "comments": _C_COMMENTS,
        "numbers": _NUMBERS,
    }

    def analyse_text(text):
        if "package " in text and ("interface" in text or "typedef" in text):
            return 0.5
        return 0.0


class _ComponentsLexer(RegexLexer):
    """Shared rules of CDL and EDL: headers, `security`, and `endpoints` /
    `components` / `interfaces` blocks of `name : type` entries."""

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            include("comments"),
            # an entry first: inside a block, section words are ordinary names
            (rf"({_ID})(\s*)(:)(\s*)({QNAME})",
             bygroups(Name.Variable, Whitespace, Punctuation, Whitespace, Name.Class)),
            (rf"(?<![.\w])(task)(\s+)(class)(\s+)({QNAME})",
             bygroups(Keyword.Declaration, Whitespace, Keyword.Declaration, Whitespace, Name.Class)),
            (rf"(?<![.\w])(component|entity)(\s+)({QNAME})",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (rf"(?<![.\w])(security)(\s+)({QNAME})",
             bygroups(Keyword, Whitespace, Name.Class)),
            (_kw("component", "task", "class", "entity"), Keyword.Declaration),
            (_kw("security", "endpoints", "components", "interfaces", "interface"), Keyword),
            (QNAME, Name),
            (r"[{}(),:;.]", Punctuation),
            (r"[^\s\w]", Text),
        ],
        "comments": _C_COMMENTS,
    }


class CdlLexer(_ComponentsLexer):
    """KasperskyOS Component Description Language (``*.cdl``)."""

    name = "KasperskyOS CDL"
    aliases = ["cdl", "kos-cdl"]
    filenames = ["*.cdl"]
    mimetypes = ["text/x-kos-cdl"]
    priority = 0.2  # above CapDL, which also claims *.cdl


class EdlLexer(_ComponentsLexer):
    """KasperskyOS Entity (process class) Description Language (``*.edl``)."""

    name = "KasperskyOS EDL"
    aliases = ["edl", "kos-edl"]
    filenames = ["*.edl"]
    mimetypes = ["text/x-kos-edl"]


class PropsLexer(RegexLexer):
    """The property language of ``ksm prove`` (``*.props``)."""

    name = "ksm properties"
    aliases = ["ksm-props", "kos-props"]
    filenames = ["*.props"]
    mimetypes = ["text/x-ksm-props"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            include("comments"),
            (r'"', String.Double, "string"),
            include("numbers"),
            (rf"(?<![.\w])(property)(\s+)({QNAME})",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (rf"(?<![.\w])(sid)(\s*)(\()(\s*)({QNAME})",
             bygroups(Name.Builtin, Whitespace, Punctuation, Whitespace, Name.Class)),
            include("selectors"),
            (_kw("true", "false"), Keyword.Constant),
            (_kw("property", "channel"), Keyword.Declaration),
            (_kw("never", "always", "reachable", "invariant", "state", "flow", "unless",
                 "via", "where", *_EVENTS), Keyword),
            (_kw("sid"), Name.Builtin),
            (r"(?<![.\w])(?:message|src_sid|dst_sid)\b", Name.Builtin),
            (rf"{QNAME}(?=\s*\()", Name.Function),
            (QNAME, Name),
            (r"==>|->|==|!=|<=|>=|&&|\|\||[<>+\-*|&~!=]", Operator),
            (r"[{}()\[\],:;.]", Punctuation),
            (r"[^\s\w]", Text),
        ],
        "comments": _C_COMMENTS,
        "numbers": _NUMBERS,
        "selectors": _SELECTOR,
        "string": _STRING_STATE,
    }
