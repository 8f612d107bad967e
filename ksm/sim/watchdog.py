"""The wall-time limit of a run, enforced even on behaviour code that never yields.

The scheduler only runs between kernel calls, so a deadline it checks itself never
stops ``while True: pass`` in a behaviour (or a handler that loops forever): every
simulated thread is a greenlet in the one operating-system thread, and that thread
never comes back to the scheduler.  A :class:`Watchdog` therefore watches from a
second OS thread and, when the time is up, raises :class:`SimTimeout` in the
kernel's thread with ``PyThreadState_SetAsyncExc``.  CPython delivers such an
exception between two bytecodes of whatever that thread is running, which is
what a busy loop needs.  Signals would do the same only in the main thread;
this works wherever :meth:`~ksm.sim.kernel.Kernel.run` is called.

Code stuck inside one C call (``time.sleep``, a blocking read) sees the exception
only when the call returns: the interpreter does not interrupt C code.
"""
from __future__ import annotations

import ctypes
import threading
import time

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.restype = ctypes.c_int


class SimTimeout(BaseException):
    """The run's wall time ran out.

    A BaseException, like KeyboardInterrupt, so that behaviour code catching
    ``Exception`` (as a server loop often does) cannot swallow the limit.
    """


def _inject(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` asynchronously in ``thread_id``, or withdraw a pending one (None).

    ``None`` must reach C as NULL (``py_object(None)`` would be ``Py_None``, which
    CPython would then try to raise), so no argtypes are declared and ctypes passes
    a bare None as a NULL pointer.
    """
    _set_async_exc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)


class Watchdog:
    """Raises :class:`SimTimeout` in the thread that created it after ``seconds``.

    The first shot usually ends the run.  If behaviour code swallows it anyway
    (a bare ``except:``) and goes on looping, another follows every ``again``
    seconds until :meth:`stop`.  :meth:`stop` must be called when the run ends,
    whatever way it ends: it guarantees that no shot fires afterwards and withdraws
    one that was fired but not yet delivered, so nothing lands in the caller's code
    after :meth:`~ksm.sim.kernel.Kernel.run` has returned.
    """

    def __init__(self, seconds: float, again: float = 0.5):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.again = again
        self.target = threading.get_ident()          # the kernel's thread: the one arming the watchdog
        self.shots = 0                               # exceptions raised so far
        self._lock = threading.RLock()               # reentrant: a shot landing inside stop() may retry it
        self._stopped = False
        self._wake = threading.Event()
        self._armed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ksm-sim-watchdog", daemon=True)

    @property
    def fired(self) -> bool:
        return self.shots > 0

    def start(self) -> None:
        """Start watching.

        The watcher waits for :attr:`_armed` before it may fire, so that a very
        short limit cannot interrupt ``Thread.start()`` itself (it waits on a
        condition variable whose lock a stray exception would leave released).
        """
        self._thread.start()
        self._armed.set()

    def _watch(self) -> None:
        self._armed.wait()
        delay = self.deadline - time.monotonic()
        while not self._wake.wait(max(0.0, delay)):
            with self._lock:
                if self._stopped:
                    return
                self.shots += 1
                _inject(self.target, SimTimeout)
            delay = self.again

    def stop(self) -> bool:
        """Stop watching and withdraw an undelivered shot; True if it ever fired.

        The stop flag is set under the same lock as a shot is fired, so after it no
        shot can be fired; clearing afterwards removes the one that may be pending.
        A shot delivered while this runs is caught and the stop repeated (the
        caller must still catch one delivered on the call itself, before the first
        line of this method runs).
        """
        while True:
            try:
                with self._lock:
                    self._stopped = True
                    if self.shots:
                        _inject(self.target, None)
                break
            except SimTimeout:
                continue
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        return self.fired
