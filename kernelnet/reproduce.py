"""``kernelnet reproduce``: run every shipped config and write one report of the results."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kernelnet.config import RawConfig, read_config_file
from kernelnet.errors import KernelnetError
from kernelnet.experiments import get_experiment
from kernelnet.provenance import environment
from kernelnet.report_html import embedded_png, markdown_to_html, page
from kernelnet.runner import Progress, execute, resolve_experiment_config
from kernelnet.runs import RunDir, utc_now
from kernelnet.tables import Table


@dataclass(frozen=True)
class ReproducedRun:
    config: Path
    experiment: str
    status: str
    run_path: Path | None
    seconds: float
    error: str = ""


def run_config(path: Path, runs_dir: Path, progress: Progress | None = None) -> ReproducedRun:
    started = time.perf_counter()
    experiment_name = "?"
    try:
        raw: RawConfig = read_config_file(path)
        experiment = get_experiment(raw.values.get("experiment"), str(path))
        experiment_name = experiment.name
        outcome = execute(
            experiment, resolve_experiment_config(experiment, raw), runs_dir, progress=progress
        )
    except KernelnetError as exc:
        return ReproducedRun(
            path, experiment_name, "error", None, time.perf_counter() - started, str(exc)
        )
    error = "; ".join(f"{r.cell.id}: {r.error}" for r in outcome.failures)
    return ReproducedRun(
        path,
        experiment.name,
        outcome.status,
        outcome.run.path,
        time.perf_counter() - started,
        error,
    )


def report_table(runs: list[ReproducedRun], report_dir: Path, seconds: float) -> Table:
    """The runs, one row each, and the total wall-clock time in the note. The run folder
    column is relative to ``report_dir`` (REPORT.md's own folder: short, and it holds as
    long as the runs directory moves as a whole)."""
    rows = []
    for run in runs:
        link = os.path.relpath(run.run_path, report_dir) if run.run_path else "—"
        rows.append(
            [run.config.name, run.experiment, run.status, f"{run.seconds:.1f}", link, run.error]
        )
    return Table(
        "Reproduced experiments",
        ["config", "experiment", "status", "seconds", "run folder", "problems"],
        rows,
        align=["left", "left", "left", "right", "left", "left"],
        note=f"{len(runs)} configs in {seconds:.1f} s in all ({seconds / 60:.1f} min).",
    )


def reproduce(
    configs: list[Path],
    runs_dir: Path,
    on_run: Callable[[ReproducedRun], None] | None = None,
    progress: Progress | None = None,
) -> tuple[RunDir, list[ReproducedRun], Table]:
    """Run each config in turn (a failure does not stop the rest); write REPORT.md. Returns
    the report folder, the runs and the table of them REPORT.md shows."""
    report = RunDir.create(runs_dir, "reproduce")
    report.update_manifest(
        experiment="reproduce",
        status="running",
        started=utc_now(),
        pid=os.getpid(),
        configs=[str(c) for c in configs],
        **environment(),
    )
    report.publish()
    started = time.perf_counter()
    results = []
    for path in configs:
        result = run_config(path, runs_dir, progress)
        results.append(result)
        if on_run:
            on_run(result)
    seconds = time.perf_counter() - started
    table = report_table(results, report.path, seconds)
    failed = [r for r in results if r.status != "complete"]
    status = "failed" if failed else "complete"
    lines = [
        f"# kernelnet reproduce — {report.path.name}",
        "",
        f"{len(results) - len(failed)} of {len(results)} experiments complete.",
        "",
        table.to_markdown(),
    ]
    for run in results:
        if run.run_path and (run.run_path / "metrics.md").is_file():
            body = RunDir(run.run_path).read_text_file("metrics.md").split("\n", 2)[-1]
            lines += [f"## {run.experiment} ({run.config.name})", "", body]
    report.write_text("REPORT.md", "\n".join(lines))
    report.write_text("report.html", report_html(report, results, table))
    report.write_json(
        "summary.json",
        {
            "status": status,
            "runs": [
                {
                    "config": str(r.config),
                    "experiment": r.experiment,
                    "status": r.status,
                    "run": str(r.run_path) if r.run_path else None,
                    "seconds": r.seconds,
                    "error": r.error,
                }
                for r in results
            ],
        },
    )
    report.update_manifest(status=status, finished=utc_now(), seconds=round(seconds, 3))
    report.link_latest(runs_dir)
    return report, results, table


def run_link(run_path: Path) -> str:
    """The href of a run's metrics.md in report.html: an absolute file:// URI.

    The page is self-contained (every table and plot is inside it), so it is the file that
    gets copied, mailed or moved on its own; a link relative to its folder breaks the
    moment it leaves ``<runs-dir>/reproduce/<id>/``, while an absolute URI keeps pointing at
    the run folder wherever the page goes on this machine. A full file:// URI rather than an
    absolute path: it means the same whatever the page was opened from, and ``as_uri``
    percent-encodes spaces, ``#`` and ``%`` in folder names."""
    return (run_path.resolve() / "metrics.md").as_uri()


def report_html(report: RunDir, results: list[ReproducedRun], table: Table) -> str:
    """One self-contained page: environment, the run table with links, then every run's
    tables and plots (embedded as data URIs)."""
    env = report.manifest
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    git = env.get("git") or {}
    sections = [
        f"<p>{sum(r.status == 'complete' for r in results)} of {len(results)} experiments "
        f"complete. Environment: {html.escape(versions)}; {html.escape(env.get('platform', ''))};"
        f" git {html.escape(str(git.get('commit', 'unknown'))[:12])}"
        f"{' (dirty)' if git.get('dirty') else ''}.</p>",
        "<table><thead><tr>"
        + "".join(f"<th>{c}</th>" for c in table.columns[:5])
        + "</tr></thead><tbody>",
    ]
    for run, row in zip(results, table.rows):
        link = (
            f'<a href="{html.escape(run_link(run.run_path))}">{html.escape(row[4])}</a>'
            if run.run_path
            else "—"
        )
        sections.append(
            f"<tr><td>{html.escape(row[0])}</td><td>{html.escape(row[1])}</td>"
            f'<td class="{html.escape(run.status)}">{html.escape(run.status)}</td>'
            f"<td>{html.escape(row[3])}</td><td>{link}</td></tr>"
        )
    sections.append("</tbody></table>")
    for run in results:
        sections.append(f"<h2>{html.escape(run.experiment)} ({html.escape(run.config.name)})</h2>")
        if run.error:
            sections.append(f'<p class="failed">{html.escape(run.error)}</p>')
        if run.run_path and (run.run_path / "metrics.md").is_file():
            sections.append(markdown_to_html(RunDir(run.run_path).read_text_file("metrics.md")))
            for plot in sorted((run.run_path / "plots").rglob("*.png")):
                sections.append(embedded_png(plot, run.run_path))
    return page(f"kernelnet reproduce — {report.path.name}", sections)
