"""``kernelnet handout ASSIGNMENT DIR`` (issue 19, item 2): one starter file per spec file with
every function's exact signature, a docstring and a NotImplementedError body; a README with
the codes and the visible tests only; deterministic bytes; writes that never go through a
symlink and refuse to overwrite without --force; one line, exit 2, for every bad input."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kernelnet.grading import handout as handout_module
from kernelnet.grading import spec as spec_module
from kernelnet.grading.codes import MEANINGS
from kernelnet.grading.spec import shipped_spec
from tests.helpers import invoke, kernelnet_cli, one_error_line, one_line

HW3 = shipped_spec("hw3")


@pytest.fixture
def hw3(tmp_path) -> Path:
    """The hw3 handout, written by the command into a new folder."""
    folder = tmp_path / "hw3"
    result = invoke("handout", "hw3", folder)
    assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture
def outside(tmp_path) -> Path:
    path = tmp_path / "outside.txt"
    path.write_text("the user's own file\n")
    return path


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_handout_writes_one_starter_per_spec_file_and_a_readme_and_prints_them(tmp_path):
    folder = tmp_path / "new" / "hw3"  # parents are made
    result = invoke("handout", "hw3", folder)
    assert result.exit_code == 0, result.stderr
    given = [entry.name for entry in HW3.data if entry.handout]
    expected = [folder / file.name for file in HW3.files]
    expected += [folder / "data" / name for name in given] + [folder / "README.md"]
    assert result.stdout.splitlines() == [str(path) for path in expected]
    assert sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file()) == sorted(
        p.relative_to(folder) for p in expected
    )


def test_the_data_students_read_is_there_and_the_graders_own_data_is_not(hw3):
    given = [entry for entry in HW3.data if entry.handout]
    withheld = [entry.name for entry in HW3.data if not entry.handout]
    assert given and withheld  # hw3 has both: the check checks something
    for entry in given:
        loaded = np.load(hw3 / "data" / entry.name, allow_pickle=False)
        assert np.array_equal(loaded, spec_module.data_array(entry)), entry.name
        assert loaded.shape[0] == entry.stop - entry.start
    readme = (hw3 / "README.md").read_text()
    assert all(f"- `data/{entry.name}`" in readme for entry in given)
    everything = b"".join(p.read_bytes() for p in hw3.rglob("*") if p.is_file())
    for name in withheld:
        assert not (hw3 / "data" / name).exists() and name.encode() not in everything


def test_every_spec_function_is_there_with_its_exact_parameters_and_documented(hw3):
    for file in HW3.files:
        found = _functions(hw3 / file.name)
        assert list(found) == [function.name for function in file.functions]
        for function in file.functions:
            node = found[function.name]
            arguments = node.args
            assert [a.arg for a in arguments.args] == list(function.signature), function.name
            assert not (arguments.posonlyargs or arguments.kwonlyargs or arguments.defaults)
            assert arguments.vararg is None and arguments.kwarg is None
            doc = ast.get_docstring(node)
            assert textwrap.dedent(function.doc).strip() in doc
            for name in (*function.signature, *function.outputs):
                assert f"\n    {name}:" in doc, (function.name, name)
            # the body is the docstring and one raise of NotImplementedError
            assert len(node.body) == 2 and isinstance(node.body[1], ast.Raise)
            raised = node.body[1].exc
            assert isinstance(raised, ast.Call) and raised.func.id == "NotImplementedError"


def test_every_starter_compiles_imports_only_what_is_allowed_and_every_body_raises(hw3):
    allowed = set(HW3.allowed_imports)
    for file in HW3.files:
        source = (hw3 / file.name).read_text()
        tree = ast.parse(compile(source, file.name, "exec", ast.PyCF_ONLY_AST))
        module_doc = ast.get_docstring(tree)
        assert file.name in module_doc and ", ".join(HW3.allowed_imports) in module_doc
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert {alias.name.partition(".")[0] for alias in node.names} <= allowed
            assert not isinstance(node, ast.ImportFrom)
    calls = "\n".join(
        f"try:\n    {file.name[:-3]}.{function.name}(*[None] * {len(function.signature)})\n"
        f"except NotImplementedError:\n    print('raised', {function.name!r})\n"
        for file in HW3.files
        for function in file.functions
    )
    # -I leaves the current folder off sys.path: the grader's child puts the submission there
    imports = "import sys\nsys.path.insert(0, '.')\n"
    imports += "".join(f"import {file.name[:-3]}\n" for file in HW3.files)
    done = subprocess.run(
        [sys.executable, "-I", "-c", imports + calls],
        cwd=hw3,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == [
        f"raised {function.name}" for _, function in HW3.functions()
    ]


def test_every_untouched_function_is_not_implemented_in_the_grading_sandbox(hw3):
    """What grading the untouched handout rests on (40 everywhere): each function, called in
    the sandbox with a visible case's inputs and the spec's allowed imports, raises
    NotImplementedError, and its ``import numpy`` passes the sandbox's import policy."""
    from kernelnet.grading.sandbox import Status, run_function
    from kernelnet.grading.spec import generate_inputs

    for file, function in HW3.functions():
        case = next(c for c in function.cases if c.visibility == "visible")
        outcome = run_function(
            hw3,
            file.name.removesuffix(".py"),
            function.name,
            generate_inputs(case),
            allowed_imports=HW3.allowed_imports,
        )
        assert outcome.status == Status.NOT_IMPLEMENTED, (function.name, outcome)


def test_the_hw3_handout_is_the_same_bytes_every_time(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    assert invoke("handout", "hw3", first).exit_code == 0
    assert invoke("handout", "hw3", second).exit_code == 0
    names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_readme_shows_every_code_of_codes_py_and_how_to_check_the_visible_tests(hw3):
    text = (hw3 / "README.md").read_text()
    assert "kernelnet grade hw3 ." in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for code, meaning in MEANINGS.items():
        assert any(
            row.startswith(f"| {code} |") or row.startswith(f"| {code}-") or f"-{code} |" in row
            for row in rows
        ), code
        assert f" | {meaning} |" in text
    assert "| 62-63 | the model converged to a bad likelihood |" in rows
    for _, function in HW3.functions():
        for case in function.cases:
            if case.visibility == "visible":
                assert f"| {case.name} | {function.name} | {case.points:g} |" in rows


def test_no_hidden_case_name_appears_anywhere_in_the_handout(hw3):
    hidden = [c.name for _, f in HW3.functions() for c in f.cases if c.visibility == "hidden"]
    assert hidden  # hw3 has hidden tests: the check checks something
    everything = "".join(path.read_text() for path in hw3.glob("*.*"))
    for name in hidden:
        assert name not in everything


def test_rendering_never_computes_an_input_or_an_expected_output(tmp_path, monkeypatch):
    """The handout is made from the spec's text alone: with every reference and generator
    broken it is the same bytes, so no expected output (visible or hidden) can reach it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the handout computed a case")

    before = handout_module.render(HW3)
    monkeypatch.setattr(
        spec_module, "REFERENCES", {name: refuse for name in spec_module.REFERENCES}
    )
    monkeypatch.setattr(spec_module, "expected_outputs", refuse)
    monkeypatch.setattr(spec_module, "generate_inputs", refuse)
    monkeypatch.setattr(spec_module, "_draw", refuse)
    assert handout_module.render(HW3) == before


def test_a_second_handout_is_refused_without_force_and_keeps_the_students_work(hw3):
    starter = hw3 / "soft_margin_svm.py"
    starter.write_text("# my work\n")
    line = one_error_line(invoke("handout", "hw3", hw3))
    count = len(HW3.files) + len(handout_module.data_files(HW3)) + 1
    assert f"{hw3}: {count} handout file(s) already there (soft_margin_svm.py" in line
    assert "--force" in line
    assert starter.read_text() == "# my work\n"
    result = invoke("handout", "hw3", hw3, "--force")
    assert result.exit_code == 0, result.stderr
    assert "raise NotImplementedError" in starter.read_text()


def test_one_file_already_there_is_a_clash_and_nothing_else_is_written(tmp_path):
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "README.md").write_text("mine\n")
    line = one_error_line(invoke("handout", "hw3", folder))
    assert "1 handout file(s) already there (README.md" in line
    assert sorted(p.name for p in folder.iterdir()) == ["README.md"]  # no data/ either


def test_force_replaces_a_symlink_at_a_target_and_never_writes_through_it(tmp_path, outside):
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "two_layer_net.py").symlink_to(outside)
    line = one_error_line(invoke("handout", "hw3", folder))
    assert "already there (two_layer_net.py" in line
    result = invoke("handout", "hw3", folder, "--force")
    assert result.exit_code == 0, result.stderr
    assert outside.read_text() == "the user's own file\n"
    target = folder / "two_layer_net.py"
    assert not target.is_symlink() and "def fc_forward(X, W, b):" in target.read_text()


def test_a_dangling_symlink_is_a_clash_and_its_target_is_never_created(tmp_path):
    folder, nowhere = tmp_path / "h", tmp_path / "nowhere.md"
    folder.mkdir()
    (folder / "README.md").symlink_to(nowhere)
    line = one_error_line(invoke("handout", "hw3", folder))
    assert "already there (README.md" in line and "--force" in line
    assert not nowhere.exists() and not os.path.lexists(folder / "soft_margin_svm.py")
    assert invoke("handout", "hw3", folder, "--force").exit_code == 0
    assert not nowhere.exists() and not (folder / "README.md").is_symlink()


def test_an_unknown_assignment_is_one_line_listing_the_shipped_ones(tmp_path):
    line = one_error_line(invoke("handout", "hw4", tmp_path / "h"))
    shipped = sorted(p.stem for p in spec_module.ASSIGNMENTS.glob("*.yaml"))
    assert f"no assignment 'hw4'; shipped: {', '.join(shipped)}" in line
    assert not (tmp_path / "h").exists()


def test_a_dir_that_is_a_file_is_one_line_and_the_file_is_left_alone(outside):
    line = one_error_line(invoke("handout", "hw3", outside))
    assert line.startswith("error: ")  # the path itself is shortened when long
    assert line.endswith(": exists and is not a folder; give a folder for the handout")
    assert outside.read_text() == "the user's own file\n"


def test_a_dir_whose_name_is_too_long_is_one_line(tmp_path):
    line = one_error_line(invoke("handout", "hw3", tmp_path / ("a" * 300)))
    assert "the name is too long for the file system (ENAMETOOLONG)" in line
    assert "… (" in line


def test_a_dir_that_cannot_be_written_is_one_line(tmp_path, unwritable):
    folder = tmp_path / "locked"
    folder.mkdir()
    unwritable(folder)
    line = one_error_line(invoke("handout", "hw3", folder))
    assert f"error: {folder}: cannot write the handout there (" in line


def _spec_file(tmp_path: Path, doc: str, signature: str = "[X]") -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            assignment: {name: demo, title: "A demo", allowed_imports: [numpy]}
            files:
              demo.py:
                functions:
                  relu:
                    signature: SIGNATURE
                    outputs: [Y]
                    shapes: {X: [N, D], Y: [N, D]}
                    doc: DOC
                    reference: nn.relu_forward
                    cases:
                      - {name: only, points: 1, visibility: visible, seed: 1,
                         inputs: {X: {normal: {shape: [2, 2]}}}}
            """
        )
        .replace("SIGNATURE", signature)
        .replace("DOC", doc)
    )
    return path


def test_an_instructors_spec_by_path_whose_doc_has_quotes_and_backslashes_still_compiles(
    tmp_path,
):
    doc = r'"Y = max(0, X) \n \"\"\" ends here?\x07 \\"'  # YAML: quotes, a bell, backslashes
    spec = _spec_file(tmp_path, doc)
    result = invoke("handout", spec, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    source = (tmp_path / "out" / "demo.py").read_text()
    node = _functions(tmp_path / "out" / "demo.py")["relu"]
    # the text comes back exactly (lines right-stripped), the bell escaped in the source
    assert 'Y = max(0, X)\n """ ends here?\x07 \\\n' in ast.get_docstring(node)
    assert "\x07" not in source and "\\x07" in source


def test_a_spec_whose_parameter_is_a_python_keyword_is_one_line_and_writes_nothing(tmp_path):
    spec = _spec_file(tmp_path, "Y = max(0, lambda)", signature="[lambda]")
    text = spec.read_text().replace("X: [N, D], Y", "lambda: [N, D], Y")
    spec.write_text(text.replace("inputs: {X:", "inputs: {lambda:"))
    line = one_error_line(invoke("handout", spec, tmp_path / "out"))
    assert "parameter 'lambda' cannot be a Python name (a keyword)" in line
    assert not (tmp_path / "out").exists()


def test_data_files_go_to_data_as_npy_and_a_data_folder_linking_out_is_refused(
    tmp_path, monkeypatch
):
    """hw3's spec names no data the student reads yet: this checks the writing with a
    stand-in (an .npy without pickles, listed in the README; never through a link)."""
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    monkeypatch.setattr(handout_module, "data_files", lambda spec: [("X_train.npy", array)])
    folder = tmp_path / "h"
    assert invoke("handout", "hw3", folder).exit_code == 0
    loaded = np.load(folder / "data" / "X_train.npy", allow_pickle=False)
    assert loaded.dtype == np.float64 and np.array_equal(loaded, array)
    assert "- `data/X_train.npy`" in (folder / "README.md").read_text()

    elsewhere, linked = tmp_path / "elsewhere", tmp_path / "linked"
    elsewhere.mkdir()
    linked.mkdir()
    (linked / "data").symlink_to(elsewhere, target_is_directory=True)
    line = one_error_line(invoke("handout", "hw3", linked))
    assert "is a link out of" in line
    assert list(elsewhere.iterdir()) == []


def test_the_real_command_line_writes_the_handout_and_refuses_a_second_one(tmp_path):
    folder = tmp_path / "hw3"
    done = kernelnet_cli("handout", "hw3", folder)
    assert done.returncode == 0, done.stderr
    assert (folder / "README.md").is_file()
    one_line(kernelnet_cli("handout", "hw3", folder), 2, "already there", "--force")
    one_line(kernelnet_cli("handout", "nope", folder), 2, "no assignment 'nope'; shipped:")
