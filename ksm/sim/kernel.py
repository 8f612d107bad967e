"""The kernel of the simulator: processes, threads, channels and Call/Recv/Reply.

Every thread is a greenlet running plain, blocking Python.  A kernel call
(``call``, ``recv``, ``reply``, ``publish``, ``connect``) is the only place a
thread gives up the processor: it switches to the scheduler, which picks the next
ready thread with a seeded random choice.  So the same seed gives the same
interleaving and the same trace, and a run is single-threaded (no locks, no races
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

from policy_lang.solution import KERNEL_CLASS, Channel, Endpoint, ProcessClass, Solution
from policy_lang.types import MethodDef

from ..engine import Options, SecurityModule
from ..events import Decision, Event, jsonable
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

    def __post_init__(self) -> None:
        for kind in ("request", "response", "error"):
            self.layouts[kind] = wire.layout(self.method, kind)

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


@dataclass
class Reply:
    """What a blocked client gets back: out- or error-parameters, or an IPC error."""

    rc: Rc
    kind: str = "response"        # response | error
    message: dict = field(default_factory=dict)
    decision: Decision | None = None


@dataclass(eq=False)
class Thread:
    """One thread of a process; ``waits`` says what it is blocked on (None: ready or done)."""

    name: str
    task: str
    glet: Any = None
    waits: tuple | None = None        # ("call", server task, request) | ("recv", channel ids, queues, topology)
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
    """

    def __init__(self, solution: Solution, seed: int = 0, options: Options | None = None,
                 on_record: Callable[[dict], None] | None = None, trace: bool = True):
        self.solution = solution
        self.module = SecurityModule(solution, options)
        self.rng = random.Random(seed)
        self.records: list[dict] = []
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
        for d in self.module.boot():
            self._record("execute", None, d.event, d)
            if d.granted and d.event.dst in self.classes:
                self.running.add(d.event.dst)

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
        th = self._me()
        ch = self._channel(th, channel)
        addr = self.address(ch.server, endpoint, method)
        if addr is None:
            return self._request(th, ch, endpoint, method, dict(message), None, None)
        try:
            data = wire.pack(addr.riid, addr.mid, "request", addr.layouts["request"], message)
        except wire.WireError as exc:
            return self._refuse(th, ch, Event.request(th.task, ch.server, addr.endpoint.name, addr.method.name),
                                f"{MALFORMED}: cannot marshal: {exc}")
        return self.call_raw(channel, data, _checked=(ch, addr))

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
        event = Event.request(th.task, ch.server, endpoint, method, message)
        d = self.module.decide(event)
        if not d.granted:
            rc = _rc(d)
            self._record("call", th, event, d, rc=rc, channel=ch.id)
            self._yield()                       # a kernel call is a scheduling point either way
            raise IpcError(rc, event.describe(), d)
        self.exchanges += 1
        self._record("call", th, event, d, channel=ch.id, exchange=self.exchanges)
        req = Request(ch.id, th.task, endpoint, method, message, th, addr, data, self.exchanges, ch.server)
        self._queue(ch.server, ch.id).append(req)
        for monitor in self.monitors:
            monitor("request", th.task, ch.server, message)
        th.waits = ("call", ch.server, req)
        self._yield()
        reply, th.reply = th.reply, None
        if reply is None:                       # only a reply makes a caller ready again
            raise RuntimeError(f"{th.name} resumed in call without a reply to exchange {req.id}")
        if reply.rc != Rc.OK:
            raise IpcError(reply.rc, f"reply to {event.describe()}", reply.decision)
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
        th = self._me()
        while True:
            boxes = self._inbox(th.task, channels)
            th.serves = boxes
            for _, q in boxes:
                if q:
                    req = q.popleft()
                    req.holder = th
                    th.waits = None
                    if self.trace:
                        self._record("recv", th, Event.request(req.client, th.task, req.endpoint, req.method,
                                                               req.message), None, channel=req.channel,
                                     exchange=req.id)
                    return req
            th.waits = ("recv", tuple(cid for cid, _ in boxes), boxes, self.topology)
            self._yield()

    def _inbox(self, task: str, channels: tuple[str, ...] | None) -> tuple:
        """(channel id, queue) of every channel ``task`` serves (among ``channels``),
        cached until the next run-time channel."""
        key = (task, channels)
        hit = self._inboxes.get(key)
        if hit is None or hit[0] != self.topology:
            boxes = tuple((cid, self._queue(task, cid)) for (_, cid), ch in self.channels.items()
                          if ch.server == task and (channels is None or cid in channels))
            hit = self._inboxes[key] = (self.topology, boxes)
        return hit[1]

    def _queue(self, server: str, channel: str) -> deque:
        q = self.queues.get((server, channel))
        if q is None:
            q = self.queues[(server, channel)] = deque()
        return q

    def reply(self, req: Request, message: dict | None = None, error: bool = False) -> None:
        """Answer ``req`` with out-parameters, or with error-parameters when ``error``."""
        th = self._me()
        kind = "error" if error else "response"
        message = dict(message or {})
        if req.address is not None:
            addr = req.address
            try:
                data = wire.pack(addr.riid, addr.mid, kind, addr.layouts[kind], message)
            except wire.WireError as exc:
                self._answer(th, req, kind, message, f"{MALFORMED}: cannot marshal: {exc}")
                return
            self.reply_raw(req, data)
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
        ctor = Event.error if kind == "error" else Event.response
        event = ctor(th.task, req.client, req.endpoint, req.method, message)
        what = self._not_outstanding(th, req)
        if what:
            # E.g. a second reply: the caller has had its answer (and may be waiting
            # in another call by now).  The real kernel has no such request
            # outstanding, so the reply goes nowhere, the security module never sees
            # it, and the replier's Reply fails.
            self._record("reply", th, event, None, rc=Rc.INVALID_ARGUMENT, channel=req.channel,
                         exchange=req.id, detail=what)
            self._yield()
            raise IpcError(Rc.INVALID_ARGUMENT, f"{event.describe()}: {what}")
        req.answered = True
        d = Decision(False, problem, event) if problem else self.module.decide(event)
        rc = _rc(d)
        self._record("reply", th, event, d, rc=rc, channel=req.channel, exchange=req.id)
        req.caller.reply = Reply(rc, kind, message if d.granted else {}, d)
        req.caller.waits = None
        if d.granted:
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
        enough for the benchmark, and the watchdog covers code that never switches)."""
        self._scheduler = greenlet.getcurrent()
        live = [t for t in self.threads if not t.done]
        self._adopt(live)
        known = len(self.threads)
        while True:
            if known != len(self.threads):            # threads spawned while running
                self._adopt(self.threads[known:])
                live.extend(self.threads[known:])
                known = len(self.threads)
            ready = [t for t in live if self._ready(t)]
            if not ready:
                return self._ending()
            if self.steps >= max_steps:
                return self._ending("step-limit")
            if deadline is not None and not self.steps % 256 and time.monotonic() > deadline:
                return self._interrupted(None, timeout or 0)
            self.steps += 1
            th = self.rng.choice(ready) if len(ready) > 1 else ready[0]
            self.current = th
            th.glet.switch()
            self.current = None
            if th.done:
                live.remove(th)

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

    def _ready(self, th: Thread) -> bool:
        w = th.waits
        if w is None:
            return True
        if w[0] == "recv":
            if w[3] != self.topology:          # a channel was connected: look again
                return True
            for _, q in w[2]:
                if q:
                    return True
        return False                           # a blocked call waits for the reply

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
        self._scheduler.switch()

    # ------------------------------------------------------------------ trace
    def _record(self, op: str, th: Thread | None, event: Event | None, d: Decision | None,
                rc: Rc | None = None, channel: str | None = None, detail: str = "", force: bool = False,
                exchange: int = 0) -> None:
        """One trace record (see :mod:`ksm.sim.trace` for its fields)."""
        if not (self.trace or force):
            return
        rec: dict = {"step": self.steps, "op": op, "thread": th.name if th else "kernel",
                     "task": th.task if th else KERNEL_CLASS}
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
                rec["explain"] = [f"{s.span.file}:{s.span.line} {s.verdict} {s.what}" if s.span
                                  else f"- {s.verdict} {s.what}" for s in d.steps]
        if rc is not None:
            rec["rc"] = rc.sdk_name
        if detail:
            rec["detail"] = detail
        self.records.append(rec)
        if self.on_record is not None:
            self.on_record(rec)

