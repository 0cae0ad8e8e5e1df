"""How a command ends on a user's error: one line and an exit code (kept light: every
command enters it before anything heavy is imported)."""

import contextlib
from collections.abc import Iterator

import typer

from kernelnet.errors import KernelnetError

EXIT_INTERRUPTED = 130


def _say(label: str, style: str, message: str) -> None:
    from kernelnet.cli.render import say

    say(label, style, message)


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """kernelnet errors become one line on stderr and their exit code; Ctrl-C exits 130."""
    try:
        yield
    except KernelnetError as exc:
        if debug:
            raise
        _say("error:", "bold red", str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if debug:
            raise
        _say("interrupted:", "bold yellow", "the run folder is marked interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug: say so in one line; --debug shows the traceback
        if debug:
            raise
        _say(
            "internal error:",
            "bold red",
            f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
        )
        raise typer.Exit(1) from None
