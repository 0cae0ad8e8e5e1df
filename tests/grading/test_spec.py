"""Assignment specs: hw3 loads, its references run on every case, inputs are reproducible,
strict loading names the file and line, and the primal SVM reference agrees with an
independent loop-based implementation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kernelnet.errors import ConfigError
from kernelnet.grading.spec import (
    REFERENCES,
    expected_outputs,
    generate_inputs,
    load_spec,
    shipped_spec,
)

HW3 = shipped_spec("hw3")
CASES = [(fn, case) for _, fn in HW3.functions() for case in fn.cases]


def test_hw3_loads_with_the_files_and_functions():
    assert HW3.name == "hw3"
    names = {file.name: [f.name for f in file.functions] for file in HW3.files}
    assert names["soft_margin_svm.py"] == ["svm_gradients", "svm_train", "svm_predict"]
    assert "softmax_loss" in names["two_layer_net.py"]
    train = dict((f.name, f) for _, f in HW3.functions())["svm_train"]
    epochs = [
        dict((i.name, i) for i in c.inputs)["num_epochs"].option("value") for c in train.cases
    ]
    assert epochs == [1, 3, 10, 30, 100]


def _bind(dims, shape, sizes, what):
    assert len(dims) == len(shape), f"{what}: documented {dims}, got {shape}"
    for dim, size in zip(dims, shape):
        if isinstance(dim, int):
            assert dim == size, what
        else:
            assert sizes.setdefault(dim, size) == size, f"{what}: {dim} is {sizes[dim]} and {size}"


@pytest.mark.parametrize(("function", "case"), CASES, ids=[c.name for _, c in CASES])
def test_every_reference_gives_finite_outputs_of_the_documented_shapes(function, case):
    inputs, expected = expected_outputs(function, case)
    sizes: dict = {}
    for name in function.signature:
        _bind(function.shape_of(name), np.shape(inputs[name]), sizes, name)
    outputs = expected if len(function.outputs) > 1 else (expected,)
    assert len(outputs) == len(function.outputs)
    for name, value in zip(function.outputs, outputs):
        _bind(function.shape_of(name), np.shape(value), sizes, name)
        assert np.all(np.isfinite(value)), name
        assert np.asarray(value).dtype == np.float64, name


def test_the_same_seed_gives_bit_identical_inputs_and_the_reference_leaves_them_alone():
    for function, case in CASES:
        first, _ = expected_outputs(function, case)
        second = generate_inputs(case, np.random.default_rng(case.seed))
        for name in first:
            assert np.asarray(first[name]).tobytes() == np.asarray(second[name]).tobytes()
            assert np.asarray(first[name]).dtype == np.asarray(second[name]).dtype


SPEC = """\
assignment:
  name: demo
  title: a demo
files:
  demo.py:
    functions:
      relu:
        signature: [X]
        outputs: [Y]
        shapes: {X: [N, D], Y: [N, D]}
        doc: Y = max(0, X)
        reference: nn.relu_forward
        cases:
          - name: first
            points: 1
            visibility: visible
            seed: 1
            inputs:
              X: {normal: {shape: [2, 3]}}
          - name: second
            points: 1
            visibility: hidden
            seed: 2
            inputs:
              X: {normal: {shape: [2, 3]}}
"""


def _load(tmp_path, text):
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return load_spec(path), path


def _refused(tmp_path, old, new):
    assert old in SPEC
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, SPEC.replace(old, new, 1))
    message = str(caught.value)
    assert "\n" not in message
    assert re.match(rf"{re.escape(str(tmp_path / 'demo.yaml'))}:\d+:\d+: ", message), message
    return message


def test_the_demo_spec_loads(tmp_path):
    spec, _ = _load(tmp_path, SPEC)
    (case,) = [c for c in spec.files[0].functions[0].cases if c.name == "second"]
    assert case.visibility == "hidden" and case.rtol == 1e-5 and case.time_limit > 0


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        (
            "        doc:",
            "        docs:",
            ["functions.relu.docs: unknown key", "did you mean 'doc'?"],
        ),
        ("            seed: 1", "            sead: 1", ["did you mean 'seed'?"]),
        ("nn.relu_forward", "nn.relu_forwrd", ["not one of kernelnet's", "'nn.relu_forward'"]),
        ("nn.relu_forward", "os.system", ["'os.system' is not one of kernelnet's"]),
        ("visibility: hidden", "visibility: secret", ["'secret' is not a visibility"]),
        ("points: 1", "points: -1", ["cases[0].points: must be >= 0"]),
        ("name: second", "name: first", ["test name 'first' is used twice", ":13:"]),
        ("{normal: {shape: [2, 3]}}", "{gaussian: {shape: [2, 3]}}", ["not an input generator"]),
        ("{normal: {shape: [2, 3]}}", "{normal: {shape: [2, 3], sd: 1}}", ["did you mean 'std'?"]),
    ],
)
def test_strict_loading_errors_are_one_line_with_file_and_line(tmp_path, old, new, fragments):
    message = _refused(tmp_path, old, new)
    for fragment in fragments:
        assert fragment in message


def test_nothing_named_in_a_spec_is_imported():
    assert all(name.startswith(("primal_svm.", "nn.")) for name in REFERENCES)


# -- the primal SVM, written again with loops --
def _loop_objective(X, y, w, b, C):
    total = 0.5 * sum(v * v for v in w)
    for i in range(len(y)):
        margin = y[i] * (sum(X[i, j] * w[j] for j in range(len(w))) + b)
        total += C * max(0.0, 1.0 - margin)
    return total


def _loop_gradients(X, y, w, b, C):
    grad_w, grad_b = [float(v) for v in w], 0.0
    for i in range(len(y)):
        if y[i] * (sum(X[i, j] * w[j] for j in range(len(w))) + b) < 1:
            for j in range(len(w)):
                grad_w[j] -= C * y[i] * X[i, j]
            grad_b -= C * y[i]
    return np.array(grad_w), grad_b


def test_the_primal_gradients_agree_with_loops_and_finite_differences():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(15, 4)), rng.choice([-1.0, 1.0], size=15)
    w, b, C = rng.normal(size=4), 0.2, 5.0
    grad_w, grad_b = REFERENCES["primal_svm.gradients"](X, y, w, b, C)
    loop_w, loop_b = _loop_gradients(X, y, w, b, C)
    np.testing.assert_allclose(grad_w, loop_w, rtol=1e-12, atol=1e-12)
    assert grad_b == pytest.approx(loop_b, abs=1e-12)
    assert REFERENCES["primal_svm.objective"](X, y, w, b, C) == pytest.approx(
        _loop_objective(X, y, w, b, C), rel=1e-12
    )
    h = 1e-6  # no margin is within h of 1 at this point, so E is smooth here
    for j in range(4):
        step = np.eye(4)[j] * h
        slope = _loop_objective(X, y, w + step, b, C) - _loop_objective(X, y, w - step, b, C)
        assert grad_w[j] == pytest.approx(slope / (2 * h), rel=1e-5, abs=1e-6)
    slope = _loop_objective(X, y, w, b + h, C) - _loop_objective(X, y, w, b - h, C)
    assert grad_b == pytest.approx(slope / (2 * h), rel=1e-5, abs=1e-6)


def test_the_primal_training_is_simultaneous_batch_descent():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(20, 3)), rng.choice([-1.0, 1.0], size=20)
    w, b = np.zeros(3), 0.0
    for _ in range(10):
        grad_w, grad_b = _loop_gradients(X, y, w, b, 5.0)  # both at the current (w, b)
        w, b = w - 1e-3 * grad_w, b - 1e-3 * grad_b
    got_w, got_b = REFERENCES["primal_svm.train"](X, y, 5.0, 1e-3, 10)
    np.testing.assert_allclose(got_w, w, rtol=1e-12, atol=1e-15)
    assert got_b == pytest.approx(b, abs=1e-15)
