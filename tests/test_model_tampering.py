"""A saved model (model.json + model-arrays.npz) is checked as a whole when it is loaded:
every way of damaging or tampering with it is one ModelError at load, naming the file and
what is wrong — never a KeyError, IndexError, TypeError, RecursionError or matmul error at
predict time — and a clean model predicts exactly as before it was saved."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import kernelnet
from kernelnet.errors import ModelError
from kernelnet.model_io import MODEL, MODEL_ARRAYS, load_model, save_model
from kernelnet.runs import RunDir
from tests.helpers import within_deadline

ESTIMATORS = ["KernelSVM", "LinearSVM", "MLPClassifier", "KNeighborsClassifier"]
FITTED = {
    "KernelSVM": {"gamma": 0.5},
    "LinearSVM": {"epochs": 30},
    "MLPClassifier": {"hidden_layer_sizes": (6, 4), "epochs": 40, "standardize": True},
    "KNeighborsClassifier": {"n_neighbors": 3},
}


def blobs(n_classes):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(3 * i, 1.0, (15, 2)) for i in range(n_classes)])
    return X, np.repeat(np.arange(n_classes), 15)


def fitted(name):
    X, y = blobs(2 if name == "LinearSVM" else 3)
    return getattr(kernelnet, name)(**FITTED[name]).fit(X, y), X


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Each estimator fitted on a small problem and saved into a cell of one run folder:
    {name: (cell folder, fitted estimator, data)}."""
    run = RunDir.create(tmp_path_factory.mktemp("models"), "models")
    saved = {}
    for name in ESTIMATORS:
        estimator, X = fitted(name)
        files = run.cell_files(name)
        save_model(files, estimator)
        saved[name] = (files.folder, estimator, X)
    return saved


@pytest.fixture
def copy_of(pristine, tmp_path):
    """A fresh copy of an estimator's saved run, ``cells/<name>`` inside it."""

    def make(name):
        folder = pristine[name][0]
        run = tmp_path / "run"
        shutil.copytree(folder.parent.parent, run, symlinks=True)
        return run / "cells" / name

    return make


# --- ways to tamper -------------------------------------------------------------------------


def read_document(folder):
    return json.loads((folder / MODEL).read_text())


def edit_json(change):
    def tamper(folder):
        document = read_document(folder)
        change(document)
        (folder / MODEL).write_text(json.dumps(document))

    return tamper


def ref(document, *path):
    """The archive member the state entry at ``path`` refers to."""
    value = document["state"]
    for step in path:
        value = value[step]
    return value["$array"]


def edit_array(path, change):
    """Replace the array the state entry at ``path`` names by ``change(array)``."""

    def tamper(folder):
        name = ref(read_document(folder), *path)
        with np.load(folder / MODEL_ARRAYS) as saved:
            arrays = dict(saved)
        arrays[name] = change(arrays[name])
        np.savez(folder / MODEL_ARRAYS, **arrays)

    return tamper


def set_state(path, value):
    def change(document):
        target = document["state"]
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit_json(change)


def deep_json(folder):
    (folder / MODEL).write_text("[" * 100_000 + "]" * 100_000)


def truncated_json(folder):
    text = (folder / MODEL).read_text()
    (folder / MODEL).write_text(text[: len(text) // 2])


def fifo(name):
    def tamper(folder):
        (folder / name).unlink()
        os.mkfifo(folder / name)

    return tamper


def dev_zero(name):
    def tamper(folder):
        (folder / name).unlink()
        (folder / name).symlink_to("/dev/zero")

    return tamper


def link_out(folder):
    outside = folder.parent.parent.parent / "elsewhere.npz"
    shutil.copy(folder / MODEL_ARRAYS, outside)
    (folder / MODEL_ARRAYS).unlink()
    (folder / MODEL_ARRAYS).symlink_to(outside)


def npy_bytes(array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def zip_bomb(folder):
    """A real archive whose one member inflates to 8 MB of zeros (a few KB on disk), over
    the 1 MB memory limit the test sets."""
    with zipfile.ZipFile(folder / MODEL_ARRAYS, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a0.npy", npy_bytes(np.zeros(2**20)))


def lying_header(folder):
    """A member whose .npy header declares 10^12 float64s and that holds 8 bytes of them."""
    header = npy_bytes(np.zeros(1)).replace(b"(1,)", b"(1000000000000,)")
    with zipfile.ZipFile(folder / MODEL_ARRAYS, "w") as archive:
        archive.writestr("a0.npy", header)


def encrypted(folder):
    """The archive's members flagged as encrypted (zipfile raises RuntimeError for them)."""
    data = bytearray((folder / MODEL_ARRAYS).read_bytes())
    for signature, flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + flags] |= 1
            start = data.find(signature, start + 4)
    (folder / MODEL_ARRAYS).write_bytes(data)


def npy_not_npz(folder):
    (folder / MODEL_ARRAYS).write_bytes(npy_bytes(np.arange(5.0)))


def truncated_npz(folder):
    data = (folder / MODEL_ARRAYS).read_bytes()
    (folder / MODEL_ARRAYS).write_bytes(data[: len(data) // 2])


def object_array(folder):
    with np.load(folder / MODEL_ARRAYS) as saved:
        arrays = dict(saved)
    arrays["a0"] = np.array([{"x": 1}, None], dtype=object)
    np.savez(folder / MODEL_ARRAYS, **arrays)


def extra_array(folder):
    with np.load(folder / MODEL_ARRAYS) as saved:
        arrays = dict(saved)
    np.savez(folder / MODEL_ARRAYS, **arrays, stowaway=np.zeros(3))


def missing_array_ref(document):
    document["state"]["classes"] = {"$array": "a999"}


def three_classes(classes):
    return np.append(classes, classes.max() + 1)


def nan_at_first(array):
    array = array.astype(np.float64)
    array.flat[0] = np.nan
    return array


# Damage any saved model can suffer: (id, tamper, file named, fragment of the message).
COMMON = [
    ("estimator-unknown", edit_json(lambda d: d.update(estimator="os.system")), MODEL,
     "not a kernelnet model"),
    ("estimator-missing", edit_json(lambda d: d.pop("estimator")), MODEL, "not a kernelnet model"),
    ("estimator-a-list", edit_json(lambda d: d.update(estimator=["KernelSVM"])), MODEL,
     "not a kernelnet model (a list of 1)"),
    ("document-a-list", lambda f: (f / MODEL).write_text("[1, 2]"), MODEL,
     "not a kernelnet model (not a JSON object)"),
    ("document-not-utf8", lambda f: (f / MODEL).write_bytes(b'{"format": "\xff"}'), MODEL,
     "utf-8"),
    ("drop-state", edit_json(lambda d: d.pop("state")), MODEL, "missing ['state']"),
    ("format-2", edit_json(lambda d: d.update(format=2)), MODEL, "format"),
    ("unknown-param", edit_json(lambda d: d["params"].update(bogus=1)), MODEL, "unknown ['bogus']"),
    ("params-a-list", edit_json(lambda d: d.update(params=[1, 2])), MODEL, "params: expected"),
    ("drop-state-key", edit_json(lambda d: d["state"].pop("n_features_in")), MODEL,
     "missing ['n_features_in']"),
    ("extra-state-key", edit_json(lambda d: d["state"].update(extra=1)), MODEL,
     "unexpected ['extra']"),
    ("n-features-a-string", set_state(["n_features_in"], "2"), MODEL,
     "state.n_features_in: expected an integer"),
    ("n-features-a-bool", set_state(["n_features_in"], True), MODEL,
     "state.n_features_in: expected an integer"),
    ("n-features-plus-one", set_state(["n_features_in"], 3), MODEL, "expected shape"),
    ("n-features-huge", set_state(["n_features_in"], 10**40), MODEL, "expected shape"),
    ("array-ref-missing", edit_json(missing_array_ref), MODEL, "names array 'a999'"),
    ("bad-marker", set_state(["classes"], {"$pickle": "os.system"}), MODEL,
     "not a value kernelnet writes"),
    ("array-ref-an-object", set_state(["classes"], {"$array": {"a0": 1}}), MODEL,
     "names array a JSON object"),
    ("arrays-encrypted", encrypted, MODEL_ARRAYS, "encrypted"),
    ("classes-a-list", set_state(["classes"], [0, 1]), MODEL, "state.classes: expected an array"),
    ("classes-duplicated", edit_array(["classes"], lambda c: np.repeat(c, 2)[: c.size]), MODEL,
     "state.classes: classes not distinct"),
    ("classes-as-bytes", edit_array(["classes"], lambda c: c.astype("S8")), MODEL,
     "state.classes: expected a bool/int/uint/float/str array"),
    ("classes-0-d", edit_array(["classes"], lambda c: np.array(c[0])), MODEL, "expected shape (*)"),
    ("classes-nan", edit_array(["classes"], nan_at_first), MODEL, "NaN or infinity"),
    ("json-100000-deep", deep_json, MODEL, "nested 100,000 deep"),
    ("json-truncated", truncated_json, MODEL, MODEL),
    ("json-fifo", fifo(MODEL), MODEL, "FIFO"),
    ("json-dev-zero", dev_zero(MODEL), MODEL, "/dev/zero"),
    ("arrays-missing", lambda f: (f / MODEL_ARRAYS).unlink(), MODEL_ARRAYS, "missing"),
    ("arrays-fifo", fifo(MODEL_ARRAYS), MODEL_ARRAYS, "FIFO"),
    ("arrays-dev-zero", dev_zero(MODEL_ARRAYS), MODEL_ARRAYS, "/dev/zero"),
    ("arrays-link-out", link_out, MODEL_ARRAYS, "a link out of"),
    ("arrays-zip-bomb", zip_bomb, MODEL_ARRAYS, "inflates to 8,388,736 bytes"),
    ("arrays-header-lies", lying_header, MODEL_ARRAYS, "declares (1000000000000,)"),
    ("arrays-npy-not-npz", npy_not_npz, MODEL_ARRAYS, "not an .npz archive"),
    ("arrays-truncated", truncated_npz, MODEL_ARRAYS, "not an .npz archive"),
    ("arrays-object", object_array, MODEL_ARRAYS, "object"),
    ("arrays-extra", extra_array, MODEL_ARRAYS, "arrays ['stowaway'] belong to no part"),
]  # fmt: skip

# Damage that breaks what one estimator's state must be as a whole.
SPECIFIC = [
    ("KernelSVM", "param-C-negative", edit_json(lambda d: d["params"].update(C=-1)),
     "The 'C' parameter of KernelSVM must be a float in the range (0.0, inf). Got -1 instead."),
    ("KernelSVM", "param-kernel-dropped", edit_json(lambda d: d["params"].pop("kernel")),
     "params: missing ['kernel']"),
    ("KernelSVM", "param-working-set-1", edit_json(lambda d: d["params"].update(working_set=1)),
     "The 'working_set' parameter of KernelSVM must be an int in the range [2, inf)"),
    ("KernelSVM", "extra-class", edit_array(["classes"], three_classes),
     "state.pairs: expected a list of 6"),
    ("KernelSVM", "classes-100000", edit_array(["classes"], lambda c: np.arange(100_000)),
     "state.pairs: expected a list of 4999950000"),  # counted, never enumerated
    ("KernelSVM", "pair-dropped", edit_json(lambda d: d["state"]["pairs"].pop()),
     "state.pairs: expected a list of 3"),
    ("KernelSVM", "pair-classes-swapped", edit_array(["pairs", 1, "classes"], lambda c: c[::-1]),
     "state.pairs[1].classes: [2, 0], not [0, 2]"),
    ("KernelSVM", "dual-coef-short", edit_array(["pairs", 0, "dual_coef"], lambda a: a[:-1]),
     "state.pairs[0].dual_coef: expected shape"),
    ("KernelSVM", "support-vectors-transposed",
     edit_array(["pairs", 2, "support_vectors"], lambda a: a.T),
     "state.pairs[2].support_vectors: expected shape (*, 2)"),
    ("KernelSVM", "support-vectors-as-text",
     edit_array(["pairs", 0, "support_vectors"], lambda a: a.astype(str)),
     "state.pairs[0].support_vectors: expected a float array"),
    ("KernelSVM", "dual-coef-inf", edit_array(["pairs", 0, "dual_coef"], lambda a: a * np.inf),
     "state.pairs[0].dual_coef: holds NaN or infinity"),
    ("KernelSVM", "bias-a-string", set_state(["pairs", 0, "bias"], "0.5"),
     "state.pairs[0].bias: expected a finite number"),
    ("KernelSVM", "bias-nan", set_state(["pairs", 0, "bias"], {"$float": "nan"}),
     "state.pairs[0].bias: expected a finite number"),
    ("KernelSVM", "pair-not-an-object", set_state(["pairs", 0], [1, 2]),
     "state.pairs[0]: expected a JSON object"),
    ("KernelSVM", "gamma-not-the-parameter", set_state(["gamma"], 5.0),
     "state.gamma: 5.0, not gamma=0.5"),
    ("LinearSVM", "coef-2-d", edit_array(["coef"], lambda a: a[None, :]),
     "state.coef: expected shape (2), got (1, 2)"),
    ("LinearSVM", "three-classes", edit_array(["classes"], three_classes),
     "state.classes: expected 2 classes, got 3"),
    ("LinearSVM", "intercept-nan", set_state(["intercept"], {"$float": "nan"}),
     "state.intercept: expected a finite number"),
    ("LinearSVM", "learning-rate-inf",
     edit_json(lambda d: d["params"].update(learning_rate={"$float": "inf"})),
     "The 'learning_rate' parameter of LinearSVM must be a float in the range (0.0, inf)"),
    ("MLPClassifier", "param-epochs-0", edit_json(lambda d: d["params"].update(epochs=0)),
     "The 'epochs' parameter of MLPClassifier must be an int"),
    ("MLPClassifier", "extra-class", edit_array(["classes"], three_classes),
     "state.params.W3: expected shape (4, 4), got (4, 3)"),
    ("MLPClassifier", "w2-wrong-shape", edit_array(["params", "W2"], lambda a: a[:, :-1]),
     "state.params.W2: expected shape (6, 4), got (6, 3)"),
    ("MLPClassifier", "w1-transposed", edit_array(["params", "W1"], lambda a: a.T),
     "state.params.W1: expected shape (2, 6), got (6, 2)"),
    ("MLPClassifier", "b1-dropped", edit_json(lambda d: d["state"]["params"].pop("b1")),
     "state.params: keys missing ['b1']"),
    ("MLPClassifier", "hidden-not-the-parameter", set_state(["hidden"], [6, 5]),
     "state.hidden: [6, 5], not hidden_layer_sizes [6, 4]"),
    ("MLPClassifier", "hidden-a-string", set_state(["hidden"], "6,4"),
     "state.hidden: expected a list of integers"),
    ("MLPClassifier", "scale-zero", edit_array(["scale"], lambda a: a * 0),
     "state.scale: holds a value <= 0"),
    ("MLPClassifier", "mean-short", edit_array(["mean"], lambda a: a[:1]),
     "state.mean: expected shape (2), got (1,)"),
    ("KNeighborsClassifier", "codes-out-of-range", edit_array(["codes"], lambda a: a + 5),
     "state.codes: expected the codes 0..2 of the 3 classes"),
    ("KNeighborsClassifier", "codes-short", edit_array(["codes"], lambda a: a[:-1]),
     "state.codes: expected shape (45), got (44,)"),
    ("KNeighborsClassifier", "codes-float", edit_array(["codes"], lambda a: a.astype(float)),
     "state.codes: expected an int/uint array, got float64"),
    ("KNeighborsClassifier", "X-inf", edit_array(["X"], lambda a: np.full_like(a, np.inf)),
     "state.X: holds NaN or infinity"),
    ("KNeighborsClassifier", "more-neighbours-than-points",
     edit_json(lambda d: d["params"].update(n_neighbors=46)),
     "state.X: 45 training points, fewer than n_neighbors=46"),
    ("KNeighborsClassifier", "metric-unknown",
     edit_json(lambda d: d["params"].update(metric="manhattan")),
     "The 'metric' parameter of KNeighborsClassifier must be a str among"),
]  # fmt: skip

CASES = [(name, *case) for name in ESTIMATORS for case in COMMON] + [
    (name, case_id, tamper, MODEL, said) for name, case_id, tamper, said in SPECIFIC
]


@pytest.mark.parametrize(
    "name, case_id, tamper, file, said", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_a_tampered_model_is_one_model_error_at_load(
    copy_of, monkeypatch, name, case_id, tamper, file, said
):
    monkeypatch.setenv("KERNELNET_MEMORY_LIMIT", "1M")  # the zip bomb's bound; models are KBs
    folder = copy_of(name)
    tamper(folder)
    with pytest.raises(ModelError) as refused:
        within_deadline(lambda: load_model(folder))
    message = str(refused.value)
    assert "\n" not in message and len(message) < 400, message
    assert file in message and said in message, message


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_clean_model_predicts_identically_after_a_round_trip(pristine, name):
    folder, estimator, X = pristine[name]
    loaded = load_model(folder)
    assert type(loaded) is type(estimator) and loaded.get_params() == {
        k: list(v) if isinstance(v, tuple) else v for k, v in estimator.get_params().items()
    }
    probe = np.vstack([X, np.random.default_rng(1).normal(0, 4, (30, 2))])
    np.testing.assert_array_equal(loaded.predict(probe), estimator.predict(probe))
    for method in ("decision_function", "predict_proba"):
        if hasattr(estimator, method):
            np.testing.assert_array_equal(
                getattr(loaded, method)(probe), getattr(estimator, method)(probe)
            )


WITHOUT_SKLEARN = """
import json, sys
sys.modules["sklearn"] = None  # as if it were not installed
from pathlib import Path
import numpy as np
from kernelnet.errors import ModelError
from kernelnet.model_io import load_model

folder = Path(sys.argv[1])
print(load_model(folder).predict(np.zeros((2, 2))).tolist())
document = json.loads((folder / "model.json").read_text())
document["state"]["n_features_in"] = 3
(folder / "model.json").write_text(json.dumps(document))
try:
    load_model(folder)
except ModelError as exc:
    print("refused", exc)
assert not [m for m in sys.modules if m.startswith("sklearn") and sys.modules[m]]
"""


@pytest.mark.parametrize("name", ESTIMATORS)
def test_loading_checks_the_same_without_scikit_learn(pristine, copy_of, name):
    folder = copy_of(name)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SKLEARN, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    estimator = pristine[name][1]
    assert json.loads(first) == estimator.predict(np.zeros((2, 2))).tolist()
    assert second.startswith("refused ") and "model.json" in second and "expected shape" in second


# --- through the Python API, on real runs --------------------------------------------------


def test_run_model_refuses_a_tampered_svm_primal_model(tmp_path):
    run = kernelnet.run("svm-primal", overrides={"svm.epochs": 3}, runs_dir=tmp_path)
    model = kernelnet.load_run(run.path).model()
    assert type(model).__name__ == "LinearSVM"
    cell = run.path / "cells" / "single"
    edit_array(["coef"], lambda a: np.vstack([a, a]))(cell)
    with pytest.raises(ModelError, match=r"state\.coef: expected shape \(4\), got \(2, 4\)"):
        kernelnet.load_run(run.path).model()
    edit_array(["coef"], lambda a: a[0])(cell)  # back as it was
    assert kernelnet.load_run(run.path).model().n_features_in_ == 4
    set_state(["classes"], {"$array": "nowhere"})(cell)
    with pytest.raises(ModelError, match="names array 'nowhere'"):
        kernelnet.load_run(run.path).model()


def test_run_model_refuses_a_tampered_mlp_model(tmp_path):
    overrides = {"data.dataset": "moons", "train.epochs": 2, "model.hidden": [5]}
    run = kernelnet.run("mlp", overrides=overrides, runs_dir=tmp_path)
    loaded = kernelnet.load_run(run.path)
    X = np.random.default_rng(0).normal(size=(10, 2))
    clean = loaded.model().predict(X)
    cell = run.path / "cells" / "single"
    edit_array(["params", "W2"], lambda a: a.T)(cell)
    with pytest.raises(ModelError, match=r"state\.params\.W2: expected shape \(5, 2\)"):
        loaded.model()
    edit_array(["params", "W2"], lambda a: a.T)(cell)
    np.testing.assert_array_equal(loaded.model().predict(X), clean)
    deep_json(cell)
    with pytest.raises(ModelError, match="nested 100,000 deep"):
        loaded.model()


def test_the_load_stays_inside_the_run_folder(pristine, copy_of, tmp_path):
    """A model.json swapped for a link to another run's model is refused (the run folder is
    the root of every read), though the file it points at is a perfectly good model."""
    folder = copy_of("LinearSVM")
    other = pristine["LinearSVM"][0]
    (folder / MODEL).unlink()
    (folder / MODEL).symlink_to(other / MODEL)
    with pytest.raises(ModelError, match="a link out of"):
        load_model(folder)
    assert load_model(other).n_features_in_ == 2
    assert Path(folder / MODEL).resolve() == (other / MODEL).resolve()
