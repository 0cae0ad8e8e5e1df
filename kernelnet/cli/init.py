"""``kernelnet init [DIR]``: copy the shipped configs into a folder to edit."""

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from kernelnet.cli.guard import user_errors
from kernelnet.errors import ConfigError
from kernelnet.shipped import shipped


def init(
    folder: Annotated[Path, typer.Argument(help="Where to write the configs.")] = Path("configs"),
    force: Annotated[bool, typer.Option(help="Overwrite configs already there.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write every shipped config (one YAML per experiment) into FOLDER, to edit and run:

    kernelnet init my-configs && kernelnet run my-configs/mnist.yaml
    """
    with user_errors(debug):
        sources = sorted(shipped("configs").glob("*.yaml"))
        targets = [folder / source.name for source in sources]
        clashes = [t for t in targets if t.exists()]
        if clashes and not force:
            raise ConfigError(
                f"{folder}: {len(clashes)} config(s) already there ({clashes[0].name}, ...); "
                "edit them, choose another folder, or pass --force to overwrite"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for source, target in zip(sources, targets):
                shutil.copyfile(source, target)
        except OSError as exc:
            raise ConfigError(f"{folder}: cannot write configs there ({exc.strerror})") from None
    for target in targets:
        sys.stdout.write(f"{target}\n")
