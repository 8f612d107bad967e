"""``ksm lsp``: the language server for editors (docs/lsp.md), on standard input and output."""
from __future__ import annotations

import argparse

import sys

from .common import EXIT_ERRORS, EXIT_OK


def add_lsp(sub) -> None:
    p = sub.add_parser("lsp", help="run the Language Server Protocol server on stdio (for editors)",
                       description="Run the Language Server Protocol server on standard input and output: "
                                   "diagnostics (front end and linter), hover, go to definition and document "
                                   "symbols for a solution's files. The editor starts it; see docs/lsp.md.",
                       epilog="examples:\n  ksm lsp            (started by the editor, speaks LSP on stdin/stdout)")
    p.add_argument("--stdio", action="store_true", help="use standard input and output (the default and only mode)")


def cmd_lsp(args: argparse.Namespace) -> int:
    from ..lsp import serve_stdio

    try:
        serve_stdio()
    except OSError as exc:          # no usable stdin/stdout: the editor did not start it as a pipe
        print(f"ksm lsp: cannot talk over standard input and output: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    return EXIT_OK
