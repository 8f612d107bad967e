"""The ``ksm`` command: argument parsing, settings and output only; no logic lives here.

Exit codes (stable, documented in docs/cli.md): 0 no errors · 1 errors in the user's
files (or a failed test, a denied event, a property not proved) · 2 usage error (a bad
option, a path that does not exist, a broken settings file) · 3 a bug in ksm.

Each subcommand lives with its neighbours in ``solution_cmds`` (check, test, decide,
crosscheck, diff), ``proof_cmds`` (prove, flows, graph) and ``run_cmds`` (simulate,
lint, verify, bench, codes, completion) and ``kernel_cmds`` (kernel); ``common`` holds what they share and
``settings`` turns ksm.toml into argparse defaults, so the file and the command line
are one vocabulary checked by one parser.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import fmt_cmds, kernel_cmds, lsp_cmds, proof_cmds, run_cmds, solution_cmds
from .common import (EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, Parser, add_solution_args, options_from,
                     print_diagnostics, render_text, safe_streams)
from .run_cmds import codes_markdown

#: name -> (adds the subparser, runs the command), in the order `ksm --help` lists them.
COMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "check": (solution_cmds.add_check, solution_cmds.cmd_check),
    "lint": (run_cmds.add_lint, run_cmds.cmd_lint),
    "test": (solution_cmds.add_test, solution_cmds.cmd_test),
    "prove": (proof_cmds.add_prove, proof_cmds.cmd_prove),
    "flows": (proof_cmds.add_flows, proof_cmds.cmd_prove),
    "verify": (run_cmds.add_verify, run_cmds.cmd_verify),
    "decide": (solution_cmds.add_decide, solution_cmds.cmd_decide),
    "diff": (solution_cmds.add_diff, solution_cmds.cmd_diff),
    "crosscheck": (solution_cmds.add_crosscheck, solution_cmds.cmd_crosscheck),
    "graph": (proof_cmds.add_graph, proof_cmds.cmd_graph),
    "kernel": (kernel_cmds.add_kernel, kernel_cmds.cmd_kernel),
    "simulate": (run_cmds.add_simulate, run_cmds.cmd_simulate),
    "bench": (run_cmds.add_bench, run_cmds.cmd_bench),
    "codes": (run_cmds.add_codes, run_cmds.cmd_codes),
    "completion": (run_cmds.add_completion, run_cmds.cmd_completion),
    "fmt": (fmt_cmds.add_fmt, fmt_cmds.cmd_fmt),
    "lsp": (lsp_cmds.add_lsp, lsp_cmds.cmd_lsp),
}

#: Options naming a file or folder that must exist (checked before anything runs: exit 2).
_INPUTS = ("solution", "old", "new", "init", "include", "sdk", "config", "props", "scenario", "behaviours",
           "replay", "baseline")


def _version() -> str:
    from ksm import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ksm", description="Verification toolkit for KasperskyOS security policies.",
                    epilog="Run `ksm COMMAND --help` for a command's options and examples; docs/cli.md has "
                           "them all.\nexit status: 0 ok, 1 problems found, 2 usage error, 3 a bug in ksm")
    parser.add_argument("--version", action="version", version=f"ksm {_version()}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for add, _run in COMMANDS.values():
        add(sub)
    parser._ksm_subparsers = sub.choices  # type: ignore[attr-defined]
    return parser


def _missing_input(args: argparse.Namespace) -> str | None:
    """The first named input that does not exist, as an error message."""
    for dest in _INPUTS:
        values = getattr(args, dest, None)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and value and not os.path.lexists(value):
                option = dest if dest in ("solution", "old", "new") else "--" + dest
                if dest == "include":
                    option = "-I"
                return f"{option} {value}: no such file or folder"
    return None


def _apply_settings(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                    args: argparse.Namespace) -> argparse.Namespace | int:
    """``args`` parsed again with the settings file's values as defaults (the command
    line still wins), or EXIT_USAGE after printing the file's mistakes."""
    from .settings import apply, read_settings

    if getattr(args, "no_config", True) or args.command not in COMMANDS:
        return args
    start = Path(getattr(args, "new", None) or getattr(args, "solution", None) or ".")
    settings, problems = read_settings(start, Path(args.config) if args.config else None)
    if not problems and settings.file is not None:
        args, problems = apply(args, parser, argv, parser._ksm_subparsers, settings)  # type: ignore[attr-defined]
    if problems:
        print_diagnostics(problems)
        print(f"ksm: error: fix {settings.file or 'the settings file'} (or run with --no-config)", file=sys.stderr)
        return EXIT_USAGE
    return args


def console() -> None:
    """The ``ksm`` program (and ``python -m ksm``): :func:`main` in a process of its own.

    Why not in :func:`main`: a process that exits when its one command is done may let
    a large load end with ``gc.freeze()`` (see :func:`policy_lang.perf.gc_paused`);
    callers of :func:`main` inside a longer-lived process (tests, scripts) keep the
    library's default, which never freezes.
    """
    from policy_lang import perf

    perf.FREEZE_MIN_OBJECTS = 100_000
    sys.exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    undo = safe_streams()
    try:
        return _main(argv)
    finally:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        undo()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:      # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        missing = _missing_input(args)
        if missing:
            print(f"ksm: error: {missing}", file=sys.stderr)
            return EXIT_USAGE
        got = _apply_settings(parser, argv, args)
        if isinstance(got, int):
            return got
        return COMMANDS[got.command][1](got)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except RecursionError:
        print("ksm: error: the input nests too deeply to be processed", file=sys.stderr)
        return EXIT_ERRORS
    except MemoryError:
        print("ksm: error: out of memory (the input is too large)", file=sys.stderr)
        return EXIT_ERRORS
    except Exception as exc:  # a bug in the toolkit, never a problem in the user's files
        if os.environ.get("KSM_DEBUG"):
            raise
        print(f"ksm: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in ksm, not in your files; rerun with KSM_DEBUG=1 for details and report it.",
              file=sys.stderr)
        return EXIT_INTERNAL


__all__ = ["COMMANDS", "EXIT_ERRORS", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "add_solution_args", "build_parser",
           "codes_markdown", "main", "options_from", "render_text"]
