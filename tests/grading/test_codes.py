"""The assignment's codes as kernelnet decides them: one table of cases, exact codes and a
fragment of each reason, plus properties that hold for any array."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernelnet.grading.codes import Code, compare, compare_threshold, meaning

TOL = {"rtol": 1e-5, "atol": 1e-8}
A = np.arange(6, dtype=np.float64).reshape(2, 3) / 4  # 0, 0.25, ..., 1.25
SQUARE = np.array([[1.0, 2.0], [5.0, 4.0]])


def _with(array, index, value):
    out = np.array(array, copy=True)
    out[index] = value
    return out


CASES = [
    ("identical", A, A.copy(), Code.SUCCESS, ""),
    ("within tolerance", A, A + 1e-9, Code.SUCCESS, ""),
    ("float32 for float64", A, A.astype(np.float32), Code.WRONG_DTYPE,
     "expected float64 but got float32"),
    ("int for float", A, np.arange(6).reshape(2, 3), Code.WRONG_DTYPE,
     "expected float64 but got int64"),
    ("python int for a float scalar", 2.0, 2, Code.WRONG_DTYPE, "expected float64 but got int64"),
    ("python float is float64", np.float64(0.5), 0.5, Code.SUCCESS, ""),
    ("(D,) for (1, D)", np.zeros((1, 10)), np.zeros(10), Code.WRONG_SHAPE,
     "expected shape (1, 10) but got (10,)"),
    ("(1,) for a scalar", 1.0, np.ones(1), Code.WRONG_SHAPE, "expected a scalar (shape ())"),
    ("transposed, not square", A, A.T.copy(), Code.WRONG_SHAPE,
     "expected shape (2, 3) but got (3, 2)"),
    ("transposed, square", SQUARE, SQUARE.T.copy(), Code.WRONG_VALUES,
     "expected 2.0 but got 5.0 at index (0, 1)"),
    ("values off, first index in C order", A, _with(_with(A, (1, 2), 9.0), (1, 0), 1.0),
     Code.WRONG_VALUES,
     "expected 0.75 but got 1.0 at index (1, 0); 2 of 6 elements differ; max abs error 7.75 > "
     "tolerance 1e-08 + 1e-05*|expected|"),
    ("all off by +-1", A, A + np.array([[1, -1, 0], [1, 0, -1]]), Code.OFF_BY_ONE,
     "exactly 1"),
    ("+-1 and one 0.5", A, A + np.array([[1, -1, 0.5], [1, 0, -1]]), Code.WRONG_VALUES,
     "max abs error 1.0"),
    ("integers off by one", np.array([1, 2, 3]), np.array([1, 3, 3]), Code.OFF_BY_ONE,
     "expected 2 but got 3 at index (1,)"),
    ("nan for a number", A, _with(A, (0, 1), np.nan), Code.WRONG_VALUES,
     "expected 0.25 but got nan at index (0, 1)"),
    ("inf for a number", A, _with(A, (1, 1), np.inf), Code.WRONG_VALUES, "got inf"),
    ("nan where nan is expected", _with(A, 0, np.nan), _with(A, 0, np.nan), Code.SUCCESS, ""),
    ("-0.0 and 0.0", np.array([-0.0, 0.0]), np.array([0.0, -0.0]), Code.SUCCESS, ""),
    ("tuple, second wrong", (A, SQUARE), (A, SQUARE + 0.5), Code.WRONG_VALUES, "output 2 of 2:"),
    ("list for a tuple", (A, SQUARE), [A, SQUARE], Code.SUCCESS, ""),
    ("wrong tuple length", (A, SQUARE), (A,), Code.WRONG_OUTPUT, "expected 2 outputs but got 1"),
    ("one array for a tuple", (A, SQUARE), A, Code.WRONG_OUTPUT, "expected 2 outputs"),
    ("None returned", A, None, Code.WRONG_OUTPUT, "got None"),
    ("None inside a tuple", (A, SQUARE), (A, None), Code.WRONG_OUTPUT, "got None"),
    ("dict missing a key", {"dW": A, "db": SQUARE}, {"dW": A}, Code.WRONG_OUTPUT,
     "missing output 'db'"),
    ("a list for one array", A, [[1.0], [1.0, 2.0]], Code.WRONG_OUTPUT, "expected one array"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "expected", "got", "code", "fragment"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_compare_gives_the_exact_code(label, expected, got, code, fragment):
    verdict = compare(expected, got, **TOL)
    assert verdict.code == code, verdict.reason
    assert fragment in verdict.reason
    assert "\n" not in verdict.reason


def test_output_names_are_in_the_reason():
    verdict = compare((A, SQUARE), (A, SQUARE.astype(np.float32)), names=["dX", "dW"], **TOL)
    assert verdict == (Code.WRONG_DTYPE, "output dW: expected float64 but got float32")


def test_an_input_changed_in_place_is_55_naming_the_argument():
    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    after = np.maximum(x, 0)  # what relu with out=x leaves behind
    verdict = compare(
        after, after, inputs_before={"W": x, "x": x}, inputs_after={"W": x, "x": after}, **TOL
    )
    assert verdict.code == Code.INPUT_CHANGED
    assert "argument 'x'" in verdict.reason and "index (0, 0)" in verdict.reason
    # checked before the outputs: the cause is named even when the outputs are wrong too
    wrong = compare(after + 1, None, inputs_before={"x": x}, inputs_after={"x": after}, **TOL)
    assert wrong.code == Code.INPUT_CHANGED


def test_an_input_whose_shape_changed_is_55():
    x = np.zeros((2, 3))
    verdict = compare(x, x, inputs_before={"x": x}, inputs_after={"x": x.ravel()}, **TOL)
    assert verdict.code == Code.INPUT_CHANGED and "shape (6,)" in verdict.reason


def test_unchanged_inputs_pass():
    x = np.array([np.nan, 1.0])
    assert compare(x, x.copy(), inputs_before={"x": x, "C": 5.0},
                   inputs_after={"x": x.copy(), "C": 5.0}, **TOL).code == Code.SUCCESS  # fmt: skip


def test_non_finite_output_is_61_only_in_a_divergence_test():
    expected = np.array([0.5, 0.25])
    got = np.array([np.nan, 0.25])
    assert compare(expected, got, **TOL).code == Code.WRONG_VALUES
    verdict = compare(expected, got, divergence=True, **TOL)
    assert verdict.code == Code.DIVERGED and "nan" in verdict.reason
    # a finite wrong value in a divergence test is still a wrong value
    assert compare(expected, expected * 2, divergence=True, **TOL).code == Code.WRONG_VALUES


@pytest.mark.parametrize(
    ("value", "higher", "code", "fragment"),
    [
        (0.95, True, Code.SUCCESS, ""),
        (0.9, True, Code.SUCCESS, ""),
        (0.81, True, Code.NOT_GOOD_ENOUGH, "accuracy 0.81 is below the threshold 0.9"),
        (float("nan"), True, Code.DIVERGED, "nan"),
        (np.float32("inf"), False, Code.DIVERGED, "inf"),
        (0.5, False, Code.SUCCESS, ""),
        (1.5, False, Code.NOT_GOOD_ENOUGH, "above the threshold"),
        (None, True, Code.WRONG_OUTPUT, "expected one number"),
        (np.ones(3), True, Code.WRONG_OUTPUT, "expected one number"),
    ],
)
def test_compare_threshold(value, higher, code, fragment):
    verdict = compare_threshold("accuracy", value, 0.9 if higher else 1.0, higher)
    assert verdict.code == code and fragment in verdict.reason


def test_every_code_has_a_meaning():
    for code in [*Code, 63]:
        assert not meaning(code).startswith("unknown")
    assert all(70 <= code < 80 for code in Code if code > 63)


finite = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5),
    elements={"allow_nan": False, "allow_infinity": False, "min_value": -1e6, "max_value": 1e6},
)


@settings(max_examples=60, deadline=None)
@given(finite)
def test_an_array_equals_itself(x):
    assert compare(x, x.copy(), **TOL).code == Code.SUCCESS


# "Exactly 1" is a float64 difference: values that are multiples of 1/64 below 2**14 keep
# x + 1 - x == 1 exact and 1 beyond rtol*|x| (for 1e5, x + 1 is within the tolerance).
dyadic = hnp.arrays(
    dtype=np.float64,
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
    elements=st.integers(-(2**20), 2**20).map(lambda k: k / 64),
)


@settings(max_examples=60, deadline=None)
@given(dyadic)
def test_off_by_one_everywhere_is_54(x):
    assert compare(x, x + 1, **TOL).code == Code.OFF_BY_ONE


@settings(max_examples=60, deadline=None)
@given(finite, st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64]))
def test_a_dtype_change_is_51_whatever_the_values(x, dtype):
    if x.dtype == dtype:
        dtype = np.complex128
    with np.errstate(over="ignore", invalid="ignore"):
        got = x.astype(dtype)
    assert compare(x, got, **TOL).code == Code.WRONG_DTYPE
