"""``ksm fmt``: format PSL (``.psl``, ``.psl.in``) and ``.props`` files in place, or check them.

The formatter itself is :mod:`ksm.fmt` (style in docs/formatting.md); this module only
walks the paths, writes files and prints what it did.
"""
from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

from .common import EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, usage


def add_fmt(sub) -> None:
    p = sub.add_parser(
        "fmt", help="format PSL (.psl, .psl.in) and property (.props) files: indentation, spacing, "
                    "one declaration per line; comments and blank-line paragraphs are kept",
        epilog="Files that do not parse are left unchanged and reported with the parser's diagnostic;\n"
               ".psl.in files with Jinja tags ({{ }}, {% %}) are left unchanged. Style: docs/formatting.md.\n\n"
               "exit status:\n  0  ok (with --check: every file is already formatted)\n"
               "  1  with --check or --diff: some file would be reformatted; or a file does not parse\n"
               "  2  usage error\n  3  a bug in ksm (the formatter refused a file it could not format safely)\n\n"
               "examples:\n  ksm fmt models/echo\n"
               "  ksm fmt --check models docs/examples\n"
               "  ksm fmt --diff models/smart_lock/einit/src/security.psl")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a file, or a folder (every .psl, .psl.in and .props file under it)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="change nothing; list the files that would be reformatted (exit 1 if any)")
    mode.add_argument("--diff", action="store_true",
                      help="change nothing; print a unified diff of what formatting would change (exit 1 if any)")


def cmd_fmt(args: argparse.Namespace) -> int:
    from ..fmt import collect, format_file

    for path in args.paths:
        if not os.path.lexists(path):
            return usage(f"{path}: no such file or folder")
    files = collect(args.paths)
    changed: list[str] = []
    broken = internal = False
    for path in files:
        res = format_file(path)
        if res.problems:
            for problem in res.problems:
                print(problem, file=sys.stderr)
            if any("error[FMT001]" in p for p in res.problems):
                internal = True
            else:
                broken = True
                if not any("error[FMT002]" in p for p in res.problems):     # read, but does not parse
                    print(f"{path}: left unchanged: it does not parse", file=sys.stderr)
            continue
        if res.skipped:
            print(f"{path}: skipped: {res.skipped}", file=sys.stderr)
            continue
        if not res.changed:
            continue
        changed.append(str(path))
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                res.original.splitlines(True), res.text.splitlines(True), f"{path}", f"{path} (formatted)"))
        elif args.check:
            print(f"would reformat {path}")
        else:
            Path(path).write_text(res.text, encoding="utf-8")
            print(f"reformatted {path}")
    if not (args.check or args.diff):
        print(f"{len(changed)} of {len(files)} file(s) reformatted", file=sys.stderr)
    elif not changed and not (broken or internal):
        print(f"{len(files)} file(s) already formatted", file=sys.stderr)
    if internal:
        return EXIT_INTERNAL
    if broken or ((args.check or args.diff) and changed):
        return EXIT_ERRORS
    return EXIT_OK
