"""``kernelnet init`` and ``kernelnet data fetch`` never write outside their folder (a symlink
at a target name is replaced, never written through) and end every bad input in one line,
exit 2 (issue 18): a name too long, a DIR or --dest that is a file, a folder that cannot be
written or fills up, a --url that is no URL. The network is a 127.0.0.1 server the test
opens."""

import errno
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from kernelnet.data.registry import data_root
from kernelnet.shipped import shipped
from tests.helpers import invoke, one_error_line


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file of the user's outside every folder kernelnet is given."""
    path = tmp_path / "outside.txt"
    path.write_text("the user's own file\n")
    return path


# kernelnet init
def test_init_force_replaces_a_symlink_at_a_target_and_never_writes_through_it(tmp_path, outside):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "mnist.yaml").symlink_to(outside)
    refused = one_error_line(invoke("init", folder))
    assert "1 config(s) already there (mnist.yaml" in refused
    result = invoke("init", folder, "--force")
    assert result.exit_code == 0, result.stderr
    assert outside.read_text() == "the user's own file\n"
    target = folder / "mnist.yaml"
    assert not target.is_symlink()
    assert target.read_bytes() == (shipped("configs") / "mnist.yaml").read_bytes()


def test_init_counts_a_dangling_symlink_as_a_clash_and_never_creates_its_target(tmp_path):
    folder, nowhere = tmp_path / "configs", tmp_path / "nowhere.yaml"
    folder.mkdir()
    (folder / "knn.yaml").symlink_to(nowhere)
    line = one_error_line(invoke("init", folder))
    assert "already there (knn.yaml" in line and "--force" in line
    assert not nowhere.exists() and not os.path.lexists(folder / "mnist.yaml")
    assert invoke("init", folder, "--force").exit_code == 0
    assert not nowhere.exists() and not (folder / "knn.yaml").is_symlink()


def test_init_makes_a_folder_that_does_not_exist_yet(tmp_path):
    folder = tmp_path / "a" / "b"
    result = invoke("init", folder)
    assert result.exit_code == 0, result.stderr
    written = result.stdout.strip().splitlines()
    assert written and all(Path(p).parent == folder and Path(p).is_file() for p in written)


def test_init_with_a_name_too_long_is_one_line(tmp_path):
    line = one_error_line(invoke("init", tmp_path / ("a" * 300)))
    assert "the name is too long for the file system (ENAMETOOLONG)" in line
    assert "… (" in line  # the 300 characters are not all echoed


def test_init_into_a_file_is_one_line_and_leaves_the_file(tmp_path, outside):
    line = one_error_line(invoke("init", outside))
    assert line.startswith("error: ")  # the path itself is shortened when long
    assert line.endswith(": exists and is not a folder; give a folder for the configs")
    assert outside.read_text() == "the user's own file\n"


def test_init_into_a_folder_that_cannot_be_written_is_one_line(tmp_path, unwritable):
    folder = tmp_path / "locked"
    folder.mkdir()
    unwritable(folder)
    line = one_error_line(invoke("init", folder))
    assert f"error: {folder}: cannot write configs there (" in line


# kernelnet data fetch
class Mirror:
    """A loopback HTTP server serving the shipped MNIST files; counts the requests."""

    def __init__(self):
        outer = self
        self.requests = 0

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.requests += 1
                super().do_GET()

        handler = functools.partial(Handler, directory=str(data_root() / "mnist"))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    server = Mirror()
    yield server
    server.close()


SMALL = "t10k-labels-idx1-ubyte.gz"


def _all_but_one(dest: Path) -> Path:
    """dest/mnist holding valid copies of three files; the path of the fourth (the smallest)."""
    folder = dest / "mnist"
    folder.mkdir(parents=True)
    for source in (data_root() / "mnist").glob("*.gz"):
        if source.name != SMALL:
            shutil.copyfile(source, folder / source.name)
    return folder / SMALL


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "--url '': expected an http:// or https:// address of a mirror"),
        ("http://[::1", "--url 'http://[::1': not a URL (Invalid IPv6 URL)"),
        ("http://127.0.0.1:99999/", "not a URL (Port out of range"),
        ("ftp://127.0.0.1/mnist", "expected an http:// or https:// address"),
        ("file:///etc", "expected an http:// or https:// address"),
        ("http:///mnist", "expected an http:// or https:// address"),
        ("http://host/a b", "holds a space or control character"),
    ],
)
def test_fetch_with_a_url_that_is_not_a_mirror_is_one_line(tmp_path, url, message):
    line = one_error_line(invoke("data", "fetch", "mnist", "--url", url, "--dest", tmp_path / "d"))
    assert message in line
    assert not (tmp_path / "d").exists()


def test_fetch_into_a_dest_that_is_a_file_is_one_line_before_downloading(tmp_path, outside, mirror):
    line = one_error_line(invoke("data", "fetch", "mnist", "--url", mirror.url, "--dest", outside))
    assert line.startswith("error: --dest ")  # the path itself is shortened when long
    assert line.endswith(f": {outside.name} exists and is not a folder")
    assert outside.read_text() == "the user's own file\n" and mirror.requests == 0


def test_fetch_into_an_empty_dest_is_refused(mirror):
    line = one_error_line(invoke("data", "fetch", "mnist", "--url", mirror.url, "--dest", ""))
    assert "--dest must not be empty" in line and mirror.requests == 0


def test_fetch_into_a_folder_that_cannot_be_written_is_one_line_before_downloading(
    tmp_path, mirror, unwritable
):
    dest = tmp_path / "data"
    (dest / "mnist").mkdir(parents=True)
    unwritable(dest / "mnist")
    line = one_error_line(invoke("data", "fetch", "mnist", "--url", mirror.url, "--dest", dest))
    assert f"error: --dest {dest}: cannot write there (" in line
    assert mirror.requests == 0


def test_fetch_onto_a_full_disk_is_one_line(tmp_path, mirror, monkeypatch):
    import kernelnet.safe_write

    def full(path, write, root=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(kernelnet.safe_write, "write_atomic", full)
    target = _all_but_one(tmp_path / "data")
    line = one_error_line(
        invoke("data", "fetch", "mnist", "--url", mirror.url, "--dest", tmp_path / "data")
    )
    assert line.startswith(f"error: {target}: cannot write it (No space left on device")
    assert not os.path.lexists(target)


def test_fetch_with_a_mnist_folder_linking_out_of_dest_writes_nothing_there(tmp_path, mirror):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "mnist").symlink_to(elsewhere)
    line = one_error_line(invoke("data", "fetch", "mnist", "--url", mirror.url, "--dest", dest))
    assert "is a link out of" in line
    assert list(elsewhere.iterdir()) == [] and mirror.requests == 0


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda target, outside: target.symlink_to(outside), id="link out"),
        pytest.param(lambda target, outside: target.symlink_to("/dev/zero"), id="/dev/zero"),
        pytest.param(lambda target, outside: os.mkfifo(target), id="fifo"),
        pytest.param(
            lambda target, outside: target.symlink_to(target.parent / "missing"), id="dangling"
        ),
    ],
)
def test_fetch_replaces_what_is_planted_at_a_file_name_and_reads_nothing_through_it(
    tmp_path, outside, mirror, plant
):
    target = _all_but_one(tmp_path / "data")
    plant(target, outside)
    result = invoke("data", "fetch", "mnist", "--url", mirror.url, "--dest", tmp_path / "data")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines() == [str(target)]  # only the planted one
    assert target.is_file() and not target.is_symlink()
    assert target.read_bytes() == (data_root() / "mnist" / SMALL).read_bytes()
    assert outside.read_text() == "the user's own file\n"
    assert not (target.parent / "missing").exists()
    assert mirror.requests == 1
