"""LNT010/LNT011 on long disjunctions (issue: 20-28 s on a real policy's ~190-term deny conditions).

Real KasperskyOS policies allow-list message values with conditions such as
``assert (message.value == 0x1234 || message.value == 0x5678 || ...)``.  Both rules
examine every sub-condition, so any work done per sub-condition that grows with its
size (re-encoding it for Z3, recompiling it, re-walking it) makes the whole rule
quadratic.  These tests pin the findings on such conditions and bound the work by
counting it (encoder steps, compiler steps, Z3 questions), not by the clock; one
test compares the rules' time with the load time of the same solution, measured in
the same run, with a wide margin.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksm.expressions import ExprCompiler
from ksm.lint.bench import DISJUNCTION_TERMS, bench_disjunctions, generate_disjunctions
from ksm.lint.catalogue import Example
from ksm.lint.config import LintConfig
from ksm.lint.examples import lint_example, materialize
from ksm.lint.intervalset import IntSet
from ksm.lint.runner import lint
from ksm.verify import program
from policy_lang.resolve import load

CODES = frozenset({"LNT010", "LNT011"})
CONFIG = LintConfig(enable=CODES)
HEAD = "use demo.prelude._\n\n"
PUT = "request src=demo.Client dst=demo.Server endpoint=core.store method=Put {{\n    {}\n}}\n"
UINT8 = "key is UInt8 (0..255)"
OPS = {"<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__, "==": int.__eq__, "!=": int.__ne__}


def found(result) -> list[tuple[str, int, str]]:
    """(code, line, message) of the two rules' findings; a crashed rule fails the test."""
    assert not result.crashed, [d.message for d in result.findings if d.code == "LNT900"]
    return sorted((d.code, d.span.line, d.message) for d in result.findings if d.code in CODES)


def put(statement: str) -> list[tuple[str, int, str]]:
    return found(lint_example(Example(HEAD + PUT.format(statement)), CONFIG))


def chain(field: str, op: str, join: str, values) -> str:
    return f" {join} ".join(f"{field} {op} {v}" for v in values)


def generated(tmp: Path, terms: int, arithmetic: bool = False):
    generate_disjunctions(tmp, terms, arithmetic)
    sol = load(tmp)
    assert sol.ok, [d.render() for d in sol.diagnostics]
    return sol


# ============================================================================ findings
def test_long_disjunctions_over_one_field_are_silent(tmp_path):
    """190 distinct constants inside the UInt32 range: nothing is constant, in any of the five forms."""
    assert found(lint(generated(tmp_path, DISJUNCTION_TERMS), CONFIG)) == []


def test_long_disjunction_through_arithmetic_is_silent(tmp_path):
    assert found(lint(generated(tmp_path, 60, arithmetic=True), CONFIG)) == []


def test_a_term_the_type_decides_is_the_finding():
    """One term of a 150-term disjunction compares a UInt8 key with 0x1FF: that term is reported, alone."""
    values = [f"0x{v:X}" for v in range(150)]
    values.insert(75, "0x1FF")
    line = HEAD.count("\n") + 2
    assert put(f"assert ({chain('message.key', '==', '||', values)})") == [
        ("LNT011", line, f"condition message.key == 511 is always false: {UINT8}")]
    assert put(f"assert (!({chain('message.key', '==', '||', values)}))") == [
        ("LNT011", line, f"condition message.key == 511 is always false: {UINT8}")]
    assert put(f"deny ({chain('message.key', '!=', '&&', values)})") == [
        ("LNT010", line, f"condition message.key != 511 is always true: {UINT8}")]


@pytest.mark.parametrize("statement, code, tail", [
    # every key: 0..99, then each of 100..255 by name (and the complement: 100..255 less each of them)
    ("assert (message.key < 100 || {eq})", "LNT010", "is always true: key is UInt8 (0..255); the assert never denies"),
    ("deny (message.key < 100 || {eq})", "LNT010",
     "is always true: key is UInt8 (0..255); the deny denies every event it applies to"),
    ("assert (message.key >= 100 && {ne})", "LNT011",
     "is always false: key is UInt8 (0..255); the assert denies every event it applies to"),
    ("choice (message.key < 100 || {eq}) {{\n        true : grant ()\n        _ : deny ()\n    }}", "LNT010",
     "is always true: key is UInt8 (0..255); the choice always selects `true`"),
    # the disjunction inside the ! is the innermost constant condition: it is reported, not the !
    ("assert (!(message.key < 100 || {eq}))", "LNT010", "is always true: key is UInt8 (0..255)"),
])
def test_a_disjunction_covering_the_whole_range_is_constant(statement, code, tail):
    rest = range(100, 256)
    text = statement.format(eq=chain("message.key", "==", "||", rest), ne=chain("message.key", "!=", "&&", rest))
    [(got_code, line, msg)] = put(text)
    assert (got_code, line) == (code, HEAD.count("\n") + 2)
    assert msg.startswith("condition (") and msg.endswith(tail), msg
    assert "..." in msg                           # the condition's text is cut at 120 characters


def test_one_gap_makes_it_silent():
    rest = [v for v in range(100, 256) if v != 200]
    assert put(f"assert (message.key < 100 || {chain('message.key', '==', '||', rest)})") == []


def test_constant_for_every_method_or_not_at_all(tmp_path):
    """Narrow's n is UInt8, Wide's UInt16: 0..255 named one by one covers Narrow only."""
    cover = f"message.n < 100 || {chain('message.n', '==', '||', range(100, 256))}"
    root = materialize(Example(HEAD + "use EDL demo.Vault\n\nrequest dst=demo.Vault endpoint=pair {\n"
                               f"    assert ({cover})\n    assert ({cover} || message.n > 255)\n}}\n"), tmp_path / "pair")
    (root / "resources" / "idl" / "Pair.idl").write_text(
        "package demo.Pair\n\ninterface {\n    Narrow(in UInt8 n);\n    Wide(in UInt16 n);\n}\n")
    (root / "resources" / "edl" / "Vault.edl").write_text(
        "task class demo.Vault\n\nendpoints {\n    pair : demo.Pair\n}\n")
    sol = load(root)
    assert sol.ok, [d.render() for d in sol.diagnostics]
    [(code, line, msg)] = found(lint(sol, CONFIG))
    assert (code, line) == ("LNT010", HEAD.count("\n") + 5)
    assert msg.endswith("is always true: n is UInt8 (0..255); n is UInt16 (0..65535); the assert never denies"), msg


# ============================================================================ against brute force
def _render(tree) -> str:
    """PSL text of a tree, parenthesized the way the rules print conditions back."""
    if tree[0] == "cmp":
        return f"message.key {tree[1]} {tree[2]}"
    if tree[0] == "!":
        return f"!({_render(tree[1])})"
    left, right = (_render(t) if t[0] == "!" else f"({_render(t)})" for t in tree[1:])
    return f"{left} {tree[0]} {right}"


def _holds(tree, k: int) -> bool:
    if tree[0] == "cmp":
        return OPS[tree[1]](k, tree[2])
    if tree[0] == "!":
        return not _holds(tree[1], k)
    a, b = _holds(tree[1], k), _holds(tree[2], k)
    return {"&&": a and b, "||": a or b, "==>": (not a) or b}[tree[0]]


def _expected(tree, out: list) -> bool:
    """Innermost constant conditions over every UInt8 key, as (code, text); whether one was found."""
    below = False
    for sub in tree[1:] if tree[0] != "cmp" else ():
        below = _expected(sub, out) or below
    if below:
        return True
    values = {_holds(tree, k) for k in range(256)}
    if len(values) == 1:
        text = _render(tree)
        out.append(("LNT010" if values.pop() else "LNT011", text if len(text) <= 120 else text[:117] + "..."))
        return True
    return False


comparisons = st.tuples(st.just("cmp"), st.sampled_from(sorted(OPS)), st.integers(-2, 258))
trees = st.recursive(comparisons, lambda sub: st.one_of(
    st.tuples(st.just("!"), sub),
    st.tuples(st.sampled_from(["&&", "||", "==>"]), sub, sub)), max_leaves=6)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trees, min_size=1, max_size=8))
def test_boolean_combinations_on_one_field_match_brute_force(cases):
    """Each case is one binding on its own line; its findings are the innermost constant sub-conditions."""
    first = HEAD.count("\n") + 1
    lines = [PUT.format(f"assert ({_render(t)})").replace("\n", " ").rstrip() + "\n" for t in cases]
    result = lint_example(Example(HEAD + "".join(lines)), CONFIG)
    got = sorted((line, code, msg.split(" is always ")[0].removeprefix("condition "))
                 for code, line, msg in found(result))
    expected = []
    for i, t in enumerate(cases):
        out: list = []
        _expected(t, out)
        expected += [(first + i, code, text) for code, text in out]
    assert got == sorted(set(expected))          # equal findings on one statement are reported once


@settings(max_examples=200, deadline=None)
@given(st.integers(-3, 3), st.integers(0, 12), st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(-5, 17),
                                                                  st.sampled_from(["&&", "||", "==>", "!"])),
                                                        min_size=1, max_size=12))
def test_value_sets_match_brute_force(lo, width, steps):
    hi = lo + width
    s, holds = IntSet.constant(False, lo, hi), (lambda x: False)
    for op, n, join in steps:
        atom, f = IntSet.compare(op, n, lo, hi), (lambda x, op=op, n=n: OPS[op](x, n))
        if join == "!":
            s, holds = ~s, (lambda x, g=holds: not g(x))
        elif join == "&&":
            s, holds = s & atom, (lambda x, g=holds, f=f: g(x) and f(x))
        elif join == "||":
            s, holds = s | atom, (lambda x, g=holds, f=f: g(x) or f(x))
        else:
            s, holds = ~s | atom, (lambda x, g=holds, f=f: (not g(x)) or f(x))
        members = {x for x in range(lo, hi + 1) if holds(x)}
        assert s.values() == members
        whole = set(range(lo, hi + 1))
        assert s.value == (True if members == whole else False if not members else None)


# ============================================================================ work grows linearly
@pytest.fixture
def work(monkeypatch):
    """Counts of the costly steps: Z3 questions, encoder node visits, compiler node visits."""
    counts = dict.fromkeys(("check", "encode", "compile"), 0)

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(z3.Solver, "check", counting("check", z3.Solver.check))
    monkeypatch.setattr(program._Walk, "expr", counting("encode", program._Walk.expr))
    monkeypatch.setattr(ExprCompiler, "compile", counting("compile", ExprCompiler.compile))
    return counts


def test_work_on_one_field_disjunctions_is_linear(tmp_path, work):
    """Five 190-term conditions: at most 2 x terms + 10 steps of each kind per condition.  It was ~33,000
    encoder and ~33,000 compiler steps per condition: every sub-condition compiled and encoded for Z3 from
    scratch (Z3 was asked only ~2 questions per sub-condition: counting questions alone would not catch it)."""
    sol = generated(tmp_path, DISJUNCTION_TERMS)
    assert found(lint(sol, CONFIG)) == []
    bound = 5 * (2 * DISJUNCTION_TERMS + 10)
    assert all(n <= bound for n in work.values()), work


@pytest.mark.parametrize("terms", [40, 80])
def test_work_on_a_disjunction_through_arithmetic_is_linear(tmp_path, terms, work):
    """Z3 decides ``message.value + 0 == c`` terms: still each node encoded and compiled once, and at most three
    questions per examined condition (2 x terms - 1 of them).  It was 5,075 encoder steps for 40 terms and
    19,755 for 80."""
    sol = generated(tmp_path, terms, arithmetic=True)
    assert found(lint(sol, CONFIG)) == []
    nodes = 6 * terms                       # `message.value + 0 == c` is five nodes, then one `||`
    assert work["encode"] <= nodes + 10, work
    assert work["compile"] <= nodes + 10, work
    assert work["check"] <= 3 * (2 * terms) + 10, work


def test_rules_time_against_loading_the_same_solution():
    """The same-run ratio `ksm bench lint` reports; it was ~150-450x before the fix, and is ~1-3x after."""
    b = bench_disjunctions(DISJUNCTION_TERMS, repeat=3)
    assert b.findings == 0
    assert b.rule_seconds <= 20 * b.load_seconds + 0.05, b.report()


def test_bench_reports_the_disjunction_shapes():
    report = bench_disjunctions(30, repeat=1, arithmetic=True).report()
    assert "long disjunctions, arithmetic: 1 x 30 terms" in report and "loading the same solution" in report
