"""The prover on calls to the built-in kernel: proofs where nothing untyped is read, replayed
counterexamples, and UNKNOWN (never PROVED) where a rule reads a parameter without a type."""
from __future__ import annotations

import pytest
from test_engine import door_solution

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.events import Event
from ksm.verify.crosscheck import crosscheck
from ksm.verify.prove import PROVED, REFUTED, UNKNOWN, ProveOptions, Prover
from policy_lang.props import parse_properties
from policy_lang.source import SourceText

NO_ALLOCATE = """property no_allocate:
    never request src=door.Client dst=kl.core.Core endpoint=vmm.VMM method=Allocate
"""
SYNC_ONLY = "request dst=kl.core.Core { match interface=kl.core.Sync { grant () } }\n"
BLANKET = "request dst=kl.core.Core { grant () }\n"
SMALL = "request dst=kl.core.Core, endpoint=vmm.VMM, method=Allocate { assert (message.size < 4096) }\n"
# A kernel call whose untyped parameter opens a gate the client needs to close the door.
GATE = """policy object gate : Flow {
    type State = "shut" | "open"
    config = { states : ["shut", "open"], initial : "shut",
               transitions : { "shut" : ["open"], "open" : ["shut"] } }
}
execute src=Einit, dst=door.Client { gate.init { sid : dst_sid } }
request src=door.Client, dst=kl.core.Core, endpoint=vmm.VMM, method=Allocate {
    assert (message.size == 7)
    gate.enter { sid : src_sid, state : "open" }
}
request src=door.Client, dst=door.Server, method=Close { gate.allow { sid : src_sid, states : ["open"] } }
"""
WITHOUT_TYPE = "without a known type"


def parse(sol, text: str):
    f = parse_properties(sol, SourceText("<test>.props", text))
    assert f.ok, [d.render() for d in f.diagnostics]
    return f.properties


def prove(sol, text: str, **opts):
    prover = Prover(sol, ProveOptions(timeout_ms=5000, **opts))
    return [prover.prove(p) for p in parse(sol, text)]


def fresh_replay(sol, result) -> list:
    """Replay a counterexample on a fresh decision function; the decisions of its steps."""
    m = SecurityModule(sol)
    assert all(d.granted for d in m.boot())
    return [m.decide(step.event) for step in result.counterexample.steps]


# ------------------------------------------------------------------ never request ... Allocate
def test_never_allocate_is_proved_when_no_binding_grants_it(tmp_path):
    sol = door_solution(tmp_path, SYNC_ONLY)
    (r,) = prove(sol, NO_ALLOCATE)
    assert r.status == PROVED, r.how
    assert r.counterexample is None


def test_never_allocate_is_refuted_by_a_blanket_grant_and_the_counterexample_replays(tmp_path):
    sol = door_solution(tmp_path, BLANKET)
    (r,) = prove(sol, NO_ALLOCATE)
    assert r.status == REFUTED, r.how
    last = r.counterexample.steps[-1]
    assert last.expect == "granted"
    e = last.event
    assert (e.kind, e.src, e.dst, e.endpoint, e.method) == ("request", "client", "kl.core.Core", "vmm.VMM", "Allocate")
    decisions = fresh_replay(sol, r)
    assert decisions[-1].granted, decisions[-1].explain()
    assert [("granted" if d.granted else "denied") for d in decisions] == [s.expect for s in r.counterexample.steps]


def test_sync_methods_are_always_granted_under_the_interface_grant(tmp_path):
    sol = door_solution(tmp_path, SYNC_ONLY)
    (r,) = prove(sol, "property sync_ok: always request src=door.Client dst=kl.core.Core endpoint=sync.Sync "
                      "method=Wait\n")
    assert r.status == PROVED, r.how


# ------------------------------------------------------------------ rules reading untyped parameters
@pytest.mark.parametrize("search", [True, False], ids=["with-search", "no-search"])
def test_condition_on_untyped_size_is_unknown_never_proved(tmp_path, search):
    sol = door_solution(tmp_path, SMALL)
    (r,) = prove(sol, NO_ALLOCATE, search=search)
    # The Z3 model has no variable for message.size; a proof would be unsound ({"size": 1} is granted).
    # The concrete search tries the documented names as integers, so it finds such a message.
    assert r.status != PROVED
    assert r.status == (REFUTED if search else UNKNOWN), r.how
    assert WITHOUT_TYPE in r.how and "message.size" in r.how
    if search:
        assert all(d.granted == (st.expect == "granted") for d, st in zip(fresh_replay(sol, r), r.counterexample.steps))
    m = SecurityModule(sol)
    m.boot()
    assert m.decide(Event.request("client", "kl.core.Core", "vmm.VMM", "Allocate", {"size": 1})).granted


def test_untyped_read_in_the_transition_relation_is_not_proved(tmp_path):
    """The untyped read is in an event that changes state, not in the property's event."""
    sol = door_solution(tmp_path, GATE)
    # Concretely refutable: Allocate with size 7 opens the gate, then Close is granted.
    m = SecurityModule(sol)
    m.boot()
    assert m.decide(Event.request("client", "kl.core.Core", "vmm.VMM", "Allocate", {"size": 7})).granted
    assert m.decide(Event.request("client", "server", "api", "Close", {})).granted
    results = prove(sol, "property no_close: never request src=door.Client dst=door.Server method=Close\n"
                         "property gate_shut: never state gate[door.Client] == \"open\"\n"
                         "property gate_shut_inv: invariant state gate[door.Client] == \"shut\"\n")
    for r in results:
        assert r.status != PROVED, (r.name, r.how)
        if r.status == REFUTED:               # allowed, if the search found the trace: it must replay
            assert all(d.granted == (s.expect == "granted")
                       for d, s in zip(fresh_replay(sol, r), r.counterexample.steps))
        else:
            assert WITHOUT_TYPE in r.how, (r.name, r.how)


def test_refutation_over_an_untyped_read_still_replays(tmp_path):
    """`always`: the empty message (a documented parameter left out) is denied, and the prover says so."""
    sol = door_solution(tmp_path, "request dst=kl.core.Core, endpoint=sync.Sync, method=Wait "
                                  "{ assert (message.ptr != 0) }\n")
    (r,) = prove(sol, "property waits: always request src=door.Client dst=kl.core.Core endpoint=sync.Sync "
                      "method=Wait\n")
    assert r.status == REFUTED, r.how
    decisions = fresh_replay(sol, r)
    assert not decisions[-1].granted and r.counterexample.steps[-1].expect == "denied"


def test_response_rule_on_untyped_out_parameter_is_not_proved(tmp_path):
    sol = door_solution(tmp_path, "response src=kl.core.Core, endpoint=vmm.VMM, method=Allocate "
                                  "{ assert (message.rc == 0) }\n")
    (r,) = prove(sol, "property no_answer: never response src=kl.core.Core dst=door.Client endpoint=vmm.VMM "
                      "method=Allocate\n")
    # Z3 cannot follow message.rc; the concrete search finds {"rc": 0}, which is granted.
    assert r.status == REFUTED and WITHOUT_TYPE in r.how and "message.rc" in r.how, r.how
    assert r.counterexample.steps[-1].event.message.get("rc") == 0


def test_method_with_unknown_parameters_is_unknown_too(tmp_path):
    sol = door_solution(tmp_path, "request dst=kl.core.Core, endpoint=sync.Sync, method=Alloc "
                                  "{ assert (message.anything == 1) }\n")
    (r,) = prove(sol, "property no_alloc: never request src=door.Client dst=kl.core.Core endpoint=sync.Sync "
                      "method=Alloc\n")
    assert r.status == UNKNOWN and WITHOUT_TYPE in r.how, r.how


def test_where_on_an_untyped_parameter_is_never_a_silent_proof(tmp_path):
    """A property's own `where message.size ...`: refused by the property checker, or not PROVED."""
    sol = door_solution(tmp_path, SMALL)
    text = NO_ALLOCATE.rstrip("\n") + " where message.size >= 4096\n"
    f = parse_properties(sol, SourceText("<test>.props", text))
    if not f.ok:
        assert any("message.size" in d.message for d in f.diagnostics), [d.render() for d in f.diagnostics]
        return
    (r,) = [Prover(sol, ProveOptions(timeout_ms=5000)).prove(p) for p in f.properties]
    assert r.status != PROVED, r.how


# ------------------------------------------------------------------ CLI and crosscheck
def test_cli_prints_the_reason_and_the_concrete_counterexample(tmp_path, capsys):
    sol = door_solution(tmp_path / "s", SMALL)
    p = tmp_path / "k.props"
    p.write_text(NO_ALLOCATE)
    code = main(["prove", sol.root, "--props", str(p)])
    out = capsys.readouterr().out
    assert "REFUTED" in out and "no_allocate" in out and WITHOUT_TYPE in out and "found by a concrete search" in out
    assert '"size": 0' in out, out
    assert code == 1            # docs/proving.md: 1 when a property is refuted or unknown


@pytest.mark.parametrize("policy", [SYNC_ONLY, BLANKET, SMALL, GATE], ids=["sync-only", "blanket", "small", "gate"])
def test_crosscheck_reports_no_disagreement(tmp_path, policy):
    sol = door_solution(tmp_path, policy)
    r = crosscheck(sol, events=40, walk=1)
    assert r.disagreements == [], r.disagreements[0].describe()
    assert r.events > 0 and r.events == r.agreed + r.skipped
