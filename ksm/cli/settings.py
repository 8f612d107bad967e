"""Project settings: one ``ksm.toml`` (or ``[tool.ksm]`` in pyproject.toml) for every command.

The file is found upward from the solution (:func:`ksm.lint.config.find_config`)::

    [solution]                 # every command that loads the solution
    init = "einit/src/init.yaml.in"
    include = ["resources"]
    sdk = ["/opt/KasperskyOS-SDK/sysroot-x86_64-kos/include"]
    defines = { LOG_LIMIT = "64" }
    defines-file = "defines.txt"
    trusted = ["lock.KeyStore"]    # classes trusted with dangerous kernel methods

    [lint]                     # the linter's own keys (docs/lint.md)
    fail-on = "warning"

    [prove]                    # any other command: its long options, without the dashes
    timeout = 20
    depth = 10

Why the command tables reuse the option names: a user learns one vocabulary, and the
file is validated against the same argument parser as the command line, so a key the
command does not have, or a value its option would refuse, is an error (CFG002) at
its line, never silently ignored.  Precedence: command line, then the command's table,
then ``[solution]``, then the defaults.
"""
from __future__ import annotations

import argparse
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_lang.diagnostics import Diagnostic, Diagnostics, Span
from policy_lang.source import display_path

from ..lint.config import CFG_KEY, PYPROJECT, _Locator, find_config, read_toml

#: The options of [solution]; they load the solution, so they live in one table only.
LOADING = {"init", "include", "define", "defines", "sdk", "trusted"}
#: Options that are not settings: one-shot actions and the file's own selection.
NOT_SETTINGS = {"help", "config", "no-config", "list-rules", "explain", "write-baseline", "version"}


@dataclass
class Settings:
    """The tables of one settings file, with what is needed to point into it."""

    file: str | None = None                 # as shown in diagnostics; None: no file
    folder: Path = field(default_factory=Path)
    tables: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    prefix: tuple[str, ...] = ()            # ("tool", "ksm") inside pyproject.toml
    path: Path | None = None


def read_settings(start: Path, explicit: Path | None = None) -> tuple[Settings, list[Diagnostic]]:
    """The settings that apply to the solution at ``start`` (or in ``explicit``) and the
    problems found reading them (TOML syntax, an unreadable file)."""
    if explicit is not None:
        path = Path(explicit)
        prefix = ("tool", "ksm") if path.name == PYPROJECT else ()
    else:
        found = find_config(start)
        if found is None:
            return Settings(), []
        path, table = found
        prefix = table[:-1]
    diags = Diagnostics()
    shown = display_path(path)
    got = read_toml(path, shown, diags)
    if got is None:
        return Settings(file=shown), list(diags)
    text, data = got
    for key in prefix:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return Settings(shown, path.absolute().parent, data if isinstance(data, dict) else {}, text, prefix, path), []


class _Checker:
    """Turns the tables into argparse defaults, one CFG002 per mistake."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.diags = Diagnostics()

    def wrong(self, table: str, key: str | None, problem: str, hint: str | None = None) -> None:
        locator = _Locator(self.s.text, self.s.file or "ksm.toml", self.s.prefix + (table,))
        line, col = locator.find((key,) if key else ())
        name = ".".join(self.s.prefix + (table,) + ((key,) if key else ()))
        self.diags.add(CFG_KEY, f"`{name}` {problem}", Span(self.s.file or "ksm.toml", line, col), hint=hint)

    def path(self, value: str) -> str:
        return os.path.normpath(self.s.folder / os.path.expanduser(value))

    # --- [solution]

    def solution(self, table: Any) -> dict[str, Any]:
        if not isinstance(table, dict):
            self.wrong("solution", None, "must be a table")
            return {}
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key == "init":
                if self._text("solution", key, value):
                    out["init"] = self.path(value)
            elif key in ("include", "sdk"):
                if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
                    out[key] = [self.path(v) for v in value]
                else:
                    self.wrong("solution", key, "must be a list of folders, e.g. [\"resources\"]")
            elif key == "trusted":
                if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
                    out["trusted"] = list(value)
                else:
                    self.wrong("solution", key, "must be a list of process class names, e.g. [\"lock.KeyStore\"]")
            elif key == "defines":
                if isinstance(value, dict) and all(isinstance(v, (str, int, bool)) for v in value.values()):
                    out["define"] = [(k, _template_value(v)) for k, v in value.items()]
                else:
                    self.wrong("solution", key, "must be a table of NAME = \"value\", e.g. { LOG_LIMIT = \"64\" }")
            elif key == "defines-file":
                files = [value] if isinstance(value, str) else value
                if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
                    self.wrong("solution", key, "must be a file name or a list of them")
                    continue
                from .common import defines_file

                out["defines"] = []
                for f in files:
                    try:
                        out["defines"].append(defines_file(self.path(f)))
                    except argparse.ArgumentTypeError as exc:
                        self.wrong("solution", key, f"cannot be used: {exc}")
            else:
                close = difflib.get_close_matches(key, ["init", "include", "sdk", "defines", "defines-file", "trusted"], n=1)
                self.wrong("solution", key, "is not a setting of [solution]",
                           f"did you mean `{close[0]}`?" if close else
                           "[solution] keys: init, include, sdk, defines, defines-file, trusted")
        return out

    def _text(self, table: str, key: str, value: Any) -> bool:
        if isinstance(value, str) and value:
            return True
        self.wrong(table, key, "must be a non-empty string")
        return False

    # --- [<command>]

    def command(self, name: str, table: Any, parser: argparse.ArgumentParser) -> dict[str, Any]:
        if not isinstance(table, dict):
            self.wrong(name, None, "must be a table")
            return {}
        options = settable_options(parser)
        out: dict[str, Any] = {}
        for key, value in table.items():
            action = options.get(key)
            if action is None:
                if key in LOADING or key == "defines-file":
                    self.wrong(name, key, "belongs in [solution], which every command reads")
                    continue
                close = difflib.get_close_matches(key, list(options), n=1)
                self.wrong(name, key, f"is not an option of `ksm {name}`",
                           f"did you mean `{close[0]}`?" if close else
                           f"`ksm {name}` settings: {', '.join(sorted(options)) or 'none'}")
                continue
            try:
                out[action.dest] = _convert(action, value)
            except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
                self.wrong(name, key, f"cannot be {_show(value)}: {exc}",
                           f"the value is what `ksm {name} --{key}` would take (see `ksm {name} --help`)")
        return out


def settable_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The command's long options a settings table may hold, by name without dashes."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or action.help == argparse.SUPPRESS:
            continue
        name = longs[0][2:]
        if name in NOT_SETTINGS or name in LOADING:
            continue
        out[name] = action
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _template_value(v: Any) -> str:
    if isinstance(v, bool):
        return "ON" if v else "OFF"
    return str(v)


def _convert(action: argparse.Action, value: Any) -> Any:
    """``value`` as the option would have parsed it from the command line."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value if isinstance(action, argparse._StoreTrueAction) else not value
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_scalar(action, v) for v in items]
    if action.nargs not in (None, "?"):
        if not isinstance(value, list):
            raise TypeError(f"expected a list of {action.nargs}")
        if isinstance(action.nargs, int) and len(value) != action.nargs:
            raise ValueError(f"expected {action.nargs} values")
        return [_scalar(action, v) for v in value]
    return _scalar(action, value)


def _scalar(action: argparse.Action, value: Any) -> Any:
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        raise TypeError("expected a " + ("string" if action.type is None else "number"))
    text = str(value)
    converted = action.type(text) if callable(action.type) else text
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return converted


def apply(args: argparse.Namespace, parser: argparse.ArgumentParser, argv, parsers: dict[str, argparse.ArgumentParser],
          settings: Settings) -> tuple[argparse.Namespace, list[Diagnostic]]:
    """``args`` parsed again (from ``argv`` by ``parser``) with the settings applied to
    the command's parser (in ``parsers``), and every mistake anywhere in the file (a typo in
    another table is still a typo).

    ``[solution]`` values become argparse defaults, so ``-I``/``-D`` on the command line
    add to the file's; a list option of the command's own table (``only``, ``props``,
    ``skip``...) is replaced, not extended, by the same option on the command line.
    """
    defaults, diags = defaults_for(args.command, parsers, settings)
    if diags or not defaults:
        return args, diags
    sub = parsers[args.command]
    lists = {a.dest for a in sub._actions if isinstance(a, argparse._AppendAction)} - LOADING
    sub.set_defaults(**{dest: value for dest, value in defaults.items() if dest not in lists})
    args = parser.parse_args(argv)
    for dest, value in defaults.items():
        if dest in lists and not getattr(args, dest, None):
            setattr(args, dest, value)
    return args, []


def defaults_for(command: str, parsers: dict[str, argparse.ArgumentParser],
                 settings: Settings) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The argparse defaults ``settings`` give ``command``, and every mistake anywhere in
    the file; ``parsers`` are the subcommands' parsers (each table is checked against its own)."""
    parser = parsers[command]
    commands = set(parsers)
    check = _Checker(settings)
    out: dict[str, Any] = {}
    for table, value in settings.tables.items():
        if table == "solution":
            solution = check.solution(value)
            if "solution" in {a.dest for a in parser._actions}:
                out.update(solution)
        elif table == "lint":                       # the linter's own reader (its keys are not options)
            if command not in ("lint", "verify") and settings.path is not None:
                from ..lint.config import load_config

                check.diags.extend(load_config(settings.path, settings.path)[1])
        elif table in commands:
            got = check.command(table, value, parsers[table])
            if table == command:
                out.update(got)
        else:
            close = difflib.get_close_matches(table, sorted(commands | {"solution", "lint"}), n=1)
            check.wrong(table, None, "is not a table ksm reads",
                        f"did you mean `[{close[0]}]`?" if close else
                        "tables: [solution], [lint] and one per command, e.g. [prove]")
    return out, list(check.diags)
