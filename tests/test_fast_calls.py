"""The direct calls (module.request(...) and its siblings) and the hot routes behind them.

What users rely on: a direct call gives exactly the decision decide(Event(...)) gives
(verdict, reason, explanation, SID, audit records, state changes), malformed input
included; nothing raised inside a decision escapes or grants; the decisions shared
between callers cannot be changed by one of them.  No timing here: speed is measured
by `ksm bench decide`.
"""
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ksm
from ksm.audit import MemorySink
from ksm.engine import INTERNAL_ERROR, SecurityModule, _selectors_text
from ksm.events import Decision, Event, Step

from test_engine import door_solution

ROOT = Path(__file__).resolve().parent.parent

# Every kind of program the hot routes tell apart: a pure allowlist entry (Close),
# asserts on the message and the SIDs (Open, security Arm), one deny on the SIDs
# (response Put), a choice on the message (Put), stateful Flow steps (response Open,
# Close), default deny (error).
POLICY = """request dst=door.Server, method=Close { grant () }
request dst=door.Server, method=Open { assert (message.code < 100) }
request dst=door.Server, method=Open { match src=door.Client { assert (message.code != 7) } }
request dst=door.Server, method=Open { assert (src_sid < dst_sid) }
request dst=door.Server, method=Put { choice (message.h) { 1 : grant () 2 : deny () _ : assert (message.h > 9) } }
response src=door.Server, method=Open { fsm.enter { sid : src_sid, state : "open" } }
response src=door.Server, method=Close { fsm.enter { sid : src_sid, state : "closed" } }
response src=door.Server, method=Put { deny (src_sid == dst_sid) }
security src=door.Client, method=Arm { assert (message.level > 2) assert (message.level < 200) deny (false) }
execute src=Einit, dst=door.Client { grant () }
"""

_SHARED: dict = {}


def _solution(factory):
    if "solution" not in _SHARED:
        _SHARED["solution"] = door_solution(factory.mktemp("fast"), POLICY)
    return _SHARED["solution"]


class _Reference(SecurityModule):
    """The general path only (under the lock, from scratch): every hot route declines."""

    def _hot_route(self, rkey, route):
        return lambda message: None


def _booted(solution, cls=SecurityModule) -> SecurityModule:
    m = cls(solution, audit_sink=MemorySink())
    m.boot()
    return m


def _event(kind, src, dst, endpoint, method, message) -> Event:
    """The Event a direct call stands for (message None: no parameters, as in the factories)."""
    if kind == "execute":
        return Event.execute(dst, src)
    if kind == "security":
        return Event("security", src, None, None, method, {} if message is None else message)
    return Event(kind, src, dst, endpoint, method, {} if message is None else message)


def _direct(m: SecurityModule, kind, src, dst, endpoint, method, message) -> Decision:
    if kind == "execute":
        return m.execute(dst, src)
    if kind == "security":
        return m.security(src, method, message)
    return getattr(m, kind)(src, dst, endpoint, method, message)


def _same(direct: Decision, decided: Decision, event: Event) -> None:
    assert direct.event is None and decided.event is event
    assert (direct.granted, direct.reason, direct.steps, direct.sid) == \
        (decided.granted, decided.reason, decided.steps, decided.sid), (direct, decided)
    assert not direct.reason.startswith(INTERNAL_ERROR), direct.reason


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([0, 1, 7, 99, 100, 255, 256, 2**32 - 1, 2**32])
    | st.text(max_size=5) | st.binary(max_size=3) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "tag", "x"]), inner, max_size=3),
    max_leaves=6,
)
_ITEMS = st.lists(st.fixed_dictionaries({"a": st.integers(0, 255), "tag": st.text("ab", max_size=4)}), max_size=2)
# Well-formed calls of every program shape (client is SID 3, server SID 4 after boot) ...
_WELL_FORMED = st.one_of(
    st.tuples(st.just("request"), st.sampled_from(["client", 3]), st.sampled_from(["server", 4]),
              st.sampled_from(["api", 0]), st.sampled_from(["Close", 1]), st.none() | st.just({})),
    st.tuples(st.just("request"), st.just("client"), st.just("server"), st.just("api"), st.sampled_from(["Open", 0]),
              st.fixed_dictionaries({"code": st.integers(-2, 2**32)} | {})),
    st.tuples(st.just("request"), st.just("client"), st.just("server"), st.just("api"), st.just("Put"),
              st.fixed_dictionaries({"items": _ITEMS, "h": st.integers(0, 12)})),
    st.tuples(st.just("response"), st.just("server"), st.just("client"), st.just("api"), st.just("Open"),
              st.fixed_dictionaries({"ok": st.integers(0, 256)})),
    st.tuples(st.sampled_from(["response", "error"]), st.just("server"), st.just("client"), st.just("api"),
              st.sampled_from(["Close", "Put"]), st.none()),
    st.tuples(st.just("error"), st.just("server"), st.just("client"), st.just("api"), st.just("Open"),
              st.fixed_dictionaries({"rc": st.integers(-2**31 - 1, 2**31)})),
    st.tuples(st.just("security"), st.sampled_from(["client", 3, "server"]), st.none(), st.none(),
              st.sampled_from(["Arm", 0]), st.fixed_dictionaries({"level": st.integers(-1, 256)})),
    st.tuples(st.just("execute"), st.sampled_from(["Einit", "client", None]), st.sampled_from(["client", "server"]),
              st.none(), st.just("main"), st.none()),
)
_JUNK_NAMES = st.sampled_from(["nobody", "door.Server", "Einit", "nope", "Nope", "main", 2, 9, 99, -1, 3.0, 4.0, 0.0,
                               True, False, None, ["x"], ("Open",)])
_JUNK_MESSAGES = (st.dictionaries(st.sampled_from(["code", "items", "h", "level", "ok", "rc", "x"]), _VALUES, max_size=3)
                  | st.sampled_from([[], "code", 7, (), None]))


@st.composite
def _calls(draw):
    """... and, one time in two, the same with one field made wrong (an unknown or
    ill-typed name, a message with a field too many or too few, a value out of range)."""
    call = list(draw(_WELL_FORMED))
    if draw(st.booleans()):
        where = draw(st.integers(1, 5))
        if where < 5:
            call[where] = draw(_JUNK_NAMES)
        elif isinstance(call[5], dict) and call[5] and draw(st.booleans()):
            message = dict(call[5])
            name = draw(st.sampled_from(sorted(message)))
            change = draw(st.sampled_from(["drop", "extra", "value"]))
            if change == "drop":
                del message[name]
            elif change == "extra":
                message["x"] = 1
            else:
                message[name] = draw(_VALUES)
            call[5] = message
        else:
            call[5] = draw(_JUNK_MESSAGES)
    return tuple(call)


_CALLS = _calls()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(_CALLS, min_size=1, max_size=8))
def test_property_direct_calls_and_decide_agree_on_everything(tmp_path_factory, calls):
    """Three modules with the same history: one asked directly, one through
    decide(Event), and a reference that never takes a hot route.

    Each call is made twice in a row, so the second meets the route the first made
    (the hot path, where the program allows one).  Verdicts, reasons, explanations,
    SIDs, audit records and model state must be the same throughout.
    """
    solution = _solution(tmp_path_factory)
    direct_m, event_m, reference = _booted(solution), _booted(solution), _booted(solution, _Reference)
    for call in calls:
        for _ in range(2):
            event = _event(*call)
            expected = reference.decide(event)
            _same(_direct(direct_m, *call), expected, event)
            _same(event_m.decide(event)._replace(event=None), expected, event)
    for m in (direct_m, event_m):
        assert m.audit_sink.records == reference.audit_sink.records
        assert m.snapshot() == reference.snapshot()
        assert {s: (p.cls, p.task) for s, p in m.processes.items()} == \
            {s: (p.cls, p.task) for s, p in reference.processes.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=_CALLS)
def test_property_warm_and_cold_decisions_agree(tmp_path_factory, call):
    """The first decision of a route (general path) and the later ones (hot path) agree,
    for decide(Event) as for the direct call, on a module whose state they leave alone."""
    if call[0] in ("execute", "response"):
        call = ("request", *call[1:])       # stateless programs only: the answer must not move
    solution = _solution(tmp_path_factory)
    m = _booted(solution)
    event = _event(*call)
    first = _booted(solution, _Reference).decide(event)
    for _ in range(3):
        again = m.decide(event)
        assert (again.granted, again.reason, again.steps) == (first.granted, first.reason, first.steps)
        _same(_direct(m, *call), again, event)


def test_a_route_named_by_sids_and_numbers_agrees_and_lookalikes_are_denied(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    client, server = m._by_task["client"], m._by_task["server"]
    for _ in range(3):                                          # cold, then hot
        d = m.request(client, server, 0, 0, {"code": 5})
        assert d.granted and d == m.decide(Event.request(client, server, 0, 0, {"code": 5}))._replace(event=None)
    for src, dst, ep, meth in ((float(client), server, 0, 0), (client, float(server), 0, 0), (client, server, 0.0, 0),
                               (client, server, False, 0), (client, server, 0, False), (client, server, 0, 0.0)):
        d = m.request(src, dst, ep, meth, {"code": 5})
        assert not d.granted and not d.reason.startswith(INTERNAL_ERROR), (src, dst, ep, meth, d.reason)


def test_message_none_is_no_parameters_as_in_the_event_factories(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    assert m.request("client", "server", "api", "Close").granted
    assert m.request("client", "server", "api", "Close", None).granted
    d = m.request("client", "server", "api", "Open")
    assert not d.granted and d.reason == "malformed message: missing parameter code"
    assert d.reason == m.decide(Event.request("client", "server", "api", "Open", None)).reason


def test_direct_calls_never_raise_on_junk(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    junk = [None, [], {}, ["x"], {"a": 1}, object(), 10**5000, float("nan"), b"x", Event]
    for value in junk:
        for d in (m.request(value, "server", "api", "Open", {"code": 1}), m.request("client", value, "api", "Close"),
                  m.request("client", "server", value, "Close"), m.request("client", "server", "api", value),
                  m.request("client", "server", "api", "Open", value), m.response(value, value, value, value, value),
                  m.error("server", "client", "api", "Open", value), m.security(value, value, value),
                  m.execute(value), m.execute("client", value) if value is not None else m.execute(value, value)):
            assert isinstance(d, Decision) and d.granted is False and d.reason
            assert not d.reason.startswith(INTERNAL_ERROR), d.reason


# fail closed -------------------------------------------------------------------------------------
def _warm(m: SecurityModule) -> None:
    assert m.request("client", "server", "api", "Close").granted
    assert m.request("client", "server", "api", "Open", {"code": 5}).granted
    assert m.request("client", "server", "api", "Open", {"code": 5}).granted    # hot now
    assert m.security("client", "Arm", {"level": 5}).granted
    assert m.security("client", "Arm", {"level": 5}).granted


def _boom(*args, **kwargs):
    raise RuntimeError("a bug")


def _internal(d: Decision) -> bool:
    return not d.granted and d.reason.startswith(INTERNAL_ERROR) and "a bug" in d.reason


def test_a_program_that_raises_is_a_denial_warm_and_cold(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    _warm(m)
    for program in m._programs.values():
        if program.args is not None:                # the programs the hot path answers by argument values
            program.args = tuple(_boom for _ in program.args)
            program.plan = tuple((line, None if step is None else _boom) for line, step in program.plan)
            program.by_values.clear()
            program.outcomes.clear()
    for _ in range(2):
        assert _internal(m.request("client", "server", "api", "Open", {"code": 5}))
        assert _internal(m.decide(Event.request("client", "server", "api", "Open", {"code": 5})))
        assert _internal(m.security("client", "Arm", {"level": 5}))
    assert m.request("client", "server", "api", "Close").granted        # other routes are untouched


@pytest.mark.parametrize("broken", ["_evaluate", "_route_of", "_compile"])
def test_an_internal_error_anywhere_is_a_denial(tmp_path_factory, monkeypatch, broken):
    m = _booted(_solution(tmp_path_factory))
    _warm(m)
    monkeypatch.setattr(m, broken, _boom)
    m._forget_routes()
    m._programs.clear()
    for _ in range(2):
        for d in (m.request("client", "server", "api", "Open", {"code": 5}),
                  m.decide(Event.request("client", "server", "api", "Open", {"code": 5})),
                  m.security("client", "Arm", {"level": 5}),
                  m.response("server", "client", "api", "Open", {"ok": 1})):
            assert _internal(d), d


def test_a_structure_check_that_raises_is_a_denial_on_a_hot_route(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    _warm(m)
    for key in list(m._validators):
        m._validators[key] = _boom
        m._validator_params[_boom] = ()
    m._forget_routes()
    for _ in range(3):
        assert _internal(m.request("client", "server", "api", "Open", {"code": 5}))
        assert _internal(m.request("client", "server", "api", "Close"))


def test_a_failing_audit_sink_changes_no_decision(tmp_path_factory):
    class Broken:
        def write(self, record):
            raise OSError("disk full")

    m = SecurityModule(_solution(tmp_path_factory), audit_sink=Broken())
    m.boot()
    for _ in range(2):
        d = m.error("server", "client", "api", "Open", {"rc": 1})           # default deny: always audited
        assert not d.granted and d.reason.startswith("no rule applies")
        d = m.request("client", "server", "api", "Open", {"code": -1})      # malformed: always audited
        assert not d.granted and d.reason.startswith("malformed message")


# audit ---------------------------------------------------------------------------------------------
AUDITED = """audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }
audit default = trace 0
request dst=door.Server, method=Open { assert (message.code < 100) }
request dst=door.Server, method=Close { grant () }
"""


class _Sink:
    """Not thread safe (no ``thread_safe`` attribute): written to under the module's lock."""

    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(record)


@pytest.mark.parametrize("policy", [AUDITED, POLICY])
def test_audit_records_are_the_same_for_direct_calls_and_decide(tmp_path, policy):
    solution = door_solution(tmp_path, policy)
    a, b = SecurityModule(solution, audit_sink=_Sink()), SecurityModule(solution, audit_sink=_Sink())
    a.boot(), b.boot()
    calls = [("request", "client", "server", "api", "Open", {"code": c}) for c in (1, 500, -1, 1)] + \
            [("request", "client", "server", "api", "Close", None), ("error", "server", "client", "api", "Open", {"rc": 1}),
             ("request", "client", "server", "api", "Nope", {})] * 2
    for call in calls:
        event = _event(*call)
        _same(_direct(a, *call), b.decide(event), event)
    assert a.audit_sink.records == b.audit_sink.records and a.audit_sink.records
    assert any(r.get("always") for r in a.audit_sink.records)
    if policy is AUDITED:
        assert any(r.get("call") == "base.assert" and r["verdict"] == "denied" for r in a.audit_sink.records)


# shared decisions ------------------------------------------------------------------------------
def test_shared_decisions_cannot_be_changed_by_a_caller(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    first = m.request("client", "server", "api", "Close")
    shared = m.request("client", "server", "api", "Close")
    assert shared is m.request("client", "server", "api", "Close")      # one object for a constant outcome
    with pytest.raises(AttributeError):
        shared.granted = False
    with pytest.raises(TypeError):
        shared.steps[0] = None
    with pytest.raises(AttributeError):
        shared.steps[0].verdict = "denied"
    assert isinstance(shared.steps, tuple) and all(type(s) is Step for s in shared.steps)
    changed = shared._replace(granted=False, reason="mine")         # a copy: the shared one is untouched
    assert not changed.granted and shared.granted and m.request("client", "server", "api", "Close").granted
    # decide() hands out the event it was given, never another caller's
    e1, e2 = Event.request("client", "server", "api", "Close"), Event.request("client", "server", "api", "Close")
    d1, d2 = m.decide(e1), m.decide(e2)
    assert d1.event is e1 and d2.event is e2 and shared.event is None and first.event is None
    assert d1.steps is d2.steps                                      # the explanation is shared, and immutable


def test_a_shared_denial_explains_itself(tmp_path_factory):
    m = _booted(_solution(tmp_path_factory))
    d = m.request("client", "server", "api", "Open", {"code": 500})
    text = d.explain()
    assert text.startswith("DENIED: (a direct call") and "base.assert denied" in text
    assert m.decide(Event.request("client", "server", "api", "Open", {"code": 500})).explain().startswith(
        "DENIED: request src=client dst=server")


def test_the_caller_keeps_its_message(tmp_path_factory):
    """A message of integers is checked in place, not copied: nothing may change it or keep it."""
    m = _booted(_solution(tmp_path_factory))
    message = {"code": 5}
    for _ in range(3):
        assert m.request("client", "server", "api", "Open", message).granted
        assert m.decide(Event("request", "client", "server", "api", "Open", message)).granted
    assert message == {"code": 5}
    message["code"] = 500                                       # the caller's to change: the next answer follows
    assert not m.request("client", "server", "api", "Open", message).granted


# threads ---------------------------------------------------------------------------------------------
def test_concurrent_direct_calls_agree_with_a_serial_run(tmp_path_factory):
    solution = _solution(tmp_path_factory)
    m = _booted(solution)
    calls = [("client", "server", "api", "Open", {"code": c}) for c in (1, 7, 99, 100, 5000)] + \
            [("client", "server", "api", "Close", None), ("client", "server", "api", "Put", {"items": [], "h": 2})]
    expected = [m.request(*c) for c in calls]
    failures = []

    def worker():
        for _ in range(200):
            for c, want in zip(calls, expected):
                got = m.request(*c)
                if (got.granted, got.reason, got.steps) != (want.granted, want.reason, want.steps):
                    failures.append((c, got))
            m.response("server", "client", "api", "Open", {"ok": 1})      # a stateful step meanwhile
            m.response("server", "client", "api", "Close", {})

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# the engine's own copy of SelectorSet.describe ----------------------------------------------
@pytest.mark.parametrize("model", sorted(p.name for p in (ROOT / "models").iterdir() if p.is_dir()))
def test_matched_lines_name_selectors_as_describe_does(model):
    solution = ksm.load(ROOT / "models" / model)
    sections = []

    def walk(body):
        for stmt in body:
            if hasattr(stmt, "selectors"):
                sections.append(stmt.selectors)
            for arm in getattr(stmt, "arms", ()):
                walk(arm.body)
            walk(getattr(stmt, "body", ()))

    for b in solution.bindings:
        sections.append(b.selectors)
        walk(b.body)
    assert sections
    for sel in sections:
        assert _selectors_text(sel) == sel.describe()


# the structure check's reason-answering form ------------------------------------------------------
def _params(*pairs):
    from policy_lang.types import ParamDef

    return tuple(ParamDef(name, "in", t, None) for name, t in pairs)


def _shapes():
    from policy_lang.types import INT_TYPES, FieldDef, SequenceType, StringType, StructType

    u8, u32, s64 = INT_TYPES["UInt8"], INT_TYPES["UInt32"], INT_TYPES["SInt64"]
    pair = StructType("t.Pair", (FieldDef("a", u8), FieldDef("tag", StringType(4))))
    return [(), (("key", u32),), (("key", u32), ("n", s64), ("b", u8)), (("items", SequenceType(pair, 2)), ("key", u8))]


@settings(max_examples=400, deadline=None)
@given(shape=st.integers(0, 3), message=st.dictionaries(st.sampled_from(["key", "n", "b", "items", "x"]), _VALUES, max_size=4)
       | st.fixed_dictionaries({"key": st.integers(-2**65, 2**65)}) | st.sampled_from([None, [], "key", ()]))
def test_property_check_answers_the_reason_validate_raises(shape, message):
    from ksm.structure import MalformedMessage, compile_message

    validate = compile_message(_params(*_shapes()[shape]))
    try:
        expected = validate(message)
    except MalformedMessage as exc:
        expected = str(exc)
    assert validate.check(message) == expected
