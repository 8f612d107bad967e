"""Syntax seen in public KasperskyOS solutions loads with zero errors (see tests/corpus/INDEX.md)."""
from pathlib import Path

import pytest

from policy_lang import LoadOptions, load

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())
DEFINES = {"ginger_in_plain_psl": {"BOARD": "rpi4"}}
EXPECTED_WARNINGS = {
    "generated_edl": {"CMP002"},                      # EDL generated at build time: opaque, not an error
    "build_placeholders": {"TPL001", "TPL007"},       # placeholders and generator expressions without values
}


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_corpus_case_loads(case):
    sol = load(case, LoadOptions(defines=DEFINES.get(case.name, {})))
    assert [d.render() for d in sol.diagnostics if d.severity.value == "error"] == []
    warned = {d.code for d in sol.diagnostics if d.severity.value == "warning"}
    assert warned == EXPECTED_WARNINGS.get(case.name, set())
    assert sol.bindings


def test_ginger_branches_select_different_text():
    case = CORPUS / "ginger_in_plain_psl"
    a = load(case, LoadOptions(defines={"BOARD": "rpi4"}))
    b = load(case, LoadOptions(defines={"BOARD": "rock3a"}))
    assert not any(d.severity.value == "error" for d in a.diagnostics + b.diagnostics)
    assert "demo.PinCtrl" in b.used_edl and "demo.PinCtrl" not in a.used_edl
