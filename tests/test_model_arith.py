"""Math model (ksm.security_models.arith): + - * | & ~, unary -, neg/abs/sum/product, casts, overflow."""
import functools
import operator

import pytest
from hypothesis import given, strategies as st

from policy_lang import model_library as ml
from policy_lang.solution import PolicyObjectDef
from ksm.security_models import ModelError
from ksm.security_models import arith
from ksm.security_models.arith import (
    BINARY_OPERATORS, CASTS, MAX_VALUE, MIN_VALUE, OPERATORS, SIGNED_MAX, SIGNED_MIN, UNARY_OPERATORS, MathModel,
    abs_, add, bit_and, bit_not, bit_or, cast, mul, neg, negate, product, sub, sum_,
)

OBJ = PolicyObjectDef("math", "Math", None, {}, None, builtin=True)
M = MathModel()
IN_RANGE = st.integers(min_value=MIN_VALUE, max_value=MAX_VALUE)
SMALL = st.integers(min_value=-(2 ** 31), max_value=2 ** 31)


def in_range(v):
    return MIN_VALUE <= v <= MAX_VALUE


def test_operator_tables():
    assert set(BINARY_OPERATORS) == {"+", "-", "*", "|", "&"}
    assert set(UNARY_OPERATORS) == {"-", "~"}
    assert set(OPERATORS) == {"+", "-", "*", "|", "&", "~", "unary-"}
    assert OPERATORS["-"] is sub and OPERATORS["unary-"] is negate and OPERATORS["~"] is bit_not
    assert arith.OVERFLOW == "error"


# --------------------------------------------------------------- + - *

def test_basic_arithmetic():
    assert add(2, 3) == 5
    assert sub(2, 3) == -1
    assert mul(-4, 3) == -12


def test_range_limits_are_accepted():
    assert add(MAX_VALUE, 0) == MAX_VALUE == 2 ** 64 - 1
    assert sub(MIN_VALUE, 0) == MIN_VALUE == -(2 ** 63)


def test_addition_overflow_at_2_pow_64_runs_incorrectly():
    with pytest.raises(ModelError):
        add(2 ** 64 - 1, 1)


def test_subtraction_below_min_runs_incorrectly():
    with pytest.raises(ModelError):
        sub(-(2 ** 63), 1)


def test_multiplication_overflow_runs_incorrectly():
    with pytest.raises(ModelError):
        mul(2 ** 32, 2 ** 32)


def test_operand_outside_64_bits_runs_incorrectly():
    with pytest.raises(ModelError):
        add(2 ** 64, -1)


@pytest.mark.parametrize("op", ["+", "-", "*", "|", "&"])
@pytest.mark.parametrize("a,b", [(True, 1), (1, False), ("1", 1), (None, 1), (1, [1]), (1.0, 1)])
def test_arithmetic_on_non_integers_runs_incorrectly(op, a, b):
    with pytest.raises(ModelError):
        OPERATORS[op](a, b)


@pytest.mark.parametrize("fn", [bit_not, negate, neg, abs_])
@pytest.mark.parametrize("v", [True, "1", None, 1.5])
def test_unary_on_non_integers_runs_incorrectly(fn, v):
    with pytest.raises(ModelError):
        fn(v)


def test_wrap64_option(monkeypatch):
    monkeypatch.setattr(arith, "OVERFLOW", "wrap64")
    assert add(2 ** 64 - 1, 1) == 0
    assert sub(-(2 ** 63), 1) == 2 ** 63 - 1
    assert mul(2 ** 63, 4) == 0
    assert add(2 ** 63 - 1, 1) == 2 ** 63  # in the envelope: widths are unknown, no signed wrap
    assert neg(-(2 ** 63)) == -(2 ** 63)
    assert abs_(-(2 ** 63)) == -(2 ** 63)


def test_unbounded_option(monkeypatch):
    monkeypatch.setattr(arith, "OVERFLOW", "unbounded")
    assert add(2 ** 64 - 1, 1) == 2 ** 64
    assert mul(2 ** 64, 2 ** 64) == 2 ** 128
    assert abs_(-(2 ** 63)) == 2 ** 63


def test_bad_overflow_option_is_a_programming_error(monkeypatch):
    monkeypatch.setattr(arith, "OVERFLOW", "saturate")
    with pytest.raises(ValueError):
        add(1, 1)


# --------------------------------------------------------------- bitwise

def test_bitwise_on_non_negative():
    assert bit_or(12, 3) == 15
    assert bit_and(12, 10) == 8
    assert bit_and(2 ** 64 - 1, 2 ** 63) == 2 ** 63


def test_bitwise_on_negative_is_twos_complement():
    assert bit_and(-1, 5) == 5
    assert bit_or(-1, 5) == -1
    assert bit_and(-2, 2 ** 64 - 1) == 2 ** 64 - 2
    assert bit_or(-(2 ** 63), 1) == -(2 ** 63) + 1


def test_complement_is_64_bit():
    assert bit_not(0) == 2 ** 64 - 1
    assert bit_not(2 ** 64 - 1) == 0
    assert bit_not(5) == 2 ** 64 - 6
    assert bit_not(-1) == 0
    assert bit_not(-(2 ** 63)) == 2 ** 63 - 1


def test_complement_outside_64_bits_runs_incorrectly():
    with pytest.raises(ModelError):
        bit_not(2 ** 64)


# --------------------------------------------------------------- unary minus, neg, abs

def test_unary_minus():
    assert negate(5) == -5
    assert negate(-5) == 5
    assert negate(2 ** 63) == -(2 ** 63)


def test_unary_minus_overflow_runs_incorrectly():
    with pytest.raises(ModelError):
        negate(2 ** 64 - 1)


def test_neg_and_abs():
    assert M.expression(OBJ, None, "neg", 5) == -5
    assert M.expression(OBJ, None, "neg", -5) == 5
    assert M.expression(OBJ, None, "abs", -7) == 7
    assert M.expression(OBJ, None, "abs", 7) == 7
    assert neg(SIGNED_MAX) == -SIGNED_MAX


@pytest.mark.parametrize("fn", [neg, abs_])
def test_neg_abs_of_sint64_min_overflow(fn):
    with pytest.raises(ModelError):
        fn(SIGNED_MIN)


@pytest.mark.parametrize("fn", [neg, abs_])
def test_neg_abs_of_a_non_signed_value_runs_incorrectly(fn):
    with pytest.raises(ModelError):
        fn(2 ** 63)


# --------------------------------------------------------------- sum / product

def test_sum_of_empty_list_is_zero():
    assert M.expression(OBJ, None, "sum", []) == 0


def test_product_of_empty_list_is_one():
    assert M.expression(OBJ, None, "product", []) == 1


def test_sum_and_product():
    assert sum_([1, 2, 3]) == 6
    assert product((2, 3, 4)) == 24
    assert sum_([-(2 ** 63), 2 ** 64 - 1]) == 2 ** 63 - 1


def test_sum_overflow_runs_incorrectly():
    with pytest.raises(ModelError):
        sum_([2 ** 64 - 1, 1])


def test_sum_checks_partial_results():
    with pytest.raises(ModelError):
        sum_([2 ** 64 - 1, 1, -1])


def test_product_overflow_runs_incorrectly():
    with pytest.raises(ModelError):
        product([2 ** 32, 2 ** 32])


@pytest.mark.parametrize("fn", [sum_, product])
@pytest.mark.parametrize("xs", [5, None, "12", [1, True], [1, "2"], {1, 2}, [1, None]])
def test_sum_product_bad_argument_runs_incorrectly(fn, xs):
    with pytest.raises(ModelError):
        fn(xs)


# --------------------------------------------------------------- casts

@pytest.mark.parametrize("name,value", [
    ("uint8", 0), ("uint8", 255), ("uint16", 65535), ("uint32", 2 ** 32 - 1), ("uint64", 2 ** 64 - 1),
    ("sint8", -128), ("sint8", 127), ("sint16", -(2 ** 15)), ("sint32", 2 ** 31 - 1), ("sint64", -(2 ** 63)),
])
def test_cast_in_range_returns_the_value(name, value):
    assert M.expression(OBJ, None, name, value) == value


@pytest.mark.parametrize("name,value", [
    ("uint8", 256), ("uint8", -1), ("uint16", 65536), ("uint32", 2 ** 32), ("uint64", 2 ** 64),
    ("uint64", -1), ("sint8", 128), ("sint8", -129), ("sint16", 2 ** 15), ("sint32", -(2 ** 31) - 1),
    ("sint64", 2 ** 63),
])
def test_cast_out_of_range_runs_incorrectly(name, value):
    with pytest.raises(ModelError):
        M.expression(OBJ, None, name, value)


@pytest.mark.parametrize("name", sorted(CASTS))
@pytest.mark.parametrize("value", [True, "1", None])
def test_cast_of_non_integer_runs_incorrectly(name, value):
    with pytest.raises(ModelError):
        cast(name, value)


def test_cast_truncate_option(monkeypatch):
    monkeypatch.setattr(arith, "CAST_OUT_OF_RANGE", "truncate")
    assert cast("uint8", 256) == 0
    assert cast("uint8", -1) == 255
    assert cast("sint8", 255) == -1
    assert cast("sint8", 128) == -128
    assert cast("uint64", 2 ** 64 + 5) == 5


def test_every_library_cast_is_served():
    casts = {n for n in ml.MATH.methods if n.startswith(("uint", "sint"))}
    assert casts == set(CASTS) and casts <= M.expressions


def test_unknown_expression_runs_incorrectly():
    with pytest.raises(ModelError):
        M.expression(OBJ, None, "div", [1, 2])


# --------------------------------------------------------------- properties

@given(IN_RANGE, IN_RANGE)
def test_operators_agree_with_python_in_range(a, b):
    for op, py in (("+", operator.add), ("-", operator.sub), ("*", operator.mul)):
        expected = py(a, b)
        if in_range(expected):
            assert OPERATORS[op](a, b) == expected
        else:
            with pytest.raises(ModelError):
                OPERATORS[op](a, b)
    assert bit_or(a, b) == (a | b) and in_range(a | b)
    assert bit_and(a, b) == (a & b) and in_range(a & b)


@given(SMALL, SMALL)
def test_small_operands_never_overflow(a, b):
    assert add(a, b) == a + b and sub(a, b) == a - b and mul(a, b) == a * b


@given(st.integers(min_value=0, max_value=MAX_VALUE))
def test_complement_is_an_involution_and_xor_with_mask(x):
    assert bit_not(bit_not(x)) == x
    assert bit_not(x) == x ^ (2 ** 64 - 1)


@given(st.integers(min_value=SIGNED_MIN, max_value=-1))
def test_complement_of_negative_is_signed(x):
    assert bit_not(x) == ~x == -x - 1


def _fold_ok(xs, op, start):
    acc = start
    for x in xs:
        acc = op(acc, x)
        if not in_range(acc):
            return None
    return acc


@given(st.lists(IN_RANGE, max_size=6))
def test_sum_agrees_with_python_fold(xs):
    expected = _fold_ok(xs, operator.add, 0)
    if expected is None:
        with pytest.raises(ModelError):
            sum_(xs)
    else:
        assert sum_(xs) == expected == sum(xs)


@given(st.lists(st.integers(min_value=-(2 ** 20), max_value=2 ** 20), max_size=6))
def test_product_agrees_with_python_fold(xs):
    expected = _fold_ok(xs, operator.mul, 1)
    if expected is None:
        with pytest.raises(ModelError):
            product(xs)
    else:
        assert product(xs) == expected == functools.reduce(operator.mul, xs, 1)
