"""Options shared by every experiment command, added to each command's signature once.

``experiment_command`` appends ``--config``, ``--set``, ``--runs-dir``, ``--seed``,
``--quiet``, ``--print-config`` and ``--debug`` to a command function, collects them into
a :class:`CommonOptions` and passes that as the function's first argument.
"""

import functools
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

PANEL = "Common options"


@dataclass(frozen=True)
class CommonOptions:
    config: Optional[Path]
    set: list[str]
    runs_dir: Path
    seed: Optional[int]
    quiet: bool
    print_config: bool
    debug: bool
    dry_run: bool = False
    workers: int = 1
    blas_threads: int = 1
    max_cells: int = 10_000
    resume: Optional[Path] = None
    force: bool = False
    scheduler: Optional[str] = None
    scheduler_file: Optional[Path] = None
    no_plots: bool = False


def _option(name: str, annotation, default, *decls: str, help: str, **extra) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[
            annotation, typer.Option(*decls, help=help, rich_help_panel=PANEL, **extra)
        ],
    )


COMMON_PARAMETERS = [
    _option(
        "config",
        Optional[Path],
        None,
        "--config",
        "-c",
        help="YAML config to start from (default: configs/<command>.yaml).",
    ),
    _option(
        "set",
        Optional[list[str]],
        None,
        "--set",
        "-s",
        help="Override a value: --set svm.C=10. Commas sweep: --set svm.C=0.1,1,10. "
        "Repeatable; applied after the config file.",
    ),
    _option(
        "runs_dir",
        str,
        "runs",
        "--runs-dir",
        help="Where run folders go: <runs-dir>/<experiment>/<time>-<id>/.",
    ),
    _option("seed", Optional[int], None, "--seed", help="Run seed (overrides the config's seed)."),
    _option(
        "quiet", bool, False, "--quiet", "-q", help="Print only the run folder path (and errors)."
    ),
    _option(
        "print_config",
        bool,
        False,
        "--print-config",
        help="Print the fully resolved config and exit without running.",
    ),
    _option("debug", bool, False, "--debug", help="Show tracebacks and debug logging."),
    _option(
        "dry_run",
        bool,
        False,
        "--dry-run",
        help="List the grid cells the config expands to and exit without running.",
    ),
    _option(
        "workers",
        int,
        1,
        "--workers",
        "-w",
        min=1,
        help="Run grid cells in N worker processes.",
    ),
    _option(
        "blas_threads",
        int,
        1,
        "--blas-threads",
        min=1,
        help="BLAS threads each cell uses, the same on every executor so results are "
        "bit-identical wherever a cell runs (recorded in run.json).",
    ),
    _option(
        "max_cells",
        int,
        10_000,
        "--max-cells",
        min=1,
        help="The largest grid to run (or list with --dry-run); a bigger sweep is refused.",
    ),
    _option(
        "scheduler",
        Optional[str],
        None,
        "--scheduler",
        help="Run cells on a Dask cluster at tcp://HOST:PORT (or set DASK_SCHEDULER_ADDRESS); "
        "needs kernelnet[dask].",
    ),
    _option(
        "scheduler_file",
        Optional[Path],
        None,
        "--scheduler-file",
        help="Dask scheduler file to connect to, instead of --scheduler.",
    ),
    _option(
        "resume",
        Optional[Path],
        None,
        "--resume",
        help="Finish an interrupted or partly failed run folder: completed cells are "
        "skipped, training cells continue from their last checkpoint; refused if the config "
        "no longer matches, if the run is still going, or if it was made by another "
        "kernelnet/numpy version or git commit (unless --force).",
    ),
    _option(
        "no_plots",
        bool,
        False,
        "--no-plots",
        help="Skip the figures (the config's plots: false); every number is the same. "
        "Useful for large sweeps.",
    ),
    _option(
        "force",
        bool,
        False,
        "--force",
        help="With --resume: resume a run made by other code anyway (recorded in run.json).",
    ),
]


def with_common_options(func):
    """Make ``func(common, **specific)`` a Typer command taking the common options too."""
    specific = list(inspect.signature(func, eval_str=True).parameters.values())[1:]
    names = [p.name for p in COMMON_PARAMETERS]

    @functools.wraps(func)
    def command(**kwargs):
        if not kwargs["runs_dir"].strip():
            sys.stderr.write("error: --runs-dir must not be empty\n")
            raise typer.Exit(2)
        kwargs["runs_dir"] = Path(kwargs["runs_dir"])
        common = CommonOptions(**{name: kwargs.pop(name) for name in names})
        common = CommonOptions(**{**common.__dict__, "set": list(common.set or [])})
        return func(common, **kwargs)

    command.__signature__ = inspect.Signature(specific + COMMON_PARAMETERS)
    del command.__wrapped__  # so inspect.signature reads __signature__, not func's
    return command
