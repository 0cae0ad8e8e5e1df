"""The planted bugs of hw3, as data: each is the reference submission
(tests/grading/submissions/reference) with one change, and the code every graded case must get.

A mutant is generated at test time in a temporary folder (:func:`write_submission`), so the
suite is this table rather than dozens of copied folders. A change is either text
replacements in one file (each ``old`` must occur exactly once in the reference, so a
reference edit that silently disarms a mutant fails loudly) or the new source of one whole
function. ``@NAME@`` markers in the new text are filled in at test time (paths and ports the
test creates).

``expected``: case name -> code, for exactly the cases graded (the cases of the function the
mutant breaks, so the unchanged cases of that function are checked to keep their codes).
``hostile``: the mutant needs ``os``/``sys``/``time``/``socket`` (which hw3 forbids: 72) and
short limits; the test grades it under a copy of the spec with those allowed and a time
limit of a few seconds.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from kernelnet.grading.codes import Code

REFERENCE = Path(__file__).resolve().parent / "submissions" / "reference"
FILES = ("soft_margin_svm.py", "cvxopt_svm.py", "two_layer_net.py")
MARKER = re.compile(r"@([A-Z][A-Z_]*)@")  # not a matmul: X @ W has spaces

OK, CRASH, RAISED = Code.SUCCESS, Code.UNKNOWN_FAILURE, Code.EXCEPTION
OUTPUT, DTYPE, SHAPE, VALUES = (
    Code.WRONG_OUTPUT,
    Code.WRONG_DTYPE,
    Code.WRONG_SHAPE,
    Code.WRONG_VALUES,
)
OFF_BY_ONE, INPUT, WEAK, DIVERGED = (
    Code.OFF_BY_ONE,
    Code.INPUT_CHANGED,
    Code.NOT_GOOD_ENOUGH,
    Code.DIVERGED,
)
TIME, MEMORY, FORBIDDEN, TOO_LARGE = (
    Code.TIME_LIMIT,
    Code.MEMORY_LIMIT,
    Code.FORBIDDEN,
    Code.OUTPUT_TOO_LARGE,
)

GRADIENTS = ("gradients_at_zero", "gradients_random_point", "gradients_hidden")
TRAIN = ("train_1_epochs", "train_3_epochs", "train_10_epochs", "train_30_epochs",
         "train_100_epochs")  # fmt: skip
QP = ("qp_P_q_A_b", "qp_G_h", "qp_matrices_hidden")
DUAL = ("dual_alpha_linear", "dual_alpha_rbf_hidden")
FC_FORWARD = ("fc_forward_small", "fc_forward_hidden")
FC_BACKWARD = ("fc_backward_small", "fc_backward_hidden")
SOFTMAX = ("softmax_small", "softmax_large_scores")


def every(cases: tuple[str, ...], code: int) -> dict[str, int]:
    return dict.fromkeys(cases, int(code))


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    expected: dict[str, int]
    edits: tuple[tuple[str, str], ...] = ()  # (old, new): old occurs exactly once
    function: str = ""  # the new source of one whole function (its name says which)
    hostile: bool = False
    reason: str = ""  # a piece the first failing case's reason (or traceback) must contain
    why: str = field(default="", compare=False)  # the bug, in words

    def source(self, **markers: str) -> str:
        """The mutated text of :attr:`file`, the ``@NAME@`` markers of the new text filled."""

        def fill(new: str) -> str:
            for key, value in markers.items():
                new = new.replace(f"@{key}@", value)
            left = MARKER.findall(new)
            if left:
                raise AssertionError(f"{self.name}: markers not filled in: {left}")
            return new

        text = (REFERENCE / self.file).read_text(encoding="utf-8")
        for old, new in self.edits:
            count = text.count(old)
            if count != 1:
                raise AssertionError(f"{self.name}: {old!r} occurs {count} times in {self.file}")
            text = text.replace(old, fill(new))
        if self.function:
            text = _replace_function(text, fill(self.function), self.name)
        return text


def _replace_function(text: str, new: str, label: str) -> str:
    name = ast.parse(new).body[0].name
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            lines = text.splitlines(keepends=True)
            start, end = node.lineno - 1, node.end_lineno
            return "".join(lines[:start]) + new.rstrip("\n") + "\n" + "".join(lines[end:])
    raise AssertionError(f"{label}: no function {name} in the reference")


def write_submission(mutant: Mutant | None, folder: Path, **markers: str) -> Path:
    """The three reference files in ``folder``, ``mutant``'s file changed (None: none)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if mutant is not None and name == mutant.file:
            text = mutant.source(**markers)
        else:
            text = (REFERENCE / name).read_text(encoding="utf-8")
        (folder / name).write_text(text, encoding="utf-8")
    return folder


SVM, DUAL_FILE, NET = FILES

# -- wrong answers: each graded under hw3's own spec and limits --
WRONG = [
    Mutant(
        "coordinate_descent",
        SVM,
        {**every(TRAIN, VALUES), "train_1_epochs": OK, "train_3_epochs": OK},
        edits=(
            (
                "        grad_w, grad_b = svm_gradients(X, y, w, b, C)\n"
                "        w = w - learning_rate * grad_w\n",
                "        grad_w, _ = svm_gradients(X, y, w, b, C)\n"
                "        w = w - learning_rate * grad_w\n"
                "        _, grad_b = svm_gradients(X, y, w, b, C)  # at the NEW w\n",
            ),
        ),
        why="b's gradient taken at the updated w (the assignment's warning); over 1 and 3 "
        "epochs from w = 0 no margin reaches 1, so the indicator and the numbers are the "
        "same: only the 10, 30 and 100 epoch cases (hidden) see it",
    ),
    Mutant(
        "hinge_indicator_reversed",
        SVM,
        every(GRADIENTS, VALUES),
        edits=(("(margins < 1)", "(margins > 1)"),),
        why="'>' for '<' in the hinge indicator",
    ),
    Mutant(
        "gradient_updates_w_in_place",
        SVM,
        every(GRADIENTS, INPUT),
        edits=(("    grad_w = w - X.T @ coef\n", "    grad_w = w\n    grad_w -= X.T @ coef\n"),),
        reason="argument 'w'",
        why="grad_w aliases w, then is updated in place",
    ),
    Mutant(
        "grad_b_as_a_1_vector",
        SVM,
        every(GRADIENTS, SHAPE),
        edits=(("    return grad_w, float(grad_b)\n", "    return grad_w, np.array([grad_b])\n"),),
        reason="expected a scalar (shape ()) but got shape (1,)",
        why="grad_b returned as shape (1,) instead of a float",
    ),
    Mutant(
        "train_float32",
        SVM,
        {"train_3_epochs": DTYPE},
        edits=(("    return w, float(b)\n", "    return w.astype(np.float32), float(b)\n"),),
        reason="expected float64 but got float32",
        why="w returned as float32",
    ),
    Mutant(
        "train_one_epoch_too_many",
        SVM,
        every(TRAIN[:2], VALUES),
        edits=(("range(num_epochs)", "range(num_epochs + 1)"),),
        why="an off-by-one in the epoch loop",
    ),
    Mutant(
        "predict_labels_rounded_to_0_1",
        SVM,
        {"predict_labels": OFF_BY_ONE},
        edits=(
            (
                "    return np.where(scores > 0, 1.0, -1.0)\n",
                "    return np.round(1.0 / (1.0 + np.exp(-scores)))\n",
            ),
        ),
        reason="by exactly 1",
        why="the sigmoid of the score rounded to an integer: 0/1 labels where -1/+1 are "
        "expected, every difference exactly 1",
    ),
    Mutant(
        "predict_int_labels",
        SVM,
        {"predict_labels": DTYPE},
        edits=(("np.where(scores > 0, 1.0, -1.0)", "np.where(scores > 0, 1, -1)"),),
        reason="expected float64 but got int64",
        why="integer labels",
    ),
    Mutant(
        "qp_h_without_C",
        DUAL_FILE,
        {**every(QP, VALUES), "qp_P_q_A_b": OK, **every(DUAL, VALUES)},
        edits=(("C * np.ones(n)", "np.ones(n)"),),
        why="the box alpha <= 1 instead of alpha <= C",
    ),
    Mutant(
        "qp_P_without_labels",
        DUAL_FILE,
        {"qp_P_q_A_b": VALUES, "qp_G_h": OK, "qp_matrices_hidden": VALUES},
        edits=(("P = np.outer(y, y) * K", "P = K"),),
        why="P = K, the labels forgotten",
    ),
    Mutant(
        "qp_q_zero",
        DUAL_FILE,
        {"qp_P_q_A_b": OFF_BY_ONE, "qp_G_h": OK, "qp_matrices_hidden": OFF_BY_ONE},
        edits=(("q = -np.ones(n)", "q = np.zeros(n)"),),
        reason="by exactly 1",
        why="q = 0 instead of -1: every element of q off by exactly 1",
    ),
    Mutant(
        "qp_A_as_a_vector",
        DUAL_FILE,
        {"qp_P_q_A_b": SHAPE, "qp_G_h": OK, "qp_matrices_hidden": SHAPE},
        edits=(("A = y.reshape(1, n).astype(np.float64)", "A = y.copy()"),),
        reason="expected shape (1, 6) but got (6,)",
        why="A of shape (N,) instead of (1, N)",
    ),
    Mutant(
        "dual_alpha_as_a_column",
        DUAL_FILE,
        every(DUAL, SHAPE),
        edits=(('return np.array(solution["x"]).ravel()', 'return np.array(solution["x"])'),),
        reason="expected shape (20,) but got (20, 1)",
        why="cvxopt's (N, 1) solution returned as it is",
    ),
    Mutant(
        "bias_from_every_support_vector",
        DUAL_FILE,
        {"dual_bias_predict": VALUES},
        edits=(
            (
                "    free = (alpha > FREE_TOL * C) & (alpha < C - FREE_TOL * C)\n",
                "    free = alpha > FREE_TOL * C\n",
            ),
        ),
        reason="output bias",
        why="the bias averaged over the bounded support vectors too",
    ),
    Mutant(
        "fc_forward_without_bias",
        NET,
        every(FC_FORWARD, VALUES),
        edits=(("    return X @ W + b\n", "    return X @ W\n"),),
        why="the bias forgotten",
    ),
    Mutant(
        "fc_backward_dW_transposed",
        NET,
        every(FC_BACKWARD, SHAPE),
        edits=(("    dW = X.T @ dY\n", "    dW = dY.T @ X\n"),),
        reason="output dW: expected shape (4, 3) but got (3, 4)",
        why="dW = dY^T X, the transpose of X^T dY",
    ),
    Mutant(
        "fc_backward_db_as_a_vector",
        NET,
        every(FC_BACKWARD, SHAPE),
        edits=(("np.sum(dY, axis=0, keepdims=True)", "np.sum(dY, axis=0)"),),
        reason="output db: expected shape (1, 3) but got (3,)",
        why="db returned as (D,) where the spec has (1, D)",
    ),
    Mutant(
        "fc_backward_float32",
        NET,
        every(FC_BACKWARD, DTYPE),
        edits=(("    dX = dY @ W.T\n", "    dX = (dY @ W.T).astype(np.float32)\n"),),
        reason="output dX: expected float64 but got float32",
        why="dX in float32",
    ),
    Mutant(
        "fc_backward_two_outputs",
        NET,
        every(FC_BACKWARD, OUTPUT),
        edits=(("    return dX, dW, db\n", "    return dX, dW\n"),),
        reason="expected 3 outputs but got 2 outputs",
        why="db not returned",
    ),
    Mutant(
        "relu_in_place",
        NET,
        {"relu_forward_small": INPUT},
        edits=(
            ("    return np.maximum(X, 0.0)\n", "    np.maximum(X, 0.0, out=X)\n    return X\n"),
        ),
        reason="argument 'X' was changed in place",
        why="ReLU applied in place to its input",
    ),
    Mutant(
        "relu_backward_mask_only",
        NET,
        {"relu_backward_small": DTYPE},
        edits=(("    return dY * (X > 0)\n", "    return X > 0\n"),),
        reason="expected float64 but got bool",
        why="the boolean mask returned instead of dY times it",
    ),
    Mutant(
        "relu_backward_wrong_side",
        NET,
        {"relu_backward_small": VALUES},
        edits=(("    return dY * (X > 0)\n", "    return dY * (X < 0)\n"),),
        why="the gradient passed where X < 0",
    ),
    Mutant(
        "softmax_without_max_shift",
        NET,
        {"softmax_small": OK, "softmax_large_scores": DIVERGED, "mnist_two_layer_net": OK},
        edits=(("scores - np.max(scores, axis=1, keepdims=True)", "scores"),),
        reason="overflowed",
        why="exp of the raw scores: fine on small scores (MNIST training at the right learning "
        "rate too), inf/nan on large ones",
    ),
    Mutant(
        "softmax_loss_summed",
        NET,
        every(SOFTMAX, VALUES),
        edits=(("    loss = -np.mean(", "    loss = -np.sum("),),
        reason="output loss",
        why="the loss summed over the batch instead of averaged",
    ),
    Mutant(
        "softmax_returns_text",
        NET,
        every(SOFTMAX, OUTPUT),
        edits=(("    return float(loss), dscores\n", '    return f"loss={loss}"\n'),),
        reason="str",
        why="a string returned",
    ),
    Mutant(
        "softmax_returns_nothing",
        NET,
        every(SOFTMAX, OUTPUT),
        edits=(("    return float(loss), dscores\n", "    print(loss, dscores)\n"),),
        reason="None",
        why="the return forgotten (None)",
    ),
]

# -- training: the MNIST case (a few seconds each) --
TRAINING = [
    Mutant(
        "training_learning_rate_diverges",
        NET,
        {"mnist_two_layer_net": DIVERGED},
        edits=(
            ("scores - np.max(scores, axis=1, keepdims=True)", "scores"),
            (
                "    rng = np.random.default_rng(seed)\n",
                "    rng = np.random.default_rng(seed)\n    learning_rate = learning_rate * 100\n",
            ),
        ),
        reason="diverged",
        why="a learning rate 100 times too large (50) in a net whose softmax has no max "
        "shift: the scores grow past exp's range and the weights become NaN (the same "
        "softmax trains fine at 0.5: softmax_without_max_shift; with the shift, even 10^4 "
        "times the rate stays finite, at chance accuracy)",
    ),
    Mutant(
        "training_stays_below_threshold",
        NET,
        {"mnist_two_layer_net": WEAK},
        edits=(
            (
                "    rng = np.random.default_rng(seed)\n",
                "    rng = np.random.default_rng(seed)\n    learning_rate = learning_rate / 100\n",
            ),
        ),
        reason="below the threshold 0.82",
        why="a learning rate 100 times too small: it trains, but not far enough",
    ),
]

# -- code that does not load or does not end well --
BROKEN = [
    Mutant(
        "syntax_error",
        NET,
        {"relu_forward_small": RAISED},
        edits=(("def relu_forward(X):", "def relu_forward(X)"),),
        reason="SyntaxError",
        why="a missing colon: the module does not import",
    ),
    Mutant(
        "missing_function",
        NET,
        {"relu_backward_small": RAISED},
        edits=(("def relu_backward(dY, X):", "def relu_backwards(dY, X):"),),
        reason="AttributeError",
        why="the function misnamed",
    ),
    Mutant(
        "exception_in_student_code",
        SVM,
        {"predict_labels": RAISED},
        edits=(("    scores = X @ w + b\n", "    scores = X.T @ w + b\n"),),
        reason="soft_margin_svm.py",
        why="a matmul shape error: 2 with the student's own line",
    ),
    Mutant(
        "forbidden_import",
        NET,
        {"relu_forward_small": FORBIDDEN},
        edits=(("import numpy as np\n", "import subprocess\n\nimport numpy as np\n"),),
        reason="subprocess",
        why="an import hw3 does not allow",
    ),
    Mutant(
        "imports_kernelnet",
        NET,
        {"relu_forward_small": FORBIDDEN},
        edits=(
            (
                "    return np.maximum(X, 0.0)\n",
                "    from kernelnet.nn import layers\n\n    return layers.relu_forward(X)[0]\n",
            ),
        ),
        reason="kernelnet",
        why="kernelnet's own reference imported",
    ),
]

# -- hostile: graded under a copy of hw3 allowing os/sys/time/socket, with short limits --
HOSTILE_IMPORTS = ("os", "sys", "time", "socket")
HOSTILE = [
    Mutant(
        "infinite_loop",
        NET,
        {"relu_forward_small": TIME},
        edits=(("    return np.maximum(X, 0.0)\n", "    while True:\n        pass\n"),),
        hostile=True,
        why="a loop that never ends",
    ),
    Mutant(
        "allocates_30_gb",
        NET,
        {"relu_forward_small": MEMORY},
        edits=(("    return np.maximum(X, 0.0)\n", "    return np.ones(30 * 2**30) + X[0, 0]\n"),),
        hostile=True,
        why="a 30 GB array",
    ),
    Mutant(
        "prints_100_mb",
        NET,
        {"relu_forward_small": TOO_LARGE},
        edits=(
            (
                "    return np.maximum(X, 0.0)\n",
                '    for _ in range(100):\n        print("x" * 2**20)\n'
                "    return np.maximum(X, 0.0)\n",
            ),
        ),
        hostile=True,
        why="100 MB printed",
    ),
    Mutant(
        "os_exit",
        NET,
        {"relu_forward_small": CRASH},
        edits=(
            ("import numpy as np\n", "import os\n\nimport numpy as np\n"),
            ("    return np.maximum(X, 0.0)\n", "    os._exit(0)\n"),
        ),
        hostile=True,
        why="os._exit before returning",
    ),
    Mutant(
        "forks_50_sleeping_children",
        NET,
        {"relu_forward_small": RAISED},
        function=(
            "def relu_forward(X):\n"
            "    import os\n"
            "    import time\n\n"
            "    for _ in range(50):\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(60)\n"
            "            os._exit(0)\n"
            "    return np.maximum(X, 0.0)\n"
        ),
        hostile=True,
        reason="BlockingIOError",
        why="50 forks under a process limit of 32: fork fails with EAGAIN",
    ),
    Mutant(
        "fork_bomb",
        NET,
        {"relu_forward_small": RAISED},
        function="def relu_forward(X):\n    import os\n\n    while True:\n        os.fork()\n",
        hostile=True,
        reason="BlockingIOError",
        why="while True: os.fork()",
    ),
    Mutant(
        "writes_outside_its_folder",
        NET,
        {"relu_forward_small": RAISED},
        function=(
            "def relu_forward(X):\n"
            '    with open("@STRAY@", "w") as handle:  # world-writable /tmp: allowed, removed\n'
            '        handle.write("left behind")\n'
            '    with open("@TARGET@", "w") as handle:\n'
            '        handle.write("overwritten by a submission")\n'
            "    return np.maximum(X, 0.0)\n"
        ),
        hostile=True,
        reason="PermissionError",
        why="a write to a file of the grader's",
    ),
    Mutant(
        "reads_a_secret",
        NET,
        {"relu_forward_small": RAISED},
        function=(
            "def relu_forward(X):\n"
            '    with open("@SECRET@", "rb") as handle:\n'
            "        return np.frombuffer(handle.read(), dtype=np.uint8)\n"
        ),
        hostile=True,
        reason="PermissionError",
        why="a read of a root-only file",
    ),
    Mutant(
        "connects_to_a_local_port",
        NET,
        {"relu_forward_small": RAISED},
        function=(
            "def relu_forward(X):\n"
            "    import socket\n\n"
            '    with socket.create_connection(("127.0.0.1", @PORT@), timeout=2) as s:\n'
            '        s.sendall(b"the expected outputs, please")\n'
            "    return np.maximum(X, 0.0)\n"
        ),
        hostile=True,
        reason="Error",
        why="a connection to the grader's machine",
    ),
]

ALL = WRONG + TRAINING + BROKEN + HOSTILE
