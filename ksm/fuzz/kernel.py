"""Fuzzing messages to the built-in kernel: malformed ones are denied, even by a blanket grant.

The built-in ``kl.core.Core`` (:mod:`policy_lang.kernel`) knows its endpoints and
methods by name and their parameters by name and direction only, so the decision
function's structure check is all that stands between a policy that grants every
kernel call (``request dst=kl.core.Core { grant () }``, the worst case and a
common one) and messages no real kernel call carries.  This module makes random
kernel events, valid and malformed, and checks each against such a policy.

A request, response or error event addressed to the kernel is **malformed** when
(:func:`malformed`, an oracle written from the description, not from the engine):

* its endpoint or method is not text naming one the description has (a RIID or MID
  number, ``None``, a misspelling, an interface name where an endpoint goes);
* its message is not a mapping, or has a parameter name that is not ``str``, or a
  name the description does not list for the event's direction (``in`` for a
  request, ``out`` for a response, none for an error) — unless the description
  says the method's names are unknown (``*``), which allows any text name;
* a value no IDL message can hold: an integer outside every IDL integer's range
  (``[-2**63, 2**64-1]``), a float, a Boolean or ``None`` (IDL has none of them), a
  value that is not a plain one (``str``, ``int``, ``bytes``, ``bytearray``,
  ``list``, ``tuple``, a mapping with text keys), nesting
  :data:`~ksm.engine.MAX_MESSAGE_DEPTH` levels deep or more (self-containing values
  included).

:func:`check_kernel_messages` decides ``count`` random events (seeded) on a
solution granting every kernel request, response and error, and returns the
findings: a malformed event granted (or denied with a reason that does not say
"malformed"), a well-formed one denied, an exception escaping ``decide``,
``Decision.explain`` or ``Event.describe``, an internal error, or a verdict that
depends on the order the events come in (a second module decides them shuffled).

Integers between ``-(2**64-1)`` and ``-(2**63+1)`` have at most 64 bits of
magnitude but fit neither ``SInt64`` nor ``UInt64``: this fuzz found the decision
function granting them (it measured integers by bit length); they are malformed
like any other out-of-range integer, category ``int-out-of-range``.

``python -m ksm.fuzz --kernel COUNT SEED...`` runs the check from the command line.
"""
from __future__ import annotations

import random
import tempfile
import types
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from policy_lang import Solution, load
from policy_lang.kernel import ANY_PARAM, builtin_kernel_class
from policy_lang.solution import KERNEL_CLASS

from ..engine import INTERNAL_ERROR, MAX_MESSAGE_DEPTH, SecurityModule
from ..events import Event, show

#: The worst case: every kernel call and answer granted, whatever it carries.
POLICY = """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL fuzz.Client
execute: kl.core.Execute
execute { grant () }
request dst=kl.core.Core { grant () }
response src=kl.core.Core { grant () }
error src=kl.core.Core { grant () }
"""
FILES = {
    "resources/Client.edl": "task class fuzz.Client\n",
    "einit/src/init.yaml": "entities:\n  - name: fuzz.Client\n    task: client\n",
    "einit/src/security.psl": POLICY,
}
CLIENT = "client"

#: The range every IDL integer lies in (SInt64's minimum to UInt64's maximum).
IDL_INT_MIN, IDL_INT_MAX = -(2 ** 63), 2 ** 64 - 1

_DIRECTION = {"request": "in", "response": "out", "error": "error"}


# ================================================================ the oracle
def kernel_methods() -> dict[str, dict[str, Any]]:
    """endpoint name -> method name -> :class:`~policy_lang.types.MethodDef` of the built-in kernel."""
    return {ep.name: {m.name: m for m in ep.interface.methods} for ep in builtin_kernel_class().endpoints}


def documented_names(mdef, kind: str) -> tuple[str, ...]:
    """Parameter names the description lists for the event's direction (``*``: any name)."""
    direction = _DIRECTION.get(kind)
    return tuple(n for n, d in mdef.untyped if d == direction)


def malformed(event: Event, methods: Mapping | None = None) -> list[tuple[str, str]]:
    """Why ``event`` (to or from the kernel) is malformed, as (category, detail) pairs; [] when well-formed.

    Stops at the first problem.
    """
    methods = kernel_methods() if methods is None else methods
    ep, meth = event.endpoint, event.method
    if not isinstance(ep, str):
        return [("endpoint-not-text", f"endpoint {show(ep)} is not a name")]
    if not isinstance(meth, str):
        return [("method-not-text", f"method {show(meth)} is not a name")]
    if ep not in methods:
        return [("unknown-endpoint", f"no endpoint {show(ep)}")]
    mdef = methods[ep].get(meth)
    if mdef is None:
        return [("unknown-method", f"{ep} has no method {show(meth)}")]
    message = event.message
    if not isinstance(message, Mapping):
        return [("message-not-mapping", f"message is a {type(message).__name__}")]
    names = documented_names(mdef, event.kind)
    for k in message:
        if type(k) is not str:
            return [("name-not-text", f"parameter name {show(k)} ({type(k).__name__})")]
        if ANY_PARAM not in names and k not in names:
            return [("undocumented-name", f"{show(k)} not among {names}")]
    return _value_problems(message)


def _value_problems(message: Mapping) -> list[tuple[str, str]]:
    stack: list[tuple[str, Any, int]] = [(k, v, 1) for k, v in reversed(list(message.items()))]
    while stack:
        path, v, depth = stack.pop()
        if isinstance(v, (bool, float, type(None))):
            return [("not-idl-value", f"{path}: {show(v)} is not an IDL value")]
        if isinstance(v, int):
            if v > IDL_INT_MAX or v < IDL_INT_MIN:
                return [("int-out-of-range", f"{path}: {show(v)} fits no IDL integer")]
        elif isinstance(v, (str, bytes, bytearray)):
            continue
        elif isinstance(v, (list, tuple, Mapping)):
            if depth >= MAX_MESSAGE_DEPTH:
                return [("too-deep", f"{path}: a container {depth} levels deep")]
            if isinstance(v, Mapping):
                for k in v:
                    if type(k) is not str:
                        return [("field-name-not-text", f"{path}: field name {show(k)}")]
                inner = [(f"{path}.{k}", x) for k, x in v.items()]
            else:
                inner = [(f"{path}[{i}]", x) for i, x in enumerate(v)]
            stack.extend((p, x, depth + 1) for p, x in reversed(inner))
        else:
            return [("not-plain", f"{path}: {type(v).__name__} is not a message value")]
    return []


# ================================================================ the generator
class _Hostile:
    """An object whose repr and comparisons raise: a reason must still be worded."""

    def __repr__(self):
        raise RuntimeError("no repr")

    def __eq__(self, other):
        raise RuntimeError("no eq")

    __hash__ = object.__hash__


class _Text(str):
    """Text, but not a ``str`` (parameter names must be plain ``str``)."""


_INTS = (0, 1, -1, 7, 255, 256, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 63 - 1, -(2 ** 63), 2 ** 63,
         2 ** 64 - 1, 2 ** 64, -(2 ** 63) - 1, -(2 ** 64) + 1, -(2 ** 64), 2 ** 65, -(2 ** 65), 10 ** 30,
         -(10 ** 30), 10 ** 5000, -(10 ** 5000), True, False)
_FLOATS = (0.0, -0.0, 0.5, 1e308, float("inf"), float("-inf"), float("nan"))
_TEXTS = ("", "a", "size", "kl.core.Core", "é\u0000\U0001F600", "x" * 10_000, "\udcff")
_DEPTHS = (2, 30, MAX_MESSAGE_DEPTH - 2, MAX_MESSAGE_DEPTH - 1, MAX_MESSAGE_DEPTH, MAX_MESSAGE_DEPTH + 1, 200)


def _not_plain(rng: random.Random) -> Any:
    return rng.choice([object, set, lambda: frozenset({1}), lambda: 1j, lambda: Decimal("1.5"), lambda: range(3),
                       _Hostile, lambda: (lambda: 0), lambda: type, lambda: Ellipsis])()


def _ident(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF_0123456789") for _ in range(rng.randint(1, 9)))


def _key(rng: random.Random) -> Any:
    """A non-text key (or text that is not a plain ``str``)."""
    return rng.choice([lambda: rng.randint(-3, 3), lambda: b"size", lambda: None, lambda: (1, "a"), lambda: True,
                       lambda: 1.5, lambda: _Text("size"), lambda: 10 ** 5000, lambda: frozenset()])()


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON-ish value, sometimes one no message can hold."""
    r = rng.random()
    if r < 0.22:
        return rng.randint(-(2 ** 20), 2 ** 20) if rng.random() < 0.5 else rng.choice(_INTS)
    if r < 0.30:
        return rng.choice(_FLOATS)
    if r < 0.40:
        return rng.choice(_TEXTS) if rng.random() < 0.5 else _ident(rng)
    if r < 0.46:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 6))) if rng.random() < 0.7 else bytearray(b"\x00")
    if r < 0.50:
        return None
    if r < 0.58 and depth < 4:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if r < 0.62 and depth < 4:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if r < 0.70 and depth < 4:
        out = {_ident(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
        if rng.random() < 0.15:
            out[_key(rng)] = 0
        return out
    if r < 0.78:
        return _nested(rng, rng.choice(_DEPTHS))
    if r < 0.82:
        return _cyclic(rng)
    if r < 0.88:
        return _not_plain(rng)
    return rng.randint(0, 2 ** 64 - 1)


def _nested(rng: random.Random, levels: int) -> Any:
    v: Any = rng.choice([0, "leaf", None, [], {}])
    for _ in range(levels):
        v = [v] if rng.random() < 0.5 else {"f": v}
    return v


def _cyclic(rng: random.Random) -> Any:
    if rng.random() < 0.5:
        x: list = []
        x.append(x)
        if rng.random() < 0.5:
            x.append(x)
        return x
    d: dict = {}
    d["self"] = d
    return d


@dataclass
class KernelCase:
    """One generated event and what the oracle says of it."""

    event: Event
    problems: list          # (category, detail); [] = well-formed

    @property
    def wellformed(self) -> bool:
        return not self.problems


def random_kernel_event(rng: random.Random, methods: Mapping | None = None, client: Any = CLIENT,
                        kernel: Any = KERNEL_CLASS) -> Event:
    """A random event between ``client`` and the kernel: about two thirds of them malformed."""
    methods = kernel_methods() if methods is None else methods
    endpoints = sorted(methods)
    kind = rng.choices(("request", "response", "error"), (6, 3, 1))[0]
    src, dst = (client, kernel) if kind == "request" else (kernel, client)
    ep_name = rng.choice(endpoints)
    r = rng.random()
    endpoint: Any = ep_name
    if r < 0.05:
        endpoint = rng.randint(-1, len(endpoints) + 1)
    elif r < 0.07:
        endpoint = rng.choice([None, True, 0.0, b"vmm.VMM", ("vmm", "VMM"), ["vmm.VMM"]])
    elif r < 0.12:
        iface = builtin_kernel_class().endpoint(ep_name).interface.name
        endpoint = rng.choice([iface, ep_name.lower(), ep_name + "x", ep_name.split(".")[-1], "", _ident(rng)])
    method_names = sorted(methods[ep_name])
    m_name = rng.choice(method_names) if method_names else _ident(rng)   # an endpoint may list no method
    r = rng.random()
    method: Any = m_name
    if r < 0.05:
        method = rng.randint(-1, len(method_names) + 1)
    elif r < 0.07:
        method = rng.choice([None, False, 1.0, b"Wait", {"Wait": 0}])
    elif r < 0.12:
        other = rng.choice([m for ms in methods.values() for m in ms])
        method = rng.choice([other, m_name.lower(), m_name + "_", "", "main", _ident(rng)])
    message = _message(rng, methods[ep_name].get(m_name), kind)
    return Event(kind, src, dst, endpoint, method, message)


def _message(rng: random.Random, mdef, kind: str) -> Any:
    r = rng.random()
    if r < 0.03:
        return rng.choice([None, [("size", 1)], "size=1", 0, ("size",), {"size"}])
    names = list(documented_names(mdef, kind)) if mdef is not None else []
    known = [n for n in names if n != ANY_PARAM]
    other_dir = [n for n, d in (mdef.untyped if mdef is not None else ()) if d != _DIRECTION[kind] and n != ANY_PARAM]
    out: dict = {}
    for _ in range(rng.choices((0, 1, 2, 3, 5), (2, 4, 3, 2, 1))[0]):
        r = rng.random()
        if r < 0.55 and known:
            k: Any = rng.choice(known)
        elif r < 0.65 and other_dir:
            k = rng.choice(other_dir)
        elif r < 0.70:
            k = ANY_PARAM
        elif r < 0.80:
            k = _key(rng)
        else:
            k = _ident(rng)
        value = random_value(rng) if rng.random() < 0.6 else rng.randint(0, 2 ** 32)
        try:
            out[k] = value
        except TypeError:       # an unhashable key: not a dict one can build
            pass
    r = rng.random()
    if r < 0.05:
        return types.MappingProxyType(out)
    if r < 0.10:
        return OrderedDict(out)
    return out


# ================================================================ the check
@lru_cache(maxsize=1)
def kernel_fuzz_solution() -> Solution:
    """The worst-case solution (:data:`POLICY`), loaded once."""
    with tempfile.TemporaryDirectory(prefix="ksm-kernel-fuzz-") as tmp:
        root = Path(tmp)
        for rel, text in FILES.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        sol = load(root)
    if not sol.ok:
        raise RuntimeError("the kernel fuzz solution does not load: "
                           + "; ".join(d.render() for d in sol.diagnostics if d.severity.value == "error"))
    return sol


def booted_module() -> SecurityModule:
    """A decision function over :func:`kernel_fuzz_solution`, after start-up (every start granted)."""
    m = SecurityModule(kernel_fuzz_solution())
    for d in m.boot():
        if not d.granted:
            raise RuntimeError(f"start-up denied: {d.reason}")
    return m


def judge(module: SecurityModule, case: KernelCase) -> tuple[bool | None, tuple[str, str] | None]:
    """(granted, None if the answer is right else (check, detail)); granted is None when ``decide`` raised."""
    event = case.event
    try:
        d = module.decide(event)
    except Exception as exc:               # noqa: BLE001 - an escape is the finding
        return None, ("raised", f"decide raised {type(exc).__name__}")
    try:
        d.explain()
        event.describe()
    except Exception as exc:               # noqa: BLE001 - so is one here
        return d.granted, ("raised", f"explain/describe raised {type(exc).__name__}")
    reason = d.reason if isinstance(d.reason, str) else repr(d.reason)
    if reason.startswith(INTERNAL_ERROR):
        return d.granted, ("internal-error", reason[:300])
    if case.wellformed:
        return d.granted, (None if d.granted else ("denied-wellformed", reason[:300]))
    tag = case.problems[0][0]
    if d.granted:
        return True, (f"granted-malformed:{tag}", "; ".join(w for _, w in case.problems)[:300])
    if not reason.startswith("malformed"):
        return False, (f"denied-without-malformed:{tag}", reason[:300])
    return False, None


def check_kernel_messages(seed: int, count: int, stats: Counter | None = None) -> list[str]:
    """Decide ``count`` random kernel events (from ``seed``) on the worst-case policy; the findings.

    Empty means: every malformed event was denied as malformed, every well-formed one
    granted, nothing raised, and a second module deciding the same events in another
    order gave each the same verdict.  ``stats`` (a Counter) receives the figures:
    ``events``, ``malformed``, ``wellformed``, ``granted``, ``malformed granted``,
    ``category <name>`` per malformed category, ``findings``.
    """
    stats = Counter() if stats is None else stats
    rng = random.Random(seed)
    methods = kernel_methods()
    module, other = booted_module(), booted_module()
    sids = {p.task: p.sid for p in module.processes.values()}
    client_sid, kernel_sid = sids[CLIENT], sids[KERNEL_CLASS]
    findings: list[str] = []
    cases: list[KernelCase] = []
    verdicts: list[bool | None] = []
    for i in range(count):
        event = random_kernel_event(rng, methods, client=rng.choice([CLIENT, client_sid]),
                                    kernel=rng.choice([KERNEL_CLASS, kernel_sid]))
        case = KernelCase(event, malformed(event, methods))
        cases.append(case)
        stats["events"] += 1
        if case.wellformed:
            stats["wellformed"] += 1
        else:
            stats["malformed"] += 1
            stats[f"category {case.problems[0][0]}"] += 1
        granted, problem = judge(module, case)
        verdicts.append(granted)
        stats["granted"] += bool(granted)
        if granted and not case.wellformed:
            stats["malformed granted"] += 1
        if problem is not None:
            check, detail = problem
            findings.append(f"seed {seed} event {i}: [{check}] {_describe(event)}: {detail}")
    order = list(range(count))
    rng.shuffle(order)
    for i in order:
        try:
            granted = other.decide(cases[i].event).granted
        except Exception:               # noqa: BLE001 - reported by judge() already
            granted = None
        if granted != verdicts[i]:
            findings.append(f"seed {seed} event {i}: [order-dependent] {_describe(cases[i].event)}: "
                            f"{verdicts[i]} in order, {granted} shuffled")
    stats["findings"] += len(findings)
    return findings


def _describe(event: Event) -> str:
    try:
        return f"{event.describe()} message={show(event.message)}"
    except Exception:                   # noqa: BLE001 - reported by judge()
        return "<event that cannot be described>"
