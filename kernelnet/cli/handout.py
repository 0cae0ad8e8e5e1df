"""``kernelnet handout ASSIGNMENT DIR``: write an assignment's starter files, the data they
read and a student README into a folder (kernelnet/grading/handout.py does the work)."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from kernelnet.cli.guard import user_errors


def handout(
    assignment: Annotated[
        str, typer.Argument(help="A shipped assignment (hw3), or the path of a spec .yaml.")
    ],
    folder: Annotated[Path, typer.Argument(help="Where to write the handout.")],
    force: Annotated[bool, typer.Option(help="Overwrite handout files already there.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write the handout of ASSIGNMENT into FOLDER: one starter .py per file (signatures,
    docstrings, bodies that raise NotImplementedError), its data/ and a README.md:

    kernelnet handout hw3 hw3 && cd hw3 && kernelnet grade hw3 .
    """
    with user_errors(debug):
        from kernelnet.grading.handout import write_handout
        from kernelnet.grading.spec import load_assignment

        written = write_handout(load_assignment(assignment), folder, force)
    for path in written:
        sys.stdout.write(f"{path}\n")
