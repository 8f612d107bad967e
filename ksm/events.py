"""Security events and decisions: the values runtime code exchanges with the module.

An :class:`Event` names its participants by process instance (the ``task`` name
from init.yaml) or by SID, its endpoint by qualified name or RIID, its method by
name or MID, and carries the message as a mapping of parameter values.  A
:class:`Decision` says granted or not, why, and — through :meth:`Decision.explain`
— every binding, section and call that took part.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from policy_lang.diagnostics import Span

# No IDL integer is wider than 64 bits (UInt64, SInt64), so a wider one is out of range
# wherever it appears, and is shown by its size: Python refuses to print an int of more
# than 4,300 digits, and a decision must never fail while saying why it denies.
MAX_IDL_INT_BITS = 64
# Integers up to this width are shown digit by digit (a 65-bit value is still worth
# reading in a "... out of range for UInt64" reason); wider ones by their size only.
_SHOWN_INT_BITS = 256
_SHOWN_CHARS = 120
# Step lines Decision.explain() lists before it summarises (see there).
EXPLAIN_STEPS = 40


def show(value: Any, quote: bool = True) -> str:
    """``value`` as a reason or an explanation shows it: short, and never raising.

    Events come from callers (JSON on a command line, fuzzers, other programs), so a
    name can be a 10**5000, a megabyte of text or an object whose ``repr`` raises; the
    denial must still say something readable about it.  ``quote=False`` shows a
    string as its plain text (event descriptions: ``src=echo.Client``).
    """
    if type(value) is int:
        return int_text(value)
    if type(value) is str and not quote:
        text = value
    else:
        try:
            text = repr(value)
        except Exception:  # a hostile or broken __repr__: the type is all we can say
            return f"<{type(value).__name__}>"
    if len(text) > _SHOWN_CHARS:
        text = f"{text[:_SHOWN_CHARS]}… ({len(text):,} characters)"
    return text


def int_text(value: int) -> str:
    """An integer as text, or its size when it is wider than any IDL integer."""
    bits = value.bit_length()
    if bits <= _SHOWN_INT_BITS:
        return str(value)
    return f"<{'negative ' if value < 0 else ''}{bits:,}-bit integer>"


def message_arg(message: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``message`` argument of the factories: None is no parameters.

    Why checked here: ``dict(message)`` on a list or a string fails with a message
    about "dictionary update sequence elements" that names neither the event nor the
    fix, and ``message or {}`` quietly turned ``0`` or ``[]`` into an empty message.
    """
    if type(message) is dict:
        return message.copy()
    if message is None:
        return {}
    if not isinstance(message, Mapping):
        raise TypeError(f"an event message is a mapping of parameter names to values, "
                        f"e.g. {{'value': 7}}; got {type(message).__name__}")
    return dict(message)


#: The message of a direct call that passes none (``module.request(src, dst, endpoint,
#: method)``): no parameters.  Read-only, so one object serves every call.
NO_MESSAGE: Mapping[str, Any] = MappingProxyType({})
_UNSET: Any = object()
_set_attribute = object.__setattr__


@dataclass(frozen=True, init=False)
class Event:
    """One security event.

    The plain constructor takes any values on purpose: events are built from JSON,
    traces and test cases, and a field of the wrong type is the decision function's
    to deny with a reason (it never raises), not the constructor's.  The factories
    below check their ``message`` argument, where a wrong type is the caller's bug.

    (Frozen, with its own ``__init__``: the generated one sets the six fields one by
    one through ``object.__setattr__``, which costs more than deciding the event.)
    """

    kind: str                      # execute | request | response | error | security
    src: str | int | None
    dst: str | int | None
    endpoint: str | int | None = None
    method: str | int | None = None
    message: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, kind: str, src: str | int | None, dst: str | int | None, endpoint: str | int | None = None,
                 method: str | int | None = None, message: Mapping[str, Any] = _UNSET):
        _set_attribute(self, "__dict__", {"kind": kind, "src": src, "dst": dst, "endpoint": endpoint, "method": method,
                                          "message": {} if message is _UNSET else message})

    @classmethod
    def execute(cls, dst: str | int, src: str | int | None = None) -> "Event":
        """Start a process: ``dst`` is a task name from init.yaml or a class name.

        ``src`` is the starting process (None: the kernel).  The kernel's own start is
        ``Event.execute("kl.core.Core")``.
        """
        return cls("execute", src, dst, None, "main", {})

    @classmethod
    def request(cls, src, dst, endpoint, method, message: Mapping | None = None) -> "Event":
        """``src`` calls ``dst``; ``message`` holds the in-parameters."""
        return cls("request", src, dst, endpoint, method, message_arg(message))

    @classmethod
    def response(cls, src, dst, endpoint, method, message: Mapping | None = None) -> "Event":
        """The server ``src`` answers ``dst``; ``message`` holds the out-parameters."""
        return cls("response", src, dst, endpoint, method, message_arg(message))

    @classmethod
    def error(cls, src, dst, endpoint, method, message: Mapping | None = None) -> "Event":
        """The server ``src`` answers ``dst`` with the error flag; ``message`` holds error-parameters."""
        return cls("error", src, dst, endpoint, method, message_arg(message))

    @classmethod
    def security(cls, src, method, message: Mapping | None = None) -> "Event":
        """``src`` queries the security module through its security interface."""
        return cls("security", src, None, None, method, message_arg(message))

    def __repr__(self) -> str:
        """The dataclass repr, except that a field whose repr fails is shown by :func:`show`.

        Why: a decision holds its event, and printing, logging or asserting on a
        decision must not raise because a caller sent a 10**5000.
        """
        return "Event(" + ", ".join(f"{name}={_repr(getattr(self, name))}" for name in
                                    ("kind", "src", "dst", "endpoint", "method", "message")) + ")"

    def describe(self) -> str:
        """One line naming the event; safe for any field values (see :func:`show`)."""
        parts = [show(self.kind, quote=False)]
        execute = type(self.kind) is str and self.kind == "execute"
        for k in ("src", "dst", "endpoint", "method"):
            v = getattr(self, k)
            if v is not None and not (execute and k == "method"):
                parts.append(f"{k}={show(v, quote=False)}")
        return " ".join(parts)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return show(value)


def describe_event(event: Any) -> str:
    """:meth:`Event.describe`, or what was passed instead of an event (``decide(None)``)."""
    if isinstance(event, Event):
        return event.describe()
    return f"<not an event: {type(event).__name__}>"


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

    Being immutable all the way down (steps are named tuples of strings and spans), one
    decision can be handed to every caller that gets the same answer: the module keeps
    one per constant outcome (a pure allowlist grant, a default deny, an ``assert``
    that held) instead of building one per event.  ``decide(event)`` returns such a
    decision with ``event`` filled in; the direct calls (``module.request(...)``)
    return the shared one itself, whose ``event`` is None.
    """

    granted: bool
    reason: str
    event: Event                    # as passed to decide(), even when it was not an Event; None from a direct call
    steps: tuple[Step, ...] = ()
    sid: int | None = None          # for a granted execute: the SID of the started process

    def __bool__(self) -> bool:
        return self.granted

    def __repr__(self) -> str:
        """The named-tuple repr, safe for whatever was passed to decide() (see :class:`Event`)."""
        return "Decision(" + ", ".join(f"{name}={_repr(getattr(self, name))}" for name in self._fields) + ")"

    def explain(self, limit: int | None = EXPLAIN_STEPS) -> str:
        """The decision with the bindings, sections and calls behind it, one per line.

        Every step is listed while there are at most ``limit`` of them (None: no
        limit).  Beyond that the explanation keeps what decided — the bindings that
        ran a rule, those that denied first — and counts the rest: a generated policy
        can have a hundred thousand bindings that select an event only to find no
        section for it, and a line for each buries the one line that matters.
        """
        if limit is not None and (type(limit) is not int or limit < 1):
            raise ValueError(f"explain(limit=...) takes a number of steps >= 1, or None for all; got {show(limit)}")
        if self.event is None and not self.reason.startswith("malformed event"):
            subject = "(a direct call: module.request(...) and the like keep no event)"
        else:
            subject = describe_event(self.event)
        head = f"{'GRANTED' if self.granted else 'DENIED'}: {subject}"
        lines = [head, f"  because: {self.reason}"]
        if limit is None or len(self.steps) <= limit:
            lines.extend(_step_line(s) for s in self.steps)
        else:
            lines.extend(_bounded_lines(self.steps, limit))
        return "\n".join(lines)


_DECIDING = ("denied", "error")


def _step_line(s: Step) -> str:
    where = f"{s.span.file}:{s.span.line}" if s.span else "-"
    detail = f" ({s.detail})" if s.detail else ""
    return f"  {where:<40} {s.verdict:<8} {s.what}{detail}"


def _by_binding(steps: tuple[Step, ...]) -> list[list[Step]]:
    """Steps cut where a binding starts (a ``matched`` step that is not a ``match`` section)."""
    groups: list[list[Step]] = []
    for s in steps:
        if not groups or (s.verdict == "matched" and not s.what.startswith("match ")):
            groups.append([s])
        else:
            groups[-1].append(s)
    return groups


def _bounded_lines(steps: tuple[Step, ...], limit: int) -> list[str]:
    """At most about ``limit`` step lines and three summary lines (see :meth:`Decision.explain`)."""
    groups = _by_binding(steps)
    active = [g for g in groups if any(s.verdict != "matched" for s in g)]
    idle = len(groups) - len(active)
    denying = [any(s.verdict in _DECIDING for s in g) for g in active]
    # Bindings that denied come first (they are the reason), then the others in order.
    order = [i for i in range(len(active)) if denying[i]] + [i for i in range(len(active)) if not denying[i]]
    chosen: set[int] = set()
    budget = limit
    for i in order:
        if len(active[i]) <= budget or not chosen:
            chosen.add(i)
            budget -= min(len(active[i]), budget)
        if budget == 0:
            break
    lines: list[str] = []
    for i in sorted(chosen):
        lines.extend(_group_lines(active[i], limit))
    left = [i for i in range(len(active)) if i not in chosen]
    if left:
        denied = sum(denying[i] for i in left)
        lines.append(f"  … and {_count(len(left), 'other binding')} that ran rules"
                     + (f" ({denied:,} of them denied)" if denied else " (all granted)"))
    if idle:
        lines.append(f"  … and {_count(idle, 'other binding')} that select this event but run no rule for it")
    return lines


def _group_lines(group: list[Step], limit: int) -> list[str]:
    """One binding's lines; a binding with more than ``limit`` steps keeps its header,
    its denials and its first steps."""
    if len(group) <= limit:
        return [_step_line(s) for s in group]
    keep = {0} | {i for i, s in enumerate(group) if s.verdict in _DECIDING}
    keep = set(sorted(keep)[:limit])
    for i in range(len(group)):
        if len(keep) >= limit:
            break
        keep.add(i)
    lines = [_step_line(group[i]) for i in sorted(keep)]
    lines.append(f"  … and {_count(len(group) - len(keep), 'more step')} of this binding")
    return lines


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def jsonable(v: Any) -> Any:
    """A message value as JSON can hold it: bytes as hex text, tuples as lists.

    The one encoding of :mod:`ksm.values` (``to_json`` without a type; the form does
    not depend on it), whose ``from_json`` reads it back by IDL type.
    """
    from .values import to_json      # ksm.values imports this module

    return to_json(v)
