"""Hop labels settled from the program's text or shared between keys of the same statements.

The reference is the labeller with ``share=False``, which asks the prover about every
class key: the shared answers must agree with it on every hop and every condition, and
every witness must replay through the decision function.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ksm.engine import SecurityModule
from ksm.events import Event
from ksm.flows.generate import IDL, generate_flow_solution
from ksm.flows.graph import ChannelGraph
from ksm.flows.labels import ALWAYS, DENIED, GRANTED, Labeller
from ksm.verify.prove import Prover
from policy_lang import load
from policy_lang.solution import KERNEL_CLASS

HEAD = ["use nk.base._", "use EDL kl.core.Core", "use EDL Einit", "execute: kl.core.Execute", "execute { grant () }"]


def write(root: Path, classes: int, channels: list[tuple[int, int]], rules: list[str]) -> None:
    """``classes`` classes gen.C{i} serving ``api : gen.Store``, one instance each (task t{i})."""
    res, src = root / "resources", root / "einit" / "src"
    res.mkdir(parents=True)
    src.mkdir(parents=True)
    (res / "Store.idl").write_text(IDL)
    for i in range(classes):
        (res / f"C{i}.edl").write_text(f"task class gen.C{i}\nendpoints {{\n    api : gen.Store\n}}\n")
    uses = [f"use EDL gen.C{i}" for i in range(classes)]
    (src / "security.psl").write_text("\n".join(HEAD + uses + rules) + "\n")
    init = ["entities:"]
    for i in range(classes):
        init += [f"  - name: gen.C{i}", f"    task: t{i}"]
        mine = [s for c, s in channels if c == i]
        if mine:
            init.append("    connections:")
            for n, s in enumerate(mine):
                init += [f"      - target: t{s}", f"        id: c{i}_{n}"]
    (src / "init.yaml").write_text("\n".join(init) + "\n")


def labels(sol, share: bool):
    """Every hop's status, and the condition of every granted hop outside the kernel."""
    graph = ChannelGraph(Labeller(Prover(sol), share=share))
    lab = graph.labeller
    hops, conditions = {}, {}
    for h in graph.hops:
        key = (h.kind, h.client, h.server, h.endpoint, h.method)
        hops[key] = h.label.status
        if h.label.status == GRANTED and KERNEL_CLASS not in (graph.procs[h.client].cls, graph.procs[h.server].cls):
            src, dst = (h.client, h.server) if h.kind == "request" else (h.server, h.client)
            conditions[key] = lab.condition(h.kind, graph.procs[src], graph.procs[dst], h.endpoint, h.method).status
    return hops, conditions, graph


def replays(sol, hop) -> bool:
    m = SecurityModule(sol)
    m.boot()
    return all(m.decide(s.event).granted == (s.expect == "granted") for s in hop.label.witness.steps)


def test_no_binding_is_a_denial_and_a_plain_grant_a_grant_without_a_proof(tmp_path):
    write(tmp_path, 2, [(0, 1)], ["request src=gen.C0 dst=gen.C1 endpoint=api method=Ping { grant () }",
                                  "response src=gen.C1 dst=gen.C0 { grant () }"])
    sol = load(tmp_path)
    graph = ChannelGraph(Labeller(Prover(sol)))
    mine = {(h.kind, h.method): h for h in graph.hops if h.client == "t0" and h.server == "t1"}
    get, ping = mine[("request", "Get")], mine[("request", "Ping")]
    assert get.label.status == DENIED and "default deny" in get.label.how
    assert ping.label.status == GRANTED and "unconditional grant ()" in ping.label.how and replays(sol, ping)
    assert mine[("response", "Ping")].label.status == GRANTED and replays(sol, mine[("response", "Ping")])
    assert mine[("error", "Ping")].label.status == DENIED
    lab = graph.labeller
    assert lab.condition("request", graph.procs["t0"], graph.procs["t1"], "api", "Ping").status == ALWAYS
    non_kernel = [h for h in graph.hops if KERNEL_CLASS not in (graph.procs[h.client].cls, graph.procs[h.server].cls)]
    assert non_kernel and lab.questions == 0 and lab.syntactic >= 3


def test_keys_of_the_same_statements_share_one_proof_whatever_the_classes(tmp_path):
    n = 12
    channels = [(i, (i + 1) % n) for i in range(n)]
    bodies = ["assert (message.key < 1000)", "assert (message.key > 5 && message.key < 3)"]   # the second never grants
    rules = [f"request src=gen.C{c} dst=gen.C{s} endpoint=api method=Get {{ {bodies[c % 2]} }}" for c, s in channels]
    write(tmp_path, n, channels, rules)
    sol = load(tmp_path)
    hops, conditions, graph = labels(sol, share=True)
    lab = graph.labeller
    assert lab.grouped >= n - 2
    assert lab.questions <= 3           # never + always for the first body, never for the second
    ref_hops, ref_conditions, ref = labels(sol, share=False)
    assert ref.labeller.questions >= n
    assert hops == ref_hops and conditions == ref_conditions
    gets = [h for h in graph.hops if h.method == "Get" and h.kind == "request" and h.server != "kl.core.Core"]
    assert len(gets) == n
    for h in gets:
        if int(h.client[1:]) % 2 == 0:
            assert h.label.status == GRANTED and replays(sol, h)
            assert h.label.witness.steps[-1].event.src == h.client
        else:
            assert h.label.status == DENIED
    # a denial shared from another key is still what the decision function does here
    m = SecurityModule(sol)
    m.boot()
    for c, s in channels:
        if c % 2:
            assert not any(m.decide(Event.request(f"t{c}", f"t{s}", "api", "Get", {"key": k})).granted for k in (0, 4, 7))


def test_statements_that_read_a_sid_keep_their_own_proofs(tmp_path):
    n = 6
    channels = [(i, (i + 1) % n) for i in range(n)]
    rules = [f"request src=gen.C{c} dst=gen.C{s} endpoint=api method=Get {{ assert (message.key != dst_sid) }}"
             for c, s in channels]
    write(tmp_path, n, channels, rules)
    sol = load(tmp_path)
    hops, _, graph = labels(sol, share=True)
    assert graph.labeller.grouped == 0 and graph.labeller.questions >= n
    assert hops == labels(sol, share=False)[0]


PLAIN = ["grant ()", "deny ()", "match method=Get { grant () }", "match method=Ping { grant () } grant ()"]
READS_KEY = ["assert (message.key < 1000)", "assert (message.key > 5 && message.key < 3)",
             "assert (message.key != src_sid)"]                         # Get's in-parameter
RESPONSE = PLAIN + ["match method=Get { assert (message.value < 1000) }"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_shared_labels_equal_per_key_proofs_on_random_policies(tmp_path_factory, data):
    n = data.draw(st.integers(3, 5))
    channels = sorted(set(data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
                                             .filter(lambda cs: cs[0] != cs[1]), min_size=1, max_size=6))))
    rules = []
    for c, s in channels:
        for method in data.draw(st.lists(st.sampled_from(["Get", "Put", "Ping", None]), max_size=2, unique=True)):
            body = data.draw(st.sampled_from(PLAIN + READS_KEY if method == "Get" else PLAIN))
            sel = f" endpoint=api method={method}" if method else ""
            rules.append(f"request src=gen.C{c} dst=gen.C{s}{sel} {{ {body} }}")
        if data.draw(st.booleans()):
            rules.append(f"response src=gen.C{s} dst=gen.C{c} {{ {data.draw(st.sampled_from(RESPONSE))} }}")
    root = tmp_path_factory.mktemp("policy")
    write(root, n, channels, rules)
    sol = load(root)
    assert sol.ok, [d.render() for d in sol.diagnostics]
    shared_hops, shared_conditions, graph = labels(sol, share=True)
    ref_hops, ref_conditions, _ = labels(sol, share=False)
    assert shared_hops == ref_hops
    assert shared_conditions == ref_conditions
    for h in graph.hops:
        if h.label.status == GRANTED and h.server != "kl.core.Core" and h.client != "kl.core.Core":
            assert replays(sol, h)


@pytest.mark.parametrize("classes", [8, 24])
def test_generated_per_channel_policy_needs_the_same_proofs_at_any_size(tmp_path, classes):
    generate_flow_solution(tmp_path, classes, 3, classes_per_zone=classes // 4, per_channel=True)
    sol = load(tmp_path)
    graph = ChannelGraph(Labeller(Prover(sol)))
    assert graph.labeller.questions <= 2     # one shape needs the prover (App -> Vault Get); the rest is text
    granted = [h for h in graph.hops if h.label.status == GRANTED and h.server != "kl.core.Core"]
    assert granted and all(replays(sol, h) for h in granted[:40])
