"""What every ``ksm`` subcommand shares: option types, the solution options, output.

Why one module: the conventions a user relies on across subcommands (one spelling per
option, one meaning per exit code, output that survives ``| head``, JSON documents that
name their schema) are easiest to keep when there is exactly one place that does each.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from policy_lang import LoadOptions, Severity, Solution, load

from ..excerpt import excerpt as _excerpt

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

#: Version of every JSON document the CLI prints; a document names its schema as
#: ``"schema": "ksm-<command>/<version>"`` (docs/schemas/<command>.schema.json).
SCHEMA_VERSION = 1


class UsageError(Exception):
    """A mistake on the command line or in an argument file: exit 2 with one line."""


class Parser(argparse.ArgumentParser):
    """argparse with the usage error the rest of ksm uses (exit 2, ``ksm: error: ...``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"ksm: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# ----------------------------------------------------------------------------- option types

def _number(text: str, kind: Callable[[str], Any], what: str) -> Any:
    if len(text) > 30:          # also keeps int() clear of Python's 4,300-digit limit
        raise argparse.ArgumentTypeError(f"{what} expected, got {text[:20]}... ({len(text)} characters)")
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} expected, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what} expected, got {text!r}")
    return value


def seconds(text: str) -> float:
    """``--timeout SECONDS``: a positive, finite number of seconds (fractions allowed).

    Until issue 16 some commands took milliseconds here, so a value that only makes
    sense in milliseconds gets a warning rather than a silent three-hour limit."""
    value = _number(text, float, "a number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    if value >= 1000:
        print(f"ksm: warning: --timeout is in seconds: {text} s is {value / 3600:.1f} hours "
              f"(for {value:g} ms write --timeout {value / 1000:g})", file=sys.stderr)
    return value


def _retired_timeout_ms(text: str) -> float:
    raise argparse.ArgumentTypeError("was replaced by --timeout SECONDS (for 2000 ms write --timeout 2)")


def add_retired_timeout_ms(p: argparse.ArgumentParser) -> None:
    """``--timeout-ms`` as lint took it before: a usage error that names the new option."""
    p.add_argument("--timeout-ms", type=_retired_timeout_ms, help=argparse.SUPPRESS)


def positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def count(text: str) -> int:
    """A whole number >= 0 (depths, walks, seeds)."""
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def define(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not name or not name.replace("_", "a").replace("+", "a").isalnum():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value if sep else "1"


def defines_file(path: str) -> dict[str, str]:
    """NAME=VALUE lines of a defines file; a malformed line is a usage error with its line number."""
    text = read_argument_file(path, argparse.ArgumentTypeError)
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, value = define(line)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"{path}:{n}: expected NAME=VALUE, got {line[:80]!r}") from None
        out[name] = value
    return out


def read_argument_file(path: str | Path, error: type[Exception] = UsageError) -> str:
    """The text of a small file named on the command line (a defines file, an event),
    read as every user file is (:func:`policy_lang.source.read_user_text`: a FIFO or
    ``/dev/zero`` is refused before it is opened); ``error`` is what the caller raises."""
    from policy_lang.source import UserFileError, read_user_text

    try:
        return read_user_text(path)
    except UserFileError as exc:
        raise error(exc.message(str(path))) from None


# ----------------------------------------------------------------------------- solution options

def add_solution_args(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """The options of every command that loads a solution (one spelling each)."""
    if positional:
        p.add_argument("solution", nargs="?", default=".",
                       help="solution folder or top-level .psl/.psl.in (default: the current folder)")
    g = p.add_argument_group("loading the solution")
    g.add_argument("--init", metavar="FILE", help="init.yaml(.in) to use instead of the one found")
    g.add_argument("-I", "--include", dest="include", action="append", default=[], metavar="DIR",
                   help="add an include folder for `use` and IDL/EDL/CDL lookups (repeatable)")
    g.add_argument("-D", "--define", dest="define", action="append", default=[], type=define, metavar="NAME=VALUE",
                   help="template value for @NAME@, ${NAME} and {{ NAME }} (repeatable; wins over files)")
    g.add_argument("--defines", action="append", default=[], type=defines_file, metavar="FILE",
                   help="template values from a file of NAME=VALUE lines (# comments)")
    g.add_argument("--sdk", action="append", default=[], metavar="DIR",
                   help="a KasperskyOS SDK include folder (repeatable)")
    g.add_argument("--trusted", action="append", default=[], metavar="CLASS",
                   help="a process class you trust with dangerous kernel methods (repeatable; docs/kernel.md)")
    g.add_argument("--config", metavar="FILE",
                   help="ksm.toml or pyproject.toml to use (default: found upward from the solution)")
    g.add_argument("--no-config", action="store_true", help="read no ksm.toml / pyproject.toml")


def options_from(args: argparse.Namespace) -> LoadOptions:
    defines: dict[str, str] = {}
    for values in getattr(args, "defines", []):
        defines.update(values)
    defines.update(dict(getattr(args, "define", [])))
    return LoadOptions(
        init=Path(args.init) if getattr(args, "init", None) else None,
        include_dirs=tuple(Path(p) for p in getattr(args, "include", [])),
        defines=defines,
        sdk_dirs=tuple(Path(p) for p in getattr(args, "sdk", [])),
        trusted=tuple(getattr(args, "trusted", None) or ()),
    )


def print_diagnostics(diags: Iterable, file=None) -> None:
    """Diagnostics with their source excerpts, to stderr unless told otherwise."""
    file = file or sys.stderr
    cache: dict = {}
    for d in diags:
        print(d.render(), file=file)
        ex = _excerpt(d, cache)
        if ex:
            print(ex, file=file)


def render_text(sol: Solution, excerpts: bool = True) -> str:
    s = sol.summary()
    out = [
        f"{sol.root}: {s['classes']} classes ({s['opaque_classes']} opaque), {s['instances']} instances, "
        f"{s['channels']} channels, {s['interfaces']} interfaces, {s['methods']} methods, "
        f"{s['bindings']} bindings, {s['objects']} objects, {s['tests']} tests "
        f"({s['files']} files, {s['lines']} lines)"
    ]
    cache: dict = {}
    for d in sol.diagnostics:
        out.append(d.render())
        if excerpts:
            ex = _excerpt(d, cache)
            if ex:
                out.append(ex)
    errors = sum(1 for d in sol.diagnostics if d.severity is Severity.ERROR)
    warnings = sum(1 for d in sol.diagnostics if d.severity is Severity.WARNING)
    out.append(f"{'FAILED' if errors else 'OK'}: {errors} error(s), {warnings} warning(s)")
    return "\n".join(out)


def load_solution(args: argparse.Namespace, target: str | None = None) -> Solution:
    """Load with a spinner on a terminal (large solutions take seconds)."""
    from .progress import busy

    target = target if target is not None else args.solution
    with busy(f"loading {target}"):
        return load(target, options_from(args))


def load_ok(args: argparse.Namespace) -> Solution | None:
    """The solution, or None after printing its errors (the caller exits 1)."""
    sol = load_solution(args)
    if not sol.ok:
        print(render_text(sol), file=sys.stderr)
        return None
    return sol


# ----------------------------------------------------------------------------- output

def document(kind: str, body: dict | str) -> dict:
    """A JSON document of command ``kind``: ``schema`` first, then the body."""
    if isinstance(body, str):
        body = json.loads(body)
    body = {k: v for k, v in body.items() if k != "schema"}
    return {"schema": f"ksm-{kind}/{SCHEMA_VERSION}", **body}


def json_text(kind: str, body: dict | str, **dump: Any) -> str:
    dump.setdefault("indent", 2)
    return json.dumps(document(kind, body), **dump)


def write_report(text: str, args: argparse.Namespace) -> int:
    """Print ``text`` or write it to ``--output``; EXIT_USAGE when the file cannot be written."""
    output = getattr(args, "output", None)
    if not output:
        print(text)
        return EXIT_OK
    return write_file(output, text + "\n")


def write_file(path: str | Path, text: str) -> int:
    """Write a report file; EXIT_USAGE (after saying why) when it cannot be written."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"ksm: error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def usage(message: str) -> int:
    print(f"ksm: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class _PipeSafe:
    """stdout that outlives its reader: when ``| head`` closes the pipe, the rest of the
    output goes nowhere and the command still finishes with its own exit code (no
    BrokenPipeError, and nothing printed at interpreter exit)."""

    def __init__(self, stream):
        self._stream = stream
        self._closed = False

    def write(self, text: str) -> int:
        if self._closed:
            return len(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._divert()
            return len(text)

    def flush(self) -> None:
        if self._closed:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._divert()

    def _divert(self) -> None:
        self._closed = True
        try:   # later flushes of the real stdout (at exit) go to /dev/null, not to a closed pipe
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def safe_streams() -> Callable[[], None]:
    """Make stdout survive a closed pipe and both streams survive an encoding that
    cannot spell a character (``PYTHONIOENCODING=ascii``); returns the undo."""
    saved = sys.stdout, sys.stderr
    for stream in saved:
        try:
            if getattr(stream, "errors", "strict") == "strict":
                stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    if not isinstance(sys.stdout, _PipeSafe):
        sys.stdout = _PipeSafe(sys.stdout)

    def undo() -> None:
        sys.stdout, sys.stderr = saved
    return undo
