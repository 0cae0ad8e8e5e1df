"""Connecting to a Dask scheduler: whatever answers at the address (nothing, an HTTP server,
a silent port, garbage, a huge length prefix, a Dask worker, an imitation that stops
answering) or whatever the scheduler file is, the command line ends within seconds with one
line and exit 2, prints no traceback (no ``Client.__del__`` at exit) and leaves nothing
running. Every listener is opened on 127.0.0.1 by the test itself."""

import contextlib
import http.server
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

import msgpack  # noqa: E402  (a dependency of distributed)

from tests.test_dask_cluster import cluster  # noqa: E402, F401

TIMEOUT = 60  # the subprocess's; it is what proves that nothing hangs
WITHIN = 30.0  # generous for a loaded CI machine: the connection deadline is 5 s


def io_loops() -> set:
    """Dask's client loop threads alive now."""
    return {t for t in threading.enumerate() if t.name == "IO loop"}


def run_kernelnet(*args, env=None):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
    )
    done.seconds = time.monotonic() - started
    return done


def assert_refused(done, *fragments: str) -> None:
    """Exit 2, one line on stderr holding every fragment, nothing after it, in time."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, done.stderr)
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "__del__" not in output, output
    assert done.seconds < WITHIN, done.seconds


def svm_primal(tmp_path: Path, *options, env=None):
    """svm-primal: its connection is made before any data is read."""
    runs = tmp_path / "runs"
    done = run_kernelnet("svm-primal", "-q", "--runs-dir", runs, *options, env=env)
    assert not runs.exists(), "a run folder was made for a run that cannot start"
    return done


# --- listeners -------------------------------------------------------------------------


class Listener:
    """A TCP listener on 127.0.0.1 serving each connection with ``serve(conn, stop)`` in a
    thread of its own; closed, with its connections, when the test ends."""

    def __init__(self, serve):
        self.serve = serve
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            self.serve(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.close()


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Keep the connection open, reading and ignoring what arrives, until the test ends."""
    conn.settimeout(0.1)
    while not stop.is_set():
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def silent(conn, stop):
    hold(conn, stop)


def closes_at_once(conn, stop):
    conn.close()


def answers_400(conn, stop):
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def random_bytes(conn, stop):
    conn.sendall(random.Random(18).randbytes(1 << 16))
    hold(conn, stop)


def huge_length_prefix(conn, stop):
    conn.sendall(struct.pack("=Q", 2**62) + b"\0" * 64)
    hold(conn, stop)


def trickles(conn, stop):
    """A plausible length, then one byte every 0.2 s: each read is quick, the whole is not."""
    conn.sendall(struct.pack("=Q", 1000))
    while not stop.wait(0.2):
        conn.sendall(b"\0")


def frame(message) -> bytes:
    """One message in Dask's framing (see kernelnet.dask_connect._Wire)."""
    payload = msgpack.packb(message, use_bin_type=True)
    body = struct.pack("=QQ", 1, len(payload)) + payload
    return struct.pack("=Q", len(body)) + body


HANDSHAKE = {"compression": None, "python": [3, 11, 0], "pickle-protocol": 5}


def handshake_then_silent(conn, stop):
    conn.sendall(frame(HANDSHAKE))
    hold(conn, stop)


def handshake_then_many_frames(conn, stop):
    conn.sendall(struct.pack("=QQ", 64, 2**40) + b"\0" * 56)
    hold(conn, stop)


def read_message(conn) -> dict | None:
    """A message the client sent (trusted: the client is kernelnet's own Dask client)."""
    data = b""
    while len(data) < 8:
        chunk = conn.recv(8 - len(data))
        if not chunk:
            return None
        data += chunk
    (length,) = struct.unpack("=Q", data)
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    (count,) = struct.unpack_from("=Q", body)
    sizes = struct.unpack_from(f"={count}Q", body, 8)
    start = 8 * (count + 1)
    return msgpack.unpackb(body[start : start + sizes[0]], raw=False, strict_map_key=False)


def imitation(conn, stop):
    """Answers like a scheduler (handshake, identity) but never lets a client register:
    the probe passes, the Client's own start then times out and must be closed."""
    conn.sendall(frame(HANDSHAKE))
    conn.settimeout(None)
    while (message := read_message(conn)) is not None:
        if message.get("op") == "identity":
            conn.sendall(frame({"type": "Scheduler", "id": "imitation", "workers": {}}))
        elif message.get("op") == "register-client":
            hold(conn, stop)
            return


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_server():
    """A real HTTP server (http.server): it waits for a request line, so it stays silent."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def listen():
    """listen(serve) -> a Listener, closed when the test ends."""
    opened = []

    def make(serve) -> Listener:
        opened.append(Listener(serve))
        return opened[-1]

    yield make
    for listener in opened:
        listener.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- --scheduler -----------------------------------------------------------------------

SERVERS = {
    "silent": (silent, "no answer from a Dask scheduler within 5 s"),
    "closes at once": (closes_at_once, "closed the connection"),
    "answers HTTP 400": (answers_400, "does not speak Dask's protocol (it sent b'HTTP/1.1'"),
    "random bytes": (random_bytes, "does not speak Dask's protocol"),
    "huge length prefix": (huge_length_prefix, "does not speak Dask's protocol"),
    "trickles bytes": (trickles, "within 5 s"),
    "handshake, then silent": (handshake_then_silent, "within 5 s"),
    "2**40 frames": (handshake_then_many_frames, "does not speak Dask's protocol (bad framing)"),
    "imitation that stops answering": (imitation, "stopped answering"),
}


@pytest.mark.parametrize("name", list(SERVERS))
def test_a_server_that_is_not_a_scheduler_is_refused_in_one_line(tmp_path, listen, name):
    serve, why = SERVERS[name]
    address = listen(serve).address
    done = svm_primal(tmp_path, "--scheduler", address)
    assert_refused(done, f"cannot connect to the Dask scheduler at {address}: ", why)
    assert "(is `dask scheduler` running there?)" in done.stderr


def test_an_http_server_is_refused_in_one_line(tmp_path):
    with http_server() as address:
        done = svm_primal(tmp_path, "--scheduler", address)
    assert_refused(done, f"cannot connect to the Dask scheduler at {address}: ", "within 5 s")


def test_nothing_listening_is_said_at_once(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    done = svm_primal(tmp_path, "--scheduler", address)
    assert_refused(done, address, "connection refused")


@pytest.mark.parametrize(
    "address, message",
    [
        ("inproc://127.0.0.1/4242/1", "not inproc://"),
        ("ucx://127.0.0.1:4242", "not ucx://"),
        ("ws://127.0.0.1:4242", "not ws://"),
        ("tcp://127.0.0.1", "not a scheduler address"),
        ("tcp://127.0.0.1:99999", "not a scheduler address"),
        ("tcp://127.0.0.1:4242\n/x", "not a scheduler address"),
    ],
)
def test_an_unsupported_address_says_what_is_supported(tmp_path, address, message):
    from kernelnet.dask_connect import _ucx_installed

    if address.startswith("ucx") and _ucx_installed():
        pytest.skip("ucx is installed here, so ucx:// is supported")
    done = svm_primal(tmp_path, "--scheduler", address)
    assert_refused(done, message, "tcp://HOST:PORT, or tls://HOST:PORT")


def test_tls_without_certificates_is_one_line(tmp_path, listen):
    address = f"tls://127.0.0.1:{listen(silent).port}"
    done = svm_primal(tmp_path, "--scheduler", address)
    assert_refused(done, address, "needs certificates", "DASK_DISTRIBUTED__COMM__TLS__CA_FILE")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A self-signed certificate and its key, as Dask's TLS configuration in variables."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=kernelnet-test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return (
        cert,
        key,
        {
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(cert),
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(cert),
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key),
        },
    )


@pytest.mark.parametrize(
    "serve, why",
    [
        (silent, "within 5 s"),
        (answers_400, "TLS handshake failed (WRONG_VERSION_NUMBER)"),
        (closes_at_once, "closed the connection in the TLS handshake"),
    ],
)
def test_tls_to_a_server_that_is_not_a_tls_scheduler_is_one_line(
    tmp_path, listen, certificates, serve, why
):
    address = f"tls://127.0.0.1:{listen(serve).port}"
    done = svm_primal(tmp_path, "--scheduler", address, env=certificates[2])
    assert_refused(done, f"cannot connect to the Dask scheduler at {address}: ", why)


def test_tls_with_a_missing_key_file_is_one_line(tmp_path, certificates):
    broken = {**certificates[2], "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": "/nonexistent.pem"}
    done = svm_primal(tmp_path, "--scheduler", "tls://127.0.0.1:8786", env=broken)
    assert_refused(done, "tls://127.0.0.1:8786", "cannot be used (No such file or directory)")


def test_a_tls_scheduler_is_reached_through_the_probe(tmp_path, certificates):
    """The probe speaks Dask's protocol over TLS too: a real tls:// scheduler passes it."""
    loops_before = io_loops()
    import dask

    from kernelnet.executors import DaskExecutor

    cert, key, _ = certificates
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--protocol", "tls",
         "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--tls-ca-file", cert,
         "--tls-cert", cert, "--tls-key", key, "--scheduler-file", scheduler_file],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while not scheduler_file.is_file() and time.time() < deadline:
            time.sleep(0.1)
        tls = {
            "distributed.comm.tls.ca-file": str(cert),
            "distributed.comm.tls.client.cert": str(cert),
            "distributed.comm.tls.client.key": str(key),
        }
        with dask.config.set(tls):
            executor = DaskExecutor(scheduler_file=str(scheduler_file))
            assert executor.client.scheduler.address.startswith("tls://127.0.0.1:")
            executor.close()
        assert executor.client is None
        assert io_loops() <= loops_before  # none of its own left (other tests may hold theirs)
    finally:
        scheduler.terminate()
        scheduler.wait(20)


# --- --scheduler-file ------------------------------------------------------------------


def _not_json(path: Path) -> None:
    path.write_text("address: tcp://127.0.0.1:8786\n")


def _not_utf8(path: Path) -> None:
    path.write_bytes(b'{"address": "\xff\xfe"}')


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _huge(path: Path) -> None:
    path.write_text('{"address": "tcp://127.0.0.1:8786", "pad": "' + "x" * (2 << 20) + '"}')


def _deep(path: Path) -> None:
    path.write_text("[" * 200_000 + "]" * 200_000)


def _no_address(path: Path) -> None:
    path.write_text(json.dumps({"type": "Scheduler", "id": "Scheduler-1"}))


def _a_list(path: Path) -> None:
    path.write_text(json.dumps(["tcp://127.0.0.1:8786"]))


def _address_a_number(path: Path) -> None:
    path.write_text(json.dumps({"address": 8786}))


def _address_inproc(path: Path) -> None:
    path.write_text(json.dumps({"address": "inproc://127.0.0.1/1/1"}))


def _a_directory(path: Path) -> None:
    path.mkdir()


SCHEDULER_FILES = {
    "not JSON": (_not_json, "not a scheduler file (Expecting value"),
    "not UTF-8": (_not_utf8, "not a scheduler file ('utf-8' codec can't decode"),
    "a FIFO": (_fifo, "a FIFO, not a regular file"),
    "a link to /dev/zero": (_dev_zero, "a device, not a regular file"),
    "huge": (_huge, "over the 1,048,576-byte bound"),
    "nested 200,000 deep": (_deep, "nested 200,000 deep"),
    "no address": (_no_address, 'no "address" in it'),
    "a list": (_a_list, 'no "address" in it'),
    "address a number": (_address_a_number, "not a scheduler address"),
    "address inproc://": (_address_inproc, "not inproc://"),
    "a directory": (_a_directory, "a directory, not a regular file"),
}


@pytest.mark.parametrize("name", list(SCHEDULER_FILES))
def test_a_bad_scheduler_file_is_refused_in_one_line(tmp_path, name):
    make, why = SCHEDULER_FILES[name]
    path = tmp_path / "scheduler.json"
    make(path)
    done = svm_primal(tmp_path, "--scheduler-file", path)
    assert_refused(done, f"--scheduler-file {path}", why)


def test_a_scheduler_file_naming_a_silent_port_is_refused_in_one_line(tmp_path, listen):
    address = listen(silent).address
    path = tmp_path / "scheduler.json"
    path.write_text(json.dumps({"type": "Scheduler", "address": address}))
    done = svm_primal(tmp_path, "--scheduler-file", path)
    assert_refused(
        done, f"cannot connect to the Dask scheduler at {address} (from {path}): ", "within 5 s"
    )


# --- the environment variable and the Python API ---------------------------------------


def test_the_environment_variable_is_named_when_its_address_is_bad(tmp_path):
    done = svm_primal(tmp_path, env={"DASK_SCHEDULER_ADDRESS": "inproc://x"})
    assert_refused(done, "DASK_SCHEDULER_ADDRESS 'inproc://x'", "not inproc://")


def test_the_api_raises_config_error_and_leaves_nothing_running(tmp_path, listen, monkeypatch):
    loops_before = io_loops()
    import kernelnet
    from kernelnet.errors import ConfigError

    for serve in (answers_400, imitation):  # refused by the probe; by the Client's start
        address = listen(serve).address
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
        started = time.monotonic()
        with pytest.raises(ConfigError, match=f"cannot connect to the Dask scheduler at {address}"):
            kernelnet.run("svm-primal", runs_dir=tmp_path / "runs")
        assert time.monotonic() - started < WITHIN
        assert io_loops() <= loops_before  # none of its own left (other tests may hold theirs)
    assert not (tmp_path / "runs").exists()


def test_the_api_in_a_fresh_interpreter_prints_nothing_at_exit(tmp_path, listen):
    """A notebook's path: the error is an exception to catch, and nothing is printed after
    it, at interpreter exit or ever."""
    code = (
        "import kernelnet, sys\n"
        "try:\n"
        f"    kernelnet.run('svm-primal', runs_dir={str(tmp_path / 'runs')!r})\n"
        "except kernelnet.errors.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    for serve in (answers_400, imitation):
        address = listen(serve).address
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "DASK_SCHEDULER_ADDRESS": address},
        )
        assert done.returncode == 0, done.stderr
        assert f"cannot connect to the Dask scheduler at {address}" in done.stdout
        assert done.stderr == ""


# --- a real cluster --------------------------------------------------------------------


def test_a_worker_address_is_not_taken_for_the_scheduler(cluster, tmp_path):  # noqa: F811
    from distributed import Client

    with Client(scheduler_file=str(cluster), timeout="30s") as client:
        worker = next(iter(client.scheduler_info()["workers"]))
    done = svm_primal(tmp_path, "--scheduler", worker)
    assert_refused(done, worker, "answers there, not a scheduler (a worker's or a nanny's")


def test_a_real_cluster_runs_and_the_connection_is_closed_after(
    cluster,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    loops_before = io_loops()
    import kernelnet

    sweep = ["gradcheck", "-q", "--set", "check.name=affine,relu"]
    done = run_kernelnet(*sweep, "--runs-dir", tmp_path / "cli", "--scheduler-file", cluster)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing at exit either
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", json.loads(cluster.read_text())["address"])
    run = kernelnet.run(
        "gradcheck", overrides={"check.name": ["affine", "relu"]}, runs_dir=tmp_path / "api"
    )
    assert "2 to run, 2 worker(s)" in (run.path / "log.txt").read_text()
    # the executor made its client, so it closed it when the run ended
    assert io_loops() <= loops_before  # none of its own left (other tests may hold theirs)


def test_a_name_lookup_that_never_answers_is_cut_at_the_deadline(monkeypatch):
    """getaddrinfo has no timeout of its own; the connection's deadline still holds."""
    import kernelnet.dask_connect as dask_connect
    import kernelnet.executors as executors
    from kernelnet.errors import ConfigError

    released = threading.Event()

    def never_answers(*args, **kwargs):
        released.wait(60)
        raise socket.gaierror("released")

    monkeypatch.setattr(dask_connect.socket, "getaddrinfo", never_answers)
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError, match="looking up 'scheduler.example' took over 5 s"):
            executors.DaskExecutor("tcp://scheduler.example:8786")
    finally:
        released.set()
    assert time.monotonic() - started < WITHIN


# --- files a cell sends back from a worker ---------------------------------------------


def _leaves(kind: str):
    """A cell (as a Dask worker runs it) that writes a result and leaves ``kind`` beside it."""
    from kernelnet.experiments.base import CellOutput

    def run_cell(config, ctx):
        ctx.files.write_json("answer.json", {"ok": True})
        other = ctx.files.path("other")
        if kind == "a FIFO":
            os.mkfifo(other)
        elif kind == "a link out":
            other.symlink_to("/etc/hostname")
        return CellOutput([{"mode": config.cell.mode}])

    return run_cell


@pytest.mark.parametrize(
    "kind, why", [("nothing", ""), ("a FIFO", "a FIFO"), ("a link out", "a link out of")]
)
def test_files_a_cell_leaves_on_a_worker_are_read_bounded(kind, why):
    from kernelnet.config import expand, resolve
    from kernelnet.executors import _dask_run_cell
    from kernelnet.experiments.base import Experiment
    from tests.experiments import crashing

    experiment = Experiment("leaves", crashing.CrashingConfig, _leaves(kind), crashing.report)
    resolved = resolve(crashing.CrashingConfig, {"cell": {"mode": "ok"}}, {})
    (cell,) = expand(crashing.CrashingConfig, resolved)
    result, files = _dask_run_cell(experiment, cell, 1)  # a FIFO would hang a plain read
    if not why:
        assert result.status == "complete"
        assert json.loads(files[f"cells/{cell.id}/answer.json"]) == {"ok": True}
    else:
        assert result.status == "failed" and files == {}
        assert "cannot be sent back from the worker" in result.error and why in result.error
