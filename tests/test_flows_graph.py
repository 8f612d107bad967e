"""The channel graph beyond `never flow`: the kernel node, hop conditions, queries, export."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksm.cli import main
from ksm.engine import SecurityModule
from ksm.events import Event
from ksm.flows import ChannelGraph, FlowChecker, FlowQuery, GraphExport, Hop, HopLabel, Labeller, UnknownProcess
from ksm.flows.labels import ALWAYS, DEPENDS, GRANTED
from ksm.flows.query import _reachable_sets
from ksm.verify.prove import PROVED, REFUTED, Prover
from policy_lang import load
from policy_lang.props import parse_properties
from policy_lang.source import SourceText

from conftest import write_solution

ROOT = Path(__file__).parent.parent
FLAWED = ROOT / "models" / "smart_lock_flawed"

# a -> b -> c over channels; d talks only to the kernel.  b -> c is granted only for v < 10.
CHAIN = {
    "resources/Api.idl": "package chain.Api\ninterface {\n    Put(in UInt32 v, out UInt32 r);\n}\n",
    "resources/A.edl": "task class chain.A\n",
    "resources/B.edl": "task class chain.B\nendpoints {\n    api : chain.Api\n}\n",
    "resources/C.edl": "task class chain.C\nendpoints {\n    api : chain.Api\n}\n",
    "resources/D.edl": "task class chain.D\n",
    "einit/src/security.psl": """use nk.base._
use EDL kl.core.Core
use EDL Einit
use EDL chain.A
use EDL chain.B
use EDL chain.C
use EDL chain.D
execute: kl.core.Execute
execute { grant () }
request dst=kl.core.Core { grant () }
response src=kl.core.Core { grant () }
request src=chain.A, dst=chain.B { grant () }
request src=chain.B, dst=chain.C, method=Put { assert (message.v < 10) }
response { grant () }
""",
    "einit/src/init.yaml": """entities:
  - name: chain.A
    task: a
    connections:
      - target: b
        id: ab
  - name: chain.B
    task: b
    connections:
      - target: c
        id: bc
  - name: chain.C
    task: c
  - name: chain.D
    task: d
""",
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return write_solution(tmp_path_factory.mktemp("chain"), CHAIN)


def graph_of(sol, **kw) -> ChannelGraph:
    return ChannelGraph(Labeller(Prover(sol)), **kw)


def check(graph: ChannelGraph, text: str):
    f = parse_properties(graph.universe.solution, SourceText("<test>.props", text))
    assert f.ok, [d.render() for d in f.diagnostics]
    return [FlowChecker(graph).check(p) for p in f.properties]


def replay_granted(sol, trace) -> None:
    m = SecurityModule(sol)
    m.boot()
    for step in trace.steps:
        assert m.decide(step.event).granted == (step.expect == "granted")


# ------------------------------------------------------------------ kernel
def test_kernel_is_a_node_but_not_a_relay_by_default(chain):
    g = graph_of(chain)
    assert g.kernel == "kl.core.Core" and "kl.core.Core" in g.graph
    assert any(h.client == "d" and h.server == g.kernel and h.label.status == GRANTED for h in g.hops)
    (r,) = check(g, "property p: never flow a -> d\n")
    assert r.status == PROVED


def test_kernel_relay_refutes_through_the_kernel(chain):
    g = graph_of(chain, kernel_relay=True)
    (r,) = check(g, "property p: never flow a -> d\n")
    assert r.status == REFUTED
    assert [(h.source, h.target) for h in r.path] == [("a", "kl.core.Core"), ("kl.core.Core", "d")]
    for hop in r.path:
        replay_granted(chain, hop.label.witness)


def test_flows_into_the_kernel_are_still_flows(chain):
    (r,) = check(graph_of(chain), "property p: never flow a -> kl.core.Core\n")
    assert r.status == REFUTED and len(r.path) == 1


# ------------------------------------------------------------------ conditions
def test_condition_always_for_an_unconditional_grant(chain):
    g = graph_of(chain)
    c = g.labeller.condition("request", g.procs["a"], g.procs["b"], "api", "Put")
    assert c.status == ALWAYS and c.denied is None


def test_condition_depends_with_a_denied_message_and_the_rule(chain):
    g = graph_of(chain)
    c = g.labeller.condition("request", g.procs["b"], g.procs["c"], "api", "Put")
    assert c.status == DEPENDS
    assert "assert" in c.reason and re.search(r"security\.psl:13\b", c.reason)
    m = SecurityModule(chain)
    m.boot()
    *before, last = c.denied.steps
    for step in before:
        m.decide(step.event)
    d = m.decide(last.event)
    assert not d.granted and last.event.message["v"] >= 10


# ------------------------------------------------------------------ queries
def test_out_of_and_into_with_shortest_paths(chain):
    q = FlowQuery(graph_of(chain))
    out = {r.node: [(h.source, h.target, h.kind) for h in r.hops] for r in q.out_of("a")}
    assert out["b"] == [("a", "b", "request")]
    assert out["c"] == [("a", "b", "request"), ("b", "c", "request")]
    assert "d" not in out and out["kl.core.Core"] == [("a", "kl.core.Core", "request")]
    into = {r.node: len(r.hops) for r in q.into("a")}
    assert into["b"] == 1 and into["c"] == 2 and "d" not in into


def test_class_names_stand_for_their_instances_and_unknown_names_fail(chain):
    q = FlowQuery(graph_of(chain))
    assert q.tasks("chain.B") == {"b"}
    with pytest.raises(UnknownProcess, match="neither a running task"):
        q.out_of("nope")


def test_avoid_removes_an_intermediary(chain):
    g = graph_of(chain)
    assert FlowQuery(g).shortest_paths("a", "c")
    assert FlowQuery(g, avoid=("b",)).shortest_paths("a", "c") == []


def test_all_shortest_paths(flawed_graph):
    paths = FlowQuery(flawed_graph).shortest_paths("lock.Parser", "lock.KeyStore")
    assert paths and len({len(p) for p in paths}) == 1
    assert len({tuple((h.source, h.target) for h in p) for p in paths}) == len(paths)   # distinct node paths
    for p in paths:
        assert p[0].source == "lock.Parser" and p[-1].target == "lock.KeyStore"
        assert all(a.target == b.source for a, b in zip(p, p[1:]))


def test_matrix_matches_the_queries(chain):
    q = FlowQuery(graph_of(chain))
    names, cells = q.matrix()
    for a in names:
        reach = {r.node for r in q.out_of(a)}
        assert {b for b in names if cells[(a, b)]} == reach - {a}, a
    classes, ccells = q.matrix(by_class=True)
    assert ccells[("chain.A", "chain.C")] and not ccells[("chain.A", "chain.D")]


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
    st.sets(st.integers(0, n - 1), max_size=2))))
def test_reachable_sets_agree_with_breadth_first_search(case):
    n, edges, sinks = case
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((u, v) for u, v in edges if u != v)
    got = _reachable_sets(g, sinks)
    relay = g.subgraph([x for x in g if x not in sinks])
    for s in g:
        # one step from s, then on through relays only
        want = set()
        for v in g.successors(s):
            want.add(v)
            if v not in sinks:
                want |= {w for w in nx.descendants(relay, v)} | {w for u in nx.descendants(relay, v) | {v}
                                                                 for w in g.successors(u) if w in sinks}
        assert got[s] - {s} == want - {s}, (s, edges, sinks)


@settings(max_examples=150, deadline=None)
@given(st.integers(3, 8).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from(["granted", "denied"])),
             max_size=4 * n),
    st.sets(st.integers(0, n - 1), min_size=1, max_size=2),
    st.sets(st.integers(0, n - 1), min_size=1, max_size=2),
    st.sets(st.integers(0, n - 1), max_size=2))))
def test_a_certificate_cut_separates_and_is_all_denied(case):
    """On any labelled graph without a granted path: the cut is denied hops, and
    taking them out leaves no path at all (over any hop) from a source to a target."""
    n, edges, srcs, dsts, via = case
    srcs, dsts = {f"p{i}" for i in srcs}, {f"p{i}" for i in dsts} - {f"p{i}" for i in srcs}
    via = {f"p{i}" for i in via} - srcs - dsts
    if not dsts:
        return
    cg = object.__new__(ChannelGraph)             # a graph without a solution behind it
    cg.hops = [Hop("request", f"p{u}", f"p{v}", "e", f"M{k}", HopLabel(status, "test"), 1, "c")
               for k, (u, v, status) in enumerate(edges) if u != v]
    cg.graph = nx.MultiDiGraph()
    cg.graph.add_nodes_from(f"p{i}" for i in range(n))
    checker = FlowChecker(cg)
    view = nx.subgraph_view(checker.granted, filter_node=lambda x: x not in via)
    if any(nx.has_path(view, s, d) for s in srcs for d in dsts):
        return                                      # refuted: no certificate to check
    cut, region, _ = checker._cut(srcs, dsts, via)
    assert all(h.label.status == "denied" for h in cut)
    left = nx.MultiDiGraph()
    left.add_nodes_from(cg.graph)
    removed = {id(h) for h in cut}
    left.add_edges_from((h.source, h.target) for h in cg.hops
                        if id(h) not in removed and h.source not in via and h.target not in via)
    assert not any(nx.has_path(left, s, d) for s in srcs for d in dsts)
    assert (srcs <= set(region)) or (dsts <= set(region))


# ------------------------------------------------------------------ export
@pytest.fixture(scope="module")
def flawed_graph():
    sol = load(FLAWED)
    f = parse_properties(sol, SourceText("<t>.props", "channel lock.NetAgent -> lock.KeyStore\n"))
    return ChannelGraph(Labeller(Prover(sol)), declared=f.channels)


@pytest.fixture(scope="module")
def flawed_export(flawed_graph):
    (r,) = check(flawed_graph, "property leak: never flow lock.NetAgent -> lock.KeyStore unless via "
                               "lock.Parser, lock.Logger\n")
    assert r.status == REFUTED
    return GraphExport(flawed_graph, [r])


def test_dot_marks_the_forbidden_channel_red(flawed_export):
    dot = flawed_export.dot()
    assert dot.startswith("digraph channels {") and dot.rstrip().endswith("}")
    red = [line for line in dot.splitlines() if "color=red" in line]
    assert len(red) == 1 and red[0].lstrip().startswith('"lock.NetAgent" -> "lock.KeyStore"')
    assert '"kl.core.Core" [label="kl.core.Core", shape=hexagon]' in dot


def test_mermaid_styles_the_forbidden_link_by_its_index(flawed_export):
    lines = flawed_export.mermaid().splitlines()
    assert lines[0] == "flowchart LR"
    links = [line for line in lines if "-->" in line or "-.->" in line]
    (style,) = [line for line in lines if "#d62728" in line]
    index = int(style.split()[1])
    ids = {m.group(2): m.group(1) for m in re.finditer(r'(n\d+)[\[{]+"([^"<]+)', "\n".join(lines))}
    assert links[index].split()[0] == ids["lock.NetAgent"] and links[index].split()[-1] == ids["lock.KeyStore"]


def test_json_is_networkx_node_link_data(flawed_export):
    data = json.loads(flawed_export.json())
    g = nx.node_link_graph(data, edges="links")
    edge = g["lock.NetAgent"]["lock.KeyStore"]
    assert edge["forbidden"] == ["leak"] and edge["channel"] == "declared"
    assert {h["interface"] for h in edge["hops"]} == {"lock.Secrets"}
    assert g.nodes["kl.core.Core"]["kernel"] is True
    assert data["graph"]["flows"][0]["status"] == REFUTED
    conds = [h.get("condition") for _, _, d in g.edges(data=True) for h in d["hops"] if h["status"] == GRANTED]
    assert conds and all(c["status"] in ("always", "depends", "unknown") for c in conds)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [v or "" for _, v in attrs]


def test_html_is_self_contained_and_highlights_the_path(flawed_export):
    page = flawed_export.html("smart_lock_flawed")
    parser = _Tags()
    parser.feed(page)
    assert "svg" in parser.tags and "script" in parser.tags
    assert not any(a.startswith(("http:", "https:", "//")) for a in parser.attrs), "no network resources"
    assert "<link" not in page and " src=" not in page
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    root = ET.fromstring(svg)                                   # well-formed XML
    forbidden = [g for g in root.iter() if g.tag.rsplit("}", 1)[-1] == "g" and "forbidden" in g.get("class", "")]
    assert len(forbidden) == 1 and "lock.NetAgent -&gt; lock.KeyStore" in page
    edge_id = forbidden[0].get("id")
    assert re.search(rf'<tr class="flow refuted" data-edges="{edge_id}"', page)


def test_drawing_boxes_never_overlap(flawed_export):
    from ksm.flows.drawing import class_drawing, process_drawing

    for drawing in (process_drawing(flawed_export), class_drawing(flawed_export)):
        boxes = list(drawing.layout.boxes.values())
        assert len(boxes) == len(drawing.nodes)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y


# ------------------------------------------------------------------ CLI
@pytest.mark.parametrize("fmt,marker", [("dot", "digraph"), ("mermaid", "flowchart LR"),
                                        ("json", '"links"'), ("svg", "<svg"), ("html", "<!DOCTYPE html>")])
def test_cli_graph_formats(fmt, marker, tmp_path, capsys):
    out = tmp_path / f"g.{fmt}"
    code = main(["graph", str(FLAWED), "--format", fmt, "--output", str(out), "--no-conditions"])
    assert code == 0, capsys.readouterr().err
    assert marker in out.read_text()


def test_cli_graph_hide_and_bad_hide(tmp_path, capsys):
    assert main(["graph", str(FLAWED), "--format", "dot", "--hide", "kl.core.Core", "--no-conditions"]) == 0
    assert "kl.core.Core" not in capsys.readouterr().out
    assert main(["graph", str(FLAWED), "--hide", "nope"]) == 2
    assert "no such task" in capsys.readouterr().err


def test_cli_flow_queries_text_and_json(capsys):
    assert main(["flows", str(FLAWED), "--paths", "lock.NetAgent", "lock.KeyStore"]) == 0
    out = capsys.readouterr().out
    assert "1 shortest flow path(s) of 1 hop(s)" in out
    assert "lock.NetAgent -[request vault.secrets.VerifyPin]-> lock.KeyStore" in out
    assert main(["flows", str(FLAWED), "--from", "lock.NetAgent", "--matrix", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names, rows = data["matrix"]["names"], data["matrix"]["rows"]
    reached = {r["process"] for r in data["out_of"]["reach"]}
    i = names.index("lock.NetAgent")
    assert {n for n, x in zip(names, rows[i]) if x} == reached


def test_cli_flow_query_errors_are_usage_errors(capsys):
    assert main(["flows", str(FLAWED), "--into", "nope"]) == 2
    assert "neither a running task" in capsys.readouterr().err
    assert main(["flows", str(FLAWED), "--matrix", "--format", "sarif"]) == 2


def test_cli_reports_the_labelling_cost(capsys):
    assert main(["flows", str(FLAWED), "--format", "json"]) == 1
    stats = json.loads(capsys.readouterr().out)["channel_graph"]
    assert stats["hops"] == stats["granted"] + stats["denied"] + stats["unknown"]
    assert stats["proofs"] > 0 and stats["labelling_seconds"] > 0


# ------------------------------------------------------------------ engine support
def test_checkpoint_and_restore_return_to_the_saved_state(chain):
    m = SecurityModule(chain)
    m.boot()
    saved = m.checkpoint()
    put = Event.request("a", "b", "api", "Put", {"v": 1})
    assert m.decide(put).granted
    first = m.decide(Event.execute("chain.D", src="Einit"))             # a second d: a new SID
    assert first.granted
    m.restore(saved)
    assert m.checkpoint() == saved
    assert m.decide(Event.execute("chain.D", src="Einit")).sid == first.sid   # handed out again


def test_the_rendered_mermaid_in_the_docs_is_the_command_output():
    text = (ROOT / "docs" / "flows.md").read_text()
    console = re.search(r"\$ ksm graph [^\n]*--format mermaid[^\n]*\n(.*?)```", text, re.S).group(1)
    rendered = re.search(r"```mermaid\n(.*?)```", text, re.S).group(1)
    assert rendered == console and rendered.startswith("flowchart LR")


def test_svg_format_is_a_standalone_drawing(flawed_export):
    """`--format svg`: well-formed SVG with its own style, every process and channel, no script."""
    text = flawed_export.render("svg")
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    tags = [el.tag.rsplit("}", 1)[-1] for el in root.iter()]
    assert "style" in tags and "script" not in tags
    groups = [el for el in root.iter() if el.tag.endswith("}g")]
    assert sum("node" in g.get("class", "").split() for g in groups) == len(flawed_export.nodes)
    assert sum("edge" in g.get("class", "").split() for g in groups) == len(flawed_export.channels)
