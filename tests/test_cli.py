"""`ksm check` as CI uses it: exit codes, text and JSON output, usage errors."""
import json
import shutil
from pathlib import Path

from ksm.cli import codes_markdown, main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok_example_exits_zero(capsys):
    code, out, _ = run(capsys, "check", str(ROOT / "models" / "echo"))
    assert code == 0
    assert "2 classes" in out and "OK: 0 error(s)" in out


def test_check_json_is_one_document(capsys):
    code, out, _ = run(capsys, "check", str(ROOT / "models" / "echo"), "--format", "json", "--dump")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True
    assert doc["summary"]["instances"] == 2
    assert doc["model"]["classes"]["echo.Server"]["endpoints"][0] == {
        "name": "pingComp.pingImpl", "riid": 0, "interface": "echo.Ping"}


def test_check_reports_errors_with_position_and_exits_one(tmp_path, capsys):
    sol = tmp_path / "sol"
    shutil.copytree(ROOT / "models" / "echo", sol)
    psl = sol / "einit" / "src" / "security.psl"
    text = psl.read_text().replace("method=Ping {\n    assert", "method=Pong {\n    assert", 1)
    psl.write_text(text)
    line = text[: text.index("method=Pong")].count("\n") + 1
    code, out, _ = run(capsys, "check", str(sol))
    assert code == 1
    assert f"security.psl:{line}:" in out and "error[PSL003]" in out and "hint:" in out
    assert "^" in out  # source excerpt with a caret


def test_check_json_errors(tmp_path, capsys):
    (tmp_path / "security.psl").write_text("use nk.base._\nrequest { grant ( }\n")
    code, out, _ = run(capsys, "check", str(tmp_path), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    syn = [d for d in doc["diagnostics"] if d["code"].startswith("SYN")]
    assert syn and syn[0]["location"]["line"] == 2 and syn[0]["hint"]


def test_missing_policy_is_a_diagnostic_not_a_crash(tmp_path, capsys):
    code, out, _ = run(capsys, "check", str(tmp_path))
    assert code == 1 and "INC001" in out


def test_usage_error_exits_two(capsys):
    # main() returns the exit status (it never raises SystemExit), so embedding code and tests see it
    assert main(["check", "--format", "yaml"]) == 2
    assert main(["check", "-D", "=x"]) == 2


def test_no_command_prints_help_and_exits_two(capsys):
    assert main([]) == 2


def test_docs_list_every_diagnostic_code():
    doc = (ROOT / "docs" / "diagnostics.md").read_text()
    assert codes_markdown() in doc, "regenerate the table with: ksm codes --format markdown"
