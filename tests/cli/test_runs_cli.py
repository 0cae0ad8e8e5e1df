import json
from pathlib import Path

from typer.testing import CliRunner

from kernelnet.cli import app

runner = CliRunner()


def run(tmp_path, *args):
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_compare_shows_config_and_metric_differences(tmp_path):
    a = run(tmp_path, "svm-primal", "--epochs", "1,10")
    b = run(tmp_path, "svm-primal", "--epochs", "1,10", "--set", "svm.C=4")
    result = runner.invoke(app, ["runs", "compare", str(a), str(b)])
    assert result.exit_code == 1
    assert "svm.C" in result.stdout and "5.0" in result.stdout and "4.0" in result.stdout
    assert "epochs=10" in result.stdout and "objective" in result.stdout
    same = runner.invoke(app, ["runs", "compare", str(a), str(a)])
    assert same.exit_code == 0 and "identical" in same.stdout


def test_rerun_reproduces_the_metrics_exactly(tmp_path):
    first = run(tmp_path, "kernel-table", "--datasets", "moons,xor", "--kernels", "rbf,poly")
    result = runner.invoke(app, ["rerun", str(first)])
    assert result.exit_code == 0, result.stderr
    again = Path(result.stdout.strip().splitlines()[-1])
    assert again != first and again.parent == first.parent
    assert "metrics match exactly" in result.stderr


def test_rerun_notices_changed_results(tmp_path):
    first = run(tmp_path, "svm-primal", "--epochs", "3")
    metrics = first / "metrics.csv"
    lines = metrics.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1], "0.123", 1)
    metrics.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["rerun", str(first)])
    assert result.exit_code == 1 and "differ" in result.stderr


def test_runs_list_filters_and_reports_a_headline(tmp_path):
    run(tmp_path, "svm-primal", "--epochs", "10")
    run(tmp_path, "kernel-table", "--datasets", "moons", "--kernels", "rbf")
    listed = json.loads(
        runner.invoke(
            app,
            ["runs", "list", "--runs-dir", str(tmp_path), "--json", "--experiment", "kernel-table"],
        ).stdout
    )
    assert [r["experiment"] for r in listed] == ["kernel-table"]
    assert listed[0]["headline"] == "mean_test_accuracy 0.9"
    none = json.loads(
        runner.invoke(
            app, ["runs", "list", "--runs-dir", str(tmp_path), "--json", "--status", "failed"]
        ).stdout
    )
    assert none == []


def test_runs_show(tmp_path):
    folder = run(tmp_path, "svm-primal", "--epochs", "1")
    result = runner.invoke(app, ["runs", "show", str(folder)])
    assert result.exit_code == 0
    assert "Primal soft-margin SVM" in result.stdout and "training_history.png" in result.stdout
    missing = runner.invoke(app, ["runs", "show", str(tmp_path)])
    assert missing.exit_code == 2
