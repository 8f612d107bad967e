"""Processes as plain Python: one class per process class.

A behaviour module defines subclasses of :class:`Behaviour`, each naming the EDL
class it implements in ``process_class``.  Every running instance of that class
gets its own object.  Methods named after interface methods implement the
endpoints (the dispatcher calls them with the in-parameters); ``main``, if
defined, is the process's first thread and makes calls through proxies::

    class Server(Behaviour):
        process_class = "echo.Server"
        def Ping(self, value):
            return value + 1                      # the one out-parameter

    class Client(Behaviour):
        process_class = "echo.Client"
        def main(self):
            server = self.proxy("server_connection")
            self.log(server.Ping(value=3))        # {'result': 4}

A class with two endpoints whose interfaces share a method name returns a
separate object per endpoint from :meth:`Behaviour.implementation`.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from policy_lang.diagnostics import Span

from .codes import SIM_BEHAVIOUR, SimInputError
from .kernel import Kernel
from .transport import Proxy, dispatch, proxy


class Behaviour:
    """Base class of a process's behaviour; one object per running instance."""

    process_class: str = ""       # the EDL class implemented (required)
    server_threads: int = 1       # threads serving the endpoints

    def __init__(self, kernel: Kernel, task: str):
        self.kernel, self.task = kernel, task

    def implementation(self, endpoint: str) -> Any:
        """The object whose methods implement ``endpoint`` (default: this one)."""
        return self

    # ------------------------------------------------------------------ for behaviour code
    def proxy(self, channel: str, endpoint: str | None = None) -> Proxy:
        """A proxy for one of this process's channels (see :func:`ksm.sim.transport.proxy`)."""
        return proxy(self.kernel, self.task, channel, endpoint)

    def connect(self, service: str, endpoint: str | None = None) -> Proxy:
        """Open a run-time channel to a published service and return its proxy."""
        return self.proxy(self.kernel.connect(service), endpoint)

    def publish(self, service: str, endpoint: str | None = None) -> None:
        """Offer one of this process's endpoints under ``service``."""
        self.kernel.publish(service, endpoint)

    def spawn(self, body: Callable[[], Any], name: str | None = None) -> None:
        """Start another thread of this process running ``body()``."""
        self.kernel.spawn(self.task, lambda _k: body(), name)

    def log(self, *what: Any) -> None:
        """A line in the trace, attributed to the calling thread."""
        self.kernel.note(" ".join(str(w) for w in what))


def served_endpoints(kernel: Kernel, behaviour: Behaviour) -> dict[str, Any]:
    """Endpoint name -> implementing object, for the endpoints the behaviour implements
    at least one method of."""
    cls = kernel.process_class(behaviour.task)
    out = {}
    for ep in cls.endpoints:
        impl = behaviour.implementation(ep.name)
        if impl is not None and any(callable(getattr(impl, m.name, None)) for m in ep.interface.methods):
            out[ep.name] = impl
    return out


def start(kernel: Kernel, behaviours: Mapping[str, type[Behaviour]]) -> dict[str, Behaviour]:
    """Create the behaviour of every running instance whose class has one and spawn
    its threads: the server threads, then ``main``.  Returns task -> behaviour."""
    started = {}
    for inst in kernel.solution.instances:
        kind = behaviours.get(inst.cls)
        if kind is None or inst.task not in kernel.running:
            continue
        b = kind(kernel, inst.task)
        started[inst.task] = b
        impls = served_endpoints(kernel, b)
        if impls:
            for n in range(max(1, b.server_threads)):
                kernel.spawn(inst.task, lambda k, impls=impls: dispatch(k, impls), f"{inst.task}/server{n}")
        if callable(getattr(b, "main", None)):
            kernel.spawn(inst.task, lambda k, b=b: b.main(), f"{inst.task}/main")
    return started


def _error(message: str, file: Path | str, line: int = 1, column: int = 1) -> SimInputError:
    return SimInputError(SIM_BEHAVIOUR, message, Span(str(file), line, column))


def load_module(path: str | Path) -> ModuleType:
    """Import a behaviour module from a file path.

    Errors in the user's module become :class:`SimInputError` with the file and
    line, never a traceback.
    """
    from policy_lang.source import UserFileError, read_user_bytes

    path = Path(path)
    try:        # refuses a FIFO, a device or a huge file before Python's import opens it
        read_user_bytes(path)
    except UserFileError as exc:
        raise _error(exc.message(str(path)), path, exc.line, exc.column) from None
    name = f"ksm_behaviours_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _error("not a Python module", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise _error(f"syntax error: {exc.msg}", path, exc.lineno or 1, exc.offset or 1) from None
    except ValueError as exc:       # e.g. "source code string cannot contain null bytes"
        raise _error(f"not a Python module: {exc}", path) from None
    except Exception as exc:
        line = _user_line(exc, path)
        raise _error(f"importing failed: {type(exc).__name__}: {exc}", path, line) from None
    return module


def _user_line(exc: BaseException, path: Path) -> int:
    tb, line = exc.__traceback__, 1
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve():
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def behaviours_of(module: ModuleType, solution_classes: Mapping) -> dict[str, type[Behaviour]]:
    """Process class -> behaviour class, for every :class:`Behaviour` subclass the module
    defines; a class naming an unknown process class is an error."""
    out: dict[str, type[Behaviour]] = {}
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if not issubclass(obj, Behaviour) or obj is Behaviour or obj.__module__ != module.__name__:
            continue
        line = inspect.getsourcelines(obj)[1]
        if not obj.process_class:
            raise _error(f"{obj.__name__} does not say which process class it implements "
                         f"(set process_class = \"pkg.Class\")", module.__file__, line)
        if obj.process_class not in solution_classes:
            raise _error(f"{obj.__name__}: no process class {obj.process_class!r} in the solution",
                         module.__file__, line)
        if obj.process_class in out:
            raise _error(f"{obj.__name__}: {obj.process_class} already has behaviour "
                         f"{out[obj.process_class].__name__}", module.__file__, line)
        out[obj.process_class] = obj
    if not out:
        raise _error("no Behaviour subclass in the module", module.__file__)
    return out
