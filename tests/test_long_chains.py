"""Long `||` / `&&` chains: real policies allow-list values with hundreds of terms.

The parser keeps the first CHAIN_BLOCK terms of a chain left-deep as written and
joins longer chains so that their depth grows with the logarithm of the length; the
nesting limit (SYN111) still applies to real nesting.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ksm.engine import SecurityModule
from ksm.verify.prove import PROVED, REFUTED, Prover
from policy_lang import load
from policy_lang.props import parse_properties
from policy_lang.source import SourceText
from policy_lang.syntax import ast
from policy_lang.syntax.psl import CHAIN_BLOCK, MAX_DEPTH, chain_depth


def solution(root: Path, condition: str) -> Path:
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "einit" / "src").mkdir(parents=True, exist_ok=True)
    (root / "resources" / "Api.idl").write_text("package t.Api\ninterface {\n    Get(in UInt32 key, out UInt32 value);\n}\n")
    (root / "resources" / "A.edl").write_text("task class t.A\nendpoints {\n    api : t.Api\n}\n")
    (root / "resources" / "B.edl").write_text("task class t.B\n")
    (root / "einit" / "src" / "security.psl").write_text(
        "use nk.base._\nuse EDL kl.core.Core\nuse EDL Einit\nuse EDL t.A\nuse EDL t.B\n"
        "execute: kl.core.Execute\nexecute { grant () }\n"
        f"request src=t.B dst=t.A endpoint=api method=Get {{ assert ({condition}) }}\n")
    (root / "einit" / "src" / "init.yaml").write_text(
        "entities:\n  - name: t.A\n    task: a\n  - name: t.B\n    task: b\n    connections:\n      - target: a\n        id: c\n")
    return root


def condition_of(sol) -> ast.Expr:
    (binding,) = [b for b in sol.bindings if b.event == "request" and b.selectors.src == "t.B"]
    return binding.body[0].arg


def terms(e, op: str) -> list:
    """The operands of a chain of ``op``, left to right (iteratively: the chain may be long)."""
    out, stack = [], [e]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.BinOp) and x.op == op:
            stack += [x.right, x.left]
        else:
            out.append(x)
    return out


def depth(e) -> int:
    best, stack = 0, [(e, 0)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, ast.BinOp):
            stack += [(x.left, d + 1), (x.right, d + 1)]
        else:
            best = max(best, d)
    return best


def values(n: int) -> list[int]:
    return [0x1000 + 7 * i for i in range(n)]


def test_a_chain_of_a_block_or_less_stays_left_deep_as_written(tmp_path):
    n = CHAIN_BLOCK
    sol = load(solution(tmp_path, " || ".join(f"message.key == {v}" for v in values(n))))
    e = condition_of(sol)
    spine = 0
    while isinstance(e, ast.BinOp) and e.op == "||":
        assert not (isinstance(e.right, ast.BinOp) and e.right.op == "||")
        e, spine = e.left, spine + 1
    assert spine == n - 1


@pytest.mark.parametrize("n", [CHAIN_BLOCK + 1, 200, 1000, 5000])
def test_long_disjunctions_load_keep_their_order_and_stay_shallow(tmp_path, n):
    sol = load(solution(tmp_path, " || ".join(f"message.key == {v}" for v in values(n))))
    assert sol.ok, [d.render() for d in sol.diagnostics][:3]
    e = condition_of(sol)
    assert [t.right.value for t in terms(e, "||")] == values(n)
    assert depth(e) <= chain_depth(n) + 1 < MAX_DEPTH
    m = SecurityModule(sol)
    m.boot()
    assert all(m.request("b", "a", "api", "Get", {"key": v}).granted for v in values(n)[:: max(1, n // 50)])
    assert not any(m.request("b", "a", "api", "Get", {"key": v + 1}).granted for v in values(n)[:: max(1, n // 50)])


def test_real_nesting_is_still_limited(tmp_path):
    nested = "(1 + " * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5)        # right-nested: real depth
    sol = load(solution(tmp_path, f"message.key == {nested}"))
    assert not sol.ok and "SYN111" in {d.code for d in sol.diagnostics}


def test_the_prover_reads_a_long_chain(tmp_path):
    n = 600
    sol = load(solution(tmp_path, " && ".join(f"message.key != {v}" for v in values(n)) + " && message.key < 4096"))
    prover = Prover(sol)
    props = parse_properties(sol, SourceText("<t>.props", "property p: never request src=t.B dst=t.A\n"
                                                          "property q: always request src=t.B dst=t.A\n")).properties
    never, always = (prover.prove(p) for p in props)
    assert never.status == REFUTED and always.status == REFUTED
    m = SecurityModule(sol)
    m.boot()
    for r, expect in ((never, True), (always, False)):
        steps = r.counterexample.steps
        assert m.decide(steps[-1].event).granted is expect
    key = never.counterexample.steps[-1].event.message["key"]
    assert key < 4096 and key not in values(n)
    tight = load(solution(tmp_path / "tight", " && ".join(f"message.key != {v}" for v in values(n))
                          + f" && message.key >= {values(n)[0]} && message.key <= {values(n)[-1]}"
                          + " && message.key == 4096"))
    (p,) = parse_properties(tight, SourceText("<t>.props", "property p: never request src=t.B dst=t.A\n")).properties
    assert Prover(tight).prove(p).status == PROVED


def test_a_long_run_of_one_operator_inside_another_keeps_its_own_operator(tmp_path):
    """`a1 && ... && a40 || z`: the && run is an operand of ||, never continued by it."""
    ands = " && ".join(f"message.key != {v}" for v in range(1, 41))
    sol = load(solution(tmp_path, f"{ands} || message.key == 7"))
    e = condition_of(sol)
    assert isinstance(e, ast.BinOp) and e.op == "||" and len(terms(e, "||")) == 2
    assert len(terms(e.left, "&&")) == 40 and terms(e.right, "&&") == [e.right]
    m = SecurityModule(sol)
    m.boot()
    expect = {k: all(k != v for v in range(1, 41)) or k == 7 for k in (0, 5, 7, 41, 100)}
    assert {k: m.request("b", "a", "api", "Get", {"key": k}).granted for k in expect} == expect


_TERM = st.tuples(st.sampled_from(["==", "!="]), st.integers(0, 12))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(_TERM, st.sampled_from(["||", "&&"])), min_size=1, max_size=120)
       | st.lists(st.tuples(_TERM, st.sampled_from(["||", "&&", "&&", "&&"])), min_size=60, max_size=200),
       key=st.integers(0, 12))
def test_mixed_chains_decide_as_python_evaluates_them(tmp_path_factory, items, key):
    text = ""
    python = ""
    for i, ((cmp, v), op) in enumerate(items):
        text += f"message.key {cmp} {v}"
        python += f"(key {cmp} {v})"
        if i < len(items) - 1:
            text += f" {op} "
            python += " or " if op == "||" else " and "
    sol = load(solution(tmp_path_factory.mktemp("chain"), text))
    assert sol.ok
    m = SecurityModule(sol)
    m.boot()
    assert m.request("b", "a", "api", "Get", {"key": key}).granted is bool(eval(python, {"key": key}))
