"""Each model's Z3 encoding against its concrete semantics, on the same inputs.

Concrete inputs are lifted to constant symbolic values, so Z3 can simplify every
encoding to a constant: the value and the "runs incorrectly" flag must equal what the
concrete function returns or raises.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import z3
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ksm.security_models import ModelError, arith, base, boolean, pred, struct
from ksm.security_models.flow import FlowModel, FlowState, FlowSymbolic
from ksm.security_models.hashset import HashSetModel, HashSetState, HashSetSymbolic
from ksm.security_models.staticmap import StaticMapModel, StaticMapState, StaticMapSymbolic
from ksm.security_models.symbolic import Fresh, NotEncoded, concrete, lift

SETTINGS = settings(max_examples=150, deadline=None)
ENVELOPE = st.integers(-(2 ** 64), 2 ** 65)
TEXT = st.text(alphabet=st.characters(max_codepoint=0x2FFFF), max_size=3)   # Z3's characters
SCALARS = st.none() | st.booleans() | ENVELOPE | TEXT


def run_concrete(fn, *args):
    try:
        return fn(*args), False
    except ModelError:
        return None, True


def run_symbolic(fn, *args):
    value, err = fn(*(lift(a) for a in args))
    err = z3.is_true(z3.simplify(err))
    if err:
        return None, True
    m = z3.Solver()
    assert m.check() == z3.sat
    return concrete(value, m.model()), False


@SETTINGS
@given(op=st.sampled_from(sorted(pred.OPERATORS)), a=SCALARS, b=SCALARS)
def test_pred_operators(op, a, b):
    assert run_symbolic(pred.SYMBOLIC_OPERATORS[op], a, b) == run_concrete(pred.OPERATORS[op], a, b)


@SETTINGS
@given(op=st.sampled_from(sorted(arith.BINARY_OPERATORS)), a=ENVELOPE | st.booleans(), b=ENVELOPE)
def test_math_binary_operators(op, a, b):
    assert run_symbolic(arith.SYMBOLIC_BINARY[op], a, b) == run_concrete(arith.BINARY_OPERATORS[op], a, b)


@SETTINGS
@given(op=st.sampled_from(sorted(arith.UNARY_OPERATORS)), a=ENVELOPE | st.booleans())
def test_math_unary_operators(op, a):
    assert run_symbolic(arith.SYMBOLIC_UNARY[op], a) == run_concrete(arith.UNARY_OPERATORS[op], a)


@SETTINGS
@given(method=st.sampled_from(["neg", "abs", "uint8", "uint16", "uint32", "uint64", "sint8", "sint64"]),
       a=ENVELOPE | TEXT)
def test_math_expressions_on_numbers(method, a):
    concrete_fn = arith.MathModel()._expressions[method]
    assert run_symbolic(lambda x: arith.symbolic_expression(method, x), a) == run_concrete(concrete_fn, a)


@SETTINGS
@given(method=st.sampled_from(["sum", "product"]), xs=st.lists(ENVELOPE | st.booleans(), max_size=4))
def test_math_folds(method, xs):
    concrete_fn = arith.MathModel()._expressions[method]
    assert run_symbolic(lambda x: arith.symbolic_expression(method, x), xs) == run_concrete(concrete_fn, xs)


@pytest.mark.parametrize("mode", ["wrap64", "unbounded"])
@SETTINGS
@given(op=st.sampled_from(["+", "-", "*"]), a=ENVELOPE, b=ENVELOPE)
def test_math_overflow_modes(mode, op, a, b):
    old = arith.OVERFLOW
    arith.OVERFLOW = mode
    try:
        assert run_symbolic(arith.SYMBOLIC_BINARY[op], a, b) == run_concrete(arith.BINARY_OPERATORS[op], a, b)
    finally:
        arith.OVERFLOW = old


@SETTINGS
@given(op=st.sampled_from(["&&", "||", "==>"]), a=st.booleans() | st.integers(0, 1), b=st.booleans())
def test_bool_operators(op, a, b):
    assert run_symbolic(boolean.SYMBOLIC_BINARY[op], a, b) == run_concrete(boolean.BINARY_OPERATORS[op], a, b)
    assert run_symbolic(boolean.SYMBOLIC_UNARY["!"], a) == run_concrete(boolean.not_, a)


@SETTINGS
@given(method=st.sampled_from(["all", "any"]), xs=st.lists(st.booleans() | st.integers(0, 1), max_size=4))
def test_bool_list_expressions(method, xs):
    concrete_fn = boolean.BoolModel()._expressions[method]
    assert run_symbolic(lambda x: boolean.symbolic_expression(method, x), xs) == run_concrete(concrete_fn, xs)


@SETTINGS
@given(xs=st.lists(st.integers(-5, 5), max_size=4), i=st.integers(-2, 5) | st.booleans())
def test_struct_index_and_size(xs, i):
    assert run_symbolic(struct.symbolic_index, xs, i) == run_concrete(struct.index, xs, i)
    assert run_symbolic(lambda x: struct.symbolic_expression("size", x), xs) == run_concrete(struct.size, xs)


@pytest.mark.parametrize("method,arg", [
    ("grant", None), ("grant", 1), ("deny", None), ("deny", True), ("deny", False), ("deny", 3),
    ("assert", True), ("assert", False), ("assert", 1), ("set_level", 3), ("set_level", 256), ("set_level", "x"),
])
def test_base_rules(method, arg):
    model = base.BaseModel()
    try:
        res = model.rule(None, 0, method, arg)
        want = (res.granted, False)
    except ModelError:
        want = (None, True)
    granted, err = base.symbolic_rule(method, lift(arg))
    got = (None, True) if z3.is_true(z3.simplify(err)) else (z3.is_true(z3.simplify(granted)), False)
    assert got == want


# ------------------------------------------------------------------ stateful models
FLOW_OBJ = SimpleNamespace(name="door", model="Flow", types={}, config={
    "states": ["locked", "open", "jammed"], "initial": "locked",
    "transitions": {"locked": ["open", "jammed"], "open": ["locked"], "jammed": []}})
SIDS = (1, 2, 3)

flow_calls = st.tuples(
    st.sampled_from(["init", "fini", "enter", "allow", "query"]),
    st.sampled_from([1, 2, 3, -1]),
    st.sampled_from(["locked", "open", "jammed", "nowhere"]),
)


def _eval(m: z3.ModelRef, t):
    return m.eval(t, model_completion=True)


@settings(max_examples=80, deadline=None)
@given(calls=st.lists(flow_calls, max_size=8))
def test_flow_encoding_follows_the_concrete_model(calls):
    concrete_model, sym = FlowModel(), FlowSymbolic(FLOW_OBJ, SIDS)
    state = FlowState()
    for method, sid, target in calls:
        arg = {"sid": sid, "state": target, "states": [target]}
        sym_state = sym.lift(state)
        if method == "query":
            want = run_concrete(lambda a: concrete_model.expression(FLOW_OBJ, state, "query", a), arg)
            value, err = sym.expression(sym_state, "query", lift(arg))
            got = (None, True) if z3.is_true(z3.simplify(err)) else (z3.simplify(value.z).as_string(), False)
            assert got == want
            continue
        try:
            res = concrete_model.rule(FLOW_OBJ, state, method, arg)
        except ModelError:
            res = None
        granted, new, err = sym.rule(sym_state, method, lift(arg))
        if res is None:
            assert z3.is_true(z3.simplify(err))
            continue
        assert z3.is_false(z3.simplify(err)) and z3.is_true(z3.simplify(granted)) == res.granted
        if res.granted:
            state = res.state
            assert [z3.simplify(t) for t in new] == [z3.simplify(t) for t in sym.lift(state)]


HS_OBJ = SimpleNamespace(name="tokens", model="HashSet", types={}, config={"set_size": 2, "pool_size": 2})
hs_calls = st.tuples(st.sampled_from(["init", "fini", "add", "remove", "contains"]),
                     st.sampled_from([1, 2, 3, -1]), st.integers(0, 3))


@settings(max_examples=80, deadline=None)
@given(calls=st.lists(hs_calls, max_size=10))
def test_hashset_encoding_follows_the_concrete_model(calls):
    concrete_model, sym = HashSetModel(), HashSetSymbolic(HS_OBJ, SIDS)
    state = HashSetState()
    sym_state = sym.lift(state)
    solver = z3.Solver()
    for method, sid, entry in calls:
        arg = {"sid": sid, "entry": entry}
        if method == "contains":
            want = run_concrete(lambda a: concrete_model.expression(HS_OBJ, state, "contains", a), arg)
            value, err = sym.expression(sym_state, "contains", lift(arg))
            assert solver.check() == z3.sat
            m = solver.model()
            got = (None, True) if z3.is_true(_eval(m, err)) else (z3.is_true(_eval(m, value.z)), False)
            assert got == want
            continue
        try:
            res = concrete_model.rule(HS_OBJ, state, method, arg)
        except ModelError:
            res = None
        granted, new, err = sym.rule(sym_state, method, lift(arg))
        assert solver.check() == z3.sat
        m = solver.model()
        if res is None:
            assert z3.is_true(_eval(m, err))
            continue
        assert z3.is_false(_eval(m, err)) and z3.is_true(_eval(m, granted)) == res.granted
        if res.granted:
            state, sym_state = res.state, new
            for i, s in enumerate(SIDS):      # bound and count agree with the concrete tables
                table = state.table(s)
                assert z3.is_true(_eval(m, sym_state[3 * i])) == (table is not None)
                assert _eval(m, sym_state[3 * i + 1]).as_long() == len(table or ())


def test_calls_on_an_untracked_sid_are_flagged_not_silently_modelled():
    sym = FlowSymbolic(FLOW_OBJ, SIDS)
    sym.rule(sym.lift(FlowState()), "init", lift({"sid": 7}))
    assert z3.is_true(z3.simplify(z3.Or(sym.escapes)))
    sym.escapes.clear()
    sym.rule(sym.lift(FlowState()), "init", lift({"sid": 2}))
    assert z3.is_false(z3.simplify(z3.Or(sym.escapes)))


SM_OBJ = SimpleNamespace(name="settings", model="StaticMap", types={},
                         config={"keys": {"volume": 5, "mode": 0}, "pool_size": 2})
sm_calls = st.tuples(st.sampled_from(["init", "fini", "set", "commit", "rollback", "get", "get_uncommited"]),
                     st.sampled_from([1, 2, 3, -1]), st.sampled_from(["volume", "mode", "colour"]),
                     st.integers(-3, 9))


@settings(max_examples=100, deadline=None)
@given(calls=st.lists(sm_calls, max_size=10))
@example(calls=[("init", 1, "volume", 0), ("set", 1, "volume", 0), ("fini", 1, "volume", 0)])  # found by CI
def test_staticmap_encoding_follows_the_concrete_model(calls):
    concrete_model, sym = StaticMapModel(), StaticMapSymbolic(SM_OBJ, SIDS)
    state = StaticMapState()
    for method, sid, key, value in calls:
        arg = {"sid": sid, "key": key, "value": value}
        sym_state = sym.lift(state)
        if method in ("get", "get_uncommited"):
            want = run_concrete(lambda a: concrete_model.expression(SM_OBJ, state, method, a), arg)
            got, err = sym.expression(sym_state, method, lift(arg))
            assert ((None, True) if z3.is_true(z3.simplify(err))
                    else (z3.simplify(got.z).as_long(), False)) == want
            continue
        try:
            res = concrete_model.rule(SM_OBJ, state, method, arg)
        except ModelError:
            res = None
        granted, new, err = sym.rule(sym_state, method, lift(arg))
        if res is None:
            assert z3.is_true(z3.simplify(err))
            continue
        assert z3.is_false(z3.simplify(err)) and z3.is_true(z3.simplify(granted)) == res.granted
        if res.granted:
            state = res.state
            assert [z3.simplify(t) for t in new] == [z3.simplify(t) for t in sym.lift(state)]


def test_staticmap_malformed_arguments_run_incorrectly_and_byte_keys_are_not_encoded():
    sym = StaticMapSymbolic(SM_OBJ, SIDS)
    state = sym.lift(StaticMapState())
    assert z3.is_true(z3.simplify(sym.rule(state, "set", lift({"sid": 1, "key": "mode", "value": "x"}))[2]))
    assert z3.is_true(z3.simplify(sym.expression(state, "get", lift({"sid": 1}))[1]))
    with pytest.raises(NotEncoded):
        sym.expression(state, "get", lift({"sid": 1, "key": [109]}))


def test_staticmap_any_state_respects_the_pool_size():
    sym = StaticMapSymbolic(SM_OBJ, SIDS)
    terms, wf = sym.fresh(Fresh("t."))
    s = z3.Solver()
    s.add(wf, *[terms[i * sym.width] for i in range(len(SIDS))])   # all three bound: pool is 2
    assert s.check() == z3.unsat
