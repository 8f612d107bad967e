"""Diagnostics: the one error currency of the front end.

Every problem found in a user's file becomes a :class:`Diagnostic` with a file, a
line, a column, a stable code and a hint.  Library code never prints and never
raises for bad *input*; it appends to a :class:`Diagnostics` collector so that a
single run reports every problem (a user fixing CI wants the whole list, not the
first item).  Only the CLI turns diagnostics into text and exit codes.

Codes are stable identifiers users can grep for, suppress and look up in
``docs/diagnostics.md``.  Each module that reports a code declares it with
:func:`define_code` at import time, so the catalogue lives next to the check that
emits it, while :func:`catalogue` still gives the documentation test one place to
look.  Code families (the prefix says which stage found the problem):

* ``SRC`` reading files (size, encoding, missing files)
* ``TPL`` build-time templates (``@VAR@``, ``{% if %}``)
* ``SYN`` syntax of any language (lark errors mapped to positions)
* ``INC`` ``use`` / ``import`` resolution (cycles, escapes, missing files)
* ``YML`` init.yaml structure
* ``IDL`` interface definitions (types, constants, methods)
* ``CMP`` components and process classes (CDL/EDL)
* ``PSL`` policy semantics (names, selectors, message paths, objects)
* ``SOL`` solution-level consistency (instances, channels, execute interface)
* ``PRP`` property files (``*.props``: syntax, process references, patterns, conditions)
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class Span(NamedTuple):
    """A position in a user's *original* file (1-based line and column).

    Template expansion may move text around; :class:`policy_lang.source.SourceText`
    maps positions back before a span is built, so a span always points at what the
    user wrote.  (A named tuple: the resolver builds one per model element, and a
    tuple is several times cheaper to create than a frozen dataclass.)
    """

    file: str
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_json(self) -> dict:
        d = {"file": self.file, "line": self.line, "column": self.column}
        if self.end_line:
            d["end_line"] = self.end_line
            d["end_column"] = self.end_column
        return d


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    severity: Severity
    title: str
    hint: str


_CATALOGUE: dict[str, CodeInfo] = {}


def define_code(code: str, severity: Severity | str, title: str, hint: str) -> str:
    """Register a diagnostic code; returns the code so modules can keep a constant.

    Re-registering the same code with the same meaning is harmless (module reloads);
    a conflicting definition is a programming error and fails loudly at import.
    """
    sev = Severity(severity)
    info = CodeInfo(code, sev, title, hint)
    old = _CATALOGUE.get(code)
    if old is not None and old != info:
        raise ValueError(f"diagnostic code {code} defined twice with different meanings")
    _CATALOGUE[code] = info
    return code


def catalogue() -> dict[str, CodeInfo]:
    """Every code known once all front-end modules are imported."""
    import policy_lang.loader  # noqa: F401  (imports every module that defines codes)
    import policy_lang.props  # noqa: F401  (property files: not imported by the loader)
    import policy_lang.suppressions  # noqa: F401  (suppression comments: SUP codes)

    return dict(sorted(_CATALOGUE.items()))


def code_info(code: str) -> CodeInfo:
    return _CATALOGUE[code]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    hint: str = ""

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        text = f"{where}{self.severity.value}[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "location": self.span.to_json() if self.span else None,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple:
        """File, line, column; a template diagnostic (TPL) goes first on its line, because
        an unset template value is the root cause of the parse errors after it there."""
        s = self.span
        if not s:
            return ("", 0, 0)
        return (s.file, s.line, 0 if self.code.startswith("TPL") else s.column)


@dataclass
class Diagnostics:
    """Collector passed down the pipeline; order of arrival is kept."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        code: str,
        message: str,
        span: Span | None,
        hint: str | None = None,
        severity: Severity | None = None,
    ) -> Diagnostic:
        info = _CATALOGUE.get(code)
        if info is None:
            raise KeyError(f"undefined diagnostic code {code}")
        diag = Diagnostic(
            code=code,
            severity=severity or info.severity,
            message=message,
            span=span,
            hint=info.hint if hint is None else hint,
        )
        self.items.append(diag)
        return diag

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def codes(self) -> list[str]:
        return [d.code for d in self.items]

    def sorted(self) -> list[Diagnostic]:
        """Stable order for output: by file and position, unlocated ones first."""
        return sorted(self.items, key=Diagnostic.sort_key)

    def render(self) -> str:
        return "\n".join(d.render() for d in self.sorted())

    def to_json(self) -> list[dict]:
        return [d.to_json() for d in self.sorted()]

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


# Codes that belong to no single stage.
SRC_NOT_FOUND = define_code(
    "SRC001", "error", "file not found",
    "check the path, or add the folder that holds it with -I DIR",
)
SRC_TOO_LARGE = define_code(
    "SRC002", "error", "file too large",
    "policy and interface files are small; a file this size is probably not one (limit: 16 MiB)",
)
SRC_DECODE = define_code(
    "SRC003", "error", "file is not valid UTF-8 text",
    "save the file as UTF-8",
)
SRC_UNREADABLE = define_code(
    "SRC004", "error", "file cannot be read",
    "check the file's permissions and that it is a regular file",
)
