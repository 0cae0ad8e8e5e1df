"""How a command ends on a user's error: one line and an exit code (kept light: every
command enters it before anything heavy is imported)."""

import contextlib
import re
from collections.abc import Iterator

import typer

from kernelnet.errors import KernelnetError

EXIT_INTERRUPTED = 130

# Line breaks and other control characters in a message (a value quoted from a file, an
# exception's own text) are shown as escapes: an error is one line on stderr, always.
_BREAKS_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(message: str) -> str:
    return _BREAKS_LINE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), message)


def _say(label: str, style: str, message: str) -> None:
    from kernelnet.cli.render import say

    say(label, style, one_line(message))


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """kernelnet errors become one line on stderr and their exit code; Ctrl-C exits 130,
    saying which run folder it left and how to finish it (the runner's Interrupted carries
    that line), or just that the command stopped."""
    try:
        yield
    except KernelnetError as exc:
        if debug:
            raise
        _say("error:", "bold red", str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        if debug:
            raise
        _say("interrupted:", "bold yellow", getattr(exc, "message", None) or "stopped")
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


def run_app(app) -> int:
    """Run the Typer app as the ``kernelnet`` command: a usage error (a bad option value, a
    missing argument) is one line naming the command's --help, like every other error,
    instead of click's three-line usage block. Returns the exit code."""
    try:  # Typer 0.2x vendors click; older Typers use click itself
        from typer._click import exceptions as click_exceptions
    except ImportError:
        from click import exceptions as click_exceptions

    try:
        code = app(standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:  # bare `kernelnet`: the help it asks for
        exc.show()
        return exc.exit_code
    except click_exceptions.UsageError as exc:
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        _say("error:", "bold red", f"{exc.format_message()}{where}")
        return 2
    except click_exceptions.ClickException as exc:
        _say("error:", "bold red", exc.format_message())
        return exc.exit_code
    except typer.Abort:
        _say("interrupted:", "bold yellow", "stopped")
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else 0
