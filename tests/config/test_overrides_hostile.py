"""What a hostile or careless user types into --set, a config file's text or its
``experiment:`` key ends in one config error line naming where (issues 18 and 21), never an
internal error, a raw YAML reader error or two lines; ``kernelnet run -c FILE`` runs FILE."""

import os
import subprocess
import sys

import pytest

from tests.helpers import invoke, one_error_line


@pytest.mark.parametrize(
    "item, shown, character",
    [
        ("svm.C=1\x07", "--set svm.C=...", "a control character (U+0007)"),
        ("svm.C=1\n2", "--set svm.C=...", "a control character (U+000A)"),
        ("svm.C=1\r2", "--set svm.C=...", "a control character (U+000D)"),
        ("svm.C='a\tb'", "--set svm.C=...", "a control character (U+0009)"),
        ("svm.C=1\x7f", "--set svm.C=...", "a control character (U+007F)"),
        ("svm.C=1\x852", "--set svm.C=...", "a control character (U+0085)"),
        ("svm.C=1\u20282", "--set svm.C=...", "a character a config cannot hold (U+2028)"),
        ("svm.C=\x00", "--set svm.C=...", "a control character (U+0000)"),
    ],
)
def test_a_set_value_holding_a_control_character_is_one_line_naming_the_key(item, shown, character):
    line = one_error_line(invoke("svm-primal", "--set", item, "--dry-run"))
    assert line == f"error: {shown}: value holds {character}; type it without that character"


def test_a_set_key_holding_a_control_character_is_not_echoed():
    line = one_error_line(invoke("svm-primal", "--set", "svm\x1b[2J.C=1", "--dry-run"))
    assert line.startswith("error: --set ...=...: key holds a control character (U+001B)")
    assert "\x1b" not in line


def test_spaces_around_a_set_value_are_still_fine():
    result = invoke("svm-primal", "--set", " svm.C = 2 ", "--print-config")
    assert result.exit_code == 0, result.stderr
    assert "C: 2" in result.stdout


def test_a_flag_value_holding_a_newline_is_one_line():
    line = one_error_line(invoke("svm-primal", "--epochs", "1\n3", "--dry-run"))
    assert "--epochs svm.epochs=...: value holds a control character (U+000A)" in line


def test_a_set_value_that_is_not_utf8_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "kernelnet", "svm-primal", "--set", b"svm.C=\xff", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --set svm.C=...: value holds a byte that is not UTF-8 text (0xFF); "
        "type it without that character"
    ]


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("experiment: svm-primal\nsvm:\n  C: 1\x07\n", ":3:7:", "a control character (U+0007)"),
        ("experiment: svm-primal\n# a bell \x07\n", ":2:10:", "a control character (U+0007)"),
        ("experiment: svm-primal\x1b\n", ":1:23:", "a control character (U+001B)"),
        ("experiment: svm-primal\nseed: 1\ufffe\n", ":2:8:", "cannot hold (U+FFFE)"),
    ],
)
def test_a_config_file_holding_a_control_character_is_one_config_error(
    tmp_path, text, where, message
):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    line = one_error_line(invoke("run", path, "--dry-run"))
    assert line.startswith(f"error: {path}{where} holds ")
    assert message in line


def test_a_string_value_holding_a_control_character_by_escape_is_refused(tmp_path):
    path = tmp_path / "escaped.yaml"
    path.write_text('experiment: svm-primal\ndata:\n  dataset: "iris\\a"\n')
    line = one_error_line(invoke("run", path, "--dry-run"))
    assert f"{path}:3:3: data.dataset: value holds a control character (U+0007)" in line


def test_a_key_holding_a_newline_by_escape_is_shown_escaped(tmp_path):
    path = tmp_path / "key.yaml"
    path.write_text('experiment: svm-primal\n"sv\\nm": 1\n')
    line = one_error_line(invoke("run", path, "--dry-run"))
    assert f"{path}:2:1: sv\\nm: unknown key" in line


@pytest.mark.parametrize(
    "value, got",
    [
        ("[svm-primal, mnist]", "a list"),
        ("{name: svm-primal}", "a mapping"),
        ("3", "3"),
        ("true", "true/false"),
    ],
)
@pytest.mark.parametrize("how", ["run FILE", "run -c FILE", "svm-primal -c FILE"])
def test_an_experiment_key_that_is_not_a_name_is_one_config_error(tmp_path, value, got, how):
    path = tmp_path / "cf.yaml"
    path.write_text(f"experiment: {value}\n")
    args = {
        "run FILE": ["run", path],
        "run -c FILE": ["run", "-c", path],
        "svm-primal -c FILE": ["svm-primal", "-c", path],
    }[how]
    line = one_error_line(invoke(*args, "--dry-run"))
    assert line.startswith(f"error: {path}:1:1: experiment: must be an experiment name, one of ")
    assert "svm-primal" in line and line.endswith(f"(got {got})")


def test_run_dash_c_runs_the_file(tmp_path):
    path = tmp_path / "cf" / "svm-primal.yaml"
    path.parent.mkdir()
    path.write_text("experiment: svm-primal\nsvm:\n  epochs: [1, 3]\n")
    listed = invoke("run", "-c", path, "--dry-run")
    assert listed.exit_code == 0, listed.stderr
    assert "epochs=1" in listed.stdout and "epochs=3" in listed.stdout
    ran = invoke("run", "-c", path, "--runs-dir", tmp_path / "runs", "--quiet")
    assert ran.exit_code == 0, ran.stderr
    assert "svm-primal" in ran.stdout.strip().splitlines()[-1]
