"""Lint configuration files (ksm.toml, pyproject.toml), command-line overrides, and baselines."""
from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

import ksm
from ksm.lint import Example, LintConfig, lint
from ksm.lint.baseline import Baseline, load_baseline, write_baseline
from ksm.lint.config import find_config, load_config, merge_cli
from ksm.lint.examples import POLICY, materialize
from ksm.lint.runner import LintResult
from policy_lang.diagnostics import Diagnostic, Severity, Span, code_info


def t(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(t(text), encoding="utf-8")
    return path


def where(diags: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in diags]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root (holds .git) with a solution folder two levels down."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "sol" / "einit").mkdir(parents=True)
    return tmp_path / "repo"


# ----------------------------------------------------------------------------- discovery

def test_no_file_gives_defaults(repo):
    config, diags = load_config(repo / "sol")
    assert config == LintConfig() and diags == []


def test_found_upward_from_a_folder_or_a_file(repo):
    cfg = write(repo / "ksm.toml", """
        [lint]
        disable = ["LNT016"]
    """)
    policy = write(repo / "sol" / "einit" / "security.psl", "")
    for start in (repo / "sol" / "einit", policy):
        config, diags = load_config(start)
        assert diags == []
        assert config.disable == {"LNT016"}
        assert Path(config.source).resolve() == cfg.resolve()


def test_nearest_file_wins(repo):
    write(repo / "ksm.toml", '[lint]\ndisable = ["LNT016"]\n')
    write(repo / "sol" / "ksm.toml", '[lint]\ndisable = ["LNT014"]\n')
    assert load_config(repo / "sol" / "einit")[0].disable == {"LNT014"}


def test_ksm_toml_wins_over_pyproject_in_the_same_folder(repo):
    write(repo / "ksm.toml", '[lint]\ndisable = ["LNT016"]\n')
    write(repo / "pyproject.toml", '[tool.ksm.lint]\ndisable = ["LNT014"]\n')
    assert load_config(repo / "sol")[0].disable == {"LNT016"}


def test_pyproject_table(repo):
    write(repo / "pyproject.toml", """
        [project]
        name = "x"

        [tool.ksm.lint]
        select = ["LNT016"]
    """)
    config, diags = load_config(repo / "sol")
    assert diags == [] and config.enable == {"LNT016"}


def test_pyproject_without_the_table_is_passed_over(repo):
    write(repo / "ksm.toml", '[lint]\ndisable = ["LNT016"]\n')
    write(repo / "sol" / "pyproject.toml", '[project]\nname = "x"\n[tool.other]\na = 1\n')
    assert load_config(repo / "sol" / "einit")[0].disable == {"LNT016"}


def test_search_stops_at_the_repository_root(tmp_path, repo):
    write(tmp_path / "ksm.toml", '[lint]\ndisable = ["LNT016"]\n')
    assert find_config(repo / "sol") is None
    assert load_config(repo / "sol")[0] == LintConfig()


def test_ksm_toml_without_lint_table_is_found_and_gives_defaults(repo):
    cfg = write(repo / "ksm.toml", "[other]\nx = 1\n")
    config, diags = load_config(repo / "sol")
    assert diags == [] and replace(config, source=None) == LintConfig()
    assert find_config(repo / "sol") == (cfg.absolute(), ("lint",))


def test_explicit_file(tmp_path, repo):
    write(repo / "ksm.toml", '[lint]\ndisable = ["LNT016"]\n')
    other = write(tmp_path / "elsewhere" / "custom.toml", '[lint]\ndisable = ["LNT014"]\n')
    assert load_config(repo / "sol", other)[0].disable == {"LNT014"}
    py = write(tmp_path / "elsewhere" / "pyproject.toml", '[tool.ksm.lint]\ndisable = ["PSL005"]\n')
    assert load_config(repo / "sol", py)[0].disable == {"PSL005"}


# ----------------------------------------------------------------------------- keys

def test_every_key(repo):
    write(repo / "ksm.toml", """
        [lint]
        select = ["LNT016", "LNT014"]
        disable = ["PSL005"]
        fail-on = "error"
        baseline = "ci/baseline.json"
        timeout-ms = 750

        [lint.severity]
        LNT016 = "error"
        LNT014 = "note"
    """)
    config, diags = load_config(repo / "sol")
    assert diags == []
    assert config.enable == {"LNT016", "LNT014"}
    assert config.disable == {"PSL005"}
    assert config.fail_on is Severity.ERROR
    assert Path(config.baseline) == (repo / "ci" / "baseline.json").absolute()
    assert Path(config.baseline).is_absolute()
    assert config.timeout_ms == 750
    assert config.severity_of("LNT016", Severity.WARNING) is Severity.ERROR
    assert config.severity_of("LNT014", Severity.WARNING) is Severity.NOTE
    assert config.enabled("LNT016") and not config.enabled("PSL005") and not config.enabled("LNT001")


def test_aliases_and_snake_case(repo):
    write(repo / "ksm.toml", """
        [lint]
        enable = ["LNT016"]
        ignore = ["LNT014"]
        fail_on = "note"
        timeout_ms = 10
        severity = { LNT016 = "error" }
    """)
    config, diags = load_config(repo / "sol")
    assert diags == []
    assert (config.enable, config.disable, config.fail_on, config.timeout_ms) == (
        {"LNT016"}, {"LNT014"}, Severity.NOTE, 10)
    assert config.severity == (("LNT016", Severity.ERROR),)


@pytest.mark.parametrize("value, expected", [
    ("error", Severity.ERROR), ("warning", Severity.WARNING), ("note", Severity.NOTE), ("never", None),
])
def test_fail_on_values(repo, value, expected):
    write(repo / "ksm.toml", f'[lint]\nfail-on = "{value}"\n')
    assert load_config(repo / "sol")[0].fail_on is expected


def _result(config: LintConfig, *severities: Severity) -> LintResult:
    findings = [Diagnostic("LNT016", s, "m", Span("f.psl", 1, 1)) for s in severities]
    return LintResult(solution=None, findings=findings, config=config)   # type: ignore[arg-type]


def test_failing_honours_fail_on_including_never():
    all_three = (Severity.ERROR, Severity.WARNING, Severity.NOTE)
    assert len(_result(LintConfig(), *all_three).failing()) == 2
    assert len(_result(LintConfig(fail_on=Severity.ERROR), *all_three).failing()) == 1
    assert len(_result(LintConfig(fail_on=Severity.NOTE), *all_three).failing()) == 3
    assert _result(LintConfig(fail_on=None), *all_three).failing() == []
    assert not LintConfig(fail_on=None).fails(Severity.ERROR)


# ----------------------------------------------------------------------------- errors

def test_cfg001_toml_syntax_error_position(repo):
    write(repo / "ksm.toml", '[lint]\nselect = ["LNT016"]\nfail-on = = "x"\n')
    config, diags = load_config(repo / "sol")
    assert where(diags) == [("CFG001", 3, 11)]
    assert "(at line" not in diags[0].message
    assert config.source and config.disable == frozenset()


def test_cfg001_at_end_of_document(repo):
    write(repo / "ksm.toml", '[lint]\nselect = ["LNT016"\n')
    assert where(load_config(repo / "sol")[1]) == [("CFG001", 3, 1)]


def test_cfg001_broken_pyproject_that_names_ksm(repo):
    write(repo / "pyproject.toml", "[tool.ksm.lint\nselect = []\n")
    assert [d.code for d in load_config(repo / "sol")[1]] == ["CFG001"]


def test_cfg002_unknown_key_with_suggestion(repo):
    write(repo / "ksm.toml", """
        [lint]
        select = ["LNT016"]
          selcet = ["LNT014"]
    """)
    config, diags = load_config(repo / "sol")
    assert where(diags) == [("CFG002", 3, 3)]
    assert "selcet" in diags[0].message and "`select`" in diags[0].hint
    assert config.enable == {"LNT016"}                 # the rest of the file still applies


@pytest.mark.parametrize("line, column", [
    ('select = "LNT016"', 1),
    ("disable = [1, 2]", 1),
    ('severity = "error"', 1),
    ('fail-on = "sometimes"', 11),
    ("fail-on = 3", 1),
    ("baseline = 7", 1),
    ('baseline = ""', 1),
    ("timeout-ms = 0", 1),
    ("timeout-ms = -5", 1),
    ("timeout-ms = true", 1),
    ('timeout-ms = "100"', 1),
])
def test_cfg002_wrong_types(repo, line, column):
    write(repo / "ksm.toml", f"# comment\n[lint]\n{line}\n")
    config, diags = load_config(repo / "sol")
    assert where(diags) == [("CFG002", 3, column)]
    assert replace(config, source=None) == LintConfig()


def test_cfg002_bad_severity_level_points_at_the_value(repo):
    write(repo / "ksm.toml", '[lint]\n[lint.severity]\nLNT016 = "fatal"\n')
    assert where(load_config(repo / "sol")[1]) == [("CFG002", 3, 10)]


def test_cfg002_alias_given_twice(repo):
    write(repo / "ksm.toml", '[lint]\nselect = ["LNT016"]\nenable = ["LNT014"]\n')
    config, diags = load_config(repo / "sol")
    assert where(diags) == [("CFG002", 3, 1)] and "repeats `select`" in diags[0].message
    assert config.enable == {"LNT016"}


def test_cfg002_lint_not_a_table(repo):
    write(repo / "ksm.toml", 'lint = "yes"\n')
    assert where(load_config(repo / "sol")[1]) == [("CFG002", 1, 1)]


def test_cfg003_unknown_codes_in_lists_with_positions(repo):
    write(repo / "ksm.toml", """
        [lint]
        select = ["LNT016",
                  "LNT9999"]
        disable = ["PSL005", "lnt016"]
    """)
    config, diags = load_config(repo / "sol")
    assert where(diags) == [("CFG003", 3, 11), ("CFG003", 4, 22)]
    assert "LNT9999" in diags[0].message
    assert "LNT016" in diags[1].hint                   # close match, case aside
    assert config.enable == {"LNT016"} and config.disable == {"PSL005"}


def test_cfg003_unknown_code_in_severity_table(repo):
    write(repo / "ksm.toml", """
        [lint]
        disable = []

        [lint.severity]
        LNT016 = "error"
        LNX016 = "note"
    """)
    config, diags = load_config(repo / "sol")
    assert where(diags) == [("CFG003", 6, 1)]
    assert "did you mean" in diags[0].hint
    assert config.severity == (("LNT016", Severity.ERROR),)


def test_cfg003_in_inline_severity_table_and_pyproject(repo):
    write(repo / "pyproject.toml", """
        [tool.ksm.lint]
        severity = { LNT016 = "error", NOPE01 = "note" }
    """)
    assert where(load_config(repo / "sol")[1]) == [("CFG003", 2, 32)]


def test_front_end_codes_are_valid_in_the_configuration(repo):
    write(repo / "ksm.toml", '[lint]\ndisable = ["PSL005", "SUP001", "TPL001", "LNT900"]\n')
    assert load_config(repo / "sol")[1] == []


def test_cfg004_explicit_file_missing(tmp_path):
    config, diags = load_config(tmp_path, tmp_path / "missing.toml")
    assert where(diags) == [("CFG004", 1, 1)] and config == LintConfig()


def test_cfg001_not_utf8(repo):
    (repo / "ksm.toml").write_bytes(b'[lint]\nselect = ["\xff"]\n')
    assert where(load_config(repo / "sol")[1]) == [("CFG001", 2, 12)]


def test_config_codes_are_catalogued():
    for code in ("CFG001", "CFG002", "CFG003", "CFG004", "BAS001", "BAS002"):
        info = code_info(code)
        assert info.severity is Severity.ERROR and info.hint and info.title


# ----------------------------------------------------------------------------- command line

def test_merge_cli_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = LintConfig(enable=frozenset({"LNT001"}), disable=frozenset({"LNT002"}), source="ksm.toml")
    merged = merge_cli(base, select=["LNT016,LNT014", " PSL005 "], disable=["LNT003"], fail_on="never",
                       baseline="b.json", timeout_ms=99)
    assert merged.enable == {"LNT016", "LNT014", "PSL005"}
    assert merged.disable == {"LNT002", "LNT003"}          # the file's disable still holds
    assert merged.fail_on is None
    assert merged.baseline == str(tmp_path / "b.json")
    assert merged.timeout_ms == 99 and merged.source == "ksm.toml"


def test_merge_cli_nothing_given_keeps_config():
    base = LintConfig(fail_on=Severity.ERROR)
    assert merge_cli(base) == base
    assert merge_cli(base, fail_on=Severity.NOTE).fail_on is Severity.NOTE
    assert merge_cli(base, fail_on="warning").fail_on is Severity.WARNING
    assert merge_cli(base, select="LNT016").enable == {"LNT016"}
    with pytest.raises(ValueError):
        merge_cli(base, fail_on="sometimes")


# ----------------------------------------------------------------------------- baselines

def finding(line: int, message: str = "audit profiles (trace) are declared", file: str = "/s/einit/a.psl",
            code: str = "LNT016") -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, Span(file, line, 1))


def test_split_matches_with_multiplicity():
    known = [finding(3), finding(9)]
    baseline = Baseline.of(known, "/s")
    now = [finding(4), finding(10), finding(20), finding(5, code="LNT014")]
    new, old = baseline.split(now, "/s")
    assert [d.span.line for d in old] == [4, 10]
    assert [(d.code, d.span.line) for d in new] == [("LNT016", 20), ("LNT014", 5)]


def test_split_ignores_locations_inside_messages():
    baseline = Baseline.of([finding(3, "see x.psl:3:4 and y.idl:12")], "/s")
    new, old = baseline.split([finding(30, "see x.psl:30:1 and y.idl:2")], "/s")
    assert new == [] and len(old) == 1


def test_split_is_per_file_relative_to_the_root():
    baseline = Baseline.of([finding(3, file="/s/einit/a.psl")], "/s")
    assert baseline.split([finding(3, file="/s/einit/b.psl")], "/s")[1] == []
    assert len(baseline.split([finding(3, file="/t/einit/a.psl")], "/t")[1]) == 1


def test_write_and_load_round_trip(tmp_path):
    findings = [finding(9), finding(3), finding(1, "b", code="LNT014", file="/s/z.psl"), finding(2, "a")]
    path = tmp_path / "baseline.json"
    written = write_baseline(findings, "/s", path)
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["tool"] == "ksm"
    assert data["findings"] == [
        {"code": "LNT016", "file": "einit/a.psl", "message": "a", "count": 1},
        {"code": "LNT016", "file": "einit/a.psl", "message": "audit profiles (trace) are declared", "count": 2},
        {"code": "LNT014", "file": "z.psl", "message": "b", "count": 1},
    ]
    loaded, diags = load_baseline(path)
    assert diags == [] and loaded.counts == written.counts and len(loaded) == 4
    first = path.read_text()
    write_baseline(list(reversed(findings)), "/s", path)
    assert path.read_text() == first                     # stable: order of findings does not matter


@pytest.mark.parametrize("text, line, column", [
    ("{\n  \"version\": 1,\n  \"findings\": [,]\n}\n", 3, 16),
    ("", 1, 1),
    ("not json", 1, 1),
])
def test_bas001_not_json(tmp_path, text, line, column):
    path = tmp_path / "b.json"
    path.write_text(text)
    baseline, diags = load_baseline(path)
    assert baseline is None and where(diags) == [("BAS001", line, column)]


def test_bas001_missing(tmp_path):
    baseline, diags = load_baseline(tmp_path / "nope.json")
    assert baseline is None and where(diags) == [("BAS001", 1, 1)]
    assert "not found" in diags[0].message


@pytest.mark.parametrize("data", [
    [],
    {"version": 2, "tool": "ksm", "findings": []},
    {"tool": "ksm", "findings": []},
    {"version": 1, "tool": "other", "findings": []},
    {"version": 1, "tool": "ksm", "findings": {}},
])
def test_bas002_wrong_shape(tmp_path, data):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    baseline, diags = load_baseline(path)
    assert baseline is None and where(diags) == [("BAS002", 1, 1)]


def test_bas002_bad_entries_are_reported_where_they_are_and_skipped(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(t("""
        {
          "version": 1,
          "tool": "ksm",
          "findings": [
            {"code": "LNT016", "file": "a.psl", "message": "m", "count": 2},
            {"code": "LNT016", "file": "a.psl", "message": "m"},
            "LNT016",
            {"code": "LNT016", "file": 3, "message": "m", "count": 1},
            {"code": "LNT016", "file": "a.psl", "message": "m", "count": 0}
          ]
        }
    """))
    baseline, diags = load_baseline(path)
    assert where(diags) == [("BAS002", 6, 5), ("BAS002", 7, 5), ("BAS002", 8, 5), ("BAS002", 9, 5)]
    assert baseline is not None and baseline.counts == {("LNT016", "a.psl", "m"): 2}


# ----------------------------------------------------------------------------- end to end

AUDIT = 'audit profile trace = { 0 : { base : { kss : ["granted", "denied"] } } }'


def test_baseline_keeps_matching_after_lines_move(tmp_path):
    root = materialize(Example(f"use demo.prelude._\n\n{AUDIT}\n"), tmp_path / "x")
    first = lint(ksm.load(root))
    assert [d.code for d in first.findings] == ["LNT016"]
    path = tmp_path / "baseline.json"
    write_baseline(first.findings, first.solution.root, path)
    (root / POLICY).write_text(f"use demo.prelude._\n\n\n\n// moved down\n{AUDIT}\n", encoding="utf-8")
    baseline, diags = load_baseline(path)
    assert diags == []
    again = lint(ksm.load(root), baseline=baseline)
    assert again.findings == [] and [d.span.line for d in again.baselined] == [6]
    assert again.failing() == []


def test_config_file_drives_the_lint(tmp_path):
    root = materialize(Example(f"use demo.prelude._\n\n{AUDIT}\n"), tmp_path / "x")
    (root / ".git").mkdir()
    write(root / "ksm.toml", '[lint]\nfail-on = "error"\n[lint.severity]\nLNT016 = "note"\n')
    config, diags = load_config(root)
    assert diags == []
    result = lint(ksm.load(root), config)
    assert [(d.code, d.severity) for d in result.findings] == [("LNT016", Severity.NOTE)]
    assert result.failing() == []
    disabled = lint(ksm.load(root), merge_cli(config, disable=["LNT016"]))
    assert disabled.findings == []
