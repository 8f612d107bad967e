"""Runtime taint tracking: which process's data reached which process, observed.

The monitor watches every delivered message (a granted request reaches the server,
a granted response or error reaches the client) and follows *values*: a process
that sends a value it never received is that value's origin, and each delivery
extends the path the receiver got it along.  A ``never flow A -> B unless via C`` property is violated when a value that
A originated arrives at B and no process on its path between them is one of C.

Only values that are unlikely to recur by chance are followed: text and byte
strings of three or more characters, sequences of four or more integers (hashes,
keys) and integers of magnitude 65,536 or more.  Small numbers (flags, codes,
lengths) appear everywhere independently and would make every pair look
connected.  So the monitor reports flows it saw, with their path; it does not
prove their absence (that is ``ksm flows``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Iterator

from policy_lang.props import Property


@dataclass(frozen=True)
class Violation:
    """A value ``origin`` sent reached ``sink`` along ``path``, which ``prop`` forbids."""

    prop: str
    origin: str
    sink: str
    path: tuple[str, ...]
    value: str
    where: str            # the property's file:line

    def render(self) -> str:
        return (f"{self.where}: never flow {self.prop} violated: data of {self.origin} reached {self.sink} "
                f"via {' -> '.join(self.path)} (value {self.value})")

    def to_json(self) -> dict:
        return {"property": self.prop, "origin": self.origin, "sink": self.sink, "path": list(self.path),
                "value": self.value, "location": self.where}


def tracked_values(value: Any) -> Iterator[Hashable]:
    """The values of a message worth following (see the module docstring)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from tracked_values(v)
    elif isinstance(value, (list, tuple)):
        if len(value) >= 4 and all(type(x) is int for x in value):
            yield ("ints", tuple(value))
        else:
            for v in value:
                yield from tracked_values(v)
    elif isinstance(value, (str, bytes, bytearray)):
        if len(value) >= 3:
            yield bytes(value) if isinstance(value, bytearray) else value
    elif type(value) is int and abs(value) >= 65_536:
        yield value


def _show(value: Hashable) -> str:
    text = repr(value[1] if isinstance(value, tuple) and value and value[0] == "ints" else value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class _Rule:
    name: str
    sources: frozenset[str]
    sinks: frozenset[str]
    via: frozenset[str]
    where: str


class TaintMonitor:
    """Follows values between processes and collects :class:`Violation`s.

    Attach with ``kernel.monitors.append(monitor)``; it is called for every
    delivered message.
    """

    def __init__(self, properties: Iterable[Property]):
        self.rules = [
            _Rule(p.name, frozenset(t for r in p.flow_src for t in r.tasks),
                  frozenset(t for r in p.flow_dst for t in r.tasks), frozenset(t for r in p.flow_via for t in r.tasks),
                  f"{p.span.file}:{p.span.line}" if p.span else p.name)
            for p in properties if p.kind == "never_flow"
        ]
        self.held: dict[tuple[str, Hashable], tuple[str, ...]] = {}   # (process, value) -> path from origin
        self.violations: list[Violation] = []
        self._seen: set[tuple] = set()
        self.deliveries = 0

    def __call__(self, kind: str, sender: str, receiver: str, message: dict) -> None:
        self.deliveries += 1
        for value in tracked_values(message):
            path = self.held.get((sender, value), (sender,))
            if receiver in path:
                continue                          # the value came back round
            path += (receiver,)
            self.held.setdefault((receiver, value), path)   # the first way it came is the one followed on
            self._check(value, path)

    def _check(self, value: Hashable, path: tuple[str, ...]) -> None:
        origin, sink = path[0], path[-1]
        for rule in self.rules:
            if origin in rule.sources and sink in rule.sinks and not rule.via.intersection(path[1:-1]):
                key = (rule.name, origin, sink, path)
                if key not in self._seen:
                    self._seen.add(key)
                    self.violations.append(Violation(rule.name, origin, sink, path, _show(value), rule.where))
