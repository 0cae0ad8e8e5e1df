"""Nothing a user types or breaks gives a traceback: for every case, the exit code, one
line on stderr, no traceback, and a bounded time. Each case runs the real command line in a
subprocess (so a hang or a memory blow-up is caught by the timeout, not by the suite)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMEOUT = 60


def kernelnet(*args, cwd=None, env=None, stdin=None):
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=stdin,
    )
    done.seconds = time.time() - started
    return done


def assert_one_line(done, code: int, *fragments: str, within: float = 15.0):
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)
    assert done.seconds < within, done.seconds


def alias_bomb(levels: int = 9) -> str:
    lines = ["a0: [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, levels):
        previous = ", ".join(f"*a{i - 1}" for _ in range(9))
        lines.append(f"a{i}: &a{i} [{previous}]")
    lines[0] = "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"
    return "\n".join(["experiment: svm-primal", *lines]) + "\n"


CONFIGS = {
    "alias bomb": (alias_bomb(), "aliases (*a0) are not allowed"),
    "recursive alias": (
        "experiment: svm-primal\nsvm: &s {C: 5, self: *s}\n",
        "aliases (*s) are not allowed",
    ),
    "deep nesting": (
        "experiment: svm-primal\nsvm: " + "[" * 5000 + "]" * 5000 + "\n",
        "nested deeper than 32 levels",
    ),
    "400-digit number": ("experiment: svm-primal\nsvm:\n  C: " + "9" * 400 + "\n", "digits"),
    "huge float epochs": ("experiment: svm-primal\nsvm:\n  epochs: 1e300\n", "must be <="),
    "empty file": ("", "config must be a mapping"),
    "top-level list": ("- 1\n- 2\n", "config must be a mapping"),
    "top-level scalar": ("3\n", "config must be a mapping"),
    "python tag": (
        "experiment: svm-primal\nsvm: !!python/object/apply:os.system ['id']\n",
        "is not allowed in a config",
    ),
    "yes as boolean": ("experiment: svm-primal\nsvm:\n  C: yes\n", "use true/false or quote it"),
    "duplicate key": ("experiment: svm-primal\nseed: 1\nseed: 2\n", "lines 2 and 3"),
    "unknown key": (
        "experiment: svm-primal\nsvm:\n  lerning_rate: 1\n",
        "svm.lerning_rate: unknown key; did you mean 'learning_rate'?",
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_hostile_config_files(tmp_path, name):
    text, message = CONFIGS[name]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    done = kernelnet("run", path, "--runs-dir", tmp_path / "runs")
    assert_one_line(done, 2, message)
    assert not (tmp_path / "runs").exists()


def test_a_grid_above_the_cap_is_refused_before_expansion(tmp_path):
    values = ",".join(str(v) for v in range(1, 101))
    args = ["kernel-table", "--dry-run", "--runs-dir", tmp_path]
    sets = ["--set", f"svm.C={values}", "--set", f"kernel.gamma={values}",
            "--set", f"kernel.coef0={values}"]  # fmt: skip
    done = kernelnet(*args, *sets)  # 4 x 4 x 100^3 = 16 million cells
    assert_one_line(done, 2, "16,000,000 cells", "--max-cells", within=10)
    allowed = kernelnet(*args, "--set", "svm.C=1,2,3", "--max-cells", "48")
    assert allowed.returncode == 0 and "48 cell(s)" in allowed.stdout


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: None, "config file not found"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary"), "config file"),
    ],
)
def test_config_paths_that_are_not_config_files(tmp_path, make, message):
    path = tmp_path / "config.yaml"
    make(path)
    done = kernelnet("svm-primal", "--config", path, "--runs-dir", tmp_path / "runs")
    assert_one_line(done, 2, message, str(path))


@pytest.mark.parametrize(
    "construction, message",
    [
        (" + ".join(["k1"] * 3000), "characters"),
        (" + ".join(["k1"] * 150), "longer than 200 tokens"),
        ("poly(degree=1e400)", "degree"),
        ("(" * 30 + "k1" + ")" * 30, "nested deeper than 20 levels"),
        ('"poly(gamma=1e10, degree=50, coef0=1)"', "gamma must be finite and within"),
    ],
)
def test_hostile_kernel_expressions(tmp_path, construction, message):
    done = kernelnet(
        "kernel-check", "--runs-dir", tmp_path, "--set", f"check.construction={construction}"
    )
    assert_one_line(done, 2, message)


def test_an_overflowing_construction_fails_its_cell_in_one_line(tmp_path):
    done = kernelnet(
        "kernel-check", "--runs-dir", tmp_path, "--quiet", "--set", "check.trials=5",
        "--set", "check.construction=exp(exp(exp(exp(k1))))",
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    summary = json.loads((folder / "summary.json").read_text())
    assert "not finite" in summary["failed_cells"][0]["error"]


# The file system.
@pytest.mark.parametrize(
    "runs_dir, message",
    [
        ("afile", "cannot create a run folder there (Not a directory)"),
        ("afile/below", "cannot create a run folder there (Not a directory)"),
        ("/proc/kernelnet-runs", "cannot create a run folder there"),
        ("", "--runs-dir must not be empty"),
    ],
)
def test_runs_dirs_that_cannot_hold_runs(tmp_path, runs_dir, message):
    (tmp_path / "afile").write_text("not a folder")
    done = kernelnet("svm-primal", "--epochs", "1", "--runs-dir", runs_dir, cwd=tmp_path)
    assert_one_line(done, 2, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_latest_that_is_a_real_folder_is_reported_not_fatal(tmp_path):
    (tmp_path / "latest").mkdir()
    done = kernelnet("svm-primal", "--epochs", "1", "--runs-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "is not a symlink; left as it is" in done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert json.loads((folder / "run.json").read_text())["status"] == "complete"


def _full_disk_after(monkeypatch, predicate):
    import errno

    import kernelnet.runs as runs

    real = runs.write_atomic

    def write_atomic(path, write, root=None):
        if predicate(Path(path)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, write, root)

    monkeypatch.setattr(runs, "write_atomic", write_atomic)


def test_a_full_disk_at_start_leaves_no_half_made_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from kernelnet.cli import app

    _full_disk_after(monkeypatch, lambda p: p.name == "run.json")
    result = CliRunner().invoke(app, ["svm-primal", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "svm-primal").iterdir()) == []  # nothing half there


def test_a_full_disk_mid_run_marks_the_run_failed_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from kernelnet.cli import app

    _full_disk_after(monkeypatch, lambda p: p.parent.name == "epochs=3")
    result = CliRunner().invoke(app, ["svm-primal", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2, result.stderr
    assert "cannot write the run folder (No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    (folder,) = (tmp_path / "svm-primal").iterdir()
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert (folder / "cells" / "epochs=1" / "result.json").is_file()  # kept


# Damaged run folders, and naming runs.
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    folders = []
    for _ in range(2):
        done = kernelnet("svm-primal", "--epochs", "1", "--runs-dir", runs, "--quiet")
        assert done.returncode == 0, done.stderr
        folders.append(Path(done.stdout.strip().splitlines()[-1]))
    return runs, folders


def _copy_run(source: Path, runs: Path, name: str) -> Path:
    import shutil

    target = runs / "svm-primal" / name
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda f: (f / "run.json").write_bytes(b'{"status": "\xff"}'), "unreadable"),
        (lambda f: (f / "run.json").write_text("[1]"), "expected a JSON dict"),
        (lambda f: (f / "run.json").write_text("{not json"), "unreadable"),
        (lambda f: (f / "run.json").unlink(), "missing"),
    ],
)
def test_runs_list_skips_a_damaged_folder_with_one_warning(two_runs, tmp_path, damage, why):
    runs, folders = two_runs
    local = tmp_path / "runs"
    for folder in folders:
        _copy_run(folder, local, folder.name)
    broken = _copy_run(folders[0], local, "19990101-000000-dead")
    damage(broken)
    done = kernelnet("runs", "list", "--runs-dir", local, "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert sorted(Path(r["path"]).name for r in listed) == sorted(f.name for f in folders)
    assert_one_line(done, 0, "warning: skipped", broken.name, why)


def test_runs_list_tolerates_odd_types_in_a_manifest(two_runs, tmp_path):
    runs, folders = two_runs
    odd = _copy_run(folders[0], tmp_path / "runs", "19990101-000000-0dd0")
    manifest = json.loads((odd / "run.json").read_text())
    manifest.update(seconds="slow", started=5, experiment=["x"])
    (odd / "run.json").write_text(json.dumps(manifest))
    done = kernelnet("runs", "list", "--runs-dir", tmp_path / "runs")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "damage, command, message",
    [
        (lambda f: (f / "run.json").write_text("{not json"), "show", "unreadable"),
        (lambda f: (f / "metrics.csv").unlink(), "compare", "metrics.csv: missing"),
        (lambda f: (f / "metrics.csv").write_bytes(b"\xff\xfe\x00bin"), "compare", "metrics.csv"),
        (
            lambda f: (f / "config.yaml").write_text("svm: !!python/object/apply:os.system [id]\n"),
            "compare",
            "is not allowed in a config",
        ),
        (lambda f: (f / "metrics.csv").unlink(), "rerun", "metrics.csv: missing"),
    ],
)
def test_damaged_folders_are_refused_in_one_line(two_runs, tmp_path, damage, command, message):
    runs, folders = two_runs
    local = tmp_path / "runs"
    good = _copy_run(folders[1], local, folders[1].name)
    broken = _copy_run(folders[0], local, "19990101-000000-bad0")
    damage(broken)
    args = {"show": ["runs", "show", broken], "compare": ["runs", "compare", broken, good],
            "rerun": ["rerun", broken]}[command]  # fmt: skip
    done = kernelnet(*args, "--runs-dir", local)
    assert_one_line(done, 2, message)
    assert len(list((local / "svm-primal").iterdir())) == 2  # rerun ran nothing


def test_a_run_is_named_by_path_latest_id_or_unique_prefix(two_runs):
    runs, (first, second) = two_runs
    for name in (str(first), first.name, first.name[:-2]):
        done = kernelnet("runs", "show", name, "--runs-dir", runs)
        assert done.returncode == 0 and first.name in done.stdout, done.stderr
    latest = kernelnet("runs", "show", "latest", "--runs-dir", runs)
    assert latest.returncode == 0 and second.name in latest.stdout
    common = os.path.commonprefix([first.name, second.name])
    ambiguous = kernelnet("runs", "show", common, "--runs-dir", runs)
    assert_one_line(ambiguous, 2, "matches 2 runs")
    missing = kernelnet("runs", "show", "20000101", "--runs-dir", runs)
    assert_one_line(missing, 2, "no such run folder")


# Text shown as written.
def test_bracketed_text_survives_in_help():
    help_text = kernelnet("kernel-check", "--help").stdout
    assert "--set 'check.construction=[k1 - 0.5 * k1]'" in help_text
    assert "kernelnet[dask]" in kernelnet("svm-primal", "--help").stdout


def test_bracketed_text_survives_in_error_lines(tmp_path):
    done = kernelnet("svm-primal", "--runs-dir", tmp_path, "--set", "svm.C=[1, x]")
    assert_one_line(done, 2, "svm.C[1]: must be a number (got 'x')")
    done = kernelnet("kernel-check", "--runs-dir", tmp_path,
                     "--set", "check.construction=k1 + [bold]k2[/bold]")  # fmt: skip
    assert_one_line(done, 2, "[bold]")


# The network: a loopback server that misbehaves in one way per test.
class Misbehaving:
    def __init__(self, mode: str, body: bytes = b""):
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                self.send_response(200)
                if outer.mode == "drip":
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    for byte in outer.body[:1000]:
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.5)
                elif outer.mode == "early close":
                    self.send_header("Content-Length", str(len(outer.body) * 2))
                    self.end_headers()
                    self.wfile.write(outer.body)
                else:
                    self.send_header("Content-Length", str(len(outer.body)))
                    self.end_headers()
                    self.wfile.write(outer.body)

        self.mode, self.body = mode, body
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _zeros_gzip(size: int) -> bytes:
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block, out = bytes(2**20), []
    for _ in range(size // 2**20):
        out.append(compressor.compress(block))
    out.append(compressor.flush())
    return b"".join(out)


@pytest.mark.parametrize(
    "mode, body, message",
    [
        ("drip", "real", "not downloaded within 1 s"),
        ("bomb", "zeros", "decompresses to more than"),
        ("early close", "real", "closed the connection early"),
    ],
)
def test_a_fetch_cannot_hang_or_blow_up(tmp_path, mode, body, message):
    from kernelnet.data.registry import data_root

    data = tmp_path / "data" / "mnist"
    data.mkdir(parents=True)
    good = data / "train-images-idx3-ubyte.gz"
    good.write_bytes((data_root() / "mnist" / good.name).read_bytes())
    real = (data_root() / "mnist" / "train-images-idx3-ubyte.gz").read_bytes()[:5000]
    server = Misbehaving(mode, _zeros_gzip(200 * 2**20) if body == "zeros" else real)
    try:
        done = kernelnet("data", "fetch", "mnist", "--dest", tmp_path / "data", "--url",
                         server.url, "--force", "--deadline", "1")  # fmt: skip
    finally:
        server.close()
    assert_one_line(done, 2, message, within=30)
    assert good.read_bytes() == (data_root() / "mnist" / good.name).read_bytes()  # untouched
    assert sorted(p.name for p in data.iterdir()) == [good.name]
