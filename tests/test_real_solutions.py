"""Real solutions load as they are: one fixture per pattern seen in public KasperskyOS solutions.

Each fixture in tests/corpus/ reproduces, with our own text, one way the SDK or the build
supplies something a solution names but does not contain (tests/corpus/INDEX.md).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ksm
from ksm.cli import main
from ksm.events import Event
from ksm.lint import LintConfig, lint
from ksm.pal import run_tests
from policy_lang import LoadOptions, load
from policy_lang.diagnostics import Diagnostics
from policy_lang.templates import expand_template

CORPUS = Path(__file__).parent / "corpus"


def _load(name: str, **defines):
    return load(CORPUS / name, LoadOptions(defines=defines))


def _copy(name: str, tmp_path: Path) -> Path:
    """A copy of a fixture to edit."""
    root = tmp_path / "sol"
    shutil.copytree(CORPUS / name, root)
    return root


def _by_code(sol) -> dict[str, list]:
    out: dict[str, list] = {}
    for d in sol.diagnostics:
        out.setdefault(d.code, []).append(d)
    return out


def _booted(sol) -> ksm.SecurityModule:
    module = ksm.SecurityModule(sol)
    assert all(d.granted for d in module.boot())
    return module


# ------------------------------------------------------------------ 1. SDK programs as connection targets
def test_sdk_programs_named_as_connection_targets_become_external_opaque_instances():
    sol = _load("sdk_connection_targets")
    assert sol.ok and not [d for d in sol.diagnostics if d.severity.value == "warning"], sol.diagnostics
    external = {i.task for i in sol.instances if i.external}
    assert external == {"kl.VfsNet", "kl.core.NameServer", "kl.VfsRamFs", "kl.drivers.GPIO"}
    assert all(sol.classes[t].opaque for t in external)
    assert {(c.client, c.server) for c in sol.channels} >= {("demo.Client", "kl.VfsNet"),
                                                           ("demo.Server", "kl.drivers.GPIO")}
    notes = _by_code(sol)["SDK001"]
    assert sorted(d.message.split(":")[0] for d in notes) == sorted(external)   # once each


def test_traffic_to_an_external_sdk_program_is_decided_by_the_policy():
    module = _booted(_load("sdk_connection_targets"))
    assert module.decide(Event.request("demo.Client", "kl.VfsNet", "net", "Connect", {})).granted
    assert not module.decide(Event.request("demo.Client", "kl.VfsRamFs", "fs", "Open", {})).granted


def test_a_typo_in_a_project_target_is_still_an_error(tmp_path):
    root = _copy("sdk_connection_targets", tmp_path)
    init = root / "einit/src/init.yaml.in"
    init.write_text(init.read_text().replace("target: demo.Server", "target: demo.Sever"))
    sol = load(root)
    assert [d.code for d in sol.diagnostics if d.severity.value == "error"] == ["SOL001"]


# ------------------------------------------------------------------ 2. SDK components and interfaces in EDLs
def test_sdk_components_and_interfaces_load_without_cascading_errors():
    sol = _load("sdk_components_in_edl")
    assert sol.ok and not [d for d in sol.diagnostics if d.severity.value == "warning"], sol.diagnostics
    storage = sol.classes["demo.KlogStorageEntity"]
    assert not storage.opaque and storage.opaque_parts == ("storage",) and storage.partly_opaque
    env = sol.classes["demo.Env"]
    assert env.endpoint("fs").interface.opaque
    assert {p.name for p in sol.outside} == {"kl.Klog", "kl.KlogStorage", "kl.Vfs", "kl.Env", "kl.VfsFilesystem"}
    klog = next(b for b in sol.bindings if b.event == "request")
    assert klog.body  # the bindings stay in the model


def test_messages_to_an_opaque_part_are_decided_by_the_policy_and_others_are_malformed():
    module = _booted(_load("sdk_components_in_edl"))
    assert module.decide(Event.request("demo.KlogEntity", "demo.KlogStorageEntity", "storage.log", "Write", {})).granted
    assert module.decide(Event.request("demo.Server", "demo.NetVfs", "vfs.fs", "Write", {})).granted
    # Another endpoint of the opaque part: its interface is unknown, so `interface=` cannot select it.
    assert not module.decide(Event.request("demo.Server", "demo.NetVfs", "vfs.other", "Read", {})).granted
    bad = module.decide(Event.request("demo.Client", "demo.Server", "nowhere", "Sum", {}))
    assert not bad.granted and "malformed" in bad.reason


# ------------------------------------------------------------------ 3. SDK policy fragments
def test_sdk_policy_fragments_are_noted_once_and_nonsecurity_grants_everything():
    sol = _load("sdk_policy_fragments")
    assert sol.ok and not [d for d in sol.diagnostics if d.severity.value == "warning"], sol.diagnostics
    fragments = {p.name: p.kind for p in sol.outside if p.kind.startswith("fragment")}
    assert fragments == {"kl.core.DCM": "fragment", "kl.Ntpd": "fragment", "logrr.Server": "fragment",
                         "nonsecurity": "fragment-builtin"}
    module = _booted(sol)
    assert module.decide(Event.request("demo.Server", "demo.Client", None, None, {})).granted is False  # no endpoint
    assert module.decide(Event.request("demo.Client", "demo.Server", "calc", "Sum",
                                       {"req": {"count": 9, "a": 1, "b": 2}})).granted


# ------------------------------------------------------------------ 4. template values the build supplies
def test_placeholders_without_values_never_become_syntax_errors():
    sol = _load("build_placeholders")
    assert sol.ok, [d.render() for d in sol.diagnostics]
    per_name = [(d.code, d.message.split(" ")[0], d.span.file.rsplit("/", 1)[-1]) for d in sol.diagnostics]
    assert sorted(per_name) == sorted([
        ("TPL001", "@MAIN_TASK@", "init.yaml.in"), ("TPL006", "@ROOTFS_ENTITY@", "init.yaml.in"),
        ("TPL001", "${LOG_LEVEL}", "init.yaml.in"), ("TPL007", "$<TARGET_PROPERTY:Client,EXTRA_ENV>", "init.yaml.in"),
        ("TPL006", "@INIT_Server_PATH@", "init.yaml.in"), ("TPL007", "$<TARGET_PROPERTY:Server,EXTRA_ARGS>", "init.yaml.in"),
        ("TPL001", "@MAIN_TASK@", "security.psl.in"),
    ])
    assert "demo.MAIN_TASK" in sol.classes and sol.instance("demo.MAIN_TASK") is not None
    # `target: @ROOTFS_ENTITY@` names an unknown server: that connection is left out.
    assert [(c.client, c.server) for c in sol.channels] == [("demo.MAIN_TASK", "demo.Server")]


def test_a_defined_placeholder_is_used_as_given():
    sol = _load("build_placeholders", MAIN_TASK="Client", ROOTFS_ENTITY="kl.VfsRamFs", LOG_LEVEL="3",
                INIT_Server_PATH="server")
    assert "demo.Client" in sol.classes and not sol.classes["demo.Client"].opaque
    assert ("demo.Client", "kl.VfsRamFs") in {(c.client, c.server) for c in sol.channels}
    assert sol.instance("demo.Server").path == "server"


def test_generator_expression_and_cmake_variable_forms():
    diags = Diagnostics()
    src = expand_template("a: ${X}\nb: x$<IF:$<BOOL:1>,y,z>\n$<JOIN:a,b>\n", "init.yaml.in", {"X": "1"}, diags)
    assert src.text == "a: 1\nb: x\n\n"   # glued to a word: it vanishes; alone on its line: nothing
    assert [d.code for d in diags] == ["TPL007", "TPL007"]


# ------------------------------------------------------------------ 5. bindings the SDK's compiler accepts
def test_bindings_that_address_no_message_load_and_are_lint_findings():
    sol = _load("selectors_without_messages")
    assert sol.ok and not sol.diagnostics, [d.render() for d in sol.diagnostics]
    found = [d for d in lint(sol, LintConfig()).findings if d.code == "LNT020"]
    assert [d.span.line for d in found] == [13, 14, 18]


# ------------------------------------------------------------------ 6. PAL tests as the SDK runs them
def test_pal_tests_that_never_start_the_kernel_run_as_the_sdk_runs_them():
    results = run_tests(_load("pal_without_kernel"))
    assert [(r.name, r.passed) for r in results] == [("calc / first tries", True), ("calc / too many tries", True)]
    assert sum(len(r.cases) for r in results) == 7


# ------------------------------------------------------------------ 7. verify and prove on a clean solution
def test_verify_passes_on_a_clean_solution_without_properties(capsys):
    assert main(["verify", str(CORPUS / "sdk_connection_targets"), "--format", "json"]) == 0
    stages = {s["name"]: s["status"] for s in json.loads(capsys.readouterr().out)["stages"]}
    assert stages == {"check": "passed", "lint": "passed", "test": "skipped", "prove": "skipped", "flows": "skipped"}


def test_verify_fails_on_warnings_only_when_asked(capsys):
    target = str(CORPUS / "build_placeholders")
    assert main(["verify", target, "--skip", "prove", "--skip", "flows"]) == 0
    assert main(["verify", target, "--skip", "prove", "--skip", "flows", "--fail-on", "warning"]) == 1
    capsys.readouterr()


def test_prove_without_properties_says_so_and_succeeds(capsys):
    assert main(["prove", str(CORPUS / "sdk_connection_targets")]) == 0
    assert "no properties to prove" in capsys.readouterr().err
    assert main(["prove", str(CORPUS / "sdk_connection_targets"), "--only", "nope"]) == 2


# ------------------------------------------------------------------ 9. template tags inside comments
def test_template_tags_inside_comments_stay_comments():
    sol = _load("template_tags_in_comments")
    assert sol.ok and not sol.diagnostics, [d.render() for d in sol.diagnostics]
    assert not any(f.templated for f in sol.files)


@pytest.mark.parametrize("text", ["use EDL a.B // {{ x y }}\n", "/* {{ BOARD }} */\nuse EDL a.B\n", "# {{ x }}\n"])
def test_jinja_never_sees_prose_in_comments(text):
    diags = Diagnostics()
    path = "init.yaml" if text.startswith("#") else "security.psl"
    assert expand_template(text, path, {}, diags).text == text and not len(diags)


def test_component_selector_names_a_cdl_component_type():
    sol = _load("component_selector")
    assert sol.ok and not sol.diagnostics, [d.render() for d in sol.diagnostics]
    binding = next(b for b in sol.bindings if b.selectors.component)
    assert binding.selectors.component_endpoints == {("demo.Server", "calcComp.calcImpl")}
    module = _booted(sol)
    msg = {"req": {"count": 0, "a": 1, "b": 2}}
    assert module.decide(Event.request("demo.Client", "demo.Server", "calcComp.calcImpl", "Sum", msg)).granted
    assert not module.decide(Event.request("demo.Client", "demo.Server", "admin", "Sum", msg)).granted


def test_component_selector_naming_no_embedded_component_is_an_error(tmp_path):
    root = _copy("component_selector", tmp_path)
    policy = root / "einit/src/security.psl"
    policy.write_text(policy.read_text().replace("component=demo.CalcComp", "component=demo.CalcCmp"))
    assert [d.code for d in load(root).diagnostics if d.severity.value == "error"] == ["PSL002"]


@pytest.mark.parametrize("name", ["sdk_connection_targets", "sdk_components_in_edl", "sdk_policy_fragments",
                                  "component_selector"])
def test_z3_model_agrees_with_the_decision_function_on_opaque_pieces(name):
    """External instances, partly opaque classes and `component=` mean the same to both back ends."""
    from ksm.verify.crosscheck import crosscheck

    report = crosscheck(_load(name), 60, 0, 1)
    assert report.agreed > 0 and not report.disagreements, [d.describe() for d in report.disagreements]


# ------------------------------------------------------------------ 8. Regex patterns as the documentation writes them
@pytest.mark.parametrize("method, text, granted", [
    ("Greet", "Hello world!", True),          # "Hello\\ world\\!" is the pattern Hello\ world\!
    ("Greet", "Hello\\ world\\!", False),
    ("Log", "boot.log", True),                # select case "^[a-z]+\\.log$"
    ("Log", "bootxlog", False),
    ("Open", "/data/report.csv", True),       # the ```regex block, single backslashes
    ("Open", "/data/report-csv", False),
])
def test_regex_patterns_unescape_doubled_backslashes_and_read_the_block_form(method, text, granted):
    sol = _load("regex_escapes")
    assert sol.ok and not sol.diagnostics, [d.render() for d in sol.diagnostics]
    module = _booted(sol)
    assert module.decide(Event.request("demo.Client", "demo.Greeter", "greet", method, {"text": text})).granted is granted


def test_sdk_programs_the_policy_names_are_started_when_the_build_adds_the_entities(tmp_path):
    """`@INIT_EXTERNAL_ENTITIES@` without a value: the build adds an entry for every linked
    system program, so an SDK program the policy names runs although init.yaml does not list it."""
    root = _copy("sdk_connection_targets", tmp_path)
    policy = root / "einit/src/security.psl.in"
    policy.write_text(policy.read_text().replace("use EDL demo.Server\n", "use EDL demo.Server\nuse EDL kl.drivers.BSP\n"))
    sol = load(root)
    bsp = sol.instance("kl.drivers.BSP")
    assert bsp is not None and bsp.external and sol.instances[-1] == bsp
    init = root / "einit/src/init.yaml.in"
    init.write_text(init.read_text().replace("@INIT_EXTERNAL_ENTITIES@", ""))
    assert load(root).instance("kl.drivers.BSP") is None   # without the placeholder, init.yaml is the whole list


def test_message_fields_of_a_partly_opaque_server_are_not_second_guessed(tmp_path):
    root = _copy("sdk_components_in_edl", tmp_path)
    policy = root / "einit/src/security.psl"
    text = policy.read_text()
    policy.write_text(text + "request src=demo.Server dst=demo.NetVfs method=Read { assert (message.len < 4096) }\n"
                             "request src=demo.Client dst=demo.Server endpoint=calc method=Sum "
                             "{ assert (message.reqq.a < 10) }\n")
    errors = [d for d in load(root).diagnostics if d.severity.value == "error"]
    assert [(d.code, d.span.line) for d in errors] == [("PSL010", text.count("\n") + 2)]  # only the described one
