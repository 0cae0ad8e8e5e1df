"""Assignment specs: strict YAML describing what students write and how each function is
tested, loaded into a frozen dataclass tree; and the expected outputs of a test case.

A spec is data, read with the configs' strict loader (positions, no aliases, no tags), and
nothing in it is executed: a function's ``reference`` is a *name* looked up in
:data:`REFERENCES`, a fixed table of kernelnet functions (never an import of a dotted path
from the file). Layout (every key is checked; see ``kernelnet/assignments/hw3.yaml``)::

    assignment: {name, title, allowed_imports: [numpy, ...]}
    defaults: {rtol, atol, time_limit, memory_mb}          # optional, per-case overridable
    files:
      FILE.py:
        functions:
          NAME:
            signature: [param, ...]           # the parameter names, in order
            outputs: [name, ...]              # one name: the function returns one value
            shapes: {param or output: [dim, ...]}   # dims: ints or symbols shared by a case
            doc: text for the handout          # shapes, dtypes, the formula
            reference: REGISTERED_NAME
            cases:
              - name, points, visibility (visible|hidden), seed,
                inputs: {param: generator or constant}, and optionally
                rtol, atol, time_limit, memory_mb, divergence (non-finite outputs are 61),
                metric: {name: REGISTERED_METRIC, threshold, higher_is_better}

Input generators (drawn in the order the inputs are written, from one
``numpy.random.default_rng(seed)`` per case, so a seed gives the same bits every time):
``normal: {shape, mean, std}``, ``uniform: {shape, low, high}``,
``integers: {shape, low, high}`` (high excluded), ``choice: {shape, values}``,
``array: {values, dtype}``, ``data: {file, array}`` (an array of a shipped ``.npz``), or a
plain number (passed as a Python float/int, as a student would call the function).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet.config import read_config_file
from kernelnet.config.yaml_loader import Location, config_error
from kernelnet.errors import ConfigError
from kernelnet.nn import layers, losses
from kernelnet.svm import primal

ASSIGNMENTS = Path(__file__).resolve().parent.parent / "assignments"
VISIBILITIES = ("visible", "hidden")
DTYPES = ("float64", "float32", "int64", "int32", "bool")
MAX_ELEMENTS = 10_000_000  # per generated input: a spec is not a way to fill the memory
DEFAULT_LIMITS = {"rtol": 1e-5, "atol": 1e-8, "time_limit": 10.0, "memory_mb": 1024.0}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- the references: small adapters from the students' signatures to kernelnet's code --
def _svm_objective(X, y, w, b, C):
    return primal.hinge_objective(w, b, X, y, C)


def _svm_gradients(X, y, w, b, C):
    grad_w, grad_b = primal.hinge_gradient(w, b, X, y, C)
    return grad_w, float(grad_b)


def _svm_train(X, y, C, learning_rate, num_epochs):
    fit = primal.fit_gradient_descent(X, y, C, learning_rate, num_epochs, history=False)
    return fit.w, float(fit.b)


def _svm_predict(X, w, b):
    return primal.predict(w, b, X)


def _fc_forward(X, W, b):  # b is (1, D_out) in the assignment, broadcast over the rows
    return layers.affine_forward(X, W, b)[0]


def _fc_backward(dY, X, W, b):
    dX, dW, db = layers.affine_backward(dY, (X, W))
    return dX, dW, db.reshape(1, -1)


def _relu_forward(X):
    return layers.relu_forward(X)[0]


def _relu_backward(dY, X):
    return layers.relu_backward(dY, layers.relu_forward(X)[1])


def _softmax_loss(scores, y):
    return losses.softmax_cross_entropy(scores, y)


REFERENCES: dict[str, Callable[..., Any]] = {
    "primal_svm.objective": _svm_objective,
    "primal_svm.gradients": _svm_gradients,
    "primal_svm.train": _svm_train,
    "primal_svm.predict": _svm_predict,
    "nn.fc_forward": _fc_forward,
    "nn.fc_backward": _fc_backward,
    "nn.relu_forward": _relu_forward,
    "nn.relu_backward": _relu_backward,
    "nn.softmax_loss": _softmax_loss,
}


def _svm_accuracy(inputs: Mapping[str, Any], outputs: Any) -> float:
    """Training accuracy of the returned ``(w, b)`` on the case's ``X``, ``y``."""
    w, b = outputs
    return float(np.mean(primal.predict(np.asarray(w), float(b), inputs["X"]) == inputs["y"]))


# A training test's metric: computed in the parent from the case's inputs and the
# submission's outputs.
METRICS: dict[str, Callable[[Mapping[str, Any], Any], float]] = {
    "svm_train_accuracy": _svm_accuracy,
}


# -- the tree --
@dataclass(frozen=True)
class InputSpec:
    """How one argument is made: ``kind`` is a generator name or ``constant``."""

    name: str
    kind: str
    options: tuple[tuple[str, Any], ...]  # the generator's settings, in file order

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    threshold: float
    higher_is_better: bool


@dataclass(frozen=True)
class CaseSpec:
    name: str
    points: float
    visibility: str
    seed: int
    inputs: tuple[InputSpec, ...]
    rtol: float
    atol: float
    time_limit: float  # seconds of wall-clock time
    memory_mb: float  # address-space limit of the child
    divergence: bool  # non-finite outputs where numbers are expected are 61, not 53
    metric: MetricSpec | None
    where: str  # file:line of the case, for messages


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    signature: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: tuple[tuple[str, tuple[int | str, ...]], ...]
    doc: str
    reference: str
    cases: tuple[CaseSpec, ...]

    def shape_of(self, name: str) -> tuple[int | str, ...] | None:
        return dict(self.shapes).get(name)


@dataclass(frozen=True)
class FileSpec:
    name: str
    functions: tuple[FunctionSpec, ...]


@dataclass(frozen=True)
class AssignmentSpec:
    name: str
    title: str
    allowed_imports: tuple[str, ...]
    files: tuple[FileSpec, ...]
    source: str

    def functions(self) -> list[tuple[FileSpec, FunctionSpec]]:
        return [(file, function) for file in self.files for function in file.functions]


# -- strict reading --
class _Reader:
    """Checks of raw values against the layout, each failing with
    ``file:line:col: dotted.path: what is wrong`` (the configs' format)."""

    def __init__(self, locations: dict[str, Location], source: str):
        self.locations, self.source = locations, source

    def fail(self, path: str, message: str) -> ConfigError:
        return config_error(self.locations.get(path, Location(self.source)), path, message)

    def mapping(self, raw: Any, path: str, allowed: tuple[str, ...], required=()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(path, f"must be a mapping (got {_kind(raw)})")
        for key in raw:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                tip = f"did you mean {hint[0]!r}?" if hint else f"valid keys: {', '.join(allowed)}"
                raise self.fail(_join(path, key), f"unknown key; {tip}")
        for key in required:
            if key not in raw:
                raise self.fail(path, f"{key!r} is required")
        return raw

    def string(self, raw: Any, path: str, pattern: re.Pattern | None = None) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.fail(path, f"must be a non-empty string (got {_kind(raw)})")
        if pattern is not None and not pattern.match(raw):
            raise self.fail(path, f"{raw!r} is not a valid name (letters, digits, _)")
        return raw

    def number(self, raw: Any, path: str, *, low: float = 0.0, integer=False, strict=False):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise self.fail(path, f"must be a finite number (got {_kind(raw)})")
        if integer and (isinstance(raw, float) and not raw.is_integer()):
            raise self.fail(path, f"must be an integer (got {raw!r})")
        if raw < low or (strict and raw == low):
            raise self.fail(path, f"must be {'>' if strict else '>='} {low:g} (got {raw!r})")
        return int(raw) if integer else float(raw)

    def names(self, raw: Any, path: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(path, f"must be a non-empty list of names (got {_kind(raw)})")
        names = tuple(self.string(item, f"{path}[{i}]", _NAME) for i, item in enumerate(raw))
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail(f"{path}[{i}]", f"{name!r} is listed twice")
        return names

    def choice(self, raw: Any, path: str, choices: Mapping[str, Any] | tuple, what: str) -> str:
        if not isinstance(raw, str) or raw not in choices:
            hint = difflib.get_close_matches(str(raw), list(choices), n=1)
            tip = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.fail(path, f"{raw!r} is not {what} (one of: {', '.join(choices)}){tip}")
        return raw


def _keys(raw: Any) -> tuple[str, ...]:
    """Every key of a mapping whose keys are names the file chooses (files, functions)."""
    return tuple(raw) if isinstance(raw, dict) else ()


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return repr(value)


_GENERATORS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (allowed keys, required keys)
    "normal": (("shape", "mean", "std", "dtype"), ("shape",)),
    "uniform": (("shape", "low", "high", "dtype"), ("shape",)),
    "integers": (("shape", "low", "high", "dtype"), ("shape", "high")),
    "choice": (("shape", "values"), ("shape", "values")),
    "array": (("values", "dtype"), ("values",)),
    "data": (("file", "array"), ("file", "array")),
}


def _read_input(reader: _Reader, raw: Any, name: str, path: str) -> InputSpec:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        reader.number(raw, path, low=-math.inf)  # finite; an int stays an int (num_epochs)
        return InputSpec(name, "constant", (("value", raw),))
    if isinstance(raw, bool):
        return InputSpec(name, "constant", (("value", raw),))
    if not isinstance(raw, dict) or len(raw) != 1:
        raise reader.fail(
            path, f"must be a number or one generator ({', '.join(_GENERATORS)}); got {_kind(raw)}"
        )
    ((kind, options),) = raw.items()
    reader.choice(kind, _join(path, kind), _GENERATORS, "an input generator")
    allowed, required = _GENERATORS[kind]
    where = _join(path, kind)
    reader.mapping(options, where, allowed, required)
    checked: dict[str, Any] = {}
    for key, value in options.items():
        at = _join(where, key)
        if key == "shape":
            if not isinstance(value, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
            ):
                raise reader.fail(at, f"must be a list of sizes >= 0 (got {_kind(value)})")
            if math.prod(value) > MAX_ELEMENTS:
                raise reader.fail(at, f"more than {MAX_ELEMENTS:,} elements")
            checked[key] = tuple(value)
        elif key == "dtype":
            checked[key] = reader.choice(value, at, DTYPES, "a dtype")
        elif key == "values":
            array = np.asarray(value) if isinstance(value, list) else None
            if array is None or array.dtype.kind not in "biuf" or array.size == 0:
                raise reader.fail(at, "must be a non-empty list of numbers")
            checked[key] = value
        elif key in ("file", "array"):
            checked[key] = reader.string(value, at)
        else:
            checked[key] = reader.number(value, at, low=-math.inf)
    if kind == "normal" and checked.get("std", 1.0) < 0:
        raise reader.fail(_join(where, "std"), "must be >= 0")
    if kind in ("uniform", "integers") and checked.get("low", 0) >= checked["high"]:
        raise reader.fail(_join(where, "high"), "must be greater than low")
    if kind == "data" and not re.match(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.-]+\.npz$", checked["file"]):
        raise reader.fail(_join(where, "file"), "must be a shipped archive, as folder/name.npz")
    return InputSpec(name, kind, tuple(checked.items()))


_CASE_KEYS = (
    "name", "points", "visibility", "seed", "inputs", "rtol", "atol", "time_limit",
    "memory_mb", "divergence", "metric",
)  # fmt: skip


def _read_case(
    reader: _Reader, raw: Any, path: str, signature: tuple[str, ...], defaults: dict
) -> CaseSpec:
    reader.mapping(raw, path, _CASE_KEYS, ("name", "points", "visibility", "seed", "inputs"))
    inputs_path = _join(path, "inputs")
    reader.mapping(raw["inputs"], inputs_path, signature, signature)
    inputs = tuple(
        _read_input(reader, raw["inputs"][name], name, _join(inputs_path, name))
        for name in raw["inputs"]
    )
    metric = None
    if raw.get("metric") is not None:
        at = _join(path, "metric")
        spec = reader.mapping(raw["metric"], at, ("name", "threshold", "higher_is_better"),
                              ("name", "threshold", "higher_is_better"))  # fmt: skip
        if not isinstance(spec["higher_is_better"], bool):
            raise reader.fail(_join(at, "higher_is_better"), "must be true or false")
        metric = MetricSpec(
            reader.choice(spec["name"], _join(at, "name"), METRICS, "a kernelnet metric"),
            reader.number(spec["threshold"], _join(at, "threshold"), low=-math.inf),
            spec["higher_is_better"],
        )
    divergence = raw.get("divergence", False)
    if not isinstance(divergence, bool):
        raise reader.fail(_join(path, "divergence"), "must be true or false")
    limits = {
        key: reader.number(raw[key], _join(path, key), strict=key in ("time_limit", "memory_mb"))
        if key in raw
        else defaults[key]
        for key in DEFAULT_LIMITS
    }
    return CaseSpec(
        name=reader.string(raw["name"], _join(path, "name"), _NAME),
        points=reader.number(raw["points"], _join(path, "points")),
        visibility=reader.choice(
            raw["visibility"], _join(path, "visibility"), VISIBILITIES, "a visibility"
        ),
        seed=reader.number(raw["seed"], _join(path, "seed"), integer=True),
        inputs=inputs,
        divergence=divergence,
        metric=metric,
        where=str(reader.locations.get(path, Location(reader.source))),
        **limits,
    )


_FUNCTION_KEYS = ("signature", "outputs", "shapes", "doc", "reference", "cases")


def _read_function(reader: _Reader, raw: Any, name: str, path: str, defaults) -> FunctionSpec:
    reader.mapping(raw, path, _FUNCTION_KEYS, _FUNCTION_KEYS)
    signature = reader.names(raw["signature"], _join(path, "signature"))
    outputs = reader.names(raw["outputs"], _join(path, "outputs"))
    reference = raw["reference"]
    at = _join(path, "reference")
    if not isinstance(reference, str) or reference not in REFERENCES:
        hint = difflib.get_close_matches(str(reference), list(REFERENCES), n=1)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        raise reader.fail(
            at,
            f"{reference!r} is not one of kernelnet's registered references (a spec names "
            f"one, it never imports code){tip}",
        )
    shapes_path = _join(path, "shapes")
    known = signature + outputs
    reader.mapping(raw["shapes"], shapes_path, known)
    shapes = []
    for key, dims in raw["shapes"].items():
        at = _join(shapes_path, key)
        if not isinstance(dims, list) or not all(
            (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
            or (isinstance(d, str) and _NAME.match(d))
            for d in dims
        ):
            raise reader.fail(at, "must be a list of sizes or size names ([N, D], [] for a scalar)")
        shapes.append((key, tuple(dims)))
    cases_path = _join(path, "cases")
    if not isinstance(raw["cases"], list) or not raw["cases"]:
        raise reader.fail(cases_path, "must be a non-empty list of test cases")
    cases = tuple(
        _read_case(reader, case, f"{cases_path}[{i}]", signature, defaults)
        for i, case in enumerate(raw["cases"])
    )
    return FunctionSpec(
        name=name,
        signature=signature,
        outputs=outputs,
        shapes=tuple(shapes),
        doc=reader.string(raw["doc"], _join(path, "doc")),
        reference=reference,
        cases=cases,
    )


def load_spec(path: Path | str) -> AssignmentSpec:
    """Read an assignment spec strictly; ConfigError (one line, file:line:col) if it is not
    one. Test names are unique across the assignment (they name rows in results.json)."""
    raw_config = read_config_file(Path(path))
    source = str(path)
    reader = _Reader(raw_config.locations, source)
    raw = reader.mapping(
        raw_config.values, "", ("assignment", "defaults", "files"), ("assignment", "files")
    )
    head = reader.mapping(
        raw["assignment"], "assignment", ("name", "title", "allowed_imports"), ("name", "title")
    )
    defaults = dict(DEFAULT_LIMITS)
    if raw.get("defaults") is not None:
        given = reader.mapping(raw["defaults"], "defaults", tuple(DEFAULT_LIMITS))
        for key, value in given.items():
            strict = key in ("time_limit", "memory_mb")
            defaults[key] = reader.number(value, f"defaults.{key}", strict=strict)
    files = reader.mapping(raw["files"], "files", _keys(raw["files"]))
    if not files:
        raise reader.fail("files", "must name at least one file")
    specs, seen = [], {}
    for file_name, body in files.items():
        at = f"files.{file_name}"
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\.py$", file_name):
            raise reader.fail(at, f"{file_name!r} is not a Python file name (name.py)")
        reader.mapping(body, at, ("functions",), ("functions",))
        functions = reader.mapping(body["functions"], f"{at}.functions", _keys(body["functions"]))
        read = []
        for name, function in functions.items():
            where = f"{at}.functions.{name}"
            reader.string(name, where, _NAME)
            spec = _read_function(reader, function, name, where, defaults)
            for i, case in enumerate(spec.cases):
                if case.name in seen:
                    raise reader.fail(
                        f"{where}.cases[{i}].name",
                        f"test name {case.name!r} is used twice (first at {seen[case.name]})",
                    )
                seen[case.name] = case.where
            read.append(spec)
        specs.append(FileSpec(file_name, tuple(read)))
    imports = head.get("allowed_imports", ["numpy"])
    return AssignmentSpec(
        name=reader.string(head["name"], "assignment.name", _NAME),
        title=reader.string(head["title"], "assignment.title"),
        allowed_imports=reader.names(imports, "assignment.allowed_imports"),
        files=tuple(specs),
        source=source,
    )


def shipped_spec(name: str) -> AssignmentSpec:
    """One of the assignments kernelnet ships (``hw3``)."""
    names = sorted(p.stem for p in ASSIGNMENTS.glob("*.yaml"))
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"no assignment {name!r}; shipped: {', '.join(names)}{tip}")
    return load_spec(ASSIGNMENTS / f"{name}.yaml")


# -- inputs and expected outputs --
def _draw(spec: InputSpec, rng: np.random.Generator) -> Any:
    kind, get = spec.kind, spec.option
    if kind == "constant":
        return get("value")
    if kind == "normal":
        out = rng.normal(get("mean", 0.0), get("std", 1.0), size=get("shape"))
    elif kind == "uniform":
        out = rng.uniform(get("low", 0.0), get("high", 1.0), size=get("shape"))
    elif kind == "integers":
        out = rng.integers(int(get("low", 0)), int(get("high")), size=get("shape"))
        return out.astype(get("dtype", "int64"))
    elif kind == "choice":
        return rng.choice(np.asarray(get("values")), size=get("shape"))
    elif kind == "array":
        return np.array(get("values"), dtype=get("dtype"))
    else:  # data
        from kernelnet.safe_read import read_npz
        from kernelnet.shipped import shipped

        arrays = read_npz(shipped("data") / get("file"), root=shipped("data"))
        if get("array") not in arrays:
            raise ConfigError(
                f"input {spec.name}: {get('file')} has no array {get('array')!r} "
                f"(it has: {', '.join(arrays)})"
            )
        return arrays[get("array")]
    return out.astype(get("dtype", "float64"))


def generate_inputs(case: CaseSpec, rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The case's arguments, by name, in the order they are written in the spec. ``rng``
    defaults to ``default_rng(case.seed)``; no global random state is touched."""
    rng = np.random.default_rng(case.seed) if rng is None else rng
    return {spec.name: _draw(spec, rng) for spec in case.inputs}


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def expected_outputs(
    function: FunctionSpec, case: CaseSpec, rng: np.random.Generator | None = None
) -> tuple[dict[str, Any], Any]:
    """``(inputs, expected)`` for one case, computed here in the parent: the grader sends
    only the inputs to the sandbox. The reference gets copies, so ``inputs`` stay exactly
    as generated. ``expected`` is None for a training (metric) case."""
    inputs = generate_inputs(case, rng)
    if case.metric is not None:
        return inputs, None
    arguments = [_copy(inputs[name]) for name in function.signature]
    return inputs, REFERENCES[function.reference](*arguments)
