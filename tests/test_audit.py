"""Audit: profiles, runtime level, kss, Flow omit, always-audited denials, sinks."""
import json

from ksm.audit import JsonLinesSink, MemorySink
from ksm.engine import SecurityModule

from test_engine import door_solution, req  # the door solution of the engine tests

PROFILES = """audit profile trace = {
    0 : { base : { kss : ["denied"] } },
    1 : { base : { kss : ["granted", "denied"] }, fsm : { kss : ["granted"], omit : ["open"] } }
}
audit profile quiet = { 0 : { base : { kss : [] } } }
"""


def build(tmp_path, policy: str, sink=None) -> SecurityModule:
    sol = door_solution(tmp_path, PROFILES + policy)
    m = SecurityModule(sol, audit_sink=sink if sink is not None else MemorySink())
    m.boot()
    if isinstance(m.audit_sink, MemorySink):
        m.audit_sink.records.clear()   # start-up records are not what these tests look at
    return m


POLICY = "audit default = trace 0\nrequest method=Open { assert (message.code < 10) }\n"


def test_kss_selects_results_at_the_current_level(tmp_path):
    m = build(tmp_path, POLICY)
    m.decide(req("Open", {"code": 1}))
    assert m.audit_sink.records == []                       # level 0 audits denials only
    m.decide(req("Open", {"code": 50}))
    (rec,) = m.audit_sink.records
    assert rec["call"] == "base.assert" and rec["verdict"] == "denied" and rec["level"] == 0
    assert rec["profile"] == "trace" and rec["line"] > 0 and rec["decision"] == "denied"


def test_set_level_switches_the_level(tmp_path):
    m = build(tmp_path, POLICY + "request method=Close { base.set_level (1) }\n")
    assert m.decide(req("Close")).granted and m.audit_level() == 1
    m.decide(req("Open", {"code": 1}))
    assert [r["verdict"] for r in m.audit_sink.records][-1] == "granted"   # level 1 audits grants too


def test_innermost_profile_wins_and_empty_audits_nothing(tmp_path):
    m = build(tmp_path, "audit default = trace 0\nrequest method=Open { audit quiet\n assert (message.code < 10) }\n")
    m.decide(req("Open", {"code": 50}))
    assert m.audit_sink.records == []
    m2 = build(tmp_path / "b", "request method=Open { assert (message.code < 10) }\n")   # no default: `empty`
    m2.decide(req("Open", {"code": 50}))
    assert m2.audit_sink.records == []


def test_flow_omit_states_are_not_audited(tmp_path):
    policy = ("audit default = trace 1\n"
              'request method=Open { fsm.enter { sid : dst_sid, state : "open" } }\n'
              'request method=Close { fsm.enter { sid : dst_sid, state : "closed" } }\n')
    m = build(tmp_path, policy)
    m.decide(req("Open", {"code": 1}))        # in "closed" while entering: audited
    m.decide(req("Close"))                    # in "open": omitted
    calls = [r["call"] for r in m.audit_sink.records if r.get("call", "").startswith("fsm")]
    assert calls == ["fsm.enter"]


def test_malformed_and_unruled_denials_are_always_audited(tmp_path):
    m = build(tmp_path, "request method=Open { grant () }\n")
    m.decide(req("Open", {"code": -1}))
    m.decide(req("Close"))
    always = [r for r in m.audit_sink.records if r.get("always")]
    assert [r["reason"].split(":")[0] for r in always] == ["malformed message", "no rule applies to this event (default deny)"]


def test_json_lines_sink(tmp_path):
    path = tmp_path / "audit.jsonl"
    m = build(tmp_path / "sol", POLICY, sink=JsonLinesSink(path))
    m.decide(req("Open", {"code": 50}))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert any(r.get("call") == "base.assert" for r in lines)


def test_audit_never_changes_decisions(tmp_path):
    with_audit = build(tmp_path / "a", POLICY)
    without = build(tmp_path / "b", "request method=Open { assert (message.code < 10) }\n")
    for code in (1, 9, 10, 500):
        assert with_audit.decide(req("Open", {"code": code})).granted == without.decide(req("Open", {"code": code})).granted


REGEX = ("use nk.regex._\n"
         "audit profile rx = { 0 : { re : { emit : [\"match\"] } } }\n"
         "audit default = rx 0\n")


def test_regex_emit_records_the_listed_expression_calls(tmp_path):
    policy = REGEX + ('request method=Open { assert (re.match {text : "abc", pattern : "a.c"}) }\n'
                      'request method=Close { choice (re.select {text : "abc"}) {\n'
                      '    "a.*" : grant ()\n    _ : deny ()\n} }\n')
    m = build(tmp_path, policy)
    assert m.decide(req("Open", {"code": 1})).granted
    (rec,) = m.audit_sink.records
    assert rec["call"] == "re.match" and rec["expression"] and rec["profile"] == "rx"
    assert rec["decision"] == "granted" and rec["level"] == 0
    m.audit_sink.records.clear()
    assert m.decide(req("Close")).granted
    assert m.audit_sink.records == []          # `select` is not in the emit list


def test_regex_emit_select_and_an_empty_list(tmp_path):
    policy = (REGEX.replace('["match"]', '["select"]')
              + 'request method=Close { choice (re.select {text : "abc"}) {\n'
              + '    "a.*" : grant ()\n    _ : deny ()\n} }\n'
              + 'request method=Open { assert (re.match {text : "abc", pattern : "a.c"}) }\n')
    m = build(tmp_path, policy)
    m.decide(req("Close"))
    assert [r["call"] for r in m.audit_sink.records] == ["re.select"]
    quiet = build(tmp_path / "q", REGEX.replace('["match"]', "[]")
                  + 'request method=Open { assert (re.match {text : "abc", pattern : "a.c"}) }\n')
    quiet.decide(req("Open", {"code": 1}))
    assert quiet.audit_sink.records == []


def test_the_memory_sink_stays_bounded_keeps_the_newest_and_is_cheap_to_write():
    sink = MemorySink(limit=100)
    for i in range(1_000):
        sink.write({"i": i})
        assert len(sink.records) <= 100
    assert sink.records[-1] == {"i": 999} and len(sink.records) >= 90
    assert [r["i"] for r in sink.records] == list(range(1_000 - len(sink.records), 1_000))   # the newest, in order
    tiny = MemorySink(limit=1)
    for i in range(5):
        tiny.write({"i": i})
    assert tiny.records == [{"i": 4}]
