"""The rough edges a user meets in a first hour at the command line: a filter value that
matches nothing by mistake, a resume with nothing left to do, a resume refused without saying
what changed, a ``--set`` value the YAML parser cannot read, a --help without an example, and
``runs compare`` of two different sweeps. Each test goes through the command line."""

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernelnet.cli import app
from kernelnet.experiments.catalog import CATALOG
from kernelnet.runs import STATUSES
from tests.helpers import invoke, one_error_line


def primal_run(tmp_path, *args: str) -> Path:
    """A quick svm-primal run (a few epochs on iris) and its folder."""
    done = invoke("svm-primal", *args, "--runs-dir", tmp_path, "--quiet")
    assert done.exit_code == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


# -- 1. runs list filters ---------------------------------------------------------------


def test_runs_list_refuses_an_unknown_status_naming_the_valid_ones(tmp_path):
    line = one_error_line(invoke("runs", "list", "--runs-dir", tmp_path, "--status", "bogus"))
    assert "'bogus'" in line and "--status" in line
    for status in STATUSES:
        assert status in line


def test_runs_list_refuses_an_unknown_experiment_naming_the_catalog(tmp_path):
    line = one_error_line(invoke("runs", "list", "--runs-dir", tmp_path, "--experiment", "nosuch"))
    assert "'nosuch'" in line and "--experiment" in line
    for name in CATALOG:
        assert name in line


def test_runs_list_still_filters_by_a_valid_value_that_matches_nothing(tmp_path):
    primal_run(tmp_path, "--epochs", "1")
    for flag, value in (("--status", "failed"), ("--experiment", "knn")):
        done = invoke("runs", "list", "--runs-dir", tmp_path, "--json", flag, value)
        assert done.exit_code == 0, done.stderr
        assert json.loads(done.stdout) == []


# -- 2. resume with nothing to run ------------------------------------------------------


def test_resuming_a_complete_run_says_there_was_nothing_to_run(tmp_path):
    folder = primal_run(tmp_path, "--epochs", "1,2")
    done = invoke("run", "--resume", folder)
    assert done.exit_code == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "nothing to run" in lines[0] and "2 cell(s)" in lines[0]
    assert "already complete" in lines[0]
    assert done.stdout.strip().splitlines()[-1] == str(folder)
    assert json.loads((folder / "run.json").read_text())["status"] == "complete"


def test_resuming_a_run_with_a_missing_cell_runs_it_without_that_line(tmp_path):
    folder = primal_run(tmp_path, "--epochs", "1,2")
    removed = folder / "cells" / "epochs=2"
    assert removed.is_dir()
    for path in sorted(removed.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    removed.rmdir()
    done = invoke("run", "--resume", folder)
    assert done.exit_code == 0, done.stderr
    assert "nothing to run" not in done.stderr
    assert json.loads((folder / "run.json").read_text())["resumed"][-1]["skipped_cells"] == 1


# -- 3. resume names what changed -------------------------------------------------------


def test_a_refused_resume_names_the_key_that_changed(tmp_path):
    folder = primal_run(tmp_path, "--epochs", "1")
    line = one_error_line(invoke("run", "--resume", folder, "--set", "svm.C=10"))
    assert "no longer matches" in line
    assert "svm.C: 5 in the run, 10 now" in line
    assert "more" not in line


def test_a_refused_resume_lists_a_few_keys_then_how_many_more(tmp_path):
    folder = primal_run(tmp_path, "--epochs", "1")
    changes = ["svm.C=10", "svm.learning_rate=0.01", "seed=3", "svm.decay=0.5", "svm.batch_size=2"]
    done = invoke("run", "--resume", folder, *[a for c in changes for a in ("--set", c)])
    line = one_error_line(done)
    named = re.findall(r"([A-Za-z_.]+): \S+ in the run, \S+ now", line)
    assert len(named) == 3 and len(set(named)) == 3, line
    assert set(named) <= {c.split("=")[0] for c in changes}
    assert "and 2 more" in line


# -- 4. --set values that are not YAML --------------------------------------------------


@pytest.mark.parametrize("item", ["svm.C=[1,", "svm.C={", "a.b=: x", "svm.C=[1, 2"])
def test_a_set_value_that_is_not_yaml_gets_one_clear_line(tmp_path, item):
    line = one_error_line(invoke("svm-primal", "--dry-run", "--set", item))
    assert f"--set {item}" in line
    assert "not valid YAML" in line
    assert "quote" in line and "key=value" in line and "key=v1,v2" in line
    for jargon in ("<stream end>", "<block end>", "node content"):
        assert jargon not in line


def test_a_set_value_the_parser_refuses_for_another_reason_keeps_its_own_message():
    line = one_error_line(invoke("svm-primal", "--dry-run", "--set", "svm.C=yes"))
    assert "true/false" in line and "not valid YAML" not in line


# -- 5. every --help example really works -----------------------------------------------


def _commands(group, path=()):
    """(command path, click command) of every command under ``group``, groups included."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def _click_app():
    import typer

    return typer.main.get_command(app)


def _help(path) -> str:
    done = CliRunner().invoke(app, [*path, "--help"])
    assert done.exit_code == 0, done.output
    return done.stdout


def _examples(text: str) -> list[list[str]]:
    """The command lines of a --help text's ``Example:``/``Examples:`` paragraph (its first
    line and the ``kernelnet ...`` lines right after it), as arguments after ``kernelnet``."""
    found, inside = [], False
    for line in text.splitlines():
        words = line.strip()
        if words.startswith(("Example:", "Examples:")):
            inside, words = True, words.partition(":")[2].strip()
        if not words:
            continue
        if inside and words.startswith("kernelnet "):
            found.append(shlex.split(words)[1:])
        else:
            inside = False
    return found


def _command_of(example: list[str]):
    """The click command an example runs (its leading command and subcommand names)."""
    command = _click_app()
    for word in example:
        if not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
    return command


WANTED = [
    ("activations",),
    ("optimizers",),
    ("fit",),
    ("siamese",),
    ("reproduce",),
    ("rerun",),
    ("runs", "list"),
    ("runs", "show"),
    ("runs", "compare"),
]


@pytest.mark.parametrize("path", WANTED, ids=" ".join)
def test_these_commands_show_an_example(path):
    examples = _examples(_help(path))
    assert examples, _help(path)
    assert all(example[: len(path)] == list(path) for example in examples), examples


def test_every_example_in_every_help_parses():
    """Each example, with --dry-run where its command has one (the whole config is then
    checked) or --help otherwise, is not a usage error."""
    commands = dict(_commands(_click_app()))
    checked = 0
    for path in commands:
        for example in _examples(_help(path)):
            command = _command_of(example)
            has_dry_run = any("--dry-run" in p.opts for p in command.params)
            extra = "--dry-run" if has_dry_run else "--help"
            done = CliRunner().invoke(app, [*example, extra], standalone_mode=False)
            from click.exceptions import UsageError

            assert not isinstance(done.exception, UsageError), (example, done.output)
            if has_dry_run:
                assert done.exit_code in (0, 2), (example, done.output)
                if done.exit_code == 2:  # a config error only for data the example names
                    assert "not found" in done.output or "no such" in done.output.lower()
            else:
                assert done.exit_code == 0, (example, done.output)
            checked += 1
    assert checked >= 2 * len(WANTED), checked


# -- 6. runs compare of two different grids ---------------------------------------------


def test_compare_summarizes_cells_found_in_one_run_only(tmp_path):
    a = primal_run(tmp_path, "--epochs", "1,2,3")
    b = primal_run(tmp_path, "--epochs", "2,4,5,6", "--set", "svm.C=4")
    done = invoke("runs", "compare", a, b)
    assert done.exit_code == 1, done.stderr
    out = done.stdout
    assert f"2 cell(s) only in {a.name}: epochs=1, epochs=3" in out, out
    assert f"3 cell(s) only in {b.name}: epochs=4, epochs=5, epochs=6" in out, out
    assert "epochs=1" in out and "epochs=3" in out and "epochs=6" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("cell=")]
    # the shared cell (epochs=2) keeps its per-value rows; the one-sided ones are not rows
    assert rows and all("epochs=2" in line for line in rows), out
    assert not any(re.search(r"epochs=[13456]\b", line) for line in rows), out


def test_compare_of_identical_runs_still_exits_0(tmp_path):
    a = primal_run(tmp_path, "--epochs", "1,2")
    done = invoke("runs", "compare", a, a)
    assert done.exit_code == 0 and "identical" in done.stdout
    assert "only in" not in done.stdout
