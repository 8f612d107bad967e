"""The kernel of the simulator: processes, threads, channels and Call/Recv/Reply.

Every thread is a greenlet running plain, blocking Python.  A kernel call
(``call``, ``recv``, ``reply``, ``publish``, ``connect``) is the only place a
thread gives up the processor: a scheduler step picks the next ready thread with
a seeded random choice (the giving thread takes the step itself and switches
straight to the chosen one, see :meth:`Kernel._yield`).  So the same seed gives the
same interleaving and the same trace, and a run is single-threaded (no locks, no races
in the simulator itself; the one other OS thread is the watchdog of
``run(timeout=...)``, which only interrupts, see :mod:`ksm.sim.watchdog`).

Why greenlets and not threads or generators: behaviour code must read like the C
a developer writes against nk-gen-c proxies (``value = proxy.Ping(3)``), which
rules out generators (every caller would need ``yield``), and operating-system
threads switch a hundred times slower and in an order nobody controls.

Messages travel as bytes in the layout of :mod:`ksm.sim.wire`.  The kernel reads
the RIID and MID from the constant part, finds the server's endpoint and method,
and decodes the message: a message that does not decode for that method is
malformed and is denied before any rule, as KSM does.  Otherwise the security
module decides the decoded message, exactly where KasperskyOS's kernel asks it:
start-up (``execute``), the request on ``Call``, and the response or error on
``Reply``.  Return codes (:class:`Rc`) follow the documented ones of ``Call``,
``Recv`` and ``Reply``:

* a request that is malformed for the method: the client's ``Call`` returns
  ``rcInvalidArgument``, the server never sees it;
* a request the policy denies: the client's ``Call`` returns
  ``rcSecurityDisallow``, the server never sees it;
* a response or error the policy denies (or malformed): the server's ``Reply``
  returns that code, and so does the client's ``Call``;
* a channel that does not exist, or whose server is not running:
  ``rcNotConnected``;
* a reply to a request that is not outstanding (already answered, or not
  received by the replying process): the replier's ``Reply`` returns
  ``rcInvalidArgument``, nothing is sent and the client keeps its first answer.

Every granted request is answered once (a response or an error, granted or
denied), or its caller is still blocked in ``call`` when the run ends, which is a
deadlock (:meth:`Kernel.wait_for_cycle`).  Threads idle in ``recv`` are not.

Run-time channels go through the kernel's connection manager, the documented
endpoint ``cm.CM`` of ``kl.core.Core`` (:mod:`policy_lang.kernel`), whose requests
the policy decides like any other: ``Listen`` (a server waits for channel requests
to a service; accepting them is folded in) and ``Connect`` (a client asks a server
for a channel to a service), each answered by a response from the kernel, carrying
the return code ``rc``, that the policy decides too.
"""
from __future__ import annotations

import contextlib
import enum
import os
import random
import sysconfig
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import greenlet
import networkx as nx

from policy_lang.perf import gc_paused
from policy_lang.solution import KERNEL_CLASS, Channel, Endpoint, ProcessClass, Solution
from policy_lang.types import MethodDef

from ..engine import Options, SecurityModule
from ..events import _SHOWN_INT_BITS as _JSON_INT_BITS   # as ksm.values writes integers
from ..events import Decision, Event, int_text, jsonable
from . import wire
from .watchdog import SimTimeout, Watchdog

CM_ENDPOINT = "cm.CM"          # the connection manager's endpoint on kl.core.Core (documented)


class Rc(enum.IntEnum):
    """IPC return codes (names as in the KasperskyOS SDK; the numbers are ours)."""

    OK = 0
    INVALID_ARGUMENT = 1      # rcInvalidArgument: the message does not fit the method
    SECURITY_DISALLOW = 2     # rcSecurityDisallow: the security module denied the message
    NOT_CONNECTED = 3         # rcNotConnected: no such channel, or its server is not running

    @property
    def sdk_name(self) -> str:
        return {0: "rcOk", 1: "rcInvalidArgument", 2: "rcSecurityDisallow", 3: "rcNotConnected"}[self.value]


MALFORMED = "malformed message"


def _rc(d: Decision) -> Rc:
    """What the kernel tells the sender about a decision: the structure check fails
    before the rules run, so a malformed message is an invalid argument, not a denial."""
    if d.granted:
        return Rc.OK
    return Rc.INVALID_ARGUMENT if d.reason.startswith(MALFORMED) else Rc.SECURITY_DISALLOW


_new_object = object.__new__
_set_attribute = object.__setattr__


def _make_event(kind: str, src, dst, endpoint, method, message: dict) -> Event:
    """``Event(kind, src, dst, endpoint, method, message)`` for the kernel's own
    events, whose ``message`` is already a fresh dictionary (what the factories'
    ``message_arg`` would make of it): built without the frozen dataclass's
    ``__init__`` (six ``object.__setattr__`` calls), which costs twice as much."""
    e = _new_object(Event)
    _set_attribute(e, "__dict__", {"kind": kind, "src": src, "dst": dst, "endpoint": endpoint, "method": method,
                                   "message": message})
    return e


def _event_factory() -> Callable[..., Event]:
    """:func:`_make_event` when it builds exactly the event the constructor builds
    (were Event given ``__slots__`` or more state, it would not), else the constructor."""
    try:
        args = ("request", "a", "b", "c", "d", {"v": 1})
        fast, slow = _make_event(*args), Event(*args)
        if fast == slow and fast.__dict__ == slow.__dict__ and list(vars(fast)) == list(vars(slow)):
            return _make_event
    except Exception:                                  # noqa: BLE001 - any doubt: the constructor
        pass
    return Event


_event = _event_factory()

# Message values that are immutable: a record holding only these may be built later
# (see Kernel._lazy) and still show the message as it was when it was sent.
_IMMUTABLE = frozenset({int, str, bytes, bool, float, type(None)})
_RC_NAMES = {0: "rcOk", 1: "rcInvalidArgument", 2: "rcSecurityDisallow", 3: "rcNotConnected"}
_NO_ADDRESS = object()


def _chooser(rng: random.Random) -> Callable[[int], int]:
    """``i -> index`` such that ``seq[index]`` is ``rng.choice(seq)`` for a sequence of
    length ``i``, consuming the generator exactly as ``choice`` does.

    ``random.Random.choice`` is ``seq[self._randbelow(len(seq))]``; calling that
    directly saves a Python frame on every scheduler step.  Checked here, on a copy
    of the generator, so that a Python whose ``choice`` draws differently (or a
    generator of another class) gets ``choice`` itself, and the same interleaving.
    """
    def by_choice(n: int) -> int:
        return rng.choice(range(n))

    below = getattr(rng, "_randbelow", None)
    if type(rng) is not random.Random or not callable(below):
        return by_choice
    a, b = random.Random(), random.Random()
    a.setstate(rng.getstate())
    b.setstate(rng.getstate())
    sizes = [2, 3, 5, 2, 7, 64, 3, 2, 1000, 6] * 3
    if [a.choice(range(n)) for n in sizes] != [b._randbelow(n) for n in sizes] or a.getstate() != b.getstate():
        return by_choice
    return below


# A message value kept for a record built later (Kernel._lazy) is frozen: scalars
# as they are, a list or tuple as (_LIST, *elements), a dictionary with text keys as
# (_DICT, key, value, ...), every element frozen likewise.  Immutable, so the record
# shows the value as it was sent, and made of tuples, which the garbage collector
# stops tracking.  A value of any other kind is not frozen (_UNFROZEN): its record
# is built at once.
_LIST, _DICT = "\x00list", "\x00dict"      # first element of a frozen container (never a scalar: those are not tuples)
_UNFROZEN = object()


def _freeze(v: Any) -> Any:
    t = type(v)
    if t in _IMMUTABLE:
        return v
    if t is list or t is tuple:
        kinds = set(map(type, v))
        if kinds <= _IMMUTABLE:
            return (_LIST, *v)
        out: list = [_LIST]
        for x in v:
            x = _freeze(x)
            if x is _UNFROZEN:
                return _UNFROZEN
            out.append(x)
        return tuple(out)
    if t is dict:
        out = [_DICT]
        for k, x in v.items():
            if type(k) is not str:
                return _UNFROZEN
            if type(x) not in _IMMUTABLE:
                x = _freeze(x)
                if x is _UNFROZEN:
                    return _UNFROZEN
            out += (k, x)
        return tuple(out)
    if t is bytearray:
        return bytes(v)
    return _UNFROZEN


def _thaw(v: Any) -> Any:
    """:func:`ksm.events.jsonable` of the value ``v`` froze: the one JSON form
    (:func:`ksm.values.to_json`) keeps scalars as they are, except bytes (hex text)
    and integers too wide to print (their size); sequences become lists."""
    t = type(v)
    if t is tuple:
        if v[0] is _LIST:
            return [_thaw(x) for x in v[1:]]
        return {v[i]: _thaw(v[i + 1]) for i in range(1, len(v), 2)}
    if t is bytes:
        return v.hex()
    if t is int and v.bit_length() > _JSON_INT_BITS:
        return int_text(v)
    return v


def _flat_json(entry: tuple, start: int) -> dict:
    """The message whose keys and frozen values alternate in ``entry`` from
    ``start``, thawed (see :func:`_thaw`; text and ordinary integers stay as they are)."""
    out = {}
    for i in range(start, len(entry), 2):
        v = entry[i + 1]
        t = type(v)
        if not (t is str or (t is int and -_WIDE < v < _WIDE)):
            v = _thaw(v)
        out[entry[i]] = v
    return out


_WIDE = 1 << _JSON_INT_BITS          # |v| < _WIDE is v.bit_length() <= _JSON_INT_BITS
_PLAIN = frozenset({str, int, type(None)})      # event fields whose description depends on their value alone


def _decode(lay: wire.Layout, data: bytes, body) -> dict:
    """The kernel's structure check: the header's split between constant part and
    arena must be the method's, and the body must decode."""
    fixed = wire.HEADER.unpack_from(data)[5]
    if fixed != lay.fixed_size:
        raise wire.WireError(f"constant part of {fixed} bytes, the method's is {lay.fixed_size}")
    return lay.decode(body)


def find_address(cls: ProcessClass | None, endpoint: str | int | None, method: str | int | None) -> Address | None:
    """The endpoint and method of a server of class ``cls`` that a message names (by
    name or RIID/MID).

    None for a class without such an endpoint or method, or without an EDL at all
    (opaque): such messages travel as dictionaries and the security module's own
    structure check and rules decide them.
    """
    if cls is None or cls.opaque:
        return None
    ep = next((e for e in cls.endpoints if endpoint in (e.name, e.riid)), None)
    m = next((m for m in ep.interface.methods if method in (m.name, m.index)), None) if ep is not None else None
    return Address(ep, m) if m is not None else None


class IpcError(Exception):
    """A kernel call that did not succeed; ``rc`` says why, ``decision`` is the module's answer."""

    def __init__(self, rc: Rc, what: str, decision: Decision | None = None):
        super().__init__(f"{rc.sdk_name}: {what}" + (f" ({decision.reason})" if decision is not None else ""))
        self.rc, self.decision = rc, decision


class ServerError(Exception):
    """An error reply: raised in the client by ``call`` when the server answered with
    error-parameters, and raised by a server implementation to send one."""

    def __init__(self, params: dict | None = None, **kw: Any):
        self.params = dict(params or {}, **kw)
        super().__init__(f"server error {self.params}")


@dataclass(frozen=True)
class Address:
    """Where a message goes inside the server: endpoint (RIID) and method (MID), with
    the wire layouts of its request, response and error (compiled once)."""

    endpoint: Endpoint
    method: MethodDef
    layouts: dict = field(default_factory=dict, compare=False, hash=False)
    sealers: dict = field(default_factory=dict, compare=False, hash=False, repr=False)   # kind -> wire.sealer
    outs: tuple = field(default=(), compare=False, hash=False, repr=False)               # out-parameter names

    def __post_init__(self) -> None:
        object.__setattr__(self, "outs", tuple(p.name for p in self.method.out_params))
        for kind in ("request", "response", "error"):
            lay = self.layouts[kind] = wire.layout(self.method, kind)
            self.sealers[kind] = wire.sealer(self.endpoint.riid, self.method.index, kind, lay)

    @property
    def riid(self) -> int:
        return self.endpoint.riid

    @property
    def mid(self) -> int:
        return self.method.index


@dataclass
class Request:
    """A delivered request, as the server's ``recv`` returns it."""

    channel: str
    client: str
    endpoint: str | None
    method: str | None
    message: dict
    caller: "Thread"
    address: Address | None = None       # None: an opaque server (no EDL), dictionaries only
    data: bytes | None = None            # the request as it travelled
    id: int = 0                          # the exchange's number in the trace
    server: str = ""                     # the server task it was sent to
    holder: Thread | None = None         # the thread whose ``recv`` took it (None: still queued)
    answered: bool = False               # a reply was delivered; the kernel has no such request outstanding


@dataclass(init=False)
class Reply:
    """What a blocked client gets back: out- or error-parameters, or an IPC error."""

    rc: Rc
    kind: str = "response"        # response | error
    message: dict = field(default_factory=dict)
    decision: Decision | None = None

    def __init__(self, rc: Rc, kind: str = "response", message: dict | None = None,
                 decision: Decision | None = None):
        # Written out: the generated __init__ tests for the default factory on every
        # call, and one reply is made per exchange.
        self.rc = rc
        self.kind = kind
        self.message = {} if message is None else message
        self.decision = decision


@dataclass(eq=False)
class Thread:
    """One thread of a process; ``waits`` says what it is blocked on (None: ready or done)."""

    name: str
    task: str
    glet: Any = None
    waits: tuple | None = None        # ("call", server task, request) | ("recv", channel ids, (id, queue) pairs,
    #                                   topology, queues)
    done: bool = False
    error: BaseException | None = None
    reply: Reply | None = None
    serves: tuple | None = None       # (channel id, queue) of its last ``recv`` (None: it never served)


@dataclass
class Outcome:
    """How a run ended: every thread finished, a deadlock, a limit, or a crash."""

    status: str                       # finished | deadlock | step-limit | timeout | crashed
    steps: int
    cycle: list[str] = field(default_factory=list)      # deadlock: the wait-for cycle, thread names
    blocked: list[str] = field(default_factory=list)    # threads still waiting
    errors: list[str] = field(default_factory=list)     # threads that raised
    running: str | None = None        # timeout: the thread the limit interrupted (None: between steps)
    detail: str = ""                  # timeout: what was running when the time ran out, for people

    @property
    def ok(self) -> bool:
        return self.status == "finished"


def _library_dirs() -> tuple[str, ...]:
    """Folders whose code is not the behaviour's: this toolkit, and the installed
    Python and its packages (a loop calling ``json.dumps`` is the caller's loop)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dirs = [os.path.join(here, "ksm"), os.path.join(here, "policy_lang")]
    dirs += [sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    return tuple(os.path.join(os.path.abspath(d), "") for d in dirs if d)


def _user_frame(exc: BaseException | None) -> tuple[str | None, bool]:
    """``file:line`` of the innermost frame of ``exc`` in behaviour code, and whether
    the exception hit inside the toolkit (a kernel call) below that frame."""
    tb = exc.__traceback__ if exc is not None else None
    libraries = _library_dirs()
    toolkit = libraries[:2]
    user, in_kernel = None, False
    while tb is not None:
        name = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if name.startswith(libraries):
            in_kernel = in_kernel or (user is not None and name.startswith(toolkit))
        else:
            shown = os.path.relpath(name) if name.startswith(os.path.join(os.getcwd(), "")) else name
            user, in_kernel = f"{shown}:{tb.tb_lineno}", False
        tb = tb.tb_next
    return user, in_kernel


class Kernel:
    """A running solution: the security module, its processes, channels and threads.

    ``trace=False`` keeps no records (the benchmark's setting); crashes are still
    reported in the :class:`Outcome`.  ``on_record`` sees every record as it is made
    (the taint monitor and live printing use it).

    Records are dictionaries (:mod:`ksm.sim.trace`), but the kernel keeps the ones
    of ordinary exchanges as tuples of what it knew and builds the dictionaries
    when :attr:`records` is read (with ``on_record``, at once): only values that
    cannot change are kept that way, so the dictionaries are the ones the kernel
    would have built on the spot.
    """

    def __init__(self, solution: Solution, seed: int = 0, options: Options | None = None,
                 on_record: Callable[[dict], None] | None = None, trace: bool = True):
        self.solution = solution
        self.module = SecurityModule(solution, options)
        self._ask_request = self._ask_response = self._ask_error = None     # see _use_call_api
        self.rng = random.Random(seed)
        self._records: list[dict] = []
        self._log: list = []              # records not built yet: tuples (see _lazy), or built dictionaries
        self._described: dict[tuple, str] = {}
        self._heads: dict[tuple, dict] = {}              # the constant part of exchange records (see _build_kept)
        self._explained: dict[int, tuple] = {}          # id(steps) -> (steps, index in _explanations)
        self._explanations: list[tuple[str, ...]] = []
        self.trace = trace or on_record is not None
        self.on_record = on_record
        self.threads: list[Thread] = []
        self.current: Thread | None = None
        self.steps = 0
        self.exchanges = 0                # requests delivered so far (numbers them in the trace)
        self.channels: dict[tuple[str, str], Channel] = {(ch.client, ch.id): ch for ch in solution.channels}
        self.queues: dict[tuple[str, str], deque] = {}      # (server task, channel id) -> requests
        self.topology = 0                 # bumped by every run-time channel (recv re-reads its channels)
        self._inboxes: dict[tuple, tuple] = {}
        self.services: dict[str, tuple[str, str | None]] = {}   # published name -> (server task, endpoint)
        self.running: set[str] = set()
        self.classes = {i.task: i.cls for i in solution.instances}
        self._addresses: dict[tuple, Address | None] = {}
        self.monitors: list[Callable[[str, str, str, dict], None]] = []   # (kind, from, to, message)
        self._scheduler: Any = None
        self._live: list[Thread] = []     # the run's threads not done, in spawn order (the scheduler's choice list)
        self._known = 0                   # threads adopted by the run so far
        self._limits: tuple = (0, None, None)   # the run's (max_steps, deadline, timeout)
        self._end: str | None = None      # why the run ends, set where that was found
        self._below: Callable[[int], int] = _chooser(self.rng)   # rng.choice, as an index
        for d in self.module.boot():
            if self.trace:
                e = d.event
                if d.granted and type(e.message) is dict:
                    self._lazy("execute", None, e.kind, e.src, e.dst, e.endpoint, e.method, e.message, d, None, None, 0)
                else:
                    self._record("execute", None, e, d)
            if d.granted and d.event.dst in self.classes:
                self.running.add(d.event.dst)

    @property
    def records(self) -> list[dict]:
        """The trace: one dictionary per record, in order (see :mod:`ksm.sim.trace`)."""
        if self._log:
            self._flush()
        return self._records

    @records.setter
    def records(self, value: list[dict]) -> None:
        self._log = []
        self._records = value

    # ------------------------------------------------------------------ set-up
    def spawn(self, task: str, body: Callable[["Kernel"], Any], name: str | None = None) -> Thread:
        """A thread of ``task`` running ``body(kernel)``; a task that did not start gets none."""
        if task not in self.running:
            raise ValueError(f"{task} is not running (its start was denied, or it is not in init.yaml)")
        th = Thread(name or f"{task}#{sum(t.task == task for t in self.threads)}", task)
        th.glet = greenlet.greenlet(lambda: self._run_thread(th, body))
        self.threads.append(th)
        return th

    def _run_thread(self, th: Thread, body) -> None:
        try:
            body(self)
        except (greenlet.GreenletExit, SimTimeout):     # not the behaviour's doing: the scheduler's business
            raise
        except BaseException as exc:        # the behaviour's own bug: recorded, the run goes on
            th.error = exc
            self._record("crash", th, None, None, detail=f"{type(exc).__name__}: {exc}", force=True)
        th.done = True
        th.waits = None

    # ------------------------------------------------------------------ addresses
    def process_class(self, task: str) -> ProcessClass | None:
        """The class of a running or init.yaml process (or of a built-in by its name)."""
        return self.solution.classes.get(self.classes.get(task, task))

    def address(self, server: str, endpoint: str | int | None, method: str | int | None) -> Address | None:
        """:func:`find_address`, cached per (server, endpoint, method)."""
        key = (server, endpoint, method)
        if key in self._addresses:
            return self._addresses[key]
        found = self._addresses[key] = find_address(self.process_class(server), endpoint, method)
        return found

    # ------------------------------------------------------------------ kernel calls
    def call(self, channel: str, endpoint: str | int | None, method: str | int | None, message: dict) -> dict:
        """Send a request on the calling thread's channel and block until the reply.

        The message is marshalled as a generated proxy would; a value that does not
        fit the IDL type cannot be marshalled and fails with ``rcInvalidArgument``
        before anything is sent.  Returns the out-parameters; raises
        :class:`IpcError` for a denied or failed exchange, and :class:`ServerError`
        when the server replied with an error.
        """
        th = self.current
        if th is None:
            self._me()
        ch = self.channels.get((th.task, channel))
        if ch is None or ch.server not in self.running:
            ch = self._channel(th, channel)
        addr = self._addresses.get((ch.server, endpoint, method), _NO_ADDRESS)
        if addr is _NO_ADDRESS:
            addr = self.address(ch.server, endpoint, method)
        if addr is None:
            return self._request(th, ch, endpoint, method, dict(message), None, None)
        try:
            data, body, decoded = addr.sealers["request"](message)
        except wire.WireError as exc:
            return self._refuse(th, ch, Event.request(th.task, ch.server, addr.endpoint.name, addr.method.name),
                                f"{MALFORMED}: cannot marshal: {exc}")
        if decoded is None:
            # The kernel's structure check, as call_raw() makes it; the header is the
            # one just written (kind, RIID, MID and sizes are right by construction).
            try:
                decoded = addr.layouts["request"].decode(body)
            except wire.WireError as exc:
                what = Event.request(th.task, ch.server, addr.endpoint.name, addr.method.name)
                return self._refuse(th, ch, what, f"{MALFORMED}: {exc}")
        return self._request(th, ch, addr.endpoint.name, addr.method.name, decoded, addr, data)

    def call_raw(self, channel: str, data: bytes, _checked: tuple | None = None) -> dict:
        """Send a request already in wire form (as a hand-written or hostile client would).

        The kernel reads the RIID and MID, decodes the message for that method and
        denies it as malformed if it does not decode.
        """
        th = self._me()
        ch, addr = _checked if _checked is not None else (self._channel(th, channel), None)
        try:
            kind, riid, mid, body = wire.unpack_header(data)
            if kind != "request":
                raise wire.WireError(f"a {kind} header on a request")
            if addr is None or (addr.riid, addr.mid) != (riid, mid):
                addr = self.address(ch.server, riid, mid)
            if addr is None:
                raise wire.WireError(f"{ch.server} has no endpoint RIID {riid} with a method MID {mid}")
            message = _decode(addr.layouts["request"], data, body)
        except wire.WireError as exc:
            what = Event.request(th.task, ch.server, addr.endpoint.name if addr else None,
                                 addr.method.name if addr else None)
            return self._refuse(th, ch, what, f"{MALFORMED}: {exc}")
        return self._request(th, ch, addr.endpoint.name, addr.method.name, message, addr, bytes(data))

    def _request(self, th: Thread, ch: Channel, endpoint, method, message: dict,
                 addr: Address | None, data: bytes | None) -> dict:
        server = ch.server
        # The event shares the message with the request: it is a fresh dictionary
        # (decoded, or copied by call()), the decision is made before anyone else
        # sees it, and a granted event is not kept (its record holds the values).
        ask = self._ask_request
        if ask is not None:                     # the module's call API: no Event unless it is needed
            event = None
            d = ask(th.task, server, endpoint, method, message)
        else:
            event = _event("request", th.task, server, endpoint, method, message)
            d = self.module.decide(event)
        if not d.granted:
            if event is None:
                event = _event("request", th.task, server, endpoint, method, message)
                d = d._replace(event=event)
            rc = _rc(d)
            self._record("call", th, event, d, rc=rc, channel=ch.id)
            self._yield()                       # a kernel call is a scheduling point either way
            raise IpcError(rc, event.describe(), d)
        self.exchanges += 1
        if self.trace:
            self._lazy("call", th, "request", th.task, server, endpoint, method, message, d, None, ch.id,
                       self.exchanges)
        req = Request(ch.id, th.task, endpoint, method, message, th, addr, data, self.exchanges, server)
        q = self.queues.get((server, ch.id))
        if q is None:
            q = self._queue(server, ch.id)
        q.append(req)
        if self.monitors:
            for monitor in self.monitors:
                monitor("request", th.task, server, message)
        th.waits = ("call", server, req)
        self._yield()
        reply, th.reply = th.reply, None
        if reply is None:                       # only a reply makes a caller ready again
            raise RuntimeError(f"{th.name} resumed in call without a reply to exchange {req.id}")
        if reply.rc != Rc.OK:
            what = (event or _event("request", th.task, server, endpoint, method, {})).describe()
            raise IpcError(reply.rc, f"reply to {what}", reply.decision)
        if reply.kind == "error":
            raise ServerError(reply.message)
        return reply.message

    def _refuse(self, th: Thread, ch: Channel, event: Event, reason: str) -> dict:
        """A request the kernel rejects before the rules: malformed (rcInvalidArgument)."""
        d = Decision(False, reason, event)
        self._record("call", th, event, d, rc=Rc.INVALID_ARGUMENT, channel=ch.id)
        self._yield()
        raise IpcError(Rc.INVALID_ARGUMENT, event.describe(), d)

    def recv(self, channels: tuple[str, ...] | None = None) -> Request:
        """Block until a request arrives on one of the calling thread's server channels
        (static ones, and run-time ones connected while it waits)."""
        th = self.current
        if th is None:
            self._me()
        while True:
            hit = self._inboxes.get((th.task, channels))
            if hit is None or hit[0] != self.topology:
                self._inbox(th.task, channels)
                hit = self._inboxes[(th.task, channels)]
            boxes = th.serves = hit[1]
            for _, q in boxes:
                if q:
                    req = q.popleft()
                    req.holder = th
                    th.waits = None
                    if self.trace:
                        self._lazy("recv", th, "request", req.client, th.task, req.endpoint, req.method,
                                   req.message, None, None, req.channel, req.id)
                    return req
            # (…, queues): the scheduler's readiness test reads the queues alone
            th.waits = ("recv", hit[2], boxes, hit[0], hit[3])
            self._yield()

    def _inbox(self, task: str, channels: tuple[str, ...] | None) -> tuple:
        """(channel id, queue) of every channel ``task`` serves (among ``channels``),
        cached until the next run-time channel."""
        key = (task, channels)
        hit = self._inboxes.get(key)
        if hit is None or hit[0] != self.topology:
            boxes = tuple((cid, self._queue(task, cid)) for (_, cid), ch in self.channels.items()
                          if ch.server == task and (channels is None or cid in channels))
            hit = self._inboxes[key] = (self.topology, boxes, tuple(cid for cid, _ in boxes),
                                        tuple(q for _, q in boxes))
        return hit[1]

    def _queue(self, server: str, channel: str) -> deque:
        q = self.queues.get((server, channel))
        if q is None:
            q = self.queues[(server, channel)] = deque()
        return q

    def reply(self, req: Request, message: dict | None = None, error: bool = False) -> None:
        """Answer ``req`` with out-parameters, or with error-parameters when ``error``."""
        self._reply(req, dict(message or {}), "error" if error else "response")

    def _reply(self, req: Request, message: dict, kind: str) -> None:
        """:meth:`reply` with ``message`` a dictionary of the caller's own, which the
        kernel may keep (the dispatcher's, made from what the handler returned)."""
        th = self.current
        if th is None:
            self._me()
        addr = req.address
        if addr is not None:
            try:
                data, body, decoded = addr.sealers[kind](message)
            except wire.WireError as exc:
                self._answer(th, req, kind, message, f"{MALFORMED}: cannot marshal: {exc}")
                return
            if decoded is None:
                # reply_raw()'s structure check; the header is the one just written
                try:
                    decoded = addr.layouts[kind].decode(body)
                except wire.WireError as exc:
                    self._answer(th, req, kind, {}, f"{MALFORMED}: {exc}")
                    return
            self._answer(th, req, kind, decoded, None)
            return
        self._answer(th, req, kind, message, None)

    def reply_raw(self, req: Request, data: bytes) -> None:
        """Answer ``req`` with a reply already in wire form; it must decode for the
        request's method, or it is malformed."""
        th = self._me()
        kind, message, problem = "response", {}, None
        try:
            kind, riid, mid, body = wire.unpack_header(data)
            if kind == "request":
                raise wire.WireError("a request header on a reply")
            addr = req.address
            if addr is None or (riid, mid) != (addr.riid, addr.mid):
                raise wire.WireError(f"RIID {riid}/MID {mid} do not match the request being answered")
            message = _decode(addr.layouts[kind], data, body)
        except wire.WireError as exc:
            problem = f"{MALFORMED}: {exc}"
        self._answer(th, req, kind, message, problem)

    def _answer(self, th: Thread, req: Request, kind: str, message: dict, problem: str | None) -> None:
        # ``message`` is the kernel's own (decoded, or copied by reply()): see _request.
        kind = "error" if kind == "error" else "response"
        if req.answered or req.holder is None or (req.server and th.task != req.server):
            what = self._not_outstanding(th, req)
        else:
            what = ""
        if what:
            event = _event(kind, th.task, req.client, req.endpoint, req.method, message)
            # E.g. a second reply: the caller has had its answer (and may be waiting
            # in another call by now).  The real kernel has no such request
            # outstanding, so the reply goes nowhere, the security module never sees
            # it, and the replier's Reply fails.
            self._record("reply", th, event, None, rc=Rc.INVALID_ARGUMENT, channel=req.channel,
                         exchange=req.id, detail=what)
            self._yield()
            raise IpcError(Rc.INVALID_ARGUMENT, f"{event.describe()}: {what}")
        req.answered = True
        ask = (self._ask_response if kind == "response" else self._ask_error) if not problem else None
        if ask is not None:                     # the module's call API: no Event unless it is needed
            event = None
            d = ask(th.task, req.client, req.endpoint, req.method, message)
        else:
            event = _event(kind, th.task, req.client, req.endpoint, req.method, message)
            d = Decision(False, problem, event) if problem else self.module.decide(event)
        if d.granted:
            rc = Rc.OK
            if self.trace:
                self._lazy("reply", th, kind, th.task, req.client, req.endpoint, req.method, message, d,
                           rc, req.channel, req.id)
        else:
            if event is None:
                event = _event(kind, th.task, req.client, req.endpoint, req.method, message)
                d = d._replace(event=event)
            rc = _rc(d)
            self._record("reply", th, event, d, rc=rc, channel=req.channel, exchange=req.id)
        caller = req.caller
        caller.reply = Reply(rc, kind, message if d.granted else {}, d)
        caller.waits = None
        if d.granted and self.monitors:
            for monitor in self.monitors:
                monitor(kind, th.task, req.client, message)
        self._yield()
        if rc != Rc.OK:
            raise IpcError(rc, event.describe(), d)

    @staticmethod
    def _not_outstanding(th: Thread, req: Request) -> str:
        """Why ``th`` cannot answer ``req`` (empty: it can)."""
        if req.answered:
            return f"exchange {req.id} was already answered: no such request is outstanding"
        if req.holder is None:
            return f"exchange {req.id} has not been received: no such request is outstanding"
        if req.server and th.task != req.server:
            return f"exchange {req.id} was sent to {req.server}, not to {th.task}"
        return ""

    def pause(self) -> None:
        """Give way to the other ready threads (a thread yield: no message, no decision)."""
        self._me()
        self._yield()

    def note(self, text: str) -> None:
        """A line of the behaviour's own in the trace (not a scheduling point)."""
        self._record("note", self.current, None, None, detail=text)

    def inject(self, event: Event) -> Decision:
        """Deliver one message outside any thread, in the order a caller chooses (the
        replay of a counterexample): marshalled, structure-checked and decided like a
        message of a run, and recorded as the sender's ``call`` or ``reply``.

        A message between two processes with no channel is still decided: the prover
        assumes a channel may be opened at run time, and so does the replay.
        """
        kind = event.kind
        if kind == "execute":
            d = self.module.decide(event)
            self._record("execute", None, event, d)
            if d.granted and event.dst in self.classes:
                self.running.add(event.dst)
            return d
        sender = Thread(f"{event.src}/replay", str(event.src))
        if kind not in ("request", "response", "error"):
            d = self.module.decide(event)
            self._record(kind, sender, event, d, rc=_rc(d))
            return d
        client, server = (event.src, event.dst) if kind == "request" else (event.dst, event.src)
        channel = next((ch.id for ch in self.channels.values() if (ch.client, ch.server) == (client, server)),
                       "kernel" if KERNEL_CLASS in (client, server) else "(run-time)")
        addr = self.address(server, event.endpoint, event.method)
        problem = None
        message = dict(event.message)
        if addr is not None:
            try:
                data = wire.pack(addr.riid, addr.mid, kind, addr.layouts[kind], message)
                message = addr.layouts[kind].decode(wire.unpack_header(data)[3])
            except wire.WireError as exc:
                problem = f"{MALFORMED}: {exc}"
        event = Event(kind, event.src, event.dst, event.endpoint, event.method, message)
        d = Decision(False, problem, event) if problem else self.module.decide(event)
        self._record("call" if kind == "request" else "reply", sender, event, d, rc=_rc(d), channel=channel)
        if d.granted:
            for monitor in self.monitors:
                monitor(kind, str(event.src), str(event.dst), message)
        return d

    # ------------------------------------------------------------------ run-time channels
    def publish(self, service: str, endpoint: str | None = None) -> None:
        """Offer the calling process's ``endpoint`` under ``service`` (a kernel request
        the policy decides: ``request dst=kl.core.Core endpoint=cm.CM method=Listen``;
        the answer names the service)."""
        th = self._me()
        self._kernel_service(th, "Listen", {"msecs": 0}, {"service": service, "rc": 0})
        self.services[service] = (th.task, endpoint)
        self._record("publish", th, None, None, detail=f"{service} -> {th.task} {endpoint or ''}".rstrip())

    def connect(self, service: str) -> str:
        """Open a channel to a published service; returns its channel id (the service
        name).  Both the request and the kernel's answer are decided by the policy;
        an unknown service, or a server no longer running, is ``rcNotConnected``."""
        th = self._me()
        target = self.services.get(service)
        if target is None or target[0] not in self.running:
            self._kernel_service(th, "Connect", {"server": "", "service": service, "msecs": 0},
                                 {"rc": int(Rc.NOT_CONNECTED)})
            raise IpcError(Rc.NOT_CONNECTED, f"no running server publishes {service!r}")
        server, _ = target
        self._kernel_service(th, "Connect", {"server": server, "service": service, "msecs": 0}, {"rc": 0})
        self.channels[(th.task, service)] = Channel(service, th.task, server, None)
        self.topology += 1
        self._record("connect", th, None, None, channel=service, detail=f"{th.task} -> {server}")
        return service

    def _kernel_service(self, th: Thread, method: str, message: dict, answer: dict) -> None:
        """One exchange with the kernel: the request and its response (``answer``, whose
        ``rc`` says whether it worked, as the kernel's methods do), both decided by the policy."""
        event = Event.request(th.task, KERNEL_CLASS, CM_ENDPOINT, method, message)
        d = self.module.decide(event)
        self._record("call", th, event, d, rc=_rc(d), channel="kernel")
        self._yield()
        if not d.granted:
            raise IpcError(_rc(d), event.describe(), d)
        back = Event.response(KERNEL_CLASS, th.task, CM_ENDPOINT, method, answer)
        d = self.module.decide(back)
        self._record("reply", None, back, d, rc=_rc(d), channel="kernel")
        if not d.granted:
            raise IpcError(_rc(d), back.describe(), d)

    # ------------------------------------------------------------------ scheduling
    def run(self, max_steps: int = 100_000, timeout: float | None = None) -> Outcome:
        """Run every thread until all finish, all block (deadlock), ``max_steps``
        switches, or ``timeout`` seconds of wall time.

        The scheduler itself can only look at the clock between switches, which a
        thread that never makes a kernel call never reaches; so with a timeout a
        :class:`~ksm.sim.watchdog.Watchdog` interrupts whatever code is running in
        this OS thread.  Its :class:`SimTimeout` never leaves this method: it is
        caught here whether it lands in a thread (it then surfaces at the switch) or
        in the scheduler, and the watchdog is stopped, with any undelivered shot
        withdrawn, before this method returns.
        """
        if timeout is None:
            return self._schedule(max_steps)
        dog = Watchdog(timeout)
        outcome: Outcome | None = None
        hit: SimTimeout | None = None
        try:
            dog.start()
            outcome = self._schedule(max_steps, dog.deadline, timeout)
        except SimTimeout as exc:
            hit = exc                                  # nothing slow here: see Watchdog.stop
        finally:
            while True:                                # a shot may land on the call itself
                try:
                    dog.stop()
                    break
                except SimTimeout:
                    continue
        if hit is not None or outcome is None:
            outcome = self._interrupted(hit, timeout)
        return outcome

    def _schedule(self, max_steps: int, deadline: float | None = None, timeout: float | None = None) -> Outcome:
        """The scheduler loop; ``deadline`` is checked every 256 switches (cheap
        enough for the benchmark, and the watchdog covers code that never switches).

        A step is :meth:`_pick`: the same choice, from the same list of ready threads,
        whether it is made here or by a thread giving way in :meth:`_yield`.  So this
        loop runs only at the start, when a thread ends (its greenlet returns here,
        to its parent) and when a thread found that the run ends.
        """
        self._scheduler = greenlet.getcurrent()
        self._live = [t for t in self.threads if not t.done]
        self._adopt(self._live)
        self._known = len(self.threads)
        self._limits = (max_steps, deadline, timeout)
        self._below = _chooser(self.rng)
        self._use_call_api()
        self._end = None
        while True:
            th = self._pick()
            if th is None:
                return self._finish()
            self.current = th
            th.glet.switch()
            if self._end is not None:                  # a thread's _pick found the end and came back here
                return self._finish()
            th, self.current = self.current, None      # the thread that ended (greenlets end in their parent)
            if th is not None and th.done:
                self._live.remove(th)

    def _use_call_api(self) -> None:
        """Decide IPC messages through the module's call API (``request``,
        ``response``, ``error``: ``decide()`` without building an Event) when it has
        one and ``decide`` is its class's own, as a run starts.  Otherwise (an older
        module, or ``decide`` replaced, as a test or the benchmark may do) every
        message goes through ``decide``."""
        m = self.module
        asks = [getattr(m, kind, None) for kind in ("request", "response", "error")]
        if (isinstance(m, SecurityModule) and type(m).decide is SecurityModule.decide
                and "decide" not in getattr(m, "__dict__", {"decide": None}) and all(map(callable, asks))):
            self._ask_request, self._ask_response, self._ask_error = asks
        else:
            self._ask_request = self._ask_response = self._ask_error = None

    def _pick(self) -> Thread | None:
        """One scheduler step: the next thread to run (a seeded choice among the ready
        ones, in spawn order), or None when the run ends (``_end`` says why).

        :meth:`_yield` makes the same step inline; the two must stay the same."""
        threads = self.threads
        if self._known != len(threads):               # threads spawned while running
            new = threads[self._known:]
            self._adopt(new)
            self._live.extend(new)
            self._known = len(threads)
        topology = self.topology
        # A thread is ready when it waits for nothing, or waits in recv and a channel
        # was connected meanwhile or one of its queues (w[4]) holds a request.
        ready = [t for t in self._live
                 if (w := t.waits) is None or (w[0] == "recv" and (w[3] != topology or any(w[4])))]
        if not ready:
            self._end = "ending"
            return None
        steps = self.steps
        max_steps, deadline, _ = self._limits
        if steps >= max_steps:
            self._end = "step-limit"
            return None
        if deadline is not None and not steps % 256 and time.monotonic() > deadline:
            self._end = "timeout"
            return None
        self.steps = steps + 1
        n = len(ready)
        return ready[self._below(n)] if n > 1 else ready[0]

    def _finish(self) -> Outcome:
        """The outcome of a run whose end :meth:`_pick` found (in the scheduler's greenlet)."""
        end, self._end = self._end, None
        self.current = None
        if end == "ending":
            return self._ending()
        if end == "step-limit":
            return self._ending("step-limit")
        return self._interrupted(None, self._limits[2] or 0)

    def _adopt(self, threads: list[Thread]) -> None:
        """Make the scheduler the parent of ``threads``' greenlets.

        A greenlet returns to its parent when it ends, or raises into it; the
        parent is where the greenlet was created, which for a thread spawned by
        another thread is that thread (it would be resumed in the middle of a
        kernel call) and for a kernel built in another OS thread is not in this
        one.  A greenlet that has not started yet may still be moved.
        """
        me = self._scheduler
        for t in threads:
            if t.glet.parent is not me:
                try:
                    t.glet.parent = me
                except ValueError:                     # started in another OS thread: switch() will say so
                    pass

    def _interrupted(self, exc: SimTimeout | None, timeout: float) -> Outcome:
        """The outcome of a run whose time ran out, naming what was running.

        The thread is the one the scheduler switched into (none when the clock was
        read between switches); where in it is the innermost frame of the watchdog's
        exception that lies outside the toolkit (the behaviour's line), so a person
        sees which loop did not give way.
        """
        th, self.current = self.current, None
        head = f"timeout after {float(timeout)} s"
        if th is None:
            return self._ending("timeout", detail=f"{head} between scheduler steps")
        short = th.name[len(th.task) + 1:] if th.name.startswith(th.task + "/") else th.name
        who = f"{th.task} (thread {short})"
        user, in_kernel = _user_frame(exc)
        if user is None:
            what = f"{head} while {who} was running"
        elif in_kernel:
            what = f"{head} while {who} was in a kernel call from {user}"
        else:
            what = f"{head} while {who} was running behaviour code at {user}"
        return self._ending("timeout", running=th.name, detail=what)

    def _ending(self, limit: str | None = None, running: str | None = None, detail: str = "") -> Outcome:
        """No thread can run (finished or deadlock), or a limit was hit.

        A deadlock is a thread blocked in ``call`` when nothing can run any more: its
        reply cannot come.  Threads idle in ``recv`` are not: with no caller left
        waiting, the run has simply finished (servers wait for requests for ever).
        """
        errors = [f"{t.name}: {type(t.error).__name__}: {t.error}" for t in self.threads if t.error]
        blocked = [t.name for t in self.threads if not t.done and t.waits is not None]
        if limit is not None:
            return Outcome(limit, self.steps, blocked=blocked, errors=errors, running=running, detail=detail)
        calling = [t for t in self.threads if not t.done and t.waits is not None and t.waits[0] == "call"]
        if calling:
            return Outcome("deadlock", self.steps, cycle=self.wait_for_cycle(), blocked=blocked, errors=errors,
                           detail="\n".join(self._stuck(t) for t in calling))
        return Outcome("crashed" if errors else "finished", self.steps, blocked=blocked, errors=errors)

    def _servers_of(self, req: Request) -> list[Thread]:
        """The threads that would serve ``req``: the one that received it; while it is
        still queued, the server's threads blocked in ``call`` that served its
        channel before (or, if none ever did, all of them: a thread that never
        called ``recv`` yet might)."""
        if req.holder is not None:
            h = req.holder
            return [h] if not h.done and h.waits is not None and h.waits[0] == "call" else []
        busy = [u for u in self.threads if u.task == req.server and not u.done
                and u.waits is not None and u.waits[0] == "call"]
        known = [u for u in busy if u.serves is not None and any(cid == req.channel for cid, _ in u.serves)]
        return known or [u for u in busy if u.serves is None]

    def wait_for_cycle(self) -> list[str]:
        """Threads blocked in ``call`` in a ring, each waiting on the next (empty if
        there is no such ring).

        The thread a caller waits on is the one that would serve its request: the
        server thread that received it, itself blocked in a ``call``; or, while it is
        still queued, the server's threads blocked in ``call``.  A thread waiting in
        ``recv`` waits on nobody: it is idle, and would serve a request if one came.
        """
        g = nx.DiGraph()
        for t in self.threads:
            if not t.done and t.waits is not None and t.waits[0] == "call":
                g.add_edges_from((t.name, u.name) for u in self._servers_of(t.waits[2]))
        try:
            return [u for u, _ in nx.find_cycle(g)]
        except nx.NetworkXNoCycle:
            return []

    def _stuck(self, t: Thread) -> str:
        """Why ``t``'s call will never be answered, for people."""
        req: Request = t.waits[2]
        head = f"{t.name} waits in call for exchange {req.id} ({req.channel} -> {req.server})"
        h = req.holder
        if h is None:
            if not any(u.task == req.server and not u.done for u in self.threads):
                return f"{head}: {req.server} has no running thread to serve it"
            busy = [u.name for u in self._servers_of(req)]
            if busy:
                return f"{head}: still queued; {', '.join(busy)} of {req.server} wait in call themselves"
            return f"{head}: still queued; no thread of {req.server} receives on {req.channel}"
        if h.done:
            how = f"crashed ({type(h.error).__name__}: {h.error})" if h.error else "ended"
            return f"{head}: {h.name} received it and {how} without replying"
        if h.waits is not None and h.waits[0] == "call":
            return f"{head}: {h.name} received it and waits in call itself (exchange {h.waits[2].id})"
        return f"{head}: {h.name} received it and went back to recv without replying"

    def _channel(self, th: Thread, channel: str) -> Channel:
        ch = self.channels.get((th.task, channel))
        if ch is None or ch.server not in self.running:
            self._record("call", th, None, None, rc=Rc.NOT_CONNECTED, channel=channel,
                         detail=f"{th.task} has no connected channel {channel!r}")
            raise IpcError(Rc.NOT_CONNECTED, f"{th.task} has no connected channel {channel!r}")
        return ch

    def _take(self, task: str, channels: tuple[str, ...]) -> Request | None:
        for cid in channels:
            q = self.queues.get((task, cid))
            if q:
                return q.popleft()
        return None

    def _me(self) -> Thread:
        if self.current is None:
            raise RuntimeError("kernel calls are made from a spawned thread, inside Kernel.run()")
        return self.current

    def _yield(self) -> None:
        """Give way: take the scheduler's next step here, in the calling thread.

        Switching to the scheduler's greenlet and from there to the next thread is
        two switches and a loop; the step itself does not depend on where it runs.
        So the thread picks the next one (:meth:`_pick`) and switches straight to it,
        or simply goes on when the choice falls on itself, and only switches to the
        scheduler when the run ends.
        """
        me = self.current
        self.current = None
        # _pick(), inline (this is every kernel call's way out); keep the two the same
        if self._known != len(self.threads):
            nxt = self._pick()
        else:
            topology = self.topology
            ready = [t for t in self._live
                     if (w := t.waits) is None or (w[0] == "recv" and (w[3] != topology or any(w[4])))]
            steps = self.steps
            if ready and steps < self._limits[0] and (self._limits[1] is None or steps % 256):
                self.steps = steps + 1
                n = len(ready)
                nxt = ready[self._below(n)] if n > 1 else ready[0]
            else:
                nxt = self._pick()          # the end of the run, or a deadline to look at: the long way
        if nxt is me:
            self.current = me
        elif nxt is None:
            self._scheduler.switch()
        else:
            self.current = nxt
            nxt.glet.switch()

    # ------------------------------------------------------------------ trace
    def _record(self, op: str, th: Thread | None, event: Event | None, d: Decision | None,
                rc: Rc | None = None, channel: str | None = None, detail: str = "", force: bool = False,
                exchange: int = 0) -> None:
        """One trace record (see :mod:`ksm.sim.trace` for its fields), built now."""
        if not (self.trace or force):
            return
        rec = self._build(self.steps, op, th.name if th else "kernel", th.task if th else KERNEL_CLASS,
                          event, d, rc, channel, detail, exchange)
        self._log.append(rec)
        if self.on_record is not None:
            self._flush()
            self.on_record(rec)

    def _lazy(self, op: str, th: Thread | None, kind: str, src, dst, endpoint, method, message: dict,
              d: Decision | None, rc: Rc | None, channel: str | None, exchange: int) -> None:
        """The record of a message of the kernel's own, kept as a tuple and built when
        :attr:`records` is read (the caller checks ``self.trace``).

        Only for a granted decision (or none: ``recv``), whose fields and steps do
        not change, and a message with text keys whose values :func:`_freeze` can
        snapshot: then the dictionary built later is the one :meth:`_record` builds
        now, whatever happens to the message afterwards.  Anything else is built at
        once, and so is a denial (the caller records it with :meth:`_record`).

        The tuple is flat (the message's keys and frozen values at its end, the
        explanation as an index into ``_explanations``) and holds strings, numbers
        and tuples of them, so the garbage collector stops tracking it: a long trace
        then adds little to the full collections that walk the whole heap.  (With a
        dictionary inside, it would stay tracked: three full collections of the
        loaded model cost more than all the records of 20,000 round trips.)
        """
        flat: tuple = ()
        for k, v in message.items():
            if type(v) not in _IMMUTABLE:
                v = _freeze(v)
            if type(k) is not str or v is _UNFROZEN:
                self._record(op, th, _event(kind, src, dst, endpoint, method, message), d, rc, channel,
                             exchange=exchange)
                return
            flat += (k, v)
        if d is None:
            reason, explain = None, -1
        else:
            reason, explain = d.reason, self._explain_index(d.steps) if d.steps else -1
        self._log.append((self.steps, op, th.name if th else "kernel", th.task if th else KERNEL_CLASS, channel,
                          exchange, kind, src, dst, endpoint, method, reason, explain,
                          None if rc is None else _RC_NAMES.get(rc) or rc.sdk_name, *flat))
        if self.on_record is not None:
            self._flush()
            self.on_record(self._records[-1])

    def _flush(self) -> None:
        """Build the records kept as tuples, in order (with the cyclic collector
        paused for a long trace: records form no cycles, and its passes over the
        growing heap would cost more than building them)."""
        log, self._log = self._log, []
        out, build = self._records, self._build_kept
        with gc_paused() if len(log) > 1000 else contextlib.nullcontext():
            for entry in log:
                out.append(entry if type(entry) is dict else build(entry))

    def _build_kept(self, entry: tuple) -> dict:
        """:meth:`_build` of a record :meth:`_lazy` kept (a granted decision, or none
        when the reason is None)."""
        (step, op, thread, task, channel, exchange, kind, src, dst, endpoint, method, reason, explain,
         rc) = entry[:14]
        if exchange and type(channel) is str and type(thread) is str and type(src) is str and type(dst) is str \
                and type(endpoint) is str and type(method) is str:
            # An exchange's record: every one of these keys, in this order.  All but
            # the step and the exchange repeat from one exchange to the next: copy them
            # (keyed by plain strings, whose equality is identity of content).
            key = (op, thread, task, channel, kind, src, dst, endpoint, method)
            head = self._heads.get(key)
            if head is None:
                head = self._heads[key] = {
                    "step": 0, "op": op, "thread": thread, "task": task, "channel": channel, "exchange": 0,
                    "event": self._describe(kind, src, dst, endpoint, method), "kind": kind, "src": src,
                    "dst": dst, "endpoint": endpoint, "method": method}
            rec: dict = head.copy()
            rec["step"] = step
            rec["exchange"] = exchange
        else:
            rec = {"step": step, "op": op, "thread": thread, "task": task}
            if channel is not None:
                rec["channel"] = channel
            if exchange:
                rec["exchange"] = exchange
            rec["event"] = self._describe(kind, src, dst, endpoint, method)
            rec["kind"] = kind
            if src is not None:
                rec["src"] = src
            if dst is not None:
                rec["dst"] = dst
            if endpoint is not None:
                rec["endpoint"] = endpoint
            if method is not None:
                rec["method"] = method
        if len(entry) > 14:
            rec["message"] = _flat_json(entry, 14)
        if reason is not None:
            rec["decision"] = "granted"
            rec["reason"] = reason
            if explain >= 0:
                rec["explain"] = list(self._explanations[explain])
        if rc is not None:
            rec["rc"] = rc
        return rec

    def _build(self, step: int, op: str, thread: str, task: str, event: Event | None, d: Decision | None,
               rc: Rc | None = None, channel: str | None = None, detail: str = "", exchange: int = 0) -> dict:
        rec: dict = {"step": step, "op": op, "thread": thread, "task": task}
        if channel is not None:
            rec["channel"] = channel
        if exchange:
            rec["exchange"] = exchange
        if event is not None:
            rec["event"] = event.describe()
            rec["kind"] = event.kind
            for key in ("src", "dst", "endpoint", "method"):
                value = getattr(event, key)
                if value is not None:
                    rec[key] = value
            if event.message:
                rec["message"] = jsonable(event.message)
        if d is not None:
            rec["decision"] = "granted" if d.granted else "denied"
            rec["reason"] = d.reason
            if d.steps:
                rec["explain"] = list(self._explanations[self._explain_index(d.steps)])
        if rc is not None:
            rec["rc"] = rc.sdk_name
        if detail:
            rec["detail"] = detail
        return rec

    def _describe(self, kind: str, src, dst, endpoint, method) -> str:
        """``Event(...).describe()``, remembered per (kind, src, dst, endpoint, method)
        when those are plain strings and numbers (it depends on nothing else)."""
        key = (kind, src, dst, endpoint, method)
        if not _PLAIN.issuperset(map(type, key)):
            return _event(kind, src, dst, endpoint, method, {}).describe()
        text = self._described.get(key)
        if text is None:
            text = self._described[key] = _event(kind, src, dst, endpoint, method, {}).describe()
        return text

    def _explain_index(self, steps: tuple) -> int:
        """The index in ``_explanations`` of a decision's ``explain`` lines; made once
        per steps tuple (the decisions of one rule often share theirs)."""
        hit = self._explained.get(id(steps))
        if hit is None or hit[0] is not steps:
            if len(self._explained) > 4096:
                self._explained.clear()
            self._explanations.append(tuple(
                f"{s.span.file}:{s.span.line} {s.verdict} {s.what}" if s.span else f"- {s.verdict} {s.what}"
                for s in steps))
            hit = self._explained[id(steps)] = (steps, len(self._explanations) - 1)
        return hit[1]

