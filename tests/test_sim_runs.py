"""Whole simulator runs: behaviour modules, scenario files, traces, replay of
counterexamples, the taint monitor and `ksm simulate`."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ksm.cli import main
from ksm.sim import SimInputError
from ksm.sim.scenario import load_scenario
from ksm.sim.session import run_behaviours, run_replays, run_scenario
from ksm.sim.taint import TaintMonitor, tracked_values
from ksm.sim.trace import channel_summary, chrome_trace, timeline, write_jsonl
from policy_lang import load
from policy_lang.props import find_property_files, load_properties

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def echo():
    return load(MODELS / "echo")


@pytest.fixture(scope="module")
def lock():
    return load(MODELS / "smart_lock")


@pytest.fixture(scope="module")
def flawed():
    return load(MODELS / "smart_lock_flawed")


def flow_props(sol):
    return [p for f in find_property_files(sol) for p in load_properties(sol, f).properties]


# ---------------------------------------------------------------------------- behaviours
def test_echo_behaviours_run_and_the_forbidden_ping_is_refused(echo):
    rep = run_behaviours(echo, None)
    assert rep.ok and rep.outcome.status == "finished"
    notes = [r["detail"] for r in rep.kernel.records if r["op"] == "note"]
    assert notes == ["Ping(1) -> {'result': 2}", "Ping(100) -> {'result': 101}",
                     "Ping(1000) -> {'result': 1001}", "Ping(5000) refused: rcSecurityDisallow"]
    (row,) = channel_summary(rep.kernel.records)
    assert row["request"] == [3, 1] and row["response"] == [3, 0]


@pytest.mark.parametrize("seed", range(6))
def test_smart_lock_behaviours_finish_under_every_seed_with_the_agent_refused(lock, seed):
    rep = run_behaviours(lock, None, seed=seed, props=flow_props(lock))
    assert rep.ok, rep.render(False)
    denied = {(r["src"], r["dst"], r["method"]) for r in rep.kernel.records if r.get("decision") == "denied"}
    assert ("lock.NetAgent", "lock.Parser", "Submit") in denied           # the injection attempt
    assert ("lock.NetAgent", "lock.KeyStore", "VerifyPin") in denied      # the run-time channel's request
    assert not rep.violations


def test_the_same_seed_gives_the_same_trace(lock):
    a, b = run_behaviours(lock, None, seed=5), run_behaviours(lock, None, seed=5)
    assert a.kernel.records == b.kernel.records


def test_taint_monitor_sees_network_data_reach_the_keys_under_the_flawed_policy(flawed):
    rep = run_behaviours(flawed, MODELS / "smart_lock" / "sim" / "behaviours.py", props=flow_props(flawed))
    assert not rep.ok
    (v,) = rep.violations
    assert (v.prop, v.origin, v.sink, v.path) == ("network_data_reaches_keys_only_via_parser_or_logger",
                                                  "lock.NetAgent", "lock.KeyStore", ("lock.NetAgent", "lock.KeyStore"))
    assert v.where.endswith("smart_lock.props:48")


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", "syntax error"),
    ("raise RuntimeError('boom')\n", "importing failed: RuntimeError: boom"),
    ("x = 1\n", "no Behaviour subclass"),
    ("from ksm.sim import Behaviour\nclass A(Behaviour):\n    pass\n", "does not say which process class"),
    ("from ksm.sim import Behaviour\nclass A(Behaviour):\n    process_class = 'echo.Nope'\n", "no process class 'echo.Nope'"),
])
def test_a_broken_behaviour_module_is_a_diagnostic_with_its_line(echo, tmp_path, source, message):
    path = tmp_path / "b.py"
    path.write_text(source)
    with pytest.raises(SimInputError) as info:
        run_behaviours(echo, path)
    d = info.value.diagnostic
    assert d.code == "SIM001" and message in d.message and d.span.file == str(path) and d.span.line >= 1 and d.hint


# ---------------------------------------------------------------------------- scenarios
def test_the_smart_lock_scenario_meets_every_expectation(lock):
    rep = run_scenario(lock, MODELS / "smart_lock" / "sim" / "untrusted.yaml")
    assert rep.ok, rep.render(False)
    rcs = [r.get("rc") for r in rep.kernel.records if r["op"] == "call"]
    assert rcs.count("rcSecurityDisallow") == 2 and "rcInvalidArgument" in rcs and "rcNotConnected" in rcs


def test_a_wrong_expectation_fails_the_run_at_its_line(echo, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("processes:\n  echo.Server:\n    serve:\n      pingComp.pingImpl.Ping: {result: 8}\n"
                    "  echo.Client:\n    run:\n      - call: pingComp.pingImpl.Ping\n        channel: server_connection\n"
                    "        with: {value: 5000}\n        expect: ok\n")
    rep = run_scenario(echo, path)
    assert not rep.ok
    (f,) = rep.failures
    assert f.span.line == 7 and "expected ok, got rcSecurityDisallow" in f.message


def test_a_scenario_error_reply_and_default_reply(echo, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("processes:\n  echo.Server:\n    serve:\n      pingComp.pingImpl.Ping: default\n"
                    "  echo.Client:\n    run:\n      - call: pingComp.pingImpl.Ping\n        channel: server_connection\n"
                    "        with: {value: 5}\n        expect: {result: 0}\n")
    assert run_scenario(echo, path).ok


@pytest.mark.parametrize("text, line, message", [
    ("processes:\n  nobody:\n    run: []\n", 2, "no process 'nobody'"),
    ("processes:\n  echo.Server:\n    serve:\n      pingComp.pingImpl.Pong: {}\n", 4, "no method 'pingComp.pingImpl.Pong'"),
    ("processes:\n  echo.Client:\n    run:\n      - call: pingComp.pingImpl.Ping\n        expect: ok\n", 4, "needs a channel"),
    ("processes:\n  echo.Client:\n    run:\n      - call: x.Ping\n        channel: c\n        expect: maybe\n", 6, "unknown expectation"),
    ("processes:\n  echo.Client:\n    wait: 1\n", 3, "unknown key 'wait'"),
    ("seed: -1\nprocesses: {}\n", 1, "seed must be a non-negative integer"),
    ("processes: [\n", 2, "not valid YAML"),
    ("", 1, "empty"),
])
def test_scenario_mistakes_are_diagnostics_with_line(echo, tmp_path, text, line, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SimInputError) as info:
        load_scenario(path, echo)
    d = info.value.diagnostic
    assert d.code == "SIM002" and message in d.message and d.span.line == line


# ---------------------------------------------------------------------------- traces
def test_trace_exports(echo):
    rep = run_behaviours(echo, None)
    records = rep.kernel.records
    text = timeline(records)
    assert "DENIED rcSecurityDisallow" in text and "security.psl:39" in text
    out = io.StringIO()
    assert write_jsonl(records, out) == len(records)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == records
    doc = json.loads(json.dumps(chrome_trace(records)))
    events = doc["traceEvents"]
    calls = [e for e in events if e["ph"] == "X" and e["name"].startswith("call ")]
    serves = [e for e in events if e["ph"] == "X" and e["name"].startswith("serve ")]
    assert len(calls) == len(serves) == 3 and all(e["dur"] > 0 for e in calls)
    starts = {e["id"] for e in events if e["ph"] == "s"}
    assert starts and starts == {e["id"] for e in events if e["ph"] == "f"}
    assert any(e["ph"] == "i" and "DENIED" in e["name"] for e in events)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert {"echo.Client", "echo.Server"} <= names


# ---------------------------------------------------------------------------- replay
@pytest.fixture(scope="module")
def prove_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("cex") / "prove.json"
    assert main(["prove", str(MODELS / "smart_lock_flawed"), "--format", "json", "--output", str(path)]) == 1
    return path


def test_every_counterexample_of_prove_replays_with_the_same_decisions(flawed, prove_json):
    reports = run_replays(flawed, prove_json)
    assert len(reports) >= 5 and all(r.ok for r in reports)
    keys = next(r for r in reports if r.title.startswith("replay of crypto_reads_only_signing_keys "))
    (call,) = [r for r in keys.kernel.records if r["op"] == "call"]
    assert call["message"] == {"keyId": 512} and call["decision"] == "granted"


def test_a_replay_that_disagrees_is_reported(flawed, prove_json, tmp_path):
    doc = json.loads(prove_json.read_text())
    cex = next(r["counterexample"] for r in doc["results"] if r["name"] == "crypto_reads_only_signing_keys")
    cex["steps"][-1]["expect"] = "denied"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(cex))
    (rep,) = run_replays(flawed, path)
    assert not rep.ok and "expects denied" in rep.mismatches[0]


def test_flows_witnesses_replay_hop_by_hop(flawed, tmp_path):
    path = tmp_path / "flows.json"
    assert main(["flows", str(MODELS / "smart_lock_flawed"), "--format", "json", "--output", str(path)]) == 1
    reports = run_replays(flawed, path, only="network_data_reaches_keys_only_via_parser_or_logger",
                          props=flow_props(flawed))
    (rep,) = reports
    assert not rep.mismatches and "hop 1" in rep.title
    assert [v.sink for v in rep.violations] == ["lock.KeyStore"]         # the monitor sees the flow too


def test_bytes_in_a_counterexample_come_back_as_bytes(lock, tmp_path):
    cex = {"setup": [], "steps": [{"kind": "request", "src": "lock.Logger", "dst": "lock.Storage", "endpoint": "files",
                                   "method": "Append", "message": {"name": "a.log", "data": "00ff"},
                                   "expect": "granted"}]}
    path = tmp_path / "cex.json"
    path.write_text(json.dumps(cex))
    (rep,) = run_replays(lock, path)
    assert rep.ok
    (call,) = [r for r in rep.kernel.records if r["op"] == "call"]
    assert call["message"]["data"] == "00ff" and call["decision"] == "granted"


@pytest.mark.parametrize("text, message", [("{", "not JSON"), ("{\"results\": []}", "no counterexample"),
                                           ("{\"steps\": [{\"kind\": \"poke\"}]}", "not an event")])
def test_a_bad_counterexample_file_is_a_diagnostic(lock, tmp_path, text, message):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(SimInputError) as info:
        run_replays(lock, path)
    assert info.value.diagnostic.code == "SIM003" and message in info.value.diagnostic.message


# ---------------------------------------------------------------------------- taint monitor
class _Prop:
    def __init__(self, src, dst, via=()):
        ref = lambda names: tuple(type("R", (), {"tasks": (n,)})() for n in names)   # noqa: E731
        self.name, self.kind, self.span = "p", "never_flow", None
        self.flow_src, self.flow_dst, self.flow_via = ref(src), ref(dst), ref(via)


def test_small_numbers_are_not_followed_but_strings_arrays_and_large_numbers_are():
    got = list(tracked_values({"a": 1, "b": "ok", "c": "key", "d": [1, 2, 3, 4], "e": 70_000, "f": [{"g": b"abc"}]}))
    assert got == ["key", ("ints", (1, 2, 3, 4)), 70_000, b"abc"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("ABCD"), min_size=2, max_size=6, unique=True))
def test_a_value_passed_along_a_chain_violates_exactly_when_no_via_process_is_between(chain):
    monitor = TaintMonitor([_Prop(["A"], ["D"], via=["C"])])
    for sender, receiver in zip(chain, chain[1:]):
        monitor("request", sender, receiver, {"secret": "s3cr3t"})
    expected = chain[0] == "A" and "D" in chain and "C" not in chain[1:chain.index("D")]
    assert bool(monitor.violations) == expected
    if expected:
        assert monitor.violations[0].path == tuple(chain[:chain.index("D") + 1])


# ---------------------------------------------------------------------------- the command
def test_cli_simulate_echo_and_its_outputs(tmp_path, capsys):
    trace, chrome = tmp_path / "t.jsonl", tmp_path / "c.json"
    assert main(["simulate", str(MODELS / "echo"), "--trace", str(trace), "--chrome", str(chrome)]) == 0
    out = capsys.readouterr().out
    assert "DENIED rcSecurityDisallow" in out and "3 granted / 1 denied" in out and out.rstrip().endswith("OK")
    assert all(json.loads(line)["op"] for line in trace.read_text().splitlines())
    assert json.loads(chrome.read_text())["traceEvents"]


def test_cli_simulate_json_and_failure_exit(tmp_path, capsys):
    assert main(["simulate", str(MODELS / "smart_lock_flawed"), "--behaviours",
                 str(MODELS / "smart_lock" / "sim" / "behaviours.py"), "--taint", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["runs"][0]["violations"][0]["sink"] == "lock.KeyStore"


def test_cli_simulate_bad_input_is_a_diagnostic_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("processes:\n  nobody: {}\n")
    assert main(["simulate", str(MODELS / "echo"), "--scenario", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error[SIM002]" in err and f"{bad}:2:3" in err and "Traceback" not in err
    assert main(["simulate", str(MODELS / "echo"), "--property", "x"]) == 2


def test_cli_simulate_replays_a_counterexample(prove_json, capsys):
    assert main(["simulate", str(MODELS / "smart_lock_flawed"), "--replay", str(prove_json),
                 "--property", "crypto_reads_only_signing_keys"]) == 0
    out = capsys.readouterr().out
    assert "replay of crypto_reads_only_signing_keys" in out and '{"keyId": 512}  GRANTED' in out


def test_bench_simulate_reports_both_workloads_in_every_configuration_against_the_bare_calls():
    """Tiny sizes; every run is checked against its workload inside the benchmark."""
    from ksm.sim.bench import bench_simulate

    rows = {name: value for name, value, _ in bench_simulate(round_trips=300, repeat=1, models=MODELS).rows}
    bare = rows["baseline: bare Python call of echo Server.Ping"]
    assert bare > 0 and rows["baseline: bare Python calls of the smart_lock handlers, per call"] > 0
    assert rows["workload echo: 1 client thread, 1 server thread; every answer checked"] == 300
    for workload in ("echo", "smart_lock"):
        for config in ("decisions on, trace off", "decisions on, trace on",
                       "decisions off (kernel and transport), trace off"):
            head = f"{workload}, {config}: "
            assert 0 < rows[head + "per call p50"] <= rows[head + "per call p99"]
            assert rows[head + "p50 / bare call"] > 1
            assert any(k.startswith(head + "round trips/s, whole runs, wall time") for k in rows)
        assert rows[f"{workload}, decisions on, trace on: + building the records, per call"] > 0
