"""The README's quoted output, figures and figures-in-prose, produced by the program.

Three kinds of marker in README.md say what the program must produce:

- ``<!-- output -->`` (optionally ``<!-- output from=REGEX head=N grep=REGEX mask=REGEX
  setup=NAME -->``) right above a fenced block whose lines starting with ``$ `` are commands:
  the rest of the block is what they print (stdout; stderr for a command that fails with
  nothing on stdout). ``from`` starts at the first line that matches, ``head`` keeps the first
  N lines, ``grep`` only the lines that match, ``mask`` names text that changes from run to
  run (a timing) and is not compared;
  ``setup`` prepares the block's folder (:data:`SETUPS`). Each block runs in a fresh folder.
- ``<!-- figure: COMMAND -> PATH_IN_RUN -->`` right above a ``![...](docs/images/F.png)``
  line: the image is that command's figure.
- ``<!--f:NAME-->TEXT<!--/f-->`` inline: TEXT is fact NAME (:data:`FACTS`), computed from
  the run folder a command wrote.

``python docs/readme.py --write`` runs every command and rewrites README.md and the images;
``python docs/readme.py --check`` (and ``tests/test_readme.py``, one test per job) fails
where the README and the program disagree. A run folder's time stamp and id are never
compared; nothing else is ignored unless a block's ``mask`` says so.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUN_STAMP = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b")
OUTPUT_MARK = re.compile(r"^<!-- output(?P<options>(?: [a-z-]+=(?:\"[^\"]*\"|\S+))*) -->$")
OPTION = re.compile(r"([a-z-]+)=(\"[^\"]*\"|\S+)")
FIGURE_MARK = re.compile(r"^<!-- figure: (?P<command>.+?) -> (?P<source>\S+) -->$")
IMAGE = re.compile(r"^!\[[^\]]*\]\((?P<path>[^)]+)\)$")
FACT = re.compile(r"<!--f:(?P<name>[a-z0-9_.-]+)-->(?P<text>.*?)<!--/f-->")
FENCE = re.compile(r"^```")
TIMEOUT = 1800  # seconds a command may take (the 55,000-image MNIST table takes minutes)


# -- running commands ----------------------------------------------------------------------


def kernelnet_executable() -> str:
    """The ``kernelnet`` script of this interpreter's environment (the venv's)."""
    beside = Path(sys.executable).with_name("kernelnet")
    return str(beside) if beside.exists() else "kernelnet"


def command_environment() -> dict[str, str]:
    """What a user's shell has, minus what would change the output: no terminal width, no
    data folder or scheduler of the caller's, one BLAS thread."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("COLUMNS", "LINES", "KERNELNET_DATA", "DASK_SCHEDULER_ADDRESS")
    }
    env.update(OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    return env


@dataclass
class Ran:
    """A command as run: its words, exit code, output and the run folder it wrote."""

    words: list[str]
    code: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def shown(self) -> str:
        """What the README quotes: stdout; stderr (the error line) for a command that
        failed without printing anything on stdout."""
        return self.stderr if self.code != 0 and not self.stdout else self.stdout

    @property
    def run_folder(self) -> Path:
        """The run folder (the last line of stdout of an experiment command)."""
        lines = [line.strip() for line in self.stdout.splitlines() if line.strip()]
        if not lines or not (self.cwd / lines[-1]).is_dir():
            raise AssertionError(f"`{' '.join(self.words)}` printed no run folder")
        return self.cwd / lines[-1]


def run(words: list[str], cwd: Path) -> Ran:
    argv = [kernelnet_executable(), *words[1:]] if words[0] == "kernelnet" else words
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=command_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return Ran(words, done.returncode, done.stdout, done.stderr, cwd)


def configs_folder() -> Path:
    from kernelnet.shipped import shipped

    return shipped("configs")


def expand(command: str) -> list[str]:
    """A README command as words (a ``#`` comment dropped)."""
    return shlex.split(command, comments=True)


def job_folder(workdir: Path) -> Path:
    """A fresh folder to run commands in, holding the shipped configs as ``configs/`` (as a
    checkout does), so a README command can say ``--config configs/mnist-deep.yaml``."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    shutil.copytree(configs_folder(), folder / "configs")
    return folder


# -- setups: what a block's folder holds before its commands run ------------------------------


def _bad_config(folder: Path) -> None:
    (folder / "bad.yaml").write_text("experiment: svm-primal\nsvm:\n  C: -1\n", encoding="utf-8")


def _hw3_two_bugs(folder: Path) -> None:
    """hw3's reference submission with two planted bugs (db as a vector, an in-place ReLU),
    written over the handout's starter files once the block has ``cd``-ed into them."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests.grading import mutants
    finally:
        sys.path.remove(str(ROOT))
    chosen = [m for m in mutants.WRONG if m.name in ("fc_backward_db_as_a_vector", "relu_in_place")]
    mutants.write_submission(None, folder)
    text = (folder / mutants.NET).read_text(encoding="utf-8")
    for mutant in chosen:
        for old, new in mutant.edits:
            assert text.count(old) == 1, (mutant.name, old)
            text = text.replace(old, new)
    (folder / mutants.NET).write_text(text, encoding="utf-8")


SETUPS: dict[str, Callable[[Path], None]] = {
    "bad-config": _bad_config,  # in the block's folder, before the first command
    "hw3-two-bugs": _hw3_two_bugs,  # in the folder the block's `cd` enters
}


# -- the README's markers ------------------------------------------------------------------


@dataclass
class Block:
    """An ``<!-- output -->`` block: its line range in the README (the body, between the
    fences) and its commands with the output quoted under each."""

    start: int  # index of the first body line
    end: int  # index of the closing fence
    options: dict[str, str]
    steps: list[tuple[str, list[str]]]  # (command, quoted output lines)

    @property
    def key(self) -> str:
        return " && ".join(command for command, _ in self.steps)


@dataclass
class Figure:
    line: int  # index of the image line
    command: str
    source: str  # the figure's path inside the run folder
    target: str  # the image's path in the repository


@dataclass
class Readme:
    lines: list[str]
    blocks: list[Block] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    facts: dict[str, list[str]] = field(default_factory=dict)  # name -> texts quoted


def parse(text: str) -> Readme:
    lines = text.split("\n")
    readme = Readme(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        for match in FACT.finditer(line):
            readme.facts.setdefault(match["name"], []).append(match["text"])
        output = OUTPUT_MARK.match(line)
        figure = FIGURE_MARK.match(line)
        if output:
            readme.blocks.append(_block(lines, index, output["options"]))
            index = readme.blocks[-1].end
        elif figure:
            image = IMAGE.match(lines[index + 1]) if index + 1 < len(lines) else None
            if image is None:
                raise ValueError(f"README.md:{index + 1}: a figure marker needs an image under it")
            readme.figures.append(
                Figure(index + 1, figure["command"], figure["source"], image["path"])
            )
        index += 1
    return readme


def _block(lines: list[str], mark: int, options_text: str) -> Block:
    options = {key: value.strip('"') for key, value in OPTION.findall(options_text)}
    unknown = set(options) - {"from", "head", "grep", "mask", "setup"}
    if unknown or options.get("setup", "bad-config") not in SETUPS:
        raise ValueError(f"README.md:{mark + 1}: unknown output option {sorted(unknown)}")
    if mark + 1 >= len(lines) or not FENCE.match(lines[mark + 1]):
        raise ValueError(f"README.md:{mark + 1}: an output marker needs a fenced block under it")
    start = mark + 2
    end = start
    while end < len(lines) and not FENCE.match(lines[end]):
        end += 1
    steps: list[tuple[str, list[str]]] = []
    for line in lines[start:end]:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif not steps:
            raise ValueError(f"README.md:{start + 1}: an output block starts with a $ command")
        else:
            steps[-1][1].append(line)
    return Block(start, end, options, steps)


# -- producing what the README quotes -------------------------------------------------------


def shown_lines(ran: Ran, options: dict[str, str]) -> list[str]:
    lines = [line.rstrip() for line in ran.shown.rstrip("\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if ran.shown == "":
        lines = []
    if "from" in options:
        start = next((i for i, line in enumerate(lines) if re.search(options["from"], line)), None)
        lines = [] if start is None else lines[start:]
    if "grep" in options:
        lines = [line for line in lines if re.search(options["grep"], line)]
    if "head" in options:
        lines = lines[: int(options["head"])]
    return lines


def run_block(block: Block, workdir: Path) -> list[tuple[str, list[str], Ran | None]]:
    """Run a block's commands in ``workdir`` (a ``cd`` moves within it)."""
    cwd = workdir
    setup = block.options.get("setup")
    if setup == "bad-config":
        SETUPS[setup](cwd)
    produced = []
    for command, _ in block.steps:
        words = expand(command)
        if words and words[0] == "cd":
            cwd = (cwd / words[1]).resolve()
            if setup and setup != "bad-config":
                SETUPS[setup](cwd)
            produced.append((command, [], None))
            continue
        ran = run(words, cwd)
        produced.append((command, shown_lines(ran, block.options), ran))
    return produced


def comparable(lines: list[str], mask: str | None) -> list[str]:
    """Lines as compared: run stamps and masked text replaced, spacing and rule lengths
    collapsed (a masked timing one character wider must not fail the whole table)."""
    out = []
    for line in lines:
        line = RUN_STAMP.sub("<stamp>", line)
        if mask:
            line = re.sub(mask, "<masked>", line)
        line = re.sub(r"━+", "━", line)
        out.append(re.sub(r"\s+", " ", line).strip())
    return out


def block_problems(block: Block, produced: list[tuple[str, list[str], Ran | None]]) -> list[str]:
    problems = []
    for (command, quoted), (_, lines, _ran) in zip(block.steps, produced, strict=True):
        mask = block.options.get("mask")
        if comparable(quoted, mask) != comparable(lines, mask):
            problems.append(
                f"README.md:{block.start + 1}: `{command}` prints\n"
                + "\n".join(f"    {line}" for line in lines)
                + "\n  but the README quotes\n"
                + "\n".join(f"    {line}" for line in quoted)
            )
    return problems


def block_text(produced: list[tuple[str, list[str], Ran | None]]) -> list[str]:
    body = []
    for command, lines, _ in produced:
        body.append(f"$ {command}")
        body.extend(lines)
    return body


# -- facts: numbers in prose ----------------------------------------------------------------


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def metrics(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def percent(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%"


def sci(value: float, digits: int = 1) -> str:
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@dataclass(frozen=True)
class Fact:
    command: str  # run once per check, in a fresh folder
    value: Callable[[Ran], str]


FACTS: dict[str, Fact] = {}


def fact(name: str, command: str) -> Callable[[Callable[[Ran], str]], Callable[[Ran], str]]:
    def register(function: Callable[[Ran], str]) -> Callable[[Ran], str]:
        FACTS[name] = Fact(command, function)
        return function

    return register


def _activation_errors(ran: Ran, low: float, high: float) -> str:
    """The largest error of the identities whose tolerance lies in [low, high): the
    tolerance says what kind of identity it is (exact 0, rounding, finite differences)."""
    errors = [
        float(row["max_error"])
        for row in metrics(ran.run_folder)
        if low <= float(row["tolerance"]) < high
    ]
    return sci(max(errors))


@fact("activations.count", "kernelnet activations")
def _(ran: Ran) -> str:
    return str(len(metrics(ran.run_folder)))


@fact("activations.rounding", "kernelnet activations")
def _(ran: Ran) -> str:
    return _activation_errors(ran, 1e-30, 1e-8)


@fact("activations.derivative", "kernelnet activations")
def _(ran: Ran) -> str:
    return _activation_errors(ran, 1e-8, 1.0)


@fact("kernel-check.poly2-map", "kernelnet kernel-check")
def _(ran: Ran) -> str:
    return sci(summary(ran.run_folder)["poly2_feature_map_error"])


@fact("kernel-check.gaussian-20", "kernelnet kernel-check")
def _(ran: Ran) -> str:
    return sci(summary(ran.run_folder)["gaussian_truncation_error"]["20"], 2)


@fact("kernel-check.cell-id", "kernelnet kernel-check --dry-run")
def _(ran: Ran) -> str:
    (cell,) = re.findall(r"construction=-a_k1~[0-9a-f]+", ran.stdout)
    return cell


def _knn_mnist(ran: Ran) -> dict[str, str]:
    (row,) = [
        row
        for row in metrics(ran.run_folder)
        if row["dataset"] == "mnist" and row["chosen"] == "True"
    ]
    return row


@fact("knn.mnist-k", "kernelnet knn")
def _(ran: Ran) -> str:
    return _knn_mnist(ran)["k"]


@fact("knn.mnist-val", "kernelnet knn")
def _(ran: Ran) -> str:
    return percent(float(_knn_mnist(ran)["val_accuracy"]), 1)


@fact("knn.mnist-test", "kernelnet knn")
def _(ran: Ran) -> str:
    return percent(float(_knn_mnist(ran)["test_accuracy"]), 1)


@fact("optimizers.adam-bias", "kernelnet optimizers")
def _(ran: Ran) -> str:
    return percent(summary(ran.run_folder)["adam_mean_deviation"], 1)


@fact("optimizers.nesterov", "kernelnet optimizers")
def _(ran: Ran) -> str:
    return sci(summary(ran.run_folder)["nesterov_max_difference"])


def _siamese_epoch(ran: Ran, first: bool) -> dict[str, str]:
    rows = metrics(ran.run_folder)
    return rows[0] if first else rows[-1]


@fact("siamese.untrained", "kernelnet siamese")
def _(ran: Ran) -> str:
    return percent(float(_siamese_epoch(ran, True)["pair_accuracy"]), 0)


@fact("siamese.accuracy", "kernelnet siamese")
def _(ran: Ran) -> str:
    return percent(float(_siamese_epoch(ran, False)["pair_accuracy"]), 0)


@fact("siamese.epochs", "kernelnet siamese")
def _(ran: Ran) -> str:
    return _siamese_epoch(ran, False)["epoch"]


@fact("siamese.cos-same", "kernelnet siamese")
def _(ran: Ran) -> str:
    return f"{float(_siamese_epoch(ran, False)['cos_same']):+.2f}"


@fact("siamese.cos-different", "kernelnet siamese")
def _(ran: Ran) -> str:
    return f"{float(_siamese_epoch(ran, False)['cos_different']):+.2f}".replace("-", "−")


def _gradcheck_errors(ran: Ran) -> list[float]:
    return [float(row["max_relative_error"]) for row in metrics(ran.run_folder)]


@fact("gradcheck.count", "kernelnet gradcheck")
def _(ran: Ran) -> str:
    return str(len(_gradcheck_errors(ran)))


@fact("gradcheck.lowest", "kernelnet gradcheck")
def _(ran: Ran) -> str:
    return sci(min(_gradcheck_errors(ran)), 0)


@fact("gradcheck.highest", "kernelnet gradcheck")
def _(ran: Ran) -> str:
    return sci(max(_gradcheck_errors(ran)), 0)


@fact("fit.second-difference", "kernelnet fit")
def _(ran: Ran) -> str:
    return sci(summary(ran.run_folder)["linear_max_second_difference"], 0)


DEEP = "kernelnet mnist --config configs/mnist-deep.yaml --no-plots"


@fact("mnist-deep.test", DEEP)
def _(ran: Ran) -> str:
    return percent(summary(ran.run_folder)["test_accuracy"])


@fact("mnist-deep.best-val", DEEP)
def _(ran: Ran) -> str:
    return percent(summary(ran.run_folder)["best_val_accuracy"])


@fact("mnist-deep.best-epoch", DEEP)
def _(ran: Ran) -> str:
    return str(summary(ran.run_folder)["best_epoch"])


MNIST_TABLE = {
    "10k": "kernelnet mnist-table",
    "55k": "kernelnet mnist-table --set data.train_size=55000",
}
MNIST_METHODS = ("knn", "linear", "rbf-svm", "mlp-300", "mlp-1000", "mlp-300-100", "mlp-800-ce")


def _mnist_table_row(ran: Ran, method: str) -> dict[str, str]:
    (row,) = [row for row in metrics(ran.run_folder) if row["method"] == method]
    return row


def _register_mnist_table() -> None:
    for size, command in MNIST_TABLE.items():
        for method in MNIST_METHODS:
            fact(f"mnist-table.{size}.{method}", command)(
                lambda ran, m=method: f"{float(_mnist_table_row(ran, m)['test_error']):.2f}"
            )
        fact(f"mnist-table.{size}.knn-k", command)(
            lambda ran: re.match(r"k=\d+", _mnist_table_row(ran, "knn")["settings"])[0]
        )


_register_mnist_table()


@fact("mnist-table.55k.nets-beating", MNIST_TABLE["55k"])
def _(ran: Ran) -> str:
    networks = [row for row in metrics(ran.run_folder) if row["method"].startswith("mlp-")]
    beating = sum(float(r["test_error"]) < float(r["published_error"]) for r in networks)
    return f"{beating} of the {len(networks)} networks"


# -- jobs: one per command (or block) --------------------------------------------------------


@dataclass
class Job:
    """Everything one command (or one multi-command block) must produce."""

    key: str
    blocks: list[Block] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)


def jobs(readme: Readme) -> list[Job]:
    by_key: dict[str, Job] = {}
    for block in readme.blocks:
        key = block.key if len(block.steps) == 1 else f"block at README.md:{block.start}"
        by_key.setdefault(key, Job(key)).blocks.append(block)
    for figure in readme.figures:
        by_key.setdefault(figure.command, Job(figure.command)).figures.append(figure)
    for name in readme.facts:
        if name not in FACTS:
            raise ValueError(f"README.md quotes fact {name!r}, which docs/readme.py does not know")
        command = FACTS[name].command
        by_key.setdefault(command, Job(command)).facts.append(name)
    return list(by_key.values())


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    block_bodies: dict[int, list[str]] = field(default_factory=dict)  # block start -> body
    images: dict[str, Path] = field(default_factory=dict)  # target -> produced file
    facts: dict[str, str] = field(default_factory=dict)


def run_job(job: Job, readme: Readme, workdir: Path) -> Outcome:
    outcome = Outcome()
    single: Ran | None = None
    for block in job.blocks:
        produced = run_block(block, job_folder(workdir))
        outcome.problems += block_problems(block, produced)
        outcome.block_bodies[block.start] = block_text(produced)
        if len(produced) == 1:
            single = produced[0][2]
    if single is None and (job.figures or job.facts):
        single = run(expand(job.key), job_folder(workdir))
    for figure in job.figures:
        produced_image = single.run_folder / figure.source
        if not produced_image.is_file():
            outcome.problems.append(f"`{figure.command}` wrote no {figure.source}")
            continue
        outcome.images[figure.target] = produced_image
        difference = image_difference(produced_image, ROOT / figure.target)
        if difference is not None:
            outcome.problems.append(
                f"{figure.target} is not what `{figure.command}` draws ({difference})"
            )
    for name in job.facts:
        text = FACTS[name].value(single)
        outcome.facts[name] = text
        for quoted in readme.facts[name]:
            if quoted != text:
                outcome.problems.append(
                    f"README.md quotes {name} as {quoted!r}; `{job.key}` gives {text!r}"
                )
    return outcome


def image_difference(produced: Path, quoted: Path) -> str | None:
    """None when the two PNGs show the same picture (same size, every channel within 2/255),
    else what differs."""
    if not quoted.is_file():
        return "the README's image is missing"
    from matplotlib import image

    a, b = image.imread(produced), image.imread(quoted)
    if a.shape != b.shape:
        return f"size {b.shape[:2]} in the README, {a.shape[:2]} drawn"
    worst = float(abs(a.astype(float) - b.astype(float)).max())
    return None if worst <= 2 / 255 else f"pixels differ by up to {worst:.3f}"


# -- the command ---------------------------------------------------------------------------


def rewritten(readme: Readme, outcomes: list[Outcome]) -> str:
    lines = list(readme.lines)
    bodies = {start: body for outcome in outcomes for start, body in outcome.block_bodies.items()}
    facts = {name: text for outcome in outcomes for name, text in outcome.facts.items()}
    for block in sorted(readme.blocks, key=lambda b: b.start, reverse=True):
        if block.start in bodies:  # a block not run (--only) stays as it is
            lines[block.start : block.end] = bodies[block.start]
    text = "\n".join(lines)
    return FACT.sub(
        lambda m: f"<!--f:{m['name']}-->{facts.get(m['name'], m['text'])}<!--/f-->", text
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail where README.md disagrees")
    mode.add_argument("--write", action="store_true", help="rewrite README.md and its images")
    parser.add_argument("--only", help="run only the jobs whose command contains this text")
    args = parser.parse_args(argv)
    readme = parse(README.read_text(encoding="utf-8"))
    chosen = [job for job in jobs(readme) if not args.only or args.only in job.key]
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kernelnet-readme-") as workdir:
        for job in chosen:
            print(f"running {job.key}", file=sys.stderr)
            outcomes.append(run_job(job, readme, Path(workdir)))
        if args.write:
            README.write_text(rewritten(readme, outcomes), encoding="utf-8")
            for outcome in outcomes:
                for target, produced in outcome.images.items():
                    shutil.copyfile(produced, ROOT / target)
            print("README.md and its images rewritten", file=sys.stderr)
            return 0
    problems = [problem for outcome in outcomes for problem in outcome.problems]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
