import functools
import http.server
import shutil
import threading

import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.data.fetch import fetch_mnist
from kernelnet.data.mnist import load_mnist
from kernelnet.data.registry import data_root
from kernelnet.errors import DataError


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A loopback HTTP server serving a copy of the shipped MNIST files."""
    served = tmp_path / "served"
    shutil.copytree(data_root() / "mnist", served)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_downloads_verifies_and_loads(tmp_path, mirror):
    _, url = mirror
    written = fetch_mnist(tmp_path / "data", url)
    assert len(written) == 4
    assert load_mnist(tmp_path / "data").train_labels[:3].tolist() == [5, 0, 4]
    assert fetch_mnist(tmp_path / "data", url) == []  # already complete: nothing downloaded


def test_fetch_refuses_a_file_that_fails_its_pin(tmp_path, mirror):
    served, url = mirror
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: sha256"):
        fetch_mnist(tmp_path / "data", url)
    assert not (tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_fetch_offline_fails_clearly(tmp_path):
    with pytest.raises(DataError, match="cannot download http://127.0.0.1:9/.*are you offline"):
        fetch_mnist(tmp_path, "http://127.0.0.1:9", timeout=5)


def test_cli_fetch(tmp_path, mirror):
    _, url = mirror
    result = CliRunner().invoke(
        app, ["data", "fetch", "mnist", "--dest", str(tmp_path), "--url", url]
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 4
    offline = CliRunner().invoke(
        app,
        [
            "data",
            "fetch",
            "mnist",
            "--dest",
            str(tmp_path),
            "--url",
            "http://127.0.0.1:9",
            "--force",
        ],
    )
    assert offline.exit_code == 2 and "cannot download" in offline.stderr
