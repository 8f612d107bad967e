"""ksm prove: every proof method has a proved and a refuted case; every counterexample
is replayed here again through a fresh decision function (independently of the
prover's own replay)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.verify import prove as prove_mod
from ksm.verify.prove import PROVED, REFUTED, UNKNOWN, Prover, ProveOptions, ReplayMismatch
from policy_lang.props import parse_properties
from policy_lang.source import SourceText

from conftest import MODEL_DIRS, read_defines
from test_engine import door_solution

ROOT = Path(__file__).parent.parent

# A door whose FSM has two islands: closed <-> open is reachable, jammed <-> broken is not.
ISLANDS = """policy object lock : Flow {
    type State = "closed" | "open" | "jammed" | "broken"
    config = { states : ["closed", "open", "jammed", "broken"], initial : "closed",
               transitions : { "closed" : ["open"], "open" : ["closed"],
                               "broken" : ["jammed"], "jammed" : ["broken"] } }
}
execute src=Einit, dst=door.Server { lock.init { sid : dst_sid } }
request dst=kl.core.Core { grant () }
request src=door.Client, dst=door.Server, method=Open {
    assert (message.code < 100)
    lock.enter { sid : dst_sid, state : "open" }
}
request src=door.Client, dst=door.Server, method=Close {
    choice (lock.query { sid : dst_sid }) {
        "open" : lock.enter { sid : dst_sid, state : "closed" }
        _ : deny ()
    }
}
request src=door.Client, dst=door.Server, method=Put { lock.enter { sid : dst_sid, state : "jammed" } }
"""


def props(sol, text: str):
    f = parse_properties(sol, SourceText("<test>.props", text))
    assert f.ok, [d.render() for d in f.diagnostics]
    return f.properties


def prove(sol, text: str, **opts):
    prover = Prover(sol, ProveOptions(**opts))
    return [prover.prove(p) for p in props(sol, text)]


def replay(sol, result) -> None:
    """Independent replay: every step gets the verdict the counterexample claims."""
    m = SecurityModule(sol)
    m.boot()
    for step in result.counterexample.steps:
        d = m.decide(step.event)
        assert ("granted" if d.granted else "denied") == step.expect, d.explain()


@pytest.fixture(scope="module")
def islands(tmp_path_factory):
    return door_solution(tmp_path_factory.mktemp("islands"), ISLANDS)


# ------------------------------------------------------------ the bundled examples
#: The deliberately flawed examples and the properties their flaws break.
FLAWED = {"smart_lock_flawed": {"netagent_never_reaches_keystore", "crypto_reads_only_signing_keys",
                                "reset_only_when_jammed", "keystore_errors_are_negative"}}


def _prove_example(model: Path):
    from policy_lang import LoadOptions, load
    from policy_lang.props import find_property_files, load_properties

    sol = load(model, LoadOptions(defines=read_defines(model)))
    # A generous per-query limit: the slowest CHC proof takes about 10 s on an idle
    # machine, and a loaded CI machine must not turn it into UNKNOWN.
    prover = Prover(sol, ProveOptions(timeout_ms=120_000))
    return sol, [prover.prove(p) for f in find_property_files(sol)
                 for p in load_properties(sol, f).properties if p.kind != "never_flow"]


@pytest.mark.parametrize("model", [m for m in MODEL_DIRS if list(m.rglob("*.props")) and m.name not in FLAWED],
                         ids=lambda m: m.name)
def test_example_properties_are_proved(model):
    sol, results = _prove_example(model)
    assert results and all(r.status == PROVED for r in results), [(r.name, r.status, r.how) for r in results]
    for r in results:
        if r.counterexample is not None:       # reachable-state witnesses
            replay(sol, r)


def test_every_example_has_properties():
    assert all(list(m.rglob("*.props")) for m in MODEL_DIRS), [m.name for m in MODEL_DIRS]


@pytest.mark.parametrize("name", sorted(FLAWED))
def test_flawed_example_is_refuted_exactly_where_it_is_flawed(name):
    sol, results = _prove_example(ROOT / "models" / name)
    refuted = {r.name for r in results if r.status == REFUTED}
    assert refuted == FLAWED[name], [(r.name, r.status, r.how) for r in results]
    assert all(r.status == PROVED for r in results if r.name not in refuted)
    for r in results:
        if r.counterexample is not None:
            replay(sol, r)


# ------------------------------------------------------------ single-step
def test_single_step_proved_and_refuted(islands):
    ok, bad = prove(islands, "property a: never request src=client dst=server method=Open where message.code >= 100\n"
                             "property b: never request src=client dst=server method=Open where message.code >= 50\n")
    assert ok.status == PROVED and ok.how.startswith("single-step")
    assert bad.status == REFUTED and "start-up" in bad.how
    (step,) = bad.counterexample.steps
    assert step.expect == "granted" and 50 <= step.event.message["code"] < 100
    replay(islands, bad)


def test_always_proved_and_refuted_with_a_denied_witness(islands):
    ok, bad, later = prove(islands, "property a: always request src=client dst=kl.core.Core\n"
                                    "property b: always request src=client dst=server method=Open\n"
                                    "property c: always request src=client dst=server method=Open "
                                    "where message.code < 100\n")
    assert ok.status == PROVED
    assert bad.status == REFUTED and bad.counterexample.steps[-1].expect == "denied"
    assert bad.counterexample.steps[-1].event.message["code"] >= 100
    replay(islands, bad)
    # a well-formed, in-range Open is denied once the door is open: two steps
    assert later.status == REFUTED and [s.expect for s in later.counterexample.steps] == ["granted", "denied"]
    replay(islands, later)


def test_state_dependent_event_property_needs_reachable_states(islands):
    # Close is granted only when open; from start-up one Open makes it grantable.
    (r,) = prove(islands, "property a: never request src=client dst=server method=Close\n")
    assert r.status == REFUTED and len(r.counterexample.steps) == 2
    assert [s.event.method for s in r.counterexample.steps] == ["Open", "Close"]
    replay(islands, r)


def test_where_reading_state_proved_in_every_state(islands):
    (r,) = prove(islands, 'property a: never request src=client dst=server method=Close where lock[server] != "open"\n')
    assert r.status == PROVED and r.how == "single-step in every state (1 event key)"


# ------------------------------------------------------------ reachability methods
NEVER_JAMMED = 'property j: never state lock[server] == "jammed"\n'


def test_inductive_invariant_from_chc(islands):
    (r,) = prove(islands, NEVER_JAMMED)
    assert r.status == PROVED and "CHC" in r.how


def test_k_induction_without_chc(islands):
    (r,) = prove(islands, NEVER_JAMMED, use_chc=False)
    assert r.status == PROVED and r.how == "k-induction, depth 2"


def test_bounded_fallback_says_it_is_bounded(islands):
    (r,) = prove(islands, NEVER_JAMMED, use_chc=False, depth=1)
    assert r.status == UNKNOWN and r.how.startswith("bounded: no counterexample up to depth 1")


def test_never_state_refuted_with_a_trace(islands):
    (r,) = prove(islands, 'property o: never state lock[server] == "open"\n')
    assert r.status == REFUTED and [s.event.method for s in r.counterexample.steps] == ["Open"]
    replay(islands, r)


def test_reachable_state_witness_and_unreachable(islands):
    yes, no = prove(islands, 'property y: reachable state lock[server] == "open"\n'
                             'property n: reachable state lock[server] == "broken"\n')
    assert yes.status == PROVED and "witness" in yes.how
    replay(islands, yes)
    assert no.status == REFUTED and no.how.startswith("unreachable")


def test_invariant_state(islands):
    ok, bad = prove(islands, 'property i: invariant state lock[server] == "open" || lock[server] == "closed"\n'
                             'property k: invariant state lock[server] == "closed"\n')
    assert ok.status == PROVED
    assert bad.status == REFUTED
    replay(islands, bad)


# ------------------------------------------------------------ replay is enforced
def test_a_disagreeing_counterexample_fails_loudly(islands, monkeypatch):
    """If the Z3 model says granted where the decision function denies, it is a bug."""
    from ksm.verify import program

    real = program._BINARY["<"]
    monkeypatch.setitem(program._BINARY, "<", lambda a, b: real(b, a))   # a wrong encoding
    with pytest.raises(ReplayMismatch):
        prove(islands, "property a: never request src=client dst=server method=Open where message.code >= 150\n")


SETTINGS = """use nk.staticmap._
policy object m : StaticMap {
    type Value = UInt32
    config = { keys : { "k" : 1, "other" : 0 }, pool_size : 1 }
}
execute src=Einit, dst=door.Server { m.init { sid : dst_sid } }
request dst=kl.core.Core { grant () }
request src=door.Client, dst=door.Server, method=Close { m.set { sid : dst_sid, key : "k", value : 2 } }
request src=door.Client, dst=door.Server, method=Open { assert (m.get { sid : dst_sid, key : "k" } == 1) }
"""


def test_staticmap_working_copy_is_invisible_until_commit(tmp_path):
    """Without a binding that commits, the base copy keeps its default: proved for
    every reachable state, although ``set`` changes the working copy."""
    sol = door_solution(tmp_path, SETTINGS)
    (r,) = prove(sol, "property a: always request src=client dst=server method=Open\n")
    assert r.status == PROVED, r.how


def test_staticmap_commit_makes_the_change_visible(tmp_path):
    sol = door_solution(tmp_path, SETTINGS + "request src=door.Client, dst=door.Server, method=Put "
                                              "{ m.commit { sid : dst_sid } }\n")
    (r,) = prove(sol, "property a: always request src=client dst=server method=Open\n")
    assert r.status == REFUTED
    assert [s.event.method for s in r.counterexample.steps if s.event.kind == "request"] == ["Close", "Put", "Open"]
    replay(sol, r)


def test_staticmap_state_property(tmp_path):
    """``set`` is only granted on a bound table: the working copy of an unbound SID is
    never written, and a set with an unknown key is denied."""
    sol = door_solution(tmp_path, SETTINGS)
    ok, bad = prove(sol, 'property a: never request src=client dst=server method=Close where false\n'
                         'property b: never request src=client dst=server method=Close\n')
    assert ok.status == PROVED
    assert bad.status == REFUTED
    replay(sol, bad)


# ------------------------------------------------------------ CLI and formats
def write_props(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.props"
    p.write_text(text)
    return p


def test_cli_exit_codes_and_text(islands, tmp_path, capsys):
    root = islands.root
    ok = write_props(tmp_path, "property a: never request src=client dst=server method=Open where message.code >= 100\n")
    assert main(["prove", root, "--props", str(ok)]) == 0
    assert "PROVED   a" in capsys.readouterr().out
    bad = write_props(tmp_path, "property b: never request src=client dst=server method=Open\n")
    assert main(["prove", root, "--props", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "REFUTED  b" in out and "1. request src=client dst=server" in out and "-> granted" in out


def test_cli_json_and_sarif(islands, tmp_path, capsys):
    p = write_props(tmp_path, "property a: never request src=client dst=server method=Open where message.code >= 100\n"
                              "property b: never request src=client dst=server method=Open\n")
    assert main(["prove", islands.root, "--props", str(p), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"PROVED": 1, "REFUTED": 1, "UNKNOWN": 0}
    b = doc["results"][1]
    assert b["location"]["line"] == 2 and b["counterexample"]["steps"][0]["expect"] == "granted"
    assert main(["prove", islands.root, "--props", str(p), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    a, b = sarif["runs"][0]["results"]
    assert a["kind"] == "pass" and b["level"] == "error" and b["ruleId"] == "KSM-PROOF-REFUTED"
    assert b["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert any(loc["physicalLocation"]["artifactLocation"]["uri"].endswith("security.psl")
               for loc in b["relatedLocations"])


def test_cli_property_file_errors_exit_1(islands, tmp_path, capsys):
    p = write_props(tmp_path, "property a: never request src=nobody dst=server\n")
    assert main(["prove", islands.root, "--props", str(p)]) == 1
    assert "PRP010" in capsys.readouterr().err


def test_cli_replay_mismatch_is_reported_as_a_bug(islands, tmp_path, capsys, monkeypatch):
    def broken(self, cex):
        raise ReplayMismatch("forced")
    monkeypatch.setattr(prove_mod._Proof, "replay", broken)
    p = write_props(tmp_path, "property b: never request src=client dst=server method=Open\n")
    assert main(["prove", islands.root, "--props", str(p)]) == 3
    assert "BUG" in capsys.readouterr().err


# ------------------------------------------------------------ Mic
MIC = """use nk.mic._
policy object mic : Mic { config = ["LOW", "HIGH"] }
execute src=Einit, dst=door.Server { mic.execute {image : (), target : dst_sid, level : "HIGH", levelR : ()} }
request dst=kl.core.Core { grant () }
request src=door.Client, dst=door.Server, method=Open {
    mic.create {source : dst_sid, target : message.code, container : (), driver : dst_sid, level : "LOW"}
}
request src=door.Client, dst=door.Server, method=Close { mic.call {source : dst_sid, target : dst_sid} }
"""


def test_mic_labels_and_levels_are_proved(tmp_path):
    sol = door_solution(tmp_path, MIC)
    ok, bad = prove(sol, "property a: always request src=client dst=server method=Close\n"
                         "property b: never request src=client dst=server method=Open where message.code > 10\n")
    assert ok.status == PROVED, ok.how
    assert bad.status == REFUTED
    replay(sol, bad)


def test_mic_relabel_of_a_message_handle_is_never_proved_granted(tmp_path):
    """The second create on the same handle is denied by the decision function; the
    encoding cannot see that a handle from a message was labelled before, so
    `always` must not be PROVED (it is UNKNOWN, the over-grant being explicit)."""
    sol = door_solution(tmp_path, MIC)
    (r,) = prove(sol, "property a: always request src=client dst=server method=Open where message.code > 100\n")
    assert r.status == UNKNOWN, (r.status, r.how)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, 60), max_size=25), st.integers(-2, 65))
def test_sid_membership_runs_mean_exactly_the_set(sids, x):
    """Evenly spaced SIDs become range tests; the formula still holds for exactly the set."""
    v = z3.Int("v")
    formula = prove_mod.sid_in(v, sids)
    assert z3.is_true(z3.simplify(z3.substitute(formula, (v, z3.IntVal(x))))) == (x in sids)


def test_the_encoder_selects_each_binding_once_and_in_text_order():
    """bindings_for is indexed by (kind, src, dst); a key without a receiver (security) must not
    find a binding twice (it would apply a stateful rule twice), and the order is the text's."""
    import policy_lang
    from ksm.engine import _selects
    from ksm.security_models.symbolic import Fresh
    from ksm.verify.program import Encoder
    from ksm.verify.universe import Universe

    sol = policy_lang.load(ROOT / "models/showcase", policy_lang.LoadOptions(defines=read_defines(ROOT / "models/showcase")))
    universe = Universe.build(sol)
    enc = Encoder(universe, Fresh("t."))
    for key in universe.keys():
        found = enc.bindings_for(key)
        expected = [b for b in sol.bindings if b.event == key.kind and _selects(b.selectors, key.engine_key)]
        assert found == expected, key.describe()
