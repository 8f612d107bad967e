"""The finite world a proof ranges over: processes, their SIDs, and the event keys.

Why boot concretely: the solution's start-up is fixed (the kernel, Einit, then every
init.yaml entity, in order), so the decision function itself is asked to run it.
That gives the SIDs every process gets, which processes actually start, and the
model state right after start-up — the initial state of every stateful proof — with
no second implementation of the execute semantics to keep in step.

Event keys mirror the decision function's dispatch key (event kind, sender class,
receiver class, endpoint, interface, method): everything a binding can select on.
Each key lists the (sender, receiver) process pairs it stands for; the SIDs of those
pairs are the only thing a program can tell them apart by.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from policy_lang.solution import (
    KERNEL_CLASS, MatchDef, ChoiceDef, Solution, message_params,
)
from policy_lang.types import IntType, MethodDef, ParamDef

_SEARCH_INT = IntType("SInt64", 64, True)

from ..engine import Options, SecurityModule
from .equivalence import Equivalence
from ..events import Decision, Event


@dataclass(frozen=True)
class Proc:
    sid: int
    cls: str
    task: str | None

    @property
    def name(self) -> str:
        return self.task or f"sid {self.sid}"

    @property
    def ref(self) -> str | int:
        """How an event names this process: its task, or its SID when it has none."""
        return self.task if self.task else self.sid


@dataclass(frozen=True)
class EventKey:
    """One dispatch key and the process pairs it stands for."""

    kind: str
    src_cls: str
    dst_cls: str | None
    endpoint: str | None
    interface: str | None
    method: str | None
    method_def: MethodDef | None = None
    senders: tuple[Proc, ...] = ()
    receivers: tuple[Proc | None, ...] = (None,)   # (None,): an event without a receiver (security)
    exec_target: str | None = None      # execute: the task or class name the event starts

    @property
    def pairs(self) -> list[tuple[Proc, Proc | None]]:
        """Every (sender, receiver) the key stands for: always the full product.

        Why kept as two sides: a key between two classes of a thousand-instance
        solution stands for thousands of pairs, and the prover only ever needs the
        two sides.
        """
        return [(a, b) for a in self.senders for b in self.receivers]

    @property
    def engine_key(self) -> tuple:
        return (self.kind, self.src_cls, self.dst_cls, self.endpoint, self.interface, self.method)

    @property
    def params(self) -> tuple:
        return message_params(self.method_def, self.kind) if self.method_def is not None else ()

    @property
    def search_params(self) -> tuple:
        """Parameters a concrete search may fill: the typed ones, else the untyped ones as SInt64.

        A kernel method known by parameter names only has no typed parameters, so a
        search would only ever try ``{}``; guessing SInt64 for its documented names lets
        it try the values the rules compare with.  Only for searching: whatever it finds
        is replayed through the decision function, which takes any integer there.
        """
        params = self.params
        if params or self.method_def is None or not self.method_def.untyped:
            return params
        direction = {"request": "in", "response": "out"}.get(self.kind)
        names = [n for n in self.method_def.untyped_names(direction) if n != "*"] if direction else []
        return tuple(ParamDef(n, direction, _SEARCH_INT, None) for n in names)

    def event(self, src: Proc, dst: Proc | None, message: dict) -> Event:
        """The concrete event of this key between two of its processes."""
        if self.kind == "execute":
            return Event.execute(self.exec_target, src=src.ref)
        if self.kind == "security":
            return Event.security(src.ref, self.method, message)
        ctor = {"request": Event.request, "response": Event.response, "error": Event.error}[self.kind]
        return ctor(src.ref, dst.ref, self.endpoint, self.method, message)

    def describe(self) -> str:
        parts = [self.kind, f"src={self.src_cls}"]
        if self.dst_cls and self.kind != "security":
            parts.append(f"dst={self.dst_cls}")
        if self.endpoint:
            parts.append(f"endpoint={self.endpoint}")
        if self.method and self.kind != "execute":
            parts.append(f"method={self.method}")
        return " ".join(parts)


@dataclass
class Universe:
    """Processes after start-up, the post-boot state, and every event key."""

    solution: Solution
    options: Options
    procs: tuple[Proc, ...]
    boot: tuple[Decision, ...]
    initial_states: dict
    fresh_sid: int
    not_started: tuple[str, ...] = ()
    _keys: list | None = field(default=None, repr=False)
    _by_class: dict | None = field(default=None, repr=False)
    _addr: list | None = field(default=None, repr=False)
    memo: dict = field(default_factory=dict, repr=False)    # back ends' per-solution caches

    @classmethod
    def build(cls, solution: Solution, options: Options | None = None) -> "Universe":
        options = options or Options()
        module = SecurityModule(solution, options)
        boot = tuple(module.boot())
        procs = tuple(Proc(p.sid, p.cls, p.task) for p in sorted(module.processes.values(), key=lambda p: p.sid))
        started = {p.task for p in procs}
        missing = tuple(i.task for i in solution.instances if i.task not in started)
        return cls(solution, options, procs, boot, module.snapshot(), module._next_sid, missing)

    @property
    def sids(self) -> tuple[int, ...]:
        """Every SID a model context can belong to: started processes plus the next one."""
        found = self.memo.get("sids")
        if found is None:
            found = self.memo["sids"] = tuple(p.sid for p in self.procs) + (self.fresh_sid,)
        return found

    def boot_events(self) -> list[Event]:
        return [d.event for d in self.boot if d.granted]

    # ------------------------------------------------------------------ keys
    def keys(self, collapse: bool = True) -> list[EventKey]:
        """Every event key (expensive on large solutions: prefer :meth:`matching`).

        ``collapse=False`` keeps every kernel key (see :meth:`matching`): for comparing
        two policies, whose groups differ.
        """
        if not collapse:
            return self.matching(collapse=False)
        if self._keys is None:
            self._keys = self.matching()
        return self._keys

    def by_class(self) -> dict[str, list[Proc]]:
        if self._by_class is None:
            self._by_class = {}
            for p in self.procs:
                self._by_class.setdefault(p.cls, []).append(p)
        return self._by_class

    def matching(self, kinds=("request", "response", "error", "security", "execute"), src: set | None = None,
                 dst: set | None = None, endpoint: str | None = None, interface: str | None = None,
                 method: str | None = None, src_classes: set | None = None,
                 dst_classes: set | None = None, collapse: bool = True,
                 untyped_matters: bool = False) -> list[EventKey]:
        """Event keys of these kinds restricted to sender/receiver tasks or classes and names.

        ``src``/``dst`` are task names (None: any); for execute, ``dst`` names the
        started process (a task of init.yaml or a class).  Enumeration goes class by
        class, so a narrow question on a large solution stays cheap.

        With ``collapse`` (the default) kernel keys the policy cannot tell apart are
        kept once each (:mod:`ksm.verify.equivalence`): same sender and receiver
        processes, same program, same message shape.  ``untyped_matters`` keeps
        kernel methods apart by their untyped parameter names too, for a question that
        reads the message itself (a property's ``where``).
        """
        out = self._matching(kinds, src, dst, endpoint, interface, method, src_classes, dst_classes)
        return self._collapse(out, untyped_matters) if collapse else out

    def _collapse(self, keys: list[EventKey], untyped_matters: bool) -> list[EventKey]:
        eq = self.memo.get("equivalence")
        if eq is None:
            eq = self.memo["equivalence"] = Equivalence(self.solution)
        out: list[EventKey] = []
        seen: set = set()
        for k in keys:
            if KERNEL_CLASS not in (k.src_cls, k.dst_cls) or k.kind == "execute":
                out.append(k)
                continue
            sig = (k.kind, k.src_cls, k.dst_cls, k.senders, k.receivers,
                   eq.signature(k.engine_key, k.method_def, untyped_matters))
            if sig not in seen:
                seen.add(sig)
                out.append(k)
        return out

    def _matching(self, kinds, src, dst, endpoint, interface, method, src_classes, dst_classes) -> list[EventKey]:
        def procs(cls: str, tasks: set | None, classes: set | None) -> list[Proc]:
            if classes is not None and cls not in classes:
                return []
            ps = self.by_class().get(cls, [])
            return ps if tasks is None else [p for p in ps if p.task in tasks]

        out: list[EventKey] = []
        for kind in kinds:
            if kind == "execute":
                out += self._execute_keys(src, dst, src_classes, dst_classes)
                continue
            if kind == "security":
                for cls_name, ps in self.by_class().items():
                    cls = self.solution.classes.get(cls_name)
                    senders = procs(cls_name, src, src_classes)
                    if cls is None or cls.security is None or not senders:
                        continue
                    if interface is not None and cls.security.name != interface:
                        continue
                    for m in cls.security.methods:
                        if method is None or m.name == method:
                            out.append(EventKey("security", cls_name, None, None, cls.security.name, m.name, m,
                                                tuple(senders)))
                continue
            for server_cls, ep, iface, mname, mdef in self._addresses():
                if (endpoint is not None and ep != endpoint) or (interface is not None and iface != interface) \
                        or (method is not None and mname != method):
                    continue
                if kind == "request":
                    servers = procs(server_cls, dst, dst_classes)
                    if not servers:
                        continue
                    for client_cls in self.by_class():
                        if client_cls == KERNEL_CLASS:
                            continue                # the kernel sends no requests
                        clients = procs(client_cls, src, src_classes)
                        if clients:
                            out.append(EventKey(kind, client_cls, server_cls, ep, iface, mname, mdef,
                                                tuple(clients), tuple(servers)))
                else:
                    servers = procs(server_cls, src, src_classes)
                    if not servers:
                        continue
                    for client_cls in self.by_class():
                        clients = procs(client_cls, dst, dst_classes)
                        if clients:
                            out.append(EventKey(kind, server_cls, client_cls, ep, iface, mname, mdef,
                                                tuple(servers), tuple(clients)))
        return out

    def _addresses(self) -> list[tuple]:
        """(server class, endpoint, interface, method name, method def) of every running class."""
        if self._addr is None:
            self._addr = []
            for cls_name in self.by_class():
                cls = self.solution.classes.get(cls_name)
                if cls is None:
                    continue
                if cls.opaque:
                    for ep, m in self._opaque_addresses(cls_name):
                        self._addr.append((cls_name, ep, None, m, None))
                    continue
                for ep in cls.endpoints:
                    for m in ep.interface.methods:
                        self._addr.append((cls_name, ep.name, ep.interface.name, m.name, m))
                if cls.partly_opaque:
                    self._addr += self._partly_opaque_addresses(cls)
        return self._addr

    def _partly_opaque_addresses(self, cls) -> list[tuple]:
        """Messages to the unknown parts of a described class (components or interfaces from
        outside the solution): the names bindings use for them, plus a name none uses.  Each is
        a message the decision function accepts too, so counterexamples replay."""
        out: list[tuple] = []
        for ep, m in self._opaque_addresses(cls.name):
            if ep is None:
                names = [f"{p}.{OTHER_NAME}" for p in cls.opaque_parts]
                names += [e.name for e in cls.endpoints if e.interface.opaque]
            else:
                names = [ep]
            for name in names:
                known = cls.endpoint(name)
                if (known is not None and not known.interface.opaque) or (known is None and not cls.in_opaque_part(name)):
                    continue
                addr = (cls.name, name, known.interface.name if known else None, m or OTHER_NAME, None)
                if addr not in out:
                    out.append(addr)
        return out

    def _opaque_addresses(self, cls_name: str) -> list[tuple[str | None, str | None]]:
        """Names a binding uses for an opaque class, plus "any other" (None, None)."""
        seen = {(None, None)}
        for b in self.solution.bindings:
            for sel in _selector_sets(b):
                if cls_name in (sel.dst, sel.src) and (sel.endpoint or sel.method):
                    seen.add((sel.endpoint, sel.method))
        return sorted(seen, key=lambda x: (x[0] or "", x[1] or ""))

    def _execute_keys(self, src: set | None, dst: set | None, src_classes: set | None,
                      dst_classes: set | None) -> list[EventKey]:
        """Starting one more process after boot: every running process x every class."""
        targets = sorted(c.name for c in self.solution.classes.values() if c.name != KERNEL_CLASS)
        if dst is not None:
            wanted = {self.solution.instance(t).cls if self.solution.instance(t) else t for t in dst}
            targets = [t for t in targets if t in wanted]
        if dst_classes is not None:
            targets = [t for t in targets if t in dst_classes]
        out = []
        for cls_name in targets:
            for src_cls, ps in self.by_class().items():
                starters = [p for p in ps if (src is None or p.task in src)
                            and (src_classes is None or p.cls in src_classes)]
                if starters:
                    fresh = Proc(self.fresh_sid, cls_name, None)
                    out.append(EventKey("execute", src_cls, cls_name, None, None, "main", None,
                                        tuple(starters), (fresh,), exec_target=cls_name))
        return out


#: An endpoint or method name no binding uses, standing for "any other" unknown one.
OTHER_NAME = "(other)"


def _selector_sets(b):
    yield b.selectors
    stack = list(b.body)
    while stack:
        st = stack.pop()
        if isinstance(st, MatchDef):
            yield st.selectors
            stack.extend(st.body)
        elif isinstance(st, ChoiceDef):
            for arm in st.arms:
                stack.extend(arm.body)

