"""The assignment's outcome codes, and the comparison that gives one test case its code.

The codes 0-63 are the assignment autograder's; kernelnet uses them with the meanings below
(its own words). The ranges 3-5 and 62-63 are split by kernelnet as documented on each
member. Codes 70-79 are kernelnet's additions for what the sandbox stops (the assignment's
list has nothing for them); they never collide with the assignment's.

How :func:`compare` decides, in this order (the first rule that applies gives the code):

1. **55, an input changed.** Checked before the outputs: a function that modifies an
   argument in place (``np.maximum(x, 0, out=x)``) often returns the right values, and when
   it does not, the mutation is the cause worth naming. The reason names the argument.
2. **50, structure.** ``expected`` is an array, a scalar, or a tuple/list/dict of them; the
   submission must return the same structure (a list where a tuple is expected is fine:
   the child sends data back, not Python types). ``None``, a missing output or a wrong
   count is 50.
3. **51, dtype.** Every leaf goes through ``np.asarray`` first, so a Python ``float`` and
   ``np.float64`` are the same (float64), and a Python ``int`` is int64. Then the dtypes
   must be equal (byte order aside): float32 for float64 is 51, an int for a float is 51.
4. **52, shape.** Exact: ``(10,)`` for ``(1, 10)`` is 52, and so is ``(1,)`` for a scalar.
5. **53/54, values.** An element matches when ``|got - expected| <= atol + rtol*|expected|``
   (NaN matches NaN, an infinity the same infinity, -0.0 matches 0.0); integers, booleans
   and strings must be equal. 54 when every mismatching element differs by exactly 1.0
   (the float64 difference is 1.0: rounding, or an off-by-one) and 53 otherwise.
   A NaN or infinity where a finite number is expected is a wrong value (53, and the reason
   shows ``nan``), unless the test is a divergence test (``divergence=True``: the spec says
   non-finite outputs there mean the computation blew up, such as a softmax without the
   max shift on large scores), where it is 61.

Reasons are one line a student can act on: what was expected, what came, where (the first
differing element in C order), how far off, and the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np


class Code(IntEnum):
    """One test case's outcome."""

    SUCCESS = 0
    UNKNOWN_FAILURE = 1  # the submission's process ended without saying why
    EXCEPTION = 2  # the submission raised an exception it did not handle (or did not load)
    GRADER_ERROR = 3  # 3-5: kernelnet's side failed; 3: the grader's own code
    REFERENCE_ERROR = 4  # the reference could not compute the expected outputs for the case
    SANDBOX_ERROR = 5  # the child process could not be started or its reply was unreadable
    NOT_IMPLEMENTED = 40  # the function still raises NotImplementedError (an untouched handout)
    WRONG_OUTPUT = 50  # uncategorised: missing outputs, a wrong count, None
    WRONG_DTYPE = 51
    WRONG_SHAPE = 52
    WRONG_VALUES = 53
    OFF_BY_ONE = 54  # every differing element is off by exactly 1.0
    INPUT_CHANGED = 55  # an argument was modified in place
    NOT_GOOD_ENOUGH = 60  # a trained model's metric misses its threshold
    DIVERGED = 61  # NaN or infinity where training should give numbers
    BAD_LIKELIHOOD = 62  # 62-63: converged to a poor likelihood (kernelnet produces 62 only)
    # kernelnet's additions (the sandbox's outcomes):
    TIME_LIMIT = 70  # wall-clock or CPU time limit of the test exceeded
    MEMORY_LIMIT = 71  # the address-space limit was hit (a MemoryError or a refused mapping)
    FORBIDDEN = 72  # something the assignment forbids: an import, a socket, a file outside
    OUTPUT_TOO_LARGE = 73  # printed output or returned data beyond the limit


MEANINGS: dict[int, str] = {
    0: "success",
    1: "the submission's process ended with an unknown failure",
    2: "the submission raised an exception it did not handle",
    3: "kernelnet's grader failed (not the submission's fault)",
    4: "kernelnet's reference failed on this case (not the submission's fault)",
    5: "kernelnet's sandbox failed (not the submission's fault)",
    40: "not implemented yet (NotImplementedError)",
    50: "wrong output (missing, None, or the wrong number of outputs)",
    51: "an output has the wrong dtype",
    52: "an output has the wrong shape",
    53: "an output's values are wrong, or too far off for the tolerance",
    54: "an output's values are off by exactly 1 (rounding?)",
    55: "an input argument was changed in place",
    60: "the trained model is not good enough",
    61: "the computation diverged (NaN or infinity)",
    62: "the model converged to a bad likelihood",
    63: "the model converged to a bad likelihood",
    70: "time limit exceeded",
    71: "memory limit exceeded",
    72: "forbidden operation (an import, file or network access the assignment does not allow)",
    73: "output too large",
}


def meaning(code: int) -> str:
    """What ``code`` means, in one phrase (any code of the assignment's ranges)."""
    return MEANINGS.get(int(code), f"unknown code {int(code)}")


class Verdict(NamedTuple):
    """The code of one test case and a one-line reason (empty on success)."""

    code: Code
    reason: str = ""


PASS = Verdict(Code.SUCCESS, "")


def _show(value: Any) -> str:
    """A number as a student would type it: 0.25, nan, -inf, 3, True."""
    if isinstance(value, (np.floating, float)):
        return repr(float(value))
    if isinstance(value, (np.integer, int)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (np.complexfloating, complex)):
        return repr(complex(value))
    return repr(value.item() if isinstance(value, np.generic) else value)


def _index(index: tuple[int, ...]) -> str:
    """`` at index (2, 1)``, or `` at index (3,)`` (how Python writes a 1-tuple)."""
    inside = ", ".join(str(int(i)) for i in index)
    return f" at index ({inside}{',' if len(index) == 1 else ''})"


def _shape(shape: tuple[int, ...]) -> str:
    return "a scalar (shape ())" if shape == () else f"shape {tuple(int(s) for s in shape)}"


def _shapes(want: tuple[int, ...], have: tuple[int, ...]) -> str:
    """``expected shape (1, 10) but got (10,)``."""
    if want and have:
        return f"expected shape {tuple(map(int, want))} but got {tuple(map(int, have))}"
    return f"expected {_shape(want)} but got {_shape(have)}"


def _dtype(dtype: np.dtype) -> str:
    return str(dtype.newbyteorder("="))


def _as_array(value: Any) -> np.ndarray | None:
    """A leaf as an array (Python scalars included); None if numpy cannot make one."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError):  # ragged lists
        return None


def _is_numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biufc"


def _mismatches(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Boolean mask of the elements that do not match (shapes and dtypes are equal)."""
    if expected.dtype.kind in "fc":
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.abs(got - expected) <= atol + rtol * np.abs(expected)
        same_special = (got == expected) | (np.isnan(got) & np.isnan(expected))
        return ~(close | same_special)
    return np.asarray(got != expected)


def _compare_values(
    expected: np.ndarray,
    got: np.ndarray,
    rtol: float,
    atol: float,
    divergence: bool,
    label: str,
) -> Verdict:
    bad = _mismatches(expected, got, rtol, atol)
    if not bad.any():
        return PASS
    count = int(bad.sum())
    first = tuple(np.argwhere(bad)[0]) if bad.ndim else ()
    where = _index(first) if first else ""
    first_expected, first_got = expected[first], got[first]
    numeric = _is_numeric(expected)
    if numeric and expected.dtype.kind in "fc":
        blown = ~np.isfinite(got) & np.isfinite(expected)
        if divergence and blown.any():
            index = tuple(np.argwhere(blown)[0]) if blown.ndim else ()
            return Verdict(
                Code.DIVERGED,
                f"{label}got {_show(got[index])}{_index(index) if index else ''} where "
                f"{_show(expected[index])} was expected: the computation overflowed "
                f"({int(blown.sum())} of {got.size} elements are nan or inf)",
            )
    of = f"{count} of {expected.size} elements differ" if expected.size > 1 else ""
    if numeric:
        # float64 differences: int64 or bool subtraction could overflow or be refused.
        wide = np.complex128 if expected.dtype.kind == "c" else np.float64
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(got[bad].astype(wide) - expected[bad].astype(wide))
        if np.all(diff == 1.0):
            tail = (
                f"; {of}, every one by exactly 1 (rounding?)"
                if of
                else "; off by exactly 1 (rounding?)"
            )
            return Verdict(
                Code.OFF_BY_ONE,
                f"{label}expected {_show(first_expected)} but got {_show(first_got)}{where}{tail}",
            )
        worst = float(np.max(diff)) if not np.isnan(diff).any() else math.nan
        if math.isnan(worst) or math.isinf(worst):
            error = "nan or inf where a finite number is expected"
        elif expected.dtype.kind in "fc":
            error = (
                f"max abs error {_show(worst)} > tolerance {_show(atol)} + {_show(rtol)}*|expected|"
            )
        else:
            error = f"max abs error {_show(worst)} (integers must be equal)"
        parts = [f"{label}expected {_show(first_expected)} but got {_show(first_got)}{where}"]
        parts += [of] if of else []
        parts.append(error)
        return Verdict(Code.WRONG_VALUES, "; ".join(parts))
    tail = f"; {of}" if of else ""
    return Verdict(
        Code.WRONG_VALUES,
        f"{label}expected {_show(first_expected)} but got {_show(first_got)}{where}{tail}",
    )


def _compare_leaf(
    expected: Any, got: Any, rtol: float, atol: float, divergence: bool, label: str
) -> Verdict:
    if got is None:
        return Verdict(Code.WRONG_OUTPUT, f"{label}expected an array but got None")
    want, have = _as_array(expected), _as_array(got)
    if want is None:
        raise TypeError(f"{label}the expected output is not an array: {type(expected).__name__}")
    if have is None or have.dtype.kind == "O" and want.dtype.kind != "O":
        return Verdict(
            Code.WRONG_OUTPUT,
            f"{label}expected an array of {_dtype(want.dtype)} but got {type(got).__name__} "
            "that is not one (a ragged list, or Python objects)",
        )
    if want.dtype.newbyteorder("=") != have.dtype.newbyteorder("="):
        return Verdict(
            Code.WRONG_DTYPE, f"{label}expected {_dtype(want.dtype)} but got {_dtype(have.dtype)}"
        )
    if want.shape != have.shape:
        return Verdict(Code.WRONG_SHAPE, f"{label}{_shapes(want.shape, have.shape)}")
    return _compare_values(want, have, rtol, atol, divergence, label)


def _is_structure(value: Any) -> bool:
    return isinstance(value, (tuple, list, Mapping))


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return f"a dict of {len(value)} outputs"
    if isinstance(value, (tuple, list)):
        return f"{len(value)} output{'' if len(value) == 1 else 's'}"
    return "one array" if isinstance(value, np.ndarray) and value.ndim else "one value"


def _compare_tree(
    expected: Any,
    got: Any,
    rtol: float,
    atol: float,
    divergence: bool,
    path: str,
    names: Sequence[str] | None,
) -> Verdict:
    label = f"output {path}: " if path else ""
    if not _is_structure(expected):
        if _is_structure(got):
            return Verdict(Code.WRONG_OUTPUT, f"{label}expected one array but got {_kind(got)}")
        return _compare_leaf(expected, got, rtol, atol, divergence, label)
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return Verdict(
                Code.WRONG_OUTPUT, f"{label}expected {_kind(expected)} but got {_kind(got)}"
            )
        missing = [key for key in expected if key not in got]
        if missing:
            return Verdict(Code.WRONG_OUTPUT, f"{label}missing output {missing[0]!r}")
        extra = [key for key in got if key not in expected]
        if extra:
            return Verdict(Code.WRONG_OUTPUT, f"{label}unexpected output {extra[0]!r}")
        children = [(str(key), expected[key], got[key]) for key in expected]
    else:
        if not isinstance(got, (tuple, list)):
            return Verdict(
                Code.WRONG_OUTPUT, f"{label}expected {_kind(expected)} but got {_kind(got)}"
            )
        if len(got) != len(expected):
            return Verdict(
                Code.WRONG_OUTPUT, f"{label}expected {_kind(expected)} but got {_kind(got)}"
            )
        top = not path and names is not None and len(names) == len(expected)
        children = [
            (names[i] if top else f"{i + 1} of {len(expected)}", e, g)
            for i, (e, g) in enumerate(zip(expected, got))
        ]
    for name, want, have in children:
        child = f"{path}.{name}" if path else name
        verdict = _compare_tree(want, have, rtol, atol, divergence, child, None)
        if verdict.code != Code.SUCCESS:
            return verdict
    return PASS


def _input_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> Verdict:
    for name, old in before.items():
        if name not in after:
            return Verdict(
                Code.WRONG_OUTPUT, f"argument {name!r} did not come back from the submission"
            )
        was, now = _as_array(old), _as_array(after[name])
        if was is None or now is None:
            continue  # not data (a callable, say): nothing to compare
        fix = "; work on a copy (x = x.copy()) or out-of-place operations"
        if was.dtype.newbyteorder("=") != now.dtype.newbyteorder("=") or was.shape != now.shape:
            return Verdict(
                Code.INPUT_CHANGED,
                f"argument {name!r} was changed in place (it was {_dtype(was.dtype)} "
                f"{_shape(was.shape)}, now {_dtype(now.dtype)} {_shape(now.shape)}){fix}",
            )
        if was.dtype.kind in "fc":
            differ = ~((was == now) | (np.isnan(was) & np.isnan(now)))
        else:
            differ = np.asarray(was != now)
        if differ.any():
            index = tuple(np.argwhere(differ)[0]) if differ.ndim else ()
            return Verdict(
                Code.INPUT_CHANGED,
                f"argument {name!r} was changed in place{_index(index) if index else ''}: it was "
                f"{_show(was[index])}, now {_show(now[index])}{fix}",
            )
    return PASS


def compare(
    expected: Any,
    got: Any,
    *,
    rtol: float,
    atol: float,
    inputs_before: Mapping[str, Any] | None = None,
    inputs_after: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    divergence: bool = False,
) -> Verdict:
    """The verdict for one test case (rules in the module docstring).

    ``expected``/``got``: an array or scalar, or a tuple/list/dict of them (nested).
    ``inputs_before``/``inputs_after``: argument name -> value before the call and after it
    (as the submission left it). ``names``: the outputs' names when ``expected`` is a
    tuple, for the reason (``output dW: ...``). ``divergence``: non-finite values where
    finite ones are expected are 61 instead of 53.
    """
    if inputs_before is not None:
        verdict = _input_changed(inputs_before, inputs_after or {})
        if verdict.code != Code.SUCCESS:
            return verdict
    if got is None and expected is not None:
        return Verdict(
            Code.WRONG_OUTPUT, f"expected {_kind(expected)} but got None (a missing return?)"
        )
    return _compare_tree(expected, got, rtol, atol, divergence, "", names)


def compare_threshold(metric: str, value: Any, threshold: float, higher_is_better: bool) -> Verdict:
    """A training test: 61 when ``value`` is NaN/inf (diverged), 60 when it misses
    ``threshold`` (``>= threshold`` passes when higher is better, ``<=`` otherwise), else 0."""
    array = _as_array(value)
    if value is None or array is None or array.shape != () or not _is_numeric(array):
        return Verdict(Code.WRONG_OUTPUT, f"{metric}: expected one number but got {_kind(value)}")
    number = float(array.real) if array.dtype.kind == "c" else float(array)
    if not math.isfinite(number):
        return Verdict(Code.DIVERGED, f"{metric} is {_show(number)}: training diverged")
    if higher_is_better and number < threshold:
        return Verdict(
            Code.NOT_GOOD_ENOUGH,
            f"{metric} {_show(number)} is below the threshold {_show(threshold)}",
        )
    if not higher_is_better and number > threshold:
        return Verdict(
            Code.NOT_GOOD_ENOUGH,
            f"{metric} {_show(number)} is above the threshold {_show(threshold)}",
        )
    return PASS


# What a student usually does about each code (shown by `kernelnet grade` beside a failure).
HINTS: dict[int, str] = {
    1: "your code ended the process (os._exit, a signal, closed pipes): return instead",
    2: "your code raised: the lines shown are where; run the function yourself on small inputs",
    40: "the function still raises NotImplementedError: write its body",
    50: "return exactly the outputs the docstring lists, in that order",
    51: "return float64 arrays (np.float64): not float32, not integers",
    52: "check the shapes in the docstring: a (1, D) row is not a (D,) vector; check transposes",
    53: "the values differ: check the formula against the docstring, term by term",
    54: "off by exactly 1 everywhere it differs: rounding, or an off-by-one index",
    55: "an input array was changed in place: compute on a copy (x.copy(), or out = f(x))",
    60: "it trains but not well enough: check the gradients, the learning rate, the updates",
    61: "NaN or infinity: shift scores by their max before exp, lower the learning rate",
    70: "too slow: vectorise loops over samples with NumPy; look for a loop that never ends",
    71: "too much memory: avoid materialising large intermediate arrays",
    72: "an import the assignment does not allow: use only the allowed libraries",
    73: "too much printed or returned: remove debugging prints",
}
