"""Pred model: comparison operators and pred.empty."""
import pytest
from hypothesis import given, strategies as st

from policy_lang.solution import PolicyObjectDef
from ksm.security_models import ModelError
from ksm.security_models import pred
from ksm.security_models.pred import OPERATORS, PredModel, empty, eq, ge, gt, le, lt, ne

OBJ = PolicyObjectDef("pred", "Pred", None, {}, None, builtin=True)
INT64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
SCALARS = st.one_of(st.none(), st.booleans(), INT64, st.text(max_size=5))


def test_operator_table():
    assert set(OPERATORS) == {"==", "!=", "<", "<=", ">", ">="}
    assert pred.UNARY_OPERATORS == {}


# --------------------------------------------------------------- == and !=

@pytest.mark.parametrize("a,b,expected", [
    (1, 1, True), (1, 2, False), ("ro", "ro", True), ("ro", "rw", False),
    (True, True, True), (True, False, False), (None, None, True), (2 ** 64 - 1, 2 ** 64 - 1, True),
])
def test_equality_on_scalars(a, b, expected):
    assert eq(a, b) is expected
    assert ne(a, b) is (not expected)


@pytest.mark.parametrize("a,b", [(1, True), (0, False), (None, 0), ("1", 1), (None, ""), (False, None)])
def test_mixed_kinds_are_unequal(a, b):
    assert eq(a, b) is False
    assert ne(a, b) is True


def test_mixed_kinds_error_option(monkeypatch):
    monkeypatch.setattr(pred, "EQ_MIXED_KINDS", "error")
    with pytest.raises(ModelError):
        eq(1, True)
    with pytest.raises(ModelError):
        ne("1", 1)
    assert eq(1, 1)


@pytest.mark.parametrize("a,b", [([1], [1]), ({"a": 1}, {"a": 1}), (1, [1]), ({1}, {1})])
def test_equality_on_non_scalars_runs_incorrectly(a, b):
    with pytest.raises(ModelError):
        eq(a, b)
    with pytest.raises(ModelError):
        ne(a, b)


# --------------------------------------------------------------- ordering

@pytest.mark.parametrize("fn,a,b,expected", [
    (lt, 1, 2, True), (lt, 2, 2, False), (le, 2, 2, True), (le, 3, 2, False),
    (gt, 3, 2, True), (gt, 2, 2, False), (ge, 2, 2, True), (ge, 1, 2, False),
    (lt, -(2 ** 63), 2 ** 64 - 1, True),
])
def test_ordering_on_numbers(fn, a, b, expected):
    assert fn(a, b) is expected


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("a,b", [("a", "b"), (True, 1), (1, False), (None, 1), (1, [2]), (1, "2")])
def test_ordering_on_non_numbers_runs_incorrectly(op, a, b):
    with pytest.raises(ModelError):
        OPERATORS[op](a, b)


@given(INT64, INT64)
def test_comparisons_agree_with_python(a, b):
    assert OPERATORS["=="](a, b) == (a == b)
    assert OPERATORS["!="](a, b) == (a != b)
    assert OPERATORS["<"](a, b) == (a < b)
    assert OPERATORS["<="](a, b) == (a <= b)
    assert OPERATORS[">"](a, b) == (a > b)
    assert OPERATORS[">="](a, b) == (a >= b)


@given(INT64, INT64)
def test_comparisons_are_total_on_integers(a, b):
    assert [lt(a, b), eq(a, b), gt(a, b)].count(True) == 1
    assert le(a, b) == (lt(a, b) or eq(a, b))
    assert ge(a, b) == le(b, a)


@given(SCALARS, SCALARS)
def test_ne_is_not_eq_on_scalars(a, b):
    assert ne(a, b) == (not eq(a, b))
    assert eq(a, b) == eq(b, a)


# --------------------------------------------------------------- empty

@pytest.mark.parametrize("x", ["", [], (), set(), frozenset(), {}, None])
def test_empty_values(x):
    assert empty(x) is True


@pytest.mark.parametrize("x", ["a", [1], (None,), {1}, {"k": 1}])
def test_non_empty_values(x):
    assert empty(x) is False


@pytest.mark.parametrize("x", [0, 5, True, False])
def test_empty_on_a_number_or_boolean_runs_incorrectly(x):
    with pytest.raises(ModelError):
        empty(x)


def test_empty_through_the_model():
    m = PredModel()
    assert m.expression(OBJ, None, "empty", "") is True
    assert m.expression(OBJ, None, "empty", "x") is False
    assert m.choose(OBJ, None, "empty", [], [False, True, None]) == 1


def test_unknown_expression_runs_incorrectly():
    with pytest.raises(ModelError):
        PredModel().expression(OBJ, None, "full", [])
