"""Connecting to a Dask scheduler: one deadline for all of it, bounded reads, and a clean
close on every failure path.

A raw probe speaks just enough of Dask's wire protocol (its handshake, ``identity``, then
``close``) to know that a scheduler answers at the address, with every length read off
the wire bounded before anything is allocated; only then is a ``distributed.Client``
started, within what is left of the same deadline. A server that is not a scheduler (an
HTTP server, a silent port, a garbage sender, a worker) is one line, within seconds, and a
client that failed half way is closed so that nothing prints at interpreter exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import pickle
import re
import socket
import ssl
import struct
import sys
import threading
import time
from pathlib import Path

from kernelnet.errors import ConfigError
from kernelnet.safe_read import ReadRefused, read_json

CONNECT_SECONDS = 5.0  # all the waiting of a connection: the probe's, then the Client's
CLOSE_SECONDS = 5.0  # closing a client that is connected or half connected
SCHEDULER_FILE_BYTES = 2**20  # a scheduler file is about 1 KiB
SCHEDULER_FILE_DEPTH = 16
MESSAGE_BYTES = 2**16  # one message of the probe (a handshake is ~60 bytes, an identity ~300)
MESSAGE_FRAMES = 16
MAX_ADDRESS_CHARS = 300
SUPPORTED = "tcp://HOST:PORT, or tls://HOST:PORT with Dask's TLS configuration"
TLS_CONFIG = (
    "distributed.comm.tls.ca-file, distributed.comm.tls.client.cert and .key in Dask's "
    "config, or DASK_DISTRIBUTED__COMM__TLS__CA_FILE and the like"
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,15})://(.*)", re.DOTALL)
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253}):(\d{1,5})/?")


class _NoScheduler(Exception):
    """Why no scheduler was found at an address: a clause of the one line a user sees."""


@dataclasses.dataclass(frozen=True)
class SchedulerAddress:
    """A scheduler address as given (``text``, for messages) and its parts; ``host``
    without brackets."""

    text: str
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        """The address as Dask spells it (lower-case scheme, no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _ucx_installed() -> bool:
    """Whether ucx:// can work here: distributed's own ucx backend is a stub that says it
    was removed; the real one is the distributed-ucxx package."""
    return importlib.util.find_spec("distributed_ucxx") is not None


def parse_scheduler_address(text: object, source: str) -> SchedulerAddress:
    """A tcp://, tls:// (or, when its Dask backend is installed, ucx://) HOST:PORT address,
    or ConfigError naming ``source`` (the option, variable or file it came from)."""
    if not isinstance(text, str) or not text or len(text) > MAX_ADDRESS_CHARS:
        shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:57] + "..."
        raise ConfigError(f"{source} {shown}: not a scheduler address (expected {SUPPORTED})")
    scheme = _SCHEME.fullmatch(text)
    if scheme is None:
        raise ConfigError(f"{source} {text!r}: not a scheduler address (expected {SUPPORTED})")
    name = scheme[1].lower()
    if name not in ("tcp", "tls") and not (name == "ucx" and _ucx_installed()):
        raise ConfigError(
            f"{source} {text!r}: kernelnet connects to a scheduler at {SUPPORTED}, not "
            f"{scheme[1]}://"
        )
    host_port = _HOST_PORT.fullmatch(scheme[2])
    if host_port is None or not 0 < int(host_port[2]) < 2**16:
        raise ConfigError(f"{source} {text!r}: not a scheduler address (expected {SUPPORTED})")
    return SchedulerAddress(text, name, host_port[1].strip("[]"), int(host_port[2]))


def read_scheduler_file(path: str | Path) -> str:
    """The "address" a ``dask scheduler --scheduler-file`` wrote, read through the bounded
    reader (a FIFO, a device, a huge or deeply nested file is refused, not read)."""
    hint = "give the file `dask scheduler --scheduler-file` writes"
    try:
        info = read_json(path, SCHEDULER_FILE_BYTES, max_depth=SCHEDULER_FILE_DEPTH)
    except FileNotFoundError:
        raise ConfigError(f"--scheduler-file {path}: no such file") from None
    except ReadRefused as exc:
        raise ConfigError(f"--scheduler-file {exc}; {hint}") from None
    except OSError as exc:
        raise ConfigError(
            f"--scheduler-file {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    except ValueError as exc:  # not UTF-8, not JSON, too deep
        why = str(exc).removeprefix(f"{path}: ")
        raise ConfigError(
            f"--scheduler-file {path}: not a scheduler file ({why}); {hint}"
        ) from None
    if not isinstance(info, dict) or "address" not in info:
        raise ConfigError(f'--scheduler-file {path}: no "address" in it; {hint}')
    return info["address"]


def _left(deadline: float) -> float:
    """Seconds to the deadline; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class _Wire:
    """Dask's framing over a blocking socket, every wait cut at ``deadline`` and every
    length read off the wire checked before anything of that length is allocated.

    A message is an 8-byte length L, then L bytes: a frame count n, n frame lengths (8
    bytes each, native order as Dask writes them) and the frames; the first frame is the
    msgpack of the message (the probe's messages have no other)."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline = sock, deadline

    def _exactly(self, count: int, waiting_for: str) -> bytes:
        data = bytearray()
        while len(data) < count:
            self.sock.settimeout(_left(self.deadline))
            try:
                chunk = self.sock.recv(min(count - len(data), MESSAGE_BYTES))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise _NoScheduler(f"the server closed the connection before {waiting_for}")
            data += chunk
        return bytes(data)

    def send(self, message: dict, waiting_for: str) -> None:
        import msgpack

        frame = msgpack.packb(message, use_bin_type=True)
        body = struct.pack(f"=QQ{len(frame)}s", 1, len(frame), frame)
        self.sock.settimeout(_left(self.deadline))
        try:
            self.sock.sendall(struct.pack("=Q", len(body)) + body)
        except (BrokenPipeError, ConnectionResetError):
            raise _NoScheduler(f"the server closed the connection before {waiting_for}") from None

    def receive(self, waiting_for: str) -> object:
        import msgpack

        prefix = self._exactly(8, waiting_for)
        (length,) = struct.unpack("=Q", prefix)
        if not 16 <= length <= MESSAGE_BYTES:
            raise _NoScheduler(
                f"the server there does not speak Dask's protocol (it sent {prefix!r})"
            )
        body = self._exactly(length, waiting_for)
        (count,) = struct.unpack_from("=Q", body)
        if not 1 <= count <= MESSAGE_FRAMES or 8 * (count + 1) > length:
            raise _NoScheduler("the server there does not speak Dask's protocol (bad framing)")
        sizes = struct.unpack_from(f"={count}Q", body, 8)
        if 8 * (count + 1) + sum(sizes) != length:
            raise _NoScheduler("the server there does not speak Dask's protocol (bad framing)")
        start = 8 * (count + 1)
        try:
            return msgpack.unpackb(body[start : start + sizes[0]], raw=False, strict_map_key=False)
        except Exception:  # msgpack's errors for bytes that are not msgpack
            raise _NoScheduler(
                "the server there does not speak Dask's protocol (not msgpack)"
            ) from None


def _handshake() -> dict:
    """What a Dask comm tells its peer first (Comm.handshake_info): no compression on the
    probe's messages, this Python and its pickle protocol."""
    return {
        "compression": None,
        "python": tuple(sys.version_info)[:3],
        "pickle-protocol": pickle.HIGHEST_PROTOCOL,
    }


def _resolve(address: SchedulerAddress, deadline: float) -> list[tuple]:
    """getaddrinfo for the address, cut at the deadline: a name lookup has no timeout of its
    own (a resolver that does not answer holds it for tens of seconds), so it runs in a
    daemon thread that is left behind, harmlessly, if it is late."""
    found: list = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, name="kernelnet scheduler lookup", daemon=True)
    thread.start()
    thread.join(_left(deadline))
    if not found:
        raise _NoScheduler(f"looking up {address.host!r} took over {CONNECT_SECONDS:g} s")
    if isinstance(found[0], OSError):
        raise _NoScheduler(f"no such host {address.host!r}")
    return found[0]


def _connect(address: SchedulerAddress, deadline: float) -> socket.socket:
    """A TCP connection to the first of the address's hosts that accepts, by the deadline."""
    refused = None
    for family, kind, protocol, _, where in _resolve(address, deadline):
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(where)
        except ConnectionRefusedError as exc:
            sock.close()
            refused = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise _NoScheduler("connection refused" if refused else "no address to connect to")


def _probe(address: SchedulerAddress, deadline: float, tls: ssl.SSLContext | None) -> None:
    """Return if a Dask scheduler answers at ``address`` before ``deadline``; else raise
    _NoScheduler saying what answered instead.

    The exchange is how any Dask connection starts, so a scheduler sees nothing unusual:
    each side sends its handshake without waiting for the other's (ours first also makes a
    server that answers anything, an HTTP server's 400, answer at once), then ``identity``
    asks what the peer is (a scheduler, a worker, a nanny), and ``close`` ends the comm as
    Dask's own connection pool does. Only the first frame of a message is decoded, and no
    message may be longer than MESSAGE_BYTES."""
    sock = _connect(address, deadline)
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.closing(sock))
        if tls is not None:
            sock.settimeout(_left(deadline))
            try:
                sock = stack.enter_context(tls.wrap_socket(sock, server_hostname=address.host))
            except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
                raise _NoScheduler(
                    "the server closed the connection in the TLS handshake"
                ) from None
            except ssl.SSLError as exc:
                raise _NoScheduler(f"TLS handshake failed ({exc.reason or exc})") from None
        wire = _Wire(sock, deadline)
        wire.send(_handshake(), "a Dask handshake")
        theirs = wire.receive("a Dask handshake")
        if not isinstance(theirs, dict) or "pickle-protocol" not in theirs:
            raise _NoScheduler("the server there does not speak Dask's protocol (no handshake)")
        wire.send({"op": "identity", "n_workers": 0, "reply": True}, "answering what it is")
        identity = wire.receive("answering what it is")
        kind = identity.get("type") if isinstance(identity, dict) else None
        if kind != "Scheduler":
            # A worker or a nanny refuses the scheduler's form of the question (n_workers)
            if isinstance(kind, str) and kind.isidentifier() and len(kind) <= 30:
                raise _NoScheduler(f"a Dask {kind} answers there, not a scheduler")
            raise _NoScheduler(
                "a Dask server answers there, not a scheduler (a worker's or a nanny's address?)"
            )
        wire.send({"op": "close", "reply": False}, "the end of the probe")


def _tls_context(address: SchedulerAddress, source: str) -> ssl.SSLContext | None:
    """The client TLS context of Dask's configuration for a tls:// address (None for tcp)."""
    if address.scheme != "tls":
        return None
    from distributed.security import Security

    try:
        context = Security().get_connection_args("client")["ssl_context"]
    except (OSError, ValueError) as exc:  # a certificate file missing or unreadable
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"{source} {address.text}: the certificate or key that Dask's TLS configuration "
            f"names cannot be used ({why}); check {TLS_CONFIG}"
        ) from None
    if context is None:
        raise ConfigError(
            f"{source} {address.text}: a tls:// scheduler needs certificates, and none are "
            f"configured (set {TLS_CONFIG})"
        )
    return context


def close_client(client) -> None:
    """Close a client this process made, connected or half connected, and stop its event
    loop's thread. Left open, a client closes itself from ``__del__`` at interpreter exit,
    when its loop may be gone, and prints a traceback there."""
    with contextlib.suppress(Exception):
        client.close(timeout=CLOSE_SECONDS)
    # close() does nothing for a client whose failed start already closed its connections,
    # and leaves the loop thread running then; and a close that failed must not be retried
    # by __del__ at exit.
    runner = getattr(client, "_loop_runner", None)
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.stop()
    with contextlib.suppress(Exception):
        client.status = "closed"


def connect_client(address: SchedulerAddress, where: str, source: str):
    """A distributed.Client connected to the scheduler at ``address`` within
    CONNECT_SECONDS in all, or ConfigError: "cannot connect to the Dask scheduler at
    ``where``: why (is `dask scheduler` running there?)". Nothing is left running on
    failure (no client, no loop thread)."""

    def refuse(why: str) -> ConfigError:
        return ConfigError(
            f"cannot connect to the Dask scheduler at {where}: {why} "
            "(is `dask scheduler` running there?)"
        )

    tls = _tls_context(address, source)
    started = time.monotonic()
    if address.scheme in ("tcp", "tls"):  # ucx has a wire of its own: its Client decides
        try:
            _probe(address, started + CONNECT_SECONDS, tls)
        except _NoScheduler as exc:
            raise refuse(str(exc)) from None
        except TimeoutError:
            raise refuse(f"no answer from a Dask scheduler within {CONNECT_SECONDS:g} s") from None
        except OSError as exc:
            raise refuse(exc.strerror or str(exc)) from None
    waited = time.monotonic() - started
    from distributed import Client  # a second or two, not counted as waiting

    # Made in two steps so that a client whose start fails is still ours to close.
    client = Client.__new__(Client)
    try:
        client.__init__(
            address=address.url,
            set_as_default=False,
            timeout=max(1.0, CONNECT_SECONDS - waited),
        )
    except Exception as exc:
        close_client(client)
        if isinstance(exc, TimeoutError):
            raise refuse(
                f"it stopped answering while the client connected (nothing within "
                f"{CONNECT_SECONDS:g} s)"
            ) from None
        raise refuse(f"{type(exc).__name__}: {exc}") from None
    except BaseException:  # Ctrl-C while connecting
        close_client(client)
        raise
    return client
