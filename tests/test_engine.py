"""Decision semantics, one test per rule of docs/semantics.md (numbers in the test names)."""
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksm.engine import Options, SecurityModule, SolutionNotLoadable
from ksm.events import Event
from policy_lang import load

IDL = """package door.Api
struct Pair { UInt8 a; string<4> tag; }
interface {
    Open(in UInt32 code, out UInt8 ok, error SInt32 rc);
    Close();
    Put(in sequence<Pair, 2> items, in Handle h);
}
"""
SEC_IDL = "package door.Ctl\ninterface {\n    Arm(in UInt8 level);\n}\n"
EDLS = {
    "resources/Client.edl": "task class door.Client\nsecurity door.Ctl\n",
    "resources/Server.edl": "task class door.Server\nendpoints {\n    api : door.Api\n}\n",
    "resources/Api.idl": IDL,
    "resources/Ctl.idl": SEC_IDL,
}
HEADER = """use nk.base._
use nk.basic._
use nk.flow._
use EDL kl.core.Core
use EDL Einit
use EDL door.Client
use EDL door.Server
execute: kl.core.Execute
policy object fsm : Flow {
    type State = "closed" | "open"
    config = { states : ["closed", "open"], initial : "closed",
               transitions : { "closed" : ["open"], "open" : ["closed"] } }
}
execute src=kl.core.Core { grant () }
execute src=Einit, dst=door.Client { grant () }
execute src=Einit, dst=door.Server { fsm.init { sid : dst_sid } }
"""
INIT = "entities:\n  - name: door.Client\n    task: client\n    connections:\n      - target: server\n        id: c\n  - name: door.Server\n    task: server\n"


def door_solution(tmp_path: Path, policy: str):
    """The door solution with ``policy`` appended to its header, loaded (and checked ok)."""
    files = dict(EDLS)
    files["einit/src/security.psl"] = HEADER + policy
    files["einit/src/init.yaml"] = INIT
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    sol = load(tmp_path)
    assert sol.ok, [d.render() for d in sol.diagnostics]
    return sol


def module(tmp_path: Path, policy: str, **opts) -> SecurityModule:
    m = SecurityModule(door_solution(tmp_path, policy), Options(**opts))
    assert all(d.granted for d in m.boot()), [d.explain() for d in m.boot()]
    return m


def req(method, message=None, endpoint="api", src="client", dst="server"):
    return Event.request(src, dst, endpoint, method, message or {})


OPEN = 'request dst=door.Server, method=Open { assert (message.code < 100) }\n'


# 1. structure check first ----------------------------------------------------------
@pytest.mark.parametrize("message,why", [
    ({}, "missing parameter code"),
    ({"code": 1, "extra": 2}, "unknown parameter extra"),
    ({"code": -1}, "out of range"),
    ({"code": 2**32}, "out of range"),
    ({"code": "1"}, "expected UInt32"),
    ({"code": True}, "expected UInt32"),
])
def test_1_malformed_message_denied_before_rules(tmp_path, message, why):
    m = module(tmp_path, "request { grant () }\n")
    d = m.decide(req("Open", message))
    assert not d.granted and "malformed message" in d.reason and why in d.reason
    assert not any(s.verdict == "granted" for s in d.steps)


@pytest.mark.parametrize("items,ok", [
    ([{"a": 1, "tag": "abcd"}], True),
    ([{"a": 1, "tag": "abcde"}], False),              # string<4> too long
    ([{"a": 1, "tag": "x"}] * 3, False),              # sequence bound 2
    ([{"a": 256, "tag": "x"}], False),                # UInt8 range
    ([{"a": 1}], False),                              # struct field missing
])
def test_1_nested_structure(tmp_path, items, ok):
    m = module(tmp_path, "request { grant () }\n")
    assert m.decide(req("Put", {"items": items, "h": 5})).granted is ok


# 2. every matching binding and section contributes -----------------------------------
def test_2_all_matching_bindings_contribute(tmp_path):
    m = module(tmp_path, "request dst=door.Server { grant () }\nrequest method=Close { deny () }\n")
    d = m.decide(req("Close"))
    assert not d.granted and "base.deny" in d.reason
    assert m.decide(req("Open", {"code": 1})).granted


def test_2_nested_sections_all_apply(tmp_path):
    m = module(tmp_path, "request { match dst=door.Server { grant () } match method=Close { deny () } }\n")
    assert not m.decide(req("Close")).granted
    assert m.decide(req("Open", {"code": 1})).granted


# 3. default deny -------------------------------------------------------------------------
def test_3_no_rule_means_denied(tmp_path):
    m = module(tmp_path, "request method=Open { grant () }\n")
    d = m.decide(req("Close"))
    assert not d.granted and "default deny" in d.reason


# 4. a method that runs incorrectly denies -----------------------------------------------
def test_4_index_out_of_range_denies(tmp_path):
    m = module(tmp_path, "request method=Put { assert (message.items.[1].a == 1) }\n")
    assert m.decide(req("Put", {"items": [{"a": 1, "tag": ""}, {"a": 1, "tag": ""}], "h": 1})).granted
    d = m.decide(req("Put", {"items": [{"a": 1, "tag": ""}], "h": 1}))
    assert not d.granted and "runs incorrectly" in d.reason


# 5. choice ---------------------------------------------------------------------------------
CHOICE = """request dst=door.Server, method=Open {
    choice (fsm.query { sid : dst_sid }) {
        "closed" : fsm.enter { sid : dst_sid, state : "open" }
        _ : deny ()
    }
}
"""


def test_5_choice_runs_selected_arm_and_default(tmp_path):
    m = module(tmp_path, CHOICE)
    assert m.decide(req("Open", {"code": 1})).granted        # closed -> open
    d = m.decide(req("Open", {"code": 1}))                    # open: `_` arm denies
    assert not d.granted


def test_5_choice_without_match_and_default(tmp_path):
    policy = 'request method=Open { choice (fsm.query { sid : dst_sid }) { "open" : grant () } }\n'
    assert not module(tmp_path / "a", policy).decide(req("Open", {"code": 1})).granted
    # option: an unmatched choice contributes nothing (then no rule ran: still denied)
    m = module(tmp_path / "b", policy + "request method=Open { grant () }\n", choice_without_match="nothing")
    assert m.decide(req("Open", {"code": 1})).granted


# 6. Base ------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,granted", [
    ("grant ()", True), ("deny ()", False), ("deny (false)", True), ("deny (true)", False),
    ("assert (message.code == 7)", True), ("assert (message.code != 7)", False),
])
def test_6_base_rules(tmp_path, body, granted):
    m = module(tmp_path, f"request method=Open {{ {body} }}\n")
    assert m.decide(req("Open", {"code": 7})).granted is granted


# 7. response and error are different events ----------------------------------------------
def test_7_response_and_error_are_distinct(tmp_path):
    m = module(tmp_path, "response src=door.Server { grant () }\n")
    ok = Event.response("server", "client", "api", "Open", {"ok": 1})
    err = Event.error("server", "client", "api", "Open", {"rc": -5})
    assert m.decide(ok).granted
    assert not m.decide(err).granted
    assert not m.decide(Event.response("server", "client", "api", "Open", {"rc": -5})).granted  # error params in a response


# 8. execute creates SIDs; the kernel starts first ------------------------------------------
def test_8_execute_creates_sid_and_denied_start_does_not_run(tmp_path):
    m = module(tmp_path, "")
    sids = {p.task: sid for sid, p in m.processes.items()}
    assert {"kl.core.Core", "Einit", "client", "server"} <= set(sids)
    assert len(set(sids.values())) == len(sids)
    m2 = SecurityModule(m.solution)
    assert not m2.decide(Event.execute("client")).granted          # kernel not started
    assert m2.decide(Event.execute("kl.core.Core")).granted
    d = m2.decide(Event.execute("client", src="kl.core.Core"))      # no binding: src=kl.core.Core grants
    assert d.granted and d.sid is not None


def test_8_denied_execute_does_not_create_a_process(tmp_path):
    m = module(tmp_path, "")
    before = dict(m.processes)
    d = m.decide(Event.execute("door.Server", src="client"))     # no binding for src=door.Client
    assert not d.granted and d.sid is None and m.processes == before


# 9. security events are decided for the asking process -------------------------------------
def test_9_security_event(tmp_path):
    m = module(tmp_path, "security src=door.Client, method=Arm { assert (message.level > 2) }\n")
    assert m.decide(Event.security("client", "Arm", {"level": 3})).granted
    assert not m.decide(Event.security("client", "Arm", {"level": 1})).granted
    assert not m.decide(Event.security("server", "Arm", {"level": 3})).granted   # server has no security interface


# 10. state changes only on grant ------------------------------------------------------------
TRANS = 'request method=Open { fsm.enter { sid : dst_sid, state : "open" } deny () }\n'


def test_10_denied_event_leaves_state_unchanged(tmp_path):
    m = module(tmp_path, TRANS)
    before = m.snapshot()
    assert not m.decide(req("Open", {"code": 1})).granted
    assert m.snapshot() == before


def test_10_non_transactional_option_keeps_changes(tmp_path):
    m = module(tmp_path, TRANS, transactional=False)
    before = m.snapshot()
    assert not m.decide(req("Open", {"code": 1})).granted
    assert m.snapshot() != before


def test_10_rules_see_earlier_changes_of_the_same_event(tmp_path):
    policy = ('request method=Open { fsm.enter { sid : dst_sid, state : "open" } '
              'fsm.allow { sid : dst_sid, states : ["open"] } }\n')
    assert module(tmp_path, policy).decide(req("Open", {"code": 1})).granted


# 11. fail closed -------------------------------------------------------------------------------
@pytest.mark.parametrize("event", [
    Event.request("nobody", "server", "api", "Open", {"code": 1}),
    Event.request("client", 999, "api", "Open", {"code": 1}),
    Event.request("client", "server", "nope", "Open", {"code": 1}),
    Event.request("client", "server", "api", "Nope", {}),
    Event.request("client", "server", 7, 0, {}),
    Event("bogus", "client", "server", "api", "Open", {}),
    Event.request(["x"], "server", "api", "Open", {}),
    Event.request("client", "server", "api", "Open", None),
])
def test_11_bad_events_are_denied_not_raised(tmp_path, event):
    d = module(tmp_path, "request { grant () }\nresponse { grant () }\n").decide(event)
    assert d.granted is False and d.reason


def test_11_internal_error_is_a_denial(tmp_path, monkeypatch):
    m = module(tmp_path, "request { grant () }\n")
    monkeypatch.setattr(m, "_compile", lambda key: 1 / 0)
    m._programs.clear()
    d = m.decide(req("Open", {"code": 1}))
    assert not d.granted and d.reason.startswith("internal-error")


def test_11_solution_with_errors_is_refused(tmp_path):
    (tmp_path / "security.psl").write_text("request { grant ( }\n")
    with pytest.raises(SolutionNotLoadable):
        SecurityModule(load(tmp_path))


# 12. endpoint and method by RIID/MID, participants by SID ---------------------------------
def test_12_riid_mid_and_sids(tmp_path):
    m = module(tmp_path, "request method=Close { grant () }\n")
    sid = {p.task: s for s, p in m.processes.items()}
    assert m.decide(Event.request(sid["client"], sid["server"], 0, 1, {})).granted


# 13. concurrent callers --------------------------------------------------------------------
def test_13_concurrent_decisions_do_not_interleave_state(tmp_path):
    policy = ('request method=Open { choice (fsm.query { sid : dst_sid }) { "closed" : fsm.enter { sid : dst_sid, state : "open" } '
              '"open" : fsm.enter { sid : dst_sid, state : "closed" } } }\n')
    m = module(tmp_path, policy)
    results = []

    def worker():
        for _ in range(50):
            results.append(m.decide(req("Open", {"code": 1})).granted)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results) and len(results) == 200   # each toggle saw a consistent state


# properties ----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.integers(-10, 2**33), method=st.sampled_from(["Open", "Close"]))
def test_property_decisions_never_raise_and_denials_keep_state(tmp_path_factory, code, method):
    m = _shared_module(tmp_path_factory)
    before = m.snapshot()
    d = m.decide(req(method, {"code": code} if method == "Open" else {}))
    assert isinstance(d.granted, bool)
    if not d.granted:
        assert m.snapshot() == before


_SHARED = {}


def _shared_module(factory):
    if "m" not in _SHARED:
        _SHARED["m"] = module(factory.mktemp("shared"), CHOICE + OPEN)
    return _SHARED["m"]


def test_property_binding_order_does_not_change_decisions(tmp_path):
    bindings = [OPEN, "request method=Close { deny () }\n", "request dst=door.Server { grant () }\n",
                'request method=Open { assert (message.code != 5) }\n']
    events = [req("Open", {"code": c}) for c in (1, 5, 99, 100, 1000)] + [req("Close")]
    a = module(tmp_path / "a", "".join(bindings))
    b = module(tmp_path / "b", "".join(reversed(bindings)))
    assert [a.decide(e).granted for e in events] == [b.decide(e).granted for e in events]


_POOL = [OPEN, "request method=Close { deny () }\n", "request dst=door.Server { grant () }\n",
         'request method=Open { assert (message.code != 5) }\n',
         'request method=Open { match src=door.Client { assert (message.code > 0) } }\n',
         'request method=Open { choice (message.code) { 7 : deny () _ : grant () } }\n',
         "request src=door.Client, method=Close { grant () }\n"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(_POOL))), keep=st.integers(1, len(_POOL)),
       codes=st.lists(st.integers(-3, 2**32 - 1) | st.sampled_from([0, 5, 7, 99, 100]), min_size=1, max_size=6))
def test_property_any_binding_order_gives_the_same_decisions(tmp_path_factory, order, keep, codes):
    chosen = [order[i] for i in range(keep)]
    events = [req("Open", {"code": c}) for c in codes] + [req("Close")]
    ordered = module(tmp_path_factory.mktemp("o"), "".join(_POOL[i] for i in sorted(chosen)))
    shuffled = module(tmp_path_factory.mktemp("s"), "".join(_POOL[i] for i in chosen))
    assert [ordered.decide(e).granted for e in events] == [shuffled.decide(e).granted for e in events]


def test_explain_lists_bindings_calls_and_lines(tmp_path):
    m = module(tmp_path, OPEN)
    text = m.decide(req("Open", {"code": 500})).explain()
    assert text.startswith("DENIED") and "base.assert" in text and "security.psl:" in text and "matched" in text


def test_choice_on_a_boolean_never_selects_a_numeric_case(tmp_path):
    policy = 'request method=Open { choice (message.code == 1) { 1 : grant () true : deny () _ : grant () } }\n'
    m = module(tmp_path, policy)
    assert not m.decide(req("Open", {"code": 1})).granted   # `true` arm (deny), not the `1` arm
    assert m.decide(req("Open", {"code": 2})).granted       # false: `_`


def test_boolean_operands_are_all_evaluated_unless_short_circuit_is_on(tmp_path, monkeypatch):
    from ksm.security_models import boolean

    policy = "request method=Put { assert (false && (message.items.[5].a == 1)) }\nrequest method=Put { grant () }\n"
    event = req("Put", {"items": [], "h": 1})
    d = module(tmp_path / "a", policy).decide(event)
    assert not d.granted and "runs incorrectly" in d.reason     # the right operand ran and failed
    monkeypatch.setattr(boolean, "SHORT_CIRCUIT", True)
    d = module(tmp_path / "b", policy).decide(event)
    assert not d.granted and "base.assert denied" in d.reason   # false && _ is false without evaluating _


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8) | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["execute", "request", "response", "error", "security", "bogus", ""]),
       src=st.sampled_from(["client", "server", "kl.core.Core", "nobody", 1, 2, 99, None, True]),
       dst=st.sampled_from(["client", "server", "door.Server", "Einit", 3, None, 2.5]),
       endpoint=st.sampled_from(["api", "nope", 0, 5, None, -1]),
       method=st.sampled_from(["Open", "Close", "Put", "main", "Arm", 0, 2, 9, None]),
       message=st.dictionaries(st.sampled_from(["code", "items", "h", "level", "x"]), _VALUES, max_size=4))
def test_property_any_event_gets_a_decision_never_an_exception(tmp_path_factory, kind, src, dst, endpoint, method, message):
    m = _shared_module(tmp_path_factory)
    d = m.decide(Event(kind, src, dst, endpoint, method, message))
    assert isinstance(d.granted, bool) and (d.granted or d.reason)
    assert not d.reason.startswith("internal-error"), d.reason


def test_a_decision_is_true_only_when_granted(tmp_path):
    m = module(tmp_path, OPEN)
    assert m.decide(req("Open", {"code": 1})) and m.decide(req("Open", {"code": 1})).granted
    assert not m.decide(req("Open", {"code": 500}))          # a tuple would always be true
    assert not m.decide(req("Open", {"code": "x"}))          # malformed


@pytest.mark.parametrize("message,why", [
    ({"code": True}, "expected UInt32, got bool"),
    ({"code": -1}, "-1 out of range for UInt32"),
    ({"code": 2**32}, "out of range for UInt32"),
])
def test_integer_only_messages_report_the_precise_problem(tmp_path, message, why):
    d = module(tmp_path, OPEN).decide(req("Open", message))
    assert not d.granted and why in d.reason
