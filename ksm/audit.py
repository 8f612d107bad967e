"""Security audit: which decisions KSM records, and where the records go.

What is audited (KCE documentation on audit profiles):

* the **audit runtime-level** starts at the level of ``audit default = PROFILE LEVEL``
  (0 without one) and is changed by Base ``set_level``; it selects which part of a
  profile is in force;
* the **profile** in force for a call is the innermost ``audit P`` attached to its
  ``choice``, ``match`` section or binding, else the global ``audit default``
  profile; the built-in profile ``empty`` audits nothing;
* at the current level the profile names objects: a rule call on object ``o`` is
  recorded when its result (``"granted"``/``"denied"``) is in ``o``'s ``kss`` list;
  Flow objects are not audited while the FSM of the call's SID is in one of the
  ``omit`` states; Regex ``emit`` lists the expressions (``match``, ``select``) whose
  calls are recorded;
* **always** recorded, whatever the profiles: denials of malformed messages and of
  events no rule applies to.

Records go to a sink: :class:`MemorySink` (default) keeps them in a list,
:class:`JsonLinesSink` appends one JSON object per line to a file; anything with a
``write(record: dict)`` method will do.  Audit never changes a decision.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol


class AuditSink(Protocol):
    """Where records go.  The module writes to a sink under its lock, unless the sink
    says ``thread_safe = True`` (then also from decisions made without the lock)."""

    def write(self, record: dict) -> None: ...


class MemorySink:
    """Keeps records in ``self.records``, a list of at most ``limit`` of the newest.

    Why the oldest tenth goes at once: dropping one record per write moves the whole
    list every time (13 µs per write at 100,000 records, more than the decision
    itself); dropping a tenth when the limit is passed costs O(1) per write, amortised,
    and still keeps at least 90% of ``limit`` records.
    """

    thread_safe = True      # appending and trimming a list are each atomic; two trims at once drop a bit more

    def __init__(self, limit: int = 100_000):
        self.records: list[dict] = []
        self.limit = max(1, limit)
        self._drop = max(1, self.limit // 10)

    def write(self, record: dict) -> None:
        records = self.records
        records.append(record)
        if len(records) > self.limit:
            del records[: len(records) - self.limit + self._drop - 1]


class JsonLinesSink:
    """Appends one JSON object per line to ``path``."""

    thread_safe = True      # its own lock

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, default=str, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


class AuditPolicy:
    """The solution's audit profiles, ready to answer "is this call audited?"."""

    def __init__(self, solution):
        self.profiles = {name: p.levels for name, p in solution.audit_profiles.items()}
        default = solution.audit_default
        self.default_profile = default[0] if default else "empty"
        self.initial_level = default[1] if default else 0

    def settings(self, profile: str | None, level: int, obj: str) -> dict | None:
        """The audit settings of ``obj`` in force, or None when it is not audited."""
        name = profile or self.default_profile
        if name == "empty":
            return None
        levels = self.profiles.get(name)
        if not isinstance(levels, dict):
            return None
        objs = levels.get(level)
        if not isinstance(objs, dict):
            return None
        s = objs.get(obj)
        return s if isinstance(s, dict) else None

    def audits_rule(self, profile: str | None, level: int, obj: str, verdict: str, flow_state: Any = None) -> bool:
        s = self.settings(profile, level, obj)
        if s is None:
            return False
        if verdict not in (s.get("kss") or ()):
            return False
        omit = s.get("omit")
        return not (omit and flow_state is not None and flow_state in omit)

    def audits_expression(self, profile: str | None, level: int, obj: str, method: str) -> bool:
        s = self.settings(profile, level, obj)
        return bool(s) and method in (s.get("emit") or ())
