"""``kernelnet init [DIR]``: copy the shipped configs into a folder to edit.

Each config is written atomically and never through a symlink: a link at a target name (to a
file outside DIR, or to nothing) counts as a config already there, and ``--force`` replaces
the link itself, never what it points at.
"""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kernelnet.cli.guard import user_errors
from kernelnet.errors import ConfigError
from kernelnet.shipped import shipped

MAX_SHIPPED_CONFIG = 2**20  # the largest shipped config is a few kB


def write_configs(folder: Path, force: bool) -> list[Path]:
    """Copy every shipped config into ``folder``; the paths written, in order."""
    from kernelnet import safe_read  # imported here: `kernelnet --help` stays light
    from kernelnet.safe_write import cannot_write, write_atomic
    from kernelnet.safe_write import shown as shown_path

    if os.path.lexists(folder) and not folder.is_dir():
        raise ConfigError(
            f"{shown_path(folder)}: exists and is not a folder; give a folder for the configs"
        )
    sources = sorted(shipped("configs").glob("*.yaml"))
    targets = [folder / source.name for source in sources]
    clashes = [t for t in targets if os.path.lexists(t)]  # a dangling link is one too
    if clashes and not force:
        raise ConfigError(
            f"{shown_path(folder)}: {len(clashes)} config(s) already there ({clashes[0].name}, "
            "...); edit them, choose another folder, or pass --force to overwrite"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for source, target in zip(sources, targets):
            text = safe_read.read_bytes(source, MAX_SHIPPED_CONFIG)
            write_atomic(target, lambda handle, data=text: handle.write(data), root=folder)
    except OSError as exc:
        raise cannot_write(folder, exc, "configs") from None
    return targets


DEFAULT_FOLDER = "my-configs"  # not "configs": the commands never read a local configs/


def init(
    folder: Annotated[str, typer.Argument(help="Where to write the configs.")] = DEFAULT_FOLDER,
    force: Annotated[bool, typer.Option(help="Overwrite configs already there.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write every shipped config (one YAML per experiment) into FOLDER (default
    my-configs), to edit and run with `kernelnet run` or a command's --config. The
    commands alone (kernelnet svm-primal, kernelnet reproduce) always start from the
    shipped configs, never from a folder of edited ones.

    Example:  kernelnet init && kernelnet run my-configs/mnist.yaml
    """
    with user_errors(debug):
        if not folder.strip():  # as Path, "" would silently become "." (this folder)
            raise ConfigError("the folder must not be empty (give . for this folder)")
        targets = write_configs(Path(folder), force)
    for target in targets:
        sys.stdout.write(f"{target}\n")
    example = next((t for t in targets if t.stem == "svm-primal"), targets[0] if targets else None)
    if example is not None:
        sys.stderr.write(
            f"edit them, then run one with: kernelnet run {example} (or kernelnet "
            f"{example.stem} --config {example}); without --config a command uses the "
            "shipped config\n"
        )
