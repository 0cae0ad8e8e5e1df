"""A cell is tied to its data's bytes, not to how a data file's path is spelled: the seeds,
the numbers and what --resume trusts are the same for ``pets.csv``, ``./pets.csv``, its
absolute path and a copy, and change when one value in the file changes. And ``knn``
records the label mapping it votes with, as the other experiments on users' files do."""

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.config import expand, resolve
from kernelnet.config.sweep import CONTENT_KEY, canonical_digest, data_identity
from kernelnet.data.files import _hash_file
from kernelnet.experiments import REGISTRY

runner = CliRunner()
NUMBERS = ("k", "train_accuracy", "val_accuracy", "chosen", "test_accuracy")


def pets(path: Path, seed: int = 0, classes=("cat", "dog", "eel"), n: int = 40) -> Path:
    """Overlapping blobs with text labels: accuracies below 1 that move with the split."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x1", "x2", "label"])
        for i, label in enumerate(classes):
            for point in rng.normal(1.2 * i, 1.0, size=(n, 2)):
                writer.writerow([*map(repr, point.tolist()), label])
    return path


def sha256_of(path: Path) -> str:
    """An independent reference: the whole file's bytes hashed at once."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args, expect: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, result.stderr
    return result


def knn(runs: Path, *sets: str) -> Path:
    args = ["knn", "--runs-dir", runs, "--quiet", "--set", "knn.k=1,3,5,9"]
    for item in sets:
        args += ["--set", item]
    return Path(run(*args).stdout.strip().splitlines()[-1])


def numbers(folder: Path) -> list[tuple]:
    return [tuple(r[c] for c in NUMBERS) for r in csv.DictReader(open(folder / "metrics.csv"))]


def digest_of(experiment: str, data: dict) -> str:
    schema = REGISTRY[experiment].schema
    (cell,) = expand(schema, resolve(schema, {"data": data}, {}))
    return cell.digest


def test_knn_gives_the_same_numbers_however_the_path_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pets(tmp_path / "pets.csv")
    spellings = ["pets.csv", "./pets.csv", str(tmp_path / "pets.csv"), "sub/../pets.csv"]
    (tmp_path / "sub").mkdir()
    runs = [
        numbers(knn(tmp_path / f"runs{i}", f"data.dataset={s}")) for i, s in enumerate(spellings)
    ]
    assert all(found == runs[0] for found in runs[1:])
    # the numbers do move with the cell's Generator: another seed gives others
    assert numbers(knn(tmp_path / "other", "data.dataset=pets.csv", "seed=1")) != runs[0]


def test_a_copy_under_another_name_gives_the_same_numbers(tmp_path, monkeypatch):
    """With a test file the data is not split by name, so train and validation come from
    the cell's Generator alone: a copy elsewhere under other names is the same cell."""
    monkeypatch.chdir(tmp_path)
    pets(tmp_path / "train.csv", seed=0)
    pets(tmp_path / "test.csv", seed=1)
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(tmp_path / "train.csv", tmp_path / "elsewhere" / "animals.csv")
    shutil.copy(tmp_path / "test.csv", tmp_path / "elsewhere" / "holdout.csv")
    first = knn(tmp_path / "a", "data.dataset=train.csv", "data.test_path=test.csv")
    copy = knn(
        tmp_path / "b",
        f"data.dataset={tmp_path / 'elsewhere' / 'animals.csv'}",
        "data.test_path=elsewhere/holdout.csv",
    )
    assert numbers(copy) == numbers(first)
    reseeded = knn(tmp_path / "c", "data.dataset=train.csv", "data.test_path=test.csv", "seed=3")
    assert numbers(reseeded) != numbers(first)


def test_a_copy_under_another_name_is_split_alike(tmp_path, monkeypatch):
    """Without a test file the data is split by the run seed and the data's bytes."""
    monkeypatch.chdir(tmp_path)
    pets(tmp_path / "pets.csv", seed=0)
    shutil.copy(tmp_path / "pets.csv", tmp_path / "animals.csv")
    first = knn(tmp_path / "a", "data.dataset=pets.csv")
    assert numbers(knn(tmp_path / "b", "data.dataset=animals.csv")) == numbers(first)


def test_one_changed_value_is_other_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pets(tmp_path / "pets.csv")
    lines = (tmp_path / "pets.csv").read_text().splitlines(keepends=True)
    x1, rest = lines[5].split(",", 1)
    lines[5] = f"{float(x1) + 1e-9!r},{rest}"
    (tmp_path / "edited.csv").write_text("".join(lines))
    same = digest_of("knn", {"dataset": "pets.csv"})
    assert digest_of("knn", {"dataset": "./pets.csv"}) == same
    assert digest_of("knn", {"dataset": "edited.csv"}) != same
    assert digest_of("mlp", {"dataset": "pets.csv"}) != same  # other settings still count
    assert digest_of("mlp", {"dataset": "./pets.csv"}) == digest_of("mlp", {"dataset": "pets.csv"})
    assert digest_of("knn", {"dataset": "pets.csv", "test_path": "./edited.csv"}) == digest_of(
        "knn", {"dataset": "./pets.csv", "test_path": str(tmp_path / "edited.csv")}
    )


def test_names_missing_files_and_non_files_keep_their_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "moons").write_text("a file named like a shipped set is not read as data")
    os.mkfifo(tmp_path / "pipe.csv")  # a FIFO is never opened: no hang, no hash
    values = {"data": {"dataset": "moons", "test_path": None}, "seed": 0}
    assert data_identity(values) == values
    for name in ("missing.csv", "pipe.csv", str(tmp_path)):
        values = {"data": {"dataset": name, "test_path": name}}
        assert data_identity(values) == values
    assert digest_of("knn", {"dataset": "missing.csv"}) != digest_of("knn", {"dataset": "gone.csv"})
    pets(tmp_path / "pets.csv")
    hashed = data_identity({"data": {"dataset": "pets.csv"}})["data"]["dataset"]
    assert hashed == {CONTENT_KEY: sha256_of(tmp_path / "pets.csv")}


def test_each_file_is_read_once_until_it_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = pets(tmp_path / "pets.csv")
    schema = REGISTRY["knn"].schema
    raw = {"data": {"dataset": "pets.csv"}, "knn": {"k": [1, 3]}, "seed": [0, 1, 2, 3]}
    cells = expand(schema, resolve(schema, raw, {}), 100)
    before = _hash_file.cache_info().misses
    digests = [cell.digest for cell in cells for _ in range(3)]
    assert _hash_file.cache_info().misses == before + 1
    assert len(set(digests)) == len(cells) == 4
    pets(path, seed=5)  # rewritten: another size or modification time, read again
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert cells[0].digest != digests[0]
    assert _hash_file.cache_info().misses == before + 2
    assert canonical_digest(data_identity({"data": {"dataset": "pets.csv"}})) == canonical_digest(
        {"data": {"dataset": {CONTENT_KEY: sha256_of(path)}}}
    )


def resumed_skips(folder: Path) -> int:
    run("run", "--resume", folder, "--quiet")
    return json.loads((folder / "run.json").read_text())["resumed"][-1]["skipped_cells"]


def test_resume_keeps_cells_of_unchanged_data_and_reruns_edited_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pets(tmp_path / "pets.csv")
    folder = knn(tmp_path / "runs", "data.dataset=./pets.csv")
    before = numbers(folder)
    assert resumed_skips(folder) == 1
    pets(tmp_path / "pets.csv", seed=7)  # other data under the same name
    assert resumed_skips(folder) == 0
    assert numbers(folder) != before
    assert "stored for other settings" in (folder / "log.txt").read_text()


@pytest.mark.parametrize(
    "classes, mapping",
    [
        (("eel", "cat", "dog"), {"cat": 0, "dog": 1, "eel": 2}),
        (("dog", "cat"), {"cat": 0, "dog": 1}),
    ],
)
def test_knn_records_the_label_mapping_it_votes_with(tmp_path, classes, mapping):
    data = pets(tmp_path / "pets.csv", classes=classes)
    folder = knn(tmp_path / "runs", f"data.dataset={data}")
    stored = json.loads((folder / "cells" / "single" / "result.json").read_text())
    assert stored["artifacts"]["label_mapping"] == mapping
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["label_mapping"] == {str(data): mapping}


def test_knn_records_a_mapping_for_every_dataset_of_a_sweep(tmp_path):
    data = pets(tmp_path / "pets.csv", classes=("b", "a"))
    folder = knn(tmp_path / "runs", f"data.dataset=moons,{data}")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["label_mapping"][str(data)] == {"a": 0, "b": 1}
    assert sorted(summary["label_mapping"]["moons"].values()) == [0, 1]


def test_a_large_file_is_hashed_in_chunks_and_a_stale_stat_is_refused(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(np.random.default_rng(0).bytes(5 * 2**20 // 2 + 17))  # 2.5 MiB + 17
    hashed = data_identity({"data": {"dataset": str(path)}})["data"]["dataset"]
    assert hashed == {CONTENT_KEY: sha256_of(path)}
    info = path.stat()
    with pytest.raises(OSError, match="changed while its digest was taken"):
        _hash_file(str(path), info.st_size - 1, info.st_mtime_ns, info.st_ino, info.st_dev)
