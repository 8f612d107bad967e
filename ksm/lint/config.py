"""Lint configuration: which rules run, at which severity, and what fails the run.

Read from the ``[lint]`` table of ``ksm.toml`` or from ``[tool.ksm.lint]`` in
``pyproject.toml`` (see :func:`load_config`); command-line options override the file
(:func:`merge_cli`).  A problem in the file is a diagnostic (CFG001-CFG004) pointing
at the key or value; :func:`load_config` still returns what the rest of the file
says, but ``ksm lint`` and ``ksm verify`` refuse to run on such a file (exit 2), so a
typo never silently turns a rule back on or off.
"""
from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from policy_lang.diagnostics import Diagnostic, Diagnostics, Severity, Span, define_code
from policy_lang.source import display_path

CFG_SYNTAX = define_code(
    "CFG001", "error", "configuration file is not valid TOML",
    "fix the TOML syntax at the position shown (https://toml.io)",
)
CFG_KEY = define_code(
    "CFG002", "error", "unknown configuration key, or a value of the wrong type",
    "lint keys: select, disable, severity, fail-on, baseline, timeout (see docs/lint.md); other tables: docs/cli.md",
)
CFG_CODE = define_code(
    "CFG003", "error", "unknown rule code in the configuration",
    "run `ksm codes` to list every code",
)
CFG_UNREADABLE = define_code(
    "CFG004", "error", "configuration file cannot be read",
    "check the path given with --config and the file's permissions",
)

#: ``fail-on`` values; ``never`` is kept as ``fail_on=None``.
FAIL_ON = {"error": Severity.ERROR, "warning": Severity.WARNING, "note": Severity.NOTE, "never": None}
_RANK = {Severity.NOTE: 0, Severity.WARNING: 1, Severity.ERROR: 2}

CONFIG_FILE = "ksm.toml"
PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class LintConfig:
    """``enable``: when not None, only these rule codes run (``select``).
    ``disable``: codes that never report.  ``severity``: per-code severity overrides.
    ``fail_on``: the lowest severity that makes ``ksm lint`` exit 1; None: findings never do.
    ``fail_on_given``: whether a file or the command line chose ``fail_on`` (``ksm verify``
    then keeps it; otherwise verify fails on errors only).
    ``baseline``: an absolute path to a baseline file whose findings do not fail.
    ``source``: the file the configuration came from (None: defaults), for messages.
    """

    enable: frozenset[str] | None = None
    disable: frozenset[str] = frozenset()
    severity: tuple[tuple[str, Severity], ...] = ()
    fail_on: Severity | None = Severity.WARNING
    fail_on_given: bool = False
    baseline: str | None = None
    source: str | None = None
    timeout_ms: int = 2_000

    def severity_of(self, code: str, default: Severity) -> Severity:
        for c, s in self.severity:
            if c == code:
                return s
        return default

    def enabled(self, code: str) -> bool:
        if code in self.disable:
            return False
        return self.enable is None or code in self.enable

    def fails(self, severity: Severity) -> bool:
        """Whether a finding of ``severity`` makes the run fail."""
        return self.fail_on is not None and _RANK[severity] >= _RANK[self.fail_on]


# ----------------------------------------------------------------------------- discovery

def find_config(start: Path) -> tuple[Path, tuple[str, ...]] | None:
    """The configuration file that applies to ``start`` and the table path inside it.

    Walks from ``start`` (a folder, or a file's folder) up through its parents; in
    each folder ``ksm.toml`` wins over ``pyproject.toml``, and a ``pyproject.toml``
    counts only when it has a ``[tool.ksm]`` table.  The walk stops at a folder
    holding ``.git`` (the repository root: a config above it belongs to someone else).
    """
    folder = start.absolute()
    if not folder.is_dir():
        folder = folder.parent
    while True:
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate, ("lint",)
        candidate = folder / PYPROJECT
        if candidate.is_file() and _mentions_tool_ksm(candidate):
            return candidate, ("tool", "ksm", "lint")
        if (folder / ".git").exists() or folder.parent == folder:
            return None
        folder = folder.parent


def _mentions_tool_ksm(pyproject: Path) -> bool:
    """Whether a pyproject.toml has a ``[tool.ksm]`` table (a broken one that names it counts too)."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        data = tomllib.loads(text)
    except ValueError:          # TOMLDecodeError, or an integer past Python's digit limit
        return re.search(r"tool\s*\.\s*ksm", text) is not None   # reported as CFG001 when read
    return isinstance(_section(data, ("tool", "ksm")), dict)


def load_config(start: Path, explicit: Path | None = None) -> tuple[LintConfig, list[Diagnostic]]:
    """The lint configuration for the solution at ``start`` and the problems found in it.

    ``explicit`` (``--config``) names the file to read (a ``ksm.toml``, or a
    ``pyproject.toml`` whose ``[tool.ksm.lint]`` is used); otherwise the file is found
    with :func:`find_config`.  Without a file, the defaults apply.
    """
    if explicit is not None:
        table = ("tool", "ksm", "lint") if Path(explicit).name == PYPROJECT else ("lint",)
        return _read(Path(explicit), table)
    found = find_config(Path(start))
    if found is None:
        return LintConfig(), []
    return _read(*found)


def read_toml(path: Path, shown: str, diags: Diagnostics) -> tuple[str, dict] | None:
    """(text, data) of a settings file, or None after reporting why it cannot be used
    (unreadable: CFG004; not TOML: CFG001 at the position tomllib names)."""
    text = _read_text(path, shown, diags)
    if text is None:
        return None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, col = _toml_error_position(exc, text)
        diags.add(CFG_SYNTAX, _toml_error_message(exc), Span(shown, line, col))
    except ValueError as exc:   # tomllib refuses integers of more than 4,300 digits this way
        diags.add(CFG_SYNTAX, f"a value cannot be read: {exc}", Span(shown, 1, 1))
    return None


def _read(path: Path, table: tuple[str, ...]) -> tuple[LintConfig, list[Diagnostic]]:
    diags = Diagnostics()
    shown = display_path(path)
    got = read_toml(path, shown, diags)
    if got is None:     # the defaults; the diagnostics make ksm lint and verify refuse to run
        unread = any(d.code == CFG_UNREADABLE for d in diags)
        return LintConfig(source=None if unread else shown), list(diags)
    text, data = got
    section = _section(data, table)
    reader = _Reader(_Locator(text, shown, table), diags, path.absolute().parent)
    if section is None:                     # a ksm.toml with other tables only: the defaults
        section = {}
    elif not isinstance(section, dict):
        reader.wrong((), "must be a table")
        section = {}
    return reader.config(section, shown), list(diags)


#: A configuration file larger than this is not one (and /dev/urandom never ends).
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _read_text(path: Path, shown: str, diags: Diagnostics) -> str | None:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG_BYTES:
            problem = "is not a regular file" if not stat.S_ISREG(info.st_mode) else "is too large"
            diags.add(CFG_UNREADABLE, f"cannot read {shown}: it {problem}", Span(shown, 1, 1))
            return None
        data = path.read_bytes()
    except FileNotFoundError:
        diags.add(CFG_UNREADABLE, f"configuration file not found: {shown}", Span(shown, 1, 1))
        return None
    except OSError as exc:
        diags.add(CFG_UNREADABLE, f"cannot read {shown}: {exc.strerror}", Span(shown, 1, 1))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        diags.add(CFG_SYNTAX, f"{shown} is not valid UTF-8 (byte 0x{data[exc.start]:02x})", Span(shown, line, col))
        return None


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _toml_error_position(exc: tomllib.TOMLDecodeError, text: str) -> tuple[int, int]:
    """(line, column) of a TOML error; Python 3.14 carries them, older ones only in the message."""
    line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line and col:
        return line, col
    m = _TOML_AT.search(str(exc))
    if m:
        return int(m.group(1)), int(m.group(2))
    if _TOML_AT_END.search(str(exc)):        # e.g. an unclosed array: point after the last character
        return text.count("\n") + 1, len(text) - text.rfind("\n")
    return 1, 1


def _toml_error_message(exc: tomllib.TOMLDecodeError) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return _TOML_AT_END.sub(" at the end of the file", _TOML_AT.sub("", msg))


def _section(data: Any, table: tuple[str, ...]) -> Any:
    """The value at the dotted ``table`` path, or None when some part is missing."""
    for key in table:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# ----------------------------------------------------------------------------- keys

#: Canonical key -> spellings accepted (kebab-case first, as the docs write them).
KEYS = {
    "select": ("select", "enable"),
    "disable": ("disable", "ignore"),
    "severity": ("severity",),
    "fail-on": ("fail-on", "fail_on"),
    "baseline": ("baseline",),
    "timeout": ("timeout",),
    "timeout-ms": ("timeout-ms", "timeout_ms"),     # the older spelling, in milliseconds
}
_SPELLING = {s: key for key, spellings in KEYS.items() for s in spellings}


def known_codes() -> list[str]:
    """Every code a configuration may name: front-end diagnostics and lint rules."""
    from policy_lang.diagnostics import catalogue

    from .catalogue import all_rules

    return sorted(set(catalogue()) | set(all_rules()))


class _Reader:
    """Validates one ``[lint]`` table into a :class:`LintConfig`, reporting as it goes."""

    def __init__(self, locator: _Locator, diags: Diagnostics, folder: Path):
        self.at = locator
        self.diags = diags
        self.folder = folder
        self._codes: set[str] | None = None

    def config(self, section: dict, shown: str) -> LintConfig:
        values: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for written, value in section.items():
            key = _SPELLING.get(written)
            if key is None:
                self._unknown_key(written)
                continue
            if key in seen:
                self.wrong((written,), f"repeats `{seen[key]}` (the same setting under another name)")
                continue
            seen[key] = written
            parsed = getattr(self, "_" + key.replace("-", "_"))(written, value)
            if parsed is not None:
                values[key] = parsed
        return LintConfig(
            enable=values.get("select"),
            disable=values.get("disable", frozenset()),
            severity=values.get("severity", ()),
            fail_on=FAIL_ON[values.get("fail-on", "warning")],
            fail_on_given="fail-on" in values,
            baseline=values.get("baseline"),
            source=shown,
            timeout_ms=values.get("timeout", values.get("timeout-ms", LintConfig.timeout_ms)),
        )

    # --- reporting

    def wrong(self, path: tuple[str, ...], problem: str, value: str | None = None) -> None:
        """CFG002 at the key ``path`` (or at ``value`` after it); ``()`` is the table itself."""
        line, col = self.at.find(path, value)
        name = ".".join(path or self.at.table)
        self.diags.add(CFG_KEY, f"`{name}` {problem}", Span(self.at.file, line, col))

    def _unknown_key(self, written: str) -> None:
        close = difflib.get_close_matches(written, list(_SPELLING), n=1)
        line, col = self.at.find((written,))
        hint = f"did you mean `{close[0]}`?" if close else None
        self.diags.add(CFG_KEY, f"unknown key `{written}` in the lint configuration",
                       Span(self.at.file, line, col), hint=hint)

    def _check_code(self, key: str, code: str, *, as_key: bool = False) -> bool:
        if self._codes is None:
            self._codes = set(known_codes())
        if code in self._codes:
            return True
        close = difflib.get_close_matches(code.upper(), sorted(self._codes), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? (run `ksm codes` to list every code)" if close else None
        line, col = self.at.find((key, code)) if as_key else self.at.find((key,), code)
        self.diags.add(CFG_CODE, f"unknown rule code `{code}` in `{key}`", Span(self.at.file, line, col), hint=hint)
        return False

    # --- one parser per key: each returns the parsed value, or None after reporting

    def _codes_list(self, key: str, value: Any) -> frozenset[str] | None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.wrong((key,), "must be a list of rule codes, e.g. [\"LNT001\", \"PSL005\"]")
            return None
        return frozenset(code for code in value if self._check_code(key, code))

    _select = _codes_list
    _disable = _codes_list

    def _severity(self, key: str, value: Any) -> tuple[tuple[str, Severity], ...] | None:
        if not isinstance(value, dict):
            self.wrong((key,), "must be a table of CODE = \"error\" | \"warning\" | \"note\"")
            return None
        out = []
        for code, level in value.items():
            if not self._check_code(key, code, as_key=True):
                continue
            if level not in ("error", "warning", "note"):
                self.wrong((key, code), "must be \"error\", \"warning\" or \"note\"",
                           level if isinstance(level, str) else None)
                continue
            out.append((code, Severity(level)))
        return tuple(sorted(out))

    def _fail_on(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or value not in FAIL_ON:
            self.wrong((key,), "must be \"error\", \"warning\", \"note\" or \"never\"",
                       value if isinstance(value, str) else None)
            return None
        return value

    def _baseline(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.wrong((key,), "must be a path (relative to the configuration file's folder)")
            return None
        return os.path.normpath(self.folder / value)

    def _timeout(self, key: str, value: Any) -> int | None:
        """Seconds in the file (as on the command line), milliseconds inside."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86_400:
            self.wrong((key,), "must be a positive number of seconds, e.g. 2 or 0.5")
            return None
        return max(1, round(value * 1000))

    def _timeout_ms(self, key: str, value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.wrong((key,), "must be a positive whole number of milliseconds")
            return None
        return value


# ----------------------------------------------------------------------------- positions

class _Locator:
    """Best-effort positions of keys and values (tomllib reports none for valid files).

    A key path such as ``("severity", "LNT999")`` is looked for under the deepest
    table header that exists (``[lint.severity]``, else ``[lint]``), one key after
    another; without any header (dotted keys, inline tables) it is looked for from the
    top of the file.  When a step fails the previous step's position is used, so a
    diagnostic always points somewhere sensible.
    """

    def __init__(self, text: str, file: str, table: tuple[str, ...]):
        self.text = text
        self.file = file
        self.table = table

    def find(self, path: tuple[str, ...], value: str | None = None) -> tuple[int, int]:
        """(line, column) of the key at ``path`` under the table, or of ``value`` quoted after it."""
        offset = self._path(path)
        if value is not None:
            m = re.compile(rf"\"{re.escape(value)}\"|'{re.escape(value)}'").search(self.text, offset)
            offset = m.start() if m else offset
        line_start = self.text.rfind("\n", 0, offset) + 1
        return self.text.count("\n", 0, offset) + 1, offset - line_start + 1

    def _path(self, path: tuple[str, ...]) -> int:
        for depth in range(len(path), -1, -1):
            start, end = self._table(self.table + path[:depth])
            if start >= 0:
                return self._keys(path[depth:], start, end)
        return self._keys(self.table[-1:] + path, 0, len(self.text))

    def _keys(self, keys: tuple[str, ...], offset: int, end: int) -> int:
        for key in keys:
            found = self._key(key, offset, end)
            if found < 0:
                break
            offset = found
        return offset

    def _table(self, path: tuple[str, ...]) -> tuple[int, int]:
        """(offset of the header, end of the table) of ``[a.b.c]``; (-1, -1) when absent."""
        name = r"[ \t]*\.[ \t]*".join(re.escape(p) for p in path)
        header = re.compile(rf"^[ \t]*\[[ \t]*{name}[ \t]*\][ \t]*(?:#.*)?$", re.M).search(self.text)
        if header is None:
            return -1, -1
        following = re.compile(r"^[ \t]*\[", re.M).search(self.text, header.end())
        return header.start(), following.start() if following else len(self.text)

    def _key(self, key: str, start: int, end: int) -> int:
        """Offset of ``key =`` (bare, quoted, or the last part of a dotted key) in [start, end), or -1."""
        k = re.escape(key)
        m = re.compile(rf"(?:^|(?<=[{{,.\s]))[ \t]*(?:{k}|\"{k}\"|'{k}')[ \t]*[=.]", re.M).search(self.text, start, end)
        if m is None:
            return -1
        return m.start() + len(m.group()) - len(m.group().lstrip(" \t"))


# ----------------------------------------------------------------------------- command line

def merge_cli(
    config: LintConfig,
    *,
    select: Iterable[str] | None = None,
    disable: Iterable[str] | None = None,
    fail_on: Severity | str | None = None,
    baseline: str | Path | None = None,
    timeout_ms: int | None = None,
) -> LintConfig:
    """``config`` with the command line's options applied (None: option not given).

    ``select`` replaces the file's selection; ``disable`` adds to the file's (a
    command line cannot quietly re-enable what the project turned off).  Codes may be
    comma-separated (``--select LNT001,LNT002``).  ``fail_on`` is a severity name or
    ``"never"``.  ``baseline`` is relative to the current folder.
    """
    changes: dict[str, Any] = {}
    if select is not None:
        changes["enable"] = frozenset(_split_codes(select))
    if disable is not None:
        changes["disable"] = config.disable | frozenset(_split_codes(disable))
    if fail_on is not None:
        if isinstance(fail_on, Severity):
            changes["fail_on"] = fail_on
        elif fail_on in FAIL_ON:
            changes["fail_on"] = FAIL_ON[fail_on]
        else:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
        changes["fail_on_given"] = True
    if baseline is not None:
        changes["baseline"] = os.path.abspath(baseline)
    if timeout_ms is not None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        changes["timeout_ms"] = timeout_ms
    return replace(config, **changes) if changes else config


def _split_codes(values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        values = [values]
    return [code.strip() for v in values for code in v.split(",") if code.strip()]
