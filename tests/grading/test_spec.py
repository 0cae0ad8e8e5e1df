"""Assignment specs: hw3 loads, its references run on every case, inputs are reproducible,
strict loading names the file and line, and the primal SVM reference agrees with an
independent loop-based implementation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kernelnet.errors import ConfigError
from kernelnet.grading.codes import Code, compare
from kernelnet.grading.spec import (
    REFERENCES,
    expected_outputs,
    generate_inputs,
    judge,
    judge_metric,
    load_spec,
    metric_data,
    shipped_spec,
    write_data,
)

HW3 = shipped_spec("hw3")
LABS = shipped_spec("labs")
CASES = [
    (fn, case)
    for spec in (HW3, LABS)
    for _, fn in spec.functions()
    for case in fn.cases
    if case.metric is None
]


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
        assert np.asarray(value).dtype in (np.float64, np.int64), name


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
    assert all(name.startswith(("primal_svm.", "dual_svm.", "nn.", "knn.")) for name in REFERENCES)


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


# -- the cvxopt dual SVM --
FUNCTIONS = {fn.name: fn for spec in (HW3, LABS) for _, fn in spec.functions()}


def _case(function, name):
    return next(c for c in FUNCTIONS[function].cases if c.name == name)


def _student_qp(K, y, C, order="kernelnet", with_C=True, flip=False):
    """A student's matrices: G/h rows in another order, h possibly without C."""
    n = len(y)
    eye = np.eye(n)
    upper = np.full(n, float(C) if with_C else 1.0)
    if order == "upper_first":  # [I; -I], h = [C; 0]
        G, h = np.vstack([eye, -eye]), np.concatenate([upper, np.zeros(n)])
    elif order == "interleaved":  # alpha_0 <= C, -alpha_0 <= 0, alpha_1 <= C, ...
        G = np.empty((2 * n, n))
        G[0::2], G[1::2] = eye, -eye
        h = np.empty(2 * n)
        h[0::2], h[1::2] = upper, 0.0
    else:
        G, h = np.vstack([-eye, eye]), np.concatenate([np.zeros(n), upper])
    A = (-1.0 if flip else 1.0) * y.reshape(1, -1)
    return np.outer(y, y) * K, -np.ones(n), G, h, A, 0.0


def _cvxopt_alpha(matrices):
    import cvxopt
    import cvxopt.solvers

    P, q, G, h, A, b = matrices
    args = [cvxopt.matrix(np.asarray(m, dtype=float)) for m in (P, q, G, h, A)]
    solution = cvxopt.solvers.qp(*args, cvxopt.matrix(float(b)), options={"show_progress": False})
    return np.asarray(solution["x"]).ravel()


def test_the_qp_matrices_are_kernelnets_own():
    from kernelnet.svm import dual

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(7, 2)), rng.choice([-1.0, 1.0], size=7)
    K, C = X @ X.T, 0.7
    mine = REFERENCES["dual_svm.qp_matrices"](K, y, C)
    theirs = dual._qp_matrices(K, y, np.full(7, C), 0.0)
    import cvxopt

    for a, b in zip(mine, theirs):
        dense = np.array(cvxopt.matrix(b))  # G is sparse in kernelnet's solver
        np.testing.assert_array_equal(np.asarray(a, dtype=float).reshape(dense.shape), dense)


@pytest.mark.parametrize("order", ["kernelnet", "upper_first", "interleaved"])
@pytest.mark.parametrize("name", ["qp_G_h", "qp_matrices_hidden", "qp_P_q_A_b"])
def test_every_correct_formulation_passes(order, name):
    function = FUNCTIONS["qp_matrices"]
    case = _case("qp_matrices", name)
    inputs, expected = expected_outputs(function, case)
    got = _student_qp(inputs["K"], inputs["y"], inputs["C"], order, flip=order == "interleaved")
    assert judge(function, case, expected, got).code == Code.SUCCESS


def test_h_without_C_is_53_on_h_and_on_alpha():
    function = FUNCTIONS["qp_matrices"]
    case = _case("qp_matrices", "qp_G_h")
    inputs, expected = expected_outputs(function, case)
    got = _student_qp(inputs["K"], inputs["y"], inputs["C"], "upper_first", with_C=False)
    verdict = judge(function, case, expected, got)
    assert verdict.code == Code.WRONG_VALUES and "output h" in verdict.reason
    # without the canonical order the correct reordered rows would fail: the option matters
    raw = compare(
        expected[2:4],
        _student_qp(inputs["K"], inputs["y"], inputs["C"], "upper_first")[2:4],
        rtol=1e-5,
        atol=1e-8,
    )
    assert raw.code == Code.WRONG_VALUES
    alpha_fn = FUNCTIONS["solve_dual"]
    for alpha_case in alpha_fn.cases:
        inputs, expected = expected_outputs(alpha_fn, alpha_case)
        K, y, C = inputs["K"], inputs["y"], inputs["C"]
        good = _cvxopt_alpha(_student_qp(K, y, C, "interleaved"))
        bad = _cvxopt_alpha(_student_qp(K, y, C, "upper_first", with_C=False))
        assert judge(alpha_fn, alpha_case, expected, good).code == Code.SUCCESS
        assert judge(alpha_fn, alpha_case, expected, bad).code == Code.WRONG_VALUES


def test_the_dual_bias_and_predictions_agree_with_scikit_learn():
    from sklearn.svm import SVC

    function = FUNCTIONS["svm_bias_predict"]
    (case,) = function.cases
    inputs, (bias, labels) = expected_outputs(function, case)
    svc = SVC(C=inputs["C"], kernel="precomputed", tol=1e-10).fit(inputs["K"], inputs["y"])
    assert bias == pytest.approx(float(svc.intercept_[0]), abs=1e-4)
    np.testing.assert_array_equal(labels, svc.predict(inputs["K_test"]))
    alpha = REFERENCES["dual_svm.alpha"](inputs["K"], inputs["y"], inputs["C"])
    decision = inputs["K_test"] @ (alpha * inputs["y"]) + bias
    assert np.abs(decision).min() > 1e-3  # no test point so near the boundary that it flips


# -- the two-layer net on MNIST --
def test_the_mnist_reference_clears_its_threshold_and_nan_weights_are_61():
    function = FUNCTIONS["train_two_layer_net"]
    (case,) = function.cases
    inputs = generate_inputs(case)
    assert inputs["X"].shape == (5000, 784) and inputs["y"].dtype == np.int64
    args = [inputs[name] for name in function.signature]
    trained = REFERENCES[function.reference](*args)
    verdict = judge_metric(HW3, function, case, inputs, trained)
    assert verdict.code == Code.SUCCESS, verdict
    diverged = (trained[0] * np.nan,) + tuple(trained[1:])
    assert judge_metric(HW3, function, case, inputs, diverged).code == Code.DIVERGED
    untrained = tuple(np.zeros_like(v) for v in trained)
    assert judge_metric(HW3, function, case, inputs, untrained).code == Code.NOT_GOOD_ENOUGH


def test_the_data_section_writes_the_students_files_only(tmp_path):
    paths = write_data(HW3, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"mnist_{part}_{what}.npy" for part in ("train", "test") for what in ("images", "labels")
    )
    images = np.load(tmp_path / "mnist_train_images.npy", allow_pickle=False)
    assert images.shape == (5000, 784) and images.dtype == np.float64 and images.max() <= 1.0
    held = metric_data(HW3, FUNCTIONS["train_two_layer_net"].cases[0])
    assert held["X"].shape == (1000, 784)
    assert not (tmp_path / "heldout_images.npy").exists()


# -- the labs, written again independently --
def _loop_conv(x, w, b, stride, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    N, _, H, W = xp.shape
    F, _, KH, KW = w.shape
    out = np.zeros((N, F, (H - KH) // stride + 1, (W - KW) // stride + 1))
    for n in range(N):
        for f in range(F):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    patch = xp[n, :, i * stride : i * stride + KH, j * stride : j * stride + KW]
                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    return out


def _loop_adam(w, grads, lr, b1, b2, eps):
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


def _numeric_grad(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


LAB_CASES = [(fn, case) for _, fn in LABS.functions() for case in fn.cases]


@pytest.mark.parametrize(("function", "case"), LAB_CASES, ids=[c.name for _, c in LAB_CASES])
def test_each_lab_reference_agrees_with_an_independent_implementation(function, case):
    inputs, expected = expected_outputs(function, case)
    a = inputs
    name = function.name
    if name == "sigmoid_forward":
        independent = 0.5 * (1 + np.tanh(a["X"] / 2))
    elif name == "sigmoid_backward":
        s = 0.5 * (1 + np.tanh(a["X"] / 2))
        independent = a["dY"] * s * (1 - s)
    elif name == "conv2d_forward":
        independent = _loop_conv(a["x"], a["w"], a["b"], a["stride"], a["padding"])
    elif name == "knn_predict":
        from sklearn.neighbors import KNeighborsClassifier

        model = KNeighborsClassifier(n_neighbors=a["k"]).fit(a["X_train"], a["y_train"])
        independent = model.predict(a["X_test"]).astype(np.int64)
        if a["k"] > 1:  # scikit-learn breaks vote ties by the smallest label: compare rows
            distances = np.linalg.norm(a["X_test"][:, None] - a["X_train"][None], axis=2)
            votes = [np.bincount(a["y_train"][np.argsort(d)[: a["k"]]]) for d in distances]
            clear = [np.sum(v == v.max()) == 1 for v in votes]
            independent, expected = independent[clear], expected[clear]
    elif name == "adam":
        independent = _loop_adam(
            a["w"], a["grads"], a["learning_rate"], a["beta1"], a["beta2"], a["eps"]
        )
    elif name == "batchnorm_forward":
        X = a["X"]
        independent = a["gamma"] * (X - X.mean(0)) / np.sqrt(X.var(0) + a["eps"]) + a["beta"]
    elif name == "batchnorm_backward":

        def loss(X, gamma=a["gamma"], beta=a["beta"]):
            Y = gamma * (X - X.mean(0)) / np.sqrt(X.var(0) + a["eps"]) + beta
            return float(np.sum(Y * a["dY"]))

        independent = (
            _numeric_grad(loss, a["X"]),
            _numeric_grad(lambda g: loss(a["X"], gamma=g), a["gamma"]),
            _numeric_grad(lambda b: loss(a["X"], beta=b), a["beta"]),
        )
    elif name == "cosine_loss":

        def loss(z, w):
            cos = np.sum(z * w, 1) / (np.linalg.norm(z, axis=1) * np.linalg.norm(w, axis=1))
            return float(np.mean(-a["y"] * cos))

        independent = (
            loss(a["z"], a["w"]),
            _numeric_grad(lambda z: loss(z, a["w"]), a["z"]),
            _numeric_grad(lambda w: loss(a["z"], w), a["w"]),
        )
    else:
        pytest.fail(f"no independent implementation for {name}")
    verdict = compare(expected, independent, rtol=1e-5, atol=1e-7)
    assert verdict.code == Code.SUCCESS, verdict
