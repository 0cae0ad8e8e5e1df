"""``gradcheck``: every layer, loss and network against centred finite differences
(float64), the gradient of its input (x, the scores, the data X) and of its parameters
reported apart."""

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


def _names(names: tuple[str, ...]) -> str:
    """The checked arrays, named while there are few (a network has many)."""
    if not names:
        return "—"
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} arrays"


def run_cell(config: GradcheckConfig, ctx: CellContext) -> CellOutput:
    result = run_check(config.check.name, ctx.rng, config.check.h)
    row = {
        "check": result.name,
        "inputs": " ".join(result.inputs),
        "input_error": result.input_error,
        "parameters": " ".join(result.parameters),
        "parameter_error": result.parameter_error,
        "max_relative_error": result.max_relative_error,
        "threshold": result.threshold,
        "passed": result.passed,
    }
    if not result.passed:
        worst = max(result.errors, key=result.errors.get)
        raise CellFailed(
            f"{result.name}: relative error {result.max_relative_error:.3g} (gradient of "
            f"{worst}) is not below {result.threshold:g}",
            fields=row,
        )
    return CellOutput([row])


def _error(value) -> str:
    return "—" if value is None or value == "" else f"{float(value):.2e}"


def report(ctx: ReportContext) -> Report:
    names = cell_names(ctx.results, lambda r: r.cell.config.check.name)
    rows = [
        [
            name,
            _names(tuple(r.row.get("inputs", "").split())),
            _error(r.row.get("input_error")),
            _names(tuple(r.row.get("parameters", "").split())),
            _error(r.row.get("parameter_error")),
            f"{r.row.get('threshold', float('nan')):.0e}",
            "pass" if r.ok else "FAIL",
        ]
        for r, name in zip(ctx.results, names)
    ]
    table = Table(
        "Gradient checks (float64, centred differences)",
        [
            "layer / loss / network",
            "input",
            "input error",
            "parameters",
            "parameter error",
            "threshold",
            "result",
        ],
        rows,
        note="relative error = ||analytic - numeric|| / (||analytic|| + ||numeric||), the "
        "largest over the arrays named; a check passes when every one is below its threshold "
        "(1e-7 smooth, 1e-5 kinked: ReLU, max pooling, hinge, evaluated away from the kinks). "
        "svm_hinge: the primal SVM objective's subgradient in w and b (svm-primal's) and in "
        "the data; skip_net / skip_net_chain: the fitting assignment's skip network, input "
        "gradient dMSE/dx with MSE = 1/2 ||y - t||^2.",
        align=["left", "left", "right", "left", "right", "right", "left"],
    )
    passed = sum(r.ok for r in ctx.results)
    done = [r for r in ctx.results if r.ok]
    return Report(
        [table],
        {
            "passed": passed,
            "checked": len(ctx.results),
            "all_passed": passed == len(ctx.results),
            "inputs_checked": sum(r.row.get("input_error") is not None for r in done),
            "largest_input_error": max((r.row["input_error"] for r in done), default=None),
            "largest_parameter_error": max(
                (r.row["parameter_error"] for r in done if r.row["parameter_error"] is not None),
                default=None,
            ),
        },
    )


EXPERIMENT = Experiment(
    name="gradcheck",
    schema=GradcheckConfig,
    run_cell=run_cell,
    report=report,
)
