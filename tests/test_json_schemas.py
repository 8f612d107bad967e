"""Every JSON document the CLI prints follows its published schema (docs/schemas/).

Each command with ``--format json`` is run in-process on the bundled examples, in
passing and in failing forms (a broken solution, a failing PAL test, a denied event,
refuted properties, lint findings, a failed ``ksm verify``...), and what it prints is
validated with JSON Schema draft 2020-12.  The schema files themselves must be valid
schemas, and there must be exactly one per document name the CLI can emit: the names
are read from the source, so a new JSON output without a schema fails here.

Slow outputs (the smart-lock proofs) are produced once per module and reused: the
counterexample files that ``ksm simulate --replay`` reads are the documents the
``prove`` and ``flows`` cases printed.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from ksm.cli import main
from ksm.cli.common import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "docs" / "schemas"
MODELS = ROOT / "models"
COMMON = "common"

SCHEMAS: dict[str, dict] = {p.name.removesuffix(".schema.json"): json.loads(p.read_text(encoding="utf-8"))
                            for p in sorted(SCHEMA_DIR.glob("*.schema.json"))}
REGISTRY = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())


def validator(name: str) -> Draft202012Validator:
    # No format_checker: "format" stays an annotation, as the task of these schemas is shape.
    return Draft202012Validator(SCHEMAS[name], registry=REGISTRY)


def schema_errors(doc: dict, name: str) -> list[str]:
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message[:400]}" for e in errors]


# ----------------------------------------------------------------------------- the schema files

def emitted_names() -> set[str]:
    """The document names the package can print, read from its source.

    ``json_text(KIND, ...)`` calls in ksm/cli/*.py (every string literal of the first
    argument, so ``json_text("flows" if ... else "prove", ...)`` counts both), and
    documents that spell their ``"schema": "ksm-NAME/N"`` themselves (ksm/lint/report.py).
    """
    names: set[str] = set()
    for path in sorted((ROOT / "ksm" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "json_text":
                kinds = [n.value for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant)
                         and isinstance(n.value, str)]
                assert kinds, f"{path.name}:{node.lineno}: json_text with a computed kind; name it literally"
                names.update(kinds)
    literal = re.compile(r"""["']schema["']\s*:\s*["']ksm-([a-z][a-z-]*)/(\d+)["']""")
    for path in sorted((ROOT / "ksm").rglob("*.py")):
        for name, version in literal.findall(path.read_text(encoding="utf-8")):
            assert int(version) == SCHEMA_VERSION, f"{path}: ksm-{name}/{version}"
            names.add(name)
    return names


def test_a_schema_file_for_every_json_output():
    names = emitted_names()
    assert "lint" in names and "prove" in names and "check" in names      # the scan itself works
    files = set(SCHEMAS) - {COMMON}
    assert files == names, (f"documents without a schema: {sorted(names - files)}; "
                            f"schemas no command prints: {sorted(files - names)}")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_file_is_a_valid_schema(name):
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:ksm:schema:{name}:{SCHEMA_VERSION}"
    assert schema.get("title") and schema.get("description")
    if name != COMMON:
        assert schema["type"] == "object"
        assert schema["properties"]["schema"]["const"] == f"ksm-{name}/{SCHEMA_VERSION}"
        assert "schema" in schema["required"]


def _properties(node, where="#"):
    """(where, property name, subschema) of every ``properties`` entry in a schema."""
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            yield f"{where}/properties/{key}", key, sub
        for key, value in node.items():
            if key != "if":             # a condition's properties are not fields of their own
                yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{where}/{i}")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_field_is_described(name):
    """A field has a description, or refers to a definition that has one."""
    missing = [where for where, _, sub in _properties(SCHEMAS[name])
               if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub]
    assert not missing, "fields without a description:\n" + "\n".join(missing)


def test_references_resolve():
    """Every $ref points at something (a typo would only show on a document that reaches it)."""
    for schema in SCHEMAS.values():
        resolver = REGISTRY.resolver(base_uri=schema["$id"])
        for ref in _refs(schema):
            resolver.lookup(ref)            # raises when unresolvable


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_readme_lists_every_schema():
    text = (SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `ksm-([a-z-]+)/\d+` \|", text, re.MULTILINE))
    assert listed == set(SCHEMAS) - {COMMON}


# ----------------------------------------------------------------------------- the commands

class Output(str):
    """An argument: the file holding the JSON document another case printed."""


class Work(str):
    """An argument: a path in the module's work folder (broken copies of the examples)."""


@dataclass(frozen=True)
class Case:
    argv: tuple
    code: int = 0                                   # the exit code the command must give
    expect: Callable[[dict], bool] | None = None    # what makes this variant the one meant

    @property
    def schema(self) -> str:
        return "flow-query" if self.argv[0] == "flows" and _queries(self.argv) else self.argv[0]


def _queries(argv) -> bool:
    return any(a in ("--from", "--into", "--paths", "--matrix") for a in argv)


def m(name: str) -> str:
    return str(MODELS / name)


def _event(value: int) -> str:
    return json.dumps({"kind": "request", "src": "echo.Client", "dst": "echo.Server",
                       "endpoint": "pingComp.pingImpl", "method": "Ping", "message": {"value": value}})


def _statuses(d: dict) -> set[str]:
    return {r["status"] for r in d["results"]}


def _any(items, test) -> bool:
    return any(test(x) for x in items)


J = ("--format", "json")

CASES: dict[str, Case] = {
    # check
    "check": Case(("check", m("echo"), *J), 0, lambda d: d["ok"] and not d["diagnostics"]),
    "check-dump": Case(("check", m("showcase"), *J, "--dump"), 0, lambda d: d["ok"] and "model" in d),
    "check-errors": Case(("check", Work("echo_broken"), *J), 1,
                         lambda d: not d["ok"] and _any(d["diagnostics"], lambda x: x["severity"] == "error")),
    "check-no-policy": Case(("check", Work("empty"), *J), 1,
                            lambda d: d["policy"] == "" and d["diagnostics"][0]["location"] is None),
    # test
    "test-coverage": Case(("test", m("smart_lock"), *J, "--coverage"), 0,
                          lambda d: d["summary"]["failed"] == 0 and d["coverage"]),
    "test-failing": Case(("test", Work("echo_failing_test"), *J), 1,
                         lambda d: d["summary"]["failed"] == 1
                         and _any(d["tests"], lambda t: _any(t["cases"], lambda c: c["problem"]))),
    # decide
    "decide-grant": Case(("decide", m("echo"), "--event", _event(7), *J), 0,
                         lambda d: d["granted"] and d["steps"]),
    "decide-deny": Case(("decide", m("echo"), "--event", _event(7000), *J), 1,
                        lambda d: not d["granted"] and _any(d["steps"], lambda s: s["verdict"] == "denied")),
    "decide-execute": Case(("decide", m("echo"), "--event", '{"kind": "execute", "src": "Einit", "dst": "echo.Server"}',
                            *J), 0, lambda d: isinstance(d["sid"], int)),
    "decide-not-booted": Case(("decide", m("echo"), "--no-boot", "--event", '{"kind": "execute", "dst": "echo.Server"}',
                               *J), 1, lambda d: not d["granted"] and d["event"]["src"] is None),
    # prove
    "prove-refuted": Case(("prove", m("smart_lock_flawed"), *J), 1,
                          lambda d: "REFUTED" in _statuses(d) and "channel_graph" in d
                          and _any(d["results"], lambda r: "counterexample" in r and r["status"] == "REFUTED")
                          and _any(d["results"], lambda r: r["kind"] == "never_flow" and r["status"] == "REFUTED")),
    "prove-proved": Case(("prove", m("smart_lock"), *J), 0,
                         lambda d: _statuses(d) == {"PROVED"} and d["summary"]["PROVED"] == len(d["results"])
                         and _any(d["results"], lambda r: r["kind"] == "reachable_state" and "counterexample" in r)
                         and _any(d["results"], lambda r: r["kind"] == "never_flow" and "cut" in r)),
    # flows
    "flows-refuted": Case(("flows", m("smart_lock_flawed"), *J), 1,
                          lambda d: _any(d["results"], lambda r: r["status"] == "REFUTED" and r["path"][0]["witness"])),
    "flows-proved": Case(("flows", m("smart_lock"), *J), 0,
                         lambda d: _statuses(d) == {"PROVED"} and _any(d["results"], lambda r: r["cut"])),
    # flow-query
    "flow-query": Case(("flows", m("smart_lock"), "--from", "lock.NetAgent", "--into", "lock.KeyStore",
                        "--paths", "lock.NetAgent", "lock.KeyStore", "--matrix", *J), 0,
                       lambda d: {"out_of", "into", "paths", "matrix"} <= set(d) and d["paths"]["paths"]),
    "flow-query-by-class": Case(("flows", m("smart_lock"), "--matrix", "--by-class", "--avoid", "lock.Logger",
                                 "--paths", "Einit", "lock.KeyStore", *J), 0,
                                lambda d: d["avoid"] == ["lock.Logger"] and d["paths"]["paths"] == []
                                and len(d["matrix"]["rows"]) == len(d["matrix"]["names"])),
    # graph
    "graph": Case(("graph", m("smart_lock_flawed"), *J), 0,
                  lambda d: _any(d["links"], lambda link: link["forbidden"])
                  and _any(d["links"], lambda link: _any(link["hops"], lambda h: "condition" in h))),
    "graph-plain": Case(("graph", m("echo"), *J, "--no-conditions", "--hide", "Einit"), 0,
                        lambda d: "Einit" not in {n["id"] for n in d["nodes"]}),
    # kernel
    "kernel": Case(("kernel", str(ROOT / "docs/examples/kernel_demo"), *J), 1,
                   lambda d: not d["ok"] and d["untrusted_dangerous"]
                   and _any(d["classes"], lambda c: _any(c["calls"], lambda x: x["classification"] == "dangerous"
                                                         and x["verdict"] == "always" and x["sites"]))),
    "kernel-trusted": Case(("kernel", m("echo"), "--dangerous", "--trusted", "Einit", "--trusted", "echo.Client",
                            "--trusted", "echo.Server", *J), 0,
                           lambda d: d["ok"] and d["dangerous_only"] and _any(d["classes"], lambda c: c["trusted"])),
    "kernel-methods": Case(("kernel", "--methods", *J), 0,
                           lambda d: d["endpoints"] and d["danger_classes"] and "classes" not in d),
    # diff
    "diff": Case(("diff", m("smart_lock"), m("smart_lock_flawed"), *J), 0,
                 lambda d: _any(d["differences"], lambda x: x["change"] == "new-grant" and "witness" in x)),
    "diff-same": Case(("diff", m("echo"), m("echo"), *J, "--fail-on", "any"), 0,
                      lambda d: d["differences"] == [] and d["unknown"] == []),
    # crosscheck
    "crosscheck": Case(("crosscheck", m("echo"), "--events", "20", "--walk", "1", *J), 0,
                       lambda d: d["agreed"] > 0 and d["states"] == 2),
    # simulate
    "simulate-behaviours": Case(("simulate", m("smart_lock"), *J), 0,
                                lambda d: d["ok"] and d["runs"][0]["records"] and d["runs"][0]["channels"]),
    "simulate-scenario": Case(("simulate", m("smart_lock"), "--scenario", m("smart_lock/sim/untrusted.yaml"), *J), 0,
                              lambda d: d["ok"]),
    "simulate-scenario-failing": Case(("simulate", m("smart_lock"), "--scenario", Work("failing.yaml"), *J), 1,
                                      lambda d: not d["ok"] and d["runs"][0]["failures"]),
    "simulate-replay": Case(("simulate", m("smart_lock_flawed"), "--replay", Output("prove-refuted"), *J), 0,
                            lambda d: d["ok"] and len(d["runs"]) > 1),
    "simulate-replay-flows": Case(("simulate", m("smart_lock_flawed"), "--replay", Output("flows-refuted"), *J), 0,
                                  lambda d: d["ok"] and d["runs"]),
    "simulate-replay-mismatch": Case(("simulate", m("smart_lock"), "--replay", Output("prove-refuted"), *J), 1,
                                     lambda d: _any(d["runs"], lambda r: r["replay_mismatches"])),
    "simulate-taint": Case(("simulate", m("smart_lock_flawed"), "--behaviours", m("smart_lock/sim/behaviours.py"),
                            "--taint", *J), 1, lambda d: d["runs"][0]["violations"]),
    # lint
    "lint-findings": Case(("lint", m("smart_lock_flawed"), *J), 1,
                          lambda d: d["findings"] and d["counts"]["warning"] and not d["skipped"]),
    "lint-notes": Case(("lint", m("showcase"), *J), 0, lambda d: d["counts"]["note"] and d["findings"]),
    "lint-skipped": Case(("lint", Work("echo_broken"), *J), 1, lambda d: d["skipped"] and d["counts"]["error"]),
    "lint-suppressed-baselined": Case(("lint", Work("echo_lint"), "--baseline", Work("baseline.json"), *J), 0,
                                      lambda d: d["suppressed"] and d["baselined"] and not d["findings"]),
    # verify
    "verify": Case(("verify", m("echo"), *J), 0, lambda d: d["exit_code"] == 0),
    "verify-fails": Case(("verify", m("smart_lock_flawed"), *J), 1,
                         lambda d: d["exit_code"] == 1
                         and _any(d["stages"], lambda s: s["status"] == "failed" and s["problems"] and s["rerun"]) and not _any(d["stages"], lambda s: _any(
                             s["problems"], lambda p: p.startswith("(could not list the problems")))),
    "verify-broken": Case(("verify", Work("echo_broken"), *J), 1,
                          lambda d: [s["status"] for s in d["stages"]] == ["failed"] + ["skipped"] * 4),
    # codes
    "codes": Case(("codes", *J), 0, lambda d: len(d["codes"]) > 50),
    # bench (the smallest sizes)
    "bench-decide": Case(("bench", "decide", "--bindings", "20", *J), 0, lambda d: d["figures"]["rows"]),
    "bench-load": Case(("bench", "load", "--lines", "100", "--repeat", "1", *J), 0,
                       lambda d: d["figures"]["policy_lines"] > 0),
    "bench-lint": Case(("bench", "lint", "--lines", "100", "--repeat", "1", *J), 0, lambda d: d["figures"]),
    "bench-fuzz": Case(("bench", "fuzz", "--seeds", "1", *J), 0, lambda d: d["figures"]["results"]),
    "bench-compare": Case(("bench", "compare", *J), 0, lambda d: d["figures"]["rows"]),
}


class Runs:
    """Each case's document, made once per module (some take seconds)."""

    def __init__(self, work: Path):
        self.work = work
        self.docs: dict[str, dict] = {}

    def doc(self, key: str, capsys) -> dict:
        if key not in self.docs:
            self.docs[key] = self._run(key, capsys)
        return self.docs[key]

    def _arg(self, arg, capsys) -> str:
        if isinstance(arg, Output):
            path = self.work / f"{arg}.json"
            if not path.exists():
                path.write_text(json.dumps(self.doc(str(arg), capsys)), encoding="utf-8")
            return str(path)
        if isinstance(arg, Work):
            return str(self.work / arg)
        return arg

    def _run(self, key: str, capsys) -> dict:
        case = CASES[key]
        argv = [self._arg(a, capsys) for a in case.argv]
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == case.code, f"ksm {' '.join(argv)}: exit {code}, expected {case.code}\n{err[-3000:]}"
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"ksm {' '.join(argv)} printed no JSON document ({exc}):\n{out[:2000]}") from None


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    work = tmp_path_factory.mktemp("json-schemas")

    def copy(model: str, name: str, old: str, new: str) -> Path:
        target = work / name
        shutil.copytree(MODELS / model, target)
        psl = target / "einit" / "src" / "security.psl"
        text = psl.read_text(encoding="utf-8")
        assert old in text, f"{model}: the example changed; update this test's edit"
        psl.write_text(text.replace(old, new, 1), encoding="utf-8")
        return target

    ping = "assert (message.value <= 1000)"
    copy("echo", "echo_broken", ping, ping + " }}")                                   # a syntax error
    copy("echo", "echo_failing_test", 'grant "upper bound"', 'deny "upper bound"')    # a wrong expectation
    start = "execute src=Einit, dst=echo.Server { grant () }"
    copy("echo", "echo_lint", start, f"{start}\n{start}\n{start}  // ksm: disable=LNT009")   # LNT009 twice
    (work / "empty").mkdir()
    (work / "failing.yaml").write_text(
        "seed: 3\n"
        "processes:\n"
        "  lock.Parser:\n"
        "    serve:\n"
        "      intake.Submit: {accepted: 1}\n"
        "  lock.NetAgent:\n"
        "    run:\n"
        "      - call: intake.Submit\n"
        "        channel: intake_channel\n"
        '        with: {text: "UNLOCK; reboot", nonce: 8}\n'
        "        expect: ok\n", encoding="utf-8")
    assert main(["lint", str(work / "echo_lint"), "--write-baseline", str(work / "baseline.json")]) == 0
    return Runs(work)


@pytest.mark.parametrize("key", list(CASES))
def test_output_follows_its_schema(key, runs, capsys):
    case = CASES[key]
    if key == "bench-compare":
        pytest.importorskip("cedarpy", reason="ksm bench compare needs cedarpy (pip install '.[bench]')")
    doc = runs.doc(key, capsys)
    assert isinstance(doc, dict)
    assert doc.get("schema") == f"ksm-{case.schema}/{SCHEMA_VERSION}"
    errors = schema_errors(doc, case.schema)
    assert not errors, f"{key}: the output does not follow {case.schema}.schema.json:\n" + "\n".join(errors[:20])
    if case.expect is not None:
        assert case.expect(doc), f"{key}: not the variant this case is meant to cover"
    assert next(iter(doc)) == "schema", f"{key}: `schema` is not the first key ({list(doc)[:3]}...)"


def test_every_schema_is_exercised():
    covered = {case.schema for case in CASES.values()}
    assert covered == set(SCHEMAS) - {COMMON}


# ----------------------------------------------------------------------------- the schemas are strict

@pytest.mark.parametrize("key,path,value", [
    ("decide-deny", ("granted",), "no"),                            # a boolean
    ("decide-deny", ("event", "kind"), "message"),                  # not an event kind
    ("check-errors", ("diagnostics", 0, "severity"), "fatal"),      # not a severity
    ("check-errors", ("diagnostics", 0, "location", "line"), "37"),
    ("prove-refuted", ("results", 0, "status"), "MAYBE"),            # not PROVED/REFUTED/UNKNOWN
    ("prove-refuted", ("results", 0, "counterexample", "steps", 0, "expect"), "maybe"),
    ("prove-refuted", ("summary", "SKIPPED"), 0),                   # an unknown key
    ("test-failing", ("tests", 0, "cases", 0, "decision"), "granted"),   # grant / deny / null
    ("lint-findings", ("findings", 0, "fingerprint"), "xyz"),
    ("verify-fails", ("stages", 0, "status"), "PASSED"),
    ("codes", ("codes", 0, "code"), "lnt1"),
    ("simulate-scenario", ("runs", 0, "outcome", "status"), "done"),
    ("simulate-scenario", ("surprise",), True),                      # an unknown top-level key
    ("decide-grant", ("schema",), "ksm-decide/2"),                  # another version
    ("kernel", ("classes", 0, "calls", 0, "verdict"), "sometimes"),   # not always/conditional/never
    ("kernel-methods", ("endpoints", 0, "methods", 0, "danger"), ["boredom"]),   # not a danger class
])
def test_schemas_reject_what_they_do_not_describe(key, path, value, runs, capsys):
    doc = json.loads(json.dumps(runs.doc(key, capsys)))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert schema_errors(doc, CASES[key].schema), f"{key}: {'/'.join(map(str, path))} = {value!r} was accepted"
