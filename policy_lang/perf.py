"""Process-level performance switches shared by the front end's entry points."""
from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False
_gc_freeze_ok = True

#: A load that leaves at least this many new objects to the collector ends with
#: ``gc.freeze()`` (see :func:`gc_paused`); ``None`` (the library's default) turns
#: freezing off.  The ``ksm`` command sets 100,000: a process that exits when its one
#: command is done loses nothing by it, while an embedder's own objects are its own.
FREEZE_MIN_OBJECTS: int | None = None


@contextlib.contextmanager
def gc_paused(freeze: bool = False):
    """Pause the cyclic garbage collector while a solution is parsed and resolved.

    Loading allocates hundreds of thousands of small acyclic objects (tokens, AST
    nodes, resolved elements); every few hundred allocations the collector would walk the young
    objects and, as the heap grows, the whole heap - close to half of the load
    time for nothing, since nothing built here forms a cycle.  Reference counting
    still frees everything as usual.  Nested and concurrent loads keep the
    collector paused until the last one ends; the previous setting is restored.

    ``freeze=True`` (what :func:`policy_lang.load` asks for): when the outermost
    pause ends, the collector was on before it, and the pause has left at least
    :data:`FREEZE_MIN_OBJECTS` new objects, ``gc.freeze()`` moves every object to
    the permanent generation instead of letting the next collection walk them all
    (about 1 µs an object: 0.6 s after a 100,000-binding load, and paid again when
    they reach each older generation).  That is safe because a load leaves no
    reference cycles behind (tests/test_load_fast_paths.py): what it built is freed
    by reference counting when the caller drops it, frozen or not.  Work that may
    leave cycles (a Jinja template expansion) calls :func:`may_leave_cycles`, and
    then the pause ends as usual, without freezing.

    What freezing costs the caller: objects of its own that were alive at that
    moment are not walked again either, so a cycle among them that becomes garbage
    later is not collected (and garbage not yet collected when the load began stays).
    ``gc.unfreeze()`` hands everything back to the collector.  Off unless
    :data:`FREEZE_MIN_OBJECTS` is set (the ``ksm`` command sets it).
    """
    global _gc_depth, _gc_was_enabled, _gc_freeze_ok
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            _gc_freeze_ok = True
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                if (freeze and _gc_freeze_ok and FREEZE_MIN_OBJECTS is not None
                        and gc.get_count()[0] >= FREEZE_MIN_OBJECTS):
                    gc.freeze()
                gc.enable()


def may_leave_cycles() -> None:
    """Say that the current load ran code that may leave reference cycles (no freeze at its end)."""
    global _gc_freeze_ok
    _gc_freeze_ok = False


# ----------------------------------------------------------------------------- phase times

class PhaseTimes:
    """Seconds spent in each phase of a load, each phase counted without the phases inside it.

    ``seconds["parse idl"]`` is the time inside the IDL parser, ``files["parse idl"]``
    how many files it parsed; what no phase claims is the caller's to name (the
    benchmark calls it "resolve").
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.files: dict[str, int] = {}
        self._stack: list[list] = []     # [name, start, time of inner phases]


_active: PhaseTimes | None = None


@contextlib.contextmanager
def phase_times() -> Iterator[PhaseTimes]:
    """Record :func:`timed` phases until the block ends (one recorder at a time, for benchmarks)."""
    global _active
    previous, _active = _active, PhaseTimes()
    try:
        yield _active
    finally:
        _active = previous


def timed(name: str, fn, *args):
    """``fn(*args)``, its time added to phase ``name`` while :func:`phase_times` records."""
    rec = _active
    if rec is None:
        return fn(*args)
    frame = [name, time.perf_counter(), 0.0]
    rec._stack.append(frame)
    try:
        return fn(*args)
    finally:
        rec._stack.pop()
        spent = time.perf_counter() - frame[1]
        rec.seconds[name] = rec.seconds.get(name, 0.0) + spent - frame[2]
        rec.files[name] = rec.files.get(name, 0) + 1
        if rec._stack:
            rec._stack[-1][2] += spent
