"""``ksm lsp``: the Language Server Protocol server (docs/lsp.md)."""
from __future__ import annotations


def serve_stdio() -> None:
    """Run the server on standard input and output until the client exits."""
    import logging
    import sys

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="ksm lsp: %(levelname)s: %(message)s")
    from .server import build_server

    build_server().start_io()
