"""Flow analysis: `never flow` answered with a cut certificate or a replayed witness path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.flows.check import FlowChecker
from ksm.flows.graph import ChannelGraph, weight
from ksm.flows.labels import DENIED, GRANTED, Labeller
from ksm.verify.prove import PROVED, REFUTED, Prover
from policy_lang import load
from policy_lang.props import parse_properties
from policy_lang.source import SourceText
from policy_lang.types import IntType, ParamDef, StringType

ROOT = Path(__file__).parent.parent
LOCK, FLAWED = ROOT / "models" / "smart_lock", ROOT / "models" / "smart_lock_flawed"


@pytest.fixture(scope="module")
def lock():
    return load(LOCK)


@pytest.fixture(scope="module")
def flawed():
    return load(FLAWED)


def check(sol, text: str, dynamic: str = "declared"):
    f = parse_properties(sol, SourceText("<test>.props", text))
    assert f.ok, [d.render() for d in f.diagnostics]
    graph = ChannelGraph(Labeller(Prover(sol)), dynamic, f.channels)
    return [FlowChecker(graph).check(p) for p in f.properties], graph


def replay(sol, hop) -> None:
    """Independently of the checker: the hop's witness is granted from start-up."""
    m = SecurityModule(sol)
    m.boot()
    for step in hop.label.witness.steps:
        assert m.decide(step.event).granted == (step.expect == "granted")
    last = hop.label.witness.steps[-1].event
    assert (last.src, last.dst) == ((hop.client, hop.server) if hop.kind == "request" else (hop.server, hop.client))


NEVER_KEYS = "never flow lock.NetAgent -> lock.KeyStore"
VIA = " unless via lock.Parser, lock.Logger"
AGENT_CHANNEL = "channel lock.NetAgent -> lock.KeyStore\n"


def test_proved_with_a_cut_of_denied_hops(lock):
    (r,), graph = check(lock, f"property p: {NEVER_KEYS}{VIA}\n" + AGENT_CHANNEL)
    assert r.status == PROVED and r.cut
    assert {(h.client, h.server, h.method) for h in r.cut} == {
        ("lock.NetAgent", "lock.KeyStore", "GetKey"), ("lock.NetAgent", "lock.KeyStore", "VerifyPin")}
    assert all(h.label.status == DENIED and h.label.how for h in r.cut)
    # removing the cut disconnects: no granted hop leaves the region of the agent except through via
    assert not any(h.label.status == GRANTED and h.source == "lock.NetAgent" and h.target == "lock.KeyStore"
                   for h in graph.hops)


def test_no_channel_is_a_certificate_too(lock):
    (r,), _ = check(lock, f"property p: {NEVER_KEYS}{VIA}\n")
    assert r.status == PROVED and r.cut == [] and "no channel" in r.how


def test_refuted_with_the_flawed_variant_path(flawed):
    (r,), _ = check(flawed, f"property p: {NEVER_KEYS}{VIA}\n" + AGENT_CHANNEL)
    assert r.status == REFUTED
    (hop,) = r.path
    assert (hop.client, hop.server, hop.kind) == ("lock.NetAgent", "lock.KeyStore", "request")
    replay(flawed, hop)


def test_multi_hop_path_is_shortest_and_every_hop_replays(lock):
    (r,), _ = check(lock, f"property p: {NEVER_KEYS}\n")
    assert r.status == REFUTED and len(r.path) == 3
    assert r.path[0].source == "lock.NetAgent" and r.path[-1].target == "lock.KeyStore"
    assert all(a.target == b.source for a, b in zip(r.path, r.path[1:]))
    for hop in r.path:
        replay(lock, hop)


def test_via_processes_are_taken_out(lock):
    (r,), _ = check(lock, f"property p: {NEVER_KEYS} unless via lock.Parser, lock.Logger, lock.Controller, "
                          "lock.Crypto, lock.Updater, lock.Storage, lock.Ui, lock.Sensor\n")
    assert r.status == PROVED


@pytest.mark.parametrize("dynamic,status", [("none", PROVED), ("declared", PROVED), ("policy", REFUTED)])
def test_dynamic_channels_option(flawed, dynamic, status):
    """Without a declaration only `policy` adds the channel the flawed policy grants."""
    (r,), graph = check(flawed, f"property p: {NEVER_KEYS}{VIA}\n", dynamic)
    assert r.status == status
    if status == REFUTED:
        assert r.path[0].channel == "policy"
        replay(flawed, r.path[0])


def test_class_level_questions_cover_many_pairs(lock):
    _, graph = check(lock, f"property p: {NEVER_KEYS}\n")
    assert graph.labeller.questions < len(graph.hops)


def _p(*types):
    return tuple(ParamDef(f"p{i}", "in", t, None) for i, t in enumerate(types))


@pytest.mark.parametrize("params,expected", [
    ((), 1), (_p(IntType("UInt8", 8, False)), 2), (_p(IntType("UInt32", 32, False)), 4),
    (_p(StringType(100)), 7), (_p(StringType(10_000)), 10),
])
def test_weights_follow_the_parameter_capacity(params, expected):
    assert weight(params) == expected


def test_cli_flows_exit_codes_and_json(capsys):
    assert main(["flows", str(LOCK)]) == 0
    assert "PROVED" in capsys.readouterr().out
    assert main(["flows", str(FLAWED), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    res = {r["name"]: r for r in doc["results"]}
    leak = res["keys_leave_the_keystore_only_via_controller_or_crypto"]
    assert leak["status"] == "REFUTED" and leak["path"][0]["witness"]["steps"][-1]["expect"] == "granted"
    assert (leak["path"][0]["from"], leak["path"][0]["to"]) == ("lock.KeyStore", "lock.NetAgent")
    assert res["sensor_data_reaches_keys_only_via_the_controller"]["status"] == "PROVED"


def test_prove_runs_flow_properties_too(capsys):
    assert main(["prove", str(LOCK), "--only", "network_data_reaches_keys_only_via_parser_or_logger"]) == 0
    assert "cut (every flow" in capsys.readouterr().out
