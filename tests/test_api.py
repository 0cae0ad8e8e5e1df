"""The Python API a notebook uses: kernelnet.run writes the folder the command line writes,
kernelnet.load_run reads any run back."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kernelnet
from kernelnet.cli import app
from kernelnet.errors import ConfigError, ModelError


def test_the_api_is_visible():
    assert {"run", "load_run", "Run"} <= set(dir(kernelnet))


def test_run_writes_the_same_folder_the_command_line_writes(tmp_path):
    api = kernelnet.run(
        "svm-primal", overrides={"svm.epochs": [1, 10]}, runs_dir=tmp_path / "api", seed=3
    )
    cli = CliRunner().invoke(app, ["svm-primal", "--epochs", "1,10", "--seed", "3",
                                   "--runs-dir", str(tmp_path / "cli"), "--quiet"])  # fmt: skip
    assert cli.exit_code == 0, cli.stderr
    cli_folder = Path(cli.stdout.strip().splitlines()[-1])
    assert api.path.parent.parent == tmp_path / "api" and api.experiment == "svm-primal"
    assert sorted(p.name for p in api.path.iterdir()) == sorted(
        p.name for p in cli_folder.iterdir()
    )
    assert api.metrics == kernelnet.load_run(cli_folder).metrics
    assert (api.path / "config.yaml").read_text() == (cli_folder / "config.yaml").read_text()
    assert api.status == "complete"
    assert [c["id"] for c in api.cells] == ["epochs=1", "epochs=10"]
    assert api.config["svm"]["epochs"] == [1, 10] and api.config["seed"] == 3
    assert isinstance(api.metrics[1]["test_accuracy"], float)
    assert api.metrics[1]["epochs"] == 10 and api.metrics[1]["cell"] == "epochs=10"
    rows = list(csv.DictReader(open(api.path / "metrics.csv")))
    assert float(rows[1]["test_accuracy"]) == api.metrics[1]["test_accuracy"]
    assert api.summary == json.loads((api.path / "summary.json").read_text())
    assert "params.npz" in [p.name for p in api.files("epochs=10")]


def test_config_may_be_a_mapping_or_a_file_and_overrides_a_list(tmp_path):
    from_mapping = kernelnet.run(
        "kernel-table",
        config={"data": {"dataset": "moons"}, "kernel": {"name": "rbf"}, "plot.resolution": 20},
        overrides=["svm.C=0.5,2"],
        runs_dir=tmp_path,
    )
    assert [c["id"] for c in from_mapping.cells] == ["C=0.5", "C=2"]
    path = tmp_path / "mine.yaml"
    path.write_text("experiment: knn\ndata:\n  dataset: xor\nknn:\n  k: [1, 3]\n")
    from_file = kernelnet.run("knn", config=path, runs_dir=tmp_path)
    assert {r["dataset"] for r in from_file.metrics} == {"xor"}


def test_load_run_names_runs_like_the_command_line(tmp_path):
    first = kernelnet.run("conv", runs_dir=tmp_path)
    second = kernelnet.run("conv", runs_dir=tmp_path)
    assert kernelnet.load_run("latest", runs_dir=tmp_path).path == second.path
    assert kernelnet.load_run(first.path.name, runs_dir=tmp_path).path == first.path
    assert kernelnet.load_run(str(first.path)).path == first.path
    assert "status='complete'" in repr(first)


def test_api_errors_are_exceptions_not_exits(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        kernelnet.run("svm-primal", overrides={"svm.lerning_rate": 1}, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown experiment"):
        kernelnet.run("nope", runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="name one of"):
        kernelnet.run("svm-primal", runs_dir=tmp_path).files()
    assert not (tmp_path / "svm-primal" / "nothing").exists()


def test_a_run_gives_back_the_fitted_model_of_a_cell(tmp_path):
    import numpy as np

    from kernelnet.data.registry import load_binary, load_labelled

    table = kernelnet.run("kernel-table", config={"data.dataset": "moons", "plot.resolution": 20},
                          overrides=["kernel.name=rbf,linear"], runs_dir=tmp_path)  # fmt: skip
    model = table.model("kernel=rbf")
    assert type(model).__name__ == "KernelSVM" and list(model.classes_) == [0, 1]
    split = load_labelled(_section("moons"), 0)
    accuracy = float((model.predict(split.X_test) == split.y_test).mean())
    row = next(r for r in table.metrics if r["cell"] == "kernel=rbf")
    assert accuracy == row["test_accuracy"]

    primal = kernelnet.run("svm-primal", overrides={"svm.epochs": 30}, runs_dir=tmp_path)
    linear = primal.model()
    with np.load(primal.path / "cells" / "single" / "params.npz") as saved:
        np.testing.assert_array_equal(linear.coef_, saved["w"])
    iris = load_binary("iris_binary")
    assert linear.score(iris.X_test, iris.y_test) == primal.metrics[0]["test_accuracy"]

    with pytest.raises(ConfigError, match="name one of"):
        table.model()
    conv = kernelnet.run("conv", runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="saved no estimator"):
        conv.model()


def _section(dataset):
    from kernelnet.experiments.kernel_table import TableData

    return TableData(dataset=dataset)


def test_a_tampered_model_is_refused_not_executed(tmp_path):
    run = kernelnet.run("svm-primal", overrides={"svm.epochs": 3}, runs_dir=tmp_path)
    saved = run.path / "cells" / "single" / "model.json"
    document = json.loads(saved.read_text())
    document["estimator"] = "os.system"
    saved.write_text(json.dumps(document))
    with pytest.raises(ModelError, match="not a kernelnet model"):
        run.model()
