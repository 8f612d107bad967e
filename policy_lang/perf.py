"""Process-level performance switches shared by the front end's entry points."""
from __future__ import annotations

import contextlib
import gc
import threading

_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a solution is parsed and resolved.

    Loading allocates hundreds of thousands of small acyclic objects (tokens, AST
    nodes, resolved elements); every few hundred allocations the collector would walk the young
    objects and, as the heap grows, the whole heap - close to half of the load
    time for nothing, since nothing built here forms a cycle.  Reference counting
    still frees everything as usual.  Nested and concurrent loads keep the
    collector paused until the last one ends; the previous setting is restored.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()
