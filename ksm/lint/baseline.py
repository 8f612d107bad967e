"""Baselines: findings a project has accepted for now, so only new ones fail the run.

Why identities and counts, not lines: a baseline must keep matching after lines are
added above a known finding, so findings are compared by
:func:`~ksm.lint.fingerprint.identity` (code, file relative to the solution root,
message without ``file:line`` references).  Several equal findings in one file are
recorded with a count: an entry with count 2 absorbs at most two of them, so a third
copy of a known problem is still reported as new.

The file is JSON, sorted and indented so that it diffs well under version control::

    {"version": 1, "tool": "ksm", "findings": [{"code": ..., "file": ..., "message": ..., "count": N}]}
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from policy_lang.diagnostics import Diagnostic, Diagnostics, Span, define_code
from policy_lang.literals import out_of_range_message, oversized_int_digits
from policy_lang.source import UserFileError, display_path, read_user_text

from .fingerprint import identity

BAS_UNREADABLE = define_code(
    "BAS001", "error", "baseline file is missing, unreadable or not JSON",
    "create it with `ksm lint --write-baseline FILE`, or fix the JSON at the position shown",
)
BAS_SHAPE = define_code(
    "BAS002", "error", "baseline file does not have the expected structure",
    'a baseline is {"version": 1, "tool": "ksm", "findings": [{"code", "file", "message", "count"}]}; '
    "regenerate it with `ksm lint --write-baseline FILE`",
)

VERSION = 1
Identity = tuple[str, str, str]


@dataclass
class Baseline:
    """Accepted findings: identity -> how many of them are accepted."""

    counts: Counter[Identity] = field(default_factory=Counter)
    path: str | None = None

    @classmethod
    def of(cls, findings: Iterable[Diagnostic], root: str, path: str | None = None) -> Baseline:
        return cls(Counter(identity(d, root) for d in findings), path)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def split(self, findings: Iterable[Diagnostic], root: str) -> tuple[list[Diagnostic], list[Diagnostic]]:
        """(new, known): findings beyond the baseline, and those it absorbs.

        Equal findings are matched in position order, so which copy counts as new is
        reproducible (the last ones in the file).  Both lists keep the input order.
        """
        findings = list(findings)
        left = Counter(self.counts)
        known_ids: set[int] = set()
        for i in sorted(range(len(findings)), key=lambda i: (*findings[i].sort_key(), findings[i].code)):
            key = identity(findings[i], root)
            if left[key] > 0:
                left[key] -= 1
                known_ids.add(i)
        new = [d for i, d in enumerate(findings) if i not in known_ids]
        known = [d for i, d in enumerate(findings) if i in known_ids]
        return new, known

    def to_json(self) -> dict[str, Any]:
        entries = sorted(self.counts.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2]))
        return {
            "version": VERSION,
            "tool": "ksm",
            "findings": [{"code": c, "file": f, "message": m, "count": n} for (c, f, m), n in entries if n > 0],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def write_baseline(findings: Iterable[Diagnostic], root: str, path: str | Path) -> Baseline:
    """Write the baseline that accepts exactly ``findings``; returns it."""
    baseline = Baseline.of(findings, root, str(path))
    Path(path).write_text(baseline.dumps(), encoding="utf-8")
    return baseline


def load_baseline(path: str | Path) -> tuple[Baseline | None, list[Diagnostic]]:
    """The baseline in ``path`` and the problems found reading it.

    None when the file cannot be used at all (missing, not JSON, not a baseline);
    an entry of the wrong shape is reported and skipped, the others still apply.
    """
    diags = Diagnostics()
    path = Path(path)
    shown = display_path(path)
    text = _read(path, shown, diags)
    if text is None:
        return None, list(diags)
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        diags.add(BAS_UNREADABLE, f"not valid JSON: {exc.msg}", Span(shown, exc.lineno, exc.colno))
        return None, list(diags)
    except _OversizedInt as exc:
        line, col = _line_col(text, max(0, text.find(exc.literal)))
        diags.add(BAS_UNREADABLE, out_of_range_message(exc.digits), Span(shown, line, col))
        return None, list(diags)
    except RecursionError:
        diags.add(BAS_UNREADABLE, "the JSON nests too deeply to be read", Span(shown, 1, 1))
        return None, list(diags)
    return _from_json(data, text, str(path), shown, diags), list(diags)


def _read(path: Path, shown: str, diags: Diagnostics) -> str | None:
    """The baseline's text through the shared reader (a FIFO or /dev/zero named as the
    baseline must not hang the run); every failure is BAS001, the baseline's own code."""
    try:
        return read_user_text(path)
    except UserFileError as exc:
        diags.add(BAS_UNREADABLE, exc.message(shown), Span(shown, exc.line, exc.column))
    return None


class _OversizedInt(ValueError):
    """A JSON integer too long to convert; json.loads gives no position, so the literal is kept."""

    def __init__(self, literal: str, digits: int):
        super().__init__(out_of_range_message(digits))
        self.literal, self.digits = literal, digits


def _parse_int(literal: str) -> int:
    """``int()`` for json.loads, refusing literals past 128 bits (Python itself fails past 4,300 digits)."""
    digits = oversized_int_digits(literal)
    if digits is not None:
        raise _OversizedInt(literal, digits)
    return int(literal)


def _from_json(data: Any, text: str, path: str, shown: str, diags: Diagnostics) -> Baseline | None:
    top = Span(shown, 1, 1)
    if not isinstance(data, dict):
        diags.add(BAS_SHAPE, "the top level must be an object", top)
        return None
    if data.get("version") != VERSION:
        diags.add(BAS_SHAPE, f"unsupported baseline version {data.get('version')!r} "
                             f"(this ksm reads version {VERSION})", top)
        return None
    if data.get("tool", "ksm") != "ksm":
        diags.add(BAS_SHAPE, f"a baseline of {data.get('tool')!r}, not of ksm", top)
        return None
    entries = data.get("findings")
    if not isinstance(entries, list):
        diags.add(BAS_SHAPE, "`findings` must be a list", top)
        return None
    positions: list[tuple[int, int]] | None = None      # found only when an entry is wrong
    counts: Counter[Identity] = Counter()
    for i, entry in enumerate(entries):
        problem = _entry_problem(entry)
        if problem:
            positions = _entry_positions(text) if positions is None else positions
            line, col = positions[i] if i < len(positions) else (1, 1)
            diags.add(BAS_SHAPE, f"finding {i + 1} {problem}", Span(shown, line, col))
            continue
        counts[(entry["code"], entry["file"], entry["message"])] += entry["count"]
    return Baseline(counts, path)


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "must be an object"
    for key in ("code", "file", "message"):
        if not isinstance(entry.get(key), str):
            return f"needs a text `{key}`"
    count = entry.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return "needs a positive whole `count`"
    return None


def _entry_positions(text: str) -> list[tuple[int, int]]:
    """(line, column) where each element of the top-level ``findings`` array starts.

    JSON errors carry positions but a wrong shape does not; a small scan of the
    (already valid) text finds where each entry is, so BAS002 points at it.
    """
    out: list[tuple[int, int]] = []
    depth, in_string, escaped = 0, False, False
    array_depth, expect_element, last_string = -1, False, ""
    string_start = 0
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                last_string = text[string_start:i]
            continue
        if ch.isspace() or ch == ":":
            continue
        if expect_element and ch != "]":
            out.append(_line_col(text, i))
        expect_element = depth == array_depth and ch == ","
        if ch == '"':
            in_string, string_start = True, i + 1
        elif ch in "[{":
            depth += 1
            if ch == "[" and depth == 2 and array_depth < 0 and last_string == "findings":
                array_depth, expect_element = depth, True
        elif ch in "]}":
            if depth == array_depth:
                return out
            depth -= 1
    return out


def _line_col(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)
