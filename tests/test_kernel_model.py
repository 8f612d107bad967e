"""The built-in kernel description and how the front end and the access table use it.

What a user relies on: kernel selectors resolve without an SDK (`interface=kl.core.Sync`,
`endpoint=vmm.VMM`), a misspelt kernel name is a warning with a suggestion (never an
error: a newer SDK may have it), a parameter without a documented type is a note,
`--sdk` replaces the built-in kernel with the SDK's own and both routes classify the
documented methods the same way, and trust marks reach the model.
"""
from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from ksm.kernel_access import ALWAYS, CONDITIONAL, NEVER, kernel_access
from policy_lang import LoadOptions, load
from policy_lang.kernel import (
    DANGER_CLASSES, DOC_VERSIONS, KernelDataError, builtin_kernel_class, is_builtin_kernel,
    kernel_description, kernel_method, parse_endpoint,
)
from policy_lang.solution import KERNEL_CLASS

from conftest import write_solution

SDK_STUB = Path(__file__).parent / "sdk_stub"

HEADER = """\
use nk.base._

use EDL kl.core.Core
use EDL Einit
use EDL demo.App
use EDL demo.Driver

execute: kl.core.Execute

execute { grant () }
response { grant () }
"""
INIT = "entities:\n  - name: demo.App\n  - name: demo.Driver\n"


def files(extra: str, header: str = HEADER) -> dict[str, str]:
    return {
        "einit/src/security.psl": header + extra,
        "einit/src/init.yaml": INIT,
        "resources/App.edl": "task class demo.App\n",
        "resources/Driver.edl": "task class demo.Driver\n",
    }


def loaded(tmp_path: Path, extra: str, **opts):
    for rel, text in files(extra).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return load(tmp_path, LoadOptions(**opts))


def codes(sol, code: str) -> list:
    return [d for d in sol.diagnostics if d.code == code]


# --------------------------------------------------------------------------- the data
def test_every_data_file_is_well_formed_and_endpoints_are_unique():
    desc = kernel_description()
    names = [e.name for e in desc.endpoints if e.name]
    assert len(names) == len(set(names)) and len(names) >= 20
    interfaces = [e.interface for e in desc.endpoints]
    assert len(interfaces) == len(set(interfaces))
    for m in desc.methods.values():
        assert set(m.versions) <= set(DOC_VERSIONS)
        if m.danger:
            assert set(m.danger) <= set(DANGER_CLASSES) and m.reason, m.label
        if m.documented and m.danger is None:
            assert m.incomplete, f"{m.label}: documented, not classified, and not marked incomplete"


def test_the_core_endpoints_of_every_solution_are_there():
    desc = kernel_description()
    for name in ("vmm.VMM", "sync.Sync", "task.Task", "thread.Thread", "handle.Handle", "io.IO", "hal.HAL"):
        assert desc.endpoint(name) is not None, name
    allocate = kernel_method("kl.core.VMM", "Allocate")
    assert allocate.dangerous and "ram" in allocate.danger
    assert allocate.in_params == ("addr", "size", "flags") and "rc" in allocate.out_params
    wait = kernel_method("kl.core.Sync", "Wait")
    assert wait.danger == () and wait.danger_text() == "safe"


def test_a_malformed_data_file_is_a_data_error_naming_the_method():
    with pytest.raises(KernelDataError, match="Grab: unknown danger class"):
        parse_endpoint({"endpoint": "x.X", "interface": "kl.core.X",
                        "method": [{"name": "Grab", "versions": ["1.1"], "danger": ["world-domination"]}]}, "x.toml")
    with pytest.raises(KernelDataError, match="needs a danger list"):
        parse_endpoint({"endpoint": "x.X", "interface": "kl.core.X",
                        "method": [{"name": "Grab", "versions": ["1.1"]}]}, "x.toml")


def test_no_data_file_quotes_long_documentation_sentences():
    """Our own words only: summaries and reasons are short paraphrases."""
    folder = resources.files("policy_lang").joinpath("data/kernel")
    for entry in folder.iterdir():
        data = tomllib.loads(entry.read_text("utf-8"))
        for m in data.get("method", []):
            for key in ("summary", "reason"):
                assert len(m.get(key, "")) <= 160, (entry.name, m["name"], key)


# --------------------------------------------------------------------------- front end
def test_kernel_selectors_resolve_without_an_sdk(tmp_path):
    sol = loaded(tmp_path, "request dst=kl.core.Core {\n"
                           "    match interface=kl.core.Sync { grant () }\n"
                           "    match endpoint=vmm.VMM, method=Allocate { grant () }\n"
                           "}\n")
    assert sol.ok, [d.render() for d in sol.diagnostics]
    assert is_builtin_kernel(sol.classes[KERNEL_CLASS])
    binding = sol.bindings[-1]
    assert {(t.endpoint, t.method.name) for t in binding.targets} >= {("sync.Sync", "Wait"), ("vmm.VMM", "Allocate")}
    assert not binding.opaque


@pytest.mark.parametrize("selector, wrong, suggestion", [
    ("endpoint=vmm.VM", "vmm.VM", "vmm.VMM"),
    ("endpoint=vmm.VMM, method=Alocate", "Alocate", "Allocate"),
    ("interface=kl.core.Synk", "kl.core.Synk", "kl.core.Sync"),
])
def test_a_misspelt_kernel_name_is_a_warning_with_a_suggestion(tmp_path, selector, wrong, suggestion):
    sol = loaded(tmp_path, f"request dst=kl.core.Core {selector} {{ grant () }}\n")
    found = codes(sol, "KRN001")
    assert len(found) == 1 and sol.ok
    d = found[0]
    assert d.severity.value == "warning" and suggestion in d.message and wrong in d.message
    assert d.span.line == HEADER.count("\n") + 1 and d.hint


def test_a_correct_kernel_name_gives_no_krn001(tmp_path):
    sol = loaded(tmp_path, "request dst=kl.core.Core endpoint=vmm.VMM, method=Allocate { grant () }\n")
    assert not codes(sol, "KRN001")


def test_a_parameter_without_a_documented_type_is_a_note_not_an_error(tmp_path):
    sol = loaded(tmp_path, "request dst=kl.core.Core endpoint=vmm.VMM, method=Allocate "
                           "{ assert (message.size < 4096) }\n")
    assert sol.ok
    notes = codes(sol, "KRN002")
    assert len(notes) == 1 and notes[0].severity.value == "note" and "kl.core.VMM.Allocate" in notes[0].message


def test_an_undocumented_parameter_name_is_still_an_error(tmp_path):
    sol = loaded(tmp_path, "request dst=kl.core.Core endpoint=sync.Sync, method=Wait "
                           "{ assert (message.timeout < 10) }\n")
    assert not sol.ok and codes(sol, "PSL010")


def test_the_summary_does_not_count_the_builtin_kernel_interfaces(tmp_path):
    sol = loaded(tmp_path, "request dst=kl.core.Core { grant () }\n")
    assert sol.summary()["interfaces"] == 0 and sol.summary()["methods"] == 0


# --------------------------------------------------------------------------- --sdk route
POLICY_BOTH = ("request src=demo.App dst=kl.core.Core {\n"
               "    match interface=kl.core.Sync { grant () }\n"
               "    match endpoint=vmm.VMM, method=Allocate { grant () }\n"
               "}\n")


def test_the_sdk_core_edl_replaces_the_builtin_kernel(tmp_path):
    sol = loaded(tmp_path, POLICY_BOTH, sdk_dirs=(SDK_STUB,))
    assert sol.ok, [d.render() for d in sol.diagnostics]
    kernel = sol.classes[KERNEL_CLASS]
    assert not is_builtin_kernel(kernel) and [e.name for e in kernel.endpoints] == ["sync.Sync", "vmm.VMM"]
    allocate = kernel.endpoint("vmm.VMM").interface.method("Allocate")
    assert [p.name for p in allocate.params] == ["addr", "size", "flags", "va", "rc"] and not allocate.untyped


def test_both_routes_describe_and_classify_the_documented_parts_alike(tmp_path):
    builtin = builtin_kernel_class()
    sdk = loaded(tmp_path / "sdk", POLICY_BOTH, sdk_dirs=(SDK_STUB,))
    ours = loaded(tmp_path / "ours", POLICY_BOTH)
    for ep in sdk.classes[KERNEL_CLASS].endpoints:
        mine = builtin.endpoint(ep.name)
        assert mine is not None and mine.interface.name == ep.interface.name
        for m in ep.interface.methods:
            facts = kernel_method(ep.interface.name, m.name)
            assert facts is not None, m.name
            if facts.params_known and not facts.incomplete:
                assert tuple(p.name for p in m.in_params) == facts.in_params
                assert tuple(p.name for p in m.out_params) == facts.out_params
    by_route = {}
    for name, sol in (("sdk", sdk), ("builtin", ours)):
        row = kernel_access(sol).of("demo.App")
        by_route[name] = {c.label: (c.verdict, c.facts) for c in row.calls}
    shared = set(by_route["sdk"]) & set(by_route["builtin"])
    assert shared == set(by_route["sdk"]) and len(shared) == 6
    for label in shared:
        assert by_route["sdk"][label] == by_route["builtin"][label], label


# --------------------------------------------------------------------------- trust
def test_trust_marks_on_or_above_the_use_edl_line(tmp_path):
    header = HEADER.replace("use EDL demo.App\n", "use EDL demo.App  // ksm: trusted the updater\n")
    header = header.replace("use EDL demo.Driver\n", "// ksm: untrusted\nuse EDL demo.Driver\n")
    write = {**files("", header)}
    sol = write_solution(tmp_path, write)
    assert sol.trusted("demo.App") and not sol.trusted("demo.Driver")
    assert sol.trust["demo.Driver"].trusted is False and sol.trust["demo.App"].source == "comment"
    # Einit (generated by the SDK, starts every process) is trusted unless the policy says otherwise.
    assert sol.trusted("Einit") and sol.trust["Einit"].source == "default"


def test_einit_can_be_marked_untrusted(tmp_path):
    header = HEADER.replace("use EDL Einit\n", "use EDL Einit  // ksm: untrusted\n")
    sol = write_solution(tmp_path, files("", header))
    assert not sol.trusted("Einit") and sol.trust["Einit"].source == "comment"


def test_a_trust_mark_that_covers_nothing_is_a_warning(tmp_path):
    sol = loaded(tmp_path, "// ksm: trusted\nrequest dst=kl.core.Core { grant () }\n")
    found = codes(sol, "KRN003")
    assert len(found) == 1 and found[0].severity.value == "warning"
    assert [t.source for t in sol.trust.values()] == ["default"]        # only Einit's default


def test_trusted_classes_from_the_settings_and_their_typos(tmp_path):
    sol = loaded(tmp_path, "", trusted=("demo.App", "demo.Drivr"))
    assert sol.trusted("demo.App") and sol.trust["demo.App"].source == "settings"
    typo = codes(sol, "KRN003")
    assert len(typo) == 1 and "did you mean demo.Driver" in typo[0].message


# --------------------------------------------------------------------------- access table
def test_access_verdicts_always_conditional_never(tmp_path):
    sol = loaded(tmp_path, "request src=demo.App dst=kl.core.Core {\n"
                           "    match interface=kl.core.Sync { grant () }\n"
                           "    match endpoint=vmm.VMM, method=Allocate { assert (message.size < 4096) }\n"
                           "    match endpoint=vmm.VMM, method=Commit { deny () }\n"
                           "}\n")
    row = kernel_access(sol).of("demo.App")
    verdict = {c.label: c for c in row.calls}
    assert verdict["sync.Sync.Wait"].verdict == ALWAYS and verdict["sync.Sync.Wait"].bindings
    assert verdict["vmm.VMM.Allocate"].verdict == CONDITIONAL and "message.size" in verdict["vmm.VMM.Allocate"].why
    assert verdict["vmm.VMM.Commit"].verdict == NEVER
    assert verdict["task.Task.Create"].verdict == NEVER   # selected by the binding, granted by no section
    other = kernel_access(sol).of("demo.Driver")
    assert all(c.verdict == NEVER for c in other.calls)


def test_a_state_dependent_grant_is_conditional(tmp_path):
    sol = loaded(tmp_path, "use nk.flow._\n"
                           "policy object mode : Flow {\n"
                           "    type State = \"boot\" | \"run\"\n"
                           "    config = { states : [\"boot\", \"run\"], initial : \"boot\",\n"
                           "               transitions : { \"boot\" : [\"run\"], \"run\" : [] } }\n"
                           "}\n"
                           "execute src=Einit, dst=demo.App { mode.init { sid : dst_sid } }\n"
                           "request src=demo.App dst=kl.core.Core interface=kl.core.Sync "
                           "{ mode.allow { sid : src_sid, states : [\"run\"] } }\n")
    assert sol.ok, [d.render() for d in sol.diagnostics]
    row = kernel_access(sol).of("demo.App")
    assert {c.verdict for c in row.calls if c.interface == "kl.core.Sync"} == {CONDITIONAL}


def test_diff_reports_every_kernel_method_a_change_grants(tmp_path):
    """Kernel keys are computed once per group, but every method the change grants is listed and replayed."""
    from ksm.verify.diff import diff

    old = loaded(tmp_path / "old", "request src=demo.App dst=kl.core.Core interface=kl.core.Sync { grant () }\n")
    new = loaded(tmp_path / "new", "request src=demo.App dst=kl.core.Core { grant () }\n")
    report = diff(old, new, timeout_ms=5000)
    grants = {d.group for d in report.differences if d.change == "new-grant"}
    total = len(builtin_kernel_class().endpoints and [m for ep in builtin_kernel_class().endpoints
                                                      for m in ep.interface.methods])
    sync = len(builtin_kernel_class().endpoint("sync.Sync").interface.methods)
    assert len(grants) == total - sync and not report.unknown
    assert "request src=demo.App dst=kl.core.Core endpoint=task.Task method=Create" in grants
    assert not any("sync.Sync" in g for g in grants)
    assert all(d.witness is not None for d in report.differences)
