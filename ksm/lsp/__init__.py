"""``ksm lsp``: the Language Server Protocol server (docs/lsp.md)."""
from __future__ import annotations


def serve_stdio() -> None:
    """Run the server on standard input and output until the client exits."""
    import logging
    import sys

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="ksm lsp: %(levelname)s: %(message)s")
    from policy_lang import perf

    from .server import build_server

    server = build_server()
    server.collect_when_idle = True
    saved, perf.FREEZE_MIN_OBJECTS = perf.FREEZE_MIN_OBJECTS, FREEZE_MIN_OBJECTS
    try:
        server.start_io()
    finally:
        perf.FREEZE_MIN_OBJECTS = saved


#: A reload that leaves this many new objects ends with ``gc.freeze()`` (see
#: :func:`policy_lang.perf.gc_paused`): the collector then never walks a loaded
#: solution, whose 300,000 objects at 10,000 lines cost 100 ms and more per full
#: collection, a pause that used to land on a keystroke.
FREEZE_MIN_OBJECTS = 20_000
