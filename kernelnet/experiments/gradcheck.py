"""``gradcheck``: every layer and loss against centred finite differences (float64)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelnet.config import param
from kernelnet.errors import CellFailed
from kernelnet.experiments.base import (
    CellContext,
    CellOutput,
    Experiment,
    ExperimentConfig,
    Report,
    ReportContext,
    cell_names,
)
from kernelnet.nn.gradcheck import CHECKS, run_check
from kernelnet.tables import Table


@dataclass
class CheckSection:
    name: str = param(default_factory=lambda: list(CHECKS), choices=tuple(CHECKS), label="check")
    h: float = param(1e-5, gt=0, lt=1e-2, help="finite-difference step")


@dataclass
class GradcheckConfig(ExperimentConfig):
    check: CheckSection = field(default_factory=CheckSection)


def run_cell(config: GradcheckConfig, ctx: CellContext) -> CellOutput:
    result = run_check(config.check.name, ctx.rng, config.check.h)
    row = {
        "check": result.name,
        "max_relative_error": result.max_relative_error,
        "threshold": result.threshold,
        "passed": result.passed,
    }
    if not result.passed:
        raise CellFailed(
            f"{result.name}: relative error {result.max_relative_error:.3g} is not below "
            f"{result.threshold:g}",
            fields=row,
        )
    return CellOutput([row])


def report(ctx: ReportContext) -> Report:
    names = cell_names(ctx.results, lambda r: r.cell.config.check.name)
    rows = [
        [
            name,
            f"{r.row['max_relative_error']:.2e}" if "max_relative_error" in r.row else "—",
            f"{r.row.get('threshold', float('nan')):.0e}",
            "pass" if r.ok else "FAIL",
        ]
        for r, name in zip(ctx.results, names)
    ]
    table = Table(
        "Gradient checks (float64, centred differences)",
        ["layer / loss", "max relative error", "threshold", "result"],
        rows,
        note="relative error = ||analytic - numeric|| / (||analytic|| + ||numeric||), "
        "largest over the checked arrays.",
    )
    passed = sum(r.ok for r in ctx.results)
    return Report(
        [table],
        {"passed": passed, "checked": len(ctx.results), "all_passed": passed == len(ctx.results)},
    )


EXPERIMENT = Experiment(
    name="gradcheck",
    schema=GradcheckConfig,
    run_cell=run_cell,
    report=report,
)
