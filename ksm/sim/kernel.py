"""The kernel of the simulator: processes, threads, channels and Call/Recv/Reply.

Every thread is a greenlet running plain, blocking Python.  A kernel call
(``call``, ``recv``, ``reply``) is the only place a thread gives up the processor:
it switches to the scheduler, which picks the next ready thread with a seeded
random choice.  So the same seed gives the same interleaving and the same trace,
and a run is single-threaded (no locks, no races in the simulator itself).

Why greenlets and not threads or generators: behaviour code must read like the C
a developer writes against nk-gen-c proxies (``value = proxy.Ping(3)``), which
rules out generators (every caller would need ``yield``), and operating-system
threads switch a hundred times slower and in an order nobody controls.

The security module is asked exactly where KasperskyOS's kernel asks it:
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
  ``rcNotConnected``.
"""
from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import greenlet
import networkx as nx

from policy_lang.solution import Solution

from ..engine import Options, SecurityModule
from ..events import Decision, Event


class Rc(enum.IntEnum):
    """IPC return codes (names as in the KasperskyOS SDK; the numbers are ours)."""

    OK = 0
    INVALID_ARGUMENT = 1      # rcInvalidArgument: the message does not fit the method
    SECURITY_DISALLOW = 2     # rcSecurityDisallow: the security module denied the message
    NOT_CONNECTED = 3         # rcNotConnected: no such channel, or its server is not running

    @property
    def sdk_name(self) -> str:
        return {0: "rcOk", 1: "rcInvalidArgument", 2: "rcSecurityDisallow", 3: "rcNotConnected"}[self.value]


def _rc(d: Decision) -> Rc:
    """What the kernel tells the sender about a decision: the structure check fails
    before the rules run, so a malformed message is an invalid argument, not a denial."""
    if d.granted:
        return Rc.OK
    return Rc.INVALID_ARGUMENT if d.reason.startswith("malformed message") else Rc.SECURITY_DISALLOW


class IpcError(Exception):
    """A kernel call that did not succeed; ``rc`` says why, ``decision`` is the module's answer."""

    def __init__(self, rc: Rc, what: str, decision: Decision | None = None):
        super().__init__(f"{rc.sdk_name}: {what}" + (f" ({decision.reason})" if decision is not None else ""))
        self.rc, self.decision = rc, decision


@dataclass
class Request:
    """A delivered request, as the server's ``recv`` returns it."""

    channel: str
    client: str
    endpoint: str | None
    method: str | None
    message: dict
    caller: "Thread"


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
    waits: tuple | None = None        # ("call", server task) | ("recv", channel ids)
    done: bool = False
    error: BaseException | None = None
    reply: Reply | None = None
    delivered: Request | None = None


@dataclass
class Outcome:
    """How a run ended: every thread finished, a deadlock, a step limit, or a crash."""

    status: str                       # finished | deadlock | step-limit | crashed (a thread raised)
    steps: int
    cycle: list[str] = field(default_factory=list)      # deadlock: the wait-for cycle, thread names
    blocked: list[str] = field(default_factory=list)    # deadlock/step-limit: threads still waiting
    errors: list[str] = field(default_factory=list)     # threads that raised


class Kernel:
    """A running solution: the security module, its processes, channels and threads."""

    def __init__(self, solution: Solution, seed: int = 0, options: Options | None = None,
                 on_record: Callable[[dict], None] | None = None):
        self.solution = solution
        self.module = SecurityModule(solution, options)
        self.rng = random.Random(seed)
        self.records: list[dict] = []
        self.on_record = on_record
        self.threads: list[Thread] = []
        self.current: Thread | None = None
        self.steps = 0
        self.channels = {(ch.client, ch.id): ch for ch in solution.channels}
        self.queues: dict[tuple[str, str], deque] = {}      # (server task, channel id) -> requests
        self.running: set[str] = set()
        self._scheduler: Any = None
        for d in self.module.boot():
            self._record("execute", None, d.event, d)
            if d.granted and d.event.dst in {i.task for i in solution.instances}:
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
        except greenlet.GreenletExit:
            raise
        except BaseException as exc:        # the behaviour's own bug: recorded, the run goes on
            th.error = exc
            self._record("crash", th, None, None, detail=f"{type(exc).__name__}: {exc}")
        th.done = True
        th.waits = None

    # ------------------------------------------------------------------ kernel calls
    def call(self, channel: str, endpoint: str | None, method: str | None, message: dict) -> dict:
        """Send a request on the calling thread's channel and block until the reply.

        Returns the out-parameters; raises :class:`IpcError` for a denied or failed
        exchange, and :class:`ServerError` when the server replied with an error.
        """
        th = self._me()
        ch = self.channels.get((th.task, channel))
        if ch is None or ch.server not in self.running:
            self._record("call", th, None, None, rc=Rc.NOT_CONNECTED, detail=f"channel {channel}")
            raise IpcError(Rc.NOT_CONNECTED, f"{th.task} has no connected channel {channel!r}")
        event = Event.request(th.task, ch.server, endpoint, method, message)
        d = self.module.decide(event)
        if not d.granted:
            rc = _rc(d)
            self._record("call", th, event, d, rc=rc)
            self._yield()                       # a kernel call is a scheduling point either way
            raise IpcError(rc, event.describe(), d)
        self._record("call", th, event, d)
        self.queues.setdefault((ch.server, ch.id), deque()).append(
            Request(ch.id, th.task, endpoint, method, dict(message), th))
        th.waits = ("call", ch.server)
        self._yield()
        reply, th.reply = th.reply, None
        if reply.rc != Rc.OK:
            raise IpcError(reply.rc, f"reply to {event.describe()}", reply.decision)
        if reply.kind == "error":
            raise ServerError(reply.message)
        return reply.message

    def recv(self, channels: tuple[str, ...] | None = None) -> Request:
        """Block until a request arrives on one of the calling thread's server channels."""
        th = self._me()
        mine = tuple(cid for (client, cid), ch in self.channels.items() if ch.server == th.task
                     and (channels is None or cid in channels))
        th.waits = ("recv", mine)
        while True:
            req = self._take(th.task, mine)
            if req is not None:
                th.waits = None
                self._record("recv", th, Event.request(req.client, th.task, req.endpoint, req.method,
                                                       req.message), None)
                return req
            self._yield()

    def reply(self, req: Request, message: dict | None = None, error: bool = False) -> None:
        """Answer ``req`` with out-parameters, or with error-parameters when ``error``."""
        th = self._me()
        kind = "error" if error else "response"
        ctor = Event.error if error else Event.response
        event = ctor(th.task, req.client, req.endpoint, req.method, message or {})
        d = self.module.decide(event)
        rc = _rc(d)
        self._record("reply", th, event, d, rc=rc)
        req.caller.reply = Reply(rc, kind, dict(message or {}) if d.granted else {}, d)
        req.caller.waits = None
        self._yield()
        if rc != Rc.OK:
            raise IpcError(rc, event.describe(), d)

    # ------------------------------------------------------------------ scheduling
    def run(self, max_steps: int = 100_000) -> Outcome:
        """Run every thread until all finish, all block (deadlock), or ``max_steps`` switches."""
        self._scheduler = greenlet.getcurrent()
        while True:
            ready = [t for t in self.threads if not t.done and self._ready(t)]
            if not ready:
                return self._ending()
            if self.steps >= max_steps:
                return Outcome("step-limit", self.steps, blocked=self._blocked())
            self.steps += 1
            th = self.rng.choice(ready) if len(ready) > 1 else ready[0]
            self.current = th
            th.glet.switch()
            self.current = None

    def _ready(self, th: Thread) -> bool:
        if th.waits is None:
            return True
        if th.waits[0] == "recv":
            return any(self.queues.get((th.task, cid)) for cid in th.waits[1])
        return False                           # a blocked call waits for the reply

    def _ending(self) -> Outcome:
        """No thread can run: finished (servers may idle in ``recv``) or a deadlock.

        A deadlock is a thread that will never get its reply (blocked in ``call``),
        or threads waiting on each other in a ring.
        """
        errors = [f"{t.name}: {type(t.error).__name__}: {t.error}" for t in self.threads if t.error]
        blocked = self._blocked()
        cycle = self.wait_for_cycle() if blocked else []
        calling = [t for t in self.threads if not t.done and t.waits is not None and t.waits[0] == "call"]
        if cycle or calling:
            return Outcome("deadlock", self.steps, cycle=cycle, blocked=blocked, errors=errors)
        return Outcome("crashed" if errors else "finished", self.steps, blocked=blocked, errors=errors)

    def _blocked(self) -> list[str]:
        return [t.name for t in self.threads if not t.done and t.waits is not None]

    def wait_for_cycle(self) -> list[str]:
        """Threads waiting on each other in a ring (empty if the wait has no cycle).

        A thread blocked in ``call`` waits for the threads of the server; one blocked
        in ``recv`` waits for the threads that could send on its channels.
        """
        g = nx.DiGraph()
        live = [t for t in self.threads if not t.done]
        for t in live:
            if t.waits is None:
                continue
            if t.waits[0] == "call":
                g.add_edges_from((t.name, u.name) for u in live if u.task == t.waits[1])
            else:
                clients = {self.channels[key].client for key in self.channels if key[1] in t.waits[1]
                           and self.channels[key].server == t.task}
                g.add_edges_from((t.name, u.name) for u in live if u.task in clients)
        try:
            return [u for u, _ in nx.find_cycle(g)]
        except nx.NetworkXNoCycle:
            return []

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
                rc: Rc | None = None, detail: str = "") -> None:
        rec: dict = {"step": self.steps, "op": op, "thread": th.name if th else "kernel"}
        if event is not None:
            rec["event"] = event.describe()
        if d is not None:
            rec["decision"] = "granted" if d.granted else "denied"
            rec["reason"] = d.reason
        if rc is not None:
            rec["rc"] = rc.sdk_name
        if detail:
            rec["detail"] = detail
        self.records.append(rec)
        if self.on_record is not None:
            self.on_record(rec)


class ServerError(Exception):
    """The server replied with an error (its error-parameters are ``params``)."""

    def __init__(self, params: dict):
        super().__init__(f"server error {params}")
        self.params = params
