"""The Python API: run an experiment from a notebook and read any run folder back.

    import kernelnet
    run = kernelnet.run("svm-primal", overrides={"svm.epochs": [1, 10, 100]})
    run.status, run.metrics[-1]["test_accuracy"], run.cells[0]["id"]
    again = kernelnet.load_run("latest")

``run`` writes exactly the run folder the command line writes (the same runner), and raises
kernelnet's errors (ConfigError, DataError, ...) instead of exiting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from kernelnet.errors import ConfigError
from kernelnet.runs import RunDir, resolve_run


def _raw_config(experiment_name: str, config: str | Path | Mapping | None):
    from kernelnet.config import RawConfig, read_config_file
    from kernelnet.config.overrides import apply_override
    from kernelnet.config.yaml_loader import Location
    from kernelnet.shipped import shipped

    if config is None:
        path = shipped("configs") / f"{experiment_name}.yaml"
        return read_config_file(path) if path.is_file() else RawConfig()
    if isinstance(config, Mapping):
        raw = RawConfig()
        for key, value in config.items():
            apply_override(raw.values, raw.locations, str(key), value, Location("config="))
        return raw
    return read_config_file(Path(config))


def _apply(raw, overrides: Mapping[str, Any] | Sequence[str] | None) -> None:
    if overrides is None:
        return
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            raw.set(str(key), value, f"overrides[{key!r}]")
        return
    if isinstance(overrides, str):
        raise ConfigError("overrides: give a list of 'key=value' items or a dict, not a string")
    for item in overrides:
        raw.override(str(item), source="overrides")


def _check_arguments(experiment, config, overrides, runs_dir, seed) -> None:
    """The types ``run`` takes, said in one line before anything is made."""
    checks = [
        ("experiment", experiment, isinstance(experiment, str), "an experiment name"),
        ("config", config, config is None or isinstance(config, (str, Path, Mapping)),
         "a YAML path or a mapping"),
        ("overrides", overrides, overrides is None or isinstance(overrides, (Mapping, Sequence)),
         "a dict or a list of 'key=value' items"),
        ("runs_dir", runs_dir, isinstance(runs_dir, (str, Path)), "a folder path"),
        ("seed", seed, seed is None or type(seed) is int, "a whole number"),
    ]  # fmt: skip
    for name, value, ok, wanted in checks:
        if not ok:
            raise ConfigError(f"{name} must be {wanted}, not {type(value).__name__} {value!r:.60}")


def run(
    experiment: str,
    *,
    config: str | Path | Mapping | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    runs_dir: str | Path = "runs",
    seed: int | None = None,
    workers: int = 1,
) -> Run:
    """Run ``experiment`` (a command name such as ``"kernel-table"``) and return its Run.

    ``config``: a YAML path or a mapping (default: the shipped config). ``overrides``: a dict
    of dotted keys (a list value sweeps) or a list of ``"key=value"`` items, applied after
    the config; ``seed`` last. The folder is the one the command line would write.
    """
    from kernelnet.executors import make_executor
    from kernelnet.experiments import get_experiment
    from kernelnet.runner import execute, resolve_experiment_config

    _check_arguments(experiment, config, overrides, runs_dir, seed)
    if not str(runs_dir).strip():  # Path("") is "." : refuse it before it becomes one
        raise ConfigError("runs_dir must not be empty")
    chosen = get_experiment(experiment)
    raw = _raw_config(chosen.name, config)
    _apply(raw, overrides)
    if seed is not None:
        raw.set("seed", seed, "seed=")
    resolved = resolve_experiment_config(chosen, raw)
    argv = ["kernelnet.run", chosen.name]
    executor = make_executor(workers)
    try:
        outcome = execute(
            chosen, resolved, Path(runs_dir), argv, progress=_progress(chosen.name),
            executor=executor,
        )  # fmt: skip
    finally:  # a Dask connection the executor opened is closed however the run ends
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    return Run(outcome.run.path)


def _progress(experiment: str):
    """A progress display in a Jupyter notebook; none elsewhere (a library stays quiet)."""
    from kernelnet.notebook_display import NotebookProgress, in_notebook

    return NotebookProgress(experiment) if in_notebook() else None


def load_run(path_or_id: str | Path, runs_dir: str | Path = "runs") -> Run:
    """A run named by its folder, ``"latest"``, its id or a unique prefix of its id."""
    return Run(resolve_run(path_or_id, Path(runs_dir)).path)


def _value(text: str) -> Any:
    """A metrics.csv field as the number or flag it was."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


@dataclass(frozen=True)
class Run:
    """A run folder, read back: everything is read from disk when first asked for."""

    path: Path

    def __post_init__(self) -> None:
        RunDir.open(self.path)  # refuse a folder that is not a run, at once

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, experiment={self.experiment!r}, status={self.status!r})"

    def _repr_html_(self) -> str:
        """In a notebook: the run, its cells' metrics and its figures."""
        from kernelnet.notebook_display import run_html

        return run_html(self)

    @property
    def _dir(self) -> RunDir:
        return RunDir.open(self.path)

    @property
    def experiment(self) -> str:
        return str(self._dir.manifest.get("experiment"))

    @property
    def status(self) -> str:
        """``complete``, ``failed``, ``diverged``, ``interrupted`` or ``running``."""
        from kernelnet.runs import RunInfo

        run = self._dir
        return RunInfo(run.path, run.manifest).status

    @property
    def manifest(self) -> dict[str, Any]:
        return self._dir.manifest

    @cached_property
    def config(self) -> dict[str, Any]:
        """The fully resolved config (sweeps as lists)."""
        return self._dir.read_config()

    @property
    def summary(self) -> dict[str, Any]:
        return self._dir.read_summary()

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """metrics.csv as row dicts, numbers as numbers (each row leads with its ``cell``)."""
        return [{k: _value(v) for k, v in row.items()} for row in self._dir.read_metrics()]

    @property
    def cells(self) -> list[dict[str, Any]]:
        """Every cell of the grid: ``index``, ``id``, ``params`` (swept values), ``keys``."""
        from kernelnet.runs import RunFolderError

        run = self._dir
        cells = run.read_grid().get("cells", [])
        if not isinstance(cells, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) for c in cells
        ):
            raise RunFolderError(f"{run.file('grid.json')}: damaged (cells)")
        return list(cells)

    def files(self, cell: str | None = None) -> list[Path]:
        """The files a cell wrote (the only cell when ``cell`` is None)."""
        return self._dir.cell_file_list(self._cell_id(cell))

    def model(self, cell: str | None = None):
        """The fitted estimator the cell saved (KernelSVM for kernel-table, LinearSVM for
        svm-primal, MLPClassifier for mlp), ready to predict on new data; read as data,
        never unpickled."""
        from kernelnet.errors import ModelError
        from kernelnet.model_io import MODEL, load_model

        folder = self._dir.cell_folder(self._cell_id(cell))
        if not os.path.lexists(folder / MODEL):  # asking for what is not there: a usage error
            raise ConfigError(f"{folder}: this cell saved no estimator")
        try:
            return load_model(folder)
        except ModelError:
            raise
        except ValueError as exc:
            raise ModelError(str(exc)) from None

    def _cell_id(self, cell: str | None) -> str:
        ids = [c["id"] for c in self.cells]
        if cell is None:
            if len(ids) != 1:
                raise ConfigError(f"this run has {len(ids)} cells; name one of: {', '.join(ids)}")
            return ids[0]
        if cell not in ids:
            raise ConfigError(f"no cell {cell!r} in this run; cells: {', '.join(ids)}")
        return cell
