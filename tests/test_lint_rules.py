"""The lint catalogue: every rule fires on its bad example and is silent on its good one,
on every bundled model, and in the edge cases a user relies on; counterexample-backed
findings are replayed through the decision function."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import ksm
from ksm.events import Event
from ksm.lint import Example, LintConfig, all_rules, lint
from ksm.lint.docs import rule_page, rules_table
from ksm.lint.examples import lint_example, materialize
from policy_lang import LoadOptions, load

ROOT = Path(__file__).resolve().parent.parent
RULES = all_rules()
PRE = "use demo.prelude._\n\n"
PUT = "request src=demo.Client dst=demo.Server endpoint=core.store method=Put"


def codes(policy: str, init: str | None = None) -> list[str]:
    return [d.code for d in lint_example(Example(policy, init)).findings]


@pytest.mark.parametrize("code", list(RULES))
def test_rule_fires_on_its_bad_example(code):
    found = lint_example(RULES[code].bad).findings
    assert code in [d.code for d in found], [d.render() for d in found]
    assert all(d.span is not None for d in found if d.code == code)


@pytest.mark.parametrize("code", list(RULES))
def test_good_example_is_clean(code):
    found = lint_example(RULES[code].good).findings
    assert found == [], [d.render() for d in found]


def test_catalogue_codes_and_metadata():
    assert len([r for r in RULES.values() if r.check is not None]) >= 18
    names = [r.name for r in RULES.values()]
    assert len(names) == len(set(names))
    for r in RULES.values():
        assert re.fullmatch(r"[A-Z]{3}\d{3}", r.code) and re.fullmatch(r"[a-z][a-z0-9-]+", r.name)
        assert r.why and r.hint and r.title


@pytest.mark.parametrize("code", list(RULES))
def test_rule_page_is_up_to_date(code):
    """docs/lint/CODE.md is generated (python -m ksm.lint.docs); regenerate after changing a rule."""
    assert (ROOT / "docs" / "lint" / f"{code}.md").read_text(encoding="utf-8") == rule_page(code)


def test_lint_doc_lists_every_rule():
    text = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    assert rules_table() in text


# ------------------------------------------------------------------ bundled models
def _showcase() -> ksm.Solution:
    defines = dict(line.split("=", 1) for line in (ROOT / "models/showcase/defines.txt").read_text().split())
    return load(ROOT / "models/showcase", LoadOptions(defines=defines))


def _config_of(folder: Path) -> LintConfig:
    from ksm.lint.config import load_config

    config, problems = load_config(folder)
    assert problems == []
    return config


@pytest.mark.parametrize("model", ["echo", "smart_lock", "showcase"])
def test_linter_is_silent_on_the_bundled_models(model):
    sol = _showcase() if model == "showcase" else load(ROOT / "models" / model)
    result = lint(sol, _config_of(ROOT / "models" / model))
    assert not result.crashed and not result.skipped
    shown = [d for d in result.findings if d.severity.value != "note"]
    assert shown == [], [d.render() for d in shown]


def test_flawed_model_lint_catches_flaw_one():
    """FLAW 1 (any process may ask VerifyPin) shows up as a call the crypto service can make but
    never get an answer to; it is the only finding, and the decision function agrees."""
    sol = load(ROOT / "models/smart_lock_flawed")
    result = lint(sol)
    assert [d.code for d in result.findings] == ["LNT006"]
    assert "lock.Crypto -> lock.KeyStore vault.secrets.VerifyPin" in result.findings[0].message
    from ksm.structure import with_defaults

    method = next(m for m in sol.interfaces["lock.Secrets"].methods if m.name == "VerifyPin")
    module = ksm.SecurityModule(sol)
    module.boot()
    assert module.decide(Event.request("lock.Crypto", "lock.KeyStore", "vault.secrets", "VerifyPin",
                                       with_defaults(method.in_params, {})))
    for ok in (0, 1):
        assert not module.decide(Event.response("lock.KeyStore", "lock.Crypto", "vault.secrets", "VerifyPin",
                                                with_defaults(method.out_params, {"ok": ok})))


# ------------------------------------------------------------------ replayed findings
def _module(tmp_path, example: Example) -> ksm.SecurityModule:
    module = ksm.SecurityModule(load(materialize(example, tmp_path / "sol")))
    module.boot()
    return module


def test_dead_channel_finding_is_confirmed_by_the_decision_function(tmp_path):
    r = RULES["LNT005"]
    module = _module(tmp_path, r.bad)
    for text in ("", "x" * 64):
        for level in (0, 7, 255):
            assert not module.decide(Event.request("demo.Client", "demo.Spare", "log", "Write",
                                                   {"level": level, "text": text}))


def test_dead_channel_needs_a_proof_not_a_guess():
    """A request granted only for some messages keeps the channel alive."""
    spare = RULES["LNT005"].bad
    policy = spare.policy + "request src=demo.Client dst=demo.Spare { assert (message.level == 200) }\n" \
                            "response src=demo.Spare { grant () }\n"
    assert "LNT005" not in codes(policy, spare.init)


def test_response_never_granted_is_replayed(tmp_path):
    module = _module(tmp_path, RULES["LNT006"].bad)
    assert module.decide(Event.request("demo.Client", "demo.Logger", "log", "Write", {"level": 1, "text": "a"}))
    assert not module.decide(Event.response("demo.Client", "demo.Logger", "log", "Write", {}))


def test_error_reply_denied_for_a_method_with_error_parameters():
    policy = (PRE.replace("\n\n", "\n") .replace("use demo.prelude._", "use demo.prelude._")
              + "error src=demo.Server dst=demo.Client method=Get { deny () }\n")
    found = lint_example(Example(policy)).findings
    assert any(d.code == "LNT006" and "error reply" in d.message for d in found)


def test_execute_denied_is_the_decision_functions_boot(tmp_path):
    r = RULES["LNT002"]
    module = ksm.SecurityModule(load(materialize(r.bad, tmp_path / "sol")))
    denied = [d.event.dst for d in module.boot() if not d.granted]
    found = lint_example(r.bad).findings
    assert denied == ["demo.Server"]
    assert [d.code for d in found if d.code == "LNT002"] == ["LNT002"]
    assert "demo.Server" in found[0].message


# ------------------------------------------------------------------ edge cases
def test_edl_started_at_run_time_is_not_reported():
    policy = PRE + "use EDL demo.Spare\nexecute src=demo.Client dst=demo.Spare { grant () }\n"
    assert "LNT001" not in codes(policy)


def test_reply_and_start_up_stubs_are_not_grant_everything():
    policy = PRE + "response { grant () }\nerror { grant () }\nexecute { grant () }\n"
    assert "LNT012" not in codes(policy)


def test_grant_everything_inside_a_section_without_a_server():
    policy = PRE + "request {\n    match src=demo.Client { grant () }\n}\n"
    assert "LNT012" in codes(policy)


def test_choice_covering_every_flow_state_needs_no_default():
    door = RULES["LNT018"].good.policy
    assert "LNT013" not in codes(door)


def test_choice_on_a_boolean_with_both_arms():
    policy = PRE + f"{PUT} {{\n    choice (message.key < 10) {{\n        true : grant ()\n        false : deny ()\n    }}\n}}\n"
    assert "LNT013" not in codes(policy)
    missing = policy.replace("        false : deny ()\n", "")
    found = lint_example(Example(missing)).findings
    assert any(d.code == "LNT013" and "not covered: false" in d.message for d in found)


def test_duplicate_choice_arm_is_shadowed():
    policy = PRE + (f"{PUT} {{\n    choice (message.key < 10) {{\n        true : grant ()\n"
                    "        true : deny ()\n        _ : deny ()\n    }\n}\n")
    found = lint_example(Example(policy)).findings
    assert any(d.code == "LNT008" and "never taken" in d.message for d in found)


def test_conditional_deny_shadows_nothing():
    policy = PRE + f"{PUT} {{ grant () }}\nrequest src=demo.Client dst=demo.Server {{ deny (message.key == 3) }}\n"
    assert "LNT008" not in codes(policy)


def test_deny_section_shadows_a_binding_it_covers_through_targets():
    policy = PRE + (f"{PUT} {{ assert (message.key < 10) }}\n"
                    "request src=demo.Client dst=demo.Server interface=demo.Store { match method=Put { deny () } }\n")
    assert "LNT008" in codes(policy)


def test_duplicate_sibling_sections():
    policy = PRE + ("request src=demo.Client dst=demo.Server endpoint=core.store {\n"
                    "    match method=Put { grant () }\n    match method=Put { grant () }\n}\n")
    found = lint_example(Example(policy)).findings
    assert [d.code for d in found] == ["LNT009"] and "section repeats the one at line 4" in found[0].message


def test_same_selectors_with_different_bodies_are_not_duplicates():
    policy = PRE + f"{PUT} {{ assert (message.key < 10) }}\n{PUT} {{ assert (message.key > 2) }}\n"
    assert "LNT009" not in codes(policy)


def test_flow_enter_with_a_computed_state_keeps_transitions_alive():
    bad = RULES["LNT019"].bad.policy
    policy = bad.replace('state : "closed" }\n}', 'state : message.text }\n}')
    assert "LNT019" not in codes(policy)


def test_flow_arm_inference_needs_the_same_sid():
    bad = RULES["LNT018"].bad.policy
    other = bad.replace('"broken" : door.enter { sid : dst_sid', '"broken" : door.enter { sid : src_sid')
    assert "LNT018" not in codes(other)


def test_object_named_only_in_audit():
    policy = PRE + ('use nk.hashmap._\npolicy object keys : HashSet {\n    type Entry = UInt8\n'
                    '    config = { set_size : 4, pool_size : 1 }\n}\n'
                    'audit profile trace = { 0 : { keys : { kss : ["granted"] } } }\naudit default = trace 0\n')
    found = lint_example(Example(policy)).findings
    assert [(d.code, "only in audit" in d.message) for d in found] == [("LNT014", True)]


def test_rules_skipped_when_the_solution_has_errors():
    result = lint_example(RULES["PSL003"].bad)
    assert result.skipped and [d.code for d in result.findings] == ["PSL003"]


def test_configuration_disables_and_reweights():
    bad = RULES["LNT016"].bad
    assert lint_example(bad, LintConfig(disable=frozenset({"LNT016"}))).findings == []
    from policy_lang.diagnostics import Severity

    result = lint_example(bad, LintConfig(severity=(("LNT016", Severity.ERROR),)))
    assert [d.severity for d in result.findings] == [Severity.ERROR]
    assert lint_example(bad, LintConfig(enable=frozenset({"LNT014"}))).findings == []


def test_front_end_errors_cannot_be_disabled():
    result = lint_example(RULES["PSL003"].bad, LintConfig(disable=frozenset({"PSL003"})))
    assert [d.code for d in result.findings] == ["PSL003"]
