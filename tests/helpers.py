"""What the tests share: the command line as a real process with a timeout or in this
process (CliRunner), a call in a thread with a deadline (a hang fails the test instead of
hanging the suite), the one-line contract of a refusal, and a real headless browser."""

import os
import shutil
import subprocess
import sys
import threading

import pytest

TIMEOUT = 60


def kernelnet_cli(*args, env=None, timeout=TIMEOUT, cwd=None):
    """``kernelnet ARGS`` in a new interpreter, BLAS on one thread."""
    return subprocess.run(
        [sys.executable, "-m", "kernelnet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})},
    )


def one_line(done, code, *fragments):
    """Exit ``code`` with exactly one line on stderr holding every fragment, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)


def within_deadline(call, seconds=TIMEOUT):
    """``call()``'s result, or the exception it raised; fails the test if it has not
    returned within ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} did not return within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def invoke(*args):
    """``kernelnet ARGS`` in this process (typer's CliRunner)."""
    from typer.testing import CliRunner

    from kernelnet.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, code: int = 2) -> str:
    """A CliRunner result's one stderr line (exit ``code``, no traceback, no internal error)."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return lines[0]


# -- a real browser (headless Chromium; .ci/run installs Debian's) --
BROWSER = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason="no chromium found; .ci/run installs Debian's chromium, and this check needs a real "
    "browser",
)


def browser_flags(profile) -> list[str]:
    """Headless, a fresh profile, none of Chromium's own background connections."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]


def dump_dom(url: str, profile) -> str:
    """The DOM Chromium renders for ``url``."""
    done = subprocess.run(
        [BROWSER, *browser_flags(profile), "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
