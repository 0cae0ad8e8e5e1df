import csv
from pathlib import Path

from typer.testing import CliRunner

from kernelnet.cli import app


def test_knn_run_reports_test_accuracy_once_per_dataset(tmp_path):
    result = CliRunner().invoke(
        app, ["knn", "--runs-dir", str(tmp_path), "--quiet", "--set", "data.dataset=moons,xor"]
    )
    assert result.exit_code == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert list(rows[0]) == [
        "cell",
        "dataset",
        "metric",
        "k",
        "train_accuracy",
        "val_accuracy",
        "chosen",
        "test_accuracy",
    ]
    for dataset in ("moons", "xor"):
        mine = [r for r in rows if r["dataset"] == dataset]
        assert [r["chosen"] for r in mine].count("True") == 1
        assert [bool(r["test_accuracy"]) for r in mine] == [r["chosen"] == "True" for r in mine]
        assert float(next(r for r in mine if r["k"] == "1")["train_accuracy"]) == 1.0
        chosen = next(r for r in mine if r["chosen"] == "True")
        assert float(chosen["val_accuracy"]) == max(float(r["val_accuracy"]) for r in mine)
    assert (folder / "plots" / "accuracy_vs_k.png").is_file()
