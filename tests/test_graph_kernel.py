"""The channel graph's kernel services: which kernel endpoints each process may call.

With the kernel described (``kl.core.Core`` with its endpoints), every process node
of ``ksm graph`` carries the kernel services of its class (JSON ``kernel_services``, a
DOT tooltip, the HTML page's detail panel), the process -> kernel arrow is labelled
``kernel: E endpoints, D dangerous``, and kernel hops are labelled from the kernel
access table without a proof each, with the same answers the prover gives.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.flows import ChannelGraph, GraphExport, Labeller
from ksm.flows.labels import ALWAYS, DENIED, GRANTED
from ksm.kernel_access import kernel_access
from ksm.verify.prove import Prover
from policy_lang import load
from policy_lang.props import parse_properties
from policy_lang.source import SourceText

from conftest import write_solution

ROOT = Path(__file__).parent.parent
SMART_LOCK = ROOT / "models" / "smart_lock"
KERNEL = "kl.core.Core"
RUNTIME = {"handle.Handle", "sync.Sync", "thread.Thread", "vmm.VMM"}    # what the lock's untrusted classes get

# k.A may use the kernel's synchronisation only; k.B allocates memory under a condition on
# an (untyped) parameter; k.C may call nothing.  k.A also talks to k.B over a channel.
SMALL = {
    "resources/Api.idl": "package k.Api\ninterface {\n    Put(in UInt32 v);\n}\n",
    "resources/A.edl": "task class k.A\n",
    "resources/B.edl": "task class k.B\nendpoints {\n    api : k.Api\n}\n",
    "resources/C.edl": "task class k.C\n",
    "einit/src/security.psl": """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL k.A
use EDL k.B
use EDL k.C
execute: kl.core.Execute
execute { grant () }
request src=Einit, dst=kl.core.Core { grant () }
request src=k.A, dst=kl.core.Core {
    match interface=kl.core.Sync { grant () }
}
request src=k.B, dst=kl.core.Core {
    match interface=kl.core.VMM, method=Allocate { assert (message.size < 4096) }
}
request src=k.A, dst=k.B { grant () }
response { grant () }
error { grant () }
""",
    "einit/src/init.yaml": """entities:
  - name: k.A
    connections:
      - target: k.B
        id: ab
  - name: k.B
  - name: k.C
""",
}


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    write_solution(root, SMALL)
    return root


@pytest.fixture(scope="module")
def small(small_dir):
    return load(small_dir)


@pytest.fixture(scope="module")
def small_graph(small):
    return ChannelGraph(Labeller(Prover(small)))


@pytest.fixture(scope="module")
def lock_graph():
    sol = load(SMART_LOCK)
    f = parse_properties(sol, SourceText("<t>.props", "channel lock.NetAgent -> lock.KeyStore\n"))
    return ChannelGraph(Labeller(Prover(sol)), declared=f.channels)


@pytest.fixture(scope="module")
def lock_export(lock_graph):
    return GraphExport(lock_graph, conditions=False)


def _nodes(export: GraphExport) -> dict:
    return {n["id"]: n for n in json.loads(export.json())["nodes"]}


def _granted_endpoints(graph: ChannelGraph, cls: str) -> list[str]:
    """The endpoints ``ksm kernel`` says the class may call something of, in the description's order."""
    row = kernel_access(graph.universe.solution).of(cls)
    return list(dict.fromkeys(c.endpoint for c in row.calls if c.granted))


# ------------------------------------------------------------------ JSON
def test_json_lists_the_kernel_services_of_an_untrusted_lock_process(lock_graph, lock_export):
    node = _nodes(lock_export)["lock.NetAgent"]
    assert node["kernel"] is False
    ks = node["kernel_services"]
    assert ks["class"] == "lock.NetAgent" and ks["trusted"] is False and ks["source"] == "built-in"
    endpoints = [e["endpoint"] for e in ks["endpoints"]]
    assert endpoints == _granted_endpoints(lock_graph, "lock.NetAgent")
    assert RUNTIME <= set(endpoints) and not {"task.Task", "io.IO", "time.Time"} & set(endpoints)
    assert all(e["verdict"] == ALWAYS and e["methods"] == e["of"] and not e["conditional"] for e in ks["endpoints"])
    assert ks["methods"] == sum(e["methods"] for e in ks["endpoints"])
    assert ks["dangerous"] == sum(len(e["dangerous"]) for e in ks["endpoints"]) > 0
    thread = next(e for e in ks["endpoints"] if e["endpoint"] == "thread.Thread")
    create = next(d for d in thread["dangerous"] if d["method"] == "Create")
    assert create["verdict"] == ALWAYS and "cpu" in create["danger"] and create["reason"]
    assert not next(e for e in ks["endpoints"] if e["endpoint"] == "sync.Sync")["dangerous"]


def test_json_kernel_services_are_the_kernel_access_table(lock_graph, lock_export):
    table = kernel_access(lock_graph.universe.solution)
    nodes = _nodes(lock_export)
    assert nodes[KERNEL]["kernel"] is True and nodes[KERNEL]["kernel_services"] is None
    for task, node in nodes.items():
        if task == KERNEL:
            continue
        row = table.of(node["cls"])
        ks = node["kernel_services"]
        assert ks["methods"] == len([c for c in row.calls if c.granted]), task
        assert ks["dangerous"] == len(row.dangerous()), task
        assert ks["trusted"] == row.trusted
    assert len(nodes["Einit"]["kernel_services"]["endpoints"]) > len(RUNTIME)     # the trusted: the whole kernel
    g = nx.node_link_graph(json.loads(lock_export.json()), edges="links")       # still node-link data
    first = g.nodes["lock.NetAgent"]["kernel_services"]["endpoints"][0]["endpoint"]
    assert first == _granted_endpoints(lock_graph, "lock.NetAgent")[0]


def test_a_class_granted_only_sync_lists_sync_only(small_graph):
    export = GraphExport(small_graph, conditions=False)
    nodes = _nodes(export)
    ks = nodes["k.A"]["kernel_services"]
    (sync,) = ks["endpoints"]
    sync_methods = small_graph.universe.solution.classes[KERNEL].endpoint("sync.Sync").interface.methods
    assert sync["endpoint"] == "sync.Sync" and sync["interface"] == "kl.core.Sync"
    assert sync["verdict"] == ALWAYS and sync["methods"] == sync["of"] == len(sync_methods)
    assert sync["dangerous"] == [] and ks["dangerous"] == 0 and ks["conditional"] == 0
    assert nodes["k.C"]["kernel_services"]["endpoints"] == []


def test_a_conditional_grant_is_listed_as_conditional(small_graph):
    ks = small_graph.kernel_services("k.B")
    (vmm,) = ks.endpoints
    assert vmm.endpoint == "vmm.VMM" and vmm.verdict == "conditional" and vmm.total > 1
    assert [c.method for c in vmm.calls] == ["Allocate"] and [c.method for c in vmm.dangerous] == ["Allocate"]
    assert ks.conditional == 1 and ks.label == "kernel: 1 endpoint (1 conditional), 1 dangerous"
    data = vmm.to_json()
    assert data["conditional"][0]["method"] == "Allocate" and data["conditional"][0]["why"]


def test_kernel_services_are_deterministic(small, small_graph):
    again = ChannelGraph(Labeller(Prover(small)))
    first, second = GraphExport(small_graph, conditions=False), GraphExport(again, conditions=False)
    assert first.json() == second.json() and first.dot() == second.dot() and first.mermaid() == second.mermaid()
    assert first.html("small") == second.html("small")


# ------------------------------------------------------------------ hop labels
def test_kernel_hops_follow_the_kernel_access_table_without_proofs(small_graph):
    cg = small_graph
    lab = cg.labeller
    assert lab.shortcuts > 0
    granted = {(h.client, h.endpoint, h.method) for h in cg.hops
               if h.server == KERNEL and h.kind == "request" and h.label.status == GRANTED}
    sync = {m.name for m in cg.universe.solution.classes[KERNEL].endpoint("sync.Sync").interface.methods}
    assert {(ep, m) for c, ep, m in granted if c == "k.A"} == {("sync.Sync", m) for m in sync}
    assert not any(c == "k.C" for c, _, _ in granted)
    denied = [h for h in cg.hops if h.client == "k.C" and h.server == KERNEL and h.kind == "request"]
    assert denied and all(h.label.status == DENIED and "kernel access" in h.label.how for h in denied)
    # the conditional one went to the prover, which gives its own answer
    alloc = next(h for h in cg.hops if h.client == "k.B" and h.kind == "request" and h.method == "Allocate"
                 and h.endpoint == "vmm.VMM")
    assert "kernel access" not in alloc.label.how


def test_kernel_hop_witnesses_replay_and_conditions_are_always(small, small_graph):
    cg = small_graph
    hops = [h for h in cg.hops if h.server == KERNEL and h.label.status == GRANTED and h.client == "k.A"]
    assert {h.kind for h in hops} == {"request", "response", "error"}
    before = cg.labeller.questions
    for hop in hops:
        m = SecurityModule(small)
        m.boot()
        for step in hop.label.witness.steps:
            assert m.decide(step.event).granted == (step.expect == "granted"), hop.describe()
        cond = cg.labeller.condition(hop.kind, cg.procs[hop.source], cg.procs[hop.target], hop.endpoint, hop.method)
        assert cond.status == ALWAYS
    assert cg.labeller.questions == before          # no proof asked for them


def test_kernel_hops_agree_with_the_prover(small):
    """The cheap labels are the ones the prover gives, hop by hop (statuses and conditions)."""
    fast = ChannelGraph(Labeller(Prover(small)))
    slow_labeller = Labeller(Prover(small))
    slow_labeller._kernel_verdict = lambda *args: None          # every hop asked of the prover
    slow = ChannelGraph(slow_labeller)
    assert slow_labeller.shortcuts == 0 < fast.labeller.shortcuts
    assert fast.labeller.questions < slow_labeller.questions

    def labels(g):
        return {(h.kind, h.client, h.server, h.endpoint, h.method): h.label.status for h in g.hops}

    assert labels(fast) == labels(slow)
    for h in fast.hops:
        if h.label.status == GRANTED and h.server == KERNEL:
            args = (h.kind, fast.procs[h.source], fast.procs[h.target], h.endpoint, h.method)
            assert fast.labeller.condition(*args).status == slow_labeller.condition(*args).status, h.describe()


# ------------------------------------------------------------------ DOT, Mermaid
def test_dot_labels_the_kernel_edge_and_tooltips_the_node(lock_graph, lock_export):
    dot = lock_export.dot()
    edge = next(line for line in dot.splitlines() if line.lstrip().startswith('"lock.NetAgent" -> "kl.core.Core"'))
    row = kernel_access(lock_graph.universe.solution).of("lock.NetAgent")
    n = len(_granted_endpoints(lock_graph, "lock.NetAgent"))
    assert f'label="kernel: {n} endpoints, {len(row.dangerous())} dangerous"' in edge
    node = next(line for line in dot.splitlines() if line.lstrip().startswith('"lock.NetAgent" [label='))
    assert "tooltip=" in node and "thread.Thread: always" in node and "Create" in node
    assert '"kl.core.Core" [label="kl.core.Core", shape=hexagon]' in dot
    assert re.search(r'"lock.NetAgent" -> "lock.Logger" \[label="log_channel: \d+/\d+"', dot)   # others unchanged


def test_mermaid_labels_the_kernel_edge(small_graph):
    text = GraphExport(small_graph, conditions=False).mermaid()
    assert '|"kernel: 1 endpoint, 0 dangerous"|' in text                  # k.A: sync.Sync only
    assert '|"kernel: 0 endpoints, 0 dangerous"|' in text                 # k.C: nothing


# ------------------------------------------------------------------ HTML
def test_html_has_a_kernel_services_panel_per_process(lock_export):
    page = lock_export.html("smart_lock")
    ET.fromstring(re.search(r"<svg.*?</svg>", page, re.S).group(0))       # still well-formed
    assert "<strong>Kernel services:</strong>" in page                      # the legend entry
    panels = dict(re.findall(r'<section class="node-detail" id="(detail-n\d+|kernel-\d+)">(.*?)</section>', page, re.S))
    assert len([p for p in panels if p.startswith("detail-")]) == len(lock_export.nodes)
    # kernel services are per class: one panel for each class, opened with the process's own
    node_id = re.search(r'<g class="node" id="(n\d+)"[^>]*><title>lock.NetAgent', page).group(1)
    opens = re.search(rf'<g class="node" id="{node_id}"[^>]*data-detail="([^"]*)"', page).group(1).split()
    assert opens[0] == f"detail-{node_id}" and opens[1].startswith("kernel-")
    agent = panels[opens[1]]
    assert agent.startswith("<h3>lock.NetAgent") and "Channels" in panels[opens[0]]
    assert "<h4>Kernel services</h4>" in agent and "<code>task.Task</code>" not in agent
    assert all(f"<code>{ep}</code>" in agent for ep in RUNTIME)
    assert re.search(r'<span class="m danger" title="cpu[^"]*">Create</span>', agent)
    assert '<span class="m" title="safe">Wait</span>' in agent
    # the process's box carries the count of dangerous methods
    box = re.search(rf'<g class="node" id="{node_id}".*?</g>', page, re.S).group(0)
    dangerous = lock_export.cg.kernel_services("lock.NetAgent").dangerous
    assert 'class="kbadge"' in box and f"&#9888; {dangerous}</text>" in box


def test_html_marks_conditional_kernel_methods(small_graph):
    page = GraphExport(small_graph, conditions=False).html("small")
    assert re.search(r'<span class="m danger cond" title="[^"]*granted under conditions[^"]*">Allocate</span>', page)
    assert "k.C (untrusted) may call no kernel method." in page


def test_an_undescribed_kernel_keeps_the_old_picture(small, monkeypatch):
    monkeypatch.setattr(ChannelGraph, "kernel_described", property(lambda self: False))
    export = GraphExport(ChannelGraph(Labeller(Prover(small))), conditions=False)
    assert all(n["kernel_services"] is None for n in _nodes(export).values())
    assert re.search(r'"k.A" -> "kl.core.Core" \[label="kernel: \d+/\d+"', export.dot())
    assert "Not known: the kernel is not described" in export.html("small")


# ------------------------------------------------------------------ CLI
def test_cli_graph_formats_carry_the_kernel_services(small_dir, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["graph", str(small_dir), "--format", "json", "--output", str(out)]) == 0, capsys.readouterr().err
    nodes = {n["id"]: n for n in json.loads(out.read_text())["nodes"]}
    assert [e["endpoint"] for e in nodes["k.A"]["kernel_services"]["endpoints"]] == ["sync.Sync"]
    assert main(["graph", str(small_dir), "--format", "dot", "--no-conditions"]) == 0
    assert '"k.A" -> "kl.core.Core" [label="kernel: 1 endpoint, 0 dangerous"' in capsys.readouterr().out
    assert main(["graph", str(small_dir), "--format", "html", "--no-conditions"]) == 0
    assert "<h4>Kernel services</h4>" in capsys.readouterr().out
