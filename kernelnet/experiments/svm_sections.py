"""Config sections and builders shared by the dual-SVM experiments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelnet.config import param
from kernelnet.kernels import KERNELS, Kernel, make_kernel
from kernelnet.svm.dual import FALLBACKS, SOLVERS, BinaryKernelSVM
from kernelnet.svm.estimator import KernelSVM


@dataclass
class KernelSection:
    name: str = param(
        default_factory=lambda: ["linear", "poly", "sigmoid", "rbf"],
        choices=tuple(KERNELS),
        label="kernel",
    )
    gamma: float = param(0.2, ge=0, help="poly, sigmoid, rbf")
    degree: int = param(3, ge=0, help="poly")
    coef0: float = param(0.0, help="poly, sigmoid")


@dataclass
class SolverSection:
    name: str = param(
        "cvxopt",
        choices=SOLVERS,
        help="cvxopt (interior point), smo (libsvm's method), or auto (KernelSVM's working-set "
        "solver where the experiment fits a KernelSVM; for a two-class dual SVM, cvxopt up to "
        "n = 1000 and SMO beyond)",
    )
    fallback: str = param(
        "smo",
        choices=FALLBACKS,
        help="when cvxopt fails twice (e.g. indefinite Gram): smo, or none to fail the cell",
    )
    smo_tol: float = param(
        1e-9, gt=0, help="SMO and the working-set solver stop when the KKT violation is below this"
    )
    abstol: float = param(1e-10, gt=0)
    reltol: float = param(1e-10, gt=0)
    feastol: float = param(1e-10, gt=0)
    maxiters: int = param(200, ge=1)


@dataclass
class PlotSection:
    resolution: int = param(200, ge=20, le=2000, help="grid points per axis for decision plots")


def kernel_of(section: KernelSection) -> Kernel:
    return make_kernel(
        section.name, gamma=section.gamma, degree=section.degree, coef0=section.coef0
    )


def _qp_options(solver: SolverSection) -> dict[str, Any]:
    return {
        "abstol": solver.abstol,
        "reltol": solver.reltol,
        "feastol": solver.feastol,
        "maxiters": solver.maxiters,
    }


def kernel_svm(
    section: KernelSection, C: float, solver: SolverSection, support_tol: float
) -> KernelSVM:
    """The public :class:`KernelSVM` (two classes, or one-vs-one) configured from a config's
    kernel and solver sections."""
    return KernelSVM(
        kernel=section.name,
        C=C,
        gamma=section.gamma,
        degree=section.degree,
        coef0=section.coef0,
        solver=solver.name,
        tol=solver.smo_tol,
        fallback=solver.fallback,
        qp_options=_qp_options(solver),
        support_tol=support_tol,
    )


def dual_svm(
    kernel: Kernel,
    C: float,
    solver: SolverSection,
    support_tol: float,
    class_weight: dict[Any, float] | None = None,
) -> BinaryKernelSVM:
    """A :class:`BinaryKernelSVM` configured from a solver section (cvxopt options per call)."""
    return BinaryKernelSVM(
        kernel,
        C=C,
        class_weight=class_weight,
        solver=solver.name,
        fallback=solver.fallback,
        qp_options=_qp_options(solver),
        smo_tol=solver.smo_tol,
        support_tol=support_tol,
    )


def panel_artifact(svm: BinaryKernelSVM, split: Any, resolution: int, caption: str) -> dict | None:
    """The stored decision panel of a fitted SVM on a 2-D split (None for other data: decision
    regions are drawn for 2-D data only)."""
    from kernelnet.plotting import DecisionPanel

    if split.n_features != 2:
        return None
    return DecisionPanel.compute(
        svm.decision_function,
        split.X_train,
        split.y_train,
        split.X_test,
        split.y_test,
        svm.support_,
        resolution,
        caption,
    ).to_artifact()
