"""Assignment specs: strict YAML describing what students write and how each function is
tested, loaded into a frozen dataclass tree; and the expected outputs of a test case.

A spec is data, read with the configs' strict loader (positions, no aliases, no tags), and
nothing in it is executed: a function's ``reference`` is a *name* looked up in
:data:`REFERENCES`, a fixed table of kernelnet functions (never an import of a dotted path
from the file). Layout (every key is checked; see ``kernelnet/assignments/hw3.yaml``)::

    assignment: {name, title, allowed_imports: [numpy, ...],
                 notebooks: {points, time_limit, memory_mb}}   # each .ipynb run top to bottom
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
``kernelnet.seeding.seeded_rng(seed)`` per case, so a seed gives the same bits every time):
``normal: {shape, mean, std}``, ``uniform: {shape, low, high}``,
``integers: {shape, low, high}`` (high excluded), ``choice: {shape, values}``,
``array: {values, dtype}``, ``data: {file, array}`` (an array of a shipped ``.npz``), or a
plain number (passed as a Python float/int, as a student would call the function);
``gram: {shape: [N, D], kernel: linear|rbf, gamma}`` (the (N, N) Gram matrix of N points
drawn N(0, 1)); ``npy: {file}`` (a file of the ``data`` section, rows and all).

``data`` (optional, top level): ``FILE.npy: {source, start, stop, handout}`` — rows
[start, stop) of a :data:`DATA_SOURCES` array (MNIST images float64 (n, 784) in [0, 1],
labels int64). ``handout: true`` (the default) files are written by :func:`write_data` into
the students' ``data/`` and copied by the sandbox into the child's; ``handout: false`` files
are the grader's only (held-out data a metric reads through ``metric.data: {arg: FILE}``).

A case may grade some outputs only (``compare: [P, q]``) and canonicalise before comparing
(``canonicalise: {sort_rows: [G, h], fix_sign: [A, b]}``, applied in order to BOTH the
expected and the submission's outputs, in the parent): ``sort_rows`` puts the rows of the
named outputs in the order of the sorted rows of ``[G | h]`` (any correct row order of a
constraint system compares equal); ``fix_sign`` multiplies them by -1 when the first
nonzero element of the first is negative. :func:`judge` grades a value case,
:func:`judge_metric` a training case (50/51, 61 for NaN/inf outputs, 52, then 60/0).

Registered references (:data:`REFERENCES`, every one a thin adapter over kernelnet's own
code): ``primal_svm.{objective,gradients,train,predict}``,
``dual_svm.{qp_matrices,alpha,bias_predict}``, ``nn.{fc_forward,fc_backward,relu_forward,
relu_backward,softmax_loss,two_layer_train,sigmoid_forward,sigmoid_backward,
conv2d_forward,adam,batchnorm_forward,batchnorm_backward,cosine_loss}``, ``knn.predict``;
metrics (:data:`METRICS`): ``svm_train_accuracy``, ``two_layer_net_accuracy``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernelnet import knn
from kernelnet.config import read_config_file
from kernelnet.config.yaml_loader import Location, config_error
from kernelnet.errors import ConfigError
from kernelnet.grading.codes import Code, Verdict, compare, compare_threshold
from kernelnet.nn import conv, layers, losses, optim, similarity
from kernelnet.nn.models import two_layer_net
from kernelnet.seeding import seeded_rng
from kernelnet.svm import dual, primal

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


def _sigmoid_forward(X):
    return layers.sigmoid_forward(X)[0]


def _sigmoid_backward(dY, X):
    return layers.sigmoid_backward(dY, layers.sigmoid_forward(X)[1])


def _conv2d_forward(x, w, b, stride, padding):  # a cross-correlation, as deep learning has it
    return conv.conv2d_forward(x, w, b, stride=int(stride), padding=int(padding))[0]


def _knn_predict(X_train, y_train, X_test, k):
    return knn.knn_predict_all_k(X_train, y_train, X_test, [int(k)])[int(k)].astype(np.int64)


def _adam(w, grads, learning_rate, beta1, beta2, eps):
    """``w`` after one Adam step per row of ``grads`` (T, *w.shape), from zero moments."""
    params = {"w": np.array(w, dtype=np.float64)}
    adam = optim.Adam(lr=learning_rate, beta1=beta1, beta2=beta2, eps=eps)
    for grad in grads:
        adam.step(params, {"w": grad})
    return params["w"]


def _batchnorm_parts(X, gamma, beta, eps):
    running = layers.RunningStats(np.zeros(X.shape[1]), np.ones(X.shape[1]))
    return layers.batchnorm_forward(X, gamma, beta, running, train=True, eps=eps)


def _batchnorm_forward(X, gamma, beta, eps):  # train mode: the batch's own statistics
    return _batchnorm_parts(X, gamma, beta, eps)[0]


def _batchnorm_backward(dY, X, gamma, beta, eps):
    return layers.batchnorm_backward(dY, _batchnorm_parts(X, gamma, beta, eps)[1])


def _cosine_loss(z, w, y):
    cos, cache = similarity.cosine_forward(z, w)
    loss, dcos = similarity.cosine_loss(cos, y)
    dz, dw = similarity.cosine_backward(dcos, cache)
    return loss, dz, dw


def qp_matrices(K: np.ndarray, y: np.ndarray, C: float):
    """The dual SVM as dense numpy arrays in cvxopt's form (the matrices
    :mod:`kernelnet.svm.dual` hands cvxopt, G dense instead of sparse):
    P = (y y') * K (N, N), q = -1 (N,), G = [-I; I] (2N, N), h = [0; C] (2N,),
    A = y' (1, N), b = 0.0 (a float)."""
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    G = np.concatenate([-np.eye(n), np.eye(n)])
    h = np.concatenate([np.zeros(n), np.full(n, float(C))])
    return np.outer(y, y) * K, -np.ones(n), G, h, y.reshape(1, -1), 0.0


def _dual_alpha(K, y, C):
    return dual.solve_dual(np.asarray(K, dtype=np.float64), y, C, solver="cvxopt").alpha


def _dual_bias_predict(K, y, C, K_test):
    """The bias and the test labels (+1.0 where f > 0, else -1.0) of the dual SVM solved on
    the Gram matrix ``K`` (N, N); ``K_test`` (M, N) holds k(x_test_i, x_train_j)."""
    alpha = _dual_alpha(K, y, C)
    coef = alpha * y
    bias, _ = dual.fit_bias(alpha, y, K @ coef, C)
    return bias, np.where(K_test @ coef + bias > 0, 1.0, -1.0)


def _two_layer_train(X, y, hidden_dim, learning_rate, num_epochs, batch_size, seed):
    """kernelnet's TwoLayerNet (affine - ReLU - affine - softmax, float64, N(0, 0.01^2)
    weights) trained by minibatch SGD, shuffled each epoch by ``seeded_rng(seed)``.
    Returns (W1 (D, H), b1 (1, H), W2 (H, K), b2 (1, K)); K = 10 classes."""
    rng = seeded_rng(seed)
    model = two_layer_net(X.shape[1], int(hidden_dim), 10, rng, weight_scale=1e-2,
                          dtype=np.float64)  # fmt: skip
    sgd = optim.SGD(learning_rate)
    for _ in range(int(num_epochs)):
        order = rng.permutation(len(X))
        for start in range(0, len(X), int(batch_size)):
            batch = order[start : start + int(batch_size)]
            _, grads = model.loss(X[batch], y[batch])
            sgd.step(model.params, grads)
    p = model.params
    return p["W1"], p["b1"].reshape(1, -1), p["W2"], p["b2"].reshape(1, -1)


REFERENCES: dict[str, Callable[..., Any]] = {
    "primal_svm.objective": _svm_objective,
    "primal_svm.gradients": _svm_gradients,
    "primal_svm.train": _svm_train,
    "primal_svm.predict": _svm_predict,
    "dual_svm.qp_matrices": qp_matrices,
    "dual_svm.alpha": _dual_alpha,
    "dual_svm.bias_predict": _dual_bias_predict,
    "nn.fc_forward": _fc_forward,
    "nn.fc_backward": _fc_backward,
    "nn.relu_forward": _relu_forward,
    "nn.relu_backward": _relu_backward,
    "nn.softmax_loss": _softmax_loss,
    "nn.two_layer_train": _two_layer_train,
    "nn.sigmoid_forward": _sigmoid_forward,
    "nn.sigmoid_backward": _sigmoid_backward,
    "nn.conv2d_forward": _conv2d_forward,
    "nn.adam": _adam,
    "nn.batchnorm_forward": _batchnorm_forward,
    "nn.batchnorm_backward": _batchnorm_backward,
    "nn.cosine_loss": _cosine_loss,
    "knn.predict": _knn_predict,
}


def _svm_accuracy(inputs: Mapping[str, Any], outputs: Any, data: Mapping[str, Any]) -> float:
    """Training accuracy of the returned ``(w, b)`` on the case's ``X``, ``y``."""
    w, b = outputs
    return float(np.mean(primal.predict(np.asarray(w), float(b), inputs["X"]) == inputs["y"]))


def _two_layer_accuracy(inputs: Mapping[str, Any], outputs: Any, data: Mapping[str, Any]):
    """Accuracy on held-out ``data["X"]`` (n, D), ``data["y"]`` (n,) of the net
    ``(W1, b1, W2, b2)`` the submission trained: argmax of relu(X W1 + b1) W2 + b2."""
    W1, b1, W2, b2 = (np.asarray(v, dtype=np.float64) for v in outputs)
    hidden = np.maximum(data["X"] @ W1 + b1, 0.0)
    return float(np.mean((hidden @ W2 + b2).argmax(axis=1) == data["y"]))


# A training test's metric: computed in the parent from the case's inputs, the
# submission's outputs and the arrays the metric's ``data`` names (held-out data the child
# never sees).
METRICS: dict[str, Callable[[Mapping[str, Any], Any, Mapping[str, Any]], float]] = {
    "svm_train_accuracy": _svm_accuracy,
    "two_layer_net_accuracy": _two_layer_accuracy,
}


def _mnist_part(part: str, what: str) -> Callable[[int, int], np.ndarray]:
    def rows(start: int, stop: int) -> np.ndarray:
        from kernelnet.data.mnist import load_mnist, pixels

        data = load_mnist()
        if what == "images":
            return pixels(getattr(data, f"{part}_images")[start:stop], "scale", np.float64)
        return getattr(data, f"{part}_labels")[start:stop].astype(np.int64)

    rows.__doc__ = f"MNIST {part} {what} [start, stop)"
    return rows


# The arrays a spec's ``data`` section can write: name -> rows(start, stop). Images are
# float64 (n, 784) scaled to [0, 1]; labels int64 (n,) in 0..9.
DATA_SOURCES: dict[str, Callable[[int, int], np.ndarray]] = {
    "mnist.train_images": _mnist_part("train", "images"),
    "mnist.train_labels": _mnist_part("train", "labels"),
    "mnist.test_images": _mnist_part("test", "images"),
    "mnist.test_labels": _mnist_part("test", "labels"),
}
DATA_SOURCE_ROWS = {"mnist.train_images": 60_000, "mnist.train_labels": 60_000,
                    "mnist.test_images": 10_000, "mnist.test_labels": 10_000}  # fmt: skip


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
    data: tuple[tuple[str, str], ...] = ()  # metric argument -> a file of the data section


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
    compare: tuple[str, ...] = ()  # the outputs this case grades; () = all of them
    # (transform, outputs) pairs applied in order to expected AND got before comparing
    canonicalise: tuple[tuple[str, tuple[str, ...]], ...] = ()


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
class NotebookSpec:
    """How a submission's notebooks are graded: each ``.ipynb`` it holds is run top to
    bottom in the sandbox (one test per notebook) and earns ``points`` when every cell runs."""

    points: float = 0.0
    time_limit: float = 300.0
    memory_mb: float = 2048.0


@dataclass(frozen=True)
class DataFileSpec:
    """One ``.npy`` file of the data section: rows [start, stop) of a DATA_SOURCES array."""

    name: str  # e.g. mnist_train_images.npy
    source: str  # a DATA_SOURCES name
    start: int
    stop: int
    handout: bool  # written into the students' data/ (and the sandbox's); False: grader only


@dataclass(frozen=True)
class AssignmentSpec:
    name: str
    title: str
    allowed_imports: tuple[str, ...]
    files: tuple[FileSpec, ...]
    source: str
    data: tuple[DataFileSpec, ...] = ()
    notebooks: NotebookSpec = NotebookSpec()

    def data_file(self, name: str) -> DataFileSpec:
        for entry in self.data:
            if entry.name == name:
                return entry
        raise KeyError(name)

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
    "gram": (("shape", "kernel", "gamma"), ("shape",)),
    "npy": (("file",), ("file",)),
}
GRAM_KERNELS = ("linear", "rbf")
CANONICALISERS = ("sort_rows", "fix_sign")


def _read_input(
    reader: _Reader, raw: Any, name: str, path: str, data: Mapping[str, DataFileSpec] = {}
) -> InputSpec:
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
        elif key == "kernel":
            checked[key] = reader.choice(value, at, GRAM_KERNELS, "a kernel")
        elif key == "file" and kind == "npy":
            entry = data[reader.choice(value, at, data, "a file of the data section")]
            checked.update(file=entry.name, source=entry.source, start=entry.start)
            checked["stop"] = entry.stop  # the rows travel with the input: no spec needed
        elif key in ("file", "array"):
            checked[key] = reader.string(value, at)
        else:
            checked[key] = reader.number(value, at, low=-math.inf)
    if kind == "normal" and checked.get("std", 1.0) < 0:
        raise reader.fail(_join(where, "std"), "must be >= 0")
    if kind in ("uniform", "integers") and checked.get("low", 0) >= checked["high"]:
        raise reader.fail(_join(where, "high"), "must be greater than low")
    if kind == "gram" and len(checked["shape"]) != 2:
        raise reader.fail(_join(where, "shape"), "must be [N, D]: N points of D features")
    if kind == "data" and not re.match(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.-]+\.npz$", checked["file"]):
        raise reader.fail(_join(where, "file"), "must be a shipped archive, as folder/name.npz")
    return InputSpec(name, kind, tuple(checked.items()))


_CASE_KEYS = (
    "name", "points", "visibility", "seed", "inputs", "rtol", "atol", "time_limit",
    "memory_mb", "divergence", "metric", "compare", "canonicalise",
)  # fmt: skip


def _read_output_names(reader: _Reader, raw: Any, path: str, outputs: tuple[str, ...]):
    names = reader.names(raw, path)
    for i, name in enumerate(names):
        reader.choice(name, f"{path}[{i}]", outputs, "an output of the function")
    return names


def _read_case(
    reader: _Reader,
    raw: Any,
    path: str,
    signature: tuple[str, ...],
    defaults: dict,
    outputs: tuple[str, ...] = (),
    data: Mapping[str, DataFileSpec] = {},
) -> CaseSpec:
    reader.mapping(raw, path, _CASE_KEYS, ("name", "points", "visibility", "seed", "inputs"))
    inputs_path = _join(path, "inputs")
    reader.mapping(raw["inputs"], inputs_path, signature, signature)
    inputs = tuple(
        _read_input(reader, raw["inputs"][name], name, _join(inputs_path, name), data)
        for name in raw["inputs"]
    )
    metric = None
    if raw.get("metric") is not None:
        at = _join(path, "metric")
        spec = reader.mapping(raw["metric"], at, ("name", "threshold", "higher_is_better", "data"),
                              ("name", "threshold", "higher_is_better"))  # fmt: skip
        if not isinstance(spec["higher_is_better"], bool):
            raise reader.fail(_join(at, "higher_is_better"), "must be true or false")
        metric_data = []
        if spec.get("data") is not None:
            given = reader.mapping(spec["data"], _join(at, "data"), _keys(spec["data"]))
            for argument, file in given.items():
                where = _join(_join(at, "data"), argument)
                reader.string(argument, where, _NAME)
                metric_data.append(
                    (argument, reader.choice(file, where, data, "a file of the data section"))
                )
        metric = MetricSpec(
            reader.choice(spec["name"], _join(at, "name"), METRICS, "a kernelnet metric"),
            reader.number(spec["threshold"], _join(at, "threshold"), low=-math.inf),
            spec["higher_is_better"],
            tuple(metric_data),
        )
    compared: tuple[str, ...] = ()
    if raw.get("compare") is not None:
        compared = _read_output_names(reader, raw["compare"], _join(path, "compare"), outputs)
    canonicalise = []
    if raw.get("canonicalise") is not None:
        at = _join(path, "canonicalise")
        given = reader.mapping(raw["canonicalise"], at, CANONICALISERS)
        for transform, names in given.items():
            canonicalise.append(
                (transform, _read_output_names(reader, names, _join(at, transform), outputs))
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
        compare=compared,
        canonicalise=tuple(canonicalise),
        **limits,
    )


_FUNCTION_KEYS = ("signature", "outputs", "shapes", "doc", "reference", "cases")


def _read_function(
    reader: _Reader, raw: Any, name: str, path: str, defaults, data: Mapping[str, DataFileSpec] = {}
) -> FunctionSpec:
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
        _read_case(reader, case, f"{cases_path}[{i}]", signature, defaults, outputs, data)
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


def _read_data(reader: _Reader, raw: Any) -> tuple[DataFileSpec, ...]:
    """The ``data`` section: ``FILE.npy: {source, start, stop, handout}``."""
    if raw is None:
        return ()
    entries = []
    for file, body in reader.mapping(raw, "data", _keys(raw)).items():
        at = f"data.{file}"
        if not isinstance(file, str) or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.npy$", file):
            raise reader.fail(at, f"{file!r} is not a file name of data/ (name.npy)")
        reader.mapping(body, at, ("source", "start", "stop", "handout"), ("source", "stop"))
        source = reader.choice(body["source"], f"{at}.source", DATA_SOURCES, "a data source")
        start = reader.number(body.get("start", 0), f"{at}.start", integer=True)
        stop = reader.number(body["stop"], f"{at}.stop", integer=True)
        if not start < stop <= DATA_SOURCE_ROWS[source]:
            raise reader.fail(
                f"{at}.stop",
                f"rows [{start}, {stop}) are not within the {DATA_SOURCE_ROWS[source]:,} rows "
                f"of {source} (start < stop <= {DATA_SOURCE_ROWS[source]:,})",
            )
        handout = body.get("handout", True)
        if not isinstance(handout, bool):
            raise reader.fail(f"{at}.handout", "must be true or false")
        entries.append(DataFileSpec(file, source, start, stop, handout))
    return tuple(entries)


def load_spec(path: Path | str) -> AssignmentSpec:
    """Read an assignment spec strictly; ConfigError (one line, file:line:col) if it is not
    one. Test names are unique across the assignment (they name rows in results.json)."""
    raw_config = read_config_file(Path(path))
    source = str(path)
    reader = _Reader(raw_config.locations, source)
    raw = reader.mapping(
        raw_config.values, "", ("assignment", "defaults", "data", "files"), ("assignment", "files")
    )
    head = reader.mapping(
        raw["assignment"],
        "assignment",
        ("name", "title", "allowed_imports", "notebooks"),
        ("name", "title"),
    )
    defaults = dict(DEFAULT_LIMITS)
    if raw.get("defaults") is not None:
        given = reader.mapping(raw["defaults"], "defaults", tuple(DEFAULT_LIMITS))
        for key, value in given.items():
            strict = key in ("time_limit", "memory_mb")
            defaults[key] = reader.number(value, f"defaults.{key}", strict=strict)
    data = _read_data(reader, raw.get("data"))
    data_files = {entry.name: entry for entry in data}
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
            spec = _read_function(reader, function, name, where, defaults, data_files)
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
        data=data,
        notebooks=_read_notebooks(reader, head.get("notebooks")),
    )


def _read_notebooks(reader: _Reader, raw: Any) -> NotebookSpec:
    """``assignment.notebooks: {points, time_limit, memory_mb}`` (each optional)."""
    if raw is None:
        return NotebookSpec()
    given = reader.mapping(raw, "assignment.notebooks", ("points", "time_limit", "memory_mb"))
    values = {
        key: reader.number(value, f"assignment.notebooks.{key}", strict=key != "points")
        for key, value in given.items()
    }
    return NotebookSpec(**values)


def shipped_spec(name: str) -> AssignmentSpec:
    """One of the assignments kernelnet ships (``hw3``)."""
    names = sorted(p.stem for p in ASSIGNMENTS.glob("*.yaml"))
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"no assignment {name!r}; shipped: {', '.join(names)}{tip}")
    return load_spec(ASSIGNMENTS / f"{name}.yaml")


def load_assignment(name: str) -> AssignmentSpec:
    """A shipped assignment by name (``hw3``), or an instructor's spec by path (a name
    ending in .yaml or .yml, or holding a folder separator)."""
    if name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name:
        return load_spec(Path(name))
    return shipped_spec(name)


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
    elif kind == "gram":
        X = rng.normal(size=get("shape"))
        if get("kernel", "linear") == "linear":
            return X @ X.T
        sq = np.sum(X * X, axis=1)
        distances = np.maximum(sq[:, None] - 2 * X @ X.T + sq[None, :], 0.0)
        return np.exp(-get("gamma", 1.0) * distances)
    elif kind == "npy":
        return DATA_SOURCES[get("source")](get("start"), get("stop"))
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
    defaults to ``seeded_rng(case.seed)``; no global random state is touched."""
    rng = seeded_rng(case.seed) if rng is None else rng
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


# -- the data section --
def data_array(entry: DataFileSpec) -> np.ndarray:
    """The array of one data file (deterministic: the same rows of the shipped data)."""
    return DATA_SOURCES[entry.source](entry.start, entry.stop)


def data_arrays(spec: AssignmentSpec, handout_only: bool = True) -> dict[str, np.ndarray]:
    """File name -> array: the files students get (``handout_only``) or all of them."""
    return {e.name: data_array(e) for e in spec.data if e.handout or not handout_only}


def write_data(spec: AssignmentSpec, folder: Path, handout_only: bool = True) -> list[Path]:
    """Write the data files as ``folder/NAME.npy`` (plain arrays, no pickle), atomically;
    the paths written. The handout writes them into the students' ``data/``; the grader
    passes the same paths to the sandbox, which copies them into the child's ``data/``."""
    from kernelnet.safe_write import write_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in data_arrays(spec, handout_only).items():
        path = folder / name
        write_atomic(path, lambda handle, a=array: np.save(handle, a, allow_pickle=False), folder)
        paths.append(path)
    return paths


# -- judging one case (in the parent, on data the child sent back) --
def _sort_rows(arrays: list[Any]) -> list[Any] | None:
    """The arrays with their rows (first axis) in one order: that of the rows of
    ``[a | b | ...]`` sorted lexicographically. None when they are not all numeric 1-D/2-D
    arrays of the same length (the comparison then reports the dtype or shape)."""
    arrays = [np.asarray(a) for a in arrays]
    if not all(a.dtype.kind in "biuf" and a.ndim in (1, 2) for a in arrays):
        return None
    if len({a.shape[0] for a in arrays}) != 1:
        return None
    table = np.hstack([a.reshape(a.shape[0], -1).astype(np.float64) for a in arrays])
    order = np.lexsort(table.T[::-1])  # lexsort's last key is the primary one
    return [a[order] for a in arrays]


def _fix_sign(arrays: list[Any]) -> list[Any] | None:
    """The arrays times -1 when the first nonzero element of the first is negative (so
    ``A = -y', b = 0`` and ``A = y', b = 0``, the same constraint, compare equal)."""
    arrays = [np.asarray(a) for a in arrays]
    if not all(a.dtype.kind in "if" for a in arrays):
        return None
    nonzero = np.flatnonzero(arrays[0])
    if nonzero.size and arrays[0].flat[nonzero[0]] < 0:
        return [-a for a in arrays]
    return arrays


_TRANSFORMS = {"sort_rows": _sort_rows, "fix_sign": _fix_sign}


def graded_outputs(function: FunctionSpec, case: CaseSpec, value: Any) -> Any:
    """What a case compares of ``value`` (the reference's or the submission's outputs, in
    ``function.outputs`` order): the case's ``canonicalise`` transforms applied in order,
    then the outputs ``compare`` names. Anything without the expected structure comes back
    unchanged, for :func:`compare` to name what is wrong with it."""
    names = function.outputs
    if len(names) == 1:
        if not case.canonicalise:
            return value
        value = (value,)
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        return value
    named = dict(zip(names, value))
    for transform, outputs in case.canonicalise:
        changed = _TRANSFORMS[transform]([named[n] for n in outputs])
        if changed is not None:
            named.update(zip(outputs, changed))
    kept = case.compare or names
    return named[kept[0]] if len(kept) == 1 else tuple(named[n] for n in kept)


def judge(
    function: FunctionSpec,
    case: CaseSpec,
    expected: Any,
    got: Any,
    inputs_before: Mapping[str, Any] | None = None,
    inputs_after: Mapping[str, Any] | None = None,
) -> Verdict:
    """The verdict of a value case: :func:`graded_outputs` applied to BOTH the expected and
    the submission's outputs, then :func:`kernelnet.grading.codes.compare` with the case's
    tolerances and divergence rule."""
    kept = case.compare or function.outputs
    return compare(
        graded_outputs(function, case, expected),
        graded_outputs(function, case, got),
        rtol=case.rtol,
        atol=case.atol,
        inputs_before=inputs_before,
        inputs_after=inputs_after,
        names=kept if len(kept) > 1 else None,
        divergence=case.divergence,
    )


def metric_data(spec: AssignmentSpec, case: CaseSpec) -> dict[str, np.ndarray]:
    """The held-out arrays a training case's metric reads, by metric argument."""
    if case.metric is None:
        return {}
    return {arg: data_array(spec.data_file(file)) for arg, file in case.metric.data}


def judge_metric(
    spec: AssignmentSpec,
    function: FunctionSpec,
    case: CaseSpec,
    inputs: Mapping[str, Any],
    got: Any,
    data: Mapping[str, Any] | None = None,
) -> Verdict:
    """The verdict of a training case: 50 for the wrong structure, 51 for an output that is
    not floating point, 61 for NaN/inf in an output (training diverged), 52 when the
    outputs do not fit the metric's data, else 60/0 from the metric against its threshold
    (:func:`kernelnet.grading.codes.compare_threshold`). ``data`` defaults to
    :func:`metric_data`."""
    metric = case.metric
    assert metric is not None, f"{case.name} is not a training case"
    names = function.outputs
    values = (got,) if len(names) == 1 else got
    if not isinstance(values, (tuple, list)) or len(values) != len(names):
        return compare(tuple(None for _ in names) if len(names) > 1 else 0.0, got,
                       rtol=0, atol=0)  # fmt: skip
    for name, value in zip(names, values):
        array = np.asarray(value) if value is not None else None
        if array is None or array.dtype.kind not in "f":
            kind = "None" if array is None else str(array.dtype)
            return Verdict(Code.WRONG_DTYPE, f"output {name}: expected float64 but got {kind}")
        if not np.all(np.isfinite(array)):
            count = int(np.sum(~np.isfinite(array)))
            return Verdict(
                Code.DIVERGED,
                f"output {name}: {count} of {array.size} values are nan or inf: training "
                "diverged (a learning rate too large, or an unstable softmax?)",
            )
    data = metric_data(spec, case) if data is None else data
    try:
        value = METRICS[metric.name](inputs, got, data)
    except (ValueError, IndexError) as exc:  # matmul shape mismatches
        shapes = ", ".join(f"{n} {np.shape(v)}" for n, v in zip(names, values))
        return Verdict(Code.WRONG_SHAPE, f"the outputs do not fit ({shapes}): {exc}")
    return compare_threshold(metric.name, value, metric.threshold, metric.higher_is_better)
