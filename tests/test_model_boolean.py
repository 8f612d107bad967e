"""Bool model: ! && || ==>, bool.all / any / cond."""
import pytest
from hypothesis import given, strategies as st

from policy_lang.solution import PolicyObjectDef
from ksm.security_models import ModelError
from ksm.security_models import boolean
from ksm.security_models.boolean import (
    BINARY_OPERATORS, OPERATORS, UNARY_OPERATORS, BoolModel, all_, and_, any_, cond, implies, not_, or_,
)

OBJ = PolicyObjectDef("bool", "Bool", None, {}, None, builtin=True)
M = BoolModel()
BOOLS = [(a, b) for a in (False, True) for b in (False, True)]


def test_operator_tables():
    assert set(OPERATORS) == {"!", "&&", "||", "==>"}
    assert set(UNARY_OPERATORS) == {"!"}
    assert set(BINARY_OPERATORS) == {"&&", "||", "==>"}
    assert boolean.SHORT_CIRCUIT is False


def test_not():
    assert not_(True) is False
    assert not_(False) is True


@pytest.mark.parametrize("a,b", BOOLS)
def test_truth_tables(a, b):
    assert and_(a, b) is (a and b)
    assert or_(a, b) is (a or b)
    assert implies(a, b) is ((not a) or b)


@pytest.mark.parametrize("v", [0, 1, None, "true", [True]])
def test_not_on_non_boolean_runs_incorrectly(v):
    with pytest.raises(ModelError):
        not_(v)


@pytest.mark.parametrize("op", ["&&", "||", "==>"])
@pytest.mark.parametrize("a,b", [(1, True), (True, 1), (None, False), (False, "x")])
def test_binary_on_non_boolean_runs_incorrectly(op, a, b):
    with pytest.raises(ModelError):
        OPERATORS[op](a, b)


def test_no_short_circuit_an_erroneous_right_operand_still_errors():
    # `false && x`, `true || x`, `false ==> x` would be decided by the left operand alone
    for op, left in (("&&", False), ("||", True), ("==>", False)):
        with pytest.raises(ModelError):
            OPERATORS[op](left, 7)


# --------------------------------------------------------------- all / any

def test_all_of_empty_list_is_true():
    assert all_([]) is True
    assert M.expression(OBJ, None, "all", []) is True


def test_any_of_empty_list_is_false():
    assert any_([]) is False
    assert M.expression(OBJ, None, "any", []) is False


def test_all_and_any():
    assert all_([True, True]) is True
    assert all_([True, False]) is False
    assert any_([False, True]) is True
    assert any_((False, False)) is False


@pytest.mark.parametrize("fn", [all_, any_])
@pytest.mark.parametrize("xs", [[False, 1], [True, None], ["true"], True, None, {"a": True}, "tt"])
def test_all_any_bad_argument_runs_incorrectly(fn, xs):
    with pytest.raises(ModelError):
        fn(xs)


@given(st.lists(st.booleans(), max_size=8))
def test_all_any_agree_with_python(xs):
    assert all_(xs) == all(xs)
    assert any_(xs) == any(xs)


# --------------------------------------------------------------- cond (shape unconfirmed)

def test_cond_true_takes_then():
    assert cond({"if": True, "then": 1, "else": 2}) == 1


def test_cond_false_takes_else():
    assert M.expression(OBJ, None, "cond", {"if": False, "then": "a", "else": "b"}) == "b"


@pytest.mark.parametrize("arg", [
    {"if": 1, "then": 1, "else": 2},
    {"if": None, "then": 1, "else": 2},
    {"then": 1, "else": 2},
    {"if": True, "then": 1},
    [True, 1, 2],
    None,
])
def test_cond_bad_argument_runs_incorrectly(arg):
    with pytest.raises(ModelError):
        cond(arg)


# --------------------------------------------------------------- properties

@given(st.booleans())
def test_not_is_an_involution(a):
    assert not_(not_(a)) is a


@given(st.booleans(), st.booleans())
def test_implication_is_not_a_or_b(a, b):
    assert implies(a, b) == or_(not_(a), b)


@given(st.booleans(), st.booleans())
def test_and_or_agree_with_python(a, b):
    assert and_(a, b) == (a and b)
    assert or_(a, b) == (a or b)


def test_choose_on_a_boolean_expression():
    assert M.choose(OBJ, None, "any", [True], [False, True]) == 1
    assert M.choose(OBJ, None, "all", [True], [1, None]) is None  # 1 is not true
