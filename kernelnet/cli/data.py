"""``kernelnet data``: fetch datasets (for users who have internet)."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.guard import user_errors
from kernelnet.data.fetch import DEADLINE, DEFAULT_MIRROR, check_mirror, fetch_mnist
from kernelnet.errors import ConfigError

data_app = typer.Typer(help="Get datasets.", no_args_is_help=True)


@data_app.command("fetch")
def fetch(
    dataset: Annotated[str, typer.Argument(help="Dataset to download (mnist).")],
    dest: Annotated[
        Optional[str], typer.Option(help="Data folder (default: the one kernelnet reads).")
    ] = None,
    url: Annotated[
        str, typer.Option(help="Mirror holding the four MNIST .gz files.")
    ] = DEFAULT_MIRROR,
    force: Annotated[bool, typer.Option(help="Download even if valid files are present.")] = False,
    deadline: Annotated[
        float, typer.Option(min=1, help="Give up on a file after this many seconds in all.")
    ] = DEADLINE,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Download MNIST into the data folder, verifying every file's sha256 pin.

    kernelnet ships MNIST, so this is only needed to restore a deleted or damaged copy.
    """
    from kernelnet.data.registry import data_root

    with user_errors(debug):
        if dataset != "mnist":
            raise ConfigError(f"unknown dataset {dataset!r} to fetch; valid: mnist")
        if dest is not None and not dest.strip():  # Path("") would be the current folder
            raise ConfigError("--dest must not be empty (give a folder, or leave it out)")
        check_mirror(url)
        folder = Path(dest) if dest is not None else data_root()
        written = fetch_mnist(folder, url, force=force, deadline=deadline)
    for path in written:
        sys.stdout.write(f"{path}\n")
    if not written:
        sys.stderr.write(f"MNIST in {folder / 'mnist'} is already complete and verified\n")
