"""mnist-table: every row is its method measured on the standard split, checked against
scikit-learn doing the same (k-NN with the k validation picks, SVC with the same C and
gamma), with the published error beside it; the report and figure cover every method."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.data.mnist import mnist_split
from kernelnet.experiments.mnist_table import PUBLISHED

pytest.importorskip("sklearn")
runner = CliRunner()
SMALL = ["--set", "data.train_size=1500", "--set", "data.val_size=500",
         "--set", "data.test_size=500", "--set", "networks.epochs=3"]  # fmt: skip


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    runs = tmp_path_factory.mktemp("table")
    result = runner.invoke(app, ["mnist-table", "--runs-dir", str(runs), "--quiet", *SMALL])
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    return folder, {r["method"]: r for r in csv.DictReader(open(folder / "metrics.csv"))}


def test_every_method_has_a_row_with_its_published_error(table):
    folder, rows = table
    assert set(rows) == set(PUBLISHED)
    for method, row in rows.items():
        assert float(row["published_error"]) == PUBLISHED[method][1]
        assert 0 <= float(row["test_error"]) < 50 and float(row["fit_seconds"]) > 0
    assert (folder / "plots" / "measured_vs_published.png").is_file()
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["errors"]) == set(PUBLISHED)


def reference_knn(data, X, k):
    """scikit-learn's neighbours, then kernelnet's documented vote in a loop: the majority,
    a tie going to the tied class whose member is nearest."""
    from sklearn.neighbors import KNeighborsClassifier

    _, index = KNeighborsClassifier(k).fit(data.X_train, data.y_train).kneighbors(X)
    predicted = []
    for labels in data.y_train[index]:
        counts = {c: list(labels).count(c) for c in set(labels)}
        tied = {c for c, n in counts.items() if n == max(counts.values())}
        predicted.append(next(c for c in labels if c in tied))
    return np.array(predicted)


def test_the_knn_and_svm_rows_equal_scikit_learn_on_the_same_split(table):
    from sklearn.svm import SVC

    _, rows = table
    data = mnist_split(1500, 500, 500, normalize="scale")
    k = int(rows["knn"]["settings"].split()[0].removeprefix("k="))
    scores = {c: np.mean(reference_knn(data, data.X_val, c) == data.y_val) for c in (1, 3, 5, 7)}
    assert k == max(scores, key=lambda c: (scores[c], -c))
    expected = 100 * np.mean(reference_knn(data, data.X_test, k) != data.y_test)
    assert float(rows["knn"]["test_error"]) == pytest.approx(expected)
    svc = SVC(C=10, gamma=0.05).fit(data.X_train, data.y_train)
    assert float(rows["rbf-svm"]["test_error"]) == pytest.approx(
        100 * np.mean(svc.predict(data.X_test) != data.y_test)
    )


def test_an_overlapping_validation_set_is_refused(tmp_path):
    result = runner.invoke(app, ["mnist-table", "--runs-dir", str(tmp_path),
                                 "--set", "data.train_size=58000"])  # fmt: skip
    assert result.exit_code == 2 and "would overlap training" in result.stderr
    assert not any(tmp_path.iterdir())
