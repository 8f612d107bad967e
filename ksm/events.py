"""Security events and decisions: the values runtime code exchanges with the module.

An :class:`Event` names its participants by process instance (the ``task`` name
from init.yaml) or by SID, its endpoint by qualified name or RIID, its method by
name or MID, and carries the message as a mapping of parameter values.  A
:class:`Decision` says granted or not, why, and — through :meth:`Decision.explain`
— every binding, section and call that took part.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from policy_lang.diagnostics import Span

@dataclass(frozen=True)
class Event:
    kind: str                      # execute | request | response | error | security
    src: str | int | None
    dst: str | int | None
    endpoint: str | int | None = None
    method: str | int | None = None
    message: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def execute(cls, dst: str | int, src: str | int | None = None) -> "Event":
        """Start a process: ``dst`` is a task name from init.yaml or a class name.

        ``src`` is the starting process (None: the kernel).  The kernel's own start is
        ``Event.execute("kl.core.Core")``.
        """
        return cls("execute", src, dst, None, "main", {})

    @classmethod
    def request(cls, src, dst, endpoint, method, message: Mapping | None = None) -> "Event":
        return cls("request", src, dst, endpoint, method, dict(message or {}))

    @classmethod
    def response(cls, src, dst, endpoint, method, message: Mapping | None = None) -> "Event":
        """The server ``src`` answers ``dst``; ``message`` holds the out-parameters."""
        return cls("response", src, dst, endpoint, method, dict(message or {}))

    @classmethod
    def error(cls, src, dst, endpoint, method, message: Mapping | None = None) -> "Event":
        """The server ``src`` answers ``dst`` with the error flag; ``message`` holds error-parameters."""
        return cls("error", src, dst, endpoint, method, dict(message or {}))

    @classmethod
    def security(cls, src, method, message: Mapping | None = None) -> "Event":
        """``src`` queries the security module through its security interface."""
        return cls("security", src, None, None, method, dict(message or {}))

    def describe(self) -> str:
        parts = [self.kind]
        for k in ("src", "dst", "endpoint", "method"):
            v = getattr(self, k)
            if v is not None and not (self.kind == "execute" and k == "method"):
                parts.append(f"{k}={v}")
        return " ".join(parts)


class Step(NamedTuple):
    """One line of an explanation: what ran, where it is written, what it said.

    (A named tuple: every decision records several, so they must be cheap.)
    """

    what: str
    verdict: str          # granted | denied | error | matched | chose | value
    span: Span | None
    detail: str = ""


class Decision(NamedTuple):
    """The answer to one event (immutable).

    A named tuple because every event makes one and a frozen dataclass costs four
    times as much to build.  Its truth value is ``granted``, so ``if module.decide(e):``
    means what it says (a plain tuple would always be true).
    """

    granted: bool
    reason: str
    event: Event
    steps: tuple[Step, ...] = ()
    sid: int | None = None          # for a granted execute: the SID of the started process

    def __bool__(self) -> bool:
        return self.granted

    def explain(self) -> str:
        head = f"{'GRANTED' if self.granted else 'DENIED'}: {self.event.describe()}"
        lines = [head, f"  because: {self.reason}"]
        for s in self.steps:
            where = f"{s.span.file}:{s.span.line}" if s.span else "-"
            detail = f" ({s.detail})" if s.detail else ""
            lines.append(f"  {where:<40} {s.verdict:<8} {s.what}{detail}")
        return "\n".join(lines)



def jsonable(v: Any) -> Any:
    """A message value as JSON can hold it: bytes as hex text, tuples as lists."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v
