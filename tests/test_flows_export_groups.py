"""`ksm graph` groups processes: a class's instances, a package's classes (DOT clusters, Mermaid subgraphs)."""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from ksm.flows import ChannelGraph, FlowChecker, GraphExport, Labeller
from ksm.flows.generate import generate_flow_solution
from ksm.verify.prove import REFUTED, Prover
from policy_lang import load
from policy_lang.props import find_property_files, load_properties, parse_properties
from policy_lang.source import SourceText

ROOT = Path(__file__).parent.parent
LOCK = ROOT / "models" / "smart_lock"


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def lock_export():
    """The smart lock as `ksm graph` draws it (its property files: declared channels, flow results)."""
    sol = load(LOCK)
    files = [load_properties(sol, f, {}) for f in find_property_files(sol)]
    graph = ChannelGraph(Labeller(Prover(sol)), declared=[c for f in files for c in f.channels])
    checker = FlowChecker(graph)
    results = [checker.check(p) for f in files for p in f.properties if p.kind == "never_flow"]
    return GraphExport(graph, results)


@pytest.fixture(scope="module")
def generated_export(tmp_path_factory):
    """A generated solution (the `ksm bench flows` generator): 30 processes of 20 classes, some refuted flows."""
    root = tmp_path_factory.mktemp("gen")
    text = generate_flow_solution(root, instances=30, channels_per_instance=3, classes_per_zone=5)
    sol = load(root)
    graph = ChannelGraph(Labeller(Prover(sol)))
    f = parse_properties(sol, SourceText("<gen>.props", text))
    assert f.ok
    results = [FlowChecker(graph).check(p) for p in f.properties]
    assert any(r.status == REFUTED for r in results)           # red links to keep track of
    return GraphExport(graph, results, conditions=False)


@pytest.fixture(params=["lock", "generated"])
def export(request, lock_export, generated_export) -> GraphExport:
    return {"lock": lock_export, "generated": generated_export}[request.param]


def stub_export(classes: dict[str, str], hide=()) -> GraphExport:
    """An export of processes ``{task: class}`` and no channel (the grouping rules alone)."""
    procs = {t: SimpleNamespace(cls=c) for t, c in classes.items()}
    kernel = next((t for t, c in classes.items() if c == "kl.core.Core"), None)
    graph = SimpleNamespace(procs=procs, hops=[], kernel=kernel, kernel_services=lambda task: None)
    return GraphExport(graph, hide=hide, conditions=False)


# ------------------------------------------------------------------ the expected grouping, worked out here
def expected_tree(e: GraphExport):
    """The grouping the rules ask for, canonical (order-free): see :func:`canon`."""
    procs = e.cg.procs
    loose = [n for n in e.nodes if n == e.cg.kernel or n == "Einit"]
    by_class: dict[str, list[str]] = {}
    for n in e.nodes:
        if n not in loose:
            by_class.setdefault(procs[n].cls, []).append(n)
    by_package: dict[str, list[str]] = {}
    for cls in by_class:
        if "." in cls:
            by_package.setdefault(cls.rsplit(".", 1)[0], []).append(cls)

    def class_items(cls):
        members = by_class[cls]
        return [(cls, members)] if len(members) >= 2 else members

    top: list = list(loose)
    packaged = set()
    for prefix, classes in by_package.items():
        if len(classes) >= 2:
            top.append((prefix, [x for cls in classes for x in class_items(cls)]))
            packaged.update(classes)
    for cls in by_class:
        if cls not in packaged:
            top += class_items(cls)
    return canon(top)


def canon(items):
    """Nested (label, items) groups and node names as a comparable, order-free value."""
    out = Counter()
    for it in items:
        out[it if isinstance(it, str) else (it[0], canon(it[1]))] += 1
    return frozenset(out.items())


# ------------------------------------------------------------------ parsing what was drawn
def dot_tree(dot: str):
    """DOT clusters and node statements as nested (label, items); the edge lines apart."""
    stack: list[list] = [[]]
    labels: list[str] = []
    edges = []
    for line in dot.splitlines()[4:-1]:          # between the graph's header and its closing brace
        s = line.strip()
        if m := re.fullmatch(r"subgraph (cluster_\d+) \{", s):
            stack.append([])
            labels.append(None)
        elif s.startswith("label=") and labels and labels[-1] is None and not stack[-1]:
            labels[-1] = re.match(r'label="((?:[^"\\]|\\.)*)"', s).group(1)
            assert 'style="rounded,dashed"' in s and "color=gray60" in s and "fontcolor=gray40" in s
        elif s == "}":
            items = stack.pop()
            stack[-1].append((labels.pop(), items))
        elif m := re.match(r'"((?:[^"\\]|\\.)*)" -> "', s):
            edges.append(line)
        elif m := re.match(r'"((?:[^"\\]|\\.)*)" \[label=', s):
            stack[-1].append(m.group(1))
        else:
            raise AssertionError(f"unexpected DOT line: {line!r}")
    assert len(stack) == 1 and not labels, "unbalanced clusters"
    return stack[0], edges


def mermaid_tree(text: str, ids: dict[str, str]):
    """Mermaid subgraphs and node lines as nested (label, items) of task names; links and styles apart."""
    names = {v: k for k, v in ids.items()}
    stack: list[list] = [[]]
    labels: list[str] = []
    links, styles, gids = [], [], []
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    for line in lines[1:]:
        s = line.strip()
        if m := re.fullmatch(r'subgraph (\w+)\["([^"]*)"\]', s):
            assert not links, "subgraphs come before every link"
            gids.append(m.group(1))
            stack.append([])
            labels.append(m.group(2))
        elif s == "end":
            items = stack.pop()
            stack[-1].append((labels.pop(), items))
        elif re.match(r"n\d+ (-->|-\.->)\|", s):
            links.append(line)
        elif s.startswith("linkStyle "):
            styles.append(line)
        elif m := re.match(r'(n\d+)(\[|\{\{)"', s):
            stack[-1].append(names[m.group(1)])
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    assert len(stack) == 1 and not labels, "unbalanced subgraph/end"
    assert len(set(gids)) == len(gids) and all(re.fullmatch(r"g\d+", g) for g in gids)
    assert not set(gids) & set(ids.values()), "subgraph ids never clash with node ids"
    return stack[0], links, styles


def flat(items) -> list[str]:
    return [x for it in items for x in ([it] if isinstance(it, str) else flat(it[1]))]


def braces_balanced(text: str) -> bool:
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if escaped:
            escaped = False
        elif quoted:
            escaped = ch == "\\"
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
            if depth < 0:
                return False
    return depth == 0 and not quoted


def mermaid_ids(e: GraphExport) -> dict[str, str]:
    return {n: f"n{i}" for i, n in enumerate(e.nodes)}


# ------------------------------------------------------------------ the rules
def test_the_rules_on_a_made_up_solution():
    e = stub_export({"kl.core.Core": "kl.core.Core", "Einit": "Einit",
                     "a1": "pkg.A", "a2": "pkg.A", "b": "pkg.B",            # package pkg: class box A, b loose in it
                     "w1": "solo.W", "w2": "solo.W",                          # one class in its package: class box only
                     "x": "other.X",                                         # alone: no box at all
                     "p": "plain", "q1": "bare", "q2": "bare",               # no package prefix
                     "m": "gen.Net3", "k1": "gen.Net3.Worker", "k2": "gen.Net3.Worker"})
    tree, _ = dot_tree(e.dot())
    assert canon(tree) == canon(["kl.core.Core", "Einit", "x", "p", "m",
                                 ("pkg", [("pkg.A", ["a1", "a2"]), "b"]),
                                 ("solo.W", ["w1", "w2"]), ("bare", ["q1", "q2"]),
                                 ("gen.Net3.Worker", ["k1", "k2"])])
    assert canon(tree) == expected_tree(e)
    mtree, links, styles = mermaid_tree(e.mermaid(), mermaid_ids(e))
    assert canon(mtree) == canon(tree) and not links and not styles


def test_hidden_processes_do_not_count():
    e = stub_export({"a1": "pkg.A", "a2": "pkg.A", "b": "pkg.B"}, hide=("a2",))
    tree, _ = dot_tree(e.dot())
    assert canon(tree) == canon([("pkg", ["a1", "b"])])


def test_every_process_once_in_its_boxes(export):
    want = expected_tree(export)
    tree, _ = dot_tree(export.dot())
    mtree, _, _ = mermaid_tree(export.mermaid(), mermaid_ids(export))
    for t in (tree, mtree):
        assert sorted(flat(t)) == sorted(export.nodes)          # every process exactly once
        assert canon(t) == want
        top = [x for x in t if isinstance(x, str)]
        for n in (export.cg.kernel, "Einit"):
            if n in export.nodes:
                assert n in top                                  # never in a box
        boxes = {label: items for label, items in _boxes(t)}
        by_class = Counter(export.cg.procs[n].cls for n in export.nodes if n not in (export.cg.kernel, "Einit"))
        for cls, count in by_class.items():
            if count >= 2:
                assert sorted(boxes[cls]) == sorted(n for n in export.nodes if export.cg.procs[n].cls == cls)


def _boxes(items):
    for it in items:
        if not isinstance(it, str):
            yield it[0], it[1]
            yield from _boxes(it[1])


def test_the_lock_boxes(lock_export):
    tree, _ = dot_tree(lock_export.dot())
    (lock,) = [it for it in tree if not isinstance(it, str)]
    assert lock[0] == "lock"
    assert ("lock.Sensor", ["boltSensor", "doorSensor"]) in lock[1]
    assert "lock.KeyStore" in lock[1] and "kl.core.Core" in tree and "Einit" in tree


def test_generated_classes_nest_in_their_package(generated_export):
    tree, _ = dot_tree(generated_export.dot())
    (gen,) = [it for it in tree if not isinstance(it, str)]
    assert gen[0] == "gen"
    classes = {it[0] for it in gen[1] if not isinstance(it, str)}
    assert classes and all(c.startswith("gen.") for c in classes)
    for it in gen[1]:
        if not isinstance(it, str):
            assert all(isinstance(x, str) for x in it[1])       # class boxes hold instances only


# ------------------------------------------------------------------ nothing else changes
def test_dot_edges_and_nodes_unchanged(export):
    plain, grouped = export.dot(group=False), export.dot()
    assert braces_balanced(plain) and braces_balanced(grouped)
    assert dot_tree(grouped)[1] == dot_tree(plain)[1]           # same edges, same attributes, same order
    boxes = re.compile(r"\s*(subgraph cluster_\d+ \{|label=.*fontcolor=gray40.*|\})")
    kept = [line.strip() for line in grouped.splitlines() if not boxes.fullmatch(line)]
    assert Counter(kept) == Counter(line.strip() for line in plain.splitlines()[:-1])   # the node lines too
    assert plain.splitlines()[:4] == grouped.splitlines()[:4]


def test_dot_without_groups_has_no_cluster(export):
    assert "subgraph" not in export.dot(group=False) and "subgraph" not in export.mermaid(group=False)
    assert export.render("dot") == export.dot() and export.render("mermaid") == export.mermaid()


def test_mermaid_links_and_styles_unchanged(export):
    ids = mermaid_ids(export)
    plain_tree, plain_links, plain_styles = mermaid_tree(export.mermaid(group=False), ids)
    tree, links, styles = mermaid_tree(export.mermaid(), ids)
    assert links == plain_links and styles == plain_styles
    assert all(isinstance(x, str) for x in plain_tree)
    node_lines = {line.strip() for line in export.mermaid(group=False).splitlines() if re.match(r"\s*n\d+[\[{]", line)}
    assert node_lines == {line.strip() for line in export.mermaid().splitlines() if re.match(r"\s*n\d+[\[{]", line)}
    # every linkStyle N still points at the N-th link, which is the channel it styles
    channels = list(export.channels.values())
    assert len(links) == len(channels)
    for style in styles:
        i = int(style.split()[1])
        ch = channels[i]
        assert links[i].split()[0] == ids[ch.client] and links[i].split()[-1] == ids[ch.server]
        assert ("#d62728" in style) == bool(ch.forbidden)
        assert "#d62728" in style or ch.status == "denied"


def test_generated_has_red_links(generated_export):
    styles = [line for line in generated_export.mermaid().splitlines() if "#d62728" in line]
    assert styles


# ------------------------------------------------------------------ Graphviz accepts it
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graphviz_accepts_the_clusters(export):
    run = subprocess.run(["dot", "-Tsvg"], input=export.dot(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "<svg" in run.stdout and 'class="cluster"' in run.stdout
