"""The field corpus manifest and its runner (tools/field_check.py)."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "field_check.py"


def _tool():
    spec = importlib.util.spec_from_file_location("field_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def test_manifest_lists_at_least_thirty_solutions_from_fifteen_repositories():
    entries = _tool().read_manifest(ROOT / "tools" / "field_corpus.toml")
    assert len(entries) >= 30 and len({e.repo for e in entries}) >= 15
    assert len({e.name for e in entries}) == len(entries)
    for e in entries:
        assert re.fullmatch(r"[0-9a-f]{40}", e.commit), e.name
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", e.repo), e.name
        assert e.policy.endswith((".psl", ".psl.in")) and e.descriptions, e.name


def test_runner_checks_tests_and_verifies_each_entry_found(tmp_path, capsys):
    tool = _tool()
    checkout = tmp_path / "field" / "someone+blinker"
    shutil.copytree(ROOT / "models" / "gpio_blinker", checkout)
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        '[[solution]]\nname = "blinker"\nrepo = "someone/blinker"\ncommit = "' + "0" * 40 + '"\n'
        'target = "."\npolicy = "einit/src/security.psl.in"\ndescriptions = ["resources"]\n\n'
        '[[solution]]\nname = "absent"\nrepo = "nobody/nothing"\ncommit = "' + "1" * 40 + '"\n'
        'target = "."\npolicy = "einit/src/security.psl"\ndescriptions = ["resources"]\n')
    out_json = tmp_path / "out.json"
    assert tool.main([str(tmp_path / "field"), "--manifest", str(manifest), "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "1 solutions found of 2: 1 load with zero errors; PAL 12/12 cases passed; verify OK on 1" in table
    rows = {r["name"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert rows["blinker"]["errors"] == {} and rows["blinker"]["verify"] == "OK" and rows["blinker"]["policy_ok"]
    assert rows["absent"]["found"] is False
