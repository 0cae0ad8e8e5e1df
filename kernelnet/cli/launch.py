"""From parsed command-line options to a finished run: the path every experiment takes."""

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from kernelnet.cli.guard import user_errors
from kernelnet.cli.options import CommonOptions
from kernelnet.cli.render import (
    cell_progress,
    diagnostics,
    print_tables,
    stderr_console,
    stdout_console,
)
from kernelnet.config import RawConfig, dump_config, expand, read_config_file
from kernelnet.errors import ConfigError
from kernelnet.executors import make_executor
from kernelnet.experiments import REGISTRY, get_experiment
from kernelnet.experiments.base import Experiment
from kernelnet.runner import (
    RunOutcome,
    execute,
    interruptible,
    named_experiment,
    resolve_experiment_config,
)
from kernelnet.runs import RunFolderError, resolve_run
from kernelnet.shipped import shipped
from kernelnet.tables import Table


def configs_dir() -> Path:
    """The shipped configs (inside the installed package, or configs/ in a checkout)."""
    return shipped("configs")


def default_config(name: str) -> Path | None:
    path = configs_dir() / f"{name}.yaml"
    return path if path.is_file() else None


def build_config(
    experiment: Experiment,
    raw: RawConfig,
    common: CommonOptions,
    flags: dict[str, tuple[str, str | None]],
) -> dict:
    """Apply --set items, then explicit flags (highest precedence), and validate."""
    for item in common.set:
        raw.override(item)
    for key, (flag, value) in flags.items():
        if value is not None:
            raw.override(f"{key}={value}", source=flag)
    if common.seed is not None:
        raw.set("seed", common.seed, "--seed")
    if common.no_plots:
        raw.set("plots", False, "--no-plots")
    return resolve_experiment_config(experiment, raw)


def print_cells(experiment: Experiment, resolved: dict, max_cells: int) -> None:
    from kernelnet.search import Plan

    candidates = expand(experiment.schema, resolved, max_cells)
    plan = Plan(experiment.schema, resolved, candidates)
    cells = plan.first()
    title = f"{experiment.name}: {len(cells)} cell(s)"
    if plan.halving is not None:
        title = (
            f"{experiment.name}: successive halving over {len(candidates)} candidate(s); "
            f"round 0 runs {len(cells)} cell(s)"
        )
    table = Table(
        title,
        ["#", "cell id"],
        [[str(c.index), c.id] for c in cells],
        align=["right", "left"],
    )
    print_tables([table], stdout_console())


def run_resolved(experiment: Experiment, resolved: dict, common: CommonOptions) -> RunOutcome:
    resume = resolve_run(common.resume, common.runs_dir) if common.resume else None
    with (
        diagnostics(common.quiet, common.debug),
        cell_progress(experiment.name, not common.quiet) as progress,
    ):
        # Connecting to a cluster can take a while: Ctrl-C or SIGTERM then says that no
        # run folder was made (or that the one being resumed is unchanged).
        with interruptible(resume.path if resume else None):
            executor = make_executor(
                common.workers,
                common.scheduler,
                str(common.scheduler_file) if common.scheduler_file else None,
                common.blas_threads,
            )
        outcome = execute(
            experiment,
            resolved,
            common.runs_dir,
            sys.argv,
            progress,
            executor,
            resume,
            common.force,
            common.max_cells,
        )
    if outcome.report_error:
        stderr_console().print(
            f"error: the report failed: {outcome.report_error}; every cell result is saved "
            f"(traceback in {outcome.run.file('log.txt')})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not common.quiet:
        print_tables(outcome.tables, stdout_console())
        if outcome.failures:
            stderr_console().print(
                f"[bold red]{len(outcome.failures)} of {len(outcome.results)} cell(s) "
                f"{outcome.status}[/]; the other cells' results are in the run folder"
            )
    return outcome


def print_run_path(outcome: RunOutcome) -> None:
    sys.stdout.write(f"{outcome.run.path}\n")
    sys.stdout.flush()


def resume_config_path(run: Path, runs_dir: Path) -> tuple[str, Path]:
    """The experiment and saved config of a run to resume (named as any run is named)."""
    try:
        folder = resolve_run(run, runs_dir)
    except RunFolderError as exc:
        raise ConfigError(f"--resume {run}: not a run folder ({exc})") from None
    return str(folder.manifest.get("experiment", "?")), folder.file("config.yaml")


def preview(experiment: Experiment, resolved: dict, common: CommonOptions) -> bool:
    """--dry-run lists the cells, --print-config the resolved config; True if either did."""
    if common.dry_run:
        print_cells(experiment, resolved, common.max_cells)
    elif common.print_config:
        sys.stdout.write(dump_config(resolved))
    return common.dry_run or common.print_config


def launch(
    name: str,
    common: CommonOptions,
    flags: dict[str, tuple[str, str | None]],
    arguments: Callable[[RawConfig], None] | None = None,
) -> None:
    """Run experiment ``name`` from its default (or --config) config; exit with its code.
    With --resume, the run folder's saved config is the starting point instead.
    ``arguments`` sets what a command's own arguments give (``kernelnet grade``'s
    assignment and submissions) on the raw config, before --set and the flags."""
    with user_errors(common.debug):
        experiment = get_experiment(name)
        path = common.config or default_config(name)
        if common.resume and not common.config:
            recorded, path = resume_config_path(common.resume, common.runs_dir)
            if recorded != name:
                raise ConfigError(f"--resume {common.resume}: a {recorded!r} run, not {name!r}")
        raw = read_config_file(path) if path else RawConfig()
        if arguments is not None:
            arguments(raw)
        resolved = build_config(experiment, raw, common, flags)
        if preview(experiment, resolved, common):
            return
        outcome = run_resolved(experiment, resolved, common)
    print_run_path(outcome)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def launch_files(paths: list[Path], common: CommonOptions) -> None:
    """``kernelnet run``: each file's ``experiment:`` key picks the experiment; ``-c FILE``
    is one more file, run first. With --resume and no files, the run folder's own config
    is used."""
    if common.config:
        paths = [common.config, *paths]
    if common.resume and not paths:
        with user_errors(common.debug):
            _, saved = resume_config_path(common.resume, common.runs_dir)
        paths = [saved]
    if not paths:
        with user_errors(common.debug):
            raise ConfigError("give at least one CONFIG.yaml (or --resume RUN_DIR)")
    worst = 0
    for path in paths:
        with user_errors(common.debug):
            raw = read_config_file(path)
            named = named_experiment(raw)
            if named is None:
                where = raw.locations.get("experiment", f"{path}:1:1")
                raise ConfigError(
                    f"{where}: experiment: is required (valid: {', '.join(REGISTRY)})"
                )
            experiment = get_experiment(named, str(raw.locations["experiment"]))
            resolved = build_config(experiment, raw, common, {})
            if preview(experiment, resolved, common):
                continue
            outcome = run_resolved(experiment, resolved, common)
        print_run_path(outcome)
        worst = max(worst, outcome.exit_code)
    if worst:
        raise typer.Exit(worst)
