"""Who is in the class: the submissions a grading run grades, their names, and the student
ids a manifest gives them.

A submission is a folder holding the student's files at its top level (``.py``, ``.ipynb``)
or a ``.zip`` of them (autograder.io and LMS exports: a zip per student). A class folder holds
submissions (Gradescope exports a folder per submission); :func:`find_submissions` turns the
paths an instructor gives into the list of submissions, each named by its folder's name or its
zip's stem. A manifest is a CSV file with a header naming a ``submission`` and a ``student``
column (other columns are ignored): the submission's name, and the student id to put in
grades.csv; a class folder's own ``manifest.csv`` is used unless another is given.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable
from pathlib import Path

from kernelnet.errors import ConfigError
from kernelnet.safe_read import csv_rows, open_regular

SOURCE_SUFFIXES = (".py", ".ipynb")
MAX_ZIP_BYTES = 64 * 2**20  # one submission's .zip
MANIFEST_NAME = "manifest.csv"
MANIFEST_BYTES = 16 * 2**20
MAX_SUBMISSIONS = 10_000


def submission_name(path: str | Path) -> str:
    """``alice`` for ``.../alice/``, ``.../alice.zip`` and ``.../alice.ZIP``."""
    path = Path(path)
    return path.stem if path.suffix.lower() == ".zip" else path.name


def _visible(entries: Iterable[Path]) -> list[Path]:
    return sorted(p for p in entries if not p.name.startswith((".", "__")))


def is_submission(path: Path) -> bool:
    """A .zip, or a folder with a student file at its top level."""
    if path.is_file():
        return path.suffix.lower() == ".zip"
    return path.is_dir() and any(
        p.suffix in SOURCE_SUFFIXES and p.is_file() for p in _visible(path.iterdir())
    )


def has_notebooks(path: Path) -> bool:
    """Whether a submission holds a notebook (a zip's member names are read, nothing is
    inflated; an unreadable zip holds none here: grading it says what is wrong)."""
    if path.is_dir():
        return any(p.suffix == ".ipynb" for p in _visible(path.iterdir()))
    try:
        with open_regular(path, MAX_ZIP_BYTES) as (handle, _), zipfile.ZipFile(handle) as archive:
            return any(name.endswith(".ipynb") for name in archive.namelist())
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        return False


def _members(folder: Path) -> list[Path]:
    """The submissions in a class folder: its sub-folders and .zip files, by name."""
    try:
        entries = _visible(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot be listed ({exc.strerror or exc})") from None
    found = [p for p in entries if p.is_dir() or p.suffix.lower() == ".zip"]
    if not found:
        raise ConfigError(
            f"{folder}: holds no submission (no .py or .ipynb file, no sub-folder, no .zip)"
        )
    return found


def find_submissions(paths: Iterable[Path]) -> list[Path]:
    """Every submission the paths name, absolute, in the order given (a class folder's
    members by name). Two submissions with one name are refused: grades.csv could not tell
    them apart."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or folder")
        if is_submission(path):
            found.append(path.resolve())
        elif path.is_dir():
            found.extend(p.resolve() for p in _members(path))
        else:
            raise ConfigError(f"{path}: not a submission (a folder of .py files or a .zip)")
    if len(found) > MAX_SUBMISSIONS:
        raise ConfigError(f"{len(found):,} submissions; at most {MAX_SUBMISSIONS:,} in one run")
    named: dict[str, Path] = {}
    for path in found:
        other = named.setdefault(submission_name(path), path)
        if other != path:
            raise ConfigError(
                f"two submissions are named {submission_name(path)!r} ({other} and {path}); "
                "rename one"
            )
    return found


def class_manifest(paths: Iterable[Path]) -> Path | None:
    """The ``manifest.csv`` of the one class folder given, if it has one."""
    paths = list(paths)
    if len(paths) == 1 and Path(paths[0]).is_dir() and not is_submission(Path(paths[0])):
        candidate = Path(paths[0]) / MANIFEST_NAME
        if candidate.is_file():
            return candidate.resolve()
    return None


def read_manifest(path: Path) -> dict[str, str]:
    """submission name -> student id, from a CSV with ``submission`` and ``student``
    columns (names matched without regard to case); a config error naming the line when the
    file is not such a CSV or names a submission twice."""
    where = str(path)
    try:
        rows = csv_rows(path, MANIFEST_BYTES)
        header = [h.strip().lower() for h in next(rows, [])]
        missing = [c for c in ("submission", "student") if c not in header]
        if missing:
            raise ConfigError(
                f"{where}: line 1: no {' or '.join(repr(c) for c in missing)} column "
                f"(the header names: {', '.join(header) or 'nothing'})"
            )
        at_submission, at_student = header.index("submission"), header.index("student")
        students: dict[str, str] = {}
        for line, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(at_submission, at_student):
                raise ConfigError(f"{where}: line {line}: {len(row)} field(s), too few")
            name, student = row[at_submission].strip(), row[at_student].strip()
            if not name or not student:
                raise ConfigError(f"{where}: line {line}: an empty submission or student")
            name = submission_name(name)
            if name in students:
                raise ConfigError(f"{where}: line {line}: submission {name!r} is listed twice")
            students[name] = student
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such manifest file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where}: not a UTF-8 CSV file ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc})") from None
    return students
