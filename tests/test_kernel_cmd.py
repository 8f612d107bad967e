"""`ksm kernel`: the kernel access table per class, the built-in kernel description, and the CI gate.

What a user relies on: every process class is listed with its trust and, per kernel
endpoint, the methods it may call always / under conditions (never ones counted),
dangerous ones marked; --class and --dangerous narrow it; --methods works anywhere,
without a solution; JSON follows docs/schemas/kernel.schema.json; SARIF has one LNT021
result per untrusted class and dangerous method granted always; the exit status is 1
exactly when such a grant exists.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_solution

from ksm.cli import main
from ksm.kernel_access import ALWAYS, CONDITIONAL, NEVER, kernel_access
from policy_lang import load
from policy_lang.kernel import builtin_kernel_class, kernel_description

ROOT = Path(__file__).resolve().parent.parent
SMART_LOCK = str(ROOT / "models" / "smart_lock")

POLICY = """\
use nk.base._

use EDL kl.core.Core
use EDL Einit{einit}
use EDL demo.App{app}
use EDL demo.Driver

execute: kl.core.Execute

execute {{ grant () }}
response {{ grant () }}
request src=Einit dst=kl.core.Core {{ grant () }}
request src=demo.App dst=kl.core.Core {{ grant () }}
request src=demo.Driver dst=kl.core.Core {{
    match interface=kl.core.Sync {{ grant () }}
    match endpoint=vmm.VMM, method=Allocate {{ assert (message.size < 4096) }}
}}
"""
TRUSTED = "  // ksm: trusted"


def solution(root: Path, trusted: bool = True) -> str:
    mark = TRUSTED if trusted else ""
    write_solution(root, {
        "einit/src/security.psl": POLICY.format(einit=mark, app=mark),
        "einit/src/init.yaml": "entities:\n  - name: demo.App\n  - name: demo.Driver\n",
        "resources/App.edl": "task class demo.App\n",
        "resources/Driver.edl": "task class demo.Driver\n",
    })
    return str(root)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def smart_lock_access():
    """The smart lock's table as the library computes it (the example's policy may change; the command must agree)."""
    sol = load(SMART_LOCK)
    assert sol.ok
    return kernel_access(sol)


def gate(access, sol=None) -> list:
    """The classes the exit status gates on: untrusted, granted a dangerous method always, risk not accepted."""
    from ksm.cli.kernel_cmds import gate_failures

    return gate_failures(access, sol)


def heading(row) -> str:
    counts = [len(row.with_verdict(v)) for v in (ALWAYS, CONDITIONAL, NEVER)]
    return (f"{row.cls} ({'trusted' if row.trusted else 'untrusted'}): {counts[0]} always, {counts[1]} conditional, "
            f"{counts[2]} never")


# ----------------------------------------------------------------------------- text

def test_smart_lock_lists_every_class_with_its_verdicts(capsys):
    access = smart_lock_access()
    assert len(access.classes) == 11
    code, out, err = run(capsys, "kernel", SMART_LOCK)
    assert code == (1 if gate(access, load(SMART_LOCK)) else 0), err
    lines = out.splitlines()
    assert lines[0] == "kernel: built-in description of kl.core.Core (KasperskyOS CE documentation 1.1-1.4)"
    trusted = [r.cls for r in access.classes if r.trusted]
    untrusted = [r.cls for r in access.classes if not r.trusted]
    assert lines[1] == f"trust: trusted: {', '.join(trusted) or 'none'}; untrusted: {', '.join(untrusted) or 'none'}"
    for row in access.classes:
        assert any(x.startswith(heading(row)) for x in lines), row.cls
    assert not any(x.startswith("kl.core.Core (") for x in lines)   # the kernel has no row of its own
    for row in access.classes:
        for c in row.calls:
            if c.granted and c.dangerous:      # one dangerous grant: its verdict, danger classes and reason
                line = next(x for x in lines if x.split()[:2] == [c.verdict, c.method] and "DANGEROUS" in x)
                assert ", ".join(c.facts.danger) in line and c.facts.reason in line
                break
    assert any(x.startswith("  ") and x.strip().split()[0] in ("always", "conditional") for x in lines)
    assert "\x1b[" not in out                                  # no colour on a pipe


def test_verdicts_grouped_by_endpoint_with_never_counted(capsys, tmp_path):
    sol = solution(tmp_path)
    code, out, err = run(capsys, "kernel", sol, "--class", "demo.Driver")
    assert code == 0, err
    assert "trust: trusted: none; untrusted: demo.Driver" in out
    size = {ep.name: len(ep.interface.methods) for ep in builtin_kernel_class().endpoints}
    sync, total = size["sync.Sync"], sum(size.values())
    assert f"demo.Driver (untrusted): {sync} always, 1 conditional, {total - sync - 1} never" in out
    lines = out.splitlines()
    vmm = lines.index("  vmm.VMM")
    assert lines[vmm + 1].split()[:3] == ["conditional", "Allocate", "DANGEROUS"]
    assert "message.size" in lines[vmm + 1]                  # what the grant depends on
    assert lines[vmm + 2].split()[:2] == ["never", str(size["vmm.VMM"] - 1)]     # the other methods, counted
    closed = next(x for x in lines if x.startswith("  never: "))        # endpoints it may not call at all
    assert f"task.Task ({size['task.Task']})" in closed and "sync.Sync" not in closed
    assert any(x.split()[:2] == ["always", "Wait"] for x in lines)
    verbose = run(capsys, "kernel", sol, "--class", "demo.Driver", "-v")[1].splitlines()
    assert any(x.split()[:2] == ["never", "Commit"] for x in verbose)
    assert "  task.Task" in verbose and not any("(-v lists them)" in x for x in verbose)
    assert any("[granted at " in x and "security.psl:" in x for x in verbose)


def test_colour_only_when_asked_or_on_a_terminal(capsys, tmp_path):
    sol = solution(tmp_path)
    assert "\x1b[" not in run(capsys, "kernel", sol)[1]
    assert "\x1b[" in run(capsys, "kernel", sol, "--color", "always")[1]


def test_class_filter(capsys):
    access = smart_lock_access()
    code, out, _ = run(capsys, "kernel", SMART_LOCK, "--class", "lock.Parser", "--class", "lock.NetAgent")
    shown = [access.of("lock.NetAgent"), access.of("lock.Parser")]
    from ksm.cli.kernel_cmds import risky

    sol = load(SMART_LOCK)
    assert code == (1 if any(not r.trusted and risky(r, sol) for r in shown) else 0)
    headings = [x.split(" (")[0] for x in out.splitlines() if x and not x.startswith(" ") and " (" in x
                and not x.startswith(("kernel:", "trust:"))]
    assert headings == ["lock.NetAgent", "lock.Parser"]
    assert all(heading(row) in out for row in shown)


@pytest.mark.parametrize("name,expect", [
    ("lock.NetAgnt", "did you mean lock.NetAgent?"),
    ("kl.core.Core", "the kernel itself has no table"),
    ("zzz", "no such process class"),
])
def test_unknown_class_is_a_usage_error(capsys, name, expect):
    code, out, err = run(capsys, "kernel", SMART_LOCK, "--class", name)
    assert code == 2 and out == ""
    assert f"--class {name}" in err and expect in err


def test_dangerous_only(capsys, tmp_path):
    code, out, _ = run(capsys, "kernel", SMART_LOCK, "--class", "lock.NetAgent", "--dangerous")
    granted = smart_lock_access().of("lock.NetAgent").dangerous()
    rows = [x.split() for x in out.splitlines() if x.startswith("    ")]
    assert [(r[0], r[1]) for r in rows] == [(c.verdict, c.method) for c in granted]
    assert all(r[2] == "DANGEROUS" for r in rows)
    assert not any("never" in x for x in out.splitlines() if x.startswith("  ")) and " safe" not in out
    code, out, _ = run(capsys, "kernel", solution(tmp_path), "--dangerous", "--class", "demo.Driver")
    rows = [x.split() for x in out.splitlines() if x.startswith("    ")]
    assert code == 0 and [r[:2] for r in rows] == [["conditional", "Allocate"]]


# ----------------------------------------------------------------------------- --methods

def test_methods_needs_no_solution(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                               # no policy, no settings here
    code, out, err = run(capsys, "kernel", "--methods")
    assert code == 0, err
    assert out.startswith("kernel: built-in description of kl.core.Core")
    assert "danger classes\n  kernel-memory" in out
    assert "\nvmm.VMM  interface kl.core.VMM, documented in 1.1-1.4" in out
    assert "  Allocate(" in out and "DANGEROUS kernel-memory, ram" in out
    assert "not classified by the documentation" in out and "incomplete: " in out
    assert " safe\n" in out
    dangerous = run(capsys, "kernel", "--methods", "--dangerous")[1]
    assert "DANGEROUS" in dangerous and "  Close(handle)" not in dangerous


def test_methods_misuse_is_a_usage_error(capsys):
    assert run(capsys, "kernel", "--methods", "--format", "sarif")[0] == 2
    assert run(capsys, "kernel", "--methods", "--class", "x")[0] == 2


# ----------------------------------------------------------------------------- JSON

def _validator():
    from test_json_schemas import validator

    return validator("kernel")


def test_json_follows_the_schema(capsys, tmp_path):
    check = _validator()
    access = smart_lock_access()
    code, out, _ = run(capsys, "kernel", SMART_LOCK, "--format", "json")
    doc = json.loads(out)
    check.validate(doc)
    assert doc["schema"] == "ksm-kernel/1" and code == (0 if doc["ok"] else 1)
    assert doc["untrusted_dangerous"] == [r.cls for r in gate(access, load(SMART_LOCK))]
    assert [c["class"] for c in doc["classes"]] == [r.cls for r in access.classes]
    for got, row in zip(doc["classes"], access.classes):
        assert got["trusted"] == row.trusted
        assert got["counts"] == {v: len(row.with_verdict(v)) for v in (ALWAYS, CONDITIONAL, NEVER)}
        assert [(c["method"], c["verdict"]) for c in got["calls"]] == [(c.method, c.verdict) for c in row.calls]
    create = next(c for c in doc["classes"][0]["calls"] if c["endpoint"] == "task.Task" and c["method"] == "Create")
    assert create["classification"] == "dangerous" and "privilege" in create["danger"] and create["reason"]

    code, out, _ = run(capsys, "kernel", solution(tmp_path), "--format", "json", "--dangerous")
    doc = json.loads(out)
    check.validate(doc)
    assert code == 0 and doc["ok"] and doc["untrusted_dangerous"] == [] and doc["dangerous_only"]
    driver = next(c for c in doc["classes"] if c["class"] == "demo.Driver")
    assert [(c["method"], c["verdict"]) for c in driver["calls"]] == [("Allocate", "conditional")]
    assert "message.size" in driver["calls"][0]["why"]

    code, out, _ = run(capsys, "kernel", "--methods", "--format", "json")
    doc = json.loads(out)
    check.validate(doc)
    assert code == 0 and "classes" not in doc
    assert sum(len(e["methods"]) for e in doc["endpoints"]) == len(kernel_description().methods)


def test_json_output_file(capsys, tmp_path):
    target = tmp_path / "kernel.json"
    code, out, _ = run(capsys, "kernel", solution(tmp_path / "sol", trusted=False), "--format", "json",
                       "--output", target)
    assert code == 1 and out == "" and json.loads(target.read_text())["schema"] == "ksm-kernel/1"


# ----------------------------------------------------------------------------- SARIF

def test_sarif_has_one_result_per_untrusted_class_and_dangerous_method(capsys, tmp_path):
    sol = solution(tmp_path / "unmarked", trusted=False)
    access = kernel_access(load(sol))
    code, out, _ = run(capsys, "kernel", sol, "--format", "sarif")
    log = json.loads(out)
    results = log["runs"][0]["results"]
    assert code == 1 and log["version"] == "2.1.0"
    expected = [(r.cls, c.label) for r in gate(access) for c in r.dangerous((ALWAYS,))]
    assert len(results) == len(expected) and {r["ruleId"] for r in results} == {"LNT021"}
    assert {cls for cls, _ in expected} == {"demo.App"}      # Einit: trusted by default; demo.Driver: conditional
    for r, (cls, label) in zip(results, expected):
        assert r["message"]["text"].startswith(f"{cls} is not marked trusted") and label in r["message"]["text"]
        where = r["locations"][0]["physicalLocation"]
        assert where["artifactLocation"]["uri"] == "einit/src/security.psl"
        assert where["region"]["startLine"] == 13    # the binding that grants it
    assert len({r["partialFingerprints"]["ksmFindingHash/v1"] for r in results}) == len(results)

    code, out, _ = run(capsys, "kernel", solution(tmp_path / "marked"), "--format", "sarif")
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []


def test_sarif_points_at_the_section_that_grants(capsys, tmp_path):
    sol = solution(tmp_path, trusted=False)
    code, out, _ = run(capsys, "kernel", sol, "--format", "sarif", "--class", "demo.Driver")
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []
    policy = POLICY.format(einit=TRUSTED, app=TRUSTED)
    conditional = "method=Allocate { assert (message.size < 4096) }"
    assert conditional in policy
    (tmp_path / "einit/src/security.psl").write_text(policy.replace(conditional, "method=Allocate { grant () }"))
    code, out, _ = run(capsys, "kernel", sol, "--format", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    assert code == 1 and len(results) == 1 and "vmm.VMM.Allocate" in results[0]["message"]["text"]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (16, 5)     # the `match`, not its binding


# ----------------------------------------------------------------------------- the exit status

def test_exit_status_gates_on_untrusted_dangerous_grants(capsys, tmp_path):
    trusted = solution(tmp_path / "marked")
    code, out, _ = run(capsys, "kernel", trusted)
    assert code == 0
    assert "trust: trusted: Einit, demo.App; untrusted: demo.Driver" in out
    assert "Einit (trusted)" in out and "demo.App (trusted)" in out
    assert "no untrusted class is granted a potentially dangerous kernel method" in out

    unmarked = solution(tmp_path / "unmarked", trusted=False)
    code, out, _ = run(capsys, "kernel", unmarked)
    assert code == 1 and "1 class not marked trusted is granted" in out and ": demo.App" in out
    assert run(capsys, "kernel", unmarked, "--class", "demo.Driver")[0] == 0      # only the classes shown
    assert run(capsys, "kernel", unmarked, "--trusted", "demo.App")[0] == 0


def test_a_suppression_where_a_grant_is_made_accepts_it(capsys, tmp_path):
    """One notion of accepted risk: `ksm: disable=LNT021` where the grant is made counts for `ksm kernel` too."""
    unmarked = solution(tmp_path, trusted=False)
    policy = (tmp_path / "einit/src/security.psl").read_text()
    lines = policy.splitlines()
    granting = next(i for i, line in enumerate(lines) if line.startswith("request src=demo.App dst=kl.core.Core"))
    lines[granting] += "  // ksm: disable=LNT021 accepted for this test"
    (tmp_path / "einit/src/security.psl").write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "kernel", unmarked)
    assert code == 0 and "accepted by a suppression where granted" in out and "accepted where granted" in out
    code, out, _ = run(capsys, "kernel", unmarked, "--format", "json")
    app = next(c for c in json.loads(out)["classes"] if c["class"] == "demo.App")
    assert any(c["accepted"] for c in app["calls"]) and json.loads(out)["ok"]


def test_a_broken_solution_exits_1(capsys, tmp_path):
    (tmp_path / "security.psl").write_text("use EDL kl.core.Core\nrequest {{ grant () }\n")
    code, out, err = run(capsys, "kernel", tmp_path / "security.psl")
    assert code == 1 and out == "" and "error" in err


def test_help_says_what_the_exit_status_means(capsys):
    code, out, _ = run(capsys, "kernel", "--help")
    assert code == 0 and "exit status" in out and "ksm kernel --methods" in out


def test_trusted_classes_from_ksm_toml(capsys, tmp_path):
    """`[solution] trusted = [...]` in ksm.toml marks classes for every command; a typo is a warning."""
    unmarked = solution(tmp_path, trusted=False)
    assert run(capsys, "kernel", unmarked)[0] == 1
    (tmp_path / "ksm.toml").write_text('[solution]\ntrusted = ["demo.App"]\n')
    assert run(capsys, "kernel", unmarked)[0] == 0
    (tmp_path / "ksm.toml").write_text('[solution]\ntrusted = ["demo.Ap"]\n')
    assert run(capsys, "kernel", unmarked)[0] == 1
    code, out, err = run(capsys, "check", unmarked)
    assert "KRN003" in out + err and "did you mean demo.App" in out + err
    (tmp_path / "ksm.toml").write_text('[solution]\ntrusted = "demo.App"\n')
    code, out, err = run(capsys, "kernel", unmarked)
    assert code == 2 and "trusted" in err
