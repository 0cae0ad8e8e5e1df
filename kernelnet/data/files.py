"""Your own data: CSV, NumPy ``.npz`` and ``.npy`` files, and LIBSVM/SVMlight text files.

- CSV: a header row, then one sample per row; the label is the last column, or the column
  named by ``data.label_column``. Features must be numbers; labels may be any text. A
  byte-order mark (as spreadsheet programs write) is dropped. A first row that is all
  numbers is a sample, not a header: the file has no header row, its columns are named
  ``column 1``, ``column 2``, ... in messages and the label is the last one (such a file
  cannot take ``data.label_column``). Fields are separated by commas, or by semicolons or
  tabs when the first row holds none of the commas but those.
- ``.npz`` (no pickles): ``X`` and ``y``, or the four arrays ``X_train``, ``y_train``,
  ``X_test``, ``y_test``; each member's declared size is checked before it is inflated.
- ``.npy`` as the course's ``data/`` folder holds them, features and labels in separate
  files (never unpickled, object arrays refused), in one of two ways:

  - ``data.dataset: FOLDER`` (any folder, e.g. ``data`` or ``./my-data``) holding ``X.npy``
    and ``y.npy``, or ``X_train.npy``, ``y_train.npy``, ``X_test.npy`` and ``y_test.npy``
    (the names an ``.npz`` takes; the first complete set wins, and ``X_train.npy`` with
    ``y_train.npy`` alone is split like ``X.npy``). A file of the folder that is a
    symlink out of it is refused.
  - ``data.dataset: data/q1x.npy``, the features file itself, as the assignment loads it:
    its labels are the file of the same name with its ``x`` (a lone x or X, not part of a
    word) turned into ``y``, in the same folder: ``q1x.npy`` -> ``q1y.npy``,
    ``X_train.npy`` -> ``y_train.npy``, ``train_x.npy`` -> ``train_y.npy``.

  X is 2-D (samples x features) numbers; y is 1-D with one label per row of X.
- LIBSVM (``.libsvm``, ``.svm``, ``.svmlight``, ``.txt``): ``label index:value ...`` with
  1-based indices of ASCII digits in ascending order on each line, as libsvm's own reader
  requires (a repeated or decreasing index is refused); missing indices are 0.

Labels are read exactly (:mod:`kernelnet.data.validation`): integers stay those integers,
or every label stays text as written.

Every file is read through :mod:`kernelnet.safe_read`: a FIFO, device or directory is
refused at once, and a file over ``MAX_FILE_BYTES`` unread. Text is parsed as it streams
into compact arrays, and what the parse and the dense ``X`` (float64, with the copies
the train/test split makes) will need is estimated from the file's size as it goes and
checked against the memory limit (:mod:`kernelnet.footprint`) before the memory is taken:
a LIBSVM file's ``rows x largest index`` before the dense matrix is allocated.

A single file is split into train and test by ``data.test_fraction``, stratified by class,
with a Generator derived from the run seed and the file's name, unless ``data.test_path``
names a test file of the same format. Every problem names the file, and the line where it
helps, before any solver runs.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import math
import os
import re
import stat
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import Any

import numpy as np

from kernelnet import safe_read
from kernelnet.data.validation import check_X_y, exact_labels, label_text, labels_from_text
from kernelnet.errors import DataError
from kernelnet.footprint import check_memory
from kernelnet.safe_read import ReadRefused, csv_rows, open_regular
from kernelnet.seeding import named_rng

CSV_SUFFIXES = (".csv",)
NPZ_SUFFIXES = (".npz",)
NPY_SUFFIXES = (".npy",)
LIBSVM_SUFFIXES = (".libsvm", ".svm", ".svmlight", ".txt")
SUFFIXES = CSV_SUFFIXES + NPZ_SUFFIXES + NPY_SUFFIXES + LIBSVM_SUFFIXES
# The .npy files a data folder may hold, tried in this order (the names an .npz takes).
FOLDER_LAYOUTS = (("X", "y"), ("X_train", "y_train", "X_test", "y_test"), ("X_train", "y_train"))
# A lone x or X in a features file's name (not a letter of a word): where "y" goes.
_X_IN_NAME = re.compile(r"(?<![A-Za-z])[xX](?![A-Za-z])")
# The names kernelnet reads as its own sets even if a folder of that name exists.
SHIPPED_NAMES = ("iris_binary", "moons", "circles", "linear", "xor", "mnist")
# The hard bound on a data file (and on what an .npz inflates to): past it a pure-Python
# parse takes longer than anyone waits, whatever memory there is.
MAX_FILE_BYTES = 16 * 2**30
MAX_LINE_BYTES = 64 * 2**20  # one LIBSVM line (a million features is about 15 MB)
MAX_INDEX_DIGITS = 18  # a LIBSVM index fits int64; the dense estimate refuses big ones
SPLIT_COPIES = 2  # X as read, and the train and test parts the split copies out of it
FIRST_CHECK = 2**16  # values stored before the first estimate (then at every doubling)
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


@dataclass(frozen=True)
class Labelled:
    X: np.ndarray  # (n, d) float64, finite
    y: np.ndarray  # (n,) exact labels: int64, float64 or text


def looks_like_path(name: str) -> bool:
    """Whether the loaders read ``name`` as a path: it holds a ``/``, ends in a data-file
    suffix, or names an existing folder (other than a shipped set's name: ``./moons``
    reads a folder called moons)."""
    if "/" in name or Path(name).suffix.lower() in SUFFIXES:
        return True
    try:
        return name not in SHIPPED_NAMES and os.path.isdir(os.path.expanduser(name))
    except (OSError, ValueError):  # a NUL in the name
        return False


def _is_data_folder(path: Path) -> bool:
    """A folder read as .npy files (one named like a data file, ``x.csv/``, is refused as
    the directory it is by that format's reader)."""
    return path.suffix.lower() not in SUFFIXES and os.path.isdir(path)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Whatever reading ``path`` raises, as one DataError line naming it (estimates over
    the memory limit pass through as the ResourceError they are)."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"dataset file not found: {path}") from None
    except ReadRefused as exc:  # its message names the file and says why
        raise DataError(str(exc)) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a CSV file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        if "_" in text:  # Python's float() takes 1_000; a data file's number does not
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}:{line}: column {column!r}: {text.strip()!r} is not a number"
        ) from None
    if math.isnan(value):
        raise DataError(f"{path}:{line}: column {column!r} contains NaN")
    if math.isinf(value):
        raise DataError(f"{path}:{line}: column {column!r} contains infinity")
    return value


class _Labels:
    """Labels as they stream: one int64 code per sample and each distinct text once (a
    list of Python strings would cost ~60 bytes a sample)."""

    def __init__(self, path: Path):
        self.path = path
        self.codes = array("q")
        self.index: dict[str, int] = {}
        self.first_line: list[int] = []

    def add(self, text: str, line: int) -> None:
        code = self.index.get(text)
        if code is None:
            code = self.index[text] = len(self.index)
            self.first_line.append(line)
        self.codes.append(code)

    def array(self) -> np.ndarray:
        """(n,) exact labels (see kernelnet.data.validation)."""
        texts = list(self.index)
        values = labels_from_text(texts, lambda i: f"{self.path}:{self.first_line[i]}")
        if values.dtype.kind == "U":
            check_memory(
                f"{self.path}: holding its {len(self.codes):,} labels as text (up to "
                f"{values.itemsize // 4:,} characters each)",
                len(self.codes) * values.itemsize,
                "shorten the labels (or number the classes)",
            )
        return values[np.frombuffer(self.codes, dtype=np.int64)]


def _check_parse(path: Path, what: str, stored: float, read: int, size: int, per: float) -> None:
    """Refuse a parse heading past the memory limit: ``stored`` units so far, from ``read``
    of the file's ``size`` bytes, each unit needing ``per`` bytes in the end."""
    projected = stored * max(1.0, size / max(read, 1))
    check_memory(
        what.format(f"{projected:,.0f}"),
        projected * per,
        "use a subset of its rows (or fewer features)",
    )


def _delimiter(path: Path) -> str:
    """A comma, unless the first row holds no comma but semicolons or tabs."""
    with contextlib.closing(csv_rows(path, MAX_FILE_BYTES)) as rows:
        for row in rows:
            if any(cell.strip() for cell in row):
                if len(row) == 1:
                    for other in (";", "\t"):
                        if other in row[0]:
                            return other
                return ","
    return ","


def read_csv(path: Path, label_column: str | None = None, delimiter: str | None = None) -> Labelled:
    """A CSV file as (n, d) float64 features and exact labels (see the module docstring);
    ``delimiter`` None finds it from the first row."""
    with _reading(path):
        size = os.stat(path).st_size
        sep = delimiter or _delimiter(path)
        with contextlib.closing(csv_rows(path, MAX_FILE_BYTES, delimiter=sep)) as rows:
            return _parse_csv(path, rows, size, label_column)


def _parse_csv(path: Path, rows: Iterator[list[str]], size: int, label_column: str | None):
    numbered = (
        (line, row) for line, row in enumerate(rows, start=1) if any(c.strip() for c in row)
    )
    first = next(numbered, None)
    if first is None:
        raise DataError(f"{path}: empty file")
    headerless = all(_NUMBER.fullmatch(cell) for cell in first[1])
    if headerless:
        names = [f"column {i}" for i in range(1, len(first[1]) + 1)]
        if label_column is not None:
            raise DataError(
                f"{path}: data.label_column={label_column!r}, but its first row is all numbers, "
                "so it has no header row naming columns; add one, or leave data.label_column "
                "unset to take the last column as the label"
            )
        body: Iterator[tuple[int, list[str]]] = _chain(first, numbered)
    else:
        names = [name.strip() for name in first[1]]
        body = numbered
    width = len(names)
    if label_column is None:
        label_index = width - 1
    elif label_column in names:
        label_index = names.index(label_column)
    else:
        raise DataError(f"{path}: no column {label_column!r} (columns: {', '.join(names)})")
    if width < 2:
        what = "at least two columns" if headerless else "a header row with"
        raise DataError(f"{path}: needs {what} features and a label column")
    label_name = names[label_index]
    features = [(i, name) for i, name in enumerate(names) if i != label_index]
    values, labels = array("d"), _Labels(path)
    read, check_at = 0, FIRST_CHECK
    what = f"{path}: X as about {{}} x {width - 1:,} float64"
    for line, row in body:
        if len(row) != width:
            raise DataError(f"{path}:{line}: expected {width} fields, got {len(row)}")
        label = row[label_index].strip()
        if not label:
            raise DataError(f"{path}:{line}: the label (column {label_name!r}) is empty")
        labels.add(label, line)
        values.extend([_number(row[i], path, line, name) for i, name in features])
        # characters, not bytes, and no quotes: an undercount, so the projection errs high
        read += sum(map(len, row)) + width
        if len(values) >= check_at:
            check_at = 2 * len(values)
            n = len(labels.codes)
            _check_parse(path, what, n, read, size, (width - 1) * 8 * SPLIT_COPIES + 8)
    n = len(labels.codes)
    if n == 0:
        raise DataError(f"{path}: Found array with 0 sample(s): no rows after the header")
    X = np.frombuffer(values, dtype=np.float64).reshape(n, width - 1)  # no copy
    return Labelled(X, labels.array())


def _chain(first, rest):
    yield first
    yield from rest


def read_libsvm(path: Path) -> Labelled:
    """A LIBSVM file, streamed line by line into sparse (CSR-like) arrays, then made dense
    once ``rows x largest index`` is checked against the memory limit."""
    with _reading(path), open_regular(path, MAX_FILE_BYTES) as (handle, size):
        columns, values, ends = array("q"), array("d"), array("q")
        labels = _Labels(path)
        width = widest_line = line = read = 0
        check_at = FIRST_CHECK
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            line += 1
            read += len(raw)
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{path}:{line}: longer than {MAX_LINE_BYTES:,} bytes")
            try:
                text = raw.decode("utf-8").split("#", 1)[0].strip()
            except UnicodeDecodeError:
                raise DataError(f"{path}:{line}: not UTF-8 text") from None
            if not text:
                continue
            label, *pairs = text.split()
            last = _parse_pairs(pairs, path, line, columns, values)
            if last > width:
                width, widest_line = last, line
            ends.append(len(columns))
            labels.add(label, line)
            if len(columns) >= check_at:
                check_at = 2 * len(columns)
                pairs_what = f"{path}: parsing its {{}} index:value pairs"
                per_pair = 16 + 8 * len(ends) / len(columns)  # column, value; a row end
                _check_parse(path, pairs_what, len(columns), read, size, per_pair)
                _check_dense(path, len(ends) * max(1.0, size / read), width, widest_line)
    n = len(ends)
    if n == 0:
        raise DataError(f"{path}: Found array with 0 sample(s): no data lines")
    if width == 0:
        raise DataError(f"{path}: Found array with 0 feature(s)")
    _check_dense(path, n, width, widest_line)
    X = np.zeros((n, width))
    counts = np.diff(np.frombuffer(ends, dtype=np.int64), prepend=0)
    X[np.repeat(np.arange(n), counts), np.frombuffer(columns, dtype=np.int64)] = values
    return Labelled(X, labels.array())


def _parse_pairs(pairs: list[str], path: Path, line: int, columns: array, values: array) -> int:
    """Append one line's ``index:value`` pairs (0-based columns); the largest index."""
    last = 0
    for pair in pairs:
        index, sep, value = pair.partition(":")
        # str.isdigit alone takes '²' and other non-ASCII digits int() then rejects
        if not (sep and index.isascii() and index.isdigit()):
            shown = pair if len(pair) <= 40 else pair[:40] + "..."
            raise DataError(
                f"{path}:{line}: {shown!r} is not index:value (a 1-based index of digits)"
            )
        if len(index) > MAX_INDEX_DIGITS:  # checked before int(), which a long one stalls
            raise DataError(
                f"{path}:{line}: index {index[:24]}{'...' if len(index) > 24 else ''} has "
                f"{len(index):,} digits (at most {MAX_INDEX_DIGITS})"
            )
        number = int(index)
        if number < 1:
            raise DataError(f"{path}:{line}: index {index!r}: indices are 1-based")
        if number <= last:
            twice = "repeats" if number == last else "comes after"
            raise DataError(
                f"{path}:{line}: index {number} {twice} index {last}; indices must be "
                "ascending on each line (as libsvm requires): sort the pairs, one per index"
            )
        last = number
        columns.append(number - 1)
        values.append(_number(value, path, line, f"feature {index}"))
    return last


def _check_dense(path: Path, rows: float, width: int, widest_line: int) -> None:
    check_memory(
        f"{path}: X as {rows:,.0f} x {width:,} dense float64 (the largest index is "
        f"{width:,}, on line {widest_line})",
        rows * width * 8 * SPLIT_COPIES,
        "keep only the features in use (renumber the indices from 1), or use a subset of the rows",
    )


def _declared_npz_bytes(path: Path) -> int:
    """What an .npz's members declare they inflate to, from its directory alone (0 if it
    is no zip archive: read_npz then says what it is)."""
    with open_regular(path, MAX_FILE_BYTES) as (handle, _):
        try:
            with zipfile.ZipFile(handle) as archive:
                return sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
            return 0


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a user's .npz: its declared inflated size checked against the memory
    limit, then read by safe_read.read_npz (shapes checked before inflating, no pickles)."""
    with _reading(path):
        declared = _declared_npz_bytes(path)
        check_memory(
            f"{path}: reading and splitting its arrays ({declared:,} bytes inflated)",
            declared * SPLIT_COPIES,
            "store a subset of its rows",
        )
        try:
            arrays = safe_read.read_npz(path, MAX_FILE_BYTES)
        except ValueError as exc:  # names the file: truncated, a bare .npy, objects, ...
            raise DataError(str(exc)) from None
    for keys in (("X", "y"), ("X_train", "y_train", "X_test", "y_test")):
        if all(key in arrays for key in keys):
            return {key: arrays[key] for key in keys}
    raise DataError(
        f"{path}: needs arrays X and y, or X_train, y_train, X_test and y_test "
        f"(has {', '.join(sorted(arrays)) or 'none'})"
    )


def _npz_part(path: Path, X: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> Labelled:
    """One (X, y) pair of an .npz as float64 features and exact labels, the float64 copy
    of X estimated first (an .npz of uint8 pixels grows eightfold)."""
    if X.ndim == 2 and X.dtype != np.float64:
        check_memory(
            f"{path}: {x_name} ({X.shape[0]:,} x {X.shape[1]:,}) as float64",
            X.size * 8 * SPLIT_COPIES,
            "store a subset of its rows",
        )
    return Labelled(*check_X_y(X, exact_labels(y, f"{path}: {y_name}"), f"{path}: {x_name}"))


# -- .npy files: a folder of them, or a features file and its labels file -------------


def _labels_file(path: Path) -> Path:
    """The labels file of the features file ``path`` (see the module docstring)."""
    stem, suffix = path.name[: -len(path.suffix)], path.suffix
    found = list(_X_IN_NAME.finditer(stem))
    if not found:
        raise DataError(
            f"{path}: cannot tell which file holds its labels: name the features file with "
            "a lone x (X.npy, X_train.npy, q1x.npy; labels in y.npy, y_train.npy, q1y.npy), "
            "or give the folder holding X.npy and y.npy"
        )
    at = found[-1].start()
    return path.with_name(f"{stem[:at]}y{stem[at + 1 :]}{suffix}")


def npy_files(path: Path) -> tuple[dict[str, Path], Path | None]:
    """The .npy files ``path`` stands for, ``{role: file}`` with roles ``X``/``y`` or
    ``X_train``/``y_train``/``X_test``/``y_test``, and the folder none of them may link
    out of (None for a features file named directly). DataError when the folder holds no
    complete layout or the labels file is missing."""
    if path.suffix.lower() in NPY_SUFFIXES:
        labels = _labels_file(path)
        if not os.path.lexists(path):
            raise DataError(f"dataset file not found: {path}")
        if not os.path.lexists(labels):
            raise DataError(f"{path}: its labels file {labels.name} is not beside it ({labels})")
        return {"X": path, "y": labels}, None
    for layout in FOLDER_LAYOUTS:
        files = {role: path / f"{role}.npy" for role in layout}
        if all(os.path.lexists(file) for file in files.values()):
            return files, path
    try:
        with os.scandir(path) as entries:
            present = sorted(e.name for e in entries if e.name.endswith(".npy"))
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    shown = ", ".join(present[:8]) + (", ..." if len(present) > 8 else "")
    names = set(present)
    pairs = [  # features files whose labels file is there too
        name
        for name in present
        if name not in ("X.npy", "X_train.npy", "X_test.npy")
        and _X_IN_NAME.search(name[:-4])
        and _labels_file(path / name).name in names
    ]
    hint = f"; or name a features file, e.g. {path / pairs[0]}" if pairs else ""
    raise DataError(
        f"{path}: a data folder holds X.npy and y.npy, or X_train.npy, y_train.npy, "
        f"X_test.npy and y_test.npy (it has {shown or 'no .npy file'}){hint}"
    )


def read_npy(path: Path, root: Path | None = None) -> np.ndarray:
    """One .npy file: a regular file within the size bound (inside ``root`` when given),
    its header read by NumPy's own parser and checked before a byte of data is read:
    plain numbers or text only (never a pickle), the declared shape matching the file's
    size, and the array and its float64 copy estimated against the memory limit."""
    fmt = np.lib.format
    with _reading(path), open_regular(path, MAX_FILE_BYTES, root) as (handle, size):
        try:
            version = fmt.read_magic(handle)
        except ValueError:
            raise DataError(f"{path}: not an .npy file (no NumPy header)") from None
        if version == (1, 0):
            read_header = fmt.read_array_header_1_0
        elif version in ((2, 0), (3, 0)):
            read_header = fmt.read_array_header_2_0
        else:
            raise DataError(f"{path}: .npy format version {version} is not supported")
        try:
            shape, fortran, dtype = read_header(handle, max_header_size=10_000)
        except (ValueError, SyntaxError, TokenError, TypeError, MemoryError, RecursionError):
            raise DataError(f"{path}: a damaged .npy header") from None
        if dtype.hasobject:
            raise DataError(
                f"{path}: holds Python objects ({dtype}), which kernelnet never unpickles; "
                "save plain numbers or text (e.g. np.save(path, np.asarray(a, dtype=float)))"
            )
        if dtype.kind not in "biufcUS":
            raise DataError(f"{path}: holds {dtype} values, not plain numbers or text")
        count = math.prod(int(extent) for extent in shape)
        needed, held = count * dtype.itemsize, size - handle.tell()
        if needed != held:
            raise DataError(
                f"{path}: declares {tuple(shape)} {dtype} ({needed:,} bytes) but holds {held:,}"
            )
        check_memory(
            f"{path}: {tuple(shape)} {dtype} and its float64 copies",
            needed + count * 8 * SPLIT_COPIES,
            "store a subset of its rows",
        )
        data = bytearray(needed)
        view, filled = memoryview(data), 0
        while filled < needed:
            got = handle.readinto(view[filled:])
            if not got:
                raise DataError(f"{path}: truncated")
            filled += got
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def _npy_pair(x_path: Path, y_path: Path, X: np.ndarray, y: np.ndarray) -> Labelled:
    """Features and labels read from two files, each problem naming the file it is in."""
    if X.ndim != 2:
        hint = " (one feature per column: X.reshape(-1, 1))" if X.ndim == 1 else ""
        raise DataError(f"{x_path}: X must be 2-D (samples x features); got shape {X.shape}{hint}")
    if y.ndim != 1:
        raise DataError(f"{y_path}: labels must be 1-D (one per sample); got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(
            f"{x_path} and {y_path.name}: inconsistent numbers of samples: "
            f"[{X.shape[0]}, {y.shape[0]}]"
        )
    if X.dtype.kind not in "biuf":
        raise DataError(f"{x_path}: holds {X.dtype} values; features must be numbers")
    X, y = check_X_y(X, exact_labels(y, str(y_path)), str(x_path))
    return Labelled(X, y)


def _root_of(path: Path, root: Path | None, role: str) -> Path | None:
    """The folder file ``role`` of ``path`` may not link out of: the data folder's; for a
    features file named directly, none for it (as for any file named) and its folder for
    the labels file found beside it."""
    if root is not None:
        return root
    return None if role == "X" else path.parent


def read_npy_data(path: Path) -> Labelled | tuple[Labelled, Labelled]:
    """A folder of .npy files or a features file and its labels file (see the module
    docstring): a Labelled, or (train, test) for a folder holding both."""
    files, root = npy_files(path)
    arrays = {role: read_npy(file, _root_of(path, root, role)) for role, file in files.items()}
    if "X" in files:
        return _npy_pair(files["X"], files["y"], arrays["X"], arrays["y"])
    train = _npy_pair(files["X_train"], files["y_train"], arrays["X_train"], arrays["y_train"])
    if "X_test" not in files:
        return train
    test = _npy_pair(files["X_test"], files["y_test"], arrays["X_test"], arrays["y_test"])
    return train, test


def read_labelled(
    path: Path, label_column: str | None = None, delimiter: str | None = None
) -> Labelled | tuple:
    """One file (or a folder of .npy files): a Labelled, or (train, test) for an .npz or
    folder holding both."""
    suffix = path.suffix.lower()
    if suffix in NPY_SUFFIXES or _is_data_folder(path):
        return read_npy_data(path)
    if suffix not in SUFFIXES:
        if not os.path.lexists(path):
            raise DataError(f"dataset file not found: {path}")
        raise DataError(f"{path}: unknown format; use one of {', '.join(SUFFIXES)}")
    if suffix in CSV_SUFFIXES:
        data = read_csv(path, label_column, delimiter)
    elif suffix in LIBSVM_SUFFIXES:
        data = read_libsvm(path)
    else:
        arrays = read_npz(path)
        if "X" in arrays:
            return _npz_part(path, arrays["X"], arrays["y"], "X", "y")
        return (
            _npz_part(path, arrays["X_train"], arrays["y_train"], "X_train", "y_train"),
            _npz_part(path, arrays["X_test"], arrays["y_test"], "X_test", "y_test"),
        )
    X, y = check_X_y(data.X, data.y, str(path))
    return Labelled(X, y)


def _same_kind(train: Labelled, test: Labelled) -> tuple[Labelled, Labelled]:
    """Train and test labels of one kind (read from two files or arrays, one may be int64
    where the other is float64 or text): ints as floats when every one is exact, else
    both as the text a label mapping records."""
    a, b = train.y, test.y
    if a.dtype.kind == b.dtype.kind:
        return train, test
    kinds = {a.dtype.kind, b.dtype.kind}
    ints = a if a.dtype.kind == "i" else b
    if kinds == {"i", "f"} and np.all((ints >= -(2**53)) & (ints <= 2**53)):
        a, b = a.astype(np.float64), b.astype(np.float64)
    else:
        a, b = _as_text(a), _as_text(b)
    return Labelled(train.X, a), Labelled(test.X, b)


def _as_text(y: np.ndarray) -> np.ndarray:
    classes, codes = np.unique(y, return_inverse=True)
    return np.array([label_text(c) for c in classes], dtype=str)[codes]


def stratified_split(data: Labelled, test_fraction: float, rng: np.random.Generator, where: str):
    """(train, test) with about ``test_fraction`` of every class in test (at least one
    sample of each class stays in train)."""
    test: list[int] = []
    for label in np.unique(data.y):
        members = np.flatnonzero(data.y == label)
        members = members[rng.permutation(members.size)]
        count = min(int(round(test_fraction * members.size)), members.size - 1)
        test.extend(members[:count].tolist())
    test_index = np.sort(np.array(test, dtype=np.int64))
    train_index = np.setdiff1d(np.arange(data.y.size), test_index)
    if test_index.size == 0:
        raise DataError(f"{where}: too few samples for a test set of {test_fraction:g}")
    return (
        Labelled(data.X[train_index], data.y[train_index]),
        Labelled(data.X[test_index], data.y[test_index]),
    )


def load_train_test(
    dataset: str,
    seed: Any,
    test_fraction: float,
    test_path: str | None = None,
    label_column: str | None = None,
    delimiter: str | None = None,
) -> tuple[Labelled, Labelled]:
    """Train and test parts of a user's data file (see the module docstring); a CSV's
    ``delimiter`` None is found from its first row."""
    path = Path(dataset).expanduser()
    read = read_labelled(path, label_column, delimiter)
    if isinstance(read, tuple):
        train, test = _same_kind(*read)
    elif test_path:
        other = read_labelled(Path(test_path).expanduser(), label_column, delimiter)
        if isinstance(other, tuple):
            raise DataError(f"{test_path}: a test file holds X and y, not four arrays")
        train, test = _same_kind(read, other)
    else:
        rng = named_rng(seed, f"split {file_content_digest(str(path)) or path.name}")
        train, test = stratified_split(read, test_fraction, rng, str(path))
    if test.X.shape[1] != train.X.shape[1]:
        raise DataError(
            f"{test_path or path}: the test data has {test.X.shape[1]} features but the "
            f"training data has {train.X.shape[1]}"
        )
    return train, test


# -- a data file counted by its bytes (kernelnet.config.sweep.data_identity, the split) --
_HASH_CHUNK = 1 << 20


def file_content_digest(name: str, must_look_like_path: bool = False) -> str | None:
    """sha256 (hex) of the bytes of the data file ``name`` (``~`` expanded, relative to the
    working folder, as the loaders read it), or None when it names no regular file
    kernelnet would read (missing, a FIFO, over the loaders' size bound). With
    ``must_look_like_path``, a name the loaders take for a shipped set's (no ``/``, no
    data-file suffix, not a folder) is None even if a file of that name exists.

    .npy data is the files the loaders read together (:func:`npy_files`): for a data
    folder or a features file, the sha256 of the list of its files' roles and the sha256
    of each file's bytes, so renaming, moving or copying the folder keeps its identity and
    changing any byte of X or y (or which file is X) changes it. None when they are not
    all regular files the loaders would read (one missing, a link out of the folder).

    Each distinct file is read once per process: the result is kept by the file's real
    path, size, inode and modification time, so a file rewritten since is read again.
    """
    if must_look_like_path and not looks_like_path(name):
        return None
    try:
        path = Path(os.path.expanduser(name))
        if path.suffix.lower() in NPY_SUFFIXES or _is_data_folder(path):
            return _npy_digest(path)
        return _regular_digest(path)
    except (OSError, ValueError, DataError):  # unreadable or refused; a NUL in the name
        return None


def _regular_digest(path: Path, root: Path | None = None) -> str | None:
    safe_read.check_inside(path, root)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        return None
    return _hash_file(
        os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev
    )


def _npy_digest(path: Path) -> str | None:
    files, root = npy_files(path)
    listing = hashlib.sha256(b"kernelnet npy files\n")
    for role, file in files.items():
        content = _regular_digest(file, _root_of(path, root, role))
        if content is None:
            return None
        listing.update(f"{role} {content}\n".encode())
    return listing.hexdigest()


@functools.lru_cache(maxsize=256)
def _hash_file(real: str, size: int, mtime_ns: int, inode: int, device: int) -> str:
    """sha256 of the file at ``real`` whose stat gave the other arguments (the cache key),
    read through safe_read in chunks; a file that changed since its stat is refused (an
    exception is not cached, so the next call reads it again)."""
    digest, read = hashlib.sha256(), 0
    with open_regular(real, MAX_FILE_BYTES) as (handle, _):
        now = os.fstat(handle.fileno())
        stated = (size, mtime_ns, inode, device)
        if (now.st_size, now.st_mtime_ns, now.st_ino, now.st_dev) != stated:
            raise ReadRefused(f"{real}: changed while its digest was taken")
        while block := handle.read(_HASH_CHUNK):
            read += len(block)
            if read > size:
                break
            digest.update(block)
    if read != size:
        raise ReadRefused(f"{real}: changed size while its digest was taken")
    return digest.hexdigest()
