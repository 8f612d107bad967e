"""LNT010 condition-always-true and LNT011 condition-always-false.

Cases go through the linter as a user runs it (an example policy over the skeleton
solution, or the skeleton plus an extra IDL for struct, union and multi-method
cases), and every always-false `assert` is replayed through the decision function:
the findings must be facts about decisions, not about the linter's own encoding.
"""
from __future__ import annotations

import operator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ksm
from ksm.lint.catalogue import Example, all_rules
from ksm.lint.config import LintConfig
from ksm.lint.examples import lint_example, materialize
from ksm.lint.rules.conditions import interval_verdict, show
from ksm.lint.runner import lint
from policy_lang.resolve import load

CODES = ("LNT010", "LNT011")
HEAD = "use demo.prelude._\n\n"
PUT = "request src=demo.Client dst=demo.Server endpoint=core.store method=Put {{\n    {}\n}}\n"
UINT8 = "key is UInt8 (0..255)"
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}

# Extra interfaces for what the skeleton's Store cannot show: nested structs, a
# sequence, a union, signed fields (Deep), and two methods whose `n` differ in type (Pair).
DEEP_IDL = """package demo.Deep

struct Inner { SInt8 level; UInt16 code; }
struct Req { UInt32 count; Inner inner; sequence<UInt16, 8> items; string<16> name; }
union Pick { UInt8 small; UInt64 big; }

interface {
    Send(in Req req, in Pick pick);
}
"""
PAIR_IDL = "package demo.Pair\n\ninterface {\n    Narrow(in UInt8 n);\n    Wide(in UInt16 n);\n}\n"
VAULT_EDL = "task class demo.Vault\n\nendpoints {\n    deep : demo.Deep\n    pair : demo.Pair\n}\n"
VAULT_HEAD = HEAD + "use EDL demo.Vault\n\n"


def found(result) -> list[tuple[str, str]]:
    """(code, message) of this module's findings; a crashed rule fails the test."""
    assert not result.crashed, [d.message for d in result.findings if d.code == "LNT900"]
    return [(d.code, d.message) for d in result.findings if d.code in CODES]


def put(condition_stmt: str) -> list[tuple[str, str]]:
    """Lint one statement in a Put binding of the skeleton."""
    return found(lint_example(Example(HEAD + PUT.format(condition_stmt))))


def vault_root(tmp: Path, bindings: str) -> Path:
    root = materialize(Example(VAULT_HEAD + bindings), tmp / "vault")
    (root / "resources" / "idl" / "Deep.idl").write_text(DEEP_IDL)
    (root / "resources" / "idl" / "Pair.idl").write_text(PAIR_IDL)
    (root / "resources" / "edl" / "Vault.edl").write_text(VAULT_EDL)
    return root


def vault(tmp_path: Path, bindings: str) -> list[tuple[str, str]]:
    sol = load(vault_root(tmp_path, bindings))
    assert sol.ok, [d.render() for d in sol.diagnostics]
    return found(lint(sol))


# ============================================================================ catalogue
@pytest.mark.parametrize("code", CODES)
def test_catalogue_examples(code):
    r = all_rules()[code]
    assert r.category == "conditions"
    assert any(c == code for c, _ in found(lint_example(r.bad)))
    assert not any(c == code for c, _ in found(lint_example(r.good)))


# ============================================================================ interval path
def test_always_true_comparison_names_the_bound():
    assert put("assert (message.key < 300)") == [
        ("LNT010", f"condition message.key < 300 is always true: {UINT8}; the assert never denies")]


def test_always_false_comparison():
    assert put("assert (message.key > 300)") == [
        ("LNT011", f"condition message.key > 300 is always false: {UINT8}; the assert denies every event it "
                   "applies to")]


@pytest.mark.parametrize("stmt, code", [
    ("assert (message.key != 300)", "LNT010"),       # != with a literal outside the range
    ("assert (message.key == -1)", "LNT011"),
    ("assert (300 > message.key)", "LNT010"),        # the literal on the left
    ("assert (0 > message.key)", "LNT011"),
    ("assert (message.key >= 0)", "LNT010"),         # the boundary itself
    ("assert (message.key <= 255)", "LNT010"),
    ("assert (message.key > 255)", "LNT011"),
])
def test_interval_edges(stmt, code):
    assert [c for c, _ in put(stmt)] == [code]


@pytest.mark.parametrize("stmt", [
    "assert (message.key < 100)", "assert (message.key != 7)", "assert (message.key < 255)",
    "assert (message.key >= 1)", "assert (message.key == 255)", "grant ()", "deny ()",
])
def test_interval_silent(stmt):
    assert put(stmt) == []


def test_signed_error_parameter():
    rc = "rc is SInt32 (-2147483648..2147483647)"
    always = found(lint_example(Example(HEAD + "error src=demo.Server method=Get {\n"
                                               "    assert (message.rc >= -2147483648)\n"
                                               "    assert (message.rc > 2147483647)\n"
                                               "    assert (message.rc < 0)\n}\n")))
    assert sorted(always) == [
        ("LNT010", f"condition message.rc >= -2147483648 is always true: {rc}; the assert never denies"),
        ("LNT011", f"condition message.rc > 2147483647 is always false: {rc}; the assert denies every event it "
                   "applies to"),
    ]


# ============================================================================ statements
def test_deny_that_never_denies_and_one_that_always_does():
    assert put("deny (message.key > 255)") == [
        ("LNT011", f"condition message.key > 255 is always false: {UINT8}; the deny never denies")]
    assert put("deny (message.key >= 0)") == [
        ("LNT010", f"condition message.key >= 0 is always true: {UINT8}; the deny denies every event it applies to")]
    assert put("deny (message.key >= 10)") == []


def test_choice_on_a_comparison():
    never = put("choice (message.key > 255) {\n        true : deny ()\n        _ : grant ()\n    }")
    assert never == [("LNT011", f"condition message.key > 255 is always false: {UINT8}; the choice never selects "
                                "`true`")]
    always = put("choice (message.key <= 255) {\n        true : grant ()\n        false : deny ()\n    }")
    assert [c for c, _ in always] == ["LNT010"]
    assert put("choice (message.key < 8) {\n        true : grant ()\n        _ : deny ()\n    }") == []


def test_literal_only_conditions():
    assert put("assert (1 < 2)") == [
        ("LNT010", "condition 1 < 2 is always true: it only depends on constants; the assert never denies")]
    assert [c for c, _ in put("deny (2 < 1)")] == ["LNT011"]
    # an execute binding has no targets; a condition without message fields is still decided
    execute = found(lint_example(Example(HEAD + "execute dst=demo.Client {\n    assert (1 + 1 == 3)\n}\n")))
    assert [c for c, _ in execute] == ["LNT011"]


# ============================================================================ nesting
def test_inner_comparison_is_reported_not_its_parents():
    bare = f"condition message.key < 300 is always true: {UINT8}"
    assert put('assert ((message.key < 300) && (message.text == "a"))') == [("LNT010", bare)]
    # the || is true because of the comparison: only the comparison is reported
    assert put('assert ((message.key < 300) || (message.text == "a"))') == [("LNT010", bare)]
    assert put("assert (!(message.key < 300))") == [("LNT010", bare)]


def test_boolean_operator_constant_by_itself():
    assert put("assert ((message.key < 10) && (message.key > 20))") == [
        ("LNT011", f"condition (message.key < 10) && (message.key > 20) is always false: {UINT8}; the assert "
                   "denies every event it applies to")]
    assert [c for c, _ in put("assert ((message.key < 10) || (message.key >= 10))")] == ["LNT010"]
    assert put("assert ((message.key < 10) || (message.key > 20))") == []


# ============================================================================ Z3 path
@pytest.mark.parametrize("stmt, code", [
    ("assert (message.key + 1 > 0)", "LNT010"),
    ("assert (message.key * 2 > 510)", "LNT011"),
    ("assert (size (message.text) <= 32)", "LNT010"),
    ("assert (size (message.text) > 32)", "LNT011"),
    ('assert (message.text == "0123456789abcdef0123456789abcdef!")', "LNT011"),    # 33 characters
    ("assert (pred.empty (message.text) || (size (message.text) > 0))", "LNT010"),
])
def test_z3_path_fires(stmt, code):
    assert [c for c, _ in put(stmt)] == [code]


def test_z3_message_names_the_types_read():
    assert put("assert (size (message.text) <= 32)") == [
        ("LNT010", "condition size (message.text) <= 32 is always true: text is string<32>; the assert never "
                   "denies")]


@pytest.mark.parametrize("stmt", [
    "assert (message.key + 1 > 200)",
    "assert (size (message.text) < 32)",
    'assert (message.text == "a")',
    "assert (message.key * 18446744073709551615 < 0)",     # never true, but overflows: runs incorrectly
    'assert (1 < "a")',                                    # runs incorrectly on every message
    "assert (message.key)",                                # not a Boolean: runs incorrectly
    "assert (src_sid != dst_sid)",
    "assert (src_sid * 4294967296 * 4294967296 >= 0)",     # overflows for every SID: runs incorrectly
])
def test_z3_path_silent(stmt):
    assert put(stmt) == []


def test_sids_start_at_one():
    assert put("assert (src_sid > 0)") == [
        ("LNT010", "condition src_sid > 0 is always true: SIDs are 1 and up; the assert never denies")]


# ============================================================================ targets
def test_section_uses_its_own_targets():
    policy = HEAD + "request src=demo.Client dst=demo.Server {\n    match method=Put {\n" \
                    "        assert (message.key < 300)\n    }\n}\n"
    assert [c for c, _ in found(lint_example(Example(policy)))] == ["LNT010"]


def test_binding_over_several_methods():
    # Get and Put both carry a UInt8 key: constant for every target
    both = HEAD + "request src=demo.Client dst=demo.Server {\n    assert (message.key <= 255)\n}\n"
    assert [c for c, _ in found(lint_example(Example(both)))] == ["LNT010"]
    # Get has no text: reading it runs incorrectly there, so the condition is not constant
    some = HEAD + "request src=demo.Client dst=demo.Server endpoint=core.store {\n" \
                  "    assert (size (message.text) <= 32)\n}\n"
    assert found(lint_example(Example(some))) == []


def test_constant_for_some_targets_only(tmp_path):
    # Narrow's n is UInt8, Wide's is UInt16: `< 256` holds for one of them only
    binding = "request dst=demo.Vault endpoint=pair {{\n    assert ({})\n}}\n"
    assert vault(tmp_path / "a", binding.format("message.n < 256")) == []
    assert vault(tmp_path / "b", binding.format("message.n + 0 < 256")) == []
    assert vault(tmp_path / "c", binding.format("message.n > 255")) == []
    assert vault(tmp_path / "d", binding.format("message.n < 70000")) == [
        ("LNT010", "condition message.n < 70000 is always true: n is UInt8 (0..255); n is UInt16 (0..65535); "
                   "the assert never denies")]


def test_nested_struct_fields_sequences_and_unions(tmp_path):
    send = "request dst=demo.Vault endpoint=deep method=Send {{\n    assert ({})\n}}\n"
    cases = {
        "message.req.count < 5000000000": [
            ("LNT010", "condition message.req.count < 5000000000 is always true: req.count is UInt32 "
                       "(0..4294967295); the assert never denies")],
        "message.req.inner.level > 127": [
            ("LNT011", "condition message.req.inner.level > 127 is always false: req.inner.level is SInt8 "
                       "(-128..127); the assert denies every event it applies to")],
        "message.req.inner.level > -128": [],
        "size (message.req.items) <= 8": [
            ("LNT010", "condition size (message.req.items) <= 8 is always true: req.items is sequence<UInt16, 8>; "
                       "the assert never denies")],
        "size (message.req.name) > 16": [
            ("LNT011", "condition size (message.req.name) > 16 is always false: req.name is string<16>; the assert "
                       "denies every event it applies to")],
        # an empty sequence has no element 0: runs incorrectly, so never constant
        "message.req.items.[0] < 70000": [],
        # the union may carry the other member: runs incorrectly, so never constant
        "message.pick.small < 300": [],
    }
    policy = "".join(send.format(c) for c in cases)
    got = vault(tmp_path, policy)
    expected = [f for fs in cases.values() for f in fs]
    assert sorted(got) == sorted(expected)


# ============================================================================ replay
def _decide_all(root: Path, messages: list[dict], method: str = "Put") -> list:
    module = ksm.SecurityModule(ksm.load(root))
    module.boot()
    return [module.decide(ksm.Event.request("demo.Client", "demo.Server", "core.store", method, m))
            for m in messages]


MESSAGES = [{"key": k, "text": t} for k in (0, 1, 127, 254, 255) for t in ("", "a", "z" * 32)]


@pytest.mark.parametrize("condition", [
    "message.key > 300", "message.key == -1", "(message.key < 10) && (message.key > 20)",
    "size (message.text) > 32", "message.key * 2 > 510",
])
def test_always_false_assert_denies_every_message(tmp_path, condition):
    root = materialize(Example(HEAD + PUT.format(f"assert ({condition})")), tmp_path / "x")
    result = lint(load(root))
    [finding] = [d for d in result.findings if d.code in CODES]
    assert finding.code == "LNT011"
    for d in _decide_all(root, MESSAGES):
        assert not d.granted
        denied_by = [s.span for s in d.steps if s.verdict == "denied"]
        assert denied_by == [finding.span], d.explain()


def test_always_true_assert_and_never_denying_deny_grant_every_message(tmp_path):
    for i, stmt in enumerate(("assert (message.key < 300)", "deny (message.key > 255)",
                              "choice (message.key > 255) {\n        true : deny ()\n        _ : grant ()\n    }")):
        root = materialize(Example(HEAD + PUT.format(stmt)), tmp_path / str(i))
        assert [d.code for d in lint(load(root)).findings if d.code in CODES]
        assert all(d.granted for d in _decide_all(root, MESSAGES)), stmt


# ============================================================================ brute force
def brute_force(holds) -> bool | None:
    values = {holds(key) for key in range(256)}
    return values.pop() if len(values) == 1 else None


FORMS = {
    "plain": ("message.key {op} {n}", lambda op, n: lambda k: OPS[op](k, n)),
    "flipped": ("{n} {op} message.key", lambda op, n: lambda k: OPS[op](n, k)),
    "arith": ("message.key + 0 {op} {n}", lambda op, n: lambda k: OPS[op](k, n)),   # samples and Z3
}
comparison = st.tuples(st.sampled_from(sorted(OPS)), st.integers(-10, 600), st.sampled_from(sorted(FORMS)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(comparison, min_size=1, max_size=10))
def test_verdict_matches_brute_force(cases):
    """Each case is one binding on its own line; the finding on that line is the verdict."""
    first = HEAD.count("\n") + 1
    lines = [PUT.format(f"assert ({FORMS[form][0].format(op=op, n=n)})").replace("\n", " ").rstrip() + "\n"
             for op, n, form in cases]
    result = lint_example(Example(HEAD + "".join(lines)), LintConfig(enable=frozenset(CODES)))
    by_line = {d.span.line: d.code for d in result.findings if d.code in CODES}
    for i, (op, n, form) in enumerate(cases):
        expected = brute_force(FORMS[form][1](op, n))
        got = {"LNT010": True, "LNT011": False}.get(by_line.get(first + i))
        assert got == expected, (op, n, form)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(OPS)), st.integers(-20, 20), st.integers(0, 10), st.integers(-25, 25))
def test_interval_verdict_matches_brute_force(op, lo, width, n):
    hi = lo + width
    values = {OPS[op](x, n) for x in range(lo, hi + 1)}
    assert interval_verdict(op, lo, hi, n) == (values.pop() if len(values) == 1 else None)


# ============================================================================ printer and speed
def test_printer_keeps_the_tree(tmp_path):
    """Parentheses stay where precedence would not restore the tree (the text is also the cache key)."""
    sol = load(materialize(Example(HEAD + PUT.format(
        'assert (((message.key + 1) * 2 > 3) || !(message.text == "a"))')), tmp_path / "p"))
    [b] = [b for b in sol.bindings if b.selectors.method == "Put" and b.selectors.src == "demo.Client"]
    assert show(b.body[0].arg) == '((message.key + 1) * 2 > 3) || !(message.text == "a")'


def test_generated_policy_is_fast(tmp_path):
    from ksm.bench import generate_solution

    generate_solution(tmp_path, 10_000)
    result = lint(load(tmp_path), LintConfig(enable=frozenset(CODES)))
    assert found(result) == []
    assert result.seconds["LNT010"] < 0.6, result.seconds
